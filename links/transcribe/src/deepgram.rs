//! Vendor `deepgram` (Python's `links.deepgram_link`): Deepgram's pre-recorded
//! API (`POST /v1/listen` with the `api` options as query parameters), or an
//! OpenAI-style transcription through a LiteLLM proxy.

use conserver_link_sdk::http::Request;
use conserver_link_sdk::http::multipart::Multipart;
use conserver_link_sdk::log;
use conserver_link_sdk::media::Media;
use conserver_link_sdk::prelude::*;
use conserver_llm::options::{invalid, object, optional_string};
use conserver_llm::provider::encode;
use conserver_llm::usage::{self, UsageRecord, UsageTarget};
use conserver_llm::{Provider, ProviderError};
use serde_json::{Map, Value, json};

use crate::common::{
    Call, Env, REQUEST_TIMEOUT, add_transcript, cache_key, call_json, credential, declared_duration, dialog_text,
    dialogs, fetch, for_dialog, in_vendor_options, number, seconds, upload_name, upload_type, url, vendor_schema,
    wants_transcript,
};

const VENDOR: &str = "deepgram";
/// Deepgram's pre-recorded transcription endpoint.
pub(crate) const DEFAULT_API_URL: &str = "https://api.deepgram.com/v1/listen";
/// The granted secret read when option `DEEPGRAM_KEY` is absent.
const SECRET: &str = "DEEPGRAM_KEY";
/// The model Python assumed.
const DEFAULT_MODEL: &str = "nova-3";

/// Python's `default_options` without `DEEPGRAM_KEY`, in its order.
fn python_defaults() -> Vec<(&'static str, Value)> {
    vec![("minimum_duration", json!(60)), ("minimum_confidence", json!(0.5))]
}

/// Python removed these from `vendor_schema` (key-like names are removed too).
const REMOVED: &[&str] = &["send_ai_usage_data_to_url", "LITELLM_PROXY_URL"];

struct Options {
    minimum_duration: f64,
    minimum_confidence: f64,
    api: Option<Map<String, Value>>,
    api_url: String,
    model: Option<String>,
    litellm: bool,
    usage: Option<UsageTarget>,
}

impl Options {
    fn from_context(ctx: &Context) -> Result<Self, LinkError> {
        Ok(Self {
            minimum_duration: seconds(ctx, "minimum_duration", 60.0)?,
            minimum_confidence: number(ctx, "minimum_confidence", 0.5)?,
            api: object(ctx, "api")?.cloned(),
            api_url: url(ctx, "api_url", Some(DEFAULT_API_URL))?.unwrap_or_else(|| DEFAULT_API_URL.to_string()),
            model: optional_string(ctx, "model")?.filter(|m| !m.is_empty()),
            litellm: optional_string(ctx, "LITELLM_PROXY_URL")?.is_some_and(|u| !u.trim().is_empty()),
            usage: UsageTarget::from_context(ctx)?,
        })
    }

    /// `api.model` when it is a string.
    fn api_model(&self) -> Option<&str> {
        self.api.as_ref()?.get("model")?.as_str().filter(|m| !m.is_empty())
    }
}

/// How dialogs are sent, chosen at the first dialog to transcribe.
enum Route {
    /// Through the LiteLLM proxy (Python: when `LITELLM_PROXY_URL` and
    /// `LITELLM_MASTER_KEY` are both set).
    LiteLlm { provider: Provider, model: String },
    /// Deepgram itself.
    Direct { key: String, url: String },
}

/// The `api` options as a query string, in their order: booleans as
/// `true`/`false`, numbers as written, lists repeated, `null` left out.
fn query(ctx: &Context, api: &Map<String, Value>) -> Result<String, LinkError> {
    let bad = || {
        invalid(
            ctx,
            "api",
            "a mapping of Deepgram query options to strings, numbers, booleans or lists of them",
            &Value::Object(api.clone()),
        )
    };
    let scalar = |value: &Value| match value {
        Value::Bool(flag) => Some(flag.to_string()),
        Value::Number(n) => Some(n.to_string()),
        Value::String(text) => Some(text.clone()),
        _ => None,
    };
    let mut pairs = Vec::new();
    for (name, value) in api {
        match value {
            Value::Null => {}
            Value::Array(items) => {
                for item in items {
                    pairs.push(format!("{}={}", encode(name), encode(&scalar(item).ok_or_else(bad)?)));
                }
            }
            other => pairs.push(format!("{}={}", encode(name), encode(&scalar(other).ok_or_else(bad)?))),
        }
    }
    Ok(pairs.join("&"))
}

fn choose_route(env: &Env<'_>, options: &Options) -> Result<Route, LinkError> {
    if options.litellm {
        match Provider::from_context(env.ctx) {
            Ok(provider @ Provider::LiteLlm { .. }) => {
                let model = options
                    .model
                    .clone()
                    .or_else(|| options.api_model().map(str::to_string))
                    .unwrap_or(DEFAULT_MODEL.into());
                return Ok(Route::LiteLlm { provider, model });
            }
            Ok(_) | Err(ProviderError::Missing) => {}
            Err(ProviderError::Invalid(error)) => return Err(in_vendor_options(error)),
        }
    }
    let key = credential(env.ctx, "DEEPGRAM_KEY", SECRET).map_err(in_vendor_options)?.ok_or_else(|| {
        LinkError::fatal(format!(
            "the deepgram vendor needs `DEEPGRAM_KEY` under vendor_options (or the granted secret `{SECRET}`), or \
             `LITELLM_PROXY_URL` + `LITELLM_MASTER_KEY` for a LiteLLM proxy"
        ))
    })?;
    let api = options.api.as_ref().ok_or_else(|| {
        LinkError::fatal(format!(
            "option `api` of link `{}` is required under vendor_options: Deepgram's query options, e.g. \
             {{model: nova-3, smart_format: true}}",
            env.ctx.link_name
        ))
    })?;
    let query = query(env.ctx, api).map_err(in_vendor_options)?;
    let url = match (query.is_empty(), options.api_url.contains('?')) {
        (true, _) => options.api_url.clone(),
        (false, false) => format!("{}?{query}", options.api_url),
        (false, true) => format!("{}&{query}", options.api_url),
    };
    Ok(Route::Direct { key, url })
}

/// The name and type to upload `media` with (a probe only when nothing else
/// tells the format).
fn naming(env: &Env<'_>, index: u32, media: &Media, fallback: &str) -> (String, String) {
    let name = upload_name(media, || env.media.probe(index).ok().map(|p| p.format), fallback);
    let content_type = upload_type(media, &name);
    (name, content_type)
}

/// Record a probed duration in the dialog (Python did it for WAV URLs).
fn write_duration(vcon: &mut Vcon, index: u32, secs: f64) {
    let dialog = vcon.field_mut("dialog").get_mut(index as usize).and_then(Value::as_object_mut);
    if let Some(dialog) = dialog {
        dialog.insert("duration".into(), json!(secs));
    }
}

/// What a successful transcription gave.
struct Transcript {
    body: Map<String, Value>,
    /// The result's confidence, when Deepgram gave one.
    confidence: Option<f64>,
}

pub(crate) fn run(env: &Env<'_>, mut vcon: Vcon) -> LinkResult {
    let options = Options::from_context(env.ctx).map_err(in_vendor_options)?;
    let mut route_chosen: Option<Route> = None;
    let mut changed = false;
    for (index, dialog) in dialogs(&vcon) {
        if !wants_transcript(&vcon, index, &dialog, VENDOR) {
            continue;
        }
        let url = dialog_text(&dialog, "url").map(str::to_string);
        if url.is_none() && dialog_text(&dialog, "body").is_none() {
            log::info(&format!("dialog {index} ({VENDOR}): skipped, neither url nor body"));
            continue;
        }
        let mut duration = declared_duration(index, &dialog);
        // Python read the header of WAV URLs; inline bodies cost no fetch.
        let probe_it = url.as_deref().is_none_or(|u| u.to_ascii_lowercase().ends_with(".wav"));
        if duration.is_none() && probe_it {
            match env.media.probe(index) {
                Ok(info) => {
                    duration = Some(info.duration_secs);
                    write_duration(&mut vcon, index, info.duration_secs);
                    changed = true;
                }
                Err(error) => log::warn(&format!("dialog {index} ({VENDOR}): duration unknown: {error}")),
            }
        }
        match duration {
            Some(secs) if secs < options.minimum_duration => {
                log::info(&format!(
                    "dialog {index} ({VENDOR}): skipped, {secs} s is shorter than minimum_duration {}",
                    options.minimum_duration
                ));
                continue;
            }
            Some(_) => {}
            None => log::warn(&format!("dialog {index} ({VENDOR}): duration unknown; transcribing anyway")),
        }
        let route = match &route_chosen {
            Some(route) => route,
            None => &*route_chosen.insert(choose_route(env, &options)?),
        };
        let transcript = match route {
            Route::LiteLlm { provider, model } => {
                let Some(media) = fetch(env, index, VENDOR)? else { continue };
                let (name, content_type) = naming(env, index, &media, "audio.mp3");
                let endpoint = provider.transcription_url(model);
                let call = Call {
                    vendor: VENDOR,
                    index,
                    key_hint: "the LiteLLM master key (`LITELLM_MASTER_KEY`, option or secret)".into(),
                    model_hint: format!("the model `{model}`"),
                };
                let settings = [("route", "litellm"), ("url", endpoint.as_str()), ("model", model.as_str())];
                let cache = cache_key(VENDOR, &settings, &media.bytes);
                let bytes = media.bytes;
                let answer = call_json(env, &call, &cache, || {
                    let form = Multipart::new().text("model", model).file("file", &name, &content_type, bytes);
                    Ok(provider.authorize(Request::post(&endpoint).multipart(&form).timeout(REQUEST_TIMEOUT)))
                })?;
                let Some(text) = answer.value.get("text").filter(|t| !t.is_null()).cloned() else {
                    log::warn(&format!("dialog {index} ({VENDOR}): no transcription generated; stopping"));
                    break;
                };
                let mut body = Map::new();
                body.insert("transcript".into(), text);
                Transcript { body, confidence: None }
            }
            Route::Direct { key, url: endpoint } => {
                let call = Call {
                    vendor: VENDOR,
                    index,
                    key_hint: format!("the Deepgram key (`DEEPGRAM_KEY` under vendor_options, or secret `{SECRET}`)"),
                    model_hint: format!("the `api` options (model `{}`)", options.api_model().unwrap_or(DEFAULT_MODEL)),
                };
                let answer = match &url {
                    Some(source) => {
                        // Deepgram fetches the URL itself.
                        let cache = cache_key(VENDOR, &[("route", "direct-url"), ("url", endpoint)], source.as_bytes());
                        call_json(env, &call, &cache, || {
                            Ok(Request::post(endpoint)
                                .header("authorization", &format!("Token {key}"))
                                .json(&json!({"url": source}))?
                                .timeout(REQUEST_TIMEOUT))
                        })?
                    }
                    None => {
                        let Some(media) = fetch(env, index, VENDOR)? else { continue };
                        let (_, content_type) = naming(env, index, &media, "audio");
                        let settings = [("route", "direct-upload"), ("url", endpoint.as_str())];
                        let cache = cache_key(VENDOR, &settings, &media.bytes);
                        let bytes = media.bytes;
                        call_json(env, &call, &cache, || {
                            Ok(Request::post(endpoint)
                                .header("authorization", &format!("Token {key}"))
                                .header("content-type", &content_type)
                                .body(bytes)
                                .timeout(REQUEST_TIMEOUT))
                        })?
                    }
                };
                let channel = answer.value.pointer("/results/channels/0");
                let Some(mut body) =
                    channel.and_then(|c| c.pointer("/alternatives/0")).and_then(Value::as_object).cloned()
                else {
                    return Err(for_dialog(
                        index,
                        VENDOR,
                        LinkError::fatal("Deepgram's answer has no results.channels[0].alternatives[0]"),
                    ));
                };
                let language = channel
                    .and_then(|c| c.get("detected_language"))
                    .filter(|l| !l.is_null())
                    .cloned()
                    .unwrap_or_else(|| json!("en"));
                body.insert("detected_language".into(), language);
                if let Some(target) = options.usage.as_ref().filter(|_| !answer.cached) {
                    let secs = answer.value.pointer("/metadata/duration").and_then(Value::as_f64).unwrap_or(0.0);
                    usage::report(
                        env.transport,
                        target,
                        &UsageRecord {
                            record_id: &env.ctx.vcon_uuid,
                            sub_type: "DEEPGRAM_TRANSCRIBE",
                            unit_type: "seconds",
                            input_units: secs.round_ties_even().max(0.0) as u64,
                            output_units: 0,
                            model: options.api_model().unwrap_or(DEFAULT_MODEL),
                        },
                    );
                }
                let confidence = body.get("confidence").and_then(Value::as_f64);
                Transcript { body, confidence }
            }
        };
        if let Some(confidence) = transcript.confidence
            && confidence < options.minimum_confidence
        {
            log::warn(&format!(
                "dialog {index} ({VENDOR}): confidence {confidence} is below minimum_confidence {}; not stored",
                options.minimum_confidence
            ));
            continue;
        }
        let schema = vendor_schema(&python_defaults(), &env.ctx.options, REMOVED);
        add_transcript(&mut vcon, index, VENDOR, Value::Object(transcript.body), schema)?;
        changed = true;
    }
    Ok(if changed { Verdict::changed(vcon) } else { Verdict::unchanged() })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn api_options_become_a_query_string_in_order() {
        let ctx = Context::for_test("l", json!({}));
        let api = json!({"model": "nova-3", "smart_format": true, "keywords": ["a b", "c:2"], "utt_split": 0.8,
                         "language": null});
        assert_eq!(
            query(&ctx, api.as_object().unwrap()).unwrap(),
            "model=nova-3&smart_format=true&keywords=a%20b&keywords=c%3A2&utt_split=0.8"
        );
        let err = query(&ctx, json!({"x": {"y": 1}}).as_object().unwrap()).unwrap_err();
        assert!(err.message.starts_with("option `api` of link `l` must be a mapping of Deepgram"), "{}", err.message);
    }
}
