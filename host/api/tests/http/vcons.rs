//! vCon routes: create, read, list, multi-read, search, delete, the storage
//! fallback and the legacy egress format.

use serde_json::{Value, json};

use crate::on_both_backends;
use crate::support::{Backend, Options, TestApi, unique, vcon, vcon_with};
use conserver_core::EgressFormat;

async fn create_read_delete_round_trip(backend: Backend) {
    let api = TestApi::new(backend).await;
    let (uuid, mut body) = vcon();
    body["meta"] = json!({"foo": "bar"});
    let created = api.post("/api/vcon", &body).await;
    assert_eq!(created.code(), 201);
    assert_eq!(created.json(), body, "the response echoes the stored document");
    let read = api.get(&format!("/api/vcon/{uuid}")).await;
    assert_eq!(read.code(), 200);
    assert_eq!(read.json()["meta"], json!({"foo": "bar"}));
    // Any uuid form finds it.
    assert_eq!(api.get(&format!("/vcon/{}", uuid.to_uppercase().replace('-', ""))).await.code(), 200);
    assert_eq!(api.delete(&format!("/api/vcon/{uuid}")).await.code(), 204);
    let gone = api.get(&format!("/api/vcon/{uuid}")).await;
    assert_eq!((gone.code(), gone.json()), (404, json!({"detail": "vCon not found"})));
    // Deleting something that never existed is still 204.
    assert_eq!(api.delete(&format!("/api/vcon/{}", uuid::Uuid::new_v4())).await.code(), 204);
    assert_eq!(api.get("/api/vcon/not-a-uuid").await.code(), 422);
}

async fn a_repost_replaces_and_keeps_indexes_consistent(backend: Backend) {
    let api = TestApi::new(backend).await;
    let old_name = unique("Old");
    let new_name = unique("New");
    let (uuid, mut body) = vcon_with(json!([{"name": old_name}]));
    assert_eq!(api.post("/api/vcon", &body).await.code(), 201);
    body["parties"] = json!([{"name": new_name}]);
    assert_eq!(api.post("/api/vcon", &body).await.code(), 201);
    assert_eq!(api.get(&format!("/api/vcons/search?name={old_name}")).await.json(), json!([]));
    assert_eq!(api.get(&format!("/api/vcons/search?name={new_name}")).await.json(), json!([uuid]));
}

async fn a_vcon_without_uuid_gets_one_and_created_at_defaults(backend: Backend) {
    let api = TestApi::new(backend).await;
    let reply = api.post("/api/vcon", &json!({"vcon": "0.0.1", "parties": []})).await;
    assert_eq!(reply.code(), 201);
    let stored = reply.json();
    let uuid = stored["uuid"].as_str().unwrap().to_string();
    assert!(stored["created_at"].is_string());
    assert_eq!(api.get(&format!("/api/vcon/{uuid}")).await.json(), stored);
    let refused = api.post("/api/vcon", &json!({"parties": []})).await;
    assert_eq!(refused.code(), 422);
    assert_eq!(refused.json()["detail"][0]["loc"], json!(["body", "uuid"]));
}

async fn listing_is_newest_first_paged_and_windowed(backend: Backend) {
    let api = TestApi::new(backend).await;
    // A unique year far in the past keeps this window to this test's vCons.
    let year = 1000 + (uuid::Uuid::new_v4().as_u128() % 900) as i32;
    let mut uuids = Vec::new();
    for day in 1..=12 {
        let (uuid, mut body) = vcon();
        body["created_at"] = json!(format!("{year:04}-01-{day:02}T00:00:00Z"));
        assert_eq!(api.post("/api/vcon", &body).await.code(), 201);
        uuids.push(uuid);
    }
    let window = format!("since={year:04}-01-01T00:00:00Z&until={year:04}-01-31T00:00:00Z");
    let newest_first: Vec<String> = uuids.iter().rev().cloned().collect();
    assert_eq!(api.get(&format!("/api/vcon?{window}&size=100")).await.json(), json!(newest_first));
    assert_eq!(api.get(&format!("/api/vcon?{window}&page=2&size=5")).await.json(), json!(newest_first[5..10]));
    assert_eq!(
        api.get(&format!("/api/vcon?since={year:04}-01-12T00:00:00Z&until={year:04}-01-12T00:00:00Z")).await.json(),
        json!([uuids[11]])
    );
    // A deleted vCon is no longer listed.
    assert_eq!(api.delete(&format!("/api/vcon/{}", uuids[11])).await.code(), 204);
    assert_eq!(api.get(&format!("/api/vcon?{window}&size=1")).await.json(), json!([uuids[10]]));
    // Huge or malformed paging is a 422 or an empty page, never a 5xx.
    assert_eq!(api.get(&format!("/api/vcon?{window}&page=9223372036854775807")).await.json(), json!([]));
    for bad in
        ["page=1000000000000000000000000000000", "size=NaN", "page=0", "size=1e400", "since=yesterday", "size=100000"]
    {
        assert_eq!(api.get(&format!("/api/vcon?{bad}")).await.code(), 422, "{bad}");
    }
}

async fn multi_read_keeps_request_order_with_nulls(backend: Backend) {
    let api = TestApi::new(backend).await;
    let (a, body_a) = vcon();
    let (b, body_b) = vcon();
    api.post("/api/vcon", &body_a).await;
    api.post("/api/vcon", &body_b).await;
    let missing = uuid::Uuid::new_v4();
    let reply = api.get(&format!("/api/vcons?vcon_uuids={b}&vcon_uuids={missing}&vcon_uuids={a}&vcon_uuids={b}")).await;
    assert_eq!(reply.code(), 200);
    assert_eq!(reply.json(), json!([body_b, null, body_a, body_b]));
    assert_eq!(api.get("/api/vcons").await.code(), 422, "no uuids is a 422, not a 500");
    assert_eq!(api.get("/api/vcons?vcon_uuids=nope").await.code(), 422);
}

async fn search_is_a_true_and(backend: Backend) {
    let api = TestApi::new(backend).await;
    let tel = format!("+1555{}", uuid::Uuid::new_v4().as_u128() % 10_000_000);
    let (name, mail) = (unique("Alice"), format!("{}@example.com", unique("a")));
    let (first, body) = vcon_with(json!([{"tel": tel, "mailto": mail, "name": name}, {"name": "Bob"}]));
    api.post("/api/vcon", &body).await;
    let (second, body) = vcon_with(json!([{"tel": tel}]));
    api.post("/api/vcon", &body).await;
    let encoded_tel = tel.replace('+', "%2B");
    let mut by_tel: Vec<String> =
        serde_json::from_value(api.get(&format!("/api/vcons/search?tel={encoded_tel}")).await.json()).unwrap();
    by_tel.sort();
    let mut expected = vec![first.clone(), second.clone()];
    expected.sort();
    assert_eq!(by_tel, expected);
    assert_eq!(api.get(&format!("/api/vcons/search?tel={encoded_tel}&name={name}")).await.json(), json!([first]));
    assert_eq!(api.get(&format!("/api/vcons/search?mailto={mail}")).await.json(), json!([first]));
    // A criterion matching nothing empties the result (the Python server ignored it or failed with 500).
    assert_eq!(api.get(&format!("/api/vcons/search?tel={encoded_tel}&name=nobody-{name}")).await.json(), json!([]));
    assert_eq!(api.get("/api/vcons/search?tel=nobody&name=nobody").await.json(), json!([]));
    assert_eq!(api.get("/api/vcons/search?tel=").await.json(), json!([]));
    let none = api.get("/api/vcons/search").await;
    assert_eq!((none.code(), none.json()), (400, json!({"detail": "At least one search parameter must be provided"})));
    // Deleting removes it from search.
    api.delete(&format!("/api/vcon/{first}")).await;
    assert_eq!(api.get(&format!("/api/vcons/search?name={name}")).await.json(), json!([]));
}

async fn the_storage_fallback_canonicalises_and_re_caches(backend: Backend) {
    let store = tempfile::tempdir().unwrap();
    let missing = tempfile::tempdir().unwrap();
    let config = format!(
        "storages:\n  empty:\n    module: storage.file\n    options: {{path: {}}}\n  archive:\n    module: storage.file\n    options: {{path: {}, organize_by_date: false}}\n",
        missing.path().display(),
        store.path().display()
    );
    let api = TestApi::with(backend, Options { config, ..Options::default() }).await;
    let uuid = uuid::Uuid::new_v4().to_string();
    let legacy = json!({
        "vcon": "0.0.1", "uuid": uuid, "created_at": "2024-01-01T00:00:00+00:00", "appended": null, "group": [], "redacted": {},
        "attachments": [{"type": "tags", "body": ["a:a", "b:b"], "encoding": "none"}],
        "analysis": [{"type": "summary", "body": {"k": "v"}}]
    });
    std::fs::write(store.path().join(format!("{uuid}.json")), legacy.to_string()).unwrap();
    let reply = api.get(&format!("/api/vcon/{uuid}")).await;
    assert_eq!(reply.code(), 200);
    let doc = reply.json();
    assert_eq!(doc["vcon"], "0.4.0");
    assert_eq!(doc["attachments"][0], json!({"body": "[\"a:a\", \"b:b\"]", "encoding": "json", "purpose": "tags"}));
    assert_eq!(doc["analysis"][0]["body"], "{\"k\": \"v\"}");
    assert!(doc.get("group").is_none() && doc.get("redacted").is_none());
    // Re-cached: readable after the file is gone, and listed.
    std::fs::remove_file(store.path().join(format!("{uuid}.json"))).unwrap();
    assert_eq!(api.get(&format!("/api/vcon/{uuid}")).await.json(), doc);
    assert_eq!(
        api.get("/api/vcon?since=2024-01-01T00:00:00Z&until=2024-01-01T00:00:00Z&size=10000")
            .await
            .json()
            .as_array()
            .unwrap()
            .iter()
            .filter(|u| **u == Value::String(uuid.clone()))
            .count(),
        1
    );
    // Nobody has it: 404, nothing cached.
    let nobody = uuid::Uuid::new_v4();
    assert_eq!(api.get(&format!("/api/vcon/{nobody}")).await.code(), 404);
    assert!(api.broker.get_vcon(&nobody.to_string()).await.unwrap().is_none());
}

async fn a_broken_storage_is_skipped_not_a_500(backend: Backend) {
    let file = tempfile::NamedTempFile::new().unwrap(); // a file where a directory should be
    let config =
        format!("storages:\n  broken:\n    module: storage.file\n    options: {{path: {}}}\n", file.path().display());
    let api = TestApi::with(backend, Options { config, ..Options::default() }).await;
    assert_eq!(api.get(&format!("/api/vcon/{}", uuid::Uuid::new_v4())).await.code(), 404);
}

async fn the_legacy_egress_format_downgrades_reads_only(backend: Backend) {
    let api = TestApi::with(backend, Options { egress_format: EgressFormat::Legacy001, ..Options::default() }).await;
    let (uuid, mut body) = vcon();
    body["attachments"] = json!([{"purpose": "tags", "body": "[\"a\"]", "encoding": "json"}]);
    let created = api.post("/api/vcon", &body).await;
    assert_eq!(created.json()["vcon"], "0.4.0", "the POST response is not downgraded");
    let read = api.get(&format!("/api/vcon/{uuid}")).await.json();
    assert_eq!(read["vcon"], "0.0.1");
    assert_eq!(read["attachments"][0], json!({"body": ["a"], "encoding": "none", "type": "tags"}));
    assert_eq!(api.get(&format!("/api/vcons?vcon_uuids={uuid}")).await.json()[0]["vcon"], "0.0.1");
    // Unset: as stored.
    let plain = TestApi::new(backend).await;
    plain.post("/api/vcon", &body).await;
    assert_eq!(plain.get(&format!("/api/vcon/{uuid}")).await.json()["vcon"], "0.4.0");
}

async fn signed_and_encrypted_forms_are_stored_as_sent(backend: Backend) {
    let api = TestApi::new(backend).await;
    for name in [conserver_fixtures::CALL_SIGNED, conserver_fixtures::CALL_ENCRYPTED] {
        let text = conserver_fixtures::vcon_text(name).into_bytes();
        let created = api.post_raw("/api/vcon", text.clone()).await;
        assert_eq!(created.code(), 201, "{name}");
        let sent: Value = serde_json::from_slice(&text).unwrap();
        assert_eq!(created.json(), sent);
    }
}

on_both_backends!(
    create_read_delete_round_trip,
    a_repost_replaces_and_keeps_indexes_consistent,
    a_vcon_without_uuid_gets_one_and_created_at_defaults,
    listing_is_newest_first_paged_and_windowed,
    multi_read_keeps_request_order_with_nulls,
    search_is_a_true_and,
    the_storage_fallback_canonicalises_and_re_caches,
    a_broken_storage_is_skipped_not_a_500,
    the_legacy_egress_format_downgrades_reads_only,
    signed_and_encrypted_forms_are_stored_as_sent,
);
