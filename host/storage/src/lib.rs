//! Storages: where a processed vCon is written after its chain's links. Each
//! backend is a module implementing [`Storage`]; [`build`] picks one by the
//! `module:` name of a `storages:` entry (`storage.file`, …) and checks its options
//! at load time, so a bad option is a config error, not a failure at the first vCon.

mod elasticsearch;
mod embeddings;
mod error;
mod file;
mod milvus;
mod mongo;
mod options;
mod postgres;
mod redis_storage;
mod s3;
mod webhook;

use std::sync::Arc;

use async_trait::async_trait;
use conserver_config::StorageDef;

pub use elasticsearch::{ElasticsearchOptions, ElasticsearchStorage};
pub use embeddings::{EmbeddingsClient, EmbeddingsError};
pub use error::StorageError;
pub use file::{FileOptions, FileStorage};
pub use milvus::{MilvusOptions, MilvusStorage};
pub use mongo::{MongoOptions, MongoStorage};
pub use postgres::{PostgresOptions, PostgresStorage};
pub use redis_storage::{RedisStorage, RedisStorageOptions};
pub use s3::{S3Options, S3Storage};
pub use webhook::{WebhookOptions, WebhookStorage};

/// A place vCons are written to (and, for read-capable backends, read back from).
#[async_trait]
pub trait Storage: Send + Sync {
    /// The configured name (the key under `storages:`).
    fn name(&self) -> &str;
    /// Write the vCon (JSON text). Idempotent: saving again replaces it.
    async fn save(&self, uuid: &str, vcon_json: &str) -> Result<(), StorageError>;
    /// Read a vCon back, if this backend has it.
    async fn get(&self, uuid: &str) -> Result<Option<String>, StorageError>;
    /// Remove a vCon; whether it existed.
    async fn delete(&self, uuid: &str) -> Result<bool, StorageError>;
}

/// A vCon read back from a storage for the read fallback.
#[derive(Debug, Clone)]
pub struct ReadBack {
    /// The storage that had it.
    pub storage: String,
    /// The document, canonicalised as the Python conserver does on this path.
    pub document: serde_json::Map<String, serde_json::Value>,
    /// The same document as JSON text.
    pub json: String,
}

/// The read fallback shared by the API and the workers: look for `uuid` in
/// `storages`, in order; the first hit that is a JSON object is canonicalised and
/// returned. A storage that fails is skipped with a warning.
pub async fn read_back(storages: &[Arc<dyn Storage>], uuid: &str) -> Option<ReadBack> {
    for storage in storages {
        let text = match storage.get(uuid).await {
            Ok(Some(text)) => text,
            Ok(None) => continue,
            Err(error) => {
                tracing::warn!(storage = storage.name(), vcon_uuid = uuid, %error, "storage read failed; trying the next one");
                continue;
            }
        };
        let Ok(document) = serde_json::from_str::<serde_json::Map<String, serde_json::Value>>(&text) else {
            tracing::warn!(
                storage = storage.name(),
                vcon_uuid = uuid,
                "storage holds something that is not a JSON object"
            );
            continue;
        };
        let document = conserver_core::canonicalize(document);
        let json = serde_json::Value::Object(document.clone()).to_string();
        return Some(ReadBack { storage: storage.name().to_string(), document, json });
    }
    None
}

/// Build the storage `name` from its config entry. Options are checked here; no
/// connection is made until the storage is used.
pub fn build(name: &str, def: &StorageDef) -> Result<Arc<dyn Storage>, StorageError> {
    let backend = def.module.strip_prefix("storage.").unwrap_or(&def.module);
    let options = def.options.clone().unwrap_or(serde_json::Value::Null);
    match backend {
        "file" => Ok(Arc::new(FileStorage::new(name, FileOptions::from_value(name, options)?))),
        "postgres" => Ok(Arc::new(PostgresStorage::new(name, options)?)),
        "webhook" => Ok(Arc::new(WebhookStorage::new(name, options)?)),
        "s3" => Ok(Arc::new(S3Storage::new(name, options)?)),
        "elasticsearch" => Ok(Arc::new(ElasticsearchStorage::new(name, options)?)),
        "milvus" => Ok(Arc::new(MilvusStorage::new(name, options)?)),
        "mongo" => Ok(Arc::new(MongoStorage::new(name, options)?)),
        "redis_storage" | "redis" => {
            let server = std::env::var("REDIS_URL").ok().filter(|u| !u.is_empty());
            Ok(Arc::new(RedisStorage::new(name, options, server.as_deref())?))
        }
        other => Err(StorageError::UnknownBackend { storage: name.to_string(), module: other.to_string() }),
    }
}
