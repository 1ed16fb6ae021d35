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
    // Daemons under test run health checks only when a test asks (their
    // DNS queries would otherwise leave loopback).
    c.env("POSTLENS_CHECKS_EVERY", "0");
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

/// A port free on loopback right now for TCP and for UDP (a DNS server
/// takes both), never handed out before in this process: tests run in
/// parallel, and the kernel may give a port back as soon as it is closed.
pub fn free_port() -> u16 {
    static GIVEN: std::sync::Mutex<Vec<u16>> = std::sync::Mutex::new(Vec::new());
    let mut given = GIVEN.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    loop {
        let port = std::net::TcpListener::bind("127.0.0.1:0").expect("bind loopback").local_addr().expect("local address").port();
        if !given.contains(&port) && std::net::UdpSocket::bind(("127.0.0.1", port)).is_ok() {
            given.push(port);
            return port;
        }
    }
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

/// One HTTP/1.1 request on loopback (`headers` end in `\r\n` each); the
/// status, the response head and the body.
pub fn http(addr: std::net::SocketAddr, method: &str, path: &str, headers: &str, body: &str) -> (u16, String, String) {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(std::time::Duration::from_mins(1))).expect("timeout");
    // A blank line inside `headers` would end the head early; the server
    // answers, closes with the rest unread, and the reset breaks the pipe.
    assert!(headers.is_empty() || (headers.ends_with("\r\n") && !headers.contains("\r\n\r\n")), "bad headers {headers:?}");
    // One write: the request goes out whole before the answer can come.
    let req = format!("{method} {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n{headers}Content-Length: {}\r\n\r\n{body}", body.len());
    s.write_all(req.as_bytes()).expect("write");
    let mut all = String::new();
    s.read_to_string(&mut all).expect("read");
    let (head, body) = all.split_once("\r\n\r\n").expect("a response");
    (head.split_whitespace().nth(1).expect("status").parse().expect("status"), head.to_owned(), body.to_owned())
}

/// Signs in through the login form; the `Cookie:` header line of the session.
pub fn sign_in(addr: std::net::SocketAddr, email: &str, password: &str) -> String {
    let cookie = |head: &str, name: &str| -> String {
        head.lines()
            .find_map(|l| l.strip_prefix("Set-Cookie: ").filter(|v| v.starts_with(name)))
            .unwrap_or_else(|| panic!("no {name} cookie in {head}"))
            .split(';')
            .next()
            .expect("a value")
            .to_owned()
    };
    let (_, head, html) = http(addr, "GET", "/login", "", "");
    let pre = cookie(&head, "pl_csrf=");
    let key = r#"name="csrf" value=""#;
    let csrf = html[html.find(key).expect("a CSRF field") + key.len()..].split('"').next().expect("a value").to_owned();
    let enc = |s: &str| s.replace('%', "%25").replace('@', "%40").replace('&', "%26").replace('+', "%2B");
    let form = format!("csrf={csrf}&email={}&password={}", enc(email), enc(password));
    let (code, head, _) =
        http(addr, "POST", "/login", &format!("Cookie: {pre}\r\nContent-Type: application/x-www-form-urlencoded\r\n"), &form);
    assert_eq!(code, 303, "sign-in refused");
    format!("Cookie: {}\r\n", cookie(&head, "pl_session="))
}
