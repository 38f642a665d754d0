//! Module `nat_traversal` (Kamailio's): user agents behind NAT.
//!
//! - `client_nat_test(tests)`: 1 when any of the tests asked for holds —
//!   1: the Contact URI's host is a private IPv4 address (RFC 1918 and
//!   100.64/10); 2: the request came from another address or port than
//!   the top Via names; 4: the top Via's host is a private address;
//! - `fix_contact()`: the first Contact URI's host and port become the
//!   source address and port;
//! - `nat_keepalive()` (REGISTER, SUBSCRIBE over UDP): when the request
//!   is answered 2xx (by this server or relayed from downstream), its
//!   source is sent a keepalive (`keepalive_method`, NOTIFY with
//!   `Event: keep-alive`) every `keepalive_interval` seconds from the
//!   socket it came in on, until its registration (the longest `expires`
//!   granted to its Contacts) and subscription (`Expires` of the reply)
//!   end; the keepalives' replies are dropped;
//! - `$source_uri` (`sip:ip:port`, `;transport=` for TCP, TLS, SCTP),
//!   `$keepalive.socket(uri)` (the socket an endpoint is kept alive from);
//! - statistics `keepalive_endpoints`, `registered_endpoints`,
//!   `subscribed_endpoints`, `dialog_endpoints`;
//! - `keepalive_state_file`: the endpoints are written there at stop and
//!   read back at start.
//!
//! Not built: keeping INVITE dialogs alive (`nat_keepalive()` on an
//! INVITE is -1, as in Kamailio without the dialog module).
#![forbid(unsafe_code)]

pub mod detect;
pub mod keepalive;

use keepalive::{Pending, Table};
use sr_sdk::prelude::*;
use sr_sdk::route::rank;
use sr_sdk::sip_msg::headers::ContactValue;
use sr_sdk::sip_msg::Message;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicI64, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, PoisonError, RwLock, Weak};
use std::time::Duration;

struct Nat {
    interval: Arc<AtomicI64>,
    method: Arc<RwLock<String>>,
    from: Arc<RwLock<String>>,
    extra: Arc<RwLock<String>>,
    state_file: Arc<RwLock<String>>,
    table: Mutex<Table>,
    /// Marked requests (to skip parsing sent replies when there are none).
    waiting: AtomicUsize,
    callid_prefix: String,
    counter: AtomicU64,
    from_tag: AtomicU64,
    core: OnceLock<Weak<dyn Core>>,
}

fn now() -> i64 {
    sr_sdk::db::now()
}

/// A number from the clock and the process, for Call-IDs and tags.
fn seed() -> u64 {
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    t ^ (u64::from(std::process::id()) << 32)
}

/// `sip:ip:port` of a source address.
fn source_of(src: SocketAddr) -> String {
    format!("sip:{}", detect::host_port(src))
}

/// `udp:ip:port` of a local socket.
fn socket_text(s: SocketAddr) -> String {
    format!("udp:{}", detect::host_port(s))
}

impl Nat {
    fn table(&self) -> MutexGuard<'_, Table> {
        self.table.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn interval(&self) -> i64 {
        params::get_int(&self.interval)
    }

    fn nat_keepalive(&self, ctx: &mut Ctx<'_>) -> i32 {
        if self.interval() <= 0 || ctx.msg.rcv.proto != Proto::Udp {
            return -1;
        }
        let m = ctx.msg.msg();
        let method = m
            .method()
            .map(|x| x.as_str().to_string())
            .unwrap_or_default();
        let contacts = match method.as_str() {
            "REGISTER" => Some(
                m.contacts()
                    .filter_map(|c| match c {
                        Ok(ContactValue::Addr(a)) => Some(a.uri_str.to_string()),
                        _ => None,
                    })
                    .collect::<Vec<_>>(),
            ),
            "SUBSCRIBE" => None,
            "INVITE" => {
                lm_err!("nat_traversal: keeping INVITE dialogs alive is not built");
                return -1;
            }
            _ => {
                lm_err!("nat_traversal: unsupported method for keepalive");
                return -1;
            }
        };
        let (Ok(callid), Ok(cseq)) = (m.call_id(), m.cseq()) else {
            return -1;
        };
        let key = (callid.to_string(), cseq.seq, method);
        let p = Pending {
            source: source_of(ctx.msg.rcv.src),
            socket: ctx.msg.rcv.dst,
            contacts,
            at: now(),
        };
        let mut t = self.table();
        if !t.mark(key, p) {
            lm_err!("nat_traversal: too many requests waiting for replies");
            return -1;
        }
        self.waiting.store(t.pending.len(), Ordering::Relaxed);
        1
    }

    /// A reply about to be sent: a 2xx to a marked request starts or
    /// extends the keepalive.
    fn reply_out(&self, buf: &[u8]) {
        if self.waiting.load(Ordering::Relaxed) == 0 || !buf.starts_with(b"SIP/2.0 ") {
            return;
        }
        let Ok(m) = Message::parse(buf) else { return };
        let (Some(code), Ok(callid), Ok(cseq)) = (m.status(), m.call_id(), m.cseq()) else {
            return;
        };
        if code < 200 {
            return;
        }
        let key = (
            callid.to_string(),
            cseq.seq,
            cseq.method.as_str().to_string(),
        );
        let mut t = self.table();
        let Some(p) = t.pending.remove(&key) else {
            return;
        };
        self.waiting.store(t.pending.len(), Ordering::Relaxed);
        if code >= 300 {
            return;
        }
        match &p.contacts {
            Some(req) => {
                let rep: Vec<(String, Option<u32>)> = m
                    .contacts()
                    .filter_map(|c| match c {
                        Ok(ContactValue::Addr(a)) => Some((
                            a.uri_str.to_string(),
                            a.param("expires")
                                .flatten()
                                .and_then(|e| e.trim().parse().ok()),
                        )),
                        _ => None,
                    })
                    .collect();
                let exp = keepalive::register_expire(req, &rep);
                if exp > 0 {
                    t.register(&p.source, p.socket, now() + i64::from(exp));
                }
            }
            None => {
                if let Ok(Some(exp)) = m.expires() {
                    if exp > 0 {
                        t.subscribe(&p.source, p.socket, now() + i64::from(exp));
                    }
                }
            }
        }
    }

    /// A keepalive request to `uri` from `socket`.
    fn message(&self, uri: &str, socket: SocketAddr) -> String {
        let method = params::get_str(&self.method);
        let ip = detect::host_port(socket);
        let host = ip
            .rsplit_once(':')
            .map_or(ip.as_str(), |(h, _)| h)
            .to_string();
        let from = match params::get_str(&self.from) {
            f if f.is_empty() => format!("sip:keepalive@{host}"),
            f => f,
        };
        let event = if method.eq_ignore_ascii_case("NOTIFY") {
            "Event: keep-alive\r\n"
        } else {
            ""
        };
        format!(
            "{method} {uri} SIP/2.0\r\nVia: SIP/2.0/UDP {ip};branch=z9hG4bK{}\r\nFrom: {from};tag={:x}\r\nTo: {uri}\r\nCall-ID: {}-{:x}-{:x}@{host}\r\nCSeq: 1 {method}\r\n{event}{}Content-Length: 0\r\n\r\n",
            self.counter.load(Ordering::Relaxed) as u32 >> 8,
            self.from_tag.fetch_add(1, Ordering::Relaxed) as u32,
            self.callid_prefix,
            self.counter.fetch_add(1, Ordering::Relaxed) as u32,
            now() as u32,
            params::get_str(&self.extra),
        )
    }

    /// Once a second: expired endpoints go; each endpoint whose turn it
    /// is (once per interval, spread over it) gets a keepalive.
    fn tick(&self, core: &dyn Core, iteration: u64) {
        let interval = self.interval().max(1) as u64;
        let due: Vec<(String, SocketAddr)> = {
            let mut t = self.table();
            t.purge(now());
            self.waiting.store(t.pending.len(), Ordering::Relaxed);
            t.endpoints
                .iter()
                .filter(|(u, _)| bucket(u) % interval == iteration % interval)
                .map(|(u, e)| (u.clone(), e.socket))
                .collect()
        };
        for (uri, socket) in due {
            let Some(addr) = uri
                .strip_prefix("sip:")
                .and_then(|h| h.parse::<SocketAddr>().ok())
            else {
                continue;
            };
            let mut d = Dest::new(Proto::Udp, addr);
            d.send_socket = Some(socket);
            if let Err(e) = core.send(&d, self.message(&uri, socket).as_bytes()) {
                lm_dbg!("nat_traversal: keepalive to {uri} not sent: {e}");
            }
        }
    }

    /// Whether a received reply answers one of our keepalives (one Via,
    /// the keepalive method, our Call-ID prefix): it is dropped.
    fn is_keepalive_reply(&self, msg: &SipMsg) -> bool {
        let m = msg.msg();
        if m.vias().nth(1).is_some() {
            return false;
        }
        let method = params::get_str(&self.method);
        let Ok(cseq) = m.cseq() else { return false };
        if cseq.method.as_str() != method {
            return false;
        }
        m.call_id().is_ok_and(|c| {
            c.strip_prefix(self.callid_prefix.as_str())
                .is_some_and(|r| r.starts_with('-'))
        })
    }

    fn save_state(&self) {
        let path = params::get_str(&self.state_file);
        if path.is_empty() {
            return;
        }
        let t = self.table();
        let mut text = String::from(STATE_HEADER);
        for (uri, e) in &t.endpoints {
            text.push_str(&format!(
                "{uri} {} {} {}\n",
                socket_text(e.socket),
                e.registration,
                e.subscription
            ));
        }
        if let Err(e) = std::fs::write(&path, text) {
            lm_err!("nat_traversal: failed to write keepalive state file {path}: {e}");
        }
    }

    fn restore_state(&self, core: &dyn Core) {
        let path = params::get_str(&self.state_file);
        if path.is_empty() {
            return;
        }
        let Ok(text) = std::fs::read_to_string(&path) else {
            return;
        };
        let n = now();
        let mut t = self.table();
        for line in text.lines().filter(|l| !l.starts_with('#')) {
            let f: Vec<&str> = line.split_whitespace().collect();
            let [uri, sock, r, s] = f[..] else {
                lm_err!("nat_traversal: invalid/corrupted keepalive state file. ignoring remaining entries.");
                break;
            };
            let (Ok(r), Ok(s)) = (r.parse::<i64>(), s.parse::<i64>()) else {
                break;
            };
            if n > r && n > s {
                continue;
            }
            // (A socket this server no longer listens on is left out.)
            let Some(socket) = sr_sdk::socket_addr(sock)
                .filter(|s| core.is_myself(&s.ip().to_string(), Some(s.port())))
            else {
                continue;
            };
            if r > n {
                t.register(uri, socket, r);
            }
            if s > n {
                t.subscribe(uri, socket, s);
            }
        }
    }
}

const STATE_HEADER: &str =
    "# Automatically generated file from internal keepalive state. Do NOT modify!\n";

/// Which second of the interval an endpoint's keepalive goes in.
fn bucket(uri: &str) -> u64 {
    uri.bytes()
        .fold(0u64, |h, b| h.wrapping_mul(31).wrapping_add(u64::from(b)))
}

/// The module definition.
pub fn module() -> ModuleDef {
    let s = seed();
    let n = Arc::new(Nat {
        interval: params::int_cell(60),
        method: params::str_cell("NOTIFY"),
        from: params::str_cell(""),
        extra: params::str_cell(""),
        state_file: params::str_cell("keepalive_state"),
        table: Mutex::new(Table::default()),
        waiting: AtomicUsize::new(0),
        callid_prefix: format!("{:x}", (s >> 8) as u32),
        counter: AtomicU64::new(s.rotate_left(17)),
        from_tag: AtomicU64::new(s.rotate_left(29)),
        core: OnceLock::new(),
    });
    let c = |n: &Arc<Nat>| n.clone();
    let (init, child, destroy, out, resp, ka, s1, s2, s3, ks) = (
        c(&n),
        c(&n),
        c(&n),
        c(&n),
        c(&n),
        c(&n),
        c(&n),
        c(&n),
        c(&n),
        c(&n),
    );
    let test_routes = RouteType::REQUEST
        | RouteType::ONREPLY
        | RouteType::FAILURE
        | RouteType::BRANCH
        | RouteType::LOCAL;
    let fix_routes = RouteType::REQUEST | RouteType::ONREPLY | RouteType::BRANCH | RouteType::LOCAL;
    ModuleDef::new("nat_traversal")
        .param("keepalive_interval", ParamKind::Int, params::int(&n.interval))
        .param("keepalive_method", ParamKind::Str, params::string(&n.method))
        .param("keepalive_from", ParamKind::Str, params::string(&n.from))
        .param(
            "keepalive_extra_headers",
            ParamKind::Str,
            params::string(&n.extra),
        )
        .param(
            "keepalive_state_file",
            ParamKind::Str,
            params::string(&n.state_file),
        )
        .on_init(move |core| {
            let i = init.interval();
            if i <= 0 {
                lm_notice!("nat_traversal: keepalive functionality is disabled from the configuration");
                return Ok(());
            }
            if i < 10 {
                lm_warn!("nat_traversal: keepalive_interval should be at least 10 seconds - using 10");
                init.interval.store(10, Ordering::Relaxed);
            }
            let extra = params::get_str(&init.extra);
            if extra.contains("\r\n\r\n") || (!extra.is_empty() && !extra.ends_with("\r\n")) {
                return Err(
                    "nat_traversal: keepalive_extra_headers must be header lines, each ending in CRLF"
                        .into(),
                );
            }
            if let Some(h) = core.handle() {
                let _ = init.core.set(h);
            }
            init.restore_state(core);
            Ok(())
        })
        .on_child_init(move |core, r| {
            if r != rank::PROC_MAIN || child.interval() <= 0 {
                return Ok(());
            }
            let h = core.handle().ok_or("nat_traversal: no core handle")?;
            let nat = child.clone();
            let it = Arc::new(AtomicU64::new(0));
            core.add_timer(
                "nat_traversal-keepalive",
                Duration::from_secs(1),
                Arc::new(move || {
                    if let Some(core) = h.upgrade() {
                        nat.tick(&*core, it.fetch_add(1, Ordering::Relaxed));
                    }
                }),
            );
            Ok(())
        })
        .on_destroy(move || destroy.save_state())
        .on_net_data_out(move |buf, _| {
            out.reply_out(buf);
            None
        })
        .on_response(move |ctx| resp.interval() > 0 && resp.is_keepalive_reply(ctx.msg))
        .cmd(
            "client_nat_test",
            1,
            test_routes,
            Some(fixup::f(fixup::igp)),
            |ctx, p| {
                let tests = p[0].int(ctx);
                let m = ctx.msg.msg();
                let via = m.top_via().ok();
                let mut hit = false;
                if tests & 1 != 0 {
                    let host = m.contacts().next().and_then(|c| match c {
                        Ok(ContactValue::Addr(a)) => Some(a.uri.host_str.to_string()),
                        _ => None,
                    });
                    hit |= host.is_some_and(|h| detect::is_private(&h));
                }
                if tests & 2 != 0 {
                    hit |= via
                        .as_ref()
                        .is_some_and(|v| detect::source_differs(v.host_str, v.port, ctx.msg.rcv.src));
                }
                if tests & 4 != 0 {
                    hit |= via.as_ref().is_some_and(|v| detect::is_private(v.host_str));
                }
                if hit {
                    1
                } else {
                    -1
                }
            },
        )
        .cmd("fix_contact", 0, fix_routes, None, |ctx, _| fix_contact(ctx))
        .cmd("nat_keepalive", 0, RouteType::REQUEST, None, move |ctx, _| {
            ka.nat_keepalive(ctx)
        })
        .pv("source_uri", |ctx, _| {
            let mut u = source_of(ctx.msg.rcv.src);
            match ctx.msg.rcv.proto {
                Proto::Tcp => u.push_str(";transport=tcp"),
                Proto::Tls => u.push_str(";transport=tls"),
                Proto::Sctp => u.push_str(";transport=sctp"),
                _ => {}
            }
            Value::Str(u.into())
        })
        .pv("keepalive.socket", move |ctx, name| {
            let Some(inner) = name.inner.as_deref() else {
                return Value::Null;
            };
            let uri = if inner.starts_with('$') {
                let core = ctx.core;
                match core.pv_get(ctx.msg, inner) {
                    Some(v) if !v.is_null() => v.as_str().into_owned(),
                    _ => return Value::Null,
                }
            } else {
                inner.to_string()
            };
            match ks.table().endpoints.get(&uri) {
                Some(e) => Value::Str(socket_text(e.socket).into()),
                None => Value::Null,
            }
        })
        .stat_fn("keepalive_endpoints", move || s1.table().endpoints.len() as i64)
        .stat_fn("registered_endpoints", move || {
            s2.table()
                .endpoints
                .values()
                .filter(|e| e.registration != 0)
                .count() as i64
        })
        .stat_fn("subscribed_endpoints", move || {
            s3.table()
                .endpoints
                .values()
                .filter(|e| e.subscription != 0)
                .count() as i64
        })
        .stat_fn("dialog_endpoints", || 0)
}

/// `fix_contact()`: 1 (also when nothing changes), -1 without a Contact
/// URI with a host.
fn fix_contact(ctx: &mut Ctx<'_>) -> i32 {
    let spans = sr_mod_siputils::contact_enc::contact_uris(ctx.msg, true);
    let Some(&(s, e)) = spans.first() else {
        return -1;
    };
    let raw = ctx.msg.msg().raw();
    let Ok(uri) = std::str::from_utf8(&raw[s as usize..e as usize]) else {
        return -1;
    };
    let uri = uri.to_string();
    let Ok(u) = sr_sdk::sip_msg::Uri::parse(&uri) else {
        lm_err!("nat_traversal: cannot parse the Contact URI");
        return -1;
    };
    if u.host_str.is_empty() {
        return -1;
    }
    let host_at = u.host_str.as_ptr() as usize - uri.as_ptr() as usize;
    let mut port_end = host_at + u.host_str.len();
    if u.port.is_some() {
        let digits = uri[port_end..]
            .strip_prefix(':')
            .map_or(0, |r| 1 + r.bytes().take_while(u8::is_ascii_digit).count());
        port_end += digits;
    }
    if let Some(new) =
        detect::fixed_uri(&uri, u.host_str, u.port, host_at, port_end, ctx.msg.rcv.src)
    {
        ctx.msg.edits.replace(s, e, new.as_bytes());
    }
    1
}
