//! RedisJSON (issue #18, item 3): on a Redis with the JSON module — here a
//! stand-in, see `support::redis_stack` — conserver reads the Python server's
//! `JSON.SET` documents and plain strings side by side, writes RedisJSON, and
//! `conserver migrate` converts a store in place (resumable, TTLs kept).

use std::collections::{HashMap, HashSet};
use std::process::Command;
use std::time::Duration;

use redis::AsyncCommands;
use serde_json::Value;

use crate::support::{Backend, Server, binary, fresh_vcon, output_within, redis_stack, tag_chain, unique};

async fn connect(port: u16) -> redis::aio::MultiplexedConnection {
    crate::support::patient_redis(&format!("redis://127.0.0.1:{port}")).await
}

/// Store `vcon` at `vcon:{uuid}` as the Python server does on Redis Stack.
async fn json_set(conn: &mut redis::aio::MultiplexedConnection, uuid: &str, vcon: &Value) {
    let () = redis::cmd("JSON.SET")
        .arg(format!("vcon:{uuid}"))
        .arg(".")
        .arg(vcon.to_string())
        .query_async(conn)
        .await
        .unwrap();
}

/// `vcon:{uuid}` read as RedisJSON, if it is one (a plain `GET` is refused).
async fn json_document(conn: &mut redis::aio::MultiplexedConnection, uuid: &str) -> Option<Value> {
    let key = format!("vcon:{uuid}");
    let plain: redis::RedisResult<Option<String>> = conn.get(&key).await;
    assert!(plain.is_err(), "vcon:{uuid} is a plain string, not a JSON document");
    let text: Option<String> = redis::cmd("JSON.GET").arg(&key).arg(".").query_async(conn).await.unwrap();
    text.map(|t| serde_json::from_str(&t).unwrap())
}

#[tokio::test]
async fn a_python_store_with_both_forms_is_processed_and_written_as_redisjson() {
    let (_stand_in, port) = redis_stack::start();
    let mut conn = connect(port).await;
    let (ingress, egress) = (unique("json-in"), unique("json-out"));
    // What a Python server on Redis Stack left, and a plain string from before it.
    let (python, python_vcon) = fresh_vcon();
    json_set(&mut conn, &python, &python_vcon).await;
    let (plain, plain_vcon) = fresh_vcon();
    let () = conn.set(format!("vcon:{plain}"), plain_vcon.to_string()).await.unwrap();
    let () = conn.rpush(&ingress, &[&python, &plain]).await.unwrap();

    let url = format!("redis://127.0.0.1:{port}");
    let server = Server::start(Backend::Embedded, &tag_chain(&ingress, &egress), &[("REDIS_URL", url.as_str())]).await;
    assert!(server.log_text().contains("kept as RedisJSON"), "the module is detected: {}", server.log_text());
    let expected: HashSet<String> = [python.clone(), plain.clone()].into_iter().collect();
    let mut seen = HashMap::new();
    assert!(server.drain_egress(&egress, &expected, &mut seen, Duration::from_secs(60)).await, "{}", server.log_text());
    for uuid in [&python, &plain] {
        let document = json_document(&mut conn, uuid).await.unwrap_or_else(|| panic!("vcon:{uuid} is gone"));
        assert_eq!(document["uuid"], uuid.as_str());
    }

    // A vCon posted now is stored as RedisJSON and read back through the API.
    let (posted, vcon) = fresh_vcon();
    assert_eq!(server.post_vcon(&vcon, "").await.status(), 201);
    assert_eq!(json_document(&mut conn, &posted).await.unwrap()["uuid"], posted.as_str());
    let (status, read) = server.get_json(&format!("/api/vcon/{posted}")).await;
    assert_eq!(status, 200);
    assert_eq!(read["uuid"], posted.as_str());
    assert_eq!(read["parties"], vcon["parties"], "the document reads back as the same JSON");
}

fn migrate(port: u16, to: &str) -> (bool, String) {
    let mut command = Command::new(binary());
    command
        .args(["migrate", "--to", to])
        .env("REDIS_URL", format!("redis://127.0.0.1:{port}"))
        .env("CONSERVER_DOTENV", "0");
    let (status, output) = output_within(&mut command, Duration::from_secs(120));
    (status.success(), output)
}

#[tokio::test]
async fn migrate_converts_a_store_in_place_keeps_ttls_and_resumes() {
    let (_stand_in, port) = redis_stack::start();
    let mut conn = connect(port).await;
    let mut strings = Vec::new();
    for i in 0..40 {
        let (uuid, vcon) = fresh_vcon();
        let key = format!("vcon:{uuid}");
        if i % 2 == 0 {
            let () = conn.set_ex(&key, vcon.to_string(), 5000).await.unwrap();
        } else {
            let () = conn.set(&key, vcon.to_string()).await.unwrap();
        }
        strings.push(uuid);
    }
    let (already_json, vcon) = fresh_vcon();
    json_set(&mut conn, &already_json, &vcon).await;

    let (ok, output) = migrate(port, "json");
    assert!(ok, "{output}");
    assert!(output.contains("41 vCon key(s): 40 converted to RedisJSON documents, 1 already were"), "{output}");
    for (i, uuid) in strings.iter().enumerate() {
        assert_eq!(json_document(&mut conn, uuid).await.unwrap()["uuid"], uuid.as_str());
        let ttl: i64 = conn.ttl(format!("vcon:{uuid}")).await.unwrap();
        if i % 2 == 0 {
            assert!((4000..=5000).contains(&ttl), "the TTL is kept: {ttl}");
        } else {
            assert_eq!(ttl, -1, "no TTL is added");
        }
    }
    // Run again (as after an interruption): nothing left to do.
    let (ok, output) = migrate(port, "json");
    assert!(ok && output.contains("0 converted to RedisJSON documents, 41 already were"), "{output}");

    // And back: plain strings holding the same JSON.
    let (ok, output) = migrate(port, "string");
    assert!(ok && output.contains("41 converted to plain strings"), "{output}");
    let text: String = conn.get(format!("vcon:{already_json}")).await.unwrap();
    let document: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(document["parties"], vcon["parties"]);
}

#[test]
fn migrate_to_json_on_a_redis_without_the_module_says_so() {
    let (_redis, port) = crate::support::own_redis(&[]);
    let (ok, output) = migrate(port, "json");
    assert!(!ok && output.contains("no RedisJSON module"), "{output}");
}
