//! The stock Kamailio configuration and the benchmark configurations must parse.
//!
//! The files are read from where they are installed (the Debian `kamailio`
//! package for `/etc/kamailio/kamailio.cfg`, the shared bench folder for the
//! others); a test prints a notice and passes when its file is absent.

use std::path::{Path, PathBuf};

use sr_cfg::*;

const STOCK: &str = "/etc/kamailio/kamailio.cfg";
const BENCH_DIR: &str = "/work/shared/bench/kamailio";

fn available(path: &str) -> bool {
    if Path::new(path).exists() {
        true
    } else {
        println!("SKIP: {path} is not installed");
        false
    }
}

fn parse_stock(defines: &[&str]) -> Config {
    let mut opts = ParseOptions::default();
    for d in defines {
        opts = opts.define_arg(d);
    }
    match parse_file(Path::new(STOCK), &opts) {
        Ok(c) => c,
        Err(es) => panic!(
            "stock config with {defines:?} failed:\n{}",
            es.iter()
                .map(|e| e.to_string())
                .collect::<Vec<_>>()
                .join("\n")
        ),
    }
}

fn route_calls(cfg: &Config, kind: RouteKind, name: Option<&str>) -> Vec<String> {
    let r = cfg
        .route(kind, name)
        .unwrap_or_else(|| panic!("missing route {kind:?} {name:?}"));
    let mut out = Vec::new();
    for_each_call(&r.body.stmts, &mut |c| out.push(c.name.clone()));
    out
}

fn modules(cfg: &Config) -> Vec<String> {
    cfg.loadmodules()
        .map(|m| m.module_name().to_string())
        .collect()
}

fn modparam<'a>(cfg: &'a Config, module: &str, param: &str) -> Option<&'a ModParamValue> {
    cfg.modparams()
        .filter(|m| m.module == module && m.param == param)
        .map(|m| &m.value)
        .last()
}

#[test]
fn stock_config_without_defines() {
    if !available(STOCK) {
        return;
    }
    let cfg = parse_stock(&[]);
    assert!(cfg.request_route().is_some());
    for r in [
        "RELAY",
        "REQINIT",
        "WITHINDLG",
        "REGISTRAR",
        "LOCATION",
        "PRESENCE",
        "AUTH",
        "NATDETECT",
        "NATMANAGE",
        "DLGURI",
        "SIPOUT",
        "PSTN",
        "TOVOICEMAIL",
    ] {
        assert!(cfg.route(RouteKind::Sub, Some(r)).is_some(), "route[{r}]");
    }
    assert!(cfg
        .route(RouteKind::Branch, Some("MANAGE_BRANCH"))
        .is_some());
    assert!(cfg
        .route(RouteKind::OnReply, Some("MANAGE_REPLY"))
        .is_some());
    assert!(cfg
        .route(RouteKind::Failure, Some("MANAGE_FAILURE"))
        .is_some());
    assert_eq!(cfg.routes_of(RouteKind::Reply).count(), 1);
    // event_route[xhttp:request] only exists with WITH_JSONRPC
    assert_eq!(cfg.routes_of(RouteKind::Event).count(), 0);

    let mods = modules(&cfg);
    assert!(mods.len() > 10);
    for m in [
        "tm",
        "sl",
        "rr",
        "pv",
        "registrar",
        "usrloc",
        "xlog",
        "sanity",
        "acc",
    ] {
        assert!(mods.iter().any(|x| x == m), "module {m}");
    }
    for m in ["nathelper", "rtpproxy", "pike", "auth", "db_mysql"] {
        assert!(
            !mods.iter().any(|x| x == m),
            "module {m} must not be loaded"
        );
    }
    // MOD_<name> defines follow loadmodule
    assert!(cfg.is_defined("MOD_tm"));
    assert!(!cfg.is_defined("MOD_nathelper"));

    // defines substituted into modparams, adjacent strings joined
    assert_eq!(
        modparam(&cfg, "acc", "log_flag"),
        Some(&ModParamValue::Int(1))
    );
    assert_eq!(
        modparam(&cfg, "usrloc", "use_domain"),
        Some(&ModParamValue::Int(0))
    );
    assert_eq!(
        modparam(&cfg, "acc", "log_extra"),
        Some(&ModParamValue::Str(
            "src_user=$fU;src_domain=$fd;src_ip=$si;dst_ouser=$tU;dst_user=$rU;dst_domain=$rd"
                .into()
        ))
    );
    assert_eq!(modparam(&cfg, "usrloc", "db_url"), None);
    match &cfg.global("debug").map(|g| &g.value) {
        Some(GlobalValue::Int(2)) => {}
        other => panic!("debug = {other:?}"),
    }

    let req = route_calls(&cfg, RouteKind::Request, None);
    for f in [
        "route",
        "t_check_trans",
        "remove_hf",
        "record_route",
        "setflag",
    ] {
        assert!(req.iter().any(|x| x == f), "request_route calls {f}");
    }
    // the default AUTH route only blocks relaying
    let auth = route_calls(&cfg, RouteKind::Sub, Some("AUTH"));
    assert_eq!(auth, vec!["sl_send_reply"]);
    // NAT routes are empty without WITH_NAT
    assert!(cfg
        .route(RouteKind::Sub, Some("NATDETECT"))
        .is_some_and(|r| r.body.stmts.is_empty()
            || route_calls(&cfg, RouteKind::Sub, Some("NATDETECT")).is_empty()));
    // the request route begins with route(REQINIT)
    let r = cfg.request_route().unwrap();
    match &r.body.stmts[0].kind {
        StmtKind::Expr(Expr {
            kind: ExprKind::Call(c),
            ..
        }) => assert_eq!(c.route_target(), Some(RouteTarget::Name("REQINIT".into()))),
        other => panic!("{other:?}"),
    }
    assert_eq!(r.span.line, 503);
}

#[test]
fn stock_config_with_nat() {
    if !available(STOCK) {
        return;
    }
    let cfg = parse_stock(&["WITH_NAT"]);
    let mods = modules(&cfg);
    assert!(mods.contains(&"nathelper".to_string()));
    assert!(mods.contains(&"rtpproxy".to_string()));
    assert!(cfg.is_defined("MOD_nathelper"));
    let nd = route_calls(&cfg, RouteKind::Sub, Some("NATDETECT"));
    assert!(nd.contains(&"nat_uac_test".to_string()));
    assert!(nd.contains(&"fix_nated_register".to_string()));
    let nm = route_calls(&cfg, RouteKind::Sub, Some("NATMANAGE"));
    assert!(nm.contains(&"rtpproxy_manage".to_string()));
    assert_eq!(
        modparam(&cfg, "rtpproxy", "rtpproxy_sock"),
        Some(&ModParamValue::Str("udp:127.0.0.1:7722".into()))
    );
    // WITH_RTPENGINE switches the media relay
    let cfg = parse_stock(&["WITH_NAT", "WITH_RTPENGINE"]);
    let mods = modules(&cfg);
    assert!(mods.contains(&"rtpengine".to_string()));
    assert!(!mods.contains(&"rtpproxy".to_string()));
    let nm = route_calls(&cfg, RouteKind::Sub, Some("NATMANAGE"));
    assert!(nm.contains(&"rtpengine_manage".to_string()));
}

#[test]
fn stock_config_with_antiflood() {
    if !available(STOCK) {
        return;
    }
    let cfg = parse_stock(&["WITH_ANTIFLOOD"]);
    let mods = modules(&cfg);
    assert!(mods.contains(&"pike".to_string()));
    assert!(mods.contains(&"htable".to_string()));
    assert_eq!(
        modparam(&cfg, "htable", "htable"),
        Some(&ModParamValue::Str("ipban=>size=8;autoexpire=300;".into()))
    );
    let ri = route_calls(&cfg, RouteKind::Sub, Some("REQINIT"));
    assert!(ri.contains(&"pike_check_req".to_string()));
    // $sht(ipban=>$si) = 1;
    let mut found = false;
    fn walk(stmts: &[Stmt], found: &mut bool) {
        for s in stmts {
            match &s.kind {
                StmtKind::Assign { target, .. }
                    if target.spec.class == "sht"
                        && target.spec.inner.as_deref() == Some("ipban=>$si") =>
                {
                    *found = true;
                }
                StmtKind::If {
                    then, otherwise, ..
                } => {
                    walk(&then.stmts, found);
                    if let Some(o) = otherwise {
                        walk(&o.stmts, found);
                    }
                }
                StmtKind::Block(b) => walk(&b.stmts, found),
                _ => {}
            }
        }
    }
    walk(
        &cfg.route(RouteKind::Sub, Some("REQINIT"))
            .unwrap()
            .body
            .stmts,
        &mut found,
    );
    assert!(found);
}

#[test]
fn stock_config_with_auth_and_usrlocdb() {
    if !available(STOCK) {
        return;
    }
    let cfg = parse_stock(&["WITH_MYSQL", "WITH_AUTH"]);
    let mods = modules(&cfg);
    for m in ["db_mysql", "auth", "auth_db"] {
        assert!(mods.contains(&m.to_string()), "{m}");
    }
    assert_eq!(
        modparam(&cfg, "auth_db", "db_url"),
        Some(&ModParamValue::Str(
            "mysql://kamailio:kamailiorw@localhost/kamailio".into()
        ))
    );
    assert_eq!(
        modparam(&cfg, "auth_db", "calculate_ha1"),
        Some(&ModParamValue::Int(1))
    );
    let auth = route_calls(&cfg, RouteKind::Sub, Some("AUTH"));
    assert!(auth.contains(&"auth_check".to_string()));
    assert!(auth.contains(&"auth_challenge".to_string()));

    let cfg = parse_stock(&["WITH_MYSQL", "WITH_USRLOCDB"]);
    assert_eq!(
        modparam(&cfg, "usrloc", "db_mode"),
        Some(&ModParamValue::Int(2))
    );
    // -A overrides the #!trydef of DBURL
    let cfg = parse_stock(&["WITH_MYSQL", "WITH_USRLOCDB", "DBURL=\"mysql://u:p@db/k\""]);
    assert_eq!(
        modparam(&cfg, "usrloc", "db_url"),
        Some(&ModParamValue::Str("mysql://u:p@db/k".into()))
    );
}

#[test]
fn stock_config_usrlocdb_without_mysql_fails_like_kamailio() {
    if !available(STOCK) {
        return;
    }
    // DBURL is only defined under WITH_MYSQL, so the bare identifier is a syntax error
    let e = parse_file(
        Path::new(STOCK),
        &ParseOptions::default().define("WITH_USRLOCDB", None),
    )
    .unwrap_err();
    assert_eq!(e.len(), 1);
    assert!(e[0].message.contains("'DBURL'"), "{}", e[0]);
    assert_eq!(e[0].file, PathBuf::from(STOCK));
}

#[test]
fn stock_config_combinations() {
    if !available(STOCK) {
        return;
    }
    let combos: &[&[&str]] = &[
        &["WITH_NAT", "WITH_ANTIFLOOD"],
        &["WITH_NAT", "WITH_NATSIPPING", "WITH_RTPENGINE"],
        &["WITH_DEBUG", "WITH_TLS", "WITH_JSONRPC"],
        &[
            "WITH_PSTN",
            "WITH_VOICEMAIL",
            "WITH_BLOCK3XX",
            "WITH_BLOCK401407",
        ],
        &[
            "WITH_MYSQL",
            "WITH_AUTH",
            "WITH_USRLOCDB",
            "WITH_NAT",
            "WITH_ANTIFLOOD",
        ],
        &[
            "WITH_MYSQL",
            "WITH_AUTH",
            "WITH_IPAUTH",
            "WITH_PRESENCE",
            "WITH_MSGREBUILD",
        ],
        &[
            "WITH_MYSQL",
            "WITH_ALIASDB",
            "WITH_SPEEDDIAL",
            "WITH_MULTIDOMAIN",
            "WITH_ACCDB",
        ],
    ];
    for c in combos {
        let cfg = parse_stock(c);
        assert!(cfg.request_route().is_some());
    }
    // everything at once
    let all = [
        "WITH_ACCDB",
        "WITH_ALIASDB",
        "WITH_ANTIFLOOD",
        "WITH_AUTH",
        "WITH_BLOCK3XX",
        "WITH_BLOCK401407",
        "WITH_DEBUG",
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
    ];
    let cfg = parse_stock(&all);
    assert!(cfg.route(RouteKind::Event, Some("xhttp:request")).is_some());
    assert!(modules(&cfg).len() > 30);
    assert_eq!(
        modparam(&cfg, "usrloc", "use_domain"),
        Some(&ModParamValue::Int(1))
    );
    match &cfg.global("debug").map(|g| &g.value) {
        Some(GlobalValue::Int(3)) => {}
        other => panic!("debug = {other:?}"),
    }
    // the PSTN cfg vars
    assert!(cfg
        .items
        .iter()
        .any(|i| matches!(i, TopItem::CfgVar(v) if v.group == "pstn" && v.name == "gw_ip")));
}

#[test]
fn stock_config_mod_defines_seen_by_an_including_file() {
    if !available(STOCK) {
        return;
    }
    let dir = std::env::temp_dir().join(format!("sr-cfg-stock-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let main = dir.join("wrapper.cfg");
    std::fs::write(
        &main,
        format!(
            "include_file \"{STOCK}\"\n#!ifdef MOD_nathelper\nnat=yes\n#!else\nnat=no\n#!endif\n\
             #!ifdef MOD_tm\ntm=yes\n#!endif\n"
        ),
    )
    .unwrap();
    let get = |defs: &[&str]| {
        let mut o = ParseOptions::default();
        for d in defs {
            o = o.define(d, None);
        }
        let cfg = parse_file(&main, &o).unwrap();
        (
            cfg.global("nat").map(|g| g.value.clone()),
            cfg.global("tm").map(|g| g.value.clone()),
        )
    };
    assert_eq!(
        get(&[]),
        (
            Some(GlobalValue::Bool(false)),
            Some(GlobalValue::Bool(true))
        )
    );
    assert_eq!(get(&["WITH_NAT"]).0, Some(GlobalValue::Bool(true)));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn stock_config_print_reparses() {
    if !available(STOCK) {
        return;
    }
    let opts = ParseOptions::default().define("WITH_NAT", None);
    let text = preprocess_to_string(Path::new(STOCK), &opts).unwrap();
    assert!(!text.contains("#!"));
    assert!(text.contains("modparam(\"acc\", \"log_flag\", 1)"));
    let again = parse_str("printed.cfg", &text, &ParseOptions::default()).unwrap();
    let orig = parse_stock(&["WITH_NAT"]);
    assert_eq!(modules(&again), modules(&orig));
    assert_eq!(again.routes().count(), orig.routes().count());
}

#[test]
fn bench_configs() {
    let files = [
        "stateless.cfg",
        "stateful.cfg",
        "registrar.cfg",
        "registrar-sqlite.cfg",
    ];
    for f in files {
        let path = format!("{BENCH_DIR}/{f}");
        if !available(&path) {
            continue;
        }
        let cfg = parse_file(Path::new(&path), &ParseOptions::default()).unwrap_or_else(|es| {
            panic!(
                "{f}: {:?}",
                es.iter().map(|e| e.to_string()).collect::<Vec<_>>()
            )
        });
        let text = std::fs::read_to_string(&path).unwrap();
        let expected_mods = text
            .lines()
            .filter(|l| l.trim_start().starts_with("loadmodule"))
            .count();
        assert_eq!(cfg.loadmodules().count(), expected_mods, "{f}");
        assert!(cfg.request_route().is_some(), "{f}");
        assert!(cfg.globals().any(|g| g.name == "listen"), "{f}");
        let req = route_calls(&cfg, RouteKind::Request, None);
        assert!(
            req.contains(&"mf_process_maxfwd_header".to_string()) || !req.is_empty(),
            "{f}"
        );
        if f == "stateful.cfg" {
            assert!(req.contains(&"t_relay".to_string()));
            assert!(req.contains(&"loose_route".to_string()));
        }
        if f.starts_with("registrar") {
            assert!(req.contains(&"save".to_string()), "{f}");
        }
    }
}
