//! The peer network: signed brute-force signals shared between
//! installations, and `postlens hub`, the service that scores them into a
//! signed community blocklist. Local protection never depends on it.

use clap::Args;

/// `postlens hub`: the central service.
#[derive(Args, Debug, Clone, Default)]
pub struct HubArgs {
    /// Directory holding the hub's database and key.
    #[arg(long, env = "POSTLENS_HUB_DIR", value_name = "DIR")]
    pub dir: Option<std::path::PathBuf>,
    /// Address to listen on.
    #[arg(long, env = "POSTLENS_HUB_LISTEN", value_name = "ADDR", default_value = "127.0.0.1:8090")]
    pub listen: String,
}

/// Runs the hub until SIGTERM/SIGINT. `Err((code, message))`: 2 for a bad
/// flag, 1 for a runtime failure.
pub fn hub_main(args: &HubArgs) -> Result<(), (u8, String)> {
    let _ = args;
    Err((1, "the hub is not built yet".into()))
}
