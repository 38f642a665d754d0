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

/// A `Route` header line for a route set (none when it is empty).
fn route_line(routes: &str) -> String {
    let routes = routes.trim_matches([',', ' ']);
    if routes.is_empty() {
        String::new()
    } else {
        format!("Route: {routes}\r\n")
    }
}

/// A request within a dialog: `{from}` and `{to}` headers as given,
/// `extra` header lines before the end.
#[derive(Clone, Copy)]
struct Dlg<'a> {
    call: &'a str,
    from: &'a str,
    to: &'a str,
}

impl Dlg<'_> {
    /// The same dialog seen from the other side.
    fn flip(self) -> Self {
        Dlg {
            from: self.to,
            to: self.from,
            ..self
        }
    }

    /// `method` (with its CSeq number) to `ruri` from `via`, with a Route
    /// set.
    fn request(
        &self,
        (method, cseq): (&str, u32),
        ruri: &str,
        via: SocketAddr,
        branch: &str,
        routes: &str,
        extra: &str,
    ) -> String {
        let (call, from, to, route) = (self.call, self.from, self.to, route_line(routes));
        format!(
            "{method} {ruri} SIP/2.0\r\nVia: SIP/2.0/UDP {via};branch=z9hG4bKt{branch}\r\nMax-Forwards: 70\r\n{route}From: {from}\r\nTo: {to}\r\nCall-ID: {call}\r\nCSeq: {cseq} {method}\r\n{extra}X-T: dlg\r\nContent-Length: 0\r\n\r\n"
        )
    }
}

/// One run of the scenario: the user agents, the server, and what they
/// received so far (keys numbered across the run).
struct Run<'p> {
    p: &'p Peers,
    srv: SocketAddr,
    k: Keys,
    out: Vec<String>,
}

impl Run<'_> {
    fn peer(&self, name: char) -> &UdpPeer {
        if name == 'A' {
            &self.p.a
        } else {
            &self.p.b
        }
    }

    /// Notes a received message (or its absence) under `label`.
    fn note(&mut self, label: &str, r: Option<&Reply>) {
        let line = seen(&mut self.k, label, r, self.srv);
        self.out.push(line);
    }

    /// `from` sends `text`; the other side's `method` is noted.
    fn request(&mut self, from: char, text: &str, method: &str, label: &str) -> Option<Reply> {
        let to = if from == 'A' { 'B' } else { 'A' };
        self.peer(from).send(self.srv, text);
        let r = self.peer(to).recv_method(method, WAIT);
        self.note(&format!("{to} gets {label}"), r.as_ref());
        r
    }

    /// `by` answers `r` (`tag` added to its To unless it has one, `extra`
    /// headers); the reply the other side gets is noted.
    fn answer(
        &mut self,
        by: char,
        r: &Reply,
        (code, reason): (u16, &str),
        tag: &str,
        extra: &[&str],
        label: &str,
    ) -> Option<Reply> {
        let to = if by == 'A' { 'B' } else { 'A' };
        self.peer(by)
            .send(self.srv, &answer(r, code, reason, tag, extra));
        let got = self.peer(to).recv_status(code, WAIT);
        self.note(&format!("{to} gets {label}"), got.as_ref());
        got
    }

    /// A request and its answer, each side's view noted.
    fn transaction(
        &mut self,
        from: char,
        text: &str,
        (method, label): (&str, &str),
        code: u16,
        tag: &str,
        extra: &[&str],
    ) -> Option<Reply> {
        let to = if from == 'A' { 'B' } else { 'A' };
        let r = self.request(from, text, method, label)?;
        self.answer(to, &r, (code, "OK"), tag, extra, &format!("{code} {label}"))
    }
}

fn scenario(p: &Peers, srv: SocketAddr) -> Vec<String> {
    let (a, b) = (p.a.addr(), p.b.addr());
    kamailio::wait_until_up(&p.a, srv, kamailio::PROBE, None);
    let mut run = Run {
        p,
        srv,
        k: Keys::default(),
        out: Vec::new(),
    };
    call(&mut run, a, b);
    cancelled_call(&mut run, a, b);
    // A MESSAGE outside a dialog, record-routed, and its answer.
    let contact_b = format!("Contact: <sip:bob@{b}>");
    let message = format!(
        "MESSAGE sip:bob@{b} SIP/2.0\r\nVia: SIP/2.0/UDP {a};branch=z9hG4bKt3, SIP/2.0/UDP 10.0.0.7:5070;branch=z9hG4bKtold3\r\nMax-Forwards: 70\r\nRecord-Route: <sip:{a};lr>\r\nFrom: <sip:alice@example.com>;tag=fa3\r\nTo: <sip:bob@example.com>\r\nCall-ID: tps-three@example.com\r\nCSeq: 1 MESSAGE\r\nContact: <sip:alice@{a}>\r\nX-T: call\r\nX-To: sip:{b}\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n\r\nhi"
    );
    run.transaction(
        'A',
        &message,
        ("MESSAGE", "MESSAGE"),
        202,
        "tb3",
        &[&contact_b],
    );
    subscription(&mut run, a, b);
    // A REGISTER is not touched.
    let register = format!(
        "REGISTER sip:example.com SIP/2.0\r\nVia: SIP/2.0/UDP {a};branch=z9hG4bKt4, SIP/2.0/UDP 10.0.0.7:5070;branch=z9hG4bKtold4\r\nMax-Forwards: 70\r\nFrom: <sip:alice@example.com>;tag=fa4\r\nTo: <sip:alice@example.com>\r\nCall-ID: tps-four@example.com\r\nCSeq: 1 REGISTER\r\nContact: <sip:alice@{a}>\r\nX-T: call\r\nX-To: sip:{b}\r\nContent-Length: 0\r\n\r\n"
    );
    run.transaction(
        'A',
        &register,
        ("REGISTER", "REGISTER"),
        200,
        "tb4",
        &[&contact_b],
    );
    // A reply of the proxy's own.
    let rejected = initial_invite(a, b)
        .replace("X-T: call", "X-T: reject")
        .replace("tps-one@", "tps-five@");
    p.a.send(srv, &rejected);
    let r = p.a.recv_status(403, WAIT);
    run.note("A gets 403", r.as_ref());
    // Nothing else arrives (no stray retransmission of ours).
    std::thread::sleep(Duration::from_millis(300));
    if std::env::var("SR_TPS_DEBUG").is_ok() {
        for l in &run.out {
            eprintln!("{l}");
        }
    }
    run.out
}

/// An initial INVITE from behind an upstream proxy (at A's address): two
/// Vias and its Record-Route.
fn initial_invite(a: SocketAddr, b: SocketAddr) -> String {
    format!(
        "INVITE sip:bob@{b} SIP/2.0\r\nVia: SIP/2.0/UDP {a};branch=z9hG4bKt1;rport\r\nVia: SIP/2.0/UDP 10.0.0.7:5070;branch=z9hG4bKtold\r\nMax-Forwards: 70\r\nRecord-Route: <sip:{a};lr>\r\nFrom: \"Alice\" <sip:alice@example.com>;tag=fa1\r\nTo: <sip:bob@example.com>\r\nCall-ID: tps-one@example.com\r\nCSeq: 1 INVITE\r\nContact: <sip:alice@{a};transport=udp>\r\nX-T: call\r\nX-To: sip:{b}\r\nContent-Length: 0\r\n\r\n"
    )
}

/// A call: INVITE, 180, 200 (B behind a record-routing proxy of its own,
/// at B's address), ACK, a re-INVITE from A, INFO and BYE from B.
fn call(run: &mut Run<'_>, a: SocketAddr, b: SocketAddr) {
    let Some(inv) = run.request('A', &initial_invite(a, b), "INVITE", "INVITE") else {
        return;
    };
    let contact_b = format!("Contact: <sip:bob@{b}>");
    let rr_b = &format!("Record-Route: <sip:{b};lr>");
    run.answer(
        'B',
        &inv,
        (180, "Ringing"),
        "tb1",
        &[&contact_b, rr_b],
        "180",
    );
    let Some(ok) = run.answer('B', &inv, (200, "OK"), "tb1", &[&contact_b, rr_b], "200") else {
        return;
    };
    // A's requests: to B's Contact as A saw it, with the Route set A got
    // (but the upstream proxy's entry, which that proxy takes).
    let dlg = Dlg {
        call: "tps-one@example.com",
        from: "\"Alice\" <sip:alice@example.com>;tag=fa1",
        to: "<sip:bob@example.com>;tag=tb1",
    };
    let b_contact = contact_uri(&ok);
    let routes_a = ok.all("Record-Route").replace(&format!("<sip:{a};lr>"), "");
    let ack = dlg.request(("ACK", 1), &b_contact, a, "ack", &routes_a, "");
    run.request('A', &ack, "ACK", "ACK");
    let a_contact_hdr = format!("Contact: <sip:alice@{a}>\r\n");
    let re = dlg.request(
        ("INVITE", 2),
        &b_contact,
        a,
        "re",
        &routes_a,
        &a_contact_hdr,
    );
    if run
        .transaction('A', &re, ("INVITE", "re-INVITE"), 200, "", &[&contact_b])
        .is_some()
    {
        let ack = dlg.request(("ACK", 2), &b_contact, a, "reack", &routes_a, "");
        run.request('A', &ack, "ACK", "ACK 2");
    }
    // B's requests: to A's Contact as B saw it, with its Route set.
    let a_contact = contact_uri(&inv);
    let routes_b = inv.all("Record-Route");
    let b_contact_hdr = format!("Contact: <sip:bob@{b}>\r\n");
    let info = dlg.flip().request(
        ("INFO", 2),
        &a_contact,
        b,
        "info",
        &routes_b,
        &b_contact_hdr,
    );
    run.transaction('B', &info, ("INFO", "INFO"), 200, "", &[]);
    let bye = dlg
        .flip()
        .request(("BYE", 3), &a_contact, b, "bye", &routes_b, "");
    run.transaction('B', &bye, ("BYE", "BYE"), 200, "", &[]);
}

/// A second call with a reliable 180 and its PRACK, then cancelled: the
/// CANCEL and the ACK of the 487 are the proxy's own requests.
fn cancelled_call(run: &mut Run<'_>, a: SocketAddr, b: SocketAddr) {
    let invite = format!(
        "INVITE sip:bob@{b} SIP/2.0\r\nVia: SIP/2.0/UDP {a};branch=z9hG4bKt2\r\nMax-Forwards: 70\r\nFrom: <sip:alice@example.com>;tag=fa2\r\nTo: <sip:bob@example.com>\r\nCall-ID: tps-two@example.com\r\nCSeq: 5 INVITE\r\nContact: sip:alice@{a};expires=60\r\nX-T: call\r\nX-To: sip:{b}\r\nContent-Length: 0\r\n\r\n"
    );
    let Some(inv) = run.request('A', &invite, "INVITE", "INVITE 2") else {
        return;
    };
    let contact_b = format!("Contact: <sip:bob@{b}>");
    let rr_b = format!("Record-Route: <sip:{b};lr>");
    let rel = ["Require: 100rel", "RSeq: 1", &contact_b, &rr_b];
    // A acknowledges the 180 reliably, within the early dialog.
    if let Some(r180) = run.answer('B', &inv, (180, "Ringing"), "tb2", &rel, "180 2") {
        let to = r180.header("To").unwrap_or_default();
        let dlg = Dlg {
            call: "tps-two@example.com",
            from: "<sip:alice@example.com>;tag=fa2",
            to: &to,
        };
        let routes = r180
            .all("Record-Route")
            .replace(&format!("<sip:{a};lr>"), "");
        let prack = dlg.request(
            ("PRACK", 6),
            &contact_uri(&r180),
            a,
            "pr",
            &routes,
            "RAck: 1 5 INVITE\r\n",
        );
        run.transaction('A', &prack, ("PRACK", "PRACK"), 200, "", &[]);
    }
    let cancel = format!(
        "CANCEL sip:bob@{b} SIP/2.0\r\nVia: SIP/2.0/UDP {a};branch=z9hG4bKt2\r\nMax-Forwards: 70\r\nFrom: <sip:alice@example.com>;tag=fa2\r\nTo: <sip:bob@example.com>\r\nCall-ID: tps-two@example.com\r\nCSeq: 5 CANCEL\r\nX-T: call\r\nContent-Length: 0\r\n\r\n"
    );
    run.p.a.send(run.srv, &cancel);
    let r = run.p.a.recv_status(200, WAIT);
    run.note("A gets 200 CANCEL", r.as_ref());
    let c = run.p.b.recv_method("CANCEL", WAIT);
    run.note("B gets CANCEL", c.as_ref());
    if let Some(c) = c {
        run.p.b.send(run.srv, &answer(&c, 200, "OK", "tb2", &[]));
    }
    run.p.b.send(
        run.srv,
        &answer(&inv, 487, "Request Terminated", "tb2", &[]),
    );
    let ack = run.p.b.recv_method("ACK", WAIT);
    run.note("B gets ACK 487", ack.as_ref());
    let r = run.p.a.recv_status(487, WAIT);
    run.note("A gets 487", r.as_ref());
    if let Some(r) = r {
        let to = r.header("To").unwrap_or_default();
        run.p.a.send(run.srv, &format!(
            "ACK sip:bob@{b} SIP/2.0\r\nVia: SIP/2.0/UDP {a};branch=z9hG4bKt2\r\nMax-Forwards: 70\r\nFrom: <sip:alice@example.com>;tag=fa2\r\nTo: {to}\r\nCall-ID: tps-two@example.com\r\nCSeq: 5 ACK\r\nX-T: call\r\nContent-Length: 0\r\n\r\n"
        ));
    }
}

/// A subscription: SUBSCRIBE, 202, a NOTIFY from B within the new dialog,
/// and a refresh from A to the Contact it got.
fn subscription(run: &mut Run<'_>, a: SocketAddr, b: SocketAddr) {
    let subscribe = format!(
        "SUBSCRIBE sip:bob@{b} SIP/2.0\r\nVia: SIP/2.0/UDP {a};branch=z9hG4bKt6\r\nMax-Forwards: 70\r\nFrom: <sip:alice@example.com>;tag=fa6\r\nTo: <sip:bob@example.com>\r\nCall-ID: tps-six@example.com\r\nCSeq: 1 SUBSCRIBE\r\nContact: <sip:alice@{a}>\r\nEvent: presence\r\nExpires: 60\r\nX-T: call\r\nX-To: sip:{b}\r\nContent-Length: 0\r\n\r\n"
    );
    let Some(sub) = run.request('A', &subscribe, "SUBSCRIBE", "SUBSCRIBE") else {
        return;
    };
    let contact_b = format!("Contact: <sip:bob@{b}>");
    let rr_b = format!("Record-Route: <sip:{b};lr>");
    let accepted = run.answer(
        'B',
        &sub,
        (202, "Accepted"),
        "tb6",
        &[&contact_b, &rr_b],
        "202 SUBSCRIBE",
    );
    let dlg = Dlg {
        call: "tps-six@example.com",
        from: "<sip:alice@example.com>;tag=fa6",
        to: "<sip:bob@example.com>;tag=tb6",
    };
    let notify_hdrs = format!(
        "Contact: <sip:bob@{b}>\r\nEvent: presence\r\nSubscription-State: active;expires=60\r\n"
    );
    let notify = dlg.flip().request(
        ("NOTIFY", 1),
        &contact_uri(&sub),
        b,
        "n",
        &sub.all("Record-Route"),
        &notify_hdrs,
    );
    run.transaction('B', &notify, ("NOTIFY", "NOTIFY"), 200, "", &[]);
    if let Some(accepted) = accepted {
        let hdrs = format!("Contact: <sip:alice2@{a}>\r\nEvent: presence\r\nExpires: 60\r\n");
        let refresh = dlg.request(("SUBSCRIBE", 2), &contact_uri(&accepted), a, "7", "", &hdrs);
        run.transaction(
            'A',
            &refresh,
            ("SUBSCRIBE", "re-SUBSCRIBE"),
            200,
            "",
            &[&contact_b],
        );
    }
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
