//! Module `avpops` (Kamailio's): operations on AVPs and per-user
//! preferences from the `usr_preferences` table. `avp_db_load`,
//! `avp_db_store` and `avp_db_delete` find a user's rows by a source —
//! a URI (its user, and its host with `use_domain`), its user or host
//! alone, or a UUID; `is_avp_set`, `avp_check`, `avp_copy`, `avp_op`,
//! `avp_delete`, `avp_pushto` and `avp_subst` work on the message's AVPs;
//! `avp_db_query` runs SQL into AVPs; `avp_print` logs them. DB schemes
//! and `avp_insert` are not built.
#![forbid(unsafe_code)]

pub mod db;
pub mod names;
pub mod ops;
pub mod subst;

use sr_sdk::db::DbPool;
use sr_sdk::prelude::*;
use std::sync::atomic::AtomicI64;
use std::sync::{Arc, OnceLock, RwLock};

/// Column names.
#[derive(Debug, Clone)]
pub struct Cols {
    /// `uuid_column`.
    pub uuid: String,
    /// `username_column`.
    pub username: String,
    /// `domain_column`.
    pub domain: String,
    /// `attribute_column`.
    pub attribute: String,
    /// `value_column`.
    pub value: String,
    /// `type_column`.
    pub typ: String,
}

/// The module's state.
#[derive(Debug)]
pub struct Avpops {
    db_url: Arc<RwLock<String>>,
    table: Arc<RwLock<String>>,
    use_domain: Arc<AtomicI64>,
    /// Column names (set at start).
    pub cols: Cols,
    col_cells: Vec<(&'static str, Arc<RwLock<String>>)>,
    pool: OnceLock<Option<Arc<DbPool>>>,
}

impl Avpops {
    /// The database, when `db_url` is set.
    pub fn pool(&self) -> Option<&Arc<DbPool>> {
        self.pool.get().and_then(Option::as_ref)
    }

    /// `avp_table`.
    pub fn table(&self) -> String {
        params::get_str(&self.table)
    }

    /// `use_domain`.
    pub fn use_domain(&self) -> bool {
        params::get_int(&self.use_domain) != 0
    }
}

fn spec_or_err(s: &str, f: &str) -> Result<(String, String), String> {
    names::spec(s).ok_or_else(|| format!("{f}: '{s}' is not an AVP ($avp(name))"))
}

/// A fixup keeping the text as written (AVP specs, sources, operations).
fn raw() -> Option<sr_sdk::fixup::FixupFn> {
    Some(fixup::f(fixup::const_str))
}

/// The module definition.
pub fn module() -> ModuleDef {
    let cell = params::str_cell;
    let col_cells = vec![
        ("uuid_column", cell("uuid")),
        ("username_column", cell("username")),
        ("domain_column", cell("domain")),
        ("attribute_column", cell("attribute")),
        ("value_column", cell("value")),
        ("type_column", cell("type")),
    ];
    let proto = Avpops {
        db_url: cell(""),
        table: cell(""),
        use_domain: params::int_cell(0),
        cols: Cols {
            uuid: String::new(),
            username: String::new(),
            domain: String::new(),
            attribute: String::new(),
            value: String::new(),
            typ: String::new(),
        },
        col_cells,
        pool: OnceLock::new(),
    };
    let mut def = ModuleDef::new("avpops")
        .param("db_url", ParamKind::Str, params::string(&proto.db_url))
        .param("avp_table", ParamKind::Str, params::string(&proto.table))
        .param("use_domain", ParamKind::Int, params::int(&proto.use_domain))
        .param("db_scheme", ParamKind::Any, |_| {
            Err("avpops: db_scheme is not supported".into())
        })
        .param("buf_size", ParamKind::Any, |_| Ok(()));
    for (name, c) in &proto.col_cells {
        def = def.param(name, ParamKind::Str, params::string(c));
    }
    let holder: Arc<OnceLock<Arc<Avpops>>> = Arc::new(OnceLock::new());
    let proto = Arc::new(RwLock::new(Some(proto)));
    let h0 = holder.clone();
    def = def.on_init(move |core| {
        let Some(mut a) = proto.write().ok().and_then(|mut p| p.take()) else {
            return Ok(());
        };
        let get = |n: &str| {
            a.col_cells
                .iter()
                .find(|(k, _)| *k == n)
                .map(|(_, c)| params::get_str(c))
                .unwrap_or_default()
        };
        a.cols = Cols {
            uuid: get("uuid_column"),
            username: get("username_column"),
            domain: get("domain_column"),
            attribute: get("attribute_column"),
            value: get("value_column"),
            typ: get("type_column"),
        };
        let url = params::get_str(&a.db_url);
        if !url.is_empty() && params::get_str(&a.table).is_empty() {
            return Err(
                "avpops: db_url is set but avp_table is empty (as Kamailio, it has no default)"
                    .into(),
            );
        }
        let pool = if url.is_empty() {
            None
        } else {
            Some(Arc::new(
                DbPool::open(core, &url).map_err(|e| format!("avpops: db_url: {e}"))?,
            ))
        };
        let _ = a.pool.set(pool);
        let _ = h0.set(Arc::new(a));
        Ok(())
    });
    let get = move |h: &Arc<OnceLock<Arc<Avpops>>>| h.get().cloned();
    for n in 2..=2 {
        let h = holder.clone();
        def = def.cmd("avp_db_load", n, RouteType::ANY, raw(), move |ctx, p| {
            let Some(a) = get(&h) else { return -1 };
            let src = p[0].str(ctx).into_owned();
            let name = p[1].str(ctx).trim().to_string();
            let name = if name == "*" {
                None
            } else {
                match names::spec(&name) {
                    Some((n, _)) => Some(n),
                    None => return -1,
                }
            };
            db::load(&a, ctx, &src, name.as_deref())
        });
        let h = holder.clone();
        def = def.cmd("avp_db_store", n, RouteType::ANY, raw(), move |ctx, p| {
            let Some(a) = get(&h) else { return -1 };
            let src = p[0].str(ctx).into_owned();
            let Some((name, _)) = names::spec(&p[1].str(ctx)) else {
                return -1;
            };
            db::store(&a, ctx, &src, &name)
        });
        let h = holder.clone();
        def = def.cmd("avp_db_delete", n, RouteType::ANY, raw(), move |ctx, p| {
            let Some(a) = get(&h) else { return -1 };
            let src = p[0].str(ctx).into_owned();
            let name = p[1].str(ctx).trim().to_string();
            let name = if name == "*" {
                None
            } else {
                match names::spec(&name) {
                    Some((n, _)) => Some(n),
                    None => return -1,
                }
            };
            db::delete(&a, ctx, &src, name.as_deref())
        });
    }
    let avp_fixup = |f: &'static str| -> Option<sr_sdk::fixup::FixupFn> {
        Some(Arc::new(move |_env, i, arg| {
            let t = arg.text().into_owned();
            if i == 0
                && !t.trim().starts_with("$ru")
                && !t.trim().starts_with("$du")
                && !t.trim().starts_with("$br")
            {
                spec_or_err(&t, f)?;
            }
            Ok(Fixed::Str(t))
        }))
    };
    def = def.cmd(
        "is_avp_set",
        1,
        RouteType::ANY,
        avp_fixup("is_avp_set"),
        |ctx, p| match names::spec(&p[0].str(ctx)) {
            Some((n, f)) => ops::is_set(ctx, &n, &f),
            None => -1,
        },
    );
    def = def.cmd(
        "avp_check",
        2,
        RouteType::ANY,
        avp_fixup("avp_check"),
        |ctx, p| {
            let spec = p[1].str(ctx).into_owned();
            match names::spec(&p[0].str(ctx)) {
                Some((n, _)) => ops::avp_check(ctx, &n, &spec),
                None => -1,
            }
        },
    );
    def = def.cmd(
        "avp_copy",
        2,
        RouteType::ANY,
        avp_fixup("avp_copy"),
        |ctx, p| {
            let (Some((src, _)), Some((dst, flags))) =
                (names::spec(&p[0].str(ctx)), names::spec(&p[1].str(ctx)))
            else {
                return -1;
            };
            ops::copy(ctx, &src, &dst, &flags)
        },
    );
    def = def.cmd(
        "avp_op",
        2,
        RouteType::ANY,
        avp_fixup("avp_op"),
        |ctx, p| {
            let spec = p[1].str(ctx).into_owned();
            match names::spec(&p[0].str(ctx)) {
                Some((n, _)) => ops::op(ctx, &n, &spec),
                None => -1,
            }
        },
    );
    def = def.cmd(
        "avp_delete",
        1,
        RouteType::ANY,
        avp_fixup("avp_delete"),
        |ctx, p| match names::spec(&p[0].str(ctx)) {
            Some((n, f)) => ops::delete(ctx, &n, &f),
            None => -1,
        },
    );
    def = def.cmd("avp_subst", 2, RouteType::ANY, raw(), |ctx, p| {
        let (spec, expr) = (p[0].str(ctx).into_owned(), p[1].str(ctx).into_owned());
        subst::run(ctx, &spec, &expr)
    });
    // avp_subst_pv: the same, the expression's variables read first.
    let first_raw = fixup::f(|env, i, arg| {
        if i == 1 {
            fixup::spve(env, i, arg)
        } else {
            fixup::const_str(env, i, arg)
        }
    });
    def = def.cmd(
        "avp_subst_pv",
        2,
        RouteType::ANY,
        Some(first_raw),
        |ctx, p| {
            let (spec, expr) = (p[0].str(ctx).into_owned(), p[1].str(ctx).into_owned());
            subst::run(ctx, &spec, &expr)
        },
    );
    for n in 1..=2 {
        let h = holder.clone();
        let fx = fixup::f(|env, i, arg| {
            if i == 0 {
                fixup::spve(env, i, arg)
            } else {
                fixup::const_str(env, i, arg)
            }
        });
        def = def.cmd(
            "avp_db_query",
            n,
            RouteType::ANY,
            Some(fx),
            move |ctx, p| {
                let Some(a) = get(&h) else { return -1 };
                let sql = p[0].str(ctx).into_owned();
                let names = p.get(1).map(|x| x.str(ctx).into_owned());
                db::query(&a, ctx, &sql, names.as_deref())
            },
        );
    }
    def = def.cmd("avp_print", 0, RouteType::ANY, None, |ctx, _| {
        for (name, v) in ctx.msg.avps.iter() {
            match v {
                Value::Int(i) => lm_info!("avp_print: name=<{name}> val_int=<{i}>"),
                other => {
                    let s = other.as_str();
                    lm_info!("avp_print: name=<{name}> val_str=<{s} / {}>", s.len())
                }
            }
        }
        1
    });
    def.cmd(
        "avp_pushto",
        2,
        RouteType::ANY,
        avp_fixup("avp_pushto"),
        |ctx, p| {
            let dest = p[0].str(ctx).into_owned();
            match names::spec(&p[1].str(ctx)) {
                Some((n, f)) => ops::pushto(ctx, &dest, &n, &f),
                None => -1,
            }
        },
    )
}
