use super::*;
use conserver_link_sdk::http::{HttpError, Response};
use conserver_llm::testing::{self, FakeServer, analysis_of, chat_answer, grant_secrets, status, with_key};
use serde_json::json;

const TRANSCRIPT: &str = "Customer: I was charged twice. Agent: I'll refund you.";

fn ctx(options: Value) -> Context {
    testing::context("analyze", options)
}

/// A vCon with one dialog per transcript, each with a Deepgram-shaped transcript.
fn vcon(transcripts: &[&str]) -> Vcon {
    let dialog: Vec<Value> = transcripts.iter().map(|_| json!({"type": "recording"})).collect();
    let analysis: Vec<Value> = transcripts
        .iter()
        .enumerate()
        .map(|(i, t)| json!({"type": "transcript", "dialog": i, "vendor": "deepgram", "body": {"paragraphs": {"transcript": t}}}))
        .collect();
    Vcon::from_json(&json!({"uuid": "uuid-1", "dialog": dialog, "analysis": analysis}).to_string()).unwrap()
}

#[test]
fn defaults_send_pythons_request_and_write_pythons_analysis() {
    let server = FakeServer::answering([chat_answer("A duplicate charge was refunded.")]);
    let verdict = run(&ctx(with_key(json!({}))), vcon(&[TRANSCRIPT]), &server.transport()).unwrap();

    let request = &server.requests()[0];
    assert_eq!(request.url, "https://api.openai.com/v1/chat/completions");
    assert_eq!(request.header_value("authorization"), Some("Bearer sk-test"));
    assert_eq!(
        server.bodies()[0],
        json!({
            "model": "gpt-3.5-turbo-16k",
            "messages": [
                {"role": "system", "content": "You are a helpful assistant."},
                {"role": "user", "content": format!("\n\n{TRANSCRIPT}")}
            ],
            "temperature": 0
        })
    );
    assert_eq!(server.bodies()[0]["temperature"].to_string(), "0");
    assert_eq!(
        analysis_of(&verdict, "summary"),
        [json!({
            "type": "summary",
            "dialog": 0,
            "vendor": "openai",
            "body": "A duplicate charge was refunded.",
            "encoding": "none",
            "vendor_schema": {"model": "gpt-3.5-turbo-16k", "prompt": ""}
        })]
    );
    // The analysis is appended after the existing entries, keys in Python's order.
    let text = verdict.vcon().unwrap().to_json().unwrap();
    assert!(text.ends_with(r#"{"type":"summary","dialog":0,"vendor":"openai","body":"A duplicate charge was refunded.","encoding":"none","vendor_schema":{"model":"gpt-3.5-turbo-16k","prompt":""}}]}"#), "{text}");
}

#[test]
fn custom_prompt_system_prompt_model_temperature_and_type() {
    let server = FakeServer::answering([chat_answer("calm")]);
    let options = with_key(json!({
        "prompt": "Describe the mood.",
        "system_prompt": "You are a specialised analyst.",
        "model": "gpt-4o",
        "temperature": 0.3,
        "analysis_type": "mood"
    }));
    let verdict = run(&ctx(options), vcon(&[TRANSCRIPT]), &server.transport()).unwrap();
    assert_eq!(
        server.bodies()[0],
        json!({
            "model": "gpt-4o",
            "messages": [
                {"role": "system", "content": "You are a specialised analyst."},
                {"role": "user", "content": format!("Describe the mood.\n\n{TRANSCRIPT}")}
            ],
            "temperature": 0.3
        })
    );
    let written = analysis_of(&verdict, "mood");
    assert_eq!(written[0]["vendor_schema"], json!({"model": "gpt-4o", "prompt": "Describe the mood."}));
    assert_eq!(written[0]["body"], "calm");
}

#[test]
fn source_options_point_at_other_transcript_shapes() {
    // An OpenAI-style transcript stored as a JSON string, read with `body.text`.
    let v = Vcon::from_json(
        &json!({"dialog": [{}], "analysis": [
            {"type": "whisper", "dialog": 0, "encoding": "json", "body": "{\"text\": \"hello there\"}"}
        ]})
        .to_string(),
    )
    .unwrap();
    let server = FakeServer::answering([chat_answer("greeting")]);
    let options = with_key(json!({"source": {"analysis_type": "whisper", "text_location": "body.text"}}));
    let verdict = run(&ctx(options), v, &server.transport()).unwrap();
    assert_eq!(server.bodies()[0]["messages"][1]["content"], "\n\nhello there");
    assert_eq!(analysis_of(&verdict, "summary").len(), 1);
}

#[test]
fn a_non_string_source_is_sent_as_json_text() {
    let v = Vcon::from_json(
        &json!({"dialog": [{}], "analysis": [{"type": "transcript", "dialog": 0, "body": {"paragraphs": {"transcript": {"speaker": "A", "text": "é"}}}}]})
            .to_string(),
    )
    .unwrap();
    let server = FakeServer::answering([chat_answer("ok")]);
    run(&ctx(with_key(json!({}))), v, &server.transport()).unwrap();
    assert_eq!(server.bodies()[0]["messages"][1]["content"], "\n\n{\"speaker\": \"A\", \"text\": \"\\u00e9\"}");
}

#[test]
fn dialogs_already_analysed_or_without_text_are_skipped() {
    let v = Vcon::from_json(
        &json!({"dialog": [{}, {}, {}, {}], "analysis": [
            {"type": "transcript", "dialog": 0, "body": {"paragraphs": {"transcript": "zero"}}},
            {"type": "summary", "dialog": 0, "body": "done before"},
            {"type": "transcript", "dialog": 1, "body": {"paragraphs": {"transcript": ""}}},
            {"type": "transcript", "dialog": 2, "body": "a plain string with paragraphs"},
            {"type": "transcript", "dialog": 3, "body": {"paragraphs": {"transcript": "three"}}}
        ]})
        .to_string(),
    )
    .unwrap();
    let server = FakeServer::answering([chat_answer("summary of three")]);
    let verdict = run(&ctx(with_key(json!({}))), v, &server.transport()).unwrap();
    assert_eq!(server.requests().len(), 1);
    assert_eq!(server.bodies()[0]["messages"][1]["content"], "\n\nthree");
    let summaries = analysis_of(&verdict, "summary");
    assert_eq!(summaries.len(), 2);
    assert_eq!(summaries[0]["body"], "done before");
    assert_eq!((summaries[1]["dialog"].clone(), summaries[1]["body"].clone()), (json!(3), json!("summary of three")));
}

#[test]
fn nothing_to_do_leaves_the_vcon_unchanged() {
    let server = FakeServer::default();
    let verdict = run(&ctx(with_key(json!({}))), vcon(&[]), &server.transport()).unwrap();
    assert!(verdict.vcon().is_none() && !verdict.is_halt());
    assert!(server.requests().is_empty());
}

#[test]
fn every_dialog_gets_its_own_request() {
    let server = FakeServer::answering([chat_answer("one"), chat_answer("two")]);
    let verdict = run(&ctx(with_key(json!({}))), vcon(&["first", "second"]), &server.transport()).unwrap();
    let contents: Vec<Value> = server.bodies().iter().map(|b| b["messages"][1]["content"].clone()).collect();
    assert_eq!(contents, [json!("\n\nfirst"), json!("\n\nsecond")]);
    let bodies: Vec<Value> = analysis_of(&verdict, "summary").iter().map(|a| a["body"].clone()).collect();
    assert_eq!(bodies, [json!("one"), json!("two")]);
}

#[test]
fn only_if_skips_vcons_that_do_not_match() {
    let only_if = json!({"only_if": {"section": "attachments", "type": "tags", "includes": "vip:vip"}});
    let server = FakeServer::default();
    let verdict = run(&ctx(with_key(only_if.clone())), vcon(&[TRANSCRIPT]), &server.transport()).unwrap();
    assert!(verdict.vcon().is_none());
    assert!(server.requests().is_empty());

    let mut tagged = vcon(&[TRANSCRIPT]);
    tagged.add_tag("vip", "vip").unwrap();
    let server = FakeServer::answering([chat_answer("s")]);
    let verdict = run(&ctx(with_key(only_if)), tagged, &server.transport()).unwrap();
    assert_eq!(analysis_of(&verdict, "summary").len(), 1);
}

#[test]
fn sampling_skips_or_always_runs_at_zero() {
    let server = FakeServer::default();
    let verdict = run(&ctx(with_key(json!({"sampling_rate": -1}))), vcon(&[TRANSCRIPT]), &server.transport()).unwrap();
    assert!(verdict.vcon().is_none());
    assert!(server.requests().is_empty());

    let server = FakeServer::answering([chat_answer("s")]);
    let verdict = run(&ctx(with_key(json!({"sampling_rate": 0}))), vcon(&[TRANSCRIPT]), &server.transport()).unwrap();
    assert_eq!(analysis_of(&verdict, "summary").len(), 1, "0 means always");
}

#[test]
fn a_client_error_is_fatal_and_writes_nothing() {
    let server = FakeServer::answering([status(400, "model not found")]);
    let err = run(&ctx(with_key(json!({}))), vcon(&[TRANSCRIPT]), &server.transport()).unwrap_err();
    assert!(!err.retryable);
    assert!(err.message.starts_with("dialog 0: chat completion request to https://api.openai.com/v1/chat/completions failed: the server answered 400"), "{}", err.message);
    assert_eq!(server.requests().len(), 1, "a 4xx is not retried");
}

#[test]
fn rate_limits_and_server_errors_are_retried_then_retryable() {
    let server = FakeServer::answering([status(429, "slow down"), chat_answer("fine")]);
    let verdict = run(&ctx(with_key(json!({}))), vcon(&[TRANSCRIPT]), &server.transport()).unwrap();
    assert_eq!(server.requests().len(), 2);
    assert_eq!(analysis_of(&verdict, "summary")[0]["body"], "fine");

    let server = FakeServer::new([Ok(status(503, "busy")), Err(HttpError::Timeout("t".into())), Ok(status(500, "x"))]);
    let err = run(&ctx(with_key(json!({"retry_attempts": 3}))), vcon(&[TRANSCRIPT]), &server.transport()).unwrap_err();
    assert!(err.retryable);
    assert!(err.message.contains("failed after 3 attempt(s)"), "{}", err.message);
    assert_eq!(server.requests().len(), 3);
}

#[test]
fn a_failure_on_a_later_dialog_fails_the_whole_vcon() {
    let server = FakeServer::answering([chat_answer("one"), status(401, "bad key")]);
    let err = run(&ctx(with_key(json!({}))), vcon(&["a", "b"]), &server.transport()).unwrap_err();
    assert!(err.message.starts_with("dialog 1: "), "{}", err.message);
}

#[test]
fn missing_credentials_are_fatal_and_secrets_can_supply_the_key() {
    let server = FakeServer::default();
    let err = run(&ctx(json!({})), vcon(&[TRANSCRIPT]), &server.transport()).unwrap_err();
    assert!(!err.retryable);
    assert!(err.message.starts_with("no LLM credentials"), "{}", err.message);

    let ctx = ctx(json!({"retry_backoff_secs": 0}));
    grant_secrets(&[("OPENAI_API_KEY", "sk-granted")]);
    let server = FakeServer::answering([chat_answer("s")]);
    run(&ctx, vcon(&[TRANSCRIPT]), &server.transport()).unwrap();
    assert_eq!(server.requests()[0].header_value("authorization"), Some("Bearer sk-granted"));
}

#[test]
fn azure_and_litellm_set_url_headers_and_vendor() {
    let server = FakeServer::answering([chat_answer("s")]);
    let options = json!({
        "AZURE_OPENAI_ENDPOINT": "https://res.openai.azure.com", "AZURE_OPENAI_API_KEY": "az",
        "AZURE_OPENAI_API_VERSION": "2023-12-01-preview", "model": "my-deployment"
    });
    let verdict = run(&ctx(options), vcon(&[TRANSCRIPT]), &server.transport()).unwrap();
    let request = &server.requests()[0];
    assert_eq!(
        request.url,
        "https://res.openai.azure.com/openai/deployments/my-deployment/chat/completions?api-version=2023-12-01-preview"
    );
    assert_eq!(request.header_value("api-key"), Some("az"));
    assert_eq!(server.bodies()[0]["model"], "my-deployment");
    assert_eq!(analysis_of(&verdict, "summary")[0]["vendor"], "azure");

    let server = FakeServer::answering([chat_answer("s")]);
    let options =
        json!({"LITELLM_PROXY_URL": "http://litellm:4000", "LITELLM_MASTER_KEY": "mk", "model": "claude-3-haiku"});
    let verdict = run(&ctx(options), vcon(&[TRANSCRIPT]), &server.transport()).unwrap();
    assert_eq!(server.requests()[0].url, "http://litellm:4000/chat/completions");
    assert_eq!(server.requests()[0].header_value("authorization"), Some("Bearer mk"));
    assert_eq!(analysis_of(&verdict, "summary")[0]["vendor"], "anthropic");
}

#[test]
fn usage_is_reported_when_a_url_is_set() {
    let server = FakeServer::answering([chat_answer("s"), Response::new(200, "")]);
    let options = with_key(
        json!({"send_ai_usage_data_to_url": "https://portal/usage", "ai_usage_api_token": "tok", "model": "gpt-4"}),
    );
    run(&ctx(options), vcon(&[TRANSCRIPT]), &server.transport()).unwrap();
    let requests = server.requests();
    assert_eq!(requests.len(), 2);
    assert_eq!(requests[1].url, "https://portal/usage");
    assert_eq!(requests[1].header_value("authorization"), Some("Bearer tok"));
    let body = &server.bodies()[1];
    assert_eq!(
        (&body["record_id"], &body["type"], &body["sub_type"], &body["unit_type"]),
        (&json!("uuid-1"), &json!("VCON_PROCESSING"), &json!("ANALYZE"), &json!("tokens"))
    );
    assert_eq!(
        (&body["input_units"], &body["output_units"], &body["ai_model"]),
        (&json!(11), &json!(7), &json!("gpt-4"))
    );
}

#[test]
fn a_failed_usage_report_does_not_fail_the_link() {
    let server = FakeServer::new([Ok(chat_answer("s")), Err(HttpError::Connection("refused".into()))]);
    let options = with_key(json!({"send_ai_usage_data_to_url": "https://portal/usage"}));
    let verdict = run(&ctx(options), vcon(&[TRANSCRIPT]), &server.transport()).unwrap();
    assert_eq!(analysis_of(&verdict, "summary").len(), 1);
    assert_eq!(server.requests().len(), 2, "the LLM is not asked again");
}

#[test]
fn no_usage_report_without_a_url() {
    let server = FakeServer::answering([chat_answer("s")]);
    run(&ctx(with_key(json!({}))), vcon(&[TRANSCRIPT]), &server.transport()).unwrap();
    assert_eq!(server.requests().len(), 1);
}

#[test]
fn bad_options_are_fatal_errors_naming_the_option() {
    for (options, option) in [
        (json!({"prompt": 1}), "prompt"),
        (json!({"model": ["gpt"]}), "model"),
        (json!({"temperature": "0"}), "temperature"),
        (json!({"analysis_type": false}), "analysis_type"),
        (json!({"system_prompt": {}}), "system_prompt"),
        (json!({"source": "transcript"}), "source"),
        (json!({"sampling_rate": "all"}), "sampling_rate"),
        (json!({"only_if": {"section": "analysis"}}), "only_if"),
        (json!({"send_ai_usage_data_to_url": 5}), "send_ai_usage_data_to_url"),
        (json!({"retry_attempts": 0}), "retry_attempts"),
    ] {
        let server = FakeServer::default();
        let err = run(&ctx(with_key(options.clone())), vcon(&[TRANSCRIPT]), &server.transport()).unwrap_err();
        assert!(!err.retryable);
        assert!(err.message.starts_with(&format!("option `{option}` of link `analyze`")), "{options}: {}", err.message);
    }
}

#[test]
fn process_sends_through_the_host() {
    // Natively the host client has no network: the link reports it.
    let err = Analyze::process(&ctx(with_key(json!({}))), vcon(&[TRANSCRIPT])).unwrap_err();
    assert!(err.message.contains("only available inside the conserver host"), "{}", err.message);
}
