//! The embedded broker's `context:{list}:{uuid}` lists: the producer's trace
//! context, kept in memory (the embedded broker serves one process, and a lost
//! context only loses the span link, never the vCon). Entries expire like the
//! Redis keys do.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Bound on stored contexts; the oldest expiring ones are dropped beyond it.
const MAX_KEYS: usize = 100_000;

#[derive(Default)]
pub(crate) struct TraceContexts {
    lists: Mutex<HashMap<String, (Instant, VecDeque<String>)>>,
}

impl TraceContexts {
    /// RPUSH + EXPIRE.
    pub(crate) fn push(&self, key: String, context: &str, ttl_secs: u64) {
        let Ok(mut lists) = self.lists.lock() else { return };
        let now = Instant::now();
        if lists.len() >= MAX_KEYS {
            lists.retain(|_, (expires, _)| *expires > now);
        }
        if lists.len() >= MAX_KEYS {
            return;
        }
        let entry = lists.entry(key).or_insert_with(|| (now, VecDeque::new()));
        entry.0 = now + Duration::from_secs(ttl_secs);
        entry.1.push_back(context.to_string());
    }

    /// LPOP (nothing once the key expired).
    pub(crate) fn pop(&self, key: &str) -> Option<String> {
        let Ok(mut lists) = self.lists.lock() else { return None };
        let (expires, items) = lists.get_mut(key)?;
        let live = *expires > Instant::now();
        let item = if live { items.pop_front() } else { None };
        if !live || items.is_empty() {
            lists.remove(key);
        }
        item
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn oldest_first_and_gone_when_empty() {
        let contexts = TraceContexts::default();
        contexts.push("context:a:1".into(), "one", 60);
        contexts.push("context:a:1".into(), "two", 60);
        assert_eq!(contexts.pop("context:a:1").as_deref(), Some("one"));
        assert_eq!(contexts.pop("context:a:1").as_deref(), Some("two"));
        assert_eq!(contexts.pop("context:a:1"), None);
    }

    #[test]
    fn expired_contexts_are_not_returned() {
        let contexts = TraceContexts::default();
        contexts.push("context:a:2".into(), "old", 0);
        assert_eq!(contexts.pop("context:a:2"), None);
    }
}
