//! The HTTP API, compatible with the Python conserver's (reference/api.md) with its
//! bugs fixed (docs/compatibility.md).
//!
//! [`router`] builds the whole axum `Router` from an [`ApiState`]: every route is
//! served under `API_ROOT_PATH` (default `/api`) and unprefixed, protected routes
//! check the token header, errors use the FastAPI `{"detail": …}` shapes, and the
//! OpenAPI document generated from the handlers is served at `/openapi.json` with
//! Swagger UI at `/docs`. The API reaches queues and vCons through the broker,
//! storages through the live config, and never the wasm runtime, so it can run in
//! a process without one.

mod auth;
mod body;
mod conflict;
mod control;
mod enqueue;
mod error;
mod guards;
mod middleware;
mod query;
mod read;
mod request_span;
mod routes;
mod state;

pub use control::{ConfigControl, ConfigOrigin, ConfigRejected, ConfigSource, LiveConfig};
pub use guards::is_loopback_host;
pub use routes::{openapi, router};
pub use state::{ApiSettings, ApiState, Cors, Guards};
