//! The API-only build's config control: `POST /config` validates the new config,
//! builds its storages (for the read fallback and deletes) and writes the file.
//! There are no links to load here; the worker tier loads them when it reads the
//! file.

use std::path::PathBuf;
use std::sync::{Arc, RwLock};

use async_trait::async_trait;
use conserver_api::{ConfigControl, ConfigRejected, LiveConfig};
use conserver_config::Config;
use serde_json::Value;
use tokio::sync::Mutex;

use crate::config_file::write_atomically;

/// The API's view of `config`: its document, ingress keys and storages.
pub fn live_config(config: &Config, document: Value) -> Result<LiveConfig, String> {
    let mut storages = Vec::with_capacity(config.storages.len());
    for (name, def) in &config.storages {
        storages.push(conserver_storage::build(name, def).map_err(|e| format!("storage `{name}`: {e}"))?);
    }
    Ok(LiveConfig { document, ingress_auth: config.ingress_auth.clone(), storages })
}

/// The config in force.
pub struct ApiConfigStore {
    path: PathBuf,
    live: RwLock<Arc<LiveConfig>>,
    replacing: Mutex<()>,
}

impl ApiConfigStore {
    /// A store serving `live`, backed by the file at `path`.
    pub fn new(path: PathBuf, live: LiveConfig) -> Self {
        Self { path, live: RwLock::new(Arc::new(live)), replacing: Mutex::new(()) }
    }
}

#[async_trait]
impl ConfigControl for ApiConfigStore {
    fn live(&self) -> Arc<LiveConfig> {
        match self.live.read() {
            Ok(guard) => guard.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    async fn replace(&self, document: Value) -> Result<(), ConfigRejected> {
        let _one_at_a_time = self.replacing.lock().await;
        let config =
            Config::from_document(&document, &self.path).map_err(|e| ConfigRejected::Invalid(e.to_string()))?;
        let live = live_config(&config, document.clone()).map_err(ConfigRejected::Invalid)?;
        let text = serde_yaml_ng::to_string(&document).map_err(|e| ConfigRejected::Failed(e.to_string()))?;
        write_atomically(&self.path, &text)
            .map_err(|e| ConfigRejected::Failed(format!("cannot write {}: {e}", self.path.display())))?;
        match self.live.write() {
            Ok(mut guard) => *guard = Arc::new(live),
            Err(poisoned) => *poisoned.into_inner() = Arc::new(live),
        }
        tracing::info!(config = %self.path.display(), "configuration replaced through the API");
        Ok(())
    }
}
