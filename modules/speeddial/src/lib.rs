//! # speeddial: per-user short numbers
//!
//! Kamailio's `speeddial` module: `sd_lookup(table[, owner])` reads the
//! Request-URI's user as a short number of the owner (the From URI, or the
//! URI given) and, when the table (`speed_dial` by Kamailio's tools) has
//! it, replaces the Request-URI with the row's `new_uri`.
#![forbid(unsafe_code)]

use sr_sdk::db::{Cond, DbPool, DbValue};
use sr_sdk::prelude::*;
use sr_sdk::sip_msg::Uri;
use std::sync::atomic::AtomicI64;
use std::sync::{Arc, OnceLock, RwLock};

struct Speeddial {
    db_url: Arc<RwLock<String>>,
    user_col: Arc<RwLock<String>>,
    domain_col: Arc<RwLock<String>>,
    sd_user_col: Arc<RwLock<String>>,
    sd_domain_col: Arc<RwLock<String>>,
    new_uri_col: Arc<RwLock<String>>,
    use_domain: Arc<AtomicI64>,
    domain_prefix: Arc<RwLock<String>>,
    pool: OnceLock<DbPool>,
}

/// The new Request-URI for a row's value: as it is when it starts with
/// `sip:` (exactly), else with `sip:` in front, as Kamailio writes it.
pub fn new_ruri(v: &str) -> String {
    if v.starts_with("sip:") {
        v.to_string()
    } else {
        format!("sip:{v}")
    }
}

impl Speeddial {
    fn lookup(&self, ctx: &mut Ctx<'_>, table: &str, owner: Option<&str>) -> i32 {
        let owner_uri = match owner.filter(|o| !o.is_empty()) {
            Some(o) => o.to_string(),
            None => match ctx.msg.msg().from() {
                Ok(f) => f.uri_str.to_string(),
                Err(_) => {
                    lm_err!("sd_lookup: cannot parse the From header");
                    return -1;
                }
            },
        };
        let Ok(owner) = Uri::parse(&owner_uri) else {
            lm_err!("sd_lookup: bad owner SIP address '{owner_uri}'");
            return -1;
        };
        let ruri = ctx.msg.ruri().to_string();
        let Ok(r) = Uri::parse(&ruri) else {
            lm_err!("sd_lookup: cannot parse the Request-URI");
            return -1;
        };
        let prefix = params::get_str(&self.domain_prefix);
        let use_domain = params::get_int(&self.use_domain);
        let (uc, dc, suc, sdc, nc) = (
            params::get_str(&self.user_col),
            params::get_str(&self.domain_col),
            params::get_str(&self.sd_user_col),
            params::get_str(&self.sd_domain_col),
            params::get_str(&self.new_uri_col),
        );
        let mut conds = vec![Cond::eq(&uc, DbValue::str(owner.user.unwrap_or("")))];
        if use_domain >= 1 {
            conds.push(Cond::eq(
                &dc,
                DbValue::str(sr_sdk::text::strip_domain_prefix(owner.host_str, &prefix)),
            ));
        }
        conds.push(Cond::eq(&suc, DbValue::str(r.user.unwrap_or(""))));
        if use_domain >= 2 {
            conds.push(Cond::eq(
                &sdc,
                DbValue::str(sr_sdk::text::strip_domain_prefix(r.host_str, &prefix)),
            ));
        }
        let Some(pool) = self.pool.get() else {
            return -1;
        };
        let rows = match pool.with(|c| c.query(table, &conds, &[nc.as_str()], None)) {
            Ok(r) => r,
            Err(e) => {
                lm_err!("sd_lookup: {table}: {e}");
                return -1;
            }
        };
        let Some(v) = rows
            .rows
            .first()
            .and_then(|row| row.first())
            .and_then(DbValue::as_string)
        else {
            return -1;
        };
        ctx.msg.new_uri = Some(new_ruri(&v));
        1
    }
}

/// The module definition.
pub fn module() -> ModuleDef {
    let s = Arc::new(Speeddial {
        db_url: params::str_cell("mysql://kamailioro:kamailioro@localhost/kamailio"),
        user_col: params::str_cell("username"),
        domain_col: params::str_cell("domain"),
        sd_user_col: params::str_cell("sd_username"),
        sd_domain_col: params::str_cell("sd_domain"),
        new_uri_col: params::str_cell("new_uri"),
        use_domain: params::int_cell(0),
        domain_prefix: params::str_cell(""),
        pool: OnceLock::new(),
    });
    let init = s.clone();
    let mut def = ModuleDef::new("speeddial")
        .param("use_domain", ParamKind::Int, params::int(&s.use_domain))
        .on_init(move |core| {
            let url = params::get_str(&init.db_url);
            let pool = DbPool::open(core, &url).map_err(|e| format!("speeddial: {e}"))?;
            let _ = init.pool.set(pool);
            Ok(())
        });
    for (name, cell) in [
        ("db_url", &s.db_url),
        ("user_column", &s.user_col),
        ("domain_column", &s.domain_col),
        ("sd_user_column", &s.sd_user_col),
        ("sd_domain_column", &s.sd_domain_col),
        ("new_uri_column", &s.new_uri_col),
        ("domain_prefix", &s.domain_prefix),
    ] {
        def = def.param(name, ParamKind::Str, params::string(cell));
    }
    for nargs in [1usize, 2] {
        let r = s.clone();
        def = def.cmd(
            "sd_lookup",
            nargs,
            RouteType::REQUEST,
            Some(fixup::f(fixup::spve)),
            move |ctx, p| {
                let table = p[0].str(ctx).into_owned();
                let owner = p.get(1).map(|o| o.str(ctx).into_owned());
                r.lookup(ctx, &table, owner.as_deref())
            },
        );
    }
    def
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn new_uris_get_sip_in_front_unless_they_have_it() {
        assert_eq!(
            new_ruri("sip:bob@a.com:5070;transport=tcp"),
            "sip:bob@a.com:5070;transport=tcp"
        );
        assert_eq!(new_ruri("carol@b.com"), "sip:carol@b.com");
        assert_eq!(new_ruri("tel:+123"), "sip:tel:+123");
        assert_eq!(new_ruri("SIP:u@u.com"), "sip:SIP:u@u.com");
        assert_eq!(new_ruri(""), "sip:");
    }
}
