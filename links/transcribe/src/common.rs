//! What the vendors share: the dialogs to transcribe, durations, media errors,
//! upload names, the transcription cache, vendor calls with retries, and
//! `vendor_schema`.

use std::cell::Cell;
use std::time::Duration;

use conserver_link_sdk::http::{HttpError, Request, Response, Transport};
use conserver_link_sdk::media::{Media, MediaError, MediaSource, ProbeInfo};
use conserver_link_sdk::{Analysis, Context, LinkError, Vcon, cache, log};
use conserver_llm::options::invalid;
use conserver_llm::retry::{self, RetryPolicy, SystemClock};
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};

/// Time allowed for a vendor's answer to start (Python's OpenAI client timeout;
/// the host's own cap still applies).
pub(crate) const REQUEST_TIMEOUT: Duration = Duration::from_secs(120);
/// How long a cached vendor answer is kept (the cache's maximum).
pub(crate) const CACHE_TTL_SECS: u32 = 86_400;
/// The largest value the cache keeps.
const CACHE_MAX_BYTES: usize = 1024 * 1024;

/// One link call: the vendor's options, where requests and media come from, and
/// the retry policy with its clock (started when the call started).
pub(crate) struct Env<'a> {
    /// The vendor's context: its `options` are the link's `vendor_options`.
    pub ctx: &'a Context,
    pub transport: &'a dyn Transport,
    pub media: &'a dyn MediaSource,
    pub retry: RetryPolicy,
    pub clock: SystemClock,
}

/// `error` with ` (under vendor_options)` added, for option errors.
pub(crate) fn in_vendor_options(error: LinkError) -> LinkError {
    LinkError { message: format!("{} (under `vendor_options`)", error.message), ..error }
}

/// `error` as the failure of dialog `index` with `vendor`.
pub(crate) fn for_dialog(index: u32, vendor: &str, error: LinkError) -> LinkError {
    LinkError { message: format!("dialog {index} ({vendor}): {}", error.message), ..error }
}

/// The dialog entries, with their indexes.
pub(crate) fn dialogs(vcon: &Vcon) -> Vec<(u32, Value)> {
    match vcon.get("dialog") {
        Some(Value::Array(items)) => {
            items.into_iter().enumerate().filter_map(|(i, d)| Some((u32::try_from(i).ok()?, d))).collect()
        }
        _ => Vec::new(),
    }
}

/// Whether the dialog is a recording (others are skipped, as in Python).
pub(crate) fn is_recording(dialog: &Value) -> bool {
    dialog.get("type").and_then(Value::as_str) == Some("recording")
}

/// Whether the vCon already has an analysis of type `kind` for dialog `index`.
pub(crate) fn already_done(vcon: &Vcon, index: u32, kind: &str) -> bool {
    let Some(Value::Array(entries)) = vcon.get("analysis") else { return false };
    entries.iter().any(|entry| {
        entry.get("type").and_then(Value::as_str) == Some(kind)
            && entry.get("dialog").and_then(Value::as_f64) == Some(f64::from(index))
    })
}

/// Whether dialog `index` is for a vendor: a recording without a transcript yet
/// (a skip is logged, naming the vendor).
pub(crate) fn wants_transcript(vcon: &Vcon, index: u32, dialog: &Value, vendor: &str) -> bool {
    if !is_recording(dialog) {
        log::info(&format!("dialog {index} ({vendor}): skipped, not a recording"));
        return false;
    }
    if already_done(vcon, index, "transcript") {
        log::info(&format!("dialog {index} ({vendor}): skipped, already transcribed"));
        return false;
    }
    true
}

/// Append the `transcript` analysis of dialog `index`: `{type: "transcript",
/// dialog, vendor: <analysis_vendor>, body, encoding, vendor_schema: {opts}}`.
pub(crate) fn add_transcript(
    vcon: &mut Vcon,
    index: u32,
    analysis_vendor: &str,
    body: Value,
    vendor_schema: Value,
) -> Result<(), LinkError> {
    let mut extra = Map::new();
    extra.insert("vendor_schema".into(), vendor_schema);
    vcon.add_analysis(Analysis {
        kind: Some("transcript".into()),
        dialog: Some(json!(index)),
        vendor: Some(analysis_vendor.into()),
        body: Some(body),
        encoding: Some("none".into()),
        extra,
    })?;
    log::info(&format!("dialog {index} ({analysis_vendor}): transcribed"));
    Ok(())
}

/// The dialog's declared `duration` in seconds (a number; anything else counts
/// as absent, with a warning).
pub(crate) fn declared_duration(index: u32, dialog: &Value) -> Option<f64> {
    match dialog.get("duration") {
        None | Some(Value::Null) => None,
        Some(Value::Number(n)) => n.as_f64(),
        Some(other) => {
            log::warn(&format!("dialog {index}: `duration` {other} is not a number; ignored"));
            None
        }
    }
}

/// A non-empty string field of the dialog.
pub(crate) fn dialog_text<'a>(dialog: &'a Value, key: &str) -> Option<&'a str> {
    dialog.get(key).and_then(Value::as_str).filter(|s| !s.is_empty())
}

/// What a probe told.
pub(crate) enum Probe {
    /// The host decoded the recording's header.
    Known(ProbeInfo),
    /// The host cannot decode this format (the message says why).
    Unsupported(String),
    /// The dialog has no media: skip it.
    NoMedia,
}

/// Probe dialog `index`: unsupported formats and missing media are answers, the
/// other failures end the link.
pub(crate) fn probe(env: &Env<'_>, index: u32, vendor: &str) -> Result<Probe, LinkError> {
    match env.media.probe(index) {
        Ok(info) => Ok(Probe::Known(info)),
        Err(MediaError::Unsupported(message)) => Ok(Probe::Unsupported(message)),
        Err(MediaError::NoMedia(message)) => {
            log::warn(&format!("dialog {index} ({vendor}): skipped, no media: {message}"));
            Ok(Probe::NoMedia)
        }
        Err(error) => Err(media_failure(index, vendor, &error)),
    }
}

/// Fetch dialog `index`'s media; `None` (logged) when the dialog has none.
pub(crate) fn fetch(env: &Env<'_>, index: u32, vendor: &str) -> Result<Option<Media>, LinkError> {
    match env.media.fetch(index) {
        Ok(media) => Ok(Some(media)),
        Err(MediaError::NoMedia(message)) => {
            log::warn(&format!("dialog {index} ({vendor}): skipped, no media: {message}"));
            Ok(None)
        }
        Err(error) => Err(media_failure(index, vendor, &error)),
    }
}

/// A media failure as the link's error (retryable only for a failed fetch).
pub(crate) fn media_failure(index: u32, vendor: &str, error: &MediaError) -> LinkError {
    let failure = error.for_dialog(index);
    LinkError { message: format!("{} ({vendor})", failure.message), ..failure }
}

/// Skip rule of the vendors with a `minimum_duration`: the dialog's `duration`,
/// else the probed one (`truncate`: compare whole seconds, as Python's `int()`).
/// `Ok(None)` means "skip"; otherwise the probe made, if any.
pub(crate) fn long_enough(
    env: &Env<'_>,
    index: u32,
    dialog: &Value,
    vendor: &str,
    minimum: f64,
    truncate: bool,
) -> Result<Option<Option<ProbeInfo>>, LinkError> {
    let compare = |secs: f64| if truncate { secs.trunc() } else { secs };
    if let Some(secs) = declared_duration(index, dialog) {
        if compare(secs) < minimum {
            log::info(&format!(
                "dialog {index} ({vendor}): skipped, {secs} s is shorter than minimum_duration {minimum}"
            ));
            return Ok(None);
        }
        return Ok(Some(None));
    }
    match probe(env, index, vendor)? {
        Probe::Known(info) if compare(info.duration_secs) < minimum => {
            log::info(&format!(
                "dialog {index} ({vendor}): skipped, {} s (probed) is shorter than minimum_duration {minimum}",
                info.duration_secs
            ));
            Ok(None)
        }
        Probe::Known(info) => Ok(Some(Some(info))),
        Probe::Unsupported(message) => {
            log::warn(&format!(
                "dialog {index} ({vendor}): no duration and it cannot be probed ({message}); transcribing"
            ));
            Ok(Some(None))
        }
        Probe::NoMedia => Ok(None),
    }
}

/// Percent-decode `text` (invalid sequences are kept; invalid UTF-8 replaced).
pub(crate) fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| char::from(b).to_digit(16);
        if bytes[i] == b'%'
            && i + 2 < bytes.len()
            && let (Some(h), Some(l)) = (hex(bytes[i + 1]), hex(bytes[i + 2]))
        {
            out.push(u8::try_from(h * 16 + l).unwrap_or(b'?'));
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The media type without parameters, lower-case; `None` when empty or the
/// generic `application/octet-stream`.
fn bare_mediatype(mediatype: Option<&str>) -> Option<String> {
    let bare = mediatype?.split(';').next()?.trim().to_ascii_lowercase();
    (!bare.is_empty() && bare != "application/octet-stream").then_some(bare)
}

/// A file extension for a media type.
pub(crate) fn extension_for(mediatype: &str) -> Option<&'static str> {
    Some(match mediatype {
        "audio/mpeg" | "audio/mp3" | "audio/mpeg3" | "audio/x-mpeg-3" => "mp3",
        "audio/mpga" => "mpga",
        "audio/wav" | "audio/x-wav" | "audio/wave" | "audio/vnd.wave" => "wav",
        "audio/flac" | "audio/x-flac" => "flac",
        "audio/ogg" | "application/ogg" => "ogg",
        "audio/mp4" | "audio/m4a" | "audio/x-m4a" => "m4a",
        "video/mp4" => "mp4",
        "audio/webm" | "video/webm" => "webm",
        "audio/aac" => "aac",
        _ => return None,
    })
}

/// A media type for a file extension.
pub(crate) fn mediatype_for(extension: &str) -> Option<&'static str> {
    Some(match extension.to_ascii_lowercase().as_str() {
        "mp3" | "mpga" | "mpeg" => "audio/mpeg",
        "wav" => "audio/wav",
        "flac" => "audio/flac",
        "ogg" | "oga" => "audio/ogg",
        "m4a" => "audio/mp4",
        "mp4" => "video/mp4",
        "webm" => "audio/webm",
        "aac" => "audio/aac",
        _ => return None,
    })
}

/// The extension of a file name, if it has one.
fn extension_of(name: &str) -> Option<&str> {
    name.rsplit_once('.').map(|(_, ext)| ext).filter(|ext| !ext.is_empty() && ext.len() <= 5)
}

/// The last path segment of a name or URL, percent-decoded, without query.
fn last_segment(name: &str) -> Option<String> {
    let path = name.split(['?', '#']).next().unwrap_or_default();
    let segment = path.rsplit(['/', '\\']).next().unwrap_or_default();
    Some(percent_decode(segment)).filter(|s| !s.is_empty())
}

/// The file name to upload `media` as: its file name (percent-decoded, with an
/// extension added when it has none and one is known), else `audio.<ext>` from
/// its media type or the probed format, else `fallback`. `probed_format` is
/// asked only when needed.
pub(crate) fn upload_name(media: &Media, probed_format: impl FnOnce() -> Option<String>, fallback: &str) -> String {
    let name = media.filename.as_deref().and_then(last_segment);
    if let Some(name) = &name
        && extension_of(name).is_some()
    {
        return name.clone();
    }
    let extension = bare_mediatype(media.mediatype.as_deref())
        .and_then(|m| extension_for(&m).map(str::to_string))
        .or_else(|| probed_format().filter(|f| !f.is_empty()));
    match (name, extension) {
        (Some(name), Some(extension)) => format!("{name}.{extension}"),
        (Some(name), None) => name,
        (None, Some(extension)) => format!("audio.{extension}"),
        (None, None) => fallback.to_string(),
    }
}

/// The content type to upload `media` (named `name`) with.
pub(crate) fn upload_type(media: &Media, name: &str) -> String {
    bare_mediatype(media.mediatype.as_deref())
        .or_else(|| extension_of(name).and_then(mediatype_for).map(str::to_string))
        .unwrap_or_else(|| "application/octet-stream".to_string())
}

/// The stem chunk names are built on: the dialog's `filename`, else its `url`'s
/// last segment, without extension; else `audio`.
pub(crate) fn chunk_base(dialog: &Value) -> String {
    let name = dialog_text(dialog, "filename").or_else(|| dialog_text(dialog, "url")).and_then(last_segment);
    match name.as_deref().map(|n| n.rsplit_once('.').map_or(n, |(stem, _)| stem)) {
        Some(stem) if !stem.is_empty() => stem.to_string(),
        _ => "audio".to_string(),
    }
}

/// SHA-256 of `bytes`, lower-case hex.
pub(crate) fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
}

/// The cache key for a transcription: the vendor, the options that change the
/// result (`name=value`, in the given order) and the SHA-256 of the content
/// (the uploaded bytes, or the URL the vendor fetches).
pub(crate) fn cache_key(vendor: &str, settings: &[(&str, &str)], content: &[u8]) -> String {
    let mut text = format!("vendor={vendor}\n");
    for (name, value) in settings {
        text.push_str(&format!("{name}={value}\n"));
    }
    text.push_str(&format!("content={}\n", sha256_hex(content)));
    format!("transcribe:{vendor}:{}", sha256_hex(text.as_bytes()))
}

/// What a vendor call needs to explain a failure.
pub(crate) struct Call<'a> {
    pub vendor: &'a str,
    pub index: u32,
    /// Where the key comes from, e.g. "option `API_KEY` or secret `GROQ_API_KEY`".
    pub key_hint: String,
    /// The settings that select the model, e.g. "the model `whisper-1`".
    pub model_hint: String,
}

/// A transport that remembers the status of the last answer.
struct Watched<'a> {
    inner: &'a dyn Transport,
    status: Cell<Option<u16>>,
}

impl Transport for Watched<'_> {
    fn send(&self, request: &Request) -> Result<Response, HttpError> {
        let answer = self.inner.send(request);
        self.status.set(answer.as_ref().ok().map(|r| r.status));
        answer
    }
}

/// A vendor's JSON answer, and whether it came from the cache.
pub(crate) struct Answer {
    pub value: Value,
    pub cached: bool,
}

/// The vendor's JSON answer for `key`: from the cache, else by sending the
/// request `build` makes (retrying transient failures), then cached.
pub(crate) fn call_json(
    env: &Env<'_>,
    call: &Call<'_>,
    key: &str,
    build: impl FnOnce() -> Result<Request, LinkError>,
) -> Result<Answer, LinkError> {
    if let Some(value) = cache::get_json::<Value>(key) {
        log::info(&format!("transcription cache hit (dialog {}, {})", call.index, call.vendor));
        return Ok(Answer { value, cached: true });
    }
    let request = build().map_err(|e| for_dialog(call.index, call.vendor, e))?;
    let watched = Watched { inner: env.transport, status: Cell::new(None) };
    let what = format!("{} {}", request.method, request.url);
    let response = retry::send(&watched, &request, &env.retry, &env.clock, &what).map_err(|error| {
        let hint = match watched.status.get() {
            Some(401 | 403) if !error.retryable => {
                format!("; check {} (rejected by {})", call.key_hint, call.vendor)
            }
            Some(status) if !error.retryable && (400..500).contains(&status) => {
                format!("; check {} and the other vendor_options", call.model_hint)
            }
            _ => String::new(),
        };
        for_dialog(call.index, call.vendor, LinkError { message: format!("{}{hint}", error.message), ..error })
    })?;
    let value: Value = serde_json::from_slice(&response.body).map_err(|e| {
        for_dialog(call.index, call.vendor, LinkError::fatal(format!("the answer to {what} is not JSON: {e}")))
    })?;
    match serde_json::to_vec(&value) {
        Ok(bytes) if bytes.len() <= CACHE_MAX_BYTES => {
            if let Err(e) = cache::set(key, &bytes, CACHE_TTL_SECS) {
                log::warn(&format!("transcription not cached: {e}"));
            }
        }
        Ok(bytes) => log::debug(&format!("transcription not cached: {} bytes is over the cache's 1 MiB", bytes.len())),
        Err(e) => log::warn(&format!("transcription not cached: {e}")),
    }
    Ok(Answer { value, cached: false })
}

/// Whether an option name looks like a credential (`…key…`, `…token…`,
/// `…secret…`, `…password…`, any case).
fn is_secret_name(name: &str) -> bool {
    let lower = name.to_ascii_lowercase();
    ["key", "token", "secret", "password"].iter().any(|word| lower.contains(word))
}

/// `vendor_schema`: `{opts: …}` with the vendor's Python defaults (in Python's
/// order) overridden and extended by the given options, minus credentials:
/// every key-like option and the names in `removed`.
pub(crate) fn vendor_schema(defaults: &[(&str, Value)], given: &Map<String, Value>, removed: &[&str]) -> Value {
    let mut opts = Map::new();
    for (name, value) in defaults {
        opts.insert((*name).to_string(), value.clone());
    }
    for (name, value) in given {
        opts.insert(name.clone(), value.clone());
    }
    opts.retain(|name, _| !is_secret_name(name) && !removed.contains(&name.as_str()));
    let mut schema = Map::new();
    schema.insert("opts".into(), Value::Object(opts));
    Value::Object(schema)
}

/// A non-negative number option.
pub(crate) fn seconds(ctx: &Context, key: &str, default: f64) -> Result<f64, LinkError> {
    match ctx.options.get(key).filter(|v| !v.is_null()) {
        None => Ok(default),
        Some(value) => value
            .as_f64()
            .filter(|n| n.is_finite() && *n >= 0.0)
            .ok_or_else(|| invalid(ctx, key, "a number of at least 0", value)),
    }
}

/// A whole-number option from `min` to `u32::MAX`.
pub(crate) fn whole(ctx: &Context, key: &str, default: u32, min: u32) -> Result<u32, LinkError> {
    match ctx.options.get(key).filter(|v| !v.is_null()) {
        None => Ok(default),
        Some(value) => value
            .as_u64()
            .or_else(|| value.as_f64().filter(|f| f.fract() == 0.0 && *f >= 0.0).map(|f| f as u64))
            .and_then(|n| u32::try_from(n).ok())
            .filter(|n| *n >= min)
            .ok_or_else(|| invalid(ctx, key, &format!("a whole number of at least {min}"), value)),
    }
}

/// A number option (any sign).
pub(crate) fn number(ctx: &Context, key: &str, default: f64) -> Result<f64, LinkError> {
    match ctx.options.get(key).filter(|v| !v.is_null()) {
        None => Ok(default),
        Some(value) => value.as_f64().filter(|n| n.is_finite()).ok_or_else(|| invalid(ctx, key, "a number", value)),
    }
}

/// A URL option: trimmed, and absolute http(s).
pub(crate) fn url(ctx: &Context, key: &str, default: Option<&str>) -> Result<Option<String>, LinkError> {
    let given = conserver_llm::options::optional_string(ctx, key)?.map(|s| s.trim().to_string());
    let Some(url) = given.filter(|s| !s.is_empty()).or_else(|| default.map(str::to_string)) else {
        return Ok(None);
    };
    let lower = url.to_ascii_lowercase();
    let rest = lower.strip_prefix("https://").or_else(|| lower.strip_prefix("http://"));
    if rest.is_none_or(str::is_empty) {
        return Err(invalid(ctx, key, "an absolute http(s) URL", &Value::String(url)));
    }
    Ok(Some(url))
}

/// A credential: option `option` (a non-empty string), else the granted secret
/// `secret` (trimmed).
pub(crate) fn credential(ctx: &Context, option: &str, secret: &str) -> Result<Option<String>, LinkError> {
    let given = conserver_llm::options::optional_string(ctx, option)?.map(|s| s.trim().to_string());
    Ok(given.filter(|s| !s.is_empty()).or_else(|| conserver_llm::secret::secret(secret)))
}

/// The `usage.input_tokens`-style whole number at `key` of `usage`, else 0.
pub(crate) fn count(usage: Option<&Value>, key: &str) -> u64 {
    usage
        .and_then(|u| u.get(key))
        .and_then(|v| v.as_u64().or_else(|| v.as_f64().map(|f| f.max(0.0) as u64)))
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn media(filename: Option<&str>, mediatype: Option<&str>) -> Media {
        Media { bytes: Vec::new(), filename: filename.map(String::from), mediatype: mediatype.map(String::from) }
    }

    #[test]
    fn upload_names_prefer_the_file_name_then_the_type_then_the_probe() {
        let none = || None;
        assert_eq!(upload_name(&media(Some("call%20one.wav"), None), none, "audio.mp4"), "call one.wav");
        assert_eq!(upload_name(&media(Some("dir/x.MP3"), Some("audio/wav")), none, "audio.mp4"), "x.MP3");
        assert_eq!(upload_name(&media(Some("recording"), Some("audio/mpeg")), none, "audio.mp4"), "recording.mp3");
        assert_eq!(upload_name(&media(Some("recording"), None), none, "audio.mp4"), "recording");
        assert_eq!(upload_name(&media(None, Some("audio/x-wav; codecs=1")), none, "audio.mp4"), "audio.wav");
        assert_eq!(
            upload_name(&media(None, Some("application/octet-stream")), || Some("flac".into()), "audio.mp4"),
            "audio.flac"
        );
        assert_eq!(upload_name(&media(None, None), none, "audio.mp4"), "audio.mp4");
        let asked = Cell::new(false);
        upload_name(
            &media(Some("a.wav"), None),
            || {
                asked.set(true);
                None
            },
            "x",
        );
        assert!(!asked.get(), "no probe when the name says it");
    }

    #[test]
    fn upload_types_come_from_the_media_type_then_the_name() {
        assert_eq!(upload_type(&media(None, Some("audio/ogg; codecs=opus")), "a.wav"), "audio/ogg");
        assert_eq!(upload_type(&media(None, Some("application/octet-stream")), "a.wav"), "audio/wav");
        assert_eq!(upload_type(&media(None, None), "a.m4a"), "audio/mp4");
        assert_eq!(upload_type(&media(None, None), "a.bin"), "application/octet-stream");
    }

    #[test]
    fn chunk_bases_come_from_the_dialog() {
        assert_eq!(chunk_base(&json!({"filename": "call.mp3", "url": "https://h/x.wav"})), "call");
        assert_eq!(chunk_base(&json!({"url": "https://h/a/my%20call.tar.mp3?sig=1"})), "my call.tar");
        assert_eq!(chunk_base(&json!({"url": "https://h/"})), "audio");
        assert_eq!(chunk_base(&json!({"body": "x"})), "audio");
    }

    #[test]
    fn percent_decoding_keeps_invalid_sequences() {
        assert_eq!(percent_decode("a%20b%2"), "a b%2");
        assert_eq!(percent_decode("%zz%C3%A9"), "%zzé");
    }

    #[test]
    fn cache_keys_change_with_every_input() {
        let base = cache_key("openai", &[("model", "m")], b"abc");
        assert!(base.starts_with("transcribe:openai:") && base.len() == "transcribe:openai:".len() + 64);
        assert_eq!(base, cache_key("openai", &[("model", "m")], b"abc"));
        assert_ne!(base, cache_key("groq", &[("model", "m")], b"abc"));
        assert_ne!(base, cache_key("openai", &[("model", "n")], b"abc"));
        assert_ne!(base, cache_key("openai", &[("model", "m")], b"abd"));
        assert_ne!(base, cache_key("openai", &[("model", "m"), ("url", "u")], b"abc"));
    }

    #[test]
    fn vendor_schemas_merge_defaults_and_drop_credentials() {
        let given = json!({"model": "whisper-1", "LITELLM_MASTER_KEY": "m", "api_key": "k", "ai_usage_api_token": "t",
                           "send_ai_usage_data_to_url": "u", "extra": 1});
        let schema = vendor_schema(
            &[("OPENAI_API_KEY", Value::Null), ("model", json!("gpt")), ("minimum_duration", json!(3))],
            given.as_object().unwrap(),
            &["send_ai_usage_data_to_url"],
        );
        assert_eq!(schema, json!({"opts": {"model": "whisper-1", "minimum_duration": 3, "extra": 1}}));
        let keys: Vec<&String> = schema["opts"].as_object().unwrap().keys().collect();
        assert_eq!(keys, ["model", "minimum_duration", "extra"], "defaults keep Python's order");
    }
}
