//! A real fixture vCon through the `tag` link, the file storage and an egress list,
//! on both brokers.

use std::time::Duration;

use serde_json::Value;

use crate::support::{Backend, Server, component, fresh_vcon, unique};

fn config(ingress: &str, egress: &str, store: &std::path::Path) -> String {
    format!(
        r#"
links:
  tag:
    module: links.tag
    options:
      tags: [iron, maiden]
storages:
  file:
    module: storage.file
    options:
      path: {store}
chains:
  main:
    links: [tag]
    ingress_lists: [{ingress}]
    egress_lists: [{egress}]
    storages: [file]
"#,
        store = store.display()
    )
}

async fn flows_end_to_end(backend: Backend) {
    let (ingress, egress) = (unique("in"), unique("out"));
    let store = tempfile::tempdir().unwrap();
    let server = Server::start(backend, &config(&ingress, &egress, store.path()), &[]).await;
    let (uuid, vcon) = fresh_vcon();

    let response = server.post_vcon(&vcon, &ingress).await;
    assert_eq!(response.status(), 201);
    server.wait_for_egress(&egress, &uuid, Duration::from_secs(30)).await;

    let (status, stored) = server.get_json(&format!("/api/vcon/{uuid}")).await;
    assert_eq!(status, 200);
    let tags = stored["attachments"]
        .as_array()
        .and_then(|a| a.iter().find(|a| a["purpose"] == "tags"))
        .unwrap_or_else(|| panic!("no tags attachment in {stored}"));
    assert_eq!(tags["body"], "[\"iron:iron\", \"maiden:maiden\"]");
    assert_eq!(tags["encoding"], "json");
    // Every original field survives the link.
    for key in vcon.as_object().unwrap().keys() {
        assert!(stored.get(key).is_some(), "field {key} lost");
    }
    assert_eq!(stored["dialog"], vcon["dialog"]);

    // The file storage holds the processed vCon (the fixture has no created_at, so
    // it is dated by the time of receipt; search the tree).
    let file = find(store.path(), &format!("{uuid}.json")).unwrap_or_else(|| panic!("no file for {uuid}"));
    let on_disk: Value = serde_json::from_str(&std::fs::read_to_string(file).unwrap()).unwrap();
    assert_eq!(on_disk, stored);

    // Served under /api and unprefixed.
    assert_eq!(server.get_json(&format!("/vcon/{uuid}")).await.1, stored);
}

fn find(dir: &std::path::Path, name: &str) -> Option<std::path::PathBuf> {
    for entry in std::fs::read_dir(dir).ok()?.flatten() {
        let path = entry.path();
        if path.is_dir() {
            if let Some(found) = find(&path, name) {
                return Some(found);
            }
        } else if entry.file_name() == name {
            return Some(path);
        }
    }
    None
}

#[tokio::test]
async fn a_fixture_flows_end_to_end_on_the_embedded_broker() {
    flows_end_to_end(Backend::Embedded).await;
}

#[tokio::test]
async fn a_fixture_flows_end_to_end_on_redis() {
    flows_end_to_end(Backend::Redis).await;
}

#[tokio::test]
async fn a_fixture_flows_end_to_end_on_a_redis_cluster() {
    flows_end_to_end(Backend::Cluster).await;
}

#[tokio::test]
async fn an_existing_redis_producer_can_enqueue_with_rpush() {
    let (ingress, egress) = (unique("in"), unique("out"));
    let store = tempfile::tempdir().unwrap();
    let server = Server::start(Backend::Redis, &config(&ingress, &egress, store.path()), &[]).await;
    let (uuid, vcon) = fresh_vcon();
    // Store without enqueueing, then enqueue the Python way.
    assert_eq!(server.post_vcon(&vcon, "").await.status(), 201);
    let client = redis::Client::open(crate::support::redis_url()).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let _: () = redis::cmd("RPUSH").arg(&ingress).arg(&uuid).query_async(&mut conn).await.unwrap();
    server.wait_for_egress(&egress, &uuid, Duration::from_secs(30)).await;
    let stored: String = redis::cmd("GET").arg(format!("vcon:{uuid}")).query_async(&mut conn).await.unwrap();
    assert!(stored.contains("iron:iron"));
}

#[tokio::test]
async fn link_verdicts_halt_route_and_expire() {
    let (halt_in, route_in) = (unique("halt"), unique("route"));
    let (marker, routed, halt_out, route_out) = (unique("marker"), unique("routed"), unique("hout"), unique("rout"));
    let echo = component("testing/echo.wasm");
    let config = format!(
        r#"
links:
  mark:
    component: {echo}
    options: {{mode: route, lists: [{marker}]}}
  stop:
    component: {echo}
    options: {{mode: halt}}
  router:
    component: {echo}
    options: {{mode: route, lists: [{routed}]}}
  shorten:
    component: {echo}
    options: {{mode: expire, seconds: 5000}}
chains:
  halting:
    links: [mark, stop]
    ingress_lists: [{halt_in}]
    egress_lists: [{halt_out}]
  routing:
    links: [router, shorten]
    ingress_lists: [{route_in}]
    egress_lists: [{route_out}]
"#,
        echo = echo.display()
    );
    let server = Server::start(Backend::Redis, &config, &[]).await;
    let (halted, vcon) = fresh_vcon();
    assert_eq!(server.post_vcon(&vcon, &halt_in).await.status(), 201);
    let (routed_uuid, vcon) = fresh_vcon();
    assert_eq!(server.post_vcon(&vcon, &route_in).await.status(), 201);

    // Routes a link asks for are applied, beside the chain's egress.
    server.wait_for_egress(&routed, &routed_uuid, Duration::from_secs(30)).await;
    server.wait_for_egress(&route_out, &routed_uuid, Duration::from_secs(30)).await;
    let client = redis::Client::open(crate::support::redis_url()).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let ttl: i64 = redis::cmd("TTL").arg(format!("vcon:{routed_uuid}")).query_async(&mut conn).await.unwrap();
    assert!(ttl > 3600 && ttl <= 5000, "expire directive not applied: ttl {ttl}");

    // A halt stops quietly: the earlier link's route is applied, but there is no
    // egress and no DLQ entry.
    server.wait_for_egress(&marker, &halted, Duration::from_secs(30)).await;
    let (_, depth) = server.get_json(&format!("/api/stats/queue?list_name={halt_out}")).await;
    assert_eq!(depth["depth"], 0, "halted vCon reached egress");
    let (_, dlq) = server.get_json(&format!("/api/dlq?ingress_list={halt_in}")).await;
    assert_eq!(dlq, serde_json::json!([]));
}

#[tokio::test]
async fn post_config_swaps_link_options_and_refuses_a_broken_config() {
    let (ingress, egress) = (unique("in"), unique("out"));
    let store = tempfile::tempdir().unwrap();
    // POST /config without a token needs the explicit opt-in.
    let server =
        Server::start(Backend::Embedded, &config(&ingress, &egress, store.path()), &[("CONSERVER_ALLOW_OPEN", "1")])
            .await;
    let (before, vcon) = fresh_vcon();
    server.post_vcon(&vcon, &ingress).await;
    server.wait_for_egress(&egress, &before, Duration::from_secs(30)).await;

    let (_, mut current) = server.get_json("/api/config").await;
    current["links"]["tag"]["options"]["tags"] = serde_json::json!(["swapped"]);
    let reply = server.client.post(server.url("/api/config")).json(&current).send().await.unwrap();
    assert_eq!(reply.status(), 204);
    let (after, vcon) = fresh_vcon();
    server.post_vcon(&vcon, &ingress).await;
    server.wait_for_egress(&egress, &after, Duration::from_secs(30)).await;
    let (_, stored) = server.get_json(&format!("/api/vcon/{after}")).await;
    assert!(stored.to_string().contains("swapped:swapped"), "{stored}");

    // A config naming a component that does not exist is refused; the running one stays.
    let mut broken = current.clone();
    broken["links"]["tag"] = serde_json::json!({"component": "/nowhere/ghost.wasm"});
    let reply = server.client.post(server.url("/api/config")).json(&broken).send().await.unwrap();
    assert_eq!(reply.status(), 422);
    let body: Value = reply.json().await.unwrap();
    assert!(body["detail"].as_str().unwrap().contains("ghost.wasm"), "{body}");
    assert_eq!(server.get_json("/api/config").await.1, current);
    let (last, vcon) = fresh_vcon();
    server.post_vcon(&vcon, &ingress).await;
    server.wait_for_egress(&egress, &last, Duration::from_secs(30)).await;
}
