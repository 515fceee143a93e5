//! The `only_if` option (Python's `lib.links.filters.is_included`).
//!
//! `only_if: {section: attachments|analysis, type|purpose: <id>, includes: <text>}`
//! keeps a vCon only when an entry of `section` whose `type` (or, for attachments,
//! `purpose`) is `<id>` contains `<text>`:
//! - for `<id>` `tags`, the body is decoded (a JSON-encoded string, or a legacy
//!   native list) and must hold `<text>` as a whole element (e.g. `"vip:vip"`);
//! - otherwise a string body must contain `<text>` as a substring, and an object or
//!   list body must contain it in its JSON text (Python's `json.dumps`).
//!
//! A missing or empty `only_if` keeps every vCon. `purpose` and `type` are aliases
//! (the first non-empty one is used). Any top-level array may be named as the
//! section (Python read it with `getattr`); a section that is absent or not an array
//! matches nothing.
//!
//! Differences from Python: an `only_if` that is not a mapping, or lacks a string
//! `section` or `includes`, is a fatal error naming the option (Python raised
//! `KeyError`/`TypeError`, or, for a non-string `includes`, quietly matched nothing);
//! a tags body that is not valid JSON is skipped rather than ending the scan.

use conserver_link_sdk::{Context, LinkError, Vcon, python_json};
use serde_json::Value;

use crate::options::invalid;
use crate::python::truthy;

const EXPECTED: &str = "a mapping with `section`, `type` or `purpose`, and `includes` (strings)";

/// What `only_if` asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OnlyIf {
    /// The top-level array to scan (`attachments`, `analysis`, …).
    pub section: String,
    /// The `type`/`purpose` entries must have (`None` when neither is given).
    pub target: Option<String>,
    /// The text to find in the entry's body.
    pub includes: String,
}

impl OnlyIf {
    /// The `only_if` option, or `None` when it is absent or empty.
    pub fn from_context(ctx: &Context) -> Result<Option<Self>, LinkError> {
        let Some(option) = ctx.options.get("only_if").filter(|v| truthy(v)) else {
            return Ok(None);
        };
        let Value::Object(filter) = option else {
            return Err(invalid(ctx, "only_if", EXPECTED, option));
        };
        let text = |key: &str| match filter.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(_) => Err(invalid(ctx, "only_if", EXPECTED, option)),
        };
        let section = text("section")?.ok_or_else(|| invalid(ctx, "only_if", EXPECTED, option))?;
        let includes = text("includes")?.ok_or_else(|| invalid(ctx, "only_if", EXPECTED, option))?;
        let purpose = text("purpose")?.filter(|s| !s.is_empty());
        let target = match purpose {
            Some(purpose) => Some(purpose),
            None => text("type")?.filter(|s| !s.is_empty()),
        };
        Ok(Some(Self { section, target, includes }))
    }

    /// Whether `vcon` passes the filter.
    pub fn matches(&self, vcon: &Vcon) -> bool {
        let Some(Value::Array(entries)) = vcon.get(&self.section) else {
            return false;
        };
        let target = self.target.as_deref();
        entries.iter().filter(|entry| self.is_target(entry, target)).any(|entry| {
            if target == Some("tags") {
                tag_list_contains(entry, &self.includes)
            } else {
                match entry.get("body") {
                    Some(Value::String(body)) => body.contains(&self.includes),
                    Some(body @ (Value::Object(_) | Value::Array(_))) => {
                        python_json::dumps(body).contains(&self.includes)
                    }
                    _ => false,
                }
            }
        })
    }

    fn is_target(&self, entry: &Value, target: Option<&str>) -> bool {
        let Value::Object(entry) = entry else {
            return false;
        };
        let label = |key: &str| entry.get(key).and_then(Value::as_str);
        if self.section == "attachments" {
            label("purpose") == target || label("type") == target
        } else {
            label("type") == target
        }
    }
}

/// Whether a tags entry's decoded body is a list holding `wanted`.
fn tag_list_contains(entry: &Value, wanted: &str) -> bool {
    let decoded;
    let body = match (entry.get("body"), entry.get("encoding").and_then(Value::as_str)) {
        (Some(Value::String(text)), Some("json")) => match serde_json::from_str::<Value>(text) {
            Ok(value) => {
                decoded = value;
                &decoded
            }
            Err(_) => return false,
        },
        (Some(body), _) => body,
        (None, _) => return false,
    };
    matches!(body, Value::Array(items) if items.iter().any(|item| item.as_str() == Some(wanted)))
}

/// Python's `is_included(opts, vcon)`: whether the vCon passes `only_if`.
pub fn is_included(ctx: &Context, vcon: &Vcon) -> Result<bool, LinkError> {
    Ok(OnlyIf::from_context(ctx)?.is_none_or(|filter| filter.matches(vcon)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn included(only_if: Value, vcon: Value) -> bool {
        let ctx = Context::for_test("l", json!({"only_if": only_if}));
        let vcon = Vcon::from_json(&vcon.to_string()).unwrap();
        is_included(&ctx, &vcon).unwrap()
    }

    fn tagged(body: Value, encoding: &str) -> Value {
        json!({"attachments": [{"purpose": "tags", "body": body, "encoding": encoding}]})
    }

    #[test]
    fn no_or_empty_only_if_includes_everything() {
        let vcon = Vcon::from_json("{}").unwrap();
        assert!(is_included(&Context::for_test("l", json!({})), &vcon).unwrap());
        assert!(included(json!(null), json!({})));
        assert!(included(json!({}), json!({})));
    }

    #[test]
    fn tags_need_an_exact_element() {
        let vcon = tagged(json!("[\"vip:vip\", \"x:y\"]"), "json");
        let only = |includes: &str| json!({"section": "attachments", "type": "tags", "includes": includes});
        assert!(included(only("vip:vip"), vcon.clone()));
        assert!(!included(only("vip"), vcon.clone()), "a substring of a tag is not enough");
        assert!(!included(only("vip:vi"), vcon));
        // A legacy native list with `type: tags`, found through `purpose`.
        let legacy = json!({"attachments": [{"type": "tags", "body": ["vip:vip"], "encoding": "none"}]});
        assert!(included(json!({"section": "attachments", "purpose": "tags", "includes": "vip:vip"}), legacy));
        // A body that is not valid JSON matches nothing.
        assert!(!included(only("vip:vip"), tagged(json!("[vip:vip"), "json")));
    }

    #[test]
    fn other_targets_use_a_substring_of_the_body() {
        let vcon = json!({"analysis": [
            {"type": "summary", "body": "the customer wants a refund"},
            {"type": "other", "body": "escalate"}
        ]});
        let only = |target: &str, includes: &str| json!({"section": "analysis", "type": target, "includes": includes});
        assert!(included(only("summary", "refund"), vcon.clone()));
        assert!(!included(only("summary", "escalate"), vcon.clone()), "only entries of the target type count");
        assert!(!included(only("missing", "refund"), vcon));
    }

    #[test]
    fn object_bodies_are_searched_in_their_python_json_text() {
        let vcon = json!({"analysis": [{"type": "sentiment", "body": {"label": "angry", "score": 0.9}}]});
        let only = |includes: &str| json!({"section": "analysis", "type": "sentiment", "includes": includes});
        assert!(included(only("\"label\": \"angry\""), vcon.clone()), "Python's separators");
        assert!(!included(only("\"label\":\"angry\""), vcon.clone()));
        assert!(!included(only("1"), json!({"analysis": [{"type": "sentiment", "body": 1}]})));
    }

    #[test]
    fn attachments_match_on_purpose_or_type_and_analysis_on_type_only() {
        let vcon = json!({
            "attachments": [{"purpose": "note", "body": "hello"}],
            "analysis": [{"purpose": "note", "body": "hello"}]
        });
        assert!(included(json!({"section": "attachments", "type": "note", "includes": "hell"}), vcon.clone()));
        assert!(!included(json!({"section": "analysis", "purpose": "note", "includes": "hell"}), vcon));
    }

    #[test]
    fn purpose_wins_over_type_unless_empty() {
        let vcon = json!({"attachments": [{"purpose": "a", "body": "x"}]});
        assert!(included(
            json!({"section": "attachments", "purpose": "a", "type": "b", "includes": "x"}),
            vcon.clone()
        ));
        assert!(included(json!({"section": "attachments", "purpose": "", "type": "a", "includes": "x"}), vcon));
    }

    #[test]
    fn missing_or_odd_sections_match_nothing() {
        let only = json!({"section": "attachments", "type": "tags", "includes": "a:a"});
        assert!(!included(only.clone(), json!({})));
        assert!(!included(only.clone(), json!({"attachments": "nope"})));
        assert!(!included(only, json!({"attachments": ["not an object"]})));
        assert!(included(
            json!({"section": "dialog", "type": "text", "includes": "hi"}),
            json!({"dialog": [{"type": "text", "body": "hi there"}]})
        ));
    }

    #[test]
    fn malformed_only_if_is_a_fatal_error_naming_it() {
        let vcon = Vcon::from_json("{}").unwrap();
        for bad in [
            json!("tags"),
            json!({"type": "tags", "includes": "a"}),
            json!({"section": "attachments", "type": "tags"}),
            json!({"section": "attachments", "type": "tags", "includes": 5}),
            json!({"section": ["attachments"], "type": "tags", "includes": "a"}),
        ] {
            let ctx = Context::for_test("l", json!({"only_if": bad.clone()}));
            let err = is_included(&ctx, &vcon).unwrap_err();
            assert!(!err.retryable);
            assert!(
                err.message.starts_with("option `only_if` of link `l` must be a mapping"),
                "{bad}: {}",
                err.message
            );
        }
    }
}
