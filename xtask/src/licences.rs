//! The licence check: every third-party package either workspace can build must be
//! under a licence the project accepts.
//!
//! It reads `cargo metadata` (every platform's dependencies, so nothing hides behind
//! a `cfg`) and evaluates each package's SPDX expression: `OR` needs one accepted
//! side, `AND` needs both, `WITH` an exception keeps the base licence's verdict (an
//! exception only grants more). A package without an SPDX `license` field fails
//! unless it is listed in [`REVIEWED`] with the reason. The project's own crates
//! (path dependencies) are not checked.

use std::path::Path;
use std::process::Command;

use anyhow::{Context, Result, bail};
use serde_json::Value;

/// Licences the project accepts for its dependencies: permissive ones, and MPL-2.0
/// (file-level copyleft: using an unmodified crate puts no duty on our code).
const ACCEPTED: &[&str] = &[
    "0BSD",
    "Apache-2.0",
    "BSD-2-Clause",
    "BSD-3-Clause",
    "BSL-1.0",
    "CC0-1.0",
    "CDLA-Permissive-2.0",
    "ISC",
    "MIT",
    "MIT-0",
    "MPL-2.0",
    "Unicode-3.0",
    "Unicode-DFS-2016",
    "Unlicense",
    "Zlib",
    "bzip2-1.0.6",
];

/// Packages whose `license` field is missing or not SPDX, checked by hand:
/// (name, the licence found in the package, where).
const REVIEWED: &[(&str, &str)] = &[];

/// Check the workspaces at `manifests` (paths of `Cargo.toml`s under `root`).
pub fn check(root: &Path, manifests: &[&str]) -> Result<()> {
    let mut problems = Vec::new();
    let mut checked = std::collections::BTreeSet::new();
    for manifest in manifests {
        // A committed Cargo.lock is what is built; the template has none (a new
        // link project resolves its own), so its dependencies are resolved afresh.
        let mut metadata = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
        metadata.args(["metadata", "--format-version", "1", "--manifest-path"]).arg(root.join(manifest));
        if tracked_lock(root, manifest) {
            metadata.arg("--locked");
        }
        let output = metadata.output().with_context(|| format!("running cargo metadata for {manifest}"))?;
        if !output.status.success() {
            bail!("cargo metadata for {manifest} failed:\n{}", String::from_utf8_lossy(&output.stderr));
        }
        let metadata: Value = serde_json::from_slice(&output.stdout).context("cargo metadata printed no JSON")?;
        for package in metadata["packages"].as_array().into_iter().flatten() {
            if package["source"].is_null() {
                continue; // the project's own crates
            }
            let name = package["name"].as_str().unwrap_or_default();
            let version = package["version"].as_str().unwrap_or_default();
            if !checked.insert(format!("{name} {version}")) {
                continue;
            }
            match package["license"].as_str() {
                Some(expression) => match accepted(expression) {
                    Ok(true) => {}
                    Ok(false) => problems.push(format!("{name} {version}: {expression} is not an accepted licence")),
                    Err(e) => problems.push(format!("{name} {version}: cannot read {expression:?}: {e}")),
                },
                None if REVIEWED.iter().any(|(reviewed, _)| *reviewed == name) => {}
                None => problems.push(format!("{name} {version}: no SPDX licence field (review it, then list it)")),
            }
        }
    }
    if !problems.is_empty() {
        bail!(
            "{} dependency licence problem(s); accept the licence in xtask/src/licences.rs only after review:\n  {}",
            problems.len(),
            problems.join("\n  ")
        );
    }
    eprintln!("xtask: licences of {} third-party packages accepted", checked.len());
    Ok(())
}

/// Whether the project commits a Cargo.lock beside `manifest` (git knows the file).
fn tracked_lock(root: &Path, manifest: &str) -> bool {
    let lock = Path::new(manifest).with_file_name("Cargo.lock");
    Command::new("git")
        .current_dir(root)
        .args(["ls-files", "--error-unmatch"])
        .arg(&lock)
        .output()
        .is_ok_and(|out| out.status.success())
}

/// Whether an SPDX expression is satisfiable with [`ACCEPTED`] licences.
fn accepted(expression: &str) -> Result<bool> {
    // Old crates write `MIT/Apache-2.0` for `MIT OR Apache-2.0`.
    let spaced = expression.replace('/', " OR ").replace('(', " ( ").replace(')', " ) ");
    let tokens: Vec<&str> = spaced.split_whitespace().collect();
    let mut parser = Parser { tokens: &tokens, at: 0 };
    let verdict = parser.or()?;
    if parser.at != tokens.len() {
        bail!("unexpected {:?}", tokens[parser.at]);
    }
    Ok(verdict)
}

struct Parser<'a> {
    tokens: &'a [&'a str],
    at: usize,
}

impl Parser<'_> {
    fn peek(&self) -> Option<&str> {
        self.tokens.get(self.at).copied()
    }

    fn next(&mut self) -> Result<&str> {
        let token = self.tokens.get(self.at).copied().context("the expression ends too early")?;
        self.at += 1;
        Ok(token)
    }

    fn or(&mut self) -> Result<bool> {
        let mut verdict = self.and()?;
        while self.peek().is_some_and(|t| t.eq_ignore_ascii_case("OR")) {
            self.at += 1;
            verdict |= self.and()?;
        }
        Ok(verdict)
    }

    fn and(&mut self) -> Result<bool> {
        let mut verdict = self.atom()?;
        while self.peek().is_some_and(|t| t.eq_ignore_ascii_case("AND")) {
            self.at += 1;
            verdict &= self.atom()?;
        }
        Ok(verdict)
    }

    fn atom(&mut self) -> Result<bool> {
        let token = self.next()?;
        let verdict = if token == "(" {
            let inner = self.or()?;
            if self.next()? != ")" {
                bail!("a `(` is not closed");
            }
            inner
        } else if matches!(token, ")") || ["AND", "OR", "WITH"].iter().any(|k| token.eq_ignore_ascii_case(k)) {
            bail!("unexpected {token:?}");
        } else {
            ACCEPTED.contains(&token.trim_end_matches('+'))
        };
        if self.peek().is_some_and(|t| t.eq_ignore_ascii_case("WITH")) {
            self.at += 1;
            self.next()?; // the exception's name
        }
        Ok(verdict)
    }
}

#[cfg(test)]
mod tests {
    use super::accepted;

    #[test]
    fn expressions_are_evaluated() {
        assert!(accepted("MIT").unwrap());
        assert!(accepted("MIT OR Apache-2.0").unwrap());
        assert!(accepted("MIT/Apache-2.0").unwrap());
        assert!(accepted("Apache-2.0 WITH LLVM-exception OR Apache-2.0 OR MIT").unwrap());
        assert!(accepted("(MIT OR Apache-2.0) AND Unicode-3.0").unwrap());
        assert!(accepted("MIT OR GPL-3.0").unwrap(), "one accepted side is enough");
        assert!(!accepted("GPL-3.0").unwrap());
        assert!(!accepted("MIT AND GPL-3.0").unwrap(), "both sides of AND are needed");
        assert!(!accepted("AGPL-3.0-only").unwrap());
        assert!(accepted("(MIT").is_err());
        assert!(accepted("MIT OR").is_err());
    }
}
