//! `check_and_tag`: ask an LLM a yes/no question about each dialog and add a tag
//! when the answer is yes, as the Python conserver's `links.check_and_tag`.
//!
//! For each dialog index with an analysis of type `source.analysis_type` whose
//! value at `source.text_location` is not empty, and no analysis of type
//! `analysis_type` yet, the link asks for a chat completion with the messages
//! `[{system: "You are a helpful assistant that evaluates text against specific
//! questions and provides yes/no answers."}, {user: "Question: <evaluation_question>
//! \n\nText to evaluate:\n<text>\n\nPlease answer with a JSON object containing a
//! single key 'applies' with a boolean value (true if the tag applies, false if it
//! doesn't)."}]` and `response_format` (no temperature is sent). It appends
//! `{type: analysis_type, dialog: i, vendor: "openai", body: {link_name, tag:
//! "<tag_name>:<tag_value>", applies}, encoding: "json", vendor_schema: {model,
//! evaluation_question}}` (the body as Python's JSON text) and, when `applies` is
//! true, adds the tag `tag_name:tag_value`.
//!
//! Options (defaults as in Python):
//! - `tag_name`, `tag_value`, `evaluation_question` (required, non-empty; a number
//!   is accepted for the tag parts): checked before anything else;
//! - `analysis_type` (`"tag_evaluation"`): the type written, and the "already done"
//!   check;
//! - `model` (`"gpt-5"`): the model (the deployment name on Azure);
//! - `source` (`{analysis_type: "transcript", text_location: "body"}`): where the
//!   text is (dotted path, the body JSON-decoded first; each key defaults on its
//!   own). With the default, a structured transcript body is sent whole;
//! - `response_format` (`{type: "json_object"}`): sent as given; `null` sends none;
//! - `verbosity` (`"low"`) and `minimal_reasoning` (`true`): accepted and never sent,
//!   as in Python (sending them would make every non-GPT-5 model refuse the request);
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
//! needed an evaluation. An answer that is not a JSON object is a retryable error.
//!
//! Differences from Python:
//! - A source value that is not a string (the default `body` of a structured
//!   transcript) is sent as its JSON text; Python sent its Python repr
//!   (`{'text': 'hi'}`).
//! - `applies` as a string counts only when it reads `true` or `yes` (Python's
//!   truthiness applied the tag for `"false"`); the body keeps the value as answered.
//! - Only retryable failures (429, 5xx, timeouts, connection failures) are retried,
//!   within a time budget that ends before the host's deadline; a 4xx fails at once,
//!   as a fatal error. Python retried any error 6 times.
//! - Missing `options` mean `{}` (Python crashed on them; here the required options
//!   are reported instead); an option of the wrong type is a fatal error naming it.
//!   A missing vCon is the host's concern.

mod evaluation;
mod options;
#[cfg(test)]
mod tests;

use conserver_link_sdk::http::{Client, Transport};
use conserver_link_sdk::log;
use conserver_link_sdk::prelude::*;
use conserver_llm::python::prompt_text;
use conserver_llm::{ChatRequest, Llm, Pending, source};
use serde_json::{Map, json};

use evaluation::{SYSTEM, applies, user_message};
use options::Options;

/// The `check_and_tag` link.
pub struct CheckAndTag;

impl Link for CheckAndTag {
    fn process(ctx: &Context, vcon: Vcon) -> LinkResult {
        run(ctx, vcon, &Client::host())
    }
}

export_link!(CheckAndTag);

/// The link, with the transport to send requests through.
fn run(ctx: &Context, mut vcon: Vcon, transport: &dyn Transport) -> LinkResult {
    let options = Options::from_context(ctx)?;
    if !conserver_llm::should_run(ctx, &vcon)? {
        return Ok(Verdict::unchanged());
    }
    let llm = Llm::from_context(ctx, transport)?;
    let tag = format!("{}:{}", options.tag_name, options.tag_value);
    let mut changed = false;
    for Pending { index, text } in source::pending(&vcon, &options.source, &options.analysis_type) {
        let in_dialog = |e: LinkError| LinkError { message: format!("dialog {index}: {e}"), ..e };
        let request =
            ChatRequest::new(&options.model, SYSTEM, &user_message(&options.evaluation_question, &prompt_text(&text)))
                .response_format(options.response_format.clone());
        let answer = llm.chat(&request).map_err(in_dialog)?;
        let (value, yes) = applies(&answer.content).map_err(in_dialog)?;
        let mut extra = Map::new();
        extra.insert(
            "vendor_schema".into(),
            json!({"model": options.model, "evaluation_question": options.evaluation_question}),
        );
        vcon.add_analysis(Analysis {
            kind: Some(options.analysis_type.clone()),
            dialog: Some(json!(index)),
            vendor: Some("openai".into()),
            body: Some(json!({"link_name": ctx.link_name, "tag": tag, "applies": value})),
            encoding: Some("none".into()),
            extra,
        })?;
        if yes {
            vcon.add_tag(&options.tag_name, &options.tag_value)?;
            log::info(&format!("dialog {index}: tag {tag} applied"));
        } else {
            log::info(&format!("dialog {index}: tag {tag} does not apply"));
        }
        changed = true;
    }
    Ok(if changed { Verdict::changed(vcon) } else { Verdict::unchanged() })
}
