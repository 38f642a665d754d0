//! The stock Kamailio configuration (`/etc/kamailio/kamailio.cfg` from
//! Debian's `kamailio` package, installed by `.ci/run`) checked by
//! siprouter: no syntax error with or without the WITH_* defines, and the
//! check reports exactly the modules siprouter lacks and the functions and
//! pseudo-variables of those modules, nothing else.

use sr_cfg::{ExprKind, StmtKind};
use std::collections::{BTreeSet, HashMap};
use std::path::Path;

const STOCK: &str = "/etc/kamailio/kamailio.cfg";

/// Kamailio functions (and PV classes, with `$`) of the modules the stock
/// config loads, by module. Used to tell which module a missing name
/// belongs to.
fn known() -> HashMap<&'static str, &'static str> {
    let table: &[(&str, &[&str])] = &[
        (
            "tm",
            &[
                "t_check_trans",
                "t_is_set",
                "t_on_branch",
                "t_on_reply",
                "t_on_failure",
                "t_relay",
                "t_newtran",
                "t_is_canceled",
                "t_check_status",
                "t_reply",
                "t_release",
                "t_relay_to",
                "t_on_branch_failure",
                "t_reply_error",
                "t_send_reply",
            ],
        ),
        (
            "tmx",
            &[
                "t_precheck_trans",
                "t_is_branch_route",
                "t_is_failure_route",
                "t_is_reply_route",
                "$T_branch_idx",
                "$T_reply_code",
                "$T_reply_reason",
                "$T_req",
                "$T_rpl",
            ],
        ),
        (
            "sl",
            &[
                "sl_send_reply",
                "send_reply",
                "send_reply_error",
                "sl_reply_error",
            ],
        ),
        (
            "rr",
            &[
                "record_route",
                "loose_route",
                "check_route_param",
                "add_rr_param",
                "record_route_preset",
                "is_direction",
            ],
        ),
        ("maxfwd", &["mf_process_maxfwd_header", "is_maxfwd_lt"]),
        ("sanity", &["sanity_check"]),
        (
            "siputils",
            &[
                "has_totag",
                "is_first_hop",
                "is_request",
                "is_reply",
                "is_uri_user_e164",
            ],
        ),
        (
            "textops",
            &[
                "is_method",
                "remove_hf",
                "append_hf",
                "starts_with",
                "is_present_hf",
                "search",
                "subst",
            ],
        ),
        ("textopsx", &["msg_apply_changes", "remove_hf_value"]),
        (
            "kex",
            &[
                "setbflag",
                "isbflagset",
                "resetbflag",
                "setsflag",
                "issflagset",
            ],
        ),
        ("registrar", &["save", "lookup", "registered", "unregister"]),
        (
            "xlog",
            &[
                "xlog", "xdbg", "xalert", "xerr", "xinfo", "xnotice", "xwarn", "xcrit",
            ],
        ),
        (
            "auth",
            &[
                "auth_challenge",
                "consume_credentials",
                "www_challenge",
                "proxy_challenge",
                "has_credentials",
            ],
        ),
        (
            "auth_db",
            &[
                "auth_check",
                "www_authorize",
                "proxy_authorize",
                "www_authenticate",
                "proxy_authenticate",
            ],
        ),
        ("permissions", &["allow_source_address", "allow_trusted"]),
        (
            "nathelper",
            &[
                "nat_uac_test",
                "fix_nated_register",
                "set_contact_alias",
                "handle_ruri_alias",
                "add_contact_alias",
                "fix_nated_contact",
            ],
        ),
        (
            "rtpproxy",
            &["rtpproxy_manage", "rtpproxy_offer", "rtpproxy_answer"],
        ),
        (
            "rtpengine",
            &["rtpengine_manage", "rtpengine_offer", "rtpengine_answer"],
        ),
        ("pike", &["pike_check_req"]),
        ("htable", &["$sht", "sht_rm", "sht_setxi"]),
        ("presence", &["handle_publish", "handle_subscribe"]),
        ("presence_xml", &[]),
        ("speeddial", &["sd_lookup"]),
        ("alias_db", &["alias_db_lookup"]),
        ("xhttp", &["xhttp_reply"]),
        ("jsonrpcs", &["jsonrpc_dispatch", "jsonrpc_exec"]),
        ("dlgs", &["dlgs_init", "dlgs_update"]),
        ("debugger", &["dbg_breakpoint"]),
        (
            "domain",
            &["is_from_local", "is_uri_host_local", "is_domain_local"],
        ),
        ("usrloc", &[]),
        ("acc", &[]),
    ];
    let mut m = HashMap::new();
    for (module, names) in table {
        for n in *names {
            m.insert(*n, *module);
        }
    }
    m
}

/// Collects function names and the PV classes the compiler will resolve:
/// bare PVs anywhere, and PVs inside string arguments of functions that
/// exist (arguments of a missing function are not compiled).
struct Walk<'a> {
    missing: &'a dyn Fn(&str) -> bool,
    calls: BTreeSet<String>,
    pvs: BTreeSet<String>,
}

impl Walk<'_> {
    fn expr(&mut self, e: &sr_cfg::Expr, call_arg: bool) {
        match &e.kind {
            ExprKind::Call(c) => {
                if c.name != "route" {
                    self.calls.insert(c.name.clone());
                }
                if !(self.missing)(&c.name) {
                    c.args.iter().for_each(|a| self.expr(a, true));
                }
            }
            ExprKind::Pv(p) => {
                self.pvs.insert(p.spec.class.clone());
            }
            ExprKind::Str(s) if call_arg => {
                for part in sr_cfg::parse_format(s).unwrap_or_default() {
                    if let sr_cfg::FormatPart::Pv(p) = part {
                        self.pvs.insert(p.spec.class.clone());
                    }
                }
            }
            ExprKind::Unary(_, x)
            | ExprKind::Cast(_, x)
            | ExprKind::Defined(x)
            | ExprKind::Strlen(x)
            | ExprKind::Strempty(x) => self.expr(x, false),
            ExprKind::Binary(_, l, r) => {
                self.expr(l, false);
                self.expr(r, false);
            }
            _ => {}
        }
    }

    fn stmts(&mut self, stmts: &[sr_cfg::Stmt]) {
        for s in stmts {
            match &s.kind {
                StmtKind::Expr(e) => self.expr(e, false),
                StmtKind::Assign { target, value, .. } => {
                    self.pvs.insert(target.spec.class.clone());
                    self.expr(value, false);
                }
                StmtKind::If {
                    cond,
                    then,
                    otherwise,
                } => {
                    self.expr(cond, false);
                    self.stmts(&then.stmts);
                    if let Some(o) = otherwise {
                        self.stmts(&o.stmts);
                    }
                }
                StmtKind::Switch { subject, cases } => {
                    self.expr(subject, false);
                    cases.iter().for_each(|c| self.stmts(&c.body));
                }
                StmtKind::While { cond, body } => {
                    self.expr(cond, false);
                    self.stmts(&body.stmts);
                }
                StmtKind::Return(Some(e)) | StmtKind::Exit(Some(e)) | StmtKind::Drop(Some(e)) => {
                    self.expr(e, false)
                }
                StmtKind::Block(b) => self.stmts(&b.stmts),
                _ => {}
            }
        }
    }
}

fn quoted(line: &str, after: &str) -> Option<String> {
    let rest = &line[line.find(after)? + after.len()..];
    Some(rest[..rest.find('\'')?].to_string())
}

/// Checks the stock file with `defines`; the number of names reported
/// missing (modules, functions, pseudo-variables).
fn check_with(defines: &[&str]) -> usize {
    let mut opts = siprouter::options(STOCK);
    opts.defines = defines.iter().map(|d| (d.to_string(), None)).collect();
    let mut in_tree: BTreeSet<&str> = opts.in_tree.iter().map(|(n, _)| *n).collect();
    // Part of the core rather than a module of its own.
    in_tree.insert("tls");
    let mut popts = sr_cfg::ParseOptions::default();
    for d in defines {
        popts = popts.define(d, None);
    }
    let cfg = sr_cfg::parse_file(Path::new(STOCK), &popts).expect("the stock config parses");
    let missing_modules: BTreeSet<String> = cfg
        .loadmodules()
        .map(|l| l.module_name().to_string())
        .filter(|m| !in_tree.contains(m.as_str()))
        .collect();
    let known = known();
    let is_missing = |f: &str| known.get(f).is_some_and(|m| missing_modules.contains(*m));
    let mut walk = Walk {
        missing: &is_missing,
        calls: BTreeSet::new(),
        pvs: BTreeSet::new(),
    };
    for r in cfg.routes() {
        walk.stmts(&r.body.stmts);
    }
    let (all_calls, all_pvs) = (walk.calls, walk.pvs);
    let expected_fns: BTreeSet<String> = all_calls
        .iter()
        .filter(|c| {
            known
                .get(c.as_str())
                .is_some_and(|m| missing_modules.contains(*m))
        })
        .cloned()
        .collect();
    let expected_pvs: BTreeSet<String> = all_pvs
        .iter()
        .filter(|p| {
            known
                .get(format!("${p}").as_str())
                .is_some_and(|m| missing_modules.contains(*m))
        })
        .cloned()
        .collect();

    let errors = match sr_core::load(&opts, true) {
        Ok(_) => Vec::new(),
        Err(e) => e,
    };
    let (mut got_mods, mut got_fns, mut got_pvs) =
        (BTreeSet::new(), BTreeSet::new(), BTreeSet::new());
    for e in &errors {
        assert!(
            e.starts_with(STOCK),
            "error without the stock file location: {e}"
        );
        if let Some(m) = quoted(e, "module '").filter(|_| e.contains("not found")) {
            got_mods.insert(m);
        } else if let Some(f) = quoted(e, "unknown function '") {
            let module = known.get(f.as_str()).unwrap_or_else(|| panic!("'{f}' is reported missing but is not a known function of a Kamailio module: {e}"));
            assert!(
                missing_modules.contains(*module),
                "'{f}' belongs to {module}, which siprouter has: {e}"
            );
            got_fns.insert(f);
        } else if let Some(p) = quoted(e, "unknown pseudo-variable '$") {
            got_pvs.insert(p);
        } else {
            panic!("unexpected error for defines {defines:?}: {e}");
        }
    }
    assert_eq!(
        got_mods, missing_modules,
        "defines {defines:?}: missing modules"
    );
    assert_eq!(
        got_fns, expected_fns,
        "defines {defines:?}: missing functions"
    );
    assert_eq!(
        got_pvs, expected_pvs,
        "defines {defines:?}: missing pseudo-variables"
    );
    eprintln!(
        "defines {defines:?}: {} missing modules, {} missing functions: {:?}",
        got_mods.len(),
        got_fns.len(),
        got_fns
    );
    got_mods.len() + got_fns.len() + got_pvs.len()
}

#[test]
fn stock_config_reports_only_what_siprouter_lacks() {
    if !Path::new(STOCK).exists() {
        eprintln!("skipped: {STOCK} is not installed (apt-get install kamailio)");
        return;
    }
    check_with(&[]);
    check_with(&["WITH_MYSQL", "WITH_AUTH"]);
    check_with(&["WITH_MYSQL", "WITH_USRLOCDB"]);
    check_with(&["WITH_MYSQL", "WITH_AUTH", "WITH_IPAUTH"]);
    check_with(&["WITH_MYSQL", "WITH_AUTH", "WITH_MULTIDOMAIN"]);
    check_with(&["WITH_MYSQL", "WITH_AUTH", "WITH_ALIASDB", "WITH_SPEEDDIAL"]);
    check_with(&["WITH_NAT"]);
    check_with(&["WITH_ANTIFLOOD"]);
    check_with(&["WITH_TLS"]);
    check_with(&["WITH_NAT", "WITH_RTPENGINE"]);
    check_with(&["WITH_JSONRPC"]);
    check_with(&["WITH_MYSQL", "WITH_PRESENCE"]);
    check_with(&["WITH_DEBUG"]);
    // Every define at once (WITH_RTPENGINE in place of RTPProxy): nothing
    // is missing.
    let all = check_with(&[
        "WITH_ACCDB",
        "WITH_ALIASDB",
        "WITH_ANTIFLOOD",
        "WITH_AUTH",
        "WITH_BLOCK3XX",
        "WITH_BLOCK401407",
        "WITH_DEBUG",
        "WITH_FEATURE",
        "WITH_IPAUTH",
        "WITH_JSONRPC",
        "WITH_MSGREBUILD",
        "WITH_MULTIDOMAIN",
        "WITH_MYSQL",
        "WITH_NAT",
        "WITH_NATSIPPING",
        "WITH_PRESENCE",
        "WITH_PSTN",
        "WITH_RTPENGINE",
        "WITH_SPEEDDIAL",
        "WITH_TLS",
        "WITH_USRLOCDB",
        "WITH_VOICEMAIL",
    ]);
    assert_eq!(
        all, 0,
        "the stock file with every define needs nothing siprouter lacks"
    );
    check_with(&[
        "WITH_MYSQL",
        "WITH_AUTH",
        "WITH_PRESENCE",
        "WITH_MSGREBUILD",
    ]);
    check_with(&[
        "WITH_JSONRPC",
        "WITH_TLS",
        "WITH_MYSQL",
        "WITH_AUTH",
        "WITH_USRLOCDB",
        "WITH_IPAUTH",
        "WITH_NAT",
        "WITH_ANTIFLOOD",
    ]);
}

/// Starts the stock configuration with `defines`, on UDP and TCP at
/// 127.0.0.1:`port` (as `-l` would), for real: modules' mod_init and
/// child_init run.
fn start_stock(defines: &[&str], port: u16) -> sr_core::Server {
    let mut opts = siprouter::options(STOCK);
    opts.defines = defines.iter().map(|d| (d.to_string(), None)).collect();
    opts.overrides.listen = vec![
        format!("udp:127.0.0.1:{port}"),
        format!("tcp:127.0.0.1:{port}"),
    ];
    opts.overrides.children = Some(2);
    let rt = sr_core::load(&opts, false)
        .unwrap_or_else(|e| panic!("the stock config loads with {defines:?}:\n{}", e.join("\n")));
    sr_core::start(&rt).unwrap_or_else(|e| panic!("the stock config starts: {e}"))
}

#[test]
fn the_stock_config_runs_as_a_registrar_and_answers_rpc_over_http() {
    // In CI (which installs kamailio and runs as root) this must run.
    let required = std::env::var("SR_INTEROP_REQUIRED").as_deref() == Ok("1");
    if !Path::new(STOCK).exists() {
        assert!(!required, "{STOCK} is missing");
        eprintln!("skipped: {STOCK} is not installed (apt-get install kamailio)");
        return;
    }
    // jsonrpcs and ctl both load, on the default RPC socket in /run.
    if std::fs::create_dir_all("/run/siprouter").is_err() {
        assert!(!required, "/run/siprouter cannot be created");
        eprintln!("skipped: /run/siprouter cannot be created here (not root)");
        return;
    }
    let port = sr_testkit::free_port();
    let srv = start_stock(&["WITH_JSONRPC"], port);
    let to: std::net::SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let ua = sr_testkit::UdpPeer::new();
    let a = ua.addr();
    let t = std::time::Duration::from_secs(3);
    // Its keepalive answer to OPTIONS, then a registration.
    ua.send(to, &format!("OPTIONS sip:127.0.0.1:{port} SIP/2.0\r\nVia: SIP/2.0/UDP {a};branch=z9hG4bKstk1;rport\r\nMax-Forwards: 70\r\nFrom: <sip:a@127.0.0.1:{port}>;tag=s1\r\nTo: <sip:127.0.0.1:{port}>\r\nCall-ID: stock-1\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n"));
    let r = ua.recv(t).expect("OPTIONS answered");
    assert_eq!(
        (r.status(), r.msg.msg().reason()),
        (Some(200), Some("Keepalive")),
        "{}",
        r.text()
    );
    ua.send(to, &format!("REGISTER sip:127.0.0.1:{port} SIP/2.0\r\nVia: SIP/2.0/UDP {a};branch=z9hG4bKstk2;rport\r\nMax-Forwards: 70\r\nFrom: <sip:alice@127.0.0.1:{port}>;tag=s2\r\nTo: <sip:alice@127.0.0.1:{port}>\r\nCall-ID: stock-2\r\nCSeq: 1 REGISTER\r\nContact: <sip:alice@{a}>\r\nExpires: 300\r\nContent-Length: 0\r\n\r\n"));
    let r = ua.recv(t).expect("REGISTER answered");
    assert_eq!(r.status(), Some(200), "{}", r.text());
    // WITH_JSONRPC: JSON-RPC over HTTP on the SIP TCP socket.
    let mut c = sr_testkit::WsPeer::connect(to);
    let body = r#"{"jsonrpc":"2.0","method":"ul.dump","id":1}"#;
    let (code, text) = c
        .http(
            &format!(
                "POST /RPC HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\n\r\n{body}",
                body.len()
            ),
            t,
        )
        .expect("HTTP answer");
    assert_eq!(code, 200, "{text}");
    assert!(text.contains("alice"), "{text}");
    srv.shutdown();
}

/// The stock file with SQLite in place of MySQL, as docs/migrating.md
/// tells (everything else as shipped), written next to a fresh database
/// `name`: the file and the database's URL.
fn stock_on_sqlite(name: &str) -> (std::path::PathBuf, String) {
    let db = sr_testkit::fresh_db(name);
    let url = format!("sqlite://{}", db.display());
    let text = std::fs::read_to_string(STOCK)
        .unwrap()
        .replace("loadmodule \"db_mysql.so\"", "loadmodule \"db_sqlite.so\"")
        .replace(
            "#!trydef DBURL \"mysql://kamailio:kamailiorw@localhost/kamailio\"",
            &format!("#!trydef DBURL \"{url}\""),
        );
    let cfg = db.with_file_name(format!("{name}.cfg"));
    std::fs::write(&cfg, text).unwrap();
    (cfg, url)
}

/// The stock configuration `cfg` started with `defines` on UDP at `port`.
fn start_stock_file(
    cfg: &std::path::Path,
    defines: &[&str],
    port: u16,
) -> (std::sync::Arc<sr_core::Runtime>, sr_core::Server) {
    let mut opts = siprouter::options(cfg.to_str().unwrap());
    opts.defines = defines.iter().map(|d| (d.to_string(), None)).collect();
    opts.overrides.listen = vec![format!("udp:127.0.0.1:{port}")];
    opts.overrides.children = Some(2);
    let rt = sr_core::load(&opts, false)
        .unwrap_or_else(|e| panic!("the stock config loads:\n{}", e.join("\n")));
    let srv = sr_core::start(&rt).unwrap_or_else(|e| panic!("the stock config starts: {e}"));
    (rt, srv)
}

/// An INVITE for bob from alice at `a`, without credentials.
fn unauthenticated_invite(port: u16, a: std::net::SocketAddr, branch: &str, call: &str) -> String {
    format!("INVITE sip:bob@127.0.0.1:{port} SIP/2.0\r\nVia: SIP/2.0/UDP {a};branch=z9hG4bK{branch};rport\r\nMax-Forwards: 70\r\nFrom: <sip:alice@127.0.0.1:{port}>;tag={call}\r\nTo: <sip:bob@127.0.0.1:{port}>\r\nCall-ID: {call}\r\nCSeq: 1 INVITE\r\nContact: <sip:alice@{a}>\r\nContent-Length: 0\r\n\r\n")
}

#[test]
fn the_stock_config_with_ipauth_lets_known_addresses_call_without_credentials() {
    let required = std::env::var("SR_INTEROP_REQUIRED").as_deref() == Ok("1");
    if !Path::new(STOCK).exists() {
        assert!(!required, "{STOCK} is missing");
        eprintln!("skipped: {STOCK} is not installed (apt-get install kamailio)");
        return;
    }
    let (cfg, url) = stock_on_sqlite("stock-ipauth");
    {
        use sr_sdk::db::{DbConn, DbValue};
        let mut c = sr_mod_db_sqlite::SqliteConn::open(&url, 1000).unwrap();
        c.insert(
            "address",
            &[
                ("grp", DbValue::Int(1)),
                ("ip_addr", DbValue::str("127.0.0.1")),
                ("tag", DbValue::str("lab")),
            ],
        )
        .unwrap();
    }
    let port = sr_testkit::free_port();
    let mut opts = siprouter::options(cfg.to_str().unwrap());
    opts.defines = ["WITH_MYSQL", "WITH_AUTH", "WITH_IPAUTH"]
        .iter()
        .map(|d| (d.to_string(), None))
        .collect();
    opts.overrides.listen = vec![format!("udp:127.0.0.1:{port}")];
    opts.overrides.children = Some(2);
    let rt = sr_core::load(&opts, false)
        .unwrap_or_else(|e| panic!("the stock config loads:\n{}", e.join("\n")));
    let srv = sr_core::start(&rt).unwrap_or_else(|e| panic!("the stock config starts: {e}"));
    let to: std::net::SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let ua = sr_testkit::UdpPeer::new();
    let a = ua.addr();
    let t = std::time::Duration::from_secs(3);
    // 127.0.0.1 is in group 1: no challenge; bob is not registered, so the
    // stock config's location lookup answers 404.
    ua.send(to, &unauthenticated_invite(port, a, "ipa1", "stock-ip-1"));
    let r = ua.recv_final(t).expect("an answer");
    assert_eq!(r.status(), Some(404), "{}", r.text());
    // Without the address row, the same INVITE is challenged.
    srv.shutdown();
    drop(rt);
    {
        use sr_sdk::db::DbConn;
        let mut c = sr_mod_db_sqlite::SqliteConn::open(&url, 1000).unwrap();
        c.delete("address", &[]).unwrap();
    }
    // Started again (on a port of its own) to read the table again.
    let port = sr_testkit::free_port();
    opts.overrides.listen = vec![format!("udp:127.0.0.1:{port}")];
    let to: std::net::SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let rt = sr_core::load(&opts, false).unwrap();
    let srv = sr_core::start(&rt).unwrap();
    ua.send(to, &unauthenticated_invite(port, a, "ipa2", "stock-ip-2"));
    let r = ua.recv_final(t).expect("an answer");
    assert_eq!(r.status(), Some(407), "{}", r.text());
    srv.shutdown();
    let _ = std::fs::remove_file(&cfg);
}

/// An SDP offering audio at `ip`:`port`.
fn stock_sdp(ip: &str, port: u16) -> String {
    format!("v=0\r\no=- 1 1 IN IP4 {ip}\r\ns=-\r\nc=IN IP4 {ip}\r\nt=0 0\r\nm=audio {port} RTP/AVP 0\r\n")
}

#[test]
fn the_stock_config_with_nat_relays_media_through_rtpproxy() {
    let required = std::env::var("SR_INTEROP_REQUIRED").as_deref() == Ok("1");
    if !Path::new(STOCK).exists() {
        assert!(!required, "{STOCK} is missing");
        eprintln!("skipped: {STOCK} is not installed (apt-get install kamailio)");
        return;
    }
    if std::fs::create_dir_all("/run/siprouter").is_err() {
        assert!(!required, "/run/siprouter cannot be created");
        eprintln!("skipped: /run/siprouter cannot be created here (not root)");
        return;
    }
    // The stock configuration's RTPProxy address.
    let Some(rtpp) = sr_testkit::rtpproxy::start(Some(7722)) else {
        return;
    };
    let port = sr_testkit::free_port();
    let srv = start_stock(&["WITH_NAT"], port);
    let to: std::net::SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let t = std::time::Duration::from_secs(3);
    let (alice, bob) = (sr_testkit::UdpPeer::new(), sr_testkit::UdpPeer::new());
    let (a, b) = (alice.addr(), bob.addr());
    // Bob registers from behind a NAT: his Contact is a private address.
    bob.send(to, &format!("REGISTER sip:127.0.0.1:{port} SIP/2.0\r\nVia: SIP/2.0/UDP 10.0.0.7:5060;branch=z9hG4bKnat1;rport\r\nMax-Forwards: 70\r\nFrom: <sip:bob@127.0.0.1:{port}>;tag=n1\r\nTo: <sip:bob@127.0.0.1:{port}>\r\nCall-ID: nat-reg\r\nCSeq: 1 REGISTER\r\nContact: <sip:bob@10.0.0.7:5060>\r\nExpires: 300\r\nContent-Length: 0\r\n\r\n"));
    let r = bob.recv(t).expect("REGISTER answered");
    assert_eq!(r.status(), Some(200), "{}", r.text());
    // Alice, behind a NAT too, calls him with her private media address.
    let offer = stock_sdp("192.168.1.5", 4000);
    alice.send(to, &format!("INVITE sip:bob@127.0.0.1:{port} SIP/2.0\r\nVia: SIP/2.0/UDP 192.168.1.5:5060;branch=z9hG4bKnat2;rport\r\nMax-Forwards: 70\r\nFrom: <sip:alice@127.0.0.1:{port}>;tag=n2\r\nTo: <sip:bob@127.0.0.1:{port}>\r\nCall-ID: nat-call\r\nCSeq: 1 INVITE\r\nContact: <sip:alice@192.168.1.5:5060>\r\nContent-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{offer}", offer.len()));
    let inv = bob
        .recv_method("INVITE", t)
        .expect("INVITE reaches bob's public address");
    let body = String::from_utf8_lossy(inv.msg.msg().body()).into_owned();
    assert!(body.contains("c=IN IP4 127.0.0.1\r\n"), "{body}");
    assert!(
        !body.contains("m=audio 4000 "),
        "the port is RTPProxy's: {body}"
    );
    assert!(body.ends_with("a=nortpproxy:yes\r\n"), "{body}");
    // RTPProxy has the session (created from the INVITE's source address:
    // flag `co` of the stock route, alice's SDP address being private).
    let q = rtpp.command("Q nat-call n2;1");
    assert!(!q.starts_with('E'), "{q}");
    // Bob answers with his private media address: the 200 to alice
    // carries RTPProxy's.
    let ans = stock_sdp("10.0.0.7", 5000);
    let contact = "Contact: <sip:bob@10.0.0.7:5060>".to_string();
    let ok = sr_testkit::answer(
        &inv,
        200,
        "OK",
        "n3",
        &[&contact, "Content-Type: application/sdp"],
    )
    .replace(
        "Content-Length: 0\r\n\r\n",
        &format!("Content-Length: {}\r\n\r\n{ans}", ans.len()),
    );
    bob.send(inv.from, &ok);
    let r = alice.recv_status(200, t).expect("200 relayed to alice");
    let body = String::from_utf8_lossy(r.msg.msg().body()).into_owned();
    assert!(body.contains("c=IN IP4 127.0.0.1\r\n"), "{body}");
    assert!(!body.contains("m=audio 5000 "), "{body}");
    assert!(!rtpp.command("Q nat-call n2;1 n3").starts_with('E'));
    let _ = b;
    // A caller with no NAT calls bob, who is busy: the INVITE got its
    // media relayed for bob's sake (his branch flag, in branch_route),
    // and failure_route deletes the session (the branch flag again).
    let offer = stock_sdp("127.0.0.1", 4100);
    alice.send(to, &format!("INVITE sip:bob@127.0.0.1:{port} SIP/2.0\r\nVia: SIP/2.0/UDP {a};branch=z9hG4bKnat4;rport\r\nMax-Forwards: 70\r\nFrom: <sip:alice@127.0.0.1:{port}>;tag=n4\r\nTo: <sip:bob@127.0.0.1:{port}>\r\nCall-ID: nat-busy\r\nCSeq: 1 INVITE\r\nContact: <sip:alice@{a}>\r\nContent-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{offer}", offer.len()));
    let inv = bob.recv_method("INVITE", t).expect("INVITE reaches bob");
    let body = String::from_utf8_lossy(inv.msg.msg().body()).into_owned();
    assert!(!body.contains("m=audio 4100 "), "relayed for bob: {body}");
    assert!(!rtpp.command("Q nat-busy n4;1").starts_with('E'));
    bob.send(
        inv.from,
        &sr_testkit::answer(&inv, 486, "Busy Here", "n5", &[]),
    );
    let r = alice.recv_final(t).expect("486 relayed");
    assert_eq!(r.status(), Some(486));
    let q = rtpp.command("Q nat-busy n4;1");
    assert!(q.starts_with('E'), "failure_route deleted the session: {q}");
    srv.shutdown();
}

#[test]
fn the_stock_config_with_aliasdb_and_speeddial_routes_aliases_and_short_numbers() {
    let required = std::env::var("SR_INTEROP_REQUIRED").as_deref() == Ok("1");
    if !Path::new(STOCK).exists() {
        assert!(!required, "{STOCK} is missing");
        eprintln!("skipped: {STOCK} is not installed (apt-get install kamailio)");
        return;
    }
    let (cfg, url) = stock_on_sqlite("stock-alias");
    // The targets name the server's port: without one, a URI is 5060, not
    // this server (uri==myself, as Kamailio's), and would be relayed.
    let port = sr_testkit::free_port();
    let here = format!("127.0.0.1:{port}");
    {
        use sr_sdk::db::{DbConn, DbValue};
        let mut c = sr_mod_db_sqlite::SqliteConn::open(&url, 1000).unwrap();
        let s = DbValue::str;
        c.insert(
            "dbaliases",
            &[
                ("alias_username", s("sales")),
                ("alias_domain", s("127.0.0.1")),
                ("username", s("bob")),
                ("domain", s(&here)),
            ],
        )
        .unwrap();
        c.insert(
            "speed_dial",
            &[
                ("username", s("alice")),
                ("domain", s("127.0.0.1")),
                ("sd_username", s("11")),
                ("sd_domain", s("127.0.0.1")),
                ("new_uri", DbValue::str(format!("sip:bob@{here}"))),
            ],
        )
        .unwrap();
    }
    let (_rt, srv) = start_stock_file(
        &cfg,
        &["WITH_MYSQL", "WITH_ALIASDB", "WITH_SPEEDDIAL"],
        port,
    );
    let to: std::net::SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let t = std::time::Duration::from_secs(3);
    let (alice, bob) = (sr_testkit::UdpPeer::new(), sr_testkit::UdpPeer::new());
    let (a, b) = (alice.addr(), bob.addr());
    bob.send(to, &format!("REGISTER sip:127.0.0.1:{port} SIP/2.0\r\nVia: SIP/2.0/UDP {b};branch=z9hG4bKal1;rport\r\nMax-Forwards: 70\r\nFrom: <sip:bob@127.0.0.1:{port}>;tag=b1\r\nTo: <sip:bob@127.0.0.1:{port}>\r\nCall-ID: al-reg\r\nCSeq: 1 REGISTER\r\nContact: <sip:bob@{b}>\r\nExpires: 300\r\nContent-Length: 0\r\n\r\n"));
    assert_eq!(bob.recv(t).expect("REGISTER answered").status(), Some(200));
    // The alias sales reaches bob, and so does alice's short number 11.
    for (n, user) in [(1, "sales"), (2, "11")] {
        alice.send(to, &format!("INVITE sip:{user}@127.0.0.1:{port} SIP/2.0\r\nVia: SIP/2.0/UDP {a};branch=z9hG4bKal{n}x;rport\r\nMax-Forwards: 70\r\nFrom: <sip:alice@127.0.0.1:{port}>;tag=a{n}\r\nTo: <sip:{user}@127.0.0.1:{port}>\r\nCall-ID: al-call-{n}\r\nCSeq: 1 INVITE\r\nContact: <sip:alice@{a}>\r\nContent-Length: 0\r\n\r\n"));
        let inv = bob
            .recv_method("INVITE", t)
            .unwrap_or_else(|| panic!("{user}: the INVITE reaches bob"));
        assert!(
            inv.text().starts_with(&format!("INVITE sip:bob@{b} ")),
            "{}",
            inv.text()
        );
        bob.send(
            inv.from,
            &sr_testkit::answer(&inv, 486, "Busy Here", "bb", &[]),
        );
        assert_eq!(alice.recv_final(t).map(|r| r.status()), Some(Some(486)));
    }
    srv.shutdown();
    let _ = std::fs::remove_file(&cfg);
}

#[test]
fn the_stock_config_with_presence_serves_publish_and_subscribe() {
    let required = std::env::var("SR_INTEROP_REQUIRED").as_deref() == Ok("1");
    if !Path::new(STOCK).exists() {
        assert!(!required, "{STOCK} is missing");
        eprintln!("skipped: {STOCK} is not installed (apt-get install kamailio)");
        return;
    }
    let (cfg, url) = stock_on_sqlite("stock-presence");
    let port = sr_testkit::free_port();
    let (_rt, srv) = start_stock_file(&cfg, &["WITH_MYSQL", "WITH_PRESENCE"], port);
    let to: std::net::SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let t = std::time::Duration::from_secs(3);
    let (alice, bob) = (sr_testkit::UdpPeer::new(), sr_testkit::UdpPeer::new());
    let (a, b) = (alice.addr(), bob.addr());
    let pidf = "<?xml version=\"1.0\"?>\n<presence xmlns=\"urn:ietf:params:xml:ns:pidf\" entity=\"sip:alice@127.0.0.1\">\n<tuple id=\"t1\"><status><basic>open</basic></status></tuple>\n</presence>\n";
    alice.send(to, &format!("PUBLISH sip:alice@127.0.0.1:{port} SIP/2.0\r\nVia: SIP/2.0/UDP {a};branch=z9hG4bKsp1;rport\r\nMax-Forwards: 70\r\nFrom: <sip:alice@127.0.0.1:{port}>;tag=a1\r\nTo: <sip:alice@127.0.0.1:{port}>\r\nCall-ID: sp-pub\r\nCSeq: 1 PUBLISH\r\nEvent: presence\r\nExpires: 600\r\nContent-Type: application/pidf+xml\r\nContent-Length: {}\r\n\r\n{pidf}", pidf.len()));
    let r = alice.recv_final(t).expect("PUBLISH answered");
    assert_eq!(r.status(), Some(200), "{}", r.text());
    assert!(r.header("SIP-ETag").is_some(), "{}", r.text());
    // bob subscribes (record-routed by the stock route, as Kamailio's):
    // 200, then a NOTIFY with alice's document.
    bob.send(to, &format!("SUBSCRIBE sip:alice@127.0.0.1:{port} SIP/2.0\r\nVia: SIP/2.0/UDP {b};branch=z9hG4bKsp2;rport\r\nMax-Forwards: 70\r\nFrom: <sip:bob@127.0.0.1:{port}>;tag=b1\r\nTo: <sip:alice@127.0.0.1:{port}>\r\nCall-ID: sp-sub\r\nCSeq: 1 SUBSCRIBE\r\nContact: <sip:bob@{b}>\r\nEvent: presence\r\nExpires: 300\r\nContent-Length: 0\r\n\r\n"));
    let ok = bob.recv_final(t).expect("SUBSCRIBE answered");
    assert_eq!(ok.status(), Some(200), "{}", ok.text());
    let n = bob.recv_method("NOTIFY", t).expect("a NOTIFY");
    assert_eq!(
        n.header("Subscription-State").as_deref(),
        Some("active;expires=300")
    );
    assert!(n.text().contains("<basic>open</basic>"), "{}", n.text());
    bob.send(n.from, &sr_testkit::answer(&n, 200, "OK", "", &[]));
    // The publication is in Kamailio's presentity table.
    {
        use sr_sdk::db::DbConn;
        let mut c = sr_mod_db_sqlite::SqliteConn::open(&url, 1000).unwrap();
        let rows = c
            .query("presentity", &[], &["username", "event"], None)
            .unwrap();
        assert_eq!(rows.len(), 1);
        assert_eq!(
            rows.get(0, "username").as_string().as_deref(),
            Some("alice")
        );
    }
    srv.shutdown();
    let _ = std::fs::remove_file(&cfg);
}
