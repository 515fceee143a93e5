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

/// Cut the server's connections to Redis (`CLIENT KILL` of each of its sockets,
/// found with `ss`); other tests' connections are left alone. How many were cut.
async fn cut_redis_connections(server: &Server) -> usize {
    let out = Command::new("ss").args(["-tnpH", "dst", "127.0.0.1:6379"]).output().expect("ss (iproute2) is needed");
    let pid = format!("pid={},", server.pid());
    let client = redis::Client::open(crate::support::redis_url()).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let mut cut = 0;
    for line in String::from_utf8_lossy(&out.stdout).lines().filter(|l| l.contains(&pid)) {
        // State Recv-Q Send-Q Local:Port Peer:Port Process
        let Some(local) = line.split_whitespace().nth(3) else { continue };
        let killed: redis::RedisResult<u64> =
            redis::cmd("CLIENT").arg("KILL").arg("ADDR").arg(local).query_async(&mut conn).await;
        if killed.is_ok() {
            cut += 1;
        }
    }
    cut
}

#[tokio::test]
async fn an_item_a_live_worker_holds_without_working_on_it_is_returned_after_a_connection_reset() {
    let (ingress, egress) = (unique("stray-in"), unique("stray-out"));
    let config = crate::support::tag_chain(&ingress, &egress);
    let server = Server::start(Backend::Redis, &config, &[]).await;
    let client = redis::Client::open(crate::support::redis_url()).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    // The server's worker, from the registry (entries of this test's lists).
    let workers: HashMap<String, String> =
        redis::cmd("HGETALL").arg("conserver:workers").query_async(&mut conn).await.unwrap();
    let worker = workers
        .iter()
        .find(|(_, lists)| lists.contains(&ingress))
        .map(|(id, _)| id.clone())
        .expect("the server's worker is registered");
    // What a pop whose answer was lost to a reset leaves behind: a stored vCon in
    // the live worker's processing list, not in flight.
    let (uuid, vcon) = fresh_vcon();
    assert_eq!(server.post_vcon(&vcon, "").await.status(), 201);
    let processing = format!("{{{ingress}}}:processing:{worker}");
    let () = redis::cmd("LPUSH").arg(&processing).arg(&uuid).query_async(&mut conn).await.unwrap();
    assert!(cut_redis_connections(&server).await > 0, "no connection of the server to cut");
    server.wait_for_egress(&egress, &uuid, Duration::from_secs(60)).await;
    let left: Vec<String> = redis::cmd("LRANGE").arg(&processing).arg(0).arg(-1).query_async(&mut conn).await.unwrap();
    assert!(!left.contains(&uuid), "{left:?}");
}

#[tokio::test]
async fn serve_waits_for_a_redis_that_starts_after_it() {
    // Issue #17, item 9: containers start in any order.
    let port = crate::support::free_port();
    let url = format!("redis://127.0.0.1:{port}");
    let late = tokio::spawn(async move {
        // Later than the Redis client's own reconnection attempts (about 7 s).
        tokio::time::sleep(Duration::from_secs(12)).await;
        Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .stdout(Stdio::null())
            .spawn()
            .expect("redis-server")
    });
    // Server::start waits (bounded) for /health, which answers once serving.
    let server = Server::start(Backend::Embedded, "", &[("REDIS_URL", url.as_str())]).await;
    let mut redis: Child = late.await.unwrap();
    let (_, health) = server.get_json("/health").await;
    assert_eq!(health["broker"]["backend"], "redis", "{health}");
    assert_eq!(health["status"], "healthy", "{health}");
    assert!(server.log_text().contains("not reachable yet; retrying"), "each attempt is logged");
    let _ = redis.kill();
    let _ = redis.wait();
}

#[tokio::test]
async fn a_redis_that_can_lose_acknowledged_vcons_is_named_at_start_and_in_health() {
    // Issue #17, item 6: neither AOF nor snapshots, and an eviction policy that
    // drops keys (the Python compose file's allkeys-lru).
    let port = crate::support::free_port();
    let mut redis = Command::new("redis-server")
        .args(["--port", &port.to_string(), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
        .args(["--maxmemory", "100mb", "--maxmemory-policy", "allkeys-lru"])
        .stdout(Stdio::null())
        .spawn()
        .expect("redis-server");
    let url = format!("redis://127.0.0.1:{port}");
    let server = Server::start(Backend::Embedded, "", &[("REDIS_URL", url.as_str())]).await;
    let (_, health) = server.get_json("/health").await;
    let warnings = health["broker"]["warnings"].as_array().cloned().unwrap_or_default();
    let text = serde_json::to_string(&warnings).unwrap();
    assert!(text.contains("allkeys-lru") && text.contains("noeviction"), "{health}");
    assert!(text.contains("no AOF") && text.contains("appendonly yes"), "{health}");
    let log = server.log_text();
    assert!(log.contains("maxmemory-policy allkeys-lru") && log.contains("WARN"), "warned at start:\n{log}");
    let _ = redis.kill();
    let _ = redis.wait();
}

#[tokio::test]
async fn during_a_redis_outage_the_api_answers_503_with_retry_after() {
    // Issue #17, item 8: clients and load balancers must be told to come back,
    // not be given a 500 (and nothing may be acknowledged that was not stored).
    let port = crate::support::free_port();
    let start_redis = || {
        Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .stdout(Stdio::null())
            .spawn()
            .expect("redis-server")
    };
    let mut redis = start_redis();
    let url = format!("redis://127.0.0.1:{port}");
    let server = Server::start(Backend::Embedded, "", &[("REDIS_URL", url.as_str())]).await;
    let (_, vcon) = fresh_vcon();
    assert_eq!(server.post_vcon(&vcon, "outage-in").await.status(), 201);
    let _ = redis.kill();
    let _ = redis.wait();
    let started = std::time::Instant::now();
    let (_, vcon) = fresh_vcon();
    let reply = server.post_vcon(&vcon, "outage-in").await;
    eprintln!("POST during the outage answered {} after {:.2} s", reply.status(), started.elapsed().as_secs_f64());
    assert_eq!(reply.status(), 503);
    assert!(reply.headers().contains_key("retry-after"));
    let (_, health) = server.get_json("/health").await;
    assert_eq!(health["status"], "degraded", "{health}");
    // Redis back: the same server stores again.
    let mut redis = start_redis();
    let mut stored = false;
    for _ in 0..100 {
        let (_, vcon) = fresh_vcon();
        if server.post_vcon(&vcon, "outage-in").await.status() == 201 {
            stored = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(stored, "no 201 after Redis came back");
    let _ = redis.kill();
    let _ = redis.wait();
}

#[tokio::test]
async fn a_redis_that_stops_answering_gives_503_after_the_command_timeout() {
    // Issue #17, item 8, the other half: a Redis that keeps the connection open
    // but answers nothing (paused here with SIGSTOP; a network path that drops
    // packets looks the same) must not hang the API.
    let (redis, port) = crate::support::own_redis(&[]);
    let url = format!("redis://127.0.0.1:{port}");
    let env = [("REDIS_URL", url.as_str()), ("CONSERVER_REDIS_TIMEOUT_SECS", "1")];
    let server = Server::start(Backend::Embedded, "", &env).await;
    let (first, vcon) = fresh_vcon();
    assert_eq!(server.post_vcon(&vcon, "paused-in").await.status(), 201);
    let signal = |name: &str| {
        let sent = Command::new("kill").args([&format!("-{name}"), &redis.id().to_string()]).status().unwrap();
        assert!(sent.success());
    };
    signal("STOP");
    let started = std::time::Instant::now();
    let (paused, vcon) = fresh_vcon();
    let reply = server.post_vcon(&vcon, "paused-in").await;
    eprintln!("POST to a paused Redis answered {} after {:.2} s", reply.status(), started.elapsed().as_secs_f64());
    assert_eq!(reply.status(), 503, "{}", reply.text().await.unwrap_or_default());
    assert!(reply.headers().contains_key("retry-after"));
    signal("CONT");
    // Answering again: stored, and what was acknowledged is there, what was
    // refused may be retried.
    let mut stored = false;
    for _ in 0..100 {
        if server.post_vcon(&vcon, "paused-in").await.status() == 201 {
            stored = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(stored, "no 201 after Redis answered again:\n{}", server.log_text());
    for uuid in [&first, &paused] {
        let (status, _) = server.get_json(&format!("/api/vcon/{uuid}")).await;
        assert_eq!(status, 200, "{uuid}");
    }
}

#[tokio::test]
async fn a_redis_refusing_writes_longer_than_the_worker_ttl_takes_no_live_workers_vcon() {
    // Issue #17, item 2: a Redis out of memory refuses every heartbeat, so once it
    // takes writes again every worker looks dead. Another process's worker (this
    // test plays it: a heartbeat, a registry entry and a processing list holding
    // a stored vCon) that renews its heartbeat soon after must keep its vCon; one
    // that stays silent must have it returned and processed.
    let (_redis, port) = crate::support::own_redis(&["--maxmemory-policy", "noeviction"]);
    let url = format!("redis://127.0.0.1:{port}");
    let (ingress, egress) = (unique("oom-in"), unique("oom-out"));
    let config = crate::support::tag_chain(&ingress, &egress);
    let env = [("REDIS_URL", url.as_str()), ("CONSERVER_WORKER_TTL_SECS", "3")];
    let server = Server::start(Backend::Embedded, &config, &env).await;
    let mut conn = redis::Client::open(url.as_str()).unwrap().get_multiplexed_async_connection().await.unwrap();
    let (held, vcon) = fresh_vcon();
    assert_eq!(server.post_vcon(&vcon, "").await.status(), 201);
    let other = "other-host-1-1-00000000";
    let lists = serde_json::to_string(&[&ingress]).unwrap();
    let renew = async |conn: &mut redis::aio::MultiplexedConnection| {
        let () = redis::cmd("SET")
            .arg(format!("conserver:worker:{other}"))
            .arg(&lists)
            .arg("EX")
            .arg(3)
            .query_async(conn)
            .await
            .unwrap();
    };
    renew(&mut conn).await;
    let () = redis::cmd("HSET").arg("conserver:workers").arg(other).arg(&lists).query_async(&mut conn).await.unwrap();
    let processing = format!("{{{ingress}}}:processing:{other}");
    let () = redis::cmd("LPUSH").arg(&processing).arg(&held).query_async(&mut conn).await.unwrap();

    // Out of memory for twice the TTL: every heartbeat lapses.
    let set_maxmemory = async |conn: &mut redis::aio::MultiplexedConnection, bytes: &str| {
        let () = redis::cmd("CONFIG").arg("SET").arg("maxmemory").arg(bytes).query_async(conn).await.unwrap();
    };
    set_maxmemory(&mut conn, "1").await;
    let (_, refused) = fresh_vcon();
    assert_eq!(server.post_vcon(&refused, &ingress).await.status(), 503, "a refused write is not acknowledged");
    tokio::time::sleep(Duration::from_secs(6)).await;
    let exists: bool =
        redis::cmd("EXISTS").arg(format!("conserver:worker:{other}")).query_async(&mut conn).await.unwrap();
    assert!(!exists, "the other worker's heartbeat lapsed");
    assert!(
        server.log_text().contains("takes no work until one succeeds"),
        "the server's worker stopped taking work while its heartbeats failed:\n{}",
        server.log_text()
    );
    set_maxmemory(&mut conn, "0").await;
    // The other worker renews a little later than the server's own retry.
    tokio::time::sleep(Duration::from_millis(800)).await;
    for _ in 0..10 {
        renew(&mut conn).await;
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let left: Vec<String> = redis::cmd("LRANGE").arg(&processing).arg(0).arg(-1).query_async(&mut conn).await.unwrap();
    assert_eq!(left, std::slice::from_ref(&held), "a live worker's vCon was taken from it:\n{}", server.log_text());
    // The server works again, and the other worker, silent from now on, has its
    // vCon returned and processed.
    let (after, vcon) = fresh_vcon();
    assert_eq!(server.post_vcon(&vcon, &ingress).await.status(), 201);
    let expected: HashSet<String> = [after, held].into_iter().collect();
    let mut seen = HashMap::new();
    let complete = server.drain_egress(&egress, &expected, &mut seen, Duration::from_secs(40)).await;
    assert!(complete, "{seen:?}:\n{}", server.log_text());
}
