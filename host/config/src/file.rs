//! The config file: Python-conserver sections, read unchanged, plus wasm keys.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use indexmap::IndexMap;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::{ConfigError, LimitsOverride, WasmSection};

/// The whole config file. Unknown top-level keys are ignored with a warning, as the
/// Python conserver ignores them.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Config {
    /// Link definitions by name.
    #[serde(default, deserialize_with = "null_as_default")]
    pub links: IndexMap<String, LinkDef>,
    /// Storage definitions by name.
    #[serde(default, deserialize_with = "null_as_default")]
    pub storages: IndexMap<String, StorageDef>,
    /// Chains by name: which lists they read, which links they run, where they write.
    #[serde(default, deserialize_with = "null_as_default")]
    pub chains: IndexMap<String, ChainDef>,
    /// Tracers by name (run around every link; accepted, not run yet).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tracers: Option<IndexMap<String, Value>>,
    /// Per-ingress-list API keys for `POST /vcon/external-ingress`: list name → key
    /// or list of keys.
    #[serde(default, deserialize_with = "null_as_default")]
    pub ingress_auth: IndexMap<String, Value>,
    /// Other conservers to pull vCons from.
    #[serde(default, deserialize_with = "null_as_default")]
    pub followers: IndexMap<String, Value>,
    /// Python modules to import at worker start: accepted and ignored with a warning.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub imports: Option<Value>,
    /// Sandbox settings for wasm links (not in Python configs).
    #[serde(default)]
    pub wasm: WasmSection,
    /// Keys this version does not know; kept so a warning can name them.
    #[serde(flatten)]
    pub unknown: BTreeMap<String, Value>,
}

/// One entry under `links:`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct LinkDef {
    /// Python module path, e.g. `links.tag`; resolves to the standard component of
    /// that name. Either this or `component` is required.
    #[serde(default)]
    pub module: Option<String>,
    /// Path to a link component (`.wasm`), relative to the config file's directory.
    /// Takes precedence over `module`.
    #[serde(default)]
    pub component: Option<PathBuf>,
    /// Options handed to the link as JSON (absent or null means `{}`).
    #[serde(default)]
    pub options: Option<Value>,
    /// Per-link sandbox limits; unset fields take `wasm.limits`.
    #[serde(default)]
    pub limits: LimitsOverride,
    /// Python pip package name: accepted and ignored.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pip_name: Option<String>,
    /// Keys this version does not read (the Python conserver ignores them too).
    #[serde(flatten)]
    pub unknown: BTreeMap<String, Value>,
}

/// One entry under `storages:`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct StorageDef {
    /// Backend, e.g. `storage.file` (the `storage.` prefix is optional).
    pub module: String,
    /// Backend options; absent means the backend's defaults.
    #[serde(default)]
    pub options: Option<Value>,
    /// Keys this version does not read.
    #[serde(flatten)]
    pub unknown: BTreeMap<String, Value>,
}

/// One entry under `chains:`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ChainDef {
    /// Link names, run in order.
    #[serde(default, deserialize_with = "null_as_default")]
    pub links: Vec<String>,
    /// Lists whose uuids this chain processes.
    #[serde(default, deserialize_with = "null_as_default")]
    pub ingress_lists: Vec<String>,
    /// Lists the uuid is pushed to after the chain succeeds and the vCon is stored.
    #[serde(default, deserialize_with = "null_as_default")]
    pub egress_lists: Vec<String>,
    /// Storage names the vCon is written to after the links.
    #[serde(default, deserialize_with = "null_as_default")]
    pub storages: Vec<String>,
    /// `0`/`false` disables the chain (its lists are not read). Default enabled.
    #[serde(default)]
    pub enabled: Option<Value>,
    /// Keys this version does not read (`timeout`, `tracers`, …).
    #[serde(flatten)]
    pub unknown: BTreeMap<String, Value>,
}

impl ChainDef {
    /// Whether the chain runs: absent, `1`, `true`, `"true"` are on.
    pub fn is_enabled(&self) -> bool {
        match &self.enabled {
            None | Some(Value::Null) => true,
            Some(Value::Bool(b)) => *b,
            Some(Value::Number(n)) => n.as_f64().is_some_and(|n| n != 0.0),
            Some(Value::String(s)) => !matches!(s.trim().to_ascii_lowercase().as_str(), "0" | "false" | "no" | "off"),
            Some(_) => true,
        }
    }
}

fn null_as_default<'de, D, T>(deserializer: D) -> Result<T, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(deserializer)?.unwrap_or_default())
}

impl Config {
    /// Read and validate a config file.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text =
            std::fs::read_to_string(path).map_err(|source| ConfigError::Read { path: path.to_path_buf(), source })?;
        Self::parse(&text, path)
    }

    /// Parse and validate config text; `path` is used in messages only.
    pub fn parse(text: &str, path: &Path) -> Result<Self, ConfigError> {
        let parse_error = |message: String| ConfigError::Parse { path: path.to_path_buf(), message };
        // An empty document (or only comments) is an empty config, as in Python.
        let value: Option<serde_yaml_ng::Value> =
            serde_yaml_ng::from_str(text).map_err(|e| parse_error(e.to_string()))?;
        let config: Config = match value {
            None | Some(serde_yaml_ng::Value::Null) => Config::default(),
            Some(value) => serde_yaml_ng::from_value(value).map_err(|e| parse_error(e.to_string()))?,
        };
        config.validate(path)?;
        config.warn_about_ignored_keys(path);
        Ok(config)
    }

    /// Read a config file as a JSON document (key order kept), without validating
    /// it: what `GET /config` shows. An empty file is `{}`.
    pub fn read_document(path: &Path) -> Result<serde_json::Value, ConfigError> {
        let text =
            std::fs::read_to_string(path).map_err(|source| ConfigError::Read { path: path.to_path_buf(), source })?;
        let value: Option<serde_json::Value> = serde_yaml_ng::from_str(&text)
            .map_err(|e| ConfigError::Parse { path: path.to_path_buf(), message: e.to_string() })?;
        Ok(value.filter(|v| !v.is_null()).unwrap_or_else(|| serde_json::json!({})))
    }

    /// Validate a config given as a JSON document (from `POST /config`); `path` is
    /// the file it would be written to, used in messages.
    pub fn from_document(document: &serde_json::Value, path: &Path) -> Result<Self, ConfigError> {
        let text = serde_yaml_ng::to_string(document)
            .map_err(|e| ConfigError::Parse { path: path.to_path_buf(), message: e.to_string() })?;
        Self::parse(&text, path)
    }

    fn validate(&self, path: &Path) -> Result<(), ConfigError> {
        let invalid = |key: String, problem: String| ConfigError::Invalid { path: path.to_path_buf(), key, problem };
        for (name, link) in &self.links {
            if link.module.is_none() && link.component.is_none() {
                return Err(invalid(
                    format!("links.{name}"),
                    "has neither `module` nor `component`; add `module: links.<name>` or `component: path/to/link.wasm`"
                        .into(),
                ));
            }
            if let Some(options) = &link.options
                && !(options.is_object() || options.is_null())
            {
                return Err(invalid(format!("links.{name}.options"), "must be a mapping".into()));
            }
        }
        let mut owner_of_list: IndexMap<&str, &str> = IndexMap::new();
        for (chain_name, chain) in &self.chains {
            for (i, link) in chain.links.iter().enumerate() {
                if !self.links.contains_key(link) {
                    return Err(invalid(
                        format!("chains.{chain_name}.links[{i}]"),
                        format!("names link `{link}`, which is not defined under `links:`; define it or remove it"),
                    ));
                }
            }
            for (i, storage) in chain.storages.iter().enumerate() {
                if !self.storages.contains_key(storage) {
                    return Err(invalid(
                        format!("chains.{chain_name}.storages[{i}]"),
                        format!(
                            "names storage `{storage}`, which is not defined under `storages:`; define it or remove it"
                        ),
                    ));
                }
            }
            if !chain.is_enabled() {
                continue;
            }
            for list in &chain.ingress_lists {
                if let Some(other) = owner_of_list.insert(list, chain_name) {
                    return Err(invalid(
                        format!("chains.{chain_name}.ingress_lists"),
                        format!("list `{list}` is already read by chain `{other}`; one ingress list feeds one chain"),
                    ));
                }
            }
        }
        Ok(())
    }

    fn warn_about_ignored_keys(&self, path: &Path) {
        let file = path.display();
        for key in self.unknown.keys() {
            tracing::warn!(%file, key, "unknown top-level config key ignored");
        }
        if self.imports.is_some() {
            tracing::warn!(%file, "`imports` is a Python-only feature and is ignored; links are wasm components");
        }
        for (name, link) in &self.links {
            if link.pip_name.is_some() {
                tracing::warn!(%file, link = %name, "`pip_name` is ignored; links are wasm components");
            }
        }
    }

    /// The enabled chains, in file order.
    pub fn enabled_chains(&self) -> impl Iterator<Item = (&String, &ChainDef)> {
        self.chains.iter().filter(|(_, chain)| chain.is_enabled())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Config, ConfigError> {
        Config::parse(text, Path::new("test.yml"))
    }

    #[test]
    fn empty_and_comment_only_files_are_empty_configs() {
        assert!(parse("").unwrap().chains.is_empty());
        assert!(parse("# nothing\n").unwrap().links.is_empty());
    }

    #[test]
    fn a_python_config_loads_with_its_extra_keys() {
        let config = parse(
            r#"
links:
  tag:
    module: links.tag
    ingress-lists: [x]
    options:
      tags: [a]
storages:
  file:
    module: storage.file
    options: {path: /tmp/x}
chains:
  main:
    links: [tag]
    ingress_lists: [in]
    egress_lists: [out]
    storages: [file]
    enabled: 1
    timeout: 30
tracers:
imports:
  x: y
"#,
        )
        .unwrap();
        assert_eq!(config.chains["main"].links, ["tag"]);
        assert!(config.chains["main"].is_enabled());
        assert!(config.links["tag"].unknown.contains_key("ingress-lists"));
    }

    #[test]
    fn a_chain_naming_a_missing_link_is_refused_with_its_key_path() {
        let err = parse("chains:\n  c:\n    links: [ghost]\n").unwrap_err().to_string();
        assert!(err.contains("chains.c.links[0]") && err.contains("ghost"), "{err}");
    }

    #[test]
    fn two_chains_on_one_ingress_list_are_refused() {
        let err =
            parse("chains:\n  a:\n    ingress_lists: [in]\n  b:\n    ingress_lists: [in]\n").unwrap_err().to_string();
        assert!(err.contains("already read by chain `a`"), "{err}");
    }

    #[test]
    fn disabled_chains_do_not_claim_lists() {
        let config =
            parse("chains:\n  a:\n    ingress_lists: [in]\n    enabled: 0\n  b:\n    ingress_lists: [in]\n").unwrap();
        assert_eq!(config.enabled_chains().count(), 1);
    }

    #[test]
    fn yaml_errors_name_the_file() {
        let err = parse("links: [").unwrap_err().to_string();
        assert!(err.contains("test.yml"), "{err}");
    }
}

#[cfg(test)]
mod example_tests {
    use super::*;

    #[test]
    fn the_example_config_parses() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../config.example.yml");
        let config = Config::load(&path).unwrap();
        assert!(config.chains.contains_key("main"));
        assert_eq!(config.links["tag"].module.as_deref(), Some("links.tag"));
        assert!(config.unknown.is_empty(), "unknown keys: {:?}", config.unknown.keys());
    }
}
