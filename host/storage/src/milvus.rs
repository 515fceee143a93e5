//! `storage.milvus` (Milvus REST v2 over reqwest): the vCon's text is embedded
//! through an OpenAI-compatible embeddings endpoint and inserted as one row of the
//! Python backend's collection schema. Write-only: it holds a derived record, not
//! the vCon, so it is never used for the read fallback and `delete` is not offered.
//!
//! Calls: `POST /v2/vectordb/collections/has`, `…/collections/create` (when
//! `create_collection_if_missing`), `…/entities/query` (the `skip_if_exists`
//! check) and `…/entities/insert`. Unlike Python, a failed embedding is a storage
//! failure (retried, then the chain's policy) rather than a zero vector written
//! into the index.

mod text;

use std::time::Duration;

use async_trait::async_trait;
use serde::Deserialize;
use serde_json::{Map, Value, json};
use tokio::sync::OnceCell;

pub use text::{extract_party_id, extract_text};

use crate::embeddings::EmbeddingsClient;
use crate::{Storage, StorageError};

/// Options of `storage.milvus` (the Python names and defaults). Keys not listed
/// here (`api_key`, `organization`, `project`, `base_url`, the `AZURE_OPENAI_*` and
/// `LITELLM_*` keys) configure the embeddings endpoint.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default)]
pub struct MilvusOptions {
    /// Milvus host, or a full `http(s)://host:port` URL.
    pub host: String,
    /// Milvus port (a number or a numeric string).
    #[serde(deserialize_with = "crate::options::port")]
    pub port: u16,
    /// Collection to write to.
    pub collection_name: String,
    /// Embedding model name.
    pub embedding_model: String,
    /// Length of the embedding vectors.
    pub embedding_dim: usize,
    /// Create the collection (schema and index) when it does not exist.
    pub create_collection_if_missing: bool,
    /// Skip a vCon whose uuid is already in the collection.
    pub skip_if_exists: bool,
    /// Index type when creating: IVF_FLAT, IVF_SQ8, IVF_PQ, HNSW, ANNOY, FLAT.
    pub index_type: String,
    /// Metric when creating: L2, IP, COSINE.
    pub metric_type: String,
    /// IVF cluster count.
    pub nlist: u32,
    /// HNSW edges per node.
    pub m: u32,
    /// HNSW construction breadth.
    pub ef_construction: u32,
    /// IVF_PQ sub-quantizers.
    pub pq_m: u32,
    /// IVF_PQ bits per code.
    pub pq_nbits: u32,
    /// ANNOY trees.
    pub n_trees: u32,
    /// Milvus auth token (`user:password` or an API key), sent as a bearer token.
    pub token: Option<String>,
    /// Milvus user (with `password`, when no `token`).
    pub user: Option<String>,
    /// Milvus password.
    pub password: Option<String>,
}

impl Default for MilvusOptions {
    fn default() -> Self {
        Self {
            host: "localhost".into(),
            port: 19530,
            collection_name: "vcons".into(),
            embedding_model: "text-embedding-3-small".into(),
            embedding_dim: 1536,
            create_collection_if_missing: false,
            skip_if_exists: true,
            index_type: "IVF_FLAT".into(),
            metric_type: "L2".into(),
            nlist: 128,
            m: 16,
            ef_construction: 200,
            pq_m: 8,
            pq_nbits: 8,
            n_trees: 50,
            token: None,
            user: None,
            password: None,
        }
    }
}

/// The Milvus storage.
#[derive(Debug)]
pub struct MilvusStorage {
    name: String,
    base: String,
    token: Option<String>,
    options: MilvusOptions,
    embeddings: EmbeddingsClient,
    client: reqwest::Client,
    collection_ready: OnceCell<()>,
}

impl MilvusStorage {
    /// Check the options and build the clients (no request is made yet).
    pub fn new(name: &str, value: Value) -> Result<Self, StorageError> {
        let invalid = |message: String| StorageError::Options { storage: name.to_string(), message };
        let raw = match value {
            Value::Null => Map::new(),
            Value::Object(map) => map,
            other => return Err(invalid(format!("options must be a mapping, got {other}"))),
        };
        let options: MilvusOptions =
            serde_json::from_value(Value::Object(raw.clone())).map_err(|e| invalid(e.to_string()))?;
        if options.embedding_dim == 0 {
            return Err(invalid("`embedding_dim` must be positive".into()));
        }
        let base = if options.host.starts_with("http://") || options.host.starts_with("https://") {
            options.host.trim_end_matches('/').to_string()
        } else {
            format!("http://{}:{}", options.host, options.port)
        };
        reqwest::Url::parse(&base).map_err(|e| invalid(format!("Milvus address `{base}`: {e}")))?;
        let embeddings =
            EmbeddingsClient::from_options(&raw, &options.embedding_model).map_err(|e| invalid(e.to_string()))?;
        let token = options.token.clone().filter(|t| !t.is_empty()).or_else(|| {
            options.user.as_ref().map(|user| format!("{user}:{}", options.password.as_deref().unwrap_or("")))
        });
        let client = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(5))
            .timeout(Duration::from_secs(30))
            .build()
            .map_err(|e| invalid(e.to_string()))?;
        Ok(Self { name: name.to_string(), base, token, options, embeddings, client, collection_ready: OnceCell::new() })
    }

    fn failed(&self, operation: &'static str, message: String) -> StorageError {
        StorageError::Backend { storage: self.name.clone(), operation, message }
    }

    /// POST a REST v2 call; Milvus answers 200 with `code` 0 on success.
    async fn call(&self, operation: &'static str, path: &str, body: Value) -> Result<Value, StorageError> {
        let url = format!("{}/v2/vectordb/{path}", self.base);
        let mut request = self.client.post(&url).json(&body);
        if let Some(token) = &self.token {
            request = request.bearer_auth(token);
        }
        let response = request.send().await.map_err(|e| {
            self.failed(operation, format!("{}: {}", conserver_core::redact::redact_url(&url), e.without_url()))
        })?;
        let status = response.status();
        let answer: Value = response.json().await.map_err(|e| {
            self.failed(
                operation,
                format!("{} answered {status}: {}", conserver_core::redact::redact_url(&url), e.without_url()),
            )
        })?;
        let code = answer.get("code").and_then(Value::as_i64).unwrap_or(-1);
        if !status.is_success() || code != 0 {
            let message = answer.get("message").and_then(Value::as_str).unwrap_or("no message");
            return Err(self.failed(
                operation,
                format!("{} answered {status}, code {code}: {message}", conserver_core::redact::redact_url(&url)),
            ));
        }
        Ok(answer)
    }

    async fn ensure_collection(&self) -> Result<(), StorageError> {
        let collection = &self.options.collection_name;
        let answer = self.call("has collection", "collections/has", json!({"collectionName": collection})).await?;
        if answer.pointer("/data/has").and_then(Value::as_bool) == Some(true) {
            return Ok(());
        }
        if !self.options.create_collection_if_missing {
            return Err(self.failed(
                "save",
                format!(
                    "collection `{collection}` does not exist at {}; create it or set create_collection_if_missing: true",
                    self.base
                ),
            ));
        }
        self.call("create collection", "collections/create", collection_definition(&self.options)).await?;
        tracing::info!(storage = %self.name, collection, "created the Milvus collection");
        Ok(())
    }

    async fn exists(&self, uuid: &str) -> Result<bool, StorageError> {
        let filter = format!("vcon_uuid == \"{}\"", uuid.replace(['"', '\\'], ""));
        let answer = self
            .call(
                "query",
                "entities/query",
                json!({"collectionName": self.options.collection_name, "filter": filter, "outputFields": ["vcon_uuid"], "limit": 1}),
            )
            .await?;
        Ok(answer.get("data").and_then(Value::as_array).is_some_and(|rows| !rows.is_empty()))
    }
}

/// The create-collection request: the Python schema and the index for `index_type`.
pub fn collection_definition(options: &MilvusOptions) -> Value {
    let varchar = |name: &str, length: u32| json!({"fieldName": name, "dataType": "VarChar", "elementTypeParams": {"max_length": length}});
    let index_type = match options.index_type.as_str() {
        known @ ("IVF_FLAT" | "IVF_SQ8" | "IVF_PQ" | "HNSW" | "ANNOY" | "FLAT") => known,
        _ => "IVF_FLAT",
    };
    let mut params = match index_type {
        "IVF_PQ" => json!({"nlist": options.nlist, "m": options.pq_m, "nbits": options.pq_nbits}),
        "HNSW" => json!({"M": options.m, "efConstruction": options.ef_construction}),
        "ANNOY" => json!({"n_trees": options.n_trees}),
        "FLAT" => json!({}),
        _ => json!({"nlist": options.nlist}),
    };
    params["index_type"] = json!(index_type);
    json!({
        "collectionName": options.collection_name,
        "schema": {
            "autoId": true,
            "enableDynamicField": false,
            "fields": [
                {"fieldName": "id", "dataType": "Int64", "isPrimary": true},
                varchar("vcon_uuid", 100),
                varchar("party_id", 100),
                varchar("text", 65535),
                {"fieldName": "embedding", "dataType": "FloatVector", "elementTypeParams": {"dim": options.embedding_dim}},
                varchar("created_at", 30),
                varchar("updated_at", 30),
                varchar("subject", 255),
                varchar("metadata_title", 255),
                {"fieldName": "has_transcript", "dataType": "Bool"},
                {"fieldName": "has_summary", "dataType": "Bool"},
                {"fieldName": "party_count", "dataType": "Int16"},
                varchar("embedding_model", 50),
                varchar("embedding_version", 20),
            ]
        },
        "indexParams": [{
            "fieldName": "embedding",
            "indexName": "embedding_index",
            "metricType": options.metric_type,
            "params": params
        }]
    })
}

/// At most `max` characters of `text` (Milvus counts VARCHAR lengths in bytes, so
/// this also stops at a byte budget).
fn clip(text: &str, max: usize) -> String {
    let mut end = text.len().min(max);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text[..end].to_string()
}

fn metadata_str(vcon: &Map<String, Value>, key: &str) -> String {
    vcon.get("metadata").and_then(|m| m.get(key)).and_then(Value::as_str).unwrap_or("").to_string()
}

#[async_trait]
impl Storage for MilvusStorage {
    fn name(&self) -> &str {
        &self.name
    }

    async fn save(&self, uuid: &str, vcon_json: &str) -> Result<(), StorageError> {
        let vcon: Map<String, Value> =
            serde_json::from_str(vcon_json).map_err(|e| self.failed("save", format!("vCon is not JSON: {e}")))?;
        self.collection_ready.get_or_try_init(|| self.ensure_collection()).await?;
        if self.options.skip_if_exists && self.exists(uuid).await? {
            tracing::debug!(storage = %self.name, vcon_uuid = uuid, "already in Milvus; skipped");
            return Ok(());
        }
        let text = extract_text(&vcon);
        if text.trim().is_empty() {
            tracing::info!(storage = %self.name, vcon_uuid = uuid, "no text to embed; skipped");
            return Ok(());
        }
        let model = &self.options.embedding_model;
        let embedding = self.embeddings.embed(model, &text).await.map_err(|e| self.failed("embed", e.to_string()))?;
        if embedding.len() != self.options.embedding_dim {
            return Err(self.failed(
                "embed",
                format!(
                    "the model returned {} dimensions but embedding_dim is {}; make them agree",
                    embedding.len(),
                    self.options.embedding_dim
                ),
            ));
        }
        let analysis = vcon.get("analysis").and_then(Value::as_array).cloned().unwrap_or_default();
        let has = |kind: &str| analysis.iter().any(|a| a.get("type").and_then(Value::as_str) == Some(kind));
        let party_count = vcon.get("parties").and_then(Value::as_array).map_or(0, Vec::len);
        let row = json!({
            "vcon_uuid": clip(uuid, 100),
            "party_id": clip(&extract_party_id(&vcon), 100),
            "text": clip(&text, 65535),
            "embedding": embedding,
            "created_at": clip(&metadata_str(&vcon, "created_at"), 30),
            "updated_at": clip(&metadata_str(&vcon, "updated_at"), 30),
            "subject": clip(vcon.get("subject").and_then(Value::as_str).unwrap_or(""), 255),
            "metadata_title": clip(&metadata_str(&vcon, "title"), 255),
            "has_transcript": has("transcript") || vcon.get("transcript").is_some(),
            "has_summary": has("summary"),
            "party_count": i16::try_from(party_count).unwrap_or(i16::MAX),
            "embedding_model": clip(model, 50),
            "embedding_version": "1.0",
        });
        self.call("insert", "entities/insert", json!({"collectionName": self.options.collection_name, "data": [row]}))
            .await?;
        Ok(())
    }

    async fn get(&self, _uuid: &str) -> Result<Option<String>, StorageError> {
        Ok(None)
    }

    async fn delete(&self, _uuid: &str) -> Result<bool, StorageError> {
        Ok(false)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn index_parameters_follow_the_index_type() {
        let params = |index_type: &str| {
            let options = MilvusOptions { index_type: index_type.into(), ..MilvusOptions::default() };
            collection_definition(&options)["indexParams"][0]["params"].clone()
        };
        assert_eq!(params("IVF_FLAT"), json!({"nlist": 128, "index_type": "IVF_FLAT"}));
        assert_eq!(params("IVF_PQ"), json!({"nlist": 128, "m": 8, "nbits": 8, "index_type": "IVF_PQ"}));
        assert_eq!(params("HNSW"), json!({"M": 16, "efConstruction": 200, "index_type": "HNSW"}));
        assert_eq!(params("ANNOY"), json!({"n_trees": 50, "index_type": "ANNOY"}));
        assert_eq!(params("FLAT"), json!({"index_type": "FLAT"}));
        assert_eq!(params("BOGUS"), json!({"nlist": 128, "index_type": "IVF_FLAT"}));
    }

    #[test]
    fn options_are_checked_at_load() {
        assert!(MilvusStorage::new("m", json!({"api_key": "k"})).is_ok());
        assert!(MilvusStorage::new("m", json!({})).is_err(), "no embeddings endpoint");
        assert!(MilvusStorage::new("m", json!({"api_key": "k", "port": "nope"})).is_err());
        assert!(MilvusStorage::new("m", json!({"api_key": "k", "embedding_dim": 0})).is_err());
        let storage = MilvusStorage::new("m", json!({"api_key": "k", "host": "http://milvus:1234/"})).unwrap();
        assert_eq!(storage.base, "http://milvus:1234");
    }

    #[test]
    fn clipping_keeps_whole_characters() {
        assert_eq!(clip("héllo", 2), "h");
        assert_eq!(clip("abc", 10), "abc");
    }
}
