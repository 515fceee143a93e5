//! [`Llm`]: a provider, a transport and a retry policy, sharing one time budget
//! for the whole link call.

use std::time::Duration;

use conserver_link_sdk::http::{Request, Transport};
use conserver_link_sdk::{Context, LinkError};

use crate::chat::{self, ChatCompletion, ChatRequest};
use crate::provider::Provider;
use crate::responses::{self, ResponsesRequest};
use crate::retry::{self, Clock, RetryPolicy, SystemClock};

/// Time allowed for an answer to start (Python's client timeout; the host's own
/// cap still applies).
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(120);

/// An OpenAI-compatible client for one link call.
pub struct Llm<'a> {
    provider: Provider,
    transport: &'a dyn Transport,
    retry: RetryPolicy,
    clock: Box<dyn Clock + 'a>,
}

impl<'a> Llm<'a> {
    /// A client whose retry budget counts from now.
    pub fn new(provider: Provider, transport: &'a dyn Transport, retry: RetryPolicy) -> Self {
        Self { provider, transport, retry, clock: Box::new(SystemClock::start()) }
    }

    /// The client the link's options describe (provider and `retry_*`). Missing
    /// credentials are a fatal error.
    pub fn from_context(ctx: &Context, transport: &'a dyn Transport) -> Result<Self, LinkError> {
        let provider = Provider::from_context(ctx)?;
        Ok(Self::new(provider, transport, RetryPolicy::from_context(ctx)?))
    }

    /// Use another clock (tests).
    #[must_use]
    pub fn with_clock(mut self, clock: impl Clock + 'a) -> Self {
        self.clock = Box::new(clock);
        self
    }

    /// The provider requests go to.
    pub fn provider(&self) -> &Provider {
        &self.provider
    }

    /// Ask for a chat completion.
    pub fn chat(&self, request: &ChatRequest) -> Result<ChatCompletion, LinkError> {
        let url = self.provider.chat_url(&request.model);
        let response = self.post(&url, &request.to_json(), "chat completion")?;
        chat::parse(&response, &url)
    }

    /// Ask the Responses API; returns the answer's `output_text`.
    pub fn respond(&self, request: &ResponsesRequest) -> Result<String, LinkError> {
        let url = self.provider.responses_url();
        let response = self.post(&url, &request.to_json(), "response")?;
        responses::output_text(&response, &url)
    }

    fn post(
        &self,
        url: &str,
        body: &serde_json::Value,
        what: &str,
    ) -> Result<conserver_link_sdk::http::Response, LinkError> {
        let request = self.provider.authorize(Request::post(url).json(body)?.timeout(REQUEST_TIMEOUT));
        retry::send(self.transport, &request, &self.retry, &*self.clock, &format!("{what} request to {url}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{FakeServer, chat_answer, grant_secrets, responses_answer, status};
    use serde_json::json;

    fn ctx(options: serde_json::Value) -> Context {
        grant_secrets(&[]);
        Context::for_test("l", options)
    }

    #[test]
    fn chat_posts_json_with_credentials_and_a_timeout() {
        let server = FakeServer::answering([chat_answer("done")]);
        let transport = server.transport();
        let llm = Llm::from_context(&ctx(json!({"OPENAI_API_KEY": "sk"})), &transport).unwrap();
        let request = ChatRequest::new("gpt-4", "s", "u").temperature(json!(0));
        assert_eq!(llm.chat(&request).unwrap().content, "done");
        let sent = &server.requests()[0];
        assert_eq!(sent.method, "POST");
        assert_eq!(sent.url, "https://api.openai.com/v1/chat/completions");
        assert_eq!(sent.header_value("authorization"), Some("Bearer sk"));
        assert_eq!(sent.header_value("content-type"), Some("application/json"));
        assert_eq!(sent.timeout, Some(REQUEST_TIMEOUT));
        assert_eq!(server.bodies()[0], request.to_json());
    }

    #[test]
    fn respond_posts_to_the_responses_endpoint() {
        let server = FakeServer::answering([responses_answer("true")]);
        let transport = server.transport();
        let llm = Llm::from_context(&ctx(json!({"base_url": "http://local:8000/v1"})), &transport).unwrap();
        let request = ResponsesRequest { model: "m".into(), input: "i".into(), temperature: None };
        assert_eq!(llm.respond(&request).unwrap(), "true");
        assert_eq!(server.requests()[0].url, "http://local:8000/v1/responses");
        assert_eq!(server.requests()[0].header_value("authorization"), None);
    }

    #[test]
    fn failures_say_what_was_requested_and_whether_to_retry() {
        let server = FakeServer::answering([status(400, "bad model")]);
        let transport = server.transport();
        let llm = Llm::from_context(&ctx(json!({"OPENAI_API_KEY": "sk"})), &transport).unwrap();
        let err = llm.chat(&ChatRequest::new("nope", "s", "u")).unwrap_err();
        assert!(!err.retryable);
        assert!(
            err.message.starts_with(
                "chat completion request to https://api.openai.com/v1/chat/completions failed: the server answered 400"
            ),
            "{}",
            err.message
        );
        assert!(!err.message.contains("sk"), "no key in messages");

        let server = FakeServer::answering([status(503, "busy"), status(503, "busy")]);
        let transport = server.transport();
        let options = json!({"OPENAI_API_KEY": "sk", "retry_attempts": 2, "retry_backoff_secs": 0});
        let llm = Llm::from_context(&ctx(options), &transport).unwrap();
        let err = llm.chat(&ChatRequest::new("m", "s", "u")).unwrap_err();
        assert!(err.retryable);
        assert_eq!(server.requests().len(), 2);
    }

    #[test]
    fn missing_credentials_are_fatal() {
        let server = FakeServer::default();
        let transport = server.transport();
        let err = Llm::from_context(&ctx(json!({})), &transport).err().unwrap();
        assert!(!err.retryable);
        assert!(err.message.starts_with("no LLM credentials"), "{}", err.message);
    }
}
