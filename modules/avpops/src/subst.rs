//! `avp_subst(src[/dst][/flags], "/re/repl/flags")`: sed-like
//! substitutions on AVP values, as Kamailio's avpops does them.

use sr_sdk::prelude::*;

/// A parsed `/re/repl/flags` expression.
#[derive(Debug)]
pub struct Subst {
    re: regex::Regex,
    repl: String,
    global: bool,
}

impl Subst {
    /// Parses `/re/repl/flags` (any delimiter; flags `g` and `i`).
    pub fn parse(s: &str) -> Result<Subst, String> {
        let mut chars = s.chars();
        let d = chars.next().ok_or("an empty substitution")?;
        let parts = split_unescaped(chars.as_str(), d);
        let [re, repl, flags] = parts.as_slice() else {
            return Err(format!("'{s}' is not {d}re{d}repl{d}flags"));
        };
        let mut pat = String::new();
        if flags.contains('i') {
            pat.push_str("(?i)");
        }
        pat.push_str(re);
        let re = regex::Regex::new(&pat).map_err(|e| format!("bad expression '{re}': {e}"))?;
        // \0..\9 as the regex crate's ${0}..${9}, `$` kept literal.
        let mut out = String::new();
        let mut it = repl.chars().peekable();
        while let Some(c) = it.next() {
            match c {
                '\\' => match it.next() {
                    Some(n) if n.is_ascii_digit() => out.push_str(&format!("${{{n}}}")),
                    Some(o) => out.push(o),
                    None => out.push('\\'),
                },
                '$' => out.push_str("$$"),
                c => out.push(c),
            }
        }
        Ok(Subst {
            re,
            repl: out,
            global: flags.contains('g'),
        })
    }

    /// The substituted text, `None` when the expression does not match.
    pub fn apply(&self, text: &str) -> Option<String> {
        if !self.re.is_match(text) {
            return None;
        }
        Some(if self.global {
            self.re.replace_all(text, self.repl.as_str()).into_owned()
        } else {
            self.re.replace(text, self.repl.as_str()).into_owned()
        })
    }
}

fn split_unescaped(s: &str, d: char) -> Vec<String> {
    let mut parts: Vec<String> = vec![String::new()];
    let mut cur = String::new();
    let mut esc = false;
    for c in s.chars() {
        if esc {
            if c != d {
                cur.push('\\');
            }
            cur.push(c);
            esc = false;
        } else if c == '\\' {
            esc = true;
        } else if c == d {
            parts.push(std::mem::take(&mut cur));
        } else {
            cur.push(c);
        }
    }
    parts.push(cur);
    // The first element was a placeholder for the text before the first
    // delimiter, which the caller stripped.
    parts.remove(0);
    parts
}

/// The AVPs of `src[/dst][/flags]`: source, destination (the source when
/// none), flags.
pub fn avps(spec: &str) -> Option<(String, String, String)> {
    let spec = spec.trim();
    let end = spec.find(')')?;
    let (src, _) = crate::names::spec(&spec[..=end])?;
    let rest = spec[end + 1..].trim_start_matches('/');
    if rest.starts_with("$avp(") {
        let (dst, flags) = crate::names::spec(rest)?;
        Some((src, dst, flags))
    } else {
        Some((src.clone(), src, rest.to_string()))
    }
}

/// `avp_subst`: each value of the source, newest first, until one is
/// changed (all with `g`): the result goes to the destination, or takes
/// the value's place in the source (removed, and pushed as the newest).
pub fn run(ctx: &mut Ctx<'_>, spec: &str, expr: &str) -> i32 {
    let Some((src, dst, flags)) = avps(spec) else {
        lm_err!("avp_subst: bad AVPs '{spec}'");
        return -1;
    };
    let subst = match Subst::parse(expr) {
        Ok(s) => s,
        Err(e) => {
            lm_err!("avp_subst: {e}");
            return -1;
        }
    };
    let values: Vec<String> = ctx
        .msg
        .avps
        .all(&src)
        .map(|v| v.as_str().into_owned())
        .collect();
    let mut done = false;
    for (i, v) in values.iter().enumerate() {
        let Some(new) = subst.apply(v) else {
            continue;
        };
        if src == dst {
            remove_nth(ctx, &src, i, values.len());
        }
        ctx.msg.avps.push(&dst, Value::str(new));
        done = true;
        if !flags.contains('g') {
            break;
        }
    }
    if done {
        1
    } else {
        -1
    }
}

/// Removes the value of `name` that was the `i`-th newest of `count`
/// before this call began changing it.
fn remove_nth(ctx: &mut Ctx<'_>, name: &str, i: usize, count: usize) {
    // Values already replaced were pushed on top; the original i-th
    // newest is the (count - 1 - i)-th oldest still.
    let all: Vec<Value<'static>> = ctx.msg.avps.all(name).cloned().collect();
    let total = all.len();
    let from_oldest = count - 1 - i;
    let idx_newest = total - 1 - from_oldest;
    let mut keep: Vec<Value<'static>> = all;
    keep.remove(idx_newest);
    ctx.msg.avps.remove_all(name);
    for v in keep.into_iter().rev() {
        ctx.msg.avps.push(name, v);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn substitutions() {
        let s = Subst::parse("/hello/bye/i").unwrap();
        assert_eq!(s.apply("Hello World").as_deref(), Some("bye World"));
        assert_eq!(s.apply("nothing"), None);
        let g = Subst::parse("/l/L/g").unwrap();
        assert_eq!(g.apply("Hello World").as_deref(), Some("HeLLo WorLd"));
        let r = Subst::parse("#(a+)b#x\\1y#").unwrap();
        assert_eq!(r.apply("aab").as_deref(), Some("xaay"));
        assert!(Subst::parse("/a/b").is_err());
        assert_eq!(
            avps("$avp(s)/$avp(d)/g"),
            Some(("s".into(), "d".into(), "g".into()))
        );
        assert_eq!(
            avps("$avp(s)/g"),
            Some(("s".into(), "s".into(), "g".into()))
        );
        assert_eq!(
            avps("$avp(s)"),
            Some(("s".into(), "s".into(), String::new()))
        );
    }
}
