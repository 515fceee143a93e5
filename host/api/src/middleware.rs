//! Cross-cutting HTTP behaviour of the Python server (Starlette/FastAPI): version
//! headers on every response, CORS (any origin, with credentials; preflights echo
//! the request), a 307 redirect for a trailing slash, and 405 for HEAD.

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::ApiState;

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

/// CORS as the Python server configures it (allow everything, with credentials).
pub async fn cors(request: Request, next: Next) -> Response {
    let origin = request.headers().get(header::ORIGIN).cloned();
    let preflight_method = request.headers().get(header::ACCESS_CONTROL_REQUEST_METHOD).is_some();
    if request.method() == Method::OPTIONS
        && let (Some(origin), true) = (&origin, preflight_method)
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
    if origin.is_some() {
        let headers = response.headers_mut();
        headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, HeaderValue::from_static("*"));
        headers.insert(header::ACCESS_CONTROL_ALLOW_CREDENTIALS, HeaderValue::from_static("true"));
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
        let mut target = path.trim_end_matches('/').to_string();
        if target.is_empty() {
            target.push('/');
        }
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
