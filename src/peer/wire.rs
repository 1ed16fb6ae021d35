//! What travels between instances and the hub: signal batches (instance →
//! hub) and the community list, full or as a delta (hub → instance). Each
//! is JSON with a fixed field order (structs only, no maps), so the bytes
//! are canonical: the signer signs exactly the bytes it sends and the
//! verifier checks exactly the bytes it received, in the
//! `Postlens-Signature` header (base64 of the Ed25519 signature).
//!
//! Nothing here names a user, a domain or a password hash: a signal is an
//! address (IPv4, or an IPv6 /64), a 10-minute bucket, a protocol and
//! counts.

use crate::protect::IpKey;
use serde::{Deserialize, Serialize};
use std::net::IpAddr;

/// The HTTP header carrying the base64 signature of the body.
pub const SIGNATURE_HEADER: &str = "Postlens-Signature";
/// Version of the batch and list formats.
pub const FORMAT: u8 = 1;
/// Length of a signal bucket, seconds.
pub const BUCKET_SECS: i64 = 600;

/// Authentication protocol, as reported.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Proto {
    Smtp,
    Imap,
    Pop3,
    Other,
}

impl From<crate::track::record::Proto> for Proto {
    fn from(p: crate::track::record::Proto) -> Proto {
        use crate::track::record::Proto as P;
        match p {
            P::Smtp => Proto::Smtp,
            P::Imap => Proto::Imap,
            P::Pop3 => Proto::Pop3,
            P::Other => Proto::Other,
        }
    }
}

/// How many distinct passwords an address tried in a bucket, coarsened so
/// the count says little about any account. `Unknown` when the failures
/// came from logs only (Dovecot's truncated password hash is only in policy
/// `report` requests).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Passwords {
    #[serde(rename = "?")]
    Unknown,
    #[serde(rename = "1")]
    One,
    #[serde(rename = "2-3")]
    Few,
    #[serde(rename = "4-9")]
    Several,
    #[serde(rename = "10+")]
    Many,
}

impl Passwords {
    pub fn of(distinct: usize) -> Passwords {
        match distinct {
            0 => Passwords::Unknown,
            1 => Passwords::One,
            2..=3 => Passwords::Few,
            4..=9 => Passwords::Several,
            _ => Passwords::Many,
        }
    }
}

/// The address a signal or listing is about: an IPv4 address or an IPv6
/// /64, written `192.0.2.1` or `2001:db8::/64`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Addr(pub IpKey);

impl Addr {
    pub fn of(ip: IpAddr) -> Addr {
        Addr(IpKey::new(ip))
    }

    pub fn parse(s: &str) -> Option<Addr> {
        let s = s.strip_suffix("/64").unwrap_or(s);
        IpKey::parse(s.as_bytes()).map(Addr)
    }
}

impl Serialize for Addr {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for Addr {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Addr, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        Addr::parse(&s).ok_or_else(|| serde::de::Error::custom("not an IPv4 address or IPv6 /64"))
    }
}

/// One address's failures at one installation in one bucket.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Signal {
    pub ip: Addr,
    /// Start of the 10-minute bucket, seconds since the epoch (a multiple of
    /// [`BUCKET_SECS`]).
    pub bucket: i64,
    pub proto: Proto,
    pub failures: u32,
    pub passwords: Passwords,
    /// Distinct logins tried, saturating at
    /// [`MAX_LOGINS_COUNTED`](super::signals::MAX_LOGINS_COUNTED).
    pub logins: u16,
}

/// A signed batch of signals. `seq` grows strictly per key; `id` is random;
/// `created` is the sender's clock. The hub rejects a batch whose `seq` is
/// not above the last it accepted from that key, whose `id` it has seen, or
/// whose `created` is outside its window.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Batch {
    pub v: u8,
    /// The sender's public key, hex.
    pub key: String,
    pub seq: u64,
    /// 16 random bytes, hex.
    pub id: String,
    pub created: i64,
    pub signals: Vec<Signal>,
}

/// One community listing.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Entry {
    pub ip: Addr,
    /// When the listing lapses unless renewed, seconds since the epoch.
    pub expires: i64,
    /// Independent networks whose reports hold the listing up.
    pub networks: u16,
}

/// The community list as the hub signs it: full (`since` absent, `added`
/// is everything) or a delta from version `since` (`removed` then
/// `added`, in that order).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct List {
    pub v: u8,
    pub version: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub since: Option<u64>,
    pub generated: i64,
    pub added: Vec<Entry>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub removed: Vec<Addr>,
}

/// Serializes canonically: field order is declaration order, no maps, no
/// whitespace.
pub fn to_bytes<T: Serialize>(v: &T) -> Vec<u8> {
    serde_json::to_vec(v).expect("wire types serialize: strings, integers and sequences only")
}

pub fn b64(sig: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(sig)
}

/// Decodes a base64 signature; `None` for anything not exactly 64 bytes.
pub fn unb64(s: &str) -> Option<[u8; super::identity::SIGNATURE_LEN]> {
    use base64::Engine as _;
    if s.len() > 100 {
        return None;
    }
    base64::engine::general_purpose::STANDARD.decode(s.trim()).ok()?.try_into().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_print_and_parse_as_keys() {
        let a = Addr::of("2001:db8:1:2::9".parse().expect("ip"));
        let j = serde_json::to_string(&a).expect("json");
        assert_eq!(j, "\"2001:db8:1:2::/64\"");
        assert_eq!(serde_json::from_str::<Addr>(&j).expect("back"), a);
        assert!(serde_json::from_str::<Addr>("\"nonsense\"").is_err());
        assert_eq!(Passwords::of(0), Passwords::Unknown);
        assert_eq!(Passwords::of(3), Passwords::Few);
        assert_eq!(Passwords::of(10), Passwords::Many);
    }

    #[test]
    fn batch_bytes_are_canonical() {
        let b = Batch {
            v: FORMAT,
            key: "k".into(),
            seq: 7,
            id: "i".into(),
            created: 600,
            signals: vec![Signal {
                ip: Addr::of("192.0.2.1".parse().expect("ip")),
                bucket: 0,
                proto: Proto::Imap,
                failures: 3,
                passwords: Passwords::Few,
                logins: 1,
            }],
        };
        let s = String::from_utf8(to_bytes(&b)).expect("utf8");
        assert_eq!(
            s,
            r#"{"v":1,"key":"k","seq":7,"id":"i","created":600,"signals":[{"ip":"192.0.2.1","bucket":0,"proto":"imap","failures":3,"passwords":"2-3","logins":1}]}"#
        );
        assert_eq!(serde_json::from_str::<Batch>(&s).expect("back"), b);
    }
}
