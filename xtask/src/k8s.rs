//! `cargo xtask k8s-check [DIR]`: the Kubernetes manifests (`deploy/k8s`, or DIR)
//! validated offline by `k8s/validate.py`: built-in kinds against the schemas the
//! `kubernetes-validate` package carries (strict), KEDA's ScaledObject against the
//! `cloudcoil.models.keda` models generated from KEDA's CRD, and the
//! kustomization's resource list. Both packages come from PyPI into a venv under
//! `<target>/tools/k8s`. Without DIR it also checks that the check is not blind:
//! copies of the manifests with one wrong field each must fail.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};

/// Pinned validator packages.
const PACKAGES: [&str; 2] = ["kubernetes-validate==1.37.0", "cloudcoil.models.keda==2.16.1.0"];
/// Kubernetes versions the manifests must validate against (oldest supported, newest).
const VERSIONS: [&str; 2] = ["1.29", "1.37"];

/// Copies that must fail: (file, text, replacement).
const BROKEN: [(&str, &str, &str); 4] = [
    ("api-deployment.yaml", "readinessProbe:", "readinessProbes:"),
    ("api-hpa.yaml", "averageUtilization: 70", "averageUtilization: \"70%\""),
    ("worker-scaledobject.yaml", "minReplicaCount:", "minReplicas:"),
    ("worker-scaledobject.yaml", "listName:", "listname:"),
];

/// `cargo xtask k8s-check [DIR]`.
pub fn command(root: &Path, target: &Path, args: &[String]) -> Result<()> {
    match args {
        [] => check(root, target),
        [dir] => {
            if validate(root, target, Path::new(dir), true)? {
                Ok(())
            } else {
                bail!("the manifests in {dir} do not validate: fix the fields named above")
            }
        }
        _ => bail!("usage: cargo xtask k8s-check [DIR]"),
    }
}

/// deploy/k8s validates, and broken copies of it do not.
pub fn check(root: &Path, target: &Path) -> Result<()> {
    let manifests = root.join("deploy/k8s");
    if !validate(root, target, &manifests, true)? {
        bail!("the manifests in {} do not validate: fix the fields named above", manifests.display());
    }
    let scratch = target.join("k8s-check");
    for (file, text, replacement) in BROKEN {
        let _ = std::fs::remove_dir_all(&scratch);
        copy_dir(&manifests, &scratch)?;
        let path = scratch.join(file);
        let original = std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
        if !original.contains(text) {
            bail!("{file} no longer holds `{text}`: update BROKEN in xtask/src/k8s.rs");
        }
        std::fs::write(&path, original.replacen(text, replacement, 1))
            .with_context(|| format!("writing {}", path.display()))?;
        if validate(root, target, &scratch, false)? {
            bail!("the k8s check is blind: {file} with `{text}` → `{replacement}` passed; fix xtask/k8s/validate.py");
        }
        eprintln!("xtask: k8s-check refuses {file} with `{text}` → `{replacement}`, as it must");
    }
    let _ = std::fs::remove_dir_all(&scratch);
    Ok(())
}

fn copy_dir(from: &Path, to: &Path) -> Result<()> {
    std::fs::create_dir_all(to).with_context(|| format!("creating {}", to.display()))?;
    for entry in std::fs::read_dir(from).with_context(|| format!("reading {}", from.display()))?.flatten() {
        if entry.file_type().is_ok_and(|t| t.is_file()) {
            std::fs::copy(entry.path(), to.join(entry.file_name()))
                .with_context(|| format!("copying {} to {}", entry.path().display(), to.display()))?;
        }
    }
    Ok(())
}

/// Run the validator on `dir`; whether everything passed. Its report is shown
/// when `show` (otherwise only its failure is expected).
fn validate(root: &Path, target: &Path, dir: &Path, show: bool) -> Result<bool> {
    let python = ensure_venv(target)?;
    let mut command = Command::new(&python);
    command.arg(root.join("xtask/k8s/validate.py")).arg(dir).args(VERSIONS);
    let out = if show {
        eprintln!("xtask: validating the manifests in {}", dir.display());
        command.status().map(|status| (status, String::new()))
    } else {
        command.output().map(|out| {
            let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
            (out.status, text)
        })
    };
    let (status, text) = out.with_context(|| format!("cannot start {}", python.display()))?;
    match status.code() {
        Some(0) => Ok(true),
        // validate.py's "some manifest is invalid".
        Some(3) => Ok(false),
        _ => bail!("xtask/k8s/validate.py crashed on {} ({status}); fix it:\n{text}", dir.display()),
    }
}

/// The venv holding the validator packages, (re)installed when the pins change.
fn ensure_venv(target: &Path) -> Result<PathBuf> {
    let venv = target.join("tools/k8s");
    let python = venv.join("bin/python");
    let stamp = venv.join("packages.txt");
    let wanted = PACKAGES.join("\n");
    if python.is_file() && std::fs::read_to_string(&stamp).is_ok_and(|s| s == wanted) {
        return Ok(python);
    }
    let _ = std::fs::remove_dir_all(&venv);
    let created = Command::new("python3").arg("-m").arg("venv").arg(&venv).status();
    if !created.is_ok_and(|s| s.success()) {
        bail!("python3 -m venv {} failed: install python3 and python3-venv", venv.display());
    }
    eprintln!("xtask: installing {} into {}", PACKAGES.join(" "), venv.display());
    let installed = Command::new(venv.join("bin/pip")).args(["install", "--quiet"]).args(PACKAGES).status();
    if !installed.is_ok_and(|s| s.success()) {
        bail!("pip install {} failed: is PyPI reachable?", PACKAGES.join(" "));
    }
    std::fs::write(&stamp, &wanted).with_context(|| format!("writing {}", stamp.display()))?;
    Ok(python)
}
