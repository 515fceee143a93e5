//! An OTLP collector stand-in on loopback: it speaks OTLP/gRPC (HTTP/2 with
//! length-prefixed protobuf messages and a `grpc-status` trailer) and OTLP/HTTP
//! with protobuf bodies on one port, decodes every export request with the
//! OpenTelemetry protobuf types and keeps the spans and metrics it received.

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http_body_util::{BodyExt, Full, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper::{Request, Response};
use hyper_util::rt::{TokioExecutor, TokioIo};
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value};
use opentelemetry_proto::tonic::metrics::v1::{Metric, metric};
use opentelemetry_proto::tonic::trace::v1::Span;
use prost::Message as _;

/// What the collector received.
#[derive(Default)]
pub struct Received {
    /// Every span, with its resource's attributes.
    pub spans: Vec<(Vec<KeyValue>, Span)>,
    /// Every metric export, with its resource's attributes.
    pub metrics: Vec<(Vec<KeyValue>, Metric)>,
    /// Requests by wire: `grpc` or `http`.
    pub requests: HashMap<&'static str, usize>,
}

/// A running collector.
pub struct Collector {
    /// `http://127.0.0.1:<port>`.
    pub endpoint: String,
    received: Arc<Mutex<Received>>,
}

type Body = http_body_util::combinators::BoxBody<Bytes, Infallible>;

fn grpc_ok() -> Response<Body> {
    let mut trailers = hyper::HeaderMap::new();
    trailers.insert("grpc-status", hyper::header::HeaderValue::from_static("0"));
    // An empty response message: not compressed, length 0.
    let frames: Vec<Result<Frame<Bytes>, Infallible>> =
        vec![Ok(Frame::data(Bytes::from_static(&[0, 0, 0, 0, 0]))), Ok(Frame::trailers(trailers))];
    let mut response = Response::new(BodyExt::boxed(StreamBody::new(futures::stream::iter(frames))));
    response.headers_mut().insert("content-type", hyper::header::HeaderValue::from_static("application/grpc"));
    response
}

fn plain(status: u16, content_type: &'static str, body: Vec<u8>) -> Response<Body> {
    let mut response = Response::new(Full::new(Bytes::from(body)).boxed());
    *response.status_mut() = hyper::StatusCode::from_u16(status).unwrap_or(hyper::StatusCode::INTERNAL_SERVER_ERROR);
    response.headers_mut().insert("content-type", hyper::header::HeaderValue::from_static(content_type));
    response
}

async fn handle(request: Request<Incoming>, received: Arc<Mutex<Received>>) -> Result<Response<Body>, Infallible> {
    let path = request.uri().path().to_string();
    let grpc = request
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/grpc"));
    let body = match request.into_body().collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(_) => return Ok(plain(400, "text/plain", b"unreadable body".to_vec())),
    };
    let message = if grpc {
        // One length-prefixed message: flag (0 = uncompressed), u32 length, bytes.
        if body.len() < 5 || body[0] != 0 {
            return Ok(plain(400, "text/plain", b"expected one uncompressed gRPC message".to_vec()));
        }
        body.slice(5..)
    } else {
        body
    };
    let mut received = received.lock().unwrap();
    *received.requests.entry(if grpc { "grpc" } else { "http" }).or_default() += 1;
    match path.as_str() {
        "/v1/traces" | "/opentelemetry.proto.collector.trace.v1.TraceService/Export" => {
            let Ok(export) = ExportTraceServiceRequest::decode(message) else {
                return Ok(plain(400, "text/plain", b"not an ExportTraceServiceRequest".to_vec()));
            };
            for resource_spans in export.resource_spans {
                let resource = resource_spans.resource.map(|r| r.attributes).unwrap_or_default();
                for scope in resource_spans.scope_spans {
                    for span in scope.spans {
                        received.spans.push((resource.clone(), span));
                    }
                }
            }
        }
        "/v1/metrics" | "/opentelemetry.proto.collector.metrics.v1.MetricsService/Export" => {
            let Ok(export) = ExportMetricsServiceRequest::decode(message) else {
                return Ok(plain(400, "text/plain", b"not an ExportMetricsServiceRequest".to_vec()));
            };
            for resource_metrics in export.resource_metrics {
                let resource = resource_metrics.resource.map(|r| r.attributes).unwrap_or_default();
                for scope in resource_metrics.scope_metrics {
                    for metric in scope.metrics {
                        received.metrics.push((resource.clone(), metric));
                    }
                }
            }
        }
        _ => return Ok(plain(404, "text/plain", format!("no OTLP endpoint at {path}").into_bytes())),
    }
    Ok(if grpc { grpc_ok() } else { plain(200, "application/x-protobuf", Vec::new()) })
}

impl Collector {
    /// Listen on a free loopback port.
    pub async fn start() -> Collector {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let endpoint = format!("http://{}", listener.local_addr().unwrap());
        let received = Arc::new(Mutex::new(Received::default()));
        let shared = received.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let shared = shared.clone();
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |request| handle(request, shared.clone()));
                    let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Collector { endpoint, received }
    }

    /// Look at what arrived so far.
    pub fn with<T>(&self, read: impl FnOnce(&Received) -> T) -> T {
        read(&self.received.lock().unwrap())
    }
}

/// A string, integer or boolean attribute as text.
pub fn attribute(attributes: &[KeyValue], key: &str) -> Option<String> {
    let value = attributes.iter().find(|kv| kv.key == key)?.value.as_ref()?;
    text(value)
}

fn text(value: &AnyValue) -> Option<String> {
    Some(match value.value.as_ref()? {
        any_value::Value::StringValue(s) => s.clone(),
        any_value::Value::IntValue(i) => i.to_string(),
        any_value::Value::BoolValue(b) => b.to_string(),
        any_value::Value::DoubleValue(d) => d.to_string(),
        _ => return None,
    })
}

/// Every data point of `metric` as (attributes, value): the sum for sums and
/// gauges, the count for histograms.
pub fn points(metric: &Metric) -> Vec<(Vec<KeyValue>, f64)> {
    use opentelemetry_proto::tonic::metrics::v1::number_data_point::Value;
    let number = |value: &Option<Value>| match value {
        Some(Value::AsDouble(d)) => *d,
        Some(Value::AsInt(i)) => *i as f64,
        None => 0.0,
    };
    match &metric.data {
        Some(metric::Data::Sum(sum)) => {
            sum.data_points.iter().map(|p| (p.attributes.clone(), number(&p.value))).collect()
        }
        Some(metric::Data::Gauge(gauge)) => {
            gauge.data_points.iter().map(|p| (p.attributes.clone(), number(&p.value))).collect()
        }
        Some(metric::Data::Histogram(histogram)) => {
            histogram.data_points.iter().map(|p| (p.attributes.clone(), p.count as f64)).collect()
        }
        _ => Vec::new(),
    }
}
