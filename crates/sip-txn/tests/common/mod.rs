//! Test harness: a toy message type, a timer driver and a deterministic
//! two-party simulation with lossy/reordering links on a virtual clock.
#![allow(dead_code)]

use sip_txn::{
    Action, Actions, Instant, InviteClient, InviteServer, NonInviteClient, NonInviteServer,
    TimerConfig, Transaction,
};

/// Toy message: a request (by method) or a response (by status).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Msg {
    /// A request.
    Req(&'static str),
    /// A response.
    Resp(u16),
}

impl Msg {
    pub fn status(&self) -> Option<u16> {
        match self {
            Msg::Resp(s) => Some(*s),
            Msg::Req(_) => None,
        }
    }
}

pub fn t(ms: u64) -> Instant {
    Instant::from_millis(ms)
}

pub fn v<M>(a: Actions<M>) -> Vec<Action<M>> {
    a.into_iter().collect()
}

/// Drives only the timers of `tx` up to and including `until`, returning
/// `(time_ms, action)` for everything produced.
pub fn run_timers(tx: &mut Transaction<Msg>, until: u64) -> Vec<(u64, Action<Msg>)> {
    let mut out = Vec::new();
    while let Some(d) = tx.poll_timeout() {
        if d > t(until) {
            break;
        }
        for a in tx.handle_timeout(d) {
            out.push((d.as_millis(), a));
        }
    }
    out
}

/// Times at which `Transmit` happened.
pub fn transmit_times(log: &[(u64, Action<Msg>)]) -> Vec<u64> {
    log.iter()
        .filter(|(_, a)| matches!(a, Action::Transmit(_)))
        .map(|(t, _)| *t)
        .collect()
}

/// Fate of one copy of a message on a link: `Some(extra_delay)` or dropped.
pub type Rule = Box<dyn FnMut(usize, &Msg) -> Option<u64>>;

/// A one-way link with a fixed base delay and a per-copy rule.
pub struct Link {
    delay: u64,
    rule: Rule,
    count: usize,
    seq: u64,
    queue: Vec<(u64, u64, Msg)>,
    /// Every copy handed to the link: (time, message, delivered?).
    pub sent: Vec<(u64, Msg, bool)>,
}

impl Link {
    pub fn perfect(delay: u64) -> Self {
        Self::with_rule(delay, Box::new(|_, _| Some(0)))
    }

    pub fn with_rule(delay: u64, rule: Rule) -> Self {
        Link {
            delay,
            rule,
            count: 0,
            seq: 0,
            queue: Vec::new(),
            sent: Vec::new(),
        }
    }

    /// Drops the first `n` copies matching `pred`.
    pub fn drop_first(delay: u64, n: usize, pred: fn(&Msg) -> bool) -> Self {
        let mut dropped = 0;
        Self::with_rule(
            delay,
            Box::new(move |_, m| {
                if pred(m) && dropped < n {
                    dropped += 1;
                    None
                } else {
                    Some(0)
                }
            }),
        )
    }

    pub fn send(&mut self, now: u64, m: Msg) {
        let fate = (self.rule)(self.count, &m);
        self.count += 1;
        self.sent.push((now, m.clone(), fate.is_some()));
        if let Some(extra) = fate {
            self.seq += 1;
            self.queue.push((now + self.delay + extra, self.seq, m));
        }
    }

    pub fn next(&self) -> Option<u64> {
        self.queue.iter().map(|(t, _, _)| *t).min()
    }

    /// Messages due at `now`, in (time, send order).
    pub fn take_due(&mut self, now: u64) -> Vec<Msg> {
        self.queue.sort_by_key(|(t, s, _)| (*t, *s));
        let n = self.queue.iter().take_while(|(t, _, _)| *t <= now).count();
        self.queue.drain(..n).map(|(_, _, m)| m).collect()
    }

    pub fn sent_msgs(&self, m: &Msg) -> usize {
        self.sent.iter().filter(|(_, x, _)| x == m).count()
    }
}

/// What the server-side TU does when a new request arrives: responses to
/// send, each after a delay.
pub type UasScript = Vec<(u64, Msg)>;

/// Client transaction ↔ link ↔ server transaction, with scripted TUs.
pub struct World {
    pub now: u64,
    pub cfg: TimerConfig,
    pub reliable: bool,
    pub client: Transaction<Msg>,
    pub server: Option<Transaction<Msg>>,
    pub up: Link,
    pub down: Link,
    pub script: UasScript,
    pending_tu: Vec<(u64, Msg)>,
    /// Everything the client TU saw: (time, action) except Transmit.
    pub client_tu: Vec<(u64, Action<Msg>)>,
    /// Everything the server TU saw (new requests as PassToTu, plus
    /// Timeout/TransportError/Terminated).
    pub server_tu: Vec<(u64, Action<Msg>)>,
    /// Server transactions created.
    pub servers_created: usize,
}

impl World {
    pub fn new(request: Msg, reliable: bool, up: Link, down: Link, script: UasScript) -> Self {
        let cfg = TimerConfig::default();
        let (client, first): (Transaction<Msg>, _) = if request == Msg::Req("INVITE") {
            let (c, a) = InviteClient::start(request, reliable, &cfg, t(0));
            (c.into(), a)
        } else {
            let (c, a) = NonInviteClient::start(request, reliable, &cfg, t(0));
            (c.into(), a)
        };
        let mut w = World {
            now: 0,
            cfg,
            reliable,
            client,
            server: None,
            up,
            down,
            script,
            pending_tu: Vec::new(),
            client_tu: Vec::new(),
            server_tu: Vec::new(),
            servers_created: 0,
        };
        w.client_actions(first);
        w
    }

    fn client_actions(&mut self, a: Actions<Msg>) {
        for a in a {
            match a {
                Action::Transmit(m) => self.up.send(self.now, m),
                // The client TU builds the ACK for a non-2xx from the response.
                Action::SendAck(r) => {
                    self.client_tu.push((self.now, Action::SendAck(r)));
                    self.up.send(self.now, Msg::Req("ACK"));
                }
                other => self.client_tu.push((self.now, other)),
            }
        }
    }

    fn server_actions(&mut self, a: Actions<Msg>) {
        for a in a {
            match a {
                Action::Transmit(m) => self.down.send(self.now, m),
                other => self.server_tu.push((self.now, other)),
            }
        }
    }

    fn next_event(&self) -> Option<u64> {
        [
            self.client.poll_timeout().map(|i| i.as_millis()),
            self.server
                .as_ref()
                .and_then(|s| s.poll_timeout())
                .map(|i| i.as_millis()),
            self.up.next(),
            self.down.next(),
            self.pending_tu.iter().map(|(t, _)| *t).min(),
        ]
        .into_iter()
        .flatten()
        .min()
    }

    /// Runs until nothing is pending or `until` is reached.
    pub fn run(&mut self, until: u64) {
        while let Some(n) = self.next_event() {
            if n > until {
                break;
            }
            self.now = n;
            let now = t(n);
            // Timers first.
            if self.client.poll_timeout().is_some_and(|d| d <= now) {
                let a = self.client.handle_timeout(now);
                self.client_actions(a);
            }
            if let Some(s) = self.server.as_mut() {
                if s.poll_timeout().is_some_and(|d| d <= now) {
                    let a = s.handle_timeout(now);
                    self.server_actions(a);
                }
            }
            // Server TU responses due.
            self.pending_tu.sort_by_key(|(t, _)| *t);
            let k = self.pending_tu.iter().take_while(|(t, _)| *t <= n).count();
            for (_, m) in self.pending_tu.drain(..k).collect::<Vec<_>>() {
                let status = m.status().unwrap_or(0);
                let a = match self.server.as_mut() {
                    Some(Transaction::InviteServer(s)) => s.send_response(now, m, status),
                    Some(Transaction::NonInviteServer(s)) => s.send_response(now, m, status),
                    _ => Actions::ignored(),
                };
                self.server_actions(a);
            }
            // Deliveries.
            for m in self.up.take_due(n) {
                self.deliver_to_server(now, m);
            }
            for m in self.down.take_due(n) {
                let status = m.status().unwrap_or(0);
                let a = match &mut self.client {
                    Transaction::InviteClient(c) => c.handle_response(now, m, status),
                    Transaction::NonInviteClient(c) => c.handle_response(now, m, status),
                    _ => Actions::ignored(),
                };
                self.client_actions(a);
            }
            if self.server.as_ref().is_some_and(|s| s.is_terminated()) {
                self.server = None;
            }
        }
    }

    fn deliver_to_server(&mut self, now: Instant, m: Msg) {
        let a = match (&mut self.server, &m) {
            (Some(Transaction::InviteServer(s)), Msg::Req("ACK")) => s.handle_ack(now, m),
            (Some(Transaction::InviteServer(s)), _) => s.handle_request(now),
            (Some(Transaction::NonInviteServer(s)), _) => s.handle_request(now),
            (None, Msg::Req("ACK")) => {
                // ACK matching no transaction (e.g. after termination): to the TU core.
                self.server_tu.push((self.now, Action::PassToTu(m)));
                return;
            }
            _ => {
                let s: Transaction<Msg> = if m == Msg::Req("INVITE") {
                    InviteServer::new(self.reliable, &self.cfg, now).into()
                } else {
                    NonInviteServer::new(self.reliable, &self.cfg, now).into()
                };
                self.server = Some(s);
                self.servers_created += 1;
                self.server_tu.push((self.now, Action::PassToTu(m)));
                for (d, r) in self.script.clone() {
                    self.pending_tu.push((self.now + d, r));
                }
                return;
            }
        };
        self.server_actions(a);
    }

    /// Responses the client TU received, in order.
    pub fn client_got(&self) -> Vec<Msg> {
        self.client_tu
            .iter()
            .filter_map(|(_, a)| match a {
                Action::PassToTu(m) => Some(m.clone()),
                _ => None,
            })
            .collect()
    }
}
