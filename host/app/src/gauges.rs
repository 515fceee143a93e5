//! The observed gauges: every few seconds, the length of each configured ingress
//! list and of its DLQ (`conserver.ingress_list.length`, kind `ingress`|`dlq`) and
//! Redis's `used_memory`. Both `/metrics` and the OTLP export read these values. A
//! failed read skips that series until the next tick, as in Python.

use std::sync::Arc;
use std::time::Duration;

use conserver_broker::{Broker, dlq_list};
use conserver_core::metrics;
use tokio_util::sync::CancellationToken;

/// How often the gauges are refreshed.
const EVERY: Duration = Duration::from_secs(5);

/// Refresh the gauges until `shutdown`; `lists` names the ingress lists now.
pub async fn poll(
    broker: Arc<dyn Broker>,
    lists: impl Fn() -> Vec<String> + Send + 'static,
    shutdown: CancellationToken,
) {
    loop {
        refresh(broker.as_ref(), lists()).await;
        tokio::select! {
            () = tokio::time::sleep(EVERY) => {}
            () = shutdown.cancelled() => return,
        }
    }
}

async fn refresh(broker: &dyn Broker, mut lists: Vec<String>) {
    lists.retain(|list| !list.is_empty());
    lists.sort();
    lists.dedup();
    let mut lengths = Vec::with_capacity(lists.len() * 2);
    for list in lists {
        if let Ok(length) = broker.len(&list).await {
            lengths.push((list.clone(), "ingress", length));
        }
        if let Ok(length) = broker.len(&dlq_list(&list)).await {
            lengths.push((list, "dlq", length));
        }
    }
    metrics::set_queue_lengths(&lengths);
    if let Ok(Some(bytes)) = broker.memory_used_bytes().await {
        metrics::set_redis_memory(bytes);
    }
}
