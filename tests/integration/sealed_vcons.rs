//! Signed (JWS) and encrypted (JWE) vCons in a chain (issue #18, item 5), with
//! the project's signed and encrypted fixtures (which share one uuid, so each
//! test runs its own server): the links read a signed vCon's payload; a change
//! makes an unsigned successor that names the signed original in `amended`; no
//! change passes the signed original on unchanged; an encrypted vCon is stored
//! and forwarded unchanged with the links skipped and counted.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::support::{Backend, Server, component, fixture_vcon, unique};

/// The fixtures' uuid.
const UUID: &str = "018f3c2a-1b2c-8d3e-9f40-51a2b3c4d5e6";

/// A server with a chain that changes every vCon (`tag`) and one that changes
/// none (`expire_vcon`): `(server, [changes_in, keeps_in, changes_out, keeps_out])`.
async fn two_chains() -> (Server, [String; 4]) {
    let lists = ["seal-tag-in", "seal-keep-in", "seal-tag-out", "seal-keep-out"].map(unique);
    let [changes_in, keeps_in, changes_out, keeps_out] = &lists;
    let config = format!(
        "links:\n  tag:\n    component: {tag}\n    options: {{tags: ['reviewed:yes']}}\n  expire:\n    component: {expire}\n    options: {{seconds: 3600}}\nchains:\n  changes:\n    links: [tag]\n    ingress_lists: [{changes_in}]\n    egress_lists: [{changes_out}]\n  keeps:\n    links: [expire]\n    ingress_lists: [{keeps_in}]\n    egress_lists: [{keeps_out}]\n",
        tag = component("tag.wasm").display(),
        expire = component("expire_vcon.wasm").display(),
    );
    (Server::start(Backend::Embedded, &config, &[]).await, lists)
}

/// The first uuid to appear on `list` (popped).
async fn first_on(server: &Server, list: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        let (_, popped) = server.get_json(&format!("/api/vcon/egress?egress_list={list}&limit=1")).await;
        if let Some(uuid) = popped.as_array().and_then(|a| a.first()).and_then(Value::as_str) {
            return uuid.to_string();
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("nothing reached {list}:\n{}", server.log_text());
}

fn counted(metrics: &str, form: &str, outcome: &str) -> bool {
    metrics.lines().any(|line| {
        line.starts_with("conserver_vcons_sealed_total")
            && line.contains(&format!("form=\"{form}\""))
            && line.contains(&format!("outcome=\"{outcome}\""))
    })
}

#[tokio::test]
async fn a_changed_signed_vcon_becomes_an_unsigned_successor_and_an_unchanged_one_passes_as_signed() {
    let (server, [changes_in, keeps_in, changes_out, keeps_out]) = two_chains().await;
    let signed = fixture_vcon(conserver_fixtures::CALL_SIGNED);
    assert_eq!(server.post_vcon(&signed, &format!("{changes_in}&ingress_lists={keeps_in}")).await.status(), 201);

    let successor = first_on(&server, &changes_out).await;
    assert_ne!(successor, UUID, "a changed signed vCon is passed on under a uuid of its own");
    let (status, document) = server.get_json(&format!("/api/vcon/{successor}")).await;
    assert_eq!(status, 200, "{document}");
    assert_eq!(document["amended"]["uuid"], UUID, "{document}");
    assert!(document["amended"]["content_hash"].as_str().is_some_and(|h| h.starts_with("sha512-")), "{document}");
    assert!(document.get("signatures").is_none(), "the successor is unsigned");
    assert!(document.to_string().contains("reviewed:yes"), "the link read the payload and changed it: {document}");
    assert_eq!(document["parties"], fixture_vcon(conserver_fixtures::CALL)["parties"], "the payload's content");

    let mut kept = HashMap::new();
    let original: HashSet<String> = std::iter::once(UUID.to_string()).collect();
    assert!(
        server.drain_egress(&keeps_out, &original, &mut kept, Duration::from_secs(60)).await,
        "{}",
        server.log_text()
    );
    let (_, stored) = server.get_json(&format!("/api/vcon/{UUID}")).await;
    assert_eq!(stored["signatures"], signed["signatures"], "the signed original is kept as it was");

    for list in [&changes_in, &keeps_in] {
        let (_, dlq) = server.get_json(&format!("/api/dlq?ingress_list={list}")).await;
        assert_eq!(dlq, Value::Array(vec![]), "nothing dead-lettered from {list}");
    }
    let metrics = server.get_text("/metrics").await;
    assert!(counted(&metrics, "signed", "successor") && counted(&metrics, "signed", "unchanged"), "{metrics}");
}

#[tokio::test]
async fn an_encrypted_vcon_is_stored_and_forwarded_unchanged_with_the_links_skipped() {
    let (server, [changes_in, _, changes_out, _]) = two_chains().await;
    let encrypted = fixture_vcon(conserver_fixtures::CALL_ENCRYPTED);
    assert_eq!(server.post_vcon(&encrypted, &changes_in).await.status(), 201);
    assert_eq!(first_on(&server, &changes_out).await, UUID, "forwarded under its own uuid");
    let (_, stored) = server.get_json(&format!("/api/vcon/{UUID}")).await;
    assert_eq!(stored, encrypted, "stored exactly as it came");
    let (_, dlq) = server.get_json(&format!("/api/dlq?ingress_list={changes_in}")).await;
    assert_eq!(dlq, Value::Array(vec![]), "nothing dead-lettered");
    assert!(counted(&server.get_text("/metrics").await, "encrypted", "links_skipped"));
    assert!(server.log_text().contains("encrypted vCon: links skipped"));
}
