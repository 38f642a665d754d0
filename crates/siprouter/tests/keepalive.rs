//! End-to-end: the keepalive module over real UDP — what the Kamailio
//! differential test (`kamailio_parity_keepalive.rs`) leaves out: a
//! destination added from the script is removed after `delete_counter`
//! failed pings, one from a `destination` parameter stays, and
//! `ping_from`; the RPC commands (`keepalive.list/get/add/del/flush`)
//! with the times Kamailio 5.6.3 shows swapped.

use sr_testkit::{TestServer, UdpPeer};
use std::net::UdpSocket;
use std::time::{Duration, Instant};

fn ask(srv: &TestServer, udp: &UdpPeer, n: u32, extra: &str) -> String {
    let call = format!("k-{n}");
    udp.send(
        srv.addr(),
        &format!(
            "OPTIONS sip:x@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP {};branch=z9hG4bK{call}\r\nFrom: <sip:a@b>;tag=1\r\nTo: <sip:x@y>\r\nCall-ID: {call}\r\nCSeq: 1 OPTIONS\r\n{extra}Content-Length: 0\r\n\r\n",
            udp.addr()
        ),
    );
    udp.recv_matching(Duration::from_secs(3), |r| {
        r.msg.msg().call_id().ok() == Some(call.as_str())
    })
    .and_then(|r| r.header("X-A"))
    .unwrap_or_default()
}

#[test]
fn script_destinations_go_after_delete_counter_failures() {
    // Two silent destinations: one configured, one added by the script.
    let silent = UdpSocket::bind("127.0.0.1:0").unwrap();
    let added = UdpSocket::bind("127.0.0.1:0").unwrap();
    let (a, b) = (
        silent.local_addr().unwrap().port(),
        added.local_addr().unwrap().port(),
    );
    let cfg = format!(
        r#"
listen=udp:127.0.0.1:{{PORT}}
children=1
loadmodule "tm"
loadmodule "sl"
loadmodule "pv"
loadmodule "textops"
loadmodule "keepalive"
modparam("tm", "fr_timer", 500)
modparam("keepalive", "ping_interval", 1)
modparam("keepalive", "delete_counter", 2)
modparam("keepalive", "ping_from", "sip:monitor@example.org")
modparam("keepalive", "destination", "sip:127.0.0.1:{a}")
request_route {{
    if ($hdr(X-Add) != $null) {{ ka_add_destination("$hdr(X-Add)", "me"); }}
    ka_is_alive("127.0.0.1:{a}"); $var(a) = $rc;
    ka_is_alive("127.0.0.1:{b}"); $var(b) = $rc;
    append_to_reply("X-A: $var(a)|$var(b)\r\n");
    sl_send_reply("200", "ok");
}}
"#
    );
    let srv = TestServer::start(&cfg, siprouter::in_tree());
    let udp = UdpPeer::new();
    assert_eq!(
        ask(&srv, &udp, 1, &format!("X-Add: sip:127.0.0.1:{b}\r\n")),
        "1|1",
        "not answered yet: up, as Kamailio"
    );
    // The OPTIONS comes from ping_from.
    let mut buf = [0u8; 4096];
    added
        .set_read_timeout(Some(Duration::from_secs(3)))
        .unwrap();
    let (n, _) = added.recv_from(&mut buf).expect("an OPTIONS");
    let text = String::from_utf8_lossy(&buf[..n]).into_owned();
    assert!(
        text.starts_with(&format!("OPTIONS sip:127.0.0.1:{b} SIP/2.0\r\n")),
        "{text}"
    );
    assert!(
        text.contains("From: <sip:monitor@example.org>;tag="),
        "{text}"
    );
    // Two failed pings later the added one is gone, the configured one
    // stays (down).
    let deadline = Instant::now() + Duration::from_secs(8);
    let mut last = String::new();
    let mut i = 2;
    while Instant::now() < deadline {
        last = ask(&srv, &udp, i, "");
        if last == "2|-1" {
            break;
        }
        i += 1;
        std::thread::sleep(Duration::from_millis(200));
    }
    assert_eq!(last, "2|-1");
}

/// Answers every OPTIONS on `sock` with 200 until `until`.
fn answer_200(sock: UdpSocket, until: Instant) {
    sock.set_read_timeout(Some(Duration::from_millis(50)))
        .unwrap();
    let mut buf = [0u8; 4096];
    while Instant::now() < until {
        let Ok((n, from)) = sock.recv_from(&mut buf) else {
            continue;
        };
        let text = String::from_utf8_lossy(&buf[..n]).into_owned();
        let keep: Vec<&str> = text
            .split("\r\n")
            .filter(|l| {
                ["Via:", "From:", "Call-ID:", "CSeq:", "To:"]
                    .iter()
                    .any(|h| l.starts_with(h))
            })
            .collect();
        let answer = format!(
            "SIP/2.0 200 OK\r\n{}\r\nContent-Length: 0\r\n\r\n",
            keep.join("\r\n")
        );
        let _ = sock.send_to(answer.as_bytes(), from);
    }
}

#[test]
fn rpc_lists_gets_adds_deletes_and_flushes() {
    use sr_sdk::serde_json::json;
    let silent = UdpSocket::bind("127.0.0.1:0").unwrap();
    let up = UdpSocket::bind("127.0.0.1:0").unwrap();
    let (a, b) = (
        silent.local_addr().unwrap().port(),
        up.local_addr().unwrap().port(),
    );
    std::thread::spawn(move || answer_200(up, Instant::now() + Duration::from_secs(20)));
    let cfg = format!(
        r#"
listen=udp:127.0.0.1:{{PORT}}
children=1
loadmodule "tm"
loadmodule "sl"
loadmodule "keepalive"
modparam("tm", "fr_timer", 500)
modparam("keepalive", "ping_interval", 1)
modparam("keepalive", "destination", "127.0.0.1:{a}")
request_route {{ sl_send_reply("200", "ok"); }}
"#
    );
    let srv = TestServer::start(&cfg, siprouter::in_tree());
    let never = sr_sdk::localtime::ctime(0) + "\n";
    let (da, db) = (format!("sip:127.0.0.1:{a}"), format!("sip:127.0.0.1:{b}"));
    // Added without a scheme, found by either form.
    assert_eq!(
        srv.rpc(
            "keepalive.add",
            &[json!(format!("127.0.0.1:{b}")), json!("ops")]
        ),
        Ok(json!("Ok. Destination added."))
    );
    let fresh = srv
        .rpc("keepalive.get", &[json!(db), json!("ops")])
        .unwrap();
    assert_eq!(fresh, json!({"uri": db, "owner": "ops", "state": 0}));
    // Both pinged: the silent one down, the answering one up.
    let deadline = Instant::now() + Duration::from_secs(6);
    let list = loop {
        let list = srv.rpc("keepalive.list", &[]).unwrap();
        let states: Vec<i64> = list
            .as_array()
            .unwrap()
            .iter()
            .map(|d| d["state"].as_i64().unwrap())
            .collect();
        if states == [1, 2] || Instant::now() > deadline {
            break list;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let list = list.as_array().unwrap();
    assert_eq!(list.len(), 2, "{list:?}");
    // Newest first.
    assert_eq!(
        (list[0]["uri"].as_str(), list[0]["owner"].as_str()),
        (Some(db.as_str()), Some("ops"))
    );
    assert_eq!(
        (list[1]["uri"].as_str(), list[1]["owner"].as_str()),
        (Some(da.as_str()), Some("_params"))
    );
    assert_eq!(list[0]["state"], json!(1), "{list:?}");
    assert_eq!(list[1]["state"], json!(2), "{list:?}");
    for d in list {
        assert_ne!(d["last checked"], json!(never), "{d}");
    }
    assert_ne!(list[0]["last up"], json!(never), "up: last up set");
    assert_eq!(list[0]["last down"], json!(never), "up: never down");
    assert_eq!(list[1]["last up"], json!(never), "down: never up");
    assert_ne!(list[1]["last down"], json!(never), "down: last down set");
    // Errors, as Kamailio's.
    let err =
        |m: &str, p: &[sr_sdk::serde_json::Value]| srv.rpc(m, p).map_err(|e| (e.code, e.message));
    assert_eq!(
        err("keepalive.get", &[json!(da)]),
        Err((500, "Not enough parameters or wrong format".into()))
    );
    assert_eq!(
        err("keepalive.add", &[json!("sip:"), json!("ops")]),
        Err((500, "couldn't add data to list".into()))
    );
    assert_eq!(
        err("keepalive.del", &[json!(da), json!("ops")]),
        Err((500, "couldn't delete data from list".into()))
    );
    // Deleted by the bare form too.
    assert_eq!(
        srv.rpc(
            "keepalive.del",
            &[json!(format!("127.0.0.1:{b}")), json!("ops")]
        ),
        Ok(json!("Ok. Destination removed."))
    );
    assert_eq!(
        err("keepalive.get", &[json!(db), json!("ops")]),
        Err((500, "couldn't get data from list".into()))
    );
    assert_eq!(
        srv.rpc("keepalive.flush", &[]),
        Ok(json!("Ok. Destination list flushed."))
    );
    assert_eq!(srv.rpc("keepalive.list", &[]), Ok(json!([])));
}
