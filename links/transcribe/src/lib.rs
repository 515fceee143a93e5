//! `transcribe`: a transcript of each recording dialog from one vendor, as the
//! Python conserver's `links.transcribe` dispatcher and the vendor links it
//! calls (`links.openai_transcribe`, `links.groq_whisper`,
//! `links.hugging_face_whisper`, `links.deepgram_link`). Configs that name one of
//! those legacy modules are rewritten by the host's config loader to this link
//! with `{vendor: …, vendor_options: <the old options>}`.
//!
//! Options:
//! - `vendor` (no usable default): `openai`, `groq`, `hugging_face` or
//!   `deepgram`. Absent, empty or `whisper_builtin` (Python's default: local
//!   Whisper through the `vcon` library, broken in the Python deployment) is a
//!   fatal error listing the vendors; another name is a fatal error naming it.
//! - `vendor_options` (`{}`): the vendor's own options, below. When it is absent,
//!   the legacy key `transcribe_options` is read instead; `null` means `{}`.
//!
//! Each dialog, in order, is skipped when it is not of type `recording`, when the
//! vCon already has an analysis of type `transcript` for its index (any vendor:
//! re-runs are idempotent), when it is shorter than the vendor's
//! `minimum_duration`, or when it has no media (logged). Otherwise the vendor
//! transcribes it and an analysis `{type: "transcript", dialog: <index>, vendor,
//! body: <JSON-encoded result>, encoding: "json", vendor_schema: {opts: …}}` is
//! appended. `vendor_schema.opts` is the vendor's Python defaults (in Python's
//! order) overridden and extended by `vendor_options`, minus credentials: every
//! option whose name contains `key`, `token`, `secret` or `password` (any case),
//! `send_ai_usage_data_to_url`, and for deepgram `LITELLM_PROXY_URL`. The vCon
//! goes on unchanged when nothing was added (or, for deepgram, no duration was
//! written into a dialog).
//!
//! Vendor `openai` (analysis vendor `openai`; OpenAI, Azure OpenAI or a LiteLLM
//! proxy, chosen as in [`conserver_llm::provider`]):
//! - credentials: `LITELLM_PROXY_URL` + `LITELLM_MASTER_KEY`;
//!   `AZURE_OPENAI_ENDPOINT` + `AZURE_OPENAI_API_KEY` + `AZURE_OPENAI_API_VERSION`
//!   (`"2024-10-21"`); `OPENAI_API_KEY` / `openai_api_key` / `api_key`;
//!   `organization`, `project`; `base_url` (new) for any OpenAI-compatible server
//!   (e.g. a self-hosted Whisper gateway). An absent key is read from the granted
//!   secret of the same name;
//! - `model` (`"gpt-4o-transcribe"`; the deployment name on Azure);
//! - `language` (`"en"`): accepted and, as in Python, not sent;
//! - `minimum_duration` (`3` s), `max_chunk_duration` (`480` s);
//! - `use_silence_chunking` (`true`), `silence_thresh` (`-40` dBFS),
//!   `silence_len` (`2000` ms);
//! - `send_ai_usage_data_to_url` / `ai_usage_api_token` (`""`): when set, the
//!   tokens billed for each dialog are reported (`sub_type: OPENAI_TRANSCRIBE`),
//!   see [`conserver_llm::usage`].
//!
//!   The duration is the dialog's `duration`, else the host's probe. A recording
//!   of at most `max_chunk_duration` is uploaded unchanged (`POST
//!   …/audio/transcriptions`, multipart `model` and `file`), named by the media's
//!   file name, else `audio.<ext>` from its media type or probed format, else
//!   `audio.mp4`. A longer one is cut by the host (mono 16 kHz WAV chunks of at
//!   most `max_chunk_duration`, at silences by Python's rule unless
//!   `use_silence_chunking` is false), each chunk uploaded as
//!   `<base>_chunk_NNN.wav`; the results are combined as Python did: the first
//!   result with `text` = the non-empty chunk texts joined by single spaces,
//!   `usage` = `{type: "tokens", input_tokens, total_tokens, output_tokens,
//!   input_token_details: {text_tokens: 0, audio_tokens: <input>}}` summed, and
//!   `chunked_transcription: {total_chunks, chunk_results}`. When the host cannot
//!   decode the format (Opus, AMR…), the original bytes are uploaded unchanged
//!   (with a warning) unless the dialog's `duration` exceeds
//!   `max_chunk_duration`, which is a fatal error saying the codec cannot be
//!   split.
//!
//! Vendor `groq` (analysis vendor `groq_whisper`): multipart `model`,
//! `response_format: json` and `file` to Groq's OpenAI-compatible endpoint.
//! - `API_KEY` (none): else the granted secret `GROQ_API_KEY`; none is a fatal
//!   error;
//! - `minimum_duration` (`30` s, whole seconds compared, as Python's `int()`);
//! - `api_url` (new, `"https://api.groq.com/openai/v1/audio/transcriptions"`);
//! - `model` (new, `"whisper-large-v3-turbo"`, Python's fixed model);
//! - `Content-Type` (`"audio/flac"`): accepted and unused, as in Python.
//!
//! Vendor `hugging_face` (analysis vendor `hugging_face_whisper`): the raw audio
//! POSTed with `Accept: application/json`, `Content-Type: <Content-Type>` and
//! `Authorization: Bearer <key>`; the answer JSON (e.g. `{text}`) is the body.
//! - `API_URL` (required): the inference endpoint;
//! - `API_KEY` (none): else the granted secret `HUGGING_FACE_API_KEY`; without
//!   either no `Authorization` is sent (public or self-hosted endpoints);
//! - `minimum_duration` (`30` s, whole seconds compared);
//! - `Content-Type` (`"audio/flac"`).
//!
//! Vendor `deepgram` (analysis vendor `deepgram`):
//! - `DEEPGRAM_KEY` (none): else the granted secret `DEEPGRAM_KEY`;
//! - `api` (required on Deepgram's own API): the query options (`model`,
//!   `smart_format`, `language`, …), sent as query parameters — booleans as
//!   `true`/`false`, lists repeated;
//! - `api_url` (new, `"https://api.deepgram.com/v1/listen"`);
//! - `minimum_duration` (`60` s), `minimum_confidence` (`0.5`);
//! - `LITELLM_PROXY_URL` + `LITELLM_MASTER_KEY` (option or secret) and `model`:
//!   send through a LiteLLM proxy instead (`…/audio/transcriptions`, model =
//!   `model`, else `api.model`, else `nova-3`; body `{transcript: <text>}`, no
//!   confidence check);
//! - `send_ai_usage_data_to_url` / `ai_usage_api_token`: Deepgram's billed
//!   seconds (`metadata.duration`, rounded) are reported (`sub_type:
//!   DEEPGRAM_TRANSCRIBE`, `unit_type: seconds`).
//!
//!   A dialog with a `url` is sent as JSON `{"url": …}` with `Authorization:
//!   Token <key>`: Deepgram fetches the audio, so the URL must be reachable from
//!   Deepgram. A dialog with only an inline `body` is uploaded as raw bytes with
//!   its media type. The body is Deepgram's `results.channels[0].alternatives[0]`
//!   plus `detected_language` (the channel's, default `"en"`); below
//!   `minimum_confidence` nothing is stored (logged) and the next dialog is
//!   processed. A missing `duration` is probed for WAV URLs (as Python did) and
//!   inline bodies, and written into the dialog.
//!
//! Shared by the vendors (all under `vendor_options`):
//! - media comes from the host (see [`conserver_link_sdk::media`]): the inline
//!   `body` decoded by its `encoding`, or the `url` fetched under the link's
//!   `allowed_outbound_hosts` (list the media hosts there as well as the
//!   vendor's), checked against `content_hash` or the legacy `alg`/`signature`;
//! - transcription cache: each vendor answer is kept for a day in the link's
//!   cache (when under 1 MiB), keyed by the SHA-256 of the uploaded bytes (of the
//!   URL for Deepgram's pass-through), the vendor, the model and the options that
//!   change the result; a hit (logged `transcription cache hit`) is used without
//!   calling the vendor, and is not reported as AI usage;
//! - retries: `retry_attempts` (`6`), `retry_backoff_secs` (`2`),
//!   `retry_budget_secs` (`20`), see [`conserver_llm::retry`]: connection
//!   failures, timeouts, 429 and 5xx are retried with exponential backoff inside
//!   the time budget; a 4xx is a fatal error naming the vendor, the status and
//!   what to check (the key, the model). Each answer has 120 s to start.
//! - every error that ends the link names the dialog and the vendor; a failed
//!   media fetch is retryable, a denied or corrupt one fatal;
//! - the host stops a link at its deadline (`limits.timeout_ms`, 30 s by
//!   default): give this link a longer one for the recordings it will see, and
//!   list the vendor's host (and the media hosts) in `allowed_outbound_hosts`
//!   and the key secrets under `secrets:`.
//!
//! Differences from Python:
//! - `whisper_builtin` is not offered (it failed at runtime in Python, which also
//!   made it a broken default); no vendor is a fatal error.
//! - Keys may come from granted secrets (`OPENAI_API_KEY`, `AZURE_OPENAI_API_KEY`,
//!   `LITELLM_MASTER_KEY`, `GROQ_API_KEY`, `HUGGING_FACE_API_KEY`,
//!   `DEEPGRAM_KEY`) instead of options; Python's groq read the process
//!   environment at import time.
//! - Media is fetched, verified and decoded by the host. Every vendor accepts both
//!   inline bodies and URLs (Python's openai and deepgram ignored inline bodies,
//!   groq and Hugging Face decoded them as standard base64 whatever their
//!   `encoding`, and only a `SHA-512` `signature` was checked). Chunks are 16 kHz
//!   mono WAV (`.wav`) rather than 128 kbit/s MP3.
//! - The openai upload name comes from the dialog's `filename` or the URL (the
//!   `Content-Disposition` of the download is not seen); Python's temp-file name
//!   is replaced by `<base>_chunk_NNN` for chunks, the base being the dialog's
//!   file name.
//! - Groq's file name carries the real format's extension (Python always sent
//!   `<tmp>.flac`, so the format was misdetected); its model is an option.
//! - Hugging Face: a key that already starts with `Bearer ` is not prefixed again
//!   (Python's default gave `Bearer Bearer …`); `API_URL` is required (Python's
//!   default was a placeholder host); a non-2xx answer is an error rather than
//!   stored as the transcript.
//! - A missing `duration` is probed for groq and Hugging Face (Python raised
//!   `KeyError`) and for openai's minimum (Python proceeded).
//! - Each vendor's base URL is an option (`base_url`, `api_url`, `API_URL`) for
//!   tests and self-hosted gateways.
//! - Only transient failures are retried, within a time budget that ends before
//!   the host's deadline (Python: 6 attempts on any error, waits up to 65 s, or
//!   12–100 s for groq and Hugging Face); a 4xx fails at once.
//! - A vendor failure fails the link for every vendor: the vCon goes to the
//!   dead-letter queue (or is retried) with nothing stored. Python's groq and
//!   Hugging Face logged it, stopped the loop and stored the earlier dialogs'
//!   transcripts; a retry here re-uses them from the cache.
//! - `vendor_schema` also drops LiteLLM master keys and every other key-like
//!   option (Python's openai kept `LITELLM_MASTER_KEY` in the vCon). The body is
//!   the vendor's JSON answer as received (Python dumped SDK objects, adding
//!   `null` fields such as `logprobs`).
//! - Deepgram's AI-usage model is `api.model` when set (Python always said
//!   `nova-3`); the secret name for its key is `DEEPGRAM_KEY`.
//! - Missing `options` mean `{}`; an option of the wrong type is a fatal error
//!   naming it (Python failed later, or never). Metrics counters are log lines.

mod common;
mod deepgram;
mod groq;
mod hugging_face;
mod openai;
#[cfg(test)]
mod tests;

use conserver_link_sdk::http::{Client, Transport};
use conserver_link_sdk::log;
use conserver_link_sdk::media::{HostMedia, MediaSource};
use conserver_link_sdk::prelude::*;
use conserver_llm::options::invalid;
use conserver_llm::retry::{RetryPolicy, SystemClock};
use serde_json::{Map, Value};

use common::{Env, in_vendor_options};

/// The `transcribe` link.
pub struct Transcribe;

impl Link for Transcribe {
    fn process(ctx: &Context, vcon: Vcon) -> LinkResult {
        run(ctx, vcon, &Client::host(), &HostMedia)
    }
}

export_link!(Transcribe);

/// The vendors offered.
pub const VENDORS: [&str; 4] = ["openai", "groq", "hugging_face", "deepgram"];

/// The chosen vendor: `None` for none or `whisper_builtin`.
fn vendor(ctx: &Context) -> Result<Option<String>, LinkError> {
    match ctx.options.get("vendor") {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(name)) if name.is_empty() || name == "whisper_builtin" => Ok(None),
        Some(Value::String(name)) => Ok(Some(name.clone())),
        Some(other) => Err(invalid(ctx, "vendor", &format!("one of {}", VENDORS.join(", ")), other)),
    }
}

/// `vendor_options`, else the legacy `transcribe_options`, else `{}`.
fn vendor_options(ctx: &Context) -> Result<Map<String, Value>, LinkError> {
    let key = if ctx.options.contains_key("vendor_options") { "vendor_options" } else { "transcribe_options" };
    match ctx.options.get(key) {
        None | Some(Value::Null) => Ok(Map::new()),
        Some(Value::Object(map)) => Ok(map.clone()),
        Some(other) => Err(invalid(ctx, key, "a mapping of the vendor's options", other)),
    }
}

/// The link, with the transport to send requests through and the media source.
pub fn run(ctx: &Context, vcon: Vcon, transport: &dyn Transport, media: &dyn MediaSource) -> LinkResult {
    let clock = SystemClock::start();
    let Some(vendor) = vendor(ctx)? else {
        return Err(LinkError::fatal(format!(
            "link `{}` needs option `vendor`: one of {} (`whisper_builtin`, Python's default local Whisper, is not \
             available)",
            ctx.link_name,
            VENDORS.join(", ")
        )));
    };
    if !VENDORS.contains(&vendor.as_str()) {
        return Err(LinkError::fatal(format!(
            "link `{}`: unknown vendor `{vendor}`; supported: {}",
            ctx.link_name,
            VENDORS.join(", ")
        )));
    }
    let vendor_ctx = Context { options: vendor_options(ctx)?, ..ctx.clone() };
    let retry = RetryPolicy::from_context(&vendor_ctx).map_err(in_vendor_options)?;
    let env = Env { ctx: &vendor_ctx, transport, media, retry, clock };
    log::info(&format!("transcribe: vendor {vendor}"));
    match vendor.as_str() {
        "openai" => openai::run(&env, vcon),
        "groq" => groq::run(&env, vcon),
        "hugging_face" => hugging_face::run(&env, vcon),
        _ => deepgram::run(&env, vcon),
    }
}
