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
//! spread, which makes the kernel fall back to its hash. In a group of
//! this process's sockets alone, socket 0 is the first one opened on the
//! address. Datagrams already queued on a socket stay there for its
//! worker whatever the mode, so switching loses nothing.
//!
//! The timer thread decides every [`CHECK_EVERY`] from the time each
//! worker spent handling batches ([`Decide`], without I/O so it can be
//! tested with virtual time): it spreads as soon as any worker is busy
//! half of the time or has been in one batch for [`STUCK`] (a slow
//! database query, a DNS timeout: datagrams of the flows the hash gives
//! the other workers are then handled), and steers again once all workers
//! together have been busy under a fifth of the time for [`CALM`], none of
//! them stuck. Looking at every worker, not only the first, keeps this
//! right whichever socket the group numbers 0 (another process sharing
//! the port with `SO_REUSEPORT` joins the group too, and could then be the
//! one steered to: run one instance per port, or turn steering off). The
//! core setting `udp_steer_low_load` (default yes) turns it on.

use sr_sdk::{lm_dbg, lm_err, lm_warn, Stat};
use std::net::{SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How often the timer thread looks at the load.
pub const CHECK_EVERY: Duration = Duration::from_millis(50);
/// A worker busy this long in one batch has the traffic spread.
pub const STUCK: Duration = Duration::from_millis(20);
/// How long the load must stay low before the traffic is steered again.
pub const CALM: Duration = Duration::from_secs(1);
/// Busy share of one worker above which the traffic is spread.
pub const SPREAD_ABOVE: f64 = 0.5;
/// Busy share of all workers together below which it is steered again.
pub const STEER_BELOW: f64 = 0.2;

/// How the kernel picks a worker for a datagram.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Every datagram to the group's socket 0.
    Steered,
    /// By the hash of the datagram's addresses (the kernel's default).
    Spread,
}

/// The steering decision of one address, from the workers' busy time.
#[derive(Debug, Clone)]
pub struct Decide {
    mode: Mode,
    last: Instant,
    /// Each worker's busy time at the last check (the counters only grow).
    last_busy: Vec<Duration>,
    /// Since when all workers together have been under [`STEER_BELOW`].
    calm_since: Option<Instant>,
}

impl Decide {
    /// A decision that starts in `mode` at `now`.
    pub fn new(mode: Mode, now: Instant) -> Decide {
        Decide {
            mode,
            last: now,
            last_busy: Vec::new(),
            calm_since: None,
        }
    }

    /// The mode now.
    pub fn mode(&self) -> Mode {
        self.mode
    }

    /// Goes back to `mode` after a switch away from it failed, keeping the
    /// load seen so far.
    pub fn undo(&mut self, mode: Mode) {
        self.mode = mode;
        self.calm_since = None;
    }

    /// Looks at the load at `now` and returns the mode to switch to, if it
    /// changes. `busy`: the time each worker of the address has spent
    /// handling batches since start; `stuck_for`: the longest any of them
    /// has been in its current batch (zero when all wait for datagrams).
    pub fn check(&mut self, now: Instant, busy: &[Duration], stuck_for: Duration) -> Option<Mode> {
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.last_busy.resize(busy.len(), Duration::ZERO);
        let (mut most, mut all) = (0.0f64, 0.0f64);
        for (b, before) in busy.iter().zip(&mut self.last_busy) {
            let d = b.saturating_sub(*before).as_secs_f64();
            *before = *b;
            if elapsed > 0.0 {
                most = most.max(d / elapsed);
                all += d / elapsed;
            }
        }
        self.last = now;
        let next = match self.mode {
            Mode::Steered if most > SPREAD_ABOVE || stuck_for >= STUCK => Mode::Spread,
            Mode::Steered => return None,
            // Not back to one worker while one is stuck, however calm the
            // rest: it could be the one steered to.
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

/// One worker's counters.
#[derive(Debug, Default)]
struct Slot {
    /// Nanoseconds spent handling batches.
    busy_ns: AtomicU64,
    /// When its current batch started, in nanoseconds after
    /// [`Load::start`] plus one (0: it waits for datagrams).
    since: AtomicU64,
}

/// What the workers of one address share with the timer thread: each
/// worker's busy time, updated once per batch.
#[derive(Debug)]
pub struct Load {
    start: Instant,
    slots: Box<[Slot]>,
}

impl Load {
    /// Counters for `workers` workers, starting now.
    pub fn new(workers: usize) -> Load {
        Load {
            start: Instant::now(),
            slots: (0..workers).map(|_| Slot::default()).collect(),
        }
    }

    fn ns(&self, t: Instant) -> u64 {
        u64::try_from(t.saturating_duration_since(self.start).as_nanos()).unwrap_or(u64::MAX - 1)
    }

    /// Worker `w` starts handling a batch at `t`.
    pub fn batch_started(&self, w: usize, t: Instant) {
        if let Some(s) = self.slots.get(w) {
            s.since.store(self.ns(t) + 1, Ordering::Relaxed);
        }
    }

    /// Worker `w` handled a batch from `from` to `to`.
    pub fn batch_done(&self, w: usize, from: Instant, to: Instant) {
        if let Some(s) = self.slots.get(w) {
            let d = to.saturating_duration_since(from).as_nanos();
            s.busy_ns
                .fetch_add(u64::try_from(d).unwrap_or(u64::MAX), Ordering::Relaxed);
            s.since.store(0, Ordering::Relaxed);
        }
    }

    /// Each worker's busy time, and the longest any has been in its
    /// current batch, at `now`.
    pub fn read(&self, now: Instant) -> (Vec<Duration>, Duration) {
        let now_ns = self.ns(now);
        let mut stuck = Duration::ZERO;
        let busy = self
            .slots
            .iter()
            .map(|s| {
                let since = s.since.load(Ordering::Relaxed);
                if since != 0 {
                    stuck = stuck.max(Duration::from_nanos(now_ns.saturating_sub(since - 1)));
                }
                Duration::from_nanos(s.busy_ns.load(Ordering::Relaxed))
            })
            .collect();
        (busy, stuck)
    }
}

/// The steering of one UDP address, checked by the timer thread.
#[derive(Debug)]
pub struct Steering {
    addr: SocketAddr,
    /// A socket of the address's group (any would do).
    sock: UdpSocket,
    load: Arc<Load>,
    decide: Mutex<Decide>,
    /// `core:udp_steered`.
    steered: Stat,
    /// The last switch failed (logged once until one succeeds).
    failing: std::sync::atomic::AtomicBool,
}

impl Steering {
    /// Steers the address's datagrams to one worker. `None` (with a
    /// warning) where the kernel refuses the program: the kernel then
    /// spreads them by flow.
    pub fn start(
        addr: SocketAddr,
        sock: UdpSocket,
        load: Arc<Load>,
        steered: Stat,
    ) -> Option<Steering> {
        if let Err(e) = attach(&sock, Mode::Steered) {
            lm_warn!(
                "udp {addr}: cannot steer datagrams to one worker at low load ({e}); \
                 the kernel spreads them by flow"
            );
            return None;
        }
        steered.inc();
        Some(Steering {
            addr,
            sock,
            load,
            decide: Mutex::new(Decide::new(Mode::Steered, Instant::now())),
            steered,
            failing: Default::default(),
        })
    }

    /// The timer's check: switches the mode when the load says so.
    pub fn check(&self) {
        let now = Instant::now();
        let (busy, stuck) = self.load.read(now);
        let Ok(mut d) = self.decide.lock() else {
            return;
        };
        let before = d.mode();
        let Some(mode) = d.check(now, &busy, stuck) else {
            return;
        };
        match attach(&self.sock, mode) {
            Ok(()) => {
                self.steered.add(if mode == Mode::Steered { 1 } else { -1 });
                self.failing.store(false, Ordering::Relaxed);
                lm_dbg!("udp {}: {mode:?}", self.addr);
            }
            Err(e) => {
                if !self.failing.swap(true, Ordering::Relaxed) {
                    lm_err!("udp {}: cannot switch to {mode:?}: {e}", self.addr);
                }
                // Tried again at the next check that wants it.
                d.undo(before);
            }
        }
    }
}

/// `SO_ATTACH_REUSEPORT_CBPF` (`asm-generic/socket.h`; the libc crate
/// exports it only for Android; sparc numbers it differently).
#[cfg(all(
    target_os = "linux",
    not(any(target_arch = "sparc", target_arch = "sparc64"))
))]
const SO_ATTACH_REUSEPORT_CBPF: libc::c_int = 51;

/// Attaches the program for `mode` to the socket group of `sock` (any of
/// its sockets). Fails where the kernel does not support it.
#[cfg(all(
    target_os = "linux",
    not(any(target_arch = "sparc", target_arch = "sparc64"))
))]
pub fn attach(sock: &UdpSocket, mode: Mode) -> std::io::Result<()> {
    use std::os::fd::AsRawFd;
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
#[cfg(not(all(
    target_os = "linux",
    not(any(target_arch = "sparc", target_arch = "sparc64"))
)))]
pub fn attach(_sock: &UdpSocket, _mode: Mode) -> std::io::Result<()> {
    Err(std::io::ErrorKind::Unsupported.into())
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);
    const Z: Duration = Duration::ZERO;

    /// Two workers; checks every 50 ms with each busy the given share of
    /// every period, from `t` for `n` checks; returns the switches made,
    /// with their check number.
    fn run(
        d: &mut Decide,
        t: &mut Instant,
        busy: &mut [Duration; 2],
        n: u32,
        shares: [f64; 2],
    ) -> Vec<(u32, Mode)> {
        let mut out = Vec::new();
        for i in 0..n {
            *t += CHECK_EVERY;
            for (b, s) in busy.iter_mut().zip(shares) {
                *b += CHECK_EVERY.mul_f64(s);
            }
            if let Some(m) = d.check(*t, &busy[..], Z) {
                out.push((i, m));
            }
        }
        out
    }

    #[test]
    fn low_load_stays_steered_and_any_busy_worker_spreads_at_once() {
        let mut t = Instant::now();
        let mut d = Decide::new(Mode::Steered, t);
        let mut busy = [Z; 2];
        assert!(run(&mut d, &mut t, &mut busy, 100, [0.3, 0.1]).is_empty());
        // The second worker busy (the group's socket 0 need not be the
        // first one opened): spread too.
        assert_eq!(
            run(&mut d, &mut t, &mut busy, 3, [0.0, 0.6]),
            vec![(0, Mode::Spread)]
        );
        assert_eq!(d.mode(), Mode::Spread);
    }

    #[test]
    fn spread_goes_back_only_after_a_calm_second() {
        let mut t = Instant::now();
        let mut d = Decide::new(Mode::Spread, t);
        let mut busy = [Z; 2];
        // Busy, then calm: steered one second (20 checks) after calm began.
        assert!(run(&mut d, &mut t, &mut busy, 10, [0.4, 0.4]).is_empty());
        assert!(run(&mut d, &mut t, &mut busy, 20, [0.05, 0.1]).is_empty());
        assert_eq!(
            run(&mut d, &mut t, &mut busy, 2, [0.05, 0.1]),
            vec![(0, Mode::Steered)]
        );
        // A busy moment in the calm second starts it again.
        let mut d = Decide::new(Mode::Spread, t);
        assert!(run(&mut d, &mut t, &mut busy, 15, [0.05, 0.1]).is_empty());
        assert!(run(&mut d, &mut t, &mut busy, 1, [0.2, 0.1]).is_empty());
        assert!(run(&mut d, &mut t, &mut busy, 20, [0.05, 0.1]).is_empty());
        assert_eq!(d.mode(), Mode::Spread);
        assert_eq!(
            run(&mut d, &mut t, &mut busy, 1, [0.05, 0.1]),
            vec![(0, Mode::Steered)]
        );
    }

    #[test]
    fn a_stuck_worker_spreads_and_is_not_steered_to_while_stuck() {
        let t0 = Instant::now();
        let mut d = Decide::new(Mode::Steered, t0);
        let idle = [Z, Z];
        // Idle so far, but one batch has run for 19 ms: nothing yet.
        assert_eq!(d.check(t0 + MS * 50, &idle, MS * 19), None);
        assert_eq!(d.check(t0 + MS * 100, &idle, MS * 20), Some(Mode::Spread));
        // Calm for seconds while it stays stuck: still spread.
        for i in 3..60 {
            assert_eq!(d.check(t0 + MS * (50 * i), &idle, MS * (50 * i)), None);
        }
        // Its batch ends (the whole stall counts as busy in one period),
        // then a calm second: steered again.
        let stalled = [MS * 3000, Z];
        assert_eq!(d.check(t0 + MS * 3000, &stalled, Z), None);
        let mut last = None;
        for i in 1..=21 {
            last = d.check(t0 + MS * (3000 + 50 * i), &stalled, Z);
        }
        assert_eq!(last, Some(Mode::Steered));
    }

    #[test]
    fn a_failed_switch_keeps_the_load_seen() {
        let t0 = Instant::now();
        let mut d = Decide::new(Mode::Steered, t0);
        let busy = [MS * 40, Z];
        assert_eq!(d.check(t0 + MS * 50, &busy, Z), Some(Mode::Spread));
        d.undo(Mode::Steered);
        assert_eq!(d.mode(), Mode::Steered);
        // Idle since: no share from before the failure counts again.
        assert_eq!(d.check(t0 + MS * 100, &busy, Z), None);
    }

    #[test]
    fn load_counts_each_workers_batches_and_the_longest_current_one() {
        let l = Load::new(2);
        let t = Instant::now();
        l.batch_started(1, t);
        l.batch_done(1, t, t + MS * 2);
        l.batch_started(0, t + MS * 3);
        assert_eq!(l.read(t + MS * 10), (vec![Z, MS * 2], MS * 7));
        l.batch_done(0, t + MS * 3, t + MS * 4);
        assert_eq!(l.read(t + MS * 10), (vec![MS, MS * 2], Z));
        // A worker number out of range is ignored.
        l.batch_done(5, t, t + MS);
        assert_eq!(l.read(t + MS * 10).0.len(), 2);
    }
}
