//! Differential test against Kamailio itself, for the ipops module: the
//! same configuration on Kamailio (its ipops module) and on siprouter, the
//! same strings sent to both, and every answer compared: `is_ip`,
//! `is_pure_ip`, `is_ipv4`, `is_ipv6`, `is_ipv6_reference`, `ip_type`,
//! `compare_ips`, `compare_pure_ips`, `is_ip_rfc1918`, `is_in_subnet`
//! (one subnet and lists) and the three `detailed_*_type`.
//!
//! Without Kamailio installed the test prints a notice and passes, unless
//! `SR_KAMAILIO_REQUIRED=1` (`.ci/run` sets it).

use sr_testkit::kamailio::{self, assert_same, run_both, MPATH};

const CFG: &str = r#"#!KAMAILIO
children=1
listen=udp:127.0.0.1:__PORT__
mpath="__MPATH__"
loadmodule "sl.so"
loadmodule "pv.so"
loadmodule "textops.so"
loadmodule "ipops.so"
request_route {
    $var(a) = $hdr(X-A);
    $var(b) = $hdr(X-B);
    $var(n) = $hdr(X-N);
    $var(r1) = is_ip("$var(a)");
    $var(r2) = is_pure_ip("$var(a)");
    $var(r3) = is_ipv4("$var(a)");
    $var(r4) = is_ipv6("$var(a)");
    $var(r5) = is_ipv6_reference("$var(a)");
    $var(r6) = ip_type("$var(a)");
    $var(r7) = compare_ips("$var(a)", "$var(b)");
    $var(r8) = compare_pure_ips("$var(a)", "$var(b)");
    $var(r9) = is_ip_rfc1918("$var(a)");
    $var(r10) = is_in_subnet("$var(a)", "$var(n)");
    $var(t1) = "none";
    $var(t2) = "none";
    $var(t3) = "none";
    $var(d1) = detailed_ip_type("$var(a)", "$var(t1)");
    $var(d2) = detailed_ipv4_type("$var(a)", "$var(t2)");
    $var(d3) = detailed_ipv6_type("$var(a)", "$var(t3)");
    append_to_reply("X-R: $var(r1) $var(r2) $var(r3) $var(r4) $var(r5) $var(r6) $var(r7) $var(r8) $var(r9) $var(r10) $var(d1):$var(t1) $var(d2):$var(t2) $var(d3):$var(t3)\r\n");
    sl_send_reply("200", "ok");
}
"#;

const PROBE: &str = "OPTIONS sip:x@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP __VIA__;branch=z9hG4bKup\r\nFrom: <sip:a@b>;tag=1\r\nTo: <sip:x@y>\r\nCall-ID: up\r\nCSeq: 1 OPTIONS\r\nX-A: 1.1.1.1\r\nX-B: 1.1.1.1\r\nX-N: 1.1.1.0/24\r\nContent-Length: 0\r\n\r\n";

fn requests() -> Vec<(String, String)> {
    let addrs = [
        "10.1.2.3",
        "172.17.0.1",
        "172.20.0.1",
        "192.168.1.1",
        "100.100.0.1",
        "127.0.0.1",
        "169.254.1.1",
        "192.0.0.3",
        "192.0.2.9",
        "192.88.99.1",
        "198.18.0.1",
        "198.51.100.7",
        "203.0.113.9",
        "224.0.0.1",
        "240.1.1.1",
        "255.255.255.255",
        "0.1.2.3",
        "8.8.8.8",
        "010.1.2.3",
        "1.2.3",
        "1.2.3.4.5",
        "256.1.1.1",
        "::",
        "::1",
        "::ffff:10.0.0.1",
        "100::1",
        "2001:2::1",
        "2001::1",
        "2001:db8::1",
        "2001:10::1",
        "2002::1",
        "fec0::1",
        "fe80::1",
        "fe00::1",
        "ff02::1",
        "fd00::1",
        "2a00:1450::1",
        "4000::1",
        "[::1]",
        "[2001:db8::1]",
        "[10.0.0.1]",
        "2001:db8::1%eth0",
        "example.com",
        "",
        // Untidy input, as scripts pass it.
        "10.0.0.1:5060",
        "192.168.1.1abc",
        "10.0.0.256",
        "10.0.0.9999",
        "10.0.0.01",
        "172.31.0.5x",
        "[::1",
    ];
    let others = ["10.1.2.3", "::1", "[::1]", "2001:DB8::1", "8.8.8.8"];
    let nets = [
        "10.0.0.0/8",
        "10.1.2.3",
        "172.16.0.0/12,192.168.0.0/16",
        "2001:db8::/32",
        "0.0.0.0/0",
        "1.2.3.0/33",
        "::/0",
        "10.0.0.0/",
        "10.0.0.0/8x",
        "10.0.0.0/8 , 192.168.0.0/16",
        "10.0.0.5/-1",
    ];
    let mut out = Vec::new();
    for (i, a) in addrs.iter().enumerate() {
        for k in 0..2 {
            let n = i * 2 + k;
            let call = format!("ip{n}");
            let b = if k == 0 { a } else { others[n % others.len()] };
            let text = format!(
                "OPTIONS sip:x@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP __VIA__;branch=z9hG4bKi{n}\r\nFrom: <sip:a@b>;tag=1\r\nTo: <sip:x@y>\r\nCall-ID: {call}\r\nCSeq: 1 OPTIONS\r\nX-A: {a}\r\nX-B: {b}\r\nX-N: {}\r\nContent-Length: 0\r\n\r\n",
                nets[n % nets.len()]
            );
            out.push((call, text));
        }
    }
    out
}

#[test]
fn ipops_match_kamailio() {
    if !kamailio::available(&["ipops", "sl", "pv", "textops"]) {
        return;
    }
    let dir = std::env::temp_dir().join(format!("sr-kipops-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let cfg = |port: &str| CFG.replace("__PORT__", port).replace("__MPATH__", MPATH);
    let (want, got) = run_both(
        &dir,
        &cfg,
        PROBE,
        &requests(),
        &["X-R"],
        siprouter::in_tree(),
    );
    assert_same(&want, &got, "ipops");
    let _ = std::fs::remove_dir_all(&dir);
}
