//! The three JSON forms of a vCon (unsigned, JWS-signed, JWE-encrypted) and where
//! each carries its uuid.

use serde_json::{Map, Value};

/// Which form a document is in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VconForm {
    /// A plain vCon object.
    Unsigned,
    /// JWS general JSON serialisation (`payload` + `signatures`).
    Signed,
    /// JWE general JSON serialisation (`ciphertext` + `recipients`/`protected`).
    Encrypted,
}

impl VconForm {
    /// Tell the forms apart by their required members.
    pub fn of(document: &Map<String, Value>) -> Self {
        if document.contains_key("ciphertext")
            && (document.contains_key("recipients") || document.contains_key("protected"))
        {
            Self::Encrypted
        } else if document.contains_key("payload") && document.contains_key("signatures") {
            Self::Signed
        } else {
            Self::Unsigned
        }
    }
}

/// The uuid of a signed form: the unprotected `header.uuid` of a signature, else
/// the `uuid` of the decoded payload.
pub(crate) fn signed_uuid(document: &Map<String, Value>) -> Option<String> {
    let from_header = document
        .get("signatures")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .find_map(|sig| sig.get("header").and_then(|h| h.get("uuid")).and_then(Value::as_str).map(String::from));
    from_header.or_else(|| {
        let payload = document.get("payload")?.as_str()?;
        let bytes = base64url_decode(payload)?;
        let inner: Value = serde_json::from_slice(&bytes).ok()?;
        inner.get("uuid")?.as_str().map(String::from)
    })
}

/// The uuid of an encrypted form: `unprotected.uuid` (the spec's place for it).
pub(crate) fn encrypted_uuid(document: &Map<String, Value>) -> Option<String> {
    document.get("unprotected").and_then(|u| u.get("uuid")).and_then(Value::as_str).map(String::from)
}

/// Decode unpadded (or padded) base64url.
fn base64url_decode(text: &str) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(text.len() * 3 / 4);
    let mut buffer = 0u32;
    let mut bits = 0;
    for byte in text.trim_end_matches('=').bytes() {
        let value = match byte {
            b'A'..=b'Z' => byte - b'A',
            b'a'..=b'z' => byte - b'a' + 26,
            b'0'..=b'9' => byte - b'0' + 52,
            b'-' => 62,
            b'_' => 63,
            _ => return None,
        };
        buffer = (buffer << 6) | u32::from(value);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((buffer >> bits) as u8);
            buffer &= (1 << bits) - 1;
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64url_round_trips_known_text() {
        assert_eq!(base64url_decode("eyJ1dWlkIjoiYSJ9").as_deref(), Some(&b"{\"uuid\":\"a\"}"[..]));
        assert_eq!(base64url_decode("not base64!"), None);
    }
}
