//! Differential test against Kamailio itself, for the uac module: one
//! configuration run by Kamailio 5.6 and by siprouter in turn, the same
//! calls through each, and compared: the From/To each writes for
//! `uac_replace_from/to` (display and URI forms), the `vsf`/`vst` values
//! in its Record-Route (with `restore_passwd`), the From/To restored in
//! replies and in requests within the dialog both ways, the
//! Authorization headers `uac_auth` adds for 401 and 407 challenges (qop,
//! opaque, no credential), and a request sent by `uac_req_send` — its
//! head, its answer to a 401, and what `event_route[uac:reply]` saw.
//!
//! Without Kamailio and its uac module installed the test prints a notice
//! and passes, unless `SR_KAMAILIO_REQUIRED=1` (`.ci/run` sets it).

use sr_testkit::kamailio;
use sr_testkit::{answer, Reply, UdpPeer};
use std::net::SocketAddr;
use std::time::Duration;

const T: Duration = Duration::from_secs(3);

const BODY: &str = r#"
modparam("rr", "append_fromtag", 1)
modparam("uac", "restore_passwd", "s3cr3t")
modparam("uac", "credential", "alice:realm.test:secret")
modparam("uac", "credential", "bob:other.test:pw2")
modparam("pv", "shvset", "ev=s:events")
request_route {
    if (is_method("OPTIONS")) {
        if ($hdr(X-Send) != $null) {
            $uac_req(all) = $null;
            $uac_req(method) = "MESSAGE";
            $uac_req(ruri) = $hdr(X-Send);
            $uac_req(furi) = "sip:sender@uac.test";
            $uac_req(turi) = "sip:target@uac.test";
            $uac_req(hdrs) = "X-Custom: one\r\nContent-Type: text/plain\r\n";
            $uac_req(body) = "hello";
            $uac_req(evroute) = 1;
            $uac_req(evparam) = "myparam";
            $uac_req(auser) = "alice";
            $uac_req(apasswd) = "secret";
            $var(rc) = uac_req_send();
            append_to_reply("X-Sent: $var(rc)\r\n");
        }
        append_to_reply("X-Ev: $shv(ev)\r\n");
        sl_send_reply("200", "OK");
        exit;
    }
    if (has_totag()) {
        if (loose_route()) { t_relay(); exit; }
        sl_send_reply("404", "Not here");
        exit;
    }
    $var(r) = "none";
    if ($hdr(X-Fn) == "from2") { $var(r) = uac_replace_from("Bob", "sip:bob@new.example.net"); }
    if ($hdr(X-Fn) == "from1") { $var(r) = uac_replace_from("sip:bob@new.example.net"); }
    if ($hdr(X-Fn) == "empty") { $var(r) = uac_replace_from("", "sip:x@y.z"); }
    if ($hdr(X-Fn) == "dsp") { $var(r) = uac_replace_from("Dave", ""); }
    if ($hdr(X-Fn) == "both") {
        $var(r) = uac_replace_from("sip:longer-user-name@new.example.net");
        $var(t) = uac_replace_to("sip:newto@to.test");
        $var(r) = $var(r) + $var(t);
    }
    if ($hdr(X-Fn) == "twice") {
        uac_replace_from("sip:one@x.test");
        $var(r) = uac_replace_from("sip:two@x.test");
    }
    append_hf("X-R: $var(r)\r\n");
    record_route();
    # A next hop in $du, as trunk configurations set it: failure_route
    # sees it again.
    $du = "sip:" + $rd + ":" + $rp;
    t_on_failure("AUTH");
    t_relay();
}
failure_route[AUTH] {
    if (t_check_status("401|407")) {
        $var(a) = uac_auth();
        if ($var(a) == 1) {
            append_hf("X-Auth: 1\r\nX-Du: $du\r\n");
            t_relay();
        }
    }
}
event_route[uac:reply] {
    $shv(ev) = $shv(ev) + " " + $uac_req(evcode) + "/" + $uac_req(evtype) + "/" + $uac_req(evparam);
}
"#;

const MODULES: &[&str] = &["tm", "sl", "rr", "pv", "siputils", "textops", "tmx", "uac"];

struct World {
    srv: SocketAddr,
    uac: UdpPeer,
    uas: UdpPeer,
    out: Vec<String>,
}

/// A digest `response="..."` in `line` replaced by whether it is right
/// for the line's other fields (the uri holds the peer's port, which
/// differs between the two runs).
fn checked(line: &str, method: &str) -> String {
    let Some(start) = line.find("Digest ") else {
        return line.to_string();
    };
    let end = line[start..].find(']').map_or(line.len(), |e| start + e);
    let field = |name: &str| {
        let key = format!("{name}=");
        let at = line[start..end].find(&format!(" {key}"))? + start + 1 + key.len();
        let v = &line[at..end];
        let v = v.split(',').next()?.trim();
        Some(v.trim_matches('"').to_string())
    };
    let (Some(user), Some(realm), Some(nonce), Some(uri), Some(resp)) = (
        field("username"),
        field("realm"),
        field("nonce"),
        field("uri"),
        field("response"),
    ) else {
        return line.to_string();
    };
    let password = match user.as_str() {
        "alice" => "secret",
        "bob" => "pw2",
        _ => "",
    };
    use sr_mod_auth::digest::{ha1, response, Alg, ResponseInput};
    let (nc, cnonce, qop) = (
        field("nc").unwrap_or_default(),
        field("cnonce").unwrap_or_default(),
        field("qop").unwrap_or_default(),
    );
    let want = response(
        Alg::Md5,
        &ha1(Alg::Md5, &user, &realm, password),
        &ResponseInput {
            nonce: &nonce,
            nc: &nc,
            cnonce: &cnonce,
            qop: &qop,
            method,
            uri: &uri,
        },
    );
    let verdict = if want == resp { "right" } else { "WRONG" };
    line.replace(
        &format!("response=\"{resp}\""),
        &format!("response={verdict}"),
    )
}

/// The next message of `call` that `want` accepts (others dropped:
/// retransmissions of earlier calls).
fn recv_for(peer: &UdpPeer, call: &str, want: impl Fn(&Reply) -> bool) -> Option<Reply> {
    peer.recv_matching(T, |r| r.msg.msg().call_id().ok() == Some(call) && want(r))
}

fn is_method(r: &Reply, method: &str) -> bool {
    r.msg.msg().method().is_some_and(|m| m.as_str() == method)
}

impl World {
    fn names(&self, s: &str) -> String {
        s.replace(&self.uac.addr().to_string(), "UAC")
            .replace(&self.uas.addr().to_string(), "UAS")
            .replace(&self.srv.port().to_string(), "PORT")
    }

    fn note(&mut self, what: &str, r: Option<&Reply>, hdrs: &[&str]) {
        let line = match r {
            None => format!("{what}: nothing"),
            Some(r) => {
                let m = r.msg.msg();
                let head = match m.status() {
                    Some(c) => c.to_string(),
                    None => format!(
                        "{} {}",
                        m.method().map(|x| x.as_str()).unwrap_or_default(),
                        m.request_uri().map(|u| u.raw).unwrap_or_default()
                    ),
                };
                let vals: Vec<String> = hdrs
                    .iter()
                    .map(|h| format!("{h}=[{}]", r.header(h).unwrap_or_default()))
                    .collect();
                format!("{what}: {head} {}", vals.join(" "))
            }
        };
        let method = r
            .and_then(|r| r.msg.msg().method().map(|m| m.as_str().to_string()))
            .unwrap_or_default();
        let line = self.names(&checked(&line, &method));
        self.out.push(line);
    }

    fn invite(&mut self, call: &str, from: &str, extra: &str) -> Option<Reply> {
        let text = format!(
            "INVITE sip:bob@{uas} SIP/2.0\r\nVia: SIP/2.0/UDP {uac};branch=z9hG4bK{call}i\r\nMax-Forwards: 70\r\nFrom: {from};tag={call}-ft\r\nTo: <sip:bob@b.example.com>\r\nCall-ID: {call}\r\nCSeq: 7 INVITE\r\nContact: <sip:alice@{uac}>\r\n{extra}Content-Length: 0\r\n\r\n",
            uas = self.uas.addr(),
            uac = self.uac.addr(),
        );
        self.uac.send(self.srv, &text);
        let inv = recv_for(&self.uas, call, |r| is_method(r, "INVITE"));
        self.note(
            &format!("{call} INVITE at callee"),
            inv.as_ref(),
            &["From", "To", "Record-Route", "X-R"],
        );
        inv
    }

    /// The callee answers; the caller's view.
    fn reply(&mut self, call: &str, inv: &Reply, code: u16, extra: &[&str]) -> Option<Reply> {
        let contact = format!("Contact: <sip:bob@{}>", self.uas.addr());
        let mut hdrs = vec![contact.as_str()];
        hdrs.extend_from_slice(extra);
        self.uas
            .send(inv.from, &answer(inv, code, "Answer", "bobtag", &hdrs));
        let got = self.uac.recv_status(code, T);
        self.note(
            &format!("{call} {code} at caller"),
            got.as_ref(),
            &["From", "To"],
        );
        got
    }

    /// A request within the dialog from the caller, as the callee gets it;
    /// the callee answers 200 and the caller's view of that.
    fn caller_sends(&mut self, call: &str, ok: &Reply, method: &str, cseq: u32) {
        let m = ok.msg.msg();
        let routes: String = m
            .headers_by_name("Record-Route")
            .map(|h| format!("Route: {}\r\n", h.value))
            .collect();
        let from = m
            .headers_by_name("From")
            .next()
            .map(|h| h.value)
            .unwrap_or("");
        let to = m
            .headers_by_name("To")
            .next()
            .map(|h| h.value)
            .unwrap_or("");
        let text = format!(
            "{method} sip:bob@{uas} SIP/2.0\r\nVia: SIP/2.0/UDP {uac};branch=z9hG4bK{call}{method}\r\nMax-Forwards: 70\r\n{routes}From: {from}\r\nTo: {to}\r\nCall-ID: {call}\r\nCSeq: {cseq} {method}\r\nContent-Length: 0\r\n\r\n",
            uas = self.uas.addr(),
            uac = self.uac.addr(),
        );
        self.uac.send(self.srv, &text);
        let got = self.uas.recv_method(method, T);
        self.note(
            &format!("{call} {method} at callee"),
            got.as_ref(),
            &["From", "To"],
        );
        if let (Some(r), false) = (got, method == "ACK") {
            self.uas.send(r.from, &answer(&r, 200, "OK", "x", &[]));
            let back = self.uac.recv_status(200, T);
            self.note(
                &format!("{call} {method} 200 at caller"),
                back.as_ref(),
                &["From", "To"],
            );
        }
    }

    /// A request within the dialog from the callee (From/To as the callee
    /// saw them in the INVITE), as the caller gets it.
    fn callee_sends(&mut self, call: &str, inv: &Reply, method: &str) {
        let m = inv.msg.msg();
        let routes: String = m
            .headers_by_name("Record-Route")
            .map(|h| format!("Route: {}\r\n", h.value))
            .collect();
        let from = m
            .headers_by_name("From")
            .next()
            .map(|h| h.value)
            .unwrap_or("");
        let to = m
            .headers_by_name("To")
            .next()
            .map(|h| h.value)
            .unwrap_or("");
        let text = format!(
            "{method} sip:alice@{uac} SIP/2.0\r\nVia: SIP/2.0/UDP {uas};branch=z9hG4bK{call}{method}up\r\nMax-Forwards: 70\r\n{routes}From: {to};tag=bobtag\r\nTo: {from}\r\nCall-ID: {call}\r\nCSeq: 1 {method}\r\nContent-Length: 0\r\n\r\n",
            uas = self.uas.addr(),
            uac = self.uac.addr(),
        );
        self.uas.send(self.srv, &text);
        let got = self.uac.recv_method(method, T);
        self.note(
            &format!("{call} {method} at caller"),
            got.as_ref(),
            &["From", "To"],
        );
        if let Some(r) = got {
            self.uac.send(r.from, &answer(&r, 200, "OK", "x", &[]));
            let back = self.uas.recv_status(200, T);
            self.note(
                &format!("{call} {method} 200 at callee"),
                back.as_ref(),
                &["From", "To"],
            );
        }
    }

    fn options(&mut self, call: &str, extra: &str) -> Option<Reply> {
        let text = kamailio::options(call, extra).replace("__VIA__", &self.uac.addr().to_string());
        self.uac.send(self.srv, &text);
        self.uac
            .recv_matching(T, |r| r.msg.msg().call_id().ok() == Some(call))
    }
}

/// A call whose From/To the script replaces, followed through its dialog.
fn call(w: &mut World, call: &str, from: &str, x_fn: &str) {
    let Some(inv) = w.invite(call, from, &format!("X-Fn: {x_fn}\r\n")) else {
        return;
    };
    let Some(ok) = w.reply(call, &inv, 200, &[]) else {
        return;
    };
    w.caller_sends(call, &ok, "ACK", 7);
    w.caller_sends(call, &ok, "INFO", 8);
    w.callee_sends(call, &inv, "INFO");
    w.caller_sends(call, &ok, "BYE", 9);
}

/// A call challenged by the callee: `uac_auth` answers (or not).
fn challenged(w: &mut World, call: &str, code: u16, challenge: &str) {
    let Some(inv) = w.invite(call, "<sip:alice@a.example.com>", "") else {
        return;
    };
    let hdr = if code == 401 {
        "WWW-Authenticate"
    } else {
        "Proxy-Authenticate"
    };
    let ch = format!("{hdr}: {challenge}");
    w.uas
        .send(inv.from, &answer(&inv, code, "Auth", "chtag", &[&ch]));
    let again = recv_for(&w.uas, call, |r| is_method(r, "INVITE"));
    w.note(
        &format!("{call} INVITE again at callee"),
        again.as_ref(),
        &[
            "CSeq",
            "Authorization",
            "Proxy-Authorization",
            "X-Auth",
            "X-Du",
        ],
    );
    match again {
        Some(a) => {
            w.reply(call, &a, 486, &[]);
        }
        None => {
            let got = recv_for(&w.uac, call, |r| r.status() == Some(code));
            w.note(&format!("{call} {code} at caller"), got.as_ref(), &[]);
        }
    }
}

fn scenario(srv: SocketAddr) -> Vec<String> {
    let mut w = World {
        srv,
        uac: UdpPeer::new(),
        uas: UdpPeer::new(),
        out: Vec::new(),
    };
    kamailio::wait_until_up(&w.uac, srv, kamailio::PROBE, None);
    call(
        &mut w,
        "u1",
        "\"Alice A\" <sip:alice@a.example.com>",
        "from2",
    );
    call(&mut w, "u2", "<sip:alice@a.example.com>", "both");
    call(&mut w, "u3", "<sip:alice@a.example.com>", "empty");
    call(&mut w, "u4", "sip:alice@a.example.com", "dsp");
    call(&mut w, "u5", "Carol <sip:alice@a.example.com>", "from1");
    let _ = w.invite("u6", "<sip:alice@a.example.com>", "X-Fn: twice\r\n");
    challenged(
        &mut w,
        "a1",
        407,
        "Digest realm=\"realm.test\", nonce=\"abc123nonce\", qop=\"auth\", opaque=\"opq9\", algorithm=MD5",
    );
    challenged(
        &mut w,
        "a2",
        401,
        "Digest realm=\"other.test\", nonce=\"n0nce401\"",
    );
    challenged(
        &mut w,
        "a3",
        407,
        "Digest realm=\"nobody.test\", nonce=\"x\"",
    );
    challenged(
        &mut w,
        "a4",
        401,
        "Digest realm=\"realm.test\", nonce=\"y\", algorithm=SHA-256",
    );
    // A request from the script, challenged once.
    let ruri = format!("X-Send: sip:target@{}\r\n", w.uas.addr());
    let sent = w.options("send1", &ruri);
    w.note("send1 OPTIONS answer", sent.as_ref(), &["X-Sent"]);
    let first = w.uas.recv_method("MESSAGE", T);
    w.note(
        "send1 MESSAGE at peer",
        first.as_ref(),
        &[
            "To",
            "CSeq",
            "Max-Forwards",
            "X-Custom",
            "Content-Type",
            "Content-Length",
        ],
    );
    if let Some(r) = first {
        let names: Vec<&str> = r.msg.msg().headers().iter().map(|h| h.name_str).collect();
        let body = String::from_utf8_lossy(r.msg.msg().body()).into_owned();
        let from_uri = r
            .msg
            .msg()
            .from()
            .map(|f| f.uri_str.to_string())
            .unwrap_or_default();
        w.out.push(format!(
            "  headers={} body={body} from={from_uri}",
            names.join(",")
        ));
        let ch = "WWW-Authenticate: Digest realm=\"realm.test\", nonce=\"optnonce\"";
        w.uas
            .send(r.from, &answer(&r, 401, "Unauthorized", "t1", &[ch]));
        let second = w.uas.recv_method("MESSAGE", T);
        w.note(
            "send1 MESSAGE again at peer",
            second.as_ref(),
            &["CSeq", "Authorization"],
        );
        if let Some(r) = second {
            w.uas.send(r.from, &answer(&r, 200, "OK", "t2", &[]));
        }
    }
    std::thread::sleep(Duration::from_millis(300));
    let ev = w.options("probe1", "");
    w.note("events", ev.as_ref(), &["X-Ev"]);
    w.out
}

#[test]
fn uac_module_matches_kamailio() {
    if !kamailio::available(MODULES) {
        return;
    }
    let dir = kamailio::fresh_dir("uac");
    let cfg = kamailio::head(MODULES) + BODY;
    let (want, got) = kamailio::run_scenario(&dir, &cfg, siprouter::in_tree(), &|| {}, &scenario);
    assert!(want.len() > 40, "the scenario ran: {want:#?}");
    kamailio::conclude(&dir, &want, &got, "uac");
}
