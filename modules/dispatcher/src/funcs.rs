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
use std::net::IpAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;

/// Where a chosen destination is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Op {
    /// `$du` (`ds_select_dst`, `ds_next_dst`).
    Dst,
    /// The Request-URI after its user part (`ds_select_domain`).
    Domain,
    /// Nowhere: only the XAVPs (`ds_select`).
    Xavp,
}

thread_local! {
    static RNG: std::cell::RefCell<crate::dest::Shuffle> = std::cell::RefCell::new({
        use std::hash::{BuildHasher, Hasher};
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_u8(1);
        crate::dest::Shuffle::new(h.finish())
    });
}

fn random() -> u32 {
    RNG.with(|r| (r.borrow_mut().draw() >> 16) as u32)
}

/// The items of a comma-separated list, commas inside quoted strings kept.
fn split_params(s: &str) -> impl Iterator<Item = &str> + '_ {
    let mut quoted = false;
    let mut escaped = false;
    s.split(move |c: char| {
        if escaped {
            escaped = false;
        } else if quoted && c == '\\' {
            escaped = true;
        } else if c == '"' {
            quoted = !quoted;
        } else if c == ',' && !quoted {
            return true;
        }
        false
    })
}

/// The user part of the user name (before any `@`) of the first
/// Proxy-Authorization, else Authorization, header: what algorithm 5
/// hashes, as Kamailio's `username.user`.
fn auth_user(m: &Message<'_>) -> Option<String> {
    let h = [HeaderName::ProxyAuthorization, HeaderName::Authorization]
        .into_iter()
        .find_map(|n| m.header(n))?;
    let (_scheme, params) = h.value.trim_start().split_once(char::is_whitespace)?;
    split_params(params).find_map(|item| {
        let (k, v) = item.split_once('=')?;
        if !k.trim().eq_ignore_ascii_case("username") {
            return None;
        }
        let v = v.trim();
        let v = v
            .strip_prefix('"')
            .and_then(|x| x.strip_suffix('"'))
            .unwrap_or(v);
        Some(v.split('@').next().unwrap_or("").trim().to_string())
    })
}

/// The relative-weight slot for set `s` with states `flags`
/// (algorithm 11): the slots are made again when the usable
/// destinations change.
fn rweight_slot(s: &Set, flags: &[u32]) -> u32 {
    let Ok(mut g) = s.rwlist.lock() else { return 0 };
    let (made_for, slots, next) = &mut *g;
    let usable: Vec<bool> = flags.iter().map(|&f| !skipped(f)).collect();
    if *made_for != usable || slots.is_empty() {
        let sum: u32 = (0..flags.len())
            .filter(|&i| usable[i])
            .map(|i| s.dests[i].attrs.rweight)
            .sum();
        *slots = if sum > 0 && flags.len() >= 2 {
            let share = |i: usize| {
                if usable[i] {
                    (s.dests[i].attrs.rweight * 100 / sum) as usize
                } else {
                    0
                }
            };
            crate::dest::fill_slots(flags.len(), share, u64::from(random()))
        } else {
            vec![0; 100]
        };
        *made_for = usable;
        *next = 0;
    }
    let v = slots[*next % slots.len()];
    *next = (*next + 1) % slots.len();
    v
}

/// Takes the set's round-robin turn: the position now, moved on by one.
fn rr_take(s: &Set, n: usize) -> u32 {
    let n = n.max(1) as u32;
    s.rr.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |v| Some((v + 1) % n))
        .unwrap_or(0)
}

/// After a round-robin selection: the position goes past the chosen
/// destination, unless another selection moved it meanwhile (Kamailio's
/// rule).
fn rr_settle(s: &Set, taken: u32, n: usize, chosen: usize) {
    let n = n.max(1) as u32;
    let _ = s.rr.compare_exchange(
        (taken + 1) % n,
        (chosen as u32 + 1) % n,
        Ordering::Relaxed,
        Ordering::Relaxed,
    );
}

/// What a hash algorithm gave: the hash, and the round-robin position it
/// took, if it took one.
struct Hashed {
    hash: u32,
    rr: Option<u32>,
}

/// The hash algorithm `alg` gives for this message; `None` (after
/// logging why) when it cannot be computed.
fn hash_for(
    ds: &Dispatcher,
    ctx: &mut Ctx<'_>,
    s: &Set,
    alg: i64,
    flags: &[u32],
) -> Option<Hashed> {
    let n = s.dests.len();
    let plain = |hash| Some(Hashed { hash, rr: None });
    let turn = || {
        let t = rr_take(s, n);
        Some(Hashed {
            hash: t,
            rr: Some(t),
        })
    };
    let user_only = int(&ds.p.flags) & FLAG_USER_ONLY != 0;
    let m = ctx.msg.msg();
    let uri_of = |r: Result<Uri<'_>, sr_sdk::sip_msg::ParseError>, what: &str| match r {
        Ok(u) => plain(uri_hash(&u, user_only)),
        Err(e) => {
            lm_err!("dispatcher: cannot hash the {what}: {e}");
            None
        }
    };
    match alg {
        0 => match m.call_id() {
            Ok(id) => plain(ds_hash(id.trim().as_bytes(), None)),
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
        4 => turn(),
        5 => match auth_user(m) {
            Some(u) => plain(ds_hash(u.as_bytes(), None)),
            None => turn(),
        },
        6 => plain(random()),
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
            plain(ds_hash(v.as_bytes(), None))
        }
        9 => {
            let k = s.wlast.fetch_add(1, Ordering::Relaxed) as usize % 100;
            plain(s.wlist.get(k).copied().unwrap_or(0))
        }
        11 => plain(rweight_slot(s, flags)),
        _ => plain(0),
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
    let default = &ds.names().default_socket;
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
    let (scheme, rest) = ruri.split_once(':')?;
    let tel = scheme.eq_ignore_ascii_case("tel") || scheme.eq_ignore_ascii_case("tels");
    let number;
    let userinfo = if tel {
        // A tel URI's number becomes the user part (its parameters go
        // with the old host part), as Kamailio rewrites it.
        number = format!("{}@", rest.split(';').next().unwrap_or(rest));
        if number.len() < 2 {
            return None;
        }
        number.as_str()
    } else {
        let u = Uri::parse(ruri).ok()?;
        match u.user {
            Some(_) => &rest[..=rest.find('@')?],
            None => "",
        }
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

fn record(d: &Dest, mode: i64, dstid: bool) -> XavpValue {
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
    if dstid {
        f.push(("dstid".into(), Value::str(d.attrs.duid.clone())));
    }
    if mode & 1 == 0 && !d.attrs.body.is_empty() {
        f.push(("attrs".into(), Value::str(d.attrs.body.clone())));
    }
    f.push(("grp".into(), Value::Int(i64::from(d.setid))));
    f.push(("uri".into(), Value::str(d.uri.clone())));
    XavpValue::Fields(f)
}

/// `ds_select_dst` / `ds_select_domain` / `ds_select`.
/// What the selections of one call share (Kamailio's `ds_select_state_t`):
/// the failover records listed so far and how many may be.
pub(crate) struct Picks {
    /// The records for the destination XAVP, the first to try first.
    records: Vec<XavpValue>,
    /// The most records to list (`usize::MAX`: no limit). Each selection
    /// lists its chosen destination even past it, as Kamailio's.
    limit: usize,
}

impl Picks {
    /// No records yet; `limit` 0 or negative is no limit.
    pub(crate) fn new(limit: i64) -> Picks {
        Picks {
            records: Vec::new(),
            limit: usize::try_from(limit)
                .ok()
                .filter(|&l| l > 0)
                .unwrap_or(usize::MAX),
        }
    }

    /// Puts the records at the head of the destination XAVP list (first
    /// listed first) and, with `count` and unless `xavp_ctx_mode` says
    /// not to, their count in the context XAVP.
    pub(crate) fn finish(self, ds: &Dispatcher, ctx: &mut Ctx<'_>, count: bool) {
        let cnt = self.records.len();
        let name = &ds.names().xavp_dst;
        for r in self.records.into_iter().rev() {
            ctx.msg.xavps.push(name, r);
        }
        if count && int(&ds.p.xavp_ctx_mode) & 1 == 0 {
            ctx.msg.xavps.push(
                &ds.names().xavp_ctx,
                XavpValue::Fields(vec![("cnt".into(), Value::Int(cnt as i64))]),
            );
        }
    }
}

/// `ds_select*`: one selection, its records and count written.
fn select(ds: &Dispatcher, ctx: &mut Ctx<'_>, set: i64, alg: i64, limit: i64, op: Op) -> i32 {
    let mut picks = Picks::new(limit);
    let r = manage(ds, ctx, set, alg, op, &mut picks);
    // (A selection failing after some records were listed keeps them,
    // uncounted, as Kamailio's.)
    picks.finish(ds, ctx, r > 0);
    r
}

/// Chooses a destination of `set` with algorithm `alg`, writes it as `op`
/// says, and adds the failover records to `picks` (Kamailio's
/// `ds_manage_routes`).
pub(crate) fn manage(
    ds: &Dispatcher,
    ctx: &mut Ctx<'_>,
    set: i64,
    alg: i64,
    op: Op,
    picks: &mut Picks,
) -> i32 {
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
    // Room left in the list (the chosen destination is listed anyway).
    let room = picks.limit.saturating_sub(picks.records.len());
    let limit = room.max(1);
    let invite = ctx.msg.msg().method() == Some(Method::Invite);
    // The Call-ID algorithm 10 counted here (taken back if the
    // destination cannot be written).
    let mut counted: Option<String> = None;
    let c = if alg == 10 && int(&ds.p.hash_size) <= 0 {
        lm_err!("dispatcher: algorithm 10 (call load) needs the ds_hash_size parameter");
        return -1;
    } else if alg == 10 && invite {
        // The least-loaded destination that can take a call, counted at
        // once; the failover order leaves out those at their maxload too.
        let Ok(callid) = ctx.msg.msg().call_id().map(|c| c.trim().to_string()) else {
            return -1;
        };
        let dests: Vec<(&str, u32, bool)> = (0..n)
            .map(|i| {
                let d = &s.dests[i];
                (d.attrs.duid.as_str(), d.attrs.maxload, usable(i))
            })
            .collect();
        ds.calls
            .pick_and_add(&callid, s.id, &dests, std::time::Instant::now())
            .map(|(chosen, can, c)| {
                counted = c.then_some(callid);
                // Not counted: listed as without algorithm 10 (those at
                // their maxload too), as Kamailio falls back.
                let order = if counted.is_some() {
                    select::failover(n, chosen, &|i| can[i], use_default, limit)
                } else {
                    select::failover(n, chosen, &usable, use_default, limit)
                };
                select::Choice { chosen, order }
            })
    } else if alg == 10 {
        // (Only an INVITE makes a call: another request takes the first
        // usable destination, as Kamailio's.)
        select::choose(n, 0, &usable, use_default, limit)
    } else if alg == 13 {
        // The walk starts at the round-robin position and moves it past
        // its first index; retried if another worker moved it meanwhile.
        let prio = |i: usize| s.dests[i].priority;
        let mut tries = 0;
        loop {
            let start = s.rr.load(Ordering::Relaxed);
            let Some((c, first)) =
                select::latency(n, start as usize, &prio, &usable, use_default, limit)
            else {
                break None;
            };
            let to = ((first + 1) % n) as u32;
            tries += 1;
            let moved =
                s.rr.compare_exchange(start, to, Ordering::Relaxed, Ordering::Relaxed);
            if moved.is_ok() || tries >= 8 {
                break Some(c);
            }
        }
    } else {
        let Some(h) = hash_for(ds, ctx, s, alg, &flags) else {
            return -1;
        };
        let c = select::choose(n, h.hash, &usable, use_default, limit);
        if let (Some(c), Some(taken)) = (&c, h.rr) {
            rr_settle(s, taken, n, c.chosen);
        }
        c
    };
    let Some(c) = c else {
        lm_err!("dispatcher: no active destination in set {set}");
        return -1;
    };
    let d = &s.dests[c.chosen];
    if alg == 10 && invite && counted.is_none() {
        // As Kamailio's: the call cannot be counted (no duid, or its
        // Call-ID counted already), so it is dispatched without the load.
        lm_dbg!(
            "dispatcher: call load not updated for {} - classic dispatching",
            d.uri
        );
    }
    let call_load = counted.is_some();
    if !write(ds, ctx, op, &d.uri, &d.attrs.socket) {
        if let Some(callid) = counted {
            ds.calls.remove(&callid);
        }
        return -1;
    }
    let dst_mode = int(&ds.p.xavp_dst_mode);
    if alg == 12 {
        parallel(ds, ctx, s, c.chosen, op);
    } else if int(&ds.p.flags) & FLAG_FAILOVER != 0 {
        // Algorithm 13 lists only while there is room, its first too.
        let take = if alg == 13 && room == 0 {
            0
        } else {
            usize::MAX
        };
        for &i in c.order.iter().take(take) {
            let d = &s.dests[i];
            if call_load && d.attrs.duid.is_empty() {
                // As Kamailio's: a failover destination without a duid
                // cannot carry the call's load; the selection fails there
                // (what is written and counted stays).
                lm_err!(
                    "dispatcher: no duid for destination {} (algorithm 10)",
                    d.uri
                );
                return -1;
            }
            picks.records.push(record(d, dst_mode, call_load));
        }
    }
    1
}

/// Algorithm 12: a branch to every destination after the chosen one
/// (from the chosen one with `ds_select`), whatever its state, as
/// Kamailio's `ds_add_branches`: with `ds_select_domain` the branch's
/// Request-URI is the user part with the destination's host part; else it
/// is the Request-URI, sent to the destination.
fn parallel(ds: &Dispatcher, ctx: &mut Ctx<'_>, s: &Set, chosen: usize, op: Op) {
    let from = if op == Op::Xavp { chosen } else { chosen + 1 };
    let ruri = ctx.msg.ruri().to_string();
    let user = Uri::parse(&ruri)
        .ok()
        .and_then(|u| u.user.map(str::to_string))
        .filter(|u| !u.is_empty());
    let default = &ds.names().default_socket;
    for b in s.dests.iter().skip(from) {
        let sock = if b.attrs.socket.is_empty() {
            default
        } else {
            &b.attrs.socket
        };
        let socket = (!sock.is_empty()).then(|| sock.clone());
        let branch = match (op, &user) {
            (Op::Domain, Some(u)) => {
                let (scheme, rest) = b.uri.split_once(':').unwrap_or(("sip", &b.uri));
                Branch {
                    uri: format!("{scheme}:{u}@{rest}"),
                    socket,
                    ..Branch::default()
                }
            }
            (Op::Domain, None) => Branch {
                uri: b.uri.clone(),
                socket,
                ..Branch::default()
            },
            _ => Branch {
                uri: ruri.clone(),
                dst_uri: Some(b.uri.clone()),
                socket,
                ..Branch::default()
            },
        };
        ctx.msg.branches.push(branch);
    }
}

/// The `uri` and `sock` of the first XAVP record.
fn first_record(ds: &Dispatcher, msg: &SipMsg) -> Option<(String, String, i64)> {
    let name = &ds.names().xavp_dst;
    let field = |f: &str| msg.xavps.field(name, 0, f, 0).cloned();
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
    if drop_first && ctx.msg.xavps.remove(&ds.names().xavp_dst, Some(0)) == 0 {
        return -1;
    }
    let Some((uri, sock, _)) = first_record(ds, ctx.msg) else {
        return -1;
    };
    if !write(ds, ctx, op, &uri, &sock) {
        return -1;
    }
    // A call dispatched by load moves to its next destination.
    if drop_first && ctx.msg.msg().method() == Some(Method::Invite) {
        let name = &ds.names().xavp_dst;
        let dstid = ctx.msg.xavps.field(name, 0, "dstid", 0).cloned();
        if let (Some(id), Ok(callid)) = (dstid, ctx.msg.msg().call_id()) {
            let callid = callid.trim().to_string();
            ds.calls.replace(&callid, &id.as_str());
        }
    }
    1
}

/// `ds_load_update()`: a BYE or CANCEL takes its call's load away, a 2xx
/// to an INVITE confirms it. 1 (also for a call not counted, as
/// Kamailio's).
fn load_update(ds: &Dispatcher, ctx: &mut Ctx<'_>) -> i32 {
    let m = ctx.msg.msg();
    let Ok(callid) = m.call_id().map(|c| c.trim().to_string()) else {
        return -1;
    };
    if ctx.msg.is_request() {
        if matches!(m.method(), Some(Method::Bye) | Some(Method::Cancel))
            && !ds.calls.remove(&callid)
        {
            lm_err!("dispatcher: cannot find the load of call {callid}");
        }
        return 1;
    }
    let invite = m.cseq().is_ok_and(|c| c.method == Method::Invite);
    if invite && m.status().is_some_and(|c| (200..300).contains(&c)) {
        ds.calls.confirm(&callid, std::time::Instant::now());
    }
    1
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
    // As Kamailio's: a reply gives its code and reason (flags 1), a
    // request 820.
    let dsv = if m.is_request() {
        Dsv {
            code: 820,
            reason: None,
            flags: 0,
        }
    } else {
        Dsv {
            code: m.status().unwrap_or(800),
            reason: m.reason().map(str::to_string),
            flags: 1,
        }
    };
    probe::apply(ds, ctx.core, d, |_| Some(new), dsv, ctx.msg);
    1
}

/// Where a message (or the URI given) comes from: address, port,
/// transport (none for a URI that names none, as Kamailio's parsed URI).
fn source(ctx: &mut Ctx<'_>, uri: Option<&str>) -> Option<(IpAddr, u16, Option<Proto>)> {
    let Some(uri) = uri.filter(|u| !u.is_empty()) else {
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
    // In Kamailio's order of the sets: it decides which set an address in
    // several is reported in.
    for s in lists
        .walk()
        .filter(|s| group == -1 || i64::from(s.id) == group)
    {
        for d in &s.dests {
            let Some(a) = d.addr else { continue };
            if a.ip != ip {
                continue;
            }
            let port_ok = mode & 1 != 0 || a.port.is_none_or(|p| p == port);
            let proto_ok = mode & 2 != 0 || a.proto == proto;
            let active_ok = mode & 4 == 0 || !skipped(d.flags());
            let sock = (!d.attrs.socket.is_empty()).then_some(d.socket_addr);
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
    let names = ds.names();
    if group == -1 && !names.setid_pv.is_empty() {
        if let Err(e) = core.pv_set(ctx.msg, &names.setid_pv, Value::Int(i64::from(d.setid))) {
            lm_err!("dispatcher: setid_pvname: {e}");
        }
    }
    if !names.attrs_pv.is_empty() && !d.attrs.body.is_empty() {
        let attrs = Value::str(d.attrs.body.clone());
        if let Err(e) = core.pv_set(ctx.msg, &names.attrs_pv, attrs) {
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
    let hash_pvar = Arc::new(move |env: &dyn fixup::FixupEnv| -> Result<(), String> {
        let pv = text(&d.p.hash_pvar);
        if !pv.is_empty() && d.hash_fmt.get().is_none() {
            let f = env
                .compile_format(&pv)
                .map_err(|e| format!("hash_pvar: {e}"))?;
            let _ = d.hash_fmt.set(f);
        }
        Ok(())
    });
    let hp = hash_pvar.clone();
    let set_fixup: fixup::FixupFn = Arc::new(move |env, i, arg| {
        hp(env)?;
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
    for n in [2, 3] {
        let d = ds.clone();
        let hp = hash_pvar.clone();
        let fx: fixup::FixupFn = Arc::new(move |env, i, arg| {
            hp(env)?;
            if i < 2 {
                fixup::spve(env, i, arg)
            } else {
                fixup::igp(env, i, arg)
            }
        });
        def = def.cmd("ds_select_routes", n, req_fail, Some(fx), move |ctx, p| {
            let rules = p[0].str(ctx).into_owned();
            let mode = p[1].str(ctx).into_owned();
            let limit = p.get(2).map_or(0, |l| l.int(ctx));
            crate::routes::select_routes(&d, ctx, &rules, &mode, limit)
        });
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
    let load_rt = RouteType(mark_rt.0 | RouteType::BRANCH.0 | RouteType::TM_ONREPLY.0);
    def = def.cmd("ds_load_update", 0, load_rt, None, move |ctx, _| {
        load_update(&d, ctx)
    });
    let d = ds.clone();
    def = def.cmd("ds_load_unset", 0, load_rt, None, move |ctx, _| {
        let Ok(callid) = ctx.msg.msg().call_id().map(|c| c.trim().to_string()) else {
            return -1;
        };
        if d.calls.remove(&callid) {
            1
        } else {
            -1
        }
    });
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
        assert_eq!(
            with_hostall("tel:+15551234;phone-context=x", "sip:127.0.0.1:5081").as_deref(),
            Some("tel:+15551234@127.0.0.1:5081")
        );
    }

    #[test]
    fn user_names_from_credentials() {
        let raw = b"INVITE sip:b@x SIP/2.0\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\nFrom: <sip:a@x>;tag=1\r\nTo: <sip:b@x>\r\nCall-ID: c\r\nCSeq: 1 INVITE\r\nAuthorization: Digest realm=\"x\", username=\"alice\", nonce=\"n\"\r\nContent-Length: 0\r\n\r\n";
        let m = Message::parse(raw).unwrap();
        assert_eq!(auth_user(&m).as_deref(), Some("alice"));
    }
}
