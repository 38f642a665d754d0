//! Differential test against Kamailio itself, for module evrexec: event
//! routes run at start (two workers, a wait, `$evr(data)` null there), a
//! UDP socket whose datagrams each run a route (`$evr(data)`,
//! `$evr(srcip)`, `$evr(srcport)`, `$evr(srcportno)`), and the RPC
//! `evrexec.run` with and without data and for a missing route, run from
//! the script with `jsonrpc_exec`. The routes leave what they saw in an
//! htable, which requests read back. (`$shtinc` of a missing key gives
//! `$null` and makes none, so the counters start in `htable:mod-init`.)
//!
//! Without Kamailio installed the test prints a notice and passes, unless
//! `SR_KAMAILIO_REQUIRED=1` (`.ci/run` sets it).

use sr_testkit::kamailio;
use std::net::UdpSocket;
use std::time::Duration;

const MODULES: &[&str] = &["sl", "pv", "textops", "htable", "jsonrpcs", "evrexec"];

const BODY: &str = r#"#!ifdef SIPROUTER
modparam("jsonrpcs", "socket", "")
#!else
modparam("jsonrpcs", "transport", 2)
modparam("jsonrpcs", "fifo_name", "__DIR__/rpc.fifo")
#!endif
modparam("jsonrpcs", "pretty_format", 0)
modparam("htable", "htable", "t=>size=4;")
modparam("evrexec", "exec", "name=evrexec:start;workers=2;")
modparam("evrexec", "exec", "name=evrexec:late;wait=200000")
modparam("evrexec", "exec", "name=evrexec:sock;sockaddr=udp:127.0.0.1:__SOCK__")

event_route[htable:mod-init] {
    $sht(t=>starts) = 0;
    $sht(t=>sock_count) = 0;
}

event_route[evrexec:start] {
    $var(n) = $shtinc(t=>starts);
    if ($evr(data) == $null) { $sht(t=>start_data) = "null"; }
}

event_route[evrexec:late] {
    $sht(t=>late) = "ran";
}

event_route[evrexec:sock] {
    $sht(t=>sock_n) = $shtinc(t=>sock_count);
    $sht(t=>sock) = $evr(data) + "|" + $evr(srcip) + "|" + $evr(srcport) + "|" + $evr(srcportno);
}

event_route[evrexec:rpc] {
    $sht(t=>rpc) = "[" + $evr(data) + "]";
    if ($evr(srcip) == $null) { $sht(t=>rpc_src) = "null"; }
    $sht(t=>rpc_port) = $evr(srcportno);
}

request_route {
    if ($hdr(X-Op) == $null) { sl_send_reply("200", "up"); exit; }
    if ($hdr(X-Op) == "get") {
        $var(m) = $shtinc(t=>missing);
        append_to_reply("X-R: $sht(t=>starts) $sht(t=>start_data) $sht(t=>late) $sht(t=>sock_count) [$sht(t=>sock)] $var(m) $sht(t=>missing)\r\n");
    } else if ($hdr(X-Op) == "rpcget") {
        append_to_reply("X-R: $sht(t=>rpc) $sht(t=>rpc_src) $sht(t=>rpc_port)\r\n");
    } else {
        $var(r) = jsonrpc_exec("$hdr(X-RPC)");
        append_to_reply("X-R: $var(r) $jsonrpl(code) $jsonrpl(body)\r\n");
    }
    sl_send_reply("200", "ok");
}
"#;

fn step(n: usize, op: &str, hdrs: &str) -> (String, String) {
    let call = format!("evr{n}");
    let r = kamailio::options(&call, &format!("X-Op: {op}\r\n{hdrs}"));
    (call, r)
}

fn rpc(n: usize, params: &str) -> (String, String) {
    step(
        n,
        "rpc",
        &format!(
            "X-RPC: {{\"jsonrpc\":\"2.0\",\"method\":\"evrexec.run\",\"params\":{params},\"id\":{n}}}\r\n"
        ),
    )
}

#[test]
fn evrexec_matches_kamailio() {
    if !kamailio::available(MODULES) {
        return;
    }
    let dir = kamailio::fresh_dir("evrexec");
    // The datagrams' source, one port for both servers' runs.
    let sender = UdpSocket::bind("127.0.0.1:0").unwrap();
    let sock_port = sr_testkit::free_port();
    let body = BODY
        .replace("__DIR__", &dir.display().to_string())
        .replace("__SOCK__", &sock_port.to_string());
    let steps = vec![
        step(0, "get", ""),
        rpc(1, r#"["evrexec:rpc","some data"]"#),
        step(2, "rpcget", ""),
        rpc(3, r#"["evrexec:rpc"]"#),
        step(4, "rpcget", ""),
        rpc(5, r#"["evrexec:nothere"]"#),
        rpc(6, r#"[]"#),
    ];
    let cfg = kamailio::head(MODULES) + &body;
    let (want, got) = kamailio::run_scenario(&dir, &cfg, siprouter::in_tree(), &|| {}, &|srv| {
        let peer = sr_testkit::UdpPeer::new();
        kamailio::wait_until_up(&peer, srv, kamailio::PROBE, None);
        // The start routes, the one waiting 0.2 s included, have run.
        std::thread::sleep(Duration::from_millis(600));
        for d in ["first datagram", "second one"] {
            sender
                .send_to(d.as_bytes(), ("127.0.0.1", sock_port))
                .unwrap();
            std::thread::sleep(Duration::from_millis(150));
        }
        kamailio::answers(&peer, srv, &steps, &["X-R"])
    });
    let port = sender.local_addr().unwrap().port();
    assert_eq!(
        want[0],
        format!("evr0: 2 null ran 2 [second one|127.0.0.1|{port}|{port}] 0 <null>"),
        "{want:#?}"
    );
    kamailio::conclude(&dir, &want, &got, "evrexec");
}
