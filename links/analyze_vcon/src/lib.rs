//! `analyze_vcon`: one LLM analysis of the whole vCon, in JSON mode, as the Python
//! conserver's `links.analyze_vcon`.
//!
//! If the vCon has no analysis of type `analysis_type` yet (for any dialog), the
//! link sends a copy of the whole vCon — without the dialogs' `body` when
//! `remove_body_properties` — as Python's `json.dumps` writes it, in a chat
//! completion with the messages `[{system: system_prompt}, {user: prompt + "\n\n" +
//! <vCon JSON>}]`, `temperature` and `response_format: {type: "json_object"}`. The
//! answer must be JSON; it is appended as `{type: analysis_type, dialog: 0, vendor:
//! "openai", body: <the parsed answer>, encoding, vendor_schema: {model, prompt,
//! system_prompt}}` — an object or list body is stored as Python's JSON text with
//! `encoding: "json"`, a scalar as is with `encoding: "none"`. `vendor` is always
//! `"openai"`, as in Python.
//!
//! Options (defaults as in Python):
//! - `prompt` (`"Analyze this vCon and return a JSON object with your analysis."`);
//! - `analysis_type` (`"json_analysis"`): the type written, and the "already done"
//!   check;
//! - `model` (`"gpt-3.5-turbo-16k"`): the model (the deployment name on Azure);
//! - `temperature` (`0`): sent as given;
//! - `system_prompt` (`"You are a helpful assistant that analyzes conversation data
//!   and returns structured JSON output."`);
//! - `remove_body_properties` (`true`): leave the dialogs' `body` out of the copy sent;
//! - `sampling_rate` (`1`): process only this share of vCons (0 means all);
//! - `only_if` (none): `{section, type|purpose, includes}`, see
//!   [`conserver_llm::filter`];
//! - LLM credentials (none): `LITELLM_PROXY_URL` + `LITELLM_MASTER_KEY`;
//!   `AZURE_OPENAI_ENDPOINT` + `AZURE_OPENAI_API_KEY` + `AZURE_OPENAI_API_VERSION`
//!   (`"2024-10-21"`); `OPENAI_API_KEY` / `openai_api_key` / `api_key`;
//!   `organization` / `organization_key`, `project` / `project_key`; new: `base_url`
//!   for any OpenAI-compatible server. An absent key is read from the granted secret
//!   of the same name. See [`conserver_llm::provider`];
//! - new: `retry_attempts` (`6`), `retry_backoff_secs` (`2`), `retry_budget_secs`
//!   (`20`), see [`conserver_llm::retry`].
//!
//! The vCon goes on unchanged when `only_if` or sampling skip it, or when the
//! analysis exists (no request is made, and no credentials are needed). An answer
//! that is not valid JSON is a retryable error and nothing is written.
//!
//! Differences from Python:
//! - Python had dead code meant to strip the system prompt from the vCon text: it
//!   never changed what was sent, and when the system prompt text appeared in the
//!   vCon it failed the vCon with a `NameError` (undefined `vcon_uuid`). Here the
//!   vCon is always sent as is (what Python sent when it did not crash).
//! - Only retryable failures (429, 5xx, timeouts, connection failures) are retried,
//!   within a time budget that ends before the host's deadline; a 4xx fails at once,
//!   as a fatal error. Python retried any error 6 times.
//! - Missing `options` mean `{}` (Python crashed on them); an option of the wrong
//!   type is a fatal error naming it.

mod options;
#[cfg(test)]
mod tests;

use conserver_link_sdk::http::{Client, Transport};
use conserver_link_sdk::prelude::*;
use conserver_link_sdk::{log, python_json};
use conserver_llm::{ChatRequest, Llm, source};
use serde_json::{Map, Value, json};

use options::Options;

/// The `analyze_vcon` link.
pub struct AnalyzeVcon;

impl Link for AnalyzeVcon {
    fn process(ctx: &Context, vcon: Vcon) -> LinkResult {
        run(ctx, vcon, &Client::host())
    }
}

export_link!(AnalyzeVcon);

/// The link, with the transport to send requests through.
fn run(ctx: &Context, mut vcon: Vcon, transport: &dyn Transport) -> LinkResult {
    let options = Options::from_context(ctx)?;
    if !conserver_llm::should_run(ctx, &vcon)? {
        return Ok(Verdict::unchanged());
    }
    if source::has_kind(&source::analysis_entries(&vcon), &options.analysis_type) {
        log::info(&format!("the vCon already has a {} analysis", options.analysis_type));
        return Ok(Verdict::unchanged());
    }
    let llm = Llm::from_context(ctx, transport)?;
    let payload = python_json::dumps(&prepared(&vcon, options.remove_body_properties));
    let user = format!("{}\n\n{payload}", options.prompt);
    let request = ChatRequest::new(&options.model, &options.system_prompt, &user)
        .temperature(options.temperature.clone())
        .response_format(Some(json!({"type": "json_object"})));
    let answer = llm.chat(&request)?;
    let body: Value = serde_json::from_str(&answer.content)
        .map_err(|e| LinkError::retryable(format!("the model's answer is not valid JSON ({e}); nothing stored")))?;
    let encoding = if matches!(body, Value::Object(_) | Value::Array(_)) { "json" } else { "none" };
    let mut extra = Map::new();
    extra.insert(
        "vendor_schema".into(),
        json!({"model": options.model, "prompt": options.prompt, "system_prompt": options.system_prompt}),
    );
    vcon.add_analysis(Analysis {
        kind: Some(options.analysis_type),
        dialog: Some(json!(0)),
        vendor: Some("openai".into()),
        body: Some(body),
        encoding: Some(encoding.into()),
        extra,
    })?;
    Ok(Verdict::changed(vcon))
}

/// The copy of the vCon sent to the model: the dialogs' `body` left out when asked.
fn prepared(vcon: &Vcon, remove_body_properties: bool) -> Value {
    let mut copy = vcon.to_map();
    if remove_body_properties && let Some(Value::Array(dialogs)) = copy.get_mut("dialog") {
        for dialog in dialogs.iter_mut().filter_map(Value::as_object_mut) {
            dialog.shift_remove("body");
        }
    }
    Value::Object(copy)
}
