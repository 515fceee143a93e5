//! `analyze`: an LLM analysis of each dialog's transcript, as the Python
//! conserver's `links.analyze`.
//!
//! For each dialog index with an analysis of type `source.analysis_type` whose
//! text at `source.text_location` is not empty, and no analysis of type
//! `analysis_type` yet, the link asks for a chat completion with the messages
//! `[{system: system_prompt}, {user: prompt + "\n\n" + text}]` and `temperature`,
//! and appends `{type: analysis_type, dialog: i, vendor, body: <completion text>,
//! encoding: "none", vendor_schema: {model, prompt}}`. `vendor` is `openai`,
//! `azure`, or under LiteLLM the vendor guessed from the model name.
//!
//! Options (defaults as in Python):
//! - `prompt` (`""`): put before the text;
//! - `analysis_type` (`"summary"`): the type written, and the "already done" check;
//! - `model` (`"gpt-3.5-turbo-16k"`): the model (the deployment name on Azure);
//! - `temperature` (`0`): sent as given;
//! - `system_prompt` (`"You are a helpful assistant."`);
//! - `source` (`{analysis_type: "transcript", text_location:
//!   "body.paragraphs.transcript"}`): where the text is. The path is dotted, the body
//!   JSON-decoded first; the default fits Deepgram transcripts, use `body.text` for
//!   OpenAI, Groq or Hugging Face ones. Each key defaults on its own;
//! - `sampling_rate` (`1`): process only this share of vCons (0 means all);
//! - `only_if` (none): `{section, type|purpose, includes}`, see
//!   [`conserver_llm::filter`];
//! - LLM credentials (none): `LITELLM_PROXY_URL` + `LITELLM_MASTER_KEY`;
//!   `AZURE_OPENAI_ENDPOINT` + `AZURE_OPENAI_API_KEY` + `AZURE_OPENAI_API_VERSION`
//!   (`"2024-10-21"`); `OPENAI_API_KEY` / `openai_api_key` / `api_key`;
//!   `organization` / `organization_key`, `project` / `project_key`; new: `base_url`
//!   for any OpenAI-compatible server. An absent key is read from the granted secret
//!   of the same name. See [`conserver_llm::provider`];
//! - `send_ai_usage_data_to_url` (`""`) and `ai_usage_api_token` (`""`): when the URL
//!   is set, each answer's token counts are POSTed there (`sub_type: "ANALYZE"`), see
//!   [`conserver_llm::usage`];
//! - new: `retry_attempts` (`6`), `retry_backoff_secs` (`2`), `retry_budget_secs`
//!   (`20`), see [`conserver_llm::retry`].
//!
//! The vCon goes on unchanged when `only_if` or sampling skip it, or when no dialog
//! needed an analysis. The link's `allowed_outbound_hosts` must list the LLM
//! server (and the usage URL's host).
//!
//! Differences from Python:
//! - Only retryable failures (429, 5xx, timeouts, connection failures) are retried,
//!   within a time budget that ends before the host's deadline; a 4xx fails at once,
//!   as a fatal error. Python retried any error 6 times (up to 62 s of waits).
//! - A source value that is not a string (an object at `body`, a number) is sent as
//!   its JSON text; Python failed with a `TypeError` (after six retries).
//! - A usage report that fails is only logged; Python's connection errors there
//!   re-ran the LLM call and could fail the link. An answer without `usage` is
//!   stored and not reported (Python failed on it).
//! - Missing `options` mean `{}` (Python crashed on them); an option of the wrong
//!   type is a fatal error naming it.

mod options;
#[cfg(test)]
mod tests;

use conserver_link_sdk::http::{Client, Transport};
use conserver_link_sdk::log;
use conserver_link_sdk::prelude::*;
use conserver_llm::python::prompt_text;
use conserver_llm::usage::{self, UsageRecord};
use conserver_llm::{ChatRequest, Llm, Pending, source};
use serde_json::{Map, Value, json};

use options::Options;

/// The `analyze` link.
pub struct Analyze;

impl Link for Analyze {
    fn process(ctx: &Context, vcon: Vcon) -> LinkResult {
        run(ctx, vcon, &Client::host())
    }
}

export_link!(Analyze);

/// The link, with the transport to send requests through.
fn run(ctx: &Context, mut vcon: Vcon, transport: &dyn Transport) -> LinkResult {
    let options = Options::from_context(ctx)?;
    if !conserver_llm::should_run(ctx, &vcon)? {
        return Ok(Verdict::unchanged());
    }
    let llm = Llm::from_context(ctx, transport)?;
    let vendor = llm.provider().vendor(&options.model);
    let mut changed = false;
    for Pending { index, text } in source::pending(&vcon, &options.source, &options.analysis_type) {
        let user = format!("{}\n\n{}", options.prompt, prompt_text(&text));
        let request =
            ChatRequest::new(&options.model, &options.system_prompt, &user).temperature(options.temperature.clone());
        let answer = llm.chat(&request).map_err(|e| LinkError { message: format!("dialog {index}: {e}"), ..e })?;
        if let Some(target) = &options.usage {
            match answer.usage {
                Some(tokens) => usage::report(
                    transport,
                    target,
                    &UsageRecord {
                        record_id: &ctx.vcon_uuid,
                        sub_type: "ANALYZE",
                        unit_type: "tokens",
                        input_units: tokens.prompt_tokens,
                        output_units: tokens.completion_tokens,
                        model: &options.model,
                    },
                ),
                None => log::warn("the answer has no usage; nothing reported"),
            }
        }
        let mut extra = Map::new();
        extra.insert("vendor_schema".into(), json!({"model": options.model, "prompt": options.prompt}));
        vcon.add_analysis(Analysis {
            kind: Some(options.analysis_type.clone()),
            dialog: Some(json!(index)),
            vendor: Some(vendor.clone()),
            body: Some(Value::String(answer.content)),
            encoding: Some("none".into()),
            extra,
        })?;
        changed = true;
    }
    Ok(if changed { Verdict::changed(vcon) } else { Verdict::unchanged() })
}
