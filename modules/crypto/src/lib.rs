//! Module `crypto` (Kamailio's): encryption of text with AES-CBC and
//! HMAC-SHA256 digests, results in base64.
//!
//! - `crypto_aes_encrypt(text, key, $dst)`: with `key_derivation` 1 (the
//!   default) the key and IV are derived from `key` and the `salt`
//!   parameter as OpenSSL's `EVP_BytesToKey` does (SHA-1, 5 rounds),
//!   AES-256-CBC, `$dst` the base64 ciphertext; with `key_derivation` 0
//!   `key` is a base64 key of 16 or 32 bytes (AES-128 or AES-256), the IV
//!   is `init_vector` (base64 of 16 bytes) or random, and `$dst` is the
//!   base64 of IV and ciphertext;
//! - `crypto_aes_decrypt(text, key, $dst)`: the reverse, -1 when the text
//!   does not decrypt (a wrong key, mostly);
//! - `crypto_hmac_sha256(text, key, $dst)`: the digest in base64url
//!   without padding.
//!
//! Not built: the network-I/O event callbacks (`register_evcb`,
//! `event_route[crypto:netio]`, `crypto_netio_*`, placeholders in
//! Kamailio 5.6) and `register_callid` (Call-IDs of local requests from
//! the module): setting either parameter to non-zero is refused at start.
#![forbid(unsafe_code)]

pub mod aes;

use base64::Engine;
use sr_sdk::fixup::{Arg, FixupEnv};
use sr_sdk::prelude::*;
use std::sync::{Arc, PoisonError, RwLock};

/// The module's parameters.
#[derive(Debug, Clone)]
struct Conf {
    /// The `salt` parameter's text.
    salt_param: String,
    /// The salt made from it (at start).
    salt: Option<aes::Salt>,
    /// `key_derivation`.
    derive: bool,
    /// `init_vector` (base64).
    init_vector: String,
    /// `register_callid`.
    register_callid: i64,
    /// `register_evcb`.
    register_evcb: i64,
}

impl Default for Conf {
    fn default() -> Conf {
        Conf {
            salt_param: "k8hTm4aZ".into(),
            salt: None,
            derive: true,
            init_vector: String::new(),
            register_callid: 0,
            register_evcb: 0,
        }
    }
}

type Shared = Arc<RwLock<Conf>>;

/// Standard base64, padding optional on input.
fn b64() -> base64::engine::GeneralPurpose {
    base64::engine::GeneralPurpose::new(
        &base64::alphabet::STANDARD,
        base64::engine::GeneralPurposeConfig::new()
            .with_decode_padding_mode(base64::engine::DecodePaddingMode::Indifferent),
    )
}

/// A base64 key of 16 or 32 bytes (`key_derivation` 0).
fn raw_key(text: &str, what: &str) -> Option<Vec<u8>> {
    match b64().decode(text.trim_end_matches('\0')) {
        Ok(k) if k.len() == 16 || k.len() == 32 => Some(k),
        Ok(k) => {
            lm_err!(
                "{what}: base64 key input has wrong length {}, only 128 or 256 bit keys are supported",
                k.len()
            );
            None
        }
        Err(_) => {
            lm_err!("{what}: the key is not base64");
            None
        }
    }
}

/// The base64 ciphertext of `plain`.
fn encrypt(conf: &Conf, plain: &[u8], key: &str) -> Option<String> {
    if conf.derive {
        let (k, iv) = aes::bytes_to_key(key.as_bytes(), conf.salt.as_ref());
        let c = aes::encrypt(&k, &iv, plain)?;
        return Some(b64().encode(c));
    }
    let k = raw_key(key, "crypto_aes_encrypt")?;
    let mut iv = [0u8; 16];
    if conf.init_vector.is_empty() {
        use ring::rand::SecureRandom;
        if ring::rand::SystemRandom::new().fill(&mut iv).is_err() {
            lm_err!("crypto_aes_encrypt: could not set initialization vector");
            return None;
        }
    } else {
        match b64().decode(&conf.init_vector) {
            Ok(v) if v.len() == 16 => iv.copy_from_slice(&v),
            Ok(v) => {
                lm_err!(
                    "crypto_aes_encrypt: base64 initialization vector input has wrong length {}, needs to be 16 bytes",
                    v.len()
                );
                return None;
            }
            Err(_) => {
                lm_err!("crypto_aes_encrypt: init_vector is not base64");
                return None;
            }
        }
    }
    let c = aes::encrypt(&k, &iv, plain)?;
    let mut out = iv.to_vec();
    out.extend_from_slice(&c);
    Some(b64().encode(out))
}

/// The plain text of the base64 ciphertext `text`.
fn decrypt(conf: &Conf, text: &str, key: &str) -> Option<Vec<u8>> {
    let Ok(data) = b64().decode(text) else {
        lm_err!("crypto_aes_decrypt: the input is not base64");
        return None;
    };
    let out = if conf.derive {
        let (k, iv) = aes::bytes_to_key(key.as_bytes(), conf.salt.as_ref());
        aes::decrypt(&k, &iv, &data)
    } else {
        let k = raw_key(key, "crypto_aes_decrypt")?;
        if data.len() < 16 {
            lm_err!("crypto_aes_decrypt: the input is shorter than its IV");
            return None;
        }
        let mut iv = [0u8; 16];
        iv.copy_from_slice(&data[..16]);
        aes::decrypt(&k, &iv, &data[16..])
    };
    if out.is_none() {
        lm_err!("crypto_aes_decrypt: AES decryption failed");
    }
    out
}

/// The HMAC-SHA256 of `text` under `key`, base64url without padding.
pub fn hmac_sha256(text: &[u8], key: &[u8]) -> String {
    let k = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, key);
    let tag = ring::hmac::sign(&k, text);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(tag.as_ref())
}

fn fixup(env: &dyn FixupEnv, i: usize, arg: &Arg) -> Result<Fixed, String> {
    if i == 2 {
        fixup::pvar(env, i, arg)
    } else {
        fixup::spve(env, i, arg)
    }
}

/// Sets `$dst` (the third parameter) to `value`: 1, or -1.
fn set(ctx: &mut Ctx<'_>, p: &[Fixed], value: String) -> i32 {
    let Fixed::Pv(dst) = &p[2] else {
        return -1;
    };
    match dst.assign(ctx, Value::Str(value.into())) {
        Ok(()) => 1,
        Err(e) => {
            lm_err!("crypto: cannot set the result: {e}");
            -1
        }
    }
}

fn read(conf: &Shared) -> Conf {
    conf.read().unwrap_or_else(PoisonError::into_inner).clone()
}

/// The module definition.
pub fn module() -> ModuleDef {
    let conf: Shared = Arc::default();
    let fx = Some(fixup::f(fixup));
    let c = |f: fn(&mut Conf, ParamValue) -> Result<(), String>| {
        let conf = conf.clone();
        move |v: ParamValue| f(&mut conf.write().unwrap_or_else(PoisonError::into_inner), v)
    };
    let (c_init, c_enc, c_dec) = (conf.clone(), conf.clone(), conf.clone());
    ModuleDef::new("crypto")
        .param(
            "salt",
            ParamKind::Str,
            c(|c, v| {
                c.salt_param = param_text(v);
                Ok(())
            }),
        )
        .param(
            "key_derivation",
            ParamKind::Int,
            c(|c, v| {
                c.derive = param_int(v)? != 0;
                Ok(())
            }),
        )
        .param(
            "init_vector",
            ParamKind::Str,
            c(|c, v| {
                c.init_vector = param_text(v);
                Ok(())
            }),
        )
        .param(
            "register_callid",
            ParamKind::Int,
            c(|c, v| {
                c.register_callid = param_int(v)?;
                Ok(())
            }),
        )
        .param(
            "register_evcb",
            ParamKind::Int,
            c(|c, v| {
                c.register_evcb = param_int(v)?;
                Ok(())
            }),
        )
        // Read only with register_evcb, which is not built.
        .param("kevcb_netio", ParamKind::Str, |_| Ok(()))
        .param("netio_key", ParamKind::Str, |_| Ok(()))
        .on_init(move |_| {
            let mut c = c_init.write().unwrap_or_else(PoisonError::into_inner);
            c.salt = aes::salt_from_param(&c.salt_param)?;
            if c.register_callid != 0 {
                return Err("crypto: register_callid is not built in siprouter".into());
            }
            if c.register_evcb != 0 {
                return Err(
                    "crypto: register_evcb (the crypto:netio event route) is not built in siprouter"
                        .into(),
                );
            }
            Ok(())
        })
        .cmd(
            "crypto_aes_encrypt",
            3,
            RouteType::ANY,
            fx.clone(),
            move |ctx, p| {
                let (plain, key) = (p[0].str(ctx).into_owned(), p[1].str(ctx).into_owned());
                match encrypt(&read(&c_enc), plain.as_bytes(), &key) {
                    Some(v) => set(ctx, p, v),
                    None => -1,
                }
            },
        )
        .cmd(
            "crypto_aes_decrypt",
            3,
            RouteType::ANY,
            fx.clone(),
            move |ctx, p| {
                let (data, key) = (p[0].str(ctx).into_owned(), p[1].str(ctx).into_owned());
                match decrypt(&read(&c_dec), &data, &key) {
                    Some(v) => set(ctx, p, String::from_utf8_lossy(&v).into_owned()),
                    None => -1,
                }
            },
        )
        .cmd(
            "crypto_hmac_sha256",
            3,
            RouteType::ANY,
            fx,
            move |ctx, p| {
                let (data, key) = (p[0].str(ctx).into_owned(), p[1].str(ctx).into_owned());
                set(ctx, p, hmac_sha256(data.as_bytes(), key.as_bytes()))
            },
        )
}

fn param_text(v: ParamValue) -> String {
    match v {
        ParamValue::Str(s) => s,
        ParamValue::Int(n) => n.to_string(),
    }
}

fn param_int(v: ParamValue) -> Result<i64, String> {
    match v {
        ParamValue::Int(n) => Ok(n),
        ParamValue::Str(s) => s
            .trim()
            .parse::<i64>()
            .map_err(|_| format!("'{s}' is not an integer")),
    }
}
