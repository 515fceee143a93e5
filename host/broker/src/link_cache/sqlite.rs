//! The link cache on the embedded SQLite broker: entries with their charge and
//! expiry bucket, and a row of bytes per namespace per bucket. A write is one
//! transaction on the single writer connection; its first statement writes, so
//! SQLite takes the write lock before anything is read and a concurrent writer
//! (another process on the same file) waits instead of deciding on stale sums.

use sqlx::SqlitePool;

use super::{CacheWrite, bucket, charge, lapsed, ttl};
use crate::Result;
use crate::error::SqliteContext;

/// The tables (the pre-quota `link_cache` table, keyed `<link>:<key>`, is dropped:
/// it is a cache, and links refill it).
pub(crate) const SCHEMA: &str = r"
DROP TABLE IF EXISTS link_cache;
CREATE TABLE IF NOT EXISTS link_cache_entries (
    namespace  TEXT    NOT NULL,
    key        TEXT    NOT NULL,
    value      BLOB    NOT NULL,
    expires_at INTEGER NOT NULL,
    charge     INTEGER NOT NULL,
    bucket     INTEGER NOT NULL,
    PRIMARY KEY (namespace, key)
);
CREATE INDEX IF NOT EXISTS link_cache_entries_by_expiry ON link_cache_entries (expires_at);
CREATE TABLE IF NOT EXISTS link_cache_usage (
    namespace TEXT    NOT NULL,
    bucket    INTEGER NOT NULL,
    bytes     INTEGER NOT NULL,
    PRIMARY KEY (namespace, bucket)
);
";

fn int(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

pub(crate) async fn get(reader: &SqlitePool, namespace: &str, key: &str, now: u64) -> Result<Option<Vec<u8>>> {
    sqlx::query_scalar("SELECT value FROM link_cache_entries WHERE namespace = ?1 AND key = ?2 AND expires_at > ?3")
        .bind(namespace)
        .bind(key)
        .bind(int(now))
        .fetch_optional(reader)
        .await
        .op("get cache entry")
}

pub(crate) async fn set(
    writer: &SqlitePool,
    entry: (&str, &str, &[u8]),
    ttl_secs: u64,
    quota_bytes: u64,
    now: u64,
) -> Result<CacheWrite> {
    let (namespace, key, value) = entry;
    let expires_at = now + ttl(ttl_secs);
    let (bucket, charge) = (int(bucket(expires_at)), int(charge(key, value)));
    let mut tx = writer.begin().await.op("begin cache write")?;
    sqlx::query("DELETE FROM link_cache_usage WHERE namespace = ?1 AND bucket <= ?2")
        .bind(namespace)
        .bind(int(lapsed(now)))
        .execute(&mut *tx)
        .await
        .op("drop lapsed cache counters")?;
    let used: i64 = sqlx::query_scalar("SELECT COALESCE(SUM(bytes), 0) FROM link_cache_usage WHERE namespace = ?1")
        .bind(namespace)
        .fetch_one(&mut *tx)
        .await
        .op("sum cache bytes")?;
    let old: Option<(i64, i64)> = sqlx::query_as(
        "SELECT charge, bucket FROM link_cache_entries WHERE namespace = ?1 AND key = ?2 AND expires_at > ?3",
    )
    .bind(namespace)
    .bind(key)
    .bind(int(now))
    .fetch_optional(&mut *tx)
    .await
    .op("read cache entry")?;
    let old_charge = old.map_or(0, |(charge, _)| charge);
    let after = used - old_charge + charge;
    if after > int(quota_bytes) {
        tx.rollback().await.op("roll back cache write")?;
        return Ok(CacheWrite::OverQuota { used: u64::try_from(used).unwrap_or(0) });
    }
    if let Some((old_charge, old_bucket)) = old {
        sqlx::query("UPDATE link_cache_usage SET bytes = bytes - ?3 WHERE namespace = ?1 AND bucket = ?2")
            .bind(namespace)
            .bind(old_bucket)
            .bind(old_charge)
            .execute(&mut *tx)
            .await
            .op("give back cache bytes")?;
    }
    sqlx::query(
        "INSERT INTO link_cache_entries (namespace, key, value, expires_at, charge, bucket)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)
         ON CONFLICT (namespace, key) DO UPDATE SET value = excluded.value, expires_at = excluded.expires_at,
             charge = excluded.charge, bucket = excluded.bucket",
    )
    .bind(namespace)
    .bind(key)
    .bind(value)
    .bind(int(expires_at))
    .bind(charge)
    .bind(bucket)
    .execute(&mut *tx)
    .await
    .op("set cache entry")?;
    sqlx::query(
        "INSERT INTO link_cache_usage (namespace, bucket, bytes) VALUES (?1, ?2, ?3)
         ON CONFLICT (namespace, bucket) DO UPDATE SET bytes = bytes + excluded.bytes",
    )
    .bind(namespace)
    .bind(bucket)
    .bind(charge)
    .execute(&mut *tx)
    .await
    .op("count cache bytes")?;
    tx.commit().await.op("commit cache write")?;
    sweep(writer, now).await?;
    Ok(CacheWrite::Stored { used: u64::try_from(after).unwrap_or(0) })
}

pub(crate) async fn delete(writer: &SqlitePool, namespace: &str, key: &str, now: u64) -> Result<()> {
    let mut tx = writer.begin().await.op("begin cache delete")?;
    let old: Option<(i64, i64, i64)> = sqlx::query_as(
        "DELETE FROM link_cache_entries WHERE namespace = ?1 AND key = ?2 RETURNING charge, bucket, expires_at",
    )
    .bind(namespace)
    .bind(key)
    .fetch_optional(&mut *tx)
    .await
    .op("delete cache entry")?;
    if let Some((charge, bucket, expires_at)) = old
        && expires_at > int(now)
    {
        sqlx::query("UPDATE link_cache_usage SET bytes = bytes - ?3 WHERE namespace = ?1 AND bucket = ?2")
            .bind(namespace)
            .bind(bucket)
            .bind(charge)
            .execute(&mut *tx)
            .await
            .op("give back cache bytes")?;
    }
    tx.commit().await.op("commit cache delete")
}

/// Expired entries and lapsed counters of any namespace go as new entries
/// arrive, a few at a time.
async fn sweep(writer: &SqlitePool, now: u64) -> Result<()> {
    sqlx::query(
        "DELETE FROM link_cache_entries WHERE rowid IN
             (SELECT rowid FROM link_cache_entries WHERE expires_at <= ?1 LIMIT 16)",
    )
    .bind(int(now))
    .execute(writer)
    .await
    .op("expire cache entries")?;
    sqlx::query(
        "DELETE FROM link_cache_usage WHERE rowid IN
             (SELECT rowid FROM link_cache_usage WHERE bucket <= ?1 OR bytes <= 0 LIMIT 16)",
    )
    .bind(int(lapsed(now)))
    .execute(writer)
    .await
    .op("drop lapsed cache counters")?;
    Ok(())
}
