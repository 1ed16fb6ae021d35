//! Ingestion: sources → line reader → format decoder → parser → tracker →
//! store writer. This module owns the per-source state (checkpoints, year
//! inference), the line counters and the commit cadence (every
//! `COMMIT_INTERVAL_MS` or `COMMIT_LINES`, data and checkpoint in one
//! transaction).

pub mod ahead;
pub mod file;
pub mod format;
pub mod progress;
pub mod reader;
pub mod stream;
pub mod watch;

use crate::clock::{Resolver, Timestamp, start_year_for};
use crate::limits::{COMMIT_INTERVAL_MS, COMMIT_LINES};
use crate::parse::{self, Unparsed};
use crate::store::writer::{Job, Writer};
use crate::store::{Batch, Checkpoint, LineCounters, Store, StoreError, encode_tracker};
use crate::track::Tracker;
pub use format::LogFormat;
use jiff::tz::TimeZone;
use reader::{Line, LineReader};
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum IngestError {
    #[error("{path}: {source}")]
    Open { path: PathBuf, source: io::Error },
    #[error("{name}: read error: {source}")]
    Read { name: String, source: io::Error },
    #[error(transparent)]
    Store(#[from] StoreError),
}

#[derive(Clone, Debug)]
pub struct Options {
    pub format: LogFormat,
    pub tz: TimeZone,
    pub starting_year: Option<i32>,
    pub progress: bool,
    /// Data older than this (before the newest log time) is deleted.
    pub retention_secs: i64,
    pub max_db_size: Option<u64>,
    /// Whether files read to their end are parsed on a thread of their own
    /// (`ahead`).
    pub parse_thread: ParseThread,
}

/// `--parse-thread`: parse on a thread of its own (`ahead`), beside the
/// thread that tracks the messages.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum ParseThread {
    /// When the machine has a core to spare for it.
    #[default]
    Auto,
    On,
    Off,
}

impl Options {
    /// Parse ahead, for a reader whose lines `busy` other threads already
    /// keep busy (an import: the ingesting thread and the writer). On two
    /// cores the import is slower with a third busy thread (1M lines,
    /// interleaved runs: 0.51-0.55 s inline, 0.55-0.58 s parsed ahead):
    /// all of them wait for each other more than parsing on its own core
    /// saves.
    pub fn parse_ahead(&self, busy: usize) -> bool {
        match self.parse_thread {
            ParseThread::On => true,
            ParseThread::Off => false,
            ParseThread::Auto => std::thread::available_parallelism().is_ok_and(|n| n.get() > busy),
        }
    }
}

#[cfg(test)]
impl Options {
    /// Tests: auto-detected format, UTC, year 2026, ten years kept.
    pub(crate) fn utc_2026() -> Options {
        Options {
            format: LogFormat::Default,
            tz: TimeZone::UTC,
            starting_year: Some(2026),
            progress: false,
            retention_secs: 3650 * 86_400,
            max_db_size: None,
            parse_thread: ParseThread::Off,
        }
    }
}

/// Counts of one import run.
#[derive(Clone, Debug, Default)]
pub struct Summary {
    pub files: u64,
    pub lines: u64,
    pub bytes: u64,
    pub skipped_bytes: u64,
}

/// The running pipeline with its restored state.
pub struct Pipeline {
    store: Arc<Store>,
    writer: Writer,
    tracker: Tracker,
    lines: LineCounters,
    opts: Options,
    scratch: Vec<u8>,
    /// Remembers the last line's time stamp (see [`parse::Parser`]).
    parser: parse::Parser,
    newest: i64,
    since_commit: u64,
    last_commit: Instant,
    last_durable: Instant,
    /// Per-daemon line counts not yet merged into `lines` (indexed by
    /// `Daemon as usize`: no map look-up per line).
    daemon_delta: [(u64, u64); parse::Daemon::ALL.len()],
    /// Raw lines not yet in a sealed block: those of the store's open raw
    /// blocks, then the ones since the last commit (`raw_shipped` is where
    /// those begin). Bounded by `RAW_BLOCK_BYTES` + `RAW_BATCH_BYTES`; in
    /// a one-shot import by `RAW_BLOCK_BYTES` (each block is sealed as it
    /// fills, into `raw_sealed`).
    raw: crate::store::raw::RawLines,
    raw_shipped: usize,
    /// Text bytes of `raw` after its last full-block boundary (where
    /// [`Pipeline::ship_raw`] will cut), and the full blocks before it: a
    /// bulk import commits right at a boundary, so no open raw block is
    /// written (and compressed) only to be replaced by the next commit.
    raw_acc: usize,
    raw_ready: usize,
    /// Raw blocks sealed since the last commit (a one-shot import seals
    /// each as it fills; see [`Pipeline::push_raw`]), and their bytes.
    raw_sealed: Vec<crate::store::levels::Encoded>,
    raw_sealed_bytes: usize,
    /// Source positions not yet handed to the writer.
    cps: std::collections::BTreeMap<String, Checkpoint>,
    /// Positions handed to the writer (possibly not committed yet), so a
    /// source reopened meanwhile resumes from them, not from the store.
    committed: std::collections::HashMap<String, Checkpoint>,
    /// Records taken from the tracker for readers but not shipped yet:
    /// frozen segments that overlays share instead of copying.
    frozen: Shipment,
    /// Batches handed to the writer and perhaps not committed yet, by
    /// number (bounded by the writer's queue: pruned as commits land).
    shipped: std::collections::VecDeque<(u64, Shipment)>,
    /// Whether [`Pipeline::overlay`] may be called (off for `import`: the
    /// writer then frees each batch, off the ingesting thread).
    readers: bool,
    /// A batch is full at this many lines (see [`Pipeline::batch_full`]):
    /// `COMMIT_LINES`, or a one-shot import's `IMPORT_COMMIT_LINES`.
    batch_lines: u64,
    /// The number the next batch gets ([`crate::store::Batch::number`]).
    next_batch: u64,
    /// The in-flight view as of a count of lines read (the tracker changes
    /// only when fed, so readers share one copy).
    inflight: Option<(u64, Arc<Vec<crate::track::DeliveryRec>>)>,
    /// Login failures and successes go to local protection too.
    protect: Option<crate::protect::Shared>,
}

/// Records in shared segments, oldest first.
#[derive(Default)]
struct Shipment {
    events: Vec<Arc<Vec<crate::track::EventRec>>>,
    deliveries: Vec<Arc<Vec<crate::track::DeliveryRec>>>,
}

/// One vector of the segments' records: the segment itself when it is the
/// only one and nobody else holds it, else a copy.
fn concat<T: Clone>(segments: Vec<Arc<Vec<T>>>) -> Vec<T> {
    if segments.len() == 1 {
        let mut it = segments.into_iter();
        return it.next().map(|s| Arc::try_unwrap(s).unwrap_or_else(|s| (*s).clone())).unwrap_or_default();
    }
    let mut out = Vec::with_capacity(segments.iter().map(|s| s.len()).sum());
    for s in segments {
        match Arc::try_unwrap(s) {
            Ok(v) => out.extend(v),
            Err(s) => out.extend_from_slice(&s),
        }
    }
    out
}

/// (full blocks, bytes after the last one) of `raw`, cut as
/// [`Pipeline::ship_raw`] seals: a block ends with the line that brings it
/// to `RAW_BLOCK_BYTES`.
fn block_fill(raw: &crate::store::raw::RawLines) -> (usize, usize) {
    let (mut full, mut acc) = (0, 0);
    for i in 0..raw.len() {
        acc += raw.line_bytes(i);
        if acc >= crate::limits::RAW_BLOCK_BYTES {
            full += 1;
            acc = 0;
        }
    }
    (full, acc)
}

/// Adds per-daemon counts gathered in a fixed array (the hot path) to the
/// named map of `lines`.
fn merge_daemon_counts(lines: &mut LineCounters, delta: &[(u64, u64); parse::Daemon::ALL.len()]) {
    for (d, &(ok, unsupported)) in parse::Daemon::ALL.iter().zip(delta) {
        if ok + unsupported > 0 {
            let e = lines.per_daemon.entry(d.name().to_owned()).or_default();
            e.0 += ok;
            e.1 += unsupported;
        }
    }
}

impl Pipeline {
    /// Restores the tracker and counters from `store`.
    ///
    /// # Errors
    /// The store cannot be read.
    pub fn new(store: Arc<Store>, opts: Options) -> Result<Pipeline, IngestError> {
        Pipeline::with(store, opts, crate::limits::WRITER_QUEUE, true)
    }

    /// [`Pipeline::new`] for a one-shot import: no reader will ask for an
    /// [`Pipeline::overlay`], so batches are not kept after they are handed
    /// to the writer, which frees them (a 1M-line import spent 3 % of the
    /// ingesting thread's instructions freeing its committed records); and
    /// the writer's queue is `IMPORT_WRITER_QUEUE` deep.
    ///
    /// # Errors
    /// The store cannot be read.
    pub fn bulk(store: Arc<Store>, opts: Options) -> Result<Pipeline, IngestError> {
        Pipeline::with(store, opts, crate::limits::IMPORT_WRITER_QUEUE, false)
    }

    fn with(store: Arc<Store>, opts: Options, queue: usize, readers: bool) -> Result<Pipeline, IngestError> {
        let r = store.restore()?;
        let raw_shipped = r.raw_open.len();
        let (raw_ready, raw_acc) = block_fill(&r.raw_open);
        Ok(Pipeline {
            writer: Writer::spawn(store.clone(), queue),
            store,
            tracker: r.tracker,
            lines: r.lines,
            opts,
            scratch: Vec::new(),
            parser: parse::Parser::new(),
            newest: i64::MIN,
            since_commit: 0,
            last_commit: Instant::now(),
            last_durable: Instant::now(),
            raw: r.raw_open,
            raw_shipped,
            raw_acc,
            raw_ready,
            raw_sealed: Vec::new(),
            raw_sealed_bytes: 0,
            daemon_delta: [(0, 0); parse::Daemon::ALL.len()],
            cps: std::collections::BTreeMap::new(),
            committed: std::collections::HashMap::new(),
            frozen: Shipment::default(),
            shipped: std::collections::VecDeque::new(),
            readers,
            batch_lines: if readers { COMMIT_LINES } else { crate::limits::IMPORT_COMMIT_LINES },
            next_batch: r.batch + 1,
            inflight: None,
            protect: None,
        })
    }

    /// Feeds logins seen from now on to `p` (`postlens run`).
    pub fn set_protect(&mut self, p: crate::protect::Shared) {
        self.protect = Some(p);
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    /// The lifetime line counters, up to the last line fed.
    pub fn lines(&mut self) -> &LineCounters {
        self.merge_counts();
        &self.lines
    }

    fn merge_counts(&mut self) {
        merge_daemon_counts(&mut self.lines, &self.daemon_delta);
        self.daemon_delta = [(0, 0); parse::Daemon::ALL.len()];
    }

    /// The store, shared with readers (control socket, HTTP).
    pub fn store_arc(&self) -> Arc<Store> {
        self.store.clone()
    }

    pub fn options(&self) -> &Options {
        &self.opts
    }

    /// Log time of the newest line seen.
    pub fn newest(&self) -> i64 {
        self.newest
    }

    /// Counts an over-long line (skipped by the reader).
    pub fn count_too_long(&mut self) {
        self.since_commit += 1;
        self.lines.read += 1;
        self.lines.malformed += 1;
        self.lines.too_long += 1;
    }

    /// Counts and feeds one raw line.
    pub fn feed(&mut self, raw: &[u8], res: &mut Resolver) {
        let mut scratch = std::mem::take(&mut self.scratch);
        if let Some(line) = format::decode(self.opts.format, raw, &mut scratch) {
            let parsed = self.parser.parse(line);
            self.feed_parsed(raw, &parsed, res);
        } else {
            self.since_commit += 1;
            self.lines.read += 1;
            self.lines.malformed += 1;
        }
        self.scratch = scratch;
    }

    /// Counts and feeds one raw line already parsed (by `ahead`): `parsed`
    /// is what [`parse::Parser`] made of it (after `format::decode`).
    pub fn feed_parsed(&mut self, raw: &[u8], parsed: &Result<parse::Event<'_>, Unparsed>, res: &mut Resolver) {
        self.since_commit += 1;
        self.lines.read += 1;
        match parsed {
            Ok(ev) => {
                if ev.daemon.is_dovecot() {
                    self.lines.dovecot += 1;
                } else {
                    self.lines.postfix += 1;
                }
                self.daemon_delta[ev.daemon as usize].0 += 1;
                let t = res.resolve(ev.time);
                self.newest = self.newest.max(t.0);
                self.tracker.push(ev, t);
                if let Some(p) = &self.protect {
                    crate::protect::observe_log(p, ev, t);
                }
                self.push_raw(t.0, raw);
                return;
            }
            &Err(Unparsed::Unsupported(d)) => {
                if d.is_dovecot() {
                    self.lines.dovecot += 1;
                } else {
                    self.lines.postfix += 1;
                }
                self.lines.unsupported += 1;
                self.daemon_delta[d as usize].1 += 1;
            }
            Err(Unparsed::OtherProgram) => self.lines.other += 1,
            Err(Unparsed::Malformed) => self.lines.malformed += 1,
        }
        // Lines without a usable time of their own are filed with the
        // previous line's (a multi-line continuation, another program).
        self.push_raw(res.last(), raw);
    }

    fn push_raw(&mut self, t: i64, line: &[u8]) {
        self.raw.push(t, line);
        self.raw_acc += line.len() + 1;
        if self.raw_acc >= crate::limits::RAW_BLOCK_BYTES {
            self.raw_ready += 1;
            self.raw_acc = 0;
            if !self.readers {
                // A one-shot import seals each block as it fills: a batch
                // then holds its raw text compressed, not plain.
                self.seal_raw();
            }
        }
    }

    /// Commits everything produced so far with `checkpoints`.
    ///
    /// # Errors
    /// Database failure (nothing of this batch is then visible).
    pub fn commit(&mut self, durable: bool) -> Result<(), IngestError> {
        let mut job = self.job(durable)?;
        // The end of a file's import: a good moment to give space back.
        job.compact = durable;
        // A durable commit is a promise to the caller: wait for it.
        if durable {
            self.writer.commit_blocking(job)?;
        } else {
            self.writer.send_blocking(job)?;
        }
        Ok(())
    }

    /// Commits from async code (the daemon), waiting for the writer's queue
    /// without blocking the runtime; `durable` waits for the fsync too.
    ///
    /// # Errors
    /// The writer is gone.
    pub async fn commit_async(&mut self, durable: bool) -> Result<(), IngestError> {
        let mut job = self.job(durable)?;
        let ack = if durable {
            let (tx, rx) = tokio::sync::oneshot::channel();
            job.ack = Some(tx);
            Some(rx)
        } else {
            None
        };
        self.writer.send(job).await?;
        if let Some(rx) = ack
            && rx.await.is_err()
        {
            return Err(if self.writer.rolled_back() { StoreError::RolledBack } else { StoreError::WriterGone }.into());
        }
        Ok(())
    }

    /// The store lost commits after a write error: this pipeline's state is
    /// ahead of it and must be rebuilt from the store.
    pub fn rolled_back(&self) -> bool {
        self.writer.rolled_back()
    }

    /// Waits until everything handed to the writer is committed (only
    /// readers of raw lines need it: those are not kept for overlays).
    ///
    /// # Errors
    /// The writer is gone.
    pub async fn settle(&self) -> Result<(), IngestError> {
        Ok(self.writer.barrier().await?)
    }

    /// Moves what the tracker produced since the last call into a frozen
    /// segment.
    /// Readers between two commits each add a segment: past
    /// `OVERLAY_MAX_SEGMENTS` they are joined into one.
    fn freeze(&mut self) {
        fn push<T: Clone>(segments: &mut Vec<Arc<Vec<T>>>, v: Vec<T>) {
            if v.is_empty() {
                return;
            }
            segments.push(Arc::new(v));
            if segments.len() > crate::limits::OVERLAY_MAX_SEGMENTS {
                let all = concat(std::mem::take(segments));
                segments.push(Arc::new(all));
            }
        }
        let out = self.tracker.drain();
        push(&mut self.frozen.events, out.events);
        push(&mut self.frozen.deliveries, out.deliveries);
    }

    /// Forgets shipped batches the store has committed.
    fn prune_shipped(&mut self) {
        let done = self.store.batch_done();
        while self.shipped.front().is_some_and(|(n, _)| *n <= done) {
            self.shipped.pop_front();
        }
    }

    /// The state a reader of a running daemon adds to the store: a read
    /// snapshot taken now and every record it does not hold yet. Answered
    /// at once, without waiting for the writer; with `raw`, the raw lines
    /// not yet committed too (call [`Pipeline::settle`] first then: raw
    /// lines in the writer's queue are not kept here).
    pub fn overlay(&mut self, raw: bool) -> crate::store::query::Overlay {
        debug_assert!(self.readers, "overlay of a pipeline without readers");
        self.freeze();
        self.prune_shipped();
        let tx = self.store.snapshot().ok();
        // Batches the snapshot holds are left out; without a snapshot the
        // reader takes its own later, which holds at least what is done now.
        let held = match &tx {
            Some(tx) => crate::store::batch_in(tx).unwrap_or(0),
            None => self.store.batch_done(),
        };
        let mut events = Vec::new();
        let mut deliveries = Vec::new();
        for (_, s) in self.shipped.iter().filter(|(n, _)| *n > held) {
            events.extend(s.events.iter().cloned());
            deliveries.extend(s.deliveries.iter().cloned());
        }
        events.extend(self.frozen.events.iter().cloned());
        deliveries.extend(self.frozen.deliveries.iter().cloned());
        let inflight = match &self.inflight {
            Some((at, v)) if *at == self.lines.read => v.clone(),
            _ => {
                let v = Arc::new(self.tracker.inflight_deliveries());
                self.inflight = Some((self.lines.read, v.clone()));
                v
            }
        };
        let mut lines = self.lines.clone();
        merge_daemon_counts(&mut lines, &self.daemon_delta);
        crate::store::query::Overlay {
            tx,
            raw: if raw {
                (self.raw_shipped..self.raw.len()).map(|i| (self.raw.times[i], self.raw.line(i).to_vec())).collect()
            } else {
                Vec::new()
            },
            events,
            deliveries,
            inflight,
            lines,
            evictions: self.tracker.counters.evictions,
        }
    }

    /// Commits are failing and being retried (disk full, read-only).
    pub fn stalled(&self) -> bool {
        self.writer.stalled()
    }

    /// Records where a source stands; committed with the next batch.
    pub fn set_checkpoint(&mut self, key: &str, cp: &Checkpoint) {
        match self.cps.get_mut(key) {
            Some(c) => c.clone_from(cp),
            None => {
                self.cps.insert(key.to_owned(), cp.clone());
            }
        }
    }

    /// The newest position of `key`: in memory (not yet committed) or stored.
    ///
    /// # Errors
    /// Store failure.
    pub fn checkpoint(&self, key: &str) -> Result<Option<Checkpoint>, IngestError> {
        if let Some(c) = self.cps.get(key).or_else(|| self.committed.get(key)) {
            return Ok(Some(c.clone()));
        }
        Ok(self.store.checkpoint(key)?)
    }

    /// Lines fed since the last commit.
    pub fn uncommitted(&self) -> u64 {
        self.since_commit
    }

    /// Text bytes of the raw lines not yet handed to the writer: what an
    /// [`Pipeline::overlay`] with raw lines copies.
    pub fn unshipped_raw_bytes(&self) -> usize {
        self.raw.bytes_from(self.raw_shipped)
    }

    fn job(&mut self, durable: bool) -> Result<Job, IngestError> {
        // redb cannot reuse pages freed after the last durable commit (a
        // crash must be able to return to it), so a long run of non-durable
        // commits grows the file and the writer's memory: during bulk
        // ingestion make one durable every DURABLE_BULK_MS.
        let durable = durable || self.last_durable.elapsed() >= Duration::from_millis(crate::limits::DURABLE_BULK_MS);
        if durable {
            self.last_durable = Instant::now();
        }
        let checkpoints: Vec<(String, Checkpoint)> = std::mem::take(&mut self.cps).into_iter().collect();
        // Remember what is queued until it is certainly visible in the store.
        for (k, c) in &checkpoints {
            self.committed.insert(k.clone(), c.clone());
        }
        if self.committed.len() > crate::limits::MAX_SOURCES {
            self.committed.clear();
        }
        self.merge_counts();
        self.freeze();
        self.prune_shipped();
        let frozen = std::mem::take(&mut self.frozen);
        let events = Arc::new(concat(frozen.events));
        let deliveries = Arc::new(concat(frozen.deliveries));
        let number = self.next_batch;
        self.next_batch += 1;
        if self.readers {
            self.shipped.push_back((number, Shipment { events: vec![events.clone()], deliveries: vec![deliveries.clone()] }));
        }
        let (raw, raw_sealed) = self.ship_raw();
        let batch = Batch {
            number,
            events,
            deliveries,
            tracker: encode_tracker(&self.tracker)?,
            lines: self.lines.clone(),
            checkpoints,
            raw,
            raw_sealed,
        };
        let retention =
            (self.newest != i64::MIN).then(|| (Timestamp(self.newest.saturating_sub(self.opts.retention_secs)), self.opts.max_db_size));
        self.since_commit = 0;
        self.last_commit = Instant::now();
        Ok(Job { batch: Some(batch), durable, retention, ack: None, compact: false })
    }

    /// Seals (encodes here, off the writer thread) every full raw block of
    /// `raw` into `raw_sealed`, dropping its lines.
    fn seal_raw(&mut self) {
        use crate::store::raw;
        let seal = crate::limits::RAW_BLOCK_BYTES;
        let mut start = 0;
        let mut acc = 0;
        for i in 0..self.raw.len() {
            acc += self.raw.line_bytes(i);
            if acc >= seal {
                // A one-shot import keeps the working buffers from block
                // to block; the daemon does not (they would stay in its RSS).
                let (sum, bytes) = if self.readers {
                    raw::encode_block(&self.raw, start..i + 1)
                } else {
                    raw::encode_block_reusing(&self.raw, start..i + 1)
                };
                // A summary always encodes.
                self.raw_sealed_bytes += bytes.len();
                self.raw_sealed.push((postcard::to_allocvec(&sum).unwrap_or_default(), sum.min, bytes));
                start = i + 1;
                acc = 0;
            }
        }
        if start > 0 {
            // Every shipped line was in the first sealed block.
            self.raw.drop_front(start);
            self.raw_shipped = 0;
        }
        // What is left is the part after the last boundary.
        debug_assert_eq!(block_fill(&self.raw), (0, self.raw_acc));
    }

    /// Seals every full raw block and returns the lines to store as an
    /// open block plus the sealed blocks.
    fn ship_raw(&mut self) -> (crate::store::raw::RawLines, Vec<crate::store::levels::Encoded>) {
        self.seal_raw();
        self.raw_ready = 0;
        let open = self.raw.copy(self.raw_shipped..self.raw.len());
        self.raw_shipped = self.raw.len();
        self.raw_sealed_bytes = 0;
        (open, std::mem::take(&mut self.raw_sealed))
    }

    fn due(&self) -> bool {
        self.batch_full() || self.last_commit.elapsed() >= Duration::from_millis(COMMIT_INTERVAL_MS)
    }

    /// The batch reached its line or raw-text bound: commit now.
    ///
    /// The raw-text bound is the memory the batch's raw lines take: full
    /// blocks waiting plain (the daemon seals them when it commits), or
    /// sealed ones (a one-shot import seals each as it fills: compressed,
    /// usually a quarter of the text, so its line bound comes first). It
    /// counts whole blocks: a batch ends as the last one fills, so the bound
    /// (`RAW_BATCH_BYTES` + `RAW_BLOCK_BYTES`, plus at most a line per
    /// block) is met with no partial block left over.
    pub fn batch_full(&self) -> bool {
        let plain = self.raw_ready.saturating_sub(self.raw_sealed.len()) * crate::limits::RAW_BLOCK_BYTES;
        self.since_commit >= self.batch_lines || plain + self.raw_sealed_bytes > crate::limits::RAW_BATCH_BYTES
    }

    /// Imports one file from where its checkpoint left off.
    ///
    /// # Errors
    /// The file cannot be opened or read, or the store fails.
    pub fn import_path(&mut self, path: &Path, summary: &mut Summary) -> Result<(), IngestError> {
        let Some(mut src) = file::FileSource::open(path, self, false)? else { return Ok(()) };
        summary.skipped_bytes += src.skipped;
        let mut progress = (self.opts.progress && std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .then(|| progress::Progress::new(path, std::fs::metadata(path).map_or(0, |m| m.len())));
        let first_line = summary.lines;
        loop {
            let start = src.offset();
            let (n, eof) = src.pump(self, 1024)?;
            summary.lines += n as u64;
            summary.bytes += src.offset() - start;
            if eof {
                break;
            }
            if let Some(p) = &mut progress {
                p.tick(src.disk_offset(), summary.lines - first_line);
            }
            if self.due() {
                self.commit(false)?;
            }
        }
        self.commit(true)?;
        if let Some(p) = &mut progress {
            p.finish(summary.lines - first_line);
        }
        summary.files += 1;
        Ok(())
    }

    /// Imports a stream (stdin) with no checkpoint: it cannot be re-read.
    ///
    /// # Errors
    /// Read or store failure.
    pub fn import_reader(&mut self, name: &str, r: impl Read, summary: &mut Summary) -> Result<(), IngestError> {
        let year = self.opts.starting_year.unwrap_or_else(|| start_year_for(crate::clock::now(), None, &self.opts.tz));
        let mut res = Resolver::new(self.opts.tz.clone(), year);
        let mut lr = LineReader::new(r);
        let read_err = |source| IngestError::Read { name: name.to_owned(), source };
        while let Some(l) = lr.next_line(true).map_err(read_err)? {
            match l {
                Line::TooLong => self.count_too_long(),
                Line::Ok(l) => {
                    summary.bytes += l.len() as u64 + 1;
                    self.feed(l, &mut res);
                }
            }
            summary.lines += 1;
            // The bounds at every line (a line can be `MAX_LINE` long), the
            // clock every 1024.
            if self.batch_full() || (self.since_commit.is_multiple_of(1024) && self.due()) {
                self.commit(false)?;
            }
        }
        self.commit(true)?;
        summary.files += 1;
        Ok(())
    }
}

#[cfg(test)]
mod batch_tests {
    use super::{Options, Pipeline};
    use crate::limits::{IMPORT_COMMIT_LINES, RAW_BATCH_BYTES, RAW_BLOCK_BYTES};
    use std::sync::Arc;

    /// Lines fed to a one-shot import's pipeline until its batch is full,
    /// and the compressed raw bytes it then holds.
    fn fill(tag: &str, mut line: impl FnMut(u64) -> String) -> (u64, usize) {
        let d = std::env::temp_dir().join(format!("postlens-batch-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        let store = Arc::new(crate::store::Store::open(&d).unwrap());
        let mut p = Pipeline::bulk(store, Options::utc_2026()).unwrap();
        let mut res = crate::clock::Resolver::new(jiff::tz::TimeZone::UTC, 2026);
        let mut n = 0;
        while !p.batch_full() {
            p.feed(line(n).as_bytes(), &mut res);
            n += 1;
        }
        let held = p.raw_sealed_bytes;
        drop(p);
        let _ = std::fs::remove_dir_all(&d);
        (n, held)
    }

    /// An import's batch is bounded by the bytes its sealed raw blocks
    /// take: lines LZ4 cannot shrink end it at `RAW_BATCH_BYTES` (a
    /// batch of 4 MiB of them took 29 MiB of RSS in flight), ordinary
    /// ones at its line bound.
    #[test]
    fn an_import_batch_holds_at_most_raw_batch_bytes_of_blocks() {
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        let (n, held) = fill("noise", |i| {
            let noise: String = (0..4000)
                .map(|_| {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    char::from(b'!' + u8::try_from(x % 90).unwrap_or(0))
                })
                .collect();
            format!("Oct  1 00:00:{:02} mail postfix/smtpd[1]: connect from x[192.0.2.1] {noise}", i % 60)
        });
        assert!(held > RAW_BATCH_BYTES && held <= RAW_BATCH_BYTES + RAW_BLOCK_BYTES, "{held} bytes after {n} lines");
        let (n, held) = fill("plain", |i| format!("Oct  1 00:00:{:02} mail postfix/smtpd[1]: connect from x[192.0.2.{}]", i % 60, i % 250));
        assert_eq!(n, IMPORT_COMMIT_LINES);
        assert!(held < RAW_BATCH_BYTES / 2, "{held}");
    }
}
