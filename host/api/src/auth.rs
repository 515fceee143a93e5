//! The token check for protected routes: the header named by
//! `CONSERVER_HEADER_NAME` must equal one of the configured tokens exactly
//! (constant-time compare). No tokens configured means the API is open.

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use subtle::ConstantTimeEq;

use crate::ApiState;
use crate::error::ApiError;

/// Middleware: 403 `Invalid API Key` unless the request carries a valid token.
pub async fn require_token(State(state): State<ApiState>, request: Request, next: Next) -> Response {
    let tokens = &state.settings.tokens;
    if tokens.is_empty() {
        return next.run(request).await;
    }
    let presented = request
        .headers()
        .get(state.settings.header.as_str())
        .map(|value| value.as_bytes())
        .filter(|value| !value.is_empty());
    let Some(presented) = presented else {
        return ApiError::Forbidden.into_response();
    };
    // Compare against every token so timing does not reveal which one matched.
    let matched = tokens.iter().fold(subtle::Choice::from(0), |acc, token| acc | token.as_bytes().ct_eq(presented));
    if bool::from(matched) { next.run(request).await } else { ApiError::Forbidden.into_response() }
}
