//! The scripting commands: `import`, `stats`, `search`, `report`, `status`.
//! Each returns an exit code: 0 ok, 1 runtime error, 2 usage/config error.

use crate::clock::{Timestamp, parse_time_arg};
use crate::config::{BenchArgs, Cli, Command, Common, ConfigError, ImportArgs, ReportArgs, SearchArgs, StatsArgs, StatusArgs};
use crate::ingest::{Pipeline, Summary};
use crate::store::query::{Query, SearchHit, Stats, Window};
use crate::store::{Store, StoreError};
use std::io::Write;
use std::process::ExitCode;

/// Runs a parsed command line.
pub fn run(cli: Cli) -> ExitCode {
    let r = match cli.command {
        Command::Import(a) => import(&a),
        Command::Stats(a) => stats(&a),
        Command::Search(a) => search(&a),
        Command::Report(a) => report(&a),
        Command::Status(a) => status(&a),
        Command::BenchParse(a) => bench_parse(&a),
    };
    match r {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure::Usage(m)) => {
            eprintln!("postlens: {m}");
            ExitCode::from(2)
        }
        Err(Failure::Runtime(m)) => {
            eprintln!("postlens: {m}");
            ExitCode::from(1)
        }
    }
}

enum Failure {
    Usage(String),
    Runtime(String),
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

fn import(a: &ImportArgs) -> Result<(), Failure> {
    let opts = a.format.build(&a.common, a.progress)?;
    // Check every path before touching the store: a typo is a usage error.
    for f in &a.files {
        if f.as_os_str() != "-" && !f.is_file() {
            return Err(Failure::Usage(format!("{}: no such file", f.display())));
        }
    }
    let store = Store::open(&a.common.workspace())?;
    let started = std::time::Instant::now();
    let mut p = Pipeline::new(store, opts)?;
    let before = p.lines().clone();
    let mut summary = Summary::default();
    for f in &a.files {
        if f.as_os_str() == "-" {
            p.import_reader("stdin", std::io::stdin().lock(), &mut summary)?;
        } else {
            p.import_path(f, &mut summary)?;
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

fn window(common: &Common, from: Option<&String>, to: Option<&String>) -> Result<Window, Failure> {
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

fn stats(a: &StatsArgs) -> Result<(), Failure> {
    let w = window(&a.common, a.from.as_ref(), a.to.as_ref())?;
    let store = Store::open_existing(&a.common.workspace())?;
    let s = store.stats(w)?;
    let mut out = std::io::stdout().lock();
    if a.json {
        serde_json::to_writer_pretty(&mut out, &s).map_err(|e| Failure::Runtime(e.to_string()))?;
        let _ = writeln!(out);
    } else {
        let _ = write!(out, "{}", stats_text(&s));
    }
    Ok(())
}

fn stats_text(s: &Stats) -> String {
    use std::fmt::Write as _;
    let d = &s.deliveries;
    let mut t = String::new();
    let w = |x: &Option<String>| x.clone().unwrap_or_else(|| "-".into());
    let _ = writeln!(t, "window          {} .. {}", w(&s.window.from), w(&s.window.to));
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

fn search(a: &SearchArgs) -> Result<(), Failure> {
    let w = window(&a.common, a.from.as_ref(), a.to.as_ref())?;
    if a.limit == 0 {
        return Err(Failure::Usage("--limit must be at least 1".into()));
    }
    let store = Store::open_existing(&a.common.workspace())?;
    let q = Query {
        sender: a.sender.clone(),
        recipient: a.recipient.clone(),
        id: a.id.clone(),
        status: a.status.clone(),
        window: w,
        limit: a.limit,
    };
    let hits = store.search(&q)?;
    let mut out = std::io::stdout().lock();
    if a.json {
        let v: Vec<SearchHit<'_>> = hits.iter().map(SearchHit::of).collect();
        serde_json::to_writer_pretty(&mut out, &v).map_err(|e| Failure::Runtime(e.to_string()))?;
        let _ = writeln!(out);
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
    Ok(())
}

fn report(a: &ReportArgs) -> Result<(), Failure> {
    let tz = a.common.timezone()?;
    let store = Store::open_existing(&a.common.workspace())?;
    let day = if let Some(d) = &a.day {
        d.parse::<jiff::civil::Date>().map_err(|e| Failure::Usage(format!("--day: '{d}' is not YYYY-MM-DD: {e}")))?
    } else {
        let newest = store.checkpoints()?.iter().map(|(_, c)| c.last_time).max().unwrap_or(0);
        jiff::Timestamp::from_second(newest).map_err(|e| Failure::Runtime(e.to_string()))?.to_zoned(tz.clone()).date()
    };
    let start = day.to_zoned(tz.clone()).map_err(|e| Failure::Runtime(e.to_string()))?;
    let end = start.tomorrow().map_err(|e| Failure::Runtime(e.to_string()))?;
    let w = Window { from: Some(Timestamp(start.timestamp().as_second())), to: Some(Timestamp(end.timestamp().as_second())) };
    let s = store.stats(w)?;
    let dels = store.deliveries_in(w)?;
    let domains = store.domains(w)?;
    let text = crate::report::render(&day.to_string(), &s, &dels, &domains, &tz);
    let _ = std::io::stdout().lock().write_all(text.as_bytes());
    Ok(())
}

fn status(a: &StatusArgs) -> Result<(), Failure> {
    let store = Store::open_existing(&a.common.workspace())?;
    let cps = store.checkpoints()?;
    let r = store.restore()?;
    let size = store.file_size();
    if a.json {
        let sources: Vec<_> = cps
            .iter()
            .map(|(k, c)| serde_json::json!({"id": k, "name": c.name, "offset": c.offset, "last_time": Timestamp(c.last_time).rfc3339()}))
            .collect();
        let v = serde_json::json!({
            "sources": sources,
            "db_bytes": size,
            "inflight": r.tracker.len(),
            "evictions": r.tracker.counters.evictions,
            "stale": r.tracker.counters.stale,
            "lines": r.lines,
        });
        println!("{}", serde_json::to_string_pretty(&v).unwrap_or_default());
    } else {
        println!("store        {} ({} bytes)", store.path().display(), size);
        println!("in flight    {} messages, {} evicted, {} stale", r.tracker.len(), r.tracker.counters.evictions, r.tracker.counters.stale);
        println!("lines        read {}  unsupported {}  malformed {}", r.lines.read, r.lines.unsupported, r.lines.malformed);
        for (_, c) in &cps {
            println!("source       {}  offset {}  last line {}", c.name, c.offset, Timestamp(c.last_time).rfc3339());
        }
    }
    Ok(())
}

/// Parse + track only, no store: the figure `make bench` compares.
fn bench_parse(a: &BenchArgs) -> Result<(), Failure> {
    let opts = a.format.build(&a.common, false)?;
    let f = std::fs::File::open(&a.file).map_err(|e| Failure::Usage(format!("{}: {e}", a.file.display())))?;
    let r = crate::ingest::reader::ThreadedRead::spawn(f).map_err(|e| Failure::Runtime(e.to_string()))?;
    let mut lr = crate::ingest::reader::LineReader::new(r);
    let mut tracker = crate::track::Tracker::new();
    let year = opts.starting_year.unwrap_or(2026);
    let mut res = crate::clock::Resolver::new(opts.tz.clone(), year);
    let (mut n, mut ok, mut deliveries, mut events) = (0u64, 0u64, 0usize, 0usize);
    let started = std::time::Instant::now();
    while let Some(l) = lr.next_line(true).map_err(|e| Failure::Runtime(e.to_string()))? {
        n += 1;
        if let crate::ingest::reader::Line::Ok(l) = l
            && let Ok(ev) = crate::parse::parse(l)
        {
            ok += 1;
            let t = res.resolve(ev.time);
            tracker.push(&ev, t);
        }
        if n % 65_536 == 0 {
            let o = tracker.drain();
            deliveries += o.deliveries.len();
            events += o.events.len();
        }
    }
    let o = tracker.drain();
    deliveries += o.deliveries.len();
    events += o.events.len();
    eprintln!(
        "parsed {n} lines ({ok} understood), {deliveries} deliveries, {events} events, {} in flight in {:.3} s",
        tracker.len(),
        started.elapsed().as_secs_f64()
    );
    Ok(())
}
