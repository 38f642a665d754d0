//! # sipbench
//!
//! A SIP load generator for siprouter's benchmarks. It plays the UAC and,
//! for calls, the UAS, over UDP or TCP on 127.0.0.1:
//!
//! - `call`: INVITE, (100), 180, 200, ACK, optional pause, BYE, 200. The
//!   UAC follows the Record-Route set of the 200 for ACK and BYE; the UAS
//!   has its own socket.
//! - `register`: one REGISTER per distinct user, optionally answering a
//!   digest challenge.
//! - `options`: OPTIONS, expecting a final reply.
//!
//! It holds a target rate and a cap on calls in progress, retransmits per
//! RFC 3261 (UDP), counts every failure and retransmission, and reports
//! the achieved rate, latency percentiles and its own CPU time. Two
//! threads at most (UAC, UAS); messages come from pre-compiled templates.

pub mod config;
pub mod cpu;
pub mod digest;
pub mod keymap;
pub mod messages;
pub mod net;
pub mod pacing;
pub mod stats;
pub mod template;
pub mod timers;
pub mod uac;
pub mod uas;

pub use config::{Config, Scenario};
pub use stats::Report;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

/// A tag unique to this run, in every Call-ID and branch, so replies to
/// an earlier run are not taken for ours.
pub fn run_tag() -> String {
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as u64);
    format!("{:x}{:x}", std::process::id(), t & 0xff_ffff_ffff)
}

/// Runs one benchmark as configured and reports.
pub fn run(cfg: &Config) -> Result<Report, String> {
    let cpu0 = cpu::self_cpu();
    let t0 = Instant::now();
    let stop = Arc::new(AtomicBool::new(false));
    let uas = if cfg.scenario == Scenario::Call {
        let mut uas = uas::Uas::bind(cfg.uas, cfg.proto)?;
        let stop = stop.clone();
        Some(
            std::thread::Builder::new()
                .name("sipbench-uas".into())
                .spawn(move || {
                    uas.run(&stop);
                    uas.stats
                })
                .map_err(|e| e.to_string())?,
        )
    } else {
        None
    };
    let result = uac::Uac::new(cfg, &run_tag()).map(|mut uac| {
        let period = uac.run();
        (period, uac.stats)
    });
    stop.store(true, Ordering::Relaxed);
    let uas_stats = match uas {
        Some(h) => Some(
            h.join()
                .map_err(|_| "the UAS thread panicked".to_string())?,
        ),
        None => None,
    };
    let (send_period, uac) = result?;
    let cpu = match (cpu0, cpu::self_cpu()) {
        (Some(a), Some(b)) => b.saturating_sub(a),
        _ => std::time::Duration::ZERO,
    };
    Ok(Report {
        scenario: cfg.scenario.name().into(),
        transport: format!("{:?}", cfg.proto).to_lowercase(),
        target_rate: cfg.rate,
        limit: cfg.limit,
        send_period,
        wall: t0.elapsed(),
        uac,
        uas: uas_stats,
        cpu,
    })
}
