//! The `conserver` application: wires settings, config, broker, wasm runtime,
//! workers and the API together, and runs until a shutdown signal.
//!
//! Start-up order: settings (env) → config file (validated) → broker → runtime →
//! snapshot (every component compiled or loaded from the cache) → workers → API.
//! Shutdown: stop popping and stop accepting; drain; return unfinished vCons to
//! their lists; exit 0.

pub mod cli;
mod control;
mod follower;
mod shutdown;
pub mod telemetry;
mod watch;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use conserver_api::{ApiSettings, ApiState};
use conserver_broker::{Broker, EmbeddedBroker, RedisBroker};
use conserver_config::{BrokerChoice, Config, Settings};
use conserver_core::EgressFormat;
use conserver_pipeline::{BrokerLinkCache, ProcessOptions, WorkerSettings, Workers};
use conserver_runtime::{Runtime, RuntimeOptions};

use crate::cli::{Cli, Command};
use crate::control::{ConfigStore, build_snapshot, live_config};

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
    let snapshot = build_snapshot(config, path, &settings.links_dir, runtime).await.map_err(anyhow::Error::msg)?;
    println!("{}: OK ({} ingress lists)", path.display(), snapshot.ingress_lists().len());
    Ok(())
}

fn new_runtime(settings: &Settings) -> Result<Runtime> {
    let max_instances = u32::try_from(settings.workers * settings.vcon_concurrency * 2).unwrap_or(u32::MAX).max(64);
    Ok(Runtime::new(&RuntimeOptions { cache_dir: Some(settings.component_cache_dir.clone()), max_instances })?)
}

async fn connect_broker(settings: &Settings) -> Result<Arc<dyn Broker>> {
    Ok(match &settings.broker {
        BrokerChoice::Redis(url) => Arc::new(
            RedisBroker::connect(url)
                .await
                .with_context(|| format!("connecting to Redis at {url}"))?
                .with_sorted_set(&settings.sorted_set),
        ),
        BrokerChoice::Embedded(dir) => Arc::new(
            EmbeddedBroker::open(dir)
                .await
                .with_context(|| format!("opening the embedded broker in {}", dir.display()))?,
        ),
    })
}

async fn serve(settings: Settings) -> Result<()> {
    let shutdown = shutdown::on_signal().context("installing signal handlers")?;
    let egress_format = EgressFormat::parse(settings.egress_format.as_deref()).map_err(anyhow::Error::msg)?;
    let config = Config::load(&settings.config_file)?;
    let document = Config::read_document(&settings.config_file)?;
    tracing::info!(config = %settings.config_file.display(), links_dir = %settings.links_dir.display(), "configuration loaded");
    let broker = connect_broker(&settings).await?;
    let runtime = new_runtime(&settings)?.with_link_cache(Arc::new(BrokerLinkCache(broker.clone())));
    let followers = config.followers.clone();
    let snapshot = build_snapshot(config.clone(), &settings.config_file, &settings.links_dir, runtime.clone())
        .await
        .map_err(anyhow::Error::msg)?;
    let live = live_config(&config, document, &snapshot);
    tracing::info!(broker = broker.backend(), ingress_lists = ?snapshot.ingress_lists(), pooling = runtime.is_pooling(), "ready");
    let (snapshot_tx, snapshots) = tokio::sync::watch::channel(Arc::new(snapshot));
    let control = Arc::new(ConfigStore::new(
        settings.config_file.clone(),
        settings.links_dir.clone(),
        runtime.clone(),
        live,
        snapshot_tx,
    ));
    tokio::spawn(watch::watch(control.clone(), shutdown.clone()));
    for (name, def) in &followers {
        let follower = follower::Follower::new(name, def.clone(), broker.clone(), &settings.api_header)
            .with_context(|| format!("starting follower `{name}`"))?;
        tokio::spawn(follower.run(shutdown.clone()));
    }
    let workers = Workers::start(
        settings.workers,
        broker.clone(),
        snapshots,
        WorkerSettings {
            concurrency: settings.vcon_concurrency,
            options: ProcessOptions {
                dlq_expiry_secs: settings.dlq_expiry_secs,
                parallel_storage: settings.parallel_storage,
                vcon_expiry_secs: settings.vcon_expiry_secs,
            },
            grace: Duration::from_secs(settings.shutdown_grace_secs),
            heartbeat_ttl: Duration::from_secs(settings.worker_ttl_secs),
        },
        shutdown.clone(),
    );
    let state = ApiState {
        broker,
        control,
        settings: Arc::new(ApiSettings {
            tokens: settings.api_tokens.clone(),
            header: settings.api_header.to_ascii_lowercase(),
            root_path: settings.api_root_path.clone(),
            vcon_expiry_secs: settings.vcon_expiry_secs,
            index_expiry_secs: settings.index_expiry_secs,
            egress_format,
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
