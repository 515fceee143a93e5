//! `conserver serve`: the API, and (with the `worker` feature) the workers, the
//! config watcher and the component snapshot they run on.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use conserver_api::{ApiSettings, ApiState, ConfigControl, Cors, Guards};
use conserver_broker::Broker;
use conserver_config::{Config, Settings};
use conserver_core::EgressFormat;
use tokio_util::sync::CancellationToken;

use crate::{follower, gauges, http_server, shutdown};

/// The wasm runtime sized for the configured workers.
#[cfg(feature = "worker")]
pub fn new_runtime(settings: &Settings) -> Result<conserver_runtime::Runtime> {
    use conserver_runtime::{Runtime, RuntimeOptions};
    let max_instances = u32::try_from(settings.workers * settings.vcon_concurrency * 2).unwrap_or(u32::MAX).max(64);
    let network = conserver_runtime::OutboundNetwork::from_environment(|name| std::env::var(name).ok())?;
    if network.extra_roots() > 0 || network.has_proxy() {
        tracing::info!(
            extra_ca_certificates = network.extra_roots(),
            proxy = network.has_proxy(),
            "links' outbound HTTP: extra trust roots and/or an egress proxy in use"
        );
    }
    let cache_dir = Some(settings.component_cache_dir.clone());
    Ok(Runtime::new(&RuntimeOptions { cache_dir, max_instances, network })?)
}

/// Where components may be loaded from, for the config file at `config_file`.
#[cfg(feature = "worker")]
pub fn component_policy(settings: &Settings, config_file: &std::path::Path) -> crate::components::ComponentPolicy {
    crate::components::ComponentPolicy::new(
        &settings.component_dirs,
        &settings.links_dir,
        config_file,
        settings.max_component_bytes,
    )
}

/// What the processing side started, for the API and for shutdown.
struct Processing {
    control: Arc<dyn ConfigControl>,
    /// The ingress lists in force now (for the queue gauges).
    lists: Box<dyn Fn() -> Vec<String> + Send + Sync>,
    #[cfg(feature = "worker")]
    workers: conserver_pipeline::Workers,
}

#[cfg(feature = "worker")]
async fn start_processing(
    settings: &Settings,
    config: Config,
    document: serde_json::Value,
    broker: Arc<dyn Broker>,
    shutdown: CancellationToken,
) -> Result<Processing> {
    use conserver_pipeline::{BrokerLinkCache, ProcessOptions, WorkerSettings, Workers};

    use crate::control::{ConfigStore, build_snapshot, live_config};

    let runtime = new_runtime(settings)?
        .with_link_cache(Arc::new(BrokerLinkCache(broker.clone())))
        .with_media_concurrency(config.wasm.media_concurrency());
    let policy = component_policy(settings, &settings.config_file);
    let snapshot = build_snapshot(config.clone(), &settings.config_file, &settings.links_dir, &policy, runtime.clone())
        .await
        .map_err(anyhow::Error::msg)?;
    let live = live_config(&config, document, &snapshot);
    tracing::info!(broker = broker.backend(), ingress_lists = ?snapshot.ingress_lists(), pooling = runtime.is_pooling(), "ready");
    let (snapshot_tx, snapshots) = tokio::sync::watch::channel(Arc::new(snapshot));
    let control = Arc::new(ConfigStore::new(
        settings.config_file.clone(),
        settings.links_dir.clone(),
        policy,
        runtime.clone(),
        live,
        snapshot_tx,
    ));
    tokio::spawn(crate::watch::watch(control.clone(), shutdown.clone()));
    let lists_source = snapshots.clone();
    let workers = Workers::start(
        settings.workers,
        broker,
        snapshots,
        WorkerSettings {
            concurrency: settings.vcon_concurrency,
            options: ProcessOptions {
                dlq_expiry_secs: settings.dlq_expiry_secs,
                parallel_storage: settings.parallel_storage,
                vcon_expiry_secs: settings.vcon_expiry_secs,
                index_expiry_secs: settings.index_expiry_secs,
            },
            grace: Duration::from_secs(settings.shutdown_grace_secs),
            heartbeat_ttl: Duration::from_secs(settings.worker_ttl_secs),
        },
        shutdown,
    );
    Ok(Processing { control, lists: Box::new(move || lists_source.borrow().ingress_lists().to_vec()), workers })
}

#[cfg(not(feature = "worker"))]
async fn start_processing(
    settings: &Settings,
    config: Config,
    document: serde_json::Value,
    broker: Arc<dyn Broker>,
    _shutdown: CancellationToken,
) -> Result<Processing> {
    let live = crate::api_control::live_config(&config, document, conserver_api::ConfigSource::Start)
        .map_err(anyhow::Error::msg)?;
    tracing::info!(broker = broker.backend(), "ready (API-only build: no workers in this process)");
    let control = Arc::new(crate::api_control::ApiConfigStore::new(settings.config_file.clone(), &config, live));
    let lists_source = control.clone();
    Ok(Processing { control, lists: Box::new(move || lists_source.ingress_lists()) })
}

/// Connect to the broker, waiting for it when it is not reachable yet
/// (containers start in any order): retries with backoff from 0.5 s to 10 s
/// for up to `CONSERVER_BROKER_WAIT_SECS`, each attempt logged. A refusal
/// that waiting cannot fix (a bad URL, wrong credentials) fails at once.
/// `None` when a shutdown signal came first.
async fn connect_patiently(settings: &Settings, shutdown: &CancellationToken) -> Result<Option<Arc<dyn Broker>>> {
    let started = tokio::time::Instant::now();
    let limit = Duration::from_secs(settings.broker_wait_secs);
    let mut backoff = Duration::from_millis(500);
    loop {
        match crate::open_broker(settings).await {
            Ok(broker) => return Ok(Some(broker)),
            Err((error, what)) if error.is_retryable() && started.elapsed() + backoff <= limit => {
                tracing::warn!(%error, retry_in_ms = backoff.as_millis() as u64,
                    waited_secs = started.elapsed().as_secs(), "{what}: not reachable yet; retrying");
                tokio::select! {
                    () = tokio::time::sleep(backoff) => {}
                    () = shutdown.cancelled() => return Ok(None),
                }
                backoff = (backoff * 2).min(Duration::from_secs(10));
            }
            Err((error, what)) => {
                let waited = started.elapsed().as_secs();
                let hint = if error.is_retryable() {
                    format!(" (gave up after {waited} s; CONSERVER_BROKER_WAIT_SECS sets how long to wait)")
                } else {
                    String::new()
                };
                return Err(anyhow::Error::new(error).context(format!("{what}{hint}")));
            }
        }
    }
}

/// Serve until a shutdown signal, then drain.
pub async fn serve(settings: Settings) -> Result<()> {
    let shutdown = shutdown::on_signal().context("installing signal handlers")?;
    let egress_format = EgressFormat::parse(settings.egress_format.as_deref()).map_err(anyhow::Error::msg)?;
    // Refuse an open non-loopback bind before anything else starts.
    let exposure = http_server::exposure::decide(&settings).await?;
    let config = Config::load(&settings.config_file)?;
    let document = Config::read_document(&settings.config_file)?;
    tracing::info!(config = %settings.config_file.display(), links_dir = %settings.links_dir.display(), "configuration loaded");
    let Some(broker) = connect_patiently(&settings, &shutdown).await? else {
        tracing::info!("stopped before the broker was reachable");
        return Ok(());
    };
    // Say loudly, once, when the broker can lose what it acknowledges.
    let broker_warnings = match broker.durability_warnings().await {
        Ok(warnings) => warnings,
        Err(error) => {
            tracing::warn!(%error, "cannot read the broker's persistence settings");
            Vec::new()
        }
    };
    for warning in &broker_warnings {
        tracing::warn!(broker = broker.backend(), "{warning}");
    }
    let followers = config.followers.clone();
    let processing = start_processing(&settings, config, document, broker.clone(), shutdown.clone()).await?;
    for (name, def) in &followers {
        let store = conserver_vcons::VconStore::new(
            broker.clone(),
            conserver_vcons::StoreSettings {
                vcon_expiry_secs: settings.vcon_expiry_secs,
                index_expiry_secs: settings.index_expiry_secs,
            },
        );
        let follower = follower::Follower::new(name, def.clone(), store, &settings.api_header)
            .with_context(|| format!("starting follower `{name}`"))?;
        tokio::spawn(follower.run(shutdown.clone()));
    }
    tokio::spawn(gauges::poll(broker.clone(), processing.lists, shutdown.clone()));
    let open = settings.api_tokens.is_empty();
    let state = ApiState {
        broker,
        control: processing.control,
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
            broker_warnings,
            guards: Guards {
                allow_open: settings.allow_open,
                allowed_hosts: settings.allowed_hosts.clone(),
                cors: Cors::from_origins(&settings.cors_origins),
                public_metrics: settings.public_metrics,
                max_json_values: settings.max_json_values,
                max_json_depth: settings.max_json_depth,
                body_read_timeout_secs: settings.http.body_read_timeout_secs,
            },
        }),
    };
    let listener = tokio::net::TcpListener::bind(exposure.addresses.as_slice())
        .await
        .with_context(|| format!("binding {} (set CONSERVER_BIND or --bind to a free address)", exposure.shown))?;
    let bound = listener.local_addr().map(|a| a.to_string()).unwrap_or_else(|_| exposure.shown.clone());
    tracing::info!(bind = %bound, token = !open, "API listening");
    http_server::serve(
        listener,
        conserver_api::router(state),
        settings.http,
        shutdown.clone(),
        Duration::from_secs(settings.shutdown_grace_secs),
    )
    .await
    .context("serving the API")?;
    #[cfg(feature = "worker")]
    processing.workers.join().await;
    tracing::info!("stopped");
    Ok(())
}
