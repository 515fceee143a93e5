//! `tag_router`: send the vCon to other lists (usually other chains' ingress lists)
//! chosen by the names of its tags.
//!
//! Options:
//! - `tag_routes` (mapping of tag name → list name, default `{}`): where a vCon
//!   carrying the tag goes.
//! - `forward_original` (bool, default `true`): whether this chain goes on after
//!   routing. `false` halts it (no later links, storages or egress) once the routes are
//!   set.
//!
//! The tag names are read as the Python conserver's `links.tag_router` reads them:
//! from every attachment whose `purpose` (or legacy `type`) is `"tags"` and that has
//! a `body`. The body may be a JSON-encoded string or a native value; a list gives the
//! text before the first `:` of each string entry (entries without a colon, or with
//! nothing before it, are skipped), a mapping gives its keys. Each tag name found
//! (duplicates included, in order) that is a key of `tag_routes` adds its list to the
//! routes, so a list can appear more than once and then receives the uuid more than
//! once, as with the Python `RPUSH` per tag. The vCon itself is not changed.
//!
//! Outcome, as in Python:
//! - `tag_routes` empty: the chain goes on, nothing is routed (whatever
//!   `forward_original` says);
//! - no tag names found: go on if `forward_original`, else halt;
//! - otherwise route to the matched lists (if any) and go on if `forward_original`,
//!   else halt.
//!
//! Differences from Python, all from the routes being a `route-to` directive that
//! the host applies instead of an `RPUSH` made by the link itself:
//! - The host pushes the uuid once the chain is finished with the vCon (after it is
//!   saved to storages and sent to egress lists, or right away when the chain halts),
//!   not in the middle of the chain. A consumer of a routed list therefore sees the
//!   vCon as the whole chain left it, not as it was when this link ran.
//! - If a later link fails (the vCon goes to the dead-letter queue), nothing is
//!   routed; Python would already have pushed the uuid.
//! - A missing vCon is the host's concern (it dead-letters it before any link runs);
//!   Python's `tag_router` returned `None` for it.
//! - Missing `options` mean `{}` (Python crashed on them).
//! - A list name must be a non-empty string and `forward_original` a boolean; Python
//!   took any value (and Python truthiness for `forward_original`).

use std::collections::BTreeMap;

use conserver_link_sdk::prelude::*;
use serde_json::Value;

/// The `tag_router` link.
pub struct TagRouter;

/// The link's options, with the Python defaults.
#[derive(Debug, Clone, PartialEq)]
struct Options {
    tag_routes: BTreeMap<String, String>,
    forward_original: bool,
}

impl Options {
    fn from_context(ctx: &Context) -> Result<Self, LinkError> {
        let tag_routes: BTreeMap<String, Value> = ctx.option_or("tag_routes", BTreeMap::new()).map_err(|_| {
            LinkError::fatal(format!(
                "option `tag_routes` of link `{}` must be a mapping of tag name to list name, \
                 e.g. {{\"important\": \"important_vcons\"}}",
                ctx.link_name
            ))
        })?;
        let tag_routes = tag_routes
            .into_iter()
            .map(|(tag, list)| match list {
                Value::String(list) if !list.is_empty() => Ok((tag, list)),
                other => Err(LinkError::fatal(format!(
                    "option `tag_routes` of link `{}`: the list for tag `{tag}` must be a non-empty list name, got {other}",
                    ctx.link_name
                ))),
            })
            .collect::<Result<_, _>>()?;
        let forward_original = ctx.option_or("forward_original", true)?;
        Ok(Self { tag_routes, forward_original })
    }
}

/// The tag names of every tags attachment, in order, duplicates included.
fn tag_names(vcon: &Vcon) -> Vec<String> {
    let Some(Value::Array(attachments)) = vcon.get("attachments") else {
        return Vec::new();
    };
    let mut names = Vec::new();
    for attachment in &attachments {
        let is_tags = ["purpose", "type"].iter().any(|key| attachment.get(key).and_then(Value::as_str) == Some("tags"));
        if !is_tags {
            continue;
        }
        let Some(body) = attachment.get("body") else { continue };
        let decoded;
        let body = match body {
            Value::String(text) => match serde_json::from_str::<Value>(text) {
                Ok(value) => {
                    decoded = value;
                    &decoded
                }
                Err(_) => continue,
            },
            other => other,
        };
        match body {
            Value::Array(entries) => names.extend(
                entries
                    .iter()
                    .filter_map(Value::as_str)
                    .filter_map(|entry| entry.split_once(':'))
                    .map(|(name, _)| name)
                    .filter(|name| !name.is_empty())
                    .map(String::from),
            ),
            Value::Object(map) => names.extend(map.keys().filter(|name| !name.is_empty()).cloned()),
            _ => {}
        }
    }
    names
}

impl Link for TagRouter {
    fn process(ctx: &Context, vcon: Vcon) -> LinkResult {
        let options = Options::from_context(ctx)?;
        if options.tag_routes.is_empty() {
            conserver_link_sdk::log::warn(&format!("no tag routes configured for link `{}`; skipping", ctx.link_name));
            return Ok(Verdict::unchanged());
        }
        let names = tag_names(&vcon);
        let carry_on = || if options.forward_original { Verdict::unchanged() } else { Verdict::halt() };
        if names.is_empty() {
            conserver_link_sdk::log::debug("no tags found");
            return Ok(carry_on());
        }
        let mut lists = Vec::new();
        for name in &names {
            match options.tag_routes.get(name) {
                Some(list) => {
                    conserver_link_sdk::log::info(&format!("routing to list `{list}` for tag `{name}`"));
                    lists.push(list.clone());
                }
                None => conserver_link_sdk::log::debug(&format!("no route for tag `{name}`")),
            }
        }
        if lists.is_empty() {
            conserver_link_sdk::log::info("no route matches the vCon's tags");
            return Ok(carry_on());
        }
        Ok(carry_on().with(Directive::RouteTo(lists)))
    }
}

export_link!(TagRouter);

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn vcon_with(attachments: Value) -> Vcon {
        Vcon::from_map(json!({"uuid": "u", "attachments": attachments}).as_object().unwrap().clone())
    }

    /// A tags attachment as the SDK (and Python `add_tag`) writes it.
    fn tags_attachment(tags: &[&str]) -> Value {
        json!({"purpose": "tags", "body": serde_json::to_string(tags).unwrap(), "encoding": "json"})
    }

    fn run(options: Value, vcon: Vcon) -> Verdict {
        TagRouter::process(&Context::for_test("router", options), vcon).unwrap()
    }

    fn routes(verdict: &Verdict) -> Vec<String> {
        match verdict.directives() {
            [] => Vec::new(),
            [Directive::RouteTo(lists)] => lists.clone(),
            other => panic!("unexpected directives {other:?}"),
        }
    }

    const ROUTES: &str = r#"{"important": "important_vcons", "urgent": "urgent_vcons", "billing": "billing_vcons"}"#;

    fn routes_option() -> Value {
        serde_json::from_str(ROUTES).unwrap()
    }

    #[test]
    fn routes_to_every_list_whose_tag_is_present_in_tag_order() {
        let vcon = vcon_with(json!([tags_attachment(&["urgent:yes", "other:x", "important:high"])]));
        let verdict = run(json!({"tag_routes": routes_option()}), vcon);
        assert!(!verdict.is_halt());
        assert!(verdict.vcon().is_none(), "the vCon is not changed");
        assert_eq!(routes(&verdict), ["urgent_vcons", "important_vcons"]);
    }

    #[test]
    fn forward_original_false_routes_then_halts() {
        let vcon = vcon_with(json!([tags_attachment(&["important:1"])]));
        let verdict = run(json!({"tag_routes": routes_option(), "forward_original": false}), vcon);
        assert!(verdict.is_halt());
        assert_eq!(routes(&verdict), ["important_vcons"]);
    }

    #[test]
    fn duplicate_tags_route_twice_like_one_rpush_per_tag() {
        let vcon = vcon_with(json!([
            tags_attachment(&["important:a", "important:b"]),
            {"type": "tags", "body": ["billing:x", "important:c"]}
        ]));
        let verdict = run(json!({"tag_routes": routes_option()}), vcon);
        assert_eq!(routes(&verdict), ["important_vcons", "important_vcons", "billing_vcons", "important_vcons"]);
    }

    #[test]
    fn a_native_list_body_under_the_legacy_type_key_is_read() {
        let vcon = vcon_with(json!([{"type": "tags", "body": ["urgent:now"], "encoding": "none"}]));
        assert_eq!(routes(&run(json!({"tag_routes": routes_option()}), vcon)), ["urgent_vcons"]);
    }

    #[test]
    fn dict_bodies_give_their_keys_native_or_json_encoded() {
        let native = vcon_with(json!([{"purpose": "tags", "body": {"billing": "x", "": "skipped"}}]));
        assert_eq!(routes(&run(json!({"tag_routes": routes_option()}), native)), ["billing_vcons"]);
        let encoded = vcon_with(json!([{"purpose": "tags", "body": "{\"urgent\": 1}", "encoding": "json"}]));
        assert_eq!(routes(&run(json!({"tag_routes": routes_option()}), encoded)), ["urgent_vcons"]);
    }

    #[test]
    fn entries_without_a_name_before_a_colon_or_not_strings_are_ignored() {
        let vcon = vcon_with(json!([{"purpose": "tags", "body": ["important", ":urgent", 7, null, "billing:"]}]));
        assert_eq!(routes(&run(json!({"tag_routes": routes_option()}), vcon)), ["billing_vcons"]);
    }

    #[test]
    fn other_attachments_and_tags_attachments_without_a_body_are_skipped() {
        let vcon = vcon_with(json!([
            {"purpose": "transcript", "body": "[\"important:x\"]"},
            {"purpose": "tags"},
            {"purpose": "tags", "body": "not json"},
            {"purpose": "tags", "body": 42},
            tags_attachment(&["urgent:1"])
        ]));
        assert_eq!(routes(&run(json!({"tag_routes": routes_option()}), vcon)), ["urgent_vcons"]);
    }

    #[test]
    fn partial_match_routes_only_the_configured_tags() {
        let vcon = vcon_with(json!([tags_attachment(&["foo:1", "billing:2", "bar:3"])]));
        let verdict = run(json!({"tag_routes": routes_option()}), vcon);
        assert!(!verdict.is_halt());
        assert_eq!(routes(&verdict), ["billing_vcons"]);
    }

    #[test]
    fn no_match_routes_nothing_and_obeys_forward_original() {
        let tagged = || vcon_with(json!([tags_attachment(&["foo:1"])]));
        let verdict = run(json!({"tag_routes": routes_option()}), tagged());
        assert!(!verdict.is_halt());
        assert!(verdict.directives().is_empty());
        let verdict = run(json!({"tag_routes": routes_option(), "forward_original": false}), tagged());
        assert!(verdict.is_halt());
        assert!(verdict.directives().is_empty());
    }

    #[test]
    fn no_tags_at_all_obeys_forward_original() {
        let verdict = run(json!({"tag_routes": routes_option()}), vcon_with(json!([])));
        assert!(!verdict.is_halt());
        assert!(verdict.directives().is_empty());
        let no_attachments = Vcon::from_json(r#"{"uuid":"u"}"#).unwrap();
        let verdict = run(json!({"tag_routes": routes_option(), "forward_original": false}), no_attachments);
        assert!(verdict.is_halt());
        assert!(verdict.directives().is_empty());
    }

    #[test]
    fn empty_routes_go_on_whatever_forward_original_says() {
        let tagged = || vcon_with(json!([tags_attachment(&["important:1"])]));
        for options in [json!({}), json!({"tag_routes": {}, "forward_original": false}), json!({"tag_routes": null})] {
            let verdict = run(options, tagged());
            assert!(!verdict.is_halt());
            assert!(verdict.directives().is_empty());
        }
    }

    #[test]
    fn default_options_route_nothing() {
        let verdict = run(json!({}), vcon_with(json!([tags_attachment(&["important:1"])])));
        assert!(!verdict.is_halt());
        assert!(verdict.directives().is_empty());
    }

    #[test]
    fn bad_options_are_fatal_errors_naming_the_option() {
        let vcon = || vcon_with(json!([]));
        for (options, option) in [
            (json!({"tag_routes": ["a"]}), "`tag_routes`"),
            (json!({"tag_routes": {"a": 1}}), "`tag_routes`"),
            (json!({"tag_routes": {"a": ""}}), "`tag_routes`"),
            (json!({"tag_routes": {"a": "l"}, "forward_original": "no"}), "`forward_original`"),
        ] {
            let err = TagRouter::process(&Context::for_test("router", options), vcon()).unwrap_err();
            assert!(!err.retryable);
            assert!(err.message.contains(option), "{}", err.message);
        }
    }
}
