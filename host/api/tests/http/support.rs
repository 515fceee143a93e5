//! A router over a real broker, a config in a temp file, and request helpers.

use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use async_trait::async_trait;
use axum::Router;
use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, Method, Request, StatusCode};
use conserver_api::{ApiSettings, ApiState, ConfigControl, ConfigRejected, Guards, LiveConfig};
use conserver_broker::{Broker, EmbeddedBroker, RedisBroker};
use conserver_config::Config;
use conserver_core::EgressFormat;
use http_body_util::BodyExt;
use serde_json::Value;
use tower::ServiceExt;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Embedded,
    Redis,
}

pub fn redis_url() -> String {
    std::env::var("CONSERVER_TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into())
}

pub fn unique(prefix: &str) -> String {
    format!("{prefix}-{}", uuid::Uuid::new_v4().simple())
}

/// A minimal valid vCon with a fresh uuid and the given parties.
pub fn vcon_with(parties: Value) -> (String, Value) {
    let uuid = uuid::Uuid::new_v4().to_string();
    let vcon = serde_json::json!({
        "vcon": "0.4.0", "uuid": uuid, "created_at": "2024-05-01T10:00:00Z",
        "parties": parties, "dialog": [], "analysis": [], "attachments": []
    });
    (uuid, vcon)
}

pub fn vcon() -> (String, Value) {
    vcon_with(serde_json::json!([{"tel": "+15551234567", "name": "Alice"}]))
}

/// The config as the tests' control sees it: validates, builds storages, writes
/// the file atomically (no wasm components in API tests).
pub struct TestControl {
    path: PathBuf,
    live: RwLock<Arc<LiveConfig>>,
}

impl TestControl {
    fn load(path: &Path) -> Self {
        let config = Config::load(path).unwrap();
        let document = Config::read_document(path).unwrap();
        Self { path: path.to_path_buf(), live: RwLock::new(Arc::new(live(&config, document).unwrap())) }
    }
}

fn live(config: &Config, document: Value) -> Result<LiveConfig, String> {
    let mut storages = Vec::new();
    for (name, def) in &config.storages {
        storages.push(conserver_storage::build(name, def).map_err(|e| e.to_string())?);
    }
    Ok(LiveConfig { document, ingress_auth: config.ingress_auth.clone(), storages, ..LiveConfig::default() })
}

#[async_trait]
impl ConfigControl for TestControl {
    fn live(&self) -> Arc<LiveConfig> {
        self.live.read().unwrap().clone()
    }

    async fn replace(&self, document: Value) -> Result<(), ConfigRejected> {
        let config =
            Config::from_document(&document, &self.path).map_err(|e| ConfigRejected::Invalid(e.to_string()))?;
        let new = live(&config, document.clone()).map_err(ConfigRejected::Invalid)?;
        let temp = self.path.with_extension("tmp");
        std::fs::write(&temp, serde_yaml_ng::to_string(&document).unwrap()).unwrap();
        std::fs::rename(&temp, &self.path).unwrap();
        *self.live.write().unwrap() = Arc::new(new);
        Ok(())
    }
}

/// Knobs a test may turn.
pub struct Options {
    pub tokens: Vec<String>,
    pub config: String,
    pub egress_format: EgressFormat,
    pub max_body_bytes: usize,
    pub root_path: String,
    pub guards: Guards,
}

impl Options {
    /// No token, with `CONSERVER_ALLOW_OPEN=1` (control endpoints open).
    pub fn open() -> Self {
        Self { guards: Guards { allow_open: true, ..Guards::default() }, ..Self::default() }
    }
}

impl Default for Options {
    fn default() -> Self {
        Self {
            tokens: Vec::new(),
            config: String::new(),
            egress_format: EgressFormat::Current,
            max_body_bytes: 32 * 1024 * 1024,
            root_path: "/api".into(),
            guards: Guards::default(),
        }
    }
}

pub struct TestApi {
    pub router: Router,
    pub broker: Arc<dyn Broker>,
    _dir: tempfile::TempDir,
    pub config_path: PathBuf,
}

pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub bytes: Bytes,
}

impl Reply {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.bytes)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {:?}", String::from_utf8_lossy(&self.bytes)))
    }
    pub fn code(&self) -> u16 {
        self.status.as_u16()
    }
}

impl TestApi {
    pub async fn new(backend: Backend) -> Self {
        Self::with(backend, Options::default()).await
    }

    pub async fn with(backend: Backend, options: Options) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let config_path = dir.path().join("config.yml");
        std::fs::write(&config_path, &options.config).unwrap();
        let broker: Arc<dyn Broker> = match backend {
            Backend::Embedded => Arc::new(EmbeddedBroker::open(&dir.path().join("broker")).await.unwrap()),
            Backend::Redis => Arc::new(
                RedisBroker::connect(&redis_url())
                    .await
                    .unwrap_or_else(|e| panic!("{e} (start Redis or set CONSERVER_TEST_REDIS_URL)")),
            ),
        };
        let state = ApiState {
            broker: broker.clone(),
            control: Arc::new(TestControl::load(&config_path)),
            settings: Arc::new(ApiSettings {
                tokens: options.tokens,
                header: "x-conserver-api-token".into(),
                root_path: options.root_path,
                vcon_expiry_secs: 3600,
                index_expiry_secs: 86_400,
                egress_format: options.egress_format,
                max_body_bytes: options.max_body_bytes,
                version: "test-version".into(),
                git_commit: "test-commit".into(),
                build_time: "unknown".into(),
                broker_warnings: Vec::new(),
                guards: options.guards,
            }),
        };
        Self { router: conserver_api::router(state), broker, _dir: dir, config_path }
    }

    pub async fn request(&self, method: Method, uri: &str, headers: &[(&str, &str)], body: Option<Vec<u8>>) -> Reply {
        let mut builder = Request::builder().method(method).uri(uri);
        for (name, value) in headers {
            builder = builder.header(*name, *value);
        }
        let request = builder.body(body.map(Body::from).unwrap_or_else(Body::empty)).unwrap();
        let response = self.router.clone().oneshot(request).await.unwrap();
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        Reply { status, headers, bytes }
    }

    pub async fn get(&self, uri: &str) -> Reply {
        self.request(Method::GET, uri, &[], None).await
    }

    pub async fn delete(&self, uri: &str) -> Reply {
        self.request(Method::DELETE, uri, &[], None).await
    }

    pub async fn post(&self, uri: &str, body: &Value) -> Reply {
        self.post_raw(uri, body.to_string().into_bytes()).await
    }

    pub async fn post_raw(&self, uri: &str, body: Vec<u8>) -> Reply {
        self.request(Method::POST, uri, &[("content-type", "application/json")], Some(body)).await
    }
}

/// Generate one `#[tokio::test]` per backend for each listed async test function
/// taking a `Backend`.
#[macro_export]
macro_rules! on_both_backends {
    ($($case:ident),* $(,)?) => {
        mod embedded_backend {
            $(
                #[tokio::test]
                async fn $case() {
                    super::$case($crate::support::Backend::Embedded).await;
                }
            )*
        }
        mod redis_backend {
            $(
                #[tokio::test]
                async fn $case() {
                    super::$case($crate::support::Backend::Redis).await;
                }
            )*
        }
    };
}
