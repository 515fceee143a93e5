//! The Redis backend's dead-letter queue: `DLQ:{ingress}` and the reason
//! recorded for each entry.

#[allow(clippy::wildcard_imports)]
use super::*;

#[async_trait]
impl DeadLetters for RedisBroker {
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
}
