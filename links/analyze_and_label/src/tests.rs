use super::*;
use conserver_link_sdk::http::HttpError;
use conserver_llm::testing::{self, FakeServer, analysis_of, chat_answer, status, with_key};
use serde_json::json;

const TRANSCRIPT: &str = "The customer was upset about a billing error and was offered a refund.";
const LABELS: &str = r#"{"labels": ["customer_service", "billing_issue", "refund"]}"#;

fn ctx(options: Value) -> Context {
    testing::context("label", options)
}

fn vcon(transcripts: &[&str]) -> Vcon {
    let dialog: Vec<Value> = transcripts.iter().map(|_| json!({"type": "text"})).collect();
    let analysis: Vec<Value> = transcripts
        .iter()
        .enumerate()
        .map(|(i, t)| json!({"type": "transcript", "dialog": i, "vendor": "test", "body": {"paragraphs": {"transcript": t}}}))
        .collect();
    Vcon::from_json(&json!({"uuid": "uuid-1", "dialog": dialog, "analysis": analysis}).to_string()).unwrap()
}

fn changed(verdict: &Verdict) -> &Vcon {
    verdict.vcon().expect("the vCon was changed")
}

#[test]
fn defaults_send_pythons_request() {
    let server = FakeServer::answering([chat_answer(LABELS)]);
    run(&ctx(with_key(json!({}))), vcon(&[TRANSCRIPT]), &server.transport()).unwrap();
    assert_eq!(server.requests()[0].url, "https://api.openai.com/v1/chat/completions");
    assert_eq!(
        server.bodies()[0],
        json!({
            "model": "gpt-4-turbo",
            "messages": [
                {"role": "system", "content": "You are a helpful assistant that analyzes text and provides relevant labels."},
                {"role": "user", "content": format!("Analyze this transcript and provide a list of relevant labels for categorization. Return your response as a JSON object with a single key 'labels' containing an array of strings.\n\n{TRANSCRIPT}")}
            ],
            "temperature": 0.2,
            "response_format": {"type": "json_object"}
        })
    );
}

#[test]
fn labels_become_tags_and_the_answer_is_stored_as_json() {
    let server = FakeServer::answering([chat_answer(LABELS)]);
    let verdict = run(&ctx(with_key(json!({}))), vcon(&[TRANSCRIPT]), &server.transport()).unwrap();
    assert_eq!(
        analysis_of(&verdict, "labeled_analysis"),
        [json!({
            "type": "labeled_analysis",
            "dialog": 0,
            "vendor": "openai",
            "body": LABELS,
            "encoding": "json",
            "vendor_schema": {"model": "gpt-4-turbo", "prompt": options::PROMPT}
        })]
    );
    assert_eq!(
        changed(&verdict).get("attachments").unwrap(),
        json!([{
            "purpose": "tags",
            "body": "[\"customer_service:customer_service\", \"billing_issue:billing_issue\", \"refund:refund\"]",
            "encoding": "json"
        }])
    );
}

#[test]
fn labels_are_added_to_an_existing_tags_attachment() {
    let mut v = vcon(&[TRANSCRIPT]);
    v.add_tag("vip", "vip").unwrap();
    let server = FakeServer::answering([chat_answer(r#"{"labels": ["account_access"]}"#)]);
    let verdict = run(&ctx(with_key(json!({}))), v, &server.transport()).unwrap();
    let tags = changed(&verdict).tags();
    assert_eq!(tags, [("vip".into(), "vip".into()), ("account_access".into(), "account_access".into())]);
}

#[test]
fn an_unparsable_answer_is_stored_as_text_without_tags() {
    let server = FakeServer::answering([chat_answer("This is not valid JSON")]);
    let verdict = run(&ctx(with_key(json!({}))), vcon(&[TRANSCRIPT]), &server.transport()).unwrap();
    let written = analysis_of(&verdict, "labeled_analysis");
    assert_eq!(written[0]["body"], "This is not valid JSON");
    assert_eq!(written[0]["encoding"], "none");
    assert_eq!(written[0]["vendor_schema"]["model"], "gpt-4-turbo");
    assert_eq!(written[0]["vendor_schema"]["prompt"], options::PROMPT);
    assert!(written[0]["vendor_schema"]["parse_error"].as_str().unwrap().starts_with("expected value"));
    assert!(changed(&verdict).tags().is_empty());
    assert_eq!(changed(&verdict).get("attachments"), None);
}

#[test]
fn a_json_answer_that_is_not_an_object_is_stored_as_text() {
    let server = FakeServer::answering([chat_answer(r#"["a", "b"]"#)]);
    let verdict = run(&ctx(with_key(json!({}))), vcon(&[TRANSCRIPT]), &server.transport()).unwrap();
    let written = analysis_of(&verdict, "labeled_analysis");
    assert_eq!(written[0]["encoding"], "none");
    assert_eq!(written[0]["vendor_schema"]["parse_error"], "the answer is not a JSON object");
    assert!(changed(&verdict).tags().is_empty());
}

#[test]
fn an_answer_without_labels_adds_the_analysis_only() {
    let server = FakeServer::answering([chat_answer(r#"{"summary": "x"}"#)]);
    let verdict = run(&ctx(with_key(json!({}))), vcon(&[TRANSCRIPT]), &server.transport()).unwrap();
    assert_eq!(analysis_of(&verdict, "labeled_analysis")[0]["encoding"], "json");
    assert!(changed(&verdict).tags().is_empty());
}

#[test]
fn custom_options_are_sent_and_recorded() {
    let server = FakeServer::answering([chat_answer(r#"{"labels": ["x"]}"#)]);
    let options = with_key(json!({
        "prompt": "Label it.", "model": "gpt-4o-mini", "temperature": 0, "analysis_type": "labels",
        "response_format": {"type": "json_schema", "json_schema": {"name": "labels"}},
        "source": {"text_location": "body.text"}
    }));
    let v = Vcon::from_json(
        &json!({"dialog": [{}], "analysis": [{"type": "transcript", "dialog": 0, "encoding": "json", "body": "{\"text\": \"hi\"}"}]}).to_string(),
    )
    .unwrap();
    let verdict = run(&ctx(options), v, &server.transport()).unwrap();
    let body = &server.bodies()[0];
    assert_eq!(body["model"], "gpt-4o-mini");
    assert_eq!(body["temperature"].to_string(), "0");
    assert_eq!(body["messages"][1]["content"], "Label it.\n\nhi");
    assert_eq!(body["response_format"], json!({"type": "json_schema", "json_schema": {"name": "labels"}}));
    assert_eq!(
        analysis_of(&verdict, "labels")[0]["vendor_schema"],
        json!({"model": "gpt-4o-mini", "prompt": "Label it."})
    );
}

#[test]
fn a_null_response_format_is_not_sent() {
    let server = FakeServer::answering([chat_answer(LABELS)]);
    run(&ctx(with_key(json!({"response_format": null}))), vcon(&[TRANSCRIPT]), &server.transport()).unwrap();
    assert_eq!(server.bodies()[0].get("response_format"), None);
}

#[test]
fn the_vendor_is_openai_even_on_azure() {
    let server = FakeServer::answering([chat_answer(LABELS)]);
    let options = json!({"AZURE_OPENAI_ENDPOINT": "https://r.openai.azure.com", "AZURE_OPENAI_API_KEY": "az"});
    let verdict = run(&ctx(options), vcon(&[TRANSCRIPT]), &server.transport()).unwrap();
    assert!(
        server.requests()[0]
            .url
            .starts_with("https://r.openai.azure.com/openai/deployments/gpt-4-turbo/chat/completions?api-version=")
    );
    assert_eq!(analysis_of(&verdict, "labeled_analysis")[0]["vendor"], "openai");
}

#[test]
fn dialogs_already_labelled_or_without_text_are_skipped() {
    let v = Vcon::from_json(
        &json!({"dialog": [{}, {}, {}], "analysis": [
            {"type": "transcript", "dialog": 0, "body": {"paragraphs": {"transcript": "zero"}}},
            {"type": "labeled_analysis", "dialog": 0, "vendor": "openai", "body": LABELS, "encoding": "json"},
            {"type": "transcript", "dialog": 2, "body": {"paragraphs": {"transcript": "two"}}}
        ]})
        .to_string(),
    )
    .unwrap();
    let server = FakeServer::answering([chat_answer(r#"{"labels": ["new"]}"#)]);
    let verdict = run(&ctx(with_key(json!({}))), v, &server.transport()).unwrap();
    assert_eq!(server.requests().len(), 1);
    assert_eq!(server.bodies()[0]["messages"][1]["content"].as_str().unwrap().rsplit("\n\n").next(), Some("two"));
    assert_eq!(changed(&verdict).tags(), [("new".into(), "new".into())]);

    let server = FakeServer::default();
    let done = Vcon::from_json(
        &json!({"dialog": [{}], "analysis": [
            {"type": "transcript", "dialog": 0, "body": {"paragraphs": {"transcript": "zero"}}},
            {"type": "labeled_analysis", "dialog": 0, "body": LABELS, "encoding": "json"}
        ]})
        .to_string(),
    )
    .unwrap();
    let verdict = run(&ctx(with_key(json!({}))), done, &server.transport()).unwrap();
    assert!(verdict.vcon().is_none());
    assert!(server.requests().is_empty());
}

#[test]
fn only_if_and_sampling_skip_without_requests() {
    for options in [
        json!({"only_if": {"section": "analysis", "type": "summary", "includes": "refund"}}),
        json!({"sampling_rate": -1}),
    ] {
        let server = FakeServer::default();
        let verdict = run(&ctx(with_key(options)), vcon(&[TRANSCRIPT]), &server.transport()).unwrap();
        assert!(verdict.vcon().is_none() && !verdict.is_halt());
        assert!(server.requests().is_empty());
    }
    let matching = Vcon::from_json(
        &json!({"dialog": [{}], "analysis": [
            {"type": "transcript", "dialog": 0, "body": {"paragraphs": {"transcript": "t"}}},
            {"type": "summary", "dialog": 0, "body": "asked for a refund"}
        ]})
        .to_string(),
    )
    .unwrap();
    let server = FakeServer::answering([chat_answer(LABELS)]);
    let options = with_key(
        json!({"sampling_rate": 0, "only_if": {"section": "analysis", "type": "summary", "includes": "refund"}}),
    );
    let verdict = run(&ctx(options), matching, &server.transport()).unwrap();
    assert_eq!(changed(&verdict).tags().len(), 3);
}

#[test]
fn errors_are_fatal_for_4xx_and_retryable_for_429_and_5xx() {
    let server = FakeServer::answering([status(404, "no such model")]);
    let err = run(&ctx(with_key(json!({}))), vcon(&[TRANSCRIPT]), &server.transport()).unwrap_err();
    assert!(!err.retryable);
    assert!(err.message.starts_with("dialog 0: chat completion request to "), "{}", err.message);
    assert_eq!(server.requests().len(), 1);

    let server = FakeServer::new([Ok(status(429, "slow")), Ok(status(502, "bad gateway"))]);
    let err = run(&ctx(with_key(json!({"retry_attempts": 2}))), vcon(&[TRANSCRIPT]), &server.transport()).unwrap_err();
    assert!(err.retryable);
    assert_eq!(server.requests().len(), 2);

    let server = FakeServer::new([Err(HttpError::Timeout("t".into())), Ok(chat_answer(LABELS))]);
    let verdict = run(&ctx(with_key(json!({}))), vcon(&[TRANSCRIPT]), &server.transport()).unwrap();
    assert_eq!(changed(&verdict).tags().len(), 3);
}

#[test]
fn missing_credentials_are_fatal() {
    let err = run(&ctx(json!({})), vcon(&[TRANSCRIPT]), &FakeServer::default().transport()).unwrap_err();
    assert!(!err.retryable);
    assert!(err.message.starts_with("no LLM credentials"), "{}", err.message);
}

#[test]
fn bad_options_are_fatal_errors_naming_the_option() {
    for (options, option) in [
        (json!({"prompt": 1}), "prompt"),
        (json!({"model": 4}), "model"),
        (json!({"temperature": "warm"}), "temperature"),
        (json!({"analysis_type": []}), "analysis_type"),
        (json!({"response_format": "json"}), "response_format"),
        (json!({"source": 1}), "source"),
        (json!({"sampling_rate": true}), "sampling_rate"),
    ] {
        let err =
            run(&ctx(with_key(options.clone())), vcon(&[TRANSCRIPT]), &FakeServer::default().transport()).unwrap_err();
        assert!(!err.retryable);
        assert!(err.message.starts_with(&format!("option `{option}` of link `label`")), "{options}: {}", err.message);
    }
}

#[test]
fn process_sends_through_the_host() {
    let err = AnalyzeAndLabel::process(&ctx(with_key(json!({}))), vcon(&[TRANSCRIPT])).unwrap_err();
    assert!(err.message.contains("only available inside the conserver host"), "{}", err.message);
}
