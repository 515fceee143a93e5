//! The spans the Python conserver emits, as `tracing` spans that the binary's
//! OpenTelemetry layer exports under their OTel names (`otel.name`):
//! `vcon_processing.{chain}` per vCon (linked to the producer's trace), `link.{name}`
//! per link and `storage.{name}` per storage write.

use opentelemetry::trace::TraceContextExt as _;
use tracing::Span;
use tracing::field::Empty;
use tracing_opentelemetry::OpenTelemetrySpanExt as _;

/// The root span of one vCon's chain run, linked to `producer` (the stored
/// `context:{list}:{uuid}` entry) when it holds a valid context.
pub(crate) fn chain_span(chain: &str, uuid: &str, list: &str, producer: Option<&str>) -> Span {
    let span = tracing::info_span!(
        "vcon_processing",
        otel.name = %format_args!("vcon_processing.{chain}"),
        otel.status_code = Empty,
        vcon_id = %uuid,
        vcon_uuid = %uuid,
        "vcon.uuid" = %uuid,
        chain_name = %chain,
        ingress_list = %list,
    );
    if let Some(remote) = producer.and_then(conserver_core::trace_context::decode) {
        span.add_link(remote);
    }
    span
}

/// One link call.
pub(crate) fn link_span(chain: &str, link: &str, index: usize, uuid: &str) -> Span {
    tracing::info_span!(
        "link",
        otel.name = %format_args!("link.{link}"),
        otel.status_code = Empty,
        otel.status_description = Empty,
        vcon_id = %uuid,
        link_name = %link,
        link_index = index,
        chain_name = %chain,
    )
}

/// One storage write.
pub(crate) fn storage_span(chain: &str, storage: &str, uuid: &str) -> Span {
    tracing::info_span!(
        "storage",
        otel.name = %format_args!("storage.{storage}"),
        otel.status_code = Empty,
        otel.status_description = Empty,
        vcon_id = %uuid,
        storage_name = %storage,
        chain_name = %chain,
    )
}

/// Mark `span` failed with `message` (status ERROR, as Python records exceptions).
pub(crate) fn mark_error(span: &Span, message: &str) {
    span.record("otel.status_code", "ERROR");
    span.record("otel.status_description", message);
}

/// Mark `span` finished normally (status OK, as the Python root span ends).
pub(crate) fn mark_ok(span: &Span) {
    span.record("otel.status_code", "OK");
}

/// The context to store for the next consumer: `span`'s own, in the Python JSON.
pub(crate) fn context_json(span: &Span) -> Option<String> {
    conserver_core::trace_context::encode(&span.context().span().span_context().clone())
}
