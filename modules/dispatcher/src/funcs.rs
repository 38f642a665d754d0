//! The script functions: choosing a destination and writing it where the
//! script asked (`$du`, the Request-URI's host part, or only the XAVPs),
//! failover through the XAVPs, marking, and the checks.

use crate::dest::{skipped, Dest, Set, INACTIVE, PROBING};
use crate::hash::{ds_hash, uri_hash};
use crate::ping::Mode;
use crate::probe::{self, Dsv};
use crate::{int, select, text, Dispatcher, FLAG_FAILOVER, FLAG_USER_ONLY};
use sr_sdk::prelude::*;
use sr_sdk::sip_msg::Uri;
use sr_sdk::xavp::XavpValue;
use sr_sdk::PvName;
use std::cell::Cell;
use std::net::IpAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;

/// Where a chosen destination is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    /// `$du` (`ds_select_dst`, `ds_next_dst`).
    Dst,
    /// The Request-URI after its user part (`ds_select_domain`).
    Domain,
    /// Nowhere: only the XAVPs (`ds_select`).
    Xavp,
}

thread_local! {
    static RNG: Cell<u64> = Cell::new({
        use std::hash::{BuildHasher, Hasher};
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_u8(1);
        h.finish() | 1
    });
}

fn random() -> u32 {
    RNG.with(|r| {
        let mut x = r.get();
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        r.set(x);
        (x >> 16) as u32
    })
}

/// The user name of the first Proxy-Authorization, else Authorization,
/// header.
fn auth_user(m: &Message<'_>) -> Option<String> {
    [HeaderName::ProxyAuthorization, HeaderName::Authorization]
        .into_iter()
        .find_map(|n| m.header(n))
        .and_then(|h| {
            let v = h.value;
            let start = v.to_ascii_lowercase().find("username")?;
            let rest = v[start + 8..].trim_start().strip_prefix('=')?.trim_start();
            let val = match rest.strip_prefix('"') {
                Some(q) => q.split('"').next()?,
                None => rest.split([',', ' ']).next()?,
            };
            Some(val.to_string())
        })
}

/// The relative-weight slot for set `s` with states `flags`
/// (algorithm 11): rebuilt when the states changed.
fn rweight_slot(s: &Set, flags: &[u32]) -> u32 {
    let Ok(mut g) = s.rwlist.lock() else { return 0 };
    let (made_for, slots, next) = &mut *g;
    if made_for.as_slice() != flags {
        let active: Vec<usize> = (0..flags.len()).filter(|&i| !skipped(flags[i])).collect();
        let sum: u32 = active.iter().map(|&i| s.dests[i].attrs.rweight).sum();
        slots.clear();
        if sum > 0 && flags.len() >= 2 {
            for &i in &active {
                let share = s.dests[i].attrs.rweight * 100 / sum;
                slots.extend(std::iter::repeat_n(i as u16, share as usize));
            }
            let last = active.last().copied().unwrap_or(0) as u16;
            slots.resize(100, last);
            crate::dest::Shuffle::new(u64::from(random()) << 1).shuffle(slots);
        }
        *made_for = flags.to_vec();
        *next = 0;
    }
    if slots.is_empty() {
        return 0;
    }
    let v = slots[*next % slots.len()];
    *next = (*next + 1) % slots.len();
    u32::from(v)
}

/// The hash algorithm `alg` gives for this message; `None` (after
/// logging why) when it cannot be computed.
fn hash_for(ds: &Dispatcher, ctx: &mut Ctx<'_>, s: &Set, alg: i64, flags: &[u32]) -> Option<u32> {
    let user_only = int(&ds.p.flags) & FLAG_USER_ONLY != 0;
    let m = ctx.msg.msg();
    let uri_of = |r: Result<Uri<'_>, sr_sdk::sip_msg::ParseError>, what: &str| match r {
        Ok(u) => Some(uri_hash(&u, user_only)),
        Err(e) => {
            lm_err!("dispatcher: cannot hash the {what}: {e}");
            None
        }
    };
    match alg {
        0 => match m.call_id() {
            Ok(id) => Some(ds_hash(id.trim().as_bytes(), None)),
            Err(e) => {
                lm_err!("dispatcher: cannot hash the Call-ID: {e}");
                None
            }
        },
        1 => uri_of(m.from().map(|f| f.uri), "From URI"),
        2 => uri_of(m.to().map(|t| t.uri), "To URI"),
        3 => {
            let r = ctx.msg.ruri_parsed();
            uri_of(r, "Request-URI")
        }
        4 => Some(s.rr.load(Ordering::Relaxed)),
        5 => match auth_user(m) {
            Some(u) => Some(ds_hash(u.as_bytes(), None)),
            None => Some(s.rr.load(Ordering::Relaxed)),
        },
        6 => Some(random()),
        7 => {
            let Some(f) = ds.hash_fmt.get() else {
                lm_err!("dispatcher: algorithm 7 needs the hash_pvar parameter");
                return None;
            };
            let v = f.eval(ctx).as_str().into_owned();
            if v.is_empty() {
                lm_err!("dispatcher: hash_pvar is empty");
                return None;
            }
            Some(ds_hash(v.as_bytes(), None))
        }
        9 => {
            let k = s.wlast.fetch_add(1, Ordering::Relaxed) as usize % 100;
            Some(u32::from(s.wlist.get(k).copied().unwrap_or(0)))
        }
        10 => {
            lm_err!("dispatcher: algorithm 10 (call load) is not supported by siprouter");
            None
        }
        11 => Some(rweight_slot(s, flags)),
        _ => Some(0),
    }
}

/// Writes destination `uri` (with its socket) as `op` says.
fn write(ds: &Dispatcher, ctx: &mut Ctx<'_>, op: Op, uri: &str, socket: &str) -> bool {
    match op {
        Op::Xavp => return true,
        Op::Dst => ctx.msg.dst_uri = Some(uri.to_string()),
        Op::Domain => {
            let cur = ctx.msg.ruri().to_string();
            match with_hostall(&cur, uri) {
                Some(n) => ctx.msg.new_uri = Some(n),
                None => {
                    lm_err!("dispatcher: cannot rewrite the Request-URI '{cur}' to {uri}");
                    return false;
                }
            }
        }
    }
    let default = text(&ds.p.default_socket);
    let sock = if socket.is_empty() {
        default.as_str()
    } else {
        socket
    };
    if !sock.is_empty() {
        ctx.msg.force_send_socket = Some(sock.to_string());
    }
    true
}

/// The Request-URI `ruri` with everything after its user part replaced by
/// destination `dest` without its scheme (Kamailio's `sethostall`).
pub fn with_hostall(ruri: &str, dest: &str) -> Option<String> {
    let u = Uri::parse(ruri).ok()?;
    let (scheme, rest) = ruri.split_once(':')?;
    let userinfo = match u.user {
        Some(_) => &rest[..=rest.find('@')?],
        None => "",
    };
    let hostall = dest.split_once(':').map_or(dest, |(s, r)| {
        if s.eq_ignore_ascii_case("sip") || s.eq_ignore_ascii_case("sips") {
            r
        } else {
            dest
        }
    });
    Some(format!("{scheme}:{userinfo}{hostall}"))
}

fn record(d: &Dest, mode: i64) -> XavpValue {
    let mut f: Vec<(String, Value<'static>)> = Vec::new();
    if !d.attrs.socket.is_empty() {
        f.push(("sock".into(), Value::str(d.attrs.socket.clone())));
        if mode & 2 != 0 {
            f.push(("socket".into(), Value::str(d.attrs.socket.clone())));
        }
    }
    if mode & 4 != 0 && !d.attrs.sockname.is_empty() {
        f.push(("sockname".into(), Value::str(d.attrs.sockname.clone())));
    }
    if mode & 1 == 0 && !d.attrs.body.is_empty() {
        f.push(("attrs".into(), Value::str(d.attrs.body.clone())));
    }
    f.push(("grp".into(), Value::Int(i64::from(d.setid))));
    f.push(("uri".into(), Value::str(d.uri.clone())));
    XavpValue::Fields(f)
}

/// `ds_select_dst` / `ds_select_domain` / `ds_select`.
fn select(ds: &Dispatcher, ctx: &mut Ctx<'_>, set: i64, alg: i64, limit: i64, op: Op) -> i32 {
    let lists = ds.lists();
    if lists.sets.is_empty() {
        lm_err!("dispatcher: no destination sets loaded");
        return -1;
    }
    let Some(s) = i32::try_from(set).ok().and_then(|id| lists.set(id)) else {
        lm_err!("dispatcher: destination set {set} not found");
        return -1;
    };
    if op == Op::Dst && int(&ds.p.force_dst) == 0 && ctx.msg.dst_uri.is_some() {
        lm_err!("dispatcher: the destination URI is set already (force_dst is 0)");
        return -1;
    }
    let n = s.dests.len();
    let flags: Vec<u32> = s.dests.iter().map(|d| d.flags()).collect();
    let usable = |i: usize| !skipped(flags[i]);
    let use_default = int(&ds.p.use_default) != 0;
    let limit = usize::try_from(limit).unwrap_or(0);
    let c = if alg == 13 {
        let start = s.rr.load(Ordering::Relaxed) as usize;
        let prio = |i: usize| s.dests[i].priority;
        let c = select::latency(n, start, &prio, &usable, use_default, limit);
        c.map(|(c, first)| {
            s.rr.store(((first + 1) % n) as u32, Ordering::Relaxed);
            c
        })
    } else {
        let Some(hash) = hash_for(ds, ctx, s, alg, &flags) else {
            return -1;
        };
        let c = select::choose(n, hash, &usable, use_default, limit);
        if let Some(c) = &c {
            if alg == 4 || (alg == 5 && auth_user(ctx.msg.msg()).is_none()) {
                s.rr.store(((c.chosen + 1) % n) as u32, Ordering::Relaxed);
            }
        }
        c
    };
    let Some(c) = c else {
        lm_err!("dispatcher: no active destination in set {set}");
        return -1;
    };
    let d = &s.dests[c.chosen];
    if !write(ds, ctx, op, &d.uri, &d.attrs.socket) {
        return -1;
    }
    let dst_mode = int(&ds.p.xavp_dst_mode);
    let mut cnt = 0;
    if alg == 12 {
        // Parallel: a branch to each later usable destination.
        let ruri = ctx.msg.ruri().to_string();
        for i in (c.chosen + 1..n).filter(|&i| usable(i)) {
            let b = &s.dests[i];
            ctx.msg.branches.push(Branch {
                uri: ruri.clone(),
                dst_uri: Some(b.uri.clone()),
                socket: (!b.attrs.socket.is_empty()).then(|| b.attrs.socket.clone()),
                ..Branch::default()
            });
        }
    } else if int(&ds.p.flags) & FLAG_FAILOVER != 0 {
        let name = text(&ds.p.xavp_dst);
        for &i in c.order.iter().rev() {
            ctx.msg.xavps.push(&name, record(&s.dests[i], dst_mode));
        }
        cnt = c.order.len();
    }
    if int(&ds.p.xavp_ctx_mode) & 1 == 0 {
        let ctx_name = text(&ds.p.xavp_ctx);
        ctx.msg.xavps.push(
            &ctx_name,
            XavpValue::Fields(vec![("cnt".into(), Value::Int(cnt as i64))]),
        );
    }
    1
}

/// The `uri` and `sock` of the first XAVP record.
fn first_record(ds: &Dispatcher, msg: &SipMsg) -> Option<(String, String, i64)> {
    let name = text(&ds.p.xavp_dst);
    let field = |f: &str| msg.xavps.field(&name, 0, f, 0).cloned();
    let uri = field("uri")?.as_str().into_owned();
    let sock = field("sock")
        .map(|v| v.as_str().into_owned())
        .unwrap_or_default();
    let grp = field("grp").map_or(-1, |v| v.as_int());
    Some((uri, sock, grp))
}

/// `ds_next_dst` / `ds_next_domain` (`drop_first`) and `ds_set_dst` /
/// `ds_set_domain`.
fn next(ds: &Dispatcher, ctx: &mut Ctx<'_>, op: Op, drop_first: bool) -> i32 {
    if int(&ds.p.flags) & FLAG_FAILOVER == 0 {
        lm_err!("dispatcher: failover is off (flags parameter without 2)");
        return -1;
    }
    if drop_first {
        let name = text(&ds.p.xavp_dst);
        if ctx.msg.xavps.remove(&name, Some(0)) == 0 {
            return -1;
        }
    }
    let Some((uri, sock, _)) = first_record(ds, ctx.msg) else {
        return -1;
    };
    if write(ds, ctx, op, &uri, &sock) {
        1
    } else {
        -1
    }
}

/// `ds_mark_dst([state])`.
fn mark(ds: &Dispatcher, ctx: &mut Ctx<'_>, state: Option<&str>) -> i32 {
    let new = match state {
        None if probe::mode(ds) == Mode::All => INACTIVE | PROBING,
        None => INACTIVE,
        Some(s) => match crate::state::from_letters(s) {
            Some(v) => v,
            None => {
                lm_err!("dispatcher: ds_mark_dst: unknown state '{s}' (a, i, t, d, p)");
                return -1;
            }
        },
    };
    if int(&ds.p.flags) & FLAG_FAILOVER == 0 {
        lm_err!("dispatcher: failover is off (flags parameter without 2)");
        return -1;
    }
    let Some((uri, _, grp)) = first_record(ds, ctx.msg) else {
        return -1;
    };
    let lists = ds.lists();
    let Some(d) = i32::try_from(grp)
        .ok()
        .and_then(|g| lists.set(g))
        .and_then(|s| s.dests.iter().find(|d| d.uri == uri))
    else {
        lm_err!("dispatcher: ds_mark_dst: {uri} is not in set {grp}");
        return -1;
    };
    let m = ctx.msg.msg();
    let code = if m.is_request() {
        820
    } else {
        m.status().unwrap_or(800)
    };
    let dsv = Dsv {
        code,
        reason: None,
        flags: 0,
    };
    probe::apply(ds, ctx.core, d, new, dsv, ctx.msg);
    1
}

/// Where a message (or the URI given) comes from: address, port,
/// transport (none for a URI that names none, as Kamailio's parsed URI).
fn source(ctx: &mut Ctx<'_>, uri: Option<&str>) -> Option<(IpAddr, u16, Option<Proto>)> {
    let Some(uri) = uri else {
        let r = &ctx.msg.rcv;
        return Some((r.src.ip(), r.src.port(), Some(r.proto)));
    };
    let u = Uri::parse(uri).ok()?;
    let proto = crate::params_value(u.params, "transport").and_then(Proto::parse);
    let ip = match u.host.ip() {
        Some(ip) => ip,
        None => ctx.core.resolve(uri, None).ok()?.addr.ip(),
    };
    Some((ip, u.port.unwrap_or(5060), proto))
}

/// `ds_is_from_list([group[, mode[, uri]]])`.
fn is_from_list(
    ds: &Dispatcher,
    ctx: &mut Ctx<'_>,
    group: i64,
    mode: i64,
    uri: Option<&str>,
) -> i32 {
    let Some((ip, port, proto)) = source(ctx, uri) else {
        lm_err!(
            "dispatcher: ds_is_from_list: bad address {}",
            uri.unwrap_or("")
        );
        return -1;
    };
    let local = ctx.msg.rcv.dst;
    let lists = ds.lists();
    let mut best: Option<(u32, &Dest)> = None;
    for s in lists
        .sets
        .iter()
        .filter(|s| group < 0 || i64::from(s.id) == group)
    {
        for d in &s.dests {
            let Some(a) = d.addr else { continue };
            if a.ip != ip {
                continue;
            }
            let port_ok = mode & 1 != 0 || a.port.is_none_or(|p| p == port);
            let proto_ok = mode & 2 != 0 || a.proto == proto;
            let active_ok = mode & 4 == 0 || !skipped(d.flags());
            let sock =
                (!d.attrs.socket.is_empty()).then(|| crate::probe::socket_addr(&d.attrs.socket));
            let sock_ok = mode & 8 == 0 || sock.is_none_or(|s| s == Some(local));
            if !(port_ok && proto_ok && active_ok && sock_ok) {
                continue;
            }
            let score = 1
                + if a.port == Some(port) { 2 } else { 0 }
                + if a.proto == proto { 4 } else { 0 }
                + if sock.is_some_and(|s| s == Some(local)) {
                    8
                } else {
                    0
                };
            if best.is_none_or(|(b, _)| score > b) {
                best = Some((score, d));
            }
            if mode & 16 == 0 {
                break;
            }
        }
        if best.is_some() && mode & 16 == 0 {
            break;
        }
    }
    let Some((_, d)) = best else { return -1 };
    let core = ctx.core;
    let setid_pv = text(&ds.p.setid_pvname);
    if group < 0 && !setid_pv.is_empty() {
        if let Err(e) = core.pv_set(ctx.msg, &setid_pv, Value::Int(i64::from(d.setid))) {
            lm_err!("dispatcher: setid_pvname: {e}");
        }
    }
    let attrs_pv = text(&ds.p.attrs_pvname);
    if !attrs_pv.is_empty() && !d.attrs.body.is_empty() {
        if let Err(e) = core.pv_set(ctx.msg, &attrs_pv, Value::str(d.attrs.body.clone())) {
            lm_err!("dispatcher: attrs_pvname: {e}");
        }
    }
    1
}

/// `$dsv(code|reason|flags)`.
pub fn dsv(ctx: &mut Ctx<'_>, name: &PvName) -> Value<'static> {
    let Some(v) = ctx.msg.ext.get::<Dsv>() else {
        return Value::Null;
    };
    match name.inner.as_deref() {
        Some("code") => Value::Int(i64::from(v.code)),
        Some("reason") => v.reason.clone().map_or(Value::Null, Value::str),
        Some("flags") => Value::Int(v.flags),
        _ => Value::Null,
    }
}

/// A fixup taking integers (or pseudo-variables) before parameter
/// `str_at`, a string with pseudo-variables from it on.
fn ints_then_str(str_at: usize) -> fixup::FixupFn {
    Arc::new(move |env, i, arg| {
        if i >= str_at {
            fixup::spve(env, i, arg)
        } else {
            fixup::igp(env, i, arg)
        }
    })
}

/// Adds the functions to the module.
pub fn export(ds: &Arc<Dispatcher>, mut def: ModuleDef) -> ModuleDef {
    let req_fail = RouteType(RouteType::REQUEST.0 | RouteType::FAILURE.0);
    let mark_rt = RouteType(req_fail.0 | RouteType::ONREPLY.0);
    let igp = Some(fixup::f(fixup::igp));
    let spve = Some(fixup::f(fixup::spve));
    // The set parameter's fixup also compiles hash_pvar, once.
    let d = ds.clone();
    let set_fixup: fixup::FixupFn = Arc::new(move |env, i, arg| {
        let pv = text(&d.p.hash_pvar);
        if !pv.is_empty() && d.hash_fmt.get().is_none() {
            let f = env
                .compile_format(&pv)
                .map_err(|e| format!("hash_pvar: {e}"))?;
            let _ = d.hash_fmt.set(f);
        }
        fixup::igp(env, i, arg)
    });
    let ops = [
        ("ds_select_dst", Op::Dst, req_fail),
        ("ds_select_domain", Op::Domain, req_fail),
        ("ds_select", Op::Xavp, RouteType::ANY),
    ];
    for (name, op, rt) in ops {
        for n in [2, 3] {
            let d = ds.clone();
            let rt = if n == 3 { req_fail } else { rt };
            def = def.cmd(name, n, rt, Some(set_fixup.clone()), move |ctx, p| {
                let set = p[0].int(ctx);
                let alg = p[1].int(ctx);
                let limit = p.get(2).map_or(0, |l| l.int(ctx));
                select(&d, ctx, set, alg, limit, op)
            });
        }
    }
    for (name, op, drop_first) in [
        ("ds_next_dst", Op::Dst, true),
        ("ds_next_domain", Op::Domain, true),
        ("ds_set_dst", Op::Dst, false),
        ("ds_set_domain", Op::Domain, false),
    ] {
        let d = ds.clone();
        def = def.cmd(name, 0, req_fail, None, move |ctx, _| {
            next(&d, ctx, op, drop_first)
        });
    }
    let d = ds.clone();
    def = def.cmd("ds_mark_dst", 0, mark_rt, None, move |ctx, _| {
        mark(&d, ctx, None)
    });
    let d = ds.clone();
    def = def.cmd("ds_mark_dst", 1, mark_rt, spve.clone(), move |ctx, p| {
        let s = p[0].str(ctx).into_owned();
        mark(&d, ctx, Some(&s))
    });
    for name in ["ds_list_exists", "ds_list_exist"] {
        let d = ds.clone();
        def = def.cmd(name, 1, RouteType::ANY, igp.clone(), move |ctx, p| {
            let set = p[0].int(ctx);
            let l = d.lists();
            if i32::try_from(set).ok().and_then(|id| l.set(id)).is_some() {
                1
            } else {
                -1
            }
        });
    }
    let from_list_fx = ints_then_str(2);
    for n in 0..=3 {
        let d = ds.clone();
        let fx = (n > 0).then(|| from_list_fx.clone());
        def = def.cmd("ds_is_from_list", n, RouteType::ANY, fx, move |ctx, p| {
            let group = p.first().map_or(-1, |g| g.int(ctx));
            let mode = p.get(1).map_or(2, |m| m.int(ctx));
            let uri = p.get(2).map(|u| u.str(ctx).into_owned());
            is_from_list(&d, ctx, group, mode, uri.as_deref())
        });
    }
    for n in [1, 2] {
        let d = ds.clone();
        def = def.cmd(
            "ds_is_active",
            n,
            RouteType::ANY,
            Some(ints_then_str(1)),
            move |ctx, p| {
                let set = p[0].int(ctx);
                let uri = p.get(1).map(|u| u.str(ctx).into_owned());
                let l = d.lists();
                let Some(s) = i32::try_from(set).ok().and_then(|id| l.set(id)) else {
                    return -1;
                };
                let any = s
                    .dests
                    .iter()
                    .filter(|x| uri.as_deref().is_none_or(|u| x.uri == u))
                    .any(|x| !skipped(x.flags()));
                if any {
                    1
                } else {
                    -1
                }
            },
        );
    }
    let d = ds.clone();
    def.cmd(
        "ds_reload",
        0,
        RouteType::ANY,
        None,
        move |ctx, _| match d.reload(ctx.core) {
            Ok(()) => 1,
            Err(e) => {
                lm_err!("dispatcher: reload: {e}");
                -1
            }
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hostall_rewrite() {
        assert_eq!(
            with_hostall(
                "sip:bob@example.com;user=phone",
                "sip:10.0.0.1:5070;transport=tcp"
            )
            .as_deref(),
            Some("sip:bob@10.0.0.1:5070;transport=tcp")
        );
        assert_eq!(
            with_hostall("sip:example.com", "sip:gw").as_deref(),
            Some("sip:gw")
        );
        assert_eq!(with_hostall("nonsense", "sip:gw"), None);
    }

    #[test]
    fn user_names_from_credentials() {
        let raw = b"INVITE sip:b@x SIP/2.0\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\nFrom: <sip:a@x>;tag=1\r\nTo: <sip:b@x>\r\nCall-ID: c\r\nCSeq: 1 INVITE\r\nAuthorization: Digest realm=\"x\", username=\"alice\", nonce=\"n\"\r\nContent-Length: 0\r\n\r\n";
        let m = Message::parse(raw).unwrap();
        assert_eq!(auth_user(&m).as_deref(), Some("alice"));
    }
}
