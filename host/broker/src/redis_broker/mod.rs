//! The Redis backend, with the Python conserver's key layout, on a single server or
//! a Redis Cluster. One multiplexed, auto-reconnecting connection serves every
//! non-blocking command; each popper has its own connection because a blocking
//! `BLMOVE` holds its connection. Keys moved between atomically (an ingress list and
//! its processing lists) share a hash slot; everything else that spans slots is
//! sent as separate commands on a cluster (see `redis_conn`).

mod dead_letters;
mod documents;
mod key_value;
mod queues;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use conserver_core::DlqReason;
use redis::cluster_routing::{MultipleNodeRoutingInfo, ResponsePolicy, RoutingInfo};
use redis::{AsyncCommands, Value};

use crate::error::RedisContext;
use crate::redis_conn::{Batch, Conn, Opener};
use crate::redis_json::{self, Conversion, DocumentForm, JsonMode};
use crate::redis_tls::RedisTls;
use crate::{
    Broker, BrokerError, CacheWrite, DeadLetters, Finish, LinkCacheStore, Popped, Popper, Queues, Result, Taken, Ttl,
    VconDocuments, WORKERS_KEY, dlq_list, dlq_reasons_key, heartbeat_key, processing_list, vcon_key,
};

/// Longest a popper blocks in one `BLMOVE` before re-checking shutdown.
const MAX_BLOCK: Duration = Duration::from_secs(1);

/// How long a command waits for Redis's answer unless configured otherwise
/// (`CONSERVER_REDIS_TIMEOUT_SECS`).
pub const DEFAULT_COMMAND_TIMEOUT: Duration = Duration::from_secs(3);

/// Move one entry from a processing list (KEYS[1]) to the head of its list
/// (KEYS[2]) if it is there; 1 if it was.
static REQUEUE: std::sync::LazyLock<redis::Script> = std::sync::LazyLock::new(|| {
    redis::Script::new(
        r"
if redis.call('LREM', KEYS[1], 1, ARGV[1]) == 1 then
  redis.call('LPUSH', KEYS[2], ARGV[1])
  return 1
end
return 0
",
    )
});

/// Redis-backed broker (`REDIS_URL`).
#[derive(Clone)]
pub struct RedisBroker {
    opener: Opener,
    conn: Conn,
    sorted_set: String,
    /// How `vcon:{uuid}` is written (reads take both forms).
    form: DocumentForm,
    /// Whether the server refused the wrap-up script (an ACL without
    /// `@scripting`, a service without Lua): wrap-ups then go step by step.
    scripts_refused: Arc<AtomicBool>,
}

impl RedisBroker {
    /// Connect to `url` (e.g. `redis://127.0.0.1:6379/0`); a cluster node's URL
    /// connects to the whole cluster. Commands wait up to [`DEFAULT_COMMAND_TIMEOUT`].
    pub async fn connect(url: &str) -> Result<Self> {
        Self::connect_with_timeout(url, DEFAULT_COMMAND_TIMEOUT).await
    }

    /// Connect to `url`; a command (other than a worker's blocking pop) that gets
    /// no answer within `command_timeout` fails as unavailable, so a Redis that
    /// stopped answering gives the API a quick 503 instead of a hang.
    pub async fn connect_with_timeout(url: &str, command_timeout: Duration) -> Result<Self> {
        Self::connect_with(url, command_timeout, &RedisTls::default()).await
    }

    /// Connect to `url` with `command_timeout` (see [`Self::connect_with_timeout`])
    /// and, for `rediss://`, the TLS files in `tls` (the URL's own redis-py
    /// parameters come first).
    pub async fn connect_with(url: &str, command_timeout: Duration, tls: &RedisTls) -> Result<Self> {
        let (opener, conn) = Opener::connect(url, command_timeout, tls).await.op("connect")?;
        if conn.is_cluster() {
            // (Not the URL: it may hold a password.)
            tracing::info!("connected to a Redis Cluster");
        }
        Ok(Self { opener, conn, sorted_set: "vcons".into(), form: DocumentForm::Text, scripts_refused: Arc::default() })
    }

    /// Keep `vcon:{uuid}` as RedisJSON when `mode` says so (by default when the
    /// server has the module; see `redis_json`).
    pub async fn with_json(mut self, mode: JsonMode) -> Result<Self> {
        self.form = redis_json::choose(&self.conn, mode).await.op("detect RedisJSON")?.ok_or_else(|| {
            BrokerError::Unsupported(
                "CONSERVER_REDIS_JSON=on, but this Redis has no RedisJSON module (MODULE LIST does not name \
                 ReJSON and JSON.GET is refused): use Redis Stack or a Redis with the JSON module, or set \
                 CONSERVER_REDIS_JSON=auto"
                    .into(),
            )
        })?;
        if self.form == DocumentForm::Json {
            tracing::info!("vCons are kept as RedisJSON documents (the Python server's form on Redis Stack)");
        }
        Ok(self)
    }

    /// How `vcon:{uuid}` is written.
    pub fn document_form(&self) -> DocumentForm {
        self.form
    }

    /// Rewrite `vcon:{uuid}` in `form` in one atomic step, keeping its TTL
    /// (`conserver migrate`).
    pub async fn convert_vcon(&self, uuid: &str, form: DocumentForm) -> Result<Conversion> {
        redis_json::convert(&self.conn, &vcon_key(uuid), form).await.op("convert vcon")
    }

    /// Whether this broker talks to a Redis Cluster.
    pub fn is_cluster(&self) -> bool {
        self.conn.is_cluster()
    }

    /// Use `name` for the sorted set listing vCons (`VCON_SORTED_SET_NAME`).
    pub fn with_sorted_set(mut self, name: &str) -> Self {
        self.sorted_set = name.to_string();
        self
    }

    fn conn(&self) -> Conn {
        self.conn.clone()
    }
}

#[async_trait]
impl Broker for RedisBroker {
    fn backend(&self) -> &'static str {
        "redis"
    }

    /// `PING`, then a tiny write: a Redis out of memory (or read-only) answers
    /// `PING` but refuses every write, and is not healthy.
    async fn ping(&self) -> Result<()> {
        redis::cmd("PING").query_async::<String>(&mut self.conn()).await.op("PING")?;
        redis::cmd("SET")
            .arg("conserver:health")
            .arg(std::process::id())
            .arg("EX")
            .arg(60)
            .query_async::<()>(&mut self.conn())
            .await
            .op("write probe (SET conserver:health)")?;
        Ok(())
    }

    async fn durability_warnings(&self) -> Result<Vec<String>> {
        let info = |section: &'static str| async move {
            let text: String = redis::cmd("INFO").arg(section).query_async(&mut self.conn()).await.op("INFO")?;
            Ok::<_, BrokerError>(text)
        };
        let field = |text: &str, name: &str| {
            text.lines().find_map(|line| line.strip_prefix(name)?.strip_prefix(':')).map(|v| v.trim().to_string())
        };
        let mut warnings = Vec::new();
        let memory = info("memory").await?;
        if let Some(policy) = field(&memory, "maxmemory_policy")
            && policy != "noeviction"
        {
            warnings.push(format!(
                "Redis evicts keys under memory pressure (maxmemory-policy {policy}): queued uuids and vCons not yet \
                 in a storage can be dropped; set maxmemory-policy noeviction"
            ));
        }
        let persistence = info("persistence").await?;
        let aof = field(&persistence, "aof_enabled").is_some_and(|v| v == "1");
        // RDB snapshots: `CONFIG GET save` (managed Redis may refuse CONFIG; then
        // the last snapshot's time tells whether snapshots are taken at all).
        let rdb = match redis::cmd("CONFIG").arg("GET").arg("save").query_async::<Vec<String>>(&mut self.conn()).await {
            Ok(pair) => pair.get(1).is_some_and(|rules| !rules.trim().is_empty()),
            Err(_) => {
                field(&persistence, "rdb_saves").is_some_and(|n| n != "0")
                    || field(&persistence, "rdb_last_save_time").is_some_and(|t| t != "0")
            }
        };
        if !aof && !rdb {
            warnings.push(
                "Redis keeps no AOF and takes no RDB snapshots: a Redis restart loses every queued and stored vCon it \
                 holds; enable appendonly yes (or snapshots)"
                    .into(),
            );
        } else if !aof {
            warnings.push(
                "Redis persists by RDB snapshots only: a crash loses what was acknowledged since the last snapshot; \
                 enable appendonly yes"
                    .into(),
            );
        }
        Ok(warnings)
    }

    async fn memory_used_bytes(&self) -> Result<Option<u64>> {
        let info: String = redis::cmd("INFO").arg("memory").query_async(&mut self.conn()).await.op("INFO memory")?;
        Ok(info.lines().find_map(|line| line.strip_prefix("used_memory:")).and_then(|v| v.trim().parse().ok()))
    }

    async fn finish(&self, worker: &str, item: &Popped, finish: &Finish) -> Result<()> {
        if self.conn.is_cluster() || self.scripts_refused.load(Ordering::Relaxed) {
            return crate::finish_step_by_step(self, worker, item, finish).await;
        }
        match crate::redis_scripts::finish(&self.conn, self.form, &self.sorted_set, worker, item, finish).await {
            // A refused script ran nothing: the same steps one by one.
            Err(error) if crate::redis_scripts::is_refusal(&error) => {
                tracing::warn!(%error, "Redis refused the wrap-up script; wrapping up each vCon step by step from now on");
                self.scripts_refused.store(true, Ordering::Relaxed);
                crate::finish_step_by_step(self, worker, item, finish).await
            }
            other => other.op("finish vcon"),
        }
    }
}

impl RedisBroker {
    /// The commands that put `uuid` in the vCon list and its party sets.
    fn index_commands(&self, batch: &mut Batch, uuid: &str, score: f64, terms: &[String], terms_ttl_secs: u64) {
        // One member form (the bare uuid); drop the Python server's `vcon:` form.
        batch
            .add(redis::Cmd::zadd(&self.sorted_set, uuid, score))
            .add(redis::Cmd::zrem(&self.sorted_set, vcon_key(uuid)));
        for term in terms {
            batch.add(redis::Cmd::sadd(term, uuid));
            if terms_ttl_secs > 0 {
                batch.add(redis::Cmd::expire(term, crate::clamped_ttl(terms_ttl_secs)));
            }
        }
    }
}

/// A sorted-set member as a uuid: the Python server wrote both `vcon:{uuid}` and the
/// bare uuid; both read as the uuid.
fn member_uuid(member: &str) -> &str {
    member.strip_prefix("vcon:").unwrap_or(member)
}
