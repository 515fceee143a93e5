//! The network links' outbound HTTP goes through: which certificate authorities
//! a link's `https://` peer may be signed by, and whether a request goes direct
//! or through the operator's egress proxy.
//!
//! Trust: the bundled web roots, plus the CA certificates in a PEM file
//! (`CONSERVER_LINK_CA_FILE`, else `SSL_CERT_FILE` as OpenSSL and Python's
//! `httpx` read it), so a corporate CA or a vendor's private CA works.
//!
//! Proxy: `HTTPS_PROXY` for `https://` targets (a `CONNECT` tunnel; TLS runs
//! end to end with the target), `HTTP_PROXY` for `http://` targets (the
//! request in absolute form), the lower-case spellings too, and `NO_PROXY`
//! (`*`, host names matching themselves and their sub-domains, `.suffix`,
//! addresses, CIDR blocks, each optionally `:port`) for targets that go direct.
//! The link's allow-list is checked on the target before a proxy is involved;
//! the target must resolve here, every address it resolves to must pass the
//! internal-address rule a direct request meets, and the proxy is asked for
//! that checked address (so its own resolution cannot lead elsewhere), the TLS
//! name staying the target's. `CONSERVER_PROXY_BY_NAME=1` names the target to
//! the proxy instead, for proxies whose policy filters by name; their own
//! resolution then decides. A target given as an internal address the link is
//! granted (a loopback service) is reached direct, never through the proxy.

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use base64::Engine as _;
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;

/// Why the outbound network settings cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum NetworkError {
    /// The CA file is missing, unreadable or holds no certificate.
    #[error(
        "cannot use {variable}={path}: {problem} (it must be a PEM file of CA certificates, \
         `-----BEGIN CERTIFICATE-----` blocks)"
    )]
    CaFile {
        /// The variable that named it.
        variable: &'static str,
        /// The file.
        path: PathBuf,
        /// What is wrong.
        problem: String,
    },
    /// A proxy URL is not `http://[user:password@]host[:port]`.
    #[error("{variable} is not a usable proxy URL: {problem} (expected http://[user:password@]host:port)")]
    Proxy {
        /// The variable that holds it.
        variable: &'static str,
        /// What is wrong (the URL itself is not repeated: it may hold a password).
        problem: String,
    },
    /// TLS could not be set up.
    #[error("cannot set up TLS for links' outbound requests: {0}")]
    Tls(String),
}

/// An egress proxy.
#[derive(Clone)]
pub(crate) struct Proxy {
    /// Its host name or address.
    pub host: String,
    /// Its port.
    pub port: u16,
    /// `Proxy-Authorization` value for its credentials, if the URL had any.
    pub authorization: Option<String>,
}

impl std::fmt::Debug for Proxy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the credentials.
        write!(f, "Proxy({}:{}{})", self.host, self.port, if self.authorization.is_some() { ", with auth" } else { "" })
    }
}

impl Proxy {
    fn parse(variable: &'static str, url: &str) -> Result<Self, NetworkError> {
        let problem = |problem: &str| NetworkError::Proxy { variable, problem: problem.to_string() };
        let rest = match url.split_once("://") {
            Some((scheme, rest)) if scheme.eq_ignore_ascii_case("http") => rest,
            Some((scheme, _)) => {
                return Err(problem(&format!("the scheme `{scheme}` is not supported; use an http:// proxy")));
            }
            // `host:port` alone is how some tools write it.
            None => url,
        };
        // The credentials end at the last `@` (a password may hold `/` or `?`).
        let (credentials, after) = match rest.rsplit_once('@') {
            Some((credentials, after)) => (Some(credentials), after),
            None => (None, rest),
        };
        let address = after.split(['/', '?', '#']).next().unwrap_or_default();
        let (host, port) = if let Some(bracketed) = address.strip_prefix('[') {
            let (host, after) = bracketed.split_once(']').ok_or_else(|| problem("unclosed `[` in the address"))?;
            (host, after.strip_prefix(':'))
        } else {
            match address.rsplit_once(':') {
                Some((host, port)) => (host, Some(port)),
                None => (address, None),
            }
        };
        if host.is_empty() {
            return Err(problem("it names no host"));
        }
        let port = match port {
            None | Some("") => 80,
            Some(port) => port.parse().map_err(|_| problem("its port is not a number from 1 to 65535"))?,
        };
        let authorization = credentials.map(|credentials| {
            let (user, password) = credentials.split_once(':').unwrap_or((credentials, ""));
            let pair = format!("{}:{}", conserver_core::percent_decode(user), conserver_core::percent_decode(password));
            format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(pair))
        });
        Ok(Self { host: host.to_ascii_lowercase(), port, authorization })
    }
}

/// One `NO_PROXY` entry.
#[derive(Debug, Clone, PartialEq)]
enum Bypass {
    /// `*`: nothing goes through the proxy.
    Everything,
    /// A host name: itself and its sub-domains (`example.com`, `.example.com`).
    Domain(String, Option<u16>),
    /// An address or a CIDR block.
    Network(IpAddr, u8, Option<u16>),
}

impl Bypass {
    fn parse(entry: &str) -> Option<Self> {
        let entry = entry.trim().to_ascii_lowercase();
        if entry.is_empty() {
            return None;
        }
        if entry == "*" {
            return Some(Self::Everything);
        }
        let (address, port) = split_port(&entry);
        let (ip_text, prefix) = match address.split_once('/') {
            Some((ip, prefix)) => (ip, prefix.parse::<u8>().ok()),
            None => (address, None),
        };
        if let Ok(ip) = ip_text.trim_start_matches('[').trim_end_matches(']').parse::<IpAddr>() {
            let full = if ip.is_ipv4() { 32 } else { 128 };
            return Some(Self::Network(ip, prefix.unwrap_or(full).min(full), port));
        }
        let domain = address.trim_start_matches("*.").trim_start_matches('.').to_string();
        (!domain.is_empty()).then_some(Self::Domain(domain, port))
    }

    fn matches(&self, host: &str, port: u16) -> bool {
        let port_ok = |wanted: &Option<u16>| wanted.is_none_or(|p| p == port);
        match self {
            Self::Everything => true,
            Self::Domain(domain, wanted) => {
                port_ok(wanted)
                    && (host == domain || host.strip_suffix(domain.as_str()).is_some_and(|head| head.ends_with('.')))
            }
            Self::Network(network, prefix, wanted) => {
                port_ok(wanted) && host.parse::<IpAddr>().is_ok_and(|ip| in_block(ip, *network, *prefix))
            }
        }
    }
}

/// `host:port` → (`host`, port); a bare IPv6 address has no port.
fn split_port(entry: &str) -> (&str, Option<u16>) {
    if let Some(rest) = entry.strip_prefix('[')
        && let Some((address, after)) = rest.split_once(']')
    {
        return (address, after.strip_prefix(':').and_then(|p| p.parse().ok()));
    }
    match entry.rsplit_once(':') {
        Some((host, port)) if !host.contains(':') => match port.parse() {
            Ok(port) => (host, Some(port)),
            Err(_) => (entry, None),
        },
        _ => (entry, None),
    }
}

fn in_block(ip: IpAddr, network: IpAddr, prefix: u8) -> bool {
    match (ip, network) {
        (IpAddr::V4(ip), IpAddr::V4(network)) => {
            let mask = u32::MAX.checked_shl(32 - u32::from(prefix)).unwrap_or(0);
            u32::from(ip) & mask == u32::from(network) & mask
        }
        (IpAddr::V6(ip), IpAddr::V6(network)) => {
            let mask = u128::MAX.checked_shl(128 - u32::from(prefix)).unwrap_or(0);
            u128::from(ip) & mask == u128::from(network) & mask
        }
        _ => false,
    }
}

/// Where a request is sent.
pub(crate) enum Route<'a> {
    /// Straight to the target.
    Direct,
    /// Through this proxy.
    Proxy(&'a Proxy),
}

/// Trust roots and proxy settings for links' outbound HTTP (and host-side media
/// fetches), fixed at start.
#[derive(Clone)]
pub struct OutboundNetwork {
    tls: Arc<rustls::ClientConfig>,
    extra_roots: usize,
    https_proxy: Option<Proxy>,
    http_proxy: Option<Proxy>,
    no_proxy: Arc<[Bypass]>,
    by_name: bool,
}

impl std::fmt::Debug for OutboundNetwork {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OutboundNetwork")
            .field("extra_roots", &self.extra_roots)
            .field("https_proxy", &self.https_proxy)
            .field("http_proxy", &self.http_proxy)
            .field("no_proxy", &self.no_proxy)
            .field("by_name", &self.by_name)
            .finish()
    }
}

impl Default for OutboundNetwork {
    /// The bundled web roots, no proxy.
    fn default() -> Self {
        Self::build(Vec::new(), None, None, Vec::new()).unwrap_or_else(|e| panic!("{e}"))
    }
}

impl OutboundNetwork {
    /// The settings the process environment gives (see the module header);
    /// `lookup` reads a variable.
    pub fn from_environment(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, NetworkError> {
        let set = |name: &str| lookup(name).filter(|v| !v.trim().is_empty());
        let extra = match (set("CONSERVER_LINK_CA_FILE"), set("SSL_CERT_FILE")) {
            (Some(path), _) => read_ca_file("CONSERVER_LINK_CA_FILE", Path::new(&path))?,
            (None, Some(path)) => read_ca_file("SSL_CERT_FILE", Path::new(&path))?,
            (None, None) => Vec::new(),
        };
        let proxy = |upper: &'static str, lower: &'static str| -> Result<Option<Proxy>, NetworkError> {
            match (set(upper), set(lower)) {
                (Some(url), _) => Proxy::parse(upper, url.trim()).map(Some),
                (None, Some(url)) => Proxy::parse(lower, url.trim()).map(Some),
                (None, None) => Ok(None),
            }
        };
        let https_proxy = proxy("HTTPS_PROXY", "https_proxy")?;
        let http_proxy = proxy("HTTP_PROXY", "http_proxy")?;
        let no_proxy =
            set("NO_PROXY").or_else(|| set("no_proxy")).map(|list| list.split(',').filter_map(Bypass::parse).collect());
        let by_name = set("CONSERVER_PROXY_BY_NAME").is_some_and(|v| matches!(v.trim(), "1" | "true" | "yes"));
        Self::build(extra, https_proxy, http_proxy, no_proxy.unwrap_or_default())
            .map(|network| Self { by_name, ..network })
    }

    fn build(
        extra: Vec<CertificateDer<'static>>,
        https_proxy: Option<Proxy>,
        http_proxy: Option<Proxy>,
        no_proxy: Vec<Bypass>,
    ) -> Result<Self, NetworkError> {
        let mut roots = rustls::RootCertStore { roots: webpki_roots::TLS_SERVER_ROOTS.into() };
        let (added, _ignored) = roots.add_parsable_certificates(extra);
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let tls = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| NetworkError::Tls(e.to_string()))?
            .with_root_certificates(roots)
            .with_no_client_auth();
        Ok(Self {
            tls: Arc::new(tls),
            extra_roots: added,
            https_proxy,
            http_proxy,
            no_proxy: no_proxy.into(),
            by_name: false,
        })
    }

    /// How many CA certificates were added to the bundled roots.
    pub fn extra_roots(&self) -> usize {
        self.extra_roots
    }

    /// Whether any request may go through a proxy.
    pub fn has_proxy(&self) -> bool {
        self.https_proxy.is_some() || self.http_proxy.is_some()
    }

    /// The TLS client settings for `https://` targets.
    pub(crate) fn tls(&self) -> tokio_rustls::TlsConnector {
        tokio_rustls::TlsConnector::from(self.tls.clone())
    }

    /// Whether targets are named to the proxy rather than given as their checked
    /// address (`CONSERVER_PROXY_BY_NAME=1`).
    pub(crate) fn proxy_by_name(&self) -> bool {
        self.by_name
    }

    /// How a request to `scheme://host:port` is sent: an internal address (which
    /// the link must be granted) always direct.
    pub(crate) fn route(&self, scheme: &str, host: &str, port: u16) -> Route<'_> {
        if host.parse::<IpAddr>().is_ok_and(conserver_config::is_internal) {
            return Route::Direct;
        }
        let proxy = if scheme == "https" { self.https_proxy.as_ref() } else { self.http_proxy.as_ref() };
        match proxy {
            Some(proxy) if !self.no_proxy.iter().any(|entry| entry.matches(host, port)) => Route::Proxy(proxy),
            _ => Route::Direct,
        }
    }
}

fn read_ca_file(variable: &'static str, path: &Path) -> Result<Vec<CertificateDer<'static>>, NetworkError> {
    let error = |problem: String| NetworkError::CaFile { variable, path: path.to_path_buf(), problem };
    let text = std::fs::read(path).map_err(|e| error(e.to_string()))?;
    let certificates: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&text)
        .collect::<Result<_, _>>()
        .map_err(|e| error(format!("it is not valid PEM: {e}")))?;
    if certificates.is_empty() {
        return Err(error("it holds no certificate".into()));
    }
    Ok(certificates)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn network(vars: &[(&str, &str)]) -> Result<OutboundNetwork, NetworkError> {
        let vars: std::collections::HashMap<&str, &str> = vars.iter().copied().collect();
        OutboundNetwork::from_environment(|name| vars.get(name).map(|v| (*v).to_string()))
    }

    fn via_proxy(network: &OutboundNetwork, scheme: &str, host: &str, port: u16) -> bool {
        matches!(network.route(scheme, host, port), Route::Proxy(_))
    }

    #[test]
    fn proxies_apply_per_scheme_and_no_proxy_sends_matching_targets_direct() {
        let net = network(&[
            ("HTTPS_PROXY", "http://proxy.corp:3128"),
            ("NO_PROXY", "internal.corp, .svc, 10.0.0.0/8, [::1], localhost:8080"),
        ])
        .unwrap();
        assert!(via_proxy(&net, "https", "api.openai.com", 443));
        assert!(!via_proxy(&net, "http", "api.openai.com", 80), "no HTTP_PROXY: http goes direct");
        for (host, port) in [("internal.corp", 443), ("a.b.internal.corp", 443), ("x.svc", 443), ("10.9.8.7", 443)] {
            assert!(!via_proxy(&net, "https", host, port), "{host}");
        }
        assert!(via_proxy(&net, "https", "notinternal.corp", 443), "a suffix match is on a dot boundary");
        assert!(!via_proxy(&net, "https", "::1", 443));
        assert!(!via_proxy(&net, "https", "localhost", 8080));
        assert!(via_proxy(&net, "https", "localhost", 8443), "the entry names a port");
        assert!(via_proxy(&net, "https", "11.0.0.1", 443));
        let everything = network(&[("https_proxy", "proxy:3128"), ("no_proxy", "*")]).unwrap();
        assert!(!via_proxy(&everything, "https", "api.openai.com", 443));
    }

    #[test]
    fn internal_addresses_go_direct_and_names_are_pinned_unless_asked() {
        let net = network(&[("HTTPS_PROXY", "http://proxy:3128")]).unwrap();
        assert!(!via_proxy(&net, "https", "127.0.0.1", 9090), "a granted loopback service is reached direct");
        assert!(!via_proxy(&net, "https", "10.1.2.3", 443));
        assert!(via_proxy(&net, "https", "93.184.216.34", 443));
        assert!(!net.proxy_by_name());
        let by_name = network(&[("HTTPS_PROXY", "http://proxy:3128"), ("CONSERVER_PROXY_BY_NAME", "1")]).unwrap();
        assert!(by_name.proxy_by_name());
    }

    #[test]
    fn a_password_with_reserved_characters_stays_a_password() {
        let net = network(&[("HTTPS_PROXY", "http://alice:12/34@proxy:3128")]).unwrap();
        let Route::Proxy(proxy) = net.route("https", "example.com", 443) else { panic!("expected the proxy") };
        assert_eq!((proxy.host.as_str(), proxy.port), ("proxy", 3128));
        assert!(proxy.authorization.is_some());
        assert!(!format!("{net:?}").contains("12/34"));
    }

    #[test]
    fn proxy_credentials_become_basic_authorization_and_are_never_printed() {
        let net = network(&[("HTTP_PROXY", "http://us%40er:p%3Ass@proxy:8080/")]).unwrap();
        let Route::Proxy(proxy) = net.route("http", "example.com", 80) else { panic!("expected the proxy") };
        assert_eq!((proxy.host.as_str(), proxy.port), ("proxy", 8080));
        let expected = base64::engine::general_purpose::STANDARD.encode("us@er:p:ss");
        assert_eq!(proxy.authorization.as_deref(), Some(format!("Basic {expected}").as_str()));
        assert!(!format!("{net:?}").contains("p%3Ass") && !format!("{net:?}").contains(&expected));
    }

    #[test]
    fn unusable_settings_are_start_errors_that_keep_secrets_out() {
        let err = network(&[("HTTPS_PROXY", "socks5://user:hunter2@proxy:1080")]).unwrap_err().to_string();
        assert!(err.contains("HTTPS_PROXY") && err.contains("socks5") && !err.contains("hunter2"), "{err}");
        assert!(network(&[("HTTPS_PROXY", "http://proxy:notaport")]).is_err());
        let err = network(&[("SSL_CERT_FILE", "/nonexistent/ca.pem")]).unwrap_err().to_string();
        assert!(err.contains("SSL_CERT_FILE") && err.contains("PEM"), "{err}");
        let dir = tempfile::tempdir().unwrap();
        let empty = dir.path().join("empty.pem");
        std::fs::write(&empty, "not a certificate\n").unwrap();
        let err = network(&[("CONSERVER_LINK_CA_FILE", empty.to_str().unwrap())]).unwrap_err().to_string();
        assert!(err.contains("no certificate"), "{err}");
    }

    #[test]
    fn the_default_trusts_the_web_roots_and_uses_no_proxy() {
        let net = OutboundNetwork::default();
        assert_eq!(net.extra_roots(), 0);
        assert!(!net.has_proxy());
        assert!(matches!(net.route("https", "api.openai.com", 443), Route::Direct));
    }
}
