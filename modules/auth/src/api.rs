//! The auth API (Kamailio's `auth_api_s`): the steps every credentials
//! check shares, used by this module's `pv_*` functions and bound by
//! `auth_db` under the name [`AUTH_API`].

use crate::digest::{ct_eq_lower, ha1, response_hex, Alg, ResponseInput};
use crate::nonce::{NonceError, Nonces};
use sr_sdk::prelude::*;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, RwLock};

/// The name the API is published under.
pub const AUTH_API: &str = "auth";

/// Kamailio's return codes of the authentication functions.
pub mod rc {
    /// Authenticated.
    pub const OK: i32 = 1;
    /// Generic error (malformed credentials, foreign nonce...).
    pub const ERROR: i32 = -1;
    /// Wrong password.
    pub const INVALID_PASSWORD: i32 = -2;
    /// No such user.
    pub const USER_UNKNOWN: i32 = -3;
    /// The nonce expired: challenge again with `stale=true`.
    pub const STALE_NONCE: i32 = -4;
    /// No credentials for the realm.
    pub const NO_CREDENTIALS: i32 = -5;
    /// The nonce (with this nonce-count) was used already.
    pub const NONCE_REUSED: i32 = -6;
    /// The authentication user is not the From/To user.
    pub const AUTH_USER_MISMATCH: i32 = -8;
}

/// Which header pair: 401 with Authorization, or 407 with
/// Proxy-Authorization.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HdrType {
    /// `WWW-Authenticate` / `Authorization` (401).
    Www,
    /// `Proxy-Authenticate` / `Proxy-Authorization` (407).
    Proxy,
}

impl HdrType {
    /// The credentials header.
    pub fn credentials(self) -> HeaderName {
        match self {
            HdrType::Www => HeaderName::Authorization,
            HdrType::Proxy => HeaderName::ProxyAuthorization,
        }
    }
}

/// Credentials that passed the format and nonce checks.
#[derive(Debug, Clone)]
pub struct Credentials {
    /// `username` as sent.
    pub username: String,
    /// The user part (before `@`, if the username has a domain).
    pub user: String,
    /// The domain part, if the username is `user@domain`.
    pub domain: Option<String>,
    /// `realm`.
    pub realm: String,
    /// Algorithm.
    pub alg: Alg,
    /// `nonce`, `nc`, `cnonce`, `qop`, `uri` and `response` (quotes
    /// removed), one after the other: one allocation instead of six.
    text: String,
    /// Where each of them ends in `text`.
    ends: [usize; 6],
    nonce_expires: i64,
    nonce_index: u32,
    hdr: HdrType,
    hdr_index: usize,
}

/// The fields of [`Credentials::text`], in order.
const NONCE: usize = 0;
const NC: usize = 1;
const CNONCE: usize = 2;
const QOP: usize = 3;
const URI: usize = 4;
const RESPONSE: usize = 5;

impl Credentials {
    /// One of the fields kept in `text`.
    fn field(&self, i: usize) -> &str {
        field_of(&self.text, &self.ends, i)
    }
}

/// Field `i` of a [`Credentials::text`] with these ends.
fn field_of<'t>(text: &'t str, ends: &[usize; 6], i: usize) -> &'t str {
    let start = if i == 0 { 0 } else { ends[i - 1] };
    &text[start..ends[i]]
}

/// Which credentials header authorized the request (for
/// `consume_credentials`), kept with the message.
#[derive(Debug, Clone, Copy)]
pub struct Authorized {
    /// Header type.
    pub hdr: HdrType,
    /// Index among the headers of that name.
    pub index: usize,
}

/// Set on the message when a check found a stale nonce (the next
/// challenge then says `stale=true`).
#[derive(Debug, Clone, Copy)]
pub struct StaleNonce;

/// Settings and state shared by auth and auth_db.
pub struct AuthApi {
    pub(crate) nonces: RwLock<Arc<Nonces>>,
    pub(crate) nonce_expire: Arc<AtomicI64>,
    pub(crate) nonce_count: Arc<AtomicI64>,
    pub(crate) one_time_nonce: Arc<AtomicI64>,
    pub(crate) algorithm: Arc<RwLock<String>>,
    pub(crate) secret: Arc<RwLock<String>>,
    clock: RwLock<Option<Arc<dyn Fn() -> i64 + Send + Sync>>>,
    replier: sr_mod_sl::Replier,
}

impl std::fmt::Debug for AuthApi {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AuthApi")
    }
}

impl Default for AuthApi {
    fn default() -> Self {
        AuthApi {
            nonces: RwLock::new(Arc::new(Nonces::new(&crate::nonce::random_bytes(32)))),
            nonce_expire: Arc::new(AtomicI64::new(300)),
            nonce_count: Arc::new(AtomicI64::new(0)),
            one_time_nonce: Arc::new(AtomicI64::new(0)),
            algorithm: Arc::new(RwLock::new(String::new())),
            secret: Arc::new(RwLock::new(String::new())),
            clock: RwLock::new(None),
            replier: sr_mod_sl::Replier::default(),
        }
    }
}

fn owned(v: Option<std::borrow::Cow<'_, str>>) -> String {
    v.map(|c| c.into_owned()).unwrap_or_default()
}

impl AuthApi {
    /// Unix seconds now (a test may install a virtual clock).
    pub fn now(&self) -> i64 {
        match self.clock.read().ok().and_then(|c| c.clone()) {
            Some(f) => f(),
            None => sr_sdk::db::now(),
        }
    }

    /// Replaces the clock (tests).
    pub fn set_clock(&self, f: Arc<dyn Fn() -> i64 + Send + Sync>) {
        if let Ok(mut c) = self.clock.write() {
            *c = Some(f);
        }
    }

    fn nonces(&self) -> Arc<Nonces> {
        self.nonces
            .read()
            .map(|n| n.clone())
            .unwrap_or_else(|e| e.into_inner().clone())
    }

    /// Applies the `secret` parameter (at mod_init).
    pub(crate) fn apply_secret(&self) {
        let s = self.secret.read().map(|s| s.clone()).unwrap_or_default();
        if !s.is_empty() {
            if let Ok(mut n) = self.nonces.write() {
                *n = Arc::new(Nonces::new(s.as_bytes()));
            }
        }
    }

    /// The algorithm challenges name (`algorithm` parameter): none when
    /// it is not set, which means MD5 (RFC 2617), as Kamailio's.
    pub fn algorithm(&self) -> Option<Alg> {
        self.algorithm.read().ok().and_then(|a| Alg::parse(&a))
    }

    /// The realm to use when the script gives an empty one: the To host
    /// for REGISTER, else the From host.
    pub fn default_realm(msg: &SipMsg) -> String {
        let m = msg.msg();
        let na = if m.method() == Some(Method::Register) {
            m.to()
        } else {
            m.from()
        };
        na.map(|n| n.uri.host_str.to_string()).unwrap_or_default()
    }

    /// Finds the credentials for `realm` (Kamailio's `pre_auth`): checks
    /// their fields and the nonce's mac and expiry. Errors are the return
    /// codes of [`rc`].
    pub fn pre_auth(
        &self,
        ctx: &mut Ctx<'_>,
        realm: &str,
        hdr: HdrType,
    ) -> Result<Credentials, i32> {
        let realm = if realm.is_empty() {
            Self::default_realm(ctx.msg)
        } else {
            realm.to_string()
        };
        let m = ctx.msg.msg();
        let mut found = None;
        for (i, v) in m.auth_values_split(hdr.credentials()).enumerate() {
            // A header that does not parse fails the check, as Kamailio's.
            let Ok((h, v)) = v else {
                lm_err!("auth: credentials that do not parse");
                return Err(rc::ERROR);
            };
            if !h.is_digest() {
                continue;
            }
            if v.get("realm").is_some_and(|r| r == realm.as_str()) {
                found = Some((i, v));
                break;
            }
        }
        let Some((hdr_index, v)) = found else {
            return Err(rc::NO_CREDENTIALS);
        };
        let username = owned(v.get("username"));
        let mut text = String::with_capacity(160);
        let mut ends = [0; 6];
        for (i, name) in ["nonce", "nc", "cnonce", "qop", "uri", "response"]
            .into_iter()
            .enumerate()
        {
            if let Some(x) = v.get(name) {
                text.push_str(&x);
            }
            ends[i] = text.len();
        }
        let field = |i: usize| field_of(&text, &ends, i);
        let (nonce, uri, resp) = (field(NONCE), field(URI), field(RESPONSE));
        if username.is_empty() || nonce.is_empty() || uri.is_empty() || resp.is_empty() {
            lm_err!("auth: credentials without username, nonce, uri or response");
            return Err(rc::ERROR);
        }
        let alg = match v.get("algorithm") {
            None => Alg::Md5,
            Some(a) => match Alg::parse(&a) {
                Some(x) => x,
                None => {
                    lm_err!("auth: unsupported algorithm '{a}'");
                    return Err(rc::ERROR);
                }
            },
        };
        let (qop, nc, cnonce) = (field(QOP), field(NC), field(CNONCE));
        if !qop.is_empty()
            && (!qop.eq_ignore_ascii_case("auth") || nc.is_empty() || cnonce.is_empty())
        {
            lm_err!("auth: unsupported qop '{qop}' or missing nc/cnonce");
            return Err(rc::ERROR);
        }
        let (user, domain) = split_username(&username);
        let (user, domain) = (user.to_string(), domain.map(str::to_string));
        let now = self.now();
        let (nonce_expires, nonce_index) = match self.nonces().check(field(NONCE), now) {
            Ok(x) => x,
            Err(NonceError::Expired) => {
                ctx.msg.ext.insert(StaleNonce);
                return Err(rc::STALE_NONCE);
            }
            Err(_) => {
                lm_info!(
                    "auth: nonce not issued here (or with another secret): '{}'",
                    field(NONCE)
                );
                return Err(rc::ERROR);
            }
        };
        Ok(Credentials {
            username,
            user,
            domain,
            realm,
            alg,
            text,
            ends,
            nonce_expires,
            nonce_index,
            hdr,
            hdr_index,
        })
    }

    /// HA1 of a plain-text password for these credentials.
    pub fn calc_ha1(&self, c: &Credentials, password: &str) -> String {
        ha1(c.alg, &c.username, &c.realm, password)
    }

    /// Checks the response against `ha1` (Kamailio's `post_auth`), then
    /// the nonce-count replay protection; on success marks the
    /// credentials as used by this message.
    pub fn post_auth(&self, ctx: &mut Ctx<'_>, c: &Credentials, ha1: &str) -> i32 {
        let method = ctx
            .msg
            .msg()
            .method()
            .map(|m| m.as_str().to_string())
            .unwrap_or_default();
        self.post_auth_method(ctx, c, ha1, &method)
    }

    /// [`AuthApi::post_auth`] with the response computed over `method`
    /// instead of the request's (auth_ephemeral's `autheph_www(realm,
    /// method)`).
    pub fn post_auth_method(
        &self,
        ctx: &mut Ctx<'_>,
        c: &Credentials,
        ha1: &str,
        method: &str,
    ) -> i32 {
        let ha1 = if ha1.bytes().any(|b| b.is_ascii_uppercase()) {
            std::borrow::Cow::Owned(ha1.to_ascii_lowercase())
        } else {
            std::borrow::Cow::Borrowed(ha1)
        };
        let want = response_hex(
            c.alg,
            &ha1,
            &ResponseInput {
                nonce: c.field(NONCE),
                nc: c.field(NC),
                cnonce: c.field(CNONCE),
                qop: c.field(QOP),
                method,
                uri: c.field(URI),
            },
        );
        if !ct_eq_lower(want.as_str().as_bytes(), c.field(RESPONSE).as_bytes()) {
            return rc::INVALID_PASSWORD;
        }
        let now = self.now();
        let qop = c.field(QOP);
        let nc = if !qop.is_empty() && self.nonce_count.load(Ordering::Relaxed) != 0 {
            match u32::from_str_radix(c.field(NC), 16) {
                Ok(n) if n > 0 => Some(n),
                _ => return rc::ERROR,
            }
        } else if qop.is_empty() && self.one_time_nonce.load(Ordering::Relaxed) != 0 {
            Some(1)
        } else {
            None
        };
        if let Some(nc) = nc {
            if self
                .nonces()
                .use_nc(c.nonce_index, c.nonce_expires, nc, now)
                .is_err()
            {
                return rc::NONCE_REUSED;
            }
        }
        ctx.msg.ext.insert(Authorized {
            hdr: c.hdr,
            index: c.hdr_index,
        });
        rc::OK
    }

    /// The challenge header value for `realm` (`flags`: 1 qop=auth, 2
    /// qop=auth-int is offered as auth, 16 stale=true).
    pub fn challenge_value(
        &self,
        ctx: &mut Ctx<'_>,
        realm: &str,
        flags: i64,
        alg: Option<Alg>,
    ) -> String {
        let realm = if realm.is_empty() {
            Self::default_realm(ctx.msg)
        } else {
            realm.to_string()
        };
        let mut s = String::with_capacity(128 + realm.len());
        s.push_str("Digest realm=\"");
        s.push_str(&realm);
        s.push_str("\", nonce=\"");
        self.nonces().make_into(
            &mut s,
            self.now(),
            self.nonce_expire.load(Ordering::Relaxed),
        );
        s.push('"');
        if flags & 3 != 0 {
            s.push_str(", qop=\"auth\"");
        }
        if flags & 16 != 0 || ctx.msg.ext.get::<StaleNonce>().is_some() {
            s.push_str(", stale=true");
        }
        if let Some(alg) = alg {
            s.push_str(", algorithm=");
            s.push_str(alg.name());
        }
        s
    }

    /// Sends the 401 or 407 challenge (statefully when tm has a
    /// transaction): 1 when sent, -1 when the reply could not be sent.
    pub fn challenge(&self, ctx: &mut Ctx<'_>, realm: &str, flags: i64, hdr: HdrType) -> i32 {
        let value = self.challenge_value(ctx, realm, flags, self.algorithm());
        let (code, reason, name) = match hdr {
            HdrType::Www => (401, "Unauthorized", "WWW-Authenticate"),
            HdrType::Proxy => (407, "Proxy Authentication Required", "Proxy-Authenticate"),
        };
        // The header goes with this reply only: the headers the script
        // added before it are kept for later replies, as they were.
        let ok = ctx.with_reply_headers(&[name, ": ", &value, "\r\n"], |ctx| {
            self.replier.send(ctx, code, reason)
        });
        if ok {
            1
        } else {
            -1
        }
    }
}

pub use sr_sdk::text::split_digest_username as split_username;

/// The `username` of the credentials that authorized this message (a
/// successful check marked them), if any.
pub fn authorized_username(msg: &SipMsg) -> Option<String> {
    let a = msg.ext.get::<Authorized>()?;
    let v = msg
        .msg()
        .auth_values(a.hdr.credentials())
        .nth(a.index)?
        .ok()?;
    let v = v.split();
    v.get("username").map(|u| u.into_owned())
}

/// The user and domain of digest credentials: the user part of
/// `username` (before `@`, without a `scheme:` in front) and the domain
/// after its `@`, else the realm.
pub fn digest_identity(username: &str, realm: &str) -> (String, String) {
    let (user, dom) = match username.split_once('@') {
        Some((u, d)) => (u, Some(d)),
        None => (username, None),
    };
    let user = user.split_once(':').map_or(user, |(_, u)| u);
    (user.to_string(), dom.unwrap_or(realm).to_string())
}

/// The username and realm of the credentials that authorized this
/// message, if any (Kamailio's `get_authorized_cred`).
fn authorized_username_realm(msg: &SipMsg) -> Option<(String, String)> {
    let a = msg.ext.get::<Authorized>()?;
    let v = msg
        .msg()
        .auth_values(a.hdr.credentials())
        .nth(a.index)?
        .ok()?;
    let v = v.split();
    let username = v.get("username")?.clone().into_owned();
    let realm = v
        .get("realm")
        .map(|r| r.clone().into_owned())
        .unwrap_or_default();
    Some((username, realm))
}

/// The user and domain (see [`digest_identity`]) of the credentials
/// that authorized this message, if any (the username's user and
/// `GET_REALM`).
pub fn authorized_identity(msg: &SipMsg) -> Option<(String, String)> {
    let (username, realm) = authorized_username_realm(msg)?;
    Some(digest_identity(&username, &realm))
}

/// As [`authorized_identity`], the username split at its `@` only (the
/// user part kept whole, as Kamailio's `digest.username.user`: uri_db).
pub fn authorized_user_realm(msg: &SipMsg) -> Option<(String, String)> {
    let (username, realm) = authorized_username_realm(msg)?;
    Some(match username.split_once('@') {
        Some((u, d)) => (u.to_string(), d.to_string()),
        None => (username, realm),
    })
}

/// The identity check of `auth_check` (flag 1): the authentication user
/// must be the From user (and the To user for REGISTER).
pub fn identity_matches(msg: &SipMsg, c: &Credentials) -> bool {
    let m = msg.msg();
    let user_of = |r: Result<sr_sdk::sip_msg::headers::NameAddr<'_>, _>| {
        r.ok().and_then(|n| n.uri.user.map(str::to_string))
    };
    let from_ok = user_of(m.from()).is_some_and(|u| u == c.user);
    if m.method() == Some(Method::Register) {
        from_ok && user_of(m.to()).is_some_and(|u| u == c.user)
    } else {
        from_ok
    }
}

#[cfg(test)]
mod identity_tests {
    use super::digest_identity;

    #[test]
    fn digest_usernames_split_as_kamailio_splits_them() {
        assert_eq!(
            digest_identity("alice", "example.com"),
            ("alice".into(), "example.com".into())
        );
        assert_eq!(
            digest_identity("bob@other.com", "example.com"),
            ("bob".into(), "other.com".into())
        );
        assert_eq!(
            digest_identity("sip:carol@c.org", "r"),
            ("carol".into(), "c.org".into())
        );
    }
}
