//! Podman as this project runs it: installed with apt when missing (podman,
//! buildah, runc, debootstrap), as root, with `--runtime runc --cgroup-manager
//! cgroupfs` and a containers.conf that sets no default ulimits (the settings
//! under which containers run on a machine without systemd or a Docker engine).

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};

use crate::services;

/// The programs the image steps need, and the Debian package of each.
const TOOLS: [(&str, &str); 4] =
    [("podman", "podman"), ("buildah", "buildah"), ("runc", "runc"), ("debootstrap", "debootstrap")];

/// Install podman, buildah, runc and debootstrap with apt when one is missing.
pub fn ensure_installed() -> Result<()> {
    let missing: Vec<&str> =
        TOOLS.iter().filter(|(program, _)| !services::installed(program)).map(|(_, package)| *package).collect();
    if missing.is_empty() {
        return Ok(());
    }
    services::apt_install(&missing.join(" "))
        .with_context(|| format!("installing {}: install them by hand (as root)", missing.join(" ")))
}

/// The containers.conf every podman call uses (`CONTAINERS_CONF`), written under
/// the target directory: `default_ulimits = []`, because raising RLIMIT_NOFILE is
/// refused in this kind of sandbox.
pub fn containers_conf(target: &Path) -> Result<PathBuf> {
    let dir = target.join("containers");
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let conf = dir.join("containers.conf");
    std::fs::write(&conf, "[containers]\ndefault_ulimits = []\n")
        .with_context(|| format!("writing {}", conf.display()))?;
    Ok(conf)
}

/// `podman --runtime runc --cgroup-manager cgroupfs`, with `CONTAINERS_CONF` set.
pub fn podman(conf: &Path) -> Command {
    let mut command = Command::new("podman");
    command.args(["--runtime", "runc", "--cgroup-manager", "cgroupfs"]).env("CONTAINERS_CONF", conf);
    command
}

/// Whether podman's storage holds `image`.
pub fn image_exists(conf: &Path, image: &str) -> bool {
    podman(conf).args(["image", "exists", image]).status().is_ok_and(|s| s.success())
}

/// The id of `image` in podman's storage, if it is there.
pub fn image_id(conf: &Path, image: &str) -> Option<String> {
    let out = podman(conf).args(["image", "inspect", "--format", "{{.Id}}", image]).output().ok()?;
    out.status.success().then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// Remove the image `old_id` if `image` no longer names it (a rebuild left it
/// untagged); an image a container still uses stays.
pub fn remove_replaced(conf: &Path, image: &str, old_id: Option<String>) {
    if let Some(old) = old_id
        && image_id(conf, image).is_some_and(|new| new != old)
    {
        let _ = podman(conf).args(["rmi", &old]).stdout(std::process::Stdio::null()).status();
    }
}

/// Run a podman command, failing with what it was.
pub fn run(command: &mut Command, what: &str) -> Result<()> {
    eprintln!("xtask: {what}");
    let status = command.status().with_context(|| format!("{what}: cannot start podman (is it installed?)"))?;
    if !status.success() {
        bail!("{what} failed ({status}); podman's own message is above");
    }
    Ok(())
}
