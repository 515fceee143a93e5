//! Vendor `openai`.

use std::time::Duration;

use super::*;

const MP3: &[u8] = b"ID3\x04\x00fake mp3 bytes";

/// Options for the openai vendor with a key and instant retries, plus `extra`.
fn options(extra: Value) -> Value {
    let mut vendor_options = json!({"OPENAI_API_KEY": "sk-test", "retry_backoff_secs": 0});
    vendor_options.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
    json!({"vendor": "openai", "vendor_options": vendor_options})
}

fn answer(text: &str, input: u64, output: u64) -> Value {
    json!({"text": text, "usage": {"type": "tokens", "input_tokens": input, "output_tokens": output,
           "total_tokens": input + output, "input_token_details": {"text_tokens": 0, "audio_tokens": input}}})
}

/// Python's defaults minus keys, then the options the tests add.
fn schema_opts() -> Value {
    json!({
        "AZURE_OPENAI_ENDPOINT": null, "AZURE_OPENAI_API_VERSION": "2024-10-21", "model": "gpt-4o-transcribe",
        "language": "en", "minimum_duration": 3, "max_chunk_duration": 480, "use_silence_chunking": true,
        "silence_thresh": -40, "silence_len": 2000, "retry_backoff_secs": 0
    })
}

fn one_call() -> (Value, FakeMedia) {
    let dialog = json!([{"type": "recording", "url": "https://media.example/calls/call%20one.mp3", "duration": 42.5}]);
    let mut media = FakeMedia::default();
    with_audio(&mut media, 0, MP3, Some("audio/mpeg"), Some("call%20one.mp3"));
    with_probe(&mut media, 0, "mp3", 42.5);
    (dialog, media)
}

#[test]
fn a_short_recording_is_uploaded_unchanged_and_pythons_analysis_written() {
    let (dialog, media) = one_call();
    let http = scripted(vec![ok(answer("Hello there.", 120, 8))]);
    let verdict = run(&ctx(options(json!({}))), vcon_with(dialog.clone()), &http, &media).unwrap();

    let requests = http.requests();
    assert_eq!(requests.len(), 1);
    let request = &requests[0];
    assert_eq!(request.method, "POST");
    assert_eq!(request.url, "https://api.openai.com/v1/audio/transcriptions");
    assert_eq!(headers_but_type(request), [header("authorization", "Bearer sk-test")]);
    assert!(request.header_value("content-type").unwrap().starts_with("multipart/form-data; boundary="));
    assert_eq!(request.timeout, Some(Duration::from_secs(120)));
    assert_eq!(
        parts(request),
        [text_part("model", "gpt-4o-transcribe"), file_part("file", "call one.mp3", "audio/mpeg", MP3)]
    );
    assert!(media.split_requests.borrow().is_empty());

    assert_eq!(
        written(&verdict),
        json!({
            "uuid": "uuid-1",
            "dialog": dialog,
            "analysis": [{
                "type": "transcript",
                "dialog": 0,
                "vendor": "openai",
                "body": dumps(&answer("Hello there.", 120, 8)),
                "encoding": "json",
                "vendor_schema": {"opts": schema_opts()}
            }]
        })
    );
    let body = written(&verdict)["analysis"][0]["body"].clone();
    assert_eq!(
        body,
        json!(
            "{\"text\": \"Hello there.\", \"usage\": {\"type\": \"tokens\", \"input_tokens\": 120, \"output_tokens\": 8, \
             \"total_tokens\": 128, \"input_token_details\": {\"text_tokens\": 0, \"audio_tokens\": 120}}}"
        )
    );
}

#[test]
fn upload_names_fall_back_to_the_type_the_probe_then_audio_mp4() {
    for (mediatype, filename, probe, expected_name, expected_type) in [
        (None, Some("recording"), Some("wav"), "recording.wav", "audio/wav"),
        (Some("audio/x-wav"), None, Some("mp3"), "audio.wav", "audio/x-wav"),
        (None, None, Some("flac"), "audio.flac", "audio/flac"),
        (None, None, None, "audio.mp4", "video/mp4"),
    ] {
        let mut media = FakeMedia::default();
        with_audio(&mut media, 0, MP3, mediatype, filename);
        match probe {
            Some(format) => with_probe(&mut media, 0, format, 10.0),
            None => {
                media.probes.insert(0, Err(MediaError::Unsupported("opus is not decoded".into())));
            }
        }
        let http = scripted(vec![ok(answer("x", 1, 1))]);
        let dialog = json!([{"type": "recording", "body": "eA", "encoding": "base64url", "duration": 10}]);
        run(&ctx(options(json!({"model": expected_name}))), vcon_with(dialog), &http, &media).unwrap();
        let sent = &parts(&http.requests()[0])[1];
        assert_eq!(sent.filename.as_deref(), Some(expected_name));
        assert_eq!(sent.content_type.as_deref(), Some(expected_type));
    }
}

#[test]
fn a_long_recording_is_split_and_the_chunk_results_combined() {
    let dialog = json!([{"type": "recording", "url": "https://media.example/calls/Big%20Call.mp3"}]);
    let mut media = FakeMedia::default();
    with_probe(&mut media, 0, "mp3", 700.0);
    media.chunks.insert(
        0,
        Ok(vec![
            Chunk { index: 0, start_ms: 0, end_ms: 395_000, wav: b"RIFF chunk zero".to_vec() },
            Chunk { index: 1, start_ms: 395_000, end_ms: 700_000, wav: b"RIFF chunk one".to_vec() },
        ]),
    );
    let first = answer("First part.", 100, 10);
    let second = answer("Second part.", 50, 5);
    let http = scripted(vec![ok(first.clone()), ok(second.clone())]);
    let opts = json!({"max_chunk_duration": 400, "use_silence_chunking": false, "silence_thresh": -35.5,
                      "silence_len": 1500});
    let verdict = run(&ctx(options(opts)), vcon_with(dialog.clone()), &http, &media).unwrap();

    assert_eq!(
        *media.split_requests.borrow(),
        [(
            0,
            ChunkRequest {
                max_chunk_secs: 400,
                sample_rate: 16_000,
                split_at_silence: false,
                silence_threshold_dbfs: -35.5,
                silence_window_ms: 1500
            }
        )]
    );
    let requests = http.requests();
    assert_eq!(requests.len(), 2);
    assert_eq!(
        parts(&requests[0]),
        [
            text_part("model", "gpt-4o-transcribe"),
            file_part("file", "Big Call_chunk_000.wav", "audio/wav", b"RIFF chunk zero")
        ]
    );
    assert_eq!(
        parts(&requests[1]),
        [
            text_part("model", "gpt-4o-transcribe"),
            file_part("file", "Big Call_chunk_001.wav", "audio/wav", b"RIFF chunk one")
        ]
    );
    let combined = json!({
        "text": "First part. Second part.",
        "usage": {"type": "tokens", "input_tokens": 150, "total_tokens": 165, "output_tokens": 15,
                  "input_token_details": {"text_tokens": 0, "audio_tokens": 150}},
        "chunked_transcription": {"total_chunks": 2, "chunk_results": [first, second]}
    });
    let mut opts = schema_opts();
    let map = opts.as_object_mut().unwrap();
    map.insert("max_chunk_duration".into(), json!(400));
    map.insert("use_silence_chunking".into(), json!(false));
    map.insert("silence_thresh".into(), json!(-35.5));
    map.insert("silence_len".into(), json!(1500));
    assert_eq!(
        written(&verdict),
        json!({
            "uuid": "uuid-1",
            "dialog": dialog,
            "analysis": [{"type": "transcript", "dialog": 0, "vendor": "openai", "body": dumps(&combined),
                          "encoding": "json", "vendor_schema": {"opts": opts}}]
        })
    );
}

#[test]
fn the_default_chunking_is_pythons() {
    let mut media = FakeMedia::default();
    with_probe(&mut media, 0, "wav", 480.5);
    media.chunks.insert(0, Ok(vec![Chunk { index: 0, start_ms: 0, end_ms: 480_500, wav: b"W".to_vec() }]));
    let http = scripted(vec![ok(answer("only", 1, 1))]);
    let dialog = json!([{"type": "recording", "filename": "x.wav", "body": "Vw", "encoding": "base64url"}]);
    let verdict = run(&ctx(options(json!({}))), vcon_with(dialog), &http, &media).unwrap();
    assert_eq!(*media.split_requests.borrow(), [(0, ChunkRequest::default())]);
    assert_eq!(parts(&http.requests()[0])[1].filename.as_deref(), Some("x_chunk_000.wav"));
    // A single chunk's result is stored as is, without `chunked_transcription`.
    assert_eq!(written(&verdict)["analysis"][0]["body"], json!(dumps(&answer("only", 1, 1))));
}

#[test]
fn an_undecodable_codec_is_forwarded_unchanged_when_short_enough() {
    for (duration, bytes) in [(json!(100), b"OggS opus 1"), (json!(null), b"OggS opus 2")] {
        let mut media = FakeMedia::default();
        with_audio(&mut media, 0, bytes, Some("audio/ogg"), Some("call.opus"));
        media.probes.insert(0, Err(MediaError::Unsupported("codec opus".into())));
        let http = scripted(vec![ok(answer("forwarded", 1, 1))]);
        let dialog = json!([{"type": "recording", "url": "https://m/call.opus", "duration": duration}]);
        let verdict = run(&ctx(options(json!({}))), vcon_with(dialog), &http, &media).unwrap();
        assert_eq!(parts(&http.requests()[0])[1], file_part("file", "call.opus", "audio/ogg", bytes));
        assert!(media.split_requests.borrow().is_empty());
        assert_eq!(written(&verdict)["analysis"][0]["type"], "transcript");
    }
}

#[test]
fn an_undecodable_codec_longer_than_a_chunk_is_fatal() {
    let mut media = FakeMedia::default();
    with_audio(&mut media, 0, b"amr", Some("audio/amr"), None);
    media.probes.insert(0, Err(MediaError::Unsupported("codec amr".into())));
    let http = scripted(vec![]);
    let dialog = json!([{"type": "recording", "url": "https://m/a.amr", "duration": 900}]);
    let err = run(&ctx(options(json!({}))), vcon_with(dialog), &http, &media).unwrap_err();
    assert!(!err.retryable);
    assert!(err.message.starts_with("dialog 0 (openai): the recording is 900 s"), "{}", err.message);
    assert!(err.message.contains("codec cannot be split") && err.message.contains("codec amr"), "{}", err.message);
    assert!(http.requests().is_empty());
}

#[test]
fn dialogs_are_skipped_as_in_python() {
    let dialog = json!([
        {"type": "text", "body": "hi"},
        {"type": "recording", "url": "https://m/done.mp3", "duration": 60},
        {"type": "recording", "url": "https://m/short.mp3", "duration": 2.5},
        {"type": "recording", "url": "https://m/probed-short.mp3"},
        {"type": "recording"},
        {"type": "recording", "url": "https://m/ok.mp3", "duration": 3}
    ]);
    let mut vcon = vcon_with(dialog);
    vcon.set("analysis", json!([{"type": "transcript", "dialog": 1, "vendor": "deepgram", "body": "done"}]));
    let mut media = FakeMedia::default();
    with_probe(&mut media, 3, "mp3", 2.9);
    with_probe(&mut media, 5, "mp3", 3.0);
    with_audio(&mut media, 5, MP3, None, Some("ok.mp3"));
    let http = scripted(vec![ok(answer("ok", 1, 1))]);
    let verdict = run(&ctx(options(json!({}))), vcon, &http, &media).unwrap();
    assert_eq!(http.requests().len(), 1);
    assert_eq!(parts(&http.requests()[0])[1].filename.as_deref(), Some("ok.mp3"));
    let analysis = written(&verdict)["analysis"].clone();
    assert_eq!(analysis.as_array().unwrap().len(), 2);
    assert_eq!(analysis[1]["dialog"], 5);

    // Nothing to do: unchanged.
    let http = scripted(vec![]);
    let verdict = run(&ctx(options(json!({}))), vcon_with(json!([{"type": "text"}])), &http, &media).unwrap();
    assert!(verdict.vcon().is_none() && !verdict.is_halt());
}

#[test]
fn a_cached_transcription_is_used_without_a_call() {
    let (dialog, media) = one_call();
    let http = scripted(vec![ok(answer("cached text", 3, 4))]);
    let first = run(&ctx(options(json!({}))), vcon_with(dialog.clone()), &http, &media).unwrap();
    assert_eq!(http.requests().len(), 1);
    let again = scripted(vec![]);
    let second = run(&ctx(options(json!({}))), vcon_with(dialog.clone()), &again, &media).unwrap();
    assert!(again.requests().is_empty());
    assert_eq!(written(&second), written(&first));
    // Another model is another key.
    let other = scripted(vec![ok(answer("other", 1, 1))]);
    run(&ctx(options(json!({"model": "whisper-1"}))), vcon_with(dialog), &other, &media).unwrap();
    assert_eq!(other.requests().len(), 1);
}

#[test]
fn transient_failures_are_retried() {
    let (dialog, media) = one_call();
    let http =
        scripted(vec![status(503, "busy"), Err(HttpError::Timeout("t".into())), ok(answer("after retry", 1, 1))]);
    let verdict = run(&ctx(options(json!({}))), vcon_with(dialog.clone()), &http, &media).unwrap();
    assert_eq!(http.requests().len(), 3);
    assert_eq!(http.requests()[0], http.requests()[2]);
    assert!(written(&verdict)["analysis"][0]["body"].as_str().unwrap().contains("after retry"));

    // (Another model, so the answer cached above is not used.)
    let http = scripted(vec![status(503, "busy"), status(502, "bad gateway")]);
    let options = options(json!({"retry_attempts": 2, "model": "whisper-1"}));
    let err = run(&ctx(options), vcon_with(dialog), &http, &media).unwrap_err();
    assert!(err.retryable);
    assert!(
        err.message.starts_with(
            "dialog 0 (openai): POST https://api.openai.com/v1/audio/transcriptions failed after 2 attempt(s)"
        ),
        "{}",
        err.message
    );
}

#[test]
fn a_rejected_key_or_model_is_fatal_and_says_what_to_check() {
    let (dialog, media) = one_call();
    let http = scripted(vec![status(401, "{\"error\": {\"message\": \"Incorrect API key\"}}")]);
    let err = run(&ctx(options(json!({}))), vcon_with(dialog.clone()), &http, &media).unwrap_err();
    assert!(!err.retryable);
    assert_eq!(http.requests().len(), 1, "not retried");
    assert!(
        err.message.starts_with(
            "dialog 0 (openai): POST https://api.openai.com/v1/audio/transcriptions failed: the server answered 401"
        ),
        "{}",
        err.message
    );
    assert!(err.message.contains("check the API key (option `OPENAI_API_KEY`"), "{}", err.message);
    assert!(!err.message.contains("sk-test"));

    let http = scripted(vec![status(400, "model not found")]);
    let err = run(&ctx(options(json!({"model": "nope"}))), vcon_with(dialog), &http, &media).unwrap_err();
    assert!(!err.retryable);
    assert!(err.message.contains("answered 400") && err.message.contains("check the model `nope`"), "{}", err.message);
}

#[test]
fn azure_and_litellm_endpoints_and_their_keys() {
    let (dialog, media) = one_call();
    let http = scripted(vec![ok(answer("azure", 1, 1))]);
    let opts = json!({"vendor": "openai", "vendor_options": {
        "AZURE_OPENAI_ENDPOINT": "https://res.openai.azure.com", "AZURE_OPENAI_API_KEY": "az", "model": "whisper"}});
    run(&ctx(opts), vcon_with(dialog.clone()), &http, &media).unwrap();
    let request = &http.requests()[0];
    assert_eq!(
        request.url,
        "https://res.openai.azure.com/openai/deployments/whisper/audio/transcriptions?api-version=2024-10-21"
    );
    assert_eq!(headers_but_type(request), [header("api-key", "az")]);

    let http = scripted(vec![ok(answer("proxy", 1, 1))]);
    let opts = json!({"vendor": "openai", "vendor_options": {
        "LITELLM_PROXY_URL": "http://litellm:4000", "LITELLM_MASTER_KEY": "sk-master", "model": "whisper-1"}});
    let verdict = run(&ctx(opts), vcon_with(dialog.clone()), &http, &media).unwrap();
    let request = &http.requests()[0];
    assert_eq!(request.url, "http://litellm:4000/audio/transcriptions");
    assert_eq!(headers_but_type(request), [header("authorization", "Bearer sk-master")]);
    let schema = &written(&verdict)["analysis"][0]["vendor_schema"]["opts"];
    assert_eq!(schema["LITELLM_PROXY_URL"], "http://litellm:4000");
    assert!(schema.get("LITELLM_MASTER_KEY").is_none(), "{schema}");

    grant_secrets(&[("OPENAI_API_KEY", "sk-secret")]);
    let http = scripted(vec![ok(answer("secret", 1, 1))]);
    let opts = json!({"vendor": "openai", "vendor_options": {"model": "gpt-4o-mini-transcribe"}});
    let with_secret = Context::for_test("transcribe", opts);
    run(&with_secret, vcon_with(dialog.clone()), &http, &media).unwrap();
    assert_eq!(http.requests()[0].header_value("authorization"), Some("Bearer sk-secret"));

    grant_secrets(&[]);
    let err = run(&ctx(json!({"vendor": "openai"})), vcon_with(dialog), &scripted(vec![]), &media).unwrap_err();
    assert!(err.message.starts_with("no LLM credentials"), "{}", err.message);
}

#[test]
fn usage_is_reported_for_billed_calls_only() {
    let (dialog, media) = one_call();
    let http = scripted(vec![ok(answer("billed", 120, 8)), status(200, "")]);
    let opts =
        options(json!({"send_ai_usage_data_to_url": "https://portal.example/usage", "ai_usage_api_token": "tok"}));
    let verdict = run(&ctx(opts.clone()), vcon_with(dialog.clone()), &http, &media).unwrap();
    let requests = http.requests();
    assert_eq!(requests.len(), 2);
    assert_eq!(requests[1].url, "https://portal.example/usage");
    assert_eq!(requests[1].header_value("authorization"), Some("Bearer tok"));
    let mut report: Value = serde_json::from_slice(&requests[1].body).unwrap();
    report.as_object_mut().unwrap().remove("created_at");
    assert_eq!(
        report,
        json!({"record_id": "uuid-1", "type": "VCON_PROCESSING", "sub_type": "OPENAI_TRANSCRIBE", "unit_type": "tokens",
               "input_units": 120, "output_units": 8, "ai_model": "gpt-4o-transcribe"})
    );
    let schema = &written(&verdict)["analysis"][0]["vendor_schema"]["opts"];
    assert!(schema.get("send_ai_usage_data_to_url").is_none() && schema.get("ai_usage_api_token").is_none());
    // The same audio again comes from the cache: nothing billed, nothing reported.
    let http = scripted(vec![]);
    run(&ctx(opts), vcon_with(dialog), &http, &media).unwrap();
    assert!(http.requests().is_empty());
}

#[test]
fn media_failures_name_the_dialog_and_say_whether_to_retry() {
    let dialog = json!([{"type": "recording", "url": "https://m/a.mp3", "duration": 30}]);
    for (error, retryable, needle) in [
        (MediaError::Denied("m not allowed".into()), false, "allowed_outbound_hosts"),
        (MediaError::Integrity("content_hash mismatch".into()), false, "content_hash mismatch"),
        (MediaError::FetchFailed("503".into()), true, "media fetch failed"),
    ] {
        let mut media = FakeMedia::default();
        media.probes.insert(0, Err(error.clone()));
        let err = run(&ctx(options(json!({}))), vcon_with(dialog.clone()), &scripted(vec![]), &media).unwrap_err();
        assert_eq!(err.retryable, retryable, "{error}");
        assert!(err.message.starts_with("dialog 0: ") && err.message.contains(needle), "{}", err.message);
        assert!(err.message.ends_with("(openai)"), "{}", err.message);
    }
}

#[test]
fn options_of_the_wrong_type_are_fatal_and_named() {
    let (dialog, media) = one_call();
    for (extra, name) in [
        (json!({"model": 5}), "model"),
        (json!({"max_chunk_duration": "long"}), "max_chunk_duration"),
        (json!({"max_chunk_duration": 0}), "max_chunk_duration"),
        (json!({"use_silence_chunking": "yes"}), "use_silence_chunking"),
        (json!({"silence_thresh": "quiet"}), "silence_thresh"),
        (json!({"silence_len": 2.5}), "silence_len"),
        (json!({"minimum_duration": -1}), "minimum_duration"),
        (json!({"language": ["en"]}), "language"),
        (json!({"send_ai_usage_data_to_url": 1}), "send_ai_usage_data_to_url"),
        (json!({"base_url": "not a url"}), "base_url"),
    ] {
        let http = scripted(vec![ok(answer("x", 1, 1))]);
        let err = run(&ctx(options(extra.clone())), vcon_with(dialog.clone()), &http, &media).unwrap_err();
        assert!(!err.retryable);
        assert!(
            err.message.starts_with(&format!("option `{name}` of link `transcribe` must be")),
            "{extra}: {}",
            err.message
        );
        assert!(err.message.ends_with("(under `vendor_options`)"), "{}", err.message);
        assert!(http.requests().is_empty());
    }
}

#[test]
fn an_empty_answer_stops_the_loop_but_keeps_earlier_dialogs() {
    let dialog = json!([
        {"type": "recording", "url": "https://m/a.mp3", "duration": 10},
        {"type": "recording", "url": "https://m/b.mp3", "duration": 10},
        {"type": "recording", "url": "https://m/c.mp3", "duration": 10}
    ]);
    let mut media = FakeMedia::default();
    for (i, bytes) in [(0, b"a"), (1, b"b"), (2, b"c")] {
        with_audio(&mut media, i, bytes, Some("audio/mpeg"), None);
        with_probe(&mut media, i, "mp3", 10.0);
    }
    let http = scripted(vec![ok(answer("first", 1, 1)), ok(json!({}))]);
    let verdict = run(&ctx(options(json!({}))), vcon_with(dialog), &http, &media).unwrap();
    assert_eq!(http.requests().len(), 2);
    let analysis = written(&verdict)["analysis"].clone();
    assert_eq!(analysis.as_array().unwrap().len(), 1);
    assert_eq!(analysis[0]["dialog"], 0);
}
