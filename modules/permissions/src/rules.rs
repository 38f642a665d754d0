//! The hosts.allow-style rule files of `allow_routing`, `allow_register`
//! and `allow_uri`, read as Kamailio 5.6 reads them: one rule per line,
//! `LEFT : RIGHT`, each side `ALL` or a comma-separated list of
//! case-insensitive POSIX extended expressions (searched, not anchored),
//! optionally followed by ` EXCEPT ` and another list. No I/O.

use regex::{Regex, RegexBuilder};

/// One side of a rule.
#[derive(Debug, Clone)]
pub struct Side {
    /// `ALL`: anything matches.
    pub all: bool,
    /// The expressions, any of which matches.
    pub items: Vec<Regex>,
    /// The `EXCEPT` expressions, none of which may match.
    pub except: Vec<Regex>,
}

impl Side {
    /// Whether `s` matches this side.
    pub fn matches(&self, s: &str) -> bool {
        (self.all || self.items.iter().any(|r| r.is_match(s)))
            && !self.except.iter().any(|r| r.is_match(s))
    }
}

/// `LEFT : RIGHT`.
#[derive(Debug, Clone)]
pub struct Rule {
    /// Matched against the From (or To) URI.
    pub left: Side,
    /// Matched against the Request-URI, a branch, a Contact or a value.
    pub right: Side,
}

/// Whether any rule matches the pair.
pub fn any_match(rules: &[Rule], left: &str, right: &str) -> bool {
    rules
        .iter()
        .any(|r| r.left.matches(left) && r.right.matches(right))
}

/// The longest expression Kamailio accepts.
const MAX_EXPR: usize = 255;
/// Kamailio reads lines 499 bytes at a time (`fgets` into 500 bytes).
const MAX_LINE: usize = 499;

fn compile(item: &str) -> Result<Regex, String> {
    RegexBuilder::new(item)
        .case_insensitive(true)
        .build()
        .map_err(|e| format!("bad expression '{item}': {e}"))
}

/// Splits at commas outside quotes; each item trimmed of spaces and tabs,
/// then one leading and one trailing `"` dropped.
fn list(s: &str) -> Result<Vec<Regex>, String> {
    let mut items = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    let mut push = |cur: &str| -> Result<(), String> {
        let t = cur.trim_matches([' ', '\t']);
        let t = t.strip_prefix('"').unwrap_or(t);
        let t = t.strip_suffix('"').unwrap_or(t);
        if t.is_empty() {
            return Err("an empty expression".into());
        }
        if t.len() > MAX_EXPR {
            return Err("expression too long".into());
        }
        items.push(compile(t)?);
        Ok(())
    };
    for c in s.chars() {
        match c {
            '"' => {
                quoted = !quoted;
                cur.push(c);
            }
            ',' if !quoted => {
                push(&cur)?;
                cur.clear();
            }
            c => cur.push(c),
        }
    }
    push(&cur)?;
    Ok(items)
}

fn side(s: &str) -> Result<Side, String> {
    let (main, except) = match s.find(" EXCEPT ") {
        Some(i) => (&s[..i], Some(&s[i + " EXCEPT ".len()..])),
        None => (s, None),
    };
    // Trimmed as Kamailio trims (`isspace`: a CR of a CRLF file goes).
    let main_t = main.trim();
    let (all, items) = if main_t == "ALL" {
        (true, Vec::new())
    } else {
        (false, list(main_t)?)
    };
    let except = match except {
        Some(e) => list(e.trim_end())?,
        None => Vec::new(),
    };
    Ok(Side { all, items, except })
}

/// One line: `Ok(None)` for a blank or comment line.
fn line(l: &str) -> Result<Option<Rule>, String> {
    let mut quoted = false;
    let mut colon = None;
    let mut end = l.len();
    for (i, c) in l.char_indices() {
        match c {
            '\0' | '\n' => {
                end = i;
                break;
            }
            '#' if !quoted => {
                end = i;
                break;
            }
            '"' => quoted = !quoted,
            ':' if !quoted => colon = Some(i),
            _ => {}
        }
    }
    let l = &l[..end];
    if l.chars().all(|c| c == ' ' || c == '\t') {
        return Ok(None);
    }
    let Some(c) = colon.filter(|&c| c > 0 && c + 1 < l.len()) else {
        return Err("failed to parse line".into());
    };
    Ok(Some(Rule {
        left: side(&l[..c])?,
        right: side(&l[c + 1..])?,
    }))
}

/// Reads a rule file's text; the rules and, per rejected line, its number
/// and why (the line is skipped, as Kamailio skips it).
pub fn parse(text: &str) -> (Vec<Rule>, Vec<(usize, String)>) {
    let mut rules = Vec::new();
    let mut errors = Vec::new();
    let mut n = 0;
    for physical in text.split_inclusive('\n') {
        // What fgets gives: 499 bytes at most per read.
        let b = physical.as_bytes();
        let mut start = 0;
        while start < b.len() {
            let mut stop = (start + MAX_LINE).min(b.len());
            while !physical.is_char_boundary(stop) {
                stop -= 1;
            }
            n += 1;
            match line(&physical[start..stop]) {
                Ok(Some(r)) => rules.push(r),
                Ok(None) => {}
                Err(e) => errors.push((n, e)),
            }
            start = stop;
        }
    }
    (rules, errors)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(l: &str) -> Rule {
        let (r, e) = parse(l);
        assert!(e.is_empty(), "{l}: {e:?}");
        assert_eq!(r.len(), 1, "{l}");
        r.into_iter().next().unwrap()
    }

    #[test]
    fn sides_lists_and_excepts() {
        let r = one(
            "\"^sip:alice@\", \"^sip:bob@\" EXCEPT \"^sip:bob@evil\" : ALL EXCEPT \"closed\"\n",
        );
        assert!(r.left.matches("sip:ALICE@a.com"));
        assert!(r.left.matches("sip:bob@b.com"));
        assert!(!r.left.matches("sip:bob@evil.com"));
        assert!(r.right.matches("sip:x@y"));
        assert!(!r.right.matches("sip:open@closed.com"));
        // Unanchored search, case-insensitive.
        assert!(one("a14\\.b : ALL").left.matches("xxA14.Byy"));
    }

    #[test]
    fn the_separator_is_the_last_colon_outside_quotes() {
        let r = one("^sip:u2@x : ^A2$");
        assert!(r.left.matches("sip:u2@x") && r.right.matches("a2"));
        let r = one("\"a:b\" : \"c#d\"");
        assert!(r.left.matches("a:b") && r.right.matches("c#d"));
    }

    #[test]
    fn what_kamailio_skips_is_skipped() {
        let (r, e) = parse("# comment\n\n   \t\n: x\n\"x\" :\nnocolon\n\"a\",,\"b\" : ALL\n\"[unclosed\" : ALL\nok : ALL\n");
        assert_eq!(r.len(), 1);
        assert_eq!(
            e.iter().map(|x| x.0).collect::<Vec<_>>(),
            vec![4, 5, 6, 7, 8]
        );
        // Spaces do not separate items: one expression `a" "b`.
        let r = one("\"a\" \"b\" : ALL");
        assert!(r.left.matches("a\" \"b") && !r.left.matches("a"));
        // A quoted ALL, or any other case, is an expression.
        assert!(!one("\"ALL\" : ALL").left.matches("x"));
        assert!(one("\"ALL\" : ALL").left.matches("tall"));
        let long = format!("\"{}\" : ALL", "a".repeat(256));
        assert_eq!(parse(&long).0.len(), 0);
        let ok = format!("\"{}\" : ALL", "a".repeat(255));
        assert_eq!(parse(&ok).0.len(), 1);
    }

    #[test]
    fn crlf_files_read_as_lf_ones() {
        let (r, e) = parse(
            "ALL : \"^sip:.*1\\.2\\.3\\.4$\"\r\n\"^a\" EXCEPT \"^ab\" : ALL EXCEPT \"x\"\r\n",
        );
        assert!(e.is_empty(), "{e:?}");
        assert!(r[0].right.matches("sip:u@1.2.3.4"));
        assert!(r[1].left.matches("ac") && !r[1].left.matches("abc"));
        assert!(!r[1].right.matches("x"));
    }

    #[test]
    fn a_long_line_goes_on_as_another() {
        let l = format!("#{}\"^sip:u22@\" : \"^A22$\"\n", "x".repeat(498));
        let (r, _) = parse(&l);
        assert_eq!(r.len(), 1);
        assert!(r[0].left.matches("sip:u22@h"));
    }
}
