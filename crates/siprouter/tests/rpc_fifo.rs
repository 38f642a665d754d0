//! The FIFO transport of jsonrpcs (what `kamctl` talks to): a request
//! written into the server's named pipe — in one piece, or over several
//! lines as kamctl's here-documents write it — is answered into the reply
//! pipe it names; a reply name with a path in it is refused; and the real
//! `kamctl` (Kamailio's shell tool) gets its answers, when installed.

use sr_sdk::serde_json::{json, Value as Json};
use sr_testkit::TestServer;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// A server with its FIFO in a folder of its own, answering into
/// `reply_dir` (that folder when `None`).
fn start(name: &str, reply_dir: Option<&str>) -> (TestServer, PathBuf, PathBuf) {
    let dir = std::env::temp_dir().join(format!("sr-fifo-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let fifo = dir.join("kamailio_rpc.fifo");
    let cfg = format!(
        "listen=udp:127.0.0.1:{{PORT}}\nloadmodule \"sl\"\nloadmodule \"htable\"\nloadmodule \"jsonrpcs\"\nmodparam(\"jsonrpcs\", \"socket\", \"\")\nmodparam(\"jsonrpcs\", \"transport\", 2)\nmodparam(\"jsonrpcs\", \"fifo_name\", \"{}\")\nmodparam(\"jsonrpcs\", \"fifo_reply_dir\", \"{}/\")\nmodparam(\"htable\", \"htable\", \"t=>size=4;\")\nrequest_route {{ sl_send_reply(\"200\", \"OK\"); }}\n",
        fifo.display(),
        reply_dir.map_or_else(|| dir.display().to_string(), str::to_string)
    );
    (TestServer::start(&cfg, siprouter::in_tree()), fifo, dir)
}

/// Makes a reply pipe, writes `request` into the server's pipe and reads
/// the answer until the server closes it.
fn ask(fifo: &Path, dir: &Path, name: &str, request: &str) -> Option<Json> {
    let reply = dir.join(name);
    let _ = std::fs::remove_file(&reply);
    sr_mod_jsonrpcs::fifo::create(&reply, 0o600).unwrap();
    let reply2 = reply.clone();
    let reader = std::thread::spawn(move || {
        let mut s = String::new();
        std::fs::File::open(&reply2)
            .ok()?
            .read_to_string(&mut s)
            .ok()?;
        sr_sdk::serde_json::from_str::<Json>(s.trim()).ok()
    });
    std::fs::OpenOptions::new()
        .write(true)
        .open(fifo)
        .unwrap()
        .write_all(request.as_bytes())
        .unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while !reader.is_finished() {
        if std::time::Instant::now() > deadline {
            // Unblock the reader (nobody answered).
            let _ = std::fs::OpenOptions::new().write(true).open(&reply);
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    reader.join().ok().flatten()
}

#[test]
fn requests_in_the_fifo_are_answered_in_their_reply_pipes() {
    let (_srv, fifo, dir) = start("answers", None);
    let r = ask(
        &fifo,
        &dir,
        "r1",
        "{\"jsonrpc\": \"2.0\", \"method\": \"htable.seti\", \"params\": [\"t\", \"k\", 7], \"reply_name\": \"r1\", \"id\": 1}\n",
    )
    .expect("an answer");
    assert_eq!(r["result"], json!("Ok. Key set to new value."), "{r}");
    // Over several lines, as kamctl's here-documents write it.
    let r = ask(
        &fifo,
        &dir,
        "r2",
        "{\n  \"jsonrpc\": \"2.0\",\n  \"method\": \"htable.get\",\n  \"params\": [\"t\", \"k\"],\n  \"reply_name\": \"r2\",\n  \"id\": 2\n}\n",
    )
    .expect("an answer");
    assert_eq!(r["result"]["item"]["value"], json!(7), "{r}");
    assert_eq!(r["id"], json!(2));
    // An error is answered as an error.
    let r = ask(
        &fifo,
        &dir,
        "r3",
        "{\"jsonrpc\": \"2.0\", \"method\": \"no.such\", \"reply_name\": \"r3\", \"id\": 3}",
    )
    .expect("an answer");
    assert!(r["error"]["code"].is_number(), "{r}");
    // A reply name with a path gets nothing (and nothing is written there).
    let r = ask(&fifo, &dir, "r4", "{\"jsonrpc\": \"2.0\", \"method\": \"htable.listTables\", \"reply_name\": \"../r4\", \"id\": 4}");
    assert_eq!(r, None);
    assert!(!dir.parent().unwrap().join("r4").exists());
    // Garbage is dropped and the FIFO goes on serving.
    let r = ask(&fifo, &dir, "r5", "this is not json\n{\"jsonrpc\": \"2.0\", \"method\": \"htable.listTables\", \"reply_name\": \"r5\", \"id\": 5}\n");
    let again = ask(&fifo, &dir, "r6", "{\"jsonrpc\": \"2.0\", \"method\": \"htable.listTables\", \"reply_name\": \"r6\", \"id\": 6}\n").expect("served after garbage");
    assert_eq!(again["id"], json!(6));
    let _ = r;
}

#[test]
fn kamctl_gets_its_answers() {
    if !Path::new("/usr/sbin/kamctl").exists() {
        assert!(
            std::env::var("SR_KAMAILIO_REQUIRED").as_deref() != Ok("1"),
            "SR_KAMAILIO_REQUIRED=1 but /usr/sbin/kamctl is missing"
        );
        eprintln!("SKIPPED: kamctl is not installed");
        return;
    }
    // kamctl makes its reply pipe in /tmp: the server answers there.
    let (_srv, fifo, _dir) = start("kamctl", Some("/tmp"));
    let run = |args: &[&str]| {
        std::process::Command::new("/usr/sbin/kamctl")
            .args(args)
            .env("RPCFIFOPATH", &fifo)
            .env("CTLENGINE", "RPCFIFO")
            .output()
            .expect("kamctl runs")
    };
    let _ = run(&["rpc", "htable.seti", "t", "x", "41"]);
    let out = run(&["rpc", "htable.get", "t", "x"]);
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert!(
        text.contains("\"value\": 41") || text.contains("\"value\":41"),
        "{text}"
    );
}
