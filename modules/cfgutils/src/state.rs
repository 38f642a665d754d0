//! cfgutils' shared state: the probability, the global flags, the lock
//! slots, the configuration file's hash; and the `cfgutils.*` RPC methods.

use sr_sdk::prelude::*;
use std::cell::Cell;
use std::sync::atomic::{AtomicI64, AtomicU32, Ordering};
use std::sync::{Arc, Condvar, Mutex, OnceLock, RwLock};

/// One lock slot: taken or not, with no owner (as Kamailio's: any worker
/// may release it, taking it twice blocks).
#[derive(Debug, Default)]
pub struct Slot {
    taken: Mutex<bool>,
    freed: Condvar,
}

/// The module's state.
#[derive(Debug)]
pub struct Utils {
    /// `initial_probability` (10).
    pub initial_probability: Arc<AtomicI64>,
    /// `initial_gflags` (0).
    pub initial_gflags: Arc<AtomicI64>,
    /// `hash_file`.
    pub hash_file: Arc<RwLock<String>>,
    /// `lock_set_size` (0: no locks).
    pub lock_set_size: Arc<AtomicI64>,
    /// The probability of `rand_event`, in percent.
    pub prob: AtomicI64,
    /// The global flags.
    pub gflags: AtomicU32,
    slots: OnceLock<Vec<Slot>>,
    hash: OnceLock<Option<String>>,
    /// The server, to see it stopping (a worker waiting for a lock gives
    /// up then).
    core: OnceLock<Option<std::sync::Weak<dyn Core>>>,
}

impl Default for Utils {
    fn default() -> Self {
        Utils {
            initial_probability: params::int_cell(10),
            initial_gflags: params::int_cell(0),
            hash_file: params::str_cell(""),
            lock_set_size: params::int_cell(0),
            prob: AtomicI64::new(10),
            gflags: AtomicU32::new(0),
            slots: OnceLock::new(),
            hash: OnceLock::new(),
            core: OnceLock::new(),
        }
    }
}

/// The MD5 of a file, in lower-case hex.
fn md5_file(path: &str) -> Option<String> {
    use md5::{Digest, Md5};
    let data = std::fs::read(path).ok()?;
    Some(
        Md5::digest(&data)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect(),
    )
}

thread_local! {
    static RNG: Cell<u64> = Cell::new({
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64);
        let id = format!("{:?}", std::thread::current().id());
        (t ^ sr_sdk::hash::core_hash(id.as_bytes(), None, false) as u64) | 1
    });
}

impl Utils {
    /// mod_init: the probability and flags, the lock slots, the file's
    /// hash.
    pub fn init(&self, core: Option<&dyn Core>) -> Result<(), String> {
        let _ = self.core.set(core.and_then(|c| c.handle()));
        let p = params::get_int(&self.initial_probability);
        if p > 100 {
            return Err(format!("cfgutils: invalid probability <{p}>"));
        }
        self.prob.store(p, Ordering::Relaxed);
        self.gflags.store(
            params::get_int(&self.initial_gflags) as u32,
            Ordering::Relaxed,
        );
        let n = params::get_int(&self.lock_set_size);
        let bits = if !(0..=14).contains(&n) {
            lm_warn!("cfgutils: lock set size too large ({n}), making it 14");
            14
        } else {
            n as u32
        };
        let slots = if bits == 0 {
            Vec::new()
        } else {
            (0..1usize << bits).map(|_| Slot::default()).collect()
        };
        let _ = self.slots.set(slots);
        let file = params::get_str(&self.hash_file);
        let hash = if file.is_empty() {
            lm_info!("cfgutils: no hash_file given, disable hash functionality");
            None
        } else {
            Some(md5_file(&file).ok_or_else(|| {
                format!("cfgutils: could not stat file {file}: could not hash the config file")
            })?)
        };
        let _ = self.hash.set(hash);
        Ok(())
    }

    /// A random number in 0..2^31 (`$RANDOM`).
    pub fn random(&self) -> i64 {
        RNG.with(|r| {
            // xorshift64*
            let mut x = r.get();
            x ^= x >> 12;
            x ^= x << 25;
            x ^= x >> 27;
            r.set(x);
            (x.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 33) as i64
        })
    }

    /// `rand_event()`: 1 with the set probability, else -1.
    pub fn rand_event(&self) -> i32 {
        let p = self.prob.load(Ordering::Relaxed);
        if p <= 0 {
            return -1;
        }
        if p >= 100 {
            return 1;
        }
        let r = self.random() as f64 / f64::from(i32::MAX);
        if r < p as f64 / 100.0 {
            1
        } else {
            -1
        }
    }

    fn stopping(&self) -> bool {
        match self.core.get() {
            Some(Some(w)) => w.upgrade().is_none_or(|c| c.shutting_down()),
            _ => false,
        }
    }

    /// `lock` (0), `unlock` (1), `trylock` (2) on `key`'s slot.
    pub fn lock_op(&self, key: &str, op: u8) -> i32 {
        let Some(slots) = self.slots.get().filter(|s| !s.is_empty()) else {
            lm_err!(
                "cfgutils: lock set not initialized (attempt to do op: {op} on: {key}) - see param lock_set_size"
            );
            return -1;
        };
        let i = sr_sdk::hash::core_hash(key.as_bytes(), None, true) as usize & (slots.len() - 1);
        let s = &slots[i];
        let mut taken = s.taken.lock().unwrap_or_else(|e| e.into_inner());
        match op {
            0 => {
                while *taken {
                    if self.stopping() {
                        return -1;
                    }
                    taken = s
                        .freed
                        .wait_timeout(taken, std::time::Duration::from_millis(200))
                        .unwrap_or_else(|e| e.into_inner())
                        .0;
                }
                *taken = true;
                1
            }
            1 => {
                *taken = false;
                s.freed.notify_one();
                1
            }
            _ => {
                if *taken {
                    -1
                } else {
                    *taken = true;
                    1
                }
            }
        }
    }
}

/// `core_hash(s1, s2, size)`: Kamailio's hash of both strings in a table
/// of `2^size` slots (2 for a size of 0 or less), plus one.
pub fn core_hash_value(s1: &str, s2: &str, size: i64) -> i32 {
    let table: u64 = if size <= 0 {
        2
    } else {
        1u64 << (size as u32 % 32)
    };
    let h = sr_sdk::hash::core_hash(
        s1.as_bytes(),
        (!s2.is_empty()).then_some(s2.as_bytes()),
        false,
    );
    let v = (u64::from(h) & (table - 1)) + 1;
    v as u32 as i32
}

/// `pkg_status` and the other memory reports: siprouter has no memory
/// pools; the process's memory figures are logged instead.
pub fn memory_report(what: &str) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let lines: Vec<&str> = status
        .lines()
        .filter(|l| l.starts_with("VmRSS") || l.starts_with("VmHWM") || l.starts_with("VmData"))
        .collect();
    lm_info!("cfgutils: {what}: {}", lines.join(", "));
}

/// A 32-bit integer parameter (Kamailio's "d").
fn int_param(p: &[Json]) -> Result<i64, RpcError> {
    let bad = || RpcError::new(500, "Invalid Parameters");
    let n = match p.first() {
        Some(Json::Number(n)) => n.as_i64().ok_or_else(bad)?,
        Some(Json::String(s)) => s.trim().parse().map_err(|_| bad())?,
        _ => return Err(bad()),
    };
    i32::try_from(n).map(i64::from).map_err(|_| bad())
}

/// The `cfgutils.*` RPC methods, with Kamailio's answers.
pub fn rpc(u: &Arc<Utils>, def: ModuleDef) -> ModuleDef {
    let (a, b, c, d, e, f, g, h, i) = (
        u.clone(),
        u.clone(),
        u.clone(),
        u.clone(),
        u.clone(),
        u.clone(),
        u.clone(),
        u.clone(),
        u.clone(),
    );
    def.rpc(
        "cfgutils.rand_set_prob",
        "Set the random probability.",
        move |p| {
            let n = int_param(p)?;
            // Compared unsigned, as Kamailio: negative is too big too.
            if (n as u32) > 100 {
                return Err(RpcError::new(500, "Invalid Percent"));
            }
            a.prob.store(n, Ordering::Relaxed);
            Ok(Json::Null)
        },
    )
    .rpc(
        "cfgutils.rand_reset_prob",
        "Reset the random probability.",
        move |_| {
            b.prob
                .store(params::get_int(&b.initial_probability), Ordering::Relaxed);
            Ok(Json::Null)
        },
    )
    .rpc(
        "cfgutils.rand_get_prob",
        "Get the random probability.",
        move |_| {
            let p = c.prob.load(Ordering::Relaxed) as u32;
            Ok(json!(format!("actual probability: {p} percent")))
        },
    )
    .rpc(
        "cfgutils.get_config_hash",
        "Get config hash value.",
        move |_| Ok(json!(d.hash.get().cloned().flatten().unwrap_or_default())),
    )
    .rpc(
        "cfgutils.check_config_hash",
        "Check config hash value.",
        move |_| {
            let Some(Some(old)) = e.hash.get() else {
                return Err(RpcError::new(500, "No hash file"));
            };
            let file = params::get_str(&e.hash_file);
            let now =
                md5_file(&file).ok_or_else(|| RpcError::new(500, "Failed to hash the file"))?;
            Ok(json!(if &now == old {
                "Identical hash"
            } else {
                "Different hash"
            }))
        },
    )
    .rpc(
        "cfgutils.set_gflag",
        "Sets the bits specified by the argument.",
        move |p| {
            let m = int_param(p)? as u32;
            f.gflags.fetch_or(m, Ordering::AcqRel);
            Ok(Json::Null)
        },
    )
    .rpc(
        "cfgutils.reset_gflag",
        "Resets the bits specified by the argument.",
        move |p| {
            let m = int_param(p)? as u32;
            g.gflags.fetch_and(!m, Ordering::AcqRel);
            Ok(Json::Null)
        },
    )
    .rpc(
        "cfgutils.is_gflag",
        "Checks if the bits specified by the argument are all set.",
        move |p| {
            let m = int_param(p)? as u32;
            Ok(json!(if h.gflags.load(Ordering::Acquire) & m == m {
                "TRUE"
            } else {
                "FALSE"
            }))
        },
    )
    .rpc(
        "cfgutils.get_gflags",
        "Return the value for global flags.",
        move |_| {
            let v = i.gflags.load(Ordering::Acquire);
            Ok(json!(format!("0x{v:X} ({v})")))
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn core_hash_as_kamailio_returns_it() {
        assert_eq!(core_hash_value("abc", "", 4), 3);
        assert_eq!(core_hash_value("alice", "example.com", 8), 71);
        assert_eq!(core_hash_value("x", "y", 0), 2);
        assert_eq!(core_hash_value("abc", "", 0), 1);
        assert_eq!(core_hash_value("abc", "", -1), 1);
        assert_eq!(core_hash_value("abcd", "", 31), 1834959897);
        assert_eq!(core_hash_value("abc", "", 32), 1);
        assert_eq!(core_hash_value("", "", 10), 1);
    }

    #[test]
    fn locks_block_trylock_fails_and_anyone_unlocks() {
        let u = Utils::default();
        u.lock_set_size.store(4, Ordering::Relaxed);
        u.init(None).unwrap();
        assert_eq!(u.lock_op("alice", 0), 1);
        // Same slot (case-insensitive), even from the same worker.
        assert_eq!(u.lock_op("ALICE", 2), -1);
        assert_eq!(u.lock_op("alice", 1), 1);
        assert_eq!(u.lock_op("alice", 1), 1, "unlocking a free slot is fine");
        assert_eq!(u.lock_op("ALICE", 2), 1);
        let none = Utils::default();
        none.init(None).unwrap();
        assert_eq!(none.lock_op("x", 0), -1);
    }

    #[test]
    fn events_follow_the_probability() {
        let u = Utils::default();
        u.prob.store(0, Ordering::Relaxed);
        assert!((0..100).all(|_| u.rand_event() == -1));
        u.prob.store(100, Ordering::Relaxed);
        assert!((0..100).all(|_| u.rand_event() == 1));
        u.prob.store(30, Ordering::Relaxed);
        let n = (0..20000).filter(|_| u.rand_event() == 1).count();
        assert!((5000..7000).contains(&n), "{n}");
        assert!((0..1000).all(|_| (0..=i64::from(i32::MAX)).contains(&u.random())));
    }
}
