//! Iterators (`sht_iterator_*`, `$shtitkey`, `$shtitval`) and the slot
//! locks of `sht_lock`/`sht_unlock`. As in Kamailio an iterator belongs to
//! the worker that started it (at most four, names of at most 31
//! characters) and walks the table in Kamailio's order (slot, then hash);
//! it walks the items there were when it started or ran past the end, not
//! holding a lock between calls.

use crate::spec::{expand, split_name};
use crate::table::{Table, Val};
use crate::Htable;
use sr_sdk::prelude::*;
use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

/// Where an iterator stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Pos {
    Before,
    At(usize),
    End,
}

struct It {
    table: Option<Arc<Table>>,
    keys: Vec<String>,
    pos: Pos,
}

thread_local! {
    /// (module instance, iterator name) → iterator, per worker.
    static ITERS: RefCell<HashMap<(usize, String), It>> = RefCell::new(HashMap::new());
}

const MAX_ITERS: usize = 4;
const MAX_NAME: usize = 31;

fn inst(ht: &Htable) -> usize {
    ht.id
}

fn snapshot(t: &Table) -> Vec<String> {
    t.entries(Instant::now())
        .into_iter()
        .map(|(_, k, _, _)| k)
        .collect()
}

/// `sht_iterator_start(name, table)`.
pub fn start(ht: &Htable, name: &str, table: &str) -> i32 {
    if name.len() > MAX_NAME {
        lm_err!("htable: iterator name '{name}' is too long");
        return -1;
    }
    ITERS.with(|m| {
        let mut m = m.borrow_mut();
        let id = (inst(ht), name.to_string());
        let mine = m.keys().filter(|k| k.0 == id.0).count();
        if !m.contains_key(&id) && mine >= MAX_ITERS {
            lm_err!("htable: no iterator free for '{name}'");
            return -1;
        }
        let t = ht.table(table);
        let keys = t.as_deref().map(snapshot).unwrap_or_default();
        let ok = t.is_some();
        m.insert(
            id,
            It {
                table: t,
                keys,
                pos: Pos::Before,
            },
        );
        if ok {
            1
        } else {
            lm_err!("htable: no table '{table}'");
            -1
        }
    })
}

fn with_it<R>(ht: &Htable, name: &str, f: impl FnOnce(&mut It) -> R) -> Option<R> {
    ITERS.with(|m| m.borrow_mut().get_mut(&(inst(ht), name.to_string())).map(f))
}

/// Moves to the next live item from `it.pos`; whether there is one.
fn advance(it: &mut It) -> bool {
    let Some(t) = it.table.clone() else {
        return false;
    };
    let now = Instant::now();
    let mut i = match it.pos {
        Pos::Before => 0,
        Pos::At(i) => i + 1,
        // Past the end, a walk starts again from the first slot.
        Pos::End => {
            it.keys = snapshot(&t);
            0
        }
    };
    while i < it.keys.len() {
        if t.get(&it.keys[i], now).is_some() {
            it.pos = Pos::At(i);
            return true;
        }
        i += 1;
    }
    it.pos = Pos::End;
    false
}

/// `sht_iterator_next(name)`: 1 on an item, -1 at the end.
pub fn next(ht: &Htable, name: &str) -> i32 {
    match with_it(ht, name, advance) {
        Some(true) => 1,
        Some(false) => -1,
        None => {
            lm_err!("htable: iterator '{name}' not initialized");
            -1
        }
    }
}

/// `sht_iterator_end(name)`.
pub fn end(ht: &Htable, name: &str) -> i32 {
    ITERS.with(|m| {
        if m.borrow_mut()
            .remove(&(inst(ht), name.to_string()))
            .is_some()
        {
            1
        } else {
            lm_err!("htable: iterator '{name}' not found");
            -1
        }
    })
}

/// The current item's table and key.
fn current(ht: &Htable, name: &str) -> Option<(Arc<Table>, String)> {
    with_it(ht, name, |it| match it.pos {
        Pos::At(i) => Some((it.table.clone()?, it.keys.get(i)?.clone())),
        _ => None,
    })
    .flatten()
}

/// `$shtitkey(name)`.
pub fn key(ht: &Htable, name: &str) -> Value<'static> {
    current(ht, name).map_or(Value::Null, |(_, k)| Value::str(k))
}

/// `$shtitval(name)`.
pub fn val(ht: &Htable, name: &str) -> Value<'static> {
    match current(ht, name).and_then(|(t, k)| t.get(&k, Instant::now())) {
        Some(Val::Int(i)) => Value::Int(i),
        Some(Val::Str(s)) => Value::str(s),
        None => Value::Null,
    }
}

/// `sht_iterator_rm(name)`: removes the current item and moves on; 1 on
/// the next item, -2 at the end, -1 with no current item.
pub fn rm(ht: &Htable, name: &str) -> i32 {
    let Some((t, k)) = current(ht, name) else {
        lm_err!("htable: iterator '{name}' not used");
        return -1;
    };
    t.remove(&k, Instant::now());
    match with_it(ht, name, advance) {
        Some(true) => 1,
        _ => -2,
    }
}

/// `sht_iterator_sets/seti/setex(name, value)`.
pub fn set(ht: &Htable, name: &str, what: Set) -> i32 {
    let Some((t, k)) = current(ht, name) else {
        lm_err!("htable: iterator '{name}' not used");
        return -1;
    };
    let now = Instant::now();
    match what {
        Set::Val(v) => t.set(&k, v, None, now),
        Set::Expire(secs) => {
            t.set_expire(&k, secs, now);
        }
    }
    1
}

/// What an iterator's set function changes.
pub enum Set {
    /// A new value.
    Val(Val),
    /// A new lifetime, in seconds.
    Expire(u64),
}

/// `sht_lock(t=>k)` (`lock`) or `sht_unlock(t=>k)`: 1, or -11 for an
/// unknown table.
pub fn lock(ht: &Htable, ctx: &mut Ctx<'_>, spec: &str, lock: bool) -> i32 {
    let Ok((t, k)) = split_name(spec) else {
        return -1;
    };
    let Some(table) = ht.table(t) else {
        lm_err!("htable: cannot get $sht root '{t}'");
        return -11;
    };
    let key = expand(ctx, k);
    if lock {
        // (Not taken only when the server stops while it waits.)
        if !table.lock(&key) {
            return -1;
        }
    } else {
        table.unlock(&key);
    }
    1
}
