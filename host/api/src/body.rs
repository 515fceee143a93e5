//! The request body of JSON routes: bytes under the configured size limit (413
//! otherwise, as JSON), refused with a 422 when the content type says it is not
//! JSON, as the Python server does.

use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::http::header::CONTENT_TYPE;
use serde_json::Value;

use crate::ApiState;
use crate::error::ApiError;

/// A JSON request body, not yet parsed.
pub struct JsonBody(pub Bytes);

impl FromRequest<ApiState> for JsonBody {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &ApiState) -> Result<Self, Self::Rejection> {
        let content_type =
            request.headers().get(CONTENT_TYPE).and_then(|v| v.to_str().ok()).map(str::to_ascii_lowercase);
        let is_json = content_type.as_deref().is_none_or(|ct| {
            let essence = ct.split(';').next().unwrap_or_default().trim();
            essence == "application/json" || (essence.starts_with("application/") && essence.ends_with("+json"))
        });
        let limit = state.settings.max_body_bytes;
        let bytes = Bytes::from_request(request, state).await.map_err(|rejection| {
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
        if !is_json {
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
        Ok(Self(bytes))
    }
}
