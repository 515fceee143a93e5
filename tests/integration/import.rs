//! `conserver import <dir>`: every vCon file under the project's fixtures enqueued
//! exactly once (a uuid shared by several files appears once per file), and a
//! directory of invalid vCons refused file by file with nothing enqueued.

use std::collections::HashMap;
use std::path::Path;
use std::process::Command;

use serde_json::Value;

use crate::support::{Backend, Server, binary, fixture_dir, unique};

fn import(server: &Server, dir: &Path, list: &str) -> std::process::Output {
    Command::new(binary())
        .args(["import", "--ingress-list", list, "--url", &server.base])
        .arg(dir)
        .env_remove("CONSERVER_API_TOKEN")
        .output()
        .unwrap()
}

/// The uuid a vCon file names: plain (`uuid`), encrypted (`unprotected.uuid`) or
/// signed (the payload's `uuid`).
fn file_uuid(doc: &Value) -> Option<String> {
    use base64::Engine as _;
    if let Some(uuid) = doc["uuid"].as_str().or_else(|| doc["unprotected"]["uuid"].as_str()) {
        return Some(uuid.to_string());
    }
    let payload = doc["payload"].as_str()?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(payload.trim_end_matches('=')).ok()?;
    let inner: Value = serde_json::from_slice(&bytes).ok()?;
    inner["uuid"].as_str().map(String::from)
}

async fn list_contents(server: &Server, list: &str) -> Vec<String> {
    let (status, popped) = server.get_json(&format!("/api/vcon/egress?egress_list={list}&limit=10000")).await;
    assert_eq!(status, 200);
    popped.as_array().unwrap().iter().map(|u| u.as_str().unwrap().to_string()).collect()
}

#[tokio::test]
async fn import_enqueues_every_fixture_file_exactly_once() {
    let list = unique("import");
    let server = Server::start(Backend::Embedded, "chains: {}\n", &[]).await;
    let files = conserver::vcon_files(&fixture_dir()).unwrap();
    assert!(files.len() >= 20, "expected the project's fixtures, found {}", files.len());

    let output = import(&server, &fixture_dir(), &list);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "import failed:\n{stdout}\n{}", String::from_utf8_lossy(&output.stderr));
    assert!(stdout.contains(&format!("imported {} of {} file(s)", files.len(), files.len())), "{stdout}");

    let queued = list_contents(&server, &list).await;
    assert_eq!(queued.len(), files.len(), "one entry per file");
    let mut counts: HashMap<&str, usize> = HashMap::new();
    for uuid in &queued {
        *counts.entry(uuid.as_str()).or_default() += 1;
    }
    let mut expected: HashMap<String, usize> = HashMap::new();
    for file in &files {
        // A vCon without a uuid gets one from the server; it still counts above.
        if let Some(uuid) = file_uuid(&serde_json::from_slice(&std::fs::read(file).unwrap()).unwrap()) {
            *expected.entry(uuid.to_lowercase()).or_default() += 1;
        }
    }
    assert!(expected.len() >= 10, "the fixtures should name their uuids");
    for (uuid, times) in &expected {
        assert_eq!(counts.get(uuid.as_str()).copied().unwrap_or(0), *times, "{uuid} should be queued {times} time(s)");
    }
    // Every queued uuid is a stored vCon.
    for uuid in counts.keys() {
        let (status, stored): (u16, Value) = server.get_json(&format!("/api/vcon/{uuid}")).await;
        assert_eq!(status, 200, "{uuid} was queued but not stored: {stored}");
    }
}

#[tokio::test]
async fn invalid_files_are_reported_and_nothing_is_enqueued() {
    let list = unique("import-invalid");
    let server = Server::start(Backend::Embedded, "chains: {}\n", &[]).await;
    let invalid = conserver_fixtures::invalid_dir();
    let files = conserver::vcon_files(&invalid).unwrap();
    let output = import(&server, &invalid, &list);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "an import with refused files must fail");
    assert!(stderr.contains(&format!("{} file(s) were not imported", files.len())), "{stderr}");
    assert!(stderr.contains("422"), "each refusal quotes the server: {stderr}");
    assert!(list_contents(&server, &list).await.is_empty());
}
