//! Logs and OpenTelemetry for the binary.
//!
//! * Logs: `LOG_LEVEL` (a level — Python's names too — or an env-filter
//!   directive, default `info`; see [`log_level`]) and
//!   `LOG_FORMAT=json|text` (default text). JSON lines carry the fields of the
//!   spans they were written in: `request_id` for API requests, `vcon_uuid`,
//!   `chain_name` and `link_name` while a vCon is processed. Text lines have
//!   control characters in values escaped ([`text_fields`]), so one event is
//!   always one line.
//! * OpenTelemetry ([`otlp`]): spans and metrics over OTLP, gRPC or HTTP, when the
//!   standard `OTEL_*` variables ask for it.

mod log_level;
mod otlp;
mod text_fields;

use tracing::Metadata;
use tracing_subscriber::filter::{EnvFilter, FilterFn, LevelFilter};
use tracing_subscriber::layer::{Layer as _, SubscriberExt as _};
use tracing_subscriber::util::SubscriberInitExt as _;

pub use otlp::OtlpSettings;

/// What [`init`] installed; [`Telemetry::shutdown`] flushes it.
#[derive(Default)]
pub struct Telemetry {
    exporters: Option<otlp::Exporters>,
}

impl Telemetry {
    /// Export what is still buffered and stop the exporters. Call outside async
    /// code, with the runtime still alive.
    pub fn shutdown(self) {
        if let Some(exporters) = self.exporters {
            exporters.shutdown();
        }
    }
}

/// Spans exported to OpenTelemetry: the conserver's own, at INFO and above,
/// whatever `LOG_LEVEL` says (the exporters' own HTTP clients are never traced).
fn exported(metadata: &Metadata<'_>) -> bool {
    let target = metadata.target();
    (target.starts_with("conserver") || target == "link") && *metadata.level() <= tracing::Level::INFO
}

/// Install logging and, when configured, the OTLP exporters. Must run inside the
/// tokio runtime's context (the gRPC exporter's channel lives on it).
pub fn init() -> Telemetry {
    let (level, mut level_warning) = log_level::directive(&std::env::var("LOG_LEVEL").unwrap_or_default());
    let filter = EnvFilter::try_new(&level).unwrap_or_else(|error| {
        level_warning = Some(format!("LOG_LEVEL={level:?} is not a valid filter ({error}); logging at info"));
        EnvFilter::new("info")
    });
    let json = std::env::var("LOG_FORMAT").is_ok_and(|f| f.eq_ignore_ascii_case("json"));
    let fmt = tracing_subscriber::fmt::layer().with_writer(std::io::stderr);
    let fmt = if json {
        fmt.json().flatten_event(true).with_current_span(true).with_span_list(true).with_filter(filter).boxed()
    } else {
        fmt.fmt_fields(text_fields::escaping()).with_filter(filter).boxed()
    };
    let (exporters, problem) = match OtlpSettings::from_env().map(|settings| settings.map(otlp::Exporters::start)) {
        Ok(Some(Ok(exporters))) => (Some(exporters), None),
        Ok(Some(Err(error))) | Err(error) => (None, Some(error)),
        Ok(None) => (None, None),
    };
    let otel = exporters
        .as_ref()
        .and_then(otlp::Exporters::tracing_layer)
        .map(|layer| layer.with_filter(FilterFn::new(exported)).with_filter(LevelFilter::INFO).boxed());
    if let Err(error) = tracing_subscriber::registry().with(fmt).with(otel).try_init() {
        eprintln!("conserver: logging already initialised: {error}");
    }
    if let Some(warning) = level_warning {
        tracing::warn!("{warning}");
    }
    if let Some(error) = problem {
        tracing::error!(%error, "OpenTelemetry export is off: fix the OTEL_* settings");
    }
    if let Some(exporters) = &exporters {
        tracing::info!(
            traces = exporters.describe_traces(),
            metrics = exporters.describe_metrics(),
            "OpenTelemetry export on"
        );
    }
    Telemetry { exporters }
}
