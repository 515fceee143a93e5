//! The `conserver` application: wires settings, config, broker, wasm runtime,
//! workers and the API together, and runs until a shutdown signal.
//!
//! Start-up order: settings (env) → config file (validated) → broker → runtime →
//! snapshot (every component compiled or loaded from the cache) → workers → API.
//! Shutdown: stop popping and stop accepting; drain; return unfinished vCons to
//! their lists; exit 0.

pub mod cli;
mod shutdown;
pub mod telemetry;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use conserver_api::{ApiSettings, ApiState};
use conserver_broker::{Broker, EmbeddedBroker, RedisBroker};
use conserver_config::{BrokerChoice, Config, Settings};
use conserver_pipeline::{ProcessOptions, Snapshot, WorkerSettings, Workers};
use conserver_runtime::{Runtime, RuntimeOptions};

use crate::cli::{Cli, Command};

/// Run the command.
pub async fn run(cli: Cli) -> Result<()> {
    let mut settings = Settings::from_env().context("reading the environment")?;
    match cli.command.unwrap_or(Command::Serve { bind: None, config: None }) {
        Command::Serve { bind, config } => {
            if let Some(bind) = bind {
                settings.bind = bind;
            }
            if let Some(config) = config {
                settings.config_file = config;
            }
            serve(settings).await
        }
        Command::Check { config } => check(&settings, &config).await,
    }
}

/// Validate `path` and load every component it names.
async fn check(settings: &Settings, path: &Path) -> Result<()> {
    let config = Config::load(path)?;
    let runtime = new_runtime(settings)?;
    let snapshot = build_snapshot(config, path.to_path_buf(), settings.links_dir.clone(), runtime).await?;
    println!("{}: OK ({} ingress lists)", path.display(), snapshot.ingress_lists().len());
    Ok(())
}

fn new_runtime(settings: &Settings) -> Result<Runtime> {
    let max_instances = u32::try_from(settings.workers * settings.vcon_concurrency * 2).unwrap_or(u32::MAX).max(64);
    Ok(Runtime::new(&RuntimeOptions { cache_dir: Some(settings.component_cache_dir.clone()), max_instances })?)
}

async fn build_snapshot(
    config: Config,
    config_file: PathBuf,
    links_dir: PathBuf,
    runtime: Runtime,
) -> Result<Snapshot> {
    let config_dir = config_file.parent().map(Path::to_path_buf).unwrap_or_default();
    let snapshot = tokio::task::spawn_blocking(move || Snapshot::build(&config, &config_dir, &links_dir, &runtime))
        .await
        .context("loading components")?
        .with_context(|| format!("loading the links and storages of {}", config_file.display()))?;
    Ok(snapshot)
}

async fn connect_broker(settings: &Settings) -> Result<Arc<dyn Broker>> {
    Ok(match &settings.broker {
        BrokerChoice::Redis(url) => {
            Arc::new(RedisBroker::connect(url).await.with_context(|| format!("connecting to Redis at {url}"))?)
        }
        BrokerChoice::Embedded(dir) => Arc::new(
            EmbeddedBroker::open(dir)
                .await
                .with_context(|| format!("opening the embedded broker in {}", dir.display()))?,
        ),
    })
}

async fn serve(settings: Settings) -> Result<()> {
    let shutdown = shutdown::on_signal().context("installing signal handlers")?;
    let config = Config::load(&settings.config_file)?;
    tracing::info!(config = %settings.config_file.display(), links_dir = %settings.links_dir.display(), "configuration loaded");
    let broker = connect_broker(&settings).await?;
    let runtime = new_runtime(&settings)?;
    let snapshot =
        build_snapshot(config, settings.config_file.clone(), settings.links_dir.clone(), runtime.clone()).await?;
    tracing::info!(broker = broker.backend(), ingress_lists = ?snapshot.ingress_lists(), pooling = runtime.is_pooling(), "ready");
    let (_snapshot_tx, snapshots) = tokio::sync::watch::channel(Arc::new(snapshot));
    let workers = Workers::start(
        settings.workers,
        broker.clone(),
        snapshots,
        WorkerSettings {
            concurrency: settings.vcon_concurrency,
            options: ProcessOptions {
                dlq_expiry_secs: settings.dlq_expiry_secs,
                parallel_storage: settings.parallel_storage,
            },
            grace: Duration::from_secs(settings.shutdown_grace_secs),
        },
        shutdown.clone(),
    );
    let state = ApiState {
        broker,
        settings: Arc::new(ApiSettings {
            tokens: settings.api_tokens.clone(),
            header: settings.api_header.to_ascii_lowercase(),
            root_path: settings.api_root_path.clone(),
            vcon_expiry_secs: settings.vcon_expiry_secs,
            max_body_bytes: settings.max_body_bytes,
            version: settings.version.clone(),
            git_commit: settings.git_commit.clone(),
            build_time: settings.build_time.clone(),
        }),
    };
    let listener = tokio::net::TcpListener::bind(&settings.bind)
        .await
        .with_context(|| format!("binding {} (set CONSERVER_BIND or --bind to a free address)", settings.bind))?;
    tracing::info!(bind = %settings.bind, "API listening");
    let api_shutdown = shutdown.clone();
    axum::serve(listener, conserver_api::router(state))
        .with_graceful_shutdown(async move { api_shutdown.cancelled().await })
        .await
        .context("serving the API")?;
    workers.join().await;
    tracing::info!("stopped");
    Ok(())
}
