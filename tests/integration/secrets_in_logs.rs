//! No secret in any log line or error (issue #18, item 2): a Redis password in
//! `REDIS_URL` that fails at start (unreachable, or refused), and credentials in
//! storage URLs that fail while vCons flow. Every line the server writes, and the
//! dead-letter reasons it records, are searched for the secrets.

use std::time::Duration;

use crate::support::{Backend, Server, component, fresh_vcon, unique};

fn serve_and_fail(env: &[(&str, &str)]) -> String {
    let mut env: Vec<(&str, &std::ffi::OsStr)> = env.iter().map(|(k, v)| (*k, std::ffi::OsStr::new(*v))).collect();
    env.push(("LOG_LEVEL", std::ffi::OsStr::new("debug")));
    let (status, log) = crate::support::serve_until_it_exits(&env);
    assert!(!status.success(), "the start was expected to fail:\n{log}");
    log
}

#[test]
fn a_redis_password_never_appears_when_the_start_fails() {
    // Unreachable: retried for the wait, then the error.
    let port = crate::support::free_port();
    let url = format!("redis://default:pw-unreachable-7f3a@127.0.0.1:{port}/0");
    let log = serve_and_fail(&[("REDIS_URL", url.as_str()), ("CONSERVER_BROKER_WAIT_SECS", "2")]);
    assert!(!log.contains("pw-unreachable-7f3a"), "{log}");
    assert!(log.contains("default:***@127.0.0.1"), "the URL is shown redacted:\n{log}");

    // Reachable, but the password is wrong: refused at once.
    let (_redis, port) = crate::support::own_redis(&["--requirepass", "the-right-one-51c2"]);
    let url = format!("redis://:pw-wrong-9d1e@127.0.0.1:{port}");
    let log = serve_and_fail(&[("REDIS_URL", url.as_str()), ("CONSERVER_BROKER_WAIT_SECS", "2")]);
    assert!(log.contains("WRONGPASS") || log.to_lowercase().contains("auth"), "Redis refused the password:\n{log}");
    assert!(!log.contains("pw-wrong-9d1e"), "{log}");
    assert!(log.contains(":***@127.0.0.1"), "{log}");

    // A password holding `/` (base64), in a URL that does not parse.
    let url = format!("redis://:pw/slash+9d1e@127.0.0.1:{port}:bad");
    let log = serve_and_fail(&[("REDIS_URL", url.as_str()), ("CONSERVER_BROKER_WAIT_SECS", "0")]);
    assert!(!log.contains("slash+9d1e"), "{log}");
}

#[tokio::test]
async fn storage_credentials_never_appear_in_logs_or_dead_letter_reasons() {
    let (ingress, egress) = (unique("in"), unique("out"));
    let closed = crate::support::free_port();
    let config = format!(
        "links:\n  tag:\n    component: {tag}\nstorages:\n  hook:\n    module: storage.webhook\n    options:\n      webhook-urls: [\"http://hookuser:pw-hook-44ab@127.0.0.1:{closed}/in?token=tok-hook-0c7e&list=calls\"]\n  cache:\n    module: storage.redis_storage\n    options:\n      redis_url: redis://:pw-storage-e51d@127.0.0.1:{closed}\nchains:\n  main:\n    links: [tag]\n    ingress_lists: [{ingress}]\n    egress_lists: [{egress}]\n    storages: [hook, cache]\n    storage_retry_secs: 1\n",
        tag = component("tag.wasm").display(),
    );
    let server = Server::start(Backend::Embedded, &config, &[("LOG_LEVEL", "debug")]).await;
    let (uuid, vcon) = fresh_vcon();
    server.post_vcon(&vcon, &ingress).await;
    let reason = server.wait_for_dlq(&ingress, &uuid, Duration::from_secs(60)).await;
    let (_, reasons) = server.get_json(&format!("/api/dlq?ingress_list={ingress}&detail=true")).await;
    let shown = format!("{}\n{reason}\n{reasons}", server.log_text());
    for secret in ["pw-hook-44ab", "tok-hook-0c7e", "pw-storage-e51d"] {
        assert!(!shown.contains(secret), "{secret} was printed:\n{shown}");
    }
    // The failures are there, named by the redacted URL.
    assert!(shown.contains("hookuser:***@") || shown.contains("token=***"), "{shown}");
}
