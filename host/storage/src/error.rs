//! Storage errors, each naming the storage.

/// A storage operation or configuration failed.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// The `module:` names no known backend.
    #[error(
        "storage `{storage}`: unknown backend `{module}` (known: storage.file, storage.postgres, storage.s3, storage.redis_storage, storage.webhook, storage.elasticsearch, storage.milvus, storage.mongo)"
    )]
    UnknownBackend {
        /// The storage name.
        storage: String,
        /// The backend asked for.
        module: String,
    },
    /// The options are wrong.
    #[error("storage `{storage}`: invalid options: {message}")]
    Options {
        /// The storage name.
        storage: String,
        /// What is wrong.
        message: String,
    },
    /// The vCon is larger than the backend accepts.
    #[error("storage `{storage}`: vCon {uuid} is {size} bytes, over the {limit}-byte limit")]
    TooLarge {
        /// The storage name.
        storage: String,
        /// The vCon.
        uuid: String,
        /// Its size.
        size: usize,
        /// The limit.
        limit: u64,
    },
    /// The backend refused or could not be reached.
    #[error("storage `{storage}`: {operation} failed: {message}")]
    Backend {
        /// The storage name.
        storage: String,
        /// What was being done.
        operation: &'static str,
        /// What the backend said.
        message: String,
    },
    /// An I/O operation failed.
    #[error("storage `{storage}`: {operation} {path} failed: {source}")]
    Io {
        /// The storage name.
        storage: String,
        /// What was being done.
        operation: &'static str,
        /// The file involved.
        path: String,
        /// The I/O error.
        source: std::io::Error,
    },
}
