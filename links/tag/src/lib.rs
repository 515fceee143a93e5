//! `tag`: add fixed tags to a vCon.
//!
//! Options: `tags` (list of strings, default `["iron", "maiden"]`). Each entry `t`
//! becomes the tag `"t:t"` in the vCon's tags attachment (`purpose: "tags"`, body a
//! JSON-encoded list of `"name:value"` strings, `encoding: "json"`), exactly as the
//! Python conserver's `links.tag`. The vCon is always written back, even when the
//! list is empty.

use conserver_link_sdk::prelude::*;

/// The `tag` link.
pub struct Tag;

fn default_tags() -> Vec<String> {
    vec!["iron".to_string(), "maiden".to_string()]
}

impl Link for Tag {
    fn process(ctx: &Context, mut vcon: Vcon) -> LinkResult {
        let tags: Vec<String> = ctx.option_or("tags", default_tags())?;
        for tag in &tags {
            vcon.add_tag(tag, tag)?;
        }
        Ok(Verdict::changed(vcon))
    }
}

export_link!(Tag);

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn run(options: serde_json::Value) -> Vcon {
        let vcon = Vcon::from_json(r#"{"uuid":"u","attachments":[]}"#).unwrap();
        let verdict = Tag::process(&Context::for_test("tag", options), vcon).unwrap();
        verdict.vcon().cloned().unwrap()
    }

    #[test]
    fn default_tags_are_iron_and_maiden() {
        let vcon = run(json!({}));
        assert_eq!(vcon.get_tag("iron").as_deref(), Some("iron"));
        assert_eq!(vcon.get_tag("maiden").as_deref(), Some("maiden"));
    }

    #[test]
    fn custom_tags_replace_the_defaults() {
        let vcon = run(json!({"tags": ["vip"]}));
        assert_eq!(vcon.tags(), vec![("vip".to_string(), "vip".to_string())]);
    }

    #[test]
    fn an_empty_list_still_writes_the_vcon() {
        let vcon = Vcon::from_json(r#"{"uuid":"u"}"#).unwrap();
        let verdict = Tag::process(&Context::for_test("tag", json!({"tags": []})), vcon).unwrap();
        assert!(verdict.vcon().is_some());
    }

    #[test]
    fn a_non_list_option_is_a_clear_error() {
        let vcon = Vcon::from_json(r#"{"uuid":"u"}"#).unwrap();
        let err = Tag::process(&Context::for_test("tag", json!({"tags": "vip"})), vcon).unwrap_err();
        assert!(err.message.contains("option `tags`"), "{}", err.message);
    }
}
