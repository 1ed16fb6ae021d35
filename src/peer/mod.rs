//! The peer network: signed brute-force signals shared between
//! installations, and `postlens hub`, the service that scores them into a
//! signed community blocklist. Local protection never depends on it: the
//! policy path reads [`Community`] from memory, and a hub that is down only
//! means an older list.
//!
//! Pieces: [`Identity`] (an Ed25519 key per installation, no e-mail);
//! [`Aggregator`] (failures → per-bucket signals → signed batches, with
//! nothing that names a user, password, domain, successful-login address or
//! the server itself); the client thread ([`spawn`]) that sends batches and
//! fetches the list; [`Community`] (the verified list); [`Engine`] (the
//! hub's scoring, shared by the HTTP hub and the simulator); the hub server.
//!
//! # The listing rule
//!
//! Every instance that shares sends, every 10 minutes, one signal per
//! address (IPv4, or IPv6 /64) and protocol that failed to log in: the
//! failure count, how many distinct passwords were tried (1, 2-3, 4-9, 10+,
//! or unknown when known from logs only) and how many distinct logins. A
//! signal's strength is 1 when it shows two or more passwords or logins,
//! 0.5 for repeated failures with the passwords unknown, and 0.25 for a
//! single password on a single login (what a client with a stale password
//! looks like). A reporter's weight is 0 for the first 24 hours of its key,
//! 0 for good once it reports a canary (a decoy address no honest server
//! ever sees) or an allowlisted address, and otherwise its trust: 0.25 for
//! a new key, rising by 0.25 (to at most 1) each time an address it
//! reported gets listed. A report counts weight × strength, halving every 6
//! hours from the end of its bucket, and is forgotten after 48 hours; each
//! key's latest report per address counts once, and reporters in the same
//! network (the submitting address's /24, or /48 for IPv6) count as one,
//! with the best of their reports. An address is listed when the sum over
//! networks reaches 1.8 with at least 3 distinct networks. A listing lasts
//! 24 hours and is renewed while the rule still holds; it lapses otherwise.
//! Anyone may ask for an address to be delisted: the listing goes at once,
//! and only reports made after the request can list it again. At most 4 new
//! keys are accepted per network per day, and each key may send about one
//! batch per 100 seconds. So no single network, no key younger than a day,
//! and no group of new keys in fewer than 8 networks can list an address;
//! a group of 3 or more keys in 3 networks that have earned full trust
//! can, which is why trust is only earned by reporting addresses that
//! others report too, and lost for good on a canary.

use clap::Args;

mod client;
mod community;
mod engine;
mod hub;
mod identity;
pub mod service;
mod signals;
mod wire;

pub use client::{Choice, ClientConfig, ClientHandle, FORWARDED_HEADER, HubStatus, Received, SentBatch, Telemetry, spawn};
pub use community::{Community, Listing, MAX_COMMUNITY_ENTRIES};
pub use engine::{Engine, EngineStats, Net, Ranges, Reject};
pub use identity::{Identity, IdentityError, KeyId};
pub use signals::{Aggregator, AggregatorStats};
pub use wire::{Addr, BUCKET_SECS, Batch, Entry, List, Passwords, Proto, SIGNATURE_HEADER, Signal};

/// The limits of the pieces, for the README and the UI.
pub mod limits {
    pub use super::client::{MAX_LIST_BYTES, MAX_PENDING_SIGNALS, TELEMETRY_BATCHES};
    pub use super::engine::{
        DELIST_PER_NETWORK_PER_DAY, EVIDENCE_MAX_AGE_SECS, HALF_LIFE_SECS, LIST_SCORE, LISTING_TTL_SECS, MAX_BATCH_BYTES, MAX_DELTAS,
        MAX_LISTED, MAX_NETWORKS_TRACKED, MAX_RANGES, MAX_RECENT_IDS, MAX_REPORTERS, MAX_REPORTS_PER_ADDR, MAX_TRACKED, MIN_KEY_AGE_SECS,
        MIN_NETWORKS, NEW_KEYS_PER_NETWORK_PER_DAY, RATE_BURST, RATE_REFILL_SECS, REPLAY_WINDOW_SECS, TRUST_START, TRUST_STEP,
    };
    pub use super::signals::{
        DRAIN_GRACE_SECS, MAX_CELLS_PER_BUCKET, MAX_LOGINS_COUNTED, MAX_OWN_ADDRESSES, MAX_PASSWORDS_COUNTED, MAX_SIGNALS_PER_BATCH,
        MAX_SUCCESS_ADDRESSES, MAX_UNDRAINED_BUCKETS, OPEN_BUCKETS, SUCCESS_MEMORY_SECS,
    };
}

/// `postlens hub`: the central service.
#[derive(Args, Debug, Clone)]
pub struct HubArgs {
    /// Directory holding the hub's database (hub.redb) and key (hub.key;
    /// the public half also in hub.pub).
    #[arg(long, env = "POSTLENS_HUB_DIR", value_name = "DIR")]
    pub dir: Option<std::path::PathBuf>,
    /// Address to listen on.
    #[arg(long, env = "POSTLENS_HUB_LISTEN", value_name = "ADDR", default_value = "127.0.0.1:8090")]
    pub listen: String,
    /// A canary address or range (repeatable): decoys no honest instance
    /// ever sees a login from; a key that reports one loses all weight.
    #[arg(long, value_name = "CIDR")]
    pub canary: Vec<String>,
    /// An address or range never listed (repeatable); a key that reports
    /// one loses all weight, so list only addresses that never fail logins.
    #[arg(long, value_name = "CIDR")]
    pub allow: Vec<String>,
    /// Behind a reverse proxy on the same host: take the submitter's
    /// address (which decides its network) from the last X-Forwarded-For
    /// entry, on loopback connections only. Tests use it to play several
    /// networks from loopback.
    #[arg(long)]
    pub trust_forwarded: bool,
    /// Seconds a key must exist before its reports count. The published
    /// rule is the default; tests and private hubs may lower it.
    #[arg(long, value_name = "SECS", default_value_t = engine::MIN_KEY_AGE_SECS)]
    pub min_key_age_secs: i64,
    /// Seconds between scoring rounds.
    #[arg(long, value_name = "SECS", default_value_t = 60)]
    pub tick_secs: u64,
}

impl Default for HubArgs {
    fn default() -> Self {
        HubArgs {
            dir: None,
            listen: "127.0.0.1:8090".into(),
            canary: Vec::new(),
            allow: Vec::new(),
            trust_forwarded: false,
            min_key_age_secs: engine::MIN_KEY_AGE_SECS,
            tick_secs: 60,
        }
    }
}

/// Runs the hub until SIGTERM/SIGINT. `Err((code, message))`: 2 for a bad
/// flag, 1 for a runtime failure.
pub fn hub_main(args: &HubArgs) -> Result<(), (u8, String)> {
    hub::run(args)
}
