//! Every vCon of the test corpora (the project's, and the public real one when
//! `CONSERVER_REAL_VCONS` names it) is accepted and stored without losing a field;
//! every invalid vCon is refused with a problem naming the defective field.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly on purpose

use std::path::Path;

use conserver_core::{VconForm, ingest_vcon};
use conserver_fixtures::{Corpus, corpora};
use serde_json::Value;

fn accepted_without_losing_a_field(file: &Path) -> VconForm {
    let body = std::fs::read(file).unwrap();
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
    vcon.form
}

#[test]
fn every_vcon_of_every_corpus_is_accepted_without_losing_a_field() {
    for corpus in corpora() {
        let files = corpus.vcon_files();
        assert!(files.len() >= 20, "{} corpus: only {} vCons in {}", corpus.name, files.len(), corpus.vcons.display());
        let forms: Vec<VconForm> = files.iter().map(|f| accepted_without_losing_a_field(f)).collect();
        assert!(forms.contains(&VconForm::Signed), "{} corpus has no signed vCon", corpus.name);
        assert!(forms.contains(&VconForm::Encrypted), "{} corpus has no encrypted vCon", corpus.name);
    }
}

/// (file, the field a problem must name): the same defect classes in both corpora.
const INVALID: [(&str, &str); 11] = [
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

fn refused_naming_the_fields(corpus: &Corpus) {
    assert_eq!(corpus.invalid_files().len(), INVALID.len(), "{} corpus", corpus.name);
    for (name, field) in INVALID {
        let body = std::fs::read(corpus.invalid.join(name)).unwrap();
        let error = ingest_vcon(&body).expect_err(name);
        let fields: Vec<String> = error.problems().iter().map(|p| p.field()).collect();
        assert!(
            fields.iter().any(|f| f == field),
            "{} corpus, {name}: expected a problem at {field}, got {fields:?}",
            corpus.name
        );
        for problem in error.problems() {
            assert!(!problem.message.is_empty());
        }
    }
}

#[test]
fn every_invalid_vcon_is_refused_naming_the_field() {
    for corpus in corpora() {
        refused_naming_the_fields(&corpus);
    }
}
