//! The control socket speaking BINRPC (Kamailio's `ctl` protocol, `kamcmd`)
//! next to JSON-RPC: several requests on one connection, a request split
//! across writes, faults for a bad method and a malformed packet (then the
//! connection closes), and JSON-RPC still answered on the same socket.
//! (kamailio_parity_kamcmd.rs compares `kamcmd`'s output with Kamailio's.)

use sr_mod_jsonrpcs::binrpc;
use sr_sdk::serde_json::{json, Value as Json};
use sr_testkit::TestServer;
use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::net::UnixStream;
use std::time::Duration;

fn start(name: &str) -> (TestServer, std::path::PathBuf) {
    let dir = std::env::temp_dir().join(format!("sr-binrpc-{name}-{}", std::process::id()));
    let _ = std::fs::create_dir_all(&dir);
    let sock = dir.join("ctl.sock");
    let cfg = format!(
        "listen=udp:127.0.0.1:{{PORT}}\nloadmodule \"sl\"\nloadmodule \"htable\"\nloadmodule \"ctl\"\nmodparam(\"ctl\", \"binrpc\", \"unix:{}\")\nmodparam(\"htable\", \"htable\", \"t=>size=4;\")\nrequest_route {{ sl_send_reply(\"200\", \"OK\"); }}\n",
        sock.display()
    );
    (TestServer::start(&cfg, siprouter::in_tree()), sock)
}

/// Reads one whole packet: its header and values.
fn read_packet(s: &mut UnixStream) -> Option<(binrpc::Header, Vec<Json>)> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 1024];
    loop {
        if let Ok(Some(h)) = binrpc::header(&buf) {
            if buf.len() >= h.header_len + h.body_len {
                let v = binrpc::values(&buf[h.header_len..h.header_len + h.body_len]).ok()?;
                return Some((h, v));
            }
        }
        let n = s.read(&mut chunk).ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

#[test]
fn binrpc_and_json_rpc_share_the_socket() {
    let (_srv, sock) = start("share");
    let mut s = UnixStream::connect(&sock).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
    // Two requests, the first written in two pieces.
    let set = binrpc::packet(
        binrpc::REQ,
        77,
        &binrpc::request_body("htable.seti", &[json!("t"), json!("k"), json!(9)]),
    );
    s.write_all(&set[..3]).unwrap();
    std::thread::sleep(Duration::from_millis(50));
    s.write_all(&set[3..]).unwrap();
    let (h, v) = read_packet(&mut s).expect("a reply");
    assert_eq!((h.kind, h.cookie), (binrpc::REPL, 77));
    assert_eq!(v, vec![json!("Ok. Key set to new value.")]);
    let get = binrpc::packet(
        binrpc::REQ,
        78,
        &binrpc::request_body("htable.get", &[json!("t"), json!("k")]),
    );
    s.write_all(&get).unwrap();
    let (h, v) = read_packet(&mut s).expect("a reply");
    assert_eq!(h.cookie, 78);
    assert_eq!(
        v,
        vec![json!({"item": {"name": "k", "value": 9, "flags": 0, "expire": "NEVER"}})]
    );
    // An unknown method: a fault as Kamailio words it.
    let bad = binrpc::packet(binrpc::REQ, 79, &binrpc::request_body("no.such", &[]));
    s.write_all(&bad).unwrap();
    let (h, v) = read_packet(&mut s).expect("a fault");
    assert_eq!(h.kind, binrpc::FAULT);
    assert_eq!(v, vec![json!(500), json!("command no.such not found")]);
    // A malformed body: a fault, then the connection ends.
    let broken = binrpc::packet(binrpc::REQ, 80, &[0x71, b'x']);
    s.write_all(&broken).unwrap();
    let (h, _) = read_packet(&mut s).expect("a fault");
    assert_eq!(h.kind, binrpc::FAULT);
    // JSON-RPC on another connection to the same socket.
    let mut j = UnixStream::connect(&sock).unwrap();
    j.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
    j.write_all(
        b"{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"htable.get\",\"params\":[\"t\",\"k\"]}\n",
    )
    .unwrap();
    let mut line = String::new();
    BufReader::new(j).read_line(&mut line).unwrap();
    let r: Json = sr_sdk::serde_json::from_str(&line).unwrap();
    assert_eq!(r["result"]["item"]["value"], json!(9), "{line}");
}

#[test]
fn garbage_on_the_socket_is_answered_or_dropped_without_harm() {
    let (_srv, sock) = start("garbage");
    let mut seed = 3u64;
    for _ in 0..50 {
        let mut s = UnixStream::connect(&sock).unwrap();
        s.set_read_timeout(Some(Duration::from_millis(300)))
            .unwrap();
        let n = 1 + (seed % 40) as usize;
        let mut bytes = vec![binrpc::MAGIC_VERS];
        for _ in 0..n {
            seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            bytes.push((seed >> 56) as u8);
        }
        let _ = s.write_all(&bytes);
        drop(s);
    }
    // Still serving (once the garbage connections are gone: a connection
    // beyond the limit of concurrent ones is refused).
    let ping = binrpc::packet(
        binrpc::REQ,
        1,
        &binrpc::request_body("htable.listTables", &[]),
    );
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    let (h, v) = loop {
        let mut s = UnixStream::connect(&sock).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
        if s.write_all(&ping).is_ok() {
            if let Some(r) = read_packet(&mut s) {
                break r;
            }
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no reply after the garbage"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(h.kind, binrpc::REPL);
    assert!(!v.is_empty());
}

#[test]
fn kamcmd_over_tcp_and_udp() {
    const KAMCMD: &str = "/usr/sbin/kamcmd";
    if !std::path::Path::new(KAMCMD).exists() {
        assert!(
            std::env::var("SR_KAMAILIO_REQUIRED").as_deref() != Ok("1"),
            "SR_KAMAILIO_REQUIRED=1 but {KAMCMD} is missing"
        );
        eprintln!("SKIPPED: kamcmd is not installed");
        return;
    }
    let (tcp, udp) = (sr_testkit::free_port(), sr_testkit::free_port());
    let cfg = format!(
        "listen=udp:127.0.0.1:{{PORT}}\nloadmodule \"sl\"\nloadmodule \"htable\"\nloadmodule \"ctl\"\nmodparam(\"ctl\", \"binrpc\", \"tcp:127.0.0.1:{tcp}\")\nmodparam(\"ctl\", \"binrpc\", \"udp:127.0.0.1:{udp}\")\nmodparam(\"htable\", \"htable\", \"t=>size=4;\")\nrequest_route {{ sl_send_reply(\"200\", \"OK\"); }}\n"
    );
    let _srv = TestServer::start(&cfg, siprouter::in_tree());
    let run = |sock: String, args: &[&str]| {
        let out = std::process::Command::new(KAMCMD)
            .arg("-s")
            .arg(sock)
            .args(args)
            .output()
            .expect("kamcmd runs");
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr)
    };
    let set = run(
        format!("tcp:127.0.0.1:{tcp}"),
        &["htable.seti", "t", "a", "3"],
    );
    assert_eq!(set.trim(), "Ok. Key set to new value.");
    let got = run(format!("udp:127.0.0.1:{udp}"), &["htable.get", "t", "a"]);
    assert!(got.contains("\t\tvalue: 3"), "{got}");
    let bad = run(format!("tcp:127.0.0.1:{tcp}"), &["no.such"]);
    assert_eq!(bad.trim(), "error: 500 - command no.such not found");
}
