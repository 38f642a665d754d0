//! dmq against Kamailio 5.6: one cluster of a Kamailio node (127.0.0.2)
//! and a siprouter node (127.0.0.3), each the other's
//! `notification_address`, on the same configuration. Checked: both list
//! the other as an active node (`kamcmd dmq.list_nodes` on both control
//! sockets); a REGISTER to either is saved there and, by
//! `dmq_t_replicate()`, on the other; `dmq_bcast_message` from either
//! reaches the other's script; a request from a node is recognised by
//! `dmq_is_from_node()`; and when Kamailio stops, siprouter sets it back to
//! pending (it is its notification address, which is never removed).
//!
//! dmq_usrloc on the same pair: contacts saved on Kamailio before siprouter
//! started reach siprouter by the sync at start; later ones, and their
//! removal, go both ways.

use sr_testkit::kamailio::{self, Kamailio};
use sr_testkit::{answer, free_port, from_caller, req, TestServer, UdpPeer};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

const KAM_IP: &str = "127.0.0.2";
const SR_IP: &str = "127.0.0.3";

/// How contacts and items go between the nodes.
#[derive(Clone, Copy, PartialEq)]
enum Mode {
    /// REGISTERs by `dmq_t_replicate()`.
    TReplicate,
    /// Contacts by dmq_usrloc.
    Usrloc,
    /// htable's tables by `enable_dmq`.
    Htable,
    /// dialog's dialogs by `enable_dmq`.
    Dialog,
}

/// The configuration both run: `ADDR:PORT` this node, `OTHER` the other.
fn cfg(addr: &str, port: u16, other: &str, dir: &Path, mode: Mode) -> String {
    let extra = match mode {
        Mode::TReplicate => "modparam(\"htable\", \"htable\", \"t=>size=4;\")\n",
        Mode::Usrloc => "modparam(\"htable\", \"htable\", \"t=>size=4;\")\nloadmodule \"dmq_usrloc.so\"\nmodparam(\"dmq_usrloc\", \"enable\", 1)\n",
        Mode::Htable => "modparam(\"htable\", \"htable\", \"t=>size=8;autoexpire=0;dmqreplicate=1;\")\nmodparam(\"htable\", \"htable\", \"e=>size=8;autoexpire=300;dmqreplicate=1;\")\nmodparam(\"htable\", \"enable_dmq\", 1)\nmodparam(\"htable\", \"dmq_init_sync\", 1)\n",
        Mode::Dialog => "modparam(\"htable\", \"htable\", \"t=>size=4;\")\nloadmodule \"rr.so\"\nloadmodule \"siputils.so\"\nloadmodule \"dialog.so\"\nmodparam(\"dialog\", \"enable_dmq\", 1)\nmodparam(\"dialog\", \"profiles_with_value\", \"caller\")\n",
    };
    let calls = if mode == Mode::Dialog {
        "if (is_method(\"INVITE|ACK|BYE\")) {\n        if (has_totag()) {\n            if (loose_route()) { t_relay(); }\n            exit;\n        }\n        if (is_method(\"INVITE\")) {\n            dlg_manage();\n            set_dlg_profile(\"caller\", \"$fU\");\n            record_route();\n            t_relay();\n        }\n        exit;\n    }"
    } else {
        ""
    };
    let replicate = if mode == Mode::TReplicate {
        "if (!dmq_is_from_node()) { dmq_t_replicate(); }"
    } else {
        ""
    };
    format!(
        r#"
listen=udp:{addr}:{port}
children=2
log_stderror=yes
mpath="{mpath}"
loadmodule "tm.so"
loadmodule "sl.so"
loadmodule "pv.so"
loadmodule "xlog.so"
loadmodule "textops.so"
loadmodule "dmq.so"
loadmodule "htable.so"
loadmodule "usrloc.so"
loadmodule "registrar.so"
loadmodule "ctl.so"
modparam("ctl", "binrpc", "unix:{dir}/ctl.sock")
modparam("tm", "fr_timer", 1000)
modparam("dmq", "server_address", "sip:{addr}:{port}")
modparam("dmq", "notification_address", "sip:{other}")
modparam("dmq", "ping_interval", 5)
{extra}

request_route {{
    {calls}
    if (is_method("KDMQ")) {{
        if ($rU == "chan") {{
            $sht(t=>chan) = $rb;
        }}
        dmq_handle_message();
        exit;
    }}
    if (is_method("REGISTER")) {{
        if (!save("location")) {{
            sl_reply_error();
        }}
        {replicate}
        exit;
    }}
    if (is_method("MESSAGE")) {{
        dmq_bcast_message("chan", "$rb", "text/plain");
        sl_send_reply("200", "Sent");
        exit;
    }}
    if (is_method("PUBLISH")) {{
        $sht(t=>$rU) = $rb;
        sl_send_reply("200", "Set");
        exit;
    }}
    if (is_method("INFO")) {{
        $sht(t=>$rU) = $null;
        sl_send_reply("200", "Deleted");
        exit;
    }}
    if (is_method("NOTIFY")) {{
        $var(n) = $shtinc(t=>$rU);
        sl_send_reply("200", "Incremented");
        exit;
    }}
    if (is_method("SUBSCRIBE")) {{
        sht_rm_name_re("t=>^$rU");
        sl_send_reply("200", "Removed");
        exit;
    }}
    if (is_method("OPTIONS")) {{
        if (dmq_is_from_node()) {{
            sl_send_reply("200", "From node");
        }} else {{
            sl_send_reply("200", "Not from node");
        }}
        exit;
    }}
    sl_send_reply("404", "Not here");
}}
"#,
        mpath = kamailio::MPATH,
        dir = dir.display(),
    )
}

/// The two nodes of a test: ports, folders, SIP addresses and control
/// sockets.
struct Pair {
    kam_port: u16,
    sr_port: u16,
    kam_dir: PathBuf,
    sr_dir: PathBuf,
    kam_addr: SocketAddr,
    sr_addr: SocketAddr,
    kam_sock: PathBuf,
    sr_sock: PathBuf,
    mode: Mode,
}

impl Pair {
    /// A pair running `mode`, its files in a fresh folder `name`; `None`
    /// (the test passes) without Kamailio, `kamcmd`, or the modules (the
    /// common ones and `extra`).
    fn new(name: &str, extra: &[&str], mode: Mode) -> Option<Pair> {
        let mut mods = vec![
            "tm",
            "sl",
            "pv",
            "xlog",
            "textops",
            "htable",
            "usrloc",
            "registrar",
            "ctl",
            "dmq",
        ];
        mods.extend_from_slice(extra);
        if !kamailio::available(&mods) || !kamailio::kamcmd_available(&[]) {
            return None;
        }
        let (kam_port, sr_port) = (free_port(), free_port());
        let kam_dir = kamailio::fresh_dir(name);
        let sr_dir = kam_dir.join("siprouter");
        std::fs::create_dir_all(&sr_dir).unwrap();
        Some(Pair {
            kam_port,
            sr_port,
            kam_addr: format!("{KAM_IP}:{kam_port}").parse().unwrap(),
            sr_addr: format!("{SR_IP}:{sr_port}").parse().unwrap(),
            kam_sock: kam_dir.join("ctl.sock"),
            sr_sock: sr_dir.join("ctl.sock"),
            kam_dir,
            sr_dir,
            mode,
        })
    }

    /// Starts the Kamailio node.
    fn kamailio(&self) -> Kamailio {
        let other = self.sr_addr.to_string();
        Kamailio::start(
            &self.kam_dir,
            &cfg(KAM_IP, self.kam_port, &other, &self.kam_dir, self.mode),
        )
    }

    /// Starts the siprouter node.
    fn siprouter(&self) -> TestServer {
        let other = self.kam_addr.to_string();
        TestServer::start(
            &cfg(SR_IP, self.sr_port, &other, &self.sr_dir, self.mode),
            siprouter::in_tree(),
        )
    }
}

/// `kamcmd dmq.list_nodes` on a control socket, as `host:port status
/// local` lines, sorted.
fn nodes(sock: &Path) -> Vec<String> {
    let lines = kamailio::kamcmd(sock, &["dmq.list_nodes"], &|l| l.trim().to_string());
    let mut out = Vec::new();
    let mut cur: Vec<(String, String)> = Vec::new();
    for l in lines.iter().skip(1) {
        if l == "}" {
            let get = |k: &str| {
                cur.iter()
                    .find(|(n, _)| n == k)
                    .map(|(_, v)| v.clone())
                    .unwrap_or_default()
            };
            out.push(format!(
                "{}:{} {} local={} proto={} ip={}",
                get("host"),
                get("port"),
                get("status"),
                get("local"),
                get("proto"),
                get("resolved_ip")
            ));
            cur.clear();
        } else if let Some((k, v)) = l.split_once(": ") {
            cur.push((k.to_string(), v.to_string()));
        }
    }
    out.sort();
    out
}

/// Waits until `f` holds (10 s at most); its last value.
fn until<T>(mut f: impl FnMut() -> T, ok: impl Fn(&T) -> bool) -> T {
    let end = Instant::now() + Duration::from_secs(10);
    loop {
        let v = f();
        if ok(&v) || Instant::now() > end {
            return v;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn register(to: SocketAddr, user: &str) -> String {
    register_for(to, user, 600)
}

/// A REGISTER of `user`'s one contact for `expires` seconds (0 removes it:
/// sent with the next CSeq).
fn register_for(to: SocketAddr, user: &str, expires: u32) -> String {
    let cseq = if expires == 0 { 2 } else { 1 };
    let ua = UdpPeer::new();
    let me = ua.addr();
    ua.send(
        to,
        &format!("REGISTER sip:{to} SIP/2.0\r\nVia: SIP/2.0/UDP {me};branch=z9hG4bK-{user}\r\nFrom: <sip:{user}@{to}>;tag={user}\r\nTo: <sip:{user}@{to}>\r\nCall-ID: reg-{user}\r\nCSeq: {cseq} REGISTER\r\nContact: <sip:{user}@127.0.0.1:5099>\r\nExpires: {expires}\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n"),
    );
    ua.recv_final(Duration::from_secs(3))
        .map(|r| r.text().lines().next().unwrap_or_default().to_string())
        .unwrap_or_default()
}

fn request(from: &UdpPeer, to: SocketAddr, method: &str, body: &str) -> String {
    request_to(from, to, method, "x", body)
}

/// A request to `user@to`; the first line of its final reply.
fn request_to(from: &UdpPeer, to: SocketAddr, method: &str, user: &str, body: &str) -> String {
    let me = from.addr();
    from.send(
        to,
        &format!("{method} sip:{user}@{to} SIP/2.0\r\nVia: SIP/2.0/UDP {me};branch=z9hG4bK-{method}{}\r\nFrom: <sip:t@{me}>;tag=t\r\nTo: <sip:x@{to}>\r\nCall-ID: {method}-{user}-{}\r\nCSeq: 1 {method}\r\nEvent: x\r\nMax-Forwards: 70\r\nContent-Type: text/plain\r\nContent-Length: {}\r\n\r\n{body}", body.len(), body.len(), body.len()),
    );
    from.recv_final(Duration::from_secs(3))
        .map(|r| r.text().lines().next().unwrap_or_default().to_string())
        .unwrap_or_default()
}

/// Whether `user` has a contact on the server behind `sock`.
fn registered(sock: &Path, user: &str) -> bool {
    kamailio::kamcmd(sock, &["ul.dump"], &|l| l.to_string())
        .iter()
        .any(|l| l.contains(&format!("AoR: {user}")))
}

fn sht(sock: &Path, key: &str) -> String {
    kamailio::kamcmd(sock, &["htable.get", "t", key], &|l| l.trim().to_string()).join(" ")
}

#[test]
fn a_kamailio_and_a_siprouter_node_form_one_dmq_cluster() {
    let Some(p) = Pair::new("dmq", &[], Mode::TReplicate) else {
        return;
    };
    let (kam_addr, sr_addr) = (p.kam_addr, p.sr_addr);
    let (kam_sock, sr_sock) = (p.kam_sock.clone(), p.sr_sock.clone());
    let _srv = p.siprouter();
    let kam = p.kamailio();

    // Both list both, the other one active.
    let kam_node = kam_addr.to_string();
    let sr_node = sr_addr.to_string();
    let want_kam = vec![
        format!("{kam_node} active local=1 proto=* ip={KAM_IP}"),
        format!("{sr_node} active local=0 proto=* ip={SR_IP}"),
    ];
    let want_sr = vec![
        format!("{kam_node} active local=0 proto=* ip={KAM_IP}"),
        format!("{sr_node} active local=1 proto=* ip={SR_IP}"),
    ];
    let got_kam = until(|| nodes(&kam_sock), |v| *v == want_kam);
    let got_sr = until(|| nodes(&sr_sock), |v| *v == want_sr);
    assert_eq!(got_kam, want_kam, "Kamailio's node list; log {:?}", kam.log);
    assert_eq!(got_sr, want_sr, "siprouter's node list");

    // A REGISTER to either is saved on both.
    assert_eq!(register(sr_addr, "alice"), "SIP/2.0 200 OK");
    assert_eq!(register(kam_addr, "bob"), "SIP/2.0 200 OK");
    for (sock, who) in [(&kam_sock, "Kamailio"), (&sr_sock, "siprouter")] {
        for user in ["alice", "bob"] {
            assert!(
                until(|| registered(sock, user), |v| *v),
                "{user} is not registered on {who}"
            );
        }
    }

    // dmq_bcast_message from each reaches the other's script (and the
    // sender's node list is unchanged by the 404/202 answers).
    let ua = UdpPeer::new();
    assert_eq!(
        request(&ua, sr_addr, "MESSAGE", "from-siprouter"),
        "SIP/2.0 200 Sent"
    );
    assert_eq!(
        request(&ua, kam_addr, "MESSAGE", "from-kamailio"),
        "SIP/2.0 200 Sent"
    );
    let on_kam = until(|| sht(&kam_sock, "chan"), |v| v.contains("from-siprouter"));
    assert!(on_kam.contains("from-siprouter"), "Kamailio got: {on_kam}");
    let on_sr = until(|| sht(&sr_sock, "chan"), |v| v.contains("from-kamailio"));
    assert!(on_sr.contains("from-kamailio"), "siprouter got: {on_sr}");

    // dmq_is_from_node: by source address, the port not compared.
    let from_node = UdpPeer::on(&format!("{KAM_IP}:0"));
    assert_eq!(
        request(&from_node, sr_addr, "OPTIONS", ""),
        "SIP/2.0 200 From node"
    );
    assert_eq!(
        request(&ua, sr_addr, "OPTIONS", ""),
        "SIP/2.0 200 Not from node"
    );
    let from_node = UdpPeer::on(&format!("{SR_IP}:0"));
    assert_eq!(
        request(&from_node, kam_addr, "OPTIONS", ""),
        "SIP/2.0 200 From node"
    );
    assert_eq!(
        request(&ua, kam_addr, "OPTIONS", ""),
        "SIP/2.0 200 Not from node"
    );

    // Kamailio stops: at the next ping (5 s) siprouter gets no answer
    // (fr_timer 1 s) and sets its notification address back to pending.
    drop(kam);
    let want = vec![
        format!("{kam_node} pending local=0 proto=* ip={KAM_IP}"),
        format!("{sr_node} active local=1 proto=* ip={SR_IP}"),
    ];
    let got = until(|| nodes(&sr_sock), |v| *v == want);
    assert_eq!(got, want, "siprouter's node list after Kamailio stopped");
}

#[test]
fn dmq_usrloc_replicates_contacts_both_ways_with_kamailio() {
    let Some(p) = Pair::new("dmq-usrloc", &["dmq_usrloc"], Mode::Usrloc) else {
        return;
    };
    let (kam_addr, sr_addr) = (p.kam_addr, p.sr_addr);
    let (kam_sock, sr_sock) = (p.kam_sock.clone(), p.sr_sock.clone());
    // Kamailio first, with a contact before siprouter exists.
    let kam = p.kamailio();
    let early = until(|| register(kam_addr, "carol"), |r| r == "SIP/2.0 200 OK");
    assert_eq!(early, "SIP/2.0 200 OK", "log {:?}", kam.log);
    let _srv = p.siprouter();
    // The sync at start brings carol over.
    assert!(
        until(|| registered(&sr_sock, "carol"), |v| *v),
        "carol did not reach siprouter by the sync"
    );
    // Later registrations go both ways.
    assert_eq!(register(sr_addr, "dave"), "SIP/2.0 200 OK");
    assert_eq!(register(kam_addr, "erin"), "SIP/2.0 200 OK");
    assert!(
        until(|| registered(&kam_sock, "dave"), |v| *v),
        "dave on Kamailio"
    );
    assert!(
        until(|| registered(&sr_sock, "erin"), |v| *v),
        "erin on siprouter"
    );
    // The copy keeps the contact, its Call-ID and expiry.
    let show = |sock: &Path, user: &str| -> Vec<String> {
        kamailio::kamcmd(sock, &["ul.lookup", "location", user], &|l| {
            l.trim().to_string()
        })
        .into_iter()
        .filter(|l| l.starts_with("Address:") || l.starts_with("Call-ID:"))
        .collect()
    };
    assert_eq!(show(&kam_sock, "dave"), show(&sr_sock, "dave"));
    assert_eq!(show(&kam_sock, "erin"), show(&sr_sock, "erin"));
    assert_eq!(
        show(&sr_sock, "dave").len(),
        2,
        "{:?}",
        show(&sr_sock, "dave")
    );
    // Removals by REGISTER go both ways too.
    assert_eq!(register_for(sr_addr, "dave", 0), "SIP/2.0 200 OK");
    assert_eq!(register_for(kam_addr, "erin", 0), "SIP/2.0 200 OK");
    assert!(
        until(|| !registered(&kam_sock, "dave"), |v| *v),
        "dave still on Kamailio"
    );
    assert!(
        until(|| !registered(&sr_sock, "erin"), |v| *v),
        "erin still on siprouter"
    );
    assert!(registered(&sr_sock, "carol") && registered(&kam_sock, "carol"));
}

/// An item's value as `kamcmd htable.get` shows it, `None` when missing.
fn sht_value(sock: &Path, table: &str, key: &str) -> Option<String> {
    kamailio::kamcmd(sock, &["htable.get", table, key], &|l| l.trim().to_string())
        .iter()
        .find_map(|l| l.strip_prefix("value: ").map(str::to_string))
}

#[test]
fn htable_tables_replicate_with_kamailio() {
    let Some(p) = Pair::new("dmq-htable", &[], Mode::Htable) else {
        return;
    };
    let (kam_addr, sr_addr) = (p.kam_addr, p.sr_addr);
    let (kam_sock, sr_sock) = (p.kam_sock.clone(), p.sr_sock.clone());
    let kam = p.kamailio();
    // Items on Kamailio before siprouter starts.
    let early = until(
        || {
            kamailio::kamcmd(&kam_sock, &["htable.sets", "t", "early", "before"], &|l| {
                l.to_string()
            })
        },
        |v| v.iter().any(|l| l.contains("Ok")),
    );
    assert!(
        early.iter().any(|l| l.contains("Ok")),
        "{early:?}; log {:?}",
        kam.log
    );
    kamailio::kamcmd(&kam_sock, &["htable.seti", "e", "lives", "7"], &|l| {
        l.to_string()
    });
    let _srv = p.siprouter();
    // The sync at start brings them over, with their lifetimes.
    let got = until(|| sht_value(&sr_sock, "t", "early"), |v| v.is_some());
    assert_eq!(got.as_deref(), Some("before"), "sync of t=>early");
    assert_eq!(sht_value(&sr_sock, "e", "lives").as_deref(), Some("7"));
    // Script and RPC changes go both ways.
    let ua = UdpPeer::new();
    assert_eq!(
        request_to(&ua, sr_addr, "PUBLISH", "k1", "v1"),
        "SIP/2.0 200 Set"
    );
    assert_eq!(
        request_to(&ua, kam_addr, "PUBLISH", "k2", "v2"),
        "SIP/2.0 200 Set"
    );
    let on_kam = until(|| sht_value(&kam_sock, "t", "k1"), |v| v.is_some());
    assert_eq!(on_kam.as_deref(), Some("v1"), "k1 on Kamailio");
    let on_sr = until(|| sht_value(&sr_sock, "t", "k2"), |v| v.is_some());
    assert_eq!(on_sr.as_deref(), Some("v2"), "k2 on siprouter");
    kamailio::kamcmd(&sr_sock, &["htable.seti", "t", "n", "5"], &|l| {
        l.to_string()
    });
    let n = until(
        || sht_value(&kam_sock, "t", "n"),
        |v| v.as_deref() == Some("5"),
    );
    assert_eq!(n.as_deref(), Some("5"), "htable.seti from siprouter");
    assert_eq!(
        request_to(&ua, kam_addr, "NOTIFY", "n", ""),
        "SIP/2.0 200 Incremented"
    );
    let n = until(
        || sht_value(&sr_sock, "t", "n"),
        |v| v.as_deref() == Some("6"),
    );
    assert_eq!(n.as_deref(), Some("6"), "$shtinc from Kamailio");
    // Removals: one item, and by a regular expression on names.
    assert_eq!(
        request_to(&ua, kam_addr, "INFO", "k1", ""),
        "SIP/2.0 200 Deleted"
    );
    let gone = until(|| sht_value(&sr_sock, "t", "k1"), |v| v.is_none());
    assert_eq!(gone, None, "k1 still on siprouter");
    assert_eq!(
        request_to(&ua, sr_addr, "SUBSCRIBE", "k", ""),
        "SIP/2.0 200 Removed"
    );
    let gone = until(|| sht_value(&kam_sock, "t", "k2"), |v| v.is_none());
    assert_eq!(gone, None, "k2 still on Kamailio");
    // What was not removed is still on both.
    for sock in [&kam_sock, &sr_sock] {
        assert_eq!(sht_value(sock, "t", "early").as_deref(), Some("before"));
        assert_eq!(sht_value(sock, "t", "n").as_deref(), Some("6"));
    }
}

/// `kamcmd dlg.profile_get_size caller VALUE` on a control socket.
fn callers(sock: &Path, value: &str) -> Option<u64> {
    kamailio::kamcmd(sock, &["dlg.profile_get_size", "caller", value], &|l| {
        l.trim().to_string()
    })
    .iter()
    .skip(1)
    .find_map(|l| l.parse().ok())
}

fn ua_addr(p: &UdpPeer) -> String {
    p.addr().to_string()
}

/// `text` with the caller's From: `user` at example.com, tag `user`.
fn with_from(text: &str, user: &str) -> String {
    let old = text
        .lines()
        .find(|l| l.starts_with("From:"))
        .unwrap_or_default()
        .to_string();
    text.replacen(
        &old,
        &format!("From: <sip:{user}@example.com>;tag={user}"),
        1,
    )
}

/// A call from `user` through `proxy` to `uas`, answered and ACKed; the
/// 200, for the BYE.
fn call(proxy: SocketAddr, uac: &UdpPeer, uas: &UdpPeer, user: &str) -> sr_testkit::Reply {
    let ruri = format!("sip:bob@{}", uas.addr());
    let inv = req(
        "INVITE",
        &ruri,
        uac.addr(),
        &format!("inv-{user}"),
        &format!("call-{user}"),
        1,
        &[&format!("Contact: <sip:{user}@{}>", uac.addr())],
        "",
    );
    let inv = with_from(&inv, user);
    uac.send(proxy, &inv);
    let got = uas
        .recv_method("INVITE", Duration::from_secs(3))
        .unwrap_or_else(|| panic!("INVITE of {user} not relayed"));
    let contact = format!("Contact: <sip:bob@{}>", uas.addr());
    uas.send(got.from, &answer(&got, 200, "OK", "bobtag", &[&contact]));
    let ok = uac
        .recv_status(200, Duration::from_secs(3))
        .unwrap_or_else(|| panic!("200 of {user} not relayed"));
    let ack = with_from(
        &from_caller(
            "ACK",
            &ok,
            uac.addr(),
            &ruri,
            1,
            &format!("ack-{user}"),
            &[],
        ),
        user,
    );
    uac.send(proxy, &ack);
    assert!(
        uas.recv_method("ACK", Duration::from_secs(3)).is_some(),
        "ACK of {user}"
    );
    ok
}

/// The BYE of a call made by [`call`].
fn hang_up(proxy: SocketAddr, uac: &UdpPeer, uas: &UdpPeer, ok: &sr_testkit::Reply, user: &str) {
    let ruri = format!("sip:bob@{}", uas.addr());
    let bye = with_from(
        &from_caller("BYE", ok, uac.addr(), &ruri, 2, &format!("bye-{user}"), &[]),
        user,
    );
    uac.send(proxy, &bye);
    let got = uas
        .recv_method("BYE", Duration::from_secs(3))
        .unwrap_or_else(|| panic!("BYE of {user} not relayed"));
    uas.send(got.from, &answer(&got, 200, "OK", "bobtag", &[]));
    assert!(
        uac.recv_status(200, Duration::from_secs(3)).is_some(),
        "200 to the BYE of {user}"
    );
}

#[test]
fn dialog_profiles_replicate_with_kamailio() {
    let Some(p) = Pair::new("dmq-dialog", &["rr", "dialog"], Mode::Dialog) else {
        return;
    };
    let (kam_addr, sr_addr) = (p.kam_addr, p.sr_addr);
    let (kam_sock, sr_sock) = (p.kam_sock.clone(), p.sr_sock.clone());
    let _srv = p.siprouter();
    let kam = p.kamailio();
    // The cluster first.
    let formed = until(
        || {
            nodes(&kam_sock)
                .iter()
                .filter(|l| l.contains(" active "))
                .count()
        },
        |n| *n == 2,
    );
    assert_eq!(formed, 2, "cluster not formed; log {:?}", kam.log);
    let (uac, uas) = (UdpPeer::new(), UdpPeer::new());
    // A call through Kamailio counts on siprouter, one through siprouter
    // on Kamailio, while they are up.
    let ok_a = call(kam_addr, &uac, &uas, "alice");
    let ok_c = call(sr_addr, &uac, &uas, "carol");
    for (sock, who, user) in [
        (&kam_sock, "Kamailio", "alice"),
        (&sr_sock, "siprouter", "carol"),
    ] {
        assert_eq!(
            callers(sock, user),
            Some(1),
            "{user} on {who}, the node of the call"
        );
    }
    let on_sr = until(|| callers(&sr_sock, "alice"), |v| *v == Some(1));
    assert_eq!(
        on_sr,
        Some(1),
        "Kamailio's dialog of alice in siprouter's profile"
    );
    let on_kam = until(|| callers(&kam_sock, "carol"), |v| *v == Some(1));
    assert_eq!(
        on_kam,
        Some(1),
        "siprouter's dialog of carol in Kamailio's profile"
    );
    // Both list the other's dialog as confirmed.
    let listed = |sock: &Path, callid: &str| {
        let lines = kamailio::kamcmd(sock, &["dlg.list"], &|l| l.trim().to_string());
        let at = lines
            .iter()
            .position(|l| l == &format!("call-id: {callid}"));
        at.and_then(|i| {
            lines[i..]
                .iter()
                .find_map(|l| l.strip_prefix("state: ").map(str::to_string))
        })
    };
    let st = until(
        || listed(&sr_sock, "call-alice"),
        |v| v.as_deref() == Some("4"),
    );
    assert_eq!(st.as_deref(), Some("4"), "alice's dialog on siprouter");
    let st = until(
        || listed(&kam_sock, "call-carol"),
        |v| v.as_deref() == Some("4"),
    );
    assert_eq!(st.as_deref(), Some("4"), "carol's dialog on Kamailio");
    // A message from elsewhere about one of siprouter's own dialogs (as
    // a node whose copy timed out sends) changes nothing there.
    let ids = {
        let lines = kamailio::kamcmd(&sr_sock, &["dlg.list"], &|l| l.trim().to_string());
        let at = lines
            .iter()
            .position(|l| l == "call-id: call-carol")
            .expect("carol's dialog listed");
        let get = |k: &str| {
            lines[..at]
                .iter()
                .rev()
                .find_map(|l| l.strip_prefix(k).map(str::to_string))
                .unwrap_or_default()
        };
        (get("h_entry: "), get("h_id: "))
    };
    let body = format!(
        "{{\"action\":3,\"h_entry\":{},\"h_id\":{},\"state\":5}}",
        ids.0, ids.1
    );
    let rm = format!(
        "KDMQ sip:dialog@{sr_addr} SIP/2.0\r\nVia: SIP/2.0/UDP {};branch=z9hG4bK-rm\r\nFrom: <sip:dialog@{}>;tag=rm\r\nTo: <sip:dialog@{sr_addr}>\r\nCall-ID: rm-1\r\nCSeq: 10 KDMQ\r\nMax-Forwards: 1\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        ua_addr(&uac),
        ua_addr(&uac),
        body.len()
    );
    uac.send(sr_addr, &rm);
    let answer = uac.recv_final(Duration::from_secs(3)).map(|r| r.status());
    assert_eq!(
        answer,
        Some(Some(200)),
        "the foreign remove is answered 200"
    );
    assert_eq!(
        callers(&sr_sock, "carol"),
        Some(1),
        "carol's own dialog kept"
    );
    // Hung up: out of the profiles everywhere.
    hang_up(kam_addr, &uac, &uas, &ok_a, "alice");
    hang_up(sr_addr, &uac, &uas, &ok_c, "carol");
    for (sock, who) in [(&kam_sock, "Kamailio"), (&sr_sock, "siprouter")] {
        for user in ["alice", "carol"] {
            let n = until(|| callers(sock, user), |v| *v == Some(0));
            assert_eq!(n, Some(0), "{user} still counted on {who}");
        }
    }
}
