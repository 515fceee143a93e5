//! The config as the API sees it, and the hook `POST /config` uses to replace it.
//! The application implements [`ConfigControl`]: it validates a new config, loads
//! what it names (components included, in the full server), writes the file
//! atomically and swaps everything in; the API only calls it.

use std::sync::Arc;

use async_trait::async_trait;
use conserver_storage::Storage;
use indexmap::IndexMap;
use serde_json::Value;

/// One config version, as the API needs it.
#[derive(Clone, Default)]
pub struct LiveConfig {
    /// The config file as JSON, keys in file order (what `GET /config` returns).
    pub document: Value,
    /// `ingress_auth`: list name → key or list of keys.
    pub ingress_auth: IndexMap<String, Value>,
    /// Read-capable storages in config order, for the read fallback and deletes.
    pub storages: Vec<Arc<dyn Storage>>,
    /// Where this version came from and when it was applied (`GET /config`
    /// answers it in headers, so the body stays the file).
    pub origin: ConfigOrigin,
}

/// How the config in force was applied.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum ConfigSource {
    /// Read from the config file at start.
    #[default]
    Start,
    /// Replaced through `POST /config` (which also wrote the file).
    Api,
    /// Reloaded after the config file (or a component it names) changed on disk.
    FileEdit,
}

impl ConfigSource {
    /// The name `GET /config` answers in `Conserver-Config-Source`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Start => "file-at-start",
            Self::Api => "api",
            Self::FileEdit => "file-edit",
        }
    }
}

/// Where a config version came from, and when.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConfigOrigin {
    /// How it was applied.
    pub source: ConfigSource,
    /// When, as a time since the Unix epoch.
    pub applied_at: std::time::SystemTime,
}

impl ConfigOrigin {
    /// Applied now, from `source`.
    pub fn now(source: ConfigSource) -> Self {
        Self { source, applied_at: std::time::SystemTime::now() }
    }
}

impl Default for ConfigOrigin {
    fn default() -> Self {
        Self::now(ConfigSource::Start)
    }
}

/// Why a new config was refused: the message names the key and the fix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConfigRejected {
    /// The config is invalid; nothing was written (422).
    Invalid(String),
    /// The config is valid but could not be written or applied (500).
    Failed(String),
}

/// Access to the running config.
#[async_trait]
pub trait ConfigControl: Send + Sync {
    /// The config in force.
    fn live(&self) -> Arc<LiveConfig>;
    /// Validate `document`, then write and apply it; the running config stays in
    /// force when this fails.
    async fn replace(&self, document: Value) -> Result<(), ConfigRejected>;
}
