//! Which OpenAI-compatible server a link talks to, and how (Python's
//! `get_openai_client` and `get_vendor_from_opts`). First match wins:
//!
//! 1. `LITELLM_PROXY_URL` + `LITELLM_MASTER_KEY`: the LiteLLM proxy. Requests go to
//!    `<url>/chat/completions` (no `/v1` is added, as Python's synchronous client)
//!    with `Authorization: Bearer <master key>`.
//! 2. `AZURE_OPENAI_ENDPOINT` + `AZURE_OPENAI_API_KEY` (+ `AZURE_OPENAI_API_VERSION`,
//!    default `2024-10-21`): Azure OpenAI,
//!    `<endpoint>/openai/deployments/<model>/chat/completions?api-version=<v>` with
//!    an `api-key` header.
//! 3. `OPENAI_API_KEY`, else `openai_api_key`, else `api_key`: OpenAI,
//!    `https://api.openai.com/v1/chat/completions` with `Authorization: Bearer`.
//!    New: `base_url` sends to any OpenAI-compatible server instead (e.g.
//!    `http://vllm:8000/v1`); the key is then optional.
//!
//! Audio transcriptions (the `transcribe` link) go to the same servers'
//! `…/audio/transcriptions` ([`Provider::transcription_url`]).
//!
//! `organization` (or `organization_key`) and `project` (or `project_key`) add the
//! `OpenAI-Organization` / `OpenAI-Project` headers for LiteLLM and OpenAI.
//! URLs and keys are trimmed, and a trailing `/` of a URL dropped, as in Python.
//!
//! Credentials come from the link's options; when the key option is absent, the
//! granted secret of the same name (`LITELLM_MASTER_KEY`, `AZURE_OPENAI_API_KEY`,
//! `OPENAI_API_KEY`) is used. A key secret is only asked for when its provider's
//! URL option is set (OpenAI's always), so a link is not refused secrets it
//! does not need.

use conserver_link_sdk::http::Request;
use conserver_link_sdk::{Context, LinkError};
use serde_json::Value;

use crate::options::{get, invalid};
use crate::secret::secret;

/// Azure's API version when `AZURE_OPENAI_API_VERSION` is not set.
pub const DEFAULT_AZURE_API_VERSION: &str = "2024-10-21";
/// OpenAI's API root.
pub const OPENAI_BASE_URL: &str = "https://api.openai.com/v1";

/// The error when no provider is configured (Python's `ValueError` text, plus where
/// secrets fit).
pub const MISSING_CREDENTIALS: &str = "no LLM credentials: set LITELLM_PROXY_URL + LITELLM_MASTER_KEY, or \
     AZURE_OPENAI_ENDPOINT + AZURE_OPENAI_API_KEY, or OPENAI_API_KEY (or api_key) in the link's options, or \
     base_url for a server that needs no key; keys may instead be granted as secrets of the same name";

/// An OpenAI-compatible server and its credentials.
#[derive(Clone, PartialEq, Eq)]
pub enum Provider {
    /// A LiteLLM proxy.
    LiteLlm {
        /// The proxy URL, without a trailing `/`.
        base_url: String,
        /// The master key.
        key: String,
        /// `OpenAI-Organization`, if set.
        organization: Option<String>,
        /// `OpenAI-Project`, if set.
        project: Option<String>,
    },
    /// Azure OpenAI.
    Azure {
        /// The resource endpoint, without a trailing `/`.
        endpoint: String,
        /// The `api-key`.
        key: String,
        /// The `api-version` query value.
        api_version: String,
    },
    /// OpenAI, or any OpenAI-compatible server at `base_url`.
    OpenAi {
        /// The API root (`https://api.openai.com/v1` by default).
        base_url: String,
        /// The bearer key (optional only with a custom `base_url`).
        key: Option<String>,
        /// `OpenAI-Organization`, if set.
        organization: Option<String>,
        /// `OpenAI-Project`, if set.
        project: Option<String>,
    },
}

impl std::fmt::Debug for Provider {
    // Keys are left out, so a provider can be logged.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::LiteLlm { base_url, .. } => write!(f, "LiteLLM proxy at {base_url}"),
            Self::Azure { endpoint, api_version, .. } => write!(f, "Azure OpenAI at {endpoint} ({api_version})"),
            Self::OpenAi { base_url, .. } => write!(f, "OpenAI-compatible server at {base_url}"),
        }
    }
}

/// Why no provider could be chosen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProviderError {
    /// No credentials at all ([`MISSING_CREDENTIALS`]).
    Missing,
    /// An option is malformed.
    Invalid(LinkError),
}

impl From<ProviderError> for LinkError {
    fn from(error: ProviderError) -> Self {
        match error {
            ProviderError::Missing => LinkError::fatal(MISSING_CREDENTIALS),
            ProviderError::Invalid(error) => error,
        }
    }
}

impl From<LinkError> for ProviderError {
    fn from(error: LinkError) -> Self {
        Self::Invalid(error)
    }
}

/// A string option, trimmed; empty counts as absent (Python's `or`).
fn text(ctx: &Context, key: &str) -> Result<Option<String>, LinkError> {
    match get(ctx, key) {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.trim().to_string()).filter(|s| !s.is_empty())),
        Some(other) => Err(invalid(ctx, key, "a string", other)),
    }
}

/// A URL option: trimmed, without trailing `/`, and absolute http(s).
fn url(ctx: &Context, key: &str) -> Result<Option<String>, LinkError> {
    let Some(url) = text(ctx, key)? else { return Ok(None) };
    let url = url.trim_end_matches('/').to_string();
    let lower = url.to_ascii_lowercase();
    let rest = lower.strip_prefix("https://").or_else(|| lower.strip_prefix("http://"));
    if rest.is_none_or(str::is_empty) {
        return Err(invalid(ctx, key, "an absolute http(s) URL", &Value::String(url)));
    }
    Ok(Some(url))
}

/// The first of `keys` set to a non-empty string.
fn first(ctx: &Context, keys: &[&str]) -> Result<Option<String>, LinkError> {
    for key in keys {
        if let Some(value) = text(ctx, key)? {
            return Ok(Some(value));
        }
    }
    Ok(None)
}

impl Provider {
    /// Choose the provider from the link's options and granted secrets.
    pub fn from_context(ctx: &Context) -> Result<Self, ProviderError> {
        let organization = first(ctx, &["organization", "organization_key"])?;
        let project = first(ctx, &["project", "project_key"])?;
        if let Some(base_url) = url(ctx, "LITELLM_PROXY_URL")?
            && let Some(key) = text(ctx, "LITELLM_MASTER_KEY")?.or_else(|| secret("LITELLM_MASTER_KEY"))
        {
            return Ok(Self::LiteLlm { base_url, key, organization, project });
        }
        if let Some(endpoint) = url(ctx, "AZURE_OPENAI_ENDPOINT")?
            && let Some(key) = text(ctx, "AZURE_OPENAI_API_KEY")?.or_else(|| secret("AZURE_OPENAI_API_KEY"))
        {
            let api_version =
                text(ctx, "AZURE_OPENAI_API_VERSION")?.unwrap_or_else(|| DEFAULT_AZURE_API_VERSION.to_string());
            return Ok(Self::Azure { endpoint, key, api_version });
        }
        let key = first(ctx, &["OPENAI_API_KEY", "openai_api_key", "api_key"])?.or_else(|| secret("OPENAI_API_KEY"));
        let base_url = url(ctx, "base_url")?;
        if key.is_none() && base_url.is_none() {
            return Err(ProviderError::Missing);
        }
        let base_url = base_url.unwrap_or_else(|| OPENAI_BASE_URL.to_string());
        Ok(Self::OpenAi { base_url, key, organization, project })
    }

    /// Where chat completions for `model` are sent.
    pub fn chat_url(&self, model: &str) -> String {
        match self {
            Self::LiteLlm { base_url, .. } | Self::OpenAi { base_url, .. } => format!("{base_url}/chat/completions"),
            Self::Azure { endpoint, api_version, .. } => format!(
                "{endpoint}/openai/deployments/{}/chat/completions?api-version={}",
                encode(model),
                encode(api_version)
            ),
        }
    }

    /// Where Responses-API requests are sent.
    pub fn responses_url(&self) -> String {
        match self {
            Self::LiteLlm { base_url, .. } | Self::OpenAi { base_url, .. } => format!("{base_url}/responses"),
            Self::Azure { endpoint, api_version, .. } => {
                format!("{endpoint}/openai/responses?api-version={}", encode(api_version))
            }
        }
    }

    /// Where audio transcriptions (`multipart/form-data` uploads) for `model` are
    /// sent: `<base>/audio/transcriptions`, or on Azure the deployment's
    /// `…/openai/deployments/<model>/audio/transcriptions?api-version=<v>`.
    pub fn transcription_url(&self, model: &str) -> String {
        match self {
            Self::LiteLlm { base_url, .. } | Self::OpenAi { base_url, .. } => {
                format!("{base_url}/audio/transcriptions")
            }
            Self::Azure { endpoint, api_version, .. } => format!(
                "{endpoint}/openai/deployments/{}/audio/transcriptions?api-version={}",
                encode(model),
                encode(api_version)
            ),
        }
    }

    /// `request` with this provider's credential headers.
    pub fn authorize(&self, request: Request) -> Request {
        match self {
            Self::Azure { key, .. } => request.header("api-key", key),
            Self::LiteLlm { key, organization, project, .. } => {
                with_account(request.bearer(key), organization.as_deref(), project.as_deref())
            }
            Self::OpenAi { key, organization, project, .. } => {
                let request = match key {
                    Some(key) => request.bearer(key),
                    None => request,
                };
                with_account(request, organization.as_deref(), project.as_deref())
            }
        }
    }

    /// The analysis `vendor` for results of `model` (Python's `get_vendor_from_opts`):
    /// `azure`, `openai`, or under LiteLLM the vendor guessed from the model name
    /// (else `litellm`).
    pub fn vendor(&self, model: &str) -> String {
        match self {
            Self::LiteLlm { .. } => vendor_from_model(model).unwrap_or("litellm").to_string(),
            Self::Azure { .. } => "azure".to_string(),
            Self::OpenAi { .. } => "openai".to_string(),
        }
    }
}

fn with_account(mut request: Request, organization: Option<&str>, project: Option<&str>) -> Request {
    if let Some(organization) = organization {
        request = request.header("OpenAI-Organization", organization);
    }
    if let Some(project) = project {
        request = request.header("OpenAI-Project", project);
    }
    request
}

/// Percent-encode everything but RFC 3986 unreserved characters (for URL
/// path segments and query values).
pub fn encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// Python's `_infer_vendor_from_model_name`: a LiteLLM provider prefix
/// (`anthropic/claude-3`), else the model name's family.
pub fn vendor_from_model(model: &str) -> Option<&'static str> {
    let lower = model.to_lowercase();
    let parts: Vec<&str> = lower.split('/').collect();
    if parts.len() > 1 {
        let prefixed = match parts[0] {
            "openai" => Some("openai"),
            "azure" => Some("azure"),
            "anthropic" => Some("anthropic"),
            "google" | "vertex_ai" => Some("google"),
            "mistral" => Some("mistral"),
            "meta" => Some("meta"),
            "cohere" => Some("cohere"),
            "groq" => Some("groq"),
            "bedrock" => Some("bedrock"),
            _ => None,
        };
        if prefixed.is_some() {
            return prefixed;
        }
    }
    let name = parts.last().copied().unwrap_or_default();
    let starts = |prefixes: &[&str]| prefixes.iter().any(|p| name.starts_with(p));
    if starts(&["claude"]) {
        Some("anthropic")
    } else if starts(&["gpt-", "o1", "o3", "chatgpt"]) {
        Some("openai")
    } else if starts(&["gemini"]) {
        Some("google")
    } else if starts(&["mistral", "mixtral"]) {
        Some("mistral")
    } else if starts(&["llama", "meta-llama"]) {
        Some("meta")
    } else if starts(&["command"]) {
        Some("cohere")
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::grant_secrets;
    use serde_json::json;

    fn provider(options: Value) -> Result<Provider, ProviderError> {
        Provider::from_context(&Context::for_test("l", options))
    }

    #[test]
    fn litellm_comes_first_and_adds_no_v1() {
        grant_secrets(&[]);
        let p = provider(json!({
            "LITELLM_PROXY_URL": " http://litellm:4000/ ", "LITELLM_MASTER_KEY": " sk-master ",
            "AZURE_OPENAI_ENDPOINT": "https://x.openai.azure.com", "AZURE_OPENAI_API_KEY": "az",
            "OPENAI_API_KEY": "sk-openai", "organization": "org-1", "project_key": "proj-1"
        }))
        .unwrap();
        assert_eq!(
            p,
            Provider::LiteLlm {
                base_url: "http://litellm:4000".into(),
                key: "sk-master".into(),
                organization: Some("org-1".into()),
                project: Some("proj-1".into())
            }
        );
        assert_eq!(p.chat_url("gpt-4o"), "http://litellm:4000/chat/completions");
        assert_eq!(p.responses_url(), "http://litellm:4000/responses");
        let r = p.authorize(Request::post("http://x/"));
        assert_eq!(r.header_value("authorization"), Some("Bearer sk-master"));
        assert_eq!(r.header_value("OpenAI-Organization"), Some("org-1"));
        assert_eq!(r.header_value("OpenAI-Project"), Some("proj-1"));
    }

    #[test]
    fn litellm_needs_both_url_and_key() {
        grant_secrets(&[]);
        let p = provider(json!({"LITELLM_PROXY_URL": "http://litellm:4000", "OPENAI_API_KEY": "sk"})).unwrap();
        assert!(matches!(p, Provider::OpenAi { .. }));
        let p = provider(json!({"LITELLM_MASTER_KEY": "m", "OPENAI_API_KEY": "sk"})).unwrap();
        assert!(matches!(p, Provider::OpenAi { .. }));
    }

    #[test]
    fn azure_uses_deployments_api_version_and_an_api_key_header() {
        grant_secrets(&[]);
        let p = provider(json!({
            "AZURE_OPENAI_ENDPOINT": "https://res.openai.azure.com/", "AZURE_OPENAI_API_KEY": "az-key",
            "OPENAI_API_KEY": "sk-openai", "organization": "ignored"
        }))
        .unwrap();
        assert_eq!(
            p.chat_url("gpt-4o mini"),
            "https://res.openai.azure.com/openai/deployments/gpt-4o%20mini/chat/completions?api-version=2024-10-21"
        );
        assert_eq!(p.responses_url(), "https://res.openai.azure.com/openai/responses?api-version=2024-10-21");
        let r = p.authorize(Request::post("http://x/"));
        assert_eq!(r.header_value("api-key"), Some("az-key"));
        assert_eq!(r.header_value("authorization"), None);
        assert_eq!(r.header_value("OpenAI-Organization"), None);
        let p = provider(json!({
            "AZURE_OPENAI_ENDPOINT": "https://res.openai.azure.com", "AZURE_OPENAI_API_KEY": "k",
            "AZURE_OPENAI_API_VERSION": "2023-12-01-preview"
        }))
        .unwrap();
        assert!(p.chat_url("m").ends_with("?api-version=2023-12-01-preview"));
        assert_eq!(p.vendor("gpt-4o"), "azure");
    }

    #[test]
    fn openai_key_aliases_in_order() {
        grant_secrets(&[]);
        let key = |options: Value| match provider(options).unwrap() {
            Provider::OpenAi { key, base_url, .. } => {
                assert_eq!(base_url, OPENAI_BASE_URL);
                key
            }
            other => panic!("{other:?}"),
        };
        assert_eq!(key(json!({"OPENAI_API_KEY": "a", "openai_api_key": "b", "api_key": "c"})).as_deref(), Some("a"));
        assert_eq!(key(json!({"OPENAI_API_KEY": "", "openai_api_key": "b", "api_key": "c"})).as_deref(), Some("b"));
        assert_eq!(key(json!({"api_key": "c"})).as_deref(), Some("c"));
        let p = provider(json!({"api_key": "c", "organization_key": "o", "project": "p"})).unwrap();
        assert_eq!(p.chat_url("gpt-4"), "https://api.openai.com/v1/chat/completions");
        assert_eq!(p.responses_url(), "https://api.openai.com/v1/responses");
        let r = p.authorize(Request::post("http://x/"));
        assert_eq!(r.header_value("authorization"), Some("Bearer c"));
        assert_eq!(r.header_value("OpenAI-Organization"), Some("o"));
        assert_eq!(r.header_value("OpenAI-Project"), Some("p"));
        assert_eq!(p.vendor("claude-3"), "openai");
    }

    #[test]
    fn base_url_points_at_any_compatible_server_with_an_optional_key() {
        grant_secrets(&[]);
        let p = provider(json!({"base_url": "http://vllm:8000/v1/"})).unwrap();
        assert_eq!(p.chat_url("llama"), "http://vllm:8000/v1/chat/completions");
        assert_eq!(p.authorize(Request::post("http://x/")).header_value("authorization"), None);
        let p = provider(json!({"base_url": "http://vllm:8000/v1", "api_key": "k"})).unwrap();
        assert_eq!(p.authorize(Request::post("http://x/")).header_value("authorization"), Some("Bearer k"));
        assert_eq!(p.vendor("llama"), "openai");
    }

    #[test]
    fn secrets_fill_in_absent_keys() {
        grant_secrets(&[("OPENAI_API_KEY", "sk-secret")]);
        let p = provider(json!({})).unwrap();
        assert_eq!(p.authorize(Request::post("http://x/")).header_value("authorization"), Some("Bearer sk-secret"));
        let p = provider(json!({"OPENAI_API_KEY": "sk-option"})).unwrap();
        assert_eq!(p.authorize(Request::post("http://x/")).header_value("authorization"), Some("Bearer sk-option"));

        grant_secrets(&[("LITELLM_MASTER_KEY", "m"), ("OPENAI_API_KEY", "sk")]);
        assert!(matches!(provider(json!({})).unwrap(), Provider::OpenAi { .. }), "no proxy URL, no LiteLLM");
        assert!(matches!(provider(json!({"LITELLM_PROXY_URL": "http://p"})).unwrap(), Provider::LiteLlm { .. }));

        grant_secrets(&[("AZURE_OPENAI_API_KEY", "az")]);
        let p = provider(json!({"AZURE_OPENAI_ENDPOINT": "https://r.openai.azure.com"})).unwrap();
        assert_eq!(p.authorize(Request::post("http://x/")).header_value("api-key"), Some("az"));
    }

    #[test]
    fn no_credentials_is_a_fatal_error_listing_the_choices() {
        grant_secrets(&[]);
        assert_eq!(provider(json!({})), Err(ProviderError::Missing));
        assert_eq!(provider(json!({"OPENAI_API_KEY": "  "})), Err(ProviderError::Missing));
        let err = LinkError::from(ProviderError::Missing);
        assert!(!err.retryable);
        for name in ["LITELLM_PROXY_URL", "AZURE_OPENAI_ENDPOINT", "OPENAI_API_KEY", "base_url"] {
            assert!(err.message.contains(name), "{}", err.message);
        }
    }

    #[test]
    fn malformed_options_name_the_option() {
        grant_secrets(&[]);
        for (options, option) in [
            (json!({"OPENAI_API_KEY": 5}), "OPENAI_API_KEY"),
            (json!({"LITELLM_PROXY_URL": "litellm:4000", "LITELLM_MASTER_KEY": "k"}), "LITELLM_PROXY_URL"),
            (json!({"AZURE_OPENAI_ENDPOINT": "ftp://x", "AZURE_OPENAI_API_KEY": "k"}), "AZURE_OPENAI_ENDPOINT"),
            (json!({"base_url": "https://"}), "base_url"),
            (json!({"api_key": "k", "organization": ["o"]}), "organization"),
        ] {
            let Err(ProviderError::Invalid(err)) = provider(options.clone()) else { panic!("{options}") };
            assert!(err.message.starts_with(&format!("option `{option}` of link `l` must be")), "{}", err.message);
        }
    }

    #[test]
    fn vendors_are_guessed_from_model_names_under_litellm() {
        grant_secrets(&[]);
        let p = provider(json!({"LITELLM_PROXY_URL": "http://p", "LITELLM_MASTER_KEY": "k"})).unwrap();
        for (model, vendor) in [
            ("claude-3-5-sonnet", "anthropic"),
            ("gpt-4o-mini", "openai"),
            ("o3-mini", "openai"),
            ("chatgpt-4o-latest", "openai"),
            ("gemini-1.5-pro", "google"),
            ("vertex_ai/anything", "google"),
            ("mixtral-8x7b", "mistral"),
            ("meta-llama/Llama-3-70b", "meta"),
            ("llama3", "meta"),
            ("command-r", "cohere"),
            ("azure/gpt-4o", "azure"),
            ("bedrock/claude", "bedrock"),
            ("groq/llama3", "groq"),
            ("unknown/gpt-4", "openai"),
            ("my-model", "litellm"),
            ("", "litellm"),
        ] {
            assert_eq!(p.vendor(model), vendor, "{model}");
        }
    }

    #[test]
    fn transcriptions_go_to_each_providers_audio_endpoint() {
        grant_secrets(&[]);
        let p = provider(json!({"OPENAI_API_KEY": "sk"})).unwrap();
        assert_eq!(p.transcription_url("gpt-4o-transcribe"), "https://api.openai.com/v1/audio/transcriptions");
        let p = provider(json!({"base_url": "http://whisper:9000/v1/"})).unwrap();
        assert_eq!(p.transcription_url("m"), "http://whisper:9000/v1/audio/transcriptions");
        let p = provider(json!({"LITELLM_PROXY_URL": "http://litellm:4000", "LITELLM_MASTER_KEY": "k"})).unwrap();
        assert_eq!(p.transcription_url("nova-3"), "http://litellm:4000/audio/transcriptions");
        let p = provider(json!({"AZURE_OPENAI_ENDPOINT": "https://r.openai.azure.com", "AZURE_OPENAI_API_KEY": "k"}))
            .unwrap();
        assert_eq!(
            p.transcription_url("whisper prod"),
            "https://r.openai.azure.com/openai/deployments/whisper%20prod/audio/transcriptions?api-version=2024-10-21"
        );
    }

    #[test]
    fn debug_output_hides_keys() {
        grant_secrets(&[]);
        let p = provider(json!({"OPENAI_API_KEY": "sk-very-secret"})).unwrap();
        assert!(!format!("{p:?}").contains("sk-very-secret"));
    }
}
