//! Property tests: the fast parser against naive `split`-based oracles on
//! generated lines, and "never panics" on arbitrary bytes.

use super::{Kind, Parser, RawTime, Status, parse};
use proptest::prelude::*;

const MONTHS: [&str; 12] = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];

/// Naive oracle for a classic header: split on spaces.
fn oracle_header(line: &str) -> (u8, u8, u32, String, String, Option<u32>, String) {
    let mut it = line.split(' ').filter(|s| !s.is_empty());
    let mon = it.next().unwrap();
    let day: u8 = it.next().unwrap().parse().unwrap();
    let t: Vec<u32> = it.next().unwrap().split(':').map(|x| x.parse().unwrap()).collect();
    let host = it.next().unwrap().to_owned();
    let prog = it.next().unwrap();
    let (name, pid) = match prog.trim_end_matches(':').split_once('[') {
        Some((n, p)) => (n.to_owned(), Some(p.trim_end_matches(']').parse().unwrap())),
        None => (prog.trim_end_matches(':').to_owned(), None),
    };
    let msg = line.split_once(": ").unwrap().1.to_owned();
    let m = u8::try_from(MONTHS.iter().position(|x| *x == mon).unwrap() + 1).unwrap();
    (m, day, t[0] * 3600 + t[1] * 60 + t[2], host, name, pid, msg)
}

/// Naive oracle for a delivery status line's fields.
fn oracle_delivery(msg: &str) -> Vec<(String, String)> {
    let (_, rest) = msg.split_once(": ").unwrap();
    let (fields, _) = rest.split_once(", status=").unwrap();
    let status = rest.split_once(", status=").unwrap().1;
    let mut v: Vec<(String, String)> = fields
        .split(", ")
        .map(|kv| kv.split_once('=').map(|(k, v)| (k.to_owned(), v.trim_matches(['<', '>']).to_owned())).unwrap())
        .collect();
    let (word, text) = status.split_once(' ').unwrap_or((status, ""));
    v.push(("status".into(), word.into()));
    v.push(("response".into(), text.trim_start_matches('(').trim_end_matches(')').into()));
    v
}

fn addr() -> impl Strategy<Value = String> {
    ("[a-z][a-z0-9.+_-]{0,12}", "[a-z][a-z0-9-]{0,10}\\.[a-z]{2,4}").prop_map(|(l, d)| format!("{l}@{d}"))
}

fn qid() -> impl Strategy<Value = String> {
    prop_oneof!["[0-9A-F]{10,12}", "[0-9B-DF-HJ-NP-TV-Zb-df-hj-np-tv-z]{15}"]
}

proptest! {
    #[test]
    fn classic_header_matches_split_oracle(
        m in 1usize..=12, d in 1u8..=31, h in 0u32..24, mi in 0u32..60, s in 0u32..60,
        host in "[a-z][a-z0-9.-]{0,15}", inst in prop_oneof!["postfix", "postfix-out", "postfix/submission"],
        daemon in prop_oneof!["smtpd", "qmgr", "cleanup", "smtp"], pid in 1u32..4_000_000, q in qid(),
    ) {
        let line = format!("{} {:>2} {h:02}:{mi:02}:{s:02} {host} {inst}/{daemon}[{pid}]: {q}: removed", MONTHS[m - 1], d);
        let ev = parse(line.as_bytes());
        let (om, od, osecs, ohost, oprog, opid, _msg) = oracle_header(&line);
        // The message is not always one the daemon writes; the header is what is checked.
        if let Ok(ev) = ev {
            prop_assert_eq!(ev.time, RawTime::Bsd { month: om, day: od, secs: osecs });
            prop_assert_eq!(ev.host, ohost.as_bytes());
            prop_assert_eq!(ev.pid, opid);
            prop_assert_eq!(ev.instance, oprog.split('/').next().unwrap().as_bytes());
        } else {
            prop_assert!(daemon != "qmgr", "qmgr removed lines always parse: {}", line);
        }
    }

    #[test]
    fn delivery_fields_match_split_oracle(
        q in qid(), to in addr(), orig in proptest::option::of(addr()),
        relay in prop_oneof!["none", "local", "[a-z]{3,10}\\.example\\.com\\[192\\.0\\.2\\.[0-9]{1,3}\\]:25"],
        delay in "[0-9]{1,4}(\\.[0-9]{1,2})?", dsn in "[245]\\.[0-9]\\.[0-9]{1,2}",
        status in prop_oneof!["sent", "deferred", "bounced"], text in "[A-Za-z0-9 .:<>@-]{0,60}",
        daemon in prop_oneof!["smtp", "lmtp", "local", "virtual", "pipe"],
    ) {
        let orig_part = orig.as_ref().map(|o| format!("orig_to=<{o}>, ")).unwrap_or_default();
        let msg = format!("{q}: to=<{to}>, {orig_part}relay={relay}, delay={delay}, delays=0.1/0/0.2/{delay}, dsn={dsn}, status={status} ({text})");
        let line = format!("Jun  3 10:40:59 mail postfix/{daemon}[9717]: {msg}");
        let ev = parse(line.as_bytes()).map_err(|e| TestCaseError::fail(format!("{e:?}: {line}")))?;
        let Kind::Delivery(dl) = ev.kind else { return Err(TestCaseError::fail(format!("not a delivery: {line}"))) };
        for (k, v) in oracle_delivery(&msg) {
            let got: Option<&[u8]> = match k.as_str() {
                "to" => Some(dl.to),
                "orig_to" => dl.orig_to,
                "relay" => Some(dl.relay),
                "delay" => dl.delay,
                "delays" => dl.delays,
                "dsn" => dl.dsn,
                "response" => Some(dl.response),
                "status" => Some(match dl.status { Status::Sent => &b"sent"[..], Status::Deferred => b"deferred", Status::Bounced => b"bounced", _ => b"?" }),
                _ => continue,
            };
            prop_assert_eq!(got, Some(v.as_bytes()), "{} in {}", k, line);
        }
        prop_assert_eq!(dl.qid.0, q.as_bytes());
    }

    /// The parser that remembers the last stamp answers what `parse`
    /// answers, line after line: same or different seconds, padded or
    /// unpadded days, stamps that differ in one byte, other formats and
    /// garbage in between.
    #[test]
    fn remembered_stamps_change_nothing(lines in proptest::collection::vec(prop_oneof![
        (0usize..2, 1u8..=12, 0u32..3, 0u32..3, "[a-z]{1,3}", prop_oneof!["postfix/qmgr[1]: 1A2B3C4D5E: removed", "postfix/smtpd[2]: connect from a[192.0.2.1]", "dovecot: imap-login: Login: user=<u>, rip=192.0.2.2", "x"])
            .prop_map(|(m, d, mi, s, host, rest)| format!("{} {:>2} 10:{mi:02}:{s:02} {host} {rest}", MONTHS[m], d)),
        (1u8..=9, 0u32..3).prop_map(|(d, s)| format!("Jun {d} 10:00:0{s} mail postfix/qmgr[1]: 1A2B3C4D5E: removed")),
        (0u32..3).prop_map(|s| format!("2026-06-03T10:00:0{s}.123+02:00 mail postfix/qmgr[1]: 1A2B3C4D5E: removed")),
        proptest::collection::vec(any::<u8>(), 0..40).prop_map(|v| String::from_utf8_lossy(&v).into_owned()),
    ], 1..40)) {
        let mut p = Parser::new();
        for l in &lines {
            let (a, b) = (p.parse(l.as_bytes()), parse(l.as_bytes()));
            prop_assert_eq!(format!("{a:?}"), format!("{b:?}"), "{}", l);
        }
    }

    #[test]
    fn arbitrary_bytes_never_panic(data in proptest::collection::vec(any::<u8>(), 0..600)) {
        let _ = parse(&data);
    }

    #[test]
    fn mutated_real_lines_never_panic(cut in 0usize..400, byte in any::<u8>(), at in 0usize..400) {
        let base = b"Jun  3 10:40:57 mail postfix/smtp[9710]: 4AA091855DA0: to=<a@b.com>, relay=127.0.0.1[127.0.0.1]:10024, delay=0.23, delays=0.15/0/0/0.08, dsn=2.0.0, status=sent (250 2.0.0 Ok: queued as 776E41855DB2)";
        let mut v = base.to_vec();
        if at < v.len() { v[at] = byte; }
        v.truncate(cut.min(v.len()));
        let _ = parse(&v);
    }
}
