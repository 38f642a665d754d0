//! Differential test against Kamailio itself, for ipops' name functions:
//! `dns_sys_match_ip`, `dns_int_match_ip` and `dns_query` with `$dns`,
//! on names the machine resolves without a DNS server (/etc/hosts'
//! `localhost` and the host's own names), addresses written as text and
//! a name that does not resolve — the same requests to both servers and
//! every return code and `$dns` value compared.
//!
//! Without Kamailio installed the test prints a notice and passes, unless
//! `SR_KAMAILIO_REQUIRED=1` (`.ci/run` sets it).

use sr_testkit::kamailio;

const BODY: &str = r#"request_route {
    if ($hdr(X-H) == $null) { sl_send_reply("200", "up"); exit; }
    $var(h) = $hdr(X-H);
    $var(s4) = dns_sys_match_ip("$var(h)", "127.0.0.1");
    $var(s6) = dns_sys_match_ip("$var(h)", "10.9.9.9");
    $var(sb) = dns_sys_match_ip("$var(h)", "not-an-ip");
    # Kamailio's own resolver asks DNS only (no /etc/hosts): compared on
    # addresses written as text.
    $var(i4) = "-";
    $var(i6) = "-";
    if ($var(h) =~ "^[0-9]") {
        $var(i4) = dns_int_match_ip("$var(h)", "127.0.0.1");
        $var(i6) = dns_int_match_ip("$var(h)", "10.9.9.9");
    }
    $var(q) = dns_query("$var(h)", "q");
    $var(i) = 1;
    append_to_reply("X-R: s=$var(s4),$var(s6),$var(sb) i=$var(i4),$var(i6) q=$var(q) count=$dns(q=>count) v4=$dns(q=>ipv4) v6=$dns(q=>ipv6) a0=$dns(q=>addr[0]) t0=$dns(q=>type[0]) a1=$dns(q=>addr[$var(i)]) t1=$dns(q=>type[1]) a9=$dns(q=>addr[9]) none=$dns(other=>count)\r\n");
    sl_send_reply("200", "ok");
}
"#;

#[test]
fn ipops_dns_matches_kamailio() {
    if !kamailio::available(&["sl", "pv", "textops", "ipops"]) {
        return;
    }
    let dir = kamailio::fresh_dir("ipops-dns");
    let hosts = ["localhost", "127.0.0.1", "10.9.9.9", "no-such-host.invalid"];
    let reqs: Vec<(String, String)> = hosts
        .iter()
        .enumerate()
        .map(|(n, h)| {
            let call = format!("dns-{n}");
            let text = kamailio::options(&call, &format!("X-H: {h}\r\n"));
            (call, text)
        })
        .collect();
    let (want, got) = kamailio::run_parity(
        &dir,
        &["sl", "pv", "textops", "ipops"],
        BODY,
        &[],
        &reqs,
        &["X-R"],
        siprouter::in_tree(),
    );
    assert!(want.iter().any(|l| l.contains("a0=127.0.0.1")), "{want:#?}");
    kamailio::conclude(&dir, &want, &got, "ipops-dns");
}
