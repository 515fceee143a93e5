//! The prompt, and reading `applies` from the model's JSON answer.

use conserver_link_sdk::LinkError;
use conserver_llm::python::truthy;
use serde_json::Value;

/// Python's fixed system message.
pub(crate) const SYSTEM: &str =
    "You are a helpful assistant that evaluates text against specific questions and provides yes/no answers.";

/// Python's user message.
pub(crate) fn user_message(question: &str, text: &str) -> String {
    format!(
        "Question: {question}\n\nText to evaluate:\n{text}\n\n\
         Please answer with a JSON object containing a single key 'applies' with a boolean value \
         (true if the tag applies, false if it doesn't)."
    )
}

/// The answer's `applies` value as sent (`false` when absent), and whether it
/// means the tag applies.
///
/// Python used truthiness, so the string `"false"` applied the tag; here a string
/// applies only when it reads `true` or `yes` (any case); other values follow
/// Python's truthiness. An answer that is not a JSON object is a retryable error
/// (the model may answer properly next time); Python failed the vCon too.
pub(crate) fn applies(answer: &str) -> Result<(Value, bool), LinkError> {
    let not_object = |why: String| LinkError::retryable(format!("the model's answer is not a JSON object ({why})"));
    let value: Value = serde_json::from_str(answer).map_err(|e| not_object(e.to_string()))?;
    let Value::Object(object) = value else {
        return Err(not_object(format!("got {value}")));
    };
    let applies = object.get("applies").cloned().unwrap_or(Value::Bool(false));
    let yes = match &applies {
        Value::String(text) => matches!(text.trim().to_lowercase().as_str(), "true" | "yes"),
        other => truthy(other),
    };
    Ok((applies, yes))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_user_message_is_pythons() {
        assert_eq!(
            user_message("Is it billing?", "text"),
            "Question: Is it billing?\n\nText to evaluate:\ntext\n\nPlease answer with a JSON object containing a single key 'applies' with a boolean value (true if the tag applies, false if it doesn't)."
        );
    }

    #[test]
    fn applies_reads_booleans_and_sensible_strings() {
        assert_eq!(applies(r#"{"applies": true}"#).unwrap(), (json!(true), true));
        assert_eq!(applies(r#"{"applies": false}"#).unwrap(), (json!(false), false));
        assert_eq!(applies(r#"{}"#).unwrap(), (json!(false), false));
        assert_eq!(applies(r#"{"applies": null}"#).unwrap(), (json!(null), false));
        assert_eq!(applies(r#"{"applies": "Yes"}"#).unwrap(), (json!("Yes"), true));
        assert_eq!(applies(r#"{"applies": "false"}"#).unwrap(), (json!("false"), false));
        assert_eq!(applies(r#"{"applies": 1}"#).unwrap(), (json!(1), true));
        assert_eq!(applies(r#"{"applies": 0}"#).unwrap(), (json!(0), false));
    }

    #[test]
    fn answers_that_are_not_objects_are_retryable_errors() {
        for answer in ["yes", "[true]", "true"] {
            let err = applies(answer).unwrap_err();
            assert!(err.retryable);
            assert!(err.message.starts_with("the model's answer is not a JSON object"), "{}", err.message);
        }
    }
}
