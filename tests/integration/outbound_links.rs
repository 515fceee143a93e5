//! Links and tracers that call out, as components in the real host against local
//! servers speaking their wire format: the `webhook` link (with the 0.0.1 egress
//! option) and the `jlinc` tracer (JLINC data-store API).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::Path;
use axum::http::HeaderMap;
use axum::routing::post;
use serde_json::{Value, json};

use crate::support::{Backend, Server, fresh_vcon, unique};

type Seen = Arc<Mutex<Vec<(String, String, Value)>>>;

/// Records `(path, authorization, body)` of every POST; answers as a JLINC data
/// store for `/api/v1/data/...` and 200 `ok` elsewhere.
async fn recorder() -> (u16, Seen) {
    let seen: Seen = Arc::default();
    let record = seen.clone();
    let app = axum::Router::new().route(
        "/{*path}",
        post(move |Path(path): Path<String>, headers: HeaderMap, body: axum::Json<Value>| {
            let record = record.clone();
            async move {
                let auth = headers.get("authorization").and_then(|v| v.to_str().ok()).unwrap_or_default().to_string();
                record.lock().unwrap().push((path.clone(), auth, body.0.clone()));
                let answer = match path.as_str() {
                    "api/v1/data/entity/domains/get" => json!(["vcon.local"]),
                    "api/v1/data/entity/get" => json!({}),
                    "api/v1/data/entity/create" => {
                        json!({"didDoc": {"id": format!("did:jlinc:{}", body.0["shortName"])}})
                    }
                    "api/v1/data/event/produce" => json!({"created": {"eventId": "evt-1"}}),
                    _ => json!({"ok": true}),
                };
                axum::Json(answer)
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (port, seen)
}

#[tokio::test]
async fn webhook_posts_the_vcon_and_jlinc_records_each_step() {
    let (port, seen) = recorder().await;
    let ingress = unique("out-in");
    let egress = unique("out-out");
    let allowed = format!("    allowed_outbound_hosts: ['http://127.0.0.1:{port}']");
    let config = [
        "links:".to_string(),
        format!("  notify:\n    module: links.webhook\n{allowed}\n    options:\n      webhook-urls: ['http://127.0.0.1:{port}/hook']\n      headers: {{x-api-key: k123}}\n      egress_format_version: '0.0.1'"),
        "tracers:".into(),
        format!("  audit:\n    module: tracers.jlinc\n{allowed}\n    options:\n      data_store_api_url: 'http://127.0.0.1:{port}'\n      data_store_api_key: dskey\n      system_prefix: Test"),
        "chains:".into(),
        format!("  main:\n    links: [notify]\n    ingress_lists: [{ingress}]\n    egress_lists: [{egress}]"),
    ]
    .join("\n");
    let server = Server::start(Backend::Embedded, &config, &[]).await;
    let (uuid, vcon) = fresh_vcon();
    assert_eq!(server.post_vcon(&vcon, &ingress).await.status(), 201);
    server.wait_for_egress(&egress, &uuid, Duration::from_secs(30)).await;

    let calls = seen.lock().unwrap().clone();
    let hooks: Vec<&Value> = calls.iter().filter(|(p, _, _)| p == "hook").map(|(_, _, body)| body).collect();
    assert_eq!(hooks.len(), 1, "{calls:?}");
    assert_eq!(hooks[0]["uuid"], uuid.as_str());
    assert_eq!(hooks[0]["vcon"], "0.0.1", "the egress_format_version option downgrades the body");

    let events: Vec<&Value> =
        calls.iter().filter(|(p, _, _)| p == "api/v1/data/event/produce").map(|(_, _, body)| body).collect();
    assert_eq!(events.len(), 2, "one event before the link and one after: {calls:?}");
    assert_eq!(events[0]["senderShortName"], "test-system@vcon.local");
    assert_eq!(events[0]["recipientShortName"], "test-notify@vcon.local");
    assert_eq!(events[1]["senderShortName"], "test-notify@vcon.local");
    assert_eq!(events[1]["meta"]["out_vcon_uuid"], uuid.as_str());
    assert!(events[1]["data"]["hash"].as_str().is_some_and(|h| h.len() == 64), "{}", events[1]["data"]);
    assert!(
        calls.iter().filter(|(p, _, _)| p.starts_with("api/")).all(|(_, auth, _)| auth == "Bearer dskey"),
        "every data-store call carries the key"
    );
}
