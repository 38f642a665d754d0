//! # alias_db: user aliases from a database table
//!
//! Kamailio's `alias_db` module: `alias_db_lookup(table[, flags])` turns
//! the Request-URI's user (and domain) from an alias into the user it
//! stands for, read from the table (`dbaliases` by Kamailio's tools) on
//! each call; `alias_db_find(table, input, output[, flags])` does the same
//! from a pseudo-variable into another. Flags: `d` user only, `u` user and
//! domain, `r` the reverse (user → alias).
#![forbid(unsafe_code)]

use sr_sdk::db::{Cond, DbPool, DbValue};
use sr_sdk::fixup::Assign;
use sr_sdk::prelude::*;
use sr_sdk::sip_msg::Uri;
use std::sync::atomic::AtomicI64;
use std::sync::{Arc, OnceLock, RwLock};

/// Reverse lookup (user → alias).
const REVERSE: u8 = 1;
/// Match the domain too.
const DOMAIN: u8 = 2;

struct AliasDb {
    db_url: Arc<RwLock<String>>,
    user_col: Arc<RwLock<String>>,
    domain_col: Arc<RwLock<String>>,
    alias_user_col: Arc<RwLock<String>>,
    alias_domain_col: Arc<RwLock<String>>,
    use_domain: Arc<AtomicI64>,
    domain_prefix: Arc<RwLock<String>>,
    append_branches: Arc<AtomicI64>,
    pool: OnceLock<DbPool>,
}

/// Reads a flag string: the letters apply left to right over the
/// `use_domain` default (`Err` names an unknown letter).
fn parse_flags(s: &str) -> Result<(Option<bool>, bool), char> {
    let mut domain = None;
    let mut reverse = false;
    for c in s.chars() {
        match c.to_ascii_lowercase() {
            'd' => domain = Some(false),
            'u' => domain = Some(true),
            'r' => reverse = true,
            _ => return Err(c),
        }
    }
    Ok((domain, reverse))
}

impl AliasDb {
    /// The flags for a call: the fixed letters over `use_domain`.
    fn flags(&self, f: Option<&str>) -> u8 {
        let default = if params::get_int(&self.use_domain) != 0 {
            DOMAIN
        } else {
            0
        };
        let Some(f) = f else {
            return default;
        };
        match parse_flags(f) {
            Ok((domain, reverse)) => {
                let d = match domain {
                    Some(true) => DOMAIN,
                    Some(false) => 0,
                    None => default,
                };
                d | if reverse { REVERSE } else { 0 }
            }
            Err(_) => default,
        }
    }

    /// The URIs `uri` is an alias of (or, reversed, the aliases of it):
    /// `sip:user@domain` per row, in the table's order; `None` when none
    /// (or the first has no user).
    fn find(&self, table: &str, uri: &str, flags: u8) -> Option<Vec<String>> {
        let u = Uri::parse(uri).ok()?;
        let user = u.user.unwrap_or("").to_string();
        let host = u.host_str.to_string();
        let (key_user, key_dom, out_user, out_dom) = if flags & REVERSE != 0 {
            (
                params::get_str(&self.user_col),
                params::get_str(&self.domain_col),
                params::get_str(&self.alias_user_col),
                params::get_str(&self.alias_domain_col),
            )
        } else {
            (
                params::get_str(&self.alias_user_col),
                params::get_str(&self.alias_domain_col),
                params::get_str(&self.user_col),
                params::get_str(&self.domain_col),
            )
        };
        let mut conds = vec![Cond::eq(&key_user, DbValue::str(user))];
        if flags & DOMAIN != 0 {
            // Stripped in both directions, as Kamailio does.
            let prefix = params::get_str(&self.domain_prefix);
            let host = sr_sdk::text::strip_domain_prefix(&host, &prefix);
            conds.push(Cond::eq(&key_dom, DbValue::str(host)));
        }
        let rows = self
            .pool
            .get()?
            .with(|c| c.query(table, &conds, &[out_user.as_str(), out_dom.as_str()], None))
            .map_err(|e| lm_err!("alias_db: {table}: {e}"))
            .ok()?;
        if rows
            .rows
            .first()
            .and_then(|r| r.first())
            .is_none_or(DbValue::is_null)
        {
            return None;
        }
        Some(
            rows.rows
                .iter()
                .map(|r| {
                    let s = |i: usize| r.get(i).and_then(DbValue::as_string).unwrap_or_default();
                    format!("sip:{}@{}", s(0), s(1))
                })
                .collect(),
        )
    }
}

fn flags_fixup() -> fixup::FixupFn {
    Arc::new(|env, i, arg| {
        let f = fixup::const_str(env, i, arg)?;
        let text = f.as_const_str().unwrap_or_default().to_string();
        parse_flags(&text).map_err(|c| format!("alias_db: unsupported flag '{c}'"))?;
        Ok(Fixed::Custom(Arc::new(FlagText(text))))
    })
}

/// A flag string, checked by the fixup.
#[derive(Debug)]
struct FlagText(String);

fn flag_text(p: Option<&Fixed>) -> Option<&str> {
    p.and_then(|f| f.custom::<FlagText>()).map(|f| f.0.as_str())
}

/// The module definition.
pub fn module() -> ModuleDef {
    let s = Arc::new(AliasDb {
        db_url: params::str_cell("mysql://kamailioro:kamailioro@localhost/kamailio"),
        user_col: params::str_cell("username"),
        domain_col: params::str_cell("domain"),
        alias_user_col: params::str_cell("alias_username"),
        alias_domain_col: params::str_cell("alias_domain"),
        use_domain: params::int_cell(0),
        domain_prefix: params::str_cell(""),
        append_branches: params::int_cell(0),
        pool: OnceLock::new(),
    });
    let init = s.clone();
    let mut def = ModuleDef::new("alias_db")
        .param("use_domain", ParamKind::Int, params::int(&s.use_domain))
        .param(
            "append_branches",
            ParamKind::Int,
            params::int(&s.append_branches),
        )
        .on_init(move |core| {
            let url = params::get_str(&init.db_url);
            let pool = DbPool::open(core, &url).map_err(|e| format!("alias_db: {e}"))?;
            let _ = init.pool.set(pool);
            Ok(())
        });
    for (name, cell) in [
        ("db_url", &s.db_url),
        ("user_column", &s.user_col),
        ("domain_column", &s.domain_col),
        ("alias_user_column", &s.alias_user_col),
        ("alias_domain_column", &s.alias_domain_col),
        ("domain_prefix", &s.domain_prefix),
    ] {
        def = def.param(name, ParamKind::Str, params::string(cell));
    }
    let lookup_rt = RouteType::REQUEST | RouteType::FAILURE;
    for nargs in [1usize, 2] {
        let r = s.clone();
        let fl = flags_fixup();
        let fix: fixup::FixupFn = Arc::new(move |env, i, arg| {
            if i == 0 {
                fixup::spve(env, i, arg)
            } else {
                fl(env, i, arg)
            }
        });
        def = def.cmd(
            "alias_db_lookup",
            nargs,
            lookup_rt,
            Some(fix),
            move |ctx, p| {
                let table = p[0].str(ctx).into_owned();
                let flags = r.flags(flag_text(p.get(1)));
                let ruri = ctx.msg.ruri().to_string();
                let Some(found) = r.find(&table, &ruri, flags) else {
                    return -1;
                };
                let mut it = found.into_iter();
                if let Some(first) = it.next() {
                    ctx.msg.new_uri = Some(first);
                }
                if params::get_int(&r.append_branches) != 0 {
                    for uri in it {
                        ctx.msg.branches.push(Branch {
                            uri,
                            q: Some(0),
                            ..Default::default()
                        });
                    }
                }
                1
            },
        );
    }
    let find_rt = RouteType::REQUEST
        | RouteType::FAILURE
        | RouteType::ONREPLY
        | RouteType::BRANCH
        | RouteType::LOCAL;
    for nargs in [3usize, 4] {
        let r = s.clone();
        let fl = flags_fixup();
        let fix: fixup::FixupFn = Arc::new(move |env, i, arg| match i {
            0 => fixup::spve(env, i, arg),
            1 => {
                let t = arg.text().trim().to_string();
                if !t.starts_with('$') {
                    return Err(format!("alias_db_find: '{t}' is not a pseudo-variable"));
                }
                fixup::spve(env, i, arg)
            }
            2 => {
                let t = arg.text().trim().to_string();
                if !(t.starts_with("$avp(") || t.starts_with("$var(")) {
                    return Err(format!("alias_db_find: '{t}' must be an $avp or a $var"));
                }
                fixup::pvar(env, i, arg)
            }
            _ => fl(env, i, arg),
        });
        def = def.cmd("alias_db_find", nargs, find_rt, Some(fix), move |ctx, p| {
            let table = p[0].str(ctx).into_owned();
            let input = p[1].str(ctx).into_owned();
            let flags = r.flags(flag_text(p.get(3)));
            let Fixed::Pv(out) = &p[2] else {
                return -1;
            };
            let Some(found) = r.find(&table, &input, flags) else {
                return -1;
            };
            let all = params::get_int(&r.append_branches) != 0;
            for (n, uri) in found.into_iter().enumerate() {
                if n > 0 && !all {
                    break;
                }
                if let Err(e) = Assign::assign(&**out, ctx, Value::Str(uri.into())) {
                    lm_err!("alias_db_find: {e}");
                    return -1;
                }
            }
            1
        });
    }
    def
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_apply_left_to_right() {
        assert_eq!(parse_flags("du"), Ok((Some(true), false)));
        assert_eq!(parse_flags("UD"), Ok((Some(false), false)));
        assert_eq!(parse_flags("r"), Ok((None, true)));
        assert_eq!(parse_flags(""), Ok((None, false)));
        assert_eq!(parse_flags("x"), Err('x'));
    }
}
