//! A small W3C `WebDriver` client for the browser tests: it drives Debian's
//! `chromium` in headless mode through `chromedriver` (package
//! `chromium-driver`), both started by [`Browser::start`] and stopped when the
//! [`Browser`] drops.
//!
//! Include it with `#[path = "common/webdriver.rs"] mod webdriver;`. Tests
//! usually call [`browser_or_skip`], which applies the house rule for missing
//! tools: `SKIPPED: …` and a pass on a developer machine, a failure under
//! `CI=true`.
//!
//! Bounds: every `WebDriver` call has a deadline ([`CALL_TIMEOUT`]), a reply is
//! read up to [`MAX_REPLY`] bytes, and the chromedriver log is a file in the
//! temporary directory removed on drop. Only loopback is ever contacted, with
//! no proxy. What it must not do: wait without a deadline, or leave a
//! chromedriver or chromium process behind when a test fails.
#![allow(dead_code, reason = "each test binary uses a subset")]

use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The Debian package's browser; chromedriver is told to use exactly this one.
pub const CHROMIUM: &str = "/usr/bin/chromium";
/// The Debian package's driver, looked up on `PATH` first.
const CHROMEDRIVER: &str = "chromedriver";
/// Arguments for a browser with no display, no GPU, no sandbox (tests run as
/// root in containers) and a small `/dev/shm`.
const CHROME_ARGS: [&str; 5] = ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=1280,900"];
/// Deadline for one `WebDriver` call, page loads included.
pub const CALL_TIMEOUT: Duration = Duration::from_mins(1);
/// How long chromedriver may take to answer `/status` with `ready: true`.
const DRIVER_READY_TIMEOUT: Duration = Duration::from_secs(20);
/// A reply larger than this is an error: a 1280x900 screenshot is well
/// under 1 MiB of base64, a page source of a test page far less.
const MAX_REPLY: u64 = 64 * 1024 * 1024;
/// Poll interval for [`Browser::wait_for`] and driver start-up.
const POLL: Duration = Duration::from_millis(50);
/// The W3C key of an element reference in JSON.
const ELEMENT_KEY: &str = "element-6066-11e4-a52e-4f735466cecf";

/// Errors are strings: the `WebDriver` error code and message, plus what was
/// being done.
pub type Result<T> = std::result::Result<T, String>;

/// Why the browser tests cannot run here, if chromium or chromedriver is
/// missing; `None` when both are installed.
pub fn missing() -> Option<String> {
    let mut gone = Vec::new();
    if !Path::new(CHROMIUM).exists() {
        gone.push(format!("{CHROMIUM} (package chromium)"));
    }
    if chromedriver_path().is_none() {
        gone.push(format!("{CHROMEDRIVER} on PATH (package chromium-driver)"));
    }
    if gone.is_empty() {
        return None;
    }
    Some(format!("browser tests need {}: apt-get install chromium chromium-driver", gone.join(" and ")))
}

/// A started browser, or `None` after printing `SKIPPED: …` when chromium or
/// chromedriver is missing and `CI` is not `true`.
///
/// # Panics
/// When they are missing under `CI=true`, and whenever they are installed
/// but fail to start: that is a broken environment, not a skip.
pub fn browser_or_skip() -> Option<Browser> {
    if let Some(reason) = missing() {
        assert!(std::env::var("CI").as_deref() != Ok("true"), "{reason}");
        eprintln!("SKIPPED: {reason}");
        return None;
    }
    match Browser::start() {
        Ok(b) => Some(b),
        Err(e) => panic!("starting headless chromium: {e}"),
    }
}

fn chromedriver_path() -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path).chain([PathBuf::from("/usr/bin")]).map(|d| d.join(CHROMEDRIVER)).find(|p| p.is_file())
}

fn free_port() -> Result<u16> {
    let l = std::net::TcpListener::bind("127.0.0.1:0").map_err(|e| format!("no free port: {e}"))?;
    l.local_addr().map(|a| a.port()).map_err(|e| format!("no free port: {e}"))
}

/// A chromedriver process and one session in the chromium it started.
///
/// Invariant: while a `Browser` exists, `session` is a live session of the
/// chromedriver in `driver`; drop deletes the session (chromium quits) and
/// then kills chromedriver.
pub struct Browser {
    driver: Child,
    base: String,
    session: String,
    agent: ureq::Agent,
    log: PathBuf,
}

impl Browser {
    /// Starts chromedriver on a free loopback port, waits until it is ready
    /// and opens a headless chromium session.
    pub fn start() -> Result<Browser> {
        if let Some(reason) = missing() {
            return Err(reason);
        }
        // The free port can be taken between the probe and chromedriver's
        // bind: try a few.
        let mut last = String::new();
        for _ in 0..3 {
            match Browser::start_once() {
                Ok(b) => return Ok(b),
                Err(e) => last = e,
            }
        }
        Err(last)
    }

    fn start_once() -> Result<Browser> {
        let driver_bin = chromedriver_path().ok_or("chromedriver not found")?;
        let port = free_port()?;
        let log = std::env::temp_dir().join(format!("postlens-chromedriver-{}-{port}.log", std::process::id()));
        let out = std::fs::File::create(&log).map_err(|e| format!("{}: {e}", log.display()))?;
        let err = out.try_clone().map_err(|e| format!("{}: {e}", log.display()))?;
        let driver = Command::new(&driver_bin)
            .arg(format!("--port={port}"))
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .map_err(|e| format!("{}: {e}", driver_bin.display()))?;
        let agent: ureq::Agent =
            ureq::Agent::config_builder().http_status_as_error(false).proxy(None).timeout_global(Some(CALL_TIMEOUT)).build().into();
        // From here on, drop cleans up: the session is filled in below.
        let mut b = Browser { driver, base: format!("http://127.0.0.1:{port}"), session: String::new(), agent, log };
        b.wait_ready()?;
        let caps = json!({
            "capabilities": {
                "alwaysMatch": {
                    "browserName": "chrome",
                    "pageLoadStrategy": "normal",
                    "timeouts": { "implicit": 0, "pageLoad": 30_000, "script": 10_000 },
                    "goog:chromeOptions": { "binary": CHROMIUM, "args": CHROME_ARGS },
                }
            }
        });
        let v = b.call("POST", "/session", Some(&caps)).map_err(|e| format!("creating a chromium session: {e}\n{}", b.log_tail()))?;
        let session = v["sessionId"].as_str().ok_or_else(|| format!("new session reply without sessionId: {v}"))?;
        session.clone_into(&mut b.session);
        Ok(b)
    }

    fn wait_ready(&mut self) -> Result<()> {
        let deadline = Instant::now() + DRIVER_READY_TIMEOUT;
        loop {
            if let Ok(Some(status)) = self.driver.try_wait() {
                return Err(format!("chromedriver exited with {status} before it was ready:\n{}", self.log_tail()));
            }
            if let Ok(v) = self.call("GET", "/status", None)
                && v["ready"] == Value::Bool(true)
            {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(format!("chromedriver not ready after {DRIVER_READY_TIMEOUT:?}:\n{}", self.log_tail()));
            }
            std::thread::sleep(POLL);
        }
    }

    /// The last lines of chromedriver's output, for error messages.
    fn log_tail(&self) -> String {
        let s = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = s.lines().collect();
        lines[lines.len().saturating_sub(20)..].join("\n")
    }

    /// One `WebDriver` command: `path` is relative to the driver's root.
    /// Returns the reply's `value`; a `WebDriver` error becomes
    /// `"METHOD path: error: message"`.
    fn call(&self, method: &str, path: &str, body: Option<&Value>) -> Result<Value> {
        let url = format!("{}{path}", self.base);
        let what = format!("{method} {path}");
        let reply = match method {
            "GET" => self.agent.get(&url).call(),
            "DELETE" => self.agent.delete(&url).call(),
            _ => {
                let body = body.map_or_else(|| "{}".to_owned(), Value::to_string);
                self.agent.post(&url).content_type("application/json; charset=utf-8").send(body.as_bytes())
            }
        };
        let mut reply = reply.map_err(|e| format!("{what}: {e}"))?;
        let status = reply.status();
        let text = reply.body_mut().with_config().limit(MAX_REPLY).read_to_string().map_err(|e| format!("{what}: reading reply: {e}"))?;
        let v: Value = serde_json::from_str(&text).map_err(|e| format!("{what}: HTTP {status}, not JSON ({e}): {text:.300}"))?;
        let value = v.get("value").cloned().unwrap_or(Value::Null);
        if let Some(err) = value.get("error").and_then(Value::as_str) {
            let msg = value.get("message").and_then(Value::as_str).unwrap_or("");
            // Chromium appends a long native stack trace to some messages.
            let msg = msg.split("\n  (Session info").next().unwrap_or(msg);
            let msg = msg.strip_prefix(err).map_or(msg, |m| m.trim_start_matches([':', ' ']));
            return Err(format!("{what}: {err}: {msg}"));
        }
        if !status.is_success() {
            return Err(format!("{what}: HTTP {status}: {text:.300}"));
        }
        Ok(value)
    }

    /// A command on this session.
    fn cmd(&self, method: &str, path: &str, body: Option<&Value>) -> Result<Value> {
        self.call(method, &format!("/session/{}{path}", self.session), body)
    }

    fn string(&self, path: &str) -> Result<String> {
        let v = self.cmd("GET", path, None)?;
        v.as_str().map(str::to_owned).ok_or_else(|| format!("GET {path}: expected a string, got {v}"))
    }

    /// Navigates to `url` and waits for the page load (the `load` event).
    pub fn goto(&self, url: &str) -> Result<()> {
        self.cmd("POST", "/url", Some(&json!({ "url": url }))).map(drop)
    }

    pub fn current_url(&self) -> Result<String> {
        self.string("/url")
    }

    pub fn title(&self) -> Result<String> {
        self.string("/title")
    }

    /// The serialised DOM as it is now (not the bytes the server sent).
    pub fn page_source(&self) -> Result<String> {
        self.string("/source")
    }

    /// The first element matching the CSS selector, or an error naming the
    /// selector and the page.
    pub fn find(&self, css: &str) -> Result<Element<'_>> {
        match self.cmd("POST", "/element", Some(&json!({ "using": "css selector", "value": css }))) {
            Ok(v) => self.element(&v),
            Err(e) => Err(format!("{e} (selector {css:?} on {})", self.current_url().unwrap_or_default())),
        }
    }

    /// Every element matching the CSS selector, in document order.
    pub fn find_all(&self, css: &str) -> Result<Vec<Element<'_>>> {
        let v = self.cmd("POST", "/elements", Some(&json!({ "using": "css selector", "value": css })))?;
        v.as_array().ok_or_else(|| format!("find_all({css:?}): expected an array, got {v}"))?.iter().map(|e| self.element(e)).collect()
    }

    /// The first element matching the CSS selector, if any. Errors other
    /// than "not there" (a bad selector, a dead browser) are still errors.
    pub fn try_find(&self, css: &str) -> Result<Option<Element<'_>>> {
        Ok(self.find_all(css)?.into_iter().next())
    }

    /// Polls until an element matches the CSS selector.
    pub fn wait_for(&self, css: &str, timeout: Duration) -> Result<Element<'_>> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(e) = self.try_find(css)? {
                return Ok(e);
            }
            if Instant::now() > deadline {
                return Err(format!("no element matches {css:?} after {timeout:?} on {}", self.current_url().unwrap_or_default()));
            }
            std::thread::sleep(POLL);
        }
    }

    fn element(&self, v: &Value) -> Result<Element<'_>> {
        let id = v.get(ELEMENT_KEY).and_then(Value::as_str).ok_or_else(|| format!("not an element reference: {v}"))?;
        Ok(Element { browser: self, id: id.to_owned() })
    }

    /// Runs `script` as the body of a function in the page and returns its
    /// result as JSON (`return document.title;`).
    pub fn execute(&self, script: &str) -> Result<Value> {
        self.cmd("POST", "/execute/sync", Some(&json!({ "script": script, "args": [] })))
    }

    /// Resizes the window (outer size, as `WebDriver` defines it). Headless
    /// chromium still reserves room for its toolbars, so the page sees a
    /// shorter viewport: use [`Browser::set_viewport_size`] for layout checks.
    pub fn set_window_size(&self, width: u32, height: u32) -> Result<()> {
        self.cmd("POST", "/window/rect", Some(&json!({ "width": width, "height": height }))).map(drop)
    }

    /// The viewport in CSS pixels: `window.innerWidth`, `window.innerHeight`.
    pub fn viewport_size(&self) -> Result<(u32, u32)> {
        let v = self.execute("return [window.innerWidth, window.innerHeight];")?;
        let dim = |i: usize| v[i].as_u64().and_then(|n| u32::try_from(n).ok());
        dim(0).zip(dim(1)).ok_or_else(|| format!("viewport size: expected two numbers, got {v}"))
    }

    /// Sizes the window so that the page's viewport is `width` x `height`
    /// CSS pixels (a phone: 390 x 844), whatever the browser's own chrome
    /// takes; an error if the browser will not go that small.
    pub fn set_viewport_size(&self, width: u32, height: u32) -> Result<()> {
        self.set_window_size(width, height)?;
        let (w, h) = self.viewport_size()?;
        if (w, h) != (width, height) {
            self.set_window_size(width + width.saturating_sub(w), height + height.saturating_sub(h))?;
        }
        let got = self.viewport_size()?;
        if got != (width, height) {
            return Err(format!("viewport is {got:?} after resizing for {width}x{height}"));
        }
        Ok(())
    }

    /// Saves a PNG of the viewport to `path`, creating its parent directories.
    pub fn screenshot(&self, path: impl AsRef<Path>) -> Result<()> {
        let path = path.as_ref();
        let b64 = self.string("/screenshot")?;
        let png = base64_decode(&b64)?;
        if !png.starts_with(b"\x89PNG\r\n\x1a\n") {
            return Err("screenshot: the reply is not a PNG".to_owned());
        }
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        }
        std::fs::write(path, png).map_err(|e| format!("{}: {e}", path.display()))
    }

    /// The cookies visible to the current page (`HttpOnly` ones included).
    pub fn cookies(&self) -> Result<Vec<Cookie>> {
        let v = self.cmd("GET", "/cookie", None)?;
        let list = v.as_array().ok_or_else(|| format!("GET /cookie: expected an array, got {v}"))?;
        Ok(list
            .iter()
            .map(|c| Cookie {
                name: c["name"].as_str().unwrap_or_default().to_owned(),
                value: c["value"].as_str().unwrap_or_default().to_owned(),
                path: c["path"].as_str().unwrap_or_default().to_owned(),
                http_only: c["httpOnly"].as_bool().unwrap_or(false),
                secure: c["secure"].as_bool().unwrap_or(false),
                same_site: c["sameSite"].as_str().map(str::to_owned),
            })
            .collect())
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        if !self.session.is_empty() {
            // Quits chromium (chromedriver is killed right after anyway); a
            // hung browser must not hold the test for a full CALL_TIMEOUT.
            let url = format!("{}/session/{}", self.base, self.session);
            let _ = self.agent.delete(&url).config().timeout_global(Some(Duration::from_secs(10))).build().call();
        }
        // chromedriver's own shutdown lets it reap the browser; a kill if it
        // has not exited shortly after.
        let _ = self.agent.get(format!("{}/shutdown", self.base)).config().timeout_global(Some(Duration::from_secs(2))).build().call();
        let deadline = Instant::now() + Duration::from_secs(2);
        while matches!(self.driver.try_wait(), Ok(None)) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        let _ = self.driver.kill();
        let _ = self.driver.wait();
        let _ = std::fs::remove_file(&self.log);
    }
}

/// A cookie as `WebDriver` reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cookie {
    pub name: String,
    pub value: String,
    pub path: String,
    pub http_only: bool,
    pub secure: bool,
    /// `Strict`, `Lax` or `None`, when the browser reports it.
    pub same_site: Option<String>,
}

/// A reference to an element of the current page; stale once the page
/// changes.
pub struct Element<'b> {
    browser: &'b Browser,
    id: String,
}

impl Element<'_> {
    fn cmd(&self, method: &str, what: &str, body: Option<&Value>) -> Result<Value> {
        self.browser.cmd(method, &format!("/element/{}{what}", self.id), body)
    }

    /// The rendered text, as a person would read it (hidden text excluded).
    pub fn text(&self) -> Result<String> {
        let v = self.cmd("GET", "/text", None)?;
        v.as_str().map(str::to_owned).ok_or_else(|| format!("element text: expected a string, got {v}"))
    }

    /// The HTML attribute as written in the page; `None` when absent. For
    /// what a person has typed into an input, read [`Element::prop`]`("value")`.
    pub fn attr(&self, name: &str) -> Result<Option<String>> {
        let v = self.cmd("GET", &format!("/attribute/{name}"), None)?;
        Ok(v.as_str().map(str::to_owned))
    }

    /// The DOM property (`value`, `checked`, `href` resolved), as JSON.
    pub fn prop(&self, name: &str) -> Result<Value> {
        self.cmd("GET", &format!("/property/{name}"), None)
    }

    pub fn displayed(&self) -> Result<bool> {
        let v = self.cmd("GET", "/displayed", None)?;
        v.as_bool().ok_or_else(|| format!("element displayed: expected a bool, got {v}"))
    }

    /// Clicks the element's centre, as a person would (an error if something
    /// else covers it). A click that submits a form waits for the new page.
    pub fn click(&self) -> Result<()> {
        self.cmd("POST", "/click", None).map(drop)
    }

    /// Types `text` into the element (appends to what is there).
    pub fn send_keys(&self, text: &str) -> Result<()> {
        self.cmd("POST", "/value", Some(&json!({ "text": text }))).map(drop)
    }

    /// Empties an input or textarea.
    pub fn clear(&self) -> Result<()> {
        self.cmd("POST", "/clear", None).map(drop)
    }
}

/// Standard base64 (RFC 4648 §4, padded or not), as `WebDriver` sends
/// screenshots.
fn base64_decode(s: &str) -> Result<Vec<u8>> {
    let mut out = Vec::with_capacity(s.len() / 4 * 3);
    let (mut acc, mut bits) = (0u32, 0u32);
    for c in s.bytes() {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            b'=' => break,
            b'\r' | b'\n' => continue,
            _ => return Err(format!("base64: unexpected byte {c:#04x}")),
        };
        acc = (acc << 6) | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits).to_le_bytes()[0]);
            acc &= (1 << bits) - 1;
        }
    }
    Ok(out)
}

#[test]
fn base64_decodes_rfc4648_vectors() {
    for (enc, dec) in
        [("", ""), ("Zg==", "f"), ("Zm8=", "fo"), ("Zm9v", "foo"), ("Zm9vYg==", "foob"), ("Zm9vYmE=", "fooba"), ("Zm9vYmFy", "foobar")]
    {
        assert_eq!(base64_decode(enc).as_deref(), Ok(dec.as_bytes()), "{enc}");
    }
    assert_eq!(base64_decode("+/8=").as_deref(), Ok(&[0xfb, 0xff][..]));
    assert!(base64_decode("Zm9v!").is_err());
}
