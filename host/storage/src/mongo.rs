//! `storage.mongo` (the official `mongodb` driver): the Python backend's document
//! shape — the vCon with `_id` = its uuid, `created_at` and every `dialog[].start`
//! as BSON dates so they can be queried as dates — upserted with `$set` on `_id`.
//! `get` turns the dates back into ISO strings in Python's `+00:00` form (BSON
//! dates keep milliseconds; a timestamp written without an offset is UTC) and
//! drops `_id`. Unlike Python, a date that does not
//! parse (or a dialog without `start`) is kept as written instead of failing the
//! save, and `delete` is offered.

use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, SecondsFormat, Utc};
use mongodb::bson::{self, Bson, Document, doc};
use mongodb::options::ClientOptions;
use mongodb::{Client, Collection};
use serde::Deserialize;
use serde_json::{Map, Number, Value};
use tokio::sync::OnceCell;

use crate::{Storage, StorageError};

/// Options of `storage.mongo` (the Python names and defaults).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MongoOptions {
    /// Accepted for compatibility; unused.
    pub name: Option<String>,
    /// Connection string (`mongodb://user:pass@host:27017/?…`).
    pub url: String,
    /// Database name.
    pub database: String,
    /// Collection name.
    pub collection: String,
}

impl Default for MongoOptions {
    fn default() -> Self {
        Self {
            name: None,
            url: "mongodb://localhost:27017/".into(),
            database: "conserver".into(),
            collection: "vcons".into(),
        }
    }
}

/// The MongoDB storage.
#[derive(Debug)]
pub struct MongoStorage {
    name: String,
    options: MongoOptions,
    collection: OnceCell<Collection<Document>>,
}

impl MongoStorage {
    /// Check the options (the connection string is parsed when the storage is
    /// first used, since a `mongodb+srv` URL needs DNS).
    pub fn new(name: &str, value: Value) -> Result<Self, StorageError> {
        let invalid = |message: String| StorageError::Options { storage: name.to_string(), message };
        let options: MongoOptions = if value.is_null() {
            MongoOptions::default()
        } else {
            serde_json::from_value(value).map_err(|e| invalid(e.to_string()))?
        };
        if !options.url.starts_with("mongodb://") && !options.url.starts_with("mongodb+srv://") {
            return Err(invalid(format!(
                "url `{}` must start with mongodb:// or mongodb+srv://",
                conserver_core::redact::redact_url(&options.url)
            )));
        }
        if options.database.is_empty() || options.collection.is_empty() {
            return Err(invalid("`database` and `collection` must not be empty".into()));
        }
        Ok(Self { name: name.to_string(), options, collection: OnceCell::new() })
    }

    fn failed(&self, operation: &'static str) -> impl Fn(mongodb::error::Error) -> StorageError + '_ {
        move |e| StorageError::Backend { storage: self.name.clone(), operation, message: e.to_string() }
    }

    async fn collection(&self) -> Result<&Collection<Document>, StorageError> {
        self.collection
            .get_or_try_init(|| async {
                let mut options = ClientOptions::parse(&self.options.url).await.map_err(self.failed("connect"))?;
                options.connect_timeout.get_or_insert(Duration::from_secs(5));
                options.server_selection_timeout.get_or_insert(Duration::from_secs(10));
                options.app_name.get_or_insert_with(|| "conserver".into());
                let client = Client::with_options(options).map_err(self.failed("connect"))?;
                Ok(client.database(&self.options.database).collection(&self.options.collection))
            })
            .await
    }
}

/// The document Python writes: the vCon with `created_at` and `dialog[].start` as
/// BSON dates (when they parse).
pub fn to_document(vcon: &Map<String, Value>) -> Document {
    let mut document = Document::new();
    for (key, value) in vcon {
        let converted = match (key.as_str(), value) {
            ("created_at", Value::String(text)) => date(text).unwrap_or_else(|| to_bson(value)),
            ("dialog", Value::Array(dialogs)) => Bson::Array(
                dialogs
                    .iter()
                    .map(|dialog| match dialog {
                        Value::Object(fields) => Bson::Document(
                            fields
                                .iter()
                                .map(|(k, v)| {
                                    let converted = match (k.as_str(), v) {
                                        ("start", Value::String(text)) => date(text).unwrap_or_else(|| to_bson(v)),
                                        _ => to_bson(v),
                                    };
                                    (k.clone(), converted)
                                })
                                .collect(),
                        ),
                        other => to_bson(other),
                    })
                    .collect(),
            ),
            _ => to_bson(value),
        };
        document.insert(key.clone(), converted);
    }
    document
}

/// An ISO 8601 timestamp as a BSON date; one without an offset is taken as UTC
/// (as Python's `fromisoformat` + BSON do).
fn date(text: &str) -> Option<Bson> {
    let millis = match DateTime::parse_from_rfc3339(text) {
        Ok(parsed) => parsed.timestamp_millis(),
        Err(_) => {
            chrono::NaiveDateTime::parse_from_str(text, "%Y-%m-%dT%H:%M:%S%.f").ok()?.and_utc().timestamp_millis()
        }
    };
    Some(Bson::DateTime(bson::DateTime::from_millis(millis)))
}

/// JSON to BSON: integers that fit are Int64, other numbers Double.
pub fn to_bson(value: &Value) -> Bson {
    match value {
        Value::Null => Bson::Null,
        Value::Bool(b) => Bson::Boolean(*b),
        Value::Number(n) => match n.as_i64() {
            Some(i) => Bson::Int64(i),
            None => Bson::Double(n.as_f64().unwrap_or(f64::NAN)),
        },
        Value::String(s) => Bson::String(s.clone()),
        Value::Array(items) => Bson::Array(items.iter().map(to_bson).collect()),
        Value::Object(fields) => Bson::Document(fields.iter().map(|(k, v)| (k.clone(), to_bson(v))).collect()),
    }
}

/// BSON back to JSON; dates become ISO strings in Python's `isoformat()` form.
pub fn to_json(value: &Bson) -> Value {
    match value {
        Bson::Null | Bson::Undefined => Value::Null,
        Bson::Boolean(b) => Value::Bool(*b),
        Bson::Int32(i) => Value::Number((*i).into()),
        Bson::Int64(i) => Value::Number((*i).into()),
        Bson::Double(f) => Number::from_f64(*f).map_or(Value::Null, Value::Number),
        Bson::String(s) | Bson::Symbol(s) => Value::String(s.clone()),
        Bson::Array(items) => Value::Array(items.iter().map(to_json).collect()),
        Bson::Document(fields) => Value::Object(fields.iter().map(|(k, v)| (k.clone(), to_json(v))).collect()),
        Bson::DateTime(date) => Value::String(iso(*date)),
        other => other.clone().into_relaxed_extjson(),
    }
}

/// `2024-03-21T19:39:55+00:00`, or `…55.123000+00:00` with a fraction.
fn iso(date: bson::DateTime) -> String {
    let Some(utc) = DateTime::<Utc>::from_timestamp_millis(date.timestamp_millis()) else { return date.to_string() };
    let text = utc.to_rfc3339_opts(SecondsFormat::Micros, false);
    text.replace(".000000+00:00", "+00:00")
}

#[async_trait]
impl Storage for MongoStorage {
    fn name(&self) -> &str {
        &self.name
    }

    async fn save(&self, uuid: &str, vcon_json: &str) -> Result<(), StorageError> {
        let vcon: Map<String, Value> = serde_json::from_str(vcon_json).map_err(|e| StorageError::Backend {
            storage: self.name.clone(),
            operation: "save",
            message: format!("vCon is not JSON: {e}"),
        })?;
        let mut fields = to_document(&vcon);
        fields.remove("_id");
        let collection = self.collection().await?;
        collection
            .update_one(doc! {"_id": uuid}, doc! {"$set": fields})
            .upsert(true)
            .await
            .map_err(self.failed("upsert"))?;
        Ok(())
    }

    async fn get(&self, uuid: &str) -> Result<Option<String>, StorageError> {
        let collection = self.collection().await?;
        let Some(mut document) = collection.find_one(doc! {"_id": uuid}).await.map_err(self.failed("find"))? else {
            return Ok(None);
        };
        document.remove("_id");
        Ok(Some(to_json(&Bson::Document(document)).to_string()))
    }

    async fn delete(&self, uuid: &str) -> Result<bool, StorageError> {
        let collection = self.collection().await?;
        let result = collection.delete_one(doc! {"_id": uuid}).await.map_err(self.failed("delete"))?;
        Ok(result.deleted_count > 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn dates_become_bson_dates_and_come_back_in_python_form() {
        let vcon = json!({
            "uuid": "u",
            "created_at": "2024-03-21T19:39:55.123Z",
            "dialog": [{"start": "2024-03-21T19:40:00-05:00", "type": "text"}, {"type": "text"}],
            "parties": [{"tel": "+1", "n": 3, "f": 1.5}]
        });
        let document = to_document(vcon.as_object().unwrap());
        assert!(matches!(document.get("created_at"), Some(Bson::DateTime(_))));
        let back = to_json(&Bson::Document(document));
        assert_eq!(back["created_at"], "2024-03-21T19:39:55.123000+00:00");
        assert_eq!(back["dialog"][0]["start"], "2024-03-22T00:40:00+00:00");
        assert_eq!(back["dialog"][1], json!({"type": "text"}));
        let naive = to_document(json!({"created_at": "2024-01-01T00:00:00", "x": ""}).as_object().unwrap());
        assert_eq!(to_json(&Bson::Document(naive))["created_at"], "2024-01-01T00:00:00+00:00");
        let empty = to_document(json!({"created_at": ""}).as_object().unwrap());
        assert_eq!(empty.get_str("created_at").unwrap(), "");
        assert_eq!(back["parties"], vcon["parties"]);
    }

    #[test]
    fn options_are_checked_at_load() {
        assert!(MongoStorage::new("m", Value::Null).is_ok());
        assert!(MongoStorage::new("m", json!({"url": "http://x"})).is_err());
        assert!(MongoStorage::new("m", json!({"uri": "mongodb://x"})).is_err(), "the Python key is `url`");
        assert!(MongoStorage::new("m", json!({"database": ""})).is_err());
    }
}
