//! # auth: digest authentication
//!
//! Kamailio's `auth`: challenges (`www_challenge`, `proxy_challenge`,
//! `auth_challenge`), `consume_credentials`, `has_credentials`, and checks
//! against a password held in a variable (`pv_www_authorize`,
//! `pv_proxy_authorize`, `pv_auth_check`). Digest per RFC 3261 with RFC
//! 7616/8760 algorithms (MD5, SHA-256, SHA-512-256), `qop=auth`, nonces
//! that expire (`nonce_expire`) and carry an HMAC under `secret`, and
//! replay protection by nonce-count (`nonce_count=1`; `one_time_nonce=1`
//! for clients without qop). Responses are compared in constant time.
//!
//! The shared steps are the [`AuthApi`], published as [`AUTH_API`] for
//! `auth_db` (load `auth` first).
//!
//! Return codes: 1 ok, -1 error, -2 wrong password, -3 unknown user, -4
//! nonce expired, -5 no credentials, -6 nonce reused, -8 auth user
//! mismatch.
#![forbid(unsafe_code)]

pub mod api;
pub mod digest;
pub mod nonce;

pub use api::{
    authorized_username, identity_matches, rc, split_username, AuthApi, Credentials, HdrType,
    AUTH_API,
};
pub use digest::Alg;

use sr_sdk::prelude::*;
use std::sync::Arc;

/// Methods `auth_check` flag 2 exempts from the identity check.
pub fn identity_exempt(m: Option<Method<'_>>) -> bool {
    matches!(
        m.map(|m| m.as_str().to_ascii_uppercase()).as_deref(),
        Some("INVITE" | "BYE" | "PRACK" | "UPDATE" | "MESSAGE")
    )
}

/// A credentials check against a known password or HA1 (the `pv_*`
/// functions).
fn pv_authorize(
    api: &AuthApi,
    ctx: &mut Ctx<'_>,
    realm: &str,
    passwd: &str,
    flags: i64,
    hdr: HdrType,
) -> i32 {
    let c = match api.pre_auth(ctx, realm, hdr) {
        Ok(c) => c,
        Err(rc) => return rc,
    };
    let ha1 = if flags & 1 != 0 {
        passwd.to_string()
    } else {
        api.calc_ha1(&c, passwd)
    };
    api.post_auth(ctx, &c, &ha1)
}

/// `consume_credentials()`: removes the header that authorized the
/// request.
fn consume(ctx: &mut Ctx<'_>) -> i32 {
    let Some(a) = ctx.msg.ext.get::<api::Authorized>().copied() else {
        lm_err!("auth: consume_credentials: no authorized credentials");
        return -1;
    };
    let h = ctx
        .msg
        .msg()
        .headers_named(a.hdr.credentials())
        .nth(a.index)
        .map(|h| (h.start, h.end));
    match h {
        Some((start, end)) => {
            ctx.msg.edits.delete(start, end);
            1
        }
        None => -1,
    }
}

fn has_credentials(ctx: &mut Ctx<'_>, realm: &str) -> i32 {
    let m = ctx.msg.msg();
    let found = m
        .auth_values(HeaderName::Authorization)
        .chain(m.auth_values(HeaderName::ProxyAuthorization))
        .flatten()
        .any(|v| v.get("realm").is_some_and(|r| r == realm));
    if found {
        1
    } else {
        -1
    }
}

fn hdr_for(msg: &SipMsg) -> HdrType {
    if msg.msg().method() == Some(Method::Register) {
        HdrType::Www
    } else {
        HdrType::Proxy
    }
}

/// The module definition.
pub fn module() -> ModuleDef {
    let api = Arc::new(AuthApi::default());
    let rt = RouteType::REQUEST | RouteType::FAILURE | RouteType::BRANCH;
    let sp = Some(fixup::f(fixup::spve));
    let mut def = ModuleDef::new("auth")
        .param("secret", ParamKind::Str, params::string(&api.secret))
        .param(
            "nonce_expire",
            ParamKind::Int,
            params::int(&api.nonce_expire),
        )
        .param("nonce_count", ParamKind::Int, params::int(&api.nonce_count))
        .param(
            "one_time_nonce",
            ParamKind::Int,
            params::int(&api.one_time_nonce),
        )
        .param("algorithm", ParamKind::Str, params::string(&api.algorithm));
    let challenges: [(&str, Option<HdrType>); 3] = [
        ("www_challenge", Some(HdrType::Www)),
        ("proxy_challenge", Some(HdrType::Proxy)),
        ("auth_challenge", None),
    ];
    // auth_get_www_authenticate(realm, flags, dst): the WWW-Authenticate
    // header (name, value, CRLF) the script may send itself; flags 1
    // qop="auth", 2 qop="auth-int", 16 stale=true. -1 for an empty realm.
    let a = api.clone();
    def = def.cmd(
        "auth_get_www_authenticate",
        3,
        RouteType::ANY,
        Some(fixup::f(|env, i, arg| {
            if i == 2 {
                fixup::pvar(env, i, arg)
            } else {
                fixup::spve(env, i, arg)
            }
        })),
        move |ctx, p| {
            let realm = p[0].str(ctx).into_owned();
            let flags = p[1].int(ctx);
            if realm.is_empty() {
                lm_err!("auth_get_www_authenticate: invalid realm value - empty content");
                return -1;
            }
            let mut v = a.challenge_value(ctx, &realm, flags & !3, a.algorithm());
            if flags & 3 != 0 {
                // (qop before stale, as in the challenges.)
                let qop = if flags & 2 != 0 { "auth-int" } else { "auth" };
                let at = v
                    .find(", stale=")
                    .or_else(|| v.find(", algorithm="))
                    .unwrap_or(v.len());
                v.insert_str(at, &format!(", qop=\"{qop}\""));
            }
            let Fixed::Pv(dst) = &p[2] else {
                return -1;
            };
            match dst.assign(ctx, Value::from(format!("WWW-Authenticate: {v}\r\n"))) {
                Ok(()) => 1,
                Err(e) => {
                    lm_err!("auth_get_www_authenticate: {e}");
                    -1
                }
            }
        },
    );
    for (name, hdr) in challenges {
        let a = api.clone();
        def = def.cmd(name, 2, rt, sp.clone(), move |ctx, p| {
            let realm = p[0].str(ctx).into_owned();
            let flags = p[1].int(ctx);
            let h = hdr.unwrap_or_else(|| hdr_for(ctx.msg));
            a.challenge(ctx, &realm, flags, h)
        });
    }
    let pvs: [(&str, Option<HdrType>); 2] = [
        ("pv_www_authorize", Some(HdrType::Www)),
        ("pv_proxy_authorize", Some(HdrType::Proxy)),
    ];
    for (name, hdr) in pvs {
        let a = api.clone();
        def = def.cmd(name, 3, rt, sp.clone(), move |ctx, p| {
            let realm = p[0].str(ctx).into_owned();
            let passwd = p[1].str(ctx).into_owned();
            let flags = p[2].int(ctx);
            let h = hdr.unwrap_or_else(|| hdr_for(ctx.msg));
            pv_authorize(&a, ctx, &realm, &passwd, flags, h)
        });
    }
    for alias in ["pv_www_authenticate", "pv_proxy_authenticate"] {
        let a = api.clone();
        let h = if alias.contains("www") {
            HdrType::Www
        } else {
            HdrType::Proxy
        };
        def = def.cmd(alias, 3, rt, sp.clone(), move |ctx, p| {
            let realm = p[0].str(ctx).into_owned();
            let passwd = p[1].str(ctx).into_owned();
            let flags = p[2].int(ctx);
            pv_authorize(&a, ctx, &realm, &passwd, flags, h)
        });
    }
    let a = api.clone();
    def = def.cmd("pv_auth_check", 4, rt, sp.clone(), move |ctx, p| {
        let realm = p[0].str(ctx).into_owned();
        let passwd = p[1].str(ctx).into_owned();
        let flags = p[2].int(ctx);
        let checks = p[3].int(ctx);
        let h = hdr_for(ctx.msg);
        let c = match a.pre_auth(ctx, &realm, h) {
            Ok(c) => c,
            Err(rc) => return rc,
        };
        let ha1 = if flags & 1 != 0 {
            passwd
        } else {
            a.calc_ha1(&c, &passwd)
        };
        let r = a.post_auth(ctx, &c, &ha1);
        if r == rc::OK
            && checks & 1 != 0
            && !(checks & 2 != 0 && identity_exempt(ctx.msg.msg().method()))
            && !identity_matches(ctx.msg, &c)
        {
            return rc::AUTH_USER_MISMATCH;
        }
        r
    });
    let api_init = api.clone();
    def.cmd("consume_credentials", 0, rt, None, |ctx, _| consume(ctx))
        .cmd("has_credentials", 1, rt, sp, |ctx, p| {
            let realm = p[0].str(ctx).into_owned();
            has_credentials(ctx, &realm)
        })
        .on_init(move |core| {
            let alg = api_init
                .algorithm
                .read()
                .map(|a| a.clone())
                .unwrap_or_default();
            // (Not set: MD5, not named in challenges.)
            if !alg.is_empty() && Alg::parse(&alg).is_none() {
                return Err("auth: algorithm must be MD5, SHA-256 or SHA-512-256".into());
            }
            api_init.apply_secret();
            core.register_api(AUTH_API, api_init.clone());
            Ok(())
        })
}
