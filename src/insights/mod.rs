//! Insights: findings that matter to a mail admin, each with a title, the
//! evidence and what to do next (the UI words them per kind).
//!
//! Detectors (`detect`) look at the store over sliding windows; the engine
//! (`engine`) runs them every minute in the daemon and replays history hour
//! by hour after the first import. Everything found goes through
//! [`record`], the one place of noise control:
//! - a finding has a *key* (kind + subject: a domain, an IP, a user); the
//!   key is *active* while it keeps being found, and stays so for
//!   `quiet_hours` after it was last found;
//! - a finding whose key is active only refreshes its insight (time,
//!   evidence); a finding that starts again after a quiet period adds one
//!   to the open insight's `count` (or opens a new insight when the admin
//!   archived the old one) and is the only thing that notifies;
//! - snoozed insights merge silently until the snooze ends.
//!
//! Stored in the `insights` table (bounded by `MAX_INSIGHTS`: archived
//! ones go first, then the oldest).

pub mod classify;
pub mod config;
pub mod detect;
pub mod engine;

use crate::clock::Timestamp;
use crate::limits::MAX_INSIGHTS;
use crate::notify::Severity;
use crate::store::{Store, StoreError};
use serde::{Deserialize, Serialize};

pub use config::InsightConfig;

/// The kind ids of `postlens insights --json` (DESIGN.md).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    HighBounceRate,
    MailInactivity,
    RemoteBlocked,
    RblListed,
    CompromisedAccount,
    DeferredGrowth,
    BruteForce,
    ImportSummary,
    DetectiveEscalation,
    /// A health check (`postlens check`) turned to `fail`.
    HealthCheck,
}

impl Kind {
    pub const ALL: [Kind; 10] = [
        Kind::HighBounceRate,
        Kind::MailInactivity,
        Kind::RemoteBlocked,
        Kind::RblListed,
        Kind::CompromisedAccount,
        Kind::DeferredGrowth,
        Kind::BruteForce,
        Kind::ImportSummary,
        Kind::DetectiveEscalation,
        Kind::HealthCheck,
    ];

    pub fn id(self) -> &'static str {
        match self {
            Kind::HighBounceRate => "high_bounce_rate",
            Kind::MailInactivity => "mail_inactivity",
            Kind::RemoteBlocked => "remote_blocked",
            Kind::RblListed => "rbl_listed",
            Kind::CompromisedAccount => "compromised_account",
            Kind::DeferredGrowth => "deferred_growth",
            Kind::BruteForce => "brute_force",
            Kind::ImportSummary => "import_summary",
            Kind::DetectiveEscalation => "detective_escalation",
            Kind::HealthCheck => "health_check",
        }
    }

    pub fn parse(s: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.id() == s)
    }

    /// The filter group of the UI.
    pub fn category(self) -> &'static str {
        match self {
            Kind::HighBounceRate | Kind::RemoteBlocked | Kind::RblListed | Kind::DeferredGrowth | Kind::HealthCheck => "deliverability",
            Kind::CompromisedAccount | Kind::BruteForce => "security",
            Kind::MailInactivity => "activity",
            Kind::ImportSummary | Kind::DetectiveEscalation => "info",
        }
    }
}

/// Where an insight stands with the admin.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    #[default]
    Open,
    Archived,
    Snoozed,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Open => "open",
            Status::Archived => "archived",
            Status::Snoozed => "snoozed",
        }
    }
}

/// What a detector found at one evaluation.
#[derive(Clone, Debug, PartialEq)]
pub struct Finding {
    pub kind: Kind,
    /// Kind plus subject: findings with one key merge.
    pub key: String,
    /// What the finding is about (a domain, IP, user, provider), for titles.
    pub subject: String,
    pub severity: Severity,
    pub title: String,
    pub time: Timestamp,
    /// A JSON object.
    pub evidence: serde_json::Value,
}

/// A stored insight.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Insight {
    pub kind: Kind,
    pub key: String,
    pub subject: String,
    pub severity: Severity,
    pub title: String,
    /// Last and first occurrence (seconds since the epoch).
    pub time: i64,
    pub first_seen: i64,
    /// Occurrences merged (a finding that started again after a quiet period).
    pub count: u64,
    pub evidence: serde_json::Value,
    #[serde(default)]
    pub status: Status,
    #[serde(default)]
    pub snoozed_until: Option<i64>,
    /// The admin's rating: +1 useful, -1 not useful.
    #[serde(default)]
    pub rating: Option<i8>,
    /// Found while replaying history (no notification was sent).
    #[serde(default)]
    pub historical: bool,
}

/// The `postlens insights --json` / `/api/v1/insights` object.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct InsightJson {
    pub id: String,
    pub kind: Kind,
    pub severity: Severity,
    pub title: String,
    pub time: String,
    pub first_seen: String,
    pub count: u64,
    pub evidence: serde_json::Value,
    pub status: Status,
}

impl InsightJson {
    pub fn of(id: u64, i: &Insight) -> InsightJson {
        InsightJson {
            id: id.to_string(),
            kind: i.kind,
            severity: i.severity,
            title: i.title.clone(),
            time: Timestamp(i.time).rfc3339(),
            first_seen: Timestamp(i.first_seen).rfc3339(),
            count: i.count,
            evidence: i.evidence.clone(),
            status: i.status,
        }
    }
}

/// Which insights to list.
#[derive(Clone, Debug, Default)]
pub struct Filter {
    /// Last occurrence at or after / before.
    pub from: Option<Timestamp>,
    pub to: Option<Timestamp>,
    pub kind: Option<Kind>,
    pub category: Option<String>,
    pub min_severity: Option<Severity>,
    /// Archived ones too.
    pub archived: bool,
}

impl Filter {
    fn keeps(&self, i: &Insight) -> bool {
        self.from.is_none_or(|f| i.time >= f.0)
            && self.to.is_none_or(|t| i.time < t.0)
            && self.kind.is_none_or(|k| k == i.kind)
            && self.category.as_deref().is_none_or(|c| c == i.kind.category())
            && self.min_severity.is_none_or(|s| i.severity >= s)
            && (self.archived || i.status != Status::Archived)
    }
}

/// Insights matching `f`, most recent first.
///
/// # Errors
/// Database failure.
pub fn list(store: &Store, f: &Filter) -> Result<Vec<(u64, Insight)>, StoreError> {
    let mut v: Vec<(u64, Insight)> = store.insights_all()?.into_iter().filter(|(_, i)| f.keeps(i)).collect();
    v.sort_by(|a, b| b.1.time.cmp(&a.1.time).then_with(|| b.0.cmp(&a.0)));
    Ok(v)
}

/// One insight by number.
///
/// # Errors
/// Database failure.
pub fn get(store: &Store, id: u64) -> Result<Option<Insight>, StoreError> {
    Ok(store.insights_all::<Insight>()?.into_iter().find(|(i, _)| *i == id).map(|(_, i)| i))
}

/// An admin's action on one insight.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    Archive,
    Reopen,
    /// Quiet until this time.
    Snooze(Timestamp),
    /// +1 useful, -1 not, 0 clears.
    Rate(i8),
}

impl Action {
    /// The form's `action` value (`archive`, `reopen`, `snooze1d`,
    /// `snooze7d`, `useful`, `useless`) at `now`.
    pub fn parse(s: &str, now: Timestamp) -> Option<Action> {
        Some(match s {
            "archive" => Action::Archive,
            "reopen" => Action::Reopen,
            "snooze1d" => Action::Snooze(Timestamp(now.0 + 86_400)),
            "snooze7d" => Action::Snooze(Timestamp(now.0 + 7 * 86_400)),
            "useful" => Action::Rate(1),
            "useless" => Action::Rate(-1),
            _ => return None,
        })
    }
}

/// Applies `a` to insight `id`; `false` when there is no such insight.
///
/// # Errors
/// Database failure.
pub fn act(store: &Store, id: u64, a: Action) -> Result<bool, StoreError> {
    let mut found = false;
    store.insights_update::<Insight>(|all| {
        let mut put = Vec::new();
        if let Some((_, mut i)) = all.into_iter().find(|(i, _)| *i == id) {
            found = true;
            match a {
                Action::Archive => i.status = Status::Archived,
                Action::Reopen => {
                    i.status = Status::Open;
                    i.snoozed_until = None;
                }
                Action::Snooze(until) => {
                    i.status = Status::Snoozed;
                    i.snoozed_until = Some(until.0);
                }
                Action::Rate(r) => i.rating = (r != 0).then_some(r.signum()),
            }
            put.push((Some(id), i));
        }
        (put, Vec::new())
    })?;
    Ok(found)
}

/// The engine's memory between evaluations (the kv document
/// `insights_state`): which keys are active and since when.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct Active {
    /// key -> last time found. Bounded: keys quiet for longer than the
    /// quiet period are dropped, and at most `MAX_ACTIVE_KEYS` are kept.
    pub keys: std::collections::BTreeMap<String, i64>,
}

/// What [`record`] did with the findings.
#[derive(Debug, Default, PartialEq)]
pub struct Recorded {
    /// Insights that are new or started again and are open: the ones to
    /// notify about (empty while replaying history).
    pub notify: Vec<(u64, Insight)>,
    /// New insights created.
    pub created: usize,
    /// Findings merged into an existing insight.
    pub merged: usize,
}

/// Merges `findings` into the stored insights (the rules are in the module
/// comment). `historical`: found while replaying history (no notification).
///
/// # Errors
/// Database failure.
pub fn record(
    store: &Store,
    active: &mut Active,
    findings: Vec<Finding>,
    quiet_secs: i64,
    now: Timestamp,
    historical: bool,
) -> Result<Recorded, StoreError> {
    let mut out = Recorded::default();
    if findings.is_empty() {
        prune(active, now, quiet_secs);
        return Ok(out);
    }
    let mut notify_keys: Vec<String> = Vec::new();
    let added = store.insights_update::<Insight>(|all| {
        let mut all: Vec<(Option<u64>, Insight, bool)> = all.into_iter().map(|(id, i)| (Some(id), i, false)).collect();
        for f in findings {
            let starts = active.keys.get(&f.key).is_none_or(|last| f.time.0 - last > quiet_secs);
            let last = active.keys.entry(f.key.clone()).or_insert(f.time.0);
            *last = (*last).max(f.time.0);
            // The newest insight of this key.
            let current = all.iter_mut().filter(|(_, i, _)| i.key == f.key).max_by_key(|(id, i, _)| (i.time, *id));
            match current {
                Some((_, i, dirty)) if i.status != Status::Archived || !starts => {
                    if i.status == Status::Archived {
                        // Still the occurrence the admin archived.
                        continue;
                    }
                    i.time = i.time.max(f.time.0);
                    i.severity = i.severity.max(f.severity);
                    i.evidence = f.evidence;
                    i.title = f.title;
                    if starts {
                        i.count += 1;
                        if i.status == Status::Snoozed && i.snoozed_until.is_none_or(|u| u <= now.0) {
                            i.status = Status::Open;
                            i.snoozed_until = None;
                        }
                        if i.status == Status::Open && !historical {
                            notify_keys.push(i.key.clone());
                        }
                    }
                    *dirty = true;
                    out.merged += 1;
                }
                _ => {
                    out.created += 1;
                    if !historical {
                        notify_keys.push(f.key.clone());
                    }
                    all.push((
                        None,
                        Insight {
                            kind: f.kind,
                            key: f.key,
                            subject: f.subject,
                            severity: f.severity,
                            title: f.title,
                            time: f.time.0,
                            first_seen: f.time.0,
                            count: 1,
                            evidence: f.evidence,
                            status: Status::Open,
                            snoozed_until: None,
                            rating: None,
                            historical,
                        },
                        true,
                    ));
                }
            }
        }
        // Bounded: archived first, then the oldest.
        let mut remove = Vec::new();
        if all.len() > MAX_INSIGHTS {
            let mut order: Vec<usize> = (0..all.len()).collect();
            order.sort_by_key(|&i| (all[i].1.status != Status::Archived, all[i].1.time));
            let excess = all.len() - MAX_INSIGHTS;
            let mut gone: Vec<usize> = order.into_iter().take(excess).collect();
            gone.sort_unstable_by(|a, b| b.cmp(a));
            for i in gone {
                if let Some(id) = all[i].0 {
                    remove.push(id);
                }
                all.remove(i);
            }
        }
        let put = all.into_iter().filter(|(_, _, dirty)| *dirty).map(|(id, i, _)| (id, i)).collect();
        (put, remove)
    })?;
    let _ = added;
    prune(active, now, quiet_secs);
    if !notify_keys.is_empty() {
        let all = store.insights_all::<Insight>()?;
        for k in notify_keys {
            if let Some((id, i)) = all.iter().filter(|(_, i)| i.key == k).max_by_key(|(id, i)| (i.time, *id)) {
                out.notify.push((*id, i.clone()));
            }
        }
    }
    Ok(out)
}

/// Drops keys quiet for longer than the quiet period, and the oldest ones
/// beyond `MAX_ACTIVE_KEYS`.
fn prune(active: &mut Active, now: Timestamp, quiet_secs: i64) {
    active.keys.retain(|_, last| now.0 - *last <= quiet_secs);
    if active.keys.len() > crate::limits::MAX_ACTIVE_KEYS {
        let mut v: Vec<(String, i64)> = std::mem::take(&mut active.keys).into_iter().collect();
        v.sort_by_key(|e| std::cmp::Reverse(e.1));
        v.truncate(crate::limits::MAX_ACTIVE_KEYS);
        active.keys = v.into_iter().collect();
    }
}

/// An end user's escalation from the public detective, as an insight.
///
/// # Errors
/// Database failure.
pub fn escalation(store: &Store, sender: &str, recipient: &str, queue_id: &str, status: &str, now: Timestamp) -> Result<(), StoreError> {
    let f = Finding {
        kind: Kind::DetectiveEscalation,
        key: format!("detective_escalation:{queue_id}:{recipient}"),
        subject: recipient.to_owned(),
        severity: Severity::Warning,
        title: format!("A user asks about an undelivered message to {recipient}"),
        time: now,
        evidence: serde_json::json!({
            "sender": sender, "recipient": recipient, "queue_id": queue_id, "status": status,
        }),
    };
    let mut active = Active::default();
    record(store, &mut active, vec![f], 0, now, false)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ws(tag: &str) -> Store {
        let d = std::env::temp_dir().join(format!("postlens-insights-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        Store::open(&d).unwrap()
    }

    fn finding(key: &str, t: i64) -> Finding {
        Finding {
            kind: Kind::BruteForce,
            key: key.into(),
            subject: key.into(),
            severity: Severity::Warning,
            title: format!("t {key}"),
            time: Timestamp(t),
            evidence: serde_json::json!({"n": t}),
        }
    }

    const H: i64 = 3600;

    #[test]
    fn repeats_merge_and_restarts_count_and_notify_once() {
        let s = ws("merge");
        let mut a = Active::default();
        let quiet = 6 * H;
        // Found every minute for an hour: one insight, count 1, one notification.
        let mut notified = 0;
        for m in 0..60 {
            let r =
                record(&s, &mut a, vec![finding("brute_force:192.0.2.1", 1_000_000 + m * 60)], quiet, Timestamp(1_000_000 + m * 60), false)
                    .unwrap();
            notified += r.notify.len();
        }
        assert_eq!(notified, 1);
        let l = list(&s, &Filter::default()).unwrap();
        assert_eq!(l.len(), 1);
        assert_eq!(l[0].1.count, 1);
        assert_eq!(l[0].1.time, 1_000_000 + 59 * 60);
        assert_eq!(l[0].1.first_seen, 1_000_000);
        assert_eq!(l[0].1.evidence["n"], 1_000_000 + 59 * 60, "evidence is the latest");
        // Quiet for longer than the quiet period, then again: count 2, notified again.
        let t = 1_000_000 + 59 * 60 + quiet + 60;
        let r = record(&s, &mut a, vec![finding("brute_force:192.0.2.1", t)], quiet, Timestamp(t), false).unwrap();
        assert_eq!(r.notify.len(), 1);
        let l = list(&s, &Filter::default()).unwrap();
        assert_eq!((l.len(), l[0].1.count), (1, 2));
        // Another key is another insight.
        record(&s, &mut a, vec![finding("brute_force:192.0.2.2", t)], quiet, Timestamp(t), false).unwrap();
        assert_eq!(list(&s, &Filter::default()).unwrap().len(), 2);
    }

    #[test]
    fn archived_stays_quiet_until_the_condition_starts_again_and_snooze_silences() {
        let s = ws("archive");
        let mut a = Active::default();
        let quiet = 6 * H;
        record(&s, &mut a, vec![finding("k", 10 * H)], quiet, Timestamp(10 * H), false).unwrap();
        let id = list(&s, &Filter::default()).unwrap()[0].0;
        assert!(act(&s, id, Action::Archive).unwrap());
        assert!(!act(&s, 999, Action::Archive).unwrap());
        // Still going: nothing new, nothing notified, hidden from the default list.
        let r = record(&s, &mut a, vec![finding("k", 11 * H)], quiet, Timestamp(11 * H), false).unwrap();
        assert!(r.notify.is_empty());
        assert!(list(&s, &Filter::default()).unwrap().is_empty());
        assert_eq!(list(&s, &Filter { archived: true, ..Filter::default() }).unwrap().len(), 1);
        // Starts again after a quiet period: a new insight.
        let r = record(&s, &mut a, vec![finding("k", 30 * H)], quiet, Timestamp(30 * H), false).unwrap();
        assert_eq!((r.created, r.notify.len()), (1, 1));
        let id2 = list(&s, &Filter::default()).unwrap()[0].0;
        assert_ne!(id, id2);
        // Snoozed: a restart merges without notifying until the snooze ends.
        act(&s, id2, Action::Snooze(Timestamp(100 * H))).unwrap();
        let r = record(&s, &mut a, vec![finding("k", 50 * H)], quiet, Timestamp(50 * H), false).unwrap();
        assert!(r.notify.is_empty());
        let i = get(&s, id2).unwrap().unwrap();
        assert_eq!((i.count, i.status), (2, Status::Snoozed));
        let r = record(&s, &mut a, vec![finding("k", 120 * H)], quiet, Timestamp(120 * H), false).unwrap();
        assert_eq!(r.notify.len(), 1, "the snooze ended");
        assert_eq!(get(&s, id2).unwrap().unwrap().status, Status::Open);
        act(&s, id2, Action::Rate(-1)).unwrap();
        assert_eq!(get(&s, id2).unwrap().unwrap().rating, Some(-1));
    }

    #[test]
    fn history_is_recorded_without_notifications_and_the_table_is_bounded() {
        let s = ws("bound");
        let mut a = Active::default();
        let many: Vec<Finding> = (0..MAX_INSIGHTS + 25).map(|i| finding(&format!("k{i}"), 1_000 + i64::try_from(i).unwrap())).collect();
        let r = record(&s, &mut a, many, H, Timestamp(1_000_000), true).unwrap();
        assert!(r.notify.is_empty());
        let l = list(&s, &Filter::default()).unwrap();
        assert_eq!(l.len(), MAX_INSIGHTS);
        assert!(l.iter().all(|(_, i)| i.historical));
        assert_eq!(l.last().unwrap().1.key, "k25", "the oldest went first");
        assert!(a.keys.len() <= crate::limits::MAX_ACTIVE_KEYS);
    }
}
