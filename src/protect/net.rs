//! Addresses as protection sees them: [`IpKey`] (an IPv4 address, or an
//! IPv6 address collapsed to its /64, since one host owns a whole /64),
//! [`Cidr`] for allowlists, and the ranges never blocked because they are
//! not the public Internet. Parsing is from borrowed bytes and allocates
//! nothing; no input can panic.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// The unit counted and blocked: an IPv4 address or an IPv6 /64.
///
/// Invariant: an IPv6 key has its low 64 bits zero and is never an
/// IPv4-mapped address (those become IPv4 keys).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct IpKey(IpAddr);

impl IpKey {
    pub fn new(ip: IpAddr) -> IpKey {
        match ip {
            IpAddr::V4(v4) => IpKey(IpAddr::V4(v4)),
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => IpKey(IpAddr::V4(v4)),
                None => IpKey(IpAddr::V6(Ipv6Addr::from(u128::from(v6) & !u128::from(u64::MAX)))),
            },
        }
    }

    /// From log or JSON text (`192.0.2.1`, `2001:db8::1`, `[2001:db8::1]`).
    pub fn parse(s: &[u8]) -> Option<IpKey> {
        let s = std::str::from_utf8(s).ok()?.trim();
        let s = s.strip_prefix('[').and_then(|r| r.strip_suffix(']')).unwrap_or(s);
        s.parse::<IpAddr>().ok().map(IpKey::new)
    }

    pub fn addr(self) -> IpAddr {
        self.0
    }
}

impl std::fmt::Display for IpKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.0 {
            IpAddr::V4(a) => write!(f, "{a}"),
            IpAddr::V6(a) => write!(f, "{a}/64"),
        }
    }
}

/// A network: address and prefix length, with the host bits cleared.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cidr {
    net: IpAddr,
    len: u8,
}

impl Cidr {
    /// `192.0.2.0/24`, `2001:db8::/32`, or a single address.
    pub fn parse(s: &str) -> Option<Cidr> {
        let (a, len) = match s.trim().split_once('/') {
            Some((a, l)) => (a, Some(l.parse::<u8>().ok()?)),
            None => (s.trim(), None),
        };
        let ip: IpAddr = a.parse().ok()?;
        let max = if ip.is_ipv4() { 32 } else { 128 };
        let len = len.unwrap_or(max);
        if len > max {
            return None;
        }
        Some(Cidr { net: mask(ip, len), len })
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        // An IPv4-mapped IPv6 address is matched as the IPv4 address.
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
            v4 @ IpAddr::V4(_) => v4,
        };
        ip.is_ipv4() == self.net.is_ipv4() && mask(ip, self.len) == self.net
    }

    /// Whether any address of the key's network is in this one (a /64 key
    /// is allowlisted by a /48 or by one of its own addresses).
    pub fn covers(&self, k: IpKey) -> bool {
        match k.0 {
            IpAddr::V6(_) if self.len > 64 => mask(self.net, 64) == k.0,
            ip => self.contains(ip),
        }
    }
}

impl std::fmt::Display for Cidr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.net, self.len)
    }
}

fn mask(ip: IpAddr, len: u8) -> IpAddr {
    match ip {
        IpAddr::V4(a) => {
            let m = if len == 0 { 0 } else { u32::MAX << (32 - u32::from(len.min(32))) };
            IpAddr::V4(Ipv4Addr::from(u32::from(a) & m))
        }
        IpAddr::V6(a) => {
            let m = if len == 0 { 0 } else { u128::MAX << (128 - u32::from(len.min(128))) };
            IpAddr::V6(Ipv6Addr::from(u128::from(a) & m))
        }
    }
}

/// Why an address is not the public Internet, if it is not.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NotPublic {
    Loopback,
    /// Private, shared (CGN), link-local, multicast, unspecified or
    /// otherwise reserved.
    Reserved,
}

/// The ranges never blocked. The documentation ranges (192.0.2.0/24,
/// 198.51.100.0/24, 203.0.113.0/24, `2001:db8::/32`) never reach a real
/// server and are treated as public, so examples and tests can use them.
pub fn not_public(k: IpKey) -> Option<NotPublic> {
    match k.0 {
        IpAddr::V4(a) => {
            let o = a.octets();
            if o[0] == 127 {
                Some(NotPublic::Loopback)
            } else if o[0] == 0
                || o[0] == 10
                || (o[0] == 100 && (o[1] & 0xc0) == 64)
                || (o[0] == 169 && o[1] == 254)
                || (o[0] == 172 && (o[1] & 0xf0) == 16)
                || (o[0] == 192 && o[1] == 0 && o[2] == 0)
                || (o[0] == 192 && o[1] == 168)
                || (o[0] == 198 && (o[1] & 0xfe) == 18)
                || o[0] >= 224
            {
                Some(NotPublic::Reserved)
            } else {
                None
            }
        }
        IpAddr::V6(a) => {
            let seg = a.segments();
            // A /64 key: ::1 collapses to ::/64, as does the unspecified address.
            if u128::from(a) == 0 {
                Some(NotPublic::Loopback)
            } else if (seg[0] & 0xfe00) == 0xfc00 || (seg[0] & 0xffc0) == 0xfe80 || (seg[0] & 0xff00) == 0xff00 {
                Some(NotPublic::Reserved)
            } else {
                None
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(s: &str) -> IpKey {
        IpKey::parse(s.as_bytes()).expect("test address")
    }

    #[test]
    fn ipv6_collapses_to_its_64_and_mapped_v4_to_v4() {
        assert_eq!(key("2001:db8:1:2:aaaa::1"), key("2001:db8:1:2::ffff"));
        assert_ne!(key("2001:db8:1:2::1"), key("2001:db8:1:3::1"));
        assert_eq!(key("2001:db8:1:2::1").to_string(), "2001:db8:1:2::/64");
        assert_eq!(key("::ffff:203.0.113.9"), key("203.0.113.9"));
        assert_eq!(key("[2001:db8::1]"), key("2001:db8::"));
        assert_eq!(IpKey::parse(b"unknown"), None);
        assert_eq!(IpKey::parse(b"\xff\xfe"), None);
        assert_eq!(IpKey::parse(b""), None);
    }

    #[test]
    fn cidr_matching() {
        let c = Cidr::parse("198.51.100.0/24").expect("cidr");
        assert!(c.contains("198.51.100.77".parse().expect("ip")));
        assert!(!c.contains("198.51.101.1".parse().expect("ip")));
        assert!(c.contains("::ffff:198.51.100.1".parse().expect("ip")));
        assert!(Cidr::parse("0.0.0.0/0").expect("any").contains("8.8.8.8".parse().expect("ip")));
        let one = Cidr::parse("203.0.113.5").expect("single");
        assert!(one.covers(key("203.0.113.5")) && !one.covers(key("203.0.113.6")));
        let v6 = Cidr::parse("2001:db8:aa::/48").expect("v6");
        assert!(v6.covers(key("2001:db8:aa:5::1")) && !v6.covers(key("2001:db8:ab::1")));
        // A single IPv6 address allowlists its /64, the unit that is blocked.
        assert!(Cidr::parse("2001:db8::7").expect("v6 host").covers(key("2001:db8::9")));
        assert!(!Cidr::parse("10.0.0.0/8").expect("v4").covers(key("2001:db8::1")));
        for bad in ["10.0.0.0/33", "2001:db8::/129", "nonsense", "10.0.0.0/x", ""] {
            assert_eq!(Cidr::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn reserved_ranges() {
        for (ip, want) in [
            ("127.0.0.5", Some(NotPublic::Loopback)),
            ("::1", Some(NotPublic::Loopback)),
            ("10.1.2.3", Some(NotPublic::Reserved)),
            ("172.16.0.1", Some(NotPublic::Reserved)),
            ("172.31.255.1", Some(NotPublic::Reserved)),
            ("172.32.0.1", None),
            ("192.168.1.1", Some(NotPublic::Reserved)),
            ("100.64.0.1", Some(NotPublic::Reserved)),
            ("100.128.0.1", None),
            ("169.254.1.1", Some(NotPublic::Reserved)),
            ("224.0.0.1", Some(NotPublic::Reserved)),
            ("255.255.255.255", Some(NotPublic::Reserved)),
            ("fd00::1", Some(NotPublic::Reserved)),
            ("fe80::1", Some(NotPublic::Reserved)),
            ("8.8.8.8", None),
            ("203.0.113.9", None),
            ("2a00:1450::1", None),
        ] {
            assert_eq!(not_public(key(ip)), want, "{ip}");
        }
    }
}
