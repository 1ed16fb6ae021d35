//! The [`Aggregator`]: turns the detector's failures and successes into
//! per-bucket signals, and completed buckets into signed [`Batch`]es.
//!
//! Privacy: logins and password hashes are reduced on arrival to 64-bit
//! keyed hashes (`SipHash` with a random key made at start and never stored
//! or sent) and only their distinct counts leave; addresses that logged in
//! successfully in the last [`SUCCESS_MEMORY_SECS`], the server's own
//! addresses and non-public ranges are never reported.
//!
//! Bounds: every table has a capacity const below with its eviction rule;
//! what was dropped is counted in [`AggregatorStats`]. Time is passed in.

use super::identity::{Identity, hex};
use super::wire::{self, Addr, BUCKET_SECS, Batch, Passwords, Proto, Signal};
use crate::clock::Timestamp;
use crate::protect::IpKey;
use crate::protect::net::not_public;
use std::collections::{BTreeMap, HashMap};
use std::hash::BuildHasher as _;
use std::net::IpAddr;

/// Distinct password hashes remembered per address and bucket: enough to
/// tell the top [`Passwords`] bucket ("10+"); more are not counted.
pub const MAX_PASSWORDS_COUNTED: usize = 10;
/// Distinct logins remembered per address and bucket; the reported count
/// saturates here.
pub const MAX_LOGINS_COUNTED: usize = 16;
/// (address, protocol) cells per open bucket. When full, failures from new
/// cells are dropped (counted in `dropped_cells`): the cells already there
/// are at least as old and as strong.
pub const MAX_CELLS_PER_BUCKET: usize = 4096;
/// Buckets that accept failures: the newest and the one before, so late
/// log lines still land. A failure older than that is dropped (`late`).
pub const OPEN_BUCKETS: usize = 2;
/// Buckets kept until drained (an hour). When a new one would exceed
/// this, the oldest is discarded (`dropped_buckets`): nobody is draining.
pub const MAX_UNDRAINED_BUCKETS: usize = 6;
/// Seconds after a bucket's end before it is drained, for late lines.
pub const DRAIN_GRACE_SECS: i64 = 60;
/// How long a successful login exempts its address.
pub const SUCCESS_MEMORY_SECS: i64 = 30 * 86_400;
/// Addresses remembered with a successful login. When full, entries older
/// than [`SUCCESS_MEMORY_SECS`] go first, then the oldest eighth by last
/// success (counted in `success_evicted`), so eviction is amortised.
pub const MAX_SUCCESS_ADDRESSES: usize = 65_536;
/// Signals in one batch: the strongest (most failures) are kept, the rest
/// dropped (`dropped_signals`). At ~110 bytes a signal, 256 KB at most.
pub const MAX_SIGNALS_PER_BATCH: usize = 2000;
/// Own addresses (the server's IPs) excluded from reports.
pub const MAX_OWN_ADDRESSES: usize = 64;

#[derive(Default)]
struct Cell {
    failures: u32,
    passwords: heapless::Vec<u64, MAX_PASSWORDS_COUNTED>,
    logins: heapless::Vec<u64, MAX_LOGINS_COUNTED>,
    /// Some failure came with a password hash (a policy `report`).
    hashed: bool,
}

/// Counters of what was left out, for the telemetry page.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct AggregatorStats {
    pub dropped_cells: u64,
    pub dropped_buckets: u64,
    pub late: u64,
    pub dropped_signals: u64,
    pub success_evicted: u64,
    /// Signals withheld because the address logged in successfully.
    pub withheld_success: u64,
    /// Failures from the server's own or non-public addresses.
    pub withheld_own: u64,
}

/// Builds signal batches; see the module docs.
pub struct Aggregator {
    /// Invariant: at most [`MAX_UNDRAINED_BUCKETS`] keys, each a bucket start.
    open: BTreeMap<i64, HashMap<(IpKey, Proto), Cell>>,
    /// Invariant: at most [`MAX_SUCCESS_ADDRESSES`] entries.
    success: HashMap<IpKey, Timestamp>,
    own: Vec<IpKey>,
    hasher: std::hash::RandomState,
    seq: u64,
    stats: AggregatorStats,
}

impl Default for Aggregator {
    fn default() -> Self {
        Aggregator::new()
    }
}

impl Aggregator {
    pub fn new() -> Aggregator {
        Aggregator {
            open: BTreeMap::new(),
            success: HashMap::new(),
            own: Vec::new(),
            hasher: std::hash::RandomState::new(),
            seq: 0,
            stats: AggregatorStats::default(),
        }
    }

    /// The server's own addresses (resolved hostnames included), never
    /// reported. At most [`MAX_OWN_ADDRESSES`] are kept.
    pub fn set_own(&mut self, addrs: &[IpAddr]) {
        self.own = addrs.iter().take(MAX_OWN_ADDRESSES).map(|&a| IpKey::new(a)).collect();
    }

    pub fn stats(&self) -> AggregatorStats {
        self.stats
    }

    /// A failed login: `count` attempts from `ip` over `proto`. `pwhash` is
    /// Dovecot's truncated password hash (empty from logs), `login` the user
    /// name tried (empty if unknown). Neither is kept: only a keyed hash, to
    /// count distinct ones.
    pub fn failure(&mut self, ip: IpAddr, proto: crate::track::record::Proto, pwhash: &[u8], login: &[u8], count: u32, t: Timestamp) {
        let k = IpKey::new(ip);
        if not_public(k).is_some() || self.own.contains(&k) {
            self.stats.withheld_own += 1;
            return;
        }
        if self.succeeded(k, t) {
            self.stats.withheld_success += 1;
            return;
        }
        let b = t.0 - t.0.rem_euclid(BUCKET_SECS);
        let newest = self.open.last_key_value().map_or(i64::MIN, |(&n, _)| n);
        if b < newest.saturating_sub(BUCKET_SECS * (i64::try_from(OPEN_BUCKETS).unwrap_or(2) - 1)) {
            self.stats.late += 1;
            return;
        }
        if !self.open.contains_key(&b) && self.open.len() >= MAX_UNDRAINED_BUCKETS {
            // Nobody drains (sharing off, or the thread stalled): the oldest
            // bucket goes, so memory stays bounded.
            let oldest = self.open.keys().next().copied().unwrap_or(b);
            if b < oldest {
                self.stats.late += 1;
                return;
            }
            self.open.remove(&oldest);
            self.stats.dropped_buckets += 1;
        }
        let cells = self.open.entry(b).or_default();
        let full = cells.len() >= MAX_CELLS_PER_BUCKET;
        let cell = match cells.get_mut(&(k, proto.into())) {
            Some(c) => c,
            None if full => {
                self.stats.dropped_cells += 1;
                return;
            }
            None => cells.entry((k, proto.into())).or_default(),
        };
        cell.failures = cell.failures.saturating_add(count.max(1));
        if !pwhash.is_empty() {
            cell.hashed = true;
            let h = self.hasher.hash_one(pwhash);
            if !cell.passwords.contains(&h) {
                // Full means "10 or more": the bucket is already the top one.
                let _ = cell.passwords.push(h);
            }
        }
        if !login.is_empty() {
            let h = self.hasher.hash_one(login);
            if !cell.logins.contains(&h) {
                let _ = cell.logins.push(h);
            }
        }
    }

    /// A successful login from `ip`: its signals are withheld for
    /// [`SUCCESS_MEMORY_SECS`], including those already counted.
    pub fn success(&mut self, ip: IpAddr, t: Timestamp) {
        let k = IpKey::new(ip);
        if self.success.len() >= MAX_SUCCESS_ADDRESSES && !self.success.contains_key(&k) {
            self.success.retain(|_, s| t.0 - s.0 < SUCCESS_MEMORY_SECS);
            if self.success.len() >= MAX_SUCCESS_ADDRESSES {
                let mut times: Vec<i64> = self.success.values().map(|s| s.0).collect();
                let cut_at = times.len() / 8;
                let (_, &mut cut, _) = times.select_nth_unstable(cut_at);
                let before = self.success.len();
                self.success.retain(|_, s| s.0 > cut);
                self.stats.success_evicted += (before - self.success.len()) as u64;
            }
        }
        let e = self.success.entry(k).or_insert(t);
        *e = (*e).max(t);
    }

    fn succeeded(&self, k: IpKey, t: Timestamp) -> bool {
        self.success.get(&k).is_some_and(|s| t.0 - s.0 < SUCCESS_MEMORY_SECS)
    }

    /// The signals of every bucket that ended at least [`DRAIN_GRACE_SECS`]
    /// before `now`, as a signed batch; `None` if there are none. The
    /// sequence number is `now` in milliseconds, or one more than the last,
    /// so it grows across restarts without stored state (as long as the
    /// clock does not go back).
    pub fn drain(&mut self, now: Timestamp, identity: &Identity) -> Option<(Batch, Vec<u8>, [u8; 64])> {
        let signals = self.drain_signals(now)?;
        Some(self.seal(signals, now, identity))
    }

    /// Signals of completed buckets, without sealing (for the simulator).
    pub fn drain_signals(&mut self, now: Timestamp) -> Option<Vec<Signal>> {
        let done: Vec<i64> = self.open.keys().copied().filter(|&b| b + BUCKET_SECS + DRAIN_GRACE_SECS <= now.0).collect();
        if done.is_empty() {
            return None;
        }
        let mut out = Vec::new();
        for b in done {
            let Some(cells) = self.open.remove(&b) else { continue };
            for ((k, proto), c) in cells {
                if self.succeeded(k, now) {
                    self.stats.withheld_success += 1;
                    continue;
                }
                let passwords = if c.hashed { Passwords::of(c.passwords.len()) } else { Passwords::Unknown };
                let logins = u16::try_from(c.logins.len()).unwrap_or(u16::MAX);
                out.push(Signal { ip: Addr(k), bucket: b, proto, failures: c.failures, passwords, logins });
            }
        }
        if out.len() > MAX_SIGNALS_PER_BATCH {
            out.sort_unstable_by_key(|s| std::cmp::Reverse(s.failures));
            self.stats.dropped_signals += (out.len() - MAX_SIGNALS_PER_BATCH) as u64;
            out.truncate(MAX_SIGNALS_PER_BATCH);
        }
        // Deterministic order: the bytes of two drains of equal content match.
        out.sort_unstable_by_key(|s| (s.bucket, s.ip, s.proto));
        Some(out)
    }

    /// Wraps signals in a batch with the next sequence number and a random
    /// ID, serializes it canonically and signs the bytes.
    pub fn seal(&mut self, signals: Vec<Signal>, now: Timestamp, identity: &Identity) -> (Batch, Vec<u8>, [u8; 64]) {
        let ms = u64::try_from(now.0).unwrap_or(0).saturating_mul(1000);
        self.seq = ms.max(self.seq + 1);
        let mut id = [0u8; 16];
        // The ID only needs to be unique per key; a failed random source
        // leaves it derived from the sequence number, still unique.
        if getrandom::fill(&mut id).is_err() {
            id[..8].copy_from_slice(&self.seq.to_be_bytes());
        }
        let batch = Batch { v: wire::FORMAT, key: identity.id().hex(), seq: self.seq, id: hex(&id), created: now.0, signals };
        let bytes = wire::to_bytes(&batch);
        let sig = identity.sign(&bytes);
        (batch, bytes, sig)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::track::record::Proto as P;

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("test ip")
    }

    #[test]
    fn buckets_count_distinct_passwords_and_logins_not_values() {
        let mut a = Aggregator::new();
        let id = Identity::generate().expect("key");
        for i in 0..12u8 {
            a.failure(ip("203.0.113.5"), P::Imap, &[i], b"alice", 1, Timestamp(1_000_000 + i64::from(i)));
        }
        a.failure(ip("203.0.113.6"), P::Smtp, b"", b"bob", 3, Timestamp(1_000_010));
        a.failure(ip("203.0.113.6"), P::Smtp, b"", b"carol", 1, Timestamp(1_000_020));
        assert!(a.drain(Timestamp(1_000_100), &id).is_none(), "bucket still open");
        let (batch, bytes, sig) = a.drain(Timestamp(1_000_800), &id).expect("completed bucket");
        assert!(id.id().verify(&bytes, &sig));
        let text = String::from_utf8(bytes).expect("json");
        assert!(!text.contains("alice") && !text.contains("bob"), "{text}");
        assert_eq!(batch.signals.len(), 2);
        let s5 = &batch.signals[0];
        assert_eq!((s5.failures, s5.passwords, s5.logins), (12, Passwords::Many, 1));
        let s6 = &batch.signals[1];
        assert_eq!((s6.failures, s6.passwords, s6.logins), (4, Passwords::Unknown, 2));
        assert!(a.drain(Timestamp(1_000_900), &id).is_none(), "drained once");
    }

    #[test]
    fn success_own_and_private_addresses_are_never_reported() {
        let mut a = Aggregator::new();
        let id = Identity::generate().expect("key");
        a.set_own(&[ip("198.51.100.1")]);
        a.failure(ip("198.51.100.1"), P::Imap, b"", b"", 1, Timestamp(600));
        a.failure(ip("10.0.0.1"), P::Imap, b"", b"", 1, Timestamp(600));
        a.failure(ip("203.0.113.7"), P::Imap, b"", b"", 1, Timestamp(600));
        a.success(ip("203.0.113.7"), Timestamp(700));
        a.failure(ip("203.0.113.7"), P::Imap, b"", b"", 1, Timestamp(800));
        assert!(a.drain(Timestamp(2000), &id).is_some_and(|(b, _, _)| b.signals.is_empty()));
        assert_eq!(a.stats().withheld_own, 2);
        // Thirty days later the success no longer exempts it.
        let later = 700 + SUCCESS_MEMORY_SECS;
        a.failure(ip("203.0.113.7"), P::Imap, b"", b"", 1, Timestamp(later));
        let (b, _, _) = a.drain(Timestamp(later + 1200), &id).expect("bucket");
        assert_eq!(b.signals.len(), 1);
    }

    #[test]
    fn tables_stay_bounded() {
        let mut a = Aggregator::new();
        for i in 0..u32::try_from(MAX_CELLS_PER_BUCKET + 10).expect("fits") {
            a.failure(IpAddr::from(std::net::Ipv4Addr::from(0x0b00_0000 + i)), P::Imap, b"", b"", 1, Timestamp(0));
        }
        assert_eq!(a.stats().dropped_cells, 10);
        // Late: two buckets behind the newest.
        a.failure(ip("203.0.113.1"), P::Imap, b"", b"", 1, Timestamp(1200));
        a.failure(ip("203.0.113.1"), P::Imap, b"", b"", 1, Timestamp(0 - 1));
        assert_eq!(a.stats().late, 1);
        for b in 3..20 {
            a.failure(ip("203.0.113.1"), P::Imap, b"", b"", 1, Timestamp(b * BUCKET_SECS));
        }
        assert_eq!(a.open.len(), MAX_UNDRAINED_BUCKETS);
        for i in 0..=u32::try_from(MAX_SUCCESS_ADDRESSES).expect("fits") {
            a.success(IpAddr::from(std::net::Ipv4Addr::from(0x0b00_0000 + i)), Timestamp(i64::from(i)));
        }
        assert!(a.success.len() <= MAX_SUCCESS_ADDRESSES);
        assert!(a.stats().success_evicted > 0);
        let id = Identity::generate().expect("key");
        let (_, b1, _) = a.seal(Vec::new(), Timestamp(5), &id);
        let (_, b2, _) = a.seal(Vec::new(), Timestamp(5), &id);
        let s1: Batch = serde_json::from_slice(&b1).expect("json");
        let s2: Batch = serde_json::from_slice(&b2).expect("json");
        assert!(s2.seq > s1.seq && s1.id != s2.id);
    }
}
