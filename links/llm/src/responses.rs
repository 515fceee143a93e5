//! The OpenAI Responses API (`POST /v1/responses`): the request body and the
//! answer's `output_text` (what the Python SDK's `response.output_text` returns:
//! the `output_text` parts of the `message` outputs, joined).

use conserver_link_sdk::LinkError;
use conserver_link_sdk::http::Response;
use serde_json::{Map, Value, json};

/// A Responses-API request with a text input.
#[derive(Debug, Clone, PartialEq)]
pub struct ResponsesRequest {
    /// The model.
    pub model: String,
    /// The input text.
    pub input: String,
    /// `temperature`, sent as given when set.
    pub temperature: Option<Value>,
}

impl ResponsesRequest {
    /// The JSON body.
    pub fn to_json(&self) -> Value {
        let mut body = Map::new();
        body.insert("model".into(), json!(self.model));
        body.insert("input".into(), json!(self.input));
        if let Some(temperature) = &self.temperature {
            body.insert("temperature".into(), temperature.clone());
        }
        Value::Object(body)
    }
}

/// The `output_text` of a successful answer from `url`.
pub fn output_text(response: &Response, url: &str) -> Result<String, LinkError> {
    let bad = |why: &str| LinkError::retryable(format!("the response from {url} {why}"));
    let body: Value = response.json().map_err(|e| bad(&format!("is not JSON: {e}")))?;
    let Some(Value::Array(outputs)) = body.get("output") else {
        return Err(bad("has no `output` list"));
    };
    let text: String = outputs
        .iter()
        .filter(|output| output.get("type").and_then(Value::as_str) == Some("message"))
        .filter_map(|output| output.get("content").and_then(Value::as_array))
        .flatten()
        .filter(|part| part.get("type").and_then(Value::as_str) == Some("output_text"))
        .filter_map(|part| part.get("text").and_then(Value::as_str))
        .collect();
    Ok(text)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::responses_answer;

    #[test]
    fn the_body_has_model_input_and_temperature() {
        let request = ResponsesRequest { model: "gpt-4.1".into(), input: "hi".into(), temperature: Some(json!(0.2)) };
        assert_eq!(request.to_json(), json!({"model": "gpt-4.1", "input": "hi", "temperature": 0.2}));
        let bare = ResponsesRequest { temperature: None, ..request };
        assert_eq!(bare.to_json(), json!({"model": "gpt-4.1", "input": "hi"}));
    }

    #[test]
    fn output_text_joins_the_message_text_parts() {
        assert_eq!(output_text(&responses_answer(" True\n"), "u").unwrap(), " True\n");
        let body = json!({"output": [
            {"type": "reasoning", "content": [{"type": "output_text", "text": "ignored"}]},
            {"type": "message", "content": [
                {"type": "output_text", "text": "tr"}, {"type": "refusal", "refusal": "x"}, {"type": "output_text", "text": "ue"}
            ]}
        ]});
        assert_eq!(output_text(&Response::new(200, body.to_string()), "u").unwrap(), "true");
        assert_eq!(output_text(&Response::new(200, r#"{"output": []}"#), "u").unwrap(), "");
    }

    #[test]
    fn malformed_answers_are_retryable_errors() {
        for body in ["nope", "{}", r#"{"output": "x"}"#] {
            let err = output_text(&Response::new(200, body), "https://api/r").unwrap_err();
            assert!(err.retryable);
            assert!(err.message.starts_with("the response from https://api/r "), "{}", err.message);
        }
    }
}
