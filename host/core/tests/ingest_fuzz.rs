//! A bounded fuzz run of the vCon ingest path (`ingest_vcon`, what `POST /vcon`
//! and `external-ingress` call on every body): random bytes, mutated corpus
//! vCons, random JSON grafted into every field, and deep nesting. Each case must
//! end in `Ok` or a typed refusal with at least one problem, never a panic or a
//! stack overflow; an accepted vCon must be accepted again unchanged when its
//! stored text is sent back (what a consumer re-posting it does).
//!
//! The run is bounded (256 cases per property unless `PROPTEST_CASES` says
//! otherwise) so it fits in the suite; a longer run is
//! `PROPTEST_CASES=20000 cargo test -p conserver-core --test ingest_fuzz --release`.
//! proptest shrinks a failure and records its seed under `proptest-regressions/`.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly on purpose

use std::sync::OnceLock;

use conserver_core::{VconError, VconForm, ingest_vcon};
use conserver_fixtures::Corpus;
use proptest::prelude::*;
use proptest::test_runner::Config;
use serde_json::{Map, Value};

/// The project's plain vCons as text, loaded once.
fn corpus() -> &'static [String] {
    static CORPUS: OnceLock<Vec<String>> = OnceLock::new();
    CORPUS.get_or_init(|| {
        let texts: Vec<String> =
            Corpus::project().vcon_files().iter().map(|file| std::fs::read_to_string(file).unwrap()).collect();
        assert!(texts.len() >= 20, "the project corpus is missing");
        texts
    })
}

fn config() -> Config {
    let cases = std::env::var("PROPTEST_CASES").ok().and_then(|n| n.parse().ok()).unwrap_or(256);
    Config { cases, ..Config::default() }
}

/// Any JSON value, up to six levels and a few dozen nodes.
fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>().prop_map(Value::from), // NaN and infinities become null
        ".{0,24}".prop_map(Value::String),
        // Strings a vCon reader looks at: uuids, dates, encodings, URLs, base64.
        prop_oneof![
            Just("018f5d0e-7c1a-7b3e-9a2b-0123456789ab"),
            Just("{018F5D0E7C1A7B3E9A2B0123456789AB}"),
            Just("urn:uuid:018f5d0e-7c1a-7b3e-9a2b-0123456789ab"),
            Just("2024-02-30T25:61:61Z"),
            Just("1970-01-01T00:00:00+14:00"),
            Just("base64url"),
            Just("json"),
            Just("none"),
            Just("https://[::1]:0/%00"),
            Just("data:audio/wav;base64,UklGR"),
            Just("-_-_===="),
        ]
        .prop_map(|s| Value::String(s.to_string())),
    ];
    leaf.prop_recursive(6, 64, 8, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..8).prop_map(Value::Array),
            prop::collection::vec(("[a-z_]{0,10}", inner), 0..8)
                .prop_map(|pairs| Value::Object(pairs.into_iter().collect::<Map<String, Value>>())),
        ]
    })
}

/// The field names a vCon reader treats specially, plus a random one.
fn field_name() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::sample::select(vec![
            "uuid",
            "vcon",
            "created_at",
            "updated_at",
            "subject",
            "parties",
            "dialog",
            "analysis",
            "attachments",
            "group",
            "redacted",
            "amended",
            "appended",
            "must_support",
            "critical",
            "extensions",
            "signatures",
            "payload",
            "protected",
            "unprotected",
            "ciphertext",
            "recipients",
            "iv",
            "tag",
            "tel",
            "mailto",
            "name",
            "type",
            "start",
            "duration",
            "parties",
            "originator",
            "mimetype",
            "mediatype",
            "encoding",
            "body",
            "url",
            "content_hash",
            "alg",
            "signature",
            "filename",
            "dialog",
            "vendor",
            "schema",
        ])
        .prop_map(str::to_string),
        "[a-z_]{1,12}",
    ]
}

/// Set `value` at a place chosen by `path` (indices into the document's objects
/// and arrays, each taken modulo the size found there), under `name`.
fn graft(here: &mut Value, path: &[usize], name: String, value: Value) {
    if let Some((&step, rest)) = path.split_first() {
        let child = match &mut *here {
            Value::Object(map) if !map.is_empty() => {
                let len = map.len();
                map.values_mut().nth(step % len)
            }
            Value::Array(items) if !items.is_empty() => {
                let len = items.len();
                items.get_mut(step % len)
            }
            _ => None,
        };
        if let Some(child) = child.filter(|c| c.is_object() || c.is_array()) {
            return graft(child, rest, name, value);
        }
    }
    match here {
        Value::Object(map) => {
            map.insert(name, value);
        }
        Value::Array(items) => items.push(value),
        _ => {}
    }
}

/// What every ingest must satisfy: a refusal explains itself; an accepted vCon
/// is stored as a JSON object with its canonical uuid, and is accepted again,
/// byte for byte, when that stored text comes back. Returns whether it was
/// accepted.
fn check(body: &[u8]) -> bool {
    match ingest_vcon(body) {
        Err(error) => {
            let problems = error.problems();
            assert!(!problems.is_empty(), "a refusal without a problem: {error:?}");
            assert!(problems.iter().all(|p| !p.message.is_empty()), "a problem without a message: {error:?}");
            if let VconError::Invalid(list) = &error {
                assert!(!list.is_empty());
            }
            false
        }
        Ok(vcon) => {
            let stored: Value = serde_json::from_str(&vcon.json).expect("stored text is JSON");
            assert!(stored.is_object(), "stored a non-object: {}", vcon.json);
            if vcon.form == VconForm::Unsigned {
                assert_eq!(stored["uuid"], vcon.uuid.as_str(), "stored uuid is the canonical one");
            }
            let again = ingest_vcon(vcon.json.as_bytes())
                .unwrap_or_else(|e| panic!("the stored text is refused when sent back: {e}\n{}", vcon.json));
            assert_eq!(again.uuid, vcon.uuid);
            assert_eq!(again.form, vcon.form);
            assert_eq!(again.json, vcon.json, "re-ingest changed the stored text");
            true
        }
    }
}

/// Random JSON grafted at random places of corpus vCons: both outcomes must be
/// reached (so the run exercises the accepting path too, not only refusals).
#[test]
fn random_json_in_any_field_never_panics() {
    let strategy = (
        any::<usize>(),
        prop::collection::vec((prop::collection::vec(any::<usize>(), 0..4), field_name(), json_value()), 1..4),
    );
    let mut runner = proptest::test_runner::TestRunner::new(config());
    let (accepted, refused) = (std::cell::Cell::new(0u32), std::cell::Cell::new(0u32));
    let result = runner.run(&strategy, |(which, grafts)| {
        let mut document: Value = serde_json::from_str(&corpus()[which % corpus().len()]).unwrap();
        for (path, name, value) in grafts {
            graft(&mut document, &path, name, value);
        }
        if check(&serde_json::to_vec(&document).unwrap()) {
            accepted.set(accepted.get() + 1);
        } else {
            refused.set(refused.get() + 1);
        }
        Ok(())
    });
    if let Err(failure) = result {
        panic!("{failure}");
    }
    let (accepted, refused) = (accepted.get(), refused.get());
    assert!(accepted > 0 && refused > 0, "accepted {accepted}, refused {refused}: the run missed one path");
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn random_bytes_are_refused_or_accepted_never_a_panic(body in prop::collection::vec(any::<u8>(), 0..2048)) {
        let _ = check(&body);
    }

    #[test]
    fn mutated_corpus_vcons_never_panic(
        which in any::<usize>(),
        edits in prop::collection::vec((any::<usize>(), any::<u8>(), 0u8..3), 1..8),
    ) {
        let mut body = corpus()[which % corpus().len()].clone().into_bytes();
        for (at, byte, kind) in edits {
            let at = at % (body.len() + 1);
            match kind {
                0 if at < body.len() => body[at] = byte,
                1 => body.insert(at, byte),
                _ if at < body.len() => {
                    body.remove(at);
                }
                _ => body.truncate(at),
            }
        }
        let _ = check(&body);
    }

    #[test]
    fn a_vcon_replaced_wholesale_by_random_json_never_panics(document in json_value()) {
        let _ = check(&serde_json::to_vec(&document).unwrap());
    }

    #[test]
    // The parser refuses nesting deeper than 128 levels (serde_json's limit); a
    // document just inside it is an ordinary vCon, so depths start past it.
    fn deep_nesting_is_refused_without_overflowing_the_stack(depth in 128usize..20_000, open in prop::sample::select(vec!["[", "{\"a\":"])) {
        let close = if open == "[" { "]" } else { "}" };
        let inner = open.repeat(depth) + "0" + &close.repeat(depth);
        prop_assert!(!check(inner.as_bytes()));
        let vcon = format!("{{\"uuid\":\"018f5d0e-7c1a-7b3e-9a2b-0123456789ab\",\"vcon\":\"0.4.0\",\"x\":{inner}}}");
        prop_assert!(!check(vcon.as_bytes()));
    }
}
