//! Why one link call failed, classified so the DLQ reason says what happened.

use std::fmt;

/// A failed link call. `Display` is the DLQ reason text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LinkFailure {
    /// The call used its whole fuel budget (a CPU runaway).
    FuelExhausted {
        /// The budget it had.
        budget: u64,
    },
    /// The call ran past its wall-clock deadline.
    Timeout {
        /// The deadline in milliseconds.
        timeout_ms: u64,
    },
    /// The call tried to grow its memory past the cap.
    MemoryLimit {
        /// The cap in bytes.
        limit_bytes: u64,
    },
    /// The guest trapped (a panic, an abort, an out-of-bounds access).
    Trap {
        /// The panic message from the guest's stderr, else the trap description.
        message: String,
    },
    /// The link returned an error itself.
    Refused {
        /// Its message.
        message: String,
        /// Whether it said a retry may help.
        retryable: bool,
    },
    /// The link answered with something the host cannot use.
    InvalidOutput {
        /// What is wrong with it.
        message: String,
    },
    /// The call went past one of its host-side budgets (output size, log
    /// volume, host resources, cache bytes, media decoding, …).
    Budget {
        /// Which budget.
        budget: Budget,
        /// Its limit, in the budget's unit.
        limit: u64,
    },
    /// The host could not set the call up (instance pool exhausted, …).
    Host {
        /// What failed.
        message: String,
    },
}

/// A host-side budget of one link call. Each is a limit in `wasm.limits` (and
/// `links.<name>.limits`); its breach fails the call with a DLQ reason naming it
/// and counts in `conserver_link_limit_breaches_total{kind=<name>}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Budget {
    /// `limits.output_bytes`: the size of the vCon a link returns.
    OutputBytes,
    /// `limits.output_depth`: the nesting depth of the vCon a link returns.
    OutputDepth,
    /// `limits.cache_bytes`: the bytes a link keeps in its cache.
    CacheBytes,
    /// `limits.media_decode_secs`: the audio decoded from one recording.
    MediaDecodeSecs,
    /// `limits.media_bytes`: the recordings one call had the host fetch.
    MediaBytes,
    /// `limits.output_values`: the JSON values in the vCon a link returns.
    OutputValues,
    /// `limits.host_resources`: the resources a call holds in its host table.
    HostResources,
    /// `limits.host_resource_bytes`: the bytes a call holds on the host side.
    HostResourceBytes,
    /// `limits.log_lines`: the log lines a call writes (lines past it are
    /// dropped; the call does not fail).
    LogLines,
    /// `limits.log_bytes`: the bytes of log text a call writes (as `LogLines`).
    LogBytes,
}

impl Budget {
    /// The budget's name: its `limits` field and its metric `kind`.
    pub fn name(self) -> &'static str {
        match self {
            Self::OutputBytes => "output_bytes",
            Self::OutputDepth => "output_depth",
            Self::CacheBytes => "cache_bytes",
            Self::MediaDecodeSecs => "media_decode_secs",
            Self::MediaBytes => "media_bytes",
            Self::OutputValues => "output_values",
            Self::HostResources => "host_resources",
            Self::HostResourceBytes => "host_resource_bytes",
            Self::LogLines => "log_lines",
            Self::LogBytes => "log_bytes",
        }
    }

    /// The unit its limit is counted in, for the DLQ reason.
    pub fn unit(self) -> &'static str {
        match self {
            Self::OutputBytes => "bytes",
            Self::OutputDepth => "levels",
            Self::CacheBytes => "bytes",
            Self::MediaDecodeSecs => "seconds of audio",
            Self::MediaBytes => "bytes",
            Self::OutputValues => "values",
            Self::HostResources => "resources",
            Self::HostResourceBytes => "bytes",
            Self::LogLines => "lines",
            Self::LogBytes => "bytes",
        }
    }
}

impl LinkFailure {
    /// Whether trying again later may succeed.
    pub fn is_retryable(&self) -> bool {
        match self {
            Self::Refused { retryable, .. } => *retryable,
            Self::Timeout { .. } | Self::Host { .. } => true,
            Self::FuelExhausted { .. }
            | Self::MemoryLimit { .. }
            | Self::Trap { .. }
            | Self::InvalidOutput { .. }
            | Self::Budget { .. } => false,
        }
    }

    /// Whether a sandbox limit or budget stopped the call (counted as a breach).
    pub fn is_limit_breach(&self) -> bool {
        matches!(
            self,
            Self::FuelExhausted { .. } | Self::Timeout { .. } | Self::MemoryLimit { .. } | Self::Budget { .. }
        )
    }

    /// A short stable name for metrics: `fuel`, `timeout`, `memory`, `trap`,
    /// `error`, `invalid_output`, `host`, or the name of the budget breached.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::FuelExhausted { .. } => "fuel",
            Self::Timeout { .. } => "timeout",
            Self::MemoryLimit { .. } => "memory",
            Self::Trap { .. } => "trap",
            Self::Refused { .. } => "error",
            Self::InvalidOutput { .. } => "invalid_output",
            Self::Budget { budget, .. } => budget.name(),
            Self::Host { .. } => "host",
        }
    }
}

impl fmt::Display for LinkFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::FuelExhausted { budget } => {
                write!(
                    f,
                    "fuel exhausted: the call used its whole budget of {budget} (raise `limits.fuel` if the link is legitimately heavy)"
                )
            }
            Self::Timeout { timeout_ms } => {
                write!(
                    f,
                    "timeout: the call ran past its {timeout_ms} ms deadline (raise `limits.timeout_ms` if it is legitimately slow)"
                )
            }
            Self::MemoryLimit { limit_bytes } => {
                write!(
                    f,
                    "memory limit: the call tried to grow past {limit_bytes} bytes (raise `limits.memory_bytes` if needed)"
                )
            }
            Self::Trap { message } => write!(f, "trap: {message}"),
            Self::Refused { message, .. } => write!(f, "link error: {message}"),
            Self::InvalidOutput { message } => write!(f, "invalid output: {message}"),
            Self::Budget { budget, limit } => {
                let (name, unit) = (budget.name(), budget.unit());
                write!(
                    f,
                    "budget exceeded: {name}: the call went past its limit of {limit} {unit} (raise `limits.{name}` if the link legitimately needs more)"
                )
            }
            Self::Host { message } => write!(f, "host error: {message}"),
        }
    }
}
