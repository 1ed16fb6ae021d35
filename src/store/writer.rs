//! The store writer thread: the one redb writer. The ingesting side hands it
//! owned [`Batch`]es over a bounded channel (capacity `WRITER_QUEUE`), so
//! encoding, compression and the commit overlap with parsing while memory
//! stays bounded: a full queue makes the sender wait.
//!
//! A failed commit (disk full, read-only file system) is retried with the
//! same batch until it succeeds: nothing is lost or reordered, the queue
//! fills, and ingestion pauses until space returns. Readers keep answering
//! meanwhile (MVCC).

use super::{Batch, Store, StoreError};
use crate::clock::Timestamp;
use crate::limits::{WRITE_RETRY_MS, WRITER_QUEUE};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use tokio::sync::{mpsc, oneshot};

pub struct Job {
    pub batch: Batch,
    pub durable: bool,
    /// Delete data older than this (and over `max_bytes`) after committing.
    pub retention: Option<(Timestamp, Option<u64>)>,
    /// Answered once this job is committed.
    pub ack: Option<oneshot::Sender<()>>,
}

pub struct Writer {
    tx: Option<mpsc::Sender<Job>>,
    /// Set while commits are failing (shown by `status`).
    stalled: Arc<AtomicBool>,
    handle: Option<JoinHandle<()>>,
}

impl Writer {
    /// Starts the writer thread.
    ///
    /// # Panics
    /// If the OS cannot start a thread at all (start-up only).
    pub fn spawn(store: Arc<Store>) -> Writer {
        let (tx, mut rx) = mpsc::channel::<Job>(WRITER_QUEUE);
        let stalled = Arc::new(AtomicBool::new(false));
        let flag = stalled.clone();
        let handle = std::thread::Builder::new()
            .name("postlens-writer".into())
            .spawn(move || {
                while let Some(mut job) = rx.blocking_recv() {
                    let mut delay = WRITE_RETRY_MS;
                    loop {
                        match store.commit(&mut job.batch, job.durable) {
                            Ok(()) => break,
                            Err(e) => {
                                if !flag.swap(true, Ordering::Relaxed) {
                                    eprintln!("postlens: commit failed: {e}; ingestion paused, retrying until it succeeds");
                                }
                                std::thread::sleep(std::time::Duration::from_millis(delay));
                                delay = (delay * 2).min(30_000);
                            }
                        }
                    }
                    if flag.swap(false, Ordering::Relaxed) {
                        eprintln!("postlens: commits succeed again; ingestion resumed");
                    }
                    if let Some((cutoff, max)) = job.retention
                        && let Err(e) = store.retention(cutoff, max, 64)
                    {
                        eprintln!("postlens: retention: {e}");
                    }
                    if let Some(a) = job.ack {
                        let _ = a.send(());
                    }
                }
            })
            .expect("spawning a thread at start-up");
        Writer { tx: Some(tx), stalled, handle: Some(handle) }
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
        arx.blocking_recv().map_err(|_| StoreError::WriterGone)
    }

    /// Queues a job, waiting asynchronously while the queue is full.
    ///
    /// # Errors
    /// The writer thread is gone.
    pub async fn send(&self, job: Job) -> Result<(), StoreError> {
        self.tx.as_ref().ok_or(StoreError::WriterGone)?.send(job).await.map_err(|_| StoreError::WriterGone)
    }

    /// A sender for async code that must not borrow the writer.
    pub fn sender(&self) -> Option<mpsc::Sender<Job>> {
        self.tx.clone()
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        drop(self.tx.take());
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}
