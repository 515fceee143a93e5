//! What the host grants a link, through the real binary and the `fetch` fixture
//! component: outbound HTTP only to the hosts on the link's list (internal
//! addresses only when named), capped answers, a server that never answers,
//! secrets only when granted and never in the DLQ reason or the log, and a cache
//! shared between calls. Every failure is a clear DLQ reason and the next vCon is
//! processed normally.

use std::time::Duration;

use axum::routing::get;

use crate::support::{Backend, Server, component, fresh_vcon, unique};

/// A local HTTP server: `/ok` answers "hello", `/huge` 20 MiB, `/never` nothing.
async fn upstream() -> u16 {
    let app = axum::Router::new()
        .route("/ok", get(|| async { "hello" }))
        .route("/huge", get(|| async { vec![b'x'; 20 * 1024 * 1024] }))
        .route(
            "/never",
            get(|| async {
                tokio::time::sleep(Duration::from_secs(3600)).await;
                "late"
            }),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    port
}

struct Case {
    name: &'static str,
    allowed: String,
    secrets: &'static str,
    options: String,
    /// `None`: the vCon completes; `Some(text)`: its DLQ reason contains `text`.
    expected_error: Option<&'static str>,
}

const SECRET: &str = "s3cr3t-value-for-the-test";

#[tokio::test]
async fn links_get_only_what_their_config_grants() {
    let port = upstream().await;
    let ok = format!("http://127.0.0.1:{port}/ok");
    let listed = format!("['http://127.0.0.1:{port}']");
    let cases = vec![
        Case {
            name: "allowed",
            allowed: listed.clone(),
            secrets: "[]",
            options: format!("{{url: '{ok}'}}"),
            expected_error: None,
        },
        Case {
            name: "unlisted",
            allowed: "['https://api.openai.com']".into(),
            secrets: "[]",
            options: format!("{{url: '{ok}'}}"),
            expected_error: Some("denied by the host"),
        },
        Case {
            name: "wildcard_to_loopback",
            allowed: format!("['http://*:{port}']"),
            secrets: "[]",
            options: format!("{{url: '{ok}'}}"),
            expected_error: Some("denied by the host"),
        },
        Case {
            name: "huge",
            allowed: listed.clone(),
            secrets: "[]",
            options: format!("{{url: 'http://127.0.0.1:{port}/huge'}}"),
            expected_error: Some("larger than the host allows"),
        },
        Case {
            name: "never",
            allowed: listed.clone(),
            secrets: "[]",
            options: format!("{{url: 'http://127.0.0.1:{port}/never'}}"),
            expected_error: Some("timeout"),
        },
        Case {
            name: "ungranted_secret",
            allowed: "[]".into(),
            secrets: "[]",
            options: "{secret: CONSERVER_TEST_SECRET}".into(),
            expected_error: Some("not granted"),
        },
        Case {
            name: "leaky",
            allowed: "[]".into(),
            secrets: "[CONSERVER_TEST_SECRET]",
            options: "{secret: CONSERVER_TEST_SECRET, leak_secret: true}".into(),
            expected_error: Some("leaking [redacted] on purpose"),
        },
        Case {
            name: "granted_secret",
            allowed: "[]".into(),
            secrets: "[CONSERVER_TEST_SECRET]",
            options: "{secret: CONSERVER_TEST_SECRET}".into(),
            expected_error: None,
        },
    ];
    let good_in = unique("good");
    let good_out = unique("good-out");
    let mut links = format!("  tag:\n    component: {}\n", component("tag.wasm").display());
    let mut chains =
        format!("  good:\n    links: [tag]\n    ingress_lists: [{good_in}]\n    egress_lists: [{good_out}]\n");
    let mut lists = Vec::new();
    for case in &cases {
        let list = unique(case.name);
        links += &format!(
            "  {}:\n    component: {}\n    limits: {{timeout_ms: 2000, memory_bytes: 268435456}}\n    allowed_outbound_hosts: {}\n    secrets: {}\n    options: {}\n",
            case.name,
            component("testing/fetch.wasm").display(),
            case.allowed,
            case.secrets,
            case.options
        );
        chains += &format!(
            "  {}:\n    links: [{}]\n    ingress_lists: [{list}]\n    egress_lists: [{list}-out]\n",
            case.name, case.name
        );
        lists.push(list);
    }
    let config = format!("links:\n{links}chains:\n{chains}");
    let server = Server::start(Backend::Embedded, &config, &[("CONSERVER_TEST_SECRET", SECRET)]).await;

    for (case, list) in cases.iter().zip(&lists) {
        let (uuid, vcon) = fresh_vcon();
        assert_eq!(server.post_vcon(&vcon, list).await.status(), 201);
        match case.expected_error {
            None => {
                server.wait_for_egress(&format!("{list}-out"), &uuid, Duration::from_secs(30)).await;
                let (status, stored) = server.get_json(&format!("/api/vcon/{uuid}")).await;
                assert_eq!(status, 200);
                if case.name == "allowed" {
                    assert_eq!(stored["fetch"]["status"], 200, "{}", stored["fetch"]);
                    assert_eq!(stored["fetch"]["body"], "hello");
                } else {
                    assert_eq!(stored["fetch"]["secret_len"], SECRET.len());
                }
            }
            Some(expected) => {
                let reason = server.wait_for_dlq(list, &uuid, Duration::from_secs(60)).await;
                let error = reason["error"].as_str().unwrap_or_default();
                assert!(error.contains(expected), "{}: expected `{expected}` in `{error}`", case.name);
                assert!(!error.contains(SECRET), "{}: the secret leaked into the DLQ reason", case.name);
            }
        }
        let (good, vcon) = fresh_vcon();
        assert_eq!(server.post_vcon(&vcon, &good_in).await.status(), 201);
        server.wait_for_egress(&good_out, &good, Duration::from_secs(30)).await;
    }
    assert!(!server.log_text().contains(SECRET), "the secret leaked into the log");
}

#[tokio::test]
async fn the_cache_is_shared_between_calls_and_private_to_the_link() {
    let list = unique("cache");
    let other = unique("cache-other");
    let fetch = component("testing/fetch.wasm");
    let key = unique("key");
    let config = format!(
        "links:\n  first:\n    component: {p}\n    options: {{cache_key: {key}, cache_value: one}}\n  second:\n    component: {p}\n    options: {{cache_key: {key}, cache_value: two}}\nchains:\n  a:\n    links: [first]\n    ingress_lists: [{list}]\n    egress_lists: [{list}-out]\n  b:\n    links: [second]\n    ingress_lists: [{other}]\n    egress_lists: [{other}-out]\n",
        p = fetch.display()
    );
    for backend in [Backend::Embedded, Backend::Redis] {
        let server = Server::start(backend, &config, &[]).await;
        let mut seen = Vec::new();
        for ingress in [&list, &list, &other] {
            let (uuid, vcon) = fresh_vcon();
            assert_eq!(server.post_vcon(&vcon, ingress).await.status(), 201);
            server.wait_for_egress(&format!("{ingress}-out"), &uuid, Duration::from_secs(30)).await;
            let (_, stored) = server.get_json(&format!("/api/vcon/{uuid}")).await;
            seen.push(stored["fetch"]["cached"].clone());
        }
        assert_eq!(seen[0], serde_json::Value::Null, "nothing cached at first");
        assert_eq!(seen[1], "one", "the second call sees the first call's entry");
        assert_eq!(seen[2], serde_json::Value::Null, "another link has its own namespace");
    }
}
