//! Cross-cutting HTTP behaviour of the Python server (Starlette/FastAPI): version
//! headers on every response, CORS (off unless configured; the Python server's
//! allow-everything with `CONSERVER_CORS_ORIGINS=*`), a 307 redirect for a
//! trailing slash (never to another host), and 405 for HEAD.

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::{ApiState, Cors};

const ALLOWED_METHODS: &str = "DELETE, GET, HEAD, OPTIONS, PATCH, POST, PUT";

/// Every response carries the server version and commit.
pub async fn version_headers(State(state): State<ApiState>, request: Request, next: Next) -> Response {
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

/// CORS, off unless `CONSERVER_CORS_ORIGINS` is set. For an allowed origin a
/// preflight (`OPTIONS` with `Origin` and `Access-Control-Request-Method`) gets
/// 200 `OK` echoing the origin and the requested headers, with credentials, every
/// method and `max-age` 600, and other answers carry
/// `access-control-allow-origin` (`*` with `CONSERVER_CORS_ORIGINS=*`, as the
/// Python server does, without credentials; else the origin itself, with
/// credentials). Other origins
/// get no CORS headers, so their pages cannot read the answers.
pub async fn cors(State(state): State<ApiState>, request: Request, next: Next) -> Response {
    let policy = &state.settings.guards.cors;
    if *policy == Cors::Off {
        return next.run(request).await;
    }
    let origin = request.headers().get(header::ORIGIN).cloned();
    let allowed = origin.as_ref().and_then(|o| o.to_str().ok()).is_some_and(|o| policy.allows(o));
    let preflight_method = request.headers().get(header::ACCESS_CONTROL_REQUEST_METHOD).is_some();
    if request.method() == Method::OPTIONS
        && let (Some(origin), true, true) = (&origin, preflight_method, allowed)
    {
        let requested_headers = request.headers().get(header::ACCESS_CONTROL_REQUEST_HEADERS).cloned();
        let mut response = (StatusCode::OK, "OK").into_response();
        let headers = response.headers_mut();
        headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin.clone());
        headers.insert(header::ACCESS_CONTROL_ALLOW_CREDENTIALS, HeaderValue::from_static("true"));
        headers.insert(header::ACCESS_CONTROL_ALLOW_METHODS, HeaderValue::from_static(ALLOWED_METHODS));
        headers.insert(header::ACCESS_CONTROL_MAX_AGE, HeaderValue::from_static("600"));
        headers.insert(header::VARY, HeaderValue::from_static("Origin"));
        if let Some(requested) = requested_headers {
            headers.insert(header::ACCESS_CONTROL_ALLOW_HEADERS, requested);
        }
        return response;
    }
    let mut response = next.run(request).await;
    if let (Some(origin), true) = (origin, allowed) {
        let headers = response.headers_mut();
        if *policy == Cors::Any {
            // `*` and credentials together are invalid CORS; browsers drop both.
            headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, HeaderValue::from_static("*"));
        } else {
            headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin);
            headers.insert(header::ACCESS_CONTROL_ALLOW_CREDENTIALS, HeaderValue::from_static("true"));
        }
        headers.append(header::VARY, HeaderValue::from_static("Origin"));
    }
    response
}

/// `GET /vcon/` → 307 to `/vcon`; `HEAD` → 405 (the Python server has no HEAD).
pub async fn path_rules(request: Request, next: Next) -> Response {
    if request.method() == Method::HEAD {
        return (StatusCode::METHOD_NOT_ALLOWED, axum::Json(json!({"detail": "Method Not Allowed"}))).into_response();
    }
    let path = request.uri().path();
    // Swagger UI lives at `/docs/` and redirects `/docs` there itself.
    if path.len() > 1 && path.ends_with('/') && !path.contains("/docs") {
        // One leading slash only: `//evil.example/` must not become the
        // scheme-relative `Location: //evil.example` (an open redirect), nor
        // `/\evil.example`, which browsers read the same way.
        let mut target = format!("/{}", path.trim_end_matches('/').trim_start_matches(['/', '\\']));
        if let Some(query) = request.uri().query() {
            target = format!("{target}?{query}");
        }
        if let Ok(location) = HeaderValue::from_str(&target) {
            let mut response = Response::new(Body::empty());
            *response.status_mut() = StatusCode::TEMPORARY_REDIRECT;
            response.headers_mut().insert(header::LOCATION, location);
            return response;
        }
    }
    next.run(request).await
}
