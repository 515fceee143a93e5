//! Outbound host allow-lists for links (`allowed_outbound_hosts`), in Spin's
//! grammar: `scheme://host[:port]` where the scheme may be `*`; the host may be `*`,
//! `*.domain` (any subdomain), a name, an IP address or a CIDR block; the port may
//! be a number, a range `a..b` (end excluded) or `*`, and defaults to the scheme's
//! well-known port. Paths and a bare `*` are refused.

use std::net::IpAddr;

/// One parsed allow-list entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AllowedHost {
    scheme: Option<String>,
    host: HostPattern,
    ports: PortPattern,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum HostPattern {
    Any,
    Suffix(String),
    Exact(String),
    Cidr(IpAddr, u8),
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum PortPattern {
    Any,
    Range(u16, u16),
}

fn well_known_port(scheme: &str) -> Option<u16> {
    Some(match scheme {
        "http" => 80,
        "https" => 443,
        "redis" => 6379,
        "postgres" => 5432,
        "mysql" => 3306,
        "mqtt" => 1883,
        _ => return None,
    })
}

impl AllowedHost {
    /// Parse one entry, or say what is wrong with it.
    pub fn parse(entry: &str) -> Result<Self, String> {
        let entry = entry.trim();
        if entry == "*" {
            return Err("a bare `*` is not allowed; write `*://*:*` to allow every host".into());
        }
        let Some((scheme, rest)) = entry.split_once("://") else {
            return Err(format!("`{entry}` must look like scheme://host[:port], e.g. https://api.openai.com"));
        };
        if rest.contains('/') && !rest.contains('[') {
            // A CIDR block uses `/` too; tell a path from a prefix length.
            if let Some((_, tail)) = rest.rsplit_once('/')
                && !tail.split(':').next().unwrap_or_default().chars().all(|c| c.is_ascii_digit())
            {
                return Err(format!("`{entry}` has a path; allow-list entries name hosts only"));
            }
        }
        let scheme = match scheme {
            "*" => None,
            s if !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c)) => {
                Some(s.to_ascii_lowercase())
            }
            s => return Err(format!("`{s}` is not a URL scheme")),
        };
        let (host, port) = split_host_port(rest);
        let host = parse_host(host).map_err(|e| format!("`{entry}`: {e}"))?;
        let ports = match port {
            None => match scheme.as_deref().and_then(well_known_port) {
                Some(port) => PortPattern::Range(port, port + 1),
                None => return Err(format!("`{entry}` needs a port: the scheme has no well-known one")),
            },
            Some("*") => PortPattern::Any,
            Some(text) => parse_ports(text).map_err(|e| format!("`{entry}`: {e}"))?,
        };
        Ok(Self { scheme, host, ports })
    }

    /// Whether a request to `scheme://host:port` is allowed by this entry.
    pub fn allows(&self, scheme: &str, host: &str, port: u16) -> bool {
        let scheme_ok = self.scheme.as_deref().is_none_or(|s| s.eq_ignore_ascii_case(scheme));
        let host = host.trim_start_matches('[').trim_end_matches(']').to_ascii_lowercase();
        let host_ok = match &self.host {
            HostPattern::Any => true,
            HostPattern::Exact(name) => *name == host,
            HostPattern::Suffix(domain) => host.ends_with(&format!(".{domain}")),
            HostPattern::Cidr(network, bits) => host.parse::<IpAddr>().is_ok_and(|ip| in_cidr(ip, *network, *bits)),
        };
        let port_ok = match self.ports {
            PortPattern::Any => true,
            PortPattern::Range(start, end) => (start..end).contains(&port),
        };
        scheme_ok && host_ok && port_ok
    }
}

impl AllowedHost {
    /// Whether this entry deliberately opens `ip`, an internal address that `host`
    /// resolved to: the entry names that host (or address) exactly, or is a CIDR
    /// block containing it. Wildcards never open internal addresses.
    pub fn allows_internal(&self, host: &str, ip: IpAddr) -> bool {
        let host = host.trim_start_matches('[').trim_end_matches(']').to_ascii_lowercase();
        match &self.host {
            HostPattern::Exact(name) => *name == host,
            HostPattern::Cidr(network, bits) => in_cidr(ip, *network, *bits),
            HostPattern::Any | HostPattern::Suffix(_) => false,
        }
    }
}

fn split_host_port(rest: &str) -> (&str, Option<&str>) {
    if let Some(stripped) = rest.strip_prefix('[')
        && let Some((host, tail)) = stripped.split_once(']')
    {
        return (host, tail.strip_prefix(':'));
    }
    // A CIDR keeps its `/bits`; the port follows the last `:` (IPv4 and names).
    match rest.rsplit_once(':') {
        Some((host, port)) if !host.contains(':') => (host, Some(port)),
        _ => (rest, None),
    }
}

fn parse_host(host: &str) -> Result<HostPattern, String> {
    let host = host.to_ascii_lowercase();
    if host == "*" {
        return Ok(HostPattern::Any);
    }
    if let Some(domain) = host.strip_prefix("*.") {
        return if valid_name(domain) {
            Ok(HostPattern::Suffix(domain.to_string()))
        } else {
            Err(format!("`{host}` is not a domain"))
        };
    }
    if let Some((ip, bits)) = host.split_once('/') {
        let ip: IpAddr = ip.parse().map_err(|_| format!("`{host}` is not a CIDR block"))?;
        let max = if ip.is_ipv4() { 32 } else { 128 };
        let bits: u8 =
            bits.parse().ok().filter(|b| *b <= max).ok_or_else(|| format!("`{host}` has a bad prefix length"))?;
        return Ok(HostPattern::Cidr(ip, bits));
    }
    if host.parse::<IpAddr>().is_ok() || valid_name(&host) {
        return Ok(HostPattern::Exact(host));
    }
    Err(format!("`{host}` is not a host name, IP address or CIDR block"))
}

fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .split('.')
            .all(|label| !label.is_empty() && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'))
}

fn parse_ports(text: &str) -> Result<PortPattern, String> {
    if let Some((start, end)) = text.split_once("..") {
        let start: u16 = start.parse().map_err(|_| format!("`{text}` is not a port range"))?;
        let end: u16 = end.parse().map_err(|_| format!("`{text}` is not a port range"))?;
        if start >= end {
            return Err(format!("`{text}` is an empty port range"));
        }
        return Ok(PortPattern::Range(start, end));
    }
    let port: u16 = text.parse().map_err(|_| format!("`{text}` is not a port"))?;
    Ok(PortPattern::Range(port, port.saturating_add(1)))
}

fn in_cidr(ip: IpAddr, network: IpAddr, bits: u8) -> bool {
    match (ip, network) {
        (IpAddr::V4(ip), IpAddr::V4(net)) => {
            let mask = if bits == 0 { 0 } else { u32::MAX << (32 - u32::from(bits)) };
            u32::from(ip) & mask == u32::from(net) & mask
        }
        (IpAddr::V6(ip), IpAddr::V6(net)) => {
            let mask = if bits == 0 { 0 } else { u128::MAX << (128 - u32::from(bits)) };
            u128::from(ip) & mask == u128::from(net) & mask
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn allows(entry: &str, scheme: &str, host: &str, port: u16) -> bool {
        AllowedHost::parse(entry).unwrap().allows(scheme, host, port)
    }

    #[test]
    fn the_spin_grammar() {
        assert!(allows("https://api.openai.com", "https", "api.openai.com", 443));
        assert!(!allows("https://api.openai.com", "https", "api.openai.com", 8443));
        assert!(!allows("https://api.openai.com", "http", "api.openai.com", 443));
        assert!(allows("*://api.example.com:8080", "http", "api.example.com", 8080));
        assert!(allows("https://*.openai.azure.com", "https", "east.openai.azure.com", 443));
        assert!(!allows("https://*.openai.azure.com", "https", "openai.azure.com", 443));
        assert!(allows("http://127.0.0.1:1000..2000", "http", "127.0.0.1", 1999));
        assert!(!allows("http://127.0.0.1:1000..2000", "http", "127.0.0.1", 2000));
        assert!(allows("http://10.0.0.0/8:*", "http", "10.2.3.4", 9));
        assert!(!allows("http://10.0.0.0/8:*", "http", "11.2.3.4", 9));
        assert!(allows("*://*:*", "https", "anything.example", 1));
        assert!(allows("http://[::1]:8080", "http", "[::1]", 8080));
    }

    #[test]
    fn bad_entries_say_why() {
        for (entry, hint) in [
            ("*", "*://*:*"),
            ("api.openai.com", "scheme://host"),
            ("https://api.openai.com/v1", "path"),
            ("tcp://host", "port"),
            ("https://host:99999", "port"),
            ("https://host:9..3", "range"),
            ("https://bad host", "host"),
        ] {
            let err = AllowedHost::parse(entry).unwrap_err();
            assert!(err.contains(hint), "{entry}: {err}");
        }
    }
}
