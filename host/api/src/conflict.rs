//! External-ingress never replaces a stored vCon. A partner holds a key for its
//! own ingress list only, and a uuid is not a secret, so "store whatever comes
//! with a known uuid" would let any partner overwrite any tenant's vCon. A uuid
//! already stored (in the broker or a configured storage) is accepted again only
//! with the same document: a retry. Anything else is a conflict (409).

use std::collections::HashMap;

use conserver_core::IngestedVcon;
use serde::de::IgnoredAny;
use serde_json::Value;

use crate::ApiState;
use crate::error::ApiError;

/// What is stored under the uuid of an incoming vCon.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Stored {
    /// Nothing (from [`stored_as`]: store it; from [`create`]: it was stored).
    Nothing,
    /// The same document (a re-send): accept it without writing.
    Same,
    /// A different document: refuse.
    Different,
}

/// Whether `stored` is the document `incoming` would store. `created_at` is
/// ignored when the sender did not give one (the server stamped it on receipt,
/// so a retry gets a new one).
fn same_document(stored: &str, incoming: &IngestedVcon, body: &[u8]) -> bool {
    if stored == incoming.json {
        return true;
    }
    let (Ok(mut stored), Ok(mut incoming)) =
        (serde_json::from_str::<Value>(stored), serde_json::from_str::<Value>(&incoming.json))
    else {
        return false;
    };
    let sent_created_at = serde_json::from_slice::<HashMap<String, IgnoredAny>>(body)
        .map(|keys| keys.contains_key("created_at"))
        .unwrap_or(true);
    if !sent_created_at && let (Some(stored), Some(incoming)) = (stored.as_object_mut(), incoming.as_object_mut()) {
        stored.remove("created_at");
        incoming.remove("created_at");
    }
    stored == incoming
}

/// What is stored under `incoming.uuid`: the broker first, then each storage.
/// Unlike the read fallback this fails closed: a storage that cannot answer
/// makes the request fail (503, nothing written) rather than count as empty,
/// and anything a storage holds, JSON or not, counts as stored.
pub(crate) async fn stored_as(state: &ApiState, incoming: &IngestedVcon, body: &[u8]) -> Result<Stored, ApiError> {
    let existing =
        state.broker.get_vcon(&incoming.uuid).await.map_err(|e| ApiError::broker("Failed to store vCon", e))?;
    if existing.is_some() {
        return Ok(compare(existing.as_deref(), incoming, body));
    }
    for storage in &state.control.live().storages {
        match storage.get(&incoming.uuid).await {
            Ok(None) => {}
            Ok(Some(text)) => {
                let canonical = serde_json::from_str::<serde_json::Map<String, Value>>(&text)
                    .map(|doc| Value::Object(conserver_core::canonicalize(doc)).to_string())
                    .unwrap_or(text);
                return Ok(compare(Some(&canonical), incoming, body));
            }
            Err(error) => {
                return Err(ApiError::Unavailable {
                    detail: "cannot check whether this uuid is already stored (a storage failed); send it again later",
                    cause: format!("storage {}: {error}", storage.name()),
                });
            }
        }
    }
    Ok(Stored::Nothing)
}

/// Store `incoming` unless something is stored under its uuid by now: the
/// broker decides atomically, so of two partners racing with one uuid only one
/// document is stored and the other sender learns what it met.
pub(crate) async fn create(state: &ApiState, incoming: &IngestedVcon, body: &[u8]) -> Result<Stored, ApiError> {
    match crate::read::create_ingested(state, incoming).await? {
        None => Ok(Stored::Nothing),
        Some(existing) => Ok(compare(Some(&existing), incoming, body)),
    }
}

fn compare(existing: Option<&str>, incoming: &IngestedVcon, body: &[u8]) -> Stored {
    match existing {
        None => Stored::Nothing,
        Some(json) if same_document(json, incoming, body) => Stored::Same,
        Some(_) => Stored::Different,
    }
}

/// The 409 for a uuid that holds another document.
pub(crate) fn conflict(uuid: &str) -> ApiError {
    ApiError::Conflict(format!(
        "a different vCon with uuid {uuid} is already stored; external-ingress does not replace stored vCons \
         (send a new vCon with a new uuid; an identical re-send is accepted)"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[allow(clippy::unwrap_used)]
    fn ingested(body: &str) -> IngestedVcon {
        conserver_core::ingest_vcon(body.as_bytes()).unwrap()
    }

    #[test]
    fn a_resend_is_the_same_and_a_change_is_not() {
        let uuid = "018f0000-0000-7000-8000-000000000001";
        let body = format!(r#"{{"vcon":"0.4.0","uuid":"{uuid}","created_at":"2024-01-01T00:00:00Z","parties":[]}}"#);
        let first = ingested(&body);
        assert!(same_document(&first.json, &ingested(&body), body.as_bytes()));
        let changed = body.replace(r#""parties":[]"#, r#""parties":[{"name":"Mallory"}]"#);
        assert!(!same_document(&first.json, &ingested(&changed), changed.as_bytes()));
        // Without created_at the server stamps one: a re-send still matches.
        let bare = format!(r#"{{"vcon":"0.4.0","uuid":"{uuid}","parties":[]}}"#);
        let stored = ingested(&bare).json;
        std::thread::sleep(std::time::Duration::from_millis(2));
        assert!(same_document(&stored, &ingested(&bare), bare.as_bytes()));
    }
}
