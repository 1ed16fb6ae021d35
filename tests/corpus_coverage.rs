//! Every line of the shared corpus parses or is classified without panic, and
//! the share understood per daemon meets the targets (≥ 99 % for the core
//! Postfix daemons, ≥ 95 % for Dovecot login/auth).

mod common;

use postlens::parse::{Daemon, Unparsed, parse};
use std::collections::BTreeMap;

#[derive(Default)]
struct Tally {
    ok: u64,
    unsupported: u64,
    examples: Vec<String>,
}

fn tally(path: &std::path::Path) -> (BTreeMap<Daemon, Tally>, u64, u64, u64) {
    let data = std::fs::read(path).expect("read corpus file");
    let mut per: BTreeMap<Daemon, Tally> = BTreeMap::new();
    let (mut lines, mut other, mut malformed) = (0, 0, 0);
    for line in data.split(|&c| c == b'\n').filter(|l| !l.is_empty()) {
        lines += 1;
        match parse(line) {
            Ok(ev) => per.entry(ev.daemon).or_default().ok += 1,
            Err(Unparsed::Unsupported(d)) => {
                let t = per.entry(d).or_default();
                t.unsupported += 1;
                if t.examples.len() < 8 {
                    t.examples.push(String::from_utf8_lossy(line).into_owned());
                }
            }
            Err(Unparsed::OtherProgram) => other += 1,
            Err(Unparsed::Malformed) => malformed += 1,
        }
    }
    (per, lines, other, malformed)
}

#[test]
fn all_postfix_lines_understood_per_daemon() {
    let Some(dir) = common::corpus() else { return };
    let (per, lines, other, malformed) = tally(&dir.join("all-postfix.log"));
    assert_eq!(lines, 78_380);
    println!("lines {lines}, other programs {other}, malformed {malformed}");
    let (mut core_ok, mut core_all, mut dv_ok, mut dv_all) = (0u64, 0u64, 0u64, 0u64);
    for (d, t) in &per {
        let all = t.ok + t.unsupported;
        #[expect(clippy::cast_precision_loss, reason = "a percentage for display")]
        let pct = 100.0 * t.ok as f64 / all as f64;
        println!("{:28} {:>6} / {:>6} understood ({pct:.2} %)", d.name(), t.ok, all);
        for e in &t.examples {
            println!("    unsupported: {e}");
        }
        if d.is_core_postfix() {
            core_ok += t.ok;
            core_all += all;
        }
        if matches!(d, Daemon::ImapLogin | Daemon::Pop3Login | Daemon::SubmissionLogin | Daemon::ManagesieveLogin | Daemon::DovecotAuth) {
            dv_ok += t.ok;
            dv_all += all;
        }
    }
    println!("core postfix {core_ok}/{core_all}, dovecot login/auth {dv_ok}/{dv_all}");
    assert!(core_ok * 100 >= core_all * 99, "core Postfix daemons below 99 %: {core_ok}/{core_all}");
    assert!(dv_ok * 100 >= dv_all * 95, "Dovecot login/auth below 95 %: {dv_ok}/{dv_all}");
    // Per daemon too, for the daemons with enough lines to judge.
    for (d, t) in &per {
        let all = t.ok + t.unsupported;
        if d.is_core_postfix() && all >= 100 {
            assert!(t.ok * 100 >= all * 99, "{} below 99 %: {}/{all}", d.name(), t.ok);
        }
    }
    // The two deliberately malformed sergeymakinen lines, and no more than a handful.
    assert!(malformed <= 10, "malformed {malformed}");
}

#[test]
fn other_mail_lines_are_skipped_gracefully() {
    let Some(dir) = common::corpus() else { return };
    let (per, lines, other, malformed) = tally(&dir.join("all-other-mail-lines.log"));
    assert_eq!(lines, 2_379);
    let recognised: u64 = per.values().map(|t| t.ok + t.unsupported).sum();
    println!("other {other}, malformed {malformed}, claimed by postfix/dovecot {recognised}");
    assert!(other + malformed + recognised == lines);
    assert!(other > 2_000, "most of these lines are other programs: {other}");
}
