//! The parse-ahead reader of a file read to its end (an import, an archive):
//! a helper thread reads (and decompresses) the file, splits it into lines
//! and parses each one, so parsing runs beside the thread that tracks the
//! messages and builds the batches, not on it.
//!
//! The thread reads chunks of up to `PARSE_CHUNK` bytes of whole lines and
//! hands over up to `PARSE_LINES` parsed lines at a time, each batch with
//! the chunk its lines borrow from (a [`yoke::Yoke`]: the events point into
//! the chunk they travel with; a chunk of many short lines goes over in
//! several batches that share it). Chunks and line lists are handed back and
//! reused, so at most `READ_AHEAD_CHUNKS` + 3 of each exist at a time,
//! whatever the input. Lines are cut as [`super::reader::LineReader`] cuts
//! them: a line longer than `MAX_LINE` is skipped up to its newline and
//! reported as [`Item::TooLong`], a last line without a newline is a line.
//!
//! Only the formats whose lines are parsed as they are use it: a Logstash
//! record is decoded first, by the ingesting thread.

use crate::limits::{MAX_LINE, PARSE_CHUNK, PARSE_LINES, READ_AHEAD_CHUNKS};
use crate::parse::{Event, Parser, Unparsed};
use std::io::{self, Read};
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::sync::{Arc, Mutex};
use yoke::{Yoke, Yokeable};

/// One line as the reader hands it over.
#[derive(Debug)]
#[expect(
    clippy::large_enum_variant,
    reason = "nearly every item is a line; a box per line would cost more than the rare over-long one saves"
)]
pub enum Item<'a> {
    /// A line without its newline, and what it means.
    Line { raw: &'a [u8], parsed: Result<Event<'a>, Unparsed> },
    /// A line longer than `MAX_LINE`, skipped; `bytes` with its newline.
    TooLong { bytes: u64 },
}

#[derive(Yokeable)]
struct Lines<'a> {
    items: Vec<Item<'a>>,
    /// The last item ends the input without a newline.
    unterminated: bool,
}

/// Parsed lines and the chunk of text they borrow from.
type Chunk = Yoke<Lines<'static>, Arc<Vec<u8>>>;

enum Msg {
    /// The first message: bytes skipped (fewer at a short end).
    Skipped(u64),
    Chunk(Chunk),
}

/// Spent chunks and line lists on their way back to the reading thread. (A
/// list behind a lock, not another channel: each channel type is 10-20 KB
/// of code.)
#[derive(Default)]
struct Spent {
    chunks: Vec<Vec<u8>>,
    lists: Vec<Vec<Item<'static>>>,
}

type Pool = Arc<Mutex<Spent>>;

/// Takes a spent chunk or line list from the pool (`None`: make one).
fn take<T>(pool: &Pool, pick: impl FnOnce(&mut Spent) -> &mut Vec<T>) -> Option<T> {
    pick(&mut pool.lock().unwrap_or_else(std::sync::PoisonError::into_inner)).pop()
}

/// Returns a spent chunk or line list to the pool; beyond what can be in
/// flight at once, it is dropped.
fn give<T>(pool: &Pool, pick: impl FnOnce(&mut Spent) -> &mut Vec<T>, x: T) {
    let mut spent = pool.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    let list = pick(&mut spent);
    if list.len() < READ_AHEAD_CHUNKS + 3 {
        list.push(x);
    }
}

pub struct ParseAhead {
    /// The skip was not answered yet.
    starting: bool,
    rx: Receiver<io::Result<Msg>>,
    pool: Pool,
    cur: Option<Chunk>,
    /// The next item of `cur`.
    pos: usize,
    /// Offset (in the stream) after the last item returned.
    offset: u64,
}

impl std::fmt::Debug for ParseAhead {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ParseAhead").field("offset", &self.offset).finish_non_exhaustive()
    }
}

/// Bytes in front of each chunk for the partial line carried over from the
/// one before (at most `MAX_LINE`).
const HEADROOM: usize = MAX_LINE;

impl ParseAhead {
    /// A reader of `src` from `skip` bytes in (resuming at a checkpoint)
    /// that reads and parses on a helper thread.
    ///
    /// # Errors
    /// The OS refused to start a thread.
    pub fn spawn(src: impl Read + Send + 'static, skip: u64) -> io::Result<ParseAhead> {
        Self::with_chunk(src, skip, PARSE_CHUNK)
    }

    fn with_chunk(mut src: impl Read + Send + 'static, skip: u64, chunk: usize) -> io::Result<ParseAhead> {
        let (tx, rx) = sync_channel::<io::Result<Msg>>(READ_AHEAD_CHUNKS);
        let pool = Pool::default();
        let spent = pool.clone();
        std::thread::Builder::new().name("postlens-parse".into()).spawn(move || {
            let mut w = Worker { spent, chunk, parser: Parser::new(), skipping: 0 };
            // (Bytes read and dropped: a compressed file cannot seek.)
            let r = io::copy(&mut (&mut src).take(skip), &mut io::sink()).and_then(|n| {
                tx.send(Ok(Msg::Skipped(n))).map_err(|_| io::ErrorKind::BrokenPipe)?;
                w.run(&mut src, &tx)
            });
            if let Err(e) = r {
                let _ = tx.send(Err(e));
            }
        })?;
        Ok(ParseAhead { starting: true, rx, pool, cur: None, pos: 0, offset: 0 })
    }

    /// Bytes consumed up to the end of the last line returned.
    pub fn offset(&self) -> u64 {
        self.offset
    }

    /// How many bytes were skipped of the `skip` asked for (fewer when the
    /// input is shorter); 0 once lines were read.
    ///
    /// # Errors
    /// I/O errors of the source.
    pub fn skipped(&mut self) -> io::Result<u64> {
        if !std::mem::take(&mut self.starting) {
            return Ok(0);
        }
        match self.rx.recv() {
            Ok(Ok(Msg::Skipped(k))) => {
                self.offset += k;
                Ok(k)
            }
            Ok(Ok(Msg::Chunk(_))) => Err(io::Error::other("parse-ahead: a chunk before the skip")),
            Ok(Err(e)) => Err(e),
            // The thread is gone only after an error it sent.
            Err(_) => Ok(0),
        }
    }

    /// The next line, or `None` at end of input.
    ///
    /// # Errors
    /// I/O errors of the source (the thread then stops).
    pub fn next_line(&mut self) -> io::Result<Option<&Item<'_>>> {
        if self.starting {
            self.skipped()?;
        }
        loop {
            let n = self.cur.as_ref().map_or(0, |c| c.get().items.len());
            if self.pos < n {
                break;
            }
            if let Some(c) = self.cur.take() {
                recycle(&self.pool, c);
            }
            self.pos = 0;
            match self.rx.recv() {
                Ok(Ok(Msg::Chunk(c))) => self.cur = Some(c),
                Ok(Ok(Msg::Skipped(_))) => return Err(io::Error::other("parse-ahead: started twice")),
                Ok(Err(e)) => return Err(e),
                // The thread is gone: end of input.
                Err(_) => return Ok(None),
            }
        }
        let i = self.pos;
        self.pos += 1;
        let Some(lines) = self.cur.as_ref().map(Yoke::get) else { return Ok(None) };
        let Some(item) = lines.items.get(i) else { return Ok(None) };
        self.offset += match item {
            Item::Line { raw, .. } => raw.len() as u64 + u64::from(!(lines.unterminated && i + 1 == lines.items.len())),
            Item::TooLong { bytes } => *bytes,
        };
        Ok(Some(item))
    }
}

/// Hands a spent batch's line list back, and its chunk once no other batch
/// borrows from it.
fn recycle(pool: &Pool, mut c: Chunk) {
    give(pool, |s| &mut s.lists, c.with_mut_return(|l| reuse(std::mem::take(&mut l.items))));
    if let Some(chunk) = Arc::into_inner(c.into_backing_cart()) {
        give(pool, |s| &mut s.chunks, chunk);
    }
}

/// An emptied list of lines, its lifetime released so it can be filled
/// from another chunk (the collect keeps the allocation: same layout).
#[expect(clippy::unnecessary_filter_map, reason = "the map changes the items' lifetime, which a filter cannot")]
fn reuse(mut items: Vec<Item<'_>>) -> Vec<Item<'static>> {
    items.clear();
    items.into_iter().filter_map(|_| None).collect()
}

/// The reading thread's state.
struct Worker {
    spent: Pool,
    chunk: usize,
    parser: Parser,
    /// Bytes of an over-long line skipped so far (0: not skipping).
    skipping: u64,
}

impl Worker {
    fn chunk(&self) -> Vec<u8> {
        let mut buf = take(&self.spent, |s| &mut s.chunks).unwrap_or_default();
        buf.resize(HEADROOM + self.chunk, 0);
        buf
    }

    /// Reads to the end, sending batches of parsed lines.
    fn run(&mut self, src: &mut impl Read, tx: &SyncSender<io::Result<Msg>>) -> io::Result<()> {
        let mut buf = self.chunk();
        // Lines start at `from`: the carried partial line is in front of HEADROOM.
        let mut from = HEADROOM;
        loop {
            let end = super::reader::fill(src, &mut buf, HEADROOM)?;
            let eof = end < buf.len();
            buf.truncate(end);
            // Whole lines end at `cut`; at the end of input, the rest is a line.
            let cut = if eof { end } else { memchr::memrchr(b'\n', &buf[from..end]).map_or(from, |i| from + i + 1) };
            let mut next = self.chunk();
            let tail = end - cut;
            // An over-long partial line, or more of one: skipped (counted
            // once the lines before it are parsed).
            let skip_tail = tail > MAX_LINE || (self.skipping > 0 && cut == from);
            let next_from = if skip_tail {
                HEADROOM
            } else {
                next[HEADROOM - tail..HEADROOM].copy_from_slice(&buf[cut..end]);
                HEADROOM - tail
            };
            buf.truncate(cut);
            let cart = Arc::new(buf);
            loop {
                let lines = self.lines(cart.clone(), &mut from, eof);
                // (What is left of the region always holds a line: the
                // emptiness check only rules out a loop without progress.)
                let empty = lines.get().items.is_empty();
                if empty {
                    recycle(&self.spent, lines);
                } else {
                    tx.send(Ok(Msg::Chunk(lines))).map_err(|_| io::ErrorKind::BrokenPipe)?;
                }
                if empty || from >= cut {
                    break;
                }
            }
            if skip_tail {
                self.skipping += tail as u64;
            }
            if eof {
                return Ok(());
            }
            (buf, from) = (next, next_from);
        }
    }

    /// Parses up to `PARSE_LINES` lines of `cart[*at..]` (ending in a
    /// newline unless `eof`) and moves `at` past them.
    fn lines(&mut self, cart: Arc<Vec<u8>>, at: &mut usize, eof: bool) -> Chunk {
        let parser = &mut self.parser;
        let skipping = &mut self.skipping;
        let items = take(&self.spent, |s| &mut s.lists).unwrap_or_default();
        Yoke::attach_to_cart(cart, move |b: &Vec<u8>| {
            let mut items: Vec<Item<'_>> = items;
            let mut unterminated = false;
            let mut rest = &b[(*at).min(b.len())..];
            while !rest.is_empty() && items.len() < PARSE_LINES {
                let (line, after) = match memchr::memchr(b'\n', rest) {
                    Some(i) => (&rest[..i], &rest[i + 1..]),
                    None if eof => (rest, &rest[rest.len()..]),
                    None => break,
                };
                let newline = u64::from(after.len() < rest.len() - line.len());
                unterminated = newline == 0;
                rest = after;
                if *skipping > 0 {
                    items.push(Item::TooLong { bytes: *skipping + line.len() as u64 + newline });
                    *skipping = 0;
                } else if line.len() > MAX_LINE {
                    items.push(Item::TooLong { bytes: line.len() as u64 + newline });
                } else {
                    items.push(Item::Line { raw: line, parsed: parser.parse(line) });
                }
            }
            if eof && rest.is_empty() && *skipping > 0 {
                items.push(Item::TooLong { bytes: *skipping });
                *skipping = 0;
                unterminated = false;
            }
            *at = b.len() - rest.len();
            Lines { items, unterminated }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ingest::reader::{Line, LineReader};

    /// What the parse-ahead reader gives, as (line or None for too long, offset after it).
    fn ahead(input: &[u8], chunk: usize, skip: u64) -> (Vec<Option<Vec<u8>>>, Vec<u64>, u64) {
        let mut r = ParseAhead::with_chunk(io::Cursor::new(input.to_vec()), skip, chunk).expect("thread");
        let skipped = r.skipped().expect("skip");
        let (mut lines, mut offsets) = (Vec::new(), Vec::new());
        while let Some(it) = r.next_line().expect("read") {
            lines.push(match it {
                Item::Line { raw, parsed } => {
                    assert_eq!(format!("{parsed:?}"), format!("{:?}", crate::parse::parse(raw)), "{}", String::from_utf8_lossy(raw));
                    Some(raw.to_vec())
                }
                Item::TooLong { .. } => None,
            });
            offsets.push(r.offset());
        }
        (lines, offsets, skipped)
    }

    /// The same lines and offsets from the plain line reader.
    fn plain(input: &[u8], skip: u64) -> (Vec<Option<Vec<u8>>>, Vec<u64>, u64) {
        let mut r = LineReader::new(input);
        let skipped = r.skip(skip).expect("skip");
        let (mut lines, mut offsets) = (Vec::new(), Vec::new());
        while let Some(l) = r.next_line(true).expect("read") {
            lines.push(match l {
                Line::Ok(b) => Some(b.to_vec()),
                Line::TooLong => None,
            });
            offsets.push(r.offset());
        }
        (lines, offsets, skipped)
    }

    #[test]
    fn parses_lines_across_chunks_like_the_line_reader() {
        let mut log = Vec::new();
        for i in 0..300 {
            log.extend_from_slice(
                format!("Mar  6 07:08:{:02} host postfix/qmgr[12]: A1E1E18800{:02}: removed\n", i % 60, i % 100).as_bytes(),
            );
            if i % 37 == 0 {
                log.extend_from_slice(b"garbage line\r\n\n");
            }
            if i == 150 {
                log.extend(std::iter::repeat_n(b'x', MAX_LINE * 3 + 5));
                log.push(b'\n');
            }
        }
        log.extend_from_slice(b"Mar  6 07:09:00 host postfix/qmgr[12]: A1E1E1880093: removed");
        // More lines than one hand-over takes, in one chunk.
        log.extend(std::iter::repeat_n(b'\n', PARSE_LINES * 3 + 7));
        log.extend_from_slice(b"Mar  6 07:09:00 host postfix/qmgr[12]: A1E1E1880094: removed\n");
        let want = plain(&log, 0);
        assert!(want.0.iter().any(Option::is_none), "the test has an over-long line");
        for chunk in [7, 100, 4096, MAX_LINE + 3, PARSE_CHUNK] {
            assert_eq!(ahead(&log, chunk, 0), want, "chunk {chunk}");
        }
        // Resuming at a line boundary, and past the end.
        let at = log.iter().position(|&c| c == b'\n').expect("newline") as u64 + 1;
        assert_eq!(ahead(&log, 100, at), plain(&log, at));
        let past = log.len() as u64 + 10;
        assert_eq!(ahead(&log, 100, past), plain(&log, past));
    }

    #[test]
    fn an_over_long_last_line_is_reported() {
        let mut log = b"a\n".to_vec();
        log.extend(std::iter::repeat_n(b'y', MAX_LINE * 2));
        for chunk in [50, MAX_LINE, PARSE_CHUNK] {
            assert_eq!(ahead(&log, chunk, 0), plain(&log, 0), "chunk {chunk}");
        }
    }

    #[test]
    fn a_read_error_reaches_the_reader() {
        struct Failing(usize);
        impl Read for Failing {
            fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
                if self.0 == 0 {
                    return Err(io::Error::other("disk on fire"));
                }
                self.0 -= 1;
                let line = b"Mar  6 07:08:59 host postfix/qmgr[12]: A1E1E1880093: removed\n";
                let n = line.len().min(buf.len());
                buf[..n].copy_from_slice(&line[..n]);
                Ok(n)
            }
        }
        let mut r = ParseAhead::with_chunk(Failing(3), 0, 4096).expect("thread");
        let mut n = 0;
        let err = loop {
            match r.next_line() {
                Ok(Some(_)) => n += 1,
                Ok(None) => panic!("end of input instead of the error"),
                Err(e) => break e,
            }
        };
        assert_eq!(err.to_string(), "disk on fire");
        assert!(n <= 3);
    }

    /// A chunk of empty lines goes over in hand-overs of at most
    /// `PARSE_LINES` parsed lines (the memory in flight stays bounded).
    #[test]
    fn hand_overs_hold_at_most_parse_lines() {
        let n = PARSE_LINES * 10;
        let mut r = ParseAhead::with_chunk(io::Cursor::new(vec![b'\n'; n]), 0, PARSE_CHUNK).expect("thread");
        let (mut lines, mut most) = (0, 0);
        while r.next_line().expect("read").is_some() {
            lines += 1;
            most = most.max(r.cur.as_ref().map_or(0, |c| c.get().items.len()));
        }
        assert_eq!((lines, r.offset()), (n, n as u64));
        assert_eq!(most, PARSE_LINES);
    }

    #[test]
    fn spent_line_lists_keep_their_room() {
        let mut v: Vec<Item<'_>> = Vec::with_capacity(100);
        v.push(Item::TooLong { bytes: 1 });
        let cap = v.capacity();
        assert_eq!(reuse(v).capacity(), cap);
    }

    proptest::proptest! {
        #[test]
        fn matches_the_line_reader(input in proptest::collection::vec(proptest::prop_oneof![
            proptest::strategy::Just(b'\n'), proptest::strategy::Just(b' '), proptest::prelude::any::<u8>()], 0..3000)) {
            let chunk = 1 + input.len() % 97;
            proptest::prop_assert_eq!(ahead(&input, chunk, 0), plain(&input, 0));
        }
    }
}
