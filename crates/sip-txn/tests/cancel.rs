//! CANCEL at the level this crate owns: CANCEL is its own non-INVITE
//! transaction, found-by-key targeting of the INVITE (§9.2), and the
//! 487-after-CANCEL / 2xx-vs-CANCEL races.

mod common;

use common::*;
use sip_txn::{
    Action, InviteClient, InviteClientState, InviteServer, InviteServerState, Method,
    NonInviteClient, NonInviteServer, NonInviteServerState, TimerConfig, Transaction, TxKey,
    TxTable,
};

const BRANCH: &str = "z9hG4bKcancel1";
const SENT_BY: &str = "uac.example.com:5060";

fn key(m: Method) -> TxKey {
    TxKey::server(BRANCH, SENT_BY, m).expect("rfc3261 branch")
}

#[test]
fn uas_side_cancel_then_487_then_ack() {
    let cfg = TimerConfig::default();
    let table: TxTable<TxKey, Transaction<Msg>> = TxTable::new(4);

    // INVITE arrives: new INVITE server transaction, 100 + 180 sent.
    table.insert(
        key(Method::Invite),
        InviteServer::new(false, &cfg, t(0)).into(),
    );
    table.with(&key(Method::Invite), |tx| {
        let s = tx.as_invite_server().expect("invite server");
        s.send_response(t(0), Msg::Resp(100), 100);
        s.send_response(t(50), Msg::Resp(180), 180);
    });

    // CANCEL arrives with the same branch: it does not match the INVITE...
    let ck = key(Method::Cancel);
    assert!(!table.contains_key(&ck));
    table.insert(
        ck.clone(),
        NonInviteServer::new(false, &cfg, t(1000)).into(),
    );
    assert_eq!(table.len(), 2);
    // ...but its target is found by the §9.2 helper.
    let target = ck.for_cancel_target();
    assert_eq!(target, key(Method::Invite));
    let sent_487 = table
        .with(&target, |tx| {
            v(tx.as_invite_server()
                .expect("invite")
                .send_response(t(1000), Msg::Resp(487), 487))
        })
        .expect("target exists");
    assert_eq!(sent_487, [Action::Transmit(Msg::Resp(487))]);
    let sent_200 = table
        .with(&ck, |tx| {
            v(tx.as_non_invite_server().expect("cancel").send_response(
                t(1000),
                Msg::Resp(200),
                200,
            ))
        })
        .expect("cancel txn");
    assert_eq!(sent_200, [Action::Transmit(Msg::Resp(200))]);

    // A retransmitted CANCEL gets the 200 again, not the 487.
    let again = table.with(&ck, |tx| {
        v(tx.as_non_invite_server()
            .expect("cancel")
            .handle_request(t(1500)))
    });
    assert_eq!(again, Some(vec![Action::Transmit(Msg::Resp(200))]));

    // The ACK for the 487 matches the INVITE server transaction.
    let ack_key = key(Method::Ack);
    table.with(&ack_key, |tx| {
        let s = tx.as_invite_server().expect("invite");
        assert!(s.handle_ack(t(1100), Msg::Req("ACK")).is_empty());
        assert_eq!(s.state(), InviteServerState::Confirmed);
    });

    // Timers drain both: I (5 s) for the INVITE, J (32 s) for the CANCEL.
    let mut terminated = 0;
    table.poll_expired(t(100_000), |_, tx| {
        if tx.handle_timeout(t(100_000)).terminated() {
            terminated += 1;
        }
    });
    assert_eq!(terminated, 2);
    assert_eq!(table.len(), 0);
    assert_eq!(table.timer_len(), 0);
}

#[test]
fn cancel_for_unknown_or_finished_invite() {
    let cfg = TimerConfig::default();
    let table: TxTable<TxKey, Transaction<Msg>> = TxTable::new(4);
    // No INVITE: the TU answers the CANCEL with 481.
    let ck = key(Method::Cancel);
    assert!(table.get(&ck.for_cancel_target()).is_none());

    // INVITE already answered 200: the 487 is refused, CANCEL still gets 200.
    let mut s = InviteServer::new(false, &cfg, t(0));
    s.send_response(t(0), Msg::Resp(200), 200);
    table.insert(key(Method::Invite), s.into());
    let refused = table
        .with(&ck.for_cancel_target(), |tx| {
            tx.as_invite_server()
                .expect("invite")
                .send_response(t(10), Msg::Resp(487), 487)
                .was_ignored()
        })
        .expect("target");
    assert!(refused);
    let mut c = NonInviteServer::new(false, &cfg, t(10));
    c.send_response(t(10), Msg::Resp(200), 200);
    assert_eq!(c.state(), NonInviteServerState::Completed);
}

#[test]
fn uac_side_cancel_transaction_and_races() {
    let cfg = TimerConfig::default();
    let (mut inv, _) = InviteClient::start(Msg::Req("INVITE"), false, &cfg, t(0));
    inv.handle_response(t(100), Msg::Resp(180), 180);
    // The proxy cancels the branch: a separate client transaction, same branch.
    let inv_key = TxKey::client(BRANCH, Method::Invite);
    let cancel_key = TxKey::client(BRANCH, Method::Cancel);
    assert_ne!(inv_key, cancel_key);
    assert_eq!(cancel_key.for_cancel_target(), inv_key);
    let (mut cancel, a) = NonInviteClient::start(Msg::Req("CANCEL"), false, &cfg, t(5000));
    assert_eq!(v(a), [Action::Transmit(Msg::Req("CANCEL"))]);

    // Race: the callee's 200 to the INVITE crosses the CANCEL.
    assert_eq!(
        v(inv.handle_response(t(5005), Msg::Resp(200), 200)),
        [Action::PassToTu(Msg::Resp(200))]
    );
    assert_eq!(inv.state(), InviteClientState::Accepted);
    // The CANCEL is still answered on its own transaction (200 or 481).
    assert_eq!(
        v(cancel.handle_response(t(5010), Msg::Resp(200), 200)),
        [Action::PassToTu(Msg::Resp(200))]
    );
    // A late 487 for the INVITE is discarded in Accepted.
    assert!(inv
        .handle_response(t(5020), Msg::Resp(487), 487)
        .was_ignored());

    // Normal case: CANCEL wins, the INVITE gets a 487 which is ACKed.
    let (mut inv, _) = InviteClient::start(Msg::Req("INVITE"), false, &cfg, t(0));
    inv.handle_response(t(100), Msg::Resp(180), 180);
    let a = v(inv.handle_response(t(5020), Msg::Resp(487), 487));
    assert_eq!(
        a,
        [
            Action::PassToTu(Msg::Resp(487)),
            Action::SendAck(Msg::Resp(487))
        ]
    );
}
