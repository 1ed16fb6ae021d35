//! Settings an admin changes in the UI, stored as one document in the
//! store (`kv` key `settings`). Every field is validated here, with an
//! error naming the field, so the form and the API refuse the same input.

use serde::{Deserialize, Serialize};

/// Peer-network participation (never silent: `Off` until chosen).
#[derive(Clone, Copy, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum PeerChoice {
    #[default]
    Off,
    Consume,
    Share,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(default)]
pub struct Settings {
    /// The mail server's public IP (for checks and the peer network).
    pub public_ip: Option<String>,
    /// UI language: one of [`crate::web::LANGUAGES`].
    pub language: String,
    /// Days of data kept; `None` = the `--retention` flag.
    pub retention_days: Option<u32>,
    /// End users may look up their own messages at `public`.
    pub public_detective: bool,
    pub peer_network: PeerChoice,
    /// Detector thresholds ([`crate::insights::InsightConfig`]).
    pub insights: crate::insights::InsightConfig,
    /// Where admins open this UI (`https://mail.example.org/postlens/`):
    /// notifications link to the insight there.
    pub ui_url: Option<String>,
    /// Health checks: extra domains, DKIM selectors, opt-in checks.
    pub checks: crate::check::CheckConfig,
    /// Notification channels (Slack, webhooks, e-mail): see [`crate::notify`].
    /// They hold secrets: show them to a person only through
    /// [`crate::notify::NotifyConfig::redacted`]. Left out of the document
    /// while empty.
    #[serde(skip_serializing_if = "crate::notify::NotifyConfig::is_empty")]
    pub notify: crate::notify::NotifyConfig,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            public_ip: None,
            language: "en".into(),
            retention_days: None,
            public_detective: false,
            peer_network: PeerChoice::Off,
            insights: crate::insights::InsightConfig::default(),
            ui_url: None,
            checks: crate::check::CheckConfig::default(),
            notify: crate::notify::NotifyConfig::default(),
        }
    }
}

/// A refused setting: which field and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {reason}")]
pub struct Invalid {
    pub field: &'static str,
    pub reason: &'static str,
}

impl Invalid {
    pub const fn new(field: &'static str, reason: &'static str) -> Invalid {
        Invalid { field, reason }
    }

    /// `v` within `lo..=hi`, else "is out of range".
    ///
    /// # Errors
    /// `v` is outside.
    pub fn range<T: PartialOrd + Copy>(field: &'static str, v: T, lo: T, hi: T) -> Result<(), Invalid> {
        if v < lo || v > hi { Err(Invalid::new(field, "is out of range")) } else { Ok(()) }
    }
}

impl Settings {
    /// # Errors
    /// The first field that is not acceptable.
    pub fn validate(&self) -> Result<(), Invalid> {
        if let Some(ip) = &self.public_ip
            && ip.parse::<std::net::IpAddr>().is_err()
        {
            return Err(Invalid::new("public_ip", "must be an IPv4 or IPv6 address"));
        }
        if !crate::web::LANGUAGES.contains(&self.language.as_str()) {
            return Err(Invalid::new("language", "is not a supported language"));
        }
        if let Some(d) = self.retention_days
            && !(1..=3650).contains(&d)
        {
            return Err(Invalid::new("retention_days", "must be between 1 and 3650 days"));
        }
        if let Some(u) = &self.ui_url
            && (!(u.starts_with("https://") || u.starts_with("http://")) || u.len() > 512 || u.contains(char::is_whitespace))
        {
            return Err(Invalid::new("ui_url", "must be one http:// or https:// URL"));
        }
        self.insights.validate()?;
        self.checks.validate()?;
        self.notify.validate()
    }

    /// The stored settings (defaults when never saved).
    ///
    /// # Errors
    /// Database failure.
    pub fn load(store: &crate::store::Store) -> Result<Settings, crate::store::StoreError> {
        Ok(store.kv_get("settings")?.unwrap_or_default())
    }

    /// Validates and stores.
    ///
    /// # Errors
    /// An invalid field (nothing stored), or a database failure.
    pub fn save(&self, store: &crate::store::Store) -> Result<(), SaveError> {
        self.validate()?;
        store.kv_put("settings", self)?;
        Ok(())
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SaveError {
    #[error(transparent)]
    Invalid(#[from] Invalid),
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_bad_field_is_named() {
        let ok = Settings::default();
        assert!(ok.validate().is_ok());
        let quiet = crate::insights::InsightConfig { quiet_hours: 0, ..crate::insights::InsightConfig::default() };
        let cases: [(Settings, &str); 5] = [
            (Settings { public_ip: Some("1.2.3".into()), ..ok.clone() }, "public_ip"),
            (Settings { language: "xx".into(), ..ok.clone() }, "language"),
            (Settings { retention_days: Some(0), ..ok.clone() }, "retention_days"),
            (Settings { insights: quiet, ..ok.clone() }, "insights.quiet_hours"),
            (Settings { ui_url: Some("mail.example.org".into()), ..ok.clone() }, "ui_url"),
        ];
        for (s, field) in cases {
            assert_eq!(s.validate().unwrap_err().field, field);
        }
        let good = Settings { public_ip: Some("2001:db8::1".into()), language: "de".into(), retention_days: Some(30), ..ok };
        assert!(good.validate().is_ok());
        let mut bad_channel = Settings::default();
        bad_channel.notify.channels.push(serde_json::from_str(r#"{"name": "x", "type": "slack_webhook", "url": "ftp://x"}"#).unwrap());
        assert_eq!(bad_channel.validate().unwrap_err().field, "notify.channels.url");
    }

    #[test]
    fn old_documents_get_defaults_for_new_fields() {
        let s: Settings = serde_json::from_str(r#"{"public_detective": true}"#).unwrap();
        assert!(s.public_detective);
        assert_eq!(s.language, "en");
        assert!(s.notify.channels.is_empty(), "no notification channels by default");
    }
}
