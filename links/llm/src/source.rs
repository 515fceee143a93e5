//! Where a link finds the text to analyse: for each dialog index, the analysis of
//! the source type (`transcript`), and in it the value at a dotted path
//! (`body.paragraphs.transcript`), the body JSON-decoded first when its
//! `encoding` is `json` (Python: `pydash.get(Vcon.with_decoded_body(entry), path)`).
//! A path through a non-container, a missing key or an index out of range gives
//! nothing; list items are reached with numeric segments (`body.0.text`).
//!
//! Differences from Python: analysis entries without `type` or `dialog` are
//! skipped (Python raised `KeyError` on them), and a body that claims `json` but
//! is not valid JSON is read as the plain string (Python raised).

use conserver_link_sdk::{Context, LinkError, Vcon, log};
use serde_json::Value;

use crate::options::{invalid, object};
use crate::python::truthy;

/// Where the source text is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Source {
    /// The analysis type holding the text.
    pub analysis_type: String,
    /// The dotted path to the text inside that analysis entry.
    pub text_location: String,
}

impl Source {
    /// The `source` option. Each key defaults on its own: `analysis_type` to
    /// `transcript`, `text_location` to `default_location` (Python replaced the
    /// whole mapping, so a partial `source` lost the other key).
    pub fn from_context(ctx: &Context, default_location: &str) -> Result<Self, LinkError> {
        let Some(source) = object(ctx, "source")? else {
            return Ok(Self { analysis_type: "transcript".into(), text_location: default_location.into() });
        };
        let text = |key: &str, default: &str| match source.get(key) {
            None | Some(Value::Null) => Ok(default.to_string()),
            Some(Value::String(s)) => Ok(s.clone()),
            Some(_) => Err(invalid(
                ctx,
                "source",
                "a mapping with string `analysis_type` and `text_location`",
                &Value::Object(source.clone()),
            )),
        };
        Ok(Self {
            analysis_type: text("analysis_type", "transcript")?,
            text_location: text("text_location", default_location)?,
        })
    }
}

/// A dialog still to analyse, with its source value.
#[derive(Debug, Clone, PartialEq)]
pub struct Pending {
    /// The dialog index.
    pub index: usize,
    /// The value at the source's `text_location` (truthy).
    pub text: Value,
}

/// The vCon's analysis entries.
pub fn analysis_entries(vcon: &Vcon) -> Vec<Value> {
    match vcon.get("analysis") {
        Some(Value::Array(entries)) => entries,
        _ => Vec::new(),
    }
}

/// How many dialog entries the vCon has.
pub fn dialog_count(vcon: &Vcon) -> usize {
    match vcon.get("dialog") {
        Some(Value::Array(dialogs)) => dialogs.len(),
        _ => 0,
    }
}

/// Whether `entry` is an analysis of `kind`.
fn is_kind(entry: &Value, kind: &str) -> bool {
    entry.get("type").and_then(Value::as_str) == Some(kind)
}

/// Whether `entry` is about dialog `index`.
fn is_for(entry: &Value, index: usize) -> bool {
    match entry.get("dialog") {
        Some(Value::Number(n)) => n.as_f64() == Some(index as f64),
        _ => false,
    }
}

/// The first analysis of `kind` for dialog `index` (Python's `get_analysis_for_type`).
pub fn find_for_dialog<'v>(analysis: &'v [Value], index: usize, kind: &str) -> Option<&'v Value> {
    analysis.iter().find(|entry| is_for(entry, index) && is_kind(entry, kind))
}

/// Whether any analysis of `kind` exists, whatever its dialog.
pub fn has_kind(analysis: &[Value], kind: &str) -> bool {
    analysis.iter().any(|entry| is_kind(entry, kind))
}

/// The entry's body, JSON-decoded when `encoding` is `json` (Python's `Vcon.decoded_body`).
pub fn decoded_body(entry: &Value) -> Option<Value> {
    let body = entry.get("body")?;
    match (body, entry.get("encoding").and_then(Value::as_str)) {
        (Value::String(text), Some("json")) => Some(serde_json::from_str(text).unwrap_or_else(|_| body.clone())),
        _ => Some(body.clone()),
    }
}

/// The value at dotted `path` in `entry`, its body decoded first.
pub fn lookup(entry: &Value, path: &str) -> Option<Value> {
    let mut segments = path.split('.');
    let first = segments.next()?;
    let mut current = if first == "body" { decoded_body(entry)? } else { step(entry, first)?.clone() };
    for segment in segments {
        current = step(&current, segment)?.clone();
    }
    Some(current)
}

fn step<'v>(value: &'v Value, segment: &str) -> Option<&'v Value> {
    match value {
        Value::Object(map) => map.get(segment),
        Value::Array(items) => items.get(segment.parse::<usize>().ok()?),
        _ => None,
    }
}

/// The dialogs to analyse: each index with a source analysis whose text is truthy
/// and no analysis of `analysis_type` yet (the "already done" check). Skips are
/// logged as Python did.
pub fn pending(vcon: &Vcon, source: &Source, analysis_type: &str) -> Vec<Pending> {
    let analysis = analysis_entries(vcon);
    let mut todo = Vec::new();
    for index in 0..dialog_count(vcon) {
        let Some(entry) = find_for_dialog(&analysis, index, &source.analysis_type) else {
            log::debug(&format!("dialog {index}: no {} analysis", source.analysis_type));
            continue;
        };
        let Some(text) = lookup(entry, &source.text_location).filter(truthy) else {
            log::debug(&format!("dialog {index}: no source text at {}", source.text_location));
            continue;
        };
        if find_for_dialog(&analysis, index, analysis_type).is_some() {
            log::info(&format!("dialog {index} already has a {analysis_type} analysis"));
            continue;
        }
        todo.push(Pending { index, text });
    }
    todo
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn vcon(value: Value) -> Vcon {
        Vcon::from_json(&value.to_string()).unwrap()
    }

    #[test]
    fn source_defaults_per_key() {
        let default = Source::from_context(&Context::for_test("l", json!({})), "body.paragraphs.transcript").unwrap();
        assert_eq!(
            default,
            Source { analysis_type: "transcript".into(), text_location: "body.paragraphs.transcript".into() }
        );
        let partial =
            Source::from_context(&Context::for_test("l", json!({"source": {"text_location": "body.text"}})), "body")
                .unwrap();
        assert_eq!(partial, Source { analysis_type: "transcript".into(), text_location: "body.text".into() });
        for bad in [json!({"source": "transcript"}), json!({"source": {"analysis_type": 3}})] {
            let err = Source::from_context(&Context::for_test("l", bad), "body").unwrap_err();
            assert!(err.message.starts_with("option `source` of link `l` must be a mapping"), "{}", err.message);
        }
    }

    #[test]
    fn analysis_is_found_by_dialog_and_type() {
        let analysis = vec![
            json!({"dialog": 0, "type": "transcript", "body": "test1"}),
            json!({"dialog": 1, "type": "transcript", "body": "test2"}),
            json!({"dialog": 0, "type": "summary", "body": "test3"}),
            json!({"type": "summary", "body": "no dialog"}),
            json!("not an object"),
        ];
        assert_eq!(find_for_dialog(&analysis, 0, "transcript"), Some(&analysis[0]));
        assert_eq!(find_for_dialog(&analysis, 1, "transcript"), Some(&analysis[1]));
        assert_eq!(find_for_dialog(&analysis, 0, "summary"), Some(&analysis[2]));
        assert_eq!(find_for_dialog(&analysis, 2, "summary"), None);
        assert_eq!(find_for_dialog(&analysis, 0, "none"), None);
        assert!(has_kind(&analysis, "summary"));
        assert!(!has_kind(&analysis, "x"));
        assert!(find_for_dialog(&[json!({"dialog": 1.0, "type": "t"})], 1, "t").is_some());
    }

    #[test]
    fn dotted_paths_reach_into_decoded_bodies() {
        let object = json!({"type": "transcript", "body": {"paragraphs": {"transcript": "hi"}}});
        assert_eq!(lookup(&object, "body.paragraphs.transcript"), Some(json!("hi")));
        let encoded = json!({"type": "transcript", "encoding": "json", "body": "{\"transcript\": \"hello\", \"segments\": [{\"text\": \"a\"}]}"});
        assert_eq!(lookup(&encoded, "body.transcript"), Some(json!("hello")));
        assert_eq!(lookup(&encoded, "body.segments.0.text"), Some(json!("a")));
        assert_eq!(lookup(&encoded, "body.segments.5.text"), None);
        assert_eq!(lookup(&encoded, "body"), Some(json!({"transcript": "hello", "segments": [{"text": "a"}]})));
        assert_eq!(lookup(&encoded, "type"), Some(json!("transcript")));
        // A string body is not decoded without `encoding: json`.
        let plain = json!({"body": "{\"a\": 1}", "encoding": "none"});
        assert_eq!(lookup(&plain, "body.a"), None);
        // Broken JSON stays the string.
        assert_eq!(lookup(&json!({"body": "{oops", "encoding": "json"}), "body"), Some(json!("{oops")));
    }

    #[test]
    fn a_non_container_mid_path_gives_nothing() {
        // Python's CON-573: "paragraphs" is a substring of the body, not a key.
        let entry = json!({"body": "transcript with paragraphs in it"});
        assert_eq!(lookup(&entry, "body.paragraphs.transcript"), None);
        assert_eq!(lookup(&json!({}), "body.x"), None);
    }

    #[test]
    fn pending_skips_missing_sources_empty_text_and_done_dialogs() {
        let v = vcon(json!({
            "dialog": [{}, {}, {}, {}, "odd"],
            "analysis": [
                {"dialog": 0, "type": "transcript", "body": {"text": "zero"}},
                {"dialog": 1, "type": "transcript", "body": {"text": ""}},
                {"dialog": 2, "type": "transcript", "body": {"text": "two"}},
                {"dialog": 2, "type": "summary", "body": "done"},
                {"dialog": 4, "type": "transcript", "body": {"text": {"nested": 1}}}
            ]
        }));
        let source = Source { analysis_type: "transcript".into(), text_location: "body.text".into() };
        assert_eq!(
            pending(&v, &source, "summary"),
            vec![Pending { index: 0, text: json!("zero") }, Pending { index: 4, text: json!({"nested": 1}) }]
        );
        assert!(pending(&vcon(json!({})), &source, "summary").is_empty());
    }
}
