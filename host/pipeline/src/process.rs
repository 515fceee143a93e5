//! One vCon through one chain: load once (or take what the pop read), run the
//! links in memory, write the storages, then the wrap-up — write-back, egress,
//! routes, TTLs, trace context and the ack — as one broker operation.

use std::time::Instant;

use conserver_broker::{BrokerError, Prefetched, Taken};
use conserver_core::DlqReason;
use conserver_core::metrics;
use conserver_vcons::{Recache, VconStore};
use tracing::Span;

use crate::chain_run::run_links;
use crate::{ChainPlan, spans, wrap_up};

/// Settings that shape processing.
#[derive(Debug, Clone, Copy)]
pub struct ProcessOptions {
    /// `VCON_DLQ_EXPIRY`: TTL given to a dead-lettered vCon (0 leaves it alone).
    pub dlq_expiry_secs: u64,
    /// `CONSERVER_PARALLEL_STORAGE`: write to a chain's storages concurrently.
    pub parallel_storage: bool,
    /// `VCON_REDIS_EXPIRY`: the TTL a vCon gets once no chain is going to read it
    /// any more (0: none). Until then it has none, so it cannot expire while it
    /// waits or runs.
    pub vcon_expiry_secs: u64,
    /// `VCON_INDEX_EXPIRY`: the TTL of the party search sets a vCon the chain
    /// makes (a signed vCon's successor) is added to (0: none).
    pub index_expiry_secs: u64,
}

/// Why a vCon was dead-lettered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// The step that failed: a link name, `storage:<name>` or `load`.
    pub step: String,
    /// What happened.
    pub error: String,
    /// Whether retrying may help.
    pub retryable: bool,
}

/// How processing ended (broker trouble is the `Err` of [`process_vcon`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Every link continued; the vCon was stored and sent to egress, and the
    /// item acked.
    Completed,
    /// A link halted the chain quietly; the item was acked.
    Halted {
        /// The link that halted.
        link: String,
    },
    /// The vCon went to the DLQ; the item is still held (the caller acks it).
    DeadLettered(Failure),
}

/// Process `taken` (held by `worker`) with `chain`. A link or storage failure
/// dead-letters the uuid and returns `Ok`; a broker error is returned so the
/// caller can requeue the item.
pub async fn process_vcon(
    store: &VconStore,
    chain: &ChainPlan,
    worker: &str,
    taken: &Taken,
    options: ProcessOptions,
) -> Result<Outcome, BrokerError> {
    let _inflight = Inflight::enter(&chain.name);
    process_counted(store, chain, worker, taken, options).await
}

/// `conserver.vcons.inflight` for one vCon: +1 now, −1 when dropped, so a run
/// cut short (hard stop, timeout) is still counted out.
struct Inflight<'a>(&'a str);

impl<'a> Inflight<'a> {
    fn enter(chain: &'a str) -> Self {
        metrics::record_inflight(chain, 1);
        Self(chain)
    }
}

impl Drop for Inflight<'_> {
    fn drop(&mut self) {
        metrics::record_inflight(self.0, -1);
    }
}

async fn process_counted(
    store: &VconStore,
    chain: &ChainPlan,
    worker: &str,
    taken: &Taken,
    options: ProcessOptions,
) -> Result<Outcome, BrokerError> {
    let started = Instant::now();
    let item = &taken.item;
    // The chain's `timeout` covers the load, the links and the storages; the
    // wrap-up, once begun, is not cut short (it is one broker operation).
    let run = run_chain(store, chain, taken, options);
    let result = match chain.timeout {
        None => run.await,
        Some(limit) => match tokio::time::timeout(limit, run).await {
            Ok(result) => result,
            Err(_) => Ok(Err(Failure {
                step: "chain".into(),
                error: format!(
                    "chain timeout: the vCon spent more than {} s in chain `{}` (raise the chain's `timeout`)",
                    limit.as_secs_f64(),
                    chain.name
                ),
                retryable: true,
            })),
        },
    };
    match result? {
        Ok(done) => {
            store.finish(worker, item, &done.finish).await?;
            let outcome = done.outcome;
            let label = if matches!(outcome, Outcome::Halted { .. }) { "halted" } else { "completed" };
            let elapsed = started.elapsed();
            metrics::record_outcome(&chain.name, label, elapsed);
            spans::mark_ok(&Span::current());
            tracing::info!(chain = %chain.name, vcon_uuid = %item.uuid, outcome = label, seconds = elapsed.as_secs_f64(), "Completed processing vCon");
            Ok(outcome)
        }
        Err(failure) => {
            metrics::record_outcome(&chain.name, "dead_lettered", started.elapsed());
            spans::mark_error(&Span::current(), &format!("{}: {}", failure.step, failure.error));
            tracing::warn!(chain = %chain.name, vcon_uuid = %item.uuid, step = %failure.step, error = %failure.error, "vCon dead-lettered");
            let reason = DlqReason {
                uuid: item.uuid.clone(),
                chain: chain.name.clone(),
                link: failure.step.clone(),
                error: failure.error.clone(),
                retryable: failure.retryable,
                attempts: 1,
                at: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            };
            store.broker().dead_letter(&item.list, reason, options.dlq_expiry_secs).await?;
            metrics::record_dlq(&conserver_broker::dlq_list(&item.list));
            Ok(Outcome::DeadLettered(failure))
        }
    }
}

/// Load, links, storages: what the wrap-up then writes, or why the vCon is
/// dead-lettered.
async fn run_chain(
    store: &VconStore,
    chain: &ChainPlan,
    taken: &Taken,
    options: ProcessOptions,
) -> Result<Result<wrap_up::Done, Failure>, BrokerError> {
    let uuid = taken.item.uuid.as_str();
    let Some(loaded) = load(store, chain, uuid, taken.prefetched.as_ref()).await? else {
        return Ok(Err(Failure {
            step: "load".into(),
            error: format!(
                "vCon {uuid} is neither in the broker nor in any storage (never stored, deleted, or expired: see VCON_REDIS_EXPIRY)"
            ),
            retryable: false,
        }));
    };
    let run = match run_links(chain, &taken.item, loaded).await {
        Ok(run) => run,
        Err(failure) => return Ok(Err(failure)),
    };
    Ok(wrap_up::prepare(chain, uuid, run, options).await)
}

/// The vCon: what the pop read with it, else the broker's copy, else the
/// storages' (re-cached without a TTL while it runs).
async fn load(
    store: &VconStore,
    chain: &ChainPlan,
    uuid: &str,
    prefetched: Option<&Prefetched>,
) -> Result<Option<String>, BrokerError> {
    match prefetched.and_then(|p| p.document.as_ref()) {
        Some(Some(document)) => Ok(Some(document.clone())),
        Some(None) => store.read_back(uuid, &chain.fallback_storages, Recache::ForChain).await,
        None => store.load(uuid, &chain.fallback_storages, Recache::ForChain).await,
    }
}

#[cfg(test)]
mod tests;
