//! Test keys, the Python reference statements and receipts, and a SCRAPI
//! service stand-in shared by the link's tests.
#![allow(clippy::unwrap_used, clippy::expect_used)]

pub(crate) use std::cell::RefCell;
pub(crate) use std::time::Duration;

pub(crate) use base64::Engine as _;
pub(crate) use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
pub(crate) use ciborium::Value as Cbor;
pub(crate) use conserver_link_sdk::http::{HttpError, Recorder, Request, Response, Transport};
pub(crate) use conserver_link_sdk::prelude::*;
pub(crate) use conserver_link_sdk::python_json;
pub(crate) use conserver_link_sdk::secrets::SecretError;
pub(crate) use coset::{CoseSign1, CoseSign1Builder, Header, Label, TaggedCborSerializable, iana};
pub(crate) use p256::ecdsa::signature::{Signer, Verifier};
pub(crate) use p256::ecdsa::{Signature, SigningKey};
pub(crate) use serde_json::{Map, Value, json};
pub(crate) use sha2::{Digest, Sha256};

pub(crate) use crate::service::*;
pub(crate) use crate::signing_key::*;
pub(crate) use crate::statement::*;
pub(crate) use crate::{Scitt, SecretReader, Sleeper};

// Test keys derived from fixed scalars (0x22… for the conserver, 0x11… for
// the transparency service); never use them for anything else.
pub(crate) const KEY_SEC1: &str = "-----BEGIN EC PRIVATE KEY-----
MHcCAQEEICIiIiIiIiIiIiIiIiIiIiIiIiIiIiIiIiIiIiIiIiIioAoGCCqGSM49AwEHoUQDQgAE
1lqTl3yqPRsIGFL/V6eeRl8WYFdzBLrq1QXdOkhYnPNQGF6JU3LfYiHqOhN1V+Rz/dtnVfBb1QfD
xTP86ckShQ==
-----END EC PRIVATE KEY-----
";
pub(crate) const KEY_PKCS8: &str = "-----BEGIN PRIVATE KEY-----
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgIiIiIiIiIiIiIiIi
IiIiIiIiIiIiIiIiIiIiIiIiIiKhRANCAATWWpOXfKo9GwgYUv9Xp55GXxZgV3ME
uurVBd06SFic81AYXolTct9iIeo6E3VX5HP922dV8FvVB8PFM/zpyRKF
-----END PRIVATE KEY-----
";
/// The same key as python-ecdsa writes PKCS#8 (version 2, with the public key).
pub(crate) const KEY_PKCS8_V2: &str = "-----BEGIN PRIVATE KEY-----
MIGHAgEBMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgIiIiIiIiIiIiIiIiIiIiIiIiIiIi
IiIiIiIiIiIiIiKhRANCAATWWpOXfKo9GwgYUv9Xp55GXxZgV3MEuurVBd06SFic81AYXolTct9i
Ieo6E3VX5HP922dV8FvVB8PFM/zpyRKF
-----END PRIVATE KEY-----
";
/// `base64 -w0` of [`KEY_SEC1`], as `signing_key_pem` takes it.
pub(crate) const KEY_SEC1_B64: &str = "LS0tLS1CRUdJTiBFQyBQUklWQVRFIEtFWS0tLS0tCk1IY0NBUUVFSUNJaUlpSWlJaUlpSWlJaUlpSWlJaUlpSWlJaUlpSWlJaUlpSWlJaUlpSWlvQW9HQ0NxR1NNNDlBd0VIb1VRRFFnQUUKMWxxVGwzeXFQUnNJR0ZML1Y2ZWVSbDhXWUZkekJMcnExUVhkT2toWW5QTlFHRjZKVTNMZllpSHFPaE4xVitSei9kdG5WZkJiMVFmRAp4VFA4NmNrU2hRPT0KLS0tLS1FTkQgRUMgUFJJVkFURSBLRVktLS0tLQo=";
pub(crate) const KEY_P384: &str = "-----BEGIN EC PRIVATE KEY-----
MIGkAgEBBDAzMzMzMzMzMzMzMzMzMzMzMzMzMzMzMzMzMzMzMzMzMzMzMzMzMzMzMzMzMzMzMzOg
BwYFK4EEACKhZANiAASzS4wGMVVwId1dp5ZLD2RUQ6lpoa+eDjPB69HpEj0yntfwe5431rJJlzUd
o2Vt5TK+HTKOcABcDnWfkzINu8wLZMDG1dfCEi+jZJ8g7vBXlcBwJHvIfYGu26awPPJE3dM=
-----END EC PRIVATE KEY-----
";
pub(crate) const EC_PARAMETERS: &str = "-----BEGIN EC PARAMETERS-----\nBggqhkjOPQMBBw==\n-----END EC PARAMETERS-----\n";

pub(crate) const UUID: &str = "0190f0a1-aaaa-7bbb-8ccc-123456789abc";
/// Two parties with `tel`, one without.
pub(crate) const VCON: &str = r#"{"uuid":"0190f0a1-aaaa-7bbb-8ccc-123456789abc","vcon":"0.4.0","created_at":"2026-01-02T03:04:05+00:00","parties":[{"tel":"+15551234567","name":"Alice"},{"mailto":"bob@example.com"},{"tel":"+15557654321"}],"dialog":[{"type":"text","body":"héllo","duration":1.5}],"attachments":[]}"#;
/// Python: `hashlib.sha256(json.dumps(vcon).encode()).hexdigest()`.
pub(crate) const VCON_HASH: &str = "2505ebcc54140217f4cc58bc97878ffa9bd8eb0c601ae12acede056c58db4ce0";
/// Python's `create_hashed_signed_statement` (pycose 1.1, python-ecdsa 0.19)
/// with [`KEY_SEC1`] for the first party of [`VCON`].
pub(crate) const PY_STATEMENT_TEL1: &str = "d28458d9a70126044f636f6e7365727665722d6b65792d31391a91756170706c69636174696f6e2f76636f6e2b6a736f6e0da30169636f6e736572766572027074656c3a2b313535353132333435363708a101a401022001215820d65a93977caa3d1b081852ff57a79e465f1660577304baead505dd3a48589cf322582050185e895372df6221ea3a137557e473fddb6755f05bd507c3c533fce9c91285391a8f2f391a9060391a93a26e76636f6e5f6f7065726174696f6e6c76636f6e5f637265617465646970617274795f74656c6c2b3135353531323334353637a0585a323530356562636335343134303231376634636335386263393738373866666139626438656230633630316165313261636564653035366335386462346365303a76636f6e5f637265617465643a2b31353535313233343536375840d482a53fd4e8d0c5216184890a303ae6e505182dfbd944083b490e2585489d39b9c36a55a7adbe74a30be669cad88eedf434607a16a65a69fe8812d7c58e8259";
pub(crate) const PY_STATEMENT_TEL2: &str = "d28458d9a70126044f636f6e7365727665722d6b65792d31391a91756170706c69636174696f6e2f76636f6e2b6a736f6e0da30169636f6e736572766572027074656c3a2b313535353736353433323108a101a401022001215820d65a93977caa3d1b081852ff57a79e465f1660577304baead505dd3a48589cf322582050185e895372df6221ea3a137557e473fddb6755f05bd507c3c533fce9c91285391a8f2f391a9060391a93a26e76636f6e5f6f7065726174696f6e6c76636f6e5f637265617465646970617274795f74656c6c2b3135353537363534333231a0585a323530356562636335343134303231376634636335386263393738373866666139626438656230633630316165313261636564653035366335386462346365303a76636f6e5f637265617465643a2b3135353537363534333231584021f678a0fa18f5aa737ea28f9c4065eaf6140b959f82d211b0fa0705e33d2e04dd8e628c6b1760e817c04ae1c49dbdd7843e56ef0bf57fc4d7eae191601f381c";
/// The `vcon://` statement with issuer `issuer-x`, an empty `key_id` and
/// operation `vcon_enhanced`.
pub(crate) const PY_STATEMENT_FALLBACK: &str = "d28458cfa701260440391a91756170706c69636174696f6e2f76636f6e2b6a736f6e0da301686973737565722d7802782b76636f6e3a2f2f30313930663061312d616161612d376262622d386363632d31323334353637383961626308a101a401022001215820d65a93977caa3d1b081852ff57a79e465f1660577304baead505dd3a48589cf322582050185e895372df6221ea3a137557e473fddb6755f05bd507c3c533fce9c91285391a8f2f391a9060391a93a16e76636f6e5f6f7065726174696f6e6d76636f6e5f656e68616e636564a0584e323530356562636335343134303231376634636335386263393738373866666139626438656230633630316165313261636564653035366335386462346365303a76636f6e5f656e68616e636564584052f851b7e030a6cdfc5b9a9011ef66a0fd77080576d4fed030775a8c96318cfdf873f357c994850cbdf26e6f5a3db977d585950cac5a38a72ce4b4804e79e6a4";
/// A receipt made with pycose for the first party's statement (leaf 3 of a
/// 5-leaf tree), which the Python link's `_verify_cose_receipt` accepts.
pub(crate) const PY_RECEIPT_TEL1: &str = "d2844ca30126044373766319018b01a119018ca12081586a830503835820fcf0a6c700dd13e274b6fba8deea8dd9b26e4eedde3495717cac8408c9c5177f5820a20bf9a7cc2dc8a08f5f415a71b19f6ac427bab54d24eec868b5d3103449953a58204f35212d12f9ad2036492c95f1fe79baf4ec7bd9bef3dffa7579f2293ff546a4f65840b34ec9ed25619e991549272eb4fcc4435f68fed413f234a03a82a6f2fa843ce1c8c89b9c4ace02af724293949487086a6856927e8058c0425b10d12927c0e2f7";

pub(crate) fn unhex(text: &str) -> Vec<u8> {
    (0..text.len()).step_by(2).map(|i| u8::from_str_radix(&text[i..i + 2], 16).unwrap()).collect()
}

pub(crate) fn conserver_key() -> SigningKey {
    signing_key_from_pem(KEY_SEC1).unwrap()
}

pub(crate) fn service_key() -> SigningKey {
    SigningKey::from_slice(&[0x11; 32]).unwrap()
}

pub(crate) fn sha(data: &[u8]) -> Vec<u8> {
    Sha256::digest(data).to_vec()
}

pub(crate) fn node(left: &[u8], right: &[u8]) -> Vec<u8> {
    sha(&[&[0x01][..], left, right].concat())
}

/// The largest power of two below `n` (RFC 9162's split point).
pub(crate) fn split(n: usize) -> usize {
    let mut k = 1;
    while k * 2 < n {
        k *= 2;
    }
    k
}

/// RFC 9162 §2.1.1 Merkle tree hash, by its recursive definition.
pub(crate) fn mth(leaves: &[Vec<u8>]) -> Vec<u8> {
    if leaves.len() == 1 {
        return leaves[0].clone();
    }
    let k = split(leaves.len());
    node(&mth(&leaves[..k]), &mth(&leaves[k..]))
}

/// RFC 9162 §2.1.3.1 inclusion path.
pub(crate) fn path(m: usize, leaves: &[Vec<u8>]) -> Vec<Vec<u8>> {
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
pub(crate) fn receipt_for(payload: &[u8], index: usize, size: usize, key: &SigningKey) -> Vec<u8> {
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

pub(crate) fn jwks(key: &SigningKey) -> String {
    let point = key.verifying_key().to_sec1_point(false);
    let x = URL_SAFE_NO_PAD.encode(point.x().unwrap());
    let y = URL_SAFE_NO_PAD.encode(point.y().unwrap());
    json!({"keys": [{"kty": "EC", "crv": "P-256", "kid": "svc", "x": x, "y": y}]}).to_string()
}

pub(crate) fn cbor_bytes(value: &Cbor) -> Vec<u8> {
    let mut out = Vec::new();
    ciborium::into_writer(value, &mut out).unwrap();
    out
}

pub(crate) fn transparency_configuration(jwks_uri: Option<&str>) -> Vec<u8> {
    let mut entries = vec![(Cbor::Text("issuer".into()), Cbor::Text("scittles".into()))];
    if let Some(uri) = jwks_uri {
        entries.push((Cbor::Text("jwks_uri".into()), Cbor::Text(uri.into())));
    }
    cbor_bytes(&Cbor::Map(entries))
}

pub(crate) fn with_location(status: u16, body: impl Into<Vec<u8>>, location: &str) -> Response {
    let mut response = Response::new(status, body);
    response.headers.push(("location".into(), location.into()));
    response
}

/// The payload a statement signs (its COSE payload).
/// (coset refuses the empty `kid` Python writes for an empty `key_id`, so
/// this reads the CBOR directly.)
pub(crate) fn statement_payload(statement: &[u8]) -> Vec<u8> {
    statement_parts(statement).1
}

/// The protected header map and the payload of a tagged COSE_Sign1.
pub(crate) fn statement_parts(statement: &[u8]) -> (Vec<(Cbor, Cbor)>, Vec<u8>) {
    let Cbor::Tag(18, message) = ciborium::from_reader::<Cbor, _>(statement).unwrap() else { panic!("untagged") };
    let items = message.as_array().unwrap();
    let protected: Cbor = ciborium::from_reader(items[0].as_bytes().unwrap().as_slice()).unwrap();
    (protected.as_map().unwrap().clone(), items[2].as_bytes().unwrap().clone())
}

/// The receipt [`sync_service`] gives for `payload` (its position in a
/// 5-leaf tree depends on the payload).
pub(crate) fn sync_receipt(payload: &[u8]) -> Vec<u8> {
    let index = payload.last().copied().unwrap_or_default() as usize % 4;
    receipt_for(payload, index, 5, &service_key())
}

/// A SCRAPI service that registers synchronously (201) with receipts signed
/// by the service key, and answers discovery.
pub(crate) fn sync_service(request: &Request) -> Result<Response, HttpError> {
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
pub(crate) fn recorder<F: Fn(&Request) -> Result<Response, HttpError>>(
    answer: F,
) -> Recorder<impl Fn(&Request, usize) -> Result<Response, HttpError>> {
    Recorder::new(move |request, _| answer(request))
}

pub(crate) fn no_secret(_: &str) -> Result<String, SecretError> {
    Err(SecretError::NotGranted)
}

pub(crate) fn no_sleep(_: Duration) {}

pub(crate) fn run_with(
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

pub(crate) fn key_options(extra: Value) -> Value {
    let mut options = json!({"signing_key_pem": KEY_SEC1_B64});
    for (k, v) in extra.as_object().unwrap() {
        options[k] = v.clone();
    }
    options
}

pub(crate) fn summary(requests: &[Request]) -> Vec<(String, String)> {
    requests.iter().map(|r| (r.method.clone(), r.url.clone())).collect()
}

pub(crate) fn pair(method: &str, url: &str) -> (String, String) {
    (method.to_string(), url.to_string())
}

pub(crate) fn stored_receipts(verdict: &Verdict) -> (Map<String, Value>, Value) {
    let vcon = verdict.vcon().unwrap();
    let analysis = vcon.get("analysis").unwrap();
    let entry = analysis[0].as_object().unwrap().clone();
    let body: Value = serde_json::from_str(entry["body"].as_str().unwrap()).unwrap();
    (entry, body)
}
