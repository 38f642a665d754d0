//! Module `sdpops`: SDP checks and edits from the script (Kamailio's
//! sdpops): codecs removed, kept or looked for by id or name, media
//! streams and transports, lines by prefix, `$sdp(body)` and
//! `$sdp(sess_version)`.
//!
//! As in Kamailio, every function reads the SDP as the message has it
//! before sdpops changed it (a codec removed is still found by a later
//! `sdp_with_codecs_by_name`), and the changes add up on the way out.
#![forbid(unsafe_code)]

pub mod sdp;

use sdp::{Sdp, Stream};
use sr_sdk::prelude::*;
use std::ops::Range;

/// sdpops' changes to the message's SDP: ranges of `base` replaced.
#[derive(Debug, Clone, Default)]
struct SdpCtx {
    base: Vec<u8>,
    edits: Vec<(Range<usize>, Vec<u8>)>,
    produced: Vec<u8>,
}

fn is_sdp_type(msg: &SipMsg) -> bool {
    if let Some((_, Some(ct))) = msg.edits.body() {
        return media_is_sdp(ct);
    }
    msg.msg().content_type().ok().flatten().is_some_and(|t| {
        t.mtype.eq_ignore_ascii_case("application") && t.subtype.eq_ignore_ascii_case("sdp")
    })
}

fn media_is_sdp(ct: &str) -> bool {
    ct.split(';')
        .next()
        .is_some_and(|t| t.trim().eq_ignore_ascii_case("application/sdp"))
}

/// The SDP the functions read: sdpops' base when the body is still what
/// sdpops made of it, else the body as it is now.
fn base(msg: &SipMsg) -> Vec<u8> {
    if let Some(c) = msg.ext.get::<SdpCtx>() {
        if msg
            .edits
            .body()
            .is_some_and(|(b, _)| b == c.produced.as_slice())
        {
            return c.base.clone();
        }
    }
    msg.body().to_vec()
}

/// Whether the message has a body sdpops cannot read as an SDP (one
/// without the SDP Content-Type, or that does not parse), rather than no
/// body: some functions tell the two apart, as Kamailio's.
fn unreadable(msg: &SipMsg) -> bool {
    !base(msg).is_empty() && sdp_of(msg).is_none()
}

/// The message's SDP (body and parse), `None` without one.
fn sdp_of(msg: &SipMsg) -> Option<(Vec<u8>, Sdp)> {
    if !is_sdp_type(msg) {
        return None;
    }
    let body = base(msg);
    if body.is_empty() {
        return None;
    }
    let s = sdp::parse(&body).ok()?;
    Some((body, s))
}

/// Adds changes (ranges of the base) and rebuilds the body.
fn change(msg: &mut SipMsg, base_body: &[u8], more: Vec<(Range<usize>, Vec<u8>)>) {
    if more.is_empty() {
        return;
    }
    let fresh = !msg.ext.get::<SdpCtx>().is_some_and(|c| {
        c.base == base_body
            && msg
                .edits
                .body()
                .is_some_and(|(b, _)| b == c.produced.as_slice())
    });
    if fresh {
        msg.ext.insert(SdpCtx {
            base: base_body.to_vec(),
            edits: Vec::new(),
            produced: Vec::new(),
        });
    }
    let Some(c) = msg.ext.get_mut::<SdpCtx>() else {
        return;
    };
    c.edits.extend(more);
    let mut edits = c.edits.clone();
    edits.sort_by_key(|(r, _)| (r.start, r.end));
    let mut out = Vec::with_capacity(base_body.len());
    let mut at = 0;
    for (r, text) in edits {
        if r.start < at {
            // Overlaps a change already made (a line removed twice, a
            // stream removed after its codecs): the deletion extends it.
            if text.is_empty() {
                at = at.max(r.end.min(base_body.len()));
            }
            continue;
        }
        out.extend_from_slice(&base_body[at..r.start.min(base_body.len())]);
        out.extend_from_slice(&text);
        at = r.end.min(base_body.len());
    }
    out.extend_from_slice(&base_body[at..]);
    c.produced = out.clone();
    msg.edits.set_body(&out, None);
}

fn list(s: &str) -> Vec<String> {
    s.split(',')
        .map(|t| t.trim_start().to_string())
        .filter(|t| !t.is_empty())
        .collect()
}

/// The payload ids of names: the static table first, else the rtpmap
/// names of every stream (case-insensitive).
fn ids_of_names(body: &[u8], s: &Sdp, names: &[String]) -> Vec<String> {
    let mut ids = Vec::new();
    for n in names {
        if let Some(st) = sdp::static_ids(n) {
            ids.extend(st.iter().map(|x| x.to_string()));
            continue;
        }
        for stream in s.streams() {
            for (id, name) in sdp::rtpmap(body, stream) {
                if name.eq_ignore_ascii_case(n) && !ids.contains(&id) {
                    ids.push(id);
                }
            }
        }
    }
    ids
}

/// The deletions that take payload `id` out of a stream: ` <id>` in the
/// `m=` line and its rtpmap/fmtp/rtcp-fb lines.
fn remove_id(body: &[u8], st: &Stream, id: &str, out: &mut Vec<(Range<usize>, Vec<u8>)>) {
    let Some((_, r)) = st.payloads.iter().find(|(p, _)| p == id) else {
        return;
    };
    out.push((r.start - 1..r.end, Vec::new()));
    for l in &st.lines[1..] {
        let t = body.get(l.text.clone()).unwrap_or_default();
        for prefix in ["a=rtpmap:", "a=fmtp:", "a=rtcp-fb:"] {
            let p = prefix.len();
            let hit = t.len() > p + id.len()
                && t[..p].eq_ignore_ascii_case(prefix.as_bytes())
                && &t[p..p + id.len()] == id.as_bytes()
                && t[p + id.len()] == b' ';
            if hit {
                out.push((l.full.clone(), Vec::new()));
            }
        }
    }
}

fn media_ok(st: &Stream, media: &str) -> bool {
    media.is_empty() || st.media.eq_ignore_ascii_case(media)
}

/// `sdp_remove_codecs_by_id`/`_by_name` and the keep variants.
fn codecs(ctx: &mut Ctx<'_>, ids_or_names: &str, media: &str, by_name: bool, keep: bool) -> i32 {
    let Some((body, s)) = sdp_of(ctx.msg) else {
        return -1;
    };
    let given = list(ids_or_names);
    let ids = if by_name {
        let ids = ids_of_names(&body, &s, &given);
        if ids.is_empty() {
            return -1;
        }
        ids
    } else {
        given
    };
    let mut dels = Vec::new();
    for st in s.streams().filter(|st| media_ok(st, media)) {
        for (p, _) in &st.payloads {
            if ids.contains(p) != keep {
                remove_id(&body, st, p, &mut dels);
            }
        }
    }
    change(ctx.msg, &body, dels);
    1
}

/// `sdp_with_codecs_by_id/_by_name`: -1 none found; 1 each found in every
/// stream, 2 found but missing in some stream; `none` without an SDP.
fn with_codecs(ctx: &mut Ctx<'_>, items: &str, by_name: bool, none: i32) -> i32 {
    let Some((body, s)) = sdp_of(ctx.msg) else {
        return none;
    };
    let given = list(items);
    let ids = if by_name {
        ids_of_names(&body, &s, &given)
    } else {
        given
    };
    if ids.is_empty() {
        return -1;
    }
    let (mut found, mut missing) = (false, false);
    for id in &ids {
        for st in s.streams() {
            if st.payloads.iter().any(|(p, _)| p == id) {
                found = true;
            } else {
                missing = true;
            }
        }
    }
    match (found, missing) {
        (false, _) => -1,
        (true, false) => 1,
        (true, true) => 2,
    }
}

fn rc(b: bool) -> i32 {
    if b {
        1
    } else {
        -1
    }
}

fn with_media(ctx: &mut Ctx<'_>, media: &str, active: bool) -> i32 {
    let Some((body, s)) = sdp_of(ctx.msg) else {
        return -1;
    };
    let hit = s.streams().any(|st| {
        st.media.eq_ignore_ascii_case(media)
            && (!active
                || (st.port != 0
                    && !st
                        .lines
                        .iter()
                        .any(|l| body.get(l.text.clone()) == Some(b"a=inactive".as_slice()))))
    });
    rc(hit)
}

/// `sdp_remove_media(type)` / `sdp_remove_transport(proto)`.
fn remove_streams(ctx: &mut Ctx<'_>, what: &str, by_proto: bool) -> i32 {
    let Some((body, s)) = sdp_of(ctx.msg) else {
        return -1;
    };
    let dels: Vec<(Range<usize>, Vec<u8>)> = s
        .streams()
        .filter(|st| {
            if by_proto {
                st.proto.eq_ignore_ascii_case(what)
            } else {
                st.media.eq_ignore_ascii_case(what)
            }
        })
        .map(|st| (st.range.clone(), Vec::new()))
        .collect();
    if dels.is_empty() {
        return -1;
    }
    change(ctx.msg, &body, dels);
    1
}

fn remove_lines(ctx: &mut Ctx<'_>, prefix: &str, media: &str) -> i32 {
    let Some((body, s)) = sdp_of(ctx.msg) else {
        lm_err!("sdp_remove_line_by_prefix: Unable to parse SDP");
        return -1;
    };
    let p = prefix.as_bytes();
    let hit = |l: &sdp::Line| body.get(l.text.clone()).is_some_and(|t| t.starts_with(p));
    let dels: Vec<(Range<usize>, Vec<u8>)> = if media.is_empty() {
        s.lines
            .iter()
            .filter(|l| hit(l))
            .map(|l| (l.full.clone(), Vec::new()))
            .collect()
    } else {
        s.streams()
            .filter(|st| st.media.eq_ignore_ascii_case(media))
            .flat_map(|st| {
                st.lines
                    .iter()
                    .filter(|l| hit(l))
                    .map(|l| (l.full.clone(), Vec::new()))
            })
            .collect()
    };
    change(ctx.msg, &body, dels);
    1
}

fn set_avp(ctx: &mut Ctx<'_>, avp: &Fixed, v: String) -> bool {
    match avp {
        Fixed::Pv(pv) => pv.assign(ctx, Value::Str(v.into())).is_ok(),
        _ => false,
    }
}

fn transport(ctx: &mut Ctx<'_>, avp: &Fixed) -> i32 {
    let Some((_, s)) = sdp_of(ctx.msg) else {
        return if unreadable(ctx.msg) { -1 } else { 1 };
    };
    let protos: Vec<&str> = s.streams().map(|st| st.proto.as_str()).collect();
    match protos.first() {
        Some(first) if protos.iter().all(|p| p.eq_ignore_ascii_case(first)) => {
            rc(set_avp(ctx, avp, first.to_string()))
        }
        Some(_) => -2,
        None => -1,
    }
}

fn address_family(ctx: &mut Ctx<'_>) -> i32 {
    let Some((body, s)) = sdp_of(ctx.msg) else {
        return -1;
    };
    let Some(sess) = s.sessions.last() else {
        return -1;
    };
    let line = sess.conn.clone().or_else(|| sess.origin.clone());
    let t = line
        .and_then(|r| body.get(r).map(|b| String::from_utf8_lossy(b).into_owned()))
        .unwrap_or_default();
    if t.contains(" IP4 ") {
        4
    } else if t.contains(" IP6 ") {
        6
    } else {
        -1
    }
}

/// `sdp_content(sloppy)`: only the body and its type.
fn content_sloppy(msg: &SipMsg) -> i32 {
    let body = msg.body();
    if body.is_empty() {
        return -1;
    }
    match msg.msg().content_type() {
        Ok(None) => 1,
        Ok(Some(t)) => {
            let mt = format!("{}/{}", t.mtype, t.subtype).to_ascii_lowercase();
            let multi = mt == "multipart/mixed"
                && String::from_utf8_lossy(body)
                    .to_ascii_lowercase()
                    .contains("application/sdp");
            rc(mt == "application/sdp" || multi)
        }
        Err(_) => -1,
    }
}

/// The session version of the last session's `o=` line, with its range.
fn sess_version(body: &[u8], s: &Sdp) -> Option<(i64, Range<usize>)> {
    let r = s.sessions.last()?.origin.clone()?;
    let line = body.get(r.clone())?;
    let text = std::str::from_utf8(line).ok()?;
    let mut pos = r.start;
    let mut field = 0;
    for w in text.split(' ') {
        if !w.is_empty() {
            field += 1;
            if field == 3 {
                let v: i64 = w.parse().ok()?;
                return (v <= i64::from(i32::MAX)).then_some((v, pos..pos + w.len()));
            }
        }
        pos += w.len() + 1;
    }
    None
}

fn get_sdp_pv(ctx: &mut Ctx<'_>, name: &sr_sdk::exports::PvName) -> Value<'static> {
    let Some((body, s)) = sdp_of(ctx.msg) else {
        return Value::Null;
    };
    match name.inner.as_deref().unwrap_or("").trim() {
        "body" => Value::Str(String::from_utf8_lossy(&body).into_owned().into()),
        "sess_version" => sess_version(&body, &s).map_or(Value::Null, |(v, _)| Value::Int(v)),
        _ => Value::Null,
    }
}

fn set_sdp_pv(
    ctx: &mut Ctx<'_>,
    name: &sr_sdk::exports::PvName,
    v: Value<'_>,
) -> Result<(), String> {
    if name.inner.as_deref().unwrap_or("").trim() != "sess_version" {
        return Err("$sdp(body) cannot be set".into());
    }
    let Value::Int(n) = v else {
        return Err("$sdp(sess_version): expected integer".into());
    };
    let (body, s) = sdp_of(ctx.msg).ok_or("$sdp(sess_version): no SDP")?;
    let (cur, r) = sess_version(&body, &s).ok_or("$sdp(sess_version): no session version")?;
    let new = if n == -1 { cur + 1 } else { n };
    change(ctx.msg, &body, vec![(r, new.to_string().into_bytes())]);
    Ok(())
}

fn text(ctx: &mut Ctx<'_>, a: &Fixed) -> String {
    a.str(ctx).into_owned()
}

/// A fixup for functions whose parameter `i` is an AVP to write.
fn avp_at(i: usize) -> sr_sdk::fixup::FixupFn {
    std::sync::Arc::new(move |env, j, arg| {
        if j == i {
            fixup::pvar(env, j, arg)
        } else {
            fixup::spve(env, j, arg)
        }
    })
}

/// The module definition.
pub fn module() -> ModuleDef {
    let any = RouteType::ANY;
    let spve = || Some(fixup::f(fixup::spve));
    let mut def = ModuleDef::new("sdpops");
    for (name, by_name, keep) in [
        ("sdp_remove_codecs_by_id", false, false),
        ("sdp_remove_codecs_by_name", true, false),
        ("sdp_keep_codecs_by_id", false, true),
        ("sdp_keep_codecs_by_name", true, true),
    ] {
        def = def
            .cmd(name, 1, any, spve(), move |ctx, a| {
                let l = text(ctx, &a[0]);
                codecs(ctx, &l, "", by_name, keep)
            })
            .cmd(name, 2, any, spve(), move |ctx, a| {
                let (l, m) = (text(ctx, &a[0]), text(ctx, &a[1]));
                codecs(ctx, &l, &m, by_name, keep)
            });
    }
    def.cmd("sdp_with_codecs_by_id", 1, any, spve(), |ctx, a| {
        let l = text(ctx, &a[0]);
        with_codecs(ctx, &l, false, -2)
    })
    .cmd("sdp_with_codecs_by_name", 1, any, spve(), |ctx, a| {
        let l = text(ctx, &a[0]);
        with_codecs(ctx, &l, true, -1)
    })
    .cmd("sdp_with_media", 1, any, spve(), |ctx, a| {
        let m = text(ctx, &a[0]);
        with_media(ctx, &m, false)
    })
    .cmd("sdp_with_active_media", 1, any, spve(), |ctx, a| {
        let m = text(ctx, &a[0]);
        with_media(ctx, &m, true)
    })
    .cmd("sdp_remove_media", 1, any, spve(), |ctx, a| {
        let m = text(ctx, &a[0]);
        remove_streams(ctx, &m, false)
    })
    .cmd("sdp_remove_transport", 1, any, spve(), |ctx, a| {
        let m = text(ctx, &a[0]);
        remove_streams(ctx, &m, true)
    })
    .cmd("sdp_with_transport", 1, any, spve(), |ctx, a| {
        let p = text(ctx, &a[0]);
        match sdp_of(ctx.msg) {
            Some((_, s)) => rc(s.streams().any(|st| st.proto.eq_ignore_ascii_case(&p))),
            None => -1,
        }
    })
    .cmd("sdp_with_transport_like", 1, any, spve(), |ctx, a| {
        let p = text(ctx, &a[0]);
        match sdp_of(ctx.msg) {
            Some((_, s)) => rc(s.streams().any(|st| st.proto.contains(&p))),
            None => -1,
        }
    })
    .cmd("sdp_transport", 1, any, Some(avp_at(0)), |ctx, a| {
        transport(ctx, &a[0])
    })
    .cmd("sdp_with_ice", 0, any, None, |ctx, _| {
        let b = base(ctx.msg);
        rc(b.windows(11).any(|w| w == b"a=candidate"))
    })
    .cmd("sdp_remove_line_by_prefix", 1, any, spve(), |ctx, a| {
        let p = text(ctx, &a[0]);
        remove_lines(ctx, &p, "")
    })
    .cmd("sdp_remove_line_by_prefix", 2, any, spve(), |ctx, a| {
        let (p, m) = (text(ctx, &a[0]), text(ctx, &a[1]));
        remove_lines(ctx, &p, &m)
    })
    .cmd("sdp_print", 1, any, Some(fixup::f(fixup::igp)), |ctx, a| {
        let level = a[0].int(ctx);
        match sdp_of(ctx.msg) {
            Some((b, _)) => lm_info!("sdp_print({level}):\n{}", String::from_utf8_lossy(&b)),
            None => lm_info!("sdp_print({level}): no sdp body"),
        }
        1
    })
    .cmd("sdp_get", 1, any, Some(avp_at(0)), |ctx, a| {
        match sdp_of(ctx.msg) {
            Some((b, _)) => rc(set_avp(
                ctx,
                &a[0],
                String::from_utf8_lossy(&b).into_owned(),
            )),
            None if unreadable(ctx.msg) => -1,
            None => -2,
        }
    })
    .cmd("sdp_content", 0, any, None, |ctx, _| {
        rc(sdp_of(ctx.msg).is_some())
    })
    .cmd("sdp_content", 1, any, spve(), |ctx, _| {
        content_sloppy(ctx.msg)
    })
    .cmd(
        "sdp_get_line_startswith",
        2,
        any,
        Some(avp_at(0)),
        |ctx, a| {
            let p = text(ctx, &a[1]);
            let Some((b, s)) = sdp_of(ctx.msg) else {
                return if unreadable(ctx.msg) { -1 } else { -2 };
            };
            if p.is_empty() {
                return -1;
            }
            let found = s
                .lines
                .iter()
                .filter_map(|l| b.get(l.text.clone()))
                .find(|t| t.starts_with(p.as_bytes()))
                .map(|t| String::from_utf8_lossy(t).into_owned());
            match found {
                Some(t) => rc(set_avp(ctx, &a[0], t)),
                None => -1,
            }
        },
    )
    .cmd("sdp_get_address_family", 0, any, None, |ctx, _| {
        address_family(ctx)
    })
    .pv_rw("sdp", get_sdp_pv, set_sdp_pv)
}
