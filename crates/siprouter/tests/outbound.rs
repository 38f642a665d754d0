//! The outbound module (RFC 5626) on an edge proxy, over real UDP and TCP
//! sockets: `add_path()` puts a flow token and `;ob` in the Path of a
//! REGISTER that asks for outbound, `record_route()` puts the token in
//! the Record-Route, and `loose_route()` sends a request that comes back
//! through our Path entry down the flow it names (over the client's own
//! TCP connection, from the socket the flow came in on), returning 2, or
//! returns -2 for a tampered token. The same scenario runs against
//! Kamailio 5.6 with the same `flow_token_secret`, and every token either
//! server wrote is checked with siprouter's decoder, so the token format
//! is Kamailio's too.
//!
//! Without Kamailio installed the comparison prints a notice and passes,
//! unless `SR_KAMAILIO_REQUIRED=1` (`.ci/run` sets it); the siprouter
//! checks run regardless.

use sr_mod_outbound::token::{decode, key_from_secret};
use sr_testkit::kamailio::{self, MPATH};
use sr_testkit::{TcpPeer, UdpPeer};
use std::net::SocketAddr;
use std::time::Duration;

const SECRET: &str = "edge-secret";
const MODULES: &[&str] = &["sl", "pv", "textops", "outbound", "rr", "path"];

const BODY: &str = r#"modparam("outbound", "flow_token_secret", "edge-secret")
modparam("rr", "append_fromtag", 0)
request_route {
    if ($hdr(X-T) == $null) { sl_send_reply("200", "up"); exit; }
    if (is_method("REGISTER")) {
        $var(r) = add_path();
        append_hf("X-R: $var(r)\r\n");
        $du = "__REG__";
        forward();
        exit;
    }
    if (is_method("INVITE")) { record_route(); }
    $var(r) = loose_route();
    if ($var(r) == -2) { sl_send_reply("403", "Forbidden"); exit; }
    append_hf("X-R: $var(r) du=$du\r\n");
    if ($var(r) < 0) { $du = "__REG__"; }
    if (!forward()) { sl_reply_error(); }
}
"#;

fn config(reg: SocketAddr) -> String {
    with_tcp(kamailio::head(MODULES)) + &BODY.replace("__REG__", &format!("sip:{reg}"))
}

/// A parity head with a TCP socket beside the UDP one (same port).
fn with_tcp(head: String) -> String {
    head.replace(
        "listen=udp:127.0.0.1:__PORT__\n",
        "listen=udp:127.0.0.1:__PORT__\nlisten=tcp:127.0.0.1:__PORT__\n",
    )
}

/// The peers: a registrar behind the edge, and a user agent with a UDP
/// socket and a TCP connection to the edge.
struct Peers {
    reg: UdpPeer,
    udp: UdpPeer,
    srv: SocketAddr,
    key: [u8; 20],
}

impl Peers {
    /// `text` with the ports and tokens replaced by names; each token is
    /// decoded with the shared secret and described after it.
    fn names(&self, text: &str, tcp: SocketAddr) -> String {
        let key = self.key;
        let mut out = String::new();
        let mut rest = text;
        // A token is the user part of a sip: URI of ours: what lies
        // between "sip:" and "@127.0.0.1".
        while let Some(i) = rest.find("sip:") {
            out.push_str(&rest[..i + 4]);
            rest = &rest[i + 4..];
            if let Some(at) = rest.find('@') {
                let user = &rest[..at];
                if user.len() >= 32 && !user.contains([':', ';', '>', ' ']) {
                    let desc = match decode(&key, user) {
                        Ok(f) => format!("<token {} {} <- {}>", f.proto.as_str(), f.dst, f.src),
                        Err(e) => format!("<token {e:?}>"),
                    };
                    out.push_str(&desc);
                    rest = &rest[at..];
                }
            }
        }
        out.push_str(rest);
        out.replace(&self.srv.port().to_string(), "<srv>")
            .replace(&self.reg.addr().port().to_string(), "<reg>")
            .replace(&self.udp.addr().port().to_string(), "<udp>")
            .replace(&tcp.port().to_string(), "<tcp>")
    }
}

/// A REGISTER for `user` through `via` (its branch made of `tag`, also the
/// From tag), with this Call-ID and CSeq number and the header lines
/// `extra` (Contact, Expires, Supported, ...).
fn reg_text(user: &str, via: &str, tag: &str, call_id: &str, cseq: u32, extra: &str) -> String {
    format!(
        "REGISTER sip:example.com SIP/2.0\r\nVia: {via};branch=z9hG4bK{tag}\r\nMax-Forwards: 70\r\nFrom: <sip:{user}@example.com>;tag={tag}\r\nTo: <sip:{user}@example.com>\r\nCall-ID: {call_id}\r\nCSeq: {cseq} REGISTER\r\n{extra}X-T: reg\r\nContent-Length: 0\r\n\r\n"
    )
}

fn register(via: &str, call: &str, contact: &str, extra: &str) -> String {
    reg_text(
        "alice",
        via,
        call,
        call,
        1,
        &format!("Contact: {contact}\r\n{extra}"),
    )
}

fn invite(reg: &UdpPeer, call: &str, ruri: &str, route: &str) -> String {
    format!(
        "INVITE {ruri} SIP/2.0\r\nVia: SIP/2.0/UDP {a};branch=z9hG4bK{call}\r\nMax-Forwards: 70\r\nFrom: <sip:bob@example.com>;tag=f{call}\r\nTo: <sip:alice@example.com>\r\nCall-ID: {call}\r\nCSeq: 1 INVITE\r\nContact: <sip:bob@{a}>\r\nRoute: {route}\r\nX-T: inv\r\nContent-Length: 0\r\n\r\n",
        a = reg.addr()
    )
}

fn path_of(r: &sr_testkit::Reply) -> String {
    r.header("Path").unwrap_or_default()
}

/// The scenario against the edge at `srv`; tokens are checked with `key`.
fn scenario(srv: SocketAddr, reg: UdpPeer, key: [u8; 20]) -> Vec<String> {
    let udp = UdpPeer::new();
    kamailio::wait_until_up(&udp, srv, kamailio::PROBE, None);
    let mut tcp = TcpPeer::connect(srv);
    let t_addr = tcp.addr();
    let p = Peers { reg, udp, srv, key };
    let mut out = Vec::new();
    let inst = ";+sip.instance=\"<urn:uuid:00000000-0000-1000-8000-000A95A0E128>\"";
    let wait = Duration::from_secs(3);

    // REGISTERs asking for outbound, over TCP and UDP: the registrar gets
    // a Path with the flow's token; the 200 goes back down the flow.
    tcp.send(&register(
        &format!("SIP/2.0/TCP {t_addr}"),
        "ob-tcp",
        &format!("<sip:alice@{t_addr};transport=tcp;ob>;reg-id=1{inst}"),
        "Supported: path, outbound\r\n",
    ));
    let mut paths = Vec::new();
    match p.reg.recv_method("REGISTER", wait) {
        Some(r) => {
            paths.push(path_of(&r));
            out.push(p.names(
                &format!(
                    "tcp register: Path={} X-R={}",
                    path_of(&r),
                    r.header("X-R").unwrap_or_default()
                ),
                t_addr,
            ));
            p.reg
                .send(r.from, &sr_testkit::answer(&r, 200, "OK", "rt", &[]));
            out.push(match tcp.recv(wait) {
                Some(a) => format!("tcp register answered {:?}", a.status()),
                None => "tcp register: no answer".into(),
            });
        }
        None => out.push("tcp register: nothing at the registrar".into()),
    }
    p.udp.send(
        srv,
        &register(
            &format!("SIP/2.0/UDP {}", p.udp.addr()),
            "ob-udp",
            &format!("<sip:alice@{};ob>;reg-id=2{inst}", p.udp.addr()),
            "",
        ),
    );
    match p.reg.recv_method("REGISTER", wait) {
        Some(r) => {
            paths.push(path_of(&r));
            out.push(p.names(&format!("udp register: Path={}", path_of(&r)), t_addr));
        }
        None => out.push("udp register: nothing at the registrar".into()),
    }
    // Not outbound: no reg-id; and a REGISTER that already went through
    // another proxy (two Vias).
    for (call, via, contact) in [
        (
            "plain",
            format!("SIP/2.0/UDP {}", p.udp.addr()),
            format!("<sip:alice@{};ob>{inst}", p.udp.addr()),
        ),
        (
            "2via",
            format!(
                "SIP/2.0/UDP 192.0.2.9:5060;branch=z9hG4bKx\r\nVia: SIP/2.0/UDP {}",
                p.udp.addr()
            ),
            format!("<sip:alice@{};ob>;reg-id=1{inst}", p.udp.addr()),
        ),
    ] {
        p.udp.send(srv, &register(&via, call, &contact, ""));
        match p.reg.recv_method("REGISTER", wait) {
            Some(r) => out.push(p.names(&format!("{call} register: Path={}", path_of(&r)), t_addr)),
            None => out.push(format!("{call} register: nothing at the registrar")),
        }
    }

    // Requests from the registrar side back through each Path entry: down
    // the TCP connection, and to the UDP flow from the edge's socket.
    if let [tcp_path, udp_path] = &paths[..] {
        p.reg.send(
            srv,
            &invite(
                &p.reg,
                "in-tcp",
                &format!("sip:alice@{t_addr};transport=tcp"),
                tcp_path,
            ),
        );
        match tcp.recv(wait) {
            Some(r) => out.push(p.names(
                &format!(
                    "tcp invite on the connection: X-R={} RR={} Route={:?}",
                    r.header("X-R").unwrap_or_default(),
                    r.all("Record-Route"),
                    r.header("Route")
                ),
                t_addr,
            )),
            None => out.push("tcp invite: nothing on the connection".into()),
        }
        p.reg.send(
            srv,
            &invite(
                &p.reg,
                "in-udp",
                &format!("sip:alice@{}", p.udp.addr()),
                udp_path,
            ),
        );
        match p.udp.recv_method("INVITE", wait) {
            Some(r) => out.push(p.names(
                &format!(
                    "udp invite from {}: X-R={} RR={}",
                    r.from,
                    r.header("X-R").unwrap_or_default(),
                    r.all("Record-Route")
                ),
                t_addr,
            )),
            None => out.push("udp invite: nothing".into()),
        }
        // The same token with its first character changed: refused.
        let tampered = match udp_path.find("sip:") {
            Some(i) => {
                let c = if udp_path[i + 4..].starts_with('A') {
                    "B"
                } else {
                    "A"
                };
                format!("{}{c}{}", &udp_path[..i + 4], &udp_path[i + 5..])
            }
            None => udp_path.clone(),
        };
        p.reg.send(
            srv,
            &invite(
                &p.reg,
                "in-bad",
                &format!("sip:alice@{}", p.udp.addr()),
                &tampered,
            ),
        );
        out.push(match p.reg.recv_final(wait) {
            Some(r) => format!("tampered token: {:?}", r.status()),
            None => "tampered token: no answer".into(),
        });
        // The user agent itself sending through its own Path entry: the
        // token names the flow it came on, so routing goes on as usual.
        p.udp.send(
            srv,
            &invite(
                &p.udp,
                "own-flow",
                "sip:bob@example.com",
                &format!("{udp_path}, <sip:{};lr>", p.reg.addr()),
            ),
        );
        match p.reg.recv_method("INVITE", wait) {
            Some(r) => out.push(p.names(
                &format!(
                    "own flow: X-R={} RR={}",
                    r.header("X-R").unwrap_or_default(),
                    r.all("Record-Route")
                ),
                t_addr,
            )),
            None => out.push("own flow: nothing at the registrar".into()),
        }
        // The user agent's TCP connection goes away: a request for that
        // flow fails (RFC 5626 §5.3 asks for 430 Flow Failed), and no
        // connection is opened to the agent's old port.
        drop(tcp);
        std::thread::sleep(Duration::from_millis(300));
        p.reg.send(
            srv,
            &invite(
                &p.reg,
                "in-dead",
                &format!("sip:alice@{t_addr};transport=tcp"),
                tcp_path,
            ),
        );
        out.push(match p.reg.recv_final(wait) {
            Some(r) => format!(
                "dead tcp flow: {:?} {}",
                r.status(),
                r.msg.msg().reason().unwrap_or("")
            ),
            None => "dead tcp flow: no answer".into(),
        });
    }
    out
}

fn run_siprouter(cfg: &str) -> Vec<String> {
    let reg = UdpPeer::on(&cfg_reg(cfg));
    let srv =
        sr_testkit::TestServer::start(&cfg.replace("__PORT__", "{PORT}"), siprouter::in_tree());
    scenario(srv.addr(), reg, key_from_secret(SECRET))
}

/// The registrar's address written in the configuration.
fn cfg_reg(cfg: &str) -> String {
    let i = cfg.find("$du = \"sip:").expect("a registrar address") + "$du = \"sip:".len();
    cfg[i..].split('"').next().unwrap_or_default().to_string()
}

fn fresh_config() -> String {
    let reg: SocketAddr = format!("127.0.0.1:{}", sr_testkit::free_port())
        .parse()
        .unwrap();
    config(reg)
}

#[test]
fn an_edge_proxy_routes_down_the_registered_flow() {
    let got = run_siprouter(&fresh_config());
    let has = |prefix: &str, part: &str| {
        assert!(
            got.iter()
                .any(|l| l.starts_with(prefix) && l.contains(part)),
            "no {prefix:?} line with {part:?}:\n{}",
            got.join("\n")
        )
    };
    has(
        "tcp register:",
        "Path=<sip:<token tcp 127.0.0.1:<srv> <- 127.0.0.1:<tcp>>@127.0.0.1:<srv>;lr;ob> X-R=1",
    );
    has("tcp register answered", "Some(200)");
    has(
        "udp register:",
        "Path=<sip:<token udp 127.0.0.1:<srv> <- 127.0.0.1:<udp>>@127.0.0.1:<srv>;lr;ob>",
    );
    has("plain register:", "Path=<sip:127.0.0.1:<srv>;lr>");
    has("2via register:", "Path=<sip:127.0.0.1:<srv>;lr>");
    has(
        "tcp invite on the connection:",
        "X-R=2 du=sip:127.0.0.1:<tcp>;transport=tcp",
    );
    // In on UDP, out on TCP: two Record-Routes, the token in both.
    has(
        "tcp invite on the connection:",
        "RR=<sip:<token tcp 127.0.0.1:<srv> <- 127.0.0.1:<tcp>>@127.0.0.1:<srv>;transport=tcp;r2=on;lr>, \
         <sip:<token tcp 127.0.0.1:<srv> <- 127.0.0.1:<tcp>>@127.0.0.1:<srv>;r2=on;lr>",
    );
    has(
        "udp invite from 127.0.0.1:<srv>:",
        "RR=<sip:<token udp 127.0.0.1:<srv> <- 127.0.0.1:<udp>>@127.0.0.1:<srv>;lr>",
    );
    has(
        "udp invite from 127.0.0.1:<srv>:",
        "X-R=2 du=sip:127.0.0.1:<udp>;transport=udp",
    );
    has("tampered token:", "Some(403)");
    has("own flow:", "X-R=1 du=sip:127.0.0.1:<reg>");
    has("dead tcp flow:", "Some(430) Flow Failed");
}

#[test]
fn outbound_matches_kamailio() {
    if !kamailio::available(MODULES) {
        return;
    }
    let dir = kamailio::fresh_dir("outbound");
    let cfg = fresh_config();
    let kam = kamailio::Kamailio::start(&dir, &cfg);
    // Kamailio 5.6.3 ignores the value of flow_token_secret: its key is
    // the SHA-1 of nothing, whatever the secret (found with this test; see
    // docs/modules/outbound.md). Its tokens are checked with that key,
    // which shows the rest of the format is the same.
    let want = scenario(kam.addr, UdpPeer::on(&cfg_reg(&cfg)), key_from_secret(""));
    drop(kam);
    let _ = std::fs::write(dir.join("kamailio.txt"), want.join("\n"));
    let got = run_siprouter(&cfg);
    // A flow whose TCP connection is gone: Kamailio 5.6.3 tries a new
    // connection to the agent's old port, fails, and sl_reply_error()
    // answers its send error; siprouter opens none and answers 430 Flow
    // Failed (RFC 5626 §5.3), which a registrar's failover acts on.
    let dead = |l: &String| l.starts_with("dead tcp flow:");
    let (kd, want): (Vec<String>, Vec<String>) = want.into_iter().partition(dead);
    let (sd, got): (Vec<String>, Vec<String>) = got.into_iter().partition(dead);
    assert!(kd.len() == 1 && !kd[0].contains("430"), "{kd:?}");
    assert_eq!(sd, ["dead tcp flow: Some(430) Flow Failed"]);
    kamailio::conclude(&dir, &want, &got, "outbound");
}

/// The registrar's side (`outbound_mode`, `regid_mode`, `flow_timer`):
/// the configuration for `mode`.
fn registrar_config(mode: u8) -> String {
    let s = kamailio::head(&["sl", "pv", "usrloc", "registrar"]);
    let ft = if mode == 0 { 0 } else { 30 };
    s + &format!(
        r#"modparam("registrar", "outbound_mode", {mode})
modparam("registrar", "flow_timer", {ft})
modparam("registrar", "use_path", 1)
modparam("registrar", "path_mode", 0)
modparam("registrar", "gruu_enabled", 0)
request_route {{
    if ($hdr(X-T) == $null) {{ sl_send_reply("200", "up"); exit; }}
    save("location");
}}
"#
    )
}

/// REGISTERs of one user agent (its flows, several instances and
/// reg-ids), what the registrar answers to each.
fn registrar_scenario(srv: SocketAddr) -> Vec<String> {
    let ua = UdpPeer::new();
    kamailio::wait_until_up(&ua, srv, kamailio::PROBE, None);
    let me = ua.addr();
    let inst =
        |n: u8| format!(";+sip.instance=\"<urn:uuid:00000000-0000-1000-8000-00000000000{n}>\"");
    let cases: Vec<(&str, String, String, String)> = vec![
        // (call, Via lines, Contact, more headers)
        (
            "flow1",
            format!("SIP/2.0/UDP {me}"),
            format!("<sip:alice@{me};ob>;reg-id=1{}", inst(1)),
            "Supported: outbound, path\r\n".into(),
        ),
        // The same instance and reg-id from another address: replaces it.
        (
            "flow1b",
            format!("SIP/2.0/UDP {me}"),
            format!("<sip:alice@127.0.0.1:9;ob>;reg-id=1{}", inst(1)),
            "Supported: outbound\r\n".into(),
        ),
        // Another reg-id of the instance: a second flow.
        (
            "flow2",
            format!("SIP/2.0/UDP {me}"),
            format!("<sip:alice@127.0.0.1:10;ob>;reg-id=2{}", inst(1)),
            "Supported: outbound\r\n".into(),
        ),
        // No Supported: outbound.
        (
            "plain",
            format!("SIP/2.0/UDP {me}"),
            format!("<sip:alice@127.0.0.1:11>;reg-id=1{}", inst(2)),
            String::new(),
        ),
        (
            "nosup",
            format!("SIP/2.0/UDP {me}"),
            format!("<sip:alice@127.0.0.1:12>{}", inst(3)),
            "Supported: path\r\n".into(),
        ),
        (
            "require",
            format!("SIP/2.0/UDP {me}"),
            format!("<sip:alice@127.0.0.1:13>;reg-id=1{}", inst(4)),
            "Require: outbound\r\n".into(),
        ),
        // Through an edge proxy that did not say it does outbound, and
        // through one that did.
        (
            "edge-no-ob",
            format!("SIP/2.0/UDP {me};branch=z9hG4bKe1\r\nVia: SIP/2.0/UDP 192.0.2.99:5060"),
            format!("<sip:alice@127.0.0.1:14;ob>;reg-id=1{}", inst(5)),
            "Supported: outbound\r\nPath: <sip:192.0.2.1;lr>\r\n".into(),
        ),
        (
            "edge-no-sup",
            format!("SIP/2.0/UDP {me};branch=z9hG4bKe2\r\nVia: SIP/2.0/UDP 192.0.2.99:5060"),
            format!("<sip:alice@127.0.0.1:15;ob>;reg-id=1{}", inst(6)),
            "Path: <sip:192.0.2.1;lr>\r\n".into(),
        ),
        (
            "edge-ob",
            format!("SIP/2.0/UDP {me};branch=z9hG4bKe3\r\nVia: SIP/2.0/UDP 192.0.2.99:5060"),
            format!("<sip:alice@127.0.0.1:16;ob>;reg-id=3{}", inst(7)),
            "Supported: outbound\r\nPath: <sip:tok@192.0.2.1;lr;ob>\r\n".into(),
        ),
        // A reg-id without a value: ignored (stored without one).
        (
            "empty-regid",
            format!("SIP/2.0/UDP {me}"),
            format!("<sip:alice@127.0.0.1:18>;reg-id{}", inst(9)),
            "Supported: outbound\r\n".into(),
        ),
        (
            "bad-regid",
            format!("SIP/2.0/UDP {me}"),
            format!("<sip:alice@127.0.0.1:17>;reg-id=x{}", inst(8)),
            "Supported: outbound\r\n".into(),
        ),
    ];
    let mut out = Vec::new();
    for (n, (call, via, contact, extra)) in cases.iter().enumerate() {
        let text = reg_text(
            "alice",
            via,
            call,
            "same-call",
            n as u32 + 1,
            &format!("Contact: {contact}\r\nExpires: 600\r\n{extra}"),
        );
        ua.send(srv, &text);
        let line = match ua.recv_final(Duration::from_secs(3)) {
            Some(r) => {
                let mut l = format!("{call}: {}", r.status().unwrap_or(0));
                for h in [
                    "Require",
                    "Supported",
                    "Unsupported",
                    "Flow-Timer",
                    "P-Registrar-Error",
                    "Contact",
                ] {
                    let v = r.all(h);
                    if !v.is_empty() {
                        l.push_str(&format!(" | {h}: {v}"));
                    }
                }
                l
            }
            None => format!("{call}: no answer"),
        };
        // Expiry counts down: one second either way is the same answer.
        let mut norm = String::new();
        let mut rest = line.as_str();
        while let Some(i) = rest.find("expires=") {
            norm.push_str(&rest[..i + 8]);
            rest = rest[i + 8..].trim_start_matches(|c: char| c.is_ascii_digit());
            norm.push('N');
        }
        norm.push_str(rest);
        out.push(norm.replace(&me.port().to_string(), "<ua>"));
    }
    out
}

#[test]
fn the_registrar_keeps_one_binding_per_flow() {
    let srv = sr_testkit::TestServer::start(
        &registrar_config(1).replace("__PORT__", "{PORT}"),
        siprouter::in_tree(),
    );
    let got = registrar_scenario(srv.addr());
    let line = |call: &str| {
        got.iter()
            .find(|l| l.starts_with(&format!("{call}:")))
            .cloned()
            .unwrap_or_default()
    };
    let f1 = line("flow1");
    assert!(
        f1.starts_with("flow1: 200 | Require: outbound | Supported: outbound | Flow-Timer: 30 | Contact: <sip:alice@127.0.0.1:<ua>;ob>;expires=N;+sip.instance=\"<urn:uuid:00000000-0000-1000-8000-000000000001>\";reg-id=1"),
        "{got:#?}"
    );
    // Replaced: still one binding, at the new address.
    let f1b = line("flow1b");
    assert!(
        f1b.contains("Contact: <sip:alice@127.0.0.1:9;ob>;expires=N;+sip.instance")
            && !f1b.contains("<ua>"),
        "{f1b}"
    );
    assert_eq!(line("flow2").matches(";reg-id=").count(), 2, "{got:#?}");
    assert!(
        line("plain").starts_with("plain: 200 | Supported: outbound | Contact:"),
        "{got:#?}"
    );
    assert!(
        line("edge-no-ob").starts_with(
            "edge-no-ob: 439 | P-Registrar-Error: No support for Outbound on edge proxy"
        ),
        "{got:#?}"
    );
    // Without Supported: outbound the reg-id is dropped, not refused.
    let ens = line("edge-no-sup");
    assert!(ens.starts_with("edge-no-sup: 200") && ens.contains("127.0.0.1:15;ob>;expires=N;+sip.instance=\"<urn:uuid:00000000-0000-1000-8000-000000000006>\"")
            && !ens.contains("000000000006>\";reg-id"), "{ens}");
    assert!(line("edge-ob").contains("127.0.0.1:16;ob>;expires=N;+sip.instance=\"<urn:uuid:00000000-0000-1000-8000-000000000007>\";reg-id=3"), "{got:#?}");
    let er = line("empty-regid");
    assert!(
        er.starts_with("empty-regid: 200")
            && er.contains("127.0.0.1:18>;expires=N;+sip.instance=\"<urn:uuid:00000000-0000-1000-8000-000000000009>\"")
            && !er.contains("000000000009>\";reg-id"),
        "{er}"
    );
    assert!(
        line("bad-regid").starts_with("bad-regid: 400 | P-Registrar-Error: Invalid Reg-Id number"),
        "{got:#?}"
    );

    let srv2 = sr_testkit::TestServer::start(
        &registrar_config(2).replace("__PORT__", "{PORT}"),
        siprouter::in_tree(),
    );
    let got2 = registrar_scenario(srv2.addr());
    assert!(got2.iter().any(|l| l.starts_with("nosup: 421 | Require: outbound | Supported: outbound | P-Registrar-Error: No support for Outbound indicated")), "{got2:#?}");
    let srv0 = sr_testkit::TestServer::start(
        &registrar_config(0).replace("__PORT__", "{PORT}"),
        siprouter::in_tree(),
    );
    let got0 = registrar_scenario(srv0.addr());
    assert!(got0.iter().any(|l| l.starts_with("require: 420 | Unsupported: outbound | P-Registrar-Error: No support for Outbound on server")), "{got0:#?}");
}

#[test]
fn the_registrar_outbound_modes_match_kamailio() {
    if !kamailio::available(&["usrloc", "registrar"]) {
        return;
    }
    for mode in [0u8, 1, 2] {
        let dir = kamailio::fresh_dir(&format!("reg-outbound{mode}"));
        let (want, got) = kamailio::run_scenario(
            &dir,
            &registrar_config(mode),
            siprouter::in_tree(),
            &|| {},
            &registrar_scenario,
        );
        // A reg-id that is not a number: Kamailio 5.6.3 answers 200 with
        // the bindings as they were and stores nothing (its error code is
        // lost on the way); siprouter answers 400 "Invalid Reg-Id number",
        // what Kamailio's registrar means to send.
        let (kb, want): (Vec<String>, Vec<String>) =
            want.into_iter().partition(|l| l.starts_with("bad-regid:"));
        let (sb, got): (Vec<String>, Vec<String>) =
            got.into_iter().partition(|l| l.starts_with("bad-regid:"));
        assert!(
            kb.len() == 1 && kb[0].starts_with("bad-regid: 200") && !kb[0].contains(":17>"),
            "{kb:?}"
        );
        assert!(
            sb.len() == 1 && sb[0].starts_with("bad-regid: 400"),
            "{sb:?}"
        );
        kamailio::conclude(
            &dir,
            &want,
            &got,
            &format!("registrar outbound_mode {mode}"),
        );
    }
}

/// A registrar forking to flows (the outbound module's registrar example,
/// cut down): one instance registered over two flows; the INVITE goes to
/// one flow only (`t_next_contacts`), that flow fails with 430, the
/// branch-failure route unregisters it (`$T_reply_ruid`) and relays to the
/// other flow (`t_next_contact_flow`), which answers. Then the same with a
/// flow that does not answer at all (its branch times out).
const FLOWS_CFG: &str = r#"#!KAMAILIO
children=1
listen=udp:127.0.0.1:__PORT__
mpath="__MPATH__"
loadmodule "sl.so"
loadmodule "tm.so"
loadmodule "tmx.so"
loadmodule "pv.so"
loadmodule "textops.so"
loadmodule "usrloc.so"
loadmodule "registrar.so"
modparam("registrar", "outbound_mode", 1)
modparam("tm", "contacts_avp", "tm_contacts")
modparam("tm", "contact_flows_avp", "tm_contact_flows")
modparam("tm", "fr_timer", 1000)
request_route {
    if ($hdr(X-T) == $null) { sl_send_reply("200", "up"); exit; }
    if (is_method("REGISTER")) { save("location"); exit; }
    if (is_method("ACK")) { t_relay(); exit; }
    if (!lookup("location")) { sl_send_reply("404", "Not Found"); exit; }
    t_load_contacts();
    if (!t_next_contacts()) { sl_send_reply("500", "No Contacts"); exit; }
    t_on_branch_failure("FLOW");
    t_on_failure("FAIL");
    t_relay();
}
event_route[tm:branch-failure:FLOW] {
    if (t_check_status("430") || (t_branch_timeout() && !t_branch_replied())) {
        unregister("location", "$tu", "$T_reply_ruid");
        if (t_next_contact_flow()) {
            t_on_branch_failure("FLOW");
            t_relay();
        }
    }
}
failure_route[FAIL] {
    if (t_check_status("430")) { t_reply("480", "Temporarily Unavailable"); }
}
"#;

/// A REGISTER of flow `n` (reg-id `n + 1`) from `f`.
fn flow_register(f: &UdpPeer, n: usize, cseq: u32) -> String {
    let a = f.addr();
    let contact = format!(
        "Contact: <sip:alice@{a};ob>;reg-id={};+sip.instance=\"<urn:uuid:00000000-0000-1000-8000-0000000000aa>\"\r\n",
        n + 1
    );
    reg_text(
        "alice",
        &format!("SIP/2.0/UDP {a}"),
        &format!("fl{n}-{cseq}"),
        "flows",
        cseq,
        &format!("{contact}Supported: outbound\r\nExpires: 600\r\n"),
    )
}

fn flows_scenario(srv: SocketAddr) -> Vec<String> {
    let caller = UdpPeer::new();
    kamailio::wait_until_up(&caller, srv, kamailio::PROBE, None);
    let flows = [UdpPeer::new(), UdpPeer::new()];
    let name = |a: SocketAddr| {
        if a == flows[0].addr() {
            "flow1".to_string()
        } else if a == flows[1].addr() {
            "flow2".to_string()
        } else {
            a.to_string()
        }
    };
    let wait = Duration::from_secs(3);
    let mut out = Vec::new();
    let mut cseq = 0;
    let mut register = |n: usize, out: &mut Vec<String>| {
        cseq += 1;
        let f = &flows[n];
        f.send(srv, &flow_register(f, n, cseq));
        let answer = f.recv_matching(wait, |r| {
            r.status().is_some() && r.msg.msg().call_id().ok() == Some("flows")
        });
        out.push(match answer {
            Some(r) => {
                let c = r.all("Contact");
                format!(
                    "register flow{}: {:?}, flow1 {} flow2 {}",
                    n + 1,
                    r.status(),
                    c.contains(&flows[0].addr().to_string()),
                    c.contains(&flows[1].addr().to_string())
                )
            }
            None => format!("register flow{}: no answer", n + 1),
        });
    };
    register(0, &mut out);
    register(1, &mut out);
    // `silent`: the first flow to get the INVITE does not answer (its
    // branch times out after fr_timer), else it answers 430 Flow Failed.
    let call = |id: &str, silent: bool, out: &mut Vec<String>| -> Option<usize> {
        caller.send(
            srv,
            &format!(
                "INVITE sip:alice@example.com SIP/2.0\r\nVia: SIP/2.0/UDP {a};branch=z9hG4bK{id}\r\nMax-Forwards: 70\r\nFrom: <sip:bob@example.com>;tag={id}\r\nTo: <sip:alice@example.com>\r\nCall-ID: {id}\r\nCSeq: 1 INVITE\r\nContact: <sip:bob@{a}>\r\nX-T: inv\r\nContent-Length: 0\r\n\r\n",
                a = caller.addr()
            ),
        );
        // Both flows watched at once (fr_timer is 1 s: waiting on one
        // flow first would let the other's branch time out).
        let deadline = std::time::Instant::now() + Duration::from_millis(1500);
        let mut first = None;
        while first.is_none() && std::time::Instant::now() < deadline {
            first = flows.iter().enumerate().find_map(|(i, f)| {
                f.recv_method("INVITE", Duration::from_millis(20))
                    .map(|r| (i, r))
            });
        }
        let Some((i, r1)) = first else {
            out.push(format!("{id}: no flow got the INVITE"));
            return None;
        };
        let f1 = &flows[i];
        out.push(format!("{id}: first INVITE at {}", name(f1.addr())));
        if !silent {
            f1.send(
                r1.from,
                &sr_testkit::answer(&r1, 430, "Flow Failed", "t1", &[]),
            );
        }
        let other = &flows[1 - i];
        let second = other.recv_matching(wait, |r| {
            r.msg.msg().method().is_some_and(|m| m.as_str() == "INVITE")
                && r.msg.msg().call_id().ok() == Some(id)
        });
        match second {
            Some(r2) => {
                out.push(format!("{id}: then INVITE at {}", name(other.addr())));
                let contact = format!("Contact: <sip:alice@{}>", other.addr());
                other.send(
                    r2.from,
                    &sr_testkit::answer(&r2, 200, "OK", "t2", &[&contact]),
                );
            }
            None => out.push(format!("{id}: no INVITE at the other flow")),
        }
        let fin = caller.recv_matching(Duration::from_secs(4), |r| {
            r.status().is_some_and(|c| c >= 200) && r.msg.msg().call_id().ok() == Some(id)
        });
        out.push(match fin {
            Some(r) => format!("{id}: caller gets {:?}", r.status()),
            None => format!("{id}: caller gets nothing"),
        });
        Some(i)
    };
    // A flow fails with 430: it is unregistered, the other flow answers.
    let failed = call("call-430", false, &mut out);
    // It registers again; this time the first flow says nothing.
    if let Some(i) = failed {
        register(i, &mut out);
    }
    let silent = call("call-silent", true, &mut out);
    // What is left: the flow that timed out was unregistered too.
    if let Some(i) = silent {
        register(1 - i, &mut out);
    }
    out
}

#[test]
fn a_failed_flow_gives_way_to_the_next_flow_of_its_instance() {
    let cfg = FLOWS_CFG.replace("__MPATH__", MPATH);
    let srv =
        sr_testkit::TestServer::start(&cfg.replace("__PORT__", "{PORT}"), siprouter::in_tree());
    let got = flows_scenario(srv.addr());
    let text = got.join("\n");
    assert_eq!(got.len(), 10, "{text}");
    assert_eq!(
        got[0], "register flow1: Some(200), flow1 true flow2 false",
        "{text}"
    );
    assert_eq!(
        got[1], "register flow2: Some(200), flow1 true flow2 true",
        "{text}"
    );
    for (at, id) in [(2, "call-430"), (6, "call-silent")] {
        let first = got[at]
            .strip_prefix(&format!("{id}: first INVITE at "))
            .unwrap_or_else(|| panic!("{text}"));
        let other = if first == "flow1" { "flow2" } else { "flow1" };
        assert_eq!(
            got[at + 1],
            format!("{id}: then INVITE at {other}"),
            "{text}"
        );
        assert_eq!(
            got[at + 2],
            format!("{id}: caller gets Some(200)"),
            "{text}"
        );
    }
    // Registered again after the 430, it was alone on its flow then.
    assert!(got[5].contains("Some(200)"), "{text}");
    // After the timeout only the flow that answered is left.
    let answered_last = got[7].rsplit(' ').next().unwrap_or_default();
    let want = format!(
        "flow1 {} flow2 {}",
        answered_last == "flow1",
        answered_last == "flow2"
    );
    assert!(got[9].ends_with(&want), "{text}");
}

/// A scenario on `FLOWS_CFG` against Kamailio and siprouter, compared
/// line for line (a notice instead without Kamailio's modules).
fn flows_parity(dir: &str, what: &str, scenario: &dyn Fn(SocketAddr) -> Vec<String>) {
    if !kamailio::available(&["tm", "tmx", "usrloc", "registrar"]) {
        return;
    }
    let dir = kamailio::fresh_dir(dir);
    let cfg = FLOWS_CFG.replace("__MPATH__", MPATH);
    let (want, got) = kamailio::run_scenario(&dir, &cfg, siprouter::in_tree(), &|| {}, scenario);
    kamailio::conclude(&dir, &want, &got, what);
}

#[test]
fn flows_match_kamailio() {
    flows_parity("ob-flows", "flows", &flows_scenario);
}

/// Two instances forked to in parallel: one answers 200 at once, the
/// other stays silent until its branch times out. The transaction was
/// answered by then, so the branch-failure route does not run for the
/// silent one (Kamailio drops negative replies after a final one went
/// upstream) and its registration stays.
fn answered_scenario(srv: SocketAddr) -> Vec<String> {
    let caller = UdpPeer::new();
    kamailio::wait_until_up(&caller, srv, kamailio::PROBE, None);
    let uas = [UdpPeer::new(), UdpPeer::new()];
    let wait = Duration::from_secs(3);
    let mut out = Vec::new();
    let query = |cseq: u32, out: &mut Vec<String>| {
        let u = &uas[0];
        let a = u.addr();
        u.send(
            srv,
            &reg_text(
                "carol",
                &format!("SIP/2.0/UDP {a}"),
                &format!("cq{cseq}"),
                "carol-q",
                cseq,
                "",
            ),
        );
        let r = u.recv_matching(wait, |r| {
            r.status().is_some() && r.msg.msg().call_id().ok() == Some("carol-q")
        });
        out.push(match r {
            Some(r) => {
                let c = r.all("Contact");
                format!(
                    "registered: first {} second {}",
                    c.contains(&uas[0].addr().to_string()),
                    c.contains(&uas[1].addr().to_string())
                )
            }
            None => "registered: no answer".into(),
        });
    };
    for (n, u) in uas.iter().enumerate() {
        let a = u.addr();
        u.send(
            srv,
            &reg_text(
                "carol",
                &format!("SIP/2.0/UDP {a}"),
                &format!("c{n}"),
                &format!("carol-{n}"),
                1,
                &format!("Contact: <sip:carol@{a};ob>;reg-id=1;+sip.instance=\"<urn:uuid:00000000-0000-1000-8000-0000000000c{n}>\"\r\nSupported: outbound\r\nExpires: 600\r\n"),
            ),
        );
        let _ = u.recv_final(wait);
    }
    query(1, &mut out);
    caller.send(
        srv,
        &format!(
            "INVITE sip:carol@example.com SIP/2.0\r\nVia: SIP/2.0/UDP {a};branch=z9hG4bKcc\r\nMax-Forwards: 70\r\nFrom: <sip:bob@example.com>;tag=cc\r\nTo: <sip:carol@example.com>\r\nCall-ID: carol-call\r\nCSeq: 1 INVITE\r\nContact: <sip:bob@{a}>\r\nX-T: inv\r\nContent-Length: 0\r\n\r\n",
            a = caller.addr()
        ),
    );
    // Both get it; the first answers, the second says nothing.
    let invite = |u: &UdpPeer| {
        u.recv_matching(wait, |r| {
            r.msg.msg().method().is_some_and(|m| m.as_str() == "INVITE")
                && r.msg.msg().call_id().ok() == Some("carol-call")
        })
    };
    let first = invite(&uas[0]);
    let second = invite(&uas[1]);
    out.push(format!("forked: {} {}", first.is_some(), second.is_some()));
    if let Some(r) = first {
        let contact = format!("Contact: <sip:carol@{}>", uas[0].addr());
        uas[0].send(
            r.from,
            &sr_testkit::answer(&r, 200, "OK", "c0", &[&contact]),
        );
    }
    let fin = caller.recv_matching(wait, |r| {
        r.status().is_some_and(|c| c >= 200) && r.msg.msg().call_id().ok() == Some("carol-call")
    });
    out.push(format!("caller gets {:?}", fin.and_then(|r| r.status())));
    // Past the silent branch's fr_timer (1 s).
    std::thread::sleep(Duration::from_millis(2500));
    query(2, &mut out);
    out
}

#[test]
fn a_branch_that_times_out_after_the_answer_keeps_its_registration() {
    let cfg = FLOWS_CFG.replace("__MPATH__", MPATH);
    let srv =
        sr_testkit::TestServer::start(&cfg.replace("__PORT__", "{PORT}"), siprouter::in_tree());
    let got = answered_scenario(srv.addr());
    assert_eq!(
        got,
        [
            "registered: first true second true",
            "forked: true true",
            "caller gets Some(200)",
            "registered: first true second true",
        ]
    );
}

#[test]
fn answered_forks_match_kamailio() {
    flows_parity("ob-answered", "answered forks", &answered_scenario);
}

/// The edge proxy with WebSocket (xhttp and websocket modules, as
/// Kamailio's WebSocket example).
fn ws_config(reg: SocketAddr) -> String {
    let s = with_tcp(kamailio::head(&[
        "sl",
        "pv",
        "textops",
        "xhttp",
        "websocket",
        "outbound",
        "rr",
        "path",
    ]))
    .replace("mpath=", "tcp_accept_no_cl=yes\nforce_rport=yes\nmpath=");
    s + &BODY.replace("__REG__", &format!("sip:{reg}"))
        + r#"event_route[xhttp:request] {
    if ($hdr(Upgrade) =~ "websocket" && $hdr(Connection) =~ "Upgrade" && $rm =~ "GET") {
        if (ws_handle_handshake()) { exit; }
    }
    xhttp_reply("404", "Not Found", "text/plain", "no");
}
"#
}

/// A browser-like client registering over its WebSocket through the
/// edge, a call back to it down that flow, and, once it has gone, 430.
fn ws_scenario(srv: SocketAddr, reg: UdpPeer, key: [u8; 20]) -> Vec<String> {
    let probe = UdpPeer::new();
    kamailio::wait_until_up(&probe, srv, kamailio::PROBE, None);
    let mut ws: sr_testkit::WsPeer<std::net::TcpStream> = sr_testkit::WsPeer::connect(srv);
    let mut out = Vec::new();
    out.push(format!("handshake: {:?}", ws.handshake("").map(|(c, _)| c)));
    let w_addr = ws.stream.local_addr().expect("local address");
    let p = Peers {
        reg,
        udp: probe,
        srv,
        key,
    };
    let wait = Duration::from_secs(3);
    ws.send(&register(
        "SIP/2.0/WS df7jal23ls0d.invalid",
        "ob-ws",
        "<sip:alice@df7jal23ls0d.invalid;transport=ws;ob>;reg-id=1;+sip.instance=\"<urn:uuid:00000000-0000-1000-8000-00000000ee01>\"",
        "Supported: path, outbound, gruu\r\n",
    ));
    let Some(r) = p.reg.recv_method("REGISTER", wait) else {
        out.push("ws register: nothing at the registrar".into());
        return out;
    };
    let path = path_of(&r);
    out.push(p.names(&format!("ws register: Path={path}"), w_addr));
    p.reg
        .send(r.from, &sr_testkit::answer(&r, 200, "OK", "rw", &[]));
    out.push(match ws.recv(wait) {
        Some(a) => format!("ws register answered {:?}", a.status()),
        None => "ws register: no answer".into(),
    });
    p.reg.send(
        srv,
        &invite(
            &p.reg,
            "in-ws",
            "sip:alice@df7jal23ls0d.invalid;transport=ws",
            &path,
        ),
    );
    out.push(match ws.recv(wait) {
        Some(r) => p.names(
            &format!(
                "ws invite on the websocket: X-R={}",
                r.header("X-R").unwrap_or_default()
            ),
            w_addr,
        ),
        None => "ws invite: nothing on the websocket".into(),
    });
    drop(ws);
    std::thread::sleep(Duration::from_millis(300));
    p.reg.send(
        srv,
        &invite(
            &p.reg,
            "in-ws-dead",
            "sip:alice@df7jal23ls0d.invalid;transport=ws",
            &path,
        ),
    );
    out.push(match p.reg.recv_final(wait) {
        Some(r) => format!(
            "dead ws flow: {:?} {}",
            r.status(),
            r.msg.msg().reason().unwrap_or("")
        ),
        None => "dead ws flow: no answer".into(),
    });
    out
}

fn ws_reg() -> SocketAddr {
    format!("127.0.0.1:{}", sr_testkit::free_port())
        .parse()
        .unwrap()
}

#[test]
fn a_websocket_flow_is_routed_to_and_its_loss_is_a_430() {
    let reg = ws_reg();
    let cfg = ws_config(reg);
    let srv =
        sr_testkit::TestServer::start(&cfg.replace("__PORT__", "{PORT}"), siprouter::in_tree());
    let got = ws_scenario(
        srv.addr(),
        UdpPeer::on(&reg.to_string()),
        key_from_secret(SECRET),
    );
    let text = got.join("\n");
    assert_eq!(got.len(), 5, "{text}");
    assert_eq!(got[0], "handshake: Some(101)", "{text}");
    assert_eq!(
        got[1],
        "ws register: Path=<sip:<token ws 127.0.0.1:<srv> <- 127.0.0.1:<tcp>>@127.0.0.1:<srv>;lr;ob>",
        "{text}"
    );
    assert_eq!(got[2], "ws register answered Some(200)", "{text}");
    assert_eq!(
        got[3], "ws invite on the websocket: X-R=2 du=sip:127.0.0.1:<tcp>;transport=ws",
        "{text}"
    );
    assert_eq!(got[4], "dead ws flow: Some(430) Flow Failed", "{text}");
}

#[test]
fn websocket_flows_match_kamailio() {
    if !kamailio::available(&["xhttp", "websocket", "outbound", "rr", "path"]) {
        return;
    }
    let dir = kamailio::fresh_dir("ob-ws");
    let reg = ws_reg();
    let cfg = ws_config(reg);
    let kam = kamailio::Kamailio::start(&dir, &cfg);
    let want = ws_scenario(kam.addr, UdpPeer::on(&reg.to_string()), key_from_secret(""));
    drop(kam);
    let _ = std::fs::write(dir.join("kamailio.txt"), want.join("\n"));
    let got = {
        let srv =
            sr_testkit::TestServer::start(&cfg.replace("__PORT__", "{PORT}"), siprouter::in_tree());
        ws_scenario(
            srv.addr(),
            UdpPeer::on(&reg.to_string()),
            key_from_secret(SECRET),
        )
    };
    // (The lost flow: Kamailio cannot open a WebSocket either; its answer
    // is its send error, siprouter's 430; see outbound_matches_kamailio.)
    let dead = |l: &String| l.starts_with("dead ws flow:");
    let (_kd, want): (Vec<String>, Vec<String>) = want.into_iter().partition(dead);
    let (_sd, got): (Vec<String>, Vec<String>) = got.into_iter().partition(dead);
    kamailio::conclude(&dir, &want, &got, "websocket flows");
}
