//! Putting uuids on an ingress list from the API: the producer's trace context is
//! stored first (`context:{list}:{uuid}`, while traces are exported), then the
//! uuids are pushed, then `conserver.api.count_vcons_enqueued` counts them by
//! source, as the Python API does.

use conserver_broker::BrokerError;
use conserver_core::{metrics, trace_context};
use opentelemetry::trace::TraceContextExt as _;
use tracing_opentelemetry::OpenTelemetrySpanExt as _;

use crate::ApiState;

/// Where an enqueue came from (the metric's `source`).
#[derive(Debug, Clone, Copy)]
pub(crate) enum Source {
    /// `POST /vcon?ingress_lists=…`.
    New,
    /// `POST /vcon/external-ingress`.
    External,
    /// `POST /vcon/ingress`.
    Reingress,
}

impl Source {
    fn label(self) -> &'static str {
        match self {
            Self::New => "new",
            Self::External => "external",
            Self::Reingress => "reingress",
        }
    }
}

/// Push `uuids` to `list` (RPUSH, in order).
pub(crate) async fn enqueue(state: &ApiState, list: &str, uuids: &[String], source: Source) -> Result<(), BrokerError> {
    if uuids.is_empty() {
        return Ok(());
    }
    if trace_context::enabled() {
        let span = tracing::Span::current().context().span().span_context().clone();
        if let Some(context) = trace_context::encode(&span) {
            for uuid in uuids {
                state.broker.push_trace_context(list, uuid, &context, trace_context::DEFAULT_TTL_SECS).await?;
            }
        }
    }
    state.broker.push(list, uuids).await?;
    metrics::record_enqueued(list, source.label(), uuids.len() as u64);
    Ok(())
}
