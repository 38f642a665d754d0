//! The groups file: `[n]` lines start groups, the lines after them are
//! patterns (lines starting with white space or `#` are skipped), and a
//! group becomes one expression, `((p1)|(p2)|...)` (an empty group `^$`),
//! as Kamailio's regex module builds them.

use sr_sdk::pcre;

/// Limits and matching options (the module's parameters).
#[derive(Debug, Clone, Copy)]
pub struct Options {
    /// Most groups in the file.
    pub max_groups: usize,
    /// Most bytes of one group's expression.
    pub group_max_size: usize,
    /// The `pcre_*` options.
    pub pcre: pcre::Options,
}

/// Compiles `pattern` as PCRE (without UTF mode) would read it, with the
/// module's options.
pub fn compile(pattern: &[u8], o: &Options) -> Result<regex::bytes::Regex, String> {
    pcre::compile(pattern, o.pcre)
}

/// The groups' expressions from the file's bytes.
pub fn expressions(text: &[u8], o: &Options) -> Result<Vec<Vec<u8>>, String> {
    let mut groups: Vec<Vec<u8>> = Vec::new();
    // The length Kamailio's buffer for the current group has ("(" and
    // "(line)\n" per line), which `group_max_size` limits.
    let mut size = 0usize;
    for line in text.split_inclusive(|&b| b == b'\n') {
        let first = line[0];
        if first.is_ascii_whitespace() || first == b'#' {
            continue;
        }
        if first == b'[' {
            if groups.len() >= o.max_groups {
                return Err("max patterns exceeded".into());
            }
            groups.push(Vec::new());
            size = 1;
            continue;
        }
        let Some(g) = groups.last_mut() else {
            return Err(
                "first group must be initialized with [0] before any regular expression".into(),
            );
        };
        if size + line.len() >= o.group_max_size.saturating_sub(2) {
            return Err("pattern max file exceeded".into());
        }
        size += line.len() + 2;
        let p = line.strip_suffix(b"\n").unwrap_or(line);
        if !g.is_empty() {
            g.push(b'|');
        }
        g.push(b'(');
        g.extend_from_slice(p);
        g.push(b')');
    }
    if groups.is_empty() {
        return Err("no expressions in the file".into());
    }
    Ok(groups
        .into_iter()
        .map(|g| {
            if g.is_empty() {
                b"^$".to_vec()
            } else {
                [&b"("[..], &g, b")"].concat()
            }
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    const O: Options = Options {
        max_groups: 20,
        group_max_size: 8192,
        pcre: pcre::Options {
            caseless: false,
            multiline: false,
            dotall: false,
            extended: false,
        },
    };

    #[test]
    fn groups_as_kamailio_builds_them() {
        let text = "### UAs\n[0]\n\n# soft\n^Twinkle/1\n^X-Lite\n\n[1]\n^190\\.232\\.250\\.226$\n[5]\n[7]\n  indented\n^1\\d{3}$";
        let g = expressions(text.as_bytes(), &O).unwrap();
        let g: Vec<String> = g
            .iter()
            .map(|x| String::from_utf8_lossy(x).into_owned())
            .collect();
        assert_eq!(
            g,
            vec![
                "((^Twinkle/1)|(^X-Lite))",
                "((^190\\.232\\.250\\.226$))",
                "^$",
                "((^1\\d{3}$))"
            ]
        );
        let re = compile(g[3].as_bytes(), &O).unwrap();
        assert!(re.is_match(b"1234") && !re.is_match(b"12345"));
        // ASCII digits only, as PCRE without UTF mode.
        assert!(!compile(b"^\\d$", &O).unwrap().is_match("٣".as_bytes()));
    }

    #[test]
    fn bad_files() {
        assert!(expressions(b"^a\n[0]\n", &O)
            .unwrap_err()
            .contains("first group"));
        assert!(expressions(b"# nothing\n", &O)
            .unwrap_err()
            .contains("no expressions"));
        let two = Options { max_groups: 1, ..O };
        assert!(expressions(b"[0]\na\n[1]\nb\n", &two)
            .unwrap_err()
            .contains("max patterns"));
        let small = Options {
            group_max_size: 8,
            ..O
        };
        assert!(expressions(b"[0]\nabcdefgh\n", &small)
            .unwrap_err()
            .contains("max file"));
    }
}
