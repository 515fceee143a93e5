//! One `tag` link call through the sandbox (fresh store and instance per call, fuel
//! and deadline armed, pooling allocator) next to the same transform done natively
//! in the same run: with the same SDK code (lazy parse, add the tags, serialise)
//! and the conventional way (decode everything, change, encode); plus a link that
//! returns the vCon unchanged, the fixed cost of a sandboxed call. Inputs: a small
//! vCon and a ~50 KB one built from a vCon with analysis entries (the public real
//! corpus's when `CONSERVER_REAL_VCONS` is set, else the project's).
//! Needs `cargo xtask build-links` first.
//!
//! Run: `cargo bench -p conserver-runtime --bench tag_call`

use std::path::{Path, PathBuf};

use conserver_config::Limits;
use conserver_link_sdk::Vcon;
use conserver_runtime::{CallContext, Grants, Runtime, RuntimeOptions};
use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use serde_json::Value;

/// The benchmark's two inputs: from the public real corpus when
/// `CONSERVER_REAL_VCONS` names it (the figures in docs/benchmarks.md), else the
/// project's vCons of the same shapes.
fn input_vcons() -> (Value, Value) {
    match conserver_fixtures::real_corpus() {
        Some(real) => {
            let read = |name: &str| -> Value {
                let text = std::fs::read_to_string(real.vcons.join(name)).unwrap_or_else(|e| panic!("{name}: {e}"));
                serde_json::from_str(&text).unwrap_or_else(|e| panic!("{name}: {e}"))
            };
            (read("05cec3d4-0561-4010-9fb8-23cc7edef146.vcon.json"), read("ab_call_ext_rec_analysis.vcon"))
        }
        None => (
            conserver_fixtures::vcon("v0.0.1/conserver_legacy.vcon.json"),
            conserver_fixtures::vcon("v0.4.0/call_with_analysis.vcon.json"),
        ),
    }
}

/// A small vCon, and one with analysis padded with copies of its own analysis
/// entries to about 50 KB.
fn inputs() -> Vec<(&'static str, String)> {
    let (small, mut large) = input_vcons();
    let analysis = large["analysis"].as_array().cloned().unwrap_or_default();
    while serde_json::to_string(&large).map_or(0, |s| s.len()) < 50_000 && !analysis.is_empty() {
        if let Some(list) = large["analysis"].as_array_mut() {
            list.push(analysis[list.len() % analysis.len()].clone());
        }
    }
    vec![("4KB", small.to_string()), ("50KB", large.to_string())]
}

fn tag_component() -> PathBuf {
    let exe = std::env::current_exe().unwrap_or_default();
    let path = exe.parent().and_then(Path::parent).map(|dir| dir.join("links/tag.wasm")).unwrap_or_default();
    assert!(path.is_file(), "{} missing: run `cargo xtask build-links`", path.display());
    path
}

fn native_tag(vcon: &str, tags: &[String]) -> String {
    let mut vcon = Vcon::from_json(vcon).unwrap_or_default();
    for tag in tags {
        let _ = vcon.add_tag(tag, tag);
    }
    vcon.to_json().unwrap_or_default()
}

/// The same transform written the conventional way: decode the whole document,
/// change it, encode it again (what a host without lazy parsing would do).
fn native_tag_full_parse(vcon: &str, tags: &[String]) -> String {
    let mut doc: serde_json::Map<String, Value> = serde_json::from_str(vcon).unwrap_or_default();
    let mut vcon = Vcon::from_map(std::mem::take(&mut doc));
    for tag in tags {
        let _ = vcon.add_tag(tag, tag);
    }
    vcon.to_json().unwrap_or_default()
}

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap_or_else(|e| panic!("{e}"));
    let runtime = Runtime::new(&RuntimeOptions::default()).unwrap_or_else(|e| panic!("{e}"));
    let link =
        runtime.load("tag", &tag_component(), Limits::default(), &Grants::default()).unwrap_or_else(|e| panic!("{e}"));
    let echo_path = tag_component().with_file_name("testing/echo.wasm");
    let echo =
        runtime.load("echo", &echo_path, Limits::default(), &Grants::default()).unwrap_or_else(|e| panic!("{e}"));
    let tags = vec!["iron".to_string(), "maiden".to_string()];
    let options = r#"{"tags":["iron","maiden"]}"#;
    let mut group = c.benchmark_group("tag");
    for (label, vcon) in inputs() {
        let uuid = serde_json::from_str::<Value>(&vcon)
            .ok()
            .and_then(|v| v["uuid"].as_str().map(String::from))
            .unwrap_or_default();
        let ctx = CallContext { chain: "bench", vcon_uuid: &uuid, ingress_list: "bench", options_json: options };
        // Same output both ways, or the comparison means nothing.
        let wasm_out = rt.block_on(link.invoke(ctx, &vcon)).map(|o| o.action);
        assert_eq!(wasm_out, Ok(conserver_runtime::Action::Proceed(Some(native_tag(&vcon, &tags)))));
        group.bench_with_input(BenchmarkId::new("wasm_fresh_instance", label), &vcon, |b, vcon| {
            b.iter(|| rt.block_on(link.invoke(ctx, vcon)))
        });
        group.bench_with_input(BenchmarkId::new("native", label), &vcon, |b, vcon| b.iter(|| native_tag(vcon, &tags)));
        group.bench_with_input(BenchmarkId::new("native_full_parse", label), &vcon, |b, vcon| {
            b.iter(|| native_tag_full_parse(vcon, &tags))
        });
        // The fixed cost of a sandboxed call: a link that returns the vCon unchanged.
        let echo_ctx = CallContext { options_json: "{}", ..ctx };
        group.bench_with_input(BenchmarkId::new("wasm_unchanged_echo", label), &vcon, |b, vcon| {
            b.iter(|| rt.block_on(echo.invoke(echo_ctx, vcon)))
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
