//! Core types shared by every conserver crate: the vCon as received (validated and
//! normalised once at the edge), uuids in canonical form, and the reason a vCon was
//! dead-lettered. Nothing here does I/O.

mod dlq;
mod error;
mod ingest;

pub use dlq::DlqReason;
pub use error::VconError;
pub use ingest::{IngestedVcon, canonical_uuid, ingest_vcon};
