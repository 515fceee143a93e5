//! `detect_engagement`: ask an LLM whether both the customer and the agent spoke
//! in each dialog, and tag the answer, as the Python conserver's
//! `links.detect_engagement`.
//!
//! For each dialog index with an analysis of type `source.analysis_type` whose
//! text at `source.text_location` is not empty, and no analysis of type
//! `analysis_type` yet, the link calls the OpenAI **Responses API** (`POST
//! <base>/responses`) with `{model, input: prompt + "\n\nTranscript: " + text,
//! temperature}`. The answer's `output_text`, trimmed and lower-cased, means
//! engaged when it is `true`. The link appends `{type: analysis_type, dialog: i,
//! vendor: "openai", body: "true"|"false", encoding: "none", vendor_schema: {model,
//! prompt, is_engaged: "true"|"false"}}` and **always** adds the tag
//! `engagement:true` or `engagement:false`.
//!
//! Options (defaults as in Python):
//! - `prompt` (`"Did both the customer and the agent speak? Respond with 'true' if
//!   yes, 'false' if not. Respond with only 'true' or 'false'."`);
//! - `analysis_type` (`"engagement_analysis"`): the type written, and the "already
//!   done" check;
//! - `model` (`"gpt-4.1"`);
//! - `temperature` (`0.2`): sent as given;
//! - `source` (`{analysis_type: "transcript", text_location:
//!   "body.paragraphs.transcript"}`): where the text is (dotted path, the body
//!   JSON-decoded first; each key defaults on its own);
//! - `sampling_rate` (`1`): process only this share of vCons (0 means all);
//! - `only_if` (none): `{section, type|purpose, includes}`, see
//!   [`conserver_llm::filter`];
//! - LLM credentials (none; Python defaulted `OPENAI_API_KEY` to the process
//!   environment, here the granted secret `OPENAI_API_KEY` plays that part):
//!   `LITELLM_PROXY_URL` + `LITELLM_MASTER_KEY`; `AZURE_OPENAI_ENDPOINT` +
//!   `AZURE_OPENAI_API_KEY` + `AZURE_OPENAI_API_VERSION` (`"2024-10-21"`; Azure's
//!   Responses API needs a recent version such as `2025-03-01-preview`);
//!   `OPENAI_API_KEY` / `openai_api_key` / `api_key`; `organization` /
//!   `organization_key`, `project` / `project_key`; new: `base_url` for any
//!   OpenAI-compatible server with a Responses API. See
//!   [`conserver_llm::provider`];
//! - new: `retry_attempts` (`6`), `retry_backoff_secs` (`2`), `retry_budget_secs`
//!   (`20`), see [`conserver_llm::retry`].
//!
//! With no credentials at all, the link logs a warning and the vCon goes on
//! unchanged, as in Python. It also goes on unchanged when `only_if` or sampling
//! skip it, or when no dialog needed a check.
//!
//! Differences from Python:
//! - Only retryable failures (429, 5xx, timeouts, connection failures) are retried,
//!   within a time budget that ends before the host's deadline; a 4xx fails at once,
//!   as a fatal error. Python retried any error 6 times.
//! - A source value that is not a string is sent as its JSON text (Python: its
//!   Python repr).
//! - Missing `options` mean `{}` (Python crashed on them); an option of the wrong
//!   type is a fatal error naming it.

mod options;
#[cfg(test)]
mod tests;

use conserver_link_sdk::http::{Client, Transport};
use conserver_link_sdk::log;
use conserver_link_sdk::prelude::*;
use conserver_llm::python::prompt_text;
use conserver_llm::{Llm, Pending, Provider, ProviderError, ResponsesRequest, RetryPolicy, source};
use serde_json::{Map, Value, json};

use options::Options;

/// The `detect_engagement` link.
pub struct DetectEngagement;

impl Link for DetectEngagement {
    fn process(ctx: &Context, vcon: Vcon) -> LinkResult {
        run(ctx, vcon, &Client::host())
    }
}

export_link!(DetectEngagement);

/// The link, with the transport to send requests through.
fn run(ctx: &Context, mut vcon: Vcon, transport: &dyn Transport) -> LinkResult {
    let options = Options::from_context(ctx)?;
    if !conserver_llm::should_run(ctx, &vcon)? {
        return Ok(Verdict::unchanged());
    }
    let provider = match Provider::from_context(ctx) {
        Ok(provider) => provider,
        Err(ProviderError::Missing) => {
            log::warn("no LLM credentials (OPENAI_API_KEY, LiteLLM or Azure); engagement not checked");
            return Ok(Verdict::unchanged());
        }
        Err(ProviderError::Invalid(error)) => return Err(error),
    };
    let llm = Llm::new(provider, transport, RetryPolicy::from_context(ctx)?);
    let mut changed = false;
    for Pending { index, text } in source::pending(&vcon, &options.source, &options.analysis_type) {
        let request = ResponsesRequest {
            model: options.model.clone(),
            input: format!("{}\n\nTranscript: {}", options.prompt, prompt_text(&text)),
            temperature: Some(options.temperature.clone()),
        };
        let answer = llm.respond(&request).map_err(|e| LinkError { message: format!("dialog {index}: {e}"), ..e })?;
        let engaged = if answer.trim().to_lowercase() == "true" { "true" } else { "false" };
        let mut extra = Map::new();
        extra.insert(
            "vendor_schema".into(),
            json!({"model": options.model, "prompt": options.prompt, "is_engaged": engaged}),
        );
        vcon.add_analysis(Analysis {
            kind: Some(options.analysis_type.clone()),
            dialog: Some(json!(index)),
            vendor: Some("openai".into()),
            body: Some(Value::String(engaged.into())),
            encoding: Some("none".into()),
            extra,
        })?;
        vcon.add_tag("engagement", engaged)?;
        log::info(&format!("dialog {index}: engagement:{engaged}"));
        changed = true;
    }
    Ok(if changed { Verdict::changed(vcon) } else { Verdict::unchanged() })
}
