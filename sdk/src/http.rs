//! A small blocking HTTP client over the host's `wasi:http`.
//!
//! The host sends a request only to hosts listed in the link's
//! `allowed_outbound_hosts`; anything else fails with [`HttpError::Denied`] (never
//! a vague connection error), as does a name that resolves to an internal address
//! the list does not name. The host caps connect and read times and the size of
//! answers.
//!
//! ```ignore
//! use conserver_link_sdk::http::{Client, Request};
//!
//! let answer = Client::host().send(&Request::post("https://api.example.com/v1/x").json(&body)?)?;
//! let parsed: serde_json::Value = answer.json()?;
//! ```
//!
//! Links take a `&dyn Transport` so their unit tests can answer requests with a
//! closure ([`Transport`] is implemented for `Fn(&Request) -> Result<Response,
//! HttpError>`); native builds have no network access through [`Client`].
//!
//! [`multipart`] builds `multipart/form-data` bodies (text fields and file
//! uploads) and reads them back: `Request::post(url).multipart(&form)`.

pub mod multipart;
#[cfg(target_arch = "wasm32")]
mod wasi;

use std::time::Duration;

use serde::Serialize;
use serde::de::DeserializeOwned;

/// An HTTP request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// `GET`, `POST`, …
    pub method: String,
    /// Absolute `http://` or `https://` URL.
    pub url: String,
    /// Header names and values, in order.
    pub headers: Vec<(String, String)>,
    /// The body (empty for none).
    pub body: Vec<u8>,
    /// Time allowed for the first byte of the answer (the host's cap still applies).
    pub timeout: Option<Duration>,
}

impl Request {
    /// A request with this method and URL.
    pub fn new(method: &str, url: &str) -> Self {
        Self { method: method.to_string(), url: url.to_string(), headers: Vec::new(), body: Vec::new(), timeout: None }
    }

    /// A GET request.
    pub fn get(url: &str) -> Self {
        Self::new("GET", url)
    }

    /// A POST request.
    pub fn post(url: &str) -> Self {
        Self::new("POST", url)
    }

    /// Add a header.
    #[must_use]
    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.to_string(), value.to_string()));
        self
    }

    /// Add `Authorization: Bearer <token>`.
    #[must_use]
    pub fn bearer(self, token: &str) -> Self {
        self.header("authorization", &format!("Bearer {token}"))
    }

    /// Set a raw body.
    #[must_use]
    pub fn body(mut self, body: impl Into<Vec<u8>>) -> Self {
        self.body = body.into();
        self
    }

    /// Set a JSON body and `Content-Type: application/json`.
    pub fn json<T: Serialize + ?Sized>(mut self, value: &T) -> Result<Self, HttpError> {
        self.body = serde_json::to_vec(value).map_err(|e| HttpError::InvalidRequest(e.to_string()))?;
        Ok(self.header("content-type", "application/json"))
    }

    /// Set the time allowed for the answer to start.
    #[must_use]
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// The value of header `name` (case-insensitive), if set.
    pub fn header_value(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
}

/// An HTTP answer (any status: check [`Response::status`] or use
/// [`Response::error_for_status`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    /// Status code.
    pub status: u16,
    /// Header names (lower-case) and values.
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: Vec<u8>,
}

impl Response {
    /// A response with this status and body (for tests).
    pub fn new(status: u16, body: impl Into<Vec<u8>>) -> Self {
        Self { status, headers: Vec::new(), body: body.into() }
    }

    /// Whether the status is 2xx.
    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }

    /// The body as text (invalid UTF-8 replaced).
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The body parsed as JSON.
    pub fn json<T: DeserializeOwned>(&self) -> Result<T, HttpError> {
        serde_json::from_slice(&self.body)
            .map_err(|e| HttpError::InvalidResponse(format!("not the JSON expected: {e}")))
    }

    /// The value of header `name` (case-insensitive), if present.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    /// `self`, or [`HttpError::Status`] when the status is not 2xx.
    pub fn error_for_status(self) -> Result<Self, HttpError> {
        if self.is_success() {
            Ok(self)
        } else {
            let mut body = self.text();
            body.truncate(body.char_indices().nth(300).map_or(body.len(), |(i, _)| i));
            Err(HttpError::Status { status: self.status, body })
        }
    }
}

/// Why a request failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HttpError {
    /// The host refused the request: the host is not in the link's
    /// `allowed_outbound_hosts`, or it resolves to an internal address the list
    /// does not name.
    Denied(String),
    /// No answer in time (connect, first byte or between bytes).
    Timeout(String),
    /// The answer was larger than the host allows.
    TooLarge(String),
    /// The server could not be reached or broke the connection.
    Connection(String),
    /// The answer came with a non-2xx status (see [`Response::error_for_status`]).
    Status {
        /// The status code.
        status: u16,
        /// The start of the body.
        body: String,
    },
    /// The request could not be built (bad URL, header or body).
    InvalidRequest(String),
    /// The answer could not be read or parsed.
    InvalidResponse(String),
    /// No HTTP is available (a native build outside the host).
    Unsupported,
}

impl HttpError {
    /// Whether trying again later may succeed (timeouts, connection failures,
    /// 429 and 5xx answers).
    pub fn is_retryable(&self) -> bool {
        match self {
            Self::Timeout(_) | Self::Connection(_) => true,
            Self::Status { status, .. } => *status == 429 || *status >= 500,
            _ => false,
        }
    }
}

impl std::fmt::Display for HttpError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Denied(url) => {
                write!(f, "request to {url} denied by the host: add the host to this link's allowed_outbound_hosts")
            }
            Self::Timeout(url) => write!(f, "request to {url} timed out"),
            Self::TooLarge(url) => write!(f, "the answer from {url} is larger than the host allows"),
            Self::Connection(message) => write!(f, "connection failed: {message}"),
            Self::Status { status, body } => write!(f, "the server answered {status}: {body}"),
            Self::InvalidRequest(message) => write!(f, "invalid request: {message}"),
            Self::InvalidResponse(message) => write!(f, "invalid answer: {message}"),
            Self::Unsupported => f.write_str("outbound HTTP is only available inside the conserver host"),
        }
    }
}

impl std::error::Error for HttpError {}

impl From<HttpError> for crate::LinkError {
    fn from(error: HttpError) -> Self {
        if error.is_retryable() { Self::retryable(error.to_string()) } else { Self::fatal(error.to_string()) }
    }
}

/// Something that answers HTTP requests: the host ([`Client`]) or, in unit tests,
/// a closure.
pub trait Transport {
    /// Send `request` and wait for the whole answer.
    fn send(&self, request: &Request) -> Result<Response, HttpError>;
}

impl<F: Fn(&Request) -> Result<Response, HttpError>> Transport for F {
    fn send(&self, request: &Request) -> Result<Response, HttpError> {
        self(request)
    }
}

/// A [`Transport`] for unit tests: records every request and answers each with
/// `answer(request, n)`, `n` counting requests from 0.
pub struct Recorder<F> {
    requests: std::cell::RefCell<Vec<Request>>,
    answer: F,
}

impl<F: Fn(&Request, usize) -> Result<Response, HttpError>> Recorder<F> {
    /// A recorder answering with `answer`.
    pub fn new(answer: F) -> Self {
        Self { requests: std::cell::RefCell::new(Vec::new()), answer }
    }

    /// The requests so far, in order.
    pub fn requests(&self) -> std::cell::Ref<'_, Vec<Request>> {
        self.requests.borrow()
    }

    /// Forget the requests so far.
    pub fn clear(&self) {
        self.requests.borrow_mut().clear();
    }
}

impl<F: Fn(&Request, usize) -> Result<Response, HttpError>> Transport for Recorder<F> {
    fn send(&self, request: &Request) -> Result<Response, HttpError> {
        let n = self.requests.borrow().len();
        self.requests.borrow_mut().push(request.clone());
        (self.answer)(request, n)
    }
}

/// The host's HTTP client.
#[derive(Debug, Clone, Copy, Default)]
pub struct Client;

impl Client {
    /// The client that sends through the host.
    pub fn host() -> Self {
        Self
    }
}

impl Transport for Client {
    #[cfg(target_arch = "wasm32")]
    fn send(&self, request: &Request) -> Result<Response, HttpError> {
        wasi::send(request)
    }

    #[cfg(not(target_arch = "wasm32"))]
    fn send(&self, _request: &Request) -> Result<Response, HttpError> {
        Err(HttpError::Unsupported)
    }
}

/// The parts of an absolute URL the host needs.
#[cfg_attr(not(target_arch = "wasm32"), allow(dead_code))]
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct UrlParts {
    pub https: bool,
    pub authority: String,
    pub path_and_query: String,
}

/// Split `http(s)://authority/path?query`.
#[cfg_attr(not(target_arch = "wasm32"), allow(dead_code))]
pub(crate) fn split_url(url: &str) -> Result<UrlParts, HttpError> {
    let invalid = || HttpError::InvalidRequest(format!("`{url}` is not an absolute http(s) URL"));
    let (scheme, rest) = url.split_once("://").ok_or_else(invalid)?;
    let https = match scheme.to_ascii_lowercase().as_str() {
        "https" => true,
        "http" => false,
        _ => return Err(invalid()),
    };
    let split = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(split);
    if authority.is_empty() || authority.contains('@') || authority.contains(char::is_whitespace) {
        return Err(invalid());
    }
    let tail = tail.split('#').next().unwrap_or_default();
    let path_and_query = match tail.chars().next() {
        None => "/".to_string(),
        Some('?') => format!("/{tail}"),
        _ => tail.to_string(),
    };
    Ok(UrlParts { https, authority: authority.to_string(), path_and_query })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_split_for_the_host() {
        let parts = split_url("https://api.openai.com/v1/chat/completions?x=1#frag").unwrap();
        assert_eq!(
            parts,
            UrlParts {
                https: true,
                authority: "api.openai.com".into(),
                path_and_query: "/v1/chat/completions?x=1".into()
            }
        );
        assert_eq!(split_url("http://127.0.0.1:8080").unwrap().path_and_query, "/");
        assert_eq!(split_url("http://h?q=1").unwrap().path_and_query, "/?q=1");
        assert!(split_url("ftp://h/x").is_err());
        assert!(split_url("https://user:pw@h/").is_err());
        assert!(split_url("not a url").is_err());
    }

    #[test]
    fn errors_say_what_to_do_and_whether_to_retry() {
        let denied = HttpError::Denied("https://evil.example/x".into());
        assert!(denied.to_string().contains("allowed_outbound_hosts"));
        assert!(!denied.is_retryable());
        assert!(HttpError::Status { status: 503, body: String::new() }.is_retryable());
        assert!(HttpError::Status { status: 429, body: String::new() }.is_retryable());
        assert!(!HttpError::Status { status: 400, body: String::new() }.is_retryable());
        assert!(crate::LinkError::from(HttpError::Timeout("u".into())).retryable);
    }

    #[test]
    fn closures_are_transports() {
        let transport = |request: &Request| Ok(Response::new(200, request.body.clone()));
        let request = Request::post("http://h/").json(&serde_json::json!({"a": 1})).unwrap();
        assert_eq!(request.header_value("Content-Type"), Some("application/json"));
        let answer = transport.send(&request).unwrap();
        assert_eq!(answer.json::<serde_json::Value>().unwrap()["a"], 1);
        assert_eq!(Client::host().send(&request), Err(HttpError::Unsupported));
    }
}
