//! The link half of a chain: the loaded vCon through the chain's links and
//! tracers, in memory. Nothing here touches the broker; what the run produced
//! (the vCon, routes, a TTL, a halt) is the wrap-up's to write.

use std::time::Instant;

use conserver_broker::{MAX_TTL_SECS, Popped};
use conserver_core::metrics::{self, LinkStatus};
use conserver_core::sealed::{self, ChainInput};
use conserver_runtime::{Action, CallContext, Directive, TracePoint};
use tracing::Instrument as _;

use crate::process::Failure;
use crate::{ChainPlan, LinkStep, spans, spec_form};

/// What the links made of a vCon.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ChainRun {
    /// The vCon after the last link that ran (the stored form when a link
    /// changed it; a signed vCon's payload when it was signed).
    pub vcon: String,
    /// Whether a link changed it.
    pub changed: bool,
    /// The link that halted the chain, if one did.
    pub halted_by: Option<String>,
    /// Lists links asked for the uuid to be pushed to, in order.
    pub routes: Vec<String>,
    /// The TTL a link asked for, the last one winning.
    pub expiry: Option<u64>,
    /// The signed vCon as loaded, when it was signed (its payload ran).
    pub signed_original: Option<String>,
}

/// Run `loaded` (the vCon popped as `item`) through `chain`'s links and tracers.
/// A failing link, a denied route, a TTL beyond the longest, or a tracer with
/// `dlq_vcon_on_error` that fails is a [`Failure`].
pub(crate) async fn run_links(chain: &ChainPlan, item: &Popped, loaded: String) -> Result<ChainRun, Failure> {
    let uuid = item.uuid.as_str();
    // Signed and encrypted vCons (see `conserver_core::sealed`): links read a
    // signed one's payload, and skip an encrypted one.
    let mut loaded = loaded;
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
            Err(problem) => return Err(Failure { step: "load".into(), error: problem, retryable: false }),
        }
    };
    // Links read the vCon as Python links do; what a link changes is stored in
    // the spec-enforced form before the next link reads it.
    let mut run = ChainRun {
        vcon: if links.is_empty() { loaded } else { spec_form::as_read(loaded) },
        changed: false,
        halted_by: None,
        routes: Vec::new(),
        expiry: None,
        signed_original,
    };
    let mut unwritten = false;
    if !links.is_empty() {
        trace(chain, uuid, -1, &run.vcon).await?;
    }
    for (index, step) in links.iter().enumerate() {
        if std::mem::take(&mut unwritten) {
            run.vcon = spec_form::as_written(run.vcon);
        }
        let answer = call_link(chain, item, index, step, &mut run).await?;
        unwritten = answer.changed;
        trace(chain, uuid, i32::try_from(index).unwrap_or(i32::MAX), &run.vcon).await?;
        if answer.halted {
            run.halted_by = Some(step.link.name().to_string());
            break;
        }
    }
    if unwritten {
        run.vcon = spec_form::as_written(run.vcon);
    }
    Ok(run)
}

/// What one link call did to the run.
struct Answer {
    /// It halted the chain.
    halted: bool,
    /// It changed the vCon.
    changed: bool,
}

/// Call one link and apply what it answered to `run`.
async fn call_link(
    chain: &ChainPlan,
    item: &Popped,
    index: usize,
    step: &LinkStep,
    run: &mut ChainRun,
) -> Result<Answer, Failure> {
    let uuid = item.uuid.as_str();
    let name = step.link.name();
    let ctx =
        CallContext { chain: &chain.name, vcon_uuid: uuid, ingress_list: &item.list, options_json: &step.options_json };
    let span = spans::link_span(&chain.name, name, index, uuid);
    let started = Instant::now();
    let result = step.link.invoke(ctx, &run.vcon).instrument(span.clone()).await;
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
    metrics::record_link_call(&chain.name, name, call);
    let outcome = match result {
        Ok(outcome) => outcome,
        Err(failure) => {
            spans::mark_error(&span, &failure.to_string());
            tracing::error!(parent: &span, chain = %chain.name, link = name, vcon_uuid = uuid, error = %failure, "Error in link");
            return Err(Failure {
                step: name.to_string(),
                retryable: failure.is_retryable(),
                error: failure.to_string(),
            });
        }
    };
    tracing::debug!(chain = %chain.name, link = name, vcon_uuid = uuid, fuel_used = outcome.fuel_used, "link done");
    for directive in outcome.directives {
        match directive {
            Directive::RouteTo(lists) => {
                if let Some(denied) = lists.iter().find(|list| !step.allowed_routes.contains(*list)) {
                    return Err(Failure {
                        step: name.to_string(),
                        error: format!(
                            "link asked to route the vCon to list `{denied}`, which this chain does not allow: add it to links.{name}.allowed_routes"
                        ),
                        retryable: false,
                    });
                }
                run.routes.extend(lists);
            }
            Directive::ExpireAfterSecs(secs) if secs > MAX_TTL_SECS => {
                return Err(Failure {
                    step: name.to_string(),
                    error: format!(
                        "link asked for expire-after-secs {secs}, beyond the longest time to live the host sets ({MAX_TTL_SECS} s, 100 years): ask for less"
                    ),
                    retryable: false,
                });
            }
            Directive::ExpireAfterSecs(secs) => run.expiry = Some(secs),
        }
    }
    Ok(match outcome.action {
        Action::Halt => Answer { halted: true, changed: false },
        Action::Proceed(Some(new_vcon)) => {
            run.vcon = new_vcon;
            run.changed = true;
            Answer { halted: false, changed: true }
        }
        Action::Proceed(None) => Answer { halted: false, changed: false },
    })
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
