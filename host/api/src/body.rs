//! The request body of JSON routes: bytes under the configured size limit (413
//! otherwise, as JSON), streamed and counted as they arrive; refused with a 422
//! when the content type says it is not JSON, as the Python server does; refused
//! with a 413 when its JSON holds more values or deeper nesting than allowed
//! (checked by a scan before anything is parsed, see `conserver_core::json_bound`).
//!
//! A server without an API token also refuses a body with no `Content-Type`:
//! browsers send JSON-looking text cross-site without a preflight only as
//! `text/plain` or with no type at all, and with no token nothing else would stop
//! a web page from posting to a loopback server. With a token configured, a
//! missing type is read as JSON (the Python behaviour).

use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::http::header::CONTENT_TYPE;
use serde_json::Value;

use crate::ApiState;
use crate::error::ApiError;
use conserver_core::json_bound::{TooComplex, check};

/// A JSON request body, not yet parsed.
pub struct JsonBody(pub Bytes);

/// What the `Content-Type` header says.
enum BodyType {
    Json,
    Missing,
    Other,
}

fn body_type(request: &Request) -> BodyType {
    let Some(value) = request.headers().get(CONTENT_TYPE) else { return BodyType::Missing };
    let content_type = value.to_str().unwrap_or_default().to_ascii_lowercase();
    let essence = content_type.split(';').next().unwrap_or_default().trim();
    if essence == "application/json" || (essence.starts_with("application/") && essence.ends_with("+json")) {
        BodyType::Json
    } else {
        BodyType::Other
    }
}

impl FromRequest<ApiState> for JsonBody {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &ApiState) -> Result<Self, Self::Rejection> {
        let kind = body_type(&request);
        if matches!(kind, BodyType::Missing) && state.settings.tokens.is_empty() {
            // Refused before the body is read.
            return Err(ApiError::invalid(
                "model_attributes_type",
                &["body"],
                "the body must be sent with Content-Type: application/json (this server has no API token, \
                 so bodies without a type are refused: they are what a web page can send without asking)",
                Value::Null,
            ));
        }
        let limit = state.settings.max_body_bytes;
        let secs = state.settings.guards.body_read_timeout_secs;
        let read = tokio::time::timeout(std::time::Duration::from_secs(secs), Bytes::from_request(request, state));
        let bytes = read.await.map_err(|_| ApiError::BodyTimeout(secs))?.map_err(|rejection| {
            if rejection.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::TooLarge(limit)
            } else {
                ApiError::invalid(
                    "body_read",
                    &["body"],
                    format!("cannot read the request body: {rejection}"),
                    Value::Null,
                )
            }
        })?;
        if matches!(kind, BodyType::Other) {
            return Err(ApiError::invalid(
                "model_attributes_type",
                &["body"],
                "the body must be JSON (Content-Type: application/json)",
                Value::String(String::from_utf8_lossy(&bytes).chars().take(200).collect()),
            ));
        }
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Err(ApiError::invalid("missing", &["body"], "Field required", Value::Null));
        }
        let guards = &state.settings.guards;
        check(&bytes, guards.max_json_values, guards.max_json_depth).map_err(|e| {
            ApiError::TooComplex(match e {
                TooComplex::Values(limit) => {
                    format!("the JSON body holds more than {limit} values (CONSERVER_MAX_JSON_VALUES)")
                }
                TooComplex::Depth(limit) => {
                    format!("the JSON body is nested deeper than {limit} levels (CONSERVER_MAX_JSON_DEPTH)")
                }
            })
        })?;
        Ok(Self(bytes))
    }
}
