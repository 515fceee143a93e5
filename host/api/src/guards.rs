//! What protects a server that has no API token, and the routes whose access
//! does not follow the main-token rule.
//!
//! Without a token the server listens on loopback only, and what is left to stop
//! is a web page in the operator's browser: it can send requests to
//! `127.0.0.1:8000` (cross-site), or rebind a name it controls to 127.0.0.1 and
//! send them "same-origin" (DNS rebinding). So, when no token is configured,
//! [`browser_guard`] refuses:
//! - requests whose `Host` is a name other than `localhost` (or `*.localhost`)
//!   and the names in `CONSERVER_ALLOWED_HOSTS`; IP addresses pass. Rebinding
//!   needs a name the attacker controls, so this defeats DNS rebinding, also on
//!   a server opened beyond loopback with `CONSERVER_ALLOW_OPEN=1`;
//! - requests carrying an `Origin` that is neither the server's own nor allowed
//!   by `CONSERVER_CORS_ORIGINS`, and requests a browser marks with a
//!   `Sec-Fetch-Site` other than `same-origin` or `none` (`cross-site`, and
//!   `same-site`: another port of the same machine), which defeats cross-site
//!   requests (forms, `fetch` in `no-cors` mode, images) whatever their method
//!   or body.
//!
//! Clients that are not browsers send none of these headers and are unaffected.
//! With a token configured, none of this applies: a page cannot add the token
//! header without a CORS preflight, which only allowed origins pass.
//!
//! [`ControlAccess`] guards the endpoints that change what the server runs or
//! rewrite its state wholesale (`POST /config`, `POST /dlq/reprocess`,
//! `GET /index_vcons`): with no token configured they answer 403 unless
//! `CONSERVER_ALLOW_OPEN=1`. [`MetricsAccess`] guards `/metrics` and
//! `/stats/queue`: with a token configured they need it, unless
//! `CONSERVER_PUBLIC_METRICS=1`.

use std::net::IpAddr;

use axum::extract::{FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, Uri, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::ApiState;
use crate::auth::{matches_any, presented};
use crate::error::ApiError;

/// Whether `authority` (a `Host` header: name or address, optional port) names
/// this machine's loopback: `localhost`, `*.localhost`, `127.0.0.0/8`, `[::1]`.
pub fn is_loopback_host(authority: &str) -> bool {
    let authority = authority.trim();
    let host = if let Some(rest) = authority.strip_prefix('[') {
        match rest.split_once(']') {
            Some((inside, _)) => inside,
            None => return false,
        }
    } else {
        authority.rsplit_once(':').map_or(authority, |(host, _)| host)
    };
    let name = host.trim_end_matches('.').to_ascii_lowercase();
    if name == "localhost" || name.ends_with(".localhost") {
        return true;
    }
    match name.parse::<IpAddr>() {
        Ok(IpAddr::V4(v4)) => v4.is_loopback(),
        Ok(IpAddr::V6(v6)) => v6.is_loopback() || v6.to_ipv4_mapped().is_some_and(|v4| v4.is_loopback()),
        Err(_) => false,
    }
}

/// Whether a token-less server answers requests addressed to `authority`: a
/// loopback name, any IP address, or a name in `allowed` (lowercase).
pub fn is_trusted_host(authority: &str, allowed: &[String]) -> bool {
    if is_loopback_host(authority) {
        return true;
    }
    let authority = authority.trim();
    if let Some(rest) = authority.strip_prefix('[') {
        return rest.split_once(']').is_some_and(|(inside, _)| inside.parse::<std::net::Ipv6Addr>().is_ok());
    }
    let host = authority.rsplit_once(':').map_or(authority, |(host, _)| host);
    let name = host.trim_end_matches('.').to_ascii_lowercase();
    name.parse::<std::net::Ipv4Addr>().is_ok() || allowed.iter().any(|a| a.trim_end_matches('.') == name)
}

/// The authority the request was sent to: `Host`, else the URI's.
fn requested_host<'a>(headers: &'a HeaderMap, uri: &'a Uri) -> Option<&'a str> {
    headers.get(header::HOST).and_then(|v| v.to_str().ok()).or_else(|| uri.authority().map(|a| a.as_str()))
}

/// Whether `origin` (`scheme://host[:port]`) is the server's own, as addressed.
fn same_origin(origin: &str, host: Option<&str>) -> bool {
    let Some(host) = host else { return false };
    origin.split_once("://").is_some_and(|(_, authority)| authority.eq_ignore_ascii_case(host))
}

/// Middleware: the browser protections of a server with no token (module docs).
pub async fn browser_guard(State(state): State<ApiState>, request: Request, next: Next) -> Response {
    if !state.settings.tokens.is_empty() {
        return next.run(request).await;
    }
    let guards = &state.settings.guards;
    let headers = request.headers();
    let host = requested_host(headers, request.uri());
    if let Some(host) = host
        && !is_trusted_host(host, &guards.allowed_hosts)
    {
        return ApiError::Forbidden(format!(
            "this server has no API token, so it answers only requests addressed to localhost or an IP address, \
             not to `{}`; list the name in CONSERVER_ALLOWED_HOSTS, or set CONSERVER_API_TOKEN",
            host.chars().take(100).collect::<String>()
        ))
        .into_response();
    }
    let origin = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok());
    let allowed_origin = origin.is_some_and(|o| same_origin(o, host) || guards.cors.allows(o));
    // `same-site` is another origin too (another port of this machine, a sibling
    // subdomain); only `same-origin` and `none` (typed by the user) are the server's own.
    let cross_site = headers.get("sec-fetch-site").is_some_and(|v| {
        let v = v.as_bytes();
        !v.eq_ignore_ascii_case(b"same-origin") && !v.eq_ignore_ascii_case(b"none")
    });
    if (origin.is_some() || cross_site) && !allowed_origin {
        return ApiError::Forbidden(
            "cross-site request refused: this server has no API token, so web pages on other origins may not call it; \
             list the page's origin in CONSERVER_CORS_ORIGINS, or set CONSERVER_API_TOKEN"
                .into(),
        )
        .into_response();
    }
    next.run(request).await
}

/// Extractor: the endpoint changes what the server runs; with no token
/// configured it answers 403 unless `CONSERVER_ALLOW_OPEN=1`. (With a token, the
/// route's token check has already passed.)
pub struct ControlAccess;

impl FromRequestParts<ApiState> for ControlAccess {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &ApiState) -> Result<Self, Self::Rejection> {
        if state.settings.tokens.is_empty() && !state.settings.guards.allow_open {
            return Err(ApiError::Forbidden(format!(
                "{} {} changes what this server runs and needs an API token: set CONSERVER_API_TOKEN \
                 (or CONSERVER_API_TOKEN_FILE) and send it in the {} header, or set CONSERVER_ALLOW_OPEN=1 \
                 to allow it without one",
                parts.method,
                parts.uri.path(),
                state.settings.header
            )));
        }
        Ok(Self)
    }
}

/// Extractor: `/metrics` and `/stats/queue` need the token when one is
/// configured, unless `CONSERVER_PUBLIC_METRICS=1`.
pub struct MetricsAccess;

impl FromRequestParts<ApiState> for MetricsAccess {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &ApiState) -> Result<Self, Self::Rejection> {
        let settings = &state.settings;
        if settings.tokens.is_empty() || settings.guards.public_metrics {
            return Ok(Self);
        }
        match presented(&parts.headers, state) {
            Some(key) if matches_any(settings.tokens.iter().map(String::as_str), key) => Ok(Self),
            _ => Err(ApiError::invalid_api_key()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_hosts() {
        for host in [
            "localhost",
            "LOCALHOST:8000",
            "app.localhost",
            "localhost.",
            "127.0.0.1",
            "127.9.9.9:1",
            "[::1]:8000",
            "[::ffff:127.0.0.1]",
        ] {
            assert!(is_loopback_host(host), "{host}");
        }
        for host in [
            "evil.example",
            "evil.example:8000",
            "localhost.evil.example",
            "10.0.0.1",
            "0.0.0.0",
            "[::]:80",
            "[::2]",
            "[::1",
            "127.0.0.1.nip.io",
        ] {
            assert!(!is_loopback_host(host), "{host}");
        }
    }

    #[test]
    fn trusted_hosts_are_loopback_names_addresses_and_listed_names() {
        let listed = ["conserver.lan".to_string()];
        for host in [
            "localhost:8000",
            "10.1.2.3:8000",
            "[2001:db8::1]:80",
            "192.168.0.5",
            "conserver.lan:8000",
            "CONSERVER.LAN.",
        ] {
            assert!(is_trusted_host(host, &listed), "{host}");
        }
        for host in ["rebind.evil.example", "conserver.lan.evil.example", "10.1.2.3.nip.io:8000", "[evil]", ""] {
            assert!(!is_trusted_host(host, &listed), "{host}");
        }
    }

    #[test]
    fn same_origin_compares_the_authority() {
        assert!(same_origin("http://127.0.0.1:8000", Some("127.0.0.1:8000")));
        assert!(!same_origin("http://127.0.0.1:8001", Some("127.0.0.1:8000")));
        assert!(!same_origin("null", Some("127.0.0.1:8000")));
        assert!(!same_origin("http://127.0.0.1:8000", None));
    }
}
