//! Helpers shared by the storage test binaries: the real fixture vCons and a
//! storage built from a config entry.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::sync::Arc;

use conserver_config::StorageDef;
use conserver_storage::{Storage, build};
use serde_json::Value;

pub fn shared() -> PathBuf {
    std::env::var_os("CONSERVER_SHARED_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared"))
}

/// Every real fixture as conserver stores it: (uuid, JSON text).
pub fn fixtures() -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut stack = vec![shared().join("fixtures/vcons")];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(dir).unwrap().flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "vcon" || e == "json") {
                let vcon = conserver_core::ingest_vcon(&std::fs::read(&path).unwrap()).unwrap();
                // Fresh uuids: the shared servers outlive this test.
                let fresh = uuid::Uuid::new_v4().to_string();
                out.push((fresh.clone(), vcon.json.replace(&vcon.uuid, &fresh)));
            }
        }
    }
    assert_eq!(out.len(), 20);
    out
}

pub fn storage(module: &str, options: Value) -> Arc<dyn Storage> {
    build("under-test", &StorageDef { module: module.into(), options: Some(options), ..StorageDef::default() }).unwrap()
}
