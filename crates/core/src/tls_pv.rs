//! The tls module's pseudo-variables (`$tls_version`, `$tls_peer_subject_cn`,
//! `$tls_peer_verified`, ...) and `is_peer_verified()`: what the TLS
//! connection a message came on agreed, and the certificates on both
//! sides. Outside a TLS (or WSS) connection they are `$null`.

use crate::tls_cert::{cipher, pem, Cert, Comp, San, Side};
use sr_sdk::exports::{ModuleDef, PvName};
use sr_sdk::prelude::*;
use sr_sdk::TlsSession;

/// The session of the connection the message came on.
fn session(ctx: &Ctx<'_>) -> Option<TlsSession> {
    if !matches!(ctx.msg.rcv.proto, Proto::Tls | Proto::Wss) {
        lm_err!("tls: transport protocol is not TLS (bug in config)");
        return None;
    }
    ctx.core.stream_conns()?.tls_session(ctx.msg.rcv.conn_id)
}

/// What checking the peer's certificate gave, as OpenSSL's verify result
/// would say it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Verify {
    Ok,
    SelfSigned,
    Expired,
    Revoked,
    Other,
}

/// The verify result of a session whose peer sent a certificate. A chain
/// checked against `ca_list` passed (else there would be no connection);
/// one taken unchecked is classified as OpenSSL does when it records the
/// result without acting on it.
fn verify(s: &TlsSession) -> Option<Verify> {
    let leaf = s.peer_certs.first()?;
    if s.peer_verified {
        return Some(Verify::Ok);
    }
    let c = Cert::parse(leaf)?;
    Some(if s.peer_certs.len() == 1 && c.self_issued() {
        Verify::SelfSigned
    } else if c.expired(sr_sdk::db::now()) {
        Verify::Expired
    } else {
        Verify::Other
    })
}

fn text(v: Option<String>) -> Value<'static> {
    v.map_or(Value::Null, Value::from)
}

/// The peer's (`peer`) or our certificate on the message's connection.
fn cert_der(ctx: &Ctx<'_>, peer: bool) -> Option<Vec<u8>> {
    let s = session(ctx)?;
    if peer {
        s.peer_certs.into_iter().next()
    } else {
        s.my_cert
    }
}

/// A value read from the peer's (`peer`) or our certificate.
fn from_cert(
    ctx: &Ctx<'_>,
    peer: bool,
    f: impl Fn(&Cert<'_>, &[u8]) -> Option<String>,
) -> Value<'static> {
    let Some(der) = cert_der(ctx, peer) else {
        return Value::Null;
    };
    text(Cert::parse(&der).and_then(|c| f(&c, &der)))
}

fn san_kind(n: &str) -> Option<San> {
    match n {
        "DNS" => Some(San::Dns),
        "URI" => Some(San::Uri),
        "EMAIL" => Some(San::Email),
        "IP" => Some(San::Ip),
        _ => None,
    }
}

fn index(n: &PvName) -> Option<usize> {
    match n.index {
        None => Some(0),
        Some(i) => usize::try_from(i).ok(),
    }
}

/// `$tls_<who>_...` names for the peer and our side.
const WHO: [(&str, bool); 2] = [("peer", true), ("my", false)];

/// Adds the pseudo-variables and `is_peer_verified` to the tls module.
pub(crate) fn add(mut def: ModuleDef) -> ModuleDef {
    def = def
        .pv("tls_version", |ctx, _| {
            text(session(ctx).map(|s| s.version))
        })
        .pv("tls_cipher_info", |ctx, _| {
            text(
                session(ctx)
                    .and_then(|s| cipher(s.suite))
                    .map(|c| c.name.to_string()),
            )
        })
        .pv("tls_cipher_bits", |ctx, _| {
            session(ctx)
                .and_then(|s| cipher(s.suite))
                .map_or(Value::Null, |c| Value::Int(i64::from(c.bits)))
        })
        .pv("tls_description", |ctx, _| {
            text(
                session(ctx)
                    .and_then(|s| cipher(s.suite))
                    .map(|c| c.description()),
            )
        })
        .pv("tls_peer_server_name", |ctx, _| {
            text(session(ctx).and_then(|s| s.server_name))
        })
        .pv("tls_peer_notBefore", |ctx, _| {
            from_cert(ctx, true, |c, _| Some(c.validity(true)))
        })
        .pv("tls_peer_notAfter", |ctx, _| {
            from_cert(ctx, true, |c, _| Some(c.validity(false)))
        });
    for (name, want) in [
        ("verified", Verify::Ok),
        ("revoked", Verify::Revoked),
        ("expired", Verify::Expired),
        ("selfsigned", Verify::SelfSigned),
    ] {
        def = def.pv(&format!("tls_peer_{name}"), move |ctx, _| {
            session(ctx).map_or(Value::Null, |s| {
                Value::Int(i64::from(verify(&s) == Some(want)))
            })
        });
    }
    for (who, peer) in WHO {
        def = def
            .pv(&format!("tls_{who}_version"), move |ctx, _| {
                from_cert(ctx, peer, |c, _| Some(c.version().to_string()))
            })
            .pv(&format!("tls_{who}_serial"), move |ctx, _| {
                from_cert(ctx, peer, |c, _| Some(c.serial()))
            })
            .pv(&format!("tls_{who}_raw_cert"), move |ctx, _| {
                from_cert(ctx, peer, |_, der| Some(pem(der)))
            })
            .pv(&format!("tls_{who}_urlencoded_cert"), move |ctx, _| {
                from_cert(ctx, peer, |_, der| {
                    Some(crate::script::transform_str::urlencode(&pem(der)))
                })
            })
            .pv(&format!("tls_{who}_san_count"), move |ctx, n| {
                let Some(kind) = n.inner.as_deref().and_then(san_kind) else {
                    return Value::Null;
                };
                cert_der(ctx, peer)
                    .as_deref()
                    .and_then(Cert::parse)
                    .map_or(Value::Null, |c| {
                        Value::Int(i64::try_from(c.sans(kind).len()).unwrap_or(0))
                    })
            });
        for (part, side) in [("subject", Side::Subject), ("issuer", Side::Issuer)] {
            def = def.pv(&format!("tls_{who}_{part}"), move |ctx, _| {
                from_cert(ctx, peer, |c, _| Some(c.oneline(side)))
            });
            for (suffix, comp) in [
                ("cn", Comp::Cn),
                ("locality", Comp::L),
                ("country", Comp::C),
                ("state", Comp::St),
                ("organization", Comp::O),
                ("unit", Comp::Ou),
            ] {
                def = def.pv(&format!("tls_{who}_{part}_{suffix}"), move |ctx, _| {
                    from_cert(ctx, peer, |c, _| c.component(side, comp))
                });
            }
        }
        def = def.pv(&format!("tls_{who}_subject_uid"), move |ctx, _| {
            from_cert(ctx, peer, |c, _| c.component(Side::Subject, Comp::Uid))
        });
        for (suffix, kind) in [
            ("email", San::Email),
            ("hostname", San::Dns),
            ("uri", San::Uri),
            ("ip", San::Ip),
        ] {
            def = def.pv(&format!("tls_{who}_san_{suffix}"), move |ctx, n| {
                let Some(i) = index(n) else {
                    return Value::Null;
                };
                from_cert(ctx, peer, |c, _| c.sans(kind).into_iter().nth(i))
            });
        }
    }
    def.cmd(
        "is_peer_verified",
        0,
        RouteType::REQUEST,
        None,
        |ctx: &mut Ctx<'_>, _: &[Fixed]| {
            if !matches!(ctx.msg.rcv.proto, Proto::Tls | Proto::Wss) {
                lm_err!("is_peer_verified: proto != TLS");
                return -1;
            }
            let ok = ctx
                .core
                .stream_conns()
                .and_then(|c| c.tls_session(ctx.msg.rcv.conn_id))
                .is_some_and(|s| verify(&s) == Some(Verify::Ok));
            if ok {
                1
            } else {
                -1
            }
        },
    )
}
