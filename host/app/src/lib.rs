//! The `conserver` application: wires settings, config, broker, wasm runtime,
//! workers and the API together, and runs until a shutdown signal; and the
//! operator commands.
//!
//! Start-up order: settings (env) → config file (validated) → broker → runtime →
//! snapshot (every component compiled or loaded from the cache) → workers → API.
//! Shutdown: stop popping and stop accepting; drain; return unfinished vCons to
//! their lists; exit 0.
//!
//! Built without the `worker` feature (the API tier's image), there is no wasm
//! runtime and no audio stack: `serve` runs the API alone and `check` validates
//! a config without loading components.

#[cfg(not(feature = "worker"))]
mod api_control;
pub mod cli;
mod commands;
#[cfg(feature = "worker")]
mod components;
mod config_file;
#[cfg(feature = "worker")]
mod control;
mod follower;
mod gauges;
mod http_server;
mod serve;
mod shutdown;
pub mod telemetry;
#[cfg(feature = "worker")]
mod watch;

use std::path::Path;
use std::sync::Arc;

use anyhow::{Context, Result};
use conserver_broker::{Broker, EmbeddedBroker, RedisBroker};
use conserver_config::{BrokerChoice, Config, Settings};

use crate::cli::{Cli, Command};

pub use commands::vcon_files;

/// Run the command.
pub async fn run(cli: Cli) -> Result<()> {
    let mut settings = Settings::from_env().context("reading the environment")?;
    match cli.command.unwrap_or(Command::Serve { bind: None, config: None }) {
        Command::Serve { bind, config } => {
            if let Some(bind) = bind {
                settings.bind = Some(bind);
            }
            if let Some(config) = config {
                settings.config_file = config;
            }
            serve::serve(settings).await
        }
        Command::Check { config } => check(&settings, &config).await,
        other => commands::run(other, &settings).await.unwrap_or_else(|| Ok(())),
    }
}

/// Validate `path` and load every component it names.
#[cfg(feature = "worker")]
async fn check(settings: &Settings, path: &Path) -> Result<()> {
    let config = Config::load(path)?;
    let runtime = serve::new_runtime(settings)?;
    let policy = serve::component_policy(settings, path);
    let snapshot = control::build_snapshot(config, path, &settings.links_dir, &policy, runtime)
        .await
        .map_err(anyhow::Error::msg)?;
    println!("{}: OK ({} ingress lists)", path.display(), snapshot.ingress_lists().len());
    Ok(())
}

/// Validate `path` and build its storages (this build loads no components).
#[cfg(not(feature = "worker"))]
async fn check(_settings: &Settings, path: &Path) -> Result<()> {
    let config = Config::load(path)?;
    let document = Config::read_document(path)?;
    api_control::live_config(&config, document).map_err(anyhow::Error::msg)?;
    println!(
        "{}: OK (API-only build: links were not loaded; run `conserver check` from the worker image)",
        path.display()
    );
    Ok(())
}

/// The broker `settings` name, or the error and what was being done (any
/// password in `REDIS_URL` replaced by `***`).
pub(crate) async fn open_broker(
    settings: &Settings,
) -> std::result::Result<Arc<dyn Broker>, (conserver_broker::BrokerError, String)> {
    Ok(match &settings.broker {
        BrokerChoice::Redis(url) => Arc::new(
            RedisBroker::connect(url)
                .await
                .map_err(|e| (e, format!("connecting to Redis at {}", redact_url(url))))?
                .with_sorted_set(&settings.sorted_set),
        ),
        BrokerChoice::Embedded(dir) => Arc::new(
            EmbeddedBroker::open(dir)
                .await
                .map_err(|e| (e, format!("opening the embedded broker in {}", dir.display())))?,
        ),
    })
}

/// `url` with the password of its user info (`scheme://user:password@host`)
/// replaced by `***`, for logs and errors.
pub(crate) fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else { return url.to_string() };
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    match authority.rsplit_once('@') {
        Some((user_info, host)) => {
            let user = user_info.split_once(':').map_or(user_info, |(user, _)| user);
            let shown = if user_info.contains(':') { format!("{user}:***") } else { "***".to_string() };
            format!("{scheme}://{shown}@{host}{tail}")
        }
        None => url.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::redact_url;

    #[test]
    fn passwords_in_urls_are_never_shown() {
        assert_eq!(redact_url("redis://:s3cret@redis:6379/0"), "redis://:***@redis:6379/0");
        assert_eq!(redact_url("rediss://default:s3cret@r.example:6380"), "rediss://default:***@r.example:6380");
        assert_eq!(redact_url("redis://s3cret@redis"), "redis://***@redis");
        assert_eq!(redact_url("redis://a:b@c@host/1?x=@"), "redis://a:***@host/1?x=@");
        assert_eq!(redact_url("redis://127.0.0.1:6379"), "redis://127.0.0.1:6379");
        assert_eq!(redact_url("not a url"), "not a url");
    }
}
