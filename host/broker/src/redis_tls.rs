//! TLS to Redis (`rediss://`, a single server or a cluster), with rustls. The
//! server's certificate is checked against the system's roots, or against a CA
//! file; a client certificate and key can be given for mutual TLS. The files come
//! from `CONSERVER_REDIS_CA_FILE`, `CONSERVER_REDIS_CLIENT_CERT_FILE` and
//! `CONSERVER_REDIS_CLIENT_KEY_FILE`, or from the query parameters a Python
//! deployment's `REDIS_URL` carries (redis-py's `ssl_ca_certs`, `ssl_certfile`,
//! `ssl_keyfile`); redis-py's `ssl_cert_reqs=none` turns the check off, loudly.

use std::path::{Path, PathBuf};

use redis::{ClientTlsConfig, TlsCertificates};

/// TLS material for `rediss://` (PEM files, read at connect).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RedisTls {
    /// CA certificate(s) to check the server's certificate against, instead of
    /// the system's roots.
    pub ca_file: Option<PathBuf>,
    /// Client certificate for mutual TLS (with `client_key_file`).
    pub client_cert_file: Option<PathBuf>,
    /// The client certificate's private key.
    pub client_key_file: Option<PathBuf>,
}

/// `url` split into what redis-rs parses and the TLS settings in its query.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct ParsedUrl {
    /// The URL without the redis-py TLS parameters (and with `#insecure` when
    /// `ssl_cert_reqs=none` asked for no certificate check).
    pub url: String,
    /// Files named in the query.
    pub tls: RedisTls,
    /// Whether the certificate check was turned off.
    pub insecure: bool,
}

/// Take redis-py's TLS query parameters out of `url`.
pub(crate) fn parse_url(url: &str) -> ParsedUrl {
    let (base, fragment) = match url.split_once('#') {
        Some((base, fragment)) => (base, Some(fragment)),
        None => (url, None),
    };
    let (head, query) = match base.split_once('?') {
        Some((head, query)) => (head, query),
        None => (base, ""),
    };
    let mut tls = RedisTls::default();
    let mut insecure = fragment == Some("insecure");
    let mut kept = Vec::new();
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
        let value = conserver_core::percent_decode(value);
        match name {
            "ssl_ca_certs" => tls.ca_file = Some(PathBuf::from(value)),
            "ssl_certfile" => tls.client_cert_file = Some(PathBuf::from(value)),
            "ssl_keyfile" => tls.client_key_file = Some(PathBuf::from(value)),
            "ssl_cert_reqs" => insecure |= matches!(value.to_ascii_lowercase().as_str(), "none" | "cert_none"),
            "ssl_check_hostname" | "ssl" => {}
            _ => kept.push(pair),
        }
    }
    let mut url = head.to_string();
    if !kept.is_empty() {
        url.push('?');
        url.push_str(&kept.join("&"));
    }
    if insecure {
        url.push_str("#insecure");
    } else if let Some(fragment) = fragment {
        url.push('#');
        url.push_str(fragment);
    }
    ParsedUrl { url, tls, insecure }
}

impl RedisTls {
    /// Whether any file is named.
    pub fn is_set(&self) -> bool {
        self.ca_file.is_some() || self.client_cert_file.is_some() || self.client_key_file.is_some()
    }

    /// `self`, with what `other` names where `self` names nothing.
    pub(crate) fn or(self, other: RedisTls) -> RedisTls {
        RedisTls {
            ca_file: self.ca_file.or(other.ca_file),
            client_cert_file: self.client_cert_file.or(other.client_cert_file),
            client_key_file: self.client_key_file.or(other.client_key_file),
        }
    }

    /// The certificates for redis-rs, the files read; an error names the file.
    pub(crate) fn certificates(&self) -> Result<TlsCertificates, String> {
        let read = |what: &str, path: &Path| {
            std::fs::read(path).map_err(|e| format!("cannot read the Redis TLS {what} {}: {e}", path.display()))
        };
        let client_tls = match (&self.client_cert_file, &self.client_key_file) {
            (Some(cert), Some(key)) => Some(ClientTlsConfig {
                client_cert: read("client certificate", cert)?,
                client_key: read("client key", key)?,
            }),
            (None, None) => None,
            _ => {
                return Err("a Redis TLS client certificate needs its key, and a key its certificate: set both \
                            CONSERVER_REDIS_CLIENT_CERT_FILE and CONSERVER_REDIS_CLIENT_KEY_FILE"
                    .into());
            }
        };
        let root_cert = match &self.ca_file {
            Some(path) => Some(read("CA file", path)?),
            None => None,
        };
        Ok(TlsCertificates { client_tls, root_cert })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redis_py_tls_parameters_are_taken_out_of_the_url() {
        let parsed = parse_url(
            "rediss://:pw@r.example:6380/0?ssl_ca_certs=%2Fetc%2Fca.pem&ssl_certfile=/c.pem&ssl_keyfile=/k.pem&protocol=resp3",
        );
        assert_eq!(parsed.url, "rediss://:pw@r.example:6380/0?protocol=resp3");
        assert_eq!(parsed.tls.ca_file.as_deref(), Some(Path::new("/etc/ca.pem")));
        assert_eq!(parsed.tls.client_cert_file.as_deref(), Some(Path::new("/c.pem")));
        assert_eq!(parsed.tls.client_key_file.as_deref(), Some(Path::new("/k.pem")));
        assert!(!parsed.insecure);
    }

    #[test]
    fn ssl_cert_reqs_none_turns_the_check_off_and_nothing_else_does() {
        let parsed = parse_url("rediss://r.example?ssl_cert_reqs=none");
        assert_eq!(parsed.url, "rediss://r.example#insecure");
        assert!(parsed.insecure);
        assert!(!parse_url("rediss://r.example?ssl_cert_reqs=required").insecure);
        assert_eq!(parse_url("redis://127.0.0.1:6379").url, "redis://127.0.0.1:6379");
    }

    #[test]
    fn a_client_certificate_without_its_key_is_refused() {
        let tls = RedisTls { client_cert_file: Some("/c.pem".into()), ..RedisTls::default() };
        assert!(tls.certificates().is_err());
    }
}
