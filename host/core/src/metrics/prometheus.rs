//! The in-process store behind `GET /metrics`: one series per family and label
//! set, rendered in the Prometheus text exposition format (0.0.4). Attribute keys
//! keep their OpenTelemetry spelling here and become Prometheus label names on
//! render (`chain.name` → `chain_name`).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::{Mutex, OnceLock};

use super::families::{ALL, Family, Kind};

/// A series' attributes: key (OpenTelemetry spelling) and value.
pub(crate) type Labels = Vec<(&'static str, String)>;

#[derive(Debug)]
enum Series {
    Number(f64),
    Histogram { counts: Vec<u64>, sum: f64, count: u64 },
}

type Store = BTreeMap<&'static str, BTreeMap<Labels, Series>>;

fn store() -> &'static Mutex<Store> {
    static STORE: OnceLock<Mutex<Store>> = OnceLock::new();
    STORE.get_or_init(Mutex::default)
}

fn with_series(family: &Family, labels: Labels, update: impl FnOnce(&mut Series)) {
    let Ok(mut store) = store().lock() else { return };
    let series = store.entry(family.otel).or_default().entry(labels).or_insert_with(|| match family.kind {
        Kind::Histogram => Series::Histogram { counts: vec![0; family.bounds.len()], sum: 0.0, count: 0 },
        _ => Series::Number(0.0),
    });
    update(series);
}

/// Add `delta` to a counter or up-down counter.
pub(crate) fn add(family: &Family, labels: Labels, delta: f64) {
    with_series(family, labels, |series| {
        if let Series::Number(value) = series {
            *value += delta;
        }
    });
}

/// Set a gauge.
pub(crate) fn set(family: &Family, labels: Labels, to: f64) {
    with_series(family, labels, |series| {
        if let Series::Number(value) = series {
            *value = to;
        }
    });
}

/// Record one observation in a histogram.
pub(crate) fn observe(family: &Family, labels: Labels, value: f64) {
    with_series(family, labels, |series| {
        if let Series::Histogram { counts, sum, count } = series {
            if let Some(bucket) = family.bounds.iter().position(|bound| value <= *bound) {
                counts[bucket] += 1;
            }
            *sum += value;
            *count += 1;
        }
    });
}

/// The current values of a gauge family (for the OpenTelemetry callbacks).
pub(crate) fn gauge_values(family: &Family) -> Vec<(Labels, f64)> {
    let Ok(store) = store().lock() else { return Vec::new() };
    store
        .get(family.otel)
        .map(|series| {
            series
                .iter()
                .filter_map(|(labels, series)| match series {
                    Series::Number(value) => Some((labels.clone(), *value)),
                    Series::Histogram { .. } => None,
                })
                .collect()
        })
        .unwrap_or_default()
}

/// Replace every series of a gauge family at once (a scrape never sees it empty).
pub(crate) fn replace_gauges(family: &Family, series: Vec<(Labels, f64)>) {
    if let Ok(mut store) = store().lock() {
        store.insert(family.otel, series.into_iter().map(|(labels, value)| (labels, Series::Number(value))).collect());
    }
}

fn escape(value: &str) -> String {
    value.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

fn label_text(labels: &Labels, extra: Option<(&str, String)>) -> String {
    let mut parts: Vec<String> =
        labels.iter().map(|(key, value)| format!("{}=\"{}\"", key.replace('.', "_"), escape(value))).collect();
    if let Some((key, value)) = extra {
        parts.push(format!("{key}=\"{value}\""));
    }
    if parts.is_empty() { String::new() } else { format!("{{{}}}", parts.join(",")) }
}

fn number(value: f64) -> String {
    if value.fract() == 0.0 && value.abs() < 1e15 { format!("{value:.0}") } else { format!("{value}") }
}

/// Every family in the Prometheus text exposition format.
pub fn render() -> String {
    let Ok(store) = store().lock() else { return String::new() };
    let mut out = String::new();
    for family in ALL {
        let (name, kind) = match family.kind {
            Kind::Counter => (format!("{}_total", family.prometheus), "counter"),
            Kind::UpDown | Kind::Gauge => (family.prometheus.to_string(), "gauge"),
            Kind::Histogram => (family.prometheus.to_string(), "histogram"),
        };
        let _ = writeln!(out, "# HELP {name} {}\n# TYPE {name} {kind}", family.help);
        let Some(series) = store.get(family.otel) else { continue };
        for (labels, series) in series {
            match series {
                Series::Number(value) => {
                    let _ = writeln!(out, "{name}{} {}", label_text(labels, None), number(*value));
                }
                Series::Histogram { counts, sum, count } => {
                    let mut cumulative = 0;
                    for (bound, in_bucket) in family.bounds.iter().zip(counts) {
                        cumulative += in_bucket;
                        let le = Some(("le", number(*bound)));
                        let _ = writeln!(out, "{name}_bucket{} {cumulative}", label_text(labels, le));
                    }
                    let _ = writeln!(out, "{name}_bucket{} {count}", label_text(labels, Some(("le", "+Inf".into()))));
                    let _ = writeln!(out, "{name}_sum{} {}", label_text(labels, None), number(*sum));
                    let _ = writeln!(out, "{name}_count{} {count}", label_text(labels, None));
                }
            }
        }
    }
    out
}
