//! Tracers in the real host (the `trace_recorder` fixture component): called
//! before the first link and after each link with the chain's link names, only
//! those a chain lists, a failing one logged — or, with `dlq_vcon_on_error`,
//! dead-lettering the vCon with the tracer named.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::routing::post;
use serde_json::{Value, json};

use crate::support::{Backend, Server, component, fresh_vcon, unique};

async fn collector() -> (u16, Arc<Mutex<Vec<Value>>>) {
    let seen: Arc<Mutex<Vec<Value>>> = Arc::default();
    let record = seen.clone();
    let app = axum::Router::new().route(
        "/trace",
        post(move |body: axum::Json<Value>| {
            let record = record.clone();
            async move {
                record.lock().unwrap().push(body.0);
                "ok"
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (port, seen)
}

#[tokio::test]
async fn tracers_see_every_step_and_fail_only_when_told() {
    let (port, seen) = collector().await;
    let recorder = component("testing/trace_recorder.wasm");
    let r = recorder.display();
    let traced_in = unique("traced");
    let traced_out = unique("traced-out");
    let strict_in = unique("strict");
    let config = [
        "links:".to_string(),
        "  first:\n    module: links.tag".into(),
        "  second:\n    module: links.tag\n    options: {tags: [x]}".into(),
        "tracers:".into(),
        format!("  recorder:\n    component: {r}\n    allowed_outbound_hosts: ['http://127.0.0.1:{port}']"),
        format!("    options: {{url: 'http://127.0.0.1:{port}/trace'}}"),
        format!("  lenient:\n    component: {r}\n    options: {{fail_at: 0}}"),
        format!("  strict:\n    component: {r}\n    options: {{fail_at: 1, dlq_vcon_on_error: true}}"),
        "chains:".into(),
        format!("  traced:\n    links: [first, second]\n    tracers: [recorder, lenient]\n    ingress_lists: [{traced_in}]\n    egress_lists: [{traced_out}]"),
        format!("  strict:\n    links: [first, second]\n    tracers: [strict]\n    ingress_lists: [{strict_in}]"),
    ]
    .join("\n");
    let server = Server::start(Backend::Embedded, &config, &[]).await;

    let (uuid, vcon) = fresh_vcon();
    assert_eq!(server.post_vcon(&vcon, &traced_in).await.status(), 201);
    server.wait_for_egress(&traced_out, &uuid, Duration::from_secs(30)).await;
    let points: Vec<Value> = seen.lock().unwrap().iter().filter(|p| p["vcon_uuid"] == uuid.as_str()).cloned().collect();
    let indices: Vec<i64> = points.iter().map(|p| p["link_index"].as_i64().unwrap()).collect();
    assert_eq!(indices, [-1, 0, 1], "{points:?}");
    for point in &points {
        assert_eq!(point["tracer"], "recorder");
        assert_eq!(point["chain"], "traced");
        assert_eq!(point["links"], json!(["first", "second"]));
        assert_eq!(point["in_vcon_uuid"], uuid.as_str());
    }
    assert!(server.log_text().contains("Error in tracer"), "the lenient tracer's failure is logged");

    let (bad, vcon) = fresh_vcon();
    assert_eq!(server.post_vcon(&vcon, &strict_in).await.status(), 201);
    let reason = server.wait_for_dlq(&strict_in, &bad, Duration::from_secs(30)).await;
    assert_eq!(reason["link"], "tracer:strict", "{reason}");
    assert!(reason["error"].as_str().unwrap_or_default().contains("failing at link 1 on purpose"), "{reason}");
}
