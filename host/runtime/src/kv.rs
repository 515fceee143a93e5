//! The `cache` import: a small key-value store private to each link. The host
//! namespaces keys by the link's configured name; where the values live is up to
//! the [`LinkCache`] the runtime is given (the broker in the server, so every
//! worker shares it; [`MemoryCache`] otherwise).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use async_trait::async_trait;

/// Largest value a link may store.
pub const MAX_VALUE_BYTES: usize = 1024 * 1024;
/// Longest (and default) time to live.
pub const MAX_TTL: Duration = Duration::from_secs(24 * 3600);
/// Longest key a link may use.
pub const MAX_KEY_BYTES: usize = 512;

/// Where link cache entries are kept. Keys arrive already namespaced
/// (`<link>:<key>`).
#[async_trait]
pub trait LinkCache: Send + Sync {
    /// The value under `key`, if set and not expired.
    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, String>;
    /// Store `value` under `key` for `ttl`.
    async fn set(&self, key: &str, value: &[u8], ttl: Duration) -> Result<(), String>;
    /// Forget `key`.
    async fn delete(&self, key: &str) -> Result<(), String>;
}

/// An in-process cache, for a runtime without a shared store (tools, tests of
/// the runtime itself). Expired entries are dropped when touched and on writes.
#[derive(Debug, Default)]
pub struct MemoryCache {
    entries: Mutex<HashMap<String, (Vec<u8>, Instant)>>,
}

#[async_trait]
impl LinkCache for MemoryCache {
    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, String> {
        let mut entries = self.entries.lock().map_err(|_| "cache lock poisoned".to_string())?;
        match entries.get(key) {
            Some((value, expires)) if *expires > Instant::now() => Ok(Some(value.clone())),
            Some(_) => {
                entries.remove(key);
                Ok(None)
            }
            None => Ok(None),
        }
    }

    async fn set(&self, key: &str, value: &[u8], ttl: Duration) -> Result<(), String> {
        let mut entries = self.entries.lock().map_err(|_| "cache lock poisoned".to_string())?;
        let now = Instant::now();
        if entries.len() > 10_000 {
            entries.retain(|_, (_, expires)| *expires > now);
        }
        entries.insert(key.to_string(), (value.to_vec(), now + ttl));
        Ok(())
    }

    async fn delete(&self, key: &str) -> Result<(), String> {
        self.entries.lock().map_err(|_| "cache lock poisoned".to_string())?.remove(key);
        Ok(())
    }
}

/// The time to live a link asked for, bounded by [`MAX_TTL`] (0 means the maximum).
pub(crate) fn ttl(ttl_secs: u32) -> Duration {
    if ttl_secs == 0 { MAX_TTL } else { Duration::from_secs(u64::from(ttl_secs)).min(MAX_TTL) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn entries_expire() {
        let cache = MemoryCache::default();
        cache.set("l:a", b"1", Duration::from_millis(30)).await.unwrap();
        assert_eq!(cache.get("l:a").await.unwrap().as_deref(), Some(&b"1"[..]));
        tokio::time::sleep(Duration::from_millis(40)).await;
        assert_eq!(cache.get("l:a").await.unwrap(), None);
        cache.set("l:b", b"2", ttl(0)).await.unwrap();
        cache.delete("l:b").await.unwrap();
        assert_eq!(cache.get("l:b").await.unwrap(), None);
        assert_eq!(ttl(10), Duration::from_secs(10));
        assert_eq!(ttl(u32::MAX), MAX_TTL);
    }
}
