//! Expressions read as Kamailio's PCRE modules read them (PCRE without
//! UTF mode): on bytes, `\d`, `\w`, `\s` and classes ASCII only, a
//! character outside ASCII standing for its UTF-8 bytes (in a class, for
//! each of them), with the usual option bits. Rust's `regex` runs them:
//! look-around, back-references and recursion are refused.

use regex::bytes::{Regex, RegexBuilder};

/// PCRE's compile options a module may set.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Options {
    /// `PCRE_CASELESS` (`(?i)`).
    pub caseless: bool,
    /// `PCRE_MULTILINE` (`(?m)`).
    pub multiline: bool,
    /// `PCRE_DOTALL` (`(?s)`).
    pub dotall: bool,
    /// `PCRE_EXTENDED` (`(?x)`).
    pub extended: bool,
}

/// `pattern` with every byte outside ASCII written `\xNN`, which the
/// byte engine reads as that byte, inside a class too.
pub fn escape_high_bytes(pattern: &[u8]) -> String {
    let mut out = String::with_capacity(pattern.len());
    for &b in pattern {
        if b.is_ascii() {
            out.push(b as char);
        } else {
            out.push_str(&format!("\\x{b:02X}"));
        }
    }
    out
}

/// Compiles `pattern` (bytes, as a PCRE pattern without UTF mode).
pub fn compile(pattern: &[u8], o: Options) -> Result<Regex, String> {
    let p = escape_high_bytes(pattern);
    RegexBuilder::new(&p)
        .unicode(false)
        .case_insensitive(o.caseless)
        .multi_line(o.multiline)
        .dot_matches_new_line(o.dotall)
        .ignore_whitespace(o.extended)
        .build()
        .map_err(|e| {
            format!(
                "compilation of '{}' failed: {e}",
                String::from_utf8_lossy(pattern)
            )
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_and_ascii_classes() {
        let o = Options::default();
        // A class of letters outside ASCII: a set of their bytes.
        let r = compile("^[äöü]".as_bytes(), o).unwrap();
        assert!(r.is_match("über".as_bytes()));
        assert!(!r.is_match(b"uber"));
        // `.` is one byte: "é" is two.
        assert!(!compile(b"^h.llo$", o).unwrap().is_match("héllo".as_bytes()));
        assert!(compile(b"^h..llo$", o)
            .unwrap()
            .is_match("héllo".as_bytes()));
        assert!(!compile(b"^\\d$", o).unwrap().is_match("٣".as_bytes()));
        let ci = Options {
            caseless: true,
            ..o
        };
        assert!(compile(b"^ab", ci).unwrap().is_match(b"ABC"));
        assert!(compile(b"a(b", o).is_err());
        assert!(compile(b"(?=a)", o).is_err());
    }
}
