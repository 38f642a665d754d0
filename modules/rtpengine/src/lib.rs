//! # rtpengine: media through an rtpengine daemon
//!
//! Kamailio's `rtpengine` module: asks an rtpengine daemon (Sipwise's
//! media proxy, its "ng" control protocol over UDP) to relay a call's
//! media, and puts the daemon's SDP in the message, so that both ends send
//! their media to it (the stock configuration's WITH_NAT with
//! WITH_RTPENGINE).
//!
//! - `rtpengine_offer([flags])`, `rtpengine_answer([flags])`,
//!   `rtpengine_delete([flags])`, `rtpengine_query([flags])`: one ng
//!   command each.
//! - `rtpengine_manage([flags])`: the command the message calls for: an
//!   INVITE (or UPDATE) with SDP is an offer, an ACK with SDP or a 1xx/2xx
//!   reply with SDP an answer (an offer when the INVITE had none: a late
//!   offer, seen through tm), a BYE or CANCEL or a reply of 300 or more to
//!   an INVITE a delete, and so is anything in failure_route; anything
//!   else does nothing.
//! - Flags are Kamailio's strings (`replace-origin
//!   replace-session-connection`, `trust-address`, `ICE=remove`,
//!   `RTP/AVP`, `direction=...`, ...), passed on as the ng protocol has
//!   them (see [`ng::add_flags`]).
//! - Parameters: `rtpengine_sock` (`udp:host:port`, several separated by
//!   spaces: tried in order), `rtpengine_tout_ms` (1000),
//!   `rtpengine_retr` (5); the others are accepted with no effect.
//! - RPC `rtpengine.ping`: pings every daemon.
#![forbid(unsafe_code)]

pub mod bencode;
pub mod ng;

use bencode::Ben;
use sr_mod_tm::api::{TmApi, TM_API};
use sr_sdk::prelude::*;
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, RwLock};
use std::time::{Duration, Instant};

#[derive(Default)]
struct Rtpe {
    socks: Arc<RwLock<String>>,
    tout_ms: Arc<AtomicI64>,
    retr: Arc<AtomicI64>,
    disable_tout: Arc<AtomicI64>,
    daemons: OnceLock<Vec<SocketAddr>>,
    /// Daemons that did not answer, and until when they are skipped.
    down: Mutex<HashMap<SocketAddr, Instant>>,
}

impl Rtpe {
    /// The daemons to ask: those not marked down (all, when all are).
    fn up(&self) -> Vec<SocketAddr> {
        let all = self.daemons.get().cloned().unwrap_or_default();
        let now = Instant::now();
        let down = self.down.lock().unwrap_or_else(|e| e.into_inner());
        let up: Vec<SocketAddr> = all
            .iter()
            .copied()
            .filter(|d| down.get(d).is_none_or(|t| *t <= now))
            .collect();
        if up.is_empty() {
            all
        } else {
            up
        }
    }

    /// `rtpengine_tout_ms`.
    fn timeout(&self) -> Duration {
        Duration::from_millis(u64::try_from(self.tout_ms.load(Ordering::Relaxed)).unwrap_or(1000))
    }

    /// One try at daemon `d` (the RPC ping).
    fn call_one(&self, d: SocketAddr, req: &Ben) -> Result<Ben, String> {
        ng::exchange(&[d], req, self.timeout(), 1).map_err(|(e, _)| e)
    }

    fn call(&self, req: &Ben) -> Result<Ben, String> {
        let tries = u32::try_from(self.retr.load(Ordering::Relaxed)).unwrap_or(5);
        let r = match ng::exchange(&self.up(), req, self.timeout(), tries) {
            Ok(r) => {
                // Whoever answered is up again.
                self.down.lock().unwrap_or_else(|e| e.into_inner()).clear();
                r
            }
            Err((e, dead)) => {
                let secs = u64::try_from(self.disable_tout.load(Ordering::Relaxed)).unwrap_or(60);
                let until = Instant::now() + Duration::from_secs(secs);
                let mut down = self.down.lock().unwrap_or_else(|e| e.into_inner());
                for d in dead {
                    lm_warn!("rtpengine: {d} does not answer; skipped for {secs} s");
                    down.insert(d, until);
                }
                return Err(e);
            }
        };
        match r.get("result").and_then(Ben::as_str) {
            Some("ok") | Some("pong") => Ok(r),
            Some(other) => Err(format!(
                "{other}: {}",
                r.get("error-reason").and_then(Ben::as_str).unwrap_or("")
            )),
            None => Err("an answer without a result".into()),
        }
    }
}

/// What an ng command needs from the message.
struct Call {
    call_id: String,
    from_tag: String,
    to_tag: Option<String>,
    source: IpAddr,
}

fn call_of(msg: &SipMsg) -> Option<Call> {
    let m = msg.msg();
    Some(Call {
        call_id: m.call_id().ok()?.to_string(),
        from_tag: m.from_tag().ok().flatten()?.to_string(),
        to_tag: m.to_tag().ok().flatten().map(str::to_string),
        source: msg.rcv.src.ip(),
    })
}

fn has_sdp(msg: &SipMsg) -> bool {
    let m = msg.msg();
    let ct = m
        .value(HeaderName::ContentType)
        .unwrap_or("")
        .to_ascii_lowercase();
    !msg.body().is_empty() && (ct.is_empty() || ct.starts_with("application/sdp"))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Cmd {
    Offer,
    Answer,
    Delete,
    Query,
}

impl Cmd {
    fn name(self) -> &'static str {
        match self {
            Cmd::Offer => "offer",
            Cmd::Answer => "answer",
            Cmd::Delete => "delete",
            Cmd::Query => "query",
        }
    }
}

/// Runs one command for the message; 1 or -1.
fn run(rt: &Rtpe, msg: &mut SipMsg, cmd: Cmd, flags: &str) -> i32 {
    let Some(call) = call_of(msg) else {
        lm_err!("rtpengine: no Call-ID or From tag");
        return -1;
    };
    // The body goes as it is (bytes, not text: SDP may carry any octet).
    let sdp = msg.body().to_vec();
    if matches!(cmd, Cmd::Offer | Cmd::Answer) && sdp.is_empty() {
        lm_err!("rtpengine_{}: the message has no SDP", cmd.name());
        return -1;
    }
    let family = if call.source.is_ipv6() { "IP6" } else { "IP4" };
    let src = call.source.to_string();
    // `from-tag` is always the offerer's (as Kamailio sends them): the
    // tags swap for an answer in a request (the ACK of a late offer) and
    // an offer in a reply.
    let is_request = msg.msg().is_request();
    let swap = (cmd == Cmd::Answer && is_request) || (cmd == Cmd::Offer && !is_request);
    let (from_tag, to_tag) = match (&call.to_tag, swap) {
        (Some(t), true) => (t.as_str(), Some(call.from_tag.as_str())),
        _ => (call.from_tag.as_str(), call.to_tag.as_deref()),
    };
    let mut entries: Vec<(&str, &str)> = vec![("call-id", &call.call_id), ("from-tag", from_tag)];
    // A delete names the whole call unless the `to-tag` flag asks for one
    // side.
    let word = |w: &str| flags.split_whitespace().any(|f| f == w);
    if let Some(t) = to_tag.filter(|_| cmd != Cmd::Delete || word("to-tag")) {
        entries.push(("to-tag", t));
    }
    let flags = flags
        .split_whitespace()
        .filter(|w| *w != "to-tag")
        .collect::<Vec<_>>()
        .join(" ");
    let mut req = ng::request(cmd.name(), &entries, &flags);
    if let Ben::Dict(d) = &mut req {
        if matches!(cmd, Cmd::Offer | Cmd::Answer) {
            d.insert(b"sdp".to_vec(), Ben::Bytes(sdp));
        }
        d.entry(b"received-from".to_vec())
            .or_insert_with(|| Ben::List(vec![Ben::str(family), Ben::str(&src)]));
    }
    match rt.call(&req) {
        Ok(r) => {
            if matches!(cmd, Cmd::Offer | Cmd::Answer) {
                let Some(Ben::Bytes(new)) = r.get("sdp") else {
                    lm_err!("rtpengine_{}: no SDP in the answer", cmd.name());
                    return -1;
                };
                msg.edits.set_body(new, None);
            }
            1
        }
        Err(e) => {
            lm_err!("rtpengine_{}: {e}", cmd.name());
            -1
        }
    }
}

/// A media-control command (`block media`, `start recording`, ...) for
/// the message's call: its Call-ID, From tag and To tag, and the flags
/// (`key=value` words as dictionary entries). 1 when the daemon says
/// `ok`, else -1.
fn media_cmd(rt: &Rtpe, msg: &SipMsg, cmd: &str, flags: &str) -> i32 {
    let Some(call) = call_of(msg) else {
        lm_err!("rtpengine: no Call-ID or From tag");
        return -1;
    };
    let mut entries: Vec<(&str, &str)> =
        vec![("call-id", &call.call_id), ("from-tag", &call.from_tag)];
    if let Some(t) = call.to_tag.as_deref() {
        entries.push(("to-tag", t));
    }
    let req = ng::request(cmd, &entries, flags);
    match rt.call(&req) {
        Ok(_) => 1,
        Err(e) => {
            lm_err!("rtpengine: {cmd}: {e}");
            -1
        }
    }
}

/// `$rtpstat` / `$rtpestat`: the daemon's packet counters for the call
/// (a `query`), as Kamailio writes them: `RTP: B bytes, P packets, E
/// errors; RTCP: ...`. Empty when the daemon does not know the call (as
/// Kamailio's).
fn rtp_stats(rt: &Rtpe, msg: &SipMsg) -> Value<'static> {
    let Some(call) = call_of(msg) else {
        return Value::from(String::new());
    };
    let mut entries: Vec<(&str, &str)> =
        vec![("call-id", &call.call_id), ("from-tag", &call.from_tag)];
    if let Some(t) = call.to_tag.as_deref() {
        entries.push(("to-tag", t));
    }
    let Ok(r) = rt.call(&ng::request("query", &entries, "")) else {
        return Value::from(String::new());
    };
    let n = |part: &str, what: &str| match r
        .get("totals")
        .and_then(|t| t.get(part))
        .and_then(|p| p.get(what))
    {
        Some(Ben::Int(i)) => *i,
        _ => 0,
    };
    Value::from(format!(
        "RTP: {} bytes, {} packets, {} errors; RTCP: {} bytes, {} packets, {} errors",
        n("RTP", "bytes"),
        n("RTP", "packets"),
        n("RTP", "errors"),
        n("RTCP", "bytes"),
        n("RTCP", "packets"),
        n("RTCP", "errors"),
    ))
}

/// The media-control functions and the ng commands they send.
const MEDIA_CMDS: &[(&str, &str)] = &[
    ("start_recording", "start recording"),
    ("stop_recording", "stop recording"),
    ("block_dtmf", "block DTMF"),
    ("unblock_dtmf", "unblock DTMF"),
    ("block_media", "block media"),
    ("unblock_media", "unblock media"),
    ("silence_media", "silence media"),
    ("unsilence_media", "unsilence media"),
    ("start_forwarding", "start forwarding"),
    ("stop_forwarding", "stop forwarding"),
    ("play_media", "play media"),
    ("stop_media", "stop media"),
    ("play_dtmf", "play DTMF"),
];

/// The command `rtpengine_manage` picks for the message in a route of
/// kind `route`, if any (`late_offer`: the message is a reply to an INVITE
/// that had no SDP).
fn manage_cmd(msg: &SipMsg, route: RouteType, late_offer: bool) -> Option<Cmd> {
    // As Kamailio: in failure_route the call failed (the message is the
    // INVITE); a branch's failure alone changes nothing.
    if route == RouteType::FAILURE {
        return Some(Cmd::Delete);
    }
    if route == RouteType::BRANCH_FAILURE {
        return None;
    }
    let m = msg.msg();
    if let Some(method) = m.method() {
        return match method.as_str() {
            "INVITE" | "UPDATE" if has_sdp(msg) => Some(Cmd::Offer),
            "ACK" if has_sdp(msg) => Some(Cmd::Answer),
            "BYE" | "CANCEL" => Some(Cmd::Delete),
            _ => None,
        };
    }
    let code = m.status()?;
    let method = m.cseq().ok().map(|c| c.method.as_str().to_string())?;
    match (method.as_str(), code) {
        (_, 100) => None,
        // The offer of a late-offer call (an INVITE without SDP) comes in
        // the reply; `late_offer` is settled by the caller, which can see
        // the transaction's request.
        ("INVITE", 101..=299) if has_sdp(msg) && late_offer => Some(Cmd::Offer),
        ("INVITE" | "UPDATE" | "PRACK", 101..=299) if has_sdp(msg) => Some(Cmd::Answer),
        ("INVITE", 300..) => Some(Cmd::Delete),
        _ => None,
    }
}

/// Whether the transaction of the reply in `ctx` was an INVITE without
/// SDP (tm's request, as `$T_req($rb)` reads it); false without tm.
fn late_offer(tm: &OnceLock<Option<Arc<TmApi>>>, ctx: &mut Ctx<'_>) -> bool {
    if ctx.msg.is_request() {
        return false;
    }
    let Some(api) = tm.get_or_init(|| bind::<TmApi>(ctx.core, TM_API)) else {
        return false;
    };
    api.t_req(ctx, "$rb")
        .is_some_and(|v| v.is_null() || v.as_str().trim().is_empty())
}

/// The module definition.
pub fn module() -> ModuleDef {
    let rt = Arc::new(Rtpe::default());
    rt.tout_ms.store(1000, Ordering::Relaxed);
    rt.retr.store(5, Ordering::Relaxed);
    rt.disable_tout.store(60, Ordering::Relaxed);
    let spve = Some(fixup::f(fixup::spve));
    let init = rt.clone();
    let mut def = ModuleDef::new("rtpengine")
        .param("rtpengine_sock", ParamKind::Str, params::string(&rt.socks))
        .param(
            "rtpengine_tout_ms",
            ParamKind::Int,
            params::int(&rt.tout_ms),
        )
        .param("rtpengine_retr", ParamKind::Int, params::int(&rt.retr))
        .param(
            "rtpengine_disable_tout",
            ParamKind::Int,
            params::int(&rt.disable_tout),
        )
        .on_init(move |_core| {
            let s = init
                .socks
                .read()
                .map_err(|_| "rtpengine: lock".to_string())?
                .clone();
            let v = ng::parse_socks(&s).map_err(|e| format!("rtpengine: {e}"))?;
            if v.is_empty() {
                return Err("rtpengine: rtpengine_sock is not set".into());
            }
            let _ = init.daemons.set(v);
            Ok(())
        });
    for p in [
        "aggressive_redetection",
        "queried_nodes_limit",
        "extra_id_pv",
        "setid_avp",
        "setid_default",
        "write_sdp_pv",
        "read_sdp_pv",
        "force_send_interface",
        "hash_table_size",
        "hash_table_tout",
        "rtp_inst_pvar",
        "db_url",
        "table_name",
        "mos_min_pv",
        "mos_max_pv",
        "mos_average_pv",
        "control_cmd_tos",
        "rtpengine_allow_op",
        "ping_mode",
        "ping_interval",
    ] {
        def = def.param(p, ParamKind::Any, |_| Ok(()));
    }
    for (name, cmd) in [
        ("rtpengine_offer", Some(Cmd::Offer)),
        ("rtpengine_answer", Some(Cmd::Answer)),
        ("rtpengine_delete", Some(Cmd::Delete)),
        ("rtpengine_query", Some(Cmd::Query)),
        ("rtpengine_manage", None),
    ] {
        for nargs in [0usize, 1] {
            let r = rt.clone();
            let tm: OnceLock<Option<Arc<TmApi>>> = OnceLock::new();
            let fix = if nargs == 1 { spve.clone() } else { None };
            def = def.cmd(name, nargs, RouteType::ANY, fix, move |ctx, p| {
                let flags = p
                    .first()
                    .map(|f| f.str(ctx).into_owned())
                    .unwrap_or_default();
                let cmd = match cmd {
                    Some(c) => Some(c),
                    None => {
                        let late = late_offer(&tm, ctx);
                        manage_cmd(ctx.msg, ctx.route, late)
                    }
                };
                let Some(cmd) = cmd else {
                    return 1;
                };
                run(&r, ctx.msg, cmd, &flags)
            });
        }
    }
    for (name, cmd) in MEDIA_CMDS {
        for nargs in [0usize, 1] {
            let r = rt.clone();
            let fix = if nargs == 1 { spve.clone() } else { None };
            def = def.cmd(name, nargs, RouteType::ANY, fix, move |ctx, p| {
                let flags = p
                    .first()
                    .map(|f| f.str(ctx).into_owned())
                    .unwrap_or_default();
                media_cmd(&r, ctx.msg, cmd, &flags)
            });
        }
    }
    for name in ["rtpstat", "rtpestat"] {
        let r = rt.clone();
        def = def.pv(name, move |ctx, _| rtp_stats(&r, ctx.msg));
    }
    let r = rt.clone();
    def.rpc("rtpengine.ping", "Pings every rtpengine daemon.", move |_| {
        let daemons = r.daemons.get().cloned().unwrap_or_default();
        let mut out = Vec::new();
        for d in daemons {
            let ok = r
                .call_one(d, &ng::request("ping", &[], ""))
                .is_ok();
            out.push(json!({"url": format!("udp:{d}"), "status": if ok { "success" } else { "fail" }}));
        }
        Ok(json!(out))
    })
}
