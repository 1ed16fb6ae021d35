//! A DNS stub client: one question to one recursive resolver (the admin's
//! choice, else a `nameserver` of /etc/resolv.conf), never the internet
//! directly. The wire format (encoding the question, decoding the answer)
//! is in `wire`; this module owns the transport: UDP with EDNS0 (1232-byte
//! payload), the same question again over TCP when the answer comes back
//! truncated, and a deadline on every query.
//!
//! Bounds: one answer is at most 1500 bytes over UDP and 64 KiB over TCP
//! (the DNS length prefix); every socket operation has a timeout. A
//! malformed answer is an error, never a panic. Used by the RBL insight and
//! the health checks; it must not cache (callers that ask twice cache).

mod wire;

use std::io::{Read, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpStream, ToSocketAddrs, UdpSocket};
use std::time::{Duration, Instant};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Type {
    A,
    Ns,
    Cname,
    Ptr,
    Mx,
    Txt,
    Aaaa,
}

impl Type {
    fn code(self) -> u16 {
        match self {
            Type::A => wire::A,
            Type::Ns => wire::NS,
            Type::Cname => wire::CNAME,
            Type::Ptr => wire::PTR,
            Type::Mx => wire::MX,
            Type::Txt => wire::TXT,
            Type::Aaaa => wire::AAAA,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Data {
    A(Ipv4Addr),
    Aaaa(Ipv6Addr),
    /// TXT strings of one record, joined without separator (as SPF, DKIM
    /// and DMARC read them: RFC 7208 §3.3).
    Txt(String),
    /// Preference and exchange (no trailing dot).
    Mx(u16, String),
    /// PTR, CNAME and NS targets (no trailing dot; octets other than
    /// letters, digits, `-`, `_` and `*` escaped as in zone files).
    Name(String),
    /// A record of the type asked for without data (its type).
    Other(u16),
}

/// A response: its RCODE (0 no error, 3 NXDOMAIN, …) and the answer
/// records of the type asked for (a resolver's CNAME chain left out).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Answer {
    pub rcode: u8,
    pub records: Vec<Data>,
}

impl Answer {
    pub fn nxdomain(&self) -> bool {
        self.rcode == 3
    }
}

#[derive(Debug, thiserror::Error)]
pub enum DnsError {
    #[error("DNS server {server}: {source}")]
    Io { server: SocketAddr, source: std::io::Error },
    #[error("DNS server {0} did not answer in time")]
    Timeout(SocketAddr),
    #[error("malformed DNS answer from {0}")]
    Malformed(SocketAddr),
    #[error("not a DNS name: {0}")]
    BadName(String),
    #[error("no DNS server configured (no nameserver in /etc/resolv.conf)")]
    NoServer,
}

/// Is `name` a syntactically valid DNS name (labels of 1–63 letters,
/// digits, `-`, `_`; at most 253 characters)?
pub fn valid_name(name: &str) -> bool {
    let n = name.strip_suffix('.').unwrap_or(name);
    !n.is_empty()
        && n.len() <= 253
        && n.split('.').all(|l| !l.is_empty() && l.len() <= 63 && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'))
}

/// The `nameserver`s of /etc/resolv.conf, port 53, in file order.
pub fn system_servers() -> Vec<SocketAddr> {
    let text = std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default();
    text.lines()
        .filter_map(|l| l.trim().strip_prefix("nameserver"))
        .filter_map(|a| a.trim().split('%').next().and_then(|a| a.parse::<IpAddr>().ok()))
        .map(|ip| SocketAddr::new(ip, 53))
        .collect()
}

/// The first `nameserver` of /etc/resolv.conf, port 53.
///
/// # Errors
/// No usable nameserver line.
pub fn system_server() -> Result<SocketAddr, DnsError> {
    system_servers().into_iter().next().ok_or(DnsError::NoServer)
}

/// A server given as `IP`, `IP:PORT`, `[IPv6]:PORT` or `HOST:PORT` (a host
/// name is resolved by the system once). `None` when it is none of these.
pub fn parse_server(s: &str) -> Option<SocketAddr> {
    if let Ok(a) = s.parse::<SocketAddr>() {
        return Some(a);
    }
    if let Ok(ip) = s.trim_start_matches('[').trim_end_matches(']').parse::<IpAddr>() {
        return Some(SocketAddr::new(ip, 53));
    }
    let (host, port) = s.rsplit_once(':')?;
    let port: u16 = port.parse().ok()?;
    if !valid_name(host) {
        return None;
    }
    (host, port).to_socket_addrs().ok()?.next()
}

/// The reversed-octet name of `ip` under `zone` (DNSBL and PTR style):
/// `192.0.2.5` in `zen.example` is `5.2.0.192.zen.example`; IPv6 by nibbles.
pub fn reversed(ip: IpAddr, zone: &str) -> String {
    match ip {
        IpAddr::V4(v4) => {
            let o = v4.octets();
            format!("{}.{}.{}.{}.{zone}", o[3], o[2], o[1], o[0])
        }
        IpAddr::V6(v6) => {
            let mut s = String::with_capacity(64 + zone.len());
            for b in v6.octets().iter().rev() {
                for nibble in [b & 0xf, b >> 4] {
                    s.push(char::from_digit(u32::from(nibble), 16).unwrap_or('0'));
                    s.push('.');
                }
            }
            s.push_str(zone);
            s
        }
    }
}

/// What a DNSBL says of an IP.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Listing {
    /// Listed: the 127.0.0.0/8 return codes and the TXT reason, if any.
    Listed {
        codes: Vec<Ipv4Addr>,
        reason: Option<String>,
    },
    NotListed,
    /// The list refused to answer (127.255.255.0/24: e.g. queries through
    /// a public resolver, or over the free-use limit): not a listing.
    Refused(Ipv4Addr),
}

/// Looks `ip` up on DNSBL `zone` (RBL insight and health checks). Answers
/// in 127.0.0.0/8 mean listed, except 127.255.255.0/24 (refused); other
/// addresses are no listing.
///
/// # Errors
/// The server did not answer.
pub fn dnsbl(server: SocketAddr, ip: IpAddr, zone: &str, timeout: Duration) -> Result<Listing, DnsError> {
    let name = reversed(ip, zone);
    let a = query(server, &name, Type::A, timeout)?;
    let mut codes = Vec::new();
    for r in &a.records {
        if let Data::A(v4) = r
            && v4.octets()[0] == 127
        {
            if v4.octets()[1..3] == [255, 255] {
                return Ok(Listing::Refused(*v4));
            }
            codes.push(*v4);
        }
    }
    if codes.is_empty() {
        return Ok(Listing::NotListed);
    }
    let reason = query(server, &name, Type::Txt, timeout)
        .ok()
        .and_then(|t| t.records.into_iter().find_map(|r| if let Data::Txt(s) = r { Some(s) } else { None }));
    Ok(Listing::Listed { codes, reason })
}

/// The query message for `name`/`t` with id `id`: recursion desired, EDNS0.
fn encode_query(id: u16, name: &str, t: Type) -> Result<Vec<u8>, DnsError> {
    if !valid_name(name) {
        return Err(DnsError::BadName(name.to_owned()));
    }
    wire::query(id, name, t.code()).ok_or_else(|| DnsError::BadName(name.to_owned()))
}

/// Why an answer packet was not used.
#[derive(Debug, PartialEq, Eq)]
enum Reject {
    /// Not a response to our question (another id: a late reply).
    Foreign,
    /// Ours, but cut short: ask again over TCP.
    Truncated,
    Malformed,
}

fn decode_answer(p: &[u8], id: u16, t: Type) -> Result<Answer, Reject> {
    if p.len() < 2 || u16::from_be_bytes([p[0], p[1]]) != id {
        return Err(Reject::Foreign);
    }
    let m = wire::reply(p, t.code()).map_err(|_| Reject::Malformed)?;
    if !m.response {
        return Err(Reject::Foreign);
    }
    if m.truncated {
        return Err(Reject::Truncated);
    }
    Ok(Answer { rcode: m.rcode, records: m.records })
}

/// Asks `server` for `name`'s records of type `t`: over UDP (two tries
/// within `timeout`), then over TCP if the answer was truncated.
///
/// # Errors
/// A bad name, no answer in time, or a malformed answer.
pub fn query(server: SocketAddr, name: &str, t: Type, timeout: Duration) -> Result<Answer, DnsError> {
    let mut idb = [0u8; 2];
    getrandom::fill(&mut idb).map_err(|e| DnsError::Io { server, source: std::io::Error::other(e.to_string()) })?;
    let id = u16::from_be_bytes(idb);
    let q = encode_query(id, name, t)?;
    match query_udp(server, &q, id, t, timeout)? {
        Some(a) => Ok(a),
        None => query_tcp(server, &q, id, t, timeout),
    }
}

/// `Ok(None)`: the answer was truncated.
fn query_udp(server: SocketAddr, q: &[u8], id: u16, t: Type, timeout: Duration) -> Result<Option<Answer>, DnsError> {
    let io = |source| DnsError::Io { server, source };
    let bind = SocketAddr::new(if server.is_ipv4() { Ipv4Addr::UNSPECIFIED.into() } else { Ipv6Addr::UNSPECIFIED.into() }, 0);
    let sock = UdpSocket::bind(bind).map_err(io)?;
    sock.connect(server).map_err(io)?;
    let mut buf = [0u8; 1500];
    for _ in 0..2 {
        sock.send(q).map_err(io)?;
        let deadline = Instant::now() + timeout / 2;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            sock.set_read_timeout(Some(left)).map_err(io)?;
            match sock.recv(&mut buf) {
                Ok(n) => match decode_answer(buf.get(..n).unwrap_or_default(), id, t) {
                    Ok(a) => return Ok(Some(a)),
                    Err(Reject::Truncated) => return Ok(None),
                    Err(Reject::Malformed) => return Err(DnsError::Malformed(server)),
                    // A late reply to the first try, or noise: keep waiting.
                    Err(Reject::Foreign) => {}
                },
                Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => break,
                Err(e) => return Err(io(e)),
            }
        }
    }
    Err(DnsError::Timeout(server))
}

/// One question over TCP (RFC 7766): a two-byte length, then the message.
fn query_tcp(server: SocketAddr, q: &[u8], id: u16, t: Type, timeout: Duration) -> Result<Answer, DnsError> {
    let deadline = Instant::now() + timeout;
    let map = |e: std::io::Error| {
        if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) {
            DnsError::Timeout(server)
        } else {
            DnsError::Io { server, source: e }
        }
    };
    let left = || {
        let l = deadline.saturating_duration_since(Instant::now());
        if l.is_zero() { Err(DnsError::Timeout(server)) } else { Ok(l) }
    };
    let mut s = TcpStream::connect_timeout(&server, left()?).map_err(map)?;
    s.set_write_timeout(Some(left()?)).map_err(map)?;
    let len = u16::try_from(q.len()).map_err(|_| DnsError::Malformed(server))?;
    let mut framed = Vec::with_capacity(q.len() + 2);
    framed.extend_from_slice(&len.to_be_bytes());
    framed.extend_from_slice(q);
    s.write_all(&framed).map_err(map)?;
    let mut lb = [0u8; 2];
    s.set_read_timeout(Some(left()?)).map_err(map)?;
    s.read_exact(&mut lb).map_err(map)?;
    // At most 64 KiB: the length prefix cannot say more.
    let mut buf = vec![0u8; usize::from(u16::from_be_bytes(lb))];
    s.set_read_timeout(Some(left()?)).map_err(map)?;
    s.read_exact(&mut buf).map_err(map)?;
    decode_answer(&buf, id, t).map_err(|_| DnsError::Malformed(server))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_reversal() {
        assert!(valid_name("zen.spamhaus.org"));
        assert!(valid_name("_dmarc.example.org."));
        assert!(!valid_name("a..b"));
        assert!(!valid_name("a b.org"));
        assert!(!valid_name(""));
        assert_eq!(reversed("192.0.2.5".parse().unwrap(), "zen.example"), "5.2.0.192.zen.example");
        assert!(reversed("2001:db8::1".parse().unwrap(), "ip6.arpa").starts_with("1.0.0.0."));
        assert_eq!(parse_server("127.0.0.1:5353"), Some("127.0.0.1:5353".parse().unwrap()));
        assert_eq!(parse_server("::1"), Some("[::1]:53".parse().unwrap()));
        assert_eq!(parse_server("[::1]:54"), Some("[::1]:54".parse().unwrap()));
        assert_eq!(parse_server("not a server"), None);
    }

    fn hex(s: &str) -> Vec<u8> {
        (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap()).collect()
    }

    /// Answers of nsd 4.6 (tests/check's zones) to queries with EDNS0:
    /// compressed names, authority and additional sections, an OPT record.
    const NSD_MX: &str = "11118500000100010001000304676f6f64047465737400000f0001c00c000f00010000012c0007000a026d78c00cc011000200010000012c0005026e73c011c029000100010000012c0004c000020ac03a000100010000012c00047f00000100002904d0000000000000";
    const NSD_TXT: &str = "22228500000100010001000204676f6f6404746573740000100001c00c001000010000012c002625763d73706631206d7820696e636c7564653a5f7370662e676f6f642e74657374202d616c6cc011000200010000012c0005026e73c011c059000100010000012c00047f00000100002904d0000000000000";
    const NSD_PTR: &str = "333385000001000100010001023130013201300331393207696e2d61646472046172706100000c0001c00c000c00010000012c000e026d7804676f6f64047465737400c00f000200010000012c0005026e73c03d00002904d0000000000000";
    const NSD_NXDOMAIN: &str = "444485030001000000010001026e7804676f6f6404746573740000010001c014000600010000012c0026026e73c0140a686f73746d6173746572c0140000000100000e1000000258000151800000012c00002904d0000000000000";
    const NSD_A: &str = "555585000001000100010002026d7804676f6f6404746573740000010001c00c000100010000012c0004c000020ac014000200010000012c0005026e73c014c03a000100010000012c00047f00000100002904d0000000000000";

    #[test]
    fn answers_of_a_real_server_decode() {
        let mx = decode_answer(&hex(NSD_MX), 0x1111, Type::Mx).unwrap();
        assert_eq!(mx, Answer { rcode: 0, records: vec![Data::Mx(10, "mx.good.test".into())] });
        let txt = decode_answer(&hex(NSD_TXT), 0x2222, Type::Txt).unwrap();
        assert_eq!(txt.records, [Data::Txt("v=spf1 mx include:_spf.good.test -all".into())]);
        let ptr = decode_answer(&hex(NSD_PTR), 0x3333, Type::Ptr).unwrap();
        assert_eq!(ptr.records, [Data::Name("mx.good.test".into())]);
        let nx = decode_answer(&hex(NSD_NXDOMAIN), 0x4444, Type::A).unwrap();
        assert!(nx.nxdomain() && nx.records.is_empty());
        let a = decode_answer(&hex(NSD_A), 0x5555, Type::A).unwrap();
        assert_eq!(a.records, [Data::A(Ipv4Addr::new(192, 0, 2, 10))], "not the additional section's A");
        // The records of another type than asked for are left out.
        assert_eq!(decode_answer(&hex(NSD_MX), 0x1111, Type::A).unwrap().records, []);
    }

    #[test]
    fn foreign_truncated_and_cut_answers_are_refused() {
        let p = hex(NSD_MX);
        assert_eq!(decode_answer(&p, 0x9999, Type::Mx), Err(Reject::Foreign));
        let mut tc = p.clone();
        tc[2] |= 0x02;
        assert_eq!(decode_answer(&tc, 0x1111, Type::Mx), Err(Reject::Truncated));
        assert_eq!(decode_answer(&tc[..40], 0x1111, Type::Mx), Err(Reject::Truncated), "cut anywhere");
        for cut in 2..p.len() {
            assert!(decode_answer(&p[..cut], 0x1111, Type::Mx).is_err(), "cut at {cut}");
        }
        let q = encode_query(1, "example.org", Type::Mx).unwrap();
        assert_eq!(decode_answer(&q, 1, Type::Mx), Err(Reject::Foreign), "a query is not an answer");
        assert!(matches!(encode_query(1, "a b", Type::A), Err(DnsError::BadName(_))));
    }
}
