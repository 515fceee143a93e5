//! The runtime against the `hostile` fixture link (built from source by
//! `cargo xtask build-links`): host resources, output size and shape, log
//! floods and link-supplied failure text are all held to the call's budgets.
//! Bounds are asserted on counts and sizes, never on timing.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly on purpose

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use conserver_config::Limits;
use conserver_runtime::{Budget, CallContext, Grants, LinkFailure, LinkOutcome, LoadedLink, Runtime, RuntimeOptions};
use serde_json::{Value, json};

const UUID: &str = "0189f7e4-c0b1-7f3e-9f3a-1c2b3d4e5f60";

fn component(relative: &str) -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let profile_dir = exe.parent().and_then(Path::parent).unwrap();
    let path = profile_dir.join("links").join(relative);
    assert!(path.is_file(), "{} is missing: run `cargo xtask build-links` (or `cargo xtask test`)", path.display());
    path
}

fn hostile(runtime: &Runtime, limits: Limits, grants: &Grants) -> LoadedLink {
    runtime.load("hostile", &component("testing/hostile.wasm"), limits, grants).unwrap()
}

async fn call(link: &LoadedLink, chain: &str, options: Value) -> Result<LinkOutcome, LinkFailure> {
    let vcon = json!({"vcon": "0.4.0", "uuid": UUID, "parties": [], "attachments": []}).to_string();
    let options = options.to_string();
    let ctx = CallContext { chain, vcon_uuid: UUID, ingress_list: "in", options_json: &options };
    link.invoke(ctx, &vcon).await
}

fn budget(result: &Result<LinkOutcome, LinkFailure>) -> Option<(Budget, u64)> {
    match result {
        Err(LinkFailure::Budget { budget, limit }) => Some((*budget, *limit)),
        _ => None,
    }
}

/// This process's resident memory, in bytes.
fn rss_bytes() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find(|line| line.starts_with("VmRSS:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse::<u64>().unwrap() * 1024
}

#[tokio::test]
async fn header_maps_past_the_resource_budgets_fail_the_call_and_the_host_stays_small() {
    let runtime = Runtime::new(&RuntimeOptions::default()).unwrap();
    let link = hostile(&runtime, Limits { memory_bytes: 32 << 20, ..Limits::default() }, &Grants::default());

    // Many empty header maps: the count budget.
    let many = call(&link, "main", json!({"mode": "fields", "count": 5_000})).await;
    assert_eq!(budget(&many), Some((Budget::HostResources, 1024)), "{many:?}");
    let reason = many.unwrap_err().to_string();
    assert!(reason.contains("host_resources") && reason.contains("1024"), "{reason}");

    // Fuller ones: the byte budget, reached (16 MiB / 20 kB ≈ 840 maps) before the
    // count budget. Unbounded, this call would hold 20 000 × 20 kB = 400 MB on the
    // host (the link's own memory stays at 32 MiB).
    let before = rss_bytes();
    let full = call(&link, "main", json!({"mode": "fields", "count": 20_000, "value_bytes": 20_000})).await;
    let grown = rss_bytes().saturating_sub(before);
    assert_eq!(budget(&full), Some((Budget::HostResourceBytes, 16 << 20)), "{full:?}");
    assert!(grown < 100 << 20, "the host grew by {grown} bytes during the call");

    // A link that keeps what it needs is untouched, and the link stays usable.
    let few = call(&link, "main", json!({"mode": "fields", "count": 50, "value_bytes": 1_000})).await;
    assert!(few.is_ok(), "{few:?}");
}

#[tokio::test]
async fn the_resource_budgets_are_per_link_limits() {
    let runtime = Runtime::new(&RuntimeOptions::default()).unwrap();
    let tight = Limits { host_resources: 10, host_resource_bytes: 1 << 20, ..Limits::default() };
    let link = hostile(&runtime, tight, &Grants::default());
    let result = call(&link, "main", json!({"mode": "fields", "count": 11})).await;
    assert_eq!(budget(&result), Some((Budget::HostResources, 10)), "{result:?}");
    assert!(call(&link, "main", json!({"mode": "fields", "count": 5})).await.is_ok());
}

#[tokio::test]
async fn outputs_past_their_size_depth_or_values_are_refused() {
    let runtime = Runtime::new(&RuntimeOptions::default()).unwrap();
    let defaults = hostile(&runtime, Limits::default(), &Grants::default());
    let deep = call(&defaults, "main", json!({"mode": "deep", "depth": 100_000})).await;
    assert_eq!(budget(&deep), Some((Budget::OutputDepth, 64)), "{deep:?}");
    assert!(call(&defaults, "main", json!({"mode": "deep", "depth": 60})).await.is_ok());
    // 4 MB of `[0,0,…]`: two million values, a quarter of a gigabyte once parsed.
    let dense = call(&defaults, "main", json!({"mode": "output", "bytes": 4_000_000})).await;
    assert_eq!(budget(&dense), Some((Budget::OutputValues, 1_000_000)), "{dense:?}");

    let small = hostile(&runtime, Limits { output_bytes: 1 << 20, ..Limits::default() }, &Grants::default());
    let big = call(&small, "main", json!({"mode": "output", "bytes": 2 << 20})).await;
    assert_eq!(budget(&big), Some((Budget::OutputBytes, 1 << 20)), "{big:?}");
    assert!(big.unwrap_err().to_string().contains("output_bytes"));
    assert!(call(&small, "main", json!({"mode": "output", "bytes": 500_000})).await.is_ok());
}

#[tokio::test]
async fn refusal_text_is_bounded_and_cannot_forge_a_line() {
    let runtime = Runtime::new(&RuntimeOptions::default()).unwrap();
    let link = hostile(&runtime, Limits::default(), &Grants::default());
    let huge = call(&link, "main", json!({"mode": "error", "bytes": 5_000_000})).await.unwrap_err();
    let LinkFailure::Refused { message, .. } = &huge else { panic!("{huge:?}") };
    assert!(message.len() < 4200, "a {}-byte refusal reason", message.len());
    assert!(message.ends_with("…[4995904 more bytes]"), "{}", &message[message.len() - 40..]);
    let forged = json!({"mode": "error", "message": "nope\n2026-01-01T00:00:00Z  INFO conserver: forged\r"});
    let failure = call(&link, "main", forged).await.unwrap_err();
    let LinkFailure::Refused { message, .. } = &failure else { panic!("{failure:?}") };
    assert_eq!(message, "nope\\n2026-01-01T00:00:00Z  INFO conserver: forged\\r");
}

/// Everything written to the log while `future` runs (on this thread).
async fn logged<F: Future>(future: F) -> (F::Output, String) {
    #[derive(Clone, Default)]
    struct Buffer(Arc<Mutex<Vec<u8>>>);
    impl std::io::Write for Buffer {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(bytes);
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let buffer = Buffer::default();
    let writer = buffer.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .with_max_level(tracing::Level::INFO)
        .finish();
    let guard = tracing::subscriber::set_default(subscriber);
    let output = future.await;
    drop(guard);
    let text = String::from_utf8(buffer.0.lock().unwrap().clone()).unwrap();
    (output, text)
}

#[tokio::test]
async fn log_floods_stop_at_the_call_budget_with_one_summary_line() {
    let runtime = Runtime::new(&RuntimeOptions::default()).unwrap();
    // No host is allowed: every request is denied.
    let link = hostile(&runtime, Limits::default(), &Grants::default());
    let floods = [
        ("own lines", json!({"mode": "log", "lines": 10_000})),
        ("secret denials", json!({"mode": "secrets", "count": 10_000})),
        ("HTTP denials", json!({"mode": "denied", "count": 1_000, "url": "http://denied.invalid/"})),
    ];
    for (what, options) in floods {
        let chain = format!("log-flood-{}", what.replace(' ', "-"));
        let (result, text) = logged(call(&link, &chain, options)).await;
        assert!(result.is_ok(), "{what}: {result:?}");
        let lines = text.lines().count();
        assert!((90..=101).contains(&lines), "{what}: {lines} lines written");
        let summaries: Vec<&str> = text.lines().filter(|line| line.contains("log budget used up")).collect();
        assert_eq!(summaries.len(), 1, "{what}: {text}");
        assert!(summaries[0].contains("lines /") && summaries[0].contains("dropped"), "{}", summaries[0]);
        let metrics = conserver_core::metrics::render_prometheus();
        let breach = format!(
            "conserver_link_limit_breaches_total{{link_name=\"hostile\",chain_name=\"{chain}\",kind=\"log_lines\"}} 1"
        );
        assert!(metrics.contains(&breach), "{what}: missing `{breach}`");
    }

    // Long lines: the byte budget (64 KiB) admits 16 lines of 4 KiB.
    let (result, text) =
        logged(call(&link, "log-flood-bytes", json!({"mode": "log", "lines": 50, "line_bytes": 4000}))).await;
    assert!(result.is_ok(), "{result:?}");
    assert_eq!(text.lines().filter(|line| line.contains("xxxx")).count(), 16, "{text}");
    assert!(text.contains("budget=\"log_bytes\"") || text.contains("budget=log_bytes"), "{text}");

    // A quiet call writes what it logs and no summary.
    let (result, text) = logged(call(&link, "log-quiet", json!({"mode": "log", "lines": 3}))).await;
    assert!(result.is_ok(), "{result:?}");
    assert_eq!(text.lines().count(), 3, "{text}");
}

#[tokio::test]
async fn a_log_message_cannot_forge_a_line() {
    let runtime = Runtime::new(&RuntimeOptions::default()).unwrap();
    let link = hostile(&runtime, Limits::default(), &Grants::default());
    let message = "hello\n2026-01-01T00:00:00.000000Z  INFO conserver: admin token accepted\r\u{1b}[1A";
    let options = json!({"mode": "log", "lines": 1, "message": message});
    let (result, text) = logged(call(&link, "log-forge", options)).await;
    assert!(result.is_ok(), "{result:?}");
    assert_eq!(text.lines().count(), 1, "{text}");
    assert!(
        text.contains("hello\\n2026-01-01T00:00:00.000000Z  INFO conserver: admin token accepted\\r\\u{1b}[1A"),
        "{text}"
    );
}
