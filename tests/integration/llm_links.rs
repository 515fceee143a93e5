//! The LLM links (`analyze`, `check_and_tag`) as components in the real host,
//! against a local server speaking OpenAI's chat-completions wire format: the key
//! comes from a granted secret, the requests are recorded, and the analyses and
//! tags written are checked. A refused key dead-letters the vCon with the answer
//! named.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use serde_json::{Value, json};

use crate::support::{Backend, Server, fresh_vcon, unique};

type Seen = Arc<Mutex<Vec<(String, Value)>>>;

/// `/v1/chat/completions`: a JSON verdict when JSON mode is asked for, else a
/// summary; 401 for the key `wrong`.
async fn openai() -> (u16, Seen) {
    let seen: Seen = Arc::default();
    let record = seen.clone();
    let app = axum::Router::new().route(
        "/v1/chat/completions",
        post(move |headers: HeaderMap, body: axum::Json<Value>| {
            let record = record.clone();
            async move {
                let auth = headers.get("authorization").and_then(|v| v.to_str().ok()).unwrap_or_default().to_string();
                record.lock().unwrap().push((auth.clone(), body.0.clone()));
                if auth == "Bearer wrong" {
                    let error = json!({"error": {"message": "Incorrect API key provided", "type": "invalid_request_error"}});
                    return (StatusCode::UNAUTHORIZED, axum::Json(error));
                }
                let content = if body.0.get("response_format").is_some() { r#"{"applies": true}"# } else { "A short summary." };
                let answer = json!({
                    "id": "chatcmpl-1", "object": "chat.completion", "created": 1, "model": body.0["model"],
                    "choices": [{"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}],
                    "usage": {"prompt_tokens": 10, "completion_tokens": 4, "total_tokens": 14}
                });
                (StatusCode::OK, axum::Json(answer))
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (port, seen)
}

fn with_transcript(mut vcon: Value) -> Value {
    vcon["analysis"] = json!([{
        "type": "transcript", "dialog": 0, "vendor": "test", "encoding": "json",
        "body": {"text": "Hello, I was charged twice on my last bill."}
    }]);
    vcon
}

#[tokio::test]
async fn analyze_and_check_and_tag_write_what_python_writes() {
    let (port, seen) = openai().await;
    let ingress = unique("llm");
    let egress = unique("llm-out");
    let bad_in = unique("llm-bad");
    let grant = format!("    allowed_outbound_hosts: ['http://127.0.0.1:{port}']\n    secrets: [OPENAI_API_KEY]\n");
    let base = format!(
        "      base_url: 'http://127.0.0.1:{port}/v1'\n      source: {{analysis_type: transcript, text_location: body.text}}"
    );
    let config = [
        "links:".to_string(),
        format!("  summarise:\n    module: links.analyze\n{grant}    options:\n{base}\n      model: gpt-test\n      prompt: Summarise this call."),
        format!("  billing:\n    module: links.check_and_tag\n{grant}    options:\n{base}\n      tag_name: topic\n      tag_value: billing\n      evaluation_question: Is this call about billing?"),
        format!("  refused:\n    module: links.analyze\n{grant}    options:\n{base}\n      api_key: wrong\n      retry_attempts: 1"),
        "chains:".into(),
        format!("  main:\n    links: [summarise, billing]\n    ingress_lists: [{ingress}]\n    egress_lists: [{egress}]"),
        format!("  bad:\n    links: [refused]\n    ingress_lists: [{bad_in}]"),
    ]
    .join("\n");
    let server = Server::start(Backend::Embedded, &config, &[("OPENAI_API_KEY", "sk-granted")]).await;

    let (uuid, vcon) = fresh_vcon();
    assert_eq!(server.post_vcon(&with_transcript(vcon), &ingress).await.status(), 201);
    server.wait_for_egress(&egress, &uuid, Duration::from_secs(30)).await;
    let (_, stored) = server.get_json(&format!("/api/vcon/{uuid}")).await;
    let analysis = stored["analysis"].as_array().unwrap();
    let summary = analysis.iter().find(|a| a["type"] == "summary").unwrap_or_else(|| panic!("{analysis:?}"));
    assert_eq!(summary["body"], "A short summary.");
    assert_eq!(summary["dialog"], 0);
    assert_eq!(summary["vendor_schema"]["model"], "gpt-test");
    let verdict = analysis.iter().find(|a| a["type"] == "tag_evaluation").unwrap_or_else(|| panic!("{analysis:?}"));
    assert_eq!(verdict["encoding"], "json");
    assert!(stored["attachments"].to_string().contains("topic:billing"), "{}", stored["attachments"]);

    let requests = seen.lock().unwrap().clone();
    assert_eq!(requests.len(), 2, "{requests:?}");
    assert!(requests.iter().all(|(auth, _)| auth == "Bearer sk-granted"), "the granted secret is the key");
    let messages = requests[0].1["messages"].to_string();
    assert!(messages.contains("Summarise this call.") && messages.contains("charged twice"), "{messages}");
    assert_eq!(requests[1].1["response_format"], json!({"type": "json_object"}));

    let (bad, vcon) = fresh_vcon();
    assert_eq!(server.post_vcon(&with_transcript(vcon), &bad_in).await.status(), 201);
    let reason = server.wait_for_dlq(&bad_in, &bad, Duration::from_secs(30)).await;
    let error = reason["error"].as_str().unwrap_or_default();
    assert!(error.contains("401"), "{error}");
    assert_eq!(reason["retryable"], false, "{reason}");
    assert!(!server.log_text().contains("sk-granted"), "the key leaked into the log");
}
