//! The embedded backend: SQLite (WAL) through sqlx, for a single conserver process
//! without Redis. Lists are rows ordered by position; every move is one SQL
//! statement or one transaction, so a crash never loses or duplicates an entry.
//! Waiting poppers are woken by pushes from this process and poll every 250 ms for
//! pushes from others (the CLI importing into the same file).

mod dead_letters;
mod documents;
mod key_value;
mod queues;

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
    Broker, BrokerError, CacheWrite, DeadLetters, Finish, FinishStep, LinkCacheStore, Popped, Popper, Prefetched,
    Queues, Result, Taken, Ttl, VconDocuments, dlq_list, processing_list,
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
        let mut conn = self.writer.acquire().await.op("acquire")?;
        move_head_in(&mut conn, list, processing).await
    }

    /// Move the head of `list` to the tail of `processing` and read its
    /// document, in one transaction (the trace context is in memory).
    async fn take_head(&self, list: &str, processing: &str) -> Result<Option<Taken>> {
        let mut tx = self.writer.begin().await.op("begin pop")?;
        let Some(uuid) = move_head_in(&mut tx, list, processing).await? else {
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
                    FinishStep::Expire { uuid, secs } => expire_in(&mut tx, uuid, *secs, now).await?,
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

/// Set a document's TTL to `ttl` seconds from `now` (0: none), inside the
/// caller's transaction or connection.
async fn expire_in(conn: &mut sqlx::SqliteConnection, uuid: &str, ttl: u64, now: i64) -> Result<()> {
    let expires_at = if ttl == 0 { None } else { Some(now.saturating_add(secs(ttl))) };
    sqlx::query("UPDATE vcons SET expires_at = ?2 WHERE uuid = ?1")
        .bind(uuid)
        .bind(expires_at)
        .execute(&mut *conn)
        .await
        .op("expire vcon")?;
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

/// Move the head of `list` to the tail of `processing`, in one statement (inside
/// the caller's transaction or connection); the item moved.
async fn move_head_in(conn: &mut sqlx::SqliteConnection, list: &str, processing: &str) -> Result<Option<String>> {
    let row = sqlx::query(
        "UPDATE list_items
            SET list = ?1, pos = (SELECT COALESCE(MAX(pos), 0) + 1 FROM list_items WHERE list = ?1)
          WHERE id = (SELECT id FROM list_items WHERE list = ?2 ORDER BY pos LIMIT 1)
      RETURNING item",
    )
    .bind(processing)
    .bind(list)
    .fetch_optional(&mut *conn)
    .await
    .op("move to processing")?;
    Ok(row.map(|r| r.get::<String, _>(0)))
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
