//! The link end to end against SCRAPI stand-ins: keys, subjects, registration
//! paths, polling, verification failures and options.

use crate::test_support::*;

#[test]
fn the_key_comes_from_the_option_then_the_secret() {
    let transport = recorder(sync_service);
    let secret_pem = |name: &str| {
        if name == "SCITT_SIGNING_KEY" { Ok(KEY_SEC1.to_string()) } else { Err(SecretError::NotGranted) }
    };
    let secret_b64 = |name: &str| {
        if name == "MY_KEY" { Ok(format!("{KEY_SEC1_B64}\n")) } else { Err(SecretError::NotGranted) }
    };
    let wrapped = format!("{}\n{}", &KEY_SEC1_B64[..40], &KEY_SEC1_B64[40..]);
    let cases: [(Value, SecretReader<'_>); 4] = [
        (json!({"signing_key_pem": wrapped}), &no_secret),
        (json!({"signing_key_pem": KEY_SEC1_B64.trim_end_matches('=')}), &no_secret),
        (json!({}), &secret_pem),
        (json!({"signing_key_secret": "MY_KEY", "signing_key_pem": ""}), &secret_b64),
    ];
    for (options, secret) in cases {
        let doc = r#"{"uuid":"0190f0a1-aaaa-7bbb-8ccc-123456789abc","vcon":"0.4.0","created_at":"2026-01-02T03:04:05+00:00","parties":[{"tel":"+15551234567","name":"Alice"}],"dialog":[{"type":"text","body":"héllo","duration":1.5}],"attachments":[]}"#;
        transport.clear();
        run_with(options.clone(), doc, &transport, secret, &no_sleep).unwrap_or_else(|e| panic!("{options}: {e}"));
        let posted = transport.requests()[0].body.clone();
        let payload = statement_payload(&posted);
        let hash = vcon_hash(&Vcon::from_json(doc).unwrap());
        assert_eq!(payload, format!("{hash}:vcon_created:+15551234567").into_bytes());
        // Signed by the same key as with the option.
        let message = CoseSign1::from_tagged_slice(&posted).unwrap();
        let key = *conserver_key().verifying_key();
        message.verify_signature(b"", |sig, data| key.verify(data, &Signature::from_slice(sig).unwrap())).unwrap();
    }
}

#[test]
fn no_usable_key_is_a_fatal_error_naming_the_options() {
    let transport = recorder(sync_service);
    let err = run_with(json!({}), VCON, &transport, &no_secret, &no_sleep).unwrap_err();
    assert!(!err.retryable);
    for needle in ["signing_key_pem", "SCITT_SIGNING_KEY", "signing_key_secret", "/etc/scitt/signing-key.pem"] {
        assert!(err.message.contains(needle), "{needle}: {err}");
    }
    let unset = |_: &str| Err(SecretError::NotSet);
    let err = run_with(json!({}), VCON, &transport, &unset, &no_sleep).unwrap_err();
    assert!(err.message.contains("not set on the host"), "{err}");
    let err = run_with(json!({"signing_key_pem": "%%%"}), VCON, &transport, &no_secret, &no_sleep).unwrap_err();
    assert!(err.message.contains("option `signing_key_pem`"), "{err}");
    let p384 = STANDARD.encode(KEY_P384);
    let err = run_with(json!({"signing_key_pem": p384}), VCON, &transport, &no_secret, &no_sleep).unwrap_err();
    assert!(err.message.contains("option `signing_key_pem`") && err.message.contains("P-256"), "{err}");
    let garbage = |_: &str| Ok("not a key".to_string());
    let err = run_with(json!({}), VCON, &transport, &garbage, &no_sleep).unwrap_err();
    assert!(err.message.contains("secret `SCITT_SIGNING_KEY`"), "{err}");
    assert!(transport.requests().is_empty());
}

#[test]
fn registers_each_party_verifies_and_stores_the_receipts_as_python_does() {
    let transport = recorder(sync_service);
    let verdict = run_with(key_options(json!({})), VCON, &transport, &no_secret, &no_sleep).unwrap();
    let requests = transport.requests();
    assert_eq!(
        summary(&requests),
        vec![
            pair("POST", "http://scittles:8000/entries"),
            pair("GET", "http://scittles:8000/.well-known/transparency-configuration"),
            pair("GET", "http://scittles:8000/jwks"),
            pair("POST", "http://scittles:8000/entries"),
            pair("GET", "http://scittles:8000/.well-known/transparency-configuration"),
            pair("GET", "http://scittles:8000/jwks"),
        ]
    );
    assert_eq!(
        requests[0],
        Request {
            method: "POST".into(),
            url: "http://scittles:8000/entries".into(),
            headers: vec![("content-type".into(), "application/cose".into())],
            body: unhex(PY_STATEMENT_TEL1),
            timeout: Some(Duration::from_secs(30)),
        }
    );
    assert_eq!(requests[3].body, unhex(PY_STATEMENT_TEL2));
    assert_eq!(
        requests[1],
        Request {
            method: "GET".into(),
            url: "http://scittles:8000/.well-known/transparency-configuration".into(),
            headers: vec![],
            body: vec![],
            timeout: Some(Duration::from_secs(10)),
        }
    );
    assert_eq!(requests[2].timeout, Some(Duration::from_secs(10)));

    // The vCon: one analysis appended, exactly as Python's add_analysis writes it.
    let receipt1 = STANDARD.encode(sync_receipt(&statement_payload(&unhex(PY_STATEMENT_TEL1))));
    let receipt2 = STANDARD.encode(sync_receipt(&statement_payload(&unhex(PY_STATEMENT_TEL2))));
    let body = format!(
        r#"[{{"entry_id": "entry-55", "cose_receipt": "{receipt1}", "vcon_operation": "vcon_created", "subject": "tel:+15551234567", "vcon_hash": "{VCON_HASH}", "scrapi_url": "http://scittles:8000"}}, {{"entry_id": "entry-49", "cose_receipt": "{receipt2}", "vcon_operation": "vcon_created", "subject": "tel:+15557654321", "vcon_hash": "{VCON_HASH}", "scrapi_url": "http://scittles:8000"}}]"#
    );
    let mut expected: Value = serde_json::from_str(VCON).unwrap();
    expected["analysis"] =
        json!([{"type": "scitt_receipt", "dialog": 0, "vendor": "scittles", "body": body, "encoding": "json"}]);
    let out = verdict.vcon().unwrap();
    assert_eq!(Value::Object(out.to_map()), expected);
    assert_eq!(python_json::dumps(&Value::Object(out.to_map())), python_json::dumps(&expected), "key order included");
}

#[test]
fn without_tel_parties_the_subject_is_the_vcon_uri() {
    // No usable tel: one party without, one with an empty tel.
    let no_tels = VCON.replace(r#""tel":"+15551234567","#, "").replace(r#"{"tel":"+15557654321"}"#, r#"{"tel":""}"#);
    let transport = recorder(sync_service);
    let options = key_options(json!({"issuer": "issuer-x", "key_id": "", "vcon_operation": "vcon_enhanced"}));
    let verdict = run_with(options, &no_tels, &transport, &no_secret, &no_sleep).unwrap();
    let posted = transport.requests()[0].body.clone();
    let hash = vcon_hash(&Vcon::from_json(&no_tels).unwrap());
    let (protected, payload) = statement_parts(&posted);
    assert_eq!(payload, format!("{hash}:vcon_enhanced").into_bytes());
    assert_eq!(protected[1], (int(HEADER_KID), Cbor::Bytes(vec![])), "an empty kid is written, as pycose does");
    let meta = protected.iter().find(|(l, _)| *l == int(HEADER_META_MAP)).unwrap().1.clone();
    assert_eq!(meta, Cbor::Map(vec![(Cbor::Text("vcon_operation".into()), Cbor::Text("vcon_enhanced".into()))]));
    let cwt = protected.iter().find(|(l, _)| *l == int(HEADER_CWT_CLAIMS)).unwrap().1.clone();
    let cwt = cwt.as_map().unwrap().clone();
    assert_eq!(cwt[0], (int(1), Cbor::Text("issuer-x".into())));
    assert_eq!(cwt[1], (int(2), Cbor::Text(format!("vcon://{UUID}"))));
    let (entry, body) = stored_receipts(&verdict);
    assert_eq!(entry["type"], "scitt_receipt");
    assert!(body.is_object(), "one subject: a single receipt object");
    assert_eq!(body["subject"], format!("vcon://{UUID}"));
    assert_eq!(body["vcon_operation"], "vcon_enhanced");
    assert_eq!(body["vcon_hash"], hash);
    // The fallback statement is Python's for the same inputs.
    assert_eq!(
        hex(&signed_statement(
            &conserver_key(),
            &Statement {
                issuer: "issuer-x",
                subject: &format!("vcon://{UUID}"),
                kid: b"",
                meta_map: &[("vcon_operation", "vcon_enhanced")],
                payload: format!("{VCON_HASH}:vcon_enhanced").as_bytes(),
            }
        )
        .unwrap()),
        PY_STATEMENT_FALLBACK
    );
}

#[test]
fn a_numeric_tel_is_used_as_text_and_other_tels_are_skipped() {
    let doc = r#"{"uuid":"u1","parties":[{"tel":15551234567},{"tel":true},{"tel":null},"x"]}"#;
    let transport = recorder(sync_service);
    let verdict = run_with(key_options(json!({})), doc, &transport, &no_secret, &no_sleep).unwrap();
    let (_, body) = stored_receipts(&verdict);
    assert_eq!(body["subject"], "tel:15551234567");
    let payload = statement_payload(&transport.requests()[0].body);
    assert!(String::from_utf8(payload).unwrap().ends_with(":vcon_created:15551234567"));
}

#[test]
fn store_receipt_false_registers_but_leaves_the_vcon_unchanged() {
    let transport = recorder(sync_service);
    let verdict =
        run_with(key_options(json!({"store_receipt": false})), VCON, &transport, &no_secret, &no_sleep).unwrap();
    assert!(verdict.vcon().is_none() && !verdict.is_halt());
    assert_eq!(transport.requests().len(), 6);
}

#[test]
fn a_303_is_polled_then_the_receipt_is_fetched() {
    let doc = r#"{"uuid":"u1","parties":[{"tel":"+1"}]}"#;
    let polls = RefCell::new(0);
    let transport = recorder(|request: &Request| match (request.method.as_str(), request.url.as_str()) {
        ("POST", "http://scrapi.test/entries") => Ok(with_location(303, "", "/operations/op-1")),
        ("GET", "http://scrapi.test/operations/op-1") => {
            *polls.borrow_mut() += 1;
            Ok(match *polls.borrow() {
                1 => Response::new(202, r#"{"status": "running"}"#),
                2 => Response::new(500, "oops"),
                3 => Response::new(200, "not json"),
                _ => Response::new(200, r#"{"status": "succeeded", "entryID": "entry-9"}"#),
            })
        }
        ("GET", "http://scrapi.test/entries/entry-9") => {
            let payload = format!("{}:vcon_created:+1", vcon_hash(&Vcon::from_json(doc).unwrap()));
            Ok(Response::new(200, receipt_for(payload.as_bytes(), 0, 1, &service_key())))
        }
        ("GET", "http://scrapi.test/.well-known/transparency-configuration") => {
            Ok(Response::new(200, transparency_configuration(None)))
        }
        ("GET", "http://scrapi.test/jwks") => Ok(Response::new(200, jwks(&service_key()))),
        _ => Ok(Response::new(404, "")),
    });
    let slept = RefCell::new(Vec::new());
    let sleep = |d: Duration| slept.borrow_mut().push(d);
    let options = key_options(json!({"scrapi_url": "http://scrapi.test"}));
    let verdict = run_with(options, doc, &transport, &no_secret, &sleep).unwrap();
    let requests = transport.requests();
    assert_eq!(
        summary(&requests),
        vec![
            pair("POST", "http://scrapi.test/entries"),
            pair("GET", "http://scrapi.test/operations/op-1"),
            pair("GET", "http://scrapi.test/operations/op-1"),
            pair("GET", "http://scrapi.test/operations/op-1"),
            pair("GET", "http://scrapi.test/operations/op-1"),
            pair("GET", "http://scrapi.test/entries/entry-9"),
            pair("GET", "http://scrapi.test/.well-known/transparency-configuration"),
            pair("GET", "http://scrapi.test/jwks"),
        ]
    );
    assert_eq!(*slept.borrow(), vec![Duration::from_secs(10); 3]);
    assert_eq!(requests[1].timeout, Some(Duration::from_secs(30)));
    assert_eq!(
        requests[5],
        Request {
            method: "GET".into(),
            url: "http://scrapi.test/entries/entry-9".into(),
            headers: vec![("accept".into(), "application/cose".into())],
            body: vec![],
            timeout: Some(Duration::from_secs(30)),
        }
    );
    let (_, body) = stored_receipts(&verdict);
    assert_eq!(body["entry_id"], "entry-9");
    assert_eq!(body["scrapi_url"], "http://scrapi.test");
}

#[test]
fn polling_takes_entry_id_or_the_url_and_absolute_locations() {
    let doc = r#"{"uuid":"u1","parties":[]}"#;
    let payload = format!("{}:vcon_created", vcon_hash(&Vcon::from_json(doc).unwrap()));
    for (answer, expected_id) in [
        (r#"{"entry_id": "e-7"}"#, json!("e-7")),
        (r#"{"entryID": 12}"#, json!(12)),
        (r#"{"status": "succeeded"}"#, json!("op-2")),
        (r#"["entryID"]"#, json!("op-2")),
    ] {
        let payload = payload.clone();
        let transport = recorder(move |request: &Request| match request.url.as_str() {
            "http://scittles:8000/entries" => Ok(with_location(303, "", "https://ops.test/operations/op-2")),
            "https://ops.test/operations/op-2" => Ok(Response::new(200, answer)),
            "http://scittles:8000/.well-known/transparency-configuration" => {
                Ok(Response::new(200, transparency_configuration(Some("https://keys.test/jwks.json"))))
            }
            "https://keys.test/jwks.json" => Ok(Response::new(200, jwks(&service_key()))),
            url if url.starts_with("http://scittles:8000/entries/") => {
                Ok(Response::new(200, receipt_for(payload.as_bytes(), 2, 3, &service_key())))
            }
            _ => Ok(Response::new(404, "")),
        });
        let verdict = run_with(key_options(json!({})), doc, &transport, &no_secret, &no_sleep).unwrap();
        let (_, body) = stored_receipts(&verdict);
        assert_eq!(body["entry_id"], expected_id, "{answer}");
        let id_text = entry_id_text(&expected_id);
        assert_eq!(transport.requests()[2].url, format!("http://scittles:8000/entries/{id_text}"));
        assert_eq!(transport.requests()[4].url, "https://keys.test/jwks.json");
    }
}

#[test]
fn polling_gives_up_after_six_tries() {
    let transport = recorder(|request: &Request| match request.method.as_str() {
        "POST" => Ok(with_location(303, "", "/operations/op-3")),
        _ => {
            if request.url.ends_with("op-3") {
                Err(HttpError::Timeout(request.url.clone()))
            } else {
                Ok(Response::new(404, ""))
            }
        }
    });
    let slept = RefCell::new(0);
    let sleep = |_: Duration| *slept.borrow_mut() += 1;
    let err = run_with(key_options(json!({})), VCON, &transport, &no_secret, &sleep).unwrap_err();
    assert!(err.retryable);
    assert!(err.message.contains("not registered within polling duration"), "{err}");
    assert_eq!(transport.requests().len(), 7);
    assert_eq!(*slept.borrow(), 6);

    let denied = recorder(|request: &Request| match request.method.as_str() {
        "POST" => Ok(with_location(303, "", "https://elsewhere.test/op")),
        _ => Err(HttpError::Denied(request.url.clone())),
    });
    let err = run_with(key_options(json!({})), VCON, &denied, &no_secret, &no_sleep).unwrap_err();
    assert!(!err.retryable);
    assert!(err.message.contains("allowed_outbound_hosts"), "{err}");
    assert_eq!(denied.requests().len(), 2);
}

#[test]
fn registration_errors_fail_the_link() {
    for (status, retryable, needle) in [(400, false, "400"), (503, true, "503"), (200, false, "unexpected HTTP 200")] {
        let transport = recorder(move |_: &Request| Ok(Response::new(status, "no")));
        let err = run_with(key_options(json!({})), VCON, &transport, &no_secret, &no_sleep).unwrap_err();
        assert_eq!(err.retryable, retryable, "{status}");
        assert!(err.message.contains(needle), "{err}");
        assert_eq!(transport.requests().len(), 1, "the second party is not tried");
    }
    let missing_location = recorder(|_: &Request| Ok(Response::new(303, "")));
    let err = run_with(key_options(json!({})), VCON, &missing_location, &no_secret, &no_sleep).unwrap_err();
    assert!(err.message.contains("without a Location"), "{err}");
    let refused = recorder(|r: &Request| Err(HttpError::Connection(format!("{} refused", r.url))));
    let err = run_with(key_options(json!({})), VCON, &refused, &no_secret, &no_sleep).unwrap_err();
    assert!(err.retryable && err.message.contains("refused"), "{err}");
    let receipt_gone = recorder(|request: &Request| match request.method.as_str() {
        "POST" => Ok(with_location(303, "", "/operations/op")),
        _ if request.url.ends_with("/op") => Ok(Response::new(200, r#"{"entryID": "e"}"#)),
        _ => Ok(Response::new(404, "gone")),
    });
    let err = run_with(key_options(json!({})), VCON, &receipt_gone, &no_secret, &no_sleep).unwrap_err();
    assert!(err.message.contains("/entries/e") && err.message.contains("404"), "{err}");
}

#[test]
fn receipts_that_do_not_verify_fail_the_link() {
    type Mutate = fn(&Request, Response) -> Response;
    let cases: [(&str, Mutate); 6] = [
        ("not authentic", |r, a| {
            if r.method == "POST" {
                let payload = statement_payload(&r.body);
                with_location(201, receipt_for(&payload, 0, 2, &conserver_key()), "/entries/x")
            } else {
                a
            }
        }),
        ("not authentic", |r, a| {
            if r.method == "POST" { with_location(201, receipt_for(b"other", 0, 2, &service_key()), "/e/x") } else { a }
        }),
        ("missing inclusion proof", |r, a| {
            if r.method == "POST" {
                let mut message = CoseSign1::from_tagged_slice(&receipt_for(b"x", 0, 1, &service_key())).unwrap();
                message.unprotected = Header::default();
                with_location(201, message.to_tagged_vec().unwrap(), "/e/x")
            } else {
                a
            }
        }),
        ("not a COSE_Sign1", |r, a| if r.method == "POST" { with_location(201, "junk", "/e/x") } else { a }),
        ("is not CBOR", |r, a| {
            if r.url.ends_with("transparency-configuration") { Response::new(200, vec![0xff, 0x00]) } else { a }
        }),
        ("not a P-256 key", |r, a| {
            if r.url.ends_with("/jwks") { Response::new(200, r#"{"keys": [{"kty": "OKP", "x": "AA"}]}"#) } else { a }
        }),
    ];
    for (needle, mutate) in cases {
        let transport = recorder(move |r: &Request| sync_service(r).map(|a| mutate(r, a)));
        let err = run_with(key_options(json!({})), VCON, &transport, &no_secret, &no_sleep).unwrap_err();
        assert!(err.message.contains(needle), "{needle}: {err}");
        assert!(!err.retryable);
    }
    let jwks_down =
        recorder(|r: &Request| if r.url.ends_with("/jwks") { Ok(Response::new(503, "")) } else { sync_service(r) });
    let err = run_with(key_options(json!({})), VCON, &jwks_down, &no_secret, &no_sleep).unwrap_err();
    assert!(err.retryable && err.message.contains("/jwks"), "{err}");
}

#[test]
fn a_receipt_signed_with_another_algorithm_is_refused() {
    let transport = recorder(|r: &Request| {
        let answer = sync_service(r)?;
        if r.method != "POST" {
            return Ok(answer);
        }
        let mut message = CoseSign1::from_tagged_slice(&answer.body).unwrap();
        message.protected = coset::ProtectedHeader {
            original_data: None,
            header: Header { alg: Some(coset::Algorithm::Assigned(iana::Algorithm::ES384)), ..Default::default() },
        };
        Ok(with_location(201, message.to_tagged_vec().unwrap(), "/e/x"))
    });
    let err = run_with(key_options(json!({})), VCON, &transport, &no_secret, &no_sleep).unwrap_err();
    assert!(err.message.contains("not ES256"), "{err}");
}

#[test]
fn bad_options_are_fatal_errors_naming_the_option() {
    for (key, value) in [
        ("scrapi_url", json!(8000)),
        ("signing_key_pem", json!(true)),
        ("signing_key_path", json!(["x"])),
        ("signing_key_secret", json!(1)),
        ("issuer", json!({})),
        ("key_id", json!(1)),
        ("vcon_operation", json!(null)),
        ("store_receipt", json!("yes")),
    ] {
        let mut options = key_options(json!({}));
        options[key] = value;
        let transport = recorder(sync_service);
        let result = run_with(options.clone(), VCON, &transport, &no_secret, &no_sleep);
        if key == "vcon_operation" {
            assert!(result.is_ok(), "null means the default");
            continue;
        }
        let err = result.unwrap_err();
        assert!(err.message.contains(&format!("option `{key}`")), "{options}: {err}");
        assert!(!err.retryable);
        assert!(transport.requests().is_empty());
    }
}
