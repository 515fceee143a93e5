//! The config file: Python-conserver sections, read unchanged, plus wasm keys.

use std::path::{Path, PathBuf};

use indexmap::IndexMap;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::allowed_hosts::AllowedHost;
use crate::substitute::substitute_redacting;
use crate::{ConfigError, LimitsOverride, Redactor, WasmSection};
use crate::{json_schema, keys, option_schemas};

/// The whole config file. A key no section takes is an error with a did-you-mean
/// (keys Python configs carry load with a warning): see [`crate::keys`].
#[derive(Debug, Clone, Default, Serialize, Deserialize, schemars::JsonSchema)]
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
    /// Tracers by name: components called before a chain's first link and after
    /// each link (the same keys as a link: `module: tracers.<name>` or
    /// `component:`, `options`, limits and grants). Every chain runs all of them,
    /// unless it lists its own under `tracers:`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tracers: Option<IndexMap<String, LinkDef>>,
    /// Per-ingress-list API keys for `POST /vcon/external-ingress`: list name → key
    /// or list of keys.
    #[serde(default, deserialize_with = "null_as_default")]
    pub ingress_auth: IndexMap<String, Value>,
    /// Other conservers to pull vCons from.
    #[serde(default, deserialize_with = "null_as_default")]
    pub followers: IndexMap<String, FollowerDef>,
    /// Python modules to import at worker start: accepted and ignored with a warning.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub imports: Option<Value>,
    /// Sandbox settings for wasm links (not in Python configs).
    #[serde(default)]
    pub wasm: WasmSection,
}

/// One entry under `links:`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, schemars::JsonSchema)]
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
    /// Hosts the link may call over HTTP (`scheme://host[:port]`, Spin's grammar:
    /// `*`, `*.domain`, CIDR blocks, port ranges). Empty: no network at all.
    #[serde(default, deserialize_with = "null_as_default")]
    pub allowed_outbound_hosts: Vec<String>,
    /// Names of the secrets the link may read (environment variables, or files
    /// named by `<NAME>_FILE`). Empty: none.
    #[serde(default, deserialize_with = "null_as_default")]
    pub secrets: Vec<String>,
    /// Lists the link may route a vCon to (`route-to` directives), besides any
    /// chain's ingress or egress list and the list names in its own options (so a
    /// Python `tag_router` config works unchanged). A route anywhere else sends the
    /// vCon to the DLQ with the list named.
    #[serde(default, deserialize_with = "null_as_default")]
    pub allowed_routes: Vec<String>,
    /// Python pip package name: accepted and ignored.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pip_name: Option<String>,
}

/// One entry of a chain's `links` or `storages`: a name, or `{name: {options}}`
/// whose options are merged over the named entry's options for this chain only.
#[derive(Debug, Clone, PartialEq)]
pub struct ChainStep {
    /// The link or storage name.
    pub name: String,
    /// Options overriding the named entry's, key by key.
    pub options: Option<serde_json::Map<String, Value>>,
}

impl<'de> Deserialize<'de> for ChainStep {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let shape = "a chain entry must be a name, or a one-key mapping `name: {option: value}`";
        match Value::deserialize(deserializer)? {
            Value::String(name) => Ok(Self { name, options: None }),
            Value::Object(map) if map.len() == 1 => {
                let (name, options) = map.into_iter().next().ok_or_else(|| serde::de::Error::custom(shape))?;
                match options {
                    Value::Null => Ok(Self { name, options: None }),
                    Value::Object(options) => Ok(Self { name, options: Some(options) }),
                    _ => Err(serde::de::Error::custom(format!("the inline options of `{name}` must be a mapping"))),
                }
            }
            _ => Err(serde::de::Error::custom(shape)),
        }
    }
}

impl schemars::JsonSchema for ChainStep {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "ChainStep".into()
    }

    fn json_schema(_generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "description": "A link or storage name, or a one-key mapping `name: {option: value}` whose options are merged over the named entry's for this chain only.",
            "anyOf": [
                {"type": "string"},
                {"type": "object", "minProperties": 1, "maxProperties": 1, "additionalProperties": {"type": ["object", "null"]}}
            ]
        })
    }
}

impl Serialize for ChainStep {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match &self.options {
            None => serializer.serialize_str(&self.name),
            Some(options) => {
                let mut map = serde_json::Map::new();
                map.insert(self.name.clone(), Value::Object(options.clone()));
                map.serialize(serializer)
            }
        }
    }
}

impl ChainStep {
    /// `base` with this step's inline options merged over it (key by key).
    pub fn merged_options(&self, base: Option<&Value>) -> Value {
        let mut merged = match base {
            Some(Value::Object(map)) => map.clone(),
            _ => serde_json::Map::new(),
        };
        if let Some(inline) = &self.options {
            merged.extend(inline.clone());
        }
        Value::Object(merged)
    }
}

/// What a chain does when a storage keeps failing.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum StorageFailure {
    /// Dead-letter the vCon with the storage named in the reason.
    #[default]
    Dlq,
    /// Log the failure and carry on to egress (the Python behaviour).
    Log,
}

/// One entry under `followers:`: pull another conserver's egress list into a local
/// ingress list.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct FollowerDef {
    /// The other conserver's API base URL, root path included (e.g. `http://host:8000/api`).
    pub url: String,
    /// The remote egress list to drain.
    pub egress_list: String,
    /// The local list the uuids are pushed to.
    pub follower_ingress_list: String,
    /// The token sent in the API token header.
    #[serde(default)]
    pub auth_token: Option<String>,
    /// Seconds between polls.
    pub pulling_interval: f64,
    /// Most uuids taken per poll.
    pub fetch_vcon_limit: u64,
}

/// One entry under `storages:`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, schemars::JsonSchema)]
pub struct StorageDef {
    /// Backend, e.g. `storage.file` (the `storage.` prefix is optional).
    pub module: String,
    /// Backend options; absent means the backend's defaults.
    #[serde(default)]
    pub options: Option<Value>,
}

/// One entry under `chains:`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ChainDef {
    /// Links, run in order: names, or `name: {options}` to override options here.
    #[serde(default, deserialize_with = "null_as_default")]
    pub links: Vec<ChainStep>,
    /// Lists whose uuids this chain processes.
    #[serde(default, deserialize_with = "null_as_default")]
    pub ingress_lists: Vec<String>,
    /// Lists the uuid is pushed to after the chain succeeds and the vCon is stored.
    #[serde(default, deserialize_with = "null_as_default")]
    pub egress_lists: Vec<String>,
    /// Storages the vCon is written to after the links: names, or `name: {options}`.
    #[serde(default, deserialize_with = "null_as_default")]
    pub storages: Vec<ChainStep>,
    /// `0`/`false` disables the chain (its lists are not read). Default enabled.
    #[serde(default)]
    pub enabled: Option<Value>,
    /// Seconds one vCon may spend in this chain before it is dead-lettered.
    #[serde(default)]
    pub timeout: Option<f64>,
    /// Tracers for this chain (names under `tracers:`); all of them when absent.
    #[serde(default)]
    pub tracers: Option<Vec<String>>,
    /// What a storage that still fails after its retries does to the vCon: `dlq`
    /// (default: dead-letter it, naming the storage) or `log` (log it and carry on,
    /// the Python behaviour).
    #[serde(default)]
    pub storage_failure: StorageFailure,
    /// Seconds a failing storage write is retried (backoff from 0.2 s to 5 s)
    /// before `storage_failure` applies, so a short database or bucket outage is
    /// ridden out instead of dead-lettering every vCon that meets it; the chain's
    /// `timeout` still bounds the whole chain. Default 60; 0 tries once.
    #[serde(default)]
    pub storage_retry_secs: Option<f64>,
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

/// A value of the wrong type (or shape), with the key path and line.
fn type_error(error: serde_path_to_error::Error<serde_yaml_ng::Error>, path: &Path) -> ConfigError {
    let key = error.path().to_string();
    let inner = error.into_inner();
    let line = inner.location().map(|location| location.line());
    let mut problem = inner.to_string();
    // The parser's text ends with the position, which the error shows already.
    if let Some(at) = problem.rfind(" at line ") {
        problem.truncate(at);
    }
    let problem = match problem.split_once(": ") {
        // It may start with the key path too.
        Some((head, rest)) if head == key => rest.to_string(),
        _ => problem,
    };
    if key == "." {
        return ConfigError::Parse { path: path.to_path_buf(), message: problem };
    }
    ConfigError::Invalid { path: path.to_path_buf(), key, line, problem: format!("is invalid: {problem}") }
}

/// `error` with the line of its key filled in from `text`, when it has none.
fn with_line(error: ConfigError, text: &str) -> ConfigError {
    match error {
        ConfigError::Invalid { path, key, line: None, problem } => {
            let segments: Vec<&str> = key.split('.').collect();
            let line = keys::line_of(text, &segments);
            ConfigError::Invalid { path, key, line, problem }
        }
        other => other,
    }
}

impl Config {
    /// Read and validate a config file.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text =
            std::fs::read_to_string(path).map_err(|source| ConfigError::Read { path: path.to_path_buf(), source })?;
        Self::parse(&text, path)
    }

    /// Parse and validate config text; `path` is used in messages only.
    /// `${VAR}` references are resolved from the process environment.
    pub fn parse(text: &str, path: &Path) -> Result<Self, ConfigError> {
        Self::parse_with_env(text, path, &|name| std::env::var(name).ok())
    }

    /// [`Config::parse`] with a given environment. Errors never show a value
    /// substituted from the environment or a file (see [`Redactor`]).
    pub fn parse_with_env(text: &str, path: &Path, env: &dyn Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let (text, redactor) = substitute_redacting(text, path, env)?;
        Self::parse_substituted(&text, path).map_err(|e| e.redacted(&redactor))
    }

    /// What substituting the environment into `document` (a config as JSON)
    /// inserts, to remove from messages about it (a loaded component's or a
    /// storage's errors). Empty when the document cannot be substituted.
    pub fn redactor_for_document(document: &serde_json::Value) -> Redactor {
        let env = |name: &str| std::env::var(name).ok();
        serde_yaml_ng::to_string(document)
            .ok()
            .and_then(|text| substitute_redacting(&text, Path::new(""), &env).ok())
            .map(|(_, redactor)| redactor)
            .unwrap_or_default()
    }

    fn parse_substituted(text: &str, path: &Path) -> Result<Self, ConfigError> {
        let parse_error = |message: String| ConfigError::Parse { path: path.to_path_buf(), message };
        // An empty document (or only comments) is an empty config, as in Python.
        let mut yaml: serde_yaml_ng::Value = serde_yaml_ng::from_str(text).map_err(|e| parse_error(e.to_string()))?;
        // YAML merge keys (`<<: *defaults`), which PyYAML applies, are applied
        // first; such a file is read from the merged value (type errors then
        // carry the key path, and the line where it can be found).
        let merged = text.contains("<<");
        if merged {
            yaml.apply_merge().map_err(|e| parse_error(e.to_string()))?;
        }
        let document: Value = serde_yaml_ng::from_value(yaml.clone()).map_err(|e| parse_error(e.to_string()))?;
        let mut config: Config = match document {
            Value::Null => Config::default(),
            document => {
                keys::check(&document, text, path)?;
                let typed = if merged {
                    serde_path_to_error::deserialize(yaml)
                        .map_err(|e| type_error(e, path))
                        .map_err(|e| with_line(e, text))
                } else {
                    serde_path_to_error::deserialize(serde_yaml_ng::Deserializer::from_str(text))
                        .map_err(|e| type_error(e, path))
                };
                typed?
            }
        };
        config.resolve_legacy_aliases(path);
        config.validate(path).map_err(|e| with_line(e, text))?;
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
        let invalid =
            |key: String, problem: String| ConfigError::Invalid { path: path.to_path_buf(), key, line: None, problem };
        let tracers = self.tracers.iter().flatten().map(|(name, def)| ("tracers", name, def));
        for (section, name, link) in self.links.iter().map(|(name, def)| ("links", name, def)).chain(tracers) {
            if link.module.is_none() && link.component.is_none() {
                return Err(invalid(
                    format!("{section}.{name}"),
                    format!(
                        "has neither `module` nor `component`; add `module: {section}.<name>` or `component: path/to/{}.wasm`",
                        if section == "links" { "link" } else { "tracer" }
                    ),
                ));
            }
            if let Some(options) = &link.options
                && !(options.is_object() || options.is_null())
            {
                return Err(invalid(format!("{section}.{name}.options"), "must be a mapping".into()));
            }
            for (i, entry) in link.allowed_outbound_hosts.iter().enumerate() {
                AllowedHost::parse(entry)
                    .map_err(|e| invalid(format!("{section}.{name}.allowed_outbound_hosts[{i}]"), e))?;
            }
            for (i, secret) in link.secrets.iter().enumerate() {
                if secret.is_empty() || !secret.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                    return Err(invalid(
                        format!("{section}.{name}.secrets[{i}]"),
                        format!(
                            "`{secret}` is not a secret name (an environment variable name such as OPENAI_API_KEY)"
                        ),
                    ));
                }
            }
        }
        self.validate_link_options(path)?;
        for (name, follower) in &self.followers {
            if !(follower.url.starts_with("http://") || follower.url.starts_with("https://")) {
                return Err(invalid(format!("followers.{name}.url"), "must be an http:// or https:// URL".into()));
            }
            if !(follower.pulling_interval.is_finite() && follower.pulling_interval > 0.0) {
                return Err(invalid(
                    format!("followers.{name}.pulling_interval"),
                    "must be a number of seconds above 0".into(),
                ));
            }
            if follower.fetch_vcon_limit == 0 {
                return Err(invalid(format!("followers.{name}.fetch_vcon_limit"), "must be at least 1".into()));
            }
        }
        let mut owner_of_list: IndexMap<&str, &str> = IndexMap::new();
        for (chain_name, chain) in &self.chains {
            for (i, link) in chain.links.iter().enumerate() {
                if !self.links.contains_key(&link.name) {
                    return Err(invalid(
                        format!("chains.{chain_name}.links[{i}]"),
                        format!(
                            "names link `{}`, which is not defined under `links:`; define it or remove it",
                            link.name
                        ),
                    ));
                }
            }
            for (i, storage) in chain.storages.iter().enumerate() {
                if !self.storages.contains_key(&storage.name) {
                    return Err(invalid(
                        format!("chains.{chain_name}.storages[{i}]"),
                        format!(
                            "names storage `{}`, which is not defined under `storages:`; define it or remove it",
                            storage.name
                        ),
                    ));
                }
            }
            if let Some(timeout) = chain.timeout
                && !(timeout.is_finite() && timeout > 0.0)
            {
                return Err(invalid(
                    format!("chains.{chain_name}.timeout"),
                    "must be a number of seconds above 0".into(),
                ));
            }
            for (i, tracer) in chain.tracers.iter().flatten().enumerate() {
                if !self.tracers.as_ref().is_some_and(|t| t.contains_key(tracer)) {
                    return Err(invalid(
                        format!("chains.{chain_name}.tracers[{i}]"),
                        format!("names tracer `{tracer}`, which is not defined under `tracers:`"),
                    ));
                }
            }
            if !chain.is_enabled() {
                continue;
            }
            if chain.ingress_lists.is_empty() {
                return Err(invalid(
                    format!("chains.{chain_name}.ingress_lists"),
                    "is empty, so the chain reads no list and never runs: name the lists it reads \
                     (`ingress_lists: [name]`), or set `enabled: 0` to keep it off"
                        .into(),
                ));
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

    /// Check the options of every standard link (`module: links.<name>` or
    /// `tracers.<name>`, no `component:`) against the schema it publishes, both
    /// as defined and as each chain step merges its inline options over them.
    fn validate_link_options(&self, path: &Path) -> Result<(), ConfigError> {
        let invalid =
            |key: String, problem: String| ConfigError::Invalid { path: path.to_path_buf(), key, line: None, problem };
        let schema_of = |def: &LinkDef| match (&def.component, &def.module) {
            (None, Some(module)) => option_schemas::for_module(module),
            _ => None,
        };
        let at = |base: String, below: String| if below.is_empty() { base } else { format!("{base}.{below}") };
        let tracers = self.tracers.iter().flatten().map(|(name, def)| ("tracers", name, def));
        for (section, name, def) in self.links.iter().map(|(name, def)| ("links", name, def)).chain(tracers) {
            let Some(schema) = schema_of(def) else { continue };
            let options =
                def.options.clone().filter(|o| !o.is_null()).unwrap_or_else(|| Value::Object(Default::default()));
            json_schema::validate(schema, &options)
                .map_err(|(below, problem)| invalid(at(format!("{section}.{name}.options"), below), problem))?;
        }
        for (chain_name, chain) in &self.chains {
            for (i, step) in chain.links.iter().enumerate() {
                let (Some(_), Some(def)) = (&step.options, self.links.get(&step.name)) else { continue };
                let Some(schema) = schema_of(def) else { continue };
                let merged = step.merged_options(def.options.as_ref());
                json_schema::validate(schema, &merged).map_err(|(below, problem)| {
                    invalid(at(format!("chains.{chain_name}.links[{i}].{}", step.name), below), problem)
                })?;
            }
        }
        Ok(())
    }

    fn warn_about_ignored_keys(&self, path: &Path) {
        let file = path.display();
        if self.imports.is_some() {
            tracing::warn!(%file, "`imports` is a Python-only feature and is ignored; links are wasm components");
        }
        for (name, link) in &self.links {
            if link.pip_name.is_some() {
                tracing::warn!(%file, link = %name, "`pip_name` is ignored; links are wasm components");
            }
        }
    }

    /// Rewrite the Python conserver's legacy transcription modules to the
    /// `transcribe` link with a `vendor` (reference/engine.md §6.4).
    fn resolve_legacy_aliases(&mut self, path: &Path) {
        const ALIASES: &[(&str, &str)] = &[
            ("links.openai_transcribe", "openai"),
            ("links.groq_whisper", "groq"),
            ("links.hugging_face_whisper", "hugging_face"),
            ("links.deepgram_link", "deepgram"),
        ];
        for (name, link) in &mut self.links {
            let Some(vendor) =
                ALIASES.iter().find(|(module, _)| link.module.as_deref() == Some(*module)).map(|(_, v)| *v)
            else {
                continue;
            };
            tracing::warn!(file = %path.display(), link = %name, module = link.module.as_deref().unwrap_or_default(),
                "legacy transcription module; use `module: links.transcribe` with `vendor: {vendor}`");
            link.module = Some("links.transcribe".into());
            let original = link.options.take();
            let options = match original {
                Some(Value::Object(mut map)) if map.contains_key("vendor") || map.contains_key("vendor_options") => {
                    map.entry("vendor").or_insert_with(|| Value::String(vendor.into()));
                    Value::Object(map)
                }
                other => serde_json::json!({
                    "vendor": vendor,
                    "vendor_options": other.filter(|v| !v.is_null()).unwrap_or_else(|| serde_json::json!({})),
                }),
            };
            link.options = Some(options);
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
        assert_eq!(config.chains["main"].links[0].name, "tag");
        assert!(config.chains["main"].is_enabled());
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
    fn type_errors_name_the_key_path_and_line() {
        let err =
            parse("links:\n  tag:\n    module: links.tag\n    limits:\n      fuel: lots\n").unwrap_err().to_string();
        assert!(err.contains("links.tag.limits.fuel") && err.contains("line 5"), "{err}");
        let err = parse("chains:\n  c:\n    ingress_lists: [a]\n    timeout: soon\n").unwrap_err().to_string();
        assert!(err.contains("chains.c.timeout") && err.contains("line 4"), "{err}");
        let err = parse("chains:\n  c:\n    ingress_lists: in\n").unwrap_err().to_string();
        assert!(err.contains("chains.c.ingress_lists") && err.contains("line 3"), "{err}");
    }

    #[test]
    fn yaml_merge_keys_are_applied_as_pyyaml_does() {
        let config = parse(
            "defaults: &llm\n  model: gpt-test\n  prompt: hi\nlinks:\n  a:\n    module: links.analyze\n    options:\n      <<: *llm\n      analysis_type: summary\n",
        );
        // `defaults` only holds the anchor (no section is called anything like
        // it): ignored with a warning, and the merge applied.
        let config = config.unwrap();
        assert_eq!(
            config.links["a"].options,
            Some(serde_json::json!({"model": "gpt-test", "prompt": "hi", "analysis_type": "summary"}))
        );
        let config = parse(
            "links:\n  a: &base\n    module: links.analyze\n    options: {model: gpt-test}\n  b:\n    <<: *base\n    options: {model: other}\n",
        )
        .unwrap();
        assert_eq!(config.links["b"].module.as_deref(), Some("links.analyze"));
        assert_eq!(config.links["b"].options, Some(serde_json::json!({"model": "other"})));
    }

    #[test]
    fn an_enabled_chain_that_reads_no_list_is_refused() {
        let err = parse("chains:\n  c:\n    links: []\n    egress_lists: [out]\n").unwrap_err().to_string();
        assert!(err.contains("chains.c.ingress_lists") && err.contains("reads no list"), "{err}");
        assert!(err.contains("line 2"), "the chain's line when the key is absent: {err}");
        parse("chains:\n  c:\n    enabled: 0\n").unwrap();
    }

    #[test]
    fn validation_errors_carry_the_line() {
        let err = parse(
            "links:\n  t:\n    module: links.tag\nchains:\n  c:\n    ingress_lists: [a]\n    links: [t, ghost]\n",
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("chains.c.links[1]") && err.contains("line 7"), "{err}");
    }

    #[test]
    fn yaml_errors_name_the_file() {
        let err = parse("links: [").unwrap_err().to_string();
        assert!(err.contains("test.yml"), "{err}");
    }
}

#[cfg(test)]
mod feature_tests {
    use super::*;
    use serde_json::json;

    fn parse(text: &str, env: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let vars: std::collections::HashMap<String, String> =
            env.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        Config::parse_with_env(text, Path::new("test.yml"), &|name| vars.get(name).cloned())
    }

    #[test]
    fn env_references_are_resolved() {
        let config = parse(
            "links:\n  t:\n    module: links.tag\n    options: {tags: ['${TAG}', '${OTHER:-x}']}\n",
            &[("TAG", "vip")],
        )
        .unwrap();
        assert_eq!(config.links["t"].options, Some(json!({"tags": ["vip", "x"]})));
    }

    #[test]
    fn errors_never_show_substituted_values() {
        let secret = "tok-3f9a1c-very-secret";
        for text in [
            "links: ${TOKEN}\n",
            "links:\n  w:\n    module: links.x\n    allowed_outbound_hosts: ['${TOKEN}']\n",
            "links:\n  w:\n    module: links.x\n    secrets: ['${TOKEN}!']\n",
            "followers:\n  up:\n    url: ${TOKEN}\n    egress_list: o\n    follower_ingress_list: i\n    pulling_interval: 1\n    fetch_vcon_limit: 1\n",
        ] {
            let err = parse(text, &[("TOKEN", secret)]).unwrap_err().to_string();
            assert!(!err.contains("3f9a1c"), "the value leaked: {err}");
        }
        let err = parse("links: ${TOKEN}\n", &[("TOKEN", secret)]).unwrap_err().to_string();
        assert!(err.contains("<value of ${TOKEN}>"), "{err}");
    }

    #[test]
    fn inline_chain_options_merge_over_the_link() {
        let config = parse(
            "links:\n  tag:\n    component: my-tag.wasm\n    options: {tags: [a], keep: 1}\nstorages:\n  f:\n    module: storage.file\nchains:\n  c:\n    ingress_lists: [in]\n    links:\n      - tag: {tags: [b]}\n      - tag\n    storages:\n      - f: {path: /tmp/x}\n    timeout: 2.5\n",
            &[],
        )
        .unwrap();
        let chain = &config.chains["c"];
        assert_eq!(
            chain.links[0].merged_options(config.links["tag"].options.as_ref()),
            json!({"tags": ["b"], "keep": 1})
        );
        assert_eq!(
            chain.links[1].merged_options(config.links["tag"].options.as_ref()),
            json!({"tags": ["a"], "keep": 1})
        );
        assert_eq!(chain.storages[0].options, Some(json!({"path": "/tmp/x"}).as_object().unwrap().clone()));
        assert_eq!(chain.timeout, Some(2.5));
        assert!(parse("chains:\n  c:\n    links: [{a: 1, b: 2}]\n", &[]).is_err());
    }

    #[test]
    fn standard_link_options_are_checked_as_defined_and_as_merged_in_a_chain() {
        let err =
            parse("links:\n  tag:\n    module: links.tag\n    options:\n      tags: 5\n", &[]).unwrap_err().to_string();
        assert!(
            err.contains("links.tag.options.tags") && err.contains("line 5") && err.contains("must be a list"),
            "{err}"
        );
        let err =
            parse("links:\n  tag:\n    module: links.tag\n    options: {tagz: [a]}\n", &[]).unwrap_err().to_string();
        assert!(err.contains("did you mean `tags`?"), "{err}");
        let chain = "links:\n  tag:\n    module: links.tag\nchains:\n  c:\n    ingress_lists: [in]\n    links:\n      - tag: {tags: 5}\n";
        let err = parse(chain, &[]).unwrap_err().to_string();
        assert!(err.contains("chains.c.links[0].tag.tags"), "{err}");
        // A component from elsewhere brings no schema.
        parse("links:\n  t:\n    component: x.wasm\n    options: {tags: 5}\n", &[]).unwrap();
    }

    #[test]
    fn legacy_transcription_modules_become_transcribe_with_a_vendor() {
        let config = parse(
            "links:\n  a:\n    module: links.deepgram_link\n    options: {api_key: k}\n  b:\n    module: links.openai_transcribe\n  c:\n    module: links.groq_whisper\n    options: {vendor_options: {x: 1}}\n",
            &[],
        )
        .unwrap();
        assert_eq!(config.links["a"].module.as_deref(), Some("links.transcribe"));
        assert_eq!(config.links["a"].options, Some(json!({"vendor": "deepgram", "vendor_options": {"api_key": "k"}})));
        assert_eq!(config.links["b"].options, Some(json!({"vendor": "openai", "vendor_options": {}})));
        assert_eq!(config.links["c"].options, Some(json!({"vendor_options": {"x": 1}, "vendor": "groq"})));
    }

    #[test]
    fn new_link_keys_and_followers_are_validated() {
        let ok = parse(
            "links:\n  w:\n    module: links.webhook\n    allowed_outbound_hosts: ['https://*.example.com']\n    secrets: [API_KEY]\nfollowers:\n  up:\n    url: http://up:8000/api\n    egress_list: out\n    follower_ingress_list: in\n    auth_token: t\n    pulling_interval: 5\n    fetch_vcon_limit: 10\n",
            &[],
        )
        .unwrap();
        assert_eq!(ok.followers["up"].fetch_vcon_limit, 10);
        let err = parse("links:\n  w:\n    module: links.x\n    allowed_outbound_hosts: ['*']\n", &[])
            .unwrap_err()
            .to_string();
        assert!(err.contains("allowed_outbound_hosts[0]"), "{err}");
        assert!(parse("links:\n  w:\n    module: links.x\n    secrets: ['not a name']\n", &[]).is_err());
        assert!(parse("followers:\n  up:\n    url: up\n    egress_list: o\n    follower_ingress_list: i\n    pulling_interval: 1\n    fetch_vcon_limit: 1\n", &[]).is_err());
        assert!(parse("chains:\n  c:\n    tracers: [ghost]\n", &[]).is_err());
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
    }
}
