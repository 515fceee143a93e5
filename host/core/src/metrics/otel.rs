//! The same metrics as OpenTelemetry instruments. The binary installs a `Meter`
//! from its OTLP meter provider at start-up (only when `OTEL_*` asks for export);
//! until then, and without it, recording here is a no-op. Gauges are observed at
//! each export from the values the Prometheus store holds.

use std::collections::HashMap;
use std::sync::OnceLock;

use opentelemetry::KeyValue;
use opentelemetry::metrics::{Counter, Histogram, Meter, ObservableGauge, UpDownCounter};

use super::families::{ALL, Family, Kind};
use super::prometheus::{self, Labels};

struct Instruments {
    counters: HashMap<&'static str, Counter<f64>>,
    up_downs: HashMap<&'static str, UpDownCounter<f64>>,
    histograms: HashMap<&'static str, Histogram<f64>>,
    _gauges: Vec<ObservableGauge<f64>>,
}

static INSTRUMENTS: OnceLock<Instruments> = OnceLock::new();

/// Create every instrument on `meter`. Later calls are ignored.
pub fn install(meter: &Meter) {
    let mut instruments = Instruments {
        counters: HashMap::new(),
        up_downs: HashMap::new(),
        histograms: HashMap::new(),
        _gauges: Vec::new(),
    };
    for family in ALL {
        let (name, help, unit) = (family.otel, family.help, family.unit);
        match family.kind {
            Kind::Counter => {
                let counter = meter.f64_counter(name).with_description(help).with_unit(unit).build();
                instruments.counters.insert(name, counter);
            }
            Kind::UpDown => {
                let counter = meter.f64_up_down_counter(name).with_description(help).with_unit(unit).build();
                instruments.up_downs.insert(name, counter);
            }
            Kind::Histogram => {
                let histogram = meter
                    .f64_histogram(name)
                    .with_description(help)
                    .with_unit(unit)
                    .with_boundaries(family.bounds.to_vec())
                    .build();
                instruments.histograms.insert(name, histogram);
            }
            Kind::Gauge => {
                let family: &'static Family = family;
                let gauge = meter
                    .f64_observable_gauge(name)
                    .with_description(help)
                    .with_unit(unit)
                    .with_callback(move |observer| {
                        for (labels, value) in prometheus::gauge_values(family) {
                            observer.observe(value, &attributes(&labels));
                        }
                    })
                    .build();
                instruments._gauges.push(gauge);
            }
        }
    }
    let _ = INSTRUMENTS.set(instruments);
}

/// Whether a meter was installed (recording is skipped otherwise).
pub(crate) fn enabled() -> bool {
    INSTRUMENTS.get().is_some()
}

fn attributes(labels: &Labels) -> Vec<KeyValue> {
    labels.iter().map(|(key, value)| KeyValue::new(*key, value.clone())).collect()
}

/// Add to a counter or up-down counter.
pub(crate) fn add(family: &Family, labels: &Labels, delta: f64) {
    let Some(instruments) = INSTRUMENTS.get() else { return };
    if let Some(counter) = instruments.counters.get(family.otel) {
        counter.add(delta, &attributes(labels));
    } else if let Some(counter) = instruments.up_downs.get(family.otel) {
        counter.add(delta, &attributes(labels));
    }
}

/// Record one histogram observation.
pub(crate) fn observe(family: &Family, labels: &Labels, value: f64) {
    let Some(instruments) = INSTRUMENTS.get() else { return };
    if let Some(histogram) = instruments.histograms.get(family.otel) {
        histogram.record(value, &attributes(labels));
    }
}
