//! `wtf_transcribe`: transcribe each recording dialog with a vfun server and
//! store the answer as a WTF (World Transcription Format) analysis, as the
//! Python conserver's `links.wtf_transcribe`.
//!
//! For each dialog of type `recording` without an analysis of type
//! `wtf_transcription` for its index (no duration filter), the link sends a
//! `multipart/form-data` POST to `vfun-server-url` with the form fields
//! `diarize` (`"true"`/`"false"`) and, when set, `language`, then the audio as
//! the file field `file-binary`, named by the dialog's `filename` (else
//! `audio_<index>.wav`) with the dialog's `mediatype` (or legacy `mimetype`, else
//! `audio/wav`), and `Authorization: Bearer <key>` when a key is configured. A
//! JSON answer that is itself a JSON string is decoded a second time. The answer
//! (the vfun WTF document: `transcript{text, language, duration, confidence}`,
//! `segments`, `metadata`, `speakers`, `quality`) is the body; when `language`
//! is set it is written into `body.transcript.language` (the `transcript` object
//! is created when absent). The analysis appended is `{type:
//! "wtf_transcription", dialog: <index>, vendor: "vfun", body: <JSON-encoded>,
//! encoding: "json", mediatype: "application/json", schema: "wtf-1.0"}`.
//!
//! Options (defaults as in Python):
//! - `vfun-server-url` (required): the vfun transcription URL; its host must be
//!   in the link's `allowed_outbound_hosts`;
//! - `language` (none): sent, and copied into the transcript;
//! - `diarize` (`false`);
//! - `vfun-timeout` (`300` s): the time allowed for vfun's answer to start (the
//!   host's cap and the link's `limits.timeout_ms` still apply: raise the latter
//!   for long recordings);
//! - `url-timeout` (`60` s): accepted; the host fetches media under its own time
//!   limits;
//! - `api-key` (none): else the granted secret `VFUN_API_KEY`; without either no
//!   `Authorization` is sent;
//! - new: `retry_attempts` (`6`), `retry_backoff_secs` (`2`), `retry_budget_secs`
//!   (`20`), see [`conserver_llm::retry`]: connection failures, timeouts, 429 and
//!   5xx from vfun are retried within the time budget.
//!
//! Media comes from the host (see [`conserver_link_sdk::media`]): the inline
//! `body` decoded by its `encoding`, or the `url` fetched under the link's
//! `allowed_outbound_hosts` and checked against `content_hash` or the legacy
//! `alg`/`signature`.
//!
//! As in Python, a dialog that fails (no media, a fetch that fails, an error
//! answer, a timeout, an answer that is not a JSON object) is logged and the
//! link goes on with the next one; the vCon goes on unchanged when no analysis
//! was added.
//!
//! Differences from Python:
//! - A media fetch or a vfun request refused by the host (a host missing from
//!   `allowed_outbound_hosts`) and media failing its integrity check are fatal
//!   errors naming the dialog: they are configuration or data problems that would
//!   otherwise be skipped silently on every vCon.
//! - `file://` URLs are refused (the host fetches only http and https; links
//!   cannot read the host's files): such dialogs are logged and skipped. Inline
//!   bodies are decoded by their `encoding` (Python decoded bodies without
//!   `encoding` as standard base64, corrupting base64url ones).
//! - A missing `vfun-server-url` is a fatal error naming the option; Python
//!   logged it and stopped the chain quietly (no storage, no egress).
//! - The `mediatype` sent is the dialog's `mediatype` (Python read `mimetype`,
//!   which the read normaliser had renamed, so it always sent `audio/wav`).
//! - Transient vfun failures are retried (Python tried once).
//! - Missing `options` mean `{}`; an option of the wrong type is a fatal error
//!   naming it. The options are not written back into the config (Python
//!   installed its defaults into the caller's dict).

#[cfg(test)]
mod tests;

use std::cell::Cell;
use std::time::Duration;

use conserver_link_sdk::http::multipart::Multipart;
use conserver_link_sdk::http::{Client, HttpError, Request, Response, Transport};
use conserver_link_sdk::log;
use conserver_link_sdk::media::{HostMedia, MediaError, MediaSource};
use conserver_link_sdk::prelude::*;
use conserver_llm::options::{boolean, get, invalid, optional_string};
use conserver_llm::retry::{self, RetryPolicy, SystemClock};
use serde_json::{Map, Value, json};

/// The `wtf_transcribe` link.
pub struct WtfTranscribe;

impl Link for WtfTranscribe {
    fn process(ctx: &Context, vcon: Vcon) -> LinkResult {
        run(ctx, vcon, &Client::host(), &HostMedia)
    }
}

export_link!(WtfTranscribe);

/// The granted secret read when option `api-key` is absent.
const SECRET: &str = "VFUN_API_KEY";
/// The analysis type written, and the "already done" check.
const KIND: &str = "wtf_transcription";

struct Options {
    url: String,
    language: Option<String>,
    diarize: bool,
    timeout: Duration,
    api_key: Option<String>,
    retry: RetryPolicy,
}

/// A number of seconds above 0 (at most a day).
fn timeout(ctx: &Context, key: &str, default: f64) -> Result<Duration, LinkError> {
    let secs = match get(ctx, key) {
        None => default,
        Some(value) => value
            .as_f64()
            .filter(|s| s.is_finite() && *s > 0.0 && *s <= 86_400.0)
            .ok_or_else(|| invalid(ctx, key, "a number of seconds above 0", value))?,
    };
    Ok(Duration::from_secs_f64(secs))
}

impl Options {
    fn from_context(ctx: &Context) -> Result<Self, LinkError> {
        let url = optional_string(ctx, "vfun-server-url")?.map(|u| u.trim().to_string()).filter(|u| !u.is_empty());
        let Some(url) = url else {
            return Err(LinkError::fatal(format!(
                "option `vfun-server-url` of link `{}` is required: the vfun server's transcription URL",
                ctx.link_name
            )));
        };
        let lower = url.to_ascii_lowercase();
        if lower.strip_prefix("https://").or_else(|| lower.strip_prefix("http://")).is_none_or(str::is_empty) {
            return Err(invalid(ctx, "vfun-server-url", "an absolute http(s) URL", &Value::String(url)));
        }
        timeout(ctx, "url-timeout", 60.0)?;
        let api_key = optional_string(ctx, "api-key")?
            .map(|k| k.trim().to_string())
            .filter(|k| !k.is_empty())
            .or_else(|| conserver_llm::secret::secret(SECRET));
        Ok(Self {
            url,
            language: optional_string(ctx, "language")?.filter(|l| !l.is_empty()),
            diarize: boolean(ctx, "diarize", false)?,
            timeout: timeout(ctx, "vfun-timeout", 300.0)?,
            api_key,
            retry: RetryPolicy::from_context(ctx)?,
        })
    }
}

/// A transport that remembers whether the host refused the last request.
struct Watched<'a> {
    inner: &'a dyn Transport,
    denied: Cell<bool>,
}

impl Transport for Watched<'_> {
    fn send(&self, request: &Request) -> Result<Response, HttpError> {
        let answer = self.inner.send(request);
        self.denied.set(matches!(answer, Err(HttpError::Denied(_))));
        answer
    }
}

/// Whether the vCon already has a WTF transcription for dialog `index`.
fn already_done(vcon: &Vcon, index: usize) -> bool {
    let Some(Value::Array(entries)) = vcon.get("analysis") else { return false };
    entries.iter().any(|entry| {
        entry.get("type").and_then(Value::as_str) == Some(KIND)
            && entry.get("dialog").and_then(Value::as_f64) == Some(index as f64)
    })
}

/// A non-empty string field of the dialog.
fn text<'a>(dialog: &'a Value, key: &str) -> Option<&'a str> {
    dialog.get(key).and_then(Value::as_str).filter(|s| !s.is_empty())
}

/// vfun's answer as a JSON object (a JSON string holding JSON is decoded again).
fn decode(body: &[u8]) -> Result<Map<String, Value>, String> {
    let value: Value = serde_json::from_slice(body).map_err(|e| format!("the answer is not JSON: {e}"))?;
    let value = match value {
        Value::String(inner) => {
            serde_json::from_str(&inner).map_err(|e| format!("the answer is a string that is not JSON: {e}"))?
        }
        other => other,
    };
    match value {
        Value::Object(map) => Ok(map),
        other => Err(format!("the answer is not a JSON object: {}", truncate(&other.to_string()))),
    }
}

fn truncate(text: &str) -> String {
    match text.char_indices().nth(200) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text.to_string(),
    }
}

/// What happened to one dialog.
enum Outcome {
    /// The WTF body to store.
    Done(Map<String, Value>),
    /// Logged; go on with the next dialog.
    Skipped,
}

/// The link, with the transport to send requests through and the media source.
pub fn run(ctx: &Context, mut vcon: Vcon, transport: &dyn Transport, media: &dyn MediaSource) -> LinkResult {
    let clock = SystemClock::start();
    let options = Options::from_context(ctx)?;
    let dialogs = match vcon.get("dialog") {
        Some(Value::Array(items)) => items,
        _ => Vec::new(),
    };
    let mut added = 0usize;
    for (index, dialog) in dialogs.iter().enumerate() {
        if dialog.get("type").and_then(Value::as_str) != Some("recording") {
            log::debug(&format!("dialog {index}: skipped, not a recording"));
            continue;
        }
        if already_done(&vcon, index) {
            log::debug(&format!("dialog {index}: skipped, already transcribed"));
            continue;
        }
        let Ok(position) = u32::try_from(index) else { break };
        match transcribe(&options, transport, media, &clock, position, dialog)? {
            Outcome::Skipped => {}
            Outcome::Done(mut body) => {
                if let Some(language) = &options.language {
                    match body.entry("transcript").or_insert_with(|| json!({})) {
                        Value::Object(transcript) => {
                            transcript.insert("language".into(), json!(language));
                        }
                        _ => log::warn(&format!("dialog {index}: `transcript` is not an object; language not set")),
                    }
                }
                let mut extra = Map::new();
                extra.insert("mediatype".into(), json!("application/json"));
                extra.insert("schema".into(), json!("wtf-1.0"));
                vcon.add_analysis(Analysis {
                    kind: Some(KIND.into()),
                    dialog: Some(json!(index)),
                    vendor: Some("vfun".into()),
                    body: Some(Value::Object(body)),
                    encoding: Some("none".into()),
                    extra,
                })?;
                log::info(&format!("dialog {index}: WTF transcription added"));
                added += 1;
            }
        }
    }
    Ok(if added > 0 { Verdict::changed(vcon) } else { Verdict::unchanged() })
}

/// Transcribe one dialog. Only refusals and integrity failures are errors.
fn transcribe(
    options: &Options,
    transport: &dyn Transport,
    media: &dyn MediaSource,
    clock: &SystemClock,
    index: u32,
    dialog: &Value,
) -> Result<Outcome, LinkError> {
    let audio = match media.fetch(index) {
        Ok(audio) => audio,
        Err(error @ (MediaError::Denied(_) | MediaError::Integrity(_))) => return Err(error.for_dialog(index)),
        Err(error) => {
            let hint = match text(dialog, "url") {
                Some(url) if url.to_ascii_lowercase().starts_with("file://") => {
                    " (file:// URLs are not supported: links cannot read the host's files; use an http(s) URL or an \
                     inline body)"
                }
                _ => "",
            };
            log::error(&format!("dialog {index}: could not get the audio: {error}{hint}"));
            return Ok(Outcome::Skipped);
        }
    };
    let filename = text(dialog, "filename").map_or_else(|| format!("audio_{index}.wav"), str::to_string);
    let mediatype = text(dialog, "mediatype").or_else(|| text(dialog, "mimetype")).unwrap_or("audio/wav");
    let mut form = Multipart::new().text("diarize", if options.diarize { "true" } else { "false" });
    if let Some(language) = &options.language {
        form = form.text("language", language);
    }
    let form = form.file("file-binary", &filename, mediatype, audio.bytes);
    let mut request = Request::post(&options.url).multipart(&form).timeout(options.timeout);
    if let Some(key) = &options.api_key {
        request = request.bearer(key);
    }
    let watched = Watched { inner: transport, denied: Cell::new(false) };
    let what = format!("vfun transcription of dialog {index} (POST {})", options.url);
    let answer = match retry::send(&watched, &request, &options.retry, clock, &what) {
        Ok(answer) => answer,
        Err(error) if watched.denied.get() => {
            return Err(LinkError::fatal(format!("dialog {index}: {}", error.message)));
        }
        Err(error) => {
            log::error(&error.message);
            return Ok(Outcome::Skipped);
        }
    };
    match decode(&answer.body) {
        Ok(body) => Ok(Outcome::Done(body)),
        Err(problem) => {
            log::error(&format!("vfun transcription of dialog {index}: {problem}"));
            Ok(Outcome::Skipped)
        }
    }
}
