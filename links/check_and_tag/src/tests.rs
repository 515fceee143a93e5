use super::*;
use conserver_link_sdk::http::HttpError;
use conserver_llm::testing::{self, FakeServer, analysis_of, chat_answer, status};
use serde_json::{Value, json};

const QUESTION: &str = "Is the customer asking about billing?";

fn ctx(options: Value) -> Context {
    testing::context("billing_check", options)
}

/// The required options, an OpenAI key and instant retries, plus `extra`.
fn options(extra: Value) -> Value {
    let mut options = json!({
        "tag_name": "topic", "tag_value": "billing", "evaluation_question": QUESTION,
        "OPENAI_API_KEY": "sk-test", "retry_backoff_secs": 0
    });
    if let (Some(map), Value::Object(extra)) = (options.as_object_mut(), extra) {
        map.extend(extra);
    }
    options
}

/// One dialog per transcript body (stored as given).
fn vcon(bodies: &[Value]) -> Vcon {
    let dialog: Vec<Value> = bodies.iter().map(|_| json!({"type": "recording"})).collect();
    let analysis: Vec<Value> = bodies
        .iter()
        .enumerate()
        .map(|(i, body)| json!({"type": "transcript", "dialog": i, "vendor": "openai", "body": body}))
        .collect();
    Vcon::from_json(&json!({"uuid": "uuid-1", "dialog": dialog, "analysis": analysis}).to_string()).unwrap()
}

fn changed(verdict: &Verdict) -> &Vcon {
    verdict.vcon().expect("the vCon was changed")
}

#[test]
fn defaults_send_pythons_request_without_temperature() {
    let server = FakeServer::answering([chat_answer(r#"{"applies": true}"#)]);
    run(&ctx(options(json!({}))), vcon(&[json!("I was billed twice.")]), &server.transport()).unwrap();
    assert_eq!(server.requests()[0].url, "https://api.openai.com/v1/chat/completions");
    assert_eq!(
        server.bodies()[0],
        json!({
            "model": "gpt-5",
            "messages": [
                {"role": "system", "content": "You are a helpful assistant that evaluates text against specific questions and provides yes/no answers."},
                {"role": "user", "content": format!("Question: {QUESTION}\n\nText to evaluate:\nI was billed twice.\n\nPlease answer with a JSON object containing a single key 'applies' with a boolean value (true if the tag applies, false if it doesn't).")}
            ],
            "response_format": {"type": "json_object"}
        })
    );
}

#[test]
fn verbosity_minimal_reasoning_and_temperature_are_never_sent() {
    let server = FakeServer::answering([chat_answer(r#"{"applies": false}"#)]);
    let extra = json!({"verbosity": "high", "minimal_reasoning": false, "temperature": 0.9});
    run(&ctx(options(extra)), vcon(&[json!("t")]), &server.transport()).unwrap();
    let body = server.bodies()[0].as_object().unwrap().clone();
    assert_eq!(body.keys().collect::<Vec<_>>(), ["model", "messages", "response_format"]);
}

#[test]
fn a_yes_adds_the_tag_and_the_evaluation() {
    let server = FakeServer::answering([chat_answer(r#"{"applies": true}"#)]);
    let verdict = run(&ctx(options(json!({}))), vcon(&[json!("I was billed twice.")]), &server.transport()).unwrap();
    assert_eq!(
        analysis_of(&verdict, "tag_evaluation"),
        [json!({
            "type": "tag_evaluation",
            "dialog": 0,
            "vendor": "openai",
            "body": "{\"link_name\": \"billing_check\", \"tag\": \"topic:billing\", \"applies\": true}",
            "encoding": "json",
            "vendor_schema": {"model": "gpt-5", "evaluation_question": QUESTION}
        })]
    );
    assert_eq!(changed(&verdict).get_tag("topic").as_deref(), Some("billing"));
}

#[test]
fn a_no_adds_the_evaluation_without_a_tag() {
    let server = FakeServer::answering([chat_answer(r#"{"applies": false}"#)]);
    let verdict = run(&ctx(options(json!({}))), vcon(&[json!("Nice weather.")]), &server.transport()).unwrap();
    let written = analysis_of(&verdict, "tag_evaluation");
    assert_eq!(
        written[0]["body"],
        "{\"link_name\": \"billing_check\", \"tag\": \"topic:billing\", \"applies\": false}"
    );
    assert!(changed(&verdict).tags().is_empty());
    assert_eq!(changed(&verdict).get("attachments"), None);
}

#[test]
fn a_string_false_does_not_apply_the_tag() {
    let server = FakeServer::answering([chat_answer(r#"{"applies": "false"}"#)]);
    let verdict = run(&ctx(options(json!({}))), vcon(&[json!("t")]), &server.transport()).unwrap();
    assert!(analysis_of(&verdict, "tag_evaluation")[0]["body"].as_str().unwrap().ends_with("\"applies\": \"false\"}"));
    assert!(changed(&verdict).tags().is_empty());
}

#[test]
fn the_default_source_sends_a_structured_body_whole_as_json() {
    let server = FakeServer::answering([chat_answer(r#"{"applies": true}"#)]);
    let encoded = json!("{\"transcript\": \"billed twice\", \"confidence\": 0.9}");
    let v = Vcon::from_json(
        &json!({"dialog": [{}], "analysis": [{"type": "transcript", "dialog": 0, "encoding": "json", "body": encoded}]}).to_string(),
    )
    .unwrap();
    run(&ctx(options(json!({}))), v, &server.transport()).unwrap();
    let user = server.bodies()[0]["messages"][1]["content"].as_str().unwrap().to_string();
    assert!(user.contains("Text to evaluate:\n{\"transcript\": \"billed twice\", \"confidence\": 0.9}\n\n"), "{user}");
}

#[test]
fn a_dotted_path_reaches_into_a_json_string_body() {
    let server = FakeServer::answering([chat_answer(r#"{"applies": true}"#)]);
    let v = Vcon::from_json(
        &json!({"dialog": [{}], "analysis": [{"type": "transcript", "dialog": 0, "encoding": "json", "body": "{\"transcript\": \"billed twice\"}"}]}).to_string(),
    )
    .unwrap();
    run(&ctx(options(json!({"source": {"text_location": "body.transcript"}}))), v, &server.transport()).unwrap();
    let user = server.bodies()[0]["messages"][1]["content"].as_str().unwrap().to_string();
    assert!(user.contains("Text to evaluate:\nbilled twice\n\n"), "{user}");
}

#[test]
fn dialogs_without_a_source_or_already_evaluated_are_skipped() {
    let v = Vcon::from_json(
        &json!({"dialog": [{}, {}, {}], "analysis": [
            {"type": "transcript", "dialog": 0, "body": "zero"},
            {"type": "tag_evaluation", "dialog": 0, "body": "{}", "encoding": "json"},
            {"type": "transcript", "dialog": 2, "body": "two"}
        ]})
        .to_string(),
    )
    .unwrap();
    let server = FakeServer::answering([chat_answer(r#"{"applies": true}"#)]);
    let verdict = run(&ctx(options(json!({}))), v, &server.transport()).unwrap();
    assert_eq!(server.requests().len(), 1);
    assert!(server.bodies()[0]["messages"][1]["content"].as_str().unwrap().contains("Text to evaluate:\ntwo\n"));
    let written = analysis_of(&verdict, "tag_evaluation");
    assert_eq!((written.len(), written[1]["dialog"].clone()), (2, json!(2)));

    let server = FakeServer::default();
    let verdict = run(&ctx(options(json!({}))), vcon(&[]), &server.transport()).unwrap();
    assert!(verdict.vcon().is_none());
    assert!(server.requests().is_empty());
}

#[test]
fn custom_type_model_and_response_format() {
    let server = FakeServer::answering([chat_answer(r#"{"applies": true}"#)]);
    let extra = json!({"analysis_type": "billing_eval", "model": "gpt-4o", "response_format": null, "tag_value": 2024});
    let verdict = run(&ctx(options(extra)), vcon(&[json!("t")]), &server.transport()).unwrap();
    assert_eq!(server.bodies()[0]["model"], "gpt-4o");
    assert_eq!(server.bodies()[0].get("response_format"), None);
    assert_eq!(analysis_of(&verdict, "billing_eval")[0]["vendor_schema"]["model"], "gpt-4o");
    assert_eq!(changed(&verdict).get_tag("topic").as_deref(), Some("2024"));
}

#[test]
fn required_options_are_checked_first() {
    for missing in ["tag_name", "tag_value", "evaluation_question"] {
        let mut opts = options(json!({}));
        opts.as_object_mut().unwrap().remove(missing);
        let err = run(&ctx(opts), vcon(&[json!("t")]), &FakeServer::default().transport()).unwrap_err();
        assert!(!err.retryable);
        assert_eq!(err.message, format!("option `{missing}` of link `billing_check` is required: a non-empty string"));
    }
    // Even with no credentials, filters or vCon content, the required options come first.
    let err = run(&ctx(json!({})), vcon(&[]), &FakeServer::default().transport()).unwrap_err();
    assert!(err.message.starts_with("option `tag_name`"), "{}", err.message);
    let err = run(&ctx(options(json!({"tag_value": ""}))), vcon(&[]), &FakeServer::default().transport()).unwrap_err();
    assert!(err.message.starts_with("option `tag_value`"), "{}", err.message);
}

#[test]
fn only_if_and_sampling_skip_without_requests() {
    for extra in [
        json!({"only_if": {"section": "attachments", "type": "tags", "includes": "vip:vip"}}),
        json!({"sampling_rate": -1}),
    ] {
        let server = FakeServer::default();
        let verdict = run(&ctx(options(extra)), vcon(&[json!("t")]), &server.transport()).unwrap();
        assert!(verdict.vcon().is_none());
        assert!(server.requests().is_empty());
    }
    let mut tagged = vcon(&[json!("t")]);
    tagged.add_tag("vip", "vip").unwrap();
    let server = FakeServer::answering([chat_answer(r#"{"applies": true}"#)]);
    let extra =
        json!({"sampling_rate": 0, "only_if": {"section": "attachments", "type": "tags", "includes": "vip:vip"}});
    let verdict = run(&ctx(options(extra)), tagged, &server.transport()).unwrap();
    assert_eq!(changed(&verdict).tags().len(), 2);
}

#[test]
fn errors_are_fatal_for_4xx_and_retryable_otherwise() {
    let server = FakeServer::answering([status(400, "unsupported parameter")]);
    let err = run(&ctx(options(json!({}))), vcon(&[json!("t")]), &server.transport()).unwrap_err();
    assert!(!err.retryable);
    assert!(err.message.starts_with("dialog 0: chat completion request to "), "{}", err.message);
    assert_eq!(server.requests().len(), 1);

    let server = FakeServer::new([Ok(status(429, "slow")), Err(HttpError::Timeout("t".into()))]);
    let err = run(&ctx(options(json!({"retry_attempts": 2}))), vcon(&[json!("t")]), &server.transport()).unwrap_err();
    assert!(err.retryable);
    assert_eq!(server.requests().len(), 2);

    let server = FakeServer::answering([status(500, "oops"), chat_answer(r#"{"applies": true}"#)]);
    let verdict = run(&ctx(options(json!({}))), vcon(&[json!("t")]), &server.transport()).unwrap();
    assert_eq!(changed(&verdict).get_tag("topic").as_deref(), Some("billing"));
}

#[test]
fn an_answer_that_is_not_a_json_object_is_retryable() {
    let server = FakeServer::answering([chat_answer("Yes, it applies.")]);
    let err = run(&ctx(options(json!({}))), vcon(&[json!("t")]), &server.transport()).unwrap_err();
    assert!(err.retryable);
    assert!(err.message.starts_with("dialog 0: the model's answer is not a JSON object"), "{}", err.message);
}

#[test]
fn missing_credentials_are_fatal() {
    let mut opts = options(json!({}));
    opts.as_object_mut().unwrap().remove("OPENAI_API_KEY");
    let err = run(&ctx(opts), vcon(&[json!("t")]), &FakeServer::default().transport()).unwrap_err();
    assert!(!err.retryable);
    assert!(err.message.starts_with("no LLM credentials"), "{}", err.message);
}

#[test]
fn bad_options_are_fatal_errors_naming_the_option() {
    for (extra, option) in [
        (json!({"tag_name": ["x"]}), "tag_name"),
        (json!({"tag_value": 0}), "tag_value"),
        (json!({"evaluation_question": 5}), "evaluation_question"),
        (json!({"verbosity": 1}), "verbosity"),
        (json!({"minimal_reasoning": "yes"}), "minimal_reasoning"),
        (json!({"model": false}), "model"),
        (json!({"source": []}), "source"),
        (json!({"response_format": 1}), "response_format"),
    ] {
        let err =
            run(&ctx(options(extra.clone())), vcon(&[json!("t")]), &FakeServer::default().transport()).unwrap_err();
        assert!(!err.retryable);
        assert!(
            err.message.starts_with(&format!("option `{option}` of link `billing_check`")),
            "{extra}: {}",
            err.message
        );
    }
}

#[test]
fn process_sends_through_the_host() {
    let err = CheckAndTag::process(&ctx(options(json!({}))), vcon(&[json!("t")])).unwrap_err();
    assert!(err.message.contains("only available inside the conserver host"), "{}", err.message);
}
