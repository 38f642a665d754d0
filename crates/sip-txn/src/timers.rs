//! Timer values (RFC 3261 Table 4, RFC 6026) and the proxy's Timer C.
//!
//! | Timer | RFC default            | Meaning                                         | Kamailio `tm` param |
//! |-------|------------------------|-------------------------------------------------|---------------------|
//! | T1    | 500 ms                 | RTT estimate                                    | `retr_timer1`       |
//! | T2    | 4 s                    | max retransmit interval (non-INVITE, responses) | `retr_timer2`       |
//! | T4    | 5 s                    | max time a message stays in the network         | —                   |
//! | A     | T1, doubling           | INVITE request retransmit (unreliable only)     | `retr_timer1`       |
//! | B     | 64*T1                  | INVITE transaction timeout (Calling)            | `fr_timer`          |
//! | C     | > 3 min                | proxy INVITE timeout ([`ProxyInviteTimer`])     | `fr_inv_timer`      |
//! | D     | 32 s unrel. / 0 rel.   | wait for response retransmits (INVITE client)   | `wt_timer`          |
//! | E     | T1, doubling to T2     | non-INVITE request retransmit (unreliable only) | `retr_timer1/2`     |
//! | F     | 64*T1                  | non-INVITE transaction timeout                  | `fr_timer`          |
//! | G     | T1, doubling to T2     | INVITE final response retransmit (unrel. only)  | `retr_timer1/2`     |
//! | H     | 64*T1                  | wait for ACK                                    | `fr_timer`          |
//! | I     | T4 unrel. / 0 rel.     | wait for ACK retransmits                        | `wt_timer`          |
//! | J     | 64*T1 unrel. / 0 rel.  | wait for non-INVITE request retransmits         | `wt_timer`          |
//! | K     | T4 unrel. / 0 rel.     | wait for non-INVITE response retransmits        | `wt_timer`          |
//! | L     | 64*T1                  | RFC 6026: INVITE server Accepted lifetime       | — (stays 64*T1)     |
//! | M     | 64*T1                  | RFC 6026: INVITE client Accepted lifetime       | — (stays 64*T1)     |
//!
//! [`TimerConfig`] stores the *unreliable-transport* value of every timer; the
//! machines substitute zero for D, I, J and K and never arm A, E or G when
//! the transaction was created with `reliable = true`.

use std::time::Duration;

use crate::time::Instant;

/// All transaction timer durations. `Copy`, so each machine keeps its own.
///
/// Build it with [`TimerConfig::default`] (RFC 3261 values),
/// [`TimerConfig::from_base`] (derive everything from T1/T2/T4 as the RFC
/// does) or [`TimerConfig::from_kamailio`] (Kamailio `tm` module parameters),
/// then adjust individual public fields if needed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimerConfig {
    /// T1: RTT estimate and initial retransmit interval of A, E and G.
    pub t1: Duration,
    /// T2: cap for the doubling of Timers E and G (Timer A is not capped).
    pub t2: Duration,
    /// T4: maximum lifetime of a message in the network.
    pub t4: Duration,
    /// Timer B: INVITE client transaction timeout while in Calling.
    pub timer_b: Duration,
    /// Timer C: proxy INVITE transaction timeout; used only by
    /// [`ProxyInviteTimer`], not by the transaction machines.
    pub timer_c: Duration,
    /// Timer D: INVITE client Completed lifetime (unreliable; 0 if reliable).
    pub timer_d: Duration,
    /// Timer F: non-INVITE client transaction timeout.
    pub timer_f: Duration,
    /// Timer H: INVITE server wait for ACK after a non-2xx final response.
    pub timer_h: Duration,
    /// Timer I: INVITE server Confirmed lifetime (unreliable; 0 if reliable).
    pub timer_i: Duration,
    /// Timer J: non-INVITE server Completed lifetime (unreliable; 0 if
    /// reliable).
    pub timer_j: Duration,
    /// Timer K: non-INVITE client Completed lifetime (unreliable; 0 if
    /// reliable).
    pub timer_k: Duration,
    /// Timer L (RFC 6026): INVITE server Accepted lifetime.
    pub timer_l: Duration,
    /// Timer M (RFC 6026): INVITE client Accepted lifetime.
    pub timer_m: Duration,
}

impl TimerConfig {
    /// The RFC 3261 defaults: T1 = 500 ms, T2 = 4 s, T4 = 5 s, D = 32 s,
    /// C = 180 s, everything else derived as in Table 4 / RFC 6026.
    pub const fn rfc3261() -> Self {
        Self::from_base(
            Duration::from_millis(500),
            Duration::from_secs(4),
            Duration::from_secs(5),
        )
    }

    /// Derives every timer from T1, T2 and T4 per RFC 3261 Table 4:
    /// B = F = H = J = L = M = 64*T1, I = K = T4, D = 32 s, C = 180 s.
    pub const fn from_base(t1: Duration, t2: Duration, t4: Duration) -> Self {
        let t64 = mul64(t1);
        TimerConfig {
            t1,
            t2,
            t4,
            timer_b: t64,
            timer_c: Duration::from_secs(180),
            timer_d: Duration::from_secs(32),
            timer_f: t64,
            timer_h: t64,
            timer_i: t4,
            timer_j: t64,
            timer_k: t4,
            timer_l: t64,
            timer_m: t64,
        }
    }

    /// Maps Kamailio `tm` module parameters onto the RFC timers:
    ///
    /// * `retr_timer1` → T1 (initial A/E/G interval), `retr_timer2` → T2;
    /// * `fr_timer` → Timers B and F (no final response) and H (negative
    ///   reply retransmitted without ACK);
    /// * `fr_inv_timer` → Timer C ([`ProxyInviteTimer`]: final response
    ///   after a provisional; restarted on each provisional like Kamailio's
    ///   default `restart_fr_on_each_reply=1`);
    /// * `wt_timer` → Timers D, I, J and K (the wait state after a final
    ///   response).
    ///
    /// T4 stays 5 s and L/M stay 64*T1, which Kamailio has no knob for.
    pub const fn from_kamailio(tm: &KamailioTm) -> Self {
        let mut c = Self::from_base(tm.retr_timer1, tm.retr_timer2, Duration::from_secs(5));
        c.timer_b = tm.fr_timer;
        c.timer_f = tm.fr_timer;
        c.timer_h = tm.fr_timer;
        c.timer_c = tm.fr_inv_timer;
        c.timer_d = tm.wt_timer;
        c.timer_i = tm.wt_timer;
        c.timer_j = tm.wt_timer;
        c.timer_k = tm.wt_timer;
        c
    }

    /// Timer D for the given transport reliability.
    pub const fn d(&self, reliable: bool) -> Duration {
        if reliable {
            Duration::ZERO
        } else {
            self.timer_d
        }
    }

    /// Timer I for the given transport reliability.
    pub const fn i(&self, reliable: bool) -> Duration {
        if reliable {
            Duration::ZERO
        } else {
            self.timer_i
        }
    }

    /// Timer J for the given transport reliability.
    pub const fn j(&self, reliable: bool) -> Duration {
        if reliable {
            Duration::ZERO
        } else {
            self.timer_j
        }
    }

    /// Timer K for the given transport reliability.
    pub const fn k(&self, reliable: bool) -> Duration {
        if reliable {
            Duration::ZERO
        } else {
            self.timer_k
        }
    }
}

const fn mul64(d: Duration) -> Duration {
    match d.checked_mul(64) {
        Some(v) => v,
        None => Duration::MAX,
    }
}

impl Default for TimerConfig {
    fn default() -> Self {
        Self::rfc3261()
    }
}

/// The Kamailio `tm` module timer parameters, with Kamailio's defaults.
///
/// Convert with [`TimerConfig::from_kamailio`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KamailioTm {
    /// `fr_timer`: final response timeout when nothing (or only for a
    /// non-INVITE) was received; default 30 s.
    pub fr_timer: Duration,
    /// `fr_inv_timer`: INVITE final response timeout after a provisional;
    /// default 120 s.
    pub fr_inv_timer: Duration,
    /// `retr_timer1`: first retransmission interval (T1); default 500 ms.
    pub retr_timer1: Duration,
    /// `retr_timer2`: maximum retransmission interval (T2); default 4 s.
    pub retr_timer2: Duration,
    /// `wt_timer`: time a transaction lingers after its final response;
    /// default 5 s.
    pub wt_timer: Duration,
}

impl Default for KamailioTm {
    fn default() -> Self {
        KamailioTm {
            fr_timer: Duration::from_secs(30),
            fr_inv_timer: Duration::from_secs(120),
            retr_timer1: Duration::from_millis(500),
            retr_timer2: Duration::from_secs(4),
            wt_timer: Duration::from_secs(5),
        }
    }
}

/// Timer C (RFC 3261 §16.6 step 11, §16.7 step 2): a stateful proxy's
/// per-branch INVITE timeout, kept outside the INVITE client transaction
/// because the transaction itself has no timeout once in Proceeding.
///
/// The proxy starts it when it forwards an INVITE, calls
/// [`on_provisional`](Self::on_provisional) on every 101–199 response
/// (restarting it), [`on_final`](Self::on_final) when a final response
/// arrives, and when [`handle_timeout`](Self::handle_timeout) returns `true`
/// it must CANCEL the branch if a provisional was seen, or otherwise treat
/// the branch as having received 408 (Request Timeout).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProxyInviteTimer {
    duration: Duration,
    deadline: Option<Instant>,
    provisional_seen: bool,
}

impl ProxyInviteTimer {
    /// Starts Timer C at `now` with `config.timer_c`.
    pub fn start(config: &TimerConfig, now: Instant) -> Self {
        ProxyInviteTimer {
            duration: config.timer_c,
            deadline: Some(now + config.timer_c),
            provisional_seen: false,
        }
    }

    /// A provisional response arrived: restart the timer (if still armed).
    pub fn on_provisional(&mut self, now: Instant) {
        if self.deadline.is_some() {
            self.deadline = Some(now + self.duration);
            self.provisional_seen = true;
        }
    }

    /// A final response arrived: disarm the timer.
    pub fn on_final(&mut self) {
        self.deadline = None;
    }

    /// Whether a provisional response was seen (decides CANCEL vs. 408).
    pub fn provisional_seen(&self) -> bool {
        self.provisional_seen
    }

    /// The deadline, if armed.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.deadline
    }

    /// Returns `true` exactly once, when `now` reaches the deadline; the
    /// timer is then disarmed.
    pub fn handle_timeout(&mut self, now: Instant) -> bool {
        match self.deadline {
            Some(d) if now >= d => {
                self.deadline = None;
                true
            }
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc_defaults() {
        let c = TimerConfig::default();
        assert_eq!(c.t1, Duration::from_millis(500));
        assert_eq!(c.timer_b, Duration::from_secs(32));
        assert_eq!(c.timer_f, Duration::from_secs(32));
        assert_eq!(c.timer_h, Duration::from_secs(32));
        assert_eq!(c.timer_j, Duration::from_secs(32));
        assert_eq!(c.timer_d, Duration::from_secs(32));
        assert_eq!(c.timer_i, Duration::from_secs(5));
        assert_eq!(c.timer_k, Duration::from_secs(5));
        assert!(c.timer_c > Duration::from_secs(180 - 1));
        assert_eq!(c.d(true), Duration::ZERO);
        assert_eq!(c.i(true), Duration::ZERO);
        assert_eq!(c.j(true), Duration::ZERO);
        assert_eq!(c.k(true), Duration::ZERO);
    }

    #[test]
    fn kamailio_mapping() {
        let c = TimerConfig::from_kamailio(&KamailioTm::default());
        assert_eq!(c.timer_b, Duration::from_secs(30));
        assert_eq!(c.timer_f, Duration::from_secs(30));
        assert_eq!(c.timer_c, Duration::from_secs(120));
        assert_eq!(c.timer_d, Duration::from_secs(5));
        assert_eq!(c.timer_j, Duration::from_secs(5));
        assert_eq!(c.t1, Duration::from_millis(500));
        assert_eq!(c.t2, Duration::from_secs(4));
    }

    #[test]
    fn timer_c_restarts_and_fires_once() {
        let cfg = TimerConfig::default();
        let mut c = ProxyInviteTimer::start(&cfg, Instant::ZERO);
        assert_eq!(c.poll_timeout(), Some(Instant::from_millis(180_000)));
        c.on_provisional(Instant::from_millis(10_000));
        assert!(c.provisional_seen());
        assert!(!c.handle_timeout(Instant::from_millis(180_000)));
        assert!(c.handle_timeout(Instant::from_millis(190_000)));
        assert!(!c.handle_timeout(Instant::from_millis(190_001)));
        c.on_provisional(Instant::from_millis(200_000));
        assert_eq!(c.poll_timeout(), None);
        c.on_final();
    }
}
