//! Which IP addresses are internal: the one classifier behind outbound HTTP and
//! host-side media fetches. An internal address is one a public service would not
//! have — loopback, private, link-local, shared (CGNAT), unspecified, multicast,
//! broadcast, reserved, documentation and benchmarking ranges — and every IPv6
//! spelling that carries an IPv4 address (mapped `::ffff:a.b.c.d`, compatible
//! `::a.b.c.d`, translated `::ffff:0:a.b.c.d`, NAT64 `64:ff9b::/96`, 6to4
//! `2002::/16`) is classed by the IPv4 address it carries. Tunnels whose far end
//! the name's owner picks (Teredo, local-use NAT64 `64:ff9b:1::/48`) and all IPv6
//! space outside global unicast `2000::/3` are internal too.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Whether `ip` is an address a public service would not have (see the module
/// header); such an address is reached only when an allow-list entry grants it
/// by IP address or CIDR block.
pub fn is_internal(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_internal_v4(v4),
        IpAddr::V6(v6) => is_internal_v6(v6),
    }
}

/// `a.b.c.d/bits` as a (network, prefix length) pair.
const fn v4(a: u8, b: u8, c: u8, d: u8, bits: u32) -> (u32, u32) {
    (u32::from_be_bytes([a, b, c, d]), bits)
}

/// IPv4 blocks that are not globally reachable (IANA special-purpose registry).
const INTERNAL_V4: [(u32, u32); 16] = [
    v4(0, 0, 0, 0, 8),          // "this network", incl. 0.0.0.0
    v4(10, 0, 0, 0, 8),         // private
    v4(100, 64, 0, 0, 10),      // shared address space (carrier-grade NAT)
    v4(127, 0, 0, 0, 8),        // loopback
    v4(169, 254, 0, 0, 16),     // link-local (cloud metadata at 169.254.169.254)
    v4(172, 16, 0, 0, 12),      // private
    v4(192, 0, 0, 0, 24),       // IETF protocol assignments
    v4(192, 0, 2, 0, 24),       // documentation (TEST-NET-1)
    v4(192, 88, 99, 0, 24),     // 6to4 relay anycast (deprecated)
    v4(192, 168, 0, 0, 16),     // private
    v4(198, 18, 0, 0, 15),      // benchmarking
    v4(198, 51, 100, 0, 24),    // documentation (TEST-NET-2)
    v4(203, 0, 113, 0, 24),     // documentation (TEST-NET-3)
    v4(224, 0, 0, 0, 4),        // multicast
    v4(240, 0, 0, 0, 4),        // reserved
    v4(255, 255, 255, 255, 32), // limited broadcast
];

fn is_internal_v4(ip: Ipv4Addr) -> bool {
    let bits = u32::from(ip);
    INTERNAL_V4.iter().any(|&(network, len)| bits >> (32 - len) == network >> (32 - len))
}

/// Blocks inside global unicast `2000::/3` that are not globally reachable (or
/// tunnel to an address the name's owner chooses), as (network, prefix length).
const INTERNAL_V6: [(u128, u32); 3] = [
    (0x2001_0000_0000_0000_0000_0000_0000_0000, 23), // IETF protocol assignments: Teredo 2001::/32, benchmarking, ORCHID
    (0x2001_0db8_0000_0000_0000_0000_0000_0000, 32), // documentation
    (0x3fff_0000_0000_0000_0000_0000_0000_0000, 20), // documentation (RFC 9637)
];

fn in_block(bits: u128, (network, len): (u128, u32)) -> bool {
    bits >> (128 - len) == network >> (128 - len)
}

fn is_internal_v6(ip: Ipv6Addr) -> bool {
    if let Some(v4) = embedded_v4(ip) {
        return is_internal_v4(v4);
    }
    let bits = u128::from(ip);
    // Only 2000::/3 is global unicast: this covers ::1, ::, fc00::/7 (unique
    // local), fe80::/10 (link-local), fec0::/10 (site-local), ff00::/8
    // (multicast), 100::/64 (discard), 64:ff9b:1::/48 (local-use NAT64), 5f00::/16.
    if bits >> 125 != 0b001 {
        return true;
    }
    INTERNAL_V6.iter().any(|&block| in_block(bits, block))
}

/// The IPv4 address an IPv6 spelling carries, if it is one of the forms that
/// reach (or are translated to) that IPv4 address.
fn embedded_v4(ip: Ipv6Addr) -> Option<Ipv4Addr> {
    let s = ip.segments();
    let low = Ipv4Addr::new((s[6] >> 8) as u8, s[6] as u8, (s[7] >> 8) as u8, s[7] as u8);
    match s {
        // ::a.b.c.d (compatible, deprecated; :: and ::1 fall here and are internal
        // as 0.0.0.0 and 0.0.0.1) and ::ffff:a.b.c.d (mapped).
        [0, 0, 0, 0, 0, 0 | 0xffff, ..] => Some(low),
        // ::ffff:0:a.b.c.d (SIIT translated).
        [0, 0, 0, 0, 0xffff, 0, ..] => Some(low),
        // 64:ff9b::a.b.c.d (well-known NAT64 prefix).
        [0x64, 0xff9b, 0, 0, 0, 0, ..] => Some(low),
        // 2002:aabb:ccdd::/48 (6to4).
        [0x2002, high, low16, ..] => {
            Some(Ipv4Addr::new((high >> 8) as u8, high as u8, (low16 >> 8) as u8, low16 as u8))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    #[allow(clippy::unwrap_used)]
    fn every_internal_spelling_is_internal_and_public_addresses_stay_public() {
        let internal = [
            // IPv4
            "0.0.0.0",
            "0.1.2.3",
            "10.0.0.1",
            "10.255.255.255",
            "100.64.0.1",
            "100.127.255.254",
            "127.0.0.1",
            "127.255.255.254",
            "169.254.169.254",
            "169.254.0.1",
            "172.16.0.1",
            "172.31.255.255",
            "192.0.0.170",
            "192.0.2.1",
            "192.88.99.1",
            "192.168.1.1",
            "198.18.0.1",
            "198.19.255.255",
            "198.51.100.7",
            "203.0.113.9",
            "224.0.0.1",
            "239.255.255.250",
            "240.0.0.1",
            "255.255.255.255",
            // IPv6 natives
            "::",
            "::1",
            "fc00::1",
            "fd12:3456::1",
            "fe80::1",
            "febf::1",
            "fec0::1",
            "ff02::1",
            "ff05::2",
            "100::1",
            "5f00::1",
            "2001:db8::1",
            "3fff::1",
            "2001::1",
            "2001:0:4136:e378:8000:63bf:3fff:fdd2", // Teredo
            "2001:2::1",
            "2001:10::1",
            "2001:20::1",
            "64:ff9b:1::1",
            "64:ff9b:1::a9fe:a9fe",
            // IPv6 spellings of internal IPv4 addresses
            "::127.0.0.1",
            "::7f00:1",
            "::169.254.169.254",
            "::ffff:127.0.0.1",
            "::ffff:7f00:1",
            "::ffff:169.254.169.254",
            "::ffff:10.0.0.1",
            "::ffff:0.0.0.0",
            "::ffff:0:127.0.0.1",
            "::ffff:0:a9fe:a9fe",
            "64:ff9b::7f00:1",
            "64:ff9b::127.0.0.1",
            "64:ff9b::169.254.169.254",
            "64:ff9b::a00:1",
            "2002:7f00:1::1",
            "2002:a9fe:a9fe::",
            "2002:c0a8:101::1",
        ];
        for address in internal {
            assert!(is_internal(address.parse().unwrap()), "{address} should be internal");
        }
        let public = [
            "8.8.8.8",
            "1.1.1.1",
            "93.184.215.14",
            "172.32.0.1",
            "172.15.255.255",
            "100.63.255.255",
            "100.128.0.1",
            "169.253.255.255",
            "192.0.1.1",
            "192.169.0.1",
            "198.17.255.255",
            "198.20.0.1",
            "223.255.255.255",
            "2606:4700::1111",
            "2001:4860:4860::8888",
            "2a00:1450:4001:80b::200e",
            "2001:200::1",
            "::ffff:8.8.8.8",
            "::8.8.8.8",
            "::ffff:0:8.8.8.8",
            "64:ff9b::808:808",
            "64:ff9b::1.1.1.1",
            "2002:808:808::1",
        ];
        for address in public {
            assert!(!is_internal(address.parse().unwrap()), "{address} should be public");
        }
    }
}
