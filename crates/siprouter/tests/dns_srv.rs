//! RFC 3263: a host name without a port is located with DNS SRV. A test
//! name server on 127.0.0.1 answers the SRV query; the request reaches the
//! UAS on the port the record names. The resolver is chosen with an
//! environment variable, the process's: this file is a test binary of its
//! own (not part of `suite`), and the variable is removed when the test
//! ends.

use sr_testkit::{req, TestServer, UdpPeer};
use std::net::UdpSocket;
use std::time::Duration;

/// Answers every SRV query with one record pointing at 127.0.0.1:`port`.
fn fake_dns(port: u16) -> (UdpSocket, std::thread::JoinHandle<Vec<String>>) {
    let s = UdpSocket::bind("127.0.0.1:0").unwrap();
    let s2 = s.try_clone().unwrap();
    s2.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let h = std::thread::spawn(move || {
        let mut asked = Vec::new();
        let mut buf = [0u8; 512];
        while let Ok((n, from)) = s2.recv_from(&mut buf) {
            let q = &buf[..n];
            // The question name, for the assertion.
            let mut i = 12;
            let mut name = Vec::new();
            while i < n && q[i] != 0 {
                let l = q[i] as usize;
                name.push(String::from_utf8_lossy(&q[i + 1..(i + 1 + l).min(n)]).to_string());
                i += 1 + l;
            }
            let name = name.join(".");
            if !name.ends_with(".sip.test.invalid") {
                continue;
            }
            asked.push(name);
            let mut r = q.to_vec();
            r[2] = 0x81;
            r[3] = 0x80;
            r[7] = 1;
            r.extend_from_slice(&[0xc0, 12, 0, 33, 0, 1, 0, 0, 0, 60]);
            let mut rd = vec![0, 1, 0, 10];
            rd.extend_from_slice(&port.to_be_bytes());
            for l in ["127", "0", "0", "1"] {
                rd.push(l.len() as u8);
                rd.extend_from_slice(l.as_bytes());
            }
            rd.push(0);
            r.extend_from_slice(&(rd.len() as u16).to_be_bytes());
            r.extend_from_slice(&rd);
            let _ = s2.send_to(&r, from);
            if !asked.is_empty() {
                break;
            }
        }
        asked
    });
    (s, h)
}

/// Removes `SIPROUTER_DNS_SERVER` when dropped, even when the test fails.
struct DnsServerVar;

impl DnsServerVar {
    fn set(addr: std::net::SocketAddr) -> DnsServerVar {
        std::env::set_var("SIPROUTER_DNS_SERVER", addr.to_string());
        DnsServerVar
    }
}

impl Drop for DnsServerVar {
    fn drop(&mut self) {
        std::env::remove_var("SIPROUTER_DNS_SERVER");
    }
}

#[test]
fn srv_locates_the_next_hop() {
    let uas = UdpPeer::new();
    let (dns, answered) = fake_dns(uas.addr().port());
    let _var = DnsServerVar::set(dns.local_addr().unwrap());
    let srv = TestServer::start(
        "listen=udp:127.0.0.1:{PORT}\nchildren=1\nloadmodule \"sl\"\nrequest_route {\n  forward();\n}\n",
        siprouter::in_tree(),
    );
    let uac = UdpPeer::new();
    let m = req(
        "MESSAGE",
        "sip:bob@sip.test.invalid",
        uac.addr(),
        "srv1",
        "srv-call",
        1,
        &[],
        "",
    );
    uac.send(srv.addr(), &m);
    let got = uas
        .recv(Duration::from_secs(3))
        .expect("UAS reached through SRV");
    assert_eq!(
        got.msg.msg().request_uri().unwrap().raw,
        "sip:bob@sip.test.invalid"
    );
    assert_eq!(
        answered.join().unwrap(),
        vec!["_sip._udp.sip.test.invalid".to_string()]
    );
}
