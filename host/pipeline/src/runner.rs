//! What the pipeline needs from a link and a tracer: a name and a call. The
//! wasm runtime's [`LoadedLink`] and [`LoadedTracer`] are the real runners;
//! the pipeline's rules (halt, routes, TTLs, DLQ, the ack order) are written
//! against these traits only, so they are tested with scripted runners and no
//! component at all.

use async_trait::async_trait;
use conserver_runtime::{CallContext, LinkFailure, LinkOutcome, LoadedLink, LoadedTracer, TracePoint};

/// One link as a chain calls it.
#[async_trait]
pub trait LinkRunner: Send + Sync {
    /// The link's name (in DLQ reasons, metrics and spans).
    fn name(&self) -> &str;
    /// Run the link on `vcon` (JSON text).
    async fn invoke(&self, ctx: CallContext<'_>, vcon: &str) -> Result<LinkOutcome, LinkFailure>;
}

/// One tracer as a chain calls it.
#[async_trait]
pub trait TraceRunner: Send + Sync {
    /// The tracer's name.
    fn name(&self) -> &str;
    /// Tell the tracer a step happened to `vcon`.
    async fn trace(&self, point: &TracePoint, vcon: &str) -> Result<(), LinkFailure>;
}

#[async_trait]
impl LinkRunner for LoadedLink {
    fn name(&self) -> &str {
        LoadedLink::name(self)
    }

    async fn invoke(&self, ctx: CallContext<'_>, vcon: &str) -> Result<LinkOutcome, LinkFailure> {
        LoadedLink::invoke(self, ctx, vcon).await
    }
}

#[async_trait]
impl TraceRunner for LoadedTracer {
    fn name(&self) -> &str {
        LoadedTracer::name(self)
    }

    async fn trace(&self, point: &TracePoint, vcon: &str) -> Result<(), LinkFailure> {
        LoadedTracer::trace(self, point, vcon).await
    }
}
