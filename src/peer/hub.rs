//! `postlens hub`: the HTTP face of [`Engine`]. `tiny_http` with a few
//! worker threads sharing one engine behind a mutex (request bodies are read
//! before it is taken); redb in `--dir` for the engine's snapshot (every
//! [`SNAPSHOT_SECS`] and at shutdown) and, written through on every accepted
//! batch, each key's last sequence number, so a crash cannot reopen a replay
//! window; the hub's own Ed25519 key in `--dir/hub.key`.
//!
//! Routes (every error is a 4xx with a one-line text body, never a panic):
//! - `POST /v1/batches`: a signed batch. 200, or 400 malformed, 401 bad or
//!   missing signature, 409 replay, 413 too large, 429 rate limited or key
//!   refused.
//! - `GET /v1/list` and `GET /v1/list?since=N`: the signed full list or the
//!   delta from version N (the full list if N is too old).
//! - `GET /v1/key`: the hub's public key, hex (pin it out of band).
//! - `POST /v1/delist` with `{"ip":"…"}`: a public delisting request. 202.
//! - `GET /healthz`: `{"status":"ok",…}` with counters.

use super::HubArgs;
use super::engine::{Engine, MAX_BATCH_BYTES, Ranges, Reject};
use super::identity::{Identity, KeyId};
use super::wire::{self, Addr, SIGNATURE_HEADER};
use crate::clock;
use crate::protect::net::Cidr;
use redb::{ReadableDatabase as _, ReadableTable as _, TableDefinition};
use std::io::Read as _;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Seconds between engine snapshots.
pub const SNAPSHOT_SECS: u64 = 60;
/// redb's page cache (its default is 1 GiB).
const DB_CACHE_BYTES: usize = 16 * 1024 * 1024;
/// Largest delisting request body.
const MAX_DELIST_BYTES: usize = 4096;
/// Request-handling threads.
const WORKERS: usize = 4;

const STATE: TableDefinition<&str, &[u8]> = TableDefinition::new("state");
const SEQS: TableDefinition<&[u8], u64> = TableDefinition::new("seqs");

/// The validated hub configuration.
struct HubConfig {
    dir: PathBuf,
    listen: SocketAddr,
    ranges: Ranges,
    trust_forwarded: bool,
    tick: Duration,
}

fn config(args: &HubArgs) -> Result<HubConfig, String> {
    let dir = args.dir.clone().ok_or("--dir is required")?;
    let listen = args.listen.parse().map_err(|e| format!("--listen {}: {e}", args.listen))?;
    let cidrs = |flag: &str, v: &[String]| -> Result<Vec<Cidr>, String> {
        if v.len() > super::engine::MAX_RANGES {
            return Err(format!("{flag}: at most {} ranges", super::engine::MAX_RANGES));
        }
        v.iter().map(|s| Cidr::parse(s).ok_or_else(|| format!("{flag} {s}: not an address or CIDR range"))).collect()
    };
    if args.min_key_age_secs < 0 {
        return Err("--min-key-age-secs must not be negative".into());
    }
    let ranges = Ranges {
        canaries: cidrs("--canary", &args.canary)?,
        allow: cidrs("--allow", &args.allow)?,
        min_key_age_secs: args.min_key_age_secs,
    };
    if args.tick_secs == 0 {
        return Err("--tick-secs must be at least 1".into());
    }
    Ok(HubConfig { dir, listen, ranges, trust_forwarded: args.trust_forwarded, tick: Duration::from_secs(args.tick_secs) })
}

/// A signed full list: version, body, base64 signature.
type SignedList = (u64, Arc<Vec<u8>>, String);

struct Hub {
    engine: Mutex<Engine>,
    identity: Identity,
    db: redb::Database,
    trust_forwarded: bool,
    /// The signed full list of one version: (version, body, signature).
    full: Mutex<Option<SignedList>>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Runs the hub; see [`super::hub_main`].
pub(super) fn run(args: &HubArgs) -> Result<(), (u8, String)> {
    let cfg = config(args).map_err(|e| (2, e))?;
    std::fs::create_dir_all(&cfg.dir).map_err(|e| (1, format!("{}: {e}", cfg.dir.display())))?;
    let identity = Identity::load_or_create(&cfg.dir.join("hub.key")).map_err(|e| (1, e.to_string()))?;
    let _ = std::fs::write(cfg.dir.join("hub.pub"), format!("{}\n", identity.id()));
    let db =
        redb::Builder::new().set_cache_size(DB_CACHE_BYTES).create(cfg.dir.join("hub.redb")).map_err(|e| (1, format!("hub.redb: {e}")))?;
    let engine = load(&db, cfg.ranges.clone()).map_err(|e| (1, format!("hub.redb: {e}")))?;
    let server = Arc::new(tiny_http::Server::http(cfg.listen).map_err(|e| (1, format!("{}: {e}", cfg.listen)))?);
    eprintln!("postlens hub: listening on {}, key {}", cfg.listen, identity.id());
    let hub = Arc::new(Hub { engine: Mutex::new(engine), identity, db, trust_forwarded: cfg.trust_forwarded, full: Mutex::new(None) });
    let stop = Arc::new(AtomicBool::new(false));
    watch_signals(Arc::clone(&stop), Arc::clone(&server));
    let workers: Vec<_> = (0..WORKERS)
        .map(|i| {
            let (hub, server, stop) = (Arc::clone(&hub), Arc::clone(&server), Arc::clone(&stop));
            std::thread::Builder::new().name(format!("hub-{i}")).spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    match server.recv_timeout(Duration::from_millis(250)) {
                        Ok(Some(rq)) => hub.handle(rq),
                        Ok(None) => {}
                        Err(_) => std::thread::sleep(Duration::from_millis(50)),
                    }
                }
            })
        })
        .collect::<Result<_, _>>()
        .map_err(|e| (1, format!("no worker thread: {e}")))?;
    let (mut last_snapshot, mut last_tick) = (Instant::now(), Instant::now());
    while !stop.load(Ordering::Relaxed) {
        std::thread::sleep(Duration::from_millis(100).min(cfg.tick));
        if last_tick.elapsed() >= cfg.tick {
            last_tick = Instant::now();
            lock(&hub.engine).tick(clock::now());
        }
        if last_snapshot.elapsed() >= Duration::from_secs(SNAPSHOT_SECS) {
            last_snapshot = Instant::now();
            if let Err(e) = hub.save() {
                eprintln!("postlens hub: snapshot failed: {e}");
            }
        }
    }
    for w in workers {
        let _ = w.join();
    }
    hub.save().map_err(|e| (1, format!("final snapshot: {e}")))?;
    eprintln!("postlens hub: stopped");
    Ok(())
}

fn load(db: &redb::Database, ranges: Ranges) -> Result<Engine, String> {
    let tx = db.begin_read().map_err(|e| e.to_string())?;
    let mut engine = match tx.open_table(STATE) {
        Ok(t) => match t.get("engine").map_err(|e| e.to_string())? {
            Some(v) => Engine::restore(v.value(), ranges).map_err(|e| format!("engine snapshot: {e}"))?,
            None => Engine::new(ranges),
        },
        Err(redb::TableError::TableDoesNotExist(_)) => Engine::new(ranges),
        Err(e) => return Err(e.to_string()),
    };
    match tx.open_table(SEQS) {
        Ok(t) => {
            for row in t.iter().map_err(|e| e.to_string())? {
                let (k, v) = row.map_err(|e| e.to_string())?;
                if let Ok(k) = <[u8; 32]>::try_from(k.value()) {
                    engine.note_seq(KeyId(k), v.value());
                }
            }
        }
        Err(redb::TableError::TableDoesNotExist(_)) => {}
        Err(e) => return Err(e.to_string()),
    }
    Ok(engine)
}

/// Waits for SIGTERM or SIGINT on a small runtime of its own, then stops
/// the workers and the main loop.
fn watch_signals(stop: Arc<AtomicBool>, server: Arc<tiny_http::Server>) {
    let r = std::thread::Builder::new().name("hub-signals".into()).spawn(move || {
        let Ok(rt) = tokio::runtime::Builder::new_current_thread().enable_all().build() else { return };
        rt.block_on(async {
            let Ok(mut term) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) else { return };
            tokio::select! {
                _ = term.recv() => {}
                _ = tokio::signal::ctrl_c() => {}
            }
        });
        stop.store(true, Ordering::Relaxed);
        server.unblock();
    });
    if let Err(e) = r {
        eprintln!("postlens hub: no signal thread ({e}); stop it with SIGKILL");
    }
}

/// A response: status and body.
struct Reply {
    status: u16,
    body: Arc<Vec<u8>>,
    json: bool,
    signature: Option<String>,
}

impl Reply {
    fn text(status: u16, s: impl Into<String>) -> Reply {
        let mut s: String = s.into();
        s.push('\n');
        Reply { status, body: Arc::new(s.into_bytes()), json: false, signature: None }
    }

    fn json(status: u16, v: &serde_json::Value) -> Reply {
        Reply { status, body: Arc::new(v.to_string().into_bytes()), json: true, signature: None }
    }
}

fn reject_status(r: &Reject) -> u16 {
    match r {
        Reject::TooLarge => 413,
        Reject::BadSignature => 401,
        Reject::Replay(_) => 409,
        Reject::RateLimited | Reject::KeyRefused(_) => 429,
        _ => 400,
    }
}

impl Hub {
    fn handle(&self, mut rq: tiny_http::Request) {
        let reply = self.route(&mut rq);
        let mut resp = tiny_http::Response::from_data(reply.body.as_slice()).with_status_code(reply.status);
        let ctype: &[u8] = if reply.json { b"application/json" } else { b"text/plain; charset=utf-8" };
        if let Ok(h) = tiny_http::Header::from_bytes(&b"Content-Type"[..], ctype) {
            resp.add_header(h);
        }
        if let Some(h) = reply.signature.and_then(|s| tiny_http::Header::from_bytes(SIGNATURE_HEADER.as_bytes(), s.as_bytes()).ok()) {
            resp.add_header(h);
        }
        let _ = rq.respond(resp);
    }

    fn route(&self, rq: &mut tiny_http::Request) -> Reply {
        let url = rq.url().to_owned();
        let (path, query) = url.split_once('?').unwrap_or((&url, ""));
        let get = *rq.method() == tiny_http::Method::Get;
        let post = *rq.method() == tiny_http::Method::Post;
        match path {
            "/v1/batches" if post => self.batch(rq),
            "/v1/list" if get => self.list(query),
            "/v1/key" if get => Reply::text(200, self.identity.id().hex()),
            "/v1/delist" if post => self.delist(rq),
            "/healthz" if get => {
                let e = lock(&self.engine);
                Reply::json(
                    200,
                    &serde_json::json!({"status": "ok", "key": self.identity.id().hex(), "version": e.version(), "listed": e.listed_len(), "reporters": e.reporters(), "stats": e.stats()}),
                )
            }
            "/v1/batches" | "/v1/list" | "/v1/key" | "/v1/delist" | "/healthz" => Reply::text(405, "method not allowed"),
            _ => Reply::text(404, "not found"),
        }
    }

    /// The submitter's address: the connection's, or with
    /// `--trust-forwarded` and a loopback connection, the last address of
    /// `X-Forwarded-For` (the one the local proxy added).
    fn client_ip(&self, rq: &tiny_http::Request) -> Option<IpAddr> {
        let peer = rq.remote_addr()?.ip();
        if self.trust_forwarded && peer.is_loopback() {
            let fwd = rq.headers().iter().find(|h| h.field.equiv(super::client::FORWARDED_HEADER));
            if let Some(ip) = fwd.and_then(|h| h.value.as_str().rsplit(',').next()).and_then(|s| s.trim().parse().ok()) {
                return Some(ip);
            }
        }
        Some(peer)
    }

    fn batch(&self, rq: &mut tiny_http::Request) -> Reply {
        let Some(from) = self.client_ip(rq) else { return Reply::text(400, "no client address") };
        let sig = rq.headers().iter().find(|h| h.field.equiv(SIGNATURE_HEADER)).and_then(|h| wire::unb64(h.value.as_str()));
        let body = match read_body(rq, MAX_BATCH_BYTES) {
            Ok(b) => b,
            Err(r) => return r,
        };
        let Some(sig) = sig else { return Reply::text(401, format!("missing or malformed {SIGNATURE_HEADER} header")) };
        let mut e = lock(&self.engine);
        match e.submit(&body, &sig, from, clock::now()) {
            Ok((key, seq, used)) => {
                // Written through before the reply, so a crash cannot
                // forget a sequence number the client saw accepted.
                if let Err(err) = self.write_seq(key, seq) {
                    eprintln!("postlens hub: sequence number not saved: {err}");
                }
                Reply::json(200, &serde_json::json!({"accepted": used}))
            }
            Err(r) => Reply::text(reject_status(&r), r.to_string()),
        }
    }

    fn write_seq(&self, key: KeyId, seq: u64) -> Result<(), redb::Error> {
        let tx = self.db.begin_write()?;
        tx.open_table(SEQS)?.insert(&key.0[..], seq)?;
        tx.commit()?;
        Ok(())
    }

    fn list(&self, query: &str) -> Reply {
        let mut since = None;
        for kv in query.split('&').filter(|s| !s.is_empty()) {
            match kv.split_once('=') {
                Some(("since", v)) => match v.parse::<u64>() {
                    Ok(v) => since = Some(v),
                    Err(_) => return Reply::text(400, "since must be a version number"),
                },
                _ => return Reply::text(400, format!("unknown parameter: {kv}")),
            }
        }
        let now = clock::now();
        let list = lock(&self.engine).list(since, now);
        if list.since.is_none() {
            let mut cache = lock(&self.full);
            if let Some((v, body, sig)) = cache.as_ref()
                && *v == list.version
            {
                return Reply { status: 200, body: Arc::clone(body), json: true, signature: Some(sig.clone()) };
            }
            let body = Arc::new(wire::to_bytes(&list));
            let sig = wire::b64(&self.identity.sign(&body));
            *cache = Some((list.version, Arc::clone(&body), sig.clone()));
            return Reply { status: 200, body, json: true, signature: Some(sig) };
        }
        let body = wire::to_bytes(&list);
        let sig = wire::b64(&self.identity.sign(&body));
        Reply { status: 200, body: Arc::new(body), json: true, signature: Some(sig) }
    }

    fn delist(&self, rq: &mut tiny_http::Request) -> Reply {
        #[derive(serde::Deserialize)]
        struct Req {
            ip: String,
        }
        let Some(from) = self.client_ip(rq) else { return Reply::text(400, "no client address") };
        let body = match read_body(rq, MAX_DELIST_BYTES) {
            Ok(b) => b,
            Err(r) => return r,
        };
        let Ok(req) = serde_json::from_slice::<Req>(&body) else { return Reply::text(400, "expected {\"ip\":\"…\"}") };
        let Some(a) = Addr::parse(&req.ip) else { return Reply::text(400, "ip is not an address") };
        match lock(&self.engine).delist(a, from, clock::now()) {
            Ok(was) => Reply::json(
                202,
                &serde_json::json!({"ip": a, "was_listed": was, "rule": "relisted only on reports made after this request"}),
            ),
            Err(r) => Reply::text(reject_status(&r), r.to_string()),
        }
    }

    fn save(&self) -> Result<(), redb::Error> {
        let snap = lock(&self.engine).snapshot().map_err(|e| redb::Error::Corrupted(e.to_string()))?;
        let tx = self.db.begin_write()?;
        tx.open_table(STATE)?.insert("engine", &snap[..])?;
        tx.commit()?;
        Ok(())
    }
}

/// Reads a body of at most `max` bytes; larger is 413 without reading on.
fn read_body(rq: &mut tiny_http::Request, max: usize) -> Result<Vec<u8>, Reply> {
    if rq.body_length().is_some_and(|n| n > max) {
        return Err(Reply::text(413, format!("body larger than {max} bytes")));
    }
    let mut body = Vec::new();
    let limit = u64::try_from(max).unwrap_or(u64::MAX) + 1;
    rq.as_reader().take(limit).read_to_end(&mut body).map_err(|e| Reply::text(400, format!("body: {e}")))?;
    if body.len() > max {
        return Err(Reply::text(413, format!("body larger than {max} bytes")));
    }
    Ok(body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_flags_are_code_2() {
        let a = HubArgs { dir: None, ..HubArgs::default() };
        assert!(config(&a).is_err());
        let a = HubArgs { dir: Some("/tmp/x".into()), listen: "nonsense".into(), tick_secs: 60, ..HubArgs::default() };
        assert!(config(&a).is_err());
        let a = HubArgs {
            dir: Some("/tmp/x".into()),
            listen: "127.0.0.1:1".into(),
            canary: vec!["300.1.1.1".into()],
            tick_secs: 60,
            ..HubArgs::default()
        };
        assert!(config(&a).err().is_some_and(|e| e.contains("--canary")));
        let a = HubArgs {
            dir: Some("/tmp/x".into()),
            listen: "127.0.0.1:1".into(),
            canary: vec!["192.0.2.0/24".into()],
            tick_secs: 60,
            ..HubArgs::default()
        };
        assert!(config(&a).is_ok());
    }
}
