//! Python semantics the links rely on: truthiness, and how a value is turned into
//! prompt text.

use conserver_link_sdk::python_json;
use serde_json::Value;

/// Python's `bool(value)` for a JSON value: `null`, `false`, `0`, `""`, `[]` and
/// `{}` are false.
pub fn truthy(value: &Value) -> bool {
    match value {
        Value::Null => false,
        Value::Bool(flag) => *flag,
        Value::Number(n) => n.as_f64().is_some_and(|f| f != 0.0),
        Value::String(text) => !text.is_empty(),
        Value::Array(items) => !items.is_empty(),
        Value::Object(map) => !map.is_empty(),
    }
}

/// The text a value contributes to a prompt: a string as is, anything else as
/// Python's `json.dumps` writes it.
///
/// Python concatenated strings (`prompt + "\n\n" + text`, a `TypeError` for a
/// non-string) or formatted them (`f"{text}"`, Python's repr: `{'a': 1}`); JSON is
/// what an LLM reads best and never fails.
pub fn prompt_text(value: &Value) -> String {
    match value {
        Value::String(text) => text.clone(),
        other => python_json::dumps(other),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn truthiness_is_pythons() {
        for falsy in [json!(null), json!(false), json!(0), json!(0.0), json!(""), json!([]), json!({})] {
            assert!(!truthy(&falsy), "{falsy}");
        }
        for truthy_value in [json!(true), json!(1), json!(-0.5), json!("x"), json!([0]), json!({"a": null})] {
            assert!(truthy(&truthy_value), "{truthy_value}");
        }
    }

    #[test]
    fn prompt_text_keeps_strings_and_dumps_the_rest() {
        assert_eq!(prompt_text(&json!("hello")), "hello");
        assert_eq!(prompt_text(&json!({"a": [1, 2.5], "é": true})), "{\"a\": [1, 2.5], \"\\u00e9\": true}");
        assert_eq!(prompt_text(&json!(3)), "3");
    }
}
