//! A small client for a running server's API, used by the operator commands: the
//! base URL, the token header (`CONSERVER_HEADER_NAME`) and answers turned into
//! errors that say what the server said.

use anyhow::{Context, Result, bail};
use conserver_config::Settings;
use reqwest::{Method, RequestBuilder, Response};

use crate::cli::ServerArgs;

/// Requests to one server.
#[derive(Clone)]
pub struct ApiClient {
    http: reqwest::Client,
    base: String,
    header: String,
    token: Option<String>,
}

impl ApiClient {
    /// From `--url`/`--token`, else `CONSERVER_API_TOKEN[_FILE]`.
    pub fn new(server: &ServerArgs, settings: &Settings) -> Result<Self> {
        let http = reqwest::Client::builder()
            .timeout(std::time::Duration::from_secs(120))
            .build()
            .context("building the HTTP client")?;
        Ok(Self {
            http,
            base: server.url.trim_end_matches('/').to_string(),
            header: settings.api_header.clone(),
            token: server.token.clone().or_else(|| settings.api_tokens.first().cloned()),
        })
    }

    /// A request to `path` (which starts with `/`).
    pub fn request(&self, method: Method, path: &str) -> RequestBuilder {
        let request = self.http.request(method, format!("{}{path}", self.base));
        match &self.token {
            Some(token) => request.header(&self.header, token),
            None => request,
        }
    }

    /// Send, and turn a non-2xx answer into an error quoting the server.
    pub async fn send(&self, request: RequestBuilder, what: &str) -> Result<Response> {
        let response = request
            .send()
            .await
            .with_context(|| format!("{what}: cannot reach {} (is the server running? see --url)", self.base))?;
        let status = response.status();
        if status.is_success() {
            return Ok(response);
        }
        let body = response.text().await.unwrap_or_default();
        let hint = match status.as_u16() {
            403 => " (wrong or missing token: pass --token or set CONSERVER_API_TOKEN)",
            404 => " (not found)",
            _ => "",
        };
        bail!("{what}: the server answered {status}{hint}: {}", body.chars().take(2000).collect::<String>())
    }
}
