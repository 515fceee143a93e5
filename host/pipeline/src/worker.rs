//! Workers: each has a dispatcher that pops uuids while it has free concurrency
//! slots and a task per vCon. Shutdown stops popping (a pop waiting for work is
//! abandoned), lets in-flight vCons finish within the grace period, then returns
//! the rest to the head of their lists.
//!
//! A worker also keeps its processing lists honest: after a failed pop (a
//! connection reset may have lost the answer to a pop that moved an item) and
//! when it stops, whatever its processing lists hold beyond the vCons it is
//! working on goes back to the head of its list. The reaper only returns the
//! items of dead workers, so without this an item could stay with a live worker
//! for the life of the process.
//!
//! On a broker other processes share, "dead" is judged with care: a Redis that
//! refuses writes (out of memory) refuses heartbeats too, so every worker looks
//! dead once it takes writes again. The reaper reclaims a worker only when two
//! consecutive scans, half a heartbeat period apart, find it dead and this
//! process's own heartbeats succeeded throughout; a worker whose heartbeats fail
//! for half the period stops taking work until one succeeds again.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use conserver_broker::{Broker, Popped, Popper, Taken};
use conserver_vcons::{StoreSettings, VconStore};
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::Instrument;

use crate::broker_failures::{self, FailureCounts, Next};
use crate::process::{Outcome, ProcessOptions, process_vcon};
use crate::{ChainPlan, Snapshot};

/// How long one pop waits before re-checking for shutdown and config changes.
const POP_WAIT: Duration = Duration::from_secs(1);
/// How long ack/requeue keep retrying through broker trouble before giving up
/// (the item then stays in the processing list and is reclaimed later).
const SETTLE_RETRY_FOR: Duration = Duration::from_secs(120);
/// How soon a failed heartbeat is tried again (a renewal is due every third of the
/// heartbeat period otherwise).
const HEARTBEAT_RETRY: Duration = Duration::from_millis(500);

/// How one worker's heartbeats are going.
struct HeartbeatState {
    /// When the last renewal succeeded (the worker's start before the first).
    last_success: Mutex<tokio::time::Instant>,
    /// Whether the latest renewal failed.
    failing: std::sync::atomic::AtomicBool,
    /// Failed renewals so far.
    failures: AtomicU64,
}

impl Default for HeartbeatState {
    fn default() -> Self {
        Self {
            last_success: Mutex::new(tokio::time::Instant::now()),
            failing: std::sync::atomic::AtomicBool::new(false),
            failures: AtomicU64::new(0),
        }
    }
}

impl HeartbeatState {
    fn succeeded(&self) {
        *self.last_success.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = tokio::time::Instant::now();
        self.failing.store(false, Ordering::SeqCst);
    }

    fn failed(&self) {
        self.failures.fetch_add(1, Ordering::SeqCst);
        self.failing.store(true, Ordering::SeqCst);
    }

    /// While renewals fail, how long since the last one succeeded (zero while
    /// they succeed): what the other processes see is that age.
    fn failing_for(&self) -> Duration {
        if !self.failing.load(Ordering::SeqCst) {
            return Duration::ZERO;
        }
        self.last_success.lock().unwrap_or_else(std::sync::PoisonError::into_inner).elapsed()
    }
}

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
        let mut heartbeats = Vec::new();
        let broker_failures = Arc::new(FailureCounts::default());
        let store = VconStore::new(
            broker.clone(),
            StoreSettings {
                vcon_expiry_secs: settings.options.vcon_expiry_secs,
                index_expiry_secs: settings.options.index_expiry_secs,
            },
        );
        for id in &ids {
            let worker = Worker {
                id: id.clone(),
                broker: broker.clone(),
                store: store.clone(),
                snapshots: snapshots.clone(),
                settings: settings.clone(),
                shutdown: shutdown.clone(),
                in_flight: Arc::default(),
                heartbeat: Arc::default(),
                broker_failures: broker_failures.clone(),
                lists_read: Arc::default(),
            };
            heartbeats.push(worker.heartbeat.clone());
            set.spawn(worker.run());
        }
        let reaper = Reaper { broker, live: ids, heartbeats, watch: DeathWatch::default() };
        set.spawn(reaper.run(settings.heartbeat_ttl, shutdown));
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
    /// The vCon store over `broker` (loads and the wrap-up).
    store: VconStore,
    snapshots: watch::Receiver<Arc<Snapshot>>,
    settings: WorkerSettings,
    shutdown: CancellationToken,
    /// The vCons popped and not yet settled, by (list, uuid), with a count.
    in_flight: Arc<Mutex<HashMap<(String, String), usize>>>,
    /// How this worker's heartbeats are going.
    heartbeat: Arc<HeartbeatState>,
    /// Broker failures per vCon, shared by the process's workers (pauses, and
    /// the poison limit).
    broker_failures: Arc<FailureCounts>,
    /// Every list this worker has read from (a reload may drop one while its
    /// vCons are still in flight): the heartbeat registers them all, so a
    /// reaper finds every processing list should this worker die.
    lists_read: Arc<Mutex<BTreeSet<String>>>,
}

impl Worker {
    fn hold(&self, item: &Popped) {
        let mut held = self.in_flight.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        *held.entry((item.list.clone(), item.uuid.clone())).or_default() += 1;
    }

    fn release(&self, item: &Popped) {
        let mut held = self.in_flight.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let key = (item.list.clone(), item.uuid.clone());
        if let Some(count) = held.get_mut(&key) {
            *count -= 1;
            if *count == 0 {
                held.remove(&key);
            }
        }
    }

    /// Return to the head of `lists` what this worker's processing lists hold
    /// beyond its vCons in flight (oldest at the very head); how many.
    async fn return_strays(&self, lists: &BTreeSet<String>) -> conserver_broker::Result<u64> {
        let mut returned = 0;
        for list in lists {
            // What is in flight first, then what is held: a vCon settled in
            // between is in neither, and nothing is popped meanwhile (the
            // dispatcher is here), so whatever is held but was not in flight
            // is a stray.
            let mut keep: HashMap<String, usize> = {
                let in_flight = self.in_flight.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
                in_flight.iter().filter(|((l, _), _)| l == list).map(|((_, uuid), n)| (uuid.clone(), *n)).collect()
            };
            let held = self.broker.range(&conserver_broker::processing_list(list, &self.id)).await?;
            // The copies in flight are kept; the rest are strays.
            let mut strays = Vec::new();
            for uuid in held {
                match keep.get_mut(&uuid) {
                    Some(count) if *count > 0 => *count -= 1,
                    _ => strays.push(uuid),
                }
            }
            // Newest first onto the head, so the oldest ends up first.
            for uuid in strays.into_iter().rev() {
                let item = Popped { list: list.clone(), uuid };
                self.broker.requeue(&self.id, &item).await?;
                tracing::warn!(worker = %self.id, list = %item.list, vcon_uuid = %item.uuid,
                    "returned a vCon this worker held without working on it (a lost pop answer, or shutdown)");
                returned += 1;
            }
        }
        Ok(returned)
    }
}

/// Returns the vCons held by dead workers (of any process) to their lists: at
/// start (a previous run's crash) and then every half heartbeat period.
struct Reaper {
    broker: Arc<dyn Broker>,
    /// This process's workers, never reclaimed.
    live: Vec<String>,
    /// Their heartbeats: while any fails, other workers' lapsed heartbeats prove nothing.
    heartbeats: Vec<Arc<HeartbeatState>>,
    watch: DeathWatch,
}

impl Reaper {
    async fn run(mut self, ttl: Duration, shutdown: CancellationToken) {
        loop {
            match self.scan().await {
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

    /// One scan; how many vCons were returned.
    async fn scan(&mut self) -> conserver_broker::Result<u64> {
        let failures = self.heartbeats.iter().map(|h| h.failures.load(Ordering::SeqCst)).sum();
        let failing = self.heartbeats.iter().any(|h| !h.failing_for().is_zero());
        let shared = self.broker.shared();
        if !self.watch.may_judge(failures, failing, shared) {
            return Ok(0);
        }
        let dead = self.broker.dead_workers(&self.live).await?;
        let mut returned = 0;
        let mut failed = None;
        for worker in self.watch.confirm(dead, shared) {
            match self.broker.reclaim_worker(&worker).await {
                Ok(count) => returned += count,
                Err(error) => {
                    self.watch.suspect(worker);
                    failed.get_or_insert(error);
                }
            }
        }
        match failed {
            Some(error) if returned == 0 => Err(error),
            Some(error) => {
                tracing::warn!(%error, "cannot return some dead workers' vCons yet; will retry");
                Ok(returned)
            }
            None => Ok(returned),
        }
    }
}

/// The reaper's judgement of which workers are dead, apart from the broker.
#[derive(Default)]
struct DeathWatch {
    /// Workers the previous scan found dead: reclaimed if the next scan agrees.
    suspects: HashSet<String>,
    /// Failed renewals of this process's own heartbeats at the previous scan.
    failures_seen: u64,
}

impl DeathWatch {
    /// Whether other workers may be judged now: not on a shared broker while
    /// this process's own heartbeats fail or failed since the previous scan
    /// (the broker may refuse writes, so the others' renewals fail too).
    fn may_judge(&mut self, failures: u64, failing: bool, shared: bool) -> bool {
        let failed_since = failures != self.failures_seen;
        self.failures_seen = failures;
        if shared && (failing || failed_since) {
            self.suspects.clear();
            return false;
        }
        true
    }

    /// Which of the workers found `dead` to reclaim now: on a shared broker,
    /// those the previous scan found dead too; the others become suspects.
    fn confirm(&mut self, dead: Vec<String>, shared: bool) -> Vec<String> {
        if !shared {
            return dead;
        }
        let (confirmed, first_seen): (Vec<String>, Vec<String>) =
            dead.into_iter().partition(|worker| self.suspects.contains(worker));
        for worker in &first_seen {
            tracing::info!(%worker, "a worker's heartbeat has lapsed; its vCons are returned if it is still gone at the next check");
        }
        self.suspects = first_seen.into_iter().collect();
        confirmed
    }

    /// Keep `worker` a suspect (its reclaim failed and is tried at the next scan).
    fn suspect(&mut self, worker: String) {
        self.suspects.insert(worker);
    }
}

impl Worker {
    /// Renew this worker's heartbeat until `stopped`.
    async fn heartbeat(self, stopped: CancellationToken) {
        let ttl = self.settings.heartbeat_ttl;
        loop {
            let lists: Vec<String> = {
                let mut lists = self.lists_read.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
                lists.extend(self.snapshots.borrow().ingress_lists().iter().cloned());
                lists.iter().cloned().collect()
            };
            // A renewal that hangs counts as failed once the next one is due.
            let renewal = self.broker.heartbeat(&self.id, &lists, ttl.as_secs().max(1));
            let result = match tokio::time::timeout(ttl / 3, renewal).await {
                Ok(result) => result.map_err(|e| e.to_string()),
                Err(_) => Err(format!("no answer within {} ms", (ttl / 3).as_millis())),
            };
            let next = match result {
                Ok(()) => {
                    if self.heartbeat.failing_for() > Duration::ZERO {
                        tracing::info!(worker = %self.id, "heartbeat renewed");
                    }
                    self.heartbeat.succeeded();
                    ttl / 3
                }
                Err(error) => {
                    // The first failure of a run, then one line every 10 s.
                    let failing_for = self.heartbeat.failing_for();
                    self.heartbeat.failed();
                    if failing_for.is_zero() || failing_for.as_millis() % 10_000 < HEARTBEAT_RETRY.as_millis() {
                        tracing::warn!(worker = %self.id, %error, failing_secs = failing_for.as_secs(), "heartbeat failed; retrying every 0.5 s");
                    }
                    HEARTBEAT_RETRY.min(ttl / 3)
                }
            };
            tokio::select! {
                () = tokio::time::sleep(next) => {}
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
        // Whether a pop failed since the processing lists were last checked.
        let mut check_strays = true;
        // The lists the registry names for this worker.
        let mut registered: BTreeSet<String> = BTreeSet::new();
        loop {
            let permit = tokio::select! {
                permit = slots.clone().acquire_owned() => match permit { Ok(p) => p, Err(_) => break },
                () = self.shutdown.cancelled() => break,
            };
            if !self.wait_for_heartbeat().await {
                break;
            }
            let snapshot = self.snapshots.borrow().clone();
            let read_from = {
                let mut lists = self.lists_read.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
                lists.extend(snapshot.ingress_lists().iter().cloned());
                lists.clone()
            };
            // Before the first pop from a list, the registry must name it: a crash
            // right after that pop leaves the vCon where a reaper looks.
            if read_from != registered {
                let lists: Vec<String> = read_from.iter().cloned().collect();
                let ttl = self.settings.heartbeat_ttl;
                match self.broker.heartbeat(&self.id, &lists, ttl.as_secs().max(1)).await {
                    Ok(()) => {
                        self.heartbeat.succeeded();
                        registered.clone_from(&read_from);
                    }
                    Err(error) => {
                        tracing::warn!(worker = %self.id, %error, "cannot register this worker's lists yet; not popping");
                        tokio::select! {
                            () = tokio::time::sleep(HEARTBEAT_RETRY) => {}
                            () = self.shutdown.cancelled() => break,
                        }
                        continue;
                    }
                }
            }
            if check_strays {
                match self.return_strays(&read_from).await {
                    Ok(_) => check_strays = false,
                    Err(error) => tracing::warn!(worker = %self.id, %error, "cannot check the processing lists yet"),
                }
            }
            // A pop abandoned at shutdown may have moved an item: the check
            // after the loop returns it.
            let popped = tokio::select! {
                popped = popper.pop(snapshot.ingress_lists(), POP_WAIT) => popped,
                () = self.shutdown.cancelled() => break,
            };
            match popped {
                Ok(Some(taken)) => {
                    let item = taken.item.clone();
                    failures = 0;
                    self.hold(&item);
                    conserver_core::metrics::record_received(&item.list);
                    if self.shutdown.is_cancelled() {
                        self.requeue(&item).await;
                        self.release(&item);
                        break;
                    }
                    // The config may have changed while the pop waited: the vCon
                    // runs on the snapshot current now, and keeps it to the end.
                    let snapshot = self.snapshots.borrow().clone();
                    let Some(chain) = snapshot.chain_for(&item.list) else {
                        tracing::warn!(list = %item.list, "no chain reads this list any more; returning the item");
                        self.requeue(&item).await;
                        self.release(&item);
                        continue;
                    };
                    let worker = self.clone();
                    let hard_stop = hard_stop.clone();
                    tasks.spawn(async move {
                        worker.handle(chain, &taken, hard_stop).await;
                        worker.release(&item);
                        drop(permit);
                    });
                }
                Ok(None) => {}
                Err(error) => {
                    failures = failures.saturating_add(1);
                    check_strays = true;
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
        drop(popper);
        let read_from = self.lists_read.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone();
        match self.return_strays(&read_from).await {
            Ok(_) => {}
            Err(error) => tracing::error!(worker = %self.id, %error,
                "cannot check the processing lists; what they hold is returned by another worker's reaper"),
        }
        tracing::info!(worker = %self.id, "worker stopped");
    }

    /// Hold off taking work while this worker's heartbeats have failed for half
    /// the heartbeat period (another process may soon count it dead and return
    /// what it holds); false if shutdown began meanwhile.
    async fn wait_for_heartbeat(&self) -> bool {
        let limit = self.settings.heartbeat_ttl / 2;
        if self.heartbeat.failing_for() < limit {
            return true;
        }
        tracing::warn!(worker = %self.id, failing_secs = self.heartbeat.failing_for().as_secs(),
            "heartbeats are failing; this worker takes no work until one succeeds");
        while self.heartbeat.failing_for() >= limit {
            tokio::select! {
                () = tokio::time::sleep(HEARTBEAT_RETRY) => {}
                () = self.shutdown.cancelled() => return false,
            }
        }
        tracing::info!(worker = %self.id, "heartbeat renewed; taking work again");
        true
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

    async fn handle(&self, chain: Arc<ChainPlan>, taken: &Taken, hard_stop: CancellationToken) {
        let item = &taken.item;
        let producer = if let Some(prefetched) = &taken.prefetched {
            prefetched.trace_context.clone()
        } else if conserver_core::trace_context::enabled() {
            self.broker.pop_trace_context(&item.list, &item.uuid).await.unwrap_or_else(|error| {
                tracing::debug!(vcon_uuid = %item.uuid, %error, "cannot read the producer's trace context");
                None
            })
        } else {
            None
        };
        let span = crate::spans::chain_span(&chain.name, &item.uuid, &item.list, producer.as_deref());
        let work = process_vcon(&self.store, &chain, &self.id, taken, self.settings.options).instrument(span.clone());
        tokio::select! {
            result = work => match result {
                Ok(outcome) => {
                    self.broker_failures.forget(item);
                    match outcome {
                        Outcome::Completed => tracing::debug!(parent: &span, "vCon processed"),
                        Outcome::Halted { .. } => {}
                        // The wrap-up acked the others; a dead-lettered one is acked here.
                        Outcome::DeadLettered(_) => self.settle(item, Settle::Ack, &hard_stop).await,
                    }
                }
                Err(error) => {
                    let tally = self.broker_failures.record(item, broker_failures::is_lasting(&error));
                    match broker_failures::next(tally) {
                        Next::DeadLetter => self.dead_letter_poison(&chain, item, &error, tally, &hard_stop).await,
                        Next::RetryAfter(pause) => {
                            tracing::error!(parent: &span, %error, attempt = tally.failures, retry_in_ms = pause.as_millis() as u64,
                                "broker failed mid-chain; the vCon goes back to its list after a pause");
                            self.pause(pause, &hard_stop).await;
                            self.settle(item, Settle::Requeue, &hard_stop).await;
                        }
                    }
                }
            },
            () = hard_stop.cancelled() => self.requeue(item).await,
        }
    }

    /// Dead-letter a vCon the broker keeps refusing for a reason retrying will
    /// not fix; if even that fails, it goes back to its list.
    async fn dead_letter_poison(
        &self,
        chain: &ChainPlan,
        item: &Popped,
        error: &conserver_broker::BrokerError,
        tally: broker_failures::Tally,
        hard_stop: &CancellationToken,
    ) {
        let attempts = tally.lasting;
        let reason = conserver_core::DlqReason {
            uuid: item.uuid.clone(),
            chain: chain.name.clone(),
            link: "broker".into(),
            error: format!(
                "{error} (the same after {attempts} tries; retrying will not fix it: repair or delete the key vcon:{}, then reprocess)",
                item.uuid
            ),
            retryable: false,
            attempts,
            at: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        };
        match self.broker.dead_letter(&item.list, reason, self.settings.options.dlq_expiry_secs).await {
            Ok(()) => {
                tracing::warn!(chain = %chain.name, vcon_uuid = %item.uuid, %error, attempts, "vCon dead-lettered: the broker cannot hand it to the chain");
                conserver_core::metrics::record_dlq(&conserver_broker::dlq_list(&item.list));
                self.broker_failures.forget(item);
                self.settle(item, Settle::Ack, hard_stop).await;
            }
            Err(dlq_error) => {
                let pause = broker_failures::pause(tally.failures);
                tracing::error!(vcon_uuid = %item.uuid, error = %dlq_error, retry_in_ms = pause.as_millis() as u64,
                    "cannot dead-letter the vCon; it goes back to its list after a pause");
                self.pause(pause, hard_stop).await;
                self.settle(item, Settle::Requeue, hard_stop).await;
            }
        }
    }

    /// Wait `pause`, or less if shutdown begins (the vCon then goes back at once).
    async fn pause(&self, pause: Duration, hard_stop: &CancellationToken) {
        tokio::select! {
            () = tokio::time::sleep(pause) => {}
            () = hard_stop.cancelled() => {}
            () = self.shutdown.cancelled() => {}
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

#[cfg(test)]
mod tests {
    use super::DeathWatch;

    fn names(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| (*s).to_string()).collect()
    }

    #[test]
    fn a_shared_broker_reclaims_a_worker_only_when_two_scans_find_it_dead() {
        let mut watch = DeathWatch::default();
        assert!(watch.may_judge(0, false, true));
        assert!(watch.confirm(names(&["a", "b"]), true).is_empty(), "first sighting: suspects only");
        assert!(watch.may_judge(0, false, true));
        // b renewed its heartbeat in between; a did not.
        assert_eq!(watch.confirm(names(&["a", "c"]), true), names(&["a"]));
        assert!(watch.may_judge(0, false, true));
        assert_eq!(watch.confirm(names(&["c"]), true), names(&["c"]));
    }

    #[test]
    fn no_one_is_judged_while_or_after_this_processs_own_heartbeats_fail() {
        let mut watch = DeathWatch::default();
        assert!(watch.may_judge(0, false, true));
        assert!(watch.confirm(names(&["a"]), true).is_empty());
        // Own renewals fail (a Redis refusing writes): no judgement, suspicions dropped.
        assert!(!watch.may_judge(3, true, true));
        // They succeed again, but failed since the last scan: still no judgement.
        assert!(!watch.may_judge(4, false, true));
        // Two clean scans are needed again before a is reclaimed.
        assert!(watch.may_judge(4, false, true));
        assert!(watch.confirm(names(&["a"]), true).is_empty());
        assert!(watch.may_judge(4, false, true));
        assert_eq!(watch.confirm(names(&["a"]), true), names(&["a"]));
    }

    #[test]
    fn a_broker_one_process_owns_reclaims_at_once() {
        let mut watch = DeathWatch::default();
        assert!(watch.may_judge(7, true, false));
        assert_eq!(watch.confirm(names(&["previous-run"]), false), names(&["previous-run"]));
    }

    #[test]
    fn a_failed_reclaim_is_tried_again_at_the_next_scan() {
        let mut watch = DeathWatch::default();
        assert!(watch.may_judge(0, false, true));
        watch.confirm(names(&["a"]), true);
        let confirmed = watch.confirm(names(&["a"]), true);
        assert_eq!(confirmed, names(&["a"]));
        watch.suspect("a".into());
        assert_eq!(watch.confirm(names(&["a"]), true), names(&["a"]));
    }
}
