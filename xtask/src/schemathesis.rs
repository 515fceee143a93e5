//! `cargo xtask schemathesis [--max-examples N] [--max-time SECS]`: a bounded
//! schemathesis run against the real `conserver` binary, driven by the project's
//! own OpenAPI document (`/openapi.json`).
//!
//! The server runs on a free loopback port with the embedded broker, a fresh
//! data directory, a throw-away API token and a one-link chain. Schemathesis
//! (pinned, installed into a venv under `<target>/tools/schemathesis`) sends
//! schema-derived and schema-violating requests to every operation, with and
//! without the token. The run fails on any 5xx (`not_a_server_error`), on an
//! operation that accepts a request without its token (`ignored_auth`), on a
//! response that contradicts the document (status codes, content types, bodies
//! and headers), and when the server's log shows a panic.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

/// The schemathesis release the run is pinned to.
const VERSION: &str = "4.32.5";

/// The checks that must hold. `positive_data_acceptance` and
/// `negative_data_rejection` are left out: the vCon schema is looser in the
/// OpenAPI document than the validator (which also checks cross-references and
/// encodings), so generated "valid" vCons are rightly refused with 422.
const CHECKS: &str = "not_a_server_error,status_code_conformance,content_type_conformance,\
response_headers_conformance,response_schema_conformance,ignored_auth,missing_required_header";

/// Bounds of one run.
pub struct Bounds {
    /// Examples per operation and phase.
    pub max_examples: u32,
    /// Wall-clock budget for the whole run, in seconds.
    pub max_time_secs: u32,
}

impl Bounds {
    /// `--max-examples N` and `--max-time SECS` from the command line.
    pub fn parse(args: &[String], default: Bounds) -> Result<Bounds> {
        let mut bounds = default;
        let mut args = args.iter();
        while let Some(flag) = args.next() {
            let value = args.next().with_context(|| format!("{flag} needs a value"))?;
            let number = value.parse().with_context(|| format!("{flag} must be a whole number, got {value}"))?;
            match flag.as_str() {
                "--max-examples" => bounds.max_examples = number,
                "--max-time" => bounds.max_time_secs = number,
                _ => bail!("unknown option {flag}: use --max-examples N or --max-time SECS"),
            }
        }
        Ok(bounds)
    }
}

/// Install schemathesis when needed and return its `st` executable.
fn install(target: &Path) -> Result<PathBuf> {
    let venv = crate::script_links::tools_dir(target).join("schemathesis");
    let st = venv.join("bin").join("st");
    let pinned = venv.join(format!(".installed-{VERSION}"));
    if st.is_file() && pinned.is_file() {
        return Ok(st);
    }
    crate::status(Command::new("python3").arg("-m").arg("venv").arg(&venv))?;
    crate::status(
        Command::new(venv.join("bin").join("pip"))
            .args(["install", "--quiet", "--disable-pip-version-check"])
            .arg(format!("schemathesis=={VERSION}")),
    )?;
    std::fs::write(&pinned, VERSION).with_context(|| format!("writing {}", pinned.display()))?;
    Ok(st)
}

/// A free loopback port (bound, read and released).
fn free_port() -> Result<u16> {
    let listener = TcpListener::bind("127.0.0.1:0").context("binding a loopback port")?;
    Ok(listener.local_addr()?.port())
}

/// Whether `GET /health` answers 200.
fn healthy(port: u16) -> bool {
    let Ok(mut stream) = TcpStream::connect(("127.0.0.1", port)) else { return false };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
    if stream.write_all(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n").is_err() {
        return false;
    }
    let mut head = [0u8; 12];
    stream.read_exact(&mut head).is_ok() && head.ends_with(b"200")
}

/// The server under test; killed when dropped.
struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Run schemathesis against a fresh server from `binary` (links beside it).
pub fn run(root: &Path, target: &Path, binary: &Path, bounds: &Bounds) -> Result<()> {
    let st = install(target)?;
    let work = target.join("schemathesis-run");
    let _ = std::fs::remove_dir_all(&work);
    std::fs::create_dir_all(&work).with_context(|| format!("creating {}", work.display()))?;
    let config = work.join("config.yml");
    std::fs::write(
        &config,
        "links:\n  tag:\n    module: links.tag\n    options: {tags: [fuzzed]}\nchains:\n  main:\n    links: [tag]\n    ingress_lists: [default]\n    egress_lists: [fuzzed]\n",
    )?;
    let port = free_port()?;
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos());
    let token = format!("st-{}-{nanos:x}", std::process::id());
    let log_path = work.join("server.log");
    let log = std::fs::File::create(&log_path)?;
    let child = Command::new(binary)
        .current_dir(root)
        .args(["serve", "--config"])
        .arg(&config)
        .env_remove("REDIS_URL")
        .env("CONSERVER_BIND", format!("127.0.0.1:{port}"))
        .env("CONSERVER_DATA_DIR", work.join("data"))
        .env("CONSERVER_API_TOKEN", &token)
        .stdout(log.try_clone()?)
        .stderr(log)
        .spawn()
        .with_context(|| format!("cannot start {}", binary.display()))?;
    let server = Server(child);
    let started = Instant::now();
    while !healthy(port) {
        if started.elapsed() > Duration::from_secs(60) {
            bail!("the server did not answer /health within 60 s; see {}", log_path.display());
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    let outcome = crate::status(
        Command::new(&st)
            .arg("run")
            .arg(format!("http://127.0.0.1:{port}/openapi.json"))
            .args(["--checks", CHECKS])
            .args(["--header", &format!("x-conserver-api-token:{token}")])
            .args(["--max-examples", &bounds.max_examples.to_string()])
            .args(["--max-time", &bounds.max_time_secs.to_string()])
            .args(["--workers", "2", "--request-timeout", "20", "--no-color"])
            .arg("--generation-deterministic")
            .arg("--report-dir")
            .arg(work.join("report"))
            .stdin(Stdio::null()),
    );
    drop(server);
    let log = std::fs::read_to_string(&log_path).unwrap_or_default();
    if let Some(line) = log.lines().find(|line| line.contains("panicked")) {
        bail!("the server panicked during the schemathesis run: {line} (full log: {})", log_path.display());
    }
    outcome.with_context(|| format!("schemathesis found failures; the server's log is {}", log_path.display()))
}
