//! Per-call host state: an empty WASI context (no files, env, args or sockets;
//! stderr captured into a bounded buffer), the memory limiter, and the `log`
//! import with its per-call budget.

use wasmtime::ResourceLimiter;
use wasmtime::component::ResourceTable;
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;
use wasmtime_wasi::{WasiCtx, WasiCtxBuilder, WasiCtxView, WasiView};

use crate::bindings::vcon::conserver::log::{Host as LogHost, Level};

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
    table: ResourceTable,
    pub(crate) limiter: MemoryLimiter,
    pub(crate) stderr: MemoryOutputPipe,
    labels: CallLabels,
    log_lines: u32,
    pub(crate) deadline: std::time::Instant,
    pub(crate) timed_out: bool,
}

impl HostState {
    pub(crate) fn new(labels: CallLabels, memory_cap: u64, deadline: std::time::Instant) -> Self {
        let stderr = MemoryOutputPipe::new(STDERR_CAPACITY);
        let wasi = WasiCtxBuilder::new().stderr(stderr.clone()).build();
        Self {
            wasi,
            table: ResourceTable::new(),
            limiter: MemoryLimiter { cap: usize::try_from(memory_cap).unwrap_or(usize::MAX), exceeded: false },
            stderr,
            labels,
            log_lines: 0,
            deadline,
            timed_out: false,
        }
    }

    /// The guest's stderr so far, trimmed, lossily decoded.
    pub(crate) fn stderr_text(&self) -> String {
        String::from_utf8_lossy(&self.stderr.contents()).trim().to_string()
    }
}

impl WasiView for HostState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView { ctx: &mut self.wasi, table: &mut self.table }
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
        let mut message = message;
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
/// failure is reported as a memory limit rather than a generic trap.
pub(crate) struct MemoryLimiter {
    cap: usize,
    pub(crate) exceeded: bool,
}

impl ResourceLimiter for MemoryLimiter {
    fn memory_growing(&mut self, _current: usize, desired: usize, _maximum: Option<usize>) -> wasmtime::Result<bool> {
        if desired > self.cap {
            self.exceeded = true;
            return Err(wasmtime::Error::msg(format!("memory limit of {} bytes reached", self.cap)));
        }
        Ok(true)
    }

    fn table_growing(&mut self, _current: usize, desired: usize, _maximum: Option<usize>) -> wasmtime::Result<bool> {
        Ok(desired <= MAX_TABLE_ELEMENTS)
    }
}

/// The `types` interface has no functions; the world imports it for its types.
impl crate::bindings::vcon::conserver::types::Host for HostState {}
