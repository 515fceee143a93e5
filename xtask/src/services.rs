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

fn installed(program: &str) -> bool {
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

fn apt_install(package: &str) -> Result<()> {
    let apt = |args: &[&str]| {
        if installed("sudo") && !is_root() { run("sudo", &[&["apt-get"], args].concat()) } else { run("apt-get", args) }
    };
    apt(&["update", "-qq"])?;
    apt(&["install", "-y", "-qq", package])
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
