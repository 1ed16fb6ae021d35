//! The hub's core, without I/O: admission of signed batches (signature,
//! replay window, rate limits, key registration), per-address evidence,
//! scoring, listing, versions and deltas, delisting requests. The HTTP
//! server in [`super::hub`] and the simulator drive this same code; time is
//! always passed in.
//!
//! The listing rule is in the [`super`] module docs; its constants are
//! here. Every table is bounded by a const below, with its eviction rule.

use super::identity::KeyId;
use super::wire::{self, Addr, BUCKET_SECS, Batch, Entry, List, Passwords, Signal};
use crate::clock::Timestamp;
use crate::protect::net::{Cidr, not_public};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Largest batch body accepted: [`super::signals::MAX_SIGNALS_PER_BATCH`]
/// signals at ~110 bytes, with room. Larger bodies are refused unread.
pub const MAX_BATCH_BYTES: usize = 256 * 1024;
/// A batch's `created` must be within this of the hub's clock, either way.
pub const REPLAY_WINDOW_SECS: i64 = 900;
/// Reports older than this are forgotten (decay has made them ~0.4 %).
pub const EVIDENCE_MAX_AGE_SECS: i64 = 48 * 3600;
/// Half-life of a report's weight, counted from the end of its bucket.
pub const HALF_LIFE_SECS: i64 = 6 * 3600;
/// A key carries no weight until this long after its first batch.
pub const MIN_KEY_AGE_SECS: i64 = 86_400;
/// Weight of a key with no corroborated reports yet.
pub const TRUST_START: f64 = 0.25;
/// Trust a key gains each time an address it reported gets listed.
pub const TRUST_STEP: f64 = 0.25;
/// Score needed to list.
pub const LIST_SCORE: f64 = 1.8;
/// Distinct reporter networks (client /24 or /48) needed to list.
pub const MIN_NETWORKS: usize = 3;
/// How long a listing lasts unless renewed; it is renewed (and re-sent)
/// when the rule still holds and less than half of this remains.
pub const LISTING_TTL_SECS: i64 = 24 * 3600;
/// Token bucket per key: this many batches at once...
pub const RATE_BURST: f64 = 6.0;
/// ...refilled at one per this many seconds (a batch per bucket, plus
/// retries).
pub const RATE_REFILL_SECS: f64 = 100.0;
/// New keys accepted per client network per day; more are refused (key
/// churn and many fake instances in one network).
pub const NEW_KEYS_PER_NETWORK_PER_DAY: u16 = 4;
/// Keys remembered. When full, keys silent for 30 days go; if none, new
/// keys are refused until some do.
pub const MAX_REPORTERS: usize = 100_000;
/// Addresses with evidence. When full, decayed reports are pruned; if still
/// full, signals about new addresses are ignored (counted).
pub const MAX_TRACKED: usize = 200_000;
/// Reports kept per address (one per key). When full, the oldest report is
/// replaced.
pub const MAX_REPORTS_PER_ADDR: usize = 64;
/// Listings held. When full, new listings wait (counted) until some lapse.
pub const MAX_LISTED: usize = 100_000;
/// Versions whose deltas are kept (a day at one change per minute). A
/// client further behind gets the full list.
pub const MAX_DELTAS: usize = 1440;
/// Batch IDs remembered, within the replay window; when full the oldest go
/// (sequence numbers still catch replays).
pub const MAX_RECENT_IDS: usize = 200_000;
/// Networks tracked for key registrations and delisting requests; cleared
/// daily, and refused beyond this within a day.
pub const MAX_NETWORKS_TRACKED: usize = 65_536;
/// Delisting requests per requester network per day.
pub const DELIST_PER_NETWORK_PER_DAY: u16 = 10;
/// Canary and allowlist ranges.
pub const MAX_RANGES: usize = 4096;
const DAY: i64 = 86_400;

/// A reporter's network: its submitting address with the host part
/// cleared (/24 for IPv4, /48 for IPv6).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Net(IpAddr);

impl Net {
    pub fn of(ip: IpAddr) -> Net {
        match ip.to_canonical() {
            IpAddr::V4(a) => Net(IpAddr::V4(Ipv4Addr::from(u32::from(a) & 0xffff_ff00))),
            IpAddr::V6(a) => Net(IpAddr::V6(Ipv6Addr::from(u128::from(a) & !((1u128 << 80) - 1)))),
        }
    }
}

/// Why a batch or request was refused. Each maps to one HTTP status.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Reject {
    #[error("body larger than {MAX_BATCH_BYTES} bytes")]
    TooLarge,
    #[error("malformed: {0}")]
    Malformed(String),
    #[error("signature does not verify")]
    BadSignature,
    #[error("replay: {0}")]
    Replay(&'static str),
    #[error("rate limited")]
    RateLimited,
    #[error("key refused: {0}")]
    KeyRefused(&'static str),
}

#[derive(Clone, Debug, Serialize, Deserialize)]
struct Reporter {
    first_seen: i64,
    last_seen: i64,
    last_seq: u64,
    trust: f64,
    /// Reported a canary or allowlisted address: weight zero for good.
    zeroed: bool,
    tokens: f64,
    tokens_at: i64,
}

#[derive(Clone, Copy, Debug, Serialize, Deserialize)]
struct Report {
    key: KeyId,
    net: Net,
    bucket: i64,
    strength: f64,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
struct Delta {
    version: u64,
    added: Vec<Entry>,
    removed: Vec<Addr>,
}

/// Counters for `/healthz` and the simulator.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EngineStats {
    pub accepted: u64,
    pub replays: u64,
    pub bad_signatures: u64,
    pub malformed: u64,
    pub rate_limited: u64,
    pub keys_refused: u64,
    pub zeroed_keys: u64,
    pub ignored_signals: u64,
    pub untracked: u64,
    pub listings_waiting: u64,
    pub delist_requests: u64,
}

/// What the hub operator configures.
#[derive(Clone, Debug)]
pub struct Ranges {
    /// Decoys no honest instance ever sees a login from.
    pub canaries: Vec<Cidr>,
    /// Addresses never listed.
    pub allow: Vec<Cidr>,
    /// [`MIN_KEY_AGE_SECS`] unless a test or a private hub says otherwise.
    pub min_key_age_secs: i64,
}

impl Default for Ranges {
    fn default() -> Self {
        Ranges { canaries: Vec::new(), allow: Vec::new(), min_key_age_secs: MIN_KEY_AGE_SECS }
    }
}

/// The hub's state; see the module docs.
#[derive(Serialize, Deserialize)]
pub struct Engine {
    #[serde(skip)]
    ranges: Ranges,
    /// Invariant: at most [`MAX_REPORTERS`].
    reporters: HashMap<KeyId, Reporter>,
    /// Invariant: at most [`MAX_TRACKED`] addresses, each with at most
    /// [`MAX_REPORTS_PER_ADDR`] reports, one per key.
    evidence: HashMap<Addr, Vec<Report>>,
    /// Addresses with new evidence since the last tick.
    dirty: Vec<Addr>,
    /// Invariant: at most [`MAX_LISTED`].
    listed: BTreeMap<Addr, Entry>,
    /// Delisting requests: evidence up to this time no longer counts.
    delisted: HashMap<Addr, i64>,
    version: u64,
    /// Invariant: at most [`MAX_DELTAS`], consecutive versions ending at
    /// `version`.
    deltas: VecDeque<Delta>,
    /// Batch IDs seen, with `created`. Invariant: at most
    /// [`MAX_RECENT_IDS`].
    recent_ids: HashMap<[u8; 16], i64>,
    /// Per network and day: (day, new keys, delisting requests).
    networks: HashMap<Net, (i64, u16, u16)>,
    stats: EngineStats,
}

impl Engine {
    pub fn new(ranges: Ranges) -> Engine {
        Engine {
            ranges,
            reporters: HashMap::new(),
            evidence: HashMap::new(),
            dirty: Vec::new(),
            listed: BTreeMap::new(),
            delisted: HashMap::new(),
            version: 0,
            deltas: VecDeque::new(),
            recent_ids: HashMap::new(),
            networks: HashMap::new(),
            stats: EngineStats::default(),
        }
    }

    /// Restores a snapshot written by [`Engine::snapshot`].
    pub fn restore(bytes: &[u8], ranges: Ranges) -> Result<Engine, postcard::Error> {
        let mut e: Engine = postcard::from_bytes(bytes)?;
        e.ranges = ranges;
        Ok(e)
    }

    pub fn snapshot(&self) -> Result<Vec<u8>, postcard::Error> {
        postcard::to_stdvec(self)
    }

    pub fn stats(&self) -> EngineStats {
        self.stats
    }

    pub fn version(&self) -> u64 {
        self.version
    }

    pub fn listed_len(&self) -> usize {
        self.listed.len()
    }

    pub fn is_listed(&self, a: Addr) -> bool {
        self.listed.contains_key(&a)
    }

    pub fn reporters(&self) -> usize {
        self.reporters.len()
    }

    /// The last sequence number accepted from `key`.
    pub fn last_seq(&self, key: &KeyId) -> Option<u64> {
        self.reporters.get(key).map(|r| r.last_seq)
    }

    /// Raises a key's last sequence number (from the hub's write-through
    /// table after a crash).
    pub fn note_seq(&mut self, key: KeyId, seq: u64) {
        if let Some(r) = self.reporters.get_mut(&key) {
            r.last_seq = r.last_seq.max(seq);
        }
    }

    /// Admits one batch: `body` as received, `sig` its signature, `from`
    /// the submitting address (its network is the reporter's network).
    /// Nothing changes unless the batch is accepted.
    pub fn submit(&mut self, body: &[u8], sig: &[u8], from: IpAddr, now: Timestamp) -> Result<(KeyId, u64, usize), Reject> {
        let r = self.admit(body, sig, from, now);
        match &r {
            Ok(_) => self.stats.accepted += 1,
            Err(Reject::TooLarge | Reject::Malformed(_)) => self.stats.malformed += 1,
            Err(Reject::BadSignature) => self.stats.bad_signatures += 1,
            Err(Reject::Replay(_)) => self.stats.replays += 1,
            Err(Reject::RateLimited) => self.stats.rate_limited += 1,
            Err(Reject::KeyRefused(_)) => self.stats.keys_refused += 1,
        }
        r
    }

    fn admit(&mut self, body: &[u8], sig: &[u8], from: IpAddr, now: Timestamp) -> Result<(KeyId, u64, usize), Reject> {
        if body.len() > MAX_BATCH_BYTES {
            return Err(Reject::TooLarge);
        }
        let batch: Batch = serde_json::from_slice(body).map_err(|e| Reject::Malformed(e.to_string()))?;
        if batch.v != wire::FORMAT {
            return Err(Reject::Malformed(format!("format {} (this hub reads {})", batch.v, wire::FORMAT)));
        }
        if batch.signals.len() > super::signals::MAX_SIGNALS_PER_BATCH {
            return Err(Reject::Malformed("too many signals".into()));
        }
        let key = KeyId::parse(&batch.key).ok_or_else(|| Reject::Malformed("key is not 64 hex digits".into()))?;
        let id: [u8; 16] = parse_id(&batch.id).ok_or_else(|| Reject::Malformed("id is not 32 hex digits".into()))?;
        if !key.verify(body, sig) {
            return Err(Reject::BadSignature);
        }
        if (batch.created - now.0).abs() > REPLAY_WINDOW_SECS {
            return Err(Reject::Replay("created outside the hub's window"));
        }
        if self.recent_ids.contains_key(&id) {
            return Err(Reject::Replay("batch id already seen"));
        }
        let net = Net::of(from);
        match self.reporters.get(&key) {
            Some(r) if batch.seq <= r.last_seq => return Err(Reject::Replay("sequence number not above the last accepted")),
            Some(_) => {}
            None => self.register(key, net, now)?,
        }
        let rep = self.reporters.get_mut(&key).expect("registered above");
        rep.tokens = (rep.tokens + secs(now.0 - rep.tokens_at) / RATE_REFILL_SECS).min(RATE_BURST);
        rep.tokens_at = now.0;
        if rep.tokens < 1.0 {
            return Err(Reject::RateLimited);
        }
        // Accepted from here on.
        rep.tokens -= 1.0;
        rep.last_seq = batch.seq;
        rep.last_seen = now.0;
        self.remember_id(id, batch.created, now);
        let mut used = 0;
        for s in &batch.signals {
            if self.take(key, net, s, now) {
                used += 1;
            } else {
                self.stats.ignored_signals += 1;
            }
        }
        Ok((key, batch.seq, used))
    }

    fn register(&mut self, key: KeyId, net: Net, now: Timestamp) -> Result<(), Reject> {
        if self.reporters.len() >= MAX_REPORTERS {
            self.reporters.retain(|_, r| now.0 - r.last_seen < 30 * DAY);
            if self.reporters.len() >= MAX_REPORTERS {
                return Err(Reject::KeyRefused("the hub holds as many keys as it can"));
            }
        }
        let n = self.network(net, now).ok_or(Reject::KeyRefused("too many networks today"))?;
        if n.1 >= NEW_KEYS_PER_NETWORK_PER_DAY {
            return Err(Reject::KeyRefused("too many new keys from this network today"));
        }
        n.1 += 1;
        self.reporters.insert(
            key,
            Reporter {
                first_seen: now.0,
                last_seen: now.0,
                last_seq: 0,
                trust: TRUST_START,
                zeroed: false,
                tokens: RATE_BURST,
                tokens_at: now.0,
            },
        );
        Ok(())
    }

    /// Today's counters of a network; `None` if the table is full.
    fn network(&mut self, net: Net, now: Timestamp) -> Option<&mut (i64, u16, u16)> {
        let day = now.0.div_euclid(DAY);
        if self.networks.len() >= MAX_NETWORKS_TRACKED && !self.networks.contains_key(&net) {
            self.networks.retain(|_, n| n.0 == day);
            if self.networks.len() >= MAX_NETWORKS_TRACKED {
                return None;
            }
        }
        let n = self.networks.entry(net).or_insert((day, 0, 0));
        if n.0 != day {
            *n = (day, 0, 0);
        }
        Some(n)
    }

    fn remember_id(&mut self, id: [u8; 16], created: i64, now: Timestamp) {
        if self.recent_ids.len() >= MAX_RECENT_IDS {
            self.recent_ids.retain(|_, c| (now.0 - *c).abs() <= REPLAY_WINDOW_SECS);
            if self.recent_ids.len() >= MAX_RECENT_IDS {
                let mut v: Vec<i64> = self.recent_ids.values().copied().collect();
                let quarter = v.len() / 4;
                let (_, &mut cut, _) = v.select_nth_unstable(quarter);
                self.recent_ids.retain(|_, c| *c > cut);
            }
        }
        self.recent_ids.insert(id, created);
    }

    /// Records one signal; `false` if it is ignored.
    fn take(&mut self, key: KeyId, net: Net, s: &Signal, now: Timestamp) -> bool {
        if s.bucket.rem_euclid(BUCKET_SECS) != 0
            || s.bucket > now.0
            || now.0 - s.bucket > EVIDENCE_MAX_AGE_SECS
            || not_public(s.ip.0).is_some()
        {
            return false;
        }
        if self.ranges.canaries.iter().chain(&self.ranges.allow).any(|c| c.covers(s.ip.0)) {
            let r = self.reporters.get_mut(&key).expect("the submitting key is registered");
            if !r.zeroed {
                r.zeroed = true;
                self.stats.zeroed_keys += 1;
            }
            return false;
        }
        let strength = strength(s);
        if !self.evidence.contains_key(&s.ip) && self.evidence.len() >= MAX_TRACKED {
            self.prune(now);
            if self.evidence.len() >= MAX_TRACKED {
                self.stats.untracked += 1;
                return false;
            }
        }
        let reports = self.evidence.entry(s.ip).or_default();
        if let Some(r) = reports.iter_mut().find(|r| r.key == key) {
            if s.bucket > r.bucket || (s.bucket == r.bucket && strength > r.strength) {
                *r = Report { key, net, bucket: s.bucket, strength };
            }
        } else if reports.len() < MAX_REPORTS_PER_ADDR {
            reports.push(Report { key, net, bucket: s.bucket, strength });
        } else if let Some(oldest) = reports.iter_mut().min_by_key(|r| r.bucket) {
            *oldest = Report { key, net, bucket: s.bucket, strength };
        }
        self.dirty.push(s.ip);
        true
    }

    fn prune(&mut self, now: Timestamp) {
        self.evidence.retain(|_, v| {
            v.retain(|r| now.0 - r.bucket <= EVIDENCE_MAX_AGE_SECS);
            !v.is_empty()
        });
        self.delisted.retain(|_, t| now.0 - *t <= EVIDENCE_MAX_AGE_SECS);
    }

    /// Weight of a key at `now`.
    fn weight(&self, key: &KeyId, now: Timestamp) -> f64 {
        match self.reporters.get(key) {
            Some(r) if !r.zeroed && now.0 - r.first_seen >= self.ranges.min_key_age_secs => r.trust,
            _ => 0.0,
        }
    }

    /// (score, networks) of an address at `now`.
    pub fn score(&self, a: Addr, now: Timestamp) -> (f64, usize) {
        let Some(reports) = self.evidence.get(&a) else { return (0.0, 0) };
        let since = self.delisted.get(&a).copied().unwrap_or(i64::MIN);
        let mut per_net: Vec<(Net, f64)> = Vec::new();
        for r in reports {
            let end = r.bucket + BUCKET_SECS;
            if end <= since {
                continue;
            }
            let c = self.weight(&r.key, now) * r.strength * decay(now.0 - end);
            if c <= 0.0 {
                continue;
            }
            match per_net.iter_mut().find(|(n, _)| *n == r.net) {
                Some((_, best)) => *best = best.max(c),
                None => per_net.push((r.net, c)),
            }
        }
        (per_net.iter().map(|(_, c)| c).sum(), per_net.len())
    }

    /// Re-scores addresses with new evidence, renews and expires listings,
    /// and publishes a new version if anything changed. Returns whether it
    /// did. Call about once a minute.
    pub fn tick(&mut self, now: Timestamp) -> bool {
        let mut added = Vec::new();
        let mut removed = Vec::new();
        let mut dirty = std::mem::take(&mut self.dirty);
        dirty.sort_unstable();
        dirty.dedup();
        // Renewals are due for listings past half their life.
        let renew: Vec<Addr> = self.listed.values().filter(|e| e.expires - now.0 < LISTING_TTL_SECS / 2).map(|e| e.ip).collect();
        dirty.extend(renew);
        for a in dirty {
            let (score, nets) = self.score(a, now);
            if score < LIST_SCORE || nets < MIN_NETWORKS {
                continue;
            }
            let entry = Entry { ip: a, expires: now.0 + LISTING_TTL_SECS, networks: u16::try_from(nets).unwrap_or(u16::MAX) };
            let full = self.listed.len() >= MAX_LISTED;
            match self.listed.get_mut(&a) {
                Some(e) if e.expires - now.0 >= LISTING_TTL_SECS / 2 => {}
                Some(e) => {
                    *e = entry;
                    added.push(entry);
                }
                None if full => self.stats.listings_waiting += 1,
                None => {
                    self.listed.insert(a, entry);
                    added.push(entry);
                    self.corroborate(a, now);
                }
            }
        }
        self.listed.retain(|a, e| {
            let keep = e.expires > now.0;
            if !keep {
                removed.push(*a);
            }
            keep
        });
        if now.0.rem_euclid(3600) < 60 {
            self.prune(now);
        }
        self.publish(added, removed)
    }

    /// Every weighted key that reported a newly listed address gains trust.
    fn corroborate(&mut self, a: Addr, now: Timestamp) {
        let keys: Vec<KeyId> = self.evidence.get(&a).map(|v| v.iter().map(|r| r.key).collect()).unwrap_or_default();
        for k in keys {
            if self.weight(&k, now) > 0.0 {
                let r = self.reporters.get_mut(&k).expect("weighted keys are registered");
                r.trust = (r.trust + TRUST_STEP).min(1.0);
            }
        }
    }

    fn publish(&mut self, added: Vec<Entry>, removed: Vec<Addr>) -> bool {
        if added.is_empty() && removed.is_empty() {
            return false;
        }
        self.version += 1;
        if self.deltas.len() >= MAX_DELTAS {
            self.deltas.pop_front();
        }
        self.deltas.push_back(Delta { version: self.version, added, removed });
        true
    }

    /// The list for a client holding version `since`: a delta when the
    /// history reaches back to it, else the full list.
    pub fn list(&self, since: Option<u64>, now: Timestamp) -> List {
        let full = || List {
            v: wire::FORMAT,
            version: self.version,
            since: None,
            generated: now.0,
            added: self.listed.values().copied().collect(),
            removed: Vec::new(),
        };
        let Some(since) = since else { return full() };
        let oldest = self.deltas.front().map_or(self.version, |d| d.version - 1);
        if since > self.version || since < oldest {
            return full();
        }
        let mut net: BTreeMap<Addr, Option<Entry>> = BTreeMap::new();
        for d in self.deltas.iter().filter(|d| d.version > since) {
            for a in &d.removed {
                net.insert(*a, None);
            }
            for e in &d.added {
                net.insert(e.ip, Some(*e));
            }
        }
        let mut l =
            List { v: wire::FORMAT, version: self.version, since: Some(since), generated: now.0, added: Vec::new(), removed: Vec::new() };
        for (a, e) in net {
            match e {
                Some(e) => l.added.push(e),
                None => l.removed.push(a),
            }
        }
        l
    }

    /// A public delisting request for `a` from `from`: the listing goes at
    /// once and only reports from buckets ending after now can list it
    /// again. `Ok(false)` if it was not listed.
    pub fn delist(&mut self, a: Addr, from: IpAddr, now: Timestamp) -> Result<bool, Reject> {
        let n = self.network(Net::of(from), now).ok_or(Reject::RateLimited)?;
        if n.2 >= DELIST_PER_NETWORK_PER_DAY {
            return Err(Reject::RateLimited);
        }
        n.2 += 1;
        self.stats.delist_requests += 1;
        if self.listed.remove(&a).is_none() {
            return Ok(false);
        }
        if self.evidence.contains_key(&a) {
            self.delisted.insert(a, now.0);
        }
        self.publish(Vec::new(), vec![a]);
        Ok(true)
    }
}

/// How much one signal says: many passwords or logins is a brute force;
/// several failures from logs (passwords unknown) half as much; a single
/// password for a single login is what a stale client looks like, a
/// quarter.
fn strength(s: &Signal) -> f64 {
    if s.passwords >= Passwords::Few || s.logins >= 2 {
        1.0
    } else if s.passwords == Passwords::Unknown && s.failures >= 2 {
        0.5
    } else {
        0.25
    }
}

fn decay(age: i64) -> f64 {
    0.5f64.powf(secs(age.max(0)) / secs(HALF_LIFE_SECS))
}

#[expect(clippy::cast_precision_loss, reason = "spans of time are far below 2^52 seconds")]
fn secs(s: i64) -> f64 {
    s as f64
}

fn parse_id(s: &str) -> Option<[u8; 16]> {
    let k = KeyId::parse(&format!("{s:0>64}"))?;
    if s.len() != 32 {
        return None;
    }
    k.0[16..].try_into().ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::peer::identity::Identity;
    use crate::peer::signals::Aggregator;

    fn strong(ip: &str, bucket: i64) -> Signal {
        Signal { ip: Addr::parse(ip).expect("ip"), bucket, proto: wire::Proto::Imap, failures: 9, passwords: Passwords::Many, logins: 3 }
    }

    fn from(n: u8) -> IpAddr {
        IpAddr::V4(Ipv4Addr::new(11, n, 0, 1))
    }

    #[test]
    fn rate_limit_snapshot_and_old_clients_get_the_full_list() {
        let mut e = Engine::new(Ranges { min_key_age_secs: 0, ..Ranges::default() });
        let id = Identity::generate().expect("key");
        let mut a = Aggregator::new();
        let t = 1_800_000_000;
        let mut limited = 0;
        for i in 0..10 {
            let (_, body, sig) = a.seal(Vec::new(), Timestamp(t), &id);
            if e.submit(&body, &sig, from(1), Timestamp(t + i)) == Err(Reject::RateLimited) {
                limited += 1;
            }
        }
        assert_eq!(limited, 4, "a burst of {RATE_BURST} then one per {RATE_REFILL_SECS} s");
        // Eight new keys in eight networks list an address; trust follows.
        for n in 0..8 {
            let id = Identity::generate().expect("key");
            let (_, body, sig) = Aggregator::new().seal(vec![strong("203.0.113.9", t - 1200)], Timestamp(t), &id);
            e.submit(&body, &sig, from(10 + n), Timestamp(t)).expect("accepted");
        }
        assert!(e.tick(Timestamp(t)));
        assert!(e.is_listed(Addr::parse("203.0.113.9").expect("ip")));
        let snap = e.snapshot().expect("snapshot");
        let r = Engine::restore(&snap, Ranges::default()).expect("restore");
        assert_eq!((r.version(), r.listed_len(), r.last_seq(&id.id())), (e.version(), 1, e.last_seq(&id.id())));
        assert!(r.list(Some(0), Timestamp(t)).since.is_some(), "the history reaches version 0");
        assert!(r.list(Some(99), Timestamp(t)).since.is_none(), "an unknown version gets the full list");
        // The listing lapses when nothing renews it.
        e.tick(Timestamp(t + LISTING_TTL_SECS + 1));
        assert_eq!(e.listed_len(), 0);
        assert_eq!(e.list(Some(1), Timestamp(t)).removed.len(), 1);
    }

    #[test]
    fn canary_zeroes_a_reporter_and_bad_input_is_refused() {
        let canary = Cidr::parse("77.77.0.0/16").expect("cidr");
        let mut e = Engine::new(Ranges { canaries: vec![canary], allow: Vec::new(), min_key_age_secs: 0 });
        let t = 1_800_000_000;
        for n in 0..8 {
            let id = Identity::generate().expect("key");
            let mut s = vec![strong("203.0.113.9", t - 1200)];
            if n == 0 {
                s.push(strong("77.77.1.1", t - 1200));
            }
            let (_, body, sig) = Aggregator::new().seal(s, Timestamp(t), &id);
            e.submit(&body, &sig, from(n), Timestamp(t)).expect("accepted");
        }
        e.tick(Timestamp(t));
        assert_eq!(e.stats().zeroed_keys, 1);
        assert!(!e.is_listed(Addr::parse("203.0.113.9").expect("ip")), "seven weighted networks are not enough");
        assert!(matches!(e.submit(b"{", &[0; 64], from(1), Timestamp(t)), Err(Reject::Malformed(_))));
        assert!(matches!(e.submit(&vec![b' '; MAX_BATCH_BYTES + 1], &[0; 64], from(1), Timestamp(t)), Err(Reject::TooLarge)));
        let id = Identity::generate().expect("key");
        let (_, body, _) = Aggregator::new().seal(Vec::new(), Timestamp(t), &id);
        assert_eq!(e.submit(&body, &[0; 64], from(1), Timestamp(t)), Err(Reject::BadSignature));
        let (_, body, sig) = Aggregator::new().seal(Vec::new(), Timestamp(t - REPLAY_WINDOW_SECS - 1), &id);
        assert!(matches!(e.submit(&body, &sig, from(1), Timestamp(t)), Err(Reject::Replay(_))));
    }
}
