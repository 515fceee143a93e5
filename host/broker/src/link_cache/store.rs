//! The link-cache part of the broker contract ([`LinkCacheStore`]).

use async_trait::async_trait;

use crate::{CacheWrite, Result};

/// The link cache: namespaced entries with a TTL and a byte quota.
#[async_trait]
pub trait LinkCacheStore: Send + Sync {
    /// Link cache: the value under `key` in `namespace` (`link:<name>`,
    /// `tracer:<name>`), unless it expired or was never set.
    async fn cache_get(&self, namespace: &str, key: &str) -> Result<Option<Vec<u8>>>;
    /// Link cache: store `value` under `key` in `namespace` for `ttl_secs` (1 s
    /// to a day), unless the namespace would then count more than `quota_bytes`
    /// (see `link_cache` for what counts); decided atomically.
    async fn cache_set(
        &self,
        namespace: &str,
        key: &str,
        value: &[u8],
        ttl_secs: u64,
        quota_bytes: u64,
    ) -> Result<CacheWrite>;
    /// Link cache: forget `key` in `namespace` (its bytes no longer count).
    async fn cache_delete(&self, namespace: &str, key: &str) -> Result<()>;
}
