//! The error a link returns when it cannot process a vCon.

use crate::bindings::vcon::conserver0_1_0::types as wit;

/// A failure reported by the link. The host sends the vCon to the dead-letter queue
/// with [`LinkError::message`] as the reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkError {
    /// What went wrong, written for the operator reading the DLQ.
    pub message: String,
    /// Whether trying again later may succeed (a remote service was down) rather
    /// than fail the same way (the vCon is malformed).
    pub retryable: bool,
}

impl LinkError {
    /// A failure that will happen again on retry (bad input, bad options).
    pub fn fatal(message: impl Into<String>) -> Self {
        Self { message: message.into(), retryable: false }
    }

    /// A failure that may go away on retry (timeouts, 5xx from a service).
    pub fn retryable(message: impl Into<String>) -> Self {
        Self { message: message.into(), retryable: true }
    }

    pub(crate) fn into_wit(self) -> wit::LinkError {
        wit::LinkError { message: self.message, retryable: self.retryable }
    }
}

impl std::fmt::Display for LinkError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for LinkError {}

impl From<crate::VconError> for LinkError {
    fn from(e: crate::VconError) -> Self {
        Self::fatal(e.to_string())
    }
}
