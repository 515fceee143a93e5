//! `storage.s3` (object_store): the Python backend's key layout — the vCon at
//! `[s3_path/]YYYY/MM/DD/<uuid>.vcon` (the date of `created_at` as written) and a
//! pointer `[s3_path/]lookup/<uuid>.txt` holding `YYYY/MM/DD` — on AWS or any
//! S3-compatible service (`endpoint_url`). Credentials come from the options, else
//! the standard `AWS_*` environment (and `${VAR}`/`*_FILE` in the config). An
//! endpoint signed by a private CA is trusted through `ca_bundle` (a PEM file),
//! else `AWS_CA_BUNDLE` as boto3 reads it; the bundled web roots stay trusted.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::NaiveDate;
use object_store::aws::{AmazonS3Builder, AmazonS3ConfigKey};
use object_store::path::Path;
use object_store::{Certificate, ClientOptions, ObjectStore, ObjectStoreExt, PutPayload, RetryConfig};
use serde::Deserialize;
use serde_json::Value;

use crate::{Storage, StorageError};

/// Options of `storage.s3` (the Python names; empty strings mean unset).
#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct S3Options {
    /// Accepted for compatibility; unused.
    pub name: Option<String>,
    /// Access key; the `AWS_ACCESS_KEY_ID` environment when empty.
    pub aws_access_key_id: String,
    /// Secret key; the `AWS_SECRET_ACCESS_KEY` environment when empty.
    pub aws_secret_access_key: String,
    /// The bucket (required).
    pub aws_bucket: String,
    /// Region; the environment (or `us-east-1`) when empty.
    pub aws_region: Option<String>,
    /// An S3-compatible endpoint (MinIO, moto, …); AWS when empty.
    pub endpoint_url: Option<String>,
    /// Key prefix (a trailing `/` is ignored).
    pub s3_path: String,
    /// PEM file of extra CA certificates for the endpoint's TLS certificate;
    /// `AWS_CA_BUNDLE` when empty.
    pub ca_bundle: Option<String>,
}

/// The certificates in the PEM file `file` (named by `source`).
fn read_ca_bundle(source: &str, file: &str) -> Result<Vec<Certificate>, String> {
    let pem = std::fs::read(file).map_err(|e| format!("cannot read {source} {file}: {e}"))?;
    let certificates = Certificate::from_pem_bundle(&pem)
        .map_err(|e| format!("{source} {file} is not a PEM file of CA certificates: {e}"))?;
    if certificates.is_empty() {
        return Err(format!("{source} {file} holds no certificate (expected `-----BEGIN CERTIFICATE-----` blocks)"));
    }
    Ok(certificates)
}

/// The S3 storage.
#[derive(Debug, Clone)]
pub struct S3Storage {
    name: String,
    prefix: String,
    store: Arc<dyn ObjectStore>,
}

impl S3Storage {
    /// Check the options and build the client (no request is made yet).
    pub fn new(name: &str, value: Value) -> Result<Self, StorageError> {
        let invalid = |message: String| StorageError::Options { storage: name.to_string(), message };
        let options: S3Options = serde_json::from_value(value).map_err(|e| invalid(e.to_string()))?;
        if options.aws_bucket.is_empty() {
            return Err(invalid("`aws_bucket` is required".into()));
        }
        let ca_bundle =
            options.ca_bundle.clone().filter(|p| !p.is_empty()).map(|p| ("ca_bundle", p)).or_else(|| {
                std::env::var("AWS_CA_BUNDLE").ok().filter(|p| !p.is_empty()).map(|p| ("AWS_CA_BUNDLE", p))
            });
        let mut client = ClientOptions::new();
        if let Some((source, file)) = ca_bundle {
            for certificate in read_ca_bundle(source, &file).map_err(invalid)? {
                client = client.with_root_certificate(certificate);
            }
        }
        // What `AmazonS3Builder::from_env` does, over client options that keep the CA.
        let mut builder = AmazonS3Builder::new().with_client_options(client);
        for (key, value) in std::env::vars_os() {
            if let (Some(key), Some(value)) = (key.to_str(), value.to_str())
                && key.starts_with("AWS_")
                && let Ok(config_key) = key.to_ascii_lowercase().parse::<AmazonS3ConfigKey>()
            {
                builder = builder.with_config(config_key, value);
            }
        }
        let mut builder = builder.with_bucket_name(&options.aws_bucket);
        if !options.aws_access_key_id.is_empty() {
            builder = builder.with_access_key_id(&options.aws_access_key_id);
        }
        if !options.aws_secret_access_key.is_empty() {
            builder = builder.with_secret_access_key(&options.aws_secret_access_key);
        }
        if let Some(region) = options.aws_region.as_deref().filter(|r| !r.is_empty()) {
            builder = builder.with_region(region);
        }
        if let Some(endpoint) = options.endpoint_url.as_deref().filter(|e| !e.is_empty()) {
            builder = builder.with_endpoint(endpoint).with_allow_http(endpoint.starts_with("http://"));
        }
        // A few quick retries here; the chain's `storage_retry_secs` rides out a
        // longer outage (object_store's own default retries for 3 minutes).
        let retry = RetryConfig { max_retries: 3, retry_timeout: Duration::from_secs(10), ..RetryConfig::default() };
        let store = builder.with_retry(retry).build().map_err(|e| invalid(e.to_string()))?;
        Ok(Self {
            name: name.to_string(),
            prefix: options.s3_path.trim_end_matches('/').to_string(),
            store: Arc::new(store),
        })
    }

    fn key(&self, tail: &str) -> Path {
        if self.prefix.is_empty() { Path::from(tail) } else { Path::from(format!("{}/{tail}", self.prefix)) }
    }

    fn failed(&self, operation: &'static str) -> impl Fn(object_store::Error) -> StorageError + '_ {
        move |e| StorageError::Backend { storage: self.name.clone(), operation, message: e.to_string() }
    }

    async fn read(&self, path: &Path) -> Result<Option<String>, StorageError> {
        match self.store.get(path).await {
            Ok(result) => {
                let bytes = result.bytes().await.map_err(self.failed("read"))?;
                Ok(Some(String::from_utf8_lossy(&bytes).into_owned()))
            }
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(self.failed("get")(e)),
        }
    }
}

/// `YYYY/MM/DD` of `created_at` as written (no time zone conversion); today when
/// it has no readable date.
pub fn date_prefix(created_at: Option<&str>) -> String {
    created_at
        .and_then(|text| text.get(..10))
        .and_then(|date| NaiveDate::parse_from_str(date, "%Y-%m-%d").ok())
        .unwrap_or_else(|| chrono::Utc::now().date_naive())
        .format("%Y/%m/%d")
        .to_string()
}

#[async_trait]
impl Storage for S3Storage {
    fn name(&self) -> &str {
        &self.name
    }

    async fn save(&self, uuid: &str, vcon_json: &str) -> Result<(), StorageError> {
        let created_at =
            serde_json::from_str::<Value>(vcon_json).ok().and_then(|v| v["created_at"].as_str().map(String::from));
        let date = date_prefix(created_at.as_deref());
        let object = self.key(&format!("{date}/{uuid}.vcon"));
        self.store.put(&object, PutPayload::from(vcon_json.to_string())).await.map_err(self.failed("put"))?;
        let pointer = self.key(&format!("lookup/{uuid}.txt"));
        self.store.put(&pointer, PutPayload::from(date)).await.map_err(self.failed("put lookup"))?;
        Ok(())
    }

    async fn get(&self, uuid: &str) -> Result<Option<String>, StorageError> {
        let Some(date) = self.read(&self.key(&format!("lookup/{uuid}.txt"))).await? else { return Ok(None) };
        self.read(&self.key(&format!("{}/{uuid}.vcon", date.trim()))).await
    }

    async fn delete(&self, uuid: &str) -> Result<bool, StorageError> {
        let pointer = self.key(&format!("lookup/{uuid}.txt"));
        let Some(date) = self.read(&pointer).await? else { return Ok(false) };
        let object = self.key(&format!("{}/{uuid}.vcon", date.trim()));
        for path in [&object, &pointer] {
            match self.store.delete(path).await {
                Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
                Err(e) => return Err(self.failed("delete")(e)),
            }
        }
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn dates_are_taken_as_written() {
        assert_eq!(date_prefix(Some("2025-12-10T15:30:00Z")), "2025/12/10");
        assert_eq!(date_prefix(Some("2025-01-02")), "2025/01/02");
        assert_eq!(date_prefix(Some("2025-12-10T23:30:00-05:00")), "2025/12/10");
    }

    #[test]
    fn keys_follow_the_python_layout() {
        let s3 =
            S3Storage::new("s3", json!({"aws_bucket": "b", "s3_path": "archive/", "aws_region": "us-east-1"})).unwrap();
        assert_eq!(s3.key("lookup/u.txt").as_ref(), "archive/lookup/u.txt");
        let bare = S3Storage::new("s3", json!({"aws_bucket": "b", "aws_region": "us-east-1"})).unwrap();
        assert_eq!(bare.key("2025/01/02/u.vcon").as_ref(), "2025/01/02/u.vcon");
        assert!(S3Storage::new("s3", json!({"aws_bucket": ""})).is_err());
        assert!(S3Storage::new("s3", json!({"bucket": "typo"})).is_err());
    }
}
