//! The redb store: schema, the batched writer and retention. Readers (stats,
//! search, report) live in `query`.
//!
//! Layout: deliveries and events are appended as compressed, time-ordered
//! blocks with a summary row each (see `blocks`); the tracker's in-flight
//! table, the lifetime line counters and every source checkpoint are written
//! in the *same* transaction as the records derived from those lines, so a
//! crash rolls all of them back together (exactly once). One writer; the
//! page cache is capped at `DB_CACHE_BYTES`.

#[cfg(test)]
mod analyze;
pub(crate) mod blocks;
mod columns;
#[cfg(test)]
mod format_tests;
mod insights;
mod kv;
pub(crate) mod levels;
pub mod query;
pub mod raw;
mod rollup;
pub mod writer;

use crate::clock::Timestamp;
use crate::limits::DB_CACHE_BYTES;
use crate::track::{DeliveryRec, EventRec, Tracker};
use blocks::CodecError;
use levels::Kind as _;
use redb::{Database, Durability, ReadableDatabase, ReadableTable, TableDefinition};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

const META: TableDefinition<&str, &[u8]> = TableDefinition::new("meta");
const CHECKPOINTS: TableDefinition<&str, &[u8]> = TableDefinition::new("checkpoints");
const EVENT_BLOCKS: TableDefinition<(u64, u16), &[u8]> = TableDefinition::new("event_blocks");
const EVENT_SUMS: TableDefinition<u64, &[u8]> = TableDefinition::new("event_sums");
const DELIVERY_BLOCKS: TableDefinition<(u64, u16), &[u8]> = TableDefinition::new("delivery_blocks");
const DELIVERY_SUMS: TableDefinition<u64, &[u8]> = TableDefinition::new("delivery_sums");

/// Per-hour counters by recipient domain: key = hour (u32, big-endian) ++
/// domain; value = [`DomainCounts`]. Hour resolution, for dashboards.
const DOMAIN_HOURS: TableDefinition<&[u8], &[u8]> = TableDefinition::new("domain_hours");

/// The same counters per UTC day: key = day (u32, big-endian) ++ domain.
/// Long windows read whole days here and only their edges per hour.
const DOMAIN_DAYS: TableDefinition<&[u8], &[u8]> = TableDefinition::new("domain_days");

/// All domains added, per hour: key = hour; value = [`DomainCounts`]
/// (the dashboard's chart over time).
const HOUR_TOTALS: TableDefinition<u32, &[u8]> = TableDefinition::new("hour_totals");

/// Authentication failures per hour and client IP: key = hour (u32,
/// big-endian) ++ IP; value = postcard `[smtp, imap, pop3, other]`.
const AUTH_HOURS: TableDefinition<&[u8], &[u8]> = TableDefinition::new("auth_hours");

/// Raw log lines: compressed blocks and their summaries (see `raw`).
const RAW_BLOCKS: TableDefinition<(u64, u16), &[u8]> = TableDefinition::new("raw_blocks");
const RAW_SUMS: TableDefinition<u64, &[u8]> = TableDefinition::new("raw_sums");

/// 2: blocks stored in pieces, open blocks merged by level, front-coded
/// raw lines; 3: per-day domain counters and hourly totals; 4: exact
/// hourly rollups of `stats` (see `rollup`), built from the blocks when a
/// version 3 store is opened; 5: sealed blocks columnar (`columns`; the
/// deflated postcard blocks of 4 are still read, so a version 4 store is
/// only relabelled); 6: the hour marks' values postcard, the late-decided
/// rollup keyed by one u64 (`rollup::MARKS`, `rollup::LATE`: two key and
/// value type pairs fewer; converted when a version 4 or 5 store is
/// opened); 7: open blocks plain postcard (`blocks::encode_open`; the LZ4
/// open blocks of 6 and before are still read, so a version 6 store is only
/// relabelled). Older stores (development builds only) are refused.
const SCHEMA_VERSION: u32 = 7;

pub(crate) type Tx = redb::WriteTransaction;

/// A raw log line and its time.
pub type RawLine = (Timestamp, Vec<u8>);

/// Final outcomes and deferrals of one recipient domain.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct DomainCounts {
    /// [sent, bounced, expired]
    pub outbound: [u64; 3],
    pub inbound: [u64; 3],
    pub deferrals: u64,
}

impl DomainCounts {
    pub fn add(&mut self, o: &DomainCounts) {
        for i in 0..3 {
            self.outbound[i] += o.outbound[i];
            self.inbound[i] += o.inbound[i];
        }
        self.deferrals += o.deferrals;
    }
    pub fn total(&self) -> u64 {
        self.outbound.iter().chain(&self.inbound).sum::<u64>() + self.deferrals
    }
}

/// Removes up to `limit` rows of a byte-keyed table whose keys sort
/// before `end` (retention of the per-hour and per-day counter tables).
/// Returns how many were removed and the bytes of their keys and values.
fn remove_before(
    tx: &redb::WriteTransaction,
    def: TableDefinition<&[u8], &[u8]>,
    end: &[u8],
    limit: usize,
) -> Result<(usize, u64), StoreError> {
    let mut t = tx.open_table(def)?;
    let doomed: Vec<Vec<u8>> = t.range(..end)?.take(limit).map(|r| r.map(|(k, _)| k.value().to_vec())).collect::<Result<_, _>>()?;
    let mut bytes = 0;
    for k in &doomed {
        if let Some(v) = t.remove(k.as_slice())? {
            bytes += (k.len() + v.value().len()) as u64;
        }
    }
    Ok((doomed.len(), bytes))
}

/// A number kept in the META table, as the snapshot `tx` has it.
fn meta_u32(tx: &redb::ReadTransaction, key: &str) -> Result<Option<u32>, StoreError> {
    Ok(tx.open_table(META)?.get(key)?.map(|v| postcard::from_bytes::<u32>(v.value())).transpose()?)
}

fn hour_of(t: i64) -> u32 {
    u32::try_from(t.max(0) / 3600).unwrap_or(u32::MAX)
}

fn domain_key(hour: u32, domain: &str) -> Vec<u8> {
    let mut k = Vec::with_capacity(4 + domain.len());
    k.extend_from_slice(&hour.to_be_bytes());
    k.extend_from_slice(domain.as_bytes());
    k
}
pub const DB_FILE: &str = "postlens.redb";

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    #[error("workspace {path}: {source}")]
    Workspace { path: PathBuf, source: std::io::Error },
    #[error("database: {0}")]
    Db(#[from] redb::Error),
    #[error("stored data could not be decoded: {0}")]
    Codec(#[from] CodecError),
    #[error("{path} is in use by a running postlens")]
    Locked { path: PathBuf },
    #[error("the database is being reopened after a write error (disk full or read-only?)")]
    Unavailable,
    #[error("the database lost its latest commits after a write error; ingestion restarts from the last durable commit")]
    RolledBack,
    #[error("stored document {key}: {reason}")]
    Document { key: String, reason: String },
    #[error("the database is being compacted; try again in a moment")]
    Busy,
    #[error("the store writer stopped")]
    WriterGone,
    #[error("database schema version {found} is newer than this postlens ({SCHEMA_VERSION}); upgrade postlens")]
    Schema { found: u32 },
    #[error("database schema version {found} was written by an early development build; move the workspace away and import the logs again")]
    OldSchema { found: u32 },
}

macro_rules! db_err {
    ($($t:ty),*) => {$(impl From<$t> for StoreError { fn from(e: $t) -> Self { StoreError::Db(e.into()) } })*};
}
db_err!(redb::DatabaseError, redb::TransactionError, redb::TableError, redb::StorageError, redb::CommitError, redb::SetDurabilityError);

impl From<postcard::Error> for StoreError {
    fn from(e: postcard::Error) -> Self {
        StoreError::Codec(CodecError::Postcard(e))
    }
}

/// Lifetime line counters (`lines` of stats; not windowed).
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct LineCounters {
    pub read: u64,
    pub postfix: u64,
    pub dovecot: u64,
    pub other: u64,
    pub unsupported: u64,
    pub malformed: u64,
    /// Over-long lines (also counted in `malformed`).
    pub too_long: u64,
    /// daemon name -> (understood, unsupported).
    pub per_daemon: BTreeMap<String, (u64, u64)>,
}

/// Where a source stopped: committed with the data derived from it.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct Checkpoint {
    /// Bytes of (decompressed) input consumed, always at a line boundary.
    pub offset: u64,
    pub dev: u64,
    pub ino: u64,
    /// Year-inference state for classic syslog lines.
    pub year: i32,
    pub last_month: u8,
    /// Display name (path) of the source when last seen.
    pub name: String,
    /// Log time of the last line read.
    pub last_time: i64,
    /// An archive read to its end (skipped at start-up without decoding).
    pub done: bool,
    /// Journal cursor after the last record read.
    pub cursor: Option<String>,
}

/// Read access to the open database.
pub(crate) struct DbGuard<'a>(std::sync::RwLockReadGuard<'a, Option<Database>>);

impl std::ops::Deref for DbGuard<'_> {
    type Target = Database;
    fn deref(&self) -> &Database {
        self.0.as_ref().expect("checked by Store::db")
    }
}

/// Everything one commit writes, owned so it can go to the writer thread.
pub struct Batch {
    /// The ingesting side's running number of this batch (committed in
    /// `meta`, so a reader's snapshot tells which batches it holds).
    pub number: u64,
    /// Shared with the daemon's overlay until the commit is visible.
    pub events: Arc<Vec<EventRec>>,
    pub deliveries: Arc<Vec<DeliveryRec>>,
    /// The tracker's in-flight table as of the checkpoints ([`encode_tracker`]).
    pub tracker: Vec<u8>,
    pub lines: LineCounters,
    pub checkpoints: Vec<(String, Checkpoint)>,
    /// Raw lines not yet in a sealed block, added since the last batch
    /// (stored as open blocks).
    pub raw: raw::RawLines,
    /// Full raw blocks the ingesting side encoded (summary row, key time,
    /// bytes): they replace every open raw block (whose lines they hold).
    pub raw_sealed: Vec<levels::Encoded>,
}

/// Encodes the tracker for a [`Batch`] (done by the ingesting thread, at the
/// exact point the checkpoints describe).
///
/// # Errors
/// Encoding failure.
pub fn encode_tracker(t: &Tracker) -> Result<Vec<u8>, StoreError> {
    // Rewritten with every commit: LZ4 (fast) rather than deflate (small).
    Ok(lz4_flex::block::compress_prepend_size(&postcard::to_allocvec(t)?))
}

fn decode_tracker(b: &[u8]) -> Result<Tracker, StoreError> {
    let raw = raw::lz4_decompress(b)
        .ok_or_else(|| StoreError::Codec(CodecError::Io(std::io::Error::new(std::io::ErrorKind::InvalidData, "tracker state"))))?;
    Ok(postcard::from_bytes(&raw)?)
}

/// State restored at start-up.
pub struct Restored {
    pub tracker: Tracker,
    pub lines: LineCounters,
    /// Raw lines of the open raw blocks (not yet in a sealed block).
    pub raw_open: raw::RawLines,
    /// The number of the last batch committed ([`Batch::number`]).
    pub batch: u64,
}

/// The number of the last batch `tx` sees committed ([`Batch::number`]).
///
/// # Errors
/// Database or decoding failure.
pub fn batch_in(tx: &redb::ReadTransaction) -> Result<u64, StoreError> {
    let meta = tx.open_table(META)?;
    Ok(meta.get("batch")?.map(|v| postcard::from_bytes::<u64>(v.value())).transpose()?.unwrap_or(0))
}

pub struct Store {
    /// `None` only while the database is being reopened after an I/O
    /// error (redb refuses further writes until it is reopened).
    db: std::sync::RwLock<Option<Database>>,
    path: PathBuf,
    seq: std::sync::atomic::AtomicU32,
    /// The number of the last batch this process committed.
    batch_done: std::sync::atomic::AtomicU64,
    /// Long windows' per-domain and per-IP sums over settled hours.
    sum_caches: query::SumCaches,
    /// Bumped by every change of the insights table this process makes
    /// (the only writer: redb allows one process per file), so that
    /// readers can keep what they derived from it until it changes.
    insights_gen: std::sync::atomic::AtomicU64,
    /// The last [`Store::space_report`] and when it was measured.
    space_report: std::sync::Mutex<Option<(Timestamp, Arc<SpaceReport>)>>,
    /// At least the file's free bytes (see [`Store::compaction_due`]);
    /// [`FREE_UNKNOWN`] until measured.
    free_hint: std::sync::atomic::AtomicU64,
    /// The open blocks' items as this process wrote them (see
    /// [`levels::OpenCache`]); cleared by a failed commit and a reopen.
    open_cache: std::sync::Mutex<levels::OpenCache>,
}

/// [`Store::free_hint`] of a file this process has not measured yet.
const FREE_UNKNOWN: u64 = u64::MAX;

/// Where the store's space goes (`status --json`).
pub struct SpaceReport {
    /// Raw lines: (lines, original bytes, stored bytes).
    pub raw: (u64, u64, u64),
    /// (stored, metadata, fragmented, allocated) bytes.
    pub space: (u64, u64, u64, u64),
    /// Per table: (name, stored bytes, fragmented bytes).
    pub tables: Vec<(&'static str, u64, u64)>,
    /// When it was measured.
    pub at: Timestamp,
}

impl Store {
    /// Opens (creating if needed) the store in `workspace`.
    ///
    /// # Errors
    /// The workspace cannot be created or the database opened.
    pub fn open(workspace: &Path) -> Result<Store, StoreError> {
        std::fs::create_dir_all(workspace).map_err(|source| StoreError::Workspace { path: workspace.to_owned(), source })?;
        let path = workspace.join(DB_FILE);
        // A file created now has no free pages to give back.
        let fresh = !path.exists();
        let db = match redb::Builder::new().set_cache_size(DB_CACHE_BYTES).create(&path) {
            Err(redb::DatabaseError::DatabaseAlreadyOpen) => return Err(StoreError::Locked { path }),
            r => r?,
        };
        let store = Store {
            db: std::sync::RwLock::new(Some(db)),
            path,
            seq: std::sync::atomic::AtomicU32::new(0),
            batch_done: std::sync::atomic::AtomicU64::new(0),
            sum_caches: query::SumCaches::default(),
            insights_gen: std::sync::atomic::AtomicU64::new(0),
            space_report: std::sync::Mutex::new(None),
            free_hint: std::sync::atomic::AtomicU64::new(if fresh { 0 } else { FREE_UNKNOWN }),
            open_cache: std::sync::Mutex::default(),
        };
        store.init()?;
        Ok(store)
    }

    /// Opens an existing store read-only in spirit (readers never write);
    /// fails with a clear error when the workspace has no database.
    ///
    /// # Errors
    /// No database in `workspace`, or it cannot be opened.
    pub fn open_existing(workspace: &Path) -> Result<Store, StoreError> {
        let path = workspace.join(DB_FILE);
        if !path.exists() {
            return Err(StoreError::Workspace {
                path: path.clone(),
                source: std::io::Error::new(std::io::ErrorKind::NotFound, "no postlens database here (run `postlens import` first)"),
            });
        }
        Store::open(workspace)
    }

    fn init(&self) -> Result<(), StoreError> {
        // Readers open the store too: write only when something is missing.
        {
            let tx = self.db()?.begin_read()?;
            if let Ok(meta) = tx.open_table(META) {
                let found = meta.get("schema")?.map(|v| postcard::from_bytes::<u32>(v.value())).transpose()?;
                if let Some(v) = found {
                    if v > SCHEMA_VERSION {
                        return Err(StoreError::Schema { found: v });
                    }
                    if v < 3 {
                        return Err(StoreError::OldSchema { found: v });
                    }
                    let seq = meta.get("seq")?.map(|v| postcard::from_bytes::<u32>(v.value())).transpose()?.unwrap_or(0);
                    // The next number is a new one: a transaction writes a
                    // `seq` no earlier state of the store had.
                    self.seq.store(seq.saturating_add(1), std::sync::atomic::Ordering::Relaxed);
                    if v == SCHEMA_VERSION && tx.open_table(RAW_SUMS).is_ok() {
                        return Ok(());
                    }
                }
            }
        }
        let tx = self.db()?.begin_write()?;
        {
            let mut meta = tx.open_table(META)?;
            let found = meta.get("schema")?.map(|v| postcard::from_bytes::<u32>(v.value())).transpose()?;
            let seq = meta.get("seq")?.map(|v| postcard::from_bytes::<u32>(v.value())).transpose()?.unwrap_or(0);
            self.seq.store(seq.saturating_add(1), std::sync::atomic::Ordering::Relaxed);
            match found {
                Some(v) if v > SCHEMA_VERSION => return Err(StoreError::Schema { found: v }),
                Some(v) if v < 3 => return Err(StoreError::OldSchema { found: v }),
                Some(SCHEMA_VERSION) => {}
                // A new store, or a version 6 one: its LZ4 open blocks are
                // read as they are; new open blocks are plain, which a
                // version 6 postlens cannot read.
                None | Some(6) => {
                    meta.insert("schema", postcard::to_allocvec(&SCHEMA_VERSION)?.as_slice())?;
                }
                Some(4 | 5) => {
                    // Blocks of 4 are read as they are; new sealed blocks
                    // are columnar, which a version 4 postlens cannot read.
                    rollup::convert_v5(&tx)?;
                    meta.insert("schema", postcard::to_allocvec(&SCHEMA_VERSION)?.as_slice())?;
                }
                Some(_) => {
                    // Version 3: the same data without the rollups.
                    eprintln!("postlens: building the hourly rollups of {} (once, after an upgrade)", self.path.display());
                    rollup::rebuild(&tx, self.next_seq())?;
                    // Later commits mark with later numbers.
                    let next = self.seq.load(std::sync::atomic::Ordering::Relaxed);
                    meta.insert("seq", postcard::to_allocvec(&next)?.as_slice())?;
                    meta.insert("schema", postcard::to_allocvec(&SCHEMA_VERSION)?.as_slice())?;
                }
            }
            tx.open_table(CHECKPOINTS)?;
            tx.open_table(EVENT_BLOCKS)?;
            tx.open_table(EVENT_SUMS)?;
            tx.open_table(DELIVERY_BLOCKS)?;
            tx.open_table(DELIVERY_SUMS)?;
            tx.open_table(DOMAIN_HOURS)?;
            tx.open_table(DOMAIN_DAYS)?;
            tx.open_table(HOUR_TOTALS)?;
            tx.open_table(AUTH_HOURS)?;
            tx.open_table(RAW_BLOCKS)?;
            tx.open_table(RAW_SUMS)?;
            tx.open_table(levels::OPEN_BLOCKS)?;
            tx.open_table(rollup::STATS_HOURS)?;
            tx.open_table(rollup::LATE)?;
            tx.open_table(rollup::MARKS)?;
        }
        tx.commit()?;
        Ok(())
    }

    /// The open database.
    ///
    /// # Errors
    /// It is being reopened after an I/O error and could not be yet.
    pub(crate) fn db(&self) -> Result<DbGuard<'_>, StoreError> {
        let g = self.db.read().unwrap_or_else(std::sync::PoisonError::into_inner);
        if g.is_none() {
            return Err(StoreError::Unavailable);
        }
        Ok(DbGuard(g))
    }

    /// Closes and reopens the database: after an I/O error (disk full,
    /// read-only file system) redb accepts no more writes until then. The
    /// reopen recovers the last commit. Waits until no reader holds it.
    ///
    /// # Errors
    /// The database cannot be opened (yet); the next call tries again.
    pub fn reopen(&self) -> Result<(), StoreError> {
        let mut g = self.db.write().unwrap_or_else(std::sync::PoisonError::into_inner);
        drop(g.take());
        let mut tries = 0;
        let db = loop {
            match redb::Builder::new().set_cache_size(DB_CACHE_BYTES).create(&self.path) {
                // Read transactions still hold the old file for a moment.
                Err(redb::DatabaseError::DatabaseAlreadyOpen) if tries < 50 => {
                    tries += 1;
                    std::thread::sleep(std::time::Duration::from_millis(20));
                }
                r => break r?,
            }
        };
        *g = Some(db);
        drop(g);
        self.sum_caches.clear();
        self.open_cache.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clear();
        self.free_hint.store(FREE_UNKNOWN, std::sync::atomic::Ordering::Relaxed);
        // Reload the block sequence as committed.
        self.init()
    }

    /// The file's free bytes when they are worth giving back by compacting:
    /// at least `COMPACT_MIN_FREE_BYTES` and `1 / COMPACT_FREE_PART` of the
    /// file's disk blocks. Only free pages that take disk space count:
    /// redb grows a file below 4 GiB by doubling its length, and the part
    /// never written stays sparse (the soak's 514 MiB file took 421 MiB of
    /// disk, its allocated pages 419 MiB); compacting would only shorten
    /// its length. Pages written and later freed (retention, a size cap,
    /// rewritten rows redb has not reused) do take disk. `None` when they
    /// are not worth it.
    ///
    /// Measuring reads every page of the file (a tenth of a second for a
    /// million lines' store, and an import asks after each file), so it is
    /// done only when it can find enough: the first time in this process
    /// (another may have left free pages), then only when what retention
    /// deleted since, added to the free bytes last measured, would be
    /// enough. The pages of rewritten open blocks and of redb's
    /// copy-on-write are not counted: redb reuses them for the next
    /// commits, so they never pile up.
    ///
    /// # Errors
    /// Database failure.
    pub fn compaction_due(&self) -> Result<Option<u64>, StoreError> {
        let worth = |free: u64, size: u64| free >= crate::limits::COMPACT_MIN_FREE_BYTES && free >= size / crate::limits::COMPACT_FREE_PART;
        let hint = self.free_hint.load(std::sync::atomic::Ordering::Relaxed);
        if hint != FREE_UNKNOWN && !worth(hint, self.disk_size()) {
            return Ok(None);
        }
        let (_, _, _, allocated) = self.space()?;
        let size = self.disk_size();
        let free = size.saturating_sub(allocated);
        self.free_hint.store(free, std::sync::atomic::Ordering::Relaxed);
        Ok(worth(free, size).then_some(free))
    }

    #[cfg(test)]
    pub(crate) fn free_hint(&self) -> u64 {
        self.free_hint.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Counts `bytes` deleted by retention towards [`Store::free_hint`].
    fn freed(&self, bytes: u64) {
        let _ = self.free_hint.fetch_update(std::sync::atomic::Ordering::Relaxed, std::sync::atomic::Ordering::Relaxed, |h| {
            (h != FREE_UNKNOWN).then(|| h.saturating_add(bytes).min(FREE_UNKNOWN - 1))
        });
    }

    /// Disk space the file takes (its blocks; at most its length).
    pub fn disk_size(&self) -> u64 {
        use std::os::unix::fs::MetadataExt as _;
        std::fs::metadata(&self.path).map_or(0, |m| m.blocks().saturating_mul(512).min(m.len()))
    }

    /// Compacts the file now. Returns bytes saved.
    ///
    /// redb compacts only with no read transaction open: new readers wait
    /// for the lock meanwhile ([`Store::snapshot`] does not: it fails at
    /// once, so the ingesting thread never waits), and those already
    /// reading get up to `COMPACT_WAIT_READERS_MS` to finish; if they have
    /// not, the compaction is skipped (the next check tries again).
    /// Compaction commits with redb's two-phase commit: a crash during it
    /// leaves the store as before or as after, whole.
    ///
    /// # Errors
    /// Database failure.
    pub fn compact_now(&self) -> Result<u64, StoreError> {
        let before = self.file_size();
        let mut g = self.db.write().unwrap_or_else(std::sync::PoisonError::into_inner);
        let mut waited = 0;
        if let Some(db) = g.as_mut() {
            loop {
                match db.compact() {
                    Ok(_) => break,
                    Err(redb::CompactionError::TransactionInProgress) if waited < crate::limits::COMPACT_WAIT_READERS_MS => {
                        std::thread::sleep(std::time::Duration::from_millis(5));
                        waited += 5;
                    }
                    Err(e) => return Err(StoreError::Db(e.into())),
                }
            }
        }
        drop(g);
        // Measured again at the next check.
        self.free_hint.store(FREE_UNKNOWN, std::sync::atomic::Ordering::Relaxed);
        Ok(before.saturating_sub(self.file_size()))
    }

    /// [`Store::raw_sizes`], [`Store::space`] and [`Store::table_space`]
    /// as measured at most `max_age` seconds before `now` (0: now). They
    /// read every table (and `space` waits for the writer), which a
    /// daemon's status poller would otherwise do on every call.
    ///
    /// # Errors
    /// Database or decoding failure.
    pub fn space_report(&self, now: Timestamp, max_age: i64) -> Result<Arc<SpaceReport>, StoreError> {
        let mut g = self.space_report.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some((at, r)) = g.as_ref()
            && max_age > 0
            && (at.0..=at.0 + max_age).contains(&now.0)
        {
            return Ok(r.clone());
        }
        let r = Arc::new(SpaceReport { raw: self.raw_sizes()?, space: self.space()?, tables: self.table_space()?, at: now });
        *g = Some((now, r.clone()));
        Ok(r)
    }

    /// redb's own accounting: (stored leaf bytes, metadata bytes,
    /// fragmented bytes, allocated pages × page size).
    ///
    /// # Errors
    /// Database failure.
    pub fn space(&self) -> Result<(u64, u64, u64, u64), StoreError> {
        let tx = self.db()?.begin_write()?;
        let st = tx.stats()?;
        let r = (st.stored_bytes(), st.metadata_bytes(), st.fragmented_bytes(), st.allocated_pages() * st.page_size() as u64);
        tx.abort()?;
        Ok(r)
    }

    /// Per table: (name, stored bytes, fragmented bytes), from redb's own
    /// accounting (where the space goes, for `status --json`).
    ///
    /// # Errors
    /// Database failure.
    pub fn table_space(&self) -> Result<Vec<(&'static str, u64, u64)>, StoreError> {
        fn one<K: redb::Key + 'static, V: redb::Value + 'static>(
            tx: &redb::ReadTransaction,
            def: TableDefinition<K, V>,
            out: &mut Vec<(&'static str, u64, u64)>,
            name: &'static str,
        ) -> Result<(), StoreError> {
            let st = redb::ReadableTableMetadata::stats(&tx.open_table(def)?)?;
            out.push((name, st.stored_bytes(), st.fragmented_bytes()));
            Ok(())
        }
        let tx = self.db()?.begin_read()?;
        let mut out = Vec::new();
        one(&tx, META, &mut out, "meta")?;
        one(&tx, CHECKPOINTS, &mut out, "checkpoints")?;
        one(&tx, EVENT_BLOCKS, &mut out, "event_blocks")?;
        one(&tx, EVENT_SUMS, &mut out, "event_sums")?;
        one(&tx, DELIVERY_BLOCKS, &mut out, "delivery_blocks")?;
        one(&tx, DELIVERY_SUMS, &mut out, "delivery_sums")?;
        one(&tx, DOMAIN_HOURS, &mut out, "domain_hours")?;
        one(&tx, DOMAIN_DAYS, &mut out, "domain_days")?;
        one(&tx, HOUR_TOTALS, &mut out, "hour_totals")?;
        one(&tx, AUTH_HOURS, &mut out, "auth_hours")?;
        one(&tx, RAW_BLOCKS, &mut out, "raw_blocks")?;
        one(&tx, RAW_SUMS, &mut out, "raw_sums")?;
        one(&tx, levels::OPEN_BLOCKS, &mut out, "open_blocks")?;
        one(&tx, rollup::STATS_HOURS, &mut out, "stats_hours")?;
        one(&tx, rollup::LATE, &mut out, "late_decided")?;
        one(&tx, rollup::MARKS, &mut out, "hour_marks")?;
        Ok(out)
    }

    /// Raw lines stored: (lines, original bytes, stored bytes).
    ///
    /// # Errors
    /// Database or decoding failure.
    pub fn raw_sizes(&self) -> Result<(u64, u64, u64), StoreError> {
        let tx = self.db()?.begin_read()?;
        let t = tx.open_table(RAW_SUMS)?;
        let mut r = (0, 0, 0);
        for row in t.iter()? {
            let (_, v) = row?;
            let s: raw::RawSummary = postcard::from_bytes(v.value())?;
            r.0 += u64::from(s.lines);
            r.1 += s.raw_bytes;
            r.2 += s.stored_bytes;
        }
        Ok(r)
    }

    /// Raw lines with times in the window, oldest first, skipping `skip`
    /// and returning at most `limit`.
    ///
    /// # Errors
    /// Database or decoding failure.
    pub fn raw_lines(&self, w: query::Window, skip: usize, limit: usize) -> Result<Vec<(Timestamp, Vec<u8>)>, StoreError> {
        self.raw_lines_live(w, skip, limit, None)
    }

    /// [`Store::raw_lines`] followed by a running daemon's lines not yet
    /// committed.
    ///
    /// # Errors
    /// Database or decoding failure.
    pub fn raw_lines_live(
        &self,
        w: query::Window,
        skip: usize,
        limit: usize,
        overlay: Option<&query::Overlay>,
    ) -> Result<Vec<(Timestamp, Vec<u8>)>, StoreError> {
        let (mut out, skipped) = self.raw_lines_committed(w, skip, limit)?;
        if let Some(o) = overlay
            && out.len() < limit
        {
            // The uncommitted lines are newer: skip what the committed part
            // could not.
            let mut to_skip = skip - skipped;
            for (t, l) in &o.raw {
                if !w.contains(*t) {
                    continue;
                }
                if to_skip > 0 {
                    to_skip -= 1;
                    continue;
                }
                out.push((Timestamp(*t), l.clone()));
                if out.len() >= limit {
                    break;
                }
            }
        }
        Ok(out)
    }

    /// Committed raw lines in the window after skipping `skip` of them, and
    /// how many were skipped (fewer than `skip` when the window holds fewer).
    /// Blocks wholly inside the window are skipped by their line count,
    /// without decoding.
    fn raw_lines_committed(&self, w: query::Window, skip: usize, limit: usize) -> Result<(Vec<RawLine>, usize), StoreError> {
        let tx = self.db()?.begin_read()?;
        let sums = tx.open_table(RAW_SUMS)?;
        let data = tx.open_table(RAW_BLOCKS)?;
        let mut out = Vec::new();
        let mut skipped = 0;
        for row in sums.iter()? {
            let (k, v) = row?;
            let s: raw::RawSummary = postcard::from_bytes(v.value())?;
            if !w.overlaps(s.min, s.max) {
                continue;
            }
            let inside = w.contains(s.min) && w.contains(s.max);
            if inside && skipped + s.lines as usize <= skip {
                skipped += s.lines as usize;
                continue;
            }
            if let Some(b) = levels::get_block(&data, k.value())? {
                for (t, l) in raw::decode_block(&b) {
                    if !w.contains(t) {
                        continue;
                    }
                    if skipped < skip {
                        skipped += 1;
                        continue;
                    }
                    out.push((Timestamp(t), l));
                    if out.len() >= limit {
                        return Ok((out, skipped));
                    }
                }
            }
        }
        Ok((out, skipped))
    }

    /// The committed raw lines in the window of the first block after the
    /// block key `after` (from the start when `None`) that holds any: the
    /// block's key and its lines. Lets a download stream block by block.
    ///
    /// # Errors
    /// Database or decoding failure.
    pub fn raw_block_after(&self, w: query::Window, after: Option<u64>) -> Result<Option<(u64, Vec<RawLine>)>, StoreError> {
        let tx = self.db()?.begin_read()?;
        let sums = tx.open_table(RAW_SUMS)?;
        let data = tx.open_table(RAW_BLOCKS)?;
        let range = match after {
            Some(a) => sums.range(a.saturating_add(1)..)?,
            None => sums.range(0..)?,
        };
        for row in range {
            let (k, v) = row?;
            let s: raw::RawSummary = postcard::from_bytes(v.value())?;
            if !w.overlaps(s.min, s.max) {
                continue;
            }
            let Some(b) = levels::get_block(&data, k.value())? else { continue };
            let lines: Vec<RawLine> =
                raw::decode_block(&b).into_iter().filter(|(t, _)| w.contains(*t)).map(|(t, l)| (Timestamp(t), l)).collect();
            if !lines.is_empty() {
                return Ok(Some((k.value(), lines)));
            }
        }
        Ok(None)
    }

    /// Raw lines in the window that contain any of `needles` (queue IDs),
    /// oldest first: at most `limit` lines, scanning at most `max_scan`
    /// bytes of text. Returns the lines and whether the scan was cut short.
    ///
    /// # Errors
    /// Database or decoding failure.
    pub fn raw_matching(
        &self,
        w: query::Window,
        needles: &[&str],
        limit: usize,
        max_scan: u64,
        overlay: Option<&query::Overlay>,
    ) -> Result<(Vec<RawLine>, bool), StoreError> {
        let (mut out, cut) = self.raw_matching_committed(w, needles, limit, max_scan)?;
        if let Some(o) = overlay
            && !cut
        {
            let finders: Vec<memchr::memmem::Finder<'_>> =
                needles.iter().filter(|n| !n.is_empty()).map(|n| memchr::memmem::Finder::new(n.as_bytes())).collect();
            for (t, l) in &o.raw {
                if w.contains(*t) && finders.iter().any(|f| f.find(l).is_some()) {
                    out.push((Timestamp(*t), l.clone()));
                    if out.len() >= limit {
                        return Ok((out, true));
                    }
                }
            }
        }
        Ok((out, cut))
    }

    fn raw_matching_committed(
        &self,
        w: query::Window,
        needles: &[&str],
        limit: usize,
        max_scan: u64,
    ) -> Result<(Vec<RawLine>, bool), StoreError> {
        let finders: Vec<memchr::memmem::Finder<'_>> =
            needles.iter().filter(|n| !n.is_empty()).map(|n| memchr::memmem::Finder::new(n.as_bytes())).collect();
        let tx = self.db()?.begin_read()?;
        let sums = tx.open_table(RAW_SUMS)?;
        let data = tx.open_table(RAW_BLOCKS)?;
        let mut out = Vec::new();
        let mut scanned = 0u64;
        // Keys order blocks by their first line: none from `to` on can match.
        let end = w.to.map_or(u64::MAX, |t| blocks::block_key(t.0, 0));
        for row in sums.range(..end)? {
            let (k, v) = row?;
            let s: raw::RawSummary = postcard::from_bytes(v.value())?;
            if !w.overlaps(s.min, s.max) {
                continue;
            }
            if scanned >= max_scan {
                return Ok((out, true));
            }
            scanned += s.raw_bytes;
            let Some(b) = levels::get_block(&data, k.value())? else { continue };
            for (t, l) in raw::decode_block(&b) {
                if w.contains(t) && finders.iter().any(|f| f.find(&l).is_some()) {
                    out.push((Timestamp(t), l));
                    if out.len() >= limit {
                        return Ok((out, true));
                    }
                }
            }
        }
        Ok((out, false))
    }

    /// The sequence number the last successful commit of this process
    /// stored (no database read: the writer calls it after every commit).
    pub fn written_seq(&self) -> u32 {
        self.seq.load(std::sync::atomic::Ordering::Relaxed).saturating_sub(1)
    }

    /// The block sequence number as last committed (grows with every
    /// commit that wrote blocks; used to notice a rollback after reopening).
    ///
    /// # Errors
    /// Database failure.
    pub fn committed_seq(&self) -> Result<u32, StoreError> {
        Ok(meta_u32(&self.db()?.begin_read()?, "seq")?.unwrap_or(0))
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Size of the database file in bytes.
    pub fn file_size(&self) -> u64 {
        std::fs::metadata(&self.path).map_or(0, |m| m.len())
    }

    /// The tracker and counters as last committed.
    ///
    /// # Errors
    /// Database or decoding failure.
    pub fn restore(&self) -> Result<Restored, StoreError> {
        let tx = self.db()?.begin_read()?;
        let meta = tx.open_table(META)?;
        let tracker = match meta.get("tracker")? {
            Some(v) => decode_tracker(v.value())?,
            None => Tracker::new(),
        };
        let lines = meta.get("lines")?.map(|v| postcard::from_bytes(v.value())).transpose()?.unwrap_or_default();
        let raw_open = levels::open_items::<levels::Raw>(&tx)?;
        drop(meta);
        let batch = batch_in(&tx)?;
        Ok(Restored { tracker, lines, raw_open, batch })
    }

    /// The checkpoint stored for `source`, if any.
    ///
    /// # Errors
    /// Database or decoding failure.
    pub fn checkpoint(&self, source: &str) -> Result<Option<Checkpoint>, StoreError> {
        let tx = self.db()?.begin_read()?;
        let t = tx.open_table(CHECKPOINTS)?;
        Ok(t.get(source)?.map(|v| postcard::from_bytes(v.value())).transpose()?)
    }

    /// All checkpoints (for `status`).
    ///
    /// # Errors
    /// Database or decoding failure.
    pub fn checkpoints(&self) -> Result<Vec<(String, Checkpoint)>, StoreError> {
        let tx = self.db()?.begin_read()?;
        let t = tx.open_table(CHECKPOINTS)?;
        let mut v = Vec::new();
        for row in t.iter()? {
            let (k, val) = row?;
            v.push((k.value().to_owned(), postcard::from_bytes(val.value())?));
        }
        Ok(v)
    }

    /// The number of the last batch this process committed (0: none yet).
    pub fn batch_done(&self) -> u64 {
        self.batch_done.load(std::sync::atomic::Ordering::Acquire)
    }

    /// A read snapshot, shareable between threads.
    ///
    /// Never waits: while the file is being compacted (or reopened) it fails with
    /// [`StoreError::Busy`] (the ingesting thread takes snapshots for its
    /// readers' overlays and must not stall). Readers that can wait use
    /// [`Store::snapshot_wait`].
    ///
    /// # Errors
    /// Database failure, or the file is being compacted.
    pub fn snapshot(&self) -> Result<Arc<redb::ReadTransaction>, StoreError> {
        let g = match self.db.try_read() {
            Ok(g) => g,
            Err(std::sync::TryLockError::Poisoned(p)) => p.into_inner(),
            Err(std::sync::TryLockError::WouldBlock) => return Err(StoreError::Busy),
        };
        match g.as_ref() {
            Some(db) => Ok(Arc::new(db.begin_read()?)),
            None => Err(StoreError::Unavailable),
        }
    }

    /// A read snapshot, waiting while the file is being compacted.
    ///
    /// # Errors
    /// Database failure.
    pub fn snapshot_wait(&self) -> Result<Arc<redb::ReadTransaction>, StoreError> {
        Ok(Arc::new(self.db()?.begin_read()?))
    }

    fn next_seq(&self) -> u32 {
        self.seq.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    }

    /// Writes one batch in one transaction. `durable = false` skips the
    /// fsync (a crash then rolls back to the last durable commit, data and
    /// checkpoints together). A failed commit leaves the batch as it was,
    /// to be retried; a successful one moves the records it left in open
    /// blocks out of `batch.events` and `batch.deliveries`.
    ///
    /// # Errors
    /// Database failure; nothing of the batch is then visible.
    pub fn commit(&self, batch: &mut Batch, durable: bool, retention: Option<(Timestamp, Option<u64>)>) -> Result<(), StoreError> {
        let mut cache = self.open_cache.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let r = self.commit_with(&mut cache, batch, durable, retention);
        if r.is_err() {
            // Rolled back: what the cache gained or lost is not in the file.
            cache.clear();
        }
        r
    }

    fn commit_with(
        &self,
        cache: &mut levels::OpenCache,
        batch: &mut Batch,
        durable: bool,
        retention: Option<(Timestamp, Option<u64>)>,
    ) -> Result<(), StoreError> {
        let mut tx = self.db()?.begin_write()?;
        if !durable {
            tx.set_durability(Durability::None)?;
        }
        {
            let mut agg: BTreeMap<(u32, String), DomainCounts> = BTreeMap::new();
            for d in batch.deliveries.iter() {
                let o = d.outcome().index();
                if o > 2 {
                    continue;
                }
                let dom = d.recipient_domain();
                let c = agg.entry((hour_of(d.time.0), dom)).or_default();
                match d.direction() {
                    crate::track::Direction::Outbound => c.outbound[o] += 1,
                    crate::track::Direction::Inbound => c.inbound[o] += 1,
                }
            }
            for e in batch.events.iter() {
                if let crate::track::EventKind::Deferral { domain } = &e.kind {
                    agg.entry((hour_of(e.time.0), domain.clone())).or_default().deferrals += 1;
                }
            }
            let mut days: BTreeMap<(u32, &str), DomainCounts> = BTreeMap::new();
            let mut hours: BTreeMap<u32, DomainCounts> = BTreeMap::new();
            for ((hour, dom), c) in &agg {
                days.entry((hour / 24, dom.as_str())).or_default().add(c);
                hours.entry(*hour).or_default().add(c);
            }
            let add = |t: &mut redb::Table<&[u8], &[u8]>, k: &[u8], c: &DomainCounts| -> Result<(), StoreError> {
                let mut cur: DomainCounts = t.get(k)?.map(|v| postcard::from_bytes(v.value())).transpose()?.unwrap_or_default();
                cur.add(c);
                t.insert(k, postcard::to_allocvec(&cur)?.as_slice())?;
                Ok(())
            };
            let mut dd = tx.open_table(DOMAIN_DAYS)?;
            for ((day, dom), c) in &days {
                add(&mut dd, &domain_key(*day, dom), c)?;
            }
            let mut ht = tx.open_table(HOUR_TOTALS)?;
            for (hour, c) in &hours {
                let mut cur: DomainCounts = ht.get(*hour)?.map(|v| postcard::from_bytes(v.value())).transpose()?.unwrap_or_default();
                cur.add(c);
                ht.insert(*hour, postcard::to_allocvec(&cur)?.as_slice())?;
            }
            let mut dh = tx.open_table(DOMAIN_HOURS)?;
            for ((hour, dom), c) in &agg {
                add(&mut dh, &domain_key(*hour, dom), c)?;
            }
            // The hours whose per-domain or per-IP counters change (the
            // query caches' validity marks) and the exact rollups.
            let mut touched: std::collections::BTreeSet<u32> = agg.keys().map(|(h, _)| *h).collect();
            let mut delta = rollup::Delta::default();
            delta.events(&batch.events);
            delta.deliveries(&batch.deliveries);
            delta.apply(&tx, false)?;
            let mut auth: BTreeMap<(u32, &str), [u64; 4]> = BTreeMap::new();
            for e in batch.events.iter() {
                if let crate::track::EventKind::AuthFailure { ip, proto, count } = &e.kind {
                    auth.entry((hour_of(e.time.0), ip.as_str())).or_default()[proto.index()] += u64::from(*count);
                }
            }
            touched.extend(auth.keys().map(|(h, _)| *h));
            rollup::mark_hours(&tx, touched, self.next_seq())?;
            let mut ah = tx.open_table(AUTH_HOURS)?;
            for ((hour, ip), c) in auth {
                let k = domain_key(hour, ip);
                let mut cur: [u64; 4] = ah.get(k.as_slice())?.map(|v| postcard::from_bytes(v.value())).transpose()?.unwrap_or_default();
                for i in 0..4 {
                    cur[i] += c[i];
                }
                ah.insert(k.as_slice(), postcard::to_allocvec(&cur)?.as_slice())?;
            }
            let mut seq = || self.next_seq();
            levels::add::<levels::Events>(&tx, cache, &batch.events, &mut seq)?;
            levels::add::<levels::Deliveries>(&tx, cache, &batch.deliveries, &mut seq)?;
            levels::replace_open::<levels::Raw>(&tx, &batch.raw_sealed, &mut seq)?;
            levels::add_open::<levels::Raw>(&tx, cache, &batch.raw, &mut seq)?;
            let mut cp = tx.open_table(CHECKPOINTS)?;
            for (name, c) in &batch.checkpoints {
                cp.insert(name.as_str(), postcard::to_allocvec(c)?.as_slice())?;
            }
            let mut meta = tx.open_table(META)?;
            meta.insert("tracker", batch.tracker.as_slice())?;
            meta.insert("lines", postcard::to_allocvec(&batch.lines)?.as_slice())?;
            // Every commit bumps the sequence, so a rollback is always visible.
            let seq = self.next_seq();
            meta.insert("seq", postcard::to_allocvec(&seq)?.as_slice())?;
            meta.insert("batch", postcard::to_allocvec(&batch.number)?.as_slice())?;
        }
        if let Some((cutoff, max)) = retention {
            self.retain(&tx, cutoff, max, 64)?;
        }
        tx.commit()?;
        cache.adopt(&mut batch.events, &mut batch.deliveries);
        self.batch_done.store(batch.number, std::sync::atomic::Ordering::Release);
        Ok(())
    }

    /// Deletes up to `max_blocks` of the oldest blocks whose records all
    /// precede `cutoff`, and, while the file is above `max_bytes`, the oldest
    /// blocks regardless of age. Small batches keep ingestion flowing.
    /// Returns the number of blocks deleted.
    ///
    /// # Errors
    /// Database failure.
    pub fn retention(&self, cutoff: Timestamp, max_bytes: Option<u64>, max_blocks: usize) -> Result<usize, StoreError> {
        let tx = self.db()?.begin_write()?;
        let deleted = self.retain(&tx, cutoff, max_bytes, max_blocks)?;
        tx.commit()?;
        Ok(deleted)
    }

    /// [`Store::retention`] inside the caller's transaction.
    fn retain(&self, tx: &Tx, cutoff: Timestamp, max_bytes: Option<u64>, max_blocks: usize) -> Result<usize, StoreError> {
        let over_size = max_bytes.is_some_and(|m| self.file_size() > m);
        let mut deleted = 0;
        // Bytes deleted (blocks, counter rows), towards the free-space hint.
        let mut freed = 0;
        {
            for (blocks_def, sums_def, kind) in [
                (DELIVERY_BLOCKS, DELIVERY_SUMS, levels::Deliveries::ID),
                (EVENT_BLOCKS, EVENT_SUMS, levels::Events::ID),
                (RAW_BLOCKS, RAW_SUMS, levels::Raw::ID),
            ] {
                let mut b = tx.open_table(blocks_def)?;
                let mut s = tx.open_table(sums_def)?;
                let mut doomed = Vec::new();
                for row in s.iter()? {
                    let (k, v) = row?;
                    // Every kind's summary row starts with its time span.
                    let max = postcard::from_bytes::<blocks::SpanHead>(v.value())?.max;
                    if max < cutoff.0 || over_size {
                        doomed.push(k.value());
                    } else if !over_size && (k.value() >> 24) > u64::try_from(cutoff.0.max(0)).unwrap_or(0) {
                        break;
                    }
                    if doomed.len() >= max_blocks {
                        break;
                    }
                }
                for k in doomed {
                    if kind != levels::Raw::ID
                        && let Some(bytes) = levels::get_block(&b, k)?
                    {
                        rollup::forget_block(tx, kind, &bytes)?;
                    }
                    freed += levels::remove_block(&mut b, k)?;
                    s.remove(k)?;
                    levels::forget(tx, kind, k)?;
                    deleted += 1;
                }
            }
            // Whole days only: a day partly inside retention stays.
            let (mut removed, bytes) = remove_before(tx, DOMAIN_DAYS, &domain_key(hour_of(cutoff.0) / 24, ""), max_blocks * 64)?;
            freed += bytes;
            let mut t = tx.open_table(HOUR_TOTALS)?;
            let doomed: Vec<u32> =
                t.range(..hour_of(cutoff.0))?.take(max_blocks * 64).map(|r| r.map(|(k, _)| k.value())).collect::<Result<_, _>>()?;
            for k in doomed {
                if let Some(v) = t.remove(k)? {
                    freed += 4 + v.value().len() as u64;
                }
            }
            let end = domain_key(hour_of(cutoff.0), "");
            for def in [DOMAIN_HOURS, AUTH_HOURS] {
                let (n, bytes) = remove_before(tx, def, &end, max_blocks * 64)?;
                removed += n;
                freed += bytes;
            }
            if deleted > 0 || removed > 0 {
                // The rollups or counters changed: a new commit number for
                // the readers' caches (`query::snapshot_seq`), also when
                // this runs outside a batch's commit.
                let seq = postcard::to_allocvec(&self.next_seq())?;
                let mut m = tx.open_table(META)?;
                m.insert("seq", seq.as_slice())?;
                if removed > 0 {
                    // Counters of hours before the cutoff's went: a cached
                    // sum over any of them is stale (see `query::cached`).
                    let frontier = match m.get("retained_hour")? {
                        Some(v) => postcard::from_bytes::<u32>(v.value())?,
                        None => 0,
                    }
                    .max(hour_of(cutoff.0));
                    m.insert("retained", seq.as_slice())?;
                    m.insert("retained_hour", postcard::to_allocvec(&frontier)?.as_slice())?;
                    // The marks of those hours go with them.
                    let mut g = tx.open_table(rollup::MARKS)?;
                    let old: Vec<u32> =
                        g.range(..hour_of(cutoff.0))?.take(max_blocks * 64).map(|r| r.map(|(k, _)| k.value())).collect::<Result<_, _>>()?;
                    for d in old {
                        g.remove(d)?;
                    }
                }
            }
        }
        self.freed(freed);
        Ok(deleted)
    }
}

#[cfg(test)]
mod tests {
    /// `status`' space figures: kept up to their age limit, then measured
    /// again (and always measured with no age allowed).
    #[test]
    fn space_report_is_kept_for_its_age_only() {
        use crate::clock::Timestamp;
        use std::sync::Arc;
        let d = std::env::temp_dir().join(format!("postlens-space-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        let s = super::Store::open(&d).unwrap();
        let first = s.space_report(Timestamp(1_000), 60).unwrap();
        assert!(first.space.3 > 0 && first.tables.iter().any(|t| t.0 == "raw_blocks"));
        assert!(Arc::ptr_eq(&first, &s.space_report(Timestamp(1_060), 60).unwrap()));
        let later = s.space_report(Timestamp(1_061), 60).unwrap();
        assert!(!Arc::ptr_eq(&first, &later) && later.at == Timestamp(1_061));
        assert!(!Arc::ptr_eq(&later, &s.space_report(Timestamp(1_061), 0).unwrap()));
        let _ = std::fs::remove_dir_all(&d);
    }
}
