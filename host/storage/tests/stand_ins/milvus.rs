//! `storage.milvus` against a local HTTP server answering Milvus's REST v2 calls
//! (`collections/has`, `collections/create`, `entities/query`, `entities/insert`,
//! with Milvus's `{code, data, message}` envelope) and an OpenAI-compatible
//! `/v1/embeddings` server. No Milvus server can be installed here.

use std::sync::{Arc, Mutex};

use axum::extract::State;
use axum::routing::post;
use serde_json::{Value, json};

use crate::common::{fixture_with, fixtures, storage};

#[derive(Default)]
pub(crate) struct Milvus {
    collections: Vec<String>,
    created: Vec<Value>,
    rows: Vec<Value>,
    embedding_requests: Vec<(String, Value)>,
    dimension: usize,
    embeddings_fail: bool,
}

pub(crate) type Shared = Arc<Mutex<Milvus>>;

async fn has(State(m): State<Shared>, axum::Json(body): axum::Json<Value>) -> axum::Json<Value> {
    let name = body["collectionName"].as_str().unwrap_or_default();
    let has = m.lock().unwrap().collections.iter().any(|c| c == name);
    axum::Json(json!({"code": 0, "data": {"has": has}}))
}

async fn create(State(m): State<Shared>, axum::Json(body): axum::Json<Value>) -> axum::Json<Value> {
    let mut m = m.lock().unwrap();
    m.collections.push(body["collectionName"].as_str().unwrap_or_default().to_string());
    m.created.push(body);
    axum::Json(json!({"code": 0, "data": {}}))
}

async fn query(State(m): State<Shared>, axum::Json(body): axum::Json<Value>) -> axum::Json<Value> {
    let filter = body["filter"].as_str().unwrap_or_default();
    let uuid = filter.trim_start_matches("vcon_uuid == \"").trim_end_matches('"');
    let m = m.lock().unwrap();
    let found: Vec<Value> =
        m.rows.iter().filter(|r| r["vcon_uuid"] == uuid).map(|r| json!({"vcon_uuid": r["vcon_uuid"]})).collect();
    axum::Json(json!({"code": 0, "data": found}))
}

async fn insert(State(m): State<Shared>, axum::Json(body): axum::Json<Value>) -> axum::Json<Value> {
    let mut m = m.lock().unwrap();
    if !m.collections.iter().any(|c| body["collectionName"] == c.as_str()) {
        return axum::Json(json!({"code": 100, "message": "collection not found"}));
    }
    let rows = body["data"].as_array().cloned().unwrap_or_default();
    if rows.iter().any(|r| r["embedding"].as_array().map_or(0, Vec::len) != m.dimension) {
        return axum::Json(json!({"code": 1100, "message": "the dim of the vector does not match"}));
    }
    let count = rows.len();
    m.rows.extend(rows);
    axum::Json(json!({"code": 0, "data": {"insertCount": count, "insertIds": [1]}}))
}

async fn embeddings(
    State(m): State<Shared>,
    headers: axum::http::HeaderMap,
    axum::Json(body): axum::Json<Value>,
) -> (axum::http::StatusCode, axum::Json<Value>) {
    let mut m = m.lock().unwrap();
    let auth = headers.get("authorization").and_then(|v| v.to_str().ok()).unwrap_or_default().to_string();
    m.embedding_requests.push((auth, body.clone()));
    if m.embeddings_fail {
        return (axum::http::StatusCode::TOO_MANY_REQUESTS, axum::Json(json!({"error": {"message": "rate limited"}})));
    }
    let vector: Vec<f32> = (0..m.dimension).map(|i| i as f32 / 10.0).collect();
    (
        axum::http::StatusCode::OK,
        axum::Json(json!({"object": "list", "data": [{"object": "embedding", "index": 0, "embedding": vector}],
            "model": body["model"], "usage": {"prompt_tokens": 3, "total_tokens": 3}})),
    )
}

/// Answer as Milvus (REST v2) and an embeddings server on `listener` until the
/// process ends.
pub(crate) async fn serve(listener: tokio::net::TcpListener, dimension: usize) -> Shared {
    let state: Shared = Arc::new(Mutex::new(Milvus { dimension, ..Milvus::default() }));
    let app = axum::Router::new()
        .route("/v2/vectordb/collections/has", post(has))
        .route("/v2/vectordb/collections/create", post(create))
        .route("/v2/vectordb/entities/query", post(query))
        .route("/v2/vectordb/entities/insert", post(insert))
        .route("/v1/embeddings", post(embeddings))
        .with_state(state.clone());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    state
}

async fn start(dimension: usize) -> (String, Shared) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    (url, serve(listener, dimension).await)
}

fn options(url: &str, extra: Value) -> Value {
    let mut options = json!({"host": url, "api_key": "sk-test", "base_url": format!("{url}/v1"), "embedding_dim": 8});
    options.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
    options
}

#[tokio::test]
async fn every_fixture_with_text_is_embedded_and_inserted_once() {
    let (url, state) = start(8).await;
    let milvus =
        storage("storage.milvus", options(&url, json!({"create_collection_if_missing": true, "index_type": "HNSW"})));
    let mut with_text = 0;
    for (uuid, text) in fixtures() {
        milvus.save(&uuid, &text).await.unwrap_or_else(|e| panic!("{uuid}: {e}"));
        milvus.save(&uuid, &text).await.unwrap(); // skip_if_exists
        let rows: Vec<Value> =
            state.lock().unwrap().rows.iter().filter(|r| r["vcon_uuid"] == uuid.as_str()).cloned().collect();
        assert!(rows.len() <= 1, "{uuid}: inserted twice");
        if let Some(row) = rows.first() {
            with_text += 1;
            let vcon: Value = serde_json::from_str(&text).unwrap();
            assert_eq!(row["party_count"], vcon["parties"].as_array().map_or(0, Vec::len));
            assert_eq!(row["embedding_model"], "text-embedding-3-small");
            assert_eq!(row["embedding_version"], "1.0");
            assert!(!row["text"].as_str().unwrap().is_empty());
        }
        assert_eq!(milvus.get(&uuid).await.unwrap(), None, "Milvus is never a read-fallback source");
    }
    assert!(with_text >= 10, "most fixtures have text: {with_text}");
    let state = state.lock().unwrap();
    assert_eq!(state.created.len(), 1, "the collection is created once");
    let created = &state.created[0];
    assert_eq!(created["collectionName"], "vcons");
    assert_eq!(created["indexParams"][0]["params"], json!({"M": 16, "efConstruction": 200, "index_type": "HNSW"}));
    let fields: Vec<&str> =
        created["schema"]["fields"].as_array().unwrap().iter().map(|f| f["fieldName"].as_str().unwrap()).collect();
    assert!(fields.contains(&"embedding") && fields.contains(&"vcon_uuid") && fields.contains(&"party_id"));
    let (auth, request) = &state.embedding_requests[0];
    assert_eq!(auth, "Bearer sk-test");
    assert_eq!(request["model"], "text-embedding-3-small");
}

#[tokio::test]
async fn a_missing_collection_an_embedding_failure_and_a_wrong_dimension_are_errors() {
    let (uuid, text) = fixture_with("parties");
    let (url, state) = start(8).await;
    let missing = storage("storage.milvus", options(&url, json!({})));
    let error = missing.save(&uuid, &text).await.unwrap_err().to_string();
    assert!(error.contains("create_collection_if_missing"), "{error}");

    state.lock().unwrap().collections.push("vcons".into());
    state.lock().unwrap().embeddings_fail = true;
    let error = missing.save(&uuid, &text).await.unwrap_err().to_string();
    assert!(error.contains("rate limited"), "{error}");
    assert!(state.lock().unwrap().rows.is_empty(), "no zero vector is written");

    state.lock().unwrap().embeddings_fail = false;
    let wrong = storage("storage.milvus", options(&url, json!({"embedding_dim": 16})));
    let error = wrong.save(&uuid, &text).await.unwrap_err().to_string();
    assert!(error.contains("16"), "{error}");

    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let down = storage("storage.milvus", options(&format!("http://127.0.0.1:{closed}"), json!({})));
    assert!(down.save(&uuid, &text).await.unwrap_err().to_string().contains("under-test"));
}

#[tokio::test]
async fn a_vcon_without_text_is_skipped() {
    let (url, state) = start(8).await;
    state.lock().unwrap().collections.push("vcons".into());
    let milvus = storage("storage.milvus", options(&url, json!({})));
    let empty = json!({"uuid": "018f0000-0000-7000-8000-000000000002", "vcon": "0.4.0", "parties": [], "dialog": []});
    milvus.save("018f0000-0000-7000-8000-000000000002", &empty.to_string()).await.unwrap();
    let state = state.lock().unwrap();
    assert!(state.rows.is_empty() && state.embedding_requests.is_empty());
}
