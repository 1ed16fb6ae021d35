//! `postlens dovecot-conf`: the Dovecot settings that point its auth policy
//! at postlens, in the syntax of the Dovecot version at hand.
//!
//! Three shapes: 2.2.27–2.2.33 and 2.3.0 (no before/after-auth toggles;
//! the login attribute was `%{orig_username}`); 2.2.34+ and 2.3.1+ (the
//! toggles and `%{requested_username}`); 2.4 and later (new variable names,
//! `auth_policy_request_attributes` as a string-list block, HTTP timeouts
//! from the `http_client_*` settings). The auth policy first appeared in
//! 2.2.27.

/// Which shape of settings a Dovecot version takes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Flavor {
    /// 2.2.27–2.2.33 and 2.3.0.
    Old,
    /// 2.2.34+ and 2.3.1–2.3.x.
    Toggles,
    /// 2.4 and later.
    V24,
}

/// `2.3.19.1`, `2.4.1`, `2.3` (as `2.3.0`), Debian's `2.3.19.1+dfsg1`.
///
/// # Errors
/// A message saying what is accepted (the caller names the flag).
pub fn flavor(version: &str) -> Result<Flavor, String> {
    let v = version.trim();
    let core = v.split(['+', '-', ' ', '~']).next().unwrap_or("");
    let parts: Vec<Option<u32>> = core.split('.').map(|p| p.parse().ok()).collect();
    let bad = || format!("'{version}' is not a Dovecot version like 2.3.19 or 2.4.1");
    if parts.len() < 2 || parts.len() > 4 || parts.iter().any(Option::is_none) {
        return Err(bad());
    }
    let n = |i: usize| parts.get(i).copied().flatten().unwrap_or(0);
    let (major, minor, patch) = (n(0), n(1), n(2));
    let too_old = || format!("Dovecot {version} has no auth policy support (it came with 2.2.27)");
    match (major, minor) {
        (0 | 1, _) | (2, 0 | 1) => Err(too_old()),
        (2, 2) if patch < 27 => Err(too_old()),
        (2, 2) if patch < 34 => Ok(Flavor::Old),
        (2, 3) if patch == 0 => Ok(Flavor::Old),
        (2, 2 | 3) => Ok(Flavor::Toggles),
        _ => Ok(Flavor::V24),
    }
}

/// A fresh `auth_policy_hash_nonce`: 128 random bits in hex.
///
/// # Errors
/// The OS random source failed.
pub fn nonce() -> Result<String, getrandom::Error> {
    use std::fmt::Write as _;
    let mut b = [0u8; 16];
    getrandom::fill(&mut b)?;
    Ok(b.iter().fold(String::with_capacity(32), |mut s, x| {
        let _ = write!(s, "{x:02x}");
        s
    }))
}

/// Whether `key` can stand in a Dovecot setting and an HTTP header as is.
pub fn key_ok(key: &str) -> bool {
    !key.is_empty() && key.len() <= 256 && key.bytes().all(|c| c.is_ascii_alphanumeric() || b"._~+/=-".contains(&c))
}

/// Whether `url` can stand in `auth_policy_server_url` as is.
pub fn url_ok(url: &str) -> bool {
    (url.starts_with("http://") || url.starts_with("https://"))
        && url.len() > 8
        && !url.bytes().any(|c| c.is_ascii_whitespace() || c == b'"')
}

/// The settings text. `url` and `key` must pass [`url_ok`] / [`key_ok`].
pub fn render(flavor: Flavor, url: &str, key: Option<&str>, nonce: &str) -> String {
    use std::fmt::Write as _;
    let mut s = String::new();
    let which = match flavor {
        Flavor::Old => "Dovecot 2.2.27-2.2.33 and 2.3.0",
        Flavor::Toggles => "Dovecot 2.2.34+ and 2.3.1+",
        Flavor::V24 => "Dovecot 2.4+",
    };
    let _ = writeln!(s, "# postlens auth policy ({which}).");
    let _ = writeln!(s, "# Save as /etc/dovecot/conf.d/95-postlens.conf and reload Dovecot.");
    let _ = writeln!(s, "# If postlens is down, Dovecot allows logins (auth_policy_reject_on_fail = no).");
    let _ = writeln!(s, "auth_policy_server_url = {url}");
    if let Some(k) = key {
        let _ = writeln!(s, "auth_policy_server_api_header = X-API-Key:{k}");
    }
    let _ = writeln!(s, "auth_policy_hash_nonce = {nonce}");
    let _ = writeln!(s, "auth_policy_hash_mech = sha256");
    let _ = writeln!(s, "auth_policy_hash_truncate = 12");
    let _ = writeln!(s, "auth_policy_reject_on_fail = no");
    if flavor != Flavor::V24 {
        let _ = writeln!(s, "auth_policy_server_timeout_msecs = 2000");
    }
    if flavor != Flavor::Old {
        let _ = writeln!(s, "auth_policy_check_before_auth = yes");
        let _ = writeln!(s, "auth_policy_check_after_auth = yes");
        let _ = writeln!(s, "auth_policy_report_after_auth = yes");
    }
    match flavor {
        Flavor::Old => {
            let _ = writeln!(
                s,
                "auth_policy_request_attributes = login=%{{orig_username}} pwhash=%{{hashed_password}} remote=%{{rip}} protocol=%s"
            );
        }
        Flavor::Toggles => {
            let _ = writeln!(
                s,
                "auth_policy_request_attributes = login=%{{requested_username}} pwhash=%{{hashed_password}} remote=%{{rip}} device_id=%{{client_id}} protocol=%s"
            );
        }
        Flavor::V24 => {
            s.push_str("auth_policy_request_attributes {\n");
            for (k, v) in [
                ("login", "%{requested_username}"),
                ("pwhash", "%{hashed_password}"),
                ("remote", "%{remote_ip}"),
                ("device_id", "%{client_id}"),
                ("protocol", "%{protocol}"),
            ] {
                let _ = writeln!(s, "  {k} = {v}");
            }
            s.push_str("}\n");
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_map_to_flavors() {
        for (v, f) in [
            ("2.2.27", Flavor::Old),
            ("2.2.33.2", Flavor::Old),
            ("2.2.34", Flavor::Toggles),
            ("2.2.36.4", Flavor::Toggles),
            ("2.3.0", Flavor::Old),
            ("2.3.0.1", Flavor::Old),
            ("2.3", Flavor::Old),
            ("2.3.1", Flavor::Toggles),
            ("2.3.19.1+dfsg1", Flavor::Toggles),
            ("2.4.0", Flavor::V24),
            ("2.4.1-4", Flavor::V24),
            ("3.0.0", Flavor::V24),
        ] {
            assert_eq!(flavor(v), Ok(f), "{v}");
        }
        for v in ["2.2.26", "2.1.17", "1.2.3"] {
            assert!(flavor(v).is_err_and(|e| e.contains("2.2.27")), "{v}");
        }
        for v in ["", "2", "two.three", "2.3.x", "2.3.1.2.3", "v2.3"] {
            assert!(flavor(v).is_err_and(|e| e.contains("is not a Dovecot version")), "{v}");
        }
    }

    const URL: &str = "http://127.0.0.1:8089/dovecot/policy";

    #[test]
    fn old_has_no_toggles_and_orig_username() {
        let s = render(Flavor::Old, URL, None, "n0nce");
        assert!(s.contains("auth_policy_server_url = http://127.0.0.1:8089/dovecot/policy\n"));
        assert!(s.contains("auth_policy_hash_nonce = n0nce\n"));
        assert!(s.contains("auth_policy_hash_truncate = 12\n"));
        assert!(
            s.contains("auth_policy_request_attributes = login=%{orig_username} pwhash=%{hashed_password} remote=%{rip} protocol=%s\n")
        );
        assert!(!s.contains("check_before_auth") && !s.contains("api_header"));
    }

    #[test]
    fn toggles_for_2_3_1() {
        let s = render(Flavor::Toggles, URL, Some("s3cret"), "n0nce");
        for want in [
            "auth_policy_check_before_auth = yes\n",
            "auth_policy_check_after_auth = yes\n",
            "auth_policy_report_after_auth = yes\n",
            "auth_policy_server_api_header = X-API-Key:s3cret\n",
            "auth_policy_server_timeout_msecs = 2000\n",
            "auth_policy_request_attributes = login=%{requested_username} pwhash=%{hashed_password} remote=%{rip} device_id=%{client_id} protocol=%s\n",
        ] {
            assert!(s.contains(want), "{want} missing in\n{s}");
        }
    }

    #[test]
    fn v24_uses_a_string_list_and_new_variables() {
        let s = render(Flavor::V24, URL, None, "n0nce");
        assert!(s.contains(
            "auth_policy_request_attributes {\n  login = %{requested_username}\n  pwhash = %{hashed_password}\n  remote = %{remote_ip}\n  device_id = %{client_id}\n  protocol = %{protocol}\n}\n"
        ));
        assert!(s.contains("auth_policy_check_before_auth = yes\n"));
        assert!(!s.contains("timeout_msecs") && !s.contains("%{rip}") && !s.contains("%s"));
    }

    #[test]
    fn nonces_are_fresh_and_keys_checked() {
        let (a, b) = (nonce().expect("random"), nonce().expect("random"));
        assert_eq!(a.len(), 32);
        assert_ne!(a, b);
        assert!(key_ok("Zm9v-bar_1.2~+/="));
        assert!(!key_ok("a b") && !key_ok("") && !key_ok("x\"y") && !key_ok("k:v"));
        assert!(url_ok(URL) && !url_ok("ftp://x") && !url_ok("http://a b"));
    }
}
