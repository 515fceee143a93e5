//! Issue #16: what an open server refuses (control endpoints, foreign hosts and
//! origins), the JSON parse bound, and external-ingress never replacing a
//! stored vCon.

use axum::http::Method;
use conserver_api::Guards;
use serde_json::json;

use crate::on_both_backends;
use crate::support::{Backend, Options, TestApi, vcon};

const JSON: (&str, &str) = ("content-type", "application/json");

#[tokio::test]
async fn control_endpoints_need_a_configured_token_or_the_opt_in() {
    let config = json!({"links": {}, "chains": {}});
    let open = TestApi::new(Backend::Embedded).await;
    let before = std::fs::read_to_string(&open.config_path).unwrap();
    let refused = open.post("/api/config", &config).await;
    assert_eq!(refused.code(), 403);
    let text = refused.json()["detail"].as_str().unwrap().to_string();
    assert!(text.contains("CONSERVER_API_TOKEN") && text.contains("CONSERVER_ALLOW_OPEN"), "{text}");
    assert_eq!(std::fs::read_to_string(&open.config_path).unwrap(), before, "nothing was written");
    assert_eq!(open.post_raw("/api/dlq/reprocess?ingress_list=x", Vec::new()).await.code(), 403);
    assert_eq!(open.get("/api/index_vcons").await.code(), 403);
    // Reading stays open on a loopback server without a token.
    assert_eq!(open.get("/api/config").await.code(), 200);

    let opted_in = TestApi::with(Backend::Embedded, Options::open()).await;
    assert_eq!(opted_in.post("/api/config", &config).await.code(), 204);

    let token = TestApi::with(Backend::Embedded, Options { tokens: vec!["t".into()], ..Options::default() }).await;
    let body = config.to_string().into_bytes();
    assert_eq!(token.request(Method::POST, "/api/config", &[JSON], Some(body.clone())).await.code(), 403);
    let reply = token.request(Method::POST, "/api/config", &[JSON, ("x-conserver-api-token", "t")], Some(body)).await;
    assert_eq!(reply.code(), 204);
}

#[tokio::test]
async fn an_open_loopback_server_refuses_foreign_hosts_and_origins() {
    let api = TestApi::with(
        Backend::Embedded,
        Options {
            guards: Guards { allowed_hosts: vec!["conserver.lan".into()], ..Guards::default() },
            ..Options::default()
        },
    )
    .await;
    let get = |headers: Vec<(&'static str, &'static str)>| {
        let api = &api;
        async move { api.request(Method::GET, "/api/vcon", &headers, None).await }
    };
    // Loopback names, any address (rebinding needs a name) and listed names.
    for host in ["127.0.0.1:8000", "localhost:8000", "[::1]:8000", "10.0.0.7:8000", "conserver.lan:8000"] {
        assert_eq!(get(vec![("host", host)]).await.code(), 200, "{host}");
    }
    // DNS rebinding: the browser sends the attacker's name.
    let rebound = get(vec![("host", "rebind.evil.example:8000")]).await;
    assert_eq!(rebound.code(), 403);
    assert!(rebound.json()["detail"].as_str().unwrap().contains("CONSERVER_API_TOKEN"));
    // Cross-site requests, whatever the method.
    assert_eq!(get(vec![("host", "127.0.0.1:8000"), ("origin", "https://evil.example")]).await.code(), 403);
    assert_eq!(get(vec![("host", "127.0.0.1:8000"), ("sec-fetch-site", "cross-site")]).await.code(), 403);
    // Another port of this machine is same-site, not same-origin.
    assert_eq!(get(vec![("host", "127.0.0.1:8000"), ("sec-fetch-site", "same-site")]).await.code(), 403);
    assert_eq!(get(vec![("host", "127.0.0.1:8000"), ("sec-fetch-site", "none")]).await.code(), 200);
    let form = api
        .request(
            Method::POST,
            "/api/vcon",
            &[("host", "127.0.0.1:8000"), ("origin", "null"), ("content-type", "text/plain")],
            Some(vcon().1.to_string().into_bytes()),
        )
        .await;
    assert_eq!(form.code(), 403);
    // The server's own pages (Swagger UI) are same-origin.
    assert_eq!(get(vec![("host", "127.0.0.1:8000"), ("origin", "http://127.0.0.1:8000")]).await.code(), 200);
    assert_eq!(get(vec![("host", "127.0.0.1:8000"), ("sec-fetch-site", "same-origin")]).await.code(), 200);

    // With a token none of this applies (the token header needs a preflight).
    let token = TestApi::with(Backend::Embedded, Options { tokens: vec!["t".into()], ..Options::default() }).await;
    let reply = token
        .request(Method::GET, "/api/vcon", &[("host", "conserver.example"), ("x-conserver-api-token", "t")], None)
        .await;
    assert_eq!(reply.code(), 200);
}

#[tokio::test]
async fn json_bodies_are_bounded_before_they_are_parsed() {
    let api = TestApi::with(
        Backend::Embedded,
        Options {
            guards: Guards { max_json_values: 1000, max_json_depth: 16, ..Guards::default() },
            ..Options::default()
        },
    )
    .await;
    let (_, mut body) = vcon();
    body["padding"] = json!(vec![0; 2000]);
    let reply = api.post("/api/vcon", &body).await;
    assert_eq!(reply.code(), 413);
    assert!(reply.json()["detail"].as_str().unwrap().contains("CONSERVER_MAX_JSON_VALUES"));
    let deep = format!("{}{}", "[".repeat(17), "]".repeat(17));
    let reply = api.post_raw("/api/vcon/ingress?ingress_list=x", deep.into_bytes()).await;
    assert_eq!(reply.code(), 413);
    assert!(reply.json()["detail"].as_str().unwrap().contains("CONSERVER_MAX_JSON_DEPTH"));
    // A normal vCon is far below both.
    assert_eq!(api.post("/api/vcon", &vcon().1).await.code(), 201);
}

fn partners() -> Options {
    Options {
        tokens: vec!["main-token".into()],
        config: "ingress_auth:\n  tenant_a: key-a\n  tenant_b: key-b\n".into(),
        ..Options::default()
    }
}

async fn external_ingress_never_replaces_a_stored_vcon(backend: Backend) {
    let api = TestApi::with(backend, partners()).await;
    let send = |key: &'static str, list: &'static str, body: &serde_json::Value| {
        let api = &api;
        let body = body.to_string().into_bytes();
        async move {
            let uri = format!("/api/vcon/external-ingress?ingress_list={list}");
            api.request(Method::POST, &uri, &[JSON, ("x-conserver-api-token", key)], Some(body)).await
        }
    };
    let (uuid, original) = vcon();
    assert_eq!(send("key-a", "tenant_a", &original).await.code(), 204);
    let stored = api.broker.get_vcon(&uuid).await.unwrap().unwrap();

    // Tenant B, holding only its own key, sends another document with A's uuid.
    let mut forged = original.clone();
    forged["parties"] = json!([{"name": "Mallory"}]);
    let refused = send("key-b", "tenant_b", &forged).await;
    assert_eq!(refused.code(), 409);
    assert!(refused.json()["detail"].as_str().unwrap().contains(&uuid));
    assert_eq!(api.broker.get_vcon(&uuid).await.unwrap().unwrap(), stored, "the stored vCon is untouched");
    assert!(!api.broker.range("tenant_b").await.unwrap().contains(&uuid), "nothing was enqueued");

    // A's retry of the same document is accepted (and enqueued again).
    assert_eq!(send("key-a", "tenant_a", &original).await.code(), 204);
    assert_eq!(api.broker.get_vcon(&uuid).await.unwrap().unwrap(), stored);
    assert_eq!(api.broker.range("tenant_a").await.unwrap().iter().filter(|u| **u == uuid).count(), 2);

    // Without created_at the server stamps one; a re-send still matches.
    let (bare_uuid, mut bare) = vcon();
    bare.as_object_mut().unwrap().remove("created_at");
    assert_eq!(send("key-a", "tenant_a", &bare).await.code(), 204);
    assert_eq!(send("key-a", "tenant_a", &bare).await.code(), 204);
    assert!(api.broker.get_vcon(&bare_uuid).await.unwrap().is_some());
}

async fn partners_racing_with_one_uuid_store_one_document(backend: Backend) {
    let api = TestApi::with(backend, partners()).await;
    let send = |key: &'static str, list: &'static str, body: serde_json::Value| {
        let api = &api;
        async move {
            let uri = format!("/api/vcon/external-ingress?ingress_list={list}");
            let body = Some(body.to_string().into_bytes());
            api.request(Method::POST, &uri, &[JSON, ("x-conserver-api-token", key)], body).await.code()
        }
    };
    for _ in 0..20 {
        let (uuid, from_a) = vcon();
        let mut from_b = from_a.clone();
        from_b["parties"] = json!([{"name": "Mallory"}]);
        let (a, b) = tokio::join!(send("key-a", "tenant_a", from_a.clone()), send("key-b", "tenant_b", from_b.clone()));
        let mut codes = [a, b];
        codes.sort_unstable();
        assert_eq!(codes, [204, 409], "one stored, the other refused (A {a}, B {b})");
        let stored: serde_json::Value =
            serde_json::from_str(&api.broker.get_vcon(&uuid).await.unwrap().unwrap()).unwrap();
        let winner = if a == 204 { &from_a } else { &from_b };
        assert_eq!(stored["parties"], winner["parties"], "the stored document is the accepted one");
    }
}

on_both_backends!(external_ingress_never_replaces_a_stored_vcon, partners_racing_with_one_uuid_store_one_document);

#[tokio::test]
async fn the_conflict_check_fails_closed_when_a_storage_cannot_answer() {
    let store = tempfile::tempdir().unwrap();
    let options = Options {
        tokens: vec!["main-token".into()],
        config: format!(
            "ingress_auth:\n  tenant_b: key-b\nstorages:\n  files:\n    module: storage.file\n    options:\n      path: {}\n      organize_by_date: false\n",
            store.path().display()
        ),
        ..Options::default()
    };
    let api = TestApi::with(Backend::Embedded, options).await;
    let send = |body: &serde_json::Value| {
        let api = &api;
        let body = body.to_string().into_bytes();
        async move {
            let uri = "/api/vcon/external-ingress?ingress_list=tenant_b";
            api.request(Method::POST, uri, &[JSON, ("x-conserver-api-token", "key-b")], Some(body)).await
        }
    };
    // Tenant A's vCon, no longer in the broker, stored in a file the storage
    // cannot read (not UTF-8): an unreadable storage must not count as empty.
    let (unreadable, forged) = vcon();
    std::fs::write(store.path().join(format!("{unreadable}.json")), [0xff, 0xfe, b'{']).unwrap();
    let reply = send(&forged).await;
    assert_eq!(reply.code(), 503, "{:?}", reply.json());
    assert!(api.broker.get_vcon(&unreadable).await.unwrap().is_none(), "nothing was written");
    // Something that is not a JSON object is still something stored.
    let (garbled, forged) = vcon();
    std::fs::write(store.path().join(format!("{garbled}.json")), "not json").unwrap();
    assert_eq!(send(&forged).await.code(), 409);
    assert!(api.broker.get_vcon(&garbled).await.unwrap().is_none());
}
