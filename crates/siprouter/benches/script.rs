//! Script execution per message: parse an INVITE and run a realistic
//! request_route (sub-routes, conditions, regex, PVs, transformations,
//! module calls). `cargo bench -p siprouter --bench script`.

// criterion_group! generates an undocumented public function.
#![allow(missing_docs)]

use criterion::{criterion_group, criterion_main, Criterion};

#[path = "../examples/script_workload.rs"]
mod workload;

fn bench(c: &mut Criterion) {
    let rt = workload::runtime();
    assert_eq!(workload::route_once(&rt), 0, "the route ends in exit");
    c.bench_function("parse INVITE only", |b| {
        b.iter(|| {
            sip_msg::Message::parse(std::hint::black_box(workload::INVITE))
                .map(|m| m.headers().len())
        })
    });
    c.bench_function("parse + request_route", |b| {
        b.iter(|| workload::route_once(&rt))
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
