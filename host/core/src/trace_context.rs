//! The trace context a producer leaves beside a queued uuid
//! (`context:{list}:{uuid}`), in the Python conserver's JSON form
//! `{"trace_id": 32 hex, "span_id": 16 hex, "trace_flags": int, "is_sampled": bool}`,
//! so a worker can link its `vcon_processing.{chain}` span to the producer's trace.
//! Propagation is on only while the binary exports traces ([`set_enabled`]).

use std::sync::atomic::{AtomicBool, Ordering};

use opentelemetry::trace::{SpanContext, SpanId, TraceFlags, TraceId, TraceState};
use serde_json::{Value, json};

/// How long a stored context lives (`VCON_CONTEXT_EXPIRY`'s default).
pub const DEFAULT_TTL_SECS: u64 = 86_400;

static ENABLED: AtomicBool = AtomicBool::new(false);

/// Turn propagation on (the binary does when it exports traces).
pub fn set_enabled(enabled: bool) {
    ENABLED.store(enabled, Ordering::Relaxed);
}

/// Whether contexts are written before enqueueing and read after popping.
pub fn enabled() -> bool {
    ENABLED.load(Ordering::Relaxed)
}

/// The JSON stored for `context`, or `None` when it is not valid.
pub fn encode(context: &SpanContext) -> Option<String> {
    if !context.is_valid() {
        return None;
    }
    Some(
        json!({
            "trace_id": format!("{:032x}", context.trace_id()),
            "span_id": format!("{:016x}", context.span_id()),
            "trace_flags": context.trace_flags().to_u8(),
            "is_sampled": context.is_sampled(),
        })
        .to_string(),
    )
}

/// The remote span context in a stored entry, when both ids are valid hex (the
/// Python worker's rule); anything else is ignored.
pub fn decode(stored: &str) -> Option<SpanContext> {
    let value: Value = serde_json::from_str(stored).ok()?;
    let trace_id = TraceId::from_hex(value.get("trace_id")?.as_str()?).ok()?;
    let span_id = SpanId::from_hex(value.get("span_id")?.as_str()?).ok()?;
    let flags = value.get("trace_flags").and_then(Value::as_u64).and_then(|f| u8::try_from(f).ok()).unwrap_or(0);
    let context = SpanContext::new(trace_id, span_id, TraceFlags::new(flags), true, TraceState::default());
    context.is_valid().then_some(context)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_the_python_shape() {
        let stored = r#"{"trace_id": "0af7651916cd43dd8448eb211c80319c", "span_id": "b7ad6b7169203331", "trace_flags": 1, "is_sampled": true}"#;
        let context = decode(stored).expect("valid context");
        assert_eq!(format!("{:032x}", context.trace_id()), "0af7651916cd43dd8448eb211c80319c");
        assert!(context.is_sampled());
        let again: Value = serde_json::from_str(&encode(&context).expect("encodes")).expect("json");
        assert_eq!(again, serde_json::from_str::<Value>(stored).expect("json"));
    }

    #[test]
    fn invalid_entries_are_ignored() {
        assert!(decode("not json").is_none());
        assert!(decode(r#"{"trace_id": "zz", "span_id": "b7ad6b7169203331"}"#).is_none());
        assert!(decode(r#"{"trace_id": "00000000000000000000000000000000", "span_id": "b7ad6b7169203331"}"#).is_none());
    }
}
