//! Vendor `openai` (Python's `links.openai_transcribe`): OpenAI, Azure OpenAI or
//! a LiteLLM proxy, `POST …/audio/transcriptions`, long recordings in chunks.

use conserver_link_sdk::http::Request;
use conserver_link_sdk::http::multipart::Multipart;
use conserver_link_sdk::log;
use conserver_link_sdk::media::{ChunkRequest, ProbeInfo};
use conserver_link_sdk::prelude::*;
use conserver_llm::Provider;
use conserver_llm::options::string;
use conserver_llm::python::truthy;
use conserver_llm::usage::{self, UsageRecord, UsageTarget};
use serde_json::{Map, Value, json};

use crate::common::{
    Answer, Call, Env, Probe, REQUEST_TIMEOUT, add_transcript, cache_key, call_json, chunk_base, count,
    declared_duration, dialogs, fetch, for_dialog, in_vendor_options, media_failure, number, probe, seconds,
    upload_name, upload_type, vendor_schema, wants_transcript, whole,
};

const VENDOR: &str = "openai";

/// Python's `default_options`, in its order (`vendor_schema.opts` starts from them).
fn python_defaults() -> Vec<(&'static str, Value)> {
    vec![
        ("OPENAI_API_KEY", Value::Null),
        ("AZURE_OPENAI_API_KEY", Value::Null),
        ("AZURE_OPENAI_ENDPOINT", Value::Null),
        ("AZURE_OPENAI_API_VERSION", json!("2024-10-21")),
        ("model", json!("gpt-4o-transcribe")),
        ("language", json!("en")),
        ("minimum_duration", json!(3)),
        ("max_chunk_duration", json!(480)),
        ("use_silence_chunking", json!(true)),
        ("silence_thresh", json!(-40)),
        ("silence_len", json!(2000)),
    ]
}

/// Python removed these from `vendor_schema` (key-like names are removed too).
const REMOVED: &[&str] = &["send_ai_usage_data_to_url"];

struct Options {
    model: String,
    minimum_duration: f64,
    max_chunk_duration: u32,
    use_silence_chunking: bool,
    silence_thresh: f64,
    silence_len: u32,
    usage: Option<UsageTarget>,
}

impl Options {
    fn from_context(ctx: &Context) -> Result<Self, LinkError> {
        // `language` is read only to check its type: Python never sent it either.
        string(ctx, "language", "en")?;
        Ok(Self {
            model: string(ctx, "model", "gpt-4o-transcribe")?,
            minimum_duration: seconds(ctx, "minimum_duration", 3.0)?,
            max_chunk_duration: whole(ctx, "max_chunk_duration", 480, 1)?,
            use_silence_chunking: conserver_llm::options::boolean(ctx, "use_silence_chunking", true)?,
            silence_thresh: number(ctx, "silence_thresh", -40.0)?,
            silence_len: whole(ctx, "silence_len", 2000, 1)?,
            usage: UsageTarget::from_context(ctx)?,
        })
    }
}

/// Where the key of `provider` comes from, for error messages.
fn key_hint(provider: &Provider) -> String {
    match provider {
        Provider::LiteLlm { .. } => "the LiteLLM master key (option or secret `LITELLM_MASTER_KEY`)".into(),
        Provider::Azure { .. } => "the Azure key (option or secret `AZURE_OPENAI_API_KEY`)".into(),
        Provider::OpenAi { .. } => {
            "the API key (option `OPENAI_API_KEY` / `api_key`, or secret `OPENAI_API_KEY`)".into()
        }
    }
}

/// One transcription call's result and whether it was billed (not cached).
struct Transcribed {
    results: Vec<Value>,
    billed_input: u64,
    billed_output: u64,
    billed: bool,
}

impl Transcribed {
    fn new() -> Self {
        Self { results: Vec::new(), billed_input: 0, billed_output: 0, billed: false }
    }

    fn add(&mut self, answer: Answer) {
        if !answer.cached {
            let usage = answer.value.get("usage");
            self.billed_input += count(usage, "input_tokens");
            self.billed_output += count(usage, "output_tokens");
            self.billed = true;
        }
        self.results.push(answer.value);
    }
}

pub(crate) fn run(env: &Env<'_>, mut vcon: Vcon) -> LinkResult {
    let options = Options::from_context(env.ctx).map_err(in_vendor_options)?;
    let mut provider: Option<Provider> = None;
    let mut changed = false;
    for (index, dialog) in dialogs(&vcon) {
        if !wants_transcript(&vcon, index, &dialog, VENDOR) {
            continue;
        }
        let declared = declared_duration(index, &dialog);
        if let Some(secs) = declared
            && secs < options.minimum_duration
        {
            log::info(&format!(
                "dialog {index} ({VENDOR}): skipped, {secs} s is shorter than minimum_duration {}",
                options.minimum_duration
            ));
            continue;
        }
        let max = f64::from(options.max_chunk_duration);
        let whole_file = match probe(env, index, VENDOR)? {
            Probe::NoMedia => continue,
            Probe::Known(info) => {
                if declared.is_none() && info.duration_secs < options.minimum_duration {
                    log::info(&format!(
                        "dialog {index} ({VENDOR}): skipped, {} s (probed) is shorter than minimum_duration {}",
                        info.duration_secs, options.minimum_duration
                    ));
                    continue;
                }
                (info.duration_secs <= max).then_some(Some(info))
            }
            Probe::Unsupported(message) => {
                if let Some(secs) = declared.filter(|secs| *secs > max) {
                    return Err(for_dialog(
                        index,
                        VENDOR,
                        LinkError::fatal(format!(
                            "the recording is {secs} s, longer than max_chunk_duration {max} s, and its codec cannot \
                             be split by the host: {message}"
                        )),
                    ));
                }
                log::warn(&format!(
                    "dialog {index} ({VENDOR}): the host cannot decode this recording ({message}); uploading the \
                     original bytes unchanged"
                ));
                Some(None)
            }
        };
        let provider = match &provider {
            Some(provider) => provider,
            None => &*provider.insert(Provider::from_context(env.ctx).map_err(|e| in_vendor_options(e.into()))?),
        };
        let url = provider.transcription_url(&options.model);
        let call = Call {
            vendor: VENDOR,
            index,
            key_hint: key_hint(provider),
            model_hint: format!("the model `{}` (on Azure, the deployment name)", options.model),
        };
        let settings = [("url", url.as_str()), ("model", options.model.as_str())];
        let mut transcribed = Transcribed::new();
        match whole_file {
            Some(info) => {
                let Some(media) = fetch(env, index, VENDOR)? else { continue };
                let name = upload_name(&media, || info.map(|i: ProbeInfo| i.format), "audio.mp4");
                let content_type = upload_type(&media, &name);
                let key = cache_key(VENDOR, &settings, &media.bytes);
                let bytes = media.bytes;
                let answer = call_json(env, &call, &key, || {
                    let form = Multipart::new().text("model", &options.model).file("file", &name, &content_type, bytes);
                    Ok(provider.authorize(Request::post(&url).multipart(&form).timeout(REQUEST_TIMEOUT)))
                })?;
                transcribed.add(answer);
            }
            None => {
                let request = ChunkRequest {
                    max_chunk_secs: options.max_chunk_duration,
                    sample_rate: 16_000,
                    split_at_silence: options.use_silence_chunking,
                    silence_threshold_dbfs: options.silence_thresh,
                    silence_window_ms: options.silence_len,
                };
                let base = chunk_base(&dialog);
                let chunks = env.media.split(index, &request).map_err(|e| media_failure(index, VENDOR, &e))?;
                for (n, chunk) in chunks.enumerate() {
                    let chunk = chunk.map_err(|e| media_failure(index, VENDOR, &e))?;
                    let name = format!("{base}_chunk_{n:03}.wav");
                    log::info(&format!(
                        "dialog {index} ({VENDOR}): transcribing chunk {n} ({}–{} ms) as {name}",
                        chunk.start_ms, chunk.end_ms
                    ));
                    let key = cache_key(VENDOR, &settings, &chunk.wav);
                    let answer = call_json(env, &call, &key, || {
                        let form =
                            Multipart::new().text("model", &options.model).file("file", &name, "audio/wav", chunk.wav);
                        Ok(provider.authorize(Request::post(&url).multipart(&form).timeout(REQUEST_TIMEOUT)))
                    })?;
                    transcribed.add(answer);
                }
                if transcribed.results.is_empty() {
                    return Err(for_dialog(
                        index,
                        VENDOR,
                        LinkError::fatal("the host cut the recording into no chunks"),
                    ));
                }
            }
        }
        let result = combine(&transcribed.results);
        if let Some(target) = options.usage.as_ref().filter(|_| transcribed.billed) {
            usage::report(
                env.transport,
                target,
                &UsageRecord {
                    record_id: &env.ctx.vcon_uuid,
                    sub_type: "OPENAI_TRANSCRIBE",
                    unit_type: "tokens",
                    input_units: transcribed.billed_input,
                    output_units: transcribed.billed_output,
                    model: &options.model,
                },
            );
        }
        if !truthy(&result) {
            log::warn(&format!("dialog {index} ({VENDOR}): no transcription generated; stopping"));
            break;
        }
        let schema = vendor_schema(&python_defaults(), &env.ctx.options, REMOVED);
        add_transcript(&mut vcon, index, VENDOR, result, schema)?;
        changed = true;
    }
    Ok(if changed { Verdict::changed(vcon) } else { Verdict::unchanged() })
}

/// Python's `combine_transcription_results`: one result as is; several joined —
/// the first result with `text` (the non-empty texts joined by single spaces),
/// `usage` (summed) and `chunked_transcription` (every result).
fn combine(results: &[Value]) -> Value {
    match results {
        [] => Value::Object(Map::new()),
        [one] => one.clone(),
        [first, ..] => {
            let mut combined = first.as_object().cloned().unwrap_or_default();
            let text: Vec<&str> = results
                .iter()
                .filter_map(|r| r.get("text").and_then(Value::as_str))
                .filter(|t| !t.is_empty())
                .collect();
            let total = |key: &str| results.iter().map(|r| count(r.get("usage"), key)).sum::<u64>();
            let input = total("input_tokens");
            combined.insert("text".into(), json!(text.join(" ")));
            combined.insert(
                "usage".into(),
                json!({
                    "type": "tokens",
                    "input_tokens": input,
                    "total_tokens": total("total_tokens"),
                    "output_tokens": total("output_tokens"),
                    "input_token_details": {"text_tokens": 0, "audio_tokens": input}
                }),
            );
            combined.insert(
                "chunked_transcription".into(),
                json!({"total_chunks": results.len(), "chunk_results": results}),
            );
            Value::Object(combined)
        }
    }
}
