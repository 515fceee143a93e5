//! The link's own options, with Python's defaults.

use conserver_link_sdk::{Context, LinkError};
use conserver_llm::Source;
use conserver_llm::options::{number, string};
use conserver_llm::usage::UsageTarget;
use serde_json::{Value, json};

/// Python's `default_options["source"]["text_location"]`.
const TEXT_LOCATION: &str = "body.paragraphs.transcript";

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Options {
    pub prompt: String,
    pub analysis_type: String,
    pub model: String,
    pub temperature: Value,
    pub system_prompt: String,
    pub source: Source,
    pub usage: Option<UsageTarget>,
}

impl Options {
    pub fn from_context(ctx: &Context) -> Result<Self, LinkError> {
        Ok(Self {
            prompt: string(ctx, "prompt", "")?,
            analysis_type: string(ctx, "analysis_type", "summary")?,
            model: string(ctx, "model", "gpt-3.5-turbo-16k")?,
            temperature: number(ctx, "temperature", json!(0))?,
            system_prompt: string(ctx, "system_prompt", "You are a helpful assistant.")?,
            source: Source::from_context(ctx, TEXT_LOCATION)?,
            usage: UsageTarget::from_context(ctx)?,
        })
    }
}
