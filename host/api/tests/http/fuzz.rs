//! A seeded fuzz test: hundreds of mutated real vCons and malformed bodies posted
//! at the API. No answer may be a 5xx, and every accepted document must read back
//! as stored.

use serde_json::{Map, Value, json};

use crate::support::{Backend, TestApi};

/// A small deterministic generator (xorshift64*), so failures reproduce.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

fn seeds() -> Vec<Value> {
    let mut out = Vec::new();
    for name in [
        conserver_fixtures::CALL,
        "v0.4.0/email_thread.vcon.json",
        "unversioned/dataset_unpadded_signature.vcon.json",
        "v0.3.0/library_output.vcon.json",
    ] {
        out.push(conserver_fixtures::vcon(name));
    }
    out
}

fn odd_value(rng: &mut Rng) -> Value {
    match rng.below(12) {
        0 => Value::Null,
        1 => json!(-1),
        2 => json!(1e300),
        3 => json!(""),
        4 => json!([]),
        5 => json!({}),
        6 => json!("not-a-uuid"),
        7 => json!([0, 99, [1, 5]]),
        8 => json!(true),
        9 => json!("\u{0000}\u{ffff}é😀"),
        10 => json!(u64::MAX),
        _ => json!([[[[[[["deep"]]]]]]]),
    }
}

/// Replace a random value somewhere in the document.
fn mutate(value: &mut Value, rng: &mut Rng, depth: usize) {
    match value {
        Value::Object(map) if !map.is_empty() && depth < 6 => {
            let keys: Vec<String> = map.keys().cloned().collect();
            let key = &keys[rng.below(keys.len())];
            if rng.below(4) == 0 {
                map.insert(key.clone(), odd_value(rng));
            } else if rng.below(10) == 0 {
                map.remove(key);
            } else if let Some(child) = map.get_mut(key) {
                mutate(child, rng, depth + 1);
            }
        }
        Value::Array(items) if !items.is_empty() && depth < 6 => {
            let i = rng.below(items.len());
            mutate(&mut items[i], rng, depth + 1);
        }
        other => *other = odd_value(rng),
    }
}

const MALFORMED: &[&[u8]] = &[
    b"",
    b"{",
    b"}",
    b"[]",
    b"null",
    b"42",
    b"\"vcon\"",
    b"{\"uuid\":NaN}",
    b"{\"uuid\":1e400}",
    b"{\"a\":\"\\ud800\"}",
    b"\xff\xfe\xfd",
    b"{\"uuid\": \"0189f7e4-c0b1-7f3e-9f3a-1c2b3d4e5f60\",}",
    b"{\"vcon\":\"0.4.0\",\"parties\":[null]}",
];

#[tokio::test]
async fn mutated_vcons_and_malformed_bodies_never_get_a_5xx() {
    let api = TestApi::new(Backend::Embedded).await;
    let seeds = seeds();
    let mut rng = Rng(0x5EED_2026_1126);
    let (mut accepted, mut refused) = (0, 0);
    for round in 0..600 {
        let body: Vec<u8> = if round % 20 == 19 {
            let mut raw = MALFORMED[rng.below(MALFORMED.len())].to_vec();
            if rng.below(2) == 0 {
                raw.extend(std::iter::repeat_n(b'[', 300));
            }
            raw
        } else {
            let mut doc = seeds[rng.below(seeds.len())].clone();
            if let Value::Object(map) = &mut doc {
                // Fresh uuid most of the time, so accepted documents are distinct.
                if rng.below(10) != 0 {
                    map.insert("uuid".into(), Value::String(uuid::Uuid::new_v4().to_string()));
                }
            }
            for _ in 0..=rng.below(3) {
                mutate(&mut doc, &mut rng, 0);
            }
            doc.to_string().into_bytes()
        };
        let reply = api.post_raw("/api/vcon", body.clone()).await;
        assert!(reply.code() < 500, "round {round}: {} for {:?}", reply.code(), String::from_utf8_lossy(&body));
        if reply.code() == 201 {
            accepted += 1;
            let stored: Map<String, Value> = serde_json::from_slice(&reply.bytes).unwrap();
            let uuid = stored["uuid"].as_str().unwrap();
            let read = api.get(&format!("/api/vcon/{uuid}")).await;
            assert_eq!(read.code(), 200, "round {round}");
            assert_eq!(read.bytes, reply.bytes, "round {round}: the stored document differs from the echo");
        } else {
            // 413: nested deeper than CONSERVER_MAX_JSON_DEPTH, refused before parsing.
            assert!(matches!(reply.code(), 413 | 422), "round {round}: {}", reply.code());
            refused += 1;
        }
    }
    assert!(
        accepted > 50 && refused > 50,
        "the mutations should both pass and fail: {accepted} accepted, {refused} refused"
    );
}
