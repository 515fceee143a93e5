//! Starting the binary with a config, talking to it, and fixture paths.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

/// Which broker a test server uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Embedded,
    Redis,
    /// The 3-node Redis Cluster `cargo xtask test` starts.
    Cluster,
}

pub mod otlp;
pub mod own_postgres;
pub mod redis_stack;
pub mod scrapi;
pub use conserver_fixtures::test_ca;
pub mod vendors;

pub fn redis_url() -> String {
    std::env::var("CONSERVER_TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into())
}

pub fn cluster_url() -> String {
    std::env::var("CONSERVER_TEST_REDIS_CLUSTER_URL").unwrap_or_else(|_| "redis://127.0.0.1:7101".into())
}

/// The `conserver` binary under test.
pub fn binary() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_conserver"))
}

/// A component built by `cargo xtask build-links`: a standard link (`tag`) or a
/// fixture under `testing/`.
pub fn component(relative: &str) -> PathBuf {
    let path = binary().parent().map(|dir| dir.join("links").join(relative)).unwrap_or_default();
    assert!(path.is_file(), "{} is missing: run `cargo xtask build-links` (or `cargo xtask test`)", path.display());
    path
}

/// The project's vCons (`tests/fixtures/vcons`).
pub fn fixture_dir() -> PathBuf {
    conserver_fixtures::vcons_dir()
}

/// One of the project's vCons, by path under `tests/fixtures/vcons`.
pub fn fixture_vcon(name: &str) -> Value {
    conserver_fixtures::vcon(name)
}

/// Every unsigned, unencrypted vCon of the test corpora (the project's, and the
/// public real one when `CONSERVER_REAL_VCONS` names it), by corpus and path.
pub fn plain_fixture_vcons() -> Vec<(String, Value)> {
    let mut vcons = Vec::new();
    for corpus in conserver_fixtures::corpora() {
        let plain = corpus.plain_vcons();
        assert!(plain.len() >= 15, "expected the {} corpus in {}", corpus.name, corpus.vcons.display());
        vcons.extend(plain.into_iter().map(|(name, doc)| (format!("{}:{name}", corpus.name), doc)));
    }
    vcons
}

/// The project's URL recording with a fresh uuid, so tests sharing a Redis never collide.
pub fn fresh_vcon() -> (String, Value) {
    let mut vcon = fixture_vcon(conserver_fixtures::CALL);
    let uuid = uuid::Uuid::new_v4().to_string();
    vcon["uuid"] = Value::String(uuid.clone());
    (uuid, vcon)
}

/// A self-signed key and certificate made by openssl in `certs/` (`privkey.pem`,
/// `fullchain.pem`), with `subject` the openssl arguments naming it (`-subj …`
/// or `-config FILE`).
pub fn self_signed_certificate(certs: &Path, subject: &[&std::ffi::OsStr]) {
    let made = Command::new("openssl")
        .args(["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1"])
        .args(subject)
        .arg("-keyout")
        .arg(certs.join("privkey.pem"))
        .arg("-out")
        .arg(certs.join("fullchain.pem"))
        .output()
        .unwrap_or_else(|e| panic!("openssl is needed by this test: {e}"));
    assert!(made.status.success(), "openssl: {}", String::from_utf8_lossy(&made.stderr));
}

/// A unique name for a list, so parallel tests never share one.
pub fn unique(prefix: &str) -> String {
    format!("{prefix}-{}", uuid::Uuid::new_v4().simple())
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap_or_else(|e| panic!("no free port: {e}"))
}

/// A running `conserver serve`, killed on drop. It can be killed, stopped and
/// started again on the same data directory, config and port.
pub struct Server {
    child: Child,
    pub base: String,
    pub client: reqwest::Client,
    _dir: tempfile::TempDir,
    log: PathBuf,
    command: Vec<(String, String)>,
    program: PathBuf,
}

impl Server {
    /// Start with `config` (YAML text) on `backend`, plus extra env vars.
    pub async fn start(backend: Backend, config: &str, env: &[(&str, &str)]) -> Server {
        Self::start_program(binary(), backend, config, env).await
    }

    /// The same with another build of the binary (the API-only one).
    pub async fn start_program(program: PathBuf, backend: Backend, config: &str, env: &[(&str, &str)]) -> Server {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));
        let config_path = dir.path().join("config.yml");
        std::fs::write(&config_path, config).unwrap_or_else(|e| panic!("write config: {e}"));
        let port = free_port();
        let mut vars: Vec<(String, String)> = vec![
            ("CONSERVER_CONFIG_FILE".into(), config_path.display().to_string()),
            ("CONSERVER_BIND".into(), format!("127.0.0.1:{port}")),
            ("CONSERVER_DATA_DIR".into(), dir.path().join("data").display().to_string()),
            ("LOG_LEVEL".into(), "info".into()),
        ];
        match backend {
            Backend::Redis => vars.push(("REDIS_URL".into(), redis_url())),
            Backend::Cluster => vars.push(("REDIS_URL".into(), cluster_url())),
            Backend::Embedded => {}
        }
        vars.extend(env.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        let log = dir.path().join("server.log");
        let child = spawn(&program, &vars, &log);
        let mut server = Server {
            child,
            base: format!("http://127.0.0.1:{port}"),
            client: reqwest::Client::new(),
            _dir: dir,
            log,
            command: vars,
            program,
        };
        server.wait_healthy().await;
        server
    }

    /// The config file the server was started with.
    pub fn config_path(&self) -> PathBuf {
        self.command
            .iter()
            .find(|(k, _)| k == "CONSERVER_CONFIG_FILE")
            .map(|(_, v)| PathBuf::from(v))
            .unwrap_or_default()
    }

    /// The server's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Kill the process (SIGKILL) without letting it clean up.
    pub fn kill_hard(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Send SIGTERM and wait up to `timeout` for the exit status.
    pub async fn terminate(&mut self, timeout: Duration) -> Option<std::process::ExitStatus> {
        let _ = Command::new("kill").arg("-TERM").arg(self.child.id().to_string()).status();
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(status);
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        None
    }

    /// Start the process again (after a kill or stop), with the same settings.
    pub async fn restart(&mut self) {
        self.child = spawn(&self.program, &self.command, &self.log);
        self.wait_healthy().await;
    }

    async fn wait_healthy(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(60);
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("server exited with {status} during start-up:\n{}", self.log_text());
            }
            if let Ok(response) = self.client.get(format!("{}/health", self.base)).send().await
                && response.status().is_success()
            {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("server did not become healthy:\n{}", self.log_text());
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Whether the process is still running.
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub async fn post_vcon(&self, vcon: &Value, ingress: &str) -> reqwest::Response {
        let query = if ingress.is_empty() { String::new() } else { format!("?ingress_lists={ingress}") };
        self.client
            .post(self.url(&format!("/api/vcon{query}")))
            .json(vcon)
            .send()
            .await
            .unwrap_or_else(|e| panic!("POST /vcon: {e}"))
    }

    pub async fn get_text(&self, path: &str) -> String {
        let response = self.client.get(self.url(path)).send().await.unwrap_or_else(|e| panic!("GET {path}: {e}"));
        response.text().await.unwrap_or_default()
    }

    pub async fn get_json(&self, path: &str) -> (u16, Value) {
        let response = self.client.get(self.url(path)).send().await.unwrap_or_else(|e| panic!("GET {path}: {e}"));
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    /// Pop the egress list until `uuid` shows up (or fail after `timeout`).
    pub async fn wait_for_egress(&self, list: &str, uuid: &str, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            let (_, popped) = self.get_json(&format!("/api/vcon/egress?egress_list={list}&limit=100")).await;
            if popped.as_array().is_some_and(|items| items.iter().any(|v| v == uuid)) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("{uuid} never reached egress list {list}:\n{}", self.log_text());
    }

    /// Pop `list` until every uuid of `expected` has been seen (or `timeout`);
    /// returns how often each uuid was seen (duplicates are possible after a crash).
    pub async fn drain_egress(
        &self,
        list: &str,
        expected: &std::collections::HashSet<String>,
        seen: &mut std::collections::HashMap<String, u32>,
        timeout: Duration,
    ) -> bool {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if let Ok(response) =
                self.client.get(self.url(&format!("/api/vcon/egress?egress_list={list}&limit=1000"))).send().await
                && let Ok(Value::Array(items)) = response.json::<Value>().await
            {
                for item in items {
                    if let Value::String(uuid) = item {
                        *seen.entry(uuid).or_default() += 1;
                    }
                }
            }
            if expected.iter().all(|u| seen.contains_key(u)) {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        false
    }

    /// Wait until `DLQ:{ingress}` holds `uuid`, and return its recorded reason.
    pub async fn wait_for_dlq(&self, ingress: &str, uuid: &str, timeout: Duration) -> Value {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            let (_, reasons) = self.get_json(&format!("/api/dlq?ingress_list={ingress}&detail=true")).await;
            if let Some(reason) = reasons.as_array().and_then(|r| r.iter().find(|r| r["uuid"] == uuid)) {
                return reason.clone();
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("{uuid} never reached DLQ:{ingress}:\n{}", self.log_text());
    }
}

fn spawn(program: &Path, vars: &[(String, String)], log: &Path) -> Child {
    let log_file =
        std::fs::OpenOptions::new().create(true).append(true).open(log).unwrap_or_else(|e| panic!("log file: {e}"));
    let mut command = Command::new(program);
    command
        .arg("serve")
        .env_remove("REDIS_URL")
        .env_remove("CONSERVER_API_TOKEN")
        .env_remove("OTEL_EXPORTER_OTLP_ENDPOINT")
        .env_remove("OTEL_EXPORTER_OTLP_PROTOCOL")
        .stdout(Stdio::null())
        .stderr(log_file);
    for (key, value) in vars {
        command.env(key, value);
    }
    command.spawn().unwrap_or_else(|e| panic!("cannot start {}: {e}", program.display()))
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A child process killed (and reaped) when the test ends, panics included: a
/// Redis a test paused or starved never outlives it.
pub struct KillOnDrop(pub Child);

impl KillOnDrop {
    /// The process id.
    pub fn id(&self) -> u32 {
        self.0.id()
    }
}

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = Command::new("kill").args(["-CONT", &self.0.id().to_string()]).status();
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A test's own connection to the Redis (or stand-in) at `url` that waits up to
/// 10 s for an answer: redis-rs's default (0.5 s) is too short for the Python
/// stand-in on a loaded 2-core machine.
pub async fn patient_redis(url: &str) -> redis::aio::MultiplexedConnection {
    let config = redis::AsyncConnectionConfig::new().set_response_timeout(Some(Duration::from_secs(10)));
    let client = redis::Client::open(url).unwrap_or_else(|e| panic!("{url}: {e}"));
    client.get_multiplexed_async_connection_with_config(&config).await.unwrap_or_else(|e| panic!("{url}: {e}"))
}

/// A `redis-server` of the test's own on a free loopback port, without
/// persistence, with `extra` arguments; waits until it accepts connections.
pub fn own_redis(extra: &[&str]) -> (KillOnDrop, u16) {
    let port = free_port();
    let child = Command::new("redis-server")
        .args(["--port", &port.to_string(), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
        .args(extra)
        .stdout(Stdio::null())
        .spawn()
        .expect("redis-server must be installed (cargo xtask test installs it)");
    let child = KillOnDrop(child);
    wait_for_port(port, "the test's redis-server");
    (child, port)
}

/// Wait (5 s at most) until something accepts connections on `port` of
/// 127.0.0.1; `what` names it if nothing does.
pub fn wait_for_port(port: u16, what: &str) {
    for _ in 0..100 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("{what} never accepted connections on port {port}");
}

/// `conserver serve` with an empty config and `env`, expected to stop by itself
/// (a start that must fail) within 60 s; its exit status and every line it wrote.
pub fn serve_until_it_exits(env: &[(&str, &std::ffi::OsStr)]) -> (std::process::ExitStatus, String) {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("config.yml");
    std::fs::write(&config, "").unwrap();
    let mut command = Command::new(binary());
    command
        .arg("serve")
        .env("CONSERVER_CONFIG_FILE", &config)
        .env("CONSERVER_BIND", "127.0.0.1:0")
        .env("CONSERVER_DATA_DIR", dir.path().join("data"))
        .envs(env.iter().copied());
    output_within(&mut command, Duration::from_secs(60))
}

/// Run `command` to its end, or kill it after `limit` (a start that was meant
/// to fail but did not must not hang the test); its exit status and its stdout
/// and stderr together (through a file, so a chatty child never blocks).
pub fn output_within(command: &mut Command, limit: Duration) -> (std::process::ExitStatus, String) {
    let log = tempfile::NamedTempFile::new().unwrap();
    let (out, err) = (log.reopen().unwrap(), log.reopen().unwrap());
    let mut child = command.stdout(out).stderr(err).spawn().unwrap();
    let deadline = Instant::now() + limit;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return (status, std::fs::read_to_string(log.path()).unwrap_or_default());
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "still running after {limit:?} (it was expected to stop):\n{}",
                std::fs::read_to_string(log.path()).unwrap_or_default()
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A config whose one chain reads `ingress`, runs the `tag` link and pushes to `egress`.
pub fn tag_chain(ingress: &str, egress: &str) -> String {
    format!(
        "links:\n  tag:\n    component: {tag}\nchains:\n  main:\n    links: [tag]\n    ingress_lists: [{ingress}]\n    egress_lists: [{egress}]\n",
        tag = component("tag.wasm").display(),
    )
}
