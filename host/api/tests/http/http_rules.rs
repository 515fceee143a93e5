//! Cross-cutting HTTP behaviour: both route prefixes, error shapes, version
//! headers, CORS, redirects, HEAD, body limits and content types, OpenAPI.

use axum::http::Method;
use serde_json::{Value, json};

use conserver_api::{Cors, Guards};

use crate::support::{Backend, Options, TestApi, vcon};

#[tokio::test]
async fn routes_answer_under_the_root_path_and_unprefixed() {
    let api = TestApi::new(Backend::Embedded).await;
    let health = api.get("/api/health").await;
    assert_eq!(
        health.json(),
        json!({
            "status": "healthy",
            "version": {"version": "test-version", "git_commit": "test-commit", "build_time": "unknown"},
            "broker": {"backend": "embedded", "status": "ok"}
        })
    );
    assert_eq!(api.get("/health").await.json(), health.json());
    assert_eq!(
        api.get("/version").await.json(),
        json!({"version": "test-version", "git_commit": "test-commit", "build_time": "unknown"})
    );
    assert_eq!(api.get("/apix/health").await.code(), 404);
    assert_eq!(api.get("/api").await.code(), 404);
    let custom = TestApi::with(Backend::Embedded, Options { root_path: "/v1".into(), ..Options::default() }).await;
    assert_eq!(custom.get("/v1/health").await.code(), 200);
    assert_eq!(custom.get("/health").await.code(), 200);
    assert_eq!(custom.get("/api/health").await.code(), 404);
    let bare = TestApi::with(Backend::Embedded, Options { root_path: String::new(), ..Options::default() }).await;
    assert_eq!(bare.get("/health").await.code(), 200);
}

#[tokio::test]
async fn errors_have_the_fastapi_shapes_and_version_headers() {
    let api = TestApi::new(Backend::Embedded).await;
    let missing = api.get("/nowhere").await;
    assert_eq!((missing.code(), missing.json()), (404, json!({"detail": "Not Found"})));
    assert_eq!(missing.headers["x-vcon-server-version"], "test-version");
    assert_eq!(missing.headers["x-vcon-server-commit"], "test-commit");
    let wrong = api.request(Method::PATCH, "/api/vcon", &[], None).await;
    assert_eq!((wrong.code(), wrong.json()), (405, json!({"detail": "Method Not Allowed"})));
    assert_eq!(api.request(Method::HEAD, "/api/health", &[], None).await.code(), 405);
    let invalid = api.post("/api/vcon", &json!({"uuid": "x"})).await;
    let entry = &invalid.json()["detail"][0];
    assert_eq!(
        (invalid.code(), entry["type"].clone(), entry["loc"].clone()),
        (422, json!("uuid_parsing"), json!(["body", "uuid"]))
    );
    assert!(invalid.headers.contains_key("x-vcon-server-version"));
}

#[tokio::test]
async fn cors_is_off_unless_configured() {
    let api = TestApi::new(Backend::Embedded).await;
    let preflight = api
        .request(
            Method::OPTIONS,
            "/api/vcon",
            &[("origin", "https://ui.example"), ("access-control-request-method", "POST")],
            None,
        )
        .await;
    // Not answered as a preflight (and, with no token, refused as cross-site).
    assert_eq!(preflight.code(), 403);
    assert!(preflight.headers.get("access-control-allow-origin").is_none());
    let listed = TestApi::with(
        Backend::Embedded,
        Options {
            tokens: vec!["t".into()],
            guards: Guards { cors: Cors::from_origins(&["https://ui.example".into()]), ..Guards::default() },
            ..Options::default()
        },
    )
    .await;
    let allowed = listed.request(Method::GET, "/api/health", &[("origin", "https://UI.example")], None).await;
    assert_eq!(allowed.headers["access-control-allow-origin"], "https://UI.example");
    let other = listed.request(Method::GET, "/api/health", &[("origin", "https://evil.example")], None).await;
    assert!(other.headers.get("access-control-allow-origin").is_none());
    let preflight = listed
        .request(
            Method::OPTIONS,
            "/api/vcon",
            &[("origin", "https://evil.example"), ("access-control-request-method", "POST")],
            None,
        )
        .await;
    assert_eq!(preflight.code(), 405);
}

#[tokio::test]
async fn cors_star_allows_everything_like_the_python_server() {
    let api = TestApi::with(
        Backend::Embedded,
        Options {
            tokens: vec!["t".into()],
            guards: Guards { cors: Cors::from_origins(&["*".into()]), ..Guards::default() },
            ..Options::default()
        },
    )
    .await;
    let preflight = api
        .request(
            Method::OPTIONS,
            "/api/vcon",
            &[
                ("origin", "https://ui.example"),
                ("access-control-request-method", "POST"),
                ("access-control-request-headers", "x-conserver-api-token"),
            ],
            None,
        )
        .await;
    assert_eq!((preflight.code(), preflight.bytes.as_ref()), (200, &b"OK"[..]));
    assert_eq!(preflight.headers["access-control-allow-origin"], "https://ui.example");
    assert_eq!(preflight.headers["access-control-allow-credentials"], "true");
    assert_eq!(preflight.headers["access-control-allow-headers"], "x-conserver-api-token");
    assert_eq!(preflight.headers["access-control-max-age"], "600");
    let simple = api.request(Method::GET, "/api/health", &[("origin", "https://ui.example")], None).await;
    assert_eq!(simple.headers["access-control-allow-origin"], "*");
    assert_eq!(api.request(Method::OPTIONS, "/api/vcon", &[], None).await.code(), 405);
}

#[tokio::test]
async fn trailing_slashes_redirect() {
    let api = TestApi::new(Backend::Embedded).await;
    let reply = api.get("/api/vcon/?page=2").await;
    assert_eq!((reply.code(), reply.headers["location"].to_str().unwrap()), (307, "/api/vcon?page=2"));
}

#[tokio::test]
async fn trailing_slash_redirects_never_leave_the_server() {
    let api = TestApi::new(Backend::Embedded).await;
    for (path, location) in [("//evil.example/", "/evil.example"), ("///evil.example/x/", "/evil.example/x")] {
        let reply = api.get(path).await;
        assert_eq!((reply.code(), reply.headers["location"].to_str().unwrap()), (307, location), "{path}");
    }
}

#[tokio::test]
async fn bodies_over_the_limit_get_413_and_non_json_types_422() {
    let api = TestApi::with(Backend::Embedded, Options { max_body_bytes: 1024, ..Options::default() }).await;
    let (_, mut body) = vcon();
    body["padding"] = Value::String("x".repeat(4096));
    let big = api.post("/api/vcon", &body).await;
    assert_eq!(big.code(), 413);
    assert!(big.json()["detail"].as_str().unwrap().contains("CONSERVER_MAX_BODY_BYTES"));
    let (_, small) = vcon();
    let text = api
        .request(Method::POST, "/api/vcon", &[("content-type", "text/plain")], Some(small.to_string().into_bytes()))
        .await;
    assert_eq!(text.code(), 422);
    let vendor = api
        .request(
            Method::POST,
            "/api/vcon",
            &[("content-type", "application/vcon+json")],
            Some(small.to_string().into_bytes()),
        )
        .await;
    assert_eq!(vendor.code(), 201);
    // Without a token a body must say it is JSON (a browser sends a cross-site
    // body without a preflight only untyped or as text/plain); with a token an
    // untyped body is JSON, as in the Python server.
    let (untyped_uuid, untyped_body) = vcon();
    let untyped = api.request(Method::POST, "/api/vcon", &[], Some(untyped_body.to_string().into_bytes())).await;
    assert_eq!(untyped.code(), 422);
    assert!(untyped.bytes.windows(16).any(|w| w == b"application/json"), "{:?}", untyped.bytes);
    assert_eq!(api.get(&format!("/api/vcon/{untyped_uuid}")).await.code(), 404, "nothing was stored");
    let with_token = TestApi::with(Backend::Embedded, Options { tokens: vec!["t".into()], ..Options::default() }).await;
    let untyped = with_token
        .request(Method::POST, "/api/vcon", &[("x-conserver-api-token", "t")], Some(vcon().1.to_string().into_bytes()))
        .await;
    assert_eq!(untyped.code(), 201);
    assert_eq!(api.post_raw("/api/vcon", Vec::new()).await.code(), 422);
}

#[tokio::test]
async fn openapi_describes_every_route_and_swagger_is_served() {
    let api = TestApi::new(Backend::Embedded).await;
    let doc = api.get("/openapi.json").await.json();
    let paths: Vec<&String> = doc["paths"].as_object().unwrap().keys().collect();
    for route in [
        "/health",
        "/version",
        "/stats/queue",
        "/vcon",
        "/vcon/{vcon_uuid}",
        "/vcons",
        "/vcons/search",
        "/vcon/external-ingress",
        "/vcon/ingress",
        "/vcon/egress",
        "/vcon/count",
        "/config",
        "/dlq",
        "/dlq/reprocess",
        "/index_vcons",
    ] {
        assert!(paths.iter().any(|p| *p == route), "{route} missing from {paths:?}");
    }
    assert_eq!(doc["servers"][0]["url"], "/api");
    assert_eq!(api.get("/api/openapi.json").await.json(), doc);
    let ui = api.get("/docs/").await;
    assert_eq!(ui.code(), 200);
    assert!(String::from_utf8_lossy(&ui.bytes).to_lowercase().contains("swagger"));
}
