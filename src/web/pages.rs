//! HTML pages: first-run setup, login, dashboard, mailbox view, message
//! detective (+ CSV), one message's story, the public detective with
//! escalation, raw logs (page and download) and settings. Handlers read
//! through `Store` readers and render the embedded templates; none writes
//! to redb directly except through `auth`, `settings` and `kv` helpers.
//!
//! Bounds: results per search (`DETECTIVE_RESULTS`), raw lines per page
//! and per download, the raw text scanned per message, the public
//! detective's per-IP limiter (`PUBLIC_LIMITER_CLIENTS` entries).

use super::i18n::t;
use super::req::{Method, Req, encode, encode_keeping};
use super::{Ctx, PRE_CSRF_COOKIE, Resp, SESSION_COOKIE, Who, assets, chart, cookie};
use crate::auth::{self, Role};
use crate::clock::Timestamp;
use crate::limits;
use crate::settings::{PeerChoice, Settings};
use crate::store::query::{Query, Window};
use crate::track::{DeliveryRec, Direction, Outcome};
use minijinja::{ErrorKind as JErrorKind, Value as JValue};
use serde::Serialize;
use serde_json::{Map, Value, json};
use std::collections::HashMap;
use std::net::IpAddr;

/// The template environment with `t(key)` (translation in the page's
/// `lang`).
pub(crate) fn environment() -> minijinja::Environment<'static> {
    let mut env = minijinja::Environment::new();
    for (name, src) in assets::bundled_in("templates") {
        // The templates are part of the binary: a syntax error is a build
        // defect the template test catches.
        let _ = env.add_template(name, src);
    }
    env.add_function("t", |state: &minijinja::State<'_, '_>, key: &str| {
        let lang = state.lookup("lang").and_then(|v| v.as_str().map(str::to_owned)).unwrap_or_else(|| "en".into());
        t(&lang, key)
    });
    env.add_filter("num", |state: &minijinja::State<'_, '_>, v: u64| {
        let de = state.lookup("lang").is_some_and(|l| l.as_str() == Some("de"));
        group_digits(v, if de { '.' } else { ',' })
    });
    // The filters the templates use besides `safe` and `escape` (always
    // there), with minijinja's meaning, so that its "builtins" feature
    // (some fifty filters, tests and functions: 83 KB of x86_64 code) is
    // left out (tests::filters_the_templates_use). `urlencode` for the
    // scalars the templates pass: every byte but letters, digits and
    // `/.-_` as %XX; none and undefined give "".
    env.add_filter("urlencode", |v: JValue| {
        if v.is_none() || v.is_undefined() {
            String::new()
        } else {
            encode_keeping(v.as_str().map_or_else(|| v.to_string(), str::to_owned).as_str(), b"/.-_")
        }
    });
    env.add_filter("length", |v: JValue| {
        v.len().ok_or_else(|| minijinja::Error::new(JErrorKind::InvalidOperation, format!("{} has no length", v.kind())))
    });
    env.add_filter(
        "default",
        |v: JValue, other: Option<JValue>| {
            if v.is_undefined() { other.unwrap_or_else(|| JValue::from("")) } else { v }
        },
    );
    env.add_filter("join", |v: JValue, sep: Option<&str>| -> Result<String, minijinja::Error> {
        let mut out = String::new();
        for (i, item) in v.try_iter()?.enumerate() {
            if i > 0 {
                out.push_str(sep.unwrap_or(""));
            }
            out.push_str(&item.to_string());
        }
        Ok(out)
    });
    env
}

/// `1234567` -> `1,234,567` (`1.234.567` in German).
fn group_digits(v: u64, sep: char) -> String {
    let s = v.to_string();
    let mut out = String::with_capacity(s.len() + s.len() / 3);
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(sep);
        }
        out.push(c);
    }
    out
}

/// `target` relative to the page at `path` (every page is top-level, so
/// this is `target` itself, or `../target` from a nested path).
pub(crate) fn rel(path: &str, target: &str) -> String {
    let depth = path.trim_start_matches('/').matches('/').count();
    let t = if target.is_empty() { "./" } else { target };
    format!("{}{t}", "../".repeat(depth))
}

/// A file of `web/static/` (gzip-compressed when `gzip`, see
/// `assets::serve`), cached by browsers for an hour. Only the embedded
/// files are served: `name` is looked up, never joined to a path.
pub(crate) fn static_file(name: &str, gzip: bool) -> Resp {
    match assets::serve(&format!("static/{name}"), gzip) {
        Some(r) => r.with("Cache-Control", "public, max-age=3600".into()),
        None => Resp::text(404, "not found\n"),
    }
}

pub(crate) fn language(ctx: &Ctx) -> String {
    Settings::load(&ctx.store).map_or_else(|_| "en".into(), |s| s.language)
}

pub(crate) fn render(ctx: &Ctx, name: &str, c: &Value) -> Resp {
    match ctx.env.get_template(name).and_then(|tpl| tpl.render(minijinja::value::Serde(c))) {
        Ok(html) => Resp::new(200, "text/html; charset=utf-8", html),
        Err(e) => Resp::text(500, format!("template {name}: {e}\n")),
    }
}

pub(crate) fn error(ctx: &Ctx, lang: &str, status: u16, message: &str) -> Resp {
    let mut r = render(ctx, "error.html", &json!({ "lang": lang, "status": status, "message": message }));
    r.status = status;
    r
}

pub(crate) fn store_error(ctx: &Ctx, lang: &str, e: &impl std::fmt::Display) -> Resp {
    error(ctx, lang, 500, &format!("{}: {e}", t(lang, "error.store")))
}

/// Context every signed-in page shares, plus the page's own `more`.
pub(crate) fn page(who: &Who, lang: &str, nav: &str, more: Value) -> Value {
    let csrf = who.session.as_ref().and_then(|s| auth::csrf_token(s).ok()).unwrap_or_default();
    let mut c = Map::new();
    c.insert("lang".into(), json!(lang));
    c.insert("nav".into(), json!(nav));
    c.insert("user".into(), json!(who.user.email.as_str()));
    c.insert("admin".into(), json!(who.is_admin()));
    c.insert("csrf".into(), json!(csrf));
    if let Value::Object(m) = more {
        c.extend(m);
    }
    Value::Object(c)
}

fn random_token() -> String {
    let mut b = [0u8; 16];
    let _ = getrandom::fill(&mut b);
    b.iter().fold(String::with_capacity(32), |mut s, x| {
        use std::fmt::Write as _;
        let _ = write!(s, "{x:02x}");
        s
    })
}

/// Forms shown before a session exists (setup, login) are protected by a
/// double-submit token: a random cookie that the form must echo.
fn pre_csrf(req: &Req) -> (String, Option<String>) {
    match req.cookie(PRE_CSRF_COOKIE) {
        Some(c) if c.len() == 32 => (c.to_owned(), None),
        _ => {
            let c = random_token();
            let set = cookie(req, PRE_CSRF_COOKIE, &c, 3600);
            (c, Some(set))
        }
    }
}

fn pre_csrf_ok(req: &Req) -> bool {
    match (req.cookie(PRE_CSRF_COOKIE), req.f("csrf")) {
        (Some(c), Some(f)) => c.len() == 32 && crate::auth::constant_time_eq(c.as_bytes(), f.as_bytes()),
        _ => false,
    }
}

fn with_cookie(mut r: Resp, set: Option<String>) -> Resp {
    if let Some(c) = set {
        r.headers.push(("Set-Cookie", c));
    }
    r
}

fn start_session(ctx: &Ctx, req: &Req, lang: &str, user: &auth::User, now: Timestamp) -> Resp {
    match auth::create_session(&ctx.store, user, now) {
        Ok((token, _)) => Resp::redirect(&rel(&req.path, ""))
            .with("Set-Cookie", cookie(req, SESSION_COOKIE, &token, auth::SESSION_TTL_SECS))
            .with("Set-Cookie", cookie(req, PRE_CSRF_COOKIE, "", 0)),
        Err(e) => store_error(ctx, lang, &e),
    }
}

pub(crate) fn setup(ctx: &Ctx, req: &Req, lang: &str, now: Timestamp) -> Resp {
    match auth::has_any_user(&ctx.store) {
        Ok(true) => return Resp::redirect(&rel(&req.path, "login")),
        Ok(false) => {}
        Err(e) => return store_error(ctx, lang, &e),
    }
    let (csrf, set) = pre_csrf(req);
    let mut problem = None;
    let mut status = 400;
    let email = req.f("email").unwrap_or_default().to_owned();
    if req.method == Method::Post {
        let password = req.form.iter().find(|(k, _)| k == "password").map_or("", |(_, v)| v.as_str());
        let again = req.form.iter().find(|(k, _)| k == "password2").map_or("", |(_, v)| v.as_str());
        let peer = match req.f("peer_network") {
            Some("share") => PeerChoice::Share,
            Some("consume") => PeerChoice::Consume,
            _ => PeerChoice::Off,
        };
        if !pre_csrf_ok(req) {
            problem = Some(t(lang, "error.csrf"));
            status = 403;
        } else if password != again {
            problem = Some(t(lang, "setup.mismatch"));
        } else {
            match auth::create_user(&ctx.store, &email, password, Role::Admin, now) {
                Ok(user) => {
                    let mut s = Settings::load(&ctx.store).unwrap_or_default();
                    s.peer_network = peer;
                    if let Some(l) = req.f("language").filter(|l| super::LANGUAGES.contains(l)) {
                        l.clone_into(&mut s.language);
                    }
                    if let Err(e) = s.save(&ctx.store) {
                        return store_error(ctx, lang, &e);
                    }
                    super::settings_saved(ctx, &s);
                    return start_session(ctx, req, lang, &user, now);
                }
                Err(e) => problem = Some(e.to_string()),
            }
        }
    }
    let mut r = render(
        ctx,
        "setup.html",
        &json!({ "lang": lang, "csrf": csrf, "email": email, "problem": problem, "languages": super::LANGUAGES }),
    );
    if problem.is_some() {
        r.status = status;
    }
    with_cookie(r, set)
}

pub(crate) fn login(ctx: &Ctx, req: &Req, lang: &str, now: Timestamp) -> Resp {
    let (csrf, set) = pre_csrf(req);
    let email = req.f("email").unwrap_or_default().to_owned();
    let mut problem = None;
    let mut status = 200;
    let mut retry_after = None;
    if req.method == Method::Post {
        let password = req.form.iter().find(|(k, _)| k == "password").map_or("", |(_, v)| v.as_str());
        let ip = req.client.unwrap_or(IpAddr::from([0, 0, 0, 0]));
        let blocked = ctx.login_limiter.lock().map_or(Ok(()), |l| l.check(ip, &email, now));
        if !pre_csrf_ok(req) {
            problem = Some(t(lang, "error.csrf"));
            status = 403;
        } else if let Err(b) = blocked {
            problem = Some(format!("{} ({} s)", t(lang, "login.blocked"), b.retry_after_secs));
            status = 429;
            retry_after = Some(b.retry_after_secs);
        } else {
            match auth::verify_login(&ctx.store, &email, password) {
                Ok(Some(user)) => {
                    if let Ok(mut l) = ctx.login_limiter.lock() {
                        l.record_success(&email);
                    }
                    return start_session(ctx, req, lang, &user, now);
                }
                Ok(None) => {
                    if let Ok(mut l) = ctx.login_limiter.lock() {
                        l.record_failure(ip, &email, now);
                    }
                    problem = Some(t(lang, "login.wrong"));
                    status = 401;
                }
                Err(e) => return store_error(ctx, lang, &e),
            }
        }
    }
    let mut r = render(ctx, "login.html", &json!({ "lang": lang, "csrf": csrf, "email": email, "problem": problem }));
    r.status = status;
    if let Some(wait) = retry_after {
        r.headers.push(("Retry-After", wait.to_string()));
    }
    with_cookie(r, set)
}

pub(crate) fn logout(ctx: &Ctx, req: &Req) -> Resp {
    if let Some(tok) = req.cookie(SESSION_COOKIE) {
        let _ = auth::delete_session(&ctx.store, tok);
    }
    Resp::redirect(&rel(&req.path, "login")).with("Set-Cookie", cookie(req, SESSION_COOKIE, "", 0))
}

/// A time range from `preset` or `from`/`to`, with what the form shows.
#[derive(Serialize)]
pub(crate) struct Range {
    preset: String,
    from: String,
    to: String,
    #[serde(skip)]
    pub(crate) window: Window,
    /// Query string that reproduces the range (for links).
    qs: String,
}

pub(crate) const PRESET_NAMES: [&str; 5] = ["24h", "7d", "30d", "90d", "all"];

const PRESETS: &[(&str, i64)] = &[("24h", 86_400), ("7d", 7 * 86_400), ("30d", 30 * 86_400), ("90d", 90 * 86_400)];

impl Range {
    pub(crate) fn of(req: &Req, tz: &jiff::tz::TimeZone, now: Timestamp, default: &str) -> Result<Range, String> {
        let parse = |name: &str| -> Result<Option<Timestamp>, String> {
            req.q(name).map(|v| crate::clock::parse_time_arg(v, tz).map_err(|e| format!("{name}: {e}"))).transpose()
        };
        let (from, to) = (parse("from")?, parse("to")?);
        if from.is_some() || to.is_some() {
            if let (Some(f), Some(t)) = (from, to)
                && f.0 >= t.0
            {
                return Err("from: must be before to".into());
            }
            let qs = format!("from={}&to={}", encode(req.q("from").unwrap_or_default()), encode(req.q("to").unwrap_or_default()));
            return Ok(Range {
                preset: "custom".into(),
                from: req.q("from").unwrap_or_default().into(),
                to: req.q("to").unwrap_or_default().into(),
                window: Window { from, to },
                qs,
            });
        }
        let preset = req.q("preset").unwrap_or(default);
        if preset == "all" {
            return Ok(Range {
                preset: "all".into(),
                from: String::new(),
                to: String::new(),
                window: Window::default(),
                qs: "preset=all".into(),
            });
        }
        let Some((_, secs)) = PRESETS.iter().find(|(p, _)| *p == preset) else {
            return Err(format!("preset: '{preset}' is not one of 24h, 7d, 30d, 90d, all"));
        };
        // Whole hours, from the start of the hour `secs` ago to the end of
        // the current one: the per-hour tables then answer exactly, and the
        // chart's first and last bars are whole hours.
        let from = Timestamp((now.0 - secs).div_euclid(3600) * 3600);
        let to = Timestamp((now.0 + 1 + 3599).div_euclid(3600) * 3600);
        Ok(Range {
            preset: preset.into(),
            from: String::new(),
            to: String::new(),
            window: Window { from: Some(from), to: Some(to) },
            qs: format!("preset={preset}"),
        })
    }
}

/// Translated words the charts draw themselves.
struct ChartWords {
    no_data: String,
    total: String,
    more: String,
}

impl ChartWords {
    fn as_words(&self) -> chart::Words<'_> {
        chart::Words { no_data: &self.no_data, total: &self.total, more: &self.more }
    }
}

fn words(lang: &str) -> ChartWords {
    ChartWords { no_data: t(lang, "chart.no_data"), total: t(lang, "chart.total"), more: t(lang, "chart.more") }
}

fn overlay(ctx: &Ctx) -> Option<crate::store::query::Overlay> {
    ctx.overlays.as_ref().and_then(crate::control::overlay)
}

/// [`overlay`] with the raw lines not yet committed.
fn overlay_raw(ctx: &Ctx) -> Option<crate::store::query::Overlay> {
    ctx.overlays.as_ref().and_then(|o| crate::control::overlay_with(o, true))
}

/// The chart buckets of a window: hours up to three days, else days.
fn time_chart(ctx: &Ctx, lang: &str, w: Window, hourly: &[(u32, crate::store::DomainCounts)]) -> String {
    let (lo, hi) = match (w.from, w.to, hourly.first(), hourly.last()) {
        (Some(f), Some(t), _, _) => (f.0, t.0),
        (_, _, Some(a), Some(b)) => (i64::from(a.0) * 3600, i64::from(b.0) * 3600 + 3600),
        _ => (0, 0),
    };
    let (buckets, [sent, deferred, bounced, expired]) = chart_buckets(&ctx.cfg.tz, lo, hi, hourly);
    let labels: Vec<chart::Bucket> = buckets.into_iter().map(|(_, label)| chart::Bucket { label }).collect();
    let series = vec![
        chart::Series { name: t(lang, "status.sent"), class: "s-sent", values: sent },
        chart::Series { name: t(lang, "status.deferred"), class: "s-deferred", values: deferred },
        chart::Series { name: t(lang, "status.bounced"), class: "s-bounced", values: bounced },
        chart::Series { name: t(lang, "status.expired"), class: "s-expired", values: expired },
    ];
    chart::stacked_bars_with(&words(lang).as_words(), &t(lang, "dash.over_time"), &t(lang, "dash.over_time_desc"), &labels, &series)
}

/// The bucket of time `t` in `tz`: (its start, its label), an hour, or a
/// local day when `by_day`.
fn chart_key(tz: &jiff::tz::TimeZone, by_day: bool, t: i64) -> (i64, String) {
    let zoned = jiff::Timestamp::from_second(t).unwrap_or_default().to_zoned(tz.clone());
    if by_day {
        let d = zoned.date();
        (d.to_zoned(tz.clone()).map_or(t, |z| z.timestamp().as_second()), d.to_string())
    } else {
        (t - t.rem_euclid(3600), format!("{:02}:00", zoned.hour()))
    }
}

/// The start of the bucket after the one starting at `start`.
fn chart_next(tz: &jiff::tz::TimeZone, by_day: bool, start: i64) -> i64 {
    // A local day lasts 23 to 25 hours: 26 hours on is inside the next.
    if by_day { chart_key(tz, true, start + 26 * 3600).0 } else { start + 3600 }
}

/// The buckets of `[lo, hi)` (at most 400: hours up to three days, else
/// local days) and per bucket the sent, deferred, bounced and expired
/// counts of the `hourly` rows (in hour order).
fn chart_buckets(
    tz: &jiff::tz::TimeZone,
    lo: i64,
    hi: i64,
    hourly: &[(u32, crate::store::DomainCounts)],
) -> (Vec<(i64, String)>, [Vec<u64>; 4]) {
    let by_day = hi - lo > 3 * 86_400;
    // From bucket start to bucket start: stepping a fixed 24 hours from
    // the window's start would skip the day after a 23-hour one.
    let mut buckets: Vec<(i64, String)> = Vec::new();
    let mut start = chart_key(tz, by_day, lo).0;
    while start < hi && buckets.len() < 400 {
        buckets.push(chart_key(tz, by_day, start));
        start = chart_next(tz, by_day, start);
    }
    let mut v: [Vec<u64>; 4] = std::array::from_fn(|_| vec![0; buckets.len()]);
    // Bucket `i` holds the hours from its start to the next one's, the
    // last to the window's end (or the next bucket's start when the cap
    // cut the list). The rows are in order: one walk, no time zone
    // arithmetic per row.
    let end = buckets.last().map_or(hi, |b| hi.min(chart_next(tz, by_day, b.0)));
    let mut i = 0;
    for (h, c) in hourly {
        let t = i64::from(*h) * 3600;
        while buckets.get(i + 1).is_some_and(|b| b.0 <= t) {
            i += 1;
        }
        if buckets.get(i).is_none_or(|b| t < b.0) || t >= end {
            continue;
        }
        v[0][i] += c.outbound[0] + c.inbound[0];
        v[1][i] += c.deferrals;
        v[2][i] += c.outbound[1] + c.inbound[1];
        v[3][i] += c.outbound[2] + c.inbound[2];
    }
    (buckets, v)
}

use super::dash::DomainRow;

pub(crate) fn dashboard(ctx: &Ctx, req: &Req, who: &Who, lang: &str, now: Timestamp) -> Resp {
    let range = match Range::of(req, &ctx.cfg.tz, now, "7d") {
        Ok(r) => r,
        Err(e) => return error(ctx, lang, 400, &e),
    };
    let w = range.window;
    let o = overlay(ctx);
    // Totals exact to the second; the attacking IPs' chart from the
    // per-hour table (thousands of blocks' IP lists are not read).
    let stats = match ctx.store.stats_live_with(w, o.as_ref(), false) {
        Ok(s) => s,
        Err(e) => return store_error(ctx, lang, &e),
    };
    let (hourly, domains) = match (ctx.store.hourly_live(w, o.as_ref()), ctx.store.domains_split(w, o.as_ref())) {
        (Ok(h), Ok(d)) => (h, d),
        (Err(e), _) | (_, Err(e)) => return store_error(ctx, lang, &e),
    };
    let over_time = time_chart(ctx, lang, w, &hourly);
    // Remote domains, grouped by provider.
    let [busiest, bounced, deferred] = super::dash::domain_tops(&ctx.dash, &ctx.cfg.domain_map, &domains).map(|mut rows| {
        for r in &mut rows {
            if r.name.is_empty() {
                r.name = t(lang, "dash.unknown_domain");
            }
        }
        rows
    });
    let bar = |rows: &[DomainRow], f: fn(&DomainRow) -> u64, class: &'static str, title: &str| {
        let rows: Vec<(String, u64, &'static str)> = rows.iter().map(|r| (r.name.clone(), f(r), class)).collect();
        chart::hbars_with(&words(lang).as_words(), title, &t(lang, "dash.domains_desc"), &rows)
    };
    let busiest_chart = bar(&busiest, |r| r.total, "s-sent", &t(lang, "dash.busiest"));
    let bounced_chart = bar(&bounced, |r| r.bounced, "s-bounced", &t(lang, "dash.most_bounced"));
    let deferred_chart = bar(&deferred, |r| r.deferred, "s-deferred", &t(lang, "dash.most_deferred"));
    let d = &stats.deliveries;
    let totals_chart = chart::proportion_bar_with(
        &words(lang).as_words(),
        &t(lang, "dash.totals"),
        &t(lang, "dash.totals_desc"),
        &[
            (t(lang, "status.sent"), d.sent, "s-sent"),
            (t(lang, "status.bounced"), d.bounced, "s-bounced"),
            (t(lang, "status.expired"), d.expired, "s-expired"),
            (t(lang, "status.pending"), d.pending, "s-pending"),
        ],
    );
    // Attacks: top IPs and the protocols they tried.
    let (ips, protos) = match ctx.store.auth_split(w, o.as_ref()) {
        Ok(split) => super::dash::ip_tops(&ctx.dash, &split),
        Err(e) => return store_error(ctx, lang, &e),
    };
    // The template shows totals only: leave the per-IP map out of it.
    let mut stats = stats;
    stats.auth_failures.by_ip.clear();
    let attack_rows: Vec<(String, u64, &'static str)> = ips.iter().map(|(ip, n, _)| (ip.clone(), *n, "s-bounced")).collect();
    let attack_chart =
        chart::hbars_with(&words(lang).as_words(), &t(lang, "dash.attackers"), &t(lang, "dash.attackers_desc"), &attack_rows);
    // End users' escalations (public detective), newest first.
    let mut escalations: Vec<serde_json::Value> = ctx
        .store
        .kv_get::<Vec<Escalation>>("escalations")
        .ok()
        .flatten()
        .unwrap_or_default()
        .iter()
        .rev()
        .take(10)
        .map(|e| {
            json!({
                "time": local_time(&ctx.cfg.tz, Timestamp(e.time)), "sender": e.sender, "recipient": e.recipient,
                "link": format!("message?qid={}&rcpt={}", encode(&e.queue_id), encode(&e.recipient)),
            })
        })
        .collect();
    if !who.is_admin() {
        escalations.clear();
    }
    let c = page(
        who,
        lang,
        "dashboard",
        json!({
            "escalations": escalations,
            "range": range, "stats": stats, "over_time": over_time, "totals_chart": totals_chart,
            "insights": super::insights::panel(ctx),
            "busiest_chart": busiest_chart, "bounced_chart": bounced_chart, "deferred_chart": deferred_chart,
            "attack_chart": attack_chart, "busiest": busiest, "bounced": bounced, "deferred": deferred,
            "protos": { "smtp": protos[0], "imap": protos[1], "pop3": protos[2], "other": protos[3] },
            "presets": PRESET_NAMES,
        }),
    );
    render(ctx, "dashboard.html", &c)
}

/// One delivery as the pages show it.
#[derive(Serialize)]
struct Row {
    time: String,
    queued: String,
    qid: String,
    queue_ids: Vec<String>,
    message_id: String,
    sender: String,
    recipient: String,
    orig_recipient: String,
    status: &'static str,
    direction: &'static str,
    relay: String,
    dsn: String,
    response: String,
    attempts: u32,
    deferrals: u32,
    notification: String,
    client_ip: String,
    sasl_user: String,
    link: String,
}

fn local_time(tz: &jiff::tz::TimeZone, t: Timestamp) -> String {
    jiff::Timestamp::from_second(t.0)
        .map_or_else(|_| t.0.to_string(), |ts| ts.to_zoned(tz.clone()).strftime("%Y-%m-%d %H:%M:%S").to_string())
}

fn row(tz: &jiff::tz::TimeZone, d: &DeliveryRec) -> Row {
    let s = |o: &Option<String>| o.clone().unwrap_or_default();
    let qid = d.queue_ids.first().cloned().unwrap_or_default();
    let rcpt = s(&d.recipient);
    Row {
        time: local_time(tz, d.time),
        queued: local_time(tz, d.queue_time),
        link: format!("message?qid={}&rcpt={}&t={}", encode(&qid), encode(&rcpt), d.time.0),
        qid,
        queue_ids: d.queue_ids.clone(),
        message_id: s(&d.message_id),
        sender: match &d.sender {
            Some(x) if x.is_empty() => "<>".into(),
            x => s(x),
        },
        recipient: rcpt,
        orig_recipient: s(&d.orig_recipient),
        status: match d.outcome() {
            Outcome::Sent => "sent",
            Outcome::Bounced => "bounced",
            Outcome::Expired => "expired",
            Outcome::Pending => "pending",
        },
        direction: match d.direction() {
            Direction::Outbound => "outbound",
            Direction::Inbound => "inbound",
        },
        relay: s(&d.relay),
        dsn: s(&d.dsn),
        response: s(&d.response),
        attempts: d.attempts,
        deferrals: d.deferrals,
        notification: s(&d.notification_queue_id),
        client_ip: s(&d.client_ip),
        sasl_user: s(&d.sasl_user),
    }
}

const STATUSES: &[&str] = &["sent", "bounced", "expired", "pending", "deferred"];

fn query_of(req: &Req, range: &Range) -> Result<Query, String> {
    let status = req.q("status").map(str::to_owned);
    if let Some(s) = &status
        && !STATUSES.contains(&s.as_str())
    {
        return Err(format!("status: '{s}' is not one of {}", STATUSES.join(", ")));
    }
    Ok(Query {
        sender: req.q("sender").map(str::to_owned),
        recipient: req.q("recipient").map(str::to_owned),
        id: req.q("id").map(|s| s.trim_matches(|c| c == '<' || c == '>').to_owned()),
        status,
        window: range.window,
        limit: limits::DETECTIVE_RESULTS,
    })
}

fn search(ctx: &Ctx, q: &Query) -> Result<Vec<DeliveryRec>, crate::store::StoreError> {
    ctx.store.search_live(q, overlay(ctx).as_ref())
}

pub(crate) fn detective(ctx: &Ctx, req: &Req, who: &Who, lang: &str, now: Timestamp) -> Resp {
    let range = match Range::of(req, &ctx.cfg.tz, now, "all") {
        Ok(r) => r,
        Err(e) => return error(ctx, lang, 400, &e),
    };
    let q = match query_of(req, &range) {
        Ok(q) => q,
        Err(e) => return error(ctx, lang, 400, &e),
    };
    let asked = q.sender.is_some() || q.recipient.is_some() || q.id.is_some() || q.status.is_some();
    let rows: Vec<Row> = if asked {
        match search(ctx, &q) {
            Ok(v) => v.iter().map(|d| row(&ctx.cfg.tz, d)).collect(),
            Err(e) => return store_error(ctx, lang, &e),
        }
    } else {
        Vec::new()
    };
    let csv =
        format!("detective.csv?{}", req.query.iter().map(|(k, v)| format!("{}={}", encode(k), encode(v))).collect::<Vec<_>>().join("&"));
    let c = page(
        who,
        lang,
        "detective",
        json!({
            "range": range, "asked": asked, "rows": rows, "csv": csv, "limit": limits::DETECTIVE_RESULTS, "statuses": STATUSES,
            "sender": req.q("sender"), "recipient": req.q("recipient"), "id": req.q("id"), "status": req.q("status"),
        }),
    );
    render(ctx, "detective.html", &c)
}

fn csv_field(s: &str) -> String {
    // Quote always; neutralise spreadsheet formulas.
    let s = if s.starts_with(['=', '+', '-', '@']) { format!("'{s}") } else { s.to_owned() };
    format!("\"{}\"", s.replace('"', "\"\""))
}

pub(crate) fn detective_csv(ctx: &Ctx, req: &Req, now: Timestamp) -> Resp {
    let range = match Range::of(req, &ctx.cfg.tz, now, "all") {
        Ok(r) => r,
        Err(e) => return Resp::text(400, format!("{e}\n")),
    };
    let q = match query_of(req, &range) {
        Ok(q) => q,
        Err(e) => return Resp::text(400, format!("{e}\n")),
    };
    let found = match search(ctx, &q) {
        Ok(v) => v,
        Err(e) => return Resp::text(500, format!("{e}\n")),
    };
    let mut out = String::from(
        "time,queued,queue_ids,message_id,sender,recipient,orig_recipient,status,direction,relay,dsn,attempts,deferrals,response\r\n",
    );
    for d in &found {
        let r = row(&ctx.cfg.tz, d);
        let fields = [
            r.time,
            r.queued,
            r.queue_ids.join(" "),
            r.message_id,
            r.sender,
            r.recipient,
            r.orig_recipient,
            r.status.into(),
            r.direction.into(),
            r.relay,
            r.dsn,
            r.attempts.to_string(),
            r.deferrals.to_string(),
            r.response,
        ];
        out.push_str(&fields.iter().map(|f| csv_field(f)).collect::<Vec<_>>().join(","));
        out.push_str("\r\n");
    }
    Resp::new(200, "text/csv; charset=utf-8", out).with("Content-Disposition", "attachment; filename=\"postlens-messages.csv\"".into())
}

/// One delivery attempt read back from a raw line.
#[derive(Serialize)]
struct Attempt {
    time: String,
    daemon: String,
    status: &'static str,
    relay: String,
    dsn: String,
    delay: String,
    response: String,
}

fn lossy(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

pub(crate) fn message(ctx: &Ctx, req: &Req, who: &Who, lang: &str, _now: Timestamp) -> Resp {
    let Some(qid) = req.q("qid") else { return error(ctx, lang, 400, "qid: missing") };
    let rcpt = req.q("rcpt");
    let q = Query {
        sender: None,
        recipient: None,
        id: Some(qid.to_owned()),
        status: None,
        window: Window::default(),
        limit: limits::DETECTIVE_RESULTS,
    };
    let found = match search(ctx, &q) {
        Ok(v) => v,
        Err(e) => return store_error(ctx, lang, &e),
    };
    let t_hint: Option<i64> = req.q("t").and_then(|v| v.parse().ok());
    let Some(d) = found
        .iter()
        .filter(|d| rcpt.is_none_or(|r| d.recipient.as_deref().is_some_and(|x| x.eq_ignore_ascii_case(r))))
        .min_by_key(|d| t_hint.map_or(0, |t| (d.time.0 - t).abs()))
    else {
        return error(ctx, lang, 404, &t(lang, "message.not_found"));
    };
    // The raw lines behind it: every line naming one of its queue IDs.
    let mut needles: Vec<&str> = d.queue_ids.iter().map(String::as_str).collect();
    if let Some(n) = &d.notification_queue_id {
        needles.push(n);
    }
    // A pending delivery is dated by its queueing, but its attempts go on
    // after that: its window stays open.
    let to = (d.outcome() != Outcome::Pending).then(|| Timestamp(d.time.0.max(d.queue_time.0) + 3600));
    let w = Window { from: Some(Timestamp(d.queue_time.0.min(d.time.0) - 3600)), to };
    let (lines, cut) =
        match ctx.store.raw_matching(w, &needles, limits::DETECTIVE_RAW_LINES, limits::DETECTIVE_RAW_SCAN_BYTES, overlay_raw(ctx).as_ref())
        {
            Ok(v) => v,
            Err(e) => return store_error(ctx, lang, &e),
        };
    // Every attempt for this recipient, read back from those lines. The
    // hand-over to a content filter (`status=sent`, "queued as" the next
    // ID of this very chain) is not a delivery attempt (DESIGN.md), so it
    // is left out, as `attempts` leaves it out.
    let want = d.recipient.as_deref().unwrap_or_default();
    let filter_hop = |x: &crate::parse::Delivery<'_>| {
        x.status == crate::parse::Status::Sent && x.queued_as.is_some_and(|q| d.queue_ids.iter().any(|id| id.as_bytes() == q.0))
    };
    let mut attempts = Vec::new();
    for (time, l) in &lines {
        if let Ok(ev) = crate::parse::parse(l)
            && let crate::parse::Kind::Delivery(x) = ev.kind
            && lossy(x.to).eq_ignore_ascii_case(want)
            && !filter_hop(&x)
        {
            attempts.push(Attempt {
                time: local_time(&ctx.cfg.tz, *time),
                daemon: ev.daemon.name().to_owned(),
                status: match x.status {
                    crate::parse::Status::Sent => "sent",
                    crate::parse::Status::Deferred => "deferred",
                    crate::parse::Status::Bounced => "bounced",
                    crate::parse::Status::Expired => "expired",
                    crate::parse::Status::Probe => "probe",
                },
                relay: lossy(x.relay),
                dsn: x.dsn.map(lossy).unwrap_or_default(),
                delay: x.delay.map(lossy).unwrap_or_default(),
                response: lossy(x.response),
            });
        }
    }
    let raw: Vec<String> = lines.iter().map(|(_, l)| lossy(l)).collect();
    let c = page(who, lang, "detective", json!({ "m": row(&ctx.cfg.tz, d), "attempts": attempts, "raw": raw, "cut": cut }));
    render(ctx, "message.html", &c)
}

pub(crate) fn mailbox(ctx: &Ctx, req: &Req, who: &Who, lang: &str, now: Timestamp) -> Resp {
    let range = match Range::of(req, &ctx.cfg.tz, now, "30d") {
        Ok(r) => r,
        Err(e) => return error(ctx, lang, 400, &e),
    };
    let address = req.q("address").map(str::to_owned);
    let mut sent_by = [0u64; 4];
    let mut received = [0u64; 4];
    let mut rows = Vec::new();
    if let Some(a) = &address {
        for (as_sender, counts) in [(true, &mut sent_by), (false, &mut received)] {
            let q = Query {
                sender: as_sender.then(|| a.clone()),
                recipient: (!as_sender).then(|| a.clone()),
                id: None,
                status: None,
                window: range.window,
                limit: limits::DETECTIVE_RESULTS,
            };
            let o = overlay(ctx);
            match (ctx.store.count_live(&q, o.as_ref()), ctx.store.search_live(&q, o.as_ref())) {
                (Ok(n), Ok(v)) => {
                    *counts = n;
                    rows.extend(v.iter().map(|d| row(&ctx.cfg.tz, d)));
                }
                (Err(e), _) | (_, Err(e)) => return store_error(ctx, lang, &e),
            }
        }
        rows.sort_by(|a, b| b.time.cmp(&a.time));
        rows.truncate(limits::DETECTIVE_RESULTS);
    }
    let c = page(
        who,
        lang,
        "mailbox",
        json!({
            "range": range, "address": address, "rows": rows, "limit": limits::DETECTIVE_RESULTS,
            "sent_by": { "sent": sent_by[0], "bounced": sent_by[1], "expired": sent_by[2], "pending": sent_by[3] },
            "received": { "sent": received[0], "bounced": received[1], "expired": received[2], "pending": received[3] },
            "presets": PRESET_NAMES,
        }),
    );
    render(ctx, "mailbox.html", &c)
}

pub(crate) fn logs(ctx: &Ctx, req: &Req, who: &Who, lang: &str, now: Timestamp) -> Resp {
    let range = match Range::of(req, &ctx.cfg.tz, now, "24h") {
        Ok(r) => r,
        Err(e) => return error(ctx, lang, 400, &e),
    };
    let page_no: usize = match req.q("page").map(str::parse::<usize>) {
        None => 1,
        Some(Ok(n)) if (1..=1_000_000).contains(&n) => n,
        Some(_) => return error(ctx, lang, 400, "page: must be a number from 1"),
    };
    let per = limits::RAW_PAGE_LINES;
    let lines = match ctx.store.raw_lines_live(range.window, (page_no - 1) * per, per + 1, overlay_raw(ctx).as_ref()) {
        Ok(v) => v,
        Err(e) => return store_error(ctx, lang, &e),
    };
    let more = lines.len() > per;
    let shown: Vec<(String, String)> = lines.iter().take(per).map(|(t, l)| (local_time(&ctx.cfg.tz, *t), lossy(l))).collect();
    let c = page(who, lang, "logs", json!({ "range": range, "lines": shown, "page": page_no, "more": more, "presets": PRESET_NAMES }));
    render(ctx, "logs.html", &c)
}

pub(crate) fn logs_download(ctx: &Ctx, req: &Req, now: Timestamp) -> Resp {
    let range = match Range::of(req, &ctx.cfg.tz, now, "24h") {
        Ok(r) => r,
        Err(e) => return Resp::text(400, format!("{e}\n")),
    };
    // Streamed a block at a time, then the lines not yet committed.
    let uncommitted = overlay_raw(ctx).map(|o| o.raw).unwrap_or_default();
    let text = RawDownload {
        store: ctx.store.clone(),
        window: range.window,
        after: None,
        done: false,
        uncommitted: uncommitted.into_iter(),
        left: limits::RAW_DOWNLOAD_LINES,
        buf: Vec::new(),
        at: 0,
    };
    if req.q("gzip").is_some() {
        let gz = flate2::read::GzEncoder::new(text, flate2::Compression::default());
        Resp::new(200, "application/gzip", Vec::new())
            .with("Content-Disposition", "attachment; filename=\"mail.log.gz\"".into())
            .streaming(gz)
    } else {
        Resp::new(200, "text/plain; charset=utf-8", Vec::new())
            .with("Content-Disposition", "attachment; filename=\"mail.log\"".into())
            .streaming(text)
    }
}

/// The raw lines of a window as a byte stream: one decoded block in memory
/// at a time, at most `RAW_DOWNLOAD_LINES` lines.
struct RawDownload {
    store: std::sync::Arc<crate::store::Store>,
    window: Window,
    /// Key of the last block sent.
    after: Option<u64>,
    /// Every committed block is sent.
    done: bool,
    uncommitted: std::vec::IntoIter<(i64, Vec<u8>)>,
    left: usize,
    buf: Vec<u8>,
    at: usize,
}

impl RawDownload {
    /// Refills `buf`; `false` at the end.
    fn refill(&mut self) -> std::io::Result<bool> {
        self.buf.clear();
        self.at = 0;
        if self.left == 0 {
            return Ok(false);
        }
        let push = |buf: &mut Vec<u8>, left: &mut usize, l: &[u8]| {
            if *left > 0 {
                buf.extend_from_slice(l);
                buf.push(b'\n');
                *left -= 1;
            }
        };
        while !self.done && self.buf.is_empty() {
            match self.store.raw_block_after(self.window, self.after).map_err(std::io::Error::other)? {
                Some((k, lines)) => {
                    self.after = Some(k);
                    for (_, l) in &lines {
                        push(&mut self.buf, &mut self.left, l);
                    }
                }
                None => self.done = true,
            }
        }
        if self.buf.is_empty() {
            for (t, l) in self.uncommitted.by_ref() {
                if self.window.contains(t) {
                    push(&mut self.buf, &mut self.left, &l);
                    if self.buf.len() >= 64 * 1024 {
                        break;
                    }
                }
            }
        }
        Ok(!self.buf.is_empty())
    }
}

impl std::io::Read for RawDownload {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        if self.at >= self.buf.len() && !self.refill()? {
            return Ok(0);
        }
        let n = out.len().min(self.buf.len() - self.at);
        out[..n].copy_from_slice(&self.buf[self.at..self.at + n]);
        self.at += n;
        Ok(n)
    }
}

/// The public detective's per-client limiter: at most `PUBLIC_SEARCHES`
/// searches per `PUBLIC_WINDOW_SECS` window. Holds at most
/// `PUBLIC_LIMITER_CLIENTS` clients; when full, an expired window is
/// reused, else the oldest window is dropped (that client starts afresh).
#[derive(Default)]
pub(crate) struct PublicLimiter {
    clients: HashMap<IpAddr, (i64, u32)>,
}

impl PublicLimiter {
    /// Counts one search; `Err(seconds until allowed)` when over the limit.
    pub fn hit(&mut self, ip: IpAddr, now: Timestamp) -> Result<(), i64> {
        if !self.clients.contains_key(&ip) && self.clients.len() >= limits::PUBLIC_LIMITER_CLIENTS {
            let victim = self.clients.iter().min_by_key(|(_, (start, _))| *start).map(|(k, _)| *k);
            if let Some(v) = victim {
                self.clients.remove(&v);
            }
        }
        let e = self.clients.entry(ip).or_insert((now.0, 0));
        if now.0 - e.0 >= limits::PUBLIC_WINDOW_SECS {
            *e = (now.0, 0);
        }
        if e.1 >= limits::PUBLIC_SEARCHES {
            return Err(e.0 + limits::PUBLIC_WINDOW_SECS - now.0);
        }
        e.1 += 1;
        Ok(())
    }
}

/// What the public detective may say about a message: its outcome, no
/// more (no relays, responses or other recipients).
#[derive(Serialize)]
struct PublicRow {
    time: String,
    status: &'static str,
    qid: String,
    escalate: bool,
}

pub(crate) fn public(ctx: &Ctx, req: &Req, lang: &str, now: Timestamp) -> Resp {
    let settings = Settings::load(&ctx.store).unwrap_or_default();
    if !settings.public_detective {
        return error(ctx, lang, 404, &t(lang, "public.off"));
    }
    let (csrf, set) = pre_csrf(req);
    let sender = req.q("sender").or_else(|| req.f("sender")).map(str::to_owned);
    let recipient = req.q("recipient").or_else(|| req.f("recipient")).map(str::to_owned);
    let mut rows = Vec::new();
    let mut problem = None;
    let mut status = 200;
    let asked = req.method == Method::Post;
    if asked {
        let valid = |a: &Option<String>| a.as_deref().is_some_and(|x| crate::auth::Email::parse(x).is_ok());
        let ip = req.client.unwrap_or(IpAddr::from([0, 0, 0, 0]));
        let allowed = ctx.public_limiter.lock().map_or(Ok(()), |mut l| l.hit(ip, now));
        if !pre_csrf_ok(req) {
            problem = Some(t(lang, "error.csrf"));
            status = 403;
        } else if let Err(wait) = allowed {
            let mut r = error(ctx, lang, 429, &format!("{} ({wait} s)", t(lang, "public.too_many")));
            r.headers.push(("Retry-After", wait.to_string()));
            return r;
        } else if !valid(&sender) || !valid(&recipient) {
            problem = Some(t(lang, "public.need_both"));
            status = 400;
        } else {
            let range = match Range::of(req, &ctx.cfg.tz, now, "30d") {
                Ok(r) => r,
                Err(e) => return error(ctx, lang, 400, &e),
            };
            let q = Query { sender: sender.clone(), recipient: recipient.clone(), id: None, status: None, window: range.window, limit: 50 };
            match search(ctx, &q) {
                Ok(v) => {
                    rows = v
                        .iter()
                        // Exact addresses only: no `@domain` wildcards here.
                        .filter(|d| {
                            d.sender.as_deref().is_some_and(|s| sender.as_deref().is_some_and(|x| s.eq_ignore_ascii_case(x)))
                                && d.recipient.as_deref().is_some_and(|r| recipient.as_deref().is_some_and(|x| r.eq_ignore_ascii_case(x)))
                        })
                        .map(|d| {
                            let r = row(&ctx.cfg.tz, d);
                            PublicRow { time: r.time, status: r.status, qid: r.qid, escalate: d.outcome() != Outcome::Sent }
                        })
                        .collect();
                }
                Err(e) => return store_error(ctx, lang, &e),
            }
        }
    }
    let mut r = render(
        ctx,
        "public.html",
        &json!({
            "lang": lang, "csrf": csrf, "sender": sender, "recipient": recipient, "rows": rows, "asked": asked,
            "problem": problem, "escalated": req.q("escalated").is_some(),
        }),
    );
    r.status = status;
    with_cookie(r, set)
}

/// An end user's request that the admin look at an undelivered message.
#[derive(Serialize, serde::Deserialize, Clone, Debug, PartialEq, Eq)]
pub(crate) struct Escalation {
    pub time: i64,
    pub sender: String,
    pub recipient: String,
    pub queue_id: String,
    pub client: String,
}

pub(crate) fn escalate(ctx: &Ctx, req: &Req, lang: &str, now: Timestamp) -> Resp {
    let settings = Settings::load(&ctx.store).unwrap_or_default();
    if !settings.public_detective {
        return error(ctx, lang, 404, &t(lang, "public.off"));
    }
    if !pre_csrf_ok(req) {
        return error(ctx, lang, 403, &t(lang, "error.csrf"));
    }
    let (Some(sender), Some(recipient), Some(qid)) = (req.f("sender"), req.f("recipient"), req.f("qid")) else {
        return error(ctx, lang, 400, &t(lang, "public.need_both"));
    };
    // Only a message the same search would show, and not delivered.
    let q = Query {
        sender: Some(sender.to_owned()),
        recipient: Some(recipient.to_owned()),
        id: Some(qid.to_owned()),
        status: None,
        window: Window::default(),
        limit: 10,
    };
    let found = match search(ctx, &q) {
        Ok(v) => v,
        Err(e) => return store_error(ctx, lang, &e),
    };
    if !found.iter().any(|d| d.outcome() != Outcome::Sent) {
        return error(ctx, lang, 400, &t(lang, "public.cannot_escalate"));
    }
    let e = Escalation {
        time: now.0,
        sender: sender.to_owned(),
        recipient: recipient.to_owned(),
        queue_id: qid.to_owned(),
        client: req.client.map(|c| c.to_string()).unwrap_or_default(),
    };
    let status = found.iter().find(|d| d.outcome() != Outcome::Sent).map_or("pending", |d| d.outcome().as_str());
    if let Err(e) = crate::insights::escalation(&ctx.store, sender, recipient, qid, status, now) {
        return store_error(ctx, lang, &e);
    }
    let r = ctx.store.kv_update::<Vec<Escalation>>("escalations", |v| {
        if !v.iter().any(|x| x.queue_id == e.queue_id && x.recipient.eq_ignore_ascii_case(&e.recipient)) {
            v.push(e);
        }
        let over = v.len().saturating_sub(limits::MAX_ESCALATIONS);
        v.drain(..over);
    });
    if let Err(e) = r {
        return store_error(ctx, lang, &e);
    }
    Resp::redirect(&format!("{}?escalated=1", rel(&req.path, "public")))
}

#[cfg(test)]
mod tests {
    /// The one-walk bucketing against the per-row bucket key, over windows
    /// crossing daylight-saving changes, cut by the bucket cap, and with
    /// rows before and after the window.
    #[test]
    fn chart_buckets_match_the_per_row_key() {
        let tz = jiff::tz::TimeZone::get("Europe/Berlin").expect("tzdata in /usr/share/zoneinfo");
        let mut x: u64 = 0x2545_f491_4f6c_dd1d;
        let mut next = |n: u64| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x % n
        };
        for case in 0..300 {
            // Around the 2026 changes (29 March, 25 October) and far spans.
            let base = [1_774_742_400_i64, 1_792_886_400, 1_767_225_600][case % 3];
            let lo = base - i64::try_from(next(10 * 86_400)).unwrap();
            let len = [3600 * 20, 86_400 * 3, 86_400 * 9, 86_400 * 500][case % 4];
            let hi = lo + 3600 + i64::try_from(next(len)).unwrap();
            let h0 = u32::try_from(lo / 3600).unwrap() - 2;
            let h1 = u32::try_from(hi / 3600).unwrap() + 2;
            let mut hourly: Vec<(u32, crate::store::DomainCounts)> = Vec::new();
            for h in h0..h1 {
                if next(3) > 0 {
                    let c = crate::store::DomainCounts {
                        outbound: [next(9), next(3), next(2)],
                        inbound: [next(9), next(2), 0],
                        deferrals: next(5),
                    };
                    hourly.push((h, c));
                }
            }
            let (buckets, got) = super::chart_buckets(&tz, lo, hi, &hourly);
            let by_day = hi - lo > 3 * 86_400;
            // Capped: the hours up to the next bucket's start only; else
            // the last bucket holds the window's last second.
            let last = buckets.last().unwrap().0;
            let end = hi.min(super::chart_next(&tz, by_day, last));
            // Every hour of the window has its bucket (up to the cap).
            for t in (lo..end).step_by(3600).chain([end - 1]) {
                let k = super::chart_key(&tz, by_day, t).0;
                assert!(buckets.binary_search_by_key(&k, |b| b.0).is_ok(), "case {case}: no bucket for {t}");
            }
            let mut want: [Vec<u64>; 4] = std::array::from_fn(|_| vec![0; buckets.len()]);
            for (h, c) in &hourly {
                let t = i64::from(*h) * 3600;
                let k = super::chart_key(&tz, by_day, t).0;
                if let Ok(i) = buckets.binary_search_by_key(&k, |b| b.0)
                    && t < end
                {
                    want[0][i] += c.outbound[0] + c.inbound[0];
                    want[1][i] += c.deferrals;
                    want[2][i] += c.outbound[1] + c.inbound[1];
                    want[3][i] += c.outbound[2] + c.inbound[2];
                }
            }
            assert_eq!(got, want, "case {case}: [{lo}, {hi})");
        }
    }

    use super::*;

    #[test]
    fn every_template_parses() {
        let env = environment();
        for (name, _) in assets::bundled_in("templates") {
            env.get_template(name).unwrap_or_else(|e| panic!("{name}: {e}"));
        }
    }

    /// The filters defined in [`environment`] in place of minijinja's
    /// builtins answer what those answer for what the templates pass, and
    /// no template uses a filter that is not defined (an unknown filter is
    /// an error only when a page renders).
    #[test]
    fn filters_the_templates_use() {
        let env = environment();
        let got = env
            .render_str(
                "{{ v|length }} {{ s|length }} [{{ missing|default('') }}] {{ missing|default('d') }} {{ s|default('d') }} \
                 {{ v|join(' → ') }} {{ v|join }}{% for k, x in missing|default([]) %}x{% endfor %} \
                 {{ 'a b/c@d~é.-_'|urlencode }} {{ 42|urlencode }}[{{ missing|urlencode }}]",
                minijinja::context! { v => vec!["A1", "B2"], s => "abc" },
            )
            .expect("renders");
        assert_eq!(got, "2 3 [] d abc A1 → B2 A1B2 a%20b/c%40d%7E%C3%A9.-_ 42[]");
        let defined = ["num", "length", "default", "join", "safe", "escape", "e", "urlencode"];
        for (name, src) in assets::bundled_in("templates") {
            for block in ["{{", "{%"].into_iter().flat_map(|open| src.split(open).skip(1)) {
                let inside = block.split(['}', '%']).next().unwrap_or("");
                for after in inside.split('|').skip(1) {
                    let filter: String = after.trim_start().chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_').collect();
                    assert!(defined.contains(&filter.as_str()), "{name} uses the filter '{filter}', not defined in environment()");
                }
            }
        }
    }

    #[test]
    fn relative_links_from_any_depth() {
        assert_eq!(rel("/", "login"), "login");
        assert_eq!(rel("/detective", ""), "./");
        assert_eq!(rel("/public/escalate", "public"), "../public");
    }

    #[test]
    fn digits_group() {
        assert_eq!(group_digits(0, ','), "0");
        assert_eq!(group_digits(999, ','), "999");
        assert_eq!(group_digits(1_234_567, ','), "1,234,567");
        assert_eq!(group_digits(1_234_567, '.'), "1.234.567");
    }

    #[test]
    fn csv_fields_are_quoted_and_formulas_neutralised() {
        assert_eq!(csv_field("a\"b"), "\"a\"\"b\"");
        assert_eq!(csv_field("=HYPERLINK(1)"), "\"'=HYPERLINK(1)\"");
    }

    #[test]
    fn public_limiter_allows_twenty_per_window_and_stays_bounded() {
        let mut l = PublicLimiter::default();
        let ip: IpAddr = "192.0.2.1".parse().unwrap();
        for _ in 0..limits::PUBLIC_SEARCHES {
            assert!(l.hit(ip, Timestamp(1_000)).is_ok());
        }
        assert_eq!(l.hit(ip, Timestamp(1_100)), Err(500));
        assert!(l.hit(ip, Timestamp(1_000 + limits::PUBLIC_WINDOW_SECS)).is_ok());
        for i in 0..(u32::try_from(limits::PUBLIC_LIMITER_CLIENTS).unwrap() + 10) {
            let _ = l.hit(IpAddr::from(i.to_be_bytes()), Timestamp(2_000 + i64::from(i)));
        }
        assert_eq!(l.clients.len(), limits::PUBLIC_LIMITER_CLIENTS);
    }
}
