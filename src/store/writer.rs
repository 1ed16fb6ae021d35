//! The store writer thread: the one redb writer. The ingesting side hands it
//! owned [`Batch`]es over a bounded channel (capacity `WRITER_QUEUE`, or
//! `IMPORT_WRITER_QUEUE` for an import), so
//! encoding, compression and the commit overlap with parsing while memory
//! stays bounded: a full queue makes the sender wait.
//!
//! A failed commit (disk full, read-only file system) is retried with the
//! same batch until it succeeds: nothing is lost or reordered, the queue
//! fills, and ingestion pauses until space returns. Readers keep answering
//! meanwhile (MVCC).
//!
//! Compaction runs here, between commits, so it never races a commit:
//! ingestion waits for it (the queue fills), readers wait for it or, for
//! the ingesting thread's snapshots, go without (see `Store::compact_now`).

use super::{Batch, Store, StoreError};
use crate::clock::Timestamp;
use crate::limits::WRITE_RETRY_MS;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use tokio::sync::{mpsc, oneshot};

pub struct Job {
    /// `None`: a barrier, answered once every earlier job is committed.
    pub batch: Option<Batch>,
    pub durable: bool,
    /// Delete data older than this (and over `max_bytes`) after committing.
    pub retention: Option<(Timestamp, Option<u64>)>,
    /// Answered once this job is committed.
    pub ack: Option<oneshot::Sender<()>>,
    /// Compact the file afterwards if enough of it is free (the end of an
    /// import). The writer also checks by itself, for files up to
    /// `COMPACT_LIVE_MAX_BYTES`, when a burst of `COMPACT_AFTER_LINES`
    /// lines is followed by `COMPACT_IDLE_MS` without a job (a catch-up
    /// ended), and at most every `COMPACT_EVERY_SECS`.
    pub compact: bool,
}

pub struct Writer {
    tx: Option<mpsc::Sender<Job>>,
    /// Set when the owner goes away: stop retrying a failing commit.
    stop: Arc<AtomicBool>,
    /// Set while commits are failing (shown by `status`).
    stalled: Arc<AtomicBool>,
    /// Set when a reopen after an I/O error lost commits: the ingesting
    /// side must restart from the store; jobs are dropped until then.
    rolled_back: Arc<AtomicBool>,
    handle: Option<JoinHandle<()>>,
}

impl Writer {
    /// Starts the writer thread.
    ///
    /// # Panics
    /// If the OS cannot start a thread at all (start-up only).
    pub fn spawn(store: Arc<Store>, queue: usize) -> Writer {
        let (tx, mut rx) = mpsc::channel::<Job>(queue);
        let stalled = Arc::new(AtomicBool::new(false));
        let flag = stalled.clone();
        let stop = Arc::new(AtomicBool::new(false));
        let stopping = stop.clone();
        let rolled_back = Arc::new(AtomicBool::new(false));
        let lost = rolled_back.clone();
        let handle = std::thread::Builder::new()
            .name("postlens-writer".into())
            .spawn(move || {
                let mut last_seq = store.committed_seq().unwrap_or(0);
                let mut last_compact = std::time::Instant::now();
                // Lines committed since the last compaction check, and the
                // lifetime line count of the last batch.
                let mut bulk = 0u64;
                let mut last_read: Option<u64> = None;
                'jobs: loop {
                    let job = if bulk >= crate::limits::COMPACT_AFTER_LINES {
                        // A burst (history import, catch-up): when no job comes
                        // for a moment it is over, and the pages it freed can go.
                        match next_job(&mut rx, std::time::Duration::from_millis(crate::limits::COMPACT_IDLE_MS)) {
                            Next::Job(j) => *j,
                            Next::Idle => {
                                bulk = 0;
                                last_compact = std::time::Instant::now();
                                compact(&store, Some(crate::limits::COMPACT_LIVE_MAX_BYTES));
                                continue;
                            }
                            Next::Closed => break,
                        }
                    } else {
                        match rx.blocking_recv() {
                            Some(j) => j,
                            None => break,
                        }
                    };
                    let Job { batch, durable, retention, ack, compact: compact_asked } = job;
                    let Some(mut batch) = batch else {
                        if let Some(a) = ack {
                            let _ = a.send(());
                        }
                        continue;
                    };
                    let job_ack = ack;
                    if lost.load(Ordering::Relaxed) {
                        // Built on state the store no longer has.
                        continue;
                    }
                    let mut delay = WRITE_RETRY_MS;
                    loop {
                        match store.commit(&mut batch, durable, retention) {
                            Ok(()) => {
                                last_seq = store.written_seq();
                                let read = batch.lines.read;
                                bulk += last_read.map_or(0, |r| read.saturating_sub(r));
                                last_read = Some(read);
                                break;
                            }
                            Err(e) => {
                                if stopping.load(Ordering::Relaxed) {
                                    // Shutting down: the positions were not committed
                                    // either, so those lines are read again next time.
                                    eprintln!("postlens: giving up the last commit ({e}); its lines will be read again at start-up");
                                    return;
                                }
                                if !flag.swap(true, Ordering::Relaxed) {
                                    eprintln!("postlens: commit failed: {e}; ingestion paused, retrying until it succeeds");
                                }
                                // redb takes no reads or writes after an I/O error until
                                // the database is reopened: reopen at once so readers
                                // keep answering (the reopen recovers the last commit).
                                match store.reopen() {
                                    Err(e) => eprintln!("postlens: reopening the database: {e}"),
                                    // Non-durable commits since the last durable one
                                    // may be gone: then start over from the store.
                                    Ok(()) if store.committed_seq().unwrap_or(0) < last_seq => {
                                        eprintln!("postlens: the database lost its latest commits; ingestion restarts from the last durable commit");
                                        last_seq = store.committed_seq().unwrap_or(0);
                                        lost.store(true, Ordering::Relaxed);
                                        flag.store(false, Ordering::Relaxed);
                                        drop(job_ack);
                                        continue 'jobs;
                                    }
                                    Ok(()) => {}
                                }
                                // Retry once space seems back (a failing write would
                                // shut readers out again), sleeping in short steps so a
                                // shutdown is noticed quickly.
                                loop {
                                    let until = std::time::Instant::now() + std::time::Duration::from_millis(delay);
                                    while std::time::Instant::now() < until && !stopping.load(Ordering::Relaxed) {
                                        std::thread::sleep(std::time::Duration::from_millis(50));
                                    }
                                    delay = (delay * 2).min(30_000);
                                    if stopping.load(Ordering::Relaxed) || space_for_writes(store.path()) {
                                        break;
                                    }
                                }
                            }
                        }
                    }
                    if flag.swap(false, Ordering::Relaxed) {
                        eprintln!("postlens: commits succeed again; ingestion resumed");
                    }
                    // When asked (end of an import), or after a durable commit
                    // with nothing queued behind it, at most every COMPACT_EVERY_SECS.
                    if compact_asked || (durable && rx.is_empty() && last_compact.elapsed().as_secs() >= crate::limits::COMPACT_EVERY_SECS) {
                        bulk = 0;
                        last_compact = std::time::Instant::now();
                        compact(&store, (!compact_asked).then_some(crate::limits::COMPACT_LIVE_MAX_BYTES));
                    }
                    if let Some(a) = job_ack {
                        let _ = a.send(());
                    }
                }
            })
            .expect("spawning a thread at start-up");
        Writer { tx: Some(tx), stop, stalled, rolled_back, handle: Some(handle) }
    }

    /// A rollback happened: restart ingestion from the store.
    pub fn rolled_back(&self) -> bool {
        self.rolled_back.load(Ordering::Relaxed)
    }

    /// The ingesting side restarted from the store.
    pub fn clear_rollback(&self) {
        self.rolled_back.store(false, Ordering::Relaxed);
    }

    /// Commits are currently failing and being retried.
    pub fn stalled(&self) -> bool {
        self.stalled.load(Ordering::Relaxed)
    }

    /// Queues a job, blocking while the queue is full (not in async code).
    ///
    /// # Errors
    /// The writer thread is gone.
    pub fn send_blocking(&self, job: Job) -> Result<(), StoreError> {
        if self.rolled_back() {
            return Err(StoreError::RolledBack);
        }
        self.tx.as_ref().ok_or(StoreError::WriterGone)?.blocking_send(job).map_err(|_| StoreError::WriterGone)
    }

    /// Queues a job and waits until it is committed (not in async code).
    ///
    /// # Errors
    /// The writer thread is gone.
    pub fn commit_blocking(&self, mut job: Job) -> Result<(), StoreError> {
        let (atx, arx) = oneshot::channel();
        job.ack = Some(atx);
        self.send_blocking(job)?;
        arx.blocking_recv().map_err(|_| if self.rolled_back() { StoreError::RolledBack } else { StoreError::WriterGone })
    }

    /// Queues a job, waiting asynchronously while the queue is full.
    ///
    /// # Errors
    /// The writer thread is gone.
    pub async fn send(&self, job: Job) -> Result<(), StoreError> {
        self.tx.as_ref().ok_or(StoreError::WriterGone)?.send(job).await.map_err(|_| StoreError::WriterGone)
    }

    /// Waits until every job queued so far is committed.
    ///
    /// # Errors
    /// The writer thread is gone.
    pub async fn barrier(&self) -> Result<(), StoreError> {
        let (atx, arx) = oneshot::channel();
        self.send(Job { batch: None, durable: false, retention: None, ack: Some(atx), compact: false }).await?;
        arx.await.map_err(|_| StoreError::WriterGone)
    }

    /// A sender for async code that must not borrow the writer.
    pub fn sender(&self) -> Option<mpsc::Sender<Job>> {
        self.tx.clone()
    }
}

enum Next {
    Job(Box<Job>),
    /// Nothing came within the wait.
    Idle,
    /// Every sender is gone.
    Closed,
}

/// The next job, or `Idle` when none comes within `wait`.
fn next_job(rx: &mut mpsc::Receiver<Job>, wait: std::time::Duration) -> Next {
    let until = std::time::Instant::now() + wait;
    loop {
        match rx.try_recv() {
            Ok(j) => return Next::Job(Box::new(j)),
            Err(mpsc::error::TryRecvError::Disconnected) => return Next::Closed,
            Err(mpsc::error::TryRecvError::Empty) if std::time::Instant::now() >= until => return Next::Idle,
            Err(mpsc::error::TryRecvError::Empty) => std::thread::sleep(std::time::Duration::from_millis(10)),
        }
    }
}

/// Gives the file's free pages back if they are worth it (see
/// [`Store::compaction_due`]); a failure is reported and left for the
/// next check. Files larger than `max_file` (when given) are left alone.
fn compact(store: &Store, max_file: Option<u64>) {
    if max_file.is_some_and(|m| store.disk_size() > m) {
        return;
    }
    let free = match store.compaction_due() {
        Ok(Some(free)) => free,
        Ok(None) => return,
        Err(e) => {
            eprintln!("postlens: measuring the database's free space: {e}");
            return;
        }
    };
    eprintln!("postlens: compacting the database ({} of {} MiB on disk free)", free >> 20, store.disk_size() >> 20);
    let t0 = std::time::Instant::now();
    match store.compact_now() {
        Ok(saved) => eprintln!("postlens: compacted the database: {} MiB shorter in {:.2} s", saved >> 20, t0.elapsed().as_secs_f64()),
        Err(e) => eprintln!("postlens: compacting the database: {e}"),
    }
}

/// Can a megabyte be written next to the database? (A probe file.)
fn space_for_writes(db: &std::path::Path) -> bool {
    let probe = db.with_extension("space-probe");
    let ok = std::fs::write(&probe, vec![0u8; 1 << 20]).is_ok();
    let _ = std::fs::remove_file(&probe);
    ok
}

impl Drop for Writer {
    fn drop(&mut self) {
        drop(self.tx.take());
        // Queued jobs are still committed; only a failing one is abandoned.
        self.stop.store(true, Ordering::Relaxed);
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}
