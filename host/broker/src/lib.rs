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

mod dead_letters;
mod documents;
mod embedded;
mod error;
mod finish;
mod keys;
mod link_cache;
mod queues;
mod redis_broker;
mod redis_conn;
mod redis_json;
mod redis_scripts;
mod redis_tls;
mod trace_context;

use std::time::Duration;

use async_trait::async_trait;

pub use dead_letters::DeadLetters;
pub use documents::VconDocuments;
pub use embedded::EmbeddedBroker;
pub use error::BrokerError;
pub use finish::{Finish, FinishStep, Prefetched, Taken, finish_step_by_step};
pub use keys::{WORKERS_KEY, dlq_list, dlq_reasons_key, heartbeat_key, processing_list, trace_context_key, vcon_key};
pub use link_cache::{CACHE_BUCKET_SECS, CACHE_ENTRY_OVERHEAD_BYTES, CACHE_MAX_TTL_SECS, CacheWrite, LinkCacheStore};
pub use queues::Queues;
pub use redis_broker::RedisBroker;
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

/// Everything the API and the pipeline need from a broker: its [`Queues`],
/// [`VconDocuments`], [`DeadLetters`] and [`LinkCacheStore`] (each implemented in
/// its own file by both backends), plus health and the wrap-up of a processed
/// vCon, which spans them.
#[async_trait]
pub trait Broker: Queues + VconDocuments + DeadLetters + LinkCacheStore + Send + Sync + 'static {
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
    /// The whole wrap-up of a processed vCon, then the ack of `item`, as one
    /// operation (see [`Finish`]): one script on Redis, one transaction on the
    /// embedded broker. An error leaves `item` held (it runs again).
    async fn finish(&self, worker: &str, item: &Popped, finish: &Finish) -> Result<()>;
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
