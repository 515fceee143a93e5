//! The embedded backend: SQLite (WAL) through sqlx, for a single conserver process
//! without Redis. Lists are rows ordered by position; every move is one SQL
//! statement or one transaction, so a crash never loses or duplicates an entry.
//! Waiting poppers are woken by pushes from this process and poll every 250 ms for
//! pushes from others (the CLI importing into the same file).

use std::path::Path;
use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use conserver_core::DlqReason;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Row, SqlitePool};
use tokio::sync::Notify;

use crate::error::SqliteContext;
use crate::{
    Broker, BrokerError, CacheWrite, Finish, FinishStep, Popped, Popper, Prefetched, Result, Taken, Ttl, dlq_list,
    processing_list,
};

const SCHEMA: &str = r#"
CREATE TABLE IF NOT EXISTS broker_health (
    id  INTEGER PRIMARY KEY CHECK (id = 1),
    at  INTEGER NOT NULL,
    pad BLOB
);
INSERT OR IGNORE INTO broker_health (id, at) VALUES (1, 0);
CREATE TABLE IF NOT EXISTS list_items (
    id   INTEGER PRIMARY KEY AUTOINCREMENT,
    list TEXT    NOT NULL,
    pos  INTEGER NOT NULL,
    item TEXT    NOT NULL
);
CREATE INDEX IF NOT EXISTS list_items_by_pos ON list_items (list, pos);
CREATE TABLE IF NOT EXISTS vcons (
    uuid       TEXT PRIMARY KEY,
    doc        TEXT NOT NULL,
    expires_at INTEGER
);
CREATE TABLE IF NOT EXISTS vcon_index (
    uuid  TEXT PRIMARY KEY,
    score REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS vcon_index_by_score ON vcon_index (score, uuid);
CREATE TABLE IF NOT EXISTS party_index (
    term TEXT NOT NULL,
    uuid TEXT NOT NULL,
    PRIMARY KEY (term, uuid)
);
CREATE TABLE IF NOT EXISTS party_terms (
    term       TEXT PRIMARY KEY,
    expires_at INTEGER
);
CREATE TABLE IF NOT EXISTS dlq_reasons (
    list   TEXT NOT NULL,
    uuid   TEXT NOT NULL,
    reason TEXT NOT NULL,
    PRIMARY KEY (list, uuid)
);
"#;

/// How often a waiting popper re-checks for entries pushed by another process.
const POLL: Duration = Duration::from_millis(250);

/// SQLite-backed broker, the default without `REDIS_URL`.
///
/// Writes go through one connection (SQLite has one writer at a time; queueing in
/// the pool is far cheaper than SQLite's busy-wait sleeps), reads through a small
/// pool of read-only connections (WAL lets them run beside the writer).
#[derive(Clone)]
pub struct EmbeddedBroker {
    writer: SqlitePool,
    reader: SqlitePool,
    pushed: Arc<Notify>,
    /// Whether the previous run's leftovers were returned (only needed once: this
    /// process owns the store, so no other worker can die while it runs).
    reclaimed: Arc<std::sync::atomic::AtomicBool>,
    /// `context:{list}:{uuid}` lists, in memory.
    contexts: Arc<crate::trace_context::TraceContexts>,
    /// Whether the last write that acknowledges data failed (a full disk).
    write_failing: Arc<std::sync::atomic::AtomicBool>,
}

fn now_secs() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

/// Seconds since the epoch (the link cache's clock).
fn now_unsigned() -> u64 {
    u64::try_from(now_secs()).unwrap_or(0)
}

/// A time to live in seconds, clamped to [`crate::MAX_TTL_SECS`].
fn secs(value: u64) -> i64 {
    crate::clamped_ttl(value)
}

impl EmbeddedBroker {
    /// Note how a write that acknowledges data went: after a failure `ping`
    /// reports the store unhealthy until a write succeeds again.
    async fn tracked<T>(&self, write: impl std::future::Future<Output = Result<T>>) -> Result<T> {
        let result = write.await;
        self.write_failing.store(result.is_err(), Ordering::Relaxed);
        result
    }

    /// Open (creating if needed) the store in directory `dir`.
    pub async fn open(dir: &Path) -> Result<Self> {
        std::fs::create_dir_all(dir)
            .map_err(|e| BrokerError::Sqlite { operation: "create data directory", source: sqlx::Error::Io(e) })?;
        let url = format!("sqlite://{}", dir.join("broker.sqlite3").display());
        let options = SqliteConnectOptions::from_str(&url)
            .op("parse path")?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(Duration::from_secs(10));
        // A write that fails (a full disk) can leave the driver believing a
        // transaction is still open after SQLite rolled it back; every later
        // "transaction" would then be a savepoint that never commits, and
        // writes would be acknowledged without ever reaching the file. Such a
        // connection is closed on release, and the next write gets a fresh one.
        let writer = SqlitePoolOptions::new()
            .max_connections(1)
            .after_release(|conn, _| {
                let clean = !sqlx::Connection::is_in_transaction(conn);
                Box::pin(async move {
                    if !clean {
                        tracing::warn!(
                            "the embedded broker's writer was left inside a failed transaction; reopening it"
                        );
                    }
                    Ok(clean)
                })
            })
            .connect_with(options.clone())
            .await
            .op("open")?;
        sqlx::raw_sql(SCHEMA).execute(&writer).await.op("create schema")?;
        sqlx::raw_sql(crate::link_cache::sqlite::SCHEMA).execute(&writer).await.op("create link cache schema")?;
        let reader = SqlitePoolOptions::new()
            .max_connections(4)
            .connect_with(options.read_only(true))
            .await
            .op("open for reading")?;
        Ok(Self {
            writer,
            reader,
            pushed: Arc::new(Notify::new()),
            reclaimed: Arc::default(),
            contexts: Arc::default(),
            write_failing: Arc::default(),
        })
    }

    /// Move the head of `list` to the tail of `processing`, in one statement.
    async fn move_head(&self, list: &str, processing: &str) -> Result<Option<String>> {
        let row = sqlx::query(
            "UPDATE list_items
                SET list = ?1, pos = (SELECT COALESCE(MAX(pos), 0) + 1 FROM list_items WHERE list = ?1)
              WHERE id = (SELECT id FROM list_items WHERE list = ?2 ORDER BY pos LIMIT 1)
          RETURNING item",
        )
        .bind(processing)
        .bind(list)
        .fetch_optional(&self.writer)
        .await
        .op("move to processing")?;
        Ok(row.map(|r| r.get::<String, _>(0)))
    }

    /// Move the head of `list` to the tail of `processing` and read its
    /// document, in one transaction (the trace context is in memory).
    async fn take_head(&self, list: &str, processing: &str) -> Result<Option<Taken>> {
        let mut tx = self.writer.begin().await.op("begin pop")?;
        let row = sqlx::query(
            "UPDATE list_items
                SET list = ?1, pos = (SELECT COALESCE(MAX(pos), 0) + 1 FROM list_items WHERE list = ?1)
              WHERE id = (SELECT id FROM list_items WHERE list = ?2 ORDER BY pos LIMIT 1)
          RETURNING item",
        )
        .bind(processing)
        .bind(list)
        .fetch_optional(&mut *tx)
        .await
        .op("move to processing")?;
        let Some(uuid) = row.map(|r| r.get::<String, _>(0)) else {
            tx.rollback().await.op("end pop")?;
            return Ok(None);
        };
        let document = live_doc_in(&mut tx, &uuid, now_secs()).await?;
        tx.commit().await.op("commit pop")?;
        let trace_context = if conserver_core::trace_context::enabled() {
            self.contexts.pop(&crate::trace_context_key(list, &uuid))
        } else {
            None
        };
        let item = Popped { list: list.to_string(), uuid };
        Ok(Some(Taken { item, prefetched: Some(Prefetched { document: Some(document), trace_context }) }))
    }

    async fn remove_one(&self, list: &str, item: &str) -> Result<()> {
        let mut conn = self.writer.acquire().await.op("acquire")?;
        remove_one_in(&mut conn, list, item).await
    }

    async fn pop_end(&self, list: &str, order: &'static str) -> Result<Option<String>> {
        let sql = format!(
            "DELETE FROM list_items WHERE id = (SELECT id FROM list_items WHERE list = ?1 ORDER BY pos {order} LIMIT 1) RETURNING item"
        );
        let row = sqlx::query(&sql).bind(list).fetch_optional(&self.writer).await.op("pop")?;
        Ok(row.map(|r| r.get::<String, _>(0)))
    }
}

#[async_trait]
impl Broker for EmbeddedBroker {
    fn backend(&self) -> &'static str {
        "embedded"
    }

    /// A read; and after a write of data failed, a 64 KiB write probe: a store
    /// that cannot write (a full disk) is not healthy, even though it still
    /// answers reads.
    async fn ping(&self) -> Result<()> {
        sqlx::query("SELECT 1").execute(&self.reader).await.op("ping")?;
        if self.write_failing.load(Ordering::Relaxed) {
            // Writes of data fail; a tiny probe could still fit. Probe anyway, so
            // a freed disk is seen without waiting for the next real write.
            let probe = sqlx::query("UPDATE broker_health SET at = ?1, pad = zeroblob(65536) WHERE id = 1")
                .bind(now_secs())
                .execute(&self.writer)
                .await;
            if let Err(error) = probe {
                return Err(error).op("write (the disk may be full)");
            }
            self.write_failing.store(false, Ordering::Relaxed);
        }
        Ok(())
    }

    async fn memory_used_bytes(&self) -> Result<Option<u64>> {
        Ok(None)
    }

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

    async fn finish(&self, worker: &str, item: &Popped, finish: &Finish) -> Result<()> {
        self.tracked(async {
            let now = now_secs();
            let mut tx = self.writer.begin().await.op("begin finish")?;
            let mut contexts = Vec::new();
            for step in &finish.steps {
                match step {
                    FinishStep::Write { uuid, json, ttl } => put_in(&mut tx, uuid, json, *ttl, now).await?,
                    FinishStep::Index { uuid, score, terms, terms_ttl_secs } => {
                        index_in(&mut tx, uuid, *score, terms, *terms_ttl_secs).await?;
                    }
                    FinishStep::Expire { uuid, secs: ttl } => {
                        let expires_at = if *ttl == 0 { None } else { Some(now.saturating_add(secs(*ttl))) };
                        sqlx::query("UPDATE vcons SET expires_at = ?2 WHERE uuid = ?1")
                            .bind(uuid)
                            .bind(expires_at)
                            .execute(&mut *tx)
                            .await
                            .op("expire vcon")?;
                    }
                    FinishStep::Push { list, uuid } => push_in(&mut tx, list, uuid).await?,
                    FinishStep::TraceContext { list, uuid, context_json, ttl_secs } => {
                        contexts.push((crate::trace_context_key(list, uuid), context_json, *ttl_secs));
                    }
                }
            }
            remove_one_in(&mut tx, &processing_list(&item.list, worker), &item.uuid).await?;
            tx.commit().await.op("commit finish")?;
            for (key, context, ttl) in contexts {
                self.contexts.push(key, context, ttl);
            }
            if finish.pushes_to().next().is_some() {
                self.pushed.notify_waiters();
            }
            Ok(())
        })
        .await
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

    async fn cache_get(&self, namespace: &str, key: &str) -> Result<Option<Vec<u8>>> {
        crate::link_cache::sqlite::get(&self.reader, namespace, key, now_unsigned()).await
    }

    async fn cache_set(
        &self,
        namespace: &str,
        key: &str,
        value: &[u8],
        ttl_secs: u64,
        quota_bytes: u64,
    ) -> Result<CacheWrite> {
        let entry = (namespace, key, value);
        crate::link_cache::sqlite::set(&self.writer, entry, ttl_secs, quota_bytes, now_unsigned()).await
    }

    async fn cache_delete(&self, namespace: &str, key: &str) -> Result<()> {
        crate::link_cache::sqlite::delete(&self.writer, namespace, key, now_unsigned()).await
    }

    async fn get_vcon(&self, uuid: &str) -> Result<Option<String>> {
        sqlx::query_scalar("SELECT doc FROM vcons WHERE uuid = ?1 AND (expires_at IS NULL OR expires_at > ?2)")
            .bind(uuid)
            .bind(now_secs())
            .fetch_optional(&self.reader)
            .await
            .op("get vcon")
    }

    async fn put_vcon(&self, uuid: &str, json: &str, ttl: Ttl) -> Result<()> {
        self.tracked(async {
            let mut conn = self.writer.acquire().await.op("acquire")?;
            put_in(&mut conn, uuid, json, ttl, now_secs()).await
        })
        .await
    }

    async fn delete_vcon(&self, uuid: &str) -> Result<bool> {
        let result = sqlx::query("DELETE FROM vcons WHERE uuid = ?1 AND (expires_at IS NULL OR expires_at > ?2)")
            .bind(uuid)
            .bind(now_secs())
            .execute(&self.writer)
            .await
            .op("delete vcon")?;
        Ok(result.rows_affected() > 0)
    }

    async fn expire_vcon(&self, uuid: &str, ttl: u64) -> Result<()> {
        let expires_at = if ttl == 0 { None } else { Some(now_secs().saturating_add(secs(ttl))) };
        sqlx::query("UPDATE vcons SET expires_at = ?2 WHERE uuid = ?1")
            .bind(uuid)
            .bind(expires_at)
            .execute(&self.writer)
            .await
            .op("expire vcon")?;
        Ok(())
    }

    async fn dead_letter(&self, ingress: &str, mut reason: DlqReason, expiry_secs: u64) -> Result<()> {
        self.tracked(async {
            let list = dlq_list(ingress);
            let mut tx = self.writer.begin().await.op("begin dead-letter")?;
            // Write first, so the transaction holds the write lock before it reads.
            sqlx::query(
                "INSERT INTO list_items (list, pos, item)
                 SELECT ?1, COALESCE(MAX(pos), 0) + 1, ?2 FROM list_items WHERE list = ?1",
            )
            .bind(&list)
            .bind(&reason.uuid)
            .execute(&mut *tx)
            .await
            .op("push dlq")?;
            let previous: Option<String> =
                sqlx::query_scalar("SELECT reason FROM dlq_reasons WHERE list = ?1 AND uuid = ?2")
                    .bind(&list)
                    .bind(&reason.uuid)
                    .fetch_optional(&mut *tx)
                    .await
                    .op("read dlq reason")?;
            reason.attempts =
                previous.and_then(|text| serde_json::from_str::<DlqReason>(&text).ok()).map_or(0, |r| r.attempts) + 1;
            let text = serde_json::to_string(&reason).map_err(|e| BrokerError::Corrupt(e.to_string()))?;
            sqlx::query("INSERT INTO dlq_reasons (list, uuid, reason) VALUES (?1, ?2, ?3) ON CONFLICT (list, uuid) DO UPDATE SET reason = excluded.reason")
                .bind(&list)
                .bind(&reason.uuid)
                .bind(&text)
                .execute(&mut *tx)
                .await
                .op("record dlq reason")?;
            if expiry_secs > 0 {
                sqlx::query("UPDATE vcons SET expires_at = ?2 WHERE uuid = ?1")
                    .bind(&reason.uuid)
                    .bind(now_secs().saturating_add(secs(expiry_secs)))
                    .execute(&mut *tx)
                    .await
                    .op("expire dead-lettered vcon")?;
            }
            tx.commit().await.op("commit dead-letter")
        })
        .await
    }

    async fn dlq_reasons(&self, ingress: &str) -> Result<Vec<DlqReason>> {
        let list = dlq_list(ingress);
        let texts: Vec<String> = sqlx::query_scalar(
            "SELECT r.reason FROM list_items l JOIN dlq_reasons r ON r.list = l.list AND r.uuid = l.item
              WHERE l.list = ?1 ORDER BY l.pos",
        )
        .bind(&list)
        .fetch_all(&self.reader)
        .await
        .op("read dlq reasons")?;
        Ok(texts.iter().filter_map(|t| serde_json::from_str(t).ok()).collect())
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

    async fn index_vcon(&self, uuid: &str, score: f64, terms: &[String], terms_ttl_secs: u64) -> Result<()> {
        let mut tx = self.writer.begin().await.op("begin index")?;
        index_in(&mut tx, uuid, score, terms, terms_ttl_secs).await?;
        tx.commit().await.op("commit index")
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
        self.tracked(async {
            let now = now_secs();
            let mut tx = self.writer.begin().await.op("begin store")?;
            // The first statement writes, so the transaction holds the write lock.
            index_in(&mut tx, uuid, score, terms, terms_ttl_secs).await?;
            let previous = live_doc_in(&mut tx, uuid, now).await?;
            put_in(&mut tx, uuid, json, ttl, now).await?;
            tx.commit().await.op("commit store")?;
            Ok(previous)
        })
        .await
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
        self.tracked(async {
            let now = now_secs();
            // The writer pool has one connection: no other write comes between the
            // read below and the write after it.
            let mut tx = self.writer.begin().await.op("begin create")?;
            let existing = live_doc_in(&mut tx, uuid, now).await?;
            if existing.is_some() {
                tx.rollback().await.op("end create")?;
                return Ok(existing);
            }
            index_in(&mut tx, uuid, score, terms, terms_ttl_secs).await?;
            put_in(&mut tx, uuid, json, ttl, now).await?;
            tx.commit().await.op("commit create")?;
            Ok(None)
        })
        .await
    }

    async fn unindex_vcon(&self, uuid: &str, terms: &[String]) -> Result<()> {
        let mut tx = self.writer.begin().await.op("begin unindex")?;
        sqlx::query("DELETE FROM vcon_index WHERE uuid = ?1").bind(uuid).execute(&mut *tx).await.op("unindex vcon")?;
        for term in terms {
            sqlx::query("DELETE FROM party_index WHERE term = ?1 AND uuid = ?2")
                .bind(term)
                .bind(uuid)
                .execute(&mut *tx)
                .await
                .op("unindex party")?;
        }
        tx.commit().await.op("commit unindex")
    }

    async fn list_vcons(&self, min: Option<f64>, max: Option<f64>, offset: u64, count: u64) -> Result<Vec<String>> {
        let clamp = |n: u64| i64::try_from(n).unwrap_or(i64::MAX);
        sqlx::query_scalar(
            "SELECT uuid FROM vcon_index WHERE score >= ?1 AND score <= ?2 ORDER BY score DESC, uuid DESC LIMIT ?3 OFFSET ?4",
        )
        .bind(min.unwrap_or(f64::NEG_INFINITY))
        .bind(max.unwrap_or(f64::INFINITY))
        .bind(clamp(count))
        .bind(clamp(offset))
        .fetch_all(&self.reader)
        .await
        .op("list vcons")
    }

    async fn search(&self, terms: &[String]) -> Result<Vec<String>> {
        if terms.is_empty() {
            return Ok(Vec::new());
        }
        let mut distinct = terms.to_vec();
        distinct.sort();
        distinct.dedup();
        let placeholders = (0..distinct.len()).map(|i| format!("?{}", i + 2)).collect::<Vec<_>>().join(", ");
        let sql = format!(
            "SELECT p.uuid FROM party_index p JOIN party_terms t ON t.term = p.term
              WHERE (t.expires_at IS NULL OR t.expires_at > ?1) AND p.term IN ({placeholders})
              GROUP BY p.uuid HAVING COUNT(DISTINCT p.term) = {}",
            distinct.len()
        );
        let mut query = sqlx::query_scalar(&sql).bind(now_secs());
        for term in &distinct {
            query = query.bind(term);
        }
        query.fetch_all(&self.reader).await.op("search")
    }

    async fn vcon_uuids(&self) -> Result<Vec<String>> {
        sqlx::query_scalar("SELECT uuid FROM vcons WHERE expires_at IS NULL OR expires_at > ?1 ORDER BY uuid")
            .bind(now_secs())
            .fetch_all(&self.reader)
            .await
            .op("list vcon documents")
    }
}

/// Upsert a vCon document (inside the caller's transaction or connection).
/// The document stored under `uuid`, unless it expired by `now`.
async fn live_doc_in(conn: &mut sqlx::SqliteConnection, uuid: &str, now: i64) -> Result<Option<String>> {
    sqlx::query_scalar("SELECT doc FROM vcons WHERE uuid = ?1 AND (expires_at IS NULL OR expires_at > ?2)")
        .bind(uuid)
        .bind(now)
        .fetch_optional(conn)
        .await
        .op("read stored vcon")
}

async fn put_in(conn: &mut sqlx::SqliteConnection, uuid: &str, json: &str, ttl: Ttl, now: i64) -> Result<()> {
    let query = match ttl {
        // Keep a live TTL; an expired row counts as absent, so it gets none.
        Ttl::Keep => sqlx::query(
            "INSERT INTO vcons (uuid, doc, expires_at) VALUES (?1, ?2, NULL)
             ON CONFLICT (uuid) DO UPDATE SET doc = excluded.doc,
               expires_at = CASE WHEN vcons.expires_at > ?3 THEN vcons.expires_at ELSE NULL END",
        )
        .bind(uuid)
        .bind(json)
        .bind(now),
        Ttl::Secs(ttl) => sqlx::query(
            "INSERT INTO vcons (uuid, doc, expires_at) VALUES (?1, ?2, ?3)
             ON CONFLICT (uuid) DO UPDATE SET doc = excluded.doc, expires_at = excluded.expires_at",
        )
        .bind(uuid)
        .bind(json)
        .bind(if ttl == 0 { None } else { Some(now.saturating_add(secs(ttl))) }),
    };
    query.execute(&mut *conn).await.op("put vcon")?;
    Ok(())
}

/// Add a vCon to the list index and its party terms (inside the caller's transaction).
async fn index_in(
    conn: &mut sqlx::SqliteConnection,
    uuid: &str,
    score: f64,
    terms: &[String],
    terms_ttl_secs: u64,
) -> Result<()> {
    let now = now_secs();
    let expires_at = (terms_ttl_secs > 0).then(|| now.saturating_add(secs(terms_ttl_secs)));
    sqlx::query(
        "INSERT INTO vcon_index (uuid, score) VALUES (?1, ?2) ON CONFLICT (uuid) DO UPDATE SET score = excluded.score",
    )
    .bind(uuid)
    .bind(score)
    .execute(&mut *conn)
    .await
    .op("index vcon")?;
    for term in terms {
        // Like EXPIRE on a Redis set: a term that had expired starts empty, and the
        // whole term's TTL is reset.
        sqlx::query("DELETE FROM party_index WHERE term = ?1 AND EXISTS (SELECT 1 FROM party_terms WHERE term = ?1 AND expires_at <= ?2)")
            .bind(term)
            .bind(now)
            .execute(&mut *conn)
            .await
            .op("drop expired party term")?;
        sqlx::query("INSERT INTO party_index (term, uuid) VALUES (?1, ?2) ON CONFLICT (term, uuid) DO NOTHING")
            .bind(term)
            .bind(uuid)
            .execute(&mut *conn)
            .await
            .op("index party")?;
        sqlx::query("INSERT INTO party_terms (term, expires_at) VALUES (?1, ?2) ON CONFLICT (term) DO UPDATE SET expires_at = excluded.expires_at")
            .bind(term)
            .bind(expires_at)
            .execute(&mut *conn)
            .await
            .op("expire party term")?;
    }
    Ok(())
}

/// Append `uuid` to the tail of `list` (inside the caller's transaction).
async fn push_in(conn: &mut sqlx::SqliteConnection, list: &str, uuid: &str) -> Result<()> {
    sqlx::query(
        "INSERT INTO list_items (list, pos, item)
         SELECT ?1, COALESCE(MAX(pos), 0) + 1, ?2 FROM list_items WHERE list = ?1",
    )
    .bind(list)
    .bind(uuid)
    .execute(&mut *conn)
    .await
    .op("push")?;
    Ok(())
}

/// Remove the first occurrence of `item` from `list` (inside the caller's transaction).
async fn remove_one_in(conn: &mut sqlx::SqliteConnection, list: &str, item: &str) -> Result<()> {
    sqlx::query("DELETE FROM list_items WHERE id = (SELECT id FROM list_items WHERE list = ?1 AND item = ?2 ORDER BY pos LIMIT 1)")
        .bind(list)
        .bind(item)
        .execute(&mut *conn)
        .await
        .op("remove from list")?;
    Ok(())
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
