//! Differential test against Kamailio itself, for presence and
//! presence_xml (`force_active`): one configuration and one SQLite file
//! layout run by Kamailio 5.6 and by siprouter in turn, driven by the same
//! publisher and subscriber, and every message each server sends compared:
//! the answers to PUBLISH and SUBSCRIBE (codes, reasons, headers in order,
//! Expires, SIP-ETag, Allow-Events, Min-Expires) and each NOTIFY (request
//! line, headers in order, CSeq, Subscription-State, body byte for byte:
//! PIDF documents merged from several publications with namespaces,
//! whitespace, entities and characters outside ASCII, offline bodies of
//! removed publications, watcher-info documents). Tags, entity tags and
//! branches are named by first appearance, so that their reuse is
//! compared too; the seconds left in `Subscription-State` are not (they
//! depend on the clock). The tables both servers leave are compared at
//! the end.
//!
//! Without Kamailio and its presence and db_sqlite modules installed the
//! test prints a notice and passes, unless `SR_KAMAILIO_REQUIRED=1`
//! (`.ci/run` sets it).

use sr_testkit::kamailio;
use sr_testkit::{Reply, UdpPeer};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::Duration;

const MODULES: &[&str] = &[
    "tm",
    "sl",
    "pv",
    "textops",
    "htable",
    "db_sqlite",
    "presence",
    "presence_xml",
    "presence_mwi",
];

const BODY: &str = r#"
modparam("presence", "db_url", "__DB__")
modparam("presence", "clean_period", 1)
modparam("presence", "db_update_period", 1)
modparam("presence", "min_expires", 30)
modparam("presence_xml", "db_url", "__DB__")
modparam("presence_xml", "force_active", 1)
modparam("tm", "fr_timer", 1000)
modparam("htable", "htable", "nr=>size=4;")
modparam("htable", "htable", "hs=>size=4;")
request_route {
    if (is_method("OPTIONS")) {
        if ($hdr(X-Ci) != $null) {
            append_to_reply("X-NR: $sht(nr=>$hdr(X-Ci))\r\nX-HS: $sht(hs=>$hdr(X-Ci))\r\n");
        }
        sl_send_reply("200", "up");
        exit;
    }
    if (is_method("PUBLISH|SUBSCRIBE")) {
        if (!t_newtran()) { sl_reply_error(); exit; }
        if (is_method("PUBLISH")) {
            if ($hdr(X-Sender) != $null) { handle_publish("$hdr(X-Sender)"); }
            else { handle_publish(); }
        } else {
            handle_subscribe();
            $sht(hs=>$ci) = "uri=" + $subs(uri) + " ev=" + $subs(event) + " st=" + $subs(status) + " exp=" + $subs(expires) + " lc=" + $subs(local_cseq) + " v=" + $subs(version);
        }
        t_release();
        exit;
    }
    sl_send_reply("404", "Not here");
}
event_route[presence:notify-reply] {
    $sht(nr=>$ci) = "m=" + $rm + " cs=" + $cs + " rs=" + $notify_reply($rs) + " rr=" + $notify_reply($rr) + " rci=" + $notify_reply($ci) + " uri=" + $subs(uri) + " cid=" + $subs(callid) + " st=" + $subs(status) + " lc=" + $subs(local_cseq) + " ev=" + $subs(event);
}
"#;

/// Names for what differs per run: tags, entity tags, ports.
struct Names {
    srv: SocketAddr,
    ua: SocketAddr,
    tags: HashMap<String, String>,
    etags: HashMap<String, String>,
}

impl Names {
    fn name(map: &mut HashMap<String, String>, prefix: &str, v: &str) -> String {
        let n = map.len() + 1;
        map.entry(v.to_string())
            .or_insert_with(|| format!("{prefix}{n}"))
            .clone()
    }

    /// One message as a line: start line, then each header (masked), then
    /// the body.
    fn render(&mut self, r: &Reply) -> String {
        let m = r.msg.msg();
        let first = String::from_utf8_lossy(m.raw())
            .lines()
            .next()
            .unwrap_or_default()
            .to_string();
        let mut out = vec![self.ports(&first)];
        for h in m.headers() {
            let name = h.name_str;
            let v = h.value.trim();
            let v = match name.to_ascii_lowercase().as_str() {
                "via" => v
                    .split(";branch=")
                    .next()
                    .map(|x| format!("{};branch=B", self.ports(x)))
                    .unwrap_or_default(),
                "to" | "from" => match v.split_once(";tag=") {
                    Some((a, t)) if !t.starts_with("from-") && !t.starts_with("w") => {
                        let n = Self::name(&mut self.tags, "T", t);
                        format!("{a};tag={n}")
                    }
                    _ => v.to_string(),
                },
                "sip-etag" => Self::name(&mut self.etags, "E", v),
                "server" | "user-agent" => "UA".into(),
                "subscription-state" => match v.split_once(";expires=") {
                    Some((s, _)) => format!("{s};expires=N"),
                    None => v.to_string(),
                },
                _ => self.ports(v),
            };
            out.push(format!("{name}: {v}"));
        }
        out.push(format!("body: {}", String::from_utf8_lossy(m.body())));
        out.join(" | ")
    }

    fn ports(&self, s: &str) -> String {
        s.replace(&self.srv.to_string(), "SRV")
            .replace(&self.ua.to_string(), "UA")
    }
}

struct Ua {
    peer: UdpPeer,
    srv: SocketAddr,
    n: u32,
    names: Names,
    out: Vec<String>,
    /// The code NOTIFYs are answered with (0: not answered).
    notify_code: u16,
}

const PIDF: &str = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<presence xmlns=\"urn:ietf:params:xml:ns:pidf\" entity=\"sip:WHO@ex.test\">\n<tuple id=\"ID\"><status><basic>BASIC</basic></status><note>NOTE</note></tuple>\n</presence>\n";

fn pidf(who: &str, id: &str, basic: &str, note: &str) -> String {
    PIDF.replace("WHO", who)
        .replace("ID", id)
        .replace("BASIC", basic)
        .replace("NOTE", note)
}

impl Ua {
    /// Sends a request and records everything that comes within the
    /// step (NOTIFYs answered), the NOTIFYs in Call-ID order.
    fn step(&mut self, label: &str, text: String) -> Vec<Reply> {
        self.peer.send(self.srv, &text);
        let mut got: Vec<Reply> = Vec::new();
        let mut wait = Duration::from_secs(3);
        while let Some(r) = self.peer.recv(wait) {
            wait = Duration::from_millis(400);
            if self.notify_code > 0 && r.msg.msg().method().is_some_and(|m| m.as_str() == "NOTIFY")
            {
                let answer = sr_testkit::answer(&r, self.notify_code, "OK", "", &[]);
                let answer = answer.replace(";tag=\r\n", "\r\n");
                self.peer.send(r.from, &answer);
            }
            // A retransmission (how many depends on timing) is not
            // an observation.
            if !got.iter().any(|g| g.text() == r.text()) {
                got.push(r);
            }
        }
        let (mut notifies, replies): (Vec<Reply>, Vec<Reply>) =
            got.into_iter().partition(|r| r.msg.msg().is_request());
        notifies.sort_by_key(|r| r.header("Call-ID").unwrap_or_default());
        self.out.push(format!("== {label}"));
        for r in replies.iter().chain(notifies.iter()) {
            let line = self.names.render(r);
            self.out.push(line);
        }
        replies.into_iter().chain(notifies).collect()
    }

    fn publish(
        &mut self,
        label: &str,
        who: &str,
        headers: &[String],
        body: &str,
    ) -> Option<String> {
        self.n += 1;
        let mut h = format!(
            "PUBLISH sip:{who}@ex.test SIP/2.0\r\nVia: SIP/2.0/UDP {ua};branch=z9hG4bKp{n}\r\nMax-Forwards: 70\r\nFrom: <sip:{who}@ex.test>;tag=from-p{n}\r\nTo: <sip:{who}@ex.test>\r\nCall-ID: pub{n}\r\nCSeq: 1 PUBLISH\r\n",
            ua = self.peer.addr(),
            n = self.n
        );
        for x in headers {
            h.push_str(x);
            h.push_str("\r\n");
        }
        let typed = headers
            .iter()
            .any(|x| x.to_ascii_lowercase().starts_with("content-type:"));
        if !body.is_empty() && !typed {
            h.push_str("Content-Type: application/pidf+xml\r\n");
        }
        h.push_str(&format!("Content-Length: {}\r\n\r\n{body}", body.len()));
        let got = self.step(label, h);
        got.first().and_then(|r| r.header("SIP-ETag"))
    }

    #[allow(clippy::too_many_arguments)]
    fn subscribe(
        &mut self,
        label: &str,
        who: &str,
        watcher: &str,
        call: &str,
        cseq: u32,
        to_tag: Option<&str>,
        headers: &[&str],
    ) -> Option<String> {
        self.n += 1;
        let tt = to_tag.map(|t| format!(";tag={t}")).unwrap_or_default();
        let mut h = format!(
            "SUBSCRIBE sip:{who}@ex.test SIP/2.0\r\nVia: SIP/2.0/UDP {ua};branch=z9hG4bKs{n}\r\nMax-Forwards: 70\r\nFrom: <sip:{watcher}@ex.test>;tag=w{watcher}\r\nTo: <sip:{who}@ex.test>{tt}\r\nCall-ID: {call}\r\nCSeq: {cseq} SUBSCRIBE\r\n",
            ua = self.peer.addr(),
            n = self.n
        );
        for x in headers {
            h.push_str(x);
            h.push_str("\r\n");
        }
        h.push_str("Content-Length: 0\r\n\r\n");
        let got = self.step(label, h);
        got.first()
            .filter(|r| r.status().is_some_and(|c| c < 300))
            .and_then(|r| r.msg.msg().to_tag().ok().flatten().map(str::to_string))
    }
}

fn contact(ua: &Ua, ev: &str, exp: u32) -> Vec<String> {
    vec![
        format!("Contact: <sip:w@{}>", ua.peer.addr()),
        format!("Event: {ev}"),
        format!("Expires: {exp}"),
    ]
}

/// Waits for the clock's next second.
fn next_second() {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    std::thread::sleep(Duration::from_nanos(
        1_000_000_000 - u64::from(now.subsec_nanos()) + 20_000_000,
    ));
}

fn scenario(srv: SocketAddr) -> Vec<String> {
    let peer = UdpPeer::new();
    kamailio::wait_until_up(&peer, srv, kamailio::PROBE, None);
    let ua_addr = peer.addr();
    let mut ua = Ua {
        peer,
        srv,
        n: 0,
        names: Names {
            srv,
            ua: ua_addr,
            tags: HashMap::new(),
            etags: HashMap::new(),
        },
        out: Vec::new(),
        notify_code: 200,
    };
    let ev = |e: &str, x: u32| vec![format!("Event: {e}"), format!("Expires: {x}")];
    // Three publications of alice, then a watcher.
    let e_a = ua.publish(
        "pub A",
        "alice",
        &ev("presence", 3600),
        &pidf("alice", "tA", "open", "A"),
    );
    let e_b = ua.publish(
        "pub B",
        "alice",
        &ev("presence", 3600),
        &pidf("alice", "tB", "open", "B"),
    );
    let e_c = ua.publish(
        "pub C",
        "alice",
        &ev("presence", 3600),
        &pidf("alice", "tC", "open", "C"),
    );
    let c = contact(&ua, "presence", 600);
    let cr: Vec<&str> = c.iter().map(String::as_str).collect();
    let t1 = ua.subscribe("sub bob", "alice", "bob", "sub1", 1, None, &cr);
    // Changes and refreshes reach bob (each in a second of its own: in
    // one second the publication made first counts as the older).
    next_second();
    let e_b = ua.publish(
        "modify B",
        "alice",
        &[
            ev("presence", 3600),
            vec![format!("SIP-If-Match: {}", e_b.clone().unwrap_or_default())],
        ]
        .concat(),
        &pidf("alice", "tB", "closed", "B2"),
    );
    next_second();
    let e_c = ua.publish(
        "refresh C",
        "alice",
        &[
            ev("presence", 1200),
            vec![format!("SIP-If-Match: {}", e_c.clone().unwrap_or_default())],
        ]
        .concat(),
        "",
    );
    // Refusals; Expires read as Kamailio reads it.
    let zed = pidf("zed", "z1", "open", "z");
    ua.publish(
        "expires soon",
        "zed",
        &["Event: presence".to_string(), "Expires: soon".into()],
        &zed,
    );
    ua.publish(
        "expires 12abc",
        "zed",
        &["Event: presence".to_string(), "Expires: 12abc".into()],
        &zed,
    );
    for (label, hs, body) in [
        (
            "unknown etag",
            vec![
                "Event: presence".to_string(),
                "SIP-If-Match: a.1.2.3.4".into(),
            ],
            "",
        ),
        (
            "etag without count",
            vec![
                "Event: presence".to_string(),
                "SIP-If-Match: nonexist".into(),
            ],
            "",
        ),
        ("no body no etag", vec!["Event: presence".to_string()], ""),
        ("no event", vec![], "x"),
        ("unknown event", vec!["Event: foo".to_string()], "x"),
        (
            "event with id",
            vec!["Event: presence;id=1".to_string()],
            "x",
        ),
        ("not xml", vec!["Event: presence".to_string()], "<presence"),
        (
            "bad expires",
            vec!["Event: presence".to_string(), "Expires: soon".into()],
            "x",
        ),
    ] {
        ua.publish(label, "alice", &hs, body);
    }
    // Expires capped or defaulted; a publication of another device with a
    // tuple id already known.
    ua.publish(
        "long expires",
        "dave",
        &ev("presence", 99999),
        &pidf("dave", "d1", "open", "x"),
    );
    ua.publish(
        "no expires",
        "dave",
        &["Event: presence".to_string()],
        &pidf("dave", "d1", "open", "y"),
    );
    // SUBSCRIBE refusals and a fetch.
    let bad: Vec<(&str, Vec<String>)> = vec![
        ("sub unknown event", contact(&ua, "foo", 600)),
        ("sub too brief", contact(&ua, "presence", 5)),
        (
            "sub without contact",
            vec!["Event: presence".into(), "Expires: 600".into()],
        ),
        ("fetch", contact(&ua, "presence", 0)),
        ("sub long", contact(&ua, "presence", 99999)),
    ];
    for (i, (label, hs)) in bad.iter().enumerate() {
        let hs: Vec<&str> = hs.iter().map(String::as_str).collect();
        ua.subscribe(label, "alice", "carol", &format!("sb{i}"), 1, None, &hs);
    }
    ua.subscribe(
        "unknown dialog",
        "alice",
        "bob",
        "nope",
        2,
        Some("nope"),
        &cr,
    );
    // Within bob's dialog: refresh, stale CSeq.
    let c300 = contact(&ua, "presence", 300);
    let c300: Vec<&str> = c300.iter().map(String::as_str).collect();
    ua.subscribe(
        "refresh bob",
        "alice",
        "bob",
        "sub1",
        2,
        t1.as_deref(),
        &c300,
    );
    ua.subscribe(
        "stale cseq",
        "alice",
        "bob",
        "sub1",
        2,
        t1.as_deref(),
        &c300,
    );
    // Documents with namespaces, whitespace, comments, entities, text
    // outside ASCII; compact ones (indented by libxml2); the first-tuple
    // rule.
    let d1 = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<presence xmlns=\"urn:ietf:params:xml:ns:pidf\" xmlns:dm=\"urn:ietf:params:xml:ns:pidf:data-model\" entity=\"sip:erin@ex.test\">  <tuple id=\"x1\"><status><basic>open</basic></status></tuple>\t<dm:person id=\"p1\"><dm:note>hi &amp; bye</dm:note></dm:person>\r\n  <note>N1</note><!-- c -->  <tuple id=\"x2\"><status><basic>open</basic></status></tuple> </presence>";
    let d2 = "<?xml version='1.0'?><presence xmlns='urn:ietf:params:xml:ns:pidf' entity='sip:erin@ex.test'>AAA<tuple id='x2' a='q&quot;r'><status><basic>closed</basic></status></tuple>BBB<tuple id='x3'><status><basic>closed</basic></status><note/></tuple>CCC<note>N2</note>DDD</presence>";
    ua.publish("erin 1", "erin", &ev("presence", 3600), d1);
    let e_d2 = ua.publish("erin 2", "erin", &ev("presence", 3600), d2);
    let g = |ids: &[&str]| {
        let mut s = String::from(
            "<presence xmlns=\"urn:ietf:params:xml:ns:pidf\" entity=\"sip:gina@ex.test\">",
        );
        for i in ids {
            s.push_str(&format!(
                "<tuple id=\"{i}\"><status><basic>open</basic></status></tuple>"
            ));
        }
        s + "</presence>"
    };
    ua.publish("gina 1", "gina", &ev("presence", 3600), &g(&["g2", "g7"]));
    ua.publish("gina 2", "gina", &ev("presence", 3600), "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<presence xmlns=\"urn:ietf:params:xml:ns:pidf\" entity=\"sip:gina@ex.test\"><note>caf\u{e9} &lt;x&gt; \"q\"</note><tuple id=\"g5\"><status><basic>open</basic></status></tuple></presence>");
    ua.publish("gina 3", "gina", &ev("presence", 3600), &g(&["g1", "g2"]));
    let ce = contact(&ua, "presence", 600);
    let ce: Vec<&str> = ce.iter().map(String::as_str).collect();
    let te = ua.subscribe("sub erin", "erin", "bob", "sub-erin", 1, None, &ce);
    ua.subscribe("sub gina", "gina", "bob", "sub-gina", 1, None, &ce);
    ua.subscribe("sub nobody", "nobody", "bob", "sub-nobody", 1, None, &ce);
    ua.publish(
        "remove erin 2",
        "erin",
        &[
            ev("presence", 0),
            vec![format!("SIP-If-Match: {}", e_d2.unwrap_or_default())],
        ]
        .concat(),
        "",
    );
    // message-summary (presence_mwi): bodies checked (500 as Kamailio's),
    // the newest sent, nothing merged, no body after a removal.
    let mwi_hdrs = |exp: u32, etag: Option<&str>| {
        let mut v = vec![
            "Event: message-summary".to_string(),
            format!("Expires: {exp}"),
            "Content-Type: application/simple-message-summary".to_string(),
        ];
        if let Some(e) = etag {
            v.push(format!("SIP-If-Match: {e}"));
        }
        v
    };
    let m1 = ua.publish(
        "mwi 1",
        "vm",
        &mwi_hdrs(3600, None),
        "Messages-Waiting: yes\r\nMessage-Account: sip:vm@ex.test\r\nVoice-Message: 2/8 (0/2)\r\n",
    );
    ua.publish(
        "mwi 2",
        "vm",
        &mwi_hdrs(3600, None),
        "Messages-Waiting: no\r\n",
    );
    for (label, body) in [
        ("mwi lower case", "messages-waiting: YES\r\n"),
        ("mwi without CRLF", "Messages-Waiting:yes"),
        ("mwi maybe", "Messages-Waiting: maybe\r\n"),
    ] {
        ua.publish(label, "vm", &mwi_hdrs(3600, None), body);
    }
    let cm = contact(&ua, "message-summary", 600);
    let cm: Vec<&str> = cm.iter().map(String::as_str).collect();
    ua.subscribe("sub mwi", "vm", "bob", "sub-mwi", 1, None, &cm);
    ua.publish("mwi remove 1", "vm", &mwi_hdrs(0, m1.as_deref()), "");
    ua.publish(
        "mwi 3",
        "vm",
        &mwi_hdrs(3600, None),
        "Messages-Waiting: yes\r\n",
    );
    // Watcher information: alice watches her watchers; a new watcher and
    // one leaving are reported.
    let cw = contact(&ua, "presence.winfo", 600);
    let cw: Vec<&str> = cw.iter().map(String::as_str).collect();
    ua.subscribe("winfo alice", "alice", "alice", "winfo1", 1, None, &cw);
    let tf = ua.subscribe("sub frank", "alice", "frank", "sub-frank", 1, None, &cr);
    // Kamailio writes subscriptions on a 1 s timer: frank's is written
    // before he leaves, so that its row goes for certain.
    std::thread::sleep(Duration::from_millis(1500));
    let c0 = contact(&ua, "presence", 0);
    let c0: Vec<&str> = c0.iter().map(String::as_str).collect();
    ua.subscribe(
        "frank leaves",
        "alice",
        "frank",
        "sub-frank",
        2,
        tf.as_deref(),
        &c0,
    );
    // Removals: alice's publications one by one (offline bodies).
    for (label, e) in [("remove A", e_a), ("remove B", e_b), ("remove C", e_c)] {
        ua.publish(
            label,
            "alice",
            &[
                ev("presence", 0),
                vec![format!("SIP-If-Match: {}", e.unwrap_or_default())],
            ]
            .concat(),
            "",
        );
    }
    // A watcher whose NOTIFY gets 481 is dropped: the next publication
    // reaches only the other one.
    ua.notify_code = 481;
    ua.publish(
        "erin 3",
        "erin",
        &ev("presence", 3600),
        &pidf("erin", "x9", "open", "again"),
    );
    ua.notify_code = 200;
    ua.publish(
        "erin 4",
        "erin",
        &ev("presence", 3600),
        &pidf("erin", "x8", "open", "more"),
    );
    let _ = te;
    // bob leaves alice.
    ua.subscribe(
        "bob leaves",
        "alice",
        "bob",
        "sub1",
        3,
        t1.as_deref(),
        &[
            "Contact: <sip:w@127.0.0.1>",
            "Event: presence",
            "Expires: 0",
        ],
    );
    // A watcher that never answers: its NOTIFY times out (tm's fr_timer,
    // 1 s), the route sees Kamailio's faked 408 and the subscription goes.
    ua.notify_code = 0;
    ua.subscribe("sub quiet", "alice", "quinn", "sub-quiet", 1, None, &cr);
    ua.notify_code = 200;
    std::thread::sleep(Duration::from_millis(2500));
    while ua.peer.recv(Duration::from_millis(200)).is_some() {}
    ua.out.push("== what the routes saw".into());
    for ci in [
        "sub1",
        "sub-erin",
        "sb3",
        "sub-frank",
        "winfo1",
        "sub-quiet",
    ] {
        let probe = format!(
            "OPTIONS sip:x@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP {};branch=z9hG4bKq{ci}\r\nFrom: <sip:a@b>;tag=1\r\nTo: <sip:x@y>\r\nCall-ID: q-{ci}\r\nCSeq: 1 OPTIONS\r\nX-Ci: {ci}\r\nContent-Length: 0\r\n\r\n",
            ua.peer.addr()
        );
        ua.peer.send(srv, &probe);
        let r = ua.peer.recv_final(Duration::from_secs(3));
        let nr = r
            .as_ref()
            .and_then(|r| r.header("X-NR"))
            .unwrap_or_default();
        let hs = r
            .as_ref()
            .and_then(|r| r.header("X-HS"))
            .unwrap_or_default();
        ua.out.push(ua.names.ports(&format!(
            "{ci}: notify-reply [{nr}] after handle_subscribe [{hs}]"
        )));
    }
    // A short subscription ends by the timer (NOTIFY without body), a
    // short publication expires (its watcher told).
    let c31 = contact(&ua, "presence", 31);
    let c31: Vec<&str> = c31.iter().map(String::as_str).collect();
    ua.subscribe("sub hank", "hank", "bob", "sub-hank", 1, None, &c31);
    ua.publish(
        "hank short",
        "hank",
        &ev("presence", 2),
        &pidf("hank", "h1", "open", "soon gone"),
    );
    ua.publish(
        "hank long",
        "hank",
        &ev("presence", 3600),
        &pidf("hank", "h2", "open", "stays"),
    );
    ua.out.push("== hank's short publication expired".into());
    let mut seen = Vec::new();
    // Expiry at 2 s, then Kamailio's 1 s clean timer: 6 s leaves room
    // for a loaded machine (3.5 s once missed there).
    let until = std::time::Instant::now() + Duration::from_millis(6000);
    loop {
        let r = match ua.peer.recv(Duration::from_millis(300)) {
            Some(r) => r,
            None if std::time::Instant::now() < until => continue,
            None => break,
        };
        if r.msg.msg().is_request() {
            let a = sr_testkit::answer(&r, 200, "OK", "", &[]).replace(";tag=\r\n", "\r\n");
            ua.peer.send(r.from, &a);
        }
        if !seen.contains(&r.text()) {
            seen.push(r.text());
            let line = ua.names.render(&r);
            ua.out.push(line);
        }
    }
    ua.out
}

/// `127.0.0.1:<port>` as `127.0.0.1:P` (the ports differ per run).
fn mask_port(v: &str) -> String {
    match v.find("127.0.0.1:") {
        None => v.to_string(),
        Some(i) => {
            let rest = &v[i + 10..];
            let end = rest
                .find(|c: char| !c.is_ascii_digit())
                .unwrap_or(rest.len());
            format!("{}127.0.0.1:P{}", &v[..i], mask_port(&rest[end..]))
        }
    }
}

/// What the tables hold at the end, in a stable order.
fn tables(url: &str) -> Vec<String> {
    use sr_sdk::db::DbConn;
    let mut c = sr_mod_db_sqlite::SqliteConn::open(url, 1000).unwrap();
    let mut out = Vec::new();
    for (table, cols) in [
        (
            "presentity",
            vec!["username", "domain", "event", "body", "sender"],
        ),
        (
            "watchers",
            vec![
                "presentity_uri",
                "watcher_username",
                "watcher_domain",
                "event",
                "status",
            ],
        ),
        (
            "active_watchers",
            vec![
                "presentity_uri",
                "watcher_username",
                "watcher_domain",
                "to_user",
                "to_domain",
                "from_user",
                "from_domain",
                "event",
                "callid",
                "remote_cseq",
                "contact",
                "status",
                "local_contact",
            ],
        ),
    ] {
        let rows = c.query(table, &[], &cols, None).unwrap();
        let mut lines: Vec<String> = (0..rows.len())
            .map(|i| {
                let vals: Vec<String> = cols
                    .iter()
                    .map(|col| {
                        let v = rows.get(i, col).as_string().unwrap_or_default();
                        mask_port(&v)
                    })
                    .collect();
                format!("{table}: {}", vals.join(" "))
            })
            .collect();
        lines.sort();
        out.extend(lines);
    }
    out
}

#[test]
fn presence_matches_kamailio() {
    if !kamailio::available(MODULES) {
        return;
    }
    let dir = kamailio::fresh_dir("presence");
    let db = dir.join("presence.db");
    let url = format!("sqlite:///{}", db.display());
    let cfg = (kamailio::head(MODULES) + BODY).replace("__DB__", &url);
    let fresh = || {
        let _ = std::fs::remove_file(&db);
        drop(sr_mod_db_sqlite::SqliteConn::open(&url, 1000).unwrap());
    };
    let want_tables = std::cell::RefCell::new(Vec::new());
    let (mut want, mut got) = kamailio::run_scenario(
        &dir,
        &cfg,
        siprouter::in_tree(),
        &|| {
            // The tables Kamailio's last run left (a run repeated after
            // its database was locked replaces them).
            let t = tables(&url);
            if !t.is_empty() {
                *want_tables.borrow_mut() = t;
            }
            fresh()
        },
        &scenario,
    );
    want.extend(want_tables.borrow().iter().cloned());
    std::thread::sleep(Duration::from_millis(1500));
    got.extend(tables(&url));
    assert!(
        want.iter()
            .any(|l| l.contains("Subscription-State: active")),
        "Kamailio notified: {want:#?}"
    );
    kamailio::conclude(&dir, &want, &got, "presence");
}
