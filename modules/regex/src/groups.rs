//! The groups file: `[n]` lines start groups, the lines after them are
//! patterns (lines starting with white space or `#` are skipped), and a
//! group becomes one expression, `((p1)|(p2)|...)` (an empty group `^$`),
//! as Kamailio's regex module builds them.

/// Limits and matching options (the module's parameters).
#[derive(Debug, Clone, Copy)]
pub struct Options {
    /// Most groups in the file.
    pub max_groups: usize,
    /// Most bytes of one group's expression.
    pub group_max_size: usize,
    /// `pcre_caseless`.
    pub caseless: bool,
    /// `pcre_multiline`.
    pub multiline: bool,
    /// `pcre_dotall`.
    pub dotall: bool,
    /// `pcre_extended`.
    pub extended: bool,
}

/// Compiles `pattern` as PCRE (without UTF mode) would read it: bytes,
/// ASCII classes, with the module's options.
pub fn compile(pattern: &str, o: &Options) -> Result<regex::bytes::Regex, String> {
    regex::bytes::RegexBuilder::new(pattern)
        .unicode(false)
        .case_insensitive(o.caseless)
        .multi_line(o.multiline)
        .dot_matches_new_line(o.dotall)
        .ignore_whitespace(o.extended)
        .build()
        .map_err(|e| format!("compilation of '{pattern}' failed: {e}"))
}

/// The groups' expressions from the file's text.
pub fn expressions(text: &str, o: &Options) -> Result<Vec<String>, String> {
    let mut groups: Vec<String> = Vec::new();
    // The length Kamailio's buffer for the current group has ("(" and
    // "(line)\n" per line), which `group_max_size` limits.
    let mut size = 0usize;
    for line in text.split_inclusive('\n') {
        let first = line.as_bytes()[0];
        if first.is_ascii_whitespace() || first == b'#' {
            continue;
        }
        if first == b'[' {
            if groups.len() >= o.max_groups {
                return Err("max patterns exceeded".into());
            }
            groups.push(String::new());
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
        let p = line.strip_suffix('\n').unwrap_or(line);
        if !g.is_empty() {
            g.push('|');
        }
        g.push('(');
        g.push_str(p);
        g.push(')');
    }
    if groups.is_empty() {
        return Err("no expressions in the file".into());
    }
    Ok(groups
        .into_iter()
        .map(|g| {
            if g.is_empty() {
                "^$".to_string()
            } else {
                format!("({g})")
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
        caseless: false,
        multiline: false,
        dotall: false,
        extended: false,
    };

    #[test]
    fn groups_as_kamailio_builds_them() {
        let text = "### UAs\n[0]\n\n# soft\n^Twinkle/1\n^X-Lite\n\n[1]\n^190\\.232\\.250\\.226$\n[5]\n[7]\n  indented\n^1\\d{3}$";
        let g = expressions(text, &O).unwrap();
        assert_eq!(
            g,
            vec![
                "((^Twinkle/1)|(^X-Lite))",
                "((^190\\.232\\.250\\.226$))",
                "^$",
                "((^1\\d{3}$))"
            ]
        );
        let re = compile(&g[3], &O).unwrap();
        assert!(re.is_match(b"1234") && !re.is_match(b"12345"));
        // ASCII digits only, as PCRE without UTF mode.
        assert!(!compile("^\\d$", &O).unwrap().is_match("٣".as_bytes()));
    }

    #[test]
    fn bad_files() {
        assert!(expressions("^a\n[0]\n", &O)
            .unwrap_err()
            .contains("first group"));
        assert!(expressions("# nothing\n", &O)
            .unwrap_err()
            .contains("no expressions"));
        let two = Options { max_groups: 1, ..O };
        assert!(expressions("[0]\na\n[1]\nb\n", &two)
            .unwrap_err()
            .contains("max patterns"));
        let small = Options {
            group_max_size: 8,
            ..O
        };
        assert!(expressions("[0]\nabcdefgh\n", &small)
            .unwrap_err()
            .contains("max file"));
    }
}
