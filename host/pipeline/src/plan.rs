//! From config to executable chains: resolve and load each link's component, build
//! each storage, and index chains by the ingress lists they read.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use conserver_config::{AllowedHost, Config, LinkDef, StorageDef, StorageFailure};
use conserver_runtime::{Grants, LoadedLink, Runtime};
use conserver_storage::Storage;

use crate::PipelineError;
use crate::runner::{LinkRunner, TraceRunner};

/// One link of a chain: the loaded component and its options as JSON.
#[derive(Clone)]
pub struct LinkStep {
    /// The link (the loaded component, or any [`LinkRunner`]).
    pub link: Arc<dyn LinkRunner>,
    /// The options object handed to every call.
    pub options_json: Arc<str>,
    /// Lists the link may route to: every chain's ingress and egress lists, the
    /// link's `allowed_routes`, and the strings in its options.
    pub allowed_routes: Arc<HashSet<String>>,
}

/// A tracer as a chain runs it.
#[derive(Clone)]
pub struct TracerStep {
    /// The tracer (the loaded component, or any [`TraceRunner`]).
    pub tracer: Arc<dyn TraceRunner>,
    /// Its options as a JSON object.
    pub options_json: Arc<str>,
    /// `options.dlq_vcon_on_error`: a failing tracer dead-letters the vCon
    /// (otherwise it is logged).
    pub dlq_on_error: bool,
}

/// A chain ready to run.
pub struct ChainPlan {
    /// The chain's name.
    pub name: String,
    /// Links in order.
    pub links: Vec<LinkStep>,
    /// The links' names, in order (what tracers are told).
    pub link_names: Arc<[String]>,
    /// Tracers called before the first link and after each link.
    pub tracers: Vec<TracerStep>,
    /// Storages in order.
    pub storages: Vec<Arc<dyn Storage>>,
    /// Lists the uuid goes to after success.
    pub egress_lists: Vec<String>,
    /// Every list some enabled chain reads: a vCon sent to one of them is still
    /// queued, so it keeps no TTL.
    pub consumed_lists: Arc<HashSet<String>>,
    /// How long one vCon may spend in the chain (`timeout:`), if limited.
    pub timeout: Option<Duration>,
    /// What a storage that keeps failing does to the vCon.
    pub storage_failure: StorageFailure,
    /// How long a failing storage write is retried (`storage_retry_secs:`).
    pub storage_retry: Duration,
    /// Every configured storage, in config order: where a vCon missing from the
    /// broker is looked for.
    pub fallback_storages: Arc<Vec<Arc<dyn Storage>>>,
}

/// The executable form of one config version. In-flight vCons keep the snapshot
/// they started with.
#[derive(Default)]
pub struct Snapshot {
    chains: HashMap<String, Arc<ChainPlan>>,
    ingress_lists: Vec<String>,
    storages: Arc<Vec<Arc<dyn Storage>>>,
    component_files: Vec<PathBuf>,
}

/// Where the component for a link lives: its `component:` path (relative to the
/// config file's directory), else the standard link named by `module: links.<name>`
/// in `links_dir`.
pub fn resolve_component(def: &LinkDef, config_dir: &Path, links_dir: &Path) -> Option<PathBuf> {
    if let Some(path) = &def.component {
        return Some(if path.is_absolute() { path.clone() } else { config_dir.join(path) });
    }
    let module = def.module.as_deref()?;
    if let Some(tracer) = module.strip_prefix("tracers.") {
        return Some(links_dir.join("tracers").join(format!("{tracer}.wasm")));
    }
    let name = module.strip_prefix("links.").unwrap_or(module);
    Some(links_dir.join(format!("{name}.wasm")))
}

/// Python truthiness of an option value.
fn truthy(value: Option<&serde_json::Value>) -> bool {
    match value {
        None | Some(serde_json::Value::Null) => false,
        Some(serde_json::Value::Bool(b)) => *b,
        Some(serde_json::Value::Number(n)) => n.as_f64().is_some_and(|x| x != 0.0),
        Some(serde_json::Value::String(s)) => !s.is_empty(),
        Some(serde_json::Value::Array(a)) => !a.is_empty(),
        Some(serde_json::Value::Object(o)) => !o.is_empty(),
    }
}

/// Every string in `value`, at any depth (list names a link's options mention).
fn collect_strings(value: &serde_json::Value, out: &mut HashSet<String>) {
    match value {
        serde_json::Value::String(text) => {
            out.insert(text.clone());
        }
        serde_json::Value::Array(items) => items.iter().for_each(|item| collect_strings(item, out)),
        serde_json::Value::Object(map) => map.values().for_each(|item| collect_strings(item, out)),
        _ => {}
    }
}

/// What a link's config grants it: its allow-list (already validated when the
/// config was parsed), its secrets, and its credential-looking options to scrub.
fn grants(def: &LinkDef) -> Grants {
    let allowed = def.allowed_outbound_hosts.iter().filter_map(|entry| AllowedHost::parse(entry).ok()).collect();
    let grants = Grants::new(allowed, &def.secrets);
    match &def.options {
        Some(options) => grants.with_sensitive_options(options),
        None => grants,
    }
}

impl Snapshot {
    /// Load every link used by an enabled chain and build every storage. Compiling
    /// is CPU-heavy on a cold cache: call from a blocking thread.
    pub fn build(
        config: &Config,
        config_dir: &Path,
        links_dir: &Path,
        runtime: &Runtime,
    ) -> Result<Self, PipelineError> {
        let defaults = config.wasm.limits;
        let mut loaded: HashMap<&str, LoadedLink> = HashMap::new();
        let mut storages: HashMap<&str, Arc<dyn Storage>> = HashMap::new();
        let mut snapshot = Snapshot::default();
        // Every storage is built (and its options checked) whether a chain uses it
        // or not, in config order for the read fallback.
        let mut fallback = Vec::with_capacity(config.storages.len());
        for (name, def) in &config.storages {
            let storage = conserver_storage::build(name, def)?;
            storages.insert(name, storage.clone());
            fallback.push(storage);
        }
        let fallback_storages = Arc::new(fallback);
        snapshot.storages = fallback_storages.clone();
        snapshot.component_files = config
            .links
            .values()
            .chain(config.tracers.iter().flatten().map(|(_, def)| def))
            .filter_map(|def| resolve_component(def, config_dir, links_dir))
            .collect();
        let consumed_lists: Arc<HashSet<String>> =
            Arc::new(config.enabled_chains().flat_map(|(_, chain)| chain.ingress_lists.iter().cloned()).collect());
        let mut tracers: Vec<(&str, TracerStep)> = Vec::new();
        for (name, def) in config.tracers.iter().flatten() {
            let tracer_error = |message: String| PipelineError::Link { link: format!("tracer {name}"), message };
            let path = resolve_component(def, config_dir, links_dir)
                .ok_or_else(|| tracer_error("has neither `module` nor `component`".into()))?;
            let tracer = runtime
                .load_tracer(name, &path, defaults.with(&def.limits), &grants(def))
                .map_err(|e| tracer_error(e.to_string()))?;
            let options = def.options.clone().filter(|o| !o.is_null()).unwrap_or_else(|| serde_json::json!({}));
            let dlq_on_error = truthy(options.get("dlq_vcon_on_error"));
            let tracer: Arc<dyn TraceRunner> = Arc::new(tracer);
            tracers.push((name, TracerStep { tracer, options_json: Arc::from(options.to_string()), dlq_on_error }));
        }
        let known_lists: Vec<String> = config
            .enabled_chains()
            .flat_map(|(_, chain)| chain.ingress_lists.iter().chain(chain.egress_lists.iter()).cloned())
            .collect();
        for (chain_name, chain) in config.enabled_chains() {
            let mut links = Vec::with_capacity(chain.links.len());
            for step in &chain.links {
                let link_error = |message: String| PipelineError::Link { link: step.name.clone(), message };
                let def =
                    config.links.get(&step.name).ok_or_else(|| link_error("is not defined under `links:`".into()))?;
                let link = match loaded.get(step.name.as_str()) {
                    Some(link) => link.clone(),
                    None => {
                        let path = resolve_component(def, config_dir, links_dir)
                            .ok_or_else(|| link_error("has neither `module` nor `component`".into()))?;
                        let link = runtime
                            .load(&step.name, &path, defaults.with(&def.limits), &grants(def))
                            .map_err(|e| link_error(e.to_string()))?;
                        loaded.insert(&step.name, link.clone());
                        link
                    }
                };
                let options = step.merged_options(def.options.as_ref());
                let mut allowed_routes: HashSet<String> = known_lists.iter().cloned().collect();
                allowed_routes.extend(def.allowed_routes.iter().cloned());
                collect_strings(&options, &mut allowed_routes);
                links.push(LinkStep {
                    link: Arc::new(link),
                    options_json: Arc::from(options.to_string()),
                    allowed_routes: Arc::new(allowed_routes),
                });
            }
            let mut chain_storages = Vec::with_capacity(chain.storages.len());
            for step in &chain.storages {
                let def = config.storages.get(&step.name).ok_or_else(|| PipelineError::Link {
                    link: step.name.clone(),
                    message: "storage is not defined under `storages:`".into(),
                })?;
                let storage = match (&step.options, storages.get(step.name.as_str())) {
                    (None, Some(shared)) => shared.clone(),
                    (None, None) => {
                        let storage = conserver_storage::build(&step.name, def)?;
                        storages.insert(&step.name, storage.clone());
                        storage
                    }
                    // Inline options make a storage of its own for this chain.
                    (Some(_), _) => {
                        let merged =
                            StorageDef { options: Some(step.merged_options(def.options.as_ref())), ..def.clone() };
                        conserver_storage::build(&step.name, &merged)?
                    }
                };
                chain_storages.push(storage);
            }
            let chain_tracers = tracers
                .iter()
                .filter(|(name, _)| chain.tracers.as_ref().is_none_or(|wanted| wanted.iter().any(|w| w == name)))
                .map(|(_, step)| step.clone())
                .collect();
            let plan = Arc::new(ChainPlan {
                name: chain_name.clone(),
                link_names: chain.links.iter().map(|step| step.name.clone()).collect(),
                tracers: chain_tracers,
                links,
                storages: chain_storages,
                egress_lists: chain.egress_lists.clone(),
                consumed_lists: consumed_lists.clone(),
                timeout: chain.timeout.map(Duration::from_secs_f64),
                storage_failure: chain.storage_failure,
                storage_retry: Duration::from_secs_f64(
                    chain.storage_retry_secs.filter(|s| s.is_finite() && *s >= 0.0).unwrap_or(60.0).min(86_400.0),
                ),
                fallback_storages: fallback_storages.clone(),
            });
            for list in &chain.ingress_lists {
                snapshot.ingress_lists.push(list.clone());
                snapshot.chains.insert(list.clone(), plan.clone());
            }
        }
        Ok(snapshot)
    }

    /// The chain reading `list`.
    pub fn chain_for(&self, list: &str) -> Option<Arc<ChainPlan>> {
        self.chains.get(list).cloned()
    }

    /// Every ingress list, in config order.
    pub fn ingress_lists(&self) -> &[String] {
        &self.ingress_lists
    }

    /// Every configured storage, in config order (built once per config version and
    /// shared by the workers and the API).
    pub fn storages(&self) -> Vec<Arc<dyn Storage>> {
        self.storages.as_ref().clone()
    }

    /// The component file of every configured link, for the file watcher.
    pub fn component_files(&self) -> &[PathBuf] {
        &self.component_files
    }
}
