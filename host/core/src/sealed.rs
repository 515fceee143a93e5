//! What a chain's links get from a signed (JWS) or encrypted (JWE) vCon, and
//! what a change to a signed one becomes.
//!
//! * **Encrypted**: the host holds no key, so the links cannot read it; they are
//!   skipped (and counted) and the vCon is stored and forwarded unchanged.
//! * **Signed**: the links see the payload, the unsigned vCon the signature
//!   covers. When no link changes it, the signed original is stored and forwarded
//!   unchanged. A change cannot carry the signature, so the result is an unsigned
//!   **successor** with a uuid of its own whose `amended` names the signed
//!   original (`uuid` and `content_hash`), as the vCon spec has an amended vCon
//!   reference the one it amends; the original keeps its own uuid.

use base64::Engine as _;
use serde_json::{Map, Value};
use sha2::{Digest, Sha512};
use uuid::Uuid;

use crate::VconForm;

/// What the links of a chain are given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChainInput {
    /// A plain vCon: the links read it as it is.
    Plain,
    /// A signed vCon: the links read this payload (the unsigned vCon, JSON).
    Signed {
        /// The decoded payload.
        payload: String,
    },
    /// An encrypted vCon: the links are skipped.
    Encrypted,
}

/// How `document` (a stored vCon) enters a chain's links; an error says why a
/// signed document has no payload a link could read.
pub fn chain_input(document: &str) -> Result<ChainInput, String> {
    // Most vCons are plain: only a document naming these members (or escaping
    // characters, which could spell them) can be another form.
    if !(document.contains("\"signatures\"") || document.contains("\"ciphertext\"") || document.contains("\\u")) {
        return Ok(ChainInput::Plain);
    }
    let Ok(map) = serde_json::from_str::<Map<String, Value>>(document) else { return Ok(ChainInput::Plain) };
    match VconForm::of(&map) {
        VconForm::Unsigned => Ok(ChainInput::Plain),
        VconForm::Encrypted => Ok(ChainInput::Encrypted),
        VconForm::Signed => {
            let payload = map.get("payload").and_then(Value::as_str).unwrap_or_default();
            let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(payload.trim_end_matches('='))
                .map_err(|_| "the signed vCon's JWS payload is not base64url; the links cannot read it".to_string())?;
            match serde_json::from_slice::<Value>(&bytes) {
                Ok(Value::Object(_)) => {
                    let payload = String::from_utf8(bytes).map_err(|_| "the JWS payload is not UTF-8".to_string())?;
                    Ok(ChainInput::Signed { payload })
                }
                _ => {
                    Err("the signed vCon's JWS payload is not a vCon (a JSON object); the links cannot read it".into())
                }
            }
        }
    }
}

/// The spec's `content_hash` of `document`: `sha512-` and the base64url SHA-512.
pub fn content_hash(document: &str) -> String {
    let digest = Sha512::digest(document.as_bytes());
    format!("sha512-{}", base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(digest))
}

/// The unsigned successor of the signed vCon `original` (uuid `original_uuid`)
/// that the links of chain `chain` changed into `changed`: `(its uuid, its
/// document)`, with a uuid of its own and `amended: {uuid, content_hash}`
/// naming the original. The uuid (version 8) is derived from the original, the
/// chain and the change, so a run repeated after a crash makes the same
/// successor instead of a second one.
pub fn successor(changed: &str, chain: &str, original_uuid: &str, original: &str) -> Result<(String, String), String> {
    let mut document: Map<String, Value> = serde_json::from_str(changed)
        .map_err(|e| format!("the changed payload of a signed vCon is not a JSON object: {e}"))?;
    let uuid = derived_uuid(&[original.as_bytes(), chain.as_bytes(), changed.as_bytes()]);
    document.insert("uuid".into(), Value::String(uuid.clone()));
    let mut amended = Map::new();
    amended.insert("uuid".into(), Value::String(original_uuid.to_string()));
    amended.insert("content_hash".into(), Value::String(content_hash(original)));
    document.insert("amended".into(), Value::Object(amended));
    let text = serde_json::to_string(&document).map_err(|e| format!("cannot write the successor: {e}"))?;
    Ok((uuid, text))
}

/// A version-8 uuid from the SHA-512 of `parts` (each length-prefixed).
fn derived_uuid(parts: &[&[u8]]) -> String {
    let mut hasher = Sha512::new();
    for part in parts {
        hasher.update((part.len() as u64).to_be_bytes());
        hasher.update(part);
    }
    let digest = hasher.finalize();
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&digest[..16]);
    bytes[6] = (bytes[6] & 0x0f) | 0x80; // version 8
    bytes[8] = (bytes[8] & 0x3f) | 0x80; // RFC 9562 variant
    Uuid::from_bytes(bytes).hyphenated().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(name: &str) -> String {
        let path =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/vcons/v0.4.0").join(name);
        std::fs::read_to_string(path).unwrap()
    }

    #[test]
    fn plain_signed_and_encrypted_vcons_are_told_apart() {
        assert_eq!(chain_input(r#"{"vcon":"0.4.0","uuid":"a","parties":[]}"#), Ok(ChainInput::Plain));
        assert_eq!(chain_input(&fixture("call_encrypted.vcon.json")), Ok(ChainInput::Encrypted));
        let Ok(ChainInput::Signed { payload }) = chain_input(&fixture("call_signed.vcon.json")) else {
            panic!("the signed fixture is signed")
        };
        let payload: Value = serde_json::from_str(&payload).unwrap();
        assert_eq!(payload["uuid"], "018f3c2a-1b2c-8d3e-9f40-51a2b3c4d5e6");
        // A plain vCon that merely mentions the words stays plain.
        assert_eq!(chain_input(r#"{"uuid":"a","subject":"\"signatures\""}"#), Ok(ChainInput::Plain));
        // A member name spelt with escapes is still the member.
        let escaped = fixture("call_signed.vcon.json").replace("\"signatures\"", "\"\\u0073ignatures\"");
        assert!(matches!(chain_input(&escaped), Ok(ChainInput::Signed { .. })));
    }

    #[test]
    fn a_signed_vcon_without_a_readable_payload_is_refused_with_the_reason() {
        let err = chain_input(r#"{"payload":"!!","signatures":[]}"#).unwrap_err();
        assert!(err.contains("base64url"), "{err}");
        let not_an_object = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode("[1,2]");
        let err = chain_input(&format!(r#"{{"payload":"{not_an_object}","signatures":[]}}"#)).unwrap_err();
        assert!(err.contains("not a vCon"), "{err}");
    }

    #[test]
    fn a_successor_has_its_own_uuid_and_names_the_signed_original() {
        let original = fixture("call_signed.vcon.json");
        let changed =
            r#"{"vcon":"0.4.0","uuid":"018f3c2a-1b2c-8d3e-9f40-51a2b3c4d5e6","parties":[],"analysis":[{"type":"x"}]}"#;
        let (uuid, text) = successor(changed, "main", "018f3c2a-1b2c-8d3e-9f40-51a2b3c4d5e6", &original).unwrap();
        let document: Value = serde_json::from_str(&text).unwrap();
        assert_ne!(uuid, "018f3c2a-1b2c-8d3e-9f40-51a2b3c4d5e6");
        assert_eq!(document["uuid"], uuid.as_str());
        assert_eq!(document["amended"]["uuid"], "018f3c2a-1b2c-8d3e-9f40-51a2b3c4d5e6");
        assert_eq!(document["amended"]["content_hash"], content_hash(&original).as_str());
        assert!(content_hash(&original).starts_with("sha512-"));
        assert_eq!(document["analysis"][0]["type"], "x", "the links' change is kept");
        assert_eq!(Uuid::parse_str(&uuid).unwrap().get_version_num(), 8);
        let again = successor(changed, "main", "018f3c2a-1b2c-8d3e-9f40-51a2b3c4d5e6", &original).unwrap();
        assert_eq!(again.0, uuid, "a repeated run makes the same successor");
        let other_chain = successor(changed, "other", "018f3c2a-1b2c-8d3e-9f40-51a2b3c4d5e6", &original).unwrap();
        assert_ne!(other_chain.0, uuid, "another chain's change is another successor");
    }
}
