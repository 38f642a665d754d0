//! TLS end to end: a client registers over a `listen=tls:` socket and is
//! called over the same connection; the proxy opens TLS connections to
//! TLS destinations; a TLS socket without a certificate is refused at
//! start. Certificates are made for the test (rcgen); the peers are rustls
//! sessions over real sockets on 127.0.0.1.

use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName};
use sip_msg::framer::{Frame, StreamFramer};
use sip_msg::OwnedMessage;
use sr_testkit::{answer, free_port, TestServer, UdpPeer, WsPeer};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

const T: Duration = Duration::from_secs(5);

/// A self-signed certificate for 127.0.0.1 and localhost, written as PEM
/// files in a folder of the test's own.
struct Cert {
    der: CertificateDer<'static>,
    key: PrivateKeyDer<'static>,
    cert_path: PathBuf,
    key_path: PathBuf,
}

fn cert(name: &str) -> Cert {
    let c = rcgen::generate_simple_self_signed(vec!["127.0.0.1".into(), "localhost".into()])
        .expect("certificate");
    let dir = std::env::temp_dir().join(format!("siprouter-tls-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (cert_path, key_path) = (dir.join("cert.pem"), dir.join("key.pem"));
    std::fs::write(&cert_path, c.cert.pem()).unwrap();
    std::fs::write(&key_path, c.key_pair.serialize_pem()).unwrap();
    Cert {
        der: c.cert.der().clone(),
        key: PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(c.key_pair.serialize_der())),
        cert_path,
        key_path,
    }
}

/// A `tls.cfg` beside the certificate with only a server section naming
/// it (Kamailio's defaults for the rest).
fn server_tls_cfg(c: &Cert) -> PathBuf {
    let path = c.cert_path.with_file_name("tls.cfg");
    let text = format!(
        "[server:default]\nprivate_key = {}\ncertificate = {}\n",
        c.key_path.display(),
        c.cert_path.display()
    );
    std::fs::write(&path, text).unwrap();
    path
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// A SIP user agent on a TLS connection.
struct TlsPeer {
    conn: rustls::Connection,
    sock: TcpStream,
    framer: StreamFramer,
    local: SocketAddr,
}

impl TlsPeer {
    /// Connects to `addr`, trusting only `ca`.
    fn connect(addr: SocketAddr, ca: &CertificateDer<'static>) -> TlsPeer {
        Self::connect_as(addr, ca, None)
    }

    /// Connects to `addr`, trusting only `ca`, presenting `client` (a
    /// certificate chain and its key) when given.
    fn connect_as(
        addr: SocketAddr,
        ca: &CertificateDer<'static>,
        client: Option<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>)>,
    ) -> TlsPeer {
        let mut roots = rustls::RootCertStore::empty();
        roots.add(ca.clone()).unwrap();
        let b = rustls::ClientConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots);
        let cfg = match client {
            Some((chain, key)) => b.with_client_auth_cert(chain, key).unwrap(),
            None => b.with_no_client_auth(),
        };
        let conn =
            rustls::ClientConnection::new(Arc::new(cfg), ServerName::IpAddress(addr.ip().into()))
                .unwrap();
        let sock = TcpStream::connect(addr).expect("connect");
        Self::over(rustls::Connection::Client(conn), sock)
    }

    fn over(conn: rustls::Connection, sock: TcpStream) -> TlsPeer {
        let local = sock.local_addr().unwrap();
        sock.set_read_timeout(Some(Duration::from_millis(100)))
            .unwrap();
        TlsPeer {
            conn,
            sock,
            framer: StreamFramer::new(65536),
            local,
        }
    }

    fn flush(&mut self) {
        while self.conn.wants_write() {
            self.conn.write_tls(&mut self.sock).expect("TLS write");
        }
    }

    fn send(&mut self, text: &str) {
        self.conn.writer().write_all(text.as_bytes()).unwrap();
        self.flush();
    }

    /// Completes the TLS handshake, so that what [`TlsPeer::send`] writes
    /// next leaves at once (until then rustls holds it).
    fn handshake(&mut self) {
        let end = Instant::now() + T;
        while self.conn.is_handshaking() {
            self.flush();
            match self.conn.read_tls(&mut self.sock) {
                Ok(0) => panic!("connection closed during the handshake"),
                Ok(_) => {
                    self.conn.process_new_packets().expect("TLS");
                }
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) => {}
                Err(e) => panic!("TLS handshake: {e}"),
            }
            assert!(Instant::now() < end, "TLS handshake timed out");
        }
        self.flush();
    }

    /// The next SIP message on the connection.
    fn recv(&mut self) -> Option<OwnedMessage> {
        let end = Instant::now() + T;
        let mut buf = [0u8; 8192];
        loop {
            while let Some(f) = self.framer.next_frame() {
                if let Ok(Frame::Message(b)) = f {
                    return OwnedMessage::parse(b).ok();
                }
            }
            match self.conn.reader().read(&mut buf) {
                Ok(0) => return None,
                Ok(n) => {
                    self.framer.push(&buf[..n]);
                    continue;
                }
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                Err(e) => panic!("TLS read: {e}"),
            }
            if Instant::now() > end {
                return None;
            }
            match self.conn.read_tls(&mut self.sock) {
                Ok(0) => return None,
                Ok(_) => {
                    self.conn.process_new_packets().expect("TLS");
                    self.flush();
                }
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) => {}
                Err(e) => panic!("TLS read: {e}"),
            }
        }
    }
}

/// A TLS user agent's listening socket and server configuration, with a
/// certificate of its own that the proxy does not know.
fn tls_uas(name: &str) -> (TcpListener, SocketAddr, Arc<rustls::ServerConfig>) {
    let c = cert(name);
    let lst = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = lst.local_addr().unwrap();
    let cfg = rustls::ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![c.der.clone()], c.key.clone_key())
        .unwrap();
    (lst, addr, Arc::new(cfg))
}

fn text(m: &OwnedMessage) -> String {
    String::from_utf8_lossy(m.msg().raw()).into_owned()
}

/// A proxy with a UDP socket and a TLS one, registrar and stateful relay,
/// WebSocket (wss) on the TLS socket; its certificate named in a `tls.cfg`
/// file, as Kamailio's stock configuration does it.
fn proxy(c: &Cert, tls_port: u16) -> TestServer {
    let tls_cfg = c.cert_path.with_file_name("tls.cfg");
    std::fs::write(
        &tls_cfg,
        format!(
            "# as in Kamailio's tls.cfg\n[server:default]\nmethod = TLSv1.2+\nverify_certificate = no\nrequire_certificate = no\nprivate_key = {}\ncertificate = {}\n\n[client:default]\nverify_certificate = no\nrequire_certificate = no\n",
            c.key_path.display(),
            c.cert_path.display()
        ),
    )
    .unwrap();
    let cfg = format!(
        r#"listen=udp:127.0.0.1:{{PORT}}
listen=tls:127.0.0.1:{tls_port}
loadmodule "sl"
loadmodule "tm"
loadmodule "pv"
loadmodule "textops"
loadmodule "usrloc"
loadmodule "registrar"
loadmodule "tls"
loadmodule "xhttp"
loadmodule "websocket"
modparam("tls", "config", "{}")
request_route {{
    if (is_method("REGISTER")) {{ save("location"); exit; }}
    if (!lookup("location")) {{ sl_send_reply("404", "Not Found"); exit; }}
    t_relay();
}}
event_route[xhttp:request] {{
    if (ws_handle_handshake()) {{ exit; }}
}}
"#,
        tls_cfg.display()
    );
    TestServer::start(&cfg, siprouter::in_tree())
}

#[test]
fn a_tls_client_registers_and_is_called_over_its_connection() {
    let c = cert("reg");
    let tls_port = free_port();
    let srv = proxy(&c, tls_port);
    let tls_addr: SocketAddr = format!("127.0.0.1:{tls_port}").parse().unwrap();
    let mut bob = TlsPeer::connect(tls_addr, &c.der);
    let me = bob.local;
    bob.send(&format!(
        "REGISTER sip:127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/TLS {me};branch=z9hG4bKtlsreg\r\nMax-Forwards: 70\r\nFrom: <sip:bob@127.0.0.1>;tag=b1\r\nTo: <sip:bob@127.0.0.1>\r\nCall-ID: tls-reg\r\nCSeq: 1 REGISTER\r\nContact: <sip:bob@{me};transport=tls>\r\nExpires: 600\r\nContent-Length: 0\r\n\r\n"
    ));
    let r = bob.recv().expect("REGISTER answered over TLS");
    assert_eq!(r.msg().status(), Some(200), "{}", text(&r));

    // A caller on UDP: the INVITE goes to bob over his TLS connection,
    // with our Via saying TLS, and his answer comes back.
    let caller = UdpPeer::new();
    caller.send(
        srv.addr(),
        &format!(
            "INVITE sip:bob@127.0.0.1:{} SIP/2.0\r\nVia: SIP/2.0/UDP {};branch=z9hG4bKtlsinv\r\nMax-Forwards: 70\r\nFrom: <sip:alice@127.0.0.1>;tag=a1\r\nTo: <sip:bob@127.0.0.1>\r\nCall-ID: tls-call\r\nCSeq: 1 INVITE\r\nContact: <sip:alice@{}>\r\nContent-Length: 0\r\n\r\n",
            srv.port,
            caller.addr(),
            caller.addr()
        ),
    );
    let inv = bob.recv().expect("INVITE over TLS");
    assert_eq!(
        inv.msg().method().unwrap().as_str(),
        "INVITE",
        "{}",
        text(&inv)
    );
    let top = inv.msg().top_via().unwrap();
    assert_eq!(top.transport, "TLS");
    assert_eq!(top.port, Some(tls_port));
    let reply = answer(
        &sr_testkit::Reply {
            msg: inv,
            from: tls_addr,
        },
        486,
        "Busy Here",
        "bob",
        &[],
    );
    bob.send(&reply);
    let r = caller.recv_final(T).expect("486 relayed from TLS to UDP");
    assert_eq!(r.status(), Some(486));
    // The ACK for the 486 goes back to bob over TLS too.
    let ack = bob.recv().expect("ACK over TLS");
    assert_eq!(ack.msg().method().unwrap().as_str(), "ACK");
    assert_eq!(srv.rt.panics.load(std::sync::atomic::Ordering::Relaxed), 0);
}

#[test]
fn a_secure_websocket_client_registers_and_is_called() {
    let c = cert("wss");
    let tls_port = free_port();
    let srv = proxy(&c, tls_port);
    let tls_addr: SocketAddr = format!("127.0.0.1:{tls_port}").parse().unwrap();
    let mut roots = rustls::RootCertStore::empty();
    roots.add(c.der.clone()).unwrap();
    let cfg = rustls::ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let session =
        rustls::ClientConnection::new(Arc::new(cfg), ServerName::IpAddress(tls_addr.ip().into()))
            .unwrap();
    let sock = TcpStream::connect(tls_addr).expect("connect");
    sock.set_read_timeout(Some(Duration::from_millis(50)))
        .unwrap();
    let me = sock.local_addr().unwrap();
    let mut ws = WsPeer::over(rustls::StreamOwned::new(session, sock), tls_addr);
    let (code, head) = ws.handshake("").expect("handshake over TLS");
    assert_eq!(code, 101, "{head}");

    ws.send(&format!("REGISTER sip:127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/WSS q1w2e3.invalid;branch=z9hG4bKwssreg\r\nMax-Forwards: 70\r\nFrom: <sip:carol@127.0.0.1>;tag=c1\r\nTo: <sip:carol@127.0.0.1>\r\nCall-ID: wss-reg\r\nCSeq: 1 REGISTER\r\nContact: <sip:carol@{me};transport=wss>\r\nExpires: 600\r\n\r\n"));
    let r = ws.recv(T).expect("REGISTER answered over wss");
    assert_eq!(r.status(), Some(200), "{}", r.text());
    let dump = srv.rpc("ws.dump", &[]).expect("ws.dump");
    let line = dump["connections"][0].as_str().unwrap_or_default();
    assert!(line.contains(&format!(": wss:{me} -> wss:")), "{dump}");

    // A UDP caller reaches carol on her secure WebSocket (her Contact
    // names the address she connected from).
    let caller = UdpPeer::new();
    let a = caller.addr();
    caller.send(srv.addr(), &format!("INVITE sip:carol@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP {a};branch=z9hG4bKwssinv\r\nMax-Forwards: 70\r\nFrom: <sip:alice@127.0.0.1>;tag=a1\r\nTo: <sip:carol@127.0.0.1>\r\nCall-ID: wss-call\r\nCSeq: 1 INVITE\r\nContact: <sip:alice@{a}>\r\nContent-Length: 0\r\n\r\n"));
    let inv = ws.recv(T).expect("INVITE over wss");
    let top = inv.msg.msg().top_via().unwrap();
    assert_eq!((top.transport, top.port), ("WSS", Some(tls_port)));
    ws.send(&answer(&inv, 486, "Busy Here", "carol", &[]));
    let r = caller.recv_final(T).expect("486 relayed from wss to UDP");
    assert_eq!(r.status(), Some(486));
}

#[test]
fn the_proxy_opens_tls_connections_to_tls_destinations() {
    // A TLS UAS the proxy does not know the certificate of (the tls
    // module's default, as Kamailio's, does not verify servers); the
    // proxy has no TLS socket of its own, only the client side.
    let (lst, uas_addr, server_cfg) = tls_uas("uas");
    let uas = std::thread::spawn(move || {
        let (sock, _) = lst.accept().unwrap();
        let conn = rustls::ServerConnection::new(server_cfg).unwrap();
        let mut peer = TlsPeer::over(rustls::Connection::Server(conn), sock);
        let req = peer.recv().expect("OPTIONS over TLS");
        let seen = text(&req);
        let from = peer.local;
        let reply = answer(&sr_testkit::Reply { msg: req, from }, 200, "OK", "uas", &[]);
        peer.send(&reply);
        // Stay until the proxy has read the reply.
        std::thread::sleep(Duration::from_millis(500));
        seen
    });

    let c = cert("out");
    let cfg = format!(
        r#"listen=udp:127.0.0.1:{{PORT}}
loadmodule "sl"
loadmodule "tm"
loadmodule "pv"
loadmodule "tls"
modparam("tls", "certificate", "{}")
modparam("tls", "private_key", "{}")
request_route {{
    $du = "sip:{uas_addr};transport=tls";
    t_relay();
}}
"#,
        c.cert_path.display(),
        c.key_path.display()
    );
    let srv = TestServer::start(&cfg, siprouter::in_tree());
    let caller = UdpPeer::new();
    caller.send(
        srv.addr(),
        &format!(
            "OPTIONS sip:carol@127.0.0.1:{} SIP/2.0\r\nVia: SIP/2.0/UDP {};branch=z9hG4bKtlsout\r\nMax-Forwards: 70\r\nFrom: <sip:alice@127.0.0.1>;tag=a2\r\nTo: <sip:carol@127.0.0.1>\r\nCall-ID: tls-out\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n",
            srv.port,
            caller.addr()
        ),
    );
    let r = caller.recv_final(T).expect("reply from the TLS UAS");
    assert_eq!(r.status(), Some(200), "{}", r.text());
    assert!(r.header("To").unwrap().contains("tag=uas"));
    let got = uas.join().expect("the UAS saw the request");
    assert!(got.starts_with("OPTIONS sip:carol@"), "{got}");
    assert!(got.contains("Via: SIP/2.0/TLS "), "{got}");
}

#[test]
fn a_tls_socket_needs_the_tls_module_and_a_certificate() {
    let port = free_port();
    for (modules, why) in [
        ("loadmodule \"sl\"\n", "tls module"),
        ("loadmodule \"tls\"\n", "certificate"),
        (
            "loadmodule \"tls\"\nmodparam(\"tls\", \"certificate\", \"/nonexistent/c.pem\")\nmodparam(\"tls\", \"private_key\", \"/nonexistent/k.pem\")\n",
            "/nonexistent/c.pem",
        ),
    ] {
        let e = TestServer::try_start(
            &format!("listen=udp:127.0.0.1:{{PORT}}\nlisten=tls:127.0.0.1:{port}\n{modules}request_route {{ drop; }}\n"),
            siprouter::in_tree(),
        )
        .err()
        .unwrap_or_else(|| panic!("started without {why}"));
        assert!(e.join("\n").contains(why), "{e:?}");
    }
}

#[test]
fn plain_text_on_a_tls_socket_closes_that_connection_only() {
    let c = cert("plain");
    let tls_port = free_port();
    let _srv = proxy(&c, tls_port);
    let addr: SocketAddr = format!("127.0.0.1:{tls_port}").parse().unwrap();
    let mut plain = TcpStream::connect(addr).unwrap();
    plain
        .write_all(b"OPTIONS sip:127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/TCP 127.0.0.1:9;branch=z9hG4bKp\r\nContent-Length: 0\r\n\r\n")
        .unwrap();
    plain.set_read_timeout(Some(T)).unwrap();
    let mut buf = [0u8; 512];
    // At most a TLS alert, then the end of the connection.
    let mut total = 0;
    loop {
        match plain.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                total += n;
                assert!(!buf[..n].starts_with(b"SIP/2.0"), "answered in plain text");
            }
            Err(e) => panic!("the connection was not closed: {e}"),
        }
    }
    assert!(total < 64, "more than an alert came back: {total} bytes");
    // A real TLS client is still served.
    let mut ok = TlsPeer::connect(addr, &c.der);
    let me = ok.local;
    ok.send(&format!("OPTIONS sip:127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/TLS {me};branch=z9hG4bKok\r\nMax-Forwards: 70\r\nFrom: <sip:a@127.0.0.1>;tag=o1\r\nTo: <sip:127.0.0.1>\r\nCall-ID: tls-ok\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n"));
    let r = ok.recv().expect("answered over TLS");
    assert_eq!(r.msg().status(), Some(404), "{}", text(&r));
}

#[test]
fn a_burst_to_a_new_tls_destination_waits_for_the_handshake() {
    // 120 requests of about 1 kB forwarded at once to a TLS UAS the proxy
    // has no connection to yet: more than rustls keeps by default before
    // its handshake is over (64 KiB). All must arrive.
    const N: usize = 120;
    let (lst, uas_addr, server_cfg) = tls_uas("burst-uas");
    let uas = std::thread::spawn(move || {
        let (sock, _) = lst.accept().unwrap();
        // A slow handshake: everything is sent before it is over.
        std::thread::sleep(Duration::from_millis(500));
        let conn = rustls::ServerConnection::new(server_cfg).unwrap();
        let mut peer = TlsPeer::over(rustls::Connection::Server(conn), sock);
        let mut got = 0;
        while got < N {
            let Some(req) = peer.recv() else { break };
            got += 1;
            let from = peer.local;
            let reply = answer(&sr_testkit::Reply { msg: req, from }, 200, "OK", "uas", &[]);
            peer.send(&reply);
        }
        std::thread::sleep(Duration::from_millis(300));
        got
    });
    let c = cert("burst");
    let cfg = format!(
        "listen=udp:127.0.0.1:{{PORT}}\nloadmodule \"sl\"\nloadmodule \"tls\"\nmodparam(\"tls\", \"certificate\", \"{}\")\nmodparam(\"tls\", \"private_key\", \"{}\")\nrequest_route {{ forward(\"tls:{uas_addr}\"); }}\n",
        c.cert_path.display(),
        c.key_path.display()
    );
    let srv = TestServer::start(&cfg, siprouter::in_tree());
    let caller = UdpPeer::new();
    let pad = "x".repeat(700);
    for i in 0..N {
        caller.send(
            srv.addr(),
            &format!(
                "OPTIONS sip:carol@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP {};branch=z9hG4bKburst{i}\r\nMax-Forwards: 70\r\nFrom: <sip:a@127.0.0.1>;tag=b{i}\r\nTo: <sip:carol@127.0.0.1>\r\nCall-ID: burst-{i}\r\nCSeq: 1 OPTIONS\r\nX-Pad: {pad}\r\nContent-Length: 0\r\n\r\n",
                caller.addr()
            ),
        );
    }
    let mut replies = 0;
    while caller.recv(T).is_some_and(|r| r.status() == Some(200)) {
        replies += 1;
        if replies == N {
            break;
        }
    }
    assert_eq!(uas.join().unwrap(), N, "requests that reached the UAS");
    assert_eq!(replies, N, "replies relayed back");
}

#[test]
fn a_connection_that_never_shakes_hands_is_closed() {
    let c = cert("idle");
    let tls_port = free_port();
    let tls_cfg = server_tls_cfg(&c);
    let _srv = TestServer::start(
        &format!("listen=udp:127.0.0.1:{{PORT}}\nlisten=tls:127.0.0.1:{tls_port}\ntcp_connect_timeout=1\nloadmodule \"sl\"\nloadmodule \"tls\"\nmodparam(\"tls\", \"config\", \"{}\")\nrequest_route {{ drop; }}\n", tls_cfg.display()),
        siprouter::in_tree(),
    );
    let mut idle = TcpStream::connect(("127.0.0.1", tls_port)).unwrap();
    idle.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let t = Instant::now();
    let mut b = [0u8; 64];
    // At most an alert, then the end of the connection.
    let mut total = 0;
    loop {
        match idle.read(&mut b) {
            Ok(0) => break,
            Ok(n) => total += n,
            Err(e) => panic!("not closed: {e}"),
        }
    }
    assert!(total <= 16, "{total} bytes before the close");
    let waited = t.elapsed();
    assert!(
        waited >= Duration::from_millis(800) && waited < Duration::from_secs(4),
        "closed after {waited:?} (tcp_connect_timeout=1)"
    );
}

#[test]
fn require_certificate_admits_only_clients_the_ca_signed() {
    // A CA, and a client certificate it signed.
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "siprouter test CA");
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let client_key = rcgen::KeyPair::generate().unwrap();
    let client = rcgen::CertificateParams::new(vec!["client.example".to_string()])
        .unwrap()
        .signed_by(&client_key, &ca, &ca_key)
        .unwrap();
    let c = cert("mtls");
    let ca_path = c.cert_path.with_file_name("ca.pem");
    std::fs::write(&ca_path, ca.pem()).unwrap();
    let tls_port = free_port();
    let _srv = TestServer::start(
        &format!(
            "listen=udp:127.0.0.1:{{PORT}}\nlisten=tls:127.0.0.1:{tls_port}\nloadmodule \"sl\"\nloadmodule \"tls\"\nmodparam(\"tls\", \"certificate\", \"{}\")\nmodparam(\"tls\", \"private_key\", \"{}\")\nmodparam(\"tls\", \"ca_list\", \"{}\")\nmodparam(\"tls\", \"verify_certificate\", 1)\nmodparam(\"tls\", \"require_certificate\", 1)\nrequest_route {{ sl_send_reply(\"200\", \"Verified\"); }}\n",
            c.cert_path.display(),
            c.key_path.display(),
            ca_path.display()
        ),
        siprouter::in_tree(),
    );
    let addr: SocketAddr = format!("127.0.0.1:{tls_port}").parse().unwrap();
    let options = |p: &TlsPeer| {
        format!("OPTIONS sip:127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/TLS {};branch=z9hG4bKmtls\r\nMax-Forwards: 70\r\nFrom: <sip:a@127.0.0.1>;tag=m\r\nTo: <sip:127.0.0.1>\r\nCall-ID: mtls\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n", p.local)
    };
    let chain = vec![client.der().clone()];
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(client_key.serialize_der()));
    let mut ok = TlsPeer::connect_as(addr, &c.der, Some((chain, key)));
    let text = options(&ok);
    ok.send(&text);
    let r = ok.recv().expect("answered with a client certificate");
    assert_eq!(r.msg().status(), Some(200));

    // Without one, the handshake fails and nothing is answered.
    let mut bare = TlsPeer::connect(addr, &c.der);
    let text = options(&bare);
    bare.conn.writer().write_all(text.as_bytes()).unwrap();
    bare.flush();
    let mut buf = [0u8; 1024];
    let end = Instant::now() + T;
    let refused = loop {
        assert!(Instant::now() < end, "neither answered nor refused");
        match bare.conn.read_tls(&mut bare.sock) {
            Ok(0) => break true,
            Ok(_) => {
                if bare.conn.process_new_packets().is_err() {
                    break true;
                }
                // Our side of the handshake (its empty Certificate).
                while bare.conn.wants_write() {
                    if bare.conn.write_tls(&mut bare.sock).is_err() {
                        break;
                    }
                }
                if let Ok(n) = bare.conn.reader().read(&mut buf) {
                    assert!(n == 0, "answered without a certificate");
                }
            }
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(_) => break true,
        }
    };
    assert!(refused);
}

/// The user part of the first `sip:` URI in a Path or Route value.
fn uri_user(v: &str) -> &str {
    let rest = &v[v.find("sip:").expect("a sip: URI") + 4..];
    &rest[..rest.find('@').expect("a user part")]
}

/// Outbound (RFC 5626) on a TLS flow: the edge's Path carries a token for
/// the client's TLS connection, and a request that comes back through
/// that Path goes down the same connection (`loose_route()` returns 2);
/// once the connection is gone it fails with 430 instead of a new
/// connection to the client's port.
#[test]
fn an_outbound_flow_over_tls_carries_requests_back_down_the_connection() {
    use sr_mod_outbound::token::{decode, key_from_secret};
    let c = cert("outbound");
    let tls_port = free_port();
    let tls_cfg = server_tls_cfg(&c);
    let reg = UdpPeer::new();
    let cfg = format!(
        r#"listen=udp:127.0.0.1:{{PORT}}
listen=tls:127.0.0.1:{tls_port}
loadmodule "sl"
loadmodule "pv"
loadmodule "textops"
loadmodule "outbound"
loadmodule "rr"
loadmodule "path"
loadmodule "tls"
modparam("tls", "config", "{}")
modparam("outbound", "flow_token_secret", "tls-edge")
request_route {{
    if (is_method("REGISTER")) {{
        add_path();
        $du = "sip:{}";
        forward();
        exit;
    }}
    $var(r) = loose_route();
    if ($var(r) == -2) {{ sl_send_reply("403", "Forbidden"); exit; }}
    append_hf("X-R: $var(r)\r\n");
    if (!forward()) {{ sl_reply_error(); }}
}}
"#,
        tls_cfg.display(),
        reg.addr()
    );
    let srv = TestServer::start(&cfg, siprouter::in_tree());
    let tls_addr: SocketAddr = format!("127.0.0.1:{tls_port}").parse().unwrap();
    let mut ua = TlsPeer::connect(tls_addr, &c.der);
    ua.handshake();
    let me = ua.local;
    ua.send(&format!(
        "REGISTER sip:example.com SIP/2.0\r\nVia: SIP/2.0/TLS {me};branch=z9hG4bKobtls1\r\nMax-Forwards: 70\r\nFrom: <sip:alice@example.com>;tag=o1\r\nTo: <sip:alice@example.com>\r\nCall-ID: ob-tls\r\nCSeq: 1 REGISTER\r\nSupported: outbound, path\r\nContact: <sip:alice@{me};transport=tls;ob>;reg-id=1;+sip.instance=\"<urn:uuid:00000000-0000-1000-8000-000000000001>\"\r\nContent-Length: 0\r\n\r\n"
    ));
    let r = reg
        .recv_method("REGISTER", T)
        .expect("REGISTER forwarded to the registrar");
    let path = r.header("Path").expect("a Path");
    assert!(path.ends_with(";lr;ob>"), "{path}");
    let flow = decode(&key_from_secret("tls-edge"), uri_user(&path)).expect("our token");
    assert_eq!(flow.proto.as_str(), "tls");
    assert_eq!((flow.dst, flow.src), (tls_addr, me));
    reg.send(srv.addr(), &answer(&r, 200, "OK", "reg", &[]));
    let ok = ua.recv().expect("200 back over TLS");
    assert_eq!(ok.msg().status(), Some(200), "{}", text(&ok));

    // The registrar's INVITE through the Path: down the TLS connection.
    let invite = |call: &str| {
        format!(
            "INVITE sip:alice@{me};transport=tls SIP/2.0\r\nVia: SIP/2.0/UDP {a};branch=z9hG4bK{call}\r\nMax-Forwards: 70\r\nFrom: <sip:bob@example.com>;tag=f{call}\r\nTo: <sip:alice@example.com>\r\nCall-ID: {call}\r\nCSeq: 1 INVITE\r\nContact: <sip:bob@{a}>\r\nRoute: {path}\r\nContent-Length: 0\r\n\r\n",
            a = reg.addr()
        )
    };
    reg.send(srv.addr(), &invite("obtls-inv1"));
    let inv = ua.recv().expect("INVITE over the client's TLS connection");
    assert_eq!(inv.msg().method().map(|m| m.as_str()), Some("INVITE"));
    let t = text(&inv);
    assert!(t.contains("X-R: 2\r\n"), "{t}");
    assert!(!t.contains("Route:"), "our Path entry consumed: {t}");

    // The connection gone: 430 Flow Failed to the registrar.
    drop(ua);
    std::thread::sleep(Duration::from_millis(300));
    reg.send(srv.addr(), &invite("obtls-inv2"));
    let r = reg.recv_final(T).expect("an answer for the lost flow");
    assert!(
        r.text().starts_with("SIP/2.0 430 Flow Failed\r\n"),
        "{}",
        r.text()
    );
    assert_eq!(srv.rt.panics.load(std::sync::atomic::Ordering::Relaxed), 0);
}
