//! Secrets the link's config grants it (`secrets: [NAME, …]` beside `module:`).
//! The host reads them from its environment or from the file named by
//! `<NAME>_FILE`, and scrubs their values from the link's log lines and failure
//! reasons. A name the config does not grant is refused. Native builds (unit
//! tests) read the process environment.

/// Why a secret could not be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SecretError {
    /// The link's config does not list the secret under `secrets:`.
    NotGranted,
    /// The secret is granted but has no value on this host.
    NotSet,
}

impl std::fmt::Display for SecretError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::NotGranted => "not granted: add it to this link's `secrets:` in the config",
            Self::NotSet => "granted but not set: set the environment variable (or NAME_FILE) on the host",
        })
    }
}

impl std::error::Error for SecretError {}

/// The value of the secret `name`.
#[cfg(target_arch = "wasm32")]
pub fn get(name: &str) -> Result<String, SecretError> {
    use crate::bindings::vcon::conserver0_1_0::secrets as host;
    host::get(name).map_err(|e| match e {
        host::SecretError::NotGranted => SecretError::NotGranted,
        host::SecretError::NotSet => SecretError::NotSet,
    })
}

/// The value of the secret `name`.
#[cfg(not(target_arch = "wasm32"))]
pub fn get(name: &str) -> Result<String, SecretError> {
    std::env::var(name).ok().filter(|v| !v.is_empty()).ok_or(SecretError::NotSet)
}

/// The secret `name`, as a [`crate::LinkError`] naming it when it cannot be read.
pub fn require(name: &str) -> Result<String, crate::LinkError> {
    get(name).map_err(|e| crate::LinkError::fatal(format!("secret `{name}` {e}")))
}
