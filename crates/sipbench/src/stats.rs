//! Counters, latency histograms and the final report (text and JSON).

use hdrhistogram::Histogram;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::Duration;

/// A latency histogram in microseconds, 1 µs to 60 s, 3 significant
/// digits.
#[derive(Debug, Clone)]
pub struct Latency(Histogram<u64>);

impl Default for Latency {
    fn default() -> Self {
        Latency(Histogram::new_with_bounds(1, 60_000_000, 3).expect("valid histogram bounds"))
    }
}

impl Latency {
    /// Records one sample.
    pub fn record(&mut self, d: Duration) {
        let us = (d.as_micros() as u64).clamp(1, 60_000_000);
        let _ = self.0.record(us);
    }

    /// Number of samples.
    pub fn count(&self) -> u64 {
        self.0.len()
    }

    /// The value (µs) at a percentile (0..=100).
    pub fn percentile_us(&self, p: f64) -> u64 {
        if self.0.is_empty() {
            0
        } else {
            self.0.value_at_quantile(p / 100.0)
        }
    }

    /// The largest sample (µs).
    pub fn max_us(&self) -> u64 {
        if self.0.is_empty() {
            0
        } else {
            self.0.max()
        }
    }

    fn json(&self) -> Value {
        json!({
            "count": self.count(),
            "p50_us": self.percentile_us(50.0),
            "p90_us": self.percentile_us(90.0),
            "p99_us": self.percentile_us(99.0),
            "max_us": self.max_us(),
        })
    }

    fn line(&self) -> String {
        format!(
            "p50 {} p90 {} p99 {} max {} ({} samples)",
            fmt_us(self.percentile_us(50.0)),
            fmt_us(self.percentile_us(90.0)),
            fmt_us(self.percentile_us(99.0)),
            fmt_us(self.max_us()),
            self.count()
        )
    }
}

fn fmt_us(us: u64) -> String {
    if us >= 10_000 {
        format!("{:.1} ms", us as f64 / 1000.0)
    } else {
        format!("{us} µs")
    }
}

/// What the client side (UAC) counted.
#[derive(Debug, Default, Clone)]
pub struct UacStats {
    /// Calls (or registrations, or OPTIONS) started.
    pub started: u64,
    /// Those that completed as expected.
    pub completed: u64,
    /// Failed: no final reply within the transaction timeout.
    pub timeouts: u64,
    /// Failed: a final reply with a code that was not expected.
    pub bad_codes: u64,
    /// Failed: still running when the run ended (after the drain time).
    pub unfinished: u64,
    /// The unexpected final codes, by code.
    pub codes: BTreeMap<u16, u64>,
    /// Requests sent again on a retransmission timer.
    pub retrans_sent: u64,
    /// Final replies received again (retransmitted by the far end).
    pub dup_replies: u64,
    /// Provisional replies that arrived after the final one (reordering).
    pub late_provisional: u64,
    /// Replies for no known call (late, or not ours).
    pub stray: u64,
    /// Datagrams that did not parse as a SIP reply with the headers used.
    pub unparsable: u64,
    /// Digest challenges answered.
    pub challenges: u64,
    /// Sends that failed (socket buffer full and the like).
    pub send_errors: u64,
    /// Messages sent (all kinds, first transmissions and retransmissions).
    pub sent: u64,
    /// Messages received.
    pub received: u64,
    /// Latency of the scenario's key step: INVITE to 200 (call setup),
    /// first REGISTER to 200 (registration, across a challenge), OPTIONS
    /// to its final reply.
    pub latency: Latency,
}

impl UacStats {
    /// Failed calls: timeouts, unexpected codes, unfinished.
    pub fn failed(&self) -> u64 {
        self.timeouts + self.bad_codes + self.unfinished
    }
}

/// What the server side (UAS) counted.
#[derive(Debug, Default, Clone)]
pub struct UasStats {
    /// Requests received.
    pub requests: u64,
    /// INVITEs received again for a call already answered.
    pub dup_invites: u64,
    /// 2xx retransmitted because no ACK came in time.
    pub retrans_sent: u64,
    /// Calls whose 2xx was never acknowledged.
    pub no_ack: u64,
    /// BYEs for no call we know (retransmitted BYEs, or calls not ours).
    pub bye_unknown: u64,
    /// ACKs for no call waiting for one (ACKs of retransmitted 2xx).
    pub ack_unknown: u64,
    /// Datagrams that did not parse as a SIP request.
    pub unparsable: u64,
    /// Sends that failed.
    pub send_errors: u64,
    /// Messages sent.
    pub sent: u64,
}

/// The result of one run.
#[derive(Debug, Clone)]
pub struct Report {
    /// `call`, `register` or `options`.
    pub scenario: String,
    /// `udp` or `tcp`.
    pub transport: String,
    /// Target rate per second.
    pub target_rate: f64,
    /// Cap on concurrent calls.
    pub limit: usize,
    /// How long new calls were started.
    pub send_period: Duration,
    /// Whole run, drain included.
    pub wall: Duration,
    /// Client side.
    pub uac: UacStats,
    /// Server side (call scenario).
    pub uas: Option<UasStats>,
    /// CPU time (user + system) of this process during the run.
    pub cpu: Duration,
}

impl Report {
    /// Completed calls per second of the sending period.
    pub fn achieved_rate(&self) -> f64 {
        let s = self.send_period.as_secs_f64();
        if s > 0.0 {
            self.uac.completed as f64 / s
        } else {
            0.0
        }
    }

    /// Failed calls, in percent of started ones.
    pub fn failed_pct(&self) -> f64 {
        if self.uac.started == 0 {
            0.0
        } else {
            100.0 * self.uac.failed() as f64 / self.uac.started as f64
        }
    }

    /// Retransmissions seen in either direction (sent by us, or replies
    /// and requests that arrived more than once).
    pub fn retransmissions(&self) -> u64 {
        let u = &self.uac;
        let s = self
            .uas
            .as_ref()
            .map_or(0, |s| s.retrans_sent + s.dup_invites);
        u.retrans_sent + u.dup_replies + s
    }

    /// This tool's CPU per completed call, in µs.
    pub fn cpu_us_per_call(&self) -> f64 {
        if self.uac.completed == 0 {
            0.0
        } else {
            self.cpu.as_secs_f64() * 1e6 / self.uac.completed as f64
        }
    }

    /// The report as JSON.
    pub fn json(&self) -> Value {
        let u = &self.uac;
        let mut v = json!({
            "scenario": self.scenario,
            "transport": self.transport,
            "target_rate": self.target_rate,
            "limit": self.limit,
            "send_period_s": self.send_period.as_secs_f64(),
            "wall_s": self.wall.as_secs_f64(),
            "achieved_rate": self.achieved_rate(),
            "started": u.started,
            "completed": u.completed,
            "failed": u.failed(),
            "failed_pct": self.failed_pct(),
            "timeouts": u.timeouts,
            "bad_codes": u.bad_codes,
            "unexpected_codes": u.codes.iter().map(|(k, v)| (k.to_string(), json!(v))).collect::<serde_json::Map<_, _>>(),
            "unfinished": u.unfinished,
            "retransmissions": self.retransmissions(),
            "retrans_sent": u.retrans_sent,
            "dup_replies": u.dup_replies,
            "late_provisional": u.late_provisional,
            "stray": u.stray,
            "unparsable": u.unparsable,
            "challenges": u.challenges,
            "send_errors": u.send_errors,
            "sent": u.sent,
            "received": u.received,
            "latency": u.latency.json(),
            "cpu_s": self.cpu.as_secs_f64(),
            "cpu_us_per_call": self.cpu_us_per_call(),
        });
        if let Some(s) = &self.uas {
            v["uas"] = json!({
                "requests": s.requests,
                "dup_invites": s.dup_invites,
                "retrans_sent": s.retrans_sent,
                "no_ack": s.no_ack,
                "bye_unknown": s.bye_unknown,
                "ack_unknown": s.ack_unknown,
                "unparsable": s.unparsable,
                "send_errors": s.send_errors,
                "sent": s.sent,
            });
        }
        v
    }

    /// The report as text.
    pub fn text(&self) -> String {
        let u = &self.uac;
        let mut s = String::new();
        let what = match self.scenario.as_str() {
            "call" => "call setup (INVITE->200)",
            "register" => "REGISTER->200",
            _ => "request->final reply",
        };
        let _ = writeln!(
            s,
            "sipbench {} over {}: target {:.0}/s, cap {} concurrent, {:.1} s sending, {:.1} s total",
            self.scenario,
            self.transport,
            self.target_rate,
            self.limit,
            self.send_period.as_secs_f64(),
            self.wall.as_secs_f64()
        );
        let _ = writeln!(
            s,
            "  started {}  completed {}  achieved {:.1}/s",
            u.started,
            u.completed,
            self.achieved_rate()
        );
        let _ = writeln!(
            s,
            "  failed {} ({:.3} %): timeouts {}, unexpected codes {} {:?}, unfinished {}",
            u.failed(),
            self.failed_pct(),
            u.timeouts,
            u.bad_codes,
            u.codes,
            u.unfinished
        );
        let _ = writeln!(
            s,
            "  retransmissions {}: sent {}, replies seen twice {}; late provisionals {}, stray {}, unparsable {}, send errors {}",
            self.retransmissions(),
            u.retrans_sent,
            u.dup_replies,
            u.late_provisional,
            u.stray,
            u.unparsable,
            u.send_errors
        );
        if let Some(x) = &self.uas {
            let _ = writeln!(
                s,
                "  UAS: {} requests, INVITEs seen twice {}, 2xx resent {}, never ACKed {}, unknown BYE {} / ACK {}, unparsable {}, send errors {}",
                x.requests, x.dup_invites, x.retrans_sent, x.no_ack, x.bye_unknown, x.ack_unknown, x.unparsable, x.send_errors
            );
        }
        if u.challenges > 0 {
            let _ = writeln!(s, "  digest challenges answered {}", u.challenges);
        }
        let _ = writeln!(s, "  latency {what}: {}", u.latency.line());
        let _ = writeln!(
            s,
            "  sipbench CPU {:.2} s ({:.1} µs per completed call, {:.0} % of one core)",
            self.cpu.as_secs_f64(),
            self.cpu_us_per_call(),
            100.0 * self.cpu.as_secs_f64() / self.wall.as_secs_f64().max(1e-9)
        );
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn latency_percentiles() {
        let mut l = Latency::default();
        for i in 1..=100u64 {
            l.record(Duration::from_micros(i * 10));
        }
        assert_eq!(l.count(), 100);
        assert_eq!(l.percentile_us(50.0), 500);
        assert_eq!(l.percentile_us(99.0), 990);
        assert_eq!(l.max_us(), 1000);
        assert_eq!(Latency::default().percentile_us(99.0), 0);
    }
}
