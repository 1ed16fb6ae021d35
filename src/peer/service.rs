//! The peer network inside `postlens run`: the aggregator and community
//! list live for the whole run (protection feeds and reads them); the
//! client thread runs while the settings say `consume` or `share` and a
//! hub is configured, and is started, stopped or switched when the
//! choice changes ([`PeerService::apply`], called every minute).

use super::{Aggregator, Choice, ClientConfig, ClientHandle, Community, Identity, KeyId, Telemetry};
use crate::settings::PeerChoice;
use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

/// Where the hub is and how to talk to it (flags of `postlens run`).
#[derive(Clone, Debug, Default)]
pub struct HubLink {
    /// `None`: no hub configured; the choice in the settings then waits.
    pub url: Option<String>,
    pub key: Option<KeyId>,
    /// Lab and test settings (hidden flags): intervals and the forwarded
    /// network address.
    pub send_every: Option<Duration>,
    pub fetch_every: Option<Duration>,
    pub forwarded_for: Option<IpAddr>,
}

/// What the telemetry page shows.
#[derive(Clone, Debug, serde::Serialize)]
pub struct PeerView {
    pub choice: PeerChoice,
    /// The configured hub, if any.
    pub hub: Option<String>,
    /// Why the client is not running although the choice asks for it.
    pub problem: Option<String>,
    pub community_entries: usize,
    pub community_version: u64,
    pub telemetry: Option<Telemetry>,
}

struct Running {
    choice: PeerChoice,
    handle: Option<ClientHandle>,
    problem: Option<String>,
}

/// The run's peer-network state, shared by the daemon, protection and the UI.
pub struct PeerService {
    link: HubLink,
    key_file: PathBuf,
    pub aggregator: Arc<Mutex<Aggregator>>,
    pub community: Arc<Community>,
    running: Mutex<Running>,
}

impl std::fmt::Debug for PeerService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PeerService").field("hub", &self.link.url).finish_non_exhaustive()
    }
}

impl PeerService {
    pub fn new(link: HubLink, workspace: &std::path::Path) -> PeerService {
        PeerService {
            link,
            key_file: workspace.join("peer.key"),
            aggregator: Arc::new(Mutex::new(Aggregator::new())),
            community: Arc::new(Community::new()),
            running: Mutex::new(Running { choice: PeerChoice::Off, handle: None, problem: None }),
        }
    }

    /// Starts, stops or switches the client to match `choice`; `own` are the
    /// server's addresses, never reported.
    pub fn apply(&self, choice: PeerChoice, own: &[IpAddr]) {
        self.aggregator.lock().unwrap_or_else(PoisonError::into_inner).set_own(own);
        let mut r = self.running.lock().unwrap_or_else(PoisonError::into_inner);
        if r.choice == choice && (r.handle.is_some() || r.problem.is_some() || choice == PeerChoice::Off) {
            return;
        }
        if let Some(h) = r.handle.take() {
            h.stop();
        }
        r.choice = choice;
        r.problem = None;
        let mode = match choice {
            PeerChoice::Off => return,
            PeerChoice::Consume => Choice::Consume,
            PeerChoice::Share => Choice::Share,
        };
        let (Some(url), Some(key)) = (&self.link.url, self.link.key) else {
            r.problem = Some("no hub is configured (--peer-hub and --peer-hub-key)".into());
            return;
        };
        let identity = match Identity::load_or_create(&self.key_file) {
            Ok(i) => Arc::new(i),
            Err(e) => {
                let m = format!("the installation key {} could not be read or made: {e}", self.key_file.display());
                eprintln!("postlens: peer network: {m}");
                r.problem = Some(m);
                return;
            }
        };
        let mut cfg = ClientConfig::new(url, key, mode, identity);
        if let Some(d) = self.link.send_every {
            cfg.send_every = d;
        }
        if let Some(d) = self.link.fetch_every {
            cfg.fetch_every = d;
        }
        cfg.forwarded_for = self.link.forwarded_for;
        eprintln!("postlens: peer network: {} with {url}", if mode == Choice::Share { "sharing" } else { "consuming" });
        r.handle = Some(super::spawn(cfg, self.aggregator.clone(), self.community.clone()));
    }

    pub fn view(&self) -> PeerView {
        let r = self.running.lock().unwrap_or_else(PoisonError::into_inner);
        PeerView {
            choice: r.choice,
            hub: self.link.url.clone(),
            problem: r.problem.clone(),
            community_entries: self.community.len(),
            community_version: self.community.version(),
            telemetry: r.handle.as_ref().map(ClientHandle::telemetry),
        }
    }

    /// Stops the client (shutdown).
    pub fn stop(&self) {
        if let Some(h) = self.running.lock().unwrap_or_else(PoisonError::into_inner).handle.take() {
            h.stop();
        }
    }
}
