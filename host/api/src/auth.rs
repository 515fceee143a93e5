//! Token checks. Protected routes need the header named by `CONSERVER_HEADER_NAME`
//! to equal one of the main tokens; `POST /vcon/external-ingress` instead needs a
//! key listed for its ingress list under `ingress_auth` (main tokens do not work
//! there). Comparisons are constant-time. No main tokens means the API is open.

use axum::extract::{Request, State};
use axum::http::HeaderMap;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde_json::Value;
use subtle::ConstantTimeEq;

use crate::error::ApiError;
use crate::{ApiState, LiveConfig};

/// Whether `presented` equals any of `accepted`, comparing against every one so the
/// timing does not reveal which matched.
pub(crate) fn matches_any<'a>(accepted: impl IntoIterator<Item = &'a str>, presented: &[u8]) -> bool {
    let matched = accepted.into_iter().fold(subtle::Choice::from(0), |acc, key| acc | key.as_bytes().ct_eq(presented));
    bool::from(matched)
}

/// The token header's value, if present and not empty.
pub fn presented<'a>(headers: &'a HeaderMap, state: &ApiState) -> Option<&'a [u8]> {
    headers.get(state.settings.header.as_str()).map(|v| v.as_bytes()).filter(|v| !v.is_empty())
}

/// Middleware: 403 `Invalid API Key` unless the request carries a main token.
pub async fn require_token(State(state): State<ApiState>, request: Request, next: Next) -> Response {
    let tokens = &state.settings.tokens;
    if tokens.is_empty() {
        return next.run(request).await;
    }
    match presented(request.headers(), &state) {
        Some(key) if matches_any(tokens.iter().map(String::as_str), key) => next.run(request).await,
        _ => ApiError::invalid_api_key().into_response(),
    }
}

/// The `ingress_auth` check of external-ingress, with the Python server's messages.
pub fn check_ingress_key(live: &LiveConfig, list: &str, key: Option<&[u8]>) -> Result<(), ApiError> {
    let forbidden = |text: String| Err(ApiError::Forbidden(text));
    let Some(key) = key else { return forbidden("API Key required".into()) };
    if live.ingress_auth.is_empty() {
        return forbidden("No ingress authentication configured".into());
    }
    let Some(configured) = live.ingress_auth.get(list) else {
        return forbidden(format!("Ingress list '{list}' not configured"));
    };
    let accepted: Vec<&str> = match configured {
        Value::String(one) => vec![one.as_str()],
        Value::Array(many) => many.iter().filter_map(Value::as_str).collect(),
        _ => return forbidden(format!("Invalid configuration for ingress list '{list}'")),
    };
    if matches_any(accepted, key) { Ok(()) } else { forbidden(format!("Invalid API Key for ingress list '{list}'")) }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn live(auth: Value) -> LiveConfig {
        LiveConfig { ingress_auth: serde_json::from_value(auth).unwrap(), ..LiveConfig::default() }
    }

    fn message(result: Result<(), ApiError>) -> String {
        match result {
            Err(ApiError::Forbidden(text)) => text,
            other => panic!("expected 403, got {other:?}"),
        }
    }

    #[test]
    fn ingress_keys_follow_the_python_table() {
        let config = live(json!({"a": "ka", "b": ["kb1", "kb2"], "bad": {"x": 1}}));
        assert!(check_ingress_key(&config, "a", Some(b"ka")).is_ok());
        assert!(check_ingress_key(&config, "b", Some(b"kb2")).is_ok());
        assert_eq!(message(check_ingress_key(&config, "a", None)), "API Key required");
        assert_eq!(
            message(check_ingress_key(&live(json!({})), "a", Some(b"k"))),
            "No ingress authentication configured"
        );
        assert_eq!(message(check_ingress_key(&config, "c", Some(b"ka"))), "Ingress list 'c' not configured");
        assert_eq!(
            message(check_ingress_key(&config, "bad", Some(b"k"))),
            "Invalid configuration for ingress list 'bad'"
        );
        assert_eq!(message(check_ingress_key(&config, "a", Some(b"kb1"))), "Invalid API Key for ingress list 'a'");
    }
}
