//! A usrloc domain (one table, such as `location`): address-of-records
//! and their contacts in sharded memory, kept in step with the database
//! as `db_mode` says.

use crate::contact::{Contact, FL_MEM};
use crate::dbrow;
use crate::record::{ContactRef, Detached, Record};
use crate::stored::StoredContact;
use sr_sdk::db::{DbConn, DbPool, DbResult};
use sr_sdk::lm_err;
use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, RwLock};

/// How contacts are kept (Kamailio's usrloc `db_mode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DbMode {
    /// 0: memory only.
    NoDb,
    /// 1: every change written to the database before it is acknowledged.
    WriteThrough,
    /// 2: changes written by the timer and at shutdown.
    WriteBack,
    /// 3: the database only, no memory cache.
    DbOnly,
    /// 4: loaded from the database at start, then memory only.
    ReadOnly,
}

impl DbMode {
    /// From the `db_mode` number.
    pub fn from_int(i: i64) -> Option<DbMode> {
        Some(match i {
            0 => DbMode::NoDb,
            1 => DbMode::WriteThrough,
            2 => DbMode::WriteBack,
            3 => DbMode::DbOnly,
            4 => DbMode::ReadOnly,
            _ => return None,
        })
    }

    /// Whether a database is used at all.
    pub fn uses_db(self) -> bool {
        self != DbMode::NoDb
    }
}

/// The contacts of one AoR as kept in memory: exact size, never empty.
type Stored = Box<[StoredContact]>;

#[derive(Default)]
struct Shard {
    /// AoR -> its contacts (foldhash with a random seed: AoRs come from
    /// the network, and SipHash cost more than the lookup around it).
    records: HashMap<Box<str>, Stored, foldhash::fast::RandomState>,
    /// db_mode 2: ruid -> AoR of contacts to write.
    dirty: HashMap<String, String>,
    /// db_mode 2: ruids to delete.
    deleted: HashSet<String>,
}

/// A change of one AoR's contacts, as watchers of a table see it (after
/// it is stored; Kamailio's usrloc callbacks, as dmq_usrloc uses them).
/// Contacts removed by the expiry timer are not reported.
#[derive(Debug)]
pub struct Change<'a> {
    /// The table.
    pub domain: &'a str,
    /// The AoR.
    pub aor: &'a str,
    /// Contacts added or updated, as stored now.
    pub stored: Vec<&'a Contact>,
    /// Contacts removed, as they were.
    pub removed: Vec<Contact>,
}

/// A watcher of a table's changes.
pub type Watcher = Arc<dyn Fn(&Change<'_>) + Send + Sync>;

/// The most shards a domain has, as a power of two, whatever `hash_size`
/// asks for. Kamailio's slots are linked lists, so it needs many of them
/// to keep each short; a shard here is a hash map that stays fast at any
/// size and only needs to be one of enough locks for the workers not to
/// wait on each other. Every shard's map has its own table and slack, so
/// 2^16 of them would cost more than the contacts themselves.
pub const MAX_SHARD_BITS: u32 = 10;

/// One usrloc table.
pub struct Domain {
    name: String,
    mode: DbMode,
    use_domain: bool,
    db: Option<Arc<DbPool>>,
    shards: Vec<Mutex<Shard>>,
    expired: AtomicI64,
    watchers: RwLock<Vec<Watcher>>,
}

impl std::fmt::Debug for Domain {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Domain({}, {:?})", self.name, self.mode)
    }
}

/// The shard hash of an AoR: keyed per process, so the shard an AoR
/// lands in cannot be chosen from outside.
fn hash(s: &str) -> u64 {
    sr_sdk::tag::hash64(b'u', &[s.as_bytes()])
}

impl Domain {
    /// A domain with `2^hash_bits` shards, at most `2^`[`MAX_SHARD_BITS`].
    pub fn new(
        name: &str,
        mode: DbMode,
        use_domain: bool,
        db: Option<Arc<DbPool>>,
        hash_bits: u32,
    ) -> Domain {
        let n = 1usize << hash_bits.min(MAX_SHARD_BITS);
        Domain {
            name: name.to_string(),
            mode,
            use_domain,
            db,
            shards: (0..n).map(|_| Mutex::new(Shard::default())).collect(),
            expired: AtomicI64::new(0),
            watchers: RwLock::new(Vec::new()),
        }
    }

    /// Adds a watcher of the changes made through [`Domain::with_record`],
    /// [`Domain::with_record_lookup`] and [`Domain::with_record_view`].
    pub fn watch(&self, w: Watcher) {
        self.watchers
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .push(w);
    }

    fn watched(&self) -> bool {
        self.watchers.read().is_ok_and(|w| !w.is_empty())
    }

    /// Tells the watchers what a change did.
    fn notify(&self, rec: &Detached, removed: Vec<Contact>) {
        if rec.changed.is_empty() && removed.is_empty() {
            return;
        }
        let watchers = self.watchers.read().map(|w| w.clone()).unwrap_or_default();
        let mut seen = HashSet::new();
        let stored = rec
            .changed
            .iter()
            .filter(|r| seen.insert(r.as_str()))
            .filter_map(|r| rec.open_by_ruid(r))
            .collect();
        let ch = Change {
            domain: &self.name,
            aor: &rec.aor,
            stored,
            removed,
        };
        for w in watchers {
            w(&ch);
        }
    }

    /// The table name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The mode.
    pub fn mode(&self) -> DbMode {
        self.mode
    }

    fn shard(&self, aor: &str) -> MutexGuard<'_, Shard> {
        let i = (hash(aor) as usize) % self.shards.len();
        self.shards[i].lock().unwrap_or_else(|e| e.into_inner())
    }

    fn with_db<T>(&self, f: impl FnOnce(&mut dyn DbConn) -> DbResult<T>) -> Result<T, String> {
        match &self.db {
            Some(p) => p.with(f).map_err(|e| format!("usrloc {}: {e}", self.name)),
            None => Err(format!("usrloc {}: no database", self.name)),
        }
    }

    /// Loads every valid contact from the database into memory (start of
    /// db_mode 1, 2 and 4).
    pub fn preload(&self, now: i64) -> Result<usize, String> {
        let name = self.name.clone();
        let ud = self.use_domain;
        let all = self.with_db(|c| dbrow::load_all(c, &name, ud, now))?;
        let n = all.len();
        for c in all {
            let mut shard = self.shard(&c.aor);
            let packed = StoredContact::pack(&c);
            match shard.records.get_mut(c.aor.as_str()) {
                Some(cs) => {
                    let mut v = std::mem::take(cs).into_vec();
                    v.push(packed);
                    *cs = v.into_boxed_slice();
                }
                None => {
                    shard
                        .records
                        .insert(c.aor.into_boxed_str(), Box::new([packed]));
                }
            }
        }
        Ok(n)
    }

    /// The contacts of an AoR valid at `now`, highest q first (in the
    /// order they were added among equal q).
    pub fn lookup(&self, aor: &str, now: i64) -> Result<Vec<Contact>, String> {
        let mut v: Vec<Contact> = if self.mode == DbMode::DbOnly {
            let name = self.name.clone();
            let ud = self.use_domain;
            self.with_db(|c| dbrow::load_aor(c, &name, aor, ud, now))?
        } else {
            self.shard(aor)
                .records
                .get(aor)
                .map(|cs| {
                    cs.iter()
                        .filter(|c| c.is_valid(now))
                        .map(|c| c.unpack(aor))
                        .collect()
                })
                .unwrap_or_default()
        };
        sort_contacts(&mut v);
        Ok(v)
    }

    /// The contact with record id `ruid`, valid at `now`, whatever its
    /// AoR (a temporary GRUU names one so). Every record is looked at (a
    /// database query in db_mode 3): for the rare request to a GRUU.
    pub fn by_ruid(&self, ruid: &str, now: i64) -> Result<Option<Contact>, String> {
        // (Only what usrloc makes: a request cannot make it scan for
        // anything else.)
        if !ruid.starts_with("uloc-") {
            return Ok(None);
        }
        if self.mode == DbMode::DbOnly {
            let name = self.name.clone();
            let ud = self.use_domain;
            let found = self.with_db(|c| dbrow::load_ruid(c, &name, ruid, ud))?;
            return Ok(found.filter(|c| c.is_valid(now)));
        }
        for shard in &self.shards {
            let s = shard.lock().unwrap_or_else(|e| e.into_inner());
            for (aor, cs) in s.records.iter() {
                if let Some(c) = cs.iter().find(|c| c.ruid() == ruid) {
                    return Ok(c.is_valid(now).then(|| c.unpack(aor)));
                }
            }
        }
        Ok(None)
    }

    /// Runs `f` on the record of an AoR under its lock. When `f` returns
    /// `Ok`, its changes are written to the database first (db_mode 1 and
    /// 3; a database error then fails the call and memory is unchanged),
    /// then kept in memory.
    pub fn with_record<T>(
        &self,
        aor: &str,
        now: i64,
        f: impl FnOnce(&mut Record<'_>) -> Result<T, String>,
    ) -> Result<T, String> {
        let (out, _, rec, removed) = self.change(aor, now, f, None::<fn(&[ContactRef<'_>])>)?;
        self.notify(&rec, removed);
        Ok(out)
    }

    /// As [`Domain::with_record`], also returning what [`Domain::lookup`]
    /// would right after: the AoR's contacts valid at `now`, best first.
    pub fn with_record_lookup<T>(
        &self,
        aor: &str,
        now: i64,
        f: impl FnOnce(&mut Record<'_>) -> Result<T, String>,
    ) -> Result<(T, Vec<Contact>), String> {
        self.with_record_view(aor, now, f, |cs| {
            cs.iter().map(|c| c.to_contact(aor)).collect()
        })
    }

    /// As [`Domain::with_record`], then `view` over the AoR's contacts
    /// valid at `now`, best first, as they are stored (still under the
    /// AoR's lock; outside db_mode 3 they are at hand, neither looked up
    /// again nor unpacked).
    pub fn with_record_view<T, U, V: FnOnce(&[ContactRef<'_>]) -> U>(
        &self,
        aor: &str,
        now: i64,
        f: impl FnOnce(&mut Record<'_>) -> Result<T, String>,
        view: V,
    ) -> Result<(T, U), String> {
        if self.mode == DbMode::DbOnly {
            // The watchers are told before the contacts are read back (a
            // failed read does not hide a change that was written).
            let (out, _, rec, removed) = self.change(aor, now, f, None::<V>)?;
            self.notify(&rec, removed);
            let cs = self.lookup(aor, now)?;
            let refs: Vec<ContactRef<'_>> = cs.iter().map(ContactRef::Open).collect();
            return Ok((out, view(&refs)));
        }
        let (out, u, rec, removed) = self.change(aor, now, f, Some(view))?;
        self.notify(&rec, removed);
        // (`change` makes the view when it is given one.)
        u.map(|u| (out, u))
            .ok_or_else(|| format!("usrloc {}: no view", self.name))
    }

    /// [`Domain::with_record`]'s work: also gives back the record as it
    /// was stored, the contacts the watchers are told were removed, and
    /// what `view` made of the contacts valid at `now`, best first.
    fn change<T, U, V: FnOnce(&[ContactRef<'_>]) -> U>(
        &self,
        aor: &str,
        now: i64,
        f: impl FnOnce(&mut Record<'_>) -> Result<T, String>,
        view: Option<V>,
    ) -> Result<(T, Option<U>, Detached, Vec<Contact>), String> {
        let watched = self.watched();
        let db_only = self.mode == DbMode::DbOnly;
        let mut guard = self.shard(aor);
        let Shard {
            records,
            dirty,
            deleted,
        } = &mut *guard;
        let loaded = if db_only {
            let name = self.name.clone();
            let ud = self.use_domain;
            Some(self.with_db(|c| dbrow::load_aor(c, &name, aor, ud, now))?)
        } else {
            None
        };
        // Found once: `f` reads it, the change is stored into it, and the
        // view reads it again (a new AoR is inserted once).
        let slot = if db_only { None } else { records.get_mut(aor) };
        // `f` works on the stored contacts where it can (see `Record`);
        // nothing in memory changes before it returns `Ok` and the
        // database took the change.
        let (out, rec, removed) = {
            let base: &[StoredContact] = slot.as_deref().map_or(&[], |b| &b[..]);
            let mut rec = match loaded {
                Some(cs) => Record::open(aor, cs),
                None => Record::stored(aor, base),
            };
            // What the watchers are told was removed, copied only for them:
            // in db_mode 3 the record holds the only copy, so all of it is
            // kept before `f`; otherwise the removed ones are unpacked from
            // memory afterwards.
            let before: Vec<Contact> = if watched && db_only {
                rec.contacts().cloned().collect()
            } else {
                Vec::new()
            };
            let out = f(&mut rec)?;
            let rec = rec.detach();
            let gone = |ruid: &str| rec.removed.iter().any(|r| r == ruid);
            let removed: Vec<Contact> = if !watched {
                Vec::new()
            } else if db_only {
                before.into_iter().filter(|c| gone(&c.ruid)).collect()
            } else {
                base.iter()
                    .filter(|s| gone(s.ruid()))
                    .map(|s| s.unpack(aor))
                    .collect()
            };
            (out, rec, removed)
        };
        let changed = rec.is_changed();
        if changed {
            match self.mode {
                DbMode::WriteThrough | DbMode::DbOnly => self.write_through(&rec)?,
                DbMode::WriteBack => {
                    for r in &rec.changed {
                        let mem_only = rec.open_by_ruid(r).is_some_and(|c| c.flags & FL_MEM != 0);
                        if !mem_only {
                            deleted.remove(r);
                            dirty.insert(r.clone(), aor.to_string());
                        }
                    }
                    for r in &rec.removed {
                        dirty.remove(r);
                        deleted.insert(r.clone());
                    }
                }
                DbMode::NoDb | DbMode::ReadOnly => {}
            }
        }
        // The contacts valid at `now`, best first, for `view`.
        let look = |stored: &[StoredContact], view: Option<V>| {
            view.map(|view| {
                let mut refs: Vec<ContactRef<'_>> = stored
                    .iter()
                    .map(ContactRef::Stored)
                    .filter(|c| c.is_valid(now))
                    .collect();
                // (Stable: among equal q, in the order they were added.)
                refs.sort_by_key(|c| std::cmp::Reverse(c.q()));
                view(&refs)
            })
        };
        let u = match slot {
            // (db_mode 3 keeps nothing in memory; `with_record_view` reads
            // the contacts back from the database.)
            _ if db_only => None,
            Some(b) => {
                if changed {
                    *b = rec.restore(std::mem::take(b).into_vec()).into_boxed_slice();
                }
                let u = look(b, view);
                if b.is_empty() {
                    records.remove(aor);
                }
                u
            }
            None => {
                let new = if changed {
                    rec.restore(Vec::new())
                } else {
                    Vec::new()
                };
                let u = look(&new, view);
                if !new.is_empty() {
                    records.insert(aor.into(), new.into_boxed_slice());
                }
                u
            }
        };
        Ok((out, u, rec, removed))
    }

    fn write_through(&self, rec: &Detached) -> Result<(), String> {
        let name = self.name.clone();
        let ud = self.use_domain;
        self.with_db(|conn| {
            conn.transaction(&mut |c: &mut dyn DbConn| {
                for r in &rec.removed {
                    dbrow::delete(c, &name, r)?;
                }
                let mut seen = HashSet::new();
                for r in &rec.changed {
                    if !seen.insert(r) {
                        continue;
                    }
                    if let Some(ct) = rec.open_by_ruid(r) {
                        if ct.flags & FL_MEM == 0 {
                            if rec.added.contains(r) {
                                dbrow::insert(c, &name, ct, ud)?;
                            } else {
                                dbrow::upsert(c, &name, ct, ud)?;
                            }
                        }
                    }
                }
                Ok(())
            })
        })
    }

    /// Every AoR with its contacts (valid or not yet removed).
    pub fn dump(&self) -> Result<Vec<(String, Vec<Contact>)>, String> {
        let mut out: Vec<(String, Vec<Contact>)> = if self.mode == DbMode::DbOnly {
            let name = self.name.clone();
            let ud = self.use_domain;
            let all = self.with_db(|c| dbrow::load_all(c, &name, ud, sr_sdk::db::now()))?;
            let mut m: HashMap<String, Vec<Contact>> = HashMap::new();
            for c in all {
                m.entry(c.aor.clone()).or_default().push(c);
            }
            m.into_iter().collect()
        } else {
            let mut v = Vec::new();
            for s in &self.shards {
                let s = s.lock().unwrap_or_else(|e| e.into_inner());
                v.extend(
                    s.records
                        .iter()
                        .map(|(a, cs)| (a.to_string(), unpack(a, Some(cs)))),
                );
            }
            v
        };
        out.sort_by(|a, b| a.0.cmp(&b.0));
        for (_, cs) in &mut out {
            sort_contacts(cs);
        }
        Ok(out)
    }

    /// Number of AoRs and of contacts in memory.
    pub fn counts(&self) -> (i64, i64) {
        let mut users = 0;
        let mut contacts = 0;
        for s in &self.shards {
            let s = s.lock().unwrap_or_else(|e| e.into_inner());
            users += s.records.len() as i64;
            contacts += s.records.values().map(|v| v.len() as i64).sum::<i64>();
        }
        (users, contacts)
    }

    /// Number of contacts removed because they expired.
    pub fn expired_count(&self) -> i64 {
        self.expired.load(Ordering::Relaxed)
    }

    /// The timer's work: drops contacts expired at `now` (from the
    /// database too in db_mode 1 and 3) and, in db_mode 2, writes the
    /// changes made since the last run.
    pub fn timer(&self, now: i64) {
        if self.mode == DbMode::DbOnly {
            let name = self.name.clone();
            match self.with_db(|c| dbrow::delete_expired(c, &name, now)) {
                Ok(n) => {
                    self.expired.fetch_add(n as i64, Ordering::Relaxed);
                }
                Err(e) => lm_err!("{e}"),
            }
            return;
        }
        for s in &self.shards {
            let mut gone = Vec::new();
            {
                let mut s = s.lock().unwrap_or_else(|e| e.into_inner());
                let shard = &mut *s;
                shard.records.retain(|_, cs| {
                    if cs.iter().all(|c| c.is_valid(now)) {
                        return true;
                    }
                    let mut v = std::mem::take(cs).into_vec();
                    v.retain(|c| {
                        let keep = c.is_valid(now);
                        if !keep {
                            gone.push(c.ruid().to_string());
                        }
                        keep
                    });
                    *cs = v.into_boxed_slice();
                    !cs.is_empty()
                });
                if self.mode == DbMode::WriteBack {
                    for r in &gone {
                        shard.dirty.remove(r);
                        shard.deleted.insert(r.clone());
                    }
                }
            }
            self.expired.fetch_add(gone.len() as i64, Ordering::Relaxed);
            if self.mode == DbMode::WriteThrough && !gone.is_empty() {
                let name = self.name.clone();
                if let Err(e) =
                    self.with_db(|c| gone.iter().try_for_each(|r| dbrow::delete(c, &name, r)))
                {
                    lm_err!("{e}");
                }
            }
        }
        if self.mode == DbMode::WriteBack {
            if let Err(e) = self.flush() {
                lm_err!("{e}");
            }
        }
    }

    /// db_mode 2: writes every pending change now. Other modes: nothing
    /// to do.
    pub fn flush(&self) -> Result<usize, String> {
        if self.mode != DbMode::WriteBack {
            return Ok(0);
        }
        let mut total = 0;
        for s in &self.shards {
            let (writes, deletes) = {
                let mut s = s.lock().unwrap_or_else(|e| e.into_inner());
                let dirty = std::mem::take(&mut s.dirty);
                let deleted = std::mem::take(&mut s.deleted);
                let writes: Vec<Contact> = dirty
                    .iter()
                    .filter_map(|(ruid, aor)| {
                        s.records
                            .get(aor.as_str())
                            .and_then(|cs| cs.iter().find(|c| c.ruid() == ruid))
                            .map(|c| c.unpack(aor))
                    })
                    .collect();
                (writes, deleted)
            };
            if writes.is_empty() && deletes.is_empty() {
                continue;
            }
            let name = self.name.clone();
            let ud = self.use_domain;
            let r = self.with_db(|conn| {
                conn.transaction(&mut |c: &mut dyn DbConn| {
                    for r in &deletes {
                        dbrow::delete(c, &name, r)?;
                    }
                    for w in &writes {
                        dbrow::upsert(c, &name, w, ud)?;
                    }
                    Ok(())
                })
            });
            match r {
                Ok(()) => total += writes.len() + deletes.len(),
                Err(e) => {
                    // Keep them pending for the next run.
                    let mut s = s.lock().unwrap_or_else(|e| e.into_inner());
                    for w in writes {
                        s.dirty.entry(w.ruid.clone()).or_insert(w.aor.clone());
                    }
                    s.deleted.extend(deletes);
                    return Err(e);
                }
            }
        }
        Ok(total)
    }
}

/// The full contacts of `aor` from their stored form.
fn unpack(aor: &str, cs: Option<&Stored>) -> Vec<Contact> {
    cs.map_or_else(Vec::new, |cs| cs.iter().map(|c| c.unpack(aor)).collect())
}

/// Kamailio's order (usrloc's `desc_time_order` 0): higher q first;
/// among equal q, in the order they were added (a refresh keeps a
/// contact's place).
pub fn sort_contacts(v: &mut [Contact]) {
    v.sort_by_key(|c| std::cmp::Reverse(c.q));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory_domain_and_expiry() {
        let d = Domain::new("location", DbMode::NoDb, true, None, 4);
        d.with_record("a@x", 100, |r| {
            let mut c = Contact::new("a@x", "sip:a@1.1.1.1");
            c.expires = 160;
            r.insert(c);
            let mut c = Contact::new("a@x", "sip:a@2.2.2.2");
            c.expires = 200;
            c.q = 900;
            r.insert(c);
            Ok(())
        })
        .unwrap();
        let v = d.lookup("a@x", 100).unwrap();
        assert_eq!(v.len(), 2);
        assert_eq!(v[0].contact, "sip:a@2.2.2.2");
        assert_eq!(d.counts(), (1, 2));
        assert_eq!(d.lookup("a@x", 170).unwrap().len(), 1);
        d.timer(170);
        assert_eq!(d.counts(), (1, 1));
        assert_eq!(d.expired_count(), 1);
        d.timer(200);
        assert_eq!(d.counts(), (0, 0));
        assert!(d.lookup("a@x", 100).unwrap().is_empty());
        let e: Result<(), String> = d.with_record("b@x", 0, |r| {
            r.insert(Contact::new("b@x", "sip:b@h"));
            Err("no".into())
        });
        assert!(e.is_err());
        assert_eq!(d.counts(), (0, 0));
    }

    #[test]
    fn with_record_lookup_matches_lookup() {
        let d = Domain::new("location", DbMode::NoDb, false, None, 16);
        assert_eq!(d.shards.len(), 1 << MAX_SHARD_BITS);
        let (n, cs) = d
            .with_record_lookup("a", 100, |r| {
                for (uri, expires, q) in [("sip:a@1", 50, 100), ("sip:a@2", 200, 900)] {
                    let mut c = Contact::new("a", uri);
                    c.expires = expires;
                    c.q = q;
                    r.insert(c);
                }
                Ok(r.contacts().count())
            })
            .unwrap();
        assert_eq!(n, 2);
        assert_eq!(cs, d.lookup("a", 100).unwrap());
        assert_eq!(cs.len(), 1);
        assert_eq!(cs[0].contact, "sip:a@2");
        // No change: the stored contacts all the same.
        let (_, again) = d.with_record_lookup("a", 100, |_| Ok(())).unwrap();
        assert_eq!(again, cs);
    }
}
