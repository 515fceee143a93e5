//! Services the test suite talks to, started (or installed with apt) when missing,
//! so `cargo xtask test` works on a fresh machine.

use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Result, bail};

const REDIS: &str = "127.0.0.1:6379";

fn reachable(address: &str) -> bool {
    address
        .parse::<SocketAddr>()
        .is_ok_and(|addr| TcpStream::connect_timeout(&addr, Duration::from_millis(300)).is_ok())
}

/// Whether `program` is on PATH.
pub fn installed(program: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|paths| std::env::split_paths(&paths).any(|dir| Path::new(&dir).join(program).is_file()))
}

fn run(program: &str, args: &[&str]) -> Result<()> {
    eprintln!("xtask: running {program} {}", args.join(" "));
    let status = Command::new(program).args(args).status()?;
    if !status.success() {
        bail!("{program} {} failed with {status}", args.join(" "));
    }
    Ok(())
}

/// `apt-get install` the space-separated `package` list (with sudo when not root).
pub fn apt_install(package: &str) -> Result<()> {
    // Non-interactive: a package that asks a question must not hang the run.
    let apt = |args: &[&str]| {
        let sudo = installed("sudo") && !is_root();
        let (program, args) = if sudo { ("sudo", [&["apt-get"], args].concat()) } else { ("apt-get", args.to_vec()) };
        eprintln!("xtask: running {program} {}", args.join(" "));
        let status = Command::new(program).args(&args).env("DEBIAN_FRONTEND", "noninteractive").status()?;
        if !status.success() {
            bail!("{program} {} failed with {status}", args.join(" "));
        }
        Ok(())
    };
    apt(&["update", "-qq"])?;
    let packages: Vec<&str> = package.split_whitespace().collect();
    apt(&[&["install", "-y", "-qq"][..], &packages].concat())
}

fn is_root() -> bool {
    Command::new("id").arg("-u").output().is_ok_and(|out| String::from_utf8_lossy(&out.stdout).trim() == "0")
}

fn wait_for(address: &str, what: &str) -> Result<()> {
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        if reachable(address) {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    bail!("{what} did not start listening on {address}")
}

/// Make sure a Redis answers on 127.0.0.1:6379, unless the tests were pointed
/// elsewhere with `CONSERVER_TEST_REDIS_URL`.
pub fn ensure_redis() -> Result<()> {
    if std::env::var_os("CONSERVER_TEST_REDIS_URL").is_some() || reachable(REDIS) {
        return Ok(());
    }
    if !installed("redis-server") {
        apt_install("redis-server")?;
    }
    run(
        "redis-server",
        &["--daemonize", "yes", "--bind", "127.0.0.1", "--port", "6379", "--save", "", "--appendonly", "no"],
    )?;
    wait_for(REDIS, "redis-server")
}

/// Ports of the test Redis Cluster (three primaries, no replicas).
const CLUSTER_PORTS: [u16; 3] = [7101, 7102, 7103];

fn cluster_ok(port: u16) -> bool {
    Command::new("redis-cli")
        .args(["-p", &port.to_string(), "cluster", "info"])
        .output()
        .is_ok_and(|out| String::from_utf8_lossy(&out.stdout).lines().any(|l| l.trim() == "cluster_state:ok"))
}

/// Make sure a 3-node Redis Cluster answers on 127.0.0.1:7101-7103 (started here
/// when it is not), unless `CONSERVER_TEST_REDIS_CLUSTER_URL` points elsewhere.
pub fn ensure_redis_cluster() -> Result<()> {
    if std::env::var_os("CONSERVER_TEST_REDIS_CLUSTER_URL").is_some() || cluster_ok(CLUSTER_PORTS[0]) {
        return Ok(());
    }
    if !installed("redis-server") || !installed("redis-cli") {
        apt_install("redis-server")?;
    }
    let base = std::env::temp_dir().join("conserver-redis-cluster");
    for port in CLUSTER_PORTS {
        let address = format!("127.0.0.1:{port}");
        if reachable(&address) {
            continue;
        }
        let dir = base.join(port.to_string());
        // A node left over from an earlier run may hold a stale cluster config.
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir)?;
        let dir = dir.display().to_string();
        run(
            "redis-server",
            &[
                "--daemonize",
                "yes",
                "--bind",
                "127.0.0.1",
                "--port",
                &port.to_string(),
                "--cluster-enabled",
                "yes",
                "--cluster-config-file",
                "nodes.conf",
                "--dir",
                &dir,
                "--save",
                "",
                "--appendonly",
                "no",
            ],
        )?;
        wait_for(&address, "redis-server (cluster node)")?;
    }
    let nodes: Vec<String> = CLUSTER_PORTS.iter().map(|p| format!("127.0.0.1:{p}")).collect();
    let mut args = vec!["--cluster", "create"];
    args.extend(nodes.iter().map(String::as_str));
    args.extend(["--cluster-replicas", "0", "--cluster-yes"]);
    run("redis-cli", &args)?;
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        if CLUSTER_PORTS.iter().all(|p| cluster_ok(*p)) {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    bail!("the Redis Cluster on ports {CLUSTER_PORTS:?} did not reach cluster_state:ok")
}

/// Make sure the audio tools the media tests generate recordings with (and
/// compare against) are installed: sox, espeak-ng and ffmpeg, from Debian.
pub fn ensure_audio_tools() -> Result<()> {
    let missing: Vec<&str> = [("sox", "sox"), ("espeak-ng", "espeak-ng"), ("ffmpeg", "ffmpeg")]
        .iter()
        .filter(|(program, _)| !installed(program))
        .map(|(_, package)| *package)
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    apt_install(&missing.join(" "))
}

/// Make sure Debian's nginx is installed (the deployment test runs `nginx -t` on
/// docker/nginx.conf). Its service is not started: a policy-rc.d refuses it for
/// the length of the install.
pub fn ensure_nginx() -> Result<()> {
    if Path::new("/usr/sbin/nginx").is_file() {
        return Ok(());
    }
    let policy = Path::new("/usr/sbin/policy-rc.d");
    let placed = is_root() && !policy.exists() && std::fs::write(policy, "#!/bin/sh\nexit 101\n").is_ok();
    if placed {
        use std::os::unix::fs::PermissionsExt as _;
        let _ = std::fs::set_permissions(policy, std::fs::Permissions::from_mode(0o755));
    }
    let result = apt_install("nginx-light");
    if placed {
        let _ = std::fs::remove_file(policy);
    }
    result
}

/// Make sure `python3` can import what the tests run through it: PyPI's
/// `fakeredis` with its JSON and Lua support (a TCP server standing in for Redis
/// Stack; the real module is on no package registry here), and `jsonschema` with
/// `PyYAML` (an independent check of `conserver config schema` against real
/// configs).
pub fn ensure_python_test_tools() -> Result<()> {
    let importable = || {
        Command::new("python3")
            .args(["-c", "import fakeredis, jsonpath_ng, lupa, jsonschema, yaml"])
            .status()
            .is_ok_and(|status| status.success())
    };
    if importable() {
        return Ok(());
    }
    let pip = if installed("pip3") { "pip3" } else { "pip" };
    run(pip, &["install", "--quiet", "fakeredis[json,lua]>=2.41", "jsonschema>=4.18", "PyYAML"])?;
    if !importable() {
        bail!("python3 still cannot import fakeredis, jsonschema and yaml after `{pip} install`");
    }
    Ok(())
}

/// Make sure `moto_server` (an S3-compatible HTTP server from PyPI) is installed;
/// the S3 tests start their own on a loopback port.
pub fn ensure_moto() -> Result<()> {
    if installed("moto_server") {
        return Ok(());
    }
    let pip = if installed("pip3") { "pip3" } else { "pip" };
    run(pip, &["install", "--quiet", "moto[server]"])?;
    if !installed("moto_server") {
        bail!("moto_server is still not on PATH after `{pip} install moto[server]`");
    }
    Ok(())
}
