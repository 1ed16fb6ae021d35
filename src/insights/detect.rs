//! The detectors. Each looks at the store (plus a running daemon's
//! uncommitted overlay) at one moment `now` and returns findings; the
//! engine calls them live every minute and hour by hour over history.
//! Window detectors use the per-hour tables (cheap at any history length);
//! the remote-block detector reads the raw delivery lines of its span, the
//! compromised-account detector the deliveries of each hour.

use super::{Finding, InsightConfig, Kind, classify};
use crate::clock::Timestamp;
use crate::limits::{INSIGHT_EXAMPLES, INSIGHT_MAX_DISTINCT, INSIGHT_SCAN_LINES};
use crate::notify::Severity;
use crate::store::query::{Overlay, Query, Window};
use crate::store::{DomainCounts, Store, StoreError};
use crate::track::{DeliveryRec, Direction, Outcome};
use serde::{Deserialize, Serialize};
use serde_json::json;
use std::collections::{BTreeMap, HashMap, HashSet};

const HOUR: i64 = 3_600;

/// What every detector reads.
pub struct Ctx<'a> {
    pub store: &'a Store,
    pub overlay: Option<&'a Overlay>,
    pub cfg: &'a InsightConfig,
    pub now: Timestamp,
}

impl Ctx<'_> {
    fn window(&self, hours: u32) -> Window {
        Window { from: Some(Timestamp(self.now.0 - i64::from(hours) * HOUR)), to: Some(self.now) }
    }

    fn finding(&self, kind: Kind, subject: &str, severity: Severity, title: String, evidence: serde_json::Value) -> Finding {
        let key = if subject.is_empty() { kind.id().to_owned() } else { format!("{}:{subject}", kind.id()) };
        Finding { kind, key, subject: subject.to_owned(), severity, title, time: self.now, evidence }
    }
}

fn sum_hours(rows: &[(u32, DomainCounts)]) -> DomainCounts {
    let mut c = DomainCounts::default();
    for (_, r) in rows {
        c.add(r);
    }
    c
}

fn pct(part: u64, whole: u64) -> f64 {
    if whole == 0 {
        0.0
    } else {
        // Counts stay far below 2^52.
        #[expect(clippy::cast_precision_loss)]
        let r = part as f64 * 100.0 / whole as f64;
        (r * 10.0).round() / 10.0
    }
}

fn example(d: &DeliveryRec) -> serde_json::Value {
    json!({
        "time": d.time.rfc3339(),
        "queue_id": d.queue_ids.first(),
        "sender": d.sender,
        "recipient": d.recipient,
        "relay": d.relay,
        "dsn": d.dsn,
        "response": d.response,
    })
}

/// `high_bounce_rate`, per direction.
///
/// # Errors
/// Store failure.
pub fn high_bounce_rate(c: &Ctx<'_>) -> Result<Vec<Finding>, StoreError> {
    let w = c.window(c.cfg.bounce_window_hours);
    let t = sum_hours(&c.store.hourly_live(w, c.overlay)?);
    let mut out = Vec::new();
    for (dir, counts, name) in [(Direction::Outbound, t.outbound, "outbound"), (Direction::Inbound, t.inbound, "inbound")] {
        let decided: u64 = counts.iter().sum();
        let bounced = counts[1];
        if decided < c.cfg.bounce_min_deliveries || bounced * 100 < u64::from(c.cfg.bounce_rate_percent) * decided {
            continue;
        }
        let rate = pct(bounced, decided);
        let severity =
            if bounced * 100 >= 4 * u64::from(c.cfg.bounce_rate_percent) * decided { Severity::Critical } else { Severity::Warning };
        let q = Query { status: Some("bounced".into()), window: w, limit: 50, ..Query::default() };
        let examples: Vec<serde_json::Value> =
            c.store.search_live(&q, c.overlay)?.iter().filter(|d| d.direction() == dir).take(INSIGHT_EXAMPLES).map(example).collect();
        out.push(c.finding(
            Kind::HighBounceRate,
            name,
            severity,
            format!("{rate}% of {name} deliveries bounced in the last {} hours", c.cfg.bounce_window_hours),
            json!({
                "direction": name, "window_hours": c.cfg.bounce_window_hours, "bounced": bounced, "sent": counts[0],
                "expired": counts[2], "rate_percent": rate, "threshold_percent": c.cfg.bounce_rate_percent, "examples": examples,
            }),
        ));
    }
    Ok(out)
}

/// `mail_inactivity`: nothing delivered for a while after regular traffic.
///
/// # Errors
/// Store failure.
pub fn mail_inactivity(c: &Ctx<'_>) -> Result<Vec<Finding>, StoreError> {
    let h = c.cfg.inactivity_hours;
    let recent = sum_hours(&c.store.hourly_live(c.window(h), c.overlay)?);
    let decided = |d: &DomainCounts| d.outbound.iter().chain(&d.inbound).sum::<u64>();
    if decided(&recent) > 0 {
        return Ok(Vec::new());
    }
    let before_w =
        Window { from: Some(Timestamp(c.now.0 - i64::from(h) * HOUR - 7 * 24 * HOUR)), to: Some(Timestamp(c.now.0 - i64::from(h) * HOUR)) };
    let rows = c.store.hourly_live(before_w, c.overlay)?;
    let before = decided(&sum_hours(&rows));
    if before < c.cfg.inactivity_min_before {
        return Ok(Vec::new());
    }
    let last = rows.iter().rev().find(|(_, d)| decided(d) > 0).map(|(hour, _)| Timestamp((i64::from(*hour) + 1) * HOUR).rfc3339());
    Ok(vec![c.finding(
        Kind::MailInactivity,
        "",
        Severity::Warning,
        format!("No mail delivered in the last {h} hours"),
        json!({"window_hours": h, "deliveries_week_before": before, "last_activity_hour": last}),
    )])
}

/// `deferred_growth`: deferrals to one domain piling up; with a live
/// overlay, messages that have been queued long enough to expire soon.
///
/// # Errors
/// Store failure.
pub fn deferred_growth(c: &Ctx<'_>) -> Result<Vec<Finding>, StoreError> {
    let h = c.cfg.deferred_window_hours;
    let now_w = c.window(h);
    let prev_w = Window { from: Some(Timestamp(c.now.0 - 2 * i64::from(h) * HOUR)), to: now_w.from };
    let prev: HashMap<String, u64> = c.store.domains_live(prev_w, c.overlay)?.into_iter().map(|(d, n)| (d, n.deferrals)).collect();
    let mut out = Vec::new();
    for (dom, n) in c.store.domains_live(now_w, c.overlay)? {
        let before = prev.get(&dom).copied().unwrap_or(0);
        if n.deferrals >= c.cfg.deferred_min && n.deferrals >= 2 * before {
            let shown = if dom.is_empty() { "(unknown domain)".to_owned() } else { dom.clone() };
            out.push(c.finding(
                Kind::DeferredGrowth,
                &dom,
                Severity::Warning,
                format!("Deliveries to {shown} keep being deferred ({} in {h} hours)", n.deferrals),
                json!({"domain": dom, "deferrals": n.deferrals, "previous_window": before, "window_hours": h, "sent": n.outbound[0]}),
            ));
        }
    }
    if let Some(o) = c.overlay {
        let limit = c.now.0 - i64::from(c.cfg.expiry_warn_hours) * HOUR;
        let mut old: Vec<&DeliveryRec> = o.inflight.iter().filter(|d| d.outcome() == Outcome::Pending && d.queue_time.0 < limit).collect();
        if !old.is_empty() {
            old.sort_by_key(|d| d.queue_time);
            let mut f = c.finding(
                Kind::DeferredGrowth,
                "queue_age",
                Severity::Warning,
                format!("{} recipient(s) queued for more than {} hours may soon expire", old.len(), c.cfg.expiry_warn_hours),
                json!({
                    "recipients": old.len(), "oldest_queued": old[0].queue_time.rfc3339(), "hours": c.cfg.expiry_warn_hours,
                    "examples": old.iter().take(INSIGHT_EXAMPLES).map(|d| example(d)).collect::<Vec<_>>(),
                }),
            );
            // Not a domain: no subject in titles.
            f.subject = String::new();
            out.push(f);
        }
    }
    Ok(out)
}

/// `brute_force`: one IP, or many together, failing to log in.
///
/// # Errors
/// Store failure.
pub fn brute_force(c: &Ctx<'_>) -> Result<Vec<Finding>, StoreError> {
    let ips = c.store.auth_live(c.window(1), c.overlay)?;
    let protos = |p: &[u64; 4]| json!({"smtp": p[0], "imap": p[1], "pop3": p[2], "other": p[3]});
    let mut out = Vec::new();
    let total: u64 = ips.iter().map(|(_, p)| p.iter().sum::<u64>()).sum();
    let mut single = 0;
    for (ip, p) in &ips {
        let n: u64 = p.iter().sum();
        if n >= c.cfg.brute_force_per_ip {
            single += n;
            let severity = if n >= 10 * c.cfg.brute_force_per_ip { Severity::Critical } else { Severity::Warning };
            out.push(c.finding(
                Kind::BruteForce,
                ip,
                severity,
                format!("{n} failed logins from {ip} in the last hour"),
                json!({"ip": ip, "failures": n, "protocols": protos(p), "window_hours": 1}),
            ));
        }
    }
    let attackers = ips.iter().filter(|(_, p)| p.iter().sum::<u64>() > 0).count() as u64;
    // Many addresses at once, beyond what the single-IP findings explain.
    if attackers >= c.cfg.brute_force_distributed_ips && total - single >= c.cfg.brute_force_distributed_failures {
        let top: Vec<serde_json::Value> =
            ips.iter().take(INSIGHT_EXAMPLES * 2).map(|(ip, p)| json!({"ip": ip, "failures": p.iter().sum::<u64>()})).collect();
        out.push(c.finding(
            Kind::BruteForce,
            "distributed",
            Severity::Critical,
            format!("{total} failed logins from {attackers} addresses in the last hour"),
            json!({"ips": attackers, "failures": total, "top": top, "window_hours": 1}),
        ));
    }
    Ok(out)
}

/// One provider's refusals in a span.
struct Hits {
    provider: classify::Provider,
    deferred: u64,
    bounced: u64,
    last: i64,
    reply: String,
    domains: BTreeMap<String, u64>,
    messages: Vec<serde_json::Value>,
    lines: Vec<String>,
}

/// `remote_blocked`: remote servers refusing mail citing a blocklist or a
/// policy block, from the delivery lines logged in `[from, now)`.
///
/// # Errors
/// Store failure.
pub fn remote_blocked(c: &Ctx<'_>, from: Timestamp, raw: Option<&Overlay>) -> Result<Vec<Finding>, StoreError> {
    let w = Window { from: Some(from), to: Some(c.now) };
    let (lines, _) = c.store.raw_matching(w, &["status=deferred", "status=bounced"], INSIGHT_SCAN_LINES, u64::MAX, raw)?;
    let mut by: BTreeMap<&'static str, Hits> = BTreeMap::new();
    for (t, line) in &lines {
        let Ok(ev) = crate::parse::parse(line) else { continue };
        let crate::parse::Kind::Delivery(d) = ev.kind else { continue };
        if !matches!(d.status, crate::parse::Status::Deferred | crate::parse::Status::Bounced) {
            continue;
        }
        let relay = String::from_utf8_lossy(d.relay);
        let reply = String::from_utf8_lossy(d.response);
        let Some(p) = classify::blocked_by(&relay, &reply) else { continue };
        let h = by.entry(p.id).or_insert_with(|| Hits {
            provider: p,
            deferred: 0,
            bounced: 0,
            last: t.0,
            reply: String::new(),
            domains: BTreeMap::new(),
            messages: Vec::new(),
            lines: Vec::new(),
        });
        if d.status == crate::parse::Status::Bounced {
            h.bounced += 1;
        } else {
            h.deferred += 1;
        }
        h.last = h.last.max(t.0);
        h.reply = reply.into_owned();
        let to = String::from_utf8_lossy(d.to).into_owned();
        let dom = to.rsplit_once('@').map_or_else(String::new, |(_, x)| x.to_ascii_lowercase());
        *h.domains.entry(dom).or_default() += 1;
        if h.messages.len() < INSIGHT_EXAMPLES {
            h.messages.push(json!({
                "time": t.rfc3339(), "queue_id": String::from_utf8_lossy(d.qid.0), "recipient": to,
                "status": if d.status == crate::parse::Status::Bounced { "bounced" } else { "deferred" },
            }));
        }
        if h.lines.len() < 3 {
            h.lines.push(String::from_utf8_lossy(line).into_owned());
        }
    }
    Ok(by
        .into_values()
        .map(|h| {
            let severity = if h.bounced > 0 { Severity::Critical } else { Severity::Warning };
            let mut f = c.finding(
                Kind::RemoteBlocked,
                h.provider.id,
                severity,
                format!("{} refused mail from this server ({} deferred, {} bounced)", h.provider.name, h.deferred, h.bounced),
                json!({
                    "provider": h.provider.name, "provider_id": h.provider.id, "delist_url": h.provider.delist,
                    "reply": h.reply, "deferred": h.deferred, "bounced": h.bounced, "domains": h.domains,
                    "messages": h.messages, "lines": h.lines,
                }),
            );
            f.time = Timestamp(h.last);
            h.provider.name.clone_into(&mut f.subject);
            f
        })
        .collect())
}

/// A SASL user's usual sending: recipients per hour, averaged over up to
/// a week of hours (an exponentially weighted mean once a week is seen).
#[derive(Clone, Copy, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct Baseline {
    pub mean: f64,
    pub hours: u32,
}

/// Per-user baselines (bounded by `MAX_BASELINE_USERS`).
pub type Baselines = BTreeMap<String, Baseline>;

/// Folds one complete hour of per-user recipient counts into the baselines.
pub fn observe<S: std::hash::BuildHasher>(b: &mut Baselines, counts: &HashMap<String, u64, S>) {
    for u in counts.keys() {
        b.entry(u.clone()).or_default();
    }
    for (u, base) in b.iter_mut() {
        #[expect(clippy::cast_precision_loss)]
        let n = counts.get(u).copied().unwrap_or(0) as f64;
        base.hours = base.hours.saturating_add(1);
        let k = f64::from(base.hours.min(168));
        base.mean += (n - base.mean) / k;
    }
    // Users idle for weeks fade out first when over the bound.
    if b.len() > crate::limits::MAX_BASELINE_USERS {
        let mut v: Vec<(String, Baseline)> = std::mem::take(b).into_iter().collect();
        v.sort_by(|x, y| y.1.mean.total_cmp(&x.1.mean));
        v.truncate(crate::limits::MAX_BASELINE_USERS);
        *b = v.into_iter().collect();
    }
}

/// Per-user sending in `w`: (recipients, distinct recipients, bounced,
/// client IPs, examples).
struct Sending {
    messages: HashSet<String>,
    recipients: u64,
    distinct: HashSet<String>,
    bounced: u64,
    ips: BTreeMap<String, u64>,
    examples: Vec<serde_json::Value>,
}

/// `compromised_account`: SASL users sending far above their baseline in
/// `w` (or with many bounces). `ds` are the deliveries of `w`. Also
/// returns the recipients per user, which [`observe`] folds in.
pub fn compromised(c: &Ctx<'_>, ds: &[DeliveryRec], base: &Baselines, w_hours: f64) -> (Vec<Finding>, HashMap<String, u64>) {
    let mut users: HashMap<&str, Sending> = HashMap::new();
    for d in ds {
        let Some(u) = d.sasl_user.as_deref() else { continue };
        let s = users.entry(u).or_insert_with(|| Sending {
            messages: HashSet::new(),
            recipients: 0,
            distinct: HashSet::new(),
            bounced: 0,
            ips: BTreeMap::new(),
            examples: Vec::new(),
        });
        s.recipients += 1;
        if s.messages.len() < INSIGHT_MAX_DISTINCT
            && let Some(q) = d.queue_ids.first()
        {
            s.messages.insert(q.clone());
        }
        if s.distinct.len() < INSIGHT_MAX_DISTINCT {
            s.distinct.insert(d.recipient.clone().unwrap_or_default().to_ascii_lowercase());
        }
        if d.outcome() == Outcome::Bounced {
            s.bounced += 1;
        }
        if let Some(ip) = &d.client_ip {
            *s.ips.entry(ip.clone()).or_default() += 1;
        }
        if s.examples.len() < INSIGHT_EXAMPLES {
            s.examples.push(example(d));
        }
    }
    let sent: HashMap<String, u64> = users.iter().map(|(u, s)| ((*u).to_owned(), s.recipients)).collect();
    let mut out = Vec::new();
    for (u, s) in users {
        let b = base.get(u).copied().unwrap_or_default();
        #[expect(clippy::cast_precision_loss)]
        let rate = s.recipients as f64 / w_hours.max(1.0 / 60.0);
        let known = b.hours >= 24;
        let factor = f64::from(c.cfg.compromised_factor);
        #[expect(clippy::cast_precision_loss)]
        let min = c.cfg.compromised_min_recipients as f64;
        // A known sender far above its usual rate; an unknown one far above
        // the minimum; or mostly bouncing (address lists being tried).
        // One message to a long list is a newsletter, not an attack.
        let messages = s.messages.len() as u64;
        let volume = s.recipients >= c.cfg.compromised_min_recipients
            && messages >= c.cfg.compromised_min_messages
            && if known { rate >= factor * b.mean.max(1.0) } else { rate >= 4.0 * min };
        let bouncing = s.recipients >= 20
            && messages >= c.cfg.compromised_min_messages.min(5)
            && s.bounced * 100 >= u64::from(c.cfg.compromised_bounce_percent) * s.recipients;
        if !(volume || bouncing) {
            continue;
        }
        let ips: Vec<&String> = s.ips.keys().take(INSIGHT_EXAMPLES).collect();
        out.push(c.finding(
            Kind::CompromisedAccount,
            u,
            Severity::Critical,
            format!(
                "Account {u} sent {messages} messages to {} recipients ({} bounced) in an hour, far above its usual",
                s.recipients, s.bounced
            ),
            json!({
                "user": u, "messages": messages, "recipients": s.recipients, "distinct_recipients": s.distinct.len(), "bounced": s.bounced,
                "baseline_per_hour": (b.mean * 10.0).round() / 10.0, "baseline_hours": b.hours, "client_ips": ips,
                "examples": s.examples, "reason": if volume { "volume" } else { "bounces" },
            }),
        ));
    }
    (out, sent)
}

/// `rbl_listed`: the server's public IP on DNSBLs. Answers in 127.0.0.0/8
/// mean listed, except 127.255.255.0/24 (the list refusing the query, e.g.
/// through a public resolver), which is reported as not checked.
///
/// # Errors
/// None of the look-ups got an answer (no DNS server reachable).
pub fn rbl_listed(c: &Ctx<'_>, ip: std::net::IpAddr, server: std::net::SocketAddr) -> Result<Vec<Finding>, crate::dns::DnsError> {
    let timeout = std::time::Duration::from_millis(crate::limits::DNS_TIMEOUT_MS);
    let mut out = Vec::new();
    let mut answered = 0;
    let mut last_err = None;
    for zone in &c.cfg.dnsbls {
        let name = crate::dns::reversed(ip, zone);
        let (codes, reason) = match crate::dns::dnsbl(server, ip, zone, timeout) {
            Ok(crate::dns::Listing::Listed { codes, reason }) => (codes, reason),
            Ok(_) => {
                answered += 1;
                continue;
            }
            Err(e) => {
                last_err = Some(e);
                continue;
            }
        };
        answered += 1;
        out.push(c.finding(
            Kind::RblListed,
            zone,
            Severity::Critical,
            format!("This server's IP {ip} is listed on {zone}"),
            json!({
                "ip": ip.to_string(), "zone": zone, "codes": codes.iter().map(ToString::to_string).collect::<Vec<_>>(),
                "reason": reason, "lookup": name,
            }),
        ));
    }
    match last_err {
        Some(e) if answered == 0 => Err(e),
        _ => Ok(out),
    }
}
