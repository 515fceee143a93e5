use super::*;
use conserver_link_sdk::http::HttpError;
use conserver_llm::testing::{self, FakeServer, analysis_of, chat_answer, status, with_key};
use serde_json::json;

const ANSWER: &str = r#"{"sentiment": "positive", "topics": ["billing"], "score": 0.5}"#;

fn ctx(options: Value) -> Context {
    testing::context("whole", options)
}

fn document() -> Value {
    json!({
        "uuid": "uuid-1",
        "vcon": "0.4.0",
        "parties": [{"tel": "+15551234567", "name": "Zoë"}],
        "dialog": [
            {"type": "recording", "body": "AAAA", "encoding": "base64url", "duration": 12.0},
            {"type": "text", "body": "hello", "parties": [0]}
        ],
        "analysis": [{"type": "transcript", "dialog": 0, "body": "hi"}]
    })
}

fn vcon() -> Vcon {
    Vcon::from_json(&document().to_string()).unwrap()
}

/// The vCon JSON at the end of the user message.
fn sent_vcon(server: &FakeServer) -> String {
    let user = server.bodies()[0]["messages"][1]["content"].as_str().unwrap().to_string();
    user.split_once("\n\n").unwrap().1.to_string()
}

#[test]
fn defaults_send_the_vcon_without_dialog_bodies_in_json_mode() {
    let server = FakeServer::answering([chat_answer(ANSWER)]);
    run(&ctx(with_key(json!({}))), vcon(), &server.transport()).unwrap();
    assert_eq!(server.requests()[0].url, "https://api.openai.com/v1/chat/completions");
    let mut without_bodies = document();
    for dialog in without_bodies["dialog"].as_array_mut().unwrap() {
        dialog.as_object_mut().unwrap().shift_remove("body");
    }
    let expected_user = format!(
        "Analyze this vCon and return a JSON object with your analysis.\n\n{}",
        python_json::dumps(&without_bodies)
    );
    assert_eq!(
        server.bodies()[0],
        json!({
            "model": "gpt-3.5-turbo-16k",
            "messages": [
                {"role": "system", "content": "You are a helpful assistant that analyzes conversation data and returns structured JSON output."},
                {"role": "user", "content": expected_user}
            ],
            "temperature": 0,
            "response_format": {"type": "json_object"}
        })
    );
    // Python's json.dumps form: spaces after separators, ASCII escapes, key order kept.
    assert_eq!(
        sent_vcon(&server),
        r#"{"uuid": "uuid-1", "vcon": "0.4.0", "parties": [{"tel": "+15551234567", "name": "Zo\u00eb"}], "dialog": [{"type": "recording", "encoding": "base64url", "duration": 12.0}, {"type": "text", "parties": [0]}], "analysis": [{"type": "transcript", "dialog": 0, "body": "hi"}]}"#
    );
}

#[test]
fn dialog_bodies_are_kept_when_asked() {
    let server = FakeServer::answering([chat_answer(ANSWER)]);
    run(&ctx(with_key(json!({"remove_body_properties": false}))), vcon(), &server.transport()).unwrap();
    assert_eq!(sent_vcon(&server), python_json::dumps(&document()));
}

#[test]
fn the_answer_is_stored_once_as_python_json_for_dialog_zero() {
    let server = FakeServer::answering([chat_answer(ANSWER)]);
    let verdict = run(&ctx(with_key(json!({}))), vcon(), &server.transport()).unwrap();
    assert_eq!(
        analysis_of(&verdict, "json_analysis"),
        [json!({
            "type": "json_analysis",
            "dialog": 0,
            "vendor": "openai",
            "body": "{\"sentiment\": \"positive\", \"topics\": [\"billing\"], \"score\": 0.5}",
            "encoding": "json",
            "vendor_schema": {"model": "gpt-3.5-turbo-16k", "prompt": options::PROMPT, "system_prompt": options::SYSTEM_PROMPT}
        })]
    );
}

#[test]
fn a_scalar_answer_is_stored_as_is() {
    let server = FakeServer::answering([chat_answer("\"fine\"")]);
    let verdict = run(&ctx(with_key(json!({}))), vcon(), &server.transport()).unwrap();
    let written = &analysis_of(&verdict, "json_analysis")[0];
    assert_eq!((&written["body"], &written["encoding"]), (&json!("fine"), &json!("none")));
}

#[test]
fn custom_options_are_sent_and_recorded() {
    let server = FakeServer::answering([chat_answer("{}")]);
    let options = with_key(json!({
        "prompt": "Summarise as JSON.", "system_prompt": "Be terse.", "model": "gpt-4o",
        "temperature": 0.1, "analysis_type": "overview"
    }));
    let verdict = run(&ctx(options), vcon(), &server.transport()).unwrap();
    let body = &server.bodies()[0];
    assert_eq!(body["model"], "gpt-4o");
    assert_eq!(body["temperature"], json!(0.1));
    assert_eq!(body["messages"][0]["content"], "Be terse.");
    assert!(body["messages"][1]["content"].as_str().unwrap().starts_with("Summarise as JSON.\n\n{\"uuid\""));
    assert_eq!(
        analysis_of(&verdict, "overview")[0]["vendor_schema"],
        json!({"model": "gpt-4o", "prompt": "Summarise as JSON.", "system_prompt": "Be terse."})
    );
}

#[test]
fn a_system_prompt_inside_the_vcon_is_sent_unchanged() {
    // Python crashed here (NameError in dead code).
    let mut doc = document();
    doc["analysis"][0]["body"] = json!(options::SYSTEM_PROMPT);
    let server = FakeServer::answering([chat_answer(ANSWER)]);
    let verdict =
        run(&ctx(with_key(json!({}))), Vcon::from_json(&doc.to_string()).unwrap(), &server.transport()).unwrap();
    assert!(sent_vcon(&server).contains(options::SYSTEM_PROMPT));
    assert_eq!(analysis_of(&verdict, "json_analysis").len(), 1);
}

#[test]
fn an_existing_analysis_means_no_request_and_no_credentials_needed() {
    let mut doc = document();
    doc["analysis"].as_array_mut().unwrap().push(json!({"type": "json_analysis", "dialog": 3, "body": "{}"}));
    let server = FakeServer::default();
    let verdict = run(&ctx(json!({})), Vcon::from_json(&doc.to_string()).unwrap(), &server.transport()).unwrap();
    assert!(verdict.vcon().is_none() && !verdict.is_halt());
    assert!(server.requests().is_empty());
}

#[test]
fn invalid_json_is_a_retryable_error_and_nothing_is_stored() {
    let server = FakeServer::answering([chat_answer("Here is my analysis: positive")]);
    let err = run(&ctx(with_key(json!({}))), vcon(), &server.transport()).unwrap_err();
    assert!(err.retryable);
    assert!(err.message.starts_with("the model's answer is not valid JSON"), "{}", err.message);
}

#[test]
fn only_if_and_sampling_skip_without_requests() {
    for options in [
        json!({"only_if": {"section": "attachments", "purpose": "tags", "includes": "vip:vip"}}),
        json!({"sampling_rate": -0.5}),
    ] {
        let server = FakeServer::default();
        let verdict = run(&ctx(with_key(options)), vcon(), &server.transport()).unwrap();
        assert!(verdict.vcon().is_none());
        assert!(server.requests().is_empty());
    }
    let server = FakeServer::answering([chat_answer(ANSWER)]);
    let options = with_key(
        json!({"sampling_rate": 0, "only_if": {"section": "analysis", "type": "transcript", "includes": "hi"}}),
    );
    let verdict = run(&ctx(options), vcon(), &server.transport()).unwrap();
    assert_eq!(analysis_of(&verdict, "json_analysis").len(), 1);
}

#[test]
fn errors_are_fatal_for_4xx_and_retryable_for_429_and_5xx() {
    let server = FakeServer::answering([status(413, "context too long")]);
    let err = run(&ctx(with_key(json!({}))), vcon(), &server.transport()).unwrap_err();
    assert!(!err.retryable);
    assert!(err.message.contains("the server answered 413"), "{}", err.message);
    assert_eq!(server.requests().len(), 1);

    let server =
        FakeServer::new([Ok(status(429, "slow")), Err(HttpError::Connection("reset".into())), Ok(status(500, "x"))]);
    let err = run(&ctx(with_key(json!({"retry_attempts": 3}))), vcon(), &server.transport()).unwrap_err();
    assert!(err.retryable);
    assert_eq!(server.requests().len(), 3);

    let server = FakeServer::answering([status(503, "busy"), chat_answer(ANSWER)]);
    run(&ctx(with_key(json!({}))), vcon(), &server.transport()).unwrap();
    assert_eq!(server.requests().len(), 2);
}

#[test]
fn missing_credentials_are_fatal() {
    let err = run(&ctx(json!({})), vcon(), &FakeServer::default().transport()).unwrap_err();
    assert!(!err.retryable);
    assert!(err.message.starts_with("no LLM credentials"), "{}", err.message);
}

#[test]
fn litellm_is_used_when_configured() {
    let server = FakeServer::answering([chat_answer(ANSWER)]);
    let options =
        json!({"LITELLM_PROXY_URL": "https://llm.internal/", "LITELLM_MASTER_KEY": "mk", "OPENAI_API_KEY": "sk"});
    let verdict = run(&ctx(options), vcon(), &server.transport()).unwrap();
    assert_eq!(server.requests()[0].url, "https://llm.internal/chat/completions");
    assert_eq!(analysis_of(&verdict, "json_analysis")[0]["vendor"], "openai");
}

#[test]
fn bad_options_are_fatal_errors_naming_the_option() {
    for (options, option) in [
        (json!({"remove_body_properties": "yes"}), "remove_body_properties"),
        (json!({"system_prompt": 1}), "system_prompt"),
        (json!({"temperature": null, "model": 1}), "model"),
        (json!({"only_if": "tags"}), "only_if"),
    ] {
        let err = run(&ctx(with_key(options.clone())), vcon(), &FakeServer::default().transport()).unwrap_err();
        assert!(!err.retryable);
        assert!(err.message.starts_with(&format!("option `{option}` of link `whole`")), "{options}: {}", err.message);
    }
}

#[test]
fn process_sends_through_the_host() {
    let err = AnalyzeVcon::process(&ctx(with_key(json!({}))), vcon()).unwrap_err();
    assert!(err.message.contains("only available inside the conserver host"), "{}", err.message);
}
