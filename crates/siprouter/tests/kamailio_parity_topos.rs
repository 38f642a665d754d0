//! Differential test against Kamailio itself, for topos (topology
//! stripping): the same calls through Kamailio 5.6 and through siprouter,
//! both with topos storing on SQLite, and every message the two user
//! agents receive compared byte for byte but for the proxy's port, its own
//! branch and To tags, and the keys each server makes (`atpsh-…`,
//! `btpsh-…`), which are numbered in the order they first appear. What
//! the script sees of the restored in-dialog requests (Request-URI, Route
//! set, Vias) is reported in a header and compared as well, and so are
//! the rows left in `topos_d` and `topos_t` (but their times and keys).
//!
//! Without Kamailio installed the test prints a notice and passes, unless
//! `SR_KAMAILIO_REQUIRED=1` (`.ci/run` sets it).

use sr_testkit::{answer, kamailio, Reply, UdpPeer};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::Duration;

const MODULES: &[&str] = &[
    "sl",
    "tm",
    "rr",
    "pv",
    "textops",
    "siputils",
    "db_sqlite",
    "topos",
];

/// The configuration after its head.
const BODY: &str = r#"modparam("topos", "db_url", "__DB__")
__PARAMS__
request_route {
    if ($hdr(X-T) == $null) { sl_send_reply("200", "up"); exit; }
    if (is_method("REGISTER")) {
        append_hf("X-Seen: $rm ru=$ru via=$hdr(Via)\r\n");
        $du = $hdr(X-To);
        t_relay();
        exit;
    }
    if (has_totag()) {
        if (loose_route()) {
            append_hf("X-Seen: $rm ru=$ru route=$hdr(Route) via=$hdr(Via)\r\n");
            t_relay();
            exit;
        }
        if (is_method("ACK")) {
            if (t_check_trans()) { t_relay(); }
            exit;
        }
        sl_send_reply("404", "Not here");
        exit;
    }
    if (is_method("CANCEL")) {
        if (t_check_trans()) { t_relay(); }
        exit;
    }
    if ($hdr(X-T) == "reject") { sl_send_reply("403", "Not You"); exit; }
    record_route();
    append_hf("X-Seen: $rm ru=$ru via=$hdr(Via)\r\n");
    $du = $hdr(X-To);
    t_relay();
}
"#;

const WAIT: Duration = Duration::from_secs(3);

/// The two user agents, the same for both servers.
struct Peers {
    a: UdpPeer,
    b: UdpPeer,
}

/// Replies the proxy makes itself, whose To tag is its own (Kamailio's
/// is made another way).
const OWN_REPLIES: &[&str] = &["A gets 200 CANCEL", "A gets 403"];

/// Numbers the keys a server makes (`tpsh-…` after `a` or `b`) in the
/// order they first appear in `line`s seen so far.
#[derive(Default)]
struct Keys(HashMap<String, usize>);

impl Keys {
    fn name(&mut self, line: &str) -> String {
        let mut out = String::new();
        let mut rest = line;
        while let Some(i) = rest.find("tpsh-") {
            let end = rest[i..]
                .find(['@', ';', '>', ' ', ',', '|'])
                .map_or(rest.len(), |j| i + j);
            let key = &rest[i..end];
            let n = self.0.len() + 1;
            let n = *self.0.entry(key.to_string()).or_insert(n);
            out.push_str(&rest[..i]);
            out.push_str(&format!("KEY{n}"));
            rest = &rest[end..];
        }
        out.push_str(rest);
        out
    }
}

/// A received message as one line ([`kamailio::message_line`]), the
/// proxy's own branches named and the keys numbered.
fn seen(keys: &mut Keys, label: &str, r: Option<&Reply>, srv: SocketAddr) -> String {
    let mut tidy = |l: &str| {
        if l.starts_with("Via:") || l.starts_with("X-Seen:") {
            keys.name(&own_branches(l))
        } else {
            keys.name(l)
        }
    };
    kamailio::message_line(label, r, srv, OWN_REPLIES.contains(&label), &mut tidy)
}

/// The proxy's own branches in `l` named (the user agents' start with
/// `z9hG4bKt`).
fn own_branches(l: &str) -> String {
    let mut l = l.to_string();
    let mut from = 0;
    while let Some(i) = l[from..].find("z9hG4bK") {
        let i = from + i;
        let end = l[i..].find([';', ',', ' ', '>']).map_or(l.len(), |j| i + j);
        if !l[i..].starts_with("z9hG4bKt") {
            l.replace_range(i..end, "BRANCH");
        }
        from = i + 1;
    }
    l
}

/// The first Contact URI of a message.
fn contact_uri(r: &Reply) -> String {
    match r.msg.msg().contacts().next() {
        Some(Ok(sr_sdk::sip_msg::headers::ContactValue::Addr(n))) => n.uri_str.to_string(),
        _ => String::new(),
    }
}

/// A header's values as received, joined.
fn values(r: &Reply, name: &str) -> String {
    r.msg
        .msg()
        .headers_by_name(name)
        .map(|h| h.value.to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

/// An in-dialog request from `from_b` (B when true) to `ruri`.
#[allow(clippy::too_many_arguments)]
fn in_dialog(
    method: &str,
    ruri: &str,
    via: SocketAddr,
    branch: &str,
    routes: &str,
    from_b: bool,
    call: &str,
    cseq: u32,
    extra: &str,
) -> String {
    let (from, to) = if from_b {
        (
            "<sip:bob@example.com>;tag=tb1",
            "\"Alice\" <sip:alice@example.com>;tag=fa1",
        )
    } else {
        (
            "\"Alice\" <sip:alice@example.com>;tag=fa1",
            "<sip:bob@example.com>;tag=tb1",
        )
    };
    let route = if routes.is_empty() {
        String::new()
    } else {
        format!("Route: {routes}\r\n")
    };
    format!(
        "{method} {ruri} SIP/2.0\r\nVia: SIP/2.0/UDP {via};branch=z9hG4bKt{branch}\r\nMax-Forwards: 70\r\n{route}From: {from}\r\nTo: {to}\r\nCall-ID: {call}\r\nCSeq: {cseq} {method}\r\n{extra}X-T: dlg\r\nContent-Length: 0\r\n\r\n"
    )
}

fn scenario(p: &Peers, srv: SocketAddr) -> Vec<String> {
    let (a, b) = (p.a.addr(), p.b.addr());
    kamailio::wait_until_up(&p.a, srv, kamailio::PROBE, None);
    let mut k = Keys::default();
    let mut out = Vec::new();
    // An initial INVITE with two Vias and an upstream Record-Route.
    let invite = format!(
        "INVITE sip:bob@{b} SIP/2.0\r\nVia: SIP/2.0/UDP {a};branch=z9hG4bKt1;rport\r\nVia: SIP/2.0/UDP 10.0.0.7:5070;branch=z9hG4bKtold\r\nMax-Forwards: 70\r\nRecord-Route: <sip:{a};lr>\r\nFrom: \"Alice\" <sip:alice@example.com>;tag=fa1\r\nTo: <sip:bob@example.com>\r\nCall-ID: tps-one@example.com\r\nCSeq: 1 INVITE\r\nContact: <sip:alice@{a};transport=udp>\r\nX-T: call\r\nX-To: sip:{b}\r\nContent-Length: 0\r\n\r\n"
    );
    p.a.send(srv, &invite);
    let inv = p.b.recv_method("INVITE", WAIT);
    out.push(seen(&mut k, "B gets INVITE", inv.as_ref(), srv));
    let Some(inv) = inv else { return out };
    // B is behind a proxy of its own, which record-routes too.
    let contact_b = format!("Contact: <sip:bob@{b}>");
    let rr_b = &format!("Record-Route: <sip:{b};lr>");
    p.b.send(
        srv,
        &answer(&inv, 180, "Ringing", "tb1", &[&contact_b, rr_b]),
    );
    out.push(seen(
        &mut k,
        "A gets 180",
        p.a.recv_status(180, WAIT).as_ref(),
        srv,
    ));
    p.b.send(srv, &answer(&inv, 200, "OK", "tb1", &[&contact_b, rr_b]));
    let ok = p.a.recv_status(200, WAIT);
    out.push(seen(&mut k, "A gets 200", ok.as_ref(), srv));
    let Some(ok) = ok else { return out };
    // A's requests: to B's Contact as A saw it, with the Route set A got.
    let b_contact = contact_uri(&ok);
    // (The upstream proxy, at A's address too, took its own entry.)
    let routes_a = values(&ok, "Record-Route").replace(&format!("<sip:{a};lr>"), "");
    let routes_a = routes_a.trim_matches([',', ' ']).to_string();
    p.a.send(
        srv,
        &in_dialog(
            "ACK",
            &b_contact,
            a,
            "ack",
            &routes_a,
            false,
            "tps-one@example.com",
            1,
            "",
        ),
    );
    out.push(seen(
        &mut k,
        "B gets ACK",
        p.b.recv_method("ACK", WAIT).as_ref(),
        srv,
    ));
    // A re-INVITE from A.
    let a_contact_hdr = format!("Contact: <sip:alice@{a}>\r\n");
    p.a.send(
        srv,
        &in_dialog(
            "INVITE",
            &b_contact,
            a,
            "re",
            &routes_a,
            false,
            "tps-one@example.com",
            2,
            &a_contact_hdr,
        ),
    );
    let re = p.b.recv_method("INVITE", WAIT);
    out.push(seen(&mut k, "B gets re-INVITE", re.as_ref(), srv));
    if let Some(re) = re {
        p.b.send(srv, &answer(&re, 200, "OK", "", &[&contact_b]));
        let ok2 = p.a.recv_status(200, WAIT);
        out.push(seen(&mut k, "A gets 200 re-INVITE", ok2.as_ref(), srv));
        p.a.send(
            srv,
            &in_dialog(
                "ACK",
                &b_contact,
                a,
                "reack",
                &routes_a,
                false,
                "tps-one@example.com",
                2,
                "",
            ),
        );
        out.push(seen(
            &mut k,
            "B gets ACK 2",
            p.b.recv_method("ACK", WAIT).as_ref(),
            srv,
        ));
    }
    // B's requests: to A's Contact as B saw it, with its Route set.
    let a_contact = contact_uri(&inv);
    let routes_b = values(&inv, "Record-Route");
    let b_contact_hdr = format!("Contact: <sip:bob@{b}>\r\n");
    p.b.send(
        srv,
        &in_dialog(
            "INFO",
            &a_contact,
            b,
            "info",
            &routes_b,
            true,
            "tps-one@example.com",
            2,
            &b_contact_hdr,
        ),
    );
    let got = p.a.recv_method("INFO", WAIT);
    out.push(seen(&mut k, "A gets INFO", got.as_ref(), srv));
    if let Some(r) = got {
        p.a.send(srv, &answer(&r, 200, "OK", "", &[]));
        out.push(seen(
            &mut k,
            "B gets 200 INFO",
            p.b.recv_status(200, WAIT).as_ref(),
            srv,
        ));
    }
    p.b.send(
        srv,
        &in_dialog(
            "BYE",
            &a_contact,
            b,
            "bye",
            &routes_b,
            true,
            "tps-one@example.com",
            3,
            "",
        ),
    );
    let got = p.a.recv_method("BYE", WAIT);
    out.push(seen(&mut k, "A gets BYE", got.as_ref(), srv));
    if let Some(r) = got {
        p.a.send(srv, &answer(&r, 200, "OK", "", &[]));
        out.push(seen(
            &mut k,
            "B gets 200 BYE",
            p.b.recv_status(200, WAIT).as_ref(),
            srv,
        ));
    }
    // A second call, cancelled: the CANCEL and the ACK of the 487 are the
    // proxy's own requests.
    let invite2 = format!(
        "INVITE sip:bob@{b} SIP/2.0\r\nVia: SIP/2.0/UDP {a};branch=z9hG4bKt2\r\nMax-Forwards: 70\r\nFrom: <sip:alice@example.com>;tag=fa2\r\nTo: <sip:bob@example.com>\r\nCall-ID: tps-two@example.com\r\nCSeq: 5 INVITE\r\nContact: sip:alice@{a};expires=60\r\nX-T: call\r\nX-To: sip:{b}\r\nContent-Length: 0\r\n\r\n"
    );
    p.a.send(srv, &invite2);
    if let Some(inv2) = p.b.recv_method("INVITE", WAIT) {
        out.push(seen(&mut k, "B gets INVITE 2", Some(&inv2), srv));
        let rel = ["Require: 100rel", "RSeq: 1", &contact_b, rr_b];
        p.b.send(srv, &answer(&inv2, 180, "Ringing", "tb2", &rel));
        let r180 = p.a.recv_status(180, WAIT);
        out.push(seen(&mut k, "A gets 180 2", r180.as_ref(), srv));
        // A acknowledges it reliably, within the early dialog.
        if let Some(r180) = r180 {
            let to = r180.header("To").unwrap_or_default();
            let target = contact_uri(&r180);
            let routes = values(&r180, "Record-Route").replace(&format!("<sip:{a};lr>"), "");
            let routes = routes.trim_matches([',', ' ']);
            let route = if routes.is_empty() {
                String::new()
            } else {
                format!("Route: {routes}\r\n")
            };
            p.a.send(srv, &format!(
                "PRACK {target} SIP/2.0\r\nVia: SIP/2.0/UDP {a};branch=z9hG4bKtpr\r\nMax-Forwards: 70\r\n{route}From: <sip:alice@example.com>;tag=fa2\r\nTo: {to}\r\nCall-ID: tps-two@example.com\r\nCSeq: 6 PRACK\r\nRAck: 1 5 INVITE\r\nX-T: dlg\r\nContent-Length: 0\r\n\r\n"
            ));
            let pr = p.b.recv_method("PRACK", WAIT);
            out.push(seen(&mut k, "B gets PRACK", pr.as_ref(), srv));
            if let Some(pr) = pr {
                p.b.send(srv, &answer(&pr, 200, "OK", "", &[]));
                let ok = p.a.recv_status(200, WAIT);
                out.push(seen(&mut k, "A gets 200 PRACK", ok.as_ref(), srv));
            }
        }
        let cancel = format!(
            "CANCEL sip:bob@{b} SIP/2.0\r\nVia: SIP/2.0/UDP {a};branch=z9hG4bKt2\r\nMax-Forwards: 70\r\nFrom: <sip:alice@example.com>;tag=fa2\r\nTo: <sip:bob@example.com>\r\nCall-ID: tps-two@example.com\r\nCSeq: 5 CANCEL\r\nX-T: call\r\nContent-Length: 0\r\n\r\n"
        );
        p.a.send(srv, &cancel);
        out.push(seen(
            &mut k,
            "A gets 200 CANCEL",
            p.a.recv_status(200, WAIT).as_ref(),
            srv,
        ));
        let c = p.b.recv_method("CANCEL", WAIT);
        out.push(seen(&mut k, "B gets CANCEL", c.as_ref(), srv));
        if let Some(c) = c {
            p.b.send(srv, &answer(&c, 200, "OK", "tb2", &[]));
        }
        p.b.send(srv, &answer(&inv2, 487, "Request Terminated", "tb2", &[]));
        out.push(seen(
            &mut k,
            "B gets ACK 487",
            p.b.recv_method("ACK", WAIT).as_ref(),
            srv,
        ));
        let r = p.a.recv_status(487, WAIT);
        out.push(seen(&mut k, "A gets 487", r.as_ref(), srv));
        if let Some(r) = r {
            let to = r.header("To").unwrap_or_default();
            p.a.send(srv, &format!(
                "ACK sip:bob@{b} SIP/2.0\r\nVia: SIP/2.0/UDP {a};branch=z9hG4bKt2\r\nMax-Forwards: 70\r\nFrom: <sip:alice@example.com>;tag=fa2\r\nTo: {to}\r\nCall-ID: tps-two@example.com\r\nCSeq: 5 ACK\r\nX-T: call\r\nContent-Length: 0\r\n\r\n"
            ));
        }
    }
    // A MESSAGE outside a dialog, record-routed, and its answer.
    let message = format!(
        "MESSAGE sip:bob@{b} SIP/2.0\r\nVia: SIP/2.0/UDP {a};branch=z9hG4bKt3, SIP/2.0/UDP 10.0.0.7:5070;branch=z9hG4bKtold3\r\nMax-Forwards: 70\r\nRecord-Route: <sip:{a};lr>\r\nFrom: <sip:alice@example.com>;tag=fa3\r\nTo: <sip:bob@example.com>\r\nCall-ID: tps-three@example.com\r\nCSeq: 1 MESSAGE\r\nContact: <sip:alice@{a}>\r\nX-T: call\r\nX-To: sip:{b}\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n\r\nhi"
    );
    p.a.send(srv, &message);
    let m = p.b.recv_method("MESSAGE", WAIT);
    out.push(seen(&mut k, "B gets MESSAGE", m.as_ref(), srv));
    if let Some(m) = m {
        p.b.send(srv, &answer(&m, 202, "Accepted", "tb3", &[&contact_b]));
        out.push(seen(
            &mut k,
            "A gets 202",
            p.a.recv_status(202, WAIT).as_ref(),
            srv,
        ));
    }
    // A subscription: the NOTIFY comes from B within the new dialog.
    let subscribe = format!(
        "SUBSCRIBE sip:bob@{b} SIP/2.0\r\nVia: SIP/2.0/UDP {a};branch=z9hG4bKt6\r\nMax-Forwards: 70\r\nFrom: <sip:alice@example.com>;tag=fa6\r\nTo: <sip:bob@example.com>\r\nCall-ID: tps-six@example.com\r\nCSeq: 1 SUBSCRIBE\r\nContact: <sip:alice@{a}>\r\nEvent: presence\r\nExpires: 60\r\nX-T: call\r\nX-To: sip:{b}\r\nContent-Length: 0\r\n\r\n"
    );
    p.a.send(srv, &subscribe);
    let mut sub_target = None;
    let sub = p.b.recv_method("SUBSCRIBE", WAIT);
    out.push(seen(&mut k, "B gets SUBSCRIBE", sub.as_ref(), srv));
    if let Some(sub) = sub {
        p.b.send(
            srv,
            &answer(&sub, 202, "Accepted", "tb6", &[&contact_b, rr_b]),
        );
        let acc = p.a.recv_status(202, WAIT);
        out.push(seen(&mut k, "A gets 202 SUBSCRIBE", acc.as_ref(), srv));
        sub_target = acc.as_ref().map(contact_uri);
        let target = contact_uri(&sub);
        let routes = values(&sub, "Record-Route");
        let route = if routes.is_empty() {
            String::new()
        } else {
            format!("Route: {routes}\r\n")
        };
        p.b.send(srv, &format!(
            "NOTIFY {target} SIP/2.0\r\nVia: SIP/2.0/UDP {b};branch=z9hG4bKtn\r\nMax-Forwards: 70\r\n{route}From: <sip:bob@example.com>;tag=tb6\r\nTo: <sip:alice@example.com>;tag=fa6\r\nCall-ID: tps-six@example.com\r\nCSeq: 1 NOTIFY\r\nContact: <sip:bob@{b}>\r\nEvent: presence\r\nSubscription-State: active;expires=60\r\nX-T: dlg\r\nContent-Length: 0\r\n\r\n"
        ));
        let n = p.a.recv_method("NOTIFY", WAIT);
        out.push(seen(&mut k, "A gets NOTIFY", n.as_ref(), srv));
        if let Some(n) = n {
            p.a.send(srv, &answer(&n, 200, "OK", "", &[]));
            out.push(seen(
                &mut k,
                "B gets 200 NOTIFY",
                p.b.recv_status(200, WAIT).as_ref(),
                srv,
            ));
        }
    }
    // A refreshes the subscription, to the Contact it got.
    if let Some(target) = sub_target {
        p.a.send(srv, &format!(
            "SUBSCRIBE {target} SIP/2.0\r\nVia: SIP/2.0/UDP {a};branch=z9hG4bKt7\r\nMax-Forwards: 70\r\nFrom: <sip:alice@example.com>;tag=fa6\r\nTo: <sip:bob@example.com>;tag=tb6\r\nCall-ID: tps-six@example.com\r\nCSeq: 2 SUBSCRIBE\r\nContact: <sip:alice2@{a}>\r\nEvent: presence\r\nExpires: 60\r\nX-T: dlg\r\nContent-Length: 0\r\n\r\n"
        ));
        let re = p.b.recv_method("SUBSCRIBE", WAIT);
        out.push(seen(&mut k, "B gets re-SUBSCRIBE", re.as_ref(), srv));
        if let Some(re) = re {
            p.b.send(srv, &answer(&re, 200, "OK", "", &[&contact_b]));
            out.push(seen(
                &mut k,
                "A gets 200 re-SUBSCRIBE",
                p.a.recv_status(200, WAIT).as_ref(),
                srv,
            ));
        }
    }
    // A REGISTER is not touched.
    let register = format!(
        "REGISTER sip:example.com SIP/2.0\r\nVia: SIP/2.0/UDP {a};branch=z9hG4bKt4, SIP/2.0/UDP 10.0.0.7:5070;branch=z9hG4bKtold4\r\nMax-Forwards: 70\r\nFrom: <sip:alice@example.com>;tag=fa4\r\nTo: <sip:alice@example.com>\r\nCall-ID: tps-four@example.com\r\nCSeq: 1 REGISTER\r\nContact: <sip:alice@{a}>\r\nX-T: call\r\nX-To: sip:{b}\r\nContent-Length: 0\r\n\r\n"
    );
    p.a.send(srv, &register);
    let r = p.b.recv_method("REGISTER", WAIT);
    out.push(seen(&mut k, "B gets REGISTER", r.as_ref(), srv));
    if let Some(r) = r {
        p.b.send(srv, &answer(&r, 200, "OK", "tb4", &[&contact_b]));
        out.push(seen(
            &mut k,
            "A gets 200 REGISTER",
            p.a.recv_status(200, WAIT).as_ref(),
            srv,
        ));
    }
    // A reply of the proxy's own.
    let rejected = invite
        .replace("X-T: call", "X-T: reject")
        .replace("tps-one@", "tps-five@");
    p.a.send(srv, &rejected);
    out.push(seen(
        &mut k,
        "A gets 403",
        p.a.recv_status(403, WAIT).as_ref(),
        srv,
    ));
    // Nothing else arrives (no stray retransmission of ours).
    std::thread::sleep(Duration::from_millis(300));
    if std::env::var("SR_TPS_DEBUG").is_ok() {
        for l in &out {
            eprintln!("{l}");
        }
    }
    out
}

/// The rows of the topos tables, times and ids left out, keys numbered.
fn rows(url: &str, port: u16) -> Vec<String> {
    use sr_sdk::db::{DbConn, DbValue, Order};
    let Ok(mut c) = sr_mod_db_sqlite::SqliteConn::open(url, 1000) else {
        return vec!["no database".into()];
    };
    let mut out = Vec::new();
    let mut k = Keys::default();
    let order = Order {
        col: "id".into(),
        desc: false,
    };
    for table in ["topos_d", "topos_t"] {
        let Ok(r) = c.query(table, &[], &[], Some(&order)) else {
            out.push(format!("{table}: no table"));
            continue;
        };
        for row in &r.rows {
            let mut cols = Vec::new();
            for (n, v) in r.columns.iter().zip(row) {
                if n == "id" || n == "rectime" {
                    continue;
                }
                let v = match v {
                    DbValue::Null => "NULL".to_string(),
                    DbValue::Int(i) => i.to_string(),
                    DbValue::BigInt(i) => i.to_string(),
                    DbValue::Str(t) => t.clone(),
                    other => format!("{other:?}"),
                };
                cols.push(format!("{n}={v}"));
            }
            let line = format!("{table}: {}", cols.join(" ")).replace(&port.to_string(), "PPORT");
            out.push(k.name(&own_branches(&line)));
        }
    }
    out
}

#[test]
fn topos_matches_kamailio() {
    if !kamailio::available(MODULES) {
        return;
    }
    let peers = Peers {
        a: UdpPeer::new(),
        b: UdpPeer::new(),
    };
    for (setting, params) in [
        ("defaults", ""),
        // The key in a Contact parameter, a host name of our own.
        (
            "param",
            r#"modparam("topos", "contact_mode", 1)
modparam("topos", "cparam_name", "xk")
modparam("topos", "contact_host", "proxy.example.net")
modparam("topos", "context", "srvone")"#,
        ),
        // What goes to B is not stripped.
        (
            "exempt",
            r#"event_route[topos:msg-outgoing] {
    if ($sndto(port) == __BPORT__ && $sndto(ip) == "127.0.0.1" && $sndto(proto) == 1) {
        drop;
    }
}"#,
        ),
    ] {
        let dir = kamailio::fresh_dir(&format!("topos-{setting}"));
        let db = dir.join("topos.db");
        let url = format!("sqlite:///{}", db.display());
        let cfg = (kamailio::head(MODULES) + BODY)
            .replace("__PARAMS__", params)
            .replace("__DB__", &url)
            .replace("__BPORT__", &peers.b.addr().port().to_string());
        let kam_rows = std::cell::RefCell::new(Vec::new());
        let port = std::cell::Cell::new(0u16);
        let prepare = || {
            if db.exists() {
                *kam_rows.borrow_mut() = rows(&url, port.get());
                if std::env::var("SR_TPS_DEBUG").is_ok() {
                    for l in kam_rows.borrow().iter() {
                        eprintln!("{l}");
                    }
                }
            }
            let _ = std::fs::remove_file(&db);
            drop(sr_mod_db_sqlite::SqliteConn::open(&url, 1000).unwrap());
        };
        let (mut want, mut got) =
            kamailio::run_scenario(&dir, &cfg, siprouter::in_tree(), &prepare, &|srv| {
                port.set(srv.port());
                scenario(&peers, srv)
            });
        want.extend(kam_rows.borrow().iter().cloned());
        got.extend(rows(&url, port.get()));
        assert!(
            want.iter().any(|l| l.contains("B gets INVITE: INVITE")),
            "{setting}: {want:#?}"
        );
        kamailio::conclude(&dir, &want, &got, setting);
    }
}
