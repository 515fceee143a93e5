//! A SCRAPI transparency service stand-in (what SCITTLEs answers to the `scitt`
//! link): it checks each signed statement's ES256 signature against the key in its
//! CWT claims, appends the statement to an RFC 9162 Merkle log, and issues COSE
//! receipts (inclusion proof in unprotected header 396/-1, the tree root as the
//! detached payload) signed by its own P-256 key, published as a JWKS through
//! `/.well-known/transparency-configuration`. Registration is synchronous (201) or
//! through an operation to poll (303), and a forging service signs receipts with a
//! key other than the one it publishes.

use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ciborium::Value as Cbor;
use coset::{CoseSign1, CoseSign1Builder, Header, Label, TaggedCborSerializable, iana};
use p256::ecdsa::signature::{Signer, Verifier};
use p256::ecdsa::{Signature, SigningKey, VerifyingKey};
use serde_json::json;
use sha2::{Digest, Sha256};

/// How the service answers `POST /entries`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// 201 with the receipt in the body.
    Synchronous,
    /// 303 to an operation, which answers 200 with the `entryID` once polled.
    Operation,
    /// 201, but the receipt is signed with a key the service does not publish.
    Forging,
}

/// One registered statement.
#[derive(Debug, Clone)]
pub struct Entry {
    /// The statement's payload (`<vcon hash>:<operation>[:<tel>]`).
    pub payload: String,
    /// The CWT subject.
    pub subject: String,
    /// The public key the statement was signed with (SEC1 uncompressed).
    pub signer: Vec<u8>,
    /// The receipt issued for it.
    pub receipt: Vec<u8>,
}

struct Log {
    mode: Mode,
    key: SigningKey,
    leaves: Vec<Vec<u8>>,
    entries: Vec<Entry>,
}

/// A running stand-in.
pub struct Scrapi {
    /// Its loopback port.
    pub port: u16,
    log: Arc<Mutex<Log>>,
}

impl Scrapi {
    pub async fn start(mode: Mode) -> Scrapi {
        let key = SigningKey::from_slice(&[0x5c; 32]).unwrap();
        let log = Arc::new(Mutex::new(Log { mode, key, leaves: Vec::new(), entries: Vec::new() }));
        let app = axum::Router::new()
            .route("/entries", post(register))
            .route("/entries/{id}", get(receipt))
            .route("/operations/{id}", get(operation))
            .route("/.well-known/transparency-configuration", get(configuration))
            .route("/jwks", get(jwks))
            .with_state(log.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Scrapi { port, log }
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Everything registered so far, in order.
    pub fn entries(&self) -> Vec<Entry> {
        self.log.lock().unwrap().entries.clone()
    }
}

type Shared = State<Arc<Mutex<Log>>>;

fn sha(parts: &[&[u8]]) -> Vec<u8> {
    let mut hasher = Sha256::new();
    for part in parts {
        hasher.update(part);
    }
    hasher.finalize().to_vec()
}

/// RFC 9162 §2.1.1: the largest power of two smaller than `n`.
fn split(n: usize) -> usize {
    let mut k = 1;
    while k * 2 < n {
        k *= 2;
    }
    k
}

/// RFC 9162 §2.1.1 Merkle tree hash.
fn tree_hash(leaves: &[Vec<u8>]) -> Vec<u8> {
    if leaves.len() == 1 {
        return leaves[0].clone();
    }
    let k = split(leaves.len());
    sha(&[&[0x01], &tree_hash(&leaves[..k]), &tree_hash(&leaves[k..])])
}

/// RFC 9162 §2.1.3.1 inclusion path of leaf `m`.
fn inclusion_path(m: usize, leaves: &[Vec<u8>]) -> Vec<Vec<u8>> {
    if leaves.len() == 1 {
        return Vec::new();
    }
    let k = split(leaves.len());
    let (mut path, other) = if m < k {
        (inclusion_path(m, &leaves[..k]), tree_hash(&leaves[k..]))
    } else {
        (inclusion_path(m - k, &leaves[k..]), tree_hash(&leaves[..k]))
    };
    path.push(other);
    path
}

fn int(value: i64) -> Cbor {
    Cbor::Integer(value.into())
}

fn find(map: &[(Cbor, Cbor)], label: i64) -> Option<&Cbor> {
    map.iter().find(|(k, _)| k.as_integer() == Some(label.into())).map(|(_, v)| v)
}

/// The statement's subject and signing key, from its CWT claims (13: {2: sub,
/// 8: {1: COSE_Key}}), if its signature verifies with that key.
fn verified_signer(statement: &CoseSign1) -> Result<(String, VerifyingKey), String> {
    let claims = statement
        .protected
        .header
        .rest
        .iter()
        .find(|(label, _)| *label == Label::Int(13))
        .and_then(|(_, value)| value.as_map())
        .ok_or("no CWT claims")?;
    let subject = find(claims, 2).and_then(Cbor::as_text).ok_or("no subject")?.to_string();
    let cose_key = find(claims, 8).and_then(Cbor::as_map).and_then(|cnf| find(cnf, 1)).and_then(Cbor::as_map);
    let cose_key = cose_key.ok_or("no confirmation key")?;
    let coordinate = |label| find(cose_key, label).and_then(Cbor::as_bytes).cloned().ok_or("bad key");
    let sec1 = [vec![0x04], coordinate(-2)?, coordinate(-3)?].concat();
    let key = VerifyingKey::from_sec1_bytes(&sec1).map_err(|e| e.to_string())?;
    statement
        .verify_signature(b"", |signature, data| {
            let signature = Signature::from_slice(signature).map_err(|e| e.to_string())?;
            key.verify(data, &signature).map_err(|e| e.to_string())
        })
        .map_err(|e| format!("bad statement signature: {e}"))?;
    Ok((subject, key))
}

fn issue_receipt(log: &mut Log, payload: &[u8]) -> Vec<u8> {
    log.leaves.push(sha(&[&[0x00], &sha(&[payload])]));
    let index = log.leaves.len() - 1;
    let root = tree_hash(&log.leaves);
    let proof = Cbor::Array(vec![
        int(log.leaves.len() as i64),
        int(index as i64),
        Cbor::Array(inclusion_path(index, &log.leaves).into_iter().map(Cbor::Bytes).collect()),
    ]);
    let mut proof_bytes = Vec::new();
    ciborium::into_writer(&proof, &mut proof_bytes).unwrap();
    let signer = if log.mode == Mode::Forging { SigningKey::from_slice(&[0x77; 32]).unwrap() } else { log.key.clone() };
    let protected = Header {
        alg: Some(coset::Algorithm::Assigned(iana::Algorithm::ES256)),
        rest: vec![(Label::Int(395), int(1))], // verifiable data structure: RFC9162_SHA256
        ..Default::default()
    };
    let unprotected = Header {
        rest: vec![(Label::Int(396), Cbor::Map(vec![(int(-1), Cbor::Array(vec![Cbor::Bytes(proof_bytes)]))]))],
        ..Default::default()
    };
    CoseSign1Builder::new()
        .protected(protected)
        .unprotected(unprotected)
        .create_detached_signature(&root, b"", |data| {
            let signature: Signature = signer.sign(data);
            signature.to_bytes().to_vec()
        })
        .build()
        .to_tagged_vec()
        .unwrap()
}

async fn register(State(log): Shared, headers: axum::http::HeaderMap, body: Bytes) -> Response {
    if headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()) != Some("application/cose") {
        return (StatusCode::UNSUPPORTED_MEDIA_TYPE, "expected application/cose").into_response();
    }
    let statement = match CoseSign1::from_tagged_slice(&body) {
        Ok(statement) => statement,
        Err(e) => return (StatusCode::BAD_REQUEST, format!("not a tagged COSE_Sign1: {e:?}")).into_response(),
    };
    let (subject, signer) = match verified_signer(&statement) {
        Ok(found) => found,
        Err(e) => return (StatusCode::BAD_REQUEST, e).into_response(),
    };
    let payload = statement.payload.clone().unwrap_or_default();
    let mut log = log.lock().unwrap();
    let receipt = issue_receipt(&mut log, &payload);
    log.entries.push(Entry {
        payload: String::from_utf8_lossy(&payload).into_owned(),
        subject,
        signer: signer.to_sec1_point(false).as_bytes().to_vec(),
        receipt: receipt.clone(),
    });
    let id = log.entries.len() - 1;
    match log.mode {
        Mode::Operation => {
            (StatusCode::SEE_OTHER, [(header::LOCATION, format!("/operations/op-{id}"))]).into_response()
        }
        Mode::Synchronous | Mode::Forging => (
            StatusCode::CREATED,
            [(header::LOCATION, format!("/entries/{id}")), (header::CONTENT_TYPE, "application/cose".into())],
            receipt,
        )
            .into_response(),
    }
}

async fn operation(Path(id): Path<String>) -> Response {
    let entry = id.trim_start_matches("op-");
    axum::Json(json!({"operationID": id, "status": "succeeded", "entryID": entry})).into_response()
}

async fn receipt(State(log): Shared, Path(id): Path<String>) -> Response {
    let log = log.lock().unwrap();
    match id.parse::<usize>().ok().and_then(|i| log.entries.get(i)) {
        Some(entry) => ([(header::CONTENT_TYPE, "application/cose")], entry.receipt.clone()).into_response(),
        None => (StatusCode::NOT_FOUND, "no such entry").into_response(),
    }
}

async fn configuration() -> Response {
    let config = Cbor::Map(vec![(Cbor::Text("issuer".into()), Cbor::Text("scittles-stand-in".into()))]);
    let mut bytes = Vec::new();
    ciborium::into_writer(&config, &mut bytes).unwrap();
    ([(header::CONTENT_TYPE, "application/cbor")], bytes).into_response()
}

async fn jwks(State(log): Shared) -> Response {
    let point = log.lock().unwrap().key.verifying_key().to_sec1_point(false);
    let x = URL_SAFE_NO_PAD.encode(point.x().unwrap());
    let y = URL_SAFE_NO_PAD.encode(point.y().unwrap());
    axum::Json(json!({"keys": [{"kty": "EC", "crv": "P-256", "kid": "stand-in", "x": x, "y": y}]})).into_response()
}
