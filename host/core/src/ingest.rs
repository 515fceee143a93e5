//! Turning a client's document into the vCon we store: JSON object check, uuid in
//! canonical form (assigned when only `vcon` is present), `created_at` defaulted to
//! the time of receipt. Every other field is kept as sent, in its order.

use chrono::{SecondsFormat, Utc};
use serde_json::{Map, Value};
use uuid::Uuid;

use crate::VconError;

/// A vCon accepted at the edge, ready to store.
#[derive(Debug, Clone, PartialEq)]
pub struct IngestedVcon {
    /// Canonical lowercase hyphenated uuid.
    pub uuid: String,
    /// The document, with `uuid` canonical and `created_at` present.
    pub document: Map<String, Value>,
}

impl IngestedVcon {
    /// The document as compact JSON text.
    pub fn to_json(&self) -> String {
        // A map of JSON values always serialises.
        serde_json::to_string(&self.document).unwrap_or_default()
    }
}

/// Parse `uuid` in any accepted form (hyphenated, 32 hex digits, `{…}` braced or
/// `urn:uuid:` prefixed, any case) into the canonical lowercase hyphenated form.
pub fn canonical_uuid(text: &str) -> Result<String, VconError> {
    Uuid::parse_str(text.trim())
        .map(|u| u.hyphenated().to_string())
        .map_err(|e| VconError::BadUuid(format!("`{text}`: {e}")))
}

/// Validate and normalise a client document.
pub fn ingest_vcon(body: &[u8]) -> Result<IngestedVcon, VconError> {
    let value: Value = serde_json::from_slice(body).map_err(|e| VconError::NotJson(e.to_string()))?;
    let mut document = match value {
        Value::Object(map) => map,
        Value::Array(_) => return Err(VconError::NotAnObject("an array")),
        Value::String(_) => return Err(VconError::NotAnObject("a string")),
        Value::Number(_) => return Err(VconError::NotAnObject("a number")),
        Value::Bool(_) => return Err(VconError::NotAnObject("a boolean")),
        Value::Null => return Err(VconError::NotAnObject("null")),
    };
    let uuid = match document.get("uuid") {
        Some(Value::String(text)) => canonical_uuid(text)?,
        Some(Value::Null) | None if document.contains_key("vcon") => Uuid::new_v4().hyphenated().to_string(),
        Some(Value::Null) | None => return Err(VconError::MissingUuid),
        Some(_) => {
            return Err(VconError::WrongType { field: "uuid".into(), expected: "a string" });
        }
    };
    match document.get_mut("uuid") {
        Some(slot) => *slot = Value::String(uuid.clone()),
        None => {
            // Keep `vcon` first and put `uuid` right after it, as the spec orders them.
            let mut ordered = Map::with_capacity(document.len() + 1);
            let mut inserted = false;
            for (key, value) in std::mem::take(&mut document) {
                let after_vcon = key == "vcon";
                ordered.insert(key, value);
                if after_vcon {
                    ordered.insert("uuid".into(), Value::String(uuid.clone()));
                    inserted = true;
                }
            }
            if !inserted {
                ordered.insert("uuid".into(), Value::String(uuid.clone()));
            }
            document = ordered;
        }
    }
    match document.get("created_at") {
        None | Some(Value::Null) => {
            let now = Utc::now().to_rfc3339_opts(SecondsFormat::Millis, true);
            document.insert("created_at".into(), Value::String(now));
        }
        Some(Value::String(_) | Value::Number(_)) => {}
        Some(_) => {
            return Err(VconError::WrongType { field: "created_at".into(), expected: "a date-time string" });
        }
    }
    Ok(IngestedVcon { uuid, document })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_uuid_form_becomes_canonical() {
        let canonical = "0189f7e4-c0b1-7f3e-9f3a-1c2b3d4e5f60";
        for form in [
            "0189F7E4-C0B1-7F3E-9F3A-1C2B3D4E5F60",
            "0189f7e4c0b17f3e9f3a1c2b3d4e5f60",
            "{0189f7e4-c0b1-7f3e-9f3a-1c2b3d4e5f60}",
            "urn:uuid:0189f7e4-c0b1-7f3e-9f3a-1c2b3d4e5f60",
        ] {
            assert_eq!(canonical_uuid(form).unwrap(), canonical, "{form}");
        }
    }

    #[test]
    fn unknown_fields_and_order_are_kept() {
        let body = br#"{"vcon":"0.0.1","uuid":"0189F7E4-C0B1-7F3E-9F3A-1C2B3D4E5F60","created_at":"2024-01-01","zz":1,"aa":[true]}"#;
        let vcon = ingest_vcon(body).unwrap();
        assert_eq!(
            vcon.to_json(),
            r#"{"vcon":"0.0.1","uuid":"0189f7e4-c0b1-7f3e-9f3a-1c2b3d4e5f60","created_at":"2024-01-01","zz":1,"aa":[true]}"#
        );
    }

    #[test]
    fn a_vcon_without_uuid_gets_one_after_the_version() {
        let vcon = ingest_vcon(br#"{"vcon":"0.4.0","parties":[]}"#).unwrap();
        let keys: Vec<&str> = vcon.document.keys().map(String::as_str).collect();
        assert_eq!(keys, ["vcon", "uuid", "parties", "created_at"]);
        assert!(canonical_uuid(&vcon.uuid).is_ok());
    }

    #[test]
    fn refusals_name_the_field() {
        assert_eq!(ingest_vcon(b"{}").unwrap_err(), VconError::MissingUuid);
        assert_eq!(ingest_vcon(br#"{"uuid":"nope"}"#).unwrap_err().field(), Some("uuid"));
        assert_eq!(ingest_vcon(br#"{"uuid":7}"#).unwrap_err().field(), Some("uuid"));
        assert!(matches!(ingest_vcon(b"[]").unwrap_err(), VconError::NotAnObject(_)));
        assert!(matches!(ingest_vcon(b"{not json").unwrap_err(), VconError::NotJson(_)));
        assert_eq!(
            ingest_vcon(br#"{"uuid":"0189f7e4-c0b1-7f3e-9f3a-1c2b3d4e5f60","created_at":[]}"#).unwrap_err().field(),
            Some("created_at")
        );
    }
}
