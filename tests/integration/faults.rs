//! Fault injection against the real binary: `kill -9` mid-load, SIGTERM mid-chain,
//! a grace period that runs out, and Redis restarted under load. Nothing may be
//! lost; duplicates are allowed (at-least-once) and counted.

use std::collections::{HashMap, HashSet};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::support::{Backend, Server, component, fresh_vcon, unique};

/// A chain whose first link sleeps `millis` per vCon (so work is in flight), then tags.
fn slow_chain(ingress: &str, egress: &str, millis: u64) -> String {
    format!(
        "links:\n  slow:\n    component: {sleep}\n    options: {{millis: {millis}}}\n  tag:\n    component: {tag}\nchains:\n  main:\n    links: [slow, tag]\n    ingress_lists: [{ingress}]\n    egress_lists: [{egress}]\n",
        sleep = component("testing/sleep.wasm").display(),
        tag = component("tag.wasm").display(),
    )
}

async fn post_many(server: &Server, ingress: &str, count: usize) -> HashSet<String> {
    let mut uuids = HashSet::new();
    for _ in 0..count {
        let (uuid, vcon) = fresh_vcon();
        assert_eq!(server.post_vcon(&vcon, ingress).await.status(), 201);
        uuids.insert(uuid);
    }
    uuids
}

async fn kill_dash_nine_loses_nothing(backend: Backend) {
    let (ingress, egress) = (unique("in"), unique("out"));
    let env = [("CONSERVER_VCON_CONCURRENCY", "4"), ("CONSERVER_WORKER_TTL_SECS", "2")];
    // 100 vCons × 150 ms / 4 in flight: about 4 s of work, so the kill lands mid-load.
    let mut server = Server::start(backend, &slow_chain(&ingress, &egress, 150), &env).await;
    let expected = post_many(&server, &ingress, 100).await;
    let mut seen = HashMap::new();
    // Let some finish, then kill in the middle of the load.
    let some: HashSet<String> = expected.iter().take(5).cloned().collect();
    let _ = server.drain_egress(&egress, &some, &mut seen, Duration::from_secs(2)).await;
    server.kill_hard();
    assert!(seen.len() < 90, "the kill came too late to test anything: {} already delivered", seen.len());
    server.restart().await;
    let complete = server.drain_egress(&egress, &expected, &mut seen, Duration::from_secs(90)).await;
    let missing: Vec<&String> = expected.iter().filter(|u| !seen.contains_key(*u)).collect();
    assert!(complete, "{} of 100 vCons never reached egress: {missing:?}\n{}", missing.len(), server.log_text());
    let duplicates: u32 = seen.values().map(|n| n - 1).sum();
    eprintln!("kill -9 on {backend:?}: 100 delivered, {duplicates} duplicates");
}

#[tokio::test]
async fn kill_dash_nine_mid_load_loses_nothing_on_redis() {
    kill_dash_nine_loses_nothing(Backend::Redis).await;
}

#[tokio::test]
async fn kill_dash_nine_mid_load_loses_nothing_on_the_embedded_broker() {
    kill_dash_nine_loses_nothing(Backend::Embedded).await;
}

#[tokio::test]
async fn sigterm_mid_chain_exits_zero_and_loses_nothing() {
    let (ingress, egress) = (unique("in"), unique("out"));
    let env = [("CONSERVER_VCON_CONCURRENCY", "2"), ("CONSERVER_SHUTDOWN_GRACE_SECS", "20")];
    let mut server = Server::start(Backend::Redis, &slow_chain(&ingress, &egress, 400), &env).await;
    let expected = post_many(&server, &ingress, 10).await;
    tokio::time::sleep(Duration::from_millis(600)).await; // two in flight, some done
    let status = server.terminate(Duration::from_secs(20)).await.expect("did not exit within the grace period");
    assert!(status.success(), "exit status {status}:\n{}", server.log_text());
    server.restart().await;
    let mut seen = HashMap::new();
    assert!(server.drain_egress(&egress, &expected, &mut seen, Duration::from_secs(60)).await, "{}", server.log_text());
    assert!(seen.values().all(|n| *n == 1), "a clean shutdown should not duplicate: {seen:?}");
}

#[tokio::test]
async fn when_the_grace_period_runs_out_unfinished_vcons_go_back_to_the_head() {
    let (ingress, egress) = (unique("in"), unique("out"));
    let env = [("CONSERVER_SHUTDOWN_GRACE_SECS", "1")];
    let mut server = Server::start(Backend::Redis, &slow_chain(&ingress, &egress, 600_000), &env).await;
    let (stuck, vcon) = fresh_vcon();
    server.post_vcon(&vcon, &ingress).await;
    let (waiting, vcon) = fresh_vcon();
    server.post_vcon(&vcon, &ingress).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let status = server.terminate(Duration::from_secs(10)).await.expect("did not exit after the grace period");
    assert!(status.success(), "{}", server.log_text());
    let client = redis::Client::open(crate::support::redis_url()).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let list: Vec<String> = redis::cmd("LRANGE").arg(&ingress).arg(0).arg(-1).query_async(&mut conn).await.unwrap();
    assert_eq!(list, [stuck, waiting], "the unfinished vCon must be back at the head, ahead of the waiting one");
}

/// A private Redis with an append-only file, so a restart keeps its data.
struct DurableRedis {
    child: Child,
    port: u16,
    dir: tempfile::TempDir,
}

impl DurableRedis {
    fn start() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let child = Self::spawn(dir.path(), port);
        Self { child, port, dir }
    }

    fn spawn(dir: &std::path::Path, port: u16) -> Child {
        let child = Command::new("redis-server")
            .args([
                "--port",
                &port.to_string(),
                "--bind",
                "127.0.0.1",
                "--appendonly",
                "yes",
                "--appendfsync",
                "always",
                "--save",
                "",
            ])
            .arg("--dir")
            .arg(dir)
            .stdout(Stdio::null())
            .spawn()
            .expect("redis-server must be installed (cargo xtask test installs it)");
        for _ in 0..100 {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        child
    }

    fn restart(&mut self) {
        let _ = Command::new("redis-cli").args(["-p", &self.port.to_string(), "shutdown"]).status();
        let _ = self.child.wait();
        std::thread::sleep(Duration::from_millis(500));
        self.child = Self::spawn(self.dir.path(), self.port);
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }
}

impl Drop for DurableRedis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test]
async fn a_redis_restart_mid_load_loses_nothing() {
    let mut redis = DurableRedis::start();
    let (ingress, egress) = (unique("in"), unique("out"));
    let url = redis.url();
    let env = [("REDIS_URL", url.as_str()), ("CONSERVER_VCON_CONCURRENCY", "4"), ("CONSERVER_WORKER_TTL_SECS", "3")];
    let server = Server::start(Backend::Embedded, &slow_chain(&ingress, &egress, 20), &env).await;
    let expected = post_many(&server, &ingress, 100).await;
    let mut seen = HashMap::new();
    let some: HashSet<String> = expected.iter().take(10).cloned().collect();
    let _ = server.drain_egress(&egress, &some, &mut seen, Duration::from_secs(5)).await;
    redis.restart();
    let complete = server.drain_egress(&egress, &expected, &mut seen, Duration::from_secs(90)).await;
    let missing = expected.iter().filter(|u| !seen.contains_key(*u)).count();
    assert!(complete, "{missing} vCons lost after the Redis restart:\n{}", server.log_text());
}
