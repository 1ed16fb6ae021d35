//! Browser tests: pages driven in a real headless Chromium over `WebDriver`
//! (`tests/common/webdriver.rs`), screenshots saved under
//! `target/screenshots/` for a person to look at.
//!
//! For now this file holds the harness self-test: a tiny HTML form served from
//! a thread of the test, filled in and submitted in Chromium, with the result
//! checked in the browser and at the server, at desktop and phone sizes.
//!
//! Adding a postlens UI test:
//! 1. Start the real daemon on a free loopback port with the shared helpers:
//!    `common::bin()` with `run --workspace <TempDir> --listen 127.0.0.1:<port>`
//!    (`tests/daemon.rs` has a `Daemon` that does this, kills the child on
//!    drop and keeps its stderr; move it into `tests/common` to share it), and
//!    feed it lines with `--watch-dir` or `import` first so pages have data.
//!    Wait until `http://127.0.0.1:<port>/` answers before driving it.
//! 2. `let Some(b) = webdriver::browser_or_skip() else { return };` — never
//!    call `Browser::start` directly, so the skip rule stays the same
//!    everywhere (`SKIPPED: …` locally, a failure under `CI=true`).
//! 3. Drive it as a person would: `b.goto(..)`, `b.find("#user")?.send_keys(..)`,
//!    `.click()`, `b.wait_for(".flash", Duration::from_secs(5))?.text()`;
//!    assert on visible text and on `b.cookies()` (`HttpOnly`, `SameSite`).
//! 4. Save `b.screenshot(screenshots().join("<page>-desktop.png"))`, then
//!    `b.set_viewport_size(390, 844)` for the phone layout, check nothing
//!    overflows sideways (`no_sideways_scroll`) and save `<page>-phone.png`.
//!
//! One `Browser` per test: each is its own chromedriver and Chromium
//! (about a second to start), so tests stay independent and can run in
//! parallel.
#![allow(clippy::unwrap_used, reason = "test code: a failed unwrap is a failed test")]

#[path = "common/webdriver.rs"]
mod webdriver;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};
use webdriver::Browser;

/// Where browser tests leave their screenshots.
fn screenshots() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/screenshots")
}

/// Width and height from a PNG's `IHDR` chunk.
fn png_size(path: &std::path::Path) -> (u32, u32) {
    let png = std::fs::read(path).unwrap();
    assert!(png.len() > 24 && png.starts_with(b"\x89PNG\r\n\x1a\n") && &png[12..16] == b"IHDR", "{} is not a PNG", path.display());
    let be = |i: usize| u32::from_be_bytes(png[i..i + 4].try_into().unwrap());
    (be(16), be(20))
}

/// Asserts the page is exactly `width` CSS pixels wide and nothing makes it
/// scroll sideways (the usual phone-layout bug).
fn no_sideways_scroll(b: &Browser, width: u32) {
    let v = b.execute("return [window.innerWidth, document.documentElement.scrollWidth];").unwrap();
    assert_eq!(v[0].as_u64(), Some(u64::from(width)), "viewport width: {v}");
    assert!(v[1].as_u64().unwrap() <= u64::from(width), "page wider than the viewport: {v}");
}

/// A one-page HTTP/1.1 server on loopback: `GET /` is a form, `POST /submit`
/// records the `name` field and answers a result page with a cookie.
struct FormServer {
    addr: SocketAddr,
    received: Arc<Mutex<Vec<String>>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

/// Requests larger than this are refused (the form posts a few bytes).
const MAX_REQUEST: usize = 64 * 1024;

const FORM_PAGE: &str = r#"<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Self-test form</title>
<style>
  body { font: 16px/1.4 system-ui, sans-serif; margin: 0; padding: 1.5rem; background: #f4f6f8; color: #1b1f24; }
  main { max-width: 32rem; margin: auto; background: #fff; padding: 1.5rem; border-radius: 8px; box-shadow: 0 1px 3px #0002; }
  label { display: block; font-weight: 600; margin-bottom: .25rem; }
  input { box-sizing: border-box; width: 100%; padding: .5rem; font: inherit; border: 1px solid #8a949e; border-radius: 4px; }
  button { margin-top: 1rem; padding: .5rem 1.25rem; font: inherit; color: #fff; background: #1f6feb; border: 0; border-radius: 4px; }
  li { color: #57606a; }
</style></head>
<body><main>
<h1>WebDriver self-test</h1>
<form method="post" action="/submit">
  <label for="name">Name</label>
  <input id="name" name="name" value="prefilled">
  <button id="go" type="submit">Send</button>
</form>
<ul><li>one</li><li>two</li><li>three</li></ul>
</main></body></html>
"#;

impl FormServer {
    fn start() -> FormServer {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let received = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let (r, s) = (received.clone(), stop.clone());
        let thread = std::thread::spawn(move || {
            for conn in listener.incoming() {
                if s.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(conn) = conn else { continue };
                let r = r.clone();
                // One thread per connection: Chromium opens speculative
                // connections that may never send a request.
                std::thread::spawn(move || {
                    let _ = serve(conn, &r);
                });
            }
        });
        FormServer { addr, received, stop, thread: Some(thread) }
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    fn received(&self) -> Vec<String> {
        self.received.lock().unwrap().clone()
    }
}

impl Drop for FormServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wakes the accept loop so it sees the flag.
        let _ = TcpStream::connect(self.addr);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Serves requests on one connection until the client closes it or stops
/// sending for a few seconds.
fn serve(conn: TcpStream, received: &Mutex<Vec<String>>) -> std::io::Result<()> {
    conn.set_read_timeout(Some(Duration::from_secs(5)))?;
    let mut out = conn.try_clone()?;
    let mut rd = BufReader::new(conn.take(MAX_REQUEST as u64));
    loop {
        let mut request_line = String::new();
        if rd.read_line(&mut request_line)? == 0 {
            return Ok(());
        }
        let mut content_length = 0usize;
        loop {
            let mut h = String::new();
            rd.read_line(&mut h)?;
            let h = h.trim_end();
            if h.is_empty() {
                break;
            }
            if let Some((k, v)) = h.split_once(':')
                && k.eq_ignore_ascii_case("content-length")
            {
                content_length = v.trim().parse().unwrap_or(0).min(MAX_REQUEST);
            }
        }
        let mut body = vec![0; content_length];
        rd.read_exact(&mut body)?;
        let mut parts = request_line.split_whitespace();
        let (method, path) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
        let (status, headers, page) = match (method, path) {
            ("GET", "/") => ("200 OK", "", FORM_PAGE.to_owned()),
            ("POST", "/submit") => {
                let name = form_field(&body, "name").unwrap_or_default();
                received.lock().unwrap().push(name.clone());
                let page = format!(
                    "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
                     <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"><title>Self-test result</title></head>\
                     <body style=\"font:16px system-ui,sans-serif;padding:1.5rem\"><h1>Received</h1><p id=\"result\">Hello, {}!</p>\
                     <a id=\"back\" href=\"/\">Again</a></body></html>",
                    html_escape(&name)
                );
                ("200 OK", "Set-Cookie: selftest=1; Path=/; HttpOnly; SameSite=Strict\r\n", page)
            }
            _ => ("404 Not Found", "", "not found".to_owned()),
        };
        write!(
            out,
            "HTTP/1.1 {status}\r\nContent-Type: text/html; charset=utf-8\r\nContent-Length: {}\r\n{headers}\r\n{page}",
            page.len()
        )?;
        out.flush()?;
    }
}

/// The decoded value of `key` in an `application/x-www-form-urlencoded` body.
fn form_field(body: &[u8], key: &str) -> Option<String> {
    body.split(|&c| c == b'&').find_map(|pair| {
        let mut kv = pair.splitn(2, |&c| c == b'=');
        (kv.next()? == key.as_bytes()).then(|| percent_decode(kv.next().unwrap_or_default()))
    })
}

fn percent_decode(s: &[u8]) -> String {
    let hex = |c: u8| char::from(c).to_digit(16);
    let mut out = Vec::with_capacity(s.len());
    let mut i = 0;
    while i < s.len() {
        match s[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < s.len() => match (hex(s[i + 1]), hex(s[i + 2])) {
                (Some(h), Some(l)) => {
                    out.push(u8::try_from(h * 16 + l).unwrap());
                    i += 2;
                }
                _ => out.push(b'%'),
            },
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn html_escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

#[test]
fn webdriver_fills_and_submits_a_form_at_desktop_and_phone_sizes() {
    let t0 = Instant::now();
    let server = FormServer::start();
    let Some(b) = webdriver::browser_or_skip() else { return };
    let started = t0.elapsed();
    let shots = screenshots();

    b.goto(&server.url("/")).unwrap();
    assert_eq!(b.title().unwrap(), "Self-test form");
    assert_eq!(b.current_url().unwrap(), server.url("/"));
    assert_eq!(b.find_all("li").unwrap().iter().map(|e| e.text().unwrap()).collect::<Vec<_>>(), ["one", "two", "three"]);
    assert!(b.try_find("#absent").unwrap().is_none());
    let err = b.find("#absent").err().unwrap();
    assert!(err.contains("no such element") && err.contains("#absent"), "{err}");
    let desktop = shots.join("browser-selftest-desktop.png");
    b.screenshot(&desktop).unwrap();
    assert_eq!(png_size(&desktop), b.viewport_size().unwrap());
    assert_eq!(png_size(&desktop).0, 1280);

    let input = b.find("#name").unwrap();
    assert_eq!(input.attr("value").unwrap().as_deref(), Some("prefilled"));
    assert_eq!(input.attr("data-absent").unwrap(), None);
    input.clear().unwrap();
    assert_eq!(input.prop("value").unwrap(), "");
    let typed = "Zoë & <Bob> 100%+1";
    input.send_keys(typed).unwrap();
    assert_eq!(input.prop("value").unwrap(), typed);
    assert_eq!(input.attr("value").unwrap().as_deref(), Some("prefilled"), "the attribute keeps the page's default");
    b.find("#go").unwrap().click().unwrap();

    let result = b.wait_for("#result", Duration::from_secs(10)).unwrap();
    assert_eq!(result.text().unwrap(), format!("Hello, {typed}!"));
    assert_eq!(b.title().unwrap(), "Self-test result");
    assert_eq!(b.current_url().unwrap(), server.url("/submit"));
    assert!(b.page_source().unwrap().contains("Hello, Zoë &amp; &lt;Bob&gt;"));
    assert_eq!(server.received(), [typed]);
    let cookie = b.cookies().unwrap().into_iter().find(|c| c.name == "selftest").expect("the result page sets a cookie");
    assert_eq!((cookie.value.as_str(), cookie.http_only, cookie.same_site.as_deref()), ("1", true, Some("Strict")));
    b.screenshot(shots.join("browser-selftest-result.png")).unwrap();

    b.set_viewport_size(390, 844).unwrap();
    b.find("#back").unwrap().click().unwrap();
    b.wait_for("#name", Duration::from_secs(10)).unwrap();
    no_sideways_scroll(&b, 390);
    assert!(b.find("#go").unwrap().displayed().unwrap());
    let phone = shots.join("browser-selftest-phone.png");
    b.screenshot(&phone).unwrap();
    assert_eq!(png_size(&phone), (390, 844));

    drop(b);
    eprintln!("browser self-test: chromium ready in {started:.1?}, whole test {:.1?}", t0.elapsed());
}

#[test]
fn percent_decoding_of_form_bodies() {
    assert_eq!(form_field(b"a=1&name=Zo%C3%AB+%26+%3CBob%3E&b=2", "name").as_deref(), Some("Zoë & <Bob>"));
    assert_eq!(form_field(b"name=100%25%2B1%", "name").as_deref(), Some("100%+1%"));
    assert_eq!(form_field(b"names=x", "name"), None);
}
