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
