//! The config check: each kind of mistake gives its location and a clear
//! message, all at once; `siprouter -c` exits non-zero with them; the stock
//! Kamailio config reports only what siprouter lacks.

use std::path::PathBuf;
use std::process::Command;

fn write_cfg(name: &str, text: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("siprouter-check-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let p = dir.join(format!("{name}.cfg"));
    std::fs::write(&p, text).unwrap();
    p
}

/// Loads a config in check mode and returns the error lines.
fn check(name: &str, text: &str) -> Vec<String> {
    let p = write_cfg(name, text);
    match sr_core::load(&siprouter::options(&p), true) {
        Ok(_) => Vec::new(),
        Err(e) => e,
    }
}

fn one(name: &str, text: &str) -> String {
    let e = check(name, text);
    assert_eq!(e.len(), 1, "expected one error, got {e:#?}");
    e.into_iter().next().unwrap()
}

#[test]
fn unknown_function_names_the_loaded_modules() {
    let e = one(
        "unknown_fn",
        "loadmodule \"sl\"\nrequest_route {\n    t_relayy();\n}\n",
    );
    assert!(e.ends_with("unknown_fn.cfg:3:5: unknown function 't_relayy' (missing loadmodule?); loaded modules: core, sl"), "{e}");
}

#[test]
fn wrong_number_of_parameters() {
    let e = one(
        "arity",
        "loadmodule \"sl\"\nrequest_route {\n  sl_send_reply(\"200\");\n}\n",
    );
    assert!(
        e.contains("arity.cfg:3:3: function 'sl_send_reply' takes 2 parameter(s), 1 given"),
        "{e}"
    );
}

#[test]
fn function_not_allowed_in_the_route_type() {
    let e = one("rtype", "loadmodule \"sl\"\nrequest_route { exit; }\nreply_route {\n  sl_send_reply(\"200\", \"x\");\n}\n");
    assert!(
        e.contains("rtype.cfg:4:3: function 'sl_send_reply' cannot be used in reply_route"),
        "{e}"
    );
    // A sub-route reached only from reply_route is checked as reply_route.
    let e = one("rtype2", "loadmodule \"sl\"\nrequest_route { exit; }\nreply_route { route(R); }\nroute[R] {\n  sl_send_reply(\"200\", \"x\");\n}\n");
    assert!(e.contains("rtype2.cfg:5:3:"), "{e}");
}

#[test]
fn undefined_route_and_duplicate_route() {
    let e = check(
        "routes",
        "request_route {\n  route(NOPE);\n}\nroute[A] { exit; }\nroute[A] { exit; }\n",
    );
    assert_eq!(e.len(), 2, "{e:#?}");
    assert!(
        e.iter()
            .any(|x| x.contains("routes.cfg:2:3: route 'NOPE' is not defined")),
        "{e:#?}"
    );
    assert!(
        e.iter()
            .any(|x| x.contains("routes.cfg:5:7: route[A] is defined twice")),
        "{e:#?}"
    );
}

#[test]
fn unknown_global_and_bad_values() {
    let e = check(
        "globals",
        "childrn=4\nport=99999\nchildren=2\nudp_batch_wait=-1\nudp_batch_wait=500\nrequest_route { exit; }\n",
    );
    assert_eq!(e.len(), 3, "{e:#?}");
    assert!(
        e[0].ends_with("globals.cfg:1:1: unknown core parameter 'childrn'"),
        "{e:#?}"
    );
    assert!(
        e[1].contains("globals.cfg:2:6: port: expected a port number"),
        "{e:#?}"
    );
    assert!(
        e[2].contains("globals.cfg:4:16: udp_batch_wait: expected microseconds from 0 to 100000"),
        "{e:#?}"
    );
}

#[test]
fn modparam_mistakes() {
    let e = check(
        "modparam",
        "loadmodule \"sl\"\nmodparam(\"sl\", \"nosuch\", 1)\nmodparam(\"tm\", \"fr_timer\", 1)\nloadmodule \"no_such_module\"\nmodparam(\"no_such_module\", \"x\", 1)\nrequest_route { exit; }\n",
    );
    assert_eq!(e.len(), 3, "{e:#?}");
    assert!(
        e[0].contains("modparam.cfg:2:16: module 'sl' has no parameter 'nosuch'"),
        "{e:#?}"
    );
    assert!(
        e[1].contains("modparam.cfg:3:10: modparam: no loaded module matches 'tm'"),
        "{e:#?}"
    );
    assert!(
        e[2].contains("modparam.cfg:4:12: module 'no_such_module' not found"),
        "{e:#?}"
    );
}

#[test]
fn unsupported_module_settings_are_found_by_the_check() {
    let e = check(
        "unsupported",
        "loadmodule \"tm\"\nloadmodule \"rr\"\nloadmodule \"dialog\"\nloadmodule \"uac\"\nmodparam(\"dialog\", \"db_mode\", 1)\nmodparam(\"dialog\", \"profiles_with_value\", \"trunk/s\")\nmodparam(\"uac\", \"restore_dlg\", 1)\nmodparam(\"uac\", \"restore_mode\", \"often\")\nrequest_route { exit; }\n",
    );
    assert_eq!(e.len(), 4, "{e:#?}");
    assert!(
        e[0].contains("unsupported.cfg:5:") && e[0].contains("db_mode"),
        "{e:#?}"
    );
    assert!(
        e[1].contains("unsupported.cfg:6:") && e[1].contains("bad profile name <trunk/s>"),
        "{e:#?}"
    );
    assert!(
        e[2].contains("unsupported.cfg:7:") && e[2].contains("restore_dlg"),
        "{e:#?}"
    );
    assert!(
        e[3].contains("unsupported.cfg:8:") && e[3].contains("restore_mode 'often'"),
        "{e:#?}"
    );
}

#[test]
fn pseudo_variable_and_regex_mistakes() {
    let e = check(
        "pv",
        "request_route {\n  $nosuch = 1;\n  $si = \"x\";\n  if ($ru =~ \"(unclosed\") { exit; }\n}\n",
    );
    assert_eq!(e.len(), 3, "{e:#?}");
    assert!(
        e[0].contains("pv.cfg:2:3: unknown pseudo-variable '$nosuch'"),
        "{e:#?}"
    );
    assert!(e[1].contains("pv.cfg:3:3: $si is read-only"), "{e:#?}");
    assert!(
        e[2].contains("pv.cfg:4:14: bad regular expression '(unclosed'"),
        "{e:#?}"
    );
}

#[test]
fn fixup_errors_point_at_the_parameter() {
    let e = one(
        "fixup",
        "loadmodule \"sl\"\nrequest_route {\n  sl_send_reply(\"999\", \"x\");\n}\n",
    );
    assert!(
        e.contains("fixup.cfg:3:17: sl_send_reply(): parameter 1: 999 is not a status code"),
        "{e}"
    );
}

#[test]
fn syntax_errors_come_from_the_parser_with_location() {
    let e = check(
        "syntax",
        "request_route {\n  if ($ru == \"a\" {\n    exit;\n  }\n}\n",
    );
    assert!(!e.is_empty());
    assert!(e[0].contains("syntax.cfg:2:"), "{e:#?}");
}

#[test]
fn binary_check_exits_nonzero_with_messages() {
    let bad = write_cfg(
        "bin_bad",
        "loadmodule \"sl\"\nrequest_route {\n  nosuch();\n}\n",
    );
    let out = Command::new(env!("CARGO_BIN_EXE_siprouter"))
        .args(["-c", "-f"])
        .arg(&bad)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("bin_bad.cfg:3:3: unknown function 'nosuch'"),
        "{err}"
    );
    let good = write_cfg(
        "bin_good",
        "loadmodule \"sl\"\nrequest_route {\n  sl_send_reply(\"200\", \"ok\");\n}\n",
    );
    let out = Command::new(env!("CARGO_BIN_EXE_siprouter"))
        .args(["-c", "-f"])
        .arg(&good)
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = Command::new(env!("CARGO_BIN_EXE_siprouter"))
        .args(["--cfg-print", "-A", "X=1", "-f"])
        .arg(write_cfg(
            "print",
            "#!ifdef X\nchildren=3\n#!endif\nrequest_route { exit; }\n",
        ))
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&out.stdout).contains("children=3"));
}
