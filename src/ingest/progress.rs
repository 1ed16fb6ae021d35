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

/// Longest file name shown (its end is kept: `…/mail.log.2.gz`).
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

/// The progress line: name, bar, percentage, megabytes, lines and either
/// speed and time left (`finished` false) or elapsed time and speed.
pub fn render(name: &str, done: u64, total: u64, lines: u64, elapsed: Duration, finished: bool) -> String {
    let done = if finished { total } else { done.min(total) };
    let frac = if total == 0 { 1.0 } else { ratio(done, total) };
    // Cells filled: 0..=BAR (a cast of a value already within range).
    #[expect(clippy::cast_possible_truncation, clippy::cast_sign_loss, reason = "0 <= frac <= 1")]
    let filled = ((frac * ratio(BAR as u64, 1)).floor() as usize).min(BAR);
    let mut bar = "=".repeat(filled);
    if filled < BAR {
        bar.push('>');
        bar.push_str(&" ".repeat(BAR - filled - 1));
    }
    let secs = elapsed.as_secs_f64();
    let rate = if secs > 0.0 { ratio(lines, 1) / secs } else { 0.0 };
    let name = short_name(name);
    let pct = frac * 100.0;
    if finished {
        return format!("{name:<NAME$} [{bar}] 100% {:>6} MB {:>7} lines in {secs:.1} s ({}/s)", mb(total), count(lines), count_f(rate));
    }
    let left = if done > 0 && secs >= 0.5 { eta(secs * ratio(total - done, done)) } else { "--".to_owned() };
    format!("{name:<NAME$} [{bar}] {pct:>3.0}% {:>6} MB {:>7} lines {:>7}/s  {left} left", mb(done), count(lines), count_f(rate))
}

#[expect(clippy::cast_precision_loss, reason = "a ratio for display")]
fn ratio(a: u64, b: u64) -> f64 {
    a as f64 / b as f64
}

fn short_name(name: &str) -> String {
    if name.chars().count() <= NAME {
        return name.to_owned();
    }
    let tail: String = name.chars().rev().take(NAME - 1).collect::<Vec<_>>().into_iter().rev().collect();
    format!("…{tail}")
}

/// Megabytes (10^6 bytes), one decimal below 10.
fn mb(bytes: u64) -> String {
    let m = ratio(bytes, 1_000_000);
    if m < 10.0 { format!("{m:.1}") } else { format!("{m:.0}") }
}

/// 987, 12.3k, 4.56M.
fn count(n: u64) -> String {
    count_f(ratio(n, 1))
}

fn count_f(n: f64) -> String {
    if n < 1_000.0 {
        format!("{n:.0}")
    } else if n < 1_000_000.0 {
        format!("{:.1}k", n / 1_000.0)
    } else {
        format!("{:.2}M", n / 1_000_000.0)
    }
}

/// Seconds left as `42 s`, `3:07` or `1:02:03`.
fn eta(secs: f64) -> String {
    #[expect(clippy::cast_possible_truncation, clippy::cast_sign_loss, reason = "clamped to 0..=1e9 first")]
    let s = secs.clamp(0.0, 1e9).ceil() as u64;
    match s {
        0..60 => format!("{s} s"),
        60..3600 => format!("{}:{:02}", s / 60, s % 60),
        _ => format!("{}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60),
    }
}

#[cfg(test)]
mod tests {
    use super::render;
    use std::time::Duration;

    #[test]
    fn the_line_shows_bar_share_size_lines_speed_and_time_left() {
        let l = render("mail.log", 45_000_000, 100_000_000, 300_000, Duration::from_secs(3), false);
        assert_eq!(l, "mail.log                 [=========>          ]  45%     45 MB  300.0k lines  100.0k/s  4 s left");
        let l = render("mail.log.2.gz", 0, 8_000_000, 0, Duration::ZERO, false);
        assert_eq!(l, "mail.log.2.gz            [>                   ]   0%    0.0 MB       0 lines       0/s  -- left");
        // Ten minutes in, a third done: twenty minutes left.
        let l = render("m", 1, 3, 5, Duration::from_mins(10), false);
        assert!(l.ends_with("20:00 left"), "{l}");
    }

    #[test]
    fn the_final_line_has_the_totals() {
        let l = render("mail.log", 10, 137_300_000, 1_000_000, Duration::from_millis(520), true);
        assert_eq!(l, "mail.log                 [====================] 100%    137 MB   1.00M lines in 0.5 s (1.92M/s)");
    }

    #[test]
    fn odd_inputs_stay_in_bounds() {
        // Empty file, more read than the size (an archive still growing), a long name.
        assert!(render("x", 0, 0, 0, Duration::ZERO, false).contains("[====================] 100%"));
        assert!(render("x", 9, 3, 1, Duration::from_secs(1), false).contains("[====================] 100%"));
        let l = render(&"a".repeat(100), 1, 2, 1, Duration::from_secs(1), false);
        assert!(l.starts_with('…') && l.chars().take_while(|&c| c != ' ').count() == 24, "{l}");
        assert!(render("x", 1, 1_000_000_000, 1, Duration::from_secs(100_000), false).contains(':'));
    }
}
