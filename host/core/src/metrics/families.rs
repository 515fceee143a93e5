//! Every metric the conserver emits, once: its OpenTelemetry name (the Python
//! conserver's, reference/engine.md §5.2, plus the deployment guide's per-link
//! attributes and the sandbox's own), the name it has on `/metrics`, its kind,
//! unit and histogram buckets.

/// What kind of instrument a family is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Only grows.
    Counter,
    /// Goes up and down (in-flight vCons).
    UpDown,
    /// A value read at collection time (queue lengths, Redis memory).
    Gauge,
    /// A distribution with fixed buckets.
    Histogram,
}

/// One metric family.
#[derive(Debug)]
pub struct Family {
    /// OpenTelemetry instrument name.
    pub otel: &'static str,
    /// Prometheus metric name (counters without their `_total`, added on render).
    pub prometheus: &'static str,
    /// What it counts.
    pub help: &'static str,
    /// Its kind.
    pub kind: Kind,
    /// UCUM unit for OpenTelemetry (`s`, `ms`, `By`, `1`).
    pub unit: &'static str,
    /// Histogram bucket upper bounds (empty for other kinds).
    pub bounds: &'static [f64],
}

const SECONDS: &[f64] = &[0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0];
const MILLIS: &[f64] =
    &[1.0, 5.0, 10.0, 25.0, 50.0, 100.0, 250.0, 500.0, 1_000.0, 2_500.0, 5_000.0, 10_000.0, 60_000.0];
const FUEL: &[f64] = &[1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11];
const BYTES: &[f64] = &[
    65_536.0,
    262_144.0,
    1_048_576.0,
    4_194_304.0,
    16_777_216.0,
    67_108_864.0,
    268_435_456.0,
    1_073_741_824.0,
    4_294_967_296.0,
];

const fn family(
    otel: &'static str,
    prometheus: &'static str,
    help: &'static str,
    kind: Kind,
    unit: &'static str,
    bounds: &'static [f64],
) -> Family {
    Family { otel, prometheus, help, kind, unit, bounds }
}

/// vCons popped from an ingress list (`ingress_list`).
pub const VCONS_RECEIVED: Family = family(
    "conserver.main_loop.count_vcons_received",
    "conserver_main_loop_count_vcons_received",
    "vCons popped from an ingress list.",
    Kind::Counter,
    "1",
    &[],
);
/// Chain run time of vCons that completed or halted (`chain.name`).
pub const VCON_PROCESSING_TIME: Family = family(
    "conserver.main_loop.vcon_processing_time",
    "conserver_main_loop_vcon_processing_time_seconds",
    "Time a vCon spent in its chain (completed or halted).",
    Kind::Histogram,
    "s",
    SECONDS,
);
/// vCons that completed or halted (`chain.name`).
pub const VCONS_PROCESSED: Family = family(
    "conserver.main_loop.count_vcons_processed",
    "conserver_main_loop_count_vcons_processed",
    "vCons whose chain ran to its end or was halted by a link.",
    Kind::Counter,
    "1",
    &[],
);
/// vCons in a chain right now (`chain.name`).
pub const VCONS_INFLIGHT: Family = family(
    "conserver.vcons.inflight",
    "conserver_vcons_inflight",
    "vCons being processed right now.",
    Kind::UpDown,
    "1",
    &[],
);
/// How each vCon left its chain (`chain.name`, `outcome` completed|halted|dead_lettered).
pub const VCONS_OUTCOME: Family = family(
    "conserver.vcons.outcome",
    "conserver_vcons_processed",
    "vCons that left a chain, by outcome (completed, halted, dead_lettered).",
    Kind::Counter,
    "1",
    &[],
);
/// Link call time when it continued or halted (`link.name`, `chain.name`).
pub const LINK_EXECUTION_TIME: Family = family(
    "conserver.link.execution_time",
    "conserver_link_execution_time_seconds",
    "Link call time (calls that continued or halted).",
    Kind::Histogram,
    "s",
    SECONDS,
);
/// Link calls (`link_name`, `outcome` success|halt|error).
pub const LINK_COUNT: Family =
    family("conserver.link.count", "conserver_link_count", "Link calls by outcome.", Kind::Counter, "1", &[]);
/// Every link call's duration with the deployment guide's attributes
/// (`link_name`, `chain.name`, `status` ok|error|skipped, `cache_hit`).
pub const LINK_DURATION: Family = family(
    "conserver.link.duration_ms",
    "conserver_link_duration_ms",
    "Link call duration by status (ok, error, skipped) and cache_hit.",
    Kind::Histogram,
    "ms",
    MILLIS,
);
/// Link cache reads that found a value (`link_name`, `chain.name`).
pub const LINK_CACHE_HITS: Family = family(
    "conserver.link.cache_hits",
    "conserver_link_cache_hits",
    "Link cache reads that found a value.",
    Kind::Counter,
    "1",
    &[],
);
/// Fuel one call used (`link_name`, `chain.name`).
pub const LINK_FUEL_USED: Family = family(
    "conserver.link.fuel_used",
    "conserver_link_fuel_used",
    "Wasm fuel used per link call.",
    Kind::Histogram,
    "1",
    FUEL,
);
/// Peak linear memory of one call (`link_name`, `chain.name`).
pub const LINK_MEMORY_PEAK: Family = family(
    "conserver.link.memory_peak_bytes",
    "conserver_link_memory_peak_bytes",
    "Peak wasm linear memory per link call.",
    Kind::Histogram,
    "By",
    BYTES,
);
/// Sandbox limits and budgets hit (`link_name`, `chain.name`, `kind`: fuel,
/// timeout, memory or a budget's name such as output_bytes or log_lines).
pub const LINK_LIMIT_BREACHES: Family = family(
    "conserver.link.limit_breaches",
    "conserver_link_limit_breaches",
    "Link calls stopped by a sandbox limit or budget, by kind (fuel, timeout, memory, output_bytes, log_lines, ...).",
    Kind::Counter,
    "1",
    &[],
);
/// Storage writes (`backend`, `outcome` success|error).
pub const STORAGE_COUNT: Family =
    family("conserver.storage.count", "conserver_storage_count", "Storage writes by outcome.", Kind::Counter, "1", &[]);
/// Storage write time (`backend`, `outcome`).
pub const STORAGE_DURATION: Family = family(
    "conserver.storage.duration_ms",
    "conserver_storage_duration_ms",
    "Storage write time.",
    Kind::Histogram,
    "ms",
    MILLIS,
);
/// vCons dead-lettered (`queue_name` = `DLQ:{ingress}`).
pub const DLQ_COUNT: Family = family(
    "conserver.dlq.count",
    "conserver_dlq_count",
    "vCons moved to a dead-letter queue.",
    Kind::Counter,
    "1",
    &[],
);
/// Queue lengths (`ingress_list`, `kind` ingress|dlq).
pub const INGRESS_LIST_LENGTH: Family = family(
    "conserver.ingress_list.length",
    "conserver_ingress_list_length",
    "Items waiting in each configured ingress list and its DLQ.",
    Kind::Gauge,
    "1",
    &[],
);
/// Redis `used_memory`.
pub const REDIS_MEMORY: Family = family(
    "conserver.redis.memory_used_bytes",
    "conserver_redis_memory_used_bytes",
    "Redis used_memory (Redis broker only).",
    Kind::Gauge,
    "By",
    &[],
);
/// vCons enqueued by the API (`ingress_list`, `source` new|external|reingress|dlq_reprocess).
pub const API_ENQUEUED: Family = family(
    "conserver.api.count_vcons_enqueued",
    "conserver_api_count_vcons_enqueued",
    "vCons the API pushed to an ingress list, by source.",
    Kind::Counter,
    "1",
    &[],
);

/// Signed and encrypted vCons met by a chain (`chain.name`, `form`
/// signed|encrypted, `outcome` links_skipped|unchanged|successor).
pub const VCONS_SEALED: Family = family(
    "conserver.vcons.sealed",
    "conserver_vcons_sealed",
    "Signed or encrypted vCons a chain met: encrypted ones pass with the links skipped; signed ones pass unchanged or as an unsigned successor.",
    Kind::Counter,
    "1",
    &[],
);

/// Every family, in `/metrics` order.
pub const ALL: &[&Family] = &[
    &VCONS_RECEIVED,
    &VCON_PROCESSING_TIME,
    &VCONS_PROCESSED,
    &VCONS_INFLIGHT,
    &VCONS_OUTCOME,
    &VCONS_SEALED,
    &LINK_EXECUTION_TIME,
    &LINK_COUNT,
    &LINK_DURATION,
    &LINK_CACHE_HITS,
    &LINK_FUEL_USED,
    &LINK_MEMORY_PEAK,
    &LINK_LIMIT_BREACHES,
    &STORAGE_COUNT,
    &STORAGE_DURATION,
    &DLQ_COUNT,
    &INGRESS_LIST_LENGTH,
    &REDIS_MEMORY,
    &API_ENQUEUED,
];
