//! Deliverability and configuration health checks (`postlens check`, the
//! Health page, `/api/v1/checks`): DNS for each sending domain, the server's
//! IP, the Postfix configuration and an opt-in open-relay probe. Each check
//! answers pass / warn / fail / skipped with its evidence and the fix.
//!
//! Two steps, as elsewhere: [`options`] (or [`options_from_store`]) turns
//! flags, settings and the logs into validated [`Options`] (flags override
//! settings, which override what the logs say); [`run`] asks DNS, Postfix
//! and (opt-in) the SMTP port and returns one [`Check`] per id and target.
//! Read-only: nothing here writes the store, a Postfix file or DNS.
//!
//! Bounds: at most [`MAX_DOMAINS`] domains and [`MAX_SELECTORS`] selectors
//! per run; every DNS question and the relay probe have a deadline; a run
//! against a DNS server that never answers stops asking after two tries.

pub mod config;
pub mod domain;
pub mod ip;
pub mod postconf;
pub mod relay;
pub mod resolve;
pub mod service;
pub mod spf;

pub use crate::limits::{CHECK_DKIM_SCAN_BYTES as DKIM_SCAN_BYTES, CHECK_MAX_DOMAINS as MAX_DOMAINS, CHECK_MAX_SELECTORS as MAX_SELECTORS};
use crate::store::Store;
use clap::Args;
pub use config::CheckConfig;
use serde::Serialize;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

/// Every check id, in checklist order: DESIGN.md's, plus
/// `message_size_limit` (asked for by the health-check issue).
pub const IDS: [&str; 20] = [
    "mx",
    "spf",
    "spf_lookups",
    "spf_authorises_ip",
    "dkim",
    "dmarc",
    "mta_sts",
    "tls_rpt",
    "ptr",
    "fcrdns",
    "helo",
    "dnsbl",
    "relay_restrictions",
    "mynetworks",
    "sasl_tls",
    "tls_inbound",
    "tls_outbound",
    "auth_rate_limit",
    "message_size_limit",
    "open_relay",
];
/// How far back from the newest log line senders' domains are collected.
pub const LOG_WINDOW_SECS: i64 = 7 * 24 * 3_600;
/// Deadline of one DNS question.
pub const DNS_TIMEOUT: Duration = Duration::from_millis(crate::limits::DNS_TIMEOUT_MS);
/// Deadline of the whole open-relay probe conversation.
pub const PROBE_TIMEOUT: Duration = Duration::from_secs(15);

/// `postlens check` (flags as in DESIGN.md "Health checks"). Flags override
/// what the settings and the logs say.
#[derive(Args, Debug, Clone, Default)]
pub struct CheckArgs {
    #[command(flatten)]
    pub common: crate::config::Common,
    /// A sending domain to check (repeatable; default: the senders' domains
    /// in the logs and the settings).
    #[arg(long = "domain", env = "POSTLENS_DOMAIN", value_delimiter = ':', value_name = "D")]
    pub domains: Vec<String>,
    /// The mail server's public IP (default: the settings).
    #[arg(long, env = "POSTLENS_PUBLIC_IP", value_name = "IP")]
    pub public_ip: Option<String>,
    /// The name the server says in HELO/EHLO (default: Postfix's
    /// `smtp_helo_name`, i.e. `myhostname`).
    #[arg(long, env = "POSTLENS_HELO", value_name = "NAME")]
    pub helo: Option<String>,
    /// A DKIM selector to look up (repeatable; default: the settings, then
    /// opendkim's log lines, then a few common selectors).
    #[arg(long = "dkim-selector", env = "POSTLENS_DKIM_SELECTOR", value_delimiter = ':', value_name = "S")]
    pub dkim_selectors: Vec<String>,
    /// A DNSBL zone (repeatable; replaces the default list).
    #[arg(long = "dnsbl", env = "POSTLENS_DNSBL", value_delimiter = ':', value_name = "ZONE")]
    pub dnsbls: Vec<String>,
    /// DNS server to ask (default: the settings' insights DNS server, else
    /// the system resolver of /etc/resolv.conf).
    #[arg(long, env = "POSTLENS_DNS_SERVER", value_name = "HOST:PORT")]
    pub dns_server: Option<String>,
    /// Directory with Postfix's main.cf/master.cf to audit (default: `postconf`).
    #[arg(long, env = "POSTLENS_POSTCONF_DIR", value_name = "DIR")]
    pub postconf_dir: Option<PathBuf>,
    /// Also check the MTA-STS and TLS-RPT records (default: the settings).
    #[arg(long, env = "POSTLENS_MTA_STS")]
    pub mta_sts: bool,
    /// Run the open-relay probe against this SMTP address (default: off,
    /// or the settings' opt-in: the public IP's port 25). The probe stops
    /// before DATA, so no mail is sent.
    #[arg(long, env = "POSTLENS_RELAY_PROBE", value_name = "HOST:PORT")]
    pub relay_probe: Option<String>,
    /// Print the JSON array of DESIGN.md instead of the checklist.
    #[arg(long)]
    pub json: bool,
}

/// Why `postlens check` could not run.
#[derive(Debug)]
pub enum CheckError {
    /// A bad flag or setting (exit code 2); the message names it.
    Usage(String),
    /// The checks could not run, e.g. no DNS server answered (exit code 1).
    Runtime(String),
}

impl std::fmt::Display for CheckError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CheckError::Usage(m) | CheckError::Runtime(m) => f.write_str(m),
        }
    }
}

impl From<crate::store::StoreError> for CheckError {
    fn from(e: crate::store::StoreError) -> Self {
        CheckError::Runtime(e.to_string())
    }
}

/// A check's verdict.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Pass,
    Warn,
    Fail,
    /// Not evaluated: opt-in and off, an input unknown (no public IP), or
    /// no answer; the evidence says which.
    Skipped,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Pass => "pass",
            Status::Warn => "warn",
            Status::Fail => "fail",
            Status::Skipped => "skipped",
        }
    }
}

/// One finding, serialised exactly as DESIGN.md's
/// `{"id","target","status","evidence","fix"}`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Check {
    /// One of the check ids of DESIGN.md (`mx`, `spf`, … `open_relay`).
    pub id: &'static str,
    /// The domain, record name, IP, zone or Postfix setting checked (empty
    /// when the input was unknown).
    pub target: String,
    pub status: Status,
    /// What was found, in plain words (the record, the answer, the value).
    pub evidence: String,
    /// What to change, in plain words; empty when nothing is to be done.
    pub fix: String,
}

impl Check {
    pub fn new(id: &'static str, target: &str, status: Status, evidence: impl Into<String>, fix: impl Into<String>) -> Check {
        Check { id, target: target.to_owned(), status, evidence: evidence.into(), fix: fix.into() }
    }
}

/// A check whose DNS questions got no answer: not evaluated.
pub(crate) fn no_answer(id: &'static str, target: &str, e: &dyn std::fmt::Display) -> Check {
    Check::new(id, target, Status::Skipped, format!("no DNS answer: {e}"), "Check that the DNS server answers, then run the checks again.")
}

/// Everything a run needs, validated.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Options {
    /// Sending domains, lower-case, deduplicated, at most [`MAX_DOMAINS`].
    pub domains: Vec<String>,
    pub public_ip: Option<IpAddr>,
    /// HELO name (flag, else Postfix's).
    pub helo: Option<String>,
    /// Selectors for every domain (flags, else settings).
    pub dkim_selectors: Vec<String>,
    /// (domain, selector) pairs opendkim logged as signing.
    pub dkim_seen: Vec<(String, String)>,
    pub dnsbls: Vec<String>,
    /// Tried in order; empty means "none configured" (DNS checks skipped
    /// with that evidence).
    pub dns_servers: Vec<SocketAddr>,
    /// `None`: Postfix's default configuration directory.
    pub postconf_dir: Option<PathBuf>,
    pub mta_sts: bool,
    /// `Some`: run the open-relay probe against this address.
    pub relay_probe: Option<SocketAddr>,
    pub dns_timeout: Duration,
}

fn usage(flag: &str, m: impl std::fmt::Display) -> CheckError {
    CheckError::Usage(format!("{flag}: {m}"))
}

fn domain_ok(d: &str) -> bool {
    crate::dns::valid_name(d) && d.contains('.')
}

/// Options from the flags, over the store's settings and logs (`store`
/// `None`: flags alone).
///
/// # Errors
/// `Usage` naming the bad flag; `Runtime` when the store cannot be read.
pub fn options(args: &CheckArgs, store: Option<&Store>) -> Result<Options, CheckError> {
    let mut o = match store {
        Some(s) => options_from_store(s)?,
        None => Options { dnsbls: crate::insights::InsightConfig::default().dnsbls, ..Options::default() },
    };
    if !args.domains.is_empty() {
        o.domains.clear();
        for d in &args.domains {
            let d = d.trim_end_matches('.').to_ascii_lowercase();
            if !domain_ok(&d) {
                return Err(usage("--domain", format!("'{d}' is not a domain name")));
            }
            if !o.domains.contains(&d) {
                o.domains.push(d);
            }
        }
        if o.domains.len() > MAX_DOMAINS {
            return Err(usage("--domain", format!("at most {MAX_DOMAINS} domains per run")));
        }
    }
    if let Some(ip) = &args.public_ip {
        o.public_ip = Some(ip.parse().map_err(|_| usage("--public-ip", format!("'{ip}' is not an IPv4 or IPv6 address")))?);
    }
    if let Some(h) = &args.helo {
        let h = h.trim_end_matches('.');
        if !crate::dns::valid_name(h) {
            return Err(usage("--helo", format!("'{h}' is not a host name")));
        }
        o.helo = Some(h.to_ascii_lowercase());
    }
    if !args.dkim_selectors.is_empty() {
        if args.dkim_selectors.len() > MAX_SELECTORS {
            return Err(usage("--dkim-selector", format!("at most {MAX_SELECTORS} selectors")));
        }
        if let Some(bad) = args.dkim_selectors.iter().find(|s| !crate::dns::valid_name(s)) {
            return Err(usage("--dkim-selector", format!("'{bad}' is not a selector (DNS labels)")));
        }
        o.dkim_selectors.clone_from(&args.dkim_selectors);
    }
    if !args.dnsbls.is_empty() {
        if args.dnsbls.len() > crate::limits::MAX_DNSBL_ZONES {
            return Err(usage("--dnsbl", format!("at most {} zones", crate::limits::MAX_DNSBL_ZONES)));
        }
        if let Some(bad) = args.dnsbls.iter().find(|z| !crate::dns::valid_name(z)) {
            return Err(usage("--dnsbl", format!("'{bad}' is not a DNS zone")));
        }
        o.dnsbls.clone_from(&args.dnsbls);
    }
    if let Some(s) = &args.dns_server {
        o.dns_servers = vec![crate::dns::parse_server(s).ok_or_else(|| usage("--dns-server", format!("'{s}' is not HOST:PORT")))?];
    }
    if let Some(d) = &args.postconf_dir {
        if !d.join("main.cf").is_file() {
            return Err(usage("--postconf-dir", format!("{} has no main.cf", d.display())));
        }
        o.postconf_dir = Some(d.clone());
    }
    o.mta_sts |= args.mta_sts;
    if let Some(p) = &args.relay_probe {
        o.relay_probe = Some(
            crate::dns::parse_server(p)
                .filter(|_| p.contains(':'))
                .ok_or_else(|| usage("--relay-probe", format!("'{p}' is not HOST:PORT")))?,
        );
    }
    if o.helo.is_none() {
        o.helo = postconf::load(o.postconf_dir.as_deref()).ok().and_then(|pc| pc.helo());
    }
    if o.relay_probe.is_none()
        && let Some(s) = store
        && crate::settings::Settings::load(s)?.checks.relay_probe
    {
        o.relay_probe = Some(SocketAddr::new(o.public_ip.unwrap_or(IpAddr::from([127, 0, 0, 1])), 25));
    }
    Ok(o)
}

/// Options from the stored settings and the logs alone (the daemon's
/// periodic run and the Health page): sending domains of the last
/// [`LOG_WINDOW_SECS`] of outbound mail plus the settings' domains, the
/// public IP, DNSBLs and DNS server of the settings.
///
/// # Errors
/// `Runtime` when the store cannot be read; `Usage` for a stored setting
/// that does not validate.
pub fn options_from_store(store: &Store) -> Result<Options, CheckError> {
    let st = crate::settings::Settings::load(store)?;
    st.validate().map_err(|e| CheckError::Usage(format!("settings: {e}")))?;
    let mut o = Options {
        public_ip: st.public_ip.as_deref().and_then(|ip| ip.parse().ok()),
        dkim_selectors: st.checks.dkim_selectors.clone(),
        dnsbls: st.insights.dnsbls.clone(),
        mta_sts: st.checks.mta_sts,
        dns_timeout: DNS_TIMEOUT,
        ..Options::default()
    };
    if let Some(s) = &st.insights.dns_server {
        o.dns_servers = crate::dns::parse_server(s).into_iter().collect();
    }
    for d in &st.checks.domains {
        let d = d.to_ascii_lowercase();
        if !o.domains.contains(&d) {
            o.domains.push(d);
        }
    }
    if st.checks.relay_probe {
        o.relay_probe = Some(SocketAddr::new(o.public_ip.unwrap_or(IpAddr::from([127, 0, 0, 1])), 25));
    }
    let Some((_, newest)) = store.time_span()? else { return Ok(o) };
    let w = crate::store::query::Window {
        from: Some(crate::clock::Timestamp(newest.saturating_sub(LOG_WINDOW_SECS))),
        to: Some(crate::clock::Timestamp(newest.saturating_add(1))),
    };
    // A week of a busy server is hundreds of thousands of deliveries: they
    // are counted block by block, never held (the map keeps sender
    // domains, at most MAX_SENDER_DOMAINS; later new ones are not counted).
    let mut counts: std::collections::HashMap<String, u64> = std::collections::HashMap::new();
    store.deliveries_each(w, None, |d| {
        if d.direction() != crate::track::Direction::Outbound {
            return;
        }
        if let Some((_, dom)) = d.sender.as_deref().and_then(|s| s.rsplit_once('@')) {
            if let Some(n) = counts.get_mut(dom) {
                *n += 1;
                return;
            }
            let dom = dom.to_ascii_lowercase();
            if domain_ok(&dom) && (counts.len() < crate::limits::CHECK_MAX_SENDER_DOMAINS || counts.contains_key(&dom)) {
                *counts.entry(dom).or_default() += 1;
            }
        }
    })?;
    let mut by_count: Vec<(String, u64)> = counts.into_iter().collect();
    by_count.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    for (d, _) in by_count {
        if o.domains.len() >= MAX_DOMAINS {
            break;
        }
        if !o.domains.contains(&d) {
            o.domains.push(d);
        }
    }
    o.domains.truncate(MAX_DOMAINS);
    // opendkim: "…: 4F1A2: DKIM-Signature field added (s=mail, d=example.org)".
    let (lines, _) = store.raw_matching(w, &["DKIM-Signature field added"], 500, DKIM_SCAN_BYTES, None)?;
    for (_, l) in lines {
        let l = String::from_utf8_lossy(&l);
        let Some(tail) = l.split("field added (").nth(1) else { continue };
        let mut sel = None;
        let mut dom = None;
        for kv in tail.trim_end_matches(')').split(',') {
            match kv.trim().split_once('=') {
                Some(("s", v)) => sel = Some(v.trim().to_owned()),
                Some(("d", v)) => dom = Some(v.trim().trim_end_matches(')').to_ascii_lowercase()),
                _ => {}
            }
        }
        if let (Some(s), Some(d)) = (sel, dom)
            && crate::dns::valid_name(&s)
            && !o.dkim_seen.contains(&(d.clone(), s.clone()))
            && o.dkim_seen.len() < MAX_DOMAINS * MAX_SELECTORS
        {
            o.dkim_seen.push((d, s));
        }
    }
    Ok(o)
}

/// Runs every check. Checks whose inputs are unknown are `skipped`, with
/// the fix saying what to provide.
///
/// # Errors
/// `Runtime` when DNS questions were asked and no server answered any.
pub fn run(opts: &Options) -> Result<Vec<Check>, CheckError> {
    let servers = if opts.dns_servers.is_empty() { crate::dns::system_servers() } else { opts.dns_servers.clone() };
    if servers.is_empty() {
        return Err(CheckError::Runtime("no DNS server: none given with --dns-server and none in /etc/resolv.conf".into()));
    }
    let timeout = if opts.dns_timeout.is_zero() { DNS_TIMEOUT } else { opts.dns_timeout };
    let r = resolve::Resolver::new(servers.clone(), timeout);
    let mut out = Vec::new();
    if opts.domains.is_empty() {
        for id in ["mx", "spf", "spf_lookups", "spf_authorises_ip", "dkim", "dmarc", "mta_sts", "tls_rpt"] {
            out.push(Check::new(
                id,
                "",
                Status::Skipped,
                "no sending domain: none in the logs, the settings or --domain",
                "Add your domains in Settings → Health, or pass --domain.",
            ));
        }
    }
    let helo = opts.helo.as_deref().unwrap_or("");
    for d in &opts.domains {
        out.push(domain::mx(&r, d));
        out.push(domain::spf(&r, d));
        out.push(domain::spf_lookups(&r, d));
        out.push(domain::spf_authorises_ip(&r, d, opts.public_ip, helo));
        let mut sels: Vec<String> = opts.dkim_selectors.clone();
        if sels.is_empty() {
            sels = opts.dkim_seen.iter().filter(|(dom, _)| dom == d).map(|(_, s)| s.clone()).collect();
        }
        sels.truncate(MAX_SELECTORS);
        out.extend(domain::dkim(&r, d, &sels));
        out.push(domain::dmarc(&r, d));
        out.push(domain::mta_sts(&r, d, opts.mta_sts));
        out.push(domain::tls_rpt(&r, d, opts.mta_sts));
    }
    out.push(ip::ptr(&r, opts.public_ip, opts.helo.as_deref()));
    out.push(ip::fcrdns(&r, opts.public_ip, opts.helo.as_deref()));
    out.push(ip::helo(&r, opts.helo.as_deref(), opts.public_ip));
    let mut dnsbl_answered = false;
    if r.unreachable().is_none() {
        out.extend(ip::dnsbl(&servers, timeout, opts.public_ip, &opts.dnsbls, &mut dnsbl_answered));
    }
    if let Some(e) = r.unreachable().filter(|_| !dnsbl_answered) {
        return Err(CheckError::Runtime(format!("no DNS server answered ({e})")));
    }
    let pc = postconf::load(opts.postconf_dir.as_deref());
    match &pc {
        Ok(pc) => {
            out.push(postconf::relay_restrictions(pc));
            out.push(postconf::mynetworks(pc, opts.public_ip));
            out.push(postconf::sasl_tls(pc));
            out.push(postconf::tls_inbound(pc));
            out.push(postconf::tls_outbound(pc));
            let dovecot = if opts.postconf_dir.is_none() { dovecot_policy_url() } else { None };
            out.push(postconf::auth_rate_limit(pc, dovecot.as_deref()));
            out.push(postconf::message_size_limit(pc));
        }
        Err(e) if opts.postconf_dir.is_some() => return Err(CheckError::Runtime(e.clone())),
        Err(e) => {
            for id in
                ["relay_restrictions", "mynetworks", "sasl_tls", "tls_inbound", "tls_outbound", "auth_rate_limit", "message_size_limit"]
            {
                out.push(Check::new(id, "", Status::Skipped, e.clone(), "Run the checks on the Postfix host, or pass --postconf-dir."));
            }
        }
    }
    // The probe's address is trusted when a narrow mynetworks entry (this
    // host, a private LAN) holds it; a broad one (0.0.0.0/0) is the open
    // relay itself.
    let trusted = |from: IpAddr| pc.as_ref().is_ok_and(|pc| postconf::trusted_by(pc, from));
    out.push(relay::open_relay(opts.relay_probe, opts.helo.as_deref().unwrap_or("postlens.invalid"), PROBE_TIMEOUT, &trusted));
    Ok(out)
}

/// Dovecot's `auth_policy_server_url`, when Dovecot is installed and asks
/// a policy server (postlens's own Dovecot policy, `postlens dovecot-conf`).
fn dovecot_policy_url() -> Option<String> {
    let o = std::process::Command::new("doveconf").args(["-h", "auth_policy_server_url"]).output().ok()?;
    let url = String::from_utf8_lossy(&o.stdout).trim().to_owned();
    (o.status.success() && !url.is_empty()).then_some(url)
}

/// The checklist as text: one line per check, the fix indented below.
pub fn render(checks: &[Check]) -> String {
    use std::fmt::Write;
    let mut s = String::new();
    for c in checks {
        let mark = match c.status {
            Status::Pass => "PASS",
            Status::Warn => "WARN",
            Status::Fail => "FAIL",
            Status::Skipped => "SKIP",
        };
        let _ = writeln!(s, "{mark}  {:<18} {:<28} {}", c.id, c.target, c.evidence);
        if !c.fix.is_empty() && c.status != Status::Pass {
            let _ = writeln!(s, "      fix: {}", c.fix);
        }
    }
    let n = |st: Status| checks.iter().filter(|c| c.status == st).count();
    let _ =
        writeln!(s, "checks: {} pass, {} warn, {} fail, {} skipped", n(Status::Pass), n(Status::Warn), n(Status::Fail), n(Status::Skipped));
    s
}

/// Runs the checks for the command line: the text to print and the exit
/// code (0, or 3 when a check fails). `store` is the workspace's store when
/// there is one (sending domains from the logs, the settings).
pub fn cli(args: &CheckArgs, store: Option<&Store>) -> Result<(String, u8), CheckError> {
    let opts = options(args, store)?;
    let checks = run(&opts)?;
    let code = if checks.iter().any(|c| c.status == Status::Fail) { 3 } else { 0 };
    let text = if args.json {
        let mut j = serde_json::to_string_pretty(&checks).map_err(|e| CheckError::Runtime(e.to_string()))?;
        j.push('\n');
        j
    } else {
        render(&checks)
    };
    Ok((text, code))
}
