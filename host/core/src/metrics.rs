//! Process-wide processing metrics, kept in memory and rendered in the Prometheus
//! text format for `GET /metrics`: per link and chain, how many calls, how long
//! they took in total, how much fuel they used, how many failed and how often the
//! link found what it asked its cache for (`cache_hit`); per chain, how
//! many vCons ended each way. Counters only grow; rates come from the scraper.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

#[derive(Debug, Default, Clone, Copy)]
struct LinkStat {
    calls: u64,
    failures: u64,
    seconds: f64,
    fuel: u64,
    cache_hits: u64,
}

/// One finished link call, as the metrics see it.
#[derive(Debug, Clone, Copy, Default)]
pub struct LinkCall {
    /// Wall time of the call.
    pub elapsed: Duration,
    /// Fuel it used.
    pub fuel: u64,
    /// Whether it failed.
    pub failed: bool,
    /// Cache reads that found a value.
    pub cache_hits: u64,
}

#[derive(Default)]
struct Registry {
    links: BTreeMap<(String, String), LinkStat>,
    outcomes: BTreeMap<(String, &'static str), u64>,
}

fn registry() -> &'static Mutex<Registry> {
    static REGISTRY: OnceLock<Mutex<Registry>> = OnceLock::new();
    REGISTRY.get_or_init(Mutex::default)
}

/// Record one call of `link` in `chain`.
pub fn record_link_call(chain: &str, link: &str, call: LinkCall) {
    let Ok(mut registry) = registry().lock() else { return };
    let stat = registry.links.entry((chain.to_string(), link.to_string())).or_default();
    stat.calls += 1;
    stat.failures += u64::from(call.failed);
    stat.seconds += call.elapsed.as_secs_f64();
    stat.fuel += call.fuel;
    stat.cache_hits += call.cache_hits;
}

/// Record how a vCon left `chain`: `completed`, `halted` or `dead_lettered`.
pub fn record_outcome(chain: &str, outcome: &'static str) {
    let Ok(mut registry) = registry().lock() else { return };
    *registry.outcomes.entry((chain.to_string(), outcome)).or_default() += 1;
}

/// One metric family over link stats: name, type, help, and how to read the value.
type Family = (&'static str, &'static str, &'static str, fn(&LinkStat) -> String);

fn label(value: &str) -> String {
    value.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

/// Every metric in the Prometheus text exposition format.
pub fn render_prometheus() -> String {
    let Ok(registry) = registry().lock() else { return String::new() };
    let mut out = String::new();
    let families: [Family; 5] = [
        ("conserver_link_calls_total", "counter", "Link calls.", |s| s.calls.to_string()),
        ("conserver_link_failures_total", "counter", "Link calls that failed.", |s| s.failures.to_string()),
        ("conserver_link_execution_seconds_total", "counter", "Time spent in link calls.", |s| {
            format!("{:.6}", s.seconds)
        }),
        ("conserver_link_fuel_total", "counter", "Fuel used by link calls.", |s| s.fuel.to_string()),
        ("conserver_link_cache_hits_total", "counter", "Link cache reads that found a value (cache_hit).", |s| {
            s.cache_hits.to_string()
        }),
    ];
    for (name, kind, help, value) in families {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
        for ((chain, link), stat) in &registry.links {
            let _ = writeln!(out, "{name}{{chain=\"{}\",link=\"{}\"}} {}", label(chain), label(link), value(stat));
        }
    }
    let name = "conserver_vcons_processed_total";
    let _ = writeln!(out, "# HELP {name} vCons that left a chain, by outcome.\n# TYPE {name} counter");
    for ((chain, outcome), count) in &registry.outcomes {
        let _ = writeln!(out, "{name}{{chain=\"{}\",outcome=\"{outcome}\"}} {count}", label(chain));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn calls_are_summed_per_chain_and_link() {
        let call =
            |ms, fuel, failed, cache_hits| LinkCall { elapsed: Duration::from_millis(ms), fuel, failed, cache_hits };
        record_link_call("metrics-test", "tag", call(2, 100, false, 2));
        record_link_call("metrics-test", "tag", call(3, 50, true, 0));
        record_outcome("metrics-test", "completed");
        let text = render_prometheus();
        assert!(text.contains("conserver_link_calls_total{chain=\"metrics-test\",link=\"tag\"} 2"), "{text}");
        assert!(text.contains("conserver_link_failures_total{chain=\"metrics-test\",link=\"tag\"} 1"));
        assert!(text.contains("conserver_link_execution_seconds_total{chain=\"metrics-test\",link=\"tag\"} 0.005"));
        assert!(text.contains("conserver_link_fuel_total{chain=\"metrics-test\",link=\"tag\"} 150"));
        assert!(text.contains("conserver_link_cache_hits_total{chain=\"metrics-test\",link=\"tag\"} 2"));
        assert!(text.contains("conserver_vcons_processed_total{chain=\"metrics-test\",outcome=\"completed\"} 1"));
    }
}
