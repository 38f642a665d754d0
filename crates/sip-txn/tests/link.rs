//! End-to-end client ↔ server transactions over a deterministic lossy,
//! reordering link on a virtual clock.

mod common;

use common::*;
use sip_txn::{Action, InviteClientState};

fn invite() -> Msg {
    Msg::Req("INVITE")
}

fn count<F: Fn(&Action<Msg>) -> bool>(log: &[(u64, Action<Msg>)], f: F) -> usize {
    log.iter().filter(|(_, a)| f(a)).count()
}

#[test]
fn invite_first_two_copies_lost() {
    let up = Link::drop_first(10, 2, |m| *m == Msg::Req("INVITE"));
    let script = vec![
        (0, Msg::Resp(100)),
        (100, Msg::Resp(180)),
        (1000, Msg::Resp(200)),
    ];
    let mut w = World::new(invite(), false, up, Link::perfect(10), script);
    w.run(1_000_000);
    // Sent at 0 and 500 (both lost) and 1500 (delivered at 1510); the 100
    // arrives at 1520 before the next retransmission at 3500.
    let times: Vec<u64> =
        w.up.sent
            .iter()
            .filter(|(_, m, _)| *m == invite())
            .map(|(t, _, _)| *t)
            .collect();
    assert_eq!(times, [0, 500, 1500]);
    assert_eq!(w.servers_created, 1);
    assert_eq!(
        w.client_got(),
        [Msg::Resp(100), Msg::Resp(180), Msg::Resp(200)]
    );
    // Both sides ended via Accepted + Timer M / L; no timeout.
    assert!(w.client.is_terminated());
    assert!(w.server.is_none());
    assert_eq!(count(&w.client_tu, |a| *a == Action::Timeout), 0);
    assert_eq!(count(&w.server_tu, |a| *a == Action::Timeout), 0);
}

#[test]
fn provisional_delivered_after_final_is_ignored() {
    // The 180 is held up 50 ms more than the 200 sent 10 ms after it.
    let down = Link::with_rule(
        10,
        Box::new(|_, m| {
            if *m == Msg::Resp(180) {
                Some(50)
            } else {
                Some(0)
            }
        }),
    );
    let script = vec![(0, Msg::Resp(180)), (10, Msg::Resp(200))];
    let mut w = World::new(invite(), false, Link::perfect(10), down, script);
    w.run(100);
    assert_eq!(w.client_got(), [Msg::Resp(200)]);
    match &mut w.client {
        sip_txn::Transaction::InviteClient(c) => assert_eq!(c.state(), InviteClientState::Accepted),
        _ => unreachable!(),
    }
    w.run(1_000_000);
    assert!(w.client.is_terminated());
}

#[test]
fn lost_final_and_lost_ack_recovered_by_retransmissions() {
    let down = Link::drop_first(10, 1, |m| *m == Msg::Resp(486));
    let up = Link::drop_first(10, 1, |m| *m == Msg::Req("ACK"));
    let mut w = World::new(invite(), false, up, down, vec![(0, Msg::Resp(486))]);
    w.run(1_000_000);
    // The TU saw the 486 exactly once, but ACKed every copy it got.
    assert_eq!(w.client_got(), [Msg::Resp(486)]);
    let acks = count(&w.client_tu, |a| matches!(a, Action::SendAck(_)));
    assert!(acks >= 2, "acks = {acks}");
    assert_eq!(w.up.sent_msgs(&Msg::Req("ACK")), acks);
    // Server: G retransmitted the 486 until the second ACK, then I; no H.
    assert_eq!(count(&w.server_tu, |a| *a == Action::Timeout), 0);
    assert!(w.down.sent_msgs(&Msg::Resp(486)) >= 2);
    assert!(w.client.is_terminated());
    assert!(w.server.is_none());
    assert_eq!(w.servers_created, 1);
}

#[test]
fn every_response_lost_times_out_both_sides() {
    let down = Link::with_rule(10, Box::new(|_, _| None));
    let mut w = World::new(
        invite(),
        false,
        Link::perfect(10),
        down,
        vec![(0, Msg::Resp(486))],
    );
    w.run(1_000_000);
    // Client: Timer B. Server: Timer H (no ACK ever).
    assert_eq!(count(&w.client_tu, |a| *a == Action::Timeout), 1);
    assert_eq!(count(&w.server_tu, |a| *a == Action::Timeout), 1);
    assert_eq!(w.up.sent_msgs(&invite()), 7);
}

#[test]
fn non_invite_lost_final_resent_on_request_retransmission() {
    let down = Link::drop_first(10, 1, |m| *m == Msg::Resp(200));
    let mut w = World::new(
        Msg::Req("REGISTER"),
        false,
        Link::perfect(10),
        down,
        vec![(0, Msg::Resp(200))],
    );
    w.run(1_000_000);
    assert_eq!(w.client_got(), [Msg::Resp(200)]);
    assert_eq!(w.up.sent_msgs(&Msg::Req("REGISTER")), 2);
    assert_eq!(w.servers_created, 1);
    assert!(w.client.is_terminated());
    assert!(w.server.is_none());
}

#[test]
fn non_invite_retransmissions_absorbed_while_tu_is_slow() {
    let script = vec![(3_000, Msg::Resp(200))];
    let mut w = World::new(
        Msg::Req("OPTIONS"),
        false,
        Link::perfect(10),
        Link::perfect(10),
        script,
    );
    w.run(1_000_000);
    // Copies at 0, 500, 1500 reached the server in Trying; only one reached the TU.
    assert_eq!(w.up.sent_msgs(&Msg::Req("OPTIONS")), 3);
    assert_eq!(count(&w.server_tu, |a| matches!(a, Action::PassToTu(_))), 1);
    assert_eq!(w.down.sent_msgs(&Msg::Resp(200)), 1);
    assert_eq!(w.client_got(), [Msg::Resp(200)]);
}

#[test]
fn reliable_transport_sends_each_message_once() {
    let script = vec![(0, Msg::Resp(100)), (20_000, Msg::Resp(404))];
    let mut w = World::new(invite(), true, Link::perfect(10), Link::perfect(10), script);
    w.run(1_000_000);
    assert_eq!(w.up.sent_msgs(&invite()), 1);
    assert_eq!(w.down.sent_msgs(&Msg::Resp(404)), 1);
    assert_eq!(w.up.sent_msgs(&Msg::Req("ACK")), 1);
    assert_eq!(w.client_got(), [Msg::Resp(100), Msg::Resp(404)]);
    // D = I = 0: both gone right after the exchange.
    assert!(w.client.is_terminated());
    assert!(w.server.is_none());
}
