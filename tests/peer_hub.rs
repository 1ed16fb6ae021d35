//! The peer network over real HTTP: the `postlens hub` binary on a loopback
//! port, the real client threads (eight identities playing eight networks
//! through `--trust-forwarded`), signed lists and deltas, refusals, and the
//! hub going down and coming back.

mod common;

use common::{TempDir, bin, free_port};
use postlens::clock::{self, Timestamp};
use postlens::peer::{Aggregator, Choice, ClientConfig, Community, HubStatus, Identity, KeyId, List, SIGNATURE_HEADER, spawn};
use postlens::track::record::Proto;
use std::net::IpAddr;
use std::process::{Child, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

struct Hub {
    child: Child,
    url: String,
}

impl Hub {
    fn start(dir: &std::path::Path, port: u16) -> Hub {
        let child = bin()
            .args([
                "hub",
                "--dir",
                dir.to_str().expect("utf-8"),
                "--listen",
                &format!("127.0.0.1:{port}"),
                "--trust-forwarded",
                "--min-key-age-secs",
                "0",
                "--tick-secs",
                "1",
                "--canary",
                "77.77.0.0/16",
            ])
            .stderr(Stdio::null())
            .spawn()
            .expect("start postlens hub");
        let url = format!("http://127.0.0.1:{port}");
        let deadline = Instant::now() + Duration::from_secs(20);
        while ureq::get(&format!("{url}/healthz")).call().is_err() {
            assert!(Instant::now() < deadline, "hub did not answer /healthz");
            std::thread::sleep(Duration::from_millis(50));
        }
        Hub { child, url }
    }

    /// SIGTERM, and the exit status.
    fn term(mut self) -> std::process::ExitStatus {
        let ok = std::process::Command::new("kill").args(["-TERM", &self.child.id().to_string()]).status().expect("kill");
        assert!(ok.success());
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(s) = self.child.try_wait().expect("wait") {
                return s;
            }
            assert!(Instant::now() < deadline, "hub ignored SIGTERM");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Hub {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder().http_status_as_error(false).build().into()
}

fn post(url: &str, body: &[u8], sig: Option<&str>, from: &str) -> (u16, String) {
    let mut rq = agent().post(url).header("X-Forwarded-For", from);
    if let Some(s) = sig {
        rq = rq.header(SIGNATURE_HEADER, s);
    }
    let mut r = rq.send(body).expect("post");
    (r.status().as_u16(), r.body_mut().read_to_string().unwrap_or_default())
}

fn b64(b: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(b)
}

fn wait_for(what: &str, secs: u64, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn signals_become_a_signed_list_over_http() {
    let dir = TempDir::new("peer-hub");
    let port = free_port();
    let hub = Hub::start(&dir.0, port);
    let hub_key = KeyId::parse(std::fs::read_to_string(dir.0.join("hub.pub")).expect("hub.pub").trim()).expect("hub key");
    let attacker: IpAddr = "203.0.113.50".parse().expect("ip");
    let now = clock::now();

    // Eight instances in eight networks saw the same brute force two
    // buckets ago. (A new key weighs 0.25: eight networks reach 1.8.)
    let mut clients = Vec::new();
    let mut communities = Vec::new();
    for i in 0..8u8 {
        let agg = Arc::new(Mutex::new(Aggregator::new()));
        for n in 0..5u8 {
            agg.lock().expect("lock").failure(attacker, Proto::Imap, &[n], b"admin", 1, Timestamp(now.0 - 1300));
        }
        let community = Arc::new(Community::new());
        let mut cfg = ClientConfig::new(&hub.url, hub_key, Choice::Share, Arc::new(Identity::generate().expect("key")));
        cfg.send_every = Duration::from_secs(1);
        cfg.fetch_every = Duration::from_millis(500);
        cfg.timeout = Duration::from_secs(2);
        cfg.forwarded_for = Some(format!("11.{i}.0.7").parse().expect("ip"));
        clients.push(spawn(cfg, agg, Arc::clone(&community)));
        communities.push(community);
    }
    wait_for("the attacker on every instance's community list", 30, || {
        communities.iter().all(|c| c.listed(attacker, clock::now()).is_some())
    });
    assert!(communities[0].listed("203.0.113.51".parse().expect("ip"), clock::now()).is_none());

    // Telemetry: the batch exactly as sent, the list as received, deltas
    // after the first full list.
    wait_for("a delta received", 10, || clients[0].telemetry().received.is_some_and(|r| r.delta));
    let t = clients[0].telemetry();
    assert!(matches!(t.status, HubStatus::Up { .. }), "{:?}", t.status);
    let sent = t.sent.iter().find(|b| b.signals > 0).expect("a batch with signals");
    assert!(sent.json.contains("\"ip\":\"203.0.113.50\"") && sent.json.contains("\"passwords\":\"4-9\""), "{}", sent.json);
    assert!(!sent.json.contains("admin"), "no login names leave: {}", sent.json);
    assert_eq!(sent.outcome, "accepted");

    // The signed list, full and as a delta, verified with the pinned key.
    let get = |q: &str| {
        let mut r = agent().get(&format!("{}/v1/list{q}", hub.url)).call().expect("get list");
        let status = r.status().as_u16();
        let sig = r.headers().get(SIGNATURE_HEADER).map(|v| v.to_str().expect("ascii").to_owned());
        (status, r.body_mut().read_to_vec().expect("body"), sig)
    };
    let (status, body, sig) = get("");
    assert_eq!(status, 200);
    let sig = postlens_sig(&sig.expect("signed"));
    assert!(hub_key.verify(&body, &sig));
    let mut tampered = body.clone();
    tampered[5] ^= 1;
    assert!(!hub_key.verify(&tampered, &sig));
    let full: List = serde_json::from_slice(&body).expect("list");
    assert!(full.since.is_none() && full.added.iter().any(|e| e.ip.0.addr() == attacker));
    let (_, body, _) = get(&format!("?since={}", full.version));
    let delta: List = serde_json::from_slice(&body).expect("delta");
    assert_eq!((delta.since, delta.added.len()), (Some(full.version), 0), "nothing new since the current version");
    let (_, body, _) = get(&format!("?since={}", full.version - 1));
    let delta: List = serde_json::from_slice(&body).expect("delta");
    assert_eq!(delta.since, Some(full.version - 1));
    assert!(delta.added.iter().any(|e| e.ip.0.addr() == attacker));
    assert_eq!(get("?since=abc").0, 400);
    assert_eq!(get("?bogus=1").0, 400);

    // Refusals: replay, bad or missing signature, malformed, oversized.
    let id = Identity::generate().expect("key");
    let mut agg = Aggregator::new();
    let (_, body, s) = agg.seal(Vec::new(), clock::now(), &id);
    let batches = format!("{}/v1/batches", hub.url);
    assert_eq!(post(&batches, &body, Some(&b64(&s)), "11.20.0.1").0, 200);
    let (code, text) = post(&batches, &body, Some(&b64(&s)), "11.20.0.1");
    assert_eq!(code, 409, "replay: {text}");
    let (_, body2, s2) = agg.seal(Vec::new(), clock::now(), &id);
    let mut bad = s2;
    bad[0] ^= 1;
    assert_eq!(post(&batches, &body2, Some(&b64(&bad)), "11.20.0.1").0, 401);
    assert_eq!(post(&batches, &body2, None, "11.20.0.1").0, 401);
    assert_eq!(post(&batches, b"{not json", Some(&b64(&s2)), "11.20.0.1").0, 400);
    assert_eq!(post(&batches, &vec![b' '; 300 * 1024], Some(&b64(&s2)), "11.20.0.1").0, 413);
    let mut r = agent().get(&batches).call().expect("get");
    assert_eq!(r.status().as_u16(), 405);
    let _ = r.body_mut().read_to_string();
    assert_eq!(agent().get(&format!("{}/nope", hub.url)).call().expect("get").status().as_u16(), 404);
    let delist = format!("{}/v1/delist", hub.url);
    assert_eq!(post(&delist, b"{\"ip\":\"not an ip\"}", None, "11.30.0.1").0, 400);

    // The hub goes down: local state stays, the outage is counted once
    // however many fetches fail. (While the hub shuts down, one exchange
    // may fail and the next still succeed: a flap the client rightly
    // counts; what must not grow is the count once the hub is gone.)
    let before = communities[0].version();
    assert!(hub.term().success(), "graceful SIGTERM exit");
    wait_for("the outage noticed", 10, || matches!(clients[0].telemetry().status, HubStatus::Down { .. }));
    let down = clients[0].telemetry().outages;
    assert!(down >= 1);
    std::thread::sleep(Duration::from_secs(3));
    let t = clients[0].telemetry();
    assert_eq!(t.outages, down, "one outage, reported once however many fetches fail");
    assert!(matches!(t.status, HubStatus::Down { .. }));
    assert!(t.last_error.is_some());
    assert!(communities[0].listed(attacker, clock::now()).is_some(), "the list held survives the outage");

    // Back up on the same directory: state and sequence numbers survived,
    // so the old batch is still a replay, and clients recover.
    let hub = Hub::start(&dir.0, port);
    assert_eq!(post(&batches, &body, Some(&b64(&s)), "11.20.0.1").0, 409, "a replay after a restart");
    wait_for("the hub reachable again", 10, || matches!(clients[0].telemetry().status, HubStatus::Up { .. }));
    assert!(communities[0].version() >= before);
    // Recovery counts no outage of its own. (Not `== 1`: on a loaded box a
    // fetch can time out earlier in the test, e.g. while the hub reads the
    // 300 KiB body above, and that is an outage the client rightly counts;
    // `down` already includes it.)
    assert_eq!(clients[0].telemetry().outages, down, "recovery adds no outage");

    // A public delisting request removes the listing at once.
    let (code, text) = post(&delist, b"{\"ip\":\"203.0.113.50\"}", None, "11.30.0.1");
    assert_eq!(code, 202, "{text}");
    assert!(text.contains("\"was_listed\":true"), "{text}");
    wait_for("the delisting to reach the instances", 10, || communities[0].listed(attacker, clock::now()).is_none());

    let stop = Instant::now();
    for c in clients {
        c.stop();
    }
    assert!(stop.elapsed() < Duration::from_secs(3), "stop() returns promptly");
    drop(hub);
}

fn postlens_sig(s: &str) -> [u8; 64] {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.decode(s).expect("base64").try_into().expect("64 bytes")
}
