//! docs/link-options.md is generated from the option schemas the standard links
//! publish (`links/<name>/options.schema.json`, compiled into the host): one
//! table per link. This test regenerates it and fails when the committed file
//! differs (run with `CONSERVER_BLESS=1` to rewrite it), and checks that every
//! shipped schema parses and stays inside the validator's subset.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;

use conserver_config::{json_schema, option_schemas};
use serde_json::Value;

fn type_text(schema: &Value) -> String {
    if let Some(choices) = schema.get("enum").and_then(Value::as_array) {
        return choices.iter().map(Value::to_string).collect::<Vec<_>>().join(" | ");
    }
    if let Some(any) = schema.get("anyOf").and_then(Value::as_array) {
        return any.iter().map(type_text).collect::<Vec<_>>().join(" | ");
    }
    let one = |name: &str| match name {
        "array" => {
            let items = schema.get("items").map(type_text).unwrap_or_else(|| "any".into());
            format!("list of {items}")
        }
        "object" => "mapping".to_string(),
        other => other.to_string(),
    };
    match schema.get("type") {
        Some(Value::String(name)) => one(name),
        Some(Value::Array(names)) => names.iter().filter_map(Value::as_str).map(one).collect::<Vec<_>>().join(" | "),
        _ => "any".into(),
    }
}

fn cell(text: &str) -> String {
    text.replace('|', "\\|").replace('\n', " ")
}

fn generate() -> String {
    let mut out = String::new();
    for (module, schema) in option_schemas::standard() {
        out.push_str(&format!("## `{module}`\n\n"));
        let unknown = match schema.get("additionalProperties") {
            Some(Value::Bool(false)) => "Any other option is refused when the config loads (with a did-you-mean).",
            _ => "Other options are accepted and passed to the link.",
        };
        out.push_str(&format!("{unknown}\n\n| option | type | default | meaning |\n|---|---|---|---|\n"));
        for (name, property) in schema.get("properties").and_then(Value::as_object).into_iter().flatten() {
            let default = property.get("default").map(|d| format!("`{d}`")).unwrap_or_else(|| "—".into());
            let meaning = property.get("description").and_then(Value::as_str).unwrap_or_default();
            out.push_str(&format!(
                "| `{name}` | {} | {} | {} |\n",
                cell(&type_text(property)),
                cell(&default),
                cell(meaning)
            ));
        }
        out.push('\n');
    }
    out
}

#[test]
fn every_shipped_schema_parses_and_uses_only_the_supported_subset() {
    let count = option_schemas::standard().count();
    assert!(count >= 17, "expected a schema for each standard link, found {count}");
    for (module, schema) in option_schemas::standard() {
        json_schema::check_schema(schema).unwrap_or_else(|e| panic!("{module}: {e}"));
        assert_eq!(schema["type"], "object", "{module}: options are a mapping");
        for (name, property) in schema["properties"].as_object().into_iter().flatten() {
            assert!(property.get("description").is_some(), "{module}.{name} has no description");
        }
    }
}

#[test]
fn the_link_options_reference_matches_the_schemas() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/link-options.md");
    let head = "# Link options\n\nGenerated from the option schemas the standard links publish \
                (`links/<name>/options.schema.json`); `cargo test -p conserver-config --test link_options` \
                fails when this file and the schemas disagree. The host checks every standard link's options \
                against its schema when a config loads (`conserver check`, `POST /config`, start and reload), \
                both as defined under `links:` and as each chain step's inline options merge over them. \
                A link loaded from `component:` brings no schema and is not checked.\n\n";
    let expected = format!("{head}{}", generate());
    if std::env::var_os("CONSERVER_BLESS").is_some() {
        std::fs::write(&path, &expected).unwrap();
        return;
    }
    let text = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        text == expected,
        "docs/link-options.md is out of date with the link schemas: run \
         `CONSERVER_BLESS=1 cargo test -p conserver-config --test link_options` and commit the result"
    );
}
