#![allow(clippy::unwrap_used, reason = "test code: a failed unwrap is a failed test")]
//! The hourly rollups (`src/store/rollup.rs`) against the blocks they
//! summarise: `stats` over any whole-hour window must equal the count from
//! the block summaries and blocks, after imports of real and generated
//! logs and after retention deleted blocks; and the daemon's cached
//! whole-day sums must see lines that arrive for days already cached.

mod common;

use common::{TempDir, ok};
use postlens::clock::Timestamp;
use postlens::store::Store;
use postlens::store::query::Window;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn genlog(dir: &TempDir, lines: usize, days: u32, seed: u32, start: &str, format: &str) -> String {
    let out = dir.s(&format!("gen-{seed}.log"));
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("benches/genlog.py");
    let st = Command::new("python3")
        .args([script.to_str().unwrap(), "--lines", &lines.to_string(), "--days", &days.to_string(), "--seed", &seed.to_string()])
        .args(["--start", start, "--format", format, "--queue-lifetime", "2d", "-o", &out, "--quiet"])
        .status()
        .expect("python3 runs benches/genlog.py (make deps installs python3)");
    assert!(st.success(), "genlog.py failed");
    out
}

/// A small deterministic generator (xorshift) for the windows.
struct Rng(u64);
impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n.max(1)
    }
}

/// Whole-hour windows over `[first, last]`: open ends, the whole span, one
/// hour, a day, and random ones (many ending before outcomes of messages
/// queued inside them, which then count as pending).
fn windows(first: i64, last: i64, n: usize) -> Vec<Window> {
    let h0 = first.div_euclid(3600) - 1;
    let h1 = last.div_euclid(3600) + 2;
    let at = |h: i64| Some(Timestamp(h * 3600));
    let mut v = vec![
        Window::default(),
        Window { from: at(h0), to: None },
        Window { from: None, to: at(h1) },
        Window { from: at(h0), to: at(h1) },
        Window { from: at(h0 + 1), to: at(h0 + 2) },
        Window { from: at(h0 + 5), to: at(h0 + 29) },
    ];
    let mut r = Rng(0x9e37_79b9_7f4a_7c15);
    let span = u64::try_from(h1 - h0).unwrap();
    for _ in 0..n {
        let a = h0 + i64::try_from(r.below(span)).unwrap();
        let max = if r.below(2) == 0 { 6 } else { span };
        let len = 1 + i64::try_from(r.below(max)).unwrap();
        v.push(Window { from: at(a), to: at(a + len) });
    }
    v
}

/// `stats` (the rollups for whole hours) against the blocks, on windows
/// starting at `from_hour` or later when given.
fn check_windows(store: &Store, ws: &Path, from_hour: Option<i64>) -> usize {
    let (first, last) = store.time_span().unwrap().expect("records stored");
    let mut checked = 0;
    for w in windows(first, last, 150) {
        if let Some(h) = from_hour
            && w.from.is_none_or(|f| f.0 < h * 3600)
        {
            continue;
        }
        let fast = store.stats_live_with(w, None, false).unwrap();
        let slow = store.stats_by_blocks(w, false).unwrap();
        assert_eq!(fast, slow, "{}: window {w:?}", ws.display());
        checked += 1;
    }
    checked
}

#[test]
fn rollups_equal_the_blocks_on_real_and_generated_logs() {
    let d = TempDir::new("rollup");
    let mut logs = vec![("generated", genlog(&d, 60_000, 4, 3, "2026-03-02", "classic"))];
    if let Some(corpus) = common::corpus() {
        logs.push(("corpus", corpus.join("all-postfix.log").to_str().unwrap().to_owned()));
    }
    for (name, log) in logs {
        let ws = d.path().join(name);
        ok(&["import", "--workspace", ws.to_str().unwrap(), "--log-starting-year", "2021", "--retention", "36500d", &log]);
        let store = Store::open_existing(&ws).unwrap();
        let all = store.stats(Window::default()).unwrap();
        assert!(all.deliveries.sent > 100 && all.deferrals > 0, "{name}: {all:?}");
        let n = check_windows(&store, &ws, None);
        assert!(n > 150, "{name}: only {n} windows compared");
        // Some window must count messages as pending because their outcome
        // came after its end (the `late_decided` rollup): else that part
        // of the comparison proved nothing.
        let (first, last) = store.time_span().unwrap().unwrap();
        let late_pending = windows(first, last, 150).into_iter().filter(|w| w.to.is_some()).any(|w| {
            store.stats(w).unwrap().deliveries.pending > store.stats_by_blocks(Window { to: None, ..w }, false).unwrap().deliveries.pending
        });
        assert!(late_pending, "{name}: no window had a message decided after its end");

        // Retention deletes whole blocks; the rollups lose exactly their records.
        let cutoff = first + (last - first) / 2;
        let marks = |s: &Store| s.table_space().unwrap().into_iter().find(|t| t.0 == "hour_marks").map(|t| t.1).unwrap();
        let marks_before = marks(&store);
        let mut rounds = 0;
        while store.retention(Timestamp(cutoff), None, 4).unwrap() > 0 {
            rounds += 1;
            assert!(rounds < 10_000);
        }
        assert!(rounds > 0, "{name}: retention deleted nothing");
        // The per-hour change marks of deleted hours go with them.
        assert!(marks(&store) < marks_before, "{name}: hour marks kept after retention");
        let after = store.stats(Window::default()).unwrap();
        assert_ne!(after, all, "{name}: retention removed no counted record");
        check_windows(&store, &ws, None);
        check_windows(&store, &ws, Some(cutoff.div_euclid(3600) + 1));
    }
}

/// The cached per-domain and per-IP sums under retention: after every
/// round, each window's sums equal those computed afresh; an entry for a
/// window starting at or after the cutoff's hour (where retention removes
/// nothing) is kept, and one starting before it is recomputed.
#[test]
fn cached_sums_follow_retention() {
    let d = TempDir::new("rollup-retention");
    let log = genlog(&d, 60_000, 6, 5, "2026-03-02", "classic");
    let ws = d.path().join("ws");
    ok(&["import", "--workspace", ws.to_str().unwrap(), "--retention", "36500d", &log]);
    let store = Store::open_existing(&ws).unwrap();
    let (first, last) = store.time_span().unwrap().unwrap();
    let hour = |t: i64| t.div_euclid(3600) * 3600;
    let end = Some(Timestamp(hour(last) + 3600));
    let cutoffs = [first + (last - first) / 4, first + (last - first) / 2];
    // Four windows: the cache keeps four entries.
    let starts = [hour(cutoffs[0]) - 7200, hour(cutoffs[0]), hour(cutoffs[1]), hour(cutoffs[1]) + 3 * 3600];
    let wins: Vec<Window> = starts.iter().map(|&a| Window { from: Some(Timestamp(a)), to: end }).collect();
    let days = |w: Window| store.domains_split(w, None).unwrap().days.expect("settled hours in the window");
    let check = |round: &str| {
        for &w in &wins {
            // `stats`' rollup sums, kept per commit, against the blocks.
            assert_eq!(store.stats_live_with(w, None, false).unwrap(), store.stats_by_blocks(w, false).unwrap(), "{round}: stats of {w:?}");
            let (dom, auth) = (store.domains(w).unwrap(), store.auth_by_ip(w).unwrap());
            store.bypass_cache(true);
            assert_eq!(dom, store.domains(w).unwrap(), "{round}: domains of {w:?}");
            assert_eq!(auth, store.auth_by_ip(w).unwrap(), "{round}: IPs of {w:?}");
            store.bypass_cache(false);
            assert!(!dom.is_empty() && !auth.is_empty(), "{round}: {w:?} counted nothing");
        }
    };
    check("before retention");
    let (mut kept, mut rebuilt) = (0, 0);
    for cutoff in cutoffs {
        let mut rounds = 0;
        loop {
            // Every window's sums cached (the kept `stats` sums too), then retention.
            let before: Vec<_> = wins
                .iter()
                .map(|&w| {
                    store.stats_live_with(w, None, false).unwrap();
                    days(w)
                })
                .collect();
            let deleted = store.retention(Timestamp(cutoff), None, 2).unwrap();
            for (w, old) in wins.iter().zip(&before) {
                let same = std::sync::Arc::ptr_eq(old, &days(*w));
                if w.from.unwrap().0 >= hour(cutoff) {
                    assert!(same, "cutoff {cutoff}: the entry of {w:?} was dropped though retention removed nothing in it");
                    kept += 1;
                } else if deleted > 0 && !same {
                    rebuilt += 1;
                }
            }
            check(&format!("cutoff {cutoff}, round {rounds}"));
            if deleted == 0 {
                break;
            }
            rounds += 1;
            assert!(rounds < 10_000);
        }
        assert!(rounds > 0, "retention at {cutoff} deleted nothing");
    }
    assert!(kept > 0 && rebuilt > 0, "kept {kept}, rebuilt {rebuilt}");
}

/// The cached sums slide with the log: lines fed a few at a time into one
/// store, as the daemon does, give every window's per-domain and per-IP
/// sums equal to those summed from the tables, and most entries are slid
/// from the previous hour's instead of summed again.
#[test]
fn cached_sums_slide_with_the_log() {
    use postlens::ingest::{LogFormat, Options, ParseThread, Pipeline, Summary};
    let d = TempDir::new("rollup-slide");
    let text = std::fs::read_to_string(genlog(&d, 40_000, 3, 9, "2026-03-02", "classic")).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    let store = std::sync::Arc::new(Store::open(&d.path().join("ws")).unwrap());
    let opts = Options {
        format: LogFormat::Default,
        tz: jiff::tz::TimeZone::UTC,
        starting_year: Some(2026),
        progress: false,
        retention_secs: 3650 * 86_400,
        max_db_size: None,
        parse_thread: ParseThread::Auto,
    };
    let mut p = Pipeline::new(store.clone(), opts).unwrap();
    let mut feed = |part: &[&str]| p.import_reader("log", format!("{}\n", part.join("\n")).as_bytes(), &mut Summary::default()).unwrap();
    let half = lines.len() / 2;
    feed(&lines[..half]);
    let (first, _) = store.time_span().unwrap().unwrap();
    let far = Some(Timestamp(first + 30 * 86_400));
    let (mut checked, mut slid_windows) = (0, 0);
    for chunk in lines[half..].chunks(250) {
        feed(chunk);
        let newest = store.time_span().unwrap().unwrap().1.div_euclid(3600) * 3600;
        // From a fixed hour, and the last day (its start moves too).
        for w in [Window { from: Some(Timestamp(first + 7200)), to: far }, Window { from: Some(Timestamp(newest - 86_400)), to: far }] {
            let before = store.cache_builds();
            let (dom, auth) = (store.domains(w).unwrap(), store.auth_by_ip(w).unwrap());
            if store.cache_builds()[1] > before[1] {
                slid_windows += 1;
            }
            store.bypass_cache(true);
            assert_eq!(dom, store.domains(w).unwrap(), "domains of {w:?}");
            assert_eq!(auth, store.auth_by_ip(w).unwrap(), "IPs of {w:?}");
            store.bypass_cache(false);
            assert!(!dom.is_empty() && !auth.is_empty(), "{w:?} counted nothing");
            checked += 1;
        }
    }
    let [full, slid] = store.cache_builds();
    assert!(
        checked > 100 && slid_windows > 20 && slid > full,
        "{checked} windows, {slid_windows} slid; builds: {full} summed, {slid} slid"
    );
}

/// `postlens run` on `ws`, following `watch`, killed on drop (its stderr
/// printed when the test failed).
struct Daemon(std::process::Child, SocketAddr, PathBuf);
use std::net::SocketAddr;

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
        if std::thread::panicking() {
            eprintln!("daemon stderr:\n{}", std::fs::read_to_string(&self.2).unwrap_or_default());
        }
    }
}

#[test]
fn cached_whole_days_see_lines_arriving_for_them() {
    let d = TempDir::new("rollup-live");
    let log = genlog(&d, 30_000, 5, 5, "2026-05-10", "rfc3339");
    let ws = d.s("ws");
    ok(&["import", "--workspace", &ws, "--retention", "36500d", &log]);
    ok(&["user", "add", "--workspace", &ws, "--email", "ops@example.org", "--password", "Rollup-Check-42!"]);
    let watch = d.path().join("watch");
    std::fs::create_dir_all(&watch).unwrap();
    std::fs::write(watch.join("mail.log"), b"").unwrap();
    let port = common::free_port();
    let child = common::bin()
        .args(["run", "--workspace", &ws, "--watch-dir", watch.to_str().unwrap(), "--retention", "36500d"])
        .args(["--listen", &format!("127.0.0.1:{port}")])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(d.path().join("daemon.stderr")).unwrap())
        .spawn()
        .unwrap();
    let daemon = Daemon(child, SocketAddr::from(([127, 0, 0, 1], port)), d.path().join("daemon.stderr"));
    let deadline = Instant::now() + Duration::from_secs(30);
    while std::net::TcpStream::connect(daemon.1).is_err() {
        assert!(Instant::now() < deadline, "daemon not listening");
        std::thread::sleep(Duration::from_millis(20));
    }
    // Whole days 2026-05-11 .. 2026-05-14: the attackers' chart is summed
    // over them once, then cached.
    let cookie = common::sign_in(daemon.1, "ops@example.org", "Rollup-Check-42!");
    let page = || -> String {
        let (code, head, body) = common::http(daemon.1, "GET", "/?from=2026-05-11T00:00:00Z&to=2026-05-14T00:00:00Z", &cookie, "");
        assert_eq!(code, 200, "{body}");
        // A page of known length goes out whole, not chunked.
        assert!(head.contains(&format!("Content-Length: {}", body.len())), "{head}");
        body
    };
    let ip = "198.51.100.77";
    let before = page();
    assert!(before.contains("svg") && !before.contains(ip));
    // Failed logins dated inside a cached day arrive, enough to top the chart.
    let mut f = std::fs::OpenOptions::new().append(true).open(watch.join("mail.log")).unwrap();
    for i in 0..500 {
        writeln!(
            f,
            "2026-05-12T10:{:02}:{:02}+00:00 mail postfix/smtpd[999]: warning: unknown[{ip}]: SASL LOGIN authentication failed: authentication failure",
            i / 60,
            i % 60
        )
        .unwrap();
    }
    // And a batch's worth of lines dated after the window, so that the
    // daemon commits at once (a trickle would wait for its periodic
    // commit, readers seeing the lines through its overlay meanwhile).
    for i in 0..20_000 {
        writeln!(
            f,
            "2026-05-15T01:{:02}:{:02}+00:00 mail postfix/anvil[77]: statistics: max cache size 1 at May 15 01:00:00",
            i / 60 % 60,
            i % 60
        )
        .unwrap();
    }
    drop(f);
    let deadline = Instant::now() + Duration::from_secs(20);
    while !page().contains(ip) {
        assert!(Instant::now() < deadline, "the new failures never showed");
        std::thread::sleep(Duration::from_millis(100));
    }
    // Committed, they leave the daemon's overlay for the snapshot, where
    // only an invalidated cache shows them: they must stay.
    let until = Instant::now() + Duration::from_secs(3);
    while Instant::now() < until {
        assert!(page().contains(ip), "the attacker left the chart once committed: a stale cache");
        std::thread::sleep(Duration::from_millis(100));
    }
}
