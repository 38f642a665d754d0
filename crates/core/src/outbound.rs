//! Building and addressing what the server sends: forwarded requests
//! (Via added, stateless branch per RFC 3261 16.11, received/rport on the
//! previous hop's Via), local replies, replies relayed by Via, and target
//! resolution (RFC 3263 without NAPTR/SRV for now: transport parameter,
//! literal addresses, A/AAAA).

use crate::runtime::Runtime;
use crate::udp_send_queue::HeldKind;
use sip_msg::build::{reply, ReplyOptions};
use sip_msg::edit::{ApplyOptions, Edits};
use sip_msg::{text, HeaderName, Message, Scheme, Uri};
use sr_sdk::{tag, BranchTarget, Dest, Outgoing, Proto, SendError, SipMsg};
use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::time::Instant;

fn err(m: impl Into<String>) -> SendError {
    SendError(m.into())
}

/// The top Via of a received request with `received`/`rport` filled in as
/// RFC 3261 18.2.1 and RFC 3581 say: `(value start, value end, new text)`
/// of the first via-parm, or `None` when nothing changes.
///
/// Where they go is Kamailio's: on a forwarded request (`reply` false)
/// `received` goes before the first parameter, or replaces one already
/// there, and `rport` is rewritten where it is, or added right after
/// `received`; on a local reply `rport` is rewritten where it is (or
/// added at the end) and `received` comes last. An `rport` with a value
/// is rewritten too, as Kamailio does.
pub fn top_via_fix(msg: &SipMsg, reply: bool) -> Option<(u32, u32, String)> {
    let m = msg.msg();
    let via = m.top_via().ok()?;
    // Where the top via-parm is in the message: the Via line holding it
    // (an empty first Via line or a leading comma put it elsewhere than
    // at the start of the first line's value).
    let (h, at) = m
        .headers_named(HeaderName::Via)
        .find_map(|h| Some((h, sip_msg::scan::offset_in(h.value.as_bytes(), via.raw)?.0)))?;
    let src = msg.rcv.src;
    let host_differs = match via.host.ip() {
        Some(ip) => ip != src.ip(),
        None => true,
    };
    // (A `received` the client wrote itself is always replaced.)
    let has_received = via.received().is_some();
    let want_rport = via.known.rport.is_some() || msg.force_rport;
    if !host_differs && !want_rport && !has_received {
        return None;
    }
    // `received` when the sent-by is not the source (RFC 3261 18.2.1) or
    // the client asked for `rport` (RFC 3581 4: then always); `rport`
    // forced by the script alone does not add it, as in Kamailio.
    let add_received = host_differs || via.known.rport.is_some() || has_received;
    let raw = via.raw;
    // Each parameter's span in `raw`, from its `;` to the end of its value.
    let span = |name: &str| -> Option<(usize, usize)> {
        sip_msg::params::Params::new(via.params).find_map(|p| {
            if !p.name.eq_ignore_ascii_case(name) {
                return None;
            }
            let start = sip_msg::scan::offset_in(raw.as_bytes(), p.name)?.0;
            let end = match p.value {
                Some(v) => sip_msg::scan::offset_in(raw.as_bytes(), v)?.0 + v.len(),
                None => start + p.name.len(),
            };
            let semi = raw[..start].rfind(';')?;
            Some((semi, end))
        })
    };
    let mut received = String::from(";received=");
    text::push_ip(&mut received, src.ip());
    let mut rport = String::from(";rport=");
    text::push_dec(&mut rport, u64::from(src.port()));
    let rport_at = if want_rport { span("rport") } else { None };
    // (start, end, text) edits of `raw`, in order.
    let mut edits: Vec<(usize, usize, String)> = Vec::with_capacity(3);
    let end = raw.trim_end().len();
    if reply {
        if let Some((s, e)) = rport_at {
            edits.push((s, e, rport.clone()));
        }
        let mut tail = String::new();
        if want_rport && rport_at.is_none() {
            tail.push_str(&rport);
        }
        if add_received {
            tail.push_str(&received);
        }
        edits.push((end, end, tail));
    } else {
        // The point before the first parameter (after the sent-by when
        // there are none).
        let anchor = match sip_msg::scan::offset_in(raw.as_bytes(), via.params) {
            Some((p, _)) if !via.params.is_empty() => p.saturating_sub(1),
            _ => raw.find(';').unwrap_or(end),
        };
        let (rs, re) = if add_received {
            span("received").unwrap_or((anchor, anchor))
        } else {
            (anchor, anchor)
        };
        let mut text = if add_received {
            received.clone()
        } else {
            String::new()
        };
        if want_rport && rport_at.is_none() {
            text.push_str(&rport);
        }
        edits.push((rs, re, text));
        if let Some((s, e)) = rport_at {
            edits.push((s, e, rport.clone()));
        }
        edits.sort_by_key(|e| e.0);
    }
    let mut out = String::with_capacity(raw.len() + 48);
    let mut pos = 0;
    for (s, e, t) in edits {
        if s < pos {
            continue;
        }
        out.push_str(&raw[pos..s]);
        out.push_str(&t);
        pos = e;
    }
    out.push_str(&raw[pos..]);
    let start = h.value_start + u32::try_from(at).ok()?;
    let end = start + u32::try_from(raw.len()).ok()?;
    Some((start, end, out))
}

/// How every stateless To-tag starts.
pub const STATELESS_TAG_PREFIX: &str = "sl.";

/// The `tag` parameter of a From value, found without decoding its URI
/// (which a stateless reply has no other use for): the header parameters
/// are what follows the last `>` of a name-addr (a URI cannot hold one),
/// or the first `;` of a bare addr-spec. The same as the decoded From's tag
/// for every well-formed value; on a malformed one it still gives the same
/// text for the same value, which is all the To-tag needs.
fn from_tag_text(value: &str) -> &str {
    let params = match value.rfind('>') {
        Some(i) => &value[i + 1..],
        None if value.contains('<') => "",
        None => value.find(';').map_or("", |i| &value[i..]),
    };
    sip_msg::params::Params::new(params)
        .get("tag")
        .flatten()
        .unwrap_or("")
}

/// A stateless To-tag (sl): stable for retransmissions of one request
/// (and for the ACK of a negative reply, which has the same Call-ID, From
/// tag and branch), a keyed hash of those three.
pub fn stateless_to_tag(msg: &SipMsg) -> String {
    let m = msg.msg();
    let call_id = m.value(HeaderName::CallId).unwrap_or("");
    let from_tag = from_tag_text(m.value(HeaderName::From).unwrap_or(""));
    let via = m.top_via().ok();
    let branch = via.as_ref().and_then(|v| v.branch()).unwrap_or("");
    let h = tag::hash64(
        b's',
        &[call_id.as_bytes(), from_tag.as_bytes(), branch.as_bytes()],
    );
    let mut out = String::with_capacity(19);
    out.push_str(STATELESS_TAG_PREFIX);
    tag::push_hex64(&mut out, h);
    out
}

/// The stateless branch for a forwarded request (RFC 3261 16.11): the
/// same for retransmissions and for a CANCEL of the request.
pub fn stateless_branch(msg: &SipMsg, target: &str) -> String {
    let m = msg.msg();
    let (a, b) = match m.top_via() {
        Ok(v) if v.is_rfc3261_branch() => {
            let port = v.port.unwrap_or(0).to_be_bytes();
            let parts: [&[u8]; 4] = [
                v.branch().unwrap_or("").as_bytes(),
                v.host_str.as_bytes(),
                &port,
                target.as_bytes(),
            ];
            (tag::hash64(b'b', &parts), tag::hash64(b'B', &parts))
        }
        _ => {
            let cseq = m.cseq().map_or(0, |c| c.seq).to_be_bytes();
            let parts: [&[u8]; 5] = [
                m.value(HeaderName::CallId).unwrap_or("").as_bytes(),
                m.from_tag().ok().flatten().unwrap_or("").as_bytes(),
                &cseq,
                m.request_uri().map_or("", |u| u.raw).as_bytes(),
                target.as_bytes(),
            ];
            (tag::hash64(b'b', &parts), tag::hash64(b'B', &parts))
        }
    };
    let mut branch = String::with_capacity(41);
    branch.push_str("z9hG4bKsr");
    tag::push_hex64(&mut branch, a);
    tag::push_hex64(&mut branch, b);
    branch
}

/// Our address for a transport near a destination: advertised address if
/// set, else the listen socket of that transport and family (for a
/// wildcard socket, the local address the kernel would use).
pub fn local_addr(rt: &Runtime, proto: Proto, near: Option<SocketAddr>) -> Option<(String, u16)> {
    let mut host = String::new();
    let (port, _) = push_local_host(rt, proto, near, None, &mut host)?;
    Some((host, port))
}

/// Our address on the listen socket a message came in on (advertised
/// if it has one); `None` when no listen socket is at `rcv.dst`.
pub fn received_on(rt: &Runtime, rcv: &sr_sdk::RecvInfo) -> Option<(String, u16)> {
    let i = listen_of(rt, rcv.proto, rcv.dst)?;
    // The address it came to, with the listen socket's port (a connection
    // siprouter opened has a port of its own).
    let at = SocketAddr::new(rcv.dst.ip(), rt.settings.listen[i].addr.port());
    let mut host = String::new();
    let (port, _) = push_local_host(rt, rcv.proto, Some(rcv.src), Some(at), &mut host)?;
    Some((host, port))
}

/// The transport of the socket a protocol uses: WebSocket connections
/// come in on TCP and TLS sockets.
fn socket_proto(proto: Proto) -> Proto {
    match proto {
        Proto::Ws => Proto::Tcp,
        Proto::Wss => Proto::Tls,
        p => p,
    }
}

/// Whether listen socket `l` is the one at local address `a` for `proto`.
fn listen_is(l: &crate::settings::ListenSpec, proto: Proto, a: SocketAddr) -> bool {
    l.proto == socket_proto(proto)
        && l.addr.port() == a.port()
        && (l.addr.ip() == a.ip()
            || (l.addr.ip().is_unspecified() && l.addr.is_ipv6() == a.is_ipv6()))
}

/// The listen socket (index in `listen`) a message of `proto` arrived on
/// at local address `at`. A connection siprouter opened has a local port
/// of its own: it belongs to the first socket of its transport on its
/// address.
pub(crate) fn listen_of(rt: &Runtime, proto: Proto, at: SocketAddr) -> Option<usize> {
    let l = &rt.settings.listen;
    l.iter().position(|l| listen_is(l, proto, at)).or_else(|| {
        let sp = socket_proto(proto);
        if sp == Proto::Udp {
            return None;
        }
        l.iter().position(|l| {
            l.proto == sp
                && (l.addr.ip() == at.ip()
                    || (l.addr.ip().is_unspecified() && l.addr.is_ipv6() == at.is_ipv6()))
        })
    })
}

/// [`local_addr`] appending the host to `out`; returns the port and the
/// listen socket's index. `local` is the local address the message will
/// leave from when known (an open connection's, a forced send socket):
/// its listen socket is named, else the first of the transport and family.
fn push_local_host(
    rt: &Runtime,
    proto: Proto,
    near: Option<SocketAddr>,
    local: Option<SocketAddr>,
    out: &mut String,
) -> Option<(u16, usize)> {
    let s = &rt.settings;
    let v6 = near.is_some_and(|n| n.is_ipv6());
    let sp = socket_proto(proto);
    let at = |f: &dyn Fn(&crate::settings::ListenSpec) -> bool| s.listen.iter().position(f);
    let i = local
        .and_then(|a| at(&|l| listen_is(l, proto, a)))
        .or_else(|| at(&|l| l.proto == sp && l.addr.is_ipv6() == v6))
        .or_else(|| at(&|l| l.proto == sp))
        .or_else(|| (!s.listen.is_empty()).then_some(0))?;
    let l = &s.listen[i];
    let port = s
        .advertised_port
        .or_else(|| l.advertise.as_ref().and_then(|a| a.1))
        .unwrap_or(l.addr.port());
    if let Some(a) = &s.advertised_address {
        out.push_str(a);
        return Some((port, i));
    }
    if let Some((h, _)) = &l.advertise {
        out.push_str(h);
        return Some((port, i));
    }
    let ip = if l.addr.ip().is_unspecified() {
        local
            .filter(|a| !a.ip().is_unspecified() && listen_is(l, proto, *a))
            .map(|a| a.ip())
            .or_else(|| near.and_then(route_source))
            .unwrap_or(l.addr.ip())
    } else {
        l.addr.ip()
    };
    text::push_ip_host(out, ip);
    Some((port, i))
}

/// The local IP the kernel picks to reach `dst`.
fn route_source(dst: SocketAddr) -> Option<IpAddr> {
    let any: SocketAddr = if dst.is_ipv6() {
        "[::]:0".parse().ok()?
    } else {
        "0.0.0.0:0".parse().ok()?
    };
    let s = UdpSocket::bind(any).ok()?;
    s.connect(dst).ok()?;
    s.local_addr().ok().map(|a| a.ip())
}

/// Resolves a URI (or `[proto:]host[:port]`) to a destination.
pub fn resolve(rt: &Runtime, target: &str, proto: Option<Proto>) -> Result<Dest, SendError> {
    let t = target.trim().trim_start_matches('<').trim_end_matches('>');
    let parsed = Uri::parse(t).ok();
    match parsed {
        Some(u) if u.is_sip() => {
            let pr = match u.transport() {
                Some(tr) => {
                    Some(Proto::parse(tr).ok_or_else(|| err(format!("unknown transport '{tr}'")))?)
                }
                None if u.scheme == Scheme::Sips => Some(Proto::Tls),
                None => None,
            };
            let default = u.default_port();
            if let (None, Some(ip)) = (u.maddr(), u.host.ip()) {
                // An address literal: no lookup, no SRV (what `finish`
                // would do, without making a String of the host first).
                let pr = pr.or(proto).unwrap_or(Proto::Udp);
                return Ok(Dest::new(
                    pr,
                    SocketAddr::new(ip, u.port.unwrap_or(default)),
                ));
            }
            let host = u.maddr().unwrap_or(u.host_str).to_string();
            let port = u.port.or_else(|| u.maddr().map(|_| u.default_port()));
            finish(rt, host, port, default, pr.or(proto))
        }
        Some(u) if u.scheme == Scheme::Tel => {
            Err(err(format!("cannot route to non-SIP URI '{t}'")))
        }
        _ => {
            let (p, h, port) = crate::settings::split_socket(t).map_err(err)?;
            let p = p.or(proto);
            let default = if p == Some(Proto::Tls) { 5061 } else { 5060 };
            finish(rt, h, port, default, p)
        }
    }
}

/// RFC 3263 for a known host: a name without a port is looked up as SRV
/// (`_sip._udp`, `_sip._tcp`, `_sips._tcp`) first, then as A/AAAA.
fn finish(
    rt: &Runtime,
    host: String,
    port: Option<u16>,
    default: u16,
    proto: Option<Proto>,
) -> Result<Dest, SendError> {
    let pr = proto.unwrap_or(Proto::Udp);
    let literal = host
        .trim_start_matches('[')
        .trim_end_matches(']')
        .parse::<IpAddr>()
        .is_ok();
    let (host, port) = match port {
        Some(p) => (host, p),
        None if literal => (host, default),
        None => {
            let service = match pr {
                Proto::Tls | Proto::Wss => "_sips._tcp",
                Proto::Udp => "_sip._udp",
                _ => "_sip._tcp",
            };
            match rt.dns.srv(&format!("{service}.{host}")) {
                Some((target, p)) => (target, p),
                None => (host, default),
            }
        }
    };
    let ip = rt.dns.lookup(&host).map_err(err)?;
    Ok(Dest::new(pr, SocketAddr::new(ip, port)))
}

/// Where replies to a request go (RFC 3261 18.2.2, RFC 3581).
pub fn reply_dest(_rt: &Runtime, msg: &SipMsg) -> Result<Dest, SendError> {
    let rcv = msg.rcv;
    if rcv.proto.is_reliable() {
        let mut d = Dest::new(rcv.proto, rcv.src);
        d.conn_id = Some(rcv.conn_id);
        d.no_connect = msg.reply_flags.no_connect;
        return Ok(d);
    }
    let via = msg.msg().top_via().map_err(|e| err(e.to_string()))?;
    if let Some(maddr) = via.maddr() {
        let ip = sip_msg::uri::parse_host(maddr)
            .ok()
            .and_then(|h| h.ip())
            .ok_or_else(|| err(format!("maddr '{maddr}' is not an address")))?;
        return Ok(Dest::new(
            Proto::Udp,
            SocketAddr::new(ip, via.port.unwrap_or(5060)),
        ));
    }
    if via.rport().is_some() || msg.force_rport {
        return Ok(Dest::new(Proto::Udp, rcv.src));
    }
    // RFC 3261 18.2.2: the source address — the sent-by host when it is
    // that address, else the `received` the reply's Via gets — with the
    // sent-by port.
    Ok(Dest::new(
        Proto::Udp,
        SocketAddr::new(rcv.src.ip(), via.port.unwrap_or(5060)),
    ))
}

/// Builds a local reply to a request.
pub fn build_reply(
    rt: &Runtime,
    msg: &SipMsg,
    code: u16,
    reason: &str,
    to_tag: Option<&str>,
    body: Option<(&str, &[u8])>,
) -> Result<Outgoing, SendError> {
    let fix = top_via_fix(msg, true);
    // The script's body (set_reply_body) when the caller gives none.
    let body = body.or_else(|| msg.reply_body.as_deref().map(|b| ("", b)));
    let mut extra = String::with_capacity(64 + msg.reply_headers.len());
    extra.push_str(&msg.reply_headers);
    if rt.settings.server_signature && !rt.settings.server_header.is_empty() {
        extra.push_str(&rt.settings.server_header);
        extra.push_str("\r\n");
    }
    let opts = ReplyOptions {
        to_tag,
        top_via: fix.as_ref().map(|f| f.2.as_str()),
        extra_headers: &extra,
        body,
        copy_record_route: false,
    };
    let data = reply(msg.msg(), code, reason, &opts).map_err(|e| err(e.to_string()))?;
    Ok(Outgoing {
        data,
        dest: reply_dest(rt, msg)?,
    })
}

/// Builds the request for one branch.
pub fn build_request(rt: &Runtime, msg: &SipMsg, t: &BranchTarget) -> Result<Outgoing, SendError> {
    let send_to = t.dst_uri.as_deref().unwrap_or(&t.uri);
    let mut dest = resolve(rt, send_to, None)?;
    let socket = t
        .send_socket
        .as_deref()
        .or(msg.force_send_socket.as_deref());
    apply_send_socket(&mut dest, socket);
    dest.no_connect = msg.fwd_flags.no_connect;
    // tcp_set_otcpid with its flag: the connection it names (tm's
    // branches; Kamailio's stateless forward ignores it).
    if let Some(id) = msg.fwd_flags.chosen_conn() {
        dest.conn_id = Some(id);
    }
    if !onsend_allows(rt, msg, &dest) {
        return Err(err("dropped by onsend_route"));
    }
    let data = request_bytes(rt, msg, &t.uri, t.path.as_deref(), &t.via_branch, &dest)?;
    Ok(Outgoing { data, dest })
}

/// `force_send_socket("proto:ip:port")`: send from that local socket.
fn apply_send_socket(dest: &mut Dest, socket: Option<&str>) {
    let Some(sock) = socket else { return };
    if let Ok((p, h, port)) = crate::settings::split_socket(sock) {
        if let Ok(ip) = h.parse::<IpAddr>() {
            let default = if p == Some(Proto::Tls) { 5061 } else { 5060 };
            dest.send_socket = Some(SocketAddr::new(ip, port.unwrap_or(default)));
            if let Some(p) = p {
                dest.proto = p;
            }
        }
    }
}

/// Runs `onsend_route`, if the config has one, for a request about to be
/// sent to `dest`; false when it executed `drop`. The route sees the
/// message (with its new Request-URI, `$du` and flags) and the
/// destination through `snd_ip`, `snd_port`, `snd_proto`, `to_ip`,
/// `to_port`.
pub fn onsend_allows(rt: &Runtime, msg: &SipMsg, dest: &Dest) -> bool {
    let routes = rt.routes();
    let Some(idx) = routes.onsend else {
        return true;
    };
    let Some(mut m) = msg.over_same_original(msg.id) else {
        return true;
    };
    m.new_uri = msg.new_uri.clone();
    m.dst_uri = msg.dst_uri.clone();
    m.flags = msg.flags;
    m.bflags = msg.bflags;
    m.avps = msg.avps.clone();
    let local = dest.send_socket.or_else(|| {
        local_addr(rt, dest.proto, Some(dest.addr)).and_then(|(h, p)| {
            h.trim_matches(['[', ']'])
                .parse::<IpAddr>()
                .ok()
                .map(|ip| SocketAddr::new(ip, p))
        })
    });
    crate::script::state::set_send_dest(Some(crate::script::state::SendDest {
        local,
        to: dest.addr,
        proto: dest.proto,
    }));
    let out = crate::script::exec::Exec::new(&routes).run_top(
        idx,
        &mut sr_sdk::Ctx::new(&mut m, rt, sr_sdk::RouteType::ONSEND),
    );
    crate::script::state::set_send_dest(None);
    !out.dropped
}

/// The outgoing bytes of a request: the script's edits, the new
/// Request-URI, received/rport on the previous Via, our Via on top, the
/// Path as Route headers, and Content-Length on streams.
pub fn request_bytes(
    rt: &Runtime,
    msg: &SipMsg,
    uri: &str,
    path: Option<&str>,
    branch: &str,
    dest: &Dest,
) -> Result<Vec<u8>, SendError> {
    let m: &Message<'_> = msg.msg();
    let mut edits: Edits = msg.edits.clone();
    if m.request_uri().map(|u| u.raw) != Some(uri) {
        edits.set_request_uri(m, uri);
    }
    if let Some((s, e, text)) = top_via_fix(msg, false) {
        edits.replace(s, e, text.as_bytes());
    }
    let mut via = String::with_capacity(96);
    via.push_str("SIP/2.0/");
    via.push_str(dest.proto.via_name());
    via.push(' ');
    let host_at = via.len();
    let adv = msg.advertised.as_ref();
    let adv_host = adv.map(|a| a.0.as_str()).filter(|h| !h.is_empty());
    // The local address it leaves from, when known: a forced socket, or
    // the open connection to the destination.
    let local = dest
        .send_socket
        .or_else(|| rt.transport.get().and_then(|t| t.stream_local(dest)));
    // corex's via_use_xavp_fields: address and port from an XAVP.
    let (xavp_host, xavp_port) = if msg.via_xavp_fields {
        crate::via_xavp::fields(msg, &rt.settings.xavp_via_fields)
    } else {
        (None, None)
    };
    let (mut port, out_socket) = match xavp_host.as_deref().or(adv_host) {
        Some(h) => {
            via.push_str(h);
            push_local_host(rt, dest.proto, Some(dest.addr), local, &mut String::new())
        }
        None => push_local_host(rt, dest.proto, Some(dest.addr), local, &mut via),
    }
    .ok_or_else(|| err(format!("no {} socket to send from", dest.proto)))?;
    if let Some(p) = xavp_port.or(adv.and_then(|a| a.1)) {
        port = p;
    }
    let host_end = via.len();
    via.push(':');
    text::push_dec(&mut via, u64::from(port));
    via.push_str(";branch=");
    via.push_str(branch);
    if msg.local_rport {
        via.push_str(";rport");
    }
    if msg.via_srvid && rt.settings.server_id != 0 {
        via.push_str(";srvid=");
        via.push_str(&rt.settings.server_id.to_string());
    }
    if msg.via_xavp_params && !rt.settings.xavp_via_params.is_empty() {
        crate::via_xavp::push_params(msg, &rt.settings.xavp_via_params, &mut via);
    }
    edits.prepend_via(m, &via);
    if !msg.send_fixups.is_empty() {
        let rcv = msg.rcv;
        let info = sr_sdk::msg::SendInfo {
            proto: dest.proto,
            // (The host as the Via just written has it.)
            host: &via[host_at..host_end],
            port,
            same_socket: dest.proto == rcv.proto
                && listen_of(rt, rcv.proto, rcv.dst) == Some(out_socket),
        };
        for f in msg.send_fixups.iter() {
            f(&mut edits, &info);
        }
    }
    if let Some(p) = path.filter(|p| !p.is_empty()) {
        let at = m
            .header(HeaderName::Route)
            .map_or(m.headers_start(), |h| h.start);
        let mut line = Vec::with_capacity(p.len() + 9);
        line.extend_from_slice(b"Route: ");
        line.extend_from_slice(p.as_bytes());
        line.extend_from_slice(b"\r\n");
        edits.insert(at, &line);
    }
    Ok(edits.apply(
        m,
        ApplyOptions {
            ensure_content_length: dest.proto.is_reliable(),
        },
    ))
}

/// Stateless forwarding of a request. On a UDP worker that holds its
/// sends the datagram leaves at the end of the batch; a failure then moves
/// it from `fwd_requests` to `drop_requests` (see [`sr_sdk::Core::forward`]).
pub fn forward(rt: &Runtime, msg: &mut SipMsg, target: Option<&str>) -> Result<(), SendError> {
    let ruri = msg.ruri().to_string();
    let send_to = match target {
        Some(t) => t.to_string(),
        None => msg.dst_uri.clone().unwrap_or_else(|| ruri.clone()),
    };
    let mut dest = resolve(rt, &send_to, None)?;
    apply_send_socket(&mut dest, msg.force_send_socket.as_deref());
    dest.no_connect = msg.fwd_flags.no_connect;
    // (The connection tcp_set_otcpid chose is for tm's branches only:
    // Kamailio's stateless forward does not look at it.)
    if let Some(b) = &rt.dst_blocklist {
        if b.check(dest.proto, dest.addr, Instant::now()) != 0 {
            return Err(err(format!("{} {} is blocklisted", dest.proto, dest.addr)));
        }
    }
    if !onsend_allows(rt, msg, &dest) {
        return Err(err("dropped by onsend_route"));
    }
    let branch = stateless_branch(msg, &send_to);
    let data = request_bytes(rt, msg, &ruri, msg.path.as_deref(), &branch, &dest)?;
    rt.transport()?
        .send_counted_batched(&dest, &data, HeldKind::Request)
        .map_err(err)
}

/// Stateless relaying of a reply by its Via: our Via removed, sent to the
/// next one.
pub fn forward_reply(rt: &Runtime, reply_msg: &mut SipMsg) -> Result<(), SendError> {
    use sr_sdk::Core;
    let m = reply_msg.msg();
    let mut vias = m.vias();
    let top = vias
        .next()
        .ok_or_else(|| err("reply without Via"))?
        .map_err(|e| err(e.to_string()))?;
    if !rt.is_myself(top.host_str, top.port) {
        return Err(err(format!("reply not for us (Via {})", top.host_str)));
    }
    let next = vias
        .next()
        .ok_or_else(|| err("reply has no Via to forward to"))?
        .map_err(|e| err(e.to_string()))?;
    let proto = Proto::parse(next.transport).unwrap_or(Proto::Udp);
    let ip = match next.received_ip() {
        Some(ip) => ip,
        None => match next.host.ip() {
            Some(ip) => ip,
            None => rt.dns.lookup(next.host_str).map_err(err)?,
        },
    };
    if !is_unicast(ip) {
        // RFC 4475 3.3.10: a reply routed by Via to a broadcast address is
        // an attack on the network behind the proxy, not a client.
        return Err(err(format!(
            "reply's next Via points at {ip}, not a unicast address"
        )));
    }
    let port = match next.rport() {
        Some(Some(p)) => p,
        _ => next.port.unwrap_or(next.default_port()),
    };
    let dest = Dest::new(proto, SocketAddr::new(ip, port));
    let mut edits = reply_msg.edits.clone();
    edits.remove_top_via(m);
    let data = edits.apply(
        m,
        ApplyOptions {
            ensure_content_length: proto.is_reliable(),
        },
    );
    rt.transport()?
        .send_counted_batched(&dest, &data, HeldKind::Reply)
        .map_err(err)
}

/// Whether a reply may be sent to `ip`: not the unspecified address, a
/// broadcast or a multicast group.
fn is_unicast(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => !(v4.is_unspecified() || v4.is_broadcast() || v4.is_multicast()),
        IpAddr::V6(v6) => !(v6.is_unspecified() || v6.is_multicast()),
    }
}

#[cfg(test)]
mod tests {
    use super::{from_tag_text, is_unicast, top_via_fix};

    #[test]
    fn replies_go_only_to_unicast_addresses() {
        for bad in ["255.255.255.255", "0.0.0.0", "224.0.0.1", "::", "ff02::1"] {
            assert!(!is_unicast(bad.parse().unwrap()), "{bad}");
        }
        for good in ["127.0.0.1", "192.0.2.7", "::1", "2001:db8::1"] {
            assert!(is_unicast(good.parse().unwrap()), "{good}");
        }
    }
    use sip_msg::headers::NameAddr;

    /// The request with `vias` as its Via lines, received from
    /// 127.0.0.1:5070, after top_via_fix's edit (for a forwarded request,
    /// or for a local reply).
    fn fixed(vias: &str, reply: bool) -> String {
        let raw = format!(
            "OPTIONS sip:a@b SIP/2.0\r\n{vias}From: <sip:x@y>;tag=1\r\nTo: <sip:a@b>\r\nCall-ID: c\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n"
        );
        let rcv = sr_sdk::RecvInfo {
            src: "127.0.0.1:5070".parse().unwrap(),
            ..sr_sdk::RecvInfo::loopback()
        };
        let msg = sr_sdk::SipMsg::parse(bytes::Bytes::from(raw), rcv, 1).expect("parses");
        let mut edits = sip_msg::edit::Edits::new();
        if let Some((s, e, text)) = top_via_fix(&msg, reply) {
            edits.replace(s, e, text.as_bytes());
        }
        let out = edits.apply(msg.msg(), sip_msg::edit::ApplyOptions::default());
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn the_top_via_gets_received_and_rport_where_kamailio_puts_them() {
        let v = "Via: SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bK1;rport\r\n";
        // Forwarded: received before the parameters, rport where it is.
        assert!(fixed(v, false).contains(
            "\r\nVia: SIP/2.0/UDP 10.0.0.1:5060;received=127.0.0.1;branch=z9hG4bK1;rport=5070\r\nFrom:"
        ));
        // A reply: rport where it is, received last.
        assert!(fixed(v, true).contains(
            "\r\nVia: SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bK1;rport=5070;received=127.0.0.1\r\nFrom:"
        ));
        // A received already there is replaced where it is; an rport with
        // a value is rewritten.
        assert!(fixed(
            "Via: SIP/2.0/UDP 10.0.0.1;branch=z9hG4bK1;received=1.1.1.1;rport=9\r\n",
            false
        )
        .contains(
            "\r\nVia: SIP/2.0/UDP 10.0.0.1;branch=z9hG4bK1;received=127.0.0.1;rport=5070\r\n"
        ));
        // No parameters: after the sent-by.
        assert!(fixed("Via: SIP/2.0/UDP 10.0.0.1\r\n", false)
            .contains("\r\nVia: SIP/2.0/UDP 10.0.0.1;received=127.0.0.1\r\n"));
        // Sent from where it says, no rport asked: unchanged.
        let same = "Via: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK1\r\n";
        assert!(fixed(same, false).contains(same));
        assert!(fixed(same, true).contains(same));
        // A leading comma: the via-parm after it is the one rewritten.
        assert!(
            fixed("Via: , SIP/2.0/UDP 10.0.0.1;branch=z9hG4bK1\r\n", false).contains(
                "\r\nVia: , SIP/2.0/UDP 10.0.0.1;received=127.0.0.1;branch=z9hG4bK1\r\nFrom:"
            )
        );
        // Two via-parms on one line: only the first changes.
        assert!(fixed(
            "Via: SIP/2.0/UDP 10.0.0.1;branch=z9hG4bK1, SIP/2.0/UDP h2\r\n",
            true
        )
        .contains(
            "\r\nVia: SIP/2.0/UDP 10.0.0.1;branch=z9hG4bK1;received=127.0.0.1, SIP/2.0/UDP h2\r\n"
        ));
    }

    #[test]
    fn from_tag_text_is_the_decoded_tag() {
        for v in [
            "<sip:alice@a.example>;tag=1928301774",
            "\"Alice >;tag=no\" <sip:alice@a.example;tag=uri>;x=1 ; TAG = abc",
            "Alice <sips:alice@a.example:5061;transport=tls?h=v>",
            "sip:alice@a.example;tag=bare",
            "sip:alice@a.example",
            "<tel:+123;phone-context=x>;tag=t;other",
            "<sip:a@b>;tag=",
        ] {
            let decoded = NameAddr::parse(v, "From").unwrap().tag().unwrap_or("");
            assert_eq!(from_tag_text(v), decoded, "{v}");
        }
        // Malformed values give some text, and always the same.
        assert_eq!(from_tag_text("<sip:a@b"), from_tag_text("<sip:a@b"));
        assert_eq!(from_tag_text(""), "");
    }
}
