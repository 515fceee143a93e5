//! Errors building a snapshot from the config.

/// The config cannot be turned into running chains.
#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    /// A link's component could not be found or loaded.
    #[error("link `{link}`: {message}")]
    Link {
        /// The link name.
        link: String,
        /// What failed and how to fix it.
        message: String,
    },
    /// A storage could not be built from its options.
    #[error(transparent)]
    Storage(#[from] conserver_storage::StorageError),
}
