//! The deployment files and the API tier: `docker/nginx.conf` passes `nginx -t`
//! exactly as compose mounts it, `docker/docker-compose.yml` parses and has the
//! guide's shape, the API-only build has no wasmtime or symphonia in its
//! dependency tree (`cargo tree`), and that build serves the API.
//!
//! No Docker engine runs here, so the images themselves are not built.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use serde_json::Value;

use crate::support::{Backend, Server, fresh_vcon, unique};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn cargo() -> Command {
    Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()))
}

#[test]
fn nginx_accepts_the_config_as_compose_mounts_it() {
    let nginx = ["/usr/sbin/nginx", "/usr/bin/nginx"].into_iter().find(|p| Path::new(p).exists());
    let nginx = nginx.expect("nginx is not installed: `cargo xtask test` installs it (apt-get install nginx-light)");
    let scratch = tempfile::tempdir().unwrap();
    let certs = scratch.path().join("certs");
    std::fs::create_dir(&certs).unwrap();
    let generated = Command::new("openssl")
        .args(["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=conserver.test"])
        .arg("-keyout")
        .arg(certs.join("privkey.pem"))
        .arg("-out")
        .arg(certs.join("fullchain.pem"))
        .output()
        .unwrap();
    assert!(generated.status.success(), "openssl: {}", String::from_utf8_lossy(&generated.stderr));
    // Compose resolves `conserver-api`; here a private /etc/hosts does.
    let hosts = scratch.path().join("hosts");
    std::fs::write(&hosts, "127.0.0.1 localhost\n127.0.0.1 conserver-api\n").unwrap();
    let conf = repo().join("docker/nginx.conf").canonicalize().unwrap();
    // In a private mount namespace: /etc/nginx holds only what compose mounts.
    let script = format!(
        "set -e; mount -t tmpfs none /etc/nginx; mkdir /etc/nginx/certs; \
         cp {certs}/privkey.pem {certs}/fullchain.pem /etc/nginx/certs/; cp {conf} /etc/nginx/nginx.conf; \
         mount --bind {hosts} /etc/hosts; {nginx} -t -c /etc/nginx/nginx.conf",
        certs = certs.display(),
        conf = conf.display(),
        hosts = hosts.display(),
    );
    let checked = Command::new("unshare").args(["--mount", "sh", "-c", &script]).output().unwrap();
    let stderr = String::from_utf8_lossy(&checked.stderr);
    assert!(checked.status.success(), "nginx -t refused docker/nginx.conf:\n{stderr}");
    assert!(stderr.contains("syntax is ok") && stderr.contains("test is successful"), "{stderr}");
}

#[test]
fn compose_file_has_the_guides_shape() {
    let text = std::fs::read_to_string(repo().join("docker/docker-compose.yml")).unwrap();
    let compose: Value = serde_yaml_ng::from_str(&text).expect("docker-compose.yml is YAML");
    let services = &compose["services"];
    assert_eq!(services["conserver-api"]["deploy"]["replicas"], 3);
    assert_eq!(services["conserver-api"]["build"]["dockerfile"], "docker/Dockerfile.api");
    assert_eq!(services["conserver-worker"]["deploy"]["replicas"], 5);
    assert_eq!(services["conserver-worker"]["build"]["dockerfile"], "docker/Dockerfile.conserver");
    let redis = services["redis"]["command"].as_array().unwrap();
    assert!(redis.windows(2).any(|w| w[0] == "--appendonly" && w[1] == "yes"), "Redis without AOF: {redis:?}");
    assert!(
        services["nginx"]["volumes"].as_array().unwrap().iter().any(|v| v == "./nginx.conf:/etc/nginx/nginx.conf:ro")
    );
    for secret in ["api_tokens", "openai_key", "deepgram_key"] {
        assert!(compose["secrets"][secret]["file"].as_str().is_some_and(|f| f.starts_with("./secrets/")), "{secret}");
    }
    let env = services["conserver-api"]["environment"].as_array().unwrap();
    assert!(env.iter().any(|e| e == "CONSERVER_API_TOKEN_FILE=/run/secrets/api_tokens"));
    for dockerfile in ["Dockerfile.api", "Dockerfile.conserver"] {
        let text = std::fs::read_to_string(repo().join("docker").join(dockerfile)).unwrap();
        assert!(text.matches("FROM ").count() >= 2, "{dockerfile} is not multi-stage");
        assert!(text.contains("USER conserver"), "{dockerfile} runs as root");
        assert!(text.contains("HEALTHCHECK"), "{dockerfile} has no healthcheck");
    }
    let api = std::fs::read_to_string(repo().join("docker/Dockerfile.api")).unwrap();
    assert!(api.contains("--no-default-features"), "the API image must be the API-only build");
}

fn tree(features: &[&str]) -> String {
    let output = cargo()
        .current_dir(repo())
        .args(["tree", "--offline", "--locked", "-p", "conserver", "-e", "normal", "--prefix", "none"])
        .args(features)
        .output()
        .unwrap();
    assert!(output.status.success(), "cargo tree: {}", String::from_utf8_lossy(&output.stderr));
    String::from_utf8_lossy(&output.stdout).into_owned()
}

#[test]
fn api_only_build_has_no_wasm_runtime_or_audio_stack() {
    let crates = |text: &str| -> Vec<String> {
        text.lines().filter_map(|line| line.split_whitespace().next()).map(String::from).collect()
    };
    let full = crates(&tree(&[]));
    assert!(full.iter().any(|c| c == "wasmtime"), "the worker build should hold wasmtime (is the check blind?)");
    let api_only = crates(&tree(&["--no-default-features"]));
    let heavy: Vec<&String> = api_only
        .iter()
        .filter(|c| c.starts_with("wasmtime") || c.starts_with("symphonia") || c.starts_with("cranelift"))
        .collect();
    assert!(heavy.is_empty(), "the API-only build pulls in {heavy:?}");
    assert!(api_only.iter().any(|c| c == "axum"), "the API-only build lost the API");
}

/// The API-only binary `cargo xtask test` builds (`CONSERVER_API_ONLY_BINARY`).
fn api_only_binary() -> PathBuf {
    let path = std::env::var_os("CONSERVER_API_ONLY_BINARY")
        .map(PathBuf::from)
        .expect("CONSERVER_API_ONLY_BINARY is not set: run `cargo xtask test`, which builds the API-only binary first");
    assert!(path.is_file(), "{} is missing: run `cargo xtask test`", path.display());
    path
}

#[tokio::test]
async fn api_only_binary_serves_the_api_and_processes_nothing() {
    let (ingress, egress) = (unique("api-only-in"), unique("api-only-out"));
    // A chain naming a component that does not exist: the API tier never loads it.
    let config = format!(
        "links:\n  tag:\n    component: /nonexistent/tag.wasm\nchains:\n  main:\n    links: [tag]\n    ingress_lists: [{ingress}]\n    egress_lists: [{egress}]\n"
    );
    let server = Server::start_program(api_only_binary(), Backend::Redis, &config, &[]).await;
    let (status, health) = server.get_json("/health").await;
    assert_eq!(status, 200);
    assert_eq!(health["status"], "healthy", "{health}");
    assert_eq!(health["broker"]["status"], "ok", "{health}");

    let (uuid, vcon) = fresh_vcon();
    assert_eq!(server.post_vcon(&vcon, &ingress).await.status(), 201);
    let (status, stored) = server.get_json(&format!("/api/vcon/{uuid}")).await;
    assert_eq!(status, 200);
    assert_eq!(stored["uuid"], uuid.as_str());
    let (_, depth) = server.get_json(&format!("/stats/queue?list_name={ingress}")).await;
    assert_eq!(depth["depth"], 1, "the vCon waits for the worker tier");
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (_, depth) = server.get_json(&format!("/stats/queue?list_name={ingress}")).await;
    assert_eq!(depth["depth"], 1, "the API tier must not process: {}", server.log_text());
    let metrics = server.get_text("/metrics").await;
    assert!(
        metrics.contains(&format!(
            "conserver_api_count_vcons_enqueued_total{{ingress_list=\"{ingress}\",source=\"new\"}} 1"
        )),
        "{metrics}"
    );
}

#[tokio::test]
async fn health_says_degraded_when_the_broker_is_unreachable() {
    // A Redis URL nothing listens on once the server is up: start against a
    // throwaway redis-server and stop it.
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let mut redis = Command::new("redis-server")
        .args(["--port", &port.to_string(), "--save", "", "--appendonly", "no"])
        .stdout(std::process::Stdio::null())
        .spawn()
        .expect("redis-server (installed by `cargo xtask test`)");
    tokio::time::sleep(Duration::from_millis(300)).await;
    let url = format!("redis://127.0.0.1:{port}");
    let server = Server::start(Backend::Embedded, "chains: {}\n", &[("REDIS_URL", url.as_str())]).await;
    let (_, health) = server.get_json("/health").await;
    assert_eq!(health["status"], "healthy", "{health}");
    let _ = redis.kill();
    let _ = redis.wait();
    let started = std::time::Instant::now();
    let (status, health) = server.get_json("/health").await;
    assert_eq!(status, 200, "still public and still answering");
    assert_eq!(health["status"], "degraded", "{health}");
    assert_eq!(health["broker"]["status"], "unreachable", "{health}");
    assert!(started.elapsed() < Duration::from_secs(3), "health took {:?}", started.elapsed());
}
