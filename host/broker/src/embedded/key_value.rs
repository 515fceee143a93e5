//! The embedded backend's link cache: namespaced entries with TTLs and a quota.

#[allow(clippy::wildcard_imports)]
use super::*;

#[async_trait]
impl LinkCacheStore for EmbeddedBroker {
    async fn cache_get(&self, namespace: &str, key: &str) -> Result<Option<Vec<u8>>> {
        crate::link_cache::sqlite::get(&self.reader, namespace, key, now_unsigned()).await
    }

    async fn cache_set(
        &self,
        namespace: &str,
        key: &str,
        value: &[u8],
        ttl_secs: u64,
        quota_bytes: u64,
    ) -> Result<CacheWrite> {
        let entry = (namespace, key, value);
        crate::link_cache::sqlite::set(&self.writer, entry, ttl_secs, quota_bytes, now_unsigned()).await
    }

    async fn cache_delete(&self, namespace: &str, key: &str) -> Result<()> {
        crate::link_cache::sqlite::delete(&self.writer, namespace, key, now_unsigned()).await
    }
}
