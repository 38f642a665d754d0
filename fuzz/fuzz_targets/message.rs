//! Fuzz target `message`: the logic lives in `sip_msg::fuzz_support::message` so the
//! stable corpus replay test runs exactly the same code.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    sip_msg::fuzz_support::message(data);
});
