//! Which UDP worker the kernel gives datagrams to: all to one at low load,
//! spread over every worker when one is not enough.
//!
//! Each worker has its own `SO_REUSEPORT` socket on an address, and the
//! kernel picks the socket of each datagram by a hash of its addresses, so
//! every flow sticks to one worker. At low load that spreads a few
//! datagrams over every worker, and each of them then wakes up for the few
//! it gets: on a virtual machine a wake-up from idle costs about as much
//! CPU as handling a small request. Steered, one worker takes everything
//! and wakes once per batch of all of it (see [`crate::udp_pace`]); the
//! others sleep.
//!
//! The steering is a one-instruction classic BPF program attached to the
//! address's socket group (`SO_ATTACH_REUSEPORT_CBPF`, Linux 4.5, no
//! privilege needed): "socket 0" when steered, an index out of range when
//! spread, which makes the kernel fall back to its hash. The first socket
//! opened on an address is the group's socket 0, so its worker is the one
//! steered to. Datagrams already queued on a socket stay there for its
//! worker whatever the mode, so switching loses nothing.
//!
//! The timer thread decides every [`CHECK_EVERY`] from the time the
//! workers spent handling batches ([`Decide`], without I/O so it can be
//! tested with virtual time): it spreads as soon as the steered worker is
//! busy half of the time or stuck in one batch for [`STUCK`] (a slow
//! database query, a DNS timeout: the other workers then take new
//! datagrams), and steers again once all workers together have been busy
//! under a fifth of the time for [`CALM`] (and the first is not stuck). The core setting
//! `udp_steer_low_load` (default yes) turns it on.

use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// How often the timer thread looks at the load.
pub const CHECK_EVERY: Duration = Duration::from_millis(50);
/// A steered worker busy this long in one batch has the traffic spread.
pub const STUCK: Duration = Duration::from_millis(20);
/// How long the load must stay low before the traffic is steered again.
pub const CALM: Duration = Duration::from_secs(1);
/// Busy share of the steered worker above which the traffic is spread.
pub const SPREAD_ABOVE: f64 = 0.5;
/// Busy share of all workers together below which it is steered again.
pub const STEER_BELOW: f64 = 0.2;

/// How the kernel picks a worker for a datagram.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Every datagram to the address's first socket.
    Steered,
    /// By the hash of the datagram's addresses (the kernel's default).
    Spread,
}

/// The steering decision of one address, from the workers' busy time.
#[derive(Debug, Clone)]
pub struct Decide {
    mode: Mode,
    last: Instant,
    /// Busy time counted at the last check (the counters only grow).
    last_busy: Duration,
    last_busy_first: Duration,
    /// Since when all workers together have been under [`STEER_BELOW`].
    calm_since: Option<Instant>,
}

impl Decide {
    /// A decision that starts in `mode` at `now`.
    pub fn new(mode: Mode, now: Instant) -> Decide {
        Decide {
            mode,
            last: now,
            last_busy: Duration::ZERO,
            last_busy_first: Duration::ZERO,
            calm_since: None,
        }
    }

    /// The mode now.
    pub fn mode(&self) -> Mode {
        self.mode
    }

    /// Looks at the load at `now` and returns the mode to switch to, if it
    /// changes. `busy`: the time all the address's workers have spent
    /// handling batches since start; `busy_first`: that of the first
    /// worker alone; `stuck_for`: how long the first worker has been in
    /// its current batch (zero when it waits for datagrams).
    pub fn check(
        &mut self,
        now: Instant,
        busy: Duration,
        busy_first: Duration,
        stuck_for: Duration,
    ) -> Option<Mode> {
        let elapsed = now.saturating_duration_since(self.last);
        let share = |b: Duration, before: Duration| {
            let e = elapsed.as_secs_f64();
            if e > 0.0 {
                b.saturating_sub(before).as_secs_f64() / e
            } else {
                0.0
            }
        };
        let all = share(busy, self.last_busy);
        let first = share(busy_first, self.last_busy_first);
        self.last = now;
        self.last_busy = busy;
        self.last_busy_first = busy_first;
        let next = match self.mode {
            Mode::Steered if first > SPREAD_ABOVE || stuck_for >= STUCK => Mode::Spread,
            Mode::Steered => return None,
            // Not back to a worker stuck in a batch, however calm the rest.
            Mode::Spread if stuck_for >= STUCK => {
                self.calm_since = None;
                return None;
            }
            Mode::Spread if all < STEER_BELOW => {
                let since = *self.calm_since.get_or_insert(now);
                if now.saturating_duration_since(since) < CALM {
                    return None;
                }
                Mode::Steered
            }
            Mode::Spread => {
                self.calm_since = None;
                return None;
            }
        };
        self.calm_since = None;
        self.mode = next;
        Some(next)
    }
}

/// What the workers of one address share with the timer thread.
#[derive(Debug)]
pub struct Load {
    start: Instant,
    /// Nanoseconds all workers spent handling batches.
    busy_ns: AtomicU64,
    /// Nanoseconds the first worker spent handling batches.
    busy_first_ns: AtomicU64,
    /// When the first worker's current batch started, in nanoseconds after
    /// `start` plus one (0: it waits for datagrams).
    first_since: AtomicU64,
    /// Whether steering works on this address (the attach succeeded).
    pub enabled: AtomicBool,
}

impl Load {
    /// Counters starting now.
    pub fn new() -> Load {
        Load {
            start: Instant::now(),
            busy_ns: AtomicU64::new(0),
            busy_first_ns: AtomicU64::new(0),
            first_since: AtomicU64::new(0),
            enabled: AtomicBool::new(false),
        }
    }

    fn ns(&self, t: Instant) -> u64 {
        u64::try_from(t.saturating_duration_since(self.start).as_nanos()).unwrap_or(u64::MAX)
    }

    /// A worker starts handling a batch at `t` (`first`: it is the worker
    /// of the address's first socket).
    pub fn batch_started(&self, first: bool, t: Instant) {
        if first {
            self.first_since.store(self.ns(t) + 1, Ordering::Relaxed);
        }
    }

    /// A worker handled a batch from `from` to `to`.
    pub fn batch_done(&self, first: bool, from: Instant, to: Instant) {
        let d = u64::try_from(to.saturating_duration_since(from).as_nanos()).unwrap_or(u64::MAX);
        self.busy_ns.fetch_add(d, Ordering::Relaxed);
        if first {
            self.busy_first_ns.fetch_add(d, Ordering::Relaxed);
            self.first_since.store(0, Ordering::Relaxed);
        }
    }

    /// (all workers' busy time, the first worker's, how long the first
    /// worker has been in its current batch) at `now`.
    pub fn read(&self, now: Instant) -> (Duration, Duration, Duration) {
        let since = self.first_since.load(Ordering::Relaxed);
        let stuck = if since == 0 {
            Duration::ZERO
        } else {
            Duration::from_nanos(self.ns(now).saturating_sub(since - 1))
        };
        (
            Duration::from_nanos(self.busy_ns.load(Ordering::Relaxed)),
            Duration::from_nanos(self.busy_first_ns.load(Ordering::Relaxed)),
            stuck,
        )
    }
}

impl Default for Load {
    fn default() -> Self {
        Load::new()
    }
}

/// `SO_ATTACH_REUSEPORT_CBPF` (`asm-generic/socket.h`; the libc crate
/// exports it only for Android).
#[cfg(all(target_os = "linux", not(target_arch = "sparc64")))]
const SO_ATTACH_REUSEPORT_CBPF: libc::c_int = 51;

/// Attaches the program for `mode` to the socket group of `sock` (any of
/// its sockets). Fails where the kernel does not support it.
#[cfg(all(target_os = "linux", not(target_arch = "sparc64")))]
pub fn attach(sock: &std::net::UdpSocket, mode: Mode) -> std::io::Result<()> {
    // BPF_RET | BPF_K: return the constant. Socket 0 when steered; an
    // index no group reaches when spread, so the kernel uses its hash.
    let k = match mode {
        Mode::Steered => 0,
        Mode::Spread => u32::MAX,
    };
    let mut prog = [libc::sock_filter {
        code: 0x06,
        jt: 0,
        jf: 0,
        k,
    }];
    let fprog = libc::sock_fprog {
        len: 1,
        filter: prog.as_mut_ptr(),
    };
    // SAFETY: `fprog` points at `prog`, both live for the call; the kernel
    // copies the program.
    let rc = unsafe {
        libc::setsockopt(
            sock.as_raw_fd(),
            libc::SOL_SOCKET,
            SO_ATTACH_REUSEPORT_CBPF,
            (&fprog as *const libc::sock_fprog).cast(),
            std::mem::size_of::<libc::sock_fprog>() as libc::socklen_t,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

/// Steering is not built for this platform.
#[cfg(not(all(target_os = "linux", not(target_arch = "sparc64"))))]
pub fn attach(_sock: &std::net::UdpSocket, _mode: Mode) -> std::io::Result<()> {
    Err(std::io::ErrorKind::Unsupported.into())
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);
    const Z: Duration = Duration::ZERO;

    /// Checks every 50 ms with the first worker busy `first` and all
    /// workers `all` of each period, from `t` for `n` checks; returns the
    /// switches made, with their check number.
    fn run(
        d: &mut Decide,
        t: &mut Instant,
        busy: &mut (Duration, Duration),
        n: u32,
        first: f64,
        all: f64,
    ) -> Vec<(u32, Mode)> {
        let mut out = Vec::new();
        for i in 0..n {
            *t += CHECK_EVERY;
            busy.0 += CHECK_EVERY.mul_f64(all);
            busy.1 += CHECK_EVERY.mul_f64(first);
            if let Some(m) = d.check(*t, busy.0, busy.1, Z) {
                out.push((i, m));
            }
        }
        out
    }

    #[test]
    fn low_load_stays_steered_and_a_busy_first_worker_spreads_at_once() {
        let mut t = Instant::now();
        let mut d = Decide::new(Mode::Steered, t);
        let mut busy = (Z, Z);
        assert!(run(&mut d, &mut t, &mut busy, 100, 0.3, 0.3).is_empty());
        assert_eq!(
            run(&mut d, &mut t, &mut busy, 3, 0.6, 0.6),
            vec![(0, Mode::Spread)]
        );
        assert_eq!(d.mode(), Mode::Spread);
    }

    #[test]
    fn spread_goes_back_only_after_a_calm_second() {
        let mut t = Instant::now();
        let mut d = Decide::new(Mode::Spread, t);
        let mut busy = (Z, Z);
        // Busy, then calm: steered one second (20 checks) after calm began.
        assert!(run(&mut d, &mut t, &mut busy, 10, 0.4, 0.8).is_empty());
        assert!(run(&mut d, &mut t, &mut busy, 20, 0.05, 0.1).is_empty());
        assert_eq!(
            run(&mut d, &mut t, &mut busy, 2, 0.05, 0.1),
            vec![(0, Mode::Steered)]
        );
        // A busy moment in the calm second starts it again.
        let mut d = Decide::new(Mode::Spread, t);
        assert!(run(&mut d, &mut t, &mut busy, 15, 0.05, 0.1).is_empty());
        assert!(run(&mut d, &mut t, &mut busy, 1, 0.2, 0.3).is_empty());
        assert!(run(&mut d, &mut t, &mut busy, 20, 0.05, 0.1).is_empty());
        assert_eq!(d.mode(), Mode::Spread);
        assert_eq!(
            run(&mut d, &mut t, &mut busy, 1, 0.05, 0.1),
            vec![(0, Mode::Steered)]
        );
    }

    #[test]
    fn a_stuck_first_worker_spreads_and_is_not_steered_to_while_stuck() {
        let t0 = Instant::now();
        let mut d = Decide::new(Mode::Steered, t0);
        // Idle so far, but one batch has run for 19 ms: nothing yet.
        assert_eq!(d.check(t0 + MS * 50, Z, Z, MS * 19), None);
        assert_eq!(d.check(t0 + MS * 100, Z, Z, MS * 20), Some(Mode::Spread));
        // Calm for seconds while it stays stuck: still spread.
        for i in 3..60 {
            assert_eq!(d.check(t0 + MS * (50 * i), Z, Z, MS * (50 * i)), None);
        }
        // Its batch ends (the whole stall counts as busy in one period),
        // then a calm second: steered again.
        let stall = MS * 3000;
        assert_eq!(d.check(t0 + MS * 3000, stall, stall, Z), None);
        let mut last = None;
        for i in 1..=21 {
            last = d.check(t0 + MS * (3000 + 50 * i), stall, stall, Z);
        }
        assert_eq!(last, Some(Mode::Steered));
    }

    #[test]
    fn load_counts_batches_and_the_first_workers_current_one() {
        let l = Load::new();
        let t = Instant::now();
        l.batch_started(false, t);
        l.batch_done(false, t, t + MS * 2);
        l.batch_started(true, t + MS * 3);
        assert_eq!(l.read(t + MS * 10), (MS * 2, Z, MS * 7));
        l.batch_done(true, t + MS * 3, t + MS * 4);
        assert_eq!(l.read(t + MS * 10), (MS * 3, MS, Z));
    }
}
