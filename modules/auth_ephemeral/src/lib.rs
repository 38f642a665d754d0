//! # auth_ephemeral: authentication with ephemeral credentials
//!
//! Kamailio's `auth_ephemeral`: a web service and siprouter share a
//! secret; the service hands a client a username holding an expiry time
//! (`timestamp:user`) and the password `base64(HMAC(secret, username))`
//! (draft-uberti-rtcweb-turn-rest, as WebRTC deployments use). Digest
//! checks with the auth module's API (`autheph_check`, `autheph_www`,
//! `autheph_proxy`), a plain check (`autheph_authenticate`), and checks of
//! the user (`autheph_check_from`, `autheph_check_to`) and of the expiry
//! (`autheph_check_timestamp`). Parameters `secret` (repeatable: the last
//! one set is tried first), `username_format` (1, or 0 for `user:timestamp`)
//! and `sha_algorithm` (0 SHA-1 ... 3 SHA-512); RPC methods
//! `autheph.add_secret`, `autheph.dump_secrets`, `autheph.rm_secret`.
#![forbid(unsafe_code)]

pub mod creds;

use creds::{check_timestamp, password, user_of, Format, TimeError};
use sr_mod_auth::{authorized_username, rc, AuthApi, HdrType, AUTH_API};
use sr_sdk::prelude::*;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, OnceLock, RwLock};

/// The username's timestamp is in the past (Kamailio's
/// `AUTH_USERNAME_EXPIRED`).
pub const USERNAME_EXPIRED: i32 = -7;
/// A check found no user in the username (`CHECK_NO_USER`).
pub const CHECK_NO_USER: i32 = -2;

/// The module's state.
#[derive(Default)]
pub struct Autheph {
    /// The secrets, the one tried first first.
    secrets: RwLock<Vec<String>>,
    format: Arc<AtomicI64>,
    sha: Arc<AtomicI64>,
    auth: OnceLock<Arc<AuthApi>>,
}

impl Autheph {
    fn format(&self) -> Format {
        Format::from_param(self.format.load(Ordering::Relaxed)).unwrap_or(Format::TimestampFirst)
    }

    fn secrets(&self) -> Vec<String> {
        self.secrets.read().map(|s| s.clone()).unwrap_or_default()
    }

    fn now() -> i64 {
        sr_sdk::db::now()
    }

    /// Checks a username's expiry: 0, or the function's error code.
    fn timestamp(&self, username: &str) -> i32 {
        match check_timestamp(self.format(), username, Self::now()) {
            Ok(()) => 0,
            Err(TimeError::Invalid) => {
                lm_err!("autheph: invalid timestamp in username");
                rc::ERROR
            }
            Err(TimeError::Expired) => {
                lm_warn!("autheph: username has expired");
                USERNAME_EXPIRED
            }
        }
    }

    /// Digest authentication with the credentials of `hdr` for `realm`,
    /// the response computed over `method`.
    fn digest(&self, ctx: &mut Ctx<'_>, realm: &str, hdr: HdrType, method: Option<&str>) -> i32 {
        let Some(api) = self.auth.get() else {
            lm_err!("autheph: digest authentication needs the auth module (load it first)");
            return rc::ERROR;
        };
        let m = ctx.msg.msg().method();
        let request_method = m.map(|m| m.as_str().to_string()).unwrap_or_default();
        if matches!(m, Some(Method::Ack) | Some(Method::Cancel)) {
            return rc::OK;
        }
        if realm.is_empty() {
            lm_err!("autheph: invalid realm parameter - empty value");
            return rc::ERROR;
        }
        let c = match api.pre_auth(ctx, realm, hdr) {
            Ok(c) => c,
            Err(code) => return code,
        };
        let t = self.timestamp(&c.username);
        if t != 0 {
            return t;
        }
        let Some(alg) = creds::algorithm(self.sha.load(Ordering::Relaxed)) else {
            lm_err!("autheph: invalid SHA algorithm");
            return rc::ERROR;
        };
        let method = method.map_or(request_method, str::to_string);
        let mut ret = rc::ERROR;
        for secret in self.secrets() {
            let pw = password(alg, secret.as_bytes(), c.username.as_bytes());
            let ha1 = api.calc_ha1(&c, &pw);
            ret = match api.post_auth_method(ctx, &c, &ha1, &method) {
                rc::OK => return rc::OK,
                rc::INVALID_PASSWORD => rc::INVALID_PASSWORD,
                _ => rc::ERROR,
            };
        }
        ret
    }

    /// `autheph_authenticate(username, password)`.
    fn authenticate(&self, username: &str, pass: &str) -> i32 {
        let Some(alg) = creds::algorithm(self.sha.load(Ordering::Relaxed)) else {
            lm_err!("autheph: invalid SHA algorithm");
            return rc::ERROR;
        };
        if username.is_empty() || pass.is_empty() {
            lm_err!("autheph_authenticate: empty username or password");
            return rc::ERROR;
        }
        let t = self.timestamp(username);
        if t != 0 {
            return t;
        }
        let ok = self
            .secrets()
            .iter()
            .any(|s| password(alg, s.as_bytes(), username.as_bytes()) == pass);
        if ok {
            rc::OK
        } else {
            rc::ERROR
        }
    }

    /// `autheph_check_from`/`_to`: the user (and domain, if the username
    /// has one) of the From or To URI are the username's.
    fn check_user(&self, ctx: &mut Ctx<'_>, username: Option<String>, to: bool) -> i32 {
        let username = match username {
            Some(u) if u.is_empty() => {
                lm_err!("autheph: invalid username parameter - empty value");
                return rc::ERROR;
            }
            Some(u) => u,
            None => {
                if self.auth.get().is_none() {
                    lm_err!("autheph_check_from/to() without a username need the auth module");
                    return rc::ERROR;
                }
                match authorized_username(ctx.msg) {
                    Some(u) => u,
                    None => {
                        lm_err!("autheph: call autheph_(check|proxy|www) before checking From/To without a username");
                        return rc::ERROR;
                    }
                }
            }
        };
        let m = ctx.msg.msg();
        let na = if to { m.to() } else { m.from() };
        let Ok(na) = na else {
            lm_err!("autheph: parsing the From/To header");
            return rc::ERROR;
        };
        let Some((user, domain)) = user_of(self.format(), &username) else {
            return CHECK_NO_USER;
        };
        let uri = &na.uri;
        if uri.user.unwrap_or("") != user {
            return rc::ERROR;
        }
        match domain {
            None => rc::OK,
            Some(d) if d == uri.host_str => rc::OK,
            Some(_) => rc::ERROR,
        }
    }
}

fn spve() -> Option<sr_sdk::fixup::FixupFn> {
    Some(Arc::new(fixup::spve))
}

/// The module definition.
pub fn module() -> ModuleDef {
    let st = Arc::new(Autheph {
        format: Arc::new(AtomicI64::new(1)),
        ..Autheph::default()
    });
    let rt = RouteType::REQUEST;
    let s0 = st.clone();
    let mut def = ModuleDef::new("auth_ephemeral")
        .param("secret", ParamKind::Str, move |v| {
            let s = match v {
                ParamValue::Str(s) => s,
                ParamValue::Int(i) => i.to_string(),
            };
            lm_info!("auth_ephemeral: adding {s} to secret list");
            s0.secrets
                .write()
                .map_err(|_| "poisoned".to_string())?
                .insert(0, s);
            Ok(())
        })
        .param("username_format", ParamKind::Int, params::int(&st.format))
        .param("sha_algorithm", ParamKind::Int, params::int(&st.sha));
    let fns: [(&str, Option<HdrType>); 3] = [
        ("autheph_check", None),
        ("autheph_www", Some(HdrType::Www)),
        ("autheph_proxy", Some(HdrType::Proxy)),
    ];
    for (name, hdr) in fns {
        let a = st.clone();
        def = def.cmd(name, 1, rt, spve(), move |ctx, p| {
            let realm = p[0].str(ctx).into_owned();
            let hdr = hdr.unwrap_or_else(|| {
                if ctx.msg.msg().method() == Some(Method::Register) {
                    HdrType::Www
                } else {
                    HdrType::Proxy
                }
            });
            a.digest(ctx, &realm, hdr, None)
        });
    }
    let a = st.clone();
    def = def.cmd("autheph_www", 2, rt, spve(), move |ctx, p| {
        let realm = p[0].str(ctx).into_owned();
        let method = p[1].str(ctx).into_owned();
        if method.is_empty() {
            lm_err!("autheph_www: invalid method value - empty value");
            return rc::ERROR;
        }
        a.digest(ctx, &realm, HdrType::Www, Some(&method))
    });
    let a = st.clone();
    def = def.cmd("autheph_authenticate", 2, rt, spve(), move |ctx, p| {
        let u = p[0].str(ctx).into_owned();
        let pw = p[1].str(ctx).into_owned();
        a.authenticate(&u, &pw)
    });
    for (name, to) in [("autheph_check_from", false), ("autheph_check_to", true)] {
        let (a0, a1) = (st.clone(), st.clone());
        def = def
            .cmd(name, 0, rt, None, move |ctx, _| {
                a0.check_user(ctx, None, to)
            })
            .cmd(name, 1, rt, spve(), move |ctx, p| {
                let u = p[0].str(ctx).into_owned();
                a1.check_user(ctx, Some(u), to)
            });
    }
    let a = st.clone();
    def = def.cmd("autheph_check_timestamp", 1, rt, spve(), move |ctx, p| {
        let u = p[0].str(ctx).into_owned();
        if u.is_empty() {
            lm_err!("autheph_check_timestamp: invalid username parameter - empty value");
            return rc::ERROR;
        }
        if a.timestamp(&u) == 0 {
            rc::OK
        } else {
            rc::ERROR
        }
    });
    let (r1, r2, r3) = (st.clone(), st.clone(), st.clone());
    def = def
        .rpc("autheph.dump_secrets", "List secret tokens", move |_| {
            let list = r1
                .secrets()
                .iter()
                .enumerate()
                .map(|(i, s)| Json::String(format!("ID {i}: {s}")))
                .collect();
            Ok(Json::Array(list))
        })
        .rpc("autheph.add_secret", "Add a secret", move |args| {
            let s = match args.first() {
                Some(Json::String(s)) => s.clone(),
                Some(Json::Number(n)) => n.to_string(),
                _ => return Err(RpcError::new(500, "Not enough parameters")),
            };
            r2.secrets
                .write()
                .map_err(|_| RpcError::new(500, "Failed adding secret"))?
                .insert(0, s);
            Ok(Json::Null)
        })
        .rpc("autheph.rm_secret", "Remove a secret", move |args| {
            let id = match args.first() {
                Some(Json::Number(n)) => n.as_u64(),
                Some(Json::String(s)) => s.trim().parse::<u64>().ok(),
                _ => return Err(RpcError::new(500, "Not enough parameters")),
            };
            let mut g = r3
                .secrets
                .write()
                .map_err(|_| RpcError::new(500, "Failed removing secret"))?;
            match id.and_then(|i| usize::try_from(i).ok()) {
                Some(i) if i < g.len() => {
                    g.remove(i);
                    Ok(Json::Null)
                }
                _ => {
                    lm_err!("autheph.rm_secret: ID not found");
                    Err(RpcError::new(500, "Failed removing secret"))
                }
            }
        });
    def.on_init(move |core| {
        if st.secrets().is_empty() {
            return Err("auth_ephemeral: secret modparam not set".into());
        }
        match Format::from_param(st.format.load(Ordering::Relaxed)) {
            Some(Format::UserFirst) => lm_warn!(
                "auth_ephemeral: the 0 value for the username_format modparam is deprecated"
            ),
            Some(Format::TimestampFirst) => {}
            None => {
                return Err(format!(
                    "auth_ephemeral: bad value for username_format modparam: {}",
                    st.format.load(Ordering::Relaxed)
                ))
            }
        }
        match bind::<AuthApi>(core, AUTH_API) {
            Some(api) => {
                let _ = st.auth.set(api);
            }
            None => lm_info!(
                "auth_ephemeral: auth module not loaded - digest authentication and check functions will not be available"
            ),
        }
        Ok(())
    })
}
