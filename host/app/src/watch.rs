//! Hot reload from disk: the config file and every component it names are polled
//! for changes (modification time and size, once a second); a change reloads the
//! config through the same path as `POST /config` — validated, components compiled
//! off the hot path, swapped atomically. A broken config is logged and the running
//! one stays until the files change again.
//!
//! The latest change wins. `POST /config` writes the file, so the file always
//! holds what runs; the watcher skips that write (the file's text is the
//! running config's) and applies any edit made after it, however soon.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use conserver_api::ConfigRejected;
use tokio_util::sync::CancellationToken;

use crate::control::ConfigStore;

/// How often the files are checked.
const POLL: Duration = Duration::from_secs(1);

type Stamp = Vec<(PathBuf, Option<(SystemTime, u64)>)>;

fn stamp(files: &[PathBuf]) -> Stamp {
    files
        .iter()
        .map(|file| {
            let meta = std::fs::metadata(file).ok().and_then(|m| Some((m.modified().ok()?, m.len())));
            (file.clone(), meta)
        })
        .collect()
}

/// Watch until `shutdown`.
pub async fn watch(store: Arc<ConfigStore>, shutdown: CancellationToken) {
    let mut seen = stamp(&store.watched_files());
    loop {
        tokio::select! {
            () = tokio::time::sleep(POLL) => {}
            () = shutdown.cancelled() => return,
        }
        let now = stamp(&store.watched_files());
        if now == seen {
            continue;
        }
        // Let a writer finish (editors write in several steps) before reading.
        tokio::time::sleep(Duration::from_millis(200)).await;
        let now = stamp(&store.watched_files());
        let components_changed = now.iter().skip(1).ne(seen.iter().skip(1));
        if !components_changed && store.file_is_running_config() {
            // `POST /config` wrote the file and swapped it in already.
            seen = now;
            continue;
        }
        match store.reload_from_file().await {
            Ok(()) => tracing::info!("configuration reloaded from disk (the file changed)"),
            Err(ConfigRejected::Invalid(error) | ConfigRejected::Failed(error)) => {
                tracing::error!(%error, "the changed configuration was refused; the running one stays");
            }
        }
        seen = now;
    }
}
