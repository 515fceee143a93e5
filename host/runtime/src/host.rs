//! Per-call host state: an empty WASI context (no files, env, args or sockets;
//! stderr captured into a bounded buffer), the memory limiter, the `log` import
//! with its per-call budget, and the capabilities the link was granted: outbound
//! HTTP through [`OutboundHttp`], its secrets, its namespace of the cache, and the
//! media of the vCon being processed (`media_host`).

use std::collections::BTreeMap;
use std::sync::Arc;

use conserver_config::AllowedHost;
use wasmtime::ResourceLimiter;
use wasmtime::component::ResourceTable;
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;
use wasmtime_wasi::{WasiCtx, WasiCtxBuilder, WasiCtxView, WasiView};
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView, WasiHttpView};

use crate::bindings::vcon::conserver0_1_0::cache::Host as CacheHost;
use crate::bindings::vcon::conserver0_1_0::log::{Host as LogHost, Level};
use crate::bindings::vcon::conserver0_1_0::secrets::{Host as SecretsHost, SecretError};
use crate::grants::{Grants, HttpLimits, scrub};
use crate::kv::{self, LinkCache};
use crate::media_host::MediaState;
use crate::outbound_http::OutboundHttp;

/// What a loaded link may use, shared by all its calls.
#[derive(Clone)]
pub(crate) struct Capabilities {
    pub allowed_hosts: Arc<[AllowedHost]>,
    pub http: HttpLimits,
    pub secrets: Arc<BTreeMap<String, Option<String>>>,
    pub scrub: Arc<[String]>,
    pub cache: Arc<dyn LinkCache>,
}

impl Capabilities {
    pub(crate) fn new(grants: &Grants, cache: Arc<dyn LinkCache>) -> Self {
        Self {
            allowed_hosts: grants.allowed_hosts.clone().into(),
            http: grants.http,
            secrets: Arc::new(grants.secrets.clone()),
            scrub: grants.scrub_list(),
            cache,
        }
    }

    /// `text` without any secret value in it.
    pub(crate) fn scrubbed(&self, text: &str) -> String {
        scrub(text, &self.scrub)
    }
}

/// Bytes of guest stderr kept per call (a panic message fits easily).
const STDERR_CAPACITY: usize = 16 * 1024;
/// Log lines a single call may write; more are counted and dropped.
const MAX_LOG_LINES: u32 = 100;
/// Longest log line kept, in bytes.
const MAX_LOG_LINE_BYTES: usize = 4 * 1024;
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
    log_lines: u32,
    pub(crate) deadline: std::time::Instant,
    pub(crate) timed_out: bool,
    /// Cache reads that found a value during this call.
    pub(crate) cache_hits: u64,
}

impl HostState {
    pub(crate) fn new(
        labels: CallLabels,
        memory_cap: u64,
        deadline: std::time::Instant,
        capabilities: Capabilities,
    ) -> Self {
        let stderr = MemoryOutputPipe::new(STDERR_CAPACITY);
        let wasi = WasiCtxBuilder::new().stderr(stderr.clone()).build();
        let hooks = OutboundHttp {
            link: labels.link.clone(),
            allowed: capabilities.allowed_hosts.clone(),
            limits: capabilities.http,
        };
        Self {
            wasi,
            http: WasiHttpCtx::new(),
            hooks,
            capabilities,
            table: ResourceTable::new(),
            media: MediaState::default(),
            limiter: MemoryLimiter { cap: usize::try_from(memory_cap).unwrap_or(usize::MAX), exceeded: false, peak: 0 },
            stderr,
            labels,
            log_lines: 0,
            deadline,
            timed_out: false,
            cache_hits: 0,
        }
    }

    /// The guest's stderr so far, trimmed, lossily decoded, secrets scrubbed.
    pub(crate) fn stderr_text(&self) -> String {
        self.capabilities.scrubbed(String::from_utf8_lossy(&self.stderr.contents()).trim())
    }

    /// `text` without any secret value in it.
    pub(crate) fn scrubbed(&self, text: &str) -> String {
        self.capabilities.scrubbed(text)
    }

    fn cache_key(&self, key: &str) -> String {
        format!("{}:{key}", self.labels.link)
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
                tracing::warn!(link = %self.labels.link, secret = %name, "link asked for a secret its config does not grant");
                Err(SecretError::NotGranted)
            }
        }
    }
}

impl CacheHost for HostState {
    async fn get(&mut self, key: String) -> Option<Vec<u8>> {
        if key.len() > kv::MAX_KEY_BYTES {
            return None;
        }
        match self.capabilities.cache.get(&self.cache_key(&key)).await {
            Ok(value) => {
                self.cache_hits += u64::from(value.is_some());
                value
            }
            Err(error) => {
                tracing::warn!(link = %self.labels.link, %error, "link cache read failed; treated as a miss");
                None
            }
        }
    }

    async fn set(&mut self, key: String, value: Vec<u8>, ttl_secs: u32) -> Result<(), String> {
        if key.len() > kv::MAX_KEY_BYTES {
            return Err(format!("cache keys are at most {} bytes", kv::MAX_KEY_BYTES));
        }
        if value.len() > kv::MAX_VALUE_BYTES {
            return Err(format!("cache values are at most {} bytes", kv::MAX_VALUE_BYTES));
        }
        self.capabilities.cache.set(&self.cache_key(&key), &value, kv::ttl(ttl_secs)).await
    }

    async fn delete(&mut self, key: String) {
        if let Err(error) = self.capabilities.cache.delete(&self.cache_key(&key)).await {
            tracing::warn!(link = %self.labels.link, %error, "link cache delete failed");
        }
    }
}

impl LogHost for HostState {
    fn write(&mut self, level: Level, message: String) {
        self.log_lines += 1;
        if self.log_lines > MAX_LOG_LINES {
            if self.log_lines == MAX_LOG_LINES + 1 {
                tracing::warn!(link = %self.labels.link, vcon_uuid = %self.labels.vcon_uuid, "link log budget used up; further lines dropped");
            }
            return;
        }
        let mut message = self.capabilities.scrubbed(&message);
        if message.len() > MAX_LOG_LINE_BYTES {
            let mut cut = MAX_LOG_LINE_BYTES;
            while !message.is_char_boundary(cut) {
                cut -= 1;
            }
            message.truncate(cut);
            message.push('…');
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
