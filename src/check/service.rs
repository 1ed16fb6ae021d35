//! Health checks inside `postlens run`: run at start-up, every
//! [`EVERY_SECS`] and on demand (the Health page, `POST /api/v1/checks`);
//! the last results are kept in the store (kv document `checks`), and a
//! check that turns to `fail` (from pass, warn, skipped, or never run)
//! opens a `health_check` insight, notified like any other.

use super::{Check, CheckError, Status};
use crate::clock::Timestamp;
use crate::insights::{Active, Finding, Insight, Kind};
use crate::notify::Severity;
use crate::store::Store;
use serde::{Deserialize, Serialize};
use std::sync::atomic::{AtomicBool, Ordering};

/// The kv document's key.
pub const KEY: &str = "checks";
/// Seconds between scheduled runs (6 h).
pub const EVERY_SECS: u64 = 6 * 3600;

/// One stored result (a [`Check`] that can be read back).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SavedCheck {
    pub id: String,
    pub target: String,
    pub status: Status,
    pub evidence: String,
    pub fix: String,
}

impl From<&Check> for SavedCheck {
    fn from(c: &Check) -> SavedCheck {
        SavedCheck { id: c.id.to_owned(), target: c.target.clone(), status: c.status, evidence: c.evidence.clone(), fix: c.fix.clone() }
    }
}

/// The last run.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Saved {
    /// When it ran (seconds); 0 = never.
    pub time: i64,
    /// Its results (those of the last run that could run, when `error`).
    pub checks: Vec<SavedCheck>,
    /// Why the last run could not run (no DNS server answered, …).
    pub error: Option<String>,
}

/// A run is under way (one at a time per process).
static RUNNING: AtomicBool = AtomicBool::new(false);

/// Whether a run is under way.
pub fn running() -> bool {
    RUNNING.load(Ordering::SeqCst)
}

/// The stored results.
///
/// # Errors
/// Database failure.
pub fn load(store: &Store) -> Result<Saved, crate::store::StoreError> {
    Ok(store.kv_get(KEY)?.unwrap_or_default())
}

/// What a run did.
#[derive(Debug, Default)]
pub struct Outcome {
    pub saved: Saved,
    /// Insights opened by checks that turned to `fail`: to notify.
    pub notify: Vec<(u64, Insight)>,
}

/// Runs every check with the inputs of the settings and logs, stores the
/// results and opens insights for new failures. `None` when a run is
/// already under way. Blocking: DNS and SMTP take seconds.
///
/// # Errors
/// Database failure (a run that cannot reach DNS is stored as `error`).
pub fn run_and_record(store: &Store, now: Timestamp) -> Result<Option<Outcome>, crate::store::StoreError> {
    if RUNNING.swap(true, Ordering::SeqCst) {
        return Ok(None);
    }
    let r = run_inner(store, now);
    RUNNING.store(false, Ordering::SeqCst);
    r.map(Some)
}

fn run_inner(store: &Store, now: Timestamp) -> Result<Outcome, crate::store::StoreError> {
    let prev = load(store)?;
    let result = super::options_from_store(store).and_then(|o| super::run(&o));
    let checks = match result {
        Ok(c) => c,
        Err(CheckError::Usage(m) | CheckError::Runtime(m)) => {
            let saved = Saved { time: now.0, checks: prev.checks, error: Some(m) };
            store.kv_put(KEY, &saved)?;
            return Ok(Outcome { saved, notify: Vec::new() });
        }
    };
    let findings: Vec<Finding> = checks
        .iter()
        .filter(|c| c.status == Status::Fail)
        .filter(|c| !prev.checks.iter().any(|p| p.id == c.id && p.target == c.target && p.status == Status::Fail))
        .map(|c| finding(c, now))
        .collect();
    let mut notify = Vec::new();
    if !findings.is_empty() {
        let mut active = Active::default();
        notify = crate::insights::record(store, &mut active, findings, 0, now, false)?.notify;
    }
    let saved = Saved { time: now.0, checks: checks.iter().map(SavedCheck::from).collect(), error: None };
    store.kv_put(KEY, &saved)?;
    Ok(Outcome { saved, notify })
}

/// The insight for a check that turned to `fail`. An open relay and a
/// DNSBL listing lose mail today: critical; the rest: warning.
fn finding(c: &Check, now: Timestamp) -> Finding {
    let severity =
        if matches!(c.id, "open_relay" | "dnsbl" | "mynetworks" | "relay_restrictions") { Severity::Critical } else { Severity::Warning };
    let on = if c.target.is_empty() { String::new() } else { format!(" for {}", c.target) };
    Finding {
        kind: Kind::HealthCheck,
        key: format!("health_check:{}:{}", c.id, c.target),
        subject: c.target.clone(),
        severity,
        title: format!("Health check {} fails{on}", c.id),
        time: now,
        evidence: serde_json::json!({ "check": c.id, "target": c.target, "evidence": c.evidence, "fix": c.fix }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_check_turning_to_fail_opens_one_insight() {
        let dir = std::env::temp_dir().join(format!("postlens-check-svc-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let store = Store::open(&dir).expect("store");
        let mk = |status| Check::new("spf", "example.org", status, "v=spf1 -all", "add the IP");
        let pass = Saved { time: 1, checks: vec![SavedCheck::from(&mk(Status::Pass))], error: None };
        store.kv_put(KEY, &pass).expect("put");
        let prev = load(&store).expect("load");
        assert_eq!(prev, pass);
        // Only the flip makes a finding: fail after pass yes, fail after fail no.
        let now = Timestamp(1_700_000_000);
        let f = finding(&mk(Status::Fail), now);
        assert_eq!((f.kind, f.key.as_str(), f.severity), (Kind::HealthCheck, "health_check:spf:example.org", Severity::Warning));
        let mut active = Active::default();
        let r = crate::insights::record(&store, &mut active, vec![f.clone()], 0, now, false).expect("record");
        assert_eq!(r.created, 1);
        assert_eq!(finding(&Check::new("open_relay", "127.0.0.1:25", Status::Fail, "", ""), now).severity, Severity::Critical);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
