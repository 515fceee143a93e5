//! Vendor `groq` (Python's `links.groq_whisper`): Groq's OpenAI-compatible
//! `POST /openai/v1/audio/transcriptions`, multipart `model`, `response_format`,
//! `file`.

use conserver_link_sdk::http::Request;
use conserver_link_sdk::http::multipart::Multipart;
use conserver_link_sdk::log;
use conserver_link_sdk::prelude::*;
use conserver_llm::options::string;
use conserver_llm::python::truthy;
use serde_json::{Value, json};

use crate::common::{
    Call, Env, REQUEST_TIMEOUT, add_transcript, cache_key, call_json, credential, dialogs, fetch, in_vendor_options,
    long_enough, seconds, upload_name, upload_type, url, vendor_schema, wants_transcript,
};

const VENDOR: &str = "groq";
/// The analysis `vendor`, as Python wrote it.
const ANALYSIS_VENDOR: &str = "groq_whisper";
/// Groq's transcription endpoint.
pub(crate) const DEFAULT_API_URL: &str = "https://api.groq.com/openai/v1/audio/transcriptions";
/// Python's fixed model.
const DEFAULT_MODEL: &str = "whisper-large-v3-turbo";
/// The granted secret read when option `API_KEY` is absent.
const SECRET: &str = "GROQ_API_KEY";

/// Python's `default_options` without `API_KEY`, in its order.
fn python_defaults() -> Vec<(&'static str, Value)> {
    vec![("minimum_duration", json!(30)), ("Content-Type", json!("audio/flac"))]
}

struct Options {
    minimum_duration: f64,
    api_url: String,
    model: String,
}

impl Options {
    fn from_context(ctx: &Context) -> Result<Self, LinkError> {
        // `Content-Type` is read only to check its type: Python never used it.
        string(ctx, "Content-Type", "audio/flac")?;
        Ok(Self {
            minimum_duration: seconds(ctx, "minimum_duration", 30.0)?,
            api_url: url(ctx, "api_url", Some(DEFAULT_API_URL))?.unwrap_or_else(|| DEFAULT_API_URL.to_string()),
            model: string(ctx, "model", DEFAULT_MODEL)?,
        })
    }
}

pub(crate) fn run(env: &Env<'_>, mut vcon: Vcon) -> LinkResult {
    let options = Options::from_context(env.ctx).map_err(in_vendor_options)?;
    let mut key: Option<String> = None;
    let mut changed = false;
    for (index, dialog) in dialogs(&vcon) {
        if !wants_transcript(&vcon, index, &dialog, VENDOR) {
            continue;
        }
        let Some(probed) = long_enough(env, index, &dialog, VENDOR, options.minimum_duration, true)? else { continue };
        let Some(media) = fetch(env, index, VENDOR)? else { continue };
        let key = match &key {
            Some(key) => key,
            None => &*key
                .insert(credential(env.ctx, "API_KEY", SECRET).map_err(in_vendor_options)?.ok_or_else(|| {
                LinkError::fatal(format!(
                    "no Groq API key: set `API_KEY` under `vendor_options`, or grant the secret `{SECRET}` to this link"
                ))
            })?),
        };
        let name = upload_name(
            &media,
            || probed.map(|p| p.format).or_else(|| env.media.probe(index).ok().map(|p| p.format)),
            "audio.flac",
        );
        let content_type = upload_type(&media, &name);
        let call = Call {
            vendor: VENDOR,
            index,
            key_hint: format!("the Groq API key (`API_KEY` under vendor_options, or secret `{SECRET}`)"),
            model_hint: format!("the model `{}` and api_url `{}`", options.model, options.api_url),
        };
        let settings =
            [("api_url", options.api_url.as_str()), ("model", options.model.as_str()), ("response_format", "json")];
        let cache = cache_key(VENDOR, &settings, &media.bytes);
        let bytes = media.bytes;
        let answer = call_json(env, &call, &cache, || {
            let form = Multipart::new().text("model", &options.model).text("response_format", "json").file(
                "file",
                &name,
                &content_type,
                bytes,
            );
            Ok(Request::post(&options.api_url).bearer(key).multipart(&form).timeout(REQUEST_TIMEOUT))
        })?;
        let result = answer.value;
        if !truthy(&result) || result.get("text").is_none() {
            log::warn(&format!("dialog {index} ({VENDOR}): no transcription (no `text` in the answer); stopping"));
            break;
        }
        let schema = vendor_schema(&python_defaults(), &env.ctx.options, &[]);
        add_transcript(&mut vcon, index, ANALYSIS_VENDOR, result, schema)?;
        changed = true;
    }
    Ok(if changed { Verdict::changed(vcon) } else { Verdict::unchanged() })
}
