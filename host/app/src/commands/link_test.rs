//! `conserver link test <component> <vcon.json>…`: one call per vCon in the real
//! sandbox, with the same limits, grants and read/write forms as a chain (each
//! file is ingested as `POST /vcon` would store it, read in the Python form the
//! links see, and the answer stored spec-enforced). Prints the verdict, the vCon
//! as the chain would store it, and the fuel, peak memory and time used.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result, bail};
use conserver_config::{AllowedHost, Limits, LimitsOverride, Settings};
use conserver_pipeline::spec_form;
use conserver_runtime::{Action, CallContext, Directive, Grants, LoadedLink};
use serde_json::{Value, json};

/// What `link test` was asked.
pub struct LinkTest {
    /// The component.
    pub component: PathBuf,
    /// The vCon files.
    pub vcons: Vec<PathBuf>,
    /// Options (JSON or YAML text).
    pub options: String,
    /// Limit overrides.
    pub limits: LimitsOverride,
    /// `allowed_outbound_hosts` entries.
    pub allow_hosts: Vec<String>,
    /// Secret names.
    pub secrets: Vec<String>,
    /// One JSON object per vCon instead of text.
    pub json: bool,
}

impl LinkTest {
    /// From the command line (`None` for another `link` action).
    pub fn from_action(action: crate::cli::LinkAction) -> Option<Self> {
        let crate::cli::LinkAction::Test {
            component,
            vcons,
            options,
            fuel,
            memory_bytes,
            timeout_ms,
            allow_hosts,
            secrets,
            json,
        } = action
        else {
            return None;
        };
        let limits = LimitsOverride { fuel, memory_bytes, timeout_ms, ..LimitsOverride::default() };
        Some(Self { component, vcons, options, limits, allow_hosts, secrets, json })
    }
}

fn load(test: &LinkTest, settings: &Settings) -> Result<(LoadedLink, f64)> {
    let hosts = test
        .allow_hosts
        .iter()
        .map(|entry| AllowedHost::parse(entry).map_err(|e| anyhow::anyhow!("--allow-host {entry}: {e}")))
        .collect::<Result<Vec<_>>>()?;
    let grants = Grants::new(hosts, &test.secrets);
    let runtime = crate::serve::new_runtime(settings)?;
    let name = test.component.file_stem().and_then(|s| s.to_str()).unwrap_or("link").to_string();
    let started = Instant::now();
    let link = runtime
        .load(&name, &test.component, Limits::default().with(&test.limits), &grants)
        .with_context(|| format!("loading {}", test.component.display()))?;
    Ok((link, started.elapsed().as_secs_f64() * 1000.0))
}

fn options_json(text: &str) -> Result<String> {
    let value: Value = serde_yaml_ng::from_str(text).context("--options is neither JSON nor YAML")?;
    if !value.is_object() {
        bail!("--options must be a mapping, e.g. '{{tags: [vip]}}'");
    }
    Ok(value.to_string())
}

/// Run the test; `Ok(false)` when some call failed.
pub async fn run(test: LinkTest, settings: &Settings) -> Result<bool> {
    let options = options_json(&test.options)?;
    let (link, load_ms) = load(&test, settings)?;
    if !test.json {
        println!("{}: loaded in {load_ms:.1} ms", test.component.display());
    }
    let mut all_ok = true;
    for file in &test.vcons {
        let report = call(&link, file, &options).await?;
        all_ok &= report["verdict"] != "failed";
        if test.json {
            let mut report = report;
            report["load_ms"] = json!(load_ms);
            println!("{report}");
        } else {
            print_text(file, &report);
        }
    }
    Ok(all_ok)
}

async fn call(link: &LoadedLink, file: &Path, options: &str) -> Result<Value> {
    let refused = |error: String| json!({"file": file.display().to_string(), "verdict": "failed", "error": error});
    let body = match std::fs::read(file) {
        Ok(body) => body,
        Err(e) => return Ok(refused(format!("cannot read it: {e}"))),
    };
    let ingested = match conserver_core::ingest_vcon(&body) {
        Ok(ingested) => ingested,
        Err(e) => return Ok(refused(format!("not a vCon the API would accept: {e}"))),
    };
    let vcon = spec_form::as_read(ingested.json);
    let ctx =
        CallContext { chain: "link-test", vcon_uuid: &ingested.uuid, ingress_list: "link-test", options_json: options };
    let started = Instant::now();
    let result = link.invoke(ctx, &vcon).await;
    let call_ms = started.elapsed().as_secs_f64() * 1000.0;
    let mut report = json!({"file": file.display().to_string(), "uuid": ingested.uuid, "call_ms": call_ms});
    match result {
        Err(failure) => {
            report["verdict"] = json!("failed");
            report["error"] = json!(failure.to_string());
            report["retryable"] = json!(failure.is_retryable());
        }
        Ok(outcome) => {
            let (verdict, stored) = match outcome.action {
                Action::Halt => ("halt", None),
                Action::Proceed(None) => ("unchanged", Some(vcon)),
                Action::Proceed(Some(changed)) => ("changed", Some(spec_form::as_written(changed))),
            };
            report["verdict"] = json!(verdict);
            report["vcon"] = json!(stored);
            report["fuel"] = json!(outcome.fuel_used);
            report["memory_peak_bytes"] = json!(outcome.memory_peak_bytes);
            report["directives"] = outcome
                .directives
                .iter()
                .map(|d| match d {
                    Directive::RouteTo(lists) => json!({"route_to": lists}),
                    Directive::ExpireAfterSecs(secs) => json!({"expire_after_secs": secs}),
                })
                .collect();
        }
    }
    Ok(report)
}

fn print_text(file: &Path, report: &Value) {
    let verdict = report["verdict"].as_str().unwrap_or("?");
    match verdict {
        "failed" => println!("{}: FAILED: {}", file.display(), report["error"].as_str().unwrap_or("")),
        other => println!(
            "{}: {other} — fuel {}, memory peak {:.1} MiB, call {:.2} ms",
            file.display(),
            report["fuel"],
            report["memory_peak_bytes"].as_f64().unwrap_or(0.0) / 1_048_576.0,
            report["call_ms"].as_f64().unwrap_or(0.0)
        ),
    }
    if let Some(directives) = report["directives"].as_array().filter(|d| !d.is_empty()) {
        println!("  directives: {}", Value::Array(directives.clone()));
    }
    if verdict == "changed"
        && let Some(text) = report["vcon"].as_str()
    {
        let pretty = serde_json::from_str::<Value>(text)
            .ok()
            .and_then(|v| serde_json::to_string_pretty(&v).ok())
            .unwrap_or_else(|| text.to_string());
        println!("{pretty}");
    }
}
