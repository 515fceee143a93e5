//! Where a dialog's media bytes come from and whether they can be trusted: the
//! inline `body` decoded strictly by its `encoding`, the `url` to fetch (fetching is
//! the runtime's job, under the link's allow-list), and the integrity checks —
//! `content_hash` (`sha512-<base64url>`, `sha256-…`, or a bare hex digest) and the
//! legacy `alg` + `signature` pair of vCon 0.0.1 (base64url, padded or not, or hex).

use base64::Engine as _;
use base64::engine::DecodePaddingMode;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256, Sha512};

use crate::MediaError;

/// Where the media of one dialog is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MediaLocation {
    /// Inline, already decoded from the body's encoding.
    Inline(Vec<u8>),
    /// External: the URL to fetch.
    Url(String),
}

const INDIFFERENT: GeneralPurposeConfig =
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent);
const BASE64: GeneralPurpose = GeneralPurpose::new(&base64::alphabet::STANDARD, INDIFFERENT);
const BASE64URL: GeneralPurpose = GeneralPurpose::new(&base64::alphabet::URL_SAFE, INDIFFERENT);

/// Dialog `index` of `vcon`, as an object.
pub fn dialog(vcon: &Map<String, Value>, index: usize) -> Result<&Map<String, Value>, MediaError> {
    vcon.get("dialog")
        .and_then(Value::as_array)
        .and_then(|d| d.get(index))
        .and_then(Value::as_object)
        .ok_or(MediaError::NoDialog(index))
}

/// Where dialog `index`'s media is: a `body` (decoded by `encoding`: `base64url`,
/// `base64` or `none`; without an `encoding`, base64url and then standard base64
/// are tried, since producers omit it for both) wins over a `url`.
pub fn locate(dialog: &Map<String, Value>, index: usize) -> Result<MediaLocation, MediaError> {
    if let Some(Value::String(body)) = dialog.get("body") {
        let encoding = dialog.get("encoding").and_then(Value::as_str);
        let fail = |encoding: &str, reason: String| MediaError::Encoding { index, encoding: encoding.into(), reason };
        let bytes = match encoding {
            Some("base64url") => BASE64URL.decode(body).map_err(|e| fail("base64url", e.to_string()))?,
            Some("base64") => BASE64.decode(body).map_err(|e| fail("base64", e.to_string()))?,
            Some("none") => body.as_bytes().to_vec(),
            None => BASE64URL
                .decode(body)
                .or_else(|_| BASE64.decode(body))
                .map_err(|e| fail("base64url or base64 (no `encoding` given)", e.to_string()))?,
            Some(other) => {
                return Err(fail(other, "unknown encoding: use base64url, base64 or none".into()));
            }
        };
        return Ok(MediaLocation::Inline(bytes));
    }
    match dialog.get("url").and_then(Value::as_str) {
        Some(url) if !url.is_empty() => Ok(MediaLocation::Url(url.to_string())),
        _ => Err(MediaError::NoMedia(index)),
    }
}

#[derive(Clone, Copy)]
enum Algorithm {
    Sha256,
    Sha512,
}

impl Algorithm {
    fn named(name: &str) -> Option<Self> {
        match name.to_ascii_lowercase().replace(['-', '_'], "").as_str() {
            "sha256" => Some(Self::Sha256),
            "sha512" => Some(Self::Sha512),
            _ => None,
        }
    }

    fn digest(self, bytes: &[u8]) -> Vec<u8> {
        match self {
            Self::Sha256 => Sha256::digest(bytes).to_vec(),
            Self::Sha512 => Sha512::digest(bytes).to_vec(),
        }
    }
}

fn hex_decode(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) || !text.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    (0..text.len()).step_by(2).map(|i| u8::from_str_radix(&text[i..i + 2], 16).ok()).collect()
}

/// The digest a textual hash stands for: base64url (padded or not), standard
/// base64, or hex.
fn digest_forms(text: &str) -> Vec<Vec<u8>> {
    [BASE64URL.decode(text).ok(), BASE64.decode(text).ok(), hex_decode(text)].into_iter().flatten().collect()
}

/// Check `bytes` against one `content_hash` token.
fn check_content_hash(bytes: &[u8], token: &str) -> Result<(), String> {
    let (algorithm, digest) = match token.split_once('-') {
        Some((name, digest)) if Algorithm::named(name).is_some() => (Algorithm::named(name), digest),
        _ if hex_decode(token).is_some_and(|d| d.len() == 32) => (Some(Algorithm::Sha256), token),
        _ if hex_decode(token).is_some_and(|d| d.len() == 64) => (Some(Algorithm::Sha512), token),
        _ => (None, token),
    };
    let Some(algorithm) = algorithm else {
        return Err(format!("`{token}` names no known algorithm (sha256 or sha512)"));
    };
    let actual = algorithm.digest(bytes);
    if digest_forms(digest).contains(&actual) {
        Ok(())
    } else {
        Err(format!("expected `{token}`, the bytes hash differently"))
    }
}

/// Verify `bytes` against the dialog's `content_hash` (a string or a list of
/// them; every listed one must match) and its legacy `alg` + `signature`. A
/// dialog with neither passes.
pub fn verify(dialog: &Map<String, Value>, index: usize, bytes: &[u8]) -> Result<(), MediaError> {
    let integrity = |field, reason| MediaError::Integrity { index, field, reason };
    match dialog.get("content_hash") {
        None | Some(Value::Null) => {}
        Some(Value::String(token)) => check_content_hash(bytes, token).map_err(|r| integrity("content_hash", r))?,
        Some(Value::Array(tokens)) => {
            for token in tokens {
                let token =
                    token.as_str().ok_or_else(|| integrity("content_hash", "a listed hash is not a string".into()))?;
                check_content_hash(bytes, token).map_err(|r| integrity("content_hash", r))?;
            }
        }
        Some(_) => return Err(integrity("content_hash", "it is neither a string nor a list of strings".into())),
    }
    if let Some(signature) = dialog.get("signature").and_then(Value::as_str) {
        let alg = dialog.get("alg").and_then(Value::as_str).unwrap_or("SHA-512");
        let algorithm = Algorithm::named(alg)
            .ok_or_else(|| integrity("signature", format!("algorithm `{alg}` is not SHA-256 or SHA-512")))?;
        if !digest_forms(signature).contains(&algorithm.digest(bytes)) {
            return Err(integrity("signature", format!("the {alg} digest of the bytes is not `{signature}`")));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use serde_json::json;

    fn map(value: Value) -> Map<String, Value> {
        value.as_object().cloned().unwrap()
    }

    #[test]
    fn bodies_decode_strictly_by_their_encoding() {
        let bytes = vec![0xfb, 0xff, 0x00, 0x10];
        let url = BASE64URL.encode(&bytes);
        let std = BASE64.encode(&bytes);
        assert_eq!(url, "-_8AEA==");
        let located = |body: &str, encoding: Value| {
            let mut d = map(json!({"body": body}));
            if !encoding.is_null() {
                d.insert("encoding".into(), encoding);
            }
            locate(&d, 3)
        };
        assert_eq!(located(&url, json!("base64url")), Ok(MediaLocation::Inline(bytes.clone())));
        assert_eq!(located(url.trim_end_matches('='), json!("base64url")), Ok(MediaLocation::Inline(bytes.clone())));
        assert_eq!(located(&std, json!("base64")), Ok(MediaLocation::Inline(bytes.clone())));
        assert_eq!(located(&std, Value::Null), Ok(MediaLocation::Inline(bytes.clone())));
        assert_eq!(located("héllo", json!("none")), Ok(MediaLocation::Inline("héllo".as_bytes().to_vec())));
        // Python silently dropped the characters of the other alphabet; here they fail.
        let err = located(&std, json!("base64url")).unwrap_err();
        assert!(matches!(err, MediaError::Encoding { index: 3, .. }), "{err}");
        assert!(err.to_string().contains("not valid base64url"), "{err}");
        assert!(located(&url, json!("base64")).is_err());
        assert!(located("a b", json!("base64")).is_err());
        assert!(located("x", json!("gzip")).unwrap_err().to_string().contains("unknown encoding"));
    }

    #[test]
    fn a_body_wins_over_a_url_and_neither_is_an_error() {
        let d = map(json!({"url": "https://example.test/a.mp3"}));
        assert_eq!(locate(&d, 0), Ok(MediaLocation::Url("https://example.test/a.mp3".into())));
        let d = map(json!({"url": "https://example.test/a.mp3", "body": "AAEC", "encoding": "base64"}));
        assert_eq!(locate(&d, 0), Ok(MediaLocation::Inline(vec![0, 1, 2])));
        assert_eq!(locate(&map(json!({"type": "recording", "url": ""})), 2), Err(MediaError::NoMedia(2)));
        let vcon = map(json!({"dialog": [{"type": "text"}, 5]}));
        assert!(dialog(&vcon, 0).is_ok());
        assert_eq!(dialog(&vcon, 1), Err(MediaError::NoDialog(1)));
        assert_eq!(dialog(&vcon, 9), Err(MediaError::NoDialog(9)));
    }

    #[test]
    fn content_hashes_and_legacy_signatures_are_checked() {
        let bytes = b"some audio";
        let sha512 = Sha512::digest(bytes);
        let sha256 = Sha256::digest(bytes);
        let token = format!("sha512-{}", BASE64URL.encode(sha512).trim_end_matches('='));
        let hex256: String = sha256.iter().map(|b| format!("{b:02x}")).collect();
        for good in [
            json!({"content_hash": token}),
            json!({"content_hash": [token, format!("sha256-{}", BASE64URL.encode(sha256))]}),
            json!({"content_hash": hex256}),
            json!({"alg": "SHA-512", "signature": BASE64URL.encode(sha512)}),
            json!({"alg": "sha256", "signature": hex256}),
            json!({}),
        ] {
            assert_eq!(verify(&map(good.clone()), 0, bytes), Ok(()), "{good}");
        }
        for (bad, needle) in [
            (json!({"content_hash": token}), "hash differently"),
            (json!({"content_hash": "md5-abc"}), "no known algorithm"),
            (json!({"content_hash": [1]}), "not a string"),
            (json!({"alg": "SHA-512", "signature": BASE64URL.encode(sha256)}), "digest of the bytes"),
            (json!({"alg": "RS256", "signature": "x"}), "not SHA-256 or SHA-512"),
        ] {
            let err = verify(&map(bad.clone()), 4, b"other audio").unwrap_err();
            assert!(matches!(err, MediaError::Integrity { index: 4, .. }));
            assert!(err.to_string().contains(needle), "{bad}: {err}");
        }
    }
}
