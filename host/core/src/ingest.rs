//! Turning a client's document into the vCon we store. Unsigned vCons are
//! validated; the stored text keeps every top-level value exactly as sent (unknown
//! fields, key order, number forms), with `uuid` in canonical form (assigned when
//! only `vcon` is present) and `created_at` added when missing. Signed and
//! encrypted forms are stored byte for byte, keyed by the uuid they carry.

use chrono::{SecondsFormat, Utc};
use indexmap::IndexMap;
use serde_json::value::RawValue;
use serde_json::{Map, Value};
use uuid::Uuid;

use crate::form::{encrypted_uuid, signed_uuid};
use crate::timestamp::epoch_seconds;
use crate::validate::validate;
use crate::{Problem, VconError, VconForm};

/// A vCon accepted at the edge, ready to store.
#[derive(Debug, Clone, PartialEq)]
pub struct IngestedVcon {
    /// Canonical lowercase hyphenated uuid.
    pub uuid: String,
    /// Which JSON form it is in.
    pub form: VconForm,
    /// The text to store (and echo).
    pub json: String,
    /// `created_at` in epoch seconds (the time of receipt when absent or not
    /// readable, as for signed and encrypted forms): the sorted-set score.
    pub created_at: f64,
    /// Search index terms from the parties: `tel:…`, `mailto:…`, `name:…`.
    pub index_terms: Vec<String>,
}

/// Parse `uuid` in any accepted form (hyphenated, 32 hex digits, `{…}` braced or
/// `urn:uuid:` prefixed, any case) into the canonical lowercase hyphenated form.
pub fn canonical_uuid(text: &str) -> Result<String, Problem> {
    Uuid::parse_str(text.trim()).map(|u| u.hyphenated().to_string()).map_err(|e| {
        Problem::new(&["uuid"], "uuid_parsing", format!("field `uuid` must be a UUID, got {text:?} ({e})"))
    })
}

/// The search terms of a document's parties (truthy `tel`, `mailto`, `name`).
pub fn index_terms(document: &Map<String, Value>) -> Vec<String> {
    let mut terms = Vec::new();
    for party in document.get("parties").and_then(Value::as_array).into_iter().flatten() {
        for field in ["tel", "mailto", "name"] {
            if let Some(value) = party.get(field).and_then(Value::as_str).filter(|v| !v.is_empty()) {
                let term = format!("{field}:{value}");
                if !terms.contains(&term) {
                    terms.push(term);
                }
            }
        }
    }
    terms
}

fn now() -> (f64, String) {
    let now = Utc::now();
    (now.timestamp_millis() as f64 / 1000.0, now.to_rfc3339_opts(SecondsFormat::Micros, false))
}

/// Validate and normalise a client document.
pub fn ingest_vcon(body: &[u8]) -> Result<IngestedVcon, VconError> {
    let value: Value = serde_json::from_slice(body).map_err(|e| VconError::NotJson(e.to_string()))?;
    let document = match value {
        Value::Object(map) => map,
        Value::Array(_) => return Err(VconError::NotAnObject("an array")),
        Value::String(_) => return Err(VconError::NotAnObject("a string")),
        Value::Number(_) => return Err(VconError::NotAnObject("a number")),
        Value::Bool(_) => return Err(VconError::NotAnObject("a boolean")),
        Value::Null => return Err(VconError::NotAnObject("null")),
    };
    let form = VconForm::of(&document);
    if form != VconForm::Unsigned {
        let carried = if form == VconForm::Signed { signed_uuid(&document) } else { encrypted_uuid(&document) };
        let uuid = match carried {
            Some(text) => canonical_uuid(&text).map_err(|p| VconError::Invalid(vec![p]))?,
            None => {
                let place = if form == VconForm::Signed {
                    "signatures[].header.uuid or the payload"
                } else {
                    "unprotected.uuid"
                };
                return Err(VconError::Invalid(vec![Problem::new(
                    &["uuid"],
                    "missing",
                    format!("this {form:?} vCon carries no uuid in {place}"),
                )]));
            }
        };
        let json = String::from_utf8(body.to_vec()).map_err(|e| VconError::NotJson(e.to_string()))?;
        return Ok(IngestedVcon { uuid, form, json, created_at: now().0, index_terms: Vec::new() });
    }

    let mut problems = validate(&document);
    let uuid = match document.get("uuid") {
        Some(Value::String(text)) => match canonical_uuid(text) {
            Ok(uuid) => Some(uuid),
            Err(problem) => {
                problems.insert(0, problem);
                None
            }
        },
        Some(Value::Null) | None if document.contains_key("vcon") => Some(Uuid::now_v7().hyphenated().to_string()),
        Some(Value::Null) | None => {
            problems.insert(
                0,
                Problem::new(
                    &["uuid"],
                    "missing",
                    "field `uuid` is required (a document with neither `uuid` nor `vcon` is not a vCon)",
                ),
            );
            None
        }
        Some(other) => {
            problems
                .insert(0, Problem::new(&["uuid"], "uuid_type", format!("field `uuid` must be a string, got {other}")));
            None
        }
    };
    let Some(uuid) = uuid.filter(|_| problems.is_empty()) else {
        return Err(VconError::Invalid(problems));
    };
    let (received_at, received_text) = now();
    let created_at = document.get("created_at").and_then(epoch_seconds);
    let json = rewrite(body, &uuid, created_at.is_none().then_some(received_text.as_str()))?;
    Ok(IngestedVcon {
        uuid,
        form,
        json,
        created_at: created_at.unwrap_or(received_at),
        index_terms: index_terms(&document),
    })
}

/// The client's text with the canonical uuid (placed after `vcon` when it was
/// missing) and `created_at` (appended when missing); every other value verbatim.
fn rewrite(body: &[u8], uuid: &str, created_at: Option<&str>) -> Result<String, VconError> {
    let raw: IndexMap<String, Box<RawValue>> =
        serde_json::from_slice(body).map_err(|e| VconError::NotJson(e.to_string()))?;
    let string = |text: &str| RawValue::from_string(Value::String(text.to_string()).to_string());
    let uuid_raw = string(uuid).map_err(|e| VconError::NotJson(e.to_string()))?;
    let mut out: IndexMap<String, Box<RawValue>> = IndexMap::with_capacity(raw.len() + 2);
    let had_uuid = raw.get("uuid").is_some_and(|v| v.get() != "null");
    for (key, value) in raw {
        if key == "uuid" {
            out.insert(key, uuid_raw.clone());
            continue;
        }
        let after_vcon = key == "vcon";
        if key == "created_at" && created_at.is_some() {
            continue; // a null created_at is replaced below
        }
        out.insert(key, value);
        if after_vcon && !had_uuid {
            out.insert("uuid".into(), uuid_raw.clone());
        }
    }
    out.entry("uuid".into()).or_insert(uuid_raw);
    if let Some(time) = created_at {
        out.insert("created_at".into(), string(time).map_err(|e| VconError::NotJson(e.to_string()))?);
    }
    serde_json::to_string(&out).map_err(|e| VconError::NotJson(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    const UUID: &str = "0189f7e4-c0b1-7f3e-9f3a-1c2b3d4e5f60";

    #[test]
    fn every_uuid_form_becomes_canonical() {
        for form in [
            "0189F7E4-C0B1-7F3E-9F3A-1C2B3D4E5F60",
            "0189f7e4c0b17f3e9f3a1c2b3d4e5f60",
            "{0189f7e4-c0b1-7f3e-9f3a-1c2b3d4e5f60}",
            "urn:uuid:0189f7e4-c0b1-7f3e-9f3a-1c2b3d4e5f60",
        ] {
            assert_eq!(canonical_uuid(form).unwrap(), UUID, "{form}");
        }
    }

    #[test]
    fn what_the_client_sent_is_kept_verbatim() {
        let body = br#"{"vcon":"0.0.1","uuid":"0189F7E4-C0B1-7F3E-9F3A-1C2B3D4E5F60","created_at":"2024-01-01","zz":1.50,"n":1e2,"aa":[ true ]}"#;
        let vcon = ingest_vcon(body).unwrap();
        assert_eq!(
            vcon.json,
            format!(r#"{{"vcon":"0.0.1","uuid":"{UUID}","created_at":"2024-01-01","zz":1.50,"n":1e2,"aa":[ true ]}}"#)
        );
        assert_eq!(vcon.created_at, 1_704_067_200.0);
    }

    #[test]
    fn a_vcon_without_uuid_gets_one_after_the_version_and_a_creation_time() {
        let vcon = ingest_vcon(br#"{"vcon":"0.4.0","parties":[{"tel":"+1","name":"A"}]}"#).unwrap();
        let doc: Map<String, Value> = serde_json::from_str(&vcon.json).unwrap();
        let keys: Vec<&str> = doc.keys().map(String::as_str).collect();
        assert_eq!(keys, ["vcon", "uuid", "parties", "created_at"]);
        assert_eq!(doc["uuid"], vcon.uuid.as_str());
        assert_eq!(vcon.index_terms, ["tel:+1", "name:A"]);
    }

    #[test]
    fn refusals_name_the_field() {
        let fields =
            |body: &[u8]| ingest_vcon(body).unwrap_err().problems().iter().map(Problem::field).collect::<Vec<_>>();
        assert_eq!(fields(b"{}"), ["uuid"]);
        assert_eq!(fields(br#"{"uuid":"nope"}"#), ["uuid"]);
        assert_eq!(fields(br#"{"uuid":7}"#), ["uuid"]);
        assert_eq!(fields(br#"{"uuid":"","vcon":"","created_at":""}"#), ["uuid", "created_at"]);
        assert!(matches!(ingest_vcon(b"[]").unwrap_err(), VconError::NotAnObject(_)));
        assert!(matches!(ingest_vcon(b"{not json").unwrap_err(), VconError::NotJson(_)));
        assert!(matches!(ingest_vcon(br#"{"uuid":"x","n":1e400}"#).unwrap_err(), VconError::NotJson(_)));
        assert!(matches!(ingest_vcon(br#"{"uuid":"\ud800"}"#).unwrap_err(), VconError::NotJson(_)));
        let deep = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
        assert!(matches!(ingest_vcon(deep.as_bytes()).unwrap_err(), VconError::NotJson(_)));
    }

    #[test]
    fn signed_and_encrypted_forms_are_stored_as_sent() {
        let jws = format!(
            r#"{{"payload":"e30","signatures":[{{"protected":"x","signature":"y","header":{{"alg":"RS256","uuid":"{UUID}"}}}}]}}"#
        );
        let vcon = ingest_vcon(jws.as_bytes()).unwrap();
        assert_eq!((vcon.form, vcon.uuid.as_str(), vcon.json.as_str()), (VconForm::Signed, UUID, jws.as_str()));
        let jwe = format!(
            r#"{{"unprotected":{{"uuid":"{UUID}"}},"recipients":[],"ciphertext":"z","protected":"p","iv":"i","tag":"t"}}"#
        );
        assert_eq!(ingest_vcon(jwe.as_bytes()).unwrap().form, VconForm::Encrypted);
        assert!(ingest_vcon(br#"{"payload":"e30","signatures":[]}"#).is_err());
    }
}
