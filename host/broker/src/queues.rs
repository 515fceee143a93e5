//! The queue half of the broker contract ([`Queues`]).

use async_trait::async_trait;

use crate::{Popped, Popper, Result};

/// Lists and reliable consumption: FIFO lists with a head, the pop into a
/// worker's processing list, ack and requeue, worker heartbeats and the
/// reclaim of a dead worker's items, and the trace contexts left on a list.
#[async_trait]
pub trait Queues: Send + Sync {
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
    /// Move up to `count` entries from the head of `from` to the tail of `to`, each
    /// move atomic; returns how many moved.
    async fn move_items(&self, from: &str, to: &str, count: u64) -> Result<u64>;
}
