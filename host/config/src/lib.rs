//! Configuration: the YAML file a Python conserver user already has (`links`,
//! `storages`, `chains`, `tracers`, `ingress_auth`, `followers`, `imports`) plus the
//! keys wasm links need (`component`, `limits`), and the process settings read from
//! the environment (`REDIS_URL`, `CONSERVER_*`, `VCON_*`). Loading validates
//! everything that can be checked without I/O and names the file, key path and fix
//! for every problem.

mod allowed_hosts;
mod config_schema;
mod error;
mod file;
pub mod json_schema;
mod keys;
mod limits;
pub mod option_schemas;
mod settings;
mod substitute;

pub use allowed_hosts::{AllowedHost, is_internal};
pub use config_schema::config_schema;
pub use error::ConfigError;
pub use file::{ChainDef, ChainStep, Config, FollowerDef, LinkDef, StorageDef, StorageFailure};
pub use limits::{Limits, LimitsOverride, WasmSection};
pub use settings::{BrokerChoice, HttpLimits, Settings};
pub use substitute::{MAX_SECRET_FILE_BYTES, Redactor, read_secret_file};
