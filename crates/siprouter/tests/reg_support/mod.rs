//! Shared by the registrar and auth end-to-end tests: a registering test
//! UA, digest answers, and SQLite files made with `siprouter db`.
#![allow(dead_code)]

use sr_mod_auth::digest::{ha1, response, Alg, ResponseInput};
use sr_sdk::sip_msg::headers::AuthValue;
use sr_testkit::{Reply, UdpPeer};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

/// How long to wait for a reply.
pub const T: Duration = Duration::from_secs(3);

/// A folder of the test's own (kept across server restarts) with an
/// initialised SQLite database; returns (folder, db_url).
pub fn db_dir(name: &str) -> (PathBuf, String) {
    let dir = std::env::temp_dir().join(format!(
        "sr-reg-{name}-{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos())
    ));
    std::fs::create_dir_all(&dir).expect("mkdir");
    let url = format!("sqlite://{}/sr.db", dir.display());
    db(&url, "init", &[]);
    (dir, url)
}

/// Runs a `siprouter db` command on `url`.
pub fn db(url: &str, cmd: &str, args: &[&str]) -> String {
    let mut c = sr_mod_db_sqlite::driver().open(url).expect("open db");
    let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
    siprouter::db_cmd::command(c.as_mut(), cmd, &args).expect("db command")
}

/// A UA that registers `user@example.com`.
pub struct Ua {
    /// Its socket.
    pub peer: UdpPeer,
    /// User part.
    pub user: String,
    /// Call-ID of its registrations.
    pub call_id: String,
    cseq: std::cell::Cell<u32>,
}

/// A challenge's fields.
pub struct Challenge {
    /// realm
    pub realm: String,
    /// nonce
    pub nonce: String,
    /// qop offered
    pub qop: Option<String>,
    /// algorithm
    pub alg: Alg,
    /// stale=true
    pub stale: bool,
}

/// Parses the challenge of a 401/407.
pub fn challenge_of(r: &Reply) -> Challenge {
    let h = r
        .header("WWW-Authenticate")
        .or_else(|| r.header("Proxy-Authenticate"))
        .unwrap_or_else(|| panic!("no challenge in {}", r.text()));
    let v = AuthValue::parse(&h, "WWW-Authenticate").expect("challenge");
    Challenge {
        realm: v.get("realm").unwrap().into_owned(),
        nonce: v.get("nonce").unwrap().into_owned(),
        qop: v.get("qop").map(|q| q.into_owned()),
        alg: v
            .get("algorithm")
            .and_then(|a| Alg::parse(&a))
            .unwrap_or(Alg::Md5),
        stale: v
            .get("stale")
            .is_some_and(|s| s.eq_ignore_ascii_case("true")),
    }
}

/// The Authorization value answering `c` with a password and nc.
pub fn answer(user: &str, pass: &str, method: &str, uri: &str, c: &Challenge, nc: u32) -> String {
    let h = ha1(c.alg, user, &c.realm, pass);
    let ncs = format!("{nc:08x}");
    let qop = if c.qop.is_some() { "auth" } else { "" };
    let r = response(
        c.alg,
        &h,
        &ResponseInput {
            nonce: &c.nonce,
            nc: &ncs,
            cnonce: "0a4f113b",
            qop,
            method,
            uri,
        },
    );
    let mut s = format!(
        "Digest username=\"{user}\", realm=\"{}\", nonce=\"{}\", uri=\"{uri}\", response=\"{r}\", algorithm={}",
        c.realm,
        c.nonce,
        c.alg.name()
    );
    if !qop.is_empty() {
        s.push_str(&format!(", qop=auth, nc={ncs}, cnonce=\"0a4f113b\""));
    }
    s
}

impl Ua {
    /// A UA for `user@example.com` on a fresh socket.
    pub fn new(user: &str) -> Ua {
        Ua {
            peer: UdpPeer::new(),
            user: user.to_string(),
            call_id: format!("reg-{user}-{}", std::process::id()),
            cseq: std::cell::Cell::new(0),
        }
    }

    /// Its contact URI.
    pub fn contact(&self) -> String {
        format!("sip:{}@{}", self.user, self.peer.addr())
    }

    /// Sends a REGISTER with these extra header lines (Contact, Expires,
    /// Authorization...) and the next CSeq; returns the final reply.
    pub fn register(&self, srv: SocketAddr, extra: &[String]) -> Reply {
        let n = self.cseq.get() + 1;
        self.register_cseq(srv, extra, n)
    }

    /// Like [`Ua::register`] with a given CSeq.
    pub fn register_cseq(&self, srv: SocketAddr, extra: &[String], cseq: u32) -> Reply {
        self.cseq.set(cseq.max(self.cseq.get()));
        let mut s = format!(
            "REGISTER sip:example.com SIP/2.0\r\nVia: SIP/2.0/UDP {a};branch=z9hG4bK-{c}-{cseq}-{r};rport\r\nMax-Forwards: 70\r\nFrom: <sip:{u}@example.com>;tag=ft{cseq}\r\nTo: <sip:{u}@example.com>\r\nCall-ID: {c}\r\nCSeq: {cseq} REGISTER\r\n",
            a = self.peer.addr(),
            c = self.call_id,
            u = self.user,
            r = rand_tag(),
        );
        for e in extra {
            s.push_str(e);
            s.push_str("\r\n");
        }
        s.push_str("Content-Length: 0\r\n\r\n");
        self.peer.send(srv, &s);
        self.peer
            .recv_final(T)
            .unwrap_or_else(|| panic!("no reply to REGISTER {cseq}"))
    }

    /// Registers its own contact for `expires` seconds, answering a digest
    /// challenge with `pass` if one comes. Returns the final reply.
    pub fn register_auth(&self, srv: SocketAddr, pass: &str, expires: u32) -> Reply {
        let base = vec![
            format!("Contact: <{}>", self.contact()),
            format!("Expires: {expires}"),
        ];
        let r = self.register(srv, &base);
        if r.status() != Some(401) {
            return r;
        }
        let c = challenge_of(&r);
        let mut h = base.clone();
        h.push(format!(
            "Authorization: {}",
            answer(&self.user, pass, "REGISTER", "sip:example.com", &c, 1)
        ));
        self.register(srv, &h)
    }
}

fn rand_tag() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    N.fetch_add(1, Ordering::Relaxed)
}

/// The Contact values of a reply, as written.
pub fn contacts(r: &Reply) -> Vec<String> {
    r.msg
        .msg()
        .values(sr_sdk::sip_msg::HeaderName::Contact)
        .map(|s| s.trim().to_string())
        .collect()
}

/// The `expires` of the contact with this URI in a 200 OK.
pub fn expires_of(r: &Reply, uri: &str) -> Option<u32> {
    contacts(r)
        .iter()
        .find(|c| c.contains(&format!("<{uri}>")))
        .and_then(|c| c.split("expires=").nth(1))
        .and_then(|e| e.split(';').next())
        .and_then(|e| e.trim().parse().ok())
}
