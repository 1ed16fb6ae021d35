#![allow(clippy::unwrap_used, reason = "test code: a failed unwrap is a failed test")]
//! `postlens run` end to end: the real binary following real files through
//! rotations, sockets, stdin and a journal stand-in, killed with SIGKILL and
//! restarted; every test compares the daemon's final `stats --json` with one
//! clean `postlens import` of the same lines.

mod common;

use common::free_port;

use common::{TempDir, ok, stats_json};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A generated log in RFC 3339 format (explicit years, so any split of it
/// resolves the same way), as lines.
fn generated(dir: &TempDir, lines: usize, seed: u32) -> Vec<Vec<u8>> {
    let out = dir.s(&format!("gen-{seed}.log"));
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("benches/genlog.py");
    let st = Command::new("python3")
        .args([
            script.to_str().unwrap(),
            "--lines",
            &lines.to_string(),
            "--days",
            "2",
            "--seed",
            &seed.to_string(),
            "--format",
            "rfc3339",
            "-o",
            &out,
        ])
        .status()
        .expect("python3 runs benches/genlog.py (make deps installs python3)");
    assert!(st.success());
    std::fs::read(&out).unwrap().split(|&c| c == b'\n').filter(|l| !l.is_empty()).map(<[u8]>::to_vec).collect()
}

fn write_lines(path: &Path, lines: &[Vec<u8>], append: bool) {
    let mut f = std::fs::OpenOptions::new().create(true).append(append).write(true).truncate(!append).open(path).unwrap();
    let mut buf = Vec::new();
    for l in lines {
        buf.extend_from_slice(l);
        buf.push(b'\n');
    }
    f.write_all(&buf).unwrap();
}

fn gzip(path: &Path, lines: &[Vec<u8>]) {
    let mut enc = flate2::write::GzEncoder::new(std::fs::File::create(path).unwrap(), flate2::Compression::fast());
    for l in lines {
        enc.write_all(l).unwrap();
        enc.write_all(b"\n").unwrap();
    }
    enc.finish().unwrap();
}

/// The stats of one clean import of `lines`.
fn reference(dir: &TempDir, lines: &[Vec<u8>], tag: &str) -> serde_json::Value {
    let f = dir.0.join(format!("ref-{tag}.log"));
    write_lines(&f, lines, false);
    let ws = dir.0.join(format!("ref-ws-{tag}"));
    ok(&["import", "--workspace", ws.to_str().unwrap(), "--retention", "36500d", f.to_str().unwrap()]);
    stats_json(&ws)
}

struct Daemon {
    child: Child,
    ws: PathBuf,
}

impl Daemon {
    fn start(ws: &Path, extra: &[&str]) -> Daemon {
        Daemon::start_env(ws, extra, &[])
    }

    fn start_env(ws: &Path, extra: &[&str], env: &[(&str, &str)]) -> Daemon {
        let port = free_port().to_string();
        let listen = format!("127.0.0.1:{port}");
        let mut c = common::bin();
        c.args(["run", "--workspace", ws.to_str().unwrap(), "--listen", &listen, "--retention", "36500d"]).args(extra);
        for (k, v) in env {
            c.env(k, v);
        }
        let log = std::fs::File::create(ws.with_extension("stderr")).unwrap();
        let child = c.stdin(Stdio::null()).stdout(Stdio::null()).stderr(log).spawn().unwrap();
        Daemon { child, ws: ws.to_owned() }
    }

    fn stderr(&self) -> String {
        std::fs::read_to_string(self.ws.with_extension("stderr")).unwrap_or_default()
    }

    /// Polls `stats --json` (through the daemon's control socket) until
    /// `lines.read` reaches `n` and all of it is committed.
    fn wait_lines(&mut self, n: u64) -> serde_json::Value {
        let deadline = Instant::now() + Duration::from_mins(1);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                panic!("daemon exited with {status}: {}", self.stderr());
            }
            let o = common::run(&["stats", "--workspace", self.ws.to_str().unwrap(), "--json"]);
            if o.status.success() {
                let s: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
                let read = s["lines"]["read"].as_u64().unwrap();
                assert!(read <= n, "read {read} lines of {n}: counted twice");
                if read == n {
                    return s;
                }
            }
            assert!(Instant::now() < deadline, "timed out waiting for {n} lines; stderr:\n{}", self.stderr());
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn kill9(mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }

    /// SIGTERM; asserts a clean exit within 2 s.
    fn stop(mut self) {
        let pid = self.child.id().to_string();
        let t = Instant::now();
        assert!(Command::new("kill").args(["-TERM", &pid]).status().unwrap().success());
        loop {
            if let Some(st) = self.child.try_wait().unwrap() {
                assert!(st.success(), "exit {st}: {}", self.stderr());
                break;
            }
            assert!(t.elapsed() < Duration::from_secs(2), "did not exit within 2 s of SIGTERM");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn without_lifetime_keys(mut v: serde_json::Value) -> serde_json::Value {
    v.as_object_mut().unwrap().remove("window");
    v
}

#[test]
fn follows_history_rotations_truncation_and_deletion_like_one_import() {
    let d = TempDir::new("follow");
    let lines = generated(&d, 24_000, 11);
    let parts: Vec<&[Vec<u8>]> = lines.chunks(3_000).collect();
    let logs = d.0.join("logs");
    std::fs::create_dir_all(&logs).unwrap();
    // History: an old gzipped archive, a plain one, and the live file.
    gzip(&logs.join("mail.log.2.gz"), parts[0]);
    write_lines(&logs.join("mail.log.1"), parts[1], false);
    write_lines(&logs.join("mail.log"), parts[2], false);
    // mail.warn duplicates lines of mail.log: it must not count twice.
    write_lines(&logs.join("mail.warn"), &parts[2][..100], false);
    let ws = d.0.join("ws");
    let mut dm = Daemon::start(&ws, &["--watch-dir", logs.to_str().unwrap()]);
    let mut n = 9_000;
    dm.wait_lines(n);
    // Growth.
    write_lines(&logs.join("mail.log"), parts[3], true);
    n += 3_000;
    dm.wait_lines(n);
    // Rotation by rename (logrotate `create`), then gzip of the rotated file.
    std::fs::rename(logs.join("mail.log.1"), logs.join("mail.log.2")).unwrap();
    std::fs::rename(logs.join("mail.log"), logs.join("mail.log.1")).unwrap();
    write_lines(&logs.join("mail.log"), &[], false);
    write_lines(&logs.join("mail.log"), parts[4], true);
    n += 3_000;
    dm.wait_lines(n);
    let raw = std::fs::read(logs.join("mail.log.2")).unwrap();
    let lines2: Vec<Vec<u8>> = raw.split(|&c| c == b'\n').filter(|l| !l.is_empty()).map(<[u8]>::to_vec).collect();
    gzip(&logs.join("mail.log.2.gz"), &lines2);
    std::fs::remove_file(logs.join("mail.log.2")).unwrap();
    // copytruncate: copy, then empty the live file in place and go on.
    std::fs::copy(logs.join("mail.log"), logs.join("mail.log.0")).unwrap();
    std::fs::OpenOptions::new().write(true).open(logs.join("mail.log")).unwrap().set_len(0).unwrap();
    write_lines(&logs.join("mail.log"), parts[5], true);
    n += 3_000;
    dm.wait_lines(n);
    // Deleted while open: its last lines still count.
    write_lines(&logs.join("mail.log"), parts[6], true);
    std::fs::remove_file(logs.join("mail.log")).unwrap();
    n += 3_000;
    dm.wait_lines(n);
    // A file that appears later.
    std::thread::sleep(Duration::from_millis(300));
    write_lines(&logs.join("mail.log"), parts[7], false);
    n += 3_000;
    let live = dm.wait_lines(n);
    dm.stop();
    // After a restart nothing is read again (archives, the copy, the live file).
    let mut dm = Daemon::start(&ws, &["--watch-dir", logs.to_str().unwrap()]);
    std::thread::sleep(Duration::from_millis(1_500));
    let again = dm.wait_lines(n);
    dm.stop();
    let want = reference(&d, &lines, "follow");
    assert_eq!(without_lifetime_keys(live), without_lifetime_keys(want.clone()));
    assert_eq!(without_lifetime_keys(again), without_lifetime_keys(want));
}

/// `total` generated lines (seed `seed`), the first `first` of them in
/// `logs/mail.log`, followed by a daemon (workspace `ws`) that has read them.
fn following(d: &TempDir, total: usize, seed: u32, first: usize) -> (Vec<Vec<u8>>, PathBuf, PathBuf, Daemon) {
    let lines = generated(d, total, seed);
    let logs = d.0.join("logs");
    std::fs::create_dir_all(&logs).unwrap();
    write_lines(&logs.join("mail.log"), &lines[..first], false);
    let ws = d.0.join("ws");
    let mut dm = Daemon::start(&ws, &["--watch-dir", logs.to_str().unwrap()]);
    dm.wait_lines(first as u64);
    (lines, logs, ws, dm)
}

/// Regression: logrotate's `copytruncate` copies the live file, then
/// empties it. A daemon starting while the copy was half written (shorter
/// than what had been read of the live file, with the same first line) took
/// it for the live file refilled in place and read it again from the start.
#[test]
fn a_copy_found_half_written_at_start_is_not_read_again() {
    let d = TempDir::new("halfcopy");
    let (lines, logs, ws, dm) = following(&d, 4_000, 23, 2_000);
    dm.stop();
    // The copy as a starting daemon finds it while it is being written.
    write_lines(&logs.join("mail.log.0"), &lines[..700], false);
    let mut dm = Daemon::start(&ws, &["--watch-dir", logs.to_str().unwrap()]);
    std::thread::sleep(Duration::from_millis(1_500));
    let mid = dm.wait_lines(2_000);
    // The copy completes; the live file is emptied and goes on.
    write_lines(&logs.join("mail.log.0"), &lines[700..2_000], true);
    std::fs::OpenOptions::new().write(true).open(logs.join("mail.log")).unwrap().set_len(0).unwrap();
    write_lines(&logs.join("mail.log"), &lines[2_000..], true);
    let got = dm.wait_lines(4_000);
    dm.stop();
    // After a restart neither file is read again.
    let mut dm = Daemon::start(&ws, &["--watch-dir", logs.to_str().unwrap()]);
    std::thread::sleep(Duration::from_millis(1_500));
    let again = dm.wait_lines(4_000);
    dm.stop();
    assert_eq!(mid["lines"]["read"], 2_000);
    let want = reference(&d, &lines, "halfcopy");
    assert_eq!(without_lifetime_keys(got), without_lifetime_keys(want.clone()));
    assert_eq!(without_lifetime_keys(again), without_lifetime_keys(want));
}

/// Regression: a `copytruncate` whose file was refilled past the old
/// position before the daemon looked went unnoticed (only a shorter file
/// counted as truncated), and the refilled lines were skipped.
#[test]
fn copytruncate_refilled_past_the_old_position_is_noticed() {
    let d = TempDir::new("refill");
    let (lines, logs, _ws, mut dm) = following(&d, 6_000, 21, 2_000);
    // Freeze the daemon so it cannot see the file shrink.
    let pid = dm.child.id().to_string();
    assert!(Command::new("kill").args(["-STOP", &pid]).status().unwrap().success());
    std::fs::copy(logs.join("mail.log"), logs.join("mail.log.1")).unwrap();
    std::fs::OpenOptions::new().write(true).open(logs.join("mail.log")).unwrap().set_len(0).unwrap();
    write_lines(&logs.join("mail.log"), &lines[2_000..], true);
    assert!(Command::new("kill").args(["-CONT", &pid]).status().unwrap().success());
    let got = dm.wait_lines(6_000);
    dm.stop();
    assert_eq!(without_lifetime_keys(got), without_lifetime_keys(reference(&d, &lines, "refill")));
}

#[test]
fn sigkill_at_random_moments_loses_and_doubles_nothing() {
    let d = TempDir::new("kill");
    let lines = generated(&d, 120_000, 12);
    let logs = d.0.join("logs");
    std::fs::create_dir_all(&logs).unwrap();
    let (history, live) = lines.split_at(60_000);
    gzip(&logs.join("mail.log.1.gz"), history);
    write_lines(&logs.join("mail.log"), &[], false);
    let ws = d.0.join("ws");
    // A deterministic "random" schedule of kills during the history import
    // and during live follow.
    let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut rnd = |m: u64| {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed % m
    };
    let mut written = 0;
    let mut kills = 0;
    while written < live.len() || kills < 8 {
        let dm = Daemon::start(&ws, &["--watch-dir", logs.to_str().unwrap()]);
        let until = Instant::now() + Duration::from_millis(100 + rnd(500));
        while Instant::now() < until && written < live.len() {
            let k = (live.len() - written).min(500 + usize::try_from(rnd(3_000)).unwrap());
            write_lines(&logs.join("mail.log"), &live[written..written + k], true);
            written += k;
            std::thread::sleep(Duration::from_millis(rnd(40)));
        }
        dm.kill9();
        kills += 1;
        if kills > 40 {
            break;
        }
    }
    let mut dm = Daemon::start(&ws, &["--watch-dir", logs.to_str().unwrap()]);
    let got = dm.wait_lines(lines.len() as u64);
    dm.stop();
    assert!(kills >= 8, "{kills} kills");
    assert_eq!(without_lifetime_keys(got), without_lifetime_keys(reference(&d, &lines, "kill")));
}

#[test]
fn sockets_take_several_clients_and_survive_hostile_ones() {
    let d = TempDir::new("sock");
    let lines = generated(&d, 20_000, 13);
    let ws = d.0.join("ws");
    let unix = d.0.join("in.sock");
    let tcp = format!("127.0.0.1:{}", free_port());
    let mut dm = Daemon::start(&ws, &["--socket", &format!("unix:{}", unix.display()), "--socket", &format!("tcp:{tcp}")]);
    let t = Instant::now();
    while !unix.exists() {
        assert!(t.elapsed() < Duration::from_secs(10), "socket never appeared: {}", dm.stderr());
        std::thread::sleep(Duration::from_millis(20));
    }
    // A silent client holding half a line, and one sending an endless line.
    let mut silent = std::os::unix::net::UnixStream::connect(&unix).unwrap();
    silent.write_all(b"Nov 21 10:00:00 mx postfix/smtpd[1]: connect fr").unwrap();
    // The TCP listener is bound after the unix one (much later under
    // qemu-user): retry until it accepts.
    let mut flood = loop {
        match std::net::TcpStream::connect(&tcp) {
            Ok(c) => break c,
            Err(e) => {
                assert!(t.elapsed() < Duration::from_secs(20), "TCP socket never accepted: {e}: {}", dm.stderr());
                std::thread::sleep(Duration::from_millis(20));
            }
        }
    };
    flood.write_all(&vec![b'x'; 2 * 1024 * 1024]).unwrap();
    flood.write_all(b"\n").unwrap();
    // The real lines: first half over unix, second half over TCP.
    let (a, b) = lines.split_at(10_000);
    let mut body = Vec::new();
    for l in a {
        body.extend_from_slice(l);
        body.push(b'\n');
    }
    std::os::unix::net::UnixStream::connect(&unix).unwrap().write_all(&body).unwrap();
    dm.wait_lines(10_001); // + the flood's one over-long line
    let mut body = Vec::new();
    for l in b {
        body.extend_from_slice(l);
        body.push(b'\n');
    }
    std::net::TcpStream::connect(&tcp).unwrap().write_all(&body).unwrap();
    let got = dm.wait_lines(20_001);
    assert_eq!(got["lines"]["malformed"], 1, "the flood's line is counted, not kept");
    drop(silent);
    dm.stop();
    let mut want = reference(&d, &lines, "sock");
    want["lines"]["read"] = serde_json::json!(20_001);
    want["lines"]["malformed"] = serde_json::json!(1);
    assert_eq!(without_lifetime_keys(got), without_lifetime_keys(want));
}

#[test]
fn stdin_is_read_and_sigterm_exits_cleanly() {
    let d = TempDir::new("stdin");
    let lines = generated(&d, 5_000, 14);
    let ws = d.0.join("ws");
    let port = free_port().to_string();
    let mut child = common::bin()
        .args(["run", "--stdin", "--workspace", ws.to_str().unwrap(), "--listen", &format!("127.0.0.1:{port}"), "--retention", "36500d"])
        .stdin(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    for l in &lines {
        stdin.write_all(l).unwrap();
        stdin.write_all(b"\n").unwrap();
    }
    drop(stdin);
    let mut dm = Daemon { child, ws: ws.clone() };
    let got = dm.wait_lines(5_000);
    dm.stop();
    assert_eq!(without_lifetime_keys(got), without_lifetime_keys(reference(&d, &lines, "stdin")));
}

/// A journald stand-in (this machine has no systemd): a `journalctl` that
/// prints JSON records from a file, honours `--after-cursor`, then waits as
/// `--follow` does. The real client code (spawning, parsing, cursor) runs.
fn fake_journalctl(dir: &TempDir, records: &Path) -> PathBuf {
    let script = dir.0.join("journalctl");
    std::fs::write(
        &script,
        format!(
            "#!/usr/bin/env python3\nimport sys, time, json\nafter = None\nfor a in sys.argv[1:]:\n    if a.startswith('--after-cursor='): after = a.split('=', 1)[1]\nseen = after is None\nfor line in open('{}'):\n    c = json.loads(line)['__CURSOR']\n    if seen: sys.stdout.write(line)\n    if c == after: seen = True\nsys.stdout.flush()\ntime.sleep(3600)\n",
            records.display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    script
}

fn journal_records(lines: &[Vec<u8>], first: usize) -> String {
    // `2026-10-01T00:00:08.224547+00:00 mail postfix/smtpd[12]: msg` -> JSON.
    let mut out = String::new();
    for (i, l) in lines.iter().enumerate() {
        let l = String::from_utf8_lossy(l);
        let mut it = l.splitn(4, ' ');
        let (ts, host, prog, msg) = (it.next().unwrap(), it.next().unwrap(), it.next().unwrap(), it.next().unwrap_or(""));
        let micros = ts.parse::<jiff::Timestamp>().unwrap().as_microsecond();
        let prog = prog.trim_end_matches(':');
        let (ident, pid) = prog.split_once('[').map_or((prog, ""), |(a, b)| (a, b.trim_end_matches(']')));
        let rec = serde_json::json!({"__CURSOR": format!("s=x;i={}", first + i), "__REALTIME_TIMESTAMP": micros.to_string(), "_HOSTNAME": host, "SYSLOG_IDENTIFIER": ident, "_PID": pid, "MESSAGE": msg});
        out.push_str(&rec.to_string());
        out.push('\n');
    }
    out
}

#[test]
fn journal_resumes_from_its_cursor() {
    let d = TempDir::new("journal");
    let lines = generated(&d, 6_000, 15);
    let records = d.0.join("journal.jsonl");
    std::fs::write(&records, journal_records(&lines[..4_000], 0)).unwrap();
    let script = fake_journalctl(&d, &records);
    let ws = d.0.join("ws");
    let env = [("POSTLENS_JOURNALCTL", script.to_str().unwrap())];
    let mut dm = Daemon::start_env(&ws, &["--journal"], &env);
    dm.wait_lines(4_000);
    dm.stop();
    // More records arrive while postlens is down; it resumes after its cursor.
    let mut f = std::fs::OpenOptions::new().append(true).open(&records).unwrap();
    f.write_all(journal_records(&lines[4_000..], 4_000).as_bytes()).unwrap();
    let mut dm = Daemon::start_env(&ws, &["--journal"], &env);
    let got = dm.wait_lines(6_000);
    dm.stop();
    assert_eq!(without_lifetime_keys(got), without_lifetime_keys(reference(&d, &lines, "journal")));
}

#[test]
fn a_full_disk_pauses_ingestion_and_it_resumes_when_space_returns() {
    if !nix_is_root() {
        let msg = "needs root to mount a small tmpfs";
        assert!(std::env::var("CI").as_deref() != Ok("true"), "{msg}");
        eprintln!("SKIPPED: {msg}");
        return;
    }
    let d = TempDir::new("full");
    let lines = generated(&d, 150_000, 16);
    let mnt = d.0.join("mnt");
    std::fs::create_dir_all(&mnt).unwrap();
    if !Command::new("mount").args(["-t", "tmpfs", "-o", "size=1m", "tmpfs", mnt.to_str().unwrap()]).status().unwrap().success() {
        // Root without the right to mount (an unprivileged container).
        eprintln!("SKIPPED: this machine does not allow mounting a tmpfs");
        return;
    }
    let _guard = Unmount(mnt.clone());
    let logs = d.0.join("logs");
    std::fs::create_dir_all(&logs).unwrap();
    write_lines(&logs.join("mail.log"), &lines, false);
    let ws = mnt.join("ws");
    let mut dm = Daemon::start(&ws, &["--watch-dir", logs.to_str().unwrap()]);
    // Wait for the failure to be reported, while stats keeps answering.
    let t = Instant::now();
    while !dm.stderr().contains("ingestion paused") {
        assert!(t.elapsed() < Duration::from_secs(30), "no pause reported: {}", dm.stderr());
        std::thread::sleep(Duration::from_millis(100));
    }
    let o = common::run(&["stats", "--workspace", ws.to_str().unwrap(), "--json"]);
    assert!(o.status.success(), "stats answers while paused: {}", String::from_utf8_lossy(&o.stderr));
    // Space returns.
    assert!(Command::new("mount").args(["-o", "remount,size=256m", mnt.to_str().unwrap()]).status().unwrap().success());
    let got = dm.wait_lines(150_000);
    // Either the failed commit went through after the reopen, or the reopen
    // rolled back to the last durable commit and ingestion restarted there.
    let e = dm.stderr();
    assert!(e.contains("ingestion resumed") || e.contains("restarts from the last durable commit"), "{e}");
    dm.stop();
    assert_eq!(without_lifetime_keys(got), without_lifetime_keys(reference(&d, &lines, "full")));
}

/// Unmounts on drop, so a failed test leaves no mount behind.
struct Unmount(PathBuf);

impl Drop for Unmount {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

fn nix_is_root() -> bool {
    Command::new("id").arg("-u").output().is_ok_and(|o| o.stdout.trim_ascii() == b"0")
}
