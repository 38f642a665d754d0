//! Differential test against Kamailio itself (its tls module, OpenSSL),
//! for what a script sees of a TLS connection: `$tls_version`, the cipher
//! suite's name, bits and description, both certificates' version,
//! serial, subject and issuer (whole and by component), validity, subject
//! alternative names (by index and counted), the PEM and URL-encoded
//! forms, the checks (`$tls_peer_verified`, `_selfsigned`, ...),
//! `$tls_peer_server_name` (SNI) and `is_peer_verified()`. A client with
//! a certificate the CA signed speaks TLS 1.3; one without a certificate
//! speaks TLS 1.2; a request over UDP sees `$null` everywhere. The
//! certificates are made for the test (rcgen), the client is rustls,
//! limited to one version and one cipher suite so that both servers
//! agree on the same.
//!
//! Without Kamailio's tls module installed the test prints a notice and
//! passes, unless `SR_KAMAILIO_REQUIRED=1` (`.ci/run` sets it).

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, IsCa, KeyPair, SanType,
    SerialNumber,
};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName};
use sr_testkit::{free_port, kamailio, UdpPeer};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A certificate and its key, as made for the test.
struct Made {
    der: CertificateDer<'static>,
    pem: String,
    key: KeyPair,
}

fn dn(parts: &[(DnType, &str)]) -> DistinguishedName {
    let mut d = DistinguishedName::new();
    for (t, v) in parts {
        d.push(t.clone(), *v);
    }
    d
}

/// The CA, the server's certificate and the client's, each with a
/// subject of several components, fixed serials and validity; and the
/// server's next certificate (serial 153), for `tls.reload`.
fn certificates() -> (Made, Made, Made, Made) {
    let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.distinguished_name = dn(&[
        (DnType::CountryName, "DE"),
        (DnType::StateOrProvinceName, "Berlin"),
        (DnType::LocalityName, "Berlin"),
        (DnType::OrganizationName, "Example CA"),
        (DnType::OrganizationalUnitName, "PKI"),
        (DnType::CommonName, "Example Root"),
    ]);
    ca.serial_number = Some(SerialNumber::from(vec![0x01]));
    ca.not_before = rcgen::date_time_ymd(2025, 1, 2);
    ca.not_after = rcgen::date_time_ymd(2045, 12, 31);
    let ca_key = KeyPair::generate().unwrap();
    let ca_cert = ca.self_signed(&ca_key).unwrap();

    let mut srv = CertificateParams::new(vec!["sip.example.com".to_string()]).unwrap();
    srv.subject_alt_names
        .push(SanType::IpAddress([127, 0, 0, 1].into()));
    srv.subject_alt_names
        .push(SanType::URI("sip:proxy@example.com".try_into().unwrap()));
    srv.distinguished_name = dn(&[
        (DnType::CountryName, "DE"),
        (DnType::OrganizationName, "Example Proxy"),
        (DnType::CommonName, "sip.example.com"),
    ]);
    srv.serial_number = Some(SerialNumber::from(vec![0x12, 0x34]));
    srv.not_before = rcgen::date_time_ymd(2026, 3, 5);
    srv.not_after = rcgen::date_time_ymd(2036, 3, 5);
    let srv_key = KeyPair::generate().unwrap();
    let srv_cert = srv.clone().signed_by(&srv_key, &ca_cert, &ca_key).unwrap();
    srv.serial_number = Some(SerialNumber::from(vec![0x99]));
    let next_key = KeyPair::generate().unwrap();
    let next_cert = srv.signed_by(&next_key, &ca_cert, &ca_key).unwrap();

    let mut cli = CertificateParams::new(vec!["alice.example.com".to_string()]).unwrap();
    cli.subject_alt_names
        .push(SanType::Rfc822Name("alice@example.com".try_into().unwrap()));
    cli.subject_alt_names
        .push(SanType::URI("sip:alice@example.com".try_into().unwrap()));
    cli.subject_alt_names
        .push(SanType::IpAddress([127, 0, 0, 2].into()));
    cli.subject_alt_names
        .push(SanType::IpAddress(std::net::Ipv6Addr::LOCALHOST.into()));
    cli.distinguished_name = dn(&[
        (DnType::CountryName, "US"),
        (DnType::StateOrProvinceName, "California"),
        (DnType::LocalityName, "San Francisco"),
        (DnType::OrganizationName, "Alice Phones"),
        (DnType::OrganizationalUnitName, "Desk"),
        (DnType::CommonName, "alice"),
        (
            DnType::CustomDnType(vec![0, 9, 2342, 19200300, 100, 1, 1]),
            "alice-uid",
        ),
    ]);
    cli.serial_number = Some(SerialNumber::from(vec![
        0x7f, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09, 0x0a, 0x0b, 0x0c, 0x0d, 0x0e,
        0x0f,
    ]));
    cli.not_before = rcgen::date_time_ymd(2026, 7, 14);
    cli.not_after = rcgen::date_time_ymd(2031, 1, 1);
    let cli_key = KeyPair::generate().unwrap();
    let cli_cert = cli.signed_by(&cli_key, &ca_cert, &ca_key).unwrap();

    let made = |c: rcgen::Certificate, key| Made {
        der: c.der().clone(),
        pem: c.pem(),
        key,
    };
    (
        made(ca_cert, ca_key),
        made(srv_cert, srv_key),
        made(cli_cert, cli_key),
        made(next_cert, next_key),
    )
}

const PVS: &str = r#"request_route {
    if ($hdr(X-C) == $null) { sl_send_reply("200", "up"); exit; }
    append_to_reply("X-S: $tls_version|$tls_cipher_info|$tls_cipher_bits|$tls_peer_server_name\r\n");
    append_to_reply("X-D: $(tls_description{s.trim})\r\n");
    append_to_reply("X-PV: $tls_peer_version|$tls_peer_serial|$tls_peer_verified|$tls_peer_revoked|$tls_peer_expired|$tls_peer_selfsigned|$tls_peer_notBefore|$tls_peer_notAfter\r\n");
    append_to_reply("X-PC: $tls_peer_subject_cn|$tls_peer_subject_locality|$tls_peer_subject_country|$tls_peer_subject_state|$tls_peer_subject_organization|$tls_peer_subject_unit|$tls_peer_subject_uid\r\n");
    append_to_reply("X-PI: $tls_peer_issuer_cn|$tls_peer_issuer_locality|$tls_peer_issuer_country|$tls_peer_issuer_state|$tls_peer_issuer_organization|$tls_peer_issuer_unit\r\n");
    append_to_reply("X-PA: $tls_peer_san_email|$tls_peer_san_hostname|$tls_peer_san_uri|$tls_peer_san_ip\r\n");
    append_to_reply("X-M: $tls_my_version|$tls_my_serial|$tls_my_subject_cn|$tls_my_issuer_organization|$tls_my_san_hostname|$tls_my_san_ip|$tls_my_san_uri\r\n");
    append_to_reply("X-R: $(tls_peer_raw_cert{s.len})|$(tls_peer_raw_cert{s.md5})|$(tls_my_raw_cert{s.md5})|$(tls_peer_urlencoded_cert{s.len})|$(tls_peer_urlencoded_cert{s.md5})|$(tls_my_urlencoded_cert{s.substr,0,40})\r\n");
    if (is_peer_verified()) { $var(v) = "yes"; } else { $var(v) = "no"; }
    append_to_reply("X-V: $var(v) $pr\r\n");
    sl_send_reply("200", "ok");
}
"#;

const HEADERS: [&str; 10] = [
    "X-S", "X-D", "X-PV", "X-PC", "X-PI", "X-PA", "X-M", "X-R", "X-V", "CSeq",
];

fn request(call: &str, via: &str) -> String {
    format!(
        "OPTIONS sip:x@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/{via};branch=z9hG4bK{call}\r\nFrom: <sip:a@b>;tag=1\r\nTo: <sip:x@y>\r\nCall-ID: {call}\r\nCSeq: 1 OPTIONS\r\nX-C: 1\r\nContent-Length: 0\r\n\r\n"
    )
}

/// The headers of `HEADERS` in `reply`, one line each (`name: value`, or
/// `name: -` when absent).
fn pick(call: &str, reply: &str) -> Vec<String> {
    pick_from(call, reply, &HEADERS)
}

/// [`pick`] with other headers.
fn pick_from(call: &str, reply: &str, headers: &[&str]) -> Vec<String> {
    headers
        .iter()
        .map(|h| {
            let v = reply
                .split("\r\n")
                .find_map(|l| l.strip_prefix(&format!("{h}: ")))
                .unwrap_or("-");
            format!("{call} {h}: {v}")
        })
        .collect()
}

/// One OPTIONS over a new TLS connection: rustls limited to `version` and
/// `suite`, presenting `client` when given, asking for `sni`.
fn over_tls(
    addr: SocketAddr,
    ca: &CertificateDer<'static>,
    client: Option<&Made>,
    version: &'static rustls::SupportedProtocolVersion,
    suite: rustls::SupportedCipherSuite,
    sni: ServerName<'static>,
    call: &str,
) -> Vec<String> {
    over_tls_kept(addr, ca, client, version, suite, sni, call, &HEADERS).0
}

/// A TLS client's connection, kept open.
type Kept = rustls::StreamOwned<rustls::ClientConnection, TcpStream>;

/// [`over_tls`], picking `headers`, and the connection, still open.
#[allow(clippy::too_many_arguments)]
fn over_tls_kept(
    addr: SocketAddr,
    ca: &CertificateDer<'static>,
    client: Option<&Made>,
    version: &'static rustls::SupportedProtocolVersion,
    suite: rustls::SupportedCipherSuite,
    sni: ServerName<'static>,
    call: &str,
    headers: &[&str],
) -> (Vec<String>, Kept, SocketAddr) {
    let mut provider = rustls::crypto::ring::default_provider();
    provider.cipher_suites = vec![suite];
    let mut roots = rustls::RootCertStore::empty();
    roots.add(ca.clone()).unwrap();
    let b = rustls::ClientConfig::builder_with_provider(Arc::new(provider))
        .with_protocol_versions(&[version])
        .unwrap()
        .with_root_certificates(roots);
    let cfg = match client {
        Some(m) => b
            .with_client_auth_cert(
                vec![m.der.clone()],
                PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(m.key.serialize_der())),
            )
            .unwrap(),
        None => b.with_no_client_auth(),
    };
    let conn = rustls::ClientConnection::new(Arc::new(cfg), sni).unwrap();
    let sock = TcpStream::connect(addr).expect("connect");
    let local = sock.local_addr().unwrap();
    sock.set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let mut s = rustls::StreamOwned::new(conn, sock);
    s.write_all(request(call, &format!("TLS {local}")).as_bytes())
        .unwrap();
    s.flush().unwrap();
    let mut got = Vec::new();
    let end = Instant::now() + Duration::from_secs(5);
    let mut buf = [0u8; 8192];
    while Instant::now() < end && !got.windows(4).any(|w| w == b"\r\n\r\n") {
        match s.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(e) => panic!("TLS read: {e}"),
        }
    }
    (
        pick_from(call, &String::from_utf8_lossy(&got), headers),
        s,
        local,
    )
}

fn config(dir: &Path, tls_port: u16) -> String {
    format!(
        r#"#!KAMAILIO
children=1
enable_tls=yes
listen=udp:127.0.0.1:__PORT__
listen=tls:127.0.0.1:{tls_port}
mpath="{mpath}"
loadmodule "tls.so"
loadmodule "sl.so"
loadmodule "pv.so"
loadmodule "textops.so"
modparam("tls", "certificate", "{d}/server.pem")
modparam("tls", "private_key", "{d}/server.key")
modparam("tls", "ca_list", "{d}/ca.pem")
modparam("tls", "verify_certificate", 1)
modparam("tls", "require_certificate", 0)
modparam("tls", "tls_method", "TLSv1.2+")
"#,
        mpath = kamailio::MPATH,
        d = dir.display()
    ) + PVS
}

#[test]
fn tls_pseudo_variables_match_kamailio() {
    if !kamailio::available(&["tls", "sl", "pv", "textops"]) {
        return;
    }
    let dir = kamailio::fresh_dir("tls-pv");
    let (ca, srv, cli, _) = certificates();
    std::fs::write(dir.join("ca.pem"), &ca.pem).unwrap();
    std::fs::write(dir.join("server.pem"), &srv.pem).unwrap();
    std::fs::write(dir.join("server.key"), srv.key.serialize_pem()).unwrap();
    let tls_port = free_port();
    let cfg = config(&dir, tls_port);
    let tls_addr: SocketAddr = ([127, 0, 0, 1], tls_port).into();
    let scenario = |udp: SocketAddr| {
        let peer = UdpPeer::new();
        kamailio::wait_until_up(
            &peer,
            udp,
            &kamailio::options("up", ""),
            Some(&dir.join("kamailio.log")),
        );
        let mut out = Vec::new();
        out.extend(over_tls(
            tls_addr,
            &ca.der,
            Some(&cli),
            &rustls::version::TLS13,
            rustls::crypto::ring::cipher_suite::TLS13_AES_256_GCM_SHA384,
            ServerName::try_from("sip.example.com").unwrap(),
            "t13",
        ));
        out.extend(over_tls(
            tls_addr,
            &ca.der,
            None,
            &rustls::version::TLS12,
            rustls::crypto::ring::cipher_suite::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
            ServerName::IpAddress(tls_addr.ip().into()),
            "t12",
        ));
        peer.send(udp, &request("udp", &format!("UDP {}", peer.addr())));
        let r = peer.recv(Duration::from_secs(3)).expect("a reply over UDP");
        out.extend(pick("udp", &String::from_utf8_lossy(r.msg.msg().raw())));
        out
    };
    let (want, got) = kamailio::run_scenario(&dir, &cfg, siprouter::in_tree(), &|| {}, &scenario);
    assert!(
        want.iter().any(|l| l.contains("X-PC: alice|San Francisco")),
        "Kamailio showed no client certificate: {want:#?}"
    );
    kamailio::conclude(&dir, &want, &got, "tls pseudo-variables");
}

/// What Kamailio 5.6 does not have, or gets wrong, on siprouter alone:
/// whole subject and issuer names (5.6 gives `$null`; later versions
/// these lines), subject alternative names counted and by index, and the
/// RPC methods `tls.info`, `tls.list`, `tls.options` and `tls.reload`
/// (a new certificate for the connections made after it).
#[test]
fn names_counts_and_rpc_methods() {
    let dir = kamailio::fresh_dir("tls-own");
    let (ca, srv, cli, next) = certificates();
    std::fs::write(dir.join("ca.pem"), &ca.pem).unwrap();
    std::fs::write(dir.join("server.pem"), &srv.pem).unwrap();
    std::fs::write(dir.join("server.key"), srv.key.serialize_pem()).unwrap();
    let d = dir.display();
    std::fs::write(
        dir.join("tls.cfg"),
        format!("[server:default]\nmethod = TLSv1.2+\nverify_certificate = yes\nrequire_certificate = no\nprivate_key = {d}/server.key\ncertificate = {d}/server.pem\nca_list = {d}/ca.pem\n\n[client:default]\nverify_certificate = no\n"),
    )
    .unwrap();
    let tls_port = free_port();
    let cfg = format!(
        r#"listen=udp:127.0.0.1:{{PORT}}
listen=tls:127.0.0.1:{tls_port}
loadmodule "tls"
loadmodule "sl"
loadmodule "pv"
loadmodule "textops"
modparam("tls", "config", "{d}/tls.cfg")
request_route {{
    append_to_reply("X-N: $tls_peer_subject|$tls_peer_issuer|$tls_my_subject|$tls_my_issuer\r\n");
    append_to_reply("X-K: $tls_peer_san_count(IP)|$(tls_peer_san_ip[1])|$(tls_peer_san_ip[2])|$tls_peer_san_count(EMAIL)|$tls_my_san_count(DNS)|$tls_my_san_count(URI)|$tls_my_serial\r\n");
    sl_send_reply("200", "ok");
}}
"#
    );
    let srv_run = sr_testkit::TestServer::start(&cfg, siprouter::in_tree());
    let tls_addr: SocketAddr = ([127, 0, 0, 1], tls_port).into();
    let hello = |call: &str| {
        over_tls_kept(
            tls_addr,
            &ca.der,
            Some(&cli),
            &rustls::version::TLS13,
            rustls::crypto::ring::cipher_suite::TLS13_AES_256_GCM_SHA384,
            ServerName::try_from("sip.example.com").unwrap(),
            call,
            &["X-N", "X-K"],
        )
    };
    let (lines, kept, local) = hello("n1");
    assert_eq!(
        lines,
        vec![
            "n1 X-N: /C=US/ST=California/L=San Francisco/O=Alice Phones/OU=Desk/CN=alice/UID=alice-uid|/C=DE/ST=Berlin/L=Berlin/O=Example CA/OU=PKI/CN=Example Root|/C=DE/O=Example Proxy/CN=sip.example.com|/C=DE/ST=Berlin/L=Berlin/O=Example CA/OU=PKI/CN=Example Root",
            "n1 X-K: 2|::1|<null>|1|1|1|4660",
        ]
    );
    let info = srv_run.rpc("tls.info", &[]).unwrap();
    assert_eq!(info["opened_connections"], 1, "{info}");
    let list = srv_run.rpc("tls.list", &[]).unwrap();
    let conns = list.as_array().expect("an array");
    assert_eq!(conns.len(), 1, "{list}");
    let c = &conns[0];
    assert_eq!(c["src_port"], local.port(), "{c}");
    assert_eq!(c["dst_port"], tls_port, "{c}");
    assert_eq!(c["state"], "established", "{c}");
    assert!(
        c["cipher"]
            .as_str()
            .is_some_and(|x| x.starts_with("TLS_AES_256_GCM_SHA384 ")),
        "{c}"
    );
    let opts = srv_run.rpc("tls.options", &[]).unwrap();
    assert_eq!(opts["config"], format!("{d}/tls.cfg"), "{opts}");

    // A new certificate, read by tls.reload, for the next connections.
    std::fs::write(dir.join("server.pem"), &next.pem).unwrap();
    std::fs::write(dir.join("server.key"), next.key.serialize_pem()).unwrap();
    assert_eq!(
        srv_run.rpc("tls.reload", &[]).unwrap(),
        sr_sdk::serde_json::Value::Null
    );
    let (lines, _, _) = hello("n2");
    assert_eq!(lines[1], "n2 X-K: 2|::1|<null>|1|1|1|153");
    // A file that is not a certificate: refused, the one in force stays.
    std::fs::write(dir.join("server.pem"), "not a certificate\n").unwrap();
    let e = srv_run.rpc("tls.reload", &[]).unwrap_err();
    assert_eq!(e.code, 500, "{e}");
    let (lines, _, _) = hello("n3");
    assert_eq!(lines[1], "n3 X-K: 2|::1|<null>|1|1|1|153");
    drop(kept);
    drop(srv_run);
    let _ = std::fs::remove_dir_all(&dir);
}
