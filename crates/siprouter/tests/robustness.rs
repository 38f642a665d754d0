//! Bad input loses nothing: thousands of mutated and truncated messages
//! (requests and replies, UDP and TCP) sent to the default configuration
//! never cause a panic, and the server keeps answering.

use sr_testkit::{default_config, free_port, fresh_db, req, TcpPeer, TestServer, UdpPeer};
use std::sync::atomic::Ordering;
use std::time::Duration;

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

fn mutate(rng: &mut Rng, base: &[u8]) -> Vec<u8> {
    let mut m = base.to_vec();
    for _ in 0..1 + rng.below(6) {
        if m.is_empty() {
            break;
        }
        let i = rng.below(m.len());
        match rng.below(7) {
            0 => m[i] = rng.next() as u8,
            1 => m.truncate(i),
            2 => m.insert(
                i,
                [b'\r', b'\n', b' ', b':', b';', b'<', 0, 0xff][rng.below(8)],
            ),
            3 => {
                let j = (i + rng.below(40)).min(m.len());
                m.drain(i..j);
            }
            4 => {
                let j = (i + rng.below(60)).min(m.len());
                let chunk = m[i..j].to_vec();
                m.splice(i..i, chunk);
            }
            5 => m[i] = b'\n',
            _ => m.extend_from_slice(b"\r\nX: y\r\n\r\n"),
        }
    }
    m
}

#[test]
fn mutated_messages_never_stop_the_server() {
    let cfg = default_config(&fresh_db("robust"), free_port());
    let srv = TestServer::start(&cfg, siprouter::in_tree());
    let peer = UdpPeer::new();
    let me = format!("sip:127.0.0.1:{}", srv.port);
    let bases: Vec<Vec<u8>> = vec![
        req("INVITE", &format!("sip:bob@127.0.0.1:{}", srv.port), peer.addr(), "i", "c1", 1, &["Contact: <sip:a@127.0.0.1:9>", "Content-Type: application/sdp"], "v=0\r\n").into_bytes(),
        req("REGISTER", &me, peer.addr(), "r", "c2", 1, &["Contact: <sip:a@127.0.0.1:9>;expires=60", "Authorization: Digest username=\"a\", realm=\"b\", nonce=\"n\", uri=\"sip:b\", response=\"0\""], "").into_bytes(),
        req("OPTIONS", &me, peer.addr(), "o", "c3", 1, &["Route: <sip:127.0.0.1;lr>"], "").into_bytes(),
        format!("SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP 127.0.0.1:{};branch=z9hG4bKx\r\nVia: SIP/2.0/UDP 127.0.0.1:9;branch=z9hG4bKy\r\nFrom: <sip:a@b>;tag=1\r\nTo: <sip:c@d>;tag=2\r\nCall-ID: c4\r\nCSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n", srv.port).into_bytes(),
    ];
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    for i in 0..3000 {
        let base = &bases[i % bases.len()];
        let m = mutate(&mut rng, base);
        let _ = peer.sock.send_to(&m, srv.addr());
        if i % 200 == 0 {
            // Drain replies now and then so the socket buffer never fills.
            while peer.recv(Duration::from_millis(1)).is_some() {}
        }
    }
    let mut tcp = TcpPeer::connect(srv.addr());
    for _ in 0..300 {
        let k = rng.below(3);
        let m = mutate(&mut rng, &bases[k]);
        tcp.send(&String::from_utf8_lossy(&m));
    }
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(
        srv.rt.panics.load(Ordering::Relaxed),
        0,
        "a message caused a panic"
    );
    // Every UDP worker still answers (the kernel spreads source ports).
    for n in 0..8 {
        let p = UdpPeer::new();
        p.send(
            srv.addr(),
            &req(
                "OPTIONS",
                &me,
                p.addr(),
                &format!("ok{n}"),
                &format!("ok{n}"),
                1,
                &[],
                "",
            ),
        );
        let r = p.recv(Duration::from_secs(3)).expect("still answering");
        assert_eq!(r.status(), Some(200));
    }
    // And over a fresh TCP connection.
    let mut t = TcpPeer::connect(srv.addr());
    t.send(
        &req("OPTIONS", &me, t.addr(), "tcpok", "tcpok", 1, &[], "")
            .replace("SIP/2.0/UDP", "SIP/2.0/TCP"),
    );
    assert_eq!(
        t.recv(Duration::from_secs(3))
            .expect("TCP still answered")
            .status(),
        Some(200)
    );
}
