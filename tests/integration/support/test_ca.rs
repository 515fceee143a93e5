//! A certificate authority made at test time (openssl), and certificates it signs
//! for `localhost`/`127.0.0.1` (servers) or a client name (mutual TLS). Nothing is
//! committed: each test makes its own in a temporary directory.

use std::path::{Path, PathBuf};
use std::process::Command;

/// The CA's directory and files.
pub struct TestCa {
    dir: tempfile::TempDir,
}

fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap_or_else(|e| panic!("openssl is needed by this test: {e}"));
    assert!(out.status.success(), "openssl {args:?}: {}", String::from_utf8_lossy(&out.stderr));
}

impl TestCa {
    /// A new CA.
    pub fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        openssl(
            dir.path(),
            &[
                "req",
                "-x509",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-days",
                "1",
                "-subj",
                "/CN=conserver test CA",
                "-keyout",
                "ca.key",
                "-out",
                "ca.crt",
            ],
        );
        Self { dir }
    }

    /// The CA certificate (PEM).
    pub fn ca_file(&self) -> PathBuf {
        self.dir.path().join("ca.crt")
    }

    /// A certificate and key signed by the CA for `name`, valid for localhost and
    /// 127.0.0.1 (a server) or as a client: `(cert, key)`.
    pub fn issue(&self, name: &str) -> (PathBuf, PathBuf) {
        let dir = self.dir.path();
        let (key, csr, cert, ext) =
            (format!("{name}.key"), format!("{name}.csr"), format!("{name}.crt"), format!("{name}.ext"));
        openssl(
            dir,
            &["req", "-newkey", "rsa:2048", "-nodes", "-subj", &format!("/CN={name}"), "-keyout", &key, "-out", &csr],
        );
        std::fs::write(
            dir.join(&ext),
            "subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth,clientAuth\n",
        )
        .unwrap();
        openssl(
            dir,
            &[
                "x509",
                "-req",
                "-in",
                &csr,
                "-CA",
                "ca.crt",
                "-CAkey",
                "ca.key",
                "-CAcreateserial",
                "-days",
                "1",
                "-out",
                &cert,
                "-extfile",
                &ext,
            ],
        );
        (dir.join(cert), dir.join(key))
    }
}
