//! Module `uri_db` (Kamailio's): URIs checked against who authenticated.
//!
//! - `check_to()`, `check_from()`: the To or From URI's user equals the
//!   user of the digest credentials that authorized the request (ignoring
//!   case), or, with `use_uri_table`, the table (`db_table`, e.g. `uri`)
//!   allows that URI user for the digest user and realm;
//! - `check_uri(uri[, user, realm])`: the same for any URI, with the
//!   digest credentials or the given user and realm;
//! - `does_uri_exist()`: the Request-URI's user (and domain with
//!   `use_domain`) is in the table (`subscriber`'s users, or with
//!   `use_uri_table` the table's URI users).
//!
//! Return codes are Kamailio's: 1 match; -1 a URI or value that does not
//! parse; -2 no authorized credentials; -4 a URI without user; -8 or -4
//! a database error; -9 not allowed by the table; -10 the users differ;
//! -5 no such user (`does_uri_exist`).
#![forbid(unsafe_code)]

use sr_mod_auth::api::authorized_user_realm;
use sr_sdk::db::{self, Cond, DbPool, DbValue};
use sr_sdk::prelude::*;
use sr_sdk::sip_msg::Uri;
use std::sync::atomic::AtomicI64;
use std::sync::{Arc, OnceLock, RwLock};

/// Kamailio's `URI_TABLE_VERSION`.
const URI_TABLE_VERSION: i64 = db::uri_tables::URI_VERSION;
/// Kamailio's `SUBSCRIBER_TABLE_VERSION`.
const SUBSCRIBER_TABLE_VERSION: i64 = db::schema::SUBSCRIBER_VERSION;

struct UriDb {
    db_url: Arc<RwLock<String>>,
    table: Arc<RwLock<String>>,
    user_col: Arc<RwLock<String>>,
    domain_col: Arc<RwLock<String>>,
    uriuser_col: Arc<RwLock<String>>,
    use_uri_table: Arc<AtomicI64>,
    use_domain: Arc<AtomicI64>,
    pool: OnceLock<DbPool>,
}

impl UriDb {
    fn init(&self, core: &dyn Core) -> Result<(), String> {
        let url = params::get_str(&self.db_url);
        let uri_table = params::get_int(&self.use_uri_table) != 0;
        if url.is_empty() {
            if uri_table {
                return Err(
                    "uri_db: configuration error - no database URL, but use_uri_table is set!"
                        .into(),
                );
            }
            return Ok(());
        }
        let pool = DbPool::open(core, &url).map_err(|e| format!("uri_db: {e}"))?;
        let table = params::get_str(&self.table);
        let (want, what) = if uri_table {
            (URI_TABLE_VERSION, "uri")
        } else {
            (SUBSCRIBER_TABLE_VERSION, "subscriber")
        };
        pool.with(|c| db::check_version(c, &table, want))
            .map_err(|e| format!("uri_db: invalid table version of the {what} table: {e}"))?;
        let _ = self.pool.set(pool);
        Ok(())
    }

    /// Kamailio's `check_username`: `uri`'s user against the credentials
    /// (`creds`, else the authorized digest ones).
    fn check(&self, ctx: &mut Ctx<'_>, uri: &Uri<'_>, creds: Option<(String, String)>) -> i32 {
        let Some(uri_user) = uri.user.filter(|u| !u.is_empty()) else {
            lm_err!("uri_db: username not found in URI");
            return -4;
        };
        let Some((user, realm)) = creds.or_else(|| authorized_user_realm(ctx.msg)) else {
            lm_err!("uri_db: no authorized credentials found (error in scripts)");
            lm_err!("uri_db: call {{www,proxy}}_authorize before calling check_* functions!");
            return -2;
        };
        if params::get_int(&self.use_uri_table) == 0 {
            return if uri_user.eq_ignore_ascii_case(&user) {
                1
            } else {
                -10
            };
        }
        let Some(pool) = self.pool.get() else {
            return -7;
        };
        let table = params::get_str(&self.table);
        let conds = [
            Cond::eq(&params::get_str(&self.user_col), DbValue::str(user)),
            Cond::eq(&params::get_str(&self.domain_col), DbValue::str(realm)),
            Cond::eq(&params::get_str(&self.uriuser_col), DbValue::str(uri_user)),
        ];
        let col = params::get_str(&self.user_col);
        match pool.with(|c| c.query(&table, &conds, &[col.as_str()], None)) {
            Ok(r) if r.rows.is_empty() => -9,
            Ok(_) => 1,
            Err(e) => {
                lm_err!("uri_db: error while querying database: {e}");
                -8
            }
        }
    }

    /// `check_to()` / `check_from()`.
    fn check_header(&self, ctx: &mut Ctx<'_>, to: bool) -> i32 {
        let m = ctx.msg.msg();
        let uri = if to { m.to() } else { m.from() }.map(|n| n.uri_str.to_string());
        let Ok(text) = uri else {
            lm_err!(
                "uri_db: error while parsing {} header field",
                if to { "To" } else { "From" }
            );
            return -1;
        };
        let Ok(u) = Uri::parse(&text) else {
            lm_err!(
                "uri_db: error while parsing {} header URI",
                if to { "To" } else { "From" }
            );
            return -1;
        };
        self.check(ctx, &u, None)
    }

    /// `does_uri_exist()`.
    fn exists(&self, ctx: &mut Ctx<'_>) -> i32 {
        let ruri = ctx.msg.ruri().to_string();
        let Ok(u) = Uri::parse(&ruri) else {
            lm_err!("uri_db: error while parsing URI");
            return -1;
        };
        // (Kamailio's check for this sits in the function's free-fixup
        // slot, which never runs at start.)
        let Some(pool) = self.pool.get() else {
            lm_err!("uri_db: does_uri_exist() called with no database URL");
            return -2;
        };
        let key_col = if params::get_int(&self.use_uri_table) != 0 {
            params::get_str(&self.uriuser_col)
        } else {
            params::get_str(&self.user_col)
        };
        let mut conds = vec![Cond::eq(&key_col, DbValue::str(u.user.unwrap_or("")))];
        if params::get_int(&self.use_domain) != 0 {
            conds.push(Cond::eq(
                &params::get_str(&self.domain_col),
                DbValue::str(u.host_str),
            ));
        }
        let table = params::get_str(&self.table);
        match pool.with(|c| c.query(&table, &conds, &[key_col.as_str()], None)) {
            Ok(r) if r.rows.is_empty() => -5,
            Ok(_) => 1,
            Err(e) => {
                lm_err!("uri_db: error while querying database: {e}");
                -4
            }
        }
    }
}

/// The module definition.
pub fn module() -> ModuleDef {
    let u = Arc::new(UriDb {
        db_url: params::str_cell("mysql://kamailioro:kamailioro@localhost/kamailio"),
        table: params::str_cell("subscriber"),
        user_col: params::str_cell("username"),
        domain_col: params::str_cell("domain"),
        uriuser_col: params::str_cell("uri_user"),
        use_uri_table: params::int_cell(0),
        use_domain: params::int_cell(0),
        pool: OnceLock::new(),
    });
    let (init, to, from, uri1, uri3, ex) = (
        u.clone(),
        u.clone(),
        u.clone(),
        u.clone(),
        u.clone(),
        u.clone(),
    );
    let spve = Some(fixup::f(fixup::spve));
    ModuleDef::new("uri_db")
        .param("db_url", ParamKind::Str, params::string(&u.db_url))
        .param("db_table", ParamKind::Str, params::string(&u.table))
        .param("user_column", ParamKind::Str, params::string(&u.user_col))
        .param(
            "domain_column",
            ParamKind::Str,
            params::string(&u.domain_col),
        )
        .param(
            "uriuser_column",
            ParamKind::Str,
            params::string(&u.uriuser_col),
        )
        .param(
            "use_uri_table",
            ParamKind::Int,
            params::int(&u.use_uri_table),
        )
        .param("use_domain", ParamKind::Int, params::int(&u.use_domain))
        .on_init(move |core| init.init(core))
        .cmd("check_to", 0, RouteType::REQUEST, None, move |ctx, _| {
            to.check_header(ctx, true)
        })
        .cmd("check_from", 0, RouteType::REQUEST, None, move |ctx, _| {
            from.check_header(ctx, false)
        })
        .cmd(
            "check_uri",
            1,
            RouteType::REQUEST,
            spve.clone(),
            move |ctx, p| {
                let text = p[0].str(ctx).into_owned();
                let Ok(uri) = Uri::parse(&text) else {
                    lm_err!("uri_db: error while parsing URI");
                    return -1;
                };
                uri1.check(ctx, &uri, None)
            },
        )
        .cmd("check_uri", 3, RouteType::REQUEST, spve, move |ctx, p| {
            let text = p[0].str(ctx).into_owned();
            let (user, realm) = (p[1].str(ctx).into_owned(), p[2].str(ctx).into_owned());
            let Ok(uri) = Uri::parse(&text) else {
                lm_err!("uri_db: error while parsing URI");
                return -1;
            };
            uri3.check(ctx, &uri, Some((user, realm)))
        })
        .cmd(
            "does_uri_exist",
            0,
            RouteType::REQUEST | RouteType::LOCAL,
            None,
            move |ctx, _| ex.exists(ctx),
        )
}
