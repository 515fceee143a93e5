//! The conserver's signing key: from option `signing_key_pem` (base64 of a PEM)
//! or a granted secret, in every PEM form python-ecdsa's `SigningKey.from_pem`
//! accepts.

use base64::Engine as _;
use base64::engine::DecodePaddingMode;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig};
use conserver_link_sdk::prelude::*;
use conserver_link_sdk::secrets::SecretError;
use p256::ecdsa::SigningKey;
use p256::pkcs8::DecodePrivateKey;

use crate::{Options, SecretReader};

/// Python's lenient `base64.b64decode`: characters outside the alphabet are
/// skipped.
fn b64decode_lenient(text: &str) -> Result<Vec<u8>, String> {
    let cleaned: String = text.chars().filter(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '/' | '=')).collect();
    let engine = GeneralPurpose::new(
        &base64::alphabet::STANDARD,
        GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
    );
    engine.decode(cleaned.trim_end_matches('=')).map_err(|e| format!("not base64: {e}"))
}

/// The DER bytes of the PEM block `-----BEGIN <label>----- … -----END <label>-----`
/// in `text`. The base64 is read leniently (any line length, as python-ecdsa
/// writes 76-character lines where RFC 7468 asks for 64).
fn pem_block(text: &str, label: &str) -> Option<Result<Vec<u8>, String>> {
    let begin = format!("-----BEGIN {label}-----");
    let end = format!("-----END {label}-----");
    let start = text.find(&begin)? + begin.len();
    let Some(stop) = text[start..].find(&end) else {
        return Some(Err(format!("the `{label}` PEM block has no END line")));
    };
    Some(b64decode_lenient(&text[start..start + stop]))
}

/// python-ecdsa writes PKCS#8 with version 2 but no public key, which the
/// `pkcs8` crate refuses; the same document as version 1 (the public key is
/// optional there and absent anyway).
fn pkcs8_v2_as_v1(der: &[u8]) -> Option<Vec<u8>> {
    let header = match der.get(1)? {
        0x81 => 3,
        0x82 => 4,
        length if *length < 0x80 => 2,
        _ => return None,
    };
    (der.first() == Some(&0x30) && der.get(header..header + 3) == Some(&[0x02, 0x01, 0x01])).then(|| {
        let mut v1 = der.to_vec();
        v1[header + 2] = 0x00;
        v1
    })
}

/// A P-256 private key from PEM text (what python-ecdsa's `SigningKey.from_pem`
/// accepts: SEC1, possibly after an `EC PARAMETERS` block, or PKCS#8).
pub fn signing_key_from_pem(text: &str) -> Result<SigningKey, String> {
    let secret = if let Some(der) = pem_block(text, "EC PRIVATE KEY") {
        p256::SecretKey::from_sec1_der(&der?).map_err(|e| format!("not a P-256 EC PRIVATE KEY: {e}"))?
    } else if let Some(der) = pem_block(text, "PRIVATE KEY") {
        let der = der?;
        p256::SecretKey::from_pkcs8_der(&der)
            .or_else(|e| pkcs8_v2_as_v1(&der).map_or(Err(e), |v1| p256::SecretKey::from_pkcs8_der(&v1)))
            .map_err(|e| format!("not a P-256 PKCS#8 PRIVATE KEY: {e}"))?
    } else {
        return Err("no `EC PRIVATE KEY` or `PRIVATE KEY` PEM block".into());
    };
    Ok(SigningKey::from(secret))
}

pub(crate) fn load_signing_key(
    ctx: &Context,
    options: &Options,
    secret: SecretReader<'_>,
) -> Result<SigningKey, LinkError> {
    let invalid = |what: &str, why: String| {
        LinkError::fatal(format!("{what} of link `{}` is not a usable signing key: {why}", ctx.link_name))
    };
    if let Some(encoded) = &options.signing_key_pem {
        let pem = b64decode_lenient(encoded)
            .and_then(|bytes| String::from_utf8(bytes).map_err(|_| "the decoded PEM is not UTF-8".to_string()))
            .map_err(|why| invalid("option `signing_key_pem`", why))?;
        return signing_key_from_pem(&pem).map_err(|why| invalid("option `signing_key_pem`", why));
    }
    let name = &options.signing_key_secret;
    match secret(name) {
        Ok(value) if !value.trim().is_empty() => {
            let what = format!("secret `{name}` (option `signing_key_secret`)");
            let pem = if value.contains("-----BEGIN") {
                value
            } else {
                b64decode_lenient(&value)
                    .and_then(|bytes| String::from_utf8(bytes).map_err(|_| "the decoded PEM is not UTF-8".to_string()))
                    .map_err(|why| invalid(&what, format!("neither PEM nor base64 of a PEM: {why}")))?
            };
            signing_key_from_pem(&pem).map_err(|why| invalid(&what, why))
        }
        result => {
            let why = match result {
                Err(SecretError::NotGranted) => SecretError::NotGranted.to_string(),
                _ => "is empty or not set on the host".to_string(),
            };
            Err(LinkError::fatal(format!(
                "link `{}` has no signing key: option `signing_key_pem` is not set, and secret `{name}` (option \
                 `signing_key_secret`) {why}. Option `signing_key_path` (`{}`) cannot be read by a link: set \
                 `{name}_FILE` to that path on the host and grant the secret instead",
                ctx.link_name, options.signing_key_path
            )))
        }
    }
}
#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::*;

    #[test]
    fn signing_keys_load_from_every_pem_form_python_accepts() {
        let expected = conserver_key().verifying_key().to_sec1_point(false);
        for pem in [KEY_PKCS8.to_string(), KEY_PKCS8_V2.to_string(), format!("{EC_PARAMETERS}{KEY_SEC1}")] {
            let key = signing_key_from_pem(&pem).unwrap_or_else(|e| panic!("{pem}: {e}"));
            assert_eq!(key.verifying_key().to_sec1_point(false), expected);
        }
        assert!(signing_key_from_pem(KEY_P384).unwrap_err().contains("P-256"));
        assert!(signing_key_from_pem("hello").unwrap_err().contains("PEM block"));
    }
}
