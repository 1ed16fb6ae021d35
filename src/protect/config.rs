//! The protection rule and its exemptions ([`ProtectConfig`]), with
//! documented defaults. Each field is validated with an error naming it.

use super::net::Cidr;
use crate::limits::{PROTECT_MAX_HASHES_PER_IP, PROTECT_MAX_LOGINS_PER_IP, PROTECT_MAX_NETWORKS};
use crate::settings::Invalid;
use serde::{Deserialize, Serialize};

/// Counted per address (IPv6 per /64) over the last `window_secs`.
///
/// Block when, within the window:
/// - at least `block_logins` (5) distinct logins failed; or
/// - with password hashes known (Dovecot's policy `report` requests): at
///   least `block_failures` (10) failures with at least `block_passwords`
///   (3) distinct password hashes. One office retrying a stale password
///   sends the same hash again and again, so it is never blocked by this;
/// - from logs alone (no hash known): at least `block_failures` failures
///   over at least `logs_min_logins` (2) distinct logins.
///
/// A block lasts `block_secs` (1 h), doubling for each repeat of the same
/// address up to `block_max_secs` (1 day). From `suspicious_failures` (5)
/// failures an unblocked address is answered with a delay of
/// `suspicious_delay_secs` (2 s) before each attempt.
///
/// Never blocked (automatically): an address with a successful login in the
/// last `success_days` (30), loopback, private and reserved ranges, and the
/// `allowlist` and `mynetworks` entries (addresses or CIDRs).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(default, deny_unknown_fields)]
pub struct ProtectConfig {
    pub window_secs: u32,
    pub block_failures: u32,
    pub block_passwords: u32,
    pub block_logins: u32,
    pub logs_min_logins: u32,
    pub suspicious_failures: u32,
    pub suspicious_delay_secs: u32,
    pub block_secs: u32,
    pub block_max_secs: u32,
    pub success_days: u32,
    pub allowlist: Vec<String>,
    pub mynetworks: Vec<String>,
    /// Also block loopback addresses (`127.0.0.0/8`, `::1`). Only for tests and
    /// labs, where attackers are simulated from 127.x addresses.
    pub block_loopback: bool,
}

impl Default for ProtectConfig {
    fn default() -> Self {
        ProtectConfig {
            window_secs: 3_600,
            block_failures: 10,
            block_passwords: 3,
            block_logins: 5,
            logs_min_logins: 2,
            suspicious_failures: 5,
            suspicious_delay_secs: 2,
            block_secs: 3_600,
            block_max_secs: 86_400,
            success_days: 30,
            allowlist: Vec::new(),
            mynetworks: Vec::new(),
            block_loopback: false,
        }
    }
}

pub(crate) fn networks(field: &'static str, list: &[String]) -> Result<Vec<Cidr>, Invalid> {
    if list.len() > PROTECT_MAX_NETWORKS {
        return Err(Invalid::new(field, "has too many entries"));
    }
    list.iter().map(|s| Cidr::parse(s).ok_or(Invalid::new(field, "holds an entry that is not an address or CIDR"))).collect()
}

impl ProtectConfig {
    /// # Errors
    /// The first field that is not acceptable.
    pub fn validate(&self) -> Result<(), Invalid> {
        Invalid::range("protect.window_secs", self.window_secs, 60, 7 * 86_400)?;
        Invalid::range("protect.block_failures", self.block_failures, 1, 100_000)?;
        Invalid::range("protect.block_passwords", self.block_passwords, 2, u32::try_from(PROTECT_MAX_HASHES_PER_IP).unwrap_or(u32::MAX))?;
        Invalid::range("protect.block_logins", self.block_logins, 2, u32::try_from(PROTECT_MAX_LOGINS_PER_IP).unwrap_or(u32::MAX))?;
        Invalid::range("protect.logs_min_logins", self.logs_min_logins, 1, u32::try_from(PROTECT_MAX_LOGINS_PER_IP).unwrap_or(u32::MAX))?;
        Invalid::range("protect.suspicious_failures", self.suspicious_failures, 1, 100_000)?;
        Invalid::range("protect.suspicious_delay_secs", self.suspicious_delay_secs, 0, 30)?;
        Invalid::range("protect.block_secs", self.block_secs, 60, 30 * 86_400)?;
        Invalid::range("protect.block_max_secs", self.block_max_secs, self.block_secs, 365 * 86_400)?;
        Invalid::range("protect.success_days", self.success_days, 0, 365)?;
        self.networks()?;
        Ok(())
    }

    /// The allowlist and `mynetworks`, parsed.
    ///
    /// # Errors
    /// The list holding an entry that is not an address or CIDR.
    pub fn networks(&self) -> Result<Vec<Cidr>, Invalid> {
        let mut all = networks("protect.allowlist", &self.allowlist)?;
        all.extend(networks("protect.mynetworks", &self.mynetworks)?);
        Ok(all)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_errors_name_the_field() {
        assert_eq!(ProtectConfig::default().validate(), Ok(()));
        let c = ProtectConfig { block_passwords: 9, ..ProtectConfig::default() };
        assert_eq!(c.validate().map_err(|e| e.field), Err("protect.block_passwords"));
        let c = ProtectConfig { block_max_secs: 60, ..ProtectConfig::default() };
        assert_eq!(c.validate().map_err(|e| e.field), Err("protect.block_max_secs"));
        let c = ProtectConfig { mynetworks: vec!["192.0.2.0/24".into(), "bogus".into()], ..ProtectConfig::default() };
        assert_eq!(
            c.validate().map_err(|e| e.to_string()),
            Err("protect.mynetworks: holds an entry that is not an address or CIDR".into())
        );
    }

    #[test]
    fn json_with_unknown_field_is_refused() {
        let c: ProtectConfig = serde_json::from_str(r#"{"block_loopback": true, "allowlist": ["203.0.113.0/24"]}"#).expect("json");
        assert!(c.block_loopback && c.block_failures == 10);
        assert!(serde_json::from_str::<ProtectConfig>(r#"{"block_loopbak": true}"#).is_err());
    }
}
