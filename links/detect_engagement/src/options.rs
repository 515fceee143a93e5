//! The link's own options, with Python's defaults.

use conserver_link_sdk::{Context, LinkError};
use conserver_llm::Source;
use conserver_llm::options::{number, string};
use serde_json::{Value, json};

/// Python's default prompt.
pub(crate) const PROMPT: &str = "Did both the customer and the agent speak? Respond with 'true' if yes, 'false' if not. \
     Respond with only 'true' or 'false'.";

/// Python's `default_options["source"]["text_location"]`.
const TEXT_LOCATION: &str = "body.paragraphs.transcript";

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Options {
    pub prompt: String,
    pub analysis_type: String,
    pub model: String,
    pub temperature: Value,
    pub source: Source,
}

impl Options {
    pub fn from_context(ctx: &Context) -> Result<Self, LinkError> {
        Ok(Self {
            prompt: string(ctx, "prompt", PROMPT)?,
            analysis_type: string(ctx, "analysis_type", "engagement_analysis")?,
            model: string(ctx, "model", "gpt-4.1")?,
            temperature: number(ctx, "temperature", json!(0.2))?,
            source: Source::from_context(ctx, TEXT_LOCATION)?,
        })
    }
}
