//! # permissions: access control by address and trusted peers
//!
//! Kamailio's `permissions` module, its address and trusted-peer parts:
//! groups of addresses and subnets from the `address` table (or
//! `address_file`) checked by `allow_source_address([group])`,
//! `allow_address(group, addr, port)` and the `*_group` variants that
//! give the group; peers from the `trusted` table (source address,
//! transport, From and Request-URI patterns) checked by
//! `allow_trusted()`; the matched row's tag into `peer_tag_avp`; reload
//! and dump over RPC; the hosts.allow-style rule files of `allow_routing`,
//! `allow_register` and `allow_uri` ([`rules`], [`files`]). See
//! `docs/modules/permissions.md`.
#![forbid(unsafe_code)]

pub mod address;
pub mod bre;
pub mod files;
mod funcs;
mod load;
mod rpc;
pub mod rules;
pub mod trusted;

/// Reads a string parameter (`sr_sdk`'s `params::get_str`).
pub use params::get_str as text;
use params::{get_int as int, int_cell as i, str_cell as s};
use sr_sdk::db::DbPool;
use sr_sdk::prelude::*;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, RwLock};

/// Column names of the address table (`tag_col` also names the trusted
/// table's tag column, as in Kamailio).
#[derive(Debug)]
pub struct AddressCols {
    /// `grp_col`.
    pub grp: Arc<RwLock<String>>,
    /// `ip_addr_col`.
    pub ip_addr: Arc<RwLock<String>>,
    /// `mask_col`.
    pub mask: Arc<RwLock<String>>,
    /// `port_col`.
    pub port: Arc<RwLock<String>>,
    /// `tag_col`.
    pub tag: Arc<RwLock<String>>,
}

/// Column names of the trusted table.
#[derive(Debug)]
pub struct TrustedCols {
    /// `source_col`.
    pub source: Arc<RwLock<String>>,
    /// `proto_col`.
    pub proto: Arc<RwLock<String>>,
    /// `from_col`.
    pub from: Arc<RwLock<String>>,
    /// `ruri_col`.
    pub ruri: Arc<RwLock<String>>,
    /// `priority_col`.
    pub priority: Arc<RwLock<String>>,
}

/// The module parameters.
#[derive(Debug)]
pub struct Params {
    /// `db_url`.
    pub db_url: Arc<RwLock<String>>,
    /// `address_table`.
    pub address_table: Arc<RwLock<String>>,
    /// The address table's columns.
    pub address_cols: AddressCols,
    /// `trusted_table`.
    pub trusted_table: Arc<RwLock<String>>,
    /// The trusted table's columns.
    pub trusted_cols: TrustedCols,
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
    /// `load_backends` (1: the address table, 2: the trusted table).
    pub load_backends: Arc<AtomicI64>,
    /// `reload_delta` (s).
    pub reload_delta: Arc<AtomicI64>,
}

impl Default for Params {
    fn default() -> Self {
        Params {
            db_url: s(""),
            address_table: s("address"),
            address_cols: AddressCols {
                grp: s("grp"),
                ip_addr: s("ip_addr"),
                mask: s("mask"),
                port: s("port"),
                tag: s("tag"),
            },
            trusted_table: s("trusted"),
            trusted_cols: TrustedCols {
                source: s("src_ip"),
                proto: s("proto"),
                from: s("from_pattern"),
                ruri: s("ruri_pattern"),
                priority: s("priority"),
            },
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

/// The trusted table as cached: rows by priority (highest first) and
/// where each source address's rows are.
#[derive(Debug, Default)]
pub struct TrustedCache {
    /// The rows.
    pub rows: Vec<trusted::Row>,
    by_ip: HashMap<String, Vec<usize>>,
}

impl TrustedCache {
    /// The cache of `rows` (already in priority order).
    pub fn new(rows: Vec<trusted::Row>) -> TrustedCache {
        let mut by_ip: HashMap<String, Vec<usize>> = HashMap::new();
        for (k, r) in rows.iter().enumerate() {
            by_ip.entry(r.src_ip.clone()).or_default().push(k);
        }
        TrustedCache { rows, by_ip }
    }

    /// The rows for a source address, in order.
    pub fn for_ip<'a>(&'a self, ip: &str) -> impl Iterator<Item = &'a trusted::Row> + 'a {
        self.by_ip
            .get(ip)
            .into_iter()
            .flatten()
            .filter_map(|&k| self.rows.get(k))
    }
}

/// The rule files' parameters.
#[derive(Debug)]
pub struct RuleParams {
    /// `default_allow_file`.
    pub default_allow_file: Arc<RwLock<String>>,
    /// `default_deny_file`.
    pub default_deny_file: Arc<RwLock<String>>,
    /// `check_all_branches`.
    pub check_all_branches: Arc<AtomicI64>,
    /// `allow_suffix`.
    pub allow_suffix: Arc<RwLock<String>>,
    /// `deny_suffix`.
    pub deny_suffix: Arc<RwLock<String>>,
}

impl Default for RuleParams {
    fn default() -> Self {
        RuleParams {
            default_allow_file: s("permissions.allow"),
            default_deny_file: s("permissions.deny"),
            check_all_branches: i(1),
            allow_suffix: s(".allow"),
            deny_suffix: s(".deny"),
        }
    }
}

/// The module's state.
#[derive(Default)]
pub struct Permissions {
    /// Parameters.
    pub p: Params,
    /// The rule files' parameters.
    pub rule_params: RuleParams,
    /// The rule file pairs read so far.
    pub(crate) rule_files: Mutex<Vec<Arc<files::Pair>>>,
    /// The default pair (`allow_routing()`).
    pub(crate) default_rules: OnceLock<Arc<files::Pair>>,
    /// The configuration file's folder (rule files without a folder).
    pub(crate) config_dir: OnceLock<Option<std::path::PathBuf>>,
    address: RwLock<Option<Arc<address::Table>>>,
    trusted: RwLock<Option<Arc<TrustedCache>>>,
    pool: OnceLock<DbPool>,
    last_reload: Mutex<Option<std::time::Instant>>,
    ready: AtomicBool,
    tag_avp: OnceLock<Option<String>>,
}

impl Permissions {
    /// The address table, when there is one.
    pub fn address(&self) -> Option<Arc<address::Table>> {
        self.address.read().ok()?.clone()
    }

    /// The cached trusted table, when there is one.
    pub fn trusted(&self) -> Option<Arc<TrustedCache>> {
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

    /// Refuses a reload before start, or within `reload_delta` of the
    /// last one (address and trusted share the clock, as in Kamailio).
    fn rate_limit(&self) -> Result<(), String> {
        if !self.ready.load(Ordering::Relaxed) {
            return Err("Not ready for reload".into());
        }
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
    /// database); an error when there is no source.
    pub fn load_address(&self) -> Result<(), String> {
        let t = load::address(self)?.ok_or("permissions: no address table to load")?;
        let mut a = self.address.write().map_err(|_| "permissions: lock")?;
        *a = Some(Arc::new(t));
        Ok(())
    }

    /// Loads the trusted table again (cached mode); an error when there
    /// is no source.
    pub fn load_trusted(&self) -> Result<(), String> {
        let t = load::trusted(self)?.ok_or("permissions: no trusted table to load")?;
        let mut a = self.trusted.write().map_err(|_| "permissions: lock")?;
        *a = Some(Arc::new(TrustedCache::new(t)));
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
        // The default rule files (load_backends 4 and 8), next to the
        // configuration file unless named with a folder.
        let dir = files::config_dir(core);
        let _ = self.config_dir.set(dir.clone());
        let name = |cell: &RwLock<String>, bit: i64| {
            if self.uses(bit) {
                files::resolve(dir.as_deref(), &text(cell))
            } else {
                String::new()
            }
        };
        let pair = files::pair(
            self,
            name(&self.rule_params.default_allow_file, 4),
            name(&self.rule_params.default_deny_file, 8),
        );
        let _ = self.default_rules.set(pair);
        let avp = text(&self.p.peer_tag_avp);
        if !avp.is_empty() && !avp.trim_start().starts_with("$avp(") {
            return Err(format!(
                "permissions: peer_tag_avp '{avp}' is not an $avp(...)"
            ));
        }
        let url = text(&self.p.db_url);
        if !url.is_empty() {
            let driver =
                sr_sdk::db::driver_for(core, &url).map_err(|e| format!("permissions: {e}"))?;
            let pool = DbPool::new(driver, &url).map_err(|e| format!("permissions: {e}"))?;
            let _ = self.pool.set(pool);
        }
        // Without a source a table is simply absent (its functions fail).
        if let Some(t) = load::address(self)? {
            if let Ok(mut a) = self.address.write() {
                *a = Some(Arc::new(t));
            }
        }
        if mode == 1 {
            if let Some(t) = load::trusted(self)? {
                if let Ok(mut a) = self.trusted.write() {
                    *a = Some(Arc::new(TrustedCache::new(t)));
                }
            }
        } else if self.trusted_per_call() {
            // Read on every call: only the version is checked now.
            load::check_trusted(self)?;
        }
        self.ready.store(true, Ordering::Relaxed);
        Ok(())
    }

    /// Whether the trusted table is read on every call (`db_mode=0`, a
    /// database, and `load_backends` with the trusted table).
    fn trusted_per_call(&self) -> bool {
        int(&self.p.db_mode) == 0 && self.uses(2) && self.pool.get().is_some()
    }

    /// `allow_trusted`: the tags of the rows for `ip` that match, in order
    /// (cached: by priority, highest first; else as the database orders
    /// them by priority).
    fn trusted_matches(
        &self,
        ip: &str,
        proto: trusted::Proto,
        from: Option<&str>,
        ruri: Option<&str>,
    ) -> Result<Vec<Option<String>>, String> {
        let keep = |r: &trusted::Row| r.matches(ip, proto, from, ruri).then(|| r.tag.clone());
        if int(&self.p.db_mode) == 1 {
            let cache = self.trusted().ok_or("no trusted table")?;
            return Ok(cache.for_ip(ip).filter_map(keep).collect());
        }
        if !self.trusted_per_call() {
            return Err("no trusted table".into());
        }
        let rows = load::trusted_for(self, ip)?;
        Ok(rows.iter().filter_map(keep).collect())
    }
}

/// The module definition.
pub fn module() -> ModuleDef {
    let pm = Arc::new(Permissions::default());
    let p = &pm.p;
    let (a, t) = (&p.address_cols, &p.trusted_cols);
    let strs: [(&str, &Arc<RwLock<String>>); 15] = [
        ("db_url", &p.db_url),
        ("address_table", &p.address_table),
        ("grp_col", &a.grp),
        ("ip_addr_col", &a.ip_addr),
        ("mask_col", &a.mask),
        ("port_col", &a.port),
        ("tag_col", &a.tag),
        ("trusted_table", &p.trusted_table),
        ("source_col", &t.source),
        ("proto_col", &t.proto),
        ("from_col", &t.from),
        ("ruri_col", &t.ruri),
        ("priority_col", &t.priority),
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
    let r = &pm.rule_params;
    def = def
        .param(
            "default_allow_file",
            ParamKind::Str,
            params::string(&r.default_allow_file),
        )
        .param(
            "default_deny_file",
            ParamKind::Str,
            params::string(&r.default_deny_file),
        )
        .param(
            "check_all_branches",
            ParamKind::Int,
            params::int(&r.check_all_branches),
        )
        .param(
            "allow_suffix",
            ParamKind::Str,
            params::string(&r.allow_suffix),
        )
        .param(
            "deny_suffix",
            ParamKind::Str,
            params::string(&r.deny_suffix),
        )
        // Expired trusted rows are not kept in memory: nothing to clean.
        .param("trusted_cleanup_interval", ParamKind::Any, |_| Ok(()));
    let d = pm.clone();
    def = def.on_init(move |core| d.init(core));
    let def = funcs::export(&pm, def);
    rpc::export(&pm, def)
}
