//! # rtpproxy: media through RTPProxy
//!
//! Kamailio's `rtpproxy` module: asks an RTPProxy (Sippy's media relay,
//! its control protocol over UDP or a UNIX socket) for a relay port per
//! media stream and rewrites the SDP (`m=` port, `c=` and `o=` addresses,
//! `a=rtcp:`, ICE relay candidates) so both ends send their media to it;
//! the stock configuration's WITH_NAT.
//!
//! - `rtpproxy_offer([flags[, ip]])`, `rtpproxy_answer([flags[, ip]])`:
//!   one `U` or `L` command per stream ([`command`]), the SDP rewritten
//!   ([`sdp`]), `nortpproxy_str` added.
//! - `rtpproxy_manage([flags[, ip]])`: the command the message calls for.
//! - `rtpproxy_destroy([flags])` (`unforce_rtp_proxy`), `start_recording()`,
//!   `rtpproxy_stream2uac/uas`, `rtpproxy_stop_stream2uac/uas`,
//!   `set_rtp_proxy_set(id)`, `$rtpstat`.
//! - Instances in sets, picked by the Call-ID over their weights, disabled
//!   when silent and tested again later ([`nodes`]); RPC `rtpproxy.list`
//!   and `rtpproxy.enable`.
#![forbid(unsafe_code)]

pub mod command;
pub mod nodes;
pub mod sdp;

use command::{Flags, StreamCmd};
use nodes::{Node, Sets, Timing};
use sr_mod_tm::api::{TmApi, TM_API};
use sr_sdk::prelude::*;
use std::net::IpAddr;
use std::ops::Range;
use std::sync::atomic::AtomicI64;
use std::sync::{Arc, OnceLock, RwLock};

/// The module's parameters and instances.
struct Rtpp {
    socks: Arc<RwLock<Vec<String>>>,
    disable_tout: Arc<AtomicI64>,
    retr: Arc<AtomicI64>,
    tout: Arc<AtomicI64>,
    marker: Arc<RwLock<String>>,
    timeout_socket: Arc<RwLock<String>>,
    ice_avp: Arc<RwLock<String>>,
    extra_id_pv: Arc<RwLock<String>>,
    inst_pvar: Arc<RwLock<String>>,
    db_url: Arc<RwLock<String>>,
    sets: OnceLock<Sets>,
    tm: OnceLock<Option<Arc<TmApi>>>,
    /// `extra_id_pv` compiled (by the first fixup of a function with
    /// flags; the flag that uses it comes with them).
    extra_fmt: OnceLock<Option<Arc<dyn fixup::Eval>>>,
}

/// The set `set_rtp_proxy_set` chose for this message.
#[derive(Debug, Clone, Copy)]
struct ChosenSet(u32);

/// Why an offer or answer failed.
const ERR: i32 = -1;
/// The SDP already went through a proxy (`nortpproxy_str`).
const MARKED: i32 = -2;
/// No proxy answers.
const NO_PROXY: i32 = -3;

impl Rtpp {
    fn timing(&self) -> Timing {
        Timing {
            retr: u32::try_from(params::get_int(&self.retr)).unwrap_or(0),
            tout: u64::try_from(params::get_int(&self.tout)).unwrap_or(1),
            disable_tout: params::get_int(&self.disable_tout),
        }
    }

    /// The marker line, without the CR/LF Kamailio strips.
    fn marker(&self) -> String {
        params::get_str(&self.marker)
            .trim_end_matches(['\r', '\n'])
            .to_string()
    }

    /// The set for this message: the chosen one, else set 0.
    fn set(&self, msg: &SipMsg) -> Option<&[Arc<Node>]> {
        let id = msg.ext.get::<ChosenSet>().map_or(0, |c| c.0);
        self.sets
            .get()?
            .sets
            .iter()
            .find(|s| s.0 == id)
            .map(|s| s.1.as_slice())
    }

    /// The instance for the call (and `rtp_inst_pvar` set to it).
    fn node(&self, ctx: &mut Ctx<'_>, call_id: &str) -> Option<Arc<Node>> {
        let Some(set) = self.set(ctx.msg) else {
            lm_err!("rtpproxy: script error -no valid set selected");
            return None;
        };
        let n = nodes::select(set, call_id.as_bytes(), self.timing());
        match &n {
            Some(n) => {
                let pv = params::get_str(&self.inst_pvar);
                if !pv.is_empty() {
                    let _ = ctx
                        .core
                        .pv_set(ctx.msg, &pv, Value::Str(n.url.clone().into()));
                }
            }
            None => lm_err!("rtpproxy: no available proxies"),
        }
        n
    }

    /// Sends a command with no SDP change to the call's instance; its
    /// answer, or `None` when there is no instance (an instance that does
    /// not answer gives an empty answer, as Kamailio returns success).
    fn simple(&self, ctx: &mut Ctx<'_>, call_id: &str, cmd: &str) -> Option<String> {
        let node = self.node(ctx, call_id)?;
        Some(nodes::send(&node, cmd, self.timing()).unwrap_or_default())
    }
}

/// The message's Call-ID and tags, as the commands need them.
struct Ids {
    call_id: String,
    from_tag: String,
    to_tag: String,
}

fn ids(msg: &SipMsg) -> Result<Ids, &'static str> {
    ids_with(msg, true)
}

/// [`ids`], reading the To header only when `to` (a destroy with flag
/// `t` does not).
fn ids_with(msg: &SipMsg, to: bool) -> Result<Ids, &'static str> {
    let m = msg.msg();
    let call_id = m
        .call_id()
        .map(|c| c.trim().to_string())
        .unwrap_or_default();
    if call_id.is_empty() {
        return Err("can't get Call-Id field");
    }
    let from_tag = m.from_tag().ok().flatten().unwrap_or("").to_string();
    if from_tag.is_empty() {
        return Err("can't get From tag");
    }
    if to && m.value(HeaderName::To).is_none() {
        return Err("can't get To tag");
    }
    let to_tag = if to {
        m.to_tag().ok().flatten().unwrap_or("").to_string()
    } else {
        String::new()
    };
    Ok(Ids {
        call_id,
        from_tag,
        to_tag,
    })
}

/// The Call-ID as the commands carry it: with `;branch` of a Via (flags
/// `1`-`3`) or `;extra_id_pv`.
fn call_id_with_suffix(rt: &Rtpp, ctx: &mut Ctx<'_>, f: &Flags, bare: &str) -> Option<String> {
    let via = match f.via {
        3 if ctx.msg.is_request() => 1,
        3 => 2,
        v => v,
    };
    if via > 0 {
        let branch = ctx
            .msg
            .msg()
            .vias()
            .nth(usize::from(via) - 1)
            .and_then(Result::ok)
            .and_then(|v| v.branch().map(str::to_string));
        let Some(b) = branch.filter(|b| !b.is_empty()) else {
            lm_err!("rtpproxy: can't get Via branch");
            return None;
        };
        return Some(format!("{bare};{b}"));
    }
    if f.extra {
        if let Some(Some(fmt)) = rt.extra_fmt.get() {
            let v = fmt.eval(ctx);
            return Some(format!("{bare};{}", v.as_str()));
        }
    }
    Some(bare.to_string())
}

/// Where the SDP is in the body: all of it for `application/sdp`, the
/// first SDP part of a `multipart/mixed` body.
fn sdp_range(msg: &SipMsg) -> Option<Range<usize>> {
    let m = msg.msg();
    let body = msg.body();
    if body.is_empty() {
        return None;
    }
    let ct = m
        .value(HeaderName::ContentType)?
        .trim()
        .to_ascii_lowercase();
    if ct.starts_with("application/sdp") {
        return Some(0..body.len());
    }
    if !ct.starts_with("multipart/mixed") {
        return None;
    }
    let raw = m.value(HeaderName::ContentType)?;
    let b = raw
        .split(';')
        .skip(1)
        .filter_map(|p| p.split_once('='))
        .find(|(k, _)| k.trim().eq_ignore_ascii_case("boundary"))?
        .1
        .trim()
        .trim_matches('"');
    let delim = format!("--{b}");
    let text = body;
    let mut starts = Vec::new();
    let mut i = 0;
    while let Some(p) = find(&text[i..], delim.as_bytes()) {
        starts.push(i + p);
        i += p + delim.len();
    }
    for w in starts.windows(2) {
        let part_start = w[0] + delim.len();
        let mut part_end = w[1];
        if text[..part_end].ends_with(b"\r\n") {
            part_end -= 2;
        } else if text[..part_end].ends_with(b"\n") {
            part_end -= 1;
        }
        let part = &text[part_start.min(part_end)..part_end];
        let (head_len, sep) = match (find(part, b"\r\n\r\n"), find(part, b"\n\n")) {
            (Some(p), _) => (p, 4),
            (None, Some(p)) => (p, 2),
            (None, None) => continue,
        };
        let head = String::from_utf8_lossy(&part[..head_len]).to_ascii_lowercase();
        let is_sdp = head.lines().any(|l| {
            l.split_once(':').is_some_and(|(k, v)| {
                k.trim() == "content-type" && v.trim().starts_with("application/sdp")
            })
        });
        if is_sdp {
            let s = part_start + head_len + sep;
            return Some(s..part_end.max(s));
        }
    }
    None
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// The ICE priority to add relay candidates with (1 high, 2 low), or
/// `None` when ICE is off; `Err` for a value out of range.
fn ice_priority(rt: &Rtpp, ctx: &mut Ctx<'_>) -> Result<Option<i64>, ()> {
    let avp = params::get_str(&rt.ice_avp);
    if avp.is_empty() {
        return Ok(None);
    }
    let v = match ctx.core.pv_get(ctx.msg, &avp) {
        Some(v) if !v.is_null() => v.as_int(),
        _ => 2,
    };
    match v {
        0 => Ok(None),
        1 | 2 => Ok(Some(v)),
        _ => {
            lm_err!("rtpproxy: invalid ice candidate priority value");
            Err(())
        }
    }
}

/// `rtpproxy_offer` (`offer`) or `rtpproxy_answer`: one command per
/// stream, the SDP rewritten to the proxy's ports and address.
fn force(rt: &Rtpp, ctx: &mut Ctx<'_>, flags: &str, ip: Option<&str>, offer: bool) -> i32 {
    let f = match command::offer_flags(flags) {
        Ok(f) => f,
        Err(c) => {
            lm_err!("rtpproxy: unknown option `{c}'");
            return ERR;
        }
    };
    if !offer && f.lookup {
        return ERR;
    }
    let Some(range) = sdp_range(ctx.msg) else {
        lm_err!("rtpproxy: can't extract body from the message");
        return ERR;
    };
    let ids = match ids(ctx.msg) {
        Ok(i) => i,
        Err(e) => {
            lm_err!("rtpproxy: {e}");
            return ERR;
        }
    };
    let request = ctx.msg.is_request();
    // Which tag is whose, as Kamailio orders them.
    let swap = if f.lookup { request } else { offer != request };
    if (swap || f.lookup) && ids.to_tag.is_empty() {
        return ERR;
    }
    let (tag_a, tag_b) = if swap {
        (ids.to_tag.as_str(), ids.from_tag.as_str())
    } else {
        (ids.from_tag.as_str(), ids.to_tag.as_str())
    };
    let Some(call_id) = call_id_with_suffix(rt, ctx, &f, &ids.call_id) else {
        return ERR;
    };
    let whole = ctx.msg.body().to_vec();
    let body = &whole[range.clone()];
    let marker = rt.marker();
    let marked = sdp::has_marker(body, marker.as_bytes());
    if marked && !f.force {
        return MARKED;
    }
    let parsed = match sdp::parse(body) {
        Ok(s) => s,
        Err(e) => {
            lm_err!("rtpproxy: Unable to parse sdp: {e}");
            return ERR;
        }
    };
    let Ok(ice) = ice_priority(rt, ctx) else {
        return ERR;
    };
    let src = ctx.msg.rcv.src.ip();
    let local = ctx.msg.rcv.dst.ip();
    let timing = rt.timing();
    let mut rw = sdp::Rewrite::default();
    let mut medianum = 0;
    let mut modifiers = f.modifiers.clone();
    let mut bridged = false;
    let timeout_socket = params::get_str(&rt.timeout_socket);
    for sess in &parsed.sessions {
        let mut session_c_done = false;
        let mut origin_done = false;
        for st in &sess.streams {
            medianum += 1;
            let Some(conn) = st.conn.as_ref().or(sess.conn.as_ref()) else {
                return ERR;
            };
            let sdp_addr = String::from_utf8_lossy(&body[conn.addr.clone()]).into_owned();
            let (addr, sent_v6) = if f.trust_address {
                (sdp_addr.clone(), conn.ipv6)
            } else {
                (ip_text(src), src.is_ipv6())
            };
            // As Kamailio: the `6` and the bridge direction follow the
            // stream's address family, whichever address is sent.
            if f.auto_bridge && !bridged {
                modifiers.push_str(if conn.ipv6 { "EI" } else { "IE" });
                bridged = true;
            }
            let port = String::from_utf8_lossy(&body[st.port.clone()]).into_owned();
            let payloads = sdp::payload_list(&body[st.formats.clone()]);
            // Each failure disables the proxy it went to; a bound on the
            // tries keeps a proxy that answers its tests but not its
            // commands (with rtpproxy_disable_tout 0) from holding the
            // worker for ever.
            let mut tries = 0;
            let reply = loop {
                tries += 1;
                let Some(node) = rt.node(ctx, &ids.call_id).filter(|_| tries <= 8) else {
                    return NO_PROXY;
                };
                let caps = node.state();
                if f.repacketize.is_some() && !caps.repacketize {
                    lm_warn!(
                        "rtpproxy: proxy {} does not support re-packetization",
                        node.url
                    );
                }
                let cmd = StreamCmd {
                    lookup: !offer || f.lookup,
                    modifiers: &modifiers,
                    ipv6: conn.ipv6,
                    repacketize: f.repacketize.as_deref().filter(|_| caps.repacketize),
                    payloads: Some(payloads.as_str()).filter(|_| st.rtp && caps.payload_list),
                    call_id: &call_id,
                    addr: &addr,
                    port: &port,
                    tag_a,
                    tag_b: Some(tag_b),
                    medianum,
                    timeout_socket: Some(timeout_socket.as_str()),
                };
                if let Ok(r) = nodes::send(&node, &cmd.text(), timing) {
                    break r;
                }
            };
            let alloc = match command::parse_allocated(&reply) {
                Ok(a) => a,
                Err(p) => {
                    if !(p == 0 && f.lookup) {
                        lm_err!("rtpproxy: incorrect port {p} in reply from rtp proxy");
                    }
                    return ERR;
                }
            };
            let new_v6 = alloc.ipv6.unwrap_or(sent_v6);
            let old = &body[conn.addr.clone()];
            let new_addr = if sdp::is_null_addr(old, conn.ipv6) {
                if new_v6 { "::" } else { "0.0.0.0" }.to_string()
            } else if let Some(ip) = ip {
                ip.to_string()
            } else if let Some(a) = &alloc.addr {
                a.clone()
            } else {
                ip_text(local)
            };
            if &body[st.port.clone()] != b"0" {
                let p = alloc.port.to_string();
                if body[st.port.clone()] != *p.as_bytes() {
                    rw.replace(st.port.clone(), p.as_bytes());
                }
            }
            if let Some(r) = st.rtcp.as_ref().filter(|r| !r.is_empty()) {
                rw.replace(
                    r.clone(),
                    (u32::from(alloc.port) + 1).to_string().as_bytes(),
                );
            }
            let has_formats = !st.formats.is_empty();
            if let (Some(prio), Some(at), true) = (ice, st.last_candidate, has_formats) {
                let (p2, p1) = if prio == 1 {
                    (2197815294u64, 2197815295u64)
                } else {
                    (16777214, 16777215)
                };
                let foundation: String = new_addr.chars().filter(char::is_ascii_digit).collect();
                let lines = format!(
                    "a=candidate:{foundation} 2 UDP {p2} {new_addr} {} typ relay\r\na=candidate:{foundation} 1 UDP {p1} {new_addr} {} typ relay\r\n",
                    u32::from(alloc.port) + 1,
                    alloc.port
                );
                rw.replace(at..at, lines.as_bytes());
            }
            match &st.conn {
                Some(c) => rw.set_addr(body, c, &new_addr, new_v6),
                None if !session_c_done => {
                    if let Some(c) = &sess.conn {
                        rw.set_addr(body, c, &new_addr, new_v6);
                    }
                    session_c_done = true;
                }
                None => {}
            }
            if f.session_conn && !session_c_done {
                if let Some(c) = &sess.conn {
                    rw.set_addr(body, c, &new_addr, new_v6);
                }
                session_c_done = true;
            }
            if !origin_done {
                if let Some(o) = &sess.origin {
                    rw.set_addr(body, o, &new_addr, new_v6);
                }
                origin_done = true;
            }
        }
    }
    if !marked && !marker.is_empty() {
        let at = sdp::marker_at(body);
        rw.replace(at..at, format!("\r\n{marker}").as_bytes());
    }
    let mut out = whole[..range.start].to_vec();
    out.extend_from_slice(&rw.apply(body));
    out.extend_from_slice(&whole[range.end..]);
    ctx.msg.edits.set_body(&out, None);
    1
}

/// An address as the commands and the SDP write it (IPv6 without
/// brackets).
fn ip_text(ip: IpAddr) -> String {
    ip.to_string()
}

/// `rtpproxy_destroy`: `D`, the whole call or (flag `t`) the From side.
fn destroy(rt: &Rtpp, ctx: &mut Ctx<'_>, flags: &str) -> i32 {
    let f = match command::destroy_flags(flags) {
        Ok(f) => f,
        Err(c) => {
            lm_err!("rtpproxy: unknown option `{c}'");
            return ERR;
        }
    };
    let ids = match ids_with(ctx.msg, !f.no_to_tag) {
        Ok(i) => i,
        Err(e) => {
            lm_err!("rtpproxy: {e}");
            return ERR;
        }
    };
    let Some(call_id) = call_id_with_suffix(rt, ctx, &f, &ids.call_id) else {
        return ERR;
    };
    let mut cmd = format!("D {call_id} {}", ids.from_tag);
    if !f.no_to_tag && !ids.to_tag.is_empty() {
        cmd.push(' ');
        cmd.push_str(&ids.to_tag);
    }
    match rt.simple(ctx, &ids.call_id, &cmd) {
        Some(_) => 1,
        None => ERR,
    }
}

/// The tags of a command that names both sides in the order of the
/// message's direction: (From, To) for a request, (To, From) for a reply,
/// which needs a To-tag.
fn directed(msg: &SipMsg, ids: &Ids) -> Option<(String, String)> {
    if msg.is_request() {
        Some((ids.from_tag.clone(), ids.to_tag.clone()))
    } else if ids.to_tag.is_empty() {
        None
    } else {
        Some((ids.to_tag.clone(), ids.from_tag.clone()))
    }
}

/// `start_recording()`: `R`.
fn record(rt: &Rtpp, ctx: &mut Ctx<'_>) -> i32 {
    let Ok(ids) = ids(ctx.msg) else {
        return ERR;
    };
    let Some((a, b)) = directed(ctx.msg, &ids) else {
        return ERR;
    };
    let mut cmd = format!("R {} {a}", ids.call_id);
    if !b.is_empty() {
        cmd.push(' ');
        cmd.push_str(&b);
    }
    match rt.simple(ctx, &ids.call_id, &cmd) {
        Some(_) => 1,
        None => ERR,
    }
}

/// `rtpproxy_stream2uac/uas` (`prompt` and `count`) and their `stop_`
/// forms (`None`): `P` and `S`.
fn stream(rt: &Rtpp, ctx: &mut Ctx<'_>, to_uac: bool, play: Option<(&str, i64)>) -> i32 {
    let Ok(ids) = ids(ctx.msg) else {
        return ERR;
    };
    let (a, b) = if to_uac {
        (ids.from_tag.clone(), ids.to_tag.clone())
    } else if ids.to_tag.is_empty() {
        return ERR;
    } else {
        (ids.to_tag.clone(), ids.from_tag.clone())
    };
    let tags = if b.is_empty() {
        format!("{a};1 ")
    } else {
        format!("{a};1 {b};1")
    };
    let cmd = match play {
        Some((prompt, count)) => format!("P{count} {} {prompt} session {tags}", ids.call_id),
        None => format!("S {} {tags}", ids.call_id),
    };
    let Some(node) = rt.node(ctx, &ids.call_id) else {
        return ERR;
    };
    if !node.state().payload_list {
        lm_err!("rtpproxy: required functionality is not supported by the version of the RTPproxy running on the selected node");
        return ERR;
    }
    let _ = nodes::send(&node, &cmd, rt.timing());
    1
}

/// `$rtpstat`: the proxy's counters for the call (`Q`).
fn rtpstat(rt: &Rtpp, ctx: &mut Ctx<'_>) -> Value<'static> {
    let Ok(ids) = ids(ctx.msg) else {
        return Value::Null;
    };
    let Some((a, b)) = directed(ctx.msg, &ids) else {
        return Value::Null;
    };
    let cmd = if b.is_empty() {
        format!("Q {} {a}", ids.call_id)
    } else {
        format!("Q {} {a};1 {b}", ids.call_id)
    };
    let Some(node) = rt.node(ctx, &ids.call_id) else {
        return Value::Null;
    };
    match nodes::send(&node, &cmd, rt.timing()) {
        Ok(r) => Value::Str(r.trim_end_matches(['\r', '\n']).to_string().into()),
        Err(_) => Value::Null,
    }
}

/// Whether the body is an SDP the module can read.
fn has_sdp(msg: &SipMsg) -> bool {
    sdp_range(msg).is_some_and(|r| sdp::parse(&msg.body()[r]).is_ok())
}

/// Whether the transaction of the reply in `ctx` had an INVITE with SDP
/// (tm's request); true without tm or without a transaction, as Kamailio
/// then takes a reply's SDP for an answer.
fn request_had_sdp(rt: &Rtpp, ctx: &mut Ctx<'_>) -> bool {
    let Some(api) = rt.tm.get_or_init(|| bind::<TmApi>(ctx.core, TM_API)) else {
        return true;
    };
    match api.t_req(ctx, "$rb") {
        Some(v) => !(v.is_null() || v.as_str().trim().is_empty()),
        None => true,
    }
}

/// `rtpproxy_manage`: what the message calls for.
fn manage(rt: &Rtpp, ctx: &mut Ctx<'_>, flags: &str, ip: Option<&str>) -> i32 {
    if ctx.route == RouteType::BRANCH_FAILURE {
        return 1;
    }
    let Some(method) = ctx
        .msg
        .msg()
        .cseq()
        .ok()
        .map(|c| c.method.as_str().to_string())
    else {
        return ERR;
    };
    if !matches!(
        method.as_str(),
        "INVITE" | "ACK" | "CANCEL" | "BYE" | "UPDATE" | "PRACK"
    ) {
        return ERR;
    }
    if method == "CANCEL" || method == "BYE" {
        return destroy(rt, ctx, flags);
    }
    let sdp = has_sdp(ctx.msg);
    if ctx.msg.is_request() {
        return match method.as_str() {
            "ACK" if sdp => force(rt, ctx, flags, ip, false),
            "PRACK" | "UPDATE" if sdp => force(rt, ctx, flags, ip, true),
            "INVITE" if sdp && ctx.route == RouteType::FAILURE => destroy(rt, ctx, flags),
            "INVITE" if sdp => force(rt, ctx, flags, ip, true),
            _ => ERR,
        };
    }
    let status = ctx.msg.msg().status().unwrap_or(0);
    if status >= 300 {
        return destroy(rt, ctx, flags);
    }
    if !sdp {
        return ERR;
    }
    let offer = method == "INVITE" && !request_had_sdp(rt, ctx);
    force(rt, ctx, flags, ip, offer)
}

/// The module definition.
pub fn module() -> ModuleDef {
    let rt = Arc::new(Rtpp {
        socks: Arc::new(RwLock::new(Vec::new())),
        disable_tout: params::int_cell(60),
        retr: params::int_cell(5),
        tout: params::int_cell(1),
        marker: params::str_cell("a=nortpproxy:yes"),
        timeout_socket: params::str_cell(""),
        ice_avp: params::str_cell(""),
        extra_id_pv: params::str_cell(""),
        inst_pvar: params::str_cell(""),
        db_url: params::str_cell(""),
        sets: OnceLock::new(),
        tm: OnceLock::new(),
        extra_fmt: OnceLock::new(),
    });
    let socks = rt.socks.clone();
    let init = rt.clone();
    let mut def = ModuleDef::new("rtpproxy")
        .param("rtpproxy_sock", ParamKind::Str, move |v| {
            let s = match v {
                ParamValue::Str(s) => s,
                ParamValue::Int(i) => i.to_string(),
            };
            socks.write().map_err(|_| "poisoned".to_string())?.push(s);
            Ok(())
        })
        .param(
            "rtpproxy_disable_tout",
            ParamKind::Int,
            params::int(&rt.disable_tout),
        )
        .param("rtpproxy_retr", ParamKind::Int, params::int(&rt.retr))
        .param("rtpproxy_tout", ParamKind::Int, params::int(&rt.tout))
        .param("nortpproxy_str", ParamKind::Str, params::string(&rt.marker))
        .param(
            "timeout_socket",
            ParamKind::Str,
            params::string(&rt.timeout_socket),
        )
        .param(
            "ice_candidate_priority_avp",
            ParamKind::Str,
            params::string(&rt.ice_avp),
        )
        .param(
            "extra_id_pv",
            ParamKind::Str,
            params::string(&rt.extra_id_pv),
        )
        .param(
            "rtp_inst_pvar",
            ParamKind::Str,
            params::string(&rt.inst_pvar),
        )
        .param("db_url", ParamKind::Str, params::string(&rt.db_url))
        .param("table_name", ParamKind::Str, |_| Ok(()))
        .on_init(move |_core| {
            if !params::get_str(&init.db_url).is_empty() {
                return Err(
                    "rtpproxy: sets from a database (db_url) are not built; use rtpproxy_sock"
                        .into(),
                );
            }
            let mut sets = Sets::default();
            for s in init.socks.read().map_err(|_| "poisoned")?.iter() {
                nodes::add_sock(&mut sets, s).map_err(|e| format!("rtpproxy: {e}"))?;
            }
            let avp = params::get_str(&init.ice_avp);
            if !avp.is_empty() && !avp.starts_with("$avp(") {
                return Err(format!(
                    "rtpproxy: ice_candidate_priority_avp '{avp}' is not an AVP"
                ));
            }
            let pv = params::get_str(&init.inst_pvar);
            if !pv.is_empty()
                && !["$avp(", "$xavp(", "$var("]
                    .iter()
                    .any(|p| pv.starts_with(p))
            {
                return Err(format!(
                    "rtpproxy: rtp_inst_pvar '{pv}' must be an $avp, $xavp or $var"
                ));
            }
            nodes::ticks();
            // Each proxy is tested before the workers take calls (as
            // Kamailio's children do before theirs).
            for n in sets.sets.iter().flat_map(|s| s.1.iter()) {
                nodes::test(n, init.timing(), true);
            }
            let _ = init.sets.set(sets);
            Ok(())
        });
    // The flags' fixup also compiles `extra_id_pv` (a format, as in
    // Kamailio: text and pseudo-variables).
    let spve: Option<fixup::FixupFn> = {
        let r = rt.clone();
        Some(Arc::new(move |env, i, arg| {
            if r.extra_fmt.get().is_none() {
                let fmt = params::get_str(&r.extra_id_pv);
                let compiled = if fmt.is_empty() {
                    None
                } else {
                    Some(
                        env.compile_format(&fmt)
                            .map_err(|e| format!("rtpproxy: extra_id_pv '{fmt}': {e}"))?,
                    )
                };
                let _ = r.extra_fmt.set(compiled);
            }
            fixup::spve(env, i, arg)
        }))
    };
    for (name, offer) in [
        ("rtpproxy_offer", Some(true)),
        ("rtpproxy_answer", Some(false)),
        ("rtpproxy_manage", None),
    ] {
        for nargs in 0..=2usize {
            let r = rt.clone();
            let fix = (nargs > 0).then(|| spve.clone()).flatten();
            def = def.cmd(name, nargs, RouteType::ANY, fix, move |ctx, p| {
                let flags = p
                    .first()
                    .map(|f| f.str(ctx).into_owned())
                    .unwrap_or_default();
                let ip = p
                    .get(1)
                    .map(|f| f.str(ctx).into_owned())
                    .filter(|s| !s.is_empty());
                match offer {
                    Some(true) => force(&r, ctx, &flags, ip.as_deref(), true),
                    Some(false) => {
                        if ctx.msg.is_request()
                            && ctx
                                .msg
                                .msg()
                                .method()
                                .map(|m| m.as_str() != "ACK")
                                .unwrap_or(true)
                        {
                            return ERR;
                        }
                        force(&r, ctx, &flags, ip.as_deref(), false)
                    }
                    None => manage(&r, ctx, &flags, ip.as_deref()),
                }
            });
        }
    }
    for name in ["rtpproxy_destroy", "unforce_rtp_proxy"] {
        for nargs in 0..=1usize {
            let r = rt.clone();
            let fix = (nargs > 0).then(|| spve.clone()).flatten();
            def = def.cmd(name, nargs, RouteType::ANY, fix, move |ctx, p| {
                let flags = p
                    .first()
                    .map(|f| f.str(ctx).into_owned())
                    .unwrap_or_default();
                destroy(&r, ctx, &flags)
            });
        }
    }
    let r = rt.clone();
    def = def.cmd("start_recording", 0, RouteType::ANY, None, move |ctx, _| {
        record(&r, ctx)
    });
    for (name, uac) in [
        ("rtpproxy_stream2uac", true),
        ("rtpproxy_stream2uas", false),
    ] {
        let r = rt.clone();
        let fix: Option<fixup::FixupFn> = Some(Arc::new(|env, i, arg| {
            if i == 0 {
                fixup::spve(env, i, arg)
            } else {
                fixup::const_int(env, i, arg)
            }
        }));
        def = def.cmd(name, 2, RouteType::ANY, fix, move |ctx, p| {
            let prompt = p[0].str(ctx).into_owned();
            let count = p[1].int(ctx);
            stream(&r, ctx, uac, Some((&prompt, count)))
        });
        let r = rt.clone();
        let stop = format!("rtpproxy_stop_{}", &name["rtpproxy_".len()..]);
        def = def.cmd(&stop, 0, RouteType::ANY, None, move |ctx, _| {
            stream(&r, ctx, uac, None)
        });
    }
    let r = rt.clone();
    let set_fix: fixup::FixupFn = {
        let r = rt.clone();
        Arc::new(move |env, i, arg| {
            let fixed = fixup::igp(env, i, arg)?;
            if let Fixed::Int(id) = &fixed {
                // The set ids as configured (mod_init, which builds the
                // sets, does not run in a check with -c).
                let socks = r.socks.read().map(|v| v.clone()).unwrap_or_default();
                if !nodes::set_ids(&socks).contains(id) {
                    return Err(format!("rtpproxy set {id} is not configured"));
                }
            }
            Ok(fixed)
        })
    };
    def = def.cmd(
        "set_rtp_proxy_set",
        1,
        RouteType::ANY,
        Some(set_fix),
        move |ctx, p| {
            let v = match &p[0] {
                Fixed::Dyn(e) => e.eval(ctx),
                Fixed::Pv(e) => e.eval(ctx),
                other => Value::Int(other.int(ctx)),
            };
            let Value::Int(id) = v else {
                lm_err!("rtpproxy: set_rtp_proxy_set: the value must be an integer");
                return ERR;
            };
            let known = r
                .sets
                .get()
                .is_some_and(|s| s.sets.iter().any(|(sid, _)| i64::from(*sid) == id));
            match u32::try_from(id) {
                Ok(id) if known => {
                    ctx.msg.ext.insert(ChosenSet(id));
                    1
                }
                _ => {
                    lm_err!("rtpproxy: could not locate rtpproxy set {id}");
                    ERR
                }
            }
        },
    );
    for pv in ["rtpstat", "rtppstat"] {
        let r = rt.clone();
        def = def.pv(pv, move |ctx, _| rtpstat(&r, ctx));
    }
    let r = rt.clone();
    def = def.rpc(
        "rtpproxy.list",
        "Lists the RTPProxy instances.",
        move |_| {
            let mut out = Vec::new();
            if let Some(sets) = r.sets.get() {
                for n in sets.sets.iter().flat_map(|s| s.1.iter()) {
                    let st = n.state();
                    out.push(json!({
                        "setid": n.setid,
                        "url": n.url,
                        "index": n.index,
                        "disabled": i32::from(st.disabled),
                        "weight": n.weight,
                        "recheck": st.recheck,
                    }));
                }
            }
            Ok(Json::Array(out))
        },
    );
    let r = rt.clone();
    def.rpc(
        "rtpproxy.enable",
        "Enables (1) or disables (0) an RTPProxy instance by its URL.",
        move |p| {
            if p.len() < 2 {
                return Err(RpcError::new(500, "Not enough parameters"));
            }
            let url = sr_sdk::rpc::param_str(p, 0, "url")?;
            let on = sr_sdk::rpc::param_int(p, 1, "enable")?;
            let mut found = false;
            if let Some(sets) = r.sets.get() {
                for n in sets
                    .sets
                    .iter()
                    .flat_map(|s| s.1.iter())
                    .filter(|n| n.url == url)
                {
                    found = true;
                    let mut st = n.state.lock().unwrap_or_else(|e| e.into_inner());
                    st.disabled = on == 0;
                    st.recheck = if on == 0 { nodes::FOREVER } else { 0 };
                }
            }
            if found {
                Ok(Json::Null)
            } else {
                Err(RpcError::new(404, "RTPProxy not found"))
            }
        },
    )
}
