//! Tests read nothing outside the repository.
//!
//! Every test source (files under a `tests/` or `benches/` directory, and Rust
//! files holding `#[test]` or `#[cfg(test)]`) is scanned, comments skipped, for:
//!
//! * a path literal with `..` segments that leaves the repository, resolved from
//!   the crate root (where `CARGO_MANIFEST_DIR` and `cargo test`'s working
//!   directory are) or, inside `include_str!`/`include_bytes!`, from the file;
//! * an absolute path into a home or work directory (`/root/`, `/home/`, `/work/`);
//! * the sibling corpus by name (`shared/fixtures`, `CONSERVER_SHARED_DIR`).
//!
//! The public corpus is reachable only through `CONSERVER_REAL_VCONS`, which the
//! scan does not follow: it is an environment variable, not a path in the code.
//! A line that holds such text without reading it (a path another tool resolves,
//! such as a compose volume) says so with a trailing `repo-paths: not read` comment.

use std::path::{Component, Path, PathBuf};

use anyhow::{Context, Result, bail};

/// Directories never scanned: build output, dependencies, data.
const SKIPPED_DIRS: &[&str] = &["target", "node_modules", ".git", "__pycache__"];
/// What a test file may not name.
const FORBIDDEN: &[&str] = &["shared/fixtures", "CONSERVER_SHARED_DIR", "\"/root/", "\"/home/", "\"/work/"];
/// Source files the scan reads.
const SOURCE_EXTENSIONS: &[&str] = &["rs", "py", "js", "sh"];
/// This file, which names what it forbids.
const SELF: &str = "xtask/src/repo_paths.rs";
/// The marker of a line that names a path without reading it.
const NOT_READ: &str = "repo-paths: not read";

/// Check every test source under `root`; the error lists each offending line.
pub fn check(root: &Path) -> Result<()> {
    let root = root.canonicalize().with_context(|| format!("resolving {}", root.display()))?;
    let mut files = Vec::new();
    collect(&root, &mut files)?;
    let targets = target_dirs(&root, &files);
    let mut problems = Vec::new();
    let mut scanned = 0;
    for file in files {
        if file.extension().is_some_and(|e| e == "toml") || file.strip_prefix(&root).is_ok_and(|r| r == Path::new(SELF))
        {
            continue;
        }
        let text = std::fs::read_to_string(&file).unwrap_or_default();
        if !is_test_source(&root, &file, &text) {
            continue;
        }
        scanned += 1;
        problems.extend(scan(&root, &crate_root(&root, &targets, &file), &file, &text));
    }
    if !problems.is_empty() {
        bail!(
            "test sources read outside the repository (use tests/fixtures, or the public corpus through \
             CONSERVER_REAL_VCONS):\n  {}",
            problems.join("\n  ")
        );
    }
    eprintln!("xtask: {scanned} test sources read nothing outside the repository");
    Ok(())
}

fn collect(dir: &Path, files: &mut Vec<PathBuf>) -> Result<()> {
    for entry in std::fs::read_dir(dir).with_context(|| format!("listing {}", dir.display()))? {
        let entry = entry?;
        let path = entry.path();
        let name = entry.file_name();
        if entry.file_type()?.is_dir() {
            if !SKIPPED_DIRS.iter().any(|skip| name == *skip) {
                collect(&path, files)?;
            }
        } else if path.extension().is_some_and(|e| SOURCE_EXTENSIONS.iter().any(|x| e == *x)) || name == "Cargo.toml" {
            files.push(path);
        }
    }
    Ok(())
}

fn is_test_source(root: &Path, file: &Path, text: &str) -> bool {
    let relative = file.strip_prefix(root).unwrap_or(file);
    let in_test_dir =
        relative.components().any(|c| matches!(c, Component::Normal(n) if n == "tests" || n == "benches"));
    in_test_dir || text.contains("#[test]") || text.contains("#[cfg(test)]") || text.contains("#[tokio::test")
}

/// The problems of one file, as `path:line: what`.
fn scan(root: &Path, crate_root: &Path, file: &Path, text: &str) -> Vec<String> {
    let file_dir = file.parent().unwrap_or(root);
    let relative = file.strip_prefix(root).unwrap_or(file).display().to_string();
    let mut problems = Vec::new();
    for (number, line) in text.lines().enumerate() {
        let code = line.trim_start();
        if code.starts_with("//")
            || code.starts_with('#') && !code.starts_with("#[")
            || code.starts_with("* ")
            || code.starts_with("*/")
        {
            continue; // a comment names paths without reading them
        }
        if line.contains(NOT_READ) {
            continue;
        }
        let at = format!("{relative}:{}", number + 1);
        for forbidden in FORBIDDEN {
            if line.contains(forbidden) {
                problems.push(format!("{at}: names {forbidden}"));
            }
        }
        let base = if line.contains("include_str!") || line.contains("include_bytes!") { file_dir } else { crate_root };
        let literals = string_literals(line);
        for literal in &literals {
            if literal.split('/').any(|part| part == "..") && !inside(root, &base.join(literal)) {
                problems.push(format!("{at}: {literal:?} leaves the repository (from {})", base.display()));
            }
        }
        // `.join("..").join("..")…`: the parent steps of one line, taken together.
        let ups: Vec<&str> = literals
            .iter()
            .filter(|l| !l.is_empty() && l.split('/').all(|part| part == ".." || part.is_empty()))
            .flat_map(|l| l.split('/').filter(|part| *part == ".."))
            .collect();
        if ups.len() > 1 && literals.iter().filter(|l| l.contains("..")).count() > 1 {
            let joined = ups.join("/");
            if !inside(root, &base.join(&joined)) {
                problems.push(format!("{at}: the joined {joined:?} leaves the repository (from {})", base.display()));
            }
        }
    }
    problems
}

/// Directories of targets a manifest declares outside its own directory (a
/// `[[test]]` with `path = "../../tests/integration/main.rs"`), with that
/// manifest's directory: cargo runs those tests from the manifest's directory.
fn target_dirs(root: &Path, files: &[PathBuf]) -> Vec<(PathBuf, PathBuf)> {
    let mut targets = Vec::new();
    for manifest in files.iter().filter(|f| f.file_name().is_some_and(|n| n == "Cargo.toml")) {
        let Some(dir) = manifest.parent() else { continue };
        let text = std::fs::read_to_string(manifest).unwrap_or_default();
        for line in text.lines() {
            let Some(value) = line.trim().strip_prefix("path").map(str::trim_start) else { continue };
            let Some(value) = value.strip_prefix('=') else { continue };
            let value = value.trim().trim_matches('"');
            if value.ends_with(".rs") && value.starts_with("..") {
                let target = lexical(&dir.join(value));
                if let Some(target_dir) = target.parent().filter(|d| d.starts_with(root)) {
                    targets.push((target_dir.to_path_buf(), dir.to_path_buf()));
                }
            }
        }
    }
    targets
}

/// Where `file`'s crate runs from: the manifest of a target declared elsewhere
/// (see [`target_dirs`]), else the nearest directory at or above `file` holding a
/// `Cargo.toml` (the repository root for files outside any crate).
fn crate_root(root: &Path, targets: &[(PathBuf, PathBuf)], file: &Path) -> PathBuf {
    if let Some((_, manifest_dir)) = targets.iter().find(|(dir, _)| file.starts_with(dir)) {
        return manifest_dir.clone();
    }
    let mut dir = file.parent();
    while let Some(candidate) = dir {
        if candidate.join("Cargo.toml").is_file() {
            return candidate.to_path_buf();
        }
        if candidate == root {
            break;
        }
        dir = candidate.parent();
    }
    root.to_path_buf()
}

/// Whether `path`, resolved lexically, stays under `root`.
fn inside(root: &Path, path: &Path) -> bool {
    lexical(path).starts_with(root)
}

/// `path` with `.` and `..` resolved without touching the file system.
fn lexical(path: &Path) -> PathBuf {
    let mut resolved = PathBuf::new();
    for component in path.components() {
        match component {
            Component::ParentDir => {
                resolved.pop();
            }
            Component::CurDir => {}
            other => resolved.push(other),
        }
    }
    resolved
}

/// The contents of the double-quoted literals on a line (escapes kept as written).
fn string_literals(line: &str) -> Vec<&str> {
    let mut literals = Vec::new();
    let mut rest = line;
    while let Some(start) = rest.find('"') {
        let after = &rest[start + 1..];
        let mut end = None;
        let mut escaped = false;
        for (i, c) in after.char_indices() {
            match c {
                '\\' if !escaped => escaped = true,
                '"' if !escaped => {
                    end = Some(i);
                    break;
                }
                _ => escaped = false,
            }
        }
        let Some(end) = end else { break };
        literals.push(&after[..end]);
        rest = &after[end + 1..];
    }
    literals
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A scratch repository with one crate whose test holds `line`.
    fn repo_with(line: &str) -> (tempfile::TempDir, Result<()>) {
        let repo = tempfile::tempdir().unwrap();
        let krate = repo.path().join("host/core");
        std::fs::create_dir_all(krate.join("tests")).unwrap();
        std::fs::write(krate.join("Cargo.toml"), "[package]\n").unwrap();
        std::fs::write(krate.join("tests/corpus.rs"), format!("#[test]\nfn t() {{\n    {line}\n}}\n")).unwrap();
        let result = check(repo.path());
        (repo, result)
    }

    #[test]
    fn the_repository_passes() {
        check(&Path::new(env!("CARGO_MANIFEST_DIR")).join("..")).unwrap();
    }

    #[test]
    fn a_sibling_directory_is_refused() {
        // The line the integration tests used to have.
        let (_repo, result) = repo_with(
            &r#"let shared = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../SIBLING");"#
                .replace("SIBLING", "shared"),
        );
        let error = result.unwrap_err().to_string();
        assert!(error.contains("host/core/tests/corpus.rs:3") && error.contains("leaves the repository"), "{error}");
        let (_repo, result) = repo_with(r#"let f = std::fs::read("/work/shared/fixtures/vcons/a.vcon");"#);
        assert!(result.unwrap_err().to_string().contains("names"));
        let (_repo, result) = repo_with(r#"let d = std::env::var("CONSERVER_SHARED_DIR");"#);
        assert!(result.is_err());
        let (_repo, result) = repo_with(r#"let d = Path::new(".").join("..").join("..").join("..");"#);
        assert!(result.unwrap_err().to_string().contains("the joined"));
    }

    #[test]
    fn paths_inside_the_repository_and_comments_pass() {
        let (_repo, result) = repo_with(r#"let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");"#);
        result.unwrap();
        let (_repo, result) = repo_with(r#"const T: &str = include_str!("../../../wit/link.wit");"#);
        result.unwrap();
        let (_repo, result) = repo_with("// the old corpus was at ../shared/fixtures");
        result.unwrap();
        let (_repo, result) = repo_with(r#"let real = std::env::var_os("CONSERVER_REAL_VCONS");"#);
        result.unwrap();
        let (_repo, result) = repo_with(r#"assert!(volumes.contains("../x.yml:/app/x.yml")); // repo-paths: not read"#);
        result.unwrap();
    }

    #[test]
    fn a_test_declared_by_another_manifest_resolves_from_that_manifest() {
        let repo = tempfile::tempdir().unwrap();
        let app = repo.path().join("host/app");
        std::fs::create_dir_all(&app).unwrap();
        std::fs::create_dir_all(repo.path().join("tests/integration")).unwrap();
        std::fs::write(app.join("Cargo.toml"), "[[test]]\nname = \"i\"\npath = \"../../tests/integration/main.rs\"\n")
            .unwrap();
        let test = repo.path().join("tests/integration/main.rs");
        // From host/app, `../..` is the repository; from tests/integration it would not be.
        std::fs::write(&test, "#[test]\nfn t() { let r = Path::new(\"../..\"); }\n").unwrap();
        check(repo.path()).unwrap();
        std::fs::write(&test, "#[test]\nfn t() { let r = Path::new(\"../../../sibling\"); }\n").unwrap();
        assert!(check(repo.path()).is_err());
    }

    #[test]
    fn literals_are_split_on_quotes_and_escapes() {
        assert_eq!(string_literals(r#"a("x", "y\"z") b"#), vec!["x", r#"y\"z"#]);
    }
}
