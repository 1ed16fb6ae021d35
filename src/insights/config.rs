//! Detector thresholds (part of the settings document, `insights`), with
//! documented defaults. Each field is validated with an error naming it.

use crate::settings::Invalid;
use serde::{Deserialize, Serialize};

/// The DNSBLs checked for the server's public IP unless the admin says
/// otherwise (free for low-volume queries through one's own resolver).
pub const DEFAULT_DNSBLS: [&str; 5] =
    ["zen.spamhaus.org", "bl.spamcop.net", "b.barracudacentral.org", "psbl.surriel.com", "dnsbl-1.uceprotect.net"];

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(default)]
pub struct InsightConfig {
    /// `high_bounce_rate`: bounced / decided deliveries over the window,
    /// per direction, at least this percentage (default 5) of at least
    /// `bounce_min_deliveries` (default 20) deliveries in `bounce_window_hours` (6).
    pub bounce_rate_percent: u32,
    pub bounce_window_hours: u32,
    pub bounce_min_deliveries: u64,
    /// `mail_inactivity`: no delivery for this many hours (24) after at
    /// least `inactivity_min_before` (10) deliveries in the week before.
    pub inactivity_hours: u32,
    pub inactivity_min_before: u64,
    /// `deferred_growth`: at least `deferred_min` (20) deferrals to one
    /// domain in `deferred_window_hours` (6), at least twice the window
    /// before; or messages in the queue longer than `expiry_warn_hours` (72).
    pub deferred_min: u64,
    pub deferred_window_hours: u32,
    pub expiry_warn_hours: u32,
    /// `brute_force`: one IP with at least `brute_force_per_ip` (20) failed
    /// logins in an hour, or at least `brute_force_distributed_ips` (10)
    /// IPs failing `brute_force_distributed_failures` (200) times together.
    pub brute_force_per_ip: u64,
    pub brute_force_distributed_ips: u64,
    pub brute_force_distributed_failures: u64,
    /// `compromised_account`: a SASL user sending at least
    /// `compromised_min_messages` (10) messages to at least
    /// `compromised_min_recipients` (100) recipients in an hour and
    /// `compromised_factor` (10) times its own hourly baseline, or with at
    /// least `compromised_bounce_percent` (30) of them bounced. (One
    /// message to a long list is a newsletter, not an attack.)
    pub compromised_min_messages: u64,
    pub compromised_min_recipients: u64,
    pub compromised_factor: u32,
    pub compromised_bounce_percent: u32,
    /// `rbl_listed`: the zones queried for the public IP, every
    /// `rbl_interval_hours` (6), through `dns_server` (HOST:PORT; default
    /// the first `nameserver` of /etc/resolv.conf).
    pub dnsbls: Vec<String>,
    pub rbl_interval_hours: u32,
    pub dns_server: Option<String>,
    /// A finding is "the same occurrence" while it recurs within this many
    /// hours (24); after a quiet period it counts (and notifies) again.
    pub quiet_hours: u32,
}

impl Default for InsightConfig {
    fn default() -> Self {
        InsightConfig {
            bounce_rate_percent: 5,
            bounce_window_hours: 6,
            bounce_min_deliveries: 20,
            inactivity_hours: 24,
            inactivity_min_before: 10,
            deferred_min: 20,
            deferred_window_hours: 6,
            expiry_warn_hours: 72,
            brute_force_per_ip: 20,
            brute_force_distributed_ips: 10,
            brute_force_distributed_failures: 200,
            compromised_min_messages: 10,
            compromised_min_recipients: 100,
            compromised_factor: 10,
            compromised_bounce_percent: 30,
            dnsbls: DEFAULT_DNSBLS.iter().map(|s| (*s).to_owned()).collect(),
            rbl_interval_hours: 6,
            dns_server: None,
            quiet_hours: 24,
        }
    }
}

impl InsightConfig {
    /// # Errors
    /// The first field that is not acceptable.
    pub fn validate(&self) -> Result<(), Invalid> {
        Invalid::range("insights.bounce_rate_percent", self.bounce_rate_percent, 1, 100)?;
        Invalid::range("insights.bounce_window_hours", self.bounce_window_hours, 1, 168)?;
        Invalid::range("insights.bounce_min_deliveries", self.bounce_min_deliveries, 1, 1_000_000)?;
        Invalid::range("insights.inactivity_hours", self.inactivity_hours, 1, 24 * 30)?;
        Invalid::range("insights.inactivity_min_before", self.inactivity_min_before, 1, 1_000_000)?;
        Invalid::range("insights.deferred_min", self.deferred_min, 1, 1_000_000)?;
        Invalid::range("insights.deferred_window_hours", self.deferred_window_hours, 1, 168)?;
        Invalid::range("insights.expiry_warn_hours", self.expiry_warn_hours, 1, 24 * 30)?;
        Invalid::range("insights.brute_force_per_ip", self.brute_force_per_ip, 1, 1_000_000)?;
        Invalid::range("insights.brute_force_distributed_ips", self.brute_force_distributed_ips, 2, 1_000_000)?;
        Invalid::range("insights.brute_force_distributed_failures", self.brute_force_distributed_failures, 1, 10_000_000)?;
        Invalid::range("insights.compromised_min_messages", self.compromised_min_messages, 1, 1_000_000)?;
        Invalid::range("insights.compromised_min_recipients", self.compromised_min_recipients, 1, 1_000_000)?;
        Invalid::range("insights.compromised_factor", self.compromised_factor, 2, 1_000)?;
        Invalid::range("insights.compromised_bounce_percent", self.compromised_bounce_percent, 1, 100)?;
        Invalid::range("insights.rbl_interval_hours", self.rbl_interval_hours, 1, 24 * 7)?;
        Invalid::range("insights.quiet_hours", self.quiet_hours, 1, 24 * 30)?;
        if self.dnsbls.len() > crate::limits::MAX_DNSBL_ZONES {
            return Err(Invalid::new("insights.dnsbls", "lists too many zones"));
        }
        if !self.dnsbls.iter().all(|z| crate::dns::valid_name(z)) {
            return Err(Invalid::new("insights.dnsbls", "must be DNS zone names"));
        }
        if let Some(s) = &self.dns_server
            && s.parse::<std::net::SocketAddr>().is_err()
        {
            return Err(Invalid::new("insights.dns_server", "must be IP:PORT"));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_validate_and_errors_name_the_field() {
        InsightConfig::default().validate().unwrap();
        let c = InsightConfig { bounce_rate_percent: 0, ..InsightConfig::default() };
        assert_eq!(c.validate().unwrap_err().field, "insights.bounce_rate_percent");
        let c = InsightConfig { dnsbls: vec!["not a zone".into()], ..InsightConfig::default() };
        assert_eq!(c.validate().unwrap_err().field, "insights.dnsbls");
        let c = InsightConfig { dns_server: Some("localhost".into()), ..InsightConfig::default() };
        assert_eq!(c.validate().unwrap_err().field, "insights.dns_server");
        // Older settings documents without the section read as the defaults.
        let c: InsightConfig = serde_json::from_str("{}").unwrap();
        assert_eq!(c, InsightConfig::default());
    }
}
