//! POSIX basic regular expressions (what Kamailio compiles the trusted
//! table's patterns as, with GNU's extensions) turned into the `regex`
//! crate's syntax.

/// Whether the pattern continues with an expression end: its end, `\)` or
/// `\|` (where a `$` is an anchor).
fn at_end(chars: &[char], i: usize) -> bool {
    match chars.get(i) {
        None => true,
        Some('\\') => matches!(chars.get(i + 1), Some(')' | '|')),
        _ => false,
    }
}

fn push_literal(out: &mut String, c: char) {
    let mut buf = [0u8; 4];
    out.push_str(&regex::escape(c.encode_utf8(&mut buf)));
}

/// Copies a bracket expression starting after its `[` at `chars[*i]`:
/// a backslash inside is a character of the set, `[:class:]` kept.
fn bracket(chars: &[char], i: &mut usize, out: &mut String) -> Result<(), String> {
    out.push('[');
    let mut first = true;
    while let Some(&b) = chars.get(*i) {
        *i += 1;
        if b == ']' && !first {
            out.push(']');
            return Ok(());
        }
        if b == '[' && chars.get(*i) == Some(&':') {
            out.push('[');
            while let Some(&x) = chars.get(*i) {
                *i += 1;
                out.push(x);
                if x == ']' {
                    break;
                }
            }
            first = false;
            continue;
        }
        if b == '^' && first {
            out.push('^');
            continue;
        }
        // What the regex crate reads as class syntax is escaped (a `-`
        // only first: elsewhere it is a range).
        if matches!(b, '\\' | '[' | '&' | '~') || (b == '-' && first) {
            out.push('\\');
        }
        out.push(b);
        first = false;
    }
    Err("unclosed bracket".into())
}

/// A POSIX basic regular expression with GNU's extensions in the `regex`
/// crate's syntax: `\(` `\)` `\{` `\}` `\|` `\+` `\?` are operators and the
/// bare characters literal; `*`, `\+`, `\?`, `\{` at the start of an
/// expression (the pattern's, or after `\(`, `\|` or a leading `^`) are
/// literal; `^` anchors only there and `$` only at an expression's end,
/// literal elsewhere; `\w` `\W` `\s` `\S` `\b` `\B` `\<` `\>` `` \` ``
/// `\'` are GNU's; a backslash before any other character makes it
/// literal; inside brackets a backslash is itself. Back-references are
/// refused.
pub fn bre_to_regex(bre: &str) -> Result<String, String> {
    let chars: Vec<char> = bre.chars().collect();
    let mut out = String::with_capacity(bre.len() + 8);
    let mut i = 0;
    let mut at_start = true;
    while let Some(&c) = chars.get(i) {
        i += 1;
        let mut next_start = false;
        match c {
            '\\' => {
                let Some(&n) = chars.get(i) else {
                    return Err("trailing backslash".into());
                };
                i += 1;
                match n {
                    '(' | '|' => {
                        out.push(n);
                        next_start = true;
                    }
                    ')' => out.push(')'),
                    '+' | '?' | '{' if at_start => push_literal(&mut out, n),
                    '+' | '?' => out.push(n),
                    '{' => {
                        out.push('{');
                        loop {
                            match (chars.get(i), chars.get(i + 1)) {
                                (Some('\\'), Some('}')) => {
                                    out.push('}');
                                    i += 2;
                                    break;
                                }
                                (Some(&d), _) if d.is_ascii_digit() || d == ',' => {
                                    out.push(d);
                                    i += 1;
                                }
                                _ => return Err("bad interval".into()),
                            }
                        }
                    }
                    '1'..='9' => return Err("back-references are not supported".into()),
                    'w' | 'W' | 's' | 'S' | 'b' | 'B' => {
                        out.push('\\');
                        out.push(n);
                    }
                    '<' => out.push_str("\\b{start}"),
                    '>' => out.push_str("\\b{end}"),
                    '`' => out.push_str("\\A"),
                    '\'' => out.push_str("\\z"),
                    _ => push_literal(&mut out, n),
                }
            }
            '[' => bracket(&chars, &mut i, &mut out)?,
            '*' if at_start => push_literal(&mut out, '*'),
            '*' | '.' => out.push(c),
            '^' if at_start => {
                out.push('^');
                next_start = true;
            }
            '$' if at_end(&chars, i) => out.push('$'),
            _ => push_literal(&mut out, c),
        }
        at_start = next_start;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use regex::Regex;

    #[test]
    fn basic_regular_expressions() {
        let re = |b: &str| Regex::new(&bre_to_regex(b).unwrap()).unwrap();
        // `\+` repeats in GNU BRE; a bare `+` is itself.
        assert!(!re("^sip:\\+49").is_match("sip:+49301"));
        assert!(re("^sip:\\+49").is_match("sip::49301"));
        assert!(re("^sip:+49").is_match("sip:+49301"));
        assert!(re("^sip:.*@carrier\\.net").is_match("sip:a@carrier.net"));
        assert!(!re("^sip:.*@carrier\\.net").is_match("sip:a@carrierxnet"));
        assert!(re("a\\(b\\)\\{2\\}c").is_match("abbc"));
        assert!(re("(x)").is_match("(x)"), "bare parentheses are literal");
        assert!(re("a|b").is_match("a|b"));
        assert!(!re("a|b").is_match("a"));
        assert!(re("a\\|b").is_match("b"), "GNU alternation");
        assert!(re("*a").is_match("*a"), "a leading star is literal");
        assert!(re("^*a").is_match("*a"));
        assert!(re("x*").is_match("xxx"));
        assert!(
            re("[\\.]").is_match("\\"),
            "a backslash in brackets is itself"
        );
        assert!(re("[[:digit:]]\\{3\\}").is_match("a123"));
        assert!(re("[^a-c]").is_match("d"));
        assert!(re("[]a]").is_match("]"));
        assert!(bre_to_regex("\\(a\\)\\1").is_err());
        // At an expression's start the repetitions are characters.
        assert!(re("\\+49").is_match("+49"));
        assert!(re("^\\+49").is_match("+491"));
        assert!(!re("^\\+49").is_match("491"));
        assert!(re("\\(^*a\\)").is_match("*a"));
        assert!(re("\\{").is_match("{"));
        // Anchors only where they anchor.
        assert!(re("a^b").is_match("a^b"));
        assert!(re("a$b").is_match("a$b"));
        assert!(re("a$").is_match("xa"));
        assert!(!re("a$").is_match("ax"));
        assert!(re("\\(a$\\)").is_match("a"));
        // GNU escapes, and a backslash before anything else.
        assert!(re("\\<sip\\>").is_match("a sip b"));
        assert!(re("\\d").is_match("d"), "\\d is a d");
        assert!(!re("\\d").is_match("1"));
        assert!(re("\\w\\+").is_match("abc"));
        assert!(bre_to_regex("a\\").is_err());
        assert!(bre_to_regex("[abc").is_err());
        assert!(bre_to_regex("a\\{x\\}").is_err());
    }
}
