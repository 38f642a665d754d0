//! A script's command text to Redis arguments, as hiredis' format reads
//! it (`redis_cmd("srv", "HMGET %s %s", "$var(k)", "f", "r")`): spaces
//! separate arguments (several count as one; tabs do not separate), `%s`
//! puts the next argument in the current one whole (spaces included, an
//! empty one still makes an argument), `%%` is a `%`, a `%` at the very
//! end is kept.
//!
//! hiredis also reads printf conversions (`%d`, `%b`, ...) with C
//! arguments; the script only passes strings, so siprouter refuses them
//! (the command fails) rather than read what C would.

/// The arguments of `fmt` with `args` in its `%s` places.
pub fn format(fmt: &str, args: &[&str]) -> Result<Vec<Vec<u8>>, String> {
    let b = fmt.as_bytes();
    let mut out = Vec::new();
    let mut cur = Vec::new();
    let mut touched = false;
    let mut next = args.iter();
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        if c != b'%' || i + 1 == b.len() {
            if c == b' ' {
                if touched {
                    out.push(std::mem::take(&mut cur));
                    touched = false;
                }
            } else {
                cur.push(c);
                touched = true;
            }
            i += 1;
            continue;
        }
        match b[i + 1] {
            b's' => {
                let a = next
                    .next()
                    .ok_or_else(|| format!("more %s than arguments in [{fmt}]"))?;
                cur.extend_from_slice(a.as_bytes());
            }
            b'%' => cur.push(b'%'),
            other => {
                return Err(format!(
                    "unsupported conversion %{} in [{fmt}]",
                    char::from(other)
                ))
            }
        }
        touched = true;
        i += 2;
    }
    if touched {
        out.push(cur);
    }
    if out.is_empty() {
        return Err("empty command".into());
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f(fmt: &str, args: &[&str]) -> Vec<String> {
        format(fmt, args)
            .unwrap()
            .into_iter()
            .map(|a| String::from_utf8(a).unwrap())
            .collect()
    }

    #[test]
    fn spaces_split_and_percent_s_keeps_whole() {
        assert_eq!(f("SET foo bar", &[]), ["SET", "foo", "bar"]);
        assert_eq!(f("  GET   foo  ", &[]), ["GET", "foo"]);
        assert_eq!(f("GET %s", &["foo bar"]), ["GET", "foo bar"]);
        assert_eq!(f("SET k:%s %s", &["a", ""]), ["SET", "k:a", ""]);
        assert_eq!(f("SET a\tb c", &[]), ["SET", "a\tb", "c"]);
        assert_eq!(f("SET 100%% x%", &[]), ["SET", "100%", "x%"]);
        // Extra arguments are left unused.
        assert_eq!(f("PING", &["x"]), ["PING"]);
    }

    #[test]
    fn what_cannot_be_formatted_is_an_error() {
        assert!(format("GET %s %s", &["a"]).is_err());
        assert!(format("INCRBY k %d", &["1"]).is_err());
        assert!(format("   ", &[]).is_err());
        assert!(format("", &[]).is_err());
    }
}
