//! The API-only build's config control: `POST /config` validates the new config,
//! builds its storages (for the read fallback and deletes) and writes the file.
//! There are no links to load here; the worker tier loads them when it reads the
//! file.

use std::path::PathBuf;
use std::sync::Arc;

use async_trait::async_trait;
use conserver_api::{ConfigControl, ConfigOrigin, ConfigRejected, ConfigSource, LiveConfig};
use conserver_config::Config;
use serde_json::Value;
use tokio::sync::Mutex;

use crate::config_file::{LiveSlot, parse_document, redacted, write_document};

/// The API's view of `config`: its document, ingress keys and storages, applied
/// from `source`.
pub fn live_config(config: &Config, document: Value, source: ConfigSource) -> Result<LiveConfig, String> {
    let mut storages = Vec::with_capacity(config.storages.len());
    for (name, def) in &config.storages {
        storages.push(conserver_storage::build(name, def).map_err(|e| format!("storage `{name}`: {e}"))?);
    }
    Ok(LiveConfig { document, ingress_auth: config.ingress_auth.clone(), storages, origin: ConfigOrigin::now(source) })
}

/// The ingress lists `config`'s chains read.
fn ingress_lists(config: &Config) -> Vec<String> {
    config.chains.values().flat_map(|chain| chain.ingress_lists.iter().cloned()).collect()
}

/// The config in force.
pub struct ApiConfigStore {
    path: PathBuf,
    live: LiveSlot,
    /// Its chains' ingress lists (for the queue gauges), kept with it.
    lists: std::sync::RwLock<Vec<String>>,
    replacing: Mutex<()>,
}

impl ApiConfigStore {
    /// A store serving `live` (built from `config`), backed by the file at `path`.
    pub fn new(path: PathBuf, config: &Config, live: LiveConfig) -> Self {
        let lists = std::sync::RwLock::new(ingress_lists(config));
        Self { path, live: LiveSlot::new(live), lists, replacing: Mutex::new(()) }
    }

    /// The ingress lists of the config in force.
    pub fn ingress_lists(&self) -> Vec<String> {
        self.lists.read().map(|lists| lists.clone()).unwrap_or_default()
    }
}

#[async_trait]
impl ConfigControl for ApiConfigStore {
    fn live(&self) -> Arc<LiveConfig> {
        self.live.get()
    }

    async fn replace(&self, document: Value) -> Result<(), ConfigRejected> {
        let _one_at_a_time = self.replacing.lock().await;
        let config = parse_document(&document, &self.path)?;
        let live = live_config(&config, document.clone(), ConfigSource::Api)
            .map_err(|e| redacted(ConfigRejected::Invalid(e), &document))?;
        write_document(&self.path, &document)?;
        self.live.set(live);
        if let Ok(mut lists) = self.lists.write() {
            *lists = ingress_lists(&config);
        }
        tracing::info!(config = %self.path.display(), "configuration replaced through the API");
        Ok(())
    }
}
