//! What handlers share.

use std::sync::Arc;

use conserver_broker::Broker;
use conserver_core::EgressFormat;

use crate::ConfigControl;

/// API settings from the environment.
#[derive(Debug, Clone)]
pub struct ApiSettings {
    /// Accepted tokens; empty means the API is open.
    pub tokens: Vec<String>,
    /// The token header name, lowercase.
    pub header: String,
    /// The prefix routes are also served under (`/api`), or empty.
    pub root_path: String,
    /// TTL in seconds for vCons created through the API (0: none).
    pub vcon_expiry_secs: u64,
    /// TTL in seconds of the party search sets.
    pub index_expiry_secs: u64,
    /// Format of vCons returned by reads (`EGRESS_FORMAT_VERSION`).
    pub egress_format: EgressFormat,
    /// Request bodies larger than this get 413.
    pub max_body_bytes: usize,
    /// `VCON_SERVER_VERSION`.
    pub version: String,
    /// `VCON_SERVER_GIT_COMMIT`.
    pub git_commit: String,
    /// `VCON_SERVER_BUILD_TIME`.
    pub build_time: String,
    /// Broker settings found at start that can lose acknowledged data (shown
    /// in `/health`).
    pub broker_warnings: Vec<String>,
    /// What protects an open (token-less) server and bounds request parsing.
    pub guards: Guards,
}

/// Which browser origins may call the API (CORS).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Cors {
    /// No CORS headers at all (the default): browsers on other origins cannot
    /// read answers, and preflights are not answered.
    #[default]
    Off,
    /// These origins (`scheme://host[:port]`, compared without case).
    Origins(Vec<String>),
    /// Every origin (the Python server's `*`; answers carry `*` without
    /// credentials, preflights echo the origin).
    Any,
}

impl Cors {
    /// From `CONSERVER_CORS_ORIGINS`' entries: none is off, `*` is any.
    pub fn from_origins(origins: &[String]) -> Self {
        if origins.is_empty() {
            Self::Off
        } else if origins.iter().any(|o| o == "*") {
            Self::Any
        } else {
            Self::Origins(origins.iter().map(|o| o.trim_end_matches('/').to_ascii_lowercase()).collect())
        }
    }

    /// Whether `origin` (an `Origin` header's value) may call the API.
    pub fn allows(&self, origin: &str) -> bool {
        match self {
            Self::Off => false,
            Self::Any => true,
            Self::Origins(allowed) => allowed.iter().any(|a| a.eq_ignore_ascii_case(origin.trim_end_matches('/'))),
        }
    }
}

/// Protections whose safe setting is the default.
#[derive(Debug, Clone)]
pub struct Guards {
    /// `CONSERVER_ALLOW_OPEN`: control endpoints run without a configured token.
    pub allow_open: bool,
    /// `CONSERVER_ALLOWED_HOSTS`: names (lowercase, no port) a server without
    /// a token answers under besides loopback names and IP addresses.
    pub allowed_hosts: Vec<String>,
    /// Browser origins allowed (`CONSERVER_CORS_ORIGINS`).
    pub cors: Cors,
    /// `CONSERVER_PUBLIC_METRICS`: `/metrics` and `/stats/queue` need no token.
    pub public_metrics: bool,
    /// `CONSERVER_MAX_JSON_VALUES`: most values a JSON body may hold.
    pub max_json_values: usize,
    /// `CONSERVER_MAX_JSON_DEPTH`: deepest nesting a JSON body may have.
    pub max_json_depth: usize,
    /// `CONSERVER_HTTP_BODY_READ_TIMEOUT_SECS`: how long a request body may
    /// take to arrive once its handler starts reading it (then 408).
    pub body_read_timeout_secs: u64,
}

impl Default for Guards {
    fn default() -> Self {
        Self {
            allow_open: false,
            allowed_hosts: Vec::new(),
            cors: Cors::Off,
            public_metrics: false,
            max_json_values: 1_000_000,
            max_json_depth: 64,
            body_read_timeout_secs: 60,
        }
    }
}

/// Shared handler state.
#[derive(Clone)]
pub struct ApiState {
    /// The broker holding lists, vCons and indexes.
    pub broker: Arc<dyn Broker>,
    /// Settings.
    pub settings: Arc<ApiSettings>,
    /// The live config (ingress keys, storages) and the way to replace it.
    pub control: Arc<dyn ConfigControl>,
}

impl ApiState {
    /// The vCon store over this state's broker, with its TTL settings.
    pub fn vcons(&self) -> conserver_vcons::VconStore {
        conserver_vcons::VconStore::new(
            self.broker.clone(),
            conserver_vcons::StoreSettings {
                vcon_expiry_secs: self.settings.vcon_expiry_secs,
                index_expiry_secs: self.settings.index_expiry_secs,
            },
        )
    }
}
