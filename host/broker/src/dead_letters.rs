//! The dead-letter part of the broker contract ([`DeadLetters`]).

use async_trait::async_trait;
use conserver_core::DlqReason;

use crate::Result;

/// The dead-letter queue: `DLQ:{ingress}` with a recorded reason per entry.
#[async_trait]
pub trait DeadLetters: Send + Sync {
    /// Dead-letter `reason.uuid` from `ingress`: RPUSH `DLQ:{ingress}`, record the
    /// reason (its `attempts` counts earlier dead-letterings of the same uuid), and
    /// set the vCon's TTL to `expiry_secs` when that is above 0.
    async fn dead_letter(&self, ingress: &str, reason: DlqReason, expiry_secs: u64) -> Result<()>;
    /// The recorded reasons for the entries of `DLQ:{ingress}`, oldest first.
    async fn dlq_reasons(&self, ingress: &str) -> Result<Vec<DlqReason>>;
}
