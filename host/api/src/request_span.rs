//! One span per HTTP request, carrying a request id: the caller's `x-request-id`
//! when it sent a usable one, else a fresh uuid. The id is echoed in the response
//! and appears on every log line written while the request is handled, including
//! the access line (method, path, status, milliseconds) logged at INFO. A W3C
//! `traceparent` from the caller becomes the span's parent when traces are
//! exported.

use axum::extract::Request;
use axum::http::{HeaderMap, HeaderValue};
use axum::middleware::Next;
use axum::response::Response;
use tracing::Instrument as _;
use tracing::field::Empty;
use tracing_opentelemetry::OpenTelemetrySpanExt as _;

const REQUEST_ID: &str = "x-request-id";

struct Headers<'a>(&'a HeaderMap);

impl opentelemetry::propagation::Extractor for Headers<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|value| value.to_str().ok())
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(|name| name.as_str()).collect()
    }
}

/// The caller's request id when it is 1–128 visible ASCII characters.
fn caller_id(headers: &HeaderMap) -> Option<String> {
    let id = headers.get(REQUEST_ID)?.to_str().ok()?;
    let usable = !id.is_empty() && id.len() <= 128 && id.bytes().all(|b| b.is_ascii_graphic());
    usable.then(|| id.to_string())
}

/// Wrap the request in its span and echo the request id.
pub async fn request_span(request: Request, next: Next) -> Response {
    let request_id = caller_id(request.headers()).unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
    let span = tracing::info_span!(
        "http_request",
        otel.name = %format_args!("{} {}", request.method(), request.uri().path()),
        otel.kind = "server",
        request_id = %request_id,
        http.request.method = %request.method(),
        url.path = %request.uri().path(),
        http.response.status_code = Empty,
    );
    if conserver_core::trace_context::enabled() {
        let parent = opentelemetry::global::get_text_map_propagator(|propagator| {
            propagator.extract(&Headers(request.headers()))
        });
        let _ = span.set_parent(parent);
    }
    let started = std::time::Instant::now();
    let mut response = next.run(request).instrument(span.clone()).await;
    let status = response.status().as_u16();
    span.record("http.response.status_code", status);
    // The access line, as uvicorn writes one per request.
    tracing::info!(parent: &span, status, ms = started.elapsed().as_secs_f64() * 1000.0, "request");
    if let Ok(value) = HeaderValue::from_str(&request_id) {
        response.headers_mut().insert(REQUEST_ID, value);
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_usable_caller_ids_are_kept() {
        let mut headers = HeaderMap::new();
        assert_eq!(caller_id(&headers), None);
        headers.insert(REQUEST_ID, HeaderValue::from_static("abc-123"));
        assert_eq!(caller_id(&headers).as_deref(), Some("abc-123"));
        headers.insert(REQUEST_ID, HeaderValue::from_static("has space"));
        assert_eq!(caller_id(&headers), None);
        headers.insert(REQUEST_ID, HeaderValue::from_str(&"x".repeat(129)).expect("ascii"));
        assert_eq!(caller_id(&headers), None);
    }
}
