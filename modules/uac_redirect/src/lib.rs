//! # uac_redirect: redirects become branches
//!
//! Kamailio's `uac_redirect` module. In failure_route, after a branch of
//! the round that failed got a 3xx reply, `get_redirects(max)` turns the
//! reply's Contacts into new branches (the destination set) for the next
//! `t_relay()`: filtered by regular expressions, sorted by q (lowest
//! first, as Kamailio appends them), at most `max` in all and per reply.
#![forbid(unsafe_code)]

pub mod filter;
pub mod sort;

use filter::{Filters, Kind, Reset};
use sr_mod_tm::{TmApi, TM_API};
use sr_sdk::prelude::*;
use sr_sdk::sip_msg::headers::ContactValue;
use sr_sdk::sip_msg::scan::CommaSplit;
use std::sync::atomic::AtomicI64;
use std::sync::{Arc, OnceLock, RwLock};

/// The module's state.
struct Redirect {
    deny_filter: Arc<RwLock<String>>,
    accept_filter: Arc<RwLock<String>>,
    default_filter: Arc<RwLock<String>>,
    acc_function: Arc<RwLock<String>>,
    acc_db_table: Arc<RwLock<String>>,
    bflags: Arc<AtomicI64>,
    flags_hdr_mode: Arc<AtomicI64>,
    default_q: Arc<AtomicI64>,
    defaults: OnceLock<Filters>,
    tm: OnceLock<Arc<TmApi>>,
}

/// `get_redirects`' limits: in all and per reply (0: no limit).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Contacts added in all.
    pub total: u8,
    /// Contacts taken from one reply.
    pub per_branch: u8,
}

/// One limit: `*` (none) or a number up to 255.
fn limit(s: &str) -> Result<u8, String> {
    if s == "*" {
        return Ok(0);
    }
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("get_redirects: bad number <{s}>"));
    }
    match s.parse::<u32>() {
        Ok(n) if n <= 255 => Ok(n as u8),
        _ => Err(format!("get_redirects: number too big <{s}> (max=255)")),
    }
}

/// Parses `max` or `max:max_per_reply`.
pub fn parse_limits(s: &str) -> Result<Limits, String> {
    let (t, b) = match s.split_once(':') {
        Some((t, b)) => (t, limit(b)?),
        None => (s, 0),
    };
    Ok(Limits {
        total: limit(t)?,
        per_branch: b,
    })
}

impl Redirect {
    fn filters<'m>(&self, msg: &'m mut SipMsg) -> &'m mut Filters {
        if msg.ext.get::<Filters>().is_none() {
            let f = self
                .defaults
                .get()
                .cloned()
                .unwrap_or_else(|| Filters::new(None, None, true));
            msg.ext.insert(f);
        }
        msg.ext
            .get_mut::<Filters>()
            .unwrap_or_else(|| unreachable!("inserted above"))
    }

    fn init(&self, core: &dyn Core) -> Result<(), String> {
        let tm = bind::<TmApi>(core, TM_API)
            .ok_or("uac_redirect needs the tm module (load tm before uac_redirect)")?;
        let _ = self.tm.set(tm);
        let default_accept = match params::get_str(&self.default_filter)
            .to_ascii_lowercase()
            .as_str()
        {
            "" | "accept" => true,
            "deny" => false,
            other => {
                // As Kamailio: logged, the default stays accept.
                lm_err!("uac_redirect: unknown default filter <{other}>");
                true
            }
        };
        let accept = filter::compile(&params::get_str(&self.accept_filter))
            .map_err(|e| format!("uac_redirect: accept_filter: {e}"))?;
        let deny = filter::compile(&params::get_str(&self.deny_filter))
            .map_err(|e| format!("uac_redirect: deny_filter: {e}"))?;
        let _ = self
            .defaults
            .set(Filters::new(accept, deny, default_accept));
        Ok(())
    }

    /// `get_redirects`: 1 when contacts were added, -1 when none.
    fn get(&self, ctx: &mut Ctx<'_>, lim: Limits) -> i32 {
        let Some(tm) = self.tm.get() else {
            return -1;
        };
        let branches = tm.failed_branches(ctx);
        let filters = self.filters(ctx.msg).clone();
        // The filters the script set last for this message only.
        ctx.msg.ext.remove::<Filters>();
        let default_q = params::get_int(&self.default_q).clamp(0, 1000) as u16;
        let bflags = params::get_int(&self.bflags) as u32;
        let hdr_mode = params::get_int(&self.flags_hdr_mode);
        let (maxt, maxb) = (i64::from(lim.total), i64::from(lim.per_branch));
        let mut added: i64 = 0;
        for (code, reply) in branches {
            if !(300..=399).contains(&code) {
                continue;
            }
            let max = if maxb == 0 {
                if maxt != 0 {
                    maxt - added
                } else {
                    -1
                }
            } else if maxt != 0 {
                (maxt - added).min(maxb)
            } else {
                maxb
            };
            if max == 0 {
                continue;
            }
            let Some(bytes) = reply else {
                continue;
            };
            let Ok(m) = sr_sdk::sip_msg::Message::parse(&bytes) else {
                lm_err!("uac_redirect: get contact from a branch's reply failed");
                continue;
            };
            // Kamailio's parser lists each header's contacts last first,
            // which is the order equal q values keep.
            let mut contacts = Vec::new();
            let mut bad = false;
            for h in m.headers_named(HeaderName::Contact) {
                let values: Vec<&str> = CommaSplit::new(h.value).collect();
                for v in values.into_iter().rev() {
                    match ContactValue::parse(v) {
                        Ok(ContactValue::Addr(a)) => contacts.push(a),
                        Ok(ContactValue::Star) => {}
                        Err(_) => bad = true,
                    }
                }
            }
            if bad {
                lm_err!("uac_redirect: failed to parse Contact body");
                continue;
            }
            let mut entries = Vec::new();
            for c in &contacts {
                if !filters.allows(c.uri_str) {
                    continue;
                }
                let q = match c.param("q") {
                    None | Some(None) | Some(Some("")) => default_q,
                    Some(Some(v)) => match sr_sdk::sip_msg::headers::parse_qvalue(v) {
                        Some(q) => q,
                        None => {
                            lm_err!("uac_redirect: invalid q param");
                            continue;
                        }
                    },
                };
                let flags = match (hdr_mode, c.param("flags").flatten().map(str::parse::<u32>)) {
                    (1, Some(Ok(f))) => f,
                    (2, Some(Ok(f))) => f | bflags,
                    _ => bflags,
                };
                entries.push((q, c.uri_str.to_string(), flags));
            }
            let chosen = sort::by_q(entries, max);
            let n = chosen.len() as i64;
            for (q, uri, flags) in chosen {
                ctx.msg.branches.push(Branch {
                    uri,
                    q: Some(q),
                    flags,
                    ..Default::default()
                });
            }
            added += n;
        }
        if added > 0 {
            1
        } else {
            -1
        }
    }
}

fn filter_fixup(env: &dyn sr_sdk::fixup::FixupEnv, i: usize, a: &Arg) -> Result<Fixed, String> {
    let _ = env;
    let text = a.text().to_string();
    if i == 0 {
        let re = filter::compile(&text).map_err(|e| format!("cannot init filter: {e}"))?;
        return Ok(Fixed::Custom(Arc::new(re)));
    }
    Ok(Fixed::Custom(Arc::new(Reset::parse(&text)?)))
}

/// The module definition.
pub fn module() -> ModuleDef {
    let r = Arc::new(Redirect {
        deny_filter: params::str_cell(""),
        accept_filter: params::str_cell(""),
        default_filter: params::str_cell(""),
        acc_function: params::str_cell("acc_log_request"),
        acc_db_table: params::str_cell("acc"),
        bflags: params::int_cell(0),
        flags_hdr_mode: params::int_cell(0),
        default_q: params::int_cell(10),
        defaults: OnceLock::new(),
        tm: OnceLock::new(),
    });
    let mut def = ModuleDef::new("uac_redirect");
    for (name, cell) in [
        ("deny_filter", &r.deny_filter),
        ("accept_filter", &r.accept_filter),
        ("default_filter", &r.default_filter),
        ("acc_function", &r.acc_function),
        ("acc_db_table", &r.acc_db_table),
    ] {
        def = def.param(name, ParamKind::Str, params::string(cell));
    }
    for (name, cell) in [
        ("bflags", &r.bflags),
        ("flags_hdr_mode", &r.flags_hdr_mode),
        ("default_q_value", &r.default_q),
    ] {
        def = def.param(name, ParamKind::Int, params::int(cell));
    }
    let init = r.clone();
    def = def.on_init(move |core| init.init(core));
    for (name, kind) in [
        ("set_deny_filter", Kind::Deny),
        ("set_accept_filter", Kind::Accept),
    ] {
        let s = r.clone();
        def = def.cmd(
            name,
            2,
            RouteType::FAILURE,
            Some(fixup::f(filter_fixup)),
            move |ctx, p| {
                let re = p[0].custom::<Option<regex::Regex>>().cloned().flatten();
                let reset = p[1].custom::<Reset>().copied().unwrap_or_default();
                if s.filters(ctx.msg).add(kind, re, reset) {
                    1
                } else {
                    lm_err!("uac_redirect: too many filters");
                    -1
                }
            },
        );
    }
    let s = r.clone();
    def = def.cmd(
        "get_redirects",
        1,
        RouteType::FAILURE,
        Some(fixup::f(|_env, _i, a| {
            parse_limits(a.text().trim()).map(|l| Fixed::Custom(Arc::new(l)))
        })),
        move |ctx, p| match p[0].custom::<Limits>() {
            Some(l) => s.get(ctx, *l),
            None => -1,
        },
    );
    def.cmd(
        "get_redirects",
        2,
        RouteType::FAILURE,
        Some(fixup::f(|_env, i, a| {
            if i == 1 {
                return Err(
                    "get_redirects(max, reason): accounting redirects through acc is not built; use get_redirects(max)"
                        .into(),
                );
            }
            parse_limits(a.text().trim()).map(|l| Fixed::Custom(Arc::new(l)))
        })),
        |_ctx, _p| -1,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits() {
        assert_eq!(
            parse_limits("*").unwrap(),
            Limits {
                total: 0,
                per_branch: 0
            }
        );
        assert_eq!(
            parse_limits("3:1").unwrap(),
            Limits {
                total: 3,
                per_branch: 1
            }
        );
        assert_eq!(parse_limits("*:2").unwrap().per_branch, 2);
        assert!(parse_limits("256").is_err());
        assert!(parse_limits("x").is_err());
        assert!(parse_limits("").is_err());
    }
}
