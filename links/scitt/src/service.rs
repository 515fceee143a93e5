//! The SCRAPI transparency service as the link talks to it: registration
//! (201, or 303 then polling), receipt download, JWKS discovery and receipt
//! verification.

use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ciborium::Value as Cbor;
use conserver_link_sdk::http::{HttpError, Request, Response, Transport};
use conserver_link_sdk::prelude::*;
use conserver_link_sdk::{log, python_json};
use coset::{CborSerializable, CoseSign1, TaggedCborSerializable, iana};
use p256::ecdsa::signature::Verifier;
use p256::ecdsa::{Signature, VerifyingKey};
use serde_json::Value;

use crate::Sleeper;
use crate::receipt::inclusion_root;

/// Request timeouts and polling, as in Python's `register_signed_statement`.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
const DISCOVERY_TIMEOUT: Duration = Duration::from_secs(10);
const POLL_INTERVAL: Duration = Duration::from_secs(10);
const POLL_ATTEMPTS: usize = 6;

/// A registered statement.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Registration {
    pub(crate) entry_id: Value,
    pub(crate) receipt: Vec<u8>,
}

/// Python's `str()` of an entry id.
pub(crate) fn entry_id_text(id: &Value) -> String {
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

pub(crate) struct Service<'a> {
    pub(crate) scrapi_url: &'a str,
    pub(crate) transport: &'a dyn Transport,
    pub(crate) sleep: Sleeper<'a>,
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
    pub(crate) fn register(&self, statement: &[u8]) -> Result<Registration, LinkError> {
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
    pub(crate) fn verify_receipt(&self, receipt: &[u8], statement_hash: &[u8]) -> Result<(), LinkError> {
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
#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::*;

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
}
