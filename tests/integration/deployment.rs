//! The deployment files and the API tier: `docker/nginx.conf` passes `nginx -t`
//! exactly as compose mounts it, `docker/docker-compose.yml` and
//! `docker/compose.dev.yml` parse and have the guide's shape, the Kubernetes
//! manifests (`deploy/k8s`) hold what the guide asks of them and their config
//! passes `conserver check`, the API-only build has no wasmtime or symphonia in
//! its dependency tree (`cargo tree`), and that build serves the API.
//!
//! The images themselves are built and run in `containers.rs` (with podman);
//! the manifests' schemas are checked by `cargo xtask k8s-check`.

use std::collections::HashMap;
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
    crate::support::self_signed_certificate(&certs, &["-subj".as_ref(), "/CN=conserver.test".as_ref()]);
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

#[test]
fn dev_compose_file_is_one_conserver_and_redis() {
    let text = std::fs::read_to_string(repo().join("docker/compose.dev.yml")).unwrap();
    let compose: Value = serde_yaml_ng::from_str(&text).expect("compose.dev.yml is YAML");
    let services = compose["services"].as_object().unwrap();
    let names: Vec<&str> = services.keys().map(String::as_str).collect();
    assert_eq!(names, ["conserver", "redis"]);
    let conserver = &services["conserver"];
    assert_eq!(conserver["build"]["dockerfile"], "docker/Dockerfile.conserver", "the full image: API and workers");
    assert_eq!(conserver["command"], serde_json::json!(["serve"]));
    let ports = conserver["ports"].as_array().unwrap();
    assert!(ports.iter().any(|p| p.as_str().is_some_and(|p| p.ends_with(":8000:8000"))), "{ports:?}");
    let env = conserver["environment"].as_array().unwrap();
    assert!(env.iter().any(|e| e == "REDIS_URL=redis://redis:6379"), "{env:?}");
    assert!(!env.iter().any(|e| e.as_str().is_some_and(|e| e.contains("TOKEN"))), "no token in development: {env:?}");
    // Without a token the server refuses a non-loopback bind (0.0.0.0 in the
    // image) unless told it is open on purpose; the port is published to loopback.
    assert!(env.iter().any(|e| e == "CONSERVER_ALLOW_OPEN=1"), "the dev server would refuse to start: {env:?}");
    assert!(ports.iter().all(|p| p.as_str().is_some_and(|p| p.starts_with("127.0.0.1:"))), "{ports:?}");
    let mounted = "../config.example.yml:/app/config.yml:ro"; // repo-paths: not read (compose resolves it)
    assert!(conserver["volumes"].as_array().unwrap().iter().any(|v| v == mounted));
    assert_eq!(conserver["depends_on"]["redis"]["condition"], "service_healthy");
    assert!(compose.get("secrets").is_none() && conserver.get("secrets").is_none(), "no secrets in development");
    assert!(!services.contains_key("nginx") && !text.contains("443"), "no TLS in development");
    assert!(services["redis"]["healthcheck"]["test"].as_array().is_some_and(|t| t.iter().any(|a| a == "ping")));
}

/// Every document of the YAML files in deploy/k8s, by kind and name.
fn k8s_manifests() -> HashMap<(String, String), Value> {
    let dir = repo().join("deploy/k8s");
    let mut docs = HashMap::new();
    for entry in std::fs::read_dir(&dir).unwrap().flatten() {
        let path = entry.path();
        if path.extension().is_none_or(|e| e != "yaml") {
            continue;
        }
        let text = std::fs::read_to_string(&path).unwrap();
        // Documents are separated by `---` lines (redis.yaml holds two).
        for part in text.split("\n---\n") {
            let doc: Value =
                serde_yaml_ng::from_str(part).unwrap_or_else(|e| panic!("{} is not YAML: {e}", path.display()));
            let kind = doc["kind"].as_str().unwrap_or_default().to_string();
            let name = doc["metadata"]["name"].as_str().unwrap_or_default().to_string();
            docs.insert((kind, name), doc);
        }
    }
    docs
}

fn env_of(container: &Value, name: &str) -> Option<String> {
    container["env"].as_array()?.iter().find(|e| e["name"] == name).and_then(|e| e["value"].as_str()).map(String::from)
}

#[test]
fn k8s_manifests_have_the_guides_shape() {
    let docs = k8s_manifests();
    let get = |kind: &str, name: &str| {
        docs.get(&(kind.to_string(), name.to_string())).unwrap_or_else(|| panic!("deploy/k8s has no {kind} {name}"))
    };
    let kustomization = std::fs::read_to_string(repo().join("deploy/k8s/kustomization.yaml")).unwrap();
    let kustomization: Value = serde_yaml_ng::from_str(&kustomization).unwrap();
    let resources = kustomization["resources"].as_array().unwrap();
    for entry in std::fs::read_dir(repo().join("deploy/k8s")).unwrap().flatten() {
        let file = entry.file_name().to_string_lossy().into_owned();
        if file.ends_with(".yaml") && file != "kustomization.yaml" {
            assert!(resources.iter().any(|r| r == file.as_str()), "kustomization.yaml does not list {file}");
        }
    }
    for (name, image) in [("conserver-api", "conserver-api"), ("conserver-worker", "conserver")] {
        let pod = &get("Deployment", name)["spec"]["template"]["spec"];
        let container = &pod["containers"][0];
        assert_eq!(container["image"], image, "{name}");
        for probe in ["livenessProbe", "readinessProbe"] {
            assert_eq!(container[probe]["httpGet"]["path"], "/health", "{name} {probe}");
        }
        for bound in ["requests", "limits"] {
            for resource in ["cpu", "memory"] {
                assert!(container["resources"][bound][resource].is_string(), "{name}: no {bound}.{resource}");
            }
        }
        assert_eq!(env_of(container, "CONSERVER_API_TOKEN_FILE").as_deref(), Some("/run/secrets/api_tokens"), "{name}");
        let mounts = container["volumeMounts"].as_array().unwrap();
        let secrets = mounts.iter().find(|m| m["mountPath"] == "/run/secrets").expect("secrets mounted as files");
        let volume = pod["volumes"].as_array().unwrap().iter().find(|v| v["name"] == secrets["name"]).unwrap();
        assert_eq!(volume["secret"]["secretName"], "conserver-secrets", "{name}");
        let config = env_of(container, "CONSERVER_CONFIG_FILE").unwrap();
        let config_mount = mounts.iter().find(|m| config.starts_with(m["mountPath"].as_str().unwrap())).unwrap();
        let volume = pod["volumes"].as_array().unwrap().iter().find(|v| v["name"] == config_mount["name"]).unwrap();
        assert_eq!(volume["configMap"]["name"], "conserver-config", "{name}");
        assert!(get("Deployment", name)["spec"].get("replicas").is_none(), "{name}: replicas belong to the autoscaler");
    }
    let worker = &get("Deployment", "conserver-worker")["spec"]["template"]["spec"];
    let grace: u64 = env_of(&worker["containers"][0], "CONSERVER_SHUTDOWN_GRACE_SECS").unwrap().parse().unwrap();
    let termination = worker["terminationGracePeriodSeconds"].as_u64().unwrap();
    assert!(termination > grace, "terminationGracePeriodSeconds {termination} must exceed the shutdown grace {grace}");

    let service = get("Service", "conserver-api");
    assert_eq!(service["spec"]["selector"], get("Deployment", "conserver-api")["spec"]["selector"]["matchLabels"]);
    let hpa = get("HorizontalPodAutoscaler", "conserver-api");
    assert_eq!(hpa["apiVersion"], "autoscaling/v2");
    assert_eq!(hpa["spec"]["scaleTargetRef"]["name"], "conserver-api");
    assert_eq!(hpa["spec"]["metrics"][0]["resource"]["name"], "cpu");
    let scaled = get("ScaledObject", "conserver-worker");
    assert_eq!(scaled["apiVersion"], "keda.sh/v1alpha1");
    assert_eq!(scaled["spec"]["scaleTargetRef"]["name"], "conserver-worker");
    let trigger = &scaled["spec"]["triggers"][0];
    assert_eq!(trigger["type"], "redis");

    // The ConfigMap's config is valid, and KEDA watches one of its ingress lists.
    let config_text = get("ConfigMap", "conserver-config")["data"]["config.yml"].as_str().unwrap().to_string();
    let config: Value = serde_yaml_ng::from_str(&config_text).unwrap();
    let ingress: Vec<&Value> =
        config["chains"].as_object().unwrap().values().flat_map(|c| c["ingress_lists"].as_array().unwrap()).collect();
    assert!(ingress.contains(&&trigger["metadata"]["listName"]), "KEDA watches a list no chain reads: {trigger}");
    let scratch = tempfile::tempdir().unwrap();
    let path = scratch.path().join("config.yml");
    std::fs::write(&path, &config_text).unwrap();
    let out = Command::new(crate::support::binary())
        .arg("check")
        .arg(&path)
        .env("CONSERVER_DATA_DIR", scratch.path())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "conserver check refused the ConfigMap's config: {}",
        String::from_utf8_lossy(&out.stderr)
    );
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
