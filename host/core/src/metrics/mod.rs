//! Processing, storage, queue and API metrics, recorded once and exposed two ways:
//! on `GET /metrics` in the Prometheus text format ([`render_prometheus`]) and,
//! when the binary installs an OTLP meter ([`install_meter`]), as OpenTelemetry
//! instruments with the Python conserver's names and attributes
//! (reference/engine.md §5.2). [`families`] lists them all.

pub mod families;
mod otel;
mod prometheus;

use std::time::Duration;

use families as f;
pub use otel::install as install_meter;
use prometheus::Labels;

/// How a link call ended, as the metrics see it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LinkStatus {
    /// The link let the vCon continue.
    #[default]
    Ok,
    /// The link halted the chain (the deployment guide's `skipped`).
    Skipped,
    /// The call failed; the failure's short kind (`trap`, `error`,
    /// `invalid_output`, `host`).
    Error(&'static str),
    /// The call was stopped by a sandbox limit or budget; its name (`fuel`,
    /// `timeout`, `memory`, `output_bytes`, `log_lines`, …). Counted in
    /// `conserver_link_limit_breaches_total` as well as a failed call.
    LimitBreach(&'static str),
}

impl LinkStatus {
    /// The deployment guide's `status` attribute: `ok`, `skipped` or `error`.
    pub fn status(self) -> &'static str {
        match self {
            Self::Ok => "ok",
            Self::Skipped => "skipped",
            Self::Error(_) | Self::LimitBreach(_) => "error",
        }
    }

    /// The Python conserver's `outcome` attribute: `success`, `halt` or `error`.
    pub fn outcome(self) -> &'static str {
        match self {
            Self::Ok => "success",
            Self::Skipped => "halt",
            Self::Error(_) | Self::LimitBreach(_) => "error",
        }
    }
}

/// One finished link call.
#[derive(Debug, Clone, Copy, Default)]
pub struct LinkCall {
    /// Wall time of the call.
    pub elapsed: Duration,
    /// Fuel it used.
    pub fuel: u64,
    /// Peak linear memory of its instance, in bytes (0 if unknown).
    pub memory_peak_bytes: u64,
    /// How it ended.
    pub status: LinkStatus,
    /// Cache reads that found a value.
    pub cache_hits: u64,
}

fn add(family: &f::Family, labels: Labels, delta: f64) {
    if otel::enabled() {
        otel::add(family, &labels, delta);
    }
    prometheus::add(family, labels, delta);
}

fn observe(family: &f::Family, labels: Labels, value: f64) {
    if otel::enabled() {
        otel::observe(family, &labels, value);
    }
    prometheus::observe(family, labels, value);
}

/// Record one call of `link` in `chain`.
pub fn record_link_call(chain: &str, link: &str, call: LinkCall) {
    let pair = || vec![("link_name", link.to_string()), ("chain.name", chain.to_string())];
    if !matches!(call.status, LinkStatus::Error(_) | LinkStatus::LimitBreach(_)) {
        let labels = vec![("link.name", link.to_string()), ("chain.name", chain.to_string())];
        observe(&f::LINK_EXECUTION_TIME, labels, call.elapsed.as_secs_f64());
    }
    add(&f::LINK_COUNT, vec![("link_name", link.to_string()), ("outcome", call.status.outcome().to_string())], 1.0);
    let mut labels = pair();
    labels.push(("status", call.status.status().to_string()));
    labels.push(("cache_hit", (call.cache_hits > 0).to_string()));
    observe(&f::LINK_DURATION, labels, call.elapsed.as_secs_f64() * 1000.0);
    if call.cache_hits > 0 {
        add(&f::LINK_CACHE_HITS, pair(), call.cache_hits as f64);
    }
    // A failed call reports neither (a breach is counted below instead).
    if !matches!(call.status, LinkStatus::Error(_) | LinkStatus::LimitBreach(_)) {
        observe(&f::LINK_FUEL_USED, pair(), call.fuel as f64);
        if call.memory_peak_bytes > 0 {
            observe(&f::LINK_MEMORY_PEAK, pair(), call.memory_peak_bytes as f64);
        }
    }
    if let LinkStatus::LimitBreach(kind) = call.status {
        let mut labels = pair();
        labels.push(("kind", kind.to_string()));
        add(&f::LINK_LIMIT_BREACHES, labels, 1.0);
    }
}

/// Count a budget of a call of `link` in `chain` that was used up without
/// failing the call (`log_lines`, `log_bytes`: the lines past it were dropped),
/// in `conserver_link_limit_breaches_total{kind}` beside the breaches that did.
pub fn record_budget_used_up(chain: &str, link: &str, kind: &'static str) {
    let labels = vec![("link_name", link.to_string()), ("chain.name", chain.to_string()), ("kind", kind.to_string())];
    add(&f::LINK_LIMIT_BREACHES, labels, 1.0);
}

/// Record how a vCon left `chain` (`completed`, `halted` or `dead_lettered`) and
/// how long it took. Completed and halted runs count as processed, as in Python.
pub fn record_outcome(chain: &str, outcome: &'static str, elapsed: Duration) {
    let chain_label = || vec![("chain.name", chain.to_string())];
    add(&f::VCONS_OUTCOME, vec![("chain.name", chain.to_string()), ("outcome", outcome.to_string())], 1.0);
    if outcome != "dead_lettered" {
        add(&f::VCONS_PROCESSED, chain_label(), 1.0);
        observe(&f::VCON_PROCESSING_TIME, chain_label(), elapsed.as_secs_f64());
    }
}

/// `chain` met a signed or encrypted vCon (`form` `signed`|`encrypted`) and
/// passed it on as `outcome` (`links_skipped`, `unchanged` or `successor`).
pub fn record_sealed(chain: &str, form: &'static str, outcome: &'static str) {
    let labels = vec![("chain.name", chain.to_string()), ("form", form.to_string()), ("outcome", outcome.to_string())];
    add(&f::VCONS_SEALED, labels, 1.0);
}

/// A worker popped a vCon from `ingress_list`.
pub fn record_received(ingress_list: &str) {
    add(&f::VCONS_RECEIVED, vec![("ingress_list", ingress_list.to_string())], 1.0);
}

/// A vCon entered (`+1`) or left (`-1`) `chain`.
pub fn record_inflight(chain: &str, delta: i32) {
    add(&f::VCONS_INFLIGHT, vec![("chain.name", chain.to_string())], f64::from(delta));
}

/// One storage write to `backend` (the storage's name) ended.
pub fn record_storage(backend: &str, succeeded: bool, elapsed: Duration) {
    let labels =
        || vec![("backend", backend.to_string()), ("outcome", if succeeded { "success" } else { "error" }.to_string())];
    add(&f::STORAGE_COUNT, labels(), 1.0);
    observe(&f::STORAGE_DURATION, labels(), elapsed.as_secs_f64() * 1000.0);
}

/// A vCon was pushed to the dead-letter queue `queue_name` (`DLQ:{ingress}`).
pub fn record_dlq(queue_name: &str) {
    add(&f::DLQ_COUNT, vec![("queue_name", queue_name.to_string())], 1.0);
}

/// The API pushed a vCon to `ingress_list`; `source` is `new`, `external`,
/// `reingress` or `dlq_reprocess`.
pub fn record_enqueued(ingress_list: &str, source: &'static str, count: u64) {
    add(
        &f::API_ENQUEUED,
        vec![("ingress_list", ingress_list.to_string()), ("source", source.to_string())],
        count as f64,
    );
}

/// Replace the queue-length gauges: `(list, kind, length)` with kind `ingress` or `dlq`.
pub fn set_queue_lengths(lengths: &[(String, &'static str, u64)]) {
    let series = lengths
        .iter()
        .map(|(list, kind, length)| {
            (vec![("ingress_list", list.clone()), ("kind", (*kind).to_string())], *length as f64)
        })
        .collect();
    prometheus::replace_gauges(&f::INGRESS_LIST_LENGTH, series);
}

/// Set Redis's `used_memory` gauge.
pub fn set_redis_memory(bytes: u64) {
    prometheus::set(&f::REDIS_MEMORY, Vec::new(), bytes as f64);
}

/// Every metric in the Prometheus text exposition format.
pub fn render_prometheus() -> String {
    prometheus::render()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn call(ms: u64, fuel: u64, status: LinkStatus, cache_hits: u64) -> LinkCall {
        LinkCall { elapsed: Duration::from_millis(ms), fuel, memory_peak_bytes: 2 << 20, status, cache_hits }
    }

    #[test]
    fn link_calls_carry_python_and_guide_attributes() {
        record_link_call("metrics-test", "tag", call(2, 100, LinkStatus::Ok, 2));
        record_link_call("metrics-test", "tag", call(3, 50, LinkStatus::LimitBreach("fuel"), 0));
        record_link_call("metrics-test", "tag", call(1, 10, LinkStatus::Skipped, 0));
        let text = render_prometheus();
        for expected in [
            "conserver_link_count_total{link_name=\"tag\",outcome=\"success\"} 1",
            "conserver_link_count_total{link_name=\"tag\",outcome=\"error\"} 1",
            "conserver_link_count_total{link_name=\"tag\",outcome=\"halt\"} 1",
            "conserver_link_execution_time_seconds_count{link_name=\"tag\",chain_name=\"metrics-test\"} 2",
            "conserver_link_duration_ms_count{link_name=\"tag\",chain_name=\"metrics-test\",status=\"error\",cache_hit=\"false\"} 1",
            "conserver_link_duration_ms_count{link_name=\"tag\",chain_name=\"metrics-test\",status=\"ok\",cache_hit=\"true\"} 1",
            "conserver_link_duration_ms_count{link_name=\"tag\",chain_name=\"metrics-test\",status=\"skipped\",cache_hit=\"false\"} 1",
            "conserver_link_cache_hits_total{link_name=\"tag\",chain_name=\"metrics-test\"} 2",
            "conserver_link_fuel_used_sum{link_name=\"tag\",chain_name=\"metrics-test\"} 110",
            "conserver_link_memory_peak_bytes_bucket{link_name=\"tag\",chain_name=\"metrics-test\",le=\"4194304\"} 2",
            "conserver_link_limit_breaches_total{link_name=\"tag\",chain_name=\"metrics-test\",kind=\"fuel\"} 1",
        ] {
            assert!(text.contains(expected), "missing `{expected}` in\n{text}");
        }
    }

    #[test]
    fn budgets_used_up_without_failing_count_as_breaches() {
        record_budget_used_up("metrics-test-logs", "chatty", "log_lines");
        record_budget_used_up("metrics-test-logs", "chatty", "log_lines");
        let text = render_prometheus();
        let expected = "conserver_link_limit_breaches_total{link_name=\"chatty\",chain_name=\"metrics-test-logs\",kind=\"log_lines\"} 2";
        assert!(text.contains(expected), "missing `{expected}` in\n{text}");
    }

    #[test]
    fn histogram_buckets_are_cumulative() {
        record_storage("metrics-test-store", true, Duration::from_millis(7));
        record_storage("metrics-test-store", true, Duration::from_millis(300));
        let text = render_prometheus();
        let bucket = |le: &str| {
            format!(
                "conserver_storage_duration_ms_bucket{{backend=\"metrics-test-store\",outcome=\"success\",le=\"{le}\"}}"
            )
        };
        assert!(text.contains(&format!("{} 0", bucket("5"))), "{text}");
        assert!(text.contains(&format!("{} 1", bucket("10"))), "{text}");
        assert!(text.contains(&format!("{} 2", bucket("500"))), "{text}");
        assert!(text.contains(&format!("{} 2", bucket("+Inf"))), "{text}");
        assert!(text.contains("conserver_storage_count_total{backend=\"metrics-test-store\",outcome=\"success\"} 2"));
    }

    #[test]
    fn outcomes_count_processed_only_when_not_dead_lettered() {
        record_outcome("metrics-outcome", "completed", Duration::from_millis(5));
        record_outcome("metrics-outcome", "dead_lettered", Duration::from_millis(5));
        let text = render_prometheus();
        assert!(
            text.contains(
                "conserver_vcons_processed_total{chain_name=\"metrics-outcome\",outcome=\"dead_lettered\"} 1"
            )
        );
        assert!(text.contains("conserver_main_loop_count_vcons_processed_total{chain_name=\"metrics-outcome\"} 1"));
    }
}
