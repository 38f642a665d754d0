//! Parses the benchmark INVITE N times and reads its routing headers, with
//! sip-msg or rsip; run under callgrind to count instructions per message
//! (see `bench/parse-callgrind.sh`).
//!
//! `cargo run --release -p sip-msg --example parse_loop -- sip-msg 10000`

#[path = "../benches/messages.rs"]
mod messages;

fn main() {
    let mut args = std::env::args().skip(1);
    let which = args.next().unwrap_or_else(|| "sip-msg".into());
    let n: usize = args.next().and_then(|s| s.parse().ok()).unwrap_or(10_000);
    let msg = match args.next().as_deref() {
        Some("register") => messages::REGISTER,
        Some("200") => messages::OK200,
        _ => messages::INVITE,
    };
    let read: fn(&[u8]) -> usize = match which.as_str() {
        "sip-msg" => messages::read_sip_msg,
        "rsip" => messages::read_rsip,
        // Message::parse alone, no header reads.
        "sip-msg-parse" => {
            |raw: &[u8]| sip_msg::Message::parse(raw).map_or(0, |m| m.headers().len())
        }
        // Start-up and loop cost only, to subtract from the others.
        "none" => |raw: &[u8]| raw.len(),
        other => panic!("unknown parser {other}: use sip-msg, sip-msg-parse, rsip or none"),
    };
    let mut sum = 0usize;
    for _ in 0..n {
        sum = sum.wrapping_add(read(std::hint::black_box(msg)));
    }
    println!("{which}: {n} messages, checksum {sum}");
}
