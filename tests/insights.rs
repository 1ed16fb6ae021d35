#![allow(clippy::unwrap_used, reason = "test code: a failed unwrap is a failed test")]
//! Insights end to end: after `postlens import`, `postlens insights`
//! replays the history through the detectors (`--json` as DESIGN.md fixes
//! it); then a
//! running daemon finds a live login attack and its own IP on a DNSBL
//! served by a real DNS server (Debian's dnsmasq on loopback), and
//! notifies a webhook (a local HTTP stand-in that records requests)
//! through the real notifier, for live findings only.

mod common;

use common::TempDir;
use serde_json::{Value, json};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, UdpSocket};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

fn stamp(t: jiff::Timestamp) -> String {
    let z = t.to_zoned(jiff::tz::TimeZone::UTC);
    format!("{} {:>2} {:02}:{:02}:{:02}", z.strftime("%b"), z.day(), z.hour(), z.minute(), z.second())
}

/// One message's Postfix lines.
fn message(t: jiff::Timestamp, n: usize, to: &str, status: &str, relay: &str, reply: &str) -> Vec<String> {
    let s = stamp(t);
    let q = format!("{:X}", 0x7A0_0000 + n);
    let dsn = match status {
        "sent" => "2.0.0",
        "bounced" => "5.7.1",
        _ => "4.7.28",
    };
    let mut v = vec![
        format!("{s} mx postfix/smtpd[1580]: {q}: client=relay.example.net[198.51.100.20]"),
        format!("{s} mx postfix/cleanup[1581]: {q}: message-id=<m{n}@example.org>"),
        format!("{s} mx postfix/qmgr[900]: {q}: from=<alice@example.org>, size=2048, nrcpt=1 (queue active)"),
        format!(
            "{s} mx postfix/smtp[1600]: {q}: to=<{to}>, relay={relay}, delay=1.2, delays=0.1/0/0.5/0.6, dsn={dsn}, status={status} ({reply})"
        ),
    ];
    if status != "deferred" {
        v.push(format!("{s} mx postfix/qmgr[900]: {q}: removed"));
    }
    v
}

/// Two days ago: a normal day with Gmail deferring for reputation and an
/// outbound bounce wave.
fn history(start: jiff::Timestamp) -> Vec<String> {
    let mut lines = Vec::new();
    for i in 0..144 {
        let t = start + jiff::SignedDuration::from_secs(i * 600);
        let n = usize::try_from(i).unwrap();
        lines.extend(message(t, n, &format!("r{i}@example.net"), "sent", "mx.example.net[192.0.2.25]:25", "250 2.0.0 Ok: queued as 9A1"));
    }
    for i in 0..5 {
        let t = start + jiff::SignedDuration::from_secs(9 * 3600 + i * 60);
        lines.extend(message(
            t,
            500 + usize::try_from(i).unwrap(),
            "carol@gmail.com",
            "deferred",
            "gmail-smtp-in.l.google.com[142.250.102.27]:25",
            "host gmail-smtp-in.l.google.com[142.250.102.27] said: 421-4.7.28 [203.0.113.5] Our system has detected an unusual rate of unsolicited mail originating from your IP address. (in reply to end of DATA command)",
        ));
    }
    for i in 0..30 {
        let t = start + jiff::SignedDuration::from_secs(14 * 3600 + i * 90);
        let bounced = i % 3 == 0;
        lines.extend(message(
            t,
            600 + usize::try_from(i).unwrap(),
            &format!("x{i}@example.com"),
            if bounced { "bounced" } else { "sent" },
            "mx.example.com[198.51.100.8]:25",
            if bounced {
                "host mx.example.com[198.51.100.8] said: 550 5.1.1 User unknown (in reply to RCPT TO command)"
            } else {
                "250 2.0.0 Ok"
            },
        ));
    }
    lines.sort_by_key(|l| l[..15].to_owned());
    lines
}

/// Three days ago, on the hour: the detectors' hourly windows then meet
/// the history's waves the same way in every run.
fn three_days_ago() -> jiff::Timestamp {
    let t = jiff::Timestamp::now().as_second() - 72 * 3600;
    jiff::Timestamp::from_second(t - t.rem_euclid(3600)).unwrap()
}

fn write_lines(path: &Path, lines: &[String], append: bool) {
    let mut f = std::fs::OpenOptions::new().create(true).append(append).write(true).truncate(!append).open(path).unwrap();
    for l in lines {
        writeln!(f, "{l}").unwrap();
    }
}

#[test]
fn import_replays_history_into_insights() {
    let dir = TempDir::new("insights-import");
    let log = dir.path().join("mail.log");
    write_lines(&log, &history(three_days_ago()), false);
    let ws = dir.s("ws");
    let o = common::run(&["import", "--workspace", &ws, log.to_str().unwrap()]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    // Without a daemon, `insights` runs the detectors over what is new.
    let v: Value = serde_json::from_str(&common::ok(&["insights", "--workspace", &ws, "--json"])).unwrap();
    let all = v.as_array().unwrap();
    let kinds: Vec<&str> = all.iter().map(|i| i["kind"].as_str().unwrap()).collect();
    for k in ["import_summary", "remote_blocked", "high_bounce_rate"] {
        assert!(kinds.contains(&k), "{k} in {kinds:?}");
    }
    for i in all {
        // The contract: these fields, these types.
        let keys: Vec<&str> = i.as_object().unwrap().keys().map(String::as_str).collect();
        for k in ["id", "kind", "severity", "title", "time", "first_seen", "count", "evidence"] {
            assert!(keys.contains(&k), "{k} missing in {i}");
        }
        assert!(i["id"].is_string() && i["evidence"].is_object() && i["count"].as_u64().unwrap() >= 1, "{i}");
        assert!(["info", "warning", "critical"].contains(&i["severity"].as_str().unwrap()));
        i["time"].as_str().unwrap().parse::<jiff::Timestamp>().unwrap();
        i["first_seen"].as_str().unwrap().parse::<jiff::Timestamp>().unwrap();
        assert!(i["time"].as_str().unwrap() >= i["first_seen"].as_str().unwrap());
    }
    let google = all.iter().find(|i| i["kind"] == "remote_blocked").unwrap();
    assert_eq!(google["evidence"]["provider_id"], "google");
    assert_eq!(google["evidence"]["deferred"], 5);
    let bounce = all.iter().find(|i| i["kind"] == "high_bounce_rate").unwrap();
    assert_eq!(bounce["evidence"]["bounced"], 10);
    let summary = all.iter().find(|i| i["kind"] == "import_summary").unwrap();
    assert_eq!(summary["evidence"]["bounced"], 10);
    // Filters; the text form; a bad kind is a usage error naming the flag.
    let only: Value = serde_json::from_str(&common::ok(&["insights", "--workspace", &ws, "--json", "--kind", "remote_blocked"])).unwrap();
    assert_eq!(only.as_array().unwrap().len(), 1);
    assert!(common::ok(&["insights", "--workspace", &ws]).contains("remote_blocked"));
    let bad = common::run(&["insights", "--workspace", &ws, "--kind", "nope"]);
    assert_eq!(bad.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("--kind"));
    // Importing the same file again adds nothing (no new lines, no repeat).
    let o = common::run(&["import", "--workspace", &ws, log.to_str().unwrap()]);
    assert!(o.status.success());
    let again: Value = serde_json::from_str(&common::ok(&["insights", "--workspace", &ws, "--json"])).unwrap();
    assert_eq!(again, v);
}

/// A webhook stand-in: records each request's body.
fn webhook() -> (String, Arc<Mutex<Vec<Value>>>) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/hook", l.local_addr().unwrap());
    let got = Arc::new(Mutex::new(Vec::new()));
    let g = got.clone();
    std::thread::spawn(move || {
        for s in l.incoming() {
            let Ok(mut s) = s else { continue };
            let mut r = BufReader::new(s.try_clone().unwrap());
            let mut len = 0;
            loop {
                let mut line = String::new();
                if r.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                    break;
                }
                if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                    len = v.trim().parse().unwrap_or(0);
                }
            }
            let mut body = vec![0; len];
            let _ = r.read_exact(&mut body);
            if let Ok(v) = serde_json::from_slice(&body) {
                g.lock().unwrap().push(v);
            }
            let _ = s.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok");
        }
    });
    (url, got)
}

/// dnsmasq answering for two test DNSBL zones on a loopback port: the
/// server's IP is listed in one.
fn dnsmasq(dir: &Path, ip_rev: &str) -> Option<(Child, u16)> {
    if Command::new("/usr/sbin/dnsmasq").arg("--version").output().is_err() {
        let msg = "dnsmasq is not installed (apt-get install dnsmasq-base)";
        assert!(std::env::var("CI").as_deref() != Ok("true"), "{msg}");
        eprintln!("SKIPPED the DNSBL part: {msg}");
        return None;
    }
    let port = {
        let s = UdpSocket::bind("127.0.0.1:0").unwrap();
        s.local_addr().unwrap().port()
    };
    let child = Command::new("/usr/sbin/dnsmasq")
        .args([
            "--keep-in-foreground",
            "--no-resolv",
            "--no-hosts",
            "--bind-interfaces",
            "--listen-address=127.0.0.1",
            &format!("--port={port}"),
            "--local=/test/",
            &format!("--address=/{ip_rev}.zen.test/127.0.0.2"),
            &format!("--txt-record={ip_rev}.zen.test,\"listed for spam, see https://zen.test/lookup\""),
            &format!("--pid-file={}", dir.join("dnsmasq.pid").display()),
            "--user=root",
            "--log-facility=-",
        ])
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(dir.join("dnsmasq.log")).unwrap())
        .spawn()
        .unwrap();
    Some((child, port))
}

struct Kill(Child);
impl Drop for Kill {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn http(port: u16, method: &str, path: &str, token: &str, body: &str) -> (u16, String) {
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    let code = out.split(' ').nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
    (code, out.split("\r\n\r\n").nth(1).unwrap_or_default().to_owned())
}

#[test]
fn the_daemon_finds_live_problems_and_notifies_once() {
    let dir = TempDir::new("insights-live");
    let watch = dir.path().join("watch");
    std::fs::create_dir_all(&watch).unwrap();
    let log = watch.join("mail.log");
    write_lines(&log, &history(three_days_ago()), false);
    let ws = dir.s("ws");
    // History first, as an installation would have it.
    assert!(common::run(&["import", "--workspace", &ws, log.to_str().unwrap()]).status.success());
    common::ok(&["user", "add", "--workspace", &ws, "--email", "ops@example.org", "--password", "Insight-Check-42!"]);
    let token = common::ok(&["user", "token", "--workspace", &ws, "--email", "ops@example.org"]).trim().lines().last().unwrap().to_owned();
    let (url, got) = webhook();
    let dns = dnsmasq(dir.path(), "99.2.0.192").map(|(c, p)| (Kill(c), p));
    let dns_port = dns.as_ref().map(|(_, p)| *p);

    let port = common::free_port();
    let daemon = common::bin()
        .args(["run", "--workspace", &ws, "--watch-dir", watch.to_str().unwrap(), "--listen", &format!("127.0.0.1:{port}")])
        .args(["--retention", "3650d", "--insights-every", "1"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(dir.path().join("daemon.err")).unwrap())
        .spawn()
        .unwrap();
    let _daemon = Kill(daemon);
    let deadline = Instant::now() + Duration::from_secs(20);
    while http_ok(port).is_none() {
        assert!(Instant::now() < deadline, "daemon did not start: {}", std::fs::read_to_string(dir.path().join("daemon.err")).unwrap());
        std::thread::sleep(Duration::from_millis(100));
    }
    // The channel is set while the daemon runs (the command is forwarded to
    // it): its notifier picks it up without a restart.
    let channels = json!({"channels": [{"name": "hook", "type": "webhook", "url": url, "min_severity": "info"}]});
    std::fs::write(dir.path().join("channels.json"), channels.to_string()).unwrap();
    common::ok(&["notify-config", "--workspace", &ws, "--set", &dir.s("channels.json")]);
    // The server's IP and the test resolver, through the API.
    if let Some(p) = dns_port {
        let (_, cur) = http(port, "GET", "/api/v1/settings", &token, "");
        assert!(!cur.contains(&url), "the API never shows a channel's secret URL: {cur}");
        let mut s: Value = serde_json::from_str(&cur).unwrap();
        s["ui_url"] = json!("https://mail.example.org/postlens/");
        s["public_ip"] = json!("192.0.2.99");
        s["insights"]["dnsbls"] = json!(["zen.test", "clean.test"]);
        s["insights"]["dns_server"] = json!(format!("127.0.0.1:{p}"));
        let (code, body) = http(port, "POST", "/api/v1/settings", &token, &s.to_string());
        assert_eq!(code, 200, "{body}");
    }
    // A live attack: 40 failed IMAP logins from one address, now.
    let now = jiff::Timestamp::now();
    let attack: Vec<String> = (0..40)
        .map(|i| {
            format!(
                "{} mx dovecot: imap-login: Disconnected (auth failed, 1 attempts in 2 secs): user=<admin>, method=PLAIN, rip=198.51.100.66, lip=192.0.2.99, TLS, session=<a{i}>",
                stamp(now)
            )
        })
        .collect();
    write_lines(&log, &attack, true);
    let want: &[&str] = if dns_port.is_some() { &["brute_force", "rbl_listed"] } else { &["brute_force"] };
    let deadline = Instant::now() + Duration::from_mins(1);
    loop {
        let kinds: Vec<String> = got.lock().unwrap().iter().filter_map(|v| v["kind"].as_str().map(str::to_owned)).collect();
        if want.iter().all(|k| kinds.iter().any(|x| x == k)) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "notified {kinds:?}, want {want:?}; daemon: {}",
            std::fs::read_to_string(dir.path().join("daemon.err")).unwrap()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    // Let a few more evaluations pass: the ongoing attack is not announced again,
    // and nothing from the imported history was ever sent.
    std::thread::sleep(Duration::from_secs(3));
    let sent = got.lock().unwrap().clone();
    let kinds: Vec<&str> = sent.iter().filter_map(|v| v["kind"].as_str()).collect();
    assert_eq!(kinds.iter().filter(|k| **k == "brute_force").count(), 1, "{kinds:?}");
    assert!(kinds.iter().all(|k| want.contains(k)), "only live findings are notified: {kinds:?}");
    let bf = sent.iter().find(|v| v["kind"] == "brute_force").unwrap();
    assert!(bf["title"].as_str().unwrap().contains("198.51.100.66"), "{bf}");
    assert!(bf["text"].as_str().unwrap().contains("40 failed logins"), "{bf}");
    if dns_port.is_some() {
        let link = bf["link"].as_str().unwrap();
        assert!(link.starts_with("https://mail.example.org/postlens/insights#i"), "{link}");
    }
    // The API lists the same insights as the CLI (forwarded to the daemon).
    let (code, api) = http(port, "GET", "/api/v1/insights", &token, "");
    assert_eq!(code, 200);
    let api: Value = serde_json::from_str(&api).unwrap();
    let cli: Value = serde_json::from_str(&common::ok(&["insights", "--workspace", &ws, "--json"])).unwrap();
    assert_eq!(api, cli);
    if dns_port.is_some() {
        let rbl = api.as_array().unwrap().iter().find(|i| i["kind"] == "rbl_listed").expect("rbl_listed");
        assert_eq!(rbl["evidence"]["zone"], "zen.test", "only the listing zone: {rbl}");
        assert!(rbl["evidence"]["reason"].as_str().unwrap().contains("listed for spam"), "{rbl}");
        assert_eq!(api.as_array().unwrap().iter().filter(|i| i["kind"] == "rbl_listed").count(), 1);
    }
    let (code, _) = http(port, "GET", "/api/v1/insights?kind=nope", &token, "");
    assert_eq!(code, 400);
}

fn http_ok(port: u16) -> Option<()> {
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").ok()?;
    let mut out = String::new();
    s.read_to_string(&mut out).ok()?;
    out.starts_with("HTTP/1.1 200").then_some(())
}
