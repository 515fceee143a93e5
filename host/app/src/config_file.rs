//! What both config stores (the full server's and the API tier's) share for
//! `POST /config`: reading the posted document as a config, writing it to the file
//! all or nothing, and the slot holding the config in force.

use std::path::Path;
use std::sync::{Arc, RwLock};

use conserver_api::{ConfigRejected, LiveConfig};
use conserver_config::Config;
use serde_json::Value;

/// Write `text` to `path` atomically: a temp file in the same directory, renamed.
pub fn write_atomically(path: &Path, text: &str) -> std::io::Result<()> {
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("config.yml");
    let temp = dir.join(format!(".{name}.{}.tmp", std::process::id()));
    std::fs::write(&temp, text)?;
    if let Ok(metadata) = std::fs::metadata(path) {
        let _ = std::fs::set_permissions(&temp, metadata.permissions());
    }
    std::fs::rename(&temp, path)
}

/// The posted document as a config (a 422 naming the key when it is not one).
pub fn parse_document(document: &Value, path: &Path) -> Result<Config, ConfigRejected> {
    Config::from_document(document, path).map_err(|e| ConfigRejected::Invalid(e.to_string()))
}

/// `rejected` with every value substituted into `document` from the environment
/// or a file replaced by its variable's name: a refused config's message (a
/// storage's or a component's error) never shows a secret.
pub fn redacted(rejected: ConfigRejected, document: &Value) -> ConfigRejected {
    let redactor = Config::redactor_for_document(document);
    match rejected {
        ConfigRejected::Invalid(message) => ConfigRejected::Invalid(redactor.redact(&message)),
        ConfigRejected::Failed(message) => ConfigRejected::Failed(redactor.redact(&message)),
    }
}

/// Write the document to the config file as YAML, atomically.
pub fn write_document(path: &Path, document: &Value) -> Result<(), ConfigRejected> {
    let text = serde_yaml_ng::to_string(document).map_err(|e| ConfigRejected::Failed(e.to_string()))?;
    write_atomically(path, &text).map_err(|e| ConfigRejected::Failed(format!("cannot write {}: {e}", path.display())))
}

/// The config in force, swapped whole.
pub struct LiveSlot(RwLock<Arc<LiveConfig>>);

impl LiveSlot {
    /// A slot holding `live`.
    pub fn new(live: LiveConfig) -> Self {
        Self(RwLock::new(Arc::new(live)))
    }

    /// The config in force.
    pub fn get(&self) -> Arc<LiveConfig> {
        match self.0.read() {
            Ok(guard) => guard.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Put `live` in force.
    pub fn set(&self, live: LiveConfig) {
        match self.0.write() {
            Ok(mut guard) => *guard = Arc::new(live),
            Err(poisoned) => *poisoned.into_inner() = Arc::new(live),
        }
    }
}
