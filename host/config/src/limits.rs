//! Sandbox limits for link calls: defaults for every link (`wasm.limits`) and
//! per-link overrides (`links.<name>.limits`).

use serde::{Deserialize, Serialize};

/// The limits one link call runs under.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
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

    /// These limits with the fields of `over` that are set replacing them.
    pub fn with(self, over: &LimitsOverride) -> Self {
        Self {
            fuel: over.fuel.unwrap_or(self.fuel),
            memory_bytes: over.memory_bytes.unwrap_or(self.memory_bytes),
            timeout_ms: over.timeout_ms.unwrap_or(self.timeout_ms),
        }
    }
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            fuel: Self::default_fuel(),
            memory_bytes: Self::default_memory_bytes(),
            timeout_ms: Self::default_timeout_ms(),
        }
    }
}

/// Per-link limit overrides; unset fields take the `wasm.limits` value.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LimitsOverride {
    /// Fuel budget per call.
    pub fuel: Option<u64>,
    /// Memory cap in bytes.
    pub memory_bytes: Option<u64>,
    /// Deadline in milliseconds.
    pub timeout_ms: Option<u64>,
}

/// The top-level `wasm:` section (not in Python configs; all optional).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WasmSection {
    /// Default limits for every link call.
    #[serde(default)]
    pub limits: Limits,
}
