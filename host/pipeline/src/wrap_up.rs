//! The wrap-up of a chain run: the storages are written, and everything the
//! broker must then record — the changed document, a signed vCon's successor,
//! TTLs, trace contexts, egress and route pushes — is gathered into one
//! [`Finish`] that the worker applies with the ack, in one broker operation.
//!
//! TTL rules: a TTL a link asked for applies; otherwise a vCon gets
//! `VCON_REDIS_EXPIRY` once no chain is going to read it, unless it was sent to
//! a list another chain reads (then it is still queued and keeps none).

use conserver_broker::{Finish, FinishStep, Ttl};
use conserver_core::metrics;
use conserver_core::{sealed, trace_context};
use tracing::Span;

use crate::chain_run::ChainRun;
use crate::process::{Failure, Outcome, ProcessOptions};
use crate::storages::store;
use crate::{ChainPlan, spans};

/// A chain run ready to be recorded: the broker writes, and how it ended.
#[derive(Debug)]
pub(crate) struct Done {
    /// The broker writes; the ack follows them.
    pub finish: Finish,
    /// `Completed` or `Halted`.
    pub outcome: Outcome,
}

/// Write `run`'s vCon to the chain's storages (unless a link halted) and
/// gather the broker writes of its wrap-up. A storage that keeps failing, or a
/// signed vCon whose successor cannot be made, is a [`Failure`].
pub(crate) async fn prepare(
    chain: &ChainPlan,
    uuid: &str,
    run: ChainRun,
    options: ProcessOptions,
) -> Result<Done, Failure> {
    let ChainRun { vcon, changed, halted_by, routes, expiry, signed_original } = run;
    let mut finish = Finish::default();
    // What the chain passes on: the vCon itself, or a signed one's successor.
    let (out_uuid, vcon) = match signed_original {
        Some(original) if changed => {
            let (successor_uuid, successor) = sealed::successor(&vcon, &chain.name, uuid, &original)
                .map_err(|problem| Failure { step: "successor".into(), error: problem, retryable: false })?;
            store_successor(&mut finish, &successor_uuid, &successor, options);
            // The signed original stays under its uuid; a chain that completes
            // stores it too (a halted one stores nothing, as for any vCon), and
            // a TTL a link asked for applies to both.
            if halted_by.is_none() {
                store(chain, uuid, &original, options.parallel_storage).await?;
            }
            if let Some(secs) = expiry {
                finish.push(FinishStep::Expire { uuid: uuid.to_string(), secs });
            }
            settle_ttl(&mut finish, chain, uuid, &[], expiry, options);
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
                finish.push(FinishStep::Write { uuid: uuid.to_string(), json: vcon.clone(), ttl: Ttl::Keep });
            }
            (uuid.to_string(), vcon)
        }
    };
    let uuid = out_uuid.as_str();
    if let Some(secs) = expiry {
        finish.push(FinishStep::Expire { uuid: uuid.to_string(), secs });
    }
    if let Some(link) = halted_by {
        push_all(&mut finish, uuid, &routes);
        settle_ttl(&mut finish, chain, uuid, &routes, expiry, options);
        tracing::info!(chain = %chain.name, %link, vcon_uuid = uuid, "link halted the chain");
        return Ok(Done { finish, outcome: Outcome::Halted { link } });
    }
    store(chain, uuid, &vcon, options.parallel_storage).await?;
    pass_on_trace_context(&mut finish, uuid, chain);
    push_all(&mut finish, uuid, &chain.egress_lists);
    push_all(&mut finish, uuid, &routes);
    let mut sent_to = routes;
    sent_to.extend(chain.egress_lists.iter().cloned());
    settle_ttl(&mut finish, chain, uuid, &sent_to, expiry, options);
    Ok(Done { finish, outcome: Outcome::Completed })
}

/// Keep a signed vCon's successor in the broker, listed and searchable like any
/// stored vCon (no TTL while the chain runs: `settle_ttl` gives it one).
fn store_successor(finish: &mut Finish, uuid: &str, document: &str, options: ProcessOptions) {
    let parsed: serde_json::Map<String, serde_json::Value> = serde_json::from_str(document).unwrap_or_default();
    let (score, terms) = conserver_vcons::index_entry(&parsed);
    finish.push(FinishStep::Write { uuid: uuid.to_string(), json: document.to_string(), ttl: Ttl::Secs(0) });
    finish.push(FinishStep::Index {
        uuid: uuid.to_string(),
        score: score.unwrap_or(0.0),
        terms,
        terms_ttl_secs: options.index_expiry_secs,
    });
}

fn push_all(finish: &mut Finish, uuid: &str, lists: &[String]) {
    for list in lists {
        finish.push(FinishStep::Push { list: list.clone(), uuid: uuid.to_string() });
    }
}

/// Before egress, leave this run's span context for the next chain's worker, as
/// the Python wrap-up does (only while traces are exported, and only on lists a
/// chain reads: nothing would ever take it from the others).
fn pass_on_trace_context(finish: &mut Finish, uuid: &str, chain: &ChainPlan) {
    if !trace_context::enabled() {
        return;
    }
    let Some(context) = spans::context_json(&Span::current()) else { return };
    for list in chain.egress_lists.iter().filter(|list| chain.consumed_lists.contains(*list)) {
        finish.push(FinishStep::TraceContext {
            list: list.clone(),
            uuid: uuid.to_string(),
            context_json: context.clone(),
            ttl_secs: trace_context::DEFAULT_TTL_SECS,
        });
    }
}

/// Once a chain is done with a vCon: a TTL a link asked for was applied already;
/// otherwise it gets `VCON_REDIS_EXPIRY`, unless it was sent to a list another chain
/// reads (then it is still queued and keeps none).
fn settle_ttl(
    finish: &mut Finish,
    chain: &ChainPlan,
    uuid: &str,
    sent_to: &[String],
    requested: Option<u64>,
    options: ProcessOptions,
) {
    let still_queued = sent_to.iter().any(|list| chain.consumed_lists.contains(list));
    if requested.is_none() && !still_queued && options.vcon_expiry_secs > 0 {
        finish.push(FinishStep::Expire { uuid: uuid.to_string(), secs: options.vcon_expiry_secs });
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::collections::HashSet;
    use std::sync::Arc;
    use std::time::Duration;

    use conserver_broker::{FinishStep, Ttl};
    use conserver_config::StorageFailure;

    use super::prepare;
    use crate::ChainPlan;
    use crate::chain_run::ChainRun;
    use crate::process::{Outcome, ProcessOptions};

    fn chain(consumed: &[&str]) -> ChainPlan {
        ChainPlan {
            name: "main".into(),
            links: Vec::new(),
            link_names: Arc::from(Vec::new()),
            tracers: Vec::new(),
            storages: Vec::new(),
            egress_lists: vec!["out".into()],
            consumed_lists: Arc::new(consumed.iter().map(|s| (*s).to_string()).collect::<HashSet<_>>()),
            timeout: None,
            storage_failure: StorageFailure::Dlq,
            storage_retry: Duration::ZERO,
            fallback_storages: Arc::default(),
        }
    }

    fn run(changed: bool, expiry: Option<u64>) -> ChainRun {
        ChainRun { vcon: "{}".into(), changed, halted_by: None, routes: Vec::new(), expiry, signed_original: None }
    }

    const OPTIONS: ProcessOptions =
        ProcessOptions { dlq_expiry_secs: 0, parallel_storage: false, vcon_expiry_secs: 3600, index_expiry_secs: 0 };

    fn expire(secs: u64) -> FinishStep {
        FinishStep::Expire { uuid: "u".into(), secs }
    }

    fn push(list: &str) -> FinishStep {
        FinishStep::Push { list: list.into(), uuid: "u".into() }
    }

    #[tokio::test]
    async fn a_vcon_no_chain_reads_next_gets_vcon_redis_expiry_after_its_pushes() {
        let done = prepare(&chain(&["in"]), "u", run(true, None), OPTIONS).await.unwrap();
        assert_eq!(done.outcome, Outcome::Completed);
        assert_eq!(
            done.finish.steps,
            [FinishStep::Write { uuid: "u".into(), json: "{}".into(), ttl: Ttl::Keep }, push("out"), expire(3600)]
        );
    }

    #[tokio::test]
    async fn a_vcon_sent_to_a_list_another_chain_reads_keeps_no_ttl() {
        let done = prepare(&chain(&["in", "out"]), "u", run(false, None), OPTIONS).await.unwrap();
        assert_eq!(done.finish.steps, [push("out")], "unchanged: no write-back; still queued: no TTL");
    }

    #[tokio::test]
    async fn a_ttl_a_link_asked_for_wins() {
        let done = prepare(&chain(&["in"]), "u", run(false, Some(60)), OPTIONS).await.unwrap();
        assert_eq!(done.finish.steps, [expire(60), push("out")]);
    }

    #[tokio::test]
    async fn a_halted_vcon_gets_its_routes_and_a_ttl_but_no_egress() {
        let mut halted = run(false, None);
        halted.halted_by = Some("gate".into());
        halted.routes = vec!["review".into()];
        let done = prepare(&chain(&["in"]), "u", halted, OPTIONS).await.unwrap();
        assert_eq!(done.outcome, Outcome::Halted { link: "gate".into() });
        assert_eq!(done.finish.steps, [push("review"), expire(3600)]);
    }
}
