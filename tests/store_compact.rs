#![allow(clippy::unwrap_used, reason = "test code: a failed unwrap is a failed test")]
//! Compaction is crash-safe: a `postlens import` killed with SIGKILL while
//! it compacts the file leaves a store that opens and answers exactly as
//! before, and the next import compacts it.
//!
//! The free space to compact is made by hand: a ballast table written
//! into the empty database before the import and dropped after it, so the
//! store's own pages sit behind a large hole and compaction must move them
//! (not merely cut the file's free tail).

mod common;

use common::{TempDir, ok};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

const BALLAST: redb::TableDefinition<u32, &[u8]> = redb::TableDefinition::new("test_ballast");

fn genlog(dir: &TempDir, lines: usize) -> String {
    let out = dir.s("gen.log");
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("benches/genlog.py");
    let st = Command::new("python3")
        .args([script.to_str().unwrap(), "--lines", &lines.to_string(), "--days", "2", "--seed", "3", "--start", "2026-03-01"])
        .args(["--format", "classic", "--utc-offset", "+00:00", "-o", &out, "--quiet"])
        .status()
        .expect("python3 runs benches/genlog.py");
    assert!(st.success(), "genlog.py failed");
    out
}

fn db(ws: &Path) -> PathBuf {
    ws.join("postlens.redb")
}

fn ballast(ws: &Path, add: bool) {
    let d = redb::Builder::new().set_cache_size(1 << 20).create(db(ws)).unwrap();
    let tx = d.begin_write().unwrap();
    if add {
        let mut t = tx.open_table(BALLAST).unwrap();
        let v = vec![7u8; 3_000];
        for i in 0..12_000u32 {
            t.insert(i, v.as_slice()).unwrap();
        }
    } else {
        tx.delete_table(BALLAST).unwrap();
    }
    tx.commit().unwrap();
}

/// What a user sees: stats and a few detective searches.
fn answers(ws: &Path) -> String {
    let w = ws.to_str().unwrap();
    let mut out = ok(&["stats", "--workspace", w, "--json"]);
    for q in [&["--recipient", "@gmail.com"][..], &["--status", "bounced"], &["--status", "deferred"], &["--sender", "@example.org"]] {
        let mut args = vec!["search", "--workspace", w, "--json", "--limit", "500"];
        args.extend_from_slice(q);
        out += &ok(&args);
    }
    out
}

fn import(ws: &Path, log: &str) -> std::process::Child {
    common::bin().args(["import", "--workspace", ws.to_str().unwrap(), log]).stdout(Stdio::null()).stderr(Stdio::piped()).spawn().unwrap()
}

/// Reads the import's messages up to the one that starts compacting; the
/// moment it was read.
fn compaction_started(err: &mut impl BufRead, what: &str) -> std::time::Instant {
    let mut line = String::new();
    let mut seen = String::new();
    while err.read_line(&mut line).unwrap() > 0 {
        seen += &line;
        if line.contains("compacting the database") {
            return std::time::Instant::now();
        }
        line.clear();
    }
    panic!("{what}: no compaction started: {seen}");
}

#[test]
fn sigkill_during_compaction_loses_nothing() {
    let dir = TempDir::new("compact-kill");
    let log = genlog(&dir, 60_000);
    let base = dir.0.join("base");
    std::fs::create_dir_all(&base).unwrap();
    ballast(&base, true);
    ok(&["import", "--workspace", base.to_str().unwrap(), &log]);
    let want = answers(&base);
    ballast(&base, false);
    let size = std::fs::metadata(db(&base)).unwrap().len();

    // How long a compaction takes here: the kills are spread over it.
    let probe = dir.0.join("probe");
    std::fs::create_dir_all(&probe).unwrap();
    std::fs::copy(db(&base), db(&probe)).unwrap();
    let mut child = import(&probe, &log);
    let mut err = BufReader::new(child.stderr.take().unwrap());
    let started = compaction_started(&mut err, "probe");
    let mut rest = String::new();
    let _ = std::io::Read::read_to_string(&mut err, &mut rest);
    let took = started.elapsed();
    assert!(child.wait().unwrap().success() && rest.contains("compacted the database"), "probe: {rest}");

    let mut inside = 0;
    for round in 0..6u32 {
        let ws = dir.0.join(format!("round-{round}"));
        std::fs::create_dir_all(&ws).unwrap();
        std::fs::copy(db(&base), db(&ws)).unwrap();
        // Nothing new to import: the import ends with its durable commit
        // and compacts the hole away.
        let mut child = import(&ws, &log);
        let mut err = BufReader::new(child.stderr.take().unwrap());
        compaction_started(&mut err, &format!("round {round}"));
        std::thread::sleep(took * round / 6);
        child.kill().unwrap();
        child.wait().unwrap();
        let mut rest = String::new();
        let _ = std::io::Read::read_to_string(&mut err, &mut rest);
        if !rest.contains("compacted the database") {
            inside += 1;
        }
        assert_eq!(answers(&ws), want, "round {round}: answers after a kill during compaction");
        // The next import finishes the job.
        let o = import(&ws, &log).wait_with_output().unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        assert_eq!(answers(&ws), want, "round {round}: answers after compacting");
        let after = std::fs::metadata(db(&ws)).unwrap().len();
        assert!(after * 2 < size, "round {round}: compacted {size} -> {after} bytes");
    }
    assert!(inside >= 3, "only {inside} of 6 kills landed during compaction (one takes {took:?} here)");
}
