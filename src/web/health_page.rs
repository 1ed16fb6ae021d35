//! The Health page (`/health`): the checklist of the last health-check
//! run (DNS of the sending domains, the server's IP, the Postfix
//! configuration, the opt-in relay probe) with evidence and fixes; admins
//! run the checks now and change what is checked (`POST /health`).
//! `GET /api/v1/checks` gives the same results; `POST /api/v1/checks` runs
//! them and answers with the new ones.

use super::i18n::t;
use super::pages::{error, page, render, store_error};
use super::req::Req;
use super::{Ctx, Resp, Who};
use crate::check::CheckConfig;
use crate::check::service::{self, Saved};
use crate::clock::Timestamp;
use crate::settings::Settings;
use serde_json::json;

/// The groups of the checklist: [`crate::check::IDS`] is in checklist
/// order, 8 domain checks, 4 on the IP, then the Postfix configuration.
const GROUPS: [(&str, std::ops::Range<usize>); 3] =
    [("health.group.domains", 0..8), ("health.group.ip", 8..12), ("health.group.postfix", 12..crate::check::IDS.len())];

/// `GET /health`.
pub(crate) fn show(ctx: &Ctx, req: &Req, who: &Who, lang: &str) -> Resp {
    let (saved, settings) = match (service::load(&ctx.store), Settings::load(&ctx.store)) {
        (Ok(s), Ok(st)) => (s, st),
        (Err(e), _) | (_, Err(e)) => return store_error(ctx, lang, &e),
    };
    let counts = |st: crate::check::Status| saved.checks.iter().filter(|c| c.status == st).count();
    let groups: Vec<_> = GROUPS
        .iter()
        .map(|(title, r)| {
            let ids = &crate::check::IDS[r.clone()];
            let rows: Vec<_> = saved.checks.iter().filter(|c| ids.contains(&c.id.as_str())).collect();
            json!({ "title": t(lang, title), "rows": rows })
        })
        .collect();
    let when = (saved.time > 0).then(|| {
        jiff::Timestamp::from_second(saved.time)
            .map(|x| x.to_zoned(ctx.cfg.tz.clone()).strftime("%Y-%m-%d %H:%M").to_string())
            .unwrap_or_default()
    });
    let c = &settings.checks;
    let more = json!({
        "when": when,
        "error": saved.error,
        "running": service::running(),
        "groups": groups,
        "fails": counts(crate::check::Status::Fail),
        "warns": counts(crate::check::Status::Warn),
        "passes": counts(crate::check::Status::Pass),
        "domains": c.domains.join(" "),
        "selectors": c.dkim_selectors.join(" "),
        "mta_sts": c.mta_sts,
        "relay_probe": c.relay_probe,
        "public_ip": settings.public_ip,
        "done": req.q("done").filter(|d| matches!(*d, "started" | "saved")),
    });
    render(ctx, "health.html", &page(who, lang, "health", more))
}

/// Starts a run on a thread of its own (DNS and SMTP take seconds); the
/// insights it opens are notified.
fn start(ctx: &Ctx) {
    let (store, notifier) = (ctx.store.clone(), ctx.notifier.clone());
    let _ = std::thread::Builder::new().name("postlens-checks".into()).spawn(move || {
        run_and_notify(&store, notifier.as_deref());
    });
}

/// One run, its new insights notified; errors logged.
pub(crate) fn run_and_notify(store: &crate::store::Store, notifier: Option<&crate::notify::Notifier>) -> Option<Saved> {
    match service::run_and_record(store, crate::clock::now()) {
        Ok(Some(o)) => {
            if let Some(e) = &o.saved.error {
                eprintln!("postlens: health checks could not run: {e}");
            }
            if let Some(n) = notifier {
                let s = Settings::load(store).unwrap_or_default();
                for (id, i) in &o.notify {
                    n.submit(super::notification(*id, i, &s.language, s.ui_url.as_deref()));
                }
            }
            Some(o.saved)
        }
        Ok(None) => None,
        Err(e) => {
            eprintln!("postlens: health checks: {e}");
            None
        }
    }
}

fn words(v: Option<&str>) -> Vec<String> {
    v.unwrap_or("").split([',', ' ', '\n', '\r']).map(str::trim).filter(|x| !x.is_empty()).map(str::to_ascii_lowercase).collect()
}

/// `POST /health`: `action=run`, or `action=settings` (`domains`,
/// `selectors`, `mta_sts`, `relay_probe`).
pub(crate) fn action(ctx: &Ctx, req: &Req, who: &Who, lang: &str, _now: Timestamp) -> Resp {
    if !who.is_admin() {
        return error(ctx, lang, 403, &t(lang, "error.read_only"));
    }
    let done = match req.f("action") {
        Some("run") => {
            start(ctx);
            "started"
        }
        Some("settings") => {
            let mut s = match Settings::load(&ctx.store) {
                Ok(s) => s,
                Err(e) => return store_error(ctx, lang, &e),
            };
            s.checks = CheckConfig {
                domains: words(req.f("domains")),
                dkim_selectors: words(req.f("selectors")),
                mta_sts: req.f("mta_sts").is_some(),
                relay_probe: req.f("relay_probe").is_some(),
            };
            match s.save(&ctx.store) {
                Ok(()) => {}
                Err(crate::settings::SaveError::Invalid(i)) => return error(ctx, lang, 400, &i.to_string()),
                Err(e) => return error(ctx, lang, 500, &e.to_string()),
            }
            "saved"
        }
        _ => return error(ctx, lang, 400, "action: run or settings"),
    };
    Resp::redirect(&format!("{}?done={done}", super::pages::rel(&req.path, "health")))
}

/// `GET /api/v1/checks` (the last results) and `POST` (run now, admins).
pub(crate) fn api(ctx: &Ctx, req: &Req, who: &Who) -> Resp {
    if req.method == super::req::Method::Post {
        if !who.is_admin() {
            return super::api::err(403, "read-only users cannot run the checks");
        }
        return match run_and_notify(&ctx.store, ctx.notifier.as_deref()) {
            Some(s) => Resp::json(200, &s),
            None => super::api::err(409, "a run is under way; GET /api/v1/checks shows its results when it ends"),
        };
    }
    match service::load(&ctx.store) {
        Ok(s) => Resp::json(200, &s),
        Err(e) => super::api::err(500, &e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn groups_split_the_ids_where_their_kind_changes() {
        let ids = crate::check::IDS;
        assert_eq!((ids[super::GROUPS[0].1.end - 1], ids[super::GROUPS[1].1.start]), ("tls_rpt", "ptr"));
        assert_eq!((ids[super::GROUPS[1].1.end - 1], ids[super::GROUPS[2].1.start]), ("dnsbl", "relay_restrictions"));
    }
}
