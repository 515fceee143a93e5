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
