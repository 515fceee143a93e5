//! Errors loading a link component (not errors of a call: see `LinkFailure`).

use std::path::PathBuf;

/// A component could not be made ready to run.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    /// The engine could not be created.
    #[error("cannot create the wasm engine: {0}")]
    Engine(String),
    /// The component file is missing or unreadable.
    #[error(
        "cannot read link component {path}: {source} (build the links with `cargo xtask build-links`, or fix the `component:` path)"
    )]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The file is not a valid component.
    #[error("{path} is not a valid wasm component: {message}")]
    Compile {
        /// The file.
        path: PathBuf,
        /// What wasmtime said.
        message: String,
    },
    /// The component does not implement the link world, or imports something the
    /// host does not provide.
    #[error("{path} does not implement the world vcon:conserver/{world}@0.1.0: {message}")]
    NotALink {
        /// The file.
        path: PathBuf,
        /// The world it should implement.
        world: &'static str,
        /// What is missing.
        message: String,
    },
}
