//! `storage.elasticsearch` (REST over reqwest): the Python backend's index layout.
//! A vCon is split into one document per party (`<prefix>vcon_parties[_<role>]`),
//! attachment (`<prefix>vcon_attachments_<type|purpose, lower-cased>`), analysis
//! (`<prefix>vcon_analysis_<type>`) and dialog (`<prefix>vcon_dialog`), each with id
//! `<uuid>_<index>` and the common fields `vcon_id`, `started_at` (the first
//! dialog's start) and `tenant_id` (the `id` of a `tenant` attachment). JSON bodies
//! are parsed so they are searchable. A vCon without dialogs is not stored.
//!
//! Documents go in one `_bulk` request; a document the cluster rejects is logged
//! (as Python does), while a cluster that cannot be reached or refuses the whole
//! request is a storage failure, so the chain's retry and DLQ policy apply.
//! Write and delete only: there is no `get`, so it is never used for the read
//! fallback. Unlike Python, TLS certificates are checked unless `verify_certs:
//! false` is set (Python silently stops checking when `ca_certs` is missing).

use std::time::Duration;

use async_trait::async_trait;
use base64::Engine as _;
use serde::Deserialize;
use serde_json::{Map, Value, json};

use crate::{Storage, StorageError};

/// Options of `storage.elasticsearch` (the Python names and defaults).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ElasticsearchOptions {
    /// Accepted for compatibility; unused.
    pub name: Option<String>,
    /// Elastic Cloud deployment id (`name:base64(host$es_id$kibana_id)`); selects
    /// Elastic Cloud when set.
    pub cloud_id: String,
    /// API key (`Authorization: ApiKey …`); with `cloud_id` or alone.
    pub api_key: String,
    /// Accepted for compatibility; unused (Python never reads it either).
    pub index: Option<String>,
    /// A PEM file of the CA that signed the cluster's certificate.
    pub ca_certs: Option<String>,
    /// The cluster URL for a self-hosted Elasticsearch (`https://host:9200`).
    pub url: Option<String>,
    /// Basic-auth user.
    pub username: Option<String>,
    /// Basic-auth password.
    pub password: Option<String>,
    /// Prefix of every index name.
    pub index_prefix: String,
    /// Check the cluster's TLS certificate (default true).
    pub verify_certs: bool,
    /// Seconds a request may take (default 30).
    pub timeout_secs: u64,
}

impl Default for ElasticsearchOptions {
    fn default() -> Self {
        Self {
            name: None,
            cloud_id: String::new(),
            api_key: String::new(),
            index: None,
            ca_certs: None,
            url: None,
            username: None,
            password: None,
            index_prefix: String::new(),
            verify_certs: true,
            timeout_secs: 30,
        }
    }
}

/// The Elasticsearch storage.
#[derive(Debug, Clone)]
pub struct ElasticsearchStorage {
    name: String,
    base: String,
    prefix: String,
    auth: Option<String>,
    client: reqwest::Client,
}

/// The cluster URL encoded in an Elastic Cloud id.
pub fn cloud_url(cloud_id: &str) -> Option<String> {
    let encoded = cloud_id.rsplit_once(':').map_or(cloud_id, |(_, data)| data);
    let decoded = base64::engine::general_purpose::STANDARD.decode(encoded.trim()).ok()?;
    let decoded = String::from_utf8(decoded).ok()?;
    let mut parts = decoded.split('$');
    let host = parts.next().filter(|h| !h.is_empty())?;
    let es_id = parts.next().filter(|id| !id.is_empty())?;
    let (host, port) = host.split_once(':').map_or((host, None), |(h, p)| (h, Some(p)));
    Some(match port {
        Some(port) if port != "443" => format!("https://{es_id}.{host}:{port}"),
        _ => format!("https://{es_id}.{host}"),
    })
}

impl ElasticsearchStorage {
    /// Check the options and build the client (no request is made yet).
    pub fn new(name: &str, value: Value) -> Result<Self, StorageError> {
        let invalid = |message: String| StorageError::Options { storage: name.to_string(), message };
        let options: ElasticsearchOptions = if value.is_null() {
            ElasticsearchOptions::default()
        } else {
            serde_json::from_value(value).map_err(|e| invalid(e.to_string()))?
        };
        let (base, auth) = if !options.cloud_id.is_empty() {
            let url = cloud_url(&options.cloud_id)
                .ok_or_else(|| invalid("`cloud_id` is not an Elastic Cloud id (name:base64)".into()))?;
            (url, api_key_header(&options.api_key))
        } else if let Some(url) = options.url.as_deref().filter(|u| !u.is_empty()) {
            let auth = match (&options.username, &options.password) {
                (Some(user), password) if !user.is_empty() => {
                    let pair = format!("{user}:{}", password.as_deref().unwrap_or(""));
                    Some(format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(pair)))
                }
                _ => api_key_header(&options.api_key),
            };
            (url.trim_end_matches('/').to_string(), auth)
        } else {
            return Err(invalid("set `url` (self-hosted) or `cloud_id` and `api_key` (Elastic Cloud)".into()));
        };
        let parsed = reqwest::Url::parse(&base)
            .map_err(|e| invalid(format!("url `{}`: {e}", conserver_core::redact::redact_url(&base))))?;
        if !matches!(parsed.scheme(), "http" | "https") {
            return Err(invalid(format!("url `{}` must be http or https", conserver_core::redact::redact_url(&base))));
        }
        let mut builder = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(5))
            .timeout(Duration::from_secs(options.timeout_secs.max(1)));
        if let Some(path) = options.ca_certs.as_deref().filter(|p| !p.is_empty()) {
            let pem = std::fs::read(path).map_err(|e| invalid(format!("ca_certs `{path}`: {e}")))?;
            let certificate = reqwest::Certificate::from_pem(&pem)
                .map_err(|e| invalid(format!("ca_certs `{path}` is not a PEM certificate: {e}")))?;
            builder = builder.add_root_certificate(certificate);
        }
        if !options.verify_certs {
            builder = builder.danger_accept_invalid_certs(true);
        }
        let client = builder.build().map_err(|e| invalid(e.to_string()))?;
        Ok(Self { name: name.to_string(), base, prefix: options.index_prefix, auth, client })
    }

    fn failed(&self, operation: &'static str, message: String) -> StorageError {
        StorageError::Backend { storage: self.name.clone(), operation, message }
    }

    fn request(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        let request = self.client.request(method, format!("{}/{path}", self.base));
        match &self.auth {
            Some(auth) => request.header(reqwest::header::AUTHORIZATION, auth),
            None => request,
        }
    }

    async fn send(&self, operation: &'static str, request: reqwest::RequestBuilder) -> Result<Value, StorageError> {
        let response = request.send().await.map_err(|e| {
            self.failed(operation, format!("{}: {}", conserver_core::redact::redact_url(&self.base), e.without_url()))
        })?;
        let status = response.status();
        let body = response.text().await.map_err(|e| self.failed(operation, e.without_url().to_string()))?;
        if !status.is_success() {
            return Err(self.failed(
                operation,
                format!("{} answered {status}: {}", conserver_core::redact::redact_url(&self.base), clip(&body)),
            ));
        }
        serde_json::from_str(&body).map_err(|e| self.failed(operation, format!("unreadable answer: {e}")))
    }
}

fn api_key_header(api_key: &str) -> Option<String> {
    (!api_key.is_empty()).then(|| format!("ApiKey {api_key}"))
}

fn clip(text: &str) -> &str {
    text.get(..300).unwrap_or(text)
}

/// One document to index.
#[derive(Debug, Clone, PartialEq)]
pub struct IndexedDocument {
    /// The index name.
    pub index: String,
    /// The document id.
    pub id: String,
    /// The document.
    pub document: Map<String, Value>,
}

/// Split a vCon into the documents the Python backend indexes (none when the vCon
/// has no dialogs).
pub fn documents(prefix: &str, uuid: &str, vcon: &Map<String, Value>) -> Vec<IndexedDocument> {
    let section = |key: &str| vcon.get(key).and_then(Value::as_array).cloned().unwrap_or_default();
    let dialogs = section("dialog");
    let Some(first) = dialogs.first() else { return Vec::new() };
    let mut common = Map::new();
    common.insert("vcon_id".into(), Value::String(uuid.to_string()));
    common.insert("started_at".into(), first.get("start").cloned().unwrap_or(Value::Null));
    let attachments = section("attachments");
    if let Some(tenant) = attachments.iter().find(|a| kind(a).is_some_and(|k| k == "tenant"))
        && let Some(id) = tenant.as_object().map(parsed_body).and_then(|body| body.get("id").cloned())
    {
        common.insert("tenant_id".into(), id);
    }
    let mut out = Vec::new();
    let mut push = |index: String, position: usize, part: &Value, parse_body: bool| {
        let Value::Object(part) = part else { return };
        let mut document = part.clone();
        if parse_body && document.contains_key("body") {
            let body = parsed_body(&document);
            document.insert("body".into(), body);
        }
        document.extend(common.clone());
        out.push(IndexedDocument { index, id: format!("{uuid}_{position}"), document });
    };
    for (i, party) in section("parties").iter().enumerate() {
        let role =
            party.pointer("/meta/role").or_else(|| party.get("role")).and_then(Value::as_str).filter(|r| !r.is_empty());
        let index = match role {
            Some(role) => format!("{prefix}vcon_parties_{role}"),
            None => format!("{prefix}vcon_parties"),
        };
        push(index, i, party, false);
    }
    for (i, attachment) in attachments.iter().enumerate() {
        let kind = kind(attachment).unwrap_or("untyped").to_lowercase();
        push(format!("{prefix}vcon_attachments_{kind}"), i, attachment, true);
    }
    for (i, analysis) in section("analysis").iter().enumerate() {
        let kind = analysis.get("type").and_then(Value::as_str).unwrap_or("untyped");
        push(format!("{prefix}vcon_analysis_{kind}"), i, analysis, true);
    }
    for (i, dialog) in dialogs.iter().enumerate() {
        push(format!("{prefix}vcon_dialog"), i, dialog, false);
    }
    out
}

/// An attachment's `type`, else its `purpose`.
fn kind(part: &Value) -> Option<&str> {
    part.get("type").or_else(|| part.get("purpose")).and_then(Value::as_str)
}

/// The body, parsed when it is a JSON-encoded string (`encoding: json`).
fn parsed_body(part: &Map<String, Value>) -> Value {
    let body = part.get("body").cloned().unwrap_or(Value::Null);
    match (&body, part.get("encoding").and_then(Value::as_str)) {
        (Value::String(text), Some("json")) => serde_json::from_str(text).unwrap_or(body),
        _ => body,
    }
}

#[async_trait]
impl Storage for ElasticsearchStorage {
    fn name(&self) -> &str {
        &self.name
    }

    async fn save(&self, uuid: &str, vcon_json: &str) -> Result<(), StorageError> {
        let vcon: Map<String, Value> =
            serde_json::from_str(vcon_json).map_err(|e| self.failed("index", format!("vCon is not JSON: {e}")))?;
        let documents = documents(&self.prefix, uuid, &vcon);
        if documents.is_empty() {
            tracing::debug!(storage = %self.name, vcon_uuid = uuid, "no dialogs; nothing to index");
            return Ok(());
        }
        let mut body = String::new();
        for document in &documents {
            body.push_str(&json!({"index": {"_index": document.index, "_id": document.id}}).to_string());
            body.push('\n');
            body.push_str(&Value::Object(document.document.clone()).to_string());
            body.push('\n');
        }
        let request = self
            .request(reqwest::Method::POST, "_bulk")
            .header(reqwest::header::CONTENT_TYPE, "application/x-ndjson")
            .body(body);
        let answer = self.send("index", request).await?;
        if answer.get("errors").and_then(Value::as_bool) == Some(true) {
            let items = answer.get("items").and_then(Value::as_array).cloned().unwrap_or_default();
            for item in items {
                let Some(outcome) = item.get("index") else { continue };
                if let Some(error) = outcome.get("error") {
                    tracing::error!(storage = %self.name, vcon_uuid = uuid, index = %outcome["_index"], id = %outcome["_id"], %error, "Elasticsearch refused a document");
                }
            }
        }
        Ok(())
    }

    async fn get(&self, _uuid: &str) -> Result<Option<String>, StorageError> {
        Ok(None)
    }

    async fn delete(&self, uuid: &str) -> Result<bool, StorageError> {
        let pattern = format!("{}vcon*", self.prefix);
        let aliases = self.send("delete", self.request(reqwest::Method::GET, &format!("{pattern}/_alias"))).await?;
        let indices: Vec<&String> = aliases.as_object().map(|m| m.keys().collect()).unwrap_or_default();
        if indices.is_empty() {
            return Ok(false);
        }
        let joined = indices.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(",");
        let request = self
            .request(reqwest::Method::POST, &format!("{joined}/_delete_by_query?refresh=true"))
            .json(&json!({"query": {"match": {"vcon_id": uuid}}}));
        let answer = self.send("delete", request).await?;
        Ok(answer.get("deleted").and_then(Value::as_u64).unwrap_or(0) > 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cloud_ids_decode_to_the_cluster_url() {
        let id = format!("prod:{}", base64::engine::general_purpose::STANDARD.encode("eu-west-1.aws.found.io$abc$kib"));
        assert_eq!(cloud_url(&id).as_deref(), Some("https://abc.eu-west-1.aws.found.io"));
        let with_port = base64::engine::general_purpose::STANDARD.encode("host.io:9243$es$kb");
        assert_eq!(cloud_url(&with_port).as_deref(), Some("https://es.host.io:9243"));
        assert_eq!(cloud_url("prod:not base64"), None);
    }

    #[test]
    fn a_vcon_is_split_like_the_python_backend() {
        let vcon = json!({
            "uuid": "u",
            "dialog": [{"type": "text", "start": "2026-06-05T00:00:00+00:00", "body": "hi"}],
            "parties": [{"tel": "+1", "meta": {"role": "agent"}}, {"tel": "+2"}],
            "attachments": [
                {"purpose": "tenant", "body": "{\"id\": 385}", "encoding": "json"},
                {"type": "Tags", "body": ["a:b"], "encoding": "json"}
            ],
            "analysis": [{"type": "summary", "body": "{\"text\": \"hi\"}", "encoding": "json"}]
        });
        let docs = documents("p_", "u", vcon.as_object().unwrap());
        let names: Vec<(&str, &str)> = docs.iter().map(|d| (d.index.as_str(), d.id.as_str())).collect();
        assert_eq!(
            names,
            [
                ("p_vcon_parties_agent", "u_0"),
                ("p_vcon_parties", "u_1"),
                ("p_vcon_attachments_tenant", "u_0"),
                ("p_vcon_attachments_tags", "u_1"),
                ("p_vcon_analysis_summary", "u_0"),
                ("p_vcon_dialog", "u_0"),
            ]
        );
        assert_eq!(docs[2].document["body"], json!({"id": 385}));
        assert_eq!(docs[4].document["body"], json!({"text": "hi"}));
        for doc in &docs {
            assert_eq!(doc.document["vcon_id"], "u");
            assert_eq!(doc.document["tenant_id"], 385);
            assert_eq!(doc.document["started_at"], "2026-06-05T00:00:00+00:00");
        }
        assert!(documents("", "u", json!({"parties": [{}], "dialog": []}).as_object().unwrap()).is_empty());
    }

    #[test]
    fn options_need_a_cluster() {
        assert!(ElasticsearchStorage::new("es", Value::Null).is_err());
        assert!(ElasticsearchStorage::new("es", json!({"url": "ftp://x"})).is_err());
        assert!(ElasticsearchStorage::new("es", json!({"url": "http://127.0.0.1:9200", "username": "u"})).is_ok());
        assert!(ElasticsearchStorage::new("es", json!({"url": "http://x", "ca_certs": "/nonexistent.pem"})).is_err());
    }
}
