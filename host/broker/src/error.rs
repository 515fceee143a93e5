//! Broker errors, with whether a retry may help.

/// A broker operation failed.
#[derive(Debug, thiserror::Error)]
pub enum BrokerError {
    /// Redis refused or the connection failed.
    #[error("redis {operation} failed: {source} (check REDIS_URL and that Redis is running)")]
    Redis {
        /// What was being done.
        operation: &'static str,
        /// The client error.
        source: redis::RedisError,
    },
    /// The embedded SQLite store failed.
    #[error("embedded broker {operation} failed: {source} (check CONSERVER_DATA_DIR is writable)")]
    Sqlite {
        /// What was being done.
        operation: &'static str,
        /// The driver error.
        source: sqlx::Error,
    },
    /// Stored data is not what the broker wrote.
    #[error("broker data is corrupt: {0}")]
    Corrupt(String),
    /// Concurrent writers kept an atomic step from finishing; a retry may.
    #[error("{0}")]
    Contended(String),
    /// The server lacks what the settings ask for (e.g. RedisJSON with
    /// `CONSERVER_REDIS_JSON=on`); the message says what to change.
    #[error("{0}")]
    Unsupported(String),
}

impl BrokerError {
    /// Whether retrying the operation may succeed (connection trouble, timeouts).
    pub fn is_retryable(&self) -> bool {
        match self {
            Self::Redis { source, .. } => {
                (source.is_io_error()
                    || source.is_connection_dropped()
                    || source.is_timeout()
                    || source.is_connection_refusal())
                    && !is_tls_refusal(source)
            }
            Self::Sqlite { source, .. } => {
                matches!(source, sqlx::Error::PoolTimedOut | sqlx::Error::Io(_))
            }
            Self::Corrupt(_) | Self::Unsupported(_) => false,
            Self::Contended(_) => true,
        }
    }
}

impl BrokerError {
    /// Whether the broker cannot take work now but may soon: connection trouble,
    /// Redis out of memory, loading or read-only, a cluster not ready; SQLite
    /// busy, a full disk or an I/O error. The API answers these with 503 and
    /// `Retry-After`.
    pub fn is_unavailable(&self) -> bool {
        if self.is_retryable() {
            return true;
        }
        match self {
            Self::Redis { source, .. } => {
                source.is_cluster_error()
                    || matches!(source.kind(), redis::ErrorKind::ClusterConnectionNotFound)
                    || server_codes(source).iter().any(|code| UNAVAILABLE_CODES.contains(&code.as_str()))
                    || source.to_string().contains("max number of clients reached")
            }
            // SQLITE_BUSY 5, LOCKED 6, READONLY 8, IOERR 10, FULL 13, CANTOPEN 14.
            Self::Sqlite { source: sqlx::Error::Database(db), .. } => db
                .code()
                .and_then(|code| code.parse::<i32>().ok())
                .is_some_and(|code| [5, 6, 8, 10, 13, 14].contains(&(code & 0xff))),
            _ => false,
        }
    }
}

pub(crate) trait RedisContext<T> {
    fn op(self, operation: &'static str) -> Result<T, BrokerError>;
}

impl<T> RedisContext<T> for Result<T, redis::RedisError> {
    fn op(self, operation: &'static str) -> Result<T, BrokerError> {
        self.map_err(|source| BrokerError::Redis { operation, source })
    }
}

pub(crate) trait SqliteContext<T> {
    fn op(self, operation: &'static str) -> Result<T, BrokerError>;
}

impl<T> SqliteContext<T> for Result<T, sqlx::Error> {
    fn op(self, operation: &'static str) -> Result<T, BrokerError> {
        self.map_err(|source| BrokerError::Sqlite { operation, source })
    }
}

/// Redis error codes that mean "not now" rather than "never": out of memory, a
/// failed snapshot stopping writes, loading, a replica, a cluster not ready.
const UNAVAILABLE_CODES: &[&str] =
    &["OOM", "MISCONF", "LOADING", "READONLY", "CLUSTERDOWN", "TRYAGAIN", "MASTERDOWN", "BUSY", "NOREPLICAS"];

/// Every server error code inside `error`: a pipeline's or an aborted
/// transaction's failed commands carry their own (the pipeline error itself
/// reports only the first, and not at all when it is not one redis-rs knows).
fn server_codes(error: &redis::RedisError) -> Vec<String> {
    let mut codes: Vec<String> = error.code().map(str::to_string).into_iter().collect();
    if let Some(errors) = error.clone().into_server_errors() {
        codes.extend(errors.iter().map(|(_, e)| e.code().to_string()));
    }
    codes
}

/// A TLS handshake the client refused (the server's certificate is not trusted,
/// or names another host): waiting does not fix it, so it is not retried.
fn is_tls_refusal(error: &redis::RedisError) -> bool {
    let text = error.to_string().to_ascii_lowercase();
    text.contains("certificate") || text.contains("unknownissuer") || text.contains("handshake")
}
