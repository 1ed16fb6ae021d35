//! A small DNS stub client over UDP (with EDNS0 for large answers): enough
//! for DNSBL look-ups and the deliverability checks (A, AAAA, TXT, MX, PTR,
//! CNAME). It asks one recursive resolver (the admin's choice, else the
//! first `nameserver` of /etc/resolv.conf) and never the internet directly.
//! Answers are parsed defensively: a malformed packet is an error, never a
//! panic.

use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, UdpSocket};
use std::time::Duration;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Type {
    A = 1,
    Ns = 2,
    Cname = 5,
    Ptr = 12,
    Mx = 15,
    Txt = 16,
    Aaaa = 28,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Data {
    A(Ipv4Addr),
    Aaaa(Ipv6Addr),
    /// TXT strings of one record, joined.
    Txt(String),
    Mx(u16, String),
    /// PTR, CNAME and NS targets.
    Name(String),
    Other(u16),
}

/// A response: its RCODE (0 no error, 3 NXDOMAIN, …) and answer records.
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

/// The first `nameserver` of /etc/resolv.conf, port 53.
///
/// # Errors
/// No usable nameserver line.
pub fn system_server() -> Result<SocketAddr, DnsError> {
    let text = std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default();
    text.lines()
        .filter_map(|l| l.trim().strip_prefix("nameserver"))
        .filter_map(|a| a.trim().split('%').next().and_then(|a| a.parse::<std::net::IpAddr>().ok()))
        .map(|ip| SocketAddr::new(ip, 53))
        .next()
        .ok_or(DnsError::NoServer)
}

/// The reversed-octet name of `ip` under `zone` (DNSBL and PTR style):
/// `192.0.2.5` in `zen.example` is `5.2.0.192.zen.example`; IPv6 by nibbles.
pub fn reversed(ip: std::net::IpAddr, zone: &str) -> String {
    match ip {
        std::net::IpAddr::V4(v4) => {
            let o = v4.octets();
            format!("{}.{}.{}.{}.{zone}", o[3], o[2], o[1], o[0])
        }
        std::net::IpAddr::V6(v6) => {
            let mut s = String::new();
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

fn encode_query(id: u16, name: &str, t: Type) -> Result<Vec<u8>, DnsError> {
    if !valid_name(name) {
        return Err(DnsError::BadName(name.to_owned()));
    }
    let mut q = Vec::with_capacity(64);
    q.extend_from_slice(&id.to_be_bytes());
    q.extend_from_slice(&[0x01, 0x00]); // RD
    q.extend_from_slice(&[0, 1, 0, 0, 0, 0, 0, 1]); // 1 question, 1 additional (OPT)
    for label in name.trim_end_matches('.').split('.') {
        q.push(u8::try_from(label.len()).map_err(|_| DnsError::BadName(name.to_owned()))?);
        q.extend_from_slice(label.as_bytes());
    }
    q.push(0);
    q.extend_from_slice(&(t as u16).to_be_bytes());
    q.extend_from_slice(&[0, 1]); // IN
    // EDNS0: 1232-byte UDP payload.
    q.extend_from_slice(&[0, 0, 41, 0x04, 0xd0, 0, 0, 0, 0, 0, 0]);
    Ok(q)
}

/// Reads a (possibly compressed) name at `pos`; returns it and the position
/// after it in the original stream.
fn read_name(p: &[u8], mut pos: usize) -> Option<(String, usize)> {
    let mut out = String::new();
    let mut end = None;
    let mut jumps = 0;
    loop {
        let len = *p.get(pos)?;
        if len & 0xc0 == 0xc0 {
            let off = usize::from(u16::from_be_bytes([len & 0x3f, *p.get(pos + 1)?]));
            end.get_or_insert(pos + 2);
            jumps += 1;
            if jumps > 32 {
                return None;
            }
            pos = off;
            continue;
        }
        if len == 0 {
            return Some((out, end.unwrap_or(pos + 1)));
        }
        let label = p.get(pos + 1..pos + 1 + usize::from(len))?;
        if !out.is_empty() {
            out.push('.');
        }
        out.push_str(&String::from_utf8_lossy(label));
        if out.len() > 255 {
            return None;
        }
        pos += 1 + usize::from(len);
    }
}

fn parse_answer(p: &[u8], id: u16) -> Option<Answer> {
    if p.len() < 12 || u16::from_be_bytes([p[0], p[1]]) != id || p[2] & 0x80 == 0 {
        return None;
    }
    let rcode = p[3] & 0x0f;
    let qd = u16::from_be_bytes([p[4], p[5]]);
    let an = u16::from_be_bytes([p[6], p[7]]);
    let mut pos = 12;
    for _ in 0..qd {
        pos = read_name(p, pos)?.1 + 4;
    }
    let mut records = Vec::new();
    for _ in 0..an {
        let (_, after) = read_name(p, pos)?;
        let h = p.get(after..after + 10)?;
        let rtype = u16::from_be_bytes([h[0], h[1]]);
        let rdlen = usize::from(u16::from_be_bytes([h[8], h[9]]));
        let start = after + 10;
        let rd = p.get(start..start + rdlen)?;
        records.push(match rtype {
            1 if rdlen == 4 => Data::A(Ipv4Addr::new(rd[0], rd[1], rd[2], rd[3])),
            28 if rdlen == 16 => {
                let mut b = [0u8; 16];
                b.copy_from_slice(rd);
                Data::Aaaa(Ipv6Addr::from(b))
            }
            16 => {
                let mut s = String::new();
                let mut i = 0;
                while i < rd.len() {
                    let l = usize::from(rd[i]);
                    s.push_str(&String::from_utf8_lossy(rd.get(i + 1..i + 1 + l)?));
                    i += 1 + l;
                }
                Data::Txt(s)
            }
            15 if rdlen >= 3 => Data::Mx(u16::from_be_bytes([rd[0], rd[1]]), read_name(p, start + 2)?.0),
            2 | 5 | 12 => Data::Name(read_name(p, start)?.0),
            t => Data::Other(t),
        });
        pos = start + rdlen;
    }
    Some(Answer { rcode, records })
}

/// Asks `server` for `name`'s records of type `t` (two tries).
///
/// # Errors
/// A bad name, no answer in time, or a malformed answer.
pub fn query(server: SocketAddr, name: &str, t: Type, timeout: Duration) -> Result<Answer, DnsError> {
    let mut idb = [0u8; 2];
    getrandom::fill(&mut idb).map_err(|e| DnsError::Io { server, source: std::io::Error::other(e.to_string()) })?;
    let id = u16::from_be_bytes(idb);
    let q = encode_query(id, name, t)?;
    let io = |source| DnsError::Io { server, source };
    let bind: SocketAddr = if server.is_ipv4() { "0.0.0.0:0".parse().unwrap_or(server) } else { "[::]:0".parse().unwrap_or(server) };
    let sock = UdpSocket::bind(bind).map_err(io)?;
    sock.connect(server).map_err(io)?;
    sock.set_read_timeout(Some(timeout / 2)).map_err(io)?;
    let mut buf = [0u8; 1500];
    for _ in 0..2 {
        sock.send(&q).map_err(io)?;
        let deadline = std::time::Instant::now() + timeout / 2;
        while std::time::Instant::now() < deadline {
            match sock.recv(&mut buf) {
                // Answers to another id (a late reply to the first try) are skipped.
                Ok(n) => match buf.get(..n).and_then(|p| parse_answer(p, id)) {
                    Some(a) => return Ok(a),
                    None if n >= 2 && u16::from_be_bytes([buf[0], buf[1]]) == id => return Err(DnsError::Malformed(server)),
                    None => {}
                },
                Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => break,
                Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => return Err(io(e)),
                Err(_) => break,
            }
        }
    }
    Err(DnsError::Timeout(server))
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
    }

    #[test]
    fn answers_parse_and_garbage_does_not_panic() {
        // A hand-built answer: A 127.0.0.2 and TXT "listed", with compression.
        let q = encode_query(0x1234, "5.2.0.192.zen.example", Type::A).unwrap();
        let qlen = q.len() - 11; // without the OPT record
        let mut p = q[..qlen].to_vec();
        p[2] = 0x81;
        p[3] = 0x80;
        p[7] = 2; // ANCOUNT
        p[11] = 0; // ARCOUNT
        p.extend_from_slice(&[0xc0, 12, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 127, 0, 0, 2]);
        p.extend_from_slice(&[0xc0, 12, 0, 16, 0, 1, 0, 0, 0, 60, 0, 7, 6]);
        p.extend_from_slice(b"listed");
        let a = parse_answer(&p, 0x1234).unwrap();
        assert_eq!(a.rcode, 0);
        assert_eq!(a.records, vec![Data::A(Ipv4Addr::new(127, 0, 0, 2)), Data::Txt("listed".into())]);
        assert!(parse_answer(&p, 0x9999).is_none(), "another id");
        for cut in 0..p.len() {
            let _ = parse_answer(&p[..cut], 0x1234);
        }
        // A name pointing at itself.
        let mut l = p.clone();
        l[qlen + 1] = u8::try_from(qlen).unwrap();
        assert!(parse_answer(&l, 0x1234).is_none());
    }
}
