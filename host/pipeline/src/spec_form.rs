//! The two forms in which the Python conserver's links see and leave a vCon: every
//! link reads it through `normalize_legacy_fields` and every link's store goes
//! through `_enforce_spec_on_write`. Links here get the same view, so what they
//! compute from the document (the scitt and jlinc hashes, `mediatype` checks)
//! matches Python's.

use serde_json::{Map, Value};

fn parsed(json: &str) -> Option<Map<String, Value>> {
    match serde_json::from_str(json) {
        Ok(Value::Object(doc)) => Some(doc),
        _ => None,
    }
}

/// The vCon as a Python link reads it: legacy field names renamed. Returned
/// unchanged (same text) when there is nothing to rename or it is not a JSON
/// object (the link reports that itself).
pub fn as_read(json: String) -> String {
    // Most documents carry no legacy name: spare them the parse. (Attachments
    // may need `type` → `purpose`, which only a parse can tell.)
    const LEGACY: [&str; 5] =
        ["\"appended\"", "\"must_support\"", "\"schema_version\"", "\"mimetype\"", "\"attachments\""];
    if !LEGACY.iter().any(|name| json.contains(name)) {
        return json;
    }
    let Some(mut doc) = parsed(&json) else {
        return json;
    };
    if !conserver_core::normalize_legacy_fields(&mut doc) {
        return json;
    }
    serde_json::to_string(&Value::Object(doc)).unwrap_or(json)
}

/// The vCon as a Python link stores it (spec enforced on write).
pub fn as_written(json: String) -> String {
    let Some(doc) = parsed(&json) else {
        return json;
    };
    serde_json::to_string(&Value::Object(conserver_core::canonicalize(doc))).unwrap_or(json)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_rename_and_leave_clean_documents_byte_for_byte() {
        let clean = r#"{"vcon": "0.4.0","uuid":"u","dialog":[{"mediatype":"audio/wav"}]}"#.to_string();
        assert_eq!(as_read(clean.clone()), clean);
        let legacy = r#"{"vcon":"0.0.1","appended":null,"dialog":[{"mimetype":"audio/wav"}]}"#.to_string();
        assert_eq!(as_read(legacy), r#"{"vcon":"0.0.1","dialog":[{"mediatype":"audio/wav"}],"amended":null}"#);
        assert_eq!(as_read("not json".into()), "not json");
    }

    #[test]
    fn writes_enforce_the_spec() {
        let out = as_written(r#"{"vcon":"0.0.1","group":[],"analysis":[{"type":"x","body":{"a":1}}]}"#.into());
        assert_eq!(out, r#"{"vcon":"0.4.0","analysis":[{"type":"x","body":"{\"a\": 1}","encoding":"json"}]}"#);
        assert_eq!(as_written("[1]".into()), "[1]");
    }
}
