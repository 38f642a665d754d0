//! # drouting: dynamic routing to gateways
//!
//! Kamailio's drouting: rules in `dr_rules` pick, by the caller's group
//! (`dr_groups`, or a number given), the longest prefix of the
//! Request-URI's user and the time of day (`timerec`, see
//! [`sr_mod_tmrec::rec`]), a list of gateways (`dr_gateways`,
//! `dr_gw_lists`) to try in turn. `do_routing()` rewrites the
//! Request-URI for the first and keeps the others in an AVP for
//! `next_routing()` in failure_route; `is_from_gw()` and `goes_to_gw()`
//! match addresses against the gateways; RPC `drouting.reload` reads the
//! tables again.
#![forbid(unsafe_code)]

pub mod data;
pub mod rules;
pub mod tree;

use data::{Data, Tables};
use sr_sdk::db::{Cond, DbPool, DbValue};
use sr_sdk::fixup::{self, Fixed};
use sr_sdk::prelude::*;
use sr_sdk::sip_msg::{Host, Uri};
use std::cell::Cell;
use std::net::IpAddr;
use std::sync::{Arc, OnceLock, RwLock, Weak};

/// The internal AVP names when `ruri_avp`/`attrs_avp` are not set.
const RURI_AVP: &str = "__drouting_ruri";
const ATTRS_AVP: &str = "__drouting_attrs";

struct Dr {
    db_url: Arc<RwLock<String>>,
    drd_table: Arc<RwLock<String>>,
    drr_table: Arc<RwLock<String>>,
    drg_table: Arc<RwLock<String>>,
    drl_table: Arc<RwLock<String>>,
    user_col: Arc<RwLock<String>>,
    domain_col: Arc<RwLock<String>>,
    grpid_col: Arc<RwLock<String>>,
    ruri_avp: Arc<RwLock<String>>,
    attrs_avp: Arc<RwLock<String>>,
    use_domain: Arc<std::sync::atomic::AtomicI64>,
    sort_order: Arc<std::sync::atomic::AtomicI64>,
    force_dns: Arc<std::sync::atomic::AtomicI64>,
    keepalive: Arc<std::sync::atomic::AtomicI64>,
    core: OnceLock<Weak<dyn Core>>,
    pool: OnceLock<DbPool>,
    data: RwLock<Arc<Data>>,
}

fn s(c: &RwLock<String>) -> String {
    params::get_str(c)
}

impl Dr {
    fn ruri_avp(&self) -> String {
        sr_sdk::avp::spec_name(&s(&self.ruri_avp)).unwrap_or_else(|| RURI_AVP.into())
    }

    fn attrs_avp(&self) -> String {
        sr_sdk::avp::spec_name(&s(&self.attrs_avp)).unwrap_or_else(|| ATTRS_AVP.into())
    }

    fn data(&self) -> Arc<Data> {
        self.data.read().map(|d| d.clone()).unwrap_or_default()
    }

    fn pool(&self, core: &dyn Core) -> Result<&DbPool, String> {
        if let Some(p) = self.pool.get() {
            return Ok(p);
        }
        let p = DbPool::open(core, &s(&self.db_url)).map_err(|e| format!("drouting: {e}"))?;
        Ok(self.pool.get_or_init(|| p))
    }

    /// Reads the tables; the data in use is replaced only on success.
    fn reload(&self, core: &dyn Core) -> Result<(), String> {
        let tables = Tables {
            gateways: s(&self.drd_table),
            rules: s(&self.drr_table),
            lists: s(&self.drl_table),
        };
        let force_dns = params::get_int(&self.force_dns) != 0;
        let resolve = |host: &str| -> Option<IpAddr> {
            core.resolve(&format!("sip:{host}"), None)
                .ok()
                .map(|d| d.addr.ip())
        };
        let mut result = Err(String::new());
        self.pool(core)?
            .with(|c| {
                result = data::load(c, &tables, force_dns, &resolve);
                Ok(())
            })
            .map_err(|e| format!("drouting: {e}"))?;
        let d = result?;
        lm_info!(
            "drouting: {} gateways, {} addresses loaded",
            d.gws.len(),
            d.addrs.len()
        );
        *self.data.write().map_err(|_| "poisoned")? = Arc::new(d);
        Ok(())
    }

    /// The caller's group from `dr_groups` (From user, and host with
    /// `use_domain`).
    fn group_of_caller(&self, ctx: &mut Ctx<'_>) -> Option<u32> {
        let from = ctx.msg.msg().from().ok()?.uri_str.to_string();
        let u = Uri::parse(&from).ok()?;
        let user = u.user.unwrap_or("").to_string();
        let host = u.host_str.to_string();
        let mut conds = vec![Cond::eq(&s(&self.user_col), DbValue::str(user))];
        if params::get_int(&self.use_domain) != 0 {
            conds.push(Cond::eq(&s(&self.domain_col), DbValue::str(host)));
        }
        let col = s(&self.grpid_col);
        let table = s(&self.drg_table);
        let rows = self
            .pool(ctx.core)
            .ok()?
            .with(|c| c.query(&table, &conds, &[&col], None))
            .map_err(|e| lm_err!("drouting: {table}: {e}"))
            .ok()?;
        if rows.is_empty() {
            return None;
        }
        rows.get(0, &col).as_i64().map(|g| g as u32)
    }

    fn do_routing(&self, ctx: &mut Ctx<'_>, grp: Option<u32>) -> i32 {
        let Some(grp) = grp.or_else(|| self.group_of_caller(ctx)) else {
            lm_err!("drouting: no group for the caller");
            return -1;
        };
        let d = self.data();
        if d.gws.is_empty() {
            lm_err!("drouting: empty routing table");
            return -1;
        }
        let ruri = ctx.msg.ruri().to_string();
        let Ok(u) = Uri::parse(&ruri) else {
            lm_err!("drouting: unable to parse the Request-URI");
            return -1;
        };
        let parts = RuriParts::of(&u);
        let user = parts.user;
        let now = sr_sdk::db::now();
        let rule = if user.is_empty() {
            None
        } else {
            d.tree.lookup(user, grp, now)
        };
        let Some(rule) = rule.or_else(|| d.noprefix.active(grp, now).cloned()) else {
            return -1;
        };
        if let Some(name) = &rule.route {
            match ctx.core.route_id(RouteType::REQUEST, name) {
                Some(id) => {
                    let r = ctx.core.run_route(id, RouteType::REQUEST, ctx.msg);
                    if r.code < 1 {
                        return r.code;
                    }
                }
                None => lm_warn!("drouting: rule {}: no route '{name}'", rule.id),
            }
        }
        let sort = params::get_int(&self.sort_order);
        let order = RNG.with(|r| {
            let mut draw = |n: usize| -> usize {
                let x = r.get() ^ (r.get() << 13);
                let x = x ^ (x >> 7);
                let x = x ^ (x << 17);
                r.set(x);
                (x % n.max(1) as u64) as usize
            };
            rules::order(&rule.gws, sort, &mut draw)
        });
        let (ruri_avp, attrs_avp) = (self.ruri_avp(), self.attrs_avp());
        ctx.msg.avps.remove_all(&ruri_avp);
        // The others as AVPs, last first (so that the second comes out
        // first), each URI then its attributes; then the first one's
        // attributes, and its URI as the Request-URI. A gateway whose
        // strip leaves no user fails there, what was added staying (as
        // in Kamailio).
        for &gw in order.iter().skip(1).rev() {
            let Some(uri) = build_ruri(&parts, &d.gws[gw]) else {
                lm_err!("drouting: stripping {} leaves no user", d.gws[gw].strip);
                return -1;
            };
            ctx.msg.avps.push(&ruri_avp, Value::Str(uri.into()));
            let attrs = d.gws[gw].attrs.clone();
            ctx.msg.avps.push(&attrs_avp, Value::Str(attrs.into()));
        }
        let first = &d.gws[order[0]];
        let uri = build_ruri(&parts, first);
        ctx.msg
            .avps
            .push(&attrs_avp, Value::Str(first.attrs.clone().into()));
        let Some(uri) = uri else {
            lm_err!("drouting: stripping {} leaves no user", first.strip);
            return -1;
        };
        ctx.msg.new_uri = Some(uri);
        1
    }

    fn next_routing(&self, ctx: &mut Ctx<'_>) -> i32 {
        let (ruri_avp, attrs_avp) = (self.ruri_avp(), self.attrs_avp());
        let Some(Value::Str(uri)) = ctx.msg.avps.get(&ruri_avp, 0).cloned() else {
            return -1;
        };
        if Uri::parse(&uri).is_err() {
            return -1;
        }
        ctx.msg.new_uri = Some(uri.into_owned());
        ctx.msg.avps.remove_newest(&ruri_avp);
        // The attributes of the gateway just left go too.
        while let Some(v) = ctx.msg.avps.get(&attrs_avp, 0) {
            let was_str = matches!(v, Value::Str(_));
            ctx.msg.avps.remove_newest(&attrs_avp);
            if was_str {
                break;
            }
        }
        1
    }

    fn is_from_gw(&self, ctx: &mut Ctx<'_>, gw_type: Option<i64>, flags: i64) -> i32 {
        let src = ctx.msg.rcv.src;
        let d = self.data();
        let hit = d.addrs.iter().find(|(ip, port, t, _)| {
            *ip == src.ip()
                && (*port == 0 || *port == src.port())
                && gw_type.is_none_or(|want| want == *t)
        });
        let Some(&(_, _, _, strip)) = hit else {
            return -1;
        };
        if flags != 0 && strip > 0 {
            strip_user(ctx, strip);
        }
        1
    }

    fn goes_to_gw(&self, ctx: &mut Ctx<'_>, gw_type: i64) -> i32 {
        let hop = ctx
            .msg
            .dst_uri
            .clone()
            .unwrap_or_else(|| ctx.msg.ruri().to_string());
        let Ok(u) = Uri::parse(&hop) else {
            return -1;
        };
        let ip = match u.host {
            Host::V4(a) => IpAddr::V4(a),
            Host::V6(a) => IpAddr::V6(a),
            _ => return -1,
        };
        let d = self.data();
        let hit = d
            .addrs
            .iter()
            .any(|(a, _, t, _)| *a == ip && (gw_type < 0 || *t == gw_type));
        if hit {
            1
        } else {
            -1
        }
    }
}

thread_local! {
    static RNG: Cell<u64> = Cell::new({
        use std::hash::{BuildHasher, Hasher};
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_u8(7);
        h.finish() | 1
    });
}

/// The parts of the Request-URI drouting uses, as Kamailio's URI parser
/// gives them: with `user=phone` the URI is read as a telephone number,
/// its user ending at the first `;` and the user's own parameters
/// (`;isub=5`) taking the place of the URI's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RuriParts<'a> {
    /// The user.
    pub user: &'a str,
    /// The password, if any.
    pub password: Option<&'a str>,
    /// The parameters (without the first `;`).
    pub params: &'a str,
    /// The headers (without `?`), if any.
    pub headers: Option<&'a str>,
}

impl<'a> RuriParts<'a> {
    /// The parts of `u`.
    pub fn of(u: &Uri<'a>) -> RuriParts<'a> {
        let user = u.user.unwrap_or("");
        let phone = u.params.split(';').any(|p| {
            p.split_once('=')
                .is_some_and(|(n, v)| n.trim().eq_ignore_ascii_case("user") && v.trim() == "phone")
        });
        let (user, params) = match (phone, user.split_once(';')) {
            (false, _) => (user, u.params),
            (true, Some((num, up))) => (num, up),
            (true, None) => (user, ""),
        };
        RuriParts {
            user,
            password: u.password,
            params,
            headers: u.headers,
        }
    }
}

/// `sip:` + the gateway's prefix + the user without its first `strip`
/// characters (+ `:password`) + `@` + the gateway's address, with the
/// Request-URI's parameters and headers; `None` when the user is not
/// longer than `strip`.
pub fn build_ruri(u: &RuriParts<'_>, gw: &rules::Gateway) -> Option<String> {
    let user = u.user;
    if user.len() <= gw.strip {
        return None;
    }
    let mut out = format!("sip:{}{}", gw.pri_prefix, user.get(gw.strip..)?);
    if let Some(p) = u.password.filter(|p| !p.is_empty()) {
        out.push(':');
        out.push_str(p);
    }
    out.push('@');
    out.push_str(&gw.address);
    if !u.params.is_empty() {
        out.push(';');
        out.push_str(u.params);
    }
    if let Some(h) = u.headers {
        out.push('?');
        out.push_str(h);
    }
    Some(out)
}

/// Removes the first `n` characters of the Request-URI's user (the
/// core's `strip(n)`).
fn strip_user(ctx: &mut Ctx<'_>, n: usize) {
    let ruri = ctx.msg.ruri().to_string();
    let Ok(u) = Uri::parse(&ruri) else {
        return;
    };
    let Some(user) = u.user else {
        return;
    };
    // The user starts right after `scheme:`.
    let start = ruri.len() - u.opaque.len();
    let keep = user.get(n.min(user.len())..).unwrap_or("");
    let new = format!("{}{}{}", &ruri[..start], keep, &ruri[start + user.len()..]);
    ctx.msg.new_uri = Some(new);
}

fn int_arg(ctx: &mut Ctx<'_>, f: &Fixed) -> Option<i64> {
    match f {
        Fixed::Int(i) => Some(*i),
        Fixed::Dyn(e) => match e.eval(ctx) {
            Value::Int(i) => Some(i),
            Value::Str(s) => s.trim().parse().ok(),
            Value::Null => None,
        },
        other => Some(other.int(ctx)),
    }
}

/// The module definition.
pub fn module() -> ModuleDef {
    let str_cell = params::str_cell;
    let int_cell = params::int_cell;
    let dr = Arc::new(Dr {
        db_url: str_cell("mysql://kamailioro:kamailioro@localhost/kamailio"),
        drd_table: str_cell("dr_gateways"),
        drr_table: str_cell("dr_rules"),
        drg_table: str_cell("dr_groups"),
        drl_table: str_cell("dr_gw_lists"),
        user_col: str_cell("username"),
        domain_col: str_cell("domain"),
        grpid_col: str_cell("groupid"),
        ruri_avp: str_cell(""),
        attrs_avp: str_cell(""),
        use_domain: int_cell(1),
        sort_order: int_cell(0),
        force_dns: int_cell(1),
        keepalive: int_cell(0),
        core: OnceLock::new(),
        pool: OnceLock::new(),
        data: RwLock::new(Arc::new(Data::default())),
    });
    let mut def = ModuleDef::new("drouting");
    for (name, cell) in [
        ("db_url", &dr.db_url),
        ("drd_table", &dr.drd_table),
        ("drr_table", &dr.drr_table),
        ("drg_table", &dr.drg_table),
        ("drl_table", &dr.drl_table),
        ("drg_user_col", &dr.user_col),
        ("drg_domain_col", &dr.domain_col),
        ("drg_grpid_col", &dr.grpid_col),
        ("ruri_avp", &dr.ruri_avp),
        ("attrs_avp", &dr.attrs_avp),
    ] {
        def = def.param(name, ParamKind::Str, params::string(cell));
    }
    for (name, cell) in [
        ("use_domain", &dr.use_domain),
        ("sort_order", &dr.sort_order),
        ("force_dns", &dr.force_dns),
        ("enable_keepalive", &dr.keepalive),
    ] {
        def = def.param(name, ParamKind::Int, params::int(cell));
    }
    def = def.param("fetch_rows", ParamKind::Int, |_| Ok(()));
    let d = dr.clone();
    def = def.on_init(move |core| {
        if params::get_int(&d.keepalive) != 0 {
            return Err("drouting: enable_keepalive (gateway probing through the keepalive module) is not built".into());
        }
        if !(0..=2).contains(&params::get_int(&d.sort_order)) {
            return Err("drouting: sort_order must be 0, 1 or 2".into());
        }
        for (name, cell) in [("ruri_avp", &d.ruri_avp), ("attrs_avp", &d.attrs_avp)] {
            let v = s(cell);
            if !v.trim().is_empty() && !v.trim().starts_with("$avp(") {
                return Err(format!("drouting: {name} '{v}' is not an AVP ($avp(name))"));
            }
        }
        if let Some(h) = core.handle() {
            let _ = d.core.set(h);
        }
        d.reload(core)
    });
    let rq_fail = RouteType::REQUEST | RouteType::FAILURE;
    let d = dr.clone();
    def = def.cmd("do_routing", 0, rq_fail, None, move |ctx, _| {
        d.do_routing(ctx, None)
    });
    let d = dr.clone();
    def = def.cmd(
        "do_routing",
        1,
        rq_fail,
        Some(fixup::f(fixup::igp)),
        move |ctx, p| match int_arg(ctx, &p[0]) {
            Some(g) => d.do_routing(ctx, Some(g as u32)),
            None => {
                lm_err!("drouting: the group is not a number");
                -1
            }
        },
    );
    let d = dr.clone();
    def = def.cmd(
        "next_routing",
        0,
        RouteType::FAILURE,
        None,
        move |ctx, _| d.next_routing(ctx),
    );
    let d = dr.clone();
    def = def.cmd("use_next_gw", 0, rq_fail, None, move |ctx, _| {
        d.next_routing(ctx)
    });
    let gw_routes = rq_fail | RouteType::ONREPLY;
    for n in 0..=2 {
        let d = dr.clone();
        def = def.cmd(
            "is_from_gw",
            n,
            gw_routes,
            Some(fixup::f(fixup::igp)),
            move |ctx, p| {
                let t = match p.first() {
                    Some(f) => int_arg(ctx, f),
                    None => None,
                };
                let flags = p.get(1).and_then(|f| int_arg(ctx, f)).unwrap_or(0);
                d.is_from_gw(ctx, t, flags)
            },
        );
    }
    for n in 0..=1 {
        let d = dr.clone();
        def = def.cmd(
            "goes_to_gw",
            n,
            gw_routes,
            Some(fixup::f(fixup::igp)),
            move |ctx, p| {
                let t = p.first().and_then(|f| int_arg(ctx, f)).unwrap_or(-1);
                d.goes_to_gw(ctx, t)
            },
        );
    }
    let d = dr.clone();
    def.rpc(
        "drouting.reload",
        "Reloads the routing data from the database.",
        move |_| {
            let Some(core) = d.core.get().and_then(Weak::upgrade) else {
                return Ok(Json::String("cannot initialize database connection".into()));
            };
            Ok(Json::String(match d.reload(&*core) {
                Ok(()) => "reload ok".into(),
                Err(e) => {
                    lm_err!("{e}");
                    "failed to load routing data".into()
                }
            }))
        },
    )
}
