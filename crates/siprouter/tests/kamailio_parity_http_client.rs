//! Differential test against Kamailio itself, for http_client: the same
//! script calls through Kamailio 5.6 (libcurl) and siprouter against one
//! HTTP server of the test — `http_client_query` (GET, POST, custom
//! headers), `http_client_get`, `http_connect` (GET and POST on an
//! `httpcon` connection), `http_get_redirect` — answered with 200, 404,
//! 500, 204, a redirect, a chunked body, a slow answer past the timeout,
//! and a closed port; compared: the return code, the result variable,
//! and what the HTTP server received (method, path, Content-Type,
//! Content-Length, the script's headers, User-Agent, Accept, body).
//!
//! Without Kamailio installed the test prints a notice and passes, unless
//! `SR_KAMAILIO_REQUIRED=1` (`.ci/run` sets it).

use sr_testkit::{kamailio, UdpPeer};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::Duration;

const MODULES: &[&str] = &["sl", "pv", "textops", "http_client"];

const BODY: &str = r#"
modparam("http_client", "useragent", "parity-agent")
modparam("http_client", "connection_timeout", 1)
modparam("http_client", "httpcon", "api=>http://127.0.0.1:__HTTP__/api")
request_route {
    if ($hdr(X-Op) == $null) { sl_send_reply("200", "up"); exit; }
    $var(op) = $hdr(X-Op);
    $var(url) = $hdr(X-Url);
    $var(res) = "unset";
    $var(res2) = "unset";
    $var(rc) = "none";
    if ($var(op) == "q") { $var(rc) = http_client_query("$var(url)", "$var(res)"); }
    else if ($var(op) == "qp") { $var(rc) = http_client_query("$var(url)", "$hdr(X-Body)", "$var(res)"); }
    else if ($var(op) == "qph") { $var(rc) = http_client_query("$var(url)", "$hdr(X-Body)", "X-Custom: one\r\nContent-Type: application/json", "$var(res)"); }
    else if ($var(op) == "get") { $var(rc) = http_client_get("$var(url)", "", "X-Token: abc", "$var(res)"); }
    else if ($var(op) == "con") { $var(rc) = http_connect("api", "$var(url)", "$var(res)"); }
    else if ($var(op) == "conp") { $var(rc) = http_connect("api", "$var(url)", "application/json", "$hdr(X-Body)", "$var(res)"); }
    else if ($var(op) == "redir") {
        $var(rc) = http_connect("api", "$var(url)", "$var(res)");
        $var(rc2) = http_get_redirect("api", "$var(res2)");
    }
    append_to_reply("X-RC: $var(rc)\r\nX-Res: $var(res)\r\nX-Res2: $var(res2)\r\n");
    sl_send_reply("200", "done");
}
"#;

/// What the HTTP server answers for a path.
fn answer(path: &str, body: &[u8], port: u16) -> Vec<u8> {
    let ok = |ct: &str, b: &str| {
        format!(
            "HTTP/1.1 200 OK\r\nContent-Type: {ct}\r\nContent-Length: {}\r\n\r\n{b}",
            b.len()
        )
    };
    let p = path.split('?').next().unwrap_or("");
    match p.trim_start_matches("/api") {
        "/text" => ok("text/plain", "first line\r\nsecond line\r\n"),
        "/json" => ok("application/json", "{\"a\":1}"),
        "/echo" => ok("text/plain", &format!("got:{}", String::from_utf8_lossy(body))),
        "/missing" => "HTTP/1.1 404 Not Found\r\nContent-Length: 8\r\n\r\nnot here".into(),
        "/fail" => "HTTP/1.1 500 Server Error\r\nContent-Length: 4\r\n\r\nboom".into(),
        "/empty" => "HTTP/1.1 204 No Content\r\n\r\n".into(),
        "/redir" => format!(
            "HTTP/1.1 302 Found\r\nLocation: http://127.0.0.1:{port}/api/json\r\nContent-Length: 0\r\n\r\n"
        ),
        "/chunked" => "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n".into(),
        "/slow" => {
            std::thread::sleep(Duration::from_millis(2500));
            ok("text/plain", "late")
        }
        _ => "HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n".into(),
    }
    .into_bytes()
}

/// Reads one request; gives its summary and body.
fn read_request(s: &mut TcpStream) -> Option<(String, String, Vec<u8>)> {
    s.set_read_timeout(Some(Duration::from_secs(3))).ok()?;
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        let n = s.read(&mut chunk).ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    let mut lines = head.split("\r\n");
    let first = lines.next().unwrap_or("").to_string();
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let h = |n: &str| {
        headers
            .iter()
            .filter(|(k, _)| k == n)
            .map(|(_, v)| v.as_str())
            .collect::<Vec<_>>()
            .join(",")
    };
    let len: usize = h("content-length").parse().unwrap_or(0);
    let mut body = buf[head_end..].to_vec();
    while body.len() < len {
        let n = s.read(&mut chunk).ok()?;
        if n == 0 {
            break;
        }
        body.extend_from_slice(&chunk[..n]);
    }
    let summary = format!(
        "{first} | ct={} cl={} custom={} token={} ua={} accept={} auth={} body={}",
        h("content-type"),
        h("content-length"),
        h("x-custom"),
        h("x-token"),
        h("user-agent"),
        h("accept"),
        h("authorization"),
        String::from_utf8_lossy(&body)
    );
    let path = first.split(' ').nth(1).unwrap_or("").to_string();
    Some((summary, path, body))
}

fn serve(l: TcpListener, log: Arc<Mutex<Vec<String>>>) {
    let port = l.local_addr().unwrap().port();
    for s in l.incoming() {
        let Ok(mut s) = s else { continue };
        let log = log.clone();
        std::thread::spawn(move || {
            if let Some((summary, path, body)) = read_request(&mut s) {
                log.lock().unwrap().push(summary);
                let _ = s.write_all(&answer(&path, &body, port));
            }
        });
    }
}

fn scenario(srv: SocketAddr, http: u16, closed: u16, log: &Arc<Mutex<Vec<String>>>) -> Vec<String> {
    let peer = UdpPeer::new();
    kamailio::wait_until_up(&peer, srv, kamailio::PROBE, None);
    let base = format!("http://127.0.0.1:{http}");
    let cases: Vec<(&str, String, &str)> = vec![
        ("q", format!("{base}/text?x=1"), ""),
        ("q", format!("{base}/json"), ""),
        ("q", format!("{base}/missing"), ""),
        ("q", format!("{base}/fail"), ""),
        ("q", format!("{base}/empty"), ""),
        ("q", format!("{base}/redir"), ""),
        ("q", format!("{base}/chunked"), ""),
        ("q", format!("{base}/slow"), ""),
        ("q", format!("http://127.0.0.1:{closed}/x"), ""),
        ("qp", format!("{base}/echo"), "a=1&b=2"),
        ("qph", format!("{base}/echo"), "{\"k\":\"v\"}"),
        ("get", format!("{base}/json"), ""),
        ("get", format!("{base}/missing"), ""),
        ("con", "/json".to_string(), ""),
        ("con", "/missing".to_string(), ""),
        ("conp", "/echo".to_string(), "{\"k\":2}"),
        ("redir", "/redir".to_string(), ""),
    ];
    let mut out = Vec::new();
    for (n, (op, url, body)) in cases.into_iter().enumerate() {
        let call = format!("hc{n}");
        let mut extra = format!("X-Op: {op}\r\nX-Url: {url}\r\n");
        if !body.is_empty() {
            extra.push_str(&format!("X-Body: {body}\r\n"));
        }
        log.lock().unwrap().clear();
        peer.send(
            srv,
            &kamailio::options(&call, &extra).replace("__VIA__", &peer.addr().to_string()),
        );
        let r = peer.recv_matching(Duration::from_secs(5), |r| {
            r.status() == Some(200) && r.msg.msg().call_id().ok() == Some(call.as_str())
        });
        std::thread::sleep(Duration::from_millis(50));
        let seen = log.lock().unwrap().join(" || ");
        let line = match r {
            Some(r) => format!(
                "{op} {url} -> rc={} res=[{}] res2=[{}] server: {seen}",
                r.header("X-RC").unwrap_or_default(),
                r.header("X-Res").unwrap_or_default(),
                r.header("X-Res2").unwrap_or_default(),
            ),
            None => format!("{op} {url}: no answer"),
        };
        out.push(
            line.replace(&http.to_string(), "HTTP")
                .replace(&closed.to_string(), "CLOSED"),
        );
    }
    out
}

#[test]
fn http_client_matches_kamailio() {
    if !kamailio::available(MODULES) {
        return;
    }
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let http = l.local_addr().unwrap().port();
    let log = Arc::new(Mutex::new(Vec::new()));
    let l2 = log.clone();
    std::thread::spawn(move || serve(l, l2));
    let closed = {
        let c = TcpListener::bind("127.0.0.1:0").unwrap();
        c.local_addr().unwrap().port()
    };
    let dir = kamailio::fresh_dir("http_client");
    let cfg = (kamailio::head(MODULES) + BODY).replace("__HTTP__", &http.to_string());
    let (want, got) = kamailio::run_scenario(&dir, &cfg, siprouter::in_tree(), &|| {}, &|srv| {
        scenario(srv, http, closed, &log)
    });
    assert!(want.iter().any(|l| l.contains("rc=200")), "{want:#?}");
    kamailio::conclude(&dir, &want, &got, "http_client");
}
