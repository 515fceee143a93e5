//! Queue routes: enqueue (external-ingress with per-list keys, re-ingress of
//! stored uuids), pop egress, count, and the queue depth for autoscalers.

use axum::Json;
use axum::extract::{FromRequest as _, RawQuery, Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use conserver_core::{canonical_uuid, ingest_vcon};
use serde_json::{Value, json};

use super::vcons::invalid_vcon;
use crate::ApiState;
use crate::auth::{check_ingress_key, presented};
use crate::body::JsonBody;
use crate::conflict::{Stored, conflict, create, stored_as};
use crate::enqueue::{Source, enqueue};
use crate::error::ApiError;
use crate::guards::MetricsAccess;
use crate::query::Query;
use crate::read::load_vcon;

/// Most uuids one `GET /vcon/egress` pops.
const MAX_EGRESS_POP: i64 = 100_000;

/// Store a vCon sent by a partner and enqueue it on `ingress_list`, with a key
/// from that list's `ingress_auth` entry (main tokens do not work here). The key
/// is checked before the body is read. A uuid already stored is accepted again
/// only with the same document (204, nothing written, enqueued again); a
/// different document gets 409 and the stored vCon is left alone.
#[utoipa::path(post, path = "/vcon/external-ingress", tag = "queues",
    params(("ingress_list" = String, Query, description = "The list to enqueue on; the key must be listed for it")),
    request_body(content_type = "application/json", description = "A vCon"),
    responses((status = 204, description = "Stored and enqueued"), (status = 403, description = "Missing or wrong key for this list"),
              (status = 409, description = "Another vCon with this uuid is stored"),
              (status = 413, description = "Body over CONSERVER_MAX_BODY_BYTES, or too many JSON values"),
              (status = 422, description = "Missing list or invalid vCon")))]
pub async fn external_ingress(
    State(state): State<ApiState>,
    RawQuery(query): RawQuery,
    request: Request,
) -> Result<Response, ApiError> {
    // The list, then the key, then the body: a caller without a key never gets
    // the server to read (let alone parse) what it sends. (The Python server
    // validates the body first.)
    let list = Query::parse(query.as_deref()).required("ingress_list")?;
    check_ingress_key(&state.control.live(), &list, presented(request.headers(), &state))?;
    let JsonBody(body) = JsonBody::from_request(request, &state).await?;
    let vcon = ingest_vcon(&body).map_err(|e| invalid_vcon(e, &body))?;
    // Storages first (the broker may have let the document expire), then the
    // broker's atomic create-if-absent.
    let stored = match stored_as(&state, &vcon, &body).await? {
        Stored::Nothing => create(&state, &vcon, &body).await?,
        found => found,
    };
    match stored {
        Stored::Nothing => {}
        Stored::Same => {
            tracing::info!(vcon_uuid = %vcon.uuid, list = %list, "external-ingress re-send of a stored vCon")
        }
        Stored::Different => {
            tracing::warn!(vcon_uuid = %vcon.uuid, list = %list, "external-ingress refused to replace a stored vCon");
            return Err(conflict(&vcon.uuid));
        }
    }
    enqueue(&state, &list, &[vcon.uuid], Source::External)
        .await
        .map_err(|e| ApiError::broker("Failed to store vCon", e))?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// Enqueue already-stored vCons (from the broker or a storage) on `ingress_list`,
/// in request order; uuids found nowhere are skipped. `[]` is a no-op.
#[utoipa::path(post, path = "/vcon/ingress", tag = "queues",
    params(("ingress_list" = String, Query, description = "The list to enqueue on")),
    request_body(content_type = "application/json", description = "A JSON array of uuids"),
    responses((status = 204, description = "Enqueued"), (status = 422, description = "Not an array of uuids, or no list")))]
pub async fn ingress(
    State(state): State<ApiState>,
    RawQuery(query): RawQuery,
    JsonBody(body): JsonBody,
) -> Result<Response, ApiError> {
    let list = Query::parse(query.as_deref()).required("ingress_list")?;
    let items = match serde_json::from_slice::<Value>(&body) {
        Ok(Value::Array(items)) => items,
        Ok(other) => {
            return Err(ApiError::invalid("list_type", &["body"], "the body must be a JSON array of uuids", other));
        }
        Err(e) => {
            return Err(ApiError::invalid(
                "json_invalid",
                &["body"],
                format!("body is not valid JSON: {e}"),
                Value::Null,
            ));
        }
    };
    let mut uuids = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let index = i.to_string();
        let uuid = item
            .as_str()
            .ok_or_else(|| {
                ApiError::invalid("string_type", &["body", &index], "each entry must be a uuid string", item.clone())
            })
            .and_then(|text| {
                canonical_uuid(text)
                    .map_err(|p| ApiError::invalid("uuid_parsing", &["body", &index], p.message, item.clone()))
            })?;
        uuids.push(uuid);
    }
    let mut found = Vec::with_capacity(uuids.len());
    for uuid in uuids {
        if load_vcon(&state, &uuid, "Failed to add to ingress list").await?.is_some() {
            // Queued again: it must not expire while it waits.
            state
                .broker
                .expire_vcon(&uuid, 0)
                .await
                .map_err(|e| ApiError::broker("Failed to add to ingress list", e))?;
            found.push(uuid);
        } else {
            tracing::info!(vcon_uuid = %uuid, list = %list, "ingress skipped a uuid found nowhere");
        }
    }
    enqueue(&state, &list, &found, Source::Reingress)
        .await
        .map_err(|e| ApiError::broker("Failed to add to ingress list", e))?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// Pop up to `limit` uuids from an egress list, **oldest first**. With
/// `peek=true` nothing is removed: a follower reads, stores, then acknowledges
/// with `POST /vcon/egress/ack`, so a crash in between loses nothing.
#[utoipa::path(get, path = "/vcon/egress", tag = "queues",
    params(("egress_list" = String, Query, description = "The list to pop from"),
           ("limit" = Option<i64>, Query, description = "How many to pop (default 1; 0 or less pops none; at most 100000)"),
           ("peek" = Option<bool>, Query, description = "Read without removing (conserver extension)")),
    responses((status = 200, description = "The popped uuids, oldest first"), (status = 422, description = "Missing list or bad limit")))]
pub async fn egress(State(state): State<ApiState>, RawQuery(query): RawQuery) -> Result<Json<Vec<String>>, ApiError> {
    let query = Query::parse(query.as_deref());
    let list = query.required("egress_list")?;
    let limit = query.integer("limit", 1, i64::MIN, i64::MAX)?.clamp(0, MAX_EGRESS_POP) as u64;
    let peek = query.last("peek").is_some_and(|v| matches!(v.to_ascii_lowercase().as_str(), "true" | "1" | "yes"));
    let result =
        if peek { state.broker.peek(&list, limit).await } else { state.broker.pop_front_many(&list, limit).await };
    Ok(Json(result.map_err(|e| ApiError::broker("Failed to pop from egress list", e))?))
}

/// Remove uuids read with `GET /vcon/egress?peek=true` (one occurrence each);
/// answers how many were found (conserver extension, used by followers).
#[utoipa::path(post, path = "/vcon/egress/ack", tag = "queues",
    params(("egress_list" = String, Query, description = "The list the uuids were read from")),
    request_body(content_type = "application/json", description = "A JSON array of uuids"),
    responses((status = 200, description = "How many were removed"), (status = 422, description = "Not an array of strings")))]
pub async fn egress_ack(
    State(state): State<ApiState>,
    RawQuery(query): RawQuery,
    JsonBody(body): JsonBody,
) -> Result<Json<u64>, ApiError> {
    let list = Query::parse(query.as_deref()).required("egress_list")?;
    let uuids: Vec<String> = serde_json::from_slice(&body).map_err(|e| {
        ApiError::invalid("list_type", &["body"], format!("the body must be a JSON array of uuids: {e}"), Value::Null)
    })?;
    let removed = state
        .broker
        .remove_items(&list, &uuids)
        .await
        .map_err(|e| ApiError::broker("Failed to acknowledge egress", e))?;
    Ok(Json(removed))
}

/// The number of uuids waiting on an egress list (a bare integer).
#[utoipa::path(get, path = "/vcon/count", tag = "queues",
    params(("egress_list" = String, Query, description = "The list to count")),
    responses((status = 200, description = "The list's length"), (status = 422, description = "Missing list")))]
pub async fn count(State(state): State<ApiState>, RawQuery(query): RawQuery) -> Result<Json<u64>, ApiError> {
    let list = Query::parse(query.as_deref()).required("egress_list")?;
    let depth = state.broker.len(&list).await.map_err(|e| ApiError::broker("Failed to count egress list", e))?;
    Ok(Json(depth))
}

/// `{"list_name": …, "depth": …}`: a list's length, for autoscalers. Needs the
/// token when one is configured, unless `CONSERVER_PUBLIC_METRICS=1`.
#[utoipa::path(get, path = "/stats/queue", tag = "meta",
    params(("list_name" = String, Query, description = "The list")),
    responses((status = 200, description = "The list's depth"), (status = 403, description = "A token is configured and was not sent"),
              (status = 422, description = "Missing list_name")))]
pub async fn queue_depth(
    State(state): State<ApiState>,
    _access: MetricsAccess,
    RawQuery(query): RawQuery,
) -> Result<Json<Value>, ApiError> {
    let list = Query::parse(query.as_deref()).required("list_name")?;
    let depth = state.broker.len(&list).await.map_err(|e| ApiError::broker("Failed to get queue depth", e))?;
    Ok(Json(json!({"list_name": list, "depth": depth})))
}
