//! The running configuration: what the API reads (`GET /config`, ingress keys,
//! storages for the read fallback) and how it is replaced (`POST /config`, and the
//! file watcher later): validate, load every component off the async executor,
//! write the file atomically, then swap the API's view and the workers' snapshot
//! together. A refused config changes nothing.

use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use async_trait::async_trait;
use conserver_api::{ConfigControl, ConfigOrigin, ConfigRejected, ConfigSource, LiveConfig};
use conserver_config::Config;
use conserver_pipeline::Snapshot;
use conserver_runtime::Runtime;
use serde_json::Value;
use tokio::sync::{Mutex, watch};

use crate::components::ComponentPolicy;
use crate::config_file::{LiveSlot, parse_document, redacted, write_document};

/// The API's view of a config: its document, ingress keys, and the storages the
/// snapshot built (one set of connections for workers and API).
pub fn live_config(config: &Config, document: Value, snapshot: &Snapshot) -> LiveConfig {
    LiveConfig {
        document,
        ingress_auth: config.ingress_auth.clone(),
        storages: snapshot.storages(),
        origin: ConfigOrigin::now(ConfigSource::Start),
    }
}

/// Load every link and storage `config` names (CPU-heavy on a cold cache), each
/// component checked against `policy` first (off the executor too).
pub async fn build_snapshot(
    mut config: Config,
    config_file: &Path,
    links_dir: &Path,
    policy: &ComponentPolicy,
    runtime: Runtime,
) -> Result<Snapshot, String> {
    let config_dir = config_file.parent().map(Path::to_path_buf).unwrap_or_default();
    let links_dir = links_dir.to_path_buf();
    let file = config_file.display().to_string();
    let policy = policy.clone();
    tokio::task::spawn_blocking(move || {
        policy.confine(&mut config, &config_dir, &links_dir)?;
        Snapshot::build(&config, &config_dir, &links_dir, &runtime).map_err(|e| e.to_string())
    })
    .await
    .map_err(|e| format!("loading components failed: {e}"))?
    .map_err(|e| format!("{file}: {e}"))
}

/// The config in force and the machinery to replace it.
pub struct ConfigStore {
    path: PathBuf,
    links_dir: PathBuf,
    policy: ComponentPolicy,
    runtime: Runtime,
    live: LiveSlot,
    snapshots: watch::Sender<Arc<Snapshot>>,
    replacing: Mutex<()>,
    /// The config file's text as the running config was read from it or written
    /// to it (`POST /config` writes the file), so the file watcher can tell the
    /// API's own write from an edit made after it.
    file_text: std::sync::Mutex<Option<String>>,
    /// The files the watcher polls, refreshed on every swap.
    watched: RwLock<Vec<PathBuf>>,
}

impl ConfigStore {
    /// A store serving `live`, publishing new snapshots on `snapshots`.
    pub fn new(
        path: PathBuf,
        links_dir: PathBuf,
        policy: ComponentPolicy,
        runtime: Runtime,
        live: LiveConfig,
        snapshots: watch::Sender<Arc<Snapshot>>,
    ) -> Self {
        let watched = watched_for(&path, &snapshots.borrow());
        let file_text = std::fs::read_to_string(&path).ok();
        Self {
            path,
            links_dir,
            policy,
            runtime,
            live: LiveSlot::new(live),
            snapshots,
            replacing: Mutex::new(()),
            file_text: std::sync::Mutex::new(file_text),
            watched: RwLock::new(watched),
        }
    }

    /// Build everything a config needs (components compiled off the executor)
    /// without touching what is running.
    async fn prepare(
        &self,
        config: Config,
        document: Value,
        source: ConfigSource,
    ) -> Result<(LiveConfig, Snapshot), ConfigRejected> {
        let ingress_auth = config.ingress_auth.clone();
        let snapshot = build_snapshot(config, &self.path, &self.links_dir, &self.policy, self.runtime.clone())
            .await
            .map_err(ConfigRejected::Invalid)?;
        let live =
            LiveConfig { document, ingress_auth, storages: snapshot.storages(), origin: ConfigOrigin::now(source) };
        Ok((live, snapshot))
    }

    /// Re-read the config file (it or a component it names changed) and swap it in;
    /// a broken config is refused and the running one stays.
    pub async fn reload_from_file(&self) -> Result<(), ConfigRejected> {
        let _one_at_a_time = self.replacing.lock().await;
        // The text first: an edit landing while the config loads then differs
        // from it, and the watcher reloads again instead of losing the edit.
        let text = std::fs::read_to_string(&self.path).ok();
        let config = Config::load(&self.path).map_err(|e| ConfigRejected::Invalid(e.to_string()))?;
        let document = Config::read_document(&self.path).map_err(|e| ConfigRejected::Invalid(e.to_string()))?;
        let (live, snapshot) = self.prepare(config, document, ConfigSource::FileEdit).await?;
        self.swap(live, snapshot);
        self.set_file_text(text);
        Ok(())
    }

    /// Whether the config file still holds the text the running config came
    /// from (true right after `POST /config` wrote it).
    pub fn file_is_running_config(&self) -> bool {
        let now = std::fs::read_to_string(&self.path).ok();
        let running = self.file_text.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        now.is_some() && *running == now
    }

    fn set_file_text(&self, text: Option<String>) {
        *self.file_text.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = text;
    }

    /// The config file and every component file the running config names.
    pub fn watched_files(&self) -> Vec<PathBuf> {
        match self.watched.read() {
            Ok(guard) => guard.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    fn swap(&self, live: LiveConfig, snapshot: Snapshot) {
        let watched = watched_for(&self.path, &snapshot);
        match self.watched.write() {
            Ok(mut guard) => *guard = watched,
            Err(poisoned) => *poisoned.into_inner() = watched,
        }
        self.live.set(live);
        self.snapshots.send_replace(Arc::new(snapshot));
    }
}

fn watched_for(config_file: &Path, snapshot: &Snapshot) -> Vec<PathBuf> {
    std::iter::once(config_file.to_path_buf()).chain(snapshot.component_files().iter().cloned()).collect()
}

#[async_trait]
impl ConfigControl for ConfigStore {
    fn live(&self) -> Arc<LiveConfig> {
        self.live.get()
    }

    async fn replace(&self, document: Value) -> Result<(), ConfigRejected> {
        let _one_at_a_time = self.replacing.lock().await;
        let config = parse_document(&document, &self.path)?;
        let (live, snapshot) =
            self.prepare(config, document.clone(), ConfigSource::Api).await.map_err(|e| redacted(e, &document))?;
        write_document(&self.path, &document)?;
        // Read back what was written (an edit after it is then told apart).
        let written = std::fs::read_to_string(&self.path).ok();
        self.swap(live, snapshot);
        self.set_file_text(written);
        tracing::info!(config = %self.path.display(), "configuration replaced through the API");
        Ok(())
    }
}
