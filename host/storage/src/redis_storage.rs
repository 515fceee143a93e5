//! `storage.redis_storage`: the vCon JSON under a plain string key
//! `<prefix>:<uuid>` with a TTL (`expires`, default 7 days), as the Python backend.
//! The Python backend ignores its `redis_url` option and uses the server's Redis;
//! here an explicit `redis_url` is honoured, and the Python default (or none) means
//! the server's `REDIS_URL`. The connection opens on first use.

use async_trait::async_trait;
use redis::AsyncCommands;
use redis::aio::ConnectionManager;
use serde::Deserialize;
use serde_json::Value;
use tokio::sync::OnceCell;

use crate::{Storage, StorageError};

/// The Python default, which names no usable server.
const PYTHON_DEFAULT_URL: &str = "redis://:localhost:6379";

/// Options of `storage.redis_storage`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RedisStorageOptions {
    /// Accepted for compatibility; unused.
    pub name: Option<String>,
    /// Redis to write to; unset (or the Python default) means the server's `REDIS_URL`.
    pub redis_url: Option<String>,
    /// Key prefix: keys are `<prefix>:<uuid>`.
    pub prefix: String,
    /// TTL in seconds (0: none).
    pub expires: u64,
}

impl Default for RedisStorageOptions {
    fn default() -> Self {
        Self { name: None, redis_url: None, prefix: "vcon_storage".into(), expires: 604_800 }
    }
}

/// The Redis storage.
#[derive(Clone)]
pub struct RedisStorage {
    name: String,
    url: String,
    prefix: String,
    expires: u64,
    conn: std::sync::Arc<OnceCell<ConnectionManager>>,
}

impl RedisStorage {
    /// Check the options; `server_url` is the server's `REDIS_URL`, if any.
    pub fn new(name: &str, value: Value, server_url: Option<&str>) -> Result<Self, StorageError> {
        let invalid = |message: String| StorageError::Options { storage: name.to_string(), message };
        let options: RedisStorageOptions = if value.is_null() {
            RedisStorageOptions::default()
        } else {
            serde_json::from_value(value).map_err(|e| invalid(e.to_string()))?
        };
        let url = match options.redis_url.as_deref().filter(|u| !u.is_empty() && *u != PYTHON_DEFAULT_URL) {
            Some(url) => url.to_string(),
            None => server_url
                .map(String::from)
                .ok_or_else(|| invalid("no Redis to write to: set `redis_url` in its options or REDIS_URL".into()))?,
        };
        redis::Client::open(url.as_str())
            .map_err(|e| invalid(format!("redis_url `{}`: {e}", conserver_core::redact::redact_url(&url))))?;
        Ok(Self {
            name: name.to_string(),
            url,
            prefix: options.prefix,
            expires: options.expires,
            conn: Default::default(),
        })
    }

    fn key(&self, uuid: &str) -> String {
        format!("{}:{uuid}", self.prefix)
    }

    fn failed(&self, operation: &'static str) -> impl FnOnce(redis::RedisError) -> StorageError + '_ {
        move |e| StorageError::Backend { storage: self.name.clone(), operation, message: e.to_string() }
    }

    async fn conn(&self) -> Result<ConnectionManager, StorageError> {
        self.conn
            .get_or_try_init(|| async {
                let client = redis::Client::open(self.url.as_str()).map_err(self.failed("connect"))?;
                ConnectionManager::new(client).await.map_err(self.failed("connect"))
            })
            .await
            .cloned()
    }
}

#[async_trait]
impl Storage for RedisStorage {
    fn name(&self) -> &str {
        &self.name
    }

    async fn save(&self, uuid: &str, vcon_json: &str) -> Result<(), StorageError> {
        let mut conn = self.conn().await?;
        let key = self.key(uuid);
        let result = if self.expires > 0 {
            conn.set_ex::<_, _, ()>(key, vcon_json, self.expires).await
        } else {
            conn.set::<_, _, ()>(key, vcon_json).await
        };
        result.map_err(self.failed("SET"))
    }

    async fn get(&self, uuid: &str) -> Result<Option<String>, StorageError> {
        self.conn().await?.get(self.key(uuid)).await.map_err(self.failed("GET"))
    }

    async fn delete(&self, uuid: &str) -> Result<bool, StorageError> {
        let removed: u64 = self.conn().await?.del(self.key(uuid)).await.map_err(self.failed("DEL"))?;
        Ok(removed > 0)
    }
}
