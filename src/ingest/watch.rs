//! Watched log directories: which files belong to which log, in what order
//! history is imported, and how the live file is followed across rotation.
//!
//! A directory holds groups named by `--log-file-patterns` (`mail.log`,
//! `maillog`, …). Each group is its live file plus rotated archives:
//! `name.N[.gz|.bz2]` (higher N older) or `name-YYYYMMDD[.gz|.bz2]` (dated
//! archives win when both kinds exist). History is read oldest first, then the
//! live file is followed. `mail.warn` and `mail.err` hold copies of lines that
//! are also in `mail.log`, so they are read only when the directory has no
//! `mail.log`/`maillog` (each line is counted once).
//!
//! Following: the directory is watched with inotify (no polling). Rotation
//! by rename leaves the old file open until it is quiet; `copytruncate` is
//! seen as a size below the position; a replacement with the same first line
//! (rsync's write-then-rename) continues from the position. Nothing here
//! commits: positions go to the pipeline, which commits them with the data.

use super::file::{FileSource, group_of};
use super::{IngestError, Pipeline};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// Names that only duplicate lines of a main log.
const DUPLICATE_LOGS: [&str; 2] = ["mail.warn", "mail.err"];
const MAIN_LOGS: [&str; 2] = ["mail.log", "maillog"];

/// One log (live file + archives) in a watched directory.
pub struct Group {
    pub name: String,
    pub live_path: PathBuf,
    /// Archives still to import, oldest first.
    pub history: std::collections::VecDeque<PathBuf>,
    /// The archive being imported.
    pub importing: Option<FileSource>,
    /// The followed file.
    pub current: Option<FileSource>,
    /// Previous live files after rotation, read until they are quiet.
    pub draining: Vec<FileSource>,
    /// Something changed since the last pump.
    pub dirty: bool,
}

/// A rotated archive's age rank: (dated?, date or -N). Larger = newer.
fn archive_rank(group: &str, file: &str) -> Option<(bool, i64)> {
    let rest = file.strip_prefix(group)?;
    let rest = rest.strip_suffix(".gz").or_else(|| rest.strip_suffix(".bz2")).unwrap_or(rest);
    if let Some(n) = rest.strip_prefix('.') {
        return n.parse::<i64>().ok().filter(|_| n.bytes().all(|c| c.is_ascii_digit())).map(|n| (false, -n));
    }
    if let Some(d) = rest.strip_prefix('-') {
        return (d.len() == 8 && d.bytes().all(|c| c.is_ascii_digit())).then(|| (true, d.parse().unwrap_or(0)));
    }
    None
}

/// The groups of `dir` for `patterns`, with their history in reading order.
///
/// # Errors
/// The directory cannot be listed.
pub fn scan(dir: &Path, patterns: &[String]) -> Result<Vec<Group>, IngestError> {
    let open_err = |source| IngestError::Open { path: dir.to_owned(), source };
    let mut names: Vec<String> = Vec::new();
    for e in std::fs::read_dir(dir).map_err(open_err)? {
        let e = e.map_err(open_err)?;
        if e.file_type().map_err(open_err)?.is_file() {
            names.push(e.file_name().to_string_lossy().into_owned());
        }
    }
    let has_main = MAIN_LOGS.iter().any(|m| patterns.iter().any(|p| p == m) && names.iter().any(|n| group_of(n) == *m));
    let mut groups = Vec::new();
    for p in patterns {
        if has_main && DUPLICATE_LOGS.contains(&p.as_str()) {
            continue;
        }
        let mut archives: Vec<((bool, i64), &String)> = names.iter().filter_map(|n| archive_rank(p, n).map(|r| (r, n))).collect();
        if archives.iter().any(|((dated, _), _)| *dated) {
            archives.retain(|((dated, _), _)| *dated);
        }
        archives.sort();
        let live_exists = names.iter().any(|n| n == p);
        if archives.is_empty() && !live_exists {
            continue;
        }
        groups.push(Group {
            name: p.clone(),
            live_path: dir.join(p),
            history: archives.into_iter().map(|(_, n)| dir.join(n)).collect(),
            importing: None,
            current: None,
            draining: Vec::new(),
            dirty: true,
        });
    }
    // Patterns that do not exist yet may appear later: watch for them too.
    for p in patterns {
        if !groups.iter().any(|g| &g.name == p) && (!has_main || !DUPLICATE_LOGS.contains(&p.as_str())) {
            groups.push(Group {
                name: p.clone(),
                live_path: dir.join(p),
                history: std::collections::VecDeque::default(),
                importing: None,
                current: None,
                draining: Vec::new(),
                dirty: false,
            });
        }
    }
    Ok(groups)
}

/// Outcome of one pump of a group.
#[derive(Default, Debug)]
pub struct Pumped {
    pub lines: usize,
    /// More is waiting (history or a busy file): pump again soon.
    pub more: bool,
}

impl Group {
    /// Imports history, then reads the live file (and rotated ones still
    /// draining), at most `budget` lines in all.
    ///
    /// # Errors
    /// Read or store failure.
    ///
    /// # Panics
    /// Never: `importing` is checked before it is unwrapped.
    pub fn pump(&mut self, p: &mut Pipeline, budget: usize) -> Result<Pumped, IngestError> {
        let mut out = Pumped::default();
        // 1. History, oldest first.
        loop {
            if self.importing.is_none() {
                let Some(next) = self.history.pop_front() else { break };
                match FileSource::open(&next, p, false) {
                    Ok(Some(src)) => {
                        eprintln!("postlens: importing {}{}", next.display(), if src.cp.done { " (already imported)" } else { "" });
                        self.importing = Some(src);
                    }
                    Ok(None) => {}
                    // An archive deleted by logrotate meanwhile: skip it.
                    Err(IngestError::Open { path, source }) => eprintln!("postlens: skipping {}: {source}", path.display()),
                    Err(e) => return Err(e),
                }
                continue;
            }
            let src = self.importing.as_mut().expect("checked above");
            let (n, eof) = src.pump(p, budget - out.lines)?;
            out.lines += n;
            if eof {
                self.importing = None;
            }
            if out.lines >= budget {
                out.more = true;
                return Ok(out);
            }
        }
        // 2. Rotated live files still draining, then the live file.
        let mut quiet = Vec::new();
        for (i, d) in self.draining.iter_mut().enumerate() {
            let (n, eof) = d.pump(p, budget - out.lines)?;
            out.lines += n;
            if eof && n == 0 {
                quiet.push(i);
            }
            if out.lines >= budget {
                out.more = true;
                return Ok(out);
            }
        }
        self.check_live(p)?;
        if let Some(cur) = self.current.as_mut() {
            let (n, eof) = cur.pump(p, budget - out.lines)?;
            out.lines += n;
            out.more |= !eof;
            // Once the new file has lines, the writer switched: drop the old
            // files that had nothing more.
            if cur.offset() > 0 {
                for i in quiet.into_iter().rev() {
                    self.draining.remove(i);
                }
            }
        }
        self.dirty = out.more;
        Ok(out)
    }

    /// Notices rotation, truncation, replacement and a file that appeared.
    fn check_live(&mut self, p: &mut Pipeline) -> Result<(), IngestError> {
        let meta = std::fs::metadata(&self.live_path).ok();
        let Some(meta) = meta else {
            // Deleted (or renamed away with no successor yet): keep reading
            // the open file; it drains like a rotated one.
            if let Some(cur) = self.current.take() {
                self.draining.push(cur);
            }
            return Ok(());
        };
        if let Some(cur) = &self.current {
            if cur.ino == meta.ino() && cur.dev == meta.dev() {
                if meta.len() < cur.offset() || cur.rewritten() {
                    // copytruncate: the same inode restarted from zero. The
                    // copy (with the same first line) keeps our position for
                    // when it is imported as an archive.
                    eprintln!("postlens: {} was truncated; reading it from the start", self.live_path.display());
                    self.current = None;
                } else {
                    return Ok(());
                }
            } else {
                // A new file at the live name: the old one drains first.
                let old = self.current.take().expect("checked above");
                self.draining.push(old);
            }
        }
        // Open the new live file only once the rotated ones are read to
        // their end (in budgeted turns, committing as batches fill): if it
        // is a longer copy of one of them (rsync), it resumes exactly there.
        if self.draining.iter().any(|d| !d.at_end()) {
            self.dirty = true;
            return Ok(());
        }
        match FileSource::open(&self.live_path, p, true) {
            Ok(Some(src)) => {
                // The same identity as a draining file: that one is done.
                self.draining.retain(|d| d.key != src.key);
                self.current = Some(src);
            }
            Ok(None) => self.dirty = true,
            Err(IngestError::Open { .. }) => {}
            Err(e) => return Err(e),
        }
        Ok(())
    }

    /// Per-source status: (path, position, bytes behind, last line time).
    pub fn status(&self) -> Vec<(String, u64, u64, i64)> {
        let mut v = Vec::new();
        for s in self.importing.iter().chain(self.current.iter()).chain(self.draining.iter()) {
            let size = std::fs::metadata(&s.path).map_or(s.offset(), |m| m.len());
            v.push((s.path.display().to_string(), s.offset(), size.saturating_sub(s.offset()), s.cp.last_time));
        }
        for h in &self.history {
            v.push((h.display().to_string(), 0, std::fs::metadata(h).map_or(0, |m| m.len()), 0));
        }
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn archive_order_and_dated_preference() {
        let d = std::env::temp_dir().join(format!("postlens-scan-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        for n in ["mail.log", "mail.log.1", "mail.log.2.gz", "mail.log.10.gz", "mail.warn", "maillog.3", "other.txt"] {
            std::fs::write(d.join(n), "x\n").unwrap();
        }
        let pats: Vec<String> = ["mail.log", "mail.warn", "mail.err", "maillog"].map(String::from).to_vec();
        let g = scan(&d, &pats).unwrap();
        let ml = g.iter().find(|g| g.name == "mail.log").unwrap();
        let names: Vec<_> = ml.history.iter().map(|p| p.file_name().unwrap().to_string_lossy().into_owned()).collect();
        assert_eq!(names, ["mail.log.10.gz", "mail.log.2.gz", "mail.log.1"]);
        assert!(!g.iter().any(|g| g.name == "mail.warn"), "mail.warn duplicates mail.log");
        for n in ["mail.log-20240102.gz", "mail.log-20240101"] {
            std::fs::write(d.join(n), "x\n").unwrap();
        }
        let g = scan(&d, &pats).unwrap();
        let ml = g.iter().find(|g| g.name == "mail.log").unwrap();
        let names: Vec<_> = ml.history.iter().map(|p| p.file_name().unwrap().to_string_lossy().into_owned()).collect();
        assert_eq!(names, ["mail.log-20240101", "mail.log-20240102.gz"], "dated archives win");
        let _ = std::fs::remove_dir_all(&d);
    }
}
