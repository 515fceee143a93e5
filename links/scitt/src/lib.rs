//! `scitt`: register signed statements about a vCon on a SCRAPI transparency
//! service (SCITTLEs), verify the receipts, and keep them on the vCon.
//!
//! For each subject (one per party with a `tel`, as `tel:<tel>`; with none, one
//! `vcon://<uuid>`), the link:
//! 1. builds the statement payload `"<vcon hash>:<vcon_operation>:<tel>"` (or
//!    `"<vcon hash>:<vcon_operation>"`), where the vCon hash is the SHA-256 hex of
//!    the vCon in Python's `json.dumps` form (what Python's `vcon.hash` gives);
//! 2. signs it as a COSE_Sign1 (CBOR tag 18) with ES256 (P-256, deterministic
//!    RFC 6979 signatures, so the bytes equal pycose's for the same key): protected
//!    header `{1: -7 (alg), 4: key_id (kid, bytes), -6802: "application/vcon+json"
//!    (pre-image content type), 13: {1: issuer, 2: subject, 8: {1: {1: 2, -1: 1,
//!    -2: x, -3: y}}} (CWT claims with the public key), -6800: -16 (payload hash
//!    alg SHA-256), -6801: "" (payload location), -6804: {"vcon_operation": op,
//!    "party_tel"?: tel} (meta-map)}`, empty unprotected header, attached payload;
//! 3. registers it: `POST <scrapi_url>/entries`, `Content-Type: application/cose`
//!    (30 s):
//!    - 201: the entry id is the last segment of `Location`, the receipt is the
//!      body;
//!    - 303: polls `Location` (relative to `scrapi_url` unless it starts with
//!      `http`) with `GET` (30 s) up to 6 times, 10 s apart: a 200 JSON answer
//!      gives `entryID`, else `entry_id`, else the last segment of the polled URL;
//!      202, other answers and failed requests wait for the next try; after the
//!      sixth the link fails (retryable). The receipt is then
//!      `GET <scrapi_url>/entries/<id>` with `Accept: application/cose` (30 s);
//!    - any other status fails the link;
//! 4. verifies the receipt: the RFC 9162 inclusion proof in unprotected header
//!    396 / -1 (`[tree_size, leaf_index, siblings]`), leaf `SHA-256(0x00 ‖
//!    SHA-256(payload))`, the recomputed root as detached payload, checked with
//!    ES256 against the first key of the service's JWKS (`GET
//!    <scrapi_url>/.well-known/transparency-configuration`, CBOR, its `jwks_uri`,
//!    else `<scrapi_url>/jwks`; both 10 s). A receipt that does not verify fails
//!    the link (not retryable).
//!
//! With `store_receipt`, an analysis `{type: "scitt_receipt", dialog: 0, vendor:
//! "scittles", body, encoding: "json"}` is appended, the body the Python
//! `json.dumps` text of one receipt object, or of a list of them with several
//! subjects: `{entry_id, cose_receipt (standard base64), vcon_operation, subject,
//! vcon_hash, scrapi_url}`. Subjects are registered in order; a failure stops the
//! link (the vCon goes to the dead-letter queue) after the earlier ones were
//! registered, as in Python.
//!
//! Options (defaults as in the Python conserver's `links.scitt`):
//! - `scrapi_url` (`"http://scittles:8000"`): the transparency service; its host
//!   (and the JWKS host, when `jwks_uri` points elsewhere) must be in the link's
//!   `allowed_outbound_hosts`.
//! - `signing_key_pem` (none): base64 of a PEM P-256 private key (SEC1 `EC PRIVATE
//!   KEY`, with or without `EC PARAMETERS`, or PKCS#8 `PRIVATE KEY`).
//! - `signing_key_secret` (`"SCITT_SIGNING_KEY"`; new): when `signing_key_pem` is
//!   empty, the key is read from this granted secret (`secrets: [SCITT_SIGNING_KEY]`),
//!   as PEM text or base64 of it. The host reads the secret from its environment or
//!   from the file named by `SCITT_SIGNING_KEY_FILE`, which replaces
//!   `signing_key_path`.
//! - `signing_key_path` (`"/etc/scitt/signing-key.pem"`): links cannot read files;
//!   it is accepted, and only named in the error when no key is found (set
//!   `SCITT_SIGNING_KEY_FILE` to that path on the host instead).
//! - `issuer` (`"conserver"`), `key_id` (`"conserver-key-1"`).
//! - `vcon_operation` (`"vcon_created"`; e.g. `"vcon_enhanced"` after
//!   transcription).
//! - `store_receipt` (bool, `true`): without it the vCon is returned unchanged.
//!
//! A 303 registration can take up to a minute of polling: give the link a
//! `limits: {timeout_ms: …}` above the default 30 s when the service is
//! asynchronous.
//!
//! Differences from Python:
//! - The signing key comes from `signing_key_pem` or a granted secret, not from a
//!   file; no key at all is a fatal error naming the options.
//! - Redirects are not followed by the host, so a 303 is polled as intended
//!   (`requests` follows redirects, so against a real service Python's 303 branch
//!   could not run: it got the redirected answer and crashed on its `None`
//!   result). A 2xx other than 201 is an error saying so (the same crash in
//!   Python).
//! - Polling stops at once when the host refuses the poll URL (not allowed,
//!   invalid) instead of retrying it six times.
//! - The JWKS key used is the first one, as in Python; a key that is not P-256
//!   (`x`/`y` of 32 bytes) or a receipt whose algorithm is not ES256 fails the
//!   verification with a message saying so.
//! - Missing `options` mean `{}` (Python crashed on `None`); an option of the wrong
//!   type is a fatal error naming it. A party `tel` that is a number is used as
//!   its decimal text (as Python's f-string did); other non-string `tel`s count as
//!   no `tel`.
//! - Metrics counters (`statement_creation_failures`, `registration_failures`) are
//!   log lines; a missing vCon is the host's concern (Python raised a 404).

use std::time::Duration;

use base64::Engine as _;
use base64::engine::DecodePaddingMode;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig, STANDARD, URL_SAFE_NO_PAD};
use ciborium::Value as Cbor;
use conserver_link_sdk::http::{Client, HttpError, Request, Response, Transport};
use conserver_link_sdk::prelude::*;
use conserver_link_sdk::secrets::{self, SecretError};
use conserver_link_sdk::{log, python_json};
use coset::{CborSerializable, CoseSign1, CoseSign1Builder, Header, Label, TaggedCborSerializable, iana};
use p256::ecdsa::signature::{Signer, Verifier};
use p256::ecdsa::{Signature, SigningKey, VerifyingKey};
use p256::pkcs8::DecodePrivateKey;
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};

/// The `scitt` link.
pub struct Scitt;

/// Reads a granted secret (the SDK's `secrets::get`; a closure in tests).
pub type SecretReader<'a> = &'a dyn Fn(&str) -> Result<String, SecretError>;
/// Waits between polls (`std::thread::sleep`; a recorder in tests).
pub type Sleeper<'a> = &'a dyn Fn(Duration);

const DEFAULT_SCRAPI_URL: &str = "http://scittles:8000";
const DEFAULT_SIGNING_KEY_PATH: &str = "/etc/scitt/signing-key.pem";
const DEFAULT_SIGNING_KEY_SECRET: &str = "SCITT_SIGNING_KEY";
const PRE_IMAGE_CONTENT_TYPE: &str = "application/vcon+json";

/// Request timeouts and polling, as in Python's `register_signed_statement`.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
const DISCOVERY_TIMEOUT: Duration = Duration::from_secs(10);
const POLL_INTERVAL: Duration = Duration::from_secs(10);
const POLL_ATTEMPTS: usize = 6;

/// Protected-header labels of the hashed-envelope signed statement.
const HEADER_KID: i64 = 4;
const HEADER_CWT_CLAIMS: i64 = 13;
const HEADER_PAYLOAD_HASH_ALG: i64 = -6800;
const HEADER_PAYLOAD_LOCATION: i64 = -6801;
const HEADER_PAYLOAD_PRE_CONTENT_TYPE: i64 = -6802;
const HEADER_META_MAP: i64 = -6804;
/// COSE algorithm id of SHA-256.
const COSE_ALG_SHA256: i64 = -16;
/// Unprotected-header label of the receipt's verifiable data structure proofs.
const HEADER_VDP: i64 = 396;
/// Key of the inclusion proofs in the proofs map.
const VDP_INCLUSION: i64 = -1;

/// The options this link acts on.
#[derive(Debug, Clone, PartialEq)]
struct Options {
    scrapi_url: String,
    signing_key_pem: Option<String>,
    signing_key_path: String,
    signing_key_secret: String,
    issuer: String,
    key_id: String,
    vcon_operation: String,
    store_receipt: bool,
}

impl Options {
    fn from_context(ctx: &Context) -> Result<Self, LinkError> {
        Ok(Self {
            scrapi_url: ctx.option_or("scrapi_url", DEFAULT_SCRAPI_URL.to_string())?,
            signing_key_pem: ctx.option_or::<Option<String>>("signing_key_pem", None)?.filter(|k| !k.is_empty()),
            signing_key_path: ctx.option_or("signing_key_path", DEFAULT_SIGNING_KEY_PATH.to_string())?,
            signing_key_secret: ctx.option_or("signing_key_secret", DEFAULT_SIGNING_KEY_SECRET.to_string())?,
            issuer: ctx.option_or("issuer", "conserver".to_string())?,
            key_id: ctx.option_or("key_id", "conserver-key-1".to_string())?,
            vcon_operation: ctx.option_or("vcon_operation", "vcon_created".to_string())?,
            store_receipt: ctx.option_or("store_receipt", true)?,
        })
    }
}

// ---------------------------------------------------------------------------
// Hash and signing key
// ---------------------------------------------------------------------------

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Python's `vcon.hash`: SHA-256 hex of `json.dumps(vcon_dict)`.
pub fn vcon_hash(vcon: &Vcon) -> String {
    hex(&Sha256::digest(python_json::dumps(&Value::Object(vcon.to_map())).as_bytes()))
}

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

fn load_signing_key(ctx: &Context, options: &Options, secret: SecretReader<'_>) -> Result<SigningKey, LinkError> {
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

// ---------------------------------------------------------------------------
// Signed statement
// ---------------------------------------------------------------------------

/// What one signed statement says.
#[derive(Debug, Clone, PartialEq)]
pub struct Statement<'a> {
    /// CWT `iss`.
    pub issuer: &'a str,
    /// CWT `sub`.
    pub subject: &'a str,
    /// The key id (`kid`).
    pub kid: &'a [u8],
    /// The meta-map, in order.
    pub meta_map: &'a [(&'a str, &'a str)],
    /// The signed payload.
    pub payload: &'a [u8],
}

fn int(value: i64) -> Cbor {
    Cbor::Integer(value.into())
}

/// A COSE_Sign1 hashed-envelope signed statement, tagged, as Python's
/// `create_hashed_signed_statement` builds it.
pub fn signed_statement(key: &SigningKey, statement: &Statement<'_>) -> Result<Vec<u8>, String> {
    let point = key.verifying_key().to_sec1_point(false);
    let (Some(x), Some(y)) = (point.x(), point.y()) else {
        return Err("the public key has no affine coordinates".into());
    };
    let cose_key = Cbor::Map(vec![
        (int(1), int(2)),  // kty: EC2
        (int(-1), int(1)), // crv: P-256
        (int(-2), Cbor::Bytes(x.to_vec())),
        (int(-3), Cbor::Bytes(y.to_vec())),
    ]);
    let cwt_claims = Cbor::Map(vec![
        (int(1), Cbor::Text(statement.issuer.to_string())),
        (int(2), Cbor::Text(statement.subject.to_string())),
        (int(8), Cbor::Map(vec![(int(1), cose_key)])),
    ]);
    let meta_map = Cbor::Map(
        statement.meta_map.iter().map(|(k, v)| (Cbor::Text((*k).to_string()), Cbor::Text((*v).to_string()))).collect(),
    );
    let protected = Header {
        alg: Some(coset::Algorithm::Assigned(iana::Algorithm::ES256)),
        // `kid` goes with the other labels so it is written even when empty, as
        // pycose does, and in pycose's order.
        rest: vec![
            (Label::Int(HEADER_KID), Cbor::Bytes(statement.kid.to_vec())),
            (Label::Int(HEADER_PAYLOAD_PRE_CONTENT_TYPE), Cbor::Text(PRE_IMAGE_CONTENT_TYPE.into())),
            (Label::Int(HEADER_CWT_CLAIMS), cwt_claims),
            (Label::Int(HEADER_PAYLOAD_HASH_ALG), int(COSE_ALG_SHA256)),
            (Label::Int(HEADER_PAYLOAD_LOCATION), Cbor::Text(String::new())),
            (Label::Int(HEADER_META_MAP), meta_map),
        ],
        ..Default::default()
    };
    let sign1 = CoseSign1Builder::new()
        .protected(protected)
        .payload(statement.payload.to_vec())
        .create_signature(b"", |tbs| {
            let signature: Signature = key.sign(tbs);
            signature.to_bytes().to_vec()
        })
        .build();
    sign1.to_tagged_vec().map_err(|e| format!("cannot encode the signed statement: {e}"))
}

// ---------------------------------------------------------------------------
// Registration
// ---------------------------------------------------------------------------

/// A registered statement.
#[derive(Debug, Clone, PartialEq)]
struct Registration {
    entry_id: Value,
    receipt: Vec<u8>,
}

/// Python's `str()` of an entry id.
fn entry_id_text(id: &Value) -> String {
    match id {
        Value::String(text) => text.clone(),
        other => python_json::dumps(other),
    }
}

fn last_segment(url: &str) -> &str {
    url.rsplit('/').next().unwrap_or_default()
}

/// Errors from the host that trying again cannot fix.
fn is_config_error(error: &HttpError) -> bool {
    matches!(error, HttpError::Denied(_) | HttpError::InvalidRequest(_) | HttpError::Unsupported)
}

struct Service<'a> {
    scrapi_url: &'a str,
    transport: &'a dyn Transport,
    sleep: Sleeper<'a>,
}

impl Service<'_> {
    fn send(&self, request: &Request) -> Result<Response, LinkError> {
        self.transport.send(request).map_err(|e| {
            let message = format!("scitt: {} {}: {e}", request.method, request.url);
            if e.is_retryable() { LinkError::retryable(message) } else { LinkError::fatal(message) }
        })
    }

    fn checked(&self, request: &Request) -> Result<Response, LinkError> {
        self.send(request)?.error_for_status().map_err(|e| {
            let message = format!("scitt: {} {}: {e}", request.method, request.url);
            if e.is_retryable() { LinkError::retryable(message) } else { LinkError::fatal(message) }
        })
    }

    /// Python's `register_statement`.
    fn register(&self, statement: &[u8]) -> Result<Registration, LinkError> {
        let request = Request::post(&format!("{}/entries", self.scrapi_url))
            .header("content-type", "application/cose")
            .body(statement)
            .timeout(REQUEST_TIMEOUT);
        let answer = self.send(&request)?;
        match answer.status {
            201 => {
                let entry_id = last_segment(answer.header("location").unwrap_or_default()).to_string();
                Ok(Registration { entry_id: Value::String(entry_id), receipt: answer.body })
            }
            303 => {
                let location = answer.header("location").ok_or_else(|| {
                    LinkError::fatal(format!("scitt: {} answered 303 without a Location", request.url))
                })?;
                let entry_id = self.wait_for_entry_id(location)?;
                let receipt = self.receipt(&entry_id)?;
                Ok(Registration { entry_id, receipt })
            }
            status => {
                let error = answer
                    .error_for_status()
                    .err()
                    .map_or_else(|| format!("unexpected HTTP {status} (expected 201 or 303)"), |e| e.to_string());
                let message = format!("scitt: registering at {}: {error}", request.url);
                Err(if status == 429 || status >= 500 {
                    LinkError::retryable(message)
                } else {
                    LinkError::fatal(message)
                })
            }
        }
    }

    /// Python's `wait_for_entry_id`.
    fn wait_for_entry_id(&self, location: &str) -> Result<Value, LinkError> {
        let poll_url =
            if location.starts_with("http") { location.to_string() } else { format!("{}{location}", self.scrapi_url) };
        log::info(&format!("scitt: polling for registration completion at {poll_url}"));
        let request = Request::get(&poll_url).timeout(REQUEST_TIMEOUT);
        for _ in 0..POLL_ATTEMPTS {
            match self.transport.send(&request) {
                Ok(answer) if answer.status == 200 => match answer.json::<Value>() {
                    Ok(Value::Object(data)) => {
                        for key in ["entryID", "entry_id"] {
                            if let Some(id) = data.get(key) {
                                return Ok(id.clone());
                            }
                        }
                        return Ok(Value::String(last_segment(&poll_url).to_string()));
                    }
                    Ok(_) => return Ok(Value::String(last_segment(&poll_url).to_string())),
                    Err(e) => log::debug(&format!("scitt: failed polling operation status: {e}")),
                },
                Ok(answer) if answer.status == 202 => log::debug("scitt: registration still pending..."),
                Ok(answer) => log::debug(&format!("scitt: polling answered HTTP {}", answer.status)),
                Err(e) if is_config_error(&e) => {
                    return Err(LinkError::fatal(format!("scitt: polling {poll_url}: {e}")));
                }
                Err(e) => log::debug(&format!("scitt: failed polling operation status: {e}")),
            }
            (self.sleep)(POLL_INTERVAL);
        }
        Err(LinkError::retryable(format!(
            "scitt: signed statement not registered within polling duration ({poll_url})"
        )))
    }

    /// Python's `get_receipt`.
    fn receipt(&self, entry_id: &Value) -> Result<Vec<u8>, LinkError> {
        let url = format!("{}/entries/{}", self.scrapi_url, entry_id_text(entry_id));
        let request = Request::get(&url).header("accept", "application/cose").timeout(REQUEST_TIMEOUT);
        Ok(self.checked(&request)?.body)
    }

    /// The service's receipt-signing key (Python's JWKS discovery).
    fn service_key(&self) -> Result<VerifyingKey, LinkError> {
        let config_url = format!("{}/.well-known/transparency-configuration", self.scrapi_url);
        let answer = self.checked(&Request::get(&config_url).timeout(DISCOVERY_TIMEOUT))?;
        let config: Cbor = ciborium::from_reader(answer.body.as_slice())
            .map_err(|e| LinkError::fatal(format!("scitt: {config_url} is not CBOR: {e}")))?;
        let Cbor::Map(entries) = config else {
            return Err(LinkError::fatal(format!("scitt: {config_url} is not a CBOR map")));
        };
        let jwks_uri = entries.iter().find_map(|(k, v)| (k.as_text() == Some("jwks_uri")).then_some(v));
        let jwks_uri = match jwks_uri {
            None | Some(Cbor::Null) => format!("{}/jwks", self.scrapi_url),
            Some(Cbor::Text(uri)) if uri.is_empty() => format!("{}/jwks", self.scrapi_url),
            Some(Cbor::Text(uri)) => uri.clone(),
            Some(other) => {
                return Err(LinkError::fatal(format!(
                    "scitt: {config_url} has a jwks_uri that is not text: {other:?}"
                )));
            }
        };
        let jwks: Value = self
            .checked(&Request::get(&jwks_uri).timeout(DISCOVERY_TIMEOUT))?
            .json()
            .map_err(|e| LinkError::fatal(format!("scitt: {jwks_uri}: {e}")))?;
        let jwk = jwks
            .get("keys")
            .and_then(|keys| keys.get(0))
            .ok_or_else(|| LinkError::fatal(format!("scitt: {jwks_uri} has no keys")))?;
        let coordinate = |name: &str| {
            let text = jwk.get(name).and_then(Value::as_str).unwrap_or_default();
            URL_SAFE_NO_PAD.decode(text.trim_end_matches('=')).ok().filter(|bytes| bytes.len() == 32).ok_or_else(|| {
                LinkError::fatal(format!("scitt: the first key of {jwks_uri} is not a P-256 key (bad `{name}`)"))
            })
        };
        let mut sec1 = vec![0x04];
        sec1.extend(coordinate("x")?);
        sec1.extend(coordinate("y")?);
        VerifyingKey::from_sec1_bytes(&sec1)
            .map_err(|e| LinkError::fatal(format!("scitt: the first key of {jwks_uri} is not a P-256 key: {e}")))
    }

    /// Python's `_verify_cose_receipt`.
    fn verify_receipt(&self, receipt: &[u8], statement_hash: &[u8]) -> Result<(), LinkError> {
        let invalid = |why: String| LinkError::fatal(format!("scitt: the cose_receipt is invalid: {why}"));
        let message = CoseSign1::from_tagged_slice(receipt)
            .or_else(|_| CoseSign1::from_slice(receipt))
            .map_err(|e| invalid(format!("not a COSE_Sign1: {e:?}")))?;
        let root = inclusion_root(&message, statement_hash).map_err(invalid)?;
        let key = self.service_key()?;
        let alg = message.protected.header.alg.clone().or_else(|| message.unprotected.alg.clone());
        if alg != Some(coset::Algorithm::Assigned(iana::Algorithm::ES256)) {
            return Err(invalid(format!("its algorithm {alg:?} is not ES256")));
        }
        message
            .verify_detached_signature(&root, b"", |signature, data| {
                let signature = Signature::from_slice(signature).map_err(|e| e.to_string())?;
                key.verify(data, &signature).map_err(|e| e.to_string())
            })
            .map_err(|e| {
                LinkError::fatal(format!(
                    "scitt: cose_receipt signature verification failed ({e}): the receipt is not authentic"
                ))
            })
    }
}

// ---------------------------------------------------------------------------
// Receipts
// ---------------------------------------------------------------------------

/// Walk an RFC 9162 inclusion proof; the recomputed Merkle root (Python's
/// `_compute_root`).
pub fn compute_root(
    leaf_hash: &[u8],
    leaf_index: u64,
    tree_size: u64,
    siblings: &[Vec<u8>],
) -> Result<Vec<u8>, String> {
    let mut current = leaf_hash.to_vec();
    let mut index = leaf_index;
    let mut size = tree_size;
    let mut proof = siblings.iter();
    while size > 1 {
        if index == size - 1 && !size.is_multiple_of(2) {
            index /= 2;
            size = size.div_ceil(2);
            continue;
        }
        let sibling = proof.next().ok_or("the inclusion proof has too few hashes")?;
        let mut hasher = Sha256::new();
        hasher.update([0x01]);
        if index.is_multiple_of(2) {
            hasher.update(&current);
            hasher.update(sibling);
        } else {
            hasher.update(sibling);
            hasher.update(&current);
        }
        current = hasher.finalize().to_vec();
        index /= 2;
        size = size.div_ceil(2);
    }
    Ok(current)
}

/// The Merkle root a receipt's first inclusion proof gives for the statement.
fn inclusion_root(message: &CoseSign1, statement_hash: &[u8]) -> Result<Vec<u8>, String> {
    let missing = || "missing inclusion proof (uhdr label 396/-1)".to_string();
    let proofs = message
        .unprotected
        .rest
        .iter()
        .find(|(label, _)| *label == Label::Int(HEADER_VDP))
        .and_then(|(_, value)| value.as_map())
        .and_then(|map| map.iter().find(|(k, _)| k.as_integer() == Some(VDP_INCLUSION.into())))
        .and_then(|(_, value)| value.as_array())
        .filter(|proofs| !proofs.is_empty())
        .ok_or_else(missing)?;
    let proof_bytes = proofs[0].as_bytes().ok_or("the inclusion proof is not a byte string")?;
    let proof: Cbor = ciborium::from_reader(proof_bytes.as_slice()).map_err(|e| format!("bad inclusion proof: {e}"))?;
    let shape = || "the inclusion proof is not [tree_size, leaf_index, [hashes]]".to_string();
    let items = proof.as_array().filter(|items| items.len() == 3).ok_or_else(shape)?;
    let number = |value: &Cbor| value.as_integer().and_then(|n| u64::try_from(n).ok()).ok_or_else(shape);
    let tree_size = number(&items[0])?;
    let leaf_index = number(&items[1])?;
    let siblings = items[2]
        .as_array()
        .ok_or_else(shape)?
        .iter()
        .map(|s| s.as_bytes().cloned().ok_or_else(shape))
        .collect::<Result<Vec<_>, _>>()?;
    let mut leaf = Sha256::new();
    leaf.update([0x00]);
    leaf.update(statement_hash);
    compute_root(&leaf.finalize(), leaf_index, tree_size, &siblings)
}

// ---------------------------------------------------------------------------
// The link
// ---------------------------------------------------------------------------

/// The subjects: a party `tel`, or `None` for the `vcon://` fallback.
fn party_tels(vcon: &Vcon) -> Vec<Option<String>> {
    let mut tels = Vec::new();
    if let Some(Value::Array(parties)) = vcon.get("parties") {
        for party in &parties {
            match party.get("tel") {
                Some(Value::String(tel)) if !tel.is_empty() => tels.push(Some(tel.clone())),
                Some(number @ Value::Number(n)) if n.as_f64().is_some_and(|n| n != 0.0) => {
                    tels.push(Some(python_json::dumps(number)));
                }
                _ => log::warn("scitt: party without tel, skipping"),
            }
        }
    }
    if tels.is_empty() {
        tels.push(None);
    }
    tels
}

impl Scitt {
    fn run(
        ctx: &Context,
        mut vcon: Vcon,
        transport: &dyn Transport,
        secret: SecretReader<'_>,
        sleep: Sleeper<'_>,
    ) -> LinkResult {
        let options = Options::from_context(ctx)?;
        let uuid = vcon.uuid().unwrap_or_else(|| ctx.vcon_uuid.clone());
        let hash = vcon_hash(&vcon);
        let operation = options.vcon_operation.as_str();
        let key = load_signing_key(ctx, &options, secret)?;
        let service = Service { scrapi_url: &options.scrapi_url, transport, sleep };
        let mut receipts = Vec::new();
        for tel in party_tels(&vcon) {
            let (subject, payload, meta_map) = match &tel {
                Some(tel) => (
                    format!("tel:{tel}"),
                    format!("{hash}:{operation}:{tel}"),
                    vec![("vcon_operation", operation), ("party_tel", tel.as_str())],
                ),
                None => (format!("vcon://{uuid}"), format!("{hash}:{operation}"), vec![("vcon_operation", operation)]),
            };
            let statement = Statement {
                issuer: &options.issuer,
                subject: &subject,
                kid: options.key_id.as_bytes(),
                meta_map: &meta_map,
                payload: payload.as_bytes(),
            };
            let signed = signed_statement(&key, &statement).map_err(|e| {
                log::warn("scitt: conserver.link.scitt.statement_creation_failures");
                LinkError::fatal(format!("scitt: {e}"))
            })?;
            log::info(&format!("scitt: created signed statement for {uuid} subject={subject} ({operation})"));
            let registration = service.register(&signed).inspect_err(|_| {
                log::warn("scitt: conserver.link.scitt.registration_failures");
            })?;
            let entry_id = entry_id_text(&registration.entry_id);
            log::info(&format!("scitt: registered entry_id={entry_id} subject={subject} for {uuid}"));
            service.verify_receipt(&registration.receipt, &Sha256::digest(payload.as_bytes()))?;
            log::info(&format!("scitt: receipt verified for entry_id={entry_id}"));
            let mut receipt = Map::new();
            receipt.insert("entry_id".into(), registration.entry_id);
            receipt.insert("cose_receipt".into(), Value::String(STANDARD.encode(&registration.receipt)));
            receipt.insert("vcon_operation".into(), Value::String(operation.to_string()));
            receipt.insert("subject".into(), Value::String(subject));
            receipt.insert("vcon_hash".into(), Value::String(hash.clone()));
            receipt.insert("scrapi_url".into(), Value::String(options.scrapi_url.clone()));
            receipts.push(Value::Object(receipt));
        }
        if !options.store_receipt {
            return Ok(Verdict::unchanged());
        }
        let count = receipts.len();
        let body = if count == 1 { receipts.remove(0) } else { Value::Array(receipts) };
        vcon.add_analysis(Analysis {
            kind: Some("scitt_receipt".into()),
            dialog: Some(json!(0)),
            vendor: Some("scittles".into()),
            body: Some(body),
            ..Default::default()
        })?;
        log::info(&format!("scitt: stored {count} SCITT receipt(s) for {uuid}"));
        Ok(Verdict::changed(vcon))
    }
}

impl Link for Scitt {
    fn process(ctx: &Context, vcon: Vcon) -> LinkResult {
        Self::run(ctx, vcon, &Client::host(), &secrets::get, &std::thread::sleep)
    }
}

export_link!(Scitt);

#[cfg(test)]
mod tests {
    use super::*;
    use conserver_link_sdk::http::Recorder;
    use std::cell::RefCell;

    // Test keys derived from fixed scalars (0x22… for the conserver, 0x11… for
    // the transparency service); never use them for anything else.
    const KEY_SEC1: &str = "-----BEGIN EC PRIVATE KEY-----
MHcCAQEEICIiIiIiIiIiIiIiIiIiIiIiIiIiIiIiIiIiIiIiIiIioAoGCCqGSM49AwEHoUQDQgAE
1lqTl3yqPRsIGFL/V6eeRl8WYFdzBLrq1QXdOkhYnPNQGF6JU3LfYiHqOhN1V+Rz/dtnVfBb1QfD
xTP86ckShQ==
-----END EC PRIVATE KEY-----
";
    const KEY_PKCS8: &str = "-----BEGIN PRIVATE KEY-----
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgIiIiIiIiIiIiIiIi
IiIiIiIiIiIiIiIiIiIiIiIiIiKhRANCAATWWpOXfKo9GwgYUv9Xp55GXxZgV3ME
uurVBd06SFic81AYXolTct9iIeo6E3VX5HP922dV8FvVB8PFM/zpyRKF
-----END PRIVATE KEY-----
";
    /// The same key as python-ecdsa writes PKCS#8 (version 2, with the public key).
    const KEY_PKCS8_V2: &str = "-----BEGIN PRIVATE KEY-----
MIGHAgEBMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgIiIiIiIiIiIiIiIiIiIiIiIiIiIi
IiIiIiIiIiIiIiKhRANCAATWWpOXfKo9GwgYUv9Xp55GXxZgV3MEuurVBd06SFic81AYXolTct9i
Ieo6E3VX5HP922dV8FvVB8PFM/zpyRKF
-----END PRIVATE KEY-----
";
    /// `base64 -w0` of [`KEY_SEC1`], as `signing_key_pem` takes it.
    const KEY_SEC1_B64: &str = "LS0tLS1CRUdJTiBFQyBQUklWQVRFIEtFWS0tLS0tCk1IY0NBUUVFSUNJaUlpSWlJaUlpSWlJaUlpSWlJaUlpSWlJaUlpSWlJaUlpSWlJaUlpSWlvQW9HQ0NxR1NNNDlBd0VIb1VRRFFnQUUKMWxxVGwzeXFQUnNJR0ZML1Y2ZWVSbDhXWUZkekJMcnExUVhkT2toWW5QTlFHRjZKVTNMZllpSHFPaE4xVitSei9kdG5WZkJiMVFmRAp4VFA4NmNrU2hRPT0KLS0tLS1FTkQgRUMgUFJJVkFURSBLRVktLS0tLQo=";
    const KEY_P384: &str = "-----BEGIN EC PRIVATE KEY-----
MIGkAgEBBDAzMzMzMzMzMzMzMzMzMzMzMzMzMzMzMzMzMzMzMzMzMzMzMzMzMzMzMzMzMzMzMzOg
BwYFK4EEACKhZANiAASzS4wGMVVwId1dp5ZLD2RUQ6lpoa+eDjPB69HpEj0yntfwe5431rJJlzUd
o2Vt5TK+HTKOcABcDnWfkzINu8wLZMDG1dfCEi+jZJ8g7vBXlcBwJHvIfYGu26awPPJE3dM=
-----END EC PRIVATE KEY-----
";
    const EC_PARAMETERS: &str = "-----BEGIN EC PARAMETERS-----\nBggqhkjOPQMBBw==\n-----END EC PARAMETERS-----\n";

    const UUID: &str = "0190f0a1-aaaa-7bbb-8ccc-123456789abc";
    /// Two parties with `tel`, one without.
    const VCON: &str = r#"{"uuid":"0190f0a1-aaaa-7bbb-8ccc-123456789abc","vcon":"0.4.0","created_at":"2026-01-02T03:04:05+00:00","parties":[{"tel":"+15551234567","name":"Alice"},{"mailto":"bob@example.com"},{"tel":"+15557654321"}],"dialog":[{"type":"text","body":"héllo","duration":1.5}],"attachments":[]}"#;
    /// Python: `hashlib.sha256(json.dumps(vcon).encode()).hexdigest()`.
    const VCON_HASH: &str = "2505ebcc54140217f4cc58bc97878ffa9bd8eb0c601ae12acede056c58db4ce0";
    /// Python's `create_hashed_signed_statement` (pycose 1.1, python-ecdsa 0.19)
    /// with [`KEY_SEC1`] for the first party of [`VCON`].
    const PY_STATEMENT_TEL1: &str = "d28458d9a70126044f636f6e7365727665722d6b65792d31391a91756170706c69636174696f6e2f76636f6e2b6a736f6e0da30169636f6e736572766572027074656c3a2b313535353132333435363708a101a401022001215820d65a93977caa3d1b081852ff57a79e465f1660577304baead505dd3a48589cf322582050185e895372df6221ea3a137557e473fddb6755f05bd507c3c533fce9c91285391a8f2f391a9060391a93a26e76636f6e5f6f7065726174696f6e6c76636f6e5f637265617465646970617274795f74656c6c2b3135353531323334353637a0585a323530356562636335343134303231376634636335386263393738373866666139626438656230633630316165313261636564653035366335386462346365303a76636f6e5f637265617465643a2b31353535313233343536375840d482a53fd4e8d0c5216184890a303ae6e505182dfbd944083b490e2585489d39b9c36a55a7adbe74a30be669cad88eedf434607a16a65a69fe8812d7c58e8259";
    const PY_STATEMENT_TEL2: &str = "d28458d9a70126044f636f6e7365727665722d6b65792d31391a91756170706c69636174696f6e2f76636f6e2b6a736f6e0da30169636f6e736572766572027074656c3a2b313535353736353433323108a101a401022001215820d65a93977caa3d1b081852ff57a79e465f1660577304baead505dd3a48589cf322582050185e895372df6221ea3a137557e473fddb6755f05bd507c3c533fce9c91285391a8f2f391a9060391a93a26e76636f6e5f6f7065726174696f6e6c76636f6e5f637265617465646970617274795f74656c6c2b3135353537363534333231a0585a323530356562636335343134303231376634636335386263393738373866666139626438656230633630316165313261636564653035366335386462346365303a76636f6e5f637265617465643a2b3135353537363534333231584021f678a0fa18f5aa737ea28f9c4065eaf6140b959f82d211b0fa0705e33d2e04dd8e628c6b1760e817c04ae1c49dbdd7843e56ef0bf57fc4d7eae191601f381c";
    /// The `vcon://` statement with issuer `issuer-x`, an empty `key_id` and
    /// operation `vcon_enhanced`.
    const PY_STATEMENT_FALLBACK: &str = "d28458cfa701260440391a91756170706c69636174696f6e2f76636f6e2b6a736f6e0da301686973737565722d7802782b76636f6e3a2f2f30313930663061312d616161612d376262622d386363632d31323334353637383961626308a101a401022001215820d65a93977caa3d1b081852ff57a79e465f1660577304baead505dd3a48589cf322582050185e895372df6221ea3a137557e473fddb6755f05bd507c3c533fce9c91285391a8f2f391a9060391a93a16e76636f6e5f6f7065726174696f6e6d76636f6e5f656e68616e636564a0584e323530356562636335343134303231376634636335386263393738373866666139626438656230633630316165313261636564653035366335386462346365303a76636f6e5f656e68616e636564584052f851b7e030a6cdfc5b9a9011ef66a0fd77080576d4fed030775a8c96318cfdf873f357c994850cbdf26e6f5a3db977d585950cac5a38a72ce4b4804e79e6a4";
    /// A receipt made with pycose for the first party's statement (leaf 3 of a
    /// 5-leaf tree), which the Python link's `_verify_cose_receipt` accepts.
    const PY_RECEIPT_TEL1: &str = "d2844ca30126044373766319018b01a119018ca12081586a830503835820fcf0a6c700dd13e274b6fba8deea8dd9b26e4eedde3495717cac8408c9c5177f5820a20bf9a7cc2dc8a08f5f415a71b19f6ac427bab54d24eec868b5d3103449953a58204f35212d12f9ad2036492c95f1fe79baf4ec7bd9bef3dffa7579f2293ff546a4f65840b34ec9ed25619e991549272eb4fcc4435f68fed413f234a03a82a6f2fa843ce1c8c89b9c4ace02af724293949487086a6856927e8058c0425b10d12927c0e2f7";

    fn unhex(text: &str) -> Vec<u8> {
        (0..text.len()).step_by(2).map(|i| u8::from_str_radix(&text[i..i + 2], 16).unwrap()).collect()
    }

    fn conserver_key() -> SigningKey {
        signing_key_from_pem(KEY_SEC1).unwrap()
    }

    fn service_key() -> SigningKey {
        SigningKey::from_slice(&[0x11; 32]).unwrap()
    }

    fn sha(data: &[u8]) -> Vec<u8> {
        Sha256::digest(data).to_vec()
    }

    fn node(left: &[u8], right: &[u8]) -> Vec<u8> {
        sha(&[&[0x01][..], left, right].concat())
    }

    /// The largest power of two below `n` (RFC 9162's split point).
    fn split(n: usize) -> usize {
        let mut k = 1;
        while k * 2 < n {
            k *= 2;
        }
        k
    }

    /// RFC 9162 §2.1.1 Merkle tree hash, by its recursive definition.
    fn mth(leaves: &[Vec<u8>]) -> Vec<u8> {
        if leaves.len() == 1 {
            return leaves[0].clone();
        }
        let k = split(leaves.len());
        node(&mth(&leaves[..k]), &mth(&leaves[k..]))
    }

    /// RFC 9162 §2.1.3.1 inclusion path.
    fn path(m: usize, leaves: &[Vec<u8>]) -> Vec<Vec<u8>> {
        if leaves.len() == 1 {
            return Vec::new();
        }
        let k = split(leaves.len());
        if m < k {
            let mut p = path(m, &leaves[..k]);
            p.push(mth(&leaves[k..]));
            p
        } else {
            let mut p = path(m - k, &leaves[k..]);
            p.push(mth(&leaves[..k]));
            p
        }
    }

    /// A receipt for `payload` as leaf `index` of a `size`-leaf tree, signed by `key`.
    fn receipt_for(payload: &[u8], index: usize, size: usize, key: &SigningKey) -> Vec<u8> {
        let leaf = sha(&[&[0x00][..], &sha(payload)].concat());
        let mut leaves: Vec<Vec<u8>> = (0..size).map(|i| sha(&[0x00, i as u8])).collect();
        leaves[index] = leaf;
        let root = mth(&leaves);
        let proof = Cbor::Array(vec![
            int(size as i64),
            int(index as i64),
            Cbor::Array(path(index, &leaves).into_iter().map(Cbor::Bytes).collect()),
        ]);
        let mut proof_bytes = Vec::new();
        ciborium::into_writer(&proof, &mut proof_bytes).unwrap();
        let protected = Header {
            alg: Some(coset::Algorithm::Assigned(iana::Algorithm::ES256)),
            key_id: b"svc".to_vec(),
            rest: vec![(Label::Int(395), int(1))],
            ..Default::default()
        };
        let unprotected = Header {
            rest: vec![(Label::Int(396), Cbor::Map(vec![(int(-1), Cbor::Array(vec![Cbor::Bytes(proof_bytes)]))]))],
            ..Default::default()
        };
        CoseSign1Builder::new()
            .protected(protected)
            .unprotected(unprotected)
            .create_detached_signature(&root, b"", |tbs| {
                let signature: Signature = key.sign(tbs);
                signature.to_bytes().to_vec()
            })
            .build()
            .to_tagged_vec()
            .unwrap()
    }

    fn jwks(key: &SigningKey) -> String {
        let point = key.verifying_key().to_sec1_point(false);
        let x = URL_SAFE_NO_PAD.encode(point.x().unwrap());
        let y = URL_SAFE_NO_PAD.encode(point.y().unwrap());
        json!({"keys": [{"kty": "EC", "crv": "P-256", "kid": "svc", "x": x, "y": y}]}).to_string()
    }

    fn cbor_bytes(value: &Cbor) -> Vec<u8> {
        let mut out = Vec::new();
        ciborium::into_writer(value, &mut out).unwrap();
        out
    }

    fn transparency_configuration(jwks_uri: Option<&str>) -> Vec<u8> {
        let mut entries = vec![(Cbor::Text("issuer".into()), Cbor::Text("scittles".into()))];
        if let Some(uri) = jwks_uri {
            entries.push((Cbor::Text("jwks_uri".into()), Cbor::Text(uri.into())));
        }
        cbor_bytes(&Cbor::Map(entries))
    }

    fn with_location(status: u16, body: impl Into<Vec<u8>>, location: &str) -> Response {
        let mut response = Response::new(status, body);
        response.headers.push(("location".into(), location.into()));
        response
    }

    /// The payload a statement signs (its COSE payload).
    /// (coset refuses the empty `kid` Python writes for an empty `key_id`, so
    /// this reads the CBOR directly.)
    fn statement_payload(statement: &[u8]) -> Vec<u8> {
        statement_parts(statement).1
    }

    /// The protected header map and the payload of a tagged COSE_Sign1.
    fn statement_parts(statement: &[u8]) -> (Vec<(Cbor, Cbor)>, Vec<u8>) {
        let Cbor::Tag(18, message) = ciborium::from_reader::<Cbor, _>(statement).unwrap() else { panic!("untagged") };
        let items = message.as_array().unwrap();
        let protected: Cbor = ciborium::from_reader(items[0].as_bytes().unwrap().as_slice()).unwrap();
        (protected.as_map().unwrap().clone(), items[2].as_bytes().unwrap().clone())
    }

    /// The receipt [`sync_service`] gives for `payload` (its position in a
    /// 5-leaf tree depends on the payload).
    fn sync_receipt(payload: &[u8]) -> Vec<u8> {
        let index = payload.last().copied().unwrap_or_default() as usize % 4;
        receipt_for(payload, index, 5, &service_key())
    }

    /// A SCRAPI service that registers synchronously (201) with receipts signed
    /// by the service key, and answers discovery.
    fn sync_service(request: &Request) -> Result<Response, HttpError> {
        let url = request.url.as_str();
        match (request.method.as_str(), url) {
            ("POST", "http://scittles:8000/entries") => {
                let payload = statement_payload(&request.body);
                let receipt = sync_receipt(&payload);
                Ok(with_location(201, receipt, &format!("/entries/entry-{}", payload.last().unwrap())))
            }
            ("GET", "http://scittles:8000/.well-known/transparency-configuration") => {
                Ok(Response::new(200, transparency_configuration(Some("http://scittles:8000/jwks"))))
            }
            ("GET", "http://scittles:8000/jwks") => Ok(Response::new(200, jwks(&service_key()))),
            _ => Ok(Response::new(404, "not found")),
        }
    }

    /// Records requests (without answering them itself).
    fn recorder<F: Fn(&Request) -> Result<Response, HttpError>>(
        answer: F,
    ) -> Recorder<impl Fn(&Request, usize) -> Result<Response, HttpError>> {
        Recorder::new(move |request, _| answer(request))
    }

    fn no_secret(_: &str) -> Result<String, SecretError> {
        Err(SecretError::NotGranted)
    }

    fn no_sleep(_: Duration) {}

    fn run_with(
        options: Value,
        doc: &str,
        transport: &dyn Transport,
        secret: SecretReader<'_>,
        sleep: Sleeper<'_>,
    ) -> Result<Verdict, LinkError> {
        let mut ctx = Context::for_test("scitt", options);
        ctx.vcon_uuid = UUID.into();
        Scitt::run(&ctx, Vcon::from_json(doc).unwrap(), transport, secret, sleep)
    }

    fn key_options(extra: Value) -> Value {
        let mut options = json!({"signing_key_pem": KEY_SEC1_B64});
        for (k, v) in extra.as_object().unwrap() {
            options[k] = v.clone();
        }
        options
    }

    fn summary(requests: &[Request]) -> Vec<(String, String)> {
        requests.iter().map(|r| (r.method.clone(), r.url.clone())).collect()
    }

    fn pair(method: &str, url: &str) -> (String, String) {
        (method.to_string(), url.to_string())
    }

    fn stored_receipts(verdict: &Verdict) -> (Map<String, Value>, Value) {
        let vcon = verdict.vcon().unwrap();
        let analysis = vcon.get("analysis").unwrap();
        let entry = analysis[0].as_object().unwrap().clone();
        let body: Value = serde_json::from_str(entry["body"].as_str().unwrap()).unwrap();
        (entry, body)
    }

    #[test]
    fn the_vcon_hash_is_pythons() {
        assert_eq!(vcon_hash(&Vcon::from_json(VCON).unwrap()), VCON_HASH);
    }

    #[test]
    fn signed_statements_are_byte_identical_to_pycose() {
        let key = conserver_key();
        let cases = [("+15551234567", PY_STATEMENT_TEL1), ("+15557654321", PY_STATEMENT_TEL2)];
        for (tel, expected) in cases {
            let subject = format!("tel:{tel}");
            let payload = format!("{VCON_HASH}:vcon_created:{tel}");
            let statement = Statement {
                issuer: "conserver",
                subject: &subject,
                kid: b"conserver-key-1",
                meta_map: &[("vcon_operation", "vcon_created"), ("party_tel", tel)],
                payload: payload.as_bytes(),
            };
            assert_eq!(hex(&signed_statement(&key, &statement).unwrap()), expected, "{tel}");
        }
        let subject = format!("vcon://{UUID}");
        let payload = format!("{VCON_HASH}:vcon_enhanced");
        let statement = Statement {
            issuer: "issuer-x",
            subject: &subject,
            kid: b"",
            meta_map: &[("vcon_operation", "vcon_enhanced")],
            payload: payload.as_bytes(),
        };
        assert_eq!(hex(&signed_statement(&key, &statement).unwrap()), PY_STATEMENT_FALLBACK);
    }

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

    #[test]
    fn the_key_comes_from_the_option_then_the_secret() {
        let transport = recorder(sync_service);
        let secret_pem = |name: &str| {
            if name == "SCITT_SIGNING_KEY" { Ok(KEY_SEC1.to_string()) } else { Err(SecretError::NotGranted) }
        };
        let secret_b64 = |name: &str| {
            if name == "MY_KEY" { Ok(format!("{KEY_SEC1_B64}\n")) } else { Err(SecretError::NotGranted) }
        };
        let wrapped = format!("{}\n{}", &KEY_SEC1_B64[..40], &KEY_SEC1_B64[40..]);
        let cases: [(Value, SecretReader<'_>); 4] = [
            (json!({"signing_key_pem": wrapped}), &no_secret),
            (json!({"signing_key_pem": KEY_SEC1_B64.trim_end_matches('=')}), &no_secret),
            (json!({}), &secret_pem),
            (json!({"signing_key_secret": "MY_KEY", "signing_key_pem": ""}), &secret_b64),
        ];
        for (options, secret) in cases {
            let doc = r#"{"uuid":"0190f0a1-aaaa-7bbb-8ccc-123456789abc","vcon":"0.4.0","created_at":"2026-01-02T03:04:05+00:00","parties":[{"tel":"+15551234567","name":"Alice"}],"dialog":[{"type":"text","body":"héllo","duration":1.5}],"attachments":[]}"#;
            transport.clear();
            run_with(options.clone(), doc, &transport, secret, &no_sleep).unwrap_or_else(|e| panic!("{options}: {e}"));
            let posted = transport.requests()[0].body.clone();
            let payload = statement_payload(&posted);
            let hash = vcon_hash(&Vcon::from_json(doc).unwrap());
            assert_eq!(payload, format!("{hash}:vcon_created:+15551234567").into_bytes());
            // Signed by the same key as with the option.
            let message = CoseSign1::from_tagged_slice(&posted).unwrap();
            let key = *conserver_key().verifying_key();
            message.verify_signature(b"", |sig, data| key.verify(data, &Signature::from_slice(sig).unwrap())).unwrap();
        }
    }

    #[test]
    fn no_usable_key_is_a_fatal_error_naming_the_options() {
        let transport = recorder(sync_service);
        let err = run_with(json!({}), VCON, &transport, &no_secret, &no_sleep).unwrap_err();
        assert!(!err.retryable);
        for needle in ["signing_key_pem", "SCITT_SIGNING_KEY", "signing_key_secret", "/etc/scitt/signing-key.pem"] {
            assert!(err.message.contains(needle), "{needle}: {err}");
        }
        let unset = |_: &str| Err(SecretError::NotSet);
        let err = run_with(json!({}), VCON, &transport, &unset, &no_sleep).unwrap_err();
        assert!(err.message.contains("not set on the host"), "{err}");
        let err = run_with(json!({"signing_key_pem": "%%%"}), VCON, &transport, &no_secret, &no_sleep).unwrap_err();
        assert!(err.message.contains("option `signing_key_pem`"), "{err}");
        let p384 = STANDARD.encode(KEY_P384);
        let err = run_with(json!({"signing_key_pem": p384}), VCON, &transport, &no_secret, &no_sleep).unwrap_err();
        assert!(err.message.contains("option `signing_key_pem`") && err.message.contains("P-256"), "{err}");
        let garbage = |_: &str| Ok("not a key".to_string());
        let err = run_with(json!({}), VCON, &transport, &garbage, &no_sleep).unwrap_err();
        assert!(err.message.contains("secret `SCITT_SIGNING_KEY`"), "{err}");
        assert!(transport.requests().is_empty());
    }

    #[test]
    fn a_pycose_receipt_verifies() {
        let receipt = unhex(PY_RECEIPT_TEL1);
        let transport = recorder(sync_service);
        let service = Service { scrapi_url: "http://scittles:8000", transport: &transport, sleep: &no_sleep };
        let payload = format!("{VCON_HASH}:vcon_created:+15551234567");
        service.verify_receipt(&receipt, &sha(payload.as_bytes())).unwrap();
        let other = format!("{VCON_HASH}:vcon_created:+15557654321");
        let err = service.verify_receipt(&receipt, &sha(other.as_bytes())).unwrap_err();
        assert!(err.message.contains("not authentic"), "{err}");
    }

    #[test]
    fn merkle_roots_match_rfc_9162_for_every_position() {
        for size in 1..=9usize {
            let leaves: Vec<Vec<u8>> = (0..size).map(|i| sha(&[0x00, i as u8])).collect();
            let root = mth(&leaves);
            for index in 0..size {
                let computed = compute_root(&leaves[index], index as u64, size as u64, &path(index, &leaves)).unwrap();
                assert_eq!(computed, root, "size {size} index {index}");
            }
        }
        let leaves: Vec<Vec<u8>> = (0..4).map(|i| sha(&[i])).collect();
        assert!(compute_root(&leaves[0], 0, 4, &path(0, &leaves)[..1]).unwrap_err().contains("too few"));
        assert_eq!(compute_root(&leaves[0], 0, 1, &[]).unwrap(), leaves[0]);
    }

    #[test]
    fn registers_each_party_verifies_and_stores_the_receipts_as_python_does() {
        let transport = recorder(sync_service);
        let verdict = run_with(key_options(json!({})), VCON, &transport, &no_secret, &no_sleep).unwrap();
        let requests = transport.requests();
        assert_eq!(
            summary(&requests),
            vec![
                pair("POST", "http://scittles:8000/entries"),
                pair("GET", "http://scittles:8000/.well-known/transparency-configuration"),
                pair("GET", "http://scittles:8000/jwks"),
                pair("POST", "http://scittles:8000/entries"),
                pair("GET", "http://scittles:8000/.well-known/transparency-configuration"),
                pair("GET", "http://scittles:8000/jwks"),
            ]
        );
        assert_eq!(
            requests[0],
            Request {
                method: "POST".into(),
                url: "http://scittles:8000/entries".into(),
                headers: vec![("content-type".into(), "application/cose".into())],
                body: unhex(PY_STATEMENT_TEL1),
                timeout: Some(Duration::from_secs(30)),
            }
        );
        assert_eq!(requests[3].body, unhex(PY_STATEMENT_TEL2));
        assert_eq!(
            requests[1],
            Request {
                method: "GET".into(),
                url: "http://scittles:8000/.well-known/transparency-configuration".into(),
                headers: vec![],
                body: vec![],
                timeout: Some(Duration::from_secs(10)),
            }
        );
        assert_eq!(requests[2].timeout, Some(Duration::from_secs(10)));

        // The vCon: one analysis appended, exactly as Python's add_analysis writes it.
        let receipt1 = STANDARD.encode(sync_receipt(&statement_payload(&unhex(PY_STATEMENT_TEL1))));
        let receipt2 = STANDARD.encode(sync_receipt(&statement_payload(&unhex(PY_STATEMENT_TEL2))));
        let body = format!(
            r#"[{{"entry_id": "entry-55", "cose_receipt": "{receipt1}", "vcon_operation": "vcon_created", "subject": "tel:+15551234567", "vcon_hash": "{VCON_HASH}", "scrapi_url": "http://scittles:8000"}}, {{"entry_id": "entry-49", "cose_receipt": "{receipt2}", "vcon_operation": "vcon_created", "subject": "tel:+15557654321", "vcon_hash": "{VCON_HASH}", "scrapi_url": "http://scittles:8000"}}]"#
        );
        let mut expected: Value = serde_json::from_str(VCON).unwrap();
        expected["analysis"] =
            json!([{"type": "scitt_receipt", "dialog": 0, "vendor": "scittles", "body": body, "encoding": "json"}]);
        let out = verdict.vcon().unwrap();
        assert_eq!(Value::Object(out.to_map()), expected);
        assert_eq!(
            python_json::dumps(&Value::Object(out.to_map())),
            python_json::dumps(&expected),
            "key order included"
        );
    }

    #[test]
    fn without_tel_parties_the_subject_is_the_vcon_uri() {
        // No usable tel: one party without, one with an empty tel.
        let no_tels =
            VCON.replace(r#""tel":"+15551234567","#, "").replace(r#"{"tel":"+15557654321"}"#, r#"{"tel":""}"#);
        let transport = recorder(sync_service);
        let options = key_options(json!({"issuer": "issuer-x", "key_id": "", "vcon_operation": "vcon_enhanced"}));
        let verdict = run_with(options, &no_tels, &transport, &no_secret, &no_sleep).unwrap();
        let posted = transport.requests()[0].body.clone();
        let hash = vcon_hash(&Vcon::from_json(&no_tels).unwrap());
        let (protected, payload) = statement_parts(&posted);
        assert_eq!(payload, format!("{hash}:vcon_enhanced").into_bytes());
        assert_eq!(protected[1], (int(HEADER_KID), Cbor::Bytes(vec![])), "an empty kid is written, as pycose does");
        let meta = protected.iter().find(|(l, _)| *l == int(HEADER_META_MAP)).unwrap().1.clone();
        assert_eq!(meta, Cbor::Map(vec![(Cbor::Text("vcon_operation".into()), Cbor::Text("vcon_enhanced".into()))]));
        let cwt = protected.iter().find(|(l, _)| *l == int(HEADER_CWT_CLAIMS)).unwrap().1.clone();
        let cwt = cwt.as_map().unwrap().clone();
        assert_eq!(cwt[0], (int(1), Cbor::Text("issuer-x".into())));
        assert_eq!(cwt[1], (int(2), Cbor::Text(format!("vcon://{UUID}"))));
        let (entry, body) = stored_receipts(&verdict);
        assert_eq!(entry["type"], "scitt_receipt");
        assert!(body.is_object(), "one subject: a single receipt object");
        assert_eq!(body["subject"], format!("vcon://{UUID}"));
        assert_eq!(body["vcon_operation"], "vcon_enhanced");
        assert_eq!(body["vcon_hash"], hash);
        // The fallback statement is Python's for the same inputs.
        assert_eq!(
            hex(&signed_statement(
                &conserver_key(),
                &Statement {
                    issuer: "issuer-x",
                    subject: &format!("vcon://{UUID}"),
                    kid: b"",
                    meta_map: &[("vcon_operation", "vcon_enhanced")],
                    payload: format!("{VCON_HASH}:vcon_enhanced").as_bytes(),
                }
            )
            .unwrap()),
            PY_STATEMENT_FALLBACK
        );
    }

    #[test]
    fn a_numeric_tel_is_used_as_text_and_other_tels_are_skipped() {
        let doc = r#"{"uuid":"u1","parties":[{"tel":15551234567},{"tel":true},{"tel":null},"x"]}"#;
        let transport = recorder(sync_service);
        let verdict = run_with(key_options(json!({})), doc, &transport, &no_secret, &no_sleep).unwrap();
        let (_, body) = stored_receipts(&verdict);
        assert_eq!(body["subject"], "tel:15551234567");
        let payload = statement_payload(&transport.requests()[0].body);
        assert!(String::from_utf8(payload).unwrap().ends_with(":vcon_created:15551234567"));
    }

    #[test]
    fn store_receipt_false_registers_but_leaves_the_vcon_unchanged() {
        let transport = recorder(sync_service);
        let verdict =
            run_with(key_options(json!({"store_receipt": false})), VCON, &transport, &no_secret, &no_sleep).unwrap();
        assert!(verdict.vcon().is_none() && !verdict.is_halt());
        assert_eq!(transport.requests().len(), 6);
    }

    #[test]
    fn a_303_is_polled_then_the_receipt_is_fetched() {
        let doc = r#"{"uuid":"u1","parties":[{"tel":"+1"}]}"#;
        let polls = RefCell::new(0);
        let transport = recorder(|request: &Request| match (request.method.as_str(), request.url.as_str()) {
            ("POST", "http://scrapi.test/entries") => Ok(with_location(303, "", "/operations/op-1")),
            ("GET", "http://scrapi.test/operations/op-1") => {
                *polls.borrow_mut() += 1;
                Ok(match *polls.borrow() {
                    1 => Response::new(202, r#"{"status": "running"}"#),
                    2 => Response::new(500, "oops"),
                    3 => Response::new(200, "not json"),
                    _ => Response::new(200, r#"{"status": "succeeded", "entryID": "entry-9"}"#),
                })
            }
            ("GET", "http://scrapi.test/entries/entry-9") => {
                let payload = format!("{}:vcon_created:+1", vcon_hash(&Vcon::from_json(doc).unwrap()));
                Ok(Response::new(200, receipt_for(payload.as_bytes(), 0, 1, &service_key())))
            }
            ("GET", "http://scrapi.test/.well-known/transparency-configuration") => {
                Ok(Response::new(200, transparency_configuration(None)))
            }
            ("GET", "http://scrapi.test/jwks") => Ok(Response::new(200, jwks(&service_key()))),
            _ => Ok(Response::new(404, "")),
        });
        let slept = RefCell::new(Vec::new());
        let sleep = |d: Duration| slept.borrow_mut().push(d);
        let options = key_options(json!({"scrapi_url": "http://scrapi.test"}));
        let verdict = run_with(options, doc, &transport, &no_secret, &sleep).unwrap();
        let requests = transport.requests();
        assert_eq!(
            summary(&requests),
            vec![
                pair("POST", "http://scrapi.test/entries"),
                pair("GET", "http://scrapi.test/operations/op-1"),
                pair("GET", "http://scrapi.test/operations/op-1"),
                pair("GET", "http://scrapi.test/operations/op-1"),
                pair("GET", "http://scrapi.test/operations/op-1"),
                pair("GET", "http://scrapi.test/entries/entry-9"),
                pair("GET", "http://scrapi.test/.well-known/transparency-configuration"),
                pair("GET", "http://scrapi.test/jwks"),
            ]
        );
        assert_eq!(*slept.borrow(), vec![Duration::from_secs(10); 3]);
        assert_eq!(requests[1].timeout, Some(Duration::from_secs(30)));
        assert_eq!(
            requests[5],
            Request {
                method: "GET".into(),
                url: "http://scrapi.test/entries/entry-9".into(),
                headers: vec![("accept".into(), "application/cose".into())],
                body: vec![],
                timeout: Some(Duration::from_secs(30)),
            }
        );
        let (_, body) = stored_receipts(&verdict);
        assert_eq!(body["entry_id"], "entry-9");
        assert_eq!(body["scrapi_url"], "http://scrapi.test");
    }

    #[test]
    fn polling_takes_entry_id_or_the_url_and_absolute_locations() {
        let doc = r#"{"uuid":"u1","parties":[]}"#;
        let payload = format!("{}:vcon_created", vcon_hash(&Vcon::from_json(doc).unwrap()));
        for (answer, expected_id) in [
            (r#"{"entry_id": "e-7"}"#, json!("e-7")),
            (r#"{"entryID": 12}"#, json!(12)),
            (r#"{"status": "succeeded"}"#, json!("op-2")),
            (r#"["entryID"]"#, json!("op-2")),
        ] {
            let payload = payload.clone();
            let transport = recorder(move |request: &Request| match request.url.as_str() {
                "http://scittles:8000/entries" => Ok(with_location(303, "", "https://ops.test/operations/op-2")),
                "https://ops.test/operations/op-2" => Ok(Response::new(200, answer)),
                "http://scittles:8000/.well-known/transparency-configuration" => {
                    Ok(Response::new(200, transparency_configuration(Some("https://keys.test/jwks.json"))))
                }
                "https://keys.test/jwks.json" => Ok(Response::new(200, jwks(&service_key()))),
                url if url.starts_with("http://scittles:8000/entries/") => {
                    Ok(Response::new(200, receipt_for(payload.as_bytes(), 2, 3, &service_key())))
                }
                _ => Ok(Response::new(404, "")),
            });
            let verdict = run_with(key_options(json!({})), doc, &transport, &no_secret, &no_sleep).unwrap();
            let (_, body) = stored_receipts(&verdict);
            assert_eq!(body["entry_id"], expected_id, "{answer}");
            let id_text = entry_id_text(&expected_id);
            assert_eq!(transport.requests()[2].url, format!("http://scittles:8000/entries/{id_text}"));
            assert_eq!(transport.requests()[4].url, "https://keys.test/jwks.json");
        }
    }

    #[test]
    fn polling_gives_up_after_six_tries() {
        let transport = recorder(|request: &Request| match request.method.as_str() {
            "POST" => Ok(with_location(303, "", "/operations/op-3")),
            _ => {
                if request.url.ends_with("op-3") {
                    Err(HttpError::Timeout(request.url.clone()))
                } else {
                    Ok(Response::new(404, ""))
                }
            }
        });
        let slept = RefCell::new(0);
        let sleep = |_: Duration| *slept.borrow_mut() += 1;
        let err = run_with(key_options(json!({})), VCON, &transport, &no_secret, &sleep).unwrap_err();
        assert!(err.retryable);
        assert!(err.message.contains("not registered within polling duration"), "{err}");
        assert_eq!(transport.requests().len(), 7);
        assert_eq!(*slept.borrow(), 6);

        let denied = recorder(|request: &Request| match request.method.as_str() {
            "POST" => Ok(with_location(303, "", "https://elsewhere.test/op")),
            _ => Err(HttpError::Denied(request.url.clone())),
        });
        let err = run_with(key_options(json!({})), VCON, &denied, &no_secret, &no_sleep).unwrap_err();
        assert!(!err.retryable);
        assert!(err.message.contains("allowed_outbound_hosts"), "{err}");
        assert_eq!(denied.requests().len(), 2);
    }

    #[test]
    fn registration_errors_fail_the_link() {
        for (status, retryable, needle) in
            [(400, false, "400"), (503, true, "503"), (200, false, "unexpected HTTP 200")]
        {
            let transport = recorder(move |_: &Request| Ok(Response::new(status, "no")));
            let err = run_with(key_options(json!({})), VCON, &transport, &no_secret, &no_sleep).unwrap_err();
            assert_eq!(err.retryable, retryable, "{status}");
            assert!(err.message.contains(needle), "{err}");
            assert_eq!(transport.requests().len(), 1, "the second party is not tried");
        }
        let missing_location = recorder(|_: &Request| Ok(Response::new(303, "")));
        let err = run_with(key_options(json!({})), VCON, &missing_location, &no_secret, &no_sleep).unwrap_err();
        assert!(err.message.contains("without a Location"), "{err}");
        let refused = recorder(|r: &Request| Err(HttpError::Connection(format!("{} refused", r.url))));
        let err = run_with(key_options(json!({})), VCON, &refused, &no_secret, &no_sleep).unwrap_err();
        assert!(err.retryable && err.message.contains("refused"), "{err}");
        let receipt_gone = recorder(|request: &Request| match request.method.as_str() {
            "POST" => Ok(with_location(303, "", "/operations/op")),
            _ if request.url.ends_with("/op") => Ok(Response::new(200, r#"{"entryID": "e"}"#)),
            _ => Ok(Response::new(404, "gone")),
        });
        let err = run_with(key_options(json!({})), VCON, &receipt_gone, &no_secret, &no_sleep).unwrap_err();
        assert!(err.message.contains("/entries/e") && err.message.contains("404"), "{err}");
    }

    #[test]
    fn receipts_that_do_not_verify_fail_the_link() {
        type Mutate = fn(&Request, Response) -> Response;
        let cases: [(&str, Mutate); 6] = [
            ("not authentic", |r, a| {
                if r.method == "POST" {
                    let payload = statement_payload(&r.body);
                    with_location(201, receipt_for(&payload, 0, 2, &conserver_key()), "/entries/x")
                } else {
                    a
                }
            }),
            ("not authentic", |r, a| {
                if r.method == "POST" {
                    with_location(201, receipt_for(b"other", 0, 2, &service_key()), "/e/x")
                } else {
                    a
                }
            }),
            ("missing inclusion proof", |r, a| {
                if r.method == "POST" {
                    let mut message = CoseSign1::from_tagged_slice(&receipt_for(b"x", 0, 1, &service_key())).unwrap();
                    message.unprotected = Header::default();
                    with_location(201, message.to_tagged_vec().unwrap(), "/e/x")
                } else {
                    a
                }
            }),
            ("not a COSE_Sign1", |r, a| if r.method == "POST" { with_location(201, "junk", "/e/x") } else { a }),
            ("is not CBOR", |r, a| {
                if r.url.ends_with("transparency-configuration") { Response::new(200, vec![0xff, 0x00]) } else { a }
            }),
            ("not a P-256 key", |r, a| {
                if r.url.ends_with("/jwks") {
                    Response::new(200, r#"{"keys": [{"kty": "OKP", "x": "AA"}]}"#)
                } else {
                    a
                }
            }),
        ];
        for (needle, mutate) in cases {
            let transport = recorder(move |r: &Request| sync_service(r).map(|a| mutate(r, a)));
            let err = run_with(key_options(json!({})), VCON, &transport, &no_secret, &no_sleep).unwrap_err();
            assert!(err.message.contains(needle), "{needle}: {err}");
            assert!(!err.retryable);
        }
        let jwks_down =
            recorder(|r: &Request| if r.url.ends_with("/jwks") { Ok(Response::new(503, "")) } else { sync_service(r) });
        let err = run_with(key_options(json!({})), VCON, &jwks_down, &no_secret, &no_sleep).unwrap_err();
        assert!(err.retryable && err.message.contains("/jwks"), "{err}");
    }

    #[test]
    fn a_receipt_signed_with_another_algorithm_is_refused() {
        let transport = recorder(|r: &Request| {
            let answer = sync_service(r)?;
            if r.method != "POST" {
                return Ok(answer);
            }
            let mut message = CoseSign1::from_tagged_slice(&answer.body).unwrap();
            message.protected = coset::ProtectedHeader {
                original_data: None,
                header: Header { alg: Some(coset::Algorithm::Assigned(iana::Algorithm::ES384)), ..Default::default() },
            };
            Ok(with_location(201, message.to_tagged_vec().unwrap(), "/e/x"))
        });
        let err = run_with(key_options(json!({})), VCON, &transport, &no_secret, &no_sleep).unwrap_err();
        assert!(err.message.contains("not ES256"), "{err}");
    }

    #[test]
    fn bad_options_are_fatal_errors_naming_the_option() {
        for (key, value) in [
            ("scrapi_url", json!(8000)),
            ("signing_key_pem", json!(true)),
            ("signing_key_path", json!(["x"])),
            ("signing_key_secret", json!(1)),
            ("issuer", json!({})),
            ("key_id", json!(1)),
            ("vcon_operation", json!(null)),
            ("store_receipt", json!("yes")),
        ] {
            let mut options = key_options(json!({}));
            options[key] = value;
            let transport = recorder(sync_service);
            let result = run_with(options.clone(), VCON, &transport, &no_secret, &no_sleep);
            if key == "vcon_operation" {
                assert!(result.is_ok(), "null means the default");
                continue;
            }
            let err = result.unwrap_err();
            assert!(err.message.contains(&format!("option `{key}`")), "{options}: {err}");
            assert!(!err.retryable);
            assert!(transport.requests().is_empty());
        }
    }
}
