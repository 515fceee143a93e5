//! Every vCon of the test corpora (the project's, and the public real one when
//! `CONSERVER_REAL_VCONS` names it) is accepted (201) and read back without losing
//! a field; every invalid one gets 422 naming the defective field.

use conserver_fixtures::corpora;
use serde_json::Value;

use crate::on_both_backends;
use crate::support::{Backend, TestApi};

async fn every_vcon_is_accepted_and_reads_back(backend: Backend) {
    let api = TestApi::new(backend).await;
    for corpus in corpora() {
        let files = corpus.vcon_files();
        assert!(files.len() >= 20, "{} corpus: {} vCons", corpus.name, files.len());
        for file in files {
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
    for corpus in corpora() {
        assert_eq!(corpus.invalid_files().len(), expected.len(), "{} corpus", corpus.name);
        for (name, field) in expected {
            let text = std::fs::read(corpus.invalid.join(name)).unwrap();
            let reply = api.post_raw("/api/vcon", text).await;
            assert_eq!(reply.code(), 422, "{} corpus: {name}", corpus.name);
            let detail = reply.json()["detail"].clone();
            let named = detail.as_array().unwrap().iter().any(|entry| {
                entry["loc"].as_array().is_some_and(|loc| loc.iter().any(|part| part == field))
                    && entry["msg"].as_str().is_some_and(|msg| msg.contains(field))
            });
            assert!(named, "{} corpus, {name}: no problem names `{field}`: {detail}", corpus.name);
        }
    }
}

on_both_backends!(every_vcon_is_accepted_and_reads_back, every_invalid_vcon_gets_422_naming_the_field);
