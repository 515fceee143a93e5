//! Hot reload while vCons flow: `POST /config` swapping a link's component and
//! options, an edited config file, and a link's `.wasm` replaced in place. No vCon
//! may fail during a swap; later vCons see the new behaviour; no restart.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use serde_json::{Value, json};

use crate::support::{Backend, Server, component, fresh_vcon, unique};

fn tags_of(vcon: &Value) -> String {
    vcon["attachments"]
        .as_array()
        .and_then(|a| a.iter().find(|a| a["purpose"] == "tags"))
        .map(|a| a["body"].to_string())
        .unwrap_or_default()
}

#[tokio::test]
async fn post_config_swaps_the_component_and_options_while_vcons_flow() {
    let (ingress, egress) = (unique("in"), unique("out"));
    let work = tempfile::tempdir().unwrap();
    let v1 = work.path().join("tag-v1.wasm");
    let v2 = work.path().join("tag-v2.wasm");
    std::fs::copy(component("tag.wasm"), &v1).unwrap();
    std::fs::copy(component("tag.wasm"), &v2).unwrap();
    let config = format!(
        "links:\n  tag:\n    component: {}\n    options: {{tags: [old]}}\nchains:\n  main:\n    links: [tag]\n    ingress_lists: [{ingress}]\n    egress_lists: [{egress}]\n",
        v1.display()
    );
    // POST /config without a token needs the explicit opt-in.
    let dirs = work.path().display().to_string();
    let server = Server::start(
        Backend::Redis,
        &config,
        &[("CONSERVER_VCON_CONCURRENCY", "4"), ("CONSERVER_ALLOW_OPEN", "1"), ("CONSERVER_COMPONENT_DIRS", &dirs)],
    )
    .await;
    let mut expected = HashSet::new();
    let mut swapped = false;
    for i in 0..60 {
        let (uuid, vcon) = fresh_vcon();
        assert_eq!(server.post_vcon(&vcon, &ingress).await.status(), 201);
        expected.insert(uuid);
        if i == 30 {
            let (_, mut document) = server.get_json("/api/config").await;
            document["links"]["tag"] = json!({"component": v2.display().to_string(), "options": {"tags": ["new"]}});
            let reply = server.client.post(server.url("/api/config")).json(&document).send().await.unwrap();
            assert_eq!(reply.status(), 204);
            swapped = true;
        }
    }
    assert!(swapped);
    let mut seen = HashMap::new();
    assert!(server.drain_egress(&egress, &expected, &mut seen, Duration::from_secs(60)).await, "{}", server.log_text());
    assert_eq!(
        server.get_json(&format!("/api/dlq?ingress_list={ingress}")).await.1,
        json!([]),
        "a vCon failed during the swap"
    );
    let (after, vcon) = fresh_vcon();
    server.post_vcon(&vcon, &ingress).await;
    let mut seen = HashMap::new();
    let one: HashSet<String> = [after.clone()].into();
    assert!(server.drain_egress(&egress, &one, &mut seen, Duration::from_secs(30)).await);
    assert!(tags_of(&server.get_json(&format!("/api/vcon/{after}")).await.1).contains("new:new"));
}

#[tokio::test]
async fn editing_the_file_or_replacing_a_wasm_reloads_without_a_restart() {
    let (ingress, egress) = (unique("in"), unique("out"));
    let work = tempfile::tempdir().unwrap();
    let link = work.path().join("link.wasm");
    std::fs::copy(component("testing/echo.wasm"), &link).unwrap();
    let config = |tags: &str| {
        format!(
            "links:\n  step:\n    component: {}\n    options: {{tags: [{tags}], mode: changed}}\nchains:\n  main:\n    links: [step]\n    ingress_lists: [{ingress}]\n    egress_lists: [{egress}]\n",
            link.display()
        )
    };
    let dirs = work.path().display().to_string();
    let server = Server::start(Backend::Embedded, &config("first"), &[("CONSERVER_COMPONENT_DIRS", &dirs)]).await;
    let config_path = server.config_path();
    // The echo component marks the vCon and adds no tags.
    let before = run_one(&server, &ingress, &egress).await;
    assert_eq!(before["echoed"], true);

    // Replace the .wasm in place by the tag link: behaviour changes, no restart.
    let temp = work.path().join("link.wasm.new");
    std::fs::copy(component("tag.wasm"), &temp).unwrap();
    std::fs::rename(&temp, &link).unwrap();
    wait_until_log(&server, "configuration reloaded from disk", 1).await;
    let tagged = run_one(&server, &ingress, &egress).await;
    assert!(tags_of(&tagged).contains("first:first"), "{tagged}");

    // Edit the file: new options apply.
    std::fs::write(&config_path, config("second")).unwrap();
    wait_until_log(&server, "configuration reloaded from disk", 2).await;
    assert!(tags_of(&run_one(&server, &ingress, &egress).await).contains("second:second"));

    // A broken edit is refused and the running config stays.
    std::fs::write(&config_path, "chains:\n  main:\n    links: [ghost]\n").unwrap();
    wait_until_log(&server, "the changed configuration was refused", 1).await;
    assert!(tags_of(&run_one(&server, &ingress, &egress).await).contains("second:second"));
}

async fn run_one(server: &Server, ingress: &str, egress: &str) -> Value {
    let (uuid, vcon) = fresh_vcon();
    server.post_vcon(&vcon, ingress).await;
    server.wait_for_egress(egress, &uuid, Duration::from_secs(30)).await;
    server.get_json(&format!("/api/vcon/{uuid}")).await.1
}

async fn wait_until_log(server: &Server, text: &str, times: usize) {
    for _ in 0..200 {
        if server.log_text().matches(text).count() >= times {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("`{text}` never appeared {times} time(s) in the log:\n{}", server.log_text());
}

#[tokio::test]
async fn a_python_format_config_loads_and_runs() {
    let (ingress, egress) = (unique("default_ingress"), unique("default_egress"));
    let store = tempfile::tempdir().unwrap();
    // The shape of the Python conserver's example_config.yml, keys it ignores included.
    let config = format!(
        r#"
imports:
  custom_module: custom.module
links:
  tag:
    module: links.tag
    ingress-lists: [{ingress}]
    egress-lists: [{egress}]
    options:
      tags: [iron, maiden]
storages:
  file:
    module: storage.file
    options:
      path: {store}
      organize_by_date: false
tracers:
chains:
  demo_chain:
    links:
      - tag
    ingress_lists:
      - {ingress}
    storages:
      - file
    egress_lists:
      - {egress}
    enabled: 1
    timeout: 30
ingress_auth:
  {ingress}: partner-key
followers: {{}}
"#,
        store = store.path().display()
    );
    let server = Server::start(Backend::Redis, &config, &[]).await;
    let (uuid, vcon) = fresh_vcon();
    let reply = server
        .client
        .post(server.url(&format!("/vcon/external-ingress?ingress_list={ingress}")))
        .header("x-conserver-api-token", "partner-key")
        .json(&vcon)
        .send()
        .await
        .unwrap();
    assert_eq!(reply.status(), 204);
    server.wait_for_egress(&egress, &uuid, Duration::from_secs(30)).await;
    assert!(store.path().join(format!("{uuid}.json")).is_file());
    assert!(server.log_text().contains("`imports` is a Python-only feature"));
}

#[tokio::test]
async fn a_file_edit_right_after_post_config_is_applied_not_lost() {
    // Issue #17, item 5: an edit within about a second of `POST /config` used
    // to be taken for the API's own write and never applied.
    let (ingress, egress) = (unique("in"), unique("out"));
    let config = |tags: &str| {
        format!(
            "links:\n  tag:\n    module: links.tag\n    options: {{tags: [{tags}]}}\nchains:\n  main:\n    links: [tag]\n    ingress_lists: [{ingress}]\n    egress_lists: [{egress}]\n"
        )
    };
    // POST /config without a token needs the explicit opt-in.
    let server = Server::start(Backend::Embedded, &config("boot"), &[("CONSERVER_ALLOW_OPEN", "1")]).await;
    let config_path = server.config_path();
    // GET /config says where the config in force came from, in headers (the body
    // stays the file, as the Python server answers it).
    let source = |response: &reqwest::Response| {
        let header = |name: &str| response.headers().get(name).and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
        (header("conserver-config-source"), header("conserver-config-applied-at"))
    };
    let reply = server.client.get(server.url("/api/config")).send().await.unwrap();
    let (at_start, started_at) = source(&reply);
    assert_eq!(at_start, "file-at-start");
    assert!(chrono::DateTime::parse_from_rfc3339(&started_at).is_ok(), "{started_at}");
    for round in 0..3 {
        let document: Value = serde_yaml_ng::from_str(&config(&format!("api{round}"))).unwrap();
        let posted = server.client.post(server.url("/api/config")).json(&document).send().await.unwrap();
        assert_eq!(posted.status(), 204, "{}", posted.text().await.unwrap_or_default());
        let reply = server.client.get(server.url("/api/config")).send().await.unwrap();
        assert_eq!(source(&reply).0, "api", "round {round}: after POST /config");
        // The edit lands at once, inside the watcher's poll interval.
        let edited = format!("edit{round}");
        std::fs::write(&config_path, config(&edited)).unwrap();
        let mut applied = false;
        for _ in 0..40 {
            if tags_of(&run_one(&server, &ingress, &egress).await).contains(&format!("{edited}:{edited}")) {
                applied = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
        assert!(applied, "round {round}: the file edit after POST /config was never applied:\n{}", server.log_text());
        let reply = server.client.get(server.url("/api/config")).send().await.unwrap();
        assert_eq!(source(&reply).0, "file-edit", "round {round}: after the edit");
        assert_eq!(reply.json::<Value>().await.unwrap()["links"]["tag"]["options"]["tags"][0], edited.as_str());
    }
}
