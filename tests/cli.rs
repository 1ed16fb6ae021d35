//! The binary end to end: import real corpus logs, ask `stats`/`search`,
//! resume across runs, bad input and bad flags.

mod common;

use common::{TempDir, ok, run, stats_json};
use std::io::Write;

/// A real log: Lightmeter's individual scenario files, concatenated in name
/// order (classic syslog, one year).
fn scenario_log(dir: &TempDir) -> Option<String> {
    let corpus = common::corpus()?;
    let src = corpus.join("lightmeter-controlcenter/test_files/postfix_logs/individual_files");
    let mut names: Vec<_> = std::fs::read_dir(&src).expect("dir").map(|e| e.expect("entry").path()).collect();
    names.sort();
    let mut all = Vec::new();
    for n in names {
        all.extend(std::fs::read(n).expect("read"));
        if all.last() != Some(&b'\n') {
            all.push(b'\n');
        }
    }
    let p = dir.s("mail.log");
    std::fs::write(&p, all).expect("write");
    Some(p)
}

#[test]
fn stats_json_has_the_documented_shape() {
    let d = TempDir::new("shape");
    let Some(log) = scenario_log(&d) else { return };
    let ws = d.s("ws");
    ok(&["import", "--workspace", &ws, "--log-starting-year", "2020", &log]);
    let s = stats_json(d.path().join("ws").as_path());
    for key in [
        "window",
        "lines",
        "deliveries",
        "deferrals",
        "deferred_then_sent",
        "messages",
        "notifications",
        "rejected",
        "connections",
        "auth_failures",
        "evictions",
    ] {
        assert!(s.get(key).is_some(), "missing {key}");
    }
    let del = &s["deliveries"];
    for o in ["sent", "bounced", "expired", "pending"] {
        assert_eq!(del[o], del["outbound"][o].as_u64().unwrap() + del["inbound"][o].as_u64().unwrap(), "{o} = outbound + inbound");
    }
    let l = &s["lines"];
    let sum = ["postfix", "dovecot", "other", "malformed"].iter().map(|k| l[k].as_u64().unwrap()).sum::<u64>();
    assert_eq!(l["read"].as_u64().unwrap(), sum, "read = postfix + dovecot + other + malformed");
    assert!(del["sent"].as_u64().unwrap() > 10, "{s}");
    assert!(del["bounced"].as_u64().unwrap() >= 1);
    assert!(del["expired"].as_u64().unwrap() >= 1);
    assert!(s["notifications"]["non_delivery"].as_u64().unwrap() >= 1);
}

#[test]
fn import_in_two_runs_equals_one_import_and_reimport_counts_nothing() {
    let d = TempDir::new("split");
    let Some(corpus) = common::corpus() else { return };
    let all = std::fs::read(corpus.join("all-postfix.log")).expect("read");
    // Lightmeter's real server log, the first source in all-postfix.log.
    let lines: Vec<&[u8]> = all.split(|&c| c == b'\n').take(8_000).collect();
    let cut = 3_777;
    let (a, b) = (lines[..cut].join(&b'\n'), lines[cut..].join(&b'\n'));
    let (pa, pb) = (d.s("mail.log.1"), d.s("mail.log"));
    std::fs::write(&pa, [a.as_slice(), b"\n"].concat()).unwrap();
    std::fs::write(&pb, [b.as_slice(), b"\n"].concat()).unwrap();
    let (one, two) = (d.s("one"), d.s("two"));
    ok(&["import", "--workspace", &one, "--log-starting-year", "2021", &pa, &pb]);
    ok(&["import", "--workspace", &two, "--log-starting-year", "2021", &pa]);
    ok(&["import", "--workspace", &two, "--log-starting-year", "2021", &pb]);
    let (s1, s2) = (stats_json(d.path().join("one").as_path()), stats_json(d.path().join("two").as_path()));
    assert_eq!(s1, s2);
    let search = |ws: &str| ok(&["search", "--workspace", ws, "--json", "--limit", "100000"]);
    assert_eq!(search(&one), search(&two));
    // Importing the same files again adds nothing.
    ok(&["import", "--workspace", &two, "--log-starting-year", "2021", &pa, &pb]);
    assert_eq!(stats_json(d.path().join("two").as_path()), s1);
    // Nor does the rotated, gzipped copy of the first file.
    let gz = d.s("mail.log.2.gz");
    let mut enc = flate2::write::GzEncoder::new(std::fs::File::create(&gz).unwrap(), flate2::Compression::fast());
    enc.write_all(&std::fs::read(&pa).unwrap()).unwrap();
    enc.finish().unwrap();
    ok(&["import", "--workspace", &two, &gz]);
    assert_eq!(stats_json(d.path().join("two").as_path()), s1);
}

/// Lightmeter's real server log (the first source in `all-postfix.log`),
/// its first 8,000 lines cut in three, oldest first.
fn three_parts() -> Option<[Vec<u8>; 3]> {
    let all = std::fs::read(common::corpus()?.join("all-postfix.log")).expect("read");
    let lines: Vec<&[u8]> = all.split(|&c| c == b'\n').take(8_000).collect();
    let part = |r: std::ops::Range<usize>| [lines[r].join(&b'\n').as_slice(), b"\n"].concat();
    Some([part(0..2_500), part(2_500..5_100), part(5_100..8_000)])
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    enc.write_all(data).expect("gzip");
    enc.finish().expect("gzip")
}

/// `import DIR` reads the directory's logs as `--watch-dir` finds them:
/// archives oldest first, then the live file; `mail.err` (copies of
/// `mail.log` lines) and unrelated files are left out; a second import of
/// the directory adds nothing.
#[test]
fn a_directory_imports_its_logs_oldest_first_once() {
    let d = TempDir::new("dir");
    let Some([a, b, c]) = three_parts() else { return };
    let logs = d.path().join("logs");
    std::fs::create_dir(&logs).unwrap();
    std::fs::create_dir(logs.join("old")).unwrap();
    std::fs::write(logs.join("mail.log.2.gz"), gzip(&a)).unwrap();
    std::fs::write(logs.join("mail.log.1"), &b).unwrap();
    std::fs::write(logs.join("mail.log"), &c).unwrap();
    std::fs::write(logs.join("mail.err"), &c).unwrap();
    std::fs::write(logs.join("old/mail.log"), &a).unwrap();
    std::fs::write(logs.join("notes.txt"), b"not a log\n").unwrap();
    let (pa, pb, pc) = (d.s("a.log"), d.s("b.log"), d.s("c.log"));
    for (p, data) in [(&pa, &a), (&pb, &b), (&pc, &c)] {
        std::fs::write(p, data).unwrap();
    }
    let (files, dir) = (d.s("files"), d.s("dir"));
    ok(&["import", "--workspace", &files, "--log-starting-year", "2021", &pa, &pb, &pc]);
    let logs_s = logs.to_str().unwrap();
    let o = run(&["import", "--workspace", &dir, "--log-starting-year", "2021", logs_s]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{err}");
    assert!(err.contains("imported 8000 lines from 3 file(s)"), "{err}");
    let want = stats_json(d.path().join("files").as_path());
    assert_eq!(want["lines"]["read"], 8_000, "{want}");
    assert!(want["deliveries"]["sent"].as_u64().unwrap() > 0 && want["auth_failures"]["total"].as_u64().unwrap() > 1_000, "{want}");
    assert_eq!(stats_json(d.path().join("dir").as_path()), want);
    let search = |ws: &str| ok(&["search", "--workspace", ws, "--json", "--limit", "100000"]);
    assert_eq!(search(&dir), search(&files));
    let o = run(&["import", "--workspace", &dir, "--log-starting-year", "2021", logs_s]);
    assert!(String::from_utf8_lossy(&o.stderr).contains("imported 0 lines from 3 file(s)"), "{o:?}");
    assert_eq!(stats_json(d.path().join("dir").as_path()), want);
    // A directory without the default logs is a usage error saying so.
    let empty = d.s("empty");
    std::fs::create_dir(&empty).unwrap();
    let o = run(&["import", "--workspace", &dir, &empty]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(err.contains("empty: no log files named mail.log:mail.warn:mail.err:maillog:zimbra.log"), "{err}");
    assert_eq!(stats_json(d.path().join("dir").as_path()), want);
}

/// A named pipe (`import <(zcat mail.log.1.gz)`) and stdin are read like
/// the files they carry.
#[test]
fn pipes_and_stdin_import_like_files() {
    let d = TempDir::new("pipe");
    let Some([a, b, _]) = three_parts() else { return };
    let (pa, pb) = (d.s("mail.log.1"), d.s("mail.log"));
    std::fs::write(&pa, &a).unwrap();
    std::fs::write(&pb, &b).unwrap();
    let files = d.s("files");
    ok(&["import", "--workspace", &files, "--log-starting-year", "2021", &pa, &pb]);
    let want = stats_json(d.path().join("files").as_path());
    // A FIFO carrying the first part, then stdin the second.
    let fifo = d.s("fifo");
    assert!(std::process::Command::new("mkfifo").arg(&fifo).status().expect("mkfifo").success());
    let writer = {
        let (fifo, a) = (fifo.clone(), a.clone());
        std::thread::spawn(move || std::fs::write(fifo, a).expect("write the FIFO"))
    };
    let piped = d.s("piped");
    ok(&["import", "--workspace", &piped, "--log-starting-year", "2021", &fifo]);
    writer.join().unwrap();
    let mut child = common::bin()
        .args(["import", "--workspace", &piped, "--log-starting-year", "2021", "-"])
        .stdin(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("run postlens");
    child.stdin.take().unwrap().write_all(&b).unwrap();
    let o = child.wait_with_output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(stats_json(d.path().join("piped").as_path()), want);
}

/// `--progress` draws a line per file on a terminal (here `script`'s
/// pseudo-terminal) ending in the file's totals, and nothing on a pipe.
#[test]
fn progress_is_drawn_on_a_terminal_only() {
    let d = TempDir::new("progress");
    let Some([a, b, _]) = three_parts() else { return };
    let (gz, plain) = (d.s("mail.log.1.gz"), d.s("mail.log"));
    std::fs::write(&gz, gzip(&a)).unwrap();
    std::fs::write(&plain, &b).unwrap();
    let ws = d.s("ws");
    let cmd = format!("'{}' import --progress --workspace '{ws}' '{gz}' '{plain}'", env!("CARGO_BIN_EXE_postlens"));
    let o = std::process::Command::new("script")
        .args(["-qec", &cmd, "/dev/null"])
        .env("POSTLENS_LOG_TIMEZONE", "UTC")
        .output()
        .expect("script (bsdutils)");
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success(), "{out}");
    for (name, lines) in [("mail.log.1.gz", "2500"), ("mail.log", "2600")] {
        let done = format!("{name:<24} [====================] 100%");
        let line = out
            .split(['\r', '\n'])
            .find(|l| l.starts_with(&done) && l.contains(" lines in "))
            .unwrap_or_else(|| panic!("no final line for {name}: {out:?}"));
        assert!(line.contains(&format!(" {lines} lines in ")), "{line}");
    }
    let o = run(&["import", "--progress", "--workspace", &d.s("ws2"), &gz]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success() && !err.contains('[') && err.contains("imported 2500 lines"), "{err}");
}

#[test]
fn compressed_archives_import_like_plain_files() {
    let d = TempDir::new("gz");
    let Some(log) = scenario_log(&d) else { return };
    let raw = std::fs::read(&log).unwrap();
    let gz = d.s("mail.log.1.gz");
    let mut enc = flate2::write::GzEncoder::new(std::fs::File::create(&gz).unwrap(), flate2::Compression::fast());
    enc.write_all(&raw).unwrap();
    enc.finish().unwrap();
    let bz = d.s("mail.log.2.bz2");
    let mut enc = bzip2::write::BzEncoder::new(std::fs::File::create(&bz).unwrap(), bzip2::Compression::fast());
    enc.write_all(&raw).unwrap();
    enc.finish().unwrap();
    let mut results = Vec::new();
    for (i, f) in [&log, &gz, &bz].into_iter().enumerate() {
        let ws = d.s(&format!("ws{i}"));
        ok(&["import", "--workspace", &ws, "--log-starting-year", "2020", f]);
        results.push(stats_json(d.path().join(format!("ws{i}")).as_path()));
    }
    assert_eq!(results[0], results[1]);
    assert_eq!(results[0], results[2]);
}

/// Parsing on a thread of its own (`--parse-thread on`; `auto` picks it on
/// three cores or more) answers exactly as parsing inline: a real log read
/// at once and in two runs of a growing file (resumed at its checkpoint), its
/// gzipped copy, and binary junk with over-long lines.
#[test]
fn the_parse_thread_changes_no_answer() {
    let d = TempDir::new("parse-thread");
    let Some(corpus) = common::corpus() else { return };
    let all = std::fs::read(corpus.join("all-postfix.log")).expect("read");
    let cut = all.iter().enumerate().filter(|(_, c)| **c == b'\n').nth(40_000).map(|(i, _)| i + 1).expect("40,000 lines");
    let mut junk: Vec<u8> = (0..300_000u32).map(|i| i.wrapping_mul(2_654_435_761).to_le_bytes()[1]).collect();
    junk.extend(std::iter::repeat_n(b'y', 200_000));
    let answers = |mode: &str| {
        let ws = d.s(&format!("ws-{mode}"));
        let log = d.s(&format!("mail-{mode}.log"));
        // The corpus joins logs of many years: with the default 90 days
        // kept, what survives of the old ones depends on how records fall
        // into blocks (retention deletes whole blocks), so keep them all.
        let import = |f: &str| {
            ok(&["import", "--parse-thread", mode, "--retention", "36500d", "--workspace", &ws, "--log-starting-year", "2021", f])
        };
        std::fs::write(&log, &all[..cut]).unwrap();
        import(&log);
        std::fs::write(&log, &all).unwrap();
        import(&log);
        let gz = d.s(&format!("mail-{mode}.log.1.gz"));
        let mut enc = flate2::write::GzEncoder::new(std::fs::File::create(&gz).unwrap(), flate2::Compression::fast());
        enc.write_all(&all).unwrap();
        enc.finish().unwrap();
        let gz_ws = d.s(&format!("gz-{mode}"));
        ok(&["import", "--parse-thread", mode, "--retention", "36500d", "--workspace", &gz_ws, "--log-starting-year", "2021", &gz]);
        let junk_log = d.s(&format!("junk-{mode}.log"));
        std::fs::write(&junk_log, &junk).unwrap();
        import(&junk_log);
        let search = ok(&["search", "--workspace", &ws, "--json", "--limit", "100000"]);
        (stats_json(d.path().join(format!("ws-{mode}")).as_path()), search, stats_json(d.path().join(format!("gz-{mode}")).as_path()))
    };
    let (on, off) = (answers("on"), answers("off"));
    assert!(on.0["lines"]["read"].as_u64().unwrap() > 79_000 && on.0["connections"].as_u64().unwrap() > 5_000, "{}", on.0);
    assert_eq!(on.0, off.0);
    assert_eq!(on.1, off.1);
    assert_eq!(on.2, off.2);
}

#[test]
fn search_finds_by_sender_recipient_ids_and_status() {
    let d = TempDir::new("search");
    let Some(log) = scenario_log(&d) else { return };
    let ws = d.s("ws");
    ok(&["import", "--workspace", &ws, "--log-starting-year", "2020", &log]);
    let q = |args: &[&str]| -> Vec<serde_json::Value> {
        let mut a = vec!["search", "--workspace", ws.as_str(), "--json"];
        a.extend_from_slice(args);
        serde_json::from_str(&ok(&a)).expect("search JSON")
    };
    // 1_bounce_simple.log: the bounce through the content filter.
    let hits = q(&["--recipient", "INVALID.email@example.com"]);
    assert!(!hits.is_empty());
    let h = hits.iter().find(|h| h["status"] == "bounced").expect("bounced hit");
    assert_eq!(h["queue_id"], "4AA091855DA0");
    assert_eq!(h["queue_ids"], serde_json::json!(["4AA091855DA0", "776E41855DB2"]));
    assert_eq!(h["dsn"], "5.1.1");
    assert_eq!(h["notification_queue_id"], "A48191855DA0");
    for k in ["time", "message_id", "sender", "orig_recipient", "direction", "relay", "response", "attempts", "deferrals"] {
        assert!(h.get(k).is_some(), "missing {k}");
    }
    // Either queue ID of the chain and the Message-ID find it.
    for id in ["776E41855DB2", "4AA091855DA0", "<ca10035e-2951-bfd5-ec7e-1a5773fce1cd@mail.sender.com>"] {
        assert!(q(&["--id", id]).iter().any(|x| x["queue_id"] == "4AA091855DA0"), "{id}");
    }
    // Domain match, status filter, newest first, limit.
    let dom = q(&["--recipient", "@example.com", "--status", "bounced"]);
    assert!(dom.iter().all(|x| x["status"] == "bounced" && x["recipient"].as_str().unwrap().to_lowercase().ends_with("@example.com")));
    let all = q(&["--limit", "5"]);
    assert_eq!(all.len(), 5);
    let times: Vec<&str> = all.iter().map(|x| x["time"].as_str().unwrap()).collect();
    assert!(times.windows(2).all(|w| w[0] >= w[1]), "newest first: {times:?}");
    assert!(q(&["--sender", "nobody@nowhere.invalid"]).is_empty());
    let deferred = q(&["--status", "deferred"]);
    assert!(!deferred.is_empty() && deferred.iter().all(|x| x["deferrals"].as_u64().unwrap() > 0));
}

#[test]
fn windows_split_counts_exactly() {
    let d = TempDir::new("window");
    let Some(log) = scenario_log(&d) else { return };
    let ws = d.s("ws");
    ok(&["import", "--workspace", &ws, "--log-starting-year", "2020", &log]);
    let st = |extra: &[&str]| -> serde_json::Value {
        let mut a = vec!["stats", "--workspace", ws.as_str(), "--json"];
        a.extend_from_slice(extra);
        serde_json::from_str(&ok(&a)).unwrap()
    };
    let all = st(&[]);
    // Any split point: the two halves add up to the whole for final outcomes.
    for cut in ["2020-06-01", "2020-09-26T00:00:00Z", "2020-01-28T12:34:56Z"] {
        let (a, b) = (st(&["--to", cut]), st(&["--from", cut]));
        for k in ["sent", "bounced", "expired"] {
            assert_eq!(
                all["deliveries"][k].as_u64().unwrap(),
                a["deliveries"][k].as_u64().unwrap() + b["deliveries"][k].as_u64().unwrap(),
                "{k} at {cut}"
            );
        }
        for k in ["deferrals", "rejected", "connections"] {
            assert_eq!(all[k].as_u64().unwrap(), a[k].as_u64().unwrap() + b[k].as_u64().unwrap(), "{k} at {cut}");
        }
        assert!(a["window"]["to"].as_str().is_some());
    }
}

#[test]
fn garbage_and_binary_input_is_counted_not_fatal() {
    let d = TempDir::new("garbage");
    let p = d.s("junk.log");
    let mut junk: Vec<u8> = (0..200_000u32).map(|i| i.wrapping_mul(2_654_435_761).to_le_bytes()[2]).collect();
    junk.extend_from_slice(b"\nJan  1 00:00:00 h postfix/smtpd[1]: connect from a[1.2.3.4]\n");
    junk.extend(std::iter::repeat_n(b'x', 100_000));
    junk.extend_from_slice(b"\n{\"not\": \"syslog\"}\n");
    std::fs::write(&p, &junk).unwrap();
    let ws = d.s("ws");
    ok(&["import", "--workspace", &ws, "--log-starting-year", "2020", &p]);
    let s = stats_json(d.path().join("ws").as_path());
    assert_eq!(s["connections"], 1);
    assert!(s["lines"]["malformed"].as_u64().unwrap() >= 2);
    // Logstash format explicitly, with a broken record among good ones.
    let js = d.s("ls.json");
    std::fs::write(
        &js,
        "{\"@timestamp\":\"2021-03-06T06:09:00Z\",\"host\":\"mx\",\"message\":\"postfix/smtpd[1]: connect from a[1.2.3.4]\"}\n{broken\n",
    )
    .unwrap();
    let ws2 = d.s("ws2");
    ok(&["import", "--workspace", &ws2, "--log-format", "logstash", &js]);
    let s = stats_json(d.path().join("ws2").as_path());
    assert_eq!((s["connections"].as_u64(), s["lines"]["malformed"].as_u64()), (Some(1), Some(1)));
}

#[test]
fn bad_flags_and_paths_exit_2_naming_the_problem() {
    let d = TempDir::new("bad");
    let ws = d.s("ws");
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (vec!["import", "--workspace", &ws, "/nonexistent/mail.log"], "/nonexistent/mail.log"),
        (vec!["import", "--workspace", &ws, "--log-format", "xml", "/dev/null"], "--log-format"),
        (vec!["import", "--workspace", &ws, "--retention", "forever", "/dev/null"], "--retention"),
        (vec!["import", "--workspace", &ws, "--log-starting-year", "12", "/dev/null"], "--log-starting-year"),
        (vec!["stats", "--workspace", &ws, "--from", "yesterday"], "--from"),
        (vec!["stats", "--workspace", &ws], "postlens import"),
        (vec!["stats", "--workspace", &ws, "--log-timezone", "Mars/Olympus"], "--log-timezone"),
        (vec!["search", "--workspace", &ws, "--status", "lost"], "--status"),
        (vec!["frobnicate"], "frobnicate"),
    ];
    for (args, needle) in cases {
        let o = run(&args);
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains(needle), "{args:?}: stderr does not name {needle}: {err}");
    }
}

#[test]
fn lightmeter_flags_and_environment_work() {
    let d = TempDir::new("lm");
    let Some(log) = scenario_log(&d) else { return };
    let ws = d.s("ws");
    ok(&["import", "-workspace", &ws, "-log_starting_year", "2020", &log]);
    let o = common::bin().args(["stats", "--json"]).env("LIGHTMETER_WORKSPACE", &ws).output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let s: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(s, stats_json(d.path().join("ws").as_path()));
    let o = common::bin().args(["stats", "--json"]).env("POSTLENS_WORKSPACE", &ws).output().unwrap();
    assert!(o.status.success());
}

#[test]
fn report_and_status_answer() {
    let d = TempDir::new("report");
    let Some(log) = scenario_log(&d) else { return };
    let ws = d.s("ws");
    ok(&["import", "--workspace", &ws, "--log-starting-year", "2020", &log]);
    // The day of the bounce in 1_bounce_simple.log (the year depends on the
    // December → January roll-overs of the concatenated scenarios).
    let hits: serde_json::Value =
        serde_json::from_str(&ok(&["search", "--workspace", &ws, "--json", "--recipient", "invalid.email@example.com"])).unwrap();
    let day = hits[0]["time"].as_str().unwrap()[..10].to_owned();
    let r = ok(&["report", "--workspace", &ws, "--day", &day]);
    assert!(!r.contains("       0  bounced"), "{r}");
    assert!(r.contains("Grand totals") && r.contains("Per-hour deliveries"), "{r}");
    assert!(r.contains("example.com"), "{r}");
    let st: serde_json::Value = serde_json::from_str(&ok(&["status", "--workspace", &ws, "--json"])).unwrap();
    assert_eq!(st["sources"].as_array().unwrap().len(), 1);
    assert!(st["db_bytes"].as_u64().unwrap() > 0);
    assert!(st["sources"][0]["last_time"].as_str().unwrap().starts_with("20"), "{st}");
    // Only other programs' lines (no time of a Postfix or Dovecot line):
    // no made-up 1970 in status or report.
    let other = d.s("other.log");
    std::fs::write(&other, "Jan 27 07:00:04 mail opendkim[289]: 2AA0F3004142: DKIM-Signature field added (s=mail, d=example.org)\n")
        .unwrap();
    let ws2 = d.s("ws2");
    ok(&["import", "--workspace", &ws2, &other]);
    let st: serde_json::Value = serde_json::from_str(&ok(&["status", "--workspace", &ws2, "--json"])).unwrap();
    assert!(st["sources"][0]["last_time"].is_null(), "{st}");
    assert!(ok(&["status", "--workspace", &ws2]).contains("last line -"));
    assert_eq!(ok(&["report", "--workspace", &ws2]), "No Postfix or Dovecot lines imported yet: nothing to summarise.\n");
    // The text of stats says what an open window reaches.
    let text = ok(&["stats", "--workspace", &ws]);
    assert!(text.starts_with("window          all\ndata kept       20"), "{text}");
    assert!(ok(&["stats", "--workspace", &ws2]).starts_with("window          all\ndata kept       none yet\n"));
    let text = ok(&["stats", "--workspace", &ws, "--from", &day]);
    assert!(text.starts_with(&format!("window          {day}T00:00:00Z .. -\n")), "{text}");
}

#[test]
fn domain_hour_counters_agree_with_deliveries() {
    let d = TempDir::new("domains");
    let Some(log) = scenario_log(&d) else { return };
    let ws = d.s("ws");
    // The scenarios span several years: keep them all.
    ok(&["import", "--workspace", &ws, "--log-starting-year", "2020", "--retention", "36500d", &log]);
    let s = stats_json(d.path().join("ws").as_path());
    let store = postlens::store::Store::open_existing(d.path().join("ws").as_path()).unwrap();
    let doms = store.domains(postlens::store::query::Window::default()).unwrap();
    let sum = |f: &dyn Fn(&postlens::store::DomainCounts) -> u64| doms.iter().map(|(_, c)| f(c)).sum::<u64>();
    assert_eq!(sum(&|c| c.outbound[0] + c.inbound[0]), s["deliveries"]["sent"].as_u64().unwrap());
    assert_eq!(sum(&|c| c.outbound[1] + c.inbound[1]), s["deliveries"]["bounced"].as_u64().unwrap());
    assert_eq!(sum(&|c| c.outbound[2] + c.inbound[2]), s["deliveries"]["expired"].as_u64().unwrap());
    assert_eq!(sum(&|c| c.deferrals), s["deferrals"].as_u64().unwrap());
    assert!(doms.iter().any(|(d, c)| d == "example.com" && c.outbound[1] > 0), "{doms:?}");
}

#[test]
fn auth_hour_counters_agree_with_stats_and_retention_deletes_old_data() {
    let d = TempDir::new("auth-ret");
    let Some(corpus) = common::corpus() else { return };
    // The fail2ban Dovecot and Postfix samples: many failures, one year.
    let log = d.s("auth.log");
    let all = std::fs::read(corpus.join("all-postfix.log")).unwrap();
    let lines: Vec<&[u8]> = all.split(|&c| c == b'\n').take(8_000).collect();
    std::fs::write(&log, [lines.join(&b'\n'), b"\n".to_vec()].concat()).unwrap();
    let ws = d.s("ws");
    ok(&["import", "--workspace", &ws, "--log-starting-year", "2021", "--retention", "36500d", &log]);
    let s = stats_json(d.path().join("ws").as_path());
    let total = s["auth_failures"]["total"].as_u64().unwrap();
    assert!(total > 100, "{s}");
    {
        let store = postlens::store::Store::open_existing(d.path().join("ws").as_path()).unwrap();
        let by_ip = store.auth_by_ip(postlens::store::query::Window::default()).unwrap();
        assert_eq!(by_ip.iter().map(|(_, c)| c.iter().sum::<u64>()).sum::<u64>(), total);
        let top = &by_ip[0];
        assert_eq!(s["auth_failures"]["by_ip"][&top.0]["smtp"].as_u64().unwrap(), top.1[0]);
    }
    // A short retention keeps only the newest data.
    let ws2 = d.s("ws2");
    ok(&["import", "--workspace", &ws2, "--log-starting-year", "2021", "--retention", "1d", &log]);
    let s2 = stats_json(d.path().join("ws2").as_path());
    let sent = |s: &serde_json::Value| s["deliveries"]["sent"].as_u64().unwrap() + s["deliveries"]["bounced"].as_u64().unwrap();
    assert!(sent(&s2) < sent(&s), "retention deleted nothing: {} vs {}", sent(&s2), sent(&s));
    let store = postlens::store::Store::open_existing(d.path().join("ws2").as_path()).unwrap();
    assert!(
        store.auth_by_ip(postlens::store::query::Window::default()).unwrap().iter().map(|(_, c)| c.iter().sum::<u64>()).sum::<u64>()
            < total
    );
}

#[test]
fn max_db_size_deletes_the_oldest_data() {
    let d = TempDir::new("maxsize");
    let Some(corpus) = common::corpus() else { return };
    let log = d.s("big.log");
    std::fs::copy(corpus.join("all-postfix.log"), &log).unwrap();
    let (full, capped) = (d.s("full"), d.s("capped"));
    ok(&["import", "--workspace", &full, "--log-starting-year", "2021", "--retention", "36500d", &log]);
    ok(&["import", "--workspace", &capped, "--log-starting-year", "2021", "--retention", "36500d", "--max-db-size", "1MiB", &log]);
    let conn = |ws: &str| stats_json(std::path::Path::new(ws))["connections"].as_u64().unwrap();
    assert!(conn(&capped) < conn(&full), "capped {} vs full {}", conn(&capped), conn(&full));
    // Lifetime line counters are not data: they stay.
    assert_eq!(stats_json(std::path::Path::new(&capped))["lines"], stats_json(std::path::Path::new(&full))["lines"]);
}
