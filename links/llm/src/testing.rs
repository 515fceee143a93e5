//! Helpers for the LLM links' unit tests (feature `testing`): a fake server that
//! answers requests from a script and records them, canned answers, and secrets
//! granted per test thread.

use std::cell::RefCell;
use std::collections::{HashMap, VecDeque};

use conserver_link_sdk::http::{HttpError, Request, Response};
use serde_json::{Value, json};

thread_local! {
    static SECRETS: RefCell<HashMap<String, String>> = RefCell::new(HashMap::new());
}

/// Make `pairs` the only secrets granted on this thread (each test runs on its
/// own thread; by default none is granted).
pub fn grant_secrets(pairs: &[(&str, &str)]) {
    SECRETS.with(|secrets| {
        *secrets.borrow_mut() = pairs.iter().map(|(k, v)| ((*k).to_string(), (*v).to_string())).collect();
    });
}

pub(crate) fn granted_secret(name: &str) -> Option<String> {
    SECRETS.with(|secrets| secrets.borrow().get(name).cloned())
}

/// A fake LLM server: answers each request with the next scripted answer and
/// records the requests. When the script runs out it answers with a connection
/// error saying so.
#[derive(Debug, Default)]
pub struct FakeServer {
    answers: RefCell<VecDeque<Result<Response, HttpError>>>,
    requests: RefCell<Vec<Request>>,
}

impl FakeServer {
    /// A server giving these answers, in order.
    pub fn new(answers: impl IntoIterator<Item = Result<Response, HttpError>>) -> Self {
        Self { answers: RefCell::new(answers.into_iter().collect()), requests: RefCell::default() }
    }

    /// A server giving these HTTP answers, in order.
    pub fn answering(answers: impl IntoIterator<Item = Response>) -> Self {
        Self::new(answers.into_iter().map(Ok))
    }

    /// The closure transport to hand to the link.
    pub fn transport(&self) -> impl Fn(&Request) -> Result<Response, HttpError> + '_ {
        move |request: &Request| {
            self.requests.borrow_mut().push(request.clone());
            self.answers
                .borrow_mut()
                .pop_front()
                .unwrap_or_else(|| Err(HttpError::Connection("the fake server has no more answers".into())))
        }
    }

    /// The requests received, in order.
    pub fn requests(&self) -> Vec<Request> {
        self.requests.borrow().clone()
    }

    /// The JSON bodies of the requests received (`null` for a body that is not JSON).
    pub fn bodies(&self) -> Vec<Value> {
        self.requests.borrow().iter().map(|r| serde_json::from_slice(&r.body).unwrap_or(Value::Null)).collect()
    }
}

/// A chat-completions answer whose `choices[0].message.content` is `content`,
/// with usage 11 prompt and 7 completion tokens.
pub fn chat_answer(content: &str) -> Response {
    let body = json!({
        "id": "chatcmpl-test",
        "object": "chat.completion",
        "model": "test-model",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 11, "completion_tokens": 7, "total_tokens": 18}
    });
    Response::new(200, body.to_string())
}

/// A Responses-API answer whose `output_text` is `text`.
pub fn responses_answer(text: &str) -> Response {
    let body = json!({
        "id": "resp-test",
        "object": "response",
        "output": [{"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": text}]}]
    });
    Response::new(200, body.to_string())
}

/// An answer with this status and an OpenAI-style error body.
pub fn status(code: u16, message: &str) -> Response {
    Response::new(code, json!({"error": {"message": message}}).to_string())
}

/// A context for link `link` with `options`, the vCon uuid `uuid-1` and no
/// secrets granted.
pub fn context(link: &str, options: Value) -> conserver_link_sdk::Context {
    grant_secrets(&[]);
    let mut ctx = conserver_link_sdk::Context::for_test(link, options);
    ctx.vcon_uuid = "uuid-1".into();
    ctx
}

/// Options with an OpenAI key and instant retries, plus `extra`.
pub fn with_key(extra: Value) -> Value {
    let mut options = json!({"OPENAI_API_KEY": "sk-test", "retry_backoff_secs": 0});
    if let (Some(map), Value::Object(extra)) = (options.as_object_mut(), extra) {
        map.extend(extra);
    }
    options
}

/// The analyses of type `kind` in the vCon the link returned (panics when the
/// link left the vCon unchanged).
#[allow(clippy::expect_used)] // test support: a missing vCon fails the test
pub fn analysis_of(verdict: &conserver_link_sdk::Verdict, kind: &str) -> Vec<Value> {
    let vcon = verdict.vcon().expect("the vCon was changed");
    crate::source::analysis_entries(vcon).into_iter().filter(|a| a["type"] == kind).collect()
}
