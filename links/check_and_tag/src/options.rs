//! The link's own options, with Python's defaults.

use conserver_link_sdk::{Context, LinkError};
use conserver_llm::Source;
use conserver_llm::options::{boolean, get, invalid, required_string, response_format, string};
use serde_json::{Value, json};

/// Python's `default_options["source"]["text_location"]`: the whole decoded body.
const TEXT_LOCATION: &str = "body";

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Options {
    pub tag_name: String,
    pub tag_value: String,
    pub evaluation_question: String,
    pub analysis_type: String,
    pub model: String,
    pub source: Source,
    pub response_format: Option<Value>,
}

impl Options {
    /// The options; the three required ones are checked first, as in Python.
    pub fn from_context(ctx: &Context) -> Result<Self, LinkError> {
        let tag_name = tag_part(ctx, "tag_name")?;
        let tag_value = tag_part(ctx, "tag_value")?;
        let evaluation_question = required_string(ctx, "evaluation_question")?;
        // Defined by Python but never sent; accepted and type-checked only.
        string(ctx, "verbosity", "low")?;
        boolean(ctx, "minimal_reasoning", true)?;
        Ok(Self {
            tag_name,
            tag_value,
            evaluation_question,
            analysis_type: string(ctx, "analysis_type", "tag_evaluation")?,
            model: string(ctx, "model", "gpt-5")?,
            source: Source::from_context(ctx, TEXT_LOCATION)?,
            response_format: response_format(ctx, json!({"type": "json_object"}))?,
        })
    }
}

/// `tag_name` / `tag_value`: a non-empty string, or a number (a YAML `tag_value:
/// 2024`), which Python formatted into the tag.
fn tag_part(ctx: &Context, key: &str) -> Result<String, LinkError> {
    match get(ctx, key) {
        Some(Value::Number(n)) if n.as_f64() != Some(0.0) => Ok(n.to_string()),
        Some(value @ Value::Number(_)) => Err(invalid(ctx, key, "a non-empty string", value)),
        _ => required_string(ctx, key),
    }
}
