//! `postlens report`: a plain-text day summary in the spirit of pflogsumm:
//! grand totals, per-hour traffic, top domains, bounce and deferral reasons,
//! auth-failure sources.

use crate::store::query::Stats;
use crate::track::{DeliveryRec, Direction, Outcome};
use jiff::tz::TimeZone;
use std::collections::HashMap;
use std::fmt::Write;

fn domain(a: Option<&str>) -> String {
    a.and_then(|a| a.rsplit_once('@').map(|(_, d)| d.to_ascii_lowercase())).unwrap_or_else(|| "(unknown)".into())
}

fn top(map: HashMap<String, u64>, n: usize) -> Vec<(String, u64)> {
    let mut v: Vec<_> = map.into_iter().collect();
    v.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    v.truncate(n);
    v
}

pub fn render(day: &str, s: &Stats, dels: &[DeliveryRec], domains: &[(String, crate::store::DomainCounts)], tz: &TimeZone) -> String {
    let mut t = String::new();
    let d = &s.deliveries;
    let _ = writeln!(t, "Postfix log summary for {day}\n");
    let _ = writeln!(t, "Grand totals\n------------");
    let _ = writeln!(t, "{:>8}  messages queued", s.messages.queued);
    let _ = writeln!(t, "{:>8}  delivered (sent)   {:>8} outbound {:>8} inbound", d.sent, d.outbound.sent, d.inbound.sent);
    let _ = writeln!(t, "{:>8}  bounced", d.bounced);
    let _ = writeln!(t, "{:>8}  expired", d.expired);
    let _ = writeln!(t, "{:>8}  pending", d.pending);
    let _ = writeln!(t, "{:>8}  deferrals          {:>8} deliveries sent after a deferral", s.deferrals, s.deferred_then_sent);
    let _ = writeln!(t, "{:>8}  returned to sender (non-delivery notices)", s.notifications.non_delivery);
    let _ = writeln!(t, "{:>8}  rejected", s.rejected);
    let _ = writeln!(t, "{:>8}  SMTP connections", s.connections);
    let _ = writeln!(t, "{:>8}  authentication failures from {} IPs\n", s.auth_failures.total, s.auth_failures.by_ip.len());

    let mut hours = [[0u64; 3]; 24];
    let (mut out_dom, mut in_dom, mut bounce_dom, mut senders, mut reasons) =
        (HashMap::new(), HashMap::new(), HashMap::new(), HashMap::new(), HashMap::new());
    for x in dels {
        let h = jiff::Timestamp::from_second(x.time.0).map_or(0, |t| t.to_zoned(tz.clone()).hour());
        let h = usize::try_from(h).unwrap_or(0).min(23);
        match x.outcome() {
            Outcome::Sent => hours[h][0] += 1,
            Outcome::Bounced | Outcome::Expired => hours[h][1] += 1,
            Outcome::Pending => hours[h][2] += 1,
        }
        let dom = domain(x.recipient.as_deref());
        match x.direction() {
            Direction::Outbound => *out_dom.entry(dom.clone()).or_insert(0) += 1,
            Direction::Inbound => *in_dom.entry(dom.clone()).or_insert(0) += 1,
        }
        if matches!(x.outcome(), Outcome::Bounced | Outcome::Expired) {
            *bounce_dom.entry(dom).or_insert(0) += 1;
            let r: String = x.response.as_deref().unwrap_or("").chars().take(100).collect();
            *reasons.entry(r).or_insert(0) += 1;
        }
        *senders.entry(x.sender.clone().map_or_else(|| "(unknown)".into(), |s| if s.is_empty() { "<>".into() } else { s })).or_insert(0) +=
            1;
    }
    let _ = writeln!(t, "Per-hour deliveries\n-------------------\n  hour      sent  bounced  pending");
    for (h, c) in hours.iter().enumerate() {
        let _ = writeln!(t, "  {h:02}:00 {:>8} {:>8} {:>8}", c[0], c[1], c[2]);
    }
    for (title, map) in [
        ("Top outbound recipient domains", out_dom),
        ("Top inbound recipient domains", in_dom),
        ("Top senders", senders),
        ("Bounced/expired by recipient domain", bounce_dom),
        ("Bounce reasons", reasons),
    ] {
        let _ = writeln!(t, "\n{title}\n{}", "-".repeat(title.len()));
        let v = top(map, 10);
        if v.is_empty() {
            let _ = writeln!(t, "  none");
        }
        for (k, n) in v {
            let _ = writeln!(t, "{n:>8}  {k}");
        }
    }
    let _ = writeln!(t, "\nDeferrals by recipient domain\n-----------------------------");
    let mut deferred: Vec<_> = domains.iter().filter(|(_, c)| c.deferrals > 0).collect();
    deferred.sort_by_key(|(d, c)| (std::cmp::Reverse(c.deferrals), d.clone()));
    if deferred.is_empty() {
        let _ = writeln!(t, "  none");
    }
    for (d, c) in deferred.into_iter().take(10) {
        let _ = writeln!(t, "{:>8}  {}", c.deferrals, if d.is_empty() { "(none)" } else { d });
    }
    let _ = writeln!(t, "\nAuthentication failures by IP\n-----------------------------");
    if s.auth_failures.by_ip.is_empty() {
        let _ = writeln!(t, "  none");
    }
    let mut ips: Vec<_> = s.auth_failures.by_ip.iter().collect();
    ips.sort_by_key(|(_, c)| std::cmp::Reverse(c.smtp + c.imap + c.pop3 + c.other));
    for (ip, c) in ips.into_iter().take(10) {
        let _ = writeln!(
            t,
            "{:>8}  {ip}  (smtp {} imap {} pop3 {} other {})",
            c.smtp + c.imap + c.pop3 + c.other,
            c.smtp,
            c.imap,
            c.pop3,
            c.other
        );
    }
    t
}
