//! End-to-end: the management endpoint (`jsonrpcs`, and `ctl` as its
//! alias) over a real UNIX socket and real HTTP, through raw JSON-RPC,
//! the `siprouter ctl` client functions and the real `siprouter ctl`
//! binary.

use sr_sdk::serde_json::{self, json, Value as Json};
use sr_testkit::{free_port, req, TestServer, UdpPeer};
use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

const T: Duration = Duration::from_secs(3);

fn cfg(http_port: u16) -> String {
    format!(
        r#"
listen=udp:127.0.0.1:{{PORT}}
children=1
loadmodule "sl"
loadmodule "jsonrpcs"
modparam("jsonrpcs", "socket", "{{DIR}}/rpc.sock")
modparam("jsonrpcs", "http_listen", "127.0.0.1:{http_port}")
request_route {{
    if (method=="OPTIONS") {{ sl_send_reply("200", "Keepalive"); exit; }}
    sl_send_reply("404", "Not here");
}}
"#
    )
}

struct Rpc {
    srv: TestServer,
    http: u16,
}

impl Rpc {
    fn start() -> Rpc {
        let http = free_port();
        let srv = TestServer::start(&cfg(http), siprouter::in_tree());
        Rpc { srv, http }
    }

    fn sock(&self) -> PathBuf {
        self.srv.dir.join("rpc.sock")
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}/RPC", self.http)
    }

    /// Calls a method over the UNIX socket; the full response.
    fn call(&self, method: &str, params: Json) -> Json {
        let r = json!({"jsonrpc": "2.0", "method": method, "params": params, "id": 1});
        siprouter::ctl::call_unix(&self.sock().display().to_string(), &r).expect("rpc answered")
    }

    fn result(&self, method: &str, params: Json) -> Json {
        let r = self.call(method, params);
        assert!(r.get("error").is_none(), "{method}: {r}");
        r["result"].clone()
    }

    fn options(&self) {
        let uac = UdpPeer::new();
        let m = req(
            "OPTIONS",
            &format!("sip:127.0.0.1:{}", self.srv.port),
            uac.addr(),
            "t1",
            "rpc-opt-1",
            1,
            &[],
            "",
        );
        uac.send(self.srv.addr(), &m);
        let r = uac.recv(T).expect("OPTIONS answered");
        assert_eq!(r.status(), Some(200));
        assert_eq!(self.srv.wait_stat("core:rcv_requests_options", 1), Some(1));
    }

    fn http(&self, head: &str, body: &str) -> (u16, String) {
        let mut s = std::net::TcpStream::connect(("127.0.0.1", self.http)).expect("http connect");
        s.set_read_timeout(Some(T)).ok();
        let msg = format!(
            "{head}\r\nHost: x\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        );
        s.write_all(msg.as_bytes()).expect("send");
        let mut resp = String::new();
        s.read_to_string(&mut resp).expect("read");
        let code = resp
            .split_whitespace()
            .nth(1)
            .and_then(|c| c.parse().ok())
            .unwrap_or(0);
        let body = resp
            .split_once("\r\n\r\n")
            .map(|x| x.1.to_string())
            .unwrap_or_default();
        (code, body)
    }
}

/// One connection, raw lines.
struct Line {
    w: UnixStream,
    r: BufReader<UnixStream>,
}

impl Line {
    fn open(p: &PathBuf) -> Line {
        let w = UnixStream::connect(p).expect("connect");
        w.set_read_timeout(Some(T)).ok();
        let r = BufReader::new(w.try_clone().expect("clone"));
        Line { w, r }
    }

    fn send(&mut self, text: &str) {
        self.w
            .write_all(format!("{text}\n").as_bytes())
            .expect("write");
    }

    fn recv(&mut self) -> Json {
        let mut l = String::new();
        self.r.read_line(&mut l).expect("read");
        serde_json::from_str(&l).unwrap_or_else(|e| panic!("bad line {l:?}: {e}"))
    }
}

#[test]
fn core_methods_over_the_unix_socket() {
    let t = Rpc::start();
    let methods = t.result("system.listMethods", json!([]));
    let names: Vec<&str> = methods
        .as_array()
        .expect("array")
        .iter()
        .filter_map(Json::as_str)
        .collect();
    for m in [
        "core.version",
        "core.uptime",
        "stats.get_statistics",
        "stats.fetch",
    ] {
        assert!(names.contains(&m), "{m} in {names:?}");
    }
    let v = t.result("core.version", json!([]));
    assert!(
        v.as_str().is_some_and(|s| s.starts_with("siprouter")),
        "{v}"
    );
    let up = t.result("core.uptime", json!([]));
    assert!(up["uptime"].as_u64().is_some(), "{up}");
    // Kamailio's ctime() text, e.g. "Fri Nov 27 14:56:27 2026".
    let now = up["now"].as_str().unwrap_or("");
    assert_eq!(now.split_whitespace().count(), 5, "{up}");
    let year = now
        .split_whitespace()
        .last()
        .and_then(|y| y.parse::<u32>().ok());
    assert!(year.is_some_and(|y| y > 2000), "{up}");
    let mods = t.result("core.modules", json!([]));
    let mods: Vec<&str> = mods
        .as_array()
        .expect("array")
        .iter()
        .filter_map(|m| m["name"].as_str())
        .collect();
    assert_eq!(mods, vec!["sl", "jsonrpcs"]);
    // One socket: Kamailio's shape, a struct.
    let socks = t.result("core.sockets_list", json!([]));
    let s0 = &socks["socket"];
    assert_eq!(s0["proto"], json!("udp"));
    assert_eq!(s0["address"], json!("127.0.0.1"));
    assert_eq!(s0["port"], json!(t.srv.port));
    assert_eq!(s0["mcast"], json!("no"));
    // Kamailio's informational commands.
    assert_eq!(t.result("core.echo", json!(["a", 2])), json!(["a", 2]));
    assert_eq!(t.result("core.printi", json!(["7", 8])), json!([7, 8]));
    let run = t.result("core.runinfo", json!([]));
    assert_eq!(run["name"], json!("siprouter"));
    assert!(
        run["utime_days"].as_str().is_some_and(|d| d.ends_with('s')),
        "{run}"
    );
    let psa = t.result("core.psa", json!([]));
    assert_eq!(psa[0]["rank"], json!(0));
    assert_eq!(psa[0]["description"], json!("main thread - attendant"));
    let shm = t.result("core.shmmem", json!([]));
    assert!(shm["used"].as_u64().is_some_and(|u| u > 0), "{shm}");
    let defs = t.result("core.ppdefines", json!([]));
    assert!(
        defs.as_array()
            .is_some_and(|d| d.contains(&json!("MOD_sl"))),
        "{defs}"
    );
    let n = t.result("stats.fetchn", json!(["sl:"]));
    assert!(n["sl.sent_replies"].is_number(), "{n}");
}

#[test]
fn statistics_over_the_unix_socket() {
    let t = Rpc::start();
    t.options();
    let lines = t.result("stats.get_statistics", json!(["all"]));
    let lines: Vec<&str> = lines
        .as_array()
        .expect("array")
        .iter()
        .filter_map(Json::as_str)
        .collect();
    assert!(
        lines.contains(&"core:rcv_requests_options = 1"),
        "{lines:?}"
    );
    assert!(lines.contains(&"core:rcv_requests = 1"), "{lines:?}");
    assert!(lines.contains(&"sl:200_replies = 1"), "{lines:?}");
    assert!(lines.iter().all(|l| l.contains(':') && l.contains(" = ")));
    let grp = t.result("stats.get_statistics", json!(["sl:"]));
    assert!(grp
        .as_array()
        .expect("array")
        .iter()
        .all(|l| l.as_str().unwrap_or("").starts_with("sl:")));
    let f = t.result("stats.fetch", json!(["all"]));
    assert_eq!(f["core.rcv_requests_options"], json!("1"));
    let r = t.result(
        "stats.reset_statistics",
        json!(["core:rcv_requests_options"]),
    );
    // Nothing to answer: an empty result, as Kamailio's JSON-RPC gives.
    assert_eq!(r, json!({}));
    assert_eq!(t.srv.stat("core:rcv_requests_options"), Some(0));
    assert_eq!(t.srv.stat("core:rcv_requests"), Some(1));
}

#[test]
fn errors_batches_and_notifications() {
    let t = Rpc::start();
    let e = t.call("no.such_method", json!([]));
    assert_eq!(e["error"]["code"], json!(-32601), "{e}");
    assert_eq!(e["id"], json!(1));
    let e = t.call("stats.get_statistics", json!([{"x": 1}]));
    assert_eq!(e["error"]["code"], json!(-32602), "{e}");
    let e = t.call("system.methodHelp", json!([]));
    assert_eq!(e["error"]["code"], json!(-32602), "{e}");

    let mut c = Line::open(&t.sock());
    c.send("{this is not json");
    let e = c.recv();
    assert_eq!(e["error"]["code"], json!(-32700), "{e}");
    assert_eq!(e["id"], Json::Null);
    c.send(r#"{"jsonrpc":"2.0","params":[],"id":5}"#);
    assert_eq!(c.recv()["error"]["code"], json!(-32600));
    c.send(r#"{"jsonrpc":"2.0","method":"core.version","params":{"a":1},"id":6}"#);
    assert_eq!(c.recv()["error"]["code"], json!(-32602));
    // The connection survives bad input.
    c.send(r#"[{"jsonrpc":"2.0","method":"core.version","id":"a"},{"jsonrpc":"2.0","method":"core.version"},{"jsonrpc":"2.0","method":"nope","id":"b"}]"#);
    let b = c.recv();
    let b = b.as_array().expect("batch answer");
    assert_eq!(b.len(), 2, "{b:?}");
    assert_eq!(b[0]["id"], json!("a"));
    assert!(b[0]["result"]
        .as_str()
        .is_some_and(|s| s.starts_with("siprouter")));
    assert_eq!(b[1]["id"], json!("b"));
    assert_eq!(b[1]["error"]["code"], json!(-32601));
    c.send("[]");
    assert_eq!(c.recv()["error"]["code"], json!(-32600));
    // A notification gets no answer: the next line answers the next call.
    c.send(r#"{"jsonrpc":"2.0","method":"stats.reset_statistics","params":["all"]}"#);
    c.send(r#"{"jsonrpc":"2.0","method":"core.version","id":9}"#);
    assert_eq!(c.recv()["id"], json!(9));
    // A large result comes whole.
    c.send(r#"{"jsonrpc":"2.0","method":"stats.get_statistics","params":["all"],"id":10}"#);
    let big = c.recv();
    assert!(
        big["result"].as_array().is_some_and(|a| a.len() > 30),
        "{big}"
    );
}

fn ctl(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_siprouter"))
        .arg("ctl")
        .args(args)
        .output()
        .expect("run siprouter ctl");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn the_ctl_binary() {
    let t = Rpc::start();
    t.options();
    let sock = t.sock().display().to_string();
    let (rc, out, err) = ctl(&["-s", &sock, "core.version"]);
    assert_eq!(rc, 0, "{err}");
    assert!(out.starts_with("siprouter"), "{out}");
    let (rc, out, _) = ctl(&["-s", &sock, "stats.get_statistics", "core:"]);
    assert_eq!(rc, 0);
    assert!(
        out.lines().any(|l| l == "core:rcv_requests_options = 1"),
        "{out}"
    );
    let (rc, out, _) = ctl(&["-s", &sock, "--json", "stats.fetch", "core:"]);
    assert_eq!(rc, 0);
    let v: Json = serde_json::from_str(&out).expect("--json prints JSON");
    assert_eq!(v["core.rcv_requests_options"], json!("1"));
    let (rc, _, err) = ctl(&["-s", &sock, "no.such_method"]);
    assert_eq!(rc, 1);
    assert!(err.contains("-32601"), "{err}");
    let (rc, out, _) = ctl(&["-s", &sock, "--json", "no.such_method"]);
    assert_eq!(rc, 1);
    assert!(out.contains("\"error\""), "{out}");
    // Over HTTP too.
    let (rc, out, err) = ctl(&["-s", &t.url(), "core.uptime"]);
    assert_eq!(rc, 0, "{err}");
    assert!(out.contains("uptime: "), "{out}");
    // A reader that goes away (`| head -1`) is no error and no panic.
    let mut child = Command::new(env!("CARGO_BIN_EXE_siprouter"))
        .args(["ctl", "-s", &sock, "--json", "system.listMethods"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("run siprouter ctl");
    drop(child.stdout.take());
    let out = child.wait_with_output().expect("ctl ends");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert!(!err.contains("panicked"), "{err}");
}

#[test]
fn http_json_rpc_and_metrics() {
    let t = Rpc::start();
    t.options();
    let r = siprouter::ctl::call_http(
        &t.url(),
        &json!({"jsonrpc": "2.0", "method": "stats.fetch", "params": ["core:rcv_requests"], "id": 3}),
    )
    .expect("http rpc");
    assert_eq!(r["id"], json!(3));
    assert_eq!(r["result"]["core.rcv_requests"], json!("1"));
    let (code, body) = t.http(
        "POST /anything HTTP/1.1",
        r#"{"jsonrpc":"2.0","method":"nope","id":1}"#,
    );
    assert_eq!(code, 200);
    assert!(body.contains("-32601"), "{body}");
    let (code, body) = t.http("POST / HTTP/1.1", "{bad");
    assert_eq!(code, 200);
    assert!(body.contains("-32700"), "{body}");
    let (code, body) = t.http(
        "POST / HTTP/1.1",
        r#"{"jsonrpc":"2.0","method":"core.version"}"#,
    );
    assert_eq!((code, body.as_str()), (204, ""));
    let (code, body) = t.http("GET /metrics HTTP/1.1", "");
    assert_eq!(code, 200);
    assert!(
        body.lines()
            .any(|l| l == "siprouter_core_rcv_requests_options 1"),
        "{body}"
    );
    assert!(
        body.contains("# TYPE siprouter_sl_200_replies gauge"),
        "{body}"
    );
    assert!(
        body.lines().any(|l| l == "siprouter_sl_200_replies 1"),
        "{body}"
    );
    let (code, _) = t.http("GET /nothing HTTP/1.1", "");
    assert_eq!(code, 404);
    let (code, _) = t.http("DELETE / HTTP/1.1", "");
    assert_eq!(code, 405);
}

#[test]
fn ctl_is_an_alias_and_sockets_are_not_shared() {
    let srv = TestServer::start(
        r#"
listen=udp:127.0.0.1:{PORT}
loadmodule "ctl.so"
modparam("ctl", "binrpc", "unix:{DIR}/kamailio_ctl")
modparam("ctl", "mode", 0600)
request_route { drop; }
"#,
        siprouter::in_tree(),
    );
    let p = srv.dir.join("kamailio_ctl").display().to_string();
    let r = siprouter::ctl::call_unix(&p, &siprouter::ctl::request("core.version", &[]))
        .expect("ctl answers");
    assert!(
        r["result"]
            .as_str()
            .is_some_and(|s| s.starts_with("siprouter")),
        "{r}"
    );
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&p)
        .expect("socket file")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);

    let both = TestServer::try_start(
        r#"
listen=udp:127.0.0.1:{PORT}
loadmodule "jsonrpcs"
loadmodule "ctl"
modparam("jsonrpcs", "socket", "{DIR}/same.sock")
modparam("ctl", "binrpc", "unix:{DIR}/same.sock")
request_route { drop; }
"#,
        siprouter::in_tree(),
    );
    let errs = both.err().expect("one socket, two modules: refused");
    assert!(errs.join("\n").contains("already served"), "{errs:?}");

    let dgram = TestServer::try_start(
        r#"
listen=udp:127.0.0.1:{PORT}
loadmodule "jsonrpcs"
modparam("jsonrpcs", "socket", "{DIR}/f.sock")
modparam("jsonrpcs", "transport", 4)
request_route { drop; }
"#,
        siprouter::in_tree(),
    );
    let errs = dgram.err().expect("datagram transport refused");
    assert!(errs.join("\n").contains("datagram"), "{errs:?}");
}

#[test]
fn jsonrpc_over_xhttp_as_the_stock_configuration_does_it() {
    // WITH_JSONRPC of Kamailio's stock configuration: jsonrpcs with
    // transport 7 (FIFO and datagram are not built: a warning), RPC over
    // HTTP on the SIP TCP socket through xhttp and jsonrpc_dispatch().
    let srv = TestServer::start(
        r#"
listen=udp:127.0.0.1:{PORT}
listen=tcp:127.0.0.1:{PORT}
tcp_accept_no_cl=yes
loadmodule "sl"
loadmodule "pv"
loadmodule "xhttp"
loadmodule "jsonrpcs"
modparam("jsonrpcs", "pretty_format", 1)
modparam("jsonrpcs", "transport", 7)
modparam("jsonrpcs", "socket", "")
request_route { sl_send_reply("404", "Not here"); }
event_route[xhttp:request] {
    set_reply_close();
    set_reply_no_connect();
    if (src_ip != 127.0.0.1) {
        xhttp_reply("403", "Forbidden", "text/html", "<html><body>Not allowed from $si</body></html>");
        exit;
    }
    if ($hu =~ "^/RPC") {
        jsonrpc_dispatch();
        exit;
    }
    xhttp_reply("200", "OK", "text/html", "<html><body>Wrong URL $hu</body></html>");
    exit;
}
"#,
        siprouter::in_tree(),
    );
    let post = |path: &str, body: &str| {
        let mut c = sr_testkit::WsPeer::connect(srv.addr());
        c.http(
            &format!(
                "POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
                body.len()
            ),
            T,
        )
        .expect("an HTTP answer")
    };
    let (code, text) = post(
        "/RPC",
        r#"{"jsonrpc":"2.0","method":"core.version","id":1}"#,
    );
    assert_eq!(code, 200, "{text}");
    assert!(
        text.contains("Content-Type: application/json\r\n"),
        "{text}"
    );
    let body = text.split("\r\n\r\n").nth(1).unwrap();
    let doc: Json = serde_json::from_str(body).expect("JSON");
    assert_eq!(doc["id"], 1);
    assert!(doc["result"].to_string().contains("siprouter"), "{doc}");
    // The same with the body in chunks (curl sends them so at times).
    let mut c = sr_testkit::WsPeer::connect(srv.addr());
    let (code, text) = c
        .http(
            "POST /RPC HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n18\r\n{\"jsonrpc\":\"2.0\",\"id\":2,\r\n17\r\n\"method\":\"core.uptime\"}\r\n0\r\n\r\n",
            T,
        )
        .expect("an HTTP answer to a chunked request");
    assert_eq!(code, 200, "{text}");
    assert!(
        text.contains("\"id\": 2") && text.contains("uptime"),
        "{text}"
    );
    // A bad document: a JSON-RPC error, still 200.
    let (code, text) = post("/RPC", "{not json");
    assert_eq!(code, 200);
    assert!(text.contains("-32700"), "{text}");
    // Another URL: the route's own page.
    let (code, text) = post("/x", "{}");
    assert_eq!(code, 200);
    assert!(
        text.ends_with("<html><body>Wrong URL /x</body></html>"),
        "{text}"
    );
}

#[test]
fn a_start_that_fails_leaves_no_socket_file_behind() {
    let dir = std::env::temp_dir().join(format!("sr-failed-start-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("a folder");
    let sock = dir.join("rpc.sock");
    // A module after jsonrpcs refuses to start (mod_init), and, in the
    // second configuration, the routes do not compile once every module
    // started: either way jsonrpcs's socket file goes with the server.
    for (tail, why) in [
        (
            "modparam(\"registrar\", \"expires_range\", 200)\nrequest_route { drop; }",
            "expires_range",
        ),
        ("request_route { no_such_function(); }", "no_such_function"),
    ] {
        let cfg = format!(
            "listen=udp:127.0.0.1:{{PORT}}\nloadmodule \"jsonrpcs\"\nloadmodule \"usrloc\"\nloadmodule \"registrar\"\nmodparam(\"jsonrpcs\", \"socket\", \"{}\")\n{tail}\n",
            sock.display()
        );
        let errs = TestServer::try_start(&cfg, siprouter::in_tree())
            .err()
            .expect("the start fails");
        assert!(errs.join("\n").contains(why), "{errs:?}");
        assert!(!sock.exists(), "{} is left after: {errs:?}", sock.display());
    }
    let _ = std::fs::remove_dir_all(&dir);
}
