//! # auth_db: digest authentication against a subscriber table
//!
//! Kamailio's `auth_db`: `www_authorize(realm, table)` (alias
//! `www_authenticate`), `proxy_authorize(realm, table)` (alias
//! `proxy_authenticate`) and `auth_check(realm, table, flags)`, checking
//! credentials with the `auth` module's API (load `auth` first) against
//! the `subscriber` table of `db_url`.
//!
//! Parameters: `db_url`, `user_column` (`username`), `domain_column`
//! (`domain`), `password_column` (`ha1`; with `calculate_ha1=1` it holds
//! plain text, default column then `password`), `password_column_2`
//! (`ha1b`, the HA1 of `user@domain`), `calculate_ha1`, `use_domain`,
//! `load_credentials` (`col;$avp(name)=col2`: columns copied into AVPs).
//! Stored HA1 columns are MD5; SHA-256 digests need `calculate_ha1=1`.
#![forbid(unsafe_code)]

use sr_mod_auth::{
    identity_exempt, identity_matches, rc, Alg, AuthApi, Credentials, HdrType, AUTH_API,
};
use sr_sdk::db::{self, schema, Cond, DbPool, DbValue};
use sr_sdk::fixup::FixupEnv;
use sr_sdk::prelude::*;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, OnceLock, RwLock};

/// The module's settings.
#[derive(Debug)]
struct Config {
    db_url: Arc<RwLock<String>>,
    user_column: Arc<RwLock<String>>,
    domain_column: Arc<RwLock<String>>,
    password_column: Arc<RwLock<String>>,
    password_column_2: Arc<RwLock<String>>,
    calculate_ha1: Arc<AtomicI64>,
    use_domain: Arc<AtomicI64>,
    load_credentials: Arc<RwLock<String>>,
}

fn s(v: &str) -> Arc<RwLock<String>> {
    Arc::new(RwLock::new(v.to_string()))
}

fn get(v: &RwLock<String>) -> String {
    v.read().map(|x| x.clone()).unwrap_or_default()
}

impl Default for Config {
    fn default() -> Self {
        Config {
            db_url: s(""),
            user_column: s("username"),
            domain_column: s("domain"),
            password_column: s(""),
            password_column_2: s("ha1b"),
            calculate_ha1: Arc::new(AtomicI64::new(0)),
            use_domain: Arc::new(AtomicI64::new(0)),
            load_credentials: s(""),
        }
    }
}

#[derive(Debug, Default)]
struct AuthDb {
    cfg: Config,
    /// The parameters as read at mod_init (they do not change after).
    set: OnceLock<Settings>,
    db: OnceLock<Arc<DbPool>>,
    auth: OnceLock<Arc<AuthApi>>,
}

/// The module's parameters, read once at mod_init: a credentials check
/// does not copy each column name out of its parameter again.
#[derive(Debug)]
struct Settings {
    user_col: String,
    domain_col: String,
    /// The password column (plain text with `calculate_ha1`, else HA1).
    password_col: String,
    /// The HA1 of `user@domain` (`password_column_2`).
    password_col_2: String,
    calculate_ha1: bool,
    use_domain: bool,
    /// `load_credentials`: columns and the AVPs they go to.
    extra: Vec<(String, String)>,
}

impl Settings {
    fn of(cfg: &Config) -> Settings {
        let calculate_ha1 = cfg.calculate_ha1.load(Ordering::Relaxed) != 0;
        let p = get(&cfg.password_column);
        let password_col = if !p.is_empty() {
            p
        } else if calculate_ha1 {
            "password".into()
        } else {
            "ha1".into()
        };
        Settings {
            user_col: get(&cfg.user_column),
            domain_col: get(&cfg.domain_column),
            password_col,
            password_col_2: get(&cfg.password_column_2),
            calculate_ha1,
            use_domain: cfg.use_domain.load(Ordering::Relaxed) != 0,
            extra: credential_items(&get(&cfg.load_credentials)),
        }
    }
}

/// A `load_credentials` item: column, and the AVP it goes to.
fn credential_items(spec: &str) -> Vec<(String, String)> {
    spec.split(';')
        .map(str::trim)
        .filter(|x| !x.is_empty())
        .map(|item| match item.split_once('=') {
            Some((avp, col)) => {
                let a = avp.trim();
                let a = a
                    .strip_prefix("$avp(")
                    .and_then(|x| x.strip_suffix(')'))
                    .unwrap_or(a);
                let a = a
                    .strip_prefix("s:")
                    .or_else(|| a.strip_prefix("i:"))
                    .unwrap_or(a);
                (col.trim().to_string(), a.to_string())
            }
            None => (item.to_string(), item.to_string()),
        })
        .collect()
}

impl AuthDb {
    /// The HA1 for the credentials from the table, or a return code.
    fn ha1_of(
        &self,
        ctx: &mut Ctx<'_>,
        api: &AuthApi,
        table: &str,
        c: &Credentials,
    ) -> Result<String, i32> {
        let (Some(pool), Some(st)) = (self.db.get(), self.set.get()) else {
            lm_err!("auth_db: not initialised (no database)");
            return Err(rc::ERROR);
        };
        let pw_col = if !st.calculate_ha1 && c.domain.is_some() {
            &st.password_col_2
        } else {
            &st.password_col
        };
        let mut conds = Vec::with_capacity(2);
        conds.push(Cond::eq(&st.user_col, DbValue::str(&c.user)));
        if st.use_domain {
            let d = c.domain.as_deref().unwrap_or(&c.realm);
            conds.push(Cond::eq(&st.domain_col, DbValue::str(d)));
        }
        let mut cols: Vec<&str> = Vec::with_capacity(1 + st.extra.len());
        cols.push(pw_col);
        cols.extend(st.extra.iter().map(|(c, _)| c.as_str()));
        let mut rows = pool
            .with(|conn| conn.query(table, &conds, &cols, None))
            .map_err(|e| {
                lm_err!("auth_db: {e}");
                rc::ERROR
            })?;
        if rows.is_empty() {
            return Err(rc::USER_UNKNOWN);
        }
        for (col, avp) in &st.extra {
            if let Some(v) = rows.get(0, col).as_string() {
                ctx.msg.avps.push(avp, Value::from(v));
            }
        }
        let i = rows.col(pw_col).unwrap_or(0);
        let secret = match rows.rows[0].get_mut(i) {
            Some(DbValue::Str(s)) => std::mem::take(s),
            Some(v) => v.as_string().unwrap_or_default(),
            None => String::new(),
        };
        if st.calculate_ha1 {
            return Ok(api.calc_ha1(c, &secret));
        }
        if c.alg != Alg::Md5 {
            lm_err!(
                "auth_db: {} credentials need calculate_ha1=1 (the {pw_col} column holds MD5 hashes)",
                c.alg.name()
            );
            return Err(rc::ERROR);
        }
        Ok(secret)
    }

    /// `is_subscriber(uri, table, flags)`: 1 when the table has the URI's
    /// user (and domain, with flag 1), its `load_credentials` columns
    /// loaded into their AVPs unless flag 2; -2 when it has not, -1 for a
    /// URI that does not parse or a database error.
    fn is_subscriber(&self, ctx: &mut Ctx<'_>, uri: &str, table: &str, flags: i64) -> i32 {
        let Ok(u) = sr_sdk::sip_msg::Uri::parse(uri.trim()) else {
            lm_err!("is_subscriber: invalid uri parameter format");
            return -1;
        };
        let (Some(pool), Some(st)) = (self.db.get(), self.set.get()) else {
            lm_err!("auth_db: not initialised (no database)");
            return -1;
        };
        let mut conds = vec![Cond::eq(&st.user_col, DbValue::str(u.user.unwrap_or("")))];
        if flags & 1 != 0 {
            conds.push(Cond::eq(&st.domain_col, DbValue::str(u.host_str)));
        }
        let mut cols: Vec<&str> = vec![st.user_col.as_str()];
        cols.extend(st.extra.iter().map(|(c, _)| c.as_str()));
        let rows = match pool.with(|conn| conn.query(table, &conds, &cols, None)) {
            Ok(r) => r,
            Err(e) => {
                lm_err!("is_subscriber: {e}");
                return -1;
            }
        };
        if rows.is_empty() {
            return -2;
        }
        if flags & 2 == 0 {
            for (col, avp) in &st.extra {
                if let Some(v) = rows.get(0, col).as_string() {
                    ctx.msg.avps.push(avp, Value::from(v));
                }
            }
        }
        1
    }

    fn authorize(&self, ctx: &mut Ctx<'_>, realm: &str, table: &str, hdr: HdrType) -> i32 {
        let Some(api) = self.auth.get().cloned() else {
            return rc::ERROR;
        };
        let c = match api.pre_auth(ctx, realm, hdr) {
            Ok(c) => c,
            Err(code) => return code,
        };
        match self.ha1_of(ctx, &api, table, &c) {
            Ok(ha1) => api.post_auth(ctx, &c, &ha1),
            Err(code) => code,
        }
    }

    fn auth_check(&self, ctx: &mut Ctx<'_>, realm: &str, table: &str, flags: i64) -> i32 {
        let hdr = if ctx.msg.msg().method() == Some(Method::Register) {
            HdrType::Www
        } else {
            HdrType::Proxy
        };
        let Some(api) = self.auth.get().cloned() else {
            return rc::ERROR;
        };
        let c = match api.pre_auth(ctx, realm, hdr) {
            Ok(c) => c,
            Err(code) => return code,
        };
        let r = match self.ha1_of(ctx, &api, table, &c) {
            Ok(ha1) => api.post_auth(ctx, &c, &ha1),
            Err(code) => code,
        };
        if r != rc::OK || flags & 1 == 0 {
            return r;
        }
        if flags & 2 != 0 && identity_exempt(ctx.msg.msg().method()) {
            return r;
        }
        if identity_matches(ctx.msg, &c) {
            r
        } else {
            rc::AUTH_USER_MISMATCH
        }
    }
}

/// Checks the table's version when the script names it (fixup time).
fn fixup_table(env: &dyn FixupEnv, i: usize, a: &Arg, adb: &AuthDb) -> Result<Fixed, String> {
    if i != 1 {
        return fixup::spve(env, i, a);
    }
    let Arg::Str(name) = a else {
        return Err(format!("table name '{}' must be a constant", a.text()));
    };
    // mod_init opens the database before any fixup runs; without it this
    // is a config check (`siprouter -c`), which does not touch databases.
    if let Some(pool) = adb.db.get() {
        pool.with(|c| db::check_version(c, name, schema::SUBSCRIBER_VERSION))
            .map_err(|e| format!("auth_db: {e}"))?;
    }
    Ok(Fixed::Str(name.clone()))
}

/// The module definition.
pub fn module() -> ModuleDef {
    let adb = Arc::new(AuthDb::default());
    let c = &adb.cfg;
    let rt = RouteType::REQUEST | RouteType::FAILURE | RouteType::BRANCH;
    let fx_adb = adb.clone();
    let fx: sr_sdk::fixup::FixupFn = Arc::new(move |env, i, a| fixup_table(env, i, a, &fx_adb));
    let mut def = ModuleDef::new("auth_db")
        .param("db_url", ParamKind::Str, params::string(&c.db_url))
        .param(
            "user_column",
            ParamKind::Str,
            params::string(&c.user_column),
        )
        .param(
            "domain_column",
            ParamKind::Str,
            params::string(&c.domain_column),
        )
        .param(
            "password_column",
            ParamKind::Str,
            params::string(&c.password_column),
        )
        .param(
            "password_column_2",
            ParamKind::Str,
            params::string(&c.password_column_2),
        )
        .param(
            "calculate_ha1",
            ParamKind::Int,
            params::int(&c.calculate_ha1),
        )
        .param("use_domain", ParamKind::Int, params::int(&c.use_domain))
        .param(
            "load_credentials",
            ParamKind::Str,
            params::string(&c.load_credentials),
        );
    let fns: [(&str, HdrType); 4] = [
        ("www_authorize", HdrType::Www),
        ("www_authenticate", HdrType::Www),
        ("proxy_authorize", HdrType::Proxy),
        ("proxy_authenticate", HdrType::Proxy),
    ];
    for (name, hdr) in fns {
        let a = adb.clone();
        def = def.cmd(name, 2, rt, Some(fx.clone()), move |ctx, p| {
            let realm = p[0].str(ctx).into_owned();
            let table = p[1].str(ctx).into_owned();
            a.authorize(ctx, &realm, &table, hdr)
        });
    }
    let a = adb.clone();
    def = def.cmd("auth_check", 3, rt, Some(fx), move |ctx, p| {
        let realm = p[0].str(ctx).into_owned();
        let table = p[1].str(ctx).into_owned();
        let flags = p[2].int(ctx);
        a.auth_check(ctx, &realm, &table, flags)
    });
    let a = adb.clone();
    def = def.cmd(
        "is_subscriber",
        3,
        RouteType::ANY,
        Some(fixup::f(|env, i, arg| {
            if i == 2 {
                fixup::igp(env, i, arg)
            } else {
                fixup::spve(env, i, arg)
            }
        })),
        move |ctx, p| {
            let uri = p[0].str(ctx).into_owned();
            let table = p[1].str(ctx).into_owned();
            let flags = p[2].int(ctx);
            a.is_subscriber(ctx, &uri, &table, flags)
        },
    );
    def.on_init(move |core| {
        let api = bind::<AuthApi>(core, AUTH_API)
            .ok_or("auth_db needs the auth module (load it before auth_db)")?;
        let _ = adb.auth.set(api);
        let _ = adb.set.set(Settings::of(&adb.cfg));
        let url = get(&adb.cfg.db_url);
        if url.is_empty() {
            return Err("auth_db: db_url is not set".into());
        }
        let pool = DbPool::open(core, &url).map_err(|e| format!("auth_db: {e}"))?;
        let _ = adb.db.set(Arc::new(pool));
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn load_credentials_spec() {
        assert_eq!(
            credential_items("email_address; $avp(i:rpid)=rpid ;"),
            vec![
                ("email_address".to_string(), "email_address".to_string()),
                ("rpid".to_string(), "rpid".to_string())
            ]
        );
    }
}
