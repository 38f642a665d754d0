//! Generic `;name=value` parameter lists (URI, Via, name-addr, Event...).

use crate::scan::{eq_no_case, find_byte, find_top_level, trim_lws};

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
        // One pass over the bytes, each item checked when its separator is
        // reached, rather than a search per item. A quote or angle bracket
        // (rare in parameters) changes where items end: from there the
        // general iterator takes over, from the start (the items before
        // were not a match, and it splits them the same way).
        let general = |p: Params<'a>| {
            p.into_iter()
                .find(|p| p.name.eq_ignore_ascii_case(name))
                .map(|p| p.value)
        };
        if self.rest.is_empty() {
            return None;
        }
        if matches!(self.sep, b'=' | b'"' | b'<' | b'>') {
            return general(self);
        }
        let (s, b) = (self.rest, self.rest.as_bytes());
        let (mut start, mut eq, mut i) = (0, None, 0);
        loop {
            // Skip to the next separator, `=`, quote or angle bracket.
            // (`;`, the usual separator, is in its own table: one test
            // per byte.)
            if self.sep == b';' {
                while i < b.len() && !STOP_SEMI[b[i] as usize] {
                    i += 1;
                }
            } else {
                while i < b.len() && b[i] != self.sep && !SPECIAL[b[i] as usize] {
                    i += 1;
                }
            }
            match b.get(i).copied() {
                Some(b'=') => {
                    eq = eq.or(Some(i));
                    i += 1;
                    continue;
                }
                Some(c) if c != self.sep => return general(self),
                _ => {}
            }
            // `s[start..i]` is one item.
            let p = match eq {
                Some(e) => Param {
                    name: trim_lws(&s[start..e]),
                    value: Some(trim_lws(&s[e + 1..i])),
                },
                None => Param {
                    name: trim_lws(&s[start..i]),
                    value: None,
                },
            };
            // The iterator skips an empty item; an item with `=` has a
            // name, even empty.
            if eq_no_case(p.name, name) && (eq.is_some() || !p.name.is_empty()) {
                return Some(p.value);
            }
            if i >= b.len() {
                return None;
            }
            (start, eq, i) = (i + 1, None, i + 1);
        }
    }
}

/// Bytes that stop [`Params::get`]'s skip besides the separator: `=`, and
/// the quote and angle brackets that send it to the general iterator.
static SPECIAL: [bool; 256] = {
    let mut t = [false; 256];
    t[b'=' as usize] = true;
    t[b'"' as usize] = true;
    t[b'<' as usize] = true;
    t[b'>' as usize] = true;
    t
};

/// [`SPECIAL`] and `;`.
static STOP_SEMI: [bool; 256] = {
    let mut t = SPECIAL;
    t[b';' as usize] = true;
    t
};

/// [`SPECIAL`] and `,`: the bytes that end a run of plain bytes in a
/// comma-separated auth-param list (`headers::auth`).
pub(crate) static STOP_COMMA: [bool; 256] = {
    let mut t = SPECIAL;
    t[b',' as usize] = true;
    t
};

impl<'a> Iterator for Params<'a> {
    type Item = Param<'a>;

    fn next(&mut self) -> Option<Param<'a>> {
        loop {
            let (item, _) = next_item(&mut self.rest, self.sep)?;
            if let Some(p) = Param::of_item(item) {
                return Some(p);
            }
        }
    }
}

/// Takes the next item of a `sep`-separated list off the front of `rest`
/// (the separator inside quotes or angle brackets does not count), white
/// space trimmed, and whether a separator followed it. `None` at the end.
#[inline(always)]
pub(crate) fn next_item<'a>(rest: &mut &'a str, sep: u8) -> Option<(&'a str, bool)> {
    let s = *rest;
    if s.is_empty() {
        return None;
    }
    Some(match find_top_level(s, sep) {
        Some(i) => {
            *rest = &s[i + 1..];
            (trim_lws(&s[..i]), true)
        }
        None => {
            *rest = "";
            (trim_lws(s), false)
        }
    })
}

impl<'a> Param<'a> {
    /// One trimmed list item as `name[=value]`; `None` for an empty item.
    #[inline(always)]
    pub(crate) fn of_item(item: &'a str) -> Option<Param<'a>> {
        if item.is_empty() {
            return None;
        }
        Some(match find_byte(item, b'=') {
            Some(eq) => Param {
                name: trim_lws(&item[..eq]),
                value: Some(trim_lws(&item[eq + 1..])),
            },
            None => Param {
                name: item,
                value: None,
            },
        })
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

    /// `get` scans once; it must find what the iterator finds, quotes,
    /// angle brackets, empty items and unusual separators included.
    #[test]
    fn get_agrees_with_the_iterator() {
        let lists = [
            ";branch=z9hG4bK1 ; rport ;x = \"a;b\";tag=2",
            "tag=1;;tag=2; =3;=4",
            "a=<x;tag=1>;tag=2",
            "x=\"q\\\";tag=1\";tag=3",
            "lr",
            "",
            " ; ",
            "a=b=c;d",
        ];
        for list in lists {
            for sep in [b';', b'&', b'=', b'"'] {
                for name in ["tag", "TAG", "lr", "x", "a", "", "d", "rport"] {
                    let p = Params::with_separator(list, sep);
                    let want = p.clone().find(|q| q.name.eq_ignore_ascii_case(name));
                    assert_eq!(p.get(name), want.map(|q| q.value), "{list:?} {sep} {name}");
                }
            }
        }
    }
}
