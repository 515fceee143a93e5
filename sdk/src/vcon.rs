//! The vCon as a link sees it: a JSON object that keeps every field in its original
//! order, with typed views for the parts links usually touch.

use indexmap::IndexMap;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use serde_json::{Map, Value};

use conserver_python_json as python_json;

/// Why a vCon could not be read or changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VconError(String);

impl std::fmt::Display for VconError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for VconError {}

/// A party to the conversation. Unknown fields are kept in `extra`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Party {
    /// Telephone number (`tel:` URI or E.164 digits).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tel: Option<String>,
    /// E-mail address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mailto: Option<String>,
    /// Display name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Role in the conversation (`agent`, `customer`, …).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
    /// Every other field, as sent.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// One dialog entry (a recording, a text message, …). Unknown fields are kept.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Dialog {
    /// `recording`, `text`, `transfer`, `incomplete`, …
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    /// Start time (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start: Option<String>,
    /// Duration in seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration: Option<f64>,
    /// Indexes into `parties` (an index or a list of them, as the spec allows).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parties: Option<Value>,
    /// Inline content.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body: Option<String>,
    /// How `body` is encoded: `none`, `base64url`, `json`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub encoding: Option<String>,
    /// Where the content can be fetched.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// Media type (0.4.0 name).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mediatype: Option<String>,
    /// Every other field, as sent.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// One analysis entry (a transcript, a summary, …). Unknown fields are kept.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Analysis {
    /// What kind of analysis (`transcript`, `summary`, …).
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    /// The dialog index (or indexes) this analysis is about.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dialog: Option<Value>,
    /// Who produced it (`openai`, `deepgram`, …).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vendor: Option<String>,
    /// The result: a string, or any JSON value before encoding.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body: Option<Value>,
    /// How `body` is encoded: `none`, `json`, `base64url`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub encoding: Option<String>,
    /// Every other field, as sent.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// One attachment. Unknown fields are kept.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Attachment {
    /// What the attachment is for (0.4.0 name; older vCons use `type`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub purpose: Option<String>,
    /// The content.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body: Option<Value>,
    /// How `body` is encoded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub encoding: Option<String>,
    /// Every other field, as sent.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// A vCon document. Every field is kept in its original order, and fields a link
/// does not touch are written back exactly as received (the document is parsed
/// lazily: only the fields a link reads or changes are decoded).
#[derive(Debug, Clone)]
pub struct Vcon {
    repr: Repr,
}

#[derive(Debug, Clone)]
enum Repr {
    /// Top-level fields, each still raw JSON text until used.
    Lazy(IndexMap<String, Slot>),
    /// Fully decoded (after [`Vcon::as_map_mut`] or [`Vcon::from_map`]).
    Full(Map<String, Value>),
}

#[derive(Debug, Clone)]
enum Slot {
    Raw(Box<RawValue>),
    Value(Value),
}

impl Slot {
    fn to_value(&self) -> Option<Value> {
        match self {
            Slot::Raw(raw) => serde_json::from_str(raw.get()).ok(),
            Slot::Value(value) => Some(value.clone()),
        }
    }

    /// Decode in place and return the value.
    fn value_mut(&mut self) -> &mut Value {
        if let Slot::Raw(raw) = self {
            *self = Slot::Value(serde_json::from_str(raw.get()).unwrap_or(Value::Null));
        }
        match self {
            Slot::Value(value) => value,
            Slot::Raw(_) => unreachable!("decoded just above"),
        }
    }
}

impl Serialize for Slot {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Slot::Raw(raw) => raw.serialize(serializer),
            Slot::Value(value) => value.serialize(serializer),
        }
    }
}

impl Default for Vcon {
    fn default() -> Self {
        Self { repr: Repr::Full(Map::new()) }
    }
}

impl PartialEq for Vcon {
    fn eq(&self, other: &Self) -> bool {
        self.to_map() == other.to_map()
    }
}

impl Vcon {
    /// Parse a vCon from JSON text. The text must be a JSON object.
    pub fn from_json(text: &str) -> Result<Self, VconError> {
        let fields: IndexMap<String, Box<RawValue>> =
            serde_json::from_str(text).map_err(|e| VconError(format!("a vCon must be a JSON object: {e}")))?;
        Ok(Self { repr: Repr::Lazy(fields.into_iter().map(|(k, v)| (k, Slot::Raw(v))).collect()) })
    }

    /// Wrap an already parsed JSON object.
    pub fn from_map(map: Map<String, Value>) -> Self {
        Self { repr: Repr::Full(map) }
    }

    /// Serialise back to compact JSON; untouched fields keep their original text.
    pub fn to_json(&self) -> Result<String, VconError> {
        let result = match &self.repr {
            Repr::Lazy(fields) => serde_json::to_string(fields),
            Repr::Full(map) => serde_json::to_string(map),
        };
        result.map_err(|e| VconError(format!("cannot serialise the vCon: {e}")))
    }

    /// A decoded copy of the whole document.
    pub fn to_map(&self) -> Map<String, Value> {
        match &self.repr {
            Repr::Lazy(fields) => fields.iter().filter_map(|(k, slot)| Some((k.clone(), slot.to_value()?))).collect(),
            Repr::Full(map) => map.clone(),
        }
    }

    /// The whole document as a mutable JSON object (decodes every field), for
    /// changes the helpers do not cover.
    pub fn as_map_mut(&mut self) -> &mut Map<String, Value> {
        if let Repr::Lazy(fields) = &mut self.repr {
            let map = std::mem::take(fields)
                .into_iter()
                .map(|(k, mut slot)| {
                    let value = std::mem::take(slot.value_mut());
                    (k, value)
                })
                .collect();
            self.repr = Repr::Full(map);
        }
        match &mut self.repr {
            Repr::Full(map) => map,
            Repr::Lazy(_) => unreachable!("converted just above"),
        }
    }

    /// A decoded copy of one top-level field.
    pub fn get(&self, key: &str) -> Option<Value> {
        match &self.repr {
            Repr::Lazy(fields) => fields.get(key).and_then(Slot::to_value),
            Repr::Full(map) => map.get(key).cloned(),
        }
    }

    /// One top-level field, decoded for change (created as `null` when absent).
    pub fn field_mut(&mut self, key: &str) -> &mut Value {
        match &mut self.repr {
            Repr::Lazy(fields) => fields.entry(key.to_string()).or_insert(Slot::Value(Value::Null)).value_mut(),
            Repr::Full(map) => map.entry(key.to_string()).or_insert(Value::Null),
        }
    }

    /// Set a top-level field.
    pub fn set(&mut self, key: &str, value: Value) {
        *self.field_mut(key) = value;
    }

    /// The vCon's uuid, if it has one.
    pub fn uuid(&self) -> Option<String> {
        self.get("uuid").and_then(|v| v.as_str().map(String::from))
    }

    /// The parties, typed. Entries that are not objects are skipped.
    pub fn parties(&self) -> Vec<Party> {
        self.typed_entries("parties")
    }

    /// The dialog entries, typed. Entries that are not objects are skipped.
    pub fn dialog(&self) -> Vec<Dialog> {
        self.typed_entries("dialog")
    }

    /// The analysis entries, typed.
    pub fn analysis(&self) -> Vec<Analysis> {
        self.typed_entries("analysis")
    }

    /// The attachments, typed.
    pub fn attachments(&self) -> Vec<Attachment> {
        self.typed_entries("attachments")
    }

    fn typed_entries<T: serde::de::DeserializeOwned>(&self, key: &str) -> Vec<T> {
        match self.get(key) {
            Some(Value::Array(items)) => items.into_iter().filter_map(|v| serde_json::from_value(v).ok()).collect(),
            _ => Vec::new(),
        }
    }

    /// The array under `key`, created empty when absent (or null).
    fn array_mut(&mut self, key: &str) -> Result<&mut Vec<Value>, VconError> {
        let slot = self.field_mut(key);
        if slot.is_null() {
            *slot = Value::Array(Vec::new());
        }
        slot.as_array_mut().ok_or_else(|| VconError(format!("`{key}` must be an array")))
    }

    /// Append an analysis entry. A JSON object or array body is stored as a JSON
    /// string with `encoding: "json"`, as the Python conserver does.
    pub fn add_analysis(&mut self, mut analysis: Analysis) -> Result<(), VconError> {
        if let Some(body @ (Value::Object(_) | Value::Array(_))) = &analysis.body {
            analysis.body = Some(Value::String(python_json::dumps(body)));
            analysis.encoding = Some("json".into());
        }
        let value = serde_json::to_value(analysis).map_err(|e| VconError(e.to_string()))?;
        self.array_mut("analysis")?.push(value);
        Ok(())
    }

    /// Append an attachment entry.
    pub fn add_attachment(&mut self, attachment: Attachment) -> Result<(), VconError> {
        let value = serde_json::to_value(attachment).map_err(|e| VconError(e.to_string()))?;
        self.array_mut("attachments")?.push(value);
        Ok(())
    }

    /// Add the tag `name:value` to the tags attachment, creating it when absent.
    ///
    /// The format is the Python conserver's: the first attachment whose `purpose`
    /// (or legacy `type`) is `"tags"`, whose body is a JSON-encoded string list of
    /// `"name:value"` entries with `encoding: "json"`. A legacy native-list body is
    /// read and rewritten in that form. Tags are appended without de-duplication.
    pub fn add_tag(&mut self, name: &str, value: &str) -> Result<(), VconError> {
        let attachments = self.array_mut("attachments")?;
        let position = attachments.iter().position(is_tags_attachment);
        let entry = match position {
            Some(i) => &mut attachments[i],
            None => {
                let mut fresh = Map::new();
                fresh.insert("purpose".into(), Value::String("tags".into()));
                fresh.insert("body".into(), Value::String("[]".into()));
                fresh.insert("encoding".into(), Value::String("json".into()));
                attachments.push(Value::Object(fresh));
                let last = attachments.len() - 1;
                &mut attachments[last]
            }
        };
        let Value::Object(entry) = entry else {
            return Err(VconError("the tags attachment is not an object".into()));
        };
        let mut tags = tag_list(entry.get("body"));
        tags.push(format!("{name}:{value}"));
        let list = Value::Array(tags.into_iter().map(Value::String).collect());
        entry.insert("body".into(), Value::String(python_json::dumps(&list)));
        entry.insert("encoding".into(), Value::String("json".into()));
        Ok(())
    }

    /// All tags as `(name, value)` pairs, from the tags attachment.
    pub fn tags(&self) -> Vec<(String, String)> {
        let Some(Value::Array(attachments)) = self.get("attachments") else {
            return Vec::new();
        };
        attachments
            .iter()
            .find(|a| is_tags_attachment(a))
            .map(|a| tag_list(a.get("body")))
            .unwrap_or_default()
            .into_iter()
            .map(|t| match t.split_once(':') {
                Some((n, v)) => (n.to_string(), v.to_string()),
                None => (t, String::new()),
            })
            .collect()
    }

    /// The value of the first tag called `name` (the text after the first `:`).
    pub fn get_tag(&self, name: &str) -> Option<String> {
        self.tags().into_iter().find(|(n, _)| n == name).map(|(_, v)| v)
    }
}

fn is_tags_attachment(entry: &Value) -> bool {
    let label = |key: &str| entry.get(key).and_then(Value::as_str) == Some("tags");
    label("purpose") || label("type")
}

/// The tag strings of a tags body: a JSON-encoded string list, or a native list.
fn tag_list(body: Option<&Value>) -> Vec<String> {
    let decoded;
    let list = match body {
        Some(Value::String(text)) => {
            decoded = serde_json::from_str::<Value>(text).unwrap_or(Value::Null);
            &decoded
        }
        Some(other) => other,
        None => return Vec::new(),
    };
    match list {
        Value::Array(items) => items
            .iter()
            .map(|item| match item {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            })
            .collect(),
        _ => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn add_tag_creates_the_python_tags_attachment() {
        let mut vcon = Vcon::from_json(r#"{"uuid":"u","attachments":[]}"#).unwrap();
        vcon.add_tag("iron", "iron").unwrap();
        vcon.add_tag("maiden", "maiden").unwrap();
        assert_eq!(
            vcon.get("attachments").unwrap(),
            json!([{"purpose": "tags", "body": "[\"iron:iron\", \"maiden:maiden\"]", "encoding": "json"}])
        );
        assert_eq!(vcon.get_tag("maiden").as_deref(), Some("maiden"));
    }

    #[test]
    fn add_tag_reuses_a_legacy_typed_attachment_with_a_native_body() {
        let mut vcon =
            Vcon::from_json(r#"{"attachments":[{"type":"tags","body":["a:b"],"encoding":"none"}]}"#).unwrap();
        vcon.add_tag("c", "d").unwrap();
        assert_eq!(vcon.tags(), vec![("a".into(), "b".into()), ("c".into(), "d".into())]);
        assert_eq!(vcon.get("attachments").unwrap()[0]["encoding"], json!("json"));
    }

    #[test]
    fn unknown_fields_key_order_and_number_forms_survive_a_round_trip() {
        let text = r#"{"zeta":1.50,"uuid":"u","alpha":{"nested":[1e2, 2]},"parties":[{"tel":"+1","x-custom":true}]}"#;
        let mut vcon = Vcon::from_json(text).unwrap();
        assert_eq!(vcon.to_json().unwrap(), text);
        assert_eq!(vcon.parties()[0].extra["x-custom"], json!(true));
        vcon.add_tag("a", "b").unwrap();
        assert!(vcon.to_json().unwrap().starts_with(r#"{"zeta":1.50,"uuid":"u","alpha":{"nested":[1e2, 2]},"#));
        let full = vcon.as_map_mut().clone();
        assert_eq!(full.keys().collect::<Vec<_>>(), ["zeta", "uuid", "alpha", "parties", "attachments"]);
        assert_eq!(vcon.uuid().as_deref(), Some("u"));
    }

    #[test]
    fn object_analysis_bodies_are_stored_as_json_strings() {
        let mut vcon = Vcon::default();
        let body = json!({"k": "v"});
        vcon.add_analysis(Analysis { kind: Some("summary".into()), body: Some(body), ..Default::default() }).unwrap();
        assert_eq!(vcon.analysis()[0].body, Some(json!("{\"k\": \"v\"}")));
        assert_eq!(vcon.analysis()[0].encoding.as_deref(), Some("json"));
    }

    #[test]
    fn non_object_documents_are_refused() {
        assert!(Vcon::from_json("[]").is_err());
        assert!(Vcon::from_json("not json").is_err());
    }
}
