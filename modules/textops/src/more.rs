//! The rest of Kamailio's textops functions: header substitutions and
//! searches by name (`subst_hf`, `search_hf`), removals by expression or
//! index (`remove_hf_exp`, `remove_hf_idx`, `remove_hf_re_pv`,
//! `is_present_hf_pv`), plain-string replacements (`replace_str`,
//! `replace_body_str`, `replace_hdrs_str`, `replace_body_atonce`), the
//! original Request-URI as a header (`append_urihf`), string helpers
//! (`str_find`, `str_ifind`, `in_list_prefix`, `regex_substring`),
//! `is_privacy` and `is_audio_on_hold`.

use super::{bool_rc, current_body, record, remove_where, set_current_body, Subst};
use regex::bytes::{Regex, RegexBuilder};
use sr_sdk::fixup::{self, Arg, Fixed, FixupEnv};
use sr_sdk::prelude::*;

/// Which of the headers of a name (`a`ll, `f`irst, `l`ast).
fn which<T>(all: Vec<T>, flags: &str) -> Vec<T> {
    let mut all = all;
    match flags.chars().next() {
        Some('f') => all.into_iter().take(1).collect(),
        Some('l') => all.pop().into_iter().collect(),
        _ => all,
    }
}

/// The value spans (start, end) of the headers named `name` (the parsed
/// value's place in the message).
fn value_spans(msg: &SipMsg, name: &str) -> Vec<(usize, usize)> {
    msg.msg()
        .headers_by_name(name)
        .map(|h| {
            let vs = h.value_start as usize;
            (vs, vs + h.value.len())
        })
        .collect()
}

fn subst_hf(ctx: &mut Ctx<'_>, name: &str, s: &Subst, flags: &str) -> i32 {
    let spans = which(value_spans(ctx.msg, name), flags);
    let raw = ctx.msg.msg().raw().to_vec();
    let mut edits = Vec::new();
    for (vs, ve) in spans {
        let (out, n) = s.apply(ctx, &raw[vs..ve]);
        if n > 0 {
            edits.push((vs, ve, out));
        }
    }
    if edits.is_empty() {
        return -1;
    }
    record(ctx.msg, edits);
    1
}

fn search_hf(ctx: &mut Ctx<'_>, name: &str, re: &Regex, flags: &str) -> i32 {
    let spans = which(value_spans(ctx.msg, name), flags);
    let raw = ctx.msg.msg().raw();
    bool_rc(spans.iter().any(|&(vs, ve)| re.is_match(&raw[vs..ve])))
}

fn replace_all_str(
    input: &[u8],
    what: &[u8],
    with: &[u8],
    all: bool,
) -> Option<Vec<(usize, usize, Vec<u8>)>> {
    if what.is_empty() {
        return None;
    }
    let mut out = Vec::new();
    let mut i = 0;
    while let Some(p) = input[i..].windows(what.len()).position(|w| w == what) {
        out.push((i + p, i + p + what.len(), with.to_vec()));
        i += p + what.len();
        if !all || i > input.len() {
            break;
        }
    }
    (!out.is_empty()).then_some(out)
}

/// `replace_str` (`scope` 0: headers and body), `replace_hdrs_str` (1),
/// `replace_body_str` (2).
fn replace_str(ctx: &mut Ctx<'_>, what: &str, with: &str, mode: &str, scope: u8) -> i32 {
    let all = mode.starts_with('a');
    let m = ctx.msg.msg();
    let raw = m.raw();
    let start = m.headers_start() as usize;
    let body = m.body_start() as usize;
    let (from, to) = match scope {
        // replace_hdrs_str (1) covers the body too in Kamailio 5.6.
        2 => (body, raw.len()),
        _ => (start, raw.len()),
    };
    let Some(found) = replace_all_str(&raw[from..to], what.as_bytes(), with.as_bytes(), all) else {
        return -1;
    };
    let edits = found
        .into_iter()
        .map(|(s, e, t)| (s + from, e + from, t))
        .collect();
    record(ctx.msg, edits);
    1
}

fn replace_body_atonce(ctx: &mut Ctx<'_>, re: &Regex, txt: &str) -> i32 {
    let (body, ct) = current_body(ctx.msg);
    if !re.is_match(&body) {
        return -1;
    }
    let out = re.replace_all(&body, regex::bytes::NoExpand(txt.as_bytes()));
    let out = out.into_owned();
    set_current_body(ctx.msg, &out, ct);
    1
}

fn append_urihf(ctx: &mut Ctx<'_>, prefix: &str, suffix: &str) -> i32 {
    let uri = ctx.msg.ruri().to_string();
    let text = format!("{prefix}{uri}{suffix}");
    let at = ctx.msg.msg().headers_end();
    ctx.msg.edits.insert(at, text.as_bytes());
    1
}

fn is_privacy(ctx: &mut Ctx<'_>, what: &str) -> i32 {
    let m = ctx.msg.msg();
    let found = m
        .headers_by_name("Privacy")
        .flat_map(|h| h.value.split(';').map(str::trim).collect::<Vec<_>>())
        .any(|v| v.eq_ignore_ascii_case(what));
    bool_rc(found)
}

/// `regex_substring(text, re, index, mcount, dst)`: group `index` (0 is
/// the whole match) of the first match into `dst`, `mcount` being how
/// many groups are captured (so it must be above `index`), as POSIX
/// `regexec` takes them in Kamailio.
fn regex_substring(
    ctx: &mut Ctx<'_>,
    text: &str,
    re: &str,
    index: i64,
    mcount: i64,
    dst: &Fixed,
) -> i32 {
    let Ok(re) = regex::Regex::new(re) else {
        lm_err!("textops: bad regular expression '{re}'");
        return -1;
    };
    if index < 0 || mcount <= index {
        return -1;
    }
    let Some(g) = re.captures(text).and_then(|c| c.get(index as usize)) else {
        return -1;
    };
    let Fixed::Pv(pv) = dst else {
        return -1;
    };
    match pv.assign(ctx, Value::Str(g.as_str().to_string().into())) {
        Ok(()) => 1,
        Err(_) => -1,
    }
}

/// Whether the SDP puts audio on hold: 1 when a connection address is
/// 0.0.0.0 (RFC 2543), 2 when the stream is `sendonly` or `inactive`.
fn is_audio_on_hold(ctx: &mut Ctx<'_>) -> i32 {
    let (body, _) = current_body(ctx.msg);
    let text = String::from_utf8_lossy(&body);
    let mut session_c = None;
    let mut session_dir = None;
    let mut in_audio = false;
    let mut seen_media = false;
    let mut media_c = None;
    let mut media_dir = None;
    let mut result = -1;
    let verdict = |c: Option<&str>, dir: Option<&str>| -> Option<i32> {
        if c.is_some_and(|c| c.ends_with(" 0.0.0.0")) {
            return Some(1);
        }
        dir.filter(|d| *d == "sendonly" || *d == "inactive")
            .map(|_| 2)
    };
    for line in text.lines() {
        let line = line.trim_end();
        if let Some(m) = line.strip_prefix("m=") {
            if in_audio {
                if let Some(v) = verdict(media_c.or(session_c), media_dir.or(session_dir)) {
                    return v;
                }
            }
            in_audio = m.starts_with("audio");
            seen_media = true;
            media_c = None;
            media_dir = None;
            continue;
        }
        let dir = line
            .strip_prefix("a=")
            .filter(|a| matches!(*a, "sendonly" | "recvonly" | "inactive" | "sendrecv"));
        match (seen_media, line.strip_prefix("c="), dir) {
            (false, Some(c), _) => session_c = Some(c),
            (true, Some(c), _) => media_c = Some(c),
            (false, None, Some(d)) => session_dir = Some(d),
            (true, None, Some(d)) => media_dir = Some(d),
            _ => {}
        }
    }
    if in_audio {
        if let Some(v) = verdict(media_c.or(session_c), media_dir.or(session_dir)) {
            result = v;
        }
    }
    result
}

/// Adds the functions to the module.
pub fn add(def: ModuleDef) -> ModuleDef {
    let rt = RouteType::REQUEST | RouteType::ONREPLY | RouteType::FAILURE | RouteType::BRANCH;
    let any = RouteType::ANY;
    let spve = Some(fixup::f(fixup::spve));
    let subst_hf_fix = Some(fixup::f(|env, i, a| {
        if i == 1 {
            let s = match a {
                Arg::Str(s) => s.clone(),
                _ => return Err("subst_hf: the expression must be a constant".into()),
            };
            Subst::compile(Some(env), &s, false).map(|s| Fixed::Custom(std::sync::Arc::new(s)))
        } else {
            fixup::spve(env, i, a)
        }
    }));
    let re_fix = |i_re: usize| Some(fixup::f(if i_re == 1 { re_second } else { re_first }));
    def.cmd("subst_hf", 3, rt, subst_hf_fix, |ctx, p| {
        let name = p[0].str(ctx).into_owned();
        let flags = p[2].str(ctx).into_owned();
        let s = p[1].custom::<Subst>().expect("subst_hf fixup");
        subst_hf(ctx, &name, s, &flags)
    })
    .cmd("search_hf", 3, rt, re_fix(1), |ctx, p| {
        let name = p[0].str(ctx).into_owned();
        let flags = p[2].str(ctx).into_owned();
        let re = p[1].custom::<Regex>().expect("regex fixup").clone();
        search_hf(ctx, &name, &re, &flags)
    })
    .cmd("is_present_hf_pv", 1, rt, spve.clone(), |ctx, p| {
        let name = p[0].str(ctx).into_owned();
        let found = ctx.msg.msg().headers_by_name(name.trim()).next().is_some();
        bool_rc(found)
    })
    .cmd("remove_hf_re_pv", 1, any, spve.clone(), |ctx, p| {
        let re = p[0].str(ctx).into_owned();
        match RegexBuilder::new(&re).case_insensitive(true).build() {
            Ok(re) => remove_where(ctx, |h| re.is_match(h.name_str.as_bytes())),
            Err(e) => {
                lm_err!("textops: bad regular expression '{re}': {e}");
                -1
            }
        }
    })
    .pipe(|d| {
        // (remove_hf_exp_pv is Kamailio's name for the same with variables,
        // which remove_hf_exp takes here too.)
        let mut d = d;
        for name in ["remove_hf_exp", "remove_hf_exp_pv"] {
            d = d.cmd(name, 2, any, spve.clone(), |ctx, p| {
                let (m, s) = (p[0].str(ctx).into_owned(), p[1].str(ctx).into_owned());
                let build = |r: &str| RegexBuilder::new(r).case_insensitive(true).build();
                match (build(&m), build(&s)) {
                    (Ok(m), Ok(s)) => remove_where(ctx, |h| {
                        let n = h.name_str.as_bytes();
                        m.is_match(n) && !s.is_match(n)
                    }),
                    _ => -1,
                }
            });
        }
        d
    })
    .cmd("remove_hf_idx", 2, any, spve.clone(), |ctx, p| {
        let name = p[0].str(ctx).into_owned();
        let idx = p[1].int(ctx);
        let spans: Vec<(u32, u32)> = ctx
            .msg
            .msg()
            .headers_by_name(name.trim())
            .map(|h| (h.start, h.end))
            .collect();
        let k = if idx < 0 {
            spans.len() as i64 + idx
        } else {
            idx
        };
        match usize::try_from(k).ok().and_then(|k| spans.get(k)) {
            Some(&(s, e)) => {
                ctx.msg.edits.delete(s, e);
                1
            }
            // Kamailio answers 2 for an index past the headers.
            None => 2,
        }
    })
    .cmd("replace_str", 3, any, spve.clone(), |ctx, p| {
        let (a, b, m) = (
            p[0].str(ctx).into_owned(),
            p[1].str(ctx).into_owned(),
            p[2].str(ctx).into_owned(),
        );
        replace_str(ctx, &a, &b, &m, 0)
    })
    .cmd("replace_hdrs_str", 3, any, spve.clone(), |ctx, p| {
        let (a, b, m) = (
            p[0].str(ctx).into_owned(),
            p[1].str(ctx).into_owned(),
            p[2].str(ctx).into_owned(),
        );
        replace_str(ctx, &a, &b, &m, 1)
    })
    .cmd("replace_body_str", 3, any, spve.clone(), |ctx, p| {
        let (a, b, m) = (
            p[0].str(ctx).into_owned(),
            p[1].str(ctx).into_owned(),
            p[2].str(ctx).into_owned(),
        );
        replace_str(ctx, &a, &b, &m, 2)
    })
    .cmd("replace_body_atonce", 2, rt, re_fix(0), |ctx, p| {
        let re = p[0].custom::<Regex>().expect("regex fixup").clone();
        let txt = p[1].str(ctx).into_owned();
        replace_body_atonce(ctx, &re, &txt)
    })
    .cmd(
        "append_urihf",
        2,
        RouteType::REQUEST | RouteType::FAILURE | RouteType::BRANCH,
        spve.clone(),
        |ctx, p| {
            let (a, b) = (p[0].str(ctx).into_owned(), p[1].str(ctx).into_owned());
            append_urihf(ctx, &a, &b)
        },
    )
    .cmd("is_privacy", 1, rt, spve.clone(), |ctx, p| {
        let w = p[0].str(ctx).into_owned();
        is_privacy(ctx, &w)
    })
    .cmd("str_find", 2, any, spve.clone(), |ctx, p| {
        let (a, b) = (p[0].str(ctx).into_owned(), p[1].str(ctx).into_owned());
        a.find(&b).map_or(-1, |i| i as i32 + 1)
    })
    .cmd("str_ifind", 2, any, spve.clone(), |ctx, p| {
        let (a, b) = (
            p[0].str(ctx).to_ascii_lowercase(),
            p[1].str(ctx).to_ascii_lowercase(),
        );
        a.find(&b).map_or(-1, |i| i as i32 + 1)
    })
    .cmd("in_list_prefix", 3, any, spve.clone(), |ctx, p| {
        let (subj, list, sep) = (
            p[0].str(ctx).into_owned(),
            p[1].str(ctx).into_owned(),
            p[2].str(ctx).into_owned(),
        );
        let sep = sep.chars().next().unwrap_or(',');
        bool_rc(
            list.split(sep)
                .map(str::trim)
                .any(|i| !i.is_empty() && subj.starts_with(i)),
        )
    })
    .cmd(
        "regex_substring",
        5,
        any,
        Some(fixup::f(|env, i, a| {
            if i == 4 {
                fixup::pvar(env, i, a)
            } else {
                fixup::spve(env, i, a)
            }
        })),
        |ctx, p| {
            let (t, r) = (p[0].str(ctx).into_owned(), p[1].str(ctx).into_owned());
            let (idx, cnt) = (p[2].int(ctx), p[3].int(ctx));
            regex_substring(ctx, &t, &r, idx, cnt, &p[4])
        },
    )
    .cmd("is_audio_on_hold", 0, rt, None, |ctx, _| {
        is_audio_on_hold(ctx)
    })
}

fn re_first(env: &dyn FixupEnv, i: usize, a: &Arg) -> Result<Fixed, String> {
    if i == 0 {
        compile_re(a)
    } else {
        fixup::spve(env, i, a)
    }
}

fn re_second(env: &dyn FixupEnv, i: usize, a: &Arg) -> Result<Fixed, String> {
    if i == 1 {
        compile_re(a)
    } else {
        fixup::spve(env, i, a)
    }
}

fn compile_re(a: &Arg) -> Result<Fixed, String> {
    let s = match a {
        Arg::Str(s) => s.clone(),
        _ => return Err("the regular expression must be a constant".into()),
    };
    let re = RegexBuilder::new(&s)
        .case_insensitive(true)
        .multi_line(true)
        .build()
        .map_err(|e| format!("bad regular expression '{s}': {e}"))?;
    Ok(Fixed::Custom(std::sync::Arc::new(re)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn string_replacements() {
        let r = replace_all_str(b"a-a-a", b"a", b"b", true).unwrap();
        assert_eq!(r.len(), 3);
        let r = replace_all_str(b"a-a-a", b"a", b"b", false).unwrap();
        assert_eq!(r, vec![(0, 1, b"b".to_vec())]);
        assert!(replace_all_str(b"xyz", b"a", b"b", true).is_none());
        assert_eq!(which(vec![1, 2, 3], "l"), vec![3]);
        assert_eq!(which(vec![1, 2, 3], "f"), vec![1]);
    }
}
