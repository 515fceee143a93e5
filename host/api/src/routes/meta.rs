//! `GET /health`, `GET /version` and `GET /metrics` (public).

use axum::Json;
use axum::extract::State;
use serde_json::{Value, json};

use crate::ApiState;

fn version_info(state: &ApiState) -> Value {
    json!({
        "version": state.settings.version,
        "git_commit": state.settings.git_commit,
        "build_time": state.settings.build_time,
    })
}

/// Liveness: `{"status": "healthy", "version": {…}}`.
#[utoipa::path(get, path = "/health", tag = "meta", responses((status = 200, description = "The server is up")))]
pub async fn health(State(state): State<ApiState>) -> Json<Value> {
    Json(json!({"status": "healthy", "version": version_info(&state)}))
}

/// `{"version", "git_commit", "build_time"}` from `VCON_SERVER_*`.
#[utoipa::path(get, path = "/version", tag = "meta", responses((status = 200, description = "Version information")))]
pub async fn version(State(state): State<ApiState>) -> Json<Value> {
    Json(version_info(&state))
}

/// Processing metrics in the Prometheus text format: per chain and link, calls,
/// failures, seconds and fuel; per chain, vCons by outcome.
#[utoipa::path(get, path = "/metrics", tag = "meta", responses((status = 200, description = "Prometheus metrics", content_type = "text/plain")))]
pub async fn metrics() -> ([(axum::http::header::HeaderName, &'static str); 1], String) {
    ([(axum::http::header::CONTENT_TYPE, "text/plain; version=0.0.4")], conserver_core::metrics::render_prometheus())
}
