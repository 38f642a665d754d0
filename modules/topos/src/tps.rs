//! What topos does to each message, as Kamailio 5.6's `tps_msg.c`: on the
//! way out, a request keeps only this server's Via, loses its
//! Record-Route set, and gets a Contact of this server's carrying the
//! dialog's key; a reply loses the Record-Route entries of the other side
//! and gets such a Contact too. What was taken out is stored, and put
//! back on the way in: the Vias on a reply, the Request-URI (the real
//! Contact) and the Route set on a request within a dialog.
//!
//! Two headers carry state from the way in to the way out of one
//! message, as in Kamailio: `P-SR-XUID` (the dialog's key, on a request)
//! and `P-SR-XBranch` (this server's branch, on a reply); both are taken
//! out before the message leaves.

use crate::pack::{cseq_method, in_dialog, link_msg, pack, uri_param, Direction, TpsData};
use crate::store::{self, BranchKey, Records, Update};
use sr_sdk::db::{DbConn, DbPool};
use sr_sdk::sip_msg::edit::Edits;
use sr_sdk::sip_msg::{HeaderName, Message, Method, Uri};
use sr_sdk::{Core, RouteId};
use std::cell::RefCell;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock, Weak};

/// The header with a request's dialog key, from the way in to the way out.
pub const XUID: &str = "P-SR-XUID";
/// The header with a reply's branch, from the way in to the way out.
pub const XBRANCH: &str = "P-SR-XBranch";

/// Where the dialog key goes in the Contacts topos makes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ContactMode {
    /// The user part: `<sip:btpsh-...@host:port>` (`contact_mode` 0).
    User,
    /// A URI parameter (`cparam_name`), the user part taken from the
    /// Request-URI (toward the caller) or the caller's Contact (toward
    /// the callee) (`contact_mode` 1).
    Param,
}

/// The settings, fixed at start.
#[derive(Debug, Clone)]
pub struct Settings {
    /// `contact_mode`.
    pub contact_mode: ContactMode,
    /// `cparam_name`.
    pub cparam_name: String,
    /// `contact_host` (empty: the host of this server's Record-Route).
    pub contact_host: String,
    /// `branch_expire` in seconds.
    pub branch_expire: i64,
    /// `dialog_expire` in seconds.
    pub dialog_expire: i64,
    /// `event_mode`.
    pub event_mode: i64,
    /// `context`.
    pub context: String,
}

/// topos' event routes, when the script has them.
#[derive(Debug, Default, Clone, Copy)]
pub struct EventRoutes {
    /// `topos:msg-outgoing`: before a message to send is read.
    pub outgoing: Option<RouteId>,
    /// `topos:msg-sending`: on the message to send.
    pub sending: Option<RouteId>,
    /// `topos:msg-incoming`: before a received message is read.
    pub incoming: Option<RouteId>,
    /// `topos:msg-receiving`: on the received message.
    pub receiving: Option<RouteId>,
}

/// Makes the dialog keys as Kamailio's `sruid` with prefix `tpsh` does:
/// `tpsh-<start time>-<process>-<counter>` in hex (the counter's digits
/// lowest first), then `-<context>` when there is one.
#[derive(Debug)]
pub struct Uids {
    base: String,
    counter: AtomicU64,
}

impl Uids {
    /// Keys starting from now.
    pub fn new() -> Uids {
        Uids {
            base: format!("tpsh-{:x}-{:x}", sr_sdk::db::now(), std::process::id()),
            counter: AtomicU64::new(0),
        }
    }

    /// The next key, with the context (if any) at its end.
    pub fn next(&self, context: &str) -> String {
        let n = self.counter.fetch_add(1, Ordering::Relaxed) + 1;
        let digits: String = format!("{n:x}").chars().rev().collect();
        if context.is_empty() {
            format!("{}-{digits}", self.base)
        } else {
            format!("{}-{digits}-{context}", self.base)
        }
    }
}

impl Default for Uids {
    fn default() -> Self {
        Uids::new()
    }
}

thread_local! {
    /// The context set by `tps_set_context` for the message in hand.
    static CONTEXT: RefCell<String> = const { RefCell::new(String::new()) };
}

/// Sets (or, empty, resets) the context of the message in hand.
pub fn set_context(v: &str) {
    CONTEXT.with(|c| {
        let mut c = c.borrow_mut();
        c.clear();
        c.push_str(v);
    });
}

/// How many locks the Call-IDs share.
const LOCKS: usize = 512;

/// The module's state.
pub struct Tps {
    /// Settings.
    pub cfg: Settings,
    /// The database.
    pub pool: DbPool,
    /// One lock per Call-ID hash: a dialog's records are read and
    /// written by one message at a time.
    locks: Vec<Mutex<()>>,
    /// Dialog keys.
    uids: Uids,
    /// The core, for the event routes.
    pub core: Option<Weak<dyn Core>>,
    /// Those routes, looked up once the script is compiled.
    pub routes: OnceLock<EventRoutes>,
}

/// A message topos works on (Kamailio's `tps_prepare_msg` and
/// `tps_skip_msg`): parsed, with a Via, From, To, Call-ID and CSeq, not a
/// REGISTER or PUBLISH.
fn usable(buf: &[u8]) -> Option<Message<'_>> {
    let m = Message::parse(buf).ok()?;
    if m.is_http() {
        return None;
    }
    m.top_via().ok()?;
    m.from().ok()?;
    m.to().ok()?;
    m.call_id().ok()?;
    let method = m.cseq().ok()?.method;
    if matches!(method, Method::Register | Method::Publish) {
        return None;
    }
    Some(m)
}

/// Which way a message goes: from the caller when its From tag is the
/// dialog's (`tps_dlg_detect_direction`).
fn direction(m: &Message<'_>, sd: &TpsData) -> Direction {
    let ftag = m.from_tag().ok().flatten().unwrap_or("");
    if ftag == sd.a_tag {
        Direction::Downstream
    } else {
        Direction::Upstream
    }
}

/// Removes every header of a kind.
fn remove_all(m: &Message<'_>, e: &mut Edits, name: HeaderName) {
    for h in m.headers_named(name) {
        e.remove_header(h);
    }
}

/// Removes the first header of a name.
fn remove_named(m: &Message<'_>, e: &mut Edits, name: &str) {
    if let Some(h) = m.headers_by_name(name).next() {
        e.remove_header(h);
    }
}

/// Adds a header after the last one (nothing for an empty value).
fn append(m: &Message<'_>, e: &mut Edits, name: &str, value: &str) {
    if !value.is_empty() {
        e.append_header(m, name, value);
    }
}

/// The Contact toward one side; none on CANCEL, BYE and PRACK.
fn reinsert_contact(m: &Message<'_>, e: &mut Edits, value: &str) {
    if matches!(
        cseq_method(m),
        Some(Method::Cancel | Method::Bye | Method::Prack)
    ) {
        return;
    }
    append(m, e, "Contact", value);
}

/// Route headers from a stored route set (`tps_reappend_route`): in
/// reverse, one header per entry, toward the callee; as stored, in one
/// header, toward the caller.
fn reappend_route(m: &Message<'_>, e: &mut Edits, set: &str, reverse: bool) {
    if set.is_empty() {
        return;
    }
    if reverse && set.contains(',') {
        for part in set.rsplit(',') {
            append(m, e, "Route", part);
        }
        return;
    }
    let v = set
        .trim_end_matches(',')
        .trim_matches(|c: char| c == '\0' || c.is_whitespace());
    append(m, e, "Route", v.trim_end_matches(','));
}

/// A header's first value.
fn header_value<'a>(m: &Message<'a>, name: &str) -> Option<&'a str> {
    m.headers_by_name(name).next().map(|h| h.value.trim())
}

impl Tps {
    /// The state.
    pub fn new(cfg: Settings, pool: DbPool, core: Option<Weak<dyn Core>>) -> Tps {
        Tps {
            cfg,
            pool,
            locks: (0..LOCKS).map(|_| Mutex::new(())).collect(),
            uids: Uids::new(),
            core,
            routes: OnceLock::new(),
        }
    }

    fn context(&self) -> String {
        let v = CONTEXT.with(|c| c.borrow().clone());
        if v.is_empty() {
            self.cfg.context.clone()
        } else {
            v
        }
    }

    fn lock(&self, call_id: &str) -> std::sync::MutexGuard<'_, ()> {
        let h = call_id.bytes().fold(2166136261u32, |h, b| {
            (h ^ u32::from(b.to_ascii_lowercase())).wrapping_mul(16777619)
        });
        let l = &self.locks[h as usize % LOCKS];
        l.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Runs `f` on a pooled connection; a connection whose work failed is
    /// not kept (the pool opens a new one next time).
    fn db<T>(&self, f: impl FnOnce(&mut dyn DbConn) -> Result<T, String>) -> Result<T, String> {
        self.pool
            .with(|c| f(c).map_err(sr_sdk::db::DbError::new))
            .map_err(|e| e.to_string())
    }

    // ---- event routes -------------------------------------------------

    /// Runs one of the event routes (on a faked message, or on `buf`
    /// parsed); whether it executed `drop`.
    fn dropped_by(&self, bit: i64, route: Option<RouteId>, buf: Option<&[u8]>) -> bool {
        if self.cfg.event_mode & bit == 0 {
            return false;
        }
        let (Some(id), Some(core)) = (route, self.core.as_ref().and_then(Weak::upgrade)) else {
            return false;
        };
        sr_sdk::core_api::event_route_drops(&*core, id, buf)
    }

    // ---- the hooks ----------------------------------------------------

    /// A message received; `None` when nothing changes.
    pub fn received(&self, buf: &[u8]) -> Option<Vec<u8>> {
        set_context("");
        let routes = self.routes.get().copied().unwrap_or_default();
        if self.dropped_by(4, routes.incoming, None) {
            return None;
        }
        let m = usable(buf)?;
        if self.dropped_by(8, routes.receiving, Some(buf)) {
            return None;
        }
        let mut e = Edits::new();
        // The state headers are this server's own: any that came from
        // outside go (so no one can pick another dialog's records).
        for h in m.headers() {
            if h.name_str.eq_ignore_ascii_case(XUID) || h.name_str.eq_ignore_ascii_case(XBRANCH) {
                e.remove_header(h);
            }
        }
        let r = if !m.is_request() {
            self.response_received(&m, &mut e)
        } else if in_dialog(&m) {
            self.request_received(&m, &mut e)
        } else {
            Ok(())
        };
        if let Err(err) = r {
            sr_sdk::lm_dbg!("topos: received message left as it is: {err}");
        }
        (!e.is_empty()).then(|| e.apply(&m, Default::default()))
    }

    /// A message about to be sent; `None` when nothing changes.
    pub fn sending(&self, buf: &[u8]) -> Option<Vec<u8>> {
        let routes = self.routes.get().copied().unwrap_or_default();
        if self.dropped_by(1, routes.outgoing, None) {
            return None;
        }
        let m = usable(buf)?;
        if self.dropped_by(2, routes.sending, Some(buf)) {
            return None;
        }
        let mut e = Edits::new();
        let r = if m.is_request() {
            let dialog = in_dialog(&m);
            let local = m.vias().count() < 2;
            if local
                && !dialog
                && matches!(
                    cseq_method(&m),
                    Some(Method::Options | Method::Notify | Method::Other("KDMQ"))
                )
            {
                // The server's own requests outside dialogs (keepalives).
                return None;
            }
            self.request_sent(&m, &mut e, dialog, local)
        } else {
            if m.status() == Some(100) {
                return None;
            }
            self.response_sent(&m, &mut e)
        };
        if let Err(err) = r {
            sr_sdk::lm_err!("topos: {err}");
        }
        (!e.is_empty()).then(|| e.apply(&m, Default::default()))
    }

    // ---- the way in ---------------------------------------------------

    /// The dialog key in a request's Request-URI (`tps_dlg_message_update`).
    fn key_in_ruri(&self, m: &Message<'_>, md: &mut TpsData) {
        let Some(u) = m.request_uri() else { return };
        let key = match self.cfg.contact_mode {
            ContactMode::Param => {
                if u.params.len() < 10 {
                    return;
                }
                match uri_param(u, &self.cfg.cparam_name) {
                    Some(v) => v,
                    None => return,
                }
            }
            ContactMode::User => match u.user {
                Some(v) if v.len() >= 10 => v,
                _ => return,
            },
        };
        if key.starts_with("atpsh-") {
            md.a_uuid = key.to_string();
        } else if key.starts_with("btpsh-") {
            md.a_uuid = key.to_string();
            md.b_uuid = key.to_string();
        }
    }

    /// A request within a dialog: its Request-URI and Route set restored
    /// from the dialog (`tps_request_received`).
    fn request_received(&self, m: &Message<'_>, e: &mut Edits) -> Result<(), String> {
        let mut md = pack(m, &self.context());
        self.key_in_ruri(m, &mut md);
        let call_id = m.call_id().unwrap_or("");
        let method = cseq_method(m);
        let (sd, dir, use_branch) = {
            let _g = self.lock(call_id);
            let sd = self.db(|c| store::load_dialog(c, &md))?.unwrap_or_default();
            let early = matches!(
                method,
                Some(Method::Bye | Method::Info | Method::Prack | Method::Update | Method::Notify)
            ) && sd.b_contact.is_empty();
            if early {
                // No callee Contact yet: an early dialog, whose data is on
                // the INVITE's branch.
                let dir = if matches!(method, Some(Method::Bye | Method::Update | Method::Notify)) {
                    direction(m, &sd)
                } else {
                    Direction::Downstream
                };
                link_msg(m, &mut md, dir).map_err(|_| "bad request for its dialog")?;
                let bd = self
                    .db(|c| {
                        store::load_branch(c, &md, BranchKey::Invite).map_err(|e| e.to_string())
                    })?
                    .unwrap_or_default();
                (bd, dir, true)
            } else {
                let dir = direction(m, &sd);
                (sd, dir, false)
            }
        };
        let up = dir == Direction::Upstream;
        let nuri = if use_branch && !up {
            &sd.b_contact
        } else if up {
            &sd.a_contact
        } else {
            &sd.b_contact
        };
        if !nuri.is_empty() {
            e.set_request_uri(m, nuri);
        }
        reappend_route(m, e, &sd.s_rr, !up);
        let other = match (use_branch, up) {
            (true, true) => &sd.x_rr,
            (true, false) => &sd.y_rr,
            (false, true) => &sd.a_rr,
            (false, false) => &sd.b_rr,
        };
        reappend_route(m, e, other, !up);
        append(m, e, XUID, &sd.a_uuid);
        if method == Some(Method::Subscribe) {
            // A refresh: the subscriber's Contact and the record's time.
            link_msg(m, &mut md, dir).map_err(|_| "bad request for its dialog")?;
            md.direction = dir;
            let what = Update {
                contact: true,
                reply_attrs: false,
                time: true,
            };
            let _g = self.lock(call_id);
            self.db(|c| store::update(c, Records::Dialog, &md, &sd, None, what))?;
        }
        Ok(())
    }

    /// A reply: the Vias and the caller side's Record-Route entries put
    /// back from the branch (`tps_response_received`).
    fn response_received(&self, m: &Message<'_>, e: &mut Edits) -> Result<(), String> {
        let mut md = pack(m, &self.context());
        let call_id = m.call_id().unwrap_or("");
        let status = m.status();
        let invite = store::tracked(cseq_method(m).as_ref());
        let bd = {
            let _g = self.lock(call_id);
            let bd = self
                .db(|c| store::load_branch(c, &md, BranchKey::Via).map_err(|e| e.to_string()))?
                .unwrap_or_default();
            let sd = self.db(|c| store::load_dialog(c, &bd))?.unwrap_or_default();
            md.direction = direction(m, &sd);
            if invite && status.is_some_and(|c| (180..200).contains(&c)) {
                let d = md.direction;
                link_msg(m, &mut md, d).map_err(|_| "bad reply for its dialog")?;
                let what = Update {
                    contact: true,
                    reply_attrs: true,
                    time: false,
                };
                self.db(|c| store::update(c, Records::Branches, &md, &bd, status, what))?;
            }
            if invite && status.is_some_and(|c| (200..300).contains(&c)) {
                let d = md.direction;
                link_msg(m, &mut md, d).map_err(|_| "bad reply for its dialog")?;
                let what = Update {
                    contact: false,
                    reply_attrs: true,
                    time: false,
                };
                self.db(|c| store::update(c, Records::Dialog, &md, &sd, status, what))?;
            }
            bd
        };
        append(m, e, "Via", &bd.x_via);
        append(m, e, "Record-Route", &bd.s_rr);
        append(m, e, "Record-Route", &bd.x_rr);
        append(m, e, XBRANCH, &md.x_vbranch1);
        Ok(())
    }

    // ---- the way out --------------------------------------------------

    /// A Contact of this server's for one side (`tps_storage_fill_contact`),
    /// made from the local address in `md` (its own Record-Route entry);
    /// sets the side's key and Contact in `md`.
    fn fill_contact(
        &self,
        m: &Message<'_>,
        md: &mut TpsData,
        uid: &str,
        dir: Direction,
    ) -> Result<(), String> {
        let sv = match dir {
            Direction::Downstream => md.bs_contact.clone(),
            Direction::Upstream => md.as_contact.clone(),
        };
        if sv.is_empty() {
            return Ok(());
        }
        let u = Uri::parse(&sv).map_err(|_| format!("bad local address [{sv}]"))?;
        let scheme_len = sv.find(':').map_or(sv.len(), |i| i + 1);
        let side = if dir == Direction::Downstream {
            'b'
        } else {
            'a'
        };
        let key = format!("{side}{uid}");
        let host = if self.cfg.contact_host.is_empty() {
            u.host_str
        } else {
            &self.cfg.contact_host
        };
        let mut c = format!("<{}", &sv[..scheme_len]);
        if self.cfg.contact_mode == ContactMode::Param {
            let user = match dir {
                Direction::Downstream => match m.contacts().next() {
                    Some(Ok(sr_sdk::sip_msg::headers::ContactValue::Addr(n))) => {
                        n.uri.user.unwrap_or("").to_string()
                    }
                    None if cseq_method(m) == Some(Method::Bye) => return Ok(()),
                    _ => return Err("bad or missing Contact header".into()),
                },
                Direction::Upstream => m
                    .request_uri()
                    .and_then(|r| r.user)
                    .unwrap_or("")
                    .to_string(),
            };
            if !user.is_empty() {
                c.push_str(&user);
                c.push('@');
            }
        } else {
            c.push_str(&key);
            c.push('@');
        }
        c.push_str(host);
        if let Some(p) = u.port {
            c.push_str(&format!(":{p}"));
        }
        if let Some(t) = uri_param(&u, "transport").filter(|t| !t.is_empty()) {
            c.push_str(";transport=");
            c.push_str(t);
        }
        if self.cfg.contact_mode == ContactMode::Param {
            c.push_str(&format!(";{}={key}", self.cfg.cparam_name));
        }
        c.push('>');
        match dir {
            Direction::Downstream => {
                md.b_uuid = key;
                md.bs_contact = c;
            }
            Direction::Upstream => {
                md.a_uuid = key;
                md.as_contact = c;
            }
        }
        Ok(())
    }

    /// Stores a new branch, and for an initial request its dialog
    /// (`tps_storage_record`).
    fn record(
        &self,
        c: &mut dyn DbConn,
        m: &Message<'_>,
        md: &mut TpsData,
        dialog: bool,
        dir: Direction,
    ) -> Result<(), String> {
        // A stored key: its side's letter, then the uid.
        let uid_of = |k: &str| {
            k.get(1..)
                .filter(|u| u.starts_with("tpsh-"))
                .map(str::to_string)
        };
        let uid = if !dialog {
            self.uids.next(&md.x_context)
        } else if let Some(u) = uid_of(&md.a_uuid).or_else(|| uid_of(&md.b_uuid)) {
            u
        } else {
            return Err("no dialog key to store the branch with".into());
        };
        self.fill_contact(m, md, &uid, Direction::Downstream)?;
        self.fill_contact(m, md, &uid, Direction::Upstream)?;
        link_msg(m, md, dir).map_err(|_| "bad or missing Contact header")?;
        md.direction = dir;
        let now = sr_sdk::db::now();
        if !dialog {
            if md.as_contact.is_empty() && md.bs_contact.is_empty() {
                sr_sdk::lm_warn!("no local address - do record routing for all initial requests");
            }
            store::insert_dialog(c, md, now).map_err(|e| e.to_string())?;
        }
        store::insert_branch(c, md, now).map_err(|e| e.to_string())
    }

    /// A request leaving: only this server's Via, no Record-Route, this
    /// server's Contact (`tps_request_sent`).
    fn request_sent(
        &self,
        m: &Message<'_>,
        e: &mut Edits,
        dialog: bool,
        local: bool,
    ) -> Result<(), String> {
        let mut md = pack(m, &self.context());
        let method = cseq_method(m);
        if dialog {
            let Some(xuid) = header_value(m, XUID) else {
                // Not received within a dialog: a request of this server's.
                if matches!(method, Some(Method::Ack | Method::Cancel)) {
                    remove_all(m, e, HeaderName::RecordRoute);
                    remove_all(m, e, HeaderName::Contact);
                    remove_all(m, e, HeaderName::Via);
                    e.add_header_first(m, "Via", &md.x_via1);
                }
                return Ok(());
            };
            md.a_uuid = xuid.to_string();
            remove_named(m, e, XUID);
        }
        let call_id = m.call_id().unwrap_or("");
        let _g = self.lock(call_id);
        let mut dir = Direction::Downstream;
        let mut sd = None;
        if dialog {
            let loaded = self.db(|c| store::load_dialog(c, &md)).ok().flatten();
            dir = direction(m, loaded.as_ref().unwrap_or(&TpsData::default()));
            md.direction = dir;
            sd = loaded;
        }
        let bd = self.db(|c| store::load_branch(c, &md, BranchKey::Via).map_err(|e| e.to_string()));
        let bd = match bd {
            Ok(Some(b)) => Some(b),
            _ => {
                self.db(|c| self.record(c, m, &mut md, dialog, dir))?;
                None
            }
        };
        if local {
            return Ok(());
        }
        let p = sd.as_ref().or(bd.as_ref()).unwrap_or(&md).clone();
        remove_all(m, e, HeaderName::RecordRoute);
        remove_all(m, e, HeaderName::Contact);
        remove_all(m, e, HeaderName::Via);
        e.add_header_first(m, "Via", &md.x_via1);
        match dir {
            Direction::Upstream => reinsert_contact(m, e, &p.as_contact),
            Direction::Downstream => reinsert_contact(m, e, &p.bs_contact),
        }
        if dialog {
            let sd = sd.unwrap_or_default();
            if method == Some(Method::Bye) {
                self.db(|c| store::end_dialog(c, &p, sr_sdk::db::now()))?;
            }
            if store::tracked(method.as_ref()) {
                link_msg(m, &mut md, dir).map_err(|_| "bad request for its dialog")?;
                let what = Update {
                    contact: true,
                    reply_attrs: false,
                    time: false,
                };
                self.db(|c| store::update(c, Records::Dialog, &md, &sd, None, what))?;
            }
        }
        Ok(())
    }

    /// A reply leaving: no Record-Route of the other side, this server's
    /// Contact (`tps_response_sent`).
    fn response_sent(&self, m: &Message<'_>, e: &mut Edits) -> Result<(), String> {
        let Some(xbranch) = header_value(m, XBRANCH) else {
            // Not a reply topos saw coming in: a reply of this server's.
            return Ok(());
        };
        let mut md = pack(m, &self.context());
        md.x_vbranch1 = xbranch.to_string();
        remove_named(m, e, XBRANCH);
        let method = cseq_method(m);
        if method == Some(Method::Message) {
            remove_all(m, e, HeaderName::RecordRoute);
            remove_all(m, e, HeaderName::Contact);
            return Ok(());
        }
        let call_id = m.call_id().unwrap_or("");
        let (bd, sd) = {
            let _g = self.lock(call_id);
            let bd = self
                .db(|c| store::load_branch(c, &md, BranchKey::Via).map_err(|e| e.to_string()))?
                .unwrap_or_default();
            let sd = self.db(|c| store::load_dialog(c, &bd))?.unwrap_or_default();
            (bd, sd)
        };
        let dir = direction(m, &sd);
        md.direction = dir;
        remove_all(m, e, HeaderName::RecordRoute);
        let code = m.status().unwrap_or(0);
        let no_contact = m.header(HeaderName::Contact).is_none();
        let keep = (300..400).contains(&code)
            || (no_contact && ((101..200).contains(&code) || (400..500).contains(&code)));
        if !keep {
            remove_all(m, e, HeaderName::Contact);
            match dir {
                Direction::Downstream => reinsert_contact(m, e, &sd.as_contact),
                Direction::Upstream => reinsert_contact(m, e, &sd.bs_contact),
            }
        }
        append(m, e, "Record-Route", &bd.x_rr);
        if store::tracked(method.as_ref()) {
            let status = m.status();
            let what = Update {
                contact: true,
                reply_attrs: false,
                time: false,
            };
            if status.is_some_and(|c| (180..200).contains(&c)) {
                link_msg(m, &mut md, dir).map_err(|_| "bad reply for its dialog")?;
                self.db(|c| store::update(c, Records::Branches, &md, &bd, status, what))?;
            }
            if status.is_some_and(|c| (200..300).contains(&c)) {
                link_msg(m, &mut md, dir).map_err(|_| "bad reply for its dialog")?;
                self.db(|c| store::update(c, Records::Dialog, &md, &sd, status, what))?;
            }
        }
        Ok(())
    }

    /// Removes expired records.
    pub fn clean(&self) {
        let (b, d) = (self.cfg.branch_expire, self.cfg.dialog_expire);
        if let Err(e) =
            self.db(|c| store::clean(c, sr_sdk::db::now(), b, d).map_err(|e| e.to_string()))
        {
            sr_sdk::lm_err!("topos: cleaning expired records failed: {e}");
        }
    }
}
