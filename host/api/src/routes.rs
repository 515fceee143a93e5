//! Routes and handlers.

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, RawQuery, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use conserver_broker::Ttl;
use conserver_core::{VconError, canonical_uuid, ingest_vcon};
use serde_json::{Value, json};
use tower_http::cors::CorsLayer;

use crate::error::ApiError;
use crate::query::all_values;
use crate::{ApiState, auth};

/// The whole API: every route under `root_path` and unprefixed.
pub fn router(state: ApiState) -> Router {
    let protected = Router::new()
        .route("/vcon", axum::routing::post(create_vcon))
        .route("/vcon/egress", get(pop_egress))
        .route("/vcon/{vcon_uuid}", get(read_vcon))
        .route("/dlq", get(read_dlq))
        .route_layer(middleware::from_fn_with_state(state.clone(), auth::require_token));
    let public = Router::new()
        .route("/health", get(health))
        .route("/version", get(version))
        .route("/stats/queue", get(queue_depth));
    let routes = public.merge(protected);
    let root = state.settings.root_path.trim_end_matches('/').to_string();
    let app = if root.is_empty() { routes } else { routes.clone().nest(&root, routes) };
    app.fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(state.settings.max_body_bytes))
        .layer(middleware::from_fn_with_state(state.clone(), version_headers))
        .layer(CorsLayer::very_permissive())
        .with_state(state)
}

async fn not_found() -> Response {
    (StatusCode::NOT_FOUND, Json(json!({"detail": "Not Found"}))).into_response()
}

async fn method_not_allowed() -> Response {
    (StatusCode::METHOD_NOT_ALLOWED, Json(json!({"detail": "Method Not Allowed"}))).into_response()
}

/// Every response carries the server version and commit, as the Python server's do.
async fn version_headers(State(state): State<ApiState>, request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    if let Ok(value) = HeaderValue::from_str(&state.settings.version) {
        headers.insert("x-vcon-server-version", value);
    }
    if let Ok(value) = HeaderValue::from_str(&state.settings.git_commit) {
        headers.insert("x-vcon-server-commit", value);
    }
    response
}

fn version_info(state: &ApiState) -> Value {
    json!({
        "version": state.settings.version,
        "git_commit": state.settings.git_commit,
        "build_time": state.settings.build_time,
    })
}

async fn health(State(state): State<ApiState>) -> Json<Value> {
    Json(json!({"status": "healthy", "version": version_info(&state)}))
}

async fn version(State(state): State<ApiState>) -> Json<Value> {
    Json(version_info(&state))
}

fn json_response(status: StatusCode, body: String) -> Response {
    (status, [(header::CONTENT_TYPE, HeaderValue::from_static("application/json"))], body).into_response()
}

fn invalid_vcon(error: VconError, body: &Bytes) -> ApiError {
    let input = match &error {
        VconError::NotJson(_) => Value::String(String::from_utf8_lossy(body).chars().take(200).collect()),
        _ => Value::Null,
    };
    ApiError::Validation(
        error
            .problems()
            .into_iter()
            .map(|problem| crate::error::Invalid {
                kind: problem.kind,
                loc: std::iter::once("body".to_string()).chain(problem.path.clone()).collect(),
                msg: problem.message,
                input: input.clone(),
            })
            .collect(),
    )
}

/// `POST /vcon?ingress_lists=a&ingress_lists=b`: store the vCon, then enqueue its
/// uuid on each list. 201 with the stored document.
async fn create_vcon(
    State(state): State<ApiState>,
    RawQuery(query): RawQuery,
    body: Bytes,
) -> Result<Response, ApiError> {
    let vcon = ingest_vcon(&body).map_err(|e| invalid_vcon(e, &body))?;
    let document = vcon.json;
    let broker = &state.broker;
    broker
        .put_vcon(&vcon.uuid, &document, Ttl::Secs(state.settings.vcon_expiry_secs))
        .await
        .map_err(|e| ApiError::Internal { detail: "Failed to store vCon", cause: e.to_string() })?;
    for list in all_values(query.as_deref(), "ingress_lists") {
        broker
            .push(&list, std::slice::from_ref(&vcon.uuid))
            .await
            .map_err(|e| ApiError::Internal { detail: "Failed to store vCon", cause: e.to_string() })?;
    }
    Ok(json_response(StatusCode::CREATED, document))
}

/// `GET /vcon/{uuid}`: the stored vCon, or 404.
async fn read_vcon(State(state): State<ApiState>, Path(raw_uuid): Path<String>) -> Result<Response, ApiError> {
    let uuid = canonical_uuid(&raw_uuid).map_err(|e| {
        ApiError::invalid("uuid_parsing", &["path", "vcon_uuid"], e.to_string(), Value::String(raw_uuid.clone()))
    })?;
    match state.broker.get_vcon(&uuid).await {
        Ok(Some(document)) => Ok(json_response(StatusCode::OK, document)),
        Ok(None) => Err(ApiError::NotFound("vCon not found")),
        Err(e) => Err(ApiError::Internal { detail: "Failed to read vCon", cause: e.to_string() }),
    }
}

/// A required query parameter, or the FastAPI 422 `missing` answer naming it.
fn required(query: Option<&str>, key: &'static str) -> Result<String, ApiError> {
    all_values(query, key).pop().ok_or_else(|| {
        ApiError::invalid("missing", &["query", key], format!("query parameter `{key}` is required"), Value::Null)
    })
}

/// An optional integer query parameter with a default; bad values are a 422.
fn integer(query: Option<&str>, key: &'static str, default: i64) -> Result<i64, ApiError> {
    match all_values(query, key).pop() {
        None => Ok(default),
        Some(text) => text.trim().parse().map_err(|_| {
            ApiError::invalid(
                "int_parsing",
                &["query", key],
                format!("query parameter `{key}` must be a whole number"),
                Value::String(text),
            )
        }),
    }
}

/// `GET /vcon/egress?egress_list=X&limit=N`: pop up to N uuids, oldest first (the
/// Python server pops newest first; see docs/compatibility.md).
async fn pop_egress(State(state): State<ApiState>, RawQuery(query): RawQuery) -> Result<Json<Vec<String>>, ApiError> {
    let list = required(query.as_deref(), "egress_list")?;
    let limit = integer(query.as_deref(), "limit", 1)?.clamp(0, 10_000);
    let mut popped = Vec::new();
    for _ in 0..limit {
        match state.broker.pop_front(&list).await {
            Ok(Some(uuid)) => popped.push(uuid),
            Ok(None) => break,
            Err(e) => {
                return Err(ApiError::Internal { detail: "Failed to pop from egress list", cause: e.to_string() });
            }
        }
    }
    Ok(Json(popped))
}

/// `GET /dlq?ingress_list=X`: the dead-lettered uuids, oldest first. With
/// `detail=true`, each entry's recorded reason instead.
async fn read_dlq(State(state): State<ApiState>, RawQuery(query): RawQuery) -> Result<Response, ApiError> {
    let ingress = required(query.as_deref(), "ingress_list")?;
    let detail =
        all_values(query.as_deref(), "detail").pop().is_some_and(|v| matches!(v.as_str(), "true" | "1" | "yes"));
    let failed =
        |e: conserver_broker::BrokerError| ApiError::Internal { detail: "Failed to read DLQ", cause: e.to_string() };
    if detail {
        let reasons = state.broker.dlq_reasons(&ingress).await.map_err(failed)?;
        Ok(Json(reasons).into_response())
    } else {
        let uuids = state.broker.range(&conserver_broker::dlq_list(&ingress)).await.map_err(failed)?;
        Ok(Json(uuids).into_response())
    }
}

/// `GET /stats/queue?list_name=X`: `{"list_name": X, "depth": N}` (public).
async fn queue_depth(State(state): State<ApiState>, RawQuery(query): RawQuery) -> Result<Json<Value>, ApiError> {
    let list = required(query.as_deref(), "list_name")?;
    let depth = state
        .broker
        .len(&list)
        .await
        .map_err(|e| ApiError::Internal { detail: "Failed to get queue depth", cause: e.to_string() })?;
    Ok(Json(json!({"list_name": list, "depth": depth})))
}
