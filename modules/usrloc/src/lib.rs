//! # usrloc: the user location service
//!
//! Kamailio's `usrloc`: the contacts of every address-of-record, in
//! sharded memory shared by all workers, kept in a database table as
//! `db_mode` says (0 memory only, 1 write-through, 2 write-back on the
//! timer and at shutdown, 3 database only, 4 load at start then memory
//! only). Expired contacts are dropped by a timer every
//! `timer_interval` seconds.
//!
//! Other modules (registrar) bind its API by name: `bind::<Usrloc>(core,
//! USRLOC_API)`, then [`Usrloc::register_domain`] per table.
//!
//! Parameters: `db_mode`, `db_url`, `timer_interval`, `use_domain`,
//! `nat_bflag`, `hash_size` (bits), `matching_mode` (0 contact, 1
//! contact + Call-ID). Statistics: `registered_users` and, for the table
//! `location`, `location_users`, `location_contacts`, `location_expires`.
//! RPCs: `ul.dump`, `ul.lookup`, `ul.rm`, `ul.rm_contact`, `ul.add`,
//! `ul.flush`.
#![forbid(unsafe_code)]

pub mod contact;
mod dbrow;
pub mod domain;
mod record;
mod rpc;
mod stored;
mod textpack;

pub use contact::{Contact, FL_MEM, FL_NAT, FL_RPL, METHODS_ALL, Q_UNSPECIFIED};
pub use domain::{Change, DbMode, Domain, Watcher};
pub use record::{ContactRef, Record};

use sr_sdk::db::{self, schema, DbPool};
use sr_sdk::prelude::*;
use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, OnceLock, RwLock};
use std::time::Duration;

/// The name the API is published under.
pub const USRLOC_API: &str = "usrloc";

/// The module's settings (from `modparam`).
#[derive(Debug)]
pub struct Config {
    db_mode: Arc<AtomicI64>,
    db_url: Arc<RwLock<String>>,
    timer_interval: Arc<AtomicI64>,
    use_domain: Arc<AtomicI64>,
    nat_bflag: Arc<AtomicI64>,
    hash_size: Arc<AtomicI64>,
    matching_mode: Arc<AtomicI64>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            db_mode: Arc::new(AtomicI64::new(0)),
            db_url: Arc::new(RwLock::new(String::new())),
            timer_interval: Arc::new(AtomicI64::new(60)),
            use_domain: Arc::new(AtomicI64::new(0)),
            nat_bflag: Arc::new(AtomicI64::new(-1)),
            hash_size: Arc::new(AtomicI64::new(10)),
            matching_mode: Arc::new(AtomicI64::new(0)),
        }
    }
}

/// The usrloc API: its tables and settings.
#[derive(Debug, Default)]
pub struct Usrloc {
    cfg: Config,
    domains: RwLock<HashMap<String, Arc<Domain>>>,
    db: OnceLock<Arc<DbPool>>,
}

impl Usrloc {
    /// The database connections, when usrloc has a database.
    pub fn db_pool(&self) -> Option<Arc<DbPool>> {
        self.db.get().cloned()
    }

    /// The `db_mode`.
    pub fn db_mode(&self) -> DbMode {
        DbMode::from_int(self.cfg.db_mode.load(Ordering::Relaxed)).unwrap_or(DbMode::NoDb)
    }

    /// `hash_size`: the bits of Kamailio's hash table (its size is 2 to
    /// this power).
    pub fn hash_bits(&self) -> u32 {
        self.cfg.hash_size.load(Ordering::Relaxed).clamp(0, 16) as u32
    }

    /// Whether AoRs are `user@domain` (else `user`).
    pub fn use_domain(&self) -> bool {
        self.cfg.use_domain.load(Ordering::Relaxed) != 0
    }

    /// The branch flag marking a contact behind NAT, if set.
    pub fn nat_bflag(&self) -> Option<u32> {
        let b = self.cfg.nat_bflag.load(Ordering::Relaxed);
        (0..32).contains(&b).then_some(b as u32)
    }

    /// Contact matching: 0 by contact URI, 1 by URI and Call-ID.
    pub fn matching_mode(&self) -> i64 {
        self.cfg.matching_mode.load(Ordering::Relaxed)
    }

    /// A table registered before, by name.
    pub fn domain(&self, name: &str) -> Option<Arc<Domain>> {
        self.domains.read().ok()?.get(name).cloned()
    }

    /// Every registered table.
    pub fn domains(&self) -> Vec<Arc<Domain>> {
        let mut v: Vec<_> = self
            .domains
            .read()
            .map(|d| d.values().cloned().collect())
            .unwrap_or_default();
        v.sort_by(|a: &Arc<Domain>, b| a.name().cmp(b.name()));
        v
    }

    /// Registers a table (Kamailio's `register_udomain`), or returns the
    /// one registered before. With a database, the table's version is
    /// checked and, in db_mode 1, 2 and 4, its valid contacts are loaded.
    pub fn register_domain(&self, name: &str) -> Result<Arc<Domain>, String> {
        if let Some(d) = self.domain(name) {
            return Ok(d);
        }
        let mut map = self.domains.write().map_err(|_| "usrloc: poisoned")?;
        if let Some(d) = map.get(name) {
            return Ok(d.clone());
        }
        let mode = self.db_mode();
        let db = if mode.uses_db() {
            let pool = self
                .db
                .get()
                .cloned()
                .ok_or_else(|| format!("usrloc: table '{name}': no database (db_url)"))?;
            pool.with(|c| db::check_version(c, name, schema::LOCATION_VERSION))
                .map_err(|e| format!("usrloc: {e}"))?;
            Some(pool)
        } else {
            None
        };
        let bits = self.hash_bits();
        let d = Arc::new(Domain::new(name, mode, self.use_domain(), db, bits));
        if matches!(
            mode,
            DbMode::WriteThrough | DbMode::WriteBack | DbMode::ReadOnly
        ) {
            let n = d.preload(db::now())?;
            lm_info!("usrloc: table '{name}': {n} contacts loaded");
        }
        map.insert(name.to_string(), d.clone());
        Ok(d)
    }

    /// Runs the timer work of every table now.
    pub fn timer(&self, now: i64) {
        for d in self.domains() {
            d.timer(now);
        }
    }

    /// Writes every pending change (db_mode 2).
    pub fn flush(&self) -> Result<usize, String> {
        let mut n = 0;
        for d in self.domains() {
            n += d.flush()?;
        }
        Ok(n)
    }

    fn init(&self, core: &dyn Core) -> Result<(), String> {
        let mode = DbMode::from_int(self.cfg.db_mode.load(Ordering::Relaxed))
            .ok_or("usrloc: db_mode must be 0, 1, 2, 3 or 4")?;
        if mode.uses_db() {
            let url = self
                .cfg
                .db_url
                .read()
                .map(|u| u.clone())
                .unwrap_or_default();
            if url.is_empty() {
                return Err("usrloc: db_mode needs db_url".into());
            }
            let pool = DbPool::open(core, &url).map_err(|e| format!("usrloc: {e}"))?;
            let _ = self.db.set(Arc::new(pool));
        }
        Ok(())
    }
}

/// The module definition.
pub fn module() -> ModuleDef {
    let ul = Arc::new(Usrloc::default());
    let c = &ul.cfg;
    let (u1, u2, u3, u4, u5, u6) = (
        ul.clone(),
        ul.clone(),
        ul.clone(),
        ul.clone(),
        ul.clone(),
        ul.clone(),
    );
    let def = ModuleDef::new("usrloc")
        .param("db_mode", ParamKind::Int, params::int(&c.db_mode))
        .param("db_url", ParamKind::Str, params::string(&c.db_url))
        .param(
            "timer_interval",
            ParamKind::Int,
            params::int(&c.timer_interval),
        )
        .param("use_domain", ParamKind::Int, params::int(&c.use_domain))
        .param("nat_bflag", ParamKind::Int, params::int(&c.nat_bflag))
        .param("hash_size", ParamKind::Int, params::int(&c.hash_size))
        // Kamailio's timer process count: siprouter runs expiry on its timer
        // thread, so the value is accepted and has no effect.
        .param("timer_procs", ParamKind::Int, |_| Ok(()))
        .param(
            "matching_mode",
            ParamKind::Int,
            params::int(&c.matching_mode),
        )
        .stat_fn("registered_users", move || {
            u1.domains().iter().map(|d| d.counts().0).sum()
        })
        .stat_fn("location_users", move || {
            u2.domain("location").map_or(0, |d| d.counts().0)
        })
        .stat_fn("location_contacts", move || {
            u3.domain("location").map_or(0, |d| d.counts().1)
        })
        .stat_fn("location_expires", move || {
            u4.domain("location").map_or(0, |d| d.expired_count())
        })
        .on_init(move |core| {
            u5.init(core)?;
            core.register_api(USRLOC_API, u5.clone());
            let secs = u5.cfg.timer_interval.load(Ordering::Relaxed).max(1) as u64;
            let t = u5.clone();
            core.add_timer(
                "usrloc",
                Duration::from_secs(secs),
                Arc::new(move || t.timer(db::now())),
            );
            Ok(())
        })
        .on_destroy(move || {
            if let Err(e) = u6.flush() {
                lm_err!("usrloc: flush at shutdown failed: {e}");
            }
        });
    rpc::export(def, ul)
}
