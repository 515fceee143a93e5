//! `cargo xtask lint`: what the engineering standards promise, checked.
//!
//! * `cargo fmt --check` on the host workspace, the links workspace and the link
//!   template;
//! * tests read nothing outside the repository ([`crate::repo_paths`]);
//! * released WIT packages unchanged ([`crate::wit_freeze`]);
//! * host crates depend only on what `docs/architecture.md` allows ([`crate::crate_rules`]);
//! * dependency licences accepted ([`crate::licences`]);
//! * `cargo clippy --all-targets -- -D warnings` on the host workspace (also the
//!   API-only feature set), the links workspace (natively, with its tests, and for
//!   `wasm32-wasip2`, where the SDK's guest code is compiled) and the template.
//!
//! The cheap checks run first, so a formatting slip fails in seconds.
//!
//! `cargo xtask test` runs the cheap checks ([`static_checks`]) and gets clippy
//! without a second build: every cargo command it runs has [`with_clippy`], which
//! makes `clippy-driver` the compiler of the project's own crates (cargo's
//! `RUSTC_WORKSPACE_WRAPPER`, as `cargo clippy` itself does). clippy-driver is a
//! full compiler, so the test build is linted as it is built and dependencies are
//! compiled once, not also checked.

use std::path::Path;
use std::process::Command;

use anyhow::Result;

use crate::{HOST_TRIPLE, cargo, crate_rules, licences, repo_paths, step, target_dir, wit_freeze};

/// Make `command` (a cargo build or test) lint the project's crates with clippy,
/// warnings denied, while it compiles them.
pub fn with_clippy(command: &mut Command) -> &mut Command {
    let cargo = std::env::var_os("CARGO").map(std::path::PathBuf::from).unwrap_or_else(|| "cargo".into());
    let driver = cargo.with_file_name("clippy-driver");
    // clippy-driver reads its own arguments from CLIPPY_ARGS, split on this marker.
    command.env("RUSTC_WORKSPACE_WRAPPER", driver).env("CLIPPY_ARGS", "-D__CLIPPY_HACKERY__warnings__CLIPPY_HACKERY__")
}

/// The checks that need no compilation: formatting, test paths, the WIT freeze and
/// the licences.
pub fn static_checks(root: &Path) -> Result<()> {
    for project in PROJECTS {
        step(&format!("fmt {project}"), || {
            crate::status(cargo().current_dir(root.join(project)).args(["fmt", "--all", "--check"]))
        })?;
    }
    step("test paths", || repo_paths::check(root))?;
    step("WIT freeze", || wit_freeze::check(root))?;
    step("crate dependency rules", || crate_rules::check(root))?;
    step("licences", || licences::check(root, &["Cargo.toml", "links/Cargo.toml", "sdk/template/Cargo.toml"]))
}

/// The three Cargo projects of the repository, relative to its root.
const PROJECTS: [&str; 3] = [".", "links", "sdk/template"];

/// Everything, with `cargo clippy` (check builds): for a developer's machine.
pub fn lint(root: &Path) -> Result<()> {
    let target = target_dir(root);
    static_checks(root)?;
    let deny = ["--", "-D", "warnings"];
    step("clippy host", || {
        crate::status(cargo().current_dir(root).args(["clippy", "--workspace", "--all-targets", "--locked"]).args(deny))
    })?;
    step("clippy host (API-only build)", || {
        crate::status(
            cargo()
                .current_dir(root)
                .args(["clippy", "-p", "conserver", "--no-default-features", "--all-targets", "--locked"])
                .args(deny),
        )
    })?;
    for project in ["links", "sdk/template"] {
        step(&format!("clippy {project}"), || {
            crate::status(
                cargo()
                    .current_dir(root.join(project))
                    .args(["clippy", "--workspace", "--all-targets", "--target", HOST_TRIPLE])
                    .args(deny)
                    .env("CARGO_TARGET_DIR", target.join("wasm-native")),
            )
        })?;
        step(&format!("clippy {project} (wasm32-wasip2)"), || {
            crate::status(
                cargo()
                    .current_dir(root.join(project))
                    .args(["clippy", "--workspace", "--target", "wasm32-wasip2"])
                    .args(deny)
                    .env("CARGO_TARGET_DIR", target.join("wasm")),
            )
        })?;
    }
    Ok(())
}
