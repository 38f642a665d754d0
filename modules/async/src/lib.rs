//! Module `async` (Kamailio's): a request's processing continued later, or
//! at once in a thread of the module's own, in a `route[...]` block.
//! `async_route(name, seconds)`, `async_ms_route(name, ms)` and
//! `async_task_route(name)` suspend the request's transaction (tm's
//! `t_suspend`, which makes it when needed) and stop the script; when the
//! time is up one of the module's `workers` runs `route[name]` on the
//! transaction's request (tm's `t_continue`), where `t_reply()` or
//! `t_relay()` finish it. `async_sleep` and `async_ms_sleep` (which go on
//! with the action after them) are not built.
#![forbid(unsafe_code)]

use sr_mod_tm::{TmApi, TM_API};
use sr_sdk::prelude::*;
use sr_sdk::RouteId;
use std::collections::BinaryHeap;
use std::sync::atomic::AtomicI64;
use std::sync::mpsc;
use std::sync::{Arc, Condvar, Mutex, OnceLock, Weak};
use std::time::{Duration, Instant};

/// A suspended request to continue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Job {
    due: Instant,
    index: u64,
    label: u64,
    route: RouteId,
}

impl Ord for Job {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        // The earliest first out of the (max-)heap.
        other.due.cmp(&self.due)
    }
}

impl PartialOrd for Job {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

/// The module's state.
#[derive(Default)]
struct Async {
    workers: Arc<AtomicI64>,
    ms_timer: Arc<AtomicI64>,
    queue: Mutex<BinaryHeap<Job>>,
    wake: Condvar,
    tm: OnceLock<Arc<TmApi>>,
    core: OnceLock<Weak<dyn Core>>,
}

impl Async {
    fn init(self: &Arc<Self>, core: &dyn Core) -> Result<(), String> {
        let tm = bind::<TmApi>(core, TM_API)
            .ok_or("async needs the tm module (load tm before async)")?;
        let _ = self.tm.set(tm);
        let handle = core.handle().ok_or("async: no core handle")?;
        let _ = self.core.set(handle);
        let n = params::get_int(&self.workers).clamp(1, 64) as usize;
        let (tx, rx) = mpsc::channel::<Job>();
        let rx = Arc::new(Mutex::new(rx));
        for i in 0..n {
            let (a, rx) = (self.clone(), rx.clone());
            std::thread::Builder::new()
                .name(format!("async-worker-{i}"))
                .spawn(move || loop {
                    let job = match rx.lock() {
                        Ok(r) => r.recv(),
                        Err(_) => return,
                    };
                    let Ok(job) = job else { return };
                    a.run(job);
                })
                .map_err(|e| format!("async: cannot start a worker: {e}"))?;
        }
        let a = self.clone();
        std::thread::Builder::new()
            .name("async-timer".into())
            .spawn(move || a.schedule(tx))
            .map_err(|e| format!("async: cannot start its timer: {e}"))?;
        Ok(())
    }

    /// Hands each job to the workers when it is due.
    fn schedule(&self, tx: mpsc::Sender<Job>) {
        let mut q = self.queue.lock().unwrap_or_else(|e| e.into_inner());
        loop {
            if self.core.get().and_then(Weak::upgrade).is_none() {
                return;
            }
            let now = Instant::now();
            while q.peek().is_some_and(|j| j.due <= now) {
                if let Some(j) = q.pop() {
                    if tx.send(j).is_err() {
                        return;
                    }
                }
            }
            let wait = q
                .peek()
                .map_or(Duration::from_millis(500), |j| j.due - now)
                .min(Duration::from_millis(500));
            q = self
                .wake
                .wait_timeout(q, wait)
                .map(|(g, _)| g)
                .unwrap_or_else(|e| e.into_inner().0);
        }
    }

    /// Continues one request.
    fn run(&self, job: Job) {
        let (Some(tm), Some(core)) = (self.tm.get(), self.core.get().and_then(Weak::upgrade))
        else {
            return;
        };
        if tm.t_continue(&*core, job.index, job.label, job.route) < 0 {
            lm_warn!(
                "async: the transaction {}:{} was no longer there to continue",
                job.index,
                job.label
            );
        }
    }

    /// Suspends the request and queues its continuation after `delay`: 0
    /// (the script stops) when done, -1 when the request could not be
    /// suspended.
    fn later(&self, ctx: &mut Ctx<'_>, route: RouteId, delay: Duration) -> i32 {
        let Some(tm) = self.tm.get() else {
            return -1;
        };
        if tm.t_suspend(ctx) != 1 {
            lm_err!("async: cannot suspend the transaction");
            return -1;
        }
        let Some((index, label)) = tm.t_ids(ctx) else {
            return -1;
        };
        let job = Job {
            due: Instant::now() + delay,
            index,
            label,
            route,
        };
        if let Ok(mut q) = self.queue.lock() {
            q.push(job);
        }
        self.wake.notify_one();
        0
    }
}

fn route_then_int(env: &dyn fixup::FixupEnv, i: usize, arg: &Arg) -> Result<Fixed, String> {
    if i == 0 {
        fixup::route(RouteType::REQUEST)(env, i, arg)
    } else {
        fixup::igp(env, i, arg)
    }
}

/// The module definition.
pub fn module() -> ModuleDef {
    let a = Arc::new(Async {
        workers: params::int_cell(1),
        ms_timer: params::int_cell(0),
        ..Async::default()
    });
    let mut def = ModuleDef::new("async")
        .param("workers", ParamKind::Int, params::int(&a.workers))
        // Kamailio's millisecond timer, which async_ms_route needs (its
        // step: siprouter's timer is exact to the millisecond).
        .param("ms_timer", ParamKind::Int, params::int(&a.ms_timer));
    let ai = a.clone();
    def = def.on_init(move |core| ai.init(core));
    for (name, unit) in [("async_route", 1000u64), ("async_ms_route", 1)] {
        let a = a.clone();
        def = def.cmd(
            name,
            2,
            RouteType::REQUEST,
            Some(fixup::f(route_then_int)),
            move |ctx, p| {
                let Fixed::Route(r) = &p[0] else {
                    return -1;
                };
                if unit == 1 && params::get_int(&a.ms_timer) <= 0 {
                    lm_err!("{name}: the millisecond timer is off - set modparam(\"async\", \"ms_timer\", ...)");
                    return -1;
                }
                let n = p[1].int(ctx);
                if n < 0 {
                    lm_err!("{name}: a negative time ({n})");
                    return -1;
                }
                a.later(ctx, *r, Duration::from_millis(n as u64 * unit))
            },
        );
    }
    let at = a.clone();
    def.cmd(
        "async_task_route",
        1,
        RouteType::REQUEST,
        Some(fixup::route(RouteType::REQUEST)),
        move |ctx, p| {
            let Fixed::Route(r) = &p[0] else {
                return -1;
            };
            at.later(ctx, *r, Duration::ZERO)
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jobs_come_out_earliest_first() {
        let now = Instant::now();
        let j = |ms: u64, index: u64| Job {
            due: now + Duration::from_millis(ms),
            index,
            label: 0,
            route: RouteId(0),
        };
        let mut q = BinaryHeap::new();
        q.push(j(300, 1));
        q.push(j(100, 2));
        q.push(j(200, 3));
        let order: Vec<u64> = std::iter::from_fn(|| q.pop()).map(|x| x.index).collect();
        assert_eq!(order, vec![2, 3, 1]);
    }
}
