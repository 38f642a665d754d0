//! Parameter lists and name-addresses as Kamailio's parsers read them for
//! the `param.*` and `nameaddr.*` transformations: a list ends at a
//! comma, a leading separator makes an empty first parameter, quoted
//! values lose their quotes; a name-address's display name is kept as
//! written (quotes and trailing blanks), its URI is everything when there
//! are no angle brackets.

/// One parameter: name and value (empty when none).
pub type Param = (String, String);

/// The parameters of `s` separated by `sep`; `None` for an empty text.
pub fn params(s: &str, sep: char) -> Option<Vec<Param>> {
    if s.is_empty() {
        return None;
    }
    let b: Vec<char> = s.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    loop {
        // The name.
        let start = i;
        while i < b.len() && b[i] != '=' && b[i] != sep && b[i] != ',' {
            i += 1;
        }
        let name: String = b[start..i].iter().collect::<String>().trim().to_string();
        let mut value = String::new();
        if i < b.len() && b[i] == '=' {
            i += 1;
            while i < b.len() && (b[i] == ' ' || b[i] == '\t') {
                i += 1;
            }
            if i < b.len() && b[i] == '"' {
                i += 1;
                while i < b.len() && b[i] != '"' {
                    if b[i] == '\\' && i + 1 < b.len() {
                        value.push(b[i]);
                        i += 1;
                    }
                    value.push(b[i]);
                    i += 1;
                }
                i += 1;
                while i < b.len() && b[i] != sep && b[i] != ',' {
                    i += 1;
                }
            } else {
                let vs = i;
                while i < b.len() && b[i] != sep && b[i] != ',' {
                    i += 1;
                }
                value = b[vs..i].iter().collect::<String>().trim().to_string();
            }
        }
        out.push((name, value));
        if i < b.len() && b[i] == sep {
            i += 1;
            if i >= b.len() {
                break;
            }
            continue;
        }
        break;
    }
    Some(out)
}

/// A name-address's parts: the display name as written (up to `<`), the
/// URI (inside the brackets, else all of it) and the length up to and
/// including `>` (else all of it). `None` for an empty text or a `<`
/// without its `>`.
pub fn nameaddr(s: &str) -> Option<(&str, &str, usize)> {
    if s.is_empty() {
        return None;
    }
    match s.find('<') {
        Some(lt) => {
            let gt = lt + s[lt..].find('>')?;
            Some((&s[..lt], &s[lt + 1..gt], gt + 1))
        }
        None => Some(("", s, s.len())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_as_kamailio_reads_them() {
        let p = |s: &str| params(s, ';').unwrap();
        assert_eq!(p("a=1;b=2;c").len(), 3);
        assert_eq!(p(";a=1;b=2")[0], (String::new(), String::new()));
        assert_eq!(p("a=1,b=2"), vec![("a".into(), "1".into())]);
        assert_eq!(
            p("x=\"q;v\";a=2"),
            vec![("x".into(), "q;v".into()), ("a".into(), "2".into())]
        );
        assert_eq!(p("b= 3 ;a")[0], ("b".into(), "3".into()));
        assert!(params("", ';').is_none());
        assert_eq!(
            nameaddr("\"A\" <sip:a@b>;tag=1"),
            Some(("\"A\" ", "sip:a@b", 13))
        );
        assert_eq!(nameaddr("sip:c@d;tag=9"), Some(("", "sip:c@d;tag=9", 13)));
        assert_eq!(nameaddr("bad<"), None);
    }
}
