//! Outbound HTTP for links (`wasi:http/outgoing-handler`), deny by default.
//!
//! A request goes out only when its `scheme://host:port` matches the link's
//! `allowed_outbound_hosts`; otherwise the guest gets `HTTP-request-denied` (the SDK
//! reports it as "denied"), not a connection error. The host resolves the name
//! itself and refuses loopback, private, link-local and other non-public addresses
//! unless an allow-list entry names that host exactly or covers the address with
//! a CIDR block, so a public name pointed at an internal address (DNS rebinding)
//! gets nowhere. Connect, first-byte and between-bytes times and the response body
//! size are capped.

use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use conserver_config::AllowedHost;
use http_body::{Body, Frame};
use http_body_util::BodyExt;
use tokio::net::TcpStream;
use wasmtime_wasi_http::io::TokioIo;
use wasmtime_wasi_http::{Error as HttpError, WasiBody, WasiHttpHooks};

use crate::grants::HttpLimits;

/// The per-call hooks enforcing one link's grants.
pub(crate) struct OutboundHttp {
    pub(crate) link: String,
    pub(crate) allowed: Arc<[AllowedHost]>,
    pub(crate) limits: HttpLimits,
}

type IoFuture = Box<dyn Future<Output = Result<(), HttpError>> + Send>;
type SendFuture = Box<dyn Future<Output = Result<(http::Response<WasiBody>, IoFuture), HttpError>> + Send>;

impl WasiHttpHooks for OutboundHttp {
    fn send_request(
        &mut self,
        request: http::Request<WasiBody>,
        options: Option<wasmtime_wasi_http::RequestOptions>,
        _fut: IoFuture,
    ) -> SendFuture {
        let link = self.link.clone();
        let allowed = self.allowed.clone();
        let limits = narrowed(self.limits, options);
        Box::new(async move {
            let target = Target::of(&request)?;
            if !allowed.iter().any(|entry| entry.allows(&target.scheme, &target.host, target.port)) {
                // The origin only: a query string may carry a credential.
                let origin = format!("{}://{}:{}", target.scheme, target.host, target.port);
                tracing::warn!(%link, %origin, "outbound request denied: host not in allowed_outbound_hosts");
                return Err(HttpError::HttpRequestDenied);
            }
            let addresses = resolve(&target, &allowed, &link).await?;
            send(request, &target, &addresses, limits).await
        })
    }
}

/// What the host fetched for a link (dialog media).
pub(crate) struct Fetched {
    /// The answer's body.
    pub body: Bytes,
    /// Its `Content-Type`, if any.
    pub content_type: Option<String>,
}

/// Why a host-side fetch failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum FetchError {
    /// Not allowed for this link (its allow-list, or an internal address).
    Denied(String),
    /// Over the size cap.
    TooLarge(String),
    /// Anything else: connection, timeout, status.
    Failed(String),
}

/// Redirects followed by a host-side fetch; each hop is checked like the first.
const MAX_REDIRECTS: usize = 5;

/// GET `url` on behalf of link `link`, under the same rules as the link's own
/// requests: allow-list, internal addresses, time caps, and `limits`' size cap.
/// Redirects are followed (each target checked again); the answer must be 2xx.
pub(crate) async fn fetch(
    url: &str,
    link: &str,
    allowed: &[AllowedHost],
    limits: HttpLimits,
) -> Result<Fetched, FetchError> {
    let mut url = url.to_string();
    for _ in 0..=MAX_REDIRECTS {
        let uri: http::Uri = url.parse().map_err(|_| FetchError::Failed(format!("`{url}` is not a valid URL")))?;
        let empty = http_body_util::Empty::<Bytes>::new().map_err(|never| match never {}).boxed_unsync();
        let request = http::Request::get(uri.clone())
            .header(http::header::USER_AGENT, "conserver")
            .body(empty)
            .map_err(|e| FetchError::Failed(format!("cannot build a request for `{url}`: {e}")))?;
        let target = Target::of(&request).map_err(|e| FetchError::Failed(format!("`{url}`: {e}")))?;
        let origin = format!("{}://{}:{}", target.scheme, target.host, target.port);
        if !allowed.iter().any(|entry| entry.allows(&target.scheme, &target.host, target.port)) {
            tracing::warn!(%link, %origin, "media fetch denied: host not in allowed_outbound_hosts");
            return Err(FetchError::Denied(format!("{origin} is not in allowed_outbound_hosts")));
        }
        let addresses = resolve(&target, allowed, link).await.map_err(|e| match e {
            HttpError::DestinationIpProhibited => FetchError::Denied(format!(
                "{origin} resolves to an internal address not named in allowed_outbound_hosts"
            )),
            other => FetchError::Failed(format!("{origin}: {other}")),
        })?;
        let (response, _io) = send(request, &target, &addresses, limits)
            .await
            .map_err(|e| FetchError::Failed(format!("{origin}: {e}")))?;
        let status = response.status();
        if status.is_redirection() {
            let location = response.headers().get(http::header::LOCATION).and_then(|v| v.to_str().ok());
            let Some(location) = location else {
                return Err(FetchError::Failed(format!("{origin} answered {status} without a Location")));
            };
            url = if location.starts_with("http://") || location.starts_with("https://") {
                location.to_string()
            } else {
                format!("{origin}{location}")
            };
            continue;
        }
        if !status.is_success() {
            return Err(FetchError::Failed(format!("{origin} answered HTTP {status}")));
        }
        let content_type =
            response.headers().get(http::header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).map(str::to_string);
        let body = response.into_body().collect().await.map_err(|e| match e {
            HttpError::HttpResponseBodySize(_) => {
                FetchError::TooLarge(format!("{origin} sent more than {} bytes", limits.max_response_bytes))
            }
            other => FetchError::Failed(format!("{origin}: reading the body: {other}")),
        })?;
        return Ok(Fetched { body: body.to_bytes(), content_type });
    }
    Err(FetchError::Failed(format!("more than {MAX_REDIRECTS} redirects from `{url}`")))
}

/// The host's caps, shortened where the guest asked for less time.
fn narrowed(limits: HttpLimits, options: Option<wasmtime_wasi_http::RequestOptions>) -> HttpLimits {
    let Some(options) = options else { return limits };
    let pick = |asked: Option<std::time::Duration>, cap: std::time::Duration| asked.map_or(cap, |t| t.min(cap));
    HttpLimits {
        connect_timeout: pick(options.connect_timeout, limits.connect_timeout),
        first_byte_timeout: pick(options.first_byte_timeout, limits.first_byte_timeout),
        between_bytes_timeout: pick(options.between_bytes_timeout, limits.between_bytes_timeout),
        max_response_bytes: limits.max_response_bytes,
    }
}

/// Where a request goes.
struct Target {
    scheme: String,
    host: String,
    port: u16,
}

impl Target {
    fn of(request: &http::Request<WasiBody>) -> Result<Self, HttpError> {
        let uri = request.uri();
        let scheme = uri.scheme_str().unwrap_or("https").to_ascii_lowercase();
        let host = uri.host().ok_or(HttpError::HttpRequestUriInvalid)?;
        let host = host.trim_start_matches('[').trim_end_matches(']').to_ascii_lowercase();
        let port = uri.port_u16().unwrap_or(if scheme == "https" { 443 } else { 80 });
        Ok(Self { scheme, host, port })
    }
}

/// Whether an address is one a public service would not have.
pub(crate) fn is_internal(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, ..] = v4.octets();
            v4.is_loopback()
                || v4.is_private()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_broadcast()
                || v4.is_multicast()
                || a == 0
                || (a == 100 && (64..128).contains(&b)) // carrier-grade NAT
                || (a == 198 && (b == 18 || b == 19)) // benchmarking
        }
        IpAddr::V6(v6) => {
            let first = v6.segments()[0];
            v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || (first & 0xfe00) == 0xfc00 // unique local
                || (first & 0xffc0) == 0xfe80 // link local
                || v6.to_ipv4_mapped().is_some_and(|v4| is_internal(IpAddr::V4(v4)))
        }
    }
}

/// The addresses `target` may be reached at: its resolved addresses minus the
/// internal ones its allow-list entry does not name (in resolver order).
async fn resolve(target: &Target, allowed: &[AllowedHost], link: &str) -> Result<Vec<SocketAddr>, HttpError> {
    let addresses: Vec<SocketAddr> = match target.host.parse::<IpAddr>() {
        Ok(ip) => vec![SocketAddr::new(ip, target.port)],
        Err(_) => tokio::net::lookup_host((target.host.as_str(), target.port))
            .await
            .map_err(|e| HttpError::DnsError { rcode: Some(e.to_string()), info_code: None })?
            .collect(),
    };
    let mut refused = None;
    let mut usable = Vec::new();
    for address in addresses {
        let ip = address.ip();
        if !is_internal(ip) || allowed.iter().any(|entry| entry.allows_internal(&target.host, ip)) {
            usable.push(address);
        } else {
            refused = Some(ip);
        }
    }
    if !usable.is_empty() {
        return Ok(usable);
    }
    match refused {
        Some(ip) => {
            tracing::warn!(%link, host = %target.host, %ip, "outbound request denied: the host resolves to an internal address not named in allowed_outbound_hosts");
            Err(HttpError::DestinationIpProhibited)
        }
        None => Err(HttpError::DestinationNotFound),
    }
}

trait Stream: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + Sync + Unpin + 'static {}
impl<T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + Sync + Unpin + 'static> Stream for T {}

fn tls_connector() -> Result<tokio_rustls::TlsConnector, HttpError> {
    static CONFIG: std::sync::OnceLock<Option<Arc<rustls::ClientConfig>>> = std::sync::OnceLock::new();
    let config = CONFIG.get_or_init(|| {
        let roots = rustls::RootCertStore { roots: webpki_roots::TLS_SERVER_ROOTS.into() };
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = rustls::ClientConfig::builder_with_provider(provider).with_safe_default_protocol_versions();
        builder.ok().map(|b| Arc::new(b.with_root_certificates(roots).with_no_client_auth()))
    });
    config
        .clone()
        .map(tokio_rustls::TlsConnector::from)
        .ok_or_else(|| HttpError::InternalError(Some("TLS is not available".into())))
}

/// A TCP connection to the first of `addresses` that answers, within the
/// connect timeout overall.
async fn connect(addresses: &[SocketAddr], limits: HttpLimits) -> Result<TcpStream, HttpError> {
    let attempt = async {
        let mut last = HttpError::DestinationNotFound;
        for address in addresses {
            match TcpStream::connect(address).await {
                Ok(stream) => return Ok(stream),
                Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => last = HttpError::ConnectionRefused,
                Err(e) => last = HttpError::Connect(e),
            }
        }
        Err(last)
    };
    tokio::time::timeout(limits.connect_timeout, attempt).await.map_err(|_| HttpError::ConnectionTimeout)?
}

async fn send(
    mut request: http::Request<WasiBody>,
    target: &Target,
    addresses: &[SocketAddr],
    limits: HttpLimits,
) -> Result<(http::Response<WasiBody>, IoFuture), HttpError> {
    let tcp = connect(addresses, limits).await?;
    let stream: Box<dyn Stream> = if target.scheme == "https" {
        let name = rustls::pki_types::ServerName::try_from(target.host.clone())
            .map_err(|_| HttpError::HttpRequestUriInvalid)?;
        let tls = tokio::time::timeout(limits.connect_timeout, tls_connector()?.connect(name, tcp))
            .await
            .map_err(|_| HttpError::ConnectionTimeout)?
            .map_err(|_| HttpError::TlsCertificateError)?;
        Box::new(tls)
    } else {
        Box::new(tcp)
    };
    let (mut sender, connection) =
        hyper::client::conn::http1::handshake(TokioIo::new(stream)).await.map_err(HttpError::from)?;
    // The connection is driven by its own task until the response body is read or dropped.
    let driver = tokio::spawn(connection);
    let path = request.uri().path_and_query().map_or("/", |p| p.as_str()).to_string();
    *request.uri_mut() = http::Uri::try_from(path).map_err(|_| HttpError::HttpRequestUriInvalid)?;
    let response = match tokio::time::timeout(limits.first_byte_timeout, sender.send_request(request)).await {
        Err(_) => {
            driver.abort();
            return Err(HttpError::ConnectionReadTimeout);
        }
        Ok(Err(e)) => {
            driver.abort();
            return Err(HttpError::from(e));
        }
        Ok(Ok(response)) => response,
    };
    let response = response.map(|incoming| {
        CappedBody {
            incoming,
            received: 0,
            max: limits.max_response_bytes,
            idle: Box::pin(tokio::time::sleep(limits.between_bytes_timeout)),
            between_bytes: limits.between_bytes_timeout,
        }
        .boxed_unsync()
    });
    let io: IoFuture = Box::new(async move {
        match driver.await {
            Ok(Ok(())) | Err(_) => Ok(()),
            Ok(Err(e)) => Err(HttpError::from(e)),
        }
    });
    Ok((response, io))
}

/// A response body that fails once it grows past `max` bytes or stalls longer
/// than `between_bytes`.
struct CappedBody {
    incoming: hyper::body::Incoming,
    received: u64,
    max: u64,
    idle: Pin<Box<tokio::time::Sleep>>,
    between_bytes: std::time::Duration,
}

impl Body for CappedBody {
    type Data = Bytes;
    type Error = HttpError;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, HttpError>>> {
        match Pin::new(&mut self.incoming).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref() {
                    self.received += data.len() as u64;
                    if self.received > self.max {
                        return Poll::Ready(Some(Err(HttpError::HttpResponseBodySize(Some(self.max)))));
                    }
                }
                let next = tokio::time::Instant::now() + self.between_bytes;
                self.idle.as_mut().reset(next);
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Ready(Some(Err(e))) => Poll::Ready(Some(Err(HttpError::from(e)))),
            Poll::Ready(None) => Poll::Ready(None),
            Poll::Pending => match self.idle.as_mut().poll(cx) {
                Poll::Ready(()) => Poll::Ready(Some(Err(HttpError::ConnectionReadTimeout))),
                Poll::Pending => Poll::Pending,
            },
        }
    }

    fn is_end_stream(&self) -> bool {
        self.incoming.is_end_stream()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_guest_may_shorten_the_timeouts_but_not_lengthen_them() {
        use std::time::Duration;
        let caps = HttpLimits::default();
        let asked = wasmtime_wasi_http::RequestOptions {
            connect_timeout: Some(Duration::from_secs(3600)),
            first_byte_timeout: Some(Duration::from_secs(2)),
            between_bytes_timeout: None,
        };
        let limits = narrowed(caps, Some(asked));
        assert_eq!(limits.connect_timeout, caps.connect_timeout);
        assert_eq!(limits.first_byte_timeout, Duration::from_secs(2));
        assert_eq!(limits.between_bytes_timeout, caps.between_bytes_timeout);
        assert_eq!(narrowed(caps, None), caps);
    }

    #[test]
    fn internal_addresses_are_recognised() {
        for internal in [
            "127.0.0.1",
            "10.1.2.3",
            "192.168.0.1",
            "172.16.5.4",
            "169.254.169.254",
            "0.0.0.0",
            "::1",
            "fd00::1",
            "fe80::1",
            "::ffff:10.0.0.1",
            "100.64.0.1",
        ] {
            assert!(is_internal(internal.parse().unwrap()), "{internal}");
        }
        for public in ["8.8.8.8", "1.1.1.1", "2606:4700::1111", "172.32.0.1"] {
            assert!(!is_internal(public.parse().unwrap()), "{public}");
        }
    }
}
