//! Differential test against Kamailio itself, for the evapi module: TCP
//! clients on the event socket, and what each one receives compared —
//! `event_route[evapi:connection-new]` relaying to all (the new one
//! included) with `$evapi(srcaddr)` and `$evapi(conidx)`, `evapi_relay`
//! from a SIP request, `evapi_set_tag` from a received message,
//! `evapi_unicast`/`evapi_multicast` by tag, `evapi_async_relay`
//! suspending an INVITE that a client's message continues with tmx's
//! `t_continue`, `evapi_close` (no connection-closed event), a client
//! leaving (connection-closed), the first free index reused, several
//! netstrings in one read and one split over two. The transaction ids
//! the async relay sends are masked.
//!
//! Without Kamailio (its evapi and tmx modules) installed the test prints
//! a notice and passes, unless `SR_KAMAILIO_REQUIRED=1` (`.ci/run` sets
//! it).

use sr_testkit::read_stream as read;
use sr_testkit::{kamailio, req, UdpPeer};
use std::io::Write;
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

const MODULES: &[&str] = &["sl", "tm", "tmx", "pv", "textops", "evapi"];

const BODY: &str = r#"modparam("evapi", "bind_addr", "127.0.0.1:__EV__")
request_route {
    if ($hdr(X-C) == $null) { sl_send_reply("200", "up"); exit; }
    if ($hdr(X-E) != $null) { evapi_relay("ev:$hdr(X-E)"); }
    if ($hdr(X-U) != $null) { evapi_unicast("uni:$hdr(X-U)", "$hdr(X-T)"); }
    if ($hdr(X-M) != $null) { evapi_multicast("multi:$hdr(X-M)", "$hdr(X-T)"); }
    if ($hdr(X-A) != $null) {
        evapi_async_relay("$T(id_index):$T(id_label)");
        exit;
    }
    sl_send_reply("200", "ok");
}
route[CONT] { t_reply("200", "continued"); }
event_route[evapi:connection-new] {
    evapi_relay("new:$evapi(srcaddr):$evapi(conidx)");
}
event_route[evapi:connection-closed] {
    evapi_relay("closed:$evapi(srcaddr):$evapi(conidx)");
}
event_route[evapi:message-received] {
    if ($evapi(msg) =~ "^tag:") {
        evapi_set_tag("$(evapi(msg){s.substr,4,0})");
        evapi_relay("tagged:$evapi(conidx)");
    } else if ($evapi(msg) == "close") {
        evapi_close();
    } else if ($evapi(msg) =~ "^cont:") {
        $var(i) = $(evapi(msg){s.select,1,:}{s.int});
        $var(l) = $(evapi(msg){s.select,2,:}{s.int});
        t_continue("$var(i)", "$var(l)", "CONT");
    } else {
        evapi_relay("echo:$evapi(msg)");
    }
}
"#;

fn connect(port: u16) -> TcpStream {
    let s = TcpStream::connect(("127.0.0.1", port)).expect("the event socket");
    s.set_read_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    s
}

fn ns(s: &str) -> Vec<u8> {
    format!("{}:{s},", s.len()).into_bytes()
}

fn settle() {
    std::thread::sleep(Duration::from_millis(300));
}

fn sip(peer: &UdpPeer, srv: SocketAddr, method: &str, call: &str, extra: &[&str]) {
    let mut h = vec!["X-C: 1"];
    h.extend_from_slice(extra);
    peer.send(
        srv,
        &req(
            method,
            "sip:x@127.0.0.1",
            peer.addr(),
            call,
            call,
            1,
            &h,
            "",
        ),
    );
}

/// An async relay's message (a netstring of `index:label`), masked: the
/// numbers differ by nature.
fn mask_ids(s: &str) -> String {
    let body = s
        .split_once(':')
        .map(|x| x.1.trim_end_matches(','))
        .unwrap_or("");
    let ok = body
        .split(':')
        .map(|n| n.parse::<u32>().is_ok())
        .collect::<Vec<_>>();
    format!("index:label as 32-bit numbers: {}", ok == [true, true])
}

fn scenario(srv: SocketAddr, ev: u16) -> Vec<String> {
    let peer = UdpPeer::new();
    kamailio::wait_until_up(&peer, srv, kamailio::PROBE, None);
    let mut out = Vec::new();
    let mut a = connect(ev);
    settle();
    out.push(format!("A new: {}", read(&mut a)));
    let mut b = connect(ev);
    settle();
    out.push(format!("A sees B: {}", read(&mut a)));
    out.push(format!("B new: {}", read(&mut b)));
    sip(&peer, srv, "OPTIONS", "ev1", &["X-E: hello"]);
    peer.recv_status(200, Duration::from_secs(2))
        .expect("answered");
    settle();
    out.push(format!("A relay: {}", read(&mut a)));
    out.push(format!("B relay: {}", read(&mut b)));
    a.write_all(&ns("tag:ta")).unwrap();
    settle();
    out.push(format!("A tagged: {}", read(&mut a)));
    out.push(format!("B tagged: {}", read(&mut b)));
    b.write_all(&[ns("tag:tb"), ns("ping")].concat()).unwrap();
    settle();
    out.push(format!("A two in one: {}", read(&mut a)));
    out.push(format!("B two in one: {}", read(&mut b)));
    sip(&peer, srv, "OPTIONS", "ev2", &["X-U: one", "X-T: tb"]);
    peer.recv_status(200, Duration::from_secs(2))
        .expect("answered");
    sip(&peer, srv, "OPTIONS", "ev3", &["X-M: two", "X-T: ta"]);
    peer.recv_status(200, Duration::from_secs(2))
        .expect("answered");
    settle();
    out.push(format!("A tags: {}", read(&mut a)));
    out.push(format!("B tags: {}", read(&mut b)));
    sip(
        &peer,
        srv,
        "INVITE",
        "ev4",
        &["X-A: 1", "Contact: <sip:a@127.0.0.1>"],
    );
    let trying = peer.recv_status(100, Duration::from_secs(2));
    out.push(format!("100 Trying: {}", trying.is_some()));
    settle();
    let ids = read(&mut a);
    out.push(format!("A async: {}", mask_ids(&ids)));
    out.push(format!("B async: {}", mask_ids(&read(&mut b))));
    let ids = ids
        .split_once(':')
        .map(|x| x.1.trim_end_matches(','))
        .unwrap_or("0:0")
        .to_string();
    b.write_all(&ns(&format!("cont:{ids}"))).unwrap();
    let done = peer.recv_status(200, Duration::from_secs(2));
    out.push(format!(
        "continued: {}",
        done.map(|r| r.text().lines().next().unwrap_or("").to_string())
            .unwrap_or_default()
    ));
    let mut c = connect(ev);
    settle();
    out.push(format!("A sees C: {}", read(&mut a)));
    out.push(format!("C new: {}", read(&mut c)));
    b.write_all(&ns("close")).unwrap();
    settle();
    out.push(format!("B closed here: {}", read(&mut b)));
    out.push(format!("A after close: {}", read(&mut a)));
    drop(c);
    settle();
    out.push(format!("A sees C leave: {}", read(&mut a)));
    let mut d = connect(ev);
    settle();
    out.push(format!("D reuses: {}", read(&mut d)));
    out.push(format!("A sees D: {}", read(&mut a)));
    a.write_all(b"3:abc,4:defg,").unwrap();
    settle();
    out.push(format!("A two netstrings: {}", read(&mut a)));
    a.write_all(b"3:ab").unwrap();
    settle();
    a.write_all(b"c,").unwrap();
    settle();
    out.push(format!("A split netstring: {}", read(&mut a)));
    out
}

#[test]
fn evapi_matches_kamailio() {
    if !kamailio::available(MODULES) {
        return;
    }
    let dir = kamailio::fresh_dir("evapi");
    let ev = sr_testkit::free_port();
    let cfg = (kamailio::head(MODULES) + BODY).replace("__EV__", &ev.to_string());
    let (want, got) = kamailio::run_scenario(&dir, &cfg, siprouter::in_tree(), &|| {}, &|srv| {
        scenario(srv, ev)
    });
    assert!(
        want.iter().any(|l| l == "A new: 15:new:127.0.0.1:0,"),
        "{want:#?}"
    );
    kamailio::conclude(&dir, &want, &got, "evapi");
}
