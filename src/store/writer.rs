//! The store writer thread: the one redb writer. The ingesting side hands it
//! owned [`Batch`]es over a bounded channel (capacity `WRITER_QUEUE`), so
//! encoding, compression and the commit overlap with parsing while memory
//! stays bounded: a full queue makes the sender wait.

use super::{Batch, Store, StoreError};
use crate::clock::Timestamp;
use crate::limits::WRITER_QUEUE;
use std::sync::Arc;
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::thread::JoinHandle;

pub struct Job {
    pub batch: Batch,
    pub durable: bool,
    /// Delete data older than this (and over `max_bytes`) after committing.
    pub retention: Option<(Timestamp, Option<u64>)>,
    /// Answered once this job is committed.
    pub ack: Option<SyncSender<()>>,
}

pub struct Writer {
    tx: Option<SyncSender<Job>>,
    err: Receiver<StoreError>,
    handle: Option<JoinHandle<()>>,
}

impl Writer {
    /// Starts the writer thread.
    ///
    /// # Panics
    /// If the OS cannot start a thread at all (start-up only).
    pub fn spawn(store: Arc<Store>) -> Writer {
        let (tx, rx) = sync_channel::<Job>(WRITER_QUEUE);
        let (etx, err) = sync_channel::<StoreError>(1);
        let handle = std::thread::Builder::new()
            .name("postlens-writer".into())
            .spawn(move || {
                for job in rx {
                    let r = store.commit(job.batch, job.durable).and_then(|()| match job.retention {
                        Some((cutoff, max)) => store.retention(cutoff, max, 64).map(|_| ()),
                        None => Ok(()),
                    });
                    if let Err(e) = r {
                        // The first error stops the writer; the sender sees it.
                        let _ = etx.try_send(e);
                        return;
                    }
                    if let Some(a) = job.ack {
                        let _ = a.send(());
                    }
                }
            })
            .expect("spawning a thread at start-up");
        Writer { tx: Some(tx), err, handle: Some(handle) }
    }

    fn check(&self) -> Result<(), StoreError> {
        match self.err.try_recv() {
            Ok(e) => Err(e),
            Err(_) => Ok(()),
        }
    }

    /// Queues a job (waits while the queue is full).
    ///
    /// # Errors
    /// An earlier commit failed.
    pub fn send(&self, job: Job) -> Result<(), StoreError> {
        self.check()?;
        let gone = || StoreError::WriterGone;
        self.tx.as_ref().ok_or_else(gone)?.send(job).map_err(|_| self.err.try_recv().unwrap_or(StoreError::WriterGone))
    }

    /// Queues a job and waits until it is committed.
    ///
    /// # Errors
    /// This or an earlier commit failed.
    pub fn send_and_wait(&self, mut job: Job) -> Result<(), StoreError> {
        let (atx, arx) = sync_channel(1);
        job.ack = Some(atx);
        self.send(job)?;
        arx.recv().map_err(|_| self.err.try_recv().unwrap_or(StoreError::WriterGone))
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
