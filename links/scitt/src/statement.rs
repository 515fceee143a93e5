//! The signed statement: Python's `vcon.hash` of the vCon and the COSE_Sign1
//! hashed envelope `create_hashed_signed_statement` builds (ES256, byte-identical
//! to pycose for the same key).

use ciborium::Value as Cbor;
use conserver_link_sdk::prelude::*;
use conserver_link_sdk::python_json;
use coset::{CoseSign1Builder, Header, Label, TaggedCborSerializable, iana};
use p256::ecdsa::signature::Signer;
use p256::ecdsa::{Signature, SigningKey};
use serde_json::Value;
use sha2::{Digest, Sha256};

const PRE_IMAGE_CONTENT_TYPE: &str = "application/vcon+json";

/// Protected-header labels of the hashed-envelope signed statement.
pub(crate) const HEADER_KID: i64 = 4;
pub(crate) const HEADER_CWT_CLAIMS: i64 = 13;
const HEADER_PAYLOAD_HASH_ALG: i64 = -6800;
const HEADER_PAYLOAD_LOCATION: i64 = -6801;
const HEADER_PAYLOAD_PRE_CONTENT_TYPE: i64 = -6802;
pub(crate) const HEADER_META_MAP: i64 = -6804;
/// COSE algorithm id of SHA-256.
const COSE_ALG_SHA256: i64 = -16;
pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Python's `vcon.hash`: SHA-256 hex of `json.dumps(vcon_dict)`.
pub fn vcon_hash(vcon: &Vcon) -> String {
    hex(&Sha256::digest(python_json::dumps(&Value::Object(vcon.to_map())).as_bytes()))
}

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

pub(crate) fn int(value: i64) -> Cbor {
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
#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::*;

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
}
