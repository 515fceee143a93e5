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
pub mod dotenv;
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
    api_control::live_config(&config, document, conserver_api::ConfigSource::Start).map_err(anyhow::Error::msg)?;
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
        BrokerChoice::Redis(url) => Arc::new(open_redis(settings, url).await?),
        BrokerChoice::Embedded(dir) => Arc::new(
            EmbeddedBroker::open(dir)
                .await
                .map_err(|e| (e, format!("opening the embedded broker in {}", dir.display())))?,
        ),
    })
}

/// The Redis at `url` with `settings`' timeout, TLS files, sorted set and
/// document form.
pub(crate) async fn open_redis(
    settings: &Settings,
    url: &str,
) -> std::result::Result<RedisBroker, (conserver_broker::BrokerError, String)> {
    RedisBroker::connect_with(
        url,
        std::time::Duration::from_secs(settings.redis_timeout_secs),
        &conserver_broker::RedisTls {
            ca_file: settings.redis_ca_file.clone(),
            client_cert_file: settings.redis_client_cert_file.clone(),
            client_key_file: settings.redis_client_key_file.clone(),
        },
    )
    .await
    .map_err(|e| (e, format!("connecting to Redis at {}", redact_url(url))))?
    .with_sorted_set(&settings.sorted_set)
    .with_json(conserver_broker::JsonMode::parse(&settings.redis_json).unwrap_or_default())
    .await
    .map_err(|e| (e, format!("checking Redis at {} for RedisJSON", redact_url(url))))
}

pub(crate) use conserver_core::redact::redact_url;
