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
    /// 403 with a message (`Invalid API Key` for the main token).
    Forbidden(String),
    /// 400 with a message.
    BadRequest(&'static str),
    /// 404 with a message.
    NotFound(&'static str),
    /// 413: the body is over the configured limit.
    TooLarge(usize),
    /// 413: the JSON body holds too many values or is nested too deep.
    TooComplex(String),
    /// 409 with a message: the request conflicts with what is stored.
    Conflict(String),
    /// 408: the body did not arrive within this many seconds.
    BodyTimeout(u64),
    /// 503 with a message: a backend the answer depends on failed; retry later.
    /// (The cause is logged, not sent.)
    Unavailable {
        /// The message the client sees.
        detail: &'static str,
        /// The real cause, for the log.
        cause: String,
    },
    /// 422 with FastAPI-style validation entries.
    Validation(Vec<Invalid>),
    /// 422 with a plain message (a refused config).
    Unprocessable(String),
    /// 500 with a generic message; `cause` is logged only.
    Internal {
        /// The message the client sees, e.g. `Failed to store vCon`.
        detail: &'static str,
        /// The real cause, for the log.
        cause: String,
    },
}

/// One validation problem, as a FastAPI `detail` entry.
#[derive(Debug, Clone)]
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
    /// A single 422 entry for `loc` (e.g. `["query", "limit"]`).
    pub fn invalid(kind: &'static str, loc: &[&str], msg: impl Into<String>, input: Value) -> Self {
        Self::Validation(vec![Invalid {
            kind,
            loc: loc.iter().map(|s| (*s).to_string()).collect(),
            msg: msg.into(),
            input,
        }])
    }

    /// A failed broker operation: 503 with `Retry-After` when the broker is out
    /// of reach or cannot write for now (not acknowledged: send it again; a
    /// write that timed out may still land, and sending it again is safe), else
    /// a 500. The cause is logged.
    pub fn broker(detail: &'static str, cause: conserver_broker::BrokerError) -> Self {
        if cause.is_unavailable() {
            Self::Unavailable { detail, cause: cause.to_string() }
        } else {
            Self::Internal { detail, cause: cause.to_string() }
        }
    }

    /// A 500 whose cause is logged.
    pub fn internal(detail: &'static str, cause: impl std::fmt::Display) -> Self {
        Self::Internal { detail, cause: cause.to_string() }
    }

    /// The main-token refusal.
    pub fn invalid_api_key() -> Self {
        Self::Forbidden("Invalid API Key".into())
    }
}

fn detail(status: StatusCode, text: impl Into<Value>) -> Response {
    (status, Json(json!({ "detail": text.into() }))).into_response()
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        match self {
            Self::Forbidden(text) => detail(StatusCode::FORBIDDEN, text),
            Self::BadRequest(text) => detail(StatusCode::BAD_REQUEST, text),
            Self::NotFound(text) => detail(StatusCode::NOT_FOUND, text),
            Self::TooLarge(limit) => detail(
                StatusCode::PAYLOAD_TOO_LARGE,
                format!("request body is larger than the {limit}-byte limit (CONSERVER_MAX_BODY_BYTES)"),
            ),
            Self::TooComplex(text) => detail(StatusCode::PAYLOAD_TOO_LARGE, text),
            Self::Conflict(text) => detail(StatusCode::CONFLICT, text),
            Self::BodyTimeout(secs) => detail(
                StatusCode::REQUEST_TIMEOUT,
                format!(
                    "the request body did not arrive within {secs} s (CONSERVER_HTTP_BODY_READ_TIMEOUT_SECS); send it again"
                ),
            ),
            Self::Validation(entries) => {
                let entries: Vec<Value> = entries
                    .into_iter()
                    .map(|e| json!({"type": e.kind, "loc": e.loc, "msg": e.msg, "input": e.input}))
                    .collect();
                detail(StatusCode::UNPROCESSABLE_ENTITY, entries)
            }
            Self::Unprocessable(text) => detail(StatusCode::UNPROCESSABLE_ENTITY, text),
            Self::Unavailable { detail: text, cause } => {
                tracing::warn!(error = %cause, detail = text, "request refused: a backend failed");
                let mut response = detail(StatusCode::SERVICE_UNAVAILABLE, text);
                response
                    .headers_mut()
                    .insert(axum::http::header::RETRY_AFTER, axum::http::HeaderValue::from_static("5"));
                response
            }
            Self::Internal { detail: text, cause } => {
                tracing::error!(error = %cause, detail = text, "request failed");
                detail(StatusCode::INTERNAL_SERVER_ERROR, text)
            }
        }
    }
}
