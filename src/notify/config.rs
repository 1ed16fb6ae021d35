//! Channel configuration: the `notify` part of the settings document, and
//! its validation. Errors are [`Invalid`] naming the field as
//! `notify.channels.<field>` (the UI's form marks that field); nothing here
//! touches the network or the file system.

use super::{Secret, Severity};
use crate::limits::{NOTIFY_MAX_CHANNELS, NOTIFY_MAX_HEADERS, NOTIFY_MAX_RECIPIENTS};
use crate::settings::Invalid;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::PathBuf;

/// Slack's Web API; `chat.postMessage` is appended.
pub const SLACK_API_URL: &str = "https://slack.com/api/";

/// The local mail submission program.
pub const SENDMAIL_PATH: &str = "/usr/sbin/sendmail";

/// Shortest token, password or URL accepted as a secret (shorter values
/// are typing mistakes, and redacting them would blank ordinary words).
pub(crate) const MIN_SECRET: usize = 4;

/// Longest URL, token or header value accepted.
const MAX_VALUE: usize = 2_048;

/// Notification channels, in the order the UI lists them.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct NotifyConfig {
    pub channels: Vec<ChannelConfig>,
}

/// One place notifications go.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChannelConfig {
    /// Unique name (letters, digits, `-`, `_`, `.`; 1–64): the UI's label
    /// and `notify-test --channel NAME`.
    pub name: String,
    #[serde(default = "yes")]
    pub enabled: bool,
    /// Only notifications at or above this severity are sent.
    #[serde(default)]
    pub min_severity: Severity,
    /// A PEM file of CA certificates trusted besides Mozilla's roots (a
    /// private CA of a self-hosted ntfy, Gotify or mail server).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_file: Option<PathBuf>,
    #[serde(flatten)]
    pub kind: ChannelKind,
}

fn yes() -> bool {
    true
}

/// What a channel is, with what it needs. In JSON the variant is the
/// `type` field: `slack_bot`, `slack_webhook`, `webhook`, `smtp`, `sendmail`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ChannelKind {
    /// A Slack app's bot token (`xoxb-…`) posting with `chat.postMessage`
    /// into `channel` (an ID like `C0123456789`, or `#name`; the app must be
    /// in the channel). `api_url` replaces [`SLACK_API_URL`] (tests, proxies).
    SlackBot {
        token: Secret,
        channel: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        api_url: Option<String>,
    },
    /// A Slack incoming webhook (`https://hooks.slack.com/services/…`).
    SlackWebhook { url: Secret },
    /// A JSON POST to any URL with optional extra headers. The body is
    /// `{"kind","severity","title","text","link","time","message","priority"}`
    /// (`time` RFC 3339, `link` may be null; `message` repeats `text` and
    /// `priority` is 2/5/8 for info/warning/critical, so Gotify needs no
    /// adapter). Pointing common receivers at it:
    /// - **ntfy**: URL `https://ntfy.example/TOPIC`, headers
    ///   `X-Template: yes`, `X-Title: {{.title}}`, `X-Message: {{.text}}`
    ///   (ntfy ≥ 2.9 fills them from the JSON body), and
    ///   `Authorization: Bearer tk_…` if the topic is protected.
    /// - **Gotify**: URL `https://gotify.example/message`, header
    ///   `X-Gotify-Key: <application token>` (or `?token=` in the URL).
    /// - **Matrix** through matrix-hookshot's generic webhooks: the
    ///   hook's URL; hookshot posts the `text` field into the room.
    Webhook {
        url: Secret,
        #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
        headers: BTreeMap<String, Secret>,
    },
    /// SMTP submission. `port` defaults to 587 (`starttls`), 465 (`tls`)
    /// or 25 (`none`). With `username`, AUTH PLAIN (or LOGIN) is used; with
    /// `security: none` the password then crosses the network in clear, so
    /// use that only towards a server on the same host.
    Smtp {
        host: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        port: Option<u16>,
        #[serde(default)]
        security: SmtpSecurity,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        username: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        password: Option<Secret>,
        from: String,
        to: Vec<String>,
    },
    /// The local MTA's `sendmail -t -i` (Postfix's, for instance).
    Sendmail {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        path: Option<PathBuf>,
        from: String,
        to: Vec<String>,
    },
}

/// How the SMTP connection is protected.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SmtpSecurity {
    /// Plain connection upgraded with STARTTLS (required, not opportunistic).
    #[default]
    Starttls,
    /// TLS from the first byte (SMTPS, port 465).
    Tls,
    /// No encryption at all.
    None,
}

impl SmtpSecurity {
    pub fn default_port(self) -> u16 {
        match self {
            SmtpSecurity::Starttls => 587,
            SmtpSecurity::Tls => 465,
            SmtpSecurity::None => 25,
        }
    }
}

impl NotifyConfig {
    /// # Errors
    /// The first field that is not acceptable.
    pub fn validate(&self) -> Result<(), Invalid> {
        if self.channels.len() > NOTIFY_MAX_CHANNELS {
            return Err(Invalid::new("notify.channels", "too many channels (at most 16)"));
        }
        for (i, c) in self.channels.iter().enumerate() {
            c.validate()?;
            if self.channels[..i].iter().any(|o| o.name == c.name) {
                return Err(Invalid::new("notify.channels.name", "two channels have the same name"));
            }
        }
        Ok(())
    }

    pub fn is_empty(&self) -> bool {
        self.channels.is_empty()
    }

    pub fn channel(&self, name: &str) -> Option<&ChannelConfig> {
        self.channels.iter().find(|c| c.name == name)
    }

    /// A copy with every secret blanked, to show to a person.
    #[must_use]
    pub fn redacted(&self) -> NotifyConfig {
        let mut c = self.clone();
        for ch in &mut c.channels {
            match &mut ch.kind {
                ChannelKind::SlackBot { token, .. } => *token = Secret::default(),
                ChannelKind::SlackWebhook { url } => *url = Secret::default(),
                ChannelKind::Webhook { url, headers } => {
                    *url = Secret::default();
                    for v in headers.values_mut() {
                        *v = Secret::default();
                    }
                }
                ChannelKind::Smtp { password, .. } => *password = password.as_ref().map(|_| Secret::default()),
                ChannelKind::Sendmail { .. } => {}
            }
        }
        c
    }
}

impl ChannelConfig {
    /// # Errors
    /// The first field that is not acceptable.
    pub fn validate(&self) -> Result<(), Invalid> {
        let n = &self.name;
        if n.is_empty() || n.len() > 64 || !n.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c)) {
            return Err(Invalid::new("notify.channels.name", "must be 1 to 64 letters, digits, '-', '_' or '.'"));
        }
        if let Some(p) = &self.ca_file
            && (!p.is_absolute() || p.as_os_str().len() > 4_096)
        {
            return Err(Invalid::new("notify.channels.ca_file", "must be an absolute path"));
        }
        match &self.kind {
            ChannelKind::SlackBot { token, channel, api_url } => {
                secret("notify.channels.token", token)?;
                if channel.is_empty() || channel.len() > 80 || channel.contains(|c: char| c.is_whitespace() || c.is_control()) {
                    return Err(Invalid::new("notify.channels.channel", "must be a Slack channel ID (C0123…) or #name"));
                }
                if let Some(u) = api_url {
                    url("notify.channels.api_url", u)?;
                }
            }
            ChannelKind::SlackWebhook { url: u } => url("notify.channels.url", u.expose())?,
            ChannelKind::Webhook { url: u, headers } => {
                url("notify.channels.url", u.expose())?;
                if headers.len() > NOTIFY_MAX_HEADERS {
                    return Err(Invalid::new("notify.channels.headers", "too many headers (at most 16)"));
                }
                for (k, v) in headers {
                    let tchar = |c: char| c.is_ascii_alphanumeric() || "!#$%&'*+-.^_`|~".contains(c);
                    if k.is_empty() || k.len() > 128 || !k.chars().all(tchar) {
                        return Err(Invalid::new("notify.channels.headers", "a header name must be letters, digits and -"));
                    }
                    if ["host", "content-length", "content-type", "transfer-encoding", "connection"]
                        .contains(&k.to_ascii_lowercase().as_str())
                    {
                        return Err(Invalid::new(
                            "notify.channels.headers",
                            "Host, Content-Length, Content-Type, Transfer-Encoding and Connection are set by postlens",
                        ));
                    }
                    if v.is_empty() || v.expose().len() > MAX_VALUE || v.expose().contains(|c: char| c.is_control()) {
                        return Err(Invalid::new("notify.channels.headers", "a header value must be one line of at most 2048 characters"));
                    }
                }
            }
            ChannelKind::Smtp { host, username, password, from, to, .. } => {
                if host.is_empty() || host.len() > 253 || host.contains(|c: char| c.is_whitespace() || c.is_control() || c == '/') {
                    return Err(Invalid::new("notify.channels.host", "must be a host name or IP address"));
                }
                match (username, password) {
                    (None, None) => {}
                    (Some(u), Some(p)) => {
                        if u.is_empty() || u.len() > 256 || u.contains(|c: char| c.is_control()) {
                            return Err(Invalid::new("notify.channels.username", "must be one line of at most 256 characters"));
                        }
                        if p.is_empty() || p.expose().len() > 1_024 || p.expose().contains(['\r', '\n', '\0']) {
                            return Err(Invalid::new("notify.channels.password", "must be one line of at most 1024 characters"));
                        }
                    }
                    (Some(_), None) => return Err(Invalid::new("notify.channels.password", "is needed with a username")),
                    (None, Some(_)) => return Err(Invalid::new("notify.channels.username", "is needed with a password")),
                }
                addresses(from, to)?;
            }
            ChannelKind::Sendmail { path, from, to } => {
                if let Some(p) = path
                    && !p.is_absolute()
                {
                    return Err(Invalid::new("notify.channels.path", "must be an absolute path"));
                }
                addresses(from, to)?;
            }
        }
        Ok(())
    }

    /// Whether a notification of `s` goes to this channel.
    pub fn wants(&self, s: Severity) -> bool {
        self.enabled && s >= self.min_severity
    }

    /// Every secret of this channel, for redacting error texts.
    pub(crate) fn secrets(&self) -> Vec<&Secret> {
        match &self.kind {
            ChannelKind::SlackBot { token, .. } => vec![token],
            ChannelKind::SlackWebhook { url } => vec![url],
            ChannelKind::Webhook { url, headers } => std::iter::once(url).chain(headers.values()).collect(),
            ChannelKind::Smtp { password, .. } => password.iter().collect(),
            ChannelKind::Sendmail { .. } => Vec::new(),
        }
    }

    /// `text` with every secret of this channel blanked.
    pub(crate) fn redact(&self, text: &str) -> String {
        self.secrets().iter().fold(text.to_owned(), |t, s| s.redact(&t))
    }
}

fn secret(field: &'static str, s: &Secret) -> Result<(), Invalid> {
    let v = s.expose();
    if v.len() < MIN_SECRET || v.len() > MAX_VALUE || v.contains(|c: char| c.is_whitespace() || c.is_control()) {
        return Err(Invalid::new(field, "must be a token of 4 to 2048 characters without spaces"));
    }
    Ok(())
}

fn url(field: &'static str, u: &str) -> Result<(), Invalid> {
    let rest = u.strip_prefix("https://").or_else(|| u.strip_prefix("http://"));
    match rest {
        None => Err(Invalid::new(field, "must be an http:// or https:// URL")),
        Some(r) if r.is_empty() || r.starts_with('/') => Err(Invalid::new(field, "must name a host")),
        Some(r) if r.split(['/', '?', '#']).next().is_some_and(|a| a.contains('@')) => {
            Err(Invalid::new(field, "must not hold a user name or password (use an Authorization header)"))
        }
        Some(_) if u.len() > MAX_VALUE || u.contains(|c: char| c.is_whitespace() || c.is_control()) => {
            Err(Invalid::new(field, "must be one URL of at most 2048 characters"))
        }
        Some(_) => Ok(()),
    }
}

fn addresses(from: &str, to: &[String]) -> Result<(), Invalid> {
    if crate::auth::Email::parse(from).is_err() {
        return Err(Invalid::new("notify.channels.from", "must be an e-mail address"));
    }
    if to.is_empty() || to.len() > NOTIFY_MAX_RECIPIENTS {
        return Err(Invalid::new("notify.channels.to", "must list 1 to 20 e-mail addresses"));
    }
    if to.iter().any(|a| crate::auth::Email::parse(a).is_err()) {
        return Err(Invalid::new("notify.channels.to", "must list e-mail addresses"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ch(kind: ChannelKind) -> ChannelConfig {
        ChannelConfig { name: "ops".into(), enabled: true, min_severity: Severity::Warning, ca_file: None, kind }
    }

    fn smtp() -> ChannelKind {
        ChannelKind::Smtp {
            host: "mail.example.org".into(),
            port: None,
            security: SmtpSecurity::Starttls,
            username: Some("postlens".into()),
            password: Some(Secret::new("hunter22")),
            from: "postlens@example.org".into(),
            to: vec!["admin@example.org".into()],
        }
    }

    #[test]
    fn reads_the_documented_json() {
        let j = r#"{"channels": [
            {"name": "slack", "type": "slack_bot", "token": "xoxb-1-2", "channel": "C012", "min_severity": "critical"},
            {"name": "hook", "type": "webhook", "url": "https://ntfy.example/alerts", "headers": {"X-Template": "yes"}, "enabled": false},
            {"name": "mail", "type": "smtp", "host": "127.0.0.1", "port": 25, "security": "none", "from": "a@b.example", "to": ["c@d.example"]},
            {"name": "local", "type": "sendmail", "from": "a@b.example", "to": ["c@d.example"], "ca_file": "/etc/ssl/x.pem"}
        ]}"#;
        let c: NotifyConfig = serde_json::from_str(j).unwrap();
        c.validate().unwrap();
        assert_eq!(c.channels[0].min_severity, Severity::Critical);
        assert!(c.channels[0].enabled, "enabled by default");
        assert_eq!(c.channels[2].min_severity, Severity::Warning, "warning by default");
        assert!(!c.channels[1].wants(Severity::Critical), "disabled");
        assert!(c.channels[2].wants(Severity::Critical) && !c.channels[2].wants(Severity::Info));
        let back: NotifyConfig = serde_json::from_str(&serde_json::to_string(&c).unwrap()).unwrap();
        assert_eq!(back, c, "round trip");
    }

    #[test]
    fn each_bad_field_is_named() {
        let cases: Vec<(ChannelConfig, &str)> = vec![
            (ChannelConfig { name: "a b".into(), ..ch(smtp()) }, "notify.channels.name"),
            (ChannelConfig { ca_file: Some("rel.pem".into()), ..ch(smtp()) }, "notify.channels.ca_file"),
            (ch(ChannelKind::SlackBot { token: Secret::new("x"), channel: "C1".into(), api_url: None }), "notify.channels.token"),
            (ch(ChannelKind::SlackBot { token: Secret::new("xoxb-1"), channel: "a b".into(), api_url: None }), "notify.channels.channel"),
            (
                ch(ChannelKind::SlackBot { token: Secret::new("xoxb-1"), channel: "C1".into(), api_url: Some("ftp://x".into()) }),
                "notify.channels.api_url",
            ),
            (ch(ChannelKind::SlackWebhook { url: Secret::new("https://") }), "notify.channels.url"),
            (ch(ChannelKind::SlackWebhook { url: Secret::new("https://u:p@h.example/x") }), "notify.channels.url"),
            (ch(ChannelKind::Webhook { url: Secret::new("http://a b"), headers: BTreeMap::new() }), "notify.channels.url"),
            (
                ch(ChannelKind::Webhook {
                    url: Secret::new("https://h.example/x"),
                    headers: [("Content-Length".to_owned(), Secret::new("1"))].into(),
                }),
                "notify.channels.headers",
            ),
            (
                ch(ChannelKind::Webhook {
                    url: Secret::new("https://h.example/x"),
                    headers: [("X-A".to_owned(), Secret::new("a\r\nInjected: 1"))].into(),
                }),
                "notify.channels.headers",
            ),
            (smtp_with(|host, _, _, _, _| host.clear()), "notify.channels.host"),
            (smtp_with(|_, _, password, _, _| *password = None), "notify.channels.password"),
            (smtp_with(|_, username, _, _, _| *username = None), "notify.channels.username"),
            (smtp_with(|_, _, _, from, _| *from = "x".into()), "notify.channels.from"),
            (smtp_with(|_, _, _, _, to| to.clear()), "notify.channels.to"),
            (smtp_with(|_, _, _, _, to| to[0].push_str("\r\nBcc: x@y.example")), "notify.channels.to"),
            (
                ch(ChannelKind::Sendmail { path: Some("sendmail".into()), from: "a@b.example".into(), to: vec!["c@d.example".into()] }),
                "notify.channels.path",
            ),
        ];
        for (c, field) in cases {
            assert_eq!(c.validate().unwrap_err().field, field, "{c:?}");
        }
        let two = NotifyConfig { channels: vec![ch(smtp()), ch(smtp())] };
        assert_eq!(two.validate().unwrap_err().field, "notify.channels.name");
        let many =
            NotifyConfig { channels: (0..=NOTIFY_MAX_CHANNELS).map(|i| ChannelConfig { name: format!("c{i}"), ..ch(smtp()) }).collect() };
        assert_eq!(many.validate().unwrap_err().field, "notify.channels");
    }

    type SmtpEdit = fn(&mut String, &mut Option<String>, &mut Option<Secret>, &mut String, &mut Vec<String>);

    /// `smtp()` with one change: (host, username, password, from, to).
    fn smtp_with(f: SmtpEdit) -> ChannelConfig {
        let mut k = smtp();
        if let ChannelKind::Smtp { host, username, password, from, to, .. } = &mut k {
            f(host, username, password, from, to);
        }
        ch(k)
    }

    #[test]
    fn secrets_stay_out_of_debug_and_redacted_copies() {
        let c = NotifyConfig {
            channels: vec![
                ch(smtp()),
                ChannelConfig {
                    name: "hook".into(),
                    ..ch(ChannelKind::Webhook {
                        url: Secret::new("https://gotify.example/message?token=AbCdEf123"),
                        headers: [("X-Gotify-Key".to_owned(), Secret::new("AbCdEf123"))].into(),
                    })
                },
            ],
        };
        let dbg = format!("{c:?}");
        assert!(!dbg.contains("hunter22") && !dbg.contains("AbCdEf123"), "{dbg}");
        let shown = serde_json::to_string(&c.redacted()).unwrap();
        assert!(!shown.contains("hunter22") && !shown.contains("AbCdEf123"), "{shown}");
        assert!(shown.contains("admin@example.org"), "only secrets are blanked: {shown}");
        assert_eq!(c.channels[1].redact("GET https://gotify.example/message?token=AbCdEf123: 404"), "GET ***: 404", "the URL is a secret");
        assert_eq!(c.channels[1].redact("header AbCdEf123 refused"), "header *** refused");
    }
}
