//! What a link returns, checked before anything parses it into a tree: its size
//! (`limits.output_bytes`), then a scan of its nesting depth and number of
//! values (`limits.output_depth`, `limits.output_values`), then that it is a
//! JSON object keeping the vCon's uuid (a streaming parse that builds nothing
//! but the uuid). The pipeline parses a changed vCon afterwards; these budgets
//! bound that parse, and what gets stored, whatever the link does.
//!
//! The string itself has been copied out of the guest's memory by then (the
//! generated bindings lift it whole); that copy is bounded by the link's
//! `memory_bytes`.

use conserver_config::Limits;

use crate::LinkFailure;
use conserver_core::json_bound::{self, TooComplex};

use crate::bindings::Directive;
use crate::failure::Budget;
use crate::link_text::{self, MAX_FIELD_BYTES, needs_escape};

/// Longest list name a `route-to` directive may carry, in bytes.
pub(crate) const MAX_ROUTE_NAME_BYTES: usize = 1024;

/// Check a link's answer: the changed vCon (if any) and its directives.
pub(crate) fn check(
    vcon: Option<&str>,
    directives: &[Directive],
    expected_uuid: &str,
    limits: &Limits,
) -> Result<(), LinkFailure> {
    let mut bytes = vcon.map_or(0, str::len) as u64;
    for directive in directives {
        if let Directive::RouteTo(lists) = directive {
            for list in lists {
                if list.len() > MAX_ROUTE_NAME_BYTES || list.chars().any(needs_escape) {
                    return Err(LinkFailure::InvalidOutput {
                        message: format!(
                            "route-to list `{}` is not a list name: at most {MAX_ROUTE_NAME_BYTES} bytes without control characters",
                            link_text::field(list, MAX_FIELD_BYTES)
                        ),
                    });
                }
                bytes += list.len() as u64;
            }
        }
    }
    if bytes > limits.output_bytes {
        return Err(LinkFailure::Budget { budget: Budget::OutputBytes, limit: limits.output_bytes });
    }
    let Some(json) = vcon else { return Ok(()) };
    scan(json.as_bytes(), limits)?;
    check_uuid(json, expected_uuid)
}

/// Nesting depth and values counted by the shared pre-parse scan, stopping at
/// the first budget exceeded.
fn scan(bytes: &[u8], limits: &Limits) -> Result<(), LinkFailure> {
    let cap = |limit: u64| usize::try_from(limit).unwrap_or(usize::MAX);
    json_bound::check(bytes, cap(limits.output_values), cap(limits.output_depth)).map_err(|exceeded| match exceeded {
        TooComplex::Depth(_) => LinkFailure::Budget { budget: Budget::OutputDepth, limit: limits.output_depth },
        TooComplex::Values(_) => LinkFailure::Budget { budget: Budget::OutputValues, limit: limits.output_values },
    })
}

/// A changed vCon must be a JSON object that keeps the uuid it was given.
fn check_uuid(json: &str, expected_uuid: &str) -> Result<(), LinkFailure> {
    #[derive(serde::Deserialize)]
    struct UuidOnly {
        uuid: Option<serde_json::Value>,
    }
    let parsed: UuidOnly = serde_json::from_str(json)
        .map_err(|e| LinkFailure::InvalidOutput { message: format!("the returned vCon is not a JSON object: {e}") })?;
    match parsed.uuid {
        Some(serde_json::Value::String(uuid)) if uuid == expected_uuid => Ok(()),
        other => Err(LinkFailure::InvalidOutput {
            message: format!(
                "the returned vCon must keep uuid {expected_uuid}, got {}",
                other.map_or_else(|| "none".to_string(), |v| link_text::field(&v, MAX_FIELD_BYTES))
            ),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(bytes: u64, depth: u64, values: u64) -> Limits {
        Limits { output_bytes: bytes, output_depth: depth, output_values: values, ..Limits::default() }
    }

    fn budget(result: Result<(), LinkFailure>) -> Option<Budget> {
        match result {
            Err(LinkFailure::Budget { budget, .. }) => Some(budget),
            _ => None,
        }
    }

    #[test]
    fn outputs_must_be_objects_with_the_same_uuid() {
        let ok = Limits::default();
        assert!(check(Some(r#"{"uuid":"a","x":1}"#), &[], "a", &ok).is_ok());
        assert!(check(Some(r#"{"uuid":"b"}"#), &[], "a", &ok).is_err());
        assert!(check(Some(r#"{"uuid":null}"#), &[], "a", &ok).is_err());
        assert!(check(Some("[1]"), &[], "a", &ok).is_err());
        assert!(check(Some("nope"), &[], "a", &ok).is_err());
        assert!(check(None, &[], "a", &ok).is_ok());
    }

    #[test]
    fn a_large_output_is_refused_by_its_size_before_any_parse() {
        let big = format!(r#"{{"uuid":"a","pad":"{}"}}"#, "x".repeat(1000));
        assert_eq!(budget(check(Some(&big), &[], "a", &limits(1000, 64, 1000))), Some(Budget::OutputBytes));
        assert!(check(Some(&big), &[], "a", &limits(2000, 64, 1000)).is_ok());
        // Route-to list names count toward the size too.
        let routes = [Directive::RouteTo(vec!["x".repeat(600), "y".repeat(600)])];
        assert_eq!(budget(check(None, &routes, "a", &limits(1000, 64, 1000))), Some(Budget::OutputBytes));
    }

    #[test]
    fn depth_and_values_are_counted_outside_strings() {
        let deep = format!(r#"{{"uuid":"a","x":{}{}}}"#, "[".repeat(64), "]".repeat(64));
        assert_eq!(budget(check(Some(&deep), &[], "a", &limits(u64::MAX, 64, 1000))), Some(Budget::OutputDepth));
        assert!(check(Some(&deep), &[], "a", &limits(u64::MAX, 65, 1000)).is_ok());
        let dense = format!(r#"{{"uuid":"a","x":[{}0]}}"#, "0,".repeat(100));
        assert_eq!(budget(check(Some(&dense), &[], "a", &limits(u64::MAX, 64, 100))), Some(Budget::OutputValues));
        assert!(check(Some(&dense), &[], "a", &limits(u64::MAX, 64, 104)).is_ok());
        let quoted = r#"{"uuid":"a","x":"[[[[,,,,\"]]]]"}"#;
        assert!(check(Some(quoted), &[], "a", &limits(u64::MAX, 1, 3)).is_ok());
    }

    #[test]
    fn a_100k_deep_output_stops_at_the_scan() {
        let deep = format!(r#"{{"uuid":"a","x":{}{}}}"#, "[".repeat(100_000), "]".repeat(100_000));
        assert_eq!(budget(check(Some(&deep), &[], "a", &Limits::default())), Some(Budget::OutputDepth));
    }

    #[test]
    fn failure_reasons_quote_link_text_bounded_and_escaped() {
        let huge_uuid = format!(r#"{{"uuid":"{}\n"}}"#, "u".repeat(100_000));
        let Err(LinkFailure::InvalidOutput { message }) = check(Some(&huge_uuid), &[], "a", &Limits::default()) else {
            panic!("expected an invalid output");
        };
        assert!(message.len() < 400 && !message.contains('\n'), "{message}");
        let routes = [Directive::RouteTo(vec!["list\nINFO forged".into()])];
        let Err(LinkFailure::InvalidOutput { message }) = check(None, &routes, "a", &Limits::default()) else {
            panic!("expected an invalid output");
        };
        assert!(message.contains("list\\nINFO forged"), "{message}");
    }
}
