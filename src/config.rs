//! Command line and environment → validated configuration.
//!
//! Two steps, as in ripgrep: clap parses raw values (every flag also reads
//! `POSTLENS_<FLAG>`), then [`Common::build`] validates them into the values
//! the program uses, with errors that name the flag. Lightmeter
//! `ControlCenter`'s single-dash flags and `LIGHTMETER_*` variables are accepted
//! as aliases ([`rewrite_lightmeter_args`], [`lightmeter_env`]).

use crate::ingest::{LogFormat, Options, ParseThread};
use clap::{Args, Parser, Subcommand};
use jiff::tz::TimeZone;
use std::path::PathBuf;

#[derive(Parser, Debug)]
#[command(
    name = "postlens",
    version,
    about = "Postfix/Dovecot log monitoring: what happened to my mail?",
    propagate_version = true,
    args_conflicts_with_subcommands = true
)]
pub struct Cli {
    /// Without a command, postlens runs the daemon (`postlens run`).
    #[command(flatten)]
    pub run: RunArgs,
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// The daemon: import history, follow logs live, keep the store bounded.
    Run(RunArgs),
    /// Ingest log files (or `-` for stdin), commit, print a one-line summary.
    Import(ImportArgs),
    /// Delivery counts for a time window.
    Stats(StatsArgs),
    /// Find deliveries by sender, recipient, queue ID or Message-ID.
    Search(SearchArgs),
    /// A text summary of one day, in the spirit of pflogsumm.
    Report(ReportArgs),
    /// Sources, positions, store size and evictions.
    Status(StatusArgs),
    /// Insights found in the logs (kind ids as in DESIGN.md), newest first.
    Insights(InsightsArgs),
    /// Web UI accounts: add a user, reset a password, print an API token.
    User(UserArgs),
    /// Send a test notification through each enabled channel (or --channel).
    NotifyTest(NotifyTestArgs),
    /// Print the notification channels (secrets blanked), or replace them
    /// with `--set FILE` (JSON: `{"channels": [...]}`, see `src/notify`).
    NotifyConfig(NotifyConfigArgs),
    /// Print the Dovecot settings that make it ask postlens before each
    /// login (auth policy), for the installed or given Dovecot version.
    DovecotConf(DovecotConfArgs),
    /// Deliverability and configuration health checks (DNS, IP, Postfix).
    Check(crate::check::CheckArgs),
    /// The peer-network hub: collects signed signals, serves the community
    /// blocklist.
    Hub(crate::peer::HubArgs),
    /// Parse and track a file without storing anything (benchmarks).
    #[command(hide = true)]
    BenchParse(BenchArgs),
}

#[derive(Args, Debug, Clone, Default)]
pub struct Common {
    /// Directory holding the database.
    #[arg(long, env = "POSTLENS_WORKSPACE", value_name = "DIR")]
    pub workspace: Option<PathBuf>,
    /// Zone of classic-syslog time stamps (default: the machine's).
    #[arg(long, env = "POSTLENS_LOG_TIMEZONE", value_name = "TZ")]
    pub log_timezone: Option<String>,
}

#[derive(Args, Debug, Clone, Default)]
pub struct FormatArgs {
    /// Line format; `default` auto-detects classic, RFC 3339 and prepend-rfc3339.
    #[arg(long, env = "POSTLENS_LOG_FORMAT", value_enum)]
    pub log_format: Option<LogFormat>,
    /// Year of the first classic-syslog line (default: from the file's mtime).
    #[arg(long, env = "POSTLENS_LOG_STARTING_YEAR", value_name = "Y")]
    pub log_starting_year: Option<i32>,
    /// Keep this much history before the newest log line (e.g. 90d, 12h).
    #[arg(long, env = "POSTLENS_RETENTION", value_name = "DURATION")]
    pub retention: Option<String>,
    /// Delete the oldest data while the database is larger than this.
    #[arg(long, env = "POSTLENS_MAX_DB_SIZE", value_name = "SIZE")]
    pub max_db_size: Option<String>,
    /// Parse files read to their end (imports, archives) on a thread of their
    /// own: `auto` does when a core is spare (three or more cores; two for
    /// `bench-parse`, which stores nothing).
    #[arg(long, env = "POSTLENS_PARSE_THREAD", value_enum, value_name = "auto|on|off")]
    pub parse_thread: Option<ParseThread>,
}

#[derive(Args, Debug, Clone, Default)]
pub struct RunArgs {
    #[command(flatten)]
    pub common: Common,
    #[command(flatten)]
    pub format: FormatArgs,
    /// A log directory to import and follow (repeatable).
    #[arg(long = "watch-dir", env = "POSTLENS_WATCH_DIR", value_delimiter = ':', value_name = "DIR")]
    pub watch_dir: Vec<PathBuf>,
    /// File names to read in each watched directory, `:`-separated.
    #[arg(long, env = "POSTLENS_LOG_FILE_PATTERNS", value_delimiter = ':', value_name = "NAMES")]
    pub log_file_patterns: Vec<String>,
    /// The directories are updated by rsync (write to a temporary file, then
    /// rename). Accepted for Lightmeter compatibility: postlens always
    /// continues a replaced file with the same first line where it stopped.
    #[arg(long, env = "POSTLENS_LOGS_USE_RSYNC")]
    pub logs_use_rsync: bool,
    /// Read log lines from standard input.
    #[arg(long, env = "POSTLENS_STDIN")]
    pub stdin: bool,
    /// Receive log lines on a socket: `unix:PATH` or `tcp:HOST:PORT` (repeatable).
    #[arg(long, env = "POSTLENS_SOCKET", value_name = "unix:PATH|tcp:HOST:PORT")]
    pub socket: Vec<String>,
    /// Follow the systemd journal (mail facility) with journalctl.
    #[arg(long, env = "POSTLENS_JOURNAL")]
    pub journal: bool,
    /// Address of the web UI and API (also `/healthz`, `/metrics`).
    #[arg(long, env = "POSTLENS_LISTEN", value_name = "ADDR")]
    pub listen: Option<String>,
    /// Serve HTTP directly, without a TLS-terminating reverse proxy: never
    /// trust `X-Forwarded-For`/`X-Forwarded-Proto`.
    #[arg(long, env = "POSTLENS_NO_REVERSE_PROXY")]
    pub no_reverse_proxy: bool,
    /// Seconds between two runs of the insight detectors (tests).
    #[arg(long, hide = true, value_name = "SECS", default_value_t = crate::limits::INSIGHTS_EVERY_SECS)]
    pub insights_every: u64,
    /// Seconds between scheduled health-check runs (default 6 h; the first
    /// runs a minute after start-up, or after this many seconds when
    /// shorter); 0: only on demand (Health page, API).
    #[arg(long, hide = true, env = "POSTLENS_CHECKS_EVERY", value_name = "SECS", default_value_t = crate::check::service::EVERY_SECS)]
    pub checks_every: u64,
    /// Your own remote-domain grouping for the dashboard, merged over the
    /// built-in one (format: see web/domain-mapping.txt).
    #[arg(long, env = "POSTLENS_DOMAIN_MAPPING", value_name = "FILE")]
    pub domain_mapping: Option<PathBuf>,
    /// Address of the Dovecot auth policy server (default 127.0.0.1:8089;
    /// `off` disables it). See `postlens dovecot-conf`.
    #[arg(long, env = "POSTLENS_POLICY_LISTEN", value_name = "ADDR|off")]
    pub policy_listen: Option<String>,
    /// Key Dovecot must send as `X-API-Key` (`auth_policy_server_api_header`).
    #[arg(long, env = "POSTLENS_POLICY_KEY", hide_env_values = true, value_name = "KEY")]
    pub policy_key: Option<String>,
    /// Address of the Postfix policy delegation server (off unless given),
    /// for sites without Dovecot SASL: refuses blocked clients at connect.
    /// In master.cf, on the submission services:
    /// `-o smtpd_client_restrictions=check_policy_service,inet:ADDR`
    /// (the `,` separates within `-o`; add `-o smtpd_delay_reject=no` to refuse before AUTH).
    #[arg(long, env = "POSTLENS_POSTFIX_POLICY_LISTEN", value_name = "ADDR")]
    pub postfix_policy_listen: Option<String>,
    /// The peer-network hub's URL (used when Settings → peer network is
    /// `consume` or `share`).
    #[arg(long, env = "POSTLENS_PEER_HUB", value_name = "URL")]
    pub peer_hub: Option<String>,
    /// The hub's public key (64 hex digits, `postlens hub` prints it and
    /// serves it at /v1/key): lists signed by any other key are refused.
    #[arg(long, env = "POSTLENS_PEER_HUB_KEY", value_name = "HEX")]
    pub peer_hub_key: Option<String>,
    /// Labs and tests: seconds between batches sent (default 600).
    #[arg(long, hide = true, value_name = "SECS")]
    pub peer_send_secs: Option<u64>,
    /// Labs and tests: seconds between list fetches (default 300).
    #[arg(long, hide = true, value_name = "SECS")]
    pub peer_fetch_secs: Option<u64>,
    /// Labs and tests: the network address a hub with `--trust-forwarded`
    /// should count this instance in.
    #[arg(long, hide = true, value_name = "IP")]
    pub peer_forwarded_for: Option<std::net::IpAddr>,
    /// The protection rule and exemptions, as JSON, e.g. `{"allowlist":
    /// ["203.0.113.0/24"], "mynetworks": ["192.0.2.0/24"]}` (fields and
    /// defaults: `ProtectConfig` in src/protect/config.rs).
    #[arg(long, env = "POSTLENS_PROTECT_CONFIG", value_name = "FILE")]
    pub protect_config: Option<PathBuf>,
}

#[derive(Args, Debug)]
pub struct DovecotConfArgs {
    /// The Dovecot version to write for (default: `dovecot --version`, else
    /// 2.3.1+ syntax).
    #[arg(long, value_name = "X.Y.Z")]
    pub dovecot_version: Option<String>,
    /// Where Dovecot reaches the policy server.
    #[arg(long, value_name = "URL", default_value = "http://127.0.0.1:8089/dovecot/policy")]
    pub url: String,
    /// The key of `postlens run --policy-key`.
    #[arg(long, env = "POSTLENS_POLICY_KEY", hide_env_values = true, value_name = "KEY")]
    pub policy_key: Option<String>,
    /// Lightmeter's `-dovecot_conf_is_old`: Dovecot older than 2.2.34 / 2.3.1.
    #[arg(long, hide = true)]
    pub dovecot_conf_is_old: bool,
}

#[derive(Args, Debug)]
pub struct ImportArgs {
    #[command(flatten)]
    pub common: Common,
    #[command(flatten)]
    pub format: FormatArgs,
    /// Show a progress bar on a terminal.
    #[arg(long, env = "POSTLENS_PROGRESS")]
    pub progress: bool,
    /// Files to read in the order given (.gz/.bz2 are decompressed), `-` for
    /// stdin, or a log directory: its logs as `--watch-dir` finds them with
    /// the default `--log-file-patterns` (archives oldest first, then the
    /// live file), read once.
    #[arg(required = true, value_name = "FILE|DIR")]
    pub files: Vec<PathBuf>,
}

/// `--from T --to T` of the commands that look at a time window.
#[derive(Args, Debug, Clone, Default)]
pub struct WindowArgs {
    /// Window start (RFC 3339 or YYYY-MM-DD), inclusive.
    #[arg(long, value_name = "T")]
    pub from: Option<String>,
    /// Window end (RFC 3339 or YYYY-MM-DD), exclusive.
    #[arg(long, value_name = "T")]
    pub to: Option<String>,
}

#[derive(Args, Debug)]
pub struct StatsArgs {
    #[command(flatten)]
    pub common: Common,
    #[command(flatten)]
    pub window: WindowArgs,
    /// Print the JSON object of DESIGN.md.
    #[arg(long)]
    pub json: bool,
}

#[derive(Args, Debug)]
pub struct InsightsArgs {
    #[command(flatten)]
    pub common: Common,
    /// Insights whose last occurrence falls in the window.
    #[command(flatten)]
    pub window: WindowArgs,
    /// Only this kind (`high_bounce_rate`, `brute_force`, …).
    #[arg(long, value_name = "KIND")]
    pub kind: Option<String>,
    /// Archived insights too.
    #[arg(long)]
    pub archived: bool,
    /// Print the JSON array of DESIGN.md.
    #[arg(long)]
    pub json: bool,
}

#[derive(Args, Debug)]
pub struct SearchArgs {
    #[command(flatten)]
    pub common: Common,
    #[arg(long, value_name = "ADDR")]
    pub sender: Option<String>,
    #[arg(long, value_name = "ADDR")]
    pub recipient: Option<String>,
    /// A queue ID (any in a content-filter chain) or a Message-ID.
    #[arg(long, value_name = "QUEUE_ID|MESSAGE_ID")]
    pub id: Option<String>,
    #[arg(long, value_parser = ["sent", "bounced", "expired", "pending", "deferred"])]
    pub status: Option<String>,
    #[command(flatten)]
    pub window: WindowArgs,
    #[arg(long, default_value_t = 100)]
    pub limit: usize,
    #[arg(long)]
    pub json: bool,
}

#[derive(Args, Debug)]
pub struct ReportArgs {
    #[command(flatten)]
    pub common: Common,
    /// The day to summarise (default: the newest day in the store).
    #[arg(long, value_name = "YYYY-MM-DD")]
    pub day: Option<String>,
}

#[derive(Args, Debug)]
pub struct StatusArgs {
    #[command(flatten)]
    pub common: Common,
    #[arg(long)]
    pub json: bool,
}

#[derive(Args, Debug)]
pub struct UserArgs {
    #[command(subcommand)]
    pub action: UserAction,
}

#[derive(Subcommand, Debug)]
pub enum UserAction {
    /// Add a user; the first one must be an admin.
    Add(UserAddArgs),
    /// Set a user's password (ends the user's browser sessions).
    ResetPassword(UserPasswordArgs),
    /// Print a new API token for the user (Bearer auth on /api/v1).
    Token(UserTokenArgs),
}

/// The `--workspace` flag alone, for commands that read no logs.
#[derive(Args, Debug, Clone, Default)]
pub struct WorkspaceArg {
    /// Directory holding the database.
    #[arg(long, env = "POSTLENS_WORKSPACE", value_name = "DIR")]
    pub workspace: Option<PathBuf>,
}

impl WorkspaceArg {
    /// As [`Common::workspace`] (with its `LIGHTMETER_WORKSPACE` alias).
    pub fn workspace(&self) -> PathBuf {
        Common { workspace: self.workspace.clone(), log_timezone: None }.workspace()
    }
}

#[derive(Args, Debug)]
pub struct UserAddArgs {
    #[command(flatten)]
    pub who: UserPasswordArgs,
    /// The user may look but not change anything.
    #[arg(long, env = "POSTLENS_READ_ONLY")]
    pub read_only: bool,
}

#[derive(Args, Debug)]
pub struct UserPasswordArgs {
    #[command(flatten)]
    pub common: WorkspaceArg,
    /// The user's e-mail address (the login name).
    #[arg(long, env = "POSTLENS_EMAIL", value_name = "E")]
    pub email: String,
    /// The password (asked for on a terminal when not given).
    #[arg(long, env = "POSTLENS_PASSWORD", hide_env_values = true, allow_hyphen_values = true, value_name = "P")]
    pub password: Option<String>,
}

#[derive(Args, Debug)]
pub struct UserTokenArgs {
    #[command(flatten)]
    pub common: WorkspaceArg,
    /// The user's e-mail address.
    #[arg(long, env = "POSTLENS_EMAIL", value_name = "E")]
    pub email: String,
}

#[derive(Args, Debug)]
pub struct NotifyTestArgs {
    #[command(flatten)]
    pub common: WorkspaceArg,
    /// Only this channel (sent even when it is disabled).
    #[arg(long, value_name = "NAME")]
    pub channel: Option<String>,
    /// Severity of the test notification.
    #[arg(long, value_name = "S", default_value = "warning", value_parser = ["info", "warning", "critical"])]
    pub severity: String,
}

#[derive(Args, Debug)]
pub struct NotifyConfigArgs {
    #[command(flatten)]
    pub common: WorkspaceArg,
    /// Replace the channels with those of FILE (`-`: standard input), e.g.
    /// `{"channels": [{"name": "mail", "type": "smtp", "host": "127.0.0.1",
    /// "port": 25, "security": "none", "from": "postlens@example.org",
    /// "to": ["admin@example.org"], "min_severity": "warning"}]}`.
    /// Types: `slack_bot`, `slack_webhook`, `webhook`, `smtp`, `sendmail`.
    #[arg(long, value_name = "FILE")]
    pub set: Option<PathBuf>,
    /// The JSON itself (how `--set` reaches a running daemon).
    #[arg(long, value_name = "JSON", hide = true)]
    pub set_json: Option<String>,
}

#[derive(Args, Debug)]
pub struct BenchArgs {
    #[command(flatten)]
    pub common: Common,
    #[command(flatten)]
    pub format: FormatArgs,
    pub file: PathBuf,
}

/// A configuration error; the message names the flag or variable.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ConfigError(pub String);

pub const DEFAULT_WORKSPACE: &str = "/var/lib/postlens";
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8080";
pub const DEFAULT_PATTERNS: [&str; 5] = ["mail.log", "mail.warn", "mail.err", "maillog", "zimbra.log"];
pub const DEFAULT_RETENTION: &str = "90d";

/// Maps Lightmeter's single-dash flags to ours (`-workspace x` →
/// `--workspace x`, `-log_starting_year` → `--log-starting-year`);
/// `-dovecot_conf_gen` becomes the `dovecot-conf` command.
pub fn rewrite_lightmeter_args(args: impl IntoIterator<Item = std::ffi::OsString>) -> Vec<std::ffi::OsString> {
    const MAP: [(&str, &str); 14] = [
        ("-workspace", "--workspace"),
        ("-watch_dir", "--watch-dir"),
        ("-stdin", "--stdin"),
        ("-logs_socket", "--socket"),
        ("-log_format", "--log-format"),
        ("-log_starting_year", "--log-starting-year"),
        ("-logs_use_rsync", "--logs-use-rsync"),
        ("-log_file_patterns", "--log-file-patterns"),
        ("-listen", "--listen"),
        ("-data_retention_duration", "--retention"),
        ("-email_reset", "--email"),
        ("-password", "--password"),
        ("-dovecot_conf_is_old", "--dovecot-conf-is-old"),
        ("-i_know_what_am_doing_not_using_a_reverse_proxy", "--no-reverse-proxy"),
    ];
    let mut args: Vec<std::ffi::OsString> = args.into_iter().collect();
    if let Some(i) = args.iter().position(|a| a == "-dovecot_conf_gen") {
        args.remove(i);
        args.insert(1.min(args.len()), "dovecot-conf".into());
    }
    args.into_iter()
        .map(|a| {
            let Some(s) = a.to_str() else { return a };
            let (flag, value) = match s.split_once('=') {
                Some((f, v)) => (f, Some(v)),
                None => (s, None),
            };
            match MAP.iter().find(|(l, _)| *l == flag) {
                Some((_, ours)) => match value {
                    Some(v) => format!("{ours}={v}").into(),
                    None => (*ours).into(),
                },
                None => a,
            }
        })
        .collect()
}

/// A `LIGHTMETER_*` variable standing in for an unset flag.
fn lightmeter_env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

/// `90d`, `12h`, `30m`, `45s`, `2w` → seconds. Lightmeter's Go durations
/// (`2160h0m0s`) work too.
///
/// # Errors
/// A message saying what is accepted.
pub fn parse_duration(s: &str) -> Result<i64, String> {
    let err = || format!("'{s}' is not a duration like 90d, 12h, 30m or 2160h0m0s");
    let mut total: i64 = 0;
    let mut num = String::new();
    for c in s.trim().chars() {
        if c.is_ascii_digit() {
            num.push(c);
            continue;
        }
        let n: i64 = num.parse().map_err(|_| err())?;
        num.clear();
        let unit = match c {
            's' => 1,
            'm' => 60,
            'h' => 3600,
            'd' => 86_400,
            'w' => 7 * 86_400,
            _ => return Err(err()),
        };
        total = total.checked_add(n.checked_mul(unit).ok_or_else(err)?).ok_or_else(err)?;
    }
    if !num.is_empty() || total <= 0 {
        return Err(err());
    }
    Ok(total)
}

/// `512MiB`, `2GiB`, `100MB`, plain bytes → bytes.
///
/// # Errors
/// A message saying what is accepted.
pub fn parse_size(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (n, unit) = t.split_at(split);
    let n: u64 = n.parse().map_err(|_| format!("'{s}' is not a size like 512MiB"))?;
    let mult: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" => 1000,
        "kib" => 1024,
        "m" | "mb" => 1_000_000,
        "mib" => 1 << 20,
        "g" | "gb" => 1_000_000_000,
        "gib" => 1 << 30,
        _ => return Err(format!("'{s}' is not a size like 512MiB")),
    };
    n.checked_mul(mult).ok_or_else(|| format!("'{s}' is too large"))
}

/// `+01:00`, `-0530`, `+2` → a fixed UTC offset.
fn fixed_offset(s: &str) -> Option<jiff::tz::Offset> {
    let sign: i32 = if s.starts_with('-') { -1 } else { 1 };
    let digits: String = s[1..].chars().filter(|c| *c != ':').collect();
    if digits.is_empty() || digits.len() > 4 || !digits.chars().all(|c| c.is_ascii_digit()) {
        return None;
    }
    let (h, m) = if digits.len() <= 2 { (digits.as_str(), "0") } else { digits.split_at(digits.len() - 2) };
    let secs = sign * (h.parse::<i32>().ok()? * 3600 + m.parse::<i32>().ok()? * 60);
    jiff::tz::Offset::from_seconds(secs).ok()
}

impl Common {
    pub fn workspace(&self) -> PathBuf {
        self.workspace
            .clone()
            .or_else(|| lightmeter_env("LIGHTMETER_WORKSPACE").map(PathBuf::from))
            .unwrap_or_else(|| PathBuf::from(DEFAULT_WORKSPACE))
    }

    /// # Errors
    /// Unknown zone name (names `--log-timezone`).
    pub fn timezone(&self) -> Result<TimeZone, ConfigError> {
        match &self.log_timezone {
            Some(name) if name.starts_with(['+', '-']) => fixed_offset(name)
                .map(TimeZone::fixed)
                .ok_or_else(|| ConfigError(format!("--log-timezone / POSTLENS_LOG_TIMEZONE: bad offset '{name}' (use +01:00)"))),
            Some(name) => TimeZone::get(name).map_err(|e| {
                ConfigError(format!(
                    "--log-timezone / POSTLENS_LOG_TIMEZONE: unknown time zone '{name}': {e} \
                     (names are looked up in the system's time zone database, /usr/share/zoneinfo or $TZDIR: \
                     install tzdata, or give an offset like +01:00)"
                ))
            }),
            None => Ok(TimeZone::try_system().unwrap_or(TimeZone::UTC)),
        }
    }
}

impl FormatArgs {
    /// # Errors
    /// Invalid values, naming the flag.
    pub fn build(&self, common: &Common, progress: bool) -> Result<Options, ConfigError> {
        let format = match self.log_format {
            Some(f) => f,
            None => match lightmeter_env("LIGHTMETER_LOG_FORMAT").as_deref() {
                None | Some("default") => LogFormat::Default,
                Some("rfc3339") => LogFormat::Rfc3339,
                Some("prepend-rfc3339") => LogFormat::PrependRfc3339,
                Some("logstash") => LogFormat::Logstash,
                Some(other) => return Err(ConfigError(format!("LIGHTMETER_LOG_FORMAT: unknown format '{other}'"))),
            },
        };
        let starting_year = match self.log_starting_year {
            Some(y) => Some(y),
            None => lightmeter_env("LIGHTMETER_LOGS_STARTING_YEAR")
                .map(|y| y.parse::<i32>().map_err(|_| ConfigError(format!("LIGHTMETER_LOGS_STARTING_YEAR: '{y}' is not a year"))))
                .transpose()?,
        };
        if let Some(y) = starting_year
            && !(1970..=9999).contains(&y)
        {
            return Err(ConfigError(format!("--log-starting-year: {y} is not a plausible year")));
        }
        let retention = self
            .retention
            .clone()
            .or_else(|| lightmeter_env("LIGHTMETER_DATA_RETENTION_DURATION"))
            .unwrap_or_else(|| DEFAULT_RETENTION.to_owned());
        let retention_secs = parse_duration(&retention).map_err(|e| ConfigError(format!("--retention: {e}")))?;
        let max_db_size =
            self.max_db_size.as_deref().map(parse_size).transpose().map_err(|e| ConfigError(format!("--max-db-size: {e}")))?;
        let parse_thread = self.parse_thread.unwrap_or_default();
        Ok(Options { format, tz: common.timezone()?, starting_year, progress, retention_secs, max_db_size, parse_thread })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_and_sizes() {
        assert_eq!(parse_duration("90d"), Ok(90 * 86_400));
        assert_eq!(parse_duration("2160h0m0s"), Ok(2160 * 3600));
        assert!(parse_duration("soon").is_err());
        assert!(parse_duration("0d").is_err());
        assert_eq!(parse_size("512MiB"), Ok(512 << 20));
        assert!(parse_size("lots").is_err());
    }

    /// Zone names come from the system's database (no bundled copy): one
    /// that exists resolves, one that does not is an error naming the
    /// setting and where names are looked up; offsets need no database.
    #[test]
    fn log_timezone_names_come_from_the_system_database() {
        let tz = |name: &str| Common { workspace: None, log_timezone: Some(name.to_owned()) }.timezone();
        if std::path::Path::new("/usr/share/zoneinfo/Europe/Berlin").exists() {
            assert_eq!(tz("Europe/Berlin").expect("in /usr/share/zoneinfo").iana_name(), Some("Europe/Berlin"));
        }
        let e = tz("Mars/Olympus").expect_err("no such zone").0;
        assert!(e.starts_with("--log-timezone") && e.contains("Mars/Olympus") && e.contains("/usr/share/zoneinfo"), "{e}");
        assert!(tz("+01:00").is_ok());
    }

    #[test]
    fn lightmeter_dovecot_conf_flags_are_rewritten() {
        let got = rewrite_lightmeter_args(["postlens", "-dovecot_conf_is_old", "-dovecot_conf_gen"].map(std::ffi::OsString::from));
        assert_eq!(got, ["postlens", "dovecot-conf", "--dovecot-conf-is-old"].map(std::ffi::OsString::from));
    }

    #[test]
    fn policy_flags() {
        let args = |extra: &[&str]| {
            let mut v = vec!["postlens", "run", "--stdin"];
            v.extend_from_slice(extra);
            match Cli::parse_from(v).command {
                Some(Command::Run(a)) => a.build().map(|c| c.protect),
                _ => unreachable!("run parses"),
            }
        };
        let p = args(&[]).expect("defaults");
        assert_eq!((p.listen, p.explicit), (Some(crate::protect::policy::DEFAULT_LISTEN.parse().expect("addr")), false));
        assert_eq!(args(&["--policy-listen", "off"]).expect("off").listen, None);
        assert!(args(&["--policy-listen", "127.0.0.1:9"]).expect("explicit").explicit);
        assert!(args(&["--policy-listen", "nowhere"]).is_err_and(|e| e.0.contains("--policy-listen")));
        assert!(args(&["--policy-key", "a b"]).is_err_and(|e| e.0.contains("--policy-key")));
        assert!(args(&["--protect-config", "/nonexistent/p.json"]).is_err_and(|e| e.0.contains("--protect-config")));
    }

    #[test]
    fn lightmeter_flags_are_rewritten() {
        let got =
            rewrite_lightmeter_args(["postlens", "import", "-workspace", "/x", "-log_starting_year=2020"].map(std::ffi::OsString::from));
        assert_eq!(got, ["postlens", "import", "--workspace", "/x", "--log-starting-year=2020"].map(std::ffi::OsString::from));
    }
}

/// The validated configuration of `postlens run`.
#[derive(Debug, Clone)]
pub struct RunConfig {
    pub workspace: PathBuf,
    pub watch_dirs: Vec<PathBuf>,
    pub patterns: Vec<String>,
    pub stdin: bool,
    pub sockets: Vec<crate::ingest::stream::SocketSpec>,
    pub journal: bool,
    pub listen: std::net::SocketAddr,
    pub opts: Options,
    pub web: crate::web::WebConfig,
    pub insights_every: u64,
    pub checks_every: u64,
    pub protect: ProtectRun,
}

/// The validated protection settings of `postlens run`.
#[derive(Debug, Clone)]
pub struct ProtectRun {
    /// The policy server's address; `None` when `--policy-listen off`.
    pub listen: Option<std::net::SocketAddr>,
    /// Whether the address was given (a busy default port is only a warning).
    pub explicit: bool,
    pub key: Option<String>,
    /// The Postfix policy delegation server's address (`None`: off).
    pub postfix_listen: Option<std::net::SocketAddr>,
    pub hub: crate::peer::service::HubLink,
    pub rule: crate::protect::ProtectConfig,
}

impl RunArgs {
    fn protect(&self) -> Result<ProtectRun, ConfigError> {
        let explicit = self.policy_listen.is_some();
        let listen = match self.policy_listen.as_deref().unwrap_or(crate::protect::policy::DEFAULT_LISTEN) {
            "off" => None,
            s => {
                Some(s.parse().map_err(|_| ConfigError(format!("--policy-listen: '{s}' is not an address like 127.0.0.1:8089 or 'off'")))?)
            }
        };
        if let Some(k) = &self.policy_key
            && !crate::protect::dovecot_conf::key_ok(k)
        {
            return Err(ConfigError("--policy-key: use 1 to 256 letters, digits or ._~+/=-".into()));
        }
        let rule = match &self.protect_config {
            None => crate::protect::ProtectConfig::default(),
            Some(f) => {
                let mut text = String::new();
                std::fs::File::open(f)
                    .and_then(|h| std::io::Read::read_to_string(&mut std::io::Read::take(h, 1 << 20), &mut text))
                    .map_err(|e| ConfigError(format!("--protect-config: {}: {e}", f.display())))?;
                let rule: crate::protect::ProtectConfig =
                    serde_json::from_str(&text).map_err(|e| ConfigError(format!("--protect-config: {}: {e}", f.display())))?;
                rule.validate().map_err(|e| ConfigError(format!("--protect-config: {}: {e}", f.display())))?;
                rule
            }
        };
        let postfix_listen = match self.postfix_policy_listen.as_deref() {
            None => None,
            Some(s) => {
                Some(s.parse().map_err(|_| ConfigError(format!("--postfix-policy-listen: '{s}' is not an address like 127.0.0.1:10040")))?)
            }
        };
        let hub_key = match self.peer_hub_key.as_deref() {
            None => None,
            Some(k) => Some(
                crate::peer::KeyId::parse(k.trim())
                    .ok_or_else(|| ConfigError("--peer-hub-key: the hub's public key is 64 hex digits".into()))?,
            ),
        };
        if let Some(u) = &self.peer_hub
            && !(u.starts_with("https://") || u.starts_with("http://"))
        {
            return Err(ConfigError(format!("--peer-hub: '{u}' is not an http:// or https:// URL")));
        }
        if self.peer_hub.is_some() != hub_key.is_some() {
            return Err(ConfigError("--peer-hub and --peer-hub-key go together".into()));
        }
        let hub = crate::peer::service::HubLink {
            url: self.peer_hub.clone(),
            key: hub_key,
            send_every: self.peer_send_secs.map(|s| std::time::Duration::from_secs(s.max(1))),
            fetch_every: self.peer_fetch_secs.map(|s| std::time::Duration::from_secs(s.max(1))),
            forwarded_for: self.peer_forwarded_for,
        };
        Ok(ProtectRun { listen, explicit, key: self.policy_key.clone(), postfix_listen, hub, rule })
    }
}

impl RunArgs {
    /// # Errors
    /// Invalid values, naming the flag or variable.
    pub fn build(&self) -> Result<RunConfig, ConfigError> {
        use crate::ingest::stream::SocketSpec;
        let opts = self.format.build(&self.common, false)?;
        let mut watch_dirs = self.watch_dir.clone();
        if watch_dirs.is_empty()
            && let Some(d) = lightmeter_env("LIGHTMETER_WATCH_DIR")
        {
            watch_dirs.push(d.into());
        }
        for d in &watch_dirs {
            if !d.is_dir() {
                return Err(ConfigError(format!("--watch-dir: {} is not a directory", d.display())));
            }
        }
        let mut patterns = self.log_file_patterns.clone();
        if patterns.is_empty()
            && let Some(p) = lightmeter_env("LIGHTMETER_LOG_FILE_PATTERNS")
        {
            patterns = p.split(':').map(str::to_owned).collect();
        }
        if patterns.is_empty() {
            patterns = DEFAULT_PATTERNS.map(str::to_owned).to_vec();
        }
        if patterns.iter().any(|p| p.is_empty() || p.contains('/')) {
            return Err(ConfigError("--log-file-patterns: names must be plain file names, separated by ':'".into()));
        }
        let mut socket_args = self.socket.clone();
        if socket_args.is_empty()
            && let Some(s) = lightmeter_env("LIGHTMETER_LOGS_SOCKET")
        {
            socket_args.push(s);
        }
        let sockets = socket_args
            .iter()
            .map(|s| SocketSpec::parse(s).map_err(|e| ConfigError(format!("--socket: {e}"))))
            .collect::<Result<Vec<_>, _>>()?;
        let stdin = self.stdin || lightmeter_env("LIGHTMETER_STDIN").is_some_and(|v| v == "true" || v == "1");
        let listen_s = self.listen.clone().or_else(|| lightmeter_env("LIGHTMETER_LISTEN")).unwrap_or_else(|| DEFAULT_LISTEN.to_owned());
        // Lightmeter's default was ":8080" (all interfaces); keep the port, not the exposure.
        let listen_s = if listen_s.starts_with(':') { format!("127.0.0.1{listen_s}") } else { listen_s };
        let listen = listen_s.parse().map_err(|_| ConfigError(format!("--listen: '{listen_s}' is not an address like 127.0.0.1:8080")))?;
        if watch_dirs.is_empty() && !stdin && sockets.is_empty() && !self.journal {
            return Err(ConfigError("no log source: give --watch-dir DIR, --stdin, --socket or --journal".into()));
        }
        let mut domain_map = crate::web::domains::DomainMap::builtin();
        if let Some(f) = &self.domain_mapping {
            // Read no more than a mapping may hold (parse refuses the rest).
            let mut text = String::new();
            std::fs::File::open(f)
                .and_then(|h| {
                    std::io::Read::read_to_string(
                        &mut std::io::Read::take(h, crate::limits::DOMAIN_MAP_MAX_FILE_BYTES as u64 + 1),
                        &mut text,
                    )
                })
                .map_err(|e| ConfigError(format!("--domain-mapping: {}: {e}", f.display())))?;
            let mine =
                crate::web::domains::DomainMap::parse(&text).map_err(|e| ConfigError(format!("--domain-mapping: {}: {e}", f.display())))?;
            domain_map.merge(mine);
        }
        let web = crate::web::WebConfig { trust_proxy: !self.no_reverse_proxy, tz: opts.tz.clone(), domain_map, protect: None, peer: None };
        Ok(RunConfig {
            workspace: self.common.workspace(),
            watch_dirs,
            patterns,
            stdin,
            sockets,
            journal: self.journal,
            listen,
            opts,
            web,
            insights_every: self.insights_every.max(1),
            checks_every: self.checks_every,
            protect: self.protect()?,
        })
    }
}
