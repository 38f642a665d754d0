//! Fuzz target `pipeline`: a datagram (or a TCP message, by the first
//! byte) through the whole server — parse, core checks, a routing script
//! calling sanity, maxfwd, textops, siputils, rr, tm, registrar, usrloc and
//! auth — on a running siprouter. Only a panic (or a sanitizer report)
//! fails: every error path is fine. Its sends go to whatever the message
//! names, so run it only in a network namespace of its own (see the
//! README): `unshare -n`, with the loopback up.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sr_core::{Options, Runtime, Server};
use sr_sdk::{Proto, RecvInfo};
use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};

/// The server's address; the script's `{LISTEN}` stands for it.
const LISTEN: &str = "127.0.0.1:45060";

const CONFIG: &str = r#"
listen=udp:{LISTEN}
children=1
disable_tcp=yes
loadmodule "sl"
loadmodule "maxfwd"
loadmodule "sanity"
loadmodule "textops"
loadmodule "textopsx"
loadmodule "siputils"
loadmodule "pv"
loadmodule "tm"
loadmodule "tmx"
loadmodule "rr"
loadmodule "usrloc"
loadmodule "registrar"
loadmodule "auth"
modparam("usrloc", "db_mode", 0)
modparam("tm", "fr_timer", 500)
modparam("tm", "fr_inv_timer", 1000)
modparam("auth", "secret", "fuzz")

request_route {
    if (!mf_process_maxfwd_header("10")) { sl_send_reply("483", "Too Many Hops"); exit; }
    if (!sanity_check("17895", "7")) { exit; }
    if (is_method("OPTIONS") && uri == myself && $rU == $null) { options_reply(); exit; }
    if (has_totag()) {
        if (loose_route()) { if (!t_relay()) { sl_reply_error(); } exit; }
        if (is_method("ACK")) { if (t_check_trans()) { t_relay(); } exit; }
        sl_send_reply("404", "Not here");
        exit;
    }
    if (is_method("CANCEL")) { if (t_check_trans()) { t_relay(); } exit; }
    if (!t_precheck_trans()) { t_check_trans(); }
    remove_hf("Proxy-Authorization");
    if (is_method("REGISTER")) {
        if (!is_present_hf("X-NoAuth") && !pv_www_authenticate("$td", "secret", "0")) {
            www_challenge("$td", "0");
            exit;
        }
        if (!save("location")) { sl_reply_error(); }
        exit;
    }
    if (is_method("INVITE|SUBSCRIBE")) { record_route(); }
    if (search("^X-Fuzz: .*")) { append_hf("X-Seen: yes\r\n"); subst('/^(X-Fuzz:) (.*)$/\1 \2!/'); msg_apply_changes(); }
    if (uri_param("transport", "tcp")) { add_uri_param("fuzzed=1"); }
    if (lookup("location")) { t_on_failure("MISSED"); t_on_reply("SEEN"); t_relay(); exit; }
    # To itself: the request comes back until Max-Forwards runs out, and
    # the 483 travels back through every hop (replies, failure routes).
    if ($hdr(X-Loop) != $null) { $du = "sip:{LISTEN}"; } else { $du = "sip:127.0.0.1:45070"; }
    if (!t_relay()) { sl_reply_error(); }
}

onreply_route[SEEN] {
    if (status =~ "^18") { remove_hf("Contact"); }
}

failure_route[MISSED] {
    if (t_is_canceled()) { exit; }
    if (t_check_status("483")) { $du = "sip:127.0.0.1:45070"; t_relay(); exit; }
    t_reply("480", "Missed");
}
"#;

/// Refuses to run where the fuzzed messages' addresses could be reached:
/// the network namespace must have no interface but the loopback.
fn only_loopback() {
    let dev = std::fs::read_to_string("/proc/self/net/dev").unwrap_or_default();
    let others: Vec<&str> = dev
        .lines()
        .skip(2)
        .filter_map(|l| l.split(':').next())
        .map(str::trim)
        .filter(|n| *n != "lo")
        .collect();
    assert!(
        others.is_empty() && !dev.is_empty(),
        "pipeline sends where the fuzzed messages say: run it in a network \
         namespace of its own (`unshare -rn`, see fuzz/README.md); found {others:?}"
    );
}

fn server() -> &'static (Arc<Runtime>, Server) {
    static S: OnceLock<(Arc<Runtime>, Server)> = OnceLock::new();
    S.get_or_init(|| {
        only_loopback();
        let opts = Options {
            config: "fuzz.cfg".into(),
            config_text: Some(CONFIG.replace("{LISTEN}", LISTEN)),
            in_tree: siprouter::in_tree(),
            ..Default::default()
        };
        let rt = sr_core::load(&opts, false).unwrap_or_else(|e| panic!("{}", e.join("\n")));
        let srv = sr_core::start(&rt).expect("start");
        // Errors are expected on every input: don't spend the run logging.
        sr_sdk::log::set_level(-10);
        (rt, srv)
    })
}

fuzz_target!(|data: &[u8]| {
    let Some((&first, msg)) = data.split_first() else {
        return;
    };
    let (rt, _) = server();
    let tcp = first & 1 == 1;
    let rcv = RecvInfo {
        src: SocketAddr::from(([127, 0, 0, 1], 45080 + u16::from(first >> 4))),
        dst: LISTEN.parse().expect("address"),
        proto: if tcp { Proto::Tcp } else { Proto::Udp },
        conn_id: u64::from(tcp),
    };
    rt.receive(bytes::Bytes::copy_from_slice(msg), rcv);
});
