//! Unit tests: the C header agrees with the Rust side.

use crate::types::{Stamp, ABI_MAJOR, ABI_MINOR, CORE_VERSION, MAGIC};

fn header() -> String {
    let p = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../include/siprouter/sr_module.h"
    );
    std::fs::read_to_string(p).expect("read sr_module.h")
}

fn define(h: &str, name: &str) -> String {
    let key = format!("#define {name} ");
    h.lines()
        .find_map(|l| l.trim().strip_prefix(&key).map(|v| v.trim().to_string()))
        .unwrap_or_else(|| panic!("{name} not defined in sr_module.h"))
}

#[test]
fn header_matches_versions() {
    let h = header();
    assert_eq!(define(&h, "SR_ABI_MAJOR"), ABI_MAJOR.to_string());
    assert_eq!(define(&h, "SR_ABI_MINOR"), ABI_MINOR.to_string());
    assert_eq!(define(&h, "SR_CORE_VERSION"), format!("\"{CORE_VERSION}\""));
    let magic = define(&h, "SR_MODULE_MAGIC");
    let hex = magic.trim_start_matches("0x").trim_end_matches("ULL");
    assert_eq!(u64::from_str_radix(hex, 16).expect("hex"), MAGIC);
}

#[test]
fn stamp_layout_is_fixed() {
    // The head every version shares, then the fields of ABI 1.0.
    assert_eq!(std::mem::size_of::<Stamp>(), 48);
    let s = Stamp::rust();
    assert_eq!(s.magic, MAGIC);
    assert_eq!(s.size, 48);
    assert_eq!(s.lang, crate::types::LANG_RUST);
}

#[test]
fn non_modules_are_refused_with_a_reason() {
    let dir = std::env::temp_dir().join(format!("sr-abi-unit-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let p = dir.join("junk.so");
    std::fs::write(&p, b"not a library").expect("write");
    let e = crate::load_module(&p).expect_err("junk must be refused");
    assert!(e.contains("not an ELF"), "{e}");
    let e = crate::load_module(&dir.join("missing.so")).expect_err("missing");
    assert!(e.contains("cannot read module"), "{e}");
    let _ = std::fs::remove_dir_all(&dir);
}
