//! Non-INVITE server transaction (RFC 3261 Fig. 8).

mod common;

use common::*;
use sip_txn::{Action, NonInviteServer, NonInviteServerState, TimerConfig};

fn new(reliable: bool) -> NonInviteServer<Msg> {
    NonInviteServer::new(reliable, &TimerConfig::default(), t(0))
}

#[test]
fn trying_proceeding_completed_and_timer_j() {
    let mut tx = new(false);
    assert_eq!(tx.poll_timeout(), None);
    // Retransmission in Trying is absorbed.
    assert!(tx.handle_request(t(500)).is_empty());
    assert_eq!(
        v(tx.send_response(t(600), Msg::Resp(100), 100)),
        [Action::Transmit(Msg::Resp(100))]
    );
    assert_eq!(tx.state(), NonInviteServerState::Proceeding);
    assert_eq!(
        v(tx.handle_request(t(1500))),
        [Action::Transmit(Msg::Resp(100))]
    );
    assert_eq!(
        v(tx.send_response(t(2000), Msg::Resp(200), 200)),
        [Action::Transmit(Msg::Resp(200))]
    );
    assert_eq!(tx.state(), NonInviteServerState::Completed);
    // Retransmission in Completed re-sends the final response.
    assert_eq!(
        v(tx.handle_request(t(3500))),
        [Action::Transmit(Msg::Resp(200))]
    );
    // Further responses from the TU are discarded.
    assert!(tx.send_response(t(3600), Msg::Resp(500), 500).was_ignored());
    // Timer J = 64*T1; no retransmission timer exists at the server.
    assert_eq!(tx.poll_timeout(), Some(t(34_000)));
    assert!(tx.handle_timeout(t(33_999)).is_empty());
    assert_eq!(v(tx.handle_timeout(t(34_000))), [Action::Terminated]);
    assert!(tx.handle_request(t(35_000)).was_ignored());
}

#[test]
fn reliable_timer_j_zero() {
    let mut tx = new(true);
    assert_eq!(
        v(tx.send_response(t(5), Msg::Resp(200), 200)),
        [Action::Transmit(Msg::Resp(200)), Action::Terminated]
    );
    assert!(tx.is_terminated());
    assert_eq!(tx.poll_timeout(), None);
}

#[test]
fn transport_error() {
    let mut tx = new(false);
    tx.send_response(t(5), Msg::Resp(200), 200);
    assert_eq!(
        v(tx.handle_transport_error(t(6))),
        [Action::TransportError, Action::Terminated]
    );
    assert_eq!(tx.last_response(), None);
}
