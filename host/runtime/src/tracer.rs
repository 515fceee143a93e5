//! A loaded tracer component and one sandboxed call of it. Tracers run under the
//! same limits and capabilities as links (their cache namespace, `tracer:<name>`,
//! is apart from any link's); they observe a vCon and cannot change it.

use std::time::Duration;

use conserver_config::Limits;

use crate::LinkFailure;
use crate::bindings::tracer::TracerComponentPre;
use crate::bindings::tracer::exports::vcon::conserver::tracer::TracePoint as WitTracePoint;
use crate::engine::EPOCH_TICK;
use crate::host::{CallLabels, Capabilities, HostState};
use crate::link::{classify, new_store};

/// Where in a chain a tracer is called (the WIT `trace-point`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TracePoint {
    /// The chain running.
    pub chain: String,
    /// The chain's link names, in order.
    pub links: Vec<String>,
    /// The link that just ran, or -1 before the first.
    pub link_index: i32,
    /// The uuid going into the step.
    pub in_vcon_uuid: String,
    /// The uuid coming out of the step.
    pub out_vcon_uuid: String,
    /// The tracer's options as a JSON object.
    pub options_json: String,
}

/// A tracer component compiled and pre-instantiated, ready for many calls.
#[derive(Clone)]
pub struct LoadedTracer {
    name: String,
    pre: TracerComponentPre<HostState>,
    limits: Limits,
    capabilities: Capabilities,
}

impl std::fmt::Debug for LoadedTracer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoadedTracer").field("name", &self.name).field("limits", &self.limits).finish_non_exhaustive()
    }
}

impl LoadedTracer {
    pub(crate) fn new(
        name: String,
        pre: TracerComponentPre<HostState>,
        limits: Limits,
        capabilities: Capabilities,
    ) -> Self {
        Self { name, pre, limits, capabilities }
    }

    /// The tracer's configured name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Call the tracer once at `point` with the vCon (JSON), in a fresh instance.
    pub async fn trace(&self, point: &TracePoint, vcon: &str) -> Result<(), LinkFailure> {
        let limits = self.limits;
        let labels =
            CallLabels { link: self.name.clone(), chain: point.chain.clone(), vcon_uuid: point.out_vcon_uuid.clone() };
        let mut store = new_store(self.pre.engine(), labels, limits, self.capabilities.clone())?;
        let wit_point = WitTracePoint {
            tracer_name: self.name.clone(),
            chain_name: point.chain.clone(),
            links: point.links.clone(),
            link_index: point.link_index,
            in_vcon_uuid: point.in_vcon_uuid.clone(),
            out_vcon_uuid: point.out_vcon_uuid.clone(),
            options: point.options_json.clone(),
        };
        let timeout = Duration::from_millis(limits.timeout_ms);
        // Host warnings the call causes are charged to its log budget, as for links.
        let log = store.data().log.clone();
        let call = tokio::time::timeout(
            timeout + EPOCH_TICK * 2,
            crate::call_log::scope(log, async {
                let instance = self.pre.instantiate_async(&mut store).await?;
                instance.vcon_conserver_tracer().call_trace(&mut store, &wit_point, vcon).await
            }),
        )
        .await;
        if let Some((budget, limit)) = store.data().breach {
            return Err(LinkFailure::Budget { budget, limit });
        }
        match call {
            Err(_elapsed) => Err(LinkFailure::Timeout { timeout_ms: limits.timeout_ms }),
            Ok(Err(trap)) => Err(classify(&trap, store.data(), limits)),
            Ok(Ok(Err(message))) => {
                Err(LinkFailure::Refused { message: store.data().scrubbed(&message), retryable: false })
            }
            Ok(Ok(Ok(()))) => Ok(()),
        }
    }
}
