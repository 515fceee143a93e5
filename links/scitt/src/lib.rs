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

#[cfg(test)]
mod link_tests;
mod receipt;
mod service;
mod signing_key;
mod statement;
#[cfg(test)]
mod test_support;

use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use conserver_link_sdk::http::{Client, Transport};
use conserver_link_sdk::prelude::*;
use conserver_link_sdk::secrets::{self, SecretError};
use conserver_link_sdk::{log, python_json};
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};

use service::{Service, entry_id_text};
use signing_key::load_signing_key;

pub use receipt::compute_root;
pub use signing_key::signing_key_from_pem;
pub use statement::{Statement, signed_statement, vcon_hash};

/// The `scitt` link.
pub struct Scitt;

/// Reads a granted secret (the SDK's `secrets::get`; a closure in tests).
pub type SecretReader<'a> = &'a dyn Fn(&str) -> Result<String, SecretError>;
/// Waits between polls (`std::thread::sleep`; a recorder in tests).
pub type Sleeper<'a> = &'a dyn Fn(Duration);

const DEFAULT_SCRAPI_URL: &str = "http://scittles:8000";
const DEFAULT_SIGNING_KEY_PATH: &str = "/etc/scitt/signing-key.pem";
const DEFAULT_SIGNING_KEY_SECRET: &str = "SCITT_SIGNING_KEY";

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
