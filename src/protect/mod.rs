//! Local protection: detects password guessing per address and keeps the
//! blocklist that the Dovecot auth policy server ([`policy`]) answers from.
//! Works with no network at all.
//!
//! Evidence comes from two places: Dovecot's policy `report` requests
//! (failures with a truncated password hash, successes) and the logs
//! (Dovecot `auth failed` lines, Postfix SASL failures, successful logins),
//! fed by the ingest pipeline through [`observe_log`]. The rule is in
//! [`ProtectConfig`]. A failure seen by both sources is counted once: the
//! window keeps the two counts apart and uses the larger.
//!
//! Bounds: every table is allocated at start-up with the capacities of
//! `limits` (`PROTECT_*`) and has a documented eviction rule, so recording a
//! failure or answering a policy request never allocates. Time is passed
//! in; only the policy server's thread reads the clock.
//!
//! What must survive a restart, the blocks in force, the addresses with a
//! recent successful login and the admin's allowlist, is saved in the store
//! ([`persist`]) when it changes: at once for an admin's action, within a
//! minute for the detector's own decisions, and at shutdown. The sliding
//! window's counts are not saved: they matter for an hour at most.

pub mod config;
pub mod dovecot_conf;
pub mod net;
pub mod persist;
pub mod policy;
pub mod postfix_policy;
mod table;

pub use config::ProtectConfig;
pub use net::IpKey;

use crate::clock::Timestamp;
use crate::limits::{
    PROTECT_MAX_HASHES_PER_IP, PROTECT_MAX_IPS, PROTECT_MAX_LOGINS_PER_IP, PROTECT_MAX_SUCCESS_IPS, PROTECT_WINDOW_BUCKETS,
};
use crate::track::Proto;
use net::{Cidr, NotPublic};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

/// The detector shared by the policy server, the ingest loop and the UI.
/// Each holds the lock for a few microseconds.
pub type Shared = Arc<Mutex<Protect>>;

/// Locks `s`; a panic elsewhere while holding it leaves consistent counters.
pub fn lock(s: &Shared) -> std::sync::MutexGuard<'_, Protect> {
    s.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Where a failure was seen.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Source {
    /// A Dovecot policy `report` with `success=false`.
    Policy,
    /// A log line.
    Log,
}

/// One observed failure (borrowed from the request or the log line).
#[derive(Clone, Copy, Debug)]
pub struct Failure<'a> {
    pub login: &'a [u8],
    /// Dovecot's truncated password hash (empty when unknown).
    pub pwhash: &'a [u8],
    pub proto: Proto,
    /// Attempts this observation stands for (a log line may say `3 attempts`).
    pub count: u32,
    pub source: Source,
}

/// The answer for an address about to authenticate.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    Allow,
    /// Suspicious: make the client wait this many seconds.
    Delay(u32),
    Reject {
        until: Timestamp,
    },
}

/// Why an address is exempt from automatic blocking.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Exempt {
    Loopback,
    Reserved,
    /// In the allowlist or `mynetworks`.
    Listed,
    /// A successful login within `success_days`.
    RecentLogin,
}

/// Which part of the rule tripped.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Reason {
    /// Many failures with several distinct passwords.
    Passwords,
    /// Many distinct logins.
    Logins,
    /// Many failures over several logins, from the logs alone.
    LogFailures,
    /// Blocked by an admin.
    Manual,
}

/// Counts over the window at the moment of a decision.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Evidence {
    pub failures: u32,
    /// Failures per protocol: SMTP, IMAP, POP3, other.
    pub per_proto: [u32; 4],
    pub passwords: u32,
    pub logins: u32,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Block {
    since: Timestamp,
    until: Timestamp,
    reason: Reason,
    evidence: Evidence,
}

/// One blocklist entry as shown to people.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Listed {
    pub ip: String,
    pub since: Timestamp,
    pub until: Timestamp,
    pub reason: Reason,
    pub evidence: Evidence,
}

/// Counters for the UI and metrics.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct ProtectStats {
    pub failures: u64,
    pub exempt_failures: u64,
    pub blocks: u64,
    pub rejected: u64,
    /// Of `rejected`: refused because of the peer network's list.
    pub community_rejected: u64,
    pub delayed: u64,
    pub ip_evictions: u64,
    pub success_evictions: u64,
}

/// `PROTECT_WINDOW_BUCKETS` for time arithmetic.
#[expect(clippy::cast_possible_wrap, reason = "a small constant")]
const BUCKETS: i64 = PROTECT_WINDOW_BUCKETS as i64;

/// Failures of one window bucket, per protocol, by source.
#[derive(Clone, Copy, Debug, Default)]
struct Bucket {
    /// Which window slot (`time / width`) the counts belong to.
    slot: i64,
    policy: [u16; 4],
    logs: [u16; 4],
}

/// A hashed login or password hash and when it was last seen.
#[derive(Clone, Copy, Debug)]
struct Seen {
    hash: u64,
    at: i64,
}

#[derive(Clone, Debug, Default)]
struct IpState {
    buckets: [Bucket; PROTECT_WINDOW_BUCKETS],
    hashes: heapless::Vec<Seen, PROTECT_MAX_HASHES_PER_IP>,
    logins: heapless::Vec<Seen, PROTECT_MAX_LOGINS_PER_IP>,
    last: i64,
    block: Option<Block>,
    /// Automatic blocks so far: each doubles the next one's length.
    strikes: u8,
}

impl IpState {
    fn active(&self, now: Timestamp) -> Option<&Block> {
        self.block.as_ref().filter(|b| b.until > now)
    }
}

/// Adds `hash` seen at `at` to a bounded set; when full the entry seen
/// longest ago is replaced.
fn remember<const N: usize>(set: &mut heapless::Vec<Seen, N>, hash: u64, at: i64) {
    if let Some(s) = set.iter_mut().find(|s| s.hash == hash) {
        s.at = s.at.max(at);
        return;
    }
    if let Err(s) = set.push(Seen { hash, at })
        && let Some(old) = set.iter_mut().min_by_key(|s| s.at)
    {
        *old = s;
    }
}

/// FNV-1a of ASCII-lowercased bytes (`Bob` and `bob` are one login).
fn fold_hash(b: &[u8]) -> u64 {
    let mut h = crate::hash::Fnv::default();
    for c in b {
        h.write(&[c.to_ascii_lowercase()]);
    }
    h.finish()
}

/// The detector and blocklist. See the module documentation.
#[derive(Debug)]
pub struct Protect {
    cfg: ProtectConfig,
    nets: Vec<Cidr>,
    /// Invariant: `ips.len() <= PROTECT_MAX_IPS`.
    ips: table::Table<IpState>,
    /// Last successful login per address. Invariant: `len <= PROTECT_MAX_SUCCESS_IPS`.
    ok: HashMap<IpKey, Timestamp>,
    /// The admin's allowlist (edited on the blocklist page, saved in the
    /// store), on top of `cfg.allowlist`; `nets` holds both, parsed.
    admin_allow: Vec<String>,
    /// Something worth saving changed since [`Protect::take_dirty`].
    dirty: bool,
    /// The peer network, when the run has one: failures feed its signals,
    /// and its community list refuses addresses local evidence has not.
    peer: Option<PeerLink>,
    /// When the last policy `report` failure arrived: while reports come
    /// in, they alone feed the peer signals (log lines of the same
    /// failures would count them twice).
    last_policy: i64,
    stats: ProtectStats,
}

/// The peer network's parts that protection uses.
#[derive(Clone)]
pub struct PeerLink {
    pub aggregator: Arc<Mutex<crate::peer::Aggregator>>,
    pub community: Arc<crate::peer::Community>,
}

impl std::fmt::Debug for PeerLink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PeerLink")
    }
}

impl Protect {
    /// # Errors
    /// The configuration field that is not acceptable.
    pub fn new(cfg: ProtectConfig) -> Result<Protect, crate::settings::Invalid> {
        cfg.validate()?;
        let nets = cfg.networks()?;
        Ok(Protect {
            cfg,
            nets,
            ips: table::Table::with_capacity(PROTECT_MAX_IPS),
            ok: HashMap::with_capacity(PROTECT_MAX_SUCCESS_IPS),
            admin_allow: Vec::new(),
            dirty: false,
            peer: None,
            last_policy: i64::MIN,
            stats: ProtectStats::default(),
        })
    }

    /// Connects the peer network (see [`PeerLink`]).
    pub fn set_peer(&mut self, link: Option<PeerLink>) {
        self.peer = link;
    }

    /// The admin's allowlist (addresses and CIDRs), as entered.
    pub fn admin_allowlist(&self) -> &[String] {
        &self.admin_allow
    }

    /// Replaces the admin's allowlist. Automatic blocks of addresses it
    /// now covers end at once (manual ones stay: the admin set both).
    ///
    /// # Errors
    /// An entry that is not an address or CIDR, or too many entries.
    pub fn set_admin_allowlist(&mut self, list: Vec<String>) -> Result<(), crate::settings::Invalid> {
        let extra = config::networks("allowlist", &list)?;
        let mut nets = self.cfg.networks()?;
        nets.extend(extra.iter().copied());
        self.nets = nets;
        self.admin_allow = list;
        for (k, s) in self.ips.iter_mut() {
            if s.block.is_some_and(|b| b.reason != Reason::Manual) && extra.iter().any(|c| c.covers(*k)) {
                s.block = None;
            }
        }
        self.dirty = true;
        Ok(())
    }

    /// True (once) when blocks, recent logins or the allowlist changed
    /// since the last call: time to save ([`persist::save`]).
    pub fn take_dirty(&mut self) -> bool {
        std::mem::take(&mut self.dirty)
    }

    /// Marks the state as unsaved again (a save failed).
    pub fn mark_dirty(&mut self) {
        self.dirty = true;
    }

    pub fn config(&self) -> &ProtectConfig {
        &self.cfg
    }

    pub fn stats(&self) -> ProtectStats {
        self.stats
    }

    fn width(&self) -> i64 {
        (i64::from(self.cfg.window_secs) / BUCKETS).max(1)
    }

    /// Why `k` must not be blocked automatically, if it must not.
    pub fn exempt(&self, k: IpKey, now: Timestamp) -> Option<Exempt> {
        match net::not_public(k) {
            Some(NotPublic::Loopback) if !self.cfg.block_loopback => return Some(Exempt::Loopback),
            Some(NotPublic::Reserved) => return Some(Exempt::Reserved),
            _ => {}
        }
        if self.nets.iter().any(|c| c.covers(k)) {
            return Some(Exempt::Listed);
        }
        let horizon = now.0 - i64::from(self.cfg.success_days) * 86_400;
        if self.ok.get(&k).is_some_and(|t| t.0 > horizon) {
            return Some(Exempt::RecentLogin);
        }
        None
    }

    /// The counts for `k`'s state as of `now`.
    fn evidence(&self, s: &IpState, now: Timestamp) -> Evidence {
        let width = self.width();
        let cur = now.0.div_euclid(width);
        let (mut policy, mut logs) = ([0u32; 4], [0u32; 4]);
        for b in s.buckets.iter().filter(|b| b.slot > cur - BUCKETS && b.slot <= cur) {
            for i in 0..4 {
                policy[i] += u32::from(b.policy[i]);
                logs[i] += u32::from(b.logs[i]);
            }
        }
        let mut per_proto = [0u32; 4];
        for i in 0..4 {
            per_proto[i] = policy[i].max(logs[i]);
        }
        let horizon = now.0 - i64::from(self.cfg.window_secs);
        let recent = |set: &[Seen]| u32::try_from(set.iter().filter(|x| x.at > horizon).count()).unwrap_or(u32::MAX);
        Evidence {
            failures: policy.iter().sum::<u32>().max(logs.iter().sum()),
            per_proto,
            passwords: recent(&s.hashes),
            logins: recent(&s.logins),
        }
    }

    /// The part of the rule that `e` trips, if any.
    fn rule(&self, e: &Evidence) -> Option<Reason> {
        let c = &self.cfg;
        if e.logins >= c.block_logins {
            Some(Reason::Logins)
        } else if e.passwords > 0 {
            (e.failures >= c.block_failures && e.passwords >= c.block_passwords).then_some(Reason::Passwords)
        } else {
            (e.failures >= c.block_failures && e.logins >= c.logs_min_logins).then_some(Reason::LogFailures)
        }
    }

    /// `k`'s state, made room for if new (see `PROTECT_MAX_IPS`).
    fn entry(&mut self, k: IpKey, now: Timestamp) -> &mut IpState {
        if !self.ips.contains_key(&k) && self.ips.len() >= PROTECT_MAX_IPS {
            self.evict(now);
        }
        self.ips.entry(k)
    }

    /// Frees at least one slot: idle, unblocked entries first; then the
    /// unblocked entry seen longest ago; then the block ending first.
    fn evict(&mut self, now: Timestamp) {
        let horizon = now.0 - i64::from(self.cfg.window_secs);
        let before = self.ips.len();
        self.ips.retain(|_, s| s.last > horizon || s.active(now).is_some());
        self.stats.ip_evictions += (before - self.ips.len()) as u64;
        if self.ips.len() < PROTECT_MAX_IPS {
            return;
        }
        let victim = self
            .ips
            .iter()
            .filter(|(_, s)| s.active(now).is_none())
            .min_by_key(|(_, s)| s.last)
            .or_else(|| self.ips.iter().min_by_key(|(_, s)| s.block.map_or(i64::MIN, |b| b.until.0)))
            .map(|(k, _)| *k);
        if let Some(k) = victim {
            self.ips.remove(&k);
            self.stats.ip_evictions += 1;
        }
    }

    /// Records a failure of `k` at `now`; true when `k` is blocked after it.
    pub fn failure(&mut self, k: IpKey, f: &Failure<'_>, now: Timestamp) -> bool {
        if self.exempt(k, now).is_some() {
            self.stats.exempt_failures += 1;
            return false;
        }
        self.stats.failures += 1;
        if f.source == Source::Policy {
            self.last_policy = self.last_policy.max(now.0);
        }
        if let Some(l) = &self.peer
            && (f.source == Source::Policy || now.0.saturating_sub(self.last_policy) > i64::from(self.cfg.window_secs))
        {
            l.aggregator.lock().unwrap_or_else(PoisonError::into_inner).failure(k.addr(), f.proto, f.pwhash, f.login, f.count, now);
        }
        let width = self.width();
        let slot = now.0.div_euclid(width);
        let s = self.entry(k, now);
        let b = &mut s.buckets[usize::try_from(slot.rem_euclid(BUCKETS)).unwrap_or(0)];
        if b.slot < slot {
            *b = Bucket { slot, ..Bucket::default() };
        }
        // A bucket holding a later slot means this failure is older than
        // the window (history read late): it is not counted.
        if b.slot == slot {
            let n = &mut match f.source {
                Source::Policy => &mut b.policy,
                Source::Log => &mut b.logs,
            }[f.proto.index()];
            *n = n.saturating_add(u16::try_from(f.count).unwrap_or(u16::MAX));
        }
        if !f.pwhash.is_empty() {
            remember(&mut s.hashes, fold_hash(f.pwhash), now.0);
        }
        if !f.login.is_empty() {
            remember(&mut s.logins, fold_hash(f.login), now.0);
        }
        s.last = s.last.max(now.0);
        if s.active(now).is_some() {
            return true;
        }
        let Some(s) = self.ips.get(&k) else { return false };
        let e = self.evidence(s, now);
        let Some(reason) = self.rule(&e) else { return false };
        let (base, max) = (i64::from(self.cfg.block_secs), i64::from(self.cfg.block_max_secs));
        let Some(s) = self.ips.get_mut(&k) else { return false };
        let secs = base.saturating_mul(1i64 << s.strikes.min(20)).min(max);
        s.strikes = s.strikes.saturating_add(1);
        s.block = Some(Block { since: now, until: Timestamp(now.0 + secs), reason, evidence: e });
        self.stats.blocks += 1;
        self.dirty = true;
        true
    }

    /// Records a successful login of `k` at `now`: `k` is exempt for
    /// `success_days`, and an automatic block of it ends.
    pub fn success(&mut self, k: IpKey, now: Timestamp) {
        // Never reported to the peer network, whatever the local rule.
        if let Some(l) = &self.peer {
            l.aggregator.lock().unwrap_or_else(PoisonError::into_inner).success(k.addr(), now);
        }
        if self.cfg.success_days == 0 || matches!(self.exempt(k, now), Some(Exempt::Reserved | Exempt::Loopback | Exempt::Listed)) {
            return;
        }
        if !self.ok.contains_key(&k) && self.ok.len() >= PROTECT_MAX_SUCCESS_IPS {
            let horizon = now.0 - i64::from(self.cfg.success_days) * 86_400;
            let before = self.ok.len();
            self.ok.retain(|_, t| t.0 > horizon);
            self.stats.success_evictions += (before - self.ok.len()) as u64;
            if self.ok.len() >= PROTECT_MAX_SUCCESS_IPS
                && let Some(oldest) = self.ok.iter().min_by_key(|(_, t)| **t).map(|(k, _)| *k)
            {
                self.ok.remove(&oldest);
                self.stats.success_evictions += 1;
            }
        }
        // Saved when new, and then once a day: the exemption lasts
        // `success_days`, so a day's precision is enough.
        let t = self.ok.entry(k).or_insert(Timestamp(i64::MIN));
        if now.0.saturating_sub(t.0) >= 86_400 {
            self.dirty = true;
        }
        *t = (*t).max(now);
        if let Some(s) = self.ips.get_mut(&k)
            && s.block.is_some_and(|b| b.reason != Reason::Manual)
        {
            s.block = None;
            self.dirty = true;
        }
    }

    /// The answer for `k` about to authenticate at `now`.
    pub fn check(&mut self, k: IpKey, now: Timestamp) -> Verdict {
        let local = self.ips.get(&k);
        if let Some(b) = local.and_then(|s| s.active(now)) {
            self.stats.rejected += 1;
            return Verdict::Reject { until: b.until };
        }
        if self.exempt(k, now).is_some() {
            return Verdict::Allow;
        }
        // The community list, after the local exemptions: an address that
        // logged in here, the allowlist and private ranges always win.
        if let Some(l) = self.peer.as_ref().and_then(|p| p.community.listed(k.addr(), now)) {
            self.stats.rejected += 1;
            self.stats.community_rejected += 1;
            return Verdict::Reject { until: l.expires };
        }
        let Some(s) = self.ips.get(&k) else { return Verdict::Allow };
        if self.cfg.suspicious_delay_secs == 0 {
            return Verdict::Allow;
        }
        if self.evidence(s, now).failures >= self.cfg.suspicious_failures {
            self.stats.delayed += 1;
            return Verdict::Delay(self.cfg.suspicious_delay_secs);
        }
        Verdict::Allow
    }

    /// Blocks `k` for `secs` from `now` by an admin's decision (also when
    /// it would be exempt from automatic blocks: the admin knows best).
    pub fn block(&mut self, k: IpKey, secs: u32, now: Timestamp) -> Timestamp {
        let until = Timestamp(now.0 + i64::from(secs.max(1)));
        let evidence = self.ips.get(&k).map(|s| self.evidence(s, now)).unwrap_or_default();
        let s = self.entry(k, now);
        s.last = s.last.max(now.0);
        s.block = Some(Block { since: now, until, reason: Reason::Manual, evidence });
        self.dirty = true;
        until
    }

    /// Lifts any block of `k` and forgets its evidence (so the next failure
    /// does not block it again at once). False if `k` was not blocked.
    pub fn unblock(&mut self, k: IpKey, now: Timestamp) -> bool {
        let blocked = self.ips.get(&k).is_some_and(|s| s.active(now).is_some());
        self.ips.remove(&k);
        self.dirty |= blocked;
        blocked
    }

    /// The blocks in force at `now`, newest first.
    pub fn blocked(&self, now: Timestamp) -> Vec<Listed> {
        let mut v: Vec<Listed> = self
            .ips
            .iter()
            .filter_map(|(k, s)| {
                s.active(now).map(|b| Listed { ip: k.to_string(), since: b.since, until: b.until, reason: b.reason, evidence: b.evidence })
            })
            .collect();
        v.sort_by(|a, b| b.since.cmp(&a.since).then_with(|| a.ip.cmp(&b.ip)));
        v
    }

    /// Addresses remembered (failures or blocks) and with recent logins.
    pub fn sizes(&self) -> (usize, usize) {
        (self.ips.len(), self.ok.len())
    }
}

/// Feeds one parsed log line: failed and successful logins. Other lines
/// return before taking the lock; nothing here allocates.
pub fn observe_log(p: &Shared, ev: &crate::parse::Event<'_>, t: Timestamp) {
    use crate::parse::{Daemon, Kind};
    let (ip, fail) = match ev.kind {
        Kind::SaslFailed { client, .. } => {
            (client.addr, Some(Failure { login: b"", pwhash: b"", proto: Proto::Smtp, count: 1, source: Source::Log }))
        }
        Kind::AuthFailed { user, rip: Some(rip), attempts } => {
            let proto = match ev.daemon {
                Daemon::ImapLogin => Proto::Imap,
                Daemon::Pop3Login => Proto::Pop3,
                Daemon::SubmissionLogin => Proto::Smtp,
                _ => Proto::Other,
            };
            (rip, Some(Failure { login: user, pwhash: b"", proto, count: attempts.max(1), source: Source::Log }))
        }
        Kind::Login { rip: Some(rip), .. } => (rip, None),
        Kind::Client { client, sasl_user: Some(_), .. } => (client.addr, None),
        _ => return,
    };
    let Some(k) = IpKey::parse(ip) else { return };
    let mut g = lock(p);
    match fail {
        Some(f) => {
            g.failure(k, &f, t);
        }
        None => g.success(k, t),
    }
}

#[cfg(test)]
mod tests;
