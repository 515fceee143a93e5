//! Vendor `groq`.

use super::*;

const WAV: &[u8] = b"RIFF\x24\x00\x00\x00WAVEfmt fake";

#[test]
fn the_request_and_analysis_are_pythons_with_the_real_extension() {
    grant_secrets(&[("GROQ_API_KEY", "gsk-secret\n")]);
    let dialog = json!([{"type": "recording", "body": "UklGRg", "encoding": "base64url", "duration": 45}]);
    let mut media = FakeMedia::default();
    with_audio(&mut media, 0, WAV, Some("audio/wav"), None);
    let answer = json!({"text": "Hola.", "x_groq": {"id": "req_1"}});
    let http = scripted(vec![ok(answer.clone())]);
    let ctx = Context::for_test("transcribe", json!({"vendor": "groq", "vendor_options": {"retry_backoff_secs": 0}}));
    let verdict = run(&ctx, vcon_with(dialog.clone()), &http, &media).unwrap();

    let request = &http.requests()[0];
    assert_eq!(
        (request.method.as_str(), request.url.as_str()),
        ("POST", "https://api.groq.com/openai/v1/audio/transcriptions")
    );
    assert_eq!(headers_but_type(request), [header("authorization", "Bearer gsk-secret")]);
    assert_eq!(
        parts(request),
        [
            text_part("model", "whisper-large-v3-turbo"),
            text_part("response_format", "json"),
            file_part("file", "audio.wav", "audio/wav", WAV)
        ]
    );
    assert_eq!(
        written(&verdict),
        json!({
            "uuid": "uuid-1",
            "dialog": dialog,
            "analysis": [{
                "type": "transcript", "dialog": 0, "vendor": "groq_whisper",
                "body": "{\"text\": \"Hola.\", \"x_groq\": {\"id\": \"req_1\"}}", "encoding": "json",
                "vendor_schema": {"opts": {"minimum_duration": 30, "Content-Type": "audio/flac", "retry_backoff_secs": 0}}
            }]
        })
    );
}

#[test]
fn the_option_key_url_and_model_are_used() {
    grant_secrets(&[("GROQ_API_KEY", "from-secret")]);
    let mut media = FakeMedia::default();
    with_audio(&mut media, 0, b"flac", None, Some("x.flac"));
    let http = scripted(vec![ok(json!({"text": "t"}))]);
    let options = json!({"vendor": "groq", "vendor_options": {"API_KEY": "gsk-option", "model": "whisper-large-v3",
                         "api_url": "http://groq-gw.internal:8080/v1/audio/transcriptions", "minimum_duration": 1}});
    let verdict = run(
        &Context::for_test("transcribe", options),
        vcon_with(json!([{"type": "recording", "url": "https://m/x.flac", "duration": 1}])),
        &http,
        &media,
    )
    .unwrap();
    let request = &http.requests()[0];
    assert_eq!(request.url, "http://groq-gw.internal:8080/v1/audio/transcriptions");
    assert_eq!(request.header_value("authorization"), Some("Bearer gsk-option"));
    assert_eq!(parts(request)[0], text_part("model", "whisper-large-v3"));
    assert_eq!(parts(request)[2], file_part("file", "x.flac", "audio/flac", b"flac"));
    let opts = &written(&verdict)["analysis"][0]["vendor_schema"]["opts"];
    assert_eq!(
        *opts,
        json!({"minimum_duration": 1, "Content-Type": "audio/flac", "model": "whisper-large-v3",
               "api_url": "http://groq-gw.internal:8080/v1/audio/transcriptions"})
    );
}

#[test]
fn short_and_unknown_durations_are_checked_in_whole_seconds() {
    let dialog = json!([
        {"type": "recording", "url": "https://m/a.mp3", "duration": 29.9},
        {"type": "recording", "url": "https://m/b.mp3"},
        {"type": "recording", "url": "https://m/c.mp3"},
        {"type": "recording", "url": "https://m/d.mp3", "duration": 30.0}
    ]);
    let mut media = FakeMedia::default();
    with_probe(&mut media, 1, "mp3", 29.99);
    media.probes.insert(2, Err(MediaError::Unsupported("weird".into())));
    with_audio(&mut media, 2, b"c", Some("audio/mpeg"), None);
    with_audio(&mut media, 3, b"d", Some("audio/mpeg"), None);
    let http = scripted(vec![ok(json!({"text": "c"})), ok(json!({"text": "d"}))]);
    let verdict =
        run(&ctx(json!({"vendor": "groq", "vendor_options": {"API_KEY": "k"}})), vcon_with(dialog), &http, &media)
            .unwrap();
    let dialogs: Vec<Value> =
        written(&verdict)["analysis"].as_array().unwrap().iter().map(|a| a["dialog"].clone()).collect();
    assert_eq!(dialogs, [json!(2), json!(3)]);
    assert_eq!(http.requests().len(), 2);
}

#[test]
fn no_key_is_fatal_and_a_rejected_one_says_what_to_check() {
    let mut media = FakeMedia::default();
    with_audio(&mut media, 0, b"a", Some("audio/mpeg"), None);
    let vcon = || vcon_with(json!([{"type": "recording", "url": "https://m/a.mp3", "duration": 40}]));
    let err = run(&ctx(json!({"vendor": "groq"})), vcon(), &scripted(vec![]), &media).unwrap_err();
    assert!(!err.retryable);
    assert_eq!(
        err.message,
        "no Groq API key: set `API_KEY` under `vendor_options`, or grant the secret `GROQ_API_KEY` to this link"
    );
    let http = scripted(vec![status(401, "invalid api key")]);
    let err =
        run(&ctx(json!({"vendor": "groq", "vendor_options": {"API_KEY": "bad"}})), vcon(), &http, &media).unwrap_err();
    assert!(!err.retryable);
    assert!(err.message.starts_with("dialog 0 (groq): POST https://api.groq.com/openai/v1/audio/transcriptions failed: the server answered 401: invalid api key; check the Groq API key"), "{}", err.message);
}

#[test]
fn an_answer_without_text_stops_the_loop() {
    let mut media = FakeMedia::default();
    with_audio(&mut media, 0, b"a", Some("audio/mpeg"), None);
    with_audio(&mut media, 1, b"b", Some("audio/mpeg"), None);
    let dialog = json!([{"type": "recording", "url": "https://m/a.mp3", "duration": 40},
                        {"type": "recording", "url": "https://m/b.mp3", "duration": 40}]);
    let http = scripted(vec![ok(json!({"error": "odd"})), ok(json!({"text": "b"}))]);
    let verdict =
        run(&ctx(json!({"vendor": "groq", "vendor_options": {"API_KEY": "k"}})), vcon_with(dialog), &http, &media)
            .unwrap();
    assert_eq!(http.requests().len(), 1);
    assert!(verdict.vcon().is_none());
}
