//! What the pre-parse scan (`json_bound::check`) adds to a request: its cost on
//! real vCons next to the `serde_json::Value` parse it guards, on the same bytes.
//! `docs/benchmarks.md` reports the ratio.

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use serde_json::Value;

fn scan_next_to_parse(c: &mut Criterion) {
    for name in [conserver_fixtures::CALL, conserver_fixtures::CALL_INLINE, "v0.4.0/meeting_attachments.vcon.json"] {
        let text = conserver_fixtures::vcon_text(name).into_bytes();
        let short = name.rsplit('/').next().unwrap_or(name);
        let mut group = c.benchmark_group(short);
        group.throughput(Throughput::Bytes(text.len() as u64));
        group.bench_function("json_bound scan", |b| {
            b.iter(|| conserver_core::json_bound::check(std::hint::black_box(&text), 1_000_000, 64))
        });
        group.bench_function("serde_json parse", |b| {
            b.iter(|| serde_json::from_slice::<Value>(std::hint::black_box(&text)).map(drop))
        });
        group.finish();
    }
}

criterion_group!(benches, scan_next_to_parse);
criterion_main!(benches);
