//! The daemon's HTTP endpoint on `--listen`: `GET /healthz` (200 `ok`) and
//! `GET /metrics` (Prometheus text). Served by two threads; the web UI
//! builds on this server.

use crate::control::LiveStatus;
use crate::store::Store;
use crate::store::query::Window;
use std::fmt::Write as _;
use std::sync::Arc;

/// Starts the server.
///
/// # Errors
/// The address cannot be bound.
///
/// # Panics
/// Never: the only `expect` is on a constant, valid header.
pub fn serve(addr: std::net::SocketAddr, store: &Arc<Store>, live: &LiveStatus) -> std::io::Result<Arc<tiny_http::Server>> {
    let server = Arc::new(tiny_http::Server::http(addr).map_err(std::io::Error::other)?);
    for i in 0..2 {
        let (server, store, live) = (server.clone(), store.clone(), live.clone());
        std::thread::Builder::new().name(format!("postlens-http-{i}")).spawn(move || {
            for req in server.incoming_requests() {
                let (status, ctype, body) = match (req.method(), req.url()) {
                    (tiny_http::Method::Get, "/healthz") => (200, "text/plain", "ok\n".to_owned()),
                    (tiny_http::Method::Get, "/metrics") => match metrics(&store, &live) {
                        Ok(m) => (200, "text/plain; version=0.0.4", m),
                        Err(e) => (500, "text/plain", format!("error: {e}\n")),
                    },
                    (tiny_http::Method::Get, _) => (404, "text/plain", "not found\n".to_owned()),
                    _ => (405, "text/plain", "method not allowed\n".to_owned()),
                };
                let h = tiny_http::Header::from_bytes(&b"Content-Type"[..], ctype.as_bytes()).expect("static header");
                let _ = req.respond(tiny_http::Response::from_string(body).with_status_code(status).with_header(h));
            }
        })?;
    }
    Ok(server)
}

fn metrics(store: &Store, live: &LiveStatus) -> Result<String, crate::store::StoreError> {
    let s = store.stats(Window::default())?;
    let mut m = String::new();
    let mut counter = |name: &str, help: &str, rows: &[(&str, u64)]| {
        let _ = writeln!(m, "# HELP postlens_{name} {help}\n# TYPE postlens_{name} counter");
        for (labels, v) in rows {
            let _ = writeln!(m, "postlens_{name}{labels} {v}");
        }
    };
    let l = &s.lines;
    counter(
        "lines_total",
        "Log lines read, by kind.",
        &[
            ("{kind=\"postfix\"}", l.postfix),
            ("{kind=\"dovecot\"}", l.dovecot),
            ("{kind=\"other\"}", l.other),
            ("{kind=\"malformed\"}", l.malformed),
            ("{kind=\"unsupported\"}", l.unsupported),
        ],
    );
    let d = &s.deliveries;
    counter(
        "deliveries_total",
        "Deliveries by outcome and direction (stored history).",
        &[
            ("{outcome=\"sent\",direction=\"outbound\"}", d.outbound.sent),
            ("{outcome=\"bounced\",direction=\"outbound\"}", d.outbound.bounced),
            ("{outcome=\"expired\",direction=\"outbound\"}", d.outbound.expired),
            ("{outcome=\"sent\",direction=\"inbound\"}", d.inbound.sent),
            ("{outcome=\"bounced\",direction=\"inbound\"}", d.inbound.bounced),
            ("{outcome=\"expired\",direction=\"inbound\"}", d.inbound.expired),
        ],
    );
    counter("deferrals_total", "status=deferred lines.", &[("", s.deferrals)]);
    counter("rejected_total", "Refusals logged with reject:.", &[("", s.rejected)]);
    counter("connections_total", "smtpd connections.", &[("", s.connections)]);
    counter("auth_failures_total", "Authentication failures.", &[("", s.auth_failures.total)]);
    counter("evictions_total", "In-flight messages dropped for capacity.", &[("", s.evictions)]);
    let _ = writeln!(
        m,
        "# HELP postlens_pending_deliveries Deliveries without a final status.\n# TYPE postlens_pending_deliveries gauge\npostlens_pending_deliveries {}",
        d.pending
    );
    let _ = writeln!(
        m,
        "# HELP postlens_db_bytes Size of the database file.\n# TYPE postlens_db_bytes gauge\npostlens_db_bytes {}",
        store.file_size()
    );
    let stalled = live.lock().is_ok_and(|v| v["stalled"] == true);
    let _ = writeln!(
        m,
        "# HELP postlens_commits_stalled 1 while commits fail (disk full, read-only).\n# TYPE postlens_commits_stalled gauge\npostlens_commits_stalled {}",
        u8::from(stalled)
    );
    Ok(m)
}
