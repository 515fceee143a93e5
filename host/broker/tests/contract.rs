//! One behavioural suite run against every backend: the embedded SQLite broker in a
//! temp directory, Redis at `CONSERVER_TEST_REDIS_URL` (default
//! `redis://127.0.0.1:6379`) and a 3-node Redis Cluster at
//! `CONSERVER_TEST_REDIS_CLUSTER_URL` (default `redis://127.0.0.1:7101`); `cargo xtask
//! test` starts both when they are not running. Every key is unique per test.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::cloned_ref_to_slice_refs)] // tests fail loudly on purpose

use std::sync::Arc;
use std::time::{Duration, Instant};

use conserver_broker::{
    Broker, CACHE_ENTRY_OVERHEAD_BYTES, CacheWrite, EmbeddedBroker, Finish, FinishStep, Popped, RedisBroker, Ttl,
    dlq_list, processing_list,
};
use conserver_core::DlqReason;

fn unique(prefix: &str) -> String {
    format!("{prefix}-{}", uuid::Uuid::new_v4().simple())
}

fn reason(uuid: &str) -> DlqReason {
    DlqReason {
        uuid: uuid.into(),
        chain: "main".into(),
        link: "tag".into(),
        error: "trap: boom".into(),
        retryable: false,
        attempts: 0,
        at: "2026-01-01T00:00:00.000Z".into(),
    }
}

async fn redis() -> Arc<dyn Broker> {
    let url = std::env::var("CONSERVER_TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into());
    Arc::new(
        RedisBroker::connect(&url)
            .await
            .unwrap_or_else(|e| panic!("{e} (start Redis or set CONSERVER_TEST_REDIS_URL)")),
    )
}

/// The 3-node test cluster `cargo xtask test` starts.
async fn cluster() -> Arc<dyn Broker> {
    let url = std::env::var("CONSERVER_TEST_REDIS_CLUSTER_URL").unwrap_or_else(|_| "redis://127.0.0.1:7101".into());
    let broker = RedisBroker::connect(&url).await.unwrap_or_else(|e| {
        panic!("{e} (run `cargo xtask test`, which starts the cluster, or set CONSERVER_TEST_REDIS_CLUSTER_URL)")
    });
    assert!(broker.is_cluster(), "{url} is not a Redis Cluster node");
    Arc::new(broker)
}

async fn embedded(dir: &tempfile::TempDir) -> Arc<dyn Broker> {
    Arc::new(EmbeddedBroker::open(dir.path()).await.unwrap())
}

async fn lists_are_fifo_with_a_head(broker: Arc<dyn Broker>) {
    let list = unique("l");
    let items: Vec<String> = (0..5).map(|i| format!("u{i}")).collect();
    broker.push(&list, &items[..3]).await.unwrap();
    broker.push(&list, &items[3..]).await.unwrap();
    broker.push_front(&list, "first").await.unwrap();
    assert_eq!(broker.len(&list).await.unwrap(), 6);
    assert_eq!(broker.range(&list).await.unwrap(), ["first", "u0", "u1", "u2", "u3", "u4"]);
    assert_eq!(broker.pop_front(&list).await.unwrap().as_deref(), Some("first"));
    assert_eq!(broker.pop_back(&list).await.unwrap().as_deref(), Some("u4"));
    broker.push(&list, &[]).await.unwrap();
    assert_eq!(broker.pop_front_many(&list, 2).await.unwrap(), ["u0", "u1"]);
    assert_eq!(broker.pop_front_many(&list, 0).await.unwrap(), Vec::<String>::new());
    assert_eq!(broker.pop_front_many(&list, 100).await.unwrap(), ["u2", "u3"]);
    assert_eq!(broker.pop_front_many(&list, 100).await.unwrap(), Vec::<String>::new());
    broker.push(&list, &["p".into(), "q".into(), "p".into(), "r".into()]).await.unwrap();
    assert_eq!(broker.peek(&list, 2).await.unwrap(), ["p", "q"]);
    assert_eq!(broker.peek(&list, 0).await.unwrap(), Vec::<String>::new());
    assert_eq!(broker.remove_items(&list, &["p".into(), "r".into(), "absent".into()]).await.unwrap(), 2);
    assert_eq!(broker.range(&list).await.unwrap(), ["q", "p"]);
    broker.pop_front_many(&list, 10).await.unwrap();
    assert_eq!(broker.len(&unique("empty")).await.unwrap(), 0);
    assert_eq!(broker.pop_front(&unique("empty")).await.unwrap(), None);
}

async fn reliable_pop_moves_acks_and_requeues(broker: Arc<dyn Broker>) {
    let (list, worker) = (unique("in"), unique("w"));
    broker.push(&list, &["a".into(), "b".into()]).await.unwrap();
    let mut popper = broker.popper(&worker).await.unwrap();
    let lists = [list.clone()];
    let a = popper.pop(&lists, Duration::from_secs(1)).await.unwrap().unwrap().item;
    assert_eq!(a, Popped { list: list.clone(), uuid: "a".into() });
    // The item is held in the worker's processing list, not lost.
    assert_eq!(broker.range(&processing_list(&list, &worker)).await.unwrap(), ["a"]);
    assert_eq!(broker.range(&list).await.unwrap(), ["b"]);
    broker.ack(&worker, &a).await.unwrap();
    assert_eq!(broker.len(&processing_list(&list, &worker)).await.unwrap(), 0);

    let b = popper.pop(&lists, Duration::from_secs(1)).await.unwrap().unwrap().item;
    broker.push(&list, &["c".into()]).await.unwrap();
    broker.requeue(&worker, &b).await.unwrap();
    // Requeued to the head, ahead of later arrivals.
    assert_eq!(broker.range(&list).await.unwrap(), ["b", "c"]);
    assert_eq!(broker.len(&processing_list(&list, &worker)).await.unwrap(), 0);
    // A requeue retried after its answer was lost (or after a reaper returned
    // the item) does not queue it twice.
    broker.requeue(&worker, &b).await.unwrap();
    assert_eq!(broker.range(&list).await.unwrap(), ["b", "c"]);

    // An empty list waits about `wait`, then answers None.
    let empty = [unique("empty")];
    let started = Instant::now();
    assert_eq!(popper.pop(&empty, Duration::from_millis(200)).await.unwrap(), None);
    assert!(started.elapsed() >= Duration::from_millis(150));
}

async fn a_waiting_pop_wakes_on_push(broker: Arc<dyn Broker>) {
    let (list, worker) = (unique("in"), unique("w"));
    let mut popper = broker.popper(&worker).await.unwrap();
    let pusher = broker.clone();
    let pushed = list.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(100)).await;
        pusher.push(&pushed, &["late".into()]).await.unwrap();
    });
    let got = popper.pop(std::slice::from_ref(&list), Duration::from_secs(5)).await.unwrap();
    assert_eq!(got.map(|p| p.item.uuid).as_deref(), Some("late"));
}

async fn several_lists_are_served_in_turn(broker: Arc<dyn Broker>) {
    let (busy, quiet, worker) = (unique("busy"), unique("quiet"), unique("w"));
    let many: Vec<String> = (0..20).map(|i| format!("b{i}")).collect();
    broker.push(&busy, &many).await.unwrap();
    broker.push(&quiet, &["q".into()]).await.unwrap();
    let mut popper = broker.popper(&worker).await.unwrap();
    let lists = [busy.clone(), quiet.clone()];
    let mut order = Vec::new();
    for _ in 0..3 {
        order.push(popper.pop(&lists, Duration::from_secs(1)).await.unwrap().unwrap().item.list);
    }
    assert!(order.contains(&quiet), "the quiet list starved: {order:?}");
}

async fn vcon_documents_and_ttls(broker: Arc<dyn Broker>) {
    let uuid = uuid::Uuid::new_v4().to_string();
    assert_eq!(broker.get_vcon(&uuid).await.unwrap(), None);
    broker.put_vcon(&uuid, r#"{"uuid":"x"}"#, Ttl::Secs(1)).await.unwrap();
    // A write that keeps the TTL keeps the expiry; the document expires.
    broker.put_vcon(&uuid, r#"{"uuid":"y"}"#, Ttl::Keep).await.unwrap();
    assert_eq!(broker.get_vcon(&uuid).await.unwrap().as_deref(), Some(r#"{"uuid":"y"}"#));
    tokio::time::sleep(Duration::from_millis(2100)).await;
    assert_eq!(broker.get_vcon(&uuid).await.unwrap(), None);

    broker.put_vcon(&uuid, "{}", Ttl::Secs(0)).await.unwrap();
    broker.expire_vcon(&uuid, 1).await.unwrap();
    broker.expire_vcon(&uuid, 0).await.unwrap(); // 0 removes the expiry again
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert!(broker.get_vcon(&uuid).await.unwrap().is_some());
    assert!(broker.delete_vcon(&uuid).await.unwrap());
    assert!(!broker.delete_vcon(&uuid).await.unwrap());
}

/// TTLs past what Redis can hold (its EXPIRE refuses ~9.2e15 s and more) are
/// clamped to a century on both backends instead of failing the write.
async fn huge_ttls_are_clamped_not_refused(broker: Arc<dyn Broker>) {
    let uuid = uuid::Uuid::new_v4().to_string();
    broker.put_vcon(&uuid, "{}", Ttl::Secs(u64::MAX)).await.unwrap();
    broker.expire_vcon(&uuid, u64::MAX).await.unwrap();
    broker.expire_vcon(&uuid, 10_000_000_000_000_000).await.unwrap();
    assert!(broker.get_vcon(&uuid).await.unwrap().is_some(), "a century is not yet over");
    broker.dead_letter(&unique("huge-ttl"), reason(&uuid), u64::MAX).await.unwrap();
    assert!(broker.get_vcon(&uuid).await.unwrap().is_some());
    assert!(broker.delete_vcon(&uuid).await.unwrap());
}

async fn dead_letters_keep_the_python_list_and_a_reason(broker: Arc<dyn Broker>) {
    let ingress = unique("in");
    let uuid = uuid::Uuid::new_v4().to_string();
    broker.put_vcon(&uuid, "{}", Ttl::Secs(0)).await.unwrap();
    broker.dead_letter(&ingress, reason(&uuid), 100).await.unwrap();
    broker.dead_letter(&ingress, reason("other"), 0).await.unwrap();
    assert_eq!(broker.range(&dlq_list(&ingress)).await.unwrap(), [uuid.clone(), "other".to_string()]);
    let reasons = broker.dlq_reasons(&ingress).await.unwrap();
    assert_eq!(reasons.len(), 2);
    assert_eq!((reasons[0].uuid.as_str(), reasons[0].attempts), (uuid.as_str(), 1));
    // A second dead-lettering of the same uuid counts the attempt.
    broker.dead_letter(&ingress, reason(&uuid), 100).await.unwrap();
    let again = broker.dlq_reasons(&ingress).await.unwrap();
    assert!(again.iter().any(|r| r.uuid == uuid && r.attempts == 2), "{again:?}");
}

async fn vcons_are_listed_newest_first_and_searched_with_and(broker: Arc<dyn Broker>) {
    let tel = unique("tel:+1555");
    let name = unique("name:Alice");
    let (a, b, c) = (unique("a"), unique("b"), unique("c"));
    // A unique score window keeps this test apart from others sharing the store.
    let base = 1.0e9 + (uuid::Uuid::new_v4().as_u128() % 1_000_000) as f64 * 10.0;
    broker.index_vcon(&a, base + 1.0, &[tel.clone()], 60).await.unwrap();
    broker.index_vcon(&b, base + 2.0, &[tel.clone(), name.clone()], 60).await.unwrap();
    broker.index_vcon(&c, base + 3.0, &[name.clone()], 60).await.unwrap();
    let window = (Some(base), Some(base + 5.0));
    assert_eq!(broker.list_vcons(window.0, window.1, 0, 10).await.unwrap(), [c.clone(), b.clone(), a.clone()]);
    assert_eq!(broker.list_vcons(window.0, window.1, 1, 1).await.unwrap(), [b.clone()]);
    assert_eq!(broker.list_vcons(Some(base + 2.0), Some(base + 2.0), 0, 10).await.unwrap(), [b.clone()]);
    assert_eq!(broker.list_vcons(window.0, window.1, u64::MAX, u64::MAX).await.unwrap(), Vec::<String>::new());

    let mut both = broker.search(&[tel.clone()]).await.unwrap();
    both.sort();
    let mut expected = vec![a.clone(), b.clone()];
    expected.sort();
    assert_eq!(both, expected);
    assert_eq!(broker.search(&[tel.clone(), name.clone()]).await.unwrap(), [b.clone()]);
    // True AND: a term matching nothing empties the result.
    assert!(broker.search(&[tel.clone(), unique("mailto:nobody")]).await.unwrap().is_empty());
    assert!(broker.search(&[]).await.unwrap().is_empty());

    // Unindexing removes it from the list and every set.
    broker.unindex_vcon(&b, &[tel.clone(), name.clone()]).await.unwrap();
    assert_eq!(broker.list_vcons(window.0, window.1, 0, 10).await.unwrap(), [c.clone(), a.clone()]);
    assert!(broker.search(&[tel, name]).await.unwrap().is_empty());
}

async fn items_move_between_lists_in_order(broker: Arc<dyn Broker>) {
    let (from, to) = (unique("dlq"), unique("in"));
    broker.push(&from, &["a".into(), "b".into(), "c".into()]).await.unwrap();
    broker.push(&to, &["x".into()]).await.unwrap();
    assert_eq!(broker.move_items(&from, &to, 2).await.unwrap(), 2);
    assert_eq!(broker.range(&to).await.unwrap(), ["x", "a", "b"]);
    assert_eq!(broker.move_items(&from, &to, 100).await.unwrap(), 1);
    assert_eq!(broker.move_items(&from, &to, 100).await.unwrap(), 0);
}

async fn stored_documents_are_enumerable(broker: Arc<dyn Broker>) {
    let uuid = uuid::Uuid::new_v4().to_string();
    broker.put_vcon(&uuid, "{}", Ttl::Secs(60)).await.unwrap();
    assert!(broker.vcon_uuids().await.unwrap().contains(&uuid));
    broker.delete_vcon(&uuid).await.unwrap();
    assert!(!broker.vcon_uuids().await.unwrap().contains(&uuid));
}

async fn link_cache_entries_are_kept_replaced_and_expire(broker: Arc<dyn Broker>) {
    let ns = unique("link:token");
    let quota = 1 << 20;
    assert_eq!(broker.cache_get(&ns, "k").await.unwrap(), None);
    broker.cache_set(&ns, "k", b"one", 60, quota).await.unwrap();
    broker.cache_set(&ns, "k", &[0, 159, 146, 150], 60, quota).await.unwrap(); // not UTF-8
    assert_eq!(broker.cache_get(&ns, "k").await.unwrap().as_deref(), Some(&[0, 159, 146, 150][..]));
    broker.cache_delete(&ns, "k").await.unwrap();
    assert_eq!(broker.cache_get(&ns, "k").await.unwrap(), None);
    broker.cache_set(&ns, "k", b"short", 1, quota).await.unwrap();
    tokio::time::sleep(Duration::from_millis(2100)).await;
    assert_eq!(broker.cache_get(&ns, "k").await.unwrap(), None, "expired");
}

async fn create_vcon_stores_only_when_nothing_is_there(broker: Arc<dyn Broker>) {
    let uuid = uuid::Uuid::new_v4().to_string();
    let term = unique("tel:+1555");
    let created = broker.create_vcon(&uuid, r#"{"n":1}"#, Ttl::Secs(60), 10.0, &[term.clone()], 60).await.unwrap();
    assert_eq!(created, None, "stored");
    let second = broker.create_vcon(&uuid, r#"{"n":2}"#, Ttl::Secs(60), 20.0, &[unique("tel:+1666")], 60).await;
    assert_eq!(second.unwrap().as_deref(), Some(r#"{"n":1}"#), "the first document is returned, not replaced");
    assert_eq!(broker.get_vcon(&uuid).await.unwrap().as_deref(), Some(r#"{"n":1}"#));
    assert_eq!(broker.search(&[term]).await.unwrap(), [uuid.clone()]);
    // Concurrent creators: exactly one stores.
    let racing = uuid::Uuid::new_v4().to_string();
    let attempts = (0..8).map(|i| {
        let (broker, racing) = (broker.clone(), racing.clone());
        tokio::spawn(async move {
            broker.create_vcon(&racing, &format!("{{\"n\":{i}}}"), Ttl::Secs(60), 1.0, &[], 60).await
        })
    });
    let mut stored = 0;
    for attempt in attempts {
        if attempt.await.unwrap().unwrap().is_none() {
            stored += 1;
        }
    }
    assert_eq!(stored, 1);
}

async fn link_cache_namespaces_never_share_an_entry(broker: Arc<dyn Broker>) {
    // `a` + `x:k` and `a:x` + `k` once mapped to the same stored key.
    let base = unique("link:a");
    let (short, long) = (base.clone(), format!("{base}:x"));
    broker.cache_set(&short, "x:k", b"short's", 60, 1 << 20).await.unwrap();
    broker.cache_set(&long, "k", b"long's", 60, 1 << 20).await.unwrap();
    assert_eq!(broker.cache_get(&short, "x:k").await.unwrap().as_deref(), Some(&b"short's"[..]));
    assert_eq!(broker.cache_get(&long, "k").await.unwrap().as_deref(), Some(&b"long's"[..]));
    let braces = format!("{base}}}{{%");
    assert_eq!(broker.cache_get(&braces, "k").await.unwrap(), None);
}

async fn link_cache_quota_refuses_writes_past_it_and_replacing_gives_bytes_back(broker: Arc<dyn Broker>) {
    let ns = unique("link:quota");
    let value = vec![7u8; 1000];
    let charge = CACHE_ENTRY_OVERHEAD_BYTES + 2 + 1000;
    let quota = charge * 3;
    for key in ["k1", "k2", "k3"] {
        assert!(matches!(broker.cache_set(&ns, key, &value, 600, quota).await.unwrap(), CacheWrite::Stored { .. }));
    }
    assert_eq!(
        broker.cache_set(&ns, "k4", &value, 600, quota).await.unwrap(),
        CacheWrite::OverQuota { used: quota },
        "a fourth entry would pass the quota"
    );
    assert_eq!(broker.cache_get(&ns, "k4").await.unwrap(), None, "a refused write stores nothing");
    // Replacing an entry gives back its bytes first; deleting one frees room.
    assert!(matches!(broker.cache_set(&ns, "k1", &value, 600, quota).await.unwrap(), CacheWrite::Stored { .. }));
    broker.cache_delete(&ns, "k2").await.unwrap();
    assert!(matches!(broker.cache_set(&ns, "k4", &value, 600, quota).await.unwrap(), CacheWrite::Stored { .. }));
    // Another namespace has its own quota.
    let other = unique("link:other");
    assert!(matches!(broker.cache_set(&other, "k1", &value, 600, quota).await.unwrap(), CacheWrite::Stored { .. }));
}

async fn a_dead_workers_items_return_to_the_head_in_order(broker: Arc<dyn Broker>) {
    let (list, dead, live) = (unique("in"), unique("dead"), unique("live"));
    broker.push(&list, &["a".into(), "b".into(), "c".into(), "d".into()]).await.unwrap();
    let mut dead_popper = broker.popper(&dead).await.unwrap();
    let lists = [list.clone()];
    broker.heartbeat(&dead, &lists, 1).await.unwrap();
    for _ in 0..2 {
        dead_popper.pop(&lists, Duration::from_secs(1)).await.unwrap().unwrap();
    }
    let mut live_popper = broker.popper(&live).await.unwrap();
    broker.heartbeat(&live, &lists, 30).await.unwrap();
    let held = live_popper.pop(&lists, Duration::from_secs(1)).await.unwrap().unwrap().item;
    assert_eq!(held.uuid, "c");
    // The dead worker's heartbeat lapses; only its items come back, oldest first.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    // (A shared Redis may hold other dead workers too: at least these two return.)
    let found = broker.dead_workers(std::slice::from_ref(&live)).await.unwrap();
    assert!(found.contains(&dead) && !found.contains(&live), "{found:?}");
    assert_eq!(broker.reclaim_worker(&dead).await.unwrap(), 2);
    assert_eq!(broker.range(&list).await.unwrap(), ["a", "b", "d"]);
    assert_eq!(broker.range(&processing_list(&list, &live)).await.unwrap(), ["c"]);
    assert_eq!(broker.reclaim_worker(&dead).await.unwrap(), 0);
    assert_eq!(broker.range(&list).await.unwrap(), ["a", "b", "d"], "nothing is returned twice");
    assert!(
        !broker.dead_workers(std::slice::from_ref(&live)).await.unwrap().contains(&dead),
        "forgotten once reclaimed"
    );
}

async fn a_worker_whose_heartbeat_is_back_keeps_its_items(broker: Arc<dyn Broker>) {
    let (list, worker) = (unique("in"), unique("slow"));
    broker.push(&list, &["a".into()]).await.unwrap();
    let lists = [list.clone()];
    broker.heartbeat(&worker, &lists, 1).await.unwrap();
    let mut popper = broker.popper(&worker).await.unwrap();
    popper.pop(&lists, Duration::from_secs(1)).await.unwrap().unwrap();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(broker.dead_workers(&[]).await.unwrap().contains(&worker));
    if broker.shared() {
        // Its heartbeat returns before the reaper's second look.
        broker.heartbeat(&worker, &lists, 30).await.unwrap();
        assert_eq!(broker.reclaim_worker(&worker).await.unwrap(), 0);
        assert_eq!(broker.range(&processing_list(&list, &worker)).await.unwrap(), ["a"]);
        // Still registered: found should it die later.
        broker.heartbeat(&worker, &lists, 1).await.unwrap();
        tokio::time::sleep(Duration::from_millis(1500)).await;
        assert!(broker.dead_workers(&[]).await.unwrap().contains(&worker));
    } else {
        // One process owns the store: a worker not its own is gone.
        assert_eq!(broker.reclaim_worker(&worker).await.unwrap(), 1);
        assert_eq!(broker.range(&list).await.unwrap(), ["a"]);
    }
}

async fn a_pop_reads_the_document_with_the_item(broker: Arc<dyn Broker>) {
    let (list, worker) = (unique("in"), unique("w"));
    let (stored, missing) = (uuid::Uuid::new_v4().to_string(), uuid::Uuid::new_v4().to_string());
    let doc = format!(r#"{{"uuid":"{stored}","vcon":"0.3.0"}}"#);
    broker.put_vcon(&stored, &doc, Ttl::Secs(600)).await.unwrap();
    broker.push(&list, &[stored.clone(), missing.clone()]).await.unwrap();
    let mut popper = broker.popper(&worker).await.unwrap();
    let lists = [list.clone()];
    let first = popper.pop(&lists, Duration::from_secs(1)).await.unwrap().unwrap();
    let second = popper.pop(&lists, Duration::from_secs(1)).await.unwrap().unwrap();
    assert_eq!((first.item.uuid.as_str(), second.item.uuid.as_str()), (stored.as_str(), missing.as_str()));
    match (&first.prefetched, &second.prefetched) {
        // A cluster keeps the document in another slot: the worker reads it.
        (None, None) => assert!(broker.backend() == "redis", "only a cluster pops without reading"),
        (Some(first), Some(second)) => {
            let read: serde_json::Value =
                serde_json::from_str(first.document.clone().unwrap().unwrap().as_str()).unwrap();
            assert_eq!(read, serde_json::from_str::<serde_json::Value>(&doc).unwrap());
            assert_eq!(second.document, Some(None), "no document: said so, not left unread");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(broker.range(&processing_list(&list, &worker)).await.unwrap(), [stored, missing]);
}

async fn finish_writes_every_step_then_acks(broker: Arc<dyn Broker>) {
    let (list, worker) = (unique("in"), unique("w"));
    let (egress, routed) = (unique("egress"), unique("routed"));
    let (uuid, successor) = (uuid::Uuid::new_v4().to_string(), uuid::Uuid::new_v4().to_string());
    broker.put_vcon(&uuid, r#"{"v":1}"#, Ttl::Secs(0)).await.unwrap();
    broker.push(&list, std::slice::from_ref(&uuid)).await.unwrap();
    let mut popper = broker.popper(&worker).await.unwrap();
    let taken = popper.pop(std::slice::from_ref(&list), Duration::from_secs(1)).await.unwrap().unwrap();
    let term = format!("tel:+1{}", &successor[..8]);
    let mut finish = Finish::default();
    finish
        .push(FinishStep::Write { uuid: uuid.clone(), json: r#"{"v":2}"#.into(), ttl: Ttl::Keep })
        .push(FinishStep::Write { uuid: successor.clone(), json: r#"{"v":3}"#.into(), ttl: Ttl::Secs(0) })
        .push(FinishStep::Index {
            uuid: successor.clone(),
            score: 1_999_999_999.0,
            terms: vec![term.clone()],
            terms_ttl_secs: 600,
        })
        .push(FinishStep::Expire { uuid: uuid.clone(), secs: 600 })
        .push(FinishStep::TraceContext {
            list: egress.clone(),
            uuid: uuid.clone(),
            context_json: r#"{"t":1}"#.into(),
            ttl_secs: 60,
        })
        .push(FinishStep::Push { list: egress.clone(), uuid: uuid.clone() })
        .push(FinishStep::Push { list: routed.clone(), uuid: uuid.clone() })
        .push(FinishStep::Push { list: egress.clone(), uuid: successor.clone() });
    broker.finish(&worker, &taken.item, &finish).await.unwrap();
    let json = |text: Option<String>| serde_json::from_str::<serde_json::Value>(&text.unwrap()).unwrap();
    assert_eq!(json(broker.get_vcon(&uuid).await.unwrap()), serde_json::json!({"v": 2}));
    assert_eq!(json(broker.get_vcon(&successor).await.unwrap()), serde_json::json!({"v": 3}));
    assert_eq!(broker.range(&egress).await.unwrap(), [uuid.clone(), successor.clone()], "pushed in order");
    assert_eq!(broker.range(&routed).await.unwrap(), [uuid.clone()]);
    assert_eq!(broker.len(&processing_list(&list, &worker)).await.unwrap(), 0, "acked");
    assert_eq!(broker.pop_trace_context(&egress, &uuid).await.unwrap().as_deref(), Some(r#"{"t":1}"#));
    assert_eq!(broker.search(std::slice::from_ref(&term)).await.unwrap(), [successor.clone()]);
    assert!(broker.list_vcons(Some(1_999_999_999.0), None, 0, 10).await.unwrap().contains(&successor));
    // An empty wrap-up is just the ack.
    broker.push(&list, std::slice::from_ref(&uuid)).await.unwrap();
    let again = popper.pop(std::slice::from_ref(&list), Duration::from_secs(1)).await.unwrap().unwrap();
    broker.finish(&worker, &again.item, &Finish::default()).await.unwrap();
    assert_eq!(broker.len(&processing_list(&list, &worker)).await.unwrap(), 0);
    for key in [&egress, &routed] {
        broker.pop_front_many(key, 10).await.unwrap();
    }
}

async fn a_finish_that_fails_midway_leaves_the_item_held(broker: Arc<dyn Broker>) {
    let (list, worker) = (unique("in"), unique("w"));
    let uuid = uuid::Uuid::new_v4().to_string();
    // On Redis a list named like a document key is that string: pushing to it fails.
    let not_a_list_id = uuid::Uuid::new_v4().to_string();
    broker.put_vcon(&not_a_list_id, "{}", Ttl::Secs(600)).await.unwrap();
    let not_a_list = format!("vcon:{not_a_list_id}");
    broker.push(&list, std::slice::from_ref(&uuid)).await.unwrap();
    let mut popper = broker.popper(&worker).await.unwrap();
    let taken = popper.pop(std::slice::from_ref(&list), Duration::from_secs(1)).await.unwrap().unwrap();
    let egress = unique("egress");
    let mut finish = Finish::default();
    finish
        .push(FinishStep::Push { list: egress.clone(), uuid: uuid.clone() })
        .push(FinishStep::Push { list: not_a_list.clone(), uuid: uuid.clone() });
    let result = broker.finish(&worker, &taken.item, &finish).await;
    if broker.backend() == "embedded" {
        // Lists and documents never share a name there: nothing to fail.
        result.unwrap();
        return;
    }
    assert!(result.is_err(), "pushing to a string must fail");
    assert_eq!(
        broker.range(&processing_list(&list, &worker)).await.unwrap(),
        [uuid.clone()],
        "not acked: it runs again"
    );
    broker.pop_front_many(&egress, 10).await.unwrap();
}

macro_rules! both_backends {
    ($($case:ident),* $(,)?) => {
        mod embedded_backend {
            use super::*;
            $(
                #[tokio::test]
                async fn $case() {
                    let dir = tempfile::tempdir().unwrap();
                    super::$case(embedded(&dir).await).await;
                }
            )*
        }
        mod redis_backend {
            use super::*;
            $(
                #[tokio::test]
                async fn $case() {
                    super::$case(redis().await).await;
                }
            )*
        }
        mod redis_cluster_backend {
            use super::*;
            $(
                #[tokio::test]
                async fn $case() {
                    super::$case(cluster().await).await;
                }
            )*
        }
    };
}

both_backends!(
    lists_are_fifo_with_a_head,
    reliable_pop_moves_acks_and_requeues,
    a_waiting_pop_wakes_on_push,
    several_lists_are_served_in_turn,
    vcon_documents_and_ttls,
    huge_ttls_are_clamped_not_refused,
    dead_letters_keep_the_python_list_and_a_reason,
    vcons_are_listed_newest_first_and_searched_with_and,
    items_move_between_lists_in_order,
    stored_documents_are_enumerable,
    create_vcon_stores_only_when_nothing_is_there,
    a_dead_workers_items_return_to_the_head_in_order,
    a_worker_whose_heartbeat_is_back_keeps_its_items,
    link_cache_entries_are_kept_replaced_and_expire,
    link_cache_namespaces_never_share_an_entry,
    link_cache_quota_refuses_writes_past_it_and_replacing_gives_bytes_back,
    a_pop_reads_the_document_with_the_item,
    finish_writes_every_step_then_acks,
    a_finish_that_fails_midway_leaves_the_item_held,
);
