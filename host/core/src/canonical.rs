//! The Python conserver's two document rewrites, for compatibility:
//!
//! * [`canonicalize`]: what it does when it re-caches a vCon read back from a
//!   storage (legacy names to 0.4.0 names, `vcon: "0.4.0"`, empty `group`/`redacted`
//!   dropped, object/array analysis and attachment bodies JSON-encoded);
//! * [`to_legacy_001`]: the `EGRESS_FORMAT_VERSION=0.0.1` downgrade applied to vCons
//!   returned by `GET /vcon/{uuid}` and `GET /vcons`.

use conserver_python_json::dumps;
use serde_json::{Map, Value};

/// Entry-level renames (legacy → spec) for dialog, analysis and attachments.
const ENTRY_RENAMES: &[(&str, &str)] =
    &[("schema_version", "schema"), ("mimetype", "mediatype"), ("must_support", "critical")];
/// Top-level renames (legacy → spec).
const TOP_RENAMES: &[(&str, &str)] = &[("appended", "amended"), ("must_support", "critical")];
const SECTIONS: &[&str] = &["dialog", "analysis", "attachments"];

/// The deployment-wide egress format (`EGRESS_FORMAT_VERSION`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum EgressFormat {
    /// Unset or empty: documents are returned as stored.
    #[default]
    Current,
    /// `0.0.1`: the legacy downgrade.
    Legacy001,
}

impl EgressFormat {
    /// Parse the variable's value; anything but unset, empty or `0.0.1` is refused
    /// (the Python server failed every read instead).
    pub fn parse(value: Option<&str>) -> Result<Self, String> {
        match value.map(str::trim) {
            None | Some("") => Ok(Self::Current),
            Some("0.0.1") => Ok(Self::Legacy001),
            Some(other) => {
                Err(format!("EGRESS_FORMAT_VERSION={other:?} is not supported; use 0.0.1 or leave it unset"))
            }
        }
    }
}

/// Move `from` to `to` in `map` unless `to` is already there; `from` is dropped
/// either way. Whether `from` was there.
fn rename(map: &mut Map<String, Value>, from: &str, to: &str) -> bool {
    let Some(value) = map.shift_remove(from) else {
        return false;
    };
    if !map.contains_key(to) {
        map.insert(to.to_string(), value);
    }
    true
}

fn entries_mut<'a>(doc: &'a mut Map<String, Value>, section: &str) -> impl Iterator<Item = &'a mut Map<String, Value>> {
    doc.get_mut(section).and_then(Value::as_array_mut).into_iter().flatten().filter_map(Value::as_object_mut)
}

/// What Python's `VconRedis.get_vcon` does on every read (`normalize_legacy_fields`):
/// legacy names become the 0.4.0 names (`appended`→`amended`, `must_support`→
/// `critical`, `schema_version`→`schema`, `mimetype`→`mediatype`, attachment
/// `type`→`purpose` when `purpose` is absent). Links see vCons in this form.
/// Whether anything was renamed.
pub fn normalize_legacy_fields(doc: &mut Map<String, Value>) -> bool {
    let mut changed = false;
    for (from, to) in TOP_RENAMES {
        changed |= rename(doc, from, to);
    }
    for section in SECTIONS {
        for entry in entries_mut(doc, section) {
            for (from, to) in ENTRY_RENAMES {
                changed |= rename(entry, from, to);
            }
            if *section == "attachments" && !entry.contains_key("purpose") {
                changed |= rename(entry, "type", "purpose");
            }
        }
    }
    changed
}

/// What Python's `_enforce_spec_on_write` does to every vCon a link stores (and to
/// one re-cached from a storage): [`normalize_legacy_fields`], `vcon: "0.4.0"`,
/// empty `group`/`redacted` dropped, object/array analysis and attachment bodies
/// JSON-encoded with `encoding: "json"`.
pub fn canonicalize(mut doc: Map<String, Value>) -> Map<String, Value> {
    normalize_legacy_fields(&mut doc);
    for section in ["analysis", "attachments"] {
        for entry in entries_mut(&mut doc, section) {
            if let Some(body @ (Value::Object(_) | Value::Array(_))) = entry.get("body") {
                let text = dumps(body);
                entry.insert("body".into(), Value::String(text));
                entry.insert("encoding".into(), Value::String("json".into()));
            }
        }
    }
    doc.insert("vcon".into(), Value::String("0.4.0".into()));
    if doc.get("group").is_some_and(|g| g.as_array().is_some_and(Vec::is_empty)) {
        doc.shift_remove("group");
    }
    if doc.get("redacted").is_some_and(|r| r.as_object().is_some_and(Map::is_empty)) {
        doc.shift_remove("redacted");
    }
    doc
}

/// The `EGRESS_FORMAT_VERSION=0.0.1` downgrade.
pub fn to_legacy_001(mut doc: Map<String, Value>) -> Map<String, Value> {
    for (legacy, spec) in TOP_RENAMES {
        rename(&mut doc, spec, legacy);
    }
    for section in SECTIONS {
        for entry in entries_mut(&mut doc, section) {
            for (legacy, spec) in ENTRY_RENAMES {
                rename(entry, spec, legacy);
            }
            if *section == "attachments" && !entry.contains_key("type") {
                rename(entry, "purpose", "type");
            }
            let json_string = entry.get("encoding").and_then(Value::as_str) == Some("json");
            if *section != "dialog"
                && json_string
                && let Some(Value::String(text)) = entry.get("body")
                && let Ok(parsed) = serde_json::from_str::<Value>(text)
            {
                entry.insert("body".into(), parsed);
                entry.insert("encoding".into(), Value::String("none".into()));
            }
        }
    }
    doc.entry("group").or_insert_with(|| Value::Array(Vec::new()));
    doc.entry("redacted").or_insert_with(|| Value::Object(Map::new()));
    doc.entry("appended").or_insert(Value::Null);
    doc.insert("vcon".into(), Value::String("0.0.1".into()));
    doc
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn map(value: Value) -> Map<String, Value> {
        value.as_object().cloned().unwrap()
    }

    #[test]
    fn canonicalize_matches_the_python_rules() {
        let doc = map(json!({
            "vcon": "0.0.1", "appended": null, "group": [], "redacted": {},
            "attachments": [{"type": "tags", "body": ["a", "b"], "encoding": "none"},
                            {"type": "lawful_basis", "purpose": "consent", "body": "x"}],
            "analysis": [{"type": "summary", "body": {"k": "v"}, "schema_version": "1"}],
            "dialog": [{"mimetype": "audio/wav", "mediatype": "audio/x-wav", "body": {"kept": true}}]
        }));
        let out = Value::Object(canonicalize(doc));
        assert_eq!(out["vcon"], "0.4.0");
        assert_eq!(out["amended"], Value::Null);
        assert!(out.get("group").is_none() && out.get("redacted").is_none() && out.get("appended").is_none());
        assert_eq!(out["attachments"][0], json!({"body": "[\"a\", \"b\"]", "encoding": "json", "purpose": "tags"}));
        assert_eq!(out["attachments"][1]["purpose"], "consent");
        assert_eq!(out["analysis"][0]["body"], "{\"k\": \"v\"}");
        assert_eq!(out["analysis"][0]["schema"], "1");
        assert_eq!(out["dialog"][0], json!({"mediatype": "audio/x-wav", "body": {"kept": true}}));
    }

    #[test]
    fn reads_only_rename_legacy_fields() {
        let mut doc = map(json!({
            "vcon": "0.0.1", "appended": null, "group": [], "must_support": ["x"],
            "attachments": [{"type": "tags", "body": ["a"]}, {"type": "lawful_basis", "purpose": "consent"}],
            "analysis": [{"type": "summary", "body": {"k": "v"}, "schema_version": "1"}],
            "dialog": [{"type": "recording", "mimetype": "audio/wav"}]
        }));
        assert!(normalize_legacy_fields(&mut doc));
        assert_eq!(
            Value::Object(doc.clone()),
            json!({
                "vcon": "0.0.1", "group": [], "amended": null, "critical": ["x"],
                "attachments": [{"body": ["a"], "purpose": "tags"}, {"type": "lawful_basis", "purpose": "consent"}],
                "analysis": [{"type": "summary", "body": {"k": "v"}, "schema": "1"}],
                "dialog": [{"type": "recording", "mediatype": "audio/wav"}]
            })
        );
        assert!(!normalize_legacy_fields(&mut doc), "a second pass changes nothing");
    }

    #[test]
    fn legacy_downgrade_matches_the_python_rules() {
        let doc = map(json!({
            "vcon": "0.4.0",
            "attachments": [{"purpose": "tags", "body": "[\"a\"]", "encoding": "json"}],
            "analysis": [{"type": "note", "body": "prose, not json", "encoding": "json"}]
        }));
        let out = Value::Object(to_legacy_001(doc));
        assert_eq!(out["vcon"], "0.0.1");
        assert_eq!(out["attachments"][0], json!({"body": ["a"], "encoding": "none", "type": "tags"}));
        assert_eq!(out["analysis"][0]["body"], "prose, not json");
        assert_eq!(
            (out["group"].clone(), out["redacted"].clone(), out["appended"].clone()),
            (json!([]), json!({}), Value::Null)
        );
    }

    #[test]
    fn only_0_0_1_is_a_supported_egress_format() {
        assert_eq!(EgressFormat::parse(None), Ok(EgressFormat::Current));
        assert_eq!(EgressFormat::parse(Some("")), Ok(EgressFormat::Current));
        assert_eq!(EgressFormat::parse(Some("0.0.1")), Ok(EgressFormat::Legacy001));
        assert!(EgressFormat::parse(Some("0.3.0")).is_err());
    }
}
