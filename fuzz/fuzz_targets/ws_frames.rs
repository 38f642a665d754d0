//! Fuzz target `ws_frames`: the WebSocket frame decoder
//! (`sr_core::ws_codec`) on arbitrary client bytes, fed in pieces whose
//! sizes come from the input, so that where reads end varies. It must
//! never panic, never yield a message over its limit, and yield the same
//! events however the bytes are cut.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sr_core::ws_codec::WsDecoder;

const MAX: usize = 4096;

fn events(data: &[u8], cut: usize) -> Vec<String> {
    let mut d = WsDecoder::new(MAX);
    let mut out = Vec::new();
    for piece in data.chunks(cut.max(1)) {
        d.push(piece);
        while let Some(e) = d.next_event() {
            match e {
                Ok(sr_core::ws_codec::WsEvent::Message(m)) => {
                    assert!(m.len() <= MAX, "message over the limit");
                    out.push(format!("msg {}", m.len()));
                }
                Ok(ev) => out.push(format!("{ev:?}")),
                Err(err) => {
                    out.push(format!("err {}", err.status));
                    return out;
                }
            }
        }
    }
    out
}

fuzz_target!(|data: &[u8]| {
    let Some((&cut, rest)) = data.split_first() else {
        return;
    };
    assert_eq!(events(rest, usize::from(cut)), events(rest, rest.len()));
});
