#![allow(clippy::unwrap_used, reason = "test code: a failed unwrap is a failed test")]
//! `postlens user add|reset-password|token` end to end: the real binary,
//! with no daemon (it opens the database itself) and with `postlens run`
//! holding the database (the command goes over the control socket), the
//! password from the flag, the environment and a terminal prompt; every
//! result is then checked in the database through the library.

mod common;

use common::free_port;

use common::TempDir;
use postlens::auth::{self, Role};
use postlens::store::Store;
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

const PW: &str = "correct horse battery";

fn user(ws: &Path, args: &[&str]) -> Output {
    user_env(ws, args, &[])
}

fn user_env(ws: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut c = common::bin();
    c.arg("user").args(args).args(["--workspace", ws.to_str().unwrap()]).stdin(Stdio::null());
    for (k, v) in env {
        c.env(k, v);
    }
    c.output().unwrap()
}

fn stdout(o: &Output) -> String {
    String::from_utf8(o.stdout.clone()).unwrap()
}

fn stderr(o: &Output) -> String {
    String::from_utf8(o.stderr.clone()).unwrap()
}

#[track_caller]
fn succeeds(o: &Output) -> String {
    assert!(o.status.success(), "failed: {}", stderr(o));
    stdout(o)
}

/// Exit code 2, and the message names `flag` and says `why`.
#[track_caller]
fn usage_error(o: &Output, flag: &str, why: &str) {
    let e = stderr(o);
    assert_eq!(o.status.code(), Some(2), "stderr: {e}");
    assert!(e.starts_with(&format!("postlens: {flag}: ")), "{e}");
    assert!(e.contains(why), "{e}");
    assert!(o.stdout.is_empty());
}

/// Logins, tokens and roles as stored, read with the library (no daemon
/// may hold the database).
fn check_database(ws: &Path, logins: &[(&str, &str, Role)], token: Option<(&str, &str)>) {
    let store = Store::open(ws).unwrap();
    for (email, pw, role) in logins {
        let u = auth::verify_login(&store, email, pw).unwrap().unwrap_or_else(|| panic!("{email} cannot log in"));
        assert_eq!(u.role, *role, "{email}");
        assert_eq!(auth::verify_login(&store, email, "not the password!").unwrap(), None);
    }
    if let Some((t, email)) = token {
        assert_eq!(auth::token_user(&store, t).unwrap().unwrap().email.as_str(), email);
    }
}

/// The same sequence against a workspace, with or without a daemon.
fn exercise(ws: &Path) -> String {
    // Bad input: exit 2 naming the flag, nothing written.
    usage_error(&user(ws, &["add", "--email", "admin", "--password", PW]), "--email", "not an e-mail address");
    usage_error(&user(ws, &["add", "--email", "admin@example.org", "--password", "short"]), "--password", "too short");
    usage_error(&user(ws, &["add", "--email", "admin@example.org", "--password", "Password123"]), "--password", "too common");
    usage_error(&user(ws, &["add", "--email", "admin@example.org", "--password", "admin-of-it-all"]), "--password", "name part");
    usage_error(&user(ws, &["add", "--email", "ro@example.org", "--password", PW, "--read-only"]), "--read-only", "must be an admin");
    usage_error(&user(ws, &["token", "--email", "admin@example.org"]), "--email", "no user admin@example.org");
    // The first user, from the flag; the address is lower-cased.
    assert_eq!(succeeds(&user(ws, &["add", "--email", "Admin@Example.org", "--password", PW])), "added user admin@example.org (admin)\n");
    usage_error(&user(ws, &["add", "--email", "admin@example.org", "--password", PW]), "--email", "already exists");
    // A read-only user, the password from the environment.
    let o = user_env(ws, &["add", "--email", "viewer@example.org", "--read-only"], &[("POSTLENS_PASSWORD", "-a watcher's passphrase")]);
    assert_eq!(succeeds(&o), "added user viewer@example.org (read-only)\n");
    usage_error(&user(ws, &["reset-password", "--email", "nobody@example.org", "--password", PW]), "--email", "no user");
    // A password that starts with a dash is a value, not a flag.
    let o = user(ws, &["reset-password", "--email", "viewer@example.org", "--password", "-a new passphrase"]);
    assert!(succeeds(&o).contains("changed the password of viewer@example.org"));
    let token = succeeds(&user(ws, &["token", "--email", "viewer@example.org"]));
    let token = token.strip_suffix('\n').unwrap().to_owned();
    assert!(token.starts_with("pl_") && token.len() == 67, "{token}");
    let again = succeeds(&user(ws, &["token", "--email", "viewer@example.org"]));
    assert_ne!(again.trim_end(), token, "every token is new");
    token
}

#[test]
fn user_commands_without_a_daemon() {
    let d = TempDir::new("users-direct");
    let ws = d.0.join("ws");
    // No database yet: only `add` creates one.
    usage_error(&user(&ws, &["reset-password", "--email", "admin@example.org", "--password", PW]), "--email", "no user");
    assert!(!ws.exists());
    let token = exercise(&ws);
    check_database(
        &ws,
        &[("admin@example.org", PW, Role::Admin), ("viewer@example.org", "-a new passphrase", Role::ReadOnly)],
        Some((&token, "viewer@example.org")),
    );
}

#[test]
fn user_commands_through_a_running_daemon() {
    let d = TempDir::new("users-daemon");
    let ws = d.0.join("ws");
    let logs = d.0.join("logs");
    std::fs::create_dir_all(&logs).unwrap();
    let dm = Daemon::start(&ws, &logs);
    let token = exercise(&ws);
    dm.stop();
    // Written by the daemon, durably: read back once it has gone.
    check_database(
        &ws,
        &[("admin@example.org", PW, Role::Admin), ("viewer@example.org", "-a new passphrase", Role::ReadOnly)],
        Some((&token, "viewer@example.org")),
    );
    usage_error(&user(&ws, &["add", "--email", "viewer@example.org", "--password", PW]), "--email", "already exists");
}

#[test]
fn without_a_password_or_a_terminal_it_says_how_to_give_one() {
    let d = TempDir::new("users-nopw");
    let ws = d.0.join("ws");
    let o = user(&ws, &["add", "--email", "admin@example.org"]);
    usage_error(&o, "--password", "POSTLENS_PASSWORD");
    assert!(stderr(&o).contains("not a terminal"), "{}", stderr(&o));
}

/// Runs `postlens ARGS` on a pseudo-terminal, typing `lines` at its
/// prompts; returns (exit code, everything the terminal showed).
fn on_terminal(args: &[&str], lines: &[&str]) -> (i32, String) {
    const SCRIPT: &str = r#"
import os, pty, sys, time
lines = sys.argv[1].split("\n")
pid, fd = pty.fork()
if pid == 0:
    os.execv(sys.argv[2], sys.argv[2:])
out = b""
def read_until(marker):
    global out
    end = time.time() + 60
    while marker not in out and time.time() < end:
        try:
            chunk = os.read(fd, 1024)
        except OSError:
            return
        if not chunk:
            return
        out += chunk
for prompt, line in zip([b"New password: ", b"The same again: "], lines):
    read_until(prompt)
    os.write(fd, line.encode() + b"\n")
read_until(b"\0never")
_, status = os.waitpid(pid, 0)
sys.stdout.write(out.decode(errors="replace"))
sys.exit(os.waitstatus_to_exitcode(status))
"#;
    let mut c = Command::new("python3");
    c.arg("-c").arg(SCRIPT).arg(lines.join("\n")).arg(env!("CARGO_BIN_EXE_postlens")).args(args);
    for (k, _) in std::env::vars() {
        if k.starts_with("LIGHTMETER_") || k.starts_with("POSTLENS_") {
            c.env_remove(k);
        }
    }
    let o = c.output().expect("python3 runs (make deps installs it)");
    (o.status.code().unwrap(), String::from_utf8_lossy(&o.stdout).into_owned())
}

#[test]
fn the_password_is_asked_twice_on_a_terminal_without_echo() {
    let d = TempDir::new("users-tty");
    let ws = d.s("ws");
    let typed = "typed on a terminal";
    let (code, screen) = on_terminal(&["user", "add", "--workspace", &ws, "--email", "admin@example.org"], &[typed, typed]);
    assert_eq!(code, 0, "{screen}");
    assert!(screen.contains("New password: ") && screen.contains("The same again: "), "{screen}");
    assert!(!screen.contains(typed), "the password was echoed: {screen}");
    assert!(screen.contains("added user admin@example.org (admin)"), "{screen}");
    // Two different entries: nothing changes.
    let (code, screen) = on_terminal(
        &["user", "reset-password", "--workspace", &ws, "--email", "admin@example.org"],
        &["one new passphrase", "another one"],
    );
    assert_eq!(code, 2, "{screen}");
    assert!(screen.contains("--password: the two entries differ"), "{screen}");
    // A weak one is refused before it is asked again.
    let (code, screen) = on_terminal(&["user", "reset-password", "--workspace", &ws, "--email", "admin@example.org"], &["short", "short"]);
    assert_eq!(code, 2, "{screen}");
    assert!(screen.contains("--password: too short") && !screen.contains("The same again"), "{screen}");
    check_database(d.0.join("ws").as_path(), &[("admin@example.org", typed, Role::Admin)], None);
}

#[test]
fn the_oldest_token_is_revoked_beyond_the_limit_and_the_command_says_so() {
    let d = TempDir::new("users-tokens");
    let ws = d.0.join("ws");
    succeeds(&user(&ws, &["add", "--email", "admin@example.org", "--password", PW]));
    let tokens: Vec<String> = (0..auth::MAX_TOKENS_PER_USER)
        .map(|_| {
            let o = user(&ws, &["token", "--email", "admin@example.org"]);
            assert!(o.stderr.is_empty(), "{}", stderr(&o));
            succeeds(&o).trim_end().to_owned()
        })
        .collect();
    let o = user(&ws, &["token", "--email", "admin@example.org"]);
    let newest = succeeds(&o).trim_end().to_owned();
    assert!(stderr(&o).contains("revoked the first one"), "{}", stderr(&o));
    let store = Store::open(&ws).unwrap();
    assert_eq!(auth::token_user(&store, &tokens[0]).unwrap(), None);
    for t in tokens[1..].iter().chain([&newest]) {
        assert!(auth::token_user(&store, t).unwrap().is_some());
    }
}

/// `postlens run` on an empty log directory, until `stop`.
struct Daemon {
    child: Child,
    ws: std::path::PathBuf,
}

impl Daemon {
    fn start(ws: &Path, logs: &Path) -> Daemon {
        let listen = format!("127.0.0.1:{}", free_port());
        let log = std::fs::File::create(ws.with_extension("stderr")).unwrap();
        let child = common::bin()
            .args(["run", "--workspace", ws.to_str().unwrap(), "--watch-dir", logs.to_str().unwrap(), "--listen", &listen])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        let mut d = Daemon { child, ws: ws.to_owned() };
        d.wait_ready();
        d
    }

    fn stderr(&self) -> String {
        std::fs::read_to_string(self.ws.with_extension("stderr")).unwrap_or_default()
    }

    /// Until `status` is answered by the daemon.
    fn wait_ready(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(st) = self.child.try_wait().unwrap() {
                panic!("daemon exited with {st}: {}", self.stderr());
            }
            let o = common::run(&["status", "--workspace", self.ws.to_str().unwrap(), "--json"]);
            if o.status.success() && serde_json::from_slice::<serde_json::Value>(&o.stdout).unwrap()["running"] == true {
                return;
            }
            assert!(Instant::now() < deadline, "daemon not ready: {}", self.stderr());
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// SIGTERM and a clean exit.
    fn stop(mut self) {
        assert!(Command::new("kill").args(["-TERM", &self.child.id().to_string()]).status().unwrap().success());
        let st = self.child.wait().unwrap();
        assert!(st.success(), "exit {st}: {}", self.stderr());
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
