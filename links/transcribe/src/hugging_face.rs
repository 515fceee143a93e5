//! Vendor `hugging_face` (Python's `links.hugging_face_whisper`): the raw audio
//! POSTed to a Hugging Face inference endpoint (`API_URL`).

use conserver_link_sdk::http::Request;
use conserver_link_sdk::log;
use conserver_link_sdk::prelude::*;
use conserver_llm::options::string;
use conserver_llm::python::truthy;
use serde_json::{Value, json};

use crate::common::{
    Call, Env, REQUEST_TIMEOUT, add_transcript, cache_key, call_json, credential, dialogs, fetch, in_vendor_options,
    long_enough, seconds, url, vendor_schema, wants_transcript,
};

const VENDOR: &str = "hugging_face";
/// The analysis `vendor`, as Python wrote it.
const ANALYSIS_VENDOR: &str = "hugging_face_whisper";
/// The granted secret read when option `API_KEY` is absent.
const SECRET: &str = "HUGGING_FACE_API_KEY";

/// Python's `default_options` without `API_KEY`, in its order (`API_URL` is
/// required here, so its placeholder default only fixes the position).
fn python_defaults() -> Vec<(&'static str, Value)> {
    vec![("minimum_duration", json!(30)), ("API_URL", Value::Null), ("Content-Type", json!("audio/flac"))]
}

struct Options {
    minimum_duration: f64,
    api_url: String,
    content_type: String,
}

impl Options {
    fn from_context(ctx: &Context) -> Result<Self, LinkError> {
        let api_url = url(ctx, "API_URL", None)?.ok_or_else(|| {
            LinkError::fatal(format!(
                "option `API_URL` of link `{}` is required: the URL of your Hugging Face inference endpoint",
                ctx.link_name
            ))
        })?;
        Ok(Self {
            minimum_duration: seconds(ctx, "minimum_duration", 30.0)?,
            api_url,
            content_type: string(ctx, "Content-Type", "audio/flac")?,
        })
    }
}

/// The key without a leading `Bearer ` (Python's placeholder default had one and
/// prefixed another).
fn bare_key(key: &str) -> &str {
    match key.get(..7) {
        Some(prefix) if prefix.eq_ignore_ascii_case("bearer ") => key[7..].trim_start(),
        _ => key,
    }
}

pub(crate) fn run(env: &Env<'_>, mut vcon: Vcon) -> LinkResult {
    let options = Options::from_context(env.ctx).map_err(in_vendor_options)?;
    let mut key: Option<Option<String>> = None;
    let mut changed = false;
    for (index, dialog) in dialogs(&vcon) {
        if !wants_transcript(&vcon, index, &dialog, VENDOR) {
            continue;
        }
        if long_enough(env, index, &dialog, VENDOR, options.minimum_duration, true)?.is_none() {
            continue;
        }
        let Some(media) = fetch(env, index, VENDOR)? else { continue };
        let key = match &key {
            Some(key) => key,
            None => &*key.insert(credential(env.ctx, "API_KEY", SECRET).map_err(in_vendor_options)?),
        };
        let call = Call {
            vendor: VENDOR,
            index,
            key_hint: format!("the Hugging Face token (`API_KEY` under vendor_options, or secret `{SECRET}`)"),
            model_hint: format!("API_URL `{}` and Content-Type `{}`", options.api_url, options.content_type),
        };
        let settings = [("api_url", options.api_url.as_str()), ("content_type", options.content_type.as_str())];
        let cache = cache_key(VENDOR, &settings, &media.bytes);
        let bytes = media.bytes;
        let answer = call_json(env, &call, &cache, || {
            let mut request = Request::post(&options.api_url).header("accept", "application/json");
            if let Some(key) = key {
                request = request.bearer(bare_key(key));
            }
            Ok(request.header("content-type", &options.content_type).body(bytes).timeout(REQUEST_TIMEOUT))
        })?;
        let result = answer.value;
        if !truthy(&result) {
            log::warn(&format!("dialog {index} ({VENDOR}): no transcription generated; stopping"));
            break;
        }
        let schema = vendor_schema(&python_defaults(), &env.ctx.options, &[]);
        add_transcript(&mut vcon, index, ANALYSIS_VENDOR, result, schema)?;
        changed = true;
    }
    Ok(if changed { Verdict::changed(vcon) } else { Verdict::unchanged() })
}

#[cfg(test)]
mod tests {
    use super::bare_key;

    #[test]
    fn a_bearer_prefix_is_dropped_once() {
        assert_eq!(bare_key("Bearer hf_abc"), "hf_abc");
        assert_eq!(bare_key("bearer  hf_abc"), "hf_abc");
        assert_eq!(bare_key("hf_abc"), "hf_abc");
        assert_eq!(bare_key("Bear"), "Bear");
    }
}
