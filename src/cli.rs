//! The scripting commands: `import`, `stats`, `search`, `report`, `status`.
//! Each returns an exit code: 0 ok, 1 runtime error, 2 usage/config error.

use crate::clock::{Timestamp, parse_time_arg};
use crate::config::{
    BenchArgs, Cli, Command, Common, ConfigError, ImportArgs, InsightsArgs, NotifyConfigArgs, NotifyTestArgs, ReportArgs, SearchArgs,
    StatsArgs, StatusArgs, UserAction, UserArgs,
};
use crate::ingest::{Pipeline, Summary};
use crate::store::query::{Query, SearchHit, Stats, Window};
use crate::store::{Store, StoreError};
use clap::Parser;
use std::io::Write;
use std::process::ExitCode;

/// Runs a command line (`args` includes the program name).
pub fn run(args: &[String]) -> ExitCode {
    let cli = Cli::parse_from(args);
    let r = match cli.command {
        None => crate::app::run(&cli.run),
        Some(Command::Run(a)) => crate::app::run(&a),
        Some(Command::Import(a)) => import(&a),
        Some(Command::BenchParse(a)) => bench_parse(&a),
        Some(Command::User(a)) => user(&a),
        Some(c @ (Command::NotifyTest(_) | Command::NotifyConfig(_))) => notify(&c),
        Some(Command::DovecotConf(a)) => dovecot_conf(&a),
        Some(Command::Hub(a)) => {
            crate::peer::hub_main(&a).map_err(|(code, m)| if code == 2 { Failure::Usage(m) } else { Failure::Runtime(m) })
        }
        Some(Command::Check(a)) => match check(&a, None) {
            // The daemon holds the database: ask it.
            Err(Failure::Locked(ws)) => match ask_daemon(&ws, &args[1..]) {
                Ok(code) => return code,
                Err(e) => Err(e),
            },
            Ok((text, code)) => {
                let _ = std::io::stdout().lock().write_all(text.as_bytes());
                return ExitCode::from(code);
            }
            Err(e) => Err(e),
        },
        Some(c) => match read_only(&c, None, None, None) {
            // The daemon holds the database: ask it.
            Err(Failure::Locked(ws)) => match ask_daemon(&ws, &args[1..]) {
                Ok(code) => return code,
                Err(e) => Err(e),
            },
            Ok(text) => {
                let _ = std::io::stdout().lock().write_all(text.as_bytes());
                Ok(())
            }
            Err(e) => Err(e),
        },
    };
    match r {
        Ok(()) => ExitCode::SUCCESS,
        Err(f) => {
            let (code, m) = f.code_and_message();
            if !m.is_empty() {
                eprintln!("postlens: {m}");
            }
            ExitCode::from(code)
        }
    }
}

/// Forwards the command line to the daemon holding `ws` and relays its
/// answer; the exit code to end with.
fn ask_daemon(ws: &std::path::Path, args: &[String]) -> Result<ExitCode, Failure> {
    match crate::control::forward(ws, args) {
        Ok(a) => {
            let _ = std::io::stdout().lock().write_all(a.stdout.as_bytes());
            let _ = std::io::stderr().lock().write_all(a.stderr.as_bytes());
            Ok(ExitCode::from(a.code))
        }
        Err(e) => Err(Failure::Runtime(format!("{} is held by a running postlens, which did not answer: {e}", ws.display()))),
    }
}

/// Runs a read-only command sent over the control socket, against the
/// daemon's open store.
pub fn run_in_daemon(
    argv: &[String],
    store: &Store,
    live: &crate::control::LiveStatus,
    overlays: &crate::control::OverlayRequests,
) -> crate::control::Answer {
    let full: Vec<String> = std::iter::once("postlens".to_owned()).chain(argv.iter().cloned()).collect();
    let cli = match Cli::try_parse_from(&full) {
        Ok(c) => c,
        Err(e) => return crate::control::Answer { code: 2, stdout: String::new(), stderr: e.to_string() },
    };
    let r = match &cli.command {
        Some(c @ (Command::Stats(_) | Command::Search(_) | Command::Report(_) | Command::Status(_) | Command::Insights(_))) => {
            // Only the counting commands need the uncommitted lines.
            let overlay = matches!(c, Command::Stats(_) | Command::Search(_)).then(|| crate::control::overlay(overlays)).flatten();
            read_only(c, Some(store), Some(live), overlay.as_ref()).map(|out| (out, String::new()))
        }
        // Never asks: the command line that forwarded it did.
        Some(Command::User(a)) => UserRequest::resolve(&a.action, false).and_then(|r| r.run(store)),
        Some(c @ (Command::NotifyTest(_) | Command::NotifyConfig(_))) => return notify_run(c, Some(store)),
        Some(Command::Check(a)) => {
            return match check(a, Some(store)) {
                Ok((stdout, code)) => crate::control::Answer { code, stdout, stderr: String::new() },
                Err(f) => {
                    let (code, m) = f.code_and_message();
                    crate::control::Answer { code, stdout: String::new(), stderr: format!("postlens: {m}\n") }
                }
            };
        }
        _ => Err(Failure::Usage("only stats, search, report, status, insights, check and user can be asked of a running postlens".into())),
    };
    match r {
        Ok((stdout, stderr)) => crate::control::Answer { code: 0, stdout, stderr },
        Err(f) => {
            let (code, m) = f.code_and_message();
            crate::control::Answer { code, stdout: String::new(), stderr: format!("postlens: {m}\n") }
        }
    }
}

/// The read-only commands, rendered to their standard output.
fn read_only(
    c: &Command,
    store: Option<&Store>,
    live: Option<&crate::control::LiveStatus>,
    overlay: Option<&crate::store::query::Overlay>,
) -> Result<String, Failure> {
    let common = match c {
        Command::Stats(a) => &a.common,
        Command::Search(a) => &a.common,
        Command::Report(a) => &a.common,
        Command::Status(a) => &a.common,
        Command::Insights(a) => &a.common,
        _ => return Err(Failure::Usage("not a read-only command".into())),
    };
    // Validate flags before touching the store, so usage errors are the same
    // whether or not a daemon runs.
    let opened;
    let store = if let Some(s) = store {
        s
    } else {
        if let Command::Stats(a) = c {
            window(&a.common, &a.window)?;
        }
        if let Command::Search(a) = c {
            window(&a.common, &a.window)?;
        }
        if let Command::Insights(a) = c {
            insights_filter(a)?;
        }
        common.timezone()?;
        opened = match Store::open_existing(&common.workspace()) {
            Err(StoreError::Locked { .. }) => return Err(Failure::Locked(common.workspace())),
            r => r?,
        };
        &opened
    };
    match c {
        Command::Stats(a) => stats(a, store, overlay),
        Command::Search(a) => search(a, store, overlay),
        Command::Report(a) => report(a, store),
        Command::Status(a) => status(a, store, live),
        // Without a daemon, bring the insights up to the newest line first.
        Command::Insights(a) => insights(a, store, live.is_none()),
        _ => unreachable!("filtered above"),
    }
}

pub(crate) enum Failure {
    Usage(String),
    Runtime(String),
    /// The workspace's database is held by a running daemon.
    Locked(std::path::PathBuf),
    /// The daemon already printed why; exit with its code.
    Exit(u8),
}

impl Failure {
    fn code_and_message(self) -> (u8, String) {
        match self {
            Failure::Usage(m) => (2, m),
            Failure::Runtime(m) => (1, m),
            Failure::Locked(ws) => (1, format!("{} is in use by a running postlens", ws.display())),
            Failure::Exit(code) => (code, String::new()),
        }
    }
}

impl From<ConfigError> for Failure {
    fn from(e: ConfigError) -> Self {
        Failure::Usage(e.0)
    }
}

impl From<StoreError> for Failure {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Workspace { .. } => Failure::Usage(e.to_string()),
            _ => Failure::Runtime(e.to_string()),
        }
    }
}

impl From<crate::ingest::IngestError> for Failure {
    fn from(e: crate::ingest::IngestError) -> Self {
        match e {
            crate::ingest::IngestError::Open { .. } => Failure::Usage(e.to_string()),
            _ => Failure::Runtime(e.to_string()),
        }
    }
}

/// One thing `import` reads.
enum Input {
    /// A regular file: checkpointed, so read once however often given.
    File(std::path::PathBuf),
    /// Stdin (`None`), or a named pipe or device (`<(zcat …)`): read to
    /// its end as plain text, without a checkpoint.
    Stream(Option<std::path::PathBuf>),
}

/// What `import`'s arguments name, in reading order: a directory stands for
/// its logs as `--watch-dir` finds them. Every path is checked before the
/// store is touched: a typo is a usage error.
fn import_inputs(a: &ImportArgs) -> Result<Vec<Input>, Failure> {
    let mut inputs = Vec::new();
    for f in &a.files {
        if f.as_os_str() == "-" {
            inputs.push(Input::Stream(None));
            continue;
        }
        let meta = std::fs::metadata(f).map_err(|e| Failure::Usage(format!("{}: {e}", f.display())))?;
        if meta.is_file() {
            inputs.push(Input::File(f.clone()));
        } else if meta.is_dir() {
            let patterns = crate::config::DEFAULT_PATTERNS.map(str::to_owned);
            let before = inputs.len();
            for g in crate::ingest::watch::scan(f, &patterns)? {
                inputs.extend(g.history.into_iter().map(Input::File));
                if g.live_path.is_file() {
                    inputs.push(Input::File(g.live_path));
                }
            }
            if inputs.len() == before {
                return Err(Failure::Usage(format!(
                    "{}: no log files named {} or their archives (name the files to read instead)",
                    f.display(),
                    patterns.join(":")
                )));
            }
        } else {
            inputs.push(Input::Stream(Some(f.clone())));
        }
    }
    Ok(inputs)
}

fn import(a: &ImportArgs) -> Result<(), Failure> {
    let opts = a.format.build(&a.common, a.progress)?;
    let inputs = import_inputs(a)?;
    let store = Store::open(&a.common.workspace())?;
    crate::limits::BULK_IMPORT.store(true, std::sync::atomic::Ordering::Relaxed);
    let started = std::time::Instant::now();
    let mut p = Pipeline::bulk(std::sync::Arc::new(store), opts)?;
    let before = p.lines().clone();
    let mut summary = Summary::default();
    for i in inputs {
        match i {
            Input::File(f) => p.import_path(&f, &mut summary)?,
            Input::Stream(path) => {
                // Stdin as a file too (a duplicate of its descriptor): one
                // reader type for every input keeps the binary small.
                let (name, f) = match &path {
                    None => ("stdin".to_owned(), std::os::fd::AsFd::as_fd(&std::io::stdin()).try_clone_to_owned().map(std::fs::File::from)),
                    Some(path) => (path.display().to_string(), std::fs::File::open(path)),
                };
                let f = f.map_err(|source| crate::ingest::IngestError::Read { name: name.clone(), source })?;
                // (As a `Box<dyn Read>`, the line reader files use.)
                let f: Box<dyn std::io::Read + Send> = Box::new(f);
                p.import_reader(&name, f, &mut summary)?;
            }
        }
    }
    let l = p.lines();
    let secs = started.elapsed().as_secs_f64();
    #[expect(clippy::cast_precision_loss, reason = "a rate for display")]
    let rate = summary.lines as f64 / secs.max(1e-9);
    eprintln!(
        "postlens: imported {} lines from {} file(s) in {secs:.2} s ({rate:.0} lines/s): postfix {}, dovecot {}, other {}, unsupported {}, malformed {}{}",
        summary.lines,
        summary.files,
        l.postfix - before.postfix,
        l.dovecot - before.dovecot,
        l.other - before.other,
        l.unsupported - before.unsupported,
        l.malformed - before.malformed,
        if summary.skipped_bytes > 0 { format!("; skipped {} bytes already imported", summary.skipped_bytes) } else { String::new() },
    );
    Ok(())
}

fn insights_filter(a: &InsightsArgs) -> Result<crate::insights::Filter, Failure> {
    let w = window(&a.common, &a.window)?;
    let kind = match &a.kind {
        Some(k) => Some(crate::insights::Kind::parse(k).ok_or_else(|| {
            let all: Vec<&str> = crate::insights::Kind::ALL.iter().map(|k| k.id()).collect();
            Failure::Usage(format!("--kind: one of {}", all.join(", ")))
        })?),
        None => None,
    };
    Ok(crate::insights::Filter { from: w.from, to: w.to, kind, archived: a.archived, ..crate::insights::Filter::default() })
}

/// Lists insights; with `catch_up` (no daemon keeps them current) the
/// detectors first run over what was imported since they last did (as
/// history: nothing is notified). `import` itself stays pure ingestion.
fn insights(a: &InsightsArgs, store: &Store, catch_up: bool) -> Result<String, Failure> {
    use std::fmt::Write as _;
    let f = insights_filter(a)?;
    if catch_up && let Some((_, newest)) = store.time_span()? {
        let s = crate::settings::Settings::load(store).unwrap_or_default();
        let inputs =
            crate::insights::engine::Inputs { overlay: None, cfg: &s.insights, public_ip: None, now: Timestamp(newest + 1), live: false };
        crate::insights::engine::run(store, &inputs)?;
    }
    let list = crate::insights::list(store, &f)?;
    if a.json {
        let v: Vec<crate::insights::InsightJson> = list.iter().map(|(id, i)| crate::insights::InsightJson::of(*id, i)).collect();
        let mut j = serde_json::to_string_pretty(&v).map_err(|e| Failure::Runtime(e.to_string()))?;
        j.push('\n');
        return Ok(j);
    }
    if list.is_empty() {
        return Ok("no insights\n".into());
    }
    let tz = a.common.timezone()?;
    let mut out = String::new();
    for (id, i) in &list {
        let when =
            jiff::Timestamp::from_second(i.time).map(|t| t.to_zoned(tz.clone()).strftime("%Y-%m-%d %H:%M").to_string()).unwrap_or_default();
        let count = if i.count > 1 { format!(" (x{})", i.count) } else { String::new() };
        let status = if i.status == crate::insights::Status::Open { String::new() } else { format!(" [{}]", i.status.as_str()) };
        let _ = writeln!(out, "#{id:<4} {when}  {:<8} {:<20} {}{count}{status}", i.severity.as_str(), i.kind.id(), i.title);
    }
    Ok(out)
}

fn window(common: &Common, w: &crate::config::WindowArgs) -> Result<Window, Failure> {
    let (from, to) = (w.from.as_ref(), w.to.as_ref());
    let tz = common.timezone()?;
    let parse = |flag: &str, v: Option<&String>| -> Result<Option<Timestamp>, Failure> {
        v.map(|s| parse_time_arg(s, &tz).map_err(|e| Failure::Usage(format!("{flag}: {e}")))).transpose()
    };
    let w = Window { from: parse("--from", from)?, to: parse("--to", to)? };
    if let (Some(f), Some(t)) = (w.from, w.to)
        && f > t
    {
        return Err(Failure::Usage("--from is after --to".into()));
    }
    Ok(w)
}

fn stats(a: &StatsArgs, store: &Store, overlay: Option<&crate::store::query::Overlay>) -> Result<String, Failure> {
    let w = window(&a.common, &a.window)?;
    let s = store.stats_live(w, overlay)?;
    if a.json {
        let mut j = serde_json::to_string_pretty(&s).map_err(|e| Failure::Runtime(e.to_string()))?;
        j.push('\n');
        Ok(j)
    } else {
        Ok(stats_text(&s, store.time_span()?))
    }
}

/// `stats` for people; `span` is the time of the oldest and the newest
/// record kept (what an open-ended window reaches).
fn stats_text(s: &Stats, span: Option<(i64, i64)>) -> String {
    use std::fmt::Write as _;
    let d = &s.deliveries;
    let mut t = String::new();
    let w = |x: &Option<String>| x.clone().unwrap_or_else(|| "-".into());
    if s.window.from.is_none() && s.window.to.is_none() {
        let _ = writeln!(t, "window          all");
    } else {
        let _ = writeln!(t, "window          {} .. {}", w(&s.window.from), w(&s.window.to));
    }
    match span {
        Some((a, b)) => _ = writeln!(t, "data kept       {} .. {}", Timestamp(a).rfc3339(), Timestamp(b).rfc3339()),
        None => _ = writeln!(t, "data kept       none yet"),
    }
    let _ = writeln!(t, "deliveries      sent {}  bounced {}  expired {}  pending {}", d.sent, d.bounced, d.expired, d.pending);
    let _ = writeln!(
        t,
        "  outbound      sent {}  bounced {}  expired {}  pending {}",
        d.outbound.sent, d.outbound.bounced, d.outbound.expired, d.outbound.pending
    );
    let _ = writeln!(
        t,
        "  inbound       sent {}  bounced {}  expired {}  pending {}",
        d.inbound.sent, d.inbound.bounced, d.inbound.expired, d.inbound.pending
    );
    let _ = writeln!(t, "deferrals       {} (deliveries sent after a deferral: {})", s.deferrals, s.deferred_then_sent);
    let _ = writeln!(t, "messages        queued {}  with a deferral {}", s.messages.queued, s.messages.with_deferral);
    let _ = writeln!(
        t,
        "notifications   returned {}  delay {}  success {}",
        s.notifications.non_delivery, s.notifications.delay, s.notifications.success
    );
    let _ = writeln!(t, "rejected        {}\nconnections     {}", s.rejected, s.connections);
    let _ = writeln!(t, "auth failures   {} from {} IPs", s.auth_failures.total, s.auth_failures.by_ip.len());
    let l = &s.lines;
    let _ = writeln!(
        t,
        "lines           read {}  postfix {}  dovecot {}  other {}  unsupported {}  malformed {}",
        l.read, l.postfix, l.dovecot, l.other, l.unsupported, l.malformed
    );
    let _ = writeln!(t, "evictions       {}", s.evictions);
    t
}

fn search(a: &SearchArgs, store: &Store, overlay: Option<&crate::store::query::Overlay>) -> Result<String, Failure> {
    use std::fmt::Write as _;
    let w = window(&a.common, &a.window)?;
    if a.limit == 0 {
        return Err(Failure::Usage("--limit must be at least 1".into()));
    }
    let q = Query {
        sender: a.sender.clone(),
        recipient: a.recipient.clone(),
        id: a.id.clone(),
        status: a.status.clone(),
        window: w,
        limit: a.limit,
    };
    let hits = store.search_live(&q, overlay)?;
    let mut out = String::new();
    if a.json {
        let v: Vec<SearchHit<'_>> = hits.iter().map(SearchHit::of).collect();
        out = serde_json::to_string_pretty(&v).map_err(|e| Failure::Runtime(e.to_string()))?;
        out.push('\n');
    } else {
        for d in &hits {
            let h = SearchHit::of(d);
            let _ = writeln!(
                out,
                "{}  {:8} {:8} {}  <{}> -> <{}>  relay={} dsn={} attempts={} deferrals={}\n    {}",
                h.time,
                h.status,
                h.direction,
                h.queue_ids.join(">"),
                h.sender.unwrap_or("?"),
                h.recipient.unwrap_or("?"),
                h.relay.unwrap_or("none"),
                h.dsn.unwrap_or("-"),
                h.attempts,
                h.deferrals,
                h.response.unwrap_or("")
            );
        }
        if hits.is_empty() {
            let _ = writeln!(out, "no deliveries match");
        }
    }
    Ok(out)
}

fn report(a: &ReportArgs, store: &Store) -> Result<String, Failure> {
    let tz = a.common.timezone()?;
    let day = if let Some(d) = &a.day {
        d.parse::<jiff::civil::Date>().map_err(|e| Failure::Usage(format!("--day: '{d}' is not YYYY-MM-DD: {e}")))?
    } else {
        // The newest line read; without one (no Postfix or Dovecot line
        // yet), the newest record.
        let newest = store.checkpoints()?.iter().map(|(_, c)| c.last_time).max().filter(|&t| t != 0);
        let newest = match newest {
            Some(t) => t,
            None => match store.time_span()? {
                Some((_, t)) => t,
                None => return Ok("No Postfix or Dovecot lines imported yet: nothing to summarise.\n".into()),
            },
        };
        jiff::Timestamp::from_second(newest).map_err(|e| Failure::Runtime(e.to_string()))?.to_zoned(tz.clone()).date()
    };
    let start = day.to_zoned(tz.clone()).map_err(|e| Failure::Runtime(e.to_string()))?;
    let end = start.tomorrow().map_err(|e| Failure::Runtime(e.to_string()))?;
    let w = Window { from: Some(Timestamp(start.timestamp().as_second())), to: Some(Timestamp(end.timestamp().as_second())) };
    let s = store.stats(w)?;
    let dels = store.deliveries_in(w)?;
    let domains = store.domains(w)?;
    Ok(crate::report::render(&day.to_string(), &s, &dels, &domains, &tz))
}

fn status(a: &StatusArgs, store: &Store, live: Option<&crate::control::LiveStatus>) -> Result<String, Failure> {
    use std::fmt::Write as _;
    let cps = store.checkpoints()?;
    let r = store.restore()?;
    let size = store.file_size();
    let live = live.and_then(|l| l.lock().ok().map(|v| v.clone()));
    let mut out = String::new();
    if a.json {
        let sources: Vec<_> = cps
            .iter()
            .map(|(k, c)| serde_json::json!({"id": k, "name": c.name, "offset": c.offset, "last_time": Timestamp(c.last_time).rfc3339_known()}))
            .collect();
        // A running daemon answers from a measurement at most a minute old:
        // it reads every table, and pollers call `status` often.
        let space = store.space_report(crate::clock::now(), if live.is_some() { crate::limits::STATUS_SPACE_MAX_AGE_SECS } else { 0 })?;
        let (raw_lines, raw_original, raw_stored) = space.raw;
        let (stored, metadata, fragmented, allocated) = space.space;
        let tables: serde_json::Map<String, serde_json::Value> = space
            .tables
            .iter()
            .map(|(name, stored, frag)| ((*name).to_owned(), serde_json::json!({"stored_bytes": stored, "fragmented_bytes": frag})))
            .collect();
        let v = serde_json::json!({
            "db_tables": tables,
            "running": live.is_some(),
            "raw_lines": {"lines": raw_lines, "original_bytes": raw_original, "stored_bytes": raw_stored},
            "db_space": {"stored_bytes": stored, "metadata_bytes": metadata, "fragmented_bytes": fragmented, "allocated_bytes": allocated},
            "space_measured": space.at.rfc3339(),
            "live": live,
            "sources": sources,
            "db_bytes": size,
            "inflight": r.tracker.len(),
            "evictions": r.tracker.counters.evictions,
            "stale": r.tracker.counters.stale,
            "lines": r.lines,
        });
        out = serde_json::to_string_pretty(&v).unwrap_or_default();
        out.push('\n');
    } else {
        let _ = writeln!(out, "store        {} ({} bytes)", store.path().display(), size);
        let _ = writeln!(
            out,
            "in flight    {} messages, {} evicted, {} stale",
            r.tracker.len(),
            r.tracker.counters.evictions,
            r.tracker.counters.stale
        );
        let _ = writeln!(out, "lines        read {}  unsupported {}  malformed {}", r.lines.read, r.lines.unsupported, r.lines.malformed);
        if let Some(l) = live {
            let _ =
                writeln!(out, "daemon       running; commits {}", if l["stalled"] == true { "FAILING (ingestion paused)" } else { "ok" });
            for s in l["sources"].as_array().into_iter().flatten() {
                let _ = writeln!(
                    out,
                    "source       {}  position {}  behind {} bytes  last line {}",
                    s["name"].as_str().unwrap_or("?"),
                    s["offset"],
                    s["behind"],
                    s["last_time"].as_str().unwrap_or("-")
                );
            }
        } else {
            let _ = writeln!(out, "daemon       not running");
            for (_, c) in &cps {
                let last = Timestamp(c.last_time).rfc3339_known().unwrap_or_else(|| "-".into());
                let _ = writeln!(out, "source       {}  offset {}  last line {last}", c.name, c.offset);
            }
        }
    }
    Ok(out)
}

/// Parse + track only, no store: the figure `make bench` compares. The
/// file is read (and parsed, with `--parse-thread` on or, by default, on a
/// machine with two cores or more) as an import reads it.
fn bench_parse(a: &BenchArgs) -> Result<(), Failure> {
    use crate::ingest::ahead::{Item, ParseAhead};
    use crate::ingest::reader::{Line, LineReader};
    let opts = a.format.build(&a.common, false)?;
    let f = std::fs::File::open(&a.file).map_err(|e| Failure::Usage(format!("{}: {e}", a.file.display())))?;
    let io_err = |e: std::io::Error| Failure::Runtime(e.to_string());
    let mut b = BenchTrack {
        tracker: crate::track::Tracker::new(),
        res: crate::clock::Resolver::new(opts.tz.clone(), opts.starting_year.unwrap_or(2026)),
        n: 0,
        ok: 0,
        deliveries: 0,
        events: 0,
    };
    let started = std::time::Instant::now();
    if opts.parse_ahead(1) {
        let mut r = ParseAhead::spawn(f, 0).map_err(io_err)?;
        while let Some(l) = r.next_line().map_err(io_err)? {
            b.line(match l {
                Item::Line { parsed, .. } => parsed.as_ref().ok(),
                Item::TooLong { .. } => None,
            });
        }
    } else {
        let mut r = LineReader::read_ahead(f).map_err(io_err)?;
        let mut parser = crate::parse::Parser::new();
        while let Some(l) = r.next_line(true).map_err(io_err)? {
            match l {
                Line::Ok(l) => b.line(parser.parse(l).as_ref().ok()),
                Line::TooLong => b.line(None),
            }
        }
    }
    b.drain();
    eprintln!(
        "parsed {} lines ({} understood), {} deliveries, {} events, {} in flight in {:.3} s",
        b.n,
        b.ok,
        b.deliveries,
        b.events,
        b.tracker.len(),
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

/// `bench-parse`'s tracker and counts.
struct BenchTrack {
    tracker: crate::track::Tracker,
    res: crate::clock::Resolver,
    n: u64,
    ok: u64,
    deliveries: usize,
    events: usize,
}

impl BenchTrack {
    fn line(&mut self, ev: Option<&crate::parse::Event<'_>>) {
        self.n += 1;
        if let Some(ev) = ev {
            self.ok += 1;
            let t = self.res.resolve(ev.time);
            self.tracker.push(ev, t);
        }
        // Handed over as often as the import hands a batch to its writer.
        if self.n.is_multiple_of(crate::limits::IMPORT_COMMIT_LINES) {
            self.drain();
        }
    }

    fn drain(&mut self) {
        let o = self.tracker.drain();
        self.deliveries += o.deliveries.len();
        self.events += o.events.len();
    }
}

/// `postlens user add|reset-password|token`. Flags are checked and the
/// password obtained (asked for on a terminal) before the store is touched,
/// so bad input fails alike with or without a daemon; when a daemon holds
/// the database, it is sent the resolved command line and does the write.
fn user(a: &UserArgs) -> Result<(), Failure> {
    let req = UserRequest::resolve(&a.action, true)?;
    let ws = match &a.action {
        UserAction::Add(a) => a.who.common.workspace(),
        UserAction::ResetPassword(a) => a.common.workspace(),
        UserAction::Token(a) => a.common.workspace(),
    };
    // Only `add` may create a database: elsewhere there is no user yet.
    if !matches!(req, UserRequest::Add { .. }) && !ws.join(crate::store::DB_FILE).exists() {
        return Err(crate::auth::AuthError::UnknownUser(req.email().to_string()).into());
    }
    let (out, err) = match Store::open(&ws) {
        Err(StoreError::Locked { .. }) => {
            let a = crate::control::forward(&ws, &req.argv())
                .map_err(|e| Failure::Runtime(format!("{} is held by a running postlens, which did not answer: {e}", ws.display())))?;
            if a.code != 0 {
                let _ = std::io::stderr().lock().write_all(a.stderr.as_bytes());
                return Err(Failure::Exit(a.code));
            }
            (a.stdout, a.stderr)
        }
        r => req.run(&r?)?,
    };
    let _ = std::io::stdout().lock().write_all(out.as_bytes());
    let _ = std::io::stderr().lock().write_all(err.as_bytes());
    Ok(())
}

/// A `user` command with its flags validated and its password in hand.
enum UserRequest {
    Add { email: crate::auth::Email, password: String, role: crate::auth::Role },
    Reset { email: crate::auth::Email, password: String },
    Token { email: crate::auth::Email },
}

impl UserRequest {
    /// Validates the flags; a missing password is asked for on the terminal
    /// when `may_ask` (never in the daemon).
    fn resolve(action: &UserAction, may_ask: bool) -> Result<UserRequest, Failure> {
        use crate::auth::{Email, Role, check_strength};
        let email = |e: &str| Email::parse(e).map_err(|e| Failure::from(crate::auth::AuthError::BadEmail(e)));
        let password = |p: Option<&String>, email: &Email| -> Result<String, Failure> {
            let strong = |p: &str| check_strength(p, email).map_err(|e| Failure::from(crate::auth::AuthError::WeakPassword(e)));
            let p = match p {
                Some(p) => p.clone(),
                None if may_ask => ask_password(&strong)?,
                None => return Err(Failure::Usage("--password: missing (give --password P or POSTLENS_PASSWORD)".into())),
            };
            strong(&p)?;
            Ok(p)
        };
        Ok(match action {
            UserAction::Add(a) => {
                let email = email(&a.who.email)?;
                let password = password(a.who.password.as_ref(), &email)?;
                UserRequest::Add { password, email, role: if a.read_only { Role::ReadOnly } else { Role::Admin } }
            }
            UserAction::ResetPassword(a) => {
                let email = email(&a.email)?;
                UserRequest::Reset { password: password(a.password.as_ref(), &email)?, email }
            }
            UserAction::Token(a) => UserRequest::Token { email: email(&a.email)? },
        })
    }

    fn email(&self) -> &crate::auth::Email {
        match self {
            UserRequest::Add { email, .. } | UserRequest::Reset { email, .. } | UserRequest::Token { email } => email,
        }
    }

    /// The command line sent to a running daemon: everything explicit, so
    /// nothing comes from the daemon's environment.
    fn argv(&self) -> Vec<String> {
        let mut v = vec!["user".to_owned()];
        match self {
            UserRequest::Add { email, password, role } => {
                v.extend(["add".to_owned(), format!("--email={email}"), format!("--password={password}")]);
                if *role == crate::auth::Role::ReadOnly {
                    v.push("--read-only".to_owned());
                }
            }
            UserRequest::Reset { email, password } => {
                v.extend(["reset-password".to_owned(), format!("--email={email}"), format!("--password={password}")]);
            }
            UserRequest::Token { email } => v.extend(["token".to_owned(), format!("--email={email}")]),
        }
        v
    }

    /// Does it: (standard output, standard error).
    fn run(&self, store: &Store) -> Result<(String, String), Failure> {
        use crate::auth;
        let now = crate::clock::now();
        match self {
            UserRequest::Add { email, password, role } => {
                let u = auth::create_user(store, email.as_str(), password, *role, now)?;
                Ok((format!("added user {} ({})\n", u.email, u.role.as_str()), String::new()))
            }
            UserRequest::Reset { email, password } => {
                let u = auth::reset_password(store, email.as_str(), password, now)?;
                Ok((format!("changed the password of {}; its browser sessions have ended\n", u.email), String::new()))
            }
            UserRequest::Token { email } => {
                let t = auth::create_token(store, email.as_str(), now)?;
                let note = t.revoked.map_or_else(String::new, |made| {
                    format!(
                        "postlens: {} had {} API tokens: revoked the first one, made {}\n",
                        t.user.email,
                        auth::MAX_TOKENS_PER_USER,
                        made.rfc3339()
                    )
                });
                Ok((format!("{}\n", t.token), note))
            }
        }
    }
}

/// Runs its function with `echo` when dropped: turns the terminal's echo
/// back on however the prompt ends.
struct EchoOn<F: Fn(&str) -> bool>(F);

impl<F: Fn(&str) -> bool> Drop for EchoOn<F> {
    fn drop(&mut self) {
        (self.0)("echo");
    }
}

/// Asks for a new password on the terminal, echo off (by `stty`, so no
/// terminal crate and no unsafe code), and, if `strong` accepts it, once
/// more to confirm.
fn ask_password(strong: &dyn Fn(&str) -> Result<(), Failure>) -> Result<String, Failure> {
    use std::io::IsTerminal as _;
    use std::process::{Command as Proc, Stdio};
    if !std::io::stdin().is_terminal() {
        return Err(Failure::Usage(
            "--password: missing (give --password P or POSTLENS_PASSWORD; standard input is not a terminal to ask on)".into(),
        ));
    }
    let stty = |arg: &str| Proc::new("stty").arg(arg).stdin(Stdio::inherit()).stderr(Stdio::null()).status().is_ok_and(|s| s.success());
    if !stty("-echo") {
        return Err(Failure::Usage(
            "--password: missing, and echo cannot be turned off here to ask (give --password P or POSTLENS_PASSWORD)".into(),
        ));
    }
    let _echo = EchoOn(stty);
    let ask = |prompt: &str| -> Result<String, Failure> {
        eprint!("{prompt}");
        let mut line = String::new();
        let n = std::io::stdin().read_line(&mut line).map_err(|e| Failure::Runtime(format!("reading the password: {e}")))?;
        eprintln!();
        if n == 0 {
            return Err(Failure::Usage("--password: none entered".into()));
        }
        Ok(line.trim_end_matches(['\n', '\r']).to_owned())
    };
    let first = ask("New password: ")?;
    strong(&first)?;
    if ask("The same again: ")? != first {
        return Err(Failure::Usage("--password: the two entries differ".into()));
    }
    Ok(first)
}

impl From<crate::auth::AuthError> for Failure {
    fn from(e: crate::auth::AuthError) -> Self {
        use crate::auth::AuthError;
        match e {
            AuthError::BadEmail(e) => Failure::Usage(format!("--email: {e}")),
            AuthError::WeakPassword(e) => Failure::Usage(format!("--password: {e}")),
            AuthError::UnknownUser(e) => Failure::Usage(format!("--email: no user {e} (add one with `postlens user add`)")),
            AuthError::UserExists(e) => {
                Failure::Usage(format!("--email: a user {e} already exists (`postlens user reset-password` changes its password)"))
            }
            AuthError::FirstUserMustBeAdmin => {
                Failure::Usage("--read-only: the first user must be an admin; add it without --read-only".into())
            }
            AuthError::Store(e) => e.into(),
            e => Failure::Runtime(e.to_string()),
        }
    }
}

/// `postlens notify-test` / `notify-config`: the flags (and a `--set`
/// file) are resolved into an explicit command line first, which runs
/// here against the workspace, or in the daemon when it holds the database.
fn notify(c: &Command) -> Result<(), Failure> {
    let (ws, argv) = match c {
        Command::NotifyTest(a) => (a.common.workspace(), notify_test_argv(a)),
        Command::NotifyConfig(a) => (a.common.workspace(), notify_config_argv(a)?),
        _ => return Err(Failure::Usage("not a notify command".into())),
    };
    let full: Vec<String> = std::iter::once("postlens".to_owned()).chain(argv.iter().cloned()).collect();
    let resolved = Cli::try_parse_from(&full).map_err(|e| Failure::Usage(e.to_string()))?;
    let Some(cmd) = resolved.command else { return Err(Failure::Usage("not a notify command".into())) };
    let storing = matches!(&cmd, Command::NotifyConfig(a) if a.set_json.is_some());
    let a = if !storing && !ws.join(crate::store::DB_FILE).exists() {
        // Nothing stored yet: no channels, and no database to create for that.
        notify_run(&cmd, None)
    } else {
        match Store::open(&ws) {
            Err(StoreError::Locked { .. }) => crate::control::forward(&ws, &argv)
                .map_err(|e| Failure::Runtime(format!("{} is held by a running postlens, which did not answer: {e}", ws.display())))?,
            r => notify_run(&cmd, Some(&r?)),
        }
    };
    let _ = std::io::stdout().lock().write_all(a.stdout.as_bytes());
    let _ = std::io::stderr().lock().write_all(a.stderr.as_bytes());
    if a.code == 0 { Ok(()) } else { Err(Failure::Exit(a.code)) }
}

fn notify_test_argv(a: &NotifyTestArgs) -> Vec<String> {
    let mut v = vec!["notify-test".to_owned(), format!("--severity={}", a.severity)];
    if let Some(c) = &a.channel {
        v.push(format!("--channel={c}"));
    }
    v
}

/// Reads and validates the `--set` file, so a bad file fails before the
/// store is touched, with or without a daemon.
fn notify_config_argv(a: &NotifyConfigArgs) -> Result<Vec<String>, Failure> {
    use std::io::Read as _;
    let json = match (&a.set, &a.set_json) {
        (Some(f), _) => {
            let mut text = String::new();
            let limit = crate::limits::MAX_FORM_BODY;
            let r = if f.as_os_str() == "-" {
                std::io::stdin().lock().take(limit + 1).read_to_string(&mut text)
            } else {
                std::fs::File::open(f).and_then(|h| h.take(limit + 1).read_to_string(&mut text))
            };
            r.map_err(|e| Failure::Usage(format!("--set {}: {e}", f.display())))?;
            if text.len() as u64 > limit {
                return Err(Failure::Usage(format!("--set {}: larger than 64 KiB", f.display())));
            }
            Some(text)
        }
        (None, j) => j.clone(),
    };
    let mut v = vec!["notify-config".to_owned()];
    if let Some(j) = json {
        notify_parse(&j)?;
        v.push(format!("--set-json={j}"));
    }
    Ok(v)
}

fn notify_parse(json: &str) -> Result<crate::notify::NotifyConfig, Failure> {
    let c: crate::notify::NotifyConfig = serde_json::from_str(json).map_err(|e| Failure::Usage(format!("--set: {e}")))?;
    c.validate().map_err(|e| Failure::Usage(format!("--set: {e}")))?;
    Ok(c)
}

/// Runs a resolved notify command against an open store (`None`: the
/// workspace has no database yet, so no channels).
fn notify_run(c: &Command, store: Option<&Store>) -> crate::control::Answer {
    use crate::control::Answer;
    use crate::settings::Settings;
    let fail = |f: Failure| {
        let (code, m) = f.code_and_message();
        Answer { code, stdout: String::new(), stderr: format!("postlens: {m}\n") }
    };
    let mut settings = match store.map(Settings::load).transpose() {
        Ok(s) => s.unwrap_or_default(),
        Err(e) => return fail(e.into()),
    };
    match c {
        Command::NotifyConfig(a) => match &a.set_json {
            None => {
                let j = serde_json::to_string_pretty(&settings.notify.redacted()).unwrap_or_default();
                Answer { code: 0, stdout: format!("{j}\n"), stderr: String::new() }
            }
            Some(j) => {
                settings.notify = match notify_parse(j) {
                    Ok(n) => n,
                    Err(f) => return fail(f),
                };
                let Some(store) = store else { return fail(Failure::Runtime("no database to store into".into())) };
                match settings.save(store) {
                    Ok(()) => Answer {
                        code: 0,
                        stdout: format!("stored {} notification channel(s)\n", settings.notify.channels.len()),
                        stderr: String::new(),
                    },
                    Err(e) => fail(Failure::Runtime(e.to_string())),
                }
            }
        },
        Command::NotifyTest(a) => {
            use std::fmt::Write as _;
            let severity = a.severity.parse().unwrap_or_default();
            let channels: Vec<&crate::notify::ChannelConfig> = match &a.channel {
                Some(name) => match settings.notify.channel(name) {
                    Some(c) => vec![c],
                    None => return fail(Failure::Usage(format!("--channel: no channel named '{name}' (see postlens notify-config)"))),
                },
                None => settings.notify.channels.iter().filter(|c| c.enabled).collect(),
            };
            if channels.is_empty() {
                return fail(Failure::Usage("no enabled notification channel (add some with postlens notify-config --set FILE)".into()));
            }
            let now = crate::clock::now();
            let n = crate::notify::Notification::test(severity, now);
            let timeout = std::time::Duration::from_secs(crate::limits::NOTIFY_TIMEOUT_SECS);
            let (mut out, mut failed) = (String::new(), 0);
            for ch in &channels {
                match crate::notify::send_once(ch, &n, now, timeout) {
                    Ok(()) => _ = writeln!(out, "ok     {}", ch.name),
                    Err(e) => {
                        failed += 1;
                        let _ = writeln!(out, "error  {}: {e}", ch.name);
                    }
                }
            }
            let stderr = if failed > 0 { format!("postlens: {failed} of {} channel(s) failed\n", channels.len()) } else { String::new() };
            Answer { code: u8::from(failed > 0), stdout: out, stderr }
        }
        _ => fail(Failure::Usage("not a notify command".into())),
    }
}

/// `postlens dovecot-conf`: prints the auth policy settings for Dovecot.
/// `postlens check`: against the workspace's store when there is one (the
/// daemon's, when it runs), else from the flags alone.
fn check(a: &crate::check::CheckArgs, store: Option<&Store>) -> Result<(String, u8), Failure> {
    use crate::check::CheckError;
    let opened;
    let store = match store {
        Some(s) => Some(s),
        None => match Store::open_existing(&a.common.workspace()) {
            Ok(s) => {
                opened = s;
                Some(&opened)
            }
            Err(StoreError::Locked { .. }) => return Err(Failure::Locked(a.common.workspace())),
            // No workspace yet: the flags alone say what to check.
            Err(StoreError::Workspace { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => return Err(e.into()),
        },
    };
    crate::check::cli(a, store).map_err(|e| match e {
        CheckError::Usage(m) => Failure::Usage(m),
        CheckError::Runtime(m) => Failure::Runtime(m),
    })
}

fn dovecot_conf(a: &crate::config::DovecotConfArgs) -> Result<(), Failure> {
    use crate::protect::dovecot_conf::{Flavor, flavor, key_ok, nonce, render, url_ok};
    let f = match (&a.dovecot_version, a.dovecot_conf_is_old) {
        (Some(v), _) => flavor(v).map_err(|e| Failure::Usage(format!("--dovecot-version: {e}")))?,
        (None, true) => Flavor::Old,
        // The installed Dovecot says `2.3.19.1 (9b53102964)`.
        (None, false) => std::process::Command::new("dovecot")
            .arg("--version")
            .output()
            .ok()
            .and_then(|o| String::from_utf8(o.stdout).ok())
            .and_then(|v| flavor(v.split_whitespace().next().unwrap_or("")).ok())
            .unwrap_or(Flavor::Toggles),
    };
    if !url_ok(&a.url) {
        return Err(Failure::Usage(format!("--url: '{}' is not an http:// or https:// URL", a.url)));
    }
    if let Some(k) = &a.policy_key
        && !key_ok(k)
    {
        return Err(Failure::Usage("--policy-key: use 1 to 256 letters, digits or ._~+/=-".into()));
    }
    let nonce = nonce().map_err(|e| Failure::Runtime(format!("no random numbers for the hash nonce: {e}")))?;
    let _ = std::io::stdout().lock().write_all(render(f, &a.url, a.policy_key.as_deref(), &nonce).as_bytes());
    Ok(())
}
