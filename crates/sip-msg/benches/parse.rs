//! Parsing a typical INVITE, a REGISTER and a 200 OK, then reading the
//! headers a proxy routes on: sip-msg and the rsip reference parser side by
//! side, in the same run.
//!
//! `cargo bench -p sip-msg --bench parse -- --measurement-time 3 --warm-up-time 1`

use criterion::{black_box, criterion_main, Criterion, Throughput};

#[path = "messages.rs"]
mod messages;

use messages::{read_rsip, read_sip_msg, INVITE, OK200, REGISTER};

fn parse(c: &mut Criterion) {
    for (name, raw) in [("invite", INVITE), ("register", REGISTER), ("200ok", OK200)] {
        // Both parsers must agree on what they read before being timed.
        assert_eq!(
            read_sip_msg(raw),
            read_rsip(raw),
            "{name}: parsers disagree"
        );
        let mut g = c.benchmark_group(format!("parse_{name}"));
        g.throughput(Throughput::Elements(1));
        g.bench_function("sip-msg", |b| b.iter(|| read_sip_msg(black_box(raw))));
        g.bench_function("rsip", |b| b.iter(|| read_rsip(black_box(raw))));
        g.finish();
    }
    // Parse only, no header reads: the cost of Message::parse itself.
    c.bench_function("parse_only_invite/sip-msg", |b| {
        b.iter(|| sip_msg::Message::parse(black_box(INVITE)).map(|m| m.headers().len()))
    });
}

/// Private, so the function `criterion_group!` generates needs no docs.
mod group {
    criterion::criterion_group!(benches, super::parse);
}
criterion_main!(group::benches);
