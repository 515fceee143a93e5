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
    /// The host could not set the call up (instance pool exhausted, …).
    Host {
        /// What failed.
        message: String,
    },
}

impl LinkFailure {
    /// Whether trying again later may succeed.
    pub fn is_retryable(&self) -> bool {
        match self {
            Self::Refused { retryable, .. } => *retryable,
            Self::Timeout { .. } | Self::Host { .. } => true,
            Self::FuelExhausted { .. } | Self::MemoryLimit { .. } | Self::Trap { .. } | Self::InvalidOutput { .. } => {
                false
            }
        }
    }

    /// A short stable name for metrics: `fuel`, `timeout`, `memory`, `trap`,
    /// `error`, `invalid_output`, `host`.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::FuelExhausted { .. } => "fuel",
            Self::Timeout { .. } => "timeout",
            Self::MemoryLimit { .. } => "memory",
            Self::Trap { .. } => "trap",
            Self::Refused { .. } => "error",
            Self::InvalidOutput { .. } => "invalid_output",
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
            Self::Host { message } => write!(f, "host error: {message}"),
        }
    }
}
