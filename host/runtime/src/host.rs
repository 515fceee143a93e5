//! Per-call host state: an empty WASI context (no files, env, args or sockets;
//! stderr captured into a bounded buffer), the memory limiter, the budgets on
//! host resources (`resources`) and on the log (`call_log`), the `log` import,
//! and the capabilities the link was granted: outbound HTTP through
//! [`OutboundHttp`], its secrets, its namespace of the cache, and the media of
//! the vCon being processed (`media_host`). Text the link controls is bounded
//! and escaped (`link_text`) before it reaches a log line or a failure reason.

use std::collections::BTreeMap;
use std::sync::Arc;

use conserver_config::{AllowedHost, Limits};
use wasmtime::ResourceLimiter;
use wasmtime::component::ResourceTable;
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;
use wasmtime_wasi::{WasiCtx, WasiCtxBuilder, WasiCtxView, WasiView};
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView, WasiHttpView};

use crate::bindings::vcon::conserver0_1_0::cache::Host as CacheHost;
use crate::bindings::vcon::conserver0_1_0::log::{Host as LogHost, Level};
use crate::bindings::vcon::conserver0_1_0::secrets::{Host as SecretsHost, SecretError};
use crate::call_log::{CallLog, host_warn};
use crate::failure::Budget;
use crate::grants::{Grants, HttpLimits, scrub};
use crate::kv::{ScopedCache, SetError};
use crate::link_text::{self, MAX_TEXT_BYTES};
use crate::media_host::{MediaLimits, MediaState};
use crate::outbound_http::OutboundHttp;
use crate::outbound_network::OutboundNetwork;
use crate::resources::ResourceBudget;

/// What a loaded link may use, shared by all its calls.
#[derive(Clone)]
pub(crate) struct Capabilities {
    pub allowed_hosts: Arc<[AllowedHost]>,
    pub http: HttpLimits,
    /// Trust roots and proxy for outbound HTTP (the runtime's).
    pub network: OutboundNetwork,
    pub secrets: Arc<BTreeMap<String, Option<String>>>,
    pub scrub: Arc<[String]>,
    /// Its namespace of the cache, with its quota (`kv`).
    pub cache: ScopedCache,
    /// The process's media slots and its decoding limit (`media_host`).
    pub media: MediaLimits,
}

impl Capabilities {
    pub(crate) fn new(grants: &Grants, network: OutboundNetwork, cache: ScopedCache, media: MediaLimits) -> Self {
        Self {
            allowed_hosts: grants.allowed_hosts.clone().into(),
            http: grants.http,
            network,
            secrets: Arc::new(grants.secrets.clone()),
            scrub: grants.scrub_list(),
            cache,
            media,
        }
    }

    /// `text` without any secret value in it.
    pub(crate) fn scrubbed(&self, text: &str) -> String {
        scrub(text, &self.scrub)
    }

    /// Link-supplied `text` as it may appear in a log line or failure reason:
    /// secrets scrubbed, control characters escaped, at most
    /// [`MAX_TEXT_BYTES`] long. Only a prefix is scrubbed, long enough that no
    /// secret starting in the part kept can be cut in half by the bound.
    pub(crate) fn link_text(&self, text: &str) -> String {
        let longest_secret = self.scrub.first().map_or(0, String::len);
        let head = link_text::prefix(text, MAX_TEXT_BYTES + longest_secret);
        link_text::bounded(&scrub(head, &self.scrub), MAX_TEXT_BYTES, text.len() - head.len())
    }
}

/// Bytes of guest stderr kept per call (a panic message fits easily).
const STDERR_CAPACITY: usize = 16 * 1024;
/// Largest table a guest may grow (elements).
const MAX_TABLE_ELEMENTS: usize = 1_000_000;

/// Labels attached to everything a call logs.
#[derive(Debug, Clone, Default)]
pub(crate) struct CallLabels {
    pub link: String,
    pub chain: String,
    pub vcon_uuid: String,
}

/// The store data of one link call.
pub(crate) struct HostState {
    wasi: WasiCtx,
    http: WasiHttpCtx,
    hooks: OutboundHttp,
    pub(crate) capabilities: Capabilities,
    pub(crate) table: ResourceTable,
    pub(crate) media: MediaState,
    pub(crate) limiter: MemoryLimiter,
    pub(crate) stderr: MemoryOutputPipe,
    pub(crate) labels: CallLabels,
    /// The call's log budget (its own lines and the host's warnings about it).
    pub(crate) log: CallLog,
    /// The call's budgets on host resources, checked after every host call.
    pub(crate) resources: ResourceBudget,
    pub(crate) deadline: std::time::Instant,
    pub(crate) timed_out: bool,
    /// Cache reads that found a value during this call.
    pub(crate) cache_hits: u64,
    /// A budget a capability breached (`cache_bytes`, `media_decode_secs`): the
    /// guest was told, and the call fails with it whatever the guest answers.
    pub(crate) breach: Option<(Budget, u64)>,
}

impl HostState {
    pub(crate) fn new(
        labels: CallLabels,
        limits: Limits,
        deadline: std::time::Instant,
        capabilities: Capabilities,
    ) -> Self {
        let stderr = MemoryOutputPipe::new(STDERR_CAPACITY);
        let resources = ResourceBudget::new(&limits);
        // One request for random bytes is held whole on the host before it is copied.
        let wasi = WasiCtxBuilder::new().stderr(stderr.clone()).max_random_size(limits.host_resource_bytes).build();
        let mut http = WasiHttpCtx::new();
        http.set_field_size_limit(resources.field_size_limit());
        let mut table = ResourceTable::new();
        table.set_max_capacity(resources.table_capacity());
        let log = CallLog::new(labels.clone(), &limits);
        let hooks = OutboundHttp {
            link: labels.link.clone(),
            allowed: capabilities.allowed_hosts.clone(),
            limits: capabilities.http,
            network: capabilities.network.clone(),
            log: log.clone(),
        };
        Self {
            wasi,
            http,
            hooks,
            capabilities,
            table,
            media: MediaState::default(),
            limiter: MemoryLimiter {
                cap: usize::try_from(limits.memory_bytes).unwrap_or(usize::MAX),
                exceeded: false,
                peak: 0,
            },
            stderr,
            labels,
            log,
            resources,
            deadline,
            timed_out: false,
            cache_hits: 0,
            breach: None,
        }
    }

    /// Measure the resources the call holds; past a budget, the error that
    /// stops it (run after every host call).
    pub(crate) fn check_resources(&mut self) -> wasmtime::Result<()> {
        self.resources.check(&mut self.table)
    }

    /// The guest's stderr so far, trimmed, lossily decoded, secrets scrubbed
    /// (not yet bounded or escaped: see [`HostState::scrubbed`]).
    pub(crate) fn stderr_text(&self) -> String {
        self.capabilities.scrubbed(String::from_utf8_lossy(&self.stderr.contents()).trim())
    }

    /// Link-supplied `text` (a refusal, a trap) made fit for a failure reason
    /// and a log line: secrets scrubbed, control characters escaped, bounded.
    pub(crate) fn scrubbed(&self, text: &str) -> String {
        self.capabilities.link_text(text)
    }
}

impl WasiView for HostState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView { ctx: &mut self.wasi, table: &mut self.table }
    }
}

impl WasiHttpView for HostState {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        WasiHttpCtxView { ctx: &mut self.http, table: &mut self.table, hooks: &mut self.hooks }
    }
}

impl SecretsHost for HostState {
    fn get(&mut self, name: String) -> Result<String, SecretError> {
        match self.capabilities.secrets.get(&name) {
            Some(Some(value)) => Ok(value.clone()),
            Some(None) => Err(SecretError::NotSet),
            None => {
                host_warn!(self.log, link = self.labels.link, secret = name; "link asked for a secret its config does not grant");
                Err(SecretError::NotGranted)
            }
        }
    }
}

impl CacheHost for HostState {
    async fn get(&mut self, key: String) -> Option<Vec<u8>> {
        match self.capabilities.cache.get(&key).await {
            Ok(value) => {
                self.cache_hits += u64::from(value.is_some());
                value
            }
            Err(error) => {
                host_warn!(self.log, link = self.labels.link, error = error; "link cache read failed; treated as a miss");
                None
            }
        }
    }

    async fn set(&mut self, key: String, value: Vec<u8>, ttl_secs: u32) -> Result<(), String> {
        if let Some((Budget::CacheBytes, limit)) = self.breach {
            return Err(format!("cache quota of {limit} bytes already reached in this call"));
        }
        match self.capabilities.cache.set(&key, &value, ttl_secs).await {
            Ok(()) => Ok(()),
            Err(error @ SetError::OverQuota { limit, .. }) => {
                self.breach.get_or_insert((Budget::CacheBytes, limit));
                Err(error.to_string())
            }
            Err(error) => Err(error.to_string()),
        }
    }

    async fn delete(&mut self, key: String) {
        if let Err(error) = self.capabilities.cache.delete(&key).await {
            host_warn!(self.log, link = self.labels.link, error = error; "link cache delete failed");
        }
    }
}

impl LogHost for HostState {
    fn write(&mut self, level: Level, message: String) {
        // A line the log level filters out costs nothing.
        let enabled = match level {
            Level::Trace => tracing::enabled!(target: "link", tracing::Level::TRACE),
            Level::Debug => tracing::enabled!(target: "link", tracing::Level::DEBUG),
            Level::Info => tracing::enabled!(target: "link", tracing::Level::INFO),
            Level::Warn => tracing::enabled!(target: "link", tracing::Level::WARN),
            Level::Error => tracing::enabled!(target: "link", tracing::Level::ERROR),
        };
        if !enabled {
            return;
        }
        let message = self.capabilities.link_text(&message);
        if !self.log.admit(message.len()) {
            return;
        }
        let CallLabels { link, chain, vcon_uuid } = &self.labels;
        match level {
            Level::Trace => tracing::trace!(target: "link", %link, %chain, %vcon_uuid, "{message}"),
            Level::Debug => tracing::debug!(target: "link", %link, %chain, %vcon_uuid, "{message}"),
            Level::Info => tracing::info!(target: "link", %link, %chain, %vcon_uuid, "{message}"),
            Level::Warn => tracing::warn!(target: "link", %link, %chain, %vcon_uuid, "{message}"),
            Level::Error => tracing::error!(target: "link", %link, %chain, %vcon_uuid, "{message}"),
        }
    }
}

/// The call is over (its store is dropped, also when it was cancelled): say
/// how many log lines its budget dropped, if any.
impl Drop for HostState {
    fn drop(&mut self) {
        self.log.finish();
    }
}

/// Caps linear memory growth and remembers whether the cap was hit, so the call's
/// failure is reported as a memory limit rather than a generic trap, and the
/// largest size any memory was granted (the call's peak, for metrics).
pub(crate) struct MemoryLimiter {
    cap: usize,
    pub(crate) exceeded: bool,
    pub(crate) peak: usize,
}

impl ResourceLimiter for MemoryLimiter {
    fn memory_growing(&mut self, _current: usize, desired: usize, _maximum: Option<usize>) -> wasmtime::Result<bool> {
        if desired > self.cap {
            self.exceeded = true;
            return Err(wasmtime::Error::msg(format!("memory limit of {} bytes reached", self.cap)));
        }
        self.peak = self.peak.max(desired);
        Ok(true)
    }

    fn table_growing(&mut self, _current: usize, desired: usize, _maximum: Option<usize>) -> wasmtime::Result<bool> {
        Ok(desired <= MAX_TABLE_ELEMENTS)
    }
}

/// The `types` interface has no functions; the world imports it for its types.
impl crate::bindings::vcon::conserver0_1_0::types::Host for HostState {}
