//! Issue #16, items 1, 10 and 13, on the real binary: without a token the server
//! stays on loopback and refuses to listen elsewhere, answers only loopback
//! `Host`s, refuses `POST /config` until a token is set (or
//! `CONSERVER_ALLOW_OPEN=1`), loads components only from the component
//! directories (never a device, a FIFO or a file elsewhere), never echoes a
//! substituted secret, and never redirects to another host.

use std::process::Command;

use serde_json::{Value, json};

use crate::support::{Backend, Server, binary, component};

#[test]
fn an_open_server_refuses_to_listen_beyond_loopback() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("config.yml");
    std::fs::write(&config, "").unwrap();
    let out = Command::new(binary())
        .arg("serve")
        .env("CONSERVER_CONFIG_FILE", &config)
        .env("CONSERVER_BIND", "0.0.0.0:0")
        .env("CONSERVER_DATA_DIR", dir.path().join("data"))
        .env_remove("REDIS_URL")
        .env_remove("CONSERVER_API_TOKEN")
        .env_remove("CONSERVER_API_TOKEN_FILE")
        .env_remove("CONSERVER_ALLOW_OPEN")
        .output()
        .unwrap();
    assert!(!out.status.success(), "it started on 0.0.0.0 without a token");
    let stderr = String::from_utf8_lossy(&out.stderr);
    for needed in ["CONSERVER_BIND=0.0.0.0:0", "CONSERVER_API_TOKEN", "CONSERVER_ALLOW_OPEN=1"] {
        assert!(stderr.contains(needed), "the error should name {needed}: {stderr}");
    }
}

async fn post_config(server: &Server, document: &Value, token: Option<&str>) -> (u16, String) {
    let mut request = server.client.post(server.url("/api/config")).json(document);
    if let Some(token) = token {
        request = request.header("x-conserver-api-token", token);
    }
    let reply = request.send().await.unwrap();
    let status = reply.status().as_u16();
    (status, reply.text().await.unwrap_or_default())
}

#[tokio::test]
async fn an_open_server_keeps_control_and_foreign_hosts_out() {
    let server = Server::start(Backend::Embedded, "", &[]).await;
    let (status, body) = post_config(&server, &json!({"links": {}}), None).await;
    assert_eq!(status, 403, "{body}");
    assert!(body.contains("CONSERVER_API_TOKEN") && body.contains("CONSERVER_ALLOW_OPEN"), "{body}");
    // DNS rebinding: the request reaches 127.0.0.1 under another name.
    let rebound =
        server.client.get(server.url("/api/vcon")).header("host", "rebind.evil.example").send().await.unwrap();
    assert_eq!(rebound.status(), 403);
    // A page elsewhere posting to the server.
    let cross = server
        .client
        .post(server.url("/api/vcon"))
        .header("origin", "https://evil.example")
        .header("content-type", "text/plain")
        .body(crate::support::fresh_vcon().1.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(cross.status(), 403);
    assert!(cross.headers().get("access-control-allow-origin").is_none());
    // No open redirect.
    let redirect = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let reply = redirect.get(server.url("//evil.example/")).send().await.unwrap();
    assert_eq!(reply.status(), 307);
    assert_eq!(reply.headers()["location"], "/evil.example");
}

#[tokio::test]
async fn post_config_loads_components_only_from_the_component_directories() {
    let token = "tok-5d2e8b-secret";
    let server = Server::start(Backend::Embedded, "", &[("CONSERVER_API_TOKEN", token)]).await;
    let config_dir = server.config_path().parent().unwrap().to_path_buf();
    let chain = |path: &str| json!({"links": {"l": {"component": path}}, "chains": {"c": {"links": ["l"], "ingress_lists": ["in"]}}});
    let refused = |path: &str| {
        let server = &server;
        let document = chain(path);
        let path = path.to_string();
        async move {
            let (status, body) = post_config(server, &document, Some(token)).await;
            assert_eq!(status, 422, "{path}: {body}");
            body
        }
    };
    // A device (which used to get the server OOM-killed) and files elsewhere:
    // refused without looking, the same whether they exist or not.
    for path in ["/dev/zero", "/etc/passwd", "/etc/no-such-file.wasm"] {
        let body = refused(path).await;
        assert!(body.contains("outside the component directories"), "{path}: {body}");
        assert!(!body.contains("root:"), "{body}");
    }
    assert_eq!(
        refused("/etc/passwd").await.replace("/etc/passwd", "X"),
        refused("/etc/no-such-file.wasm").await.replace("/etc/no-such-file.wasm", "X")
    );
    // A FIFO in an allowed directory is refused without being opened (opening
    // one for reading would hang the loader).
    let fifo = config_dir.join("fifo.wasm");
    assert!(Command::new("mkfifo").arg(&fifo).status().unwrap().success());
    assert!(refused(fifo.to_str().unwrap()).await.contains("not a regular file"));
    // A file that is not a component: its bytes are never quoted.
    std::fs::write(config_dir.join("notes.wasm"), "PRIVATE-NOTES").unwrap();
    let body = refused("notes.wasm").await;
    assert!(body.contains("not a wasm component") && !body.contains("PRIVATE"), "{body}");
    // A substituted secret never comes back in the 422.
    let document = json!({"links": "${CONSERVER_API_TOKEN}"});
    let (status, body) = post_config(&server, &document, Some(token)).await;
    assert_eq!(status, 422, "{body}");
    assert!(!body.contains("5d2e8b"), "the token leaked: {body}");
    // The server is still up, and a component in the links directory loads.
    let (status, body) = post_config(&server, &chain(component("tag.wasm").to_str().unwrap()), Some(token)).await;
    assert_eq!(status, 204, "{body}");
}
