//! Reading and writing vCons for the API: store an ingested vCon with its indexes
//! (dropping the party terms of the version it replaces), read one with the storage
//! fallback (canonicalised and re-cached, as the Python server does; a failing
//! backend is skipped with a warning, never a 500), and shape it for egress.

use conserver_broker::Ttl;
use conserver_core::{EgressFormat, IngestedVcon, epoch_seconds, index_terms, to_legacy_001};
use serde_json::{Map, Value};

use crate::ApiState;
use crate::error::ApiError;

/// The party search terms of a stored document (none for signed/encrypted forms).
pub fn terms_of(json: &str) -> Vec<String> {
    serde_json::from_str::<Map<String, Value>>(json).map(|doc| index_terms(&doc)).unwrap_or_default()
}

/// Store an accepted vCon: the document, its place in the vCon list and its party
/// search terms, in one broker round trip; then drop the party terms of the
/// version it replaced that this one no longer has. A vCon that is about to be
/// enqueued (`queued`) is stored without a TTL so it cannot expire while it waits;
/// the worker gives it `VCON_REDIS_EXPIRY` when its chain is done. Otherwise it gets
/// `VCON_REDIS_EXPIRY` now, as in the Python server.
pub async fn store_ingested(state: &ApiState, vcon: &IngestedVcon, queued: bool) -> Result<(), ApiError> {
    let failed = |e: conserver_broker::BrokerError| ApiError::broker("Failed to store vCon", e);
    let ttl = if queued { Ttl::Secs(0) } else { Ttl::Secs(state.settings.vcon_expiry_secs) };
    let previous = state
        .broker
        .store_vcon(
            &vcon.uuid,
            &vcon.json,
            ttl,
            vcon.created_at.floor(),
            &vcon.index_terms,
            state.settings.index_expiry_secs,
        )
        .await
        .map_err(failed)?;
    if let Some(previous) = previous {
        let stale: Vec<String> = terms_of(&previous).into_iter().filter(|t| !vcon.index_terms.contains(t)).collect();
        if !stale.is_empty() {
            state.broker.unindex_vcon(&vcon.uuid, &stale).await.map_err(failed)?;
        }
    }
    Ok(())
}

/// Store an accepted vCon, to be enqueued, only if no document has its uuid
/// (decided atomically by the broker): `None` when stored, else the document
/// already there (nothing written).
pub async fn create_ingested(state: &ApiState, vcon: &IngestedVcon) -> Result<Option<String>, ApiError> {
    state
        .broker
        .create_vcon(
            &vcon.uuid,
            &vcon.json,
            Ttl::Secs(0),
            vcon.created_at.floor(),
            &vcon.index_terms,
            state.settings.index_expiry_secs,
        )
        .await
        .map_err(|e| ApiError::broker("Failed to store vCon", e))
}

/// The vCon `uuid` from the broker, else from the configured storages in order
/// (canonicalised, then re-cached and indexed). `None` when nobody has it.
pub async fn load_vcon(state: &ApiState, uuid: &str, failure: &'static str) -> Result<Option<String>, ApiError> {
    if let Some(json) = state.broker.get_vcon(uuid).await.map_err(|e| ApiError::broker(failure, e))? {
        return Ok(Some(json));
    }
    let live = state.control.live();
    let Some(found) = conserver_storage::read_back(&live.storages, uuid).await else {
        return Ok(None);
    };
    let score = found.document.get("created_at").and_then(epoch_seconds);
    let cache = async {
        state.broker.put_vcon(uuid, &found.json, Ttl::Secs(state.settings.vcon_expiry_secs)).await?;
        if let Some(score) = score {
            let terms = index_terms(&found.document);
            state.broker.index_vcon(uuid, score.floor(), &terms, state.settings.index_expiry_secs).await?;
        }
        Ok::<(), conserver_broker::BrokerError>(())
    };
    if let Err(error) = cache.await {
        tracing::warn!(vcon_uuid = uuid, %error, "cannot re-cache a vCon read from storage");
    }
    Ok(Some(found.json))
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
