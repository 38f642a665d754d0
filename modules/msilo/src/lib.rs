//! # msilo: messages for offline users
//!
//! Kamailio's `msilo` module. `m_store([owner])` keeps a MESSAGE for a
//! user who is not registered in the `silo` table (sender, recipient,
//! content type without parameters, body, the headers Kamailio's parser
//! does not know, when it came and when it expires: its `Expires` when
//! above 0, at most `expire_time`). `m_dump([owner])`, called on a REGISTER, sends the
//! user's messages as new MESSAGE requests (through `outbound_proxy`,
//! else to the recipient's address), the body prefixed with the time it
//! came (`add_date`); a message is deleted when its 2xx comes, kept for
//! the next registration otherwise. Expired messages are deleted every
//! `check_time` seconds.
//!
//! With `from_address` and `offline_message`, storing a message sends
//! its sender a notice.
//!
//! Statistics: `stored_messages`, `dumped_messages`, `failed_messages`,
//! `dumped_reminders`, `failed_reminders`.
#![forbid(unsafe_code)]

pub mod message;

use message::Stored;
use sr_mod_tm::local::{Ended, LocalRequests, Taken};
use sr_mod_tm::{TmApi, TM_API};
use sr_sdk::db::{Cond, DbOp, DbPool, DbValue, Order};
use sr_sdk::prelude::*;
use std::collections::HashSet;
use std::sync::atomic::AtomicI64;
use std::sync::{Arc, Mutex, OnceLock, RwLock};
use std::time::Duration;

/// The module's parameters (Kamailio's names and defaults).
pub struct Params {
    db_url: Arc<RwLock<String>>,
    db_table: Arc<RwLock<String>>,
    outbound_proxy: Arc<RwLock<String>>,
    contact_hdr: Arc<RwLock<String>>,
    expire_time: Arc<AtomicI64>,
    check_time: Arc<AtomicI64>,
    add_date: Arc<AtomicI64>,
    add_contact: Arc<AtomicI64>,
    max_messages: Arc<AtomicI64>,
    from_address: Arc<RwLock<String>>,
    offline_message: Arc<RwLock<String>>,
    content_type_hdr: Arc<RwLock<String>>,
    use_contact: Arc<AtomicI64>,
    skip_flag: Arc<AtomicI64>,
}

/// The offline notice, compiled at start: who it is from and its text
/// (both formats with pseudo-variables of the stored MESSAGE).
struct Notice {
    from: Arc<dyn sr_sdk::fixup::Eval>,
    text: Arc<dyn sr_sdk::fixup::Eval>,
    content_type: String,
}

/// The module's state.
pub struct Msilo {
    p: Params,
    pool: OnceLock<DbPool>,
    tm: OnceLock<Arc<TmApi>>,
    sent: LocalRequests<i64>,
    /// Rows being sent (not sent again until their reply).
    sending: Mutex<HashSet<i64>>,
    notice: OnceLock<Notice>,
    stored: Stat,
    dumped: Stat,
    failed: Stat,
    dumped_reminders: Stat,
    failed_reminders: Stat,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Msilo {
    fn table(&self) -> String {
        params::get_str(&self.p.db_table)
    }

    fn pool(&self) -> Option<&DbPool> {
        self.pool.get()
    }

    /// `m_store([owner])`.
    fn store(&self, ctx: &mut Ctx<'_>, owner: Option<String>) -> i32 {
        let m = ctx.msg.msg();
        if m.method() != Some(Method::Message) {
            lm_err!("m_store: not a MESSAGE request");
            return -1;
        }
        let owner = owner.unwrap_or_else(|| ctx.msg.ruri().to_string());
        let Ok(o) = sr_sdk::sip_msg::Uri::parse(&owner) else {
            lm_err!("m_store: bad owner URI [{owner}]");
            return -1;
        };
        let Some(user) = o.user else {
            lm_err!("m_store: the owner URI [{owner}] has no user");
            return -1;
        };
        if m.body().is_empty() {
            lm_err!("m_store: the MESSAGE has no body");
            return -1;
        }
        let (Ok(from), Ok(to)) = (m.from(), m.to()) else {
            lm_err!("m_store: no From or To");
            return -1;
        };
        let now = sr_sdk::db::now();
        let life = m
            .value(HeaderName::Expires)
            .and_then(|v| v.trim().parse::<i64>().ok());
        // As Kamailio: the message's Expires when above 0, at most
        // `expire_time`.
        let most = params::get_int(&self.p.expire_time).max(0);
        let life = life.filter(|l| *l > 0).map_or(most, |l| l.min(most));
        let Some(ctype) = m.value(HeaderName::ContentType).map(message::content_type) else {
            lm_err!("m_store: the MESSAGE has no Content-Type");
            return -1;
        };
        let extra = message::extra_headers(m);
        let row = [
            ("src_addr", DbValue::str(from.uri_str)),
            ("dst_addr", DbValue::str(to.uri_str)),
            ("username", DbValue::str(user)),
            ("domain", DbValue::str(o.host_str)),
            ("inc_time", DbValue::BigInt(now)),
            ("exp_time", DbValue::BigInt(now.saturating_add(life))),
            ("snd_time", DbValue::Int(0)),
            ("ctype", DbValue::str(ctype)),
            ("body", DbValue::Blob(m.body().to_vec())),
            ("extra_hdrs", DbValue::str(extra)),
            ("callid", DbValue::str("")),
            ("status", DbValue::Int(0)),
        ];
        let Some(pool) = self.pool() else { return -1 };
        let table = self.table();
        let max = params::get_int(&self.p.max_messages);
        if max > 0 {
            let account = [
                Cond::eq("username", DbValue::str(user)),
                Cond::eq("domain", DbValue::str(o.host_str)),
            ];
            match pool.with(|c| c.query(&table, &account, &["id"], None)) {
                Ok(r) if r.len() as i64 >= max => {
                    lm_err!("m_store: too many messages for {user}@{}", o.host_str);
                    return -1;
                }
                Ok(_) => {}
                Err(e) => {
                    lm_err!("m_store: counting the messages: {e}");
                    return -1;
                }
            }
        }
        match pool.with(|c| c.insert(&table, &row)) {
            Ok(()) => {
                self.stored.inc();
                self.notify(ctx);
                1
            }
            Err(e) => {
                lm_err!("m_store: storing the message: {e}");
                -1
            }
        }
    }

    /// `m_dump([owner])`.
    fn dump(&self, ctx: &mut Ctx<'_>, owner: Option<String>) -> i32 {
        let m = ctx.msg.msg();
        if m.method() != Some(Method::Register) {
            lm_err!("m_dump: not a REGISTER request");
            return -1;
        }
        // A client that lists what it allows and leaves MESSAGE out gets
        // none.
        let allows: Vec<&str> = m
            .headers_named(HeaderName::Allow)
            .flat_map(|h| h.value.split(','))
            .map(str::trim)
            .collect();
        if !allows.is_empty() && !allows.iter().any(|a| a.eq_ignore_ascii_case("MESSAGE")) {
            lm_dbg!("m_dump: the client does not allow MESSAGE");
            return -1;
        }
        let owner = match owner {
            Some(o) => o,
            None => match m.to() {
                Ok(t) => t.uri_str.to_string(),
                Err(_) => return -1,
            },
        };
        let Ok(o) = sr_sdk::sip_msg::Uri::parse(&owner) else {
            lm_err!("m_dump: bad owner URI [{owner}]");
            return -1;
        };
        let Some(user) = o.user else { return -1 };
        let Some(pool) = self.pool() else { return -1 };
        let table = self.table();
        let now = sr_sdk::db::now();
        let rows = pool.with(|c| {
            c.query(
                &table,
                &[
                    Cond::eq("username", DbValue::str(user)),
                    Cond::eq("domain", DbValue::str(o.host_str)),
                    Cond::new("exp_time", DbOp::Gt, DbValue::BigInt(now)),
                ],
                &[
                    "id",
                    "src_addr",
                    "dst_addr",
                    "inc_time",
                    "ctype",
                    "body",
                    "extra_hdrs",
                ],
                Some(&Order {
                    col: "id".into(),
                    desc: false,
                }),
            )
        });
        let rows = match rows {
            Ok(r) => r,
            Err(e) => {
                lm_err!("m_dump: reading the messages: {e}");
                return -1;
            }
        };
        for i in 0..rows.len() {
            let text = |c: &str| rows.get(i, c).as_string().unwrap_or_default();
            let s = Stored {
                id: rows.get(i, "id").as_i64().unwrap_or(0),
                src: text("src_addr"),
                dst: text("dst_addr"),
                inc_time: rows.get(i, "inc_time").as_i64().unwrap_or(0),
                ctype: text("ctype"),
                body: match rows.get(i, "body") {
                    DbValue::Blob(b) => b.clone(),
                    other => other.as_string().unwrap_or_default().into_bytes(),
                },
                extra: text("extra_hdrs"),
            };
            if !lock(&self.sending).insert(s.id) {
                continue;
            }
            // Delivered since the query (its 2xx deletes it before the
            // id leaves `sending`): not sent again.
            let still = pool.with(|c| {
                c.query(
                    &table,
                    &[Cond::eq("id", DbValue::BigInt(s.id))],
                    &["id"],
                    None,
                )
            });
            if !still.is_ok_and(|r| !r.is_empty()) {
                lock(&self.sending).remove(&s.id);
                continue;
            }
            self.send(ctx.core, &s);
        }
        1
    }

    /// The offline notice to the sender of a MESSAGE just stored, from
    /// `from_address`, to its Contact (`use_contact`) or From URI, through
    /// `outbound_proxy` when set.
    fn notify(&self, ctx: &mut Ctx<'_>) {
        let (Some(n), Some(tm)) = (self.notice.get(), self.tm.get()) else {
            return;
        };
        let skip = params::get_int(&self.p.skip_flag);
        if (0..32).contains(&skip) && ctx.msg.flags & (1 << skip) != 0 {
            return;
        }
        let m = ctx.msg.msg();
        let Ok(sender) = m.from().map(|f| f.uri_str.to_string()) else {
            return;
        };
        let contact = (params::get_int(&self.p.use_contact) != 0)
            .then(|| {
                m.contacts().flatten().find_map(|c| match c {
                    sr_sdk::sip_msg::headers::ContactValue::Addr(na) => {
                        Some(na.uri_str.to_string())
                    }
                    _ => None,
                })
            })
            .flatten();
        let ruri = contact.unwrap_or_else(|| sender.clone());
        let from = n.from.eval(ctx).as_str().into_owned();
        let text = n.text.eval(ctx).as_str().into_owned();
        let proxy = params::get_str(&self.p.outbound_proxy);
        let next = if proxy.is_empty() { &ruri } else { &proxy };
        let core = ctx.core;
        let dest = match core.resolve(next, None) {
            Ok(d) => d,
            Err(e) => {
                lm_err!("msilo: offline notice to {next}: {e}");
                return;
            }
        };
        let (k, branch) = self.sent.next_branch();
        let mut data = self.sent.head(
            core,
            &dest,
            k,
            &branch,
            "MESSAGE",
            &ruri,
            &sender,
            &from,
            text.len(),
        );
        data.push_str(&n.content_type);
        data.push_str("\r\n");
        data.push_str(&text);
        if let Some(e) = self
            .sent
            .start(core, k, data.into_bytes(), dest, &tm.uac_timers(), NOTICE)
        {
            self.ended(e);
        }
    }

    fn send(&self, core: &dyn Core, s: &Stored) {
        let Some(tm) = self.tm.get() else { return };
        let proxy = params::get_str(&self.p.outbound_proxy);
        let next = if proxy.is_empty() { &s.dst } else { &proxy };
        let dest = match core.resolve(next, None) {
            Ok(d) => d,
            Err(e) => {
                lm_err!("msilo: message {} to {next}: {e}", s.id);
                lock(&self.sending).remove(&s.id);
                self.failed.inc();
                return;
            }
        };
        let (n, branch) = self.sent.next_branch();
        let contact = params::get_str(&self.p.contact_hdr).replace("\\r\\n", "\r\n");
        let more = if params::get_int(&self.p.add_contact) != 0 && !contact.is_empty() {
            if contact.ends_with("\r\n") {
                contact
            } else {
                format!("{contact}\r\n")
            }
        } else {
            String::new()
        };
        let body = message::body(s, params::get_int(&self.p.add_date) != 0);
        let head = self.sent.head(
            core,
            &dest,
            n,
            &branch,
            "MESSAGE",
            &s.dst,
            &s.dst,
            &s.src,
            body.len(),
        );
        let mut data = (head + &message::tail(s, &more)).into_bytes();
        data.extend_from_slice(&body);
        if let Some(e) = self.sent.start(core, n, data, dest, &tm.uac_timers(), s.id) {
            self.ended(e);
        }
    }

    /// The outcome of a MESSAGE sent: delivered (2xx) messages are
    /// deleted; others stay for the next registration.
    fn ended(&self, e: Ended<i64>) {
        if e.tag == NOTICE {
            if !(200..300).contains(&e.code) {
                lm_notice!(
                    "msilo: offline notice not delivered: {} {}",
                    e.code,
                    e.reason
                );
            }
            return;
        }
        if !(200..300).contains(&e.code) {
            lock(&self.sending).remove(&e.tag);
            lm_notice!(
                "msilo: message {} not delivered: {} {}",
                e.tag,
                e.code,
                e.reason
            );
            self.failed.inc();
            return;
        }
        self.dumped.inc();
        if let Some(pool) = self.pool() {
            let table = self.table();
            let gone = pool.with(|c| c.delete(&table, &[Cond::eq("id", DbValue::BigInt(e.tag))]));
            if let Err(err) = gone {
                lm_err!("msilo: deleting delivered message {}: {err}", e.tag);
            }
        }
        lock(&self.sending).remove(&e.tag);
    }

    /// Deletes expired messages.
    fn clean(&self) {
        let Some(pool) = self.pool() else { return };
        let table = self.table();
        let now = sr_sdk::db::now();
        if let Err(e) = pool.with(|c| {
            c.delete(
                &table,
                &[Cond::new("exp_time", DbOp::Le, DbValue::BigInt(now))],
            )
        }) {
            lm_err!("msilo: deleting expired messages: {e}");
        }
    }

    fn init(self: &Arc<Self>, core: &dyn Core) -> Result<(), String> {
        let from = params::get_str(&self.p.from_address);
        let text = params::get_str(&self.p.offline_message);
        if !from.is_empty() && !text.is_empty() {
            let mut ct = params::get_str(&self.p.content_type_hdr).replace("\\r\\n", "\r\n");
            if ct.trim().is_empty() {
                return Err("msilo: content_type_hdr must be set for the offline notice".into());
            }
            if !ct.ends_with("\r\n") {
                ct.push_str("\r\n");
            }
            let compile = |s: &str, what: &str| {
                core.compile_format(s)
                    .map_err(|e| format!("msilo: {what}: {e}"))
            };
            let _ = self.notice.set(Notice {
                from: compile(&from, "from_address")?,
                text: compile(&text, "offline_message")?,
                content_type: ct,
            });
        }
        let url = params::get_str(&self.p.db_url);
        let pool = DbPool::open(core, &url).map_err(|e| format!("msilo: {e}"))?;
        let table = self.table();
        pool.with(|c| sr_sdk::db::check_version(c, &table, sr_sdk::db::msilo_tables::SILO_VERSION))
            .map_err(|e| format!("msilo: {e}"))?;
        let _ = self.pool.set(pool);
        let tm = bind::<TmApi>(core, TM_API)
            .ok_or("msilo needs the tm module (load tm before msilo)")?;
        let _ = self.tm.set(tm);
        let handle = core
            .handle()
            .ok_or("msilo: no core handle for its timers")?;
        let me = self.clone();
        let h = handle.clone();
        core.add_timer(
            "msilo-retransmit",
            Duration::from_millis(100),
            Arc::new(move || {
                if let Some(core) = h.upgrade() {
                    for e in me.sent.tick(&*core) {
                        me.ended(e);
                    }
                }
            }),
        );
        let me = self.clone();
        let every = params::get_int(&self.p.check_time).max(1) as u64;
        core.add_timer(
            "msilo-clean",
            Duration::from_secs(every),
            Arc::new(move || me.clean()),
        );
        Ok(())
    }
}

/// The tag of an offline notice in [`Msilo::sent`] (messages have their
/// row id).
const NOTICE: i64 = -1;

/// Parameters accepted for compatibility with no effect here: reminders
/// (`reminder`, `send_time`, `snd_time_avp`), `clean_period` (delivered
/// messages are deleted when their 2xx comes), the column names and
/// `extra_hdrs`.
const ACCEPTED_STR: &[&str] = &[
    "reminder",
    "snd_time_avp",
    "extra_hdrs",
    "extra_hdrs_avp",
    "sc_mid",
    "sc_from",
    "sc_to",
    "sc_uri_user",
    "sc_uri_host",
    "sc_body",
    "sc_ctype",
    "sc_exp_time",
    "sc_inc_time",
    "sc_snd_time",
    "sc_stored_hdrs",
    "sc_callid",
    "sc_status",
];
const ACCEPTED_INT: &[&str] = &["send_time", "clean_period", "notify_offline"];

/// The `msilo` module.
pub fn module() -> ModuleDef {
    let s = Arc::new(Msilo {
        p: Params {
            db_url: params::str_cell("mysql://kamailio:kamailiorw@localhost/kamailio"),
            db_table: params::str_cell("silo"),
            outbound_proxy: params::str_cell(""),
            contact_hdr: params::str_cell(""),
            expire_time: params::int_cell(259200),
            check_time: params::int_cell(60),
            add_date: params::int_cell(1),
            add_contact: params::int_cell(0),
            max_messages: params::int_cell(0),
            from_address: params::str_cell(""),
            offline_message: params::str_cell(""),
            content_type_hdr: params::str_cell(""),
            use_contact: params::int_cell(1),
            skip_flag: params::int_cell(-1),
        },
        pool: OnceLock::new(),
        tm: OnceLock::new(),
        sent: LocalRequests::new("ms"),
        sending: Mutex::new(HashSet::new()),
        notice: OnceLock::new(),
        stored: Stat::default(),
        dumped: Stat::default(),
        failed: Stat::default(),
        dumped_reminders: Stat::default(),
        failed_reminders: Stat::default(),
    });
    let p = &s.p;
    let mut def = ModuleDef::new("msilo");
    for (name, cell) in [
        ("db_url", &p.db_url),
        ("db_table", &p.db_table),
        ("outbound_proxy", &p.outbound_proxy),
        ("contact_hdr", &p.contact_hdr),
        ("from_address", &p.from_address),
        ("offline_message", &p.offline_message),
        ("content_type_hdr", &p.content_type_hdr),
    ] {
        def = def.param(name, ParamKind::Str, params::string(cell));
    }
    for (name, cell) in [
        ("expire_time", &p.expire_time),
        ("check_time", &p.check_time),
        ("add_date", &p.add_date),
        ("add_contact", &p.add_contact),
        ("max_messages", &p.max_messages),
        ("use_contact", &p.use_contact),
        ("skip_notification_flag", &p.skip_flag),
    ] {
        def = def.param(name, ParamKind::Int, params::int(cell));
    }
    for name in ACCEPTED_STR {
        def = def.param(name, ParamKind::Str, |_| Ok(()));
    }
    for name in ACCEPTED_INT {
        def = def.param(name, ParamKind::Int, |_| Ok(()));
    }
    def = def
        .stat("stored_messages", s.stored.clone())
        .stat("dumped_messages", s.dumped.clone())
        .stat("failed_messages", s.failed.clone())
        .stat("dumped_reminders", s.dumped_reminders.clone())
        .stat("failed_reminders", s.failed_reminders.clone());
    let req = RouteType::REQUEST | RouteType::FAILURE;
    let spve = Some(fixup::f(fixup::spve));
    let (a, b, c, d) = (s.clone(), s.clone(), s.clone(), s.clone());
    def = def
        .cmd("m_store", 0, req, None, move |ctx, _| a.store(ctx, None))
        .cmd("m_store", 1, req, spve.clone(), move |ctx, p| {
            let o = p[0].str(ctx).into_owned();
            b.store(ctx, Some(o))
        })
        .cmd("m_dump", 0, req, None, move |ctx, _| c.dump(ctx, None))
        .cmd("m_dump", 1, req, spve, move |ctx, p| {
            let o = p[0].str(ctx).into_owned();
            d.dump(ctx, Some(o).filter(|o| !o.is_empty()))
        });
    let r = s.clone();
    def = def.on_response(move |ctx| match r.sent.take_reply(ctx.msg) {
        Taken::NotOurs => false,
        Taken::Absorbed => true,
        Taken::Ended(e) => {
            r.ended(e);
            true
        }
    });
    def.on_init(move |core| s.init(core))
}
