//! Workers: each has a dispatcher that pops uuids while it has free concurrency
//! slots and a task per vCon. Shutdown stops popping, lets in-flight vCons finish
//! within the grace period, then returns the rest to the head of their lists.

use std::sync::Arc;
use std::time::Duration;

use conserver_broker::{Broker, Popped, Popper};
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::Instrument;

use crate::process::{Outcome, ProcessOptions, process_vcon};
use crate::{ChainPlan, Snapshot};

/// How long one pop waits before re-checking for shutdown and config changes.
const POP_WAIT: Duration = Duration::from_secs(1);
/// How long ack/requeue keep retrying through broker trouble before giving up
/// (the item then stays in the processing list and is reclaimed later).
const SETTLE_RETRY_FOR: Duration = Duration::from_secs(120);

/// A unique id for a worker of this process: `{hostname}-{pid}-{n}-{random}`.
pub fn worker_id(n: usize) -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_else(|_| "host".into());
    let nonce = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.subsec_nanos());
    format!("{host}-{}-{n}-{nonce:08x}", std::process::id())
}

/// Everything a worker needs.
#[derive(Clone)]
pub struct WorkerSettings {
    /// Chains in flight per worker (`CONSERVER_VCON_CONCURRENCY`).
    pub concurrency: usize,
    /// Processing options.
    pub options: ProcessOptions,
    /// How long in-flight vCons may run after shutdown starts.
    pub grace: Duration,
    /// A worker whose heartbeat is older than this is dead, and the vCons it held
    /// go back to their lists (`CONSERVER_WORKER_TTL_SECS`, default 15).
    pub heartbeat_ttl: Duration,
}

/// The running workers of this process.
pub struct Workers {
    set: JoinSet<()>,
}

impl Workers {
    /// Start `count` workers reading the current snapshot from `snapshots`.
    pub fn start(
        count: usize,
        broker: Arc<dyn Broker>,
        snapshots: watch::Receiver<Arc<Snapshot>>,
        settings: WorkerSettings,
        shutdown: CancellationToken,
    ) -> Self {
        let mut set = JoinSet::new();
        let ids: Vec<String> = (1..=count).map(worker_id).collect();
        for id in &ids {
            let worker = Worker {
                id: id.clone(),
                broker: broker.clone(),
                snapshots: snapshots.clone(),
                settings: settings.clone(),
                shutdown: shutdown.clone(),
            };
            set.spawn(worker.run());
        }
        set.spawn(reap(broker, ids, settings.heartbeat_ttl, shutdown));
        Self { set }
    }

    /// Wait until every worker has drained and stopped.
    pub async fn join(mut self) {
        while self.set.join_next().await.is_some() {}
    }
}

#[derive(Clone)]
struct Worker {
    id: String,
    broker: Arc<dyn Broker>,
    snapshots: watch::Receiver<Arc<Snapshot>>,
    settings: WorkerSettings,
    shutdown: CancellationToken,
}

/// Return the vCons held by dead workers (of any process) to their lists: at start
/// (a previous run's crash) and then every half heartbeat period.
async fn reap(broker: Arc<dyn Broker>, live: Vec<String>, ttl: Duration, shutdown: CancellationToken) {
    loop {
        match broker.reclaim_dead(&live).await {
            Ok(0) => {}
            Ok(count) => tracing::warn!(count, "returned vCons held by dead workers to their lists"),
            Err(error) => tracing::warn!(%error, "cannot check for dead workers; will retry"),
        }
        tokio::select! {
            () = tokio::time::sleep(ttl / 2) => {}
            () = shutdown.cancelled() => return,
        }
    }
}

impl Worker {
    /// Renew this worker's heartbeat until `stopped`.
    async fn heartbeat(self, stopped: CancellationToken) {
        let ttl = self.settings.heartbeat_ttl;
        loop {
            let lists = self.snapshots.borrow().ingress_lists().to_vec();
            if let Err(error) = self.broker.heartbeat(&self.id, &lists, ttl.as_secs().max(1)).await {
                tracing::warn!(worker = %self.id, %error, "heartbeat failed; will retry");
            }
            tokio::select! {
                () = tokio::time::sleep(ttl / 3) => {}
                () = stopped.cancelled() => return,
            }
        }
    }

    async fn run(self) {
        tracing::info!(worker = %self.id, concurrency = self.settings.concurrency, "worker started");
        let stopped = CancellationToken::new();
        let _stop_heartbeat = stopped.clone().drop_guard();
        tokio::spawn(self.clone().heartbeat(stopped));
        let Some(mut popper) = self.connect_popper().await else {
            return;
        };
        let slots = Arc::new(Semaphore::new(self.settings.concurrency));
        let tasks = TaskTracker::new();
        let hard_stop = CancellationToken::new();
        let mut failures = 0u32;
        loop {
            let permit = tokio::select! {
                permit = slots.clone().acquire_owned() => match permit { Ok(p) => p, Err(_) => break },
                () = self.shutdown.cancelled() => break,
            };
            let snapshot = self.snapshots.borrow().clone();
            // A pop is never cancelled half-way: it may already have moved an item.
            match popper.pop(snapshot.ingress_lists(), POP_WAIT).await {
                Ok(Some(item)) => {
                    failures = 0;
                    conserver_core::metrics::record_received(&item.list);
                    if self.shutdown.is_cancelled() {
                        self.requeue(&item).await;
                        break;
                    }
                    // The config may have changed while the pop waited: the vCon
                    // runs on the snapshot current now, and keeps it to the end.
                    let snapshot = self.snapshots.borrow().clone();
                    let Some(chain) = snapshot.chain_for(&item.list) else {
                        tracing::warn!(list = %item.list, "no chain reads this list any more; returning the item");
                        self.requeue(&item).await;
                        continue;
                    };
                    let worker = self.clone();
                    let hard_stop = hard_stop.clone();
                    tasks.spawn(async move {
                        worker.handle(chain, item, hard_stop).await;
                        drop(permit);
                    });
                }
                Ok(None) => {}
                Err(error) => {
                    failures = failures.saturating_add(1);
                    let backoff = Duration::from_millis(100u64 << failures.min(5));
                    tracing::error!(worker = %self.id, %error, retry_in_ms = backoff.as_millis() as u64, "cannot pop from the broker");
                    tokio::select! {
                        () = tokio::time::sleep(backoff) => {}
                        () = self.shutdown.cancelled() => break,
                    }
                }
            }
        }
        tasks.close();
        let in_flight = tasks.len();
        if in_flight > 0 {
            tracing::info!(worker = %self.id, in_flight, grace_secs = self.settings.grace.as_secs(), "draining in-flight vCons");
        }
        if tokio::time::timeout(self.settings.grace, tasks.wait()).await.is_err() {
            tracing::warn!(worker = %self.id, "grace period over; returning unfinished vCons to their lists");
            hard_stop.cancel();
            tasks.wait().await;
        }
        tracing::info!(worker = %self.id, "worker stopped");
    }

    async fn connect_popper(&self) -> Option<Box<dyn Popper>> {
        let mut attempt = 0u32;
        loop {
            match self.broker.popper(&self.id).await {
                Ok(popper) => return Some(popper),
                Err(error) => {
                    attempt = attempt.saturating_add(1);
                    tracing::error!(worker = %self.id, %error, "cannot connect to the broker; retrying");
                    tokio::select! {
                        () = tokio::time::sleep(Duration::from_millis(200u64 << attempt.min(4))) => {}
                        () = self.shutdown.cancelled() => return None,
                    }
                }
            }
        }
    }

    async fn handle(&self, chain: Arc<ChainPlan>, item: Popped, hard_stop: CancellationToken) {
        let producer = if conserver_core::trace_context::enabled() {
            self.broker.pop_trace_context(&item.list, &item.uuid).await.unwrap_or_else(|error| {
                tracing::debug!(vcon_uuid = %item.uuid, %error, "cannot read the producer's trace context");
                None
            })
        } else {
            None
        };
        let span = crate::spans::chain_span(&chain.name, &item.uuid, &item.list, producer.as_deref());
        let work = process_vcon(self.broker.as_ref(), &chain, &item, self.settings.options).instrument(span.clone());
        tokio::select! {
            result = work => match result {
                Ok(outcome) => {
                    if let Outcome::Completed = outcome {
                        tracing::debug!(parent: &span, "vCon processed");
                    }
                    self.settle(&item, Settle::Ack, &hard_stop).await;
                }
                Err(error) => {
                    tracing::error!(parent: &span, %error, "broker failed mid-chain; returning the vCon to its list");
                    self.settle(&item, Settle::Requeue, &hard_stop).await;
                }
            },
            () = hard_stop.cancelled() => self.requeue(&item).await,
        }
    }

    /// Ack or requeue, retrying through broker trouble (a Redis restart, say) so an
    /// item is not left behind in the processing list of a live worker.
    async fn settle(&self, item: &Popped, how: Settle, hard_stop: &CancellationToken) {
        let started = tokio::time::Instant::now();
        let mut backoff = Duration::from_millis(100);
        loop {
            let result = match how {
                Settle::Ack => self.broker.ack(&self.id, item).await,
                Settle::Requeue => self.broker.requeue(&self.id, item).await,
            };
            let Err(error) = result else { return };
            if started.elapsed() > SETTLE_RETRY_FOR || hard_stop.is_cancelled() {
                tracing::error!(vcon_uuid = %item.uuid, list = %item.list, %error, action = ?how,
                    "giving up; the vCon stays in the processing list and is returned when this worker stops");
                return;
            }
            tracing::warn!(vcon_uuid = %item.uuid, %error, action = ?how, "broker unavailable; retrying");
            tokio::select! {
                () = tokio::time::sleep(backoff) => {}
                () = hard_stop.cancelled() => {}
            }
            backoff = (backoff * 2).min(Duration::from_secs(2));
        }
    }

    async fn requeue(&self, item: &Popped) {
        if let Err(error) = self.broker.requeue(&self.id, item).await {
            tracing::error!(vcon_uuid = %item.uuid, list = %item.list, %error, "cannot return the vCon to its list; it stays in the processing list");
        }
    }
}

#[derive(Debug, Clone, Copy)]
enum Settle {
    Ack,
    Requeue,
}
