//! The main token: exact, case-insensitive header name, 403 never 401, public
//! routes stay public, an empty token set opens the API.

use axum::http::Method;
use serde_json::json;

use crate::support::{Backend, Options, TestApi, vcon};

fn with_token() -> Options {
    Options { tokens: vec!["s3cret".into(), "other".into()], ..Options::default() }
}

#[tokio::test]
async fn protected_routes_need_a_valid_token() {
    let api = TestApi::with(Backend::Embedded, with_token()).await;
    let (uuid, body) = vcon();
    let body = body.to_string().into_bytes();
    let post = |headers: Vec<(&'static str, &'static str)>| {
        let api = &api;
        let body = body.clone();
        async move {
            let mut all = vec![("content-type", "application/json")];
            all.extend(headers);
            api.request(Method::POST, "/api/vcon", &all, Some(body)).await
        }
    };
    for headers in [
        vec![],
        vec![("x-conserver-api-token", "")],
        vec![("x-conserver-api-token", "wrong")],
        vec![("authorization", "Bearer s3cret")],
    ] {
        let reply = post(headers.clone()).await;
        assert_eq!((reply.code(), reply.json()), (403, json!({"detail": "Invalid API Key"})), "{headers:?}");
        assert!(reply.headers.get("www-authenticate").is_none());
    }
    assert_eq!(post(vec![("X-CONSERVER-API-TOKEN", "s3cret")]).await.code(), 201);
    assert_eq!(post(vec![("x-conserver-api-token", "other")]).await.code(), 201);
    let read = |token: &'static str| {
        let api = &api;
        let uri = format!("/vcon/{uuid}");
        async move { api.request(Method::GET, &uri, &[("x-conserver-api-token", token)], None).await.code() }
    };
    assert_eq!(read("s3cret").await, 200);
    assert_eq!(read("nope").await, 403);
    for public in ["/api/health", "/health", "/api/version", "/openapi.json", "/docs/"] {
        let code = api.get(public).await.code();
        assert!(code == 200 || code == 307, "{public} answered {code}");
    }
    // Unknown paths and wrong methods answer before auth.
    assert_eq!(api.get("/api/nowhere").await.code(), 404);
    assert_eq!(api.request(Method::PUT, "/api/vcon", &[], None).await.code(), 405);
}

#[tokio::test]
async fn metrics_and_queue_depth_need_the_token_unless_made_public() {
    let api = TestApi::with(Backend::Embedded, with_token()).await;
    for path in ["/metrics", "/api/metrics", "/stats/queue?list_name=x"] {
        let reply = api.get(path).await;
        assert_eq!((reply.code(), reply.json()), (403, json!({"detail": "Invalid API Key"})), "{path}");
        let with = api.request(Method::GET, path, &[("x-conserver-api-token", "s3cret")], None).await;
        assert_eq!(with.code(), 200, "{path}");
    }
    let public = TestApi::with(
        Backend::Embedded,
        Options { guards: conserver_api::Guards { public_metrics: true, ..Default::default() }, ..with_token() },
    )
    .await;
    for path in ["/metrics", "/stats/queue?list_name=x"] {
        assert_eq!(public.get(path).await.code(), 200, "CONSERVER_PUBLIC_METRICS=1 keeps {path} public");
    }
    let open = TestApi::new(Backend::Embedded).await;
    assert_eq!(open.get("/metrics").await.code(), 200, "without a token everything is open on loopback");
}

#[tokio::test]
async fn no_tokens_means_an_open_api() {
    let api = TestApi::new(Backend::Embedded).await;
    assert_eq!(api.post("/api/vcon", &vcon().1).await.code(), 201);
}
