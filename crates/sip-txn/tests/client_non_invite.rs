//! Non-INVITE client transaction (RFC 3261 Fig. 6).

mod common;

use common::*;
use sip_txn::{Action, NonInviteClient, NonInviteClientState, TimerConfig, Transaction};

fn start(reliable: bool) -> NonInviteClient<Msg> {
    let (tx, a) =
        NonInviteClient::start(Msg::Req("OPTIONS"), reliable, &TimerConfig::default(), t(0));
    assert_eq!(v(a), [Action::Transmit(Msg::Req("OPTIONS"))]);
    tx
}

#[test]
fn udp_timer_e_doubles_to_t2_then_timer_f() {
    let mut tx: Transaction<Msg> = start(false).into();
    let log = run_timers(&mut tx, 100_000);
    assert_eq!(
        transmit_times(&log),
        [500, 1500, 3500, 7500, 11500, 15500, 19500, 23500, 27500, 31500]
    );
    assert_eq!(
        &log[log.len() - 2..],
        [(32_000, Action::Timeout), (32_000, Action::Terminated)]
    );
}

#[test]
fn reliable_no_retransmissions() {
    let mut tx: Transaction<Msg> = start(true).into();
    let log = run_timers(&mut tx, 100_000);
    assert_eq!(
        log,
        [(32_000, Action::Timeout), (32_000, Action::Terminated)]
    );
}

#[test]
fn proceeding_retransmits_every_t2() {
    let mut tx = start(false);
    assert_eq!(
        v(tx.handle_timeout(t(500))),
        [Action::Transmit(Msg::Req("OPTIONS"))]
    );
    assert_eq!(
        v(tx.handle_response(t(600), Msg::Resp(100), 100)),
        [Action::PassToTu(Msg::Resp(100))]
    );
    assert_eq!(tx.state(), NonInviteClientState::Proceeding);
    let mut tx: Transaction<Msg> = tx.into();
    let log = run_timers(&mut tx, 100_000);
    // Timer E was armed for 1500 before the 1xx; from then on every T2.
    assert_eq!(
        transmit_times(&log),
        [1500, 5500, 9500, 13500, 17500, 21500, 25500, 29500]
    );
    assert_eq!(log.last(), Some(&(32_000, Action::Terminated)));
}

#[test]
fn final_response_then_absorbed_and_timer_k() {
    let mut tx = start(false);
    tx.handle_response(t(100), Msg::Resp(180), 180);
    assert_eq!(
        v(tx.handle_response(t(200), Msg::Resp(404), 404)),
        [Action::PassToTu(Msg::Resp(404))]
    );
    assert_eq!(tx.state(), NonInviteClientState::Completed);
    // Retransmitted finals (or a different one) are absorbed.
    let a = tx.handle_response(t(300), Msg::Resp(404), 404);
    assert!(a.is_empty() && !a.was_ignored());
    assert!(tx.handle_response(t(300), Msg::Resp(100), 100).is_empty());
    assert_eq!(tx.poll_timeout(), Some(t(5_200)));
    assert_eq!(v(tx.handle_timeout(t(5_200))), [Action::Terminated]);
}

#[test]
fn reliable_final_terminates_immediately() {
    let mut tx = start(true);
    assert_eq!(
        v(tx.handle_response(t(20), Msg::Resp(200), 200)),
        [Action::PassToTu(Msg::Resp(200)), Action::Terminated]
    );
}

#[test]
fn transport_error_only_before_completion() {
    let mut tx = start(false);
    tx.handle_response(t(20), Msg::Resp(200), 200);
    assert!(tx.handle_transport_error(t(30)).was_ignored());
    let mut tx = start(false);
    assert_eq!(
        v(tx.handle_transport_error(t(1))),
        [Action::TransportError, Action::Terminated]
    );
}

#[test]
fn cancel_is_an_ordinary_non_invite_transaction() {
    // A CANCEL we send runs its own non-INVITE client transaction.
    let (mut tx, a) =
        NonInviteClient::start(Msg::Req("CANCEL"), false, &TimerConfig::default(), t(0));
    assert_eq!(v(a), [Action::Transmit(Msg::Req("CANCEL"))]);
    assert_eq!(
        v(tx.handle_timeout(t(500))),
        [Action::Transmit(Msg::Req("CANCEL"))]
    );
    assert_eq!(
        v(tx.handle_response(t(600), Msg::Resp(200), 200)),
        [Action::PassToTu(Msg::Resp(200))]
    );
    assert_eq!(tx.state(), NonInviteClientState::Completed);
}
