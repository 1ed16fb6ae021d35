#![allow(clippy::unwrap_used, reason = "test code: a failed unwrap is a failed test")]
//! The peer network across processes: one `postlens hub` and nine
//! `postlens run` daemons on loopback, each joining through its settings
//! API as an admin would. Eight share and see the same attacker in their
//! logs (each counted in a network of its own through the hub's
//! `--trust-forwarded`); the hub lists it; the ninth, which only consumes
//! and never saw the attacker, then refuses it in its Dovecot policy
//! answers, while an address seen by one instance alone stays allowed, a
//! successful login at the consumer wins over the list, and the telemetry
//! page shows what was sent.
//!
//! Why eight sharers: the hub lists an address at a score of 1.8 from at
//! least three networks, and a key that has not earned trust yet weighs
//! 0.25 per report, so fresh installations need eight networks (2.0).

mod common;

use common::{TempDir, bin, free_port};
use std::fmt::Write as _;
use std::io::Write;
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// One HTTP/1.1 request; status and body.
fn http(addr: SocketAddr, method: &str, path: &str, headers: &str, body: &str) -> (u16, String) {
    let (code, _, body) = common::http(addr, method, path, headers, body);
    (code, body)
}

fn wait_for(addr: SocketAddr, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while TcpStream::connect(addr).is_err() {
        assert!(Instant::now() < deadline, "{what} did not start");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The policy status a daemon answers for `ip`.
fn policy(addr: SocketAddr, ip: &str) -> i64 {
    let body = format!(r#"{{"login":"x","pwhash":"","remote":"{ip}","device_id":"","protocol":"imap","session_id":"s"}}"#);
    let (code, b) = http(addr, "POST", "/dovecot/policy?command=allow", "Content-Type: application/json\r\n", &body);
    assert_eq!(code, 200, "{b}");
    serde_json::from_str::<serde_json::Value>(&b).unwrap()["status"].as_i64().unwrap()
}

/// `path` fetched with a signed-in admin's session.
fn page(web: SocketAddr, path: &str) -> String {
    let session = common::sign_in(web, "admin@example.org", "Correct-Horse-42");
    let (code, html) = http(web, "GET", path, &session, "");
    assert_eq!(code, 200, "{html}");
    html
}

struct Instance {
    web: SocketAddr,
    policy: SocketAddr,
    token: String,
    proc: Proc,
}

fn instance(d: &TempDir, n: usize, hub: &str, key: &str) -> Instance {
    let ws = d.s(&format!("ws{n}"));
    common::ok(&["user", "add", "--workspace", &ws, "--email", "admin@example.org", "--password", "Correct-Horse-42"]);
    let token = common::ok(&["user", "token", "--workspace", &ws, "--email", "admin@example.org"]).trim().to_owned();
    let web: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let policy: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let child = bin()
        .args(["run", "--workspace", &ws, "--stdin", "--listen", &web.to_string(), "--policy-listen", &policy.to_string()])
        .args(["--peer-hub", hub, "--peer-hub-key", key, "--peer-send-secs", "1", "--peer-fetch-secs", "1"])
        .args(["--peer-forwarded-for", &format!("198.18.{n}.1")])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let proc = Proc(child);
    wait_for(web, "postlens run");
    wait_for(policy, "the policy server");
    Instance { web, policy, token, proc }
}

impl Instance {
    fn choose(&self, choice: &str) {
        let (code, body) = http(
            self.web,
            "POST",
            "/api/v1/settings",
            &format!("Authorization: Bearer {}\r\nContent-Type: application/json\r\n", self.token),
            &format!(r#"{{"peer_network":"{choice}"}}"#),
        );
        assert_eq!(code, 200, "{body}");
    }

    /// Log lines on stdin, as a log shipper would send them.
    fn feed(&mut self, lines: &str) {
        let stdin = self.proc.0.stdin.as_mut().unwrap();
        stdin.write_all(lines.as_bytes()).unwrap();
        stdin.flush().unwrap();
    }
}

/// Dovecot `auth failed` lines from `ip`, one per login, dated `ago`
/// seconds back (a completed 10-minute bucket: sent at the next batch).
fn failures(ip: &str, logins: &[&str], ago: i64) -> String {
    let t = jiff::Timestamp::now() - jiff::SignedDuration::from_secs(ago);
    let t = t.strftime("%Y-%m-%dT%H:%M:%S%.6f+00:00").to_string();
    let mut out = String::new();
    for u in logins {
        let _ = writeln!(
            out,
            "{t} mail dovecot: imap-login: Disconnected (auth failed, 1 attempts in 2 secs): user=<{u}>, method=PLAIN, rip={ip}, lip=192.0.2.1, TLS, session=<x>"
        );
    }
    out
}

#[test]
fn signals_flow_to_the_hub_and_its_list_changes_policy_answers() {
    let d = TempDir::new("peer-network");
    let hub_port = free_port();
    let hub_addr: SocketAddr = format!("127.0.0.1:{hub_port}").parse().unwrap();
    let _hub = Proc(
        bin()
            .args(["hub", "--dir", &d.s("hub"), "--listen", &hub_addr.to_string(), "--trust-forwarded"])
            .args(["--min-key-age-secs", "0", "--tick-secs", "1"])
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    wait_for(hub_addr, "postlens hub");
    let (code, key) = http(hub_addr, "GET", "/v1/key", "", "");
    assert_eq!(code, 200);
    let hub = format!("http://{hub_addr}");
    let key = key.trim().to_owned();
    // A bad key is a usage error that names the flag.
    let out = common::run(&["run", "--workspace", &d.s("bad"), "--stdin", "--peer-hub", &hub, "--peer-hub-key", "beef"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--peer-hub-key"));

    let mut sharers: Vec<Instance> = (1..=8).map(|n| instance(&d, n, &hub, &key)).collect();
    let consumer = instance(&d, 9, &hub, &key);
    let attacker = "45.33.17.5";
    let lone = "45.33.17.99";
    assert_eq!(policy(consumer.policy, attacker), 0, "nothing known yet");
    for (i, s) in sharers.iter_mut().enumerate() {
        s.choose("share");
        s.feed(&failures(attacker, &["admin", "info", "root", "test", "sales"], 900));
        if i == 0 {
            s.feed(&failures(lone, &["admin", "info", "root"], 900));
        }
    }
    consumer.choose("consume");
    let deadline = Instant::now() + Duration::from_mins(1);
    while policy(consumer.policy, attacker) != -1 {
        assert!(Instant::now() < deadline, "the community list never refused {attacker} at the consumer");
        std::thread::sleep(Duration::from_millis(250));
    }
    assert_eq!(policy(consumer.policy, lone), 0, "an address one instance saw is not listed");
    // An address that logged in at the consumer is never refused for the
    // community's sake.
    let ok = format!(
        "{} mail dovecot: imap-login: Login: user=<a@example.org>, method=PLAIN, rip={attacker}, lip=192.0.2.1, mpid=1, TLS\n",
        jiff::Timestamp::now().strftime("%Y-%m-%dT%H:%M:%S%.6f+00:00")
    );
    let mut consumer = consumer;
    consumer.feed(&ok);
    let deadline = Instant::now() + Duration::from_secs(20);
    while policy(consumer.policy, attacker) != 0 {
        assert!(Instant::now() < deadline, "a successful login at the consumer did not win over the community list");
        std::thread::sleep(Duration::from_millis(100));
    }

    // Telemetry: the sharer's batches exactly as sent, without user names.
    let (code, body) = http(sharers[0].web, "GET", "/api/v1/peer", &format!("Authorization: Bearer {}\r\n", sharers[0].token), "");
    assert_eq!(code, 200, "{body}");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!((v["choice"].as_str(), v["telemetry"]["status"]["state"].as_str()), (Some("share"), Some("up")), "{v}");
    let sent: String = v["telemetry"]["sent"].as_array().unwrap().iter().map(|b| b["json"].as_str().unwrap().to_owned()).collect();
    assert!(sent.contains(attacker) && sent.contains(lone), "the sent batches list the addresses: {sent}");
    for secret in ["admin", "sales", "example.org", "198.18."] {
        assert!(!sent.contains(secret), "a batch holds {secret}: {sent}");
    }
    let (_, body) = http(consumer.web, "GET", "/api/v1/peer", &format!("Authorization: Bearer {}\r\n", consumer.token), "");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["choice"], "consume");
    assert!(v["community_entries"].as_u64().unwrap() >= 1 && v["telemetry"]["sent"].as_array().unwrap().is_empty(), "{v}");
    // The page, as an admin sees it.
    let html = page(sharers[0].web, "/telemetry");
    assert!(html.contains(attacker) && html.contains("reachable") && !html.contains("sales"), "{html}");
    let (_, m) = http(consumer.web, "GET", "/metrics", "", "");
    assert!(m.contains("postlens_protect_community_rejected_total "), "{m}");
}
