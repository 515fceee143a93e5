//! OpenTelemetry and Prometheus: a chain with a succeeding and a failing link,
//! exported over OTLP/gRPC and over OTLP/HTTP to a collector stand-in. The spans
//! (`vcon_processing.{chain}` linked to the producer's trace, `link.{name}`,
//! `storage.{name}`), the metrics with the Python names and the deployment guide's
//! attributes, the same metrics on `/metrics`, and JSON logs carrying the request
//! id and the vCon uuid without the API token.

use std::time::Duration;

use serde_json::Value;

use crate::support::otlp::{Collector, Received, attribute, points};
use crate::support::{Backend, Server, component, fresh_vcon, unique};

const TRACE_ID: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const TOKEN: &str = "telemetry-test-token-5f1e";

fn config(ok_in: &str, ok_out: &str, fail_in: &str, store: &std::path::Path) -> String {
    format!(
        r#"links:
  tag:
    component: {tag}
    options: {{tags: [otel]}}
  spinner:
    component: {spin}
    limits: {{fuel: 50000000}}
storages:
  files:
    module: storage.file
    options:
      path: {store}
chains:
  otel_ok:
    links: [tag]
    ingress_lists: [{ok_in}]
    egress_lists: [{ok_out}]
    storages: [files]
  otel_fail:
    links: [tag, spinner]
    ingress_lists: [{fail_in}]
"#,
        tag = component("tag.wasm").display(),
        spin = component("testing/spin.wasm").display(),
        store = store.display(),
    )
}

fn span<'a>(received: &'a Received, name: &str, uuid: &str) -> &'a opentelemetry_proto::tonic::trace::v1::Span {
    received
        .spans
        .iter()
        .map(|(_, span)| span)
        .find(|span| span.name == name && attribute(&span.attributes, "vcon_id").as_deref() == Some(uuid))
        .unwrap_or_else(|| {
            let names: Vec<&str> = received.spans.iter().map(|(_, s)| s.name.as_str()).collect();
            panic!("no span {name} for {uuid}; got {names:?}")
        })
}

/// The largest value any export reported for `name` with all of `attributes`
/// (cumulative temporality: the last export holds the totals).
fn metric_value(received: &Received, name: &str, attributes: &[(&str, &str)]) -> f64 {
    received
        .metrics
        .iter()
        .filter(|(_, metric)| metric.name == name)
        .flat_map(|(_, metric)| points(metric))
        .filter(|(attrs, _)| attributes.iter().all(|(k, v)| attribute(attrs, k).as_deref() == Some(*v)))
        .map(|(_, value)| value)
        .fold(0.0, f64::max)
}

const STATUS_ERROR: i32 = 2;

async fn chain_with_failing_and_succeeding_link(protocol: &str) {
    let collector = Collector::start().await;
    let (ok_in, ok_out, fail_in) = (unique("otel-ok"), unique("otel-ok-out"), unique("otel-fail"));
    let store = tempfile::tempdir().unwrap();
    let env = [
        ("OTEL_EXPORTER_OTLP_ENDPOINT", collector.endpoint.as_str()),
        ("OTEL_EXPORTER_OTLP_PROTOCOL", protocol),
        ("OTEL_METRIC_EXPORT_INTERVAL", "500"),
        ("OTEL_BSP_SCHEDULE_DELAY", "200"),
        ("OTEL_SERVICE_NAME", "conserver-test"),
        ("LOG_FORMAT", "json"),
        ("CONSERVER_API_TOKEN", TOKEN),
        // /metrics is read below without the token.
        ("CONSERVER_PUBLIC_METRICS", "1"),
    ];
    let mut server = Server::start(Backend::Redis, &config(&ok_in, &ok_out, &fail_in, store.path()), &env).await;

    // A producer's trace: the API request joins it, and the worker links to it.
    let (good, vcon) = fresh_vcon();
    let response = server
        .client
        .post(server.url(&format!("/api/vcon?ingress_lists={ok_in}")))
        .header("x-conserver-api-token", TOKEN)
        .header("x-request-id", "req-telemetry-1")
        .header("traceparent", format!("00-{TRACE_ID}-00f067aa0ba902b7-01"))
        .json(&vcon)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    assert_eq!(response.headers()["x-request-id"], "req-telemetry-1");
    let (bad, vcon) = fresh_vcon();
    let response = server
        .client
        .post(server.url(&format!("/api/vcon?ingress_lists={fail_in}")))
        .header("x-conserver-api-token", TOKEN)
        .json(&vcon)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    let generated_id = response.headers()["x-request-id"].to_str().unwrap().to_string();
    assert_eq!(generated_id.len(), 36, "a fresh uuid when the caller sent none: {generated_id}");

    wait_listed(&server, &format!("/api/vcon/egress?egress_list={ok_out}"), &good).await;
    wait_listed(&server, &format!("/api/dlq?ingress_list={fail_in}"), &bad).await;

    // The same metrics on /metrics, with Prometheus label names.
    let prometheus = server.get_text("/metrics").await;
    for expected in [
        "conserver_link_count_total{link_name=\"tag\",outcome=\"success\"}".to_string(),
        "conserver_link_count_total{link_name=\"spinner\",outcome=\"error\"}".to_string(),
        "conserver_link_limit_breaches_total{link_name=\"spinner\",chain_name=\"otel_fail\",kind=\"fuel\"} 1".to_string(),
        "conserver_link_duration_ms_count{link_name=\"spinner\",chain_name=\"otel_fail\",status=\"error\",cache_hit=\"false\"} 1".to_string(),
        format!("conserver_dlq_count_total{{queue_name=\"DLQ:{fail_in}\"}} 1"),
        format!("conserver_main_loop_count_vcons_received_total{{ingress_list=\"{ok_in}\"}} 1"),
        format!("conserver_api_count_vcons_enqueued_total{{ingress_list=\"{ok_in}\",source=\"new\"}} 1"),
        "conserver_storage_count_total{backend=\"files\",outcome=\"success\"}".to_string(),
        "conserver_link_memory_peak_bytes_count{link_name=\"tag\",chain_name=\"otel_ok\"}".to_string(),
        "conserver_main_loop_vcon_processing_time_seconds_count{chain_name=\"otel_ok\"}".to_string(),
    ] {
        assert!(prometheus.contains(&expected), "/metrics lacks `{expected}`:\n{prometheus}");
    }

    // Stopping flushes the last spans and metrics.
    assert!(server.terminate(Duration::from_secs(30)).await.is_some_and(|s| s.success()), "{}", server.log_text());
    // Shown when an assertion below fails.
    eprintln!("server log:\n{}", server.log_text());
    collector.with(|received| {
        let wire = if protocol == "grpc" { "grpc" } else { "http" };
        assert!(received.requests.get(wire).copied().unwrap_or(0) > 0, "nothing arrived over {wire}");

        // Spans.
        let root = span(received, "vcon_processing.otel_ok", &good);
        assert_eq!(attribute(&root.attributes, "vcon.uuid").as_deref(), Some(good.as_str()));
        assert_eq!(attribute(&root.attributes, "chain_name").as_deref(), Some("otel_ok"));
        assert!(
            root.links.iter().any(|link| hex(&link.trace_id) == TRACE_ID),
            "the chain span is not linked to the producer's trace {TRACE_ID}: {:?}",
            root.links
        );
        let tag = span(received, "link.tag", &good);
        assert_eq!(attribute(&tag.attributes, "link_name").as_deref(), Some("tag"));
        assert_eq!(attribute(&tag.attributes, "link_index").as_deref(), Some("0"));
        assert_eq!(tag.parent_span_id, root.span_id, "link spans are children of the chain span");
        let storage = span(received, "storage.files", &good);
        assert_eq!(storage.trace_id, root.trace_id);
        let api = received
            .spans
            .iter()
            .map(|(_, s)| s)
            .find(|s| attribute(&s.attributes, "request_id").as_deref() == Some("req-telemetry-1"))
            .expect("the API request span");
        assert_eq!(hex(&api.trace_id), TRACE_ID, "the API span continues the caller's traceparent");

        let failed_root = span(received, "vcon_processing.otel_fail", &bad);
        assert_eq!(failed_root.status.as_ref().map(|s| s.code), Some(STATUS_ERROR));
        let spinner = span(received, "link.spinner", &bad);
        let status = spinner.status.as_ref().expect("a status on the failed link");
        assert_eq!(status.code, STATUS_ERROR);
        assert!(status.message.contains("fuel exhausted"), "{}", status.message);
        let tag_before = span(received, "link.tag", &bad);
        assert_ne!(tag_before.status.as_ref().map(|s| s.code), Some(STATUS_ERROR));

        // Resource.
        let (resource, _) = &received.spans[0];
        assert_eq!(attribute(resource, "service.name").as_deref(), Some("conserver-test"));
        assert!(attribute(resource, "service.instance.id").is_some_and(|id| id.contains("-pid-")));

        // Metrics, with the Python names and the guide's attributes.
        let value = |name: &str, attrs: &[(&str, &str)]| metric_value(received, name, attrs);
        assert_eq!(value("conserver.link.count", &[("link_name", "tag"), ("outcome", "success")]), 2.0);
        assert_eq!(value("conserver.link.count", &[("link_name", "spinner"), ("outcome", "error")]), 1.0);
        let tag_ok = [("link_name", "tag"), ("chain.name", "otel_fail"), ("status", "ok"), ("cache_hit", "false")];
        assert_eq!(value("conserver.link.duration_ms", &tag_ok), 1.0);
        assert_eq!(value("conserver.link.duration_ms", &[("link_name", "spinner"), ("status", "error")]), 1.0);
        assert_eq!(value("conserver.link.execution_time", &[("link.name", "tag"), ("chain.name", "otel_ok")]), 1.0);
        assert_eq!(value("conserver.link.limit_breaches", &[("link_name", "spinner"), ("kind", "fuel")]), 1.0);
        let tag_in_ok = [("link_name", "tag"), ("chain.name", "otel_ok")];
        assert_eq!(value("conserver.link.fuel_used", &tag_in_ok), 1.0, "one observation per call");
        assert_eq!(value("conserver.link.memory_peak_bytes", &tag_in_ok), 1.0);
        assert_eq!(value("conserver.main_loop.count_vcons_received", &[("ingress_list", ok_in.as_str())]), 1.0);
        assert_eq!(value("conserver.main_loop.count_vcons_processed", &[("chain.name", "otel_ok")]), 1.0);
        assert_eq!(value("conserver.main_loop.vcon_processing_time", &[("chain.name", "otel_ok")]), 1.0);
        assert_eq!(value("conserver.dlq.count", &[("queue_name", format!("DLQ:{fail_in}").as_str())]), 1.0);
        assert_eq!(
            value("conserver.api.count_vcons_enqueued", &[("ingress_list", ok_in.as_str()), ("source", "new")]),
            1.0
        );
        assert_eq!(value("conserver.storage.count", &[("backend", "files"), ("outcome", "success")]), 1.0);
        assert!(
            received.metrics.iter().any(|(_, m)| m.name == "conserver.ingress_list.length"),
            "the queue-length gauge was never exported"
        );
    });

    // JSON logs: one object per line, with the request id and the vCon uuid,
    // and never the token.
    let log = server.log_text();
    assert!(!log.contains(TOKEN), "the API token appears in the log");
    let lines: Vec<Value> = log.lines().filter_map(|line| serde_json::from_str(line).ok()).collect();
    assert!(!lines.is_empty(), "no JSON log lines:\n{log}");
    let has = |needle: &str| lines.iter().any(|line| line.to_string().contains(needle));
    assert!(has("\"request_id\":\"req-telemetry-1\""), "no log line carries the request id:\n{log}");
    assert!(has(&format!("\"vcon_uuid\":\"{bad}\"")), "no log line carries the vCon uuid:\n{log}");
}

/// Poll `path` (with the token) until its JSON list holds `uuid`.
async fn wait_listed(server: &Server, path: &str, uuid: &str) {
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let listed = server
            .client
            .get(server.url(path))
            .header("x-conserver-api-token", TOKEN)
            .send()
            .await
            .unwrap()
            .json::<Value>()
            .await
            .unwrap();
        if listed.as_array().is_some_and(|uuids| uuids.iter().any(|u| u == uuid)) {
            return;
        }
        assert!(std::time::Instant::now() < deadline, "{uuid} never appeared in {path}:\n{}", server.log_text());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[tokio::test]
async fn otlp_grpc_receives_spans_and_metrics() {
    chain_with_failing_and_succeeding_link("grpc").await;
}

#[tokio::test]
async fn otlp_http_receives_spans_and_metrics() {
    chain_with_failing_and_succeeding_link("http/protobuf").await;
}
