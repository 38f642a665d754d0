//! Generic `;name=value` parameter lists (URI, Via, name-addr, Event...).

use crate::scan::{find_byte, find_top_level, trim_lws};

/// One parameter: its name and raw value (quotes kept, if any).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Param<'a> {
    /// Parameter name as written.
    pub name: &'a str,
    /// Value as written, `None` when the parameter has no `=`.
    pub value: Option<&'a str>,
}

/// Iterator over a parameter list such as `;branch=z9hG4bK1;rport`.
///
/// The input may start with `;` or directly with the first name. Separators
/// inside quoted strings are ignored; white space around `;` and `=` is
/// allowed, as the grammar's SEMI and EQUAL allow it.
#[derive(Debug, Clone)]
pub struct Params<'a> {
    rest: &'a str,
    sep: u8,
}

impl<'a> Params<'a> {
    /// Parameters separated by `;`.
    pub fn new(s: &'a str) -> Self {
        Params { rest: s, sep: b';' }
    }

    /// Parameters separated by `sep` (for example `&` in URI headers).
    pub fn with_separator(s: &'a str, sep: u8) -> Self {
        Params { rest: s, sep }
    }

    /// Finds a parameter by name, case-insensitively.
    ///
    /// `Some(None)` means present without a value.
    pub fn get(self, name: &str) -> Option<Option<&'a str>> {
        self.into_iter()
            .find(|p| p.name.eq_ignore_ascii_case(name))
            .map(|p| p.value)
    }
}

impl<'a> Iterator for Params<'a> {
    type Item = Param<'a>;

    fn next(&mut self) -> Option<Param<'a>> {
        loop {
            let s = self.rest;
            if s.is_empty() {
                return None;
            }
            let (item, rest) = match find_top_level(s, self.sep) {
                Some(i) => (&s[..i], &s[i + 1..]),
                None => (s, ""),
            };
            self.rest = rest;
            let item = trim_lws(item);
            if item.is_empty() {
                continue;
            }
            return Some(match find_byte(item, b'=') {
                Some(eq) => Param {
                    name: trim_lws(&item[..eq]),
                    value: Some(trim_lws(&item[eq + 1..])),
                },
                None => Param {
                    name: item,
                    value: None,
                },
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iterates_and_finds() {
        let p: Vec<_> = Params::new(";branch=z9hG4bK1 ; rport ;x = \"a;b\"").collect();
        assert_eq!(p.len(), 3);
        assert_eq!(p[0].name, "branch");
        assert_eq!(p[0].value, Some("z9hG4bK1"));
        assert_eq!(p[1].value, None);
        assert_eq!(p[2].value, Some("\"a;b\""));
        assert_eq!(Params::new(";RPORT").get("rport"), Some(None));
        assert_eq!(Params::new("a=1").get("b"), None);
    }
}
