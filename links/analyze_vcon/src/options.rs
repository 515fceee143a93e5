//! The link's own options, with Python's defaults.

use conserver_link_sdk::{Context, LinkError};
use conserver_llm::options::{boolean, number, string};
use serde_json::{Value, json};

/// Python's default prompt.
pub(crate) const PROMPT: &str = "Analyze this vCon and return a JSON object with your analysis.";

/// Python's default system prompt.
pub(crate) const SYSTEM_PROMPT: &str =
    "You are a helpful assistant that analyzes conversation data and returns structured JSON output.";

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Options {
    pub prompt: String,
    pub analysis_type: String,
    pub model: String,
    pub temperature: Value,
    pub system_prompt: String,
    pub remove_body_properties: bool,
}

impl Options {
    pub fn from_context(ctx: &Context) -> Result<Self, LinkError> {
        Ok(Self {
            prompt: string(ctx, "prompt", PROMPT)?,
            analysis_type: string(ctx, "analysis_type", "json_analysis")?,
            model: string(ctx, "model", "gpt-3.5-turbo-16k")?,
            temperature: number(ctx, "temperature", json!(0))?,
            system_prompt: string(ctx, "system_prompt", SYSTEM_PROMPT)?,
            remove_body_properties: boolean(ctx, "remove_body_properties", true)?,
        })
    }
}
