//! The blocklist page (`/protection`): who local protection blocks, why
//! (the evidence counted when the rule tripped) and until when; manual
//! block and unblock for admins (`POST /protection`, with the session's
//! CSRF token like every form); the exemptions in force and the admin's
//! allowlist. Changes apply to the daemon's [`crate::protect::Protect`] at
//! once and are saved in the store ([`crate::protect::persist`]).

use super::i18n::t;
use super::pages::{error, page, render};
use super::req::Req;
use super::{Ctx, Resp, Who};
use crate::clock::Timestamp;
use crate::protect::{IpKey, lock};
use serde_json::json;

/// Longest manual block, in hours (a year).
const MAX_MANUAL_HOURS: u32 = 24 * 365;

fn local(tz: &jiff::tz::TimeZone, t: Timestamp) -> String {
    jiff::Timestamp::from_second(t.0).map(|x| x.to_zoned(tz.clone()).strftime("%Y-%m-%d %H:%M").to_string()).unwrap_or_default()
}

/// `GET /protection`.
pub(crate) fn list(ctx: &Ctx, req: &Req, who: &Who, lang: &str, now: Timestamp) -> Resp {
    let Some(shared) = &ctx.cfg.protect else {
        return render(ctx, "protection.html", &page(who, lang, "protection", json!({ "running": false })));
    };
    let p = lock(shared);
    let tz = &ctx.cfg.tz;
    let blocked: Vec<_> = p
        .blocked(now)
        .into_iter()
        .map(|b| {
            json!({
                "ip": b.ip, "since": local(tz, b.since), "until": local(tz, b.until), "reason": b.reason,
                "failures": b.evidence.failures, "passwords": b.evidence.passwords, "logins": b.evidence.logins,
                "smtp": b.evidence.per_proto[0], "imap": b.evidence.per_proto[1], "pop3": b.evidence.per_proto[2],
            })
        })
        .collect();
    let c = p.config();
    let (ips, logins) = p.sizes();
    let more = json!({
        "running": true,
        "blocked": blocked,
        "allowlist": c.allowlist, "mynetworks": c.mynetworks, "admin_allowlist": p.admin_allowlist(), "block_loopback": c.block_loopback,
        "rule": {
            "failures": c.block_failures, "passwords": c.block_passwords, "logins": c.block_logins,
            "window_minutes": c.window_secs / 60, "block_hours": c.block_secs / 3600, "success_days": c.success_days,
        },
        "stats": p.stats(), "watched": ips, "trusted": logins,
        "done": req.q("done").filter(|d| matches!(*d, "blocked" | "unblocked" | "allowed" | "disallowed")),
        "peer": ctx.cfg.peer.as_ref().map(|p| {
            let v = p.view();
            json!({ "choice": v.choice, "entries": v.community_entries })
        }),
    });
    drop(p);
    render(ctx, "protection.html", &page(who, lang, "protection", more))
}

/// `POST /protection`: `action=block` (`ip`, `hours`), `action=unblock`
/// (`ip`), `action=allow` or `action=disallow` (`entry`: address or CIDR).
pub(crate) fn action(ctx: &Ctx, req: &Req, who: &Who, lang: &str, now: Timestamp) -> Resp {
    if !who.is_admin() {
        return error(ctx, lang, 403, &t(lang, "error.read_only"));
    }
    let Some(shared) = &ctx.cfg.protect else {
        return error(ctx, lang, 404, &t(lang, "prot.off"));
    };
    let done = match req.f("action") {
        Some(a @ ("allow" | "disallow")) => {
            let Some(entry) = req.f("entry").map(str::trim).filter(|e| crate::protect::net::Cidr::parse(e).is_some()) else {
                return error(ctx, lang, 400, &t(lang, "prot.bad_entry"));
            };
            let mut p = lock(shared);
            let mut list = p.admin_allowlist().to_vec();
            let had = list.iter().any(|x| x == entry);
            if a == "allow" && !had {
                list.push(entry.to_owned());
            } else if a == "disallow" && had {
                list.retain(|x| x != entry);
            } else if a == "allow" {
                return error(ctx, lang, 400, &t(lang, "prot.bad_entry"));
            }
            if p.set_admin_allowlist(list).is_err() {
                return error(ctx, lang, 400, &t(lang, "prot.bad_entry"));
            }
            if a == "allow" { "allowed" } else { "disallowed" }
        }
        _ => match block_action(ctx, req, lang, shared, now) {
            Ok(d) => d,
            Err(r) => return r,
        },
    };
    // Admin decisions are saved at once.
    if let Err(e) = crate::protect::persist::save(&ctx.store, shared, now, false) {
        eprintln!("postlens: protection: {e}");
        return error(ctx, lang, 500, &t(lang, "prot.save_failed"));
    }
    Resp::redirect(&format!("{}?done={done}", super::pages::rel(&req.path, "protection")))
}

/// `block` and `unblock`: which was done, or the error page.
fn block_action(ctx: &Ctx, req: &Req, lang: &str, shared: &crate::protect::Shared, now: Timestamp) -> Result<&'static str, Resp> {
    let Some(ip) = req.f("ip").and_then(|v| IpKey::parse(v.trim().trim_end_matches("/64").as_bytes())) else {
        return Err(error(ctx, lang, 400, &t(lang, "prot.bad_ip")));
    };
    Ok(match req.f("action") {
        Some("block") => {
            let hours = match req.f("hours").map(str::trim) {
                None | Some("") => 24,
                Some(h) => match h.parse::<u32>() {
                    Ok(h) if (1..=MAX_MANUAL_HOURS).contains(&h) => h,
                    _ => return Err(error(ctx, lang, 400, &t(lang, "prot.bad_hours"))),
                },
            };
            lock(shared).block(ip, hours * 3600, now);
            "blocked"
        }
        Some("unblock") => {
            lock(shared).unblock(ip, now);
            "unblocked"
        }
        _ => return Err(error(ctx, lang, 400, "action: block, unblock, allow or disallow")),
    })
}
