//! The on-disk cache of compiled components, keyed by the wasm bytes' SHA-256 and
//! the engine's compatibility hash, so a restart loads links in milliseconds.
//! Only files this process wrote are ever deserialised.

use std::hash::{DefaultHasher, Hash, Hasher};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};
use wasmtime::Engine;
use wasmtime::component::Component;

use crate::RuntimeError;

#[derive(Clone)]
pub(crate) struct ComponentCache {
    dir: Option<PathBuf>,
    engine_key: String,
}

impl ComponentCache {
    pub(crate) fn new(dir: Option<PathBuf>, engine: &Engine) -> Self {
        let mut hasher = DefaultHasher::new();
        engine.precompile_compatibility_hash().hash(&mut hasher);
        Self { dir, engine_key: format!("{:016x}", hasher.finish()) }
    }

    /// The compiled component for `bytes`, and the wasm's SHA-256 (hex).
    pub(crate) fn component(
        &self,
        engine: &Engine,
        bytes: &[u8],
        source: &Path,
    ) -> Result<(Component, String), RuntimeError> {
        let digest = hex::encode(Sha256::digest(bytes));
        let compile_error =
            |e: wasmtime::Error| RuntimeError::Compile { path: source.to_path_buf(), message: format!("{e:#}") };
        let Some(dir) = &self.dir else {
            return Ok((Component::new(engine, bytes).map_err(compile_error)?, digest));
        };
        let cached = dir.join(format!("{digest}-{}.cwasm", self.engine_key));
        if cached.exists() {
            // SAFETY: files in the cache directory are written only by `store`
            // below, from `Component::serialize` of this engine configuration (the
            // key includes the engine's compatibility hash). They are never taken
            // from link authors.
            #[allow(unsafe_code)]
            match unsafe { Component::deserialize_file(engine, &cached) } {
                Ok(component) => return Ok((component, digest)),
                Err(e) => {
                    tracing::warn!(file = %cached.display(), error = %e, "discarding unreadable cached component");
                    let _ = std::fs::remove_file(&cached);
                }
            }
        }
        let component = Component::new(engine, bytes).map_err(compile_error)?;
        store(&component, dir, &cached);
        Ok((component, digest))
    }
}

/// Write the compiled artifact atomically; a failure only costs a recompile later.
fn store(component: &Component, dir: &Path, target: &Path) {
    let result = component.serialize().map_err(|e| e.to_string()).and_then(|artifact| {
        std::fs::create_dir_all(dir).map_err(|e| e.to_string())?;
        let temp = target.with_extension(format!("tmp{}", std::process::id()));
        std::fs::write(&temp, artifact).map_err(|e| e.to_string())?;
        std::fs::rename(&temp, target).map_err(|e| e.to_string())
    });
    if let Err(error) = result {
        tracing::warn!(file = %target.display(), %error, "cannot cache compiled component");
    }
}
