//! `cargo xtask images [--prebuilt]`: the two conserver images, built with podman
//! from `docker/Dockerfile.api` (`conserver-api:latest`) and
//! `docker/Dockerfile.conserver` (`conserver:latest`).
//!
//! * Without `--prebuilt`, from source (release), as a Docker user builds them.
//! * With `--prebuilt`, the Dockerfiles' `prebuilt` stage (`--target prebuilt`):
//!   the same runtime stage around binaries already built by the test build
//!   (`<target>/api-only/conserver` for the API image, `<target>/debug/conserver`
//!   and `<target>/debug/links/` for the worker image), so CI compiles once.
//!
//! No image registry is reachable here, so what the Dockerfiles start `FROM` is
//! made locally and kept in podman's storage: `debian:bookworm-slim` from
//! debootstrap (made once), and `rust:1.95-bookworm` from it plus the machine's
//! own toolchain and local CAs (`containerfiles/rust-builder.Containerfile`),
//! used by the build stage only. Compose's Redis and nginx images are stood in
//! for by `conserver-redis:latest` and `conserver-nginx:latest`, built from the
//! same Debian with apt (the container smoke test runs them). podman's layer
//! cache makes every step after the first quick.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use anyhow::{Context, Result, bail};

use crate::podman::{self, image_exists};

const API_IMAGE: &str = "conserver-api:latest";
const WORKER_IMAGE: &str = "conserver:latest";
const REDIS_IMAGE: &str = "conserver-redis:latest";
const NGINX_IMAGE: &str = "conserver-nginx:latest";
const BASE_IMAGE: &str = "debian:bookworm-slim";
const BUILDER_IMAGE: &str = "rust:1.95-bookworm";
/// The machine's own CAs, which the builder image trusts too (cargo must reach
/// crates.io through any TLS-inspecting proxy the machine trusts).
const LOCAL_CA_DIR: &str = "/usr/local/share/ca-certificates";
/// The toolchain `rust:1.95-bookworm` must hold.
const RUST_VERSION: &str = "1.95.";

const BUILDER_FILE: &str = include_str!("../containerfiles/rust-builder.Containerfile");
const REDIS_FILE: &str = include_str!("../containerfiles/redis.Containerfile");
const NGINX_FILE: &str = include_str!("../containerfiles/nginx.Containerfile");

/// `cargo xtask images [--prebuilt]`.
pub fn command(root: &Path, target: &Path, args: &[String]) -> Result<()> {
    match args {
        [] => from_source(root, target),
        [flag] if flag == "--prebuilt" => prebuilt(root, target),
        _ => bail!("usage: cargo xtask images [--prebuilt]"),
    }
}

/// Podman installed, its containers.conf, the base image and the service images.
fn prepare(target: &Path) -> Result<PathBuf> {
    podman::ensure_installed()?;
    let conf = podman::containers_conf(target)?;
    ensure_base(&conf, target)?;
    let scratch = images_dir(target).join("empty-context");
    std::fs::create_dir_all(&scratch).with_context(|| format!("creating {}", scratch.display()))?;
    build_inline(&conf, target, REDIS_IMAGE, REDIS_FILE, &scratch, &[])?;
    build_inline(&conf, target, NGINX_IMAGE, NGINX_FILE, &scratch, &[])?;
    Ok(conf)
}

fn images_dir(target: &Path) -> PathBuf {
    target.join("images")
}

/// The worker and API images from source, timed.
fn from_source(root: &Path, target: &Path) -> Result<()> {
    let conf = prepare(target)?;
    ensure_builder(&conf, target)?;
    let started = Instant::now();
    for (image, dockerfile) in [(API_IMAGE, "docker/Dockerfile.api"), (WORKER_IMAGE, "docker/Dockerfile.conserver")] {
        let one = Instant::now();
        let old = podman::image_id(&conf, image);
        podman::run(
            podman::podman(&conf)
                // No layer cache: the build stage's layers (gigabytes) would stay behind as
                // untagged images, and its `COPY . .` changes with every commit anyway.
                .args(["build", "--layers=false", "--format", "docker", "--network", "host", "--tag", image])
                .arg("--file")
                .arg(root.join(dockerfile))
                .arg(root),
            &format!("building {image} from source ({dockerfile})"),
        )?;
        podman::remove_replaced(&conf, image, old);
        eprintln!("xtask: {image} built from source in {:.0?}", one.elapsed());
    }
    eprintln!("xtask: both images built from source in {:.0?}", started.elapsed());
    list_sizes(&conf)
}

/// The worker and API images around the test build's binaries.
pub fn prebuilt(root: &Path, target: &Path) -> Result<()> {
    let conf = prepare(target)?;
    let worker_links = target.join("debug/links");
    let parts = [
        (API_IMAGE, "docker/Dockerfile.api", target.join("api-only/conserver"), None),
        (WORKER_IMAGE, "docker/Dockerfile.conserver", target.join("debug/conserver"), Some(&worker_links)),
    ];
    for (image, dockerfile, binary, links) in parts {
        if !binary.is_file() {
            bail!("{} is missing: `cargo xtask test` builds it before the images (or run it once)", binary.display());
        }
        let context = images_dir(target).join(format!("context-{}", image.replace([':', '/'], "-")));
        stage_context(root, &context, &binary, links.map(PathBuf::as_path))?;
        let old = podman::image_id(&conf, image);
        podman::run(
            podman::podman(&conf)
                .args(["build", "--format", "docker", "--network", "host", "--target", "prebuilt", "--tag", image])
                .arg("--file")
                .arg(root.join(dockerfile))
                .arg(&context),
            &format!("assembling {image} from {} ({dockerfile}, --target prebuilt)", binary.display()),
        )?;
        podman::remove_replaced(&conf, image, old);
    }
    list_sizes(&conf)
}

/// A build context holding what the `prebuilt` stage copies: config.example.yml,
/// prebuilt/conserver (stripped) and, for the worker, prebuilt/links/.
fn stage_context(root: &Path, context: &Path, binary: &Path, links: Option<&Path>) -> Result<()> {
    remove_dir(context)?;
    let prebuilt = context.join("prebuilt");
    std::fs::create_dir_all(&prebuilt).with_context(|| format!("creating {}", prebuilt.display()))?;
    let config = root.join("config.example.yml");
    std::fs::copy(&config, context.join("config.example.yml"))
        .with_context(|| format!("copying {} into {}", config.display(), context.display()))?;
    let status = Command::new("strip")
        .arg("-o")
        .arg(prebuilt.join("conserver"))
        .arg(binary)
        .status()
        .context("cannot start strip: apt-get install binutils")?;
    if !status.success() {
        bail!("strip -o {}/conserver {} failed with {status}", prebuilt.display(), binary.display());
    }
    if let Some(links) = links {
        if !links.join("tag.wasm").is_file() {
            bail!("{} holds no tag.wasm: run `cargo xtask build-links` first", links.display());
        }
        let status =
            Command::new("cp").arg("-a").arg(links).arg(prebuilt.join("links")).status().context("cannot start cp")?;
        if !status.success() {
            bail!("copying {} into {} failed with {status}", links.display(), prebuilt.display());
        }
    }
    Ok(())
}

fn remove_dir(dir: &Path) -> Result<()> {
    match std::fs::remove_dir_all(dir) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            Err(e).with_context(|| format!("removing {} (remove it by hand)", dir.display()))
        }
        _ => Ok(()),
    }
}

/// `podman build` of a Containerfile kept in this crate, on `context`.
fn build_inline(conf: &Path, target: &Path, image: &str, text: &str, context: &Path, extra: &[String]) -> Result<()> {
    let file = images_dir(target).join(format!("{}.Containerfile", image.replace([':', '/'], "-")));
    std::fs::write(&file, text).with_context(|| format!("writing {}", file.display()))?;
    let old = podman::image_id(conf, image);
    podman::run(
        podman::podman(conf)
            .args(["build", "--format", "docker", "--network", "host", "--tag", image])
            .args(extra)
            .arg("--file")
            .arg(&file)
            .arg(context),
        &format!("building {image} (cached layers are reused)"),
    )?;
    podman::remove_replaced(conf, image, old);
    Ok(())
}

/// `debian:bookworm-slim`, made once with debootstrap and trimmed like Debian's
/// own slim image (no docs, man pages, locales, apt lists or caches).
fn ensure_base(conf: &Path, target: &Path) -> Result<()> {
    if image_exists(conf, BASE_IMAGE) {
        return Ok(());
    }
    let rootfs = images_dir(target).join("bookworm-rootfs");
    remove_dir(&rootfs)?;
    std::fs::create_dir_all(images_dir(target)).with_context(|| format!("creating {}", target.display()))?;
    let status = Command::new("debootstrap")
        .args(["--variant=minbase", "bookworm"])
        .arg(&rootfs)
        .arg("http://deb.debian.org/debian")
        .status()
        .context("cannot start debootstrap: apt-get install debootstrap")?;
    if !status.success() {
        bail!(
            "debootstrap of Debian bookworm into {} failed with {status}: is deb.debian.org reachable?",
            rootfs.display()
        );
    }
    slim(&rootfs)?;
    let mut tar = Command::new("tar")
        .arg("-C")
        .arg(&rootfs)
        .args(["-c", "."])
        .stdout(Stdio::piped())
        .spawn()
        .context("cannot start tar")?;
    let stdout = tar.stdout.take().context("tar has no stdout")?;
    podman::run(
        podman::podman(conf).args(["import", "--change", "CMD [\"bash\"]", "-", BASE_IMAGE]).stdin(stdout),
        &format!("importing {} as {BASE_IMAGE}", rootfs.display()),
    )?;
    let tarred = tar.wait().context("waiting for tar")?;
    if !tarred.success() {
        bail!("tar of {} failed with {tarred}", rootfs.display());
    }
    remove_dir(&rootfs)
}

/// What Debian's slim image leaves out, and its apt and dpkg settings.
fn slim(rootfs: &Path) -> Result<()> {
    // Files only in apt's directories: apt needs their partial/ subdirectories.
    for dir in ["var/cache/apt", "var/cache/apt/archives", "var/lib/apt/lists"] {
        clear(&rootfs.join(dir), true)?;
    }
    for dir in ["usr/share/doc", "usr/share/man", "usr/share/info", "usr/share/locale", "dev"] {
        clear(&rootfs.join(dir), false)?;
    }
    let files = [
        ("etc/apt/sources.list", ""),
        (
            "etc/apt/sources.list.d/debian.sources",
            "Types: deb\nURIs: http://deb.debian.org/debian\nSuites: bookworm bookworm-updates\nComponents: main\n\
             Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg\n\n\
             Types: deb\nURIs: http://deb.debian.org/debian-security\nSuites: bookworm-security\nComponents: main\n\
             Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg\n",
        ),
        (
            "etc/apt/apt.conf.d/docker-clean",
            "DPkg::Post-Invoke { \"rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb \
             /var/cache/apt/*.bin || true\"; };\nAPT::Update::Post-Invoke { \"rm -f /var/cache/apt/archives/*.deb \
             /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true\"; };\nDir::Cache::pkgcache \"\";\n\
             Dir::Cache::srcpkgcache \"\";\n",
        ),
        ("etc/apt/apt.conf.d/docker-no-languages", "Acquire::Languages \"none\";\n"),
        ("etc/apt/apt.conf.d/docker-gzip-indexes", "Acquire::GzipIndexes \"true\";\n"),
        ("etc/apt/apt.conf.d/docker-autoremove-suggests", "Apt::AutoRemove::SuggestsImportant \"false\";\n"),
        (
            "etc/dpkg/dpkg.cfg.d/docker-slim",
            "path-exclude /usr/share/doc/*\npath-include /usr/share/doc/*/copyright\npath-exclude /usr/share/man/*\n\
             path-exclude /usr/share/groff/*\npath-exclude /usr/share/info/*\npath-exclude /usr/share/lintian/*\n\
             path-exclude /usr/share/linda/*\npath-exclude /usr/share/locale/*\n\
             path-include /usr/share/locale/locale.alias\n",
        ),
    ];
    for (path, text) in files {
        let path = rootfs.join(path);
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        }
        std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(())
}

/// Empty `dir` (except `locale.alias`): its files, and its directories unless `keep_dirs`.
fn clear(dir: &Path, keep_dirs: bool) -> Result<()> {
    for entry in std::fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))?.flatten() {
        let path = entry.path();
        let is_dir = entry.file_type().is_ok_and(|t| t.is_dir());
        if entry.file_name() == "locale.alias" || (is_dir && keep_dirs) {
            continue;
        }
        if is_dir {
            remove_dir(&path)?;
        } else {
            std::fs::remove_file(&path).with_context(|| format!("removing {}", path.display()))?;
        }
    }
    Ok(())
}

/// `rust:1.95-bookworm`: the base image, the build tools and this machine's
/// toolchain (which must be 1.95 and hold the wasm32-wasip2 target).
fn ensure_builder(conf: &Path, target: &Path) -> Result<()> {
    let version = output(Command::new("rustc").arg("-vV"))?;
    if !version.starts_with(&format!("rustc {RUST_VERSION}")) {
        bail!("the Dockerfiles build with Rust {RUST_VERSION}x but this machine's rustc is `{}`", version.trim());
    }
    let sysroot = PathBuf::from(output(Command::new("rustc").args(["--print", "sysroot"]))?.trim());
    if !sysroot.join("lib/rustlib/wasm32-wasip2").is_dir() {
        bail!("{} has no wasm32-wasip2 target: run `rustup target add wasm32-wasip2`", sysroot.display());
    }
    let rustup = which("rustup")?;
    let id = version.lines().find_map(|l| l.strip_prefix("commit-hash: ")).unwrap_or("unknown").to_string();
    let scratch = images_dir(target).join("empty-context");
    let local_ca = Path::new(LOCAL_CA_DIR);
    let local_ca = if local_ca.is_dir() { local_ca } else { scratch.as_path() };
    build_inline(
        conf,
        target,
        BUILDER_IMAGE,
        BUILDER_FILE,
        &scratch,
        &[
            "--build-arg".into(),
            format!("TOOLCHAIN_ID={id}"),
            "--volume".into(),
            format!("{}:/mnt/toolchain:ro", sysroot.display()),
            "--volume".into(),
            format!("{}:/mnt/rustup:ro", rustup.display()),
            "--build-arg".into(),
            format!("LOCAL_CA_ID={}", digest(local_ca)?),
            "--volume".into(),
            format!("{}:/mnt/local-ca:ro", local_ca.display()),
        ],
    )
}

/// A digest (FNV-1a) of the names and contents of the files directly in `dir`.
fn digest(dir: &Path) -> Result<String> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| format!("reading {}", dir.display()))?
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for file in files {
        let bytes = std::fs::read(&file).with_context(|| format!("reading {}", file.display()))?;
        for byte in file.as_os_str().as_encoded_bytes().iter().chain(&bytes) {
            hash ^= u64::from(*byte);
            hash = hash.wrapping_mul(0x0100_0000_01b3);
        }
    }
    Ok(format!("{hash:016x}"))
}

fn which(program: &str) -> Result<PathBuf> {
    std::env::var_os("PATH")
        .and_then(|paths| std::env::split_paths(&paths).map(|dir| dir.join(program)).find(|p| p.is_file()))
        .and_then(|p| p.canonicalize().ok())
        .with_context(|| format!("{program} is not on PATH: the builder image copies this machine's rustup"))
}

fn output(command: &mut Command) -> Result<String> {
    let out = command.output().with_context(|| format!("cannot start {command:?}"))?;
    if !out.status.success() {
        bail!("{command:?} failed with {}: {}", out.status, String::from_utf8_lossy(&out.stderr));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Print the sizes of the project's images (`podman image ls`).
fn list_sizes(conf: &Path) -> Result<()> {
    podman::run(podman::podman(conf).args(["image", "ls"]), "listing the images")
}
