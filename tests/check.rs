#![allow(clippy::unwrap_used, reason = "test code: a failed unwrap is a failed test")]
//! `postlens check` end to end against real servers on loopback: Debian's
//! nsd serves the zones of tests/check/ (correct and broken SPF, DKIM,
//! DMARC, PTR, a DNSBL); the config audit reads real `postconf` output of
//! tests/check/{safe,open}; the open-relay probe talks to a real Postfix
//! started on a free loopback port, configured both ways. No query leaves
//! loopback: every check is pointed at the test server with --dns-server.
//!
//! Missing nsd or Postfix (or not root, for running Postfix): a clear
//! message and a skip, or a failure under CI (`CI=true`).

mod common;

use common::{TempDir, free_port};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/check")
}

/// Skips (or fails under CI) when `what` is missing.
fn missing(what: &str) -> bool {
    let msg = format!("{what} (make deps installs it)");
    assert!(std::env::var("CI").as_deref() != Ok("true"), "{msg}");
    eprintln!("SKIPPED: {msg}");
    true
}

fn is_root() -> bool {
    Command::new("id").arg("-u").output().is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

fn wait_port(port: u16, what: &str) {
    let t0 = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(t0.elapsed() < Duration::from_secs(15), "{what} did not listen on 127.0.0.1:{port}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// nsd serving the test zones on a free loopback port.
struct Nsd {
    child: Child,
    port: u16,
    dir: TempDir,
}

impl Drop for Nsd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn nsd(tag: &str) -> Option<Nsd> {
    if !Path::new("/usr/sbin/nsd").exists() {
        missing("nsd is not installed (apt-get install nsd)");
        return None;
    }
    let dir = TempDir::new(&format!("nsd-{tag}"));
    let port = free_port();
    let d = dir.path().display();
    let conf = format!(
        "server:\n  ip-address: 127.0.0.1@{port}\n  port: {port}\n  username: \"\"\n  chroot: \"\"\n  zonesdir: \"{}\"\n  database: \"\"\n  \
         zonelistfile: \"{d}/zone.list\"\n  xfrdfile: \"{d}/xfrd.state\"\n  pidfile: \"{d}/nsd.pid\"\n  logfile: \"{d}/nsd.log\"\n  \
         server-count: 1\n  hide-version: yes\n  verbosity: 1\nremote-control:\n  control-enable: no\n\
         zone:\n  name: test\n  zonefile: test.zone\n\
         zone:\n  name: 2.0.192.in-addr.arpa\n  zonefile: 2.0.192.in-addr.arpa.zone\n\
         zone:\n  name: 100.51.198.in-addr.arpa\n  zonefile: 100.51.198.in-addr.arpa.zone\n",
        fixtures().display()
    );
    std::fs::write(dir.path().join("nsd.conf"), conf).unwrap();
    let child = Command::new("/usr/sbin/nsd")
        .args(["-d", "-c"])
        .arg(dir.path().join("nsd.conf"))
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(dir.path().join("nsd.stderr")).unwrap())
        .spawn()
        .expect("start nsd");
    let mut n = Nsd { child, port, dir };
    wait_port(port, "nsd");
    // Listening on TCP, but a server that could not take the UDP port exits
    // right after: what answered was then someone else.
    std::thread::sleep(Duration::from_millis(100));
    if let Ok(Some(st)) = n.child.try_wait() {
        panic!(
            "nsd exited ({st}) after listening on {port}: {}",
            std::fs::read_to_string(n.dir.path().join("nsd.stderr")).unwrap_or_default()
        );
    }
    Some(n)
}

fn check(args: &[&str]) -> Output {
    let ws = std::env::temp_dir().join(format!("postlens-check-no-workspace-{}", std::process::id()));
    common::bin().arg("check").arg("--workspace").arg(ws).args(args).output().expect("run postlens check")
}

/// Runs `check --json` and returns (exit code, checks).
fn json(args: &[&str]) -> (i32, Vec<Value>) {
    let mut a = args.to_vec();
    a.push("--json");
    let o = check(&a);
    let text = String::from_utf8_lossy(&o.stdout);
    let v: Value =
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("JSON ({e}): {text}\nstderr: {}", String::from_utf8_lossy(&o.stderr)));
    (o.status.code().unwrap_or(-1), v.as_array().expect("an array").clone())
}

/// The status of check `id` on `target` (exactly one such check).
fn status<'a>(checks: &'a [Value], id: &str, target: &str) -> &'a str {
    let m: Vec<&Value> = checks.iter().filter(|c| c["id"] == id && c["target"] == target).collect();
    assert_eq!(m.len(), 1, "one {id} on {target} in {checks:#?}");
    m[0]["status"].as_str().unwrap()
}

fn evidence<'a>(checks: &'a [Value], id: &str, target: &str) -> &'a str {
    checks.iter().find(|c| c["id"] == id && c["target"] == target).and_then(|c| c["evidence"].as_str()).unwrap_or("")
}

/// The config audit's checks and their targets.
const CONFIG_CHECKS: [(&str, &str); 7] = [
    ("relay_restrictions", "smtpd_relay_restrictions"),
    ("mynetworks", "mynetworks"),
    ("sasl_tls", "smtpd_tls_auth_only"),
    ("tls_inbound", "smtpd_tls_security_level"),
    ("tls_outbound", "smtp_tls_security_level"),
    ("auth_rate_limit", "smtpd_client_auth_rate_limit"),
    ("message_size_limit", "message_size_limit"),
];

fn dns_flags(port: &str) -> Vec<&str> {
    vec!["--dns-server", port, "--public-ip", "192.0.2.10", "--helo", "mx.good.test", "--dnsbl", "clean.bl.test"]
}

#[test]
fn correct_domain_passes_everything_and_exits_0() {
    let Some(ns) = nsd("good") else { return };
    let server = format!("127.0.0.1:{}", ns.port);
    let safe = fixtures().join("safe");
    let mut a = dns_flags(&server);
    a.extend(["--domain", "good.test", "--dkim-selector", "mail", "--mta-sts", "--postconf-dir", safe.to_str().unwrap()]);
    let (code, c) = json(&a);
    for ch in &c {
        let keys: Vec<&str> = ch.as_object().unwrap().keys().map(String::as_str).collect();
        assert_eq!(keys.len(), 5, "{ch}");
        for k in ["id", "target", "status", "evidence", "fix"] {
            assert!(ch.get(k).is_some_and(Value::is_string), "{k} in {ch}");
        }
    }
    for (id, target) in [
        ("mx", "good.test"),
        ("spf", "good.test"),
        ("spf_lookups", "good.test"),
        ("spf_authorises_ip", "good.test"),
        ("dkim", "mail._domainkey.good.test"),
        ("dmarc", "_dmarc.good.test"),
        ("mta_sts", "_mta-sts.good.test"),
        ("tls_rpt", "_smtp._tls.good.test"),
        ("ptr", "192.0.2.10"),
        ("fcrdns", "192.0.2.10"),
        ("helo", "mx.good.test"),
        ("dnsbl", "clean.bl.test"),
    ]
    .iter()
    .chain(&CONFIG_CHECKS)
    {
        assert_eq!(status(&c, id, target), "pass", "{id} on {target}: {}", evidence(&c, id, target));
    }
    assert_eq!(status(&c, "open_relay", ""), "skipped", "opt-in");
    // Exactly DESIGN.md's ids plus message_size_limit, each at least once,
    // in the checklist's order.
    let mut ids: Vec<&str> = c.iter().map(|ch| ch["id"].as_str().unwrap()).collect();
    ids.dedup();
    assert_eq!(ids, postlens::check::IDS, "ids and their order");
    assert!(evidence(&c, "spf_lookups", "good.test").starts_with("2 DNS lookups"), "{}", evidence(&c, "spf_lookups", "good.test"));
    assert!(evidence(&c, "dkim", "mail._domainkey.good.test").contains("2048 bits"));
    assert_eq!(code, 0);
    // The checklist (no --json): the same verdicts, one line each.
    let o = check(&a[..a.len()]);
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(text.lines().any(|l| l.starts_with("PASS  spf_authorises_ip")), "{text}");
    assert_eq!(o.status.code(), Some(0));
}

#[test]
fn broken_records_are_classified_exactly() {
    let Some(ns) = nsd("broken") else { return };
    let server = format!("127.0.0.1:{}", ns.port);
    let mut a = dns_flags(&server);
    for d in
        ["lookups11.test", "voids.test", "noauth.test", "syntax.test", "two.test", "baddmarc.test", "baddkim.test", "nomx.test", "tcp.test"]
    {
        a.extend(["--domain", d]);
    }
    a.extend([
        "--dkim-selector",
        "mail",
        "--dkim-selector",
        "old",
        "--dkim-selector",
        "small",
        "--dnsbl",
        "listed.bl.test",
        "--dnsbl",
        "refused.bl.test",
    ]);
    let (code, c) = json(&a);
    let expect = [
        // Eleven includes: over the limit, though the first include matches.
        ("spf", "lookups11.test", "pass"),
        ("spf_lookups", "lookups11.test", "fail"),
        ("spf_authorises_ip", "lookups11.test", "pass"),
        // Three void lookups: permerror.
        ("spf_lookups", "voids.test", "fail"),
        ("spf_authorises_ip", "voids.test", "fail"),
        // Valid SPF that does not list the IP.
        ("spf", "noauth.test", "pass"),
        ("spf_lookups", "noauth.test", "pass"),
        ("spf_authorises_ip", "noauth.test", "fail"),
        ("spf", "syntax.test", "fail"),
        ("spf_lookups", "syntax.test", "skipped"),
        ("spf", "two.test", "fail"),
        ("dmarc", "_dmarc.baddmarc.test", "fail"),
        ("dmarc", "_dmarc.noauth.test", "fail"),
        ("dkim", "mail._domainkey.baddkim.test", "fail"),
        ("dkim", "old._domainkey.baddkim.test", "fail"),
        ("dkim", "small._domainkey.baddkim.test", "warn"),
        ("mx", "nomx.test", "fail"),
        ("mx", "noauth.test", "pass"),
        // A TXT set larger than one UDP answer: asked again over TCP.
        ("spf", "tcp.test", "pass"),
        ("spf_authorises_ip", "tcp.test", "pass"),
        ("dnsbl", "clean.bl.test", "pass"),
        ("dnsbl", "listed.bl.test", "fail"),
        ("dnsbl", "refused.bl.test", "warn"),
        ("mta_sts", "_mta-sts.noauth.test", "skipped"),
    ];
    for (id, target, want) in expect {
        assert_eq!(status(&c, id, target), want, "{id} on {target}: {}", evidence(&c, id, target));
    }
    assert!(
        evidence(&c, "spf_lookups", "lookups11.test").starts_with("11 DNS lookups"),
        "{}",
        evidence(&c, "spf_lookups", "lookups11.test")
    );
    assert!(evidence(&c, "dkim", "mail._domainkey.baddkim.test").contains("not an RSA public key"));
    assert!(evidence(&c, "dkim", "old._domainkey.baddkim.test").contains("revoked"));
    assert!(evidence(&c, "dmarc", "_dmarc.baddmarc.test").contains("p=rejected"));
    assert!(
        evidence(&c, "dnsbl", "listed.bl.test").contains("127.0.0.2")
            && evidence(&c, "dnsbl", "listed.bl.test").contains("listed for spam")
    );
    assert!(evidence(&c, "dnsbl", "refused.bl.test").contains("not a listing"));
    assert_eq!(code, 3, "a failing check exits 3");
}

#[test]
fn reverse_dns_missing_and_not_confirming() {
    let Some(ns) = nsd("ptr") else { return };
    let server = format!("127.0.0.1:{}", ns.port);
    let run = |ip: &str| json(&["--dns-server", &server, "--public-ip", ip, "--helo", "mx.good.test", "--dnsbl", "clean.bl.test"]).1;
    let none = run("192.0.2.20");
    assert_eq!(status(&none, "ptr", "192.0.2.20"), "fail", "{}", evidence(&none, "ptr", "192.0.2.20"));
    assert_eq!(status(&none, "fcrdns", "192.0.2.20"), "fail");
    let wrong = run("198.51.100.7");
    assert_eq!(status(&wrong, "ptr", "198.51.100.7"), "pass");
    assert_eq!(status(&wrong, "fcrdns", "198.51.100.7"), "fail", "{}", evidence(&wrong, "fcrdns", "198.51.100.7"));
    assert_eq!(status(&wrong, "helo", "mx.good.test"), "warn", "mx.good.test is not 198.51.100.7");
    let other = run("192.0.2.40");
    assert_eq!(
        status(&other, "fcrdns", "192.0.2.40"),
        "warn",
        "confirmed, but not the HELO name: {}",
        evidence(&other, "fcrdns", "192.0.2.40")
    );
    // No domain given and none known: the domain checks say so.
    assert_eq!(status(&other, "spf", ""), "skipped");
}

#[test]
fn config_audit_of_safe_and_open_postfix() {
    if !Path::new("/usr/sbin/postconf").exists() {
        missing("postconf is not installed (apt-get install postfix)");
        return;
    }
    let ids = CONFIG_CHECKS;
    // The HELO name of main.cf is resolved too: at the test server only.
    let Some(ns) = nsd("audit") else { return };
    let server = format!("127.0.0.1:{}", ns.port);
    let run = |dir: &str| json(&["--dns-server", &server, "--postconf-dir", fixtures().join(dir).to_str().unwrap()]);
    let (code, safe) = run("safe");
    for (id, t) in ids {
        assert_eq!(status(&safe, id, t), "pass", "{id}: {}", evidence(&safe, id, t));
    }
    assert_eq!(code, 0);
    let (code, open) = run("open");
    for ((id, t), want) in ids.iter().zip(["fail", "fail", "fail", "fail", "fail", "warn", "fail"]) {
        assert_eq!(status(&open, id, t), want, "{id}: {}", evidence(&open, id, t));
    }
    assert!(evidence(&open, "mynetworks", "mynetworks").contains("0.0.0.0/0"));
    let fix = open.iter().find(|c| c["id"] == "relay_restrictions").unwrap()["fix"].as_str().unwrap();
    assert!(fix.contains("reject_unauth_destination"), "{fix}");
    assert_eq!(code, 3);
}

#[test]
fn exit_codes_for_bad_flags_and_no_dns() {
    for (args, flag) in [
        (vec!["--public-ip", "1.2.3"], "--public-ip"),
        (vec!["--domain", "not a domain"], "--domain"),
        (vec!["--dns-server", "nowhere"], "--dns-server"),
        (vec!["--dnsbl", "bad zone"], "--dnsbl"),
        (vec!["--relay-probe", "127.0.0.1"], "--relay-probe"),
        (vec!["--postconf-dir", "/nonexistent"], "--postconf-dir"),
    ] {
        let o = check(&args);
        assert_eq!(o.status.code(), Some(2), "{args:?}");
        assert!(String::from_utf8_lossy(&o.stderr).contains(flag), "{args:?}: {}", String::from_utf8_lossy(&o.stderr));
    }
    // A port nobody answers on: the checks could not run.
    let silent = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let port = silent.local_addr().unwrap().port();
    drop(silent);
    let t0 = Instant::now();
    let o = check(&["--dns-server", &format!("127.0.0.1:{port}"), "--domain", "good.test", "--public-ip", "192.0.2.10", "--json"]);
    assert_eq!(o.status.code(), Some(1), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(String::from_utf8_lossy(&o.stderr).contains("no DNS server answered"), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(t0.elapsed() < Duration::from_secs(20), "gave up quickly: {:?}", t0.elapsed());
}

/// A Postfix instance of its own (config, queue and data in a temp dir)
/// with smtpd on a free loopback port.
struct Postfix {
    conf: PathBuf,
    port: u16,
    dir: TempDir,
}

impl Drop for Postfix {
    fn drop(&mut self) {
        let _ = Command::new("postfix").arg("-c").arg(&self.conf).arg("stop").output();
    }
}

fn postfix(tag: &str, main: &str) -> Option<Postfix> {
    if !Path::new("/usr/sbin/postfix").exists() || !Path::new("/usr/share/postfix/master.cf.dist").exists() {
        missing("Postfix is not installed (apt-get install postfix)");
        return None;
    }
    if !is_root() {
        missing("running a Postfix instance needs root");
        return None;
    }
    let dir = TempDir::new(&format!("postfix-{tag}"));
    let conf = dir.path().join("conf");
    for d in ["conf", "queue", "data"] {
        std::fs::create_dir_all(dir.path().join(d)).unwrap();
    }
    let ok = |c: &mut Command| {
        let o = c.output().expect("run a Postfix command");
        assert!(o.status.success(), "{c:?}: {}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr));
    };
    ok(Command::new("chown").arg("postfix").arg(dir.path().join("data")));
    let port = free_port();
    let d = dir.path().display();
    std::fs::write(
        conf.join("main.cf"),
        format!(
            "compatibility_level = 3.6\nqueue_directory = {d}/queue\ndata_directory = {d}/data\nmyhostname = probe.test\nmydestination = probe.test\n\
             inet_interfaces = 127.0.0.1\ninet_protocols = ipv4\nmaillog_file = {d}/maillog\nmaillog_file_prefixes = {d}\n{main}"
        ),
    )
    .unwrap();
    std::fs::copy("/usr/share/postfix/master.cf.dist", conf.join("master.cf")).unwrap();
    std::fs::write(conf.join("clients.cidr"), "0.0.0.0/0 OK\n").unwrap();
    let pc = || {
        let mut c = Command::new("postconf");
        c.arg("-c").arg(&conf);
        c
    };
    ok(pc().args(["-F", "*/*/chroot = n"]));
    ok(pc().args(["-M#", "smtp/inet"]));
    ok(pc().arg("-M").arg(format!("127.0.0.1:{port}/inet=127.0.0.1:{port} inet n - n - - smtpd")));
    ok(pc().arg("-M").arg("postlog/unix-dgram=postlog unix-dgram n - n - 1 postlogd"));
    ok(Command::new("postfix").arg("-c").arg(&conf).arg("start"));
    let p = Postfix { conf, port, dir };
    wait_port(port, "postfix smtpd");
    Some(p)
}

#[test]
fn open_relay_probe_against_real_postfix() {
    // Loopback is not in mynetworks, so the probe speaks for strangers.
    let safe = "mynetworks = 10.99.99.99/32\nsmtpd_relay_restrictions = permit_mynetworks, reject_unauth_destination\n";
    // Postfix refuses to start without a reachable reject_unauth_destination,
    // so this open relay hides behind an access table that says OK to all
    // (the audit cannot see into tables: the probe can).
    let open = "mynetworks = 10.99.99.99/32\nsmtpd_relay_restrictions = permit_mynetworks, check_client_access cidr:${config_directory}/clients.cidr, reject_unauth_destination\n";
    // The classic: the whole internet in mynetworks.
    let broad = "mynetworks = 0.0.0.0/0\nsmtpd_relay_restrictions = permit_mynetworks, reject_unauth_destination\n";
    // This host trusted: relaying from it proves nothing about strangers.
    let trusting = "mynetworks = 127.0.0.0/8\nsmtpd_relay_restrictions = permit_mynetworks, reject_unauth_destination\n";
    // The HELO name (probe.test) is resolved too: at the test server only.
    let Some(ns) = nsd("relay") else { return };
    let server = format!("127.0.0.1:{}", ns.port);
    for (tag, main, want) in [("safe", safe, "pass"), ("open", open, "fail"), ("broad", broad, "fail"), ("trusting", trusting, "warn")] {
        let Some(pf) = postfix(tag, main) else { return };
        let target = format!("127.0.0.1:{}", pf.port);
        let (code, c) = json(&["--dns-server", &server, "--relay-probe", &target, "--postconf-dir", pf.conf.to_str().unwrap()]);
        assert_eq!(status(&c, "open_relay", &target), want, "{tag}: {}", evidence(&c, "open_relay", &target));
        // Aborted before DATA: nothing was queued.
        let t0 = Instant::now();
        let mut log = String::new();
        while !log.contains("disconnect from") && t0.elapsed() < Duration::from_secs(10) {
            std::thread::sleep(Duration::from_millis(100));
            log = std::fs::read_to_string(pf.dir.path().join("maillog")).unwrap_or_default();
        }
        assert!(log.contains("rset=1"), "{tag}: the probe sent RSET: {log}");
        assert!(!log.contains("data=1"), "{tag}: no DATA: {log}");
        if want == "fail" {
            assert_eq!(code, 3);
        }
    }
}

/// `postlens run` on `ws` with its web server on `web` (and `extra` flags),
/// once it answers.
fn run_daemon(ws: &str, web: std::net::SocketAddr, extra: &[&str]) -> Child {
    let child = common::bin()
        .args(["run", "--workspace", ws, "--stdin", "--listen", &web.to_string(), "--policy-listen", "off"])
        .args(extra)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_port(web.port(), "postlens run");
    child
}

/// The daemon side: settings point the checks at the test DNS server;
/// `POST /api/v1/checks` runs them, a failing check opens one
/// `health_check` insight (not another on the next run), and the Health
/// page lists the results.
#[test]
fn daemon_runs_checks_and_opens_insights_for_failures() {
    let Some(ns) = nsd("daemon") else { return };
    let d = TempDir::new("check-daemon");
    let ws = d.s("ws");
    common::ok(&["user", "add", "--workspace", &ws, "--email", "admin@example.org", "--password", "Correct-Horse-42"]);
    let token = common::ok(&["user", "token", "--workspace", &ws, "--email", "admin@example.org"]).trim().to_owned();
    let web: std::net::SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let mut child = run_daemon(&ws, web, &[]);
    let auth = format!("Authorization: Bearer {token}\r\nContent-Type: application/json\r\n");
    let settings = format!(
        r#"{{"public_ip":"192.0.2.10","insights":{{"dns_server":"127.0.0.1:{}","dnsbls":["clean.bl.test"]}},"checks":{{"domains":["good.test","noauth.test"],"dkim_selectors":["mail"]}}}}"#,
        ns.port
    );
    let (code, _, body) = common::http(web, "POST", "/api/v1/settings", &auth, &settings);
    assert_eq!(code, 200, "{body}");
    let (code, _, body) = common::http(web, "GET", "/api/v1/checks", &auth, "");
    assert_eq!(code, 200);
    assert_eq!(serde_json::from_str::<Value>(&body).unwrap(), serde_json::json!({"time": 0, "checks": [], "error": null}), "never run yet");
    let run = || {
        let (code, _, body) = common::http(web, "POST", "/api/v1/checks", &auth, "");
        assert_eq!(code, 200, "{body}");
        serde_json::from_str::<Value>(&body).unwrap()
    };
    let first = run();
    let checks = first["checks"].as_array().unwrap().clone();
    assert_eq!(status(&checks, "spf_authorises_ip", "good.test"), "pass");
    assert_eq!(status(&checks, "spf_authorises_ip", "noauth.test"), "fail");
    assert_eq!(status(&checks, "ptr", "192.0.2.10"), "pass");
    let fails = checks.iter().filter(|c| c["status"] == "fail").count();
    let insights = || {
        let (code, _, body) = common::http(web, "GET", "/api/v1/insights?kind=health_check", &auth, "");
        assert_eq!(code, 200, "{body}");
        serde_json::from_str::<Value>(&body).unwrap().as_array().unwrap().clone()
    };
    let opened = insights();
    assert_eq!(opened.len(), fails, "one insight per failing check: {opened:#?}");
    assert!(
        opened.iter().any(|i| i["evidence"]["check"] == "spf_authorises_ip" && i["evidence"]["target"] == "noauth.test"),
        "{opened:#?}"
    );
    // The same failures again: no new insight.
    let second = run();
    assert_eq!(second["checks"].as_array().unwrap().len(), checks.len());
    assert_eq!(insights().len(), fails, "a failure that stays is not a new insight");
    // The page, as an admin sees it.
    let session = common::sign_in(web, "admin@example.org", "Correct-Horse-42");
    let (code, _, html) = common::http(web, "GET", "/health", &session, "");
    assert_eq!(code, 200, "{html}");
    assert!(
        html.contains("noauth.test") && html.contains("SPF allows this server") && html.contains(r#"href="health" aria-current="page""#),
        "{html}"
    );
    let _ = child.kill();
    let _ = child.wait();
    // The schedule: a daemon started with a short period runs them by itself.
    let before = second["time"].as_i64().unwrap();
    std::thread::sleep(Duration::from_millis(1100));
    let mut child = run_daemon(&ws, web, &["--checks-every", "1"]);
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (_, _, body) = common::http(web, "GET", "/api/v1/checks", &auth, "");
        if serde_json::from_str::<Value>(&body).unwrap()["time"].as_i64().unwrap() > before {
            break;
        }
        assert!(Instant::now() < deadline, "no scheduled run");
        std::thread::sleep(Duration::from_millis(200));
    }
    assert_eq!(insights().len(), fails, "a scheduled run of the same failures opens nothing new");
    let _ = child.kill();
    let _ = child.wait();
}
