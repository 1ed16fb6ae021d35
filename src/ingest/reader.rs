//! The line reader: splits any byte stream into lines with one fixed buffer
//! (`READ_BUF`) and an explicit policy for over-long lines: a line longer
//! than `MAX_LINE` is skipped up to its newline and reported as
//! [`Line::TooLong`], never buffered whole. Tracks the byte offset after the
//! last complete line, which is what checkpoints store.

use crate::limits::{MAX_LINE, READ_BUF};
use std::io::{self, Read};

pub enum Line<'a> {
    Ok(&'a [u8]),
    TooLong,
}

pub struct LineReader<R> {
    inner: R,
    buf: Box<[u8]>,
    start: usize,
    end: usize,
    eof: bool,
    /// Skipping the tail of an over-long line.
    skipping: bool,
    /// Offset (in the stream) of `buf[start]`.
    offset: u64,
}

impl<R: Read> LineReader<R> {
    pub fn new(inner: R) -> Self {
        LineReader {
            inner,
            buf: vec![0; READ_BUF.max(MAX_LINE * 2)].into_boxed_slice(),
            start: 0,
            end: 0,
            eof: false,
            skipping: false,
            offset: 0,
        }
    }

    /// After end of input, read again (a followed file grew).
    pub fn rearm(&mut self) {
        self.eof = false;
    }

    /// Bytes consumed up to the end of the last line returned.
    pub fn offset(&self) -> u64 {
        self.offset
    }

    /// Reads and discards `n` bytes (resuming at a checkpoint).
    ///
    /// # Errors
    /// I/O errors of the underlying reader.
    pub fn skip(&mut self, mut n: u64) -> io::Result<u64> {
        let mut skipped = 0;
        while n > 0 {
            if self.start == self.end && !self.fill()? {
                break;
            }
            let avail = u64::try_from(self.end - self.start).unwrap_or(u64::MAX);
            let take = avail.min(n);
            let t = usize::try_from(take).unwrap_or(usize::MAX);
            self.start += t;
            self.offset += take;
            skipped += take;
            n -= take;
        }
        Ok(skipped)
    }

    fn fill(&mut self) -> io::Result<bool> {
        if self.eof {
            return Ok(false);
        }
        if self.start > 0 {
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
        if self.end == self.buf.len() {
            return Ok(true);
        }
        loop {
            match self.inner.read(&mut self.buf[self.end..]) {
                Ok(0) => {
                    self.eof = true;
                    return Ok(false);
                }
                Ok(n) => {
                    self.end += n;
                    return Ok(true);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
    }

    /// The next line without its newline, or `None` at end of input. A final
    /// line without a newline is returned only at end of input (`eof_line`):
    /// for a followed file, a partial last line waits for its newline.
    ///
    /// # Errors
    /// I/O errors of the underlying reader.
    pub fn next_line(&mut self, eof_line: bool) -> io::Result<Option<Line<'_>>> {
        loop {
            if let Some(i) = memchr::memchr(b'\n', &self.buf[self.start..self.end]) {
                let (s, e) = (self.start, self.start + i);
                self.start = e + 1;
                self.offset += u64::try_from(i + 1).unwrap_or(0);
                if self.skipping {
                    self.skipping = false;
                    return Ok(Some(Line::TooLong));
                }
                if i > MAX_LINE {
                    return Ok(Some(Line::TooLong));
                }
                return Ok(Some(Line::Ok(&self.buf[s..e])));
            }
            let pending = self.end - self.start;
            if pending > MAX_LINE {
                // Over-long: drop what we have, keep skipping to the newline.
                self.offset += u64::try_from(pending).unwrap_or(0);
                self.start = self.end;
                self.skipping = true;
            }
            if !self.fill()? {
                let rest = self.end - self.start;
                if rest == 0 || !eof_line {
                    return Ok(None);
                }
                let s = self.start;
                self.start = self.end;
                self.offset += u64::try_from(rest).unwrap_or(0);
                if self.skipping {
                    self.skipping = false;
                    return Ok(Some(Line::TooLong));
                }
                return Ok(Some(Line::Ok(&self.buf[s..s + rest])));
            }
        }
    }
}

/// Reads (and decompresses) a source on a helper thread, handing over
/// filled chunks through a bounded channel, so system calls and gzip/bzip2
/// decoding overlap with parsing. At most `READ_AHEAD_CHUNKS` chunks of
/// `READ_CHUNK` bytes exist at a time (they are recycled).
pub struct ThreadedRead {
    rx: std::sync::mpsc::Receiver<io::Result<Vec<u8>>>,
    back: std::sync::mpsc::SyncSender<Vec<u8>>,
    cur: Vec<u8>,
    pos: usize,
    done: bool,
}

impl ThreadedRead {
    /// Starts the reading thread.
    ///
    /// # Errors
    /// The OS refused to start a thread.
    pub fn spawn(mut inner: impl Read + Send + 'static) -> io::Result<ThreadedRead> {
        use crate::limits::{READ_AHEAD_CHUNKS, READ_CHUNK};
        let (tx, rx) = std::sync::mpsc::sync_channel::<io::Result<Vec<u8>>>(READ_AHEAD_CHUNKS);
        let (back, recycled) = std::sync::mpsc::sync_channel::<Vec<u8>>(READ_AHEAD_CHUNKS + 1);
        std::thread::Builder::new().name("postlens-read".into()).spawn(move || {
            let mut spare = Vec::new();
            loop {
                let mut buf = recycled.try_recv().ok().or_else(|| spare.pop()).unwrap_or_default();
                buf.resize(READ_CHUNK, 0);
                let mut n = 0;
                // Fill the chunk (short reads are common from decoders).
                while n < buf.len() {
                    match inner.read(&mut buf[n..]) {
                        Ok(0) => break,
                        Ok(k) => n += k,
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                        Err(e) => {
                            let _ = tx.send(Err(e));
                            return;
                        }
                    }
                }
                if n == 0 {
                    return;
                }
                buf.truncate(n);
                if tx.send(Ok(buf)).is_err() {
                    return;
                }
                if spare.is_empty()
                    && let Ok(b) = recycled.try_recv()
                {
                    spare.push(b);
                }
            }
        })?;
        Ok(ThreadedRead { rx, back, cur: Vec::new(), pos: 0, done: false })
    }
}

impl Read for ThreadedRead {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        while self.pos == self.cur.len() {
            if self.done {
                return Ok(0);
            }
            match self.rx.recv() {
                Ok(Ok(next)) => {
                    let old = std::mem::replace(&mut self.cur, next);
                    let _ = self.back.try_send(old);
                    self.pos = 0;
                }
                Ok(Err(e)) => {
                    self.done = true;
                    return Err(e);
                }
                Err(_) => {
                    self.done = true;
                    return Ok(0);
                }
            }
        }
        let n = out.len().min(self.cur.len() - self.pos);
        out[..n].copy_from_slice(&self.cur[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(input: &[u8]) -> Vec<Option<Vec<u8>>> {
        let mut r = LineReader::new(input);
        let mut v = Vec::new();
        while let Some(l) = r.next_line(true).expect("read") {
            v.push(match l {
                Line::Ok(b) => Some(b.to_vec()),
                Line::TooLong => None,
            });
        }
        assert_eq!(r.offset(), input.len() as u64);
        v
    }

    #[test]
    fn splits_and_reports_long_lines() {
        assert_eq!(lines(b"a\nbb\n\nc"), [Some(b"a".to_vec()), Some(b"bb".to_vec()), Some(vec![]), Some(b"c".to_vec())]);
        let mut big = vec![b'x'; MAX_LINE * 5];
        big.extend_from_slice(b"\nok\n");
        assert_eq!(lines(&big), [None, Some(b"ok".to_vec())]);
    }

    #[test]
    fn partial_last_line_waits_when_following() {
        let mut r = LineReader::new(&b"a\npart"[..]);
        assert!(matches!(r.next_line(false).expect("io"), Some(Line::Ok(b"a"))));
        assert!(r.next_line(false).expect("io").is_none());
        assert_eq!(r.offset(), 2);
    }

    proptest::proptest! {
        #[test]
        fn matches_naive_split(input in proptest::collection::vec(proptest::prop_oneof![proptest::strategy::Just(b'\n'), proptest::prelude::any::<u8>()], 0..4000)) {
            let got = lines(&input);
            let mut want: Vec<Option<Vec<u8>>> = input.split(|&c| c == b'\n').map(|l| if l.len() > MAX_LINE { None } else { Some(l.to_vec()) }).collect();
            if input.last() == Some(&b'\n') || input.is_empty() { want.pop(); }
            proptest::prop_assert_eq!(got, want);
        }
    }
}
