//! Where components may be loaded from. `component:` paths and `module:` names
//! come from the config file and from `POST /config`, so they are confined to
//! the component directories: the links directory, and `CONSERVER_COMPONENT_DIRS`
//! (default: the config file's directory). Every path a config names is
//! checked before anything reads it:
//!
//! 1. the path, made absolute and normalised (`.`/`..` removed without touching
//!    the disk), must be under a component directory — otherwise the error says
//!    so and nothing else, so it cannot tell whether a file exists elsewhere;
//! 2. canonicalised (symlinks resolved), it must still be under one;
//! 3. it must be a regular file (checked before it is opened, so a FIFO or a
//!    device such as `/dev/zero` is never opened), of at most
//!    `CONSERVER_MAX_COMPONENT_BYTES`;
//! 4. opened without blocking, it must start with the wasm component header
//!    (errors never quote the file's bytes).
//!
//! The config handed to the loader then names the canonical path, so no
//! symlink placed later redirects it. (Whoever can write inside a component
//! directory can still replace the file between the check and the load; they
//! control what the server runs anyway.)

use std::io::Read as _;
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::{Component, Path, PathBuf};

use conserver_config::{Config, LinkDef};
use conserver_pipeline::resolve_component;

/// The first eight bytes of a wasm component (magic, then version 0x0d and layer 1).
const COMPONENT_HEADER: [u8; 8] = [0x00, 0x61, 0x73, 0x6d, 0x0d, 0x00, 0x01, 0x00];
/// The first four bytes of any wasm binary.
const WASM_MAGIC: [u8; 4] = [0x00, 0x61, 0x73, 0x6d];

/// The component directories and the size cap.
#[derive(Debug, Clone)]
pub struct ComponentPolicy {
    /// Normalised absolute directories, as configured.
    dirs: Vec<PathBuf>,
    /// The same, canonicalised (those that exist).
    canonical_dirs: Vec<PathBuf>,
    max_bytes: u64,
}

/// `path` made absolute (against the current directory) with `.` and `..`
/// resolved textually.
fn normalise(path: &Path) -> PathBuf {
    let absolute = if path.is_absolute() {
        path.to_path_buf()
    } else {
        std::env::current_dir().unwrap_or_else(|_| PathBuf::from("/")).join(path)
    };
    let mut out = PathBuf::from("/");
    for part in absolute.components() {
        match part {
            Component::ParentDir => {
                out.pop();
            }
            Component::Normal(name) => out.push(name),
            Component::RootDir | Component::CurDir | Component::Prefix(_) => {}
        }
    }
    out
}

impl ComponentPolicy {
    /// `dirs`, or when empty the links directory and the config file's directory.
    pub fn new(dirs: &[PathBuf], links_dir: &Path, config_file: &Path, max_bytes: u64) -> Self {
        // The links directory (the standard links) always; then the configured
        // directories, else the config file's.
        let mut all = vec![links_dir.to_path_buf()];
        if dirs.is_empty() {
            let config_dir = config_file.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
            all.push(config_dir.to_path_buf());
        } else {
            all.extend(dirs.iter().cloned());
        }
        let dirs = all;
        let dirs: Vec<PathBuf> = dirs.iter().map(|d| normalise(d)).collect();
        let canonical_dirs = dirs.iter().filter_map(|d| std::fs::canonicalize(d).ok()).collect();
        Self { dirs, canonical_dirs, max_bytes }
    }

    fn shown_dirs(&self) -> String {
        self.dirs.iter().map(|d| d.display().to_string()).collect::<Vec<_>>().join(":")
    }

    fn outside(&self, given: &Path) -> String {
        format!(
            "component {} is outside the component directories ({}); put it in one of them, or add its directory \
             to CONSERVER_COMPONENT_DIRS",
            given.display(),
            self.shown_dirs()
        )
    }

    /// The canonical path of the component at `path` (as resolved from the
    /// config), once it passes every check.
    pub fn check(&self, path: &Path) -> Result<PathBuf, String> {
        let lexical = normalise(path);
        let under = |p: &Path, dirs: &[PathBuf]| dirs.iter().any(|d| p.starts_with(d));
        if !under(&lexical, &self.dirs) && !under(&lexical, &self.canonical_dirs) {
            return Err(self.outside(path));
        }
        let canonical = std::fs::canonicalize(&lexical).map_err(|e| {
            format!(
                "cannot read component {}: {e} (build the links with `cargo xtask build-links`, or fix the \
                 `component:` path)",
                path.display()
            )
        })?;
        if !under(&canonical, &self.canonical_dirs) {
            return Err(self.outside(path));
        }
        let metadata =
            std::fs::metadata(&canonical).map_err(|e| format!("cannot read component {}: {e}", path.display()))?;
        if !metadata.is_file() {
            return Err(format!("component {} is not a regular file", path.display()));
        }
        if metadata.len() > self.max_bytes {
            return Err(format!(
                "component {} is {} bytes, over the {}-byte limit (CONSERVER_MAX_COMPONENT_BYTES)",
                path.display(),
                metadata.len(),
                self.max_bytes
            ));
        }
        let file = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NONBLOCK)
            .open(&canonical)
            .map_err(|e| format!("cannot read component {}: {e}", path.display()))?;
        let opened = file.metadata().map_err(|e| format!("cannot read component {}: {e}", path.display()))?;
        if !opened.is_file() || opened.len() > self.max_bytes {
            return Err(format!("component {} changed while it was checked; try again", path.display()));
        }
        let mut header = Vec::with_capacity(8);
        file.take(8).read_to_end(&mut header).map_err(|e| format!("cannot read component {}: {e}", path.display()))?;
        if header.as_slice() != COMPONENT_HEADER {
            let what = if header.starts_with(&WASM_MAGIC) {
                "is a core wasm module, not a component (build it for wasm32-wasip2, or wrap it with `wasm-tools component new`)"
            } else {
                "is not a wasm component (it does not start with the wasm header)"
            };
            return Err(format!("component {} {what}", path.display()));
        }
        Ok(canonical)
    }

    /// Check every component `config` loads (the links of enabled chains and
    /// every tracer) and point them at their canonical paths; every other
    /// `component:` and `module:` must at least name a path under the directories.
    pub fn confine(&self, config: &mut Config, config_dir: &Path, links_dir: &Path) -> Result<(), String> {
        let used: std::collections::HashSet<String> =
            config.enabled_chains().flat_map(|(_, chain)| chain.links.iter().map(|s| s.name.clone())).collect();
        let check_one = |section: &str, name: &str, def: &mut LinkDef, loaded: bool| -> Result<(), String> {
            let Some(path) = resolve_component(def, config_dir, links_dir) else { return Ok(()) };
            let fail = |message: String| format!("{section} `{name}`: {message}");
            if loaded {
                def.component = Some(self.check(&path).map_err(fail)?);
            } else {
                let lexical = normalise(&path);
                if !self.dirs.iter().chain(&self.canonical_dirs).any(|d| lexical.starts_with(d)) {
                    return Err(fail(self.outside(&path)));
                }
            }
            Ok(())
        };
        for (name, def) in config.links.iter_mut() {
            check_one("link", name, def, used.contains(name))?;
        }
        for (name, def) in config.tracers.iter_mut().flatten() {
            check_one("tracer", name, def, true)?;
        }
        Ok(())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn policy(dir: &Path) -> ComponentPolicy {
        ComponentPolicy::new(&[dir.to_path_buf()], Path::new("/nonexistent-links"), Path::new("/x/c.yml"), 1024)
    }

    #[test]
    fn only_small_regular_component_files_under_the_dirs() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("components");
        std::fs::create_dir(&dir).unwrap();
        let good = dir.join("good.wasm");
        let mut bytes = COMPONENT_HEADER.to_vec();
        bytes.extend([0u8; 16]);
        std::fs::write(&good, &bytes).unwrap();
        let policy = policy(&dir);
        assert_eq!(policy.check(&good).unwrap(), std::fs::canonicalize(&good).unwrap());

        // Outside: refused without looking, the same whether the file exists or not.
        let secret = root.path().join("secret.txt");
        std::fs::write(&secret, "TOP-SECRET").unwrap();
        let exists = policy.check(&secret).unwrap_err();
        let missing = policy.check(&root.path().join("missing.txt")).unwrap_err();
        assert!(exists.contains("outside the component directories"), "{exists}");
        assert_eq!(exists.replace("secret.txt", "X"), missing.replace("missing.txt", "X"));
        assert!(policy.check(Path::new("/dev/zero")).unwrap_err().contains("outside"));
        assert!(policy.check(&dir.join("../secret.txt")).unwrap_err().contains("outside"));
        // A symlink out of the directory is outside too.
        std::os::unix::fs::symlink(&secret, dir.join("link.wasm")).unwrap();
        assert!(policy.check(&dir.join("link.wasm")).unwrap_err().contains("outside"));

        // Inside: regular files only, under the cap, with the component header;
        // the file's bytes are never quoted.
        let text = dir.join("notes.txt");
        std::fs::write(&text, "TOP-SECRET").unwrap();
        let err = policy.check(&text).unwrap_err();
        assert!(err.contains("not a wasm component") && !err.contains("TOP"), "{err}");
        let module = dir.join("module.wasm");
        std::fs::write(&module, [0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00]).unwrap();
        assert!(policy.check(&module).unwrap_err().contains("core wasm module"));
        let big = dir.join("big.wasm");
        std::fs::write(&big, vec![0u8; 2048]).unwrap();
        assert!(policy.check(&big).unwrap_err().contains("CONSERVER_MAX_COMPONENT_BYTES"));
        assert!(policy.check(&dir).unwrap_err().contains("not a regular file"));
    }

    #[test]
    fn a_fifo_is_refused_without_being_opened() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("fifo.wasm");
        let made = std::process::Command::new("mkfifo").arg(&fifo).status().unwrap();
        assert!(made.success());
        // Opening a FIFO for reading blocks until a writer comes: this returns
        // only because the type is checked first.
        assert!(policy(dir.path()).check(&fifo).unwrap_err().contains("not a regular file"));
    }

    #[test]
    fn default_dirs_are_the_links_dir_and_the_config_dir() {
        let links = tempfile::tempdir().unwrap();
        let config = tempfile::tempdir().unwrap();
        let policy = ComponentPolicy::new(&[], links.path(), &config.path().join("config.yml"), 1024);
        assert!(policy.shown_dirs().contains(&links.path().display().to_string()));
        assert!(policy.shown_dirs().contains(&config.path().display().to_string()));
        // Configured directories replace the config dir, never the links dir.
        let other = tempfile::tempdir().unwrap();
        let policy =
            ComponentPolicy::new(&[other.path().to_path_buf()], links.path(), &config.path().join("config.yml"), 1024);
        let shown = policy.shown_dirs();
        assert!(
            shown.contains(&links.path().display().to_string()) && shown.contains(&other.path().display().to_string())
        );
        assert!(!shown.contains(&config.path().display().to_string()), "{shown}");
    }
}
