//! End-to-end: modules built outside the tree, loaded at run time.
//!
//! The C template (`examples/modules/c_template`) is built here with its
//! Makefile (needs `make` and `cc`); the Rust template
//! (`examples/modules/rust_template`, a cdylib) is a dev-dependency, so
//! cargo has built `libmymod.so` next to this test binary before it runs.
//! Each test copies or builds its own library file, so that tests running
//! in parallel never share one loaded library.
//!
//! Both modules export the same functions, parameter and statistics, so
//! the same config drives either.

use sr_sdk::serde_json::json;
use sr_testkit::{req, TestServer, UdpPeer};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

const T: Duration = Duration::from_secs(3);

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// A fresh folder for one test's libraries.
fn scratch(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!(
        "sr-extmod-{}-{name}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos())
    ));
    std::fs::create_dir_all(&d).expect("scratch dir");
    d
}

/// Builds the C template into `out` with extra compiler flags.
fn build_c(out: &Path, extra_cflags: &str) -> PathBuf {
    if let Some(parent) = out.parent() {
        std::fs::create_dir_all(parent).expect("dir");
    }
    let o = Command::new("make")
        .arg("-s")
        .arg("-C")
        .arg(workspace().join("examples/modules/c_template"))
        .arg(format!("OUT={}", out.display()))
        .arg(format!("EXTRA_CFLAGS={extra_cflags} -Werror"))
        .output()
        .expect("run make (the C template needs make and cc)");
    assert!(
        o.status.success(),
        "building the C template failed:\n{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    out.to_path_buf()
}

/// Compiles a one-file C module with `cc`.
fn build_c_source(dir: &Path, name: &str, source: &str, cflags: &[&str]) -> PathBuf {
    let src = dir.join(format!("{name}.c"));
    std::fs::write(&src, source).expect("write source");
    let out = dir.join(format!("{name}.so"));
    let o = Command::new("cc")
        .args(["-shared", "-fPIC", "-Wall", "-Werror", "-I"])
        .arg(workspace().join("include/siprouter"))
        .args(cflags)
        .arg("-o")
        .arg(&out)
        .arg(&src)
        .output()
        .expect("run cc");
    assert!(
        o.status.success(),
        "cc failed:\n{}",
        String::from_utf8_lossy(&o.stderr)
    );
    out
}

/// The Rust template as built by cargo, copied to `out`.
fn rust_module(out: &Path) -> PathBuf {
    let exe = std::env::current_exe().expect("test binary path");
    let dirs: Vec<PathBuf> = exe
        .ancestors()
        .skip(1)
        .take(2)
        .map(Path::to_path_buf)
        .collect();
    let built = dirs
        .iter()
        .filter_map(|d| std::fs::read_dir(d).ok())
        .flatten()
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("libmymod") && n.ends_with(".so"))
        })
        .max_by_key(|p| std::fs::metadata(p).and_then(|m| m.modified()).ok())
        .expect("libmymod.so built by cargo (mymod-rust is a dev-dependency)");
    if let Some(parent) = out.parent() {
        std::fs::create_dir_all(parent).expect("dir");
    }
    std::fs::copy(&built, out).expect("copy libmymod.so");
    out.to_path_buf()
}

fn start(cfg: &str) -> Result<TestServer, Vec<String>> {
    TestServer::try_start_with(cfg, siprouter::options(""))
}

/// The config both templates run: `{LOAD}` is the loadmodule line.
fn config(load: &str, uas_port: u16, extra_route: &str) -> String {
    format!(
        r#"
listen=udp:127.0.0.1:{{PORT}}
children=2
loadmodule "sl"
{load}
modparam("mymod", "greeting", "hi there")

request_route {{
    {extra_route}
    if ($rU == "reply") {{
        mymod_reply("202", "Greeted");
        sl_send_reply("500", "Not Stopped");
        exit;
    }}
    if ($rU =~ "^fwd") {{
        mymod_greet("X-Greeting");
        $du = "sip:127.0.0.1:{uas_port}";
        forward();
        exit;
    }}
    if (mymod_check("al")) {{
        sl_send_reply("200", "Prefix OK");
        exit;
    }}
    sl_send_reply("404", "No Prefix");
}}
"#
    )
}

fn request(uac: &UdpPeer, user: &str, call: &str) -> String {
    req(
        "OPTIONS",
        &format!("sip:{user}@example.com"),
        uac.addr(),
        call,
        call,
        1,
        &[],
        "",
    )
}

fn statistic(srv: &TestServer, name: &str) -> Option<i64> {
    let lines = srv
        .rpc("stats.get_statistics", &[json!("mymod:")])
        .expect("stats.get_statistics");
    lines.as_array()?.iter().find_map(|l| {
        let l = l.as_str()?;
        let (n, v) = l.split_once(" = ")?;
        (n == format!("mymod:{name}")).then(|| v.trim().parse().ok())?
    })
}

/// Drives a loaded template: the function's result and effect on the
/// reply and the forwarded request, the parameter, the statistics.
fn exercise(srv: &TestServer, uas: &UdpPeer) {
    let uac = UdpPeer::new();
    let ask = |user: &str, call: &str| {
        uac.send(srv.addr(), &request(&uac, user, call));
        uac.recv_final(T).expect("a reply")
    };
    assert_eq!(ask("alice", "c1").status(), Some(200), "prefix matches");
    assert_eq!(
        ask("bob", "c2").status(),
        Some(404),
        "prefix does not match"
    );
    assert_eq!(ask("albert", "c3").status(), Some(200));

    let r = ask("reply", "c4");
    assert_eq!(r.status(), Some(202), "{}", r.text());
    assert_eq!(
        r.header("X-Greeting").as_deref(),
        Some("hi there"),
        "{}",
        r.text()
    );

    uac.send(srv.addr(), &request(&uac, "fwd1", "c5"));
    let got = uas.recv(T).expect("the UAS got the request");
    assert_eq!(
        got.header("X-Greeting").as_deref(),
        Some("hi there"),
        "{}",
        got.text()
    );

    assert_eq!(statistic(srv, "checks"), Some(3), "mymod_check ran 3 times");
    let ranks = statistic(srv, "ranks").expect("mymod:ranks");
    // PROC_INIT, two workers, the timer, PROC_MAIN at least.
    assert!(ranks >= 5, "child_init ran for every rank: {ranks}");
}

/// Starts a server with the module loaded by `load` and exercises it
/// (see [`exercise`]); `what` names the case when it does not start.
fn start_and_exercise(load: &str, what: &str) {
    let uas = UdpPeer::new();
    let srv = start(&config(load, uas.addr().port(), "")).expect(what);
    exercise(&srv, &uas);
}

#[test]
fn c_template_loads_by_path_and_works() {
    let dir = scratch("c-path");
    let so = build_c(&dir.join("mymod.so"), "");
    start_and_exercise(&format!("loadmodule \"{}\"", so.display()), "server starts");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn rust_template_loads_by_path_and_works() {
    let dir = scratch("rust-path");
    let so = rust_module(&dir.join("libmymod.so"));
    start_and_exercise(&format!("loadmodule \"{}\"", so.display()), "server starts");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn modules_are_found_by_name_on_mpath() {
    let dir = scratch("mpath");
    // <dir>/c/mymod.so, found as "mymod"
    build_c(&dir.join("c/mymod.so"), "");
    start_and_exercise(
        &format!("mpath=\"{}/c\"\nloadmodule \"mymod\"", dir.display()),
        "C module by name",
    );
    // <dir>/rs/mymod/mymod.so, found as "mymod.so" through loadpath
    rust_module(&dir.join("rs/mymod/mymod.so"));
    start_and_exercise(
        &format!("loadpath \"{}/rs\"\nloadmodule \"mymod.so\"", dir.display()),
        "Rust module by name",
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_panicking_rust_function_is_an_error_return_and_the_server_goes_on() {
    let dir = scratch("panic");
    let so = rust_module(&dir.join("libmymod.so"));
    let uas = UdpPeer::new();
    let load = format!("loadmodule \"{}\"", so.display());
    let boom = r#"if ($rU == "boom") {
        if (!mymod_panic()) { sl_send_reply("500", "Module Failed"); }
        exit;
    }"#;
    let srv = start(&config(&load, uas.addr().port(), boom)).expect("server starts");
    let uac = UdpPeer::new();
    for i in 0..3 {
        uac.send(srv.addr(), &request(&uac, "boom", &format!("b{i}")));
        let r = uac.recv_final(T).expect("a reply after the panic");
        assert_eq!(r.status(), Some(500), "{}", r.text());
    }
    exercise(&srv, &uas);
    drop(srv);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_module_built_for_another_abi_is_refused() {
    let dir = scratch("abi");
    let so = build_c(
        &dir.join("mymod.so"),
        "-DSR_ABI_MAJOR=2 -DSR_CORE_VERSION='\"siprouter 2.0.0\"'",
    );
    let load = format!("loadmodule \"{}\"", so.display());
    let e = start(&config(&load, 9, ""))
        .err()
        .expect("refused")
        .join("\n");
    assert!(e.contains("mymod"), "{e}");
    assert!(e.contains("built for siprouter 2.0.0"), "{e}");
    assert!(
        e.contains(&format!("this is {}", sr_abi::CORE_VERSION)),
        "{e}"
    );
    assert!(
        e.contains("module ABI 2.0") && e.contains("module ABI 1.0"),
        "{e}"
    );
    assert!(e.contains("sr_module.h"), "{e}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_kamailio_module_is_refused_without_running_it() {
    let kdir = Path::new("/usr/lib/x86_64-linux-gnu/kamailio/modules");
    let in_tree: Vec<&str> = siprouter::in_tree().iter().map(|(n, _)| *n).collect();
    let Some(so) = std::fs::read_dir(kdir).ok().and_then(|rd| {
        rd.flatten().map(|e| e.path()).find(|p| {
            p.file_stem()
                .and_then(|s| s.to_str())
                .is_some_and(|s| !in_tree.contains(&s))
        })
    }) else {
        eprintln!(
            "no Kamailio modules in {} (apt-get install kamailio)",
            kdir.display()
        );
        return;
    };
    let load = format!("loadmodule \"{}\"", so.display());
    let e = start(&config(&load, 9, ""))
        .err()
        .expect("refused")
        .join("\n");
    assert!(e.contains("was built for kamailio 5."), "{e}");
    assert!(
        e.contains(&format!("this is {}", sr_abi::CORE_VERSION)),
        "{e}"
    );
    assert!(e.contains("include/siprouter/sr_module.h"), "{e}");
}

#[test]
fn a_function_outside_its_route_types_fails_the_config_check() {
    let dir = scratch("route");
    let so = build_c(&dir.join("mymod.so"), "");
    let cfg = format!(
        "listen=udp:127.0.0.1:{{PORT}}\nloadmodule \"sl\"\nloadmodule \"{}\"\n\nrequest_route {{\n    exit;\n}}\n\nreply_route {{\n    mymod_check(\"al\");\n}}\n",
        so.display()
    );
    let e = start(&cfg).err().expect("refused").join("\n");
    assert!(e.contains("test.cfg:10:5:"), "{e}");
    assert!(
        e.contains("mymod_check") && e.contains("cannot be used"),
        "{e}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_failing_fixup_fails_the_config_check() {
    let dir = scratch("fixup");
    for so in [
        build_c(&dir.join("c.so"), ""),
        rust_module(&dir.join("libmymod.so")),
    ] {
        let load = format!("loadmodule \"{}\"", so.display());
        let e = start(&config(&load, 9, "mymod_reply(\"99\", \"Nope\");"))
            .err()
            .expect("refused")
            .join("\n");
        assert!(e.contains("test.cfg:") && e.contains("reply code"), "{e}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_failing_mod_init_stops_startup_naming_the_module() {
    let dir = scratch("init");
    for so in [
        build_c(&dir.join("c.so"), ""),
        rust_module(&dir.join("libmymod.so")),
    ] {
        let cfg = format!(
            "listen=udp:127.0.0.1:{{PORT}}\nloadmodule \"{}\"\nmodparam(\"mymod\", \"greeting\", \"\")\nrequest_route {{ exit; }}\n",
            so.display()
        );
        let e = start(&cfg).err().expect("refused").join("\n");
        assert!(e.contains("module mymod: mod_init failed"), "{e}");
        assert!(e.contains("greeting parameter must not be empty"), "{e}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// A module written with the seed's 5-field `cmd_export_t`, a
/// 3-parameter function, a PARAM_INT, a PARAM_STR and a setter parameter.
const SEED_MODULE: &str = r#"
#include "sr_module.h"
MODULE_VERSION
static int code = 200;
static str reason = {"Seed", 4};
static int calls;
static int set_note(modparam_t type, void *val) {
    (void)val;
    return type == PARAM_STRING ? 0 : -1;
}
static int seed_reply(struct sip_msg *msg, char *a, char *b) {
    (void)a; (void)b;
    calls++;
    sr_msg_append_to_reply(msg, "X-Seed: 1\r\n");
    return sr_send_reply(msg, code, reason.s) > 0 ? 0 : -1;
}
static int seed_three(struct sip_msg *msg, char *a, char *b, char *c) {
    char line[64];
    snprintf(line, sizeof(line), "X-Three: %s %s %s\r\n", a, b, c);
    sr_msg_append_to_reply(msg, line);
    return 1;
}
static cmd_export_t cmds[] = {
    {"seed_reply", seed_reply, 0, 0, REQUEST_ROUTE},
    {"seed_three", (cmd_function)seed_three, 3, 0, REQUEST_ROUTE},
    {0, 0, 0, 0, 0}
};
static param_export_t params[] = {
    {"code", PARAM_INT, &code},
    {"reason", PARAM_STR, &reason},
    {"note", PARAM_STRING | PARAM_USE_FUNC, (void *)set_note},
    {0, 0, 0}
};
struct module_exports exports = {"seedmod", cmds, params, 0, 0, 0, 0, 0};
"#;

#[test]
fn the_seeds_cmd_export_layout_and_parameter_kinds_work() {
    let dir = scratch("seed");
    let so = build_c_source(&dir, "seedmod", SEED_MODULE, &["-DSR_MODULE_SEED_CMDS"]);
    let cfg = format!(
        "listen=udp:127.0.0.1:{{PORT}}\nloadmodule \"sl\"\nloadmodule \"{}\"\nmodparam(\"seedmod\", \"code\", 299)\nmodparam(\"seedmod\", \"reason\", \"Seeded\")\nmodparam(\"seedmod\", \"note\", \"a\")\nmodparam(\"seedmod\", \"note\", \"b\")\nrequest_route {{\n    seed_three(\"a\", \"b\", \"c\");\n    seed_reply();\n    sl_send_reply(\"500\", \"Not Stopped\");\n}}\n",
        so.display()
    );
    let srv = start(&cfg).expect("server starts");
    let uac = UdpPeer::new();
    uac.send(srv.addr(), &request(&uac, "x", "s1"));
    let r = uac.recv_final(T).expect("a reply");
    assert_eq!(r.status(), Some(299), "{}", r.text());
    assert!(r.text().contains("299 Seeded"), "{}", r.text());
    assert_eq!(r.header("X-Seed").as_deref(), Some("1"));
    assert_eq!(
        r.header("X-Three").as_deref(),
        Some("a b c"),
        "3 parameters"
    );
    drop(srv);
    // A wrong modparam type is a config error.
    let bad = format!(
        "listen=udp:127.0.0.1:{{PORT}}\nloadmodule \"{}\"\nmodparam(\"seedmod\", \"code\", \"abc\")\nrequest_route {{ exit; }}\n",
        so.display()
    );
    let e = start(&bad).err().expect("refused").join("\n");
    assert!(e.contains("test.cfg:3:") && e.contains("integer"), "{e}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn something_that_is_not_a_module_is_refused() {
    let dir = scratch("junk");
    let so = build_c_source(
        &dir,
        "plain",
        "int plain_function(void) { return 1; }\n",
        &[],
    );
    let load = format!("loadmodule \"{}\"", so.display());
    let e = start(&config(&load, 9, ""))
        .err()
        .expect("refused")
        .join("\n");
    assert!(e.contains("is not a siprouter module"), "{e}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// A C module with only a reply hook and a computed statistic.
const REPLY_MODULE: &str = r#"
#include "sr_module.h"
MODULE_VERSION
static long replies;
static long seen(void) { return __atomic_load_n(&replies, __ATOMIC_RELAXED); }
static int on_reply(struct sip_msg *msg) {
    str v;
    if (!sr_msg_is_request(msg) && sr_msg_get_status(msg) == 200
            && sr_msg_get_header(msg, "X-Count-Me", 0, &v) == 0 && v.len == 3)
        __atomic_fetch_add(&replies, 1, __ATOMIC_RELAXED);
    return 1; /* not consumed: forwarded on */
}
static stat_export_t stats[] = {
    {"replies", STAT_IS_FUNC, (stat_var **)seen},
    {0, 0, 0}
};
struct module_exports exports = {"replymod", 0, 0, stats, 0, on_reply, 0, 0};
"#;

#[test]
fn the_response_function_sees_received_replies() {
    let dir = scratch("reply");
    let so = build_c_source(&dir, "replymod", REPLY_MODULE, &[]);
    let uas = UdpPeer::new();
    let cfg = format!(
        "listen=udp:127.0.0.1:{{PORT}}\nloadmodule \"{}\"\nrequest_route {{\n    $du = \"sip:127.0.0.1:{}\";\n    forward();\n    exit;\n}}\n",
        so.display(),
        uas.addr().port()
    );
    let srv = start(&cfg).expect("server starts");
    let uac = UdpPeer::new();
    uac.send(srv.addr(), &request(&uac, "bob", "r1"));
    let got = uas.recv(T).expect("forwarded");
    let vias = got
        .msg
        .msg()
        .headers_named(sip_msg::HeaderName::Via)
        .map(|h| format!("Via: {}", h.value))
        .collect::<Vec<_>>()
        .join("\r\n");
    uas.send(
        got.from,
        &format!(
            "SIP/2.0 200 OK\r\n{vias}\r\nFrom: <sip:alice@example.com>;tag=from-r1\r\nTo: <sip:bob@example.com>;tag=b\r\nCall-ID: r1\r\nCSeq: 1 OPTIONS\r\nX-Count-Me: yes\r\nContent-Length: 0\r\n\r\n"
        ),
    );
    let back = uac.recv(T).expect("the reply is relayed");
    assert_eq!(back.status(), Some(200), "{}", back.text());
    assert_eq!(srv.wait_stat("replymod:replies", 1), Some(1));
    drop(srv);
    let _ = std::fs::remove_dir_all(&dir);
}
