//! INVITE server transaction (RFC 3261 Fig. 7 + RFC 6026).

mod common;

use common::*;
use sip_txn::{Action, InviteServer, InviteServerState, TimerConfig, Transaction};

fn new(reliable: bool) -> InviteServer<Msg> {
    InviteServer::new(reliable, &TimerConfig::default(), t(0))
}

#[test]
fn timer_g_schedule_until_timer_h() {
    let mut tx = new(false);
    assert_eq!(tx.poll_timeout(), None);
    assert_eq!(
        v(tx.send_response(t(0), Msg::Resp(100), 100)),
        [Action::Transmit(Msg::Resp(100))]
    );
    assert_eq!(
        v(tx.send_response(t(1000), Msg::Resp(486), 486)),
        [Action::Transmit(Msg::Resp(486))]
    );
    assert_eq!(tx.state(), InviteServerState::Completed);
    let mut tx: Transaction<Msg> = tx.into();
    let log = run_timers(&mut tx, 100_000);
    // G: T1, 2T1, 4T1, then capped at T2 = 4 s; H = 64*T1 = 32 s after the 486.
    let rel: Vec<u64> = transmit_times(&log).iter().map(|x| x - 1000).collect();
    assert_eq!(
        rel,
        [500, 1500, 3500, 7500, 11500, 15500, 19500, 23500, 27500, 31500]
    );
    assert_eq!(
        &log[log.len() - 2..],
        [(33_000, Action::Timeout), (33_000, Action::Terminated)]
    );
}

#[test]
fn ack_stops_timer_g_and_timer_i_terminates() {
    let mut tx = new(false);
    tx.send_response(t(0), Msg::Resp(404), 404);
    assert_eq!(
        v(tx.handle_timeout(t(500))),
        [Action::Transmit(Msg::Resp(404))]
    );
    assert!(v(tx.handle_ack(t(800), Msg::Req("ACK"))).is_empty());
    assert_eq!(tx.state(), InviteServerState::Confirmed);
    assert_eq!(tx.poll_timeout(), Some(t(800 + 5_000)));
    // ACK and INVITE retransmissions absorbed in Confirmed.
    let a = tx.handle_ack(t(900), Msg::Req("ACK"));
    assert!(a.is_empty() && !a.was_ignored());
    assert!(tx.handle_request(t(900)).is_empty());
    assert_eq!(v(tx.handle_timeout(t(5_800))), [Action::Terminated]);
}

#[test]
fn reliable_no_timer_g_and_ack_terminates() {
    let mut tx = new(true);
    tx.send_response(t(0), Msg::Resp(603), 603);
    // Only Timer H.
    assert_eq!(tx.poll_timeout(), Some(t(32_000)));
    assert_eq!(
        v(tx.handle_ack(t(10), Msg::Req("ACK"))),
        [Action::Terminated]
    );
}

#[test]
fn reliable_without_ack_times_out_with_h() {
    let mut tx: Transaction<Msg> = {
        let mut s = new(true);
        s.send_response(t(0), Msg::Resp(500), 500);
        s.into()
    };
    assert_eq!(
        run_timers(&mut tx, 100_000),
        [(32_000, Action::Timeout), (32_000, Action::Terminated)]
    );
}

#[test]
fn retransmitted_invite_resends_last_response() {
    let mut tx = new(false);
    // Nothing sent yet: absorbed.
    let a = tx.handle_request(t(0));
    assert!(a.is_empty() && !a.was_ignored());
    tx.send_response(t(10), Msg::Resp(100), 100);
    tx.send_response(t(20), Msg::Resp(180), 180);
    assert_eq!(
        v(tx.handle_request(t(30))),
        [Action::Transmit(Msg::Resp(180))]
    );
    tx.send_response(t(40), Msg::Resp(480), 480);
    assert_eq!(
        v(tx.handle_request(t(50))),
        [Action::Transmit(Msg::Resp(480))]
    );
}

#[test]
fn success_goes_to_accepted_timer_l() {
    let mut tx = new(false);
    tx.send_response(t(0), Msg::Resp(180), 180);
    assert_eq!(
        v(tx.send_response(t(100), Msg::Resp(200), 200)),
        [Action::Transmit(Msg::Resp(200))]
    );
    assert_eq!(tx.state(), InviteServerState::Accepted);
    assert_eq!(tx.poll_timeout(), Some(t(32_100)));
    // INVITE retransmissions absorbed (the TU retransmits 2xx itself)...
    let a = tx.handle_request(t(200));
    assert!(a.is_empty() && !a.was_ignored());
    // ...through the transaction: further 2xx from the TU are sent.
    assert_eq!(
        v(tx.send_response(t(600), Msg::Resp(200), 200)),
        [Action::Transmit(Msg::Resp(200))]
    );
    // Non-2xx from the TU after a 2xx: ignored.
    assert!(tx.send_response(t(700), Msg::Resp(500), 500).was_ignored());
    // ACK for the 2xx matching this transaction goes to the TU.
    assert_eq!(
        v(tx.handle_ack(t(800), Msg::Req("ACK"))),
        [Action::PassToTu(Msg::Req("ACK"))]
    );
    assert_eq!(v(tx.handle_timeout(t(32_100))), [Action::Terminated]);
}

#[test]
fn cancelled_invite_final_487_after_cancel() {
    // The proxy received a CANCEL (its own transaction, see the cancel
    // test) and makes the INVITE server transaction answer 487.
    let mut tx = new(false);
    tx.send_response(t(0), Msg::Resp(100), 100);
    tx.send_response(t(100), Msg::Resp(180), 180);
    assert_eq!(
        v(tx.send_response(t(2000), Msg::Resp(487), 487)),
        [Action::Transmit(Msg::Resp(487))]
    );
    assert_eq!(tx.state(), InviteServerState::Completed);
    // A 200 racing in from downstream after the 487 is ignored here.
    assert!(tx.send_response(t(2001), Msg::Resp(200), 200).was_ignored());
    // The UAC ACKs the 487.
    assert!(tx.handle_ack(t(2100), Msg::Req("ACK")).is_empty());
    assert_eq!(tx.state(), InviteServerState::Confirmed);
}

#[test]
fn final_after_2xx_race_is_ignored_when_cancel_loses() {
    // The 200 beat the CANCEL: the 487 the TU then tries to send is ignored.
    let mut tx = new(false);
    tx.send_response(t(0), Msg::Resp(200), 200);
    assert!(tx.send_response(t(1), Msg::Resp(487), 487).was_ignored());
    assert_eq!(tx.state(), InviteServerState::Accepted);
}

#[test]
fn transport_error_and_garbage() {
    let mut tx = new(false);
    assert!(tx.send_response(t(0), Msg::Resp(42), 42).was_ignored());
    assert!(tx.send_response(t(0), Msg::Resp(1000), 1000).was_ignored());
    assert_eq!(
        v(tx.handle_transport_error(t(1))),
        [Action::TransportError, Action::Terminated]
    );
    assert!(tx.handle_request(t(2)).was_ignored());
    assert!(tx.handle_ack(t(2), Msg::Req("ACK")).was_ignored());
    assert!(tx.send_response(t(2), Msg::Resp(200), 200).was_ignored());
    assert!(tx.handle_timeout(t(2)).was_ignored());
}
