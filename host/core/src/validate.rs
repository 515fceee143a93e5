//! Structural checks on an unsigned vCon: reject true defects (wrong types,
//! negative durations, dangling party indexes, malformed URLs or media types), and
//! tolerate what real vCons do (missing `created_at`, unknown dialog types, naive
//! timestamps, extra fields, legacy names). Every problem names its field.

use serde_json::{Map, Value};

use crate::Problem;
use crate::timestamp::epoch_seconds;

/// Arrays of objects at the top level.
const OBJECT_ARRAYS: &[&str] = &["parties", "dialog", "analysis", "attachments", "group"];
/// Objects (or null, meaning absent) at the top level.
const OBJECTS: &[&str] = &["redacted", "amended", "appended"];

/// Every problem with `document` (empty when it is acceptable).
pub fn validate(document: &Map<String, Value>) -> Vec<Problem> {
    let mut problems = Vec::new();
    if let Some(version) = document.get("vcon")
        && !(version.is_string() || version.is_null())
    {
        problems.push(Problem::new(&["vcon"], "string_type", "field `vcon` must be a string (the spec version)"));
    }
    if let Some(created) = document.get("created_at")
        && !created.is_null()
        && epoch_seconds(created).is_none()
    {
        problems.push(Problem::new(
            &["created_at"],
            "datetime_parsing",
            format!("field `created_at` must be an RFC 3339 date-time, got {}", short(created)),
        ));
    }
    if let Some(subject) = document.get("subject")
        && !(subject.is_string() || subject.is_null())
    {
        problems.push(Problem::new(&["subject"], "string_type", "field `subject` must be a string or null"));
    }
    for key in OBJECT_ARRAYS {
        match document.get(*key) {
            None => {}
            Some(Value::Array(items)) => {
                for (i, item) in items.iter().enumerate() {
                    if !item.is_object() {
                        let index = i.to_string();
                        problems.push(Problem::new(
                            &[key, &index],
                            "model_type",
                            format!("`{key}[{i}]` must be an object, got {}", short(item)),
                        ));
                    }
                }
            }
            Some(other) => problems.push(Problem::new(
                &[key],
                "list_type",
                format!("field `{key}` must be an array of objects, got {}", short(other)),
            )),
        }
    }
    for key in OBJECTS {
        if let Some(value) = document.get(*key)
            && !(value.is_object() || value.is_null())
        {
            problems.push(Problem::new(
                &[key],
                "dict_type",
                format!("field `{key}` must be an object, got {}", short(value)),
            ));
        }
    }
    let parties = entries(document, "parties");
    for (i, party) in parties.iter().enumerate() {
        for field in ["tel", "mailto", "name"] {
            if let Some(value) = party.get(field)
                && !(value.is_string() || value.is_null())
            {
                let index = i.to_string();
                problems.push(Problem::new(
                    &["parties", &index, field],
                    "string_type",
                    format!("`parties[{i}].{field}` must be a string, got {}", short(value)),
                ));
            }
        }
    }
    for (i, dialog) in entries(document, "dialog").iter().enumerate() {
        check_dialog(i, dialog, parties.len(), &mut problems);
    }
    problems
}

fn entries<'a>(document: &'a Map<String, Value>, key: &str) -> Vec<&'a Map<String, Value>> {
    document
        .get(key)
        .and_then(Value::as_array)
        .map(|items| items.iter().filter_map(Value::as_object).collect())
        .unwrap_or_default()
}

fn check_dialog(i: usize, dialog: &Map<String, Value>, party_count: usize, problems: &mut Vec<Problem>) {
    let index = i.to_string();
    let at = |field: &str| format!("dialog[{i}].{field}");
    let mut push = |field: &str, kind: &'static str, message: String| {
        problems.push(Problem::new(&["dialog", &index, field], kind, message));
    };
    match dialog.get("duration") {
        None | Some(Value::Null) => {}
        Some(Value::Number(n)) if n.as_f64().is_some_and(|d| d >= 0.0) => {}
        Some(Value::Number(n)) => push(
            "duration",
            "greater_than_equal",
            format!("`{}` must be zero or more seconds, got {n}", at("duration")),
        ),
        Some(other) => push(
            "duration",
            "float_type",
            format!("`{}` must be a number of seconds, got {}", at("duration"), short(other)),
        ),
    }
    if let Some(value) = dialog.get("parties") {
        check_party_refs(value, party_count, &at("parties"), &mut push);
    }
    match dialog.get("originator") {
        None | Some(Value::Null) => {}
        Some(value) => match value.as_u64() {
            Some(n) if (n as usize) < party_count => {}
            _ => push(
                "originator",
                "value_error",
                format!("`{}` must index one of the {party_count} parties, got {}", at("originator"), short(value)),
            ),
        },
    }
    for field in ["start", "type"] {
        if let Some(value) = dialog.get(field)
            && !(value.is_string() || value.is_null())
        {
            push(field, "string_type", format!("`{}` must be a string, got {}", at(field), short(value)));
        }
    }
    match dialog.get("url") {
        None | Some(Value::Null) => {}
        Some(Value::String(url)) if is_absolute_url(url) => {}
        Some(other) => push(
            "url",
            "url_parsing",
            format!("`{}` must be an absolute URL such as https://host/path, got {}", at("url"), short(other)),
        ),
    }
    for field in ["mediatype", "mimetype"] {
        match dialog.get(field) {
            None | Some(Value::Null) => {}
            Some(Value::String(media)) if is_media_type(media) => {}
            Some(other) => push(
                field,
                "string_pattern_mismatch",
                format!("`{}` must be a media type such as audio/x-wav, got {}", at(field), short(other)),
            ),
        }
    }
}

/// Party references: an index, or a list of indexes / lists of indexes / nulls,
/// each below the number of parties.
fn check_party_refs(value: &Value, party_count: usize, at: &str, push: &mut impl FnMut(&str, &'static str, String)) {
    let mut bad = Vec::new();
    let mut check = |v: &Value| match v.as_u64() {
        Some(n) if (n as usize) < party_count => {}
        _ => bad.push(short(v)),
    };
    match value {
        Value::Null => {}
        Value::Array(items) => {
            for item in items {
                match item {
                    Value::Null => {}
                    Value::Array(inner) => inner.iter().for_each(&mut check),
                    other => check(other),
                }
            }
        }
        other => check(other),
    }
    if !bad.is_empty() {
        push(
            "parties",
            "value_error",
            format!("`{at}` must only hold indexes of the {party_count} parties, got {}", bad.join(", ")),
        );
    }
}

/// `scheme://rest`, with an RFC 3986 scheme and no whitespace.
fn is_absolute_url(url: &str) -> bool {
    let Some((scheme, rest)) = url.split_once("://") else { return false };
    let mut chars = scheme.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
        && !rest.is_empty()
        && !url.chars().any(char::is_whitespace)
}

/// `type/subtype` made of RFC 7230 token characters, optionally followed by
/// `;` parameters (which may be folded across lines, as in real e-mail vCons).
fn is_media_type(media: &str) -> bool {
    let essence = media.split(';').next().unwrap_or_default().trim();
    let token =
        |s: &str| !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || "!#$%&'*+-.^_`|~".contains(c));
    essence.split_once('/').is_some_and(|(kind, sub)| token(kind) && token(sub))
}

/// A value, shortened for a message.
fn short(value: &Value) -> String {
    let text = value.to_string();
    if text.chars().count() > 60 { format!("{}…", text.chars().take(60).collect::<String>()) } else { text }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn problems(doc: Value) -> Vec<String> {
        validate(doc.as_object().unwrap()).iter().map(Problem::field).collect()
    }

    #[test]
    fn real_shapes_pass() {
        let doc = json!({
            "vcon": "0.0.1", "created_at": "2024-01-01", "parties": [{"tel": ""}, {"name": "B"}],
            "dialog": [{"type": "video", "parties": [0, [1], null], "duration": 4.5, "originator": 1,
                        "url": "s3://bucket/key", "mediatype": "multipart/mixed;\r\n boundary=\"x\"", "mimetype": null}],
            "group": [], "redacted": {}, "appended": null
        });
        assert!(problems(doc).is_empty());
    }

    #[test]
    fn defects_are_located() {
        let doc = json!({
            "vcon": 1, "created_at": "", "parties": [{"tel": 5}],
            "dialog": [{"duration": -30, "parties": [0, 99], "originator": 7, "url": "not-a-url", "mimetype": "not a valid mimetype!"},
                       {"duration": "long", "mimetype": 12345, "parties": 3}],
            "analysis": "string", "attachments": [1]
        });
        assert_eq!(
            problems(doc),
            [
                "vcon",
                "created_at",
                "analysis",
                "attachments[0]",
                "parties[0].tel",
                "dialog[0].duration",
                "dialog[0].parties",
                "dialog[0].originator",
                "dialog[0].url",
                "dialog[0].mimetype",
                "dialog[1].duration",
                "dialog[1].parties",
                "dialog[1].mimetype",
            ]
        );
    }

    #[test]
    fn null_arrays_are_defects() {
        assert_eq!(problems(json!({"parties": null, "dialog": null})), ["parties", "dialog"]);
    }
}
