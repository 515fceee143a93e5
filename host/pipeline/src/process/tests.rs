//! The pipeline's rules with scripted links and tracers (no wasm) on the
//! embedded broker: halt, error → DLQ with a reason, route and expire
//! directives, storage failure policies, tracer failures, and the
//! at-least-once order (nothing is acked unless the whole wrap-up is written).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::cloned_ref_to_slice_refs)] // tests fail loudly on purpose

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use conserver_broker::{Broker, EmbeddedBroker, Taken, Ttl, dlq_list, processing_list};
use conserver_config::StorageFailure;
use conserver_runtime::{Action, CallContext, Directive, LinkFailure, LinkOutcome, TracePoint};
use conserver_storage::{Storage, StorageError};
use conserver_vcons::{StoreSettings, VconStore};

use super::{Outcome, ProcessOptions, process_vcon};
use crate::{ChainPlan, LinkRunner, LinkStep, TraceRunner, TracerStep};

const WORKER: &str = "test-worker";
const INGRESS: &str = "in";
const EGRESS: &str = "out";

/// What a scripted link answers, given the vCon it is called with.
type Answer = fn(&str) -> Result<LinkOutcome, LinkFailure>;

/// A link that answers from a script and counts its calls.
struct Scripted {
    name: String,
    answer: Answer,
    calls: Mutex<u32>,
}

#[async_trait]
impl LinkRunner for Scripted {
    fn name(&self) -> &str {
        &self.name
    }

    async fn invoke(&self, _ctx: CallContext<'_>, vcon: &str) -> Result<LinkOutcome, LinkFailure> {
        *self.calls.lock().unwrap() += 1;
        (self.answer)(vcon)
    }
}

/// A tracer that fails every call.
struct FailingTracer;

#[async_trait]
impl TraceRunner for FailingTracer {
    fn name(&self) -> &str {
        "failing"
    }

    async fn trace(&self, _point: &TracePoint, _vcon: &str) -> Result<(), LinkFailure> {
        Err(LinkFailure::Refused { message: "tracer backend down".into(), retryable: true })
    }
}

/// A storage in memory, or one that always fails.
#[derive(Default)]
struct MemoryStorage {
    failing: bool,
    saved: Mutex<HashMap<String, String>>,
}

#[async_trait]
impl Storage for MemoryStorage {
    fn name(&self) -> &str {
        if self.failing { "broken" } else { "memory" }
    }

    async fn save(&self, uuid: &str, vcon_json: &str) -> Result<(), StorageError> {
        if self.failing {
            return Err(StorageError::Backend {
                storage: "broken".into(),
                operation: "save",
                message: "disk on fire".into(),
            });
        }
        self.saved.lock().unwrap().insert(uuid.into(), vcon_json.into());
        Ok(())
    }

    async fn get(&self, uuid: &str) -> Result<Option<String>, StorageError> {
        Ok(self.saved.lock().unwrap().get(uuid).cloned())
    }

    async fn delete(&self, uuid: &str) -> Result<bool, StorageError> {
        Ok(self.saved.lock().unwrap().remove(uuid).is_some())
    }
}

fn outcome(action: Action, directives: Vec<Directive>) -> LinkOutcome {
    LinkOutcome { action, directives, fuel_used: 1, cache_hits: 0, memory_peak_bytes: 0 }
}

/// Adds a tag analysis-free marker: the vCon with `"tagged": true`.
fn tag(vcon: &str) -> Result<LinkOutcome, LinkFailure> {
    let mut doc: serde_json::Map<String, serde_json::Value> = serde_json::from_str(vcon).unwrap();
    doc.insert("tagged".into(), true.into());
    Ok(outcome(Action::Proceed(Some(serde_json::Value::Object(doc).to_string())), Vec::new()))
}

fn halt(_: &str) -> Result<LinkOutcome, LinkFailure> {
    Ok(outcome(Action::Halt, vec![Directive::RouteTo(vec!["review".into()])]))
}

fn refuse(_: &str) -> Result<LinkOutcome, LinkFailure> {
    Err(LinkFailure::Refused { message: "vendor said no".into(), retryable: true })
}

fn route_to_review(_: &str) -> Result<LinkOutcome, LinkFailure> {
    Ok(outcome(Action::Proceed(None), vec![Directive::RouteTo(vec!["review".into()])]))
}

fn route_to_secret(_: &str) -> Result<LinkOutcome, LinkFailure> {
    Ok(outcome(Action::Proceed(None), vec![Directive::RouteTo(vec!["elsewhere".into()])]))
}

fn expire_for_ever(_: &str) -> Result<LinkOutcome, LinkFailure> {
    Ok(outcome(Action::Proceed(None), vec![Directive::ExpireAfterSecs(conserver_broker::MAX_TTL_SECS + 1)]))
}

/// A test bed: the embedded broker in a temp dir, a vCon queued on `in`.
struct Bed {
    _dir: tempfile::TempDir,
    dir: std::path::PathBuf,
    broker: Arc<dyn Broker>,
    store: VconStore,
    uuid: String,
    stored: Arc<MemoryStorage>,
}

impl Bed {
    async fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let broker: Arc<dyn Broker> = Arc::new(EmbeddedBroker::open(dir.path()).await.unwrap());
        let store = VconStore::new(broker.clone(), StoreSettings { vcon_expiry_secs: 3600, index_expiry_secs: 0 });
        let uuid = "018f0000-0000-7000-8000-000000000001".to_string();
        let doc = format!(
            r#"{{"uuid":"{uuid}","vcon":"0.3.0","created_at":"2026-01-01T00:00:00Z","parties":[],"dialog":[]}}"#
        );
        broker.put_vcon(&uuid, &doc, Ttl::Secs(0)).await.unwrap();
        broker.push(INGRESS, std::slice::from_ref(&uuid)).await.unwrap();
        Self { dir: dir.path().to_path_buf(), _dir: dir, broker, store, uuid, stored: Arc::default() }
    }

    fn chain(&self, links: &[(&str, Answer)]) -> ChainPlan {
        let steps: Vec<LinkStep> = links
            .iter()
            .map(|(name, answer)| LinkStep {
                link: Arc::new(Scripted { name: (*name).into(), answer: *answer, calls: Mutex::new(0) }),
                options_json: Arc::from("{}"),
                allowed_routes: Arc::new(["review".to_string(), EGRESS.to_string()].into_iter().collect()),
            })
            .collect();
        let storage: Arc<dyn Storage> = self.stored.clone();
        ChainPlan {
            name: "main".into(),
            link_names: links.iter().map(|(name, _)| (*name).to_string()).collect::<Vec<_>>().into(),
            links: steps,
            tracers: Vec::new(),
            storages: vec![storage.clone()],
            egress_lists: vec![EGRESS.into()],
            consumed_lists: Arc::new(HashSet::from([INGRESS.to_string()])),
            timeout: None,
            storage_failure: StorageFailure::Dlq,
            storage_retry: Duration::ZERO,
            fallback_storages: Arc::new(vec![storage]),
        }
    }

    async fn take(&self) -> Taken {
        let mut popper = self.broker.popper(WORKER).await.unwrap();
        popper.pop(&[INGRESS.to_string()], Duration::from_secs(1)).await.unwrap().unwrap()
    }

    async fn run(&self, chain: &ChainPlan) -> Result<Outcome, conserver_broker::BrokerError> {
        let taken = self.take().await;
        process_vcon(&self.store, chain, WORKER, &taken, options()).await
    }

    async fn held(&self) -> Vec<String> {
        self.broker.range(&processing_list(INGRESS, WORKER)).await.unwrap()
    }

    async fn list(&self, name: &str) -> Vec<String> {
        self.broker.range(name).await.unwrap()
    }

    async fn document(&self) -> serde_json::Value {
        serde_json::from_str(&self.broker.get_vcon(&self.uuid).await.unwrap().unwrap()).unwrap()
    }
}

fn options() -> ProcessOptions {
    ProcessOptions { dlq_expiry_secs: 0, parallel_storage: false, vcon_expiry_secs: 3600, index_expiry_secs: 0 }
}

#[tokio::test]
async fn a_completed_chain_writes_stores_sends_to_egress_and_acks_in_one_wrap_up() {
    let bed = Bed::new().await;
    let chain = bed.chain(&[("tag", tag)]);
    assert_eq!(bed.run(&chain).await.unwrap(), Outcome::Completed);
    assert_eq!(bed.document().await["tagged"], true, "the changed vCon is written back");
    assert_eq!(bed.list(EGRESS).await, [bed.uuid.clone()]);
    assert!(bed.held().await.is_empty(), "acked");
    let saved = bed.stored.saved.lock().unwrap().get(&bed.uuid).cloned().unwrap();
    assert!(saved.contains("\"tagged\":true"), "the storage got the changed vCon");
}

#[tokio::test]
async fn a_halt_stops_the_chain_sends_only_the_routes_and_acks() {
    let bed = Bed::new().await;
    let chain = bed.chain(&[("gate", halt), ("tag", tag)]);
    assert_eq!(bed.run(&chain).await.unwrap(), Outcome::Halted { link: "gate".into() });
    assert!(bed.list(EGRESS).await.is_empty(), "a halted vCon is not sent to egress");
    assert_eq!(bed.list("review").await, [bed.uuid.clone()], "the route it asked for");
    assert!(bed.stored.saved.lock().unwrap().is_empty(), "a halted vCon is not stored");
    assert!(bed.document().await.get("tagged").is_none(), "the link after the halt did not run");
    assert!(bed.held().await.is_empty(), "acked");
}

#[tokio::test]
async fn a_link_error_dead_letters_with_its_reason_and_leaves_the_vcon_as_it_came() {
    let bed = Bed::new().await;
    let chain = bed.chain(&[("tag", tag), ("vendor", refuse)]);
    let Outcome::DeadLettered(failure) = bed.run(&chain).await.unwrap() else { panic!("not dead-lettered") };
    assert_eq!(failure.step, "vendor");
    assert!(failure.retryable);
    assert_eq!(bed.list(&dlq_list(INGRESS)).await, [bed.uuid.clone()]);
    let reasons = bed.broker.dlq_reasons(INGRESS).await.unwrap();
    assert_eq!(reasons[0].link, "vendor");
    assert!(reasons[0].error.contains("vendor said no"), "{:?}", reasons[0]);
    assert!(bed.document().await.get("tagged").is_none(), "nothing of the failed run is written");
    assert!(bed.list(EGRESS).await.is_empty());
    assert_eq!(bed.held().await, [bed.uuid.clone()], "still held: the worker acks a dead-lettered vCon itself");
}

#[tokio::test]
async fn routes_go_where_allowed_and_a_denied_route_dead_letters() {
    let bed = Bed::new().await;
    assert_eq!(bed.run(&bed.chain(&[("router", route_to_review)])).await.unwrap(), Outcome::Completed);
    assert_eq!(bed.list("review").await, [bed.uuid.clone()]);
    assert_eq!(bed.list(EGRESS).await, [bed.uuid.clone()]);

    bed.broker.push(INGRESS, std::slice::from_ref(&bed.uuid)).await.unwrap();
    let Outcome::DeadLettered(failure) = bed.run(&bed.chain(&[("router", route_to_secret)])).await.unwrap() else {
        panic!("a denied route must dead-letter")
    };
    assert!(failure.error.contains("`elsewhere`") && failure.error.contains("allowed_routes"), "{}", failure.error);
    assert!(!failure.retryable);
    assert!(bed.list("elsewhere").await.is_empty());
}

#[tokio::test]
async fn a_ttl_beyond_the_longest_dead_letters() {
    let bed = Bed::new().await;
    let Outcome::DeadLettered(failure) = bed.run(&bed.chain(&[("ttl", expire_for_ever)])).await.unwrap() else {
        panic!("must dead-letter")
    };
    assert!(failure.error.contains("100 years"), "{}", failure.error);
}

#[tokio::test]
async fn storage_failure_policies_dead_letter_or_log() {
    let bed = Bed::new().await;
    let broken: Arc<dyn Storage> = Arc::new(MemoryStorage { failing: true, ..MemoryStorage::default() });
    let mut chain = bed.chain(&[("tag", tag)]);
    chain.storages = vec![broken.clone()];
    let Outcome::DeadLettered(failure) = bed.run(&chain).await.unwrap() else { panic!("must dead-letter") };
    assert_eq!(failure.step, "storage:broken");
    assert!(failure.retryable && failure.error.contains("disk on fire"), "{failure:?}");
    assert!(bed.list(EGRESS).await.is_empty(), "not sent on when not stored");
    bed.broker.ack(WORKER, &conserver_broker::Popped { list: INGRESS.into(), uuid: bed.uuid.clone() }).await.unwrap();

    bed.broker.push(INGRESS, std::slice::from_ref(&bed.uuid)).await.unwrap();
    chain.storage_failure = StorageFailure::Log;
    assert_eq!(bed.run(&chain).await.unwrap(), Outcome::Completed, "storage_failure: log goes on");
    assert_eq!(bed.list(EGRESS).await, [bed.uuid.clone()]);
}

#[tokio::test]
async fn a_failing_tracer_is_logged_unless_it_asks_to_dead_letter() {
    let bed = Bed::new().await;
    let mut chain = bed.chain(&[("tag", tag)]);
    chain.tracers =
        vec![TracerStep { tracer: Arc::new(FailingTracer), options_json: Arc::from("{}"), dlq_on_error: false }];
    assert_eq!(bed.run(&chain).await.unwrap(), Outcome::Completed);

    bed.broker.push(INGRESS, std::slice::from_ref(&bed.uuid)).await.unwrap();
    chain.tracers[0].dlq_on_error = true;
    let Outcome::DeadLettered(failure) = bed.run(&chain).await.unwrap() else { panic!("must dead-letter") };
    assert_eq!(failure.step, "tracer:failing");
}

#[tokio::test]
async fn a_vcon_missing_from_the_broker_is_read_back_from_storage_and_indexed() {
    let bed = Bed::new().await;
    let doc = bed.broker.get_vcon(&bed.uuid).await.unwrap().unwrap();
    bed.stored.saved.lock().unwrap().insert(bed.uuid.clone(), doc);
    bed.broker.delete_vcon(&bed.uuid).await.unwrap();
    assert_eq!(bed.run(&bed.chain(&[("tag", tag)])).await.unwrap(), Outcome::Completed);
    assert_eq!(bed.document().await["tagged"], true);
    assert_eq!(bed.broker.list_vcons(None, None, 0, 10).await.unwrap(), [bed.uuid.clone()], "re-indexed");
}

#[tokio::test]
async fn nothing_is_acked_unless_the_whole_wrap_up_is_written() {
    let bed = Bed::new().await;
    // Make the egress push fail inside the wrap-up's transaction.
    let url = format!("sqlite://{}", bed.dir.join("broker.sqlite3").display());
    let mut conn = <sqlx::SqliteConnection as sqlx::Connection>::connect(&url).await.unwrap();
    sqlx::raw_sql(
        "CREATE TRIGGER refuse_egress BEFORE INSERT ON list_items WHEN NEW.list = 'out'
         BEGIN SELECT RAISE(ABORT, 'egress refused by the test'); END;",
    )
    .execute(&mut conn)
    .await
    .unwrap();
    let chain = bed.chain(&[("tag", tag)]);
    let error = bed.run(&chain).await.expect_err("the wrap-up must fail");
    assert!(error.to_string().contains("egress refused"), "{error}");
    assert_eq!(bed.held().await, [bed.uuid.clone()], "still held: it runs again");
    assert!(bed.document().await.get("tagged").is_none(), "the write-back was rolled back with the push");
    assert!(bed.list(EGRESS).await.is_empty());

    // Once the broker takes writes again, the requeued vCon completes.
    sqlx::raw_sql("DROP TRIGGER refuse_egress").execute(&mut conn).await.unwrap();
    bed.broker
        .requeue(WORKER, &conserver_broker::Popped { list: INGRESS.into(), uuid: bed.uuid.clone() })
        .await
        .unwrap();
    assert_eq!(bed.run(&chain).await.unwrap(), Outcome::Completed);
    assert_eq!(bed.list(EGRESS).await, [bed.uuid.clone()]);
    assert!(bed.held().await.is_empty());
}
