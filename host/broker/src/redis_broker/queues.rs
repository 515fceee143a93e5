//! The Redis backend's lists: pushes and pops, the reliable pop into a
//! worker's processing list, ack and requeue, heartbeats and the reaper's view,
//! and the trace contexts left for the next chain.

#[allow(clippy::wildcard_imports)]
use super::*;

#[async_trait]
impl Queues for RedisBroker {
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
    /// Nothing anywhere: back off from 1 ms up to 50 ms while idle, never past
    /// `deadline`; false once it has passed.
    async fn idle_until(&mut self, deadline: tokio::time::Instant) -> bool {
        self.idle = (self.idle * 2).clamp(Duration::from_millis(1), Duration::from_millis(50));
        let now = tokio::time::Instant::now();
        if now >= deadline {
            return false;
        }
        tokio::time::sleep(self.idle.min(deadline - now)).await;
        true
    }

    /// One non-blocking try of every list (from the round-robin position) with
    /// the pop script. A failure that is not Redis being unavailable for now
    /// turns the script off for this popper; it is returned either way, so the
    /// worker checks for an item the script may have moved before it failed.
    async fn try_scripted(&mut self, lists: &[String]) -> Result<Option<Taken>> {
        let start = self.next.fetch_add(1, Ordering::Relaxed);
        let ordered: Vec<&String> = (0..lists.len()).map(|offset| &lists[(start + offset) % lists.len()]).collect();
        let with_context = conserver_core::trace_context::enabled();
        match crate::redis_scripts::pop(&mut self.conn, &ordered, &self.worker, with_context).await {
            Ok(taken) => Ok(taken),
            Err(error) => {
                let error = BrokerError::Redis { operation: "pop script", source: error };
                // Trouble reaching Redis, or a Redis that refuses writes for now
                // (OOM, a replica, loading): the worker backs off and tries again.
                if !error.is_unavailable() {
                    tracing::warn!(worker = %self.worker, %error,
                        "Redis refused the pop script; popping with LMOVE and reading each vCon separately from now on");
                    self.scripted = false;
                }
                Err(error)
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
            if !self.idle_until(deadline).await {
                return Ok(None);
            }
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
            if !self.idle_until(deadline).await {
                return Ok(None);
            }
        }
    }
}
