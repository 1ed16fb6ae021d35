//! The client thread: sends signed batches to the hub (when sharing) and
//! fetches the hub-signed community list (full first, then deltas),
//! verified against the pinned hub key before it touches [`Community`].
//!
//! The hub is never in the login path: the policy server reads
//! [`Community`] from memory, and a hub that is down only means an older
//! list. An outage is logged once when it starts and once when it ends, and
//! the telemetry says so. Memory is bounded: at most
//! [`MAX_PENDING_SIGNALS`] signals wait for a hub that is down, the last
//! [`TELEMETRY_BATCHES`] batches are kept for the telemetry page, and list
//! bodies are read up to [`MAX_LIST_BYTES`].

use super::community::Community;
use super::identity::{Identity, KeyId};
use super::signals::{Aggregator, AggregatorStats};
use super::wire::{self, List, SIGNATURE_HEADER, Signal};
use crate::clock::{self, Timestamp};
use serde::Serialize;
use std::collections::VecDeque;
use std::net::IpAddr;
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

/// Batches kept, exactly as sent, for the telemetry page.
pub const TELEMETRY_BATCHES: usize = 20;
/// Signals kept for a hub that is down; beyond this the oldest go.
pub const MAX_PENDING_SIGNALS: usize = super::signals::MAX_SIGNALS_PER_BATCH;
/// Largest list body read: the hub lists at most
/// [`MAX_LISTED`](super::engine::MAX_LISTED) entries of ~80 bytes.
pub const MAX_LIST_BYTES: u64 = 16 * 1024 * 1024;
/// Header a hub started with `--trust-forwarded` reads the submitter's
/// address from, when the connection comes from loopback (a local proxy).
pub const FORWARDED_HEADER: &str = "X-Forwarded-For";

/// What the installation chose to do with the peer network (`off` means no
/// client at all).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Choice {
    /// Fetch the community list only.
    Consume,
    /// Fetch the list and send signals.
    Share,
}

/// The client's settings.
#[derive(Clone, Debug)]
pub struct ClientConfig {
    /// Base URL, e.g. `https://hub.postlens.org` (no trailing slash needed).
    pub hub_url: String,
    /// The hub's public key: lists signed by any other key are refused.
    pub hub_key: KeyId,
    pub choice: Choice,
    pub identity: Arc<Identity>,
    /// How often completed buckets are sent (10 minutes).
    pub send_every: Duration,
    /// How often the list is fetched (5 minutes).
    pub fetch_every: Duration,
    /// Deadline of one HTTP exchange.
    pub timeout: Duration,
    /// Sent as [`FORWARDED_HEADER`]: for an instance behind a proxy on the
    /// hub's host, and for tests that play several networks on loopback.
    /// Only a hub started with `--trust-forwarded` reads it, and only from
    /// loopback connections.
    pub forwarded_for: Option<IpAddr>,
}

impl ClientConfig {
    pub fn new(hub_url: &str, hub_key: KeyId, choice: Choice, identity: Arc<Identity>) -> ClientConfig {
        ClientConfig {
            hub_url: hub_url.trim_end_matches('/').to_owned(),
            hub_key,
            choice,
            identity,
            send_every: Duration::from_mins(10),
            fetch_every: Duration::from_mins(5),
            timeout: Duration::from_secs(10),
            forwarded_for: None,
        }
    }
}

/// The hub as last seen.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "state", rename_all = "lowercase")]
pub enum HubStatus {
    /// No exchange yet.
    Unknown,
    Up {
        since: Timestamp,
    },
    /// Unreachable or refusing since `since`; local protection continues.
    Down {
        since: Timestamp,
    },
}

/// One batch as sent.
#[derive(Clone, Debug, Serialize)]
pub struct SentBatch {
    pub at: Timestamp,
    pub seq: u64,
    pub signals: usize,
    /// The body, byte for byte.
    pub json: String,
    /// `accepted`, or the hub's or the network's error.
    pub outcome: String,
}

/// The last list received.
#[derive(Clone, Copy, Debug, Serialize)]
pub struct Received {
    pub at: Timestamp,
    pub version: u64,
    pub delta: bool,
    /// Entries in that list or delta.
    pub entries: usize,
    /// Entries held afterwards.
    pub held: usize,
    pub bytes: usize,
}

/// What the telemetry page shows.
#[derive(Clone, Debug, Serialize)]
pub struct Telemetry {
    pub choice: Choice,
    pub key: String,
    pub hub: String,
    pub status: HubStatus,
    pub last_error: Option<String>,
    /// Newest last; at most [`TELEMETRY_BATCHES`].
    pub sent: VecDeque<SentBatch>,
    pub received: Option<Received>,
    pub batches_sent: u64,
    pub lists_received: u64,
    /// Outages seen (each logged once).
    pub outages: u64,
    pub pending_signals: usize,
    pub dropped_pending: u64,
    pub aggregator: AggregatorStats,
}

/// A running client; [`ClientHandle::stop`] ends it.
pub struct ClientHandle {
    wake: Arc<(Mutex<bool>, Condvar)>,
    telemetry: Arc<Mutex<Telemetry>>,
    thread: Option<JoinHandle<()>>,
}

impl ClientHandle {
    pub fn telemetry(&self) -> Telemetry {
        lock(&self.telemetry).clone()
    }

    /// Stops the thread and waits for it: at once between exchanges, and
    /// within the configured timeout during one.
    pub fn stop(mut self) {
        self.halt();
    }

    fn halt(&mut self) {
        *lock(&self.wake.0) = true;
        self.wake.1.notify_all();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for ClientHandle {
    fn drop(&mut self) {
        self.halt();
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Starts the client thread.
pub fn spawn(cfg: ClientConfig, agg: Arc<Mutex<Aggregator>>, community: Arc<Community>) -> ClientHandle {
    let telemetry = Arc::new(Mutex::new(Telemetry {
        choice: cfg.choice,
        key: cfg.identity.id().hex(),
        hub: cfg.hub_url.clone(),
        status: HubStatus::Unknown,
        last_error: None,
        sent: VecDeque::new(),
        received: None,
        batches_sent: 0,
        lists_received: 0,
        outages: 0,
        pending_signals: 0,
        dropped_pending: 0,
        aggregator: AggregatorStats::default(),
    }));
    let wake = Arc::new((Mutex::new(false), Condvar::new()));
    let agent: ureq::Agent = ureq::Agent::config_builder().timeout_global(Some(cfg.timeout)).http_status_as_error(false).build().into();
    let mut c = Client { cfg, agent, agg, community, telemetry: Arc::clone(&telemetry), pending: VecDeque::new() };
    let w = Arc::clone(&wake);
    let thread = std::thread::Builder::new()
        .name("peer-client".into())
        .spawn(move || c.run(&w))
        .map_err(|e| eprintln!("postlens: peer network: no client thread: {e}"))
        .ok();
    ClientHandle { wake, telemetry, thread }
}

struct Client {
    cfg: ClientConfig,
    agent: ureq::Agent,
    agg: Arc<Mutex<Aggregator>>,
    community: Arc<Community>,
    telemetry: Arc<Mutex<Telemetry>>,
    /// Invariant: at most [`MAX_PENDING_SIGNALS`].
    pending: VecDeque<Signal>,
}

/// Why an exchange with the hub failed.
#[derive(Debug, thiserror::Error)]
enum HubError {
    #[error("{0}")]
    Net(#[from] ureq::Error),
    #[error("HTTP {0}: {1}")]
    Status(u16, String),
    #[error("the list's signature does not verify with the pinned hub key")]
    Signature,
    #[error("malformed list: {0}")]
    Malformed(String),
}

impl Client {
    fn run(&mut self, wake: &(Mutex<bool>, Condvar)) {
        let start = std::time::Instant::now();
        let mut next_fetch = Duration::ZERO;
        let mut next_send = self.cfg.send_every.min(Duration::from_mins(1));
        loop {
            let elapsed = start.elapsed();
            if elapsed >= next_fetch {
                let r = self.fetch(clock::now());
                self.record(r);
                next_fetch = elapsed + self.cfg.fetch_every;
            }
            if self.cfg.choice == Choice::Share && elapsed >= next_send {
                if let Some(r) = self.send(clock::now()) {
                    self.record(r);
                }
                next_send = elapsed + self.cfg.send_every;
            }
            let wait =
                next_fetch.min(if self.cfg.choice == Choice::Share { next_send } else { Duration::MAX }).saturating_sub(start.elapsed());
            let g = lock(&wake.0);
            let (g, _) = wake.1.wait_timeout_while(g, wait, |stop| !*stop).unwrap_or_else(std::sync::PoisonError::into_inner);
            if *g {
                return;
            }
        }
    }

    /// Updates the hub status; logs only the transitions.
    fn record(&self, r: Result<(), HubError>) {
        let now = clock::now();
        let mut t = lock(&self.telemetry);
        match r {
            Ok(()) => {
                if let HubStatus::Down { since } = t.status {
                    eprintln!("postlens: peer network: hub {} reachable again (down since {})", self.cfg.hub_url, since.rfc3339());
                }
                if !matches!(t.status, HubStatus::Up { .. }) {
                    t.status = HubStatus::Up { since: now };
                }
            }
            Err(e) => {
                if !matches!(t.status, HubStatus::Down { .. }) {
                    eprintln!("postlens: peer network: hub {} unavailable, local protection continues: {e}", self.cfg.hub_url);
                    t.status = HubStatus::Down { since: now };
                    t.outages += 1;
                }
                t.last_error = Some(e.to_string());
            }
        }
    }

    /// Fetches the list: a delta from the version held, or the full list.
    fn fetch(&self, now: Timestamp) -> Result<(), HubError> {
        let held = self.community.version();
        let list = self.get_list(if held == 0 { None } else { Some(held) })?;
        let (list, bytes) = if self.community.apply(&list.0, now) {
            list
        } else {
            let full = self.get_list(None)?;
            self.community.apply(&full.0, now);
            full
        };
        let mut t = lock(&self.telemetry);
        t.lists_received += 1;
        t.received = Some(Received {
            at: now,
            version: list.version,
            delta: list.since.is_some(),
            entries: list.added.len() + list.removed.len(),
            held: self.community.len(),
            bytes,
        });
        Ok(())
    }

    fn get_list(&self, since: Option<u64>) -> Result<(List, usize), HubError> {
        let url = match since {
            Some(v) => format!("{}/v1/list?since={v}", self.cfg.hub_url),
            None => format!("{}/v1/list", self.cfg.hub_url),
        };
        let mut resp = self.agent.get(&url).call()?;
        let status = resp.status().as_u16();
        let sig = resp.headers().get(SIGNATURE_HEADER).and_then(|v| v.to_str().ok()).and_then(wire::unb64);
        let body = resp.body_mut().with_config().limit(MAX_LIST_BYTES).read_to_vec()?;
        if status != 200 {
            return Err(HubError::Status(status, String::from_utf8_lossy(&body[..body.len().min(200)]).into_owned()));
        }
        if !sig.is_some_and(|s| self.cfg.hub_key.verify(&body, &s)) {
            return Err(HubError::Signature);
        }
        let list: List = serde_json::from_slice(&body).map_err(|e| HubError::Malformed(e.to_string()))?;
        if list.v != wire::FORMAT || list.since.is_some_and(|s| Some(s) != since) {
            return Err(HubError::Malformed(format!("format {} or base {:?} not asked for", list.v, list.since)));
        }
        Ok((list, body.len()))
    }

    /// Sends completed buckets and what waited; `None` if there was nothing.
    fn send(&mut self, now: Timestamp) -> Option<Result<(), HubError>> {
        let (mut signals, stats) = {
            let mut a = lock(&self.agg);
            (a.drain_signals(now).unwrap_or_default(), a.stats())
        };
        lock(&self.telemetry).aggregator = stats;
        if signals.is_empty() && self.pending.is_empty() {
            return None;
        }
        let mut all: Vec<Signal> = self.pending.drain(..).collect();
        all.append(&mut signals);
        let (batch, bytes, sig) = lock(&self.agg).seal(all, now, &self.cfg.identity);
        let mut req = self
            .agent
            .post(format!("{}/v1/batches", self.cfg.hub_url))
            .header(SIGNATURE_HEADER, wire::b64(&sig))
            .header("Content-Type", "application/json");
        if let Some(ip) = self.cfg.forwarded_for {
            req = req.header(FORWARDED_HEADER, ip.to_string());
        }
        let r = match req.send(&bytes[..]) {
            Ok(mut resp) => {
                let status = resp.status().as_u16();
                let text = resp.body_mut().with_config().limit(4096).read_to_string().unwrap_or_default();
                match status {
                    200 => Ok(()),
                    // Refused for what it is: resending would not help.
                    400..=499 => Err(HubError::Status(status, text)),
                    _ => {
                        self.keep(&batch.signals);
                        Err(HubError::Status(status, text))
                    }
                }
            }
            Err(e) => {
                self.keep(&batch.signals);
                Err(HubError::Net(e))
            }
        };
        let mut t = lock(&self.telemetry);
        t.batches_sent += u64::from(r.is_ok());
        if t.sent.len() >= TELEMETRY_BATCHES {
            t.sent.pop_front();
        }
        t.sent.push_back(SentBatch {
            at: now,
            seq: batch.seq,
            signals: batch.signals.len(),
            json: String::from_utf8(bytes).unwrap_or_default(),
            outcome: r.as_ref().map_or_else(ToString::to_string, |()| "accepted".into()),
        });
        t.pending_signals = self.pending.len();
        Some(r)
    }

    /// Keeps signals for the next attempt, dropping the oldest beyond
    /// [`MAX_PENDING_SIGNALS`].
    fn keep(&mut self, signals: &[Signal]) {
        self.pending.extend(signals.iter().cloned());
        let over = self.pending.len().saturating_sub(MAX_PENDING_SIGNALS);
        if over > 0 {
            self.pending.drain(..over);
            lock(&self.telemetry).dropped_pending += over as u64;
        }
    }
}
