//! Differential test against Kamailio itself, for module benchmark:
//! timers registered by `register` and by the functions' names, off until
//! enabled (one timer by `benchmark.enable_timer`, all by
//! `benchmark.enable_global`), `$BM_time_diff`, the timer structure of
//! `benchmark.timer_name_list` (calls counted, timing figures masked: they
//! are each server's own), and the RPCs' errors. The RPCs run from the
//! script with `jsonrpc_exec`.
//!
//! Without Kamailio installed the test prints a notice and passes, unless
//! `SR_KAMAILIO_REQUIRED=1` (`.ci/run` sets it).

use sr_sdk::serde_json::Value as Json;
use sr_testkit::kamailio;

const MODULES: &[&str] = &["sl", "pv", "textops", "jsonrpcs", "benchmark"];

const BODY: &str = r#"#!ifdef SIPROUTER
modparam("jsonrpcs", "socket", "")
#!else
modparam("jsonrpcs", "transport", 2)
modparam("jsonrpcs", "fifo_name", "__DIR__/rpc.fifo")
#!endif
modparam("jsonrpcs", "pretty_format", 0)
modparam("benchmark", "granularity", 2)
modparam("benchmark", "register", "pre")
request_route {
    if ($hdr(X-Op) == $null) { sl_send_reply("200", "up"); exit; }
    if ($hdr(X-Op) == "t1") {
        bm_start_timer("t1");
        $var(s) = $rc;
        bm_log_timer("t1");
        $var(l) = $rc;
        # (The time itself is each server's own: 0 or a few µs.)
        $var(d) = $BM_time_diff;
        if ($BM_time_diff >= 0 && $BM_time_diff < 100000) { $var(d) = "ok"; }
        append_to_reply("X-R: $var(s) $var(l) $var(d)\r\n");
    } else if ($hdr(X-Op) == "t2") {
        bm_start_timer("t2");
        bm_log_timer("t2");
        $var(d) = "none";
        if ($BM_time_diff >= 0) { $var(d) = "ok"; }
        append_to_reply("X-R: $rc $var(d)\r\n");
    } else {
        $var(r) = jsonrpc_exec("$hdr(X-RPC)");
        append_to_reply("X-R: $var(r) $jsonrpl(code) $jsonrpl(body)\r\n");
    }
    sl_send_reply("200", "ok");
}
"#;

fn step(n: usize, op: &str, hdrs: &str) -> (String, String) {
    let call = format!("bm{n}");
    let r = kamailio::options(&call, &format!("X-Op: {op}\r\n{hdrs}"));
    (call, r)
}

fn rpc(n: usize, method: &str, params: &str) -> (String, String) {
    step(
        n,
        "rpc",
        &format!(
            "X-RPC: {{\"jsonrpc\":\"2.0\",\"method\":\"benchmark.{method}\",\"params\":{params},\"id\":{n}}}\r\n"
        ),
    )
}

/// The answer with the timer's timing figures written as `T`, the JSON
/// body with sorted keys.
fn masked(line: &str) -> String {
    let Some(i) = line.find(" {") else {
        return line.to_string();
    };
    let Ok(mut v) = sr_sdk::serde_json::from_str::<Json>(&line[i + 1..]) else {
        return line.to_string();
    };
    if let Some(Json::Object(m)) = v.get_mut("result") {
        for k in [
            "period_sum",
            "period_min",
            "period_max",
            "period_media",
            "sum",
            "global_min",
            "global_max",
            "global_media",
        ] {
            if let Some(x) = m.get_mut(k) {
                *x = Json::from("T");
            }
        }
    }
    format!("{} {v}", &line[..i])
}

#[test]
fn benchmark_matches_kamailio() {
    if !kamailio::available(MODULES) {
        return;
    }
    let dir = kamailio::fresh_dir("benchmark");
    let body = BODY.replace("__DIR__", &dir.display().to_string());
    let mut steps: Vec<(String, String)> = Vec::new();
    let mut push = |f: &dyn Fn(usize) -> (String, String)| {
        let n = steps.len();
        steps.push(f(n));
    };
    push(&|n| rpc(n, "timer_name_list", r#"["pre"]"#));
    push(&|n| rpc(n, "timer_name_list", r#"["t1"]"#));
    push(&|n| step(n, "t1", ""));
    push(&|n| rpc(n, "timer_name_list", r#"["t1"]"#));
    push(&|n| rpc(n, "enable_timer", r#"["t1",1]"#));
    push(&|n| step(n, "t2", ""));
    push(&|n| step(n, "t1", ""));
    push(&|n| rpc(n, "timer_name_list", r#"["t1"]"#));
    push(&|n| step(n, "t1", ""));
    push(&|n| rpc(n, "timer_name_list", r#"["t1"]"#));
    push(&|n| rpc(n, "timer_name_list", r#"["t2"]"#));
    push(&|n| rpc(n, "enable_global", r#"[1]"#));
    push(&|n| step(n, "t2", ""));
    push(&|n| rpc(n, "timer_name_list", r#"["t2"]"#));
    push(&|n| rpc(n, "timer_name_list", r#"["pre"]"#));
    push(&|n| rpc(n, "granularity", r#"[5]"#));
    push(&|n| rpc(n, "timer_name_list", r#"["pre"]"#));
    push(&|n| rpc(n, "granularity", r#"[0]"#));
    push(&|n| rpc(n, "loglevel", r#"[1]"#));
    push(&|n| rpc(n, "loglevel", r#"[3]"#));
    push(&|n| rpc(n, "enable_global", r#"[2]"#));
    push(&|n| rpc(n, "enable_global", r#"[]"#));
    push(&|n| rpc(n, "enable_timer", r#"["nope",1]"#));
    push(&|n| rpc(n, "enable_timer", r#"["t1",3]"#));
    push(&|n| rpc(n, "timer_name_list", r#"["nope"]"#));
    push(&|n| rpc(n, "timer_name_list", r#"[]"#));
    push(&|n| rpc(n, "enable_global", r#"[0]"#));
    push(&|n| rpc(n, "enable_timer", r#"["t1",0]"#));
    push(&|n| step(n, "t1", ""));
    push(&|n| rpc(n, "timer_name_list", r#"["t1"]"#));
    let cfg = kamailio::head(MODULES) + &body;
    let (want, got) = kamailio::run_scenario(&dir, &cfg, siprouter::in_tree(), &|| {}, &|srv| {
        let peer = sr_testkit::UdpPeer::new();
        kamailio::wait_until_up(&peer, srv, kamailio::PROBE, None);
        kamailio::answers(&peer, srv, &steps, &["X-R"])
    });
    let want: Vec<String> = want.iter().map(|l| masked(l)).collect();
    let got: Vec<String> = got.iter().map(|l| masked(l)).collect();
    assert_eq!(want[2], "bm2: 1 1 ok", "{want:#?}");
    kamailio::conclude(&dir, &want, &got, "benchmark");
}
