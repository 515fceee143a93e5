//! Stand-ins for the transcription vendors, on one loopback server that speaks
//! each one's wire format and records every request: OpenAI's (and Groq's)
//! multipart `…/audio/transcriptions`, Hugging Face's raw-bytes inference
//! endpoint, Deepgram's `/v1/listen` (JSON `{url}` or raw bytes), and the vfun
//! WTF server's multipart `file-binary`. It also serves media files under
//! `/media/<name>` for the URL path.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Value, json};

/// One request the vendors received.
#[derive(Debug, Clone)]
pub struct Received {
    /// `/v1/audio/transcriptions`, `/v1/listen`, …
    pub path: String,
    /// The query string, if any.
    pub query: Option<String>,
    /// Lower-case header names.
    pub headers: HashMap<String, String>,
    /// The raw body.
    pub body: Vec<u8>,
}

impl Received {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(String::as_str)
    }

    /// The parts of a `multipart/form-data` body.
    pub fn parts(&self) -> Vec<Part> {
        let content_type = self.header("content-type").unwrap_or_default();
        let boundary = content_type.split("boundary=").nth(1).unwrap_or_default().trim_matches('"');
        parse_multipart(&self.body, boundary)
    }

    pub fn part(&self, name: &str) -> Part {
        self.parts()
            .into_iter()
            .find(|p| p.name == name)
            .unwrap_or_else(|| panic!("no part `{name}` in the request to {}", self.path))
    }
}

/// One part of a multipart body.
#[derive(Debug, Clone)]
pub struct Part {
    pub name: String,
    pub filename: Option<String>,
    pub content_type: Option<String>,
    pub data: Vec<u8>,
}

impl Part {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.data).into_owned()
    }
}

fn find(haystack: &[u8], needle: &[u8], from: usize) -> Option<usize> {
    (from..=haystack.len().checked_sub(needle.len())?).find(|&i| &haystack[i..i + needle.len()] == needle)
}

/// RFC 7578 bodies, read independently of the SDK's encoder.
fn parse_multipart(body: &[u8], boundary: &str) -> Vec<Part> {
    let delimiter = format!("--{boundary}").into_bytes();
    let mut parts = Vec::new();
    let mut at = match find(body, &delimiter, 0) {
        Some(i) => i + delimiter.len(),
        None => return parts,
    };
    while body.get(at..at + 2) == Some(b"\r\n") {
        let head_end = find(body, b"\r\n\r\n", at).expect("part headers end");
        let head = String::from_utf8_lossy(&body[at + 2..head_end]).into_owned();
        let data_start = head_end + 4;
        let next = find(body, &[b"\r\n".as_slice(), &delimiter].concat(), data_start).expect("closing delimiter");
        let mut part =
            Part { name: String::new(), filename: None, content_type: None, data: body[data_start..next].to_vec() };
        for line in head.split("\r\n") {
            let lower = line.to_ascii_lowercase();
            if lower.starts_with("content-disposition:") {
                let value = |key: &str| {
                    line.split(';')
                        .map(str::trim)
                        .find_map(|p| p.strip_prefix(&format!("{key}=\"")))
                        .map(|v| v.trim_end_matches('"').to_string())
                };
                part.name = value("name").unwrap_or_default();
                part.filename = value("filename");
            } else if lower.starts_with("content-type:") {
                part.content_type = Some(line["content-type:".len()..].trim().to_string());
            }
        }
        parts.push(part);
        at = next + 2 + delimiter.len();
    }
    parts
}

#[derive(Default)]
struct Shared {
    received: Vec<Received>,
    media: HashMap<String, Vec<u8>>,
}

/// The running stand-in.
pub struct Vendors {
    pub port: u16,
    shared: Arc<Mutex<Shared>>,
}

type Stand = State<Arc<Mutex<Shared>>>;

fn record(shared: &Arc<Mutex<Shared>>, uri: &Uri, headers: &HeaderMap, body: &Bytes) -> Received {
    let received = Received {
        path: uri.path().to_string(),
        query: uri.query().map(str::to_string),
        headers: headers
            .iter()
            .map(|(k, v)| (k.as_str().to_ascii_lowercase(), v.to_str().unwrap_or_default().to_string()))
            .collect(),
        body: body.to_vec(),
    };
    shared.lock().unwrap().received.push(received.clone());
    received
}

/// The transcript the stand-ins give for an upload: names what they got.
pub fn transcript_of(data: &[u8]) -> String {
    format!("heard {} bytes", data.len())
}

/// OpenAI's and Groq's transcription endpoints (multipart `model` and `file`).
async fn openai_compatible(State(shared): Stand, uri: Uri, headers: HeaderMap, body: Bytes) -> Response {
    let received = record(&shared, &uri, &headers, &body);
    let file = received.part("file");
    if file.data.len() > 25 * 1024 * 1024 {
        return (StatusCode::PAYLOAD_TOO_LARGE, "Maximum content size limit (26214400) exceeded").into_response();
    }
    if received.part("model").text().is_empty() {
        return (StatusCode::BAD_REQUEST, json!({"error": {"message": "model is required"}}).to_string())
            .into_response();
    }
    axum::Json(json!({
        "text": transcript_of(&file.data),
        "usage": {"type": "tokens", "input_tokens": 10, "output_tokens": 4, "total_tokens": 14}
    }))
    .into_response()
}

/// Hugging Face inference: the raw audio in, `{text}` out.
async fn hugging_face(State(shared): Stand, uri: Uri, headers: HeaderMap, body: Bytes) -> Response {
    record(&shared, &uri, &headers, &body);
    axum::Json(json!({"text": transcript_of(&body)})).into_response()
}

/// Deepgram `/v1/listen`: JSON `{url}` (fetched by Deepgram) or the raw audio.
async fn deepgram(State(shared): Stand, uri: Uri, headers: HeaderMap, body: Bytes) -> Response {
    let received = record(&shared, &uri, &headers, &body);
    let heard = match received.header("content-type") {
        Some(t) if t.starts_with("application/json") => {
            let url = serde_json::from_slice::<Value>(&body).ok().and_then(|v| v["url"].as_str().map(str::to_string));
            format!("fetched {}", url.unwrap_or_default())
        }
        _ => transcript_of(&body),
    };
    axum::Json(json!({
        "metadata": {"request_id": "dg-1", "duration": 33.1, "channels": 1},
        "results": {"channels": [{
            "detected_language": "en",
            "alternatives": [{"transcript": heard, "confidence": 0.97, "words": [{"word": "heard", "start": 0.1, "end": 0.4, "confidence": 0.97}]}]
        }]}
    }))
    .into_response()
}

/// The vfun server: multipart `file-binary`, a WTF document out.
async fn vfun(State(shared): Stand, uri: Uri, headers: HeaderMap, body: Bytes) -> Response {
    let received = record(&shared, &uri, &headers, &body);
    let file = received.part("file-binary");
    axum::Json(json!({
        "transcript": {"text": transcript_of(&file.data), "language": "en", "duration": 4.7, "confidence": 0.9},
        "segments": [{"id": 0, "start": 0.0, "end": 4.7, "text": transcript_of(&file.data), "speaker": 0}],
        "metadata": {"created_at": "2026-01-01T00:00:00Z", "provider": "vfun"},
        "speakers": {"0": {"id": 0, "label": "Speaker 0"}},
        "quality": {"average_confidence": 0.9}
    }))
    .into_response()
}

async fn media(State(shared): Stand, Path(name): Path<String>) -> Response {
    match shared.lock().unwrap().media.get(&name) {
        Some(bytes) => ([(header::CONTENT_TYPE, "application/octet-stream")], bytes.clone()).into_response(),
        None => (StatusCode::NOT_FOUND, "no such media").into_response(),
    }
}

impl Vendors {
    pub async fn start() -> Vendors {
        let shared = Arc::new(Mutex::new(Shared::default()));
        let app = axum::Router::new()
            .route("/v1/audio/transcriptions", post(openai_compatible))
            .route("/openai/v1/audio/transcriptions", post(openai_compatible))
            .route("/hf", post(hugging_face))
            .route("/v1/listen", post(deepgram))
            .route("/vfun", post(vfun))
            .route("/media/{name}", get(media))
            .layer(axum::extract::DefaultBodyLimit::max(64 * 1024 * 1024))
            .with_state(shared.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Vendors { port, shared }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    /// Serve `bytes` at `/media/<name>`.
    pub fn serve(&self, name: &str, bytes: Vec<u8>) {
        self.shared.lock().unwrap().media.insert(name.to_string(), bytes);
    }

    /// Requests received on `path`, in order.
    pub fn received(&self, path: &str) -> Vec<Received> {
        self.shared.lock().unwrap().received.iter().filter(|r| r.path == path).cloned().collect()
    }
}
