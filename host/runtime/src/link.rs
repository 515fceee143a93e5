//! A loaded link and one sandboxed call of it.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use conserver_config::Limits;
use wasmtime::component::ResourceTableError;
use wasmtime::{CallHook, Store, Trap, UpdateDeadline};

use crate::bindings::{Action, Directive, LinkPre, wit};
use crate::engine::EPOCH_TICK;
use crate::failure::Budget;
use crate::host::{CallLabels, Capabilities, HostState};
use crate::{LinkFailure, call_log, output};

/// What a link call is about: everything in the WIT `context` except the link name.
#[derive(Debug, Clone, Copy)]
pub struct CallContext<'a> {
    /// The chain running the link.
    pub chain: &'a str,
    /// The vCon's uuid.
    pub vcon_uuid: &'a str,
    /// The list the vCon came from.
    pub ingress_list: &'a str,
    /// The link's options as a JSON object.
    pub options_json: &'a str,
}

/// A successful call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkOutcome {
    /// What the chain does next (with the changed vCon, if any).
    pub action: Action,
    /// Requests for the host.
    pub directives: Vec<Directive>,
    /// Fuel the call consumed.
    pub fuel_used: u64,
    /// Reads of the link's cache that found a value.
    pub cache_hits: u64,
    /// The largest linear memory the instance was granted, in bytes.
    pub memory_peak_bytes: u64,
}

/// A link component compiled and pre-instantiated, ready for many calls. Cheap to
/// clone; hot reload swaps whole `LoadedLink`s, and calls in flight keep theirs.
#[derive(Clone)]
pub struct LoadedLink {
    name: String,
    path: PathBuf,
    digest: String,
    pre: LinkPre<HostState>,
    limits: Limits,
    capabilities: Capabilities,
    uses_media: bool,
}

impl std::fmt::Debug for LoadedLink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoadedLink")
            .field("name", &self.name)
            .field("path", &self.path)
            .field("digest", &self.digest)
            .field("limits", &self.limits)
            .finish_non_exhaustive()
    }
}

impl LoadedLink {
    pub(crate) fn new(
        name: String,
        path: PathBuf,
        digest: String,
        pre: LinkPre<HostState>,
        limits: Limits,
        capabilities: Capabilities,
    ) -> Self {
        Self { name, path, digest, pre, limits, capabilities, uses_media: false }
    }

    /// The same link, marked as importing `media` (its calls keep the vCon for it).
    pub(crate) fn with_media(mut self) -> Self {
        self.uses_media = true;
        self
    }

    /// Whether the link imports the `media` capability (world 0.2.0).
    pub fn uses_media(&self) -> bool {
        self.uses_media
    }

    /// The link's configured name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The component file it was loaded from.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// SHA-256 (hex) of the component's bytes.
    pub fn digest(&self) -> &str {
        &self.digest
    }

    /// The limits every call runs under.
    pub fn limits(&self) -> Limits {
        self.limits
    }

    /// Run the link once on `vcon` (JSON) in a fresh instance, under its limits.
    pub async fn invoke(&self, ctx: CallContext<'_>, vcon: &str) -> Result<LinkOutcome, LinkFailure> {
        let limits = self.limits;
        let timeout = Duration::from_millis(limits.timeout_ms);
        let labels =
            CallLabels { link: self.name.clone(), chain: ctx.chain.to_string(), vcon_uuid: ctx.vcon_uuid.to_string() };
        let mut store = new_store(self.pre.engine(), labels, limits, self.capabilities.clone())?;
        if self.uses_media {
            store.data_mut().media.set_vcon(vcon);
        }
        let wit_context = wit::Context {
            link_name: self.name.clone(),
            chain_name: ctx.chain.to_string(),
            vcon_uuid: ctx.vcon_uuid.to_string(),
            ingress_list: ctx.ingress_list.to_string(),
            options: ctx.options_json.to_string(),
        };
        // The outer timeout bounds time blocked in host calls, which epochs cannot
        // interrupt; a tick of slack lets the epoch path report first when it can.
        // Host warnings the call causes are charged to its log budget.
        let log = store.data().log.clone();
        let call = tokio::time::timeout(
            timeout + EPOCH_TICK * 2,
            call_log::scope(log, async {
                let instance = self.pre.instantiate_async(&mut store).await?;
                instance.vcon_conserver0_1_0_processor().call_process(&mut store, &wit_context, vcon).await
            }),
        )
        .await;
        let fuel_used = limits.fuel.saturating_sub(store.get_fuel().unwrap_or(0));
        // A budget a capability breached (the guest was told) fails the call.
        if let Some((budget, limit)) = store.data().breach {
            return Err(LinkFailure::Budget { budget, limit });
        }
        match call {
            Err(_elapsed) => Err(LinkFailure::Timeout { timeout_ms: limits.timeout_ms }),
            Ok(Err(trap)) => Err(classify(&trap, store.data(), limits)),
            Ok(Ok(Err(refusal))) => Err(LinkFailure::Refused {
                message: store.data().scrubbed(&refusal.message),
                retryable: refusal.retryable,
            }),
            Ok(Ok(Ok(verdict))) => {
                let action = Action::from(verdict.action);
                let directives: Vec<Directive> = verdict.directives.into_iter().map(Directive::from).collect();
                let changed = match &action {
                    Action::Proceed(Some(json)) => Some(json.as_str()),
                    _ => None,
                };
                output::check(changed, &directives, ctx.vcon_uuid, &limits)?;
                Ok(LinkOutcome {
                    action,
                    directives,
                    fuel_used,
                    cache_hits: store.data().cache_hits,
                    memory_peak_bytes: store.data().limiter.peak as u64,
                })
            }
        }
    }
}

/// A fresh store for one call: the link's capabilities, its memory cap and fuel,
/// its host-resource budgets measured after every host call, and an epoch
/// deadline checked on every tick (yielding to the executor in between, so a
/// busy guest never starves other tasks).
pub(crate) fn new_store(
    engine: &wasmtime::Engine,
    labels: CallLabels,
    limits: Limits,
    capabilities: Capabilities,
) -> Result<Store<HostState>, LinkFailure> {
    let timeout = Duration::from_millis(limits.timeout_ms);
    let state = HostState::new(labels, limits, Instant::now() + timeout, capabilities);
    let mut store = Store::new(engine, state);
    store.limiter(|state| &mut state.limiter);
    store.call_hook(|mut store, hook| match hook {
        CallHook::ReturningFromHost => store.data_mut().check_resources(),
        _ => Ok(()),
    });
    store.set_fuel(limits.fuel).map_err(|e| LinkFailure::Host { message: format!("cannot set fuel: {e}") })?;
    store.set_epoch_deadline(1);
    store.epoch_deadline_callback(|mut store| {
        if Instant::now() >= store.data().deadline {
            store.data_mut().timed_out = true;
            Ok(UpdateDeadline::Interrupt)
        } else {
            Ok(UpdateDeadline::Yield(1))
        }
    });
    Ok(store)
}

/// Turn a wasmtime error into the reason an operator reads.
pub(crate) fn classify(error: &wasmtime::Error, state: &HostState, limits: Limits) -> LinkFailure {
    if state.limiter.exceeded {
        return LinkFailure::MemoryLimit { limit_bytes: limits.memory_bytes };
    }
    if let Some((budget, limit)) = state.resources.breach {
        return LinkFailure::Budget { budget, limit };
    }
    // The table refused an entry (a host call made several at once).
    if matches!(error.downcast_ref::<ResourceTableError>(), Some(ResourceTableError::Full)) {
        return LinkFailure::Budget { budget: Budget::HostResources, limit: limits.host_resources };
    }
    match error.downcast_ref::<Trap>() {
        Some(Trap::OutOfFuel) => {
            return LinkFailure::FuelExhausted { budget: limits.fuel };
        }
        Some(Trap::Interrupt) => {
            return LinkFailure::Timeout { timeout_ms: limits.timeout_ms };
        }
        _ if state.timed_out => {
            return LinkFailure::Timeout { timeout_ms: limits.timeout_ms };
        }
        _ => {}
    }
    let stderr = state.scrubbed(&panic_message(&state.stderr_text()));
    let message = match (stderr.is_empty(), error.downcast_ref::<Trap>()) {
        (false, _) => stderr,
        (true, Some(trap)) => trap.to_string(),
        (true, None) => state.scrubbed(&format!("{error:#}")),
    };
    LinkFailure::Trap { message }
}

/// The useful part of a Rust panic report on stderr: the message lines, without the
/// `thread … panicked at` header's noise or the backtrace hint.
fn panic_message(stderr: &str) -> String {
    let lines: Vec<&str> = stderr
        .lines()
        .map(str::trim)
        .filter(|line| !line.is_empty() && !line.starts_with("note: run with `RUST_BACKTRACE"))
        .collect();
    lines.join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn panic_reports_keep_only_the_message() {
        let stderr = "thread '<unnamed>' panicked at src/lib.rs:13:9:\nboom\nnote: run with `RUST_BACKTRACE=1` environment variable to display a backtrace\n";
        assert_eq!(panic_message(stderr), "thread '<unnamed>' panicked at src/lib.rs:13:9: boom");
    }
}
