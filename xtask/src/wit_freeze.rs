//! Released WIT packages stay byte-for-byte as released.
//!
//! `wit/released.txt` records, per released `vcon:conserver@x.y.z`, the file that
//! declares it and the sha256 of that file. The check fails when a recorded file
//! changed, is missing, or declares another package, and when two files declare the
//! same released package. A WIT file whose package is not recorded is an unreleased
//! version and may still change.

use std::path::Path;

use anyhow::{Context, Result, bail};
use sha2::{Digest, Sha256};

/// One line of `wit/released.txt`.
#[derive(Debug, PartialEq, Eq)]
struct Released {
    package: String,
    path: String,
    sha256: String,
}

fn parse(text: &str) -> Result<Vec<Released>> {
    let mut released = Vec::new();
    for (number, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let fields: Vec<&str> = line.split_whitespace().collect();
        let [package, path, sha256] = fields[..] else {
            bail!("wit/released.txt line {}: expected `package path sha256`, found {line:?}", number + 1);
        };
        released.push(Released { package: package.into(), path: path.into(), sha256: sha256.to_lowercase() });
    }
    Ok(released)
}

/// The package a WIT file declares (`package vcon:conserver@0.1.0;`).
fn declared_package(text: &str) -> Option<&str> {
    text.lines()
        .map(str::trim)
        .find_map(|line| line.strip_prefix("package "))
        .map(|rest| rest.trim_end_matches(';').trim())
}

fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// Check every released package under `root` (the repository).
pub fn check(root: &Path) -> Result<()> {
    let list = root.join("wit/released.txt");
    let text = std::fs::read_to_string(&list).with_context(|| format!("reading {}", list.display()))?;
    let released = parse(&text)?;
    if released.is_empty() {
        bail!("{} lists no released package", list.display());
    }
    let mut problems = Vec::new();
    for entry in &released {
        let path = root.join(&entry.path);
        let Ok(bytes) = std::fs::read(&path) else {
            problems.push(format!("{} ({}) is missing", entry.path, entry.package));
            continue;
        };
        let found = sha256_hex(&bytes);
        if found != entry.sha256 {
            problems.push(format!(
                "{} ({}) changed after its release (sha256 {found}, released {}): revert it and put the change in a new version",
                entry.path, entry.package, entry.sha256
            ));
        }
        let declared = declared_package(&String::from_utf8_lossy(&bytes)).map(str::to_string);
        if declared.as_deref() != Some(entry.package.as_str()) {
            problems.push(format!("{} declares {declared:?}, not the released {}", entry.path, entry.package));
        }
    }
    for wit in wit_files(&root.join("wit"))? {
        let text = std::fs::read_to_string(&wit).with_context(|| format!("reading {}", wit.display()))?;
        let relative = wit.strip_prefix(root).unwrap_or(&wit).display().to_string();
        if let Some(package) = declared_package(&text)
            && let Some(entry) = released.iter().find(|r| r.package == package)
            && entry.path != relative
        {
            problems.push(format!("{relative} also declares the released {package} (released as {})", entry.path));
        }
    }
    if !problems.is_empty() {
        bail!("released WIT packages changed:\n  {}", problems.join("\n  "));
    }
    eprintln!("xtask: {} released WIT package(s) unchanged", released.len());
    Ok(())
}

fn wit_files(dir: &Path) -> Result<Vec<std::path::PathBuf>> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).with_context(|| format!("listing {}", dir.display()))? {
        let path = entry?.path();
        if path.is_dir() {
            files.extend(wit_files(&path)?);
        } else if path.extension().is_some_and(|e| e == "wit") {
            files.push(path);
        }
    }
    files.sort();
    Ok(files)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A scratch copy of the repository's `wit/` directory.
    fn scratch_copy() -> tempfile::TempDir {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let scratch = tempfile::tempdir().unwrap();
        for wit in wit_files(&root.join("wit")).unwrap() {
            let relative = wit.strip_prefix(&root).unwrap();
            let to = scratch.path().join(relative);
            std::fs::create_dir_all(to.parent().unwrap()).unwrap();
            std::fs::copy(&wit, &to).unwrap();
        }
        std::fs::copy(root.join("wit/released.txt"), scratch.path().join("wit/released.txt")).unwrap();
        scratch
    }

    #[test]
    fn the_repository_passes() {
        check(&Path::new(env!("CARGO_MANIFEST_DIR")).join("..")).unwrap();
    }

    #[test]
    fn a_changed_released_file_fails() {
        let scratch = scratch_copy();
        let wit = scratch.path().join("wit/link.wit");
        let text = std::fs::read_to_string(&wit).unwrap();
        std::fs::write(&wit, text.replacen("interface", "// a comment is a change too\ninterface", 1)).unwrap();
        let error = check(scratch.path()).unwrap_err().to_string();
        assert!(error.contains("wit/link.wit (vcon:conserver@0.1.0) changed after its release"), "{error}");
    }

    #[test]
    fn a_missing_or_renamed_package_fails() {
        let scratch = scratch_copy();
        std::fs::remove_file(scratch.path().join("wit/0.2.0/link.wit")).unwrap();
        assert!(check(scratch.path()).unwrap_err().to_string().contains("is missing"));

        let scratch = scratch_copy();
        let wit = scratch.path().join("wit/0.2.0/link.wit");
        std::fs::copy(&wit, scratch.path().join("wit/copy.wit")).unwrap();
        assert!(check(scratch.path()).unwrap_err().to_string().contains("also declares the released"));
    }

    #[test]
    fn an_unreleased_version_may_change() {
        let scratch = scratch_copy();
        std::fs::create_dir_all(scratch.path().join("wit/9.9.9")).unwrap();
        std::fs::write(scratch.path().join("wit/9.9.9/link.wit"), "package vcon:conserver@9.9.9;\n").unwrap();
        check(scratch.path()).unwrap();
    }

    #[test]
    fn the_package_line_is_read() {
        assert_eq!(declared_package("// x\npackage vcon:conserver@0.1.0;\n"), Some("vcon:conserver@0.1.0"));
        assert!(parse("a b").is_err());
    }
}
