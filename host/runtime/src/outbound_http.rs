//! Outbound HTTP for links (`wasi:http/outgoing-handler`), deny by default.
//!
//! A request goes out only when its `scheme://host:port` matches the link's
//! `allowed_outbound_hosts`; otherwise the guest gets `HTTP-request-denied` (the SDK
//! reports it as "denied"), not a connection error. The host resolves the name
//! once, checks every address it would connect to and connects to those checked
//! addresses only (no second lookup): loopback, private, link-local and other
//! internal addresses ([`conserver_config::is_internal`]) are refused unless an
//! allow-list entry names that address or a CIDR block containing it. A host name
//! entry grants the name for public addresses only, so a name pointed at an
//! internal address (metadata services, DNS rebinding) gets nowhere. Host-side
//! fetches (dialog media) follow the same rules on every redirect hop. Connect,
//! first-byte and between-bytes times and the response body size are capped.
//! Trust roots and the egress proxy come from [`OutboundNetwork`]; through a
//! proxy the allow-list is still checked on the target.

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

use crate::call_log::{self, CallLog, host_warn};
use crate::grants::HttpLimits;
use crate::outbound_network::{OutboundNetwork, Proxy, Route};
use crate::resources::OUTGOING_CHUNK_BYTES;

/// The per-call hooks enforcing one link's grants. Warnings about the call's
/// requests are charged to its log budget, also from the task a request runs in.
pub(crate) struct OutboundHttp {
    pub(crate) link: String,
    pub(crate) allowed: Arc<[AllowedHost]>,
    pub(crate) limits: HttpLimits,
    pub(crate) network: OutboundNetwork,
    pub(crate) log: CallLog,
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
        let log = self.log.clone();
        let network = self.network.clone();
        // The request runs in its own task: the scope carries the call's log budget there.
        Box::new(call_log::scope(log.clone(), async move {
            let target = Target::of(&request)?;
            if !allowed.iter().any(|entry| entry.allows(&target.scheme, &target.host, target.port)) {
                // The origin only: a query string may carry a credential.
                let origin = format!("{}://{}:{}", target.scheme, target.host, target.port);
                host_warn!(log, link = link, origin = origin; "outbound request denied: host not in allowed_outbound_hosts");
                return Err(HttpError::HttpRequestDenied);
            }
            let connection = open(&target, &allowed, &link, &network, limits).await?;
            send(request, connection, limits).await
        }))
    }

    /// Smaller writes than `wasi:http`'s 1 MiB, so each outgoing body buffers
    /// little (what the host-resource budget charges it).
    fn p2_outgoing_body_chunk_size(&mut self) -> usize {
        OUTGOING_CHUNK_BYTES
    }

    fn p2_error_from_hyper(&mut self, err: &hyper::Error) -> wasmtime_wasi_http::p2::bindings::http::types::ErrorCode {
        host_warn!(self.log, link = self.link, error = err; "outbound request failed: HTTP protocol error");
        wasmtime_wasi_http::p2::bindings::http::types::ErrorCode::HttpProtocolError
    }

    fn p2_error_from_connect(
        &mut self,
        err: &std::io::Error,
    ) -> wasmtime_wasi_http::p2::bindings::http::types::ErrorCode {
        host_warn!(self.log, link = self.link, error = err; "outbound request failed: cannot connect");
        wasmtime_wasi_http::p2::bindings::http::types::ErrorCode::ConnectionRefused
    }

    fn p2_error_from_tls(&mut self, err: &std::io::Error) -> wasmtime_wasi_http::p2::bindings::http::types::ErrorCode {
        host_warn!(self.log, link = self.link, error = err; "outbound request failed: TLS error");
        wasmtime_wasi_http::p2::bindings::http::types::ErrorCode::TlsProtocolError
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
    network: &OutboundNetwork,
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
        if target.scheme != "http" && target.scheme != "https" {
            return Err(FetchError::Denied(format!("`{url}` is not an http or https URL")));
        }
        let origin = format!("{}://{}:{}", target.scheme, target.host, target.port);
        if !allowed.iter().any(|entry| entry.allows(&target.scheme, &target.host, target.port)) {
            host_warn!(call_log::current(), link = link, origin = origin; "media fetch denied: host not in allowed_outbound_hosts");
            return Err(FetchError::Denied(format!("{origin} is not in allowed_outbound_hosts")));
        }
        let connection = open(&target, allowed, link, network, limits).await.map_err(|e| match e {
            HttpError::DestinationIpProhibited => FetchError::Denied(format!(
                "{origin} resolves to an internal address that allowed_outbound_hosts does not grant \
                 (a host name grants public addresses only; list the address or its CIDR block to reach it)"
            )),
            other => FetchError::Failed(format!("{origin}: {other}")),
        })?;
        let (response, _io) =
            send(request, connection, limits).await.map_err(|e| FetchError::Failed(format!("{origin}: {e}")))?;
        let status = response.status();
        if status.is_redirection() {
            let location = response.headers().get(http::header::LOCATION).and_then(|v| v.to_str().ok());
            let Some(location) = location else {
                return Err(FetchError::Failed(format!("{origin} answered {status} without a Location")));
            };
            url = redirect_target(&uri, location);
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

/// The absolute URL a `Location` header names, resolved against the URL that
/// answered: absolute, scheme-relative (`//host/path`), absolute-path or
/// relative-path. The next hop is checked like the first (scheme, allow-list,
/// every resolved address).
fn redirect_target(base: &http::Uri, location: &str) -> String {
    let scheme = base.scheme_str().unwrap_or("https");
    let authority = base.authority().map_or("", http::uri::Authority::as_str);
    let has_scheme = location.split_once(':').is_some_and(|(head, _)| {
        !head.is_empty() && head.chars().all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c))
    });
    if has_scheme {
        location.to_string()
    } else if location.starts_with("//") {
        format!("{scheme}:{location}")
    } else if location.starts_with('/') {
        format!("{scheme}://{authority}{location}")
    } else {
        let path = base.path();
        let directory = path.rsplit_once('/').map_or("", |(dir, _)| dir);
        format!("{scheme}://{authority}{directory}/{location}")
    }
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

/// The addresses `target` may be reached at: its resolved addresses minus the
/// internal ones no allow-list entry grants by address or CIDR block (in resolver
/// order); with `all`, none when any is refused. The caller connects to exactly
/// these, never to the name again.
async fn resolve(
    target: &Target,
    allowed: &[AllowedHost],
    link: &str,
    all: bool,
) -> Result<Vec<SocketAddr>, HttpError> {
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
        if AllowedHost::permits_address(allowed, &target.scheme, target.port, ip) {
            usable.push(address);
        } else {
            refused = Some(ip);
        }
    }
    let complete = !all || refused.is_none();
    if complete && !usable.is_empty() {
        return Ok(usable);
    }
    match refused {
        Some(ip) => {
            host_warn!(call_log::current(), link = link, host = target.host, ip = ip; "outbound request denied: the host resolves to an internal address not named in allowed_outbound_hosts");
            Err(HttpError::DestinationIpProhibited)
        }
        None => Err(HttpError::DestinationNotFound),
    }
}

trait Stream: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + Sync + Unpin + 'static {}
impl<T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + Sync + Unpin + 'static> Stream for T {}

/// A connection ready to carry one request: to the target (TLS with it for
/// `https://`), directly or through a `CONNECT` tunnel, or to an HTTP proxy that
/// takes the request in absolute form.
struct Connection {
    stream: Box<dyn Stream>,
    /// To an HTTP proxy: send the request line with the full URL, its host
    /// replaced by this checked address when there is one (`Host` keeps the name).
    pinned: Option<Option<IpAddr>>,
    /// `Proxy-Authorization` to add (to an HTTP proxy).
    proxy_authorization: Option<String>,
}

/// Open the connection a request to `target` goes over, under the link's rules:
/// direct to checked addresses only, or through the proxy the network routes it
/// to (see [`OutboundNetwork`]).
async fn open(
    target: &Target,
    allowed: &[AllowedHost],
    link: &str,
    network: &OutboundNetwork,
    limits: HttpLimits,
) -> Result<Connection, HttpError> {
    let direct = |stream: Box<dyn Stream>| Connection { stream, pinned: None, proxy_authorization: None };
    let checked = |all: bool| async move {
        tokio::time::timeout(DNS_TIMEOUT, resolve(target, allowed, link, all))
            .await
            .map_err(|_| HttpError::DnsTimeout)?
    };
    match network.route(&target.scheme, &target.host, target.port) {
        Route::Direct => {
            let addresses = checked(false).await?;
            let tcp = connect(&addresses, limits).await?;
            Ok(direct(with_tls(tcp, target, network, limits).await?))
        }
        Route::Proxy(proxy) => {
            // The target must resolve here, and to permitted addresses only (the
            // proxy could pick any of them). The proxy is then asked for that
            // checked address, not the name, so its own resolution cannot lead
            // elsewhere — unless the operator has it named (`by_name`).
            let addresses = checked(true).await?;
            if target.scheme != "https" {
                let pinned = (!network.proxy_by_name()).then(|| addresses[0].ip());
                let tcp = connect_to_proxy(proxy, limits).await?;
                return Ok(Connection {
                    stream: Box::new(tcp),
                    pinned: Some(pinned),
                    proxy_authorization: proxy.authorization.clone(),
                });
            }
            // One tunnel per checked address until the proxy opens one (a
            // dual-stack name whose first address the proxy cannot reach).
            let candidates: Vec<Option<IpAddr>> = if network.proxy_by_name() {
                vec![None]
            } else {
                addresses.iter().map(|address| Some(address.ip())).collect()
            };
            let mut last = HttpError::ConnectionRefused;
            for pinned in candidates {
                let tcp = connect_to_proxy(proxy, limits).await?;
                match tokio::time::timeout(limits.connect_timeout, tunnel(tcp, target, proxy, pinned)).await {
                    Ok(Ok(tunnel)) => return Ok(direct(with_tls(tunnel, target, network, limits).await?)),
                    Ok(Err(error)) => last = error,
                    Err(_) => last = HttpError::ConnectionTimeout,
                }
            }
            Err(last)
        }
    }
}

/// Longest a target's name lookup may take (the host's bound: a link's own
/// shorter timeouts do not shorten it).
const DNS_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

/// `stream` as is for `http://`, wrapped in TLS with the target for `https://`.
async fn with_tls<S: Stream>(
    stream: S,
    target: &Target,
    network: &OutboundNetwork,
    limits: HttpLimits,
) -> Result<Box<dyn Stream>, HttpError> {
    if target.scheme != "https" {
        return Ok(Box::new(stream));
    }
    let name =
        rustls::pki_types::ServerName::try_from(target.host.clone()).map_err(|_| HttpError::HttpRequestUriInvalid)?;
    match tokio::time::timeout(limits.connect_timeout, network.tls().connect(name, stream)).await {
        Err(_) => Err(HttpError::ConnectionTimeout),
        Ok(Err(error)) => {
            host_warn!(call_log::current(), host = target.host, error = error; "outbound TLS handshake failed (a private CA must be in CONSERVER_LINK_CA_FILE or SSL_CERT_FILE)");
            Err(HttpError::TlsCertificateError)
        }
        Ok(Ok(tls)) => Ok(Box::new(tls)),
    }
}

/// A TCP connection to the proxy (an operator's choice: no internal-address rule).
async fn connect_to_proxy(proxy: &Proxy, limits: HttpLimits) -> Result<TcpStream, HttpError> {
    let attempt = async {
        let addresses: Vec<SocketAddr> = tokio::net::lookup_host((proxy.host.as_str(), proxy.port))
            .await
            .map_err(|e| HttpError::DnsError { rcode: Some(e.to_string()), info_code: None })?
            .collect();
        connect_any(&addresses).await
    };
    let result =
        tokio::time::timeout(limits.connect_timeout, attempt).await.unwrap_or(Err(HttpError::ConnectionTimeout));
    if let Err(error) = &result {
        host_warn!(call_log::current(), proxy = format!("{}:{}", proxy.host, proxy.port), error = error; "cannot reach the outbound proxy");
    }
    result
}

/// Longest answer head a proxy may send to `CONNECT`.
const MAX_PROXY_HEAD_BYTES: usize = 8 * 1024;

/// Ask the proxy for a tunnel to `target` (at the checked address `pinned`, or
/// by name); the stream then carries the target's bytes.
async fn tunnel(
    mut tcp: TcpStream,
    target: &Target,
    proxy: &Proxy,
    pinned: Option<IpAddr>,
) -> Result<TcpStream, HttpError> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let authority = match pinned {
        Some(ip) => SocketAddr::new(ip, target.port).to_string(),
        None if target.host.contains(':') => format!("[{}]:{}", target.host, target.port),
        None => format!("{}:{}", target.host, target.port),
    };
    let mut head = format!("CONNECT {authority} HTTP/1.1\r\nHost: {authority}\r\n");
    if let Some(authorization) = &proxy.authorization {
        head.push_str(&format!("Proxy-Authorization: {authorization}\r\n"));
    }
    head.push_str("\r\n");
    tcp.write_all(head.as_bytes()).await.map_err(HttpError::Connect)?;
    // Byte by byte: nothing after the head may be consumed (it is the target's).
    let mut answer = Vec::with_capacity(256);
    while !answer.ends_with(b"\r\n\r\n") {
        if answer.len() >= MAX_PROXY_HEAD_BYTES {
            return Err(HttpError::HttpProtocolError);
        }
        let mut byte = [0u8; 1];
        if tcp.read(&mut byte).await.map_err(HttpError::Connect)? == 0 {
            return Err(HttpError::HttpProtocolError);
        }
        answer.push(byte[0]);
    }
    let status_line = String::from_utf8_lossy(answer.split(|b| *b == b'\r').next().unwrap_or_default()).into_owned();
    let status = status_line.split_whitespace().nth(1).unwrap_or_default();
    if status.starts_with('2') {
        return Ok(tcp);
    }
    let hint =
        if status == "407" { "the proxy wants credentials: put them in the proxy URL" } else { "see the proxy's log" };
    host_warn!(call_log::current(), target = authority, answer = status_line, hint = hint; "the outbound proxy refused the tunnel");
    Err(HttpError::ConnectionRefused)
}

/// A TCP connection to the first of `addresses` that answers, within the
/// connect timeout overall.
async fn connect(addresses: &[SocketAddr], limits: HttpLimits) -> Result<TcpStream, HttpError> {
    tokio::time::timeout(limits.connect_timeout, connect_any(addresses))
        .await
        .map_err(|_| HttpError::ConnectionTimeout)?
}

async fn connect_any(addresses: &[SocketAddr]) -> Result<TcpStream, HttpError> {
    let mut last = HttpError::DestinationNotFound;
    for address in addresses {
        match TcpStream::connect(address).await {
            Ok(stream) => return Ok(stream),
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => last = HttpError::ConnectionRefused,
            Err(e) => last = HttpError::Connect(e),
        }
    }
    Err(last)
}

async fn send(
    mut request: http::Request<WasiBody>,
    connection: Connection,
    limits: HttpLimits,
) -> Result<(http::Response<WasiBody>, IoFuture), HttpError> {
    let Connection { stream, pinned, proxy_authorization } = connection;
    let (mut sender, connection) =
        hyper::client::conn::http1::handshake(TokioIo::new(stream)).await.map_err(HttpError::from)?;
    // The connection is driven by its own task until the response body is read or dropped.
    let driver = tokio::spawn(connection);
    if let Some(pinned) = pinned {
        if let Some(value) = proxy_authorization.and_then(|v| http::HeaderValue::from_str(&v).ok()) {
            request.headers_mut().insert(http::header::PROXY_AUTHORIZATION, value);
        }
        pin_absolute_form(&mut request, pinned)?;
    } else {
        let path = request.uri().path_and_query().map_or("/", |p| p.as_str()).to_string();
        *request.uri_mut() = http::Uri::try_from(path).map_err(|_| HttpError::HttpRequestUriInvalid)?;
    }
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
    // `wasi:http` would only log a connection's error (unbudgeted); log it here,
    // charged to the call that opened it.
    let log = call_log::current();
    let io: IoFuture = Box::new(async move {
        if let Ok(Err(error)) = driver.await {
            host_warn!(log, error = error; "outbound connection ended with an error");
        }
        Ok(())
    });
    Ok((response, io))
}

/// An absolute-form request for an HTTP proxy: `Host` set to the URL's
/// authority, and the URL's host replaced by the checked address `pinned`.
fn pin_absolute_form<B>(request: &mut http::Request<B>, pinned: Option<IpAddr>) -> Result<(), HttpError> {
    let uri = request.uri().clone();
    let authority = uri.authority().ok_or(HttpError::HttpRequestUriInvalid)?.clone();
    if !request.headers().contains_key(http::header::HOST) {
        let host = http::HeaderValue::from_str(authority.as_str()).map_err(|_| HttpError::HttpRequestUriInvalid)?;
        request.headers_mut().insert(http::header::HOST, host);
    }
    let Some(ip) = pinned else { return Ok(()) };
    let port = authority.port_u16().unwrap_or(80);
    let mut parts = uri.into_parts();
    parts.authority =
        Some(SocketAddr::new(ip, port).to_string().parse().map_err(|_| HttpError::HttpRequestUriInvalid)?);
    *request.uri_mut() = http::Uri::from_parts(parts).map_err(|_| HttpError::HttpRequestUriInvalid)?;
    Ok(())
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

    /// A stand-in for a metadata service on 127.0.0.1: `/meta` answers the
    /// secret, `/hop?<location>` redirects to `<location>`, anything else 404.
    async fn metadata_service() -> u16 {
        metadata_service_on("127.0.0.1").await
    }

    /// The same service on another loopback address.
    async fn metadata_service_on(address: &str) -> u16 {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind((address, 0)).await.unwrap();
        let port = listener.local_addr().unwrap().port();
        tokio::spawn(async move {
            while let Ok((mut socket, _)) = listener.accept().await {
                tokio::spawn(async move {
                    let mut head = vec![0u8; 4096];
                    let n = socket.read(&mut head).await.unwrap_or(0);
                    let head = String::from_utf8_lossy(&head[..n]).into_owned();
                    let path = head.split_whitespace().nth(1).unwrap_or("/").to_string();
                    let answer = if path == "/meta" {
                        "HTTP/1.1 200 OK\r\ncontent-length: 15\r\nconnection: close\r\n\r\nmetadata-secret".to_string()
                    } else if let Some(location) = path.strip_prefix("/hop?") {
                        format!(
                            "HTTP/1.1 302 Found\r\nlocation: {location}\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
                        )
                    } else {
                        "HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\nconnection: close\r\n\r\n".to_string()
                    };
                    let _ = socket.write_all(answer.as_bytes()).await;
                });
            }
        });
        port
    }

    fn entries(list: &[String]) -> Vec<AllowedHost> {
        list.iter().map(|entry| AllowedHost::parse(entry).unwrap()).collect()
    }

    async fn get(url: &str, allowed: &[String]) -> Result<Fetched, FetchError> {
        fetch(url, "test", &entries(allowed), &OutboundNetwork::default(), HttpLimits::default()).await
    }

    #[tokio::test]
    async fn a_host_name_entry_does_not_open_the_internal_address_it_resolves_to() {
        let port = metadata_service().await;
        // `localhost` resolves to loopback here, as a hostile name would to 169.254.169.254.
        let by_name = [format!("http://localhost:{port}")];
        let denied = get(&format!("http://localhost:{port}/meta"), &by_name).await.err();
        assert!(matches!(&denied, Some(FetchError::Denied(m)) if m.contains("internal address")), "{denied:?}");
        // Granting the address itself is the explicit opt-in.
        let with_address = [format!("http://localhost:{port}"), format!("http://127.0.0.1:{port}")];
        let fetched = get(&format!("http://localhost:{port}/meta"), &with_address).await.unwrap();
        assert_eq!(fetched.body, "metadata-secret");
        let by_cidr = [format!("http://localhost:{port}"), format!("http://127.0.0.0/8:{port}")];
        assert!(get(&format!("http://localhost:{port}/meta"), &by_cidr).await.is_ok());
        // A grant for another port is no grant.
        let other_port = [format!("http://localhost:{port}"), format!("http://127.0.0.1:{}", port ^ 1)];
        assert!(matches!(get(&format!("http://localhost:{port}/meta"), &other_port).await, Err(FetchError::Denied(_))));
    }

    #[tokio::test]
    async fn ipv6_spellings_of_an_internal_address_are_refused_under_a_wildcard() {
        let port = metadata_service().await;
        let wildcard = [format!("http://*:{port}")];
        for host in ["[::127.0.0.1]", "[::ffff:127.0.0.1]", "[::ffff:7f00:1]", "[64:ff9b::7f00:1]", "[2002:7f00:1::1]"]
        {
            let result = get(&format!("http://{host}:{port}/meta"), &wildcard).await.err();
            assert!(matches!(result, Some(FetchError::Denied(_))), "{host}: {result:?}");
        }
    }

    #[tokio::test]
    async fn every_redirect_hop_is_checked_by_address() {
        // The secret on 127.0.0.1, granted only by the name `localhost`; a
        // redirector on 127.0.0.2, granted by its address.
        let port = metadata_service().await;
        let hop = metadata_service_on("127.0.0.2").await;
        let allowed = [format!("http://127.0.0.2:{hop}"), format!("http://localhost:{port}")];
        for location in [format!("http://localhost:{port}/meta"), format!("//localhost:{port}/meta")] {
            let url = format!("http://127.0.0.2:{hop}/hop?{location}");
            let result = get(&url, &allowed).await.err();
            assert!(
                matches!(&result, Some(FetchError::Denied(m)) if m.contains("localhost")),
                "{location}: {result:?}"
            );
        }
        // A relative redirect to the granted address itself is followed.
        let fetched = get(&format!("http://127.0.0.2:{hop}/hop?/meta"), &allowed).await.unwrap();
        assert_eq!(fetched.body, "metadata-secret");
    }

    #[test]
    fn redirect_locations_resolve_against_the_url_that_answered() {
        let base: http::Uri = "http://[::1]:8080/media/a.mp3?x=1".parse().unwrap();
        for (location, expected) in [
            ("https://cdn.example/b.mp3", "https://cdn.example/b.mp3"),
            ("//cdn.example/b.mp3", "http://cdn.example/b.mp3"),
            ("/other/b.mp3", "http://[::1]:8080/other/b.mp3"),
            ("b.mp3", "http://[::1]:8080/media/b.mp3"),
            ("file:///etc/passwd", "file:///etc/passwd"),
        ] {
            assert_eq!(redirect_target(&base, location), expected, "{location}");
        }
    }

    #[tokio::test]
    async fn only_http_and_https_urls_are_fetched() {
        let any = ["*://*:*".to_string()];
        for url in ["file:///etc/passwd", "gopher://127.0.0.1:70/x"] {
            let result = get(url, &any).await.err();
            assert!(matches!(&result, Some(FetchError::Denied(_) | FetchError::Failed(_))), "{url}: {result:?}");
        }
    }
}
