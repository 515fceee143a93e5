//! Links' `cache` entries kept in the broker, so every worker (and, with Redis,
//! every process) shares them.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use conserver_broker::Broker;
use conserver_runtime::LinkCache;

/// A [`LinkCache`] over the broker's `cache_*` calls.
pub struct BrokerLinkCache(pub Arc<dyn Broker>);

#[async_trait]
impl LinkCache for BrokerLinkCache {
    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, String> {
        self.0.cache_get(key).await.map_err(|e| e.to_string())
    }

    async fn set(&self, key: &str, value: &[u8], ttl: Duration) -> Result<(), String> {
        self.0.cache_set(key, value, ttl.as_secs().max(1)).await.map_err(|e| e.to_string())
    }

    async fn delete(&self, key: &str) -> Result<(), String> {
        self.0.cache_delete(key).await.map_err(|e| e.to_string())
    }
}
