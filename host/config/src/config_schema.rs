//! A JSON Schema of `config.yml` (`conserver config schema`), so editors can
//! complete and check a config: made from the config structs and their doc
//! comments, with the rules the loader adds — no key a section does not take
//! (the keys Python configs carry are allowed, marked deprecated), and each
//! standard link's `options` checked against the schema the link publishes.

use serde_json::{Map, Value, json};

use crate::Config;
use crate::keys::PYTHON_ONLY;
use crate::option_schemas;

/// The schema, as JSON.
pub fn config_schema() -> Value {
    let mut schema = serde_json::to_value(schemars::schema_for!(Config)).unwrap_or_default();
    schema["title"] = json!("conserver config.yml");
    close(&mut schema, &[]);
    let defs = schema.get_mut("$defs").and_then(Value::as_object_mut);
    let Some(defs) = defs else { return schema };
    for (name, section) in [("LinkDef", "links"), ("ChainDef", "chains"), ("StorageDef", "storages")] {
        if let Some(def) = defs.get_mut(name) {
            let python: Vec<(&str, &str)> =
                PYTHON_ONLY.iter().filter(|(s, _, _)| *s == section).map(|(_, key, why)| (*key, *why)).collect();
            close(def, &python);
        }
    }
    if let Some(def) = defs.get_mut("FollowerDef") {
        close(def, &[]);
    }
    if let Some(link) = defs.get_mut("LinkDef") {
        link["allOf"] = Value::Array(option_rules());
    }
    schema
}

/// Refuse keys the object schema does not list; `python` keys are listed as
/// deprecated (they load with a warning).
fn close(object: &mut Value, python: &[(&str, &str)]) {
    let Some(map) = object.as_object_mut() else { return };
    map.insert("additionalProperties".into(), Value::Bool(false));
    let properties = map.entry("properties").or_insert_with(|| Value::Object(Map::new()));
    if let Some(properties) = properties.as_object_mut() {
        for (key, why) in python {
            properties.insert(
                (*key).to_string(),
                json!({"deprecated": true, "description": format!("Python config key, ignored: {why}.")}),
            );
        }
    }
}

/// For each standard link: when `module` names it (and no `component:` is
/// given), `options` follow its schema.
fn option_rules() -> Vec<Value> {
    option_schemas::standard()
        .map(|(module, schema)| {
            let mut options = schema.clone();
            if let Some(map) = options.as_object_mut() {
                map.remove("$schema");
            }
            let mut modules = vec![json!(module)];
            if let Some(bare) = module.strip_prefix("links.") {
                modules.push(json!(bare));
            }
            json!({
                "if": {
                    "properties": {"module": {"enum": modules}},
                    "required": ["module"],
                    "not": {"required": ["component"]}
                },
                "then": {"properties": {"options": {"anyOf": [{"type": "null"}, options]}}}
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_section_is_closed_and_standard_links_get_their_option_schema() {
        let schema = config_schema();
        assert_eq!(schema["additionalProperties"], false);
        for def in ["LinkDef", "ChainDef", "StorageDef", "FollowerDef"] {
            assert_eq!(schema["$defs"][def]["additionalProperties"], false, "{def}");
        }
        assert_eq!(schema["$defs"]["LinkDef"]["properties"]["ingress-lists"]["deprecated"], true);
        let description = schema["$defs"]["ChainDef"]["properties"]["ingress_lists"]["description"].as_str();
        assert!(description.is_some_and(|d| d.contains("Lists whose uuids")), "doc comments become descriptions");
        let rules = schema["$defs"]["LinkDef"]["allOf"].as_array().unwrap();
        assert!(rules.iter().any(|rule| rule["if"]["properties"]["module"]["enum"][0] == "links.tag"));
    }
}
