//! The HTTP API. [`router`] builds the whole axum `Router` from an [`ApiState`]; it
//! serves every route both under `API_ROOT_PATH` (default `/api`) and unprefixed, as
//! the Python conserver does, checks the token header on protected routes, and
//! answers errors in the FastAPI `{"detail": …}` shape.

mod auth;
mod error;
mod query;
mod routes;
mod state;

pub use routes::router;
pub use state::{ApiSettings, ApiState};
