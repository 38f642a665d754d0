//! Replays the committed fuzz corpora (`fuzz/corpus/<target>/`) on the
//! stable toolchain, through the same code the fuzz targets run
//! (`sip_msg::fuzz_support`). Fails when a corpus directory is missing or
//! empty, so CI really replays them.

use std::path::{Path, PathBuf};

fn corpus_dir(target: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../fuzz/corpus")
        .join(target)
}

fn replay(target: &str, run: fn(&[u8])) {
    let dir = corpus_dir(target);
    let entries = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("corpus directory {} missing: {e}", dir.display()));
    let mut files: Vec<PathBuf> = entries
        .map(|e| e.expect("readable directory entry").path())
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    assert!(
        !files.is_empty(),
        "corpus directory {} is empty",
        dir.display()
    );
    for f in &files {
        let data = std::fs::read(f).expect("readable corpus file");
        let outcome = std::panic::catch_unwind(|| run(&data));
        if outcome.is_err() {
            panic!("{target} target panicked on {}", f.display());
        }
    }
    println!("replayed {} {target} corpus inputs", files.len());
}

#[test]
fn message_corpus() {
    replay("message", sip_msg::fuzz_support::message);
}

#[test]
fn uri_corpus() {
    replay("uri", sip_msg::fuzz_support::uri);
}

#[test]
fn framer_corpus() {
    replay("framer", sip_msg::fuzz_support::framer);
}
