//! INVITE client transaction (RFC 3261 Fig. 5 + RFC 6026).

mod common;

use common::*;
use sip_txn::{Action, InviteClient, InviteClientState, TimerConfig, Transaction};

fn start(reliable: bool) -> Transaction<Msg> {
    let (tx, a) = InviteClient::start(Msg::Req("INVITE"), reliable, &TimerConfig::default(), t(0));
    assert_eq!(v(a), [Action::Transmit(Msg::Req("INVITE"))]);
    tx.into()
}

#[test]
fn udp_retransmission_schedule_and_timer_b() {
    let mut tx = start(false);
    let log = run_timers(&mut tx, 100_000);
    assert_eq!(transmit_times(&log), [500, 1500, 3500, 7500, 15500, 31500]);
    let tail: Vec<_> = log
        .iter()
        .filter(|(_, a)| !matches!(a, Action::Transmit(_)))
        .cloned()
        .collect();
    assert_eq!(
        tail,
        [(32_000, Action::Timeout), (32_000, Action::Terminated)]
    );
    assert!(tx.is_terminated());
    assert_eq!(tx.poll_timeout(), None);
}

#[test]
fn reliable_never_retransmits_but_times_out() {
    let mut tx = start(true);
    assert_eq!(tx.poll_timeout(), Some(t(32_000)));
    let log = run_timers(&mut tx, 100_000);
    assert_eq!(
        log,
        [(32_000, Action::Timeout), (32_000, Action::Terminated)]
    );
}

#[test]
fn configurable_t1() {
    let cfg = TimerConfig::from_base(
        std::time::Duration::from_millis(100),
        std::time::Duration::from_secs(4),
        std::time::Duration::from_secs(5),
    );
    let (tx, _) = InviteClient::start(Msg::Req("INVITE"), false, &cfg, t(0));
    let mut tx: Transaction<Msg> = tx.into();
    let log = run_timers(&mut tx, 100_000);
    assert_eq!(transmit_times(&log), [100, 300, 700, 1500, 3100, 6300]);
    assert_eq!(log.last(), Some(&(6400, Action::Terminated)));
}

#[test]
fn provisional_then_failure_acks_and_absorbs_retransmissions() {
    let (mut tx, _) = InviteClient::start(Msg::Req("INVITE"), false, &TimerConfig::default(), t(0));
    assert_eq!(
        v(tx.handle_response(t(200), Msg::Resp(100), 100)),
        [Action::PassToTu(Msg::Resp(100))]
    );
    assert_eq!(
        v(tx.handle_response(t(300), Msg::Resp(180), 180)),
        [Action::PassToTu(Msg::Resp(180))]
    );
    assert_eq!(tx.state(), InviteClientState::Proceeding);
    // No retransmissions, no Timer B in Proceeding.
    assert_eq!(tx.poll_timeout(), None);
    assert!(tx.handle_timeout(t(100_000)).is_empty());

    let a = v(tx.handle_response(t(1000), Msg::Resp(486), 486));
    assert_eq!(
        a,
        [
            Action::PassToTu(Msg::Resp(486)),
            Action::SendAck(Msg::Resp(486))
        ]
    );
    assert_eq!(tx.state(), InviteClientState::Completed);
    assert_eq!(tx.poll_timeout(), Some(t(33_000)));

    // Retransmitted final response: ACK again, TU not bothered.
    assert_eq!(
        v(tx.handle_response(t(1500), Msg::Resp(486), 486)),
        [Action::SendAck(Msg::Resp(486))]
    );
    // Late provisional / 2xx in Completed: ignored.
    assert!(tx
        .handle_response(t(1600), Msg::Resp(180), 180)
        .was_ignored());
    assert!(tx
        .handle_response(t(1600), Msg::Resp(200), 200)
        .was_ignored());

    assert!(tx.handle_timeout(t(32_999)).is_empty());
    assert_eq!(v(tx.handle_timeout(t(33_000))), [Action::Terminated]);
    assert!(tx
        .handle_response(t(40_000), Msg::Resp(486), 486)
        .was_ignored());
}

#[test]
fn failure_over_reliable_terminates_with_timer_d_zero() {
    let (mut tx, _) = InviteClient::start(Msg::Req("INVITE"), true, &TimerConfig::default(), t(0));
    let a = v(tx.handle_response(t(10), Msg::Resp(503), 503));
    assert_eq!(
        a,
        [
            Action::PassToTu(Msg::Resp(503)),
            Action::SendAck(Msg::Resp(503)),
            Action::Terminated
        ]
    );
}

#[test]
fn success_goes_to_accepted_and_timer_m() {
    let (mut tx, _) = InviteClient::start(Msg::Req("INVITE"), false, &TimerConfig::default(), t(0));
    assert_eq!(
        v(tx.handle_response(t(700), Msg::Resp(200), 200)),
        [Action::PassToTu(Msg::Resp(200))]
    );
    assert_eq!(tx.state(), InviteClientState::Accepted);
    // Timer A cancelled; only Timer M = 64*T1 remains.
    assert_eq!(tx.poll_timeout(), Some(t(700 + 32_000)));
    // 2xx retransmissions (or other forks' 2xx) go to the TU (RFC 6026).
    assert_eq!(
        v(tx.handle_response(t(1200), Msg::Resp(200), 200)),
        [Action::PassToTu(Msg::Resp(200))]
    );
    assert_eq!(
        v(tx.handle_response(t(1300), Msg::Resp(202), 202)),
        [Action::PassToTu(Msg::Resp(202))]
    );
    // Non-2xx in Accepted are discarded.
    assert!(tx
        .handle_response(t(1400), Msg::Resp(487), 487)
        .was_ignored());
    assert!(tx
        .handle_response(t(1400), Msg::Resp(183), 183)
        .was_ignored());
    assert_eq!(v(tx.handle_timeout(t(32_700))), [Action::Terminated]);
    assert!(tx.is_terminated());
}

#[test]
fn accepted_lasts_timer_m_even_over_reliable() {
    let (mut tx, _) = InviteClient::start(Msg::Req("INVITE"), true, &TimerConfig::default(), t(0));
    tx.handle_response(t(50), Msg::Resp(200), 200);
    assert_eq!(tx.poll_timeout(), Some(t(32_050)));
}

#[test]
fn transport_error() {
    let (mut tx, _) = InviteClient::start(Msg::Req("INVITE"), false, &TimerConfig::default(), t(0));
    assert_eq!(
        v(tx.handle_transport_error(t(1))),
        [Action::TransportError, Action::Terminated]
    );
    assert!(tx.handle_transport_error(t(2)).was_ignored());
    assert!(tx.handle_timeout(t(500)).was_ignored());
}

#[test]
fn late_timer_call_does_not_burst() {
    let (mut tx, _) = InviteClient::start(Msg::Req("INVITE"), false, &TimerConfig::default(), t(0));
    // The caller oversleeps until 4000 ms: one retransmission, then the
    // next one is scheduled relative to now.
    assert_eq!(
        v(tx.handle_timeout(t(4000))),
        [Action::Transmit(Msg::Req("INVITE"))]
    );
    assert_eq!(tx.poll_timeout(), Some(t(5000)));
}

#[test]
fn terminate_is_idempotent() {
    let (mut tx, _) = InviteClient::start(Msg::Req("INVITE"), false, &TimerConfig::default(), t(0));
    assert_eq!(v(tx.terminate()), [Action::Terminated]);
    assert!(tx.terminate().was_ignored());
}
