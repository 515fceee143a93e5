//! `storage.mongo` through the official driver against a local server speaking the
//! MongoDB wire protocol (OP_MSG with document sequences, and OP_QUERY for a
//! legacy handshake) for the commands the driver sends here: `hello`/`isMaster`,
//! `ping`, `update` (upsert with `$set`), `find` by `_id`, `delete`, `endSessions`.
//! It keeps real BSON documents, so what the backend writes is checked as BSON.
//! No MongoDB server can be installed here.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use chrono::{DateTime, SecondsFormat, Utc};
use mongodb::bson::{self, Bson, Document, doc};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::common::{fixtures, storage};

const OP_REPLY: i32 = 1;
const OP_QUERY: i32 = 2004;
const OP_MSG: i32 = 2013;

pub(crate) type Store = Arc<Mutex<BTreeMap<String, Document>>>;

fn i32_at(bytes: &[u8], at: usize) -> i32 {
    i32::from_le_bytes(bytes[at..at + 4].try_into().unwrap())
}

fn cstring_end(bytes: &[u8], at: usize) -> usize {
    at + bytes[at..].iter().position(|b| *b == 0).unwrap()
}

/// The command of an OP_MSG body, with document sequences folded in as arrays.
fn op_msg_command(body: &[u8]) -> Document {
    let flags = u32::from_le_bytes(body[0..4].try_into().unwrap());
    let end = if flags & 1 == 1 { body.len() - 4 } else { body.len() };
    let mut at = 4;
    let mut command = Document::new();
    let mut sequences = Vec::new();
    while at < end {
        let kind = body[at];
        at += 1;
        let size = i32_at(body, at) as usize;
        if kind == 0 {
            command = Document::from_reader(&body[at..at + size]).unwrap();
        } else {
            let name_end = cstring_end(body, at + 4);
            let name = String::from_utf8(body[at + 4..name_end].to_vec()).unwrap();
            let mut documents = Vec::new();
            let mut doc_at = name_end + 1;
            while doc_at < at + size {
                let len = i32_at(body, doc_at) as usize;
                documents.push(Bson::Document(Document::from_reader(&body[doc_at..doc_at + len]).unwrap()));
                doc_at += len;
            }
            sequences.push((name, documents));
        }
        at += size;
    }
    for (name, documents) in sequences {
        command.insert(name, Bson::Array(documents));
    }
    command
}

fn answer(command: &Document, store: &Store) -> Document {
    let name = command.keys().next().cloned().unwrap_or_default();
    let collection = command.get_str(&name).unwrap_or("vcons").to_string();
    let db = command.get_str("$db").unwrap_or("admin").to_string();
    let mut store = store.lock().unwrap();
    match name.to_lowercase().as_str() {
        "hello" | "ismaster" => doc! {
            "helloOk": true, "ismaster": true, "isWritablePrimary": true,
            "maxBsonObjectSize": 16_777_216, "maxMessageSizeBytes": 48_000_000, "maxWriteBatchSize": 100_000,
            "localTime": bson::DateTime::now(), "minWireVersion": 0, "maxWireVersion": 21,
            "connectionId": 1, "readOnly": false, "ok": 1.0,
        },
        "ping" | "endsessions" | "killcursors" => doc! {"ok": 1.0},
        "update" => {
            let mut upserted = Vec::new();
            let mut n = 0;
            for (index, update) in command.get_array("updates").unwrap().iter().enumerate() {
                let update = update.as_document().unwrap();
                let id = update.get_document("q").unwrap().get_str("_id").unwrap().to_string();
                let set = update.get_document("u").unwrap().get_document("$set").unwrap().clone();
                assert!(update.get_bool("upsert").unwrap_or(false), "the backend upserts");
                let existing = store.entry(id.clone()).or_insert_with(|| {
                    upserted.push(doc! {"index": index as i32, "_id": &id});
                    doc! {"_id": &id}
                });
                for (key, value) in set {
                    existing.insert(key, value);
                }
                n += 1;
            }
            let modified = n - upserted.len() as i32;
            doc! {"n": n, "nModified": modified, "upserted": upserted, "ok": 1.0}
        }
        "find" => {
            let id = command.get_document("filter").unwrap().get_str("_id").unwrap();
            let batch: Vec<Document> = store.get(id).cloned().into_iter().collect();
            doc! {"cursor": {"firstBatch": batch, "id": 0_i64, "ns": format!("{db}.{collection}")}, "ok": 1.0}
        }
        "delete" => {
            let mut n = 0;
            for delete in command.get_array("deletes").unwrap() {
                let id = delete.as_document().unwrap().get_document("q").unwrap().get_str("_id").unwrap();
                n += i32::from(store.remove(id).is_some());
            }
            doc! {"n": n, "ok": 1.0}
        }
        other => doc! {"ok": 0.0, "errmsg": format!("no such command: '{other}'"), "code": 59},
    }
}

async fn connection(mut socket: TcpStream, store: Store) {
    let mut next_id: i32 = 1;
    loop {
        let mut header = [0_u8; 16];
        if socket.read_exact(&mut header).await.is_err() {
            return;
        }
        let (length, request_id, opcode) = (i32_at(&header, 0), i32_at(&header, 4), i32_at(&header, 12));
        let mut body = vec![0_u8; length as usize - 16];
        socket.read_exact(&mut body).await.unwrap();
        let (reply_opcode, payload) = match opcode {
            OP_MSG => {
                let reply = answer(&op_msg_command(&body), &store);
                let mut payload = vec![0, 0, 0, 0, 0]; // flags, then a kind-0 section
                reply.to_writer(&mut payload).unwrap();
                (OP_MSG, payload)
            }
            OP_QUERY => {
                let query_at = cstring_end(&body, 4) + 1 + 8;
                let query = Document::from_reader(&body[query_at..]).unwrap();
                let reply = answer(&query, &store);
                let mut payload = Vec::new();
                payload.extend(0_i32.to_le_bytes()); // response flags
                payload.extend(0_i64.to_le_bytes()); // cursor id
                payload.extend(0_i32.to_le_bytes()); // starting from
                payload.extend(1_i32.to_le_bytes()); // number returned
                reply.to_writer(&mut payload).unwrap();
                (OP_REPLY, payload)
            }
            other => panic!("unexpected opcode {other}"),
        };
        let mut message = Vec::new();
        message.extend((16 + payload.len() as i32).to_le_bytes());
        message.extend(next_id.to_le_bytes());
        message.extend(request_id.to_le_bytes());
        message.extend(reply_opcode.to_le_bytes());
        message.extend(payload);
        next_id += 1;
        if socket.write_all(&message).await.is_err() {
            return;
        }
    }
}

/// Answer as MongoDB on `listener` until the process ends.
pub(crate) async fn serve(listener: tokio::net::TcpListener) -> Store {
    let store: Store = Arc::default();
    let shared = store.clone();
    tokio::spawn(async move {
        while let Ok((socket, _)) = listener.accept().await {
            tokio::spawn(connection(socket, shared.clone()));
        }
    });
    store
}

async fn start() -> (String, Store) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("mongodb://{}/?serverSelectionTimeoutMS=2000", listener.local_addr().unwrap());
    (url, serve(listener).await)
}

/// What Python's backend hands back: `created_at` and dialog starts as
/// `isoformat()` of a millisecond-precision UTC datetime.
fn python_form(vcon: &Value) -> Value {
    let parse = |text: &str| {
        DateTime::parse_from_rfc3339(text).map(|d| d.timestamp_millis()).ok().or_else(|| {
            chrono::NaiveDateTime::parse_from_str(text, "%Y-%m-%dT%H:%M:%S%.f")
                .ok()
                .map(|d| d.and_utc().timestamp_millis())
        })
    };
    let iso = |value: &Value| match value.as_str().and_then(parse) {
        Some(millis) => {
            let millis = DateTime::<Utc>::from_timestamp_millis(millis).unwrap();
            let text = millis.to_rfc3339_opts(SecondsFormat::Micros, false);
            Value::String(text.replace(".000000+00:00", "+00:00"))
        }
        None => value.clone(),
    };
    let mut out = vcon.clone();
    if let Some(created) = vcon.get("created_at") {
        out["created_at"] = iso(created);
    }
    if let Some(dialogs) = out.get_mut("dialog").and_then(Value::as_array_mut) {
        for dialog in dialogs {
            if let Some(start) = dialog.get("start").cloned() {
                dialog["start"] = iso(&start);
            }
        }
    }
    out
}

#[tokio::test]
async fn every_fixture_round_trips_with_dates_stored_as_bson_dates() {
    let (url, store) = start().await;
    let mongo = storage("storage.mongo", json!({"url": url, "database": "conserver", "collection": "vcons"}));
    for (uuid, text) in fixtures() {
        mongo.save(&uuid, &text).await.unwrap_or_else(|e| panic!("{uuid}: {e}"));
        mongo.save(&uuid, &text).await.unwrap(); // an upsert, not a second document
        {
            let store = store.lock().unwrap();
            let stored = &store[&uuid];
            assert_eq!(stored.get_str("_id").unwrap(), uuid);
            let written = serde_json::from_str::<Value>(&text).unwrap()["created_at"].clone();
            if written.as_str().is_some_and(|t| !t.is_empty()) {
                assert!(
                    matches!(stored.get("created_at"), Some(Bson::DateTime(_))),
                    "{uuid}: created_at {written} is a date"
                );
            }
        }
        let vcon: Value = serde_json::from_str(&text).unwrap();
        let back: Value = serde_json::from_str(&mongo.get(&uuid).await.unwrap().unwrap()).unwrap();
        assert_eq!(back, python_form(&vcon), "{uuid}");
        assert!(mongo.delete(&uuid).await.unwrap());
        assert_eq!(mongo.get(&uuid).await.unwrap(), None);
        assert!(!mongo.delete(&uuid).await.unwrap());
    }
}

#[tokio::test]
async fn a_server_that_is_down_is_a_storage_error() {
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let url = format!("mongodb://127.0.0.1:{closed}/?serverSelectionTimeoutMS=300&connectTimeoutMS=300");
    let mongo = storage("storage.mongo", json!({"url": url}));
    let error = mongo.save("018f0000-0000-7000-8000-000000000003", "{}").await.unwrap_err();
    assert!(error.to_string().contains("under-test"), "{error}");
}

#[tokio::test]
async fn the_read_fallback_skips_write_only_backends_and_finds_the_vcon_in_mongo() {
    use conserver_config::StorageDef;
    let (url, _store) = start().await;
    let def = |module: &str, options: Value| StorageDef { module: module.into(), options: Some(options) };
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let storages = vec![
        conserver_storage::build(
            "es",
            &def("storage.elasticsearch", json!({"url": format!("http://127.0.0.1:{closed}")})),
        )
        .unwrap(),
        conserver_storage::build(
            "milvus",
            &def("storage.milvus", json!({"host": "127.0.0.1", "port": closed, "api_key": "k"})),
        )
        .unwrap(),
        conserver_storage::build("mongo", &def("storage.mongo", json!({"url": url}))).unwrap(),
    ];
    let (uuid, text) = fixtures().into_iter().next().unwrap();
    storages[2].save(&uuid, &text).await.unwrap();
    let found = conserver_storage::read_back(&storages, &uuid).await.expect("read back from mongo");
    assert_eq!(found.storage, "mongo");
    assert_eq!(found.document["uuid"], uuid.as_str());
    assert!(conserver_storage::read_back(&storages, "018f0000-0000-7000-8000-00000000dead").await.is_none());
}
