//! Vendor `hugging_face`.

use std::time::Duration;

use super::*;

const FLAC: &[u8] = b"fLaC\x00\x00\x00\x22 fake";
const ENDPOINT: &str = "https://abc123.us-east-1.aws.endpoints.huggingface.cloud";

#[test]
fn the_raw_audio_is_posted_with_one_bearer_prefix() {
    let dialog = json!([{"type": "recording", "url": "https://m/t.flac", "duration": 31}]);
    let mut media = FakeMedia::default();
    with_audio(&mut media, 0, FLAC, Some("audio/flac"), Some("t.flac"));
    let http = scripted(vec![ok(json!({"text": " Hello from Hugging Face."}))]);
    let options =
        json!({"vendor": "hugging_face", "vendor_options": {"API_URL": ENDPOINT, "API_KEY": "Bearer hf_abc"}});
    let verdict = run(&ctx(options), vcon_with(dialog.clone()), &http, &media).unwrap();
    assert_eq!(
        http.requests()[0],
        Request {
            method: "POST".into(),
            url: ENDPOINT.into(),
            headers: vec![
                header("accept", "application/json"),
                header("authorization", "Bearer hf_abc"),
                header("content-type", "audio/flac"),
            ],
            body: FLAC.to_vec(),
            timeout: Some(Duration::from_secs(120)),
        }
    );
    assert_eq!(
        written(&verdict),
        json!({
            "uuid": "uuid-1",
            "dialog": dialog,
            "analysis": [{
                "type": "transcript", "dialog": 0, "vendor": "hugging_face_whisper",
                "body": "{\"text\": \" Hello from Hugging Face.\"}", "encoding": "json",
                "vendor_schema": {"opts": {"minimum_duration": 30, "API_URL": ENDPOINT, "Content-Type": "audio/flac"}}
            }]
        })
    );
}

#[test]
fn the_key_may_be_a_secret_or_absent_and_the_url_is_required() {
    let dialog = json!([{"type": "recording", "url": "https://m/t.wav", "duration": 60}]);
    let mut media = FakeMedia::default();
    with_audio(&mut media, 0, b"wav", Some("audio/wav"), None);
    grant_secrets(&[("HUGGING_FACE_API_KEY", "hf_secret")]);
    let http = scripted(vec![ok(json!({"text": "a"}))]);
    let options =
        json!({"vendor": "hugging_face", "vendor_options": {"API_URL": ENDPOINT, "Content-Type": "audio/wav"}});
    run(&Context::for_test("transcribe", options.clone()), vcon_with(dialog.clone()), &http, &media).unwrap();
    assert_eq!(http.requests()[0].header_value("authorization"), Some("Bearer hf_secret"));
    assert_eq!(http.requests()[0].header_value("content-type"), Some("audio/wav"));

    grant_secrets(&[]);
    let http = scripted(vec![ok(json!({"text": "b"}))]);
    let options = json!({"vendor": "hugging_face", "vendor_options": {"API_URL": "http://whisper.local:8000/"}});
    run(&Context::for_test("transcribe", options), vcon_with(dialog.clone()), &http, &media).unwrap();
    assert_eq!(http.requests()[0].header_value("authorization"), None);
    assert_eq!(http.requests()[0].url, "http://whisper.local:8000/");

    let err = run(&ctx(json!({"vendor": "hugging_face"})), vcon_with(dialog), &scripted(vec![]), &media).unwrap_err();
    assert!(!err.retryable);
    assert_eq!(
        err.message,
        "option `API_URL` of link `transcribe` is required: the URL of your Hugging Face inference endpoint (under \
         `vendor_options`)"
    );
}

#[test]
fn a_loading_model_is_retried_and_an_error_body_never_stored() {
    let dialog = json!([{"type": "recording", "url": "https://m/t.wav", "duration": 60}]);
    let mut media = FakeMedia::default();
    with_audio(&mut media, 0, b"wav", Some("audio/wav"), None);
    let options = json!({"vendor": "hugging_face", "vendor_options": {"API_URL": ENDPOINT, "API_KEY": "hf",
                         "retry_backoff_secs": 0, "retry_attempts": 2}});
    let http = scripted(vec![
        status(503, "{\"error\": \"Model is loading\"}"),
        status(503, "{\"error\": \"Model is loading\"}"),
    ]);
    let err = run(&ctx(options), vcon_with(dialog), &http, &media).unwrap_err();
    assert!(err.retryable);
    assert!(err.message.starts_with("dialog 0 (hugging_face): POST"), "{}", err.message);
    assert_eq!(http.requests().len(), 2);
}

#[test]
fn skips() {
    let dialog = json!([{"type": "recording", "duration": 12}, {"type": "video", "duration": 100},
                        {"type": "recording", "url": "https://m/x"}]);
    let mut media = FakeMedia::default();
    media.probes.insert(2, Err(MediaError::NoMedia("gone".into())));
    let http = scripted(vec![]);
    let options = json!({"vendor": "hugging_face", "vendor_options": {"API_URL": ENDPOINT}});
    let verdict = run(&ctx(options), vcon_with(dialog), &http, &media).unwrap();
    assert!(http.requests().is_empty());
    assert!(verdict.vcon().is_none());
}
