//! Links' cache entries with a byte quota per namespace, the same on both
//! backends (`redis`, `sqlite`).
//!
//! An entry counts its key, its value and [`CACHE_ENTRY_OVERHEAD_BYTES`]
//! against its namespace. Counting every live entry at each write would cost as
//! much as the namespace holds, so the bytes are kept in counters, one per
//! namespace per 10-minute *expiry bucket*: an entry expiring at second `e` is
//! counted in bucket `⌈e / 600⌉`, and that counter lapses when its bucket ends
//! (`bucket × 600 ≤ now`). A namespace's use is the sum of its unlapsed counters
//! — at most 146 of them, because entries live at most a day — so a write costs
//! a bounded amount whatever the number of entries. Replacing or deleting a live
//! entry takes its bytes out of its bucket; an entry that expired keeps counting
//! until its bucket lapses, at most 10 minutes later (never less than the live
//! entries). Each write reads the counters, decides and updates in one atomic
//! step (a Lua script on Redis, a write transaction on SQLite), so concurrent
//! writers from any number of workers never take a namespace past its quota.
//!
//! Namespaces and keys are stored apart (the Redis key puts the namespace inside
//! a `{hash tag}` with `%`, `{` and `}` escaped), so no two (namespace, key) pairs
//! share an entry. Entries written before quotas existed (`conserver:cache:…` in
//! Redis, the `link_cache` table in SQLite) are not read: on Redis they expire
//! within a day, the SQLite table is dropped. It is a cache; links refill it.

pub(crate) mod redis;
pub(crate) mod sqlite;
mod store;

pub use store::LinkCacheStore;

/// What an entry counts against its namespace besides its key and value.
pub const CACHE_ENTRY_OVERHEAD_BYTES: u64 = 64;
/// The width of an expiry bucket, in seconds: how long past its expiry an entry
/// may still count against the quota.
pub const CACHE_BUCKET_SECS: u64 = 600;
/// The longest time to live of a cache entry (longer requests are shortened).
pub const CACHE_MAX_TTL_SECS: u64 = 24 * 60 * 60;

/// The outcome of a cache write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CacheWrite {
    /// The entry is stored; the namespace now counts `used` bytes.
    Stored {
        /// Bytes the namespace counts, this entry included.
        used: u64,
    },
    /// Nothing was written: the namespace counts `used` bytes and the entry
    /// would take it past the quota.
    OverQuota {
        /// Bytes the namespace counts.
        used: u64,
    },
}

/// What an entry counts against its namespace.
pub(crate) fn charge(key: &str, value: &[u8]) -> u64 {
    (key.len() + value.len()) as u64 + CACHE_ENTRY_OVERHEAD_BYTES
}

/// The time to live a write gets: at least 1 s, at most a day.
pub(crate) fn ttl(ttl_secs: u64) -> u64 {
    ttl_secs.clamp(1, CACHE_MAX_TTL_SECS)
}

/// The bucket an entry expiring at `expires_at` (epoch seconds) is counted in.
pub(crate) fn bucket(expires_at: u64) -> u64 {
    expires_at.div_ceil(CACHE_BUCKET_SECS)
}

/// The last bucket that has lapsed at `now`: every bucket up to it is over.
pub(crate) fn lapsed(now: u64) -> u64 {
    now / CACHE_BUCKET_SECS
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_live_entry_is_always_in_an_unlapsed_bucket() {
        for expires in [1u64, 599, 600, 601, 1_764_700_000] {
            for now in [expires.saturating_sub(CACHE_MAX_TTL_SECS), expires - 1] {
                assert!(bucket(expires) > lapsed(now), "expires {expires}, now {now}");
            }
            // …and counts for at most one bucket width past its expiry.
            assert!(bucket(expires) * CACHE_BUCKET_SECS < expires + CACHE_BUCKET_SECS);
            assert!(bucket(expires) <= lapsed(expires + CACHE_BUCKET_SECS));
        }
        assert_eq!(charge("k", b"abc"), 68);
        assert_eq!((ttl(0), ttl(5), ttl(u64::MAX)), (1, 5, CACHE_MAX_TTL_SECS));
    }
}
