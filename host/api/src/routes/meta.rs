//! `GET /health`, `GET /version` (public) and `GET /metrics` (public without a
//! token configured or with `CONSERVER_PUBLIC_METRICS=1`).

use std::time::Duration;

use axum::Json;
use axum::extract::State;
use serde_json::{Value, json};

/// How long `/health` waits for the broker before calling it unreachable.
const BROKER_CHECK: Duration = Duration::from_millis(500);

use crate::ApiState;
use crate::guards::MetricsAccess;

fn version_info(state: &ApiState) -> Value {
    json!({
        "version": state.settings.version,
        "git_commit": state.settings.git_commit,
        "build_time": state.settings.build_time,
    })
}

/// Liveness and readiness: `{"status": "healthy"|"degraded", "version": {…},
/// "broker": {"backend", "status": "ok"|"unreachable"|"failing", "error"?}}`
/// (`failing`: it answers but cannot write — a full disk, Redis out of memory). Always 200 and
/// answered within half a second: the process is up even when the broker is
/// not, and a load balancer's `curl -f` must not restart it for that; monitors
/// read `status`.
#[utoipa::path(get, path = "/health", tag = "meta", responses((status = 200, description = "The server is up; `status` is `degraded` when the broker does not answer")))]
pub async fn health(State(state): State<ApiState>) -> Json<Value> {
    let backend = state.broker.backend();
    let broker = match tokio::time::timeout(BROKER_CHECK, state.broker.ping()).await {
        Ok(Ok(())) => json!({"backend": backend, "status": "ok"}),
        // Answering but refusing writes (a full disk, Redis out of memory) is `failing`.
        Ok(Err(error)) => {
            let status = if error.is_retryable() { "unreachable" } else { "failing" };
            json!({"backend": backend, "status": status, "error": error.to_string()})
        }
        Err(_) => {
            json!({"backend": backend, "status": "unreachable", "error": format!("no answer within {} ms", BROKER_CHECK.as_millis())})
        }
    };
    let status = if broker["status"] == "ok" { "healthy" } else { "degraded" };
    let mut broker = broker;
    if !state.settings.broker_warnings.is_empty() {
        broker["warnings"] = json!(state.settings.broker_warnings);
    }
    Json(json!({"status": status, "version": version_info(&state), "broker": broker}))
}

/// `{"version", "git_commit", "build_time"}` from `VCON_SERVER_*`.
#[utoipa::path(get, path = "/version", tag = "meta", responses((status = 200, description = "Version information")))]
pub async fn version(State(state): State<ApiState>) -> Json<Value> {
    Json(version_info(&state))
}

/// Every metric in the Prometheus text format (names in docs/operations.md).
/// Needs the token when one is configured, unless `CONSERVER_PUBLIC_METRICS=1`.
#[utoipa::path(get, path = "/metrics", tag = "meta", responses((status = 200, description = "Prometheus metrics", content_type = "text/plain"),
    (status = 403, description = "A token is configured and was not sent")))]
pub async fn metrics(_access: MetricsAccess) -> ([(axum::http::header::HeaderName, &'static str); 1], String) {
    ([(axum::http::header::CONTENT_TYPE, "text/plain; version=0.0.4")], conserver_core::metrics::render_prometheus())
}
