//! The settings page: general settings, detective, insight thresholds and
//! peer network in one form (`POST /settings`); notification channels with
//! their delivery status, added, switched, removed and tested through
//! `POST /settings/notify`. Secrets are never shown back (redacted).

use super::i18n::t;
use super::pages::{error, page, render, store_error};
use super::req::{Method, Req};
use super::{Ctx, Resp, Who};
use crate::clock::Timestamp;
use crate::notify::{ChannelConfig, ChannelKind, Notification, NotifyConfig, Secret, Severity, SmtpSecurity};
use crate::settings::{PeerChoice, Settings};
use serde_json::{Value, json};

fn opt(req: &Req, name: &str) -> Option<String> {
    req.f(name).map(str::trim).filter(|v| !v.is_empty()).map(str::to_owned)
}

/// A whole number from field `ins_<name>`, or the current value when the
/// field is absent; the error names the setting.
fn number<T: std::str::FromStr + Copy>(req: &Req, name: &str, current: T) -> Result<T, String> {
    match req.f(&format!("ins_{name}")).map(str::trim) {
        None | Some("") => Ok(current),
        Some(v) => v.parse().map_err(|_| format!("insights.{name}: must be a whole number")),
    }
}

/// The settings the main form describes (notification channels kept).
fn from_form(req: &Req, old: &Settings) -> Result<Settings, String> {
    let retention_days = match req.f("retention_days").map(str::trim) {
        None | Some("") => None,
        Some(d) => Some(d.parse::<u32>().map_err(|_| "retention_days: must be a whole number of days".to_owned())?),
    };
    let o = &old.insights;
    let insights = crate::insights::InsightConfig {
        bounce_rate_percent: number(req, "bounce_rate_percent", o.bounce_rate_percent)?,
        bounce_window_hours: number(req, "bounce_window_hours", o.bounce_window_hours)?,
        bounce_min_deliveries: number(req, "bounce_min_deliveries", o.bounce_min_deliveries)?,
        inactivity_hours: number(req, "inactivity_hours", o.inactivity_hours)?,
        inactivity_min_before: number(req, "inactivity_min_before", o.inactivity_min_before)?,
        deferred_min: number(req, "deferred_min", o.deferred_min)?,
        deferred_window_hours: number(req, "deferred_window_hours", o.deferred_window_hours)?,
        expiry_warn_hours: number(req, "expiry_warn_hours", o.expiry_warn_hours)?,
        brute_force_per_ip: number(req, "brute_force_per_ip", o.brute_force_per_ip)?,
        brute_force_distributed_ips: number(req, "brute_force_distributed_ips", o.brute_force_distributed_ips)?,
        brute_force_distributed_failures: number(req, "brute_force_distributed_failures", o.brute_force_distributed_failures)?,
        compromised_min_messages: number(req, "compromised_min_messages", o.compromised_min_messages)?,
        compromised_min_recipients: number(req, "compromised_min_recipients", o.compromised_min_recipients)?,
        compromised_factor: number(req, "compromised_factor", o.compromised_factor)?,
        compromised_bounce_percent: number(req, "compromised_bounce_percent", o.compromised_bounce_percent)?,
        rbl_interval_hours: number(req, "rbl_interval_hours", o.rbl_interval_hours)?,
        quiet_hours: number(req, "quiet_hours", o.quiet_hours)?,
        dnsbls: match req.f("ins_dnsbls") {
            Some(v) => v.split_whitespace().map(|z| z.trim_end_matches(',').to_ascii_lowercase()).filter(|z| !z.is_empty()).collect(),
            None => o.dnsbls.clone(),
        },
        dns_server: if req.f("ins_dns_server").is_some() { opt(req, "ins_dns_server") } else { o.dns_server.clone() },
    };
    Ok(Settings {
        public_ip: opt(req, "public_ip"),
        language: req.f("language").unwrap_or("en").to_owned(),
        retention_days,
        public_detective: req.f("public_detective").is_some(),
        peer_network: match req.f("peer_network") {
            Some("share") => PeerChoice::Share,
            Some("consume") => PeerChoice::Consume,
            _ => PeerChoice::Off,
        },
        insights,
        ui_url: opt(req, "ui_url"),
        notify: old.notify.clone(),
        // Edited on the Health page.
        checks: old.checks.clone(),
    })
}

/// The channels as the page lists them: redacted, with delivery status.
fn channels(ctx: &Ctx, tz: &jiff::tz::TimeZone, cfg: &NotifyConfig) -> Vec<Value> {
    let status = ctx.notifier.as_ref().map(|n| n.status()).unwrap_or_default();
    let local = |t: Timestamp| {
        jiff::Timestamp::from_second(t.0).map(|x| x.to_zoned(tz.clone()).strftime("%Y-%m-%d %H:%M").to_string()).unwrap_or_default()
    };
    cfg.redacted()
        .channels
        .iter()
        .map(|c| {
            let st = status.iter().find(|s| s.name == c.name);
            let kind = serde_json::to_value(&c.kind).ok();
            let ty = kind.as_ref().and_then(|k| k.get("type")).and_then(Value::as_str).unwrap_or_default().to_owned();
            let target = match &c.kind {
                ChannelKind::SlackBot { channel, .. } => channel.clone(),
                ChannelKind::Smtp { host, to, .. } => format!("{} via {host}", to.join(", ")),
                ChannelKind::Sendmail { to, .. } => to.join(", "),
                ChannelKind::SlackWebhook { .. } | ChannelKind::Webhook { .. } => String::new(),
            };
            json!({
                "name": c.name, "type": ty, "target": target, "enabled": c.enabled, "min_severity": c.min_severity.as_str(),
                "last_success": st.and_then(|s| s.last_success).map(local),
                "last_error": st.and_then(|s| s.last_error.as_ref()).map(|e| json!({"time": local(e.time), "text": e.text})),
                "sent": st.map_or(0, |s| s.sent), "failed": st.map_or(0, |s| s.failed),
                "dropped": st.map_or(0, |s| s.dropped + s.suppressed), "retrying": st.map_or(0, |s| s.retrying),
            })
        })
        .collect()
}

fn show(ctx: &Ctx, who: &Who, lang: &str, s: &Settings, extra: Value, status: u16) -> Resp {
    let mut c = page(
        who,
        lang,
        "settings",
        json!({
            "s": s, "languages": super::LANGUAGES, "channels": channels(ctx, &ctx.cfg.tz, &s.notify),
            "dnsbls": s.insights.dnsbls.join("\n"), "severities": ["info", "warning", "critical"],
        }),
    );
    if let (Value::Object(m), Value::Object(x)) = (&mut c, extra) {
        m.extend(x);
    }
    let mut r = render(ctx, "settings.html", &c);
    r.status = status;
    r
}

/// `GET|POST /settings`.
pub(crate) fn settings(ctx: &Ctx, req: &Req, who: &Who, lang: &str) -> Resp {
    let s = match Settings::load(&ctx.store) {
        Ok(s) => s,
        Err(e) => return store_error(ctx, lang, &e),
    };
    if req.method != Method::Post {
        return show(ctx, who, lang, &s, json!({}), 200);
    }
    if !who.is_admin() {
        return error(ctx, lang, 403, &t(lang, "error.read_only"));
    }
    let new = match from_form(req, &s) {
        Ok(n) => n,
        Err(problem) => return show(ctx, who, lang, &s, json!({ "problem": problem }), 400),
    };
    match new.save(&ctx.store) {
        Ok(()) => {
            super::settings_saved(ctx, &new);
            show(ctx, who, &new.language.clone(), &new, json!({ "saved": true }), 200)
        }
        // Show what was typed, with the reason.
        Err(e) => show(ctx, who, lang, &new, json!({ "problem": e.to_string() }), 400),
    }
}

fn list(v: Option<String>) -> Vec<String> {
    v.map(|s| s.split([',', ' ', '\n']).map(str::trim).filter(|x| !x.is_empty()).map(str::to_owned).collect()).unwrap_or_default()
}

/// A channel from the "add a channel" form; the error names the field.
fn channel_from_form(req: &Req) -> Result<ChannelConfig, String> {
    let need = |name: &str| opt(req, name).ok_or_else(|| format!("{name}: required for this channel type"));
    let kind = match req.f("type") {
        Some("slack_bot") => ChannelKind::SlackBot { token: Secret::new(need("token")?), channel: need("channel")?, api_url: None },
        Some("slack_webhook") => ChannelKind::SlackWebhook { url: Secret::new(need("url")?) },
        Some("webhook") => {
            let mut headers = std::collections::BTreeMap::new();
            for line in req.f("headers").unwrap_or_default().lines().map(str::trim).filter(|l| !l.is_empty()) {
                let (k, v) = line.split_once(':').ok_or_else(|| "headers: one `Name: value` per line".to_owned())?;
                headers.insert(k.trim().to_owned(), Secret::new(v.trim()));
            }
            ChannelKind::Webhook { url: Secret::new(need("url")?), headers }
        }
        Some("smtp") => ChannelKind::Smtp {
            host: need("smtp_host")?,
            port: match opt(req, "smtp_port") {
                Some(p) => Some(p.parse().map_err(|_| "smtp_port: a port number".to_owned())?),
                None => None,
            },
            security: match req.f("smtp_security") {
                Some("tls") => SmtpSecurity::Tls,
                Some("none") => SmtpSecurity::None,
                _ => SmtpSecurity::Starttls,
            },
            username: opt(req, "smtp_username"),
            password: opt(req, "smtp_password").map(Secret::new),
            from: need("from")?,
            to: list(opt(req, "to")),
        },
        Some("sendmail") => {
            ChannelKind::Sendmail { path: opt(req, "sendmail_path").map(Into::into), from: need("from")?, to: list(opt(req, "to")) }
        }
        _ => return Err("type: slack_bot, slack_webhook, webhook, smtp or sendmail".into()),
    };
    Ok(ChannelConfig {
        name: need("name")?,
        enabled: true,
        min_severity: req.f("min_severity").and_then(|v| v.parse().ok()).unwrap_or_default(),
        ca_file: opt(req, "ca_file").map(Into::into),
        kind,
    })
}

/// `POST /settings/notify`: `action` = add | delete | toggle | test.
pub(crate) fn notify(ctx: &Ctx, req: &Req, who: &Who, lang: &str, now: Timestamp) -> Resp {
    if !who.is_admin() {
        return error(ctx, lang, 403, &t(lang, "error.read_only"));
    }
    let mut s = match Settings::load(&ctx.store) {
        Ok(s) => s,
        Err(e) => return store_error(ctx, lang, &e),
    };
    let name = req.f("name").unwrap_or_default().to_owned();
    let exists = s.notify.channels.iter().any(|c| c.name == name);
    match req.f("action") {
        Some("test") => {
            let Some(c) = s.notify.channel(&name).cloned() else { return error(ctx, lang, 404, &t(lang, "error.not_found")) };
            let r = match &ctx.notifier {
                Some(n) => n.send_test(&name, c.min_severity.max(Severity::Info)),
                None => crate::notify::send_once(&c, &Notification::test(c.min_severity, now), now, std::time::Duration::from_secs(10)),
            };
            let (ok, text) = match r {
                Ok(()) => (true, t(lang, "notify.test_ok")),
                Err(e) => (false, e.to_string()),
            };
            return show(ctx, who, lang, &s, json!({ "test": { "name": name, "ok": ok, "text": text } }), if ok { 200 } else { 502 });
        }
        Some("delete") if exists => s.notify.channels.retain(|c| c.name != name),
        Some("toggle") if exists => {
            for c in s.notify.channels.iter_mut().filter(|c| c.name == name) {
                c.enabled = !c.enabled;
            }
        }
        Some("delete" | "toggle") => return error(ctx, lang, 404, &t(lang, "error.not_found")),
        Some("add") => match channel_from_form(req) {
            Ok(c) if exists => {
                let _ = c;
                return show(ctx, who, lang, &s, json!({ "notify_problem": format!("name: a channel named {name} exists") }), 400);
            }
            Ok(c) => s.notify.channels.push(c),
            Err(p) => return show(ctx, who, lang, &s, json!({ "notify_problem": p }), 400),
        },
        _ => return error(ctx, lang, 400, "action: add, delete, toggle or test"),
    }
    if let Err(e) = s.save(&ctx.store) {
        let old = Settings::load(&ctx.store).unwrap_or_default();
        return show(ctx, who, lang, &old, json!({ "notify_problem": e.to_string() }), 400);
    }
    if let Some(n) = &ctx.notifier {
        n.reconfigure(&s.notify);
    }
    Resp::redirect(&format!("{}#notifications", super::pages::rel(&req.path, "settings")))
}
