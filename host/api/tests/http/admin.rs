//! Operator routes: config read/replace, DLQ list/detail/reprocess, index rebuild.

use conserver_core::DlqReason;
use serde_json::{Value, json};

use crate::on_both_backends;
use crate::support::{Backend, Options, TestApi, unique, vcon};

async fn config_is_read_in_file_order_and_replaced_only_when_valid(backend: Backend) {
    let config = "chains: {}\nlinks: {}\ningress_auth:\n  zeta: z-key\n  alpha: a-key\n".to_string();
    let api = TestApi::with(backend, Options { config, ..Options::open() }).await;
    let read = api.get("/api/config").await.json();
    let keys: Vec<&String> = read.as_object().unwrap().keys().collect();
    assert_eq!(keys, ["chains", "links", "ingress_auth"]);
    assert_eq!(read["ingress_auth"].as_object().unwrap().keys().collect::<Vec<_>>(), ["zeta", "alpha"]);

    // An invalid config is refused with the reason, and nothing changes.
    let before = std::fs::read_to_string(&api.config_path).unwrap();
    let bad = json!({"chains": {"c": {"links": ["ghost"]}}});
    let refused = api.post("/api/config", &bad).await;
    assert_eq!(refused.code(), 422);
    assert!(refused.json()["detail"].as_str().unwrap().contains("chains.c.links[0]"));
    assert_eq!(std::fs::read_to_string(&api.config_path).unwrap(), before);
    assert_eq!(api.post("/api/config", &json!([1, 2])).await.code(), 422);

    // A valid one is written in the given key order and takes effect at once.
    let new = json!({"ingress_auth": {"new_list": "new-key", "b": "x"}, "links": {}, "chains": {}});
    assert_eq!(api.post("/api/config", &new).await.code(), 204);
    assert_eq!(api.get("/api/config").await.json(), new);
    let on_disk: Value = serde_yaml_ng::from_str(&std::fs::read_to_string(&api.config_path).unwrap()).unwrap();
    assert_eq!(on_disk, new);
    let (_, body) = vcon();
    let reply = api
        .request(
            axum::http::Method::POST,
            "/api/vcon/external-ingress?ingress_list=new_list",
            &[("x-conserver-api-token", "new-key"), ("content-type", "application/json")],
            Some(body.to_string().into_bytes()),
        )
        .await;
    assert_eq!(reply.code(), 204, "the new ingress key works without a restart");
}

fn reason(uuid: &str) -> DlqReason {
    DlqReason {
        uuid: uuid.into(),
        chain: "main".into(),
        link: "tag".into(),
        error: "trap: boom".into(),
        retryable: false,
        attempts: 0,
        at: "2026-01-01T00:00:00.000Z".into(),
    }
}

async fn the_dlq_lists_explains_and_reprocesses(backend: Backend) {
    let api = TestApi::with(backend, Options::open()).await;
    let ingress = unique("in");
    assert_eq!(api.get(&format!("/api/dlq?ingress_list={ingress}")).await.json(), json!([]));
    assert_eq!(api.post_raw(&format!("/api/dlq/reprocess?ingress_list={ingress}"), Vec::new()).await.json(), json!(0));
    for uuid in ["x", "y", "z"] {
        api.broker.dead_letter(&ingress, reason(uuid), 0).await.unwrap();
    }
    assert_eq!(api.get(&format!("/api/dlq?ingress_list={ingress}")).await.json(), json!(["x", "y", "z"]));
    let detail = api.get(&format!("/api/dlq?ingress_list={ingress}&detail=true")).await.json();
    assert_eq!(detail[0]["link"], "tag");
    assert_eq!(detail[0]["error"], "trap: boom");
    assert_eq!(detail[0]["attempts"], 1);
    let moved = api.post_raw(&format!("/api/dlq/reprocess?ingress_list={ingress}&count=2"), Vec::new()).await;
    assert_eq!((moved.code(), moved.json()), (200, json!(2)));
    assert_eq!(api.broker.range(&ingress).await.unwrap(), ["x", "y"]);
    assert_eq!(api.get(&format!("/api/dlq?ingress_list={ingress}")).await.json(), json!(["z"]));
    for bad in ["count=0", "count=100001", "count=abc"] {
        assert_eq!(
            api.post_raw(&format!("/api/dlq/reprocess?ingress_list={ingress}&{bad}"), Vec::new()).await.code(),
            422,
            "{bad}"
        );
    }
    assert_eq!(api.get("/api/dlq").await.code(), 422);
}

async fn index_rebuild_restores_list_and_search(backend: Backend) {
    let api = TestApi::with(backend, Options::open()).await;
    let name = unique("Indexed");
    let (uuid, body) = vcon();
    let mut body = body;
    body["parties"] = json!([{"name": name}]);
    api.post("/api/vcon", &body).await;
    api.broker.unindex_vcon(&uuid, &[format!("name:{name}")]).await.unwrap();
    assert_eq!(api.get(&format!("/api/vcons/search?name={name}")).await.json(), json!([]));
    let reply = api.get("/api/index_vcons").await;
    assert_eq!(reply.code(), 200);
    assert!(reply.json().as_u64().unwrap() >= 1);
    assert_eq!(api.get(&format!("/api/vcons/search?name={name}")).await.json(), json!([uuid]));
}

on_both_backends!(
    config_is_read_in_file_order_and_replaced_only_when_valid,
    the_dlq_lists_explains_and_reprocesses,
    index_rebuild_restores_list_and_search,
);
