//! Which addresses are not on the public internet: every block of the IANA IPv4 and IPv6
//! Special-Purpose Address Registries (checked against their 2025-10 contents), multicast,
//! a few deprecated blocks no longer listed there, and — for IPv6 — anything outside the
//! global unicast range `2000::/3` that no row names (so that a block IANA sets aside later
//! is refused until it is listed).
//!
//! Every block counts, whatever the registry's "globally reachable" column says: NAT64
//! (`64:ff9b::/96`), 6to4 (`2002::/16`) and Teredo wrap an IPv4 address that may be the
//! host's own network, and anycast service blocks (AS112, AMT, PCP) are never a tenant's
//! webhook. A refusal names the most specific row ("NAT64, 64:ff9b::/96").

use std::net::IpAddr;
use std::sync::LazyLock;

use ipnet::IpNet;

/// The table: each block with the name the registry gives it. Blocks nest (`192.0.0.0/24`
/// holds `192.0.0.8/32`); an address is named by the most specific block holding it.
const BLOCKS: &[(&str, &str)] = &[
    // IANA IPv4 Special-Purpose Address Registry.
    ("0.0.0.0/8", "\"this network\""),
    ("0.0.0.0/32", "\"this host on this network\""),
    ("10.0.0.0/8", "private use"),
    ("100.64.0.0/10", "shared address space"),
    ("127.0.0.0/8", "loopback"),
    ("169.254.0.0/16", "link-local"),
    ("172.16.0.0/12", "private use"),
    ("192.0.0.0/24", "IETF protocol assignments"),
    ("192.0.0.0/29", "IPv4 service continuity prefix"),
    ("192.0.0.8/32", "IPv4 dummy address"),
    ("192.0.0.9/32", "Port Control Protocol anycast"),
    ("192.0.0.10/32", "TURN anycast"),
    ("192.0.0.170/32", "NAT64/DNS64 discovery"),
    ("192.0.0.171/32", "NAT64/DNS64 discovery"),
    ("192.0.2.0/24", "documentation (TEST-NET-1)"),
    ("192.31.196.0/24", "AS112-v4"),
    ("192.52.193.0/24", "AMT"),
    ("192.88.99.0/24", "deprecated 6to4 relay anycast"),
    ("192.88.99.2/32", "6a44 relay anycast"),
    ("192.168.0.0/16", "private use"),
    ("192.175.48.0/24", "direct delegation AS112 service"),
    ("198.18.0.0/15", "benchmarking"),
    ("198.51.100.0/24", "documentation (TEST-NET-2)"),
    ("203.0.113.0/24", "documentation (TEST-NET-3)"),
    ("240.0.0.0/4", "reserved"),
    ("255.255.255.255/32", "limited broadcast"),
    // IANA IPv4 Multicast Address Space Registry.
    ("224.0.0.0/4", "multicast"),
    // IANA IPv6 Special-Purpose Address Registry.
    ("::1/128", "loopback"),
    ("::/128", "unspecified"),
    ("::ffff:0:0/96", "IPv4-mapped"),
    ("64:ff9b::/96", "NAT64"),
    ("64:ff9b:1::/48", "local-use NAT64"),
    ("100::/64", "discard-only"),
    ("100:0:0:1::/64", "dummy IPv6 prefix"),
    ("2001::/23", "IETF protocol assignments"),
    ("2001::/32", "Teredo"),
    ("2001:1::1/128", "Port Control Protocol anycast"),
    ("2001:1::2/128", "TURN anycast"),
    ("2001:1::3/128", "DNS-SD service registration protocol anycast"),
    ("2001:2::/48", "benchmarking"),
    ("2001:3::/32", "AMT"),
    ("2001:4:112::/48", "AS112-v6"),
    ("2001:10::/28", "deprecated ORCHID"),
    ("2001:20::/28", "ORCHIDv2"),
    ("2001:30::/28", "drone remote ID entity tags"),
    ("2001:db8::/32", "documentation"),
    ("2002::/16", "6to4"),
    ("2620:4f:8000::/48", "direct delegation AS112 service"),
    ("3fff::/20", "documentation"),
    ("5f00::/16", "segment routing (SRv6) SIDs"),
    ("fc00::/7", "unique local"),
    ("fe80::/10", "link-local"),
    // IPv6 blocks that are not (or no longer) in the registry.
    ("::/96", "IPv4-compatible (deprecated)"),
    ("::ffff:0:0:0/96", "IPv4-translated"),
    ("fec0::/10", "site-local (deprecated)"),
    ("ff00::/8", "multicast"),
];

/// One row of the table.
#[derive(Debug, PartialEq, Eq)]
pub struct SpecialBlock {
    pub block: IpNet,
    /// The block as the registry writes it (`::ffff:0:0/96`).
    pub cidr: &'static str,
    pub name: &'static str,
}

static TABLE: LazyLock<Vec<SpecialBlock>> = LazyLock::new(|| {
    BLOCKS
        .iter()
        .map(|(cidr, name)| SpecialBlock {
            block: cidr.parse().expect("the table's blocks are CIDRs (tested)"),
            cidr,
            name,
        })
        .collect()
});

static GLOBAL_UNICAST: LazyLock<IpNet> = LazyLock::new(|| "2000::/3".parse().expect("a CIDR"));

/// Why an address is not public.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NonPublic {
    /// It is in this block of the table (the most specific one).
    Special(&'static SpecialBlock),
    /// An IPv6 address outside global unicast that no row names.
    NotGlobalUnicast,
}

impl std::fmt::Display for NonPublic {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            NonPublic::Special(row) => write!(f, "{}, {}", row.name, row.cidr),
            NonPublic::NotGlobalUnicast => write!(f, "not IPv6 global unicast, 2000::/3"),
        }
    }
}

/// Why `address` is not public, or `None` when it is.
pub fn non_public(address: IpAddr) -> Option<NonPublic> {
    let row = TABLE.iter().filter(|row| row.block.contains(&address)).max_by_key(|row| row.block.prefix_len());
    match (row, address) {
        (Some(row), _) => Some(NonPublic::Special(row)),
        (None, IpAddr::V6(_)) if !GLOBAL_UNICAST.contains(&address) => Some(NonPublic::NotGlobalUnicast),
        (None, _) => None,
    }
}

/// Whether `address` is private, loopback, link-local or otherwise not on the public internet.
pub fn is_non_public(address: IpAddr) -> bool {
    non_public(address).is_some()
}

#[cfg(test)]
mod tests {
    use std::net::{Ipv4Addr, Ipv6Addr};

    use super::*;

    fn named(address: &str) -> Option<String> {
        non_public(address.parse().unwrap()).map(|why| why.to_string())
    }

    /// The address `delta` away from `address`, if there is one.
    fn step(address: IpAddr, delta: i128) -> Option<IpAddr> {
        match address {
            IpAddr::V4(v4) => {
                let n = i128::from(u32::from(v4)) + delta;
                u32::try_from(n).ok().map(|n| IpAddr::V4(Ipv4Addr::from(n)))
            }
            IpAddr::V6(v6) => {
                let n = u128::from(v6).checked_add_signed(delta)?;
                Some(IpAddr::V6(Ipv6Addr::from(n)))
            }
        }
    }

    #[test]
    fn every_row_is_a_canonical_block() {
        assert_eq!(TABLE.len(), BLOCKS.len());
        for row in TABLE.iter() {
            assert_eq!(row.block, row.block.trunc(), "{} has host bits set", row.block);
        }
        let mut blocks: Vec<_> = TABLE.iter().map(|row| row.block).collect();
        blocks.sort();
        blocks.dedup();
        assert_eq!(blocks.len(), TABLE.len(), "a block is listed twice");
    }

    #[test]
    fn every_row_holds_its_first_and_last_address_and_ends_there() {
        for row in TABLE.iter() {
            for inside in [row.block.network(), row.block.broadcast()] {
                let why = non_public(inside).unwrap_or_else(|| panic!("{inside} in {} is public", row.block));
                // Named by this row, or by a more specific row within it.
                let NonPublic::Special(named) = why else { panic!("{inside}: {why}") };
                assert!(row.block.contains(&named.block), "{inside} is named by {} outside {}", named.block, row.block);
            }
            if row.block.prefix_len() == row.block.max_prefix_len() {
                assert_eq!(non_public(row.block.network()), Some(NonPublic::Special(row)), "{}", row.block);
            }
            for outside in [step(row.block.network(), -1), step(row.block.broadcast(), 1)].into_iter().flatten() {
                assert!(
                    !matches!(non_public(outside), Some(NonPublic::Special(named)) if named == row),
                    "{outside} is named by {} although it is outside",
                    row.block
                );
            }
        }
    }

    #[test]
    fn names_each_block_and_its_neighbours() {
        let cases: &[(&str, Option<&str>)] = &[
            ("0.0.0.0", Some("\"this host on this network\", 0.0.0.0/32")),
            ("0.255.255.255", Some("\"this network\", 0.0.0.0/8")),
            ("1.0.0.0", None),
            ("9.255.255.255", None),
            ("10.0.0.1", Some("private use, 10.0.0.0/8")),
            ("11.0.0.0", None),
            ("100.63.255.255", None),
            ("100.64.0.1", Some("shared address space, 100.64.0.0/10")),
            ("100.128.0.0", None),
            ("126.255.255.255", None),
            ("127.0.0.1", Some("loopback, 127.0.0.0/8")),
            ("127.255.255.255", Some("loopback, 127.0.0.0/8")),
            ("128.0.0.0", None),
            ("169.253.255.255", None),
            ("169.254.169.254", Some("link-local, 169.254.0.0/16")),
            ("169.255.0.0", None),
            ("172.15.255.255", None),
            ("172.16.0.1", Some("private use, 172.16.0.0/12")),
            ("172.31.255.255", Some("private use, 172.16.0.0/12")),
            ("172.32.0.0", None),
            ("191.255.255.255", None),
            ("192.0.0.1", Some("IPv4 service continuity prefix, 192.0.0.0/29")),
            ("192.0.0.8", Some("IPv4 dummy address, 192.0.0.8/32")),
            ("192.0.0.9", Some("Port Control Protocol anycast, 192.0.0.9/32")),
            ("192.0.0.10", Some("TURN anycast, 192.0.0.10/32")),
            ("192.0.0.11", Some("IETF protocol assignments, 192.0.0.0/24")),
            ("192.0.0.170", Some("NAT64/DNS64 discovery, 192.0.0.170/32")),
            ("192.0.0.171", Some("NAT64/DNS64 discovery, 192.0.0.171/32")),
            ("192.0.1.0", None),
            ("192.0.2.1", Some("documentation (TEST-NET-1), 192.0.2.0/24")),
            ("192.0.3.0", None),
            ("192.31.195.255", None),
            ("192.31.196.1", Some("AS112-v4, 192.31.196.0/24")),
            ("192.31.197.0", None),
            ("192.52.192.255", None),
            ("192.52.193.1", Some("AMT, 192.52.193.0/24")),
            ("192.52.194.0", None),
            ("192.88.98.255", None),
            ("192.88.99.1", Some("deprecated 6to4 relay anycast, 192.88.99.0/24")),
            ("192.88.99.2", Some("6a44 relay anycast, 192.88.99.2/32")),
            ("192.88.100.0", None),
            ("192.167.255.255", None),
            ("192.168.1.1", Some("private use, 192.168.0.0/16")),
            ("192.169.0.0", None),
            ("192.175.47.255", None),
            ("192.175.48.1", Some("direct delegation AS112 service, 192.175.48.0/24")),
            ("192.175.49.0", None),
            ("198.17.255.255", None),
            ("198.18.0.1", Some("benchmarking, 198.18.0.0/15")),
            ("198.19.255.255", Some("benchmarking, 198.18.0.0/15")),
            ("198.20.0.0", None),
            ("198.51.99.255", None),
            ("198.51.100.1", Some("documentation (TEST-NET-2), 198.51.100.0/24")),
            ("198.51.101.0", None),
            ("203.0.112.255", None),
            ("203.0.113.1", Some("documentation (TEST-NET-3), 203.0.113.0/24")),
            ("203.0.114.0", None),
            ("223.255.255.255", None),
            ("224.0.0.1", Some("multicast, 224.0.0.0/4")),
            ("239.255.255.255", Some("multicast, 224.0.0.0/4")),
            ("240.0.0.1", Some("reserved, 240.0.0.0/4")),
            ("255.255.255.254", Some("reserved, 240.0.0.0/4")),
            ("255.255.255.255", Some("limited broadcast, 255.255.255.255/32")),
            ("8.8.8.8", None),
            ("1.1.1.1", None),
            ("142.250.74.78", None),
            // IPv6.
            ("::", Some("unspecified, ::/128")),
            ("::1", Some("loopback, ::1/128")),
            ("::2", Some("IPv4-compatible (deprecated), ::/96")),
            ("::127.0.0.1", Some("IPv4-compatible (deprecated), ::/96")),
            ("::8.8.8.8", Some("IPv4-compatible (deprecated), ::/96")),
            ("::1:0:0", Some("not IPv6 global unicast, 2000::/3")),
            ("::ffff:127.0.0.1", Some("IPv4-mapped, ::ffff:0:0/96")),
            ("::ffff:8.8.8.8", Some("IPv4-mapped, ::ffff:0:0/96")),
            ("::ffff:0:7f00:1", Some("IPv4-translated, ::ffff:0:0:0/96")),
            ("64:ff9b::7f00:1", Some("NAT64, 64:ff9b::/96")),
            ("64:ff9b::808:808", Some("NAT64, 64:ff9b::/96")),
            ("64:ff9b::1:0:0", Some("not IPv6 global unicast, 2000::/3")),
            ("64:ff9b:1::1", Some("local-use NAT64, 64:ff9b:1::/48")),
            ("100::1", Some("discard-only, 100::/64")),
            ("100:0:0:1::1", Some("dummy IPv6 prefix, 100:0:0:1::/64")),
            ("1fff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", Some("not IPv6 global unicast, 2000::/3")),
            ("2001::1", Some("Teredo, 2001::/32")),
            ("2001:0:4136:e378:8000:63bf:3fff:fdd2", Some("Teredo, 2001::/32")),
            ("2001:1::1", Some("Port Control Protocol anycast, 2001:1::1/128")),
            ("2001:1::2", Some("TURN anycast, 2001:1::2/128")),
            ("2001:1::3", Some("DNS-SD service registration protocol anycast, 2001:1::3/128")),
            ("2001:1::4", Some("IETF protocol assignments, 2001::/23")),
            ("2001:2::1", Some("benchmarking, 2001:2::/48")),
            ("2001:2:1::", Some("IETF protocol assignments, 2001::/23")),
            ("2001:3::1", Some("AMT, 2001:3::/32")),
            ("2001:4:112::1", Some("AS112-v6, 2001:4:112::/48")),
            ("2001:10::1", Some("deprecated ORCHID, 2001:10::/28")),
            ("2001:20::1", Some("ORCHIDv2, 2001:20::/28")),
            ("2001:30::1", Some("drone remote ID entity tags, 2001:30::/28")),
            ("2001:1ff:ffff::", Some("IETF protocol assignments, 2001::/23")),
            ("2001:200::1", None),
            ("2001:db7:ffff:ffff:ffff:ffff:ffff:ffff", None),
            ("2001:db8::1", Some("documentation, 2001:db8::/32")),
            ("2001:db9::", None),
            ("2001:4860:4860::8888", None),
            ("2002:7f00:1::1", Some("6to4, 2002::/16")),
            ("2002:808:808::1", Some("6to4, 2002::/16")),
            ("2003::1", None),
            ("2620:4f:8000::1", Some("direct delegation AS112 service, 2620:4f:8000::/48")),
            ("2620:4f:8001::", None),
            ("2606:4700:4700::1111", None),
            ("3ffe:ffff:ffff:ffff:ffff:ffff:ffff:ffff", None),
            ("3fff::1", Some("documentation, 3fff::/20")),
            ("3fff:1000::", None),
            ("5f00::1", Some("segment routing (SRv6) SIDs, 5f00::/16")),
            ("fbff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", Some("not IPv6 global unicast, 2000::/3")),
            ("fc00::1", Some("unique local, fc00::/7")),
            ("fd12:3456::1", Some("unique local, fc00::/7")),
            ("fe80::1", Some("link-local, fe80::/10")),
            ("febf:ffff:ffff:ffff:ffff:ffff:ffff:ffff", Some("link-local, fe80::/10")),
            ("fec0::1", Some("site-local (deprecated), fec0::/10")),
            ("ff02::1", Some("multicast, ff00::/8")),
        ];
        for (address, expected) in cases {
            assert_eq!(named(address).as_deref(), *expected, "{address}");
        }
    }

    #[test]
    fn the_findings_addresses_are_refused() {
        // Issue 18, finding 6: NAT64, 6to4, IPv4-compatible and IPv4-mapped spellings of
        // loopback, and the cloud metadata address.
        for address in ["64:ff9b::7f00:1", "2002:7f00:1::", "::7f00:1", "::ffff:7f00:1", "169.254.169.254", "[::1]"] {
            let address = address.trim_matches(['[', ']']);
            assert!(is_non_public(address.parse().unwrap()), "{address}");
        }
    }
}
