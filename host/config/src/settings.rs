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

/// HTTP connection limits (hardening against slow and idle clients).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HttpLimits {
    /// `CONSERVER_HTTP_HEADER_READ_TIMEOUT_SECS` (default 30): a request's head
    /// (request line and headers) must arrive within this long of the server
    /// starting to wait for it; slower connections are closed.
    pub header_read_timeout_secs: u64,
    /// `CONSERVER_HTTP_IDLE_TIMEOUT_SECS` (default 5, as uvicorn's keep-alive): a
    /// connection with no request in flight that sends nothing for this long is
    /// closed (new connections that send nothing, idle keep-alive connections).
    pub idle_timeout_secs: u64,
    /// `CONSERVER_HTTP_BODY_READ_TIMEOUT_SECS` (default 60): a request body must
    /// have arrived this long after the server starts reading it, else `408`
    /// and the connection is closed (a body trickling in would otherwise hold
    /// its connection, past the idle timeout, for as long as the client likes).
    pub body_read_timeout_secs: u64,
    /// `CONSERVER_HTTP_MAX_CONNECTIONS` (default 1024): connections served at once;
    /// beyond it new connections get `503` and are closed at once. Keep it below
    /// the process's open-file limit (`ulimit -n`).
    pub max_connections: usize,
    /// `CONSERVER_HTTP_MAX_CONNECTIONS_PER_IP` (default 0: no per-address cap):
    /// connections one client address may hold at once. Leave 0 behind a proxy,
    /// where every connection comes from the proxy's address.
    pub max_connections_per_ip: usize,
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
    /// `CONSERVER_BIND`: the listen address. Unset means `127.0.0.1:8000` when no
    /// API token is configured (loopback only, with a warning saying how to open
    /// it), else `0.0.0.0:8000`. A non-loopback address without a token is refused
    /// at start unless `CONSERVER_ALLOW_OPEN=1`.
    pub bind: Option<String>,
    /// `CONSERVER_ALLOW_OPEN` (default off): serve without an API token anyway: bind
    /// a non-loopback address (unset `CONSERVER_BIND` then means `0.0.0.0:8000`) and
    /// let `POST /config`, `POST /dlq/reprocess` and `GET /index_vcons` run without
    /// a token. The old, unsafe behaviour; for trusted networks only.
    pub allow_open: bool,
    /// `CONSERVER_CORS_ORIGINS` (default empty: no CORS headers, browsers on other
    /// origins cannot read answers): origins allowed to call the API from a
    /// browser, separated by commas or spaces (`https://ui.example.com`); `*`
    /// allows every origin, as the Python server does.
    pub cors_origins: Vec<String>,
    /// `CONSERVER_ALLOWED_HOSTS` (default empty): host names, besides
    /// `localhost` and IP addresses, that a server without an API token answers
    /// under (the request's `Host`), separated by commas or spaces
    /// (`conserver.lan`). Other names get 403: a web page that rebinds a name it
    /// controls to this server's address (DNS rebinding) is refused.
    pub allowed_hosts: Vec<String>,
    /// `CONSERVER_PUBLIC_METRICS` (default off): serve `/metrics` and
    /// `/stats/queue` without the API token when one is configured (for
    /// scrapers and autoscalers that cannot send it). Without a token they are
    /// public anyway.
    pub public_metrics: bool,
    /// `CONSERVER_COMPONENT_DIRS`: directories link and tracer components are
    /// loaded from besides the links directory (always one), separated by `:`.
    /// Default (empty here): the config file's directory. Every component path
    /// is canonicalised (symlinks resolved) and must be a regular file under one.
    pub component_dirs: Vec<PathBuf>,
    /// `CONSERVER_MAX_COMPONENT_BYTES` (default 256 MiB): larger component files
    /// are refused before they are read.
    pub max_component_bytes: u64,
    /// `CONSERVER_MAX_JSON_VALUES` (default 1000000): JSON request bodies with more
    /// values (array elements and object members, counted by a scan before
    /// parsing) get 413, which bounds the memory a parse can take.
    pub max_json_values: usize,
    /// `CONSERVER_MAX_JSON_DEPTH` (default 64, the default of a link's
    /// `limits.output_depth`, so any link may return what the API accepted):
    /// JSON request bodies nested deeper get 413.
    pub max_json_depth: usize,
    /// How HTTP connections are served (timeouts and connection caps).
    pub http: HttpLimits,
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
    /// `CONSERVER_BROKER_WAIT_SECS` (default 300): how long `serve` waits for
    /// a broker that is not reachable at start (Redis starting after this
    /// container), retrying with backoff, before it exits with the error.
    /// 0 fails at the first refusal.
    pub broker_wait_secs: u64,
    /// `CONSERVER_REDIS_TIMEOUT_SECS` (default 3, at least 1): how long a Redis
    /// command waits for its answer. A Redis that stops answering (paused, or a
    /// network path that drops packets) then gives the API a 503 with
    /// `Retry-After` after this long instead of a hang; workers retry.
    pub redis_timeout_secs: u64,
    /// `CONSERVER_REDIS_CA_FILE`: PEM CA certificate(s) the Redis server's TLS
    /// certificate (`rediss://`) is checked against instead of the system roots
    /// (redis-py's `ssl_ca_certs=` in `REDIS_URL` works too).
    pub redis_ca_file: Option<PathBuf>,
    /// `CONSERVER_REDIS_CLIENT_CERT_FILE`: PEM client certificate for mutual TLS
    /// to Redis (with the key; or `ssl_certfile=` in `REDIS_URL`).
    pub redis_client_cert_file: Option<PathBuf>,
    /// `CONSERVER_REDIS_CLIENT_KEY_FILE`: its PEM private key (or `ssl_keyfile=`).
    pub redis_client_key_file: Option<PathBuf>,
    /// `CONSERVER_REDIS_JSON` (default `auto`): keep `vcon:{uuid}` as RedisJSON
    /// (`JSON.SET`, the Python server's form on Redis Stack) when the server has
    /// the module (`auto`), always (`on`) or never (`off`); reads take both forms.
    pub redis_json: String,
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
            bind: get("CONSERVER_BIND"),
            allow_open: flag(&get, "CONSERVER_ALLOW_OPEN"),
            cors_origins: get("CONSERVER_CORS_ORIGINS")
                .map(|v| v.split([',', ' ']).map(str::trim).filter(|o| !o.is_empty()).map(String::from).collect())
                .unwrap_or_default(),
            allowed_hosts: get("CONSERVER_ALLOWED_HOSTS")
                .map(|v| {
                    v.split([',', ' ']).map(str::trim).filter(|h| !h.is_empty()).map(str::to_ascii_lowercase).collect()
                })
                .unwrap_or_default(),
            public_metrics: flag(&get, "CONSERVER_PUBLIC_METRICS"),
            component_dirs: get("CONSERVER_COMPONENT_DIRS")
                .map(|v| std::env::split_paths(&v).filter(|p| !p.as_os_str().is_empty()).collect())
                .unwrap_or_default(),
            max_component_bytes: number(&get, "CONSERVER_MAX_COMPONENT_BYTES", 256 * 1024 * 1024)?,
            max_json_values: number(&get, "CONSERVER_MAX_JSON_VALUES", 1_000_000)?.max(1),
            max_json_depth: number(&get, "CONSERVER_MAX_JSON_DEPTH", 64)?.max(1),
            http: HttpLimits {
                header_read_timeout_secs: number(&get, "CONSERVER_HTTP_HEADER_READ_TIMEOUT_SECS", 30)?.max(1),
                idle_timeout_secs: number(&get, "CONSERVER_HTTP_IDLE_TIMEOUT_SECS", 5)?.max(1),
                body_read_timeout_secs: number(&get, "CONSERVER_HTTP_BODY_READ_TIMEOUT_SECS", 60)?.max(1),
                max_connections: number(&get, "CONSERVER_HTTP_MAX_CONNECTIONS", 1024)?.max(1),
                max_connections_per_ip: number(&get, "CONSERVER_HTTP_MAX_CONNECTIONS_PER_IP", 0)?,
            },
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
            broker_wait_secs: number(&get, "CONSERVER_BROKER_WAIT_SECS", 300)?,
            redis_timeout_secs: number(&get, "CONSERVER_REDIS_TIMEOUT_SECS", 3)?.max(1),
            redis_ca_file: get("CONSERVER_REDIS_CA_FILE").filter(|v| !v.is_empty()).map(PathBuf::from),
            redis_client_cert_file: get("CONSERVER_REDIS_CLIENT_CERT_FILE")
                .filter(|v| !v.is_empty())
                .map(PathBuf::from),
            redis_client_key_file: get("CONSERVER_REDIS_CLIENT_KEY_FILE").filter(|v| !v.is_empty()).map(PathBuf::from),
            redis_json: redis_json(&get)?,
            worker_ttl_secs: number(&get, "CONSERVER_WORKER_TTL_SECS", 15)?.max(1),
            version: get("VCON_SERVER_VERSION").unwrap_or_else(|| "dev".into()),
            git_commit: get("VCON_SERVER_GIT_COMMIT").unwrap_or_else(|| "unknown".into()),
            build_time: get("VCON_SERVER_BUILD_TIME").unwrap_or_else(|| "unknown".into()),
        })
    }
}

/// An on/off variable: `1`, `true`, `yes` or `on` (any case) are on.
/// `CONSERVER_REDIS_JSON`, lower-cased: `auto`, `on` or `off` (and their synonyms).
fn redis_json(get: &impl Fn(&str) -> Option<String>) -> Result<String, ConfigError> {
    let value = get("CONSERVER_REDIS_JSON").unwrap_or_default();
    let word = value.trim().to_ascii_lowercase();
    match word.as_str() {
        "" => Ok("auto".into()),
        "auto" | "on" | "off" | "1" | "0" | "true" | "false" | "yes" | "no" => Ok(word),
        _ => Err(ConfigError::Env {
            name: "CONSERVER_REDIS_JSON",
            value,
            problem: "use auto (RedisJSON when the server has the module), on or off".into(),
        }),
    }
}

fn flag(get: &impl Fn(&str) -> Option<String>, name: &str) -> bool {
    get(name).is_some_and(|v| matches!(v.trim().to_ascii_lowercase().as_str(), "1" | "true" | "yes" | "on"))
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
    fn safe_defaults_for_exposure_and_serving() {
        let s = settings(&[]).unwrap();
        assert_eq!(s.bind, None);
        assert!(!s.allow_open && !s.public_metrics);
        assert!(s.cors_origins.is_empty() && s.component_dirs.is_empty() && s.allowed_hosts.is_empty());
        assert_eq!((s.max_component_bytes, s.max_json_values, s.max_json_depth), (256 << 20, 1_000_000, 64));
        assert_eq!(
            s.http,
            HttpLimits {
                header_read_timeout_secs: 30,
                idle_timeout_secs: 5,
                body_read_timeout_secs: 60,
                max_connections: 1024,
                max_connections_per_ip: 0
            }
        );
        let s = settings(&[
            ("CONSERVER_ALLOW_OPEN", "1"),
            ("CONSERVER_CORS_ORIGINS", "https://a.example, https://b.example"),
            ("CONSERVER_COMPONENT_DIRS", "/opt/links:/srv/more"),
            ("CONSERVER_HTTP_MAX_CONNECTIONS", "8"),
        ])
        .unwrap();
        assert!(s.allow_open);
        assert_eq!(s.cors_origins, ["https://a.example", "https://b.example"]);
        assert_eq!(s.component_dirs, [PathBuf::from("/opt/links"), PathBuf::from("/srv/more")]);
        assert_eq!(s.http.max_connections, 8);
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
