//! # lcr: least cost routing
//!
//! Kamailio's `lcr` module. Gateways (`lcr_gw`) and rules (`lcr_rule`:
//! a user-part prefix, optional From and Request-URI patterns) with their
//! targets (`lcr_rule_target`: a gateway, a priority, a weight) are read
//! from the database per LCR instance. `load_gws(lcr_id)` keeps the
//! gateways that match the request, best first, in `gw_uri_avp`;
//! `next_gw()` rewrites the Request-URI (and `$du`) for the next one, in
//! a request route or after a failure. `defunct_gw`/`inactivate_gw` take
//! a failing gateway out for a while or until it answers OPTIONS pings;
//! `from_gw`/`to_gw` tell whether an address is a gateway's. The RPC
//! commands reload and show the tables. A reload builds new tables and
//! swaps them in whole.
#![forbid(unsafe_code)]

pub mod ping;
pub mod rpc;
pub mod select;
pub mod tables;

use sr_mod_tm::local::{LocalRequests, Taken};
use sr_sdk::db::DbPool;
use sr_sdk::prelude::*;
use std::net::IpAddr;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, RwLock};
use tables::{Instance, Names, GW_ACTIVE, GW_INACTIVE, GW_PINGING};

/// The AVPs the module uses (their names), fixed at start.
#[derive(Debug, Default, Clone)]
pub struct Avps {
    gw_uri: String,
    ruri_user: String,
    tag: Option<String>,
    flags: Option<String>,
    rule_id: Option<String>,
    defunct_gw: Option<String>,
    lcr_id: Option<String>,
    mt_values: Option<String>,
}

/// The module's state.
pub struct Lcr {
    db_url: Arc<RwLock<String>>,
    strs: Vec<(&'static str, Arc<RwLock<String>>)>,
    ints: Vec<(&'static str, Arc<AtomicI64>)>,
    pool: OnceLock<DbPool>,
    avps: OnceLock<Avps>,
    /// The instances (`lcr_id` 1 is index 0); replaced whole by a reload.
    tables: RwLock<Arc<Vec<Instance>>>,
    reloading: Mutex<()>,
    pings: LocalRequests<ping::PingTag>,
    mtree: OnceLock<Arc<sr_mod_mtree::MtreeApi>>,
    valid_codes: OnceLock<Vec<u16>>,
}

/// Table and column parameters: (parameter, default).
const NAME_PARAMS: &[(&str, &str)] = &[
    ("lcr_gw_table", "lcr_gw"),
    ("lcr_rule_table", "lcr_rule"),
    ("lcr_rule_target_table", "lcr_rule_target"),
    ("id_column", "id"),
    ("lcr_id_column", "lcr_id"),
    ("prefix_column", "prefix"),
    ("from_uri_column", "from_uri"),
    ("mt_tvalue_column", "mt_tvalue"),
    ("request_uri_column", "request_uri"),
    ("stopper_column", "stopper"),
    ("enabled_column", "enabled"),
    ("rule_id_column", "rule_id"),
    ("priority_column", "priority"),
    ("gw_id_column", "gw_id"),
    ("weight_column", "weight"),
    ("gw_name_column", "gw_name"),
    ("ip_addr_column", "ip_addr"),
    ("port_column", "port"),
    ("uri_scheme_column", "uri_scheme"),
    ("transport_column", "transport"),
    ("params_column", "params"),
    ("hostname_column", "hostname"),
    ("strip_column", "strip"),
    ("tag_column", "tag"),
    ("flags_column", "flags"),
    ("defunct_column", "defunct"),
    ("gw_uri_avp", ""),
    ("ruri_user_avp", ""),
    ("tag_avp", ""),
    ("flags_avp", ""),
    ("rule_id_avp", ""),
    ("defunct_gw_avp", ""),
    ("lcr_id_avp", ""),
    ("mt_pv_values", ""),
    ("mtree", "lcr"),
    ("ping_valid_reply_codes", ""),
    ("ping_from", "sip:pinger@localhost"),
    ("ping_socket", ""),
];

/// Integer parameters: (parameter, default).
const INT_PARAMS: &[(&str, i64)] = &[
    ("lcr_count", 1),
    ("lcr_rule_hash_size", 128),
    ("lcr_gw_count", 128),
    ("defunct_capability", 0),
    ("dont_strip_or_prefix_flag", -1),
    ("priority_ordering", 0),
    ("fetch_rows", 1024),
    ("ping_interval", 0),
    ("ping_inactivate_threshold", 1),
];

/// Kamailio's protocol number of a transport.
fn proto_code(p: Proto) -> u32 {
    u32::from(p.number())
}

impl Lcr {
    pub(crate) fn s(&self, name: &str) -> String {
        self.strs
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, c)| params::get_str(c))
            .unwrap_or_default()
    }

    pub(crate) fn i(&self, name: &str) -> i64 {
        self.ints
            .iter()
            .find(|(n, _)| *n == name)
            .map_or(0, |(_, c)| params::get_int(c))
    }

    /// The instances in use.
    pub fn tables(&self) -> Arc<Vec<Instance>> {
        self.tables
            .read()
            .map(|t| t.clone())
            .unwrap_or_else(|e| e.into_inner().clone())
    }

    fn names(&self) -> Names {
        let cols = NAME_PARAMS
            .iter()
            .filter_map(|(p, _)| p.strip_suffix("_column").map(|c| (c, self.s(p))))
            .collect();
        Names {
            gw_table: self.s("lcr_gw_table"),
            rule_table: self.s("lcr_rule_table"),
            target_table: self.s("lcr_rule_target_table"),
            cols,
        }
    }

    /// Reads every instance anew and swaps them in; the tables in use
    /// stay when any row is refused.
    pub fn reload(&self) -> Result<(), String> {
        let _one = self.reloading.lock().unwrap_or_else(|e| e.into_inner());
        let pool = self.pool.get().ok_or("no database connection")?;
        let names = self.names();
        let (count, gw_count) = (self.i("lcr_count"), self.i("lcr_gw_count") as usize);
        let mt = !self.s("mt_pv_values").is_empty();
        let all = pool
            .with(|c| {
                (1..=count)
                    .map(|id| tables::load_instance(c, &names, id, gw_count, mt))
                    .collect::<Result<Vec<_>, String>>()
                    .map_err(sr_sdk::db::DbError)
            })
            .map_err(|e| e.to_string())?;
        match self.tables.write() {
            Ok(mut g) => *g = Arc::new(all),
            Err(e) => *e.into_inner() = Arc::new(all),
        }
        Ok(())
    }

    fn avps(&self) -> &Avps {
        self.avps.get_or_init(Avps::default)
    }

    fn instance_index(&self, lcr_id: i64) -> Option<usize> {
        if lcr_id < 1 || lcr_id > self.i("lcr_count") {
            lm_err!("lcr: invalid lcr_id parameter value {lcr_id}");
            return None;
        }
        Some(lcr_id as usize - 1)
    }

    /// The caller URI's user when `mt_pv_values` rules apply (`None`
    /// without them or without a caller); `Err` for a caller URI that
    /// does not parse.
    pub(crate) fn caller_user(&self, from: &str) -> Result<Option<String>, ()> {
        if self.mtree.get().is_none() || from.is_empty() {
            return Ok(None);
        }
        match sr_sdk::sip_msg::Uri::parse(from) {
            Ok(u) => Ok(Some(u.user.unwrap_or_default().to_string())),
            Err(_) => {
                lm_err!("lcr: error while parsing caller_uri");
                Err(())
            }
        }
    }

    /// mtree's mode 2 match of `user` in the `mtree` tree.
    pub(crate) fn mt_match(&self, user: &str) -> (Vec<String>, bool) {
        match self.mtree.get() {
            Some(api) => api.match_values(&self.s("mtree"), user),
            None => (Vec::new(), false),
        }
    }

    fn defunct_or_ping(&self) -> bool {
        self.i("defunct_capability") > 0 || self.i("ping_interval") > 0
    }

    /// `load_gws`: 1 when gateways matched, 2 when none, -1 on error.
    fn load_gws(&self, ctx: &mut Ctx<'_>, lcr_id: i64, user: Option<String>, from: &str) -> i32 {
        let Some(idx) = self.instance_index(lcr_id) else {
            return -1;
        };
        let user = match user {
            Some(u) => u,
            None => match ctx.msg.ruri_parsed() {
                Ok(u) if u.user.is_some() => u.user.unwrap_or_default().to_string(),
                _ => {
                    lm_err!("lcr: error while parsing R-URI");
                    return -1;
                }
            },
        };
        let a = self.avps();
        if self.i("defunct_capability") > 0 {
            if let Some(n) = &a.defunct_gw {
                ctx.msg.avps.remove_all(n);
            }
        }
        let tables = self.tables();
        let Some(inst) = tables.get(idx) else {
            return -1;
        };
        let ruri = ctx.msg.ruri().to_string();
        let mut rand = || sr_sdk::hash::random_u64() & 0x7f_ffff;
        // The caller's user in the mtree, asked when a rule needs it; as
        // mtree's mode 2, its values go to the AVP too.
        let caller = match self.caller_user(from) {
            Ok(c) => c,
            Err(()) => return -1,
        };
        let mut values_of = || {
            let (vals, ok) = self.mt_match(caller.as_deref().unwrap_or(""));
            if let Some(n) = &a.mt_values {
                ctx.msg.avps.remove_all(n);
                for v in &vals {
                    ctx.msg.avps.push(n, Value::Str(v.clone().into()));
                }
            }
            ok.then_some(vals)
        };
        let mt: Option<select::MtValues<'_>> = caller.is_some().then_some(&mut values_of);
        let found = match select::matching(
            inst,
            &user,
            from,
            Some(&ruri),
            sr_sdk::db::now() as u32,
            self.i("priority_ordering") == 1,
            &mut rand,
            mt,
        ) {
            Ok(f) => f,
            Err(_) => return -1,
        };
        ctx.msg.avps.remove_all(&a.gw_uri);
        ctx.msg.avps.remove_all(&a.ruri_user);
        // Worst first: the best is the newest, which next_gw takes.
        for m in found.iter().rev() {
            let gw = &inst.gws[m.gw_index - 1];
            if gw.strip as usize > user.len() {
                lm_err!("lcr: strip count of gw is too large <{}>", gw.strip);
                continue;
            }
            let v = select::encode(gw, m.gw_index, m.rule_id);
            ctx.msg.avps.push(&a.gw_uri, Value::Str(v.into()));
        }
        if self.defunct_or_ping() {
            if let Some(n) = &a.lcr_id {
                ctx.msg.avps.remove_all(n);
                ctx.msg.avps.push(n, Value::Int(lcr_id));
            }
        }
        if found.is_empty() {
            2
        } else {
            1
        }
    }

    /// `next_gw`: the next gateway into the Request-URI (and `$du`).
    fn next_gw(&self, ctx: &mut Ctx<'_>) -> i32 {
        let a = self.avps();
        let saved = ctx
            .msg
            .avps
            .get(&a.ruri_user, 0)
            .map(|v| v.as_str().into_owned());
        let user = match &saved {
            Some(u) => u.clone(),
            None => match ctx.msg.ruri_parsed() {
                Ok(u) => u.user.unwrap_or_default().to_string(),
                Err(_) => {
                    lm_err!("lcr: parsing of R-URI failed");
                    return -1;
                }
            },
        };
        let Some(value) = ctx
            .msg
            .avps
            .get(&a.gw_uri, 0)
            .map(|v| v.as_str().into_owned())
        else {
            return -1;
        };
        let Some(d) = select::decode(&value) else {
            lm_err!("lcr: invalid gw_uri_avp value <{value}>");
            return -1;
        };
        let flag = self.i("dont_strip_or_prefix_flag");
        let keep = (0..32).contains(&flag) && ctx.msg.flags & (1 << flag) != 0;
        let Some((ruri, du)) = select::uris(&d, &user, keep) else {
            lm_err!(
                "lcr: strip count <{}> is larger than R-URI user <{user}>",
                d.strip
            );
            return -1;
        };
        ctx.msg.avps.remove_newest(&a.gw_uri);
        if saved.is_none() {
            ctx.msg.avps.push(&a.ruri_user, Value::Str(user.into()));
        }
        ctx.msg.new_uri = Some(ruri);
        if du.is_some() {
            ctx.msg.dst_uri = du;
        }
        if let Some(n) = &a.flags {
            ctx.msg.avps.push(n, Value::Int(i64::from(d.flags)));
        }
        if let Some(n) = &a.tag {
            ctx.msg.avps.push(n, Value::Str(d.tag.clone().into()));
        }
        if let Some(n) = &a.rule_id {
            ctx.msg.avps.push(n, Value::Int(i64::from(d.rule_id)));
        }
        if self.defunct_or_ping() {
            if let Some(n) = &a.defunct_gw {
                ctx.msg.avps.remove_all(n);
                ctx.msg.avps.push(n, Value::Int(d.gw_index as i64));
            }
        }
        1
    }

    /// The gateway `next_gw` chose last (through `lcr_id_avp` and
    /// `defunct_gw_avp`), with its instance.
    fn current_gw<R>(&self, ctx: &Ctx<'_>, f: impl FnOnce(&tables::Gw) -> R) -> Option<R> {
        let a = self.avps();
        let Some(lcr_id) = a.lcr_id.as_ref().and_then(|n| ctx.msg.avps.get(n, 0)) else {
            lm_err!("lcr: lcr_id_avp was not found");
            return None;
        };
        let Some(index) = a.defunct_gw.as_ref().and_then(|n| ctx.msg.avps.get(n, 0)) else {
            lm_err!("lcr: defunct_gw_avp was not found");
            return None;
        };
        let (lcr_id, index) = (lcr_id.as_int(), index.as_int());
        let tables = self.tables();
        let inst = lcr_id
            .checked_sub(1)
            .and_then(|i| usize::try_from(i).ok())
            .and_then(|i| tables.get(i))?;
        if index < 1 || index as usize > inst.gws.len() {
            lm_err!("lcr: gw index <{index}> is out of bounds");
            return None;
        }
        Some(f(&inst.gws[index as usize - 1]))
    }

    fn defunct_gw(&self, ctx: &mut Ctx<'_>, period: i64) -> i32 {
        if self.i("defunct_capability") == 0 {
            lm_err!("lcr: no defunct gw capability, activate by setting defunct_capability module param");
            return -1;
        }
        // Kamailio reads the period as a C int.
        if !(0..=i64::from(i32::MAX)).contains(&period) {
            lm_err!("lcr: invalid defunct_period param value {period}");
            return -1;
        }
        let until = defunct_until(period);
        self.current_gw(ctx, |g| g.defunct_until.store(until, Ordering::Relaxed))
            .map_or(-1, |_| 1)
    }

    fn inactivate_gw(&self, ctx: &mut Ctx<'_>) -> i32 {
        if self.i("ping_interval") == 0 {
            lm_err!(
                "lcr: no inactivate gw capability, activate by setting ping_interval module param"
            );
            return -1;
        }
        let threshold = self.i("ping_inactivate_threshold") as u32;
        self.current_gw(ctx, |g| {
            let s = g.state.load(Ordering::Relaxed);
            let new = if s == GW_ACTIVE {
                GW_PINGING + threshold
            } else if s > GW_INACTIVE {
                s - 1
            } else {
                s
            };
            g.state.store(new, Ordering::Relaxed);
            if new == GW_INACTIVE {
                lm_info!("lcr: failing gw '{}' has been inactivated", g.name);
            }
        })
        .map_or(-1, |_| 1)
    }

    /// `from_gw`/`to_gw` on instance `idx`; `mark` stores the gateway's
    /// tag and flags (from_gw).
    fn addr_check(
        &self,
        ctx: &mut Ctx<'_>,
        idx: usize,
        ip: IpAddr,
        transport: u32,
        port: u32,
        mark: bool,
    ) -> bool {
        let tables = self.tables();
        let Some(inst) = tables.get(idx) else {
            return false;
        };
        let Some(gw) = select::find_by_addr(inst, ip, transport, port) else {
            return false;
        };
        if mark {
            let a = self.avps();
            if let Some(n) = &a.tag {
                ctx.msg.avps.push(n, Value::Str(gw.tag.clone().into()));
            }
            if let Some(n) = &a.flags {
                ctx.msg.avps.push(n, Value::Int(i64::from(gw.flags)));
            }
        }
        true
    }

    /// The first instance (1-based) `addr_check` accepts, or -1.
    fn any_check(
        &self,
        ctx: &mut Ctx<'_>,
        ip: IpAddr,
        transport: u32,
        port: u32,
        mark: bool,
    ) -> i32 {
        let n = self.tables().len();
        (0..n)
            .find(|&i| self.addr_check(ctx, i, ip, transport, port, mark))
            .map_or(-1, |i| i as i32 + 1)
    }
}

/// Now plus `period` seconds as a Unix time of 32 bits (the largest when
/// beyond).
pub fn defunct_until(period: i64) -> u32 {
    u32::try_from(sr_sdk::db::now().saturating_add(period).max(0)).unwrap_or(u32::MAX)
}

/// An address parameter: an IPv4 or IPv6 address.
fn addr_param(s: &str) -> Option<IpAddr> {
    let ip = tables::parse_ip(s);
    if ip.is_none() {
        lm_err!("lcr: addr param value {s} is not an IP address");
    }
    ip
}

/// A transport parameter: 0 (any) to 4.
fn transport_param(t: i64) -> Option<u32> {
    if !(0..=4).contains(&t) {
        lm_err!("lcr: invalid transport parameter value {t}");
        return None;
    }
    Some(t as u32)
}

/// A port parameter: 0 (any) to 65535.
fn port_param(p: i64) -> Option<u32> {
    if !(0..=65535).contains(&p) {
        lm_err!("lcr: invalid port parameter value {p}");
        return None;
    }
    Some(p as u32)
}

/// The Request-URI's host as an address, and its `transport` parameter
/// as Kamailio's protocol number (to_gw without parameters).
fn ruri_target(ctx: &Ctx<'_>) -> Option<(IpAddr, u32)> {
    let u = ctx.msg.ruri_parsed().ok()?;
    let host = u.host_str;
    let ip = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host)
        .parse()
        .ok()?;
    let t = u.transport().and_then(Proto::parse).map_or(0, proto_code);
    Some((ip, t))
}

/// The parameters' checks and the AVP names, at start.
fn check_params(l: &Lcr) -> Result<Avps, String> {
    for (p, min) in [
        ("lcr_count", 1),
        ("lcr_rule_hash_size", 1),
        ("lcr_gw_count", 1),
        ("fetch_rows", 1),
    ] {
        if l.i(p) < min {
            return Err(format!("invalid {p} module parameter value <{}>", l.i(p)));
        }
    }
    let flag = l.i("dont_strip_or_prefix_flag");
    if flag != -1 && !(0..32).contains(&flag) {
        return Err(format!("invalid dont_strip_or_prefix_flag value <{flag}>"));
    }
    if !(0..=1).contains(&l.i("priority_ordering")) {
        return Err(format!(
            "invalid priority_ordering value <{}>",
            l.i("priority_ordering")
        ));
    }
    let avp = |p: &str| -> Result<Option<String>, String> {
        let spec = l.s(p);
        if spec.is_empty() {
            return Ok(None);
        }
        if !spec.trim_start().starts_with("$avp(") {
            return Err(format!("malformed or non AVP definition <{spec}> ({p})"));
        }
        sr_sdk::avp::spec_name(&spec)
            .map(Some)
            .ok_or_else(|| format!("invalid AVP definition <{spec}> ({p})"))
    };
    let gw_uri = avp("gw_uri_avp")?.ok_or("AVP gw_uri_avp has not been defined")?;
    let ruri_user = avp("ruri_user_avp")?.ok_or("AVP ruri_user_avp has not been defined")?;
    let ping = l.i("ping_interval");
    if ping != 0 && ping < 10 {
        return Err(format!(
            "invalid ping_interval value '{ping}' (0, or 10 and more)"
        ));
    }
    let mut a = Avps {
        gw_uri,
        ruri_user,
        tag: avp("tag_avp")?,
        flags: avp("flags_avp")?,
        rule_id: avp("rule_id_avp")?,
        ..Default::default()
    };
    if l.defunct_or_ping() {
        a.defunct_gw =
            Some(avp("defunct_gw_avp")?.ok_or("AVP defunct_gw_avp has not been defined")?);
        a.lcr_id = Some(avp("lcr_id_avp")?.ok_or("AVP lcr_id_avp has not been defined")?);
    }
    if ping > 0 {
        let t = l.i("ping_inactivate_threshold");
        if !(1..=32).contains(&t) {
            return Err(format!("invalid ping_inactivate_threshold value '{t}'"));
        }
        let codes = ping::reply_codes(&l.s("ping_valid_reply_codes"))?;
        let _ = l.valid_codes.set(codes);
    }
    a.mt_values = avp("mt_pv_values")?;
    Ok(a)
}

fn init(l: &Arc<Lcr>, core: &dyn Core) -> Result<(), String> {
    let a = check_params(l).map_err(|e| format!("lcr: {e}"))?;
    if a.mt_values.is_some() {
        let api = bind::<sr_mod_mtree::MtreeApi>(core, sr_mod_mtree::MTREE_API)
            .ok_or("lcr: could not bind mtree api (load mtree before lcr for mt_pv_values)")?;
        let _ = l.mtree.set(api);
    }
    let _ = l.avps.set(a);
    let url = params::get_str(&l.db_url);
    let pool = DbPool::open(core, &url).map_err(|e| format!("lcr: {e}"))?;
    let n = l.names();
    pool.with(|c| {
        use sr_sdk::db::lcr_tables as t;
        sr_sdk::db::check_version(c, &n.rule_table, t::LCR_RULE_VERSION)?;
        sr_sdk::db::check_version(c, &n.target_table, t::LCR_RULE_TARGET_VERSION)?;
        sr_sdk::db::check_version(c, &n.gw_table, t::LCR_GW_VERSION)
    })
    .map_err(|e| format!("lcr: error during table version check: {e}"))?;
    let _ = l.pool.set(pool);
    l.reload()
        .map_err(|e| format!("lcr: failed to reload lcr tables: {e}"))?;
    if l.i("ping_interval") > 0 {
        ping::start(l, core)?;
    }
    Ok(())
}

/// The `lcr` module.
pub fn module() -> ModuleDef {
    let l = Arc::new(Lcr {
        db_url: params::str_cell("mysql://kamailioro:kamailioro@localhost/kamailio"),
        strs: NAME_PARAMS
            .iter()
            .map(|(n, d)| (*n, params::str_cell(d)))
            .collect(),
        ints: INT_PARAMS
            .iter()
            .map(|(n, d)| (*n, params::int_cell(*d)))
            .collect(),
        pool: OnceLock::new(),
        avps: OnceLock::new(),
        tables: RwLock::new(Arc::new(Vec::new())),
        reloading: Mutex::new(()),
        pings: LocalRequests::new("lcr"),
        mtree: OnceLock::new(),
        valid_codes: OnceLock::new(),
    });
    let mut def = ModuleDef::new("lcr").param("db_url", ParamKind::Str, params::string(&l.db_url));
    for (n, c) in &l.strs {
        def = def.param(n, ParamKind::Str, params::string(c));
    }
    for (n, c) in &l.ints {
        def = def.param(n, ParamKind::Int, params::int(c));
    }
    let li = l.clone();
    def = def.on_init(move |core| init(&li, core));
    def = funcs(def, &l);
    def = rpc::register(def, &l);
    let lr = l.clone();
    def.on_response(move |ctx| match lr.pings.take_reply(ctx.msg) {
        Taken::NotOurs => false,
        Taken::Absorbed => true,
        Taken::Ended(e) => {
            ping::ended(&lr, e);
            true
        }
    })
}

/// Fixups: `igp` for the parameters at `ints`, `spve` for the others.
fn fixups(ints: &'static [usize]) -> Option<fixup::FixupFn> {
    Some(Arc::new(move |env, i, arg| {
        if ints.contains(&i) {
            fixup::igp(env, i, arg)
        } else {
            fixup::spve(env, i, arg)
        }
    }))
}

fn funcs(mut def: ModuleDef, l: &Arc<Lcr>) -> ModuleDef {
    let rf = RouteType::REQUEST | RouteType::FAILURE;
    let rfo = rf | RouteType::ONREPLY;
    for n in 1..=3usize {
        let m = l.clone();
        def = def.cmd("load_gws", n, rf, fixups(&[0]), move |ctx, p| {
            let id = p[0].int(ctx);
            let user = p.get(1).map(|x| x.str(ctx).into_owned());
            let from = p
                .get(2)
                .map(|x| x.str(ctx).into_owned())
                .unwrap_or_default();
            m.load_gws(ctx, id, user, &from)
        });
    }
    let m = l.clone();
    def = def.cmd("next_gw", 0, rf, None, move |ctx, _| m.next_gw(ctx));
    let m = l.clone();
    def = def.cmd("defunct_gw", 1, rf, fixups(&[0]), move |ctx, p| {
        let period = p[0].int(ctx);
        m.defunct_gw(ctx, period)
    });
    let m = l.clone();
    def = def.cmd("inactivate_gw", 0, rf, None, move |ctx, _| {
        m.inactivate_gw(ctx)
    });
    // from_gw(lcr_id[, addr, proto[, port]]) and from_any_gw([addr, proto[, port]]).
    for n in [1usize, 3, 4] {
        let m = l.clone();
        def = def.cmd("from_gw", n, rfo, fixups(&[0, 2, 3]), move |ctx, p| {
            let Some(idx) = m.instance_index(p[0].int(ctx)) else {
                return -1;
            };
            let Some((ip, t, port)) = addr_args(ctx, &p[1..]) else {
                return -1;
            };
            if m.addr_check(ctx, idx, ip, t, port, true) {
                1
            } else {
                -1
            }
        });
    }
    for n in [0usize, 2, 3] {
        let m = l.clone();
        def = def.cmd("from_any_gw", n, rfo, fixups(&[1, 2]), move |ctx, p| {
            let Some((ip, t, port)) = addr_args(ctx, p) else {
                return -1;
            };
            m.any_check(ctx, ip, t, port, true)
        });
    }
    for n in [1usize, 3] {
        let m = l.clone();
        def = def.cmd("to_gw", n, rfo, fixups(&[0, 2]), move |ctx, p| {
            let Some(idx) = m.instance_index(p[0].int(ctx)) else {
                return -1;
            };
            let Some((ip, t)) = to_args(ctx, &p[1..]) else {
                return -1;
            };
            if m.addr_check(ctx, idx, ip, t, 0, false) {
                1
            } else {
                -1
            }
        });
    }
    for n in [0usize, 2] {
        let m = l.clone();
        def = def.cmd("to_any_gw", n, rfo, fixups(&[1]), move |ctx, p| {
            let Some((ip, t)) = to_args(ctx, p) else {
                return -1;
            };
            m.any_check(ctx, ip, t, 0, false)
        });
    }
    def
}

/// `from_gw`'s address, transport and port: the given ones (port 0,
/// any, unless given), or the request's source.
fn addr_args(ctx: &mut Ctx<'_>, p: &[Fixed]) -> Option<(IpAddr, u32, u32)> {
    if p.is_empty() {
        let r = &ctx.msg.rcv;
        return Some((r.src.ip(), proto_code(r.proto), u32::from(r.src.port())));
    }
    let ip = addr_param(&p[0].str(ctx))?;
    let t = transport_param(p[1].int(ctx))?;
    let port = match p.get(2) {
        Some(x) => port_param(x.int(ctx))?,
        None => 0,
    };
    Some((ip, t, port))
}

/// `to_gw`'s address and transport: the given ones, or the Request-URI's.
fn to_args(ctx: &mut Ctx<'_>, p: &[Fixed]) -> Option<(IpAddr, u32)> {
    if p.is_empty() {
        return ruri_target(ctx);
    }
    let ip = addr_param(&p[0].str(ctx))?;
    let t = transport_param(p[1].int(ctx))?;
    Some((ip, t))
}
