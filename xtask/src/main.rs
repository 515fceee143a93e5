//! `cargo xtask <command>`: the project's build and test entry points.
//!
//! * `build-links [--release-host]` — add the `wasm32-wasip2` target if missing, build
//!   the standard links and the test fixture components (`links/` workspace), and copy
//!   them next to the host binaries (`<target>/<profile>/links/`, fixtures under
//!   `links/testing/`), where `conserver` looks for `module: links.<name>`.
//! * `install-link-tools` — install componentize-py and ComponentizeJS under
//!   `<target>/tools`, so `build-links` also builds the Python and JavaScript
//!   fixtures (`test` does this itself).
//! * `images [--prebuilt]` — build the `conserver-api` and `conserver` images with
//!   podman from `docker/`, from source, or with `--prebuilt` around the test
//!   build's binaries (see `images.rs`; `test` does the latter).
//! * `k8s-check [DIR]` — validate the Kubernetes manifests (`deploy/k8s`) offline
//!   against the Kubernetes and KEDA schemas (see `k8s.rs`; `test` runs it).
//! * `schemathesis [--max-examples N] [--max-time SECS]` — build the host and the
//!   links, then run schemathesis from the project's own OpenAPI document against
//!   the real binary on loopback (see `schemathesis.rs`).
//! * `run` — build everything (release) and serve `config.example.yml` on
//!   127.0.0.1:8000 with the embedded broker.
//! * `lint` — `cargo fmt --check` and `cargo clippy -D warnings` on every Cargo
//!   project, the WIT freeze, the licence check and the check that tests read
//!   nothing outside the repository (see `lint.rs`).
//! * `test` — run `lint`, then start the services the tests need when they are not running (Redis, a
//!   3-node Redis Cluster on ports 7101-7103; moto for S3; fakeredis (with JSON)
//!   standing in for Redis Stack and Python's jsonschema; sox, espeak-ng and
//!   ffmpeg for the media tests; nginx for `nginx -t`; componentize-py and
//!   ComponentizeJS for the Python and JavaScript links, under `<target>/tools`),
//!   build the links, fixtures and the link template, then run every test.
//!
//! Nothing here runs nested cargo from a build script; every step is visible.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};

mod crate_rules;
mod images;
mod k8s;
mod licences;
mod lint;
mod podman;
mod repo_paths;
mod schemathesis;
mod script_links;
mod services;
mod wit_freeze;

/// The native target the links' unit tests run on.
const HOST_TRIPLE: &str = "x86_64-unknown-linux-gnu";

/// Names the public real corpus's `vcons/` directory for the tests that also run
/// on it (`conserver-fixtures` reads it; `.ci/run` sets it).
const REAL_VCONS_VAR: &str = "CONSERVER_REAL_VCONS";

/// The components of the links workspace (its `members` that build a `cdylib`)
/// and where each goes under `<profile>/links`: `links/<name>` → `<name>.wasm`,
/// `links/testing/<name>` → `testing/`, `links/tracers/<name>` → `tracers/`.
fn link_crates(root: &Path) -> Result<Vec<(String, String)>> {
    let manifest = root.join("links/Cargo.toml");
    let text = std::fs::read_to_string(&manifest).with_context(|| format!("reading {}", manifest.display()))?;
    let members = text
        .split_once("members = [")
        .and_then(|(_, rest)| rest.split_once(']'))
        .map(|(list, _)| list)
        .with_context(|| format!("no `members = [...]` in {}", manifest.display()))?;
    let mut crates = Vec::new();
    for member in members.split(',').map(|m| m.trim().trim_matches('"')).filter(|m| !m.is_empty()) {
        let crate_manifest = root.join("links").join(member).join("Cargo.toml");
        let crate_text = std::fs::read_to_string(&crate_manifest)
            .with_context(|| format!("reading {}", crate_manifest.display()))?;
        if !crate_text.contains("cdylib") {
            continue; // a library shared by links, not a component
        }
        let (sub, name) = member.rsplit_once('/').unwrap_or(("", member));
        crates.push((name.to_string(), sub.to_string()));
    }
    Ok(crates)
}

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let root = repo_root()?;
    match args.first().map(String::as_str) {
        Some("build-links") => build_links(&root, &["debug", "release"], false),
        Some("install-link-tools") => script_links::install(&target_dir(&root)),
        Some("images") => images::command(&root, &target_dir(&root), &args[1..]),
        Some("k8s-check") => k8s::command(&root, &target_dir(&root), &args[1..]),
        Some("run") => run(&root),
        Some("lint") => lint::lint(&root),
        Some("test") => test(&root, &args[1..]),
        Some("schemathesis") => fuzz_api(&root, &args[1..]),
        _ => {
            eprintln!(
                "usage: cargo xtask <build-links | install-link-tools | run | lint | images [--prebuilt] | k8s-check [DIR] | schemathesis [--max-examples N] [--max-time SECS] | test [cargo test args…]>"
            );
            bail!("unknown or missing command")
        }
    }
}

/// The checkout `cargo xtask` runs in. `cargo run` sets CARGO_MANIFEST_DIR for the
/// process; the compile-time value is only a fallback, because a binary in a shared
/// target directory may have been built from another checkout.
fn repo_root() -> Result<PathBuf> {
    let manifest_dir = std::env::var_os("CARGO_MANIFEST_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")));
    manifest_dir.parent().map(Path::to_path_buf).context("xtask must live in <repo>/xtask")
}

fn target_dir(root: &Path) -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR").map(PathBuf::from).unwrap_or_else(|| root.join("target"))
}

fn cargo() -> Command {
    Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()))
}

/// Run one named step of a command, printing how long it took (the CI log then
/// shows where a cold run spends its time).
fn step<T>(name: &str, work: impl FnOnce() -> Result<T>) -> Result<T> {
    let started = std::time::Instant::now();
    let result = work();
    let verdict = if result.is_ok() { "done" } else { "FAILED" };
    eprintln!("xtask: step `{name}` {verdict} in {:.0} s", started.elapsed().as_secs_f64());
    result
}

fn status(command: &mut Command) -> Result<()> {
    eprintln!("xtask: running {command:?}");
    let status = command.status().with_context(|| format!("cannot start {command:?}"))?;
    if !status.success() {
        bail!("{command:?} failed with {status}");
    }
    Ok(())
}

fn ensure_wasm_target() -> Result<()> {
    let installed = Command::new("rustup").args(["target", "list", "--installed"]).output();
    match installed {
        Ok(out) if String::from_utf8_lossy(&out.stdout).lines().any(|l| l.trim() == "wasm32-wasip2") => Ok(()),
        Ok(_) => status(Command::new("rustup").args(["target", "add", "wasm32-wasip2"])),
        Err(e) => {
            eprintln!("xtask: rustup not available ({e}); assuming wasm32-wasip2 is installed");
            Ok(())
        }
    }
}

/// Build the links workspace and copy the components beside each host profile.
/// With `lint`, clippy lints the links as they are compiled (see `lint::with_clippy`).
fn build_links(root: &Path, profiles: &[&str], lint: bool) -> Result<()> {
    ensure_wasm_target()?;
    let target = target_dir(root);
    let wasm_target = target.join("wasm");
    let mut build = cargo();
    build
        .current_dir(root.join("links"))
        .args(["build", "--release", "--target", "wasm32-wasip2"])
        .env("CARGO_TARGET_DIR", &wasm_target);
    if lint {
        lint::with_clippy(&mut build);
    }
    status(&mut build)?;
    let built = wasm_target.join("wasm32-wasip2").join("release");
    let crates = link_crates(root)?;
    for profile in profiles {
        let links = target.join(profile).join("links");
        for (name, sub) in &crates {
            let dir = links.join(sub);
            std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
            let from = built.join(format!("{name}.wasm"));
            let to = dir.join(format!("{name}.wasm"));
            std::fs::copy(&from, &to).with_context(|| format!("copying {} to {}", from.display(), to.display()))?;
        }
    }
    let scripted = script_links::build(root, &target)?;
    for profile in profiles {
        let dir = target.join(profile).join("links/testing");
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        for (name, built) in &scripted {
            std::fs::copy(built, dir.join(name)).with_context(|| format!("copying {}", built.display()))?;
        }
    }
    eprintln!("xtask: links ready in {}/<profile>/links", target.display());
    Ok(())
}

fn run(root: &Path) -> Result<()> {
    build_links(root, &["release"], false)?;
    status(cargo().current_dir(root).args(["build", "--release", "-p", "conserver"]))?;
    let binary = target_dir(root).join("release").join("conserver");
    let mut serve = Command::new(&binary);
    serve
        .current_dir(root)
        .args(["serve", "--bind", "127.0.0.1:8000", "--config", "config.example.yml"])
        .env_remove("REDIS_URL");
    eprintln!("xtask: serving on http://127.0.0.1:8000 (embedded broker); Ctrl-C to stop");
    status(&mut serve)
}

/// `cargo xtask schemathesis`: build what the run needs, then run it (50 examples
/// per operation and a 15-minute budget unless told otherwise).
fn fuzz_api(root: &Path, args: &[String]) -> Result<()> {
    let bounds = schemathesis::Bounds::parse(args, schemathesis::Bounds { max_examples: 50, max_time_secs: 900 })?;
    build_links(root, &["debug"], false)?;
    status(cargo().current_dir(root).args(["build", "-p", "conserver"]))?;
    let target = target_dir(root);
    schemathesis::run(root, &target, &target.join("debug").join("conserver"), &bounds)
}

fn test(root: &Path, extra: &[String]) -> Result<()> {
    // `--skip-lint` first: iterate on the tests without the static checks.
    let (lint_first, extra) = match extra.split_first() {
        Some((flag, rest)) if flag == "--skip-lint" => (false, rest),
        _ => (true, extra),
    };
    // fmt, test paths, WIT freeze, licences; clippy runs inside every build below.
    if lint_first {
        lint::static_checks(root)?;
    }
    let clippy = |command: &mut Command| -> Result<()> {
        if lint_first {
            lint::with_clippy(command);
        }
        status(command)
    };
    match std::env::var_os(REAL_VCONS_VAR) {
        Some(path) => eprintln!("xtask: the real-corpus tests also run on {}", Path::new(&path).display()),
        None => eprintln!("xtask: {REAL_VCONS_VAR} is unset: tests run on the project's corpus (tests/fixtures) only"),
    }
    step("services", || {
        services::ensure_redis()?;
        services::ensure_redis_cluster()?;
        services::ensure_moto()?;
        services::ensure_python_test_tools()?;
        services::ensure_audio_tools()?;
        services::ensure_nginx()?;
        script_links::install(&target_dir(root))
    })?;
    step("links", || build_links(root, &["debug"], lint_first))?;
    // The link template must keep building against the SDK.
    step("link template", || {
        clippy(
            cargo()
                .current_dir(root.join("sdk/template"))
                .args(["build", "--release", "--target", "wasm32-wasip2"])
                .env("CARGO_TARGET_DIR", target_dir(root).join("wasm")),
        )
    })?;
    // Unit tests of the links and the template, compiled natively.
    let native = target_dir(root).join("wasm-native");
    for dir in ["links", "sdk/template"] {
        step(&format!("{dir} unit tests"), || {
            clippy(
                cargo()
                    .current_dir(root.join(dir))
                    .args(["test", "--target", HOST_TRIPLE, "--all-targets"])
                    .env("CARGO_TARGET_DIR", &native),
            )
        })?;
    }
    // The API tier's build (no wasm runtime, no audio), kept aside for the
    // deployment tests; the workspace build below puts the full binary back.
    let api_only = target_dir(root).join("api-only");
    step("API-only build", || {
        clippy(cargo().current_dir(root).args(["build", "-p", "conserver", "--no-default-features"]))?;
        std::fs::create_dir_all(&api_only).with_context(|| format!("creating {}", api_only.display()))?;
        let built = target_dir(root).join("debug").join("conserver");
        std::fs::copy(&built, api_only.join("conserver"))
            .with_context(|| format!("copying {} to {}", built.display(), api_only.display()))?;
        Ok(())
    })?;
    // The workspace compiled once (the run below reuses it), so the images can be
    // assembled around its binaries before the container smoke test runs.
    let cargo_args = extra.split(|a| a == "--").next().unwrap_or_default();
    // Every target (benchmarks and examples too, so they are linted), not run.
    step("workspace build", || {
        clippy(cargo().current_dir(root).args(["test", "--workspace", "--all-targets", "--no-run"]).args(cargo_args))
    })?;
    step("images", || images::prebuilt(root, &target_dir(root)))?;
    step("k8s manifests", || k8s::check(root, &target_dir(root)))?;
    let containers_conf = podman::containers_conf(&target_dir(root))?;
    // One invocation for the whole workspace: the integration tests build the
    // `conserver` binary with the same feature set, so nothing is compiled twice.
    step("workspace tests", || {
        clippy(
            cargo()
                .current_dir(root)
                .args(["test", "--workspace"])
                .args(extra)
                .env("CONSERVER_API_ONLY_BINARY", api_only.join("conserver"))
                .env("CONTAINERS_CONF", &containers_conf)
                .env("CONSERVER_TOOLS_DIR", script_links::tools_dir(&target_dir(root))),
        )
    })
}
