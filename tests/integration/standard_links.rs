//! The standard links as components in the real host, configured the Python way
//! (`module: links.<name>`): routing by tags, jq filtering, sampling, expiry and
//! diet, plus the host's check on where a link may route a vCon. One worker with
//! one vCon at a time, so a later vCon reaching egress means the earlier ones are
//! done.

use std::time::Duration;

use serde_json::{Value, json};

use crate::support::{Backend, Server, component, fresh_vcon, redis_url, unique};

const WAIT: Duration = Duration::from_secs(30);
const SERIAL: &[(&str, &str)] = &[("CONSERVER_WORKERS", "1"), ("CONSERVER_VCON_CONCURRENCY", "1")];

/// Everything on `list` right now (popping it).
async fn pop_all(server: &Server, list: &str) -> Vec<Value> {
    let (_, items) = server.get_json(&format!("/api/vcon/egress?egress_list={list}&limit=1000")).await;
    items.as_array().cloned().unwrap_or_default()
}

#[tokio::test]
async fn tag_router_routes_by_tag_and_halts_when_told() {
    let ingress = unique("router-in");
    let egress = unique("router-out");
    let vip = unique("vip");
    let config = format!(
        "links:\n  tag:\n    module: links.tag\n    options: {{tags: [vip]}}\n  route:\n    module: links.tag_router\n    options:\n      tag_routes: {{vip: {vip}, other: nowhere}}\n      forward_original: false\nchains:\n  main:\n    links: [tag, route]\n    ingress_lists: [{ingress}]\n    egress_lists: [{egress}]\n"
    );
    let server = Server::start(Backend::Embedded, &config, SERIAL).await;
    let (uuid, vcon) = fresh_vcon();
    assert_eq!(server.post_vcon(&vcon, &ingress).await.status(), 201);
    server.wait_for_egress(&vip, &uuid, WAIT).await;
    assert!(pop_all(&server, &egress).await.is_empty(), "forward_original: false halts the chain");
    let (status, stored) = server.get_json(&format!("/api/vcon/{uuid}")).await;
    assert_eq!(status, 200);
    assert!(stored["attachments"].to_string().contains("vip:vip"), "the tag link's change was saved");
}

#[tokio::test]
async fn jq_link_forwards_matches_and_halts_the_rest() {
    let ingress = unique("jq-in");
    let egress = unique("jq-out");
    let config = format!(
        "links:\n  two_parties:\n    module: links.jq_link\n    options: {{filter: '.parties | length >= 2', forward_matches: true}}\nchains:\n  main:\n    links: [two_parties]\n    ingress_lists: [{ingress}]\n    egress_lists: [{egress}]\n"
    );
    let server = Server::start(Backend::Embedded, &config, SERIAL).await;
    let (dropped, mut one_party) = fresh_vcon();
    one_party["parties"] = json!([one_party["parties"][0].clone()]);
    if let Some(dialogs) = one_party["dialog"].as_array_mut() {
        for dialog in dialogs {
            dialog["parties"] = json!([0]);
        }
    }
    let (kept, two_parties) = fresh_vcon();
    assert!(two_parties["parties"].as_array().unwrap().len() >= 2, "the fixture has two parties");
    assert_eq!(server.post_vcon(&one_party, &ingress).await.status(), 201);
    assert_eq!(server.post_vcon(&two_parties, &ingress).await.status(), 201);
    server.wait_for_egress(&egress, &kept, WAIT).await;
    let rest = pop_all(&server, &egress).await;
    assert!(!rest.contains(&json!(dropped)), "a non-match halts the chain");
    let (_, dlq) = server.get_json(&format!("/api/dlq?ingress_list={ingress}")).await;
    assert!(!dlq.to_string().contains(&dropped), "a halt is not a failure: {dlq}");
}

#[tokio::test]
async fn sampler_keeps_or_drops_by_method() {
    let keep_in = unique("keep-in");
    let drop_in = unique("drop-in");
    let out = unique("sample-out");
    let config = format!(
        "links:\n  all:\n    module: links.sampler\n    options: {{method: modulo, value: 1}}\n  none:\n    module: links.sampler\n    options: {{method: modulo, value: 4294967297}}\nchains:\n  keep:\n    links: [all]\n    ingress_lists: [{keep_in}]\n    egress_lists: [{out}]\n  drop:\n    links: [none]\n    ingress_lists: [{drop_in}]\n    egress_lists: [{out}]\n"
    );
    let server = Server::start(Backend::Embedded, &config, SERIAL).await;
    let (dropped, vcon) = fresh_vcon();
    assert_eq!(server.post_vcon(&vcon, &drop_in).await.status(), 201);
    let (kept, vcon) = fresh_vcon();
    assert_eq!(server.post_vcon(&vcon, &keep_in).await.status(), 201);
    server.wait_for_egress(&out, &kept, WAIT).await;
    assert!(!pop_all(&server, &out).await.contains(&json!(dropped)));
}

#[tokio::test]
async fn diet_strips_what_its_options_say() {
    let ingress = unique("diet-in");
    let egress = unique("diet-out");
    let config = format!(
        "links:\n  slim:\n    module: links.diet\n    options: {{remove_analysis: true, remove_dialog_body: true}}\nchains:\n  main:\n    links: [slim]\n    ingress_lists: [{ingress}]\n    egress_lists: [{egress}]\n"
    );
    let server = Server::start(Backend::Embedded, &config, SERIAL).await;
    let (uuid, mut vcon) = fresh_vcon();
    vcon["analysis"] =
        json!([{"type": "summary", "vendor": "test", "body": "secret summary", "encoding": "none", "dialog": 0}]);
    assert_eq!(server.post_vcon(&vcon, &ingress).await.status(), 201);
    server.wait_for_egress(&egress, &uuid, WAIT).await;
    let (_, stored) = server.get_json(&format!("/api/vcon/{uuid}")).await;
    assert!(stored.get("analysis").is_none_or(|a| a.as_array().is_some_and(Vec::is_empty)), "{}", stored["analysis"]);
    for dialog in stored["dialog"].as_array().unwrap() {
        assert!(dialog.get("body").is_none_or(|b| b == ""), "{dialog}");
    }
}

#[tokio::test]
async fn expire_vcon_sets_the_ttl_on_the_redis_copy() {
    let ingress = unique("expire-in");
    let egress = unique("expire-out");
    let config = format!(
        "links:\n  expire:\n    module: links.expire_vcon\n    options: {{seconds: 120}}\nchains:\n  main:\n    links: [expire]\n    ingress_lists: [{ingress}]\n    egress_lists: [{egress}]\n"
    );
    let server = Server::start(Backend::Redis, &config, SERIAL).await;
    let (uuid, vcon) = fresh_vcon();
    assert_eq!(server.post_vcon(&vcon, &ingress).await.status(), 201);
    server.wait_for_egress(&egress, &uuid, WAIT).await;
    let client = redis::Client::open(redis_url()).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let ttl: i64 = redis::cmd("TTL").arg(format!("vcon:{uuid}")).query_async(&mut conn).await.unwrap();
    assert!((100..=120).contains(&ttl), "TTL {ttl}");
}

/// A TTL past what Redis can represent (its `EXPIRE` refuses ~9.2e15 s) used to
/// make every write fail and the worker requeue the vCon for ever; now the
/// request dead-letters it at once and the next vCon goes through.
#[tokio::test]
async fn an_expiry_beyond_a_century_is_dead_lettered_not_retried() {
    let ingress = unique("expire-huge-in");
    let egress = unique("expire-huge-out");
    let config = format!(
        "links:\n  expire:\n    module: links.expire_vcon\n    options: {{seconds: {seconds}}}\nchains:\n  main:\n    links: [expire]\n    ingress_lists: [{ingress}]\n    egress_lists: [{egress}]\n",
        seconds = u64::MAX / 2
    );
    let server = Server::start(Backend::Redis, &config, SERIAL).await;
    let (uuid, vcon) = fresh_vcon();
    assert_eq!(server.post_vcon(&vcon, &ingress).await.status(), 201);
    let reason = server.wait_for_dlq(&ingress, &uuid, WAIT).await;
    let error = reason["error"].as_str().unwrap_or_default();
    assert!(error.contains("expire-after-secs") && error.contains("100 years"), "{error}");
    let client = redis::Client::open(redis_url()).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let ttl: i64 = redis::cmd("TTL").arg(format!("vcon:{uuid}")).query_async(&mut conn).await.unwrap();
    assert!(ttl == -1 || ttl > 0, "the dead-lettered vCon is kept (TTL {ttl})");
}

#[tokio::test]
async fn a_route_to_a_list_no_chain_knows_is_dead_lettered() {
    let ingress = unique("route-in");
    let allowed = unique("allowed");
    let config = format!(
        "links:\n  router:\n    component: {}\n    allowed_routes: [{allowed}]\n    options: {{route_to_field: route}}\nchains:\n  main:\n    links: [router]\n    ingress_lists: [{ingress}]\n",
        component("testing/fetch.wasm").display()
    );
    let server = Server::start(Backend::Embedded, &config, SERIAL).await;
    let (ok, mut vcon) = fresh_vcon();
    vcon["route"] = json!(allowed);
    assert_eq!(server.post_vcon(&vcon, &ingress).await.status(), 201);
    server.wait_for_egress(&allowed, &ok, WAIT).await;
    let (bad, mut vcon) = fresh_vcon();
    vcon["route"] = json!("somewhere-else");
    assert_eq!(server.post_vcon(&vcon, &ingress).await.status(), 201);
    let reason = server.wait_for_dlq(&ingress, &bad, WAIT).await;
    let error = reason["error"].as_str().unwrap_or_default();
    assert!(error.contains("somewhere-else") && error.contains("allowed_routes"), "{error}");
}
