//! Typed readers for link options. An absent or `null` option takes its default; a
//! value of the wrong type is a fatal error naming the option and what it must be.

use conserver_link_sdk::{Context, LinkError};
use serde_json::{Map, Value};

/// The most characters of an offending value quoted in an error.
const QUOTE_CHARS: usize = 80;

/// The error for option `key` holding `got` where `expected` was needed.
pub fn invalid(ctx: &Context, key: &str, expected: &str, got: &Value) -> LinkError {
    let mut text = got.to_string();
    if let Some((cut, _)) = text.char_indices().nth(QUOTE_CHARS) {
        text.truncate(cut);
        text.push('…');
    }
    LinkError::fatal(format!("option `{key}` of link `{}` must be {expected}, got {text}", ctx.link_name))
}

/// Option `key`, unless it is absent or `null`.
pub fn get<'a>(ctx: &'a Context, key: &str) -> Option<&'a Value> {
    ctx.options.get(key).filter(|v| !v.is_null())
}

/// A string option.
pub fn string(ctx: &Context, key: &str, default: &str) -> Result<String, LinkError> {
    Ok(optional_string(ctx, key)?.unwrap_or_else(|| default.to_string()))
}

/// A string option without a default.
pub fn optional_string(ctx: &Context, key: &str) -> Result<Option<String>, LinkError> {
    match get(ctx, key) {
        None => Ok(None),
        Some(Value::String(text)) => Ok(Some(text.clone())),
        Some(other) => Err(invalid(ctx, key, "a string", other)),
    }
}

/// A string option that must be present and non-empty (Python's
/// `if not opts.get(key): raise ValueError`).
pub fn required_string(ctx: &Context, key: &str) -> Result<String, LinkError> {
    match get(ctx, key) {
        Some(Value::String(text)) if !text.is_empty() => Ok(text.clone()),
        None | Some(Value::String(_)) => {
            Err(LinkError::fatal(format!("option `{key}` of link `{}` is required: a non-empty string", ctx.link_name)))
        }
        Some(other) => Err(invalid(ctx, key, "a non-empty string", other)),
    }
}

/// A number option, kept in its JSON form (`0` stays an integer, `0.2` a float) so
/// it is sent exactly as configured.
pub fn number(ctx: &Context, key: &str, default: Value) -> Result<Value, LinkError> {
    match get(ctx, key) {
        None => Ok(default),
        Some(value @ Value::Number(_)) => Ok(value.clone()),
        Some(other) => Err(invalid(ctx, key, "a number", other)),
    }
}

/// A boolean option.
pub fn boolean(ctx: &Context, key: &str, default: bool) -> Result<bool, LinkError> {
    match get(ctx, key) {
        None => Ok(default),
        Some(Value::Bool(flag)) => Ok(*flag),
        Some(other) => Err(invalid(ctx, key, "true or false", other)),
    }
}

/// A mapping option without a default.
pub fn object<'a>(ctx: &'a Context, key: &str) -> Result<Option<&'a Map<String, Value>>, LinkError> {
    match get(ctx, key) {
        None => Ok(None),
        Some(Value::Object(map)) => Ok(Some(map)),
        Some(other) => Err(invalid(ctx, key, "a mapping", other)),
    }
}

/// `response_format`: absent means `default`, `null` means "send none", a mapping is
/// sent as given.
pub fn response_format(ctx: &Context, default: Value) -> Result<Option<Value>, LinkError> {
    match ctx.options.get("response_format") {
        None => Ok(Some(default)),
        Some(Value::Null) => Ok(None),
        Some(value @ Value::Object(_)) => Ok(Some(value.clone())),
        Some(other) => Err(invalid(ctx, "response_format", "a mapping such as {type: json_object}", other)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn ctx(options: Value) -> Context {
        Context::for_test("l", options)
    }

    #[test]
    fn absent_and_null_take_the_default() {
        assert_eq!(string(&ctx(json!({})), "k", "d").unwrap(), "d");
        assert_eq!(string(&ctx(json!({"k": null})), "k", "d").unwrap(), "d");
        assert_eq!(string(&ctx(json!({"k": "v"})), "k", "d").unwrap(), "v");
        assert_eq!(number(&ctx(json!({})), "t", json!(0)).unwrap(), json!(0));
        assert!(boolean(&ctx(json!({"b": null})), "b", true).unwrap());
        assert!(object(&ctx(json!({})), "o").unwrap().is_none());
    }

    #[test]
    fn numbers_keep_their_json_form() {
        assert_eq!(number(&ctx(json!({"t": 0.2})), "t", json!(0)).unwrap().to_string(), "0.2");
        assert_eq!(number(&ctx(json!({"t": 1})), "t", json!(0)).unwrap().to_string(), "1");
    }

    #[test]
    fn wrong_types_name_the_option_and_what_it_must_be() {
        let err = string(&ctx(json!({"model": 5})), "model", "m").unwrap_err();
        assert_eq!(err.message, "option `model` of link `l` must be a string, got 5");
        assert!(!err.retryable);
        let err = number(&ctx(json!({"temperature": "hot"})), "temperature", json!(0)).unwrap_err();
        assert!(err.message.contains("option `temperature` of link `l` must be a number"), "{}", err.message);
        let err = boolean(&ctx(json!({"b": "yes"})), "b", true).unwrap_err();
        assert!(err.message.contains("must be true or false"), "{}", err.message);
        let err = object(&ctx(json!({"o": [1]})), "o").unwrap_err();
        assert!(err.message.contains("must be a mapping"), "{}", err.message);
        let long = "x".repeat(200);
        let err = number(&ctx(json!({"t": long})), "t", json!(0)).unwrap_err();
        assert!(err.message.ends_with('…') && err.message.len() < 200, "{}", err.message);
    }

    #[test]
    fn required_strings_must_be_present_and_non_empty() {
        assert_eq!(required_string(&ctx(json!({"tag_name": "x"})), "tag_name").unwrap(), "x");
        for options in [json!({}), json!({"tag_name": ""}), json!({"tag_name": null})] {
            let err = required_string(&ctx(options), "tag_name").unwrap_err();
            assert_eq!(err.message, "option `tag_name` of link `l` is required: a non-empty string");
        }
        let err = required_string(&ctx(json!({"tag_name": 3})), "tag_name").unwrap_err();
        assert!(err.message.contains("must be a non-empty string, got 3"), "{}", err.message);
    }

    #[test]
    fn response_format_absent_null_or_a_mapping() {
        let default = json!({"type": "json_object"});
        assert_eq!(response_format(&ctx(json!({})), default.clone()).unwrap(), Some(default.clone()));
        assert_eq!(response_format(&ctx(json!({"response_format": null})), default.clone()).unwrap(), None);
        let custom = json!({"type": "json_schema", "json_schema": {"name": "x"}});
        assert_eq!(
            response_format(&ctx(json!({"response_format": custom.clone()})), default.clone()).unwrap(),
            Some(custom)
        );
        let err = response_format(&ctx(json!({"response_format": "json"})), default).unwrap_err();
        assert!(err.message.contains("option `response_format`"), "{}", err.message);
    }
}
