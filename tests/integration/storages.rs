//! Storages in the chain: a backend that keeps failing dead-letters the vCon by
//! default (naming it) or is only logged with `storage_failure: log`; the worker
//! reads a vCon missing from the broker back from a storage; PostgreSQL through the
//! real chain.

use std::time::Duration;

use serde_json::json;

use crate::support::{Backend, Server, component, fresh_vcon, unique};

fn chain_with_broken_storage(ingress: &str, egress: &str, good: &std::path::Path, policy: &str) -> String {
    // A storage whose base path is a regular file cannot create its directories.
    let blocker = good.join("not-a-directory");
    std::fs::write(&blocker, "x").unwrap();
    format!(
        "links:\n  tag:\n    component: {}\nstorages:\n  good:\n    module: storage.file\n    options: {{path: {}}}\n  broken:\n    module: storage.file\n    options: {{path: {}}}\nchains:\n  main:\n    links: [tag]\n    ingress_lists: [{ingress}]\n    egress_lists: [{egress}]\n    storages: [good, broken]\n{policy}",
        component("tag.wasm").display(),
        good.display(),
        blocker.display(),
    )
}

#[tokio::test]
async fn a_failing_storage_dead_letters_the_vcon_by_default() {
    let (ingress, egress) = (unique("in"), unique("out"));
    let dir = tempfile::tempdir().unwrap();
    let mut server = Server::start(
        Backend::Redis,
        &chain_with_broken_storage(&ingress, &egress, dir.path(), "    storage_retry_secs: 1\n"),
        &[],
    )
    .await;
    let (uuid, vcon) = fresh_vcon();
    server.post_vcon(&vcon, &ingress).await;
    let reason = server.wait_for_dlq(&ingress, &uuid, Duration::from_secs(30)).await;
    assert_eq!(reason["link"], "storage:broken", "{reason}");
    assert_eq!(
        server.get_json(&format!("/api/stats/queue?list_name={egress}")).await.1["depth"],
        0,
        "not announced on egress"
    );
    // The worker goes on: a vCon for a healthy chain still flows.
    assert!(server.is_running());
}

#[tokio::test]
async fn with_storage_failure_log_the_chain_carries_on() {
    let (ingress, egress) = (unique("in"), unique("out"));
    let dir = tempfile::tempdir().unwrap();
    let config = chain_with_broken_storage(
        &ingress,
        &egress,
        dir.path(),
        "    storage_failure: log\n    storage_retry_secs: 1\n",
    );
    let server = Server::start(Backend::Redis, &config, &[]).await;
    let (uuid, vcon) = fresh_vcon();
    server.post_vcon(&vcon, &ingress).await;
    server.wait_for_egress(&egress, &uuid, Duration::from_secs(30)).await;
    assert_eq!(server.get_json(&format!("/api/dlq?ingress_list={ingress}")).await.1, json!([]));
    assert!(server.log_text().contains("storage failed; continuing"));
}

#[tokio::test]
async fn a_storage_outage_shorter_than_storage_retry_secs_is_ridden_out() {
    // Issue #17, item 7: a database stopped for a few seconds dead-lettered every
    // vCon that met it. Here the storage's directory cannot be created (its path
    // is a file) for about 3 s, then can: the vCon is stored, not dead-lettered.
    let (ingress, egress) = (unique("in"), unique("out"));
    let dir = tempfile::tempdir().unwrap();
    let config = chain_with_broken_storage(&ingress, &egress, dir.path(), "    storage_retry_secs: 60\n");
    let blocker = dir.path().join("not-a-directory");
    let server = Server::start(Backend::Redis, &config, &[]).await;
    let (uuid, vcon) = fresh_vcon();
    server.post_vcon(&vcon, &ingress).await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    // The outage ends: the path becomes a directory.
    std::fs::remove_file(&blocker).unwrap();
    std::fs::create_dir(&blocker).unwrap();
    server.wait_for_egress(&egress, &uuid, Duration::from_secs(60)).await;
    assert_eq!(server.get_json(&format!("/api/dlq?ingress_list={ingress}")).await.1, json!([]));
    assert!(std::fs::read_dir(&blocker).unwrap().next().is_some(), "the vCon was written once the storage was back");
    assert!(server.log_text().contains("storage write succeeded after retries"));
}

#[tokio::test]
async fn the_worker_reads_a_missing_vcon_back_from_a_storage() {
    let (ingress, egress) = (unique("in"), unique("out"));
    let archive = tempfile::tempdir().unwrap();
    let config = format!(
        "links:\n  tag:\n    component: {}\nstorages:\n  archive:\n    module: storage.file\n    options: {{path: {}, organize_by_date: false}}\nchains:\n  main:\n    links: [tag]\n    ingress_lists: [{ingress}]\n    egress_lists: [{egress}]\n",
        component("tag.wasm").display(),
        archive.path().display()
    );
    let server = Server::start(Backend::Redis, &config, &[]).await;
    let (uuid, vcon) = fresh_vcon();
    // Only the storage has it; a producer enqueues the uuid the Python way.
    std::fs::write(archive.path().join(format!("{uuid}.json")), vcon.to_string()).unwrap();
    let client = redis::Client::open(crate::support::redis_url()).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let _: () = redis::cmd("RPUSH").arg(&ingress).arg(&uuid).query_async(&mut conn).await.unwrap();
    server.wait_for_egress(&egress, &uuid, Duration::from_secs(30)).await;
    let (status, stored) = server.get_json(&format!("/api/vcon/{uuid}")).await;
    assert_eq!(status, 200);
    assert!(stored.to_string().contains("iron:iron"), "{stored}");
}

#[tokio::test]
async fn postgres_storage_in_a_chain() {
    let (ingress, egress) = (unique("in"), unique("out"));
    let table = format!("vcons_chain_{}", uuid::Uuid::new_v4().simple());
    let config = format!(
        "links:\n  tag:\n    component: {}\nstorages:\n  postgres:\n    module: storage.postgres\n    options:\n      host: 127.0.0.1\n      port: 5432\n      user: postgres\n      database: test\n      table_name: {table}\nchains:\n  main:\n    links: [tag]\n    ingress_lists: [{ingress}]\n    egress_lists: [{egress}]\n    storages: [postgres]\n",
        component("tag.wasm").display()
    );
    let server = Server::start(Backend::Embedded, &config, &[]).await;
    let (uuid, vcon) = fresh_vcon();
    server.post_vcon(&vcon, &ingress).await;
    server.wait_for_egress(&egress, &uuid, Duration::from_secs(30)).await;
    let out = std::process::Command::new("psql")
        .args(["-h", "127.0.0.1", "-U", "postgres", "-d", "test", "-At", "-c"])
        .arg(format!(r#"SELECT "vcon_json"->'attachments'->0->>'purpose' FROM "{table}" WHERE "id" = '{uuid}'"#))
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "tags");
    // Deleted through the API: gone from PostgreSQL too.
    assert_eq!(server.client.delete(server.url(&format!("/api/vcon/{uuid}"))).send().await.unwrap().status(), 204);
    let out = std::process::Command::new("psql")
        .args(["-h", "127.0.0.1", "-U", "postgres", "-d", "test", "-At", "-c"])
        .arg(format!(r#"SELECT count(*) FROM "{table}""#))
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "0");
    let _ = std::process::Command::new("psql")
        .args(["-h", "127.0.0.1", "-U", "postgres", "-d", "test", "-c", &format!(r#"DROP TABLE "{table}""#)])
        .output();
}

#[tokio::test]
async fn a_postgresql_stopped_for_ten_seconds_is_ridden_out() {
    // Issue #17, item 7: with PostgreSQL stopped for 15 s, vCons went to the DLQ
    // as soon as the pool timed out. A PostgreSQL of the test's own is stopped
    // while vCons arrive and started again 10 s later: every one is stored.
    let pg = crate::support::own_postgres::OwnPostgres::start();
    let (ingress, egress) = (unique("in"), unique("out"));
    let table = "vcons_outage";
    let config = format!(
        "links:\n  tag:\n    component: {}\nstorages:\n  postgres:\n    module: storage.postgres\n    options:\n      host: 127.0.0.1\n      port: {}\n      user: postgres\n      database: postgres\n      table_name: {table}\nchains:\n  main:\n    links: [tag]\n    ingress_lists: [{ingress}]\n    egress_lists: [{egress}]\n    storages: [postgres]\n    storage_retry_secs: 60\n",
        component("tag.wasm").display(),
        pg.port,
    );
    let server = Server::start(Backend::Redis, &config, &[("CONSERVER_VCON_CONCURRENCY", "4")]).await;
    let (first, vcon) = fresh_vcon();
    server.post_vcon(&vcon, &ingress).await;
    server.wait_for_egress(&egress, &first, Duration::from_secs(30)).await;
    pg.stop();
    let mut during = Vec::new();
    for _ in 0..6 {
        let (uuid, vcon) = fresh_vcon();
        assert_eq!(server.post_vcon(&vcon, &ingress).await.status(), 201);
        during.push(uuid);
    }
    tokio::time::sleep(Duration::from_secs(10)).await;
    pg.resume();
    // (The egress list is popped: every uuid is waited for in one drain.)
    let expected: std::collections::HashSet<String> = during.iter().cloned().collect();
    let mut seen = std::collections::HashMap::new();
    let complete = server.drain_egress(&egress, &expected, &mut seen, Duration::from_secs(90)).await;
    assert!(complete, "{seen:?}\n{}", server.log_text());
    assert_eq!(
        server.get_json(&format!("/api/dlq?ingress_list={ingress}")).await.1,
        json!([]),
        "{}",
        server.log_text()
    );
    for uuid in during.iter().chain(std::iter::once(&first)) {
        let stored = pg.query(&format!(r#"SELECT count(*) FROM "{table}" WHERE "id" = '{uuid}'"#));
        assert_eq!(stored, "1", "{uuid} is not in PostgreSQL");
    }
    assert!(server.log_text().contains("storage write succeeded after retries"), "{}", server.log_text());
}
