//! Links in Python and JavaScript run like Rust ones: the Python and JS `tag`
//! fixtures leave every real fixture vCon byte-identical to the Rust `tag`; they
//! run together in a chain; the Python runaways (a loop, an unbounded allocation)
//! end in the DLQ with the right reason while the worker carries on; and
//! `conserver link new --lang python|js|rust` gives a project that builds and
//! passes `conserver link test`.
//!
//! The fixtures and tools come from `cargo xtask test` (componentize-py and
//! ComponentizeJS under `<target>/tools`).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use serde_json::Value;

use crate::support::{Backend, Server, binary, component, fixture_dir, fresh_vcon, unique};

/// One compiled-component cache for these tests: each 12–20 MB component is
/// compiled once (a debug build takes seconds per component), then loaded warm.
fn component_cache() -> PathBuf {
    std::env::temp_dir().join("conserver-script-links-cache")
}

/// `conserver link test --json` over `files`: file → report.
fn link_test(component: &Path, files: &[PathBuf], extra: &[&str]) -> BTreeMap<String, Value> {
    let output = Command::new(binary())
        .args(["link", "test", "--json"])
        .arg(component)
        .args(files)
        .args(extra)
        .env("CONSERVER_COMPONENT_CACHE_DIR", component_cache())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let reports: BTreeMap<String, Value> = stdout
        .lines()
        .map(|line| serde_json::from_str::<Value>(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}")))
        .map(|report| (report["file"].as_str().unwrap().to_string(), report))
        .collect();
    assert_eq!(reports.len(), files.len(), "{stdout}\n{}", String::from_utf8_lossy(&output.stderr));
    reports
}

/// The stored text, with what ingest assigns afresh on every run blanked: the
/// `created_at` it adds to a vCon without one (the time of receipt) and the uuid
/// it gives a vCon whose own is missing or unusable. Nothing else changes.
fn comparable(file: &str, report: &Value) -> String {
    let mut text = report["vcon"].as_str().unwrap_or_default().to_string();
    let source: Value = serde_json::from_slice(&std::fs::read(file).unwrap()).unwrap();
    let plain = source.get("payload").is_none() && source.get("ciphertext").is_none();
    if plain && source.get("created_at").is_none() {
        let doc: Value = serde_json::from_str(&text).unwrap_or_default();
        if let Some(received) = doc["created_at"].as_str() {
            text = text.replacen(received, "<time of receipt>", 1);
        }
    }
    let assigned = report["uuid"].as_str().unwrap_or_default();
    let own = source["uuid"].as_str().map(str::to_lowercase);
    if plain && own.as_deref() != Some(assigned) {
        text = text.replace(assigned, "<assigned uuid>");
    }
    text
}

#[test]
fn python_and_js_tag_match_rust_on_every_fixture() {
    for corpus in conserver_fixtures::corpora() {
        tags_match_rust(&corpus);
    }
}

fn tags_match_rust(corpus: &conserver_fixtures::Corpus) {
    let files = conserver::vcon_files(&corpus.vcons).unwrap();
    assert!(files.len() >= 20, "{} corpus: {} vCons", corpus.name, files.len());
    let rust = link_test(&component("tag.wasm"), &files, &[]);
    for other in ["testing/py_tag.wasm", "testing/js_tag.wasm"] {
        let reports = link_test(&component(other), &files, &[]);
        for (file, expected) in &rust {
            let got = &reports[file];
            // Signed and encrypted forms carry no `attachments` a link can add to
            // without losing the uuid: every language fails them the same way.
            assert_eq!(got["verdict"], expected["verdict"], "{other} on {file}: {got}\nrust: {expected}");
            assert_eq!(got["error"], expected["error"], "{other} on {file}");
            let (expected, got) = (comparable(file, expected), comparable(file, got));
            assert!(got == expected, "{other} on {file} differs from the Rust tag:\nrust: {expected}\n{other}: {got}");
        }
    }
    let changed = rust.values().filter(|report| report["verdict"] == "changed").count();
    assert!(changed >= 18, "{} corpus: only {changed} vCons were tagged: {rust:?}", corpus.name);
    // The options reach every language the same way.
    let one = [files[0].clone()];
    let options = ["--options", "{tags: [vip, gold]}"];
    let rust = link_test(&component("tag.wasm"), &one, &options);
    for other in ["testing/py_tag.wasm", "testing/js_tag.wasm"] {
        let got = link_test(&component(other), &one, &options);
        assert_eq!(got.values().next().unwrap()["vcon"], rust.values().next().unwrap()["vcon"], "{other}");
    }
    assert!(rust.values().next().unwrap()["vcon"].as_str().unwrap().contains("vip:vip"));
}

#[tokio::test]
async fn python_and_js_links_run_in_a_chain_and_runaways_are_dead_lettered() {
    let (good_in, good_out, spin_in, grow_in) =
        (unique("py-good"), unique("py-good-out"), unique("py-spin"), unique("py-grow"));
    let config = format!(
        r#"links:
  py_tag:
    component: {py_tag}
    options: {{tags: [python]}}
  js_tag:
    component: {js_tag}
    options: {{tags: [javascript]}}
  tag:
    component: {tag}
    options: {{tags: [rust]}}
  py_spin:
    component: {py_spin}
    limits: {{fuel: 200000000}}
  py_grow:
    component: {py_grow}
    limits: {{memory_bytes: 100663296}}
chains:
  good:
    links: [py_tag, js_tag, tag, py_tag, js_tag]
    ingress_lists: [{good_in}]
    egress_lists: [{good_out}]
  spin:
    links: [py_spin]
    ingress_lists: [{spin_in}]
  grow:
    links: [py_grow]
    ingress_lists: [{grow_in}]
"#,
        py_tag = component("testing/py_tag.wasm").display(),
        js_tag = component("testing/js_tag.wasm").display(),
        tag = component("tag.wasm").display(),
        py_spin = component("testing/py_spin.wasm").display(),
        py_grow = component("testing/py_grow.wasm").display(),
    );
    // Compile the components into the shared cache first (`conserver check`), so
    // the server starts warm.
    let scratch = tempfile::tempdir().unwrap();
    let config_file = scratch.path().join("config.yml");
    std::fs::write(&config_file, &config).unwrap();
    let checked = Command::new(binary())
        .arg("check")
        .arg(&config_file)
        .env("CONSERVER_COMPONENT_CACHE_DIR", component_cache())
        .output()
        .unwrap();
    assert!(checked.status.success(), "check: {}", String::from_utf8_lossy(&checked.stderr));
    let cache = component_cache().display().to_string();
    let server = Server::start(Backend::Embedded, &config, &[("CONSERVER_COMPONENT_CACHE_DIR", cache.as_str())]).await;

    let (uuid, vcon) = fresh_vcon();
    assert_eq!(server.post_vcon(&vcon, &good_in).await.status(), 201);
    server.wait_for_egress(&good_out, &uuid, Duration::from_secs(60)).await;
    let (_, stored) = server.get_json(&format!("/api/vcon/{uuid}")).await;
    let text = stored.to_string();
    for tag in ["python:python", "javascript:javascript", "rust:rust"] {
        assert!(text.contains(tag), "{tag} missing after the mixed chain: {text}");
    }

    for (list, expected) in [(&spin_in, "fuel exhausted"), (&grow_in, "memory limit")] {
        let (bad, vcon) = fresh_vcon();
        assert_eq!(server.post_vcon(&vcon, list).await.status(), 201);
        let reason = server.wait_for_dlq(list, &bad, Duration::from_secs(120)).await;
        let error = reason["error"].as_str().unwrap_or_default();
        assert!(error.contains(expected), "{list}: expected `{expected}` in `{error}`");
        // The worker carries on.
        let (next, vcon) = fresh_vcon();
        assert_eq!(server.post_vcon(&vcon, &good_in).await.status(), 201);
        server.wait_for_egress(&good_out, &next, Duration::from_secs(60)).await;
    }
}

fn tools_dir() -> PathBuf {
    std::env::var_os("CONSERVER_TOOLS_DIR").map(PathBuf::from).expect(
        "CONSERVER_TOOLS_DIR is not set: run `cargo xtask test`, which installs componentize-py and ComponentizeJS",
    )
}

#[test]
fn link_new_gives_projects_that_build_and_pass_link_test() {
    let tools = tools_dir();
    let path = std::env::join_paths(
        [tools.join("py/bin"), tools.join("js/node_modules/.bin")]
            .into_iter()
            .chain(std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default())),
    )
    .unwrap();
    let sample = fixture_dir().join(conserver_fixtures::CALL);
    for lang in ["python", "js"] {
        let scratch = tempfile::tempdir().unwrap();
        let project = scratch.path().join("my_first");
        let created = Command::new(binary())
            .args(["link", "new", "my_first", "--lang", lang, "--dir"])
            .arg(&project)
            .output()
            .unwrap();
        assert!(created.status.success(), "{lang}: {}", String::from_utf8_lossy(&created.stderr));
        let built = Command::new(project.join("build.sh")).env("PATH", &path).output().unwrap();
        assert!(built.status.success(), "{lang} project does not build:\n{}", String::from_utf8_lossy(&built.stderr));
        let wasm = project.join("my_first.wasm");
        let tested = Command::new(binary())
            .args(["link", "test"])
            .arg(&wasm)
            .arg(&sample)
            .args(["--options", "{tag: vip}"])
            .env("CONSERVER_DATA_DIR", scratch.path().join("data"))
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&tested.stdout);
        assert!(
            tested.status.success(),
            "{lang}: link test failed:\n{stdout}\n{}",
            String::from_utf8_lossy(&tested.stderr)
        );
        assert!(stdout.contains(": changed"), "{lang}: {stdout}");
        assert!(stdout.contains("vip:vip") && stdout.contains("dialog_count"), "{lang}: {stdout}");
    }
}
