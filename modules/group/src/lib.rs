//! # group: group membership
//!
//! Kamailio's `group` module: `is_user_in(uri, group)` asks the `grp`
//! table whether the user of the Request-URI, To, From, the authorized
//! credentials or an AVP's URI is in a group; `get_user_group(uri, avp)`
//! matches `sip:user@domain` against the regular expressions of `re_grp`
//! (loaded at start) and puts the group ids of those that match in an AVP.
#![forbid(unsafe_code)]

use sr_mod_auth::api::authorized_identity;
use sr_sdk::db::{self, Cond, DbPool, DbValue};
use sr_sdk::fixup::{Assign, Eval};
use sr_sdk::prelude::*;
use sr_sdk::sip_msg::Uri;
use std::sync::atomic::AtomicI64;
use std::sync::{Arc, OnceLock, RwLock};

/// Whose user a function asks about.
#[derive(Debug, Clone)]
enum Who {
    Ruri,
    To,
    From,
    Credentials,
    Avp(Arc<dyn Eval>),
}

struct Group {
    db_url: Arc<RwLock<String>>,
    table: Arc<RwLock<String>>,
    user_col: Arc<RwLock<String>>,
    domain_col: Arc<RwLock<String>>,
    group_col: Arc<RwLock<String>>,
    use_domain: Arc<AtomicI64>,
    re_table: Arc<RwLock<String>>,
    re_exp_col: Arc<RwLock<String>>,
    re_gid_col: Arc<RwLock<String>>,
    multiple_gid: Arc<AtomicI64>,
    pool: OnceLock<DbPool>,
    /// `re_grp`'s expressions, in reverse table order (Kamailio's list).
    res: OnceLock<Vec<(regex::Regex, i64)>>,
}

impl Group {
    /// The user and domain `who` names in this message; `None` (logged)
    /// when there is none.
    fn identity(&self, ctx: &mut Ctx<'_>, who: &Who) -> Option<(String, String)> {
        let from_uri = |s: &str| -> Option<(String, String)> {
            let u = Uri::parse(s).ok()?;
            Some((u.user.unwrap_or("").to_string(), u.host_str.to_string()))
        };
        match who {
            Who::Ruri => from_uri(ctx.msg.ruri()),
            Who::To => {
                let t = ctx.msg.msg().to().ok()?.uri_str.to_string();
                from_uri(&t)
            }
            Who::From => {
                let f = ctx.msg.msg().from().ok()?.uri_str.to_string();
                from_uri(&f)
            }
            Who::Avp(e) => {
                let v = e.eval(ctx);
                if v.is_null() {
                    return None;
                }
                let s = v.as_str().into_owned();
                if s.is_empty() {
                    return None;
                }
                from_uri(&s)
            }
            Who::Credentials => {
                let id = authorized_identity(ctx.msg);
                if id.is_none() {
                    lm_err!("group: no authorized credentials found");
                }
                id
            }
        }
    }

    fn is_user_in(&self, ctx: &mut Ctx<'_>, who: &Who, group: &str) -> i32 {
        let Some((user, domain)) = self.identity(ctx, who) else {
            return -1;
        };
        if user.is_empty() || group.is_empty() {
            return -1;
        }
        let mut conds = vec![
            Cond::eq(&params::get_str(&self.user_col), DbValue::str(user)),
            Cond::eq(&params::get_str(&self.group_col), DbValue::str(group)),
        ];
        if params::get_int(&self.use_domain) != 0 {
            conds.push(Cond::eq(
                &params::get_str(&self.domain_col),
                DbValue::str(domain),
            ));
        }
        let table = params::get_str(&self.table);
        let gc = params::get_str(&self.group_col);
        let Some(pool) = self.pool.get() else {
            return -5;
        };
        match pool.with(|c| c.query(&table, &conds, &[gc.as_str()], None)) {
            Ok(r) if r.rows.is_empty() => -6,
            Ok(_) => 1,
            Err(e) => {
                lm_err!("group: {table}: {e}");
                -5
            }
        }
    }

    fn get_user_group(&self, ctx: &mut Ctx<'_>, who: &Who, avp: &dyn Assign) -> i32 {
        let Some((user, domain)) = self.identity(ctx, who) else {
            return -1;
        };
        let uri = format!("sip:{user}@{domain}");
        if user.is_empty() || uri.len() > 1024 {
            return -1;
        }
        let multiple = params::get_int(&self.multiple_gid) != 0;
        let mut n = 0;
        for (re, gid) in self.res.get().map(Vec::as_slice).unwrap_or(&[]) {
            if re.is_match(&uri) {
                if avp.assign(ctx, Value::Int(*gid)).is_err() {
                    return -1;
                }
                n += 1;
                if !multiple {
                    break;
                }
            }
        }
        if n == 0 {
            -1
        } else {
            n
        }
    }

    fn init(&self, core: &dyn Core) -> Result<(), String> {
        let url = params::get_str(&self.db_url);
        let pool = DbPool::open(core, &url).map_err(|e| format!("group: {e}"))?;
        let table = params::get_str(&self.table);
        pool.with(|c| db::check_version(c, &table, db::schema::GRP_VERSION))
            .map_err(|e| format!("group: {e}"))?;
        let re_table = params::get_str(&self.re_table);
        let mut res = Vec::new();
        if !re_table.is_empty() {
            let (ec, gc) = (
                params::get_str(&self.re_exp_col),
                params::get_str(&self.re_gid_col),
            );
            let rows = pool
                .with(|c| {
                    db::check_version(c, &re_table, db::schema::RE_GRP_VERSION)?;
                    c.query(&re_table, &[], &[ec.as_str(), gc.as_str()], None)
                })
                .map_err(|e| format!("group: {e}"))?;
            for row in &rows.rows {
                let (Some(exp), Some(gid)) = (
                    row.first().and_then(DbValue::as_string),
                    row.get(1).and_then(DbValue::as_i64),
                ) else {
                    return Err(format!(
                        "group: a row of {re_table} without expression or group id"
                    ));
                };
                // POSIX extended, case-insensitive, lines apart.
                let re = regex::RegexBuilder::new(&exp)
                    .case_insensitive(true)
                    .multi_line(true)
                    .build()
                    .map_err(|e| format!("group: bad re '{exp}': {e}"))?;
                res.insert(0, (re, gid));
            }
        }
        let _ = self.res.set(res);
        let _ = self.pool.set(pool);
        Ok(())
    }
}

/// The first parameter's fixup: a keyword or an `$avp(...)`.
fn who_fixup(env: &dyn fixup::FixupEnv, _i: usize, arg: &Arg) -> Result<Fixed, String> {
    let t = arg.text().trim().to_string();
    let who = match t.to_ascii_lowercase().as_str() {
        "request-uri" => Who::Ruri,
        "to" => Who::To,
        "from" => Who::From,
        "credentials" => Who::Credentials,
        _ if t.starts_with("$avp(") => Who::Avp(env.compile_format(&t)?),
        _ => return Err(format!("group: unsupported user specification '{t}'")),
    };
    Ok(Fixed::Custom(Arc::new(who)))
}

fn who_of(f: &Fixed) -> Option<&Who> {
    f.custom::<Who>()
}

/// The module definition.
pub fn module() -> ModuleDef {
    let g = Arc::new(Group {
        db_url: params::str_cell("mysql://kamailioro:kamailioro@localhost/kamailio"),
        table: params::str_cell("grp"),
        user_col: params::str_cell("username"),
        domain_col: params::str_cell("domain"),
        group_col: params::str_cell("grp"),
        use_domain: params::int_cell(0),
        re_table: params::str_cell(""),
        re_exp_col: params::str_cell("reg_exp"),
        re_gid_col: params::str_cell("group_id"),
        multiple_gid: params::int_cell(1),
        pool: OnceLock::new(),
        res: OnceLock::new(),
    });
    let init = g.clone();
    let rt = RouteType::REQUEST | RouteType::FAILURE | RouteType::BRANCH | RouteType::LOCAL;
    let r = g.clone();
    let r2 = g.clone();
    ModuleDef::new("group")
        .param("db_url", ParamKind::Str, params::string(&g.db_url))
        .param("table", ParamKind::Str, params::string(&g.table))
        .param("user_column", ParamKind::Str, params::string(&g.user_col))
        .param(
            "domain_column",
            ParamKind::Str,
            params::string(&g.domain_col),
        )
        .param("group_column", ParamKind::Str, params::string(&g.group_col))
        .param("use_domain", ParamKind::Int, params::int(&g.use_domain))
        .param("re_table", ParamKind::Str, params::string(&g.re_table))
        .param(
            "re_exp_column",
            ParamKind::Str,
            params::string(&g.re_exp_col),
        )
        .param(
            "re_gid_column",
            ParamKind::Str,
            params::string(&g.re_gid_col),
        )
        .param("multiple_gid", ParamKind::Int, params::int(&g.multiple_gid))
        .on_init(move |core| init.init(core))
        .cmd(
            "is_user_in",
            2,
            rt,
            Some(Arc::new(|env, i, arg| {
                if i == 0 {
                    who_fixup(env, i, arg)
                } else {
                    fixup::const_str(env, i, arg)
                }
            })),
            move |ctx, p| {
                let Some(who) = who_of(&p[0]).cloned() else {
                    return -1;
                };
                let group = p[1].as_const_str().unwrap_or_default().to_string();
                r.is_user_in(ctx, &who, &group)
            },
        )
        .cmd(
            "get_user_group",
            2,
            rt,
            Some(Arc::new(|env, i, arg| {
                if i == 0 {
                    return who_fixup(env, i, arg);
                }
                let t = arg.text().trim().to_string();
                if !t.starts_with("$avp(") {
                    return Err(format!("get_user_group: '{t}' is not an AVP"));
                }
                fixup::pvar(env, i, arg)
            })),
            move |ctx, p| {
                let Some(who) = who_of(&p[0]).cloned() else {
                    return -1;
                };
                let Fixed::Pv(avp) = &p[1] else {
                    return -1;
                };
                r2.get_user_group(ctx, &who, &**avp)
            },
        )
}
