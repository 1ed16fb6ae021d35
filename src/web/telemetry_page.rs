//! The telemetry page (`/telemetry`): what this installation shares with
//! the peer network and what it receives. The last batches are shown
//! exactly as sent (their JSON bytes), so an admin can check that no user
//! name, password hash, domain or own address leaves the server.

use super::pages::{page, render};
use super::req::Req;
use super::{Ctx, Resp, Who};
use crate::clock::Timestamp;
use serde_json::json;

fn local(tz: &jiff::tz::TimeZone, t: Timestamp) -> String {
    jiff::Timestamp::from_second(t.0).map(|x| x.to_zoned(tz.clone()).strftime("%Y-%m-%d %H:%M:%S").to_string()).unwrap_or_default()
}

/// `GET /telemetry`.
pub(crate) fn show(ctx: &Ctx, _req: &Req, who: &Who, lang: &str) -> Resp {
    let Some(peer) = &ctx.cfg.peer else {
        return render(ctx, "telemetry.html", &page(who, lang, "telemetry", json!({ "running": false })));
    };
    let v = peer.view();
    let tz = &ctx.cfg.tz;
    let t = v.telemetry.as_ref();
    let status = t.map(|t| match &t.status {
        crate::peer::HubStatus::Unknown => json!({ "state": "unknown" }),
        crate::peer::HubStatus::Up { since } => json!({ "state": "up", "since": local(tz, *since) }),
        crate::peer::HubStatus::Down { since } => json!({ "state": "down", "since": local(tz, *since) }),
    });
    let sent: Vec<_> = t
        .map(|t| {
            t.sent
                .iter()
                .rev()
                .map(|b| json!({ "at": local(tz, b.at), "seq": b.seq, "signals": b.signals, "json": b.json, "outcome": b.outcome }))
                .collect()
        })
        .unwrap_or_default();
    let received = t.and_then(|t| t.received.as_ref()).map(|r| {
        json!({ "at": local(tz, r.at), "version": r.version, "delta": r.delta, "entries": r.entries, "held": r.held, "bytes": r.bytes })
    });
    let more = json!({
        "running": true,
        "choice": v.choice,
        "hub": v.hub,
        "problem": v.problem,
        "community_entries": v.community_entries,
        "community_version": v.community_version,
        "client": t.is_some(),
        "key": t.map(|t| t.key.clone()),
        "status": status,
        "last_error": t.and_then(|t| t.last_error.clone()),
        "batches_sent": t.map_or(0, |t| t.batches_sent),
        "lists_received": t.map_or(0, |t| t.lists_received),
        "outages": t.map_or(0, |t| t.outages),
        "pending": t.map_or(0, |t| t.pending_signals),
        "sent": sent,
        "received": received,
    });
    render(ctx, "telemetry.html", &page(who, lang, "telemetry", more))
}
