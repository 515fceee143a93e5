//! Core types shared by every conserver crate: the vCon as received (its form,
//! validated and normalised once at the edge), uuids in canonical form, the Python
//! read-path canonicalisation and legacy egress format, and the reason a vCon was
//! dead-lettered. Nothing here does I/O.

mod canonical;
mod dlq;
mod error;
mod form;
mod ingest;
pub mod json_bound;
pub mod metrics;
mod percent;
pub mod redact;
pub mod sealed;
mod timestamp;
pub mod trace_context;
mod validate;

pub use canonical::{EgressFormat, canonicalize, normalize_legacy_fields, to_legacy_001};
pub use dlq::DlqReason;
pub use error::{Problem, VconError};
pub use form::VconForm;
pub use ingest::{IngestedVcon, canonical_uuid, index_terms, ingest_vcon};
pub use percent::percent_decode;
pub use timestamp::epoch_seconds;
pub use validate::validate;
