//! The command line.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// vCon conserver: ingest vCons over HTTP or queues and run them through chains of
/// sandboxed WebAssembly links.
#[derive(Debug, Parser)]
#[command(name = "conserver", version)]
pub struct Cli {
    /// What to do (default: serve).
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve the API and run the workers (the default). The API-only build serves
    /// the API alone.
    Serve {
        /// Address to listen on (default from CONSERVER_BIND, else 127.0.0.1:8000
        /// without an API token, 0.0.0.0:8000 with one or with
        /// CONSERVER_ALLOW_OPEN=1). Without a token a non-loopback address is
        /// refused unless CONSERVER_ALLOW_OPEN=1.
        #[arg(long)]
        bind: Option<String>,
        /// Config file (default from CONSERVER_CONFIG_FILE, else ./config.yml, else
        /// ./config.example.yml).
        #[arg(long)]
        config: Option<PathBuf>,
    },
    /// Validate a config file and load every component it names, without serving.
    Check {
        /// The config file.
        config: PathBuf,
    },
    /// Inspect and replay dead-lettered vCons through a running server's API.
    Dlq {
        #[command(subcommand)]
        action: DlqAction,
        #[command(flatten)]
        server: ServerArgs,
    },
    /// Read, store or delete one vCon through a running server's API.
    Vcon {
        #[command(subcommand)]
        action: VconAction,
        #[command(flatten)]
        server: ServerArgs,
    },
    /// Load every vCon file under a directory (`*.vcon`, `*.json`) into an ingress
    /// list through a running server's API, with a progress bar. Each file is sent
    /// once; invalid ones are reported and skipped.
    Import {
        /// The directory (searched recursively).
        dir: PathBuf,
        /// The ingress list to enqueue on.
        #[arg(long, short = 'l')]
        ingress_list: String,
        /// Requests in flight at once.
        #[arg(long, default_value_t = 8)]
        concurrency: usize,
        #[command(flatten)]
        server: ServerArgs,
    },
    /// Convert the vCons kept in Redis (`REDIS_URL`) in place between plain
    /// strings and RedisJSON documents (what the Python server writes on Redis
    /// Stack), with a progress bar. Safe while servers run: each key changes in
    /// one atomic step with its TTL kept. Resumable: a rerun skips what is done.
    Migrate {
        /// The form to convert to.
        #[arg(long, value_enum, default_value = "json")]
        to: MigrateTarget,
        /// Keys converted at once.
        #[arg(long, default_value_t = 32)]
        concurrency: usize,
    },
    /// Work with config files.
    Config {
        #[command(subcommand)]
        action: ConfigAction,
    },
    /// Work on link components.
    Link {
        #[command(subcommand)]
        action: LinkAction,
    },
}

/// `conserver config …`.
#[derive(Debug, Subcommand)]
pub enum ConfigAction {
    /// Print a JSON Schema of config.yml (every section and key with its doc,
    /// and each standard link's options), for an editor to complete and check a
    /// config, e.g. with `# yaml-language-server: $schema=conserver.schema.json`.
    Schema,
}

/// The form `conserver migrate` converts to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum MigrateTarget {
    /// RedisJSON documents (`JSON.SET`).
    Json,
    /// Plain strings (`SET`).
    String,
}

/// Where the running server is.
#[derive(Debug, Clone, Args)]
pub struct ServerArgs {
    /// The server's base URL (with `API_ROOT_PATH` if you want it; both work).
    #[arg(long, env = "CONSERVER_URL", default_value = "http://127.0.0.1:8000", global = true)]
    pub url: String,
    /// The API token (default from CONSERVER_API_TOKEN, else the first line of
    /// CONSERVER_API_TOKEN_FILE).
    #[arg(long, global = true)]
    pub token: Option<String>,
}

/// `conserver dlq …`.
#[derive(Debug, Subcommand)]
pub enum DlqAction {
    /// List the uuids in `DLQ:{ingress_list}` with the reason each failed.
    List {
        /// The ingress list whose DLQ to read.
        ingress_list: String,
    },
    /// Move dead-lettered uuids back to their ingress list, oldest first.
    Reprocess {
        /// The ingress list whose DLQ to replay.
        ingress_list: String,
        /// At most this many (the API's default is 1000).
        #[arg(long)]
        count: Option<u64>,
    },
}

/// `conserver vcon …`.
#[derive(Debug, Subcommand)]
pub enum VconAction {
    /// Print a vCon as JSON.
    Get {
        /// Its uuid.
        uuid: String,
    },
    /// Store a vCon from a file (`-` for stdin), optionally enqueueing it.
    Put {
        /// The vCon file.
        file: PathBuf,
        /// Ingress lists to enqueue its uuid on (repeatable).
        #[arg(long = "ingress-list", short = 'l')]
        ingress_lists: Vec<String>,
    },
    /// Delete a vCon (from the broker and every storage).
    Delete {
        /// Its uuid.
        uuid: String,
    },
}

/// `conserver link …`.
#[derive(Debug, Subcommand)]
pub enum LinkAction {
    /// Start a new link project from the SDK template.
    New {
        /// The link's name (`snake_case`): the crate, the component file and the
        /// config key.
        name: String,
        /// Where to create it (default: `./<name>`).
        #[arg(long)]
        dir: Option<PathBuf>,
        /// The SDK to build against (default: the SDK this binary was built with,
        /// when its source is still there).
        #[arg(long)]
        sdk: Option<PathBuf>,
        /// The language: `rust` (default), `python` (componentize-py) or `js`
        /// (ComponentizeJS).
        #[arg(long, default_value = "rust")]
        lang: String,
    },
    /// Run a component once per vCon file in the real sandbox and print the
    /// verdict, the vCon as the chain would store it, and the fuel, memory and
    /// time used. Exits 1 when a call failed.
    Test {
        /// The link component (`.wasm`).
        component: PathBuf,
        /// vCon files (each is ingested as `POST /vcon` would, then run).
        #[arg(required = true)]
        vcons: Vec<PathBuf>,
        /// The link's options, as JSON or YAML (`{tags: [a]}`).
        #[arg(long, default_value = "{}")]
        options: String,
        /// Fuel budget per call (default: `wasm.limits`' default).
        #[arg(long)]
        fuel: Option<u64>,
        /// Memory cap in bytes.
        #[arg(long)]
        memory_bytes: Option<u64>,
        /// Deadline per call in milliseconds.
        #[arg(long)]
        timeout_ms: Option<u64>,
        /// Hosts the link may call (`allowed_outbound_hosts` entries; repeatable).
        #[arg(long = "allow-host")]
        allow_hosts: Vec<String>,
        /// Secrets the link may read, from this environment (repeatable).
        #[arg(long = "secret")]
        secrets: Vec<String>,
        /// One JSON object per vCon on stdout instead of text.
        #[arg(long)]
        json: bool,
    },
}
