//! Health-check settings (Settings → Health), validated with errors that
//! name the field.

use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(default)]
pub struct CheckConfig {
    /// Sending domains to check besides those seen in the logs.
    pub domains: Vec<String>,
    /// DKIM selectors to look up for every domain.
    pub dkim_selectors: Vec<String>,
    /// Also check MTA-STS and TLS-RPT records.
    pub mta_sts: bool,
    /// Run the open-relay probe against the server's own SMTP port.
    pub relay_probe: bool,
}

impl CheckConfig {
    /// # Errors
    /// The first field that is not acceptable.
    pub fn validate(&self) -> Result<(), crate::settings::Invalid> {
        use crate::settings::Invalid;
        if self.domains.len() > super::MAX_DOMAINS {
            return Err(Invalid::new("checks.domains", "lists too many domains"));
        }
        if !self.domains.iter().all(|d| crate::dns::valid_name(d) && d.contains('.')) {
            return Err(Invalid::new("checks.domains", "must be domain names"));
        }
        if self.dkim_selectors.len() > super::MAX_SELECTORS {
            return Err(Invalid::new("checks.dkim_selectors", "lists too many selectors"));
        }
        if !self.dkim_selectors.iter().all(|s| crate::dns::valid_name(s)) {
            return Err(Invalid::new("checks.dkim_selectors", "must be DNS labels"));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validation_names_the_field() {
        assert!(CheckConfig::default().validate().is_ok());
        let c = CheckConfig { domains: vec!["example.org".into(), "localhost".into()], ..CheckConfig::default() };
        assert_eq!(c.validate().unwrap_err().field, "checks.domains");
        let c = CheckConfig { dkim_selectors: vec!["a b".into()], ..CheckConfig::default() };
        assert_eq!(c.validate().unwrap_err().field, "checks.dkim_selectors");
        let c = CheckConfig {
            domains: vec!["example.org".into()],
            dkim_selectors: vec!["mail".into(), "s1.2024".into()],
            ..CheckConfig::default()
        };
        assert!(c.validate().is_ok());
    }
}
