//! Differential test against Kamailio itself, for the dialog module: one
//! configuration run by Kamailio 5.6 and by siprouter in turn, the same
//! calls through each (answered and hung up from either side, refused,
//! cancelled, timed out with a BYE to both sides), and compared: the
//! `did` each adds to its Record-Route, what `$dlg`, `$dlg_ctx`,
//! `$dlg_var`, the dialog flags and the profile functions say at each
//! request and reply, the profile sizes and the module's statistics after
//! each step (probed with OPTIONS), the event routes run, and the BYEs the
//! server sends on timeout, header by header.
//!
//! Without Kamailio and its dialog module installed the test prints a
//! notice and passes, unless `SR_KAMAILIO_REQUIRED=1` (`.ci/run` sets it).

use sr_testkit::kamailio;
use sr_testkit::{answer, Reply, UdpPeer};
use std::net::SocketAddr;
use std::time::Duration;

const T: Duration = Duration::from_secs(3);

const BODY: &str = r#"
modparam("dialog", "profiles_with_value", "caller")
modparam("dialog", "profiles_no_value", "total")
modparam("dialog", "h_id_start", 5)
modparam("dialog", "h_id_step", 3)
modparam("dialog", "dlg_flag", 4)
request_route {
    if (is_method("OPTIONS")) {
        if ($hdr(X-Who) == $null) { sl_send_reply("200", "up"); exit; }
        get_profile_size("total", "$var(t)");
        get_profile_size("caller", "$hdr(X-Who)", "$var(a)");
        append_to_reply("X-Sizes: $var(t) $var(a)\r\n");
        append_to_reply("X-Stats: $stat(active_dialogs) $stat(early_dialogs) $stat(processed_dialogs) $stat(failed_dialogs) $stat(expired_dialogs)\r\n");
        append_to_reply("X-Events: $shv(start) $shv(end) $shv(failed)\r\n");
        sl_send_reply("200", "OK");
        exit;
    }
    if (has_totag()) {
        $var(k) = "no";
        if (is_known_dlg()) { $var(k) = "yes"; }
        $var(set0) = $dlg_ctx(set);
        $var(lr) = loose_route();
        route(SHOW);
        $var(u) = unset_dlg_profile("total");
        $var(nv) = "no";
        if (is_in_profile("caller")) { $var(nv) = "yes"; }
        append_hf("X-In: lr=$var(lr) before=$var(k) set0=$var(set0) unset=$var(u) novalue=$var(nv) fcs=$dlg(from_cseq) tcs=$dlg(to_cseq) fct=$dlg(from_contact) tct=$dlg(to_contact) frs=$dlg(from_rs) trs=$dlg(to_rs)\r\n");
        t_relay();
        exit;
    }
    if (is_method("INVITE")) {
        if ($hdr(X-Bye-Early) != $null) { $dlg_ctx(timeout_bye) = 1; }
        if ($hdr(X-Flag) != $null) {
            setflag(4);
        } else {
            dlg_manage();
        }
        if ($hdr(X-Short) != $null) { dlg_set_timeout(2); }
        if ($hdr(X-Bye-Late) != $null) { $dlg_ctx(timeout_bye) = 1; }
        set_dlg_profile("total");
        set_dlg_profile("caller", "$fU");
        $dlg_var(x) = "v-$fU";
        dlg_setflag(3);
        route(SHOW);
    }
    record_route();
    t_relay();
}
route[SHOW] {
    $var(f) = "no";
    if (dlg_isflagset(3)) { $var(f) = "yes"; }
    $var(p) = "no";
    if (is_in_profile("caller", "$fU")) { $var(p) = "from"; }
    if (is_in_profile("caller", "$tU")) { $var(p) = "to"; }
    $var(t) = "no";
    if (is_in_profile("total")) { $var(t) = "yes"; }
    append_hf("X-Dlg: state=$dlg(state) he=$dlg(h_entry) hid=$dlg(h_id) ci=$dlg(callid) ft=$dlg(from_tag) tt=$dlg(to_tag) fu=$dlg(from_uri) tu=$dlg(to_uri) life=$dlg(lifetime) dir=$dlg_ctx(dir) set=$dlg_ctx(set) bye=$dlg_ctx(timeout_bye) var=$dlg_var(x) flag=$var(f) in=$var(p) total=$var(t)\r\n");
}
onreply_route {
    append_hf("X-R: state=$dlg(state) tt=$dlg(to_tag) set=$dlg_ctx(set) var=$dlg_var(x)\r\n");
}
event_route[dialog:start] { $shv(start) = $shv(start) + 1; }
event_route[dialog:end] { $shv(end) = $shv(end) + 1; }
event_route[dialog:failed] { $shv(failed) = $shv(failed) + 1; }
"#;

const MODULES: &[&str] = &["tm", "sl", "rr", "pv", "siputils", "textops", "dialog"];

/// The three user agents and what they saw, with their addresses written
/// as names so that both runs compare.
struct World {
    srv: SocketAddr,
    uac: UdpPeer,
    uas: UdpPeer,
    probe: UdpPeer,
    out: Vec<String>,
    n: u32,
}

/// A dialog as a user agent keeps it: the request and reply that made it.
struct Leg {
    call: String,
    inv: Option<Reply>,
    ok: Option<Reply>,
    cseq: u32,
}

impl World {
    /// The line with addresses as names, and `h_id`s as their class
    /// modulo `h_id_step` (their start is random in both servers).
    fn names(&self, s: &str) -> String {
        let s = s
            .replace(&self.uac.addr().to_string(), "UAC")
            .replace(&self.uas.addr().to_string(), "UAS")
            .replace(&self.srv.port().to_string(), "PORT");
        match s.split_once("hid=") {
            Some((a, b)) => {
                let digits: String = b.chars().take_while(char::is_ascii_digit).collect();
                match digits.parse::<u64>() {
                    Ok(n) => format!("{a}hid=%3:{}{}", n % 3, &b[digits.len()..]),
                    Err(_) => s,
                }
            }
            None => s,
        }
    }

    fn note(&mut self, what: &str, r: Option<&Reply>, hdrs: &[&str]) {
        let line = match r {
            None => format!("{what}: nothing"),
            Some(r) => {
                let m = r.msg.msg();
                let head = match m.status() {
                    Some(c) => c.to_string(),
                    None => m
                        .method()
                        .map(|x| x.as_str().to_string())
                        .unwrap_or_default(),
                };
                let vals: Vec<String> = hdrs
                    .iter()
                    .map(|h| format!("{h}=[{}]", r.header(h).unwrap_or_default()))
                    .collect();
                format!("{what}: {head} {}", vals.join(" "))
            }
        };
        let line = self.names(&line);
        self.out.push(line);
    }

    fn probe(&mut self, who: &str) {
        self.probe_of(who, &["X-Sizes", "X-Stats", "X-Events"]);
    }

    fn probe_of(&mut self, who: &str, hdrs: &[&str]) {
        self.n += 1;
        let call = format!("probe{}", self.n);
        let text = kamailio::options(&call, &format!("X-Who: {who}\r\n"))
            .replace("__VIA__", &self.probe.addr().to_string());
        self.probe.send(self.srv, &text);
        let r = self
            .probe
            .recv_matching(T, |r| r.msg.msg().call_id().ok() == Some(call.as_str()));
        self.note("  probe", r.as_ref(), hdrs);
    }

    fn invite(&mut self, call: &str, user: &str, extra: &str) -> Leg {
        let text = format!(
            "INVITE sip:bob@{uas} SIP/2.0\r\nVia: SIP/2.0/UDP {uac};branch=z9hG4bK{call}i\r\nMax-Forwards: 70\r\nFrom: <sip:{user}@example.com>;tag={call}-ft\r\nTo: <sip:bob@example.com>\r\nCall-ID: {call}\r\nCSeq: 10 INVITE\r\nContact: <sip:{user}@{uac}>\r\n{extra}Content-Length: 0\r\n\r\n",
            uas = self.uas.addr(),
            uac = self.uac.addr(),
        );
        self.uac.send(self.srv, &text);
        let inv = self.uas.recv_method("INVITE", T);
        let did = inv
            .as_ref()
            .and_then(|r| r.header("Record-Route"))
            .and_then(|rr| {
                let v = rr.split([';', '>']).find_map(|p| p.strip_prefix("did="))?;
                let (e, i) = v.split_once('.')?;
                let rev =
                    |x: &str| u64::from_str_radix(&x.chars().rev().collect::<String>(), 16).ok();
                Some(format!("did={}.%3:{}", rev(e)?, rev(i)? % 3))
            })
            .unwrap_or_default();
        self.note(
            &format!("{call} INVITE at callee ({did})"),
            inv.as_ref(),
            &["X-Dlg"],
        );
        Leg {
            call: call.to_string(),
            inv,
            ok: None,
            cseq: 10,
        }
    }

    /// The callee answers `code`; the caller's view of it.
    fn reply(&mut self, leg: &mut Leg, code: u16) {
        let Some(inv) = leg.inv.as_ref() else {
            self.out.push(format!("{} {code}: no INVITE", leg.call));
            return;
        };
        let contact = format!("Contact: <sip:bob@{}>", self.uas.addr());
        self.uas.send(
            inv.from,
            &answer(inv, code, "Answer", "bobtag", &[&contact]),
        );
        let got = self.uac.recv_status(code, T);
        self.note(
            &format!("{} {code} at caller", leg.call),
            got.as_ref(),
            &["X-R"],
        );
        if (200..300).contains(&code) {
            leg.ok = got;
        }
    }

    /// A request within the dialog from the caller, as the callee gets it.
    fn caller_sends(&mut self, leg: &mut Leg, method: &str) -> Option<Reply> {
        let ok = leg.ok.as_ref()?;
        let m = ok.msg.msg();
        let routes: String = m
            .headers_by_name("Record-Route")
            .map(|h| format!("Route: {}\r\n", h.value))
            .collect();
        let to = m.headers_by_name("To").next()?.value.to_string();
        let from = m.headers_by_name("From").next()?.value.to_string();
        if method != "ACK" {
            leg.cseq += 1;
        }
        let text = format!(
            "{method} sip:bob@{uas} SIP/2.0\r\nVia: SIP/2.0/UDP {uac};branch=z9hG4bK{call}{method}{cseq}\r\nMax-Forwards: 70\r\n{routes}From: {from}\r\nTo: {to}\r\nCall-ID: {call}\r\nCSeq: {cseq} {method}\r\nContent-Length: 0\r\n\r\n",
            uas = self.uas.addr(),
            uac = self.uac.addr(),
            call = leg.call,
            cseq = leg.cseq,
        );
        self.uac.send(self.srv, &text);
        let got = self.uas.recv_method(method, T);
        self.note(
            &format!("{} {method} at callee", leg.call),
            got.as_ref(),
            &["X-Dlg", "X-In"],
        );
        got
    }

    /// A request within the dialog from the callee, as the caller gets it.
    fn callee_sends(&mut self, leg: &Leg, method: &str) -> Option<Reply> {
        let inv = leg.inv.as_ref()?;
        let m = inv.msg.msg();
        let routes: String = m
            .headers_by_name("Record-Route")
            .map(|h| format!("Route: {}\r\n", h.value))
            .collect();
        let from = m.headers_by_name("From").next()?.value.to_string();
        let to = m.headers_by_name("To").next()?.value.to_string();
        let text = format!(
            "{method} sip:alice@{uac} SIP/2.0\r\nVia: SIP/2.0/UDP {uas};branch=z9hG4bK{call}{method}b\r\nMax-Forwards: 70\r\n{routes}From: {to};tag=bobtag\r\nTo: {from}\r\nCall-ID: {call}\r\nCSeq: 1 {method}\r\nContent-Length: 0\r\n\r\n",
            uas = self.uas.addr(),
            uac = self.uac.addr(),
            call = leg.call,
        );
        self.uas.send(self.srv, &text);
        let got = self.uac.recv_method(method, T);
        self.note(
            &format!("{} {method} at caller", leg.call),
            got.as_ref(),
            &["X-Dlg", "X-In"],
        );
        got
    }

    /// `peer` answers a request it got with 200.
    fn ok_to(peer: &UdpPeer, r: &Reply) {
        peer.send(r.from, &answer(r, 200, "OK", "x", &[]));
    }

    /// The caller cancels; the callee answers the CANCEL and the INVITE.
    fn cancel(&mut self, leg: &Leg) {
        let text = format!(
            "CANCEL sip:bob@{uas} SIP/2.0\r\nVia: SIP/2.0/UDP {uac};branch=z9hG4bK{call}i\r\nMax-Forwards: 70\r\nFrom: <sip:alice@example.com>;tag={call}-ft\r\nTo: <sip:bob@example.com>\r\nCall-ID: {call}\r\nCSeq: 10 CANCEL\r\nContent-Length: 0\r\n\r\n",
            uas = self.uas.addr(),
            uac = self.uac.addr(),
            call = leg.call,
        );
        self.uac.send(self.srv, &text);
        let c = self.uas.recv_method("CANCEL", T);
        self.note(&format!("{} CANCEL at callee", leg.call), c.as_ref(), &[]);
        if let (Some(c), Some(inv)) = (c, leg.inv.as_ref()) {
            Self::ok_to(&self.uas, &c);
            self.uas
                .send(inv.from, &answer(inv, 487, "Terminated", "bobtag", &[]));
        }
        let got = self.uac.recv_status(487, T);
        self.note(&format!("{} 487 at caller", leg.call), got.as_ref(), &[]);
    }

    /// A BYE the server sent on its own, its head as the peer sees it.
    fn server_bye(&mut self, who: &str, to_uas: bool) {
        let peer = if to_uas { &self.uas } else { &self.uac };
        let got = peer.recv_method("BYE", Duration::from_secs(6));
        if let Some(b) = got.as_ref() {
            Self::ok_to(peer, b);
            let m = b.msg.msg();
            let names: Vec<String> = m.headers().iter().map(|h| h.name_str.to_string()).collect();
            let line = format!(
                "  BYE to {who}: {} {} from-tag={:?} to-tag={:?} cseq={:?} route={:?} maxfwd={:?} headers={}",
                m.call_id().unwrap_or_default(),
                m.request_uri().map(|u| u.raw).unwrap_or_default(),
                m.from_tag().ok().flatten(),
                m.to_tag().ok().flatten(),
                m.cseq().ok().map(|c| c.seq),
                b.header("Route"),
                b.header("Max-Forwards"),
                names.join(",")
            );
            let line = self.names(&line);
            self.out.push(line);
        } else {
            self.out.push(format!("  BYE to {who}: nothing"));
        }
    }
}

fn scenario(srv: SocketAddr) -> Vec<String> {
    let mut w = World {
        srv,
        uac: UdpPeer::new(),
        uas: UdpPeer::new(),
        probe: UdpPeer::new(),
        out: Vec::new(),
        n: 0,
    };
    kamailio::wait_until_up(&w.probe, srv, kamailio::PROBE, None);
    // Answered, hung up by the caller.
    let mut a = w.invite("call-a", "alice", "");
    w.probe("alice");
    w.reply(&mut a, 180);
    w.probe("alice");
    w.reply(&mut a, 200);
    w.probe("alice");
    w.caller_sends(&mut a, "ACK");
    w.probe("alice");
    if let Some(r) = w.caller_sends(&mut a, "INFO") {
        World::ok_to(&w.uas, &r);
        let got = w.uac.recv_status(200, T);
        w.note("call-a INFO 200 at caller", got.as_ref(), &[]);
    }
    if let Some(r) = w.caller_sends(&mut a, "BYE") {
        World::ok_to(&w.uas, &r);
        let got = w.uac.recv_status(200, T);
        w.note("call-a BYE 200 at caller", got.as_ref(), &[]);
    }
    w.probe("alice");
    // Answered, hung up by the callee; made by the dlg_flag.
    let mut b = w.invite("call-b", "carol", "X-Flag: 1\r\n");
    w.reply(&mut b, 200);
    w.caller_sends(&mut b, "ACK");
    w.probe("carol");
    if let Some(r) = w.callee_sends(&b, "BYE") {
        World::ok_to(&w.uac, &r);
        let got = w.uas.recv_status(200, T);
        w.note("call-b BYE 200 at callee", got.as_ref(), &[]);
    }
    w.probe("carol");
    // Refused.
    let mut c = w.invite("call-c", "dave", "");
    w.reply(&mut c, 486);
    w.probe("dave");
    // Cancelled while ringing.
    let mut d = w.invite("call-d", "alice", "");
    w.reply(&mut d, 180);
    w.cancel(&d);
    w.probe("alice");
    // Timed out, BYE asked for after dlg_manage: too late, no BYE.
    let mut f = w.invite("call-f", "erin", "X-Short: 1\r\nX-Bye-Late: 1\r\n");
    w.reply(&mut f, 200);
    w.caller_sends(&mut f, "ACK");
    std::thread::sleep(Duration::from_millis(3500));
    w.probe("erin");
    // Timed out, BYE asked for before: a BYE to each side.
    let mut e = w.invite("call-e", "erin", "X-Short: 1\r\nX-Bye-Early: 1\r\n");
    w.reply(&mut e, 200);
    w.caller_sends(&mut e, "ACK");
    w.probe("erin");
    w.server_bye("callee", true);
    w.server_bye("caller", false);
    // Whether Kamailio runs dialog:end for a dialog it ends with BYEs
    // depends on which of its processes gets there first: not compared.
    std::thread::sleep(Duration::from_millis(300));
    w.probe_of("erin", &["X-Sizes", "X-Stats"]);
    let more = w.uas.recv_method("BYE", Duration::from_millis(500));
    w.note("more BYEs", more.as_ref(), &[]);
    w.out
}

#[test]
fn dialog_module_matches_kamailio() {
    if !kamailio::available(MODULES) {
        return;
    }
    let dir = kamailio::fresh_dir("dialog");
    let cfg = kamailio::head(MODULES) + BODY;
    let (want, got) = kamailio::run_scenario(&dir, &cfg, siprouter::in_tree(), &|| {}, &scenario);
    assert!(want.len() > 30, "the scenario ran: {want:#?}");
    kamailio::conclude(&dir, &want, &got, "dialog");
}
