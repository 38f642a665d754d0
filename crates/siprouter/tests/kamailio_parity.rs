//! Differential test against Kamailio itself: the same configuration and
//! the same dispatcher list run on Kamailio (the Debian package's binary
//! and modules) and on siprouter, the same requests go to both, and every
//! answer must be the same: the destination chosen (`$du`), the failover
//! records (`$xavp(_dsdst_)`), their count (`$xavp(_dsctx_=>cnt)`), what
//! `ds_next_dst` moves to, `ds_is_from_list` with each mode for a URI and
//! for the real source, and `ds_is_active` — for the hash algorithms,
//! round robin, priority and latency order, an unknown algorithm, with
//! and without a limit, with `use_default` and with user-only hashing.
//!
//! Without Kamailio installed the test prints a notice and passes, unless
//! `SR_KAMAILIO_REQUIRED=1` (which `.ci/run` sets, after installing it).
//! Kamailio runs in a process group of its own, stopped whole afterwards.

use sr_testkit::kamailio::{self, assert_same, run_both, MPATH};
use std::path::{Path, PathBuf};

const LIST: &str = "\
1 sip:127.0.0.1:5081 0 0 duid=a;weight=50
1 sip:127.0.0.1:5082 0 0 duid=b;weight=30
1 sip:127.0.0.1:5083 8 5
1 sip:127.0.0.1:5085 0 0
2 sip:127.0.0.1:5084;transport=udp 0 3 x=1
2 sip:gw.example.com:5090 16 2
3 sip:127.0.0.1
4 sip:127.0.0.2:5070 0 0 where=four
2 sip:127.0.0.2:5071 0 0 where=two
";

/// The configuration both servers run (`__PORT__`, `__LIST__`,
/// `__FLAGS__`, `__DEF__` filled in).
const CFG: &str = r#"#!KAMAILIO
children=1
listen=udp:127.0.0.1:__PORT__
mpath="__MPATH__"
loadmodule "tm.so"
loadmodule "sl.so"
loadmodule "pv.so"
loadmodule "textops.so"
loadmodule "dispatcher.so"
modparam("dispatcher", "list_file", "__LIST__")
modparam("dispatcher", "flags", __FLAGS__)
modparam("dispatcher", "use_default", __DEF__)
modparam("dispatcher", "setid_pvname", "$var(setid)")
modparam("dispatcher", "attrs_pvname", "$var(attrs)")
request_route {
    $var(r) = ds_select_dst("$(hdr(X-Set){s.int})", "$(hdr(X-Alg){s.int})", "$(hdr(X-Limit){s.int})");
    append_to_reply("X-Sel: r=$var(r) du=$du x=$xavp(_dsdst_[0]=>uri),$xavp(_dsdst_[1]=>uri),$xavp(_dsdst_[2]=>uri),$xavp(_dsdst_[3]=>uri),$xavp(_dsdst_[4]=>uri) g=$xavp(_dsdst_[0]=>grp) a=$xavp(_dsdst_[0]=>attrs) cnt=$xavp(_dsctx_=>cnt)\r\n");
    $var(n) = "no";
    if (ds_next_dst()) { $var(n) = $du; }
    $var(f) = "no";
    $var(setid) = 0;
    $var(attrs) = "";
    if (ds_is_from_list("-1", "$(hdr(X-Mode){s.int})", "$hdr(X-From)")) { $var(f) = "yes " + $var(setid) + " " + $var(attrs); }
    $var(s) = "no";
    if (ds_is_from_list("-1", "$(hdr(X-Mode){s.int})")) { $var(s) = "yes"; }
    $var(a) = "no";
    if (ds_is_active("$(hdr(X-Set){s.int})")) { $var(a) = "yes"; }
    $var(m) = "none";
    if ($hdr(X-Mark) == "i") {
        $var(m) = ds_mark_dst("i");
    } else if ($hdr(X-Mark) == "a") {
        $var(m) = ds_mark_dst("a");
    }
    $var(d) = ds_select_domain("$(hdr(X-Set){s.int})", "$(hdr(X-Alg){s.int})");
    append_to_reply("X-Rest: next=$var(n) from=$var(f) src=$var(s) active=$var(a) mark=$var(m) dom=$var(d) ru=$ru\r\n");
    sl_send_reply("200", "ok");
}
"#;

fn config(port: &str, list: &Path, flags: u32, use_default: u32) -> String {
    CFG.replace("__PORT__", port)
        .replace("__MPATH__", MPATH)
        .replace("__LIST__", &list.display().to_string())
        .replace("__FLAGS__", &flags.to_string())
        .replace("__DEF__", &use_default.to_string())
}

/// The requests: every combination the matrix below makes, with its
/// headers.
fn requests() -> Vec<(String, String)> {
    let froms = [
        "sip:alice@atlanta.com",
        "sip:bob@biloxi.com:5070",
        "sips:carol@chicago.com:5061",
        "sip:+4930123@10.0.0.1",
    ];
    let tos = ["sip:bob@biloxi.com", "sip:x@y.z:5080"];
    let ruris = ["sip:bob@example.com", "sip:123@gw.net:5070;user=phone"];
    let sources = [
        "sip:127.0.0.1:5081",
        "sip:127.0.0.1:5084;transport=udp",
        "sip:127.0.0.1:9999",
        "sip:127.0.0.1:5084",
        "sip:127.0.0.1",
        "sip:127.0.0.1:5060;transport=tcp",
        "sip:127.0.0.2:5070",
    ];
    let modes = [0, 1, 2, 3, 4, 16, 5, 6];
    let mut out = Vec::new();
    let mut i = 0;
    for set in [1, 2, 3] {
        for alg in [0, 1, 2, 3, 4, 4, 4, 8, 13, 99] {
            for limit in [0, 2] {
                for k in 0..3 {
                    i += 1;
                    let call = format!("c{i}-{alg}@h");
                    let mut head = format!(
                        "X-Set: {set}\r\nX-Alg: {alg}\r\nX-Limit: {limit}\r\nX-Mode: {}\r\nX-From: {}\r\n",
                        modes[i % modes.len()],
                        sources[i % sources.len()]
                    );
                    // Now and then a destination is marked down, or up.
                    if i % 29 == 0 {
                        head.push_str("X-Mark: i\r\n");
                    } else if i % 13 == 0 {
                        head.push_str("X-Mark: a\r\n");
                    }
                    let text = format!(
                        "INVITE {ruri} SIP/2.0\r\nVia: SIP/2.0/UDP __VIA__;branch=z9hG4bKp{i}\r\nFrom: <{from}>;tag=1\r\nTo: <{to}>\r\nCall-ID: {call}\r\nCSeq: 1 INVITE\r\n{head}Max-Forwards: 70\r\nContent-Length: 0\r\n\r\n",
                        ruri = ruris[(k / 2) % 2],
                        from = froms[k % 4],
                        to = tos[k % 2],
                    );
                    out.push((call, text));
                }
            }
        }
    }
    out
}

const PROBE: &str = "OPTIONS sip:x@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP __VIA__;branch=z9hG4bKup\r\nFrom: <sip:a@b>;tag=1\r\nTo: <sip:x@y>\r\nCall-ID: up\r\nCSeq: 1 OPTIONS\r\nX-Set: 1\r\nX-Alg: 8\r\nX-Limit: 0\r\nX-Mode: 0\r\nX-From: sip:127.0.0.1\r\nContent-Length: 0\r\n\r\n";

#[test]
fn dispatcher_selection_matches_kamailio() {
    if !kamailio::available(&["dispatcher", "tm", "sl", "pv", "textops"]) {
        return;
    }
    let dir: PathBuf = std::env::temp_dir().join(format!("sr-kparity-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let list = dir.join("dispatcher.list");
    std::fs::write(&list, LIST).unwrap();
    let reqs = requests();
    for (flags, use_default) in [(2, 0), (2, 1), (3, 1)] {
        // The probe (algorithm 8) moves no round-robin position, and both
        // servers get it: both start the matrix from the same state.
        let cfg = |port: &str| config(port, &list, flags, use_default);
        let headers = ["X-Sel", "X-Rest"];
        let (want, got) = run_both(&dir, &cfg, PROBE, &reqs, &headers, siprouter::in_tree());
        // The matrix reaches what it is meant to: marks that took, and
        // selections after destinations went down.
        assert!(want.iter().any(|a| a.contains("mark=1 ")), "{want:?}");
        assert!(want.iter().any(|a| a.contains("dom=1 ru=sip:123@")));
        // 127.0.0.2 is in sets 2 and 4: with the port ignored, Kamailio's
        // walk meets set 4 first.
        assert!(want.iter().any(|a| a.contains("from=yes 4 where=four")));
        assert_same(
            &want,
            &got,
            &format!("flags={flags} use_default={use_default}"),
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}
