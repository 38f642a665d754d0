//! Shell wildcard matching as C's `fnmatch(pattern, string, 0)` does it
//! (match operator 2 of a dialplan rule): `*`, `?`, bracket expressions
//! with ranges, negation (`!` or `^`) and character classes, and `\` to
//! quote the next character. With no flags `*` and `?` also match `/` and
//! a leading `.`. Bytes, as in the C locale Kamailio runs in.

/// Whether `name` matches the wildcard `pattern`.
pub fn fnmatch(pattern: &[u8], name: &[u8]) -> bool {
    let (mut p, mut n) = (0usize, 0usize);
    // Where to resume after the last `*`: pattern after it, name position.
    let mut star: Option<(usize, usize)> = None;
    loop {
        if p < pattern.len() {
            match single(pattern, p, name.get(n).copied()) {
                Step::Star => {
                    // Collapse runs of `*`.
                    while p < pattern.len() && pattern[p] == b'*' {
                        p += 1;
                    }
                    star = Some((p, n));
                    continue;
                }
                Step::Matched(next) => {
                    p = next;
                    n += 1;
                    continue;
                }
                Step::Failed => {}
            }
        } else if n == name.len() {
            return true;
        }
        // Mismatch: let the last `*` take one more byte.
        match star {
            Some((sp, sn)) if sn < name.len() => {
                star = Some((sp, sn + 1));
                p = sp;
                n = sn + 1;
            }
            _ => return false,
        }
    }
}

enum Step {
    /// A `*` at this position.
    Star,
    /// The pattern element matched the byte; the next element starts here.
    Matched(usize),
    Failed,
}

/// Matches the pattern element at `p` against one byte of the name.
fn single(pat: &[u8], p: usize, c: Option<u8>) -> Step {
    match pat[p] {
        b'*' => Step::Star,
        b'?' => match c {
            Some(_) => Step::Matched(p + 1),
            None => Step::Failed,
        },
        b'\\' => match (pat.get(p + 1), c) {
            // A trailing backslash matches nothing (as glibc).
            (Some(&q), Some(c)) if q == c => Step::Matched(p + 2),
            _ => Step::Failed,
        },
        b'[' => match (bracket(pat, p), c) {
            (Some((set_matches, end)), Some(c)) => {
                if set_matches(c) {
                    Step::Matched(end)
                } else {
                    Step::Failed
                }
            }
            // No closing `]`: the `[` is an ordinary character.
            (None, Some(b'[')) => Step::Matched(p + 1),
            _ => Step::Failed,
        },
        lit => match c {
            Some(c) if c == lit => Step::Matched(p + 1),
            _ => Step::Failed,
        },
    }
}

/// Parses the bracket expression opening at `open`: a predicate for one
/// byte and the index after the closing `]`, or `None` when it has none.
#[allow(clippy::type_complexity)]
fn bracket(pat: &[u8], open: usize) -> Option<(Box<dyn Fn(u8) -> bool + '_>, usize)> {
    let mut i = open + 1;
    let negate = matches!(pat.get(i), Some(b'!') | Some(b'^'));
    if negate {
        i += 1;
    }
    let start = i;
    let mut items: Vec<Item> = Vec::new();
    loop {
        let &b = pat.get(i)?;
        if b == b']' && i > start {
            i += 1;
            break;
        }
        if b == b'[' && pat.get(i + 1) == Some(&b':') {
            let rest = &pat[i + 2..];
            if let Some(end) = rest.windows(2).position(|w| w == b":]") {
                let name = &rest[..end];
                items.push(Item::Class(class_of(name)?));
                i += 2 + end + 2;
                continue;
            }
        }
        let (lo, next) = bracket_char(pat, i)?;
        if pat.get(next) == Some(&b'-') && pat.get(next + 1).is_some_and(|&c| c != b']') {
            let (hi, after) = bracket_char(pat, next + 1)?;
            items.push(Item::Range(lo, hi));
            i = after;
        } else {
            items.push(Item::Range(lo, lo));
            i = next;
        }
    }
    let pred = move |c: u8| {
        let hit = items.iter().any(|it| match it {
            Item::Range(lo, hi) => (*lo..=*hi).contains(&c),
            Item::Class(f) => f(c),
        });
        hit != negate
    };
    Some((Box::new(pred), i))
}

enum Item {
    Range(u8, u8),
    Class(fn(u8) -> bool),
}

/// One character of a bracket expression, with `\` quoting.
fn bracket_char(pat: &[u8], i: usize) -> Option<(u8, usize)> {
    match pat.get(i)? {
        b'\\' => pat.get(i + 1).map(|&c| (c, i + 2)),
        &c => Some((c, i + 1)),
    }
}

fn class_of(name: &[u8]) -> Option<fn(u8) -> bool> {
    Some(match name {
        b"alnum" => |c: u8| c.is_ascii_alphanumeric(),
        b"alpha" => |c: u8| c.is_ascii_alphabetic(),
        b"blank" => |c: u8| c == b' ' || c == b'\t',
        b"cntrl" => |c: u8| c.is_ascii_control(),
        b"digit" => |c: u8| c.is_ascii_digit(),
        b"graph" => |c: u8| c.is_ascii_graphic(),
        b"lower" => |c: u8| c.is_ascii_lowercase(),
        b"print" => |c: u8| c.is_ascii_graphic() || c == b' ',
        b"punct" => |c: u8| c.is_ascii_punctuation(),
        b"space" => |c: u8| c.is_ascii_whitespace() || c == 0x0b,
        b"upper" => |c: u8| c.is_ascii_uppercase(),
        b"xdigit" => |c: u8| c.is_ascii_hexdigit(),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::fnmatch;

    fn m(p: &str, s: &str) -> bool {
        fnmatch(p.as_bytes(), s.as_bytes())
    }

    #[test]
    fn wildcards() {
        assert!(m("0049*", "004930123"));
        assert!(m("0049*", "0049"));
        assert!(!m("0049*", "0048"));
        assert!(m("*", ""));
        assert!(m("a*b*c", "axxbyyc"));
        assert!(!m("a*b*c", "axxbyy"));
        assert!(m("??", "ab"));
        assert!(!m("??", "abc"));
        assert!(m("*/x", "a/b/x"));
        assert!(m("*", ".hidden"));
        assert!(m("a**b", "ab"));
    }

    #[test]
    fn brackets() {
        assert!(m("[0-9][0-9]", "42"));
        assert!(!m("[0-9][0-9]", "4a"));
        assert!(m("[!0-9]x", "ax"));
        assert!(m("[^0-9]x", "ax"));
        assert!(!m("[!0-9]x", "1x"));
        assert!(m("[]]", "]"));
        assert!(m("[a-]", "-"));
        assert!(m("[[:digit:]]*", "7abc"));
        assert!(!m("[[:alpha:]]", "7"));
        assert!(m("[", "["));
        assert!(m("[ab", "[ab"));
        assert!(!m("[[:bogus:]]", "a"));
    }

    #[test]
    fn escapes() {
        assert!(m("\\*", "*"));
        assert!(!m("\\*", "a"));
        assert!(!m("a\\", "a\\"));
        assert!(m("[\\]]", "]"));
    }
}
