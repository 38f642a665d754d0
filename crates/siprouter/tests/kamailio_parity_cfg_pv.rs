//! Differential test against Kamailio itself, for `$cfg(line|name|file|
//! route)`: where in the configuration the running statement is, read in
//! request_route, in named routes called from it, in a branch of an
//! `if` and across an `include_file`d file — the same requests to both
//! servers and every value compared.
//!
//! Without Kamailio installed the test prints a notice and passes, unless
//! `SR_KAMAILIO_REQUIRED=1` (`.ci/run` sets it).

use sr_testkit::kamailio;

const BODY: &str = r#"include_file "__INC__"
request_route {
    if ($hdr(X-C) == $null) { sl_send_reply("200", "up"); exit; }
    $var(a) = $cfg(line) + 0;
    append_to_reply("X-A: line=$cfg(line) route=$cfg(route) name=$cfg(name) file=$cfg(file) a=$var(a)\r\n");
    if ($hdr(X-C) == "2") {
        append_to_reply("X-B: in-if line=$cfg(line) route=$cfg(route)\r\n");
    }
    route(ONE);
    route(INCLUDED);
    sl_send_reply("200", "ok");
}

route[ONE] {
    append_to_reply("X-O: line=$cfg(line) route=$cfg(route)\r\n");
}
"#;

const INCLUDED: &str = r#"route[INCLUDED] {
    append_to_reply("X-I: line=$cfg(line) route=$cfg(route) name=$cfg(name)\r\n");
}
"#;

#[test]
fn cfg_pseudo_variables_match_kamailio() {
    if !kamailio::available(&["sl", "pv", "textops", "kex", "corex"]) {
        return;
    }
    let dir = kamailio::fresh_dir("cfg-pv");
    let inc = dir.join("included.cfg");
    std::fs::write(&inc, INCLUDED).unwrap();
    let reqs: Vec<(String, String)> = ["1", "2"]
        .iter()
        .map(|c| {
            let call = format!("cfgpv-{c}");
            let text = kamailio::options(&call, &format!("X-C: {c}\r\n"));
            (call, text)
        })
        .collect();
    let inc_text = inc.display().to_string();
    let (want, got) = kamailio::run_parity(
        &dir,
        &["sl", "pv", "textops", "kex", "corex"],
        BODY,
        &[("__INC__", &inc_text)],
        &reqs,
        &["X-A", "X-B", "X-O", "X-I"],
        siprouter::in_tree(),
    );
    // The main file's name differs (each server gets its own copy, named
    // differently): compared as MAIN; the included one by its name.
    let tidy = |v: Vec<String>| -> Vec<String> {
        v.into_iter()
            .map(|l| {
                l.split(' ')
                    .map(|w| match w.split_once('=') {
                        Some((k @ ("name" | "file"), p)) => {
                            let base = p.rsplit('/').next().unwrap_or(p);
                            if base == "included.cfg" {
                                format!("{k}={base}")
                            } else {
                                format!("{k}=MAIN")
                            }
                        }
                        _ => w.to_string(),
                    })
                    .collect::<Vec<_>>()
                    .join(" ")
            })
            .collect()
    };
    let (want, got) = (tidy(want), tidy(got));
    assert!(want.iter().any(|l| l.contains("route=ONE")), "{want:#?}");
    kamailio::conclude(&dir, &want, &got, "cfg-pv");
}
