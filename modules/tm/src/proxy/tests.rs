//! The proxy core on a virtual clock.

use super::*;
use sr_sdk::sip_msg::Message;

fn t(ms: u64) -> Instant {
    Instant::from_millis(ms)
}

struct Rf;
impl ReplyFactory for Rf {
    fn local_reply(&self, code: u16, reason: &str) -> Option<Bytes> {
        Some(Bytes::from(format!(
            "SIP/2.0 {code} {reason}\r\nVia: SIP/2.0/UDP 10.0.0.9:5060;branch=z9hG4bKcaller\r\nFrom: <sip:a@b>;tag=fa\r\nTo: <sip:c@d>;tag=local\r\nCall-ID: c1\r\nCSeq: 7 INVITE\r\nContent-Length: 0\r\n\r\n"
        )))
    }
}

fn cfg() -> ProxyConfig {
    ProxyConfig::kamailio(
        Duration::from_secs(30),
        Duration::from_secs(120),
        Duration::from_millis(500),
        Duration::from_secs(4),
        Duration::from_secs(5),
    )
}

fn request(method: &str, branch: &str) -> Bytes {
    Bytes::from(format!(
        "{method} sip:bob@b.example SIP/2.0\r\nVia: SIP/2.0/UDP 10.0.0.1:5060;branch={branch}\r\nVia: SIP/2.0/UDP 10.0.0.9:5060;branch=z9hG4bKcaller\r\nRoute: <sip:next.example;lr>\r\nFrom: <sip:alice@a.example>;tag=fa\r\nTo: <sip:bob@b.example>\r\nCall-ID: c1\r\nCSeq: 7 {method}\r\nContent-Length: 0\r\n\r\n"
    ))
}

fn reply(code: u16, method: &str, branch: &str, to_tag: &str) -> Bytes {
    Bytes::from(format!(
        "SIP/2.0 {code} Whatever\r\nVia: SIP/2.0/UDP 10.0.0.1:5060;branch={branch}\r\nVia: SIP/2.0/UDP 10.0.0.9:5060;branch=z9hG4bKcaller\r\nFrom: <sip:alice@a.example>;tag=fa\r\nTo: <sip:bob@b.example>;tag={to_tag}\r\nCall-ID: c1\r\nCSeq: 7 {method}\r\nContent-Length: 0\r\n\r\n"
    ))
}

fn ups(e: &[Effect]) -> Vec<u16> {
    e.iter()
        .filter_map(|x| match x {
            Effect::Upstream(b) => Some(status(b)),
            _ => None,
        })
        .collect()
}

fn status(b: &Bytes) -> u16 {
    Message::parse(b).ok().and_then(|m| m.status()).unwrap_or(0)
}

fn downs(e: &[Effect]) -> Vec<(usize, String)> {
    e.iter()
        .filter_map(|x| match x {
            Effect::Downstream(i, b) => {
                let m = Message::parse(b).ok()?;
                Some((*i, m.method().map(|m| m.as_str().to_string())?))
            }
            _ => None,
        })
        .collect()
}

/// An INVITE proxy with `n` branches sent at time 0.
fn invite(n: usize) -> (Proxy, Vec<Bytes>) {
    let mut p = Proxy::new(cfg(), true, false, t(0));
    let mut reqs = Vec::new();
    for i in 0..n {
        let r = request("INVITE", &format!("z9hG4bKb{i}"));
        let (idx, e) = p.add_branch(t(0), r.clone(), false).unwrap();
        assert_eq!(idx, i);
        assert_eq!(downs(&e), [(i, "INVITE".to_string())]);
        reqs.push(r);
    }
    (p, reqs)
}

fn rx(p: &mut Proxy, now: u64, idx: usize, code: u16, method: &str, tag: &str) -> Vec<Effect> {
    let r = reply(code, method, &format!("z9hG4bKb{idx}"), tag);
    p.on_reply(t(now), idx, code, r.clone(), r, &Rf).0
}

#[test]
fn invite_retransmits_on_timer_a_and_times_out_with_408() {
    let (mut p, _) = invite(1);
    let mut sent = Vec::new();
    let mut last = Vec::new();
    while let Some(d) = p.poll_timeout() {
        if d > t(60_000) {
            break;
        }
        let e = p.on_timeout(d, &Rf);
        for (_, m) in downs(&e) {
            sent.push((d.as_millis(), m));
        }
        if !ups(&e).is_empty() {
            last = ups(&e);
            break;
        }
    }
    let times: Vec<u64> = sent.iter().map(|s| s.0).collect();
    assert_eq!(times, [500, 1500, 3500, 7500, 15500]);
    assert_eq!(last, [408], "fr_timer (30 s) ends the branch with a 408");
    assert!(p.branches()[0].timed_out);
}

#[test]
fn provisional_relayed_and_fr_inv_restarts_then_cancel_and_408() {
    let (mut p, _) = invite(1);
    assert!(
        ups(&rx(&mut p, 100, 0, 100, "INVITE", "x")).is_empty(),
        "100 not relayed"
    );
    assert_eq!(ups(&rx(&mut p, 200, 0, 180, "INVITE", "x")), [180]);
    // No retransmission after a provisional; Timer C = 120 s from the last 1xx.
    assert_eq!(p.poll_timeout(), Some(t(120_200)));
    assert_eq!(ups(&rx(&mut p, 60_000, 0, 183, "INVITE", "x")), [183]);
    assert_eq!(p.poll_timeout(), Some(t(180_000)));
    let e = p.on_timeout(t(180_000), &Rf);
    // max_inv_lifetime (180 s) and fr_inv coincide: CANCEL + 408.
    assert_eq!(downs(&e), [(0, "CANCEL".to_string())]);
    assert_eq!(ups(&e), [408]);
    // The 487 that follows is ACKed and absorbed, and so is its
    // retransmission (the ACK is built from the branch's request, kept
    // until Timer D).
    let e = rx(&mut p, 180_050, 0, 487, "INVITE", "x");
    assert_eq!(downs(&e), [(0, "ACK".to_string())]);
    assert!(ups(&e).is_empty());
    assert!(!p.branches()[0].request().is_empty());
    let e = rx(&mut p, 180_550, 0, 487, "INVITE", "x");
    assert_eq!(downs(&e), [(0, "ACK".to_string())]);
    // Timer D (32 s) ends the client transaction: the copy goes.
    p.on_timeout(t(212_050), &Rf);
    assert!(p.branches()[0].request().is_empty());
}

#[test]
fn negative_reply_over_a_stream_is_acked_once_and_the_request_goes() {
    let mut p = Proxy::new(cfg(), true, false, t(0));
    p.add_branch(t(0), request("INVITE", "z9hG4bKb0"), true)
        .unwrap();
    let e = rx(&mut p, 100, 0, 486, "INVITE", "busy");
    assert_eq!(downs(&e), [(0, "ACK".to_string())]);
    assert_eq!(ups(&e), [486]);
    // No Timer D on a stream: nothing will ask for the ACK again.
    assert!(p.branches()[0].request().is_empty());
}

#[test]
fn non2xx_is_acked_and_retransmissions_absorbed() {
    let (mut p, reqs) = invite(1);
    let e = rx(&mut p, 100, 0, 486, "INVITE", "busy");
    assert_eq!(downs(&e), [(0, "ACK".to_string())]);
    assert_eq!(ups(&e), [486]);
    // The ACK carries the INVITE's top Via, Route and the reply's To.
    let ack = e
        .iter()
        .find_map(|x| match x {
            Effect::Downstream(_, b) => Some(b.clone()),
            _ => None,
        })
        .unwrap();
    let m = Message::parse(&ack).unwrap();
    assert_eq!(m.top_via().unwrap().branch(), Some("z9hG4bKb0"));
    assert!(m.to().unwrap().tag() == Some("busy"));
    assert_eq!(m.routes().count(), 1);
    assert!(Message::parse(&reqs[0]).is_ok());
    // A retransmitted 486: ACK again, nothing upstream.
    let (e, new) = {
        let r = reply(486, "INVITE", "z9hG4bKb0", "busy");
        p.on_reply(t(300), 0, 486, r.clone(), r, &Rf)
    };
    assert!(!new);
    assert_eq!(downs(&e), [(0, "ACK".to_string())]);
    assert!(ups(&e).is_empty());
    // Upstream: the 486 is retransmitted (Timer G) until the caller's ACK.
    assert_eq!(p.poll_timeout(), Some(t(600)));
    assert_eq!(ups(&p.on_timeout(t(600), &Rf)), [486]);
    // A retransmitted INVITE gets the 486 again.
    assert_eq!(ups(&p.on_retransmission(t(700))), [486]);
    assert!(p.on_ack(t(800), Bytes::from_static(b"ACK")).is_empty());
    assert!(
        ups(&p.on_timeout(t(1600), &Rf)).is_empty(),
        "no more retransmissions"
    );
    // Then everything ends: wt_timer after the ACK, Timer D downstream.
    let mut now = 800;
    while let Some(d) = p.poll_timeout() {
        now = d.as_millis();
        p.on_timeout(d, &Rf);
    }
    assert!(p.is_done());
    assert!(now <= 5_800 + 100, "{now}");
}

#[test]
fn parallel_fork_2xx_relayed_at_once_other_branch_cancelled() {
    let (mut p, _) = invite(2);
    assert_eq!(ups(&rx(&mut p, 50, 1, 180, "INVITE", "b1")), [180]);
    let e = rx(&mut p, 100, 0, 200, "INVITE", "b0");
    assert_eq!(ups(&e), [200]);
    assert_eq!(downs(&e), [(1, "CANCEL".to_string())]);
    let cancel = e
        .iter()
        .find_map(|x| match x {
            Effect::Downstream(1, b) => Some(b.clone()),
            _ => None,
        })
        .unwrap();
    let m = Message::parse(&cancel).unwrap();
    assert!(m
        .value(sr_sdk::sip_msg::HeaderName::Reason)
        .unwrap()
        .contains("cause=200"));
    // A second 2xx (another fork, or a retransmission) is relayed too.
    assert_eq!(ups(&rx(&mut p, 120, 0, 200, "INVITE", "b0")), [200]);
    // The CANCEL gets its 200, the branch its 487 (ACKed, not relayed).
    let r = reply(200, "CANCEL", "z9hG4bKb1", "b1");
    assert!(p.on_cancel_reply(t(150), 1, 200, r));
    let e = rx(&mut p, 160, 1, 487, "INVITE", "b1");
    assert_eq!(downs(&e), [(1, "ACK".to_string())]);
    assert!(ups(&e).is_empty());
    while let Some(d) = p.poll_timeout() {
        p.on_timeout(d, &Rf);
    }
    assert!(p.is_done());
}

#[test]
fn cancel_before_any_reply_waits_for_a_provisional() {
    let (mut p, _) = invite(1);
    let e = p.on_cancel(t(10));
    assert!(e.is_empty(), "no CANCEL before a provisional");
    assert!(p.is_canceled());
    // The INVITE keeps being retransmitted.
    assert_eq!(
        downs(&p.on_timeout(t(500), &Rf)),
        [(0, "INVITE".to_string())]
    );
    let e = rx(&mut p, 600, 0, 100, "INVITE", "x");
    assert_eq!(downs(&e), [(0, "CANCEL".to_string())]);
    let e = rx(&mut p, 700, 0, 487, "INVITE", "x");
    assert_eq!(ups(&e), [487]);
    assert!(p
        .add_branch(t(800), request("INVITE", "z9hG4bKz"), false)
        .is_none());
}

#[test]
fn cancel_after_1xx_is_immediate_and_after_final_does_nothing() {
    let (mut p, _) = invite(1);
    rx(&mut p, 10, 0, 180, "INVITE", "x");
    assert_eq!(downs(&p.on_cancel(t(20))), [(0, "CANCEL".to_string())]);
    // A lost CANCEL is retransmitted (Timer E).
    assert_eq!(
        downs(&p.on_timeout(t(520), &Rf)),
        [(0, "CANCEL".to_string())]
    );

    let (mut q, _) = invite(1);
    rx(&mut q, 10, 0, 404, "INVITE", "x");
    assert!(q.on_cancel(t(20)).is_empty());
    assert!(!q.is_canceled());
}

#[test]
fn best_reply_waits_for_all_branches() {
    let (mut p, _) = invite(3);
    assert!(ups(&rx(&mut p, 10, 0, 486, "INVITE", "a")).is_empty());
    assert!(ups(&rx(&mut p, 20, 1, 404, "INVITE", "b")).is_empty());
    // A reordered 180 after a final on the same branch is not relayed.
    assert!(ups(&rx(&mut p, 25, 0, 180, "INVITE", "a")).is_empty());
    assert_eq!(ups(&rx(&mut p, 30, 2, 302, "INVITE", "c")), [302]);
    assert_eq!(p.winner(), Some(2));
}

#[test]
fn six_xx_cancels_the_others() {
    let (mut p, _) = invite(2);
    rx(&mut p, 10, 1, 180, "INVITE", "b");
    let e = rx(&mut p, 20, 0, 603, "INVITE", "a");
    assert_eq!(
        downs(&e),
        [(0, "ACK".to_string()), (1, "CANCEL".to_string())]
    );
    assert!(ups(&e).is_empty(), "wait for the cancelled branch");
    assert_eq!(ups(&rx(&mut p, 30, 1, 487, "INVITE", "b")), [603]);
}

#[test]
fn failure_route_serial_fork_with_reply_mode_3() {
    let (mut p, _) = invite(1);
    p.set_failure_armed(true);
    let e = rx(&mut p, 10, 0, 486, "INVITE", "a");
    assert!(e.contains(&Effect::RunFailure));
    assert!(ups(&e).is_empty());
    assert_eq!(p.winner(), Some(0));
    // failure_route: new leg, new branch.
    p.new_leg();
    let (idx, _) = p
        .add_branch(t(11), request("INVITE", "z9hG4bKb1"), false)
        .unwrap();
    assert_eq!(idx, 1);
    assert!(p.failure_done(t(12), &Rf).is_empty());
    // The second leg fails with 500: mode 3 relays it, not the older 486.
    assert_eq!(ups(&rx(&mut p, 20, 1, 500, "INVITE", "b")), [500]);
}

#[test]
fn failure_route_reply_mode_0_keeps_older_replies() {
    let mut c = cfg();
    c.failure_reply_mode = 0;
    let mut p = Proxy::new(c, true, false, t(0));
    p.add_branch(t(0), request("INVITE", "z9hG4bKb0"), false);
    p.set_failure_armed(true);
    rx(&mut p, 10, 0, 486, "INVITE", "a");
    p.new_leg();
    p.add_branch(t(11), request("INVITE", "z9hG4bKb1"), false);
    p.failure_done(t(12), &Rf);
    assert_eq!(ups(&rx(&mut p, 20, 1, 500, "INVITE", "b")), [486]);
}

#[test]
fn failure_route_without_new_branch_relays_winner() {
    let (mut p, _) = invite(1);
    p.set_failure_armed(true);
    rx(&mut p, 10, 0, 404, "INVITE", "a");
    assert_eq!(ups(&p.failure_done(t(11), &Rf)), [404]);
}

#[test]
fn dropped_in_failure_route_relays_nothing_and_ends_with_its_lifetime() {
    let (mut p, _) = invite(1);
    p.set_failure_armed(true);
    rx(&mut p, 10, 0, 404, "INVITE", "a");
    p.drop_transaction(500);
    assert!(ups(&p.failure_done(t(11), &Rf)).is_empty());
    assert_eq!(p.final_sent(), 500);
    // The caller's retransmissions get nothing; the server side waits for
    // the end of the transaction's lifetime (180 s, max_inv_lifetime), then ends.
    assert!(ups(&p.on_retransmission(t(500))).is_empty());
    assert!(!p.is_done());
    let mut last = t(0);
    while !p.is_done() {
        last = p.poll_timeout().expect("a deadline while not over");
        assert!(ups(&p.on_timeout(last, &Rf)).is_empty());
    }
    assert_eq!(last, t(180_000), "over at the end of its lifetime");
}

#[test]
fn timeout_runs_failure_route_with_408() {
    let (mut p, _) = invite(1);
    p.set_failure_armed(true);
    let mut saw = false;
    while let Some(d) = p.poll_timeout() {
        let e = p.on_timeout(d, &Rf);
        if e.contains(&Effect::RunFailure) {
            saw = true;
            assert_eq!(d, t(30_000));
            break;
        }
    }
    assert!(saw);
    let w = p.winner().unwrap();
    assert_eq!(p.branches()[w].final_code, 408);
    assert!(p.branches()[w].faked);
    assert_eq!(ups(&p.failure_done(t(30_001), &Rf)), [408]);
}

#[test]
fn noisy_ctimer_off_drops_silently() {
    let mut c = cfg();
    c.noisy_ctimer = false;
    let mut p = Proxy::new(c, true, false, t(0));
    p.add_branch(t(0), request("INVITE", "z9hG4bKb0"), false);
    let mut up_codes = Vec::new();
    while let Some(d) = p.poll_timeout() {
        up_codes.extend(ups(&p.on_timeout(d, &Rf)));
    }
    assert!(up_codes.is_empty());
    assert!(p.is_done());
}

#[test]
fn non_invite_over_tcp_no_retransmissions_first_final_wins() {
    let mut p = Proxy::new(cfg(), false, true, t(0));
    let (_, e) = p
        .add_branch(t(0), request("MESSAGE", "z9hG4bKb0"), true)
        .unwrap();
    assert_eq!(downs(&e).len(), 1);
    p.add_branch(t(0), request("MESSAGE", "z9hG4bKb1"), true);
    // Reliable: nothing until fr_timer.
    assert_eq!(p.poll_timeout(), Some(t(30_000)));
    assert_eq!(ups(&rx(&mut p, 10, 1, 202, "MESSAGE", "b")), [202]);
    assert!(ups(&rx(&mut p, 20, 0, 200, "MESSAGE", "a")).is_empty());
    assert!(p.on_cancel(t(30)).is_empty(), "no CANCEL for non-INVITE");
    while let Some(d) = p.poll_timeout() {
        p.on_timeout(d, &Rf);
    }
    assert!(p.is_done());
}

#[test]
fn lost_reply_then_retransmitted_request_gets_last_provisional() {
    let (mut p, _) = invite(1);
    rx(&mut p, 10, 0, 180, "INVITE", "a");
    // The caller lost our 180 and retransmits the INVITE.
    assert_eq!(ups(&p.on_retransmission(t(500))), [180]);
}

#[test]
fn aggregated_challenges_from_two_branches() {
    let (mut p, _) = invite(2);
    let a = Bytes::from_static(b"SIP/2.0 401 Unauthorized\r\nVia: SIP/2.0/UDP 10.0.0.9:5060;branch=z9hG4bKcaller\r\nFrom: <sip:a@b>;tag=fa\r\nTo: <sip:c@d>;tag=1\r\nCall-ID: c1\r\nCSeq: 7 INVITE\r\nWWW-Authenticate: Digest realm=\"one\", nonce=\"1\"\r\nContent-Length: 0\r\n\r\n");
    let b = Bytes::from_static(b"SIP/2.0 401 Unauthorized\r\nVia: SIP/2.0/UDP 10.0.0.9:5060;branch=z9hG4bKcaller\r\nFrom: <sip:a@b>;tag=fa\r\nTo: <sip:c@d>;tag=2\r\nCall-ID: c1\r\nCSeq: 7 INVITE\r\nWWW-Authenticate: Digest realm=\"two\", nonce=\"2\"\r\nContent-Length: 0\r\n\r\n");
    let raw0 = reply(401, "INVITE", "z9hG4bKb0", "1");
    let raw1 = reply(401, "INVITE", "z9hG4bKb1", "2");
    p.on_reply(t(10), 0, 401, raw0, a, &Rf);
    let (e, _) = p.on_reply(t(20), 1, 401, raw1, b, &Rf);
    let out = e
        .iter()
        .find_map(|x| match x {
            Effect::Upstream(b) => Some(b.clone()),
            _ => None,
        })
        .unwrap();
    let m = Message::parse(&out).unwrap();
    let realms: Vec<_> = m
        .headers_named(sr_sdk::sip_msg::HeaderName::WwwAuthenticate)
        .map(|h| h.value.to_string())
        .collect();
    assert_eq!(realms.len(), 2, "{realms:?}");
    // A reply of ours, as Kamailio's: not either branch's.
    assert_eq!(m.to_tag().ok().flatten(), Some("local"));
}

#[test]
fn suspended_request_times_out_with_408_on_fr_timer() {
    let mut p = Proxy::new(cfg(), true, false, t(0));
    assert_eq!(p.suspend(t(0)), Some(0));
    assert!(p.is_suspended());
    assert_eq!(p.poll_timeout(), Some(t(30_000)));
    assert!(ups(&p.on_timeout(t(29_999), &Rf)).is_empty());
    assert_eq!(ups(&p.on_timeout(t(30_000), &Rf)), vec![408]);
    assert!(!p.is_suspended());
    assert!(!p.resume(), "a timed-out request is not continued");
}

#[test]
fn continued_request_relays_or_ends_with_500() {
    let mut p = Proxy::new(cfg(), true, false, t(0));
    p.suspend(t(0));
    assert!(p.resume());
    assert!(!p.resume(), "continued once only");
    p.new_leg();
    let (i, _) = p
        .add_branch(t(10), request("INVITE", "z9hG4bK1"), false)
        .unwrap();
    let (e, _) = p.on_reply(
        t(20),
        i,
        486,
        reply(486, "INVITE", "z9hG4bK1", "u"),
        reply(486, "INVITE", "z9hG4bK1", "u"),
        &Rf,
    );
    assert_eq!(
        ups(&e),
        vec![486],
        "the real reply wins over the blind branch"
    );
    let mut q = Proxy::new(cfg(), true, false, t(0));
    q.suspend(t(0));
    assert!(q.resume());
    assert_eq!(ups(&q.failure_done(t(5), &Rf)), vec![500]);
}

#[test]
fn cancelled_suspended_request_ends_with_487() {
    let mut p = Proxy::new(cfg(), true, false, t(0));
    p.suspend(t(0));
    assert!(p.on_cancel(t(100)).is_empty());
    assert_eq!(p.poll_timeout(), Some(t(100)));
    assert_eq!(ups(&p.on_timeout(t(100), &Rf)), vec![487]);
}

#[test]
fn a_final_reply_lets_the_branch_request_go_except_to_ack_a_negative_invite_reply() {
    // A 2xx to an INVITE: that branch's request goes, the other branch's
    // stays (its CANCEL is built from it).
    let (mut p, _) = invite(2);
    assert_eq!(ups(&rx(&mut p, 50, 1, 180, "INVITE", "b1")), [180]);
    let e = rx(&mut p, 100, 0, 200, "INVITE", "b0");
    assert_eq!(downs(&e), [(1, "CANCEL".to_string())]);
    assert!(p.branches()[0].request().is_empty());
    assert!(!p.branches()[1].request().is_empty());

    // A 486 to an INVITE: kept, and a retransmitted 486 is ACKed again.
    let (mut p, _) = invite(1);
    rx(&mut p, 100, 0, 486, "INVITE", "busy");
    assert!(!p.branches()[0].request().is_empty());
    assert_eq!(
        downs(&rx(&mut p, 300, 0, 486, "INVITE", "busy")),
        [(0, "ACK".to_string())]
    );

    // A non-INVITE: gone after its final reply; nothing is sent downstream
    // again while the transaction waits to end.
    let mut p = Proxy::new(cfg(), false, false, t(0));
    p.add_branch(t(0), request("BYE", "z9hG4bKb0"), false)
        .unwrap();
    assert_eq!(ups(&rx(&mut p, 50, 0, 200, "BYE", "x")), [200]);
    assert!(p.branches()[0].request().is_empty());
    while let Some(d) = p.poll_timeout() {
        assert!(downs(&p.on_timeout(d, &Rf)).is_empty());
    }
    assert!(p.is_done());
}
