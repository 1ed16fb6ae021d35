//! One log file as a source: its identity, checkpoint, year inference and
//! reader, for one-shot imports of archives and for following a live file.
//!
//! Identity is the file's *group* (its name without rotation suffixes:
//! `mail.log.2.gz` → `mail.log`) plus a hash of its first line, so a file
//! keeps its checkpoint when logrotate renames it, compresses it, or rsync
//! replaces it with a longer copy; device and inode are recorded to tell
//! rotation (a new inode at the live name) from growth.

use super::ahead::{Item, ParseAhead};
use super::reader::{Line, LineReader};
use super::{IngestError, Options, Pipeline};
use crate::clock::{Resolver, Timestamp, start_year_for};
use crate::parse;
use crate::store::Checkpoint;
use std::io::{self, Read};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// `mail.log.2.gz` → `mail.log`; `mail.log-20240101.bz2` → `mail.log`.
pub fn group_of(name: &str) -> &str {
    let mut n = name.strip_suffix(".gz").or_else(|| name.strip_suffix(".bz2")).unwrap_or(name);
    if let Some((base, num)) = n.rsplit_once('.')
        && !num.is_empty()
        && num.bytes().all(|c| c.is_ascii_digit())
    {
        n = base;
    }
    if let Some((base, date)) = n.rsplit_once('-')
        && date.len() == 8
        && date.bytes().all(|c| c.is_ascii_digit())
    {
        n = base;
    }
    n
}

/// Compression of a file, by magic bytes.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Codec {
    Plain,
    Gzip,
    Bzip2,
}

fn codec(path: &Path) -> io::Result<Codec> {
    let mut f = std::fs::File::open(path)?;
    let mut magic = [0u8; 3];
    let mut n = 0;
    while n < 3 {
        match f.read(&mut magic[n..])? {
            0 => break,
            k => n += k,
        }
    }
    Ok(match &magic[..n] {
        [0x1f, 0x8b, ..] => Codec::Gzip,
        [b'B', b'Z', b'h'] => Codec::Bzip2,
        _ => Codec::Plain,
    })
}

fn decoder(f: std::fs::File, c: Codec) -> Box<dyn Read + Send> {
    match c {
        Codec::Plain => Box::new(f),
        Codec::Gzip => Box::new(flate2::read::MultiGzDecoder::new(io::BufReader::new(f))),
        Codec::Bzip2 => Box::new(bzip2::read::MultiBzDecoder::new(io::BufReader::new(f))),
    }
}

/// The first complete line of a file (decoded), if it has one yet.
fn first_line(path: &Path, c: Codec) -> io::Result<Option<Vec<u8>>> {
    let mut lr = LineReader::new(decoder(std::fs::File::open(path)?, c));
    Ok(match lr.next_line(false)? {
        Some(Line::Ok(l)) => Some(l.to_vec()),
        Some(Line::TooLong) => Some(Vec::new()),
        None => None,
    })
}

pub struct FileSource {
    pub path: PathBuf,
    pub key: String,
    pub cp: Checkpoint,
    res: Resolver,
    reader: Reader,
    /// Followed (live) files wait for a line's newline; archives do not.
    pub live: bool,
    pub dev: u64,
    pub ino: u64,
    /// Bytes of the file consumed when this source was opened (skipped).
    pub skipped: u64,
    /// The last pump reached the end of what the file holds.
    at_end: bool,
    compressed: bool,
    /// A plain file's first line: its length and hash (its identity), so
    /// `rewritten` reads just that many bytes back.
    first: Option<(usize, u64)>,
    /// A compressed archive's file again (sharing its position): how far
    /// into the file the decoder has read, for `--progress`.
    disk: Option<std::fs::File>,
}

/// How a file is read: line by line on the ingesting thread (a followed
/// file, Logstash records), or parsed ahead on a helper thread.
enum Reader {
    Lines(LineReader<Box<dyn Read + Send>>),
    Parsed(ParseAhead),
}

impl Reader {
    fn offset(&self) -> u64 {
        match self {
            Reader::Lines(r) => r.offset(),
            Reader::Parsed(r) => r.offset(),
        }
    }

    /// Skips `n` bytes; a parse-ahead reader was told `n` when it was made.
    fn skip(&mut self, n: u64) -> io::Result<u64> {
        match self {
            Reader::Lines(r) => r.skip(n),
            Reader::Parsed(r) => r.skipped(),
        }
    }
}

/// The live file, read so that nothing written after a `copytruncate` is
/// taken for what followed our position. If the file is emptied and
/// refilled between a check and a read, the read returns the new content
/// from our old offset: counted there, and again once the new content is
/// read from its start (seen in CI under qemu). So each read is kept only
/// if afterwards the file still reaches the read's end and still starts
/// with the first line it was opened with; otherwise it is dropped as an
/// end of file, and the next check of the live file finds it truncated or
/// rewritten and reads it again from the start. What the old content held
/// past our position is in the copy, read from our position when the copy
/// is imported as an archive.
struct LiveFile {
    f: std::fs::File,
    /// Length and hash of the first line (`None`: over-long, not compared).
    first: Option<(usize, u64)>,
    /// Offset of the end of what was returned so far.
    end: u64,
    /// Room for the first line, reused by every read.
    head: Vec<u8>,
}

impl LiveFile {
    fn new(f: std::fs::File, first: Option<(usize, u64)>) -> LiveFile {
        LiveFile { f, first, end: 0, head: Vec::new() }
    }

    /// The same content as when opened, at least up to `end`?
    fn unchanged_to(&mut self, end: u64) -> io::Result<bool> {
        if self.f.metadata()?.len() < end {
            return Ok(false);
        }
        Ok(self.first.is_none_or(|first| starts_with_line(&self.f, first, &mut self.head) == Some(true)))
    }
}

/// Whether `f` starts with the line of length and hash `first` (and its
/// newline); `None` when it is shorter than that, or unreadable. `head` is
/// room for the line.
fn starts_with_line(f: &std::fs::File, (len, hash): (usize, u64), head: &mut Vec<u8>) -> Option<bool> {
    use std::os::unix::fs::FileExt as _;
    head.resize(len + 1, 0);
    f.read_exact_at(head, 0).ok()?;
    Some(head[len] == b'\n' && crate::hash::fnv1a(&head[..len]) == hash)
}

impl Read for LiveFile {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.f.read(buf)?;
        let end = self.end + n as u64;
        if n == 0 || !self.unchanged_to(end)? {
            return Ok(0);
        }
        self.end = end;
        Ok(n)
    }
}

impl FileSource {
    /// Does the file at our path now start with another first line? (A
    /// `copytruncate` whose file was refilled past our position before we
    /// looked: its size alone does not tell.)
    ///
    /// Called on every change of the live file: it reads only the first
    /// line's length plus its newline, with no buffer of its own beyond it.
    pub fn rewritten(&self) -> bool {
        let Some(first) = self.first else { return false };
        // Shorter than that line (truncated, not refilled yet): the size
        // check covers it; an unreadable file is left to the next event.
        std::fs::File::open(&self.path).is_ok_and(|f| starts_with_line(&f, first, &mut Vec::new()) == Some(false))
    }

    /// Opens `path` where its checkpoint left off. `Ok(None)`: the file has
    /// no complete first line yet (a live file just created), so its
    /// identity is not known; try again when it grows.
    ///
    /// # Errors
    /// The file cannot be opened or read, or the store fails.
    pub fn open(path: &Path, p: &Pipeline, live: bool) -> Result<Option<FileSource>, IngestError> {
        let open_err = |source| IngestError::Open { path: path.to_owned(), source };
        let meta = std::fs::metadata(path).map_err(open_err)?;
        if meta.is_dir() {
            return Err(open_err(io::Error::new(io::ErrorKind::InvalidInput, "is a directory")));
        }
        let c = codec(path).map_err(open_err)?;
        let Some(first) = first_line(path, c).map_err(open_err)? else { return Ok(None) };
        let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        let first_hash = crate::hash::fnv1a(&first);
        let key = format!("file:{}:{first_hash:016x}", group_of(&name));
        let prev = p.checkpoint(&key)?;
        let opts: &Options = p.options();
        let first_month = match parse::parse(&first).map(|e| e.time) {
            Ok(parse::RawTime::Bsd { month, .. }) => Some(month),
            _ => None,
        };
        let mtime = meta
            .modified()
            .ok()
            .and_then(|m| m.duration_since(std::time::UNIX_EPOCH).ok())
            .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(0));
        let year = opts.starting_year.unwrap_or_else(|| start_year_for(Timestamp(mtime), first_month, &opts.tz));
        // Compressed archives never grow: one read to the end is final.
        let done = c != Codec::Plain && prev.as_ref().is_some_and(|c| c.done);
        // An archive shorter than where its first line's file was read to:
        // a copy still being written (logrotate's copytruncate copies the
        // live file, then empties it) or one that stopped short of what was
        // read from the live file. Everything in it was read already, and the
        // position must not move back (what lies past it would be read
        // twice). Only the live file, emptied and refilled in place with the
        // same first line, is read again from the start.
        let behind = c == Codec::Plain && !live && prev.as_ref().is_some_and(|c| meta.len() < c.offset);
        let read_already = done || behind;
        // An over-long first line reads back as empty: not comparable.
        let first_id = (c == Codec::Plain && !first.is_empty()).then_some((first.len(), first_hash));
        let f = std::fs::File::open(path).map_err(open_err)?;
        let disk = if c == Codec::Plain { None } else { f.try_clone().ok() };
        // Where reading resumes. A live file shorter than its checkpoint was
        // truncated in place and refilled with the same first line: read it
        // from the start.
        let resume = prev.as_ref().filter(|prev| !(read_already || (c == Codec::Plain && meta.len() < prev.offset)));
        let reader = if read_already {
            // Read to its end before: nothing to decode.
            Reader::Lines(LineReader::new(Box::new(io::empty())))
        } else if live && c == Codec::Plain {
            Reader::Lines(LineReader::new(Box::new(LiveFile::new(f, first_id))))
        } else if opts.parse_ahead(2) && opts.format != super::LogFormat::Logstash {
            // (A Logstash record is decoded before it is parsed: on this thread.)
            Reader::Parsed(ParseAhead::spawn(decoder(f, c), resume.map_or(0, |p| p.offset)).map_err(open_err)?)
        } else {
            Reader::Lines(LineReader::read_ahead(decoder(f, c)).map_err(open_err)?)
        };
        let mut src = FileSource {
            path: path.to_owned(),
            key,
            cp: Checkpoint { name: path.display().to_string(), year, dev: meta.dev(), ino: meta.ino(), ..Checkpoint::default() },
            res: Resolver::new(opts.tz.clone(), year),
            reader,
            live,
            dev: meta.dev(),
            ino: meta.ino(),
            skipped: 0,
            at_end: false,
            compressed: c != Codec::Plain,
            first: first_id,
            disk,
        };
        if let Some(prev) = prev.as_ref().filter(|_| read_already) {
            src.cp = prev.clone();
            // Nothing to read: `pump` stops at once and leaves the stored
            // position as it is (in memory only; never written back).
            src.cp.done = true;
            return Ok(Some(src));
        }
        if let Some(prev) = resume {
            src.skipped = src.reader.skip(prev.offset).map_err(|source| IngestError::Read { name: src.cp.name.clone(), source })?;
            src.res = Resolver::resume(opts.tz.clone(), prev.year, prev.last_month);
            src.cp.offset = src.reader.offset();
            src.cp.year = prev.year;
            src.cp.last_month = prev.last_month;
            src.cp.last_time = prev.last_time;
            src.cp.done = false;
        }
        Ok(Some(src))
    }

    /// Feeds up to `max_lines` lines into `p`. Returns the lines fed and
    /// whether the end of the file (for now) was reached.
    ///
    /// # Errors
    /// Read failure.
    pub fn pump(&mut self, p: &mut Pipeline, max_lines: usize) -> Result<(usize, bool), IngestError> {
        if self.cp.done {
            return Ok((0, true));
        }
        let mut n = 0;
        self.at_end = false;
        if self.live
            && let Reader::Lines(r) = &mut self.reader
        {
            r.rearm();
        }
        while n < max_lines {
            let read_err = |source| IngestError::Read { name: self.cp.name.clone(), source };
            let fed = match &mut self.reader {
                Reader::Lines(r) => match r.next_line(!self.live).map_err(read_err)? {
                    None => false,
                    Some(Line::TooLong) => {
                        p.count_too_long();
                        true
                    }
                    Some(Line::Ok(l)) => {
                        p.feed(l, &mut self.res);
                        true
                    }
                },
                Reader::Parsed(r) => match r.next_line().map_err(read_err)? {
                    None => false,
                    Some(Item::TooLong { .. }) => {
                        p.count_too_long();
                        true
                    }
                    Some(Item::Line { raw, parsed }) => {
                        p.feed_parsed(raw, parsed, &mut self.res);
                        true
                    }
                },
            };
            if !fed {
                if self.compressed {
                    self.cp.done = true;
                }
                self.at_end = true;
                self.sync_checkpoint(p);
                return Ok((n, true));
            }
            n += 1;
            if p.batch_full() {
                break;
            }
        }
        self.sync_checkpoint(p);
        Ok((n, false))
    }

    fn sync_checkpoint(&mut self, p: &mut Pipeline) {
        self.cp.offset = self.reader.offset();
        (self.cp.year, self.cp.last_month) = self.res.state();
        self.cp.last_time = self.cp.last_time.max(self.res.last());
        p.set_checkpoint(&self.key, &self.cp);
    }

    /// The checkpoint as of the last line fed.
    pub fn checkpoint(&self) -> (String, Checkpoint) {
        (self.key.clone(), self.cp.clone())
    }

    /// The last pump found nothing more to read.
    pub fn at_end(&self) -> bool {
        self.at_end || self.cp.done
    }

    /// Bytes read so far (the checkpoint offset).
    pub fn offset(&self) -> u64 {
        self.reader.offset()
    }

    /// How far into the file on disk reading is: the offset of a plain
    /// file, the compressed bytes read of an archive (a little ahead of
    /// the lines fed: decoding reads ahead).
    pub fn disk_offset(&self) -> u64 {
        match self.disk.as_ref() {
            // (`&File` seeks the shared position without a `mut`.)
            Some(mut f) => io::Seek::stream_position(&mut f).unwrap_or(0),
            None => self.offset(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{LiveFile, group_of};
    use std::io::{Read, Write};

    /// The race behind `LiveFile`: the live file is emptied and refilled
    /// past our position between the check of the live file and the read.
    #[test]
    fn a_live_read_after_truncation_and_refill_is_dropped() {
        let path = std::env::temp_dir().join(format!("postlens-live-{}", std::process::id()));
        let old = b"Mar  1 00:00:00 h postfix/qmgr[1]: ABC: removed\n".repeat(10);
        std::fs::write(&path, &old).unwrap();
        let first_len = old.iter().position(|&c| c == b'\n').unwrap();
        let first = Some((first_len, crate::hash::fnv1a(&old[..first_len])));
        let mut live = LiveFile::new(std::fs::File::open(&path).unwrap(), first);
        let mut buf = vec![0u8; 4096];
        assert_eq!(live.read(&mut buf).unwrap(), old.len());
        assert_eq!(live.read(&mut buf).unwrap(), 0, "at the end");
        // Growth is read.
        let more = b"Mar  1 00:00:01 h postfix/qmgr[1]: DEF: removed\n";
        std::fs::OpenOptions::new().append(true).open(&path).unwrap().write_all(more).unwrap();
        assert_eq!(live.read(&mut buf).unwrap(), more.len());
        // copytruncate, refilled past our position with new lines.
        let new = b"Mar  1 00:00:02 h postfix/qmgr[1]: XYZ: removed\n".repeat(20);
        let f = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
        f.set_len(0).unwrap();
        drop(f);
        std::fs::OpenOptions::new().append(true).open(&path).unwrap().write_all(&new).unwrap();
        // A plain read would return the new lines from our old offset.
        let mut plain = std::fs::File::open(&path).unwrap();
        let mut skip = vec![0u8; old.len() + more.len()];
        plain.read_exact(&mut skip).unwrap();
        assert!(plain.read(&mut buf).unwrap() > 0);
        assert_eq!(live.read(&mut buf).unwrap(), 0, "new content past our old offset is not ours");
        let _ = std::fs::remove_file(&path);
    }

    #[test]
    fn groups() {
        for (n, g) in [
            ("mail.log", "mail.log"),
            ("mail.log.1", "mail.log"),
            ("mail.log.12.gz", "mail.log"),
            ("mail.log-20240101", "mail.log"),
            ("mail.log-20240101.bz2", "mail.log"),
            ("maillog.3.bz2", "maillog"),
            ("my-mail.log", "my-mail.log"),
            ("zimbra.log", "zimbra.log"),
        ] {
            assert_eq!(group_of(n), g, "{n}");
        }
    }
}
