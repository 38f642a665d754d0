//! The client side (UAC): starts calls at the target rate within the cap
//! on calls in progress, plays each through its transactions with RFC
//! 3261 retransmissions, and counts what happens.

use crate::config::{Config, Scenario};
use crate::digest::{credentials, Challenge};
use crate::keymap::KeyMap;
use crate::messages::Templates;
use crate::net::{Net, Peer, Proto};
use crate::pacing;
use crate::stats::UacStats;
use crate::template::{push_u64, Field, Template};
use crate::timers::{retrans_interval, TimerKind, Timers, TxnKind};
use sip_msg::{HeaderName, Message, Method};
use std::time::{Duration, Instant};

/// Where a call is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// INVITE sent, nothing back yet (retransmitting).
    Inviting,
    /// A provisional reply came: waiting for the final one.
    Proceeding,
    /// 200 received and ACKed: holding before BYE.
    Held,
    /// BYE sent.
    Byeing,
    /// REGISTER sent (first, or with credentials).
    Registering,
    /// OPTIONS sent.
    Optioning,
}

/// What a dialog needs for ACK and BYE.
#[derive(Debug)]
struct Dialog {
    /// `;tag=...` of the far end.
    to_tag: Box<str>,
    /// Remote target (Contact of the 200).
    ruri: Box<str>,
    /// `Route:` lines (the Record-Route set, reversed).
    routes: Box<str>,
}

#[derive(Debug)]
struct Call {
    phase: Phase,
    /// Transaction number within the call: timers armed for an older one
    /// are stale.
    epoch: u32,
    /// First transmission of the measured request.
    t0: Instant,
    cseq: u32,
    dialog: Option<Box<Dialog>>,
    /// A whole `Authorization:` line, after a challenge.
    auth: Option<Box<str>>,
}

/// Which request to render.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Req {
    Invite,
    /// ACK of a 2xx: new branch, dialog route set.
    Ack,
    /// ACK of a failure reply: the INVITE's branch, no routes.
    AckFailure,
    Bye,
    Register,
    Options,
}

/// Per-run constants used while rendering.
struct Ctx {
    run_tag: String,
    first_ruri: String,
    users: u64,
    user_offset: u64,
}

impl Ctx {
    fn user_no(&self, n: u64) -> u64 {
        if self.users > 0 {
            self.user_offset + n % self.users
        } else {
            self.user_offset + n
        }
    }
}

/// Call-ID of call `n`: `<n>-<run tag>`.
pub fn call_id(n: u64, run_tag: &str) -> String {
    format!("{n}-{run_tag}")
}

/// The call number in one of our Call-IDs.
pub fn parse_call_id(cid: &str, run_tag: &str) -> Option<u64> {
    let (n, tag) = cid.split_once('-')?;
    if tag != run_tag || n.is_empty() || !n.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    n.parse().ok()
}

/// The UAC engine.
pub struct Uac<'c> {
    cfg: &'c Config,
    net: Net,
    server: Peer,
    tpl: Templates,
    ctx: Ctx,
    calls: KeyMap<Call>,
    timers: Timers,
    out: Vec<u8>,
    /// What was counted.
    pub stats: UacStats,
}

impl<'c> Uac<'c> {
    /// Opens the socket (UDP, or a TCP connection to the server) and
    /// compiles the templates.
    pub fn new(cfg: &'c Config, run_tag: &str) -> Result<Uac<'c>, String> {
        let (net, server) = match cfg.proto {
            Proto::Udp => (
                Net::udp(cfg.local).map_err(|e| format!("UAC bind {}: {e}", cfg.local))?,
                Peer::Udp(cfg.server),
            ),
            Proto::Tcp => (
                Net::tcp_connect(cfg.server).map_err(|e| format!("connect {}: {e}", cfg.server))?,
                Peer::Tcp(0),
            ),
        };
        let local = net.local().to_string();
        let local_ip = net.local().ip().to_string();
        let remote = cfg.server.to_string();
        let remote_ip = cfg.server.ip().to_string();
        let cparams = if cfg.proto == Proto::Tcp {
            ";transport=tcp"
        } else {
            ""
        };
        let statics = [
            ("local", local.as_str()),
            ("local_ip", local_ip.as_str()),
            ("remote", remote.as_str()),
            ("remote_ip", remote_ip.as_str()),
            ("transport", cfg.proto.via_name()),
            ("contact_params", cparams),
            ("service", cfg.service.as_str()),
        ];
        let tpl = Templates::new(&statics)?;
        Ok(Uac {
            cfg,
            net,
            server,
            tpl,
            ctx: Ctx {
                run_tag: run_tag.to_string(),
                first_ruri: format!("sip:{}@{}", cfg.service, remote),
                users: cfg.users,
                user_offset: cfg.user_offset,
            },
            calls: KeyMap::default(),
            timers: Timers::default(),
            out: Vec::with_capacity(2048),
            stats: UacStats::default(),
        })
    }

    /// Runs the scenario: the sending period, then the drain. Returns how
    /// long new calls were started.
    pub fn run(&mut self) -> Duration {
        let cfg = self.cfg;
        let start = Instant::now();
        let mut buf = vec![0u8; 65_536];
        let mut stop_at: Option<Instant> = None;
        let mut next_no: u64 = 0;
        loop {
            let now = Instant::now();
            if stop_at.is_none() {
                let elapsed = now - start;
                if elapsed >= cfg.duration || next_no >= cfg.max_calls {
                    stop_at = Some(now);
                } else {
                    let due = pacing::due(elapsed, cfg.rate);
                    let k =
                        pacing::to_start(due, next_no, self.calls.len(), cfg.limit, cfg.max_calls);
                    for _ in 0..k {
                        self.start_call(next_no, now);
                        next_no += 1;
                    }
                }
            }
            while let Some(t) = self.timers.pop_due(now) {
                self.on_timer(t.key, t.epoch, t.kind, t.n, now);
            }
            if let Some(s) = stop_at {
                if self.calls.is_empty() || now - s >= cfg.drain {
                    break;
                }
            }
            // Sleep until the next call is due, a timer fires, or input.
            let mut wake = now + Duration::from_millis(20);
            if stop_at.is_none() && self.calls.len() < cfg.limit {
                wake = wake.min(pacing::due_at(start, next_no, cfg.rate));
            }
            if let Some(t) = self.timers.next_deadline() {
                wake = wake.min(t);
            }
            self.net.wait(wake.saturating_duration_since(now));
            let mut got = 0;
            while got < 512 {
                let Some((len, _from)) = self.net.recv(&mut buf) else {
                    break;
                };
                got += 1;
                let now = Instant::now();
                self.on_message(&buf[..len], now);
            }
        }
        self.stats.unfinished += self.calls.len() as u64;
        self.calls.clear();
        stop_at.unwrap_or(start) - start
    }

    fn start_call(&mut self, n: u64, now: Instant) {
        let (phase, req, kind) = match self.cfg.scenario {
            Scenario::Call => (Phase::Inviting, Req::Invite, TxnKind::Invite),
            Scenario::Register => (Phase::Registering, Req::Register, TxnKind::NonInvite),
            Scenario::Options => (Phase::Optioning, Req::Options, TxnKind::NonInvite),
        };
        self.calls.insert(
            n,
            Call {
                phase,
                epoch: 0,
                t0: now,
                cseq: 1,
                dialog: None,
                auth: None,
            },
        );
        self.stats.started += 1;
        self.send_req(n, req);
        self.arm(n, 0, kind, now);
    }

    /// Arms the retransmission (UDP) and timeout timers of a transaction.
    fn arm(&mut self, n: u64, epoch: u32, kind: TxnKind, now: Instant) {
        if !self.cfg.proto.reliable() {
            self.timers.push(
                now,
                retrans_interval(kind, 0),
                n,
                epoch,
                TimerKind::Retrans,
                0,
            );
        }
        self.timers
            .push(now, self.cfg.timeout, n, epoch, TimerKind::Timeout, 0);
    }

    fn send_req(&mut self, n: u64, req: Req) {
        let Some(call) = self.calls.get(&n) else {
            return;
        };
        self.out.clear();
        let t = match req {
            Req::Invite => &self.tpl.invite,
            Req::Ack | Req::AckFailure => &self.tpl.ack,
            Req::Bye => &self.tpl.bye,
            Req::Register => &self.tpl.register,
            Req::Options => &self.tpl.options,
        };
        render(t, &mut self.out, &self.ctx, n, call, req);
        self.stats.sent += 1;
        if self.net.send(self.server, &self.out).is_err() {
            self.stats.send_errors += 1;
        }
    }

    fn on_timer(&mut self, n: u64, epoch: u32, kind: TimerKind, k: u32, now: Instant) {
        let Some(call) = self.calls.get(&n) else {
            return;
        };
        if call.epoch != epoch {
            return;
        }
        match kind {
            TimerKind::Timeout => {
                if call.phase != Phase::Held {
                    self.stats.timeouts += 1;
                    self.calls.remove(&n);
                }
            }
            TimerKind::Pause => {
                if call.phase == Phase::Held {
                    self.send_bye(n, now);
                }
            }
            TimerKind::Retrans => {
                let (req, txn) = match call.phase {
                    Phase::Inviting => (Req::Invite, TxnKind::Invite),
                    Phase::Byeing => (Req::Bye, TxnKind::NonInvite),
                    Phase::Registering => (Req::Register, TxnKind::NonInvite),
                    Phase::Optioning => (Req::Options, TxnKind::NonInvite),
                    // A provisional stopped INVITE retransmissions.
                    Phase::Proceeding | Phase::Held => return,
                };
                self.stats.retrans_sent += 1;
                self.send_req(n, req);
                self.timers.push(
                    now,
                    retrans_interval(txn, k + 1),
                    n,
                    epoch,
                    TimerKind::Retrans,
                    k + 1,
                );
            }
        }
    }

    fn send_bye(&mut self, n: u64, now: Instant) {
        let Some(call) = self.calls.get_mut(&n) else {
            return;
        };
        call.phase = Phase::Byeing;
        call.epoch += 1;
        let epoch = call.epoch;
        self.send_req(n, Req::Bye);
        self.arm(n, epoch, TxnKind::NonInvite, now);
    }

    fn fail(&mut self, n: u64, code: u16) {
        self.stats.bad_codes += 1;
        *self.stats.codes.entry(code).or_default() += 1;
        self.calls.remove(&n);
    }

    fn on_message(&mut self, buf: &[u8], now: Instant) {
        self.stats.received += 1;
        let Ok(msg) = Message::parse(buf) else {
            self.stats.unparsable += 1;
            return;
        };
        let (Some(code), Ok(cid), Ok(cseq)) = (msg.status(), msg.call_id(), msg.cseq()) else {
            self.stats.unparsable += 1;
            return;
        };
        let Some(n) = parse_call_id(cid, &self.ctx.run_tag) else {
            self.stats.stray += 1;
            return;
        };
        let Some(call) = self.calls.get_mut(&n) else {
            self.stats.stray += 1;
            return;
        };
        match (cseq.method, call.phase) {
            (Method::Invite, Phase::Inviting | Phase::Proceeding) => {
                if code < 200 {
                    call.phase = Phase::Proceeding;
                } else if code < 300 {
                    self.stats.latency.record(now - call.t0);
                    call.dialog = Some(Box::new(dialog_of(&msg, &self.ctx.first_ruri)));
                    call.phase = Phase::Held;
                    call.epoch += 1;
                    let epoch = call.epoch;
                    self.send_req(n, Req::Ack);
                    if self.cfg.pause.is_zero() {
                        self.send_bye(n, now);
                    } else {
                        self.timers
                            .push(now, self.cfg.pause, n, epoch, TimerKind::Pause, 0);
                    }
                } else {
                    // ACK the failure hop by hop, then count it.
                    let to_tag = msg
                        .to()
                        .ok()
                        .and_then(|t| t.tag().map(|x| format!(";tag={x}")));
                    call.dialog = Some(Box::new(Dialog {
                        to_tag: to_tag.unwrap_or_default().into(),
                        ruri: self.ctx.first_ruri.as_str().into(),
                        routes: "".into(),
                    }));
                    self.send_req(n, Req::AckFailure);
                    self.fail(n, code);
                }
            }
            (Method::Invite, Phase::Held | Phase::Byeing) => {
                if code < 200 {
                    self.stats.late_provisional += 1;
                } else {
                    // The 2xx again: the ACK was lost or late. ACK again.
                    self.stats.dup_replies += 1;
                    if code < 300 {
                        self.send_req(n, Req::Ack);
                    }
                }
            }
            (Method::Bye, Phase::Byeing) => {
                if code >= 300 {
                    self.fail(n, code);
                } else if code >= 200 {
                    self.stats.completed += 1;
                    self.calls.remove(&n);
                }
            }
            (Method::Register, Phase::Registering) => {
                if code < 200 {
                    return;
                }
                if (code == 401 || code == 407) && self.cfg.auth && call.auth.is_none() {
                    let hdr = if code == 401 {
                        HeaderName::WwwAuthenticate
                    } else {
                        HeaderName::ProxyAuthenticate
                    };
                    let Some(ch) = msg.values(hdr).find_map(Challenge::parse) else {
                        self.fail(n, code);
                        return;
                    };
                    let user_no = self.ctx.user_no(n);
                    let user = format!("user{user_no}");
                    let pass = self.cfg.password.replace("%d", &user_no.to_string());
                    let uri = format!("sip:{}", self.cfg.server.ip());
                    let cnonce = format!("{n:x}");
                    let name = if code == 401 {
                        "Authorization"
                    } else {
                        "Proxy-Authorization"
                    };
                    let value = credentials(&ch, &user, &pass, "REGISTER", &uri, &cnonce);
                    call.auth = Some(format!("{name}: {value}\r\n").into());
                    call.cseq += 1;
                    call.epoch += 1;
                    let epoch = call.epoch;
                    self.stats.challenges += 1;
                    self.send_req(n, Req::Register);
                    self.arm(n, epoch, TxnKind::NonInvite, now);
                } else if code == self.cfg.expect {
                    self.stats.latency.record(now - call.t0);
                    self.stats.completed += 1;
                    self.calls.remove(&n);
                } else {
                    self.fail(n, code);
                }
            }
            (Method::Options, Phase::Optioning) => {
                if code < 200 {
                    return;
                }
                if code == self.cfg.expect {
                    self.stats.latency.record(now - call.t0);
                    self.stats.completed += 1;
                    self.calls.remove(&n);
                } else {
                    self.fail(n, code);
                }
            }
            (Method::Bye, Phase::Held) => self.stats.stray += 1,
            _ => {
                // A reply for an earlier transaction of this call.
                if code >= 200 {
                    self.stats.dup_replies += 1;
                } else {
                    self.stats.late_provisional += 1;
                }
            }
        }
    }
}

/// The dialog from a 2xx: to-tag, remote target, route set (reversed
/// Record-Route), each value on its own `Route:` line.
fn dialog_of(msg: &Message<'_>, first_ruri: &str) -> Dialog {
    let to_tag = msg
        .to()
        .ok()
        .and_then(|t| t.tag().map(|x| format!(";tag={x}")))
        .unwrap_or_default();
    let ruri = msg.contacts().next().and_then(|c| match c {
        Ok(sip_msg::headers::ContactValue::Addr(a)) => Some(a.uri_str.to_string()),
        _ => None,
    });
    let rr: Vec<&str> = msg.values(HeaderName::RecordRoute).collect();
    let mut routes = String::new();
    for v in rr.iter().rev() {
        routes.push_str("Route: ");
        routes.push_str(v.trim());
        routes.push_str("\r\n");
    }
    // Without a route set the UAC sends in-dialog requests to the server
    // with the first Request-URI, as SIPp's built-in uac does; with one,
    // the Request-URI is the remote target.
    let ruri = if rr.is_empty() {
        first_ruri.to_string()
    } else {
        ruri.unwrap_or_else(|| first_ruri.to_string())
    };
    Dialog {
        to_tag: to_tag.into(),
        ruri: ruri.into(),
        routes: routes.into(),
    }
}

fn render(t: &Template, out: &mut Vec<u8>, ctx: &Ctx, n: u64, call: &Call, req: Req) {
    let d = call.dialog.as_deref();
    t.render(out, &mut |f, o| match f {
        Field::CallId => {
            push_u64(o, n);
            o.push(b'-');
            o.extend_from_slice(ctx.run_tag.as_bytes());
        }
        Field::Branch => {
            o.extend_from_slice(b"z9hG4bK");
            o.extend_from_slice(ctx.run_tag.as_bytes());
            o.push(b'-');
            push_u64(o, n);
            o.push(match req {
                Req::Invite | Req::AckFailure => b'i',
                Req::Ack => b'a',
                Req::Bye => b'b',
                Req::Register => b'r',
                Req::Options => b'o',
            });
            push_u64(o, u64::from(call.epoch));
        }
        Field::FromTag => {
            o.extend_from_slice(b"sb");
            push_u64(o, n);
        }
        Field::CSeq => push_u64(o, u64::from(call.cseq)),
        Field::User => {
            o.extend_from_slice(b"user");
            push_u64(o, ctx.user_no(n));
        }
        Field::RUri => match d {
            Some(d) => o.extend_from_slice(d.ruri.as_bytes()),
            None => o.extend_from_slice(ctx.first_ruri.as_bytes()),
        },
        Field::ToTag => {
            if let Some(d) = d {
                o.extend_from_slice(d.to_tag.as_bytes());
            }
        }
        Field::Routes => {
            if let (Some(d), false) = (d, req == Req::AckFailure) {
                o.extend_from_slice(d.routes.as_bytes());
            }
        }
        Field::Auth => {
            if let Some(a) = &call.auth {
                o.extend_from_slice(a.as_bytes());
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn call_ids_round_trip() {
        let c = call_id(42, "abc1");
        assert_eq!(parse_call_id(&c, "abc1"), Some(42));
        assert_eq!(parse_call_id(&c, "abc2"), None);
        assert_eq!(parse_call_id("x-abc1", "abc1"), None);
        assert_eq!(parse_call_id("-abc1", "abc1"), None);
        assert_eq!(parse_call_id("99999999999999999999999-abc1", "abc1"), None);
    }

    #[test]
    fn dialog_reverses_record_route() {
        let raw = "SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP 127.0.0.1:7000;branch=z9hG4bKx\r\nRecord-Route: <sip:p2;lr>, <sip:p1;lr>\r\nRecord-Route: <sip:p0;lr>\r\nFrom: <sip:a@b>;tag=1\r\nTo: <sip:s@b>;tag=uas9\r\nCall-ID: 1-t\r\nCSeq: 1 INVITE\r\nContact: <sip:uas@127.0.0.1:5090>\r\nContent-Length: 0\r\n\r\n";
        let m = Message::parse(raw.as_bytes()).unwrap();
        let d = dialog_of(&m, "sip:service@x");
        assert_eq!(&*d.to_tag, ";tag=uas9");
        assert_eq!(&*d.ruri, "sip:uas@127.0.0.1:5090");
        assert_eq!(
            &*d.routes,
            "Route: <sip:p0;lr>\r\nRoute: <sip:p1;lr>\r\nRoute: <sip:p2;lr>\r\n"
        );
    }
}
