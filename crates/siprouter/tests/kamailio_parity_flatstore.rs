//! Differential test against Kamailio itself, for module db_flatstore:
//! acc writes its records (`acc_db_request`, extra columns, two tables)
//! through a `flatstore:` URL; the files made (their names: table and
//! worker number) and their lines are compared, the time column written
//! alike. Then the files are moved away as logrotate does,
//! `flatstore.k_rotate` is called, and the next records must go to new
//! files of the same names.
//!
//! Without Kamailio installed the test prints a notice and passes, unless
//! `SR_KAMAILIO_REQUIRED=1` (`.ci/run` sets it).

use sr_testkit::kamailio;
use std::path::Path;

const MODULES: &[&str] = &[
    "sl",
    "pv",
    "textops",
    "tm",
    "jsonrpcs",
    "db_flatstore",
    "acc",
];

const BODY: &str = r#"#!ifdef SIPROUTER
modparam("jsonrpcs", "socket", "")
#!else
modparam("jsonrpcs", "transport", 2)
modparam("jsonrpcs", "fifo_name", "__DIR__/rpc.fifo")
#!endif
modparam("jsonrpcs", "pretty_format", 0)
modparam("acc", "db_url", "flatstore:__DIR__/acc")
modparam("acc", "db_extra", "src=$si;ua=$hdr(User-Agent);n=$hdr(X-N)")
request_route {
    if ($hdr(X-T) == $null) { sl_send_reply("200", "up"); exit; }
    if ($hdr(X-T) == "rotate") {
        $var(r) = jsonrpc_exec("{\"jsonrpc\":\"2.0\",\"method\":\"flatstore.k_rotate\",\"id\":1}");
        append_to_reply("X-R: $var(r) $jsonrpl(code)\r\n");
    } else {
        acc_db_request("$hdr(X-C)", "$hdr(X-T)");
        append_to_reply("X-R: $rc\r\n");
    }
    sl_send_reply("200", "ok");
}
"#;

fn step(n: usize, table: &str, comment: &str, ua: &str) -> (String, String) {
    let call = format!("fs{n}");
    let r = kamailio::options(
        &call,
        &format!("X-T: {table}\r\nX-C: {comment}\r\nUser-Agent: {ua}\r\nX-N: {n}\r\n"),
    );
    (call, r)
}

/// Every file of the folder with its lines, the time column (the
/// seventh) written alike, the source port named.
fn files(dir: &Path, port: u16) -> Vec<String> {
    let mut names: Vec<_> = std::fs::read_dir(dir)
        .map(|d| {
            d.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    let mut out = Vec::new();
    for n in names {
        out.push(format!("file {n}"));
        let text = std::fs::read_to_string(dir.join(&n)).unwrap_or_default();
        for line in text.lines() {
            let mut cols: Vec<String> = line.split('|').map(str::to_string).collect();
            if cols.len() > 6 && cols[6].len() >= 9 && cols[6].bytes().all(|b| b.is_ascii_digit()) {
                cols[6] = "TIME".into();
            }
            out.push(format!(
                "  {}",
                cols.join("|").replace(&port.to_string(), "PORT")
            ));
        }
    }
    out
}

#[test]
fn flatstore_matches_kamailio() {
    if !kamailio::available(MODULES) {
        return;
    }
    let dir = kamailio::fresh_dir("flatstore");
    let acc = dir.join("acc");
    let body = BODY.replace("__DIR__", &dir.display().to_string());
    let cfg = kamailio::head(MODULES) + &body;
    let first = vec![
        step(0, "acc", "200 Done", "phone/1.0"),
        step(1, "acc", "404 Not Here", "a|b"),
        step(2, "missed_calls", "486 Busy", "phone/2.0"),
    ];
    let second = vec![
        (
            "fsr".to_string(),
            kamailio::options("fsr", "X-T: rotate\r\n"),
        ),
        step(3, "acc", "200 After rotation", "phone/3.0"),
    ];
    let (want, got) = kamailio::run_scenario(
        &dir,
        &cfg,
        siprouter::in_tree(),
        &|| {
            let _ = std::fs::remove_dir_all(&acc);
            std::fs::create_dir_all(&acc).unwrap();
        },
        &|srv| {
            let peer = sr_testkit::UdpPeer::new();
            let port = peer.addr().port();
            kamailio::wait_until_up(&peer, srv, kamailio::PROBE, None);
            let mut out = kamailio::answers(&peer, srv, &first, &["X-R"]);
            out.extend(files(&acc, port));
            // logrotate: the files moved away, then the rotation asked for
            // (a second after the start: Kamailio keeps rotation times in
            // whole seconds and ignores one asked for in the second the
            // files were opened).
            std::thread::sleep(std::time::Duration::from_millis(1100));
            for e in std::fs::read_dir(&acc).unwrap().flatten() {
                let p = e.path();
                std::fs::rename(&p, p.with_extension("log.1")).unwrap();
            }
            out.extend(kamailio::answers(&peer, srv, &second, &["X-R"]));
            out.extend(files(&acc, port));
            out
        },
    );
    assert!(
        want.iter()
            .any(|l| l.starts_with("  OPTIONS|1||fs0|200|Done|TIME|")),
        "{want:#?}"
    );
    kamailio::conclude(&dir, &want, &got, "flatstore");
}
