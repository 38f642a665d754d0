//! Arbitrary event sequences never panic and keep the basic invariants:
//! `Terminated` is emitted exactly once, last in its batch; afterwards every
//! event is ignored and no timer is armed; deadlines never go backwards
//! past `now` after a timeout was handled.

mod common;

use common::*;
use sip_txn::{
    Action, Actions, InviteClient, InviteServer, NonInviteClient, NonInviteServer, TimerConfig,
    Transaction,
};

/// Small deterministic PRNG (xorshift64*).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

const STATUSES: [u16; 12] = [0, 99, 100, 180, 183, 200, 202, 302, 404, 487, 699, 700];

fn check(batch: &Actions<Msg>, terminated: &mut bool) {
    let v: Vec<_> = batch.iter().collect();
    if *terminated {
        assert!(
            v.is_empty() && batch.was_ignored(),
            "event after Terminated produced {v:?}"
        );
    }
    if let Some(pos) = v.iter().position(|a| matches!(a, Action::Terminated)) {
        assert_eq!(pos, v.len() - 1, "Terminated not last: {v:?}");
        *terminated = true;
    }
}

fn fresh(kind: u64, reliable: bool, cfg: &TimerConfig) -> Transaction<Msg> {
    match kind {
        0 => InviteClient::start(Msg::Req("INVITE"), reliable, cfg, t(0))
            .0
            .into(),
        1 => NonInviteClient::start(Msg::Req("BYE"), reliable, cfg, t(0))
            .0
            .into(),
        2 => InviteServer::new(reliable, cfg, t(0)).into(),
        _ => NonInviteServer::new(reliable, cfg, t(0)).into(),
    }
}

#[test]
fn random_event_sequences() {
    let cfg = TimerConfig::default();
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    for round in 0..4_000u64 {
        let mut tx = fresh(round % 4, rng.below(2) == 0, &cfg);
        let mut now = 0u64;
        let mut terminated = false;
        for _ in 0..40 {
            now += rng.below(3_000);
            let clock = t(now);
            let status = STATUSES[rng.below(STATUSES.len() as u64) as usize];
            let msg = Msg::Resp(status);
            let batch = match rng.below(6) {
                0 => tx.handle_timeout(clock),
                1 => tx.handle_transport_error(clock),
                2 => match &mut tx {
                    Transaction::InviteClient(c) => c.handle_response(clock, msg, status),
                    Transaction::NonInviteClient(c) => c.handle_response(clock, msg, status),
                    Transaction::InviteServer(s) => s.send_response(clock, msg, status),
                    Transaction::NonInviteServer(s) => s.send_response(clock, msg, status),
                },
                3 => match &mut tx {
                    Transaction::InviteServer(s) => s.handle_request(clock),
                    Transaction::NonInviteServer(s) => s.handle_request(clock),
                    _ => tx.handle_timeout(clock),
                },
                4 => match &mut tx {
                    Transaction::InviteServer(s) => s.handle_ack(clock, Msg::Req("ACK")),
                    _ => tx.handle_timeout(clock),
                },
                _ => {
                    // Jump straight to the next deadline.
                    match tx.poll_timeout() {
                        Some(d) => {
                            now = now.max(d.as_millis());
                            let b = tx.handle_timeout(t(now));
                            assert!(!b.is_empty(), "deadline reached but nothing happened");
                            if let Some(next) = tx.poll_timeout() {
                                assert!(next > t(now), "deadline not advanced");
                            }
                            b
                        }
                        None => tx.handle_timeout(clock),
                    }
                }
            };
            check(&batch, &mut terminated);
            assert_eq!(terminated, tx.is_terminated());
            if terminated {
                assert_eq!(tx.poll_timeout(), None);
            }
        }
        // Every machine eventually terminates once its timers run out,
        // except those legitimately waiting on the TU or the network.
        let log = run_timers(&mut tx, now + 10_000_000);
        let ends = log.iter().filter(|(_, a)| *a == Action::Terminated).count();
        assert!(ends <= 1);
        assert_eq!(tx.poll_timeout(), None);
    }
}
