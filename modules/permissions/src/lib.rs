//! # permissions: access control by address and trusted peers
//!
//! Kamailio's `permissions` module, its address and trusted-peer parts:
//! groups of addresses and subnets from the `address` table (or
//! `address_file`) checked by `allow_source_address([group])`,
//! `allow_address(group, addr, port)` and the `*_group` variants that
//! give the group; peers from the `trusted` table (source address,
//! transport, From and Request-URI patterns) checked by
//! `allow_trusted()`; the matched row's tag into `peer_tag_avp`; reload
//! and dump over RPC. The hosts.allow-style files (`allow_routing`,
//! `allow_register`, `allow_uri`) are not built. See
//! `docs/modules/permissions.md`.
#![forbid(unsafe_code)]

pub mod address;
mod load;
mod rpc;
pub mod trusted;

use address::parse_ip;
use sr_sdk::db::DbPool;
use sr_sdk::prelude::*;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, RwLock, Weak};

/// The module parameters.
#[derive(Debug)]
pub struct Params {
    /// `db_url`.
    pub db_url: Arc<RwLock<String>>,
    /// `address_table`.
    pub address_table: Arc<RwLock<String>>,
    /// `grp_col`, `ip_addr_col`, `mask_col`, `port_col`, `tag_col`.
    pub address_cols: [Arc<RwLock<String>>; 5],
    /// `trusted_table`.
    pub trusted_table: Arc<RwLock<String>>,
    /// `source_col`, `proto_col`, `from_col`, `ruri_col`, `priority_col`
    /// (the tag column is `tag_col`).
    pub trusted_cols: [Arc<RwLock<String>>; 5],
    /// `db_mode` (trusted: 0 reads the table on every call, 1 caches it).
    pub db_mode: Arc<AtomicI64>,
    /// `peer_tag_avp`.
    pub peer_tag_avp: Arc<RwLock<String>>,
    /// `peer_tag_mode`.
    pub peer_tag_mode: Arc<AtomicI64>,
    /// `max_subnets`.
    pub max_subnets: Arc<AtomicI64>,
    /// `address_file`.
    pub address_file: Arc<RwLock<String>>,
    /// `load_backends`.
    pub load_backends: Arc<AtomicI64>,
    /// `reload_delta` (s).
    pub reload_delta: Arc<AtomicI64>,
}

fn s(v: &str) -> Arc<RwLock<String>> {
    Arc::new(RwLock::new(v.to_string()))
}

fn i(v: i64) -> Arc<AtomicI64> {
    Arc::new(AtomicI64::new(v))
}

impl Default for Params {
    fn default() -> Self {
        Params {
            db_url: s(""),
            address_table: s("address"),
            address_cols: [s("grp"), s("ip_addr"), s("mask"), s("port"), s("tag")],
            trusted_table: s("trusted"),
            trusted_cols: [
                s("src_ip"),
                s("proto"),
                s("from_pattern"),
                s("ruri_pattern"),
                s("priority"),
            ],
            db_mode: i(0),
            peer_tag_avp: s(""),
            peer_tag_mode: i(0),
            max_subnets: i(512),
            address_file: s(""),
            load_backends: i(0xffff),
            reload_delta: i(5),
        }
    }
}

/// Reads a string parameter.
pub fn text(l: &RwLock<String>) -> String {
    l.read().map(|s| s.clone()).unwrap_or_default()
}

fn int(a: &AtomicI64) -> i64 {
    a.load(Ordering::Relaxed)
}

/// The module's state.
#[derive(Default)]
pub struct Permissions {
    /// Parameters.
    pub p: Params,
    address: RwLock<Option<Arc<address::Table>>>,
    trusted: RwLock<Option<Arc<Vec<trusted::Row>>>>,
    pool: OnceLock<DbPool>,
    last_reload: Mutex<Option<std::time::Instant>>,
    core: OnceLock<Weak<dyn Core>>,
    tag_avp: OnceLock<Option<String>>,
}

impl Permissions {
    /// The address table, when there is one.
    pub fn address(&self) -> Option<Arc<address::Table>> {
        self.address.read().ok()?.clone()
    }

    /// The cached trusted table, when there is one.
    pub fn trusted(&self) -> Option<Arc<Vec<trusted::Row>>> {
        self.trusted.read().ok()?.clone()
    }

    fn uses(&self, backend: i64) -> bool {
        int(&self.p.load_backends) & backend != 0
    }

    fn tag_avp(&self) -> Option<&str> {
        self.tag_avp
            .get_or_init(|| sr_sdk::avp::spec_name(&text(&self.p.peer_tag_avp)))
            .as_deref()
    }

    /// Pushes a matched row's tag onto `peer_tag_avp`.
    fn push_tag(&self, msg: &mut SipMsg, tag: Option<&str>) {
        if let (Some(avp), Some(tag)) = (self.tag_avp(), tag) {
            msg.avps.push(avp, Value::str(tag.to_string()));
        }
    }

    /// Refuses a reload within `reload_delta` of the last one (address
    /// and trusted share the clock, as in Kamailio).
    fn rate_limit(&self) -> Result<(), String> {
        let delta = int(&self.p.reload_delta);
        let mut last = self.last_reload.lock().map_err(|_| "lock")?;
        let now = std::time::Instant::now();
        if delta > 0 && last.is_some_and(|t| now.duration_since(t).as_secs() < delta as u64) {
            return Err("ongoing reload".into());
        }
        *last = Some(now);
        Ok(())
    }

    /// Loads the address table again (from `address_file` or the
    /// database).
    pub fn load_address(&self, core: &dyn Core) -> Result<(), String> {
        let t = load::address(self, core)?;
        if let Ok(mut a) = self.address.write() {
            *a = t.map(Arc::new);
        }
        Ok(())
    }

    /// Loads the trusted table again (cached mode).
    pub fn load_trusted(&self, core: &dyn Core) -> Result<(), String> {
        let t = load::trusted(self, core)?;
        if let Ok(mut a) = self.trusted.write() {
            *a = t.map(Arc::new);
        }
        Ok(())
    }

    fn init(&self, core: &dyn Core) -> Result<(), String> {
        if int(&self.p.load_backends) == 0 {
            return Err("permissions: load_backends is 0: nothing to load".into());
        }
        let mode = int(&self.p.db_mode);
        if mode != 0 && mode != 1 {
            return Err(format!("permissions: db_mode {mode} (0 or 1)"));
        }
        let avp = text(&self.p.peer_tag_avp);
        if !avp.is_empty() && !avp.trim_start().starts_with("$avp(") {
            return Err(format!(
                "permissions: peer_tag_avp '{avp}' is not an $avp(...)"
            ));
        }
        if let Some(h) = core.handle() {
            let _ = self.core.set(h);
        }
        let url = text(&self.p.db_url);
        if !url.is_empty() {
            let driver =
                sr_sdk::db::driver_for(core, &url).map_err(|e| format!("permissions: {e}"))?;
            let pool = DbPool::new(driver, &url).map_err(|e| format!("permissions: {e}"))?;
            let _ = self.pool.set(pool);
        }
        self.load_address(core)?;
        if mode == 1 {
            self.load_trusted(core)?;
        } else if self.uses(2) && self.pool.get().is_some() {
            // Read on every call: only the version is checked now.
            load::check_trusted(self)?;
        }
        Ok(())
    }

    /// `allow_trusted`: the rows for `ip` matching, in order (cached: by
    /// priority, highest first; else as the database orders them by
    /// priority).
    fn trusted_matches(
        &self,
        ip: &str,
        proto: trusted::Proto,
        from: Option<&str>,
        ruri: Option<&str>,
    ) -> Result<Vec<Option<String>>, String> {
        let matched = |rows: &[trusted::Row]| {
            rows.iter()
                .filter(|r| r.matches(ip, proto, from, ruri))
                .map(|r| r.tag.clone())
                .collect::<Vec<_>>()
        };
        if int(&self.p.db_mode) == 1 {
            let rows = self.trusted().ok_or("no trusted table")?;
            return Ok(matched(&rows));
        }
        let rows = load::trusted_for(self, ip)?;
        Ok(matched(&rows))
    }
}

/// Where a message comes from, as `allow_trusted` compares it.
fn source_of(msg: &SipMsg) -> (String, trusted::Proto) {
    let proto = trusted::parse_proto(msg.rcv.proto.as_str()).unwrap_or(trusted::Proto::Any);
    (msg.rcv.src.ip().to_string(), proto)
}

/// `allow_trusted` with the address, transport and From URI given (or
/// the message's).
fn allow_trusted(
    pm: &Permissions,
    ctx: &mut Ctx<'_>,
    args: Option<(String, String, Option<String>)>,
) -> i32 {
    let (ip, proto, from) = match args {
        None => {
            let (ip, proto) = source_of(ctx.msg);
            let from = ctx.msg.msg().from().ok().map(|f| f.uri.raw.to_string());
            (ip, proto, from)
        }
        Some((ip, p, furi)) => {
            let Some(proto) = trusted::parse_proto(&p) else {
                lm_err!("permissions: allow_trusted: unknown protocol '{p}'");
                return -1;
            };
            let from = furi.or_else(|| ctx.msg.msg().from().ok().map(|f| f.uri.raw.to_string()));
            (ip, proto, from)
        }
    };
    let m = ctx.msg.msg();
    let sip = m.is_request() || m.status().is_some();
    let ruri = m.request_uri().map(|u| u.raw.to_string());
    let (from, ruri) = if sip && !m.is_http() {
        (from, ruri)
    } else {
        (None, None)
    };
    let tags = match pm.trusted_matches(&ip, proto, from.as_deref(), ruri.as_deref()) {
        Ok(t) => t,
        Err(e) => {
            lm_err!("permissions: allow_trusted: {e}");
            return -1;
        }
    };
    if tags.is_empty() {
        return -1;
    }
    if int(&pm.p.peer_tag_mode) == 0 {
        pm.push_tag(ctx.msg, tags[0].as_deref());
        return 1;
    }
    for t in &tags {
        pm.push_tag(ctx.msg, t.as_deref());
    }
    tags.len() as i32
}

/// `allow_address` and `allow_source_address`: the group's entry for the
/// address (an IP, or a name) and port; its tag pushed.
fn allow(
    pm: &Permissions,
    ctx: &mut Ctx<'_>,
    grp: Option<u32>,
    addr: &str,
    port: u16,
) -> Option<u32> {
    let table = pm.address()?;
    let (g, tag) = match parse_ip(addr) {
        Some(ip) => table.find(grp, ip, port).map(|e| (e.grp, e.tag.clone()))?,
        None => table
            .find_name(grp, addr, port)
            .map(|n| (n.grp, n.tag.clone()))?,
    };
    pm.push_tag(ctx.msg, tag.as_deref());
    Some(g)
}

fn group_arg(v: i64) -> Option<u32> {
    u32::try_from(v).ok().filter(|&g| g > 0)
}

fn port_arg(v: i64) -> u16 {
    u16::try_from(v).unwrap_or(0)
}

/// The module definition.
pub fn module() -> ModuleDef {
    let pm = Arc::new(Permissions::default());
    let p = &pm.p;
    let strs: [(&str, &Arc<RwLock<String>>); 15] = [
        ("db_url", &p.db_url),
        ("address_table", &p.address_table),
        ("grp_col", &p.address_cols[0]),
        ("ip_addr_col", &p.address_cols[1]),
        ("mask_col", &p.address_cols[2]),
        ("port_col", &p.address_cols[3]),
        ("tag_col", &p.address_cols[4]),
        ("trusted_table", &p.trusted_table),
        ("source_col", &p.trusted_cols[0]),
        ("proto_col", &p.trusted_cols[1]),
        ("from_col", &p.trusted_cols[2]),
        ("ruri_col", &p.trusted_cols[3]),
        ("priority_col", &p.trusted_cols[4]),
        ("peer_tag_avp", &p.peer_tag_avp),
        ("address_file", &p.address_file),
    ];
    let ints: [(&str, &Arc<AtomicI64>); 5] = [
        ("db_mode", &p.db_mode),
        ("peer_tag_mode", &p.peer_tag_mode),
        ("max_subnets", &p.max_subnets),
        ("load_backends", &p.load_backends),
        ("reload_delta", &p.reload_delta),
    ];
    let mut def = ModuleDef::new("permissions");
    for (name, cell) in strs {
        def = def.param(name, ParamKind::Str, params::string(cell));
    }
    for (name, cell) in ints {
        def = def.param(name, ParamKind::Int, params::int(cell));
    }
    // The hosts.allow-style files are not built; their parameters are
    // accepted with no effect.
    for name in [
        "default_allow_file",
        "default_deny_file",
        "check_all_branches",
        "allow_suffix",
        "deny_suffix",
        "trusted_cleanup_interval",
    ] {
        def = def.param(name, ParamKind::Any, |_| Ok(()));
    }
    let d = pm.clone();
    def = def.on_init(move |core| d.init(core));
    let igp = Some(fixup::f(fixup::igp));
    // allow_address(group, addr, port): the address is a string.
    let addr_fx: fixup::FixupFn = Arc::new(|env, i, arg| {
        if i == 1 {
            fixup::spve(env, i, arg)
        } else {
            fixup::igp(env, i, arg)
        }
    });
    let d = pm.clone();
    def = def.cmd(
        "allow_source_address",
        0,
        RouteType::ANY,
        None,
        move |ctx, _| {
            let (ip, port) = (ctx.msg.rcv.src.ip().to_string(), ctx.msg.rcv.src.port());
            if allow(&d, ctx, Some(1), &ip, port).is_some() {
                1
            } else {
                -1
            }
        },
    );
    let d = pm.clone();
    def = def.cmd(
        "allow_source_address",
        1,
        RouteType::ANY,
        igp.clone(),
        move |ctx, p| {
            let Some(g) = group_arg(p[0].int(ctx)) else {
                return -1;
            };
            let (ip, port) = (ctx.msg.rcv.src.ip().to_string(), ctx.msg.rcv.src.port());
            if allow(&d, ctx, Some(g), &ip, port).is_some() {
                1
            } else {
                -1
            }
        },
    );
    let d = pm.clone();
    def = def.cmd(
        "allow_source_address_group",
        0,
        RouteType::ANY,
        None,
        move |ctx, _| {
            let (ip, port) = (ctx.msg.rcv.src.ip().to_string(), ctx.msg.rcv.src.port());
            allow(&d, ctx, None, &ip, port).map_or(-1, |g| g as i32)
        },
    );
    let d = pm.clone();
    def = def.cmd(
        "allow_address",
        3,
        RouteType::ANY,
        Some(addr_fx.clone()),
        move |ctx, p| {
            let Some(g) = group_arg(p[0].int(ctx)) else {
                return -1;
            };
            let addr = p[1].str(ctx).into_owned();
            let port = port_arg(p[2].int(ctx));
            if allow(&d, ctx, Some(g), &addr, port).is_some() {
                1
            } else {
                -1
            }
        },
    );
    let d = pm.clone();
    let group_fx: fixup::FixupFn = Arc::new(|env, i, arg| {
        if i == 0 {
            fixup::spve(env, i, arg)
        } else {
            fixup::igp(env, i, arg)
        }
    });
    def = def.cmd(
        "allow_address_group",
        2,
        RouteType::ANY,
        Some(group_fx),
        move |ctx, p| {
            let addr = p[0].str(ctx).into_owned();
            let port = port_arg(p[1].int(ctx));
            let Some(table) = d.address() else { return -1 };
            match parse_ip(&addr) {
                Some(_) => allow(&d, ctx, None, &addr, port).map_or(-1, |g| g as i32),
                // A name's group, without its tag (as Kamailio).
                None => table
                    .find_name(None, &addr, port)
                    .map_or(-1, |n| n.grp as i32),
            }
        },
    );
    let spve = Some(fixup::f(fixup::spve));
    let d = pm.clone();
    def = def.cmd("allow_trusted", 0, RouteType::ANY, None, move |ctx, _| {
        allow_trusted(&d, ctx, None)
    });
    for n in [2, 3] {
        let d = pm.clone();
        def = def.cmd(
            "allow_trusted",
            n,
            RouteType::ANY,
            spve.clone(),
            move |ctx, p| {
                let ip = p[0].str(ctx).into_owned();
                let proto = p[1].str(ctx).into_owned();
                let from = p.get(2).map(|f| f.str(ctx).into_owned());
                allow_trusted(&d, ctx, Some((ip, proto, from)))
            },
        );
    }
    rpc::export(&pm, def)
}
