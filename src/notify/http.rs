//! HTTPS for Slack and webhooks (ureq, blocking) and the TLS trust shared
//! with the SMTP client: Mozilla's roots plus an optional CA file.
//!
//! Every request has an overall timeout; redirects are not followed (a
//! webhook that moved is a configuration error, and following one could
//! carry an `Authorization` header elsewhere); at most
//! [`crate::limits::NOTIFY_MAX_RESPONSE`] bytes of a response are read.

use super::SendError;
use crate::limits::{NOTIFY_MAX_CA_FILE, NOTIFY_MAX_RESPONSE};
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject as _;
use std::io::Read as _;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

/// The crypto provider for every TLS connection: ring.
pub(crate) fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// The certificates of `ca_file` (PEM).
fn read_ca_file(path: &Path) -> Result<Vec<CertificateDer<'static>>, SendError> {
    let name = path.display();
    let f = std::fs::File::open(path).map_err(|e| SendError::Config(format!("ca_file {name}: {e}")))?;
    let mut pem = Vec::new();
    f.take(NOTIFY_MAX_CA_FILE + 1).read_to_end(&mut pem).map_err(|e| SendError::Config(format!("ca_file {name}: {e}")))?;
    if pem.len() as u64 > NOTIFY_MAX_CA_FILE {
        return Err(SendError::Config(format!("ca_file {name}: larger than 1 MiB")));
    }
    let certs: Vec<_> = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<_, _>>()
        .map_err(|e| SendError::Config(format!("ca_file {name}: not a PEM file of certificates ({e})")))?;
    if certs.is_empty() {
        return Err(SendError::Config(format!("ca_file {name}: holds no certificate")));
    }
    Ok(certs)
}

/// Mozilla's roots, then those of `ca_file`.
fn roots(ca_file: Option<&Path>) -> Result<Vec<CertificateDer<'static>>, SendError> {
    let mut v: Vec<CertificateDer<'static>> = webpki_root_certs::TLS_SERVER_ROOT_CERTS.to_vec();
    if let Some(p) = ca_file {
        v.extend(read_ca_file(p)?);
    }
    Ok(v)
}

/// A rustls client configuration trusting [`roots`] (the SMTP client's).
pub(crate) fn tls_client(ca_file: Option<&Path>) -> Result<Arc<rustls::ClientConfig>, SendError> {
    let mut store = rustls::RootCertStore::empty();
    let (_, ignored) = store.add_parsable_certificates(roots(ca_file)?);
    if ignored > 0 && ca_file.is_some() && store.is_empty() {
        return Err(SendError::Config("ca_file: no usable certificate".into()));
    }
    let c = rustls::ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| SendError::Config(e.to_string()))?
        .with_root_certificates(store)
        .with_no_client_auth();
    Ok(Arc::new(c))
}

/// An HTTP client trusting [`roots`], with `timeout` for a whole request.
pub(crate) fn agent(ca_file: Option<&Path>, timeout: Duration) -> Result<ureq::Agent, SendError> {
    // Mozilla's roots are borrowed from the binary; only the CA file's are copied.
    let mut certs: Vec<ureq::tls::Certificate<'static>> = webpki_root_certs::TLS_SERVER_ROOT_CERTS
        .iter()
        .map(|c: &'static CertificateDer<'static>| ureq::tls::Certificate::from_der(c))
        .collect();
    if let Some(p) = ca_file {
        certs.extend(read_ca_file(p)?.iter().map(|c| ureq::tls::Certificate::from_der(c).to_owned()));
    }
    let tls = ureq::tls::TlsConfig::builder()
        .provider(ureq::tls::TlsProvider::Rustls)
        .unversioned_rustls_crypto_provider(provider())
        .root_certs(ureq::tls::RootCerts::new_with_certs(&certs))
        .build();
    let config = ureq::Agent::config_builder()
        .tls_config(tls)
        .timeout_global(Some(timeout))
        .timeout_connect(Some(timeout))
        .http_status_as_error(false)
        .max_redirects(0)
        .user_agent(concat!("postlens/", env!("CARGO_PKG_VERSION")))
        .build();
    Ok(config.new_agent())
}

/// POSTs a JSON body; answers the status and up to
/// [`NOTIFY_MAX_RESPONSE`] bytes of the response body (lossy UTF-8).
/// Error texts may quote the URL: the caller redacts them.
pub(crate) fn post_json(
    agent: &ureq::Agent,
    url: &str,
    headers: &[(&str, &str)],
    body: &[u8],
    timeout: Duration,
) -> Result<(u16, String), SendError> {
    let mut req = agent.post(url).header("Content-Type", "application/json; charset=utf-8");
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let transport = |e: ureq::Error| SendError::Transport(format!("{}: {e}", authority(url)));
    let mut resp = req.config().timeout_global(Some(timeout)).build().send(body).map_err(transport)?;
    let status = resp.status().as_u16();
    let mut text = Vec::new();
    // A body that breaks off still leaves its status: keep what was read.
    let _ = resp.body_mut().as_reader().take(NOTIFY_MAX_RESPONSE).read_to_end(&mut text);
    Ok((status, String::from_utf8_lossy(&text).into_owned()))
}

/// `host[:port]` of a URL (no user information, path or query: those
/// may be secret), for error texts.
fn authority(url: &str) -> &str {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let auth = rest.split(['/', '?', '#']).next().unwrap_or("");
    auth.rsplit_once('@').map_or(auth, |(_, h)| h)
}

/// A 2xx is success; anything else is [`SendError::Status`] with the start
/// of the body (a webhook's reason, e.g. Slack's `invalid_token`).
pub(crate) fn expect_2xx((status, body): (u16, String)) -> Result<String, SendError> {
    if (200..300).contains(&status) {
        Ok(body)
    } else {
        let body: String = body.trim().chars().take(200).map(|c| if c.is_control() { ' ' } else { c }).collect();
        Err(SendError::Status { status, body })
    }
}

/// Slack's Web API answers 200 with `{"ok": false, "error": "…"}` on failure.
pub(crate) fn slack_ok(body: &str) -> Result<(), SendError> {
    #[derive(serde::Deserialize)]
    struct Answer {
        ok: bool,
        #[serde(default)]
        error: Option<String>,
    }
    match serde_json::from_str::<Answer>(body) {
        Ok(Answer { ok: true, .. }) => Ok(()),
        Ok(Answer { error, .. }) => {
            let e: String = error.unwrap_or_else(|| "no reason given".into()).chars().take(100).filter(|c| !c.is_control()).collect();
            Err(SendError::Slack(e))
        }
        Err(_) => Err(SendError::Slack(format!("not a Slack API answer: {}", super::format::cut(body.trim(), 100)))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slack_answers() {
        assert_eq!(slack_ok(r#"{"ok":true,"channel":"C1","ts":"1.2"}"#), Ok(()));
        assert_eq!(slack_ok(r#"{"ok":false,"error":"channel_not_found"}"#), Err(SendError::Slack("channel_not_found".into())));
        assert!(matches!(slack_ok("<html>"), Err(SendError::Slack(e)) if e.contains("not a Slack API answer")));
    }

    #[test]
    fn authority_keeps_no_secret() {
        assert_eq!(authority("https://hooks.slack.com/services/T0/B0/XyZ"), "hooks.slack.com");
        assert_eq!(authority("https://user:pw@ntfy.example:8443/topic?x=1"), "ntfy.example:8443");
        assert_eq!(authority("http://127.0.0.1:9?token=abc"), "127.0.0.1:9");
    }

    #[test]
    fn statuses() {
        assert_eq!(expect_2xx((204, String::new())), Ok(String::new()));
        assert_eq!(expect_2xx((404, "no_service\n".into())), Err(SendError::Status { status: 404, body: "no_service".into() }));
    }

    #[test]
    fn ca_file_problems_are_configuration_errors() {
        let d = std::env::temp_dir().join(format!("postlens-notify-ca-{}", std::process::id()));
        std::fs::create_dir_all(&d).unwrap();
        let empty = d.join("empty.pem");
        std::fs::write(&empty, "not pem\n").unwrap();
        assert!(matches!(tls_client(Some(&empty)), Err(SendError::Config(e)) if e.contains("holds no certificate")));
        assert!(
            matches!(agent(Some(&d.join("missing.pem")), Duration::from_secs(1)), Err(SendError::Config(e)) if e.contains("missing.pem"))
        );
        assert!(tls_client(None).is_ok());
        let _ = std::fs::remove_dir_all(&d);
    }
}
