//! Process settings from the environment, with the Python conserver's variable
//! names and defaults.

use std::path::{Path, PathBuf};

use crate::ConfigError;

/// Which queue/cache backend to use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BrokerChoice {
    /// Redis at this URL (`REDIS_URL`).
    Redis(String),
    /// The embedded SQLite broker under this directory (default when `REDIS_URL` is unset).
    Embedded(PathBuf),
}

/// Everything read from the environment at start.
#[derive(Debug, Clone)]
pub struct Settings {
    /// The broker backend.
    pub broker: BrokerChoice,
    /// `CONSERVER_DATA_DIR` (default `./data`): embedded broker, component cache.
    pub data_dir: PathBuf,
    /// `CONSERVER_CONFIG_FILE`; default `./config.yml`, else `./config.example.yml`.
    pub config_file: PathBuf,
    /// `CONSERVER_BIND` (default `0.0.0.0:8000`).
    pub bind: String,
    /// Tokens from `CONSERVER_API_TOKEN` and the lines of `CONSERVER_API_TOKEN_FILE`;
    /// empty means the API is open.
    pub api_tokens: Vec<String>,
    /// `CONSERVER_HEADER_NAME` (default `x-conserver-api-token`).
    pub api_header: String,
    /// `API_ROOT_PATH` (default `/api`); routes answer with and without it.
    pub api_root_path: String,
    /// `CONSERVER_WORKERS` (default 1, at least 1).
    pub workers: usize,
    /// `CONSERVER_VCON_CONCURRENCY` (default 1, at least 1): chains in flight per worker.
    pub vcon_concurrency: usize,
    /// `CONSERVER_PARALLEL_STORAGE` (default true).
    pub parallel_storage: bool,
    /// `VCON_REDIS_EXPIRY` seconds (default 3600) for API-created vCons.
    pub vcon_expiry_secs: u64,
    /// `VCON_DLQ_EXPIRY` seconds (default 604800); 0 leaves the TTL alone.
    pub dlq_expiry_secs: u64,
    /// `VCON_INDEX_EXPIRY` seconds (default 86400): TTL of the party search sets.
    pub index_expiry_secs: u64,
    /// `VCON_SORTED_SET_NAME` (default `vcons`): the sorted set listing vCons.
    pub sorted_set: String,
    /// `EGRESS_FORMAT_VERSION`: unset/empty (documents as stored) or `0.0.1` (the
    /// legacy downgrade on API reads); any other value is refused at start.
    pub egress_format: Option<String>,
    /// `CONSERVER_LINKS_DIR`: where `module: links.<name>` components live; default
    /// `links/` beside the executable.
    pub links_dir: PathBuf,
    /// `CONSERVER_COMPONENT_CACHE_DIR` (default `<data_dir>/component-cache`).
    pub component_cache_dir: PathBuf,
    /// `CONSERVER_MAX_BODY_BYTES` (default 32 MiB): larger request bodies get 413.
    pub max_body_bytes: usize,
    /// `CONSERVER_SHUTDOWN_GRACE_SECS` (default 30): how long in-flight vCons may
    /// run after SIGTERM before they are returned to their lists.
    pub shutdown_grace_secs: u64,
    /// `CONSERVER_WORKER_TTL_SECS` (default 15): a worker silent this long is dead
    /// and the vCons it held are returned to their lists.
    pub worker_ttl_secs: u64,
    /// `VCON_SERVER_VERSION` (default `dev`).
    pub version: String,
    /// `VCON_SERVER_GIT_COMMIT` (default `unknown`).
    pub git_commit: String,
    /// `VCON_SERVER_BUILD_TIME` (default `unknown`).
    pub build_time: String,
}

impl Settings {
    /// Read settings from the process environment.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Read settings through `lookup` (tests pass a map).
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let get = |name: &str| lookup(name).filter(|v| !v.trim().is_empty());
        let data_dir = PathBuf::from(get("CONSERVER_DATA_DIR").unwrap_or_else(|| "./data".into()));
        let broker = match get("REDIS_URL") {
            Some(url) => BrokerChoice::Redis(url),
            None => BrokerChoice::Embedded(data_dir.join("broker")),
        };
        let config_file = match get("CONSERVER_CONFIG_FILE") {
            Some(path) => PathBuf::from(path),
            None if Path::new("config.yml").exists() => PathBuf::from("config.yml"),
            None => PathBuf::from("config.example.yml"),
        };
        let mut api_tokens: Vec<String> = get("CONSERVER_API_TOKEN").into_iter().collect();
        if let Some(file) = get("CONSERVER_API_TOKEN_FILE") {
            let text = std::fs::read_to_string(&file).map_err(|e| ConfigError::Env {
                name: "CONSERVER_API_TOKEN_FILE",
                value: file.clone(),
                problem: format!("cannot read it: {e}"),
            })?;
            api_tokens.extend(text.lines().map(str::trim).filter(|l| !l.is_empty()).map(String::from));
        }
        let links_dir = match get("CONSERVER_LINKS_DIR") {
            Some(dir) => PathBuf::from(dir),
            None => std::env::current_exe()
                .ok()
                .and_then(|exe| exe.parent().map(|dir| dir.join("links")))
                .unwrap_or_else(|| PathBuf::from("links")),
        };
        Ok(Self {
            component_cache_dir: get("CONSERVER_COMPONENT_CACHE_DIR")
                .map(PathBuf::from)
                .unwrap_or_else(|| data_dir.join("component-cache")),
            broker,
            data_dir,
            config_file,
            bind: get("CONSERVER_BIND").unwrap_or_else(|| "0.0.0.0:8000".into()),
            api_tokens,
            api_header: get("CONSERVER_HEADER_NAME").unwrap_or_else(|| "x-conserver-api-token".into()),
            api_root_path: lookup("API_ROOT_PATH").unwrap_or_else(|| "/api".into()),
            workers: number(&get, "CONSERVER_WORKERS", 1)?.max(1),
            vcon_concurrency: number(&get, "CONSERVER_VCON_CONCURRENCY", 1)?.max(1),
            parallel_storage: get("CONSERVER_PARALLEL_STORAGE")
                .is_none_or(|v| matches!(v.trim().to_ascii_lowercase().as_str(), "true" | "1" | "yes")),
            vcon_expiry_secs: number(&get, "VCON_REDIS_EXPIRY", 3600)?,
            dlq_expiry_secs: number(&get, "VCON_DLQ_EXPIRY", 604_800)?,
            index_expiry_secs: number(&get, "VCON_INDEX_EXPIRY", 86_400)?,
            sorted_set: get("VCON_SORTED_SET_NAME").unwrap_or_else(|| "vcons".into()),
            egress_format: get("EGRESS_FORMAT_VERSION"),
            links_dir,
            max_body_bytes: number(&get, "CONSERVER_MAX_BODY_BYTES", 32 * 1024 * 1024)?,
            shutdown_grace_secs: number(&get, "CONSERVER_SHUTDOWN_GRACE_SECS", 30)?,
            worker_ttl_secs: number(&get, "CONSERVER_WORKER_TTL_SECS", 15)?.max(1),
            version: get("VCON_SERVER_VERSION").unwrap_or_else(|| "dev".into()),
            git_commit: get("VCON_SERVER_GIT_COMMIT").unwrap_or_else(|| "unknown".into()),
            build_time: get("VCON_SERVER_BUILD_TIME").unwrap_or_else(|| "unknown".into()),
        })
    }
}

fn number<T: std::str::FromStr>(
    get: &impl Fn(&str) -> Option<String>,
    name: &'static str,
    default: T,
) -> Result<T, ConfigError> {
    match get(name) {
        None => Ok(default),
        Some(value) => value.trim().parse().map_err(|_| ConfigError::Env {
            name,
            problem: "expected a non-negative whole number".into(),
            value,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn settings(vars: &[(&str, &str)]) -> Result<Settings, ConfigError> {
        let map: HashMap<String, String> = vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        Settings::from_lookup(|name| map.get(name).cloned())
    }

    #[test]
    fn defaults_match_the_python_conserver() {
        let s = settings(&[]).unwrap();
        assert!(matches!(s.broker, BrokerChoice::Embedded(_)));
        assert_eq!(s.api_header, "x-conserver-api-token");
        assert_eq!(s.api_root_path, "/api");
        assert_eq!((s.workers, s.vcon_concurrency, s.parallel_storage), (1, 1, true));
        assert_eq!((s.vcon_expiry_secs, s.dlq_expiry_secs), (3600, 604_800));
        assert!(s.api_tokens.is_empty());
    }

    #[test]
    fn redis_url_selects_redis_and_tokens_come_from_both_sources() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("tokens");
        std::fs::write(&file, "one\n\n  two  \n").unwrap();
        let s = settings(&[
            ("REDIS_URL", "redis://127.0.0.1:6379"),
            ("CONSERVER_API_TOKEN", "zero"),
            ("CONSERVER_API_TOKEN_FILE", file.to_str().unwrap()),
            ("CONSERVER_WORKERS", "0"),
        ])
        .unwrap();
        assert_eq!(s.broker, BrokerChoice::Redis("redis://127.0.0.1:6379".into()));
        assert_eq!(s.api_tokens, ["zero", "one", "two"]);
        assert_eq!(s.workers, 1);
    }

    #[test]
    fn bad_numbers_name_the_variable() {
        let err = settings(&[("VCON_REDIS_EXPIRY", "soon")]).unwrap_err().to_string();
        assert!(err.contains("VCON_REDIS_EXPIRY"), "{err}");
    }
}
