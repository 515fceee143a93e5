//! The `scitt` link as a component in the real host against a SCRAPI stand-in
//! (support/scrapi.rs): every plain fixture vCon registered per `tel` party (or as
//! `vcon://<uuid>`), signed with the key from a granted secret, its statement
//! hash equal to what Python's `vcon.hash` gives for the same stored document
//! (computed here by python3 itself), the receipts verified and stored; a 303
//! service polled; a forged receipt dead-lettered while the next vCon completes.

use std::io::Write as _;
use std::process::{Command, Stdio};
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use p256::ecdsa::SigningKey;
use serde_json::Value;

use crate::support::scrapi::{Mode, Scrapi};
use crate::support::{Backend, Server, fresh_vcon, plain_fixture_vcons, unique};

/// The conserver's test signing key (scalar 0x22…, never used for anything else).
const SIGNING_KEY_PEM: &str = "-----BEGIN EC PRIVATE KEY-----
MHcCAQEEICIiIiIiIiIiIiIiIiIiIiIiIiIiIiIiIiIiIiIiIiIioAoGCCqGSM49AwEHoUQDQgAE
1lqTl3yqPRsIGFL/V6eeRl8WYFdzBLrq1QXdOkhYnPNQGF6JU3LfYiHqOhN1V+Rz/dtnVfBb1QfD
xTP86ckShQ==
-----END EC PRIVATE KEY-----
";

/// What Python's link computes: `hashlib.sha256(json.dumps(vcon_dict))` of the
/// document `VconRedis.get_vcon` returns (legacy names renamed on read), one per
/// line of compact JSON documents.
const PYTHON_HASH: &str = r#"
import hashlib, json, sys
def rename(d, old, new):
    if old in d:
        value = d.pop(old)
        if new not in d:
            d[new] = value
def normalize_legacy_fields(doc):
    for old, new in (("appended", "amended"), ("must_support", "critical")):
        rename(doc, old, new)
    for section in ("dialog", "analysis", "attachments"):
        for entry in doc.get(section) or []:
            if isinstance(entry, dict):
                for old, new in (("schema_version", "schema"), ("mimetype", "mediatype")):
                    rename(entry, old, new)
                if section == "attachments" and "purpose" not in entry:
                    rename(entry, "type", "purpose")
    return doc
for line in sys.stdin:
    print(hashlib.sha256(json.dumps(normalize_legacy_fields(json.loads(line))).encode()).hexdigest())
"#;

fn python_hashes(docs: &[String]) -> Vec<String> {
    let mut child = Command::new("python3")
        .args(["-c", PYTHON_HASH])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("python3 is part of the machine");
    let mut stdin = child.stdin.take().unwrap();
    for doc in docs {
        writeln!(stdin, "{doc}").unwrap();
    }
    drop(stdin);
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    String::from_utf8(out.stdout).unwrap().lines().map(str::to_string).collect()
}

fn conserver_public_key() -> Vec<u8> {
    SigningKey::from_slice(&[0x22; 32]).unwrap().verifying_key().to_sec1_point(false).as_bytes().to_vec()
}

/// The subjects the link registers for a stored document: each party's `tel`
/// (numbers as their text), or the `vcon://` URI when there is none.
fn expected_tels(doc: &Value) -> Vec<Option<String>> {
    let tels: Vec<Option<String>> = doc["parties"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|party| match &party["tel"] {
            Value::String(tel) if !tel.is_empty() => Some(Some(tel.clone())),
            Value::Number(n) if n.as_f64() != Some(0.0) => Some(Some(n.to_string())),
            _ => None,
        })
        .collect();
    if tels.is_empty() { vec![None] } else { tels }
}

fn link_entry(name: &str, scrapi: &Scrapi, options: &str) -> String {
    format!(
        "  {name}:\n    module: links.scitt\n    limits: {{timeout_ms: 60000, memory_bytes: 536870912}}\n    allowed_outbound_hosts: ['{}']\n    secrets: [SCITT_SIGNING_KEY]\n    options: {{scrapi_url: '{}'{options}}}",
        scrapi.url(),
        scrapi.url()
    )
}

/// The receipts the link stored on `stored` (its last analysis), as a list.
fn stored_receipts(stored: &Value) -> Vec<Value> {
    let analysis = stored["analysis"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(analysis["type"], "scitt_receipt");
    assert_eq!(analysis["dialog"], 0);
    assert_eq!(analysis["vendor"], "scittles");
    assert_eq!(analysis["encoding"], "json");
    match serde_json::from_str(analysis["body"].as_str().unwrap()).unwrap() {
        Value::Array(receipts) => receipts,
        single => vec![single],
    }
}

#[tokio::test]
async fn every_fixture_is_registered_with_pythons_hash_and_a_verified_receipt() {
    let scrapi = Scrapi::start(Mode::Synchronous).await;
    let (ingress, egress) = (unique("scitt-in"), unique("scitt-out"));
    let config = format!(
        "links:\n{}\nchains:\n  main:\n    links: [scitt]\n    ingress_lists: [{ingress}]\n    egress_lists: [{egress}]\n",
        link_entry("scitt", &scrapi, "")
    );
    let server = Server::start(Backend::Embedded, &config, &[("SCITT_SIGNING_KEY", SIGNING_KEY_PEM)]).await;

    let mut posted = Vec::new();
    for (name, mut vcon) in plain_fixture_vcons() {
        let uuid = uuid::Uuid::new_v4().to_string();
        vcon["uuid"] = Value::String(uuid.clone());
        let response = server.post_vcon(&vcon, &ingress).await;
        assert_eq!(response.status(), 201, "{name}");
        // The stored document, as the link reads it (in the stored key order).
        posted.push((name, uuid, response.text().await.unwrap()));
    }
    let hashes = python_hashes(&posted.iter().map(|(_, _, doc)| doc.clone()).collect::<Vec<_>>());
    assert_eq!(hashes.len(), posted.len());

    let expected: std::collections::HashSet<String> = posted.iter().map(|(_, uuid, _)| uuid.clone()).collect();
    let mut seen = std::collections::HashMap::new();
    assert!(
        server.drain_egress(&egress, &expected, &mut seen, Duration::from_secs(120)).await,
        "not every fixture reached egress: {seen:?}\n{}",
        server.log_text()
    );
    let mut registered = 0;
    for ((name, uuid, doc), hash) in posted.iter().zip(&hashes) {
        let doc: Value = serde_json::from_str(doc).unwrap();
        let (_, stored) = server.get_json(&format!("/api/vcon/{uuid}")).await;
        let receipts = stored_receipts(&stored);
        let tels = expected_tels(&doc);
        assert_eq!(receipts.len(), tels.len(), "{name}: one receipt per subject");
        for (receipt, tel) in receipts.iter().zip(&tels) {
            let subject = tel.as_ref().map_or_else(|| format!("vcon://{uuid}"), |tel| format!("tel:{tel}"));
            let payload = match tel {
                Some(tel) => format!("{hash}:vcon_created:{tel}"),
                None => format!("{hash}:vcon_created"),
            };
            assert_eq!(receipt["vcon_hash"], hash.as_str(), "{name}: the hash Python computes");
            assert_eq!(receipt["subject"], subject.as_str(), "{name}");
            assert_eq!(receipt["vcon_operation"], "vcon_created");
            assert_eq!(receipt["scrapi_url"], scrapi.url());
            let entries = scrapi.entries();
            let id: usize = receipt["entry_id"].as_str().unwrap().parse().unwrap();
            let entry = &entries[id];
            assert_eq!(entry.payload, payload, "{name}: the signed statement's payload");
            assert_eq!(entry.subject, subject);
            assert_eq!(entry.signer, conserver_public_key(), "signed with the key from the granted secret");
            assert_eq!(STANDARD.decode(receipt["cose_receipt"].as_str().unwrap()).unwrap(), entry.receipt);
            registered += 1;
        }
    }
    assert_eq!(registered, scrapi.entries().len(), "each statement registered once");
    assert!(!server.log_text().contains("BEGIN EC PRIVATE KEY"), "the key never reaches the log");
}

#[tokio::test]
async fn a_303_service_is_polled_and_a_forged_receipt_dead_letters_while_the_next_vcon_completes() {
    let polled = Scrapi::start(Mode::Operation).await;
    let forging = Scrapi::start(Mode::Forging).await;
    let (polled_in, forged_in, egress) = (unique("scitt303-in"), unique("scittforged-in"), unique("scitt-out"));
    let config = format!(
        "links:\n{}\n{}\nchains:\n  polled:\n    links: [scitt_polled]\n    ingress_lists: [{polled_in}]\n    egress_lists: [{egress}]\n  forged:\n    links: [scitt_forged]\n    ingress_lists: [{forged_in}]\n    egress_lists: [{egress}]\n",
        link_entry("scitt_polled", &polled, ", vcon_operation: vcon_enhanced"),
        link_entry("scitt_forged", &forging, "")
    );
    let server = Server::start(Backend::Embedded, &config, &[("SCITT_SIGNING_KEY", SIGNING_KEY_PEM)]).await;

    let (forged_uuid, vcon) = fresh_vcon();
    assert_eq!(server.post_vcon(&vcon, &forged_in).await.status(), 201);
    let reason = server.wait_for_dlq(&forged_in, &forged_uuid, Duration::from_secs(60)).await;
    assert_eq!(reason["link"], "scitt_forged");
    let error = reason["error"].as_str().unwrap();
    assert!(error.contains("not authentic"), "{error}");
    assert_eq!(reason["retryable"], false);

    let (uuid, vcon) = fresh_vcon();
    assert_eq!(server.post_vcon(&vcon, &polled_in).await.status(), 201);
    server.wait_for_egress(&egress, &uuid, Duration::from_secs(60)).await;
    let (_, stored) = server.get_json(&format!("/api/vcon/{uuid}")).await;
    let receipts = stored_receipts(&stored);
    let entries = polled.entries();
    assert_eq!(receipts.len(), 2, "the fixture has two parties with a tel");
    for (index, receipt) in receipts.iter().enumerate() {
        assert_eq!(receipt["entry_id"], index.to_string(), "the entryID the operation gave");
        assert_eq!(receipt["vcon_operation"], "vcon_enhanced");
        assert!(
            entries[index]
                .payload
                .ends_with(&format!(":vcon_enhanced:{}", vcon["parties"][index]["tel"].as_str().unwrap()))
        );
        assert_eq!(STANDARD.decode(receipt["cose_receipt"].as_str().unwrap()).unwrap(), entries[index].receipt);
    }
}
