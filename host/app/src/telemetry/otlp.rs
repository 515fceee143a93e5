//! OTLP export of spans and metrics, configured only by the standard variables:
//!
//! * on when `OTEL_EXPORTER_OTLP_ENDPOINT` (or the signal's own
//!   `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` / `_METRICS_ENDPOINT`) is set, off with
//!   `OTEL_SDK_DISABLED=true` or `OTEL_TRACES_EXPORTER` / `OTEL_METRICS_EXPORTER=none`;
//! * `OTEL_EXPORTER_OTLP_PROTOCOL` (or the signal's `_PROTOCOL`): `grpc` (the
//!   default, as the Python conserver exports), `http/protobuf` or `http/json`;
//! * headers, timeouts, compression (`OTEL_EXPORTER_OTLP_HEADERS`, …),
//!   `OTEL_SERVICE_NAME`, `OTEL_RESOURCE_ATTRIBUTES`, `OTEL_BSP_*` and
//!   `OTEL_METRIC_EXPORT_INTERVAL` are read by the OpenTelemetry SDK itself.
//!
//! The resource carries `service.name` (default `conserver`), `host.name` and
//! `service.instance.id = {host}-pid-{pid}` as the Python conserver's does.

use std::time::Duration;

use opentelemetry::KeyValue;
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::{MetricExporter, Protocol, SpanExporter, WithExportConfig as _};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::metrics::{PeriodicReader, SdkMeterProvider};
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::{SdkTracerProvider, Tracer};
use tracing_subscriber::registry::LookupSpan;

/// The wire protocol of one signal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wire {
    /// OTLP/gRPC.
    Grpc,
    /// OTLP/HTTP with protobuf bodies.
    HttpProtobuf,
    /// OTLP/HTTP with JSON bodies.
    HttpJson,
}

impl Wire {
    fn parse(value: &str, variable: &str) -> Result<Self, String> {
        match value.trim().to_ascii_lowercase().as_str() {
            "grpc" => Ok(Self::Grpc),
            "http/protobuf" | "http" => Ok(Self::HttpProtobuf),
            "http/json" => Ok(Self::HttpJson),
            other => Err(format!("{variable}={other:?} is not an OTLP protocol: use grpc, http/protobuf or http/json")),
        }
    }

    fn name(self) -> &'static str {
        match self {
            Self::Grpc => "grpc",
            Self::HttpProtobuf => "http/protobuf",
            Self::HttpJson => "http/json",
        }
    }

    fn http_protocol(self) -> Protocol {
        if self == Self::HttpJson { Protocol::HttpJson } else { Protocol::HttpBinary }
    }
}

/// Which signals are exported, and how.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OtlpSettings {
    /// Spans, when exported.
    pub traces: Option<Wire>,
    /// Metrics, when exported.
    pub metrics: Option<Wire>,
    /// `OTEL_METRIC_EXPORT_INTERVAL` in milliseconds, when set.
    pub metric_interval: Option<Duration>,
}

fn var(name: &str) -> Option<String> {
    std::env::var(name).ok().map(|v| v.trim().to_string()).filter(|v| !v.is_empty())
}

fn signal(signal: &str) -> Result<Option<Wire>, String> {
    let upper = signal.to_ascii_uppercase();
    if var(&format!("OTEL_{upper}_EXPORTER")).is_some_and(|e| e.eq_ignore_ascii_case("none")) {
        return Ok(None);
    }
    if var(&format!("OTEL_EXPORTER_OTLP_{upper}_ENDPOINT")).or_else(|| var("OTEL_EXPORTER_OTLP_ENDPOINT")).is_none() {
        return Ok(None);
    }
    let own = format!("OTEL_EXPORTER_OTLP_{upper}_PROTOCOL");
    match var(&own) {
        Some(value) => Wire::parse(&value, &own).map(Some),
        None => match var("OTEL_EXPORTER_OTLP_PROTOCOL") {
            Some(value) => Wire::parse(&value, "OTEL_EXPORTER_OTLP_PROTOCOL").map(Some),
            None => Ok(Some(Wire::Grpc)),
        },
    }
}

impl OtlpSettings {
    /// Read the environment; `None` when nothing is to be exported.
    pub fn from_env() -> Result<Option<Self>, String> {
        if var("OTEL_SDK_DISABLED").is_some_and(|v| v.eq_ignore_ascii_case("true")) {
            return Ok(None);
        }
        let traces = signal("traces")?;
        let metrics = signal("metrics")?;
        let metric_interval = match var("OTEL_METRIC_EXPORT_INTERVAL") {
            None => None,
            Some(ms) => Some(Duration::from_millis(
                ms.parse()
                    .map_err(|_| format!("OTEL_METRIC_EXPORT_INTERVAL={ms:?} is not a number of milliseconds"))?,
            )),
        };
        Ok((traces.is_some() || metrics.is_some()).then_some(Self { traces, metrics, metric_interval }))
    }
}

fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|name| name.trim().to_string())
        .ok()
        .filter(|name| !name.is_empty())
        .or_else(|| var("HOSTNAME"))
        .unwrap_or_else(|| "localhost".into())
}

fn resource() -> Resource {
    let host = host_name();
    let mut builder = Resource::builder();
    if var("OTEL_SERVICE_NAME").is_none() {
        builder = builder.with_service_name("conserver");
    }
    builder
        .with_attributes([
            KeyValue::new("host.name", host.clone()),
            KeyValue::new("service.instance.id", format!("{host}-pid-{}", std::process::id())),
            KeyValue::new("service.version", env!("CARGO_PKG_VERSION")),
        ])
        .build()
}

/// The running exporters.
pub struct Exporters {
    settings: OtlpSettings,
    tracer_provider: Option<SdkTracerProvider>,
    meter_provider: Option<SdkMeterProvider>,
}

impl Exporters {
    /// Build the exporters and providers, install the metric instruments and the
    /// W3C propagator, and turn trace-context propagation on.
    pub fn start(settings: OtlpSettings) -> Result<Self, String> {
        let resource = resource();
        let tracer_provider = match settings.traces {
            None => None,
            Some(wire) => {
                let exporter = match wire {
                    Wire::Grpc => SpanExporter::builder().with_tonic().build(),
                    other => SpanExporter::builder().with_http().with_protocol(other.http_protocol()).build(),
                }
                .map_err(|e| format!("cannot build the OTLP span exporter ({}): {e}", wire.name()))?;
                Some(SdkTracerProvider::builder().with_batch_exporter(exporter).with_resource(resource.clone()).build())
            }
        };
        let meter_provider = match settings.metrics {
            None => None,
            Some(wire) => {
                let exporter = match wire {
                    Wire::Grpc => MetricExporter::builder().with_tonic().build(),
                    other => MetricExporter::builder().with_http().with_protocol(other.http_protocol()).build(),
                }
                .map_err(|e| format!("cannot build the OTLP metric exporter ({}): {e}", wire.name()))?;
                let mut reader = PeriodicReader::builder(exporter);
                if let Some(interval) = settings.metric_interval {
                    reader = reader.with_interval(interval);
                }
                Some(SdkMeterProvider::builder().with_reader(reader.build()).with_resource(resource).build())
            }
        };
        if let Some(provider) = &meter_provider {
            use opentelemetry::metrics::MeterProvider as _;
            conserver_core::metrics::install_meter(&provider.meter("conserver"));
        }
        if tracer_provider.is_some() {
            opentelemetry::global::set_text_map_propagator(TraceContextPropagator::new());
            conserver_core::trace_context::set_enabled(true);
        }
        Ok(Self { settings, tracer_provider, meter_provider })
    }

    /// The `tracing` layer that turns spans into OpenTelemetry spans.
    pub fn tracing_layer<S>(&self) -> Option<tracing_opentelemetry::OpenTelemetryLayer<S, Tracer>>
    where
        S: tracing::Subscriber + for<'span> LookupSpan<'span>,
    {
        let tracer = self.tracer_provider.as_ref()?.tracer("conserver");
        Some(tracing_opentelemetry::layer().with_tracer(tracer))
    }

    /// `grpc`, `http/protobuf`, `http/json` or `off`.
    pub fn describe_traces(&self) -> &'static str {
        self.settings.traces.map_or("off", Wire::name)
    }

    /// `grpc`, `http/protobuf`, `http/json` or `off`.
    pub fn describe_metrics(&self) -> &'static str {
        self.settings.metrics.map_or("off", Wire::name)
    }

    /// Flush and stop both providers.
    pub fn shutdown(self) {
        if let Some(provider) = self.tracer_provider
            && let Err(error) = provider.shutdown()
        {
            eprintln!("conserver: flushing spans at exit failed: {error}");
        }
        if let Some(provider) = self.meter_provider
            && let Err(error) = provider.shutdown()
        {
            eprintln!("conserver: flushing metrics at exit failed: {error}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn protocols_parse_as_the_spec_names_them() {
        assert_eq!(Wire::parse("grpc", "X"), Ok(Wire::Grpc));
        assert_eq!(Wire::parse("http/protobuf", "X"), Ok(Wire::HttpProtobuf));
        assert_eq!(Wire::parse("HTTP/JSON", "X"), Ok(Wire::HttpJson));
        let error = Wire::parse("thrift", "OTEL_EXPORTER_OTLP_PROTOCOL").expect_err("not OTLP");
        assert!(error.contains("OTEL_EXPORTER_OTLP_PROTOCOL") && error.contains("grpc"), "{error}");
    }
}
