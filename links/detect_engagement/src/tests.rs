use super::*;
use conserver_link_sdk::http::HttpError;
use conserver_llm::testing::{self, FakeServer, analysis_of, grant_secrets, responses_answer, status, with_key};
use serde_json::json;

const TRANSCRIPT: &str = "Agent: Hello, how can I help? Customer: My order is late.";

fn ctx(options: Value) -> Context {
    testing::context("engagement", options)
}

fn vcon(transcripts: &[&str]) -> Vcon {
    let dialog: Vec<Value> = transcripts.iter().map(|_| json!({"type": "recording"})).collect();
    let analysis: Vec<Value> = transcripts
        .iter()
        .enumerate()
        .map(|(i, t)| json!({"type": "transcript", "dialog": i, "body": {"paragraphs": {"transcript": t}}}))
        .collect();
    Vcon::from_json(&json!({"uuid": "uuid-1", "dialog": dialog, "analysis": analysis}).to_string()).unwrap()
}

fn changed(verdict: &Verdict) -> &Vcon {
    verdict.vcon().expect("the vCon was changed")
}

#[test]
fn defaults_call_the_responses_api() {
    let server = FakeServer::answering([responses_answer("true")]);
    run(&ctx(with_key(json!({}))), vcon(&[TRANSCRIPT]), &server.transport()).unwrap();
    let request = &server.requests()[0];
    assert_eq!(request.url, "https://api.openai.com/v1/responses");
    assert_eq!(request.header_value("authorization"), Some("Bearer sk-test"));
    assert_eq!(
        server.bodies()[0],
        json!({
            "model": "gpt-4.1",
            "input": format!("Did both the customer and the agent speak? Respond with 'true' if yes, 'false' if not. Respond with only 'true' or 'false'.\n\nTranscript: {TRANSCRIPT}"),
            "temperature": 0.2
        })
    );
}

#[test]
fn true_writes_the_analysis_and_the_engagement_true_tag() {
    let server = FakeServer::answering([responses_answer("true")]);
    let verdict = run(&ctx(with_key(json!({}))), vcon(&[TRANSCRIPT]), &server.transport()).unwrap();
    assert_eq!(
        analysis_of(&verdict, "engagement_analysis"),
        [json!({
            "type": "engagement_analysis",
            "dialog": 0,
            "vendor": "openai",
            "body": "true",
            "encoding": "none",
            "vendor_schema": {"model": "gpt-4.1", "prompt": options::PROMPT, "is_engaged": "true"}
        })]
    );
    assert_eq!(
        changed(&verdict).get("attachments").unwrap(),
        json!([{"purpose": "tags", "body": "[\"engagement:true\"]", "encoding": "json"}])
    );
}

#[test]
fn the_answer_is_trimmed_and_lower_cased_and_anything_else_is_false() {
    for (answer, engaged) in
        [(" True\n", "true"), ("TRUE", "true"), ("false", "false"), ("yes", "false"), ("", "false"), ("true.", "false")]
    {
        let server = FakeServer::answering([responses_answer(answer)]);
        let verdict = run(&ctx(with_key(json!({}))), vcon(&[TRANSCRIPT]), &server.transport()).unwrap();
        let written = &analysis_of(&verdict, "engagement_analysis")[0];
        assert_eq!(written["body"], engaged, "{answer:?}");
        assert_eq!(written["vendor_schema"]["is_engaged"], engaged);
        assert_eq!(changed(&verdict).get_tag("engagement").as_deref(), Some(engaged), "the tag is always added");
    }
}

#[test]
fn custom_options_are_sent_and_recorded() {
    let server = FakeServer::answering([responses_answer("false")]);
    let extra = json!({
        "prompt": "Both spoke?", "model": "gpt-4o", "temperature": 0, "analysis_type": "engaged",
        "source": {"analysis_type": "whisper", "text_location": "body.text"}
    });
    let v = Vcon::from_json(
        &json!({"dialog": [{}], "analysis": [{"type": "whisper", "dialog": 0, "encoding": "json", "body": "{\"text\": \"hi\"}"}]}).to_string(),
    )
    .unwrap();
    let verdict = run(&ctx(with_key(extra)), v, &server.transport()).unwrap();
    assert_eq!(
        server.bodies()[0],
        json!({"model": "gpt-4o", "input": "Both spoke?\n\nTranscript: hi", "temperature": 0})
    );
    assert_eq!(
        analysis_of(&verdict, "engaged")[0]["vendor_schema"],
        json!({"model": "gpt-4o", "prompt": "Both spoke?", "is_engaged": "false"})
    );
}

#[test]
fn no_transcript_means_no_request_analysis_or_tag() {
    let v = Vcon::from_json(
        &json!({"dialog": [{}, {}], "analysis": [{"type": "transcript", "dialog": 1, "body": {"paragraphs": {}}}]})
            .to_string(),
    )
    .unwrap();
    let server = FakeServer::default();
    let verdict = run(&ctx(with_key(json!({}))), v, &server.transport()).unwrap();
    assert!(verdict.vcon().is_none());
    assert!(server.requests().is_empty());
}

#[test]
fn dialogs_already_checked_are_skipped() {
    let v = Vcon::from_json(
        &json!({"dialog": [{}, {}], "analysis": [
            {"type": "transcript", "dialog": 0, "body": {"paragraphs": {"transcript": "zero"}}},
            {"type": "engagement_analysis", "dialog": 0, "body": "true", "encoding": "none"},
            {"type": "transcript", "dialog": 1, "body": {"paragraphs": {"transcript": "one"}}}
        ]})
        .to_string(),
    )
    .unwrap();
    let server = FakeServer::answering([responses_answer("false")]);
    let verdict = run(&ctx(with_key(json!({}))), v, &server.transport()).unwrap();
    assert_eq!(server.requests().len(), 1);
    assert!(server.bodies()[0]["input"].as_str().unwrap().ends_with("Transcript: one"));
    assert_eq!(changed(&verdict).tags(), [("engagement".into(), "false".into())]);
}

#[test]
fn no_credentials_skip_the_link_with_a_warning() {
    let server = FakeServer::default();
    let verdict = run(&ctx(json!({})), vcon(&[TRANSCRIPT]), &server.transport()).unwrap();
    assert!(verdict.vcon().is_none() && !verdict.is_halt());
    assert!(server.requests().is_empty());
}

#[test]
fn a_granted_secret_supplies_the_key() {
    let ctx = ctx(json!({}));
    grant_secrets(&[("OPENAI_API_KEY", "sk-granted")]);
    let server = FakeServer::answering([responses_answer("true")]);
    run(&ctx, vcon(&[TRANSCRIPT]), &server.transport()).unwrap();
    assert_eq!(server.requests()[0].header_value("authorization"), Some("Bearer sk-granted"));
}

#[test]
fn malformed_credentials_are_still_an_error() {
    let err =
        run(&ctx(json!({"OPENAI_API_KEY": 42})), vcon(&[TRANSCRIPT]), &FakeServer::default().transport()).unwrap_err();
    assert!(
        err.message.starts_with("option `OPENAI_API_KEY` of link `engagement` must be a string"),
        "{}",
        err.message
    );
}

#[test]
fn azure_and_litellm_use_their_responses_endpoints() {
    let server = FakeServer::answering([responses_answer("true")]);
    let options = json!({"AZURE_OPENAI_ENDPOINT": "https://r.openai.azure.com", "AZURE_OPENAI_API_KEY": "az", "AZURE_OPENAI_API_VERSION": "2025-03-01-preview"});
    run(&ctx(options), vcon(&[TRANSCRIPT]), &server.transport()).unwrap();
    assert_eq!(server.requests()[0].url, "https://r.openai.azure.com/openai/responses?api-version=2025-03-01-preview");
    assert_eq!(server.requests()[0].header_value("api-key"), Some("az"));
    assert_eq!(server.bodies()[0]["model"], "gpt-4.1");

    let server = FakeServer::answering([responses_answer("true")]);
    let options = json!({"LITELLM_PROXY_URL": "http://litellm:4000", "LITELLM_MASTER_KEY": "mk"});
    run(&ctx(options), vcon(&[TRANSCRIPT]), &server.transport()).unwrap();
    assert_eq!(server.requests()[0].url, "http://litellm:4000/responses");
}

#[test]
fn only_if_and_sampling_skip_without_requests() {
    for extra in
        [json!({"only_if": {"section": "analysis", "type": "summary", "includes": "x"}}), json!({"sampling_rate": -1})]
    {
        let server = FakeServer::default();
        let verdict = run(&ctx(with_key(extra)), vcon(&[TRANSCRIPT]), &server.transport()).unwrap();
        assert!(verdict.vcon().is_none());
        assert!(server.requests().is_empty());
    }
    let server = FakeServer::answering([responses_answer("true")]);
    let extra =
        json!({"sampling_rate": 0, "only_if": {"section": "analysis", "type": "transcript", "includes": "late"}});
    let verdict = run(&ctx(with_key(extra)), vcon(&[TRANSCRIPT]), &server.transport()).unwrap();
    assert_eq!(changed(&verdict).get_tag("engagement").as_deref(), Some("true"));
}

#[test]
fn errors_are_fatal_for_4xx_and_retryable_otherwise() {
    let server = FakeServer::answering([status(401, "invalid key")]);
    let err = run(&ctx(with_key(json!({}))), vcon(&[TRANSCRIPT]), &server.transport()).unwrap_err();
    assert!(!err.retryable);
    assert!(
        err.message.starts_with(
            "dialog 0: response request to https://api.openai.com/v1/responses failed: the server answered 401"
        ),
        "{}",
        err.message
    );
    assert_eq!(server.requests().len(), 1);

    let server = FakeServer::new([Ok(status(503, "busy")), Err(HttpError::Connection("reset".into()))]);
    let err = run(&ctx(with_key(json!({"retry_attempts": 2}))), vcon(&[TRANSCRIPT]), &server.transport()).unwrap_err();
    assert!(err.retryable);
    assert_eq!(server.requests().len(), 2);

    let server = FakeServer::answering([status(429, "slow"), responses_answer("true")]);
    let verdict = run(&ctx(with_key(json!({}))), vcon(&[TRANSCRIPT]), &server.transport()).unwrap();
    assert_eq!(changed(&verdict).get_tag("engagement").as_deref(), Some("true"));
}

#[test]
fn a_malformed_answer_is_retryable() {
    let server = FakeServer::answering([conserver_link_sdk::http::Response::new(200, "{}")]);
    let err = run(&ctx(with_key(json!({}))), vcon(&[TRANSCRIPT]), &server.transport()).unwrap_err();
    assert!(err.retryable);
    assert!(err.message.contains("has no `output` list"), "{}", err.message);
}

#[test]
fn bad_options_are_fatal_errors_naming_the_option() {
    for (extra, option) in [
        (json!({"prompt": []}), "prompt"),
        (json!({"temperature": "low"}), "temperature"),
        (json!({"model": 1}), "model"),
        (json!({"analysis_type": {}}), "analysis_type"),
        (json!({"source": "body"}), "source"),
        (json!({"retry_budget_secs": -3}), "retry_budget_secs"),
    ] {
        let err =
            run(&ctx(with_key(extra.clone())), vcon(&[TRANSCRIPT]), &FakeServer::default().transport()).unwrap_err();
        assert!(!err.retryable);
        assert!(
            err.message.starts_with(&format!("option `{option}` of link `engagement`")),
            "{extra}: {}",
            err.message
        );
    }
}

#[test]
fn process_sends_through_the_host() {
    let err = DetectEngagement::process(&ctx(with_key(json!({}))), vcon(&[TRANSCRIPT])).unwrap_err();
    assert!(err.message.contains("only available inside the conserver host"), "{}", err.message);
}
