//! http_async_client end to end, against a real HTTP server on 127.0.0.1:
//! a request's transaction suspended while the query goes out and
//! continued in the callback route with the answer (status, reason,
//! headers, body, the headers and body the script set); a timeout and a
//! refused connection seen as `$http_ok` 0 with curl's text; a query that
//! does not suspend (the script goes on, the route runs later on a faked
//! request); the statistics. (Kamailio's module is not packaged in
//! Debian, so there is no side-by-side comparison.)

use sr_testkit::{free_port, TestServer, UdpPeer};
use std::io::{Read, Write};
use std::net::TcpListener;
use std::time::Duration;

/// An HTTP server: `/echo` answers 201 with the request's method, its
/// `X-Foo` header and body; `/slow` answers after a second; anything
/// else 200 with a fixed body.
fn server() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for s in l.incoming() {
            let Ok(mut s) = s else { continue };
            std::thread::spawn(move || {
                let mut buf = [0u8; 4096];
                let mut got = Vec::new();
                let head_end = loop {
                    if let Some(i) = got.windows(4).position(|w| w == b"\r\n\r\n") {
                        break i + 4;
                    }
                    match s.read(&mut buf) {
                        Ok(0) | Err(_) => return,
                        Ok(n) => got.extend_from_slice(&buf[..n]),
                    }
                };
                let head = String::from_utf8_lossy(&got[..head_end]).into_owned();
                let header = |name: &str| {
                    head.split("\r\n")
                        .find_map(|l| {
                            let (n, v) = l.split_once(':')?;
                            n.eq_ignore_ascii_case(name).then(|| v.trim().to_string())
                        })
                        .unwrap_or_default()
                };
                let len: usize = header("Content-Length").parse().unwrap_or(0);
                while got.len() < head_end + len {
                    match s.read(&mut buf) {
                        Ok(0) | Err(_) => break,
                        Ok(n) => got.extend_from_slice(&buf[..n]),
                    }
                }
                let body = String::from_utf8_lossy(&got[head_end..]).into_owned();
                let mut words = head.split(' ');
                let method = words.next().unwrap_or("").to_string();
                let path = words.next().unwrap_or("").to_string();
                let answer = match path.as_str() {
                    "/echo" => format!(
                        "HTTP/1.1 201 Made It\r\nX-Method: {method}\r\nX-Got: {}\r\nX-Auth: {}\r\nContent-Length: {}\r\n\r\n{body}",
                        header("X-Foo"),
                        header("Authorization"),
                        body.len()
                    ),
                    "/slow" => {
                        std::thread::sleep(Duration::from_secs(1));
                        "HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nlate".to_string()
                    }
                    _ => "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello".to_string(),
                };
                let _ = s.write_all(answer.as_bytes());
            });
        }
    });
    port
}

fn cfg(port: u16, closed: u16) -> String {
    format!(
        r#"listen=udp:127.0.0.1:{{PORT}}
loadmodule "sl"
loadmodule "tm"
loadmodule "pv"
loadmodule "textops"
loadmodule "http_async_client"
modparam("http_async_client", "workers", 2)
modparam("http_async_client", "connection_timeout", 300)
request_route {{
    if ($rU == "check") {{
        append_to_reply("X-S: $shv(notx)\r\n");
        sl_send_reply("200", "checked");
        exit;
    }}
    if ($rU == "nosuspend") {{
        t_newtran();
        $http_req(suspend) = 0;
        http_async_query("http://127.0.0.1:{port}/ok", "NOTX");
        $var(rc) = $rc;
        append_to_reply("X-Rc: $var(rc)\r\n");
        t_reply("202", "going on");
        exit;
    }}
    t_newtran();
    if ($rU == "echo") {{
        $http_req(hdr) = "X-Foo: " + $ci;
        $http_req(body) = "payload";
        $http_req(method) = "PUT";
        $http_req(username) = "u";
        $http_req(password) = "p";
        http_async_query("http://127.0.0.1:{port}/echo", "HTTP_REPLY");
    }} else if ($rU == "again") {{
        http_async_query("http://127.0.0.1:{port}/echo", "HTTP_REPLY");
    }} else if ($rU == "slow") {{
        $http_req(timeout) = 200;
        http_async_query("http://127.0.0.1:{port}/slow", "HTTP_REPLY");
    }} else {{
        http_async_query("http://127.0.0.1:{closed}/", "HTTP_REPLY");
    }}
    t_reply("500", "not suspended");
}}
route[HTTP_REPLY] {{
    append_to_reply("X-A: ok=$http_ok rs=$http_rs rr=$http_rr bs=$http_bs rb=$http_rb err=$http_err\r\n");
    append_to_reply("X-H: $http_hdr(X-Method) $http_hdr(X-Got) $http_hdr(X-Auth) ml=$http_ml\r\n");
    t_reply("200", "answered");
}}
route[NOTX] {{
    $shv(notx) = "rs=" + $http_rs + " rb=" + $http_rb;
}}
"#
    )
}

fn ask(srv: &TestServer, peer: &UdpPeer, user: &str) -> (u16, String) {
    let call = format!("hac-{user}");
    let req = format!(
        "OPTIONS sip:{user}@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP {};branch=z9hG4bK{call}\r\nFrom: <sip:a@b>;tag=1\r\nTo: <sip:{user}@y>\r\nCall-ID: {call}\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n",
        peer.addr()
    );
    peer.send(srv.addr(), &req);
    let r = peer
        .recv_matching(Duration::from_secs(5), |r| {
            r.msg.msg().call_id().ok() == Some(call.as_str())
        })
        .unwrap_or_else(|| panic!("no reply for {user}"));
    let mut s = String::new();
    for h in ["X-A", "X-H", "X-Rc", "X-S"] {
        if let Some(v) = r.header(h) {
            s.push_str(&format!("[{h}: {v}]"));
        }
    }
    (r.status().unwrap_or(0), s)
}

#[test]
fn queries_resume_their_transactions_with_the_answer() {
    let port = server();
    let closed = free_port();
    let srv = TestServer::start(&cfg(port, closed), siprouter::in_tree());
    let peer = UdpPeer::new();
    let (code, s) = ask(&srv, &peer, "echo");
    assert_eq!(code, 200, "{s}");
    assert_eq!(
        s,
        "[X-A: ok=1 rs=201 rr=Made It bs=7 rb=payload err=<null>][X-H: PUT hac-echo Basic dTpw ml=102]"
    );
    // The settings went with the query: the next one has the defaults.
    let (_, s) = ask(&srv, &peer, "again");
    assert!(
        s.starts_with("[X-A: ok=1 rs=201 rr=Made It bs=0 rb= err=<null>][X-H: GET  "),
        "{s}"
    );
    let (code, s) = ask(&srv, &peer, "slow");
    assert_eq!(code, 200);
    assert_eq!(
        s,
        "[X-A: ok=0 rs=<null> rr=<null> bs=<null> rb=<null> err=Timeout was reached][X-H: <null> <null> <null> ml=<null>]"
    );
    let (_, s) = ask(&srv, &peer, "refused");
    assert!(
        s.contains("ok=0") && s.contains("err=Couldn't connect to server"),
        "{s}"
    );

    // Not suspended: the script goes on at once, the route runs later.
    let (code, s) = ask(&srv, &peer, "nosuspend");
    assert_eq!((code, s.as_str()), (202, "[X-Rc: 1]"));
    let mut seen = String::new();
    for _ in 0..50 {
        seen = ask(&srv, &peer, "check").1;
        if seen.contains("rs=200") {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(seen, "[X-S: rs=200 rb=hello]");
    assert_eq!(srv.stat("http_async_client:requests"), Some(5));
    assert_eq!(srv.stat("http_async_client:replies"), Some(3));
    assert_eq!(srv.stat("http_async_client:timeouts"), Some(1));
    assert_eq!(srv.stat("http_async_client:errors"), Some(1));
}

#[test]
fn an_unknown_request_setting_is_refused_at_start() {
    let cfg = "listen=udp:127.0.0.1:{PORT}\nloadmodule \"tm\"\nloadmodule \"pv\"\nloadmodule \"http_async_client\"\nrequest_route { $http_req(colour) = \"red\"; }\n";
    let errors = match TestServer::try_start(cfg, siprouter::in_tree()) {
        Ok(_) => panic!("started with $http_req(colour)"),
        Err(e) => e,
    };
    assert!(
        errors
            .iter()
            .any(|e| e.contains("unknown http_req name colour")),
        "{errors:?}"
    );
}
