//! `postlens run`: the daemon. One current-thread tokio runtime drives
//! ingestion (watched directories, stdin, sockets, the journal), commit
//! timers and signals; redb has one writer thread; small thread pools serve
//! the control socket and the HTTP endpoint.
//!
//! Commits: while data flows, a non-durable commit every `LIVE_COMMIT_MS`
//! (so a new line is visible within about a second), a durable one every
//! `DURABLE_COMMIT_SECS` and at shutdown. A crash rolls data and positions
//! back together to the last durable commit, so nothing is lost or counted
//! twice, and an SD card sees a fraction of the writes.

use crate::clock::{Resolver, start_year_for};
use crate::config::{RunArgs, RunConfig};
use crate::control::LiveStatus;
use crate::ingest::stream::{self, Chunk};
use crate::ingest::watch::{self, Group};
use crate::ingest::{IngestError, Pipeline};
use crate::limits::{DURABLE_COMMIT_SECS, LIVE_COMMIT_MS, OVERLAY_MAX_RAW_BYTES, PUMP_BUDGET, STREAM_QUEUE};
use crate::store::{Checkpoint, Store, StoreError};
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

/// Runs the daemon until SIGTERM/SIGINT.
pub(crate) fn run(args: &RunArgs) -> Result<(), crate::cli::Failure> {
    use crate::cli::Failure;
    let mut cfg = args.build().map_err(|e| Failure::Usage(e.0))?;
    // A `stats` run by hand holds the database for a moment: wait a little
    // before concluding that another daemon owns it.
    let mut tries = 0;
    let store = loop {
        match Store::open(&cfg.workspace) {
            Err(StoreError::Locked { path }) => {
                tries += 1;
                if tries > 50 {
                    return Err(Failure::Runtime(format!("{} is in use: another postlens runs on this workspace", path.display())));
                }
                std::thread::sleep(Duration::from_millis(100));
            }
            r => break r.map_err(|e| Failure::Runtime(e.to_string()))?,
        }
    };
    // Retention chosen in the UI's settings overrides --retention.
    if let Some(days) = crate::settings::Settings::load(&store).ok().and_then(|s| s.retention_days) {
        cfg.opts.retention_secs = i64::from(days) * 86_400;
    }
    let store = Arc::new(store);
    let mut protect =
        crate::protect::Protect::new(cfg.protect.rule.clone()).map_err(|e| Failure::Usage(format!("--protect-config: {e}")))?;
    // Blocks, recent logins and the allowlist from the last run.
    match crate::protect::persist::load(&store, &mut protect, crate::clock::now()) {
        Ok(0) => {}
        Ok(n) => eprintln!("postlens: protection: {n} saved entries had ended or did not fit"),
        Err(e) => eprintln!("postlens: protection: the saved blocklist could not be read, starting empty: {e}"),
    }
    let protect = Arc::new(std::sync::Mutex::new(protect));
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().map_err(|e| Failure::Runtime(e.to_string()))?;
    let r = rt.block_on(serve(cfg, store, protect));
    // Leave the runtime without waiting for blocked stdin readers.
    rt.shutdown_timeout(Duration::from_millis(100));
    r.map_err(|e| Failure::Runtime(e.to_string()))
}

/// A stream source's state in the loop.
struct StreamState {
    res: Resolver,
    lines: u64,
    cursor: Option<String>,
}

/// Servers and stream sources live for the whole run; the ingest loop is
/// restarted from the store if a write error cost commits.
async fn serve(cfg: RunConfig, store: Arc<Store>, protect: crate::protect::Shared) -> Result<(), IngestError> {
    let live: LiveStatus = Arc::new(std::sync::Mutex::new(serde_json::Value::Null));
    let (overlay_tx, mut overlay_rx) = mpsc::channel(8);
    let control = crate::control::serve(&cfg.workspace, &store, &live, &overlay_tx)
        .map_err(|source| IngestError::Open { path: crate::control::socket_path(&cfg.workspace), source })?;
    let settings = crate::settings::Settings::load(&store).unwrap_or_default();
    let notifier = match crate::notify::Notifier::start(&settings.notify, crate::notify::Timing::default()) {
        Ok(n) => Some(Arc::new(n)),
        Err(e) => {
            eprintln!("postlens: notifications are off: {e}");
            None
        }
    };
    // The peer network: protection feeds and reads it from now on; the
    // client runs while the settings ask for it (checked every minute).
    let peer = Arc::new(crate::peer::service::PeerService::new(cfg.protect.hub.clone(), &cfg.workspace));
    crate::protect::lock(&protect)
        .set_peer(Some(crate::protect::PeerLink { aggregator: peer.aggregator.clone(), community: peer.community.clone() }));
    let peer_task = {
        let (peer, store) = (peer.clone(), store.clone());
        tokio::spawn(async move {
            let mut every = tokio::time::interval(Duration::from_mins(1));
            loop {
                every.tick().await;
                let (peer, store) = (peer.clone(), store.clone());
                let _ = tokio::task::spawn_blocking(move || {
                    let s = crate::settings::Settings::load(&store).unwrap_or_default();
                    let own: Vec<std::net::IpAddr> = s.public_ip.iter().filter_map(|i| i.parse().ok()).collect();
                    peer.apply(s.peer_network, &own);
                })
                .await;
            }
        })
    };
    // Health checks: a minute after start-up (the history has begun to come
    // in), then every 6 hours; the Health page runs them on demand.
    let checks_task = {
        let (store, notifier, secs) = (store.clone(), notifier.clone(), cfg.checks_every);
        tokio::spawn(async move {
            if secs == 0 {
                return;
            }
            let mut every =
                tokio::time::interval_at(tokio::time::Instant::now() + Duration::from_secs(secs.min(60)), Duration::from_secs(secs));
            every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                every.tick().await;
                let (store, notifier) = (store.clone(), notifier.clone());
                let _ = tokio::task::spawn_blocking(move || crate::web::run_checks(&store, notifier.as_deref())).await;
            }
        })
    };
    let web = crate::web::WebConfig { protect: Some(protect.clone()), peer: Some(peer.clone()), ..cfg.web.clone() };
    let http = crate::web::serve(cfg.listen, &store, &live, Some(overlay_tx.clone()), notifier.clone(), web)
        .map_err(|source| IngestError::Open { path: PathBuf::from(cfg.listen.to_string()), source })?;
    // The Dovecot auth policy server; a busy default port is not fatal
    // (protection from the logs still works, and the UI shows the blocks).
    let policy = match cfg.protect.listen {
        None => None,
        Some(addr) => match crate::protect::policy::serve(addr, protect.clone(), cfg.protect.key.clone()) {
            Ok(s) => Some(s),
            Err(e) if !cfg.protect.explicit => {
                eprintln!("postlens: Dovecot auth policy server off: {addr}: {e} (set --policy-listen)");
                None
            }
            Err(source) => return Err(IngestError::Open { path: PathBuf::from(addr.to_string()), source }),
        },
    };
    // The Postfix policy delegation server: asked for explicitly, so an
    // address that cannot be bound is an error.
    let postfix_policy = match cfg.protect.postfix_listen {
        None => None,
        Some(addr) => Some(
            crate::protect::postfix_policy::serve(addr, protect.clone())
                .map_err(|source| IngestError::Open { path: PathBuf::from(addr.to_string()), source })?,
        ),
    };
    let (tx, mut rx) = mpsc::channel::<Chunk>(STREAM_QUEUE);
    if cfg.stdin {
        stream::spawn_stdin(tx.clone());
    }
    for s in &cfg.sockets {
        stream::spawn_listener(s.clone(), tx.clone())
            .await
            .map_err(|source| IngestError::Open { path: PathBuf::from(s.name()), source })?;
    }
    let mut sigterm = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .map_err(|source| IngestError::Open { path: "SIGTERM".into(), source })?;
    let mut sigint = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt())
        .map_err(|source| IngestError::Open { path: "SIGINT".into(), source })?;
    let mut signals = Signals { term: &mut sigterm, int: &mut sigint };
    let r = loop {
        let journal = if cfg.journal {
            let cursor = store.checkpoint("journal")?.and_then(|c| c.cursor);
            Some(
                stream::spawn_journal(cursor.as_deref(), tx.clone())
                    .map_err(|source| IngestError::Open { path: "journalctl".into(), source })?,
            )
        } else {
            None
        };
        let r = daemon(&cfg, store.clone(), &live, &mut rx, &mut overlay_rx, &mut signals, notifier.as_ref(), &protect).await;
        if let Some(j) = journal {
            j.abort();
        }
        match r {
            // Lines in flight from the journal are read again from its cursor.
            Ok(Loop::Restart) => while rx.try_recv().is_ok() {},
            other => break other.map(|_| ()),
        }
    };
    control.unblock();
    http.unblock();
    if let Some(s) = policy {
        s.stop();
    }
    if let Some(s) = postfix_policy {
        s.stop();
    }
    peer_task.abort();
    checks_task.abort();
    peer.stop();
    if let Err(e) = crate::protect::persist::save(&store, &protect, crate::clock::now(), false) {
        eprintln!("postlens: protection: the blocklist could not be saved: {e}");
    }
    if let Some(n) = &notifier {
        n.shutdown();
    }
    let _ = std::fs::remove_file(crate::control::socket_path(&cfg.workspace));
    r
}

struct Signals<'a> {
    term: &'a mut tokio::signal::unix::Signal,
    int: &'a mut tokio::signal::unix::Signal,
}

enum Loop {
    Exit,
    Restart,
}

#[expect(clippy::too_many_arguments, reason = "the loop's inputs, each used once")]
async fn daemon(
    cfg: &RunConfig,
    store: Arc<Store>,
    live: &LiveStatus,
    rx: &mut mpsc::Receiver<Chunk>,
    overlays: &mut mpsc::Receiver<(bool, tokio::sync::oneshot::Sender<crate::store::query::Overlay>)>,
    signals: &mut Signals<'_>,
    notifier: Option<&Arc<crate::notify::Notifier>>,
    protect: &crate::protect::Shared,
) -> Result<Loop, IngestError> {
    let mut p = Pipeline::new(store, cfg.opts.clone())?;
    p.set_protect(protect.clone());

    // Sources.
    let mut groups: Vec<Group> = Vec::new();
    let inotify = inotify::Inotify::init().map_err(|source| IngestError::Open { path: "inotify".into(), source })?;
    let mut dir_of_wd = HashMap::new();
    for d in &cfg.watch_dirs {
        let mask = inotify::WatchMask::MODIFY
            | inotify::WatchMask::CREATE
            | inotify::WatchMask::MOVED_TO
            | inotify::WatchMask::MOVED_FROM
            | inotify::WatchMask::DELETE
            | inotify::WatchMask::CLOSE_WRITE;
        let wd = inotify.watches().add(d, mask).map_err(|source| IngestError::Open { path: d.clone(), source })?;
        let start = groups.len();
        groups.extend(watch::scan(d, &cfg.patterns)?);
        dir_of_wd.insert(wd, (start, groups.len()));
    }
    let mut events =
        inotify.into_event_stream(vec![0u8; 16 * 1024]).map_err(|source| IngestError::Open { path: "inotify".into(), source })?;
    let mut streams: HashMap<Arc<str>, StreamState> = HashMap::new();
    startup_summary(cfg, &groups);
    let mut tick = tokio::time::interval(Duration::from_millis(LIVE_COMMIT_MS));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut last_durable = Instant::now();
    let mut streams_open = true;
    let mut history_done_logged = false;
    // Insights: evaluated on a blocking thread, one run at a time.
    let mut insights_tick = tokio::time::interval(Duration::from_secs(cfg.insights_every));
    insights_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut insights_job: Option<tokio::task::JoinHandle<()>> = None;
    // The channels the notifier was last given: settings changed by other
    // means than the settings page (`notify-config --set` through the
    // control socket, the API) reach it at the next run.
    let applied = Arc::new(std::sync::Mutex::new(crate::settings::Settings::load(p.store()).unwrap_or_default().notify));
    loop {
        if p.rolled_back() {
            return Ok(Loop::Restart);
        }
        // Work first: pump dirty files within a budget, then look at events.
        let mut more = false;
        for g in groups.iter_mut().filter(|g| g.dirty) {
            let r = g.pump(&mut p, PUMP_BUDGET)?;
            more |= r.more;
        }
        if !history_done_logged && groups.iter().all(|g| g.history.is_empty() && g.importing.is_none()) {
            history_done_logged = true;
            if !groups.is_empty() {
                eprintln!("postlens: history imported ({} lines so far); following live", p.lines().read);
            }
        }
        if p.batch_full() {
            commit(&mut p, false).await?;
        }
        tokio::select! {
            biased;
            _ = signals.term.recv() => break,
            _ = signals.int.recv() => break,
            ev = futures_next(&mut events) => {
                if let Some(Ok(ev)) = ev {
                    let name = ev.name.as_ref().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
                    if let Some(&(a, b)) = dir_of_wd.get(&ev.wd) {
                        for g in &mut groups[a..b] {
                            if crate::ingest::file::group_of(&name) == g.name {
                                g.dirty = true;
                            }
                        }
                    }
                }
            }
            Some((raw, req)) = overlays.recv() => {
                // Records are kept until committed, raw lines are not: a
                // reader of raw lines waits for the writer's queue first.
                // (Bounded: while commits fail the answer comes without them.)
                if raw {
                    ship_raw_for_reader(&mut p, &streams).await?;
                    let _ = tokio::time::timeout(Duration::from_millis(500), p.settle()).await;
                }
                let _ = req.send(p.overlay(raw));
            }
            c = rx.recv(), if streams_open => {
                match c {
                    Some(c) => feed_chunk(&mut p, &mut streams, &c),
                    None => streams_open = false,
                }
            }
            _ = insights_tick.tick(), if history_done_logged && insights_job.as_ref().is_none_or(tokio::task::JoinHandle::is_finished) => {
                // Raw lines in the writer's queue are not in the overlay: let
                // them land so the remote-block detector sees every line.
                ship_raw_for_reader(&mut p, &streams).await?;
                let _ = tokio::time::timeout(Duration::from_millis(500), p.settle()).await;
                let overlay = p.overlay(true);
                let (store, notifier, applied) = (p.store_arc(), notifier.cloned(), applied.clone());
                insights_job = Some(tokio::task::spawn_blocking(move || insights(&store, &overlay, notifier.as_deref(), &applied)));
            }
            _ = tick.tick() => {
                // Files that could not be opened yet (empty) and slow writers.
                for g in &mut groups {
                    if g.current.is_none() || !g.draining.is_empty() {
                        g.dirty = true;
                    }
                }
                // Readers of this process see uncommitted lines through the
                // overlay, so while lines trickle in there is no need to
                // commit often: one durable commit every DURABLE_COMMIT_SECS
                // spares the SD card (bulk imports commit when a batch fills).
                let durable = last_durable.elapsed() >= Duration::from_secs(DURABLE_COMMIT_SECS);
                if durable && p.uncommitted() > 0 {
                    journal_checkpoint(&mut p, &streams);
                    commit(&mut p, true).await?;
                }
                if durable {
                    last_durable = Instant::now();
                    // The detector's own blocks and new trusted addresses.
                    let (store, protect) = (p.store_arc(), protect.clone());
                    tokio::task::spawn_blocking(move || {
                        if let Err(e) = crate::protect::persist::save(&store, &protect, crate::clock::now(), false) {
                            eprintln!("postlens: protection: the blocklist could not be saved (retrying): {e}");
                        }
                    });
                }
                publish_status(live, &p, &groups, &streams);
            }
            () = std::future::ready(()), if more => {}
        }
    }
    // Shutdown: one durable commit of everything read so far, within 2 s.
    eprintln!("postlens: stopping");
    journal_checkpoint(&mut p, &streams);
    let r = tokio::time::timeout(Duration::from_millis(1_800), p.commit_async(true)).await;
    match r {
        Ok(r) => r?,
        Err(_) => eprintln!(
            "postlens: the last commit did not finish in time; the lines since the previous commit will be read again at start-up"
        ),
    }
    Ok(Loop::Exit)
}

/// One run of the insight detectors; what starts (or starts again) is
/// handed to the notifier. Errors are reported, not fatal.
fn insights(
    store: &Store,
    overlay: &crate::store::query::Overlay,
    notifier: Option<&crate::notify::Notifier>,
    applied: &std::sync::Mutex<crate::notify::NotifyConfig>,
) {
    let s = crate::settings::Settings::load(store).unwrap_or_default();
    if let (Some(n), Ok(mut a)) = (notifier, applied.lock())
        && *a != s.notify
    {
        n.reconfigure(&s.notify);
        a.clone_from(&s.notify);
    }
    let inputs = crate::insights::engine::Inputs {
        overlay: Some(overlay),
        cfg: &s.insights,
        public_ip: s.public_ip.as_deref().and_then(|ip| ip.parse().ok()),
        now: crate::clock::now(),
        live: true,
    };
    match crate::insights::engine::run(store, &inputs) {
        Ok(r) => {
            if let Some(e) = &r.dns_error {
                eprintln!("postlens: DNSBL check not made: {e}");
            }
            if r.replayed_hours > 24 {
                eprintln!("postlens: insights: {} hours of history checked, {} insight(s) recorded", r.replayed_hours, r.created);
            }
            if let Some(n) = notifier {
                for (id, i) in &r.notify {
                    n.submit(crate::web::notification(*id, i, &s.language, s.ui_url.as_deref()));
                }
            }
        }
        Err(e) => eprintln!("postlens: insights: {e}"),
    }
}

/// Commits; a rollback is not an error here (the loop restarts).
async fn commit(p: &mut Pipeline, durable: bool) -> Result<(), IngestError> {
    match p.commit_async(durable).await {
        Err(IngestError::Store(StoreError::RolledBack)) => Ok(()),
        r => r,
    }
}

/// Before an overlay with raw lines: past `OVERLAY_MAX_RAW_BYTES` of raw
/// text not yet handed to the writer, commit it (non-durable) instead of
/// having the overlay copy it line by line. A burst then costs one more
/// commit, not megabytes of copies held while the reader runs. Not while
/// commits are failing: the reader must not wait for the writer then.
async fn ship_raw_for_reader(p: &mut Pipeline, streams: &HashMap<Arc<str>, StreamState>) -> Result<(), IngestError> {
    if p.unshipped_raw_bytes() > OVERLAY_MAX_RAW_BYTES && !p.stalled() {
        journal_checkpoint(p, streams);
        commit(p, false).await?;
    }
    Ok(())
}

/// `EventStream::next` without pulling in `futures`.
async fn futures_next<T: AsRef<[u8]> + AsMut<[u8]> + Unpin>(
    s: &mut inotify::EventStream<T>,
) -> Option<std::io::Result<inotify::Event<std::ffi::OsString>>> {
    std::future::poll_fn(|cx| tokio_stream_poll(s, cx)).await
}

fn tokio_stream_poll<T: AsRef<[u8]> + AsMut<[u8]> + Unpin>(
    s: &mut inotify::EventStream<T>,
    cx: &mut std::task::Context<'_>,
) -> std::task::Poll<Option<std::io::Result<inotify::Event<std::ffi::OsString>>>> {
    use futures_core::Stream;
    std::pin::Pin::new(s).poll_next(cx)
}

/// The journal's cursor is its checkpoint (sockets and stdin cannot be
/// re-read, so they have none).
fn journal_checkpoint(p: &mut Pipeline, streams: &HashMap<Arc<str>, StreamState>) {
    if let Some(s) = streams.get("journal") {
        let cp = Checkpoint {
            name: "journal".into(),
            offset: s.lines,
            cursor: s.cursor.clone(),
            last_time: p.newest(),
            ..Checkpoint::default()
        };
        p.set_checkpoint("journal", &cp);
    }
}

fn feed_chunk(p: &mut Pipeline, streams: &mut HashMap<Arc<str>, StreamState>, c: &Chunk) {
    let opts = p.options().clone();
    let st = streams.entry(c.source.clone()).or_insert_with(|| StreamState {
        res: Resolver::new(opts.tz.clone(), opts.starting_year.unwrap_or_else(|| start_year_for(crate::clock::now(), None, &opts.tz))),
        lines: 0,
        cursor: None,
    });
    for _ in 0..c.too_long {
        p.count_too_long();
    }
    for line in c.data.split(|&b| b == b'\n') {
        if line.is_empty() {
            continue;
        }
        p.feed(line, &mut st.res);
        st.lines += 1;
    }
    if c.cursor.is_some() {
        st.cursor.clone_from(&c.cursor);
    }
}

fn startup_summary(cfg: &RunConfig, groups: &[Group]) {
    eprintln!("postlens: workspace {}", cfg.workspace.display());
    for g in groups {
        let archives = g.history.len();
        let live = if g.live_path.exists() { "following" } else { "waiting for" };
        if archives > 0 || g.live_path.exists() {
            eprintln!("postlens: {live} {} ({archives} rotated archive(s) to import first)", g.live_path.display());
        }
    }
    if cfg.stdin {
        eprintln!("postlens: reading standard input");
    }
    for s in &cfg.sockets {
        eprintln!("postlens: listening for log lines on {}", s.name());
    }
    if cfg.journal {
        eprintln!("postlens: following the journal (mail facility)");
    }
    let days = cfg.opts.retention_secs / 86_400;
    let cap = cfg.opts.max_db_size.map_or_else(|| "no size cap".into(), |m| format!("at most {} MiB", m >> 20));
    eprintln!("postlens: keeping {days} days of data, {cap}; HTTP on {}", cfg.listen);
}

fn publish_status(live: &LiveStatus, p: &Pipeline, groups: &[Group], streams: &HashMap<Arc<str>, StreamState>) {
    let mut sources = Vec::new();
    for g in groups {
        for (name, offset, behind, last) in g.status() {
            sources.push(
                serde_json::json!({"name": name, "offset": offset, "behind": behind, "last_time": crate::clock::Timestamp(last).rfc3339_known()}),
            );
        }
    }
    for (name, s) in streams {
        sources.push(serde_json::json!({"name": name.as_ref(), "offset": s.lines, "behind": 0, "cursor": s.cursor, "last_time": crate::clock::Timestamp(p.newest()).rfc3339_known()}));
    }
    let v = serde_json::json!({
        "sources": sources,
        "stalled": p.stalled(),
        "uncommitted_lines": p.uncommitted(),
        "newest_line": crate::clock::Timestamp(p.newest()).rfc3339(),
    });
    if let Ok(mut l) = live.lock() {
        *l = v;
    }
}
