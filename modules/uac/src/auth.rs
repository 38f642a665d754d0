//! `uac_auth([mode])` (Kamailio's uac `auth.c`): in failure_route, after
//! a 401 or 407 from downstream, the digest credentials for the
//! challenge's realm (the `credential` parameters, or the auth AVPs) go
//! into an Authorization / Proxy-Authorization header of the request, for
//! the script's next `t_relay()`. MD5 only, qop `auth` or none, as
//! Kamailio's.

use crate::Uac;
use sr_mod_auth::digest::{response, Alg, ResponseInput};
use sr_sdk::prelude::*;
use sr_sdk::sip_msg::headers::AuthValue;

/// One `credential` parameter: `user:realm:password`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credential {
    /// User name.
    pub user: String,
    /// Realm.
    pub realm: String,
    /// Password (or HA1 with `uac_auth(1)`).
    pub password: String,
}

impl Credential {
    /// Parses `user:realm:password` (blanks around the parts allowed; the
    /// password may hold `:`).
    pub fn parse(s: &str) -> Result<Credential, String> {
        let bad = || format!("uac: bad credential '{s}' (user:realm:password)");
        let (user, rest) = s.split_once(':').ok_or_else(bad)?;
        let (realm, password) = rest.split_once(':').ok_or_else(bad)?;
        let (user, realm) = (user.trim(), realm.trim());
        let mut words = password.split_whitespace();
        let password = words.next().unwrap_or("");
        if words.next().is_some() {
            return Err(format!(
                "uac: bad credential '{s}': text after the password"
            ));
        }
        let blank = |x: &str| x.is_empty() || x.contains(char::is_whitespace);
        if blank(user) || blank(realm) || password.is_empty() {
            return Err(bad());
        }
        Ok(Credential {
            user: user.into(),
            realm: realm.into(),
            password: password.into(),
        })
    }
}

/// A challenge's parts uac uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Challenge {
    /// Realm.
    pub realm: String,
    /// Nonce.
    pub nonce: String,
    /// Opaque, if any.
    pub opaque: Option<String>,
    /// Whether qop `auth` is offered.
    pub qop_auth: bool,
}

/// Parses a WWW-/Proxy-Authenticate value as Kamailio's uac does: Digest,
/// realm and nonce required, `stale` true/false, `algorithm` MD5 only.
pub fn parse_challenge(value: &str) -> Result<Challenge, String> {
    let v = AuthValue::parse(value, "WWW-Authenticate").map_err(|e| e.to_string())?;
    if !v.is_digest() {
        return Err(format!("not a Digest challenge: {value}"));
    }
    let p = v.split();
    if let Some(a) = p.get("algorithm") {
        if !a.eq_ignore_ascii_case("MD5") {
            return Err(format!("unsupported algorithm \"{a}\""));
        }
    }
    if let Some(s) = p.get("stale") {
        if !s.eq_ignore_ascii_case("true") && !s.eq_ignore_ascii_case("false") {
            return Err(format!("bad stale value \"{s}\""));
        }
    }
    let realm = p
        .get("realm")
        .ok_or("no realm in the challenge")?
        .into_owned();
    let nonce = p
        .get("nonce")
        .ok_or("no nonce in the challenge")?
        .into_owned();
    Ok(Challenge {
        realm,
        nonce,
        opaque: p.get("opaque").map(|o| o.into_owned()),
        qop_auth: p
            .get("qop")
            .is_some_and(|q| q.trim_start().to_ascii_lowercase().starts_with("auth")),
    })
}

/// The header value answering `ch` for `method` on `uri` (Kamailio's field
/// order and quoting; `nc` 1; `cnonce` Kamailio's hash of the nonce).
pub fn authorization(
    ch: &Challenge,
    c: &Credential,
    ha1_given: bool,
    method: &str,
    uri: &str,
) -> String {
    let ha1 = if ha1_given {
        c.password.to_ascii_lowercase()
    } else {
        sr_mod_auth::digest::ha1(Alg::Md5, &c.user, &c.realm, &c.password)
    };
    let cnonce = sr_sdk::hash::core_hash(ch.nonce.as_bytes(), None, false).to_string();
    let qop = if ch.qop_auth { "auth" } else { "" };
    let resp = response(
        Alg::Md5,
        &ha1,
        &ResponseInput {
            nonce: &ch.nonce,
            nc: "00000001",
            cnonce: &cnonce,
            qop,
            method,
            uri,
        },
    );
    let mut s = format!(
        "Digest username=\"{}\", realm=\"{}\", nonce=\"{}\", uri=\"{uri}\"",
        c.user, c.realm, ch.nonce
    );
    if let Some(o) = &ch.opaque {
        s.push_str(&format!(", opaque=\"{o}\""));
    }
    if ch.qop_auth {
        s.push_str(&format!(", qop=auth, nc=00000001, cnonce=\"{cnonce}\""));
    }
    s.push_str(&format!(", response=\"{resp}\", algorithm=MD5"));
    s
}

/// The credential for `realm`: the auth AVPs when configured (an empty
/// realm AVP takes any realm), else the `credential` parameters.
fn credential_for(uac: &Uac, ctx: &mut Ctx<'_>, realm: &str) -> Option<Credential> {
    let p = &uac.p;
    let (ra, ua, pa) = (
        params::get_str(&p.auth_realm_avp),
        params::get_str(&p.auth_username_avp),
        params::get_str(&p.auth_password_avp),
    );
    if !ra.is_empty() {
        let get = |ctx: &mut Ctx<'_>, name: &str| {
            ctx.core
                .pv_get(ctx.msg, name)
                .filter(|v| !v.is_null())
                .map(|v| v.as_str().into_owned())
                .unwrap_or_default()
        };
        let (r, u, pw) = (get(ctx, &ra), get(ctx, &ua), get(ctx, &pa));
        if !u.is_empty() && !pw.is_empty() && (r.is_empty() || r == realm) {
            return Some(Credential {
                user: u,
                realm: realm.to_string(),
                password: pw,
            });
        }
    }
    uac.credentials().into_iter().find(|c| c.realm == realm)
}

/// `uac_auth([mode])`: 1 when the header was added, else -1.
pub fn uac_auth(uac: &Uac, ctx: &mut Ctx<'_>, mode: i64) -> i32 {
    let Some(tm) = uac.tm() else {
        return -1;
    };
    let Some((code, bytes, branch_uri)) = tm.winning_reply(ctx) else {
        lm_err!("uac_auth: no reply to answer (call it in failure_route)");
        return -1;
    };
    let Some(bytes) = bytes else {
        lm_err!("uac_auth: the reply was made locally, not an auth request");
        return -1;
    };
    let (hdr, out) = match code {
        401 => (HeaderName::WwwAuthenticate, "Authorization"),
        407 => (HeaderName::ProxyAuthenticate, "Proxy-Authorization"),
        _ => {
            lm_err!("uac_auth: reply {code} is not an auth request");
            return -1;
        }
    };
    let Ok(rpl) = SipMsg::parse(bytes, ctx.msg.rcv, 0) else {
        return -1;
    };
    let Some(value) = rpl.msg().value(hdr) else {
        lm_err!("uac_auth: the {code} has no {} header", hdr.as_str());
        return -1;
    };
    let ch = match parse_challenge(value) {
        Ok(c) => c,
        Err(e) => {
            lm_err!("uac_auth: {e}");
            return -1;
        }
    };
    let Some(cred) = credential_for(uac, ctx, &ch.realm) else {
        lm_info!("uac_auth: no credential for realm \"{}\"", ch.realm);
        return -1;
    };
    let uri = branch_uri.unwrap_or_else(|| ctx.msg.ruri().to_string());
    let method = ctx
        .msg
        .msg()
        .method()
        .map(|m| m.as_str().to_string())
        .unwrap_or_default();
    let value = authorization(&ch, &cred, mode & 1 != 0, &method, &uri);
    let at = ctx.msg.msg().headers_end();
    ctx.msg
        .edits
        .insert(at, format!("{out}: {value}\r\n").as_bytes());
    ctx.msg.new_uri = Some(uri);
    // Kamailio's uac_auth makes the Request-URI usable again: the next
    // t_relay sends the authenticated request.
    ctx.msg.renew_ruri();
    1
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What Kamailio 5.6.3 sent.
    #[test]
    fn kamailio_s_headers() {
        let ch = parse_challenge(
            "Digest realm=\"realm.test\", nonce=\"abc123nonce\", qop=\"auth\", opaque=\"opq9\", algorithm=MD5",
        )
        .unwrap();
        let c = Credential::parse("alice:realm.test:secret").unwrap();
        assert_eq!(
            authorization(&ch, &c, false, "INVITE", "sip:callee@b.example.com"),
            "Digest username=\"alice\", realm=\"realm.test\", nonce=\"abc123nonce\", uri=\"sip:callee@b.example.com\", opaque=\"opq9\", qop=auth, nc=00000001, cnonce=\"2722117977\", response=\"3471246c98314034252287172ccd697d\", algorithm=MD5"
        );
        let ch = parse_challenge("Digest realm=\"other.test\", nonce=\"n0nce401\"").unwrap();
        let c = Credential::parse("bob:other.test:pw2").unwrap();
        assert_eq!(
            authorization(&ch, &c, false, "INVITE", "sip:callee@b.example.com"),
            "Digest username=\"bob\", realm=\"other.test\", nonce=\"n0nce401\", uri=\"sip:callee@b.example.com\", response=\"416d50af879920f600736ae9cd0e901b\", algorithm=MD5"
        );
    }

    #[test]
    fn ha1_gives_the_same_answer() {
        let ch =
            parse_challenge("Digest realm=\"realm.test\", nonce=\"abc123nonce\", qop=\"auth\"")
                .unwrap();
        let plain = Credential::parse("alice:realm.test:secret").unwrap();
        let ha1 = sr_mod_auth::digest::ha1(Alg::Md5, "alice", "realm.test", "secret");
        let hashed = Credential {
            password: ha1,
            ..plain.clone()
        };
        assert_eq!(
            authorization(&ch, &plain, false, "INVITE", "sip:x"),
            authorization(&ch, &hashed, true, "INVITE", "sip:x")
        );
    }

    #[test]
    fn challenges_and_credentials() {
        assert!(
            parse_challenge("Digest realm=\"r\", nonce=\"n\", algorithm=SHA-256")
                .unwrap_err()
                .contains("SHA-256")
        );
        assert!(parse_challenge("Digest nonce=\"n\"").is_err());
        assert!(parse_challenge("Basic realm=\"r\"").is_err());
        assert!(parse_challenge("Digest realm=\"r\", nonce=\"n\", stale=maybe").is_err());
        assert!(Credential::parse("u:r:pass word").is_err());
        let c = Credential::parse(" u : r : p:a:ss ").unwrap();
        assert_eq!(
            (c.user.as_str(), c.realm.as_str(), c.password.as_str()),
            ("u", "r", "p:a:ss")
        );
        assert!(Credential::parse("u:r").is_err());
        assert!(Credential::parse("u::p").is_err());
    }
}
