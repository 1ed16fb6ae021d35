//! The JSON API under `/api/v1/` (session cookie or `Authorization:
//! Bearer` API token, 401 otherwise), its `OpenAPI` document, and the
//! Prometheus `/metrics` (open to loopback clients, else a token).
//!
//! `stats` and `search` answer exactly what `postlens stats --json` and
//! `postlens search --json` print (DESIGN.md): the same store readers and
//! the same JSON types.

use super::req::{Method, Req};
use super::{Ctx, Resp, Who, api_user};
use crate::clock::Timestamp;
use crate::settings::Settings;
use crate::store::query::{Query, SearchHit, Window};
use serde_json::json;

pub(crate) fn err(status: u16, message: &str) -> Resp {
    Resp::json(status, &json!({ "error": message }))
}

fn window(ctx: &Ctx, req: &Req) -> Result<Window, Resp> {
    let p = |name: &str| -> Result<Option<Timestamp>, Resp> {
        req.q(name).map(|v| crate::clock::parse_time_arg(v, &ctx.cfg.tz).map_err(|e| err(400, &format!("{name}: {e}")))).transpose()
    };
    Ok(Window { from: p("from")?, to: p("to")? })
}

/// Query parameters each route accepts (others are refused with 400, so a
/// typo does not silently widen a search).
const PARAMS: &[(&str, &[&str])] = &[
    ("/api/v1/stats", &["from", "to"]),
    ("/api/v1/search", &["sender", "recipient", "id", "status", "from", "to", "limit"]),
    ("/api/v1/settings", &[]),
    ("/api/v1/escalations", &[]),
    ("/api/v1/insights", &["from", "to", "kind", "category", "severity", "archived"]),
    ("/api/v1/peer", &[]),
    ("/api/v1/checks", &[]),
];

pub(crate) fn route(ctx: &Ctx, req: &Req, now: Timestamp) -> Resp {
    let path = req.path.as_str();
    let allowed = PARAMS.iter().find(|(p, _)| *p == path).map(|(_, a)| *a);
    let unknown = |allowed: &[&str]| req.query.iter().find(|(k, _)| !allowed.contains(&k.as_str())).map(|(k, _)| k.clone());
    if path == "/api/v1/openapi.json" {
        if let Some(k) = unknown(&[]) {
            return err(400, &format!("unknown parameter '{k}'"));
        }
        return match req.method {
            Method::Get | Method::Head => super::assets::serve("openapi.json", req.gzip).expect("build.rs embeds web/openapi.json"),
            _ => err(405, "method not allowed"),
        };
    }
    // Everything but the document answers 401 first: a stranger learns
    // nothing about routes or parameters.
    let Some(who) = api_user(ctx, req, now) else {
        return err(401, "sign in or send Authorization: Bearer <token> (postlens user token)");
    };
    let Some(allowed) = allowed else {
        return err(404, "no such API route");
    };
    if let Some(k) = unknown(allowed) {
        return err(400, &format!("unknown parameter '{k}'"));
    }
    // A browser sends the session cookie with whatever another page of the
    // same site posts (a form can post JSON as text/plain); a header is
    // something such a page cannot add. Tokens are not sent by browsers.
    if req.method == Method::Post
        && let Some(s) = &who.session
        && !req.csrf_header.as_deref().is_some_and(|t| crate::auth::check_csrf(s, t))
    {
        return err(403, "with a session cookie, send the page's CSRF token in X-CSRF-Token (or use a Bearer token)");
    }
    match (req.method, path) {
        (Method::Get, "/api/v1/stats") => stats(ctx, req),
        (Method::Get, "/api/v1/search") => search(ctx, req),
        (Method::Get, "/api/v1/insights") => super::insights::api(ctx, req),
        (Method::Get, "/api/v1/settings") => match Settings::load(&ctx.store) {
            Ok(s) => Resp::json(200, &shown(s)),
            Err(e) => err(500, &e.to_string()),
        },
        (Method::Post, "/api/v1/settings") => put_settings(ctx, req, &who),
        (Method::Get | Method::Post, "/api/v1/checks") => super::health_page::api(ctx, req, &who),
        (Method::Get, "/api/v1/peer") => match &ctx.cfg.peer {
            Some(p) => {
                let mut v = serde_json::to_value(p.view()).unwrap_or_default();
                v["running"] = true.into();
                Resp::json(200, &v)
            }
            None => Resp::json(200, &serde_json::json!({ "running": false })),
        },
        (Method::Get, "/api/v1/escalations") => match ctx.store.kv_get::<Vec<super::pages::Escalation>>("escalations") {
            Ok(v) => Resp::json(200, &v.unwrap_or_default()),
            Err(e) => err(500, &e.to_string()),
        },
        _ => err(405, "method not allowed"),
    }
}

fn stats(ctx: &Ctx, req: &Req) -> Resp {
    let w = match window(ctx, req) {
        Ok(w) => w,
        Err(r) => return r,
    };
    let o = ctx.overlays.as_ref().and_then(crate::control::overlay);
    match ctx.store.stats_live(w, o.as_ref()) {
        Ok(s) => Resp::json(200, &s),
        Err(e) => err(500, &e.to_string()),
    }
}

fn search(ctx: &Ctx, req: &Req) -> Resp {
    let w = match window(ctx, req) {
        Ok(w) => w,
        Err(r) => return r,
    };
    let limit = match req.q("limit").map(str::parse::<usize>) {
        None => 100,
        Some(Ok(n)) if (1..=10_000).contains(&n) => n,
        Some(_) => return err(400, "limit: must be a number from 1 to 10000"),
    };
    let status = req.q("status").map(str::to_owned);
    if let Some(s) = &status
        && !["sent", "bounced", "expired", "pending", "deferred"].contains(&s.as_str())
    {
        return err(400, &format!("status: '{s}' is not one of sent, bounced, expired, pending, deferred"));
    }
    let q = Query {
        sender: req.q("sender").map(str::to_owned),
        recipient: req.q("recipient").map(str::to_owned),
        id: req.q("id").map(str::to_owned),
        status,
        window: w,
        limit,
    };
    let o = ctx.overlays.as_ref().and_then(crate::control::overlay);
    match ctx.store.search_live(&q, o.as_ref()) {
        Ok(hits) => Resp::json(200, &hits.iter().map(SearchHit::of).collect::<Vec<_>>()),
        Err(e) => err(500, &e.to_string()),
    }
}

/// Settings as the API shows them: notification secrets blanked.
fn shown(mut s: Settings) -> Settings {
    s.notify = s.notify.redacted();
    s
}

/// Replaces the settings. Notification channels are not changed here (the
/// document shows them with their secrets blanked; they are managed on the
/// settings page or with `postlens notify-config`).
fn put_settings(ctx: &Ctx, req: &Req, who: &Who) -> Resp {
    if !who.is_admin() {
        return err(403, "read-only users cannot change settings");
    }
    let mut s: Settings = match serde_json::from_slice(&req.body) {
        Ok(s) => s,
        Err(e) => return err(400, &format!("body: {e}")),
    };
    match Settings::load(&ctx.store) {
        Ok(old) => s.notify = old.notify,
        Err(e) => return err(500, &e.to_string()),
    }
    match s.save(&ctx.store) {
        Ok(()) => {
            super::settings_saved(ctx, &s);
            Resp::json(200, &shown(s))
        }
        Err(crate::settings::SaveError::Invalid(i)) => err(400, &i.to_string()),
        Err(e) => err(500, &e.to_string()),
    }
}

/// Prometheus text: open to a loopback client, otherwise an API token.
pub(crate) fn metrics(ctx: &Ctx, req: &Req) -> Resp {
    let local = req.client.is_some_and(|c| c.is_loopback());
    let token_ok = req.bearer.as_deref().is_some_and(|t| crate::auth::token_user(&ctx.store, t).ok().flatten().is_some());
    if !local && !token_ok {
        return Resp::text(401, "metrics: loopback clients only, or Authorization: Bearer <token>\n");
    }
    match super::metrics::metrics(
        &ctx.store,
        &ctx.live,
        ctx.overlays.as_ref().and_then(crate::control::overlay).as_ref(),
        ctx.cfg.protect.as_ref(),
    ) {
        Ok(m) => Resp::new(200, "text/plain; version=0.0.4", m),
        Err(e) => Resp::text(500, format!("error: {e}\n")),
    }
}
