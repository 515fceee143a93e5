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
    /// 422 with FastAPI-style validation entries.
    Validation(Vec<Invalid>),
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
            Self::Validation(entries) => {
                let detail: Vec<Value> = entries
                    .into_iter()
                    .map(|e| json!({"type": e.kind, "loc": e.loc, "msg": e.msg, "input": e.input}))
                    .collect();
                (StatusCode::UNPROCESSABLE_ENTITY, Json(json!({ "detail": detail })))
            }
            .into_response(),
            Self::Internal { detail, cause } => {
                tracing::error!(error = %cause, detail, "request failed");
                (StatusCode::INTERNAL_SERVER_ERROR, Json(json!({"detail": detail}))).into_response()
            }
        }
    }
}

/// One validation problem, as a FastAPI `detail` entry.
#[derive(Debug)]
pub struct Invalid {
    /// Machine-readable kind, e.g. `uuid_parsing`, `json_invalid`.
    pub kind: &'static str,
    /// Where: `["body", "uuid"]`, `["path", "vcon_uuid"]`, …
    pub loc: Vec<String>,
    /// Human message naming the field.
    pub msg: String,
    /// The offending input.
    pub input: Value,
}

impl ApiError {
    /// A 422 for `loc` (e.g. `["query", "limit"]`).
    pub fn invalid(kind: &'static str, loc: &[&str], msg: impl Into<String>, input: Value) -> Self {
        Self::Validation(vec![Invalid {
            kind,
            loc: loc.iter().map(|s| s.to_string()).collect(),
            msg: msg.into(),
            input,
        }])
    }
}
