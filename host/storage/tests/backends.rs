//! Every storage backend against a real server on loopback: the file storage in a
//! temp directory, PostgreSQL at `CONSERVER_TEST_PG_HOST` (default 127.0.0.1:5432,
//! user `postgres`, database `test`) and Redis at `CONSERVER_TEST_REDIS_URL`.
//! Each backend round-trips every real fixture vCon byte for byte, deletes, and
//! reports a backend that is down as an error naming the storage.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly on purpose

mod common;

use std::sync::Arc;

use common::{fixtures, storage};
use conserver_config::StorageDef;
use conserver_storage::{Storage, StorageError, build};
use serde_json::{Value, json};

async fn round_trips_every_fixture(storage: Arc<dyn Storage>) {
    for (uuid, json) in fixtures() {
        storage.save(&uuid, &json).await.unwrap_or_else(|e| panic!("{uuid}: {e}"));
        storage.save(&uuid, &json).await.unwrap(); // idempotent
        assert_eq!(storage.get(&uuid).await.unwrap().as_deref(), Some(json.as_str()), "{uuid}");
        assert!(storage.delete(&uuid).await.unwrap());
        assert_eq!(storage.get(&uuid).await.unwrap(), None);
        assert!(!storage.delete(&uuid).await.unwrap());
    }
}

fn pg_options(table: &str, port: u16) -> Value {
    let host = std::env::var("CONSERVER_TEST_PG_HOST").unwrap_or_else(|_| "127.0.0.1".into());
    json!({"host": host, "port": port, "user": "postgres", "database": "test", "table_name": table})
}

#[tokio::test]
async fn file_storage_round_trips_every_fixture() {
    let dir = tempfile::tempdir().unwrap();
    round_trips_every_fixture(storage("storage.file", json!({"path": dir.path()}))).await;
    round_trips_every_fixture(storage("storage.file", json!({"path": dir.path(), "compression": true}))).await;
}

#[tokio::test]
async fn postgres_round_trips_every_fixture_in_the_python_table() {
    let table = format!("vcons_test_{}", uuid::Uuid::new_v4().simple());
    let pg = storage("storage.postgres", pg_options(&table, 5432));
    round_trips_every_fixture(pg.clone()).await;
    // The Python columns are filled as the Python backend fills them.
    let (uuid, json) =
        fixtures().into_iter().find(|(_, j)| j.contains("\"subject\"")).unwrap_or_else(|| fixtures().remove(0));
    pg.save(&uuid, &json).await.unwrap();
    let sql =
        format!(r#"SELECT "vcon", "uuid"::text, "subject", "vcon_json"::text FROM "{table}" WHERE "id" = '{uuid}'"#);
    let out = std::process::Command::new("psql")
        .args(["-h", "127.0.0.1", "-U", "postgres", "-d", "test", "-At", "-F", "|", "-c", &sql])
        .output()
        .unwrap();
    let row = String::from_utf8_lossy(&out.stdout).to_string();
    let doc: Value = serde_json::from_str(&json).unwrap();
    let version = doc["vcon"].as_str().unwrap_or("0.4.0");
    assert!(row.starts_with(&format!("{version}|{uuid}|")), "{row}");
    let _ = std::process::Command::new("psql")
        .args(["-h", "127.0.0.1", "-U", "postgres", "-d", "test", "-c", &format!(r#"DROP TABLE "{table}""#)])
        .output();
}

#[tokio::test]
async fn redis_storage_round_trips_every_fixture_with_a_ttl() {
    let url = std::env::var("CONSERVER_TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into());
    let prefix = format!("vcon_storage_test_{}", uuid::Uuid::new_v4().simple());
    let redis = storage("storage.redis_storage", json!({"redis_url": url, "prefix": prefix, "expires": 600}));
    round_trips_every_fixture(redis.clone()).await;
    redis.save("x", "{}").await.unwrap();
    let client = redis::Client::open(url.as_str()).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let ttl: i64 = redis::cmd("TTL").arg(format!("{prefix}:x")).query_async(&mut conn).await.unwrap();
    assert!((590..=600).contains(&ttl), "{ttl}");
}

#[tokio::test]
async fn a_backend_that_is_down_is_an_error_naming_the_storage() {
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port(); // nothing listens after drop
    for (module, options) in [
        ("storage.postgres", pg_options("vcons", closed)),
        ("storage.redis_storage", json!({"redis_url": format!("redis://127.0.0.1:{closed}")})),
    ] {
        let down = storage(module, options);
        let error = down.save(&uuid::Uuid::new_v4().to_string(), "{}").await.unwrap_err();
        assert!(
            matches!(error, StorageError::Backend { .. }) && error.to_string().contains("under-test"),
            "{module}: {error}"
        );
    }
}

#[test]
fn bad_options_are_refused_when_the_config_loads() {
    let def = |module: &str, options: Value| StorageDef { module: module.into(), options: Some(options) };
    for (module, options) in [
        ("storage.postgres", json!({"port": "abc"})),
        ("storage.postgres", json!({"table_name": "x;y"})),
        ("storage.file", json!({"compresion": true})),
        ("storage.redis_storage", json!({"redis_url": "not a url", "expires": 1})),
        ("storage.elasticsearch", json!({"username": "elastic"})),
        ("storage.elasticsearch", json!({"url": "http://es:9200", "ca_certs": "/nonexistent/ca.pem"})),
        ("storage.milvus", json!({"host": "milvus"})),
        ("storage.milvus", json!({"api_key": "k", "embedding_dim": "wide"})),
        ("storage.mongo", json!({"url": "localhost:27017"})),
        ("storage.mongo", json!({"uri": "mongodb://localhost"})),
        ("storage.nosuch", json!({})),
    ] {
        let error = build("bad", &def(module, options)).err().unwrap_or_else(|| panic!("{module} accepted"));
        assert!(error.to_string().contains("bad"), "{error}");
    }
}

/// A local HTTP server standing in for a webhook receiver: records what it gets.
async fn receiver(status: u16) -> (String, Arc<std::sync::Mutex<Vec<(String, Value)>>>) {
    let seen: Arc<std::sync::Mutex<Vec<(String, Value)>>> = Arc::default();
    let record = seen.clone();
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |headers: axum::http::HeaderMap, body: axum::Json<Value>| {
            let record = record.clone();
            async move {
                let token = headers.get("x-token").and_then(|v| v.to_str().ok()).unwrap_or_default().to_string();
                record.lock().unwrap().push((token, body.0));
                axum::http::StatusCode::from_u16(status).unwrap()
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (url, seen)
}

#[tokio::test]
async fn webhook_storage_posts_each_vcon_with_the_headers() {
    let (url, seen) = receiver(200).await;
    let hook = storage("storage.webhook", json!({"webhook-urls": [url], "headers": {"x-token": "t0k"}}));
    let (uuid, json) = fixtures()
        .into_iter()
        .find(|(_, j)| serde_json::from_str::<Value>(j).is_ok_and(|doc| doc["vcon"] == "0.0.1"))
        .unwrap();
    hook.save(&uuid, &json).await.unwrap();
    let got = seen.lock().unwrap().clone();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].0, "t0k");
    assert_eq!(got[0].1["vcon"], "0.3.0", "0.0.1 is sent as 0.3.0, as the Python backend does");
    assert_eq!(got[0].1["uuid"], uuid.as_str());
    assert_eq!(hook.get(&uuid).await.unwrap(), None, "write-only");

    let (failing, _) = receiver(503).await;
    let error = storage("storage.webhook", json!({"webhook-urls": [failing]})).save(&uuid, &json).await.unwrap_err();
    assert!(error.to_string().contains("503"), "{error}");
    assert!(
        build(
            "bad",
            &StorageDef { module: "storage.webhook".into(), options: Some(json!({"webhook-urls": ["ftp://x"]})) }
        )
        .is_err()
    );
}

/// A moto S3 server on a loopback port (installed by `cargo xtask test`), with a
/// bucket created; killed on drop.
struct Moto {
    child: std::process::Child,
    endpoint: String,
}

impl Moto {
    async fn start(bucket: &str) -> Self {
        Self::start_with(bucket, &[], reqwest::Client::new(), "http://127.0.0.1").await
    }

    /// Over TLS with `cert`/`key` (signed by the CA in `ca_file`), at `https://localhost:<port>`.
    async fn start_tls(bucket: &str, cert: &std::path::Path, key: &std::path::Path, ca_file: &std::path::Path) -> Self {
        let ca = reqwest::Certificate::from_pem(&std::fs::read(ca_file).unwrap()).unwrap();
        let client = reqwest::Client::builder().add_root_certificate(ca).build().unwrap();
        let args = ["-s", "-c", cert.to_str().unwrap(), "-k", key.to_str().unwrap()];
        Self::start_with(bucket, &args, client, "https://localhost").await
    }

    async fn start_with(bucket: &str, extra: &[&str], client: reqwest::Client, base: &str) -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        #[allow(clippy::zombie_processes)] // reaped in Drop
        let child = std::process::Command::new("moto_server")
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .args(extra)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("moto_server is missing: run `cargo xtask test` (it installs moto[server]) or `pip install moto[server]`");
        let endpoint = format!("{base}:{port}");
        for _ in 0..100 {
            if client.put(format!("{endpoint}/{bucket}")).send().await.is_ok_and(|r| r.status().is_success()) {
                return Self { child, endpoint };
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        panic!("moto_server did not start on {endpoint}");
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test]
async fn s3_round_trips_every_fixture_with_the_python_key_layout() {
    let moto = Moto::start("vcons").await;
    let options = json!({
        "aws_access_key_id": "test", "aws_secret_access_key": "test", "aws_bucket": "vcons",
        "aws_region": "us-east-1", "endpoint_url": moto.endpoint, "s3_path": "archive/"
    });
    let s3 = storage("storage.s3", options);
    round_trips_every_fixture(s3.clone()).await;
    // The layout: the dated object and the lookup pointer.
    let uuid = uuid::Uuid::new_v4().to_string();
    s3.save(&uuid, &format!(r#"{{"uuid":"{uuid}","created_at":"2025-12-10T15:30:00Z"}}"#)).await.unwrap();
    let listing = reqwest::Client::new()
        .get(format!("{}/vcons?list-type=2&prefix=archive/", moto.endpoint))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(listing.contains(&format!("<Key>archive/lookup/{uuid}.txt</Key>")), "{listing}");
    assert!(listing.contains(&format!("<Key>archive/2025/12/10/{uuid}.vcon</Key>")), "{listing}");
}

#[tokio::test]
async fn s3_over_tls_trusts_the_ca_bundle_it_is_given_and_no_other() {
    // moto serving HTTPS with a certificate from a CA made now (openssl).
    let ca = conserver_fixtures::test_ca::TestCa::new();
    let (cert, key) = ca.issue("moto");
    let moto = Moto::start_tls("vcons-tls", &cert, &key, &ca.ca_file()).await;
    let options = |ca_bundle: &str| {
        json!({
            "aws_access_key_id": "test", "aws_secret_access_key": "test", "aws_bucket": "vcons-tls",
            "aws_region": "us-east-1", "endpoint_url": moto.endpoint, "ca_bundle": ca_bundle
        })
    };
    let trusted = storage("storage.s3", options(ca.ca_file().to_str().unwrap()));
    let uuid = uuid::Uuid::new_v4().to_string();
    let document = format!(r#"{{"uuid":"{uuid}","created_at":"2025-12-10T15:30:00Z"}}"#);
    trusted.save(&uuid, &document).await.unwrap();
    assert_eq!(trusted.get(&uuid).await.unwrap().as_deref(), Some(document.as_str()));

    let other = conserver_fixtures::test_ca::TestCa::new();
    let untrusted = storage("storage.s3", options(other.ca_file().to_str().unwrap()));
    let err = untrusted.save(&uuid, &document).await.unwrap_err().to_string();
    assert!(err.contains("under-test"), "the error names the storage: {err}");

    let missing =
        build("archive", &StorageDef { module: "storage.s3".into(), options: Some(options("/nonexistent/ca.pem")) });
    let err = missing.err().map(|e| e.to_string()).unwrap_or_default();
    assert!(err.contains("ca_bundle") && err.contains("/nonexistent/ca.pem"), "{err}");
}
