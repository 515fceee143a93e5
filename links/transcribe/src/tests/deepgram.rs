//! Vendor `deepgram`.

use std::time::Duration;

use super::*;

const URL: &str = "https://media.example/calls/c1.mp3";

fn options(extra: Value) -> Value {
    let mut vendor_options = json!({"DEEPGRAM_KEY": "dg-key", "api": {"model": "nova-3", "smart_format": true,
                                    "detect_language": true}, "retry_backoff_secs": 0});
    vendor_options.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
    json!({"vendor": "deepgram", "vendor_options": vendor_options})
}

fn answer(transcript: &str, confidence: f64, language: Option<&str>) -> Value {
    let mut channel = json!({"alternatives": [{"transcript": transcript, "confidence": confidence,
                              "words": [{"word": "hello", "start": 0.1, "end": 0.4, "confidence": 0.99}]}]});
    if let Some(language) = language {
        channel["detected_language"] = json!(language);
    }
    json!({"metadata": {"request_id": "r1", "duration": 61.5}, "results": {"channels": [channel]}})
}

#[test]
fn a_url_is_passed_to_deepgram_and_the_alternative_stored() {
    let dialog = json!([{"type": "recording", "url": URL, "duration": 61.5}]);
    let http = scripted(vec![ok(answer("hola", 0.93, Some("es")))]);
    let media = FakeMedia::default();
    let verdict = run(&ctx(options(json!({}))), vcon_with(dialog.clone()), &http, &media).unwrap();
    assert_eq!(
        http.requests()[0],
        Request {
            method: "POST".into(),
            url: "https://api.deepgram.com/v1/listen?model=nova-3&smart_format=true&detect_language=true".into(),
            headers: vec![header("authorization", "Token dg-key"), header("content-type", "application/json")],
            body: format!("{{\"url\":\"{URL}\"}}").into_bytes(),
            timeout: Some(Duration::from_secs(120)),
        }
    );
    let body = json!({"transcript": "hola", "confidence": 0.93,
                      "words": [{"word": "hello", "start": 0.1, "end": 0.4, "confidence": 0.99}],
                      "detected_language": "es"});
    assert_eq!(
        written(&verdict),
        json!({
            "uuid": "uuid-1",
            "dialog": dialog,
            "analysis": [{
                "type": "transcript", "dialog": 0, "vendor": "deepgram", "body": dumps(&body), "encoding": "json",
                "vendor_schema": {"opts": {"minimum_duration": 60, "minimum_confidence": 0.5,
                    "api": {"model": "nova-3", "smart_format": true, "detect_language": true}, "retry_backoff_secs": 0}}
            }]
        })
    );
}

#[test]
fn an_inline_body_is_uploaded_with_its_media_type() {
    let dialog = json!([{"type": "recording", "body": "UklGRg", "encoding": "base64url", "mediatype": "audio/wav",
                         "duration": 75}]);
    let mut media = FakeMedia::default();
    with_audio(&mut media, 0, b"RIFF....WAVE", Some("audio/wav"), None);
    let http = scripted(vec![ok(answer("inline", 0.8, None))]);
    let options =
        options(json!({"api": {"model": "nova-2", "punctuate": false}, "api_url": "http://dg.internal/v1/listen"}));
    let verdict = run(&ctx(options), vcon_with(dialog), &http, &media).unwrap();
    assert_eq!(
        http.requests()[0],
        Request {
            method: "POST".into(),
            url: "http://dg.internal/v1/listen?model=nova-2&punctuate=false".into(),
            headers: vec![header("authorization", "Token dg-key"), header("content-type", "audio/wav")],
            body: b"RIFF....WAVE".to_vec(),
            timeout: Some(Duration::from_secs(120)),
        }
    );
    let body: Value = serde_json::from_str(written(&verdict)["analysis"][0]["body"].as_str().unwrap()).unwrap();
    assert_eq!(body["detected_language"], "en", "the default language");
    assert_eq!(body["transcript"], "inline");
}

#[test]
fn low_confidence_is_not_stored_and_the_next_dialog_is_processed() {
    let dialog = json!([{"type": "recording", "url": "https://m/a.mp3", "duration": 90},
                        {"type": "recording", "url": "https://m/b.mp3", "duration": 90}]);
    let http = scripted(vec![ok(answer("mumble", 0.3, None)), ok(answer("clear", 0.6, None))]);
    let verdict =
        run(&ctx(options(json!({"minimum_confidence": 0.5}))), vcon_with(dialog), &http, &FakeMedia::default())
            .unwrap();
    assert_eq!(http.requests().len(), 2);
    let analysis = written(&verdict)["analysis"].clone();
    assert_eq!(analysis.as_array().unwrap().len(), 1);
    assert_eq!(analysis[0]["dialog"], 1);

    let http = scripted(vec![ok(answer("mumble", 0.3, None))]);
    let one = json!([{"type": "recording", "url": "https://m/c.mp3", "duration": 90}]);
    let verdict = run(&ctx(options(json!({}))), vcon_with(one), &http, &FakeMedia::default()).unwrap();
    assert!(verdict.vcon().is_none(), "nothing stored");
}

#[test]
fn skips_and_a_probed_wav_duration_written_back() {
    let dialog = json!([
        {"type": "recording", "url": "https://m/short.mp3", "duration": 59},
        {"type": "recording", "url": "https://m/probe.WAV"},
        {"type": "recording", "url": "https://m/unknown.mp3"},
        {"type": "recording", "url": ""},
        {"type": "text", "url": "https://m/t"}
    ]);
    let mut media = FakeMedia::default();
    with_probe(&mut media, 1, "wav", 2.0);
    let http = scripted(vec![ok(answer("no duration, sent anyway", 0.9, None))]);
    let verdict = run(&ctx(options(json!({}))), vcon_with(dialog), &http, &media).unwrap();
    assert_eq!(http.requests().len(), 1);
    assert_eq!(http.requests()[0].body, b"{\"url\":\"https://m/unknown.mp3\"}");
    let written = written(&verdict);
    assert_eq!(written["dialog"][1]["duration"], json!(2.0));
    assert_eq!(written["analysis"].as_array().unwrap().len(), 1);
    assert_eq!(written["analysis"][0]["dialog"], 2);
}

#[test]
fn a_cached_answer_is_used_for_the_same_url() {
    let dialog = json!([{"type": "recording", "url": URL, "duration": 61.5}]);
    let http = scripted(vec![ok(answer("once", 0.9, None))]);
    let first = run(&ctx(options(json!({}))), vcon_with(dialog.clone()), &http, &FakeMedia::default()).unwrap();
    let again = scripted(vec![]);
    let second = run(&ctx(options(json!({}))), vcon_with(dialog.clone()), &again, &FakeMedia::default()).unwrap();
    assert!(again.requests().is_empty());
    assert_eq!(written(&first), written(&second));
    let other = scripted(vec![ok(answer("twice", 0.9, None))]);
    run(&ctx(options(json!({"api": {"model": "nova-2"}}))), vcon_with(dialog), &other, &FakeMedia::default()).unwrap();
    assert_eq!(other.requests().len(), 1, "other query options, another key");
}

#[test]
fn credentials_and_api_are_required_on_the_direct_path() {
    let dialog = json!([{"type": "recording", "url": URL, "duration": 61.5}]);
    let err = run(
        &ctx(json!({"vendor": "deepgram", "vendor_options": {"api": {}}})),
        vcon_with(dialog.clone()),
        &scripted(vec![]),
        &FakeMedia::default(),
    )
    .unwrap_err();
    assert!(!err.retryable);
    assert!(err.message.starts_with("the deepgram vendor needs `DEEPGRAM_KEY`"), "{}", err.message);
    let err = run(
        &ctx(json!({"vendor": "deepgram", "vendor_options": {"DEEPGRAM_KEY": "k"}})),
        vcon_with(dialog.clone()),
        &scripted(vec![]),
        &FakeMedia::default(),
    )
    .unwrap_err();
    assert!(
        err.message.starts_with("option `api` of link `transcribe` is required under vendor_options"),
        "{}",
        err.message
    );
    let err = run(
        &ctx(options(json!({"api": "nova-3"}))),
        vcon_with(dialog.clone()),
        &scripted(vec![]),
        &FakeMedia::default(),
    )
    .unwrap_err();
    assert!(err.message.starts_with("option `api` of link `transcribe` must be a mapping"), "{}", err.message);
    let err = run(
        &ctx(options(json!({"minimum_confidence": "high"}))),
        vcon_with(dialog.clone()),
        &scripted(vec![]),
        &FakeMedia::default(),
    )
    .unwrap_err();
    assert!(
        err.message.starts_with("option `minimum_confidence` of link `transcribe` must be a number"),
        "{}",
        err.message
    );
    // The key may be a granted secret.
    grant_secrets(&[("DEEPGRAM_KEY", "dg-secret")]);
    let http = scripted(vec![ok(answer("secret", 0.9, None))]);
    let options = json!({"vendor": "deepgram", "vendor_options": {"api": {"model": "nova-3"}}});
    run(&Context::for_test("transcribe", options), vcon_with(dialog), &http, &FakeMedia::default()).unwrap();
    assert_eq!(http.requests()[0].header_value("authorization"), Some("Token dg-secret"));
    // A vCon with nothing to transcribe needs no credentials.
    grant_secrets(&[]);
    let verdict = run(
        &ctx(json!({"vendor": "deepgram"})),
        vcon_with(json!([{"type": "text"}])),
        &scripted(vec![]),
        &FakeMedia::default(),
    )
    .unwrap();
    assert!(verdict.vcon().is_none());
}

#[test]
fn a_rejected_key_is_fatal() {
    let dialog = json!([{"type": "recording", "url": URL, "duration": 61.5}]);
    let http = scripted(vec![status(401, "{\"err_code\":\"INVALID_AUTH\"}")]);
    let err = run(&ctx(options(json!({}))), vcon_with(dialog), &http, &FakeMedia::default()).unwrap_err();
    assert!(!err.retryable);
    assert!(
        err.message.starts_with("dialog 0 (deepgram): POST https://api.deepgram.com/v1/listen?"),
        "{}",
        err.message
    );
    assert!(err.message.contains("answered 401") && err.message.contains("check the Deepgram key"), "{}", err.message);
}

#[test]
fn the_litellm_path_uploads_the_media_and_stores_only_the_text() {
    let dialog = json!([{"type": "recording", "url": "https://media.example/c2.mp3", "duration": 61}]);
    let mut media = FakeMedia::default();
    with_audio(&mut media, 0, b"mp3 bytes", Some("audio/mpeg"), Some("c2.mp3"));
    let http = scripted(vec![ok(json!({"text": "via proxy"}))]);
    let options = json!({"vendor": "deepgram", "vendor_options": {"LITELLM_PROXY_URL": "http://litellm:4000",
        "LITELLM_MASTER_KEY": "sk-master", "api": {"model": "nova-2"}, "DEEPGRAM_KEY": "unused",
        "send_ai_usage_data_to_url": "https://portal/usage", "ai_usage_api_token": "t"}});
    let verdict = run(&ctx(options), vcon_with(dialog.clone()), &http, &media).unwrap();
    assert_eq!(http.requests().len(), 1, "no usage report on this path");
    let request = &http.requests()[0];
    assert_eq!(request.url, "http://litellm:4000/audio/transcriptions");
    assert_eq!(headers_but_type(request), [header("authorization", "Bearer sk-master")]);
    assert_eq!(parts(request), [text_part("model", "nova-2"), file_part("file", "c2.mp3", "audio/mpeg", b"mp3 bytes")]);
    assert_eq!(
        written(&verdict),
        json!({
            "uuid": "uuid-1",
            "dialog": dialog,
            "analysis": [{"type": "transcript", "dialog": 0, "vendor": "deepgram",
                          "body": "{\"transcript\": \"via proxy\"}", "encoding": "json",
                          "vendor_schema": {"opts": {"minimum_duration": 60, "minimum_confidence": 0.5,
                                                     "api": {"model": "nova-2"}}}}]
        })
    );
}

#[test]
fn billed_seconds_are_reported() {
    let dialog = json!([{"type": "recording", "url": URL, "duration": 61.5}]);
    let http = scripted(vec![ok(answer("billed", 0.9, None)), status(204, "")]);
    let options =
        options(json!({"send_ai_usage_data_to_url": "https://portal.example/usage", "ai_usage_api_token": "tok"}));
    run(&ctx(options), vcon_with(dialog), &http, &FakeMedia::default()).unwrap();
    let requests = http.requests();
    assert_eq!(requests[1].url, "https://portal.example/usage");
    let mut report: Value = serde_json::from_slice(&requests[1].body).unwrap();
    report.as_object_mut().unwrap().remove("created_at");
    assert_eq!(
        report,
        json!({"record_id": "uuid-1", "type": "VCON_PROCESSING", "sub_type": "DEEPGRAM_TRANSCRIBE",
               "unit_type": "seconds", "input_units": 62, "output_units": 0, "ai_model": "nova-3"})
    );
}

#[test]
fn an_unexpected_answer_is_fatal() {
    let dialog = json!([{"type": "recording", "url": URL, "duration": 61.5}]);
    let http = scripted(vec![ok(json!({"results": {"channels": []}}))]);
    let err = run(&ctx(options(json!({}))), vcon_with(dialog), &http, &FakeMedia::default()).unwrap_err();
    assert_eq!(err.message, "dialog 0 (deepgram): Deepgram's answer has no results.channels[0].alternatives[0]");
}
