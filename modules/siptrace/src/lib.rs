//! Module `siptrace` (Kamailio's): copies of SIP messages for a capture
//! server — Homer over HEP (versions 1, 2 and 3), or the SIP message
//! itself over UDP — and rows in the `sip_trace` table. `sip_trace()`
//! traces the current message, or with mode `t` its whole transaction
//! (the requests relayed, the replies received and sent, CANCEL and ACK);
//! `trace_mode` mirrors all traffic; `hlog()` sends a HEP log event.
#![forbid(unsafe_code)]

pub mod hep;
pub mod record;
pub mod track;

use record::Record;
use sr_sdk::db::{DbPool, DbValue};
use sr_sdk::exports::params::{get_int, get_str, int, int_cell, str_cell, string};
use sr_sdk::prelude::*;
use sr_sdk::sip_msg::Message;
use std::cell::Cell;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock, Weak};
use std::time::Duration;

/// Kamailio's default `db_url`.
pub const DEFAULT_DB_URL: &str = "mysql://kamailio:kamailiorw@localhost/kamailio";

/// The module's settings and state, fixed at start.
pub struct Trace {
    /// `trace_on`, changed by `siptrace.status`.
    pub on: AtomicBool,
    dup: Option<SocketAddr>,
    hep: bool,
    hep_version: u8,
    capture_id: u32,
    auth_key: String,
    trace_flag: Option<u32>,
    to_db: bool,
    mode: i64,
    local_ip: Option<String>,
    table: String,
    cols: Vec<String>,
    db: Option<DbPool>,
    core: Option<Weak<dyn Core>>,
    tracked: track::Tracked,
}

thread_local! {
    /// Set while this module sends a copy (its own sends are not traced).
    static SENDING: Cell<bool> = const { Cell::new(false) };
}

/// The column names, in the order [`Trace::store`] fills them.
const COLUMNS: [(&str, &str); 12] = [
    ("msg_column", "msg"),
    ("callid_column", "callid"),
    ("method_column", "method"),
    ("status_column", "status"),
    ("fromip_column", "fromip"),
    ("toip_column", "toip"),
    ("date_column", "time_stamp"),
    ("direction_column", "direction"),
    ("fromtag_column", "fromtag"),
    ("totag_column", "totag"),
    ("traced_user_column", "traced_user"),
    ("time_us", "time_us"),
];

/// The top two Via branches of a message.
fn branches(m: &Message<'_>) -> (Option<String>, Option<String>) {
    let mut v = m
        .vias()
        .map_while(Result::ok)
        .map(|v| v.branch().map(str::to_string));
    (v.next().flatten(), v.next().flatten())
}

impl Trace {
    fn core(&self) -> Option<Arc<dyn Core>> {
        self.core.as_ref().and_then(Weak::upgrade)
    }

    /// Sends `data` to `to` over UDP, not traced itself.
    fn send(&self, to: SocketAddr, data: &[u8]) {
        let Some(core) = self.core() else { return };
        SENDING.with(|s| s.set(true));
        if let Err(e) = core.send(&Dest::new(Proto::Udp, to), data) {
            lm_err!("siptrace: cannot send a copy to {to}: {e}");
        }
        SENDING.with(|s| s.set(false));
    }

    /// The copy of `r` for a capture server: HEP (`hep` true) in the
    /// configured version, else the message itself.
    fn copy(&self, r: &Record, to: SocketAddr, cid: Option<&str>, hep: bool) {
        if !hep {
            self.send(to, &r.body);
            return;
        }
        let p = hep::Packet {
            ip_proto: hep::ip_proto(r.proto.as_str()),
            src: r.from,
            dst: r.to,
            time: r.time,
            proto_type: hep::PROTO_SIP,
            capture_id: self.capture_id,
            correlation: cid,
            auth_key: Some(self.auth_key.as_str()),
            payload: &r.body,
        };
        let b = match self.hep_version {
            3 => hep::encode_v3(&p, false),
            v => hep::encode_v2(&p, v),
        };
        match b {
            Some(b) => self.send(to, &b),
            None => lm_err!("siptrace: cannot encode the HEP packet"),
        }
    }

    /// Writes `r` to the table; false when it fails.
    fn store(&self, r: &Record) -> bool {
        let Some(db) = &self.db else { return false };
        let values = [
            DbValue::Blob(r.body.clone()),
            DbValue::str(&r.callid),
            DbValue::str(&r.method),
            DbValue::str(&r.status),
            DbValue::str(&r.fromip),
            DbValue::str(&r.toip),
            DbValue::DateTime(r.time.0 as i64),
            DbValue::str(r.direction),
            DbValue::str(&r.fromtag),
            DbValue::str(&r.totag),
            DbValue::str(""),
            DbValue::Int(r.time.1 as i32),
        ];
        let row: Vec<(&str, DbValue)> = self.cols.iter().map(String::as_str).zip(values).collect();
        match db.with(|c| c.insert(&self.table, &row)) {
            Ok(()) => true,
            Err(e) => {
                lm_err!("siptrace: cannot store the message: {e}");
                false
            }
        }
    }

    /// Applies `trace_local_ip` to the local end of a record.
    fn local_ip(&self, mut r: Record) -> Record {
        if let Some(ip) = &self.local_ip {
            let text = if ip.contains(':') && !ip.starts_with('[') && ip.matches(':').count() == 1 {
                format!("{}:{ip}", r.proto.as_str())
            } else {
                format!(
                    "{}:{ip}:{}",
                    r.proto.as_str(),
                    if r.direction == "in" {
                        r.to.port()
                    } else {
                        r.from.port()
                    }
                )
            };
            if r.direction == "in" {
                r.toip = text;
            } else {
                r.fromip = text;
            }
        }
        r
    }

    /// A message of a traced transaction, unless traced already.
    fn transaction_message(&self, branch: &str, r: Option<Record>) {
        let Some(r) = r else { return };
        if let Some((copy_to, cid)) = self.tracked.first_time(branch, &r.body) {
            let r = self.local_ip(r);
            if self.to_db {
                self.store(&r);
            }
            if let Some(to) = copy_to {
                self.copy(&r, to, cid.as_deref(), self.hep);
            }
        }
    }

    /// `trace_mode`: every message (1 HEP, 2 the table, 4 the message
    /// itself, to `duplicate_uri`).
    fn mirror(&self, r: &Record) {
        if self.mode & 2 != 0 {
            self.store(r);
        }
        if let Some(to) = self.dup {
            if self.mode & 1 != 0 {
                self.copy(r, to, None, true);
            }
            if self.mode & 4 != 0 {
                self.copy(r, to, None, false);
            }
        }
    }

    /// The received-data hook.
    pub fn received(&self, buf: &[u8], rcv: &sr_sdk::RecvInfo) {
        let mirror = self.mode != 0 && self.on.load(Ordering::Relaxed);
        if !mirror && self.tracked.is_empty() {
            return;
        }
        if mirror {
            if let Some(r) = Record::of(buf, rcv.proto, rcv.src, rcv.dst, "in", true) {
                self.mirror(&r);
            }
        }
        if self.tracked.is_empty() {
            return;
        }
        let Ok(m) = Message::parse(buf) else { return };
        let Some(b) = branches(&m).0 else { return };
        if self.tracked.has(&b) {
            self.transaction_message(
                &b,
                Record::of(buf, rcv.proto, rcv.src, rcv.dst, "in", false),
            );
        }
    }

    /// The sent-data hook.
    pub fn sending(&self, buf: &[u8], dest: &Dest) {
        if SENDING.with(Cell::get) {
            return;
        }
        let mirror = self.mode != 0 && self.on.load(Ordering::Relaxed);
        if !mirror && self.tracked.is_empty() {
            return;
        }
        let local = dest
            .send_socket
            .unwrap_or_else(|| SocketAddr::from(([0, 0, 0, 0], 0)));
        if mirror {
            if let Some(r) = Record::of(buf, dest.proto, local, dest.addr, "out", true) {
                self.mirror(&r);
            }
        }
        if self.tracked.is_empty() {
            return;
        }
        let Ok(m) = Message::parse(buf) else { return };
        let (top, second) = branches(&m);
        let record = || Record::of(buf, dest.proto, local, dest.addr, "out", false);
        if m.is_request() {
            // A request relayed for a traced one: this server's branch
            // joins the transaction (its CANCEL, ACK and replies).
            if let Some(s) = second.filter(|s| self.tracked.has(s)) {
                if let Some(t) = &top {
                    self.tracked.alias(&s, t);
                }
                self.transaction_message(&s, record());
                return;
            }
        }
        if let Some(t) = top.filter(|t| self.tracked.has(t)) {
            self.transaction_message(&t, record());
        }
    }

    /// `sip_trace([uri[, correlation_id[, mode]]])`.
    fn sip_trace(
        &self,
        ctx: &mut Ctx<'_>,
        uri: Option<&str>,
        cid: Option<String>,
        mode: Option<char>,
    ) -> i32 {
        if !self.on.load(Ordering::Relaxed) {
            return -1;
        }
        let mode = mode.unwrap_or(match self.trace_flag {
            Some(f) if ctx.msg.flags & (1 << f) != 0 => 't',
            _ => 'm',
        });
        let rcv = ctx.msg.rcv;
        let body = ctx.msg.bytes().clone();
        let Some(r) = Record::of(&body, rcv.proto, rcv.src, rcv.dst, "in", false) else {
            return -1;
        };
        let r = self.local_ip(r);
        let copy_to = match uri.filter(|u| !u.is_empty()) {
            Some(u) => match ctx.core.resolve(u, Some(Proto::Udp)) {
                Ok(d) => Some(d.addr),
                Err(e) => {
                    lm_err!("siptrace: bad trace address '{u}': {e}");
                    return -1;
                }
            },
            None if !self.to_db => match self.dup {
                Some(d) => Some(d),
                None => {
                    lm_err!("siptrace: no duplicate_uri and trace_to_database is 0");
                    return -1;
                }
            },
            None => None,
        };
        if self.to_db && !self.store(&r) {
            return -1;
        }
        if let Some(to) = copy_to {
            self.copy(&r, to, cid.as_deref(), self.hep);
        }
        if mode == 't' {
            if !ctx.msg.is_request() {
                lm_warn!("siptrace: transaction tracing needs a request");
                return -1;
            }
            let Some(b) = branches(ctx.msg.msg()).0 else {
                return -1;
            };
            // The transaction's other messages carry no correlation id,
            // as Kamailio's tm callbacks send them.
            if !self.tracked.has(&b) {
                self.tracked.add(&b, copy_to, None, &body);
            }
        }
        1
    }

    /// `hlog([correlation_id,] message)`.
    fn hlog(&self, ctx: &mut Ctx<'_>, cid: Option<String>, text: &str) -> i32 {
        let Some(to) = self.dup else {
            lm_err!("siptrace: hlog needs duplicate_uri");
            return -1;
        };
        let cid = match cid {
            Some(c) => c,
            None => match ctx.msg.msg().call_id() {
                Ok(c) => c.to_string(),
                Err(_) => return -1,
            },
        };
        let local = ctx
            .core
            .local_addr(Proto::Udp, Some(to))
            .and_then(|(h, p)| Some(SocketAddr::new(h.trim_matches(['[', ']']).parse().ok()?, p)))
            .unwrap_or_else(|| SocketAddr::from(([0, 0, 0, 0], 0)));
        let p = hep::Packet {
            ip_proto: 17,
            src: local,
            dst: to,
            time: record::now(),
            proto_type: hep::PROTO_LOG,
            capture_id: self.capture_id,
            correlation: Some(&cid),
            auth_key: Some(self.auth_key.as_str()),
            payload: text.as_bytes(),
        };
        match hep::encode_v3(&p, true) {
            Some(b) => {
                self.send(to, &b);
                1
            }
            None => -1,
        }
    }
}

/// The module definition.
pub fn module() -> ModuleDef {
    let strs: Vec<(&'static str, Arc<std::sync::RwLock<String>>)> = [
        ("db_url", DEFAULT_DB_URL),
        ("table", "sip_trace"),
        ("duplicate_uri", ""),
        ("trace_local_ip", ""),
        ("traced_user_avp", ""),
        ("trace_table_avp", ""),
        ("force_send_sock", ""),
        ("send_sock_addr", ""),
        ("send_sock_name", ""),
        ("auth_key", ""),
        ("evcb_msg", ""),
    ]
    .into_iter()
    .chain(COLUMNS.iter().filter(|c| c.0 != "time_us").copied())
    .map(|(n, d)| (n, str_cell(d)))
    .collect();
    let ints: Vec<(&'static str, Arc<std::sync::atomic::AtomicI64>)> = [
        ("trace_flag", -1),
        ("trace_on", 0),
        ("trace_to_database", 1),
        ("trace_sl_acks", 1),
        ("xheaders_write", 0),
        ("xheaders_read", 0),
        ("hep_mode_on", 0),
        ("hep_version", 1),
        ("hep_capture_id", 1),
        ("trace_delayed", 0),
        ("trace_db_mode", 0),
        ("trace_mode", 0),
        ("trace_init_mode", 0),
    ]
    .into_iter()
    .map(|(n, d)| (n, int_cell(d)))
    .collect();
    let state: Arc<OnceLock<Trace>> = Arc::new(OnceLock::new());
    let mut def = ModuleDef::new("siptrace");
    for (n, c) in &strs {
        def = def.param(n, ParamKind::Str, string(c));
    }
    for (n, c) in &ints {
        def = def.param(n, ParamKind::Int, int(c));
    }
    let (s_init, strs2, ints2) = (state.clone(), strs.clone(), ints.clone());
    def = def.on_init(move |core| {
        let s = |n: &str| {
            strs2
                .iter()
                .find(|x| x.0 == n)
                .map(|x| get_str(&x.1))
                .unwrap_or_default()
        };
        let i = |n: &str| ints2.iter().find(|x| x.0 == n).map_or(0, |x| get_int(&x.1));
        for (p, what) in [
            ("xheaders_write", "X-Siptrace headers"),
            ("xheaders_read", "X-Siptrace headers"),
        ] {
            if i(p) != 0 {
                return Err(format!("siptrace: {p} ({what}) is not built"));
            }
        }
        for p in ["traced_user_avp", "trace_table_avp", "evcb_msg"] {
            if !s(p).is_empty() {
                return Err(format!("siptrace: {p} is not built"));
            }
        }
        for p in ["force_send_sock", "send_sock_addr", "send_sock_name"] {
            if !s(p).is_empty() {
                lm_warn!("siptrace: {p} is not built: copies leave from the first UDP socket");
            }
        }
        let hep_version = i("hep_version");
        if !(1..=3).contains(&hep_version) {
            return Err(format!(
                "siptrace: hep_version {hep_version} is not 1, 2 or 3"
            ));
        }
        let dup = match s("duplicate_uri") {
            u if u.is_empty() => None,
            u => Some(
                core.resolve(&u, Some(Proto::Udp))
                    .map_err(|e| format!("siptrace: bad duplicate_uri '{u}': {e}"))?
                    .addr,
            ),
        };
        let mode = i("trace_mode");
        if i("trace_init_mode") == 1 && mode == 0 {
            return Err("siptrace: trace_init_mode 1 needs trace_mode".into());
        }
        let to_db = i("trace_to_database") != 0;
        let db = if to_db || mode & 2 != 0 {
            let url = s("db_url");
            Some(DbPool::open(core, &url).map_err(|e| format!("siptrace: database {url}: {e}"))?)
        } else {
            None
        };
        let flag = i("trace_flag");
        let cols = COLUMNS
            .iter()
            .map(|(p, d)| if *p == "time_us" { d.to_string() } else { s(p) })
            .collect();
        let t = Trace {
            on: AtomicBool::new(i("trace_on") != 0),
            dup,
            hep: i("hep_mode_on") != 0,
            hep_version: hep_version as u8,
            capture_id: i("hep_capture_id") as u32,
            auth_key: s("auth_key"),
            trace_flag: (0..32).contains(&flag).then_some(flag as u32),
            to_db,
            mode: if i("trace_init_mode") == 2 { 0 } else { mode },
            local_ip: Some(s("trace_local_ip")).filter(|x| !x.is_empty()),
            table: s("table"),
            cols,
            db,
            core: core.handle(),
            tracked: track::Tracked::default(),
        };
        let _ = s_init.set(t);
        let sweep = s_init.clone();
        core.add_timer(
            "siptrace",
            Duration::from_secs(5),
            Arc::new(move || {
                if let Some(t) = sweep.get() {
                    t.tracked.sweep();
                }
            }),
        );
        Ok(())
    });
    let (s_in, s_out) = (state.clone(), state.clone());
    def = def
        .on_net_data_in(move |buf, rcv| {
            if let Some(t) = s_in.get() {
                t.received(buf, rcv);
            }
            None
        })
        .on_net_data_out(move |buf, dest| {
            if let Some(t) = s_out.get() {
                t.sending(buf, dest);
            }
            None
        });
    let routes = RouteType::REQUEST
        | RouteType::FAILURE
        | RouteType::ONREPLY
        | RouteType::BRANCH
        | RouteType::ONSEND;
    let spve = || Some(fixup::f(fixup::spve));
    for n in 0..=3usize {
        let st = state.clone();
        def = def.cmd("sip_trace", n, routes, spve(), move |ctx, a| {
            let Some(t) = st.get() else { return -1 };
            let uri = a.first().map(|x| x.str(ctx).into_owned());
            let cid = a
                .get(1)
                .map(|x| x.str(ctx).into_owned())
                .filter(|c| !c.is_empty());
            let mode = match a.get(2).map(|x| x.str(ctx).to_ascii_lowercase()) {
                None => None,
                Some(m) if m == "m" || m == "t" => m.chars().next(),
                Some(m) if m == "d" => {
                    lm_err!("siptrace: dialog tracing (mode d) is not built");
                    return -1;
                }
                Some(m) => {
                    lm_err!("siptrace: unknown trace mode '{m}'");
                    return -1;
                }
            };
            t.sip_trace(ctx, uri.as_deref(), cid, mode)
        });
    }
    let st = state.clone();
    def = def.cmd(
        "sip_trace_mode",
        1,
        RouteType::ANY,
        spve(),
        move |ctx, a| {
            let Some(t) = st.get() else { return -1 };
            let m = a[0].str(ctx).to_ascii_lowercase();
            let mode = match m.chars().next() {
                Some('t') => Some('t'),
                Some('d') => {
                    lm_err!("siptrace: dialog tracing (mode d) is not built");
                    return -1;
                }
                _ => Some('m'),
            };
            t.sip_trace(ctx, None, None, mode)
        },
    );
    for n in 1..=2usize {
        let st = state.clone();
        def = def.cmd("hlog", n, RouteType::ANY, spve(), move |ctx, a| {
            let Some(t) = st.get() else { return -1 };
            let (cid, text) = match a.len() {
                2 => (Some(a[0].str(ctx).into_owned()), a[1].str(ctx).into_owned()),
                _ => (None, a[0].str(ctx).into_owned()),
            };
            t.hlog(ctx, cid, &text)
        });
    }
    let st = state.clone();
    def.rpc(
        "siptrace.status",
        "Turns tracing on or off (on, off), or tells whether it is on (check).",
        move |params| {
            let Some(t) = st.get() else {
                return Err(RpcError::new(500, "Internal error"));
            };
            let p = params
                .first()
                .and_then(|p| p.as_str())
                .ok_or_else(|| RpcError::new(500, "Not enough parameters (on, off or check)"))?
                .to_ascii_lowercase();
            if p.starts_with("on") {
                t.on.store(true, Ordering::Relaxed);
            } else if p.starts_with("off") {
                t.on.store(false, Ordering::Relaxed);
            } else if !p.starts_with("check") {
                return Err(RpcError::new(500, "Bad parameter (on, off or check)"));
            }
            Ok(sr_sdk::serde_json::Value::String(
                if t.on.load(Ordering::Relaxed) {
                    "Enabled"
                } else {
                    "Disabled"
                }
                .into(),
            ))
        },
    )
}
