//! What the Milvus backend embeds: the vCon's text, gathered in the Python
//! backend's order, and the party id it files the row under.

use serde_json::{Map, Value};

fn array<'a>(vcon: &'a Map<String, Value>, key: &str) -> &'a [Value] {
    vcon.get(key).and_then(Value::as_array).map_or(&[], Vec::as_slice)
}

fn str_at<'a>(value: &'a Value, key: &str) -> Option<&'a str> {
    value.get(key).and_then(Value::as_str).filter(|s| !s.is_empty())
}

/// An analysis body, parsed when it is JSON text.
fn body(analysis: &Value) -> Value {
    match analysis.get("body") {
        Some(Value::String(text)) => serde_json::from_str(text).unwrap_or_else(|_| Value::String(text.clone())),
        Some(other) => other.clone(),
        None => Value::Null,
    }
}

/// The text to embed, in the Python backend's order: legacy `transcript[].text`,
/// `transcript` analyses' `body.text`, `summary` analyses (text or `body.text`),
/// one `Party: <role> <name|id>.` line per party, `metadata.title`,
/// `metadata.description`, `metadata.created`, then the bodies of text dialogs.
pub fn extract_text(vcon: &Map<String, Value>) -> String {
    let mut parts: Vec<String> = Vec::new();
    for transcript in array(vcon, "transcript") {
        if let Some(text) = str_at(transcript, "text") {
            parts.push(text.to_string());
        }
    }
    let analysis = array(vcon, "analysis");
    let of_type = |kind: &'static str| analysis.iter().filter(move |a| str_at(a, "type") == Some(kind));
    for transcript in of_type("transcript") {
        if let Some(text) = str_at(&body(transcript), "text") {
            parts.push(text.to_string());
        }
    }
    for summary in of_type("summary") {
        match body(summary) {
            Value::String(text) if !text.is_empty() => parts.push(text),
            other => {
                if let Some(text) = str_at(&other, "text") {
                    parts.push(text.to_string());
                }
            }
        }
    }
    for (i, party) in array(vcon, "parties").iter().enumerate() {
        let role = str_at(party, "role").unwrap_or("party");
        let who =
            str_at(party, "name").map(String::from).or_else(|| party_identity(party)).unwrap_or_else(|| i.to_string());
        parts.push(format!("Party: {role} {who}."));
    }
    if let Some(metadata) = vcon.get("metadata") {
        for key in ["title", "description", "created"] {
            if let Some(text) = str_at(metadata, key) {
                parts.push(text.to_string());
            }
        }
    }
    for dialog in array(vcon, "dialog") {
        if str_at(dialog, "type") == Some("text")
            && let Some(text) = str_at(dialog, "body")
        {
            parts.push(text.to_string());
        }
    }
    parts.join("\n")
}

/// A party's identity: `uuid`, `tel:…`, `mailto:…`, `role:name`, name, role, or a
/// non-standard id field.
fn party_identity(party: &Value) -> Option<String> {
    if let Some(uuid) = str_at(party, "uuid") {
        return Some(uuid.to_string());
    }
    if let Some(tel) = str_at(party, "tel") {
        return Some(format!("tel:{tel}"));
    }
    if let Some(mailto) = str_at(party, "mailto") {
        return Some(format!("mailto:{mailto}"));
    }
    match (str_at(party, "role"), str_at(party, "name")) {
        (Some(role), Some(name)) => return Some(format!("{role}:{name}")),
        (None, Some(name)) => return Some(name.to_string()),
        (Some(role), None) => return Some(role.to_string()),
        (None, None) => {}
    }
    ["id", "party_id", "partyId"].iter().find_map(|key| match party.get(*key) {
        Some(Value::String(s)) if !s.is_empty() => Some(s.clone()),
        Some(Value::Number(n)) => Some(n.to_string()),
        _ => None,
    })
}

/// The row's `party_id`: the first party's identity, else `party_index:0`; with no
/// parties, `metadata.creator` or `no_party_info`.
pub fn extract_party_id(vcon: &Map<String, Value>) -> String {
    match array(vcon, "parties").first() {
        Some(party) => party_identity(party).unwrap_or_else(|| "party_index:0".into()),
        None => {
            vcon.get("metadata").and_then(|m| str_at(m, "creator")).map_or_else(|| "no_party_info".into(), String::from)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn map(value: Value) -> Map<String, Value> {
        value.as_object().cloned().unwrap()
    }

    #[test]
    fn text_is_gathered_in_the_python_order() {
        let vcon = map(json!({
            "transcript": [{"text": "legacy"}],
            "analysis": [
                {"type": "summary", "body": "a summary"},
                {"type": "transcript", "body": {"text": "spoken words"}},
                {"type": "summary", "body": "{\"text\": \"json summary\"}", "encoding": "json"},
                {"type": "sentiment", "body": "ignored"}
            ],
            "parties": [{"role": "agent", "name": "Alice"}, {"tel": "+15551234"}],
            "metadata": {"title": "Call", "description": "About billing"},
            "dialog": [{"type": "text", "body": "hello there"}, {"type": "recording", "body": "AAAA"}]
        }));
        assert_eq!(
            extract_text(&vcon),
            "legacy\nspoken words\na summary\njson summary\nParty: agent Alice.\nParty: party tel:+15551234.\nCall\nAbout billing\nhello there"
        );
        assert_eq!(extract_text(&map(json!({"dialog": [{"type": "recording"}]}))), "");
    }

    #[test]
    fn party_ids_follow_the_python_preference() {
        let id = |parties: Value| extract_party_id(&map(json!({"parties": parties})));
        assert_eq!(id(json!([{"uuid": "p1", "tel": "+1"}])), "p1");
        assert_eq!(id(json!([{"tel": "+1", "mailto": "a@b"}])), "tel:+1");
        assert_eq!(id(json!([{"mailto": "a@b"}])), "mailto:a@b");
        assert_eq!(id(json!([{"role": "agent", "name": "Al"}])), "agent:Al");
        assert_eq!(id(json!([{"name": "Al"}])), "Al");
        assert_eq!(id(json!([{"role": "agent"}])), "agent");
        assert_eq!(id(json!([{"partyId": 7}])), "7");
        assert_eq!(id(json!([{}])), "party_index:0");
        assert_eq!(extract_party_id(&map(json!({"metadata": {"creator": "me"}}))), "me");
        assert_eq!(extract_party_id(&map(json!({}))), "no_party_info");
    }
}
