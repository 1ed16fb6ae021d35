//! The Prometheus text of `GET /metrics` (served by `web` on `--listen`):
//! counters from the committed store plus the daemon's live status.

use crate::control::LiveStatus;
use crate::store::Store;
use crate::store::query::Window;
use std::fmt::Write as _;

/// The Prometheus text of `/metrics` (served by `web`).
///
/// # Errors
/// Database failure.
pub(crate) fn metrics(store: &Store, live: &LiveStatus) -> Result<String, crate::store::StoreError> {
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
