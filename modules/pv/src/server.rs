//! Pseudo-variables about the server and the raw message: the version
//! (`$version(num|full|hash)`), `server_id` (`$sid`), the receiving
//! socket's name (`$Rn`), the source as a socket (`$sas`), the message
//! as it would be sent with the script's changes (`$mbu`), and one byte
//! of the message (`$msgbuf(n)`).

use sr_sdk::prelude::*;
use sr_sdk::sip_msg::edit::ApplyOptions;
use sr_sdk::PvName;

/// The classes this file serves, with no name check.
pub const NAMES: &[&str] = &["sid", "Rn", "sas", "mbu"];

/// Refuses a `$msgbuf` index that is not a number.
pub fn msgbuf_check(n: &PvName) -> Result<(), String> {
    let i = n.inner.as_deref().unwrap_or("").trim();
    i.parse::<usize>()
        .map(|_| ())
        .map_err(|_| format!("'{i}' is not a byte index"))
}

fn s(v: impl Into<String>) -> Value<'static> {
    Value::Str(v.into().into())
}

/// The commit siprouter was built from, when the build knew it.
const HASH: Option<&str> = option_env!("SR_GIT_HASH");

/// Refuses a `$version` key other than `num`, `full` and `hash`.
pub fn version_check(n: &PvName) -> Result<(), String> {
    match n.inner.as_deref().unwrap_or("").trim() {
        "num" | "full" | "hash" => Ok(()),
        other => Err(format!("unknown version key '{other}' (num, full or hash)")),
    }
}

/// `$version(num)` siprouter's version; `full` its name, version and
/// platform, as Kamailio's `kamailio 5.6.3 (x86_64/linux)`; `hash` the
/// commit, `unknown` when the build did not know it.
pub fn version(n: &PvName) -> Value<'static> {
    let num = env!("CARGO_PKG_VERSION");
    match n.inner.as_deref().unwrap_or("").trim() {
        "num" => s(num),
        "full" => s(format!(
            "siprouter {num} ({}/{})",
            std::env::consts::ARCH,
            std::env::consts::OS
        )),
        _ => s(HASH.unwrap_or("unknown")),
    }
}

/// Reads one of [`NAMES`].
pub fn get(name: &str, ctx: &mut Ctx<'_>, n: &PvName) -> Value<'static> {
    match name {
        "sid" => Value::Int(ctx.core.server_id()),
        "Rn" => ctx.core.socket_name(&ctx.msg.rcv).map_or(Value::Null, s),
        "sas" => {
            let src = ctx.msg.rcv.src;
            let host = match src.ip() {
                std::net::IpAddr::V4(v4) => v4.to_string(),
                std::net::IpAddr::V6(v6) => format!("[{v6}]"),
            };
            s(format!(
                "{}:{host}:{}",
                ctx.msg.rcv.proto.as_str().to_ascii_lowercase(),
                src.port()
            ))
        }
        "mbu" => {
            let m = &*ctx.msg;
            let out = if m.edits.is_empty() {
                m.msg().raw().to_vec()
            } else {
                m.edits.apply(m.msg(), ApplyOptions::default())
            };
            s(String::from_utf8_lossy(&out).into_owned())
        }
        "msgbuf" => {
            let raw = ctx.msg.msg().raw();
            let i = n
                .inner
                .as_deref()
                .and_then(|x| x.trim().parse::<usize>().ok());
            match i.and_then(|i| raw.get(i)) {
                Some(b) => s(String::from_utf8_lossy(&[*b]).into_owned()),
                None => Value::Null,
            }
        }
        _ => Value::Null,
    }
}
