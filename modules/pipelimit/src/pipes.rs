//! The pipes and their algorithms, without I/O: counting at each
//! `pl_check`, deciding, and the interval's refresh (Kamailio's pipelimit
//! rules, limits per interval, dropped requests counted too).

use std::collections::HashMap;

/// How a pipe decides.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Algo {
    /// Never limits (`pl_check` gives 2).
    Nop,
    /// Drops above the limit in the interval.
    TailDrop,
    /// Lets one request in `load` through, `load` being last interval's
    /// count over the limit.
    Red,
    /// Drops while the bytes waiting on the sockets exceed the limit.
    Network,
    /// Drops a share set by the CPU load's PID controller.
    Feedback,
}

impl Algo {
    /// By Kamailio's name (case matters, as there).
    pub fn parse(s: &str) -> Option<Algo> {
        Some(match s {
            "NOP" => Algo::Nop,
            "TAILDROP" => Algo::TailDrop,
            "RED" => Algo::Red,
            "NETWORK" => Algo::Network,
            "FEEDBACK" => Algo::Feedback,
            _ => return None,
        })
    }

    /// Kamailio's name.
    pub fn name(self) -> &'static str {
        match self {
            Algo::Nop => "NOP",
            Algo::TailDrop => "TAILDROP",
            Algo::Red => "RED",
            Algo::Network => "NETWORK",
            Algo::Feedback => "FEEDBACK",
        }
    }
}

/// One pipe.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pipe {
    /// Algorithm.
    pub algo: Algo,
    /// Requests per interval (bytes for NETWORK, a percentage for
    /// FEEDBACK).
    pub limit: i64,
    /// Requests in this interval.
    pub counter: i64,
    /// Requests in the last interval.
    pub last_counter: i64,
    /// What the interval's refresh computed.
    pub load: i64,
    /// Intervals without a request.
    pub unused: i64,
}

impl Pipe {
    /// A new, empty pipe.
    pub fn new(algo: Algo, limit: i64) -> Pipe {
        Pipe {
            algo,
            limit,
            counter: 0,
            last_counter: 0,
            load: 0,
            unused: 0,
        }
    }
}

/// Kamailio's FEEDBACK spreads its drops over a fixed order of 100
/// slots; this one visits them by steps of 37 (any order with each slot
/// once gives the same share).
fn spread(counter: i64) -> i64 {
    (counter.rem_euclid(100) * 37) % 100
}

/// The pipes of a server.
#[derive(Debug, Default)]
pub struct Pipes {
    /// By name.
    pub map: HashMap<String, Pipe>,
    /// FEEDBACK's share to drop (0-100), from the PID controller.
    pub drop_rate: i64,
}

/// `pl_check`'s answers.
pub const ALLOWED: i32 = 1;
/// Over the limit.
pub const DROP: i32 = -1;
/// No such pipe.
pub const NO_PIPE: i32 = -2;
/// A NOP pipe.
pub const NOP: i32 = 2;

impl Pipes {
    /// `pl_check(name)`: counts the request, then decides.
    pub fn check(&mut self, name: &str) -> i32 {
        let drop_rate = self.drop_rate;
        let Some(p) = self.map.get_mut(name) else {
            return NO_PIPE;
        };
        p.counter = p.counter.saturating_add(1).max(0);
        match p.algo {
            Algo::Nop => NOP,
            Algo::TailDrop => {
                if p.counter <= p.limit {
                    ALLOWED
                } else {
                    DROP
                }
            }
            Algo::Red => {
                if p.load == 0 || p.counter % p.load == 0 {
                    ALLOWED
                } else {
                    DROP
                }
            }
            Algo::Network => (-p.load).clamp(-1, 1) as i32,
            Algo::Feedback => {
                if spread(p.counter) < drop_rate {
                    DROP
                } else {
                    ALLOWED
                }
            }
        }
    }

    /// `pl_check(name, algo, limit)`: creates the pipe when missing (the
    /// limit replaced when positive otherwise; the algorithm kept), then
    /// checks. `None` for an unknown algorithm of a new pipe.
    pub fn check_with(&mut self, name: &str, algo: &str, limit: i64) -> i32 {
        if limit < 0 {
            return DROP;
        }
        match self.map.get_mut(name) {
            Some(p) => {
                if limit > 0 {
                    p.limit = limit;
                }
            }
            None => match Algo::parse(algo) {
                Some(a) => {
                    self.map.insert(name.to_string(), Pipe::new(a, limit));
                }
                None => return NO_PIPE,
            },
        }
        self.check(name)
    }

    /// The interval's refresh: loads computed, counters moved to
    /// `last_counter`, unused pipes removed after `clean_unused`
    /// intervals. `net_bytes` is what waits on the server's sockets.
    pub fn refresh(&mut self, clean_unused: i64, net_bytes: i64) {
        self.map.retain(|_, p| {
            if clean_unused > 0 {
                if p.counter > 0 {
                    p.unused = 0;
                } else if p.unused >= clean_unused {
                    return false;
                } else {
                    p.unused += 1;
                }
            }
            if p.algo != Algo::Nop {
                if p.algo == Algo::Network {
                    p.load = if net_bytes > p.limit { 1 } else { -1 };
                } else if p.limit != 0 {
                    p.load = p.counter / p.limit;
                }
                p.last_counter = p.counter;
                p.counter = 0;
            }
            true
        });
    }
}

/// FEEDBACK's PID controller over the CPU load.
#[derive(Debug, Clone, PartialEq)]
pub struct Pid {
    /// Integral gain.
    pub ki: f64,
    /// Proportional gain.
    pub kp: f64,
    /// Derivative gain.
    pub kd: f64,
    /// The wanted load (0.01 × the FEEDBACK limit).
    pub setpoint: f64,
    int_err: f64,
    last_err: f64,
}

impl Default for Pid {
    fn default() -> Pid {
        Pid {
            ki: -25.0,
            kp: 0.0,
            kd: 0.0,
            setpoint: 0.0,
            int_err: 0.0,
            last_err: 0.0,
        }
    }
}

impl Pid {
    /// The share to drop for this load (0-1).
    pub fn update(&mut self, load: f64) -> i64 {
        let err = self.setpoint - load;
        if self.int_err < 0.0 || err < 0.0 {
            self.int_err += err;
        }
        let out = self.kp * err + self.ki * self.int_err + self.kd * (err - self.last_err);
        self.last_err = err;
        if out > 0.0 {
            out as i64
        } else {
            0
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn taildrop_counts_dropped_requests_too_and_the_interval_resets() {
        let mut p = Pipes::default();
        assert_eq!(p.check("x"), NO_PIPE);
        assert_eq!(p.check_with("x", "TAILDROP", 2), ALLOWED);
        assert_eq!(p.check("x"), ALLOWED);
        assert_eq!(p.check("x"), DROP);
        assert_eq!(p.map["x"].counter, 3);
        p.refresh(0, 0);
        assert_eq!(
            (p.map["x"].counter, p.map["x"].last_counter, p.map["x"].load),
            (0, 3, 1)
        );
        assert_eq!(p.check("x"), ALLOWED);
        // The algorithm stays; a positive limit replaces the old one.
        assert_eq!(p.check_with("x", "RED", 5), ALLOWED);
        assert_eq!(p.map["x"].algo, Algo::TailDrop);
        assert_eq!(p.check_with("y", "bogus", 1), NO_PIPE);
        assert_eq!(p.check_with("y", "TAILDROP", -1), DROP);
    }

    #[test]
    fn red_lets_one_in_load_through() {
        let mut p = Pipes::default();
        p.map.insert("r".into(), Pipe::new(Algo::Red, 2));
        for _ in 0..6 {
            p.check("r");
        }
        p.refresh(0, 0);
        assert_eq!(p.map["r"].load, 3);
        let got: Vec<i32> = (0..6).map(|_| p.check("r")).collect();
        assert_eq!(got, [DROP, DROP, ALLOWED, DROP, DROP, ALLOWED]);
    }

    #[test]
    fn network_and_nop_and_cleaning() {
        let mut p = Pipes::default();
        p.map.insert("n".into(), Pipe::new(Algo::Network, 100));
        p.map.insert("z".into(), Pipe::new(Algo::Nop, 0));
        assert_eq!(p.check("n"), 0);
        p.refresh(2, 500);
        assert_eq!(p.check("n"), DROP);
        p.refresh(2, 0);
        assert_eq!(p.check("n"), ALLOWED);
        assert_eq!(p.check("z"), NOP);
        p.refresh(1, 0);
        p.refresh(1, 0);
        p.refresh(1, 0);
        // The unused pipe goes; a NOP pipe's counter is never reset, so it
        // is never unused.
        assert!(!p.map.contains_key("n"));
        assert!(p.map.contains_key("z"));
    }

    #[test]
    fn feedback_drops_the_controller_share() {
        let mut p = Pipes::default();
        p.map.insert("f".into(), Pipe::new(Algo::Feedback, 50));
        p.drop_rate = 30;
        let drops = (0..100).filter(|_| p.check("f") == DROP).count();
        assert_eq!(drops, 30);
        let mut pid = Pid {
            setpoint: 0.5,
            ..Pid::default()
        };
        assert_eq!(pid.update(0.2), 0);
        assert!(pid.update(0.9) > 0);
    }
}
