//! [`Community`]: the verified community blocklist in memory, for the
//! policy path. Only the client thread writes it, and only with lists whose
//! hub signature checked out; readers take a read lock and one hash lookup,
//! far under the policy server's millisecond. Bounded by
//! [`MAX_COMMUNITY_ENTRIES`]; expiry is honoured on every lookup.

use super::wire::{Addr, Entry, List};
use crate::clock::Timestamp;
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::RwLock;

/// Listings held. A list or delta that would exceed it keeps the entries
/// that expire last (counted in `dropped`): a hub listing more than this
/// is misbehaving, and the newest listings are the most relevant.
pub const MAX_COMMUNITY_ENTRIES: usize = 200_000;

/// Why the community lists an address.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Listing {
    pub expires: Timestamp,
    /// Independent networks that reported it.
    pub networks: u16,
}

#[derive(Default)]
struct Inner {
    version: u64,
    entries: HashMap<Addr, Listing>,
    dropped: u64,
}

/// The community list; see the module docs.
#[derive(Default)]
pub struct Community {
    inner: RwLock<Inner>,
}

impl std::fmt::Debug for Community {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Community").field("version", &self.version()).field("len", &self.len()).finish()
    }
}

impl Community {
    pub fn new() -> Community {
        Community::default()
    }

    /// The listing of `ip` (its /64 for IPv6), if listed and not expired
    /// at `now`.
    pub fn listed(&self, ip: IpAddr, now: Timestamp) -> Option<Listing> {
        let g = self.inner.read().unwrap_or_else(std::sync::PoisonError::into_inner);
        g.entries.get(&Addr::of(ip)).copied().filter(|l| l.expires > now)
    }

    /// The version of the list held (0: none yet).
    pub fn version(&self) -> u64 {
        self.inner.read().unwrap_or_else(std::sync::PoisonError::into_inner).version
    }

    pub fn len(&self) -> usize {
        self.inner.read().unwrap_or_else(std::sync::PoisonError::into_inner).entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Listings dropped for want of room.
    pub fn dropped(&self) -> u64 {
        self.inner.read().unwrap_or_else(std::sync::PoisonError::into_inner).dropped
    }

    /// All listings, for the UI (sorted by address).
    pub fn entries(&self) -> Vec<(Addr, Listing)> {
        let g = self.inner.read().unwrap_or_else(std::sync::PoisonError::into_inner);
        let mut v: Vec<_> = g.entries.iter().map(|(a, l)| (*a, *l)).collect();
        v.sort_unstable_by_key(|e| e.0);
        v
    }

    /// Applies a verified list. A full list replaces everything; a delta
    /// applies only on top of the version it was made from (otherwise
    /// `false`: the caller asks for the full list). Expired entries are
    /// pruned on the way.
    pub fn apply(&self, list: &List, now: Timestamp) -> bool {
        let mut g = self.inner.write().unwrap_or_else(std::sync::PoisonError::into_inner);
        match list.since {
            None => g.entries.clear(),
            Some(v) if v == g.version => {
                for a in &list.removed {
                    g.entries.remove(a);
                }
            }
            Some(_) => return false,
        }
        for e in &list.added {
            g.entries.insert(e.ip, listing(e));
        }
        g.entries.retain(|_, l| l.expires > now);
        if g.entries.len() > MAX_COMMUNITY_ENTRIES {
            let mut exp: Vec<i64> = g.entries.values().map(|l| l.expires.0).collect();
            let over = g.entries.len() - MAX_COMMUNITY_ENTRIES;
            let (_, &mut cut, _) = exp.select_nth_unstable(over - 1);
            let before = g.entries.len();
            g.entries.retain(|_, l| l.expires.0 > cut);
            g.dropped += (before - g.entries.len()) as u64;
        }
        g.version = list.version;
        true
    }
}

fn listing(e: &Entry) -> Listing {
    Listing { expires: Timestamp(e.expires), networks: e.networks }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(ip: &str, expires: i64) -> Entry {
        Entry { ip: Addr::parse(ip).expect("ip"), expires, networks: 3 }
    }

    #[test]
    fn full_then_delta_and_expiry_and_v6_by_64() {
        let c = Community::new();
        let full = List {
            v: 1,
            version: 4,
            since: None,
            generated: 0,
            added: vec![entry("203.0.113.1", 100), entry("2001:db8:1:2::/64", 100)],
            removed: vec![],
        };
        assert!(c.apply(&full, Timestamp(0)));
        assert!(c.listed("2001:db8:1:2::77".parse().expect("ip"), Timestamp(1)).is_some());
        assert!(c.listed("203.0.113.1".parse().expect("ip"), Timestamp(100)).is_none(), "expired");
        let stale = List { v: 1, version: 9, since: Some(3), generated: 0, added: vec![], removed: vec![] };
        assert!(!c.apply(&stale, Timestamp(0)), "a delta from another version is refused");
        let delta = List {
            v: 1,
            version: 5,
            since: Some(4),
            generated: 0,
            added: vec![entry("203.0.113.9", 200)],
            removed: vec![Addr::parse("203.0.113.1").expect("ip")],
        };
        assert!(c.apply(&delta, Timestamp(0)));
        assert_eq!(c.version(), 5);
        assert!(c.listed("203.0.113.1".parse().expect("ip"), Timestamp(1)).is_none());
        assert!(c.listed("203.0.113.9".parse().expect("ip"), Timestamp(1)).is_some());
    }

    #[test]
    fn oversized_list_keeps_latest_expiring() {
        let c = Community::new();
        let added: Vec<Entry> = (0..u32::try_from(MAX_COMMUNITY_ENTRIES + 5).expect("fits"))
            .map(|i| Entry {
                ip: Addr::of(IpAddr::from(std::net::Ipv4Addr::from(0x0b00_0000 + i))),
                expires: 1000 + i64::from(i),
                networks: 3,
            })
            .collect();
        assert!(c.apply(&List { v: 1, version: 1, since: None, generated: 0, added, removed: vec![] }, Timestamp(0)));
        assert_eq!(c.len(), MAX_COMMUNITY_ENTRIES);
        assert_eq!(c.dropped(), 5);
        assert!(c.listed(IpAddr::from(std::net::Ipv4Addr::from(0x0b00_0000)), Timestamp(0)).is_none());
    }
}
