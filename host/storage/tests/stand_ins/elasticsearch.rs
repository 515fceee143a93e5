//! `storage.elasticsearch` against a local HTTP server answering the three calls
//! the backend makes as Elasticsearch 8 does (`POST /_bulk` with per-item results
//! and lower-case index names enforced, `GET /<pattern>/_alias`, `POST
//! /<indices>/_delete_by_query`). No Elasticsearch server can be installed here.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{get, post};
use serde_json::{Value, json};

use crate::common::{fixture_with, fixtures, storage};

#[derive(Default)]
pub(crate) struct Cluster {
    /// (index, id) → document.
    documents: BTreeMap<(String, String), Value>,
    authorizations: Vec<String>,
}

pub(crate) type Shared = Arc<Mutex<Cluster>>;

async fn bulk(State(cluster): State<Shared>, headers: HeaderMap, body: String) -> (StatusCode, axum::Json<Value>) {
    let mut cluster = cluster.lock().unwrap();
    if let Some(auth) = headers.get("authorization").and_then(|v| v.to_str().ok()) {
        cluster.authorizations.push(auth.to_string());
    }
    let lines: Vec<&str> = body.lines().filter(|l| !l.trim().is_empty()).collect();
    let mut items = Vec::new();
    let mut errors = false;
    for pair in lines.chunks(2) {
        let Ok(action) = serde_json::from_str::<Value>(pair[0]) else {
            return (StatusCode::BAD_REQUEST, axum::Json(json!({"error": "malformed action"})));
        };
        let index = action["index"]["_index"].as_str().unwrap_or_default().to_string();
        let id = action["index"]["_id"].as_str().unwrap_or_default().to_string();
        if index.chars().any(|c| c.is_ascii_uppercase()) {
            errors = true;
            items.push(json!({"index": {"_index": index, "_id": id, "status": 400,
                "error": {"type": "invalid_index_name_exception", "reason": "must be lowercase"}}}));
            continue;
        }
        let document: Value = serde_json::from_str(pair[1]).unwrap();
        let result = if cluster.documents.insert((index.clone(), id.clone()), document).is_some() {
            "updated"
        } else {
            "created"
        };
        items.push(json!({"index": {"_index": index, "_id": id, "status": 201, "result": result}}));
    }
    (StatusCode::OK, axum::Json(json!({"took": 1, "errors": errors, "items": items})))
}

fn matches(pattern: &str, index: &str) -> bool {
    pattern.split(',').any(|p| match p.strip_suffix('*') {
        Some(prefix) => index.starts_with(prefix),
        None => index == p,
    })
}

async fn aliases(State(cluster): State<Shared>, Path(pattern): Path<String>) -> axum::Json<Value> {
    let cluster = cluster.lock().unwrap();
    let mut out = serde_json::Map::new();
    for (index, _) in cluster.documents.keys() {
        if matches(&pattern, index) {
            out.insert(index.clone(), json!({"aliases": {}}));
        }
    }
    axum::Json(Value::Object(out))
}

async fn delete_by_query(
    State(cluster): State<Shared>,
    Path(indices): Path<String>,
    axum::Json(query): axum::Json<Value>,
) -> axum::Json<Value> {
    let wanted = query["query"]["match"]["vcon_id"].clone();
    let mut cluster = cluster.lock().unwrap();
    let before = cluster.documents.len();
    cluster.documents.retain(|(index, _), doc| !(matches(&indices, index) && doc["vcon_id"] == wanted));
    axum::Json(json!({"deleted": before - cluster.documents.len(), "failures": []}))
}

/// Answer as Elasticsearch on `listener` until the process ends.
pub(crate) async fn serve(listener: tokio::net::TcpListener) -> Shared {
    let cluster: Shared = Arc::default();
    let app = axum::Router::new()
        .route("/_bulk", post(bulk))
        .route("/{pattern}/_alias", get(aliases))
        .route("/{indices}/_delete_by_query", post(delete_by_query))
        .with_state(cluster.clone());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    cluster
}

async fn start() -> (String, Shared) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    (url, serve(listener).await)
}

#[tokio::test]
async fn every_fixture_is_split_into_the_python_indices_and_deleted() {
    let (url, cluster) = start().await;
    let es = storage(
        "storage.elasticsearch",
        json!({"url": url, "username": "elastic", "password": "changeme", "index_prefix": "t_"}),
    );
    for (uuid, text) in fixtures() {
        let vcon: Value = serde_json::from_str(&text).unwrap();
        es.save(&uuid, &text).await.unwrap_or_else(|e| panic!("{uuid}: {e}"));
        let stored: Vec<((String, String), Value)> = cluster
            .lock()
            .unwrap()
            .documents
            .iter()
            .filter(|(_, d)| d["vcon_id"] == uuid.as_str())
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        let count = |key: &str| vcon[key].as_array().map_or(0, Vec::len);
        if count("dialog") == 0 {
            assert!(stored.is_empty(), "{uuid}: a vCon without dialogs is not indexed");
            continue;
        }
        let lower_case_analyses = vcon["analysis"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|a| a["type"].as_str().is_some_and(|t| t == t.to_lowercase()))
            .count();
        assert_eq!(
            stored.len(),
            count("parties") + count("attachments") + lower_case_analyses + count("dialog"),
            "{uuid}: one document per part (upper-case analysis types are refused by Elasticsearch)"
        );
        for (i, dialog) in vcon["dialog"].as_array().unwrap().iter().enumerate() {
            let key = ("t_vcon_dialog".to_string(), format!("{uuid}_{i}"));
            let (_, document) = stored.iter().find(|(k, _)| *k == key).unwrap();
            let mut expected = dialog.as_object().unwrap().clone();
            expected.insert("vcon_id".into(), json!(uuid));
            expected.insert("started_at".into(), vcon["dialog"][0]["start"].clone());
            let document = document.as_object().unwrap();
            for (field, value) in &expected {
                assert_eq!(document.get(field), Some(value), "{uuid} dialog {i} field {field}");
            }
        }
        for ((index, _), document) in &stored {
            assert!(index.starts_with("t_vcon_"), "{index}");
            assert_eq!(document["started_at"], vcon["dialog"][0]["start"]);
        }
        assert!(es.delete(&uuid).await.unwrap());
        assert!(!cluster.lock().unwrap().documents.values().any(|d| d["vcon_id"] == uuid.as_str()));
        assert!(!es.delete(&uuid).await.unwrap());
        assert_eq!(es.get(&uuid).await.unwrap(), None, "no read fallback from Elasticsearch");
    }
    let authorizations = cluster.lock().unwrap().authorizations.clone();
    assert!(authorizations.iter().all(|a| a == "Basic ZWxhc3RpYzpjaGFuZ2VtZQ=="), "{authorizations:?}");
}

#[tokio::test]
async fn tenant_ids_and_json_bodies_are_indexed_as_python_does() {
    let (url, cluster) = start().await;
    let es = storage("storage.elasticsearch", json!({"url": url, "api_key": "k3y"}));
    let vcon = json!({
        "uuid": "018f0000-0000-7000-8000-000000000001", "vcon": "0.4.0",
        "dialog": [{"type": "text", "start": "2026-06-05T00:00:00+00:00", "parties": [0], "body": "hi"}],
        "parties": [{"tel": "+1", "meta": {"role": "customer"}}],
        "attachments": [
            {"purpose": "tenant", "body": "{\"id\": 385}", "encoding": "json"},
            {"type": "TAGS", "body": ["vip:yes"], "encoding": "json"}
        ],
        "analysis": [{"type": "summary", "body": "{\"text\": \"hi\"}", "encoding": "json", "dialog": 0}]
    });
    es.save("018f0000-0000-7000-8000-000000000001", &vcon.to_string()).await.unwrap();
    let cluster = cluster.lock().unwrap();
    let doc = |index: &str| {
        cluster.documents[&(index.to_string(), "018f0000-0000-7000-8000-000000000001_0".to_string())].clone()
    };
    assert_eq!(doc("vcon_parties_customer")["tenant_id"], 385);
    assert_eq!(doc("vcon_attachments_tenant")["body"], json!({"id": 385}));
    assert_eq!(
        cluster.documents[&("vcon_attachments_tags".into(), "018f0000-0000-7000-8000-000000000001_1".into())]["body"],
        json!(["vip:yes"])
    );
    assert_eq!(doc("vcon_analysis_summary")["body"], json!({"text": "hi"}));
    assert_eq!(cluster.authorizations, ["ApiKey k3y"]);
}

#[tokio::test]
async fn a_cluster_that_is_down_is_a_storage_error() {
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let es = storage("storage.elasticsearch", json!({"url": format!("http://127.0.0.1:{closed}")}));
    let (uuid, text) = fixture_with("dialog");
    let error = es.save(&uuid, &text).await.unwrap_err();
    assert!(error.to_string().contains("under-test"), "{error}");
}
