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

/// Chat completions (labels, a whole-vCon JSON analysis), the Responses API and
/// Slack's `chat.postMessage`, recording `(path, body)`.
async fn services() -> (u16, Arc<Mutex<Vec<(String, Value)>>>) {
    let seen: Arc<Mutex<Vec<(String, Value)>>> = Arc::default();
    let record = seen.clone();
    let app = axum::Router::new().route(
        "/{*path}",
        post(move |axum::extract::Path(path): axum::extract::Path<String>, body: axum::Json<Value>| {
            let record = record.clone();
            async move {
                record.lock().unwrap().push((path.clone(), body.0.clone()));
                let system = body.0["messages"][0]["content"].as_str().unwrap_or_default().to_string();
                let chat = |content: &str| {
                    json!({"choices": [{"index": 0, "message": {"role": "assistant", "content": content}}],
                        "usage": {"prompt_tokens": 5, "completion_tokens": 5, "total_tokens": 10}})
                };
                axum::Json(match path.as_str() {
                    "v1/responses" => json!({
                        "id": "resp_1", "object": "response", "status": "completed",
                        "output": [{"type": "message", "role": "assistant",
                            "content": [{"type": "output_text", "text": "true", "annotations": []}]}],
                        "usage": {"input_tokens": 5, "output_tokens": 1, "total_tokens": 6}
                    }),
                    "api/chat.postMessage" => json!({"ok": true, "ts": "1.2"}),
                    _ if system.contains("labels") => chat(r#"{"labels": ["billing", "refund"]}"#),
                    _ => chat(r#"{"sentiment": "negative"}"#),
                })
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (port, seen)
}

#[tokio::test]
async fn labels_whole_vcon_analysis_engagement_delay_and_slack_alerts() {
    let (port, seen) = services().await;
    let ingress = unique("more");
    let egress = unique("more-out");
    let grant = format!("    allowed_outbound_hosts: ['http://127.0.0.1:{port}']\n");
    let base = format!(
        "      base_url: 'http://127.0.0.1:{port}/v1'\n      api_key: sk-test\n      source: {{analysis_type: transcript, text_location: body.text}}"
    );
    let config = [
        "links:".to_string(),
        format!("  label:\n    module: links.analyze_and_label\n{grant}    options:\n{base}"),
        format!("  whole:\n    module: links.analyze_vcon\n{grant}    options:\n{base}"),
        format!("  engaged:\n    module: links.detect_engagement\n{grant}    options:\n{base}"),
        "  pause:\n    module: links.delay\n    options: {seconds: 0.05}".into(),
        format!("  alert:\n    module: links.post_analysis_to_slack\n{grant}    options:\n      slack_api_url: 'http://127.0.0.1:{port}/api'\n      token: xoxb-test\n      default_channel_name: alerts\n      url: 'https://app.example/vcons/{{vcon_id}}'"),
        "chains:".into(),
        format!("  main:\n    links: [label, whole, engaged, pause, alert]\n    ingress_lists: [{ingress}]\n    egress_lists: [{egress}]"),
    ]
    .join("\n");
    let server = Server::start(Backend::Embedded, &config, &[]).await;
    let (uuid, vcon) = fresh_vcon();
    let mut vcon = with_transcript(vcon);
    vcon["analysis"].as_array_mut().unwrap().extend([
        json!({"type": "summary", "dialog": 0, "vendor": "test", "encoding": "none", "body": "Charged twice; wants a refund."}),
        json!({"type": "customer_frustration", "dialog": 0, "vendor": "test", "encoding": "none", "body": "NEEDS REVIEW: very upset"}),
    ]);
    assert_eq!(server.post_vcon(&vcon, &ingress).await.status(), 201);
    server.wait_for_egress(&egress, &uuid, Duration::from_secs(30)).await;
    let (_, stored) = server.get_json(&format!("/api/vcon/{uuid}")).await;
    let tags = stored["attachments"].to_string();
    for tag in ["billing:billing", "refund:refund", "engagement:true"] {
        assert!(tags.contains(tag), "{tag} missing from {tags}");
    }
    let analysis = stored["analysis"].as_array().unwrap();
    let of_type =
        |t: &str| analysis.iter().find(|a| a["type"] == t).unwrap_or_else(|| panic!("no {t} in {analysis:?}"));
    assert_eq!(of_type("json_analysis")["encoding"], "json");
    assert!(of_type("json_analysis")["body"].as_str().unwrap_or_default().contains("negative"));
    assert_eq!(of_type("engagement_analysis")["body"], "true");
    assert_eq!(of_type("customer_frustration")["was_posted_to_slack"], true);

    let calls = seen.lock().unwrap().clone();
    let slack: Vec<&Value> = calls.iter().filter(|(p, _)| p == "api/chat.postMessage").map(|(_, b)| b).collect();
    assert!(!slack.is_empty(), "{calls:?}");
    assert_eq!(slack.last().unwrap()["channel"], "alerts");
    assert!(slack.last().unwrap().to_string().contains(&format!("https://app.example/vcons/{uuid}")));
    let whole = calls
        .iter()
        .find(|(_, b)| b["response_format"].is_object() && !b["messages"][0]["content"].to_string().contains("labels"));
    assert!(
        whole.is_some_and(|(_, b)| b["messages"][1]["content"].to_string().contains(&uuid)),
        "the whole vCon is sent"
    );
}
