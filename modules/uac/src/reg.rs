//! Remote registrations (Kamailio's `uac_reg`): the proxy registers the
//! accounts of the `uacreg` table with their registrars and keeps them
//! registered — REGISTER to `auth_proxy` with `Contact:
//! <sip:l_uuid@contact_addr>`, one answer to a 401/407 with the account's
//! credentials, the granted expiry read from the 200, a new REGISTER when
//! `reg_timer_interval + 3` seconds are left, a retry after
//! `reg_retry_interval` (or the account disabled) when it fails.

use crate::auth::{authorization, parse_challenge, Credential};
use crate::Uac;
use sr_mod_tm::local::{Ended, Taken};
use sr_sdk::db::{Cond, DbPool, DbValue, Rows};
use sr_sdk::prelude::*;
use std::sync::atomic::Ordering;

/// The account is disabled (`uac_reg_disable`, a failure without retry).
pub const DISABLED: u32 = 1;
/// A REGISTER is in flight.
pub const ONGOING: u32 = 2;
/// Registered.
pub const ONLINE: u32 = 4;
/// Credentials were sent in this round.
pub const AUTHSENT: u32 = 8;
/// Loaded.
pub const INIT: u32 = 16;

/// One account.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Account {
    /// Local id (the Contact's user).
    pub l_uuid: String,
    /// Local user (what `uac_reg_lookup` gives).
    pub l_username: String,
    /// Local domain.
    pub l_domain: String,
    /// Remote user.
    pub r_username: String,
    /// Remote domain (the registrar's).
    pub r_domain: String,
    /// Realm the challenge must have (any when empty).
    pub realm: String,
    /// Digest user.
    pub auth_username: String,
    /// Digest password.
    pub auth_password: String,
    /// Digest HA1 (used when set).
    pub auth_ha1: String,
    /// Where the REGISTER goes.
    pub auth_proxy: String,
    /// Expiry asked for, seconds (0: not registered).
    pub expires: u32,
    /// `DISABLED`, `ONGOING`, `ONLINE`, `AUTHSENT`, `INIT`.
    pub flags: u32,
    /// Seconds before the first REGISTER.
    pub reg_delay: u32,
    /// Contact host[:port][;params] (else `reg_contact_addr`).
    pub contact_addr: String,
    /// Local socket (else `default_socket`).
    pub socket: String,
    /// When it must be registered again (unix seconds).
    pub timer_expires: i64,
    /// When it was loaded.
    pub reg_init: i64,
    /// The Call-ID kept with `reg_keep_callid`.
    pub callid: String,
    /// The last CSeq sent with that Call-ID.
    pub cseq: u32,
    /// When the last REGISTER went.
    pub sent_at: i64,
    /// The number of the REGISTER transaction in flight (replies to
    /// older ones are ignored).
    pub tx: u64,
}

/// One account from a row (Kamailio's checks: the ids, domains, user
/// names and `auth_proxy` must not be empty; a password or a 32-digit
/// HA1 is needed).
pub fn from_row(rows: &Rows, i: usize, now: i64) -> Result<Account, String> {
    let s = |name: &str| rows.get(i, name).as_string().unwrap_or_default();
    let n = |name: &str| {
        rows.get(i, name)
            .as_i64()
            .unwrap_or(0)
            .clamp(0, u32::MAX as i64) as u32
    };
    let a = Account {
        l_uuid: s("l_uuid"),
        l_username: s("l_username"),
        l_domain: s("l_domain"),
        r_username: s("r_username"),
        r_domain: s("r_domain"),
        realm: s("realm"),
        auth_username: s("auth_username"),
        auth_password: s("auth_password"),
        auth_ha1: s("auth_ha1").to_ascii_lowercase(),
        auth_proxy: s("auth_proxy"),
        expires: n("expires"),
        flags: (n("flags") & DISABLED) | INIT,
        reg_delay: n("reg_delay"),
        contact_addr: s("contact_addr"),
        socket: s("socket"),
        reg_init: now,
        ..Account::default()
    };
    for (name, v) in [
        ("l_uuid", &a.l_uuid),
        ("l_username", &a.l_username),
        ("l_domain", &a.l_domain),
        ("r_username", &a.r_username),
        ("r_domain", &a.r_domain),
        ("auth_username", &a.auth_username),
        ("auth_proxy", &a.auth_proxy),
    ] {
        if v.is_empty() {
            return Err(format!("empty value not allowed for column '{name}'"));
        }
    }
    if a.auth_password.is_empty() && a.auth_ha1.is_empty() {
        return Err(format!("{}: no password value provided", a.l_uuid));
    }
    if !a.auth_ha1.is_empty()
        && (a.auth_ha1.len() != 32 || !a.auth_ha1.chars().all(|c| c.is_ascii_hexdigit()))
    {
        return Err(format!("{}: auth_ha1 is not 32 hex digits", a.l_uuid));
    }
    Ok(a)
}

/// What a REGISTER in flight carries.
#[derive(Debug, Clone)]
pub struct RegTag {
    n: u64,
    uuid: String,
    callid: String,
    from_tag: String,
    cseq: u32,
    authed: bool,
}

impl Uac {
    /// The accounts, locked.
    pub fn accounts(&self) -> std::sync::MutexGuard<'_, Vec<Account>> {
        self.accounts.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Loads the table: the accounts, replacing those there were.
    pub fn reg_load(&self, pool: &DbPool) -> Result<usize, String> {
        let table = params::get_str(&self.reg.db_table);
        let rows = pool
            .with(|c| c.query(&table, &[], &[], None))
            .map_err(|e| format!("uac: loading {table}: {e}"))?;
        let now = sr_sdk::db::now();
        let mut out = Vec::new();
        for i in 0..rows.len() {
            match from_row(&rows, i, now) {
                Ok(a) => out.push(a),
                Err(e) => lm_err!("uac: {table} row {}: {e}", i + 1),
            }
        }
        let n = out.len();
        let random = params::get_int(&self.reg.random_delay);
        for (i, a) in out.iter_mut().enumerate() {
            if a.reg_delay == 0 && random > 0 {
                a.reg_delay = ((now as u64)
                    .wrapping_mul(2_654_435_761)
                    .wrapping_add(i as u64)
                    % random as u64) as u32;
            }
        }
        let disabled = out.iter().filter(|a| a.flags & DISABLED != 0).count();
        *self.accounts() = out;
        self.reg_stats.total.set(n as i64);
        self.reg_stats.disabled.set(disabled as i64);
        Ok(n)
    }

    /// One round: REGISTER for the accounts due.
    pub fn reg_round(&self, core: &dyn Core) {
        if params::get_int(&self.reg.active) == 0 {
            return;
        }
        let now = sr_sdk::db::now();
        let interval = params::get_int(&self.reg.timer_interval).max(1);
        let retry = params::get_int(&self.reg.retry_interval);
        let due: Vec<String> = {
            let mut list = self.accounts();
            list.iter_mut()
                .filter_map(|a| {
                    if a.expires == 0 {
                        return None;
                    }
                    if a.flags & ONGOING != 0 {
                        // A REGISTER still in flight, unless it has been
                        // for longer than a retry (or a round) would wait.
                        if now - a.sent_at < retry.max(interval) {
                            return None;
                        }
                        a.flags &= !(ONGOING | ONLINE | AUTHSENT);
                    }
                    if a.flags & DISABLED != 0 {
                        return None;
                    }
                    if now < a.reg_init + i64::from(a.reg_delay) {
                        return None;
                    }
                    (a.timer_expires <= now + interval + 3).then(|| a.l_uuid.clone())
                })
                .collect()
        };
        for uuid in due {
            self.reg_send(core, &uuid, None);
        }
    }

    /// Sends the REGISTER of `uuid` (with `auth`: the answer to a
    /// challenge, same Call-ID and tag, CSeq one up).
    pub fn reg_send(&self, core: &dyn Core, uuid: &str, auth: Option<(RegTag, String)>) -> bool {
        let Some(tm) = self.tm() else {
            return false;
        };
        let (n, branch) = self.regs.next_branch();
        let keep = params::get_int(&self.reg.keep_callid) != 0;
        let (a, tag) = {
            let mut list = self.accounts();
            let Some(a) = list.iter_mut().find(|a| a.l_uuid == uuid) else {
                return false;
            };
            // Checked again under the lock: disabled, or unregistered,
            // since the round picked it (an unregister sends Expires 0).
            if a.flags & DISABLED != 0 && auth.is_none() {
                return false;
            }
            let mut tag = match &auth {
                Some((t, _)) => RegTag {
                    n: 0,
                    cseq: t.cseq + 1,
                    authed: true,
                    ..t.clone()
                },
                None => {
                    let (callid, cseq) = if keep && !a.callid.is_empty() {
                        (a.callid.clone(), a.cseq + 1)
                    } else {
                        (
                            format!("{}-{}@uac", crate::send::random_hex(16), std::process::id()),
                            10,
                        )
                    };
                    RegTag {
                        n: 0,
                        uuid: uuid.to_string(),
                        callid,
                        from_tag: crate::send::random_hex(32),
                        cseq,
                        authed: false,
                    }
                }
            };
            a.flags |= ONGOING;
            if auth.is_some() {
                a.flags |= AUTHSENT;
            }
            a.sent_at = sr_sdk::db::now();
            a.tx = n;
            tag.n = n;
            if keep {
                a.callid = tag.callid.clone();
                a.cseq = tag.cseq;
            }
            (a.clone(), tag)
        };
        self.reg_stats.active.dec();
        let next = proxy_uri(&a.auth_proxy);
        let mut dest = match core.resolve(&next, None) {
            Ok(d) => d,
            Err(e) => {
                lm_err!("uac: REGISTER of {uuid} to {next}: {e}");
                self.reg_failed(uuid);
                return false;
            }
        };
        let sock = if a.socket.is_empty() {
            params::get_str(&self.p.default_socket)
        } else {
            a.socket.clone()
        };
        if let Some(s) = crate::socket_addr(&sock) {
            dest.send_socket = Some(s);
        }
        let Some(local) = sr_mod_tm::local::via_host(core, &dest) else {
            self.reg_failed(uuid);
            return false;
        };
        let contact_addr = if a.contact_addr.is_empty() {
            params::get_str(&self.reg.contact_addr)
        } else {
            a.contact_addr.clone()
        };
        let mut text = format!(
            "REGISTER sip:{rd} SIP/2.0\r\nVia: SIP/2.0/{v} {local};branch={branch}\r\nTo: <sip:{ru}@{rd}>\r\nFrom: <sip:{ru}@{rd}>;tag={tag}\r\nCSeq: {cseq} REGISTER\r\nCall-ID: {ci}\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n",
            rd = a.r_domain,
            ru = a.r_username,
            v = dest.proto.via_name(),
            tag = tag.from_tag,
            cseq = tag.cseq,
            ci = tag.callid,
        );
        if let Some(ua) = core.user_agent_header() {
            text.push_str(&ua);
            text.push_str("\r\n");
        }
        text.push_str(&format!(
            "Contact: <sip:{}@{contact_addr}>\r\nExpires: {}\r\n",
            a.l_uuid, a.expires
        ));
        if let Some((_, value)) = &auth {
            text.push_str(value);
            text.push_str("\r\n");
        }
        text.push_str("\r\n");
        if let Some(e) = self
            .regs
            .start(core, n, text.into_bytes(), dest, &tm.uac_timers(), tag)
        {
            self.reg_ended(core, e, None);
        }
        true
    }

    /// A REGISTER that failed: retried after `reg_retry_interval`, or the
    /// account disabled.
    fn reg_failed(&self, uuid: &str) {
        let retry = params::get_int(&self.reg.retry_interval);
        let mut list = self.accounts();
        if let Some(a) = list.iter_mut().find(|a| a.l_uuid == uuid) {
            a.flags &= !(ONGOING | ONLINE | AUTHSENT);
            // A fresh Call-ID next time (the registrar may hold a higher
            // CSeq for this one).
            a.cseq = 0;
            a.callid.clear();
            if retry > 0 {
                a.timer_expires = sr_sdk::db::now() + retry;
            } else if a.flags & DISABLED == 0 {
                a.flags |= DISABLED;
                self.reg_stats.disabled.inc();
            }
        }
    }

    /// A REGISTER's final reply (`rpl`), or its timeout.
    pub fn reg_ended(&self, core: &dyn Core, e: Ended<RegTag>, rpl: Option<&mut SipMsg>) {
        self.reg_stats.active.inc();
        let uuid = e.tag.uuid.clone();
        let acct = self
            .accounts()
            .iter()
            .find(|a| a.l_uuid == uuid && a.tx == e.tag.n)
            .cloned();
        // Gone, or a newer REGISTER replaced this one: a late reply.
        let Some(a) = acct else {
            return;
        };
        match (e.code, rpl) {
            (401 | 407, Some(m)) => {
                if e.tag.authed {
                    lm_err!("uac: {uuid}: the registrar refused the credentials");
                    return self.reg_failed(&uuid);
                }
                let (hdr, out) = if e.code == 401 {
                    (HeaderName::WwwAuthenticate, "Authorization")
                } else {
                    (HeaderName::ProxyAuthenticate, "Proxy-Authorization")
                };
                let ch = match m.msg().value(hdr).map(parse_challenge) {
                    Some(Ok(c)) => c,
                    _ => {
                        lm_err!("uac: {uuid}: no usable challenge in the {}", e.code);
                        return self.reg_failed(&uuid);
                    }
                };
                if !a.realm.is_empty() && a.realm != ch.realm {
                    lm_err!(
                        "uac: {uuid}: realms do not match ({} / {})",
                        a.realm,
                        ch.realm
                    );
                    return self.reg_failed(&uuid);
                }
                let (password, ha1) = if a.auth_ha1.is_empty() {
                    (a.auth_password.clone(), false)
                } else {
                    (a.auth_ha1.clone(), true)
                };
                let cred = Credential {
                    user: a.auth_username.clone(),
                    realm: ch.realm.clone(),
                    password,
                };
                let uri = format!("sip:{}", a.r_domain);
                let value = authorization(&ch, &cred, ha1, "REGISTER", &uri);
                self.reg_send(core, &uuid, Some((e.tag, format!("{out}: {value}"))));
            }
            (200..=299, Some(m)) => {
                let granted = granted_expiry(m.msg(), &a.l_uuid);
                let mut list = self.accounts();
                if let Some(x) = list.iter_mut().find(|x| x.l_uuid == uuid) {
                    x.flags &= !(ONGOING | AUTHSENT);
                    match granted {
                        Some(exp) => {
                            x.flags |= ONLINE;
                            x.timer_expires = x.sent_at + i64::from(exp);
                        }
                        None => x.flags &= !ONLINE,
                    }
                }
            }
            (423, Some(m)) => {
                let min = m.msg().min_expires().ok().flatten();
                let mut list = self.accounts();
                if let Some(x) = list.iter_mut().find(|x| x.l_uuid == uuid) {
                    x.flags &= !(ONGOING | AUTHSENT);
                    x.expires = min.unwrap_or(x.expires.saturating_mul(2));
                    x.timer_expires = 0;
                }
            }
            _ => {
                lm_notice!("uac: REGISTER of {uuid} ended with {}", e.code);
                self.reg_failed(&uuid);
            }
        }
    }

    /// `uac_reg_status(uuid)`: 1 registered, -2 a REGISTER in flight, -3
    /// disabled, -99 otherwise, -1 no such account.
    pub fn reg_status(&self, uuid: &str) -> i32 {
        let now = sr_sdk::db::now();
        match self.accounts().iter().find(|a| a.l_uuid == uuid) {
            None => -1,
            Some(a) if a.flags & ONLINE != 0 && a.timer_expires > now => 1,
            Some(a) if a.flags & ONGOING != 0 => -2,
            Some(a) if a.flags & DISABLED != 0 => -3,
            Some(_) => -99,
        }
    }

    /// `uac_reg_enable/disable(attr, value)`: 1, -2 no such account, -3
    /// an attribute other than l_uuid, l_username, r_username,
    /// auth_username.
    pub fn reg_set_enabled(&self, attr: &str, value: &str, on: bool) -> i32 {
        let now = sr_sdk::db::now();
        let mut list = self.accounts();
        let pick = |a: &Account| match attr {
            "l_uuid" => Some(a.l_uuid == value),
            "l_username" => Some(a.l_username == value),
            "r_username" => Some(a.r_username == value),
            "auth_username" => Some(a.auth_username == value),
            _ => None,
        };
        if !["l_uuid", "l_username", "r_username", "auth_username"].contains(&attr) {
            return -3;
        }
        let Some(a) = list.iter_mut().find(|a| pick(a) == Some(true)) else {
            return -2;
        };
        if on {
            if a.flags & DISABLED != 0 {
                self.reg_stats.disabled.dec();
            }
            a.flags &= !DISABLED;
        } else {
            if a.flags & DISABLED == 0 {
                self.reg_stats.disabled.inc();
            }
            a.flags |= DISABLED;
        }
        a.timer_expires = now + 1;
        1
    }

    /// `uac.reg_dump` / `uac.reg_info`'s view of an account.
    pub fn account_json(a: &Account) -> Json {
        let none = |s: &str| {
            if s.is_empty() {
                "none".to_string()
            } else {
                s.to_string()
            }
        };
        let now = sr_sdk::db::now();
        json!({
            "l_uuid": a.l_uuid,
            "l_username": a.l_username,
            "l_domain": a.l_domain,
            "r_username": a.r_username,
            "r_domain": a.r_domain,
            "realm": a.realm,
            "auth_username": a.auth_username,
            "auth_password": none(&a.auth_password),
            "auth_ha1": none(&a.auth_ha1),
            "auth_proxy": none(&a.auth_proxy),
            "expires": a.expires,
            "flags": a.flags,
            "diff_expires": a.timer_expires - now,
            "timer_expires": a.timer_expires,
            "reg_init": a.reg_init,
            "reg_delay": a.reg_delay,
            "contact_addr": none(&a.contact_addr),
            "socket": a.socket,
        })
    }

    /// Handles a reply to one of the REGISTERs: true when it was ours.
    pub fn reg_on_reply(&self, ctx: &mut Ctx<'_>) -> bool {
        match self.regs.take_reply(ctx.msg) {
            Taken::NotOurs => false,
            Taken::Absorbed => true,
            Taken::Ended(e) => {
                self.reg_ended(ctx.core, e, Some(ctx.msg));
                true
            }
        }
    }

    /// Counts a REGISTER that ended on the timer (no reply).
    pub fn reg_tick(&self, core: &dyn Core) {
        for e in self.regs.tick(core) {
            self.reg_ended(core, e, None);
        }
    }

    /// Whether remote registrations are on.
    pub fn reg_on(&self) -> bool {
        self.reg_pool.get().is_some()
    }

    /// Reads one account again from the table (`uac_reg_refresh`,
    /// `uac.reg_refresh`), keeping its state in flight: whether it was
    /// there.
    pub fn reg_refresh(&self, uuid: &str) -> Result<bool, String> {
        let Some(pool) = self.reg_pool.get() else {
            return Err("uac: remote registrations are not enabled".into());
        };
        let table = params::get_str(&self.reg.db_table);
        let rows = pool
            .with(|c| c.query(&table, &[Cond::eq("l_uuid", DbValue::str(uuid))], &[], None))
            .map_err(|e| e.to_string())?;
        if rows.is_empty() {
            return Ok(false);
        }
        let mut fresh = from_row(&rows, 0, sr_sdk::db::now())?;
        let mut list = self.accounts();
        match list.iter_mut().find(|a| a.l_uuid == uuid) {
            Some(a) => {
                fresh.flags |= a.flags & (ONGOING | AUTHSENT);
                fresh.timer_expires = 0;
                *a = fresh;
            }
            None => {
                list.push(fresh);
                self.reg_stats.total.inc();
            }
        }
        Ok(true)
    }
}

/// `auth_proxy` as a SIP URI (`sip:` added to a bare `host[:port]`).
pub fn proxy_uri(p: &str) -> String {
    let lower = p.get(..5).unwrap_or("").to_ascii_lowercase();
    if lower.starts_with("sip:") || lower.starts_with("sips:") {
        p.to_string()
    } else {
        format!("sip:{p}")
    }
}

/// The expiry a 2xx grants our Contact (the one whose user is `uuid`):
/// its `expires` parameter, else the Expires header, else 0; `None` when
/// no Contact is ours.
pub fn granted_expiry(m: &Message<'_>, uuid: &str) -> Option<u32> {
    let header = m.expires().ok().flatten();
    m.contacts().filter_map(Result::ok).find_map(|c| match c {
        sr_sdk::sip_msg::headers::ContactValue::Addr(na) if na.uri.user == Some(uuid) => {
            let p = na.params.split(';').find_map(|p| {
                let (k, v) = p.split_once('=')?;
                k.trim()
                    .eq_ignore_ascii_case("expires")
                    .then(|| v.trim().parse().ok())?
            });
            Some(p.or(header).unwrap_or(0))
        }
        _ => None,
    })
}

/// Loads the setting: a no-op unless `reg_db_url` is set.
pub fn start(uac: &std::sync::Arc<Uac>, core: &dyn Core) -> Result<(), String> {
    let url = params::get_str(&uac.reg.db_url);
    if url.is_empty() {
        return Ok(());
    }
    if params::get_str(&uac.reg.contact_addr).is_empty() {
        return Err("uac: reg_contact_addr is needed with reg_db_url".into());
    }
    let pool = DbPool::open(core, &url).map_err(|e| format!("uac: reg_db_url: {e}"))?;
    let table = params::get_str(&uac.reg.db_table);
    pool.with(|c| sr_sdk::db::check_version(c, &table, sr_sdk::db::schema::UACREG_VERSION))
        .map_err(|e| format!("uac: {e}"))?;
    uac.reg_load(&pool)?;
    let _ = uac.reg_pool.set(pool);
    let handle = core.handle().ok_or("uac: no core handle for its timers")?;
    let u = uac.clone();
    core.add_timer(
        "uac-reg-transactions",
        std::time::Duration::from_millis(100),
        std::sync::Arc::new(move || {
            if let Some(core) = handle.upgrade() {
                u.reg_tick(&*core);
            }
        }),
    );
    Ok(())
}

/// The rounds, on a thread of their own (from `child_init(PROC_MAIN)`),
/// as Kamailio's timer process: the first at once, then every
/// `reg_timer_interval` (name lookups and slow registrars do not hold up
/// tm's timers).
pub fn start_rounds(uac: &std::sync::Arc<Uac>, core: &dyn Core) -> Result<(), String> {
    if !uac.reg_on() || uac.first_round.swap(true, Ordering::Relaxed) {
        return Ok(());
    }
    let handle = core.handle().ok_or("uac: no core handle for its timers")?;
    let u = uac.clone();
    core.spawn_process(
        "uac-reg",
        rank::PROC_TIMER,
        Box::new(move || loop {
            let Some(core) = handle.upgrade() else {
                return;
            };
            if core.shutting_down() {
                return;
            }
            u.reg_round(&*core);
            drop(core);
            let every = params::get_int(&u.reg.timer_interval).max(1) as u64;
            for _ in 0..every * 10 {
                std::thread::sleep(std::time::Duration::from_millis(100));
                if handle.upgrade().is_none_or(|c| c.shutting_down()) {
                    return;
                }
            }
        }),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rows(cols: &[(&str, &str)]) -> Rows {
        Rows {
            columns: cols.iter().map(|c| c.0.to_string()).collect(),
            rows: vec![cols.iter().map(|c| DbValue::str(c.1)).collect()],
        }
    }

    #[test]
    fn rows_as_kamailio_checks_them() {
        let good = [
            ("l_uuid", "acc1"),
            ("l_username", "lu1"),
            ("l_domain", "ld.test"),
            ("r_username", "ru1"),
            ("r_domain", "reg.test"),
            ("auth_username", "au1"),
            ("auth_password", "pw1"),
            ("auth_proxy", "sip:127.0.0.1:5070"),
            ("expires", "60"),
            ("flags", "0"),
        ];
        let a = from_row(&rows(&good), 0, 100).unwrap();
        assert_eq!((a.expires, a.flags, a.reg_init), (60, INIT, 100));
        let mut no_proxy = good;
        no_proxy[7].1 = "";
        assert!(from_row(&rows(&no_proxy), 0, 0)
            .unwrap_err()
            .contains("auth_proxy"));
        let mut no_pw = good;
        no_pw[6].1 = "";
        assert!(from_row(&rows(&no_pw), 0, 0)
            .unwrap_err()
            .contains("no password"));
        let mut disabled = good;
        disabled[9].1 = "1";
        assert_eq!(
            from_row(&rows(&disabled), 0, 0).unwrap().flags,
            INIT | DISABLED
        );
    }

    #[test]
    fn granted_expiry_of_our_contact() {
        let text = "SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP a;branch=z9hG4bK1\r\nFrom: <sip:a@b>;tag=1\r\nTo: <sip:a@b>;tag=2\r\nCall-ID: c\r\nCSeq: 10 REGISTER\r\nContact: <sip:other@h>;expires=30, <sip:acc1@h:5060>;expires=45\r\nExpires: 90\r\nContent-Length: 0\r\n\r\n";
        let m = Message::parse(text.as_bytes()).unwrap();
        assert_eq!(granted_expiry(&m, "acc1"), Some(45));
        assert_eq!(granted_expiry(&m, "acc9"), None);
        let text = text.replace(";expires=45", "");
        let m = Message::parse(text.as_bytes()).unwrap();
        assert_eq!(granted_expiry(&m, "acc1"), Some(90), "the Expires header");
    }
}
