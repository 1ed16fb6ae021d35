#![expect(clippy::cast_possible_wrap, clippy::cast_possible_truncation, reason = "small test indices")]

use super::*;

const T0: Timestamp = Timestamp(1_800_000_000);

fn key(s: &str) -> IpKey {
    IpKey::parse(s.as_bytes()).expect("test address")
}

fn at(secs: i64) -> Timestamp {
    Timestamp(T0.0 + secs)
}

fn protect() -> Protect {
    Protect::new(ProtectConfig::default()).expect("default config")
}

fn policy<'a>(login: &'a str, pwhash: &'a str) -> Failure<'a> {
    Failure { login: login.as_bytes(), pwhash: pwhash.as_bytes(), proto: Proto::Imap, count: 1, source: Source::Policy }
}

fn log(login: &str, count: u32) -> Failure<'_> {
    Failure { login: login.as_bytes(), pwhash: b"", proto: Proto::Imap, count, source: Source::Log }
}

#[test]
fn ten_failures_with_three_passwords_block() {
    let mut p = protect();
    let ip = key("203.0.113.7");
    for i in 0..9 {
        assert!(!p.failure(ip, &policy("bob", ["aa", "bb", "cc"][i % 3]), at(i as i64)), "blocked early at {i}");
    }
    assert!(p.failure(ip, &policy("bob", "aa"), at(9)));
    let Verdict::Reject { until } = p.check(ip, at(10)) else { panic!("not rejected") };
    assert_eq!(until, at(9 + 3_600));
    let l = p.blocked(at(10));
    assert_eq!(l.len(), 1);
    assert_eq!((l[0].ip.as_str(), l[0].reason, l[0].evidence.failures, l[0].evidence.passwords), ("203.0.113.7", Reason::Passwords, 10, 3));
    assert_eq!(l[0].evidence.per_proto, [0, 10, 0, 0]);
    // The block ends on time.
    assert_eq!(p.check(ip, at(9 + 3_600)), Verdict::Allow);
}

#[test]
fn stale_password_office_is_not_blocked() {
    // One device retrying the same wrong password all day: one hash.
    let mut p = protect();
    let ip = key("198.51.100.20");
    for i in 0..500 {
        assert!(!p.failure(ip, &policy("carol@example.org", "5e884898da28"), at(i * 60)));
    }
    assert!(p.blocked(at(30_000)).is_empty());
    // Suspicious, so delayed, but never refused.
    assert_eq!(p.check(ip, at(30_000)), Verdict::Delay(2));
}

#[test]
fn five_distinct_logins_block() {
    let mut p = protect();
    let ip = key("203.0.113.8");
    for (i, u) in ["a", "b", "c", "d"].iter().enumerate() {
        assert!(!p.failure(ip, &policy(u, "x1"), at(i as i64)));
    }
    // `A` is `a`: logins are case-insensitive.
    assert!(!p.failure(ip, &policy("A", "x1"), at(5)));
    assert!(p.failure(ip, &policy("e", "x1"), at(6)));
    assert_eq!(p.blocked(at(7))[0].reason, Reason::Logins);
}

#[test]
fn logs_alone_need_two_logins() {
    let mut p = protect();
    let office = key("198.51.100.30");
    // A log line may stand for several attempts.
    assert!(!p.failure(office, &log("dave", 3), at(0)));
    for i in 1..20 {
        assert!(!p.failure(office, &log("dave", 1), at(i)));
    }
    let bot = key("198.51.100.31");
    assert!(!p.failure(bot, &log("admin", 9), at(0)));
    assert!(p.failure(bot, &log("info", 1), at(1)));
    assert_eq!(p.blocked(at(2)).iter().map(|l| (l.ip.as_str(), l.reason)).collect::<Vec<_>>(), [("198.51.100.31", Reason::LogFailures)]);
}

#[test]
fn the_same_failure_from_log_and_policy_counts_once() {
    let mut p = protect();
    let ip = key("203.0.113.9");
    for i in 0..9 {
        p.failure(ip, &policy("bob", ["aa", "bb", "cc"][i % 3]), at(i as i64));
        p.failure(ip, &log("bob", 1), at(i as i64));
    }
    assert!(p.blocked(at(10)).is_empty(), "9 failures seen twice are 9");
}

#[test]
fn window_slides() {
    let mut p = protect();
    let ip = key("203.0.113.10");
    for i in 0..9 {
        p.failure(ip, &policy("bob", ["aa", "bb", "cc"][i % 3]), at(i as i64 * 60));
    }
    // Two hours later the old failures are gone.
    assert!(!p.failure(ip, &policy("bob", "dd"), at(7_200)));
    assert_eq!(p.check(ip, at(7_200)), Verdict::Allow);
    // A failure older than the window (history read late) is not counted.
    assert!(!p.failure(ip, &policy("bob", "ee"), at(0)));
}

#[test]
fn repeat_blocks_double_up_to_a_day() {
    let mut p = protect();
    let ip = key("203.0.113.11");
    let mut t = 0;
    let mut lengths = Vec::new();
    for _ in 0..8 {
        let mut blocked = false;
        for j in 0..5 {
            blocked = p.failure(ip, &policy(&format!("u{j}"), "h"), at(t));
        }
        assert!(blocked);
        let l = &p.blocked(at(t))[0];
        lengths.push(l.until.0 - l.since.0);
        t = l.until.0 - T0.0;
    }
    assert_eq!(lengths, [3_600, 7_200, 14_400, 28_800, 57_600, 86_400, 86_400, 86_400]);
}

#[test]
fn exemptions() {
    let cfg = ProtectConfig {
        allowlist: vec!["198.51.100.0/24".into()],
        mynetworks: vec!["2001:db8:77::/48".into()],
        ..ProtectConfig::default()
    };
    let mut p = Protect::new(cfg).expect("config");
    for ip in ["127.0.0.2", "10.0.0.1", "192.168.1.1", "198.51.100.99", "2001:db8:77:1::5", "::1", "fe80::1"] {
        for j in 0..10 {
            assert!(!p.failure(key(ip), &policy(&format!("u{j}"), &format!("h{j}")), at(j)), "{ip} blocked");
        }
        assert_eq!(p.check(key(ip), at(11)), Verdict::Allow, "{ip}");
        assert!(p.exempt(key(ip), at(11)).is_some());
    }
    assert_eq!(p.exempt(key("127.0.0.2"), at(0)), Some(Exempt::Loopback));
    assert_eq!(p.exempt(key("198.51.100.1"), at(0)), Some(Exempt::Listed));
    assert_eq!(p.sizes().0, 0, "exempt addresses take no room");
    assert_eq!(p.stats().exempt_failures, 70);
}

#[test]
fn loopback_can_be_blocked_in_labs() {
    let mut p = Protect::new(ProtectConfig { block_loopback: true, ..ProtectConfig::default() }).expect("config");
    let ip = key("127.0.0.23");
    for j in 0..5 {
        p.failure(ip, &policy(&format!("u{j}"), "h"), at(j));
    }
    assert!(matches!(p.check(ip, at(6)), Verdict::Reject { .. }));
    // Private ranges stay exempt.
    assert_eq!(p.exempt(key("10.1.1.1"), at(0)), Some(Exempt::Reserved));
}

#[test]
fn a_recent_login_exempts_for_thirty_days_and_lifts_a_block() {
    let mut p = protect();
    let ip = key("203.0.113.12");
    for j in 0..5 {
        p.failure(ip, &policy(&format!("u{j}"), "h"), at(j));
    }
    assert!(matches!(p.check(ip, at(6)), Verdict::Reject { .. }));
    p.success(ip, at(7));
    assert_eq!(p.check(ip, at(8)), Verdict::Allow);
    for j in 0..10 {
        assert!(!p.failure(ip, &policy(&format!("v{j}"), &format!("h{j}")), at(10 + j)));
    }
    assert_eq!(p.exempt(ip, at(29 * 86_400)), Some(Exempt::RecentLogin));
    assert_eq!(p.exempt(ip, at(31 * 86_400)), None);
    // An admin's block stays.
    p.block(ip, 600, at(100));
    p.success(ip, at(101));
    assert!(matches!(p.check(ip, at(102)), Verdict::Reject { .. }));
}

#[test]
fn manual_block_and_unblock() {
    let mut p = protect();
    let ip = key("2001:db8:5:6::1");
    let until = p.block(key("2001:db8:5:6:ffff::9"), 600, at(0));
    assert_eq!(until, at(600));
    assert_eq!(p.check(ip, at(1)), Verdict::Reject { until: at(600) });
    let l = p.blocked(at(1));
    assert_eq!((l[0].ip.as_str(), l[0].reason), ("2001:db8:5:6::/64", Reason::Manual));
    assert!(p.unblock(ip, at(2)));
    assert!(!p.unblock(ip, at(3)));
    assert_eq!(p.check(ip, at(3)), Verdict::Allow);
    // Even a loopback address, if the admin says so.
    p.block(key("127.0.0.1"), 60, at(0));
    assert!(matches!(p.check(key("127.0.0.1"), at(1)), Verdict::Reject { .. }));
}

#[test]
fn the_ip_table_is_bounded_and_keeps_blocks() {
    let mut p = protect();
    let blocked = key("203.0.113.200");
    for j in 0..5 {
        p.failure(blocked, &policy(&format!("u{j}"), "h"), at(0));
    }
    // A flood of new addresses, each failing once, all within the window.
    let n = crate::limits::PROTECT_MAX_IPS as u32 + 500;
    for i in 0..n {
        let ip = IpKey::new(std::net::IpAddr::V4(std::net::Ipv4Addr::from(0x2d00_0000 + i)));
        p.failure(ip, &policy("x", "h"), at(1 + i64::from(i) / 1_000));
    }
    let (ips, _) = p.sizes();
    assert_eq!(ips, crate::limits::PROTECT_MAX_IPS);
    assert_eq!(p.stats().ip_evictions, 501);
    assert!(matches!(p.check(blocked, at(20)), Verdict::Reject { .. }), "a block survives the flood");
}

#[test]
fn the_success_table_is_bounded() {
    let mut p = protect();
    let n = crate::limits::PROTECT_MAX_SUCCESS_IPS as u32 + 10;
    for i in 0..n {
        p.success(IpKey::new(std::net::IpAddr::V4(std::net::Ipv4Addr::from(0x2d00_0000 + i))), at(i64::from(i)));
    }
    assert_eq!(p.sizes().1, crate::limits::PROTECT_MAX_SUCCESS_IPS);
    assert_eq!(p.stats().success_evictions, 10);
    // The oldest went first.
    assert_eq!(p.exempt(IpKey::new(std::net::IpAddr::V4(std::net::Ipv4Addr::from(0x2d00_0000))), at(n.into())), None);
    assert_eq!(
        p.exempt(IpKey::new(std::net::IpAddr::V4(std::net::Ipv4Addr::from(0x2d00_0000 + n - 1))), at(n.into())),
        Some(Exempt::RecentLogin)
    );
}

#[test]
fn per_ip_sets_saturate_without_growing() {
    let mut p = protect();
    let ip = key("203.0.113.13");
    for j in 0..100 {
        p.failure(
            ip,
            &Failure { login: b"bob", pwhash: format!("h{j}").as_bytes(), proto: Proto::Pop3, count: 1, source: Source::Policy },
            at(j),
        );
    }
    let e = p.blocked(at(100))[0].evidence;
    assert_eq!((e.failures, e.passwords), (10, 8), "evidence as of the block (the set saturates)");
    let s = p.ips.get(&ip).expect("the address is known");
    assert_eq!((s.hashes.len(), s.logins.len()), (crate::limits::PROTECT_MAX_HASHES_PER_IP, 1));
}

#[test]
fn log_lines_feed_failures_and_successes() {
    let shared: Shared = Arc::new(Mutex::new(protect()));
    let lines = [
        "Jan 27 06:36:56 mail dovecot: imap-login: Disconnected (auth failed, 1 attempts in 2 secs): user=<admin>, method=PLAIN, rip=203.0.113.50, lip=192.0.2.1, TLS, session=<a>",
        "Jan 27 06:36:57 mail dovecot: imap-login: Disconnected (auth failed, 9 attempts in 2 secs): user=<info>, method=PLAIN, rip=203.0.113.50, lip=192.0.2.1, TLS, session=<b>",
        "Jan 27 06:36:58 mail dovecot: imap-login: Login: user=<h@x.com>, method=LOGIN, rip=203.0.113.60, lip=192.0.2.1, mpid=21711, TLS",
        "Jan 27 06:36:59 mail postfix/smtpd[1]: warning: unknown[203.0.113.70]: SASL LOGIN authentication failed: UGFzc3dvcmQ6",
    ];
    for l in lines {
        let ev = crate::parse::parse(l.as_bytes()).expect("parsed");
        observe_log(&shared, &ev, at(0));
    }
    let mut g = lock(&shared);
    assert_eq!(g.blocked(at(1)).iter().map(|l| l.ip.as_str()).collect::<Vec<_>>(), ["203.0.113.50"]);
    assert_eq!(g.exempt(key("203.0.113.60"), at(1)), Some(Exempt::RecentLogin));
    assert_eq!(g.stats().failures, 3);
    assert_eq!(g.check(key("203.0.113.70"), at(1)), Verdict::Allow);
}

/// Five distinct logins failing from `ip` at time 0: blocks it.
fn five_logins(p: &mut Protect, ip: &str) {
    for u in ["a", "b", "c", "d", "e"] {
        p.failure(key(ip), &Failure { login: u.as_bytes(), pwhash: b"", proto: Proto::Imap, count: 1, source: Source::Policy }, at(0));
    }
}

#[test]
fn saved_state_round_trips_and_drops_what_ended() {
    let mut p = protect();
    five_logins(&mut p, "203.0.113.77");
    p.block(key("2001:db8:1::5"), 60, at(0));
    p.success(key("203.0.113.5"), at(0));
    p.set_admin_allowlist(vec!["192.0.2.0/24".into()]).expect("valid");
    assert!(p.take_dirty() && !p.take_dirty());
    let saved = p.saved(at(10));
    assert_eq!(saved.blocks.len(), 2);
    let json = serde_json::to_string(&saved).expect("json");
    let back: super::persist::Saved = serde_json::from_str(&json).expect("decodes");
    assert_eq!(back, saved);

    // One minute later the manual block has ended; the rest comes back.
    let mut q = protect();
    assert_eq!(q.restore(back, at(120)), 1);
    assert_eq!(q.blocked(at(120)).iter().map(|l| l.ip.as_str()).collect::<Vec<_>>(), ["203.0.113.77"]);
    assert_eq!(q.blocked(at(120))[0].evidence.logins, 5);
    assert_eq!(q.exempt(key("203.0.113.5"), at(120)), Some(Exempt::RecentLogin));
    assert_eq!(q.exempt(key("192.0.2.9"), at(120)), Some(Exempt::Listed));
    assert!(!q.take_dirty(), "a restored state is the saved one");
    // Entries that do not parse are skipped, not fatal.
    let bad = super::persist::Saved { logins: vec![("nonsense".into(), 0)], ..Default::default() };
    assert_eq!(protect().restore(bad, at(0)), 1);
}

#[test]
fn allowlisting_ends_automatic_blocks_only() {
    let mut p = protect();
    five_logins(&mut p, "203.0.113.77");
    p.block(key("203.0.113.78"), 600, at(0));
    assert!(p.set_admin_allowlist(vec!["bad entry".into()]).is_err());
    p.set_admin_allowlist(vec!["203.0.113.0/24".into()]).expect("valid");
    assert_eq!(p.blocked(at(1)).iter().map(|l| l.ip.as_str()).collect::<Vec<_>>(), ["203.0.113.78"]);
}
