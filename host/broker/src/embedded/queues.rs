//! The embedded backend's lists: pushes and pops, the reliable pop into a
//! worker's processing list, ack and requeue, heartbeats and the reaper's view,
//! and the trace contexts left for the next chain.

#[allow(clippy::wildcard_imports)]
use super::*;

#[async_trait]
impl Queues for EmbeddedBroker {
    async fn push_trace_context(&self, list: &str, uuid: &str, context_json: &str, ttl_secs: u64) -> Result<()> {
        self.contexts.push(crate::trace_context_key(list, uuid), context_json, ttl_secs);
        Ok(())
    }

    async fn pop_trace_context(&self, list: &str, uuid: &str) -> Result<Option<String>> {
        Ok(self.contexts.pop(&crate::trace_context_key(list, uuid)))
    }

    async fn push(&self, list: &str, uuids: &[String]) -> Result<()> {
        self.tracked(async {
            if uuids.is_empty() {
                return Ok(());
            }
            let mut tx = self.writer.begin().await.op("begin push")?;
            for uuid in uuids {
                push_in(&mut tx, list, uuid).await?;
            }
            tx.commit().await.op("commit push")?;
            self.pushed.notify_waiters();
            Ok(())
        })
        .await
    }

    async fn push_front(&self, list: &str, uuid: &str) -> Result<()> {
        sqlx::query(
            "INSERT INTO list_items (list, pos, item)
             SELECT ?1, COALESCE(MIN(pos), 0) - 1, ?2 FROM list_items WHERE list = ?1",
        )
        .bind(list)
        .bind(uuid)
        .execute(&self.writer)
        .await
        .op("push front")?;
        self.pushed.notify_waiters();
        Ok(())
    }

    async fn pop_front(&self, list: &str) -> Result<Option<String>> {
        self.pop_end(list, "ASC").await
    }

    async fn pop_back(&self, list: &str) -> Result<Option<String>> {
        self.pop_end(list, "DESC").await
    }

    async fn pop_front_many(&self, list: &str, count: u64) -> Result<Vec<String>> {
        if count == 0 {
            return Ok(Vec::new());
        }
        // One statement, so it is atomic and takes the write lock up front.
        let rows = sqlx::query(
            "DELETE FROM list_items WHERE id IN (SELECT id FROM list_items WHERE list = ?1 ORDER BY pos LIMIT ?2)
             RETURNING pos, item",
        )
        .bind(list)
        .bind(i64::try_from(count).unwrap_or(i64::MAX))
        .fetch_all(&self.writer)
        .await
        .op("pop")?;
        let mut popped: Vec<(i64, String)> = rows.iter().map(|row| (row.get(0), row.get(1))).collect();
        popped.sort_by_key(|(pos, _)| *pos);
        Ok(popped.into_iter().map(|(_, item)| item).collect())
    }

    async fn len(&self, list: &str) -> Result<u64> {
        let count: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM list_items WHERE list = ?1")
            .bind(list)
            .fetch_one(&self.reader)
            .await
            .op("length")?;
        Ok(u64::try_from(count).unwrap_or(0))
    }

    async fn peek(&self, list: &str, count: u64) -> Result<Vec<String>> {
        sqlx::query_scalar("SELECT item FROM list_items WHERE list = ?1 ORDER BY pos LIMIT ?2")
            .bind(list)
            .bind(i64::try_from(count).unwrap_or(i64::MAX))
            .fetch_all(&self.reader)
            .await
            .op("peek")
    }

    async fn remove_items(&self, list: &str, uuids: &[String]) -> Result<u64> {
        let mut removed = 0;
        for uuid in uuids {
            let result = sqlx::query(
                "DELETE FROM list_items WHERE id = (SELECT id FROM list_items WHERE list = ?1 AND item = ?2 ORDER BY pos LIMIT 1)",
            )
            .bind(list)
            .bind(uuid)
            .execute(&self.writer)
            .await
            .op("remove item")?;
            removed += result.rows_affected();
        }
        Ok(removed)
    }

    async fn range(&self, list: &str) -> Result<Vec<String>> {
        sqlx::query_scalar("SELECT item FROM list_items WHERE list = ?1 ORDER BY pos")
            .bind(list)
            .fetch_all(&self.reader)
            .await
            .op("range")
    }

    async fn popper(&self, worker: &str) -> Result<Box<dyn Popper>> {
        Ok(Box::new(EmbeddedPopper { broker: self.clone(), worker: worker.to_string(), next: AtomicUsize::new(0) }))
    }

    async fn ack(&self, worker: &str, item: &Popped) -> Result<()> {
        self.remove_one(&processing_list(&item.list, worker), &item.uuid).await
    }

    async fn requeue(&self, worker: &str, item: &Popped) -> Result<()> {
        let processing = processing_list(&item.list, worker);
        let mut tx = self.writer.begin().await.op("begin requeue")?;
        let removed = sqlx::query("DELETE FROM list_items WHERE id = (SELECT id FROM list_items WHERE list = ?1 AND item = ?2 ORDER BY pos LIMIT 1)")
            .bind(&processing)
            .bind(&item.uuid)
            .execute(&mut *tx)
            .await
            .op("requeue remove")?
            .rows_affected();
        if removed == 0 {
            // Not held (a retried requeue): pushing it would queue it twice.
            tx.commit().await.op("commit requeue")?;
            return Ok(());
        }
        sqlx::query(
            "INSERT INTO list_items (list, pos, item)
             SELECT ?1, COALESCE(MIN(pos), 0) - 1, ?2 FROM list_items WHERE list = ?1",
        )
        .bind(&item.list)
        .bind(&item.uuid)
        .execute(&mut *tx)
        .await
        .op("requeue push")?;
        tx.commit().await.op("commit requeue")?;
        self.pushed.notify_waiters();
        Ok(())
    }

    async fn heartbeat(&self, _worker: &str, _lists: &[String], _ttl_secs: u64) -> Result<()> {
        // One process owns the embedded store: its workers are the only live ones,
        // so `reclaim_dead` needs no registry.
        Ok(())
    }

    async fn dead_workers(&self, live: &[String]) -> Result<Vec<String>> {
        // Only a previous run's workers can be dead: after one scan that finds
        // none, the processing lists are not scanned again.
        if self.reclaimed.load(std::sync::atomic::Ordering::SeqCst) {
            return Ok(Vec::new());
        }
        let names: Vec<String> =
            sqlx::query_scalar("SELECT DISTINCT list FROM list_items WHERE list LIKE '{%}:processing:%'")
                .fetch_all(&self.writer)
                .await
                .op("find processing lists")?;
        let mut dead: Vec<String> = names
            .iter()
            .filter_map(|name| crate::keys::parse_processing_list(name).map(|(_, worker)| worker))
            .filter(|worker| !live.iter().any(|w| w == worker))
            .map(str::to_string)
            .collect();
        dead.sort();
        dead.dedup();
        if dead.is_empty() {
            self.reclaimed.store(true, std::sync::atomic::Ordering::SeqCst);
        }
        Ok(dead)
    }

    async fn reclaim_worker(&self, worker: &str) -> Result<u64> {
        let names: Vec<String> =
            sqlx::query_scalar("SELECT DISTINCT list FROM list_items WHERE list LIKE '{%}:processing:%'")
                .fetch_all(&self.writer)
                .await
                .op("find processing lists")?;
        let mut returned = 0;
        for name in names {
            let Some((ingress, owner)) = crate::keys::parse_processing_list(&name) else { continue };
            if owner != worker {
                continue;
            }
            let mut tx = self.writer.begin().await.op("begin reclaim")?;
            // Shift the held items (oldest first) in front of the list's head.
            let moved = sqlx::query(
                "UPDATE list_items
                    SET list = ?2,
                        pos = (SELECT COALESCE(MIN(pos), 0) FROM list_items WHERE list = ?2)
                              - (SELECT COUNT(*) FROM list_items WHERE list = ?1)
                              + (SELECT COUNT(*) FROM list_items AS older WHERE older.list = ?1 AND older.pos < list_items.pos)
                  WHERE list = ?1",
            )
            .bind(&name)
            .bind(ingress)
            .execute(&mut *tx)
            .await
            .op("reclaim")?
            .rows_affected();
            tx.commit().await.op("commit reclaim")?;
            if moved > 0 {
                tracing::warn!(
                    worker,
                    list = ingress,
                    count = moved,
                    "returned vCons held by a stopped worker to their list"
                );
                self.pushed.notify_waiters();
            }
            returned += moved;
        }
        Ok(returned)
    }

    fn shared(&self) -> bool {
        // One process serves an embedded store (the CLI that imports into the
        // same file runs no workers).
        false
    }

    async fn move_items(&self, from: &str, to: &str, count: u64) -> Result<u64> {
        let mut moved = 0;
        while moved < count && self.move_head(from, to).await?.is_some() {
            moved += 1;
        }
        if moved > 0 {
            self.pushed.notify_waiters();
        }
        Ok(moved)
    }
}

/// Round-robin mover for the embedded backend.
struct EmbeddedPopper {
    broker: EmbeddedBroker,
    worker: String,
    next: AtomicUsize,
}

#[async_trait]
impl Popper for EmbeddedPopper {
    async fn pop(&mut self, lists: &[String], wait: Duration) -> Result<Option<Taken>> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            // Register interest before looking, so a push in between still wakes us.
            let pushed = self.broker.pushed.clone();
            let notified = pushed.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if !lists.is_empty() {
                let start = self.next.fetch_add(1, Ordering::Relaxed);
                for offset in 0..lists.len() {
                    let list = &lists[(start + offset) % lists.len()];
                    if let Some(taken) = self.broker.take_head(list, &processing_list(list, &self.worker)).await? {
                        return Ok(Some(taken));
                    }
                }
            }
            let now = tokio::time::Instant::now();
            if now >= deadline {
                return Ok(None);
            }
            let _ = tokio::time::timeout(POLL.min(deadline - now), notified).await;
        }
    }
}
