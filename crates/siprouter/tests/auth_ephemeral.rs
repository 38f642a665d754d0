//! auth_ephemeral on siprouter alone: the `autheph.*` RPC methods change
//! the secrets a running server accepts, and a configuration without a
//! secret is refused at start. (What the functions answer is compared
//! with Kamailio in `kamailio_parity_auth_ephemeral.rs`.)

use sr_mod_auth_ephemeral::creds::{algorithm, password};
use sr_sdk::serde_json::{json, Value};
use sr_testkit::{TestServer, UdpPeer};
use std::time::Duration;

const CFG: &str = r#"listen=udp:127.0.0.1:{PORT}
loadmodule "sl"
loadmodule "pv"
loadmodule "textops"
loadmodule "auth_ephemeral"
modparam("auth_ephemeral", "secret", "old")
modparam("auth_ephemeral", "secret", "new")
request_route {
    autheph_authenticate("$hdr(X-U)", "$hdr(X-P)");
    $var(a) = $rc;
    append_to_reply("X-Rc: $var(a)\r\n");
    sl_send_reply("200", "ok");
}
"#;

/// What `autheph_authenticate` answers for a username signed with
/// `secret`.
fn check(srv: &TestServer, peer: &UdpPeer, secret: &str, n: u32) -> String {
    let later = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        + 600;
    let user = format!("{later}:alice");
    let pass = password(algorithm(0).unwrap(), secret.as_bytes(), user.as_bytes());
    let req = format!(
        "MESSAGE sip:x@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP {};branch=z9hG4bKeph{n}\r\nFrom: <sip:alice@b>;tag=1\r\nTo: <sip:x@y>\r\nCall-ID: eph-rpc-{n}\r\nCSeq: 1 MESSAGE\r\nX-U: {user}\r\nX-P: {pass}\r\nContent-Length: 0\r\n\r\n",
        peer.addr()
    );
    peer.send(srv.addr(), &req);
    let r = peer.recv(Duration::from_secs(3)).expect("a reply");
    r.header("X-Rc").unwrap_or_default()
}

#[test]
fn secrets_change_over_rpc() {
    let srv = TestServer::start(CFG, siprouter::in_tree());
    let peer = UdpPeer::new();
    assert_eq!(
        srv.rpc("autheph.dump_secrets", &[]).unwrap(),
        json!(["ID 0: new", "ID 1: old"])
    );
    assert_eq!(check(&srv, &peer, "old", 1), "1");
    assert_eq!(check(&srv, &peer, "third", 2), "-1");
    assert_eq!(
        srv.rpc("autheph.add_secret", &[json!("third")]).unwrap(),
        Value::Null
    );
    assert_eq!(check(&srv, &peer, "third", 3), "1");
    srv.rpc("autheph.rm_secret", &[json!(2)]).unwrap();
    assert_eq!(
        srv.rpc("autheph.dump_secrets", &[]).unwrap(),
        json!(["ID 0: third", "ID 1: new"])
    );
    assert_eq!(check(&srv, &peer, "old", 4), "-1");
    let e = srv.rpc("autheph.rm_secret", &[json!(7)]).unwrap_err();
    assert_eq!(e.code, 500);
    let e = srv.rpc("autheph.add_secret", &[]).unwrap_err();
    assert_eq!(e.code, 500);
}

#[test]
fn a_configuration_without_a_secret_is_refused() {
    let cfg = "listen=udp:127.0.0.1:{PORT}\nloadmodule \"sl\"\nloadmodule \"auth_ephemeral\"\nrequest_route { sl_send_reply(\"200\", \"ok\"); }\n";
    let errors = match TestServer::try_start(cfg, siprouter::in_tree()) {
        Ok(_) => panic!("started without a secret"),
        Err(e) => e,
    };
    assert!(
        errors.iter().any(|e| e.contains("secret modparam not set")),
        "{errors:?}"
    );
}
