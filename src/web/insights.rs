//! The insights page (filters: category, severity, time, archived), the
//! admin's actions on one insight, the dashboard's panel and the API list.

use super::i18n::t;
use super::pages::{PRESET_NAMES, Range, error, page, render, store_error};
use super::req::{Method, Req};
use super::{Ctx, Resp, Who};
use crate::clock::Timestamp;
use crate::insights::{self, Action, Filter, Insight, InsightJson, Kind};
use crate::notify::Severity;
use serde_json::{Value, json};

const CATEGORIES: [&str; 4] = ["deliverability", "security", "activity", "info"];
const SEVERITIES: [&str; 3] = ["info", "warning", "critical"];

/// The filter a request asks for (`category`, `severity`, `kind`,
/// `archived`, and the range's window); `Err` names the bad parameter.
fn filter(req: &Req, window: crate::store::query::Window) -> Result<Filter, String> {
    let category = match req.q("category").filter(|c| !c.is_empty()) {
        Some(c) if CATEGORIES.contains(&c) => Some(c.to_owned()),
        Some(_) => return Err(format!("category: one of {}", CATEGORIES.join(", "))),
        None => None,
    };
    let min_severity = match req.q("severity").filter(|c| !c.is_empty()) {
        Some(s) => Some(s.parse::<Severity>().map_err(|_| format!("severity: one of {}", SEVERITIES.join(", ")))?),
        None => None,
    };
    let kind = match req.q("kind").filter(|c| !c.is_empty()) {
        Some(k) => Some(Kind::parse(k).ok_or("kind: not an insight kind")?),
        None => None,
    };
    let archived = match req.q("archived") {
        None | Some("" | "0" | "false") => false,
        Some("1" | "true") => true,
        Some(_) => return Err("archived: 1 or 0".into()),
    };
    Ok(Filter { from: window.from, to: window.to, kind, category, min_severity, archived })
}

/// One insight as the template shows it.
fn view(id: u64, i: &Insight, tz: &jiff::tz::TimeZone) -> Value {
    let local =
        |s: i64| jiff::Timestamp::from_second(s).map(|x| x.to_zoned(tz.clone()).strftime("%Y-%m-%d %H:%M").to_string()).unwrap_or_default();
    // Scalars first as facts; lists of examples and log lines apart.
    let mut facts = Vec::new();
    let mut examples = Vec::new();
    let mut lines = Vec::new();
    if let Value::Object(m) = &i.evidence {
        for (k, v) in m {
            match (k.as_str(), v) {
                ("lines", Value::Array(a)) => lines.extend(a.iter().filter_map(|l| l.as_str().map(str::to_owned))),
                ("examples" | "messages", Value::Array(a)) => examples.extend(a.iter().cloned()),
                ("delist_url" | "provider_id", _) => {}
                (_, Value::String(s)) => facts.push(json!([k, s])),
                (_, Value::Number(n)) => facts.push(json!([k, n.to_string()])),
                (_, Value::Bool(b)) => facts.push(json!([k, b.to_string()])),
                (_, Value::Array(a)) if !a.is_empty() => facts.push(json!([
                    k,
                    a.iter()
                        .map(|x| x.as_str().map_or_else(
                            || x.get("ip").and_then(Value::as_str).map_or_else(|| x.to_string(), str::to_owned),
                            str::to_owned
                        ))
                        .collect::<Vec<_>>()
                        .join(", ")
                ])),
                (_, Value::Object(o)) if !o.is_empty() => {
                    facts.push(json!([k, o.iter().map(|(a, b)| format!("{a}: {b}")).collect::<Vec<_>>().join(", ")]));
                }
                _ => {}
            }
        }
    }
    json!({
        "id": id, "kind": i.kind.id(), "category": i.kind.category(), "severity": i.severity.as_str(), "title": i.title,
        "subject": i.subject, "time": local(i.time), "first_seen": local(i.first_seen), "count": i.count,
        "status": i.status.as_str(), "rating": i.rating, "historical": i.historical,
        "delist": i.evidence.get("delist_url"), "facts": facts, "examples": examples, "lines": lines,
    })
}

/// `GET /insights`.
pub(crate) fn list_page(ctx: &Ctx, req: &Req, who: &Who, lang: &str, now: Timestamp) -> Resp {
    let range = match Range::of(req, &ctx.cfg.tz, now, "all") {
        Ok(r) => r,
        Err(e) => return error(ctx, lang, 400, &e),
    };
    let f = match filter(req, range.window) {
        Ok(f) => f,
        Err(e) => return error(ctx, lang, 400, &e),
    };
    let rows = match insights::list(&ctx.store, &f) {
        Ok(v) => v,
        Err(e) => return store_error(ctx, lang, &e),
    };
    let items: Vec<Value> = rows.iter().map(|(id, i)| view(*id, i, &ctx.cfg.tz)).collect();
    let keep = json!([
        ["category", req.q("category").unwrap_or_default()],
        ["severity", req.q("severity").unwrap_or_default()],
        ["archived", req.q("archived").unwrap_or_default()],
    ]);
    let c = page(
        who,
        lang,
        "insights",
        json!({
            "range": range, "presets": PRESET_NAMES, "items": items, "keep": keep,
            "categories": CATEGORIES, "severities": SEVERITIES,
            "category": req.q("category").unwrap_or_default(), "severity": req.q("severity").unwrap_or_default(),
            "archived": f.archived, "done": req.q("done"),
        }),
    );
    render(ctx, "insights.html", &c)
}

/// `POST /insights/action`: archive, reopen, snooze or rate one insight.
pub(crate) fn action(ctx: &Ctx, req: &Req, who: &Who, lang: &str, now: Timestamp) -> Resp {
    if req.method != Method::Post {
        return Resp::text(405, "method not allowed\n");
    }
    if !who.is_admin() {
        return error(ctx, lang, 403, &t(lang, "error.read_only"));
    }
    let Some(id) = req.f("id").and_then(|v| v.parse::<u64>().ok()) else {
        return error(ctx, lang, 400, "id: the number of an insight");
    };
    let Some(a) = req.f("action").and_then(|v| Action::parse(v, now)) else {
        return error(ctx, lang, 400, "action: archive, reopen, snooze1d, snooze7d, useful or useless");
    };
    match insights::act(&ctx.store, id, a) {
        Ok(true) => Resp::redirect(&format!("{}?done={id}#i{id}", super::pages::rel(&req.path, "insights"))),
        Ok(false) => error(ctx, lang, 404, &t(lang, "error.not_found")),
        Err(e) => store_error(ctx, lang, &e),
    }
}

/// Every insight but the archived ones, newest first (`insights::list`).
pub(crate) type Listed = std::sync::Arc<Vec<(u64, insights::Insight)>>;

/// The dashboard's panel: the most severe open insights, newest first.
pub(crate) fn panel(ctx: &Ctx) -> Vec<Value> {
    let generation = ctx.store.insights_generation();
    let cached = {
        let g = ctx.insights.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        g.1.clone().filter(|_| g.0 == generation)
    };
    let all = if let Some(v) = cached {
        v
    } else {
        let Ok(v) = insights::list(&ctx.store, &Filter::default()) else { return Vec::new() };
        let v = std::sync::Arc::new(v);
        *ctx.insights.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = (generation, Some(v.clone()));
        v
    };
    let mut v: Vec<&(u64, insights::Insight)> = all.iter().filter(|(_, i)| i.status == insights::Status::Open).collect();
    v.sort_by(|a, b| b.1.severity.cmp(&a.1.severity).then_with(|| b.1.time.cmp(&a.1.time)));
    v.truncate(5);
    v.iter().map(|(id, i)| view(*id, i, &ctx.cfg.tz)).collect()
}

/// `GET /api/v1/insights?from=&to=&kind=&category=&severity=&archived=`.
pub(crate) fn api(ctx: &Ctx, req: &Req) -> Resp {
    let parse = |name: &str| -> Result<Option<Timestamp>, String> {
        req.q(name).map(|v| crate::clock::parse_time_arg(v, &ctx.cfg.tz).map_err(|e| format!("{name}: {e}"))).transpose()
    };
    let window = match (parse("from"), parse("to")) {
        (Ok(from), Ok(to)) => crate::store::query::Window { from, to },
        (Err(e), _) | (_, Err(e)) => return super::api::err(400, &e),
    };
    let f = match filter(req, window) {
        Ok(f) => f,
        Err(e) => return super::api::err(400, &e),
    };
    match insights::list(&ctx.store, &f) {
        Ok(v) => {
            let out: Vec<InsightJson> = v.iter().map(|(id, i)| InsightJson::of(*id, i)).collect();
            Resp::new(200, "application/json", serde_json::to_vec(&out).unwrap_or_default())
        }
        Err(e) => super::api::err(500, &e.to_string()),
    }
}

/// The notification announcing insight `id`, worded in `lang`: the kind
/// and subject as the title; the finding, its key facts and what to do;
/// a link to it when the UI's address is set.
pub fn notification(id: u64, i: &Insight, lang: &str, ui_url: Option<&str>) -> crate::notify::Notification {
    use std::fmt::Write as _;
    let kind = t(lang, &format!("ins.kind.{}", i.kind.id()));
    let title = if i.subject.is_empty() { kind } else { format!("{kind}: {}", i.subject) };
    let mut text = i.title.clone();
    if let Some(facts) = view(id, i, &jiff::tz::TimeZone::UTC)["facts"].as_array() {
        text.push('\n');
        for f in facts.iter().take(8) {
            if let (Some(k), Some(v)) = (f[0].as_str(), f[1].as_str()) {
                let _ = write!(text, "\n{k}: {v}");
            }
        }
    }
    if let Some(u) = i.evidence.get("delist_url").and_then(Value::as_str) {
        let _ = write!(text, "\n\n{u}");
    }
    text.push_str("\n\n");
    text.push_str(&t(lang, &format!("ins.advice.{}", i.kind.id())));
    let link = ui_url.map(|u| format!("{}/insights#i{id}", u.trim_end_matches('/')));
    crate::notify::Notification { kind: i.kind.id().to_owned(), severity: i.severity, title, text, link, time: Timestamp(i.time) }
}
