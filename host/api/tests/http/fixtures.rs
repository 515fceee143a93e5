//! The 20 real vCons are accepted (201) and read back without losing a field; the
//! 11 invalid ones get 422 naming the defective field.

use serde_json::Value;

use crate::on_both_backends;
use crate::support::{Backend, TestApi, shared};

fn files(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        if path.is_dir() {
            out.extend(files(&path));
        } else if path.extension().is_some_and(|e| e == "vcon" || e == "json") {
            out.push(path);
        }
    }
    out.sort();
    out
}

async fn every_real_vcon_is_accepted_and_reads_back(backend: Backend) {
    let api = TestApi::new(backend).await;
    let real = files(&shared().join("fixtures/vcons"));
    assert_eq!(real.len(), 20);
    for file in real {
        let text = std::fs::read(&file).unwrap();
        let created = api.post_raw("/api/vcon?ingress_lists=", text.clone()).await;
        assert_eq!(created.code(), 201, "{}: {:?}", file.display(), String::from_utf8_lossy(&created.bytes));
        let stored = created.json();
        let sent: Value = serde_json::from_slice(&text).unwrap();
        let uuid = match stored["uuid"].as_str() {
            Some(uuid) => uuid.to_string(),
            // Signed and encrypted forms are stored as sent; find their uuid in the form.
            None => sent["signatures"][0]["header"]["uuid"]
                .as_str()
                .or(sent["unprotected"]["uuid"].as_str())
                .unwrap()
                .to_string(),
        };
        let read = api.get(&format!("/api/vcon/{uuid}")).await;
        assert_eq!(read.code(), 200, "{}", file.display());
        let read = read.json();
        for (key, value) in sent.as_object().unwrap() {
            if key != "uuid" {
                assert_eq!(&read[key], value, "{}: field {key} changed", file.display());
            }
        }
    }
}

async fn every_invalid_vcon_gets_422_naming_the_field(backend: Backend) {
    let api = TestApi::new(backend).await;
    let expected = [
        ("bad_dialog_types.json", "duration"),
        ("bad_duration.json", "duration"),
        ("bad_mimetype.json", "mimetype"),
        ("bad_party_ref.json", "parties"),
        ("bad_url.json", "url"),
        ("empty_vcon.json", "uuid"),
        ("invalid_dialog_url.json", "url"),
        ("missing_uuid_and_vcon_version.json", "uuid"),
        ("null_dialog_string_analysis.json", "dialog"),
        ("null_parties.json", "parties"),
        ("out_of_range_party_indices.json", "parties"),
    ];
    assert_eq!(files(&shared().join("fixtures/invalid")).len(), expected.len());
    for (name, field) in expected {
        let text = std::fs::read(shared().join("fixtures/invalid").join(name)).unwrap();
        let reply = api.post_raw("/api/vcon", text).await;
        assert_eq!(reply.code(), 422, "{name}");
        let detail = reply.json()["detail"].clone();
        let named = detail.as_array().unwrap().iter().any(|entry| {
            entry["loc"].as_array().is_some_and(|loc| loc.iter().any(|part| part == field))
                && entry["msg"].as_str().is_some_and(|msg| msg.contains(field))
        });
        assert!(named, "{name}: no problem names `{field}`: {detail}");
    }
}

on_both_backends!(every_real_vcon_is_accepted_and_reads_back, every_invalid_vcon_gets_422_naming_the_field);
