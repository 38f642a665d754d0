//! TxTable: basic operations, lazy timer cancellation, concurrency and the
//! no-leak run of a million short transactions.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread;

use common::t;
use sip_txn::{
    Action, Instant, Method, NonInviteClient, Timed, TimerConfig, Transaction, TxKey, TxTable,
};

/// A trivial timed value: fires once at `at`, terminates when fired.
#[derive(Debug, Clone, PartialEq)]
struct Dummy {
    at: Option<Instant>,
    done: bool,
}

impl Timed for Dummy {
    fn poll_timeout(&self) -> Option<Instant> {
        self.at
    }
    fn is_terminated(&self) -> bool {
        self.done
    }
}

fn dummy(ms: u64) -> Dummy {
    Dummy {
        at: Some(t(ms)),
        done: false,
    }
}

#[test]
fn insert_get_remove_len() {
    let table: TxTable<u64, Dummy> = TxTable::new(3);
    assert_eq!(table.shard_count(), 4);
    assert!(table.is_empty());
    assert_eq!(table.insert(1, dummy(10)), None);
    assert_eq!(table.insert(2, dummy(20)), None);
    assert_eq!(table.insert(1, dummy(15)), Some(dummy(10)));
    assert_eq!(table.len(), 2);
    assert_eq!(table.get(&1), Some(dummy(15)));
    assert!(table.contains_key(&2));
    assert_eq!(table.remove(&2), Some(dummy(20)));
    assert_eq!(table.remove(&2), None);
    assert_eq!(table.len(), 1);
    let mut seen = Vec::new();
    table.for_each(|k, _| seen.push(*k));
    assert_eq!(seen, [1]);
    // Terminated values never enter the table.
    table.insert(
        3,
        Dummy {
            at: None,
            done: true,
        },
    );
    assert!(!table.contains_key(&3));
    assert_eq!(table.remove(&1), Some(dummy(15)));
    assert_eq!(table.timer_len(), 0);
}

#[test]
fn sync_removes_what_terminated_and_remove_if_removes_only_what_it_is_told() {
    // The shared flag stands for a value that terminates while it is in
    // the table (tm's cells end outside the table lock).
    #[derive(Debug, Clone)]
    struct Flagged(Arc<std::sync::atomic::AtomicBool>);
    impl Timed for Flagged {
        fn poll_timeout(&self) -> Option<Instant> {
            Some(t(10))
        }
        fn is_terminated(&self) -> bool {
            self.0.load(Ordering::SeqCst)
        }
    }
    let table: TxTable<u64, Flagged> = TxTable::new(2);
    let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
    table.insert(1, Flagged(done.clone()));
    assert!(!table.sync(&1), "live: kept");
    assert!(table.contains_key(&1));
    done.store(true, Ordering::SeqCst);
    assert!(table.sync(&1), "terminated: removed");
    assert!(!table.contains_key(&1));
    assert!(table.sync(&1), "absent counts as gone");
    assert_eq!(
        table.timer_len(),
        0,
        "the shard emptied: no timer entry left"
    );

    let keys: TxTable<u64, Dummy> = TxTable::new(2);
    keys.insert(5, dummy(10));
    assert_eq!(keys.remove_if(&5, |d| d.at == Some(t(99))), None);
    assert!(keys.contains_key(&5), "kept when told to");
    assert_eq!(keys.remove_if(&5, |d| d.at == Some(t(10))), Some(dummy(10)));
    assert!(!keys.contains_key(&5));
    assert_eq!(keys.remove_if(&5, |_| true), None, "absent");
}

#[test]
fn expired_in_order_with_lazy_cancellation() {
    let table: TxTable<u64, Dummy> = TxTable::new(1);
    for k in 0..10 {
        table.insert(k, dummy(100 * (k + 1)));
    }
    // Reschedule 3 later and 4 to never: their old timer entries go stale.
    table.with(&3, |d| d.at = Some(t(5000)));
    table.with(&4, |d| d.at = None);
    assert_eq!(table.next_deadline(), Some(t(100)));
    let mut fired = Vec::new();
    let n = table.poll_expired(t(600), |k, d| {
        fired.push(*k);
        d.done = true;
    });
    assert_eq!(n, 4);
    assert_eq!(fired, [0, 1, 2, 5]);
    assert_eq!(table.len(), 6); // 3, 4, 6, 7, 8, 9
                                // A value left with a past deadline is visited once per call, not looped.
    let mut visits = 0;
    table.poll_expired(t(900), |_, d| {
        visits += 1;
        d.at = Some(t(1)); // stubbornly in the past
    });
    assert_eq!(visits, 3); // 6, 7, 8
    let mut visits = 0;
    table.poll_expired(t(900), |_, _| visits += 1);
    assert_eq!(visits, 3);
    // Finish everything; nothing remains, the timer entries included.
    table.poll_expired(t(10_000), |_, d| d.done = true);
    assert_eq!(table.len(), 1); // key 4 has no deadline
    table.with(&4, |d| d.done = true);
    assert_eq!(table.len(), 0);
    assert_eq!(table.timer_len(), 0);
}

#[test]
fn a_deadline_moved_later_keeps_one_timer_entry_and_fires_when_due() {
    let table: TxTable<u64, Dummy> = TxTable::new(1);
    table.insert(0, dummy(100));
    table.insert(1, dummy(100));
    // Later and later: no new entries, the one at 100 stays.
    for ms in [200, 300, 5_000] {
        table.with(&1, |d| d.at = Some(t(ms)));
    }
    assert_eq!(table.timer_len(), 2);
    let mut fired = Vec::new();
    table.poll_expired(t(150), |k, d| {
        fired.push(*k);
        d.done = true;
    });
    assert_eq!(fired, [0], "1 is not due at 150, though its entry was");
    assert_eq!(table.timer_len(), 1, "1 scheduled again, at 5 000");
    table.poll_expired(t(4_999), |k, _| fired.push(*k));
    assert_eq!(fired, [0]);
    // Earlier again: a new entry, and it fires then.
    table.with(&1, |d| d.at = Some(t(4_000)));
    table.poll_expired(t(4_000), |k, d| {
        fired.push(*k);
        d.done = true;
    });
    assert_eq!(fired, [0, 1]);
    assert!(table.is_empty());
    assert_eq!(table.timer_len(), 0);
}

#[test]
fn with_or_insert_creates_once() {
    let table: TxTable<u64, Dummy> = TxTable::new(2);
    let created = table.with_or_insert(&7, || dummy(10), |_, created| created);
    assert!(created);
    let created = table.with_or_insert(
        &7,
        || dummy(99),
        |d, created| {
            assert_eq!(d.at, Some(t(10)));
            created
        },
    );
    assert!(!created);
    // Terminating inside with_or_insert removes it.
    table.with_or_insert(&7, || dummy(1), |d, _| d.done = true);
    assert!(table.is_empty());
}

#[test]
fn timer_entries_are_compacted_when_stale_ones_pile_up() {
    let table: TxTable<u64, Dummy> = TxTable::new(1);
    table.insert(0, dummy(1_000_000)); // keeps the shard non-empty
    for k in 1..10_000 {
        table.insert(k, dummy(500_000 + k));
        table.remove(&k);
    }
    assert!(
        table.timer_len() < 1_000,
        "timer entries not compacted: {}",
        table.timer_len()
    );
}

#[test]
fn concurrent_insert_remove_and_timer_thread() {
    const THREADS: u64 = 4;
    const PER: u64 = 20_000;
    let table: Arc<TxTable<u64, Dummy>> = Arc::new(TxTable::new(16));
    let stop = Arc::new(AtomicUsize::new(0));
    let fired = Arc::new(AtomicUsize::new(0));
    let timer = {
        let (table, stop, fired) = (table.clone(), stop.clone(), fired.clone());
        thread::spawn(move || {
            while stop.load(Ordering::Acquire) == 0 {
                let n = table.poll_expired(t(50), |_, d| d.done = true);
                fired.fetch_add(n, Ordering::Relaxed);
                thread::yield_now();
            }
        })
    };
    let workers: Vec<_> = (0..THREADS)
        .map(|w| {
            let table = table.clone();
            thread::spawn(move || {
                for i in 0..PER {
                    let k = w * PER + i;
                    // A tenth expire at 50 ms (fired by the timer thread),
                    // the rest are removed or terminated by the worker.
                    table.insert(k, dummy(if i % 10 == 0 { 50 } else { 1_000 + i }));
                    if i % 10 == 1 {
                        assert!(table.remove(&k).is_some());
                    } else if i % 10 == 2 {
                        table.with(&k, |d| d.done = true);
                    }
                }
            })
        })
        .collect();
    for w in workers {
        w.join().expect("worker");
    }
    stop.store(1, Ordering::Release);
    timer.join().expect("timer");
    fired.fetch_add(
        table.poll_expired(t(50), |_, d| d.done = true),
        Ordering::Relaxed,
    );
    assert_eq!(fired.load(Ordering::Relaxed) as u64, THREADS * PER / 10);
    assert_eq!(table.len() as u64, THREADS * PER * 7 / 10);
    table.poll_expired(t(1_000_000), |_, d| d.done = true);
    assert_eq!(table.len(), 0);
    assert_eq!(table.timer_len(), 0);
}

/// Runs `n` real non-INVITE client transactions over UDP through a table
/// driven by a virtual clock: 100 start per millisecond, most answered
/// after 0–1.2 s (some after retransmissions), one in 50 never answered
/// (Timer F). Returns (terminated, timeouts, Timer E retransmissions).
fn run_short_transactions(n: u64) -> (u64, u64, u64) {
    let cfg = TimerConfig::default();
    let table: TxTable<TxKey, Transaction<u64>> = TxTable::new(16);
    let (mut terminated, mut timeouts, mut retrans) = (0u64, 0u64, 0u64);
    let key = |i: u64| TxKey::client(&format!("z9hG4bK{i:x}"), Method::Options);
    let mut count = |a: sip_txn::Actions<u64>| {
        for a in a {
            match a {
                Action::Terminated => terminated += 1,
                Action::Timeout => timeouts += 1,
                Action::Transmit(_) => retrans += 1,
                _ => {}
            }
        }
    };
    let mut next = 0u64;
    let mut now = 0u64;
    // Response arrival times, bucketed by millisecond in a ring (delays
    // are below its length).
    let mut ring: Vec<Vec<u64>> = vec![Vec::new(); 1_300];
    while next < n || !table.is_empty() {
        let clock = t(now);
        for _ in 0..100 {
            if next == n {
                break;
            }
            let (tx, _first) = NonInviteClient::start(next, false, &cfg, clock);
            table.insert(key(next), tx.into());
            if next % 50 != 0 {
                let delay = (next * 7919) % 1_200 + 1;
                ring[((now + delay) % 1_300) as usize].push(next);
            }
            next += 1;
        }
        for i in std::mem::take(&mut ring[(now % 1_300) as usize]) {
            let a = table.with(&key(i), |tx| {
                tx.as_non_invite_client()
                    .map(|c| c.handle_response(clock, 200, 200))
            });
            count(a.flatten().unwrap_or_default());
        }
        table.poll_expired(clock, |_, tx| count(tx.handle_timeout(clock)));
        now += 1;
        assert!(now < 100_000_000, "simulation does not converge");
    }
    assert_eq!(table.len(), 0, "transactions leaked");
    assert_eq!(table.timer_len(), 0, "timer entries leaked");
    (terminated, timeouts, retrans)
}

#[test]
fn hundred_thousand_short_transactions_leave_nothing_behind() {
    let n = 100_000;
    let (terminated, timeouts, retrans) = run_short_transactions(n);
    assert_eq!(terminated, n);
    assert_eq!(timeouts, n / 50);
    assert!(retrans > 0);
}

/// The full million. Runs in release builds, or in debug when
/// `SIP_TXN_HEAVY=1` is set (it takes a while unoptimised).
#[test]
fn million_short_transactions_leave_nothing_behind() {
    if cfg!(debug_assertions) && std::env::var_os("SIP_TXN_HEAVY").is_none() {
        eprintln!("skipped in debug builds; set SIP_TXN_HEAVY=1 or use --release");
        return;
    }
    let n = 1_000_000;
    let (terminated, timeouts, _) = run_short_transactions(n);
    assert_eq!(terminated, n);
    assert_eq!(timeouts, n / 50);
}

/// A million minimal transactions (u64 keys, one timer each, half
/// terminated by a "response", half by their timer) through table + timer wheel:
/// cheap enough to always run in debug builds.
#[test]
fn million_simple_transactions_leave_nothing_behind() {
    let table: TxTable<u64, Dummy> = TxTable::new(16);
    let mut fired = 0usize;
    for ms in 0..10_000u64 {
        for j in 0..100u64 {
            let k = ms * 100 + j;
            table.insert(k, dummy(ms + 32));
            if k % 2 == 0 {
                // Answered at once: terminates, its timer entry goes stale.
                table.with(&k, |d| d.done = true);
            }
        }
        fired += table.poll_expired(t(ms), |_, d| d.done = true);
    }
    fired += table.poll_expired(t(20_000), |_, d| d.done = true);
    assert_eq!(fired, 500_000);
    assert_eq!(table.len(), 0);
    assert_eq!(table.timer_len(), 0);
}
