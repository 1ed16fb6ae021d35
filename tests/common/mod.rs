//! Shared helpers for integration tests: locating the shared corpus and the
//! built binary.
#![allow(dead_code, reason = "each test binary uses a subset")]

use std::path::PathBuf;

/// `../shared/corpus` beside the checkout. Missing corpus: a clear message,
/// and a failure under CI (`CI=true`), never a silent pass.
pub fn corpus() -> Option<PathBuf> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/corpus");
    if dir.join("all-postfix.log").exists() {
        return Some(dir);
    }
    let msg = format!("shared corpus not found at {} (expected beside the checkout)", dir.display());
    assert!(std::env::var("CI").as_deref() != Ok("true"), "{msg}");
    eprintln!("SKIPPED: {msg}");
    None
}

use std::process::{Command, Output};

pub fn bin() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_postlens"));
    // A fixed zone: test results must not depend on the machine's.
    c.env("POSTLENS_LOG_TIMEZONE", "UTC");
    for (k, _) in std::env::vars() {
        if k.starts_with("LIGHTMETER_") || (k.starts_with("POSTLENS_") && k != "POSTLENS_LOG_TIMEZONE") {
            c.env_remove(k);
        }
    }
    c
}

pub fn run(args: &[&str]) -> Output {
    bin().args(args).output().expect("run postlens")
}

pub fn ok(args: &[&str]) -> String {
    let o = run(args);
    assert!(o.status.success(), "postlens {args:?} failed: {}", String::from_utf8_lossy(&o.stderr));
    String::from_utf8(o.stdout).expect("utf-8 output")
}

pub fn stats_json(ws: &std::path::Path) -> serde_json::Value {
    serde_json::from_str(&ok(&["stats", "--workspace", ws.to_str().expect("utf-8 path"), "--json"])).expect("stats JSON")
}

/// A TCP port free on loopback right now.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").expect("bind loopback").local_addr().expect("local address").port()
}

/// A fresh temporary directory, removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        let p = std::env::temp_dir().join(format!("postlens-test-{tag}-{}-{:?}", std::process::id(), std::thread::current().id()));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).expect("temp dir");
        TempDir(p)
    }
    pub fn path(&self) -> &std::path::Path {
        &self.0
    }
    pub fn s(&self, sub: &str) -> String {
        self.0.join(sub).to_str().expect("utf-8").to_owned()
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
