//! Every real vCon in `../shared/fixtures/vcons/` is accepted and stored without
//! losing a field; every file in `../shared/fixtures/invalid/` is refused with a
//! problem naming the defective field.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly on purpose

use std::path::{Path, PathBuf};

use conserver_core::{VconForm, ingest_vcon};
use serde_json::Value;

fn shared() -> PathBuf {
    std::env::var_os("CONSERVER_SHARED_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared"))
}

fn vcon_files(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        if path.is_dir() {
            files.extend(vcon_files(&path));
        } else if path.extension().is_some_and(|e| e == "vcon" || e == "json") {
            files.push(path);
        }
    }
    files.sort();
    files
}

#[test]
fn all_twenty_real_vcons_are_accepted_without_losing_a_field() {
    let files = vcon_files(&shared().join("fixtures/vcons"));
    assert_eq!(files.len(), 20, "{files:?}");
    for file in files {
        let body = std::fs::read(&file).unwrap();
        let vcon = ingest_vcon(&body).unwrap_or_else(|e| panic!("{} refused: {e}", file.display()));
        let sent: Value = serde_json::from_slice(&body).unwrap();
        let stored: Value = serde_json::from_str(&vcon.json).unwrap();
        match vcon.form {
            VconForm::Unsigned => {
                for (key, value) in sent.as_object().unwrap() {
                    if key == "uuid" {
                        continue;
                    }
                    assert_eq!(&stored[key], value, "{}: field {key} changed", file.display());
                }
                assert_eq!(stored["uuid"], vcon.uuid.as_str());
                assert!(stored.get("created_at").is_some());
            }
            VconForm::Signed | VconForm::Encrypted => assert_eq!(stored, sent, "{}", file.display()),
        }
    }
}

#[test]
fn all_eleven_invalid_vcons_are_refused_naming_the_field() {
    let expected = [
        ("bad_dialog_types.json", "dialog[0].duration"),
        ("bad_duration.json", "dialog[0].duration"),
        ("bad_mimetype.json", "dialog[0].mimetype"),
        ("bad_party_ref.json", "dialog[0].parties"),
        ("bad_url.json", "dialog[0].url"),
        ("empty_vcon.json", "uuid"),
        ("invalid_dialog_url.json", "dialog[0].url"),
        ("missing_uuid_and_vcon_version.json", "uuid"),
        ("null_dialog_string_analysis.json", "dialog"),
        ("null_parties.json", "parties"),
        ("out_of_range_party_indices.json", "dialog[0].parties"),
    ];
    let files = vcon_files(&shared().join("fixtures/invalid"));
    assert_eq!(files.len(), expected.len());
    for (name, field) in expected {
        let body = std::fs::read(shared().join("fixtures/invalid").join(name)).unwrap();
        let error = ingest_vcon(&body).expect_err(name);
        let fields: Vec<String> = error.problems().iter().map(|p| p.field()).collect();
        assert!(fields.iter().any(|f| f == field), "{name}: expected a problem at {field}, got {fields:?}");
        for problem in error.problems() {
            assert!(!problem.message.is_empty());
        }
    }
}
