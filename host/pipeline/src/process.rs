//! One vCon through one chain: load once, links in memory, write, storages, egress.

use std::time::{Duration, Instant};

use conserver_broker::{Broker, BrokerError, MAX_TTL_SECS, Popped, Ttl};
use conserver_config::StorageFailure;
use conserver_core::metrics::{self, LinkStatus};
use conserver_core::sealed::{self, ChainInput};
use conserver_core::{DlqReason, trace_context};
use conserver_runtime::{Action, CallContext, Directive, TracePoint};
use conserver_storage::{Storage, StorageError};
use futures::future::join_all;
use tracing::{Instrument as _, Span};

use crate::{ChainPlan, LinkStep, spans, spec_form};

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
    /// Every link continued; the vCon was stored and sent to egress.
    Completed,
    /// A link halted the chain quietly.
    Halted {
        /// The link that halted.
        link: String,
    },
    /// The vCon went to the DLQ.
    DeadLettered(Failure),
}

/// Process `item` with `chain`. Link and storage failures dead-letter the uuid and
/// return `Ok`; a broker error is returned so the caller can requeue the item.
pub async fn process_vcon(
    broker: &dyn Broker,
    chain: &ChainPlan,
    item: &Popped,
    options: ProcessOptions,
) -> Result<Outcome, BrokerError> {
    let _inflight = Inflight::enter(&chain.name);
    process_counted(broker, chain, item, options).await
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
    broker: &dyn Broker,
    chain: &ChainPlan,
    item: &Popped,
    options: ProcessOptions,
) -> Result<Outcome, BrokerError> {
    let started = Instant::now();
    let run = run_chain(broker, chain, item, options);
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
        Ok(outcome) => {
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
            broker.dead_letter(&item.list, reason, options.dlq_expiry_secs).await?;
            metrics::record_dlq(&conserver_broker::dlq_list(&item.list));
            Ok(Outcome::DeadLettered(failure))
        }
    }
}

async fn run_chain(
    broker: &dyn Broker,
    chain: &ChainPlan,
    item: &Popped,
    options: ProcessOptions,
) -> Result<Result<Outcome, Failure>, BrokerError> {
    let uuid = item.uuid.as_str();
    let Some(mut loaded) = load(broker, chain, uuid).await? else {
        return Ok(Err(Failure {
            step: "load".into(),
            error: format!(
                "vCon {uuid} is neither in the broker nor in any storage (never stored, deleted, or expired: see VCON_REDIS_EXPIRY)"
            ),
            retryable: false,
        }));
    };
    // Signed and encrypted vCons (see `conserver_core::sealed`): links read a
    // signed one's payload, and skip an encrypted one.
    let mut signed_original = None;
    let links: &[LinkStep] = if chain.links.is_empty() {
        &chain.links
    } else {
        match sealed::chain_input(&loaded) {
            Ok(ChainInput::Plain) => &chain.links,
            Ok(ChainInput::Encrypted) => {
                metrics::record_sealed(&chain.name, "encrypted", "links_skipped");
                tracing::info!(chain = %chain.name, vcon_uuid = uuid, "encrypted vCon: links skipped, stored and forwarded unchanged");
                &[]
            }
            Ok(ChainInput::Signed { payload }) => {
                signed_original = Some(std::mem::replace(&mut loaded, payload));
                &chain.links
            }
            Err(problem) => return Ok(Err(Failure { step: "load".into(), error: problem, retryable: false })),
        }
    };
    // Links read the vCon as Python links do; what a link changes is stored in
    // the spec-enforced form before the next link reads it.
    let mut vcon = if links.is_empty() { loaded } else { spec_form::as_read(loaded) };
    let mut changed = false;
    let mut unwritten = false;
    let mut halted_by = None;
    let mut routes: Vec<String> = Vec::new();
    let mut expiry: Option<u64> = None;
    if !links.is_empty()
        && let Err(failure) = trace(chain, uuid, -1, &vcon).await
    {
        return Ok(Err(failure));
    }
    for (index, step) in links.iter().enumerate() {
        if std::mem::take(&mut unwritten) {
            vcon = spec_form::as_written(vcon);
        }
        let ctx = CallContext {
            chain: &chain.name,
            vcon_uuid: uuid,
            ingress_list: &item.list,
            options_json: &step.options_json,
        };
        let span = spans::link_span(&chain.name, step.link.name(), index, uuid);
        let started = Instant::now();
        let result = step.link.invoke(ctx, &vcon).instrument(span.clone()).await;
        let call = metrics::LinkCall {
            elapsed: started.elapsed(),
            fuel: result.as_ref().map_or(0, |outcome| outcome.fuel_used),
            memory_peak_bytes: result.as_ref().map_or(0, |outcome| outcome.memory_peak_bytes),
            status: match &result {
                Ok(outcome) if matches!(outcome.action, Action::Halt) => LinkStatus::Skipped,
                Ok(_) => LinkStatus::Ok,
                Err(failure) if failure.is_limit_breach() => LinkStatus::LimitBreach(failure.kind()),
                Err(failure) => LinkStatus::Error(failure.kind()),
            },
            cache_hits: result.as_ref().map_or(0, |outcome| outcome.cache_hits),
        };
        metrics::record_link_call(&chain.name, step.link.name(), call);
        let outcome = match result {
            Ok(outcome) => outcome,
            Err(failure) => {
                spans::mark_error(&span, &failure.to_string());
                tracing::error!(parent: &span, chain = %chain.name, link = step.link.name(), vcon_uuid = uuid, error = %failure, "Error in link");
                return Ok(Err(Failure {
                    step: step.link.name().to_string(),
                    retryable: failure.is_retryable(),
                    error: failure.to_string(),
                }));
            }
        };
        tracing::debug!(chain = %chain.name, link = step.link.name(), vcon_uuid = uuid, fuel_used = outcome.fuel_used, "link done");
        for directive in outcome.directives {
            match directive {
                Directive::RouteTo(lists) => {
                    if let Some(denied) = lists.iter().find(|list| !step.allowed_routes.contains(*list)) {
                        return Ok(Err(Failure {
                            step: step.link.name().to_string(),
                            error: format!(
                                "link asked to route the vCon to list `{denied}`, which this chain does not allow: add it to links.{}.allowed_routes",
                                step.link.name()
                            ),
                            retryable: false,
                        }));
                    }
                    routes.extend(lists);
                }
                Directive::ExpireAfterSecs(secs) if secs > MAX_TTL_SECS => {
                    return Ok(Err(Failure {
                        step: step.link.name().to_string(),
                        error: format!(
                            "link asked for expire-after-secs {secs}, beyond the longest time to live the host sets ({MAX_TTL_SECS} s, 100 years): ask for less"
                        ),
                        retryable: false,
                    }));
                }
                Directive::ExpireAfterSecs(secs) => expiry = Some(secs),
            }
        }
        let halted = matches!(outcome.action, Action::Halt);
        if let Action::Proceed(Some(new_vcon)) = outcome.action {
            vcon = new_vcon;
            changed = true;
            unwritten = true;
        }
        if let Err(failure) = trace(chain, uuid, i32::try_from(index).unwrap_or(i32::MAX), &vcon).await {
            return Ok(Err(failure));
        }
        if halted {
            halted_by = Some(step.link.name().to_string());
            break;
        }
    }
    if unwritten {
        vcon = spec_form::as_written(vcon);
    }
    // What the chain passes on: the vCon itself, or a signed one's successor.
    let (out_uuid, vcon) = match signed_original.take() {
        Some(original) if changed => {
            let (successor_uuid, successor) = match sealed::successor(&vcon, &chain.name, uuid, &original) {
                Ok(made) => made,
                Err(problem) => return Ok(Err(Failure { step: "successor".into(), error: problem, retryable: false })),
            };
            store_successor(broker, &successor_uuid, &successor, options).await?;
            // The signed original stays under its uuid; a chain that completes
            // stores it too (a halted one stores nothing, as for any vCon), and
            // a TTL a link asked for applies to both.
            if halted_by.is_none()
                && let Err(failure) = store(chain, uuid, &original, options.parallel_storage).await
            {
                return Ok(Err(failure));
            }
            if let Some(secs) = expiry {
                broker.expire_vcon(uuid, secs).await?;
            }
            settle_ttl(broker, chain, uuid, &[], expiry, options).await?;
            metrics::record_sealed(&chain.name, "signed", "successor");
            tracing::info!(chain = %chain.name, vcon_uuid = uuid, successor = %successor_uuid, "signed vCon changed by a link: passed on as an unsigned successor");
            (successor_uuid, successor)
        }
        Some(original) => {
            metrics::record_sealed(&chain.name, "signed", "unchanged");
            (uuid.to_string(), original)
        }
        None => {
            if changed {
                broker.put_vcon(uuid, &vcon, Ttl::Keep).await?;
            }
            (uuid.to_string(), vcon)
        }
    };
    let uuid = out_uuid.as_str();
    if let Some(secs) = expiry {
        broker.expire_vcon(uuid, secs).await?;
    }
    if let Some(link) = halted_by {
        route(broker, uuid, &routes).await?;
        settle_ttl(broker, chain, uuid, &routes, expiry, options).await?;
        tracing::info!(chain = %chain.name, %link, vcon_uuid = uuid, "link halted the chain");
        return Ok(Ok(Outcome::Halted { link }));
    }
    if let Err(failure) = store(chain, uuid, &vcon, options.parallel_storage).await {
        return Ok(Err(failure));
    }
    pass_on_trace_context(broker, uuid, &chain.egress_lists, &chain.consumed_lists).await;
    for list in &chain.egress_lists {
        broker.push(list, std::slice::from_ref(&out_uuid)).await?;
    }
    route(broker, uuid, &routes).await?;
    let mut sent_to = routes;
    sent_to.extend(chain.egress_lists.iter().cloned());
    settle_ttl(broker, chain, uuid, &sent_to, expiry, options).await?;
    Ok(Ok(Outcome::Completed))
}

/// Keep a signed vCon's successor in the broker, listed and searchable like any
/// stored vCon (no TTL while the chain runs: `settle_ttl` gives it one).
async fn store_successor(
    broker: &dyn Broker,
    uuid: &str,
    document: &str,
    options: ProcessOptions,
) -> Result<(), BrokerError> {
    let parsed: serde_json::Map<String, serde_json::Value> = serde_json::from_str(document).unwrap_or_default();
    let score = parsed.get("created_at").and_then(conserver_core::epoch_seconds).unwrap_or(0.0);
    let terms = conserver_core::index_terms(&parsed);
    broker.store_vcon(uuid, document, Ttl::Secs(0), score, &terms, options.index_expiry_secs).await.map(drop)
}

/// Before egress, leave this run's span context for the next chain's worker, as
/// the Python wrap-up does (only while traces are exported, and only on lists a
/// chain reads: nothing would ever take it from the others). A broker error here
/// loses only the span link, so it is logged, not raised.
async fn pass_on_trace_context(
    broker: &dyn Broker,
    uuid: &str,
    lists: &[String],
    consumed: &std::collections::HashSet<String>,
) {
    if !trace_context::enabled() {
        return;
    }
    let Some(context) = spans::context_json(&Span::current()) else { return };
    for list in lists.iter().filter(|list| consumed.contains(*list)) {
        if let Err(error) = broker.push_trace_context(list, uuid, &context, trace_context::DEFAULT_TTL_SECS).await {
            tracing::debug!(%list, vcon_uuid = uuid, %error, "cannot store the trace context for the next chain");
        }
    }
}

/// Call the chain's tracers at `link_index` (-1: before the first link). A failing
/// tracer is logged, or dead-letters the vCon when its options say
/// `dlq_vcon_on_error`.
async fn trace(chain: &ChainPlan, uuid: &str, link_index: i32, vcon: &str) -> Result<(), Failure> {
    for step in &chain.tracers {
        let point = TracePoint {
            chain: chain.name.clone(),
            links: chain.link_names.to_vec(),
            link_index,
            in_vcon_uuid: uuid.to_string(),
            out_vcon_uuid: uuid.to_string(),
            options_json: step.options_json.to_string(),
        };
        let Err(failure) = step.tracer.trace(&point, vcon).await else { continue };
        if step.dlq_on_error {
            return Err(Failure {
                step: format!("tracer:{}", step.tracer.name()),
                retryable: failure.is_retryable(),
                error: failure.to_string(),
            });
        }
        tracing::error!(tracer = step.tracer.name(), chain = %chain.name, vcon_uuid = uuid, link_index, error = %failure, "Error in tracer");
    }
    Ok(())
}

/// Once a chain is done with a vCon: a TTL a link asked for was applied already;
/// otherwise it gets `VCON_REDIS_EXPIRY`, unless it was sent to a list another chain
/// reads (then it is still queued and keeps none).
async fn settle_ttl(
    broker: &dyn Broker,
    chain: &ChainPlan,
    uuid: &str,
    sent_to: &[String],
    requested: Option<u64>,
    options: ProcessOptions,
) -> Result<(), BrokerError> {
    let still_queued = sent_to.iter().any(|list| chain.consumed_lists.contains(list));
    if requested.is_none() && !still_queued && options.vcon_expiry_secs > 0 {
        broker.expire_vcon(uuid, options.vcon_expiry_secs).await?;
    }
    Ok(())
}

/// The vCon from the broker, else from the storages in config order (canonicalised
/// as the Python conserver does, and cached again without a TTL while it runs).
/// A storage that fails is skipped with a warning.
async fn load(broker: &dyn Broker, chain: &ChainPlan, uuid: &str) -> Result<Option<String>, BrokerError> {
    if let Some(json) = broker.get_vcon(uuid).await? {
        return Ok(Some(json));
    }
    let Some(found) = conserver_storage::read_back(&chain.fallback_storages, uuid).await else {
        return Ok(None);
    };
    broker.put_vcon(uuid, &found.json, Ttl::Secs(0)).await?;
    tracing::info!(storage = %found.storage, vcon_uuid = uuid, "vCon read back from storage");
    Ok(Some(found.json))
}

async fn route(broker: &dyn Broker, uuid: &str, lists: &[String]) -> Result<(), BrokerError> {
    for list in lists {
        broker.push(list, &[uuid.to_string()]).await?;
    }
    Ok(())
}

/// Longest pause between two attempts of a failing storage write.
const STORAGE_MAX_BACKOFF: Duration = Duration::from_secs(5);

/// Write to every storage of the chain, each with bounded retries. A storage that
/// still fails dead-letters the vCon (naming it) or, with `storage_failure: log`,
/// is logged and skipped.
async fn store(chain: &ChainPlan, uuid: &str, vcon: &str, parallel: bool) -> Result<(), Failure> {
    let results = if parallel && chain.storages.len() > 1 {
        join_all(chain.storages.iter().map(|s| save_traced(chain, s.as_ref(), uuid, vcon))).await
    } else {
        let mut results = Vec::with_capacity(chain.storages.len());
        for storage in &chain.storages {
            results.push(save_traced(chain, storage.as_ref(), uuid, vcon).await);
        }
        results
    };
    for (storage, result) in chain.storages.iter().zip(results) {
        let Err(error) = result else { continue };
        match chain.storage_failure {
            StorageFailure::Dlq => {
                return Err(Failure {
                    step: format!("storage:{}", storage.name()),
                    error: error.to_string(),
                    retryable: true,
                });
            }
            StorageFailure::Log => {
                tracing::error!(chain = %chain.name, storage = storage.name(), vcon_uuid = uuid, %error, "storage failed; continuing (storage_failure: log)");
            }
        }
    }
    Ok(())
}

/// One storage's write in its `storage.{name}` span.
async fn save_traced(chain: &ChainPlan, storage: &dyn Storage, uuid: &str, vcon: &str) -> Result<(), StorageError> {
    let span = spans::storage_span(&chain.name, storage.name(), uuid);
    let result = save_with_retries(storage, uuid, vcon, chain.storage_retry).instrument(span.clone()).await;
    if let Err(error) = &result {
        spans::mark_error(&span, &error.to_string());
    }
    result
}

/// Each attempt is counted in `conserver.storage.count` / `duration_ms`.
/// Write, retrying a failure with backoff (0.2 s doubling to 5 s) until `retry_for`
/// has passed since the first attempt (a short outage of the database is ridden
/// out); then the last error. A value too large for the storage is not retried.
async fn save_with_retries(
    storage: &dyn Storage,
    uuid: &str,
    vcon: &str,
    retry_for: Duration,
) -> Result<(), StorageError> {
    let first = Instant::now();
    let mut backoff = Duration::from_millis(200);
    let mut attempt = 1u32;
    loop {
        let started = Instant::now();
        let result = storage.save(uuid, vcon).await;
        metrics::record_storage(storage.name(), result.is_ok(), started.elapsed());
        match result {
            Ok(()) => {
                if attempt > 1 {
                    tracing::info!(
                        storage = storage.name(),
                        vcon_uuid = uuid,
                        attempt,
                        "storage write succeeded after retries"
                    );
                }
                return Ok(());
            }
            Err(error @ StorageError::TooLarge { .. }) => return Err(error),
            Err(error) if first.elapsed() + backoff > retry_for => return Err(error),
            Err(error) => {
                tracing::warn!(storage = storage.name(), vcon_uuid = uuid, attempt, %error,
                    retry_in_ms = backoff.as_millis() as u64, "storage write failed; retrying");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(STORAGE_MAX_BACKOFF);
                attempt += 1;
            }
        }
    }
}
