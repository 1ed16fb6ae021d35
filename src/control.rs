//! The control socket: `<workspace>/postlens.sock`, served by the daemon so
//! that `postlens stats|search|report|status` work while `postlens run`
//! holds the database (redb allows one process). The CLI sends its own
//! command line; the daemon runs the same read-only code against its open
//! store and returns the exit code and output. Only the owner of the
//! workspace can reach the socket (mode 0600).

use crate::store::Store;
use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::sync::Arc;

pub const SOCKET: &str = "postlens.sock";

use crate::limits::{MAX_CONTROL_ANSWER, MAX_CONTROL_REQUEST};

#[derive(serde::Serialize, serde::Deserialize)]
pub struct Answer {
    pub code: u8,
    pub stdout: String,
    pub stderr: String,
}

pub fn socket_path(workspace: &Path) -> PathBuf {
    workspace.join(SOCKET)
}

/// Live status from the daemon's loop, merged into `status` answers.
pub type LiveStatus = Arc<std::sync::Mutex<serde_json::Value>>;

/// Asks the daemon's loop for its uncommitted state (answered between two
/// pumps, so within milliseconds).
/// The flag asks for the raw lines too (they can be megabytes: only the
/// raw-log and message pages need them).
pub type OverlayRequests = tokio::sync::mpsc::Sender<(bool, tokio::sync::oneshot::Sender<crate::store::query::Overlay>)>;

/// The daemon's uncommitted state, if the loop answers within a second.
pub fn overlay(req: &OverlayRequests) -> Option<crate::store::query::Overlay> {
    overlay_with(req, false)
}

/// [`overlay`], with the raw lines not yet committed when `raw`.
pub fn overlay_with(req: &OverlayRequests, raw: bool) -> Option<crate::store::query::Overlay> {
    let (tx, rx) = tokio::sync::oneshot::channel();
    req.blocking_send((raw, tx)).ok()?;
    let t = std::time::Instant::now();
    let mut rx = rx;
    loop {
        match rx.try_recv() {
            Ok(o) => return Some(o),
            Err(tokio::sync::oneshot::error::TryRecvError::Empty) if t.elapsed() < std::time::Duration::from_secs(1) => {
                std::thread::sleep(std::time::Duration::from_millis(2));
            }
            // Closed, or no answer in time (commits failing): committed data only.
            Err(_) => return None,
        }
    }
}

/// Serves the control socket on a small thread pool (2 threads).
///
/// # Errors
/// The socket cannot be bound.
pub fn serve(
    workspace: &Path,
    store: &Arc<Store>,
    live: &LiveStatus,
    overlays: &OverlayRequests,
) -> std::io::Result<Arc<tiny_http::Server>> {
    let path = socket_path(workspace);
    if path.exists() {
        std::fs::remove_file(&path)?;
    }
    let server = Arc::new(tiny_http::Server::http_unix(&path).map_err(std::io::Error::other)?);
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))?;
    }
    for i in 0..2 {
        let (server, store, live, overlays) = (server.clone(), store.clone(), live.clone(), overlays.clone());
        std::thread::Builder::new().name(format!("postlens-control-{i}")).spawn(move || {
            for mut req in server.incoming_requests() {
                let mut body = Vec::new();
                let ok = req.as_reader().take(MAX_CONTROL_REQUEST).read_to_end(&mut body).is_ok();
                let argv: Option<Vec<String>> = if ok { serde_json::from_slice(&body).ok() } else { None };
                let answer = match (req.method(), req.url(), argv) {
                    (tiny_http::Method::Post, "/cli", Some(argv)) => crate::cli::run_in_daemon(&argv, &store, &live, &overlays),
                    _ => Answer { code: 2, stdout: String::new(), stderr: "bad control request".into() },
                };
                let json = serde_json::to_vec(&answer).unwrap_or_default();
                let _ = req.respond(tiny_http::Response::from_data(json));
            }
        })?;
    }
    Ok(server)
}

/// Sends a command line to the running daemon of `workspace`.
///
/// # Errors
/// The daemon cannot be reached or answered nonsense.
pub fn forward(workspace: &Path, argv: &[String]) -> std::io::Result<Answer> {
    let mut s = UnixStream::connect(socket_path(workspace))?;
    s.set_read_timeout(Some(std::time::Duration::from_mins(2)))?;
    let body = serde_json::to_vec(argv)?;
    // HTTP/1.0: the answer comes whole, never chunked.
    write!(s, "POST /cli HTTP/1.0\r\nHost: postlens\r\nContent-Length: {}\r\n\r\n", body.len())?;
    s.write_all(&body)?;
    let mut resp = Vec::new();
    s.take(MAX_CONTROL_ANSWER).read_to_end(&mut resp)?;
    let start = memchr::memmem::find(&resp, b"\r\n\r\n").ok_or_else(|| std::io::Error::other("malformed answer from the daemon"))? + 4;
    serde_json::from_slice(&resp[start..]).map_err(std::io::Error::other)
}
