//! Process-wide processing metrics, kept in memory and rendered in the Prometheus
//! text format for `GET /metrics`: per link and chain, how many calls, how long
//! they took in total, how much fuel they used and how many failed; per chain, how
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
pub fn record_link_call(chain: &str, link: &str, elapsed: Duration, fuel: u64, failed: bool) {
    let Ok(mut registry) = registry().lock() else { return };
    let stat = registry.links.entry((chain.to_string(), link.to_string())).or_default();
    stat.calls += 1;
    stat.failures += u64::from(failed);
    stat.seconds += elapsed.as_secs_f64();
    stat.fuel += fuel;
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
    let families: [Family; 4] = [
        ("conserver_link_calls_total", "counter", "Link calls.", |s| s.calls.to_string()),
        ("conserver_link_failures_total", "counter", "Link calls that failed.", |s| s.failures.to_string()),
        ("conserver_link_execution_seconds_total", "counter", "Time spent in link calls.", |s| {
            format!("{:.6}", s.seconds)
        }),
        ("conserver_link_fuel_total", "counter", "Fuel used by link calls.", |s| s.fuel.to_string()),
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
        record_link_call("metrics-test", "tag", Duration::from_millis(2), 100, false);
        record_link_call("metrics-test", "tag", Duration::from_millis(3), 50, true);
        record_outcome("metrics-test", "completed");
        let text = render_prometheus();
        assert!(text.contains("conserver_link_calls_total{chain=\"metrics-test\",link=\"tag\"} 2"), "{text}");
        assert!(text.contains("conserver_link_failures_total{chain=\"metrics-test\",link=\"tag\"} 1"));
        assert!(text.contains("conserver_link_execution_seconds_total{chain=\"metrics-test\",link=\"tag\"} 0.005"));
        assert!(text.contains("conserver_link_fuel_total{chain=\"metrics-test\",link=\"tag\"} 150"));
        assert!(text.contains("conserver_vcons_processed_total{chain=\"metrics-test\",outcome=\"completed\"} 1"));
    }
}
