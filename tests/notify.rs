//! The notifier's real client code over real HTTP(S) on loopback: a small
//! recording server (plain, or TLS with a CA made here), Slack's bot and
//! webhook shapes, the generic webhook, retries, the rate limit, the
//! bounded queue, a local CA, and shutdown. Waits poll with deadlines.

#![allow(clippy::unwrap_used)]

use postlens::clock::Timestamp;
use postlens::notify::{ChannelConfig, Notification, Notifier, NotifyConfig, SendError, Severity, Timing};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// One request as the server saw it.
#[derive(Clone, Debug)]
struct Request {
    path: String,
    /// Lower-case names.
    headers: Vec<(String, String)>,
    body: String,
    at: Instant,
}

impl Request {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }
    fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap()
    }
}

type Respond = dyn Fn(usize, &Request) -> (u16, String) + Send + Sync;

/// A loopback HTTP server that records every request and answers with
/// `respond(index, request)`; with `tls`, it speaks HTTPS.
struct Server {
    port: u16,
    seen: Arc<Mutex<Vec<Request>>>,
}

impl Server {
    fn start(tls: Option<Arc<rustls::ServerConfig>>, respond: impl Fn(usize, &Request) -> (u16, String) + Send + Sync + 'static) -> Server {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let (s, respond): (_, Arc<Respond>) = (Arc::clone(&seen), Arc::new(respond));
        std::thread::spawn(move || {
            for c in l.incoming() {
                let Ok(c) = c else { continue };
                let (s, respond, tls) = (Arc::clone(&s), Arc::clone(&respond), tls.clone());
                // One thread per connection, so a held answer does not stop others.
                std::thread::spawn(move || {
                    let _ = c.set_read_timeout(Some(Duration::from_secs(20)));
                    match tls {
                        None => serve(c, &s, &*respond),
                        Some(cfg) => {
                            let Ok(conn) = rustls::ServerConnection::new(cfg) else { return };
                            serve(rustls::StreamOwned::new(conn, c), &s, &*respond);
                        }
                    }
                });
            }
        });
        Server { port, seen }
    }

    fn url(&self, scheme: &str, path: &str) -> String {
        format!("{scheme}://127.0.0.1:{}{path}", self.port)
    }

    fn requests(&self) -> Vec<Request> {
        self.seen.lock().unwrap().clone()
    }

    /// Waits until `n` requests were seen (at most 10 s).
    fn wait_for(&self, n: usize) -> Vec<Request> {
        poll(&format!("{n} requests"), || (self.requests().len() >= n).then(|| self.requests()))
    }
}

/// Reads one request, records it, answers, closes.
fn serve<S: Read + Write>(stream: S, seen: &Mutex<Vec<Request>>, respond: &Respond) {
    let mut r = BufReader::new(stream);
    let mut line = String::new();
    if r.read_line(&mut line).unwrap_or(0) == 0 {
        return;
    }
    let path = line.split_whitespace().nth(1).unwrap_or("").to_owned();
    let mut headers = Vec::new();
    loop {
        let mut h = String::new();
        if r.read_line(&mut h).unwrap_or(0) == 0 {
            return;
        }
        let h = h.trim_end();
        if h.is_empty() {
            break;
        }
        if let Some((k, v)) = h.split_once(':') {
            headers.push((k.trim().to_ascii_lowercase(), v.trim().to_owned()));
        }
    }
    let len: usize = headers.iter().find(|(k, _)| k == "content-length").and_then(|(_, v)| v.parse().ok()).unwrap_or(0);
    let mut body = vec![0; len];
    if r.read_exact(&mut body).is_err() {
        return;
    }
    let req = Request { path, headers, body: String::from_utf8_lossy(&body).into_owned(), at: Instant::now() };
    let i = {
        let mut s = seen.lock().unwrap();
        s.push(req.clone());
        s.len() - 1
    };
    let (status, text) = respond(i, &req);
    let mut w = r.into_inner();
    let _ =
        write!(w, "HTTP/1.1 {status} X\r\nContent-Length: {}\r\nContent-Type: text/plain\r\nConnection: close\r\n\r\n{text}", text.len());
    let _ = w.flush();
}

/// Polls `f` until it answers `Some`, for at most 10 s.
fn poll<T>(what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let end = Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < end, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn channel(json: serde_json::Value) -> ChannelConfig {
    let c: ChannelConfig = serde_json::from_value(json).unwrap();
    c.validate().unwrap();
    c
}

fn config(channels: Vec<ChannelConfig>) -> NotifyConfig {
    let c = NotifyConfig { channels };
    c.validate().unwrap();
    c
}

/// Fast timings and a frozen clock the test moves.
fn timing(clock: &Arc<AtomicI64>) -> Timing {
    let c = Arc::clone(clock);
    Timing {
        retry_delays: vec![Duration::from_millis(30), Duration::from_millis(60), Duration::from_millis(90)],
        rate_max: 1_000,
        tick: Duration::from_millis(10),
        timeout: Duration::from_secs(5),
        shutdown_grace: Duration::from_millis(300),
        clock: Arc::new(move || Timestamp(c.load(Ordering::SeqCst))),
        ..Timing::default()
    }
}

const NOW: i64 = 1_795_000_000;

fn clock() -> Arc<AtomicI64> {
    Arc::new(AtomicI64::new(NOW))
}

fn note(severity: Severity, title: &str) -> Notification {
    Notification {
        kind: "high_bounce_rate".into(),
        severity,
        title: title.into(),
        text: "12 % of outbound mail bounced in the last 6 hours.".into(),
        link: Some("https://postlens.example/insights/3".into()),
        time: Timestamp(NOW),
    }
}

fn ok(_: usize, _: &Request) -> (u16, String) {
    (200, "ok".into())
}

#[test]
fn slack_bot_posts_with_the_bearer_token_into_the_channel() {
    let srv = Server::start(None, |_, _| (200, r#"{"ok":true,"channel":"C0TEST","ts":"1.2"}"#.into()));
    let ch = channel(serde_json::json!({"name": "slack", "type": "slack_bot", "token": "xoxb-test-token-123",
        "channel": "C0TEST", "api_url": srv.url("http", "/api/")}));
    let clock = clock();
    let n = Notifier::start(&config(vec![ch]), timing(&clock)).unwrap();
    assert!(n.submit(note(Severity::Critical, "Bounce rate 12 % <outbound>")));
    let r = &srv.wait_for(1)[0];
    assert_eq!(r.path, "/api/chat.postMessage");
    assert_eq!(r.header("authorization"), Some("Bearer xoxb-test-token-123"));
    assert_eq!(r.header("content-type"), Some("application/json; charset=utf-8"));
    let body = r.json();
    assert_eq!(body["channel"], "C0TEST");
    let text = body["text"].as_str().unwrap();
    assert!(text.contains("*Bounce rate 12 % &lt;outbound&gt;* (critical)"), "{text}");
    assert!(text.contains("<https://postlens.example/insights/3|Open in postlens>"), "{text}");
    let st = poll("sent", || n.status().into_iter().find(|s| s.sent == 1));
    assert_eq!(st.last_success, Some(Timestamp(NOW)));
    assert_eq!((st.failed, st.dropped, st.last_error), (0, 0, None));
}

#[test]
fn slack_ok_false_is_a_failure_with_slacks_reason() {
    let srv = Server::start(None, |_, _| (200, r#"{"ok":false,"error":"channel_not_found"}"#.into()));
    let ch = channel(serde_json::json!({"name": "slack", "type": "slack_bot", "token": "xoxb-test-token-123",
        "channel": "C0NONE", "api_url": srv.url("http", "/api")}));
    let clock = clock();
    let n = Notifier::start(&config(vec![ch]), timing(&clock)).unwrap();
    let e = n.send_test("slack", Severity::Info).unwrap_err();
    assert_eq!(e, SendError::Slack("channel_not_found".into()));
    assert_eq!(srv.requests().len(), 1);
    assert!(srv.requests()[0].json()["text"].as_str().unwrap().contains("Test notification from postlens"));
    let st = &n.status()[0];
    assert_eq!((st.sent, st.failed), (0, 1));
    let last = st.last_error.as_ref().unwrap();
    assert_eq!(last.text, "Slack refused the message: channel_not_found");
    assert_eq!(last.time, Timestamp(NOW));
    // Permanent: the notifier does not retry it either.
    assert!(n.submit(note(Severity::Warning, "x")));
    poll("given up", || (n.status()[0].failed == 2).then_some(()));
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(srv.requests().len(), 2, "no retry of a permanent refusal");
}

#[test]
fn slack_webhook_and_generic_webhook_with_headers() {
    let srv = Server::start(None, ok);
    let slack = channel(serde_json::json!({"name": "hook", "type": "slack_webhook", "url": srv.url("http", "/services/T0/B0/SeCrEt")}));
    let generic = channel(serde_json::json!({"name": "ntfy", "type": "webhook", "url": srv.url("http", "/alerts?x=1"),
        "headers": {"Authorization": "Bearer tk_abcdef", "X-Template": "yes", "X-Title": "{{.title}}"}}));
    let clock = clock();
    let n = Notifier::start(&config(vec![slack, generic]), timing(&clock)).unwrap();
    assert!(n.submit(note(Severity::Warning, "Deferred queue growing")));
    let rs = srv.wait_for(2);
    let by_path = |p: &str| rs.iter().find(|r| r.path == p).unwrap_or_else(|| panic!("no request to {p}: {rs:?}"));
    let s = by_path("/services/T0/B0/SeCrEt").json();
    assert!(s.get("channel").is_none());
    assert!(s["text"].as_str().unwrap().starts_with(":warning: *Deferred queue growing* (warning)\n"), "{s}");
    let g = by_path("/alerts?x=1");
    assert_eq!(g.header("authorization"), Some("Bearer tk_abcdef"));
    assert_eq!(g.header("x-template"), Some("yes"));
    assert_eq!(g.header("x-title"), Some("{{.title}}"));
    assert_eq!(
        g.json(),
        serde_json::json!({"kind": "high_bounce_rate", "severity": "warning", "title": "Deferred queue growing",
            "text": "12 % of outbound mail bounced in the last 6 hours.", "link": "https://postlens.example/insights/3",
            "time": "2026-11-18T11:06:40Z", "message": "12 % of outbound mail bounced in the last 6 hours.", "priority": 5})
    );
    poll("both sent", || n.status().iter().all(|s| s.sent == 1).then_some(()));
}

#[test]
fn severity_filter_and_staleness() {
    let srv = Server::start(None, ok);
    let crit = channel(serde_json::json!({"name": "crit", "type": "webhook", "url": srv.url("http", "/c"), "min_severity": "critical"}));
    let off = channel(
        serde_json::json!({"name": "off", "type": "webhook", "url": srv.url("http", "/o"), "enabled": false, "min_severity": "info"}),
    );
    let clock = clock();
    let n = Notifier::start(&config(vec![crit, off]), timing(&clock)).unwrap();
    assert!(!n.submit(note(Severity::Warning, "below the minimum")), "no channel wants it");
    let old = Notification { time: Timestamp(NOW - 7 * 3600), ..note(Severity::Critical, "from a history import") };
    assert!(!n.submit(old));
    assert!(n.submit(note(Severity::Critical, "wanted")));
    let rs = srv.wait_for(1);
    assert_eq!(rs[0].path, "/c");
    assert_eq!(rs[0].json()["title"], "wanted");
    let st = poll("sent", || n.status().into_iter().find(|s| s.name == "crit" && s.sent == 1));
    assert_eq!(st.stale, 1);
    assert_eq!(n.status()[1].sent + n.status()[1].stale + n.status()[1].dropped, 0, "the disabled channel counts nothing");
    n.shutdown();
    assert_eq!(srv.requests().len(), 1);
}

#[test]
fn retries_back_off_until_the_server_recovers() {
    // Fails twice, then accepts.
    let srv = Server::start(None, |i, _| if i < 2 { (503, "busy".into()) } else { (200, "ok".into()) });
    let ch = channel(serde_json::json!({"name": "hook", "type": "webhook", "url": srv.url("http", "/h")}));
    let clock = clock();
    let n = Notifier::start(&config(vec![ch]), timing(&clock)).unwrap();
    assert!(n.submit(note(Severity::Critical, "retry me")));
    let rs = srv.wait_for(3);
    let st = poll("sent after retries", || n.status().into_iter().find(|s| s.sent == 1));
    assert_eq!((st.failed, st.retrying), (0, 0));
    assert_eq!(st.last_error.unwrap().text, "HTTP 503: busy", "the failures stay visible");
    // The schedule's delays (30 ms, then 60 ms) separate the attempts.
    assert!(rs[1].at - rs[0].at >= Duration::from_millis(30), "{:?}", rs[1].at - rs[0].at);
    assert!(rs[2].at - rs[1].at >= Duration::from_millis(60), "{:?}", rs[2].at - rs[1].at);
    assert!(rs.iter().all(|r| r.json()["title"] == "retry me"));
}

#[test]
fn retries_run_out_and_the_failure_is_counted() {
    let srv = Server::start(None, |_, _| (500, "down".into()));
    let ch = channel(serde_json::json!({"name": "hook", "type": "webhook", "url": srv.url("http", "/h")}));
    let clock = clock();
    let n = Notifier::start(&config(vec![ch]), timing(&clock)).unwrap();
    assert!(n.submit(note(Severity::Critical, "never")));
    let st = poll("given up", || n.status().into_iter().find(|s| s.failed == 1));
    assert_eq!(srv.requests().len(), 4, "one attempt and three retries");
    assert_eq!((st.sent, st.retrying), (0, 0));
}

#[test]
fn the_rate_limit_folds_the_rest_into_one_message() {
    let srv = Server::start(None, ok);
    let ch = channel(serde_json::json!({"name": "hook", "type": "webhook", "url": srv.url("http", "/h")}));
    let clock = clock();
    let t = Timing { rate_max: 3, rate_window_secs: 3600, ..timing(&clock) };
    let n = Notifier::start(&config(vec![ch]), t).unwrap();
    for i in 0..7 {
        let sev = if i == 5 { Severity::Critical } else { Severity::Warning };
        assert!(n.submit(note(sev, &format!("insight {i}"))));
    }
    poll("4 suppressed", || (n.status()[0].suppressed == 4).then_some(()));
    let rs = srv.requests();
    assert_eq!(
        rs.iter().map(|r| r.json()["title"].as_str().unwrap().to_owned()).collect::<Vec<_>>(),
        ["insight 0", "insight 1", "insight 2"]
    );
    // The clock is frozen: the window cannot end, so nothing more is sent.
    std::thread::sleep(Duration::from_millis(100));
    assert_eq!(srv.requests().len(), 3);
    // An hour later, the summary.
    clock.fetch_add(3600, Ordering::SeqCst);
    let rs = srv.wait_for(4);
    let s = rs[3].json();
    assert_eq!(s["title"], "4 more notifications suppressed");
    assert_eq!(s["kind"], "suppressed");
    assert_eq!(s["severity"], "critical", "the worst of those held back");
    assert!(s["text"].as_str().unwrap().contains("the first was \"insight 3\""), "{s}");
    poll("4 sent", || (n.status()[0].sent == 4).then_some(()));
    // The summary opened the new window: two more fit, then suppression again.
    for i in 7..10 {
        n.submit(note(Severity::Warning, &format!("insight {i}")));
    }
    poll("1 more suppressed", || (n.status()[0].suppressed == 5).then_some(()));
    assert_eq!(srv.wait_for(6).len(), 6);
}

#[test]
fn a_full_queue_drops_and_counts_without_blocking() {
    // The first request is held until the test lets it go: the thread is
    // busy, so submissions pile up in the queue.
    let (release_tx, release_rx) = std::sync::mpsc::channel::<()>();
    let release_rx = Mutex::new(release_rx);
    let srv = Server::start(None, move |i, _| {
        if i == 0 {
            let _ = release_rx.lock().unwrap().recv_timeout(Duration::from_secs(10));
        }
        (200, "ok".into())
    });
    let ch = channel(serde_json::json!({"name": "hook", "type": "webhook", "url": srv.url("http", "/h")}));
    let clock = clock();
    let n = Notifier::start(&config(vec![ch]), Timing { shutdown_grace: Duration::from_millis(200), ..timing(&clock) }).unwrap();
    assert!(n.submit(note(Severity::Critical, "first")));
    srv.wait_for(1);
    let t0 = Instant::now();
    let accepted = (0..postlens::limits::NOTIFY_QUEUE + 5).filter(|i| n.submit(note(Severity::Critical, &format!("n{i}")))).count();
    assert!(t0.elapsed() < Duration::from_secs(1), "submit never waits: {:?}", t0.elapsed());
    assert_eq!(accepted, postlens::limits::NOTIFY_QUEUE);
    assert_eq!(n.status()[0].dropped, 5);
    release_tx.send(()).unwrap();
    poll("queue drained", || (n.status()[0].sent == 1 + postlens::limits::NOTIFY_QUEUE as u64).then_some(()));
}

#[test]
fn shutdown_is_bounded_and_tries_pending_retries_once() {
    // A server that accepts and never answers holds the thread in a send.
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    let held = Arc::new(Mutex::new(Vec::<TcpStream>::new()));
    let h = Arc::clone(&held);
    std::thread::spawn(move || {
        for c in l.incoming().flatten() {
            h.lock().unwrap().push(c);
        }
    });
    let ch = channel(serde_json::json!({"name": "hook", "type": "webhook", "url": format!("http://127.0.0.1:{port}/h")}));
    let clock = clock();
    let t = Timing { timeout: Duration::from_secs(30), shutdown_grace: Duration::from_millis(300), ..timing(&clock) };
    let n = Notifier::start(&config(vec![ch]), t).unwrap();
    assert!(n.submit(note(Severity::Critical, "stuck")));
    poll("first connection", || (!held.lock().unwrap().is_empty()).then_some(()));
    let t0 = Instant::now();
    n.shutdown();
    let took = t0.elapsed();
    assert!(took < Duration::from_millis(1_500), "shutdown took {took:?} (grace 300 ms + 500 ms)");
    assert!(!n.submit(note(Severity::Critical, "after")), "no longer accepting");
    assert_eq!(n.status()[0].dropped, 1);

    // A notification waiting for its retry gets one last try, within the grace.
    let srv = Server::start(None, |_, _| (503, "busy".into()));
    let ch = channel(serde_json::json!({"name": "hook", "type": "webhook", "url": srv.url("http", "/h")}));
    let t = Timing { retry_delays: vec![Duration::from_mins(1)], shutdown_grace: Duration::from_millis(300), ..timing(&clock) };
    let n = Notifier::start(&config(vec![ch]), t).unwrap();
    assert!(n.submit(note(Severity::Critical, "retry at exit")));
    poll("retry scheduled", || (n.status()[0].retrying == 1).then_some(()));
    n.shutdown();
    assert_eq!(srv.requests().len(), 2, "tried again at shutdown, not 60 s later");
    let st = &n.status()[0];
    assert_eq!((st.failed, st.retrying, st.sent), (1, 0, 0));
}

#[test]
fn reconfigure_keeps_status_by_name() {
    let srv = Server::start(None, ok);
    let a = channel(serde_json::json!({"name": "a", "type": "webhook", "url": srv.url("http", "/a")}));
    let b = channel(serde_json::json!({"name": "b", "type": "webhook", "url": srv.url("http", "/b")}));
    let clock = clock();
    let n = Notifier::start(&config(vec![a.clone()]), timing(&clock)).unwrap();
    n.send_test("a", Severity::Info).unwrap();
    n.reconfigure(&config(vec![b, a]));
    let st = n.status();
    assert_eq!(st.iter().map(|s| (s.name.as_str(), s.sent)).collect::<Vec<_>>(), [("b", 0), ("a", 1)]);
    assert!(matches!(n.send_test("gone", Severity::Info), Err(SendError::Config(e)) if e.contains("no channel named 'gone'")));
}

#[test]
fn secrets_stay_out_of_errors_and_status() {
    // Nothing listens on this port once the listener is dropped.
    let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let ch = channel(serde_json::json!({"name": "hook", "type": "webhook",
        "url": format!("http://127.0.0.1:{port}/message?token=GotifyAppToken42"),
        "headers": {"X-Gotify-Key": "GotifyAppToken42"}}));
    let clock = clock();
    let n = Notifier::start(&config(vec![ch.clone()]), timing(&clock)).unwrap();
    let e = n.send_test("hook", Severity::Info).unwrap_err();
    let shown = format!("{e} {e:?} {:?} {}", n.status(), serde_json::to_string(&n.status()).unwrap());
    assert!(shown.contains(&format!("127.0.0.1:{port}")), "{shown}");
    assert!(!shown.contains("GotifyAppToken42"), "{shown}");
    assert!(!format!("{ch:?}").contains("GotifyAppToken42"));
}

/// A CA and a server certificate for 127.0.0.1 and localhost signed by it.
fn local_ca() -> (String, Arc<rustls::ServerConfig>) {
    use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
    let ca_key = KeyPair::generate().unwrap();
    let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.distinguished_name.push(DnType::CommonName, "postlens test CA");
    let ca_cert = ca.self_signed(&ca_key).unwrap();
    let issuer = Issuer::new(ca, ca_key);
    let key = KeyPair::generate().unwrap();
    let cert = CertificateParams::new(vec!["127.0.0.1".to_owned(), "localhost".to_owned()]).unwrap().signed_by(&key, &issuer).unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let der = rustls::pki_types::PrivateKeyDer::try_from(key.serialize_der()).unwrap();
    let server = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![cert.der().clone(), ca_cert.der().clone()], der)
        .unwrap();
    (ca_cert.pem(), Arc::new(server))
}

#[test]
fn https_with_a_local_ca() {
    let (ca_pem, tls) = local_ca();
    let srv = Server::start(Some(tls), ok);
    let dir = std::env::temp_dir().join(format!("postlens-notify-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let ca_file = dir.join("ca.pem");
    std::fs::write(&ca_file, ca_pem).unwrap();
    let trusted = channel(serde_json::json!({"name": "trusted", "type": "webhook", "url": srv.url("https", "/t"), "ca_file": ca_file}));
    let untrusted = channel(serde_json::json!({"name": "untrusted", "type": "webhook", "url": srv.url("https", "/u")}));
    let clock = clock();
    let n = Notifier::start(&config(vec![trusted, untrusted]), timing(&clock)).unwrap();
    n.send_test("trusted", Severity::Warning).unwrap();
    let rs = srv.wait_for(1);
    assert_eq!(rs[0].path, "/t");
    assert_eq!(rs[0].json()["kind"], "test");
    let e = n.send_test("untrusted", Severity::Warning).unwrap_err();
    assert!(e.to_string().contains("certificate"), "{e}");
    let st = n.status();
    assert_eq!(st[0].sent, 1);
    let last = st[1].last_error.as_ref().unwrap();
    assert!(last.text.contains("invalid peer certificate") && last.text.contains("UnknownIssuer"), "{}", last.text);
    assert_eq!(srv.requests().len(), 1, "nothing was sent to the unverified server");
    let _ = std::fs::remove_dir_all(&dir);
}

/// Runs `postlens ARGS --workspace WS` with `stdin`: (exit code, stdout, stderr).
fn postlens_cli(ws: &std::path::Path, args: &[&str], stdin: &str) -> (i32, String, String) {
    let mut c = std::process::Command::new(env!("CARGO_BIN_EXE_postlens"))
        .args(args)
        .arg("--workspace")
        .arg(ws)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    c.stdin.take().unwrap().write_all(stdin.as_bytes()).unwrap();
    let o = c.wait_with_output().unwrap();
    (o.status.code().unwrap(), String::from_utf8(o.stdout).unwrap(), String::from_utf8(o.stderr).unwrap())
}

#[test]
fn the_notify_commands_store_and_test_channels() {
    let srv = Server::start(None, ok);
    let ws = std::env::temp_dir().join(format!("postlens-notify-cli-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&ws);
    std::fs::create_dir_all(&ws).unwrap();
    let run = |args: &[&str], stdin: &str| postlens_cli(&ws, args, stdin);
    let (code, _, err) = run(&["notify-test"], "");
    assert_eq!(code, 2, "{err}");
    let bad = r#"{"channels": [{"name": "x", "type": "webhook", "url": "ftp://x"}]}"#;
    let (code, _, err) = run(&["notify-config", "--set", "-"], bad);
    assert_eq!((code, err.as_str()), (2, "postlens: --set: notify.channels.url: must be an http:// or https:// URL\n"));
    let good = serde_json::json!({"channels": [
        {"name": "up", "type": "webhook", "url": srv.url("http", "/up"), "headers": {"Authorization": "Bearer s3cr3t-token"}},
        {"name": "down", "type": "webhook", "url": "http://127.0.0.1:9/down", "enabled": false}]});
    let (code, out, err) = run(&["notify-config", "--set", "-"], &good.to_string());
    assert_eq!((code, out.as_str()), (0, "stored 2 notification channel(s)\n"), "{err}");
    let (code, out, _) = run(&["notify-config"], "");
    assert_eq!(code, 0);
    assert!(out.contains("\"name\": \"up\"") && !out.contains("s3cr3t-token"), "{out}");
    let (code, out, err) = run(&["notify-test", "--severity", "critical"], "");
    assert_eq!((code, out.as_str(), err.as_str()), (0, "ok     up\n", ""), "only the enabled channel");
    assert_eq!(srv.wait_for(1)[0].json()["severity"], "critical");
    let (code, out, err) = run(&["notify-test", "--channel", "down"], "");
    assert_eq!(code, 1, "{out}{err}");
    assert!(out.starts_with("error  down: 127.0.0.1:9: "), "{out}");
    assert_eq!(err, "postlens: 1 of 1 channel(s) failed\n");
    let _ = std::fs::remove_dir_all(&ws);
}

/// One line (without CRLF) read byte by byte, so nothing past it is taken
/// from the socket before a TLS upgrade.
fn smtp_line(r: &mut impl Read) -> Option<String> {
    let mut line = Vec::new();
    let mut b = [0u8; 1];
    loop {
        if r.read(&mut b).ok()? == 0 {
            return None;
        }
        if b[0] == b'\n' {
            return Some(String::from_utf8_lossy(&line).trim_end_matches('\r').to_owned());
        }
        line.push(b[0]);
    }
}

/// Answers an SMTP session; `Some(())` when the client asked for STARTTLS.
fn smtp_session(s: &mut (impl Read + Write), offer_starttls: bool, seen: &Mutex<Vec<String>>) -> Option<()> {
    let mut data = false;
    loop {
        let line = smtp_line(s)?;
        seen.lock().unwrap().push(line.clone());
        let reply = if data {
            if line != "." {
                continue;
            }
            data = false;
            "250 2.0.0 queued\r\n".to_owned()
        } else {
            match line.split_whitespace().next().unwrap_or("") {
                "EHLO" => format!("250-test\r\n{}250 AUTH PLAIN LOGIN\r\n", if offer_starttls { "250-STARTTLS\r\n" } else { "" }),
                "STARTTLS" => {
                    s.write_all(b"220 2.0.0 go ahead\r\n").ok()?;
                    return Some(());
                }
                "AUTH" => "235 2.7.0 ok\r\n".into(),
                "DATA" => {
                    data = true;
                    "354 go\r\n".into()
                }
                "QUIT" => {
                    let _ = s.write_all(b"221 bye\r\n");
                    return None;
                }
                _ => "250 ok\r\n".into(),
            }
        };
        s.write_all(reply.as_bytes()).ok()?;
    }
}

/// An SMTP server with implicit TLS (`implicit`) or STARTTLS, recording
/// every line the client sent.
fn smtp_server(tls: Arc<rustls::ServerConfig>, implicit: bool) -> (u16, Arc<Mutex<Vec<String>>>) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let s = Arc::clone(&seen);
    std::thread::spawn(move || {
        for c in l.incoming().flatten() {
            let (s, tls) = (Arc::clone(&s), Arc::clone(&tls));
            std::thread::spawn(move || {
                let _ = c.set_read_timeout(Some(Duration::from_secs(20)));
                let secure = |c: TcpStream| rustls::StreamOwned::new(rustls::ServerConnection::new(Arc::clone(&tls)).unwrap(), c);
                if implicit {
                    let mut t = secure(c);
                    if t.write_all(b"220 test ESMTP\r\n").is_ok() {
                        smtp_session(&mut t, false, &s);
                    }
                } else {
                    let mut c = c;
                    if c.write_all(b"220 test ESMTP\r\n").is_ok() && smtp_session(&mut c, true, &s).is_some() {
                        smtp_session(&mut secure(c), false, &s);
                    }
                }
            });
        }
    });
    (port, seen)
}

#[test]
fn smtp_over_tls_and_starttls_with_a_local_ca() {
    use base64::Engine as _;
    let (ca_pem, tls) = local_ca();
    let dir = std::env::temp_dir().join(format!("postlens-notify-smtp-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let ca_file = dir.join("ca.pem");
    std::fs::write(&ca_file, ca_pem).unwrap();
    let clock = clock();
    for (security, implicit) in [("tls", true), ("starttls", false)] {
        let (port, seen) = smtp_server(Arc::clone(&tls), implicit);
        let mail = |name: &str, ca: Option<&std::path::Path>| {
            let mut j = serde_json::json!({"name": name, "type": "smtp", "host": "127.0.0.1", "port": port, "security": security,
                "username": "postlens", "password": "pass-w0rd!", "from": "postlens@example.org", "to": ["admin@example.org"]});
            if let Some(ca) = ca {
                j["ca_file"] = ca.to_str().unwrap().into();
            }
            channel(j)
        };
        let n = Notifier::start(&config(vec![mail("trusted", Some(&ca_file)), mail("untrusted", None)]), timing(&clock)).unwrap();
        n.send_test("trusted", Severity::Critical).unwrap();
        let lines = seen.lock().unwrap().clone();
        let auth = lines.iter().find_map(|l| l.strip_prefix("AUTH PLAIN ")).unwrap_or_else(|| panic!("{security}: no AUTH in {lines:?}"));
        assert_eq!(base64::engine::general_purpose::STANDARD.decode(auth).unwrap(), b"\0postlens\0pass-w0rd!");
        assert!(lines.contains(&"Subject: [postlens] critical: Test notification from postlens".to_owned()), "{lines:?}");
        assert!(lines.contains(&"RCPT TO:<admin@example.org>".to_owned()) && lines.last().unwrap() == "QUIT", "{lines:?}");
        assert_eq!(lines.iter().filter(|l| l.starts_with("EHLO")).count(), if implicit { 1 } else { 2 }, "EHLO again after STARTTLS");
        let before = seen.lock().unwrap().len();
        let e = n.send_test("untrusted", Severity::Critical).unwrap_err();
        assert!(e.to_string().contains("UnknownIssuer"), "{security}: {e}");
        assert!(n.status()[1].last_error.as_ref().unwrap().text.contains("invalid peer certificate"));
        let after: Vec<String> = seen.lock().unwrap()[before..].to_vec();
        assert!(!after.iter().any(|l| l.starts_with("AUTH")), "no password towards an unverified server: {after:?}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn the_notify_commands_go_through_a_running_daemon() {
    let srv = Server::start(None, ok);
    let bin = env!("CARGO_BIN_EXE_postlens");
    let ws = std::env::temp_dir().join(format!("postlens-notify-daemon-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&ws);
    std::fs::create_dir_all(&ws).unwrap();
    let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let mut daemon = std::process::Command::new(bin)
        .args(["run", "--stdin", "--listen", &format!("127.0.0.1:{port}"), "--workspace"])
        .arg(&ws)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    poll("the daemon's control socket", || ws.join("postlens.sock").exists().then_some(()));
    let run = |args: &[&str], stdin: &str| {
        let (code, out, err) = postlens_cli(&ws, args, stdin);
        (code, out + &err)
    };
    let cfg = serde_json::json!({"channels": [{"name": "up", "type": "webhook", "url": srv.url("http", "/up")}]});
    assert_eq!(run(&["notify-config", "--set", "-"], &cfg.to_string()), (0, "stored 1 notification channel(s)\n".into()));
    assert_eq!(run(&["notify-test"], ""), (0, "ok     up\n".into()));
    assert_eq!(srv.wait_for(1)[0].json()["kind"], "test");
    assert!(daemon.try_wait().unwrap().is_none(), "the daemon held the database all along: the commands were forwarded");
    // SIGTERM to the daemon this test started.
    std::process::Command::new("kill").arg(daemon.id().to_string()).status().unwrap();
    let status = poll("the daemon to exit", || daemon.try_wait().unwrap());
    assert!(status.success(), "{status:?}");
    let _ = std::fs::remove_dir_all(&ws);
}
