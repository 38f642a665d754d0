//! Module `rtimer`: route blocks run on timers (Kamailio's rtimer).
//!
//! `modparam("rtimer", "timer", "name=ta;interval=10;mode=1;")` defines a
//! timer and `modparam("rtimer", "exec", "timer=ta;route=TEST")` runs
//! `route[TEST]` on it, as a request route, with a faked OPTIONS request
//! that each runner keeps from one tick to the next (as Kamailio's: `$ru`,
//! `$du` and flags set there stay; AVPs are cleared after each route).
//! Mode 0 timers run together on one thread of the module's (Kamailio's
//! "slow timer" process); mode N on N threads of their own, each running
//! the routes once per interval (`$rtimer_worker` is the
//! thread's index); an interval ending in `u` is in microseconds and runs
//! on a thread of its own.
#![forbid(unsafe_code)]

use sr_sdk::prelude::*;
use std::cell::Cell;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// One timer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Timer {
    /// Its name (compared case-insensitively).
    pub name: String,
    /// How often it fires.
    pub interval: Duration,
    /// 0: the core's timer thread; N: N threads of its own.
    pub mode: u32,
    /// The routes it runs, in the order they run.
    pub routes: Vec<String>,
}

/// The `key=value;...` pairs of a parameter, keys lower-cased; one
/// trailing `;` dropped.
fn pairs(s: &str) -> Result<Vec<(String, String)>, String> {
    let s = s.trim();
    let s = s.strip_suffix(';').unwrap_or(s);
    let mut out = Vec::new();
    for item in s.split(';') {
        let item = item.trim();
        if item.is_empty() {
            continue;
        }
        let (k, v) = item.split_once('=').unwrap_or((item, ""));
        out.push((k.trim().to_ascii_lowercase(), v.trim().to_string()));
    }
    Ok(out)
}

/// Parses a `timer` parameter (`default_interval` seconds when it has no
/// interval). As Kamailio's, the parameters are read right to left and the
/// first non-zero mode (or a microsecond interval, mode 1) wins.
pub fn parse_timer(s: &str, default_interval: i64) -> Result<Timer, String> {
    let mut name = String::new();
    let mut interval = None;
    let mut mode: u32 = 0;
    for (k, v) in pairs(s)?.into_iter().rev() {
        match k.as_str() {
            "name" => {
                if v.is_empty() {
                    return Err(format!("rtimer: error while parsing '{s}': empty name"));
                }
                name = v;
            }
            "interval" => {
                let (digits, usec) = match v.strip_suffix(['u', 'U']) {
                    Some(d) => (d, true),
                    None => (v.as_str(), false),
                };
                let n: u64 = digits
                    .parse()
                    .map_err(|_| format!("rtimer: invalid interval: {v}"))?;
                // At most a year (an instant that far on cannot overflow).
                let n = n.min(if usec {
                    365 * 86_400_000_000
                } else {
                    365 * 86_400
                });
                if usec && n > 0 {
                    interval = Some(Duration::from_micros(n));
                    if mode == 0 {
                        mode = 1;
                    }
                } else if n > 0 {
                    interval = Some(Duration::from_secs(n));
                }
            }
            "mode" => {
                let n: u32 = v
                    .parse()
                    .map_err(|_| format!("rtimer: invalid mode: {v}"))?;
                if mode == 0 {
                    mode = n;
                }
            }
            _ => {}
        }
    }
    if name.is_empty() {
        return Err("rtimer: invalid timer name".into());
    }
    let default = Duration::from_secs(default_interval.max(1) as u64);
    Ok(Timer {
        name,
        interval: interval.unwrap_or(default),
        mode,
        routes: Vec::new(),
    })
}

/// The module's state: the timers, as the parameters define them.
#[derive(Debug, Default)]
pub struct Rtimer {
    timers: Mutex<Vec<Timer>>,
    default_interval: Arc<AtomicI64>,
}

impl Rtimer {
    fn add_timer(&self, s: &str) -> Result<(), String> {
        let t = parse_timer(s, self.default_interval.load(Ordering::Relaxed))?;
        let mut timers = self.timers.lock().map_err(|_| "poisoned")?;
        if timers.iter().any(|x| x.name.eq_ignore_ascii_case(&t.name)) {
            return Err(format!(
                "rtimer: duplicate timer with same name: {}",
                t.name
            ));
        }
        lm_dbg!(
            "rtimer: created rtimer name={} interval={:?} mode={}",
            t.name,
            t.interval,
            t.mode
        );
        timers.push(t);
        Ok(())
    }

    fn add_exec(&self, s: &str) -> Result<(), String> {
        let p = pairs(s)?;
        let timer = p
            .iter()
            .find(|(k, _)| k == "timer")
            .map(|(_, v)| v.clone())
            .ok_or("rtimer: invalid timer name")?;
        // As Kamailio's: without a route key the whole text names the
        // route (which then does not exist and runs nothing).
        let route = p
            .iter()
            .find(|(k, _)| k == "route")
            .map_or_else(|| s.trim().to_string(), |(_, v)| v.clone());
        if route.len() > 62 {
            return Err(format!(
                "rtimer: route block name is too long [{route}] ({})",
                route.len()
            ));
        }
        let mut timers = self.timers.lock().map_err(|_| "poisoned")?;
        let t = timers
            .iter_mut()
            .find(|t| t.name.eq_ignore_ascii_case(&timer))
            .ok_or_else(|| format!("rtimer: timer not found - name: {timer}"))?;
        // Kamailio prepends: the last exec line runs first.
        t.routes.insert(0, route);
        Ok(())
    }

    fn timers(&self) -> Vec<Timer> {
        self.timers.lock().map(|t| t.clone()).unwrap_or_default()
    }
}

thread_local! {
    static WORKER: Cell<i64> = const { Cell::new(0) };
}

/// Runs a timer's routes once on `msg` (kept by the runner between
/// ticks).
fn fire(core: &dyn Core, t: &Timer, msg: &mut SipMsg) {
    for r in &t.routes {
        let Some(id) = core.route_id(RouteType::REQUEST, r) else {
            continue;
        };
        core.run_route(id, RouteType::REQUEST, msg);
        msg.avps = Default::default();
        msg.xavps = Default::default();
    }
}

/// Sleeps until `at` in short steps; false when the server stops (or is
/// gone) meanwhile.
fn wait_until(h: &std::sync::Weak<dyn Core>, at: std::time::Instant) -> bool {
    loop {
        let now = std::time::Instant::now();
        if h.upgrade().is_none_or(|c| c.shutting_down()) {
            return false;
        }
        if now >= at {
            return true;
        }
        std::thread::sleep((at - now).min(Duration::from_millis(100)));
    }
}

/// Starts the timers (from `child_init(PROC_MAIN)`): the mode 0 ones
/// together on one thread of the module's (Kamailio's "slow timer"
/// process: a slow route does not hold up tm's timers), the others on
/// threads of their own, each sleeping a whole interval after each run.
fn start(rt: &Rtimer, core: &dyn Core, rank: i32) -> Result<(), String> {
    if rank != rank::PROC_MAIN {
        return Ok(());
    }
    let handle = core
        .handle()
        .ok_or("rtimer: no core handle for its timers")?;
    let timers = rt.timers();
    let slow: Vec<Timer> = timers
        .iter()
        .filter(|t| t.mode == 0 && !t.routes.is_empty())
        .cloned()
        .collect();
    if !slow.is_empty() {
        let h = handle.clone();
        core.spawn_process(
            "rtimer-slow",
            rank::PROC_TIMER,
            Box::new(move || {
                WORKER.with(|w| w.set(0));
                let start = std::time::Instant::now();
                let mut runs: Vec<(Timer, SipMsg, std::time::Instant)> = slow
                    .into_iter()
                    .map(|t| {
                        let first = start + t.interval;
                        (t, SipMsg::faked(), first)
                    })
                    .collect();
                loop {
                    let Some(next) = runs.iter().map(|r| r.2).min() else {
                        return;
                    };
                    if !wait_until(&h, next) {
                        return;
                    }
                    let Some(core) = h.upgrade() else {
                        return;
                    };
                    for (t, msg, at) in runs.iter_mut() {
                        if *at <= std::time::Instant::now() {
                            fire(&*core, t, msg);
                            *at += t.interval;
                        }
                    }
                }
            }),
        )?;
    }
    for t in timers.into_iter().filter(|t| t.mode > 0) {
        for i in 0..t.mode {
            let (h, t) = (handle.clone(), t.clone());
            core.spawn_process(
                &format!("rtimer-{}-{i}", t.name),
                rank::PROC_TIMER,
                Box::new(move || {
                    WORKER.with(|w| w.set(i64::from(i)));
                    let mut msg = SipMsg::faked();
                    loop {
                        if !wait_until(&h, std::time::Instant::now() + t.interval) {
                            return;
                        }
                        let Some(core) = h.upgrade() else {
                            return;
                        };
                        fire(&*core, &t, &mut msg);
                    }
                }),
            )?;
        }
    }
    Ok(())
}

/// The module definition.
pub fn module() -> ModuleDef {
    let rt = Arc::new(Rtimer {
        timers: Mutex::new(Vec::new()),
        default_interval: params::int_cell(120),
    });
    let (r1, r2, r3) = (rt.clone(), rt.clone(), rt.clone());
    ModuleDef::new("rtimer")
        .param(
            "default_interval",
            ParamKind::Int,
            params::int(&rt.default_interval),
        )
        .param("timer", ParamKind::Str, move |v| match v {
            ParamValue::Str(s) => r1.add_timer(&s),
            ParamValue::Int(i) => r1.add_timer(&i.to_string()),
        })
        .param("exec", ParamKind::Str, move |v| match v {
            ParamValue::Str(s) => r2.add_exec(&s),
            ParamValue::Int(i) => r2.add_exec(&i.to_string()),
        })
        .on_child_init(move |core, rank| start(&r3, core, rank))
        .pv("rtimer_worker", |_, _| Value::Int(WORKER.with(|w| w.get())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timers_as_kamailio_reads_them() {
        let t = parse_timer("name=ta;interval=10;mode=1;", 120).unwrap();
        assert_eq!(
            (t.name.as_str(), t.interval, t.mode),
            ("ta", Duration::from_secs(10), 1)
        );
        let t = parse_timer("name=tb", 5).unwrap();
        assert_eq!(
            (t.interval, t.mode),
            (Duration::from_secs(5), 0),
            "default_interval"
        );
        let t = parse_timer("name=tc;interval=500000u", 120).unwrap();
        assert_eq!((t.interval, t.mode), (Duration::from_micros(500_000), 1));
        let t = parse_timer("name=td;mode=3;interval=10u", 120).unwrap();
        assert_eq!(t.mode, 1, "read right to left: the microseconds win");
        let t = parse_timer("name=te;interval=10u;mode=3", 120).unwrap();
        assert_eq!(t.mode, 3);
        let t = parse_timer("NAME=tf;Slow=1;foo=bar", 120).unwrap();
        assert_eq!(t.name, "tf", "unknown keys ignored");
        assert!(parse_timer("name=x;mode=abc", 1)
            .unwrap_err()
            .contains("invalid mode: abc"));
        assert!(parse_timer("name=x;interval=-1", 1)
            .unwrap_err()
            .contains("invalid interval"));
        assert!(parse_timer("interval=3", 1)
            .unwrap_err()
            .contains("invalid timer name"));
    }

    #[test]
    fn execs_attach_to_earlier_timers() {
        let rt = Rtimer::default();
        rt.default_interval.store(120, Ordering::Relaxed);
        rt.add_timer("name=ta;interval=1").unwrap();
        assert!(rt.add_timer("name=TA").unwrap_err().contains("duplicate"));
        rt.add_exec("timer=ta;route=ONE").unwrap();
        rt.add_exec("timer=TA;route=TWO").unwrap();
        assert_eq!(rt.timers()[0].routes, ["TWO", "ONE"], "the last runs first");
        assert!(rt
            .add_exec("timer=tz;route=X")
            .unwrap_err()
            .contains("timer not found - name: tz"));
        assert!(rt
            .add_exec("route=X")
            .unwrap_err()
            .contains("invalid timer name"));
    }
}
