//! A JSON Schema validator for the subset link option schemas use: `type` (one
//! or a list), `properties`, `additionalProperties` (a boolean or a schema),
//! `items`, `enum`, `minimum`, `maximum`, `minLength`, `minItems`, `required` and
//! `anyOf`; `description`, `default`, `title` and `$schema` are annotations. A
//! keyword outside the subset makes the schema itself invalid (a test checks every
//! shipped schema), so a schema can never seem to check what it does not.

use serde_json::{Map, Value};

use crate::keys::closest;

/// The keywords this validator understands.
const KEYWORDS: &[&str] = &[
    "type",
    "properties",
    "additionalProperties",
    "items",
    "enum",
    "minimum",
    "maximum",
    "minLength",
    "minItems",
    "required",
    "anyOf",
    "description",
    "default",
    "title",
    "$schema",
];

/// Check that `schema` uses only the subset (at any depth); the path of the
/// first keyword that is not.
pub fn check_schema(schema: &Value) -> Result<(), String> {
    check_schema_at(schema, "")
}

fn check_schema_at(schema: &Value, at: &str) -> Result<(), String> {
    let Value::Object(map) = schema else { return Err(format!("{at}: a schema must be an object")) };
    for (keyword, value) in map {
        if !KEYWORDS.contains(&keyword.as_str()) {
            return Err(format!("{at}/{keyword}: keyword outside the supported subset"));
        }
        match keyword.as_str() {
            "properties" => {
                for (name, sub) in value.as_object().into_iter().flatten() {
                    check_schema_at(sub, &format!("{at}/properties/{name}"))?;
                }
            }
            "items" => check_schema_at(value, &format!("{at}/items"))?,
            "additionalProperties" if !value.is_boolean() => {
                check_schema_at(value, &format!("{at}/additionalProperties"))?;
            }
            "anyOf" => {
                for (i, sub) in value.as_array().into_iter().flatten().enumerate() {
                    check_schema_at(sub, &format!("{at}/anyOf/{i}"))?;
                }
            }
            _ => {}
        }
    }
    Ok(())
}

/// Check `value` against `schema`; the first problem, as `(key path below the
/// options, what is wrong)`. The key path is empty for the options object itself.
pub fn validate(schema: &Value, value: &Value) -> Result<(), (String, String)> {
    validate_at(schema, value, "")
}

fn join(at: &str, key: &str) -> String {
    if at.is_empty() { key.to_string() } else { format!("{at}.{key}") }
}

fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "a mapping",
    }
}

fn has_type(value: &Value, name: &str) -> bool {
    match name {
        "null" => value.is_null(),
        "boolean" => value.is_boolean(),
        "string" => value.is_string(),
        "array" => value.is_array(),
        "object" => value.is_object(),
        "number" => value.is_number(),
        // As JSON Schema counts them: `3.0` is an integer.
        "integer" => {
            value.as_i64().is_some() || value.as_u64().is_some() || value.as_f64().is_some_and(|f| f.fract() == 0.0)
        }
        _ => false,
    }
}

fn type_name(name: &str) -> &str {
    match name {
        "array" => "a list",
        "object" => "a mapping",
        "string" => "a string",
        "number" => "a number",
        "integer" => "a whole number",
        "boolean" => "true or false",
        "null" => "null",
        other => other,
    }
}

fn validate_at(schema: &Value, value: &Value, at: &str) -> Result<(), (String, String)> {
    let Value::Object(schema) = schema else { return Ok(()) };
    let fail = |problem: String| Err((at.to_string(), problem));
    if let Some(types) = schema.get("type") {
        let names: Vec<&str> = match types {
            Value::String(one) => vec![one.as_str()],
            Value::Array(many) => many.iter().filter_map(Value::as_str).collect(),
            _ => Vec::new(),
        };
        if !names.is_empty() && !names.iter().any(|name| has_type(value, name)) {
            let wanted: Vec<&str> = names.iter().map(|n| type_name(n)).collect();
            // The kind only, never the value: it may be a secret from `${VAR}`.
            return fail(format!("must be {}, not {}", wanted.join(" or "), kind(value)));
        }
    }
    if let Some(Value::Array(allowed)) = schema.get("enum")
        && !allowed.contains(value)
    {
        let choices: Vec<String> = allowed.iter().map(Value::to_string).collect();
        return fail(format!("must be one of {}", choices.join(", ")));
    }
    if let Some(number) = value.as_f64() {
        if let Some(minimum) = schema.get("minimum").and_then(Value::as_f64)
            && number < minimum
        {
            return fail(format!("must be at least {minimum}"));
        }
        if let Some(maximum) = schema.get("maximum").and_then(Value::as_f64)
            && number > maximum
        {
            return fail(format!("must be at most {maximum}"));
        }
    }
    if let (Some(text), Some(min)) = (value.as_str(), schema.get("minLength").and_then(Value::as_u64))
        && (text.chars().count() as u64) < min
    {
        return fail(format!("must be at least {min} characters long"));
    }
    if let Value::Array(items) = value {
        if let Some(min) = schema.get("minItems").and_then(Value::as_u64)
            && (items.len() as u64) < min
        {
            return fail(format!("must have at least {min} entries"));
        }
        if let Some(item_schema) = schema.get("items") {
            for (i, item) in items.iter().enumerate() {
                validate_at(item_schema, item, &format!("{at}[{i}]"))?;
            }
        }
    }
    if let Value::Object(map) = value {
        validate_object(schema, map, at)?;
    }
    if let Some(Value::Array(choices)) = schema.get("anyOf")
        && !choices.is_empty()
    {
        let mut first = None;
        for choice in choices {
            match validate_at(choice, value, at) {
                Ok(()) => return Ok(()),
                Err(problem) => {
                    first.get_or_insert(problem);
                }
            }
        }
        if let Some(problem) = first {
            return Err(problem);
        }
    }
    Ok(())
}

fn validate_object(schema: &Map<String, Value>, map: &Map<String, Value>, at: &str) -> Result<(), (String, String)> {
    let properties = schema.get("properties").and_then(Value::as_object);
    for required in schema.get("required").and_then(Value::as_array).into_iter().flatten().filter_map(Value::as_str) {
        if !map.contains_key(required) {
            return Err((join(at, required), "is required".into()));
        }
    }
    for (key, item) in map {
        let path = join(at, key);
        if let Some(property) = properties.and_then(|p| p.get(key)) {
            validate_at(property, item, &path)?;
            continue;
        }
        match schema.get("additionalProperties") {
            Some(Value::Bool(false)) => {
                let known: Vec<&str> = properties.into_iter().flat_map(|p| p.keys().map(String::as_str)).collect();
                let hint = closest(key, &known).map(|meant| format!("did you mean `{meant}`? ")).unwrap_or_default();
                return Err((
                    path,
                    format!("is not an option of this link: {hint}(its options: {})", known.join(", ")),
                ));
            }
            Some(extra @ Value::Object(_)) => validate_at(extra, item, &path)?,
            _ => {}
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn tag_schema() -> Value {
        json!({
            "type": "object",
            "properties": {
                "tags": {"type": "array", "items": {"type": "string"}, "description": "Tags to add."},
                "rate": {"type": ["number", "null"], "minimum": 0, "maximum": 1},
                "mode": {"enum": ["a", "b"]},
                "nested": {"type": "object", "properties": {"x": {"type": "integer"}}, "additionalProperties": false}
            },
            "additionalProperties": false
        })
    }

    #[test]
    fn wrong_types_unknown_keys_and_ranges_are_named_by_path() {
        let schema = tag_schema();
        assert_eq!(validate(&schema, &json!({"tags": ["a"], "rate": null, "mode": "b"})), Ok(()));
        let (path, problem) = validate(&schema, &json!({"tags": 5})).unwrap_err();
        assert_eq!(path, "tags");
        assert!(problem.contains("must be a list") && problem.contains("a number"), "{problem}");
        let (path, _) = validate(&schema, &json!({"tags": ["a", 7]})).unwrap_err();
        assert_eq!(path, "tags[1]");
        let (path, problem) = validate(&schema, &json!({"tagz": ["a"]})).unwrap_err();
        assert_eq!(path, "tagz");
        assert!(problem.contains("did you mean `tags`?"), "{problem}");
        assert!(validate(&schema, &json!({"rate": 1.5})).unwrap_err().1.contains("at most 1"));
        assert!(validate(&schema, &json!({"mode": "c"})).unwrap_err().1.contains("one of \"a\", \"b\""));
        assert!(
            !validate(&schema, &json!({"tags": "s3cret-value"})).unwrap_err().1.contains("s3cret"),
            "no value echoed"
        );
        assert_eq!(validate(&schema, &json!({"nested": {"x": 1.5}})).unwrap_err().0, "nested.x");
    }

    #[test]
    fn any_of_accepts_either_shape() {
        let schema = json!({"anyOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}}]});
        assert_eq!(validate(&schema, &json!("a")), Ok(()));
        assert_eq!(validate(&schema, &json!(["a"])), Ok(()));
        assert!(validate(&schema, &json!(3)).is_err());
    }

    #[test]
    fn schemas_outside_the_subset_are_refused() {
        assert_eq!(check_schema(&tag_schema()), Ok(()));
        let err = check_schema(&json!({"properties": {"a": {"pattern": "x"}}})).unwrap_err();
        assert!(err.contains("/properties/a/pattern"), "{err}");
    }
}
