//! Ingestion: sources → line reader → format decoder → parser → tracker →
//! store writer. This module owns the per-source state (checkpoints, year
//! inference), the line counters and the commit cadence (every
//! `COMMIT_INTERVAL_MS` or `COMMIT_LINES`, data and checkpoint in one
//! transaction).

pub mod format;
pub mod reader;

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
    newest: i64,
    since_commit: u64,
    last_commit: Instant,
}

/// The (understood, unsupported) counters of `d`, without allocating on
/// the hot path once the daemon has been seen.
fn daemon_count(lines: &mut LineCounters, d: parse::Daemon) -> &mut (u64, u64) {
    let name = d.name();
    if !lines.per_daemon.contains_key(name) {
        lines.per_daemon.insert(name.to_owned(), (0, 0));
    }
    lines.per_daemon.get_mut(name).expect("inserted above")
}

/// FNV-1a of a source's first line: its identity across rename and
/// compression by logrotate.
fn line_hash(line: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in line {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

/// A reader that counts the (compressed) bytes it passes on, for progress.
struct Counting<R> {
    inner: R,
    n: ByteCounter,
}

impl<R: Read> Read for Counting<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.n.fetch_add(n as u64, std::sync::atomic::Ordering::Relaxed);
        Ok(n)
    }
}

type ByteCounter = Arc<std::sync::atomic::AtomicU64>;

/// Opens `path`, transparently decompressing gzip and bzip2 (by magic), on
/// a read-ahead thread.
fn open_decoded(path: &Path) -> io::Result<(Box<dyn Read>, ByteCounter)> {
    let (r, n) = open_plain(path)?;
    Ok((Box::new(reader::ThreadedRead::spawn(r)?), n))
}

/// [`open_decoded`] without the read-ahead thread (for peeking at the first line).
fn open_plain(path: &Path) -> io::Result<(Box<dyn Read + Send>, ByteCounter)> {
    let mut f = std::fs::File::open(path)?;
    let mut magic = [0u8; 3];
    let n = f.read(&mut magic)?;
    let f = std::fs::File::open(path)?;
    let counter = ByteCounter::default();
    let c = Counting { inner: f, n: counter.clone() };
    let r: Box<dyn Read + Send> = match &magic[..n] {
        [0x1f, 0x8b, ..] => Box::new(flate2::read::MultiGzDecoder::new(io::BufReader::new(c))),
        [b'B', b'Z', b'h'] => Box::new(bzip2::read::MultiBzDecoder::new(io::BufReader::new(c))),
        _ => Box::new(c),
    };
    Ok((r, counter))
}

impl Pipeline {
    /// Restores the tracker and counters from `store`.
    ///
    /// # Errors
    /// The store cannot be read.
    pub fn new(store: Store, opts: Options) -> Result<Pipeline, IngestError> {
        let r = store.restore()?;
        let store = Arc::new(store);
        Ok(Pipeline {
            writer: Writer::spawn(store.clone()),
            store,
            tracker: r.tracker,
            lines: r.lines,
            opts,
            scratch: Vec::new(),
            newest: i64::MIN,
            since_commit: 0,
            last_commit: Instant::now(),
        })
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    pub fn lines(&self) -> &LineCounters {
        &self.lines
    }

    /// Counts and feeds one raw line.
    fn feed(&mut self, raw: &[u8], res: &mut Resolver) {
        self.lines.read += 1;
        let Some(line) = format::decode(self.opts.format, raw, &mut self.scratch) else {
            self.lines.malformed += 1;
            return;
        };
        match parse::parse(line) {
            Ok(ev) => {
                if ev.daemon.is_dovecot() {
                    self.lines.dovecot += 1;
                } else {
                    self.lines.postfix += 1;
                }
                daemon_count(&mut self.lines, ev.daemon).0 += 1;
                let t = res.resolve(ev.time);
                self.newest = self.newest.max(t.0);
                self.tracker.push(&ev, t);
            }
            Err(Unparsed::Unsupported(d)) => {
                if d.is_dovecot() {
                    self.lines.dovecot += 1;
                } else {
                    self.lines.postfix += 1;
                }
                self.lines.unsupported += 1;
                daemon_count(&mut self.lines, d).1 += 1;
            }
            Err(Unparsed::OtherProgram) => self.lines.other += 1,
            Err(Unparsed::Malformed) => self.lines.malformed += 1,
        }
    }

    /// Commits everything produced so far with `checkpoints`.
    ///
    /// # Errors
    /// Database failure (nothing of this batch is then visible).
    pub fn commit(&mut self, checkpoints: Vec<(String, Checkpoint)>, durable: bool) -> Result<(), IngestError> {
        let out = self.tracker.drain();
        let batch = Batch {
            events: out.events,
            deliveries: out.deliveries,
            tracker: encode_tracker(&self.tracker)?,
            lines: self.lines.clone(),
            checkpoints,
        };
        let retention =
            (self.newest != i64::MIN).then(|| (Timestamp(self.newest.saturating_sub(self.opts.retention_secs)), self.opts.max_db_size));
        let job = Job { batch, durable, retention, ack: None };
        // A durable commit is a promise to the caller: wait for it.
        if durable {
            self.writer.send_and_wait(job)?;
        } else {
            self.writer.send(job)?;
        }
        self.since_commit = 0;
        self.last_commit = Instant::now();
        Ok(())
    }

    fn due(&self) -> bool {
        self.since_commit >= COMMIT_LINES || self.last_commit.elapsed() >= Duration::from_millis(COMMIT_INTERVAL_MS)
    }

    /// Imports one file from where its checkpoint left off.
    ///
    /// # Errors
    /// The file cannot be opened or read, or the store fails.
    pub fn import_path(&mut self, path: &Path, summary: &mut Summary) -> Result<(), IngestError> {
        let open_err = |source| IngestError::Open { path: path.to_owned(), source };
        let meta = std::fs::metadata(path).map_err(open_err)?;
        if meta.is_dir() {
            return Err(open_err(io::Error::new(io::ErrorKind::InvalidInput, "is a directory")));
        }
        let name = path.display().to_string();
        // Identity and first month from the first line.
        let (first_hash, first_month) = {
            let (r, _) = open_plain(path).map_err(open_err)?;
            let mut lr = LineReader::new(r);
            match lr.next_line(true).map_err(|source| IngestError::Read { name: name.clone(), source })? {
                Some(Line::Ok(l)) => (
                    line_hash(l),
                    match parse::parse(l).map(|e| e.time) {
                        Ok(parse::RawTime::Bsd { month, .. }) => Some(month),
                        _ => None,
                    },
                ),
                Some(Line::TooLong) => (0, None),
                None => return Ok(()),
            }
        };
        let key = format!("file:{first_hash:016x}");
        let prev = self.store.checkpoint(&key)?;
        let mtime = meta
            .modified()
            .ok()
            .and_then(|m| m.duration_since(std::time::UNIX_EPOCH).ok())
            .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(0));
        let year = self.opts.starting_year.unwrap_or_else(|| start_year_for(Timestamp(mtime), first_month, &self.opts.tz));
        let mut res = Resolver::new(self.opts.tz.clone(), year);
        let (r, counter) = open_decoded(path).map_err(open_err)?;
        let mut lr = LineReader::new(r);
        let mut cp = Checkpoint { name: name.clone(), year, ..Checkpoint::default() };
        {
            use std::os::unix::fs::MetadataExt;
            cp.dev = meta.dev();
            cp.ino = meta.ino();
        }
        if let Some(p) = prev {
            let skipped = lr.skip(p.offset).map_err(|source| IngestError::Read { name: name.clone(), source })?;
            summary.skipped_bytes += skipped;
            res = Resolver::resume(self.opts.tz.clone(), p.year, p.last_month);
        }
        let total = meta.len();
        let progress = self.opts.progress && std::io::IsTerminal::is_terminal(&std::io::stderr());
        let mut last_progress = Instant::now();
        let read_err = |source| IngestError::Read { name: name.clone(), source };
        loop {
            match lr.next_line(true).map_err(read_err)? {
                None => break,
                Some(Line::TooLong) => {
                    self.lines.read += 1;
                    self.lines.malformed += 1;
                    self.lines.too_long += 1;
                }
                Some(Line::Ok(l)) => {
                    summary.bytes += l.len() as u64 + 1;
                    self.feed(l, &mut res);
                }
            }
            summary.lines += 1;
            self.since_commit += 1;
            if self.since_commit.is_multiple_of(1024) && self.due() {
                cp.offset = lr.offset();
                (cp.year, cp.last_month) = res.state();
                cp.last_time = self.newest;
                self.commit(vec![(key.clone(), cp.clone())], false)?;
                if progress && last_progress.elapsed() >= Duration::from_millis(250) {
                    last_progress = Instant::now();
                    #[expect(clippy::cast_precision_loss, reason = "a percentage for display")]
                    let pct = 100.0 * counter.load(std::sync::atomic::Ordering::Relaxed) as f64 / total.max(1) as f64;
                    eprint!("\r{name}: {pct:5.1} %  {} lines", summary.lines);
                }
            }
        }
        if progress {
            eprintln!("\r{name}: 100.0 %  {} lines", summary.lines);
        }
        cp.offset = lr.offset();
        (cp.year, cp.last_month) = res.state();
        cp.last_time = self.newest;
        self.commit(vec![(key, cp)], true)?;
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
                Line::TooLong => {
                    self.lines.read += 1;
                    self.lines.malformed += 1;
                    self.lines.too_long += 1;
                }
                Line::Ok(l) => {
                    summary.bytes += l.len() as u64 + 1;
                    self.feed(l, &mut res);
                }
            }
            summary.lines += 1;
            self.since_commit += 1;
            if self.since_commit.is_multiple_of(1024) && self.due() {
                self.commit(Vec::new(), false)?;
            }
        }
        self.commit(Vec::new(), true)?;
        summary.files += 1;
        Ok(())
    }
}
