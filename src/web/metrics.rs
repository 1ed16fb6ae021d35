//! The Prometheus text of `GET /metrics` (served by `web` on `--listen`):
//! counters from the store and the running daemon's uncommitted overlay,
//! its per-source lag and commit state, and local protection's counters
//! (since the daemon started).

use crate::control::LiveStatus;
use crate::store::Store;
use crate::store::query::Window;
use std::fmt::Write as _;

/// The Prometheus text of `/metrics` (served by `web`).
///
/// # Errors
/// Database failure.
pub(crate) fn metrics(
    store: &Store,
    live: &LiveStatus,
    overlay: Option<&crate::store::query::Overlay>,
    protect: Option<&crate::protect::Shared>,
) -> Result<String, crate::store::StoreError> {
    let s = store.stats_live(Window::default(), overlay)?;
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
    // Ingestion lag: bytes not yet read per followed source, and the age
    // of the newest line read (a quiet server's lines age too).
    let status = live.lock().map(|v| v.clone()).unwrap_or_default();
    if let Some(sources) = status["sources"].as_array() {
        let _ = writeln!(
            m,
            "# HELP postlens_source_behind_bytes Bytes of a followed source not read yet.\n# TYPE postlens_source_behind_bytes gauge"
        );
        for src in sources {
            let name = src["name"].as_str().unwrap_or_default().replace('\\', "\\\\").replace('"', "\\\"");
            let _ = writeln!(m, "postlens_source_behind_bytes{{source=\"{name}\"}} {}", src["behind"].as_u64().unwrap_or(0));
        }
    }
    if let Some(t) = status["newest_line"].as_str().and_then(|t| t.parse::<jiff::Timestamp>().ok()) {
        let age = crate::clock::now().0 - t.as_second();
        let _ = writeln!(
            m,
            "# HELP postlens_newest_line_age_seconds Seconds since the time of the newest log line read.\n# TYPE postlens_newest_line_age_seconds gauge\npostlens_newest_line_age_seconds {age}"
        );
    }
    let _ = writeln!(
        m,
        "# HELP postlens_uncommitted_lines Lines read but not yet committed.\n# TYPE postlens_uncommitted_lines gauge\npostlens_uncommitted_lines {}",
        status["uncommitted_lines"].as_u64().unwrap_or(0)
    );
    let stalled = status["stalled"] == true;
    let _ = writeln!(
        m,
        "# HELP postlens_commits_stalled 1 while commits fail (disk full, read-only).\n# TYPE postlens_commits_stalled gauge\npostlens_commits_stalled {}",
        u8::from(stalled)
    );
    if let Some(p) = protect {
        protection(&mut m, p);
    }
    Ok(m)
}

/// Local protection: counters since start, and the tables' sizes now.
fn protection(m: &mut String, p: &crate::protect::Shared) {
    let (st, blocked, (watched, trusted)) = {
        let g = crate::protect::lock(p);
        (g.stats(), g.blocked(crate::clock::now()).len(), g.sizes())
    };
    for (name, help, v) in [
        ("protect_failures_total", "Failed logins counted by the detector (policy reports and log lines).", st.failures),
        ("protect_exempt_failures_total", "Failed logins from exempt addresses (allowlist, private, recent login).", st.exempt_failures),
        ("protect_blocks_total", "Automatic blocks.", st.blocks),
        ("protect_rejected_total", "Policy answers that refused a blocked address.", st.rejected),
        ("protect_community_rejected_total", "Of those, refused because of the peer network's list.", st.community_rejected),
        ("protect_delayed_total", "Policy answers that delayed a suspicious address.", st.delayed),
        ("protect_ip_evictions_total", "Watched addresses dropped for capacity.", st.ip_evictions),
        ("protect_trusted_evictions_total", "Trusted addresses dropped for capacity.", st.success_evictions),
    ] {
        let _ = writeln!(m, "# HELP postlens_{name} {help}\n# TYPE postlens_{name} counter\npostlens_{name} {v}");
    }
    for (name, help, v) in [
        ("protect_blocked", "Addresses blocked now.", blocked),
        ("protect_watched", "Addresses with failures in the window or a block.", watched),
        ("protect_trusted", "Addresses trusted after a successful login.", trusted),
    ] {
        let _ = writeln!(m, "# HELP postlens_{name} {help}\n# TYPE postlens_{name} gauge\npostlens_{name} {v}");
    }
}
