//! The link end to end against a recorded vfun server and fake media.

use super::*;
use conserver_link_sdk::http::Recorder;
use conserver_link_sdk::http::multipart::{Part, parse};
use conserver_link_sdk::media::{FakeMedia, Media};
use conserver_link_sdk::python_json::dumps;
use conserver_llm::testing::{context, grant_secrets};

const VFUN: &str = "https://vfun.example/wtf";
const WAV: &[u8] = b"RIFF\x24\x00\x00\x00WAVEfmt audio";

fn ctx(options: Value) -> Context {
    context("wtf_transcribe", options)
}

fn scripted(
    answers: Vec<Result<Response, HttpError>>,
) -> Recorder<impl Fn(&Request, usize) -> Result<Response, HttpError>> {
    Recorder::new(move |_: &Request, n: usize| {
        answers.get(n).cloned().unwrap_or_else(|| Err(HttpError::Connection("no more scripted answers".into())))
    })
}

fn ok(body: Value) -> Result<Response, HttpError> {
    Ok(Response::new(200, body.to_string()))
}

fn vcon_with(dialog: Value) -> Vcon {
    Vcon::from_json(&json!({"uuid": "uuid-1", "dialog": dialog}).to_string()).unwrap()
}

fn media_for(entries: &[(u32, &[u8])]) -> FakeMedia {
    let mut media = FakeMedia::default();
    for (index, bytes) in entries {
        media.media.insert(*index, Ok(Media { bytes: bytes.to_vec(), mediatype: None, filename: None }));
    }
    media
}

fn wtf(text: &str) -> Value {
    json!({"transcript": {"text": text, "language": "en-US", "duration": 12.5, "confidence": 0.91},
           "segments": [{"id": 0, "start": 0.0, "end": 2.0, "text": text, "confidence": 0.91, "speaker": 0}],
           "metadata": {"provider": "vfun", "model": "parakeet-tdt-110m"},
           "quality": {"average_confidence": 0.91, "multiple_speakers": false, "low_confidence_words": 0}})
}

fn text_part(name: &str, value: &str) -> Part {
    Part { name: name.into(), filename: None, content_type: None, data: value.as_bytes().to_vec() }
}

fn file_part(filename: &str, content_type: &str, data: &[u8]) -> Part {
    Part {
        name: "file-binary".into(),
        filename: Some(filename.into()),
        content_type: Some(content_type.into()),
        data: data.to_vec(),
    }
}

fn parts(request: &Request) -> Vec<Part> {
    parse(request.header_value("content-type").unwrap(), &request.body).unwrap()
}

#[test]
fn the_request_and_analysis_are_pythons() {
    let dialog = json!([{"type": "recording", "url": "https://media.example/a.wav", "duration": 12.5}]);
    let http = scripted(vec![ok(wtf("hello world"))]);
    let options = json!({"vfun-server-url": VFUN, "api-key": "vfun-secret"});
    let verdict = run(&ctx(options), vcon_with(dialog.clone()), &http, &media_for(&[(0, WAV)])).unwrap();

    let requests = http.requests();
    assert_eq!(requests.len(), 1);
    let request = &requests[0];
    assert_eq!((request.method.as_str(), request.url.as_str()), ("POST", VFUN));
    assert_eq!(request.timeout, Some(Duration::from_secs(300)));
    assert_eq!(request.headers.len(), 2);
    assert!(request.header_value("content-type").unwrap().starts_with("multipart/form-data; boundary="));
    assert_eq!(request.header_value("authorization"), Some("Bearer vfun-secret"));
    assert_eq!(parts(request), [text_part("diarize", "false"), file_part("audio_0.wav", "audio/wav", WAV)]);

    assert_eq!(
        Value::Object(verdict.vcon().unwrap().to_map()),
        json!({
            "uuid": "uuid-1",
            "dialog": dialog,
            "analysis": [{
                "type": "wtf_transcription",
                "dialog": 0,
                "vendor": "vfun",
                "body": dumps(&wtf("hello world")),
                "encoding": "json",
                "mediatype": "application/json",
                "schema": "wtf-1.0"
            }]
        })
    );
}

#[test]
fn language_diarize_names_and_the_secret_key_and_double_encoded_json() {
    grant_secrets(&[("VFUN_API_KEY", "from-secret")]);
    let dialog = json!([{"type": "recording", "body": "UklGRg", "encoding": "base64url", "filename": "clip.mp3",
                         "mediatype": "audio/mpeg"}]);
    let encoded = Value::String(json!({"transcript": {"text": "hola"}, "segments": []}).to_string());
    let http = scripted(vec![ok(encoded)]);
    let options = json!({"vfun-server-url": VFUN, "language": "es", "diarize": true, "vfun-timeout": 90});
    let verdict =
        run(&Context::for_test("wtf_transcribe", options), vcon_with(dialog), &http, &media_for(&[(0, b"mp3")]))
            .unwrap();
    let request = &http.requests()[0];
    assert_eq!(request.header_value("authorization"), Some("Bearer from-secret"));
    assert_eq!(request.timeout, Some(Duration::from_secs(90)));
    assert_eq!(
        parts(request),
        [text_part("diarize", "true"), text_part("language", "es"), file_part("clip.mp3", "audio/mpeg", b"mp3")]
    );
    let analysis = &verdict.vcon().unwrap().analysis()[0];
    assert_eq!(
        analysis.body,
        Some(json!("{\"transcript\": {\"text\": \"hola\", \"language\": \"es\"}, \"segments\": []}"))
    );
    // Without a transcript object one is created for the language.
    let http = scripted(vec![ok(json!({"segments": []}))]);
    let verdict = run(
        &ctx(json!({"vfun-server-url": VFUN, "language": "fr"})),
        vcon_with(json!([{"type": "recording", "url": "https://m/b.wav"}])),
        &http,
        &media_for(&[(0, b"b")]),
    )
    .unwrap();
    assert_eq!(
        verdict.vcon().unwrap().analysis()[0].body,
        Some(json!("{\"segments\": [], \"transcript\": {\"language\": \"fr\"}}"))
    );
    assert_eq!(http.requests()[0].header_value("authorization"), None, "no key, no header");
}

#[test]
fn only_recordings_not_yet_transcribed_are_sent() {
    let dialog = json!([
        {"type": "text", "body": "hi"},
        {"type": "recording", "url": "https://m/done.wav"},
        {"type": "recording", "url": "https://m/new.wav", "duration": 1}
    ]);
    let mut vcon = vcon_with(dialog);
    vcon.set("analysis", json!([{"type": "wtf_transcription", "dialog": 1, "vendor": "vfun", "body": "{}"}]));
    let http = scripted(vec![ok(wtf("new"))]);
    let verdict =
        run(&ctx(json!({"vfun-server-url": VFUN})), vcon, &http, &media_for(&[(1, b"x"), (2, b"y")])).unwrap();
    assert_eq!(http.requests().len(), 1);
    assert_eq!(parts(&http.requests()[0])[1], file_part("audio_2.wav", "audio/wav", b"y"));
    let analysis = verdict.vcon().unwrap().analysis();
    assert_eq!(analysis.len(), 2);
    assert_eq!(analysis[1].dialog, Some(json!(2)));

    let http = scripted(vec![]);
    let verdict =
        run(&ctx(json!({"vfun-server-url": VFUN})), vcon_with(json!([{"type": "text"}])), &http, &FakeMedia::default())
            .unwrap();
    assert!(verdict.vcon().is_none() && !verdict.is_halt());
}

#[test]
fn per_dialog_failures_are_logged_and_the_next_dialog_processed() {
    let dialog = json!([
        {"type": "recording", "url": "file:///var/audio/a.wav"},
        {"type": "recording"},
        {"type": "recording", "url": "https://m/500.wav"},
        {"type": "recording", "url": "https://m/not-json.wav"},
        {"type": "recording", "url": "https://m/list.wav"},
        {"type": "recording", "url": "https://m/unauthorized.wav"},
        {"type": "recording", "url": "https://m/ok.wav"}
    ]);
    let mut media = media_for(&[(2, b"2"), (3, b"3"), (4, b"4"), (5, b"5"), (6, b"6")]);
    media.media.insert(0, Err(MediaError::InvalidRequest("only http and https URLs are fetched".into())));
    media.media.insert(1, Err(MediaError::NoMedia("dialog 1 has neither body nor url".into())));
    let http = scripted(vec![
        Ok(Response::new(500, "boom")),
        Ok(Response::new(500, "boom")),
        Ok(Response::new(200, "<html>")),
        ok(json!([1, 2])),
        Ok(Response::new(401, "bad key")),
        ok(wtf("finally")),
    ]);
    let options = json!({"vfun-server-url": VFUN, "retry_attempts": 2, "retry_backoff_secs": 0});
    let verdict = run(&ctx(options), vcon_with(dialog), &http, &media).unwrap();
    assert_eq!(http.requests().len(), 6);
    let analysis = verdict.vcon().unwrap().analysis();
    assert_eq!(analysis.len(), 1);
    assert_eq!(analysis[0].dialog, Some(json!(6)));
}

#[test]
fn transient_failures_are_retried() {
    let http = scripted(vec![Ok(Response::new(503, "busy")), ok(wtf("after"))]);
    let options = json!({"vfun-server-url": VFUN, "retry_backoff_secs": 0});
    let verdict = run(
        &ctx(options),
        vcon_with(json!([{"type": "recording", "url": "https://m/a.wav"}])),
        &http,
        &media_for(&[(0, b"a")]),
    )
    .unwrap();
    assert_eq!(http.requests().len(), 2);
    assert_eq!(verdict.vcon().unwrap().analysis().len(), 1);
}

#[test]
fn refusals_and_integrity_failures_are_fatal() {
    let dialog = json!([{"type": "recording", "url": "https://m/a.wav"}]);
    for error in [MediaError::Denied("m is not allowed".into()), MediaError::Integrity("content_hash mismatch".into())]
    {
        let mut media = FakeMedia::default();
        media.media.insert(0, Err(error.clone()));
        let http = scripted(vec![]);
        let err = run(&ctx(json!({"vfun-server-url": VFUN})), vcon_with(dialog.clone()), &http, &media).unwrap_err();
        assert!(!err.retryable);
        assert_eq!(err.message, format!("dialog 0: {error}"));
        assert!(http.requests().is_empty());
    }
    let http = scripted(vec![Err(HttpError::Denied(VFUN.into()))]);
    let err =
        run(&ctx(json!({"vfun-server-url": VFUN})), vcon_with(dialog), &http, &media_for(&[(0, b"a")])).unwrap_err();
    assert!(!err.retryable);
    assert!(
        err.message.starts_with("dialog 0: vfun transcription of dialog 0 (POST https://vfun.example/wtf) failed"),
        "{}",
        err.message
    );
    assert!(err.message.contains("allowed_outbound_hosts"), "{}", err.message);
}

#[test]
fn the_server_url_is_required_and_option_types_are_checked() {
    let dialog = json!([{"type": "recording", "url": "https://m/a.wav"}]);
    for options in [json!({}), json!({"vfun-server-url": ""}), json!({"vfun-server-url": null})] {
        let err = run(&ctx(options), vcon_with(dialog.clone()), &scripted(vec![]), &FakeMedia::default()).unwrap_err();
        assert!(!err.retryable);
        assert_eq!(
            err.message,
            "option `vfun-server-url` of link `wtf_transcribe` is required: the vfun server's transcription URL"
        );
    }
    for (options, name) in [
        (json!({"vfun-server-url": 5}), "vfun-server-url"),
        (json!({"vfun-server-url": "vfun:8443/wtf"}), "vfun-server-url"),
        (json!({"vfun-server-url": VFUN, "diarize": "yes"}), "diarize"),
        (json!({"vfun-server-url": VFUN, "vfun-timeout": "300"}), "vfun-timeout"),
        (json!({"vfun-server-url": VFUN, "vfun-timeout": 0}), "vfun-timeout"),
        (json!({"vfun-server-url": VFUN, "url-timeout": -1}), "url-timeout"),
        (json!({"vfun-server-url": VFUN, "language": 5}), "language"),
        (json!({"vfun-server-url": VFUN, "api-key": ["k"]}), "api-key"),
        (json!({"vfun-server-url": VFUN, "retry_attempts": "many"}), "retry_attempts"),
    ] {
        let err = run(&ctx(options.clone()), vcon_with(dialog.clone()), &scripted(vec![]), &FakeMedia::default())
            .unwrap_err();
        assert!(!err.retryable);
        assert!(
            err.message.starts_with(&format!("option `{name}` of link `wtf_transcribe` must be")),
            "{options}: {}",
            err.message
        );
    }
}

#[test]
fn answers_are_decoded_once_or_twice_into_objects() {
    assert_eq!(decode(b"{\"a\": 1}").unwrap(), json!({"a": 1}).as_object().unwrap().clone());
    assert_eq!(decode(b"\"{\\\"a\\\": 1}\"").unwrap(), json!({"a": 1}).as_object().unwrap().clone());
    assert!(decode(b"\"plain text\"").unwrap_err().contains("string that is not JSON"));
    assert!(decode(b"[1]").unwrap_err().contains("not a JSON object"));
    assert!(decode(b"<html>").unwrap_err().contains("not JSON"));
}
