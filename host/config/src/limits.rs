//! Sandbox limits for link calls: defaults for every link (`wasm.limits`) and
//! per-link overrides (`links.<name>.limits`).

use serde::{Deserialize, Serialize};

/// The limits one link call runs under.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Limits {
    /// Fuel budget per call (roughly one unit per wasm instruction). A call that
    /// uses it up fails with "fuel exhausted". Default 10 000 000 000.
    #[serde(default = "Limits::default_fuel")]
    pub fuel: u64,
    /// Largest linear memory a call may grow to, in bytes. Default 134 217 728
    /// (128 MiB).
    #[serde(default = "Limits::default_memory_bytes")]
    pub memory_bytes: u64,
    /// Wall-clock deadline per call, in milliseconds, including time blocked in
    /// host calls. Default 30 000.
    #[serde(default = "Limits::default_timeout_ms")]
    pub timeout_ms: u64,
    /// Bytes a link may keep in its cache, counted over all its live entries
    /// (each counts its key, its value and 64 bytes); expired entries count for
    /// up to 10 minutes past their expiry. A `cache.set` that would go past it
    /// fails the call with budget `cache_bytes`. Default 16 777 216 (16 MiB).
    #[serde(default = "Limits::default_cache_bytes")]
    pub cache_bytes: u64,
    /// Largest value one cache entry may hold, in bytes; a larger `cache.set`
    /// is refused (the link gets the error). Default 1 048 576 (1 MiB).
    #[serde(default = "Limits::default_cache_value_bytes")]
    pub cache_value_bytes: u64,
    /// Longest time to live of a cache entry, in seconds (also what a link's
    /// `ttl 0` means); longer requests are shortened to it. At most 86 400 (a
    /// day; larger values count as 86 400). Default 86 400.
    #[serde(default = "Limits::default_cache_ttl_secs")]
    pub cache_ttl_secs: u64,
    /// Longest audio the host decodes from one recording for a media call, in
    /// seconds of audio (it bounds decoding work and the host memory of a
    /// split: 4 bytes per millisecond). A longer recording fails the call with
    /// budget `media_decode_secs`. Decoding also stops at the call's deadline.
    /// Default 14 400 (4 hours).
    #[serde(default = "Limits::default_media_decode_secs")]
    pub media_decode_secs: u64,
    /// Bytes of recordings a call may have the host fetch or decode from inline
    /// bodies, over all the dialogs it asks for (each recording is kept for the
    /// rest of the call, and one recording is at most 256 MiB). A `media`
    /// request that would go past it fails the call with budget `media_bytes`.
    /// Default 536 870 912 (512 MiB).
    #[serde(default = "Limits::default_media_bytes")]
    pub media_bytes: u64,
    /// Resources a call may hold at once in its host-side table: `wasi:http`
    /// fields, requests, bodies and responses, streams, pollables, media chunk
    /// readers. Counted after every host call; going past it fails the call with
    /// budget `host_resources`. Default 1 024 (an HTTP request needs about a
    /// dozen at its peak).
    #[serde(default = "Limits::default_host_resources")]
    pub host_resources: u64,
    /// Bytes a call may hold on the host side through those resources,
    /// measured after every host call: header names and values (with their
    /// in-memory overhead), request paths and authorities, 128 KiB for each
    /// outgoing body's buffer and 256 KiB for each response in flight (its
    /// connection's buffers). Going past it fails the call with budget
    /// `host_resource_bytes`. It also caps one `get-random-bytes` request.
    /// Default 16 777 216 (16 MiB).
    #[serde(default = "Limits::default_host_resource_bytes")]
    pub host_resource_bytes: u64,
    /// Largest vCon a link may return, in bytes of JSON, checked before it is
    /// parsed (route-to list names count too). Going past it fails the call
    /// with budget `output_bytes`. Default 33 554 432 (32 MiB, the API's
    /// `CONSERVER_MAX_BODY_BYTES`, so every stored vCon can be posted again).
    #[serde(default = "Limits::default_output_bytes")]
    pub output_bytes: u64,
    /// Deepest nesting of arrays and objects in a returned vCon, checked by a
    /// scan before it is parsed. Going past it fails the call with budget
    /// `output_depth`. Default 64: real vCons nest under 15 levels, and half of
    /// serde_json's recursion limit (127 levels) leaves room for envelopes
    /// (API lists, DLQ entries) around a stored vCon; Python's is about 1 000.
    #[serde(default = "Limits::default_output_depth")]
    pub output_depth: u64,
    /// Most JSON values (containers, array elements and object members) in a
    /// returned vCon, counted by the same scan: it bounds the memory of the
    /// parse after the call (a parsed value costs 16–40 times its text).
    /// Going past it fails the call with budget `output_values`. Default
    /// 1 000 000 (the API's `CONSERVER_MAX_JSON_VALUES`).
    #[serde(default = "Limits::default_output_values")]
    pub output_values: u64,
    /// Log lines a call may write: the link's own `log` calls and every host
    /// warning it causes (secrets or HTTP requests denied, cache failures, …).
    /// Further lines are dropped, not written; one summary line per call says
    /// how many, and `conserver_link_limit_breaches_total{kind="log_lines"}`
    /// counts the call. The call itself goes on. Default 100.
    #[serde(default = "Limits::default_log_lines")]
    pub log_lines: u64,
    /// Bytes of log text a call may write, counted like `log_lines` (each line
    /// is also cut at 4 KiB). Further lines are dropped with the same summary;
    /// the metric's kind is `log_bytes`. Default 65 536 (64 KiB).
    #[serde(default = "Limits::default_log_bytes")]
    pub log_bytes: u64,
}

impl Limits {
    fn default_fuel() -> u64 {
        10_000_000_000
    }
    fn default_memory_bytes() -> u64 {
        128 * 1024 * 1024
    }
    fn default_timeout_ms() -> u64 {
        30_000
    }
    fn default_cache_bytes() -> u64 {
        16 * 1024 * 1024
    }
    fn default_cache_value_bytes() -> u64 {
        1024 * 1024
    }
    fn default_cache_ttl_secs() -> u64 {
        24 * 60 * 60
    }
    fn default_media_decode_secs() -> u64 {
        4 * 60 * 60
    }
    fn default_media_bytes() -> u64 {
        512 * 1024 * 1024
    }

    fn default_host_resources() -> u64 {
        1024
    }
    fn default_host_resource_bytes() -> u64 {
        16 * 1024 * 1024
    }
    fn default_output_bytes() -> u64 {
        32 * 1024 * 1024
    }
    fn default_output_depth() -> u64 {
        64
    }
    fn default_output_values() -> u64 {
        1_000_000
    }
    fn default_log_lines() -> u64 {
        100
    }
    fn default_log_bytes() -> u64 {
        64 * 1024
    }

    /// These limits with the fields of `over` that are set replacing them.
    pub fn with(self, over: &LimitsOverride) -> Self {
        Self {
            fuel: over.fuel.unwrap_or(self.fuel),
            memory_bytes: over.memory_bytes.unwrap_or(self.memory_bytes),
            timeout_ms: over.timeout_ms.unwrap_or(self.timeout_ms),
            cache_bytes: over.cache_bytes.unwrap_or(self.cache_bytes),
            cache_value_bytes: over.cache_value_bytes.unwrap_or(self.cache_value_bytes),
            cache_ttl_secs: over.cache_ttl_secs.unwrap_or(self.cache_ttl_secs),
            media_decode_secs: over.media_decode_secs.unwrap_or(self.media_decode_secs),
            media_bytes: over.media_bytes.unwrap_or(self.media_bytes),
            host_resources: over.host_resources.unwrap_or(self.host_resources),
            host_resource_bytes: over.host_resource_bytes.unwrap_or(self.host_resource_bytes),
            output_bytes: over.output_bytes.unwrap_or(self.output_bytes),
            output_depth: over.output_depth.unwrap_or(self.output_depth),
            output_values: over.output_values.unwrap_or(self.output_values),
            log_lines: over.log_lines.unwrap_or(self.log_lines),
            log_bytes: over.log_bytes.unwrap_or(self.log_bytes),
        }
    }
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            fuel: Self::default_fuel(),
            memory_bytes: Self::default_memory_bytes(),
            timeout_ms: Self::default_timeout_ms(),
            cache_bytes: Self::default_cache_bytes(),
            cache_value_bytes: Self::default_cache_value_bytes(),
            cache_ttl_secs: Self::default_cache_ttl_secs(),
            media_decode_secs: Self::default_media_decode_secs(),
            media_bytes: Self::default_media_bytes(),
            host_resources: Self::default_host_resources(),
            host_resource_bytes: Self::default_host_resource_bytes(),
            output_bytes: Self::default_output_bytes(),
            output_depth: Self::default_output_depth(),
            output_values: Self::default_output_values(),
            log_lines: Self::default_log_lines(),
            log_bytes: Self::default_log_bytes(),
        }
    }
}

/// Per-link limit overrides; unset fields take the `wasm.limits` value.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LimitsOverride {
    /// Fuel budget per call.
    pub fuel: Option<u64>,
    /// Memory cap in bytes.
    pub memory_bytes: Option<u64>,
    /// Deadline in milliseconds.
    pub timeout_ms: Option<u64>,
    /// Cache bytes the link may keep (see `wasm.limits.cache_bytes`).
    pub cache_bytes: Option<u64>,
    /// Largest cache value in bytes.
    pub cache_value_bytes: Option<u64>,
    /// Longest cache time to live in seconds.
    pub cache_ttl_secs: Option<u64>,
    /// Longest audio decoded from one recording, in seconds.
    pub media_decode_secs: Option<u64>,
    /// Bytes of recordings a call may have fetched, over all its dialogs.
    pub media_bytes: Option<u64>,
    /// Live host resources a call may hold (see `wasm.limits.host_resources`).
    pub host_resources: Option<u64>,
    /// Bytes a call may hold on the host side through its resources.
    pub host_resource_bytes: Option<u64>,
    /// Largest returned vCon, in bytes.
    pub output_bytes: Option<u64>,
    /// Deepest nesting of a returned vCon.
    pub output_depth: Option<u64>,
    /// Most JSON values in a returned vCon.
    pub output_values: Option<u64>,
    /// Log lines per call.
    pub log_lines: Option<u64>,
    /// Bytes of log text per call.
    pub log_bytes: Option<u64>,
}

/// The top-level `wasm:` section (not in Python configs; all optional).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct WasmSection {
    /// Default limits for every link call.
    #[serde(default)]
    pub limits: Limits,
    /// Media decoding jobs (probe, split, next chunk) that may run at once in
    /// this process, across every worker and link; further jobs wait for a
    /// free slot within their call's deadline. Read at start (a reload does not
    /// change it). Default: the number of CPU cores.
    #[serde(default)]
    pub media_concurrency: Option<u32>,
}

impl WasmSection {
    /// `media_concurrency`, or the number of CPU cores when unset (at least 1).
    pub fn media_concurrency(&self) -> usize {
        match self.media_concurrency {
            Some(slots) => usize::try_from(slots).unwrap_or(usize::MAX).max(1),
            None => std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get),
        }
    }
}
