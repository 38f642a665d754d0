//! The core pseudo-variables (`$ru`, `$fU`, `$si`, `$hdr(X)`, `$avp(x)`,
//! `$var(x)`, ...), resolved to an enum at compile time so reading one is
//! a `match`, not a lookup.

use super::state;
use sip_msg::headers::NameAddr;
use sip_msg::{HeaderName, Message};
use sr_cfg::{PvIndex, PvSpec};
use sr_sdk::exports::{PvExport, PvName};
use sr_sdk::{Ctx, SipMsg, Value};
use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, RwLock};

/// Shared variables (`$shv`), global to all workers.
pub type SharedVars = Arc<RwLock<HashMap<String, Value<'static>>>>;

/// A header selector: a known kind or an unknown name.
#[derive(Debug, Clone)]
pub struct HdrSel {
    kind: HeaderName,
    name: String,
}

impl HdrSel {
    fn new(name: &str) -> HdrSel {
        HdrSel {
            kind: HeaderName::parse(name),
            name: name.to_string(),
        }
    }

    fn values<'m>(&'m self, m: &'m Message<'m>) -> Vec<&'m str> {
        m.headers()
            .iter()
            .filter(|h| match self.kind {
                HeaderName::Other => {
                    h.name == HeaderName::Other && h.name_str.eq_ignore_ascii_case(&self.name)
                }
                k => h.name == k,
            })
            .map(|h| value_as_written(m, h))
            .collect()
    }
}

/// A header's value as written: trailing blanks kept, as Kamailio's
/// `$hdr` gives it (only the line break is dropped).
fn value_as_written<'m>(m: &'m Message<'m>, h: &sip_msg::Header<'m>) -> &'m str {
    let raw = m.raw();
    let (s, mut e) = (h.value_start as usize, h.end as usize);
    if e > raw.len() || s > e {
        return h.value;
    }
    while e > s && matches!(raw[e - 1], b'\r' | b'\n') {
        e -= 1;
    }
    // Only blanks may follow the trimmed value; anything else (a value
    // rebuilt by the parser) keeps the parsed one.
    match std::str::from_utf8(&raw[s..e]) {
        Ok(v)
            if v.starts_with(h.value)
                && v[h.value.len()..].bytes().all(|c| c == b' ' || c == b'\t') =>
        {
            v
        }
        _ => h.value,
    }
}

/// Which part of a name-addr header a PV reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AddrPart {
    /// The URI.
    Uri,
    /// The URI user.
    User,
    /// The URI host.
    Host,
    /// The display name.
    Display,
    /// The tag parameter.
    Tag,
}

/// A core pseudo-variable class with its compiled name.
#[derive(Clone)]
pub enum CorePv {
    /// `$ru` Request-URI (rw).
    Ru,
    /// `$rU` R-URI user (rw).
    RUser,
    /// `$rd` R-URI host (rw).
    RDomain,
    /// `$rp` R-URI port (rw).
    RPort,
    /// `$rz` R-URI scheme.
    RScheme,
    /// `$ou` original R-URI.
    OrigUri,
    /// `$du` destination URI (rw).
    Du,
    /// `$fu`, `$fU`, `$fd`, `$fn`, `$ft`.
    From(AddrPart),
    /// `$tu`, `$tU`, `$td`, `$tn`, `$tt`.
    To(AddrPart),
    /// `$si` source IP.
    SrcIp,
    /// `$sp` source port.
    SrcPort,
    /// `$snd(name)`/`$sndfrom(name)` (`to` false: the local socket) and
    /// `$sndto(name)` (the destination) of the message being sent, in
    /// `onsend_route` and topoh's event routes; `$null` elsewhere.
    Snd {
        /// `$sndto` rather than `$snd`/`$sndfrom`.
        to: bool,
        /// Which attribute.
        part: SndPart,
    },
    /// `$Ri` local IP the message arrived on.
    RcvIp,
    /// `$Rp` local port.
    RcvPort,
    /// `$pr` / `$proto`.
    Proto,
    /// `$rm` method (CSeq method for replies).
    Method,
    /// `$rs` reply status.
    Status,
    /// `$rr` reply reason.
    Reason,
    /// `$ci` Call-ID.
    CallId,
    /// `$cs` CSeq number.
    CSeq,
    /// `$ua` User-Agent.
    UserAgent,
    /// `$ct` Contact header.
    Contact,
    /// `$cT` Content-Type.
    ContentType,
    /// `$cl` Content-Length.
    ContentLength,
    /// `$mb` whole message.
    MsgBuf,
    /// `$ml`, `$msg(len)` message length.
    MsgLen,
    /// `$rb` body.
    Body,
    /// `$hdr(name)` (index selects among values; `[*]` joins them).
    Hdr(HdrSel),
    /// `$hdrc(name)` number of headers.
    HdrCount(HdrSel),
    /// `$avp(name)` (rw).
    Avp(String),
    /// `$cnt($avp(name))`: how many values the AVP has.
    CntAvp(String),
    /// `$cnt($xavp(name))`: how many XAVPs have this name.
    CntXavp(String),
    /// `$var(name)` (rw), by slot.
    Var(usize),
    /// `$shv(name)` (rw).
    Shv(SharedVars, String),
    /// `$rc` / `$retcode` / `$?`.
    RetCode,
    /// `$mf` message flags (rw).
    MsgFlags,
    /// `$bf` branch flags (rw).
    BranchFlags,
    /// `$Ts` current unix time.
    TimeSecs,
    /// `$TS` startup time.
    StartTime,
    /// `$pp`: the worker's id. Kamailio's workers are processes and `$pp`
    /// is the pid; siprouter's are threads and `$pp` is the thread's id
    /// (`ps -L`, `/proc/PID/task/`), which tells workers apart the same way.
    WorkerId,
    /// `$def(NAME)`, `$env(NAME)`: a value fixed at compile time.
    Const(Value<'static>),
    /// `$null`.
    Null,
    /// `$sel(cfg_get.group.var)`: a custom config variable.
    CfgGet(SharedVars, String),
    /// `$au`, `$ar`, `$ad`, `$aU`: from the credentials.
    Auth(&'static str),
    /// `$br` first branch URI.
    BranchUri,
    /// `$branch(uri|dst_uri|path|q|send_socket|count|flags|ruid|instance)`:
    /// the destination set's branches (`[n]` picks one, the first without).
    Branch(&'static str),
    /// `$conid` connection id.
    ConnId,
    /// `$Tf` / `$TV(s)` wall-clock seconds (not cached).
    TimeNow,
    /// A pseudo-variable exported by a module.
    Module(Arc<PvExport>, PvName),
}

/// An attribute of `$snd`/`$sndto`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SndPart {
    /// `ip`: the address as text.
    Ip,
    /// `af`: 2 (IPv4) or 10 (IPv6), Kamailio's numbers.
    Af,
    /// `port`.
    Port,
    /// `proto`: Kamailio's number (1 UDP, 2 TCP, 3 TLS, 4 SCTP, 5 WS, 6 WSS).
    Proto,
    /// `sproto`: the transport's name (`udp`, ...).
    SProto,
}

fn snd_value(to: bool, part: SndPart) -> Value<'static> {
    let Some(d) = state::send_dest() else {
        return Value::Null;
    };
    let addr = if to { Some(d.to) } else { d.local };
    match part {
        SndPart::Ip => addr.map_or(Value::Null, |a| Value::Str(a.ip().to_string().into())),
        SndPart::Port => addr.map_or(Value::Null, |a| Value::Int(a.port() as i64)),
        SndPart::Af => Value::Int(if d.to.is_ipv6() { 10 } else { 2 }),
        SndPart::Proto => Value::Int(i64::from(d.proto.number())),
        SndPart::SProto => Value::Str(d.proto.as_str().into()),
    }
}

impl fmt::Debug for CorePv {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CorePv::Module(e, n) => write!(f, "${}({:?})", e.name, n.inner),
            CorePv::Hdr(h) => write!(f, "$hdr({})", h.name),
            CorePv::Avp(n) => write!(f, "$avp({n})"),
            CorePv::Var(n) => write!(f, "$var(#{n})"),
            _ => f.write_str("$core-pv"),
        }
    }
}

/// What compiling a PV needs from the engine.
pub struct PvEnv<'a> {
    /// Module PV classes by name.
    pub module_pvs: &'a HashMap<String, Arc<PvExport>>,
    /// `$shv` storage.
    pub shv: &'a SharedVars,
    /// Custom config variables (`group.var = value`), by `group.var`.
    pub cfg: &'a SharedVars,
    /// Preprocessor defines (for `$def`).
    pub defines: &'a std::collections::BTreeMap<String, Option<String>>,
    /// Where the PV is written, when compiling the script (for `$cfg`):
    /// the file, the statement's line and the route block's name.
    pub here: std::cell::RefCell<Option<CfgHere>>,
}

/// A place in the configuration (`$cfg(file|name|line|route)`).
#[derive(Debug, Clone, Default)]
pub struct CfgHere {
    /// The configuration file (as given).
    pub file: String,
    /// The statement's line.
    pub line: u32,
    /// The route block's name (empty for an unnamed one).
    pub route: String,
}

/// The calling thread's id (`gettid`), looked up once per thread.
fn worker_id() -> i64 {
    thread_local! {
        // SAFETY: gettid has no preconditions.
        static TID: i64 = i64::from(unsafe { libc::gettid() });
    }
    TID.with(|t| *t)
}

fn addr_part(letter: char) -> Option<AddrPart> {
    Some(match letter {
        'u' => AddrPart::Uri,
        'U' => AddrPart::User,
        'd' => AddrPart::Host,
        'n' => AddrPart::Display,
        't' => AddrPart::Tag,
        _ => return None,
    })
}

/// Resolves a parsed PV to its class. Errors name the problem.
pub fn resolve(spec: &PvSpec, env: &PvEnv<'_>) -> Result<CorePv, String> {
    let inner = spec.inner.as_deref();
    let need_inner = |what: &str| -> Result<&str, String> {
        inner
            .filter(|s| !s.is_empty())
            .ok_or_else(|| format!("${what} needs a name: ${what}(name)"))
    };
    let c = spec.class.as_str();
    Ok(match c {
        "ru" => CorePv::Ru,
        "rU" => CorePv::RUser,
        "rd" => CorePv::RDomain,
        "rp" => CorePv::RPort,
        "rz" => CorePv::RScheme,
        "ou" => CorePv::OrigUri,
        "du" => CorePv::Du,
        "fu" | "fU" | "fd" | "fn" | "ft" => {
            CorePv::From(addr_part(c.chars().nth(1).unwrap_or('u')).unwrap_or(AddrPart::Uri))
        }
        "tu" | "tU" | "td" | "tn" | "tt" => {
            CorePv::To(addr_part(c.chars().nth(1).unwrap_or('u')).unwrap_or(AddrPart::Uri))
        }
        "si" => CorePv::SrcIp,
        "sp" => CorePv::SrcPort,
        "snd" | "sndfrom" | "sndto" => CorePv::Snd {
            to: c == "sndto",
            part: match need_inner(c)? {
                "ip" => SndPart::Ip,
                "af" => SndPart::Af,
                "port" => SndPart::Port,
                "proto" => SndPart::Proto,
                "sproto" => SndPart::SProto,
                "buf" | "len" => {
                    return Err(format!(
                        "${c}({}) is not built: the message being sent is not given to the script",
                        inner.unwrap_or("")
                    ))
                }
                other => return Err(format!("unknown ${c} attribute '{other}'")),
            },
        },
        "Ri" => CorePv::RcvIp,
        "Rp" => CorePv::RcvPort,
        "pr" | "proto" => CorePv::Proto,
        "rm" => CorePv::Method,
        "rs" => CorePv::Status,
        "rr" => CorePv::Reason,
        "ci" => CorePv::CallId,
        "cs" => CorePv::CSeq,
        "ua" => CorePv::UserAgent,
        "ct" => CorePv::Contact,
        "cT" => CorePv::ContentType,
        "cl" => CorePv::ContentLength,
        "mb" => CorePv::MsgBuf,
        "ml" => CorePv::MsgLen,
        "rb" => CorePv::Body,
        "msg" => match inner {
            Some("len") => CorePv::MsgLen,
            Some("buf") => CorePv::MsgBuf,
            Some("body") => CorePv::Body,
            other => return Err(format!("unknown $msg attribute '{}'", other.unwrap_or(""))),
        },
        "hdr" => CorePv::Hdr(HdrSel::new(need_inner("hdr")?)),
        "hdrc" => CorePv::HdrCount(HdrSel::new(need_inner("hdrc")?)),
        "avp" => CorePv::Avp(need_inner("avp")?.trim_start_matches("s:").to_string()),
        "cnt" => cnt_target(need_inner("cnt")?)?,
        "var" | "vz" | "vn" => CorePv::Var(state::var_slot(need_inner("var")?)),
        "shv" => CorePv::Shv(env.shv.clone(), need_inner("shv")?.to_string()),
        "rc" | "retcode" | "?" => CorePv::RetCode,
        "mf" | "mF" => CorePv::MsgFlags,
        "bf" | "bF" => CorePv::BranchFlags,
        "Ts" => CorePv::TimeSecs,
        "TS" => CorePv::StartTime,
        "pp" => CorePv::WorkerId,
        "Tf" => CorePv::TimeNow,
        "TV" => CorePv::TimeNow,
        "def" | "defn" => {
            let n = need_inner("def")?;
            match env.defines.get(n) {
                Some(Some(v)) if c == "defn" => {
                    CorePv::Const(Value::Int(sr_sdk::value::str_to_int(v)))
                }
                Some(Some(v)) => CorePv::Const(Value::Str(v.trim_matches('"').to_string().into())),
                Some(None) => CorePv::Const(Value::Int(1)),
                None => CorePv::Null,
            }
        }
        "cfg" => {
            let here = env.here.borrow().clone();
            match (need_inner("cfg")?, here) {
                ("line", Some(h)) => CorePv::Const(Value::Int(i64::from(h.line))),
                ("name" | "file", Some(h)) => CorePv::Const(Value::Str(h.file.into())),
                ("route", Some(h)) if h.route.is_empty() => CorePv::Null,
                ("route", Some(h)) => CorePv::Const(Value::Str(h.route.into())),
                ("line" | "name" | "file" | "route", None) => CorePv::Null,
                (other, _) => return Err(format!("unknown $cfg({other})")),
            }
        }
        "env" => {
            let n = need_inner("env")?;
            match std::env::var(n) {
                Ok(v) => CorePv::Const(Value::Str(v.into())),
                Err(_) => CorePv::Null,
            }
        }
        "null" => CorePv::Null,
        "sel" => {
            let sel = need_inner("sel")?;
            match sel.strip_prefix("cfg_get.") {
                Some(key) if env.cfg.read().is_ok_and(|m| m.contains_key(key)) => {
                    CorePv::CfgGet(env.cfg.clone(), key.to_string())
                }
                Some(key) => {
                    return Err(format!(
                        "no config variable '{key}' (declare it as {key} = value)"
                    ))
                }
                None => {
                    return Err(format!(
                    "selects are not supported ('$sel({sel})'); only $sel(cfg_get.group.var) is"
                ))
                }
            }
        }
        "au" => CorePv::Auth("user"),
        "ar" => CorePv::Auth("realm"),
        "ad" => CorePv::Auth("domain"),
        "aU" => CorePv::Auth("username"),
        "adu" => CorePv::Auth("uri"),
        "aa" => CorePv::Auth("algorithm"),
        "br" => CorePv::BranchUri,
        "branch" => {
            let f = need_inner("branch")?;
            CorePv::Branch(match f {
                "uri" => "uri",
                "dst_uri" => "dst_uri",
                "path" => "path",
                "q" => "q",
                "send_socket" => "send_socket",
                "count" => "count",
                "flags" => "flags",
                "ruid" => "ruid",
                "instance" => "instance",
                "location_ua" => "location_ua",
                other => return Err(format!("unknown $branch({other})")),
            })
        }
        "conid" => CorePv::ConnId,
        other => match env.module_pvs.get(other) {
            Some(e) => {
                let name = PvName {
                    inner: spec.inner.clone(),
                    index: match &spec.index {
                        Some(PvIndex::Int(i)) => Some(*i),
                        Some(PvIndex::All) => Some(i64::MIN),
                        _ => None,
                    },
                };
                if let Some(check) = &e.check {
                    check(&name).map_err(|m| {
                        format!(
                            "invalid ${other}({}): {m}",
                            name.inner.as_deref().unwrap_or("")
                        )
                    })?;
                }
                CorePv::Module(e.clone(), name)
            }
            None => return Err(format!("unknown pseudo-variable '${other}'")),
        },
    })
}

/// `$cnt(...)`'s argument: `$avp(name)`, `$(avp(name)[*])` or
/// `$xavp(name)` (Kamailio's pv module counts these).
fn cnt_target(arg: &str) -> Result<CorePv, String> {
    let a = arg.trim();
    let a = a.strip_prefix('$').unwrap_or(a);
    let a = a
        .strip_prefix('(')
        .and_then(|x| x.strip_suffix(')'))
        .map(|x| x.strip_suffix("[*]").unwrap_or(x))
        .unwrap_or(a);
    let inner = |class: &str| {
        a.strip_prefix(class)
            .and_then(|x| x.strip_prefix('('))
            .and_then(|x| x.strip_suffix(')'))
            .filter(|x| !x.is_empty() && !x.contains(['(', ')', '[']))
    };
    if let Some(n) = inner("avp") {
        return Ok(CorePv::CntAvp(n.trim_start_matches("s:").to_string()));
    }
    if let Some(n) = inner("xavp") {
        if !n.contains("=>") {
            return Ok(CorePv::CntXavp(n.to_string()));
        }
    }
    Err(format!(
        "$cnt({arg}): only $avp(name) and $xavp(name) can be counted"
    ))
}

fn s(v: impl Into<String>) -> Value<'static> {
    Value::Str(v.into().into())
}

fn opt_s(v: Option<impl Into<String>>) -> Value<'static> {
    v.map_or(Value::Null, s)
}

fn addr_value(na: Result<NameAddr<'_>, sip_msg::ParseError>, part: AddrPart) -> Value<'static> {
    let Ok(na) = na else { return Value::Null };
    match part {
        AddrPart::Uri => s(na.uri_str),
        AddrPart::User => opt_s(na.uri.user),
        AddrPart::Host => s(na.uri.host_str),
        // As written: quotes and escapes kept (Kamailio).
        AddrPart::Display => opt_s(na.display),
        AddrPart::Tag => opt_s(na.tag()),
    }
}

/// The current Request-URI, parsed: the one parsed with the message when
/// the script has not rewritten it (no second parse), else the new one.
fn ruri_uri(m: &SipMsg) -> Option<sip_msg::Uri<'_>> {
    match &m.new_uri {
        None => m.msg().request_uri().copied(),
        Some(u) => sip_msg::Uri::parse(u).ok(),
    }
}

/// Index semantics for multi-valued PVs: `None` first, `n` n-th, negative
/// from the end, `i64::MIN` all (joined with `,`).
fn pick(vals: &[&str], index: Option<i64>) -> Option<String> {
    match index {
        None => vals.first().map(|v| v.to_string()),
        Some(i64::MIN) => (!vals.is_empty()).then(|| vals.join(",")),
        Some(i) if i < 0 => {
            let k = vals.len() as i64 + i;
            (k >= 0).then(|| vals[k as usize].to_string())
        }
        Some(i) => vals.get(i as usize).map(|v| v.to_string()),
    }
}

impl CorePv {
    /// Reads the value for this message. `index` is the compiled `[n]`.
    pub fn get(&self, ctx: &mut Ctx<'_>, index: Option<i64>) -> Value<'static> {
        let m = &*ctx.msg;
        let msg = m.msg();
        match self {
            // As Kamailio: `$null` when the Request-URI does not parse
            // (e.g. rewritten to `sip:tel:+1`).
            CorePv::Ru => {
                if m.is_request() && ruri_uri(m).is_some() {
                    s(m.ruri())
                } else {
                    Value::Null
                }
            }
            CorePv::RUser => ruri_uri(m)
                .and_then(|u| u.user.map(s))
                .unwrap_or(Value::Null),
            CorePv::RDomain => ruri_uri(m).map_or(Value::Null, |u| s(u.host_str)),
            // No port: 5060, as Kamailio gives it.
            CorePv::RPort => ruri_uri(m).map_or(Value::Null, |u| {
                Value::Int(i64::from(u.port.unwrap_or(5060)))
            }),
            CorePv::RScheme => ruri_uri(m).map_or(Value::Null, |u| {
                s(u.raw.split(':').next().unwrap_or("").to_ascii_lowercase())
            }),
            CorePv::OrigUri => opt_s(msg.request_uri().map(|u| u.raw)),
            CorePv::Du => opt_s(m.dst_uri.clone()),
            CorePv::From(p) => addr_value(msg.from(), *p),
            CorePv::To(p) => addr_value(msg.to(), *p),
            CorePv::SrcIp => s(m.rcv.src.ip().to_string()),
            CorePv::SrcPort => Value::Int(m.rcv.src.port() as i64),
            CorePv::Snd { to, part } => snd_value(*to, *part),
            CorePv::RcvIp => s(m.rcv.dst.ip().to_string()),
            CorePv::RcvPort => Value::Int(m.rcv.dst.port() as i64),
            CorePv::Proto => s(m.rcv.proto.as_str()),
            CorePv::Method => msg.txn_method().map_or(Value::Null, |x| s(x.as_str())),
            CorePv::Status => m
                .ext
                .get::<sr_sdk::NewStatus>()
                .map(|n| n.code)
                .or_else(|| msg.status())
                .map_or(Value::Null, |c| Value::Int(c as i64)),
            CorePv::Reason => opt_s(msg.reason()),
            CorePv::CallId => opt_s(msg.value(HeaderName::CallId)),
            CorePv::CSeq => msg.cseq().map_or(Value::Null, |c| Value::Int(c.seq as i64)),
            CorePv::UserAgent => opt_s(msg.user_agent()),
            CorePv::Contact => opt_s(msg.value(HeaderName::Contact)),
            CorePv::ContentType => opt_s(msg.value(HeaderName::ContentType)),
            CorePv::ContentLength => Value::Int(msg.body().len() as i64),
            CorePv::MsgBuf => s(String::from_utf8_lossy(msg.raw()).into_owned()),
            CorePv::MsgLen => Value::Int(msg.raw().len() as i64),
            CorePv::Body => s(String::from_utf8_lossy(msg.body()).into_owned()),
            CorePv::Hdr(h) => opt_s(pick(&h.values(msg), index)),
            CorePv::HdrCount(h) => Value::Int(h.values(msg).len() as i64),
            CorePv::CntAvp(n) => Value::Int(m.avps.all(n).count() as i64),
            CorePv::CntXavp(n) => Value::Int(m.xavps.count(n) as i64),
            CorePv::Avp(n) => match index {
                Some(i64::MIN) => {
                    if m.avps.all(n).next().is_none() {
                        return Value::Null;
                    }
                    // Kamailio's separator (checked by
                    // kamailio_parity_avpops.rs), written only after
                    // something: empty values before the first other
                    // one leave no trace, as in Kamailio.
                    let mut out = String::new();
                    for v in m.avps.all(n) {
                        if !out.is_empty() {
                            out.push_str(", ");
                        }
                        out.push_str(&v.as_str());
                    }
                    s(out)
                }
                Some(i) if i >= 0 => m.avps.get(n, i as usize).cloned().unwrap_or(Value::Null),
                _ => m.avps.get(n, 0).cloned().unwrap_or(Value::Null),
            },
            CorePv::Var(slot) => state::var_get(*slot),
            // As Kamailio's: a shared variable the script names exists
            // from the start, holding the integer 0.
            CorePv::Shv(map, n) => map
                .read()
                .ok()
                .and_then(|g| g.get(n).cloned())
                .unwrap_or(Value::Int(0)),
            CorePv::RetCode => Value::Int(state::last_rc() as i64),
            CorePv::MsgFlags => Value::Int(m.flags as i64),
            CorePv::BranchFlags => Value::Int(m.bflags as i64),
            CorePv::TimeSecs => Value::Int(state::cached_time()),
            CorePv::StartTime => Value::Int(state::start_time()),
            CorePv::WorkerId => Value::Int(worker_id()),
            CorePv::TimeNow => Value::Int(state::now_secs()),
            CorePv::Const(v) => v.clone(),
            CorePv::Null => Value::Null,
            CorePv::CfgGet(map, key) => map
                .read()
                .ok()
                .and_then(|g| g.get(key).cloned())
                .unwrap_or(Value::Null),
            CorePv::Auth(which) => auth_value(msg, which),
            CorePv::BranchUri => opt_s(m.branches.first().map(|b| b.uri.clone())),
            // (Kamailio gives no count for an empty destination set.)
            CorePv::Branch("count") if m.branches.is_empty() => Value::Null,
            CorePv::Branch("count") => Value::Int(m.branches.len() as i64),
            CorePv::Branch(field) => {
                let i = match index {
                    None => 0,
                    Some(i) if i < 0 => m.branches.len() as i64 + i,
                    Some(i) => i,
                };
                let Some(b) = usize::try_from(i).ok().and_then(|i| m.branches.get(i)) else {
                    return Value::Null;
                };
                match *field {
                    "uri" => s(b.uri.clone()),
                    "dst_uri" => opt_s(b.dst_uri.clone()),
                    "path" => opt_s(b.path.clone()),
                    // Thousandths; `$null` when the branch has none.
                    "q" => b.q.map_or(Value::Null, |q| Value::Int(i64::from(q))),
                    "send_socket" => opt_s(b.socket.clone()),
                    "flags" => Value::Int(i64::from(b.flags)),
                    "ruid" => opt_s(b.ruid.clone()),
                    "location_ua" => opt_s(b.location_ua.clone()),
                    _ => opt_s(b.instance.clone()),
                }
            }
            CorePv::ConnId => Value::Int(m.rcv.conn_id as i64),
            CorePv::Module(e, name) => {
                let mut name = name.clone();
                if index.is_some() {
                    name.index = index;
                }
                (e.get)(ctx, &name)
            }
        }
    }

    /// Whether assignment is allowed.
    pub fn writable(&self) -> bool {
        match self {
            CorePv::Ru
            | CorePv::RUser
            | CorePv::RDomain
            | CorePv::RPort
            | CorePv::Du
            | CorePv::Avp(_)
            | CorePv::Var(_)
            | CorePv::Shv(..)
            | CorePv::MsgFlags
            | CorePv::BranchFlags => true,
            // (Kamailio takes a count, ruid or location_ua and does
            // nothing with it.)
            CorePv::Branch(_) => true,
            CorePv::Module(e, _) => e.set.is_some(),
            _ => false,
        }
    }

    /// Assigns a value at `index` (`i64::MIN` for `[*]`: `$(avp(x)[*]) = v`
    /// replaces all).
    pub fn set(&self, ctx: &mut Ctx<'_>, v: Value<'_>, index: Option<i64>) -> Result<(), String> {
        let all = index == Some(i64::MIN);
        let m = &mut *ctx.msg;
        match self {
            // Writing these makes the Request-URI usable for forking again
            // (Kamailio's `ruri_mark_new`), even with the same value.
            CorePv::Ru => {
                m.new_uri = match v {
                    Value::Null => None,
                    v => Some(v.as_str().into_owned()),
                };
                m.renew_ruri();
            }
            CorePv::RUser | CorePv::RDomain | CorePv::RPort => {
                let cur = m.ruri().to_string();
                let new = rewrite_ruri(&cur, self, &v.as_str())?;
                m.new_uri = Some(new);
                m.renew_ruri();
            }
            CorePv::Du => {
                m.dst_uri = match v {
                    Value::Null => None,
                    v => Some(v.as_str().into_owned()),
                };
                m.renew_ruri();
            }
            // As Kamailio 5.6's pv_set_avp does it: an index written is not
            // used (a value is added, `$null` removes the newest); `[*]`
            // replaces all (`kamailio_parity_pv_more`).
            CorePv::Avp(n) => match v {
                Value::Null if all => m.avps.remove_all(n),
                Value::Null => m.avps.remove_newest(n),
                v => {
                    if all {
                        m.avps.remove_all(n);
                    }
                    m.avps.push(n, v.into_owned());
                }
            },
            CorePv::Var(slot) => state::var_set(
                *slot,
                match v {
                    Value::Null => Value::Int(0),
                    v => v.into_owned(),
                },
            ),
            CorePv::Shv(map, n) => {
                let mut g = map.write().map_err(|_| "shared variables unavailable")?;
                match v {
                    Value::Null => {
                        g.remove(n);
                    }
                    v => {
                        g.insert(n.clone(), v.into_owned());
                    }
                }
            }
            CorePv::MsgFlags => m.flags = v.as_int() as u32,
            CorePv::BranchFlags => m.bflags = v.as_int() as u32,
            CorePv::Branch(field) => return super::pv_branch::set(m, field, v, index),
            CorePv::Module(e, name) => match &e.set {
                Some(set) => {
                    // The index written, as reading passes it.
                    let mut name = name.clone();
                    if index.is_some() {
                        name.index = index;
                    }
                    return set(ctx, &name, v);
                }
                None => return Err(format!("${} is read-only", e.name)),
            },
            _ => return Err("pseudo-variable is read-only".to_string()),
        }
        Ok(())
    }
}

fn auth_value(msg: &Message<'_>, which: &str) -> Value<'static> {
    let creds = msg
        .auth_values(HeaderName::Authorization)
        .chain(msg.auth_values(HeaderName::ProxyAuthorization))
        .flatten()
        .next();
    let Some(c) = creds else { return Value::Null };
    let user = c.get("username").map(|u| u.into_owned());
    match which {
        "username" => opt_s(user),
        "realm" => opt_s(c.get("realm").map(|r| r.into_owned())),
        // Empty when the credentials do not hold them (Kamailio).
        "uri" | "algorithm" => s(c.get(which).map(|r| r.into_owned()).unwrap_or_default()),
        // As Kamailio's digest parser: `$au` the user, `$ad` the domain
        // (empty without one), `$aU` the whole username.
        "user" => opt_s(user.map(|u| sr_sdk::text::split_digest_username(&u).0.to_string())),
        "domain" => s(user
            .as_deref()
            .and_then(|u| sr_sdk::text::split_digest_username(u).1)
            .unwrap_or_default()),
        _ => Value::Null,
    }
}

/// Rewrites one part of a SIP URI (user, host or port).
pub fn rewrite_ruri(cur: &str, part: &CorePv, val: &str) -> Result<String, String> {
    let u = sip_msg::Uri::parse(cur).map_err(|e| format!("cannot rewrite R-URI: {e}"))?;
    let scheme = &cur[..cur.find(':').unwrap_or(0)];
    let mut user = u.user.map(str::to_string);
    let mut host = u.host_str.to_string();
    let mut port = u.port.map(|p| p.to_string());
    match part {
        CorePv::RUser => user = (!val.is_empty()).then(|| val.to_string()),
        CorePv::RDomain => host = val.to_string(),
        CorePv::RPort => port = (!val.is_empty() && val != "0").then(|| val.to_string()),
        _ => {}
    }
    Ok(build_uri(
        scheme,
        user.as_deref(),
        u.password,
        &host,
        port.as_deref(),
        u.params,
        u.headers,
    ))
}

/// Assembles a SIP URI from parts.
pub fn build_uri(
    scheme: &str,
    user: Option<&str>,
    password: Option<&str>,
    host: &str,
    port: Option<&str>,
    params: &str,
    headers: Option<&str>,
) -> String {
    let mut out = String::with_capacity(64);
    out.push_str(scheme);
    out.push(':');
    if let Some(u) = user {
        out.push_str(u);
        if let Some(p) = password {
            out.push(':');
            out.push_str(p);
        }
        out.push('@');
    }
    out.push_str(host);
    if let Some(p) = port {
        out.push(':');
        out.push_str(p);
    }
    if !params.is_empty() {
        out.push(';');
        out.push_str(params);
    }
    if let Some(h) = headers {
        out.push('?');
        out.push_str(h);
    }
    out
}
