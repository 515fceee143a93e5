//! Bad input gets a clear error and loses nothing: a body that is not a vCon, a
//! config naming a missing component, and requests without the API token.

use std::process::Command;

use serde_json::json;

use crate::support::{Backend, Server, binary, fresh_vcon, unique};

#[tokio::test]
async fn a_body_that_is_not_a_vcon_gets_422_and_enqueues_nothing() {
    let ingress = unique("in");
    let server = Server::start(Backend::Embedded, "", &[]).await;
    for body in ["{not json", "[]", "\"text\"", "{}", r#"{"uuid": "not-a-uuid"}"#] {
        let response = server
            .client
            .post(server.url(&format!("/api/vcon?ingress_lists={ingress}")))
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 422, "{body}");
        let detail: serde_json::Value = response.json().await.unwrap();
        let entry = &detail["detail"][0];
        assert!(entry["msg"].as_str().is_some_and(|m| !m.is_empty()), "{detail}");
        assert_eq!(entry["loc"][0], "body", "{detail}");
    }
    let (_, depth) = server.get_json(&format!("/api/stats/queue?list_name={ingress}")).await;
    assert_eq!(depth["depth"], 0);
    // A bad uuid in the path is a 422 naming the path parameter.
    let (status, body) = server.get_json("/api/vcon/nope").await;
    assert_eq!((status, body["detail"][0]["loc"].clone()), (422, json!(["path", "vcon_uuid"])));
    assert_eq!(
        server.get_json(&format!("/api/vcon/{}", uuid::Uuid::new_v4())).await,
        (404, json!({"detail": "vCon not found"}))
    );
}

#[test]
fn a_config_naming_a_missing_component_is_refused_with_the_link_and_path() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("config.yml");
    std::fs::write(
        &config,
        "links:\n  ghost:\n    component: nowhere/ghost.wasm\nchains:\n  c:\n    links: [ghost]\n    ingress_lists: [in]\n",
    )
    .unwrap();
    let out = Command::new(binary())
        .args(["check", config.to_str().unwrap()])
        .env("CONSERVER_DATA_DIR", dir.path().join("data"))
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("link `ghost`") && stderr.contains("nowhere/ghost.wasm"), "{stderr}");

    // `serve` refuses the same config before listening.
    let out = Command::new(binary())
        .arg("serve")
        .env("CONSERVER_CONFIG_FILE", &config)
        .env("CONSERVER_BIND", "127.0.0.1:0")
        .env("CONSERVER_DATA_DIR", dir.path().join("data"))
        .env_remove("REDIS_URL")
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("link `ghost`"));

    // A valid config passes `check`.
    std::fs::write(
        &config,
        "links:\n  tag:\n    module: links.tag\nchains:\n  c:\n    links: [tag]\n    ingress_lists: [in]\n",
    )
    .unwrap();
    let out = Command::new(binary())
        .args(["check", config.to_str().unwrap()])
        .env("CONSERVER_DATA_DIR", dir.path().join("data"))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
}

#[tokio::test]
async fn the_token_header_guards_everything_but_public_routes() {
    let server = Server::start(Backend::Embedded, "", &[("CONSERVER_API_TOKEN", "s3cret")]).await;
    let (uuid, vcon) = fresh_vcon();
    let url = server.url("/api/vcon");
    let denied = server.client.post(&url).json(&vcon).send().await.unwrap();
    assert_eq!(denied.status(), 403);
    assert_eq!(denied.json::<serde_json::Value>().await.unwrap(), json!({"detail": "Invalid API Key"}));
    let wrong = server.client.post(&url).header("x-conserver-api-token", "nope").json(&vcon).send().await.unwrap();
    assert_eq!(wrong.status(), 403);
    let allowed = server.client.post(&url).header("X-Conserver-Api-Token", "s3cret").json(&vcon).send().await.unwrap();
    assert_eq!(allowed.status(), 201);
    assert_eq!(server.get_json("/health").await.0, 200);
    assert_eq!(server.get_json("/api/version").await.0, 200);
    assert_eq!(server.get_json(&format!("/api/vcon/{uuid}")).await.0, 403);
}
