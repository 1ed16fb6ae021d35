//! Conformance with the crowdsecurity/hub parser tests (`.tests/<name>/`):
//! `parser.assert` states, per log line and parser stage, the fields
//! `CrowdSec` extracts. We parse each line of the test's `.log` file and
//! compare the fields with a postlens counterpart:
//! - `program` (first component = our instance, last = our daemon; `dovecot`
//!   = a Dovecot daemon), `pid`, `Meta.machine` (= our syslog host);
//! - the time: `timestamp8601` / `Meta.timestamp` in full where the line has a
//!   year; for classic lines month, day and time of day (`CrowdSec` fills in the
//!   year of the test run, which is not in the line);
//! - `remote_addr`/`source_ip`/`dovecot_remote_ip` (the client address),
//!   `remote_host`/`source_hostname` (its name), reject `command` (stage),
//!   `smtp_basic_status_code`/`smtp_enhanced_status_code`, the envelope
//!   `from`/`to` (`Unmarshaled.postfix`), `dovecot_user`, `protocol`
//!   (imap/pop3 login process) and `Meta.dovecot_login_result == auth_failed`
//!   (= our `AuthFailed` or `AuthEvidence`).
//!
//! Every other asserted key (message text, kvItems, reason, helo, pregreet,
//! `log_type`, …) has no postlens meaning and is counted as skipped.
//! Test directories without a `parser.assert` (scenario-only tests) still
//! have every line checked to parse.

mod common;

use jiff::tz::TimeZone;
use postlens::parse::{Daemon, Event, Kind, RawTime, parse};
use std::collections::BTreeMap;
use std::fmt::Write as _;

fn s(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Undoes Go string quoting as written in `parser.assert`.
fn unquote(v: &str) -> String {
    let inner = v.trim().strip_prefix('"').and_then(|x| x.strip_suffix('"')).unwrap_or(v);
    let mut out = String::new();
    let mut it = inner.chars();
    while let Some(c) = it.next() {
        if c == '\\' {
            out.extend(it.next());
        } else {
            out.push(c);
        }
    }
    out
}

/// `results["STAGE"]["PARSER"][IDX].Evt.Parsed["KEY"] == "VALUE"` → (IDX,
/// `Parsed.KEY`, VALUE). Also `Meta`, `Enriched` and `Unmarshaled["postfix"]`.
/// Sliced assertions (`["k"][4:] == …`) are returned with a `[4:]` suffix.
fn assertion(line: &str) -> Option<(usize, String, String)> {
    let mut r = line.strip_prefix("results")?;
    for _ in 0..2 {
        r = r.strip_prefix("[\"")?.split_once("\"]")?.1;
    }
    let (idx, rest) = r.strip_prefix('[')?.split_once(']')?;
    let idx: usize = idx.parse().ok()?;
    let rest = rest.strip_prefix(".Evt.")?;
    let (lhs, rhs) = rest.split_once(" == ")?;
    let (section, keys) = lhs.split_once('[')?;
    let keys = format!("[{keys}");
    let mut names = Vec::new();
    let mut k = keys.as_str();
    while let Some(r) = k.strip_prefix("[\"") {
        let (name, r) = r.split_once("\"]")?;
        names.push(name.to_owned());
        k = r;
    }
    Some((idx, format!("{section}.{}{k}", names.join(".")), unquote(rhs)))
}

/// What postlens says about a line, under `CrowdSec`'s names.
fn facts(ev: &Event<'_>) -> BTreeMap<&'static str, String> {
    let mut f = BTreeMap::new();
    f.insert("host", s(ev.host));
    if let Some(p) = ev.pid {
        f.insert("pid", p.to_string());
    }
    let mut addr = None;
    let mut name = None;
    match ev.kind {
        Kind::Connect { client }
        | Kind::Disconnect { client, .. }
        | Kind::LostConnection { client, .. }
        | Kind::SaslFailed { client, .. } => {
            addr = Some(client.addr);
            name = Some(client.name);
        }
        Kind::Reject { stage, client, reply, from, to, .. } => {
            if let Some(c) = client {
                addr = Some(c.addr);
                name = Some(c.name);
            }
            f.insert("command", s(stage));
            let mut w = reply.split(|&c| c == b' ');
            if let Some(code) = w.next() {
                f.insert("smtp_basic_status_code", s(code));
            }
            if let Some(enh) = w.next() {
                f.insert("smtp_enhanced_status_code", s(enh));
            }
            if let Some(x) = from {
                f.insert("from", s(x));
            }
            if let Some(x) = to {
                f.insert("to", s(x));
            }
        }
        Kind::Login { user, rip } | Kind::PolicyRefused { user, rip } => {
            f.insert("dovecot_user", s(user));
            addr = rip;
        }
        Kind::AuthFailed { user, rip, .. } | Kind::AuthEvidence { user, rip, .. } => {
            f.insert("dovecot_user", s(user));
            f.insert("dovecot_login_result", "auth_failed".to_owned());
            addr = rip;
        }
        Kind::Info { client } => addr = client,
        _ => {}
    }
    if let Some(a) = addr {
        f.insert("addr", s(a));
    }
    if let Some(n) = name {
        f.insert("name", s(n));
    }
    match ev.daemon {
        Daemon::ImapLogin => {
            f.insert("protocol", "imap".to_owned());
        }
        Daemon::Pop3Login => {
            f.insert("protocol", "pop3".to_owned());
        }
        _ => {}
    }
    f
}

#[derive(Default)]
struct Tally {
    lines: u32,
    compared: u32,
    matched: u32,
    skipped: u32,
    skipped_year: u32,
    skipped_not_carried: u32,
    mismatches: Vec<String>,
}

impl Tally {
    fn eq(&mut self, ctx: &str, key: &str, ours: Option<&str>, want: &str) {
        self.compared += 1;
        if ours == Some(want) {
            self.matched += 1;
        } else {
            self.mismatches.push(format!("{ctx}: {key}: ours {ours:?}, expected {want:?}"));
        }
    }
}

const MONTHS: [&str; 12] = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];

fn check_line(t: &mut Tally, ctx: &str, ev: &Event<'_>, asserted: &BTreeMap<String, String>) {
    let f = facts(ev);
    let resolved = postlens::clock::Resolver::new(TimeZone::UTC, 1970).resolve(ev.time);
    // Recognised diagnostics (`Info`) keep only the peer address: no host
    // name, and CrowdSec's `command` there is the client's garbage input
    // (`non-SMTP command … : GET / HTTP/1.1`), not a refused SMTP stage.
    let info = matches!(ev.kind, Kind::Info { .. });
    for (key, want) in asserted {
        let want = want.as_str();
        match key.as_str() {
            "Parsed.remote_host" | "Meta.source_hostname" | "Parsed.command" if info => t.skipped_not_carried += 1,
            "Parsed.program" => {
                // `postfix/submission/smtpd` → instance `postfix`, daemon
                // `smtpd`; `dovecot` → any Dovecot daemon.
                let ok = if want == "dovecot" {
                    ev.daemon.is_dovecot()
                } else {
                    let first = want.split('/').next().unwrap_or(want);
                    let last = want.rsplit('/').next().unwrap_or(want);
                    first.as_bytes() == ev.instance && ev.daemon.name() == last
                };
                t.eq(ctx, key, Some(if ok { want } else { "(different program)" }), want);
            }
            "Parsed.pid" => t.eq(ctx, key, f.get("pid").map(String::as_str), want),
            "Meta.machine" => t.eq(ctx, key, f.get("host").map(String::as_str), want),
            "Parsed.remote_addr" | "Meta.source_ip" | "Parsed.dovecot_remote_ip" => t.eq(ctx, key, f.get("addr").map(String::as_str), want),
            "Parsed.remote_host" | "Meta.source_hostname" => t.eq(ctx, key, f.get("name").map(String::as_str), want),
            "Parsed.command"
            | "Parsed.smtp_basic_status_code"
            | "Parsed.smtp_enhanced_status_code"
            | "Parsed.dovecot_user"
            | "Parsed.protocol" => {
                let k = key.split_once('.').map_or(key.as_str(), |(_, k)| k);
                t.eq(ctx, key, f.get(k).map(String::as_str), want);
            }
            "Meta.dovecot_login_result" => t.eq(ctx, key, f.get("dovecot_login_result").map(String::as_str), want),
            "Unmarshaled.postfix.from" | "Unmarshaled.postfix.to" => {
                let k = key.rsplit('.').next().unwrap_or(key);
                let want = want.strip_prefix('<').and_then(|x| x.strip_suffix('>')).unwrap_or(want);
                t.eq(ctx, key, f.get(k).map(String::as_str), want);
            }
            // Full instants: only where the line itself carries the year.
            "Parsed.timestamp8601" | "Meta.timestamp" | "Enriched.MarshaledTime" => match ev.time {
                RawTime::Unix(_) | RawTime::Local { .. } => {
                    let want_secs = want.parse::<jiff::Timestamp>().map(jiff::Timestamp::as_second).ok();
                    t.eq(ctx, key, Some(&resolved.0.to_string()), &want_secs.map_or_else(|| want.to_owned(), |x| x.to_string()));
                }
                RawTime::Bsd { .. } => t.skipped_year += 1,
            },
            // A classic stamp: compare what the line says (month, day, time).
            "Parsed.timestamp" => {
                let ours = match ev.time {
                    RawTime::Bsd { month, day, secs } => {
                        Some((MONTHS[usize::from(month - 1)].to_owned(), day, secs / 3600, secs / 60 % 60, secs % 60))
                    }
                    _ => None,
                };
                let mut w = want.split_whitespace();
                let parsed = (|| {
                    let m = w.next()?.to_owned();
                    let d: u8 = w.next()?.parse().ok()?;
                    let mut hms = w.next()?.split(':').map(|x| x.parse::<u32>().ok());
                    Some((m, d, hms.next()??, hms.next()??, hms.next()??))
                })();
                t.compared += 1;
                if ours.is_some() && ours == parsed {
                    t.matched += 1;
                } else {
                    t.mismatches.push(format!("{ctx}: {key}: ours {ours:?}, expected {want:?}"));
                }
            }
            // Sliced Go assertions on the stamp (`[4:]`): the year is elided
            // by the test itself.
            k if k.ends_with("[4:]") => t.skipped_year += 1,
            _ => t.skipped += 1,
        }
    }
}

#[test]
fn crowdsec_parser_asserts() {
    let Some(dir) = common::corpus() else { return };
    let root = dir.join("crowdsecurity-hub");
    let mut dirs: Vec<_> =
        std::fs::read_dir(&root).expect("crowdsec dir").map(|e| e.expect("entry").path()).filter(|p| p.is_dir()).collect();
    dirs.sort();
    assert_eq!(dirs.len(), 15, "crowdsec test directories");
    let mut t = Tally::default();
    let mut with_asserts = 0;
    for d in &dirs {
        let test = d.file_name().expect("name").to_string_lossy().into_owned();
        let log = std::fs::read_dir(d)
            .expect("test dir")
            .map(|e| e.expect("entry").path())
            .find(|p| p.extension().is_some_and(|x| x == "log"))
            .expect("a .log file");
        let data = std::fs::read(&log).expect("read log");
        let lines: Vec<&[u8]> = data.split(|&c| c == b'\n').filter(|l| !l.is_empty()).collect();
        // Group assertions by line index, across stages.
        let mut per_line: BTreeMap<usize, BTreeMap<String, String>> = BTreeMap::new();
        let asserts = std::fs::read_to_string(d.join("parser.assert")).unwrap_or_default();
        if !asserts.trim().is_empty() {
            with_asserts += 1;
            let raw_len = asserts
                .lines()
                .find_map(|l| l.strip_prefix("len(results[\"s00-raw\"][\"crowdsecurity/syslog-logs\"]) == "))
                .and_then(|n| n.parse::<usize>().ok())
                .expect("s00-raw length");
            assert_eq!(raw_len, lines.len(), "{test}: one raw event per log line");
        }
        for l in asserts.lines() {
            if let Some((idx, key, value)) = assertion(l) {
                per_line.entry(idx).or_default().insert(key, value);
            }
        }
        for (i, line) in lines.iter().enumerate() {
            t.lines += 1;
            let ctx = format!("{test}[{i}]");
            let ev = match parse(line) {
                Ok(ev) => ev,
                Err(e) => {
                    t.mismatches.push(format!("{ctx}: not parsed ({e:?}): {}", s(line)));
                    continue;
                }
            };
            if let Some(a) = per_line.get(&i) {
                check_line(&mut t, &ctx, &ev, a);
            }
        }
    }
    let mut report = String::new();
    let _ = writeln!(
        report,
        "crowdsec: {} lines in {} tests ({with_asserts} with parser.assert); fields matched {}/{} compared; skipped: {} without postlens meaning, {} not carried by diagnostics, {} year-dependent times of classic-syslog lines",
        t.lines,
        dirs.len(),
        t.matched,
        t.compared,
        t.skipped,
        t.skipped_not_carried,
        t.skipped_year
    );
    for m in &t.mismatches {
        let _ = writeln!(report, "  MISMATCH: {m}");
    }
    println!("{report}");
    assert!(with_asserts >= 8 && t.compared > 300, "too little compared: {}", t.compared);
    assert!(t.mismatches.is_empty(), "{} crowdsec mismatches:\n{report}", t.mismatches.len());
}

#[test]
fn assertion_lines_decode() {
    let (i, k, v) =
        assertion(r#"results["s01-parse"]["crowdsecurity/postfix-logs"][3].Evt.Parsed["remote_addr"] == "192.168.1.1""#).expect("parsed");
    assert_eq!((i, k.as_str(), v.as_str()), (3, "Parsed.remote_addr", "192.168.1.1"));
    let (_, k, v) = assertion(r#"results["s01-parse"]["x"][2].Evt.Unmarshaled["postfix"]["from"] == "<a@b>""#).expect("nested");
    assert_eq!((k.as_str(), v.as_str()), ("Unmarshaled.postfix.from", "<a@b>"));
    let (_, k, _) =
        assertion(r#"results["s00-raw"]["x"][6].Evt.Parsed["timestamp8601"][4:] == "-02-27T07:14:47.545612+00:00""#).expect("slice");
    assert_eq!(k, "Parsed.timestamp8601[4:]");
}
