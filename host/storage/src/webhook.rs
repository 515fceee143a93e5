//! `storage.webhook`: POST the vCon to each URL of `webhook-urls` with the given
//! `headers`, as the Python backend (a `vcon` of `0.0.1`, or none, is sent as
//! `0.3.0`). Save only. Unlike the Python backend, requests time out (30 s) and a
//! non-2xx answer is a failure, so the chain's retry and DLQ policy apply.

use std::collections::BTreeMap;
use std::time::Duration;

use async_trait::async_trait;
use serde::Deserialize;
use serde_json::Value;

use crate::{Storage, StorageError};

/// Options of `storage.webhook`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WebhookOptions {
    /// Accepted for compatibility; unused.
    pub name: Option<String>,
    /// Where to POST each vCon.
    #[serde(rename = "webhook-urls")]
    pub webhook_urls: Vec<String>,
    /// Extra request headers.
    pub headers: BTreeMap<String, String>,
}

/// The webhook storage.
#[derive(Debug, Clone)]
pub struct WebhookStorage {
    name: String,
    options: WebhookOptions,
    client: reqwest::Client,
}

impl WebhookStorage {
    /// Check the options (every URL absolute http(s), every header valid).
    pub fn new(name: &str, value: Value) -> Result<Self, StorageError> {
        let invalid = |message: String| StorageError::Options { storage: name.to_string(), message };
        let options: WebhookOptions = if value.is_null() {
            WebhookOptions::default()
        } else {
            serde_json::from_value(value).map_err(|e| invalid(e.to_string()))?
        };
        for url in &options.webhook_urls {
            let parsed = reqwest::Url::parse(url)
                .map_err(|e| invalid(format!("webhook url `{}`: {e}", conserver_core::redact::redact_url(url))))?;
            if !matches!(parsed.scheme(), "http" | "https") {
                return Err(invalid(format!(
                    "webhook url `{}` must be http or https",
                    conserver_core::redact::redact_url(url)
                )));
            }
        }
        for (header, value) in &options.headers {
            reqwest::header::HeaderName::from_bytes(header.as_bytes())
                .map_err(|e| invalid(format!("header `{header}`: {e}")))?;
            reqwest::header::HeaderValue::from_str(value)
                .map_err(|e| invalid(format!("header `{header}` value: {e}")))?;
        }
        let client = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(5))
            .timeout(Duration::from_secs(30))
            .build()
            .map_err(|e| invalid(e.to_string()))?;
        Ok(Self { name: name.to_string(), options, client })
    }
}

#[async_trait]
impl Storage for WebhookStorage {
    fn name(&self) -> &str {
        &self.name
    }

    async fn save(&self, _uuid: &str, vcon_json: &str) -> Result<(), StorageError> {
        let failed = |message: String| StorageError::Backend { storage: self.name.clone(), operation: "POST", message };
        let mut document: Value = serde_json::from_str(vcon_json).map_err(|e| failed(e.to_string()))?;
        if let Value::Object(map) = &mut document
            && matches!(map.get("vcon").and_then(Value::as_str), None | Some("0.0.1"))
        {
            map.insert("vcon".into(), Value::String("0.3.0".into()));
        }
        for url in &self.options.webhook_urls {
            let mut request = self.client.post(url).json(&document);
            for (header, value) in &self.options.headers {
                request = request.header(header, value);
            }
            let response = request
                .send()
                .await
                .map_err(|e| failed(format!("{}: {}", conserver_core::redact::redact_url(url), e.without_url())))?;
            if !response.status().is_success() {
                return Err(failed(format!(
                    "{} answered {}",
                    conserver_core::redact::redact_url(url),
                    response.status()
                )));
            }
        }
        Ok(())
    }

    async fn get(&self, _uuid: &str) -> Result<Option<String>, StorageError> {
        Ok(None)
    }

    async fn delete(&self, _uuid: &str) -> Result<bool, StorageError> {
        Ok(false)
    }
}
