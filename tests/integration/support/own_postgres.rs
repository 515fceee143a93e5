//! A PostgreSQL of one test's own, so the test can stop and start it: a fresh
//! cluster (`initdb`, trust auth) in a temporary directory, listening on a free
//! loopback port. PostgreSQL refuses to run as root, so as root (how the tests run
//! here) it runs as the `postgres` user the server package creates.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The running cluster; stopped and removed on drop.
pub struct OwnPostgres {
    dir: tempfile::TempDir,
    bin: PathBuf,
    /// Its port on 127.0.0.1.
    pub port: u16,
    /// Whether it accepts TLS connections only.
    tls_only: bool,
}

/// The directory holding `pg_ctl` and `initdb`: `PATH`, else the Debian layout.
fn bin_dir() -> PathBuf {
    let on_path = std::env::var_os("PATH")
        .into_iter()
        .flat_map(|path| std::env::split_paths(&path).collect::<Vec<_>>())
        .find(|dir| dir.join("pg_ctl").is_file() && dir.join("initdb").is_file());
    let debian = std::fs::read_dir("/usr/lib/postgresql").ok().and_then(|versions| {
        let mut dirs: Vec<PathBuf> = versions.flatten().map(|v| v.path().join("bin")).collect();
        dirs.sort();
        dirs.into_iter().rev().find(|dir| dir.join("pg_ctl").is_file())
    });
    on_path.or(debian).expect(
        "pg_ctl and initdb are needed (the PostgreSQL server package, which this machine's PostgreSQL comes from)",
    )
}

fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .map(|status| status.lines().any(|l| l.starts_with("Uid:") && l.split_whitespace().nth(1) == Some("0")))
        .unwrap_or(false)
}

impl OwnPostgres {
    /// Create and start a cluster.
    pub fn start() -> Self {
        let pg = Self::create(false);
        pg.resume();
        pg
    }

    /// Create and start a cluster that accepts TLS connections only (plain TCP
    /// is rejected by `pg_hba.conf`), with a certificate `ca` signed for
    /// localhost and 127.0.0.1.
    pub fn start_tls_only(ca: &super::test_ca::TestCa) -> Self {
        let pg = Self::create(true);
        let (cert, key) = ca.issue("postgres-server");
        let data = pg.data();
        std::fs::copy(&cert, data.join("server.crt")).unwrap();
        std::fs::copy(&key, data.join("server.key")).unwrap();
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(data.join("server.key"), std::fs::Permissions::from_mode(0o600)).unwrap();
        }
        if is_root() {
            let owner = Command::new("chown")
                .arg("postgres:postgres")
                .arg(data.join("server.crt"))
                .arg(data.join("server.key"))
                .status()
                .unwrap();
            assert!(owner.success());
        }
        let mut conf = std::fs::read_to_string(data.join("postgresql.conf")).unwrap();
        conf.push_str("\nssl = on\nssl_cert_file = 'server.crt'\nssl_key_file = 'server.key'\n");
        std::fs::write(data.join("postgresql.conf"), conf).unwrap();
        std::fs::write(
            data.join("pg_hba.conf"),
            "local all all trust\nhostssl all all 127.0.0.1/32 trust\nhostnossl all all 127.0.0.1/32 reject\n",
        )
        .unwrap();
        pg.resume();
        pg
    }

    fn create(tls_only: bool) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let port = super::free_port();
        let pg = Self { dir, bin: bin_dir(), port, tls_only };
        std::fs::create_dir(pg.data()).unwrap();
        if is_root() {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(pg.dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
            let owner = Command::new("chown").arg("postgres:postgres").arg(pg.data()).status().unwrap();
            assert!(owner.success(), "chown of the test cluster's directory failed");
        }
        let initdb = pg.run("initdb", &["-D", &pg.data().display().to_string(), "-U", "postgres", "--auth=trust"]);
        assert!(initdb.status.success(), "initdb failed: {}", String::from_utf8_lossy(&initdb.stderr));
        pg
    }

    fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    fn run(&self, tool: &str, args: &[&str]) -> Output {
        let program = self.bin.join(tool);
        let mut command = if is_root() {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(&program);
            c
        } else {
            Command::new(&program)
        };
        // The server's working directory must be readable by it.
        command.args(args).current_dir(Path::new("/")).output().unwrap_or_else(|e| panic!("{tool}: {e}"))
    }

    /// Stop the server (fast shutdown: open connections are cut).
    pub fn stop(&self) {
        let out = self.run("pg_ctl", &["-D", &self.data().display().to_string(), "-m", "fast", "-w", "stop"]);
        assert!(out.status.success(), "pg_ctl stop failed: {}", String::from_utf8_lossy(&out.stderr));
    }

    /// Start the server (again), waiting until it accepts connections.
    pub fn resume(&self) {
        // Socket and log inside the data directory, which the server's user owns.
        let options = format!("-p {} -k {} -c listen_addresses=127.0.0.1", self.port, self.data().display());
        let log = self.data().join("server.log").display().to_string();
        let out =
            self.run("pg_ctl", &["-D", &self.data().display().to_string(), "-o", &options, "-l", &log, "-w", "start"]);
        assert!(out.status.success(), "pg_ctl start failed: {}", String::from_utf8_lossy(&out.stderr));
    }

    /// The answer of `sql` (`psql -At`), trimmed.
    pub fn query(&self, sql: &str) -> String {
        let out = Command::new("psql")
            .args([
                "-h",
                "127.0.0.1",
                "-p",
                &self.port.to_string(),
                "-U",
                "postgres",
                "-d",
                "postgres",
                "-At",
                "-c",
                sql,
            ])
            .env("PGSSLMODE", if self.tls_only { "require" } else { "prefer" })
            .output()
            .expect("psql");
        assert!(out.status.success(), "psql failed: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }
}

impl Drop for OwnPostgres {
    fn drop(&mut self) {
        let _ = self.run("pg_ctl", &["-D", &self.data().display().to_string(), "-m", "immediate", "-w", "stop"]);
    }
}
