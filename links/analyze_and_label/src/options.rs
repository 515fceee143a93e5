//! The link's own options, with Python's defaults.

use conserver_link_sdk::{Context, LinkError};
use conserver_llm::Source;
use conserver_llm::options::{number, response_format, string};
use serde_json::{Value, json};

/// Python's default prompt.
pub(crate) const PROMPT: &str = "Analyze this transcript and provide a list of relevant labels for categorization. \
     Return your response as a JSON object with a single key 'labels' containing an array of strings.";

/// Python's fixed system message.
pub(crate) const SYSTEM: &str = "You are a helpful assistant that analyzes text and provides relevant labels.";

/// Python's `default_options["source"]["text_location"]`.
const TEXT_LOCATION: &str = "body.paragraphs.transcript";

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Options {
    pub prompt: String,
    pub analysis_type: String,
    pub model: String,
    pub temperature: Value,
    pub source: Source,
    pub response_format: Option<Value>,
}

impl Options {
    pub fn from_context(ctx: &Context) -> Result<Self, LinkError> {
        Ok(Self {
            prompt: string(ctx, "prompt", PROMPT)?,
            analysis_type: string(ctx, "analysis_type", "labeled_analysis")?,
            model: string(ctx, "model", "gpt-4-turbo")?,
            temperature: number(ctx, "temperature", json!(0.2))?,
            source: Source::from_context(ctx, TEXT_LOCATION)?,
            response_format: response_format(ctx, json!({"type": "json_object"}))?,
        })
    }
}
