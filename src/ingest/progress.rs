//! `import --progress`: one line per file on a terminal, redrawn in place
//! at most every [`REDRAW`]: a bar of the file's bytes on disk (compressed
//! bytes for an archive), lines read, speed and time left; when the file
//! is done, the line stays with its totals.

use std::io::Write;
use std::path::Path;
use std::time::{Duration, Instant};

/// Shortest time between two redraws.
pub const REDRAW: Duration = Duration::from_millis(200);

/// Cells of the bar.
const BAR: usize = 20;

/// Longest file name shown (longer ones are cut).
const NAME: usize = 24;

/// The progress line of one file.
pub struct Progress {
    name: String,
    total: u64,
    started: Instant,
    drawn: Option<Instant>,
}

impl Progress {
    /// Progress through `path`, `total` bytes on disk.
    pub fn new(path: &Path, total: u64) -> Progress {
        let name = path.file_name().map_or_else(|| path.display().to_string(), |n| n.to_string_lossy().into_owned());
        Progress { name, total, started: Instant::now(), drawn: None }
    }

    /// Redraws the line if [`REDRAW`] has passed since the last time.
    pub fn tick(&mut self, done: u64, lines: u64) {
        if self.drawn.is_some_and(|t| t.elapsed() < REDRAW) {
            return;
        }
        self.drawn = Some(Instant::now());
        let line = render(&self.name, done, self.total, lines, self.started.elapsed(), false);
        let mut err = std::io::stderr().lock();
        // "\r" back to the start of the line, "\x1b[K" clears what is left.
        let _ = write!(err, "\r{line}\x1b[K");
        let _ = err.flush();
    }

    /// Draws the final line (whole file, totals) and ends it.
    pub fn finish(&mut self, lines: u64) {
        let line = render(&self.name, self.total, self.total, lines, self.started.elapsed(), true);
        let _ = writeln!(std::io::stderr().lock(), "\r{line}\x1b[K");
    }
}

/// The progress line: name (cut to `NAME` characters), bar, percentage,
/// megabytes, lines and either lines/s and time left (`finished` false) or
/// elapsed time and lines/s. Integers only, one `format!` per part: this
/// runs a few times a second, and the static binary's size is budgeted.
pub fn render(name: &str, done: u64, total: u64, lines: u64, elapsed: Duration, finished: bool) -> String {
    let done = if finished { total } else { done.min(total) };
    let permille = if total == 0 { 1000 } else { u64::try_from(u128::from(done) * 1000 / u128::from(total)).unwrap_or(1000) };
    let filled = usize::try_from(permille * BAR as u64 / 1000).unwrap_or(BAR).min(BAR);
    let mut bar = "=".repeat(filled);
    if filled < BAR {
        bar.push('>');
    }
    let ms = u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX).max(1);
    let rate = lines.saturating_mul(1000) / ms;
    let tail = if finished {
        format!("in {}.{} s, {rate} lines/s", ms / 1000, ms / 100 % 10)
    } else if done > 0 && ms >= 500 {
        // Seconds, rounded up.
        let s = u64::try_from((u128::from(ms) * u128::from(total - done)).div_ceil(u128::from(done) * 1000)).unwrap_or(u64::MAX);
        format!("{rate} lines/s, {}:{:02}:{:02} left", s / 3600, s / 60 % 60, s % 60)
    } else {
        format!("{rate} lines/s")
    };
    format!("{name:<NAME$.NAME$} [{bar:<BAR$}] {:>3}% {:>6} MB {lines:>9} lines {tail}", permille / 10, done / 1_000_000)
}

#[cfg(test)]
mod tests {
    use super::render;
    use std::time::Duration;

    #[test]
    fn the_line_shows_bar_share_size_lines_speed_and_time_left() {
        let l = render("mail.log", 45_000_000, 100_000_000, 300_000, Duration::from_secs(3), false);
        assert_eq!(l, "mail.log                 [=========>          ]  45%     45 MB    300000 lines 100000 lines/s, 0:00:04 left");
        let l = render("mail.log.2.gz", 0, 8_000_000, 0, Duration::ZERO, false);
        assert_eq!(l, "mail.log.2.gz            [>                   ]   0%      0 MB         0 lines 0 lines/s");
        // Ten minutes in, a third done: twenty minutes left.
        let l = render("m", 1, 3, 5, Duration::from_mins(10), false);
        assert!(l.ends_with(", 0:20:00 left"), "{l}");
    }

    #[test]
    fn the_final_line_has_the_totals() {
        let l = render("mail.log", 10, 137_300_000, 1_000_000, Duration::from_millis(520), true);
        assert_eq!(l, "mail.log                 [====================] 100%    137 MB   1000000 lines in 0.5 s, 1923076 lines/s");
    }

    #[test]
    fn odd_inputs_stay_in_bounds() {
        // Empty file, more read than the size (an archive still growing), a long name.
        assert!(render("x", 0, 0, 0, Duration::ZERO, false).contains("[====================] 100%"));
        assert!(render("x", 9, 3, 1, Duration::from_secs(1), false).contains("[====================] 100%"));
        let l = render(&"a".repeat(100), 1, 2, 1, Duration::from_secs(1), false);
        assert!(l.starts_with(&format!("{} [", "a".repeat(24))), "{l}");
        assert!(render("x", 1, 1_000_000_000, 1, Duration::from_secs(100_000), false).contains(" left"));
    }
}
