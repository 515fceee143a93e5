//! Queue routes: enqueue on POST, external-ingress keys, re-ingress, egress (oldest
//! first), count, queue depth.

use serde_json::json;

use crate::on_both_backends;
use crate::support::{Backend, Options, TestApi, unique, vcon};

async fn post_enqueues_and_egress_pops_oldest_first(backend: Backend) {
    let api = TestApi::new(backend).await;
    let list = unique("in");
    let (a, body_a) = vcon();
    let (b, body_b) = vcon();
    assert_eq!(api.post(&format!("/api/vcon?ingress_lists={list}"), &body_a).await.code(), 201);
    assert_eq!(api.post(&format!("/api/vcon?ingress_lists={list}&ingress_lists={list}-2"), &body_b).await.code(), 201);
    assert_eq!(
        api.get(&format!("/api/stats/queue?list_name={list}")).await.json(),
        json!({"list_name": list, "depth": 2})
    );
    assert_eq!(api.get(&format!("/api/vcon/count?egress_list={list}")).await.json(), json!(2));
    assert_eq!(api.get(&format!("/api/vcon/egress?egress_list={list}")).await.json(), json!([a]));
    assert_eq!(api.get(&format!("/api/vcon/egress?egress_list={list}&limit=10")).await.json(), json!([b]));
    assert_eq!(api.get(&format!("/api/vcon/egress?egress_list={list}-2&limit=0")).await.json(), json!([]));
    assert_eq!(api.get(&format!("/api/vcon/egress?egress_list={list}-2&limit=-5")).await.json(), json!([]));
    assert_eq!(
        api.get(&format!("/api/vcon/egress?egress_list={list}-2&limit=9223372036854775807")).await.json(),
        json!([b])
    );
    assert_eq!(
        api.get(&format!("/api/vcon/egress?egress_list={list}&limit=1000000000000000000000000000000")).await.code(),
        422
    );
    assert_eq!(api.get("/api/vcon/egress").await.code(), 422);
    // Peek and acknowledge: reading removes nothing; the ack removes exactly those.
    let (c, body_c) = vcon();
    let (d, body_d) = vcon();
    api.post(&format!("/api/vcon?ingress_lists={list}"), &body_c).await;
    api.post(&format!("/api/vcon?ingress_lists={list}"), &body_d).await;
    assert_eq!(api.get(&format!("/api/vcon/egress?egress_list={list}&limit=10&peek=true")).await.json(), json!([c, d]));
    assert_eq!(api.get(&format!("/api/vcon/count?egress_list={list}")).await.json(), json!(2));
    assert_eq!(api.post(&format!("/api/vcon/egress/ack?egress_list={list}"), &json!([c])).await.json(), json!(1));
    assert_eq!(api.get(&format!("/api/vcon/egress?egress_list={list}&limit=10")).await.json(), json!([d]));
    assert_eq!(api.get("/api/vcon/count").await.code(), 422);
    let missing = api.get("/api/stats/queue").await;
    assert_eq!(missing.code(), 422);
    assert!(missing.json()["detail"][0]["msg"].as_str().unwrap().to_lowercase().contains("field required"));
}

async fn re_ingress_pushes_found_uuids_in_order(backend: Backend) {
    let api = TestApi::new(backend).await;
    let list = unique("reingress");
    let (a, body_a) = vcon();
    let (b, body_b) = vcon();
    api.post("/api/vcon", &body_a).await;
    api.post("/api/vcon", &body_b).await;
    let nowhere = uuid::Uuid::new_v4().to_string();
    let reply =
        api.post(&format!("/api/vcon/ingress?ingress_list={list}"), &json!([b, nowhere, a.to_uppercase()])).await;
    assert_eq!(reply.code(), 204);
    assert_eq!(api.get(&format!("/api/vcon/egress?egress_list={list}&limit=10")).await.json(), json!([b, a]));
    assert_eq!(api.post(&format!("/api/vcon/ingress?ingress_list={list}"), &json!([])).await.code(), 204);
    for bad in [json!({"uuids": [a]}), json!(["not-a-uuid"]), json!([7])] {
        assert_eq!(api.post(&format!("/api/vcon/ingress?ingress_list={list}"), &bad).await.code(), 422, "{bad}");
    }
    assert_eq!(api.post("/api/vcon/ingress", &json!([a])).await.code(), 422);
}

fn partners() -> Options {
    Options {
        tokens: vec!["main-token".into()],
        config: "ingress_auth:\n  partner_a: partner-a-key\n  partner_b: [partner-b-key-1, partner-b-key-2]\n  shared: [partner-a-key, partner-b-key-1, shared-key]\n  odd: {key: x}\n".into(),
        ..Options::default()
    }
}

async fn external_ingress_uses_per_list_keys(backend: Backend) {
    let api = TestApi::with(backend, partners()).await;
    let post = |list: &str, key: Option<&'static str>, body: serde_json::Value| {
        let uri = format!("/api/vcon/external-ingress?ingress_list={list}");
        let mut headers = vec![("content-type", "application/json")];
        if let Some(key) = key {
            headers.push(("x-conserver-api-token", key));
        }
        let api = &api;
        async move { api.request(axum::http::Method::POST, &uri, &headers, Some(body.to_string().into_bytes())).await }
    };
    let (uuid, body) = vcon();
    let ok = post("partner_a", Some("partner-a-key"), body.clone()).await;
    assert_eq!((ok.code(), ok.bytes.len()), (204, 0));
    assert_eq!(api.get(&format!("/api/vcon/{uuid}")).await.code(), 403, "reads still need the main token");
    assert_eq!(api.broker.range("partner_a").await.unwrap().iter().filter(|u| **u == uuid).count(), 1);
    assert_eq!(post("partner_b", Some("partner-b-key-2"), vcon().1).await.code(), 204);
    assert_eq!(post("shared", Some("partner-b-key-1"), vcon().1).await.code(), 204);
    let detail =
        |reply: crate::support::Reply| (reply.code(), reply.json()["detail"].as_str().unwrap_or_default().to_string());
    assert_eq!(
        detail(post("partner_b", Some("partner-a-key"), vcon().1).await),
        (403, "Invalid API Key for ingress list 'partner_b'".into())
    );
    assert_eq!(
        detail(post("partner_a", Some("main-token"), vcon().1).await),
        (403, "Invalid API Key for ingress list 'partner_a'".into())
    );
    assert_eq!(
        detail(post("elsewhere", Some("partner-a-key"), vcon().1).await),
        (403, "Ingress list 'elsewhere' not configured".into())
    );
    assert_eq!(detail(post("partner_a", None, vcon().1).await), (403, "API Key required".into()));
    assert_eq!(
        detail(post("odd", Some("x"), vcon().1).await),
        (403, "Invalid configuration for ingress list 'odd'".into())
    );
    // The key is checked before the body is read (the Python server validates
    // the body first and answers 422 here).
    assert_eq!(detail(post("partner_a", None, json!({"invalid": "data"})).await), (403, "API Key required".into()));
    assert_eq!(post("partner_a", Some("partner-a-key"), json!({"invalid": "data"})).await.code(), 422);
    let no_list = api
        .request(axum::http::Method::POST, "/api/vcon/external-ingress", &[], Some(vcon().1.to_string().into_bytes()))
        .await;
    assert_eq!(no_list.code(), 422);
    // With no ingress_auth at all.
    let bare = TestApi::new(backend).await;
    let reply = bare
        .request(
            axum::http::Method::POST,
            "/api/vcon/external-ingress?ingress_list=x",
            &[("x-conserver-api-token", "k")],
            Some(vcon().1.to_string().into_bytes()),
        )
        .await;
    assert_eq!(detail(reply), (403, "No ingress authentication configured".into()));
}

on_both_backends!(
    post_enqueues_and_egress_pops_oldest_first,
    re_ingress_pushes_found_uuids_in_order,
    external_ingress_uses_per_list_keys,
);

/// `vcon:{uuid}` gets `VCON_REDIS_EXPIRY` (3600 s here) on a POST that does not
/// enqueue it, and a re-post resets it; an enqueued one has no TTL while it waits.
#[tokio::test]
async fn api_writes_set_the_vcon_ttl_in_redis() {
    let api = TestApi::with(Backend::Redis, partners()).await;
    let client = redis::Client::open(crate::support::redis_url()).unwrap();
    let conn = client.get_multiplexed_async_connection().await.unwrap();
    let ttl = |uuid: String| {
        let mut conn = conn.clone();
        async move { redis::cmd("TTL").arg(format!("vcon:{uuid}")).query_async::<i64>(&mut conn).await.unwrap() }
    };
    let (uuid, body) = vcon();
    let posted = api
        .request(
            axum::http::Method::POST,
            "/api/vcon",
            &[("x-conserver-api-token", "main-token")],
            Some(body.to_string().into_bytes()),
        )
        .await;
    assert_eq!(posted.code(), 201);
    let first = ttl(uuid.clone()).await;
    assert!((3590..=3600).contains(&first), "ttl {first}");
    let _: () = redis::cmd("EXPIRE").arg(format!("vcon:{uuid}")).arg(100).query_async(&mut conn.clone()).await.unwrap();
    api.request(
        axum::http::Method::POST,
        "/api/vcon",
        &[("x-conserver-api-token", "main-token")],
        Some(body.to_string().into_bytes()),
    )
    .await;
    assert!(ttl(uuid).await > 3000, "a re-post resets the TTL");
    let (external, body) = vcon();
    let reply = api
        .request(
            axum::http::Method::POST,
            "/api/vcon/external-ingress?ingress_list=partner_a",
            &[("x-conserver-api-token", "partner-a-key")],
            Some(body.to_string().into_bytes()),
        )
        .await;
    assert_eq!(reply.code(), 204);
    // An enqueued vCon must not expire while it waits: no TTL until a worker is done.
    assert_eq!(ttl(external).await, -1);
    let (queued, body) = vcon();
    api.request(
        axum::http::Method::POST,
        "/api/vcon?ingress_lists=somewhere",
        &[("x-conserver-api-token", "main-token")],
        Some(body.to_string().into_bytes()),
    )
    .await;
    assert_eq!(ttl(queued).await, -1);
}
