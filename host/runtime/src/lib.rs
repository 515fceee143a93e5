//! The wasm runtime for links.
//!
//! One [`Runtime`] per process owns the wasmtime engine (fuel metering, epoch
//! interruption, pooling allocator with an on-demand fallback), the linker (WASI
//! with no capabilities granted, plus the host `log`, `secrets`, `cache` and
//! `media` imports and `wasi:http` behind each link's allow-list) and the on-disk cache
//! of compiled components. [`Runtime::load`] turns a `.wasm` file into a
//! [`LoadedLink`] (compiled once, pre-instantiated); [`LoadedLink::invoke`] runs one
//! call in a fresh store under the link's fuel, memory and wall-clock limits and
//! its host-side budgets (resources it holds, the size and shape of its output,
//! its log volume), and returns the link's verdict or a classified
//! [`LinkFailure`].

mod bindings;
mod cache;
mod call_log;
mod engine;
mod error;
mod failure;
mod grants;
mod host;
mod kv;
mod link;
mod link_text;
mod media_host;
mod outbound_http;
mod outbound_network;
mod output;
mod resources;
mod tracer;

pub use bindings::{Action, Directive};
pub use engine::{Runtime, RuntimeOptions};
pub use error::RuntimeError;
pub use failure::{Budget, LinkFailure};
pub use grants::{Grants, HttpLimits};
pub use kv::{
    CacheWrite, ENTRY_OVERHEAD_BYTES, LinkCache, MAX_KEY_BYTES, MAX_TTL, MAX_VALUE_BYTES, MemoryCache, Owner,
    QUOTA_LAG, entry_charge, namespace,
};
pub use link::{CallContext, LinkOutcome, LoadedLink};
pub use outbound_network::{NetworkError, OutboundNetwork};
pub use tracer::{LoadedTracer, TracePoint};
