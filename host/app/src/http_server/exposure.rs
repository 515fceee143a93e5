//! Where the API listens, and whether it may. Without an API token the API is
//! open to whoever reaches it, so it listens on loopback only: with
//! `CONSERVER_BIND` unset it binds `127.0.0.1:8000` and says how to open it, and
//! a non-loopback `CONSERVER_BIND` is refused at start unless
//! `CONSERVER_ALLOW_OPEN=1`. With a token, unset means `0.0.0.0:8000`, as in the
//! Python server.

use std::net::{IpAddr, SocketAddr};

use anyhow::{Result, bail};
use conserver_config::Settings;

/// Where to listen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Exposure {
    /// The address as configured (for messages).
    pub shown: String,
    /// What it resolves to.
    pub addresses: Vec<SocketAddr>,
    /// Whether every address is a loopback one.
    pub loopback: bool,
}

/// The listen address used when `CONSERVER_BIND` is unset.
pub fn default_bind(has_token: bool, allow_open: bool) -> &'static str {
    if has_token || allow_open { "0.0.0.0:8000" } else { "127.0.0.1:8000" }
}

/// Whether `ip` is a loopback address (IPv4-mapped IPv6 included).
pub fn is_loopback(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => v4.is_loopback(),
        IpAddr::V6(v6) => v6.is_loopback() || v6.to_ipv4_mapped().is_some_and(|v4| v4.is_loopback()),
    }
}

/// Decide where to listen from the settings (refusing an open non-loopback bind).
pub async fn decide(settings: &Settings) -> Result<Exposure> {
    let has_token = !settings.api_tokens.is_empty();
    let shown = match &settings.bind {
        Some(bind) => bind.clone(),
        None => {
            let bind = default_bind(has_token, settings.allow_open);
            if !has_token && !settings.allow_open {
                tracing::warn!(
                    bind,
                    "no API token is configured, so the API listens on loopback only; to serve other hosts set \
                     CONSERVER_API_TOKEN (or CONSERVER_API_TOKEN_FILE) and CONSERVER_BIND=0.0.0.0:8000, or set \
                     CONSERVER_ALLOW_OPEN=1 to serve them without a token"
                );
            }
            bind.to_string()
        }
    };
    let addresses: Vec<SocketAddr> = match tokio::net::lookup_host(shown.as_str()).await {
        Ok(found) => found.collect(),
        Err(error) => {
            bail!("CONSERVER_BIND={shown} is not an address to listen on ({error}); use host:port, e.g. 127.0.0.1:8000")
        }
    };
    if addresses.is_empty() {
        bail!("CONSERVER_BIND={shown} resolves to no address; use host:port, e.g. 127.0.0.1:8000");
    }
    let loopback = addresses.iter().all(|a| is_loopback(a.ip()));
    check(&shown, loopback, has_token, settings.allow_open)?;
    if !loopback && !has_token {
        // Only with CONSERVER_ALLOW_OPEN=1: allowed, and said loudly.
        tracing::warn!(
            bind = %shown,
            "THE API IS OPEN: no API token is configured and it listens beyond loopback, so anyone who can reach              it can read and delete every vCon and dead-letter queue. Set CONSERVER_API_TOKEN (or              CONSERVER_API_TOKEN_FILE) unless a proxy in front checks every request"
        );
    }
    Ok(Exposure { shown, addresses, loopback })
}

/// Refuse an open (token-less) API on a non-loopback address.
fn check(shown: &str, loopback: bool, has_token: bool, allow_open: bool) -> Result<()> {
    if !loopback && !has_token && !allow_open {
        bail!(
            "CONSERVER_BIND={shown} is not a loopback address and no API token is configured: anyone who can reach it \
             could read every vCon and load any component. Set CONSERVER_API_TOKEN (or CONSERVER_API_TOKEN_FILE), \
             or listen on 127.0.0.1, or set CONSERVER_ALLOW_OPEN=1 to serve it without a token"
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_unless_a_token_or_the_opt_in() {
        assert_eq!(default_bind(false, false), "127.0.0.1:8000");
        assert_eq!(default_bind(true, false), "0.0.0.0:8000");
        assert_eq!(default_bind(false, true), "0.0.0.0:8000");
        assert!(check("0.0.0.0:8000", false, false, false).is_err());
        assert!(check("0.0.0.0:8000", false, true, false).is_ok());
        assert!(check("0.0.0.0:8000", false, false, true).is_ok());
        assert!(check("127.0.0.1:8000", true, false, false).is_ok());
        for ip in ["127.0.0.1", "127.3.2.1", "::1", "::ffff:127.0.0.1"] {
            assert!(is_loopback(ip.parse().unwrap_or_else(|_| panic!("{ip}"))), "{ip}");
        }
        for ip in ["0.0.0.0", "::", "10.1.2.3", "::ffff:10.0.0.1"] {
            assert!(!is_loopback(ip.parse().unwrap_or_else(|_| panic!("{ip}"))), "{ip}");
        }
    }
}
