//! An OpenAI-compatible embeddings client, chosen from storage options the way the
//! Python conserver's `get_openai_client` does: a LiteLLM proxy
//! (`LITELLM_PROXY_URL` + `LITELLM_MASTER_KEY`), else Azure OpenAI
//! (`AZURE_OPENAI_ENDPOINT` + `AZURE_OPENAI_API_KEY`, `AZURE_OPENAI_API_VERSION`),
//! else OpenAI (`OPENAI_API_KEY` / `openai_api_key` / `api_key`, optional
//! `organization`, `project`, and `base_url` for any compatible server). The keys
//! are read from the options, never from the environment (use `${VAR}` in the
//! config for that).

use std::time::Duration;

use serde_json::{Map, Value, json};

/// Where and how to ask for embeddings.
#[derive(Debug, Clone)]
pub struct EmbeddingsClient {
    url: String,
    headers: Vec<(&'static str, String)>,
    /// Whether the model goes in the body (not for Azure, where it names the deployment).
    send_model: bool,
    client: reqwest::Client,
}

/// Why no embedding came back.
#[derive(Debug, thiserror::Error)]
pub enum EmbeddingsError {
    /// The options name no endpoint.
    #[error(
        "no embeddings endpoint configured: set `api_key` (OpenAI), `AZURE_OPENAI_ENDPOINT` + `AZURE_OPENAI_API_KEY`, or `LITELLM_PROXY_URL` + `LITELLM_MASTER_KEY` in the options"
    )]
    NotConfigured,
    /// The request failed or the answer was not an embedding.
    #[error("embeddings request to {url} failed: {message}")]
    Request {
        /// The endpoint.
        url: String,
        /// What went wrong.
        message: String,
    },
}

fn option<'a>(options: &'a Map<String, Value>, key: &str) -> Option<&'a str> {
    options.get(key).and_then(Value::as_str).filter(|v| !v.is_empty())
}

impl EmbeddingsClient {
    /// The endpoint the options select, for `model`.
    pub fn from_options(options: &Map<String, Value>, model: &str) -> Result<Self, EmbeddingsError> {
        let client = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(5))
            .timeout(Duration::from_secs(120))
            .build()
            .map_err(|e| EmbeddingsError::Request { url: String::new(), message: e.to_string() })?;
        if let (Some(proxy), Some(key)) = (option(options, "LITELLM_PROXY_URL"), option(options, "LITELLM_MASTER_KEY"))
        {
            return Ok(Self {
                url: format!("{}/embeddings", proxy.trim_end_matches('/')),
                headers: vec![("authorization", format!("Bearer {key}"))],
                send_model: true,
                client,
            });
        }
        if let (Some(endpoint), Some(key)) =
            (option(options, "AZURE_OPENAI_ENDPOINT"), option(options, "AZURE_OPENAI_API_KEY"))
        {
            let version = option(options, "AZURE_OPENAI_API_VERSION").unwrap_or("2024-10-21");
            return Ok(Self {
                url: format!(
                    "{}/openai/deployments/{model}/embeddings?api-version={version}",
                    endpoint.trim_end_matches('/')
                ),
                headers: vec![("api-key", key.to_string())],
                send_model: false,
                client,
            });
        }
        let key = ["OPENAI_API_KEY", "openai_api_key", "api_key"]
            .iter()
            .find_map(|k| option(options, k))
            .ok_or(EmbeddingsError::NotConfigured)?;
        let base = option(options, "base_url").unwrap_or("https://api.openai.com/v1");
        let mut headers = vec![("authorization", format!("Bearer {key}"))];
        if let Some(organization) = option(options, "organization") {
            headers.push(("openai-organization", organization.to_string()));
        }
        if let Some(project) = option(options, "project") {
            headers.push(("openai-project", project.to_string()));
        }
        Ok(Self { url: format!("{}/embeddings", base.trim_end_matches('/')), headers, send_model: true, client })
    }

    /// The embedding of `text`.
    pub async fn embed(&self, model: &str, text: &str) -> Result<Vec<f32>, EmbeddingsError> {
        let failed =
            |message: String| EmbeddingsError::Request { url: conserver_core::redact::redact_url(&self.url), message };
        let body = if self.send_model { json!({"model": model, "input": text}) } else { json!({"input": text}) };
        let mut request = self.client.post(&self.url).json(&body);
        for (name, value) in &self.headers {
            request = request.header(*name, value);
        }
        let response = request.send().await.map_err(|e| failed(e.without_url().to_string()))?;
        let status = response.status();
        let answer: Value =
            response.json().await.map_err(|e| failed(format!("{status}: unreadable answer: {}", e.without_url())))?;
        if !status.is_success() {
            let message = answer.pointer("/error/message").and_then(Value::as_str).unwrap_or("no message");
            return Err(failed(format!("{status}: {message}")));
        }
        let vector = answer
            .pointer("/data/0/embedding")
            .and_then(Value::as_array)
            .ok_or_else(|| failed("the answer has no data[0].embedding".into()))?;
        vector
            .iter()
            .map(|x| x.as_f64().map(|x| x as f32).ok_or_else(|| failed("an embedding value is not a number".into())))
            .collect()
    }
}
