//! The broker: ingress/egress lists, per-worker processing lists, the vCon document
//! cache and the dead-letter queue, behind one [`Broker`] trait with two backends:
//!
//! * [`RedisBroker`] (`REDIS_URL`): the Python conserver's key layout, so other
//!   producers (`RPUSH incoming <uuid>`) and tools keep working;
//! * [`EmbeddedBroker`]: SQLite through sqlx under `CONSERVER_DATA_DIR`, the default
//!   when no Redis is configured, for a single process.
//!
//! Reliable consumption: [`Popper::pop`] atomically moves a uuid from the head of an
//! ingress list to the worker's processing list for that list; the pipeline
//! [`Broker::ack`]s it when done or [`Broker::requeue`]s it to the head of its list.

mod embedded;
mod error;
mod finish;
mod keys;
mod link_cache;
mod redis_backend;
mod redis_conn;
mod redis_json;
mod redis_scripts;
mod redis_tls;
mod trace_context;

use std::time::Duration;

use async_trait::async_trait;
use conserver_core::DlqReason;

pub use embedded::EmbeddedBroker;
pub use error::BrokerError;
pub use finish::{Finish, FinishStep, Prefetched, Taken, finish_step_by_step};
pub use keys::{WORKERS_KEY, dlq_list, dlq_reasons_key, heartbeat_key, processing_list, trace_context_key, vcon_key};
pub use link_cache::{CACHE_BUCKET_SECS, CACHE_ENTRY_OVERHEAD_BYTES, CACHE_MAX_TTL_SECS, CacheWrite};
pub use redis_backend::RedisBroker;
pub use redis_json::{Conversion, DocumentForm, JsonMode};
pub use redis_tls::RedisTls;

/// Result of broker operations.
pub type Result<T> = std::result::Result<T, BrokerError>;

/// A uuid taken from an ingress list, now held in a processing list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Popped {
    /// The ingress list it came from.
    pub list: String,
    /// The uuid.
    pub uuid: String,
}

/// The longest time to live the host sets on anything, in seconds (100 years).
/// Redis refuses an `EXPIRE` whose deadline overflows its millisecond clock
/// (~9.2e15 s), and a refused write would be retried for ever; both backends
/// clamp to this, and the pipeline refuses a link's longer request outright.
pub const MAX_TTL_SECS: u64 = 100 * 365 * 24 * 60 * 60;

/// `secs` clamped to [`MAX_TTL_SECS`], as the signed number Redis takes.
pub(crate) fn clamped_ttl(secs: u64) -> i64 {
    i64::try_from(secs.min(MAX_TTL_SECS)).unwrap_or(i64::MAX)
}

/// How a vCon write treats the document's time to live.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ttl {
    /// Keep whatever TTL the key has (none for a new key).
    Keep,
    /// Set the TTL to this many seconds (0 means no expiry).
    Secs(u64),
}

/// The broker operations the API and the pipeline need.
#[async_trait]
pub trait Broker: Send + Sync + 'static {
    /// `redis` or `embedded`.
    fn backend(&self) -> &'static str;

    /// Check the broker answers (Redis `PING`; a read on the embedded store).
    async fn ping(&self) -> Result<()>;
    /// Memory the broker uses, when it can tell (Redis `INFO memory` `used_memory`).
    async fn memory_used_bytes(&self) -> Result<Option<u64>>;
    /// Settings of the broker that can lose acknowledged data, each said in a
    /// sentence with what to do: a Redis with neither AOF nor RDB snapshots,
    /// or with an eviction policy other than `noeviction`. Empty when none
    /// (always, for the embedded broker, which writes every acknowledged item
    /// to its file).
    async fn durability_warnings(&self) -> Result<Vec<String>> {
        Ok(Vec::new())
    }
    /// Store the producer's trace context for `uuid` queued on `list`
    /// (`RPUSH context:{list}:{uuid}` + `EXPIRE`), as the Python API does before
    /// each enqueue.
    async fn push_trace_context(&self, list: &str, uuid: &str, context_json: &str, ttl_secs: u64) -> Result<()>;
    /// Take the oldest trace context stored for `uuid` popped from `list` (`LPOP`).
    async fn pop_trace_context(&self, list: &str, uuid: &str) -> Result<Option<String>>;

    /// Append uuids to the tail of `list` (RPUSH), in order.
    async fn push(&self, list: &str, uuids: &[String]) -> Result<()>;
    /// Put a uuid back at the head of `list` (LPUSH).
    async fn push_front(&self, list: &str, uuid: &str) -> Result<()>;
    /// Remove and return the head of `list` (LPOP).
    async fn pop_front(&self, list: &str) -> Result<Option<String>>;
    /// Remove and return the tail of `list` (RPOP).
    async fn pop_back(&self, list: &str) -> Result<Option<String>>;
    /// Remove and return up to `count` entries from the head of `list`, oldest first.
    async fn pop_front_many(&self, list: &str, count: u64) -> Result<Vec<String>>;
    /// Number of entries in `list`.
    async fn len(&self, list: &str) -> Result<u64>;
    /// Up to `count` entries from the head of `list`, without removing them.
    async fn peek(&self, list: &str, count: u64) -> Result<Vec<String>>;
    /// Remove one occurrence of each of `uuids` from `list`; returns how many were found.
    async fn remove_items(&self, list: &str, uuids: &[String]) -> Result<u64>;
    /// Every entry of `list`, head first.
    async fn range(&self, list: &str) -> Result<Vec<String>>;

    /// A consumer that takes uuids reliably for `worker` (one per dispatcher; it may
    /// hold its own connection).
    async fn popper(&self, worker: &str) -> Result<Box<dyn Popper>>;
    /// Forget a finished item: remove it from the worker's processing list.
    async fn ack(&self, worker: &str, item: &Popped) -> Result<()>;
    /// The whole wrap-up of a processed vCon, then the ack of `item`, as one
    /// operation (see [`Finish`]): one script on Redis, one transaction on the
    /// embedded broker. An error leaves `item` held (it runs again).
    async fn finish(&self, worker: &str, item: &Popped, finish: &Finish) -> Result<()>;
    /// Return an unfinished item to the head of its ingress list, atomically.
    async fn requeue(&self, worker: &str, item: &Popped) -> Result<()>;
    /// Record that `worker` is alive and consumes `lists`; without a renewal the
    /// record lapses after `ttl_secs` and the worker counts as dead.
    async fn heartbeat(&self, worker: &str, lists: &[String], ttl_secs: u64) -> Result<()>;
    /// The workers (of any process) whose heartbeat has lapsed and whose items may
    /// still be held; `live` are this process's workers, never listed.
    async fn dead_workers(&self, live: &[String]) -> Result<Vec<String>>;
    /// Return the items held in `worker`'s processing lists to the head of their
    /// ingress lists, oldest first, unless its heartbeat is back; how many.
    async fn reclaim_worker(&self, worker: &str) -> Result<u64>;
    /// Whether other processes may share this broker. A worker found dead in a
    /// shared broker may only be cut off from it for a moment (a Redis refusing
    /// writes refuses heartbeats too), so the reaper reclaims it only when it is
    /// found dead twice, half a heartbeat period apart; a broker owned by one
    /// process knows every worker not its own is gone.
    fn shared(&self) -> bool {
        true
    }

    /// The vCon document `vcon:{uuid}`, if present.
    async fn get_vcon(&self, uuid: &str) -> Result<Option<String>>;
    /// Write the vCon document.
    async fn put_vcon(&self, uuid: &str, json: &str, ttl: Ttl) -> Result<()>;
    /// Delete the vCon document; whether it existed.
    async fn delete_vcon(&self, uuid: &str) -> Result<bool>;
    /// Set the vCon document's TTL in seconds (0 removes the expiry).
    async fn expire_vcon(&self, uuid: &str, secs: u64) -> Result<()>;

    /// Dead-letter `reason.uuid` from `ingress`: RPUSH `DLQ:{ingress}`, record the
    /// reason (its `attempts` counts earlier dead-letterings of the same uuid), and
    /// set the vCon's TTL to `expiry_secs` when that is above 0.
    async fn dead_letter(&self, ingress: &str, reason: DlqReason, expiry_secs: u64) -> Result<()>;
    /// The recorded reasons for the entries of `DLQ:{ingress}`, oldest first.
    async fn dlq_reasons(&self, ingress: &str) -> Result<Vec<DlqReason>>;
    /// Move up to `count` entries from the head of `from` to the tail of `to`, each
    /// move atomic; returns how many moved.
    async fn move_items(&self, from: &str, to: &str, count: u64) -> Result<u64>;

    /// Add `uuid` to the vCon list (the `vcons` sorted set, scored by `created_at`
    /// in epoch seconds) and to the party search sets `terms` (`tel:…`, `mailto:…`,
    /// `name:…`), whose TTL becomes `terms_ttl_secs` (0: none).
    async fn index_vcon(&self, uuid: &str, score: f64, terms: &[String], terms_ttl_secs: u64) -> Result<()>;
    /// Store a vCon with its indexes in one round trip: the document (with `ttl`),
    /// its list entry (`score`) and its party `terms` (with `terms_ttl_secs`).
    /// Returns the document it replaced, if any, so stale terms can be dropped.
    async fn store_vcon(
        &self,
        uuid: &str,
        json: &str,
        ttl: Ttl,
        score: f64,
        terms: &[String],
        terms_ttl_secs: u64,
    ) -> Result<Option<String>>;
    /// As [`store_vcon`](Broker::store_vcon), but only when no live document
    /// has this uuid, decided atomically: returns `None` when it stored the
    /// document, else the document already there (and writes nothing, index
    /// included).
    async fn create_vcon(
        &self,
        uuid: &str,
        json: &str,
        ttl: Ttl,
        score: f64,
        terms: &[String],
        terms_ttl_secs: u64,
    ) -> Result<Option<String>>;
    /// Remove `uuid` from the vCon list and from the party sets `terms`.
    async fn unindex_vcon(&self, uuid: &str, terms: &[String]) -> Result<()>;
    /// Listed uuids, newest first (score descending, ties by uuid descending), with
    /// a score within `[min, max]` (inclusive; `None` is unbounded), skipping
    /// `offset`, at most `count`.
    async fn list_vcons(&self, min: Option<f64>, max: Option<f64>, offset: u64, count: u64) -> Result<Vec<String>>;
    /// The uuids in every one of the party sets `terms` (none when `terms` is empty).
    async fn search(&self, terms: &[String]) -> Result<Vec<String>>;
    /// The uuid of every stored vCon document.
    async fn vcon_uuids(&self) -> Result<Vec<String>>;

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

/// Takes uuids from ingress lists into a processing list.
#[async_trait]
pub trait Popper: Send {
    /// Move the head of one of `lists` to the worker's processing list for it,
    /// waiting up to `wait` for one to arrive. Lists are served round-robin so none
    /// starves another.
    /// Where the backend can, the vCon's document (and trace context) is read
    /// in the same operation ([`Taken::prefetched`]).
    async fn pop(&mut self, lists: &[String], wait: Duration) -> Result<Option<Taken>>;
}
