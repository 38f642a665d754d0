//! The script-execution workload shared by the criterion benchmark
//! (`benches/script.rs`) and instruction counting under callgrind:
//! `script_workload N` parses and routes the INVITE N times.

use std::sync::Arc;

/// A realistic request_route: sub-routes, conditions, regexes,
/// pseudo-variables with transformations and module calls. It ends in
/// `exit`, so nothing is sent.
pub const CONFIG: &str = r#"
listen=udp:127.0.0.1:5060
loadmodule "sl"
loadmodule "maxfwd"
loadmodule "sanity"
loadmodule "textops"
loadmodule "siputils"
request_route {
    route(REQINIT);
    if (is_method("CANCEL")) { exit; }
    route(WITHINDLG);
    if (is_method("INVITE|SUBSCRIBE")) { $var(rr) = 1; }
    $avp(oexten) = $rU;
    if ($rU == $null) { exit; }
    route(LOCATION);
    exit;
}
route[REQINIT] {
    if ($ua =~ "friendly|scanner|sipcli|sipvicious") { exit; }
    if (!mf_process_maxfwd_header("10")) { exit; }
    if (!sanity_check("17895", "7")) { exit; }
    if (is_method("OPTIONS") && uri==myself && $rU==$null) { exit; }
}
route[WITHINDLG] {
    if (!has_totag()) { return; }
    exit;
}
route[LOCATION] {
    $var(target) = "sip:" + $rU + "@" + $(rd{s.tolower});
    $du = $var(target);
}
"#;

/// A typical INVITE.
pub const INVITE: &[u8] = b"INVITE sip:bob@Biloxi.example.com SIP/2.0\r\n\
Via: SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bK74bf9;rport\r\n\
Max-Forwards: 70\r\n\
From: Alice <sip:alice@atlanta.example.com>;tag=9fxced76sl\r\n\
To: Bob <sip:bob@biloxi.example.com>\r\n\
Call-ID: 3848276298220188511@atlanta.example.com\r\n\
CSeq: 1 INVITE\r\n\
Contact: <sip:alice@192.0.2.10:5060>\r\n\
User-Agent: softphone 1.0\r\n\
Content-Type: application/sdp\r\n\
Content-Length: 0\r\n\r\n";

/// Loads the config (no sockets are opened).
pub fn runtime() -> Arc<sr_core::Runtime> {
    let dir = std::env::temp_dir().join(format!("siprouter-script-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let path = dir.join("bench.cfg");
    std::fs::write(&path, CONFIG).expect("write config");
    sr_core::load(&siprouter::options(&path), false).expect("config loads")
}

/// Parses the INVITE and runs request_route once; returns the route code.
pub fn route_once(rt: &sr_core::Runtime) -> i32 {
    let rcv = sr_sdk::RecvInfo {
        src: "192.0.2.10:5060".parse().expect("addr"),
        dst: "127.0.0.1:5060".parse().expect("addr"),
        proto: sr_sdk::Proto::Udp,
        conn_id: 0,
    };
    let mut msg = sr_sdk::SipMsg::parse(bytes::Bytes::from_static(INVITE), rcv, 1).expect("parses");
    let idx = rt.routes().request.expect("request_route");
    rt.run_block(idx, sr_sdk::RouteType::REQUEST, &mut msg).code
}

#[allow(dead_code)]
fn main() {
    let n: u64 = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(100_000);
    let rt = runtime();
    let mut sum = 0i64;
    for _ in 0..n {
        sum += route_once(&rt) as i64;
    }
    println!("{n} messages routed (checksum {sum})");
}
