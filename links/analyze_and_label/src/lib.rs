//! `analyze_and_label`: ask an LLM for labels for each dialog's transcript and add
//! them as tags, as the Python conserver's `links.analyze_and_label`.
//!
//! For each dialog index with an analysis of type `source.analysis_type` whose
//! text at `source.text_location` is not empty, and no analysis of type
//! `analysis_type` yet, the link asks for a chat completion with the messages
//! `[{system: "You are a helpful assistant that analyzes text and provides relevant
//! labels."}, {user: prompt + "\n\n" + text}]`, `temperature` and `response_format`.
//! - When the answer is a JSON object, it appends `{type: analysis_type, dialog: i,
//!   vendor: "openai", body: <the answer text>, encoding: "json", vendor_schema:
//!   {model, prompt}}` and adds the tag `label:label` for each entry of its `labels`
//!   list.
//! - Otherwise it appends the answer with `encoding: "none"` and `vendor_schema:
//!   {model, prompt, parse_error}`, and adds no tag.
//!
//! `vendor` is always `"openai"`, as in Python, whatever the provider.
//!
//! Options (defaults as in Python):
//! - `prompt` (`"Analyze this transcript and provide a list of relevant labels for
//!   categorization. Return your response as a JSON object with a single key 'labels'
//!   containing an array of strings."`);
//! - `analysis_type` (`"labeled_analysis"`): the type written, and the "already
//!   done" check;
//! - `model` (`"gpt-4-turbo"`): the model (the deployment name on Azure);
//! - `temperature` (`0.2`): sent as given;
//! - `response_format` (`{type: "json_object"}`): sent as given; `null` sends none;
//! - `source` (`{analysis_type: "transcript", text_location:
//!   "body.paragraphs.transcript"}`): where the text is (dotted path, the body
//!   JSON-decoded first; each key defaults on its own);
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
//! The vCon goes on unchanged when `only_if` or sampling skip it, or when no dialog
//! needed labels.
//!
//! Differences from Python:
//! - Only retryable failures (429, 5xx, timeouts, connection failures) are retried,
//!   within a time budget that ends before the host's deadline; a 4xx fails at once,
//!   as a fatal error. Python retried any error 6 times.
//! - The source text is read from the JSON-decoded body (as `analyze`; this Python
//!   link's own path lookup did not decode, and crashed on a string body); a
//!   non-string source value is sent as its JSON text.
//! - An answer that is valid JSON but not an object is stored like unparsable text
//!   (`encoding: "none"`, with `parse_error`); Python failed the vCon. `parse_error`
//!   holds serde's message, not Python's (`expected value at line 1 column 1`
//!   rather than `Expecting value: line 1 column 1 (char 0)`).
//! - Labels: a number or boolean becomes its JSON text, `null`/lists/objects are
//!   skipped, and a single string instead of a list is one label (Python tagged each
//!   of its characters).
//! - Missing `options` mean `{}` (Python crashed on them); an option of the wrong
//!   type is a fatal error naming it.

mod labels;
mod options;
#[cfg(test)]
mod tests;

use conserver_link_sdk::http::{Client, Transport};
use conserver_link_sdk::log;
use conserver_link_sdk::prelude::*;
use conserver_llm::python::prompt_text;
use conserver_llm::{ChatRequest, Llm, Pending, source};
use serde_json::{Map, Value, json};

use options::{Options, SYSTEM};

/// The `analyze_and_label` link.
pub struct AnalyzeAndLabel;

impl Link for AnalyzeAndLabel {
    fn process(ctx: &Context, vcon: Vcon) -> LinkResult {
        run(ctx, vcon, &Client::host())
    }
}

export_link!(AnalyzeAndLabel);

/// The link, with the transport to send requests through.
fn run(ctx: &Context, mut vcon: Vcon, transport: &dyn Transport) -> LinkResult {
    let options = Options::from_context(ctx)?;
    if !conserver_llm::should_run(ctx, &vcon)? {
        return Ok(Verdict::unchanged());
    }
    let llm = Llm::from_context(ctx, transport)?;
    let mut changed = false;
    for Pending { index, text } in source::pending(&vcon, &options.source, &options.analysis_type) {
        let user = format!("{}\n\n{}", options.prompt, prompt_text(&text));
        let request = ChatRequest::new(&options.model, SYSTEM, &user)
            .temperature(options.temperature.clone())
            .response_format(options.response_format.clone());
        let answer = llm.chat(&request).map_err(|e| LinkError { message: format!("dialog {index}: {e}"), ..e })?;
        let mut vendor_schema = json!({"model": options.model, "prompt": options.prompt});
        let (encoding, tags) = match labels::parse(&answer.content) {
            Ok(tags) => ("json", tags),
            Err(parse_error) => {
                log::error(&format!("dialog {index}: the labels answer is not a JSON object: {parse_error}"));
                vendor_schema["parse_error"] = Value::String(parse_error);
                ("none", Vec::new())
            }
        };
        let mut extra = Map::new();
        extra.insert("vendor_schema".into(), vendor_schema);
        vcon.add_analysis(Analysis {
            kind: Some(options.analysis_type.clone()),
            dialog: Some(json!(index)),
            vendor: Some("openai".into()),
            body: Some(Value::String(answer.content)),
            encoding: Some(encoding.into()),
            extra,
        })?;
        for tag in &tags {
            vcon.add_tag(tag, tag)?;
        }
        log::info(&format!("dialog {index}: {} label(s) added as tags", tags.len()));
        changed = true;
    }
    Ok(if changed { Verdict::changed(vcon) } else { Verdict::unchanged() })
}
