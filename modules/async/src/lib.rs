//! Module `async` (Kamailio's): a request's processing continued later, or
//! at once in a thread of the module's own.
//! `async_route(name, seconds)`, `async_ms_route(name, ms)` and
//! `async_task_route(name)` suspend the request's transaction (tm's
//! `t_suspend`, which makes it when needed) and stop the script; when the
//! time is up one of the module's `workers` runs `route[name]` on the
//! transaction's request (tm's `t_continue`), where `t_reply()` or
//! `t_relay()` finish it. `async_sleep(seconds)` and `async_ms_sleep(ms)`
//! do the same with the actions after them in their block (the
//! compiler's continuation, Kamailio's `action->next`).
//! `async_task_data(name, data)` runs `route[name]` in a worker on a faked
//! request, `$async(data)` holding the data, while the script goes on.
#![forbid(unsafe_code)]

use sr_mod_tm::{TmApi, TM_API};
use sr_sdk::prelude::*;
use sr_sdk::{PvName, RouteId};
use std::cell::RefCell;
use std::collections::BinaryHeap;
use std::sync::atomic::{AtomicI64, AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Condvar, Mutex, OnceLock, Weak};
use std::time::{Duration, Instant};

/// The longest `async_sleep`, in seconds, plus one (Kamailio's ring of
/// 100 one-second slots).
const MAX_SLEEP_S: i64 = 100;
/// The longest `async_ms_sleep`/`async_ms_route`, in ms, plus one.
const MAX_MS_SLEEP: i64 = 30_000;
/// How many millisecond pauses may wait at once (Kamailio's queue limit).
const MAX_MS_QUEUE: usize = 10_000;

/// What a job does when it is due.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Work {
    /// Continue the suspended transaction `index:label` with a route.
    Continue { index: u64, label: u64 },
    /// Run a route on a faked request with `$async(data)` set.
    Data(String),
}

/// A route to run when due.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Job {
    due: Instant,
    route: RouteId,
    work: Work,
    /// Counted against [`MAX_MS_QUEUE`] while it waits.
    ms: bool,
    /// Run where Kamailio runs it in an async task worker (see
    /// `IN_TASK_WORKER`).
    task: bool,
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

thread_local! {
    /// `$async(data)` while a worker runs an `async_task_data` route.
    static DATA: RefCell<Option<String>> = const { RefCell::new(None) };
    /// Whether this thread runs a job Kamailio runs in its core's async
    /// task workers (`$async(gname)` is their group, `default`): not the
    /// seconds timer's `async_route`/`async_sleep`.
    static IN_TASK_WORKER: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// The module's state.
#[derive(Default)]
struct Async {
    workers: Arc<AtomicI64>,
    ms_timer: Arc<AtomicI64>,
    queue: Mutex<BinaryHeap<Job>>,
    /// Millisecond pauses waiting.
    ms_waiting: AtomicUsize,
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
                    if j.ms {
                        self.ms_waiting.fetch_sub(1, Ordering::Relaxed);
                    }
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

    /// Runs one job.
    fn run(&self, job: Job) {
        let (Some(tm), Some(core)) = (self.tm.get(), self.core.get().and_then(Weak::upgrade))
        else {
            return;
        };
        IN_TASK_WORKER.with(|t| t.set(job.task));
        match job.work {
            Work::Continue { index, label } => {
                if tm.t_continue(&*core, index, label, job.route) < 0 {
                    lm_warn!(
                        "async: the transaction {index}:{label} was no longer there to continue"
                    );
                }
            }
            Work::Data(data) => {
                let mut msg = SipMsg::faked();
                DATA.with(|d| *d.borrow_mut() = Some(data));
                core.run_route(job.route, RouteType::REQUEST, &mut msg);
                DATA.with(|d| *d.borrow_mut() = None);
            }
        }
    }

    fn push(&self, job: Job) {
        self.queue
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(job);
        self.wake.notify_one();
    }

    /// Suspends the request and queues its continuation after `delay`: 0
    /// (the script stops) when done, -1 when the request could not be
    /// suspended.
    fn later(
        &self,
        ctx: &mut Ctx<'_>,
        route: RouteId,
        delay: Duration,
        ms: bool,
        task: bool,
    ) -> i32 {
        let Some(tm) = self.tm.get() else {
            return -1;
        };
        if ctx.msg.faked {
            // (An async_task_data route, a timer's: no transaction to keep.)
            lm_err!("async: invalid usage for faked message");
            return -1;
        }
        if ms
            && self
                .ms_waiting
                .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| {
                    (n < MAX_MS_QUEUE).then_some(n + 1)
                })
                .is_err()
        {
            lm_err!("async: max sleep queue length exceeded ({MAX_MS_QUEUE})");
            return -1;
        }
        let release = |a: &Self| {
            if ms {
                a.ms_waiting.fetch_sub(1, Ordering::Relaxed);
            }
        };
        if tm.t_suspend(ctx) != 1 {
            lm_err!("async: cannot suspend the transaction");
            release(self);
            return -1;
        }
        let Some((index, label)) = tm.t_ids(ctx) else {
            // (Not reached after a suspend that worked: its transaction has
            // ids. Should it be, the blind branch's timer ends it.)
            release(self);
            return -1;
        };
        self.push(Job {
            due: Instant::now() + delay,
            route,
            work: Work::Continue { index, label },
            ms,
            task,
        });
        0
    }

    /// The pause of `async_*_sleep`/`async_*_route` checked as Kamailio
    /// checks it: at least 1 and under its maximum; the millisecond ones
    /// only with `ms_timer` set.
    fn delay(&self, name: &str, n: i64, unit_ms: u64) -> Option<Duration> {
        let ms = unit_ms == 1;
        if ms && params::get_int(&self.ms_timer) <= 0 {
            lm_err!(
                "{name}: the millisecond timer is off - set modparam(\"async\", \"ms_timer\", ...)"
            );
            return None;
        }
        if n <= 0 {
            lm_err!("{name}: negative or zero sleep time ({n})");
            return None;
        }
        let max = if ms { MAX_MS_SLEEP } else { MAX_SLEEP_S };
        if n >= max {
            lm_err!(
                "{name}: max sleep time is {max} {} ({n})",
                if ms { "msec" } else { "sec" }
            );
            return None;
        }
        Some(Duration::from_millis(n as u64 * unit_ms))
    }
}

fn route_then_int(env: &dyn fixup::FixupEnv, i: usize, arg: &Arg) -> Result<Fixed, String> {
    if i == 0 {
        fixup::route(RouteType::REQUEST)(env, i, arg)
    } else {
        fixup::igp(env, i, arg)
    }
}

/// `async_sleep`'s parameter: the pause and the actions after the call.
struct SleepParam {
    pause: Fixed,
    rest: Option<RouteId>,
}

fn sleep_fixup(env: &dyn fixup::FixupEnv, i: usize, arg: &Arg) -> Result<Fixed, String> {
    let pause = fixup::igp(env, i, arg)?;
    Ok(Fixed::Custom(Arc::new(SleepParam {
        pause,
        rest: env.continuation(),
    })))
}

/// `$async(name)`: `data` in an `async_task_data` route; `gname`, the
/// group of the async task worker running the route (`default`, the only
/// one: worker groups are not built), null elsewhere.
fn pv_async(n: &PvName) -> Value<'static> {
    match n.inner.as_deref() {
        Some("data") => DATA.with(|d| {
            d.borrow()
                .clone()
                .map_or(Value::Null, |s| Value::Str(s.into()))
        }),
        Some("gname") if IN_TASK_WORKER.with(|t| t.get()) => Value::Str("default".into()),
        _ => Value::Null,
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
        .param("ms_timer", ParamKind::Int, params::int(&a.ms_timer))
        .pv_checked(
            "async",
            |n| match n.inner.as_deref() {
                Some("data" | "gname") => Ok(()),
                other => Err(format!("unknown PV async name {}", other.unwrap_or(""))),
            },
            |_, n| pv_async(n),
        );
    let ai = a.clone();
    def = def.on_init(move |core| ai.init(core));
    for (name, unit) in [("async_route", 1000u64), ("async_ms_route", 1)] {
        let a = a.clone();
        def = def.cmd(
            name,
            2,
            RouteType::REQUEST | RouteType::FAILURE,
            Some(fixup::f(route_then_int)),
            move |ctx, p| {
                let Fixed::Route(r) = &p[0] else {
                    return -1;
                };
                match a.delay(name, p[1].int(ctx), unit) {
                    Some(d) => a.later(ctx, *r, d, unit == 1, unit == 1),
                    None => -1,
                }
            },
        );
    }
    for (name, unit) in [("async_sleep", 1000u64), ("async_ms_sleep", 1)] {
        let a = a.clone();
        def = def.cmd(
            name,
            1,
            RouteType::REQUEST | RouteType::FAILURE,
            Some(fixup::f(sleep_fixup)),
            move |ctx, p| {
                let Some(sp) = p[0].custom::<SleepParam>() else {
                    return -1;
                };
                let Some(rest) = sp.rest else {
                    lm_err!("{name}: cannot be executed as last action in a route block");
                    return -1;
                };
                match a.delay(name, sp.pause.int(ctx), unit) {
                    Some(d) => a.later(ctx, rest, d, unit == 1, unit == 1),
                    None => -1,
                }
            },
        );
    }
    let at = a.clone();
    def = def.cmd(
        "async_task_route",
        1,
        RouteType::REQUEST | RouteType::FAILURE,
        Some(fixup::route(RouteType::REQUEST)),
        move |ctx, p| {
            let Fixed::Route(r) = &p[0] else {
                return -1;
            };
            at.later(ctx, *r, Duration::ZERO, false, true)
        },
    );
    let ad = a.clone();
    def.cmd("async_task_data", 2, RouteType::ANY, None, move |ctx, p| {
        let name = p[0].str(ctx).into_owned();
        let Some(route) = ctx.core.route_id(RouteType::REQUEST, &name) else {
            lm_err!("async_task_data: route block not found: {name}");
            return -1;
        };
        let data = p[1].str(ctx).into_owned();
        ad.push(Job {
            due: Instant::now(),
            route,
            work: Work::Data(data),
            ms: false,
            task: true,
        });
        1
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jobs_come_out_earliest_first() {
        let now = Instant::now();
        let j = |ms: u64, index: u64| Job {
            due: now + Duration::from_millis(ms),
            route: RouteId(0),
            work: Work::Continue { index, label: 0 },
            ms: false,
            task: false,
        };
        let mut q = BinaryHeap::new();
        q.push(j(300, 1));
        q.push(j(100, 2));
        q.push(j(200, 3));
        let order: Vec<u64> = std::iter::from_fn(|| q.pop())
            .map(|x| match x.work {
                Work::Continue { index, .. } => index,
                Work::Data(_) => 0,
            })
            .collect();
        assert_eq!(order, vec![2, 3, 1]);
    }
}
