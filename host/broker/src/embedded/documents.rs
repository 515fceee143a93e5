//! The embedded backend's vCon documents and their indexes: the document
//! cache with TTLs, the vCon list (sorted by `created_at`) and the party search sets.

#[allow(clippy::wildcard_imports)]
use super::*;

#[async_trait]
impl VconDocuments for EmbeddedBroker {
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
        let mut conn = self.writer.acquire().await.op("acquire")?;
        expire_in(&mut conn, uuid, ttl, now_secs()).await
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
