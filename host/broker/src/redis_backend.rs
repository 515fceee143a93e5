//! The Redis backend, with the Python conserver's key layout, on a single server or
//! a Redis Cluster. One multiplexed, auto-reconnecting connection serves every
//! non-blocking command; each popper has its own connection because a blocking
//! `BLMOVE` holds its connection. Keys moved between atomically (an ingress list and
//! its processing lists) share a hash slot; everything else that spans slots is
//! sent as separate commands on a cluster (see `redis_conn`).

use std::sync::atomic::{AtomicUsize, Ordering};
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
    Broker, BrokerError, CacheWrite, Finish, Popped, Popper, Result, Taken, Ttl, WORKERS_KEY, dlq_list,
    dlq_reasons_key, heartbeat_key, processing_list, vcon_key,
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
        Ok(Self { opener, conn, sorted_set: "vcons".into(), form: DocumentForm::Text })
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

    async fn push_trace_context(&self, list: &str, uuid: &str, context_json: &str, ttl_secs: u64) -> Result<()> {
        let key = crate::trace_context_key(list, uuid);
        let ttl = crate::clamped_ttl(ttl_secs);
        redis::pipe()
            .rpush(&key, context_json)
            .ignore()
            .expire(&key, ttl)
            .ignore()
            .query_async::<()>(&mut self.conn())
            .await
            .op("RPUSH context")
    }

    async fn pop_trace_context(&self, list: &str, uuid: &str) -> Result<Option<String>> {
        self.conn().lpop(crate::trace_context_key(list, uuid), None).await.op("LPOP context")
    }

    async fn push(&self, list: &str, uuids: &[String]) -> Result<()> {
        if uuids.is_empty() {
            return Ok(());
        }
        self.conn().rpush::<_, _, ()>(list, uuids).await.op("RPUSH")
    }

    async fn push_front(&self, list: &str, uuid: &str) -> Result<()> {
        self.conn().lpush::<_, _, ()>(list, uuid).await.op("LPUSH")
    }

    async fn pop_front(&self, list: &str) -> Result<Option<String>> {
        self.conn().lpop(list, None).await.op("LPOP")
    }

    async fn pop_back(&self, list: &str) -> Result<Option<String>> {
        self.conn().rpop(list, None).await.op("RPOP")
    }

    async fn pop_front_many(&self, list: &str, count: u64) -> Result<Vec<String>> {
        if count == 0 {
            return Ok(Vec::new());
        }
        let popped: Option<Vec<String>> =
            redis::cmd("LPOP").arg(list).arg(count).query_async(&mut self.conn()).await.op("LPOP count")?;
        Ok(popped.unwrap_or_default())
    }

    async fn len(&self, list: &str) -> Result<u64> {
        self.conn().llen(list).await.op("LLEN")
    }

    async fn peek(&self, list: &str, count: u64) -> Result<Vec<String>> {
        if count == 0 {
            return Ok(Vec::new());
        }
        let last = isize::try_from(count - 1).unwrap_or(isize::MAX);
        self.conn().lrange(list, 0, last).await.op("LRANGE")
    }

    async fn remove_items(&self, list: &str, uuids: &[String]) -> Result<u64> {
        if uuids.is_empty() {
            return Ok(0);
        }
        let mut pipe = redis::pipe();
        for uuid in uuids {
            pipe.lrem(list, 1, uuid);
        }
        let removed: Vec<u64> = pipe.query_async(&mut self.conn()).await.op("LREM")?;
        Ok(removed.iter().sum())
    }

    async fn range(&self, list: &str) -> Result<Vec<String>> {
        self.conn().lrange(list, 0, -1).await.op("LRANGE")
    }

    async fn popper(&self, worker: &str) -> Result<Box<dyn Popper>> {
        let conn = self.opener.open(MAX_BLOCK + Duration::from_secs(5)).await.op("connect popper")?;
        let scripted = !conn.is_cluster();
        Ok(Box::new(RedisPopper {
            conn,
            worker: worker.to_string(),
            next: AtomicUsize::new(0),
            idle: Duration::ZERO,
            scripted,
        }))
    }

    async fn ack(&self, worker: &str, item: &Popped) -> Result<()> {
        self.conn().lrem::<_, _, ()>(processing_list(&item.list, worker), 1, &item.uuid).await.op("LREM processing")
    }

    async fn finish(&self, worker: &str, item: &Popped, finish: &Finish) -> Result<()> {
        if self.conn.is_cluster() {
            return crate::finish_step_by_step(self, worker, item, finish).await;
        }
        crate::redis_scripts::finish(&self.conn, self.form, &self.sorted_set, worker, item, finish)
            .await
            .op("finish vcon")
    }

    async fn requeue(&self, worker: &str, item: &Popped) -> Result<()> {
        // LMOVE of the exact entry is not expressible: a script removes it and
        // pushes it only if it was there, so a retried requeue (its first answer
        // lost) or one after a reaper returned the item never queues it twice.
        // Both keys share a hash slot.
        REQUEUE
            .key(processing_list(&item.list, worker))
            .key(&item.list)
            .arg(&item.uuid)
            .invoke_async::<i64>(&mut self.conn())
            .await
            .op("requeue")
            .map(drop)
    }

    async fn heartbeat(&self, worker: &str, lists: &[String], ttl_secs: u64) -> Result<()> {
        let lists_json = serde_json::to_string(lists).map_err(|e| BrokerError::Corrupt(e.to_string()))?;
        let mut batch = Batch::default();
        batch
            .add(redis::Cmd::set_ex(heartbeat_key(worker), &lists_json, ttl_secs.clamp(1, crate::MAX_TTL_SECS)))
            .add(redis::Cmd::hset(WORKERS_KEY, worker, &lists_json));
        batch.run(&self.conn).await.op("heartbeat").map(drop)
    }

    async fn dead_workers(&self, live: &[String]) -> Result<Vec<String>> {
        let mut conn = self.conn();
        let workers: Vec<String> = conn.hkeys(WORKERS_KEY).await.op("HKEYS workers")?;
        let mut dead = Vec::new();
        for worker in workers {
            if live.contains(&worker) {
                continue;
            }
            let alive: bool = conn.exists(heartbeat_key(&worker)).await.op("EXISTS heartbeat")?;
            if !alive {
                dead.push(worker);
            }
        }
        Ok(dead)
    }

    async fn reclaim_worker(&self, worker: &str) -> Result<u64> {
        let mut conn = self.conn();
        // A worker whose heartbeat came back since it was found dead keeps its items.
        let alive: bool = conn.exists(heartbeat_key(worker)).await.op("EXISTS heartbeat")?;
        if alive {
            return Ok(0);
        }
        let lists_json: Option<String> = conn.hget(WORKERS_KEY, worker).await.op("HGET workers")?;
        let lists: Vec<String> = lists_json.and_then(|json| serde_json::from_str(&json).ok()).unwrap_or_default();
        let mut returned = 0;
        for list in &lists {
            // Newest first onto the head, so the oldest ends up at the very head.
            loop {
                let moved: Option<String> = redis::cmd("LMOVE")
                    .arg(processing_list(list, worker))
                    .arg(list)
                    .arg("RIGHT")
                    .arg("LEFT")
                    .query_async(&mut conn)
                    .await
                    .op("LMOVE reclaim")?;
                match moved {
                    Some(uuid) => {
                        tracing::warn!(%worker, %list, vcon_uuid = %uuid, "returned a dead worker's vCon to its list");
                        returned += 1;
                    }
                    None => break,
                }
            }
        }
        // Forgotten only if still silent: a worker whose heartbeat came back
        // meanwhile keeps its registry entry, so it is found should it die later.
        let alive: bool = conn.exists(heartbeat_key(worker)).await.op("EXISTS heartbeat")?;
        if !alive {
            conn.hdel::<_, _, ()>(WORKERS_KEY, worker).await.op("HDEL worker")?;
        }
        Ok(returned)
    }

    async fn cache_get(&self, namespace: &str, key: &str) -> Result<Option<Vec<u8>>> {
        crate::link_cache::redis::get(&self.conn, namespace, key).await
    }

    async fn cache_set(
        &self,
        namespace: &str,
        key: &str,
        value: &[u8],
        ttl_secs: u64,
        quota_bytes: u64,
    ) -> Result<CacheWrite> {
        crate::link_cache::redis::set(&self.conn, namespace, key, value, ttl_secs, quota_bytes).await
    }

    async fn cache_delete(&self, namespace: &str, key: &str) -> Result<()> {
        crate::link_cache::redis::delete(&self.conn, namespace, key).await
    }

    async fn get_vcon(&self, uuid: &str) -> Result<Option<String>> {
        redis_json::get(&self.conn, &vcon_key(uuid), self.form).await.op("GET vcon")
    }

    async fn put_vcon(&self, uuid: &str, json: &str, ttl: Ttl) -> Result<()> {
        if self.form == DocumentForm::Json {
            return redis_json::put(&self.conn, &vcon_key(uuid), json, ttl).await.op("JSON.SET vcon");
        }
        let mut cmd = redis::cmd("SET");
        cmd.arg(vcon_key(uuid)).arg(json);
        match ttl {
            Ttl::Keep => cmd.arg("KEEPTTL"),
            Ttl::Secs(0) => &mut cmd,
            Ttl::Secs(secs) => cmd.arg("EX").arg(crate::clamped_ttl(secs)),
        };
        cmd.query_async::<()>(&mut self.conn()).await.op("SET vcon")
    }

    async fn delete_vcon(&self, uuid: &str) -> Result<bool> {
        let removed: u64 = self.conn().del(vcon_key(uuid)).await.op("DEL vcon")?;
        Ok(removed > 0)
    }

    async fn expire_vcon(&self, uuid: &str, secs: u64) -> Result<()> {
        let key = vcon_key(uuid);
        if secs == 0 {
            return self.conn().persist::<_, ()>(key).await.op("PERSIST vcon");
        }
        let secs = crate::clamped_ttl(secs);
        self.conn().expire::<_, ()>(key, secs).await.op("EXPIRE vcon")
    }

    async fn dead_letter(&self, ingress: &str, mut reason: DlqReason, expiry_secs: u64) -> Result<()> {
        let reasons_key = dlq_reasons_key(ingress);
        let previous: Option<String> = self.conn().hget(&reasons_key, &reason.uuid).await.op("HGET dlq reason")?;
        let earlier = previous.and_then(|text| serde_json::from_str::<DlqReason>(&text).ok()).map_or(0, |r| r.attempts);
        reason.attempts = earlier + 1;
        let text = serde_json::to_string(&reason).map_err(|e| BrokerError::Corrupt(e.to_string()))?;
        let mut batch = Batch::default();
        batch.add(redis::Cmd::rpush(dlq_list(ingress), &reason.uuid)).add(redis::Cmd::hset(
            &reasons_key,
            &reason.uuid,
            text,
        ));
        if expiry_secs > 0 {
            batch.add(redis::Cmd::expire(vcon_key(&reason.uuid), crate::clamped_ttl(expiry_secs)));
        }
        batch.run(&self.conn).await.op("dead-letter").map(drop)
    }

    async fn dlq_reasons(&self, ingress: &str) -> Result<Vec<DlqReason>> {
        let uuids = self.range(&dlq_list(ingress)).await?;
        if uuids.is_empty() {
            return Ok(Vec::new());
        }
        let texts: Vec<Option<String>> = redis::cmd("HMGET")
            .arg(dlq_reasons_key(ingress))
            .arg(&uuids)
            .query_async(&mut self.conn())
            .await
            .op("HMGET dlq reasons")?;
        Ok(texts.into_iter().flatten().filter_map(|t| serde_json::from_str(&t).ok()).collect())
    }

    async fn move_items(&self, from: &str, to: &str, count: u64) -> Result<u64> {
        let mut conn = self.conn();
        let mut moved = 0;
        if conn.is_cluster() && crate::keys::key_slot(from) != crate::keys::key_slot(to) {
            // Different slots: LMOVE is refused, so pop then push (not atomic).
            while moved < count {
                let Some(item): Option<String> = conn.lpop(from, None).await.op("LPOP")? else { break };
                if let Err(error) = conn.rpush::<_, _, ()>(to, &item).await {
                    let _ = conn.lpush::<_, _, ()>(from, &item).await;
                    return Err(BrokerError::Redis { operation: "RPUSH", source: error });
                }
                moved += 1;
            }
            return Ok(moved);
        }
        while moved < count {
            let item: Option<String> = redis::cmd("LMOVE")
                .arg(from)
                .arg(to)
                .arg("LEFT")
                .arg("RIGHT")
                .query_async(&mut conn)
                .await
                .op("LMOVE")?;
            if item.is_none() {
                break;
            }
            moved += 1;
        }
        Ok(moved)
    }

    async fn index_vcon(&self, uuid: &str, score: f64, terms: &[String], terms_ttl_secs: u64) -> Result<()> {
        let mut batch = Batch::default();
        self.index_commands(&mut batch, uuid, score, terms, terms_ttl_secs);
        batch.run(&self.conn).await.op("index vcon").map(drop)
    }

    async fn store_vcon(
        &self,
        uuid: &str,
        json: &str,
        ttl: Ttl,
        score: f64,
        terms: &[String],
        terms_ttl_secs: u64,
    ) -> Result<Option<String>> {
        if self.form == DocumentForm::Json {
            let mut index = Batch::default();
            self.index_commands(&mut index, uuid, score, terms, terms_ttl_secs);
            return redis_json::replace(&self.conn, &vcon_key(uuid), json, ttl, index).await.op("store vcon");
        }
        let mut set = redis::cmd("SET");
        set.arg(vcon_key(uuid)).arg(json);
        match ttl {
            Ttl::Keep => set.arg("KEEPTTL"),
            Ttl::Secs(0) => &mut set,
            Ttl::Secs(secs) => set.arg("EX").arg(crate::clamped_ttl(secs)),
        };
        set.arg("GET");
        let mut batch = Batch::default();
        batch.add(set);
        self.index_commands(&mut batch, uuid, score, terms, terms_ttl_secs);
        let replies = match batch.run(&self.conn).await {
            // A RedisJSON document is there (`SET … GET` refuses other types):
            // read it, then write over it.
            Err(error) if redis_json::is_wrong_type(&error) => {
                let previous = self.get_vcon(uuid).await?;
                self.put_vcon(uuid, json, ttl).await?;
                let mut index = Batch::default();
                self.index_commands(&mut index, uuid, score, terms, terms_ttl_secs);
                index.run(&self.conn).await.op("index vcon")?;
                return Ok(previous);
            }
            other => other.op("store vcon")?,
        };
        let previous = replies.into_iter().next().unwrap_or(Value::Nil);
        redis::from_redis_value(previous).map_err(redis::RedisError::from).op("store vcon reply")
    }

    async fn create_vcon(
        &self,
        uuid: &str,
        json: &str,
        ttl: Ttl,
        score: f64,
        terms: &[String],
        terms_ttl_secs: u64,
    ) -> Result<Option<String>> {
        // `SET NX` decides; only the writer that created the document indexes
        // it. An existing document that expires between the `SET` and the
        // `GET` makes the next round store this one.
        for _ in 0..3 {
            let created = if self.form == DocumentForm::Json {
                redis_json::create(&self.conn, &vcon_key(uuid), json).await.op("JSON.SET NX vcon")?
            } else {
                let mut set = redis::cmd("SET");
                set.arg(vcon_key(uuid)).arg(json).arg("NX");
                if let Ttl::Secs(secs @ 1..) = ttl {
                    set.arg("EX").arg(crate::clamped_ttl(secs));
                }
                let created: Option<String> = set.query_async(&mut self.conn()).await.op("SET NX vcon")?;
                created.is_some()
            };
            if created {
                let mut batch = Batch::default();
                if self.form == DocumentForm::Json
                    && let Ttl::Secs(secs @ 1..) = ttl
                {
                    // `JSON.SET` takes no TTL: set with the index, in the same round trip.
                    batch.add(redis::Cmd::expire(vcon_key(uuid), crate::clamped_ttl(secs)));
                }
                self.index_commands(&mut batch, uuid, score, terms, terms_ttl_secs);
                batch.run(&self.conn).await.op("index vcon")?;
                return Ok(None);
            }
            if let Some(existing) = self.get_vcon(uuid).await? {
                return Ok(Some(existing));
            }
        }
        Err(BrokerError::Contended(format!(
            "vcon:{uuid} kept appearing and expiring while it was created; send it again"
        )))
    }

    async fn unindex_vcon(&self, uuid: &str, terms: &[String]) -> Result<()> {
        let mut batch = Batch::default();
        batch.add(redis::Cmd::zrem(&self.sorted_set, &[uuid.to_string(), vcon_key(uuid)]));
        for term in terms {
            batch.add(redis::Cmd::srem(term, uuid));
        }
        batch.run(&self.conn).await.op("unindex vcon").map(drop)
    }

    async fn list_vcons(&self, min: Option<f64>, max: Option<f64>, offset: u64, count: u64) -> Result<Vec<String>> {
        let bound = |b: Option<f64>, open: &str| b.map_or_else(|| open.to_string(), |v| v.to_string());
        let members: Vec<String> = redis::cmd("ZREVRANGEBYSCORE")
            .arg(&self.sorted_set)
            .arg(bound(max, "+inf"))
            .arg(bound(min, "-inf"))
            .arg("LIMIT")
            .arg(i64::try_from(offset).unwrap_or(i64::MAX))
            .arg(i64::try_from(count).unwrap_or(i64::MAX))
            .query_async(&mut self.conn())
            .await
            .op("ZREVRANGEBYSCORE")?;
        let mut seen = std::collections::HashSet::new();
        Ok(members.iter().map(|m| member_uuid(m).to_string()).filter(|u| seen.insert(u.clone())).collect())
    }

    async fn search(&self, terms: &[String]) -> Result<Vec<String>> {
        if terms.is_empty() {
            return Ok(Vec::new());
        }
        if !self.conn.is_cluster() {
            return self.conn().sinter(terms).await.op("SINTER");
        }
        // The sets live in different slots: intersect here.
        let mut result: Option<std::collections::HashSet<String>> = None;
        for term in terms {
            let members: std::collections::HashSet<String> = self.conn().smembers(term).await.op("SMEMBERS")?;
            result = Some(match result {
                None => members,
                Some(so_far) => so_far.intersection(&members).cloned().collect(),
            });
        }
        Ok(result.unwrap_or_default().into_iter().collect())
    }

    async fn vcon_uuids(&self) -> Result<Vec<String>> {
        let mut conn = self.conn();
        if let Conn::Cluster(cluster, _) = &mut conn {
            // SCAN cursors are per node; ask every primary and combine the answers.
            let routing =
                RoutingInfo::MultiNode((MultipleNodeRoutingInfo::AllMasters, Some(ResponsePolicy::CombineArrays)));
            let mut keys_cmd = redis::cmd("KEYS");
            keys_cmd.arg("vcon:*");
            let reply = cluster.route_command(keys_cmd, routing).await.op("KEYS on every primary")?;
            let keys: Vec<String> = redis::from_redis_value(reply).map_err(redis::RedisError::from).op("KEYS reply")?;
            let mut uuids: Vec<String> =
                keys.into_iter().filter_map(|k| k.strip_prefix("vcon:").map(String::from)).collect();
            uuids.sort();
            uuids.dedup();
            return Ok(uuids);
        }
        let mut cursor: u64 = 0;
        let mut uuids = Vec::new();
        loop {
            let (next, keys): (u64, Vec<String>) = redis::cmd("SCAN")
                .arg(cursor)
                .arg("MATCH")
                .arg("vcon:*")
                .arg("COUNT")
                .arg(1000)
                .query_async(&mut conn)
                .await
                .op("SCAN")?;
            uuids.extend(keys.into_iter().filter_map(|k| k.strip_prefix("vcon:").map(String::from)));
            if next == 0 {
                break;
            }
            cursor = next;
        }
        uuids.sort();
        uuids.dedup();
        Ok(uuids)
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

/// Takes uuids with the pop script (a server) or `BLMOVE` / round-robin `LMOVE`
/// (a cluster, or a server that refuses the script).
struct RedisPopper {
    conn: Conn,
    worker: String,
    next: AtomicUsize,
    idle: Duration,
    /// Whether to pop with the script that reads the document too.
    scripted: bool,
}

impl RedisPopper {
    /// One non-blocking try of every list (from the round-robin position) with
    /// the pop script. A refusal that is not about reaching Redis turns the
    /// script off for this popper (and is returned, so the worker checks for an
    /// item the script may have moved).
    async fn try_scripted(&mut self, lists: &[String]) -> Result<Option<Taken>> {
        let start = self.next.fetch_add(1, Ordering::Relaxed);
        let ordered: Vec<&String> = (0..lists.len()).map(|offset| &lists[(start + offset) % lists.len()]).collect();
        let with_context = conserver_core::trace_context::enabled();
        match crate::redis_scripts::pop(&mut self.conn, &ordered, &self.worker, with_context).await {
            Ok(taken) => Ok(taken),
            Err(error) if error.is_io_error() || error.is_timeout() || error.is_connection_dropped() => {
                Err(error).op("pop script")
            }
            Err(error) => {
                tracing::warn!(worker = %self.worker, %error,
                    "Redis refused the pop script; popping with LMOVE and reading each vCon separately from now on");
                self.scripted = false;
                Err(error).op("pop script")
            }
        }
    }
}

#[async_trait]
impl Popper for RedisPopper {
    async fn pop(&mut self, lists: &[String], wait: Duration) -> Result<Option<Taken>> {
        if lists.is_empty() {
            tokio::time::sleep(wait).await;
            return Ok(None);
        }
        let deadline = tokio::time::Instant::now() + wait;
        while self.scripted {
            if let Some(taken) = self.try_scripted(lists).await? {
                self.idle = Duration::ZERO;
                return Ok(Some(taken));
            }
            if lists.len() == 1 {
                // One list: wait for it with `BLMOVE` below.
                break;
            }
            // Nothing anywhere: back off from 1 ms up to 50 ms while idle.
            self.idle = (self.idle * 2).clamp(Duration::from_millis(1), Duration::from_millis(50));
            let now = tokio::time::Instant::now();
            if now >= deadline {
                return Ok(None);
            }
            tokio::time::sleep(self.idle.min(deadline - now)).await;
        }
        if let [list] = lists {
            let block = wait.min(MAX_BLOCK).as_secs_f64().max(0.01);
            let moved: Option<String> = redis::cmd("BLMOVE")
                .arg(list)
                .arg(processing_list(list, &self.worker))
                .arg("LEFT")
                .arg("RIGHT")
                .arg(block)
                .query_async(&mut self.conn)
                .await
                .op("BLMOVE")?;
            return Ok(moved.map(|uuid| Popped { list: list.clone(), uuid }.into()));
        }
        loop {
            let start = self.next.fetch_add(1, Ordering::Relaxed);
            for offset in 0..lists.len() {
                let list = &lists[(start + offset) % lists.len()];
                let moved: Option<String> = redis::cmd("LMOVE")
                    .arg(list)
                    .arg(processing_list(list, &self.worker))
                    .arg("LEFT")
                    .arg("RIGHT")
                    .query_async(&mut self.conn)
                    .await
                    .op("LMOVE")?;
                if let Some(uuid) = moved {
                    self.idle = Duration::ZERO;
                    return Ok(Some(Popped { list: list.clone(), uuid }.into()));
                }
            }
            // Nothing anywhere: back off from 1 ms up to 50 ms while idle.
            self.idle = (self.idle * 2).clamp(Duration::from_millis(1), Duration::from_millis(50));
            let now = tokio::time::Instant::now();
            if now >= deadline {
                return Ok(None);
            }
            tokio::time::sleep(self.idle.min(deadline - now)).await;
        }
    }
}
