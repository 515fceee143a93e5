//! Query strings: repeated keys (`?ingress_lists=a&ingress_lists=b`), which the
//! Python API uses and serde_urlencoded cannot read into a list, and typed
//! parameters whose errors are FastAPI-shaped 422s naming the parameter.

use conserver_core::epoch_seconds;
use serde_json::Value;

use crate::error::ApiError;

/// A parsed query string.
pub struct Query(Vec<(String, String)>);

impl Query {
    /// Parse the raw query (absent means empty).
    pub fn parse(raw: Option<&str>) -> Self {
        Self(raw.map(|q| form_urlencoded::parse(q.as_bytes()).into_owned().collect()).unwrap_or_default())
    }

    /// Every value of `key`, in order.
    pub fn all(&self, key: &str) -> Vec<String> {
        self.0.iter().filter(|(k, _)| k == key).map(|(_, v)| v.clone()).collect()
    }

    /// The last value of `key` (as FastAPI takes it).
    pub fn last(&self, key: &str) -> Option<String> {
        self.0.iter().rev().find(|(k, _)| k == key).map(|(_, v)| v.clone())
    }

    /// Whether `key` appears at all.
    pub fn has(&self, key: &str) -> bool {
        self.0.iter().any(|(k, _)| k == key)
    }

    /// A required parameter (422 `missing` when absent).
    pub fn required(&self, key: &'static str) -> Result<String, ApiError> {
        self.last(key).ok_or_else(|| ApiError::invalid("missing", &["query", key], "Field required", Value::Null))
    }

    /// An optional integer in `min..=max`, else `default`. Values that are not whole
    /// numbers, or are out of range (10^30, NaN, …), are a 422 naming the parameter.
    pub fn integer(&self, key: &'static str, default: i64, min: i64, max: i64) -> Result<i64, ApiError> {
        let Some(text) = self.last(key) else { return Ok(default) };
        match text.trim().parse::<i64>() {
            Ok(n) if (min..=max).contains(&n) => Ok(n),
            _ => Err(ApiError::invalid(
                "int_parsing",
                &["query", key],
                format!("query parameter `{key}` must be a whole number from {min} to {max}"),
                Value::String(text),
            )),
        }
    }

    /// An optional date-time (ISO 8601 or epoch seconds) as epoch seconds.
    pub fn datetime(&self, key: &'static str) -> Result<Option<f64>, ApiError> {
        let Some(text) = self.last(key) else { return Ok(None) };
        let value = Value::String(text.clone());
        epoch_seconds(&value).map(Some).ok_or_else(|| {
            ApiError::invalid(
                "datetime_parsing",
                &["query", key],
                format!("query parameter `{key}` must be a date-time such as 2024-01-31T12:00:00Z"),
                value,
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repeated_keys_keep_their_order_and_commas_stay_literal() {
        let q = Query::parse(Some("a=1&b=2&a=x%2Cy"));
        assert_eq!(q.all("a"), ["1", "x,y"]);
        assert_eq!(q.last("a").as_deref(), Some("x,y"));
        assert!(Query::parse(None).all("a").is_empty());
    }

    #[test]
    fn integers_are_bounded_and_named() {
        let q = Query::parse(Some("limit=1000000000000000000000000000000&n=NaN&ok=5&neg=-1"));
        assert!(q.integer("limit", 1, 0, 100).is_err());
        assert!(q.integer("n", 1, 0, 100).is_err());
        assert!(q.integer("neg", 1, 0, 100).is_err());
        assert_eq!(q.integer("ok", 1, 0, 100).unwrap(), 5);
        assert_eq!(q.integer("absent", 7, 0, 100).unwrap(), 7);
    }
}
