//! Outbound host allow-lists for links (`allowed_outbound_hosts`), in Spin's
//! grammar: `scheme://host[:port]` where the scheme may be `*`; the host may be `*`,
//! `*.domain` (any subdomain), a name, an IP address or a CIDR block; the port may
//! be a number, a range `a..b` (end excluded) or `*`, and defaults to the scheme's
//! well-known port. Paths and a bare `*` are refused.
//!
//! A name grants the name, not whatever it resolves to: every address a
//! connection would use is checked, and an internal one (see [`is_internal`]) is
//! reached only when an entry for the same scheme and port names that address or a
//! CIDR block containing it ([`AllowedHost::permits_address`]). So
//! `http://metadata.internal` alone never reaches 169.254.169.254; an operator who
//! means an internal service lists its address too, e.g.
//! `["http://jlinc-server:9090", "http://172.16.0.0/12:9090"]`.

mod address;

use std::net::IpAddr;

pub use address::is_internal;

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
        let host = host.trim_start_matches('[').trim_end_matches(']').to_ascii_lowercase();
        let host_ok = match &self.host {
            HostPattern::Any => true,
            HostPattern::Exact(name) => *name == host,
            HostPattern::Suffix(domain) => host.ends_with(&format!(".{domain}")),
            HostPattern::Cidr(network, bits) => host.parse::<IpAddr>().is_ok_and(|ip| in_cidr(ip, *network, *bits)),
        };
        self.scheme_allows(scheme) && host_ok && self.port_allows(port)
    }
}

impl AllowedHost {
    /// Whether a connection for `scheme://…:port`, already allowed by name, may use
    /// address `ip`: a public address always may; an internal one only when one of
    /// `entries` for that scheme and port names the address itself or a CIDR block
    /// containing it. Host names and wildcards never grant an internal address.
    pub fn permits_address(entries: &[Self], scheme: &str, port: u16, ip: IpAddr) -> bool {
        !is_internal(ip) || entries.iter().any(|entry| entry.grants_address(scheme, port, ip))
    }

    /// Whether this entry explicitly grants `ip` (by address or CIDR block) for
    /// `scheme` and `port`. An IPv4-mapped `::ffff:a.b.c.d` is matched as `a.b.c.d`
    /// too (the same host on a dual-stack socket), so `http://127.0.0.1` covers a
    /// name that resolves to either spelling.
    fn grants_address(&self, scheme: &str, port: u16, ip: IpAddr) -> bool {
        let spellings = [ip, ip.to_canonical()];
        let address_ok = match &self.host {
            HostPattern::Exact(literal) => {
                literal.parse::<IpAddr>().is_ok_and(|named| named.to_canonical() == ip.to_canonical())
            }
            HostPattern::Cidr(network, bits) => spellings.iter().any(|ip| in_cidr(*ip, *network, *bits)),
            HostPattern::Any | HostPattern::Suffix(_) => false,
        };
        address_ok && self.scheme_allows(scheme) && self.port_allows(port)
    }

    fn scheme_allows(&self, scheme: &str) -> bool {
        self.scheme.as_deref().is_none_or(|s| s.eq_ignore_ascii_case(scheme))
    }

    fn port_allows(&self, port: u16) -> bool {
        match self.ports {
            PortPattern::Any => true,
            PortPattern::Range(start, end) => (start..end).contains(&port),
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

    fn permits(entries: &[&str], scheme: &str, port: u16, ip: &str) -> bool {
        let entries: Vec<AllowedHost> = entries.iter().map(|e| AllowedHost::parse(e).unwrap()).collect();
        AllowedHost::permits_address(&entries, scheme, port, ip.parse().unwrap())
    }

    #[test]
    fn a_host_name_grants_only_public_addresses() {
        // The name is allowed, but the internal address it resolves to is not.
        for internal in
            ["169.254.169.254", "127.0.0.1", "10.0.0.5", "::1", "::ffff:169.254.169.254", "64:ff9b::a9fe:a9fe"]
        {
            assert!(!permits(&["http://metadata.example"], "http", 80, internal), "{internal}");
            assert!(!permits(&["http://localhost:8080"], "http", 8080, internal), "{internal}");
            assert!(!permits(&["*://*:*", "http://*.example"], "http", 80, internal), "{internal}");
        }
        assert!(permits(&["https://api.example.com"], "https", 443, "93.184.215.14"));
        assert!(permits(&["https://api.example.com"], "https", 443, "2606:4700::1111"));
    }

    #[test]
    fn an_address_or_cidr_entry_grants_that_internal_range_for_its_scheme_and_port() {
        let named = ["http://jlinc-server:9090", "http://172.16.0.0/12:9090"];
        assert!(permits(&named, "http", 9090, "172.18.0.3"));
        assert!(!permits(&named, "http", 9091, "172.18.0.3"), "another port");
        assert!(!permits(&named, "https", 9090, "172.18.0.3"), "another scheme");
        assert!(!permits(&named, "http", 9090, "10.0.0.3"), "outside the block");
        assert!(permits(&["http://127.0.0.1:8080"], "http", 8080, "127.0.0.1"));
        assert!(permits(&["http://127.0.0.1:8080"], "http", 8080, "::ffff:127.0.0.1"), "the mapped spelling");
        assert!(!permits(&["http://127.0.0.1:8080"], "http", 8080, "127.0.0.2"));
        assert!(!permits(&["http://127.0.0.1:8080"], "http", 8080, "::127.0.0.1"), "a different v6 address");
        assert!(permits(&["http://[::1]:8080"], "http", 8080, "::1"));
        assert!(permits(&["*://10.0.0.0/8:*"], "https", 1, "::ffff:10.1.2.3"));
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
