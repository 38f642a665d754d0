//! Module `ratelimit` (Kamailio's): 32 numbered pipes with a limit per
//! second, and queues sending each request method to a pipe.
//! `rl_check()` counts the request in its method's pipe (the exact method
//! first, else the last `*` queue) and says whether it may pass;
//! `rl_check_pipe(n)` uses pipe `n`. Nothing is answered here: the script
//! sends the 503. The load measurements and the FEEDBACK controller are
//! pipelimit's.
#![forbid(unsafe_code)]

use sr_mod_pipelimit::feedback::{self, rpc_int, Feedback};
use sr_mod_pipelimit::load;
use sr_mod_pipelimit::pipes::Algo;
use sr_sdk::exports::params::{get_int, int, int_cell};
use sr_sdk::prelude::*;
use sr_sdk::serde_json::{json, Value as Json};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

/// Pipes and queues there can be.
pub const MAX: usize = 32;

/// One pipe.
#[derive(Debug, Clone, Copy)]
pub struct Pipe {
    /// Algorithm (`None`: not defined, as NOP).
    pub algo: Algo,
    /// Requests per second (bytes for NETWORK, a percentage for
    /// FEEDBACK).
    pub limit: i64,
    /// Requests in this interval.
    pub counter: i64,
    /// Requests in the last interval.
    pub last_counter: i64,
    /// The interval's load.
    pub load: i64,
}

impl Default for Pipe {
    fn default() -> Pipe {
        Pipe {
            algo: Algo::Nop,
            limit: 0,
            counter: 0,
            last_counter: 0,
            load: 0,
        }
    }
}

/// Pipes, queues and the controller's share.
#[derive(Debug)]
pub struct Limits {
    /// The 32 pipes.
    pub pipes: [Pipe; MAX],
    /// The pipes' algorithms as configured (for the FEEDBACK check).
    pub configured: [Algo; MAX],
    /// Queues in definition order: (pipe, method).
    pub queues: Vec<(usize, String)>,
    /// FEEDBACK's share to drop.
    pub drop_rate: i64,
    /// Seconds per interval.
    pub interval: i64,
}

/// Kamailio's FEEDBACK order of 100 slots is not copied; any order with
/// each slot once drops the same share.
fn spread(counter: i64) -> i64 {
    (counter.rem_euclid(100) * 37) % 100
}

impl Limits {
    /// Limits with `interval` seconds per interval.
    pub fn new(interval: i64) -> Limits {
        Limits {
            pipes: [Pipe::default(); MAX],
            configured: [Algo::Nop; MAX],
            queues: Vec::new(),
            drop_rate: 0,
            interval,
        }
    }

    /// The pipe of a method: the first queue naming it (any case), else
    /// the last `*` queue.
    pub fn pipe_of(&self, method: &str) -> Option<usize> {
        let mut star = None;
        for (p, m) in &self.queues {
            if m.eq_ignore_ascii_case(method) {
                return Some(*p);
            }
            if m == "*" {
                star = Some(*p);
            }
        }
        star
    }

    /// Counts a request in pipe `n` and decides: 1 passes, -1 not (NETWORK
    /// gives the negated load, 0 before the first interval).
    pub fn check(&mut self, n: usize) -> i32 {
        let interval = self.interval;
        let drop_rate = self.drop_rate;
        let Some(p) = self.pipes.get_mut(n) else {
            return -1;
        };
        p.counter = p.counter.saturating_add(1);
        match p.algo {
            Algo::Nop => {
                lm_err!("ratelimit: pipe {n} has no algorithm");
                1
            }
            Algo::TailDrop => {
                if p.counter <= p.limit.saturating_mul(interval) {
                    1
                } else {
                    -1
                }
            }
            Algo::Red => {
                if p.load == 0 || p.counter % p.load == 0 {
                    1
                } else {
                    -1
                }
            }
            Algo::Network => (-p.load).clamp(-1, 1) as i32,
            Algo::Feedback => {
                if spread(p.counter) < drop_rate {
                    -1
                } else {
                    1
                }
            }
        }
    }

    /// The interval's end.
    pub fn refresh(&mut self, net_bytes: i64) {
        let interval = self.interval;
        for p in self.pipes.iter_mut() {
            if p.algo == Algo::Network {
                p.load = if net_bytes > p.limit { 1 } else { -1 };
            } else if p.limit != 0 && interval != 0 {
                p.load = p.counter / (p.limit * interval);
            }
            p.last_counter = p.counter;
            p.counter = 0;
        }
    }

    /// The FEEDBACK setpoint the configured pipes ask for; `Err` when
    /// their limits differ or leave 0-100.
    fn setpoint(&self) -> Result<f64, String> {
        let fb: Vec<i64> = (0..MAX)
            .filter(|i| self.configured[*i] == Algo::Feedback)
            .map(|i| self.pipes[i].limit)
            .collect();
        if fb.iter().any(|l| !(0..=100).contains(l) || *l != fb[0]) {
            return Err("Feedback limits don't match".into());
        }
        Ok(fb.first().map_or(0.0, |l| 0.01 * *l as f64))
    }
}

/// Parses `queue`: `pipe:method`.
fn parse_queue(s: &str) -> Result<(usize, String), String> {
    let (p, m) = s
        .split_once(':')
        .ok_or_else(|| format!("queue '{s}': expected pipe:method"))?;
    let p: usize = p
        .parse()
        .map_err(|_| format!("queue '{s}': bad pipe number"))?;
    if p >= MAX || m.is_empty() || m.contains([':', ' ']) {
        return Err(format!("queue '{s}': bad value"));
    }
    Ok((p, m.to_string()))
}

/// Parses `pipe`: `number:ALGORITHM:limit`.
fn parse_pipe(s: &str) -> Result<(usize, Algo, i64), String> {
    let mut it = s.split(':');
    let (Some(n), Some(a), Some(l), None) = (it.next(), it.next(), it.next(), it.next()) else {
        return Err(format!("pipe '{s}': expected number:algorithm:limit"));
    };
    let n: usize = n.parse().map_err(|_| format!("pipe '{s}': bad number"))?;
    if n >= MAX {
        return Err(format!("pipe '{s}': pipe numbers are 0-{}", MAX - 1));
    }
    let a = Algo::parse(a).ok_or_else(|| format!("pipe '{s}': unknown algorithm '{a}'"))?;
    let l: i64 = l.parse().map_err(|_| format!("pipe '{s}': bad limit"))?;
    Ok((n, a, l))
}

/// Pipes and queues as the parameters define them.
type Defs = (Vec<(usize, Algo, i64)>, Vec<(usize, String)>);

struct State {
    limits: Mutex<Limits>,
    fb: Arc<Feedback>,
    dbg: std::sync::atomic::AtomicBool,
}

fn rpc_err(code: i64, msg: &str) -> RpcError {
    RpcError::new(code, msg)
}

/// The module definition.
pub fn module() -> ModuleDef {
    let interval = int_cell(10);
    let defs: Arc<Mutex<Defs>> = Arc::new(Mutex::new((Vec::new(), Vec::new())));
    let state: Arc<OnceLock<State>> = Arc::new(OnceLock::new());
    let fb = Arc::new(Feedback::default());
    let fb_init = fb.clone();
    let (dp, dq) = (defs.clone(), defs.clone());
    let mut def = ModuleDef::new("ratelimit")
        .param("timer_interval", ParamKind::Int, int(&interval))
        .param("pipe", ParamKind::Str, move |v| {
            let ParamValue::Str(s) = v else {
                return Err("pipe is text".into());
            };
            let p = parse_pipe(&s)?;
            dp.lock().map_err(|_| "lock")?.0.push(p);
            Ok(())
        })
        .param("queue", ParamKind::Str, move |v| {
            let ParamValue::Str(s) = v else {
                return Err("queue is text".into());
            };
            let q = parse_queue(&s)?;
            let mut d = dq.lock().map_err(|_| "lock")?;
            if d.1.len() >= MAX {
                return Err(format!("queue '{s}': at most {MAX} queues"));
            }
            d.1.push(q);
            Ok(())
        });
    let s_init = state.clone();
    def = def.on_init(move |core| {
        let iv = get_int(&interval);
        if iv <= 0 {
            return Err("ratelimit: timer_interval must be positive".into());
        }
        let mut l = Limits::new(iv);
        let d = defs.lock().map_err(|_| "lock")?;
        for (n, a, lim) in &d.0 {
            l.pipes[*n] = Pipe {
                algo: *a,
                limit: *lim,
                ..Pipe::default()
            };
            l.configured[*n] = *a;
        }
        l.queues = d.1.clone();
        fb_init.set_setpoint(l.setpoint().map_err(|e| format!("ratelimit: {e}"))?);
        let _ = s_init.set(State {
            limits: Mutex::new(l),
            fb: fb_init.clone(),
            dbg: std::sync::atomic::AtomicBool::new(false),
        });
        let tick = s_init.clone();
        core.add_timer(
            "ratelimit",
            Duration::from_secs(iv as u64),
            Arc::new(move || {
                let Some(st) = tick.get() else { return };
                let rate = st.fb.tick();
                let net = load::bytes_waiting();
                if let Ok(mut l) = st.limits.lock() {
                    l.drop_rate = rate;
                    if st.dbg.load(std::sync::atomic::Ordering::Relaxed) {
                        let line: String = l
                            .pipes
                            .iter()
                            .map(|p| {
                                if p.counter > 9999 {
                                    "*****".to_string()
                                } else {
                                    format!("{:>5}", p.counter)
                                }
                            })
                            .collect();
                        lm_warn!("ratelimit: {line}");
                    }
                    l.refresh(net);
                }
            }),
        );
        Ok(())
    });
    let st = state.clone();
    def = def.cmd("rl_check", 0, RouteType::ANY, None, move |ctx, _a| {
        let Some(s) = st.get() else { return -1 };
        let method = match ctx.msg.msg().txn_method() {
            Ok(m) => m.as_str().to_string(),
            Err(_) => return -1,
        };
        let Ok(mut l) = s.limits.lock() else {
            return -1;
        };
        match l.pipe_of(&method) {
            Some(p) => l.check(p),
            None => {
                lm_info!("ratelimit: no queue for {method}");
                -1
            }
        }
    });
    let rl_pipe = |forced_only: bool, st: Arc<OnceLock<State>>| {
        move |ctx: &mut Ctx<'_>, a: &[Fixed]| -> i32 {
            let Some(s) = st.get() else { return -1 };
            let n = a[0].int(ctx);
            let Ok(mut l) = s.limits.lock() else {
                return -1;
            };
            if n < 0 && !forced_only {
                let method = match ctx.msg.msg().txn_method() {
                    Ok(m) => m.as_str().to_string(),
                    Err(_) => return -1,
                };
                return match l.pipe_of(&method) {
                    Some(p) => l.check(p),
                    None => -1,
                };
            }
            match usize::try_from(n).ok().filter(|n| *n < MAX) {
                Some(n) if l.pipes[n].algo != Algo::Nop => l.check(n),
                _ => -1,
            }
        }
    };
    def = def.cmd(
        "rl_check",
        1,
        RouteType::REQUEST | RouteType::LOCAL,
        Some(fixup::f(fixup::igp)),
        rl_pipe(false, state.clone()),
    );
    def = def.cmd(
        "rl_check_pipe",
        1,
        RouteType::ANY,
        Some(fixup::f(fixup::igp)),
        rl_pipe(true, state.clone()),
    );
    let st = state.clone();
    def = def.rpc(
        "rl.stats",
        "Each pipe's last count, limit and load.",
        move |_p| {
            let s = st.get().ok_or_else(|| rpc_err(500, "Internal error"))?;
            let l = s
                .limits
                .lock()
                .map_err(|_| rpc_err(500, "Internal error"))?;
            Ok(Json::Array(
                l.pipes
                    .iter()
                    .enumerate()
                    .map(|(i, p)| {
                        json!(format!(
                            "PIPE[{i}]: {}/{} (drop rate: {})",
                            p.last_counter, p.limit, p.load
                        ))
                    })
                    .collect(),
            ))
        },
    );
    let st = state.clone();
    def = def.rpc("rl.get_pipes", "The defined pipes.", move |_p| {
        let s = st.get().ok_or_else(|| rpc_err(500, "Internal error"))?;
        let l = s
            .limits
            .lock()
            .map_err(|_| rpc_err(500, "Internal error"))?;
        Ok(Json::Array(
            l.pipes
                .iter()
                .enumerate()
                .filter(|(_, p)| p.algo != Algo::Nop)
                .map(|(i, p)| {
                    let id = match p.algo {
                        Algo::Nop => 0,
                        Algo::Red => 1,
                        Algo::TailDrop => 2,
                        Algo::Feedback => 3,
                        Algo::Network => 4,
                    };
                    json!(format!(
                        "PIPE[{i}]: {id}:{} {}/{} (drop rate: {}) [{}]",
                        p.algo.name(),
                        p.last_counter,
                        p.limit,
                        p.load,
                        p.counter
                    ))
                })
                .collect(),
        ))
    });
    let st = state.clone();
    def = def.rpc(
        "rl.set_pipe",
        "Sets a pipe: number algorithm limit.",
        move |params| {
            let s = st.get().ok_or_else(|| rpc_err(500, "Internal error"))?;
            let num = |i: usize| rpc_int(params, i);
            let n = num(0)?;
            let algo = sr_sdk::rpc::param_str(params, 1, "algorithm")?;
            let limit = num(2)?;
            let a = Algo::parse(&algo).ok_or_else(|| rpc_err(400, "Unknown algorithm"))?;
            let n = usize::try_from(n)
                .ok()
                .filter(|n| *n < MAX)
                .ok_or_else(|| rpc_err(400, "Unknown pipe"))?;
            let mut l = s
                .limits
                .lock()
                .map_err(|_| rpc_err(500, "Internal error"))?;
            l.pipes[n].algo = a;
            l.pipes[n].limit = limit;
            let sp = l.setpoint().map_err(|e| rpc_err(400, &e))?;
            s.fb.set_setpoint(sp);
            Ok(Json::Null)
        },
    );
    let st = state.clone();
    def = def.rpc("rl.get_queues", "The queues.", move |_p| {
        let s = st.get().ok_or_else(|| rpc_err(500, "Internal error"))?;
        let l = s
            .limits
            .lock()
            .map_err(|_| rpc_err(500, "Internal error"))?;
        Ok(Json::Array(
            l.queues
                .iter()
                .enumerate()
                .map(|(i, (p, m))| json!(format!("QUEUE[{i}]: {p}:{m}")))
                .collect(),
        ))
    });
    let st = state.clone();
    def = def.rpc(
        "rl.set_queue",
        "Changes a queue: number method pipe.",
        move |params| {
            let s = st.get().ok_or_else(|| rpc_err(500, "Internal error"))?;
            let num = |i: usize| rpc_int(params, i);
            let q = num(0)?;
            let method = sr_sdk::rpc::param_str(params, 1, "method")?;
            let pipe = num(2)?;
            if !(0..MAX as i64).contains(&pipe) {
                return Err(rpc_err(400, "Invalid pipe number"));
            }
            let mut l = s
                .limits
                .lock()
                .map_err(|_| rpc_err(500, "Internal error"))?;
            let slot = usize::try_from(q)
                .ok()
                .and_then(|q| l.queues.get_mut(q))
                .ok_or_else(|| rpc_err(400, "MAX_QUEUES reached"))?;
            *slot = (pipe as usize, method);
            Ok(Json::Null)
        },
    );
    let st = state.clone();
    def = feedback::add_rpcs(
        def,
        "rl",
        fb,
        Arc::new(move |rate| {
            if let Some(mut l) = st.get().and_then(|s| s.limits.lock().ok()) {
                l.drop_rate = rate;
            }
        }),
    );
    let st = state.clone();
    def.rpc(
        "rl.set_dbg",
        "Logs the pipes' counters at each interval (1) or not (0).",
        move |params| {
            let s = st.get().ok_or_else(|| rpc_err(500, "Internal error"))?;
            let v = rpc_int(params, 0)?;
            s.dbg.store(v != 0, std::sync::atomic::Ordering::Relaxed);
            Ok(Json::Null)
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queues_send_methods_to_pipes_and_limits_are_per_second() {
        let mut l = Limits::new(2);
        l.pipes[0] = Pipe {
            algo: Algo::TailDrop,
            limit: 2,
            ..Pipe::default()
        };
        l.pipes[1] = Pipe {
            algo: Algo::Red,
            limit: 1,
            ..Pipe::default()
        };
        l.queues = vec![(1, "*".into()), (0, "invite".into()), (1, "*".into())];
        assert_eq!(l.pipe_of("INVITE"), Some(0));
        assert_eq!(l.pipe_of("BYE"), Some(1));
        // 2 per second over 2 seconds: 4 pass.
        let got: Vec<i32> = (0..5).map(|_| l.check(0)).collect();
        assert_eq!(got, [1, 1, 1, 1, -1]);
        for _ in 0..6 {
            l.check(1);
        }
        l.refresh(0);
        assert_eq!(l.pipes[1].load, 3);
        let got: Vec<i32> = (0..3).map(|_| l.check(1)).collect();
        assert_eq!(got, [-1, -1, 1]);
    }

    #[test]
    fn definitions_are_read_and_checked() {
        assert_eq!(
            parse_pipe("3:TAILDROP:10").unwrap(),
            (3, Algo::TailDrop, 10)
        );
        assert!(parse_pipe("32:TAILDROP:10").is_err());
        assert!(parse_pipe("1:taildrop:10").is_err());
        assert!(parse_pipe("1:RED").is_err());
        assert_eq!(parse_queue("2:INVITE").unwrap(), (2, "INVITE".to_string()));
        assert!(parse_queue("2:IN VITE").is_err());
        assert!(parse_queue("40:INVITE").is_err());
    }
}
