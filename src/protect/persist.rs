//! Saving what protection must not forget across a restart (kv document
//! `protect`): the blocks in force with their evidence and strike count,
//! the addresses with a successful login within `success_days`, and the
//! admin's allowlist. The document is bounded by the tables it comes from
//! (`PROTECT_MAX_IPS` blocks, `PROTECT_MAX_SUCCESS_IPS` logins,
//! `PROTECT_MAX_NETWORKS` allowlist entries).

use super::{Block, Evidence, IpKey, Protect, Reason, Shared, lock};
use crate::clock::Timestamp;
use crate::store::{Store, StoreError};
use serde::{Deserialize, Serialize};
use std::sync::Mutex;

/// The kv document's key.
pub const KEY: &str = "protect";

/// One saved block.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SavedBlock {
    pub ip: String,
    pub since: i64,
    pub until: i64,
    pub reason: Reason,
    pub evidence: Evidence,
    pub strikes: u8,
}

/// The saved state.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Saved {
    pub blocks: Vec<SavedBlock>,
    /// `[address, time of the last successful login]`.
    pub logins: Vec<(String, i64)>,
    pub allowlist: Vec<String>,
}

impl Protect {
    /// What to save, as of `now` (ended blocks and expired logins left out).
    pub fn saved(&self, now: Timestamp) -> Saved {
        let blocks = self
            .ips
            .iter()
            .filter_map(|(k, s)| {
                s.active(now).map(|b| SavedBlock {
                    ip: k.to_string(),
                    since: b.since.0,
                    until: b.until.0,
                    reason: b.reason,
                    evidence: b.evidence,
                    strikes: s.strikes,
                })
            })
            .collect();
        let horizon = now.0 - i64::from(self.cfg.success_days) * 86_400;
        let logins = self.ok.iter().filter(|(_, t)| t.0 > horizon).map(|(k, t)| (k.to_string(), t.0)).collect();
        Saved { blocks, logins, allowlist: self.admin_allow.clone() }
    }

    /// Takes back a saved state at start-up. Entries that ended, do not
    /// parse or do not fit the tables are skipped; their count is returned.
    pub fn restore(&mut self, saved: Saved, now: Timestamp) -> usize {
        let mut skipped = 0;
        if !saved.allowlist.is_empty() && self.set_admin_allowlist(saved.allowlist).is_err() {
            skipped += 1;
        }
        for b in saved.blocks {
            let k = IpKey::parse(b.ip.trim_end_matches("/64").as_bytes());
            match k {
                Some(k) if b.until > now.0 && (self.ips.contains_key(&k) || self.ips.len() < crate::limits::PROTECT_MAX_IPS) => {
                    let s = self.ips.entry(k);
                    s.block = Some(Block { since: Timestamp(b.since), until: Timestamp(b.until), reason: b.reason, evidence: b.evidence });
                    s.strikes = b.strikes;
                    s.last = s.last.max(b.since);
                }
                _ => skipped += 1,
            }
        }
        let horizon = now.0 - i64::from(self.cfg.success_days) * 86_400;
        for (ip, t) in saved.logins {
            match IpKey::parse(ip.as_bytes()) {
                Some(k) if t > horizon && self.ok.len() < crate::limits::PROTECT_MAX_SUCCESS_IPS => {
                    self.ok.insert(k, Timestamp(t));
                }
                _ => skipped += 1,
            }
        }
        self.dirty = false;
        skipped
    }
}

/// Serialises saves, so that a later snapshot is never overwritten by an
/// earlier one.
static SAVING: Mutex<()> = Mutex::new(());

/// Loads the saved state into `p` (at start-up, before any server runs).
///
/// # Errors
/// Database failure or a document that does not decode.
pub fn load(store: &Store, p: &mut Protect, now: Timestamp) -> Result<usize, StoreError> {
    Ok(match store.kv_get::<Saved>(KEY)? {
        Some(s) => p.restore(s, now),
        None => 0,
    })
}

/// Saves `p` if it changed since the last save (or always, with `force`).
/// The protection lock is held only to copy the state, not while writing.
/// On failure the state stays marked unsaved, so the next call retries.
///
/// # Errors
/// Database failure.
pub fn save(store: &Store, p: &Shared, now: Timestamp, force: bool) -> Result<bool, StoreError> {
    let _order = SAVING.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    let snapshot = {
        let mut g = lock(p);
        if !g.take_dirty() && !force {
            return Ok(false);
        }
        g.saved(now)
    };
    store.kv_put(KEY, &snapshot).inspect_err(|_| lock(p).mark_dirty())?;
    Ok(true)
}
