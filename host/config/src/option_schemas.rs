//! The option schemas the standard links publish: `links/<name>/options.schema.json`
//! beside each link's source (and `links/tracers/<name>/…` for tracers),
//! compiled into the host so the options of `module: links.<name>` are checked
//! when a config loads. The docs' per-link tables are generated from them
//! (`host/config/tests/link_options.rs`), and a test checks each one parses and
//! stays inside the validator's subset ([`crate::json_schema`]). A link loaded
//! from `component:` brings no schema and is not checked.

use std::sync::LazyLock;

use serde_json::Value;

/// `(module, schema text)` of every standard link and tracer.
const SCHEMAS: &[(&str, &str)] = &[
    ("links.analyze", include_str!("../../../links/analyze/options.schema.json")),
    ("links.analyze_and_label", include_str!("../../../links/analyze_and_label/options.schema.json")),
    ("links.analyze_vcon", include_str!("../../../links/analyze_vcon/options.schema.json")),
    ("links.check_and_tag", include_str!("../../../links/check_and_tag/options.schema.json")),
    ("links.delay", include_str!("../../../links/delay/options.schema.json")),
    ("links.detect_engagement", include_str!("../../../links/detect_engagement/options.schema.json")),
    ("links.diet", include_str!("../../../links/diet/options.schema.json")),
    ("links.expire_vcon", include_str!("../../../links/expire_vcon/options.schema.json")),
    ("links.jq_link", include_str!("../../../links/jq_link/options.schema.json")),
    ("links.post_analysis_to_slack", include_str!("../../../links/post_analysis_to_slack/options.schema.json")),
    ("links.sampler", include_str!("../../../links/sampler/options.schema.json")),
    ("links.scitt", include_str!("../../../links/scitt/options.schema.json")),
    ("links.tag", include_str!("../../../links/tag/options.schema.json")),
    ("links.tag_router", include_str!("../../../links/tag_router/options.schema.json")),
    ("links.transcribe", include_str!("../../../links/transcribe/options.schema.json")),
    ("links.webhook", include_str!("../../../links/webhook/options.schema.json")),
    ("links.wtf_transcribe", include_str!("../../../links/wtf_transcribe/options.schema.json")),
    ("tracers.jlinc", include_str!("../../../links/tracers/jlinc/options.schema.json")),
];

static PARSED: LazyLock<Vec<(&'static str, Value)>> = LazyLock::new(|| {
    SCHEMAS
        .iter()
        .filter_map(|(module, text)| serde_json::from_str(text).ok().map(|schema| (*module, schema)))
        .collect()
});

/// The schema of the standard link or tracer `module` names (`links.tag`, or
/// `tag` as the host also resolves it; `tracers.jlinc`), if it is one.
pub fn for_module(module: &str) -> Option<&'static Value> {
    let module = module.trim();
    let wanted = if module.starts_with("links.") || module.starts_with("tracers.") {
        std::borrow::Cow::Borrowed(module)
    } else {
        std::borrow::Cow::Owned(format!("links.{module}"))
    };
    PARSED.iter().find(|(name, _)| *name == wanted.as_ref()).map(|(_, schema)| schema)
}

/// Every standard link's and tracer's schema, by module, in name order.
pub fn standard() -> impl Iterator<Item = (&'static str, &'static Value)> {
    PARSED.iter().map(|(module, schema)| (*module, schema))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_schema_text_parses() {
        assert_eq!(PARSED.len(), SCHEMAS.len(), "a shipped schema is not valid JSON");
        assert!(for_module("links.tag").is_some() && for_module("tag").is_some());
        assert!(for_module("tracers.jlinc").is_some());
        assert!(for_module("links.nonexistent").is_none());
    }
}
