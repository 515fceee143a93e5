//! Helpers shared by the storage test binaries: the fixture vCons and a
//! storage built from a config entry.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use conserver_config::StorageDef;
use conserver_storage::{Storage, build};
use serde_json::Value;

/// Every vCon of the test corpora (the project's, and the public real one when
/// `CONSERVER_REAL_VCONS` names it) as conserver stores it: (uuid, JSON text).
pub fn fixtures() -> Vec<(String, String)> {
    let mut out = Vec::new();
    for corpus in conserver_fixtures::corpora() {
        let files = corpus.vcon_files();
        assert!(files.len() >= 20, "{} corpus: {} vCons", corpus.name, files.len());
        for path in files {
            let vcon = conserver_core::ingest_vcon(&std::fs::read(&path).unwrap()).unwrap();
            // Fresh uuids: the shared servers outlive this test.
            let fresh = uuid::Uuid::new_v4().to_string();
            out.push((fresh.clone(), vcon.json.replace(&vcon.uuid, &fresh)));
        }
    }
    out
}

/// The first fixture whose `field` is a list starting with an object.
pub fn fixture_with(field: &str) -> (String, String) {
    fixtures()
        .into_iter()
        .find(|(_, text)| serde_json::from_str::<Value>(text).is_ok_and(|doc| doc[field][0].is_object()))
        .unwrap_or_else(|| panic!("no fixture has a `{field}` list of objects"))
}

pub fn storage(module: &str, options: Value) -> Arc<dyn Storage> {
    build("under-test", &StorageDef { module: module.into(), options: Some(options) }).unwrap()
}
