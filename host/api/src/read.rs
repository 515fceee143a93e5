//! Reading and writing vCons for the API: store an ingested vCon with its indexes
//! (dropping the party terms of the version it replaces), read one with the storage
//! fallback (canonicalised and re-cached, as the Python server does; a failing
//! backend is skipped with a warning, never a 500), and shape it for egress.

use conserver_core::{EgressFormat, IngestedVcon, to_legacy_001};
use conserver_vcons::Recache;
use serde_json::Value;

use crate::ApiState;
use crate::error::ApiError;

pub use conserver_vcons::terms_of;

/// Store an accepted vCon with its indexes (see [`conserver_vcons::VconStore::ingest`]):
/// without a TTL when it is about to be enqueued (`queued`), else with
/// `VCON_REDIS_EXPIRY`, as in the Python server.
pub async fn store_ingested(state: &ApiState, vcon: &IngestedVcon, queued: bool) -> Result<(), ApiError> {
    state.vcons().ingest(vcon, queued).await.map_err(|e| ApiError::broker("Failed to store vCon", e))
}

/// Store an accepted vCon, to be enqueued, only if no document has its uuid
/// (decided atomically by the broker): `None` when stored, else the document
/// already there (nothing written).
pub async fn create_ingested(state: &ApiState, vcon: &IngestedVcon) -> Result<Option<String>, ApiError> {
    state.vcons().create(vcon).await.map_err(|e| ApiError::broker("Failed to store vCon", e))
}

/// The vCon `uuid` from the broker, else from the configured storages in order
/// (canonicalised, then re-cached and indexed). `None` when nobody has it.
pub async fn load_vcon(state: &ApiState, uuid: &str, failure: &'static str) -> Result<Option<String>, ApiError> {
    let live = state.control.live();
    state.vcons().load(uuid, &live.storages, Recache::ForReader).await.map_err(|e| ApiError::broker(failure, e))
}

/// A stored vCon as reads return it: the stored text itself, or its
/// `EGRESS_FORMAT_VERSION=0.0.1` downgrade.
pub fn for_egress(state: &ApiState, json: String) -> Result<String, ApiError> {
    if state.settings.egress_format == EgressFormat::Current {
        return Ok(json);
    }
    match serde_json::from_str::<Value>(&json) {
        Ok(Value::Object(doc)) => Ok(Value::Object(to_legacy_001(doc)).to_string()),
        Ok(_) => Ok(json),
        Err(e) => Err(ApiError::internal("Failed to read vCon", e)),
    }
}
