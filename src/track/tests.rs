use super::*;
use crate::clock::Resolver;
use crate::parse::parse;

/// Feeds `log` through the parser and a fresh tracker; returns everything
/// emitted plus the in-flight view.
fn run(log: &str) -> (Tracker, Output) {
    let mut t = Tracker::new();
    let mut r = Resolver::new(jiff::tz::TimeZone::UTC, 2020);
    for line in log.lines() {
        if let Ok(ev) = parse(line.as_bytes()) {
            let ts = r.resolve(ev.time);
            t.push(&ev, ts);
        }
    }
    let out = t.drain();
    (t, out)
}

fn count(out: &Output, f: impl Fn(&EventKind) -> bool) -> usize {
    out.events.iter().filter(|e| f(&e.kind)).count()
}

const BOUNCE_VIA_FILTER: &str = "\
Jun  3 10:40:57 mail postfix/submission/smtpd[9708]: connect from some.domain.name[1.2.3.4]
Jun  3 10:40:57 mail postfix/submission/smtpd[9708]: 4AA091855DA0: client=some.domain.name[1.2.3.4], sasl_method=PLAIN, sasl_username=user@sender.com
Jun  3 10:40:57 mail postfix/sender-cleanup/cleanup[9709]: 4AA091855DA0: message-id=<ca10035e@mail.sender.com>
Jun  3 10:40:57 mail postfix/qmgr[1005]: 4AA091855DA0: from=<user@sender.com>, size=391, nrcpt=1 (queue active)
Jun  3 10:40:57 mail postfix/submission/smtpd[9708]: disconnect from some.domain.name[1.2.3.4] ehlo=2 starttls=1 auth=1 mail=1 rcpt=1 data=1 quit=1 commands=8
Jun  3 10:40:57 mail postfix/smtpd[9715]: connect from localhost[127.0.0.1]
Jun  3 10:40:57 mail postfix/smtpd[9715]: 776E41855DB2: client=localhost[127.0.0.1]
Jun  3 10:40:57 mail postfix/cleanup[9716]: 776E41855DB2: message-id=<ca10035e@mail.sender.com>
Jun  3 10:40:57 mail postfix/qmgr[1005]: 776E41855DB2: from=<user@sender.com>, size=1111, nrcpt=1 (queue active)
Jun  3 10:40:57 mail postfix/smtpd[9715]: disconnect from localhost[127.0.0.1] ehlo=1 mail=1 rcpt=1 data=1 quit=1 commands=5
Jun  3 10:40:57 mail postfix/smtp[9710]: 4AA091855DA0: to=<invalid.email@example.com>, relay=127.0.0.1[127.0.0.1]:10024, delay=0.23, delays=0.15/0/0/0.08, dsn=2.0.0, status=sent (250 2.0.0 from MTA(smtp:[127.0.0.1]:10025): 250 2.0.0 Ok: queued as 776E41855DB2)
Jun  3 10:40:57 mail postfix/qmgr[1005]: 4AA091855DA0: removed
Jun  3 10:40:59 mail postfix/smtp[9890]: 776E41855DB2: to=<invalid.email@example.com>, relay=mx.example.com[11.22.33.44]:25, delay=1.9, delays=0/0/1.5/0.37, dsn=5.1.1, status=bounced (host mx.example.com[11.22.33.44] said: 550 5.1.1 no such user (in reply to RCPT TO command))
Jun  3 10:40:59 mail postfix/cleanup[9716]: A48191855DA0: message-id=<20200603104059.A48191855DA0@mail.sender.com>
Jun  3 10:40:59 mail postfix/qmgr[1005]: A48191855DA0: from=<>, size=3147, nrcpt=1 (queue active)
Jun  3 10:40:59 mail postfix/bounce[9719]: 776E41855DB2: sender non-delivery notification: A48191855DA0
Jun  3 10:40:59 mail postfix/qmgr[1005]: 776E41855DB2: removed
Jun  3 10:40:59 mail postfix/lmtp[9717]: A48191855DA0: to=<user@sender.com>, relay=mail.sender.com[/var/run/dovecot/lmtp], delay=0.03, delays=0.01/0/0.02/0.01, dsn=2.0.0, status=sent (250 2.0.0 <user@sender.com> Saved)
Jun  3 10:40:59 mail postfix/qmgr[1005]: A48191855DA0: removed
";

#[test]
fn bounce_through_content_filter_is_one_bounced_delivery() {
    let (t, out) = run(BOUNCE_VIA_FILTER);
    assert!(t.is_empty(), "everything finished");
    assert_eq!(out.deliveries.len(), 1, "{:#?}", out.deliveries);
    let d = &out.deliveries[0];
    assert_eq!(d.outcome(), Outcome::Bounced);
    assert_eq!(d.direction(), Direction::Outbound);
    assert_eq!(d.queue_ids, ["4AA091855DA0", "776E41855DB2"]);
    assert_eq!(d.sender.as_deref(), Some("user@sender.com"));
    assert_eq!(d.notification_queue_id.as_deref(), Some("A48191855DA0"));
    assert_eq!(d.sasl_user.as_deref(), Some("user@sender.com"));
    let queued: i32 = out.events.iter().map(|e| if let EventKind::Queued(n) = e.kind { i32::from(n) } else { 0 }).sum();
    assert_eq!(queued, 1, "the re-injected copy is not a second message");
    assert_eq!(count(&out, |k| matches!(k, EventKind::Notification(NoticeKind::NonDelivery))), 1);
    assert_eq!(count(&out, |k| matches!(k, EventKind::Connection)), 2);
}

#[test]
fn filter_copy_seen_after_the_hop_is_still_linked() {
    // Same flow, but the re-injected copy's lines come after the parent's
    // status line (the filter answered before Postfix logged the copy).
    let log = "\
Jun  3 10:40:57 mail postfix/smtpd[1]: 4AA091855DA0: client=a[1.2.3.4]
Jun  3 10:40:57 mail postfix/qmgr[2]: 4AA091855DA0: from=<u@s.com>, size=1, nrcpt=1 (queue active)
Jun  3 10:40:57 mail postfix/smtp[3]: 4AA091855DA0: to=<r@x.com>, relay=127.0.0.1[127.0.0.1]:10024, delay=0.2, delays=0/0/0/0, dsn=2.0.0, status=sent (250 2.0.0 Ok: queued as 776E41855DB2)
Jun  3 10:40:57 mail postfix/qmgr[2]: 4AA091855DA0: removed
Jun  3 10:40:58 mail postfix/smtpd[4]: 776E41855DB2: client=localhost[127.0.0.1]
Jun  3 10:40:58 mail postfix/qmgr[2]: 776E41855DB2: from=<u@s.com>, size=1, nrcpt=1 (queue active)
Jun  3 10:40:59 mail postfix/smtp[3]: 776E41855DB2: to=<r@x.com>, relay=mx[9.9.9.9]:25, delay=1, delays=0/0/0/0, dsn=2.0.0, status=sent (250 ok)
Jun  3 10:40:59 mail postfix/qmgr[2]: 776E41855DB2: removed
";
    let (t, out) = run(log);
    assert!(t.is_empty());
    assert_eq!(out.deliveries.len(), 1, "{:#?}", out.deliveries);
    assert_eq!(out.deliveries[0].queue_ids, ["4AA091855DA0", "776E41855DB2"]);
    assert_eq!(out.deliveries[0].relay.as_deref(), Some("mx[9.9.9.9]:25"));
    let queued: i32 = out.events.iter().map(|e| if let EventKind::Queued(n) = e.kind { i32::from(n) } else { 0 }).sum();
    assert_eq!(queued, 1);
}

#[test]
fn deferrals_then_sent_and_expiry() {
    let log = "\
Jan  1 10:00:00 h postfix/smtpd[1]: 1111111111: client=a[1.2.3.4]
Jan  1 10:00:00 h postfix/qmgr[2]: 1111111111: from=<s@a.com>, size=1, nrcpt=2 (queue active)
Jan  1 10:00:01 h postfix/smtp[3]: 1111111111: to=<x@b.com>, relay=mx[5.5.5.5]:25, delay=1, delays=0/0/0/0, dsn=4.4.1, status=deferred (connect timed out)
Jan  1 10:00:01 h postfix/smtp[3]: 1111111111: to=<y@c.com>, relay=mx[6.6.6.6]:25, delay=1, delays=0/0/0/0, dsn=4.4.1, status=deferred (greylisted)
Jan  1 10:10:01 h postfix/smtp[3]: 1111111111: to=<y@c.com>, relay=mx[6.6.6.6]:25, delay=601, delays=0/0/0/0, dsn=2.0.0, status=sent (250 ok)
Jan  6 10:00:00 h postfix/qmgr[2]: 1111111111: from=<s@a.com>, status=expired, returned to sender
Jan  6 10:00:00 h postfix/bounce[4]: 1111111111: sender non-delivery notification: 2222222222
Jan  6 10:00:00 h postfix/qmgr[2]: 1111111111: removed
";
    let (_, out) = run(log);
    let mut got: Vec<_> = out.deliveries.iter().map(|d| (d.recipient.clone().unwrap_or_default(), d.outcome(), d.deferrals)).collect();
    got.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(got, [("x@b.com".into(), Outcome::Expired, 1), ("y@c.com".into(), Outcome::Sent, 1)]);
    assert_eq!(count(&out, |k| matches!(k, EventKind::Deferral { .. })), 2);
    assert_eq!(count(&out, |k| matches!(k, EventKind::WithDeferral(1))), 1);
}

#[test]
fn pending_messages_are_visible_in_flight() {
    let log = "\
Jan  1 10:00:00 h postfix/smtpd[1]: 1111111111: client=a[1.2.3.4]
Jan  1 10:00:00 h postfix/qmgr[2]: 1111111111: from=<s@a.com>, size=1, nrcpt=2 (queue active)
Jan  1 10:00:01 h postfix/smtp[3]: 1111111111: to=<x@b.com>, relay=mx[5.5.5.5]:25, delay=1, delays=0/0/0/0, dsn=4.4.1, status=deferred (connect timed out)
";
    let (t, out) = run(log);
    assert!(out.deliveries.is_empty());
    let v = t.inflight_deliveries();
    assert_eq!(v.len(), 2, "one known pending recipient and one announced by nrcpt");
    assert!(v.iter().all(|d| d.outcome() == Outcome::Pending));
}

#[test]
fn tracker_state_round_trips_through_postcard() {
    let (t, _) = run(BOUNCE_VIA_FILTER.split_inclusive('\n').take(9).collect::<String>().as_str());
    let bytes = postcard::to_allocvec(&t).expect("encode");
    let back: Tracker = postcard::from_bytes(&bytes).expect("decode");
    assert_eq!(back.len(), t.len());
    assert_eq!(back.inflight_deliveries(), t.inflight_deliveries());
}

#[test]
fn capacity_is_bounded_and_evictions_counted() {
    let mut t = Tracker::new();
    let mut r = Resolver::new(jiff::tz::TimeZone::UTC, 2020);
    for i in 0..(MAX_INFLIGHT + 100) {
        let line = format!("Jan  1 10:00:00 h postfix/smtpd[1]: {:010X}: client=a[1.2.3.4]", i + 0x10_0000);
        let ev = parse(line.as_bytes()).expect("parse");
        let ts = r.resolve(ev.time);
        t.push(&ev, ts);
    }
    assert!(t.len() <= MAX_INFLIGHT);
    assert!(t.counters.evictions >= 100);
}

#[test]
fn several_recipients_through_one_filter_hop_count_once_each() {
    let log = "\
Jun  3 10:40:57 mail postfix/smtpd[1]: 4AA091855DA0: client=a[1.2.3.4]
Jun  3 10:40:57 mail postfix/qmgr[2]: 4AA091855DA0: from=<u@s.com>, size=1, nrcpt=2 (queue active)
Jun  3 10:40:57 mail postfix/smtpd[4]: 776E41855DB2: client=localhost[127.0.0.1]
Jun  3 10:40:57 mail postfix/qmgr[2]: 776E41855DB2: from=<u@s.com>, size=1, nrcpt=2 (queue active)
Jun  3 10:40:57 mail postfix/smtp[3]: 4AA091855DA0: to=<r1@x.com>, relay=127.0.0.1[127.0.0.1]:10024, delay=0.2, delays=0/0/0/0, dsn=2.0.0, status=sent (250 2.0.0 Ok: queued as 776E41855DB2)
Jun  3 10:40:57 mail postfix/smtp[3]: 4AA091855DA0: to=<r2@x.com>, relay=127.0.0.1[127.0.0.1]:10024, delay=0.2, delays=0/0/0/0, dsn=2.0.0, status=sent (250 2.0.0 Ok: queued as 776E41855DB2)
Jun  3 10:40:57 mail postfix/qmgr[2]: 4AA091855DA0: removed
Jun  3 10:40:59 mail postfix/smtp[3]: 776E41855DB2: to=<r1@x.com>, relay=mx[9.9.9.9]:25, delay=1, delays=0/0/0/0, dsn=2.0.0, status=sent (250 ok)
Jun  3 10:40:59 mail postfix/smtp[3]: 776E41855DB2: to=<r2@x.com>, relay=mx[9.9.9.9]:25, delay=1, delays=0/0/0/0, dsn=2.0.0, status=sent (250 ok)
Jun  3 10:40:59 mail postfix/qmgr[2]: 776E41855DB2: removed
";
    let (t, out) = run(log);
    assert!(t.is_empty(), "nothing left waiting for a second copy");
    assert_eq!(out.deliveries.len(), 2, "{:#?}", out.deliveries);
    assert!(out.deliveries.iter().all(|d| d.relay.as_deref() == Some("mx[9.9.9.9]:25")));
}

#[test]
fn reinjected_copy_waiting_for_delivery_counts_its_recipients_as_pending() {
    let log = "\
Jun  3 10:40:57 mail postfix/smtpd[1]: 4AA091855DA0: client=a[1.2.3.4]
Jun  3 10:40:57 mail postfix/qmgr[2]: 4AA091855DA0: from=<u@s.com>, size=1, nrcpt=2 (queue active)
Jun  3 10:40:57 mail postfix/smtpd[4]: 776E41855DB2: client=localhost[127.0.0.1]
Jun  3 10:40:57 mail postfix/qmgr[2]: 776E41855DB2: from=<u@s.com>, size=1, nrcpt=2 (queue active)
Jun  3 10:40:57 mail postfix/smtp[3]: 4AA091855DA0: to=<r1@x.com>, relay=127.0.0.1[127.0.0.1]:10024, delay=0.2, delays=0/0/0/0, dsn=2.0.0, status=sent (250 2.0.0 Ok: queued as 776E41855DB2)
Jun  3 10:40:57 mail postfix/smtp[3]: 4AA091855DA0: to=<r2@x.com>, relay=127.0.0.1[127.0.0.1]:10024, delay=0.2, delays=0/0/0/0, dsn=2.0.0, status=sent (250 2.0.0 Ok: queued as 776E41855DB2)
Jun  3 10:40:57 mail postfix/qmgr[2]: 4AA091855DA0: removed
";
    let (t, out) = run(log);
    assert!(out.deliveries.is_empty());
    let v = t.inflight_deliveries();
    assert_eq!(v.len(), 2, "{v:#?}");
    assert!(v.iter().all(|d| d.outcome() == Outcome::Pending && d.queue_ids == ["4AA091855DA0", "776E41855DB2"]));
}

/// A response longer than `MAX_RESPONSE` is kept cut, within the bound,
/// and ends with "…" (also when the cut falls inside a character); a
/// response within the bound is kept whole, a later attempt's replacing it.
#[test]
fn long_responses_are_cut_with_a_mark() {
    let long = format!("host mx.example.com[11.22.33.44] said: 550 5.7.1 {} (in reply to MAIL FROM command)", "blocké ".repeat(80));
    assert!(long.len() > MAX_RESPONSE);
    let log = format!(
        "\
Jun  3 10:40:57 mail postfix/qmgr[1005]: 4AA091855DA0: from=<user@sender.com>, size=391, nrcpt=2 (queue active)
Jun  3 10:40:59 mail postfix/smtp[9890]: 4AA091855DA0: to=<a@example.com>, relay=mx.example.com[11.22.33.44]:25, delay=1.9, delays=0/0/1.5/0.37, dsn=4.7.1, status=deferred ({long})
Jun  3 10:40:59 mail postfix/smtp[9890]: 4AA091855DA0: to=<b@example.com>, relay=mx.example.com[11.22.33.44]:25, delay=1.9, delays=0/0/1.5/0.37, dsn=5.7.1, status=bounced ({long})
Jun  3 10:50:59 mail postfix/smtp[9890]: 4AA091855DA0: to=<a@example.com>, relay=mx.example.com[11.22.33.44]:25, delay=600, delays=0/0/1.5/0.37, dsn=2.0.0, status=sent (250 2.0.0 Ok)
Jun  3 10:50:59 mail postfix/qmgr[1005]: 4AA091855DA0: removed
"
    );
    let (_, out) = run(&log);
    let by = |r: &str| out.deliveries.iter().find(|d| d.recipient.as_deref() == Some(r)).expect("delivery");
    let cut = by("b@example.com").response.clone().expect("response");
    assert!(cut.len() <= MAX_RESPONSE && cut.len() > MAX_RESPONSE - 8, "{} bytes", cut.len());
    assert!(cut.ends_with('…'), "{cut}");
    assert!(long.starts_with(cut.trim_end_matches('…')), "{cut}");
    assert_eq!(by("a@example.com").response.as_deref(), Some("250 2.0.0 Ok"));
}
