//! The DNS wire format (RFC 1035 §4, EDNS0 of RFC 6891) as far as the stub
//! client needs it: a query of one question with an OPT record, and from a
//! response its header and the data of the answer records of one type. The
//! rest of a response (questions, other records, authority and additional
//! sections) is walked, so a message that does not hold together is
//! refused, but not interpreted.
//!
//! Bounds: a name is at most 255 octets on the wire (RFC 1035 §3.1) and a
//! compression pointer must point before the labels it continues, so
//! reading a name ends after at most 255 octets of labels and fewer
//! pointers than the message has bytes. Every count is checked against the
//! bytes there are. Decoding never panics, whatever the bytes; it
//! allocates only the records it returns.

use super::Data;
use std::fmt::Write as _;
use std::net::{Ipv4Addr, Ipv6Addr};

/// Record types (RFC 1035 §3.2.2, RFC 3596, RFC 6891).
pub(super) const A: u16 = 1;
pub(super) const NS: u16 = 2;
pub(super) const CNAME: u16 = 5;
pub(super) const PTR: u16 = 12;
pub(super) const MX: u16 = 15;
pub(super) const TXT: u16 = 16;
pub(super) const AAAA: u16 = 28;
const OPT: u16 = 41;
/// Class IN.
const IN: u16 = 1;
/// The UDP payload a query offers to take (the DNS flag day 2020 value).
pub(super) const EDNS_PAYLOAD: u16 = 1232;
/// Longest name on the wire, length octets included (RFC 1035 §3.1).
const MAX_NAME_WIRE: usize = 255;
/// Bytes of the header (RFC 1035 §4.1.1).
const HEADER: usize = 12;

/// A message that does not decode.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Malformed;

/// What a response says, as far as the client reads it.
#[derive(Debug, PartialEq, Eq)]
pub(super) struct Reply {
    /// QR: a response, not a query.
    pub response: bool,
    /// TC: cut short to fit a UDP datagram (then `records` is empty).
    pub truncated: bool,
    /// RCODE of the header (its low four bits; EDNS extends it above).
    pub rcode: u8,
    /// The answer records of the type asked for, in message order.
    pub records: Vec<Data>,
}

/// The query with `id` for `name` (ASCII, labels of 1 to 63 octets, no
/// empty label; a final dot is allowed) and type `qtype`: recursion
/// desired, class IN, an OPT record offering [`EDNS_PAYLOAD`] bytes.
/// `None` when `name` cannot be a name on the wire.
pub(super) fn query(id: u16, name: &str, qtype: u16) -> Option<Vec<u8>> {
    let name = name.strip_suffix('.').unwrap_or(name);
    let mut q = Vec::with_capacity(HEADER + name.len() + 2 + 4 + 11);
    q.extend_from_slice(&id.to_be_bytes());
    // RD; one question, one additional record (the OPT).
    q.extend_from_slice(&[0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 1]);
    for label in name.split('.') {
        let len = u8::try_from(label.len()).ok().filter(|l| (1..=63).contains(l))?;
        q.push(len);
        q.extend_from_slice(label.as_bytes());
    }
    q.push(0);
    if q.len() - HEADER > MAX_NAME_WIRE {
        return None;
    }
    q.extend_from_slice(&qtype.to_be_bytes());
    q.extend_from_slice(&IN.to_be_bytes());
    // OPT: the root name, the payload size in the class field, extended
    // RCODE, version and flags zero, no options.
    q.push(0);
    q.extend_from_slice(&OPT.to_be_bytes());
    q.extend_from_slice(&EDNS_PAYLOAD.to_be_bytes());
    q.extend_from_slice(&[0, 0, 0, 0, 0, 0]);
    Some(q)
}

/// Decodes `msg`, keeping the answer records of type `want`.
///
/// # Errors
/// The header is short, a name or record runs past the end or is
/// malformed, or a record of type `want` has data of the wrong shape.
pub(super) fn reply(msg: &[u8], want: u16) -> Result<Reply, Malformed> {
    let header = msg.get(..HEADER).ok_or(Malformed)?;
    let (response, truncated, rcode) = (header[2] & 0x80 != 0, header[2] & 0x02 != 0, header[3] & 0x0f);
    if truncated {
        // Not read further: the caller asks again over TCP, and a server
        // may have cut the message anywhere.
        return Ok(Reply { response, truncated, rcode, records: Vec::new() });
    }
    let count = |i: usize| u16::from_be_bytes([header[i], header[i + 1]]);
    let (questions, answers, others) = (count(4), count(6), u32::from(count(8)) + u32::from(count(10)));
    let mut at = HEADER;
    for _ in 0..questions {
        at = name(msg, at, None)?;
        at = at.checked_add(4).filter(|&end| end <= msg.len()).ok_or(Malformed)?;
    }
    let mut records = Vec::new();
    for _ in 0..answers {
        let r = record(msg, at)?;
        at = r.end;
        if r.rtype == want {
            records.push(data(msg, &r)?);
        }
    }
    for _ in 0..others {
        at = record(msg, at)?.end;
    }
    Ok(Reply { response, truncated, rcode, records })
}

/// One resource record's place in the message.
struct Record {
    rtype: u16,
    /// Where its data starts and ends (`end` is also where the next record
    /// starts).
    data: usize,
    end: usize,
}

fn record(msg: &[u8], at: usize) -> Result<Record, Malformed> {
    let fixed = name(msg, at, None)?;
    // TYPE, CLASS, TTL, RDLENGTH.
    let f = msg.get(fixed..fixed + 10).ok_or(Malformed)?;
    let data = fixed + 10;
    let end = data + usize::from(u16::from_be_bytes([f[8], f[9]]));
    if end > msg.len() {
        return Err(Malformed);
    }
    Ok(Record { rtype: u16::from_be_bytes([f[0], f[1]]), data, end })
}

/// The data of record `r`. Empty data (as in dynamic updates) is
/// [`Data::Other`]; otherwise it must have its type's shape.
fn data(msg: &[u8], r: &Record) -> Result<Data, Malformed> {
    let rdata = &msg[r.data..r.end];
    if rdata.is_empty() {
        return Ok(Data::Other(r.rtype));
    }
    // A name in the data (compressed or not) must end where the data ends.
    let host = |at: usize| -> Result<String, Malformed> {
        let mut s = String::new();
        if name(msg, at, Some(&mut s))? == r.end { Ok(s) } else { Err(Malformed) }
    };
    Ok(match r.rtype {
        A => Data::A(Ipv4Addr::from(<[u8; 4]>::try_from(rdata).map_err(|_| Malformed)?)),
        AAAA => Data::Aaaa(Ipv6Addr::from(<[u8; 16]>::try_from(rdata).map_err(|_| Malformed)?)),
        TXT => {
            // One or more <length><bytes> strings filling the data.
            let (mut s, mut rest) = (String::new(), rdata);
            while let Some((&len, tail)) = rest.split_first() {
                let (part, tail) = tail.split_at_checked(usize::from(len)).ok_or(Malformed)?;
                s.push_str(&String::from_utf8_lossy(part));
                rest = tail;
            }
            Data::Txt(s)
        }
        MX if rdata.len() >= 3 => Data::Mx(u16::from_be_bytes([rdata[0], rdata[1]]), host(r.data + 2)?),
        PTR | CNAME | NS => Data::Name(host(r.data)?),
        MX => return Err(Malformed),
        other => Data::Other(other),
    })
}

/// Reads the name at `at`, appending it to `out` (labels joined by dots,
/// no final dot, the root as ""; octets other than letters, digits, `-`,
/// `_` and `*` escaped as in zone files: `\.`, `\\`, `\DDD`). Returns where
/// the name ends at `at` (after its first pointer, if it has one).
fn name(msg: &[u8], mut at: usize, mut out: Option<&mut String>) -> Result<usize, Malformed> {
    let mut end = None;
    // Invariant: a pointer must point before `floor`, the start of the
    // labels being read, so every jump goes strictly backwards and the
    // loop ends.
    let mut floor = at;
    let mut wire = 1;
    loop {
        let len = *msg.get(at).ok_or(Malformed)?;
        match len >> 6 {
            0 if len == 0 => return Ok(end.unwrap_or(at + 1)),
            0 => {
                let label = msg.get(at + 1..at + 1 + usize::from(len)).ok_or(Malformed)?;
                wire += 1 + label.len();
                if wire > MAX_NAME_WIRE {
                    return Err(Malformed);
                }
                if let Some(o) = out.as_deref_mut() {
                    if !o.is_empty() {
                        o.push('.');
                    }
                    escape(label, o);
                }
                at += 1 + label.len();
            }
            3 => {
                let low = *msg.get(at + 1).ok_or(Malformed)?;
                let target = usize::from(len & 0x3f) << 8 | usize::from(low);
                if target >= floor {
                    return Err(Malformed);
                }
                end.get_or_insert(at + 2);
                (floor, at) = (target, target);
            }
            // 0b01 and 0b10: extended and binary labels (RFC 6891 §5,
            // RFC 2673), never in use.
            _ => return Err(Malformed),
        }
    }
}

fn escape(label: &[u8], out: &mut String) {
    for &b in label {
        match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'_' | b'*' => out.push(char::from(b)),
            b'!'..=b'~' => {
                out.push('\\');
                out.push(char::from(b));
            }
            _ => {
                let _ = write!(out, "\\{b:03}");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// A record: owner (already encoded), type, data.
    fn rr(owner: &[u8], rtype: u16, data: &[u8]) -> Vec<u8> {
        let mut r = owner.to_vec();
        r.extend_from_slice(&rtype.to_be_bytes());
        r.extend_from_slice(&IN.to_be_bytes());
        r.extend_from_slice(&300u32.to_be_bytes());
        r.extend_from_slice(&u16::try_from(data.len()).unwrap().to_be_bytes());
        r.extend_from_slice(data);
        r
    }

    /// A response to `query(id, "5.2.0.192.zen.example", A)`: the question
    /// name at offset 12, answers whose owners point to it.
    fn response_to(id: u16, flags: [u8; 2], answers: &[Vec<u8>]) -> Vec<u8> {
        let mut m = query(id, "5.2.0.192.zen.example", A).unwrap();
        m[2..4].copy_from_slice(&flags);
        m[7] = u8::try_from(answers.len()).unwrap();
        m[11] = 0;
        m.truncate(m.len() - 11);
        for a in answers {
            m.extend_from_slice(a);
        }
        m
    }

    /// Pointers to the question's name and to its last label, "example"
    /// (after 1 5 1 2 1 0 3 192 3 zen).
    const TO_QNAME: [u8; 2] = [0xc0, 12];
    const EXAMPLE: u8 = 26;

    #[test]
    fn query_has_the_wire_layout() {
        let q = query(0xbeef, "mx.Example.org.", MX).unwrap();
        let want: &[u8] = &[
            0xbe, 0xef, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 1, // header: RD, QD 1, AR 1
            2, b'm', b'x', 7, b'E', b'x', b'a', b'm', b'p', b'l', b'e', 3, b'o', b'r', b'g', 0, // name
            0, 15, 0, 1, // MX IN
            0, 0, 41, 0x04, 0xd0, 0, 0, 0, 0, 0, 0, // OPT: 1232 bytes, no options
        ];
        assert_eq!(q, want);
        assert_eq!(query(1, "example.org", A), query(1, "example.org.", A));
        for bad in ["a..b", "", ".", &format!("{}.org", "x".repeat(64))] {
            assert_eq!(query(1, bad, A), None, "{bad}");
        }
        let long = ["a".repeat(63), "b".repeat(63), "c".repeat(63), "d".repeat(61)].join(".");
        assert_eq!(long.len(), 253);
        assert!(query(1, &long, A).is_some());
        assert_eq!(query(1, &format!("{long}e"), A), None, "256 octets on the wire");
    }

    #[test]
    fn answers_of_the_type_asked_for() {
        let m = response_to(
            7,
            [0x81, 0x80],
            &[
                rr(&TO_QNAME, CNAME, &[3, b'z', b'e', b'n', 0xc0, EXAMPLE]),
                rr(&TO_QNAME, A, &[127, 0, 0, 2]),
                rr(&TO_QNAME, TXT, &[4, b'l', b'i', b's', b't', 2, b'e', b'd', 0]),
                rr(&TO_QNAME, A, &[127, 0, 0, 4]),
            ],
        );
        let r = reply(&m, A).unwrap();
        assert_eq!((r.response, r.truncated, r.rcode), (true, false, 0));
        assert_eq!(r.records, [Data::A(Ipv4Addr::new(127, 0, 0, 2)), Data::A(Ipv4Addr::new(127, 0, 0, 4))]);
        assert_eq!(reply(&m, TXT).unwrap().records, [Data::Txt("listed".into())], "strings joined");
        // The CNAME's target: "zen" then a pointer to "example".
        assert_eq!(reply(&m, CNAME).unwrap().records, [Data::Name("zen.example".into())]);
        assert_eq!(reply(&m, MX).unwrap().records, []);
    }

    #[test]
    fn mx_aaaa_ptr_and_header_bits() {
        let v6 = "2001:db8::1".parse::<Ipv6Addr>().unwrap();
        let m = response_to(
            9,
            [0x81, 0x83],
            &[
                rr(&TO_QNAME, MX, &[0, 10, 2, b'm', b'x', 0xc0, EXAMPLE]),
                rr(&TO_QNAME, AAAA, &v6.octets()),
                rr(&TO_QNAME, PTR, &[1, b'a', 0]),
                rr(&TO_QNAME, NS, &[0]),
                rr(&TO_QNAME, A, &[]),
            ],
        );
        let r = reply(&m, MX).unwrap();
        assert_eq!((r.response, r.truncated, r.rcode), (true, false, 3));
        assert_eq!(r.records, [Data::Mx(10, "mx.example".into())]);
        let mut tc = m.clone();
        tc[2] |= 0x02;
        tc.truncate(40);
        assert_eq!(reply(&tc, MX), Ok(Reply { response: true, truncated: true, rcode: 3, records: Vec::new() }), "not read");
        assert_eq!(reply(&m, AAAA).unwrap().records, [Data::Aaaa(v6)]);
        assert_eq!(reply(&m, PTR).unwrap().records, [Data::Name("a".into())]);
        assert_eq!(reply(&m, NS).unwrap().records, [Data::Name(String::new())], "the root");
        assert_eq!(reply(&m, A).unwrap().records, [Data::Other(A)], "empty data");
    }

    #[test]
    fn bad_data_and_bad_names_are_malformed() {
        let bad_data: [(u16, &[u8]); 8] = [
            (A, &[127, 0, 0]),
            (A, &[127, 0, 0, 1, 0]),
            (AAAA, &[0; 4]),
            (TXT, &[5, b'a']),
            (MX, &[0, 10]),
            (MX, &[0, 10, 1, b'a', 0, 0]),
            (PTR, &[1, b'a', 0, 9]),
            (PTR, &[1, b'a']),
        ];
        for (t, d) in bad_data {
            let m = response_to(1, [0x81, 0x80], &[rr(&TO_QNAME, t, d)]);
            assert_eq!(reply(&m, t), Err(Malformed), "{t} {d:?}");
            // Of another type than asked for, the record is only walked.
            assert!(reply(&m, if t == A { TXT } else { A }).is_ok(), "{t} {d:?}");
        }
        let owners: [&[u8]; 6] = [
            &[0xc0, 60],         // forwards
            &[0xc0],             // cut
            &[0x40, 1, b'a', 0], // an extended label
            &[0x80, 0],          // a binary label
            &[3, b'a', b'b'],    // runs past the end
            &[],                 // nothing
        ];
        for owner in owners {
            let m = response_to(1, [0x81, 0x80], &[rr(owner, A, &[1, 2, 3, 4])]);
            assert_eq!(reply(&m, A), Err(Malformed), "{owner:?}");
        }
        // Loops: a pointer to itself, a label then a pointer back to it.
        for owner in [&[0xc0, 0][..], &[1, b'x', 0xc0, 0]] {
            let mut m = response_to(1, [0x81, 0x80], &[]);
            let at = u8::try_from(m.len()).unwrap();
            m[7] = 1;
            let mut owner = owner.to_vec();
            *owner.last_mut().unwrap() = at;
            m.extend_from_slice(&rr(&owner, A, &[1, 2, 3, 4]));
            assert_eq!(reply(&m, A), Err(Malformed), "{owner:?}");
        }
        // More records counted than there are.
        let mut m = response_to(1, [0x81, 0x80], &[rr(&TO_QNAME, A, &[1, 2, 3, 4])]);
        m[7] = 2;
        assert_eq!(reply(&m, A), Err(Malformed));
        m[7] = 1;
        m[11] = 1;
        assert_eq!(reply(&m, A), Err(Malformed), "additional");
        assert_eq!(reply(&m[..11], A), Err(Malformed), "short header");
    }

    #[test]
    fn names_longer_than_255_octets_are_malformed() {
        // Three labels of 63 octets, one of `last`, the root: 3 * 64 +
        // (1 + last) + 1 octets.
        let owner = |last: usize| {
            let mut o = Vec::new();
            for len in [63, 63, 63, last] {
                o.push(u8::try_from(len).unwrap());
                o.extend(std::iter::repeat_n(b'a', len));
            }
            o.push(0);
            rr(&o, A, &[1, 2, 3, 4])
        };
        assert!(reply(&response_to(1, [0x81, 0x80], &[owner(61)]), A).is_ok(), "255 octets");
        assert_eq!(reply(&response_to(1, [0x81, 0x80], &[owner(62)]), A), Err(Malformed), "256 octets");
    }

    #[test]
    fn odd_octets_are_escaped() {
        let mut s = String::new();
        escape(b"a.b\\c d\xff*_-Z9", &mut s);
        assert_eq!(s, r"a\.b\\c\032d\255*_-Z9");
    }

    proptest! {
        /// Whatever the bytes, decoding returns (and never panics).
        #[test]
        fn any_bytes_decode_or_fail(msg in proptest::collection::vec(any::<u8>(), 0..600), want in 0u16..30) {
            let _ = reply(&msg, want);
        }

        /// A valid response with some bytes changed or cut off still
        /// returns.
        #[test]
        fn damaged_responses_decode_or_fail(
            edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 0..6),
            cut in any::<prop::sample::Index>(),
            want in prop::sample::select(vec![A, MX, TXT, CNAME, AAAA]),
        ) {
            let mut m = response_to(
                3,
                [0x81, 0x80],
                &[
                    rr(&TO_QNAME, CNAME, &[3, b'z', b'e', b'n', 0xc0, EXAMPLE]),
                    rr(&TO_QNAME, MX, &[0, 10, 2, b'm', b'x', 0xc0, EXAMPLE]),
                    rr(&TO_QNAME, TXT, &[2, b'o', b'k']),
                    rr(&TO_QNAME, A, &[127, 0, 0, 2]),
                ],
            );
            for (i, b) in edits {
                let i = i.index(m.len());
                m[i] = b;
            }
            let len = cut.index(m.len() + 1);
            let _ = reply(&m[..len], want);
        }

        /// Names built of random labels, some ending in a pointer to an
        /// earlier name, read back as written.
        #[test]
        fn names_read_back(labels in proptest::collection::vec("[a-zA-Z0-9_-]{1,20}", 1..6), split in any::<prop::sample::Index>()) {
            let mut msg = vec![0u8; HEADER];
            let text = labels.join(".");
            let k = split.index(labels.len());
            // The tail, written whole, then the head with a pointer to it.
            let tail_at = msg.len();
            for l in &labels[k..] {
                msg.push(u8::try_from(l.len()).unwrap());
                msg.extend_from_slice(l.as_bytes());
            }
            msg.push(0);
            let head_at = msg.len();
            for l in &labels[..k] {
                msg.push(u8::try_from(l.len()).unwrap());
                msg.extend_from_slice(l.as_bytes());
            }
            msg.extend_from_slice(&[0xc0, u8::try_from(tail_at).unwrap()]);
            let mut s = String::new();
            prop_assert_eq!(name(&msg, tail_at, Some(&mut s)), Ok(head_at));
            prop_assert_eq!(&s, &labels[k..].join("."));
            let mut s = String::new();
            prop_assert_eq!(name(&msg, head_at, Some(&mut s)), Ok(msg.len()));
            prop_assert_eq!(s, text);
        }
    }
}
