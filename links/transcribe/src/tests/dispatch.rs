//! The dispatcher: vendor selection and `vendor_options`.

use super::*;

fn recording() -> Vcon {
    vcon_with(json!([{"type": "recording", "url": "https://m/a.mp3", "duration": 40}]))
}

#[test]
fn no_vendor_or_whisper_builtin_is_fatal_and_lists_the_vendors() {
    for options in [
        json!({}),
        json!({"vendor": null}),
        json!({"vendor": ""}),
        json!({"vendor": "whisper_builtin"}),
        json!({"vendor_options": {"model_size": "base"}}),
    ] {
        let http = scripted(vec![]);
        let err = run(&ctx(options.clone()), recording(), &http, &FakeMedia::default()).unwrap_err();
        assert!(!err.retryable);
        assert_eq!(
            err.message,
            "link `transcribe` needs option `vendor`: one of openai, groq, hugging_face, deepgram (`whisper_builtin`, \
             Python's default local Whisper, is not available)",
            "{options}"
        );
        assert!(http.requests().is_empty());
    }
}

#[test]
fn an_unknown_vendor_is_fatal_and_named() {
    let err =
        run(&ctx(json!({"vendor": "assemblyai"})), recording(), &scripted(vec![]), &FakeMedia::default()).unwrap_err();
    assert!(!err.retryable);
    assert_eq!(
        err.message,
        "link `transcribe`: unknown vendor `assemblyai`; supported: openai, groq, hugging_face, deepgram"
    );
}

#[test]
fn option_types_are_checked() {
    for (options, start) in [
        (json!({"vendor": 5}), "option `vendor` of link `transcribe` must be one of openai, groq"),
        (
            json!({"vendor": "groq", "vendor_options": "fast"}),
            "option `vendor_options` of link `transcribe` must be a mapping",
        ),
        (
            json!({"vendor": "groq", "transcribe_options": [1]}),
            "option `transcribe_options` of link `transcribe` must be a mapping",
        ),
        (
            json!({"vendor": "groq", "vendor_options": {"retry_attempts": 0}}),
            "option `retry_attempts` of link `transcribe` must be",
        ),
        (
            json!({"vendor": "groq", "vendor_options": {"api_url": "ftp://x"}}),
            "option `api_url` of link `transcribe` must be an absolute http(s) URL",
        ),
    ] {
        let err = run(&ctx(options.clone()), recording(), &scripted(vec![]), &FakeMedia::default()).unwrap_err();
        assert!(!err.retryable);
        assert!(err.message.starts_with(start), "{options}: {}", err.message);
    }
}

/// A Groq run whose request shows which options were used.
fn groq_request(options: Value) -> Request {
    let mut media = FakeMedia::default();
    with_audio(&mut media, 0, b"audio", Some("audio/mpeg"), Some("a.mp3"));
    let http = scripted(vec![ok(json!({"text": "t"}))]);
    run(&ctx(options), recording(), &http, &media).unwrap();
    http.requests()[0].clone()
}

#[test]
fn the_legacy_transcribe_options_are_read_when_vendor_options_is_absent() {
    let request = groq_request(json!({"vendor": "groq", "transcribe_options": {"API_KEY": "legacy", "model": "m1"}}));
    assert_eq!(request.header_value("authorization"), Some("Bearer legacy"));
    assert_eq!(parts(&request)[0], text_part("model", "m1"));
    // vendor_options wins over it.
    let request = groq_request(json!({"vendor": "groq", "vendor_options": {"API_KEY": "new", "model": "m2"},
                                      "transcribe_options": {"API_KEY": "legacy", "model": "m1"}}));
    assert_eq!(request.header_value("authorization"), Some("Bearer new"));
    assert_eq!(parts(&request)[0], text_part("model", "m2"));
}

#[test]
fn the_host_rewrite_of_a_legacy_module_is_understood() {
    // `module: links.groq_whisper` with options {API_KEY: k} becomes this.
    let request = groq_request(json!({"vendor": "groq", "vendor_options": {"API_KEY": "k"}}));
    assert_eq!(request.url, "https://api.groq.com/openai/v1/audio/transcriptions");
    // Top-level options are not the vendor's.
    grant_secrets(&[]);
    let mut media = FakeMedia::default();
    with_audio(&mut media, 0, b"audio", None, None);
    let err =
        run(&ctx(json!({"vendor": "groq", "API_KEY": "top"})), recording(), &scripted(vec![]), &media).unwrap_err();
    assert!(err.message.starts_with("no Groq API key"), "{}", err.message);
}
