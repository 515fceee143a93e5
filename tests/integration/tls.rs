//! TLS to the services conserver uses (issue #18, item 1), against real servers
//! on loopback with a CA made at test time: a redis-server that only speaks TLS
//! and requires a client certificate, a three-node Redis Cluster speaking only
//! TLS, and PostgreSQL with `ssl = on`.

use std::process::{Command, Stdio};
use std::time::Duration;

use crate::support::test_ca::TestCa;
use crate::support::{Backend, KillOnDrop, Server, component, fresh_vcon, unique};

/// A redis-server listening only with TLS, requiring a client certificate.
struct TlsRedis {
    _child: KillOnDrop,
    port: u16,
}

/// A `redis-server` command listening only with TLS on `port` of 127.0.0.1,
/// without persistence, with `cert`/`key` and `ca`'s certificate.
fn tls_redis_server(port: u16, cert: &std::path::Path, key: &std::path::Path, ca: &TestCa) -> Command {
    let mut command = Command::new("redis-server");
    command
        .args(["--port", "0", "--tls-port", &port.to_string(), "--bind", "127.0.0.1"])
        .args(["--save", "", "--appendonly", "no"])
        .arg("--tls-cert-file")
        .arg(cert)
        .arg("--tls-key-file")
        .arg(key)
        .arg("--tls-ca-cert-file")
        .arg(ca.ca_file())
        .stdout(Stdio::null());
    command
}

impl TlsRedis {
    fn start(ca: &TestCa) -> Self {
        let (cert, key) = ca.issue("redis-server");
        let port = crate::support::free_port();
        let child = tls_redis_server(port, &cert, &key, ca)
            .args(["--tls-auth-clients", "yes"])
            .spawn()
            .expect("redis-server (with TLS support, as Debian builds it)");
        let child = KillOnDrop(child);
        crate::support::wait_for_port(port, "the TLS redis-server");
        Self { _child: child, port }
    }
}

#[tokio::test]
async fn rediss_with_a_ca_file_and_a_client_certificate_carries_the_whole_pipeline() {
    let ca = TestCa::new();
    let redis = TlsRedis::start(&ca);
    let (client_cert, client_key) = ca.issue("conserver");
    let (ingress, egress) = (unique("tls-in"), unique("tls-out"));
    let url = format!("rediss://localhost:{}", redis.port);
    let (ca_file, cert, key) = (ca.ca_file(), client_cert.display().to_string(), client_key.display().to_string());
    let env = [
        ("REDIS_URL", url.as_str()),
        ("CONSERVER_REDIS_CA_FILE", ca_file.to_str().unwrap()),
        ("CONSERVER_REDIS_CLIENT_CERT_FILE", cert.as_str()),
        ("CONSERVER_REDIS_CLIENT_KEY_FILE", key.as_str()),
    ];
    let server = Server::start(Backend::Embedded, &crate::support::tag_chain(&ingress, &egress), &env).await;
    let (_, health) = server.get_json("/health").await;
    assert_eq!(health["broker"]["backend"], "redis", "{health}");
    let (uuid, vcon) = fresh_vcon();
    assert_eq!(server.post_vcon(&vcon, &ingress).await.status(), 201);
    server.wait_for_egress(&egress, &uuid, Duration::from_secs(30)).await;
}

#[tokio::test]
async fn a_python_rediss_url_with_redis_py_ssl_parameters_works_unchanged() {
    let ca = TestCa::new();
    let redis = TlsRedis::start(&ca);
    let (client_cert, client_key) = ca.issue("conserver");
    let url = format!(
        "rediss://127.0.0.1:{}/0?ssl_ca_certs={}&ssl_certfile={}&ssl_keyfile={}&ssl_cert_reqs=required",
        redis.port,
        ca.ca_file().display(),
        client_cert.display(),
        client_key.display()
    );
    let server = Server::start(Backend::Embedded, "", &[("REDIS_URL", url.as_str())]).await;
    let (uuid, vcon) = fresh_vcon();
    assert_eq!(server.post_vcon(&vcon, "").await.status(), 201);
    assert_eq!(server.get_json(&format!("/api/vcon/{uuid}")).await.0, 200);
}

#[test]
fn a_redis_certificate_from_an_unknown_ca_is_refused_at_start() {
    let ca = TestCa::new();
    let redis = TlsRedis::start(&ca);
    let (client_cert, client_key) = ca.issue("conserver");
    // The client certificate is fine; the server's CA is not trusted (system
    // roots only). Refused at once: waiting does not make an untrusted
    // certificate trusted (the default CONSERVER_BROKER_WAIT_SECS of 300 is not
    // waited out).
    let url = format!("rediss://localhost:{}", redis.port);
    let (status, log) = crate::support::serve_until_it_exits(&[
        ("REDIS_URL", url.as_ref()),
        ("CONSERVER_REDIS_CLIENT_CERT_FILE", client_cert.as_os_str()),
        ("CONSERVER_REDIS_CLIENT_KEY_FILE", client_key.as_os_str()),
    ]);
    assert!(!status.success());
    let log = log.to_lowercase();
    assert!(log.contains("certificate") || log.contains("issuer"), "{log}");
    assert!(!log.contains("not reachable yet; retrying"), "{log}");
}

#[tokio::test]
async fn the_postgresql_storage_speaks_verified_tls_and_refuses_an_unknown_ca() {
    // The server rejects plain connections (pg_hba: hostnossl … reject), so a
    // stored vCon proves the storage used TLS.
    let ca = TestCa::new();
    let pg = crate::support::own_postgres::OwnPostgres::start_tls_only(&ca);
    let (good_in, bad_in, egress) = (unique("pg-tls-in"), unique("pg-badca-in"), unique("pg-tls-out"));
    let storage = |name: &str, extra: &str| {
        format!(
            "  {name}:\n    module: storage.postgres\n    options:\n      host: localhost\n      port: {}\n      user: postgres\n      database: postgres\n      table_name: vcons_tls\n      sslmode: verify-full\n{extra}",
            pg.port
        )
    };
    let config = format!(
        "links:\n  tag:\n    component: {tag}\nstorages:\n{good}{bad}chains:\n  good:\n    links: [tag]\n    ingress_lists: [{good_in}]\n    egress_lists: [{egress}]\n    storages: [verified]\n  bad:\n    links: [tag]\n    ingress_lists: [{bad_in}]\n    storages: [unknown_ca]\n    storage_retry_secs: 1\n",
        tag = component("tag.wasm").display(),
        good = storage("verified", &format!("      sslrootcert: {}\n", ca.ca_file().display())),
        bad = storage("unknown_ca", ""),
    );
    let server = Server::start(Backend::Embedded, &config, &[]).await;
    let (uuid, vcon) = fresh_vcon();
    server.post_vcon(&vcon, &good_in).await;
    server.wait_for_egress(&egress, &uuid, Duration::from_secs(30)).await;
    assert_eq!(pg.query(&format!("SELECT count(*) FROM vcons_tls WHERE id = '{uuid}'")), "1");
    // Without the CA, verify-full refuses the server's certificate.
    let (refused, vcon) = fresh_vcon();
    server.post_vcon(&vcon, &bad_in).await;
    let reason = server.wait_for_dlq(&bad_in, &refused, Duration::from_secs(60)).await;
    let text = reason.to_string().to_lowercase();
    assert!(text.contains("unknown_ca") && (text.contains("certificate") || text.contains("issuer")), "{reason}");
}

/// Three redis-servers forming a cluster that speaks only TLS (clients and the
/// cluster bus), with certificates from `ca`.
struct TlsCluster {
    _nodes: Vec<KillOnDrop>,
    _dir: tempfile::TempDir,
    ports: Vec<u16>,
}

impl TlsCluster {
    fn start(ca: &TestCa) -> Self {
        let (cert, key) = ca.issue("redis-cluster");
        let dir = tempfile::tempdir().unwrap();
        let ports: Vec<u16> = (0..3).map(|_| crate::support::free_port()).collect();
        let mut nodes = Vec::new();
        for port in &ports {
            let child = tls_redis_server(*port, &cert, &key, ca)
                .current_dir(dir.path())
                .args(["--cluster-enabled", "yes", "--tls-cluster", "yes", "--tls-auth-clients", "no"])
                .args(["--cluster-config-file", &format!("nodes-{port}.conf")])
                .spawn()
                .expect("redis-server (with TLS support, as Debian builds it)");
            nodes.push(KillOnDrop(child));
            crate::support::wait_for_port(*port, "a TLS cluster node");
        }
        let mut create = Command::new("redis-cli");
        create.arg("--tls").arg("--cacert").arg(ca.ca_file()).args([
            "-p",
            &ports[0].to_string(),
            "--cluster",
            "create",
        ]);
        create.args(ports.iter().map(|p| format!("127.0.0.1:{p}"))).arg("--cluster-yes");
        let (status, output) = crate::support::output_within(&mut create, Duration::from_secs(60));
        assert!(status.success(), "redis-cli --cluster create: {output}");
        let cluster = Self { _nodes: nodes, _dir: dir, ports };
        cluster.wait_until_ready(ca);
        cluster
    }

    fn wait_until_ready(&self, ca: &TestCa) {
        for _ in 0..100 {
            let ready = self.ports.iter().all(|port| {
                let mut info = Command::new("redis-cli");
                info.arg("--tls").arg("--cacert").arg(ca.ca_file()).args(["-p", &port.to_string(), "cluster", "info"]);
                let (_, output) = crate::support::output_within(&mut info, Duration::from_secs(10));
                output.contains("cluster_state:ok")
            });
            if ready {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("the TLS cluster never reached cluster_state:ok");
    }
}

#[tokio::test]
async fn a_redis_cluster_over_tls_carries_the_whole_pipeline() {
    let ca = TestCa::new();
    let cluster = TlsCluster::start(&ca);
    let (ingress, egress) = (unique("tls-cluster-in"), unique("tls-cluster-out"));
    let url = format!("rediss://127.0.0.1:{}", cluster.ports[0]);
    let ca_file = ca.ca_file();
    let env = [("REDIS_URL", url.as_str()), ("CONSERVER_REDIS_CA_FILE", ca_file.to_str().unwrap())];
    let server = Server::start(Backend::Embedded, &crate::support::tag_chain(&ingress, &egress), &env).await;
    assert!(server.log_text().contains("connected to a Redis Cluster"), "{}", server.log_text());
    // Enough vCons that their keys land on every node's slots.
    let mut expected = std::collections::HashSet::new();
    for _ in 0..12 {
        let (uuid, vcon) = fresh_vcon();
        assert_eq!(server.post_vcon(&vcon, &ingress).await.status(), 201);
        expected.insert(uuid);
    }
    let mut seen = std::collections::HashMap::new();
    assert!(server.drain_egress(&egress, &expected, &mut seen, Duration::from_secs(60)).await, "{}", server.log_text());
}
