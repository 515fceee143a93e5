//! Errors as the Python conserver sends them: `{"detail": "<text>"}` for handled
//! errors and `{"detail": [{type, loc, msg, input}]}` for validation errors. A 5xx
//! cause is logged, never sent.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

/// An error answer.
#[derive(Debug)]
pub enum ApiError {
    /// 403 `Invalid API Key`.
    Forbidden,
    /// 404 with a message.
    NotFound(&'static str),
    /// 422 with one FastAPI-style validation entry.
    Validation {
        /// Machine-readable kind, e.g. `uuid_parsing`, `json_invalid`.
        kind: &'static str,
        /// Where: `["body", "uuid"]`, `["path", "vcon_uuid"]`, …
        loc: Vec<String>,
        /// Human message naming the field.
        msg: String,
        /// The offending input.
        input: Value,
    },
    /// 500 with a generic message; `cause` is logged only.
    Internal {
        /// The message the client sees, e.g. `Failed to store vCon`.
        detail: &'static str,
        /// The real cause, for the log.
        cause: String,
    },
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        match self {
            Self::Forbidden => (StatusCode::FORBIDDEN, Json(json!({"detail": "Invalid API Key"}))).into_response(),
            Self::NotFound(detail) => (StatusCode::NOT_FOUND, Json(json!({"detail": detail}))).into_response(),
            Self::Validation { kind, loc, msg, input } => (
                StatusCode::UNPROCESSABLE_ENTITY,
                Json(json!({"detail": [{"type": kind, "loc": loc, "msg": msg, "input": input}]})),
            )
                .into_response(),
            Self::Internal { detail, cause } => {
                tracing::error!(error = %cause, detail, "request failed");
                (StatusCode::INTERNAL_SERVER_ERROR, Json(json!({"detail": detail}))).into_response()
            }
        }
    }
}
