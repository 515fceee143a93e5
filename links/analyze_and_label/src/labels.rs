//! Reading the labels out of the model's JSON answer.

use conserver_link_sdk::log;
use conserver_llm::python::prompt_text;
use serde_json::Value;

/// The labels of `answer` (`{"labels": [...]}`), or why it is not usable JSON.
///
/// A missing `labels` key means no labels (as Python's `.get("labels", [])`). Each
/// string label is used as is, a number or boolean as its JSON text; `null`, lists
/// and objects are skipped. A single string instead of a list is one label (Python
/// made one label per character). An answer that is valid JSON but not an object
/// is unusable (Python raised `AttributeError`).
pub(crate) fn parse(answer: &str) -> Result<Vec<String>, String> {
    let value: Value = serde_json::from_str(answer).map_err(|e| e.to_string())?;
    let Value::Object(object) = value else {
        return Err("the answer is not a JSON object".to_string());
    };
    let labels = match object.get("labels") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(items)) => items.iter().filter_map(label).collect(),
        Some(Value::String(one)) => vec![one.clone()],
        Some(other) => {
            log::warn(&format!("`labels` is not a list ({other}); no tags added"));
            Vec::new()
        }
    };
    Ok(labels)
}

fn label(item: &Value) -> Option<String> {
    match item {
        Value::String(text) => Some(text.clone()),
        Value::Number(_) | Value::Bool(_) => Some(prompt_text(item)),
        other => {
            log::warn(&format!("label {other} skipped: not a string"));
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_come_from_the_labels_list() {
        assert_eq!(parse(r#"{"labels": ["billing", "refund"]}"#).unwrap(), ["billing", "refund"]);
        assert_eq!(parse(r#"{"other": 1}"#).unwrap(), Vec::<String>::new());
        assert_eq!(parse(r#"{"labels": null}"#).unwrap(), Vec::<String>::new());
        assert_eq!(parse(r#"{"labels": ["a", 2, true, null, {"x": 1}, ["y"]]}"#).unwrap(), ["a", "2", "true"]);
        assert_eq!(parse(r#"{"labels": "urgent"}"#).unwrap(), ["urgent"]);
        assert_eq!(parse(r#"{"labels": 5}"#).unwrap(), Vec::<String>::new());
    }

    #[test]
    fn unusable_answers_say_why() {
        assert!(parse("This is not valid JSON").unwrap_err().starts_with("expected value at line 1 column 1"));
        assert_eq!(parse(r#"["a"]"#).unwrap_err(), "the answer is not a JSON object");
    }
}
