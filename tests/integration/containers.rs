//! The images, run for real: compose's topology — nginx → API ×2 → Redis ←
//! workers ×2 — in podman containers made from the images `cargo xtask test`
//! assembles first (`cargo xtask images --prebuilt`), with docker/nginx.conf,
//! docker-compose.yml's environment and Redis command, and the secrets as files
//! under /run/secrets. The chain is tag → delay (0.1 s) → file storage → egress.
//! A vCon goes in through nginx (HTTPS, with the token) and must reach egress and
//! the file storage; then a load of fresh vCons, during which one worker
//! container is stopped with SIGTERM, must all arrive (checked by uuid).
//!
//! Bridge networks do not work in this sandbox, so every container shares the
//! host's network on its own loopback address, and `--add-host` makes compose's
//! service names resolve (nginx's image has `multi on`, so `conserver-api` is
//! both replicas):
//!
//! | address   | container                 | port                                |
//! |-----------|---------------------------|-------------------------------------|
//! | 127.0.0.2 | conserver-api #1          | 8000                                |
//! | 127.0.0.3 | conserver-api #2          | 8000                                |
//! | 127.0.0.4 | redis                     | 6379 (the machine's is on 127.0.0.1) |
//! | 127.0.0.5 | conserver-worker #1       | 8000                                |
//! | 127.0.0.6 | conserver-worker #2       | 8000                                |
//! | 127.0.0.7 | nginx                     | 80, 443                             |
//!
//! nginx.conf is mounted as it is but for its two `listen` lines, bound to
//! 127.0.0.7 so nothing listens beyond loopback. Every container is removed at
//! the end, also when the test fails. Without the images the test is skipped
//! with one line.

use std::collections::{HashMap, HashSet};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::support::fresh_vcon;

const API_IMAGE: &str = "conserver-api:latest";
const WORKER_IMAGE: &str = "conserver:latest";
const REDIS_IMAGE: &str = "conserver-redis:latest";
const NGINX_IMAGE: &str = "conserver-nginx:latest";
/// Every container of the test carries it, so leftovers of a killed run go too.
const LABEL: &str = "conserver-smoke";

const API: [&str; 2] = ["127.0.0.2", "127.0.0.3"];
const REDIS: &str = "127.0.0.4";
const WORKERS: [&str; 2] = ["127.0.0.5", "127.0.0.6"];
const NGINX: &str = "127.0.0.7";
/// The name the test's certificate is for (resolved to NGINX).
const HOST: &str = "conserver.test";

const INGRESS: &str = "smoke_ingress";
const EGRESS: &str = "smoke_egress";
const TOKEN: &str = "smoke-test-token";
/// vCons of the load, and how many go in before a worker is stopped.
const LOAD: usize = 300;
const STOP_AFTER: usize = 100;
/// Below nginx's 100 requests/s per client (burst 200), so no post is refused.
const PACE: Duration = Duration::from_millis(16);
/// In-flight vCons get this long after SIGTERM; below `podman stop -t 30`.
const GRACE_SECS: u32 = 20;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// podman as `cargo xtask` runs it (runc, cgroupfs, the containers.conf that
/// `cargo xtask test` passes in `CONTAINERS_CONF`, or one written here).
struct Podman {
    conf: PathBuf,
}

impl Podman {
    fn command(&self) -> Command {
        let mut command = Command::new("podman");
        command.args(["--runtime", "runc", "--cgroup-manager", "cgroupfs"]).env("CONTAINERS_CONF", &self.conf);
        command
    }

    fn output(&self, args: &[&str]) -> Output {
        self.command().args(args).output().unwrap_or_else(|e| panic!("cannot start podman {args:?}: {e}"))
    }

    fn ok(&self, args: &[&str]) -> String {
        let out = self.output(args);
        assert!(out.status.success(), "podman {args:?} failed: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn image_exists(&self, image: &str) -> bool {
        self.output(&["image", "exists", image]).status.success()
    }

    fn remove_labelled(&self, value: Option<&str>) {
        let filter = match value {
            Some(v) => format!("label={LABEL}={v}"),
            None => format!("label={LABEL}"),
        };
        let ids = self.output(&["ps", "-aq", "--filter", &filter]);
        let ids: Vec<String> = String::from_utf8_lossy(&ids.stdout).split_whitespace().map(String::from).collect();
        if !ids.is_empty() {
            let mut args = vec!["rm", "-f", "-t", "0"];
            args.extend(ids.iter().map(String::as_str));
            let _ = self.output(&args);
        }
    }
}

/// The running topology; every container is removed on drop.
struct Topology {
    podman: Podman,
    run: String,
    names: Vec<String>,
}

impl Drop for Topology {
    fn drop(&mut self) {
        self.podman.remove_labelled(Some(&self.run));
    }
}

impl Topology {
    /// `podman run -d` one container on the host network; its name.
    fn start(&mut self, role: &str, image: &str, options: &[String], command: &[String]) -> String {
        let name = format!("{LABEL}-{}-{role}", self.run);
        let label = format!("{LABEL}={}", self.run);
        let mut args: Vec<&str> =
            vec!["run", "-d", "--name", &name, "--label", &label, "--network", "host", "--no-healthcheck"];
        args.extend(options.iter().map(String::as_str));
        args.push(image);
        args.extend(command.iter().map(String::as_str));
        self.podman.ok(&args);
        self.names.push(name.clone());
        name
    }

    fn logs(&self, name: &str) -> String {
        let out = self.podman.output(&["logs", "--tail", "60", name]);
        format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
    }

    fn all_logs(&self) -> String {
        self.names.iter().map(|n| format!("--- {n}\n{}", self.logs(n))).collect::<Vec<_>>().join("\n")
    }
}

/// The containers.conf `cargo xtask test` passes, or one like it in `dir`.
fn containers_conf(dir: &Path) -> PathBuf {
    if let Some(conf) = std::env::var_os("CONTAINERS_CONF") {
        return PathBuf::from(conf);
    }
    let conf = dir.join("containers.conf");
    std::fs::write(&conf, "[containers]\ndefault_ulimits = []\n").unwrap();
    conf
}

/// A service's `environment` in docker-compose.yml, as `--env` options, with
/// `overrides` replacing or adding variables.
fn compose_env(compose: &Value, service: &str, overrides: &[(&str, String)]) -> Vec<String> {
    let mut env: Vec<(String, String)> = compose["services"][service]["environment"]
        .as_array()
        .unwrap_or_else(|| panic!("docker-compose.yml: {service} has no environment list"))
        .iter()
        .filter_map(|e| e.as_str()?.split_once('=').map(|(k, v)| (k.to_string(), v.to_string())))
        .collect();
    for (key, value) in overrides {
        env.retain(|(k, _)| k != key);
        env.push((key.to_string(), value.clone()));
    }
    env.into_iter().flat_map(|(k, v)| ["--env".to_string(), format!("{k}={v}")]).collect()
}

/// A service's `secrets` in docker-compose.yml, each file mounted at /run/secrets/<name>.
fn compose_secrets(compose: &Value, service: &str, dir: &Path) -> Vec<String> {
    let secrets = compose["services"][service]["secrets"].as_array().cloned().unwrap_or_default();
    assert!(!secrets.is_empty(), "docker-compose.yml: {service} has no secrets");
    secrets
        .iter()
        .filter_map(Value::as_str)
        .flat_map(|s| ["--volume".to_string(), format!("{}:/run/secrets/{s}:ro", dir.join(s).display())])
        .collect()
}

fn add_host(name: &str, address: &str) -> [String; 2] {
    ["--add-host".into(), format!("{name}:{address}")]
}

/// Panics unless `address` is free to listen on.
fn assert_free(address: &str) {
    if let Err(e) = TcpListener::bind(address) {
        panic!("{address} is taken ({e}): the container smoke test listens there; stop what holds it");
    }
}

/// A certificate for HOST (not a CA, so rustls takes it as its own root).
fn certificate(dir: &Path) -> Vec<u8> {
    let certs = dir.join("certs");
    std::fs::create_dir(&certs).unwrap();
    let conf = dir.join("openssl.cnf");
    std::fs::write(
        &conf,
        format!(
            "[req]\ndistinguished_name = dn\nprompt = no\nx509_extensions = ext\n[dn]\nCN = {HOST}\n\
             [ext]\nbasicConstraints = critical, CA:FALSE\nkeyUsage = digitalSignature, keyEncipherment\n\
             extendedKeyUsage = serverAuth\nsubjectAltName = DNS:{HOST}\n"
        ),
    )
    .unwrap();
    crate::support::self_signed_certificate(&certs, &["-config".as_ref(), conf.as_os_str()]);
    for file in ["privkey.pem", "fullchain.pem"] {
        set_mode(&certs.join(file), 0o644);
    }
    std::fs::read(certs.join("fullchain.pem")).unwrap()
}

fn set_mode(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

/// docker/nginx.conf with its `listen` lines bound to NGINX (and nothing else changed).
fn nginx_conf(dir: &Path) -> PathBuf {
    let text = std::fs::read_to_string(repo().join("docker/nginx.conf")).unwrap();
    for listen in ["listen 80;", "listen 443 ssl http2;"] {
        assert_eq!(text.matches(listen).count(), 1, "docker/nginx.conf no longer has `{listen}`: update this test");
    }
    let text = text
        .replace("listen 80;", &format!("listen {NGINX}:80;"))
        .replace("listen 443 ssl http2;", &format!("listen {NGINX}:443 ssl http2;"));
    let path = dir.join("nginx.conf");
    std::fs::write(&path, text).unwrap();
    set_mode(&path, 0o644);
    path
}

fn wait_for_redis(topology: &Topology, name: &str) {
    let address: SocketAddr = format!("{REDIS}:6379").parse().unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        if let Ok(mut stream) = TcpStream::connect_timeout(&address, Duration::from_millis(300)) {
            use std::io::{Read as _, Write as _};
            let mut reply = [0u8; 7];
            let _ = stream.set_read_timeout(Some(Duration::from_secs(1)));
            if stream.write_all(b"PING\r\n").is_ok() && stream.read_exact(&mut reply).is_ok() && &reply == b"+PONG\r\n"
            {
                return;
            }
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("Redis did not answer PING on {address}:\n{}", topology.logs(name));
}

async fn wait_healthy(topology: &Topology, name: &str, client: &reqwest::Client, url: &str) {
    let deadline = Instant::now() + Duration::from_secs(90);
    while Instant::now() < deadline {
        if let Ok(response) = client.get(url).send().await
            && response.status().is_success()
            && let Ok(health) = response.json::<Value>().await
            && health["status"] == "healthy"
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    panic!("{name} never became healthy at {url}:\n{}", topology.logs(name));
}

/// The client of the deployment: HTTPS to nginx, trusting the test's certificate.
fn nginx_client(certificate: &[u8]) -> reqwest::Client {
    reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(certificate).unwrap())
        // Port 0: each URL's own (80 for http, 443 for https).
        .resolve(HOST, format!("{NGINX}:0").parse().unwrap())
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap()
}

fn url(path: &str) -> String {
    format!("https://{HOST}{path}")
}

/// POST a vCon through nginx, retrying a 429 (rate limit) a few times; the status.
async fn post(client: &reqwest::Client, vcon: &Value) -> u16 {
    for _ in 0..20 {
        let response = client
            .post(url(&format!("/api/vcon?ingress_lists={INGRESS}")))
            .header("x-conserver-api-token", TOKEN)
            .json(vcon)
            .send()
            .await
            .unwrap_or_else(|e| panic!("POST /api/vcon through nginx: {e}"));
        let status = response.status().as_u16();
        if status != 429 {
            return status;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    429
}

/// Pop EGRESS through nginx until every uuid of `expected` was seen (or `timeout`).
async fn drain(
    client: &reqwest::Client,
    expected: &HashSet<String>,
    seen: &mut HashMap<String, u32>,
    timeout: Duration,
) {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline && !expected.iter().all(|u| seen.contains_key(u)) {
        let response = client
            .get(url(&format!("/api/vcon/egress?egress_list={EGRESS}&limit=1000")))
            .header("x-conserver-api-token", TOKEN)
            .send()
            .await;
        if let Ok(response) = response
            && let Ok(Value::Array(items)) = response.json::<Value>().await
        {
            for uuid in items.iter().filter_map(Value::as_str) {
                *seen.entry(uuid.to_string()).or_default() += 1;
            }
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// uuids of `expected` with no `<uuid>.json` in the storage directory yet (after
/// waiting up to `timeout`).
fn missing_from_storage(storage: &Path, expected: &HashSet<String>, timeout: Duration) -> Vec<String> {
    let deadline = Instant::now() + timeout;
    loop {
        let missing: Vec<String> =
            expected.iter().filter(|u| !storage.join(format!("{u}.json")).is_file()).cloned().collect();
        if missing.is_empty() || Instant::now() > deadline {
            return missing;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// A counter of a container's /metrics (`series` with its labels), 0 when absent.
async fn counter(client: &reqwest::Client, address: &str, series: &str) -> u64 {
    let response = client.get(format!("http://{address}:8000/metrics")).header("x-conserver-api-token", TOKEN);
    let text = response.send().await.unwrap().text().await.unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
        .and_then(|n| n.trim().parse::<f64>().ok())
        .map_or(0, |n| n as u64)
}

/// How many vCons an API replica put on INGRESS.
fn enqueued() -> String {
    format!("conserver_api_count_vcons_enqueued_total{{ingress_list=\"{INGRESS}\",source=\"new\"}}")
}

/// How many vCons a worker finished.
const PROCESSED: &str = "conserver_main_loop_count_vcons_processed_total{chain_name=\"main\"}";

/// What the deployment mounts: secrets, config, the storage directory, nginx's
/// config and certificate.
struct DeploymentFiles {
    compose: Value,
    dir: PathBuf,
    secrets: PathBuf,
    config: PathBuf,
    storage: PathBuf,
    nginx_conf: PathBuf,
    certificate: Vec<u8>,
}

impl DeploymentFiles {
    fn write(dir: &Path) -> DeploymentFiles {
        let compose = std::fs::read_to_string(repo().join("docker/docker-compose.yml")).unwrap();
        let compose: Value = serde_yaml_ng::from_str(&compose).unwrap();
        let secrets = dir.join("secrets");
        std::fs::create_dir(&secrets).unwrap();
        for (name, value) in [("api_tokens", TOKEN), ("openai_key", "sk-unused"), ("deepgram_key", "unused")] {
            std::fs::write(secrets.join(name), format!("{value}\n")).unwrap();
            set_mode(&secrets.join(name), 0o644);
        }
        let storage = dir.join("vcons");
        std::fs::create_dir(&storage).unwrap();
        std::os::unix::fs::chown(&storage, Some(10001), Some(10001)).unwrap();
        // tag → delay (0.1 s, so vCons are in flight when the worker stops) → file storage → egress.
        let config = dir.join("config.yml");
        let config_text = [
            "links:",
            "  tag: {module: links.tag, options: {tags: [smoke]}}",
            "  delay: {module: links.delay, options: {seconds: 0.1}}",
            "storages:",
            "  file: {module: storage.file, options: {path: /srv/vcons, organize_by_date: false}}",
            "chains:",
            "  main:",
            "    links: [tag, delay]",
            &format!("    ingress_lists: [{INGRESS}]"),
            "    storages: [file]",
            &format!("    egress_lists: [{EGRESS}]"),
        ]
        .join("\n");
        std::fs::write(&config, config_text + "\n").unwrap();
        set_mode(&config, 0o644);
        let certificate = certificate(dir);
        let nginx_conf = nginx_conf(dir);
        DeploymentFiles { compose, dir: dir.to_path_buf(), secrets, config, storage, nginx_conf, certificate }
    }

    /// The volumes of the API and worker containers: config.yml (read-only, as
    /// compose mounts it) and the file storage's directory.
    fn mounts(&self) -> Vec<String> {
        vec![
            "--volume".to_string(),
            format!("{}:/app/config.yml:ro", self.config.display()),
            "--volume".to_string(),
            format!("{}:/srv/vcons", self.storage.display()),
        ]
    }
}

/// Redis, the API replicas, the workers and nginx, each healthy; the workers
/// (name, address), a plain client and nginx's client.
async fn start_topology(
    podman: Podman,
    files: &DeploymentFiles,
) -> (Topology, Vec<(String, &'static str)>, reqwest::Client, reqwest::Client) {
    let compose = &files.compose;
    let mut topology =
        Topology { podman, run: uuid::Uuid::new_v4().simple().to_string()[..8].to_string(), names: vec![] };
    // Redis, with compose's command (AOF, noeviction) on its own address.
    let mut redis_command: Vec<String> = compose["services"]["redis"]["command"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect();
    redis_command.extend(["--bind".into(), REDIS.into(), "--port".into(), "6379".into()]);
    let redis = topology.start("redis", REDIS_IMAGE, &[], &redis_command);
    wait_for_redis(&topology, &redis);

    let serve = ["serve".to_string()];
    let plain = reqwest::Client::builder().timeout(Duration::from_secs(10)).build().unwrap();
    let mut replicas = Vec::new();
    for (i, address) in API.iter().enumerate() {
        let mut options = compose_env(compose, "conserver-api", &[("CONSERVER_BIND", format!("{address}:8000"))]);
        options.extend(compose_secrets(compose, "conserver-api", &files.secrets));
        options.extend(add_host("redis", REDIS));
        options.extend(files.mounts());
        replicas.push((topology.start(&format!("api{}", i + 1), API_IMAGE, &options, &serve), *address));
    }
    let mut workers = Vec::new();
    for (i, address) in WORKERS.iter().enumerate() {
        let overrides =
            [("CONSERVER_BIND", format!("{address}:8000")), ("CONSERVER_SHUTDOWN_GRACE_SECS", GRACE_SECS.to_string())];
        let mut options = compose_env(compose, "conserver-worker", &overrides);
        options.extend(compose_secrets(compose, "conserver-worker", &files.secrets));
        options.extend(add_host("redis", REDIS));
        options.extend(files.mounts());
        workers.push((topology.start(&format!("worker{}", i + 1), WORKER_IMAGE, &options, &serve), *address));
    }
    for (name, address) in replicas.iter().chain(&workers) {
        wait_healthy(&topology, name, &plain, &format!("http://{address}:8000/health")).await;
    }
    let mut options = vec![
        "--volume".to_string(),
        format!("{}:/etc/nginx/nginx.conf:ro", files.nginx_conf.display()),
        "--volume".to_string(),
        format!("{}:/etc/nginx/certs:ro", files.dir.join("certs").display()),
    ];
    for address in API {
        options.extend(add_host("conserver-api", address));
    }
    let nginx = topology.start("nginx", NGINX_IMAGE, &options, &[]);
    let client = nginx_client(&files.certificate);
    wait_healthy(&topology, &nginx, &client, &url("/health")).await;
    (topology, workers, plain, client)
}

#[tokio::test]
async fn compose_topology_in_containers_loses_nothing_when_a_worker_stops() {
    let scratch = tempfile::tempdir().unwrap();
    let podman = Podman { conf: containers_conf(scratch.path()) };
    let images = [API_IMAGE, WORKER_IMAGE, REDIS_IMAGE, NGINX_IMAGE];
    let podman_works = Command::new("podman").arg("--version").output().is_ok_and(|o| o.status.success());
    if !podman_works || !images.iter().all(|i| podman.image_exists(i)) {
        // `cargo xtask test` builds the images first and says so with CONTAINERS_CONF:
        // there, missing images are a failure, not a reason to skip.
        assert!(
            std::env::var_os("CONTAINERS_CONF").is_none(),
            "the images {images:?} are missing although `cargo xtask test` built them"
        );
        eprintln!(
            "containers: SKIPPED — podman or the images {images:?} are missing (`cargo xtask images --prebuilt` \
             builds them; `cargo xtask test` does so first)"
        );
        return;
    }
    let started = Instant::now();
    // Containers of an earlier run that was killed before its clean-up.
    podman.remove_labelled(None);
    for address in API.iter().chain(&WORKERS) {
        assert_free(&format!("{address}:8000"));
    }
    for address in [format!("{REDIS}:6379"), format!("{NGINX}:80"), format!("{NGINX}:443")] {
        assert_free(&address);
    }
    let files = DeploymentFiles::write(scratch.path());
    let (topology, workers, plain, client) = start_topology(podman, &files).await;
    eprintln!("containers: topology up in {:.1?}", started.elapsed());

    // nginx as the guide configures it: HTTP redirects, the API wants the token.
    let redirect = client.get(format!("http://{HOST}/health")).send().await.unwrap();
    assert_eq!(redirect.status().as_u16(), 301);
    assert_eq!(redirect.headers()["location"], format!("https://{HOST}/health"));
    let (uuid, vcon) = fresh_vcon();
    let refused = client.post(url(&format!("/api/vcon?ingress_lists={INGRESS}"))).json(&vcon).send().await.unwrap();
    assert_eq!(refused.status().as_u16(), 403, "POST without the token");

    // One vCon: through nginx and an API replica to Redis, a worker, storage, egress.
    assert_eq!(post(&client, &vcon).await, 201, "{}", topology.all_logs());
    let expected = HashSet::from([uuid.clone()]);
    let mut seen = HashMap::new();
    drain(&client, &expected, &mut seen, Duration::from_secs(60)).await;
    assert!(seen.contains_key(&uuid), "{uuid} never reached {EGRESS}:\n{}", topology.all_logs());
    let storage = &files.storage;
    assert!(missing_from_storage(storage, &expected, Duration::from_secs(5)).is_empty(), "{uuid} not stored");
    let stored: Value = serde_json::from_str(&std::fs::read_to_string(storage.join(format!("{uuid}.json"))).unwrap())
        .expect("the stored vCon is JSON");
    assert_eq!(stored["uuid"], uuid.as_str());
    assert!(stored.to_string().contains("smoke:smoke"), "the tag link did not run: {stored}");
    let fetched = client.get(url(&format!("/api/vcon/{uuid}"))).header("x-conserver-api-token", TOKEN).send().await;
    assert_eq!(fetched.unwrap().status().as_u16(), 200);

    // The load, with worker #1 stopped (SIGTERM, `podman stop -t 30`) a third of the way in.
    let load_started = Instant::now();
    let vcons: Vec<(String, Value)> = (0..LOAD).map(|_| fresh_vcon()).collect();
    let expected: HashSet<String> = vcons.iter().map(|(u, _)| u.clone()).collect();
    let posting = async {
        let mut refused = Vec::new();
        let mut handles = tokio::task::JoinSet::new();
        for (i, (uuid, vcon)) in vcons.iter().cloned().enumerate() {
            let client = client.clone();
            let at = tokio::time::Instant::now() + PACE * u32::try_from(i).unwrap();
            handles.spawn(async move {
                tokio::time::sleep_until(at).await;
                (uuid, post(&client, &vcon).await)
            });
        }
        while let Some(joined) = handles.join_next().await {
            let (uuid, status) = joined.unwrap();
            if status != 201 {
                refused.push((uuid, status));
            }
        }
        refused
    };
    let (stopped_worker, _) = &workers[0];
    let stopping = async {
        tokio::time::sleep(PACE * u32::try_from(STOP_AFTER).unwrap()).await;
        // Stopped once it has taken part (at once, unless the machine is very slow).
        let deadline = Instant::now() + Duration::from_secs(30);
        let mut before = counter(&plain, WORKERS[0], PROCESSED).await;
        while before == 0 && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(100)).await;
            before = counter(&plain, WORKERS[0], PROCESSED).await;
        }
        assert!(before > 0, "worker #1 processed nothing in 30 s:\n{}", topology.logs(stopped_worker));
        let began = Instant::now();
        let out = tokio::process::Command::new("podman")
            .args(["--runtime", "runc", "--cgroup-manager", "cgroupfs", "stop", "-t", "30", stopped_worker])
            .env("CONTAINERS_CONF", &topology.podman.conf)
            .output()
            .await
            .unwrap();
        assert!(out.status.success(), "podman stop: {}", String::from_utf8_lossy(&out.stderr));
        (began.elapsed(), before)
    };
    let (refused, (stop_took, stopped_had)) = tokio::join!(posting, stopping);
    assert!(refused.is_empty(), "posts refused through nginx: {refused:?}");
    let exit = topology.podman.ok(&["inspect", "--format", "{{.State.ExitCode}}", stopped_worker]);
    assert_eq!(exit.trim(), "0", "the worker did not exit cleanly on SIGTERM:\n{}", topology.logs(stopped_worker));
    assert!(stop_took < Duration::from_secs(30), "the worker took {stop_took:?} to stop: killed, not drained");

    let mut seen = HashMap::new();
    drain(&client, &expected, &mut seen, Duration::from_secs(180)).await;
    let lost: Vec<&String> = expected.iter().filter(|u| !seen.contains_key(*u)).collect();
    assert!(
        lost.is_empty(),
        "{} of {LOAD} vCons never reached {EGRESS}: {lost:?}\n{}",
        lost.len(),
        topology.all_logs()
    );
    let unstored = missing_from_storage(storage, &expected, Duration::from_secs(10));
    assert!(unstored.is_empty(), "{} vCons reached egress but not the file storage: {unstored:?}", unstored.len());
    // A vCon in flight when the worker stopped may be processed twice, no more.
    let duplicates: Vec<(&String, &u32)> = seen.iter().filter(|(_, n)| **n > 1).collect();
    assert!(duplicates.len() <= 4, "more duplicates than in-flight vCons: {duplicates:?}");
    let dlq = client.get(url(&format!("/api/dlq?ingress_list={INGRESS}"))).header("x-conserver-api-token", TOKEN);
    let dlq: Value = dlq.send().await.unwrap().json().await.unwrap();
    assert_eq!(dlq, serde_json::json!([]), "vCons dead-lettered");
    // nginx used both replicas (`conserver-api` resolved to both).
    let per_replica = [counter(&plain, API[0], &enqueued()).await, counter(&plain, API[1], &enqueued()).await];
    assert!(per_replica.iter().all(|n| *n > 0), "nginx used one API replica only: {per_replica:?}");
    assert_eq!(per_replica.iter().sum::<u64>(), (LOAD + 1) as u64);
    let survivor = counter(&plain, WORKERS[1], PROCESSED).await;
    assert!(survivor > 0, "worker #2 processed nothing");
    eprintln!(
        "containers: {LOAD} vCons in {:.1?}; worker #1 had processed {stopped_had} when stopped (in {stop_took:.1?}), \
         worker #2 {survivor}; {} duplicates; API replicas took {per_replica:?}; {:.1?} in all",
        load_started.elapsed(),
        duplicates.len(),
        started.elapsed()
    );
}
