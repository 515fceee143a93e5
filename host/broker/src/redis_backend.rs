//! The Redis backend, with the Python conserver's key layout. One multiplexed,
//! auto-reconnecting connection serves every non-blocking command; each popper has
//! its own connection because a blocking `BLMOVE` holds its connection.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use conserver_core::DlqReason;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{AsyncCommands, Client};

use crate::error::RedisContext;
use crate::{Broker, BrokerError, Popped, Popper, Result, Ttl, dlq_list, dlq_reasons_key, processing_list, vcon_key};

/// Longest a popper blocks in one `BLMOVE` before re-checking shutdown.
const MAX_BLOCK: Duration = Duration::from_secs(1);

/// Redis-backed broker (`REDIS_URL`).
#[derive(Clone)]
pub struct RedisBroker {
    client: Client,
    conn: ConnectionManager,
}

impl RedisBroker {
    /// Connect to `url` (e.g. `redis://127.0.0.1:6379/0`).
    pub async fn connect(url: &str) -> Result<Self> {
        let client = Client::open(url).op("open client")?;
        let config = ConnectionManagerConfig::new()
            .set_response_timeout(Some(Duration::from_secs(10)))
            .set_connection_timeout(Some(Duration::from_secs(5)))
            .set_max_delay(Duration::from_secs(2));
        let conn = ConnectionManager::new_with_config(client.clone(), config).await.op("connect")?;
        Ok(Self { client, conn })
    }

    fn conn(&self) -> ConnectionManager {
        self.conn.clone()
    }
}

#[async_trait]
impl Broker for RedisBroker {
    fn backend(&self) -> &'static str {
        "redis"
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

    async fn len(&self, list: &str) -> Result<u64> {
        self.conn().llen(list).await.op("LLEN")
    }

    async fn range(&self, list: &str) -> Result<Vec<String>> {
        self.conn().lrange(list, 0, -1).await.op("LRANGE")
    }

    async fn popper(&self, worker: &str) -> Result<Box<dyn Popper>> {
        let config = ConnectionManagerConfig::new()
            .set_response_timeout(Some(MAX_BLOCK + Duration::from_secs(5)))
            .set_connection_timeout(Some(Duration::from_secs(5)))
            .set_max_delay(Duration::from_secs(2));
        let conn = ConnectionManager::new_with_config(self.client.clone(), config).await.op("connect popper")?;
        Ok(Box::new(RedisPopper { conn, worker: worker.to_string(), next: AtomicUsize::new(0), idle: Duration::ZERO }))
    }

    async fn ack(&self, worker: &str, item: &Popped) -> Result<()> {
        self.conn().lrem::<_, _, ()>(processing_list(&item.list, worker), 1, &item.uuid).await.op("LREM processing")
    }

    async fn requeue(&self, worker: &str, item: &Popped) -> Result<()> {
        // LMOVE of the exact entry is not expressible; a MULTI keeps the two steps
        // together (both keys share a hash slot).
        redis::pipe()
            .atomic()
            .lrem(processing_list(&item.list, worker), 1, &item.uuid)
            .lpush(&item.list, &item.uuid)
            .query_async::<()>(&mut self.conn())
            .await
            .op("requeue")
    }

    async fn get_vcon(&self, uuid: &str) -> Result<Option<String>> {
        self.conn().get(vcon_key(uuid)).await.op("GET vcon")
    }

    async fn put_vcon(&self, uuid: &str, json: &str, ttl: Ttl) -> Result<()> {
        let mut cmd = redis::cmd("SET");
        cmd.arg(vcon_key(uuid)).arg(json);
        match ttl {
            Ttl::Keep => cmd.arg("KEEPTTL"),
            Ttl::Secs(0) => &mut cmd,
            Ttl::Secs(secs) => cmd.arg("EX").arg(secs),
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
        let secs = i64::try_from(secs).unwrap_or(i64::MAX);
        self.conn().expire::<_, ()>(key, secs).await.op("EXPIRE vcon")
    }

    async fn dead_letter(&self, ingress: &str, mut reason: DlqReason, expiry_secs: u64) -> Result<()> {
        let reasons_key = dlq_reasons_key(ingress);
        let previous: Option<String> = self.conn().hget(&reasons_key, &reason.uuid).await.op("HGET dlq reason")?;
        let earlier = previous.and_then(|text| serde_json::from_str::<DlqReason>(&text).ok()).map_or(0, |r| r.attempts);
        reason.attempts = earlier + 1;
        let text = serde_json::to_string(&reason).map_err(|e| BrokerError::Corrupt(e.to_string()))?;
        let mut pipe = redis::pipe();
        pipe.rpush(dlq_list(ingress), &reason.uuid).ignore().hset(&reasons_key, &reason.uuid, text).ignore();
        if expiry_secs > 0 {
            pipe.expire(vcon_key(&reason.uuid), i64::try_from(expiry_secs).unwrap_or(i64::MAX)).ignore();
        }
        pipe.query_async::<()>(&mut self.conn()).await.op("dead-letter")
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
}

/// Takes uuids with `BLMOVE` (one list) or round-robin `LMOVE` (several lists).
struct RedisPopper {
    conn: ConnectionManager,
    worker: String,
    next: AtomicUsize,
    idle: Duration,
}

#[async_trait]
impl Popper for RedisPopper {
    async fn pop(&mut self, lists: &[String], wait: Duration) -> Result<Option<Popped>> {
        if lists.is_empty() {
            tokio::time::sleep(wait).await;
            return Ok(None);
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
            return Ok(moved.map(|uuid| Popped { list: list.clone(), uuid }));
        }
        let deadline = tokio::time::Instant::now() + wait;
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
                    return Ok(Some(Popped { list: list.clone(), uuid }));
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
