//! The runtime against the real fixture components (built by
//! `cargo xtask build-links`): verdicts, every limit, panics, the sandbox's empty
//! capabilities, and the compiled-component cache.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly on purpose

use std::path::{Path, PathBuf};

use conserver_config::Limits;
use conserver_runtime::{Action, CallContext, Grants, LinkFailure, LoadedLink, Runtime, RuntimeError, RuntimeOptions};
use serde_json::{Value, json};

const UUID: &str = "0189f7e4-c0b1-7f3e-9f3a-1c2b3d4e5f60";

/// `<target>/debug/links/…`, where xtask copies the components.
fn component(relative: &str) -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let profile_dir = exe.parent().and_then(Path::parent).unwrap();
    let path = profile_dir.join("links").join(relative);
    assert!(path.is_file(), "{} is missing: run `cargo xtask build-links` (or `cargo xtask test`)", path.display());
    path
}

fn runtime() -> Runtime {
    Runtime::new(&RuntimeOptions::default()).unwrap()
}

fn load(runtime: &Runtime, relative: &str, limits: Limits) -> LoadedLink {
    runtime.load(relative, &component(relative), limits, &Grants::default()).unwrap()
}

fn small_limits() -> Limits {
    Limits { fuel: 100_000_000, memory_bytes: 32 * 1024 * 1024, timeout_ms: 2_000, ..Limits::default() }
}

async fn call(link: &LoadedLink, options: Value) -> Result<conserver_runtime::LinkOutcome, LinkFailure> {
    let vcon = json!({"vcon": "0.4.0", "uuid": UUID, "parties": [], "attachments": []}).to_string();
    let options = options.to_string();
    let ctx = CallContext { chain: "main", vcon_uuid: UUID, ingress_list: "in", options_json: &options };
    link.invoke(ctx, &vcon).await
}

fn changed_vcon(outcome: &conserver_runtime::LinkOutcome) -> Value {
    match &outcome.action {
        Action::Proceed(Some(json)) => serde_json::from_str(json).unwrap(),
        other => panic!("expected a changed vCon, got {other:?}"),
    }
}

#[tokio::test]
async fn tag_adds_the_python_tags_attachment_and_reports_fuel() {
    let runtime = runtime();
    let tag = load(&runtime, "tag.wasm", Limits::default());
    let outcome = call(&tag, json!({"tags": ["vip"]})).await.unwrap();
    let vcon = changed_vcon(&outcome);
    assert_eq!(vcon["attachments"], json!([{"purpose": "tags", "body": "[\"vip:vip\"]", "encoding": "json"}]));
    assert!(outcome.fuel_used > 0);
}

#[tokio::test]
async fn each_limit_is_classified_and_the_next_call_succeeds() {
    let runtime = runtime();
    let echo = load(&runtime, "testing/echo.wasm", small_limits());
    type Expectation = fn(&LinkFailure) -> bool;
    let cases: Vec<(&str, Limits, Expectation)> = vec![
        ("testing/spin.wasm", small_limits(), |f| matches!(f, LinkFailure::FuelExhausted { budget: 100_000_000 })),
        ("testing/spin.wasm", Limits { fuel: u64::MAX, timeout_ms: 200, ..small_limits() }, |f| {
            matches!(f, LinkFailure::Timeout { timeout_ms: 200 })
        }),
        ("testing/grow.wasm", small_limits(), |f| matches!(f, LinkFailure::MemoryLimit { .. })),
        ("testing/sleep.wasm", Limits { timeout_ms: 200, ..small_limits() }, |f| {
            matches!(f, LinkFailure::Timeout { .. })
        }),
        (
            "testing/panic.wasm",
            small_limits(),
            |f| matches!(f, LinkFailure::Trap { message } if message.contains("fixture panicked on purpose")),
        ),
    ];
    for (fixture, limits, expected) in cases {
        let link = load(&runtime, fixture, limits);
        let started = std::time::Instant::now();
        let failure = call(&link, json!({})).await.unwrap_err();
        assert!(expected(&failure), "{fixture}: unexpected {failure:?}");
        assert!(!failure.is_retryable() || matches!(failure, LinkFailure::Timeout { .. }));
        assert!(started.elapsed() < std::time::Duration::from_secs(10), "{fixture} was not stopped promptly");
        // The same link and the engine stay usable.
        assert!(matches!(call(&echo, json!({})).await.unwrap().action, Action::Proceed(None)));
        let _ = call(&link, json!({})).await.unwrap_err();
    }
}

#[tokio::test]
async fn link_errors_directives_and_bad_outputs() {
    let runtime = runtime();
    let echo = load(&runtime, "testing/echo.wasm", small_limits());
    let refused = call(&echo, json!({"mode": "error", "message": "nope", "retryable": true})).await.unwrap_err();
    assert_eq!(refused, LinkFailure::Refused { message: "nope".into(), retryable: true });
    assert!(refused.is_retryable());
    let halted = call(&echo, json!({"mode": "halt"})).await.unwrap();
    assert_eq!(halted.action, Action::Halt);
    let routed = call(&echo, json!({"mode": "route", "lists": ["a", "b"]})).await.unwrap();
    assert_eq!(routed.directives, [conserver_runtime::Directive::RouteTo(vec!["a".into(), "b".into()])]);
    let bad = call(&echo, json!({"mode": "garbage"})).await.unwrap_err();
    assert!(matches!(bad, LinkFailure::InvalidOutput { .. }), "{bad:?}");
    let bad_options = call(&echo, json!({"mode": 7})).await.unwrap_err();
    assert!(
        matches!(&bad_options, LinkFailure::Refused { message, .. } if message.contains("option `mode`")),
        "{bad_options:?}"
    );
}

#[tokio::test]
async fn links_get_no_environment_files_or_network() {
    let runtime = runtime();
    let probe = load(&runtime, "testing/probe.wasm", small_limits());
    let report = changed_vcon(&call(&probe, json!({})).await.unwrap())["probe"].clone();
    assert_eq!(report["env_vars"], 0, "{report}");
    assert_eq!(report["args"], 0, "{report}");
    for capability in ["read_file", "read_dir", "write_file", "tcp"] {
        assert_ne!(report[capability], "ok", "{capability} was allowed: {report}");
    }
}

#[test]
fn compiled_components_are_cached_on_disk_and_corrupt_entries_are_rebuilt() {
    let cache = tempfile::tempdir().unwrap();
    let options = RuntimeOptions { cache_dir: Some(cache.path().to_path_buf()), ..RuntimeOptions::default() };
    let runtime = Runtime::new(&options).unwrap();
    let first = runtime.load("tag", &component("tag.wasm"), Limits::default(), &Grants::default()).unwrap();
    let entries: Vec<PathBuf> = std::fs::read_dir(cache.path()).unwrap().map(|e| e.unwrap().path()).collect();
    assert_eq!(entries.len(), 1, "{entries:?}");
    assert!(entries[0].to_string_lossy().contains(first.digest()));
    // A second runtime loads from the cache; a corrupt entry is replaced.
    let again = Runtime::new(&options).unwrap();
    assert!(again.load("tag", &component("tag.wasm"), Limits::default(), &Grants::default()).is_ok());
    std::fs::write(&entries[0], b"garbage").unwrap();
    assert!(again.load("tag", &component("tag.wasm"), Limits::default(), &Grants::default()).is_ok());
    assert_ne!(std::fs::read(&entries[0]).unwrap(), b"garbage");
}

#[test]
fn files_that_are_not_links_are_refused_clearly() {
    let dir = tempfile::tempdir().unwrap();
    let runtime = runtime();
    let missing =
        runtime.load("x", &dir.path().join("missing.wasm"), Limits::default(), &Grants::default()).unwrap_err();
    assert!(matches!(missing, RuntimeError::Read { .. }) && missing.to_string().contains("cargo xtask build-links"));
    let junk = dir.path().join("junk.wasm");
    std::fs::write(&junk, b"not wasm").unwrap();
    assert!(matches!(
        runtime.load("x", &junk, Limits::default(), &Grants::default()).unwrap_err(),
        RuntimeError::Compile { .. }
    ));
}
