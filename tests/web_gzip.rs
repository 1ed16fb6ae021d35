//! Static files and the `OpenAPI` document through the real daemon: sent
//! gzip-compressed to a client whose `Accept-Encoding` allows it, plain to
//! one whose does not, and equal to the files of `web/` either way.

mod common;

use common::{TempDir, free_port};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

/// `postlens run` on a free loopback port, killed on drop.
struct Daemon {
    child: Child,
    addr: SocketAddr,
}

impl Daemon {
    fn start(dir: &TempDir) -> Daemon {
        let addr = SocketAddr::from(([127, 0, 0, 1], free_port()));
        std::fs::create_dir(dir.path().join("logs")).expect("a log directory");
        let child = common::bin()
            .args(["run", "--workspace", &dir.s("ws"), "--listen", &addr.to_string(), "--watch-dir", &dir.s("logs")])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start postlens run");
        let mut d = Daemon { child, addr };
        let deadline = Instant::now() + Duration::from_secs(30);
        while TcpStream::connect(addr).is_err() {
            assert!(d.child.try_wait().expect("daemon status").is_none(), "the daemon exited");
            assert!(Instant::now() < deadline, "the daemon is not listening on {addr}");
            std::thread::sleep(Duration::from_millis(20));
        }
        d
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The status line and headers (lower-case names), and the body as bytes.
struct Answer {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Answer {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }
}

/// One request with `headers` (each ending in `\r\n`).
fn get(addr: SocketAddr, method: &str, path: &str, headers: &str) -> Answer {
    let mut s = TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(30))).expect("timeout");
    s.write_all(format!("{method} {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n{headers}\r\n").as_bytes()).expect("write");
    let mut all = Vec::new();
    s.read_to_end(&mut all).expect("read");
    let end = all.windows(4).position(|w| w == b"\r\n\r\n").expect("a response head");
    let head = String::from_utf8(all[..end].to_vec()).expect("an ASCII head");
    let mut lines = head.lines();
    let status = lines.next().and_then(|l| l.split_whitespace().nth(1)).and_then(|s| s.parse().ok()).expect("a status");
    let headers = lines.filter_map(|l| l.split_once(':')).map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_owned())).collect();
    let body = all[end + 4..].to_vec();
    let a = Answer { status, headers, body };
    if method == "GET" {
        let len: usize = a.header("content-length").and_then(|l| l.parse().ok()).expect("a Content-Length");
        assert_eq!(a.body.len(), len, "{path}");
    }
    a
}

fn gunzip(gz: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(gz).read_to_end(&mut out).expect("a gzip stream");
    out
}

fn web(path: &str) -> Vec<u8> {
    std::fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join("web").join(path)).expect("a file of web/")
}

#[test]
fn static_files_and_openapi_go_out_gzipped_to_clients_that_accept_it() {
    let dir = TempDir::new("web-gzip");
    let d = Daemon::start(&dir);
    let files = [
        ("/static/style.css", "static/style.css", "text/css", "public, max-age=3600"),
        ("/static/app.js", "static/app.js", "text/javascript", "public, max-age=3600"),
        ("/static/favicon.svg", "static/favicon.svg", "image/svg+xml", "public, max-age=3600"),
        ("/api/v1/openapi.json", "openapi.json", "application/json", "no-store"),
    ];
    for (url, file, ctype, cache) in files {
        let want = web(file);
        for accept in ["Accept-Encoding: gzip\r\n", "Accept-Encoding: br;q=1.0, gzip;q=0.8, *;q=0.1\r\n", "Accept-Encoding: *\r\n"] {
            let a = get(d.addr, "GET", url, accept);
            assert_eq!(a.status, 200, "{url} {accept:?}");
            assert_eq!(a.header("content-encoding"), Some("gzip"), "{url} {accept:?}");
            assert!(a.body.len() < want.len(), "{url}: {} compressed bytes for {}", a.body.len(), want.len());
            assert_eq!(gunzip(&a.body), want, "{url} {accept:?}");
            assert_eq!(a.header("vary"), Some("Accept-Encoding"), "{url}");
            assert!(a.header("content-type").is_some_and(|c| c.starts_with(ctype)), "{url}");
            assert_eq!(a.header("cache-control"), Some(cache), "{url}");
        }
        for accept in ["", "Accept-Encoding: identity\r\n", "Accept-Encoding: gzip;q=0, deflate\r\n", "Accept-Encoding: br\r\n"] {
            let a = get(d.addr, "GET", url, accept);
            assert_eq!(a.status, 200, "{url} {accept:?}");
            assert_eq!(a.header("content-encoding"), None, "{url} {accept:?}");
            assert_eq!(a.body, want, "{url} {accept:?}");
            assert_eq!(a.header("vary"), Some("Accept-Encoding"), "{url}");
            assert!(a.header("content-type").is_some_and(|c| c.starts_with(ctype)), "{url}");
            assert_eq!(a.header("cache-control"), Some(cache), "{url}");
        }
    }
    // HEAD of the document: the GET's headers, no body.
    let head = get(d.addr, "HEAD", "/api/v1/openapi.json", "Accept-Encoding: gzip\r\n");
    assert_eq!((head.status, head.header("content-encoding")), (200, Some("gzip")));
    assert!(head.body.is_empty());
    assert_eq!(get(d.addr, "GET", "/static/nope.css", "Accept-Encoding: gzip\r\n").status, 404);
}
