//! Operator routes: the config (read, validated replace), the dead-letter queue
//! (list, reasons, atomic reprocess) and the index rebuild.

use axum::Json;
use axum::extract::{RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use conserver_broker::dlq_list;
use conserver_core::{epoch_seconds, index_terms};
use serde_json::{Map, Value};

use crate::body::JsonBody;
use crate::error::ApiError;
use crate::guards::ControlAccess;
use crate::query::Query;
use crate::{ApiState, ConfigRejected};

/// The config file as JSON, keys in file order. Where the config in force came
/// from is in two headers: `Conserver-Config-Source` (`file-at-start`, `api` or
/// `file-edit`) and `Conserver-Config-Applied-At` (RFC 3339, UTC).
#[utoipa::path(get, path = "/config", tag = "admin",
    responses((status = 200, description = "The config in force",
        headers(("Conserver-Config-Source" = String, description = "file-at-start, api or file-edit"),
                ("Conserver-Config-Applied-At" = String, description = "When it was applied, RFC 3339 UTC")))))]
pub async fn read_config(State(state): State<ApiState>) -> Response {
    let live = state.control.live();
    let applied_at = chrono::DateTime::<chrono::Utc>::from(live.origin.applied_at)
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    (
        [
            ("conserver-config-source", live.origin.source.as_str().to_string()),
            ("conserver-config-applied-at", applied_at),
        ],
        Json(live.document.clone()),
    )
        .into_response()
}

/// Replace the config: validated first (every link component loaded), written
/// atomically in the given key order, applied without a restart. Needs a
/// configured token (or `CONSERVER_ALLOW_OPEN=1`).
#[utoipa::path(post, path = "/config", tag = "admin",
    request_body(content_type = "application/json", description = "The whole config, as JSON"),
    responses((status = 204, description = "Written and applied"), (status = 403, description = "No token configured (set CONSERVER_API_TOKEN), or a wrong one"),
              (status = 422, description = "Invalid config; nothing changed")))]
pub async fn replace_config(
    State(state): State<ApiState>,
    _access: ControlAccess,
    JsonBody(body): JsonBody,
) -> Result<Response, ApiError> {
    let document = match serde_json::from_slice::<Value>(&body) {
        Ok(object @ Value::Object(_)) => object,
        Ok(other) => return Err(ApiError::invalid("dict_type", &["body"], "the config must be a JSON object", other)),
        Err(e) => {
            return Err(ApiError::invalid(
                "json_invalid",
                &["body"],
                format!("body is not valid JSON: {e}"),
                Value::Null,
            ));
        }
    };
    match state.control.replace(document).await {
        Ok(()) => Ok(StatusCode::NO_CONTENT.into_response()),
        Err(ConfigRejected::Invalid(message)) => Err(ApiError::Unprocessable(message)),
        Err(ConfigRejected::Failed(message)) => Err(ApiError::internal("Failed to update configuration", message)),
    }
}

/// The dead-lettered uuids of an ingress list, oldest first; with `detail=true`,
/// each entry's recorded reason (link, error, attempts, time) instead.
#[utoipa::path(get, path = "/dlq", tag = "admin",
    params(("ingress_list" = String, Query, description = "The ingress list whose DLQ to read"),
           ("detail" = Option<bool>, Query, description = "Return the reasons instead of bare uuids")),
    responses((status = 200, description = "uuids (or reasons), oldest first")))]
pub async fn read_dlq(State(state): State<ApiState>, RawQuery(query): RawQuery) -> Result<Response, ApiError> {
    let query = Query::parse(query.as_deref());
    let ingress = query.required("ingress_list")?;
    let detail = query.last("detail").is_some_and(|v| matches!(v.to_ascii_lowercase().as_str(), "true" | "1" | "yes"));
    let failed = |e: conserver_broker::BrokerError| ApiError::broker("Failed to read DLQ", e);
    if detail {
        Ok(Json(state.broker.dlq_reasons(&ingress).await.map_err(failed)?).into_response())
    } else {
        Ok(Json(state.broker.range(&dlq_list(&ingress)).await.map_err(failed)?).into_response())
    }
}

/// Move up to `count` dead-lettered uuids back to their ingress list, oldest first,
/// each move atomic. Answers the number moved. Needs a configured token (or
/// `CONSERVER_ALLOW_OPEN=1`).
#[utoipa::path(post, path = "/dlq/reprocess", tag = "admin",
    params(("ingress_list" = String, Query, description = "The ingress list"),
           ("count" = Option<i64>, Query, description = "At most this many, 1 to 100000 (default 1000)")),
    responses((status = 200, description = "How many were moved"), (status = 403, description = "No token configured, or a wrong one"),
              (status = 422, description = "Bad parameters")))]
pub async fn reprocess_dlq(
    State(state): State<ApiState>,
    _access: ControlAccess,
    RawQuery(query): RawQuery,
) -> Result<Json<u64>, ApiError> {
    let query = Query::parse(query.as_deref());
    let ingress = query.required("ingress_list")?;
    let count = query.integer("count", 1000, 1, 100_000)?;
    let moved = state
        .broker
        .move_items(&dlq_list(&ingress), &ingress, count as u64)
        .await
        .map_err(|e| ApiError::broker("Failed to reprocess DLQ", e))?;
    conserver_core::metrics::record_enqueued(&ingress, "dlq_reprocess", moved);
    Ok(Json(moved))
}

/// Rebuild the vCon list and party search indexes from the stored documents;
/// answers how many were indexed. Documents that cannot be indexed are skipped.
/// Needs a configured token (or `CONSERVER_ALLOW_OPEN=1`).
#[utoipa::path(get, path = "/index_vcons", tag = "admin",
    responses((status = 200, description = "How many vCons were indexed"), (status = 403, description = "No token configured, or a wrong one")))]
pub async fn index_vcons(State(state): State<ApiState>, _access: ControlAccess) -> Result<Json<u64>, ApiError> {
    let broker = &state.broker;
    let uuids = broker.vcon_uuids().await.map_err(|e| ApiError::broker("Failed to index vCons", e))?;
    let mut indexed = 0;
    for uuid in uuids {
        let Ok(Some(json)) = broker.get_vcon(&uuid).await else { continue };
        let Ok(document) = serde_json::from_str::<Map<String, Value>>(&json) else { continue };
        let Some(score) = document.get("created_at").and_then(epoch_seconds) else { continue };
        let terms = index_terms(&document);
        match broker.index_vcon(&uuid, score.floor(), &terms, state.settings.index_expiry_secs).await {
            Ok(()) => indexed += 1,
            Err(error) => tracing::warn!(vcon_uuid = %uuid, %error, "cannot index a stored vCon"),
        }
    }
    Ok(Json(indexed))
}
