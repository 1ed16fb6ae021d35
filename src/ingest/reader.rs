//! The line reader: splits any byte stream into lines with one fixed buffer
//! (`READ_BUF`) and an explicit policy for over-long lines: a line longer
//! than `MAX_LINE` is skipped up to its newline and reported as
//! [`Line::TooLong`], never buffered whole. Tracks the byte offset after the
//! last complete line, which is what checkpoints store.
//!
//! A reader made with [`LineReader::read_ahead`] reads (and decompresses) on
//! a helper thread and takes over its filled chunks as its own buffer: the
//! bytes are not copied again, only the partial line at a chunk's end is
//! moved into the headroom in front of the next chunk.

use crate::limits::{MAX_LINE, READ_AHEAD_CHUNKS, READ_BUF, READ_CHUNK};
use std::io::{self, Read};

pub enum Line<'a> {
    Ok(&'a [u8]),
    TooLong,
}

pub struct LineReader<R> {
    inner: R,
    /// Chunks from the read-ahead thread; `inner` is not read when set.
    ahead: Option<ReadAhead>,
    /// Plain: a fixed buffer. Read-ahead: the current chunk.
    buf: Vec<u8>,
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
            ahead: None,
            buf: vec![0; READ_BUF.max(MAX_LINE * 2)],
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
        if let Some(a) = &self.ahead {
            let Some(mut next) = a.next()? else { return Ok(false) };
            let keep = &self.buf[self.start..self.end];
            // `next_line` drops a partial line longer than MAX_LINE before
            // filling, so it fits the headroom; the other branch only keeps
            // this free of a panic.
            if let Some(at) = HEADROOM.checked_sub(keep.len()) {
                next[at..HEADROOM].copy_from_slice(keep);
                self.start = at;
            } else {
                next.splice(..HEADROOM, keep.iter().copied());
                self.start = 0;
            }
            self.end = next.len();
            a.recycle(std::mem::replace(&mut self.buf, next));
            return Ok(true);
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
                if self.skipping && eof_line {
                    // An over-long last line without a newline.
                    self.offset += u64::try_from(rest).unwrap_or(0);
                    self.start = self.end;
                    self.skipping = false;
                    return Ok(Some(Line::TooLong));
                }
                if rest == 0 || !eof_line {
                    return Ok(None);
                }
                let s = self.start;
                self.start = self.end;
                self.offset += u64::try_from(rest).unwrap_or(0);
                return Ok(Some(Line::Ok(&self.buf[s..s + rest])));
            }
        }
    }
}

/// Bytes in front of each read-ahead chunk for the partial line carried
/// over from the previous one (at most `MAX_LINE`).
const HEADROOM: usize = MAX_LINE;

impl LineReader<Box<dyn Read + Send>> {
    /// A reader of `src` that reads (and decompresses) it on a helper
    /// thread, so system calls and gzip/bzip2 decoding overlap with parsing.
    /// At most `READ_AHEAD_CHUNKS` + 2 chunks of `READ_CHUNK` bytes exist at
    /// a time (they are recycled).
    ///
    /// # Errors
    /// The OS refused to start a thread.
    pub fn read_ahead(src: impl Read + Send + 'static) -> io::Result<Self> {
        let mut r = LineReader::new(Box::new(io::empty()) as Box<dyn Read + Send>);
        r.buf = Vec::new();
        r.ahead = Some(ReadAhead::spawn(src, READ_CHUNK)?);
        Ok(r)
    }
}

/// Reads into `buf[from..]` until it is full or the input ends (short
/// reads are common from decoders); returns where the data ends.
///
/// # Errors
/// I/O errors of `src`.
pub(super) fn fill(src: &mut impl Read, buf: &mut [u8], from: usize) -> io::Result<usize> {
    let mut n = from;
    while n < buf.len() {
        match src.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

/// The channel pair of a read-ahead thread: filled chunks in, spent ones
/// back for reuse.
struct ReadAhead {
    rx: std::sync::mpsc::Receiver<io::Result<Vec<u8>>>,
    back: std::sync::mpsc::SyncSender<Vec<u8>>,
}

impl ReadAhead {
    fn spawn(mut inner: impl Read + Send + 'static, chunk: usize) -> io::Result<ReadAhead> {
        let (tx, rx) = std::sync::mpsc::sync_channel::<io::Result<Vec<u8>>>(READ_AHEAD_CHUNKS);
        let (back, recycled) = std::sync::mpsc::sync_channel::<Vec<u8>>(READ_AHEAD_CHUNKS + 1);
        std::thread::Builder::new().name("postlens-read".into()).spawn(move || {
            let mut spare = Vec::new();
            loop {
                let mut buf = recycled.try_recv().ok().or_else(|| spare.pop()).unwrap_or_default();
                buf.resize(HEADROOM + chunk, 0);
                let n = match fill(&mut inner, &mut buf, HEADROOM) {
                    Ok(n) => n,
                    Err(e) => {
                        let _ = tx.send(Err(e));
                        return;
                    }
                };
                if n == HEADROOM {
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
        Ok(ReadAhead { rx, back })
    }

    /// The next chunk (data from `HEADROOM` on), `None` at end of input.
    fn next(&self) -> io::Result<Option<Vec<u8>>> {
        match self.rx.recv() {
            Ok(r) => r.map(Some),
            // The thread is gone: end of input, or after an error it sent.
            Err(_) => Ok(None),
        }
    }

    fn recycle(&self, buf: Vec<u8>) {
        if buf.capacity() > 0 {
            let _ = self.back.try_send(buf);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(input: &[u8]) -> Vec<Option<Vec<u8>>> {
        collect(LineReader::new(input), input)
    }

    /// The same through the read-ahead thread, with `chunk`-byte chunks so
    /// that lines straddle chunk boundaries.
    fn lines_ahead(input: &[u8], chunk: usize) -> Vec<Option<Vec<u8>>> {
        let mut r = LineReader::new(Box::new(io::empty()) as Box<dyn Read + Send>);
        r.buf = Vec::new();
        r.ahead = Some(ReadAhead::spawn(io::Cursor::new(input.to_vec()), chunk).expect("thread"));
        collect(r, input)
    }

    fn collect<R: Read>(mut r: LineReader<R>, input: &[u8]) -> Vec<Option<Vec<u8>>> {
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
        for chunk in [7, 4096, MAX_LINE + 3] {
            assert_eq!(lines_ahead(&big, chunk), [None, Some(b"ok".to_vec())], "chunk {chunk}");
        }
    }

    #[test]
    fn read_ahead_skips_to_a_checkpoint() {
        let input = b"one\ntwo\nthree\n";
        let mut r = LineReader::read_ahead(io::Cursor::new(input.to_vec())).expect("thread");
        assert_eq!(r.skip(4).expect("skip"), 4);
        assert!(matches!(r.next_line(true).expect("io"), Some(Line::Ok(b"two"))));
        assert_eq!(r.offset(), 8);
        assert!(matches!(r.next_line(true).expect("io"), Some(Line::Ok(b"three"))));
        assert!(r.next_line(true).expect("io").is_none());
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
            let chunk = 1 + input.len() % 97;
            proptest::prop_assert_eq!(&lines_ahead(&input, chunk), &got);
            let mut want: Vec<Option<Vec<u8>>> = input.split(|&c| c == b'\n').map(|l| if l.len() > MAX_LINE { None } else { Some(l.to_vec()) }).collect();
            if input.last() == Some(&b'\n') || input.is_empty() { want.pop(); }
            proptest::prop_assert_eq!(got, want);
        }
    }
}
