//! Why a vCon landed in the dead-letter queue, as stored beside the Python-compatible
//! `DLQ:{ingress}` list so an operator can see the cause.

use serde::{Deserialize, Serialize};

/// The reason recorded for one dead-lettered vCon.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DlqReason {
    /// The uuid that was dead-lettered.
    pub uuid: String,
    /// The chain that was running.
    pub chain: String,
    /// The link (or `storage:<name>`, or the pipeline step) that failed.
    pub link: String,
    /// What went wrong, e.g. `fuel exhausted (budget 1000000)` or the link's message.
    pub error: String,
    /// Whether retrying may help.
    pub retryable: bool,
    /// How many times this uuid has been dead-lettered from this list.
    pub attempts: u32,
    /// When, RFC 3339 UTC.
    pub at: String,
}
