//! Notification delivery: Slack (bot token or incoming webhook), a generic
//! JSON webhook (ntfy, Gotify, Matrix bridges), and e-mail (SMTP or the
//! local sendmail).
//!
//! This module owns the channel configuration (stored with the settings),
//! the wire formats, the transports and the [`Notifier`]: a thread of its
//! own with a bounded queue, a per-channel severity filter and rate limit,
//! retries with back-off, and a status per channel for the UI. It decides
//! nothing about *what* deserves a notification: the insights engine
//! submits [`Notification`]s and the notifier delivers them.
//!
//! Bounds: the queue holds [`crate::limits::NOTIFY_QUEUE`] notifications
//! (further ones are dropped and counted), at most
//! [`crate::limits::NOTIFY_MAX_RETRYING`] wait for a retry, each channel
//! sends at most [`crate::limits::NOTIFY_RATE_MAX`] per
//! [`crate::limits::NOTIFY_RATE_WINDOW_SECS`] (the rest are folded into one
//! "N more notifications suppressed" message), every request has a
//! timeout, and every response read is capped.
//!
//! It must not block the daemon's event loop (all network I/O happens on the
//! notifier's thread, or on the caller's thread for [`Notifier::send_test`]),
//! and no secret (token, password, webhook URL, header value) may reach a
//! `Debug` output, an error text or a log line: secrets are [`Secret`]s, and
//! transport errors are passed through [`Secret::redact`].

mod config;
mod format;
mod http;
mod net;
mod notifier;
mod smtp;

pub use config::{ChannelConfig, ChannelKind, NotifyConfig, SmtpSecurity};
pub use notifier::{ChannelStatus, LastError, Notifier, Timing};

use crate::clock::Timestamp;
use serde::{Deserialize, Serialize};

/// How much a notification matters. Ordered: `Info < Warning < Critical`;
/// a channel sends what is at or above its minimum.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Info,
    #[default]
    Warning,
    Critical,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Warning => "warning",
            Severity::Critical => "critical",
        }
    }
}

impl std::str::FromStr for Severity {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "info" => Ok(Severity::Info),
            "warning" => Ok(Severity::Warning),
            "critical" => Ok(Severity::Critical),
            _ => Err(format!("'{s}' is not a severity (info, warning or critical)")),
        }
    }
}

impl std::fmt::Display for Severity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One thing to tell the admin. `kind` is an insight kind id of DESIGN.md
/// (`high_bounce_rate`, …), or `test` / `suppressed` from this module.
/// `title` and `text` are cut to [`crate::limits::NOTIFY_MAX_TITLE`] and
/// [`crate::limits::NOTIFY_MAX_TEXT`] bytes when sent.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Notification {
    pub kind: String,
    pub severity: Severity,
    pub title: String,
    pub text: String,
    /// Where to read more (the insight in the UI), if the UI's address is known.
    pub link: Option<String>,
    /// When it happened (the insight's last occurrence).
    pub time: Timestamp,
}

impl Notification {
    /// The message of a "send test notification" button or `notify-test`.
    pub fn test(severity: Severity, now: Timestamp) -> Notification {
        Notification {
            kind: "test".into(),
            severity,
            title: "Test notification from postlens".into(),
            text: "This is a test. If you can read it, postlens can reach you on this channel.".into(),
            link: None,
            time: now,
        }
    }
}

/// A token, password, webhook URL or header value. `Debug` and `Display`
/// never show it; it is serialised as the plain string (the settings
/// document must keep it), so whoever shows a [`NotifyConfig`] to a person
/// must blank it first ([`NotifyConfig::redacted`]).
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    pub fn new(s: impl Into<String>) -> Secret {
        Secret(s.into())
    }

    /// The value, for the one place that must send it.
    pub fn expose(&self) -> &str {
        &self.0
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// `text` with every occurrence of this secret replaced by `***`
    /// (error texts of HTTP clients may quote a URL or a header).
    pub fn redact(&self, text: &str) -> String {
        // Short values would blank ordinary words; they are refused by
        // validation anyway (see `config::MIN_SECRET`).
        if self.0.len() < 4 { text.to_owned() } else { text.replace(&self.0, "***") }
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.is_empty() { "Secret(\"\")" } else { "Secret(***)" })
    }
}

/// Why one delivery failed. The text is meant for the admin (the UI shows
/// it as the channel's last error) and never contains a secret.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SendError {
    /// The channel cannot be used as configured (unreadable CA file, …).
    #[error("configuration: {0}")]
    Config(String),
    /// Connecting, TLS or the HTTP exchange failed.
    #[error("{0}")]
    Transport(String),
    /// The server answered with an HTTP error status.
    #[error("HTTP {status}: {body}")]
    Status { status: u16, body: String },
    /// Slack answered `{"ok": false, "error": …}`.
    #[error("Slack refused the message: {0}")]
    Slack(String),
    /// An SMTP server refused a step (`code` is its reply code), or the
    /// exchange broke off (`code` is `None`).
    #[error("SMTP: {text}")]
    Smtp { code: Option<u16>, text: String },
    /// The local sendmail could not be run or exited with an error.
    #[error("sendmail: {0}")]
    Sendmail(String),
    /// Shutting down: the notification was not attempted in time.
    #[error("not sent: postlens was shutting down")]
    Shutdown,
}

impl SendError {
    /// Retrying cannot help: the configuration is wrong or the server said
    /// so for good (HTTP 4xx other than 408/429, SMTP 5xx, Slack's
    /// `invalid_auth`, …).
    pub fn is_permanent(&self) -> bool {
        match self {
            SendError::Config(_) => true,
            SendError::Status { status, .. } => (400..500).contains(status) && *status != 408 && *status != 429,
            SendError::Slack(e) => e != "ratelimited" && e != "internal_error" && e != "fatal_error" && e != "service_unavailable",
            SendError::Smtp { code, .. } => code.is_some_and(|c| c >= 500),
            SendError::Transport(_) | SendError::Sendmail(_) | SendError::Shutdown => false,
        }
    }
}

/// Sends one notification through one channel now, on the caller's thread,
/// with `timeout` for the whole exchange (the CLI's `notify-test`; the
/// [`Notifier`] uses the same path). `now` dates the e-mail.
///
/// # Errors
/// What went wrong, without secrets.
pub fn send_once(channel: &ChannelConfig, n: &Notification, now: Timestamp, timeout: std::time::Duration) -> Result<(), SendError> {
    notifier::Transport::new(channel).send(channel, n, now, timeout)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn severities_order_and_parse() {
        assert!(Severity::Info < Severity::Warning && Severity::Warning < Severity::Critical);
        for s in [Severity::Info, Severity::Warning, Severity::Critical] {
            assert_eq!(s.as_str().parse::<Severity>(), Ok(s));
            assert_eq!(serde_json::to_string(&s).unwrap(), format!("\"{s}\""));
        }
        assert!("Critical".parse::<Severity>().is_err());
    }

    #[test]
    fn secrets_do_not_show() {
        let s = Secret::new("xoxb-123-very-secret");
        assert_eq!(format!("{s:?}"), "Secret(***)");
        assert_eq!(s.redact("POST https://x/xoxb-123-very-secret/ failed"), "POST https://x/***/ failed");
        assert_eq!(serde_json::to_string(&s).unwrap(), "\"xoxb-123-very-secret\"");
    }

    #[test]
    fn permanent_errors() {
        assert!(SendError::Status { status: 404, body: String::new() }.is_permanent());
        assert!(!SendError::Status { status: 429, body: String::new() }.is_permanent());
        assert!(!SendError::Status { status: 503, body: String::new() }.is_permanent());
        assert!(SendError::Slack("channel_not_found".into()).is_permanent());
        assert!(!SendError::Slack("ratelimited".into()).is_permanent());
        assert!(SendError::Smtp { code: Some(550), text: "RCPT TO <a@b.c>: 550 5.1.1 unknown".into() }.is_permanent());
        assert!(!SendError::Smtp { code: Some(451), text: "MAIL FROM: 451 4.3.0 try later".into() }.is_permanent());
        assert!(!SendError::Smtp { code: None, text: "connection closed".into() }.is_permanent());
        assert!(!SendError::Transport("connection refused".into()).is_permanent());
    }
}
