//! http_client on siprouter alone: `$curlerror`, `$httprhdr` with
//! `response_headers`, redirects followed with `httpredirect=1`, an
//! `httpcon` failover, the `httpclient.listcon` RPC and the counters, and
//! what is not built refused at start. The rest is compared with
//! Kamailio in kamailio_parity_http_client.rs.

use sr_sdk::serde_json::json;
use sr_testkit::{TestServer, UdpPeer};
use std::io::{Read, Write};
use std::net::TcpListener;
use std::time::Duration;

/// A server answering every request with `answer(path)`.
fn server(answer: fn(&str, u16) -> String) -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for s in l.incoming() {
            let Ok(mut s) = s else { continue };
            std::thread::spawn(move || {
                let mut buf = [0u8; 4096];
                let mut got = Vec::new();
                while !got.windows(4).any(|w| w == b"\r\n\r\n") {
                    match s.read(&mut buf) {
                        Ok(0) | Err(_) => return,
                        Ok(n) => got.extend_from_slice(&buf[..n]),
                    }
                }
                let text = String::from_utf8_lossy(&got);
                let path = text.split(' ').nth(1).unwrap_or("").to_string();
                let _ = s.write_all(answer(&path, port).as_bytes());
            });
        }
    });
    port
}

fn answers(path: &str, port: u16) -> String {
    match path {
        "/hop" => format!("HTTP/1.1 302 Found\r\nLocation: http://127.0.0.1:{port}/end\r\nContent-Length: 0\r\n\r\n"),
        "/end" => "HTTP/1.1 200 OK\r\nX-Resp: yes\r\nContent-Length: 3\r\n\r\nend".into(),
        "/api/ok" => "HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\nbackup".into(),
        _ => "HTTP/1.1 503 Busy\r\nContent-Length: 0\r\n\r\n".into(),
    }
}

fn cfg(port: u16, closed: u16, extra: &str) -> String {
    format!(
        r#"
listen=udp:127.0.0.1:{{PORT}}
loadmodule "sl"
loadmodule "pv"
loadmodule "textops"
loadmodule "http_client"
modparam("http_client", "httpredirect", 1)
modparam("http_client", "response_headers", 1)
modparam("http_client", "httpcon", "backup=>http://127.0.0.1:{port}/api")
modparam("http_client", "httpcon", "main=>http://127.0.0.1:{closed}/api;failover=backup")
{extra}
request_route {{
    $var(rc) = http_client_query("http://127.0.0.1:{port}/hop", "$var(res)");
    $var(h) = $httprhdr(X-Resp);
    $var(rc2) = http_client_query("http://127.0.0.1:{closed}/x", "$var(res2)");
    $var(rc3) = http_connect("main", "/ok", "$var(res3)");
    append_to_reply("X-A: $var(rc) $var(res) $var(h)\r\nX-B: $var(rc2) $curlerror($var(rc2))\r\nX-C: $var(rc3) $var(res3)\r\n");
    sl_send_reply("200", "OK");
}}
"#
    )
}

#[test]
fn redirects_errors_headers_and_failover() {
    let port = server(answers);
    let closed = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let srv = TestServer::start(&cfg(port, closed, ""), siprouter::in_tree());
    let peer = UdpPeer::new();
    peer.send(
        srv.addr(),
        &format!(
            "OPTIONS sip:x@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP {};branch=z9hG4bKhc\r\nFrom: <sip:a@b>;tag=1\r\nTo: <sip:x@y>\r\nCall-ID: hc\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n",
            peer.addr()
        ),
    );
    let r = peer
        .recv_status(200, Duration::from_secs(10))
        .expect("answered");
    assert_eq!(
        r.header("X-A").as_deref(),
        Some("200 end yes"),
        "{}",
        r.text()
    );
    assert_eq!(
        r.header("X-B").as_deref(),
        Some("7 Couldn't connect to server")
    );
    assert_eq!(r.header("X-C").as_deref(), Some("200 backup"));
    let list = srv.rpc("httpclient.listcon", &[]).unwrap();
    assert_eq!(list[0]["name"], json!("backup"));
    assert_eq!(
        list[1]["url"],
        json!(format!("http://127.0.0.1:{closed}/api"))
    );
    assert_eq!(srv.stat("http_client:connections"), Some(2));
    assert_eq!(srv.stat("http_client:connok"), Some(2));
    assert_eq!(srv.stat("http_client:connfail"), Some(2));
}

#[test]
fn what_is_not_built_is_refused_at_start() {
    for p in [
        r#"modparam("http_client", "httpproxy", "http://proxy.example.com")"#,
        r#"modparam("http_client", "config_file", "conns.cfg")"#,
    ] {
        let err = TestServer::try_start(&cfg(1, 2, p), siprouter::in_tree())
            .err()
            .unwrap_or_else(|| panic!("{p} is refused"));
        assert!(err.join("\n").contains("is not built"), "{err:?}");
    }
}

/// An HTTPS server with a certificate for `names`, answering `200 OK`
/// with `secure`; its port and the certificate's PEM file.
fn https_server(names: &[&str], tag: &str) -> (u16, std::path::PathBuf) {
    use rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};
    let c =
        rcgen::generate_simple_self_signed(names.iter().map(|n| n.to_string()).collect::<Vec<_>>())
            .expect("certificate");
    let dir = std::env::temp_dir().join(format!("siprouter-https-{tag}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let pem = dir.join("cert.pem");
    std::fs::write(&pem, c.cert.pem()).unwrap();
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(c.key_pair.serialize_der()));
    let cfg = Arc::new(
        rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![c.cert.der().clone()], key)
        .unwrap(),
    );
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for s in l.incoming() {
            let Ok(s) = s else { continue };
            let cfg = cfg.clone();
            std::thread::spawn(move || {
                let conn = rustls::ServerConnection::new(cfg).unwrap();
                let mut t = rustls::StreamOwned::new(conn, s);
                let mut buf = [0u8; 4096];
                let mut got = Vec::new();
                while !got.windows(4).any(|w| w == b"\r\n\r\n") {
                    match t.read(&mut buf) {
                        Ok(0) | Err(_) => return,
                        Ok(n) => got.extend_from_slice(&buf[..n]),
                    }
                }
                let _ = t.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\nsecure");
                t.conn.send_close_notify();
                let _ = t.flush();
            });
        }
    });
    (port, pem)
}

use std::sync::Arc;

/// One `http_client_query` to `url` with `params`: "rc result".
fn query_with(params: &str, url: &str) -> String {
    let cfg = format!(
        r#"
listen=udp:127.0.0.1:{{PORT}}
loadmodule "sl"
loadmodule "pv"
loadmodule "textops"
loadmodule "http_client"
{params}
request_route {{
    $var(rc) = http_client_query("{url}", "$var(res)");
    append_to_reply("X-A: $var(rc) $var(res)\r\n");
    sl_send_reply("200", "OK");
}}
"#
    );
    let srv = TestServer::start(&cfg, siprouter::in_tree());
    let peer = UdpPeer::new();
    peer.send(
        srv.addr(),
        &format!(
            "OPTIONS sip:x@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP {};branch=z9hG4bKhs\r\nFrom: <sip:a@b>;tag=1\r\nTo: <sip:x@y>\r\nCall-ID: hs\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n",
            peer.addr()
        ),
    );
    peer.recv_status(200, Duration::from_secs(10))
        .and_then(|r| r.header("X-A"))
        .unwrap_or_default()
}

#[test]
fn https_checks_the_server_as_curl_options_say() {
    let (port, pem) = https_server(&["127.0.0.1", "localhost"], "ok");
    let url = format!("https://127.0.0.1:{port}/x");
    // Trusted by cacert.
    let ca = format!(
        "modparam(\"http_client\", \"cacert\", \"{}\")",
        pem.display()
    );
    assert_eq!(query_with(&ca, &url), "200 secure");
    // Not in the system's bundle: curl's error 60.
    assert_eq!(query_with("", &url), "60");
    // verify_peer=0: taken as it is.
    assert_eq!(
        query_with(r#"modparam("http_client", "verify_peer", 0)"#, &url),
        "200 secure"
    );
    // A certificate for another name: refused unless verify_host=0.
    let (port2, pem2) = https_server(&["api.example.test"], "name");
    let url2 = format!("https://127.0.0.1:{port2}/x");
    let ca2 = format!(
        "modparam(\"http_client\", \"cacert\", \"{}\")",
        pem2.display()
    );
    assert_eq!(query_with(&ca2, &url2), "60");
    assert_eq!(
        query_with(
            &format!("{ca2}\nmodparam(\"http_client\", \"verify_host\", 0)"),
            &url2
        ),
        "200 secure"
    );
}
