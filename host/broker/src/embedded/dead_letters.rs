//! The embedded backend's dead-letter queue: `DLQ:{ingress}` and the reason
//! recorded for each entry.

#[allow(clippy::wildcard_imports)]
use super::*;

#[async_trait]
impl DeadLetters for EmbeddedBroker {
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
                expire_in(&mut tx, &reason.uuid, expiry_secs, now_secs()).await?;
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
}
