//! Runs the detectors: live (the daemon, every `INSIGHTS_EVERY_SECS`) and
//! over history (hour by hour from where the last run stopped, as after the
//! first import; nothing is notified then, and the first replay ends in one
//! `import_summary` insight instead of a flood of notifications).
//! Its memory between runs is the kv document `insights_state`.

use super::detect::{self, Baselines, Ctx};
use super::{Active, Finding, Insight, InsightConfig, Kind};
use crate::clock::Timestamp;
use crate::notify::Severity;
use crate::store::query::{Overlay, Window};
use crate::store::{Store, StoreError};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

const HOUR: i64 = 3_600;
const STATE: &str = "insights_state";

/// More than this behind: catch up hour by hour as history.
const REPLAY_AFTER_SECS: i64 = 2 * HOUR;

/// Raw delivery lines are read for remote blocks in spans of at most a day
/// while replaying (one pass over the raw text for the whole history).
const REPLAY_RAW_SPAN: i64 = 24 * HOUR;

#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct State {
    /// Evaluated up to this time.
    pub cursor: Option<i64>,
    pub active: Active,
    pub baselines: Baselines,
    /// Hours before this one are folded into the baselines.
    pub baseline_hour: Option<i64>,
    pub rbl_checked: Option<i64>,
    /// The first replay's summary was written.
    pub summarised: bool,
}

/// What a run reads besides the store.
pub struct Inputs<'a> {
    pub overlay: Option<&'a Overlay>,
    pub cfg: &'a InsightConfig,
    /// The server's public IP (settings), for the DNSBL check.
    pub public_ip: Option<std::net::IpAddr>,
    /// The time to evaluate up to: the clock in the daemon, the newest
    /// line after an import.
    pub now: Timestamp,
    /// A running daemon (the live-only checks run: DNSBLs, queue age).
    pub live: bool,
}

/// What a run did.
#[derive(Debug, Default)]
pub struct Report {
    /// New or restarted open insights to notify about.
    pub notify: Vec<(u64, Insight)>,
    /// Hours evaluated as history.
    pub replayed_hours: u64,
    pub created: usize,
    /// A DNSBL check could not be made (no DNS answer): why.
    pub dns_error: Option<String>,
}

struct Run<'a> {
    store: &'a Store,
    inp: &'a Inputs<'a>,
    /// The daemon's overlay, else an empty one (history needs no in-flight
    /// view, and reading the stored tracker on every query is costly).
    overlay: &'a Overlay,
    st: State,
    report: Report,
    found: BTreeMap<Kind, u64>,
}

impl Run<'_> {
    fn ctx(&self, now: Timestamp) -> Ctx<'_> {
        Ctx { store: self.store, overlay: Some(self.overlay), cfg: self.inp.cfg, now }
    }

    fn record(&mut self, findings: Vec<Finding>, now: Timestamp, historical: bool) -> Result<(), StoreError> {
        for f in &findings {
            *self.found.entry(f.kind).or_default() += 1;
        }
        let quiet = i64::from(self.inp.cfg.quiet_hours) * HOUR;
        let r = super::record(self.store, &mut self.st.active, findings, quiet, now, historical)?;
        self.report.created += r.created;
        self.report.notify.extend(r.notify);
        Ok(())
    }

    /// Compromised accounts: every complete hour not yet folded into the
    /// baselines is judged against them and then folded in; the current
    /// partial hour is judged without folding.
    fn accounts(&mut self, now: Timestamp, historical: bool) -> Result<(), StoreError> {
        let this_hour = now.0.div_euclid(HOUR) * HOUR;
        let mut h = self.st.baseline_hour.unwrap_or(this_hour).min(this_hour);
        // At most a week of hours at once (a long pause is not replayed twice).
        h = h.max(this_hour - 168 * HOUR);
        while h < this_hour {
            // Read a few hours at once (bounded memory), then hour by hour.
            let end = (h + crate::limits::INSIGHT_READ_HOURS * HOUR).min(this_hour);
            let w = Window { from: Some(Timestamp(h)), to: Some(Timestamp(end)) };
            let mut by_hour: BTreeMap<i64, Vec<crate::track::DeliveryRec>> = BTreeMap::new();
            for d in self.store.deliveries_between(w, Some(self.overlay))? {
                let at = if d.outcome() == crate::track::Outcome::Pending { d.queue_time.0 } else { d.time.0 };
                by_hour.entry(at.div_euclid(HOUR) * HOUR).or_default().push(d);
            }
            while h < end {
                let ds = by_hour.remove(&h).unwrap_or_default();
                let (f, sent) = detect::compromised(&self.ctx(Timestamp(h + HOUR)), &ds, &self.st.baselines, 1.0);
                self.record(f, Timestamp(h + HOUR), historical)?;
                detect::observe(&mut self.st.baselines, &sent);
                h += HOUR;
            }
        }
        self.st.baseline_hour = Some(this_hour);
        if now.0 > this_hour {
            let w = Window { from: Some(Timestamp(this_hour)), to: Some(now) };
            let ds = self.store.deliveries_between(w, Some(self.overlay))?;
            #[expect(clippy::cast_precision_loss)]
            let hours = (now.0 - this_hour) as f64 / 3600.0;
            let (f, _) = detect::compromised(&self.ctx(now), &ds, &self.st.baselines, hours);
            self.record(f, now, historical)?;
        }
        Ok(())
    }

    /// The window detectors at `now`.
    fn windows(&mut self, now: Timestamp, historical: bool) -> Result<(), StoreError> {
        let c = self.ctx(now);
        let mut f = detect::high_bounce_rate(&c)?;
        f.extend(detect::mail_inactivity(&c)?);
        f.extend(detect::deferred_growth(&c)?);
        f.extend(detect::brute_force(&c)?);
        self.record(f, now, historical)
    }

    fn remote(&mut self, from: Timestamp, now: Timestamp, historical: bool) -> Result<(), StoreError> {
        let f = detect::remote_blocked(&self.ctx(now), from, Some(self.overlay))?;
        self.record(f, now, historical)
    }
}

/// Evaluates the detectors from where the last run stopped up to
/// `inp.now`, records what they find, and returns what to notify.
///
/// # Errors
/// Store failure.
pub fn run(store: &Store, inp: &Inputs<'_>) -> Result<Report, StoreError> {
    let st: State = store.kv_get(STATE)?.unwrap_or_default();
    let empty = Overlay::default();
    let overlay = inp.overlay.unwrap_or(&empty);
    let mut r = Run { store, inp, overlay, st, report: Report::default(), found: BTreeMap::new() };
    let Some((first, _)) = store.time_span()? else {
        // Nothing stored yet: start from now.
        r.st.cursor.get_or_insert(inp.now.0);
        store.kv_put(STATE, &r.st)?;
        return Ok(r.report);
    };
    let first_run = r.st.cursor.is_none();
    let start = r.st.cursor.unwrap_or(first).min(inp.now.0);
    let mut cursor = start;
    if inp.now.0 - start > REPLAY_AFTER_SECS {
        // History: the end of every hour with activity, and the moment a
        // silence after activity becomes an inactivity finding; the raw
        // delivery lines a day at a time.
        r.st.baseline_hour.get_or_insert(start.div_euclid(HOUR) * HOUR);
        let steps = replay_steps(store, start, inp.now.0, inp.cfg)?;
        let mut raw_from = start;
        for (n, &t) in steps.iter().enumerate() {
            let at = Timestamp(t);
            r.windows(at, true)?;
            let last = n + 1 == steps.len();
            if t - raw_from >= REPLAY_RAW_SPAN || last || steps[n + 1] - t > HOUR {
                r.accounts(at, true)?;
                r.remote(Timestamp(raw_from), at, true)?;
                raw_from = t;
            }
            r.report.replayed_hours += 1;
            cursor = t;
        }
        cursor = cursor.max(inp.now.0.div_euclid(HOUR) * HOUR).min(inp.now.0);
        if first_run && !r.st.summarised {
            r.st.summarised = true;
            let f = summary(store, &r.found, first, cursor)?;
            // Shown, not announced: nothing of a history replay is notified.
            r.record(vec![f], Timestamp(cursor), true)?;
        }
    }
    // Now (live, or the last partial hour of an import).
    let now = inp.now;
    if now.0 > cursor || r.report.replayed_hours == 0 {
        r.windows(now, !inp.live)?;
        r.accounts(now, !inp.live)?;
        r.remote(Timestamp(cursor), now, !inp.live)?;
    }
    if inp.live
        && let Some(ip) = inp.public_ip
        && r.st.rbl_checked.is_none_or(|c| now.0 - c >= i64::from(inp.cfg.rbl_interval_hours) * HOUR)
    {
        let server = match &inp.cfg.dns_server {
            Some(s) => crate::dns::parse_server(s).ok_or_else(|| crate::dns::DnsError::BadName(s.clone())),
            None => crate::dns::system_server(),
        };
        // Tried once per interval, answered or not: no resolver is no
        // reason to query every minute.
        r.st.rbl_checked = Some(now.0);
        match server.and_then(|s| detect::rbl_listed(&r.ctx(now), ip, s)) {
            Ok(f) => r.record(f, now, false)?,
            Err(e) => r.report.dns_error = Some(e.to_string()),
        }
    }
    r.st.cursor = Some(now.0.max(cursor));
    store.kv_put(STATE, &r.st)?;
    Ok(r.report)
}

/// The ends of the hours in `(start, now]` worth evaluating over history:
/// each hour with activity, and for each silence of at least the
/// inactivity window, its end (when `mail_inactivity` would fire).
fn replay_steps(store: &Store, start: i64, now: i64, cfg: &InsightConfig) -> Result<Vec<i64>, StoreError> {
    let hour = |t: i64| u32::try_from(t.max(0) / HOUR).unwrap_or(u32::MAX);
    let active = store.active_hours(hour(start), hour(now).saturating_add(1))?;
    let quiet = i64::from(cfg.inactivity_hours) * HOUR;
    let mut steps = Vec::with_capacity(active.len() + 8);
    for (i, &h) in active.iter().enumerate() {
        let end = (i64::from(h) + 1) * HOUR;
        steps.push(end);
        let next = active.get(i + 1).map_or(now, |&n| i64::from(n) * HOUR);
        if next - end >= quiet {
            steps.push(end + quiet);
        }
    }
    steps.retain(|&t| t > start && t <= now);
    steps.sort_unstable();
    steps.dedup();
    Ok(steps)
}

/// The one insight a first import ends with: what the history holds.
fn summary(store: &Store, found: &BTreeMap<Kind, u64>, from: i64, to: i64) -> Result<Finding, StoreError> {
    let w = Window { from: Some(Timestamp(from)), to: Some(Timestamp(to + 1)) };
    let s = store.stats(w)?;
    let days = (to - from + 86_399) / 86_400;
    let findings: u64 = found.values().sum();
    let by_kind: BTreeMap<&str, u64> = found.iter().map(|(k, n)| (k.id(), *n)).collect();
    Ok(Finding {
        kind: Kind::ImportSummary,
        key: Kind::ImportSummary.id().to_owned(),
        subject: String::new(),
        severity: Severity::Info,
        title: format!(
            "History imported: {days} day(s), {} deliveries ({} bounced); {findings} finding(s) from the past",
            s.deliveries.sent + s.deliveries.bounced + s.deliveries.expired,
            s.deliveries.bounced
        ),
        time: Timestamp(to),
        evidence: serde_json::json!({
            "from": Timestamp(from).rfc3339(), "to": Timestamp(to).rfc3339(), "days": days,
            "sent": s.deliveries.sent, "bounced": s.deliveries.bounced, "expired": s.deliveries.expired,
            "deferrals": s.deferrals, "auth_failures": s.auth_failures.total, "findings": by_kind,
        }),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::Resolver;
    use crate::ingest::{Options, Pipeline};
    use crate::insights::{Filter, list};
    use std::sync::Arc;

    /// 2026-10-01 00:00:00 UTC.
    const T0: i64 = 1_790_812_800;

    fn stamp(t: i64) -> String {
        let z = jiff::Timestamp::from_second(t).unwrap().to_zoned(jiff::tz::TimeZone::UTC);
        format!("{} {:>2} {:02}:{:02}:{:02}", z.strftime("%b"), z.day(), z.hour(), z.minute(), z.second())
    }

    /// A whole message's lines, Postfix as logged (submission with SASL
    /// when `user` is given).
    struct Msg<'a> {
        t: i64,
        n: usize,
        to: &'a str,
        status: &'a str,
        relay: &'a str,
        reply: &'a str,
        user: Option<&'a str>,
    }

    fn message(m: &Msg<'_>) -> Vec<String> {
        let s = stamp(m.t);
        let q = format!("{:X}", 0x4B8_0000 + m.n);
        let mut v = Vec::new();
        match m.user {
            Some(u) => v.push(format!(
                "{s} mail postfix/submission/smtpd[2780]: {q}: client=unknown[203.0.113.50], sasl_method=LOGIN, sasl_username={u}"
            )),
            None => v.push(format!("{s} mail postfix/smtpd[1580]: {q}: client=relay.example.net[198.51.100.20]")),
        }
        v.push(format!("{s} mail postfix/cleanup[1581]: {q}: message-id=<m{}@example.org>", m.n));
        v.push(format!("{s} mail postfix/qmgr[900]: {q}: from=<alice@example.org>, size=2048, nrcpt=1 (queue active)"));
        v.push(format!(
            "{s} mail postfix/smtp[1600]: {q}: to=<{}>, relay={}, delay=1.2, delays=0.1/0/0.5/0.6, dsn={}, status={} ({})",
            m.to,
            m.relay,
            if m.status == "sent" {
                "2.0.0"
            } else if m.status == "bounced" {
                "5.7.1"
            } else {
                "4.7.28"
            },
            m.status,
            m.reply
        ));
        if m.status != "deferred" {
            v.push(format!("{s} mail postfix/qmgr[900]: {q}: removed"));
        }
        v
    }

    fn sent(t: i64, n: usize, user: Option<&str>) -> Vec<String> {
        message(&Msg {
            t,
            n,
            to: &format!("r{n}@example.net"),
            status: "sent",
            relay: "mx.example.net[192.0.2.25]:25",
            reply: "250 2.0.0 Ok: queued as 3F2A1",
            user,
        })
    }

    fn store_with(tag: &str, lines: &[String]) -> Arc<Store> {
        let d = std::env::temp_dir().join(format!("postlens-engine-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        let store = Arc::new(Store::open(&d).unwrap());
        let opts = Options::utc_2026();
        let mut p = Pipeline::new(store.clone(), opts).unwrap();
        let mut res = Resolver::new(jiff::tz::TimeZone::UTC, 2026);
        for l in lines {
            p.feed(l.as_bytes(), &mut res);
        }
        p.commit(true).unwrap();
        drop(p);
        store
    }

    fn run_at(store: &Store, now: i64, live: bool) -> Report {
        let cfg = InsightConfig::default();
        run(store, &Inputs { overlay: None, cfg: &cfg, public_ip: None, now: Timestamp(now), live }).unwrap()
    }

    fn kinds(store: &Store) -> Vec<(String, String, u64)> {
        let mut v: Vec<(String, String, u64)> =
            list(store, &Filter::default()).unwrap().into_iter().map(|(_, i)| (i.kind.id().to_owned(), i.subject, i.count)).collect();
        v.sort();
        v
    }

    /// A quiet, healthy day: a message every 10 minutes.
    fn normal_day(start: i64, n0: usize) -> Vec<String> {
        (0..144).flat_map(|i| sent(start + i * 600, n0 + usize::try_from(i).unwrap(), None)).collect()
    }

    #[test]
    fn a_healthy_history_yields_only_its_summary() {
        let lines = normal_day(T0, 0);
        let store = store_with("healthy", &lines);
        let r = run_at(&store, T0 + 86_400, false);
        assert!(r.replayed_hours >= 23);
        assert_eq!(kinds(&store), vec![("import_summary".into(), String::new(), 1)]);
        let (_, s) = &list(&store, &Filter::default()).unwrap()[0];
        assert_eq!(s.evidence["sent"], 144);
        assert!(r.notify.is_empty(), "nothing of a replay is announced, the summary neither");
        // The next run continues from the cursor: nothing new, no second summary.
        let r = run_at(&store, T0 + 86_400 + 600, true);
        assert!(r.notify.is_empty());
        assert_eq!(kinds(&store).len(), 1);
    }

    #[test]
    fn brute_force_from_dovecot_and_postfix_lines() {
        let mut lines = normal_day(T0, 0);
        // One IP hammering IMAP and SMTP AUTH for 20 minutes at 10:00.
        for i in 0..30 {
            let s = stamp(T0 + 10 * 3600 + i * 40);
            lines.push(format!(
                "{s} mail dovecot: imap-login: Disconnected (auth failed, 1 attempts in 2 secs): user=<admin>, method=PLAIN, rip=198.51.100.23, lip=192.0.2.1, TLS, session=<x{i}>"
            ));
            lines.push(format!(
                "{s} mail postfix/smtpd[3{i}]: warning: unknown[198.51.100.23]: SASL LOGIN authentication failed: UGFzc3dvcmQ6"
            ));
        }
        // A stale password in an office: a few failures, not an attack.
        for i in 0..4 {
            let s = stamp(T0 + 11 * 3600 + i * 300);
            lines.push(format!(
                "{s} mail dovecot: imap-login: Disconnected (auth failed, 1 attempts in 2 secs): user=<bob>, method=PLAIN, rip=192.0.2.77, lip=192.0.2.1, TLS, session=<y{i}>"
            ));
        }
        lines.sort_by_key(|l| l[..15].to_owned());
        let store = store_with("brute", &lines);
        run_at(&store, T0 + 86_400, false);
        let k = kinds(&store);
        assert!(k.contains(&("brute_force".into(), "198.51.100.23".into(), 1)), "{k:?}");
        assert!(!k.iter().any(|(_, s, _)| s == "192.0.2.77"), "{k:?}");
        let (_, i) = list(&store, &Filter::default()).unwrap().into_iter().find(|(_, i)| i.subject == "198.51.100.23").unwrap();
        assert_eq!(i.evidence["failures"], 60);
        assert_eq!(i.evidence["protocols"]["imap"], 30);
        assert_eq!(i.evidence["protocols"]["smtp"], 30);
        assert!(i.historical);
    }

    #[test]
    fn remote_blocks_are_attributed_with_their_evidence() {
        let mut lines = normal_day(T0, 0);
        for i in 0..6 {
            lines.extend(message(&Msg {
                t: T0 + 9 * 3600 + i * 60,
                n: 1000 + usize::try_from(i).unwrap(),
                to: "carol@gmail.com",
                status: "deferred",
                relay: "gmail-smtp-in.l.google.com[142.250.102.27]:25",
                reply: "host gmail-smtp-in.l.google.com[142.250.102.27] said: 421-4.7.28 [203.0.113.5] Our system has detected an unusual rate of unsolicited mail originating from your IP address. (in reply to end of DATA command)",
                user: None,
            }));
        }
        lines.extend(message(&Msg {
            t: T0 + 15 * 3600,
            n: 2000,
            to: "dave@example.com",
            status: "bounced",
            relay: "mx1.example.com[198.51.100.7]:25",
            reply: "host mx1.example.com[198.51.100.7] said: 554 5.7.1 Service unavailable; Client host [203.0.113.5] blocked using zen.spamhaus.org; https://www.spamhaus.org/query/ip/203.0.113.5 (in reply to RCPT TO command)",
            user: None,
        }));
        lines.sort_by_key(|l| l[..15].to_owned());
        let store = store_with("remote", &lines);
        run_at(&store, T0 + 86_400, false);
        let all = list(&store, &Filter::default()).unwrap();
        let google = all.iter().find(|(_, i)| i.key == "remote_blocked:google").expect("google");
        assert_eq!(google.1.evidence["deferred"], 6);
        assert_eq!(google.1.evidence["delist_url"], "https://support.google.com/mail/contact/bulk_send_new");
        assert_eq!(google.1.evidence["messages"].as_array().unwrap().len(), crate::limits::INSIGHT_EXAMPLES);
        assert!(google.1.evidence["lines"][0].as_str().unwrap().contains("4.7.28"));
        let spamhaus = all.iter().find(|(_, i)| i.key == "remote_blocked:spamhaus").expect("spamhaus");
        assert_eq!((spamhaus.1.evidence["bounced"].as_u64(), spamhaus.1.severity), (Some(1), Severity::Critical));
        assert_eq!(spamhaus.1.time, T0 + 15 * 3600);
    }

    #[test]
    fn bounce_rate_inactivity_and_deferrals() {
        let mut lines = normal_day(T0, 0);
        // Day 2, 08:00-09:00: 30 messages, 12 bounced (user unknown).
        for i in 0..30 {
            let bounced = i % 5 < 2;
            lines.extend(message(&Msg {
                t: T0 + 86_400 + 8 * 3600 + i * 100,
                n: 3000 + usize::try_from(i).unwrap(),
                to: &format!("x{i}@example.com"),
                status: if bounced { "bounced" } else { "sent" },
                relay: "mx.example.com[198.51.100.8]:25",
                reply: if bounced { "host mx.example.com[198.51.100.8] said: 550 5.1.1 <x@example.com>: Recipient address rejected: User unknown (in reply to RCPT TO command)" } else { "250 2.0.0 Ok" },
                user: None,
            }));
        }
        // 25 deferrals to one slow domain around 12:00.
        for i in 0..25 {
            lines.extend(message(&Msg {
                t: T0 + 86_400 + 12 * 3600 + i * 60,
                n: 4000 + usize::try_from(i).unwrap(),
                to: &format!("y{i}@slow.example"),
                status: "deferred",
                relay: "mx.slow.example[198.51.100.9]:25",
                reply: "host mx.slow.example[198.51.100.9] said: 451 4.3.0 Temporary failure, try again later (in reply to RCPT TO command)",
                user: None,
            }));
        }
        lines.sort_by_key(|l| l[..15].to_owned());
        let store = store_with("rates", &lines);
        // Evaluated two days after the last line: silence since.
        run_at(&store, T0 + 4 * 86_400, false);
        let k = kinds(&store);
        assert!(k.iter().any(|(kind, s, _)| kind == "high_bounce_rate" && s == "outbound"), "{k:?}");
        assert!(k.iter().any(|(kind, s, _)| kind == "deferred_growth" && s == "slow.example"), "{k:?}");
        assert!(k.iter().any(|(kind, _, _)| kind == "mail_inactivity"), "{k:?}");
        assert!(!k.iter().any(|(kind, _, _)| kind == "remote_blocked"), "ordinary failures are not blocks: {k:?}");
        let (_, b) = list(&store, &Filter::default()).unwrap().into_iter().find(|(_, i)| i.kind == Kind::HighBounceRate).unwrap();
        assert_eq!(b.evidence["bounced"], 12);
        assert_eq!(b.evidence["examples"][0]["dsn"], "5.7.1");
    }

    #[test]
    fn a_hijacked_account_stands_out_from_its_baseline() {
        let mut lines = Vec::new();
        let mut n = 0;
        // Two days of bob sending about 2 messages an hour, and a busier colleague.
        for h in 0..48 {
            for k in 0..2 {
                lines.extend(sent(T0 + h * 3600 + k * 1200, n, Some("bob@example.org")));
                n += 1;
            }
            for k in 0..30 {
                lines.extend(sent(T0 + h * 3600 + k * 100 + 7, n, Some("news@example.org")));
                n += 1;
            }
        }
        // Then bob's password is stolen: 300 recipients in 40 minutes.
        for k in 0..300 {
            lines.extend(sent(T0 + 48 * 3600 + k * 8, n, Some("bob@example.org")));
            n += 1;
        }
        lines.sort_by_key(|l| l[..15].to_owned());
        let store = store_with("account", &lines);
        run_at(&store, T0 + 50 * 3600, false);
        let k = kinds(&store);
        assert!(k.contains(&("compromised_account".into(), "bob@example.org".into(), 1)), "{k:?}");
        assert!(!k.iter().any(|(_, s, _)| s == "news@example.org"), "a steady sender is not flagged: {k:?}");
        let (_, i) = list(&store, &Filter::default()).unwrap().into_iter().find(|(_, i)| i.kind == Kind::CompromisedAccount).unwrap();
        assert_eq!(i.evidence["recipients"], 300);
        assert!(i.evidence["baseline_per_hour"].as_f64().unwrap() < 5.0);
        assert_eq!(i.evidence["client_ips"][0], "203.0.113.50");
    }
}
