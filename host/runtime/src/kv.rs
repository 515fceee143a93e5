//! The `cache` import: a small key-value store private to each link, and apart
//! from it to each tracer. Where the values live is up to the [`LinkCache`] the
//! runtime is given (the broker in the server, so every worker shares it;
//! [`MemoryCache`] otherwise); this module decides whose entry a key names and
//! how much a link may keep.
//!
//! Namespaces cannot collide: a link's is `link:<name>` and a tracer's
//! `tracer:<name>`, the name percent-encoded (every byte outside
//! `A–Z a–z 0–9 _ . -`), so it holds no `:`, and the key is passed beside it,
//! never joined into one string by this layer.
//!
//! Each namespace has a byte quota (`limits.cache_bytes`): every entry counts its
//! key, its value and [`ENTRY_OVERHEAD_BYTES`]. Backends may count an expired
//! entry for up to [`QUOTA_LAG`] past its expiry (the broker keeps one counter per
//! 10-minute expiry bucket, so a write costs a bounded amount whatever the number
//! of entries), never less than the live entries.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use conserver_config::Limits;

/// The default largest value a link may store (`limits.cache_value_bytes`).
pub const MAX_VALUE_BYTES: usize = 1024 * 1024;
/// Longest time to live a link may ask for (`limits.cache_ttl_secs` may only lower it).
pub const MAX_TTL: Duration = Duration::from_secs(24 * 3600);
/// Longest key a link may use.
pub const MAX_KEY_BYTES: usize = 512;
/// What an entry counts against its quota besides its key and value.
pub const ENTRY_OVERHEAD_BYTES: u64 = 64;
/// How long past its expiry an entry may still count against the quota.
pub const QUOTA_LAG: Duration = Duration::from_secs(600);

/// Whose cache a namespace is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Owner {
    /// A link, by its configured name.
    Link,
    /// A tracer, by its configured name.
    Tracer,
}

/// The namespace of `owner` named `name`: `link:<name>` or `tracer:<name>`, the
/// name percent-encoded so no two owners share one.
pub fn namespace(owner: Owner, name: &str) -> String {
    let kind = match owner {
        Owner::Link => "link",
        Owner::Tracer => "tracer",
    };
    let mut out = String::with_capacity(kind.len() + 1 + name.len());
    out.push_str(kind);
    out.push(':');
    for byte in name.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'_' | b'.' | b'-') {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// What an entry counts against its namespace's quota.
pub fn entry_charge(key: &str, value: &[u8]) -> u64 {
    (key.len() + value.len()) as u64 + ENTRY_OVERHEAD_BYTES
}

/// The outcome of a write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CacheWrite {
    /// The entry is stored.
    Stored,
    /// Nothing was written: the namespace already counts `used` bytes and the
    /// entry would take it past the quota.
    OverQuota {
        /// Bytes the namespace counts now.
        used: u64,
    },
}

/// Where link cache entries are kept. Every call names the namespace and the
/// key apart; `set` stores only if the namespace stays within `quota_bytes`,
/// deciding atomically (concurrent writers never take it past the quota).
#[async_trait]
pub trait LinkCache: Send + Sync {
    /// The value under `key` in `namespace`, if set and not expired.
    async fn get(&self, namespace: &str, key: &str) -> Result<Option<Vec<u8>>, String>;
    /// Store `value` under `key` for `ttl`, unless the namespace would then
    /// count more than `quota_bytes` (replacing an entry gives back its bytes).
    async fn set(
        &self,
        namespace: &str,
        key: &str,
        value: &[u8],
        ttl: Duration,
        quota_bytes: u64,
    ) -> Result<CacheWrite, String>;
    /// Forget `key` in `namespace`.
    async fn delete(&self, namespace: &str, key: &str) -> Result<(), String>;
}

/// Why a link's `cache.set` was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum SetError {
    #[error("cache keys are at most {MAX_KEY_BYTES} bytes; this one has {0}")]
    KeyTooLong(usize),
    #[error("cache values are at most {limit} bytes (limits.cache_value_bytes); this one has {size}")]
    ValueTooLarge { size: usize, limit: u64 },
    #[error(
        "cache quota reached: the link keeps {used} of its {limit} cache bytes and this entry needs {charge} (entries count until their ttl runs out; raise limits.cache_bytes if the link legitimately needs more)"
    )]
    OverQuota { used: u64, limit: u64, charge: u64 },
    #[error("the cache could not store the entry: {0}")]
    Store(String),
}

/// One link's (or tracer's) view of the cache: its namespace, its quota and
/// the per-entry caps, from its limits.
#[derive(Clone)]
pub(crate) struct ScopedCache {
    store: Arc<dyn LinkCache>,
    namespace: String,
    quota_bytes: u64,
    value_bytes: u64,
    ttl: Duration,
}

impl ScopedCache {
    pub(crate) fn new(store: Arc<dyn LinkCache>, owner: Owner, name: &str, limits: &Limits) -> Self {
        Self {
            store,
            namespace: namespace(owner, name),
            quota_bytes: limits.cache_bytes,
            value_bytes: limits.cache_value_bytes,
            ttl: Duration::from_secs(limits.cache_ttl_secs.max(1)).min(MAX_TTL),
        }
    }

    /// The value under `key` (a key too long to have been stored is a miss).
    pub(crate) async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, String> {
        if key.len() > MAX_KEY_BYTES {
            return Ok(None);
        }
        self.store.get(&self.namespace, key).await
    }

    /// Store `value` under `key` for the `ttl_secs` the link asked for (0, or
    /// more than the limit, means the limit).
    pub(crate) async fn set(&self, key: &str, value: &[u8], ttl_secs: u32) -> Result<(), SetError> {
        if key.len() > MAX_KEY_BYTES {
            return Err(SetError::KeyTooLong(key.len()));
        }
        if value.len() as u64 > self.value_bytes {
            return Err(SetError::ValueTooLarge { size: value.len(), limit: self.value_bytes });
        }
        let ttl = if ttl_secs == 0 { self.ttl } else { Duration::from_secs(u64::from(ttl_secs)).min(self.ttl) };
        match self.store.set(&self.namespace, key, value, ttl, self.quota_bytes).await {
            Ok(CacheWrite::Stored) => Ok(()),
            Ok(CacheWrite::OverQuota { used }) => {
                Err(SetError::OverQuota { used, limit: self.quota_bytes, charge: entry_charge(key, value) })
            }
            Err(error) => Err(SetError::Store(error)),
        }
    }

    /// Forget `key`.
    pub(crate) async fn delete(&self, key: &str) -> Result<(), String> {
        if key.len() > MAX_KEY_BYTES {
            return Ok(());
        }
        self.store.delete(&self.namespace, key).await
    }
}

/// An in-process cache, for a runtime without a shared store (tools, tests of
/// the runtime itself). It counts exactly: expired entries are dropped when
/// touched, and a namespace's expired entries when it nears its quota.
#[derive(Debug, Default)]
pub struct MemoryCache {
    spaces: Mutex<HashMap<String, Space>>,
}

#[derive(Debug, Default)]
struct Space {
    entries: HashMap<String, (Vec<u8>, Instant)>,
    /// Charges of every entry held, expired or not.
    bytes: u64,
}

impl Space {
    fn remove(&mut self, key: &str) {
        if let Some((value, _)) = self.entries.remove(key) {
            self.bytes = self.bytes.saturating_sub(entry_charge(key, &value));
        }
    }

    fn purge_expired(&mut self, now: Instant) {
        let expired: Vec<String> =
            self.entries.iter().filter(|(_, (_, expires))| *expires <= now).map(|(key, _)| key.clone()).collect();
        for key in expired {
            self.remove(&key);
        }
    }
}

#[async_trait]
impl LinkCache for MemoryCache {
    async fn get(&self, namespace: &str, key: &str) -> Result<Option<Vec<u8>>, String> {
        let mut spaces = self.spaces.lock().map_err(|_| "cache lock poisoned".to_string())?;
        let Some(space) = spaces.get_mut(namespace) else { return Ok(None) };
        match space.entries.get(key) {
            Some((value, expires)) if *expires > Instant::now() => Ok(Some(value.clone())),
            Some(_) => {
                space.remove(key);
                Ok(None)
            }
            None => Ok(None),
        }
    }

    async fn set(
        &self,
        namespace: &str,
        key: &str,
        value: &[u8],
        ttl: Duration,
        quota_bytes: u64,
    ) -> Result<CacheWrite, String> {
        let mut spaces = self.spaces.lock().map_err(|_| "cache lock poisoned".to_string())?;
        let space = spaces.entry(namespace.to_string()).or_default();
        let now = Instant::now();
        let charge = entry_charge(key, value);
        let replaced = space.entries.get(key).map_or(0, |(old, _)| entry_charge(key, old));
        if space.bytes - replaced + charge > quota_bytes {
            space.purge_expired(now);
        }
        let replaced = space.entries.get(key).map_or(0, |(old, _)| entry_charge(key, old));
        if space.bytes - replaced + charge > quota_bytes {
            return Ok(CacheWrite::OverQuota { used: space.bytes });
        }
        space.remove(key);
        space.entries.insert(key.to_string(), (value.to_vec(), now + ttl));
        space.bytes += charge;
        Ok(CacheWrite::Stored)
    }

    async fn delete(&self, namespace: &str, key: &str) -> Result<(), String> {
        let mut spaces = self.spaces.lock().map_err(|_| "cache lock poisoned".to_string())?;
        if let Some(space) = spaces.get_mut(namespace) {
            space.remove(key);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn scoped(owner: Owner, name: &str, store: &Arc<dyn LinkCache>, cache_bytes: u64) -> ScopedCache {
        let limits = Limits { cache_bytes, cache_value_bytes: 1000, cache_ttl_secs: 60, ..Limits::default() };
        ScopedCache::new(store.clone(), owner, name, &limits)
    }

    #[test]
    fn namespaces_are_unambiguous() {
        assert_eq!(namespace(Owner::Link, "tag"), "link:tag");
        assert_eq!(namespace(Owner::Tracer, "tag"), "tracer:tag");
        assert_eq!(namespace(Owner::Link, "a:x"), "link:a%3Ax");
        assert_eq!(namespace(Owner::Link, "a%3Ax"), "link:a%253Ax");
        assert_eq!(namespace(Owner::Link, "{é}"), "link:%7B%C3%A9%7D");
        assert!(!namespace(Owner::Link, "a:b{c}").contains(['{', '}']));
    }

    #[tokio::test]
    async fn links_and_tracers_never_see_each_others_keys() {
        let store: Arc<dyn LinkCache> = Arc::new(MemoryCache::default());
        let a = scoped(Owner::Link, "a", &store, 10_000);
        let a_x = scoped(Owner::Link, "a:x", &store, 10_000);
        let tracer_a = scoped(Owner::Tracer, "a", &store, 10_000);
        a_x.set("k", b"secret of a:x", 0).await.unwrap();
        tracer_a.set("x:k", b"tracer", 0).await.unwrap();
        assert_eq!(a.get("x:k").await.unwrap(), None, "link `a` reading `x:k` must not see link `a:x`'s `k`");
        a.set("x:k", b"mine", 0).await.unwrap();
        assert_eq!(a.get("x:k").await.unwrap().as_deref(), Some(&b"mine"[..]));
        assert_eq!(tracer_a.get("x:k").await.unwrap().as_deref(), Some(&b"tracer"[..]));
        assert_eq!(a_x.get("k").await.unwrap().as_deref(), Some(&b"secret of a:x"[..]));
    }

    #[tokio::test]
    async fn the_quota_counts_keys_values_and_overhead_and_gives_back_replaced_bytes() {
        let store: Arc<dyn LinkCache> = Arc::new(MemoryCache::default());
        // Room for exactly two entries of a 1-byte key and a 100-byte value.
        let link = scoped(Owner::Link, "l", &store, 2 * (1 + 100 + ENTRY_OVERHEAD_BYTES));
        link.set("a", &[0; 100], 0).await.unwrap();
        link.set("b", &[0; 100], 0).await.unwrap();
        let refused = link.set("c", &[0; 100], 0).await.unwrap_err();
        assert_eq!(refused, SetError::OverQuota { used: 330, limit: 330, charge: 165 });
        assert!(refused.to_string().contains("limits.cache_bytes"), "{refused}");
        assert_eq!(link.get("c").await.unwrap(), None, "a refused entry is not stored");
        link.set("a", &[1; 100], 0).await.unwrap(); // replacing gives its bytes back
        link.delete("b").await.unwrap();
        link.set("c", &[0; 100], 0).await.unwrap();
        // Another link has its own quota.
        scoped(Owner::Link, "other", &store, 330).set("a", &[0; 100], 0).await.unwrap();
    }

    #[tokio::test]
    async fn entries_are_capped_and_expire() {
        let store: Arc<dyn LinkCache> = Arc::new(MemoryCache::default());
        let link = scoped(Owner::Link, "l", &store, 1_000_000);
        let long_key = "k".repeat(MAX_KEY_BYTES + 1);
        assert_eq!(link.set(&long_key, b"1", 0).await.unwrap_err(), SetError::KeyTooLong(MAX_KEY_BYTES + 1));
        assert_eq!(link.get(&long_key).await.unwrap(), None);
        let too_large = link.set("k", &[0; 1001], 0).await.unwrap_err();
        assert!(matches!(too_large, SetError::ValueTooLarge { size: 1001, limit: 1000 }), "{too_large:?}");
        assert_eq!(link.ttl, Duration::from_secs(60));
        // Straight to the store: a short-lived entry expires and its bytes come back.
        store.set("link:l", "a", b"1", Duration::from_millis(30), 1000).await.unwrap();
        assert_eq!(store.get("link:l", "a").await.unwrap().as_deref(), Some(&b"1"[..]));
        tokio::time::sleep(Duration::from_millis(40)).await;
        assert_eq!(store.get("link:l", "a").await.unwrap(), None);
        let quota = entry_charge("b", &[0; 100]);
        store.set("link:m", "a", &[0; 100], Duration::from_millis(30), quota).await.unwrap();
        tokio::time::sleep(Duration::from_millis(40)).await;
        assert_eq!(store.set("link:m", "b", &[0; 100], MAX_TTL, quota).await.unwrap(), CacheWrite::Stored);
    }

    #[test]
    fn the_ttl_limit_never_exceeds_a_day() {
        let store: Arc<dyn LinkCache> = Arc::new(MemoryCache::default());
        let limits = Limits { cache_ttl_secs: u64::MAX, ..Limits::default() };
        assert_eq!(ScopedCache::new(store, Owner::Link, "l", &limits).ttl, MAX_TTL);
    }
}
