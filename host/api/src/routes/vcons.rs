//! vCon routes: create, read (one or many, with the storage fallback), list,
//! search and delete.

use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use conserver_core::{VconError, canonical_uuid, ingest_vcon};
use serde_json::value::RawValue;
use serde_json::{Value, json};

use crate::ApiState;
use crate::body::JsonBody;
use crate::enqueue::{Source, enqueue};
use crate::error::{ApiError, Invalid};
use crate::query::Query;
use crate::read::{for_egress, load_vcon, store_ingested, terms_of};

/// Largest page `GET /vcon` serves.
const MAX_PAGE_SIZE: i64 = 10_000;

pub(crate) fn json_response(status: StatusCode, body: String) -> Response {
    (status, [(header::CONTENT_TYPE, HeaderValue::from_static("application/json"))], body).into_response()
}

/// A refused vCon as a FastAPI 422, one entry per problem, `loc` starting at `body`.
pub(crate) fn invalid_vcon(error: VconError, body: &[u8]) -> ApiError {
    let input = match &error {
        VconError::NotJson(_) => Value::String(String::from_utf8_lossy(body).chars().take(200).collect()),
        _ => Value::Null,
    };
    ApiError::Validation(
        error
            .problems()
            .into_iter()
            .map(|problem| Invalid {
                kind: problem.kind,
                loc: std::iter::once("body".to_string()).chain(problem.path.clone()).collect(),
                msg: problem.message,
                input: input.clone(),
            })
            .collect(),
    )
}

fn path_uuid(raw: &str) -> Result<String, ApiError> {
    canonical_uuid(raw).map_err(|p| {
        ApiError::invalid("uuid_parsing", &["path", "vcon_uuid"], p.message, Value::String(raw.to_string()))
    })
}

/// Create (or replace) a vCon, then enqueue its uuid on each `ingress_lists` entry.
/// Answers 201 with the stored document.
#[utoipa::path(post, path = "/vcon", tag = "vcon",
    params(("ingress_lists" = Option<Vec<String>>, Query, description = "Lists to enqueue the uuid on (repeat the parameter)")),
    request_body(content_type = "application/json", description = "A vCon (unsigned, JWS or JWE form)"),
    responses((status = 201, description = "The stored vCon"), (status = 403, description = "Invalid API Key"),
              (status = 413, description = "Body over CONSERVER_MAX_BODY_BYTES"), (status = 422, description = "Not a valid vCon; each problem names its field")))]
pub async fn create_vcon(
    State(state): State<ApiState>,
    RawQuery(query): RawQuery,
    JsonBody(body): JsonBody,
) -> Result<Response, ApiError> {
    let vcon = ingest_vcon(&body).map_err(|e| invalid_vcon(e, &body))?;
    let lists: Vec<String> =
        Query::parse(query.as_deref()).all("ingress_lists").into_iter().filter(|l| !l.is_empty()).collect();
    store_ingested(&state, &vcon, !lists.is_empty()).await?;
    for list in lists {
        enqueue(&state, &list, std::slice::from_ref(&vcon.uuid), Source::New)
            .await
            .map_err(|e| ApiError::broker("Failed to store vCon", e))?;
    }
    Ok(json_response(StatusCode::CREATED, vcon.json))
}

/// uuids of stored vCons, newest first, a page at a time, optionally within a
/// `created_at` window.
#[utoipa::path(get, path = "/vcon", tag = "vcon",
    params(("page" = Option<i64>, Query, description = "Page number, from 1 (default 1)"),
           ("size" = Option<i64>, Query, description = "Page size, 1 to 10000 (default 50)"),
           ("since" = Option<String>, Query, description = "Only vCons created at or after this date-time"),
           ("until" = Option<String>, Query, description = "Only vCons created at or before this date-time")),
    responses((status = 200, description = "uuids, newest first"), (status = 422, description = "A parameter is invalid")))]
pub async fn list_vcons(State(state): State<ApiState>, RawQuery(query): RawQuery) -> Result<Response, ApiError> {
    let query = Query::parse(query.as_deref());
    let page = query.integer("page", 1, 1, i64::MAX)?;
    let size = query.integer("size", 50, 1, MAX_PAGE_SIZE)?;
    let since = query.datetime("since")?.map(f64::floor);
    let until = query.datetime("until")?.map(f64::floor);
    let offset = u64::try_from(page - 1).unwrap_or(0).saturating_mul(size as u64);
    let uuids = state
        .broker
        .list_vcons(since, until, offset, size as u64)
        .await
        .map_err(|e| ApiError::broker("Failed to list vCons", e))?;
    Ok(axum::Json(uuids).into_response())
}

/// One vCon (from the broker, else from the storages).
#[utoipa::path(get, path = "/vcon/{vcon_uuid}", tag = "vcon",
    params(("vcon_uuid" = String, Path, description = "The vCon's uuid, in any standard form")),
    responses((status = 200, description = "The vCon"), (status = 404, description = "vCon not found"),
              (status = 422, description = "Not a uuid")))]
pub async fn read_vcon(State(state): State<ApiState>, Path(raw): Path<String>) -> Result<Response, ApiError> {
    let uuid = path_uuid(&raw)?;
    match load_vcon(&state, &uuid, "Failed to read vCon").await? {
        Some(json) => Ok(json_response(StatusCode::OK, for_egress(&state, json)?)),
        None => Err(ApiError::NotFound("vCon not found")),
    }
}

/// Delete a vCon: its document, its list and search entries, and its copies in the
/// storages. Always 204 (storage failures are logged).
#[utoipa::path(delete, path = "/vcon/{vcon_uuid}", tag = "vcon",
    params(("vcon_uuid" = String, Path, description = "The vCon's uuid")),
    responses((status = 204, description = "Deleted (or never existed)"), (status = 422, description = "Not a uuid")))]
pub async fn delete_vcon(State(state): State<ApiState>, Path(raw): Path<String>) -> Result<Response, ApiError> {
    let uuid = path_uuid(&raw)?;
    let broker = &state.broker;
    let terms = match broker.get_vcon(&uuid).await {
        Ok(Some(json)) => terms_of(&json),
        Ok(None) => Vec::new(),
        Err(error) => {
            tracing::warn!(vcon_uuid = %uuid, %error, "cannot read the vCon being deleted");
            Vec::new()
        }
    };
    if let Err(error) = broker.delete_vcon(&uuid).await {
        tracing::error!(vcon_uuid = %uuid, %error, "cannot delete the vCon document");
    }
    if let Err(error) = broker.unindex_vcon(&uuid, &terms).await {
        tracing::error!(vcon_uuid = %uuid, %error, "cannot remove the vCon from the list and search indexes");
    }
    for storage in &state.control.live().storages {
        if let Err(error) = storage.delete(&uuid).await {
            tracing::warn!(storage = storage.name(), vcon_uuid = %uuid, %error, "storage delete failed");
        }
    }
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// Several vCons, in request order; `null` for each one not found.
#[utoipa::path(get, path = "/vcons", tag = "vcon",
    params(("vcon_uuids" = Vec<String>, Query, description = "uuids (repeat the parameter)")),
    responses((status = 200, description = "vCons in request order, null where missing"),
              (status = 422, description = "A uuid is invalid, or none was given")))]
pub async fn read_many(State(state): State<ApiState>, RawQuery(query): RawQuery) -> Result<Response, ApiError> {
    let requested = Query::parse(query.as_deref()).all("vcon_uuids");
    if requested.is_empty() {
        return Err(ApiError::invalid("missing", &["query", "vcon_uuids"], "Field required", Value::Null));
    }
    let mut uuids = Vec::with_capacity(requested.len());
    for (i, raw) in requested.iter().enumerate() {
        let index = i.to_string();
        uuids.push(canonical_uuid(raw).map_err(|p| {
            ApiError::invalid("uuid_parsing", &["query", "vcon_uuids", &index], p.message, Value::String(raw.clone()))
        })?);
    }
    let mut documents: Vec<Option<Box<RawValue>>> = Vec::with_capacity(uuids.len());
    for uuid in &uuids {
        let found = match load_vcon(&state, uuid, "Failed to read vCons").await? {
            Some(json) => Some(
                RawValue::from_string(for_egress(&state, json)?)
                    .map_err(|e| ApiError::internal("Failed to read vCons", e))?,
            ),
            None => None,
        };
        documents.push(found);
    }
    let body = serde_json::to_string(&documents).map_err(|e| ApiError::internal("Failed to read vCons", e))?;
    Ok(json_response(StatusCode::OK, body))
}

/// uuids of vCons with a party matching **every** given criterion (exact match).
#[utoipa::path(get, path = "/vcons/search", tag = "vcon",
    params(("tel" = Option<String>, Query, description = "Party telephone (send + as %2B)"),
           ("mailto" = Option<String>, Query, description = "Party e-mail address"),
           ("name" = Option<String>, Query, description = "Party name")),
    responses((status = 200, description = "Matching uuids ([] when none)"),
              (status = 400, description = "At least one search parameter must be provided")))]
pub async fn search(State(state): State<ApiState>, RawQuery(query): RawQuery) -> Result<Response, ApiError> {
    let query = Query::parse(query.as_deref());
    let fields = ["tel", "mailto", "name"];
    if !fields.iter().any(|f| query.has(f)) {
        return Err(ApiError::BadRequest("At least one search parameter must be provided"));
    }
    let terms: Vec<String> =
        fields.iter().filter_map(|f| query.last(f).filter(|v| !v.is_empty()).map(|v| format!("{f}:{v}"))).collect();
    let uuids =
        state.broker.search(&terms).await.map_err(|e| ApiError::broker("An error occurred during the search", e))?;
    Ok(axum::Json(json!(uuids)).into_response())
}
