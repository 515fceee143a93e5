//! Links' `cache` entries kept in the broker, so every worker (and, with Redis,
//! every process) shares them, each namespace under its byte quota.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use conserver_broker::{Broker, CacheWrite as BrokerWrite};
use conserver_runtime::{CacheWrite, LinkCache};

/// A [`LinkCache`] over the broker's `cache_*` calls.
pub struct BrokerLinkCache(pub Arc<dyn Broker>);

#[async_trait]
impl LinkCache for BrokerLinkCache {
    async fn get(&self, namespace: &str, key: &str) -> Result<Option<Vec<u8>>, String> {
        self.0.cache_get(namespace, key).await.map_err(|e| e.to_string())
    }

    async fn set(
        &self,
        namespace: &str,
        key: &str,
        value: &[u8],
        ttl: Duration,
        quota_bytes: u64,
    ) -> Result<CacheWrite, String> {
        let written = self.0.cache_set(namespace, key, value, ttl.as_secs().max(1), quota_bytes).await;
        match written.map_err(|e| e.to_string())? {
            BrokerWrite::Stored { .. } => Ok(CacheWrite::Stored),
            BrokerWrite::OverQuota { used } => Ok(CacheWrite::OverQuota { used }),
        }
    }

    async fn delete(&self, namespace: &str, key: &str) -> Result<(), String> {
        self.0.cache_delete(namespace, key).await.map_err(|e| e.to_string())
    }
}
