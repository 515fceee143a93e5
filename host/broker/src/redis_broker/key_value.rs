//! The Redis backend's link cache: namespaced entries with TTLs and a quota.

#[allow(clippy::wildcard_imports)]
use super::*;

#[async_trait]
impl LinkCacheStore for RedisBroker {
    async fn cache_get(&self, namespace: &str, key: &str) -> Result<Option<Vec<u8>>> {
        crate::link_cache::redis::get(&self.conn, namespace, key).await
    }

    async fn cache_set(
        &self,
        namespace: &str,
        key: &str,
        value: &[u8],
        ttl_secs: u64,
        quota_bytes: u64,
    ) -> Result<CacheWrite> {
        crate::link_cache::redis::set(&self.conn, namespace, key, value, ttl_secs, quota_bytes).await
    }

    async fn cache_delete(&self, namespace: &str, key: &str) -> Result<()> {
        crate::link_cache::redis::delete(&self.conn, namespace, key).await
    }
}
