//! Chat completions: the request body and the answer's
//! `choices[0].message.content` and `usage`.

use conserver_link_sdk::LinkError;
use conserver_link_sdk::http::Response;
use serde_json::{Map, Value, json};

/// A chat-completions request.
#[derive(Debug, Clone, PartialEq)]
pub struct ChatRequest {
    /// The model (an Azure deployment name under Azure).
    pub model: String,
    /// `(role, content)` pairs, in order.
    pub messages: Vec<(String, String)>,
    /// `temperature`, sent as given when set.
    pub temperature: Option<Value>,
    /// `response_format`, sent as given when set.
    pub response_format: Option<Value>,
}

impl ChatRequest {
    /// A system message followed by a user message.
    pub fn new(model: &str, system: &str, user: &str) -> Self {
        Self {
            model: model.to_string(),
            messages: vec![("system".to_string(), system.to_string()), ("user".to_string(), user.to_string())],
            temperature: None,
            response_format: None,
        }
    }

    /// Set `temperature`.
    #[must_use]
    pub fn temperature(mut self, temperature: Value) -> Self {
        self.temperature = Some(temperature);
        self
    }

    /// Set (or, with `None`, leave out) `response_format`.
    #[must_use]
    pub fn response_format(mut self, format: Option<Value>) -> Self {
        self.response_format = format;
        self
    }

    /// The JSON body.
    pub fn to_json(&self) -> Value {
        let mut body = Map::new();
        body.insert("model".into(), json!(self.model));
        let messages = self.messages.iter().map(|(role, content)| json!({"role": role, "content": content}));
        body.insert("messages".into(), Value::Array(messages.collect()));
        if let Some(temperature) = &self.temperature {
            body.insert("temperature".into(), temperature.clone());
        }
        if let Some(format) = &self.response_format {
            body.insert("response_format".into(), format.clone());
        }
        Value::Object(body)
    }
}

/// Token counts of an answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Usage {
    /// Tokens in the prompt.
    pub prompt_tokens: u64,
    /// Tokens in the completion.
    pub completion_tokens: u64,
}

/// What a chat completion answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChatCompletion {
    /// `choices[0].message.content`.
    pub content: String,
    /// `usage`, when the server reported it.
    pub usage: Option<Usage>,
}

/// Read a successful chat-completions answer from `url`. An answer without text
/// content (not JSON, no choices, a refusal or tool call only) is a retryable
/// error: the model may answer properly next time.
pub fn parse(response: &Response, url: &str) -> Result<ChatCompletion, LinkError> {
    let bad = |why: &str| LinkError::retryable(format!("the chat completion from {url} {why}"));
    let body: Value = response.json().map_err(|e| bad(&format!("is not JSON: {e}")))?;
    let content = body
        .pointer("/choices/0/message/content")
        .and_then(Value::as_str)
        .ok_or_else(|| bad("has no choices[0].message.content text"))?;
    let usage = body.get("usage").and_then(|usage| {
        Some(Usage {
            prompt_tokens: usage.get("prompt_tokens")?.as_u64()?,
            completion_tokens: usage.get("completion_tokens")?.as_u64()?,
        })
    });
    Ok(ChatCompletion { content: content.to_string(), usage })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::chat_answer;

    #[test]
    fn the_body_has_model_messages_and_optional_settings() {
        let plain = ChatRequest::new("gpt-5", "sys", "user text");
        assert_eq!(
            plain.to_json(),
            json!({"model": "gpt-5", "messages": [
                {"role": "system", "content": "sys"}, {"role": "user", "content": "user text"}
            ]})
        );
        let full = plain.temperature(json!(0)).response_format(Some(json!({"type": "json_object"})));
        let body = full.to_json();
        assert_eq!(body["temperature"].to_string(), "0", "an integer temperature stays an integer");
        assert_eq!(body["response_format"], json!({"type": "json_object"}));
        assert_eq!(full.response_format(None).to_json().get("response_format"), None);
    }

    #[test]
    fn content_and_usage_are_read() {
        let answer = parse(&chat_answer("hello"), "u").unwrap();
        assert_eq!(
            answer,
            ChatCompletion { content: "hello".into(), usage: Some(Usage { prompt_tokens: 11, completion_tokens: 7 }) }
        );
        let no_usage = Response::new(200, r#"{"choices":[{"message":{"content":"x"}}]}"#);
        assert_eq!(parse(&no_usage, "u").unwrap().usage, None);
    }

    #[test]
    fn answers_without_text_are_retryable_errors() {
        for body in
            ["not json", "{}", r#"{"choices":[]}"#, r#"{"choices":[{"message":{"content":null,"refusal":"no"}}]}"#]
        {
            let err = parse(&Response::new(200, body), "https://api/x").unwrap_err();
            assert!(err.retryable, "{body}");
            assert!(err.message.starts_with("the chat completion from https://api/x "), "{}", err.message);
        }
    }
}
