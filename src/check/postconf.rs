//! The Postfix configuration audit, read-only, from `postconf` itself (so
//! defaults, `$name` expansion and master.cf `-o` overrides are Postfix's
//! own): `relay_restrictions`, `mynetworks`, `sasl_tls`, `tls_inbound`,
//! `tls_outbound`, `auth_rate_limit`. Each finding cites the setting and the
//! one-line fix. It never writes a Postfix file and never reloads Postfix.
//!
//! Bounds: `postconf` output is read whole (about 1,100 lines, 60 KB);
//! output over [`MAX_OUTPUT`] is refused.

use super::spf::in_net;
use super::{Check, Status};
use std::collections::HashMap;
use std::net::IpAddr;
use std::path::Path;

/// Postfix prints ~60 KB for `postconf -x`; anything far past that is
/// not postconf.
const MAX_OUTPUT: usize = 4 << 20;

/// A master.cf service: name (`smtp`, `submission`, `127.0.0.1:587`),
/// type (`inet`, `unix`, …), command, and its `-o` overrides.
#[derive(Debug, Clone, Default)]
pub struct Service {
    pub name: String,
    pub kind: String,
    pub command: String,
    pub overrides: HashMap<String, String>,
}

/// The effective configuration: main.cf with defaults, and the services.
#[derive(Debug, Clone, Default)]
pub struct Postconf {
    pub main: HashMap<String, String>,
    pub services: Vec<Service>,
}

fn run(dir: Option<&Path>, args: &[&str]) -> Result<String, String> {
    let mut c = std::process::Command::new("postconf");
    if let Some(d) = dir {
        c.arg("-c").arg(d);
    }
    c.args(args);
    let o = c.output().map_err(|e| format!("cannot run postconf ({e}): is Postfix installed here?"))?;
    if !o.status.success() {
        return Err(format!("postconf {} failed: {}", args.join(" "), String::from_utf8_lossy(&o.stderr).trim()));
    }
    if o.stdout.len() > MAX_OUTPUT {
        return Err("postconf printed more than 4 MiB".into());
    }
    Ok(String::from_utf8_lossy(&o.stdout).into_owned())
}

/// Reads the configuration in `dir` (default: Postfix's own).
///
/// # Errors
/// `postconf` is missing or fails (the text says which).
pub fn load(dir: Option<&Path>) -> Result<Postconf, String> {
    let main = parse_params(&run(dir, &["-x"])?);
    let mut services: Vec<Service> = run(dir, &["-M"])?
        .lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            (f.len() >= 8).then(|| Service { name: f[0].into(), kind: f[1].into(), command: f[7].into(), overrides: HashMap::new() })
        })
        .collect();
    for (k, v) in parse_params(&run(dir, &["-x", "-P"])?) {
        // `name/type/parameter = value`
        let mut it = k.splitn(3, '/');
        if let (Some(n), Some(t), Some(p)) = (it.next(), it.next(), it.next())
            && let Some(s) = services.iter_mut().find(|s| s.name == n && s.kind == t)
        {
            s.overrides.insert(p.to_owned(), v);
        }
    }
    Ok(Postconf { main, services })
}

/// `name = value` lines (continuation lines start with white space).
pub fn parse_params(text: &str) -> HashMap<String, String> {
    let mut m: HashMap<String, String> = HashMap::new();
    let mut last: Option<String> = None;
    for l in text.lines() {
        if l.starts_with([' ', '\t'])
            && let Some(k) = &last
            && let Some(v) = m.get_mut(k)
        {
            v.push(' ');
            v.push_str(l.trim());
            continue;
        }
        if let Some((k, v)) = l.split_once(" = ").or_else(|| l.strip_suffix(" =").map(|k| (k, ""))) {
            m.insert(k.trim().to_owned(), v.trim().to_owned());
            last = Some(k.trim().to_owned());
        }
    }
    m
}

impl Postconf {
    /// A main.cf parameter (empty if unknown).
    pub fn get(&self, p: &str) -> &str {
        self.main.get(p).map_or("", String::as_str)
    }

    /// The value `s` uses: its `-o` override, else main.cf's.
    pub fn eff<'a>(&'a self, s: &'a Service, p: &str) -> &'a str {
        s.overrides.get(p).map_or_else(|| self.get(p), String::as_str)
    }

    /// The smtpd services listening on the network.
    pub fn smtpd(&self) -> Vec<&Service> {
        self.services.iter().filter(|s| s.kind == "inet" && s.command == "smtpd").collect()
    }

    /// The HELO name Postfix sends (`smtp_helo_name`, by default myhostname).
    pub fn helo(&self) -> Option<String> {
        let h = self.get("smtp_helo_name");
        let h = if h.is_empty() { self.get("myhostname") } else { h };
        (!h.is_empty()).then(|| h.to_owned())
    }
}

fn words(v: &str) -> impl Iterator<Item = &str> {
    v.split([' ', ',', '\t', '\n']).filter(|w| !w.is_empty())
}

fn yes(v: &str) -> bool {
    v.eq_ignore_ascii_case("yes")
}

/// Is the inet service the public MX port (25)?
fn is_port25(s: &Service) -> bool {
    let port = s.name.rsplit_once(':').map_or(s.name.as_str(), |(_, p)| p);
    port == "smtp" || port == "25"
}

/// How a restriction list treats mail to other domains.
#[derive(Debug, PartialEq, Eq)]
enum Relay {
    Refused,
    /// Unconditional `permit` first.
    Open,
    Undecided,
}

fn relay_verdict(list: &str) -> Relay {
    for w in words(list) {
        match w {
            "reject_unauth_destination" | "defer_unauth_destination" | "reject" | "defer" => return Relay::Refused,
            "permit" => return Relay::Open,
            _ => {}
        }
    }
    Relay::Undecided
}

/// `relay_restrictions`: every smtpd refuses mail for other domains
/// unless a rule before says the client may relay.
pub fn relay_restrictions(pc: &Postconf) -> Check {
    let target = "smtpd_relay_restrictions";
    let fix = "Set smtpd_relay_restrictions = permit_mynetworks, permit_sasl_authenticated, reject_unauth_destination (postconf -e; postfix reload).";
    let mut open = Vec::new();
    let mut fine = Vec::new();
    let services = pc.smtpd();
    let main_only = Service { name: "main.cf".into(), ..Service::default() };
    let list: Vec<&Service> = if services.is_empty() { vec![&main_only] } else { services };
    for s in list {
        let relay = pc.eff(s, "smtpd_relay_restrictions");
        let rcpt = pc.eff(s, "smtpd_recipient_restrictions");
        let where_ =
            if s.overrides.contains_key("smtpd_relay_restrictions") { format!("{} (-o in master.cf)", s.name) } else { s.name.clone() };
        match (relay_verdict(relay), relay_verdict(rcpt)) {
            (Relay::Refused, _) => fine.push(format!("{where_}: {relay}")),
            (_, Relay::Refused) => fine.push(format!("{where_}: smtpd_recipient_restrictions = {rcpt}")),
            (v, _) => open.push(format!(
                "{where_}: smtpd_relay_restrictions = {}{}",
                if relay.is_empty() { "(empty)" } else { relay },
                if v == Relay::Open {
                    " permits everyone before any reject_unauth_destination"
                } else {
                    " has no reject_unauth_destination, nor has smtpd_recipient_restrictions"
                }
            )),
        }
    }
    if open.is_empty() {
        Check::new("relay_restrictions", target, Status::Pass, fine.join("; "), "")
    } else {
        Check::new("relay_restrictions", target, Status::Fail, format!("open relay: {}", open.join("; ")), fix)
    }
}

/// One `mynetworks` entry's verdict.
fn network(entry: &str, own: Option<IpAddr>) -> Result<Status, String> {
    let e = entry.trim_start_matches('!');
    if e.contains(':') && !e.starts_with('[') && e.parse::<IpAddr>().is_err() && !e.contains('/') || e.starts_with('/') {
        return Err(format!("{entry} is a lookup table, not checked"));
    }
    let (ip, len) = match e.split_once('/') {
        Some((ip, l)) => (ip, l.parse::<u8>().map_err(|_| format!("{entry}: bad prefix length"))?),
        None => (e, 255),
    };
    let ip: IpAddr = ip.trim_start_matches('[').trim_end_matches(']').parse().map_err(|_| format!("{entry} is not an address"))?;
    let max = if ip.is_ipv4() { 32 } else { 128 };
    let len = len.min(max);
    if entry.starts_with('!') || len == max || own.is_some_and(|o| in_net(o, ip, len) && len == max) {
        return Ok(Status::Pass);
    }
    let private: &[(&str, u8)] = &[
        ("127.0.0.0", 8),
        ("10.0.0.0", 8),
        ("172.16.0.0", 12),
        ("192.168.0.0", 16),
        ("100.64.0.0", 10),
        ("169.254.0.0", 16),
        ("::1", 128),
        ("fc00::", 7),
        ("fe80::", 10),
    ];
    let inside = private.iter().any(|(n, l)| n.parse::<IpAddr>().is_ok_and(|n| *l <= len && in_net(ip, n, *l)));
    if inside {
        Ok(Status::Pass)
    } else if (ip.is_ipv4() && len < 24) || (ip.is_ipv6() && len < 48) {
        Ok(Status::Fail)
    } else {
        Ok(Status::Warn)
    }
}

/// Does a `mynetworks` entry that is not too broad hold `ip`?
pub fn trusted_by(pc: &Postconf, ip: IpAddr) -> bool {
    words(pc.get("mynetworks")).filter(|w| !w.starts_with('!')).any(|w| {
        let e = w.trim_start_matches('[').replacen("]/", "/", 1);
        let e = e.trim_end_matches(']');
        let (net, len) = e.split_once('/').map_or((e, None), |(a, l)| (a, l.parse::<u8>().ok()));
        net.parse::<IpAddr>().is_ok_and(|n| in_net(ip, n, len.unwrap_or(if n.is_ipv4() { 32 } else { 128 })))
            && network(w, None) == Ok(Status::Pass)
    })
}

/// `mynetworks`: no network broader than this host and its private LAN.
pub fn mynetworks(pc: &Postconf, own: Option<IpAddr>) -> Check {
    let v = pc.get("mynetworks");
    let fix =
        "Set mynetworks = 127.0.0.0/8 [::1]/128 (plus your own LAN if it must send without a password) (postconf -e; postfix reload).";
    let (mut fail, mut warn, mut unknown) = (Vec::new(), Vec::new(), Vec::new());
    for w in words(v) {
        match network(w, own) {
            Ok(Status::Fail) => fail.push(w),
            Ok(Status::Warn) => warn.push(w),
            Ok(_) => {}
            Err(m) => unknown.push(m),
        }
    }
    if !fail.is_empty() {
        Check::new(
            "mynetworks",
            "mynetworks",
            Status::Fail,
            format!("mynetworks = {v}: {} lets a whole public network relay without a password", fail.join(", ")),
            fix,
        )
    } else if !warn.is_empty() {
        Check::new(
            "mynetworks",
            "mynetworks",
            Status::Warn,
            format!("mynetworks = {v}: {} trusts other public hosts (your provider's neighbours?)", warn.join(", ")),
            fix,
        )
    } else if !unknown.is_empty() {
        Check::new(
            "mynetworks",
            "mynetworks",
            Status::Warn,
            format!("mynetworks = {v}: {}", unknown.join("; ")),
            "Check that the table lists only this host and your own LAN.",
        )
    } else {
        Check::new("mynetworks", "mynetworks", Status::Pass, format!("mynetworks = {v}"), "")
    }
}

fn tls_required(pc: &Postconf, s: &Service) -> bool {
    yes(pc.eff(s, "smtpd_tls_auth_only"))
        || pc.eff(s, "smtpd_tls_security_level") == "encrypt"
        || yes(pc.eff(s, "smtpd_tls_wrappermode"))
        || yes(pc.eff(s, "smtpd_enforce_tls"))
}

fn sasl_on(pc: &Postconf) -> Vec<&Service> {
    pc.smtpd().into_iter().filter(|s| yes(pc.eff(s, "smtpd_sasl_auth_enable"))).collect()
}

/// `sasl_tls`: passwords are accepted only inside TLS.
pub fn sasl_tls(pc: &Postconf) -> Check {
    let on = sasl_on(pc);
    if on.is_empty() {
        return Check::new(
            "sasl_tls",
            "smtpd_sasl_auth_enable",
            Status::Pass,
            "SASL AUTH is off on every smtpd service: no passwords cross the network",
            "",
        );
    }
    let plain: Vec<&str> = on.iter().filter(|s| !tls_required(pc, s)).map(|s| s.name.as_str()).collect();
    let names: Vec<&str> = on.iter().map(|s| s.name.as_str()).collect();
    if plain.is_empty() {
        Check::new("sasl_tls", "smtpd_tls_auth_only", Status::Pass, format!("AUTH on {} only after TLS", names.join(", ")), "")
    } else {
        Check::new(
            "sasl_tls",
            "smtpd_tls_auth_only",
            Status::Fail,
            format!(
                "{}: AUTH offered without TLS (smtpd_tls_auth_only = {}): passwords can cross the network in clear",
                plain.join(", "),
                pc.get("smtpd_tls_auth_only")
            ),
            "Set smtpd_tls_auth_only = yes (postconf -e; postfix reload).",
        )
    }
}

fn tls_level(pc: &Postconf, s: &Service) -> String {
    let l = pc.eff(s, "smtpd_tls_security_level");
    if !l.is_empty() {
        return l.to_owned();
    }
    if yes(pc.eff(s, "smtpd_enforce_tls")) {
        "encrypt".into()
    } else if yes(pc.eff(s, "smtpd_use_tls")) {
        "may".into()
    } else {
        "none".into()
    }
}

/// `tls_inbound`: the public port offers STARTTLS with a certificate.
pub fn tls_inbound(pc: &Postconf) -> Check {
    let main_only = Service { name: "main.cf".into(), ..Service::default() };
    let port25: Vec<&Service> = pc.smtpd().into_iter().filter(|s| is_port25(s)).collect();
    let s = port25.first().copied().unwrap_or(&main_only);
    let level = tls_level(pc, s);
    let fix_on = "Set smtpd_tls_security_level = may and smtpd_tls_chain_files = /etc/letsencrypt/live/<name>/privkey.pem, /etc/letsencrypt/live/<name>/fullchain.pem (postconf -e; postfix reload).";
    if level == "none" || level.is_empty() {
        return Check::new(
            "tls_inbound",
            "smtpd_tls_security_level",
            Status::Fail,
            format!("{}: smtpd_tls_security_level = {level}: senders cannot use STARTTLS, mail arrives in clear", s.name),
            fix_on,
        );
    }
    let certs: Vec<&str> = ["smtpd_tls_chain_files", "smtpd_tls_cert_file", "smtpd_tls_eccert_file"]
        .iter()
        .flat_map(|p| words(pc.eff(s, p)).collect::<Vec<_>>())
        .filter(|c| *c != "none")
        .collect();
    if certs.is_empty() {
        return Check::new(
            "tls_inbound",
            "smtpd_tls_cert_file",
            Status::Fail,
            format!(
                "{}: TLS level {level} but no certificate (smtpd_tls_cert_file and smtpd_tls_chain_files are empty): Postfix cannot offer STARTTLS",
                s.name
            ),
            fix_on,
        );
    }
    if let Some(missing) = certs.iter().find(|c| !Path::new(c).exists()) {
        return Check::new(
            "tls_inbound",
            "smtpd_tls_cert_file",
            Status::Fail,
            format!("{}: the certificate file {missing} does not exist: STARTTLS fails", s.name),
            format!(
                "Point smtpd_tls_cert_file (or smtpd_tls_chain_files) at the real file instead of {missing} (postconf -e; postfix reload)."
            ),
        );
    }
    if level == "encrypt" && is_port25(s) {
        return Check::new(
            "tls_inbound",
            "smtpd_tls_security_level",
            Status::Warn,
            format!(
                "{}: smtpd_tls_security_level = encrypt on port 25: servers without TLS cannot deliver to you (RFC 3207 says a public MX must not require it)",
                s.name
            ),
            "Set smtpd_tls_security_level = may for the smtp service (postconf -e; postfix reload).",
        );
    }
    if let Some(snake) = certs.iter().find(|c| c.contains("snakeoil")) {
        return Check::new(
            "tls_inbound",
            "smtpd_tls_cert_file",
            Status::Warn,
            format!("{}: TLS {level} with the self-signed snakeoil certificate {snake}", s.name),
            fix_on,
        );
    }
    Check::new(
        "tls_inbound",
        "smtpd_tls_security_level",
        Status::Pass,
        format!("{}: smtpd_tls_security_level = {level}, certificate {}", s.name, certs.join(", ")),
        "",
    )
}

/// `tls_outbound`: deliveries use TLS when the receiver offers it.
pub fn tls_outbound(pc: &Postconf) -> Check {
    let mut level = pc.get("smtp_tls_security_level").to_owned();
    if level.is_empty() {
        level = if yes(pc.get("smtp_enforce_tls")) {
            "encrypt"
        } else if yes(pc.get("smtp_use_tls")) {
            "may"
        } else {
            "none"
        }
        .into();
    }
    match level.as_str() {
        "none" => Check::new(
            "tls_outbound",
            "smtp_tls_security_level",
            Status::Fail,
            "smtp_tls_security_level = none: outgoing mail is sent in clear even to servers offering STARTTLS",
            "Set smtp_tls_security_level = may (postconf -e; postfix reload).",
        ),
        "may" | "encrypt" | "dane" | "dane-only" | "fingerprint" | "verify" | "secure" => {
            Check::new("tls_outbound", "smtp_tls_security_level", Status::Pass, format!("smtp_tls_security_level = {level}"), "")
        }
        other => Check::new(
            "tls_outbound",
            "smtp_tls_security_level",
            Status::Warn,
            format!("smtp_tls_security_level = {other} is not a level Postfix knows"),
            "Set smtp_tls_security_level = may (postconf -e; postfix reload).",
        ),
    }
}

/// `auth_rate_limit`: password guessing is slowed down, by Postfix's rate
/// limit, a policy service, or Dovecot's auth policy (postlens).
pub fn auth_rate_limit(pc: &Postconf, dovecot_policy: Option<&str>) -> Check {
    let target = "smtpd_client_auth_rate_limit";
    if sasl_on(pc).is_empty() {
        return Check::new("auth_rate_limit", target, Status::Skipped, "SASL AUTH is off: Postfix takes no passwords", "");
    }
    let rate = pc.get("smtpd_client_auth_rate_limit");
    if rate.parse::<u32>().is_ok_and(|r| r > 0) {
        return Check::new(
            "auth_rate_limit",
            target,
            Status::Pass,
            format!("smtpd_client_auth_rate_limit = {rate} per {}", pc.get("anvil_rate_time_unit")),
            "",
        );
    }
    let lists = [
        "smtpd_client_restrictions",
        "smtpd_helo_restrictions",
        "smtpd_sender_restrictions",
        "smtpd_relay_restrictions",
        "smtpd_recipient_restrictions",
        "smtpd_data_restrictions",
        "smtpd_end_of_data_restrictions",
    ];
    let policy = pc.smtpd().iter().any(|s| lists.iter().any(|l| pc.eff(s, l).contains("check_policy_service")))
        || lists.iter().any(|l| pc.get(l).contains("check_policy_service"));
    if policy {
        return Check::new(
            "auth_rate_limit",
            "check_policy_service",
            Status::Pass,
            "a policy service (check_policy_service) is consulted",
            "",
        );
    }
    if let Some(url) = dovecot_policy {
        return Check::new(
            "auth_rate_limit",
            "auth_policy_server_url",
            Status::Pass,
            format!("Dovecot asks the auth policy server {url} before each login"),
            "",
        );
    }
    Check::new(
        "auth_rate_limit",
        target,
        Status::Warn,
        "smtpd_client_auth_rate_limit = 0 and no policy service: password guessing is not slowed down",
        "Set smtpd_client_auth_rate_limit = 30 (postconf -e; postfix reload), or point Dovecot at postlens (postlens dovecot-conf).",
    )
}

/// `message_size_limit` (an addition to DESIGN.md's ids, asked for by the
/// health-check issue): a limit the big providers' messages fit in (they
/// send up to 25-35 MB once encoded), not unlimited, not absurd, and not
/// above `mailbox_size_limit` (Postfix refuses to deliver locally then).
pub fn message_size_limit(pc: &Postconf) -> Check {
    const MB: u64 = 1_000_000;
    let target = "message_size_limit";
    let raw = pc.get("message_size_limit");
    let Ok(limit) = raw.parse::<u64>() else {
        return Check::new(
            "message_size_limit",
            target,
            Status::Warn,
            format!("message_size_limit = {raw} is not a number"),
            "Set message_size_limit = 50000000 (50 MB, below the default mailbox_size_limit of 51200000; postconf -e; postfix reload).",
        );
    };
    let mailbox = pc.get("mailbox_size_limit").parse::<u64>().unwrap_or(0);
    let shown = |b: u64| format!("{b} bytes ({}.{} MB)", b / MB, b % MB / (MB / 10));
    if limit > 0 && mailbox > 0 && mailbox < limit {
        return Check::new(
            "message_size_limit",
            target,
            Status::Fail,
            format!(
                "message_size_limit = {} is above mailbox_size_limit = {}: Postfix refuses local delivery",
                shown(limit),
                shown(mailbox)
            ),
            format!("Set mailbox_size_limit = 0 or at least {limit} (postconf -e; postfix reload)."),
        );
    }
    let (status, evidence, fix) = if limit == 0 {
        (
            Status::Warn,
            "message_size_limit = 0: no limit, one message can fill the queue's disk".to_owned(),
            "Set message_size_limit = 50000000 (50 MB, below the default mailbox_size_limit of 51200000; postconf -e; postfix reload).",
        )
    } else if limit < 20 * MB {
        (
            Status::Warn,
            format!(
                "message_size_limit = {}: attachments that Gmail or Outlook accept (25 MB and more once encoded) bounce here",
                shown(limit)
            ),
            "Set message_size_limit = 50000000 (50 MB, below the default mailbox_size_limit of 51200000; postconf -e; postfix reload).",
        )
    } else if limit > 200 * MB {
        (
            Status::Warn,
            format!("message_size_limit = {}: far more than any provider accepts", shown(limit)),
            "Set message_size_limit = 50000000 (50 MB, below the default mailbox_size_limit of 51200000; postconf -e; postfix reload).",
        )
    } else {
        (Status::Pass, format!("message_size_limit = {}", shown(limit)), "")
    };
    Check::new("message_size_limit", target, status, evidence, fix)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn message_size_limits_are_judged() {
        let pc = |text: &str| Postconf { main: parse_params(text), ..Postconf::default() };
        let st = |text: &str| message_size_limit(&pc(text)).status;
        assert_eq!(st("message_size_limit = 52428800\n"), Status::Pass);
        assert_eq!(st("message_size_limit = 10240000\n"), Status::Warn, "Postfix's default: too small for today's attachments");
        assert_eq!(st("message_size_limit = 0\n"), Status::Warn);
        assert_eq!(st("message_size_limit = 900000000\n"), Status::Warn);
        assert_eq!(st("message_size_limit = lots\n"), Status::Warn);
        assert_eq!(st("message_size_limit = 52428800\nmailbox_size_limit = 51200000\n"), Status::Fail);
        assert_eq!(st("message_size_limit = 52428800\nmailbox_size_limit = 0\n"), Status::Pass);
        assert_eq!(
            st("message_size_limit = 50000000\nmailbox_size_limit = 51200000\n"),
            Status::Pass,
            "the advice fits the default mailbox limit"
        );
    }

    #[test]
    fn networks_are_judged() {
        let own: Option<IpAddr> = "198.51.100.7".parse().ok();
        assert_eq!(network("127.0.0.0/8", own), Ok(Status::Pass));
        assert_eq!(network("[::1]/128", own), Ok(Status::Pass));
        assert_eq!(network("192.168.1.0/24", own), Ok(Status::Pass));
        assert_eq!(network("198.51.100.7", own), Ok(Status::Pass));
        assert_eq!(network("198.51.100.0/24", own), Ok(Status::Warn));
        assert_eq!(network("0.0.0.0/0", own), Ok(Status::Fail));
        assert_eq!(network("10.0.0.0/7", own), Ok(Status::Fail), "wider than 10/8: public space too");
        assert_eq!(network("[2001:db8::]/32", own), Ok(Status::Fail));
        assert!(network("hash:/etc/postfix/network_table", own).is_err());
    }

    #[test]
    fn relay_lists() {
        assert_eq!(relay_verdict("permit_mynetworks, permit_sasl_authenticated, defer_unauth_destination"), Relay::Refused);
        assert_eq!(relay_verdict("permit_mynetworks permit"), Relay::Open);
        assert_eq!(relay_verdict("permit_mynetworks"), Relay::Undecided);
        assert_eq!(relay_verdict(""), Relay::Undecided);
    }

    #[test]
    fn params_with_continuations() {
        let m = parse_params("a = 1\nmynetworks = 127.0.0.0/8\n    [::1]/128\nempty =\n");
        assert_eq!(m["mynetworks"], "127.0.0.0/8 [::1]/128");
        assert_eq!(m["empty"], "");
    }
}
