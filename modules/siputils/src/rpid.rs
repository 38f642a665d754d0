//! siputils' Remote-Party-ID functions (`append_rpid_hf([prefix,
//! suffix])`, `is_rpid_user_e164()`, from the URI an AVP holds — the
//! `rpid_avp` parameter, `$avp(s:rpid)` by default, which auth_db and
//! others fill), and `sip_p_charging_vector(flags)` with `$pcv(...)`
//! (RFC 7315's P-Charging-Vector).

use sr_sdk::prelude::*;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::RwLock;

/// The module parameters these functions read.
#[derive(Debug)]
pub struct RpidParams {
    /// `rpid_prefix`.
    pub prefix: RwLock<String>,
    /// `rpid_suffix`.
    pub suffix: RwLock<String>,
    /// `rpid_avp`.
    pub avp: RwLock<String>,
}

impl Default for RpidParams {
    fn default() -> Self {
        RpidParams {
            prefix: RwLock::new(String::new()),
            suffix: RwLock::new(";party=calling;id-type=subscriber;screen=yes".into()),
            avp: RwLock::new("$avp(s:rpid)".into()),
        }
    }
}

fn read(l: &RwLock<String>) -> String {
    l.read().map(|s| s.clone()).unwrap_or_default()
}

impl RpidParams {
    /// The saved Remote-Party-ID URI, when the AVP holds one.
    pub fn value(&self, msg: &SipMsg) -> Option<String> {
        let name = sr_sdk::avp::spec_name(&read(&self.avp))?;
        let v = msg.avps.get(&name, 0)?.as_str().into_owned();
        (!v.is_empty()).then_some(v)
    }

    /// `append_rpid_hf([prefix, suffix])`: `Remote-Party-ID: ` prefix, the
    /// saved URI, suffix, added after the last header. -1 without one.
    pub fn append(&self, msg: &mut SipMsg, ps: Option<(&str, &str)>) -> i32 {
        let Some(v) = self.value(msg) else {
            return -1;
        };
        let (prefix, suffix) = match ps {
            Some((p, s)) => (p.to_string(), s.to_string()),
            None => (read(&self.prefix), read(&self.suffix)),
        };
        let end = msg.msg().headers_end();
        let line = format!("Remote-Party-ID: {prefix}{v}{suffix}\r\n");
        msg.edits.insert(end, line.as_bytes());
        1
    }

    /// `is_rpid_user_e164()`: the user of the saved URI (its own
    /// parameters left out) is an E.164 number.
    pub fn user_is_e164(&self, msg: &SipMsg) -> bool {
        let Some(v) = self.value(msg) else {
            return false;
        };
        let uri = match (v.find('<'), v.rfind('>')) {
            (Some(a), Some(b)) if a < b => &v[a + 1..b],
            _ => v.split(';').next().unwrap_or(""),
        };
        let Ok(u) = sr_sdk::sip_msg::Uri::parse(uri.trim()) else {
            return false;
        };
        let user = u.user.unwrap_or("");
        crate::is_e164(user.split(';').next().unwrap_or(""))
    }
}

/// `get_uri_param(name, dst)`: the value of the Request-URI's parameter
/// (empty for one without a value); `None` when it has none.
pub fn uri_param_value(msg: &SipMsg, name: &str) -> Option<String> {
    let u = msg.ruri_parsed().ok()?;
    u.params.split(';').find_map(|p| {
        let (n, v) = p.split_once('=').unwrap_or((p, ""));
        n.trim()
            .eq_ignore_ascii_case(name.trim())
            .then(|| v.trim().to_string())
    })
}

/// The P-Charging-Vector header's parts.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Pcv {
    /// The whole value.
    pub all: String,
    /// `icid-value`.
    pub value: String,
    /// `icid-generated-at`.
    pub genaddr: String,
    /// `orig-ioi`.
    pub orig: String,
    /// `term-ioi`.
    pub term: String,
}

impl Pcv {
    /// Parses a header value; `None` without an `icid-value`.
    pub fn parse(v: &str) -> Option<Pcv> {
        let mut p = Pcv {
            all: v.trim().to_string(),
            ..Pcv::default()
        };
        for part in v.split(';') {
            let Some((n, val)) = part.split_once('=') else {
                continue;
            };
            let val = val.trim().to_string();
            match n.trim().to_ascii_lowercase().as_str() {
                "icid-value" => p.value = val,
                "icid-generated-at" => p.genaddr = val,
                "orig-ioi" => p.orig = val,
                "term-ioi" => p.term = val,
                _ => {}
            }
        }
        (!p.value.is_empty()).then_some(p)
    }
}

/// The charging vector a message has or got (`$pcv`).
#[derive(Debug, Default, Clone)]
pub struct PcvState(pub Option<Pcv>);

static PCV_SEQ: AtomicU64 = AtomicU64::new(0);

/// A new icid-value: 32 hexadecimal digits, a random part and a
/// counter (unique in this process).
fn new_icid() -> String {
    let n = PCV_SEQ.fetch_add(1, Ordering::Relaxed);
    let r = sr_sdk::hash::random_u64();
    format!("{r:016X}{n:016X}")
}

/// `sip_p_charging_vector(flags)`: `r` removes a received header, `g`
/// adds a generated one when there is none, `f` replaces it. The
/// generated value is `icid-value=<32 hex digits>; icid-generated-at=<the
/// address the request came in on>`. 1; -2 without a local address.
pub fn charging_vector(ctx: &mut Ctx<'_>, flags: &str) -> i32 {
    let lower = flags.to_ascii_lowercase();
    let (remove, generate, replace) = (
        lower.contains('r'),
        lower.contains('g') || lower.contains('f'),
        lower.contains('f'),
    );
    let found = ctx
        .msg
        .msg()
        .headers()
        .iter()
        .find(|h| h.is("P-Charging-Vector"))
        .map(|h| (h.start, h.end, Pcv::parse(h.value)));
    let mut state = found.as_ref().and_then(|f| f.2.clone());
    // (A received header is removed also when it has no icid-value.)
    if let Some((s, e, _)) = &found {
        if remove || replace {
            ctx.msg.edits.delete(*s, *e);
            state = None;
        }
    }
    if replace || (generate && state.is_none() && found.is_none()) {
        let Some((host, _)) = ctx.core.received_on(&ctx.msg.rcv) else {
            lm_err!("sip_p_charging_vector: no local address to generate from");
            return -2;
        };
        let value = format!("icid-value={}; icid-generated-at={host}", new_icid());
        let end = ctx.msg.msg().headers_end();
        ctx.msg
            .edits
            .insert(end, format!("P-Charging-Vector: {value}\r\n").as_bytes());
        state = Pcv::parse(&value);
    }
    ctx.msg.ext.insert(PcvState(state));
    1
}

/// `$pcv(all|value|genaddr|orig|term)`.
pub fn pcv_value(msg: &SipMsg, which: &str) -> Value<'static> {
    let pcv = match msg.ext.get::<PcvState>() {
        Some(s) => s.0.clone(),
        None => msg
            .msg()
            .headers()
            .iter()
            .find(|h| h.is("P-Charging-Vector"))
            .and_then(|h| Pcv::parse(h.value)),
    };
    let Some(p) = pcv else {
        return Value::Null;
    };
    let v = match which {
        "value" => p.value,
        "genaddr" => p.genaddr,
        "orig" => p.orig,
        "term" => p.term,
        _ => p.all,
    };
    if v.is_empty() {
        Value::Null
    } else {
        Value::from(v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn charging_vectors_parse() {
        let p = Pcv::parse("icid-value=abc; icid-generated-at=1.2.3.4;orig-ioi=home1.net").unwrap();
        assert_eq!(
            (
                p.value.as_str(),
                p.genaddr.as_str(),
                p.orig.as_str(),
                p.term.as_str()
            ),
            ("abc", "1.2.3.4", "home1.net", "")
        );
        assert!(Pcv::parse("orig-ioi=x").is_none());
        let a = new_icid();
        assert_eq!(a.len(), 32);
        assert!(a.bytes().all(|b| b.is_ascii_hexdigit()));
        assert_ne!(a, new_icid());
    }
}
