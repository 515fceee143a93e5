//! A follower pulls another conserver's egress list into a local ingress list:
//! every uuid arrives, in order, with its vCon copied, and the remote list is
//! emptied only as they arrive.

use std::time::Duration;

use crate::support::{Backend, Server, component, fresh_vcon, unique};

#[tokio::test]
async fn a_follower_drains_a_remote_egress_list_in_order() {
    // The remote: a Redis-backed conserver whose list `remote_out` holds 20 uuids.
    let remote_out = unique("remote-out");
    let remote = Server::start(Backend::Redis, "", &[("CONSERVER_API_TOKEN", "remote-token")]).await;
    let mut sent = Vec::new();
    for _ in 0..20 {
        let (uuid, vcon) = fresh_vcon();
        let reply = remote
            .client
            .post(remote.url(&format!("/api/vcon?ingress_lists={remote_out}")))
            .header("x-conserver-api-token", "remote-token")
            .json(&vcon)
            .send()
            .await
            .unwrap();
        assert_eq!(reply.status(), 201);
        sent.push(uuid);
    }
    // The local side: the embedded broker, so vCons really have to be copied over.
    let (local_in, local_out) = (unique("local-in"), unique("local-out"));
    let config = format!(
        "followers:\n  upstream:\n    url: {}/api\n    egress_list: {remote_out}\n    follower_ingress_list: {local_in}\n    auth_token: remote-token\n    pulling_interval: 0.2\n    fetch_vcon_limit: 7\nlinks:\n  tag:\n    component: {}\nchains:\n  main:\n    links: [tag]\n    ingress_lists: [{local_in}]\n    egress_lists: [{local_out}]\n",
        remote.base,
        component("tag.wasm").display()
    );
    let local = Server::start(Backend::Embedded, &config, &[]).await;
    let mut arrived = Vec::new();
    for _ in 0..300 {
        let (_, popped) = local.get_json(&format!("/api/vcon/egress?egress_list={local_out}&limit=100")).await;
        arrived.extend(popped.as_array().unwrap().iter().map(|v| v.as_str().unwrap().to_string()));
        if arrived.len() >= sent.len() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(arrived, sent, "every uuid, once, oldest first:\n{}", local.log_text());
    let (status, copy) = local.get_json(&format!("/api/vcon/{}", sent[0])).await;
    assert_eq!(status, 200);
    assert!(copy.to_string().contains("iron:iron"), "the copied vCon went through the local chain");
    let depth = remote
        .client
        .get(remote.url(&format!("/api/vcon/count?egress_list={remote_out}")))
        .header("x-conserver-api-token", "remote-token")
        .send()
        .await
        .unwrap()
        .json::<serde_json::Value>()
        .await
        .unwrap();
    assert_eq!(depth, 0, "the remote list is emptied once the uuids are enqueued locally");
}
