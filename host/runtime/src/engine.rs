//! The process-wide wasmtime engine and linker, and loading components into
//! ready-to-call links.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use conserver_config::Limits;
use wasmtime::component::{HasSelf, Linker};
use wasmtime::{Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig};

use crate::RuntimeError;
use crate::bindings::tracer::TracerComponentPre;
use crate::bindings::{Link, LinkPre};
use crate::cache::ComponentCache;
use crate::grants::Grants;
use crate::host::{Capabilities, HostState};
use crate::kv::{LinkCache, MemoryCache, Owner, ScopedCache};
use crate::link::LoadedLink;
use crate::media_host::{MediaLimits, MediaSlots};
use crate::outbound_network::OutboundNetwork;
use crate::tracer::LoadedTracer;

/// How often the epoch ticker advances. Deadlines are measured in these ticks.
pub(crate) const EPOCH_TICK: Duration = Duration::from_millis(5);

/// Bytes of each pooled memory (and table) reset with memset rather than madvise.
const KEEP_RESIDENT_BYTES: usize = 256 * 1024;
/// Pool slots whose decommit is batched into one flush.
const DECOMMIT_BATCH: usize = 32;

/// Settings for the runtime.
#[derive(Debug, Clone)]
pub struct RuntimeOptions {
    /// Where compiled components are cached; `None` disables the disk cache.
    pub cache_dir: Option<PathBuf>,
    /// How many link instances may run at once (sizes the pooling allocator).
    pub max_instances: u32,
    /// Trust roots and egress proxy for links' outbound HTTP.
    pub network: OutboundNetwork,
}

impl Default for RuntimeOptions {
    fn default() -> Self {
        Self { cache_dir: None, max_instances: 256, network: OutboundNetwork::default() }
    }
}

/// The wasm runtime: one engine and linker per process.
#[derive(Clone)]
pub struct Runtime {
    engine: Engine,
    linker: Arc<Linker<HostState>>,
    cache: ComponentCache,
    link_cache: Arc<dyn LinkCache>,
    media: MediaSlots,
    network: OutboundNetwork,
    pooling: bool,
}

impl Runtime {
    /// Create the engine (pooling allocator, falling back to on-demand allocation
    /// when the pool cannot be reserved), the linker and the epoch ticker.
    pub fn new(options: &RuntimeOptions) -> Result<Self, RuntimeError> {
        let (engine, pooling) = match Engine::new(&engine_config(Some(options.max_instances))) {
            Ok(engine) => (engine, true),
            Err(pool_error) => {
                tracing::warn!(error = %pool_error, "pooling allocator unavailable, using on-demand allocation");
                let engine = Engine::new(&engine_config(None)).map_err(|e| RuntimeError::Engine(e.to_string()))?;
                (engine, false)
            }
        };
        spawn_epoch_ticker(&engine);
        let mut linker = Linker::new(&engine);
        let engine_error = |e: wasmtime::Error| RuntimeError::Engine(format!("{e:#}"));
        wasmtime_wasi::p2::add_to_linker_async(&mut linker).map_err(engine_error)?;
        wasmtime_wasi_http::p2::add_only_http_to_linker_async(&mut linker).map_err(engine_error)?;
        Link::add_to_linker::<_, HasSelf<_>>(&mut linker, |state| state).map_err(engine_error)?;
        let cache = ComponentCache::new(options.cache_dir.clone(), &engine);
        let link_cache: Arc<dyn LinkCache> = Arc::new(MemoryCache::default());
        let media = MediaSlots::new(std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get));
        Ok(Self {
            engine,
            linker: Arc::new(linker),
            cache,
            link_cache,
            media,
            network: options.network.clone(),
            pooling,
        })
    }

    /// Keep links' `cache` entries in `cache` (shared by every worker) instead of
    /// this process's memory. Affects links loaded afterwards.
    #[must_use]
    pub fn with_link_cache(mut self, cache: Arc<dyn LinkCache>) -> Self {
        self.link_cache = cache;
        self
    }

    /// Let at most `slots` media decoding jobs run at once across every call
    /// (`wasm.media_concurrency`; the number of CPU cores by default). Affects
    /// links loaded afterwards.
    #[must_use]
    pub fn with_media_concurrency(mut self, slots: usize) -> Self {
        self.media = MediaSlots::new(slots);
        self
    }

    /// Media decoding jobs running now, in this runtime's slots (a job a call
    /// left behind counts until it has actually stopped).
    pub fn media_jobs_running(&self) -> usize {
        self.media.running()
    }

    /// Whether the pooling allocator is in use.
    pub fn is_pooling(&self) -> bool {
        self.pooling
    }

    /// Compile (or load from cache) the component at `path` and pre-instantiate it.
    /// CPU-heavy on a cache miss: call it off the async executor.
    pub fn load(&self, name: &str, path: &Path, limits: Limits, grants: &Grants) -> Result<LoadedLink, RuntimeError> {
        let bytes = std::fs::read(path).map_err(|source| RuntimeError::Read { path: path.to_path_buf(), source })?;
        let (component, digest) = self.cache.component(&self.engine, &bytes, path)?;
        let not_a_link = |e: wasmtime::Error| RuntimeError::NotALink {
            path: path.to_path_buf(),
            world: "link",
            message: format!("{e:#}"),
        };
        let pre = self.linker.instantiate_pre(&component).map_err(not_a_link)?;
        let pre = LinkPre::new(pre).map_err(not_a_link)?;
        let capabilities = Capabilities::new(
            grants,
            self.network.clone(),
            ScopedCache::new(self.link_cache.clone(), Owner::Link, name, &limits),
            MediaLimits::new(self.media.clone(), &limits),
        );
        // Only links that import `media` get the vCon copied into their host state.
        let uses_media = component
            .component_type()
            .imports(&self.engine)
            .any(|(import, _)| import.starts_with("vcon:conserver/media@"));
        let link = LoadedLink::new(name.to_string(), path.to_path_buf(), digest, pre, limits, capabilities);
        Ok(if uses_media { link.with_media() } else { link })
    }

    /// Like [`Runtime::load`], for a tracer component (world `tracer-component`).
    pub fn load_tracer(
        &self,
        name: &str,
        path: &Path,
        limits: Limits,
        grants: &Grants,
    ) -> Result<LoadedTracer, RuntimeError> {
        let bytes = std::fs::read(path).map_err(|source| RuntimeError::Read { path: path.to_path_buf(), source })?;
        let (component, _digest) = self.cache.component(&self.engine, &bytes, path)?;
        let not_a_tracer = |e: wasmtime::Error| RuntimeError::NotALink {
            path: path.to_path_buf(),
            world: "tracer-component",
            message: format!("{e:#}"),
        };
        let pre = self.linker.instantiate_pre(&component).map_err(not_a_tracer)?;
        let pre = TracerComponentPre::new(pre).map_err(not_a_tracer)?;
        let capabilities = Capabilities::new(
            grants,
            self.network.clone(),
            ScopedCache::new(self.link_cache.clone(), Owner::Tracer, name, &limits),
            MediaLimits::new(self.media.clone(), &limits),
        );
        Ok(LoadedTracer::new(name.to_string(), pre, limits, capabilities))
    }
}

fn engine_config(pool_instances: Option<u32>) -> Config {
    let mut config = Config::new();
    config.consume_fuel(true);
    config.epoch_interruption(true);
    if let Some(instances) = pool_instances {
        let mut pool = PoolingAllocationConfig::default();
        pool.total_component_instances(instances)
            .total_core_instances(instances.saturating_mul(8))
            .total_memories(instances.saturating_mul(2))
            .total_tables(instances.saturating_mul(4))
            .total_stacks(instances)
            .max_core_instances_per_component(32)
            .max_memories_per_component(4)
            .max_tables_per_component(16)
            // Reset the first 256 KiB of a returned memory with memset instead of
            // madvise: small links (64 KiB stack, data, heap) then start on warm
            // pages, which halves the fixed cost of a call (docs/benchmarks.md).
            .linear_memory_keep_resident(KEEP_RESIDENT_BYTES)
            .table_keep_resident(KEEP_RESIDENT_BYTES)
            // Flush decommits in batches: fewer TLB shootdowns across cores.
            .decommit_batch_size(DECOMMIT_BATCH);
        config.allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
    }
    config
}

/// Advance the engine's epoch every tick until the engine is dropped.
fn spawn_epoch_ticker(engine: &Engine) {
    let weak = engine.weak();
    let spawned = std::thread::Builder::new().name("wasm-epoch".into()).spawn(move || {
        while let Some(engine) = weak.upgrade() {
            engine.increment_epoch();
            drop(engine);
            std::thread::sleep(EPOCH_TICK);
        }
    });
    if let Err(e) = spawned {
        tracing::error!(error = %e, "cannot start the epoch ticker; wasm deadlines rely on the outer timeout only");
    }
}
