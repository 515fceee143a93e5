//! A chain's storages: each written with bounded retries and backoff, in order or
//! concurrently (`CONSERVER_PARALLEL_STORAGE`); a storage that keeps failing
//! dead-letters the vCon, or with `storage_failure: log` is logged and skipped.

use std::time::{Duration, Instant};

use conserver_config::StorageFailure;
use conserver_core::metrics;
use conserver_storage::{Storage, StorageError};
use futures::future::join_all;
use tracing::Instrument as _;

use crate::process::Failure;
use crate::{ChainPlan, spans};

/// Longest pause between two attempts of a failing storage write.
const STORAGE_MAX_BACKOFF: Duration = Duration::from_secs(5);

/// Write to every storage of the chain, each with bounded retries. A storage that
/// still fails dead-letters the vCon (naming it) or, with `storage_failure: log`,
/// is logged and skipped.
pub(crate) async fn store(chain: &ChainPlan, uuid: &str, vcon: &str, parallel: bool) -> Result<(), Failure> {
    let results = if parallel && chain.storages.len() > 1 {
        join_all(chain.storages.iter().map(|s| save_traced(chain, s.as_ref(), uuid, vcon))).await
    } else {
        let mut results = Vec::with_capacity(chain.storages.len());
        for storage in &chain.storages {
            results.push(save_traced(chain, storage.as_ref(), uuid, vcon).await);
        }
        results
    };
    for (storage, result) in chain.storages.iter().zip(results) {
        let Err(error) = result else { continue };
        match chain.storage_failure {
            StorageFailure::Dlq => {
                return Err(Failure {
                    step: format!("storage:{}", storage.name()),
                    error: error.to_string(),
                    retryable: true,
                });
            }
            StorageFailure::Log => {
                tracing::error!(chain = %chain.name, storage = storage.name(), vcon_uuid = uuid, %error, "storage failed; continuing (storage_failure: log)");
            }
        }
    }
    Ok(())
}

/// One storage's write in its `storage.{name}` span.
async fn save_traced(chain: &ChainPlan, storage: &dyn Storage, uuid: &str, vcon: &str) -> Result<(), StorageError> {
    let span = spans::storage_span(&chain.name, storage.name(), uuid);
    let result = save_with_retries(storage, uuid, vcon, chain.storage_retry).instrument(span.clone()).await;
    if let Err(error) = &result {
        spans::mark_error(&span, &error.to_string());
    }
    result
}

/// Each attempt is counted in `conserver.storage.count` / `duration_ms`.
/// Write, retrying a failure with backoff (0.2 s doubling to 5 s) until `retry_for`
/// has passed since the first attempt (a short outage of the database is ridden
/// out); then the last error. A value too large for the storage is not retried.
async fn save_with_retries(
    storage: &dyn Storage,
    uuid: &str,
    vcon: &str,
    retry_for: Duration,
) -> Result<(), StorageError> {
    let first = Instant::now();
    let mut backoff = Duration::from_millis(200);
    let mut attempt = 1u32;
    loop {
        let started = Instant::now();
        let result = storage.save(uuid, vcon).await;
        metrics::record_storage(storage.name(), result.is_ok(), started.elapsed());
        match result {
            Ok(()) => {
                if attempt > 1 {
                    tracing::info!(
                        storage = storage.name(),
                        vcon_uuid = uuid,
                        attempt,
                        "storage write succeeded after retries"
                    );
                }
                return Ok(());
            }
            Err(error @ StorageError::TooLarge { .. }) => return Err(error),
            Err(error) if first.elapsed() + backoff > retry_for => return Err(error),
            Err(error) => {
                tracing::warn!(storage = storage.name(), vcon_uuid = uuid, attempt, %error,
                    retry_in_ms = backoff.as_millis() as u64, "storage write failed; retrying");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(STORAGE_MAX_BACKOFF);
                attempt += 1;
            }
        }
    }
}
