//! `jlinc` tracer: record every step of a chain as a JLINC audit event.
//!
//! The host calls the tracer before a chain's first link (`link_index` -1) and
//! after each link. Each call produces one JLINC `data` event from a *sender*
//! entity to a *recipient* entity:
//! - before the first link: from `<prefix>-system@<domain>` to the first link;
//! - after link `i`: from link `i` to link `i + 1`, or to the system entity after
//!   the last link.
//!
//! Link entities are `<prefix>-<link name>@<domain>`, where names are sanitised
//! (lower-cased, every character outside `[a-z0-9._-]` replaced by `_`) and
//! `<prefix>` is the sanitised `system_prefix`.
//!
//! Every call to the JLINC data store is `POST <data_store_api_url>/api/v1/data/<path>`
//! with `Authorization: Bearer <data_store_api_key>` and a JSON body (Python's
//! `json.dumps` form); the answer's JSON is read whatever its status, as in Python:
//! 1. `entity/domains/get {}` → a list; the domain is its first item. It is cached
//!    (per data-store URL, in the tracer's cache shared by all workers, for a
//!    day), and the system entity is set up when it is fetched.
//! 2. Entity set-up, once per name (cached the same way): `entity/get {shortName}`;
//!    when the answer has no `didDoc`, `entity/create {shortName}`; still none is
//!    an error.
//! 3. `event/produce {type: "data", senderShortName, recipientShortName,
//!    agreementId, data, meta: {in_vcon_uuid, out_vcon_uuid}, archive: {url:
//!    archive_api_url, key: archive_api_key}}`, where `data` is `{"hash": <SHA-256
//!    hex of the vCon in Python's json.dumps form>}` (the hash Python computes),
//!    or the whole vCon when `hash_event_data` is false. The answer's
//!    `created.eventId` is logged.
//!
//! A failure in these steps is logged as a warning and the chain goes on, as in
//! Python; with `dlq_vcon_on_error: true` it is returned to the host instead,
//! which then sends the vCon to the dead-letter queue.
//!
//! Options (defaults as in the Python conserver's `tracers.jlinc`):
//! - `data_store_api_url` (`"http://jlinc-server:9090"`), `data_store_api_key` (`""`)
//! - `archive_api_url` (`"http://jlinc-server:9090"`), `archive_api_key` (`""`):
//!   passed to the data store in each event.
//! - `system_prefix` (`"VCONTest"`)
//! - `agreement_id` (`"00000000-0000-0000-0000-000000000000"`)
//! - `hash_event_data` (bool, `true`)
//! - `dlq_vcon_on_error` (bool, `false`): read by the host too.
//!
//! The data store's host must be in the tracer's `allowed_outbound_hosts`.
//!
//! Differences from Python:
//! - **Sender off-by-one fixed:** after link `i` Python named `links[i - 1]` as the
//!   sender, so after the first link the sender was the *last* link of the chain
//!   (Python's negative indexing) and every later event was shifted by one. The
//!   sender here is the link that just ran, `links[i]`. Single-link chains (the
//!   Python test) give the same events.
//! - Python never merged its defaults into configured options: a config missing
//!   any key lost every event (a `KeyError` logged as a warning), and
//!   `hash_event_data` was off unless set, so the whole vCon was sent. Here absent
//!   options take the defaults above, so events carry the hash unless
//!   `hash_event_data: false`.
//! - `dlq_vcon_on_error` works: Python swallowed every JLINC failure, so the
//!   option never dead-lettered anything.
//! - The domain and entity caches live in the tracer's cache (shared by workers,
//!   kept a day, keyed by the data-store URL) instead of process globals; the
//!   system entity is also checked whenever it is a sender or recipient (a cache
//!   hit costs no request), so a failed first set-up is retried.
//! - An option of the wrong type is an error naming it (Python used it as is).
//! - The vCon is the one the host hands over (Python re-read `out_vcon_uuid` from
//!   Redis and returned `False` when it was missing).

use conserver_link_sdk::http::{Client, Request, Transport};
use conserver_link_sdk::tracer::{TracePoint, Tracer};
use conserver_link_sdk::{Vcon, cache, export_tracer, log, python_json};
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

/// The `jlinc` tracer.
pub struct Jlinc;

const DEFAULT_URL: &str = "http://jlinc-server:9090";
const NIL_AGREEMENT: &str = "00000000-0000-0000-0000-000000000000";
/// Cache entries live this long (0 means the host's maximum, a day).
const CACHE_TTL_SECS: u32 = 0;

/// The tracer's options, defaults merged.
#[derive(Debug, Clone, PartialEq)]
struct Options {
    data_store_api_url: String,
    data_store_api_key: String,
    archive_api_url: String,
    archive_api_key: String,
    system_prefix: String,
    agreement_id: String,
    hash_event_data: bool,
    dlq_vcon_on_error: bool,
}

fn option<T: DeserializeOwned>(point: &TracePoint, key: &str, default: T) -> Result<T, String> {
    match point.options.get(key) {
        None | Some(Value::Null) => Ok(default),
        Some(value) => serde_json::from_value(value.clone())
            .map_err(|e| format!("option `{key}` of tracer `{}` is invalid: {e}", point.tracer_name)),
    }
}

impl Options {
    fn from_point(point: &TracePoint) -> Result<Self, String> {
        Ok(Self {
            data_store_api_url: option(point, "data_store_api_url", DEFAULT_URL.to_string())?,
            data_store_api_key: option(point, "data_store_api_key", String::new())?,
            archive_api_url: option(point, "archive_api_url", DEFAULT_URL.to_string())?,
            archive_api_key: option(point, "archive_api_key", String::new())?,
            system_prefix: option(point, "system_prefix", "VCONTest".to_string())?,
            agreement_id: option(point, "agreement_id", NIL_AGREEMENT.to_string())?,
            hash_event_data: option(point, "hash_event_data", true)?,
            dlq_vcon_on_error: option(point, "dlq_vcon_on_error", false)?,
        })
    }
}

/// Python's `_sanitize`: lower-case, and `_` for every character outside `[a-z0-9._-]`.
pub fn sanitize(input: &str) -> String {
    input
        .to_lowercase()
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') { c } else { '_' })
        .collect()
}

/// SHA-256 hex of the vCon in Python's `json.dumps` form (what Python hashed).
pub fn vcon_hash(vcon: &Vcon) -> String {
    let text = python_json::dumps(&Value::Object(vcon.to_map()));
    Sha256::digest(text.as_bytes()).iter().map(|b| format!("{b:02x}")).collect()
}

/// Python's `"didDoc" in reply`.
fn has_did_doc(reply: &Value) -> Result<bool, String> {
    match reply {
        Value::Object(map) => Ok(map.contains_key("didDoc")),
        Value::Array(items) => Ok(items.iter().any(|item| item.as_str() == Some("didDoc"))),
        Value::String(text) => Ok(text.contains("didDoc")),
        other => Err(format!("the JLINC data store answered {other} for an entity")),
    }
}

/// Talks to the JLINC data store.
struct DataStore<'a> {
    options: &'a Options,
    transport: &'a dyn Transport,
}

impl DataStore<'_> {
    fn post(&self, path: &str, payload: &Value) -> Result<Value, String> {
        let url = format!("{}/api/v1/data/{path}", self.options.data_store_api_url);
        let request = Request::post(&url)
            .header("authorization", &format!("Bearer {}", self.options.data_store_api_key))
            .header("content-type", "application/json")
            .body(python_json::dumps(payload));
        let answer = self.transport.send(&request).map_err(|e| format!("{path}: {e}"))?;
        answer.json().map_err(|e| format!("{path} answered HTTP {}: {e}", answer.status))
    }

    fn cache_key(&self, kind: &str, name: &str) -> String {
        format!("{kind}:{}:{name}", self.options.data_store_api_url)
    }

    /// Python's `_set_entity`: make sure the entity exists, once per name.
    fn ensure_entity(&self, short_name: &str) -> Result<(), String> {
        let key = self.cache_key("entity", short_name);
        if cache::get(&key).is_some() {
            log::debug(&format!("jlinc: using cached {short_name}"));
            return Ok(());
        }
        log::info(&format!("jlinc: getting {short_name}"));
        let payload = json!({"shortName": short_name});
        let mut reply = self.post("entity/get", &payload)?;
        if !has_did_doc(&reply)? {
            log::info(&format!("jlinc: creating {short_name}"));
            reply = self.post("entity/create", &payload)?;
        }
        if !has_did_doc(&reply)? {
            return Err(format!("no entity found or created for {short_name}"));
        }
        if let Err(e) = cache::set(&key, b"1", CACHE_TTL_SECS) {
            log::warn(&format!("jlinc: cannot cache entity {short_name}: {e}"));
        }
        Ok(())
    }

    /// The data store's domain, cached; the system entity is set up when it is fetched.
    fn domain(&self, system_name: impl Fn(&str) -> String) -> Result<String, String> {
        let key = self.cache_key("domain", "");
        if let Some(domain) = cache::get(&key).and_then(|bytes| String::from_utf8(bytes).ok()) {
            return Ok(domain);
        }
        let domains = self.post("entity/domains/get", &json!({}))?;
        let domain = match domains.get(0) {
            Some(Value::String(domain)) if domains.is_array() => domain.clone(),
            _ => return Err(format!("entity/domains/get answered {domains}, not a list of domains")),
        };
        log::info(&format!("jlinc: set domain to {domain}"));
        if let Err(e) = cache::set(&key, domain.as_bytes(), CACHE_TTL_SECS) {
            log::warn(&format!("jlinc: cannot cache the domain: {e}"));
        }
        self.ensure_entity(&system_name(&domain))?;
        Ok(domain)
    }
}

impl Jlinc {
    fn run(point: &TracePoint, vcon: &Vcon, transport: &dyn Transport) -> Result<(), String> {
        let options = Options::from_point(point)?;
        log::info(&format!("jlinc: running {} tracer on vCon {}", point.tracer_name, point.out_vcon_uuid));
        match Self::record(point, vcon, &options, transport) {
            Ok(()) => Ok(()),
            Err(error) => {
                let message = format!("error with the JLINC API at {}: {error}", options.data_store_api_url);
                if options.dlq_vcon_on_error {
                    Err(message)
                } else {
                    log::warn(&format!("jlinc: {message}"));
                    Ok(())
                }
            }
        }
    }

    fn record(point: &TracePoint, vcon: &Vcon, options: &Options, transport: &dyn Transport) -> Result<(), String> {
        let store = DataStore { options, transport };
        let prefix = sanitize(&options.system_prefix);
        let system_name = |domain: &str| format!("{prefix}-system@{domain}");
        let domain = store.domain(system_name)?;
        let system = system_name(&domain);
        let entity = |link: &str| format!("{prefix}-{}@{domain}", sanitize(link));
        let index = i64::from(point.link_index);
        let link_at = |i: i64| {
            usize::try_from(i).ok().and_then(|i| point.links.get(i)).ok_or_else(|| {
                format!("link_index {} is outside the chain's {} links", point.link_index, point.links.len())
            })
        };
        let sender = if index >= 0 { entity(link_at(index)?) } else { system.clone() };
        let last = i64::try_from(point.links.len()).unwrap_or(i64::MAX) - 1;
        let recipient = if index < last { entity(link_at(index + 1)?) } else { system.clone() };
        store.ensure_entity(&sender)?;
        store.ensure_entity(&recipient)?;
        let data =
            if options.hash_event_data { json!({"hash": vcon_hash(vcon)}) } else { Value::Object(vcon.to_map()) };
        let event = json!({
            "type": "data",
            "senderShortName": sender,
            "recipientShortName": recipient,
            "agreementId": options.agreement_id,
            "data": data,
            "meta": {"in_vcon_uuid": point.in_vcon_uuid, "out_vcon_uuid": point.out_vcon_uuid},
            "archive": {"url": options.archive_api_url, "key": options.archive_api_key},
        });
        let reply = store.post("event/produce", &event)?;
        let event_id = reply
            .get("created")
            .and_then(|created| created.get("eventId"))
            .ok_or_else(|| format!("event/produce answered without created.eventId: {reply}"))?;
        let event_id = event_id.as_str().map_or_else(|| event_id.to_string(), str::to_string);
        log::info(&format!("jlinc: processed event {event_id} ({sender} => {recipient})"));
        Ok(())
    }
}

impl Tracer for Jlinc {
    fn trace(point: &TracePoint, vcon: &Vcon) -> Result<(), String> {
        Self::run(point, vcon, &Client::host())
    }
}

export_tracer!(Jlinc);

#[cfg(test)]
mod tests {
    use super::*;
    use conserver_link_sdk::http::{HttpError, Response};
    use std::cell::RefCell;

    /// A fake JLINC data store: records every request and answers by path.
    struct FakeStore<F> {
        requests: RefCell<Vec<Request>>,
        answer: F,
    }

    impl<F: Fn(&str, &Value) -> Result<Response, HttpError>> Transport for FakeStore<F> {
        fn send(&self, request: &Request) -> Result<Response, HttpError> {
            self.requests.borrow_mut().push(request.clone());
            let path = request.url.split("/api/v1/data/").nth(1).unwrap_or_default().to_string();
            let body: Value = serde_json::from_slice(&request.body).unwrap();
            (self.answer)(&path, &body)
        }
    }

    fn store<F: Fn(&str, &Value) -> Result<Response, HttpError>>(answer: F) -> FakeStore<F> {
        FakeStore { requests: RefCell::new(Vec::new()), answer }
    }

    fn reply(value: Value) -> Result<Response, HttpError> {
        Ok(Response::new(200, value.to_string()))
    }

    /// A data store where every entity exists.
    fn healthy(path: &str, body: &Value) -> Result<Response, HttpError> {
        match path {
            "entity/domains/get" => reply(json!(["vcon.local"])),
            "entity/get" => reply(json!({"didDoc": {"id": "did:jlinc:x", "shortName": body["shortName"]}})),
            "event/produce" => reply(json!({"created": {"eventId": "0fb26e5a-e7f7-4c49-b4aa-1c39fbe8ecc2"}})),
            other => panic!("unexpected call {other}"),
        }
    }

    /// The requests as `(path, body)` pairs.
    fn calls<F>(store: &FakeStore<F>) -> Vec<(String, Value)> {
        store
            .requests
            .borrow()
            .iter()
            .map(|r| {
                let path = r.url.split("/api/v1/data/").nth(1).unwrap_or_default().to_string();
                (path, serde_json::from_slice(&r.body).unwrap())
            })
            .collect()
    }

    /// A vCon whose Python `json.dumps` form hashes to [`SAMPLE_HASH`].
    const SAMPLE: &str = r#"{"uuid":"test-uuid","vcon":"0.4.0","created_at":"2025-08-08T14:22:19+00:00","parties":[{"tel":"+15551234567","name":"Zoë 😀"}],"dialog":[{"type":"text","body":"Hello world","duration":12.0,"x":1e-05,"big":1e16}],"attachments":[]}"#;
    /// `hashlib.sha256(json.dumps(vcon).encode()).hexdigest()` in Python.
    const SAMPLE_HASH: &str = "f9a8ad5d22b04f4a549e5bba3da7310d57e531825ddd1d11d34cb83d9ef92f74";

    /// A trace point with its own data-store URL, so cache entries never leak
    /// between tests.
    fn point(url: &str, links: &[&str], link_index: i32, mut options: Value) -> TracePoint {
        options["data_store_api_url"] = json!(url);
        let mut point = TracePoint::for_test(links, link_index, options);
        point.tracer_name = "jlinc".into();
        point.in_vcon_uuid = "in-uuid".into();
        point.out_vcon_uuid = "out-uuid".into();
        point
    }

    fn sample() -> Vcon {
        Vcon::from_json(SAMPLE).unwrap()
    }

    fn event(sender: &str, recipient: &str, data: Value) -> (String, Value) {
        (
            "event/produce".into(),
            json!({
                "type": "data",
                "senderShortName": sender,
                "recipientShortName": recipient,
                "agreementId": "00000000-0000-0000-0000-000000000000",
                "data": data,
                "meta": {"in_vcon_uuid": "in-uuid", "out_vcon_uuid": "out-uuid"},
                "archive": {"url": "http://jlinc-server:9090", "key": ""}
            }),
        )
    }

    fn get(name: &str) -> (String, Value) {
        ("entity/get".into(), json!({"shortName": name}))
    }

    #[test]
    fn sanitize_matches_python() {
        assert_eq!(sanitize("Hello World!"), "hello_world_");
        assert_eq!(sanitize("safe-Name.123"), "safe-name.123");
        assert_eq!(sanitize("VCONTest"), "vcontest");
        assert_eq!(sanitize("Zoë"), "zo_");
    }

    #[test]
    fn the_hash_is_python_json_dumps_hashed() {
        assert_eq!(vcon_hash(&sample()), SAMPLE_HASH);
    }

    #[test]
    fn a_first_run_sets_up_domain_and_entities_then_produces_the_event() {
        let url = "http://jlinc-first:9090";
        let fake = store(healthy);
        let point = point(url, &["webhook_store_call_log"], 0, json!({}));
        Jlinc::run(&point, &sample(), &fake).unwrap();
        assert_eq!(
            calls(&fake),
            vec![
                ("entity/domains/get".into(), json!({})),
                get("vcontest-system@vcon.local"),
                get("vcontest-webhook_store_call_log@vcon.local"),
                event(
                    "vcontest-webhook_store_call_log@vcon.local",
                    "vcontest-system@vcon.local",
                    json!({"hash": SAMPLE_HASH})
                ),
            ]
        );
        let requests = fake.requests.borrow();
        let first = &requests[0];
        assert_eq!(first.method, "POST");
        assert_eq!(first.url, "http://jlinc-first:9090/api/v1/data/entity/domains/get");
        assert_eq!(
            first.headers,
            vec![
                ("authorization".to_string(), "Bearer ".to_string()),
                ("content-type".to_string(), "application/json".to_string())
            ]
        );
        // The body is written as Python's json.dumps writes it.
        assert_eq!(
            String::from_utf8(requests[1].body.clone()).unwrap(),
            r#"{"shortName": "vcontest-system@vcon.local"}"#
        );
        // The caches hold the domain and both entities.
        assert_eq!(cache::get(&format!("domain:{url}:")), Some(b"vcon.local".to_vec()));
        assert!(cache::get(&format!("entity:{url}:vcontest-system@vcon.local")).is_some());
        assert!(cache::get(&format!("entity:{url}:vcontest-webhook_store_call_log@vcon.local")).is_some());
    }

    #[test]
    fn later_runs_use_the_caches() {
        let url = "http://jlinc-cached:9090";
        let links = ["a", "b"];
        Jlinc::run(&point(url, &links, -1, json!({})), &sample(), &store(healthy)).unwrap();
        let fake = store(healthy);
        Jlinc::run(&point(url, &links, 0, json!({})), &sample(), &fake).unwrap();
        assert_eq!(
            calls(&fake),
            vec![
                get("vcontest-b@vcon.local"),
                event("vcontest-a@vcon.local", "vcontest-b@vcon.local", json!({"hash": SAMPLE_HASH}))
            ]
        );
        let fake = store(healthy);
        Jlinc::run(&point(url, &links, 1, json!({})), &sample(), &fake).unwrap();
        assert_eq!(
            calls(&fake),
            vec![event("vcontest-b@vcon.local", "vcontest-system@vcon.local", json!({"hash": SAMPLE_HASH}))]
        );
    }

    #[test]
    fn senders_and_recipients_follow_the_chain_position() {
        let links = ["First Link", "second", "third"];
        let cases = [
            (-1, "vcontest-system@vcon.local", "vcontest-first_link@vcon.local"),
            // Python named the *last* link here (links[-1]); the fix names the link that ran.
            (0, "vcontest-first_link@vcon.local", "vcontest-second@vcon.local"),
            (1, "vcontest-second@vcon.local", "vcontest-third@vcon.local"),
            (2, "vcontest-third@vcon.local", "vcontest-system@vcon.local"),
        ];
        for (index, sender, recipient) in cases {
            let fake = store(healthy);
            let point = point(&format!("http://jlinc-position{index}:9090"), &links, index, json!({}));
            Jlinc::run(&point, &sample(), &fake).unwrap();
            let calls = calls(&fake);
            let produced = calls.last().unwrap();
            assert_eq!(produced.1["senderShortName"], sender, "index {index}");
            assert_eq!(produced.1["recipientShortName"], recipient, "index {index}");
        }
        // An empty chain (before its nonexistent first link): system to system.
        let fake = store(healthy);
        Jlinc::run(&point("http://jlinc-empty:9090", &[], -1, json!({})), &sample(), &fake).unwrap();
        let produced = calls(&fake).last().unwrap().1.clone();
        assert_eq!(
            (produced["senderShortName"].clone(), produced["recipientShortName"].clone()),
            (json!("vcontest-system@vcon.local"), json!("vcontest-system@vcon.local"))
        );
    }

    #[test]
    fn missing_entities_are_created() {
        let fake = store(|path: &str, body: &Value| match path {
            "entity/get" if body["shortName"] == "vcontest-new@vcon.local" => reply(json!({"error": "not found"})),
            "entity/create" => reply(json!({"didDoc": {"id": "did:jlinc:new"}})),
            _ => healthy(path, body),
        });
        Jlinc::run(&point("http://jlinc-create:9090", &["new"], 0, json!({})), &sample(), &fake).unwrap();
        let paths: Vec<String> = calls(&fake).into_iter().map(|(p, _)| p).collect();
        assert_eq!(paths, ["entity/domains/get", "entity/get", "entity/get", "entity/create", "event/produce"]);
        assert_eq!(calls(&fake)[3].1, json!({"shortName": "vcontest-new@vcon.local"}));
    }

    #[test]
    fn custom_options_reach_every_request() {
        let fake = store(healthy);
        let options = json!({
            "data_store_api_key": "ds-key",
            "archive_api_url": "http://archive:9191",
            "archive_api_key": "ar-key",
            "system_prefix": "My Org!",
            "agreement_id": "11111111-2222-3333-4444-555555555555",
            "hash_event_data": false
        });
        Jlinc::run(&point("http://jlinc-custom:9090", &["x"], -1, options), &sample(), &fake).unwrap();
        assert!(fake.requests.borrow().iter().all(|r| r.header_value("authorization") == Some("Bearer ds-key")));
        let calls = calls(&fake);
        assert_eq!(calls[1], get("my_org_-system@vcon.local"));
        let full: Value = serde_json::from_str(SAMPLE).unwrap();
        assert_eq!(
            calls[3].1,
            json!({
                "type": "data",
                "senderShortName": "my_org_-system@vcon.local",
                "recipientShortName": "my_org_-x@vcon.local",
                "agreementId": "11111111-2222-3333-4444-555555555555",
                "data": full,
                "meta": {"in_vcon_uuid": "in-uuid", "out_vcon_uuid": "out-uuid"},
                "archive": {"url": "http://archive:9191", "key": "ar-key"}
            })
        );
        // The full vCon goes out in Python's json.dumps form, key order kept.
        let body = String::from_utf8(fake.requests.borrow()[3].body.clone()).unwrap();
        assert!(body.contains(r#""data": {"uuid": "test-uuid", "vcon": "0.4.0", "created_at""#), "{body}");
        assert!(body.contains(r#""name": "Zo\u00eb \ud83d\ude00""#), "{body}");
    }

    #[test]
    fn failures_are_warnings_unless_dlq_vcon_on_error() {
        type Answer = fn(&str, &Value) -> Result<Response, HttpError>;
        let failures: [(&str, Answer); 7] = [
            ("connection failed: refused", |_, _| Err(HttpError::Connection("refused".into()))),
            ("not a list of domains", |p, b| if p == "entity/domains/get" { reply(json!([])) } else { healthy(p, b) }),
            (
                "not the JSON expected",
                |p, b| if p == "entity/get" { Ok(Response::new(502, "<html>")) } else { healthy(p, b) },
            ),
            ("no entity found or created", |p, b| match p {
                "entity/get" | "entity/create" => reply(json!({"nope": 1})),
                _ => healthy(p, b),
            }),
            ("answered null", |p, b| if p == "entity/get" { reply(Value::Null) } else { healthy(p, b) }),
            (
                "created.eventId",
                |p, b| if p == "event/produce" { reply(json!({"error": "bad"})) } else { healthy(p, b) },
            ),
            ("created.eventId", |p, b| {
                if p == "event/produce" { Ok(Response::new(500, r#"{"detail": "boom"}"#)) } else { healthy(p, b) }
            }),
        ];
        for (n, (expected, answer)) in failures.into_iter().enumerate() {
            let quiet = point(&format!("http://jlinc-quiet{n}:9090"), &["l"], 0, json!({}));
            assert_eq!(Jlinc::run(&quiet, &sample(), &store(answer)), Ok(()), "{expected}");
            let loud = point(&format!("http://jlinc-loud{n}:9090"), &["l"], 0, json!({"dlq_vcon_on_error": true}));
            let err = Jlinc::run(&loud, &sample(), &store(answer)).unwrap_err();
            assert!(err.contains(expected) && err.contains("http://jlinc-loud"), "{expected}: {err}");
        }
    }

    #[test]
    fn a_failed_system_entity_set_up_is_retried_on_the_next_run() {
        let url = "http://jlinc-retry:9090";
        let fails = store(|p: &str, b: &Value| match p {
            "entity/get" | "entity/create" => reply(json!({})),
            _ => healthy(p, b),
        });
        Jlinc::run(&point(url, &["l"], -1, json!({})), &sample(), &fails).unwrap();
        let fake = store(healthy);
        Jlinc::run(&point(url, &["l"], -1, json!({})), &sample(), &fake).unwrap();
        let paths: Vec<String> = calls(&fake).into_iter().map(|(p, _)| p).collect();
        assert_eq!(paths, ["entity/get", "entity/get", "event/produce"], "domain cached, system entity retried");
    }

    #[test]
    fn bad_options_are_errors_naming_the_option() {
        for (key, value) in [
            ("data_store_api_url", json!(1)),
            ("data_store_api_key", json!(["k"])),
            ("archive_api_url", json!({})),
            ("archive_api_key", json!(2)),
            ("system_prefix", json!(true)),
            ("agreement_id", json!(0)),
            ("hash_event_data", json!("yes")),
            ("dlq_vcon_on_error", json!(1)),
        ] {
            let mut point = point("http://jlinc-bad:9090", &["l"], 0, json!({}));
            point.options.insert(key.into(), value);
            let fake = store(healthy);
            let err = Jlinc::run(&point, &sample(), &fake).unwrap_err();
            assert!(err.contains(&format!("option `{key}`")), "{err}");
            assert!(fake.requests.borrow().is_empty());
        }
    }

    #[test]
    fn an_index_outside_the_chain_is_an_error() {
        let point = point("http://jlinc-range:9090", &["a"], 3, json!({"dlq_vcon_on_error": true}));
        let err = Jlinc::run(&point, &sample(), &store(healthy)).unwrap_err();
        assert!(err.contains("link_index 3"), "{err}");
    }
}
