//! Server-rendered SVG charts for the web UI: stacked bars over time
//! ([`stacked_bars`]), a horizontal bar list ([`hbars`]) and one 100 % bar
//! of parts ([`proportion_bar`]). Each returns a complete inline `<svg>`
//! that reads without JS and scales to its container (`width="100%"`,
//! fixed 720-unit-wide viewBox, so it fits a phone).
//!
//! Accessibility: the root is `role="img"`, labelled by its `<title>` and
//! described by a `<desc>` that repeats the caller's description plus a
//! summary of the data; every bar and segment carries a `<title>` child
//! (the native tooltip) naming its label and exact value.
//!
//! Colours come from CSS classes only, so the stylesheet (and its dark
//! mode) decides: series use the caller's class (`s-sent`, `s-bounced`,
//! `s-deferred`, `s-expired`, `s-returned`, `s-inbound`, `s-outbound`, …);
//! the furniture uses `c-grid`, `c-axis`, `c-tick`, `c-xlabel`, `c-legend`,
//! `c-label`, `c-value`, `c-inbar`, `c-track`, `c-empty`, `c-hit`. The only
//! presentation attributes are neutral fallbacks that any CSS rule
//! overrides: `fill`/`stroke="currentColor"` so text and lines follow the
//! page's text colour, `fill="none"` on frames and hover areas, and
//! `font-size`, on which the layout's width estimates rest. There is no
//! inline `style`, which the UI's CSP forbids anyway. Without a stylesheet
//! a chart still reads, in one colour.
//!
//! Bounds: all text passes [`escape`] (and is cut to `MAX_TEXT` characters,
//! `MAX_LABEL` on the chart itself); at most [`CHART_MAX_BARS`] bars (adjacent
//! buckets are summed beyond that), [`CHART_MAX_SERIES`] series, [`CHART_MAX_ROWS`]
//! rows and [`CHART_MAX_PARTS`] parts are drawn, the rest is named in the
//! description; sums are `u128` and scaling is integer arithmetic, so any
//! `u64` values render without overflow or panic. Output is deterministic
//! (ids derive from a hash of the input) and nothing here reads the clock
//! or does I/O.

use crate::limits::{CHART_MAX_BARS, CHART_MAX_PARTS, CHART_MAX_ROWS, CHART_MAX_SERIES};
use std::borrow::Cow;
use std::fmt::{self, Write as _};

/// Width of every chart's coordinate system, in SVG user units.
const W: u64 = 720;
/// Height of a stacked-bar chart.
const STACK_H: u64 = 260;
/// Font size of all chart text; the width estimates below assume it.
const FONT: u64 = 11;
/// Estimated advance of one character at `FONT`, in tenths of a unit: a
/// generous figure for digits and Latin text, so estimated label widths
/// are upper bounds (CJK text is wider and may still touch).
const CHAR_W: u64 = 70;
/// Least room between two x-axis labels, tenths of a unit.
const LABEL_GAP: u64 = 80;
/// Left edge of a stacked chart's plot (room for tick labels), tenths.
const PLOT_LEFT: u64 = 480;
/// Width of a stacked chart's plot, tenths: 664 units.
const PLOT_W: u64 = W * 10 - PLOT_LEFT - 80;

/// Characters of a label drawn on a chart; tooltips keep up to `MAX_TEXT`.
const MAX_LABEL: usize = 24;
/// Characters kept of any one text (title, description, label, name).
const MAX_TEXT: usize = 300;

/// One time bucket (x position) of a stacked chart.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Bucket {
    /// What the bucket is called on the axis and in tooltips, e.g.
    /// `2026-10-01` or `14:00`.
    pub(crate) label: String,
}

/// One stacked series of a stacked chart.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Series {
    /// Name in the legend and tooltips, e.g. `sent`.
    pub(crate) name: String,
    /// CSS class of its bars, e.g. `s-sent`.
    pub(crate) class: &'static str,
    /// One value per bucket: missing values count as 0, extra ones are
    /// ignored.
    pub(crate) values: Vec<u64>,
}

/// The few words a chart writes itself, so callers can translate them.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Words<'a> {
    /// Drawn on a chart without data.
    pub(crate) no_data: &'a str,
    /// Precedes the per-series totals in a stacked chart's description.
    pub(crate) total: &'a str,
    /// Follows the count of items left out, e.g. `3 more not shown`.
    pub(crate) more: &'a str,
}

#[cfg(test)]
impl Words<'static> {
    /// English.
    pub(crate) const EN: Words<'static> = Words { no_data: "no data in this period", total: "Total", more: "more not shown" };
}

/// XML-escapes `s` for text and (double- or single-quoted) attribute
/// values, as a `Display` value that writes without allocating. Besides the
/// five markup characters it replaces, with U+FFFD, the characters XML
/// forbids (C0 controls other than tab, newline and carriage return,
/// U+FFFE, U+FFFF), C1 controls, and the bidirectional overrides and
/// isolates (U+202A–U+202E, U+2066–U+2069), which could make a hostile
/// label display as something else.
pub(crate) fn escape(s: &str) -> Escaped<'_> {
    Escaped(s)
}

/// See [`escape`].
#[derive(Clone, Copy, Debug)]
pub(crate) struct Escaped<'a>(&'a str);

impl fmt::Display for Escaped<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = self.0;
        let mut plain = 0;
        for (i, c) in s.char_indices() {
            let rep = match c {
                '&' => "&amp;",
                '<' => "&lt;",
                '>' => "&gt;",
                '"' => "&quot;",
                '\'' => "&#39;",
                '\t' | '\n' | '\r' => continue,
                '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}' | '\u{FFFE}' | '\u{FFFF}' => "\u{FFFD}",
                c if c.is_control() => "\u{FFFD}",
                _ => continue,
            };
            f.write_str(s.get(plain..i).unwrap_or_default())?;
            f.write_str(rep)?;
            plain = i + c.len_utf8();
        }
        f.write_str(s.get(plain..).unwrap_or_default())
    }
}

/// `s` cut to `max` characters (the last one then `…`).
fn clip(s: &str, max: usize) -> Cow<'_, str> {
    if s.char_indices().nth(max).is_none() {
        return Cow::Borrowed(s);
    }
    let end = s.char_indices().nth(max.saturating_sub(1)).map_or(s.len(), |(i, _)| i);
    Cow::Owned(format!("{}…", s.get(..end).unwrap_or_default()))
}

/// A length in tenths of a user unit, written as a decimal.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct T(u64);

impl fmt::Display for T {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 % 10 {
            0 => write!(f, "{}", self.0 / 10),
            d => write!(f, "{}.{d}", self.0 / 10),
        }
    }
}

/// `v / max` of `len`, rounded down (`v` above `max` counts as `max`): in
/// integers, after dropping low bits of both so the product cannot
/// overflow for any `u128` (`len` is a chart length, far below 2^20).
fn scale(v: u128, max: u128, len: u64) -> u64 {
    let shift = (128 - max.leading_zeros()).saturating_sub(100);
    let (v, max) = (v.min(max) >> shift, max >> shift);
    if max == 0 {
        return 0;
    }
    u64::try_from(v * u128::from(len) / max).unwrap_or(len)
}

/// Like [`scale`], rounded to nearest.
fn scale_round(v: u128, max: u128, len: u64) -> u64 {
    let shift = (128 - max.leading_zeros()).saturating_sub(100);
    let (v, max) = (v.min(max) >> shift, max >> shift);
    if max == 0 {
        return 0;
    }
    u64::try_from((2 * v * u128::from(len) + max) / (2 * max)).unwrap_or(len)
}

/// The y axis for data up to `max` (> 0): the smallest step of the form
/// 1, 2 or 5 × 10^n with at most 4 intervals, and the number of intervals
/// (2 to 4, so 3 to 5 tick values counting 0). Counts are whole, so the
/// step is at least 1.
fn nice_axis(max: u128) -> (u128, u128) {
    let mut pow: u128 = 1;
    loop {
        for m in [1, 2, 5] {
            let Some(step) = pow.checked_mul(m) else { break };
            let k = max.div_ceil(step);
            if k <= 4 {
                let k = k.max(2);
                if step.checked_mul(k).is_some() {
                    return (step, k);
                }
                // The nice axis would not fit in u128 (data near 2^128):
                // an un-nice one instead, up to 3 short of `max` (values
                // above the axis are drawn at its top).
                return ((max / 4).max(1), 4);
            }
        }
        match pow.checked_mul(10) {
            Some(p) => pow = p,
            None => return ((max / 4).max(1), 4),
        }
    }
}

/// A tick value in at most about 5 characters: exact below 10 000, else
/// with an SI suffix and at most one decimal (which nice ticks never need
/// more of).
fn compact(v: u128) -> String {
    const UNITS: [&str; 10] = ["k", "M", "G", "T", "P", "E", "Z", "Y", "R", "Q"];
    if v < 10_000 {
        return v.to_string();
    }
    let mut unit: u128 = 1;
    let mut suffix = "";
    for s in UNITS {
        match unit.checked_mul(1000) {
            Some(u) if u <= v => {
                unit = u;
                suffix = s;
            }
            _ => break,
        }
    }
    let (whole, tenths) = (v / unit, v % unit * 10 / unit);
    if tenths == 0 { format!("{whole}{suffix}") } else { format!("{whole}.{tenths}{suffix}") }
}

/// `part` of `total` as a percentage with one decimal; never rounds a
/// non-zero part to 0 or a partial one to 100.
fn percent(part: u128, total: u128) -> String {
    let pm = scale_round(part, total, 1000);
    if part > 0 && pm == 0 {
        "<0.1%".to_owned()
    } else if part < total && pm == 1000 {
        ">99.9%".to_owned()
    } else {
        format!("{}.{}%", pm / 10, pm % 10)
    }
}

/// FNV-1a over everything drawn: the chart's id, stable for equal input.
/// Two identical charts on one page share ids, and their texts are then
/// identical too, so the labels still read right.
#[derive(Clone, Copy)]
struct Fnv(u64);

impl Fnv {
    fn new(kind: &str) -> Fnv {
        let mut h = Fnv(0xcbf2_9ce4_8422_2325);
        h.bytes(kind.as_bytes());
        h
    }
    fn bytes(&mut self, b: &[u8]) {
        for &x in b.iter().chain(&[0xff]) {
            self.0 = (self.0 ^ u64::from(x)).wrapping_mul(0x0100_0000_01b3);
        }
    }
    fn num(&mut self, v: u64) {
        self.bytes(&v.to_le_bytes());
    }
    fn id(self) -> String {
        format!("pl-chart-{:016x}", self.0)
    }
}

/// Writes the root element, `<title>` and `<desc>`.
fn open(out: &mut String, kind: &str, height: u64, id: &str, title: &str, desc: &str) {
    let _ = write!(
        out,
        r#"<svg xmlns="http://www.w3.org/2000/svg" class="chart {kind}" viewBox="0 0 {W} {height}" width="100%" role="img" aria-labelledby="{id}-t" aria-describedby="{id}-d" font-size="{FONT}" font-family="sans-serif" fill="currentColor"><title id="{id}-t">{}</title><desc id="{id}-d">{}</desc>"#,
        escape(&clip(title, MAX_TEXT)),
        escape(desc),
    );
}

/// The caller's description (cut), then `summary`, as one paragraph.
fn describe(desc: &str, summary: &str) -> String {
    let desc = clip(desc.trim(), MAX_TEXT);
    match (desc.is_empty(), summary.is_empty()) {
        (_, true) => desc.into_owned(),
        (true, false) => summary.to_owned(),
        (false, false) => format!("{desc} {summary}"),
    }
}

/// A chart of `height` that says there is nothing to show.
fn empty_chart(kind: &str, height: u64, words: &Words<'_>, title: &str, desc: &str) -> String {
    let mut h = Fnv::new(kind);
    h.bytes(title.as_bytes());
    h.bytes(desc.as_bytes());
    let id = h.id();
    let no_data = clip(words.no_data, MAX_TEXT);
    let mut out = String::with_capacity(1024);
    open(&mut out, &format!("{kind} chart-empty"), height, &id, title, &describe(desc, &format!("{no_data}.")));
    let _ = write!(
        out,
        r#"<rect class="c-track" fill="none" x="0.5" y="0.5" width="{}" height="{}"/><text class="c-empty" x="{}" y="{}" text-anchor="middle">{}</text></svg>"#,
        W - 1,
        height - 1,
        W / 2,
        height / 2 + FONT / 3,
        escape(&no_data),
    );
    out
}

/// Lays out legend entries left to right, wrapping; returns the markup
/// (rows from `top`) and the number of rows.
fn legend<'a>(items: impl Iterator<Item = (&'a str, &'a str)>, top: u64) -> (String, u64) {
    const ROW: u64 = 16;
    let mut out = String::from(r#"<g class="c-legend">"#);
    let (mut x, mut row) = (0, 0);
    for (name, class) in items {
        let name = clip(name, MAX_LABEL);
        let w = 140 + name.chars().count() as u64 * CHAR_W + 160;
        if x > 0 && x + w > W * 10 {
            x = 0;
            row += 1;
        }
        let y = top * 10 + row * ROW * 10;
        let _ = write!(
            out,
            r#"<rect class="{}" x="{}" y="{}" width="10" height="10"/><text x="{}" y="{}">{}</text>"#,
            escape(class),
            T(x),
            T(y),
            T(x + 140),
            T(y + 90),
            escape(&name),
        );
        x += w;
    }
    out.push_str("</g>");
    (out, row + 1)
}

/// The x-axis labels to draw for `bars` equal slots over `plot_w` tenths
/// from `left` tenths, each label at most `chars` characters wide: every
/// k-th bar, k chosen so labels never overlap, centred under their bar but
/// kept inside the chart; an edge label that would then touch its
/// neighbour is left out, so the rest stay evenly spaced. Returns (bar
/// index, centre in tenths).
fn x_labels(bars: usize, left: u64, plot_w: u64, chars: u64) -> Vec<(usize, u64)> {
    let n = bars as u64;
    if n == 0 {
        return Vec::new();
    }
    let slot = (plot_w / n).max(1);
    let label_w = chars * CHAR_W;
    let half = label_w / 2;
    // +2: slot edges and centres are rounded down, by a tenth each.
    let k = usize::try_from((label_w + LABEL_GAP + 2).div_ceil(slot).max(1)).unwrap_or(usize::MAX);
    let mut out: Vec<(usize, u64)> = (0..bars)
        .step_by(k)
        .map(|i| {
            let x0 = left + i as u64 * plot_w / n;
            let x1 = left + (i as u64 + 1) * plot_w / n;
            (i, (x0 + (x1 - x0) / 2).clamp(half, (W * 10).saturating_sub(half).max(half)))
        })
        .collect();
    let apart = |a: (usize, u64), b: (usize, u64)| b.1 >= a.1 + label_w + LABEL_GAP;
    if let [a, b, ..] = out[..]
        && !apart(a, b)
    {
        out.remove(0);
    }
    if let [.., a, b] = out[..]
        && !apart(a, b)
    {
        out.pop();
    }
    out
}

/// [`stacked_bars_with`] in English.
#[cfg(test)]
pub(crate) fn stacked_bars(title: &str, desc: &str, buckets: &[Bucket], series: &[Series]) -> String {
    stacked_bars_with(&Words::EN, title, desc, buckets, series)
}

/// Vertical stacked bars over time: one bar per bucket (or per run of
/// buckets beyond [`CHART_MAX_BARS`]), series stacked in the given order from the
/// bottom, a y axis of 3–5 nice ticks, thinned x labels and a legend. No
/// buckets, no series or only zeros give a "no data" chart.
pub(crate) fn stacked_bars_with(words: &Words<'_>, title: &str, desc: &str, buckets: &[Bucket], series: &[Series]) -> String {
    const BOTTOM: u64 = 220;
    let shown = series.get(..CHART_MAX_SERIES).unwrap_or(series);
    let n = buckets.len();
    let per = n.div_ceil(CHART_MAX_BARS).max(1);
    let bars = n.div_ceil(per);
    let ns = shown.len();
    let mut h = Fnv::new("bars");
    h.bytes(title.as_bytes());
    h.bytes(desc.as_bytes());
    for b in buckets {
        h.bytes(b.label.as_bytes());
    }
    let sums = sum_bars(shown, n, per, &mut h);
    let totals: Vec<u128> = sums.chunks(ns.max(1)).map(|c| c.iter().fold(0u128, |a, &v| a.saturating_add(v))).collect();
    let max = totals.iter().copied().max().unwrap_or(0);
    if max == 0 {
        return empty_chart("chart-bars", STACK_H, words, title, desc);
    }
    let id = h.id();
    let label = |i: usize| buckets.get(i).map_or("", |b| b.label.as_str());
    // The bar's label: its bucket's, or first – last of a merged run.
    let bar_label = |bar: usize| bar_label_range(label(bar * per), label(((bar + 1) * per).min(n).saturating_sub(1)));

    // Description: the caller's words, the period, per-series totals.
    let mut summary = format!("{}: {}", bar_label_range(label(0), label(n.saturating_sub(1))), clip(words.total, MAX_TEXT));
    for (si, s) in shown.iter().enumerate() {
        let t = (0..bars).filter_map(|b| sums.get(b * ns + si)).fold(0u128, |a, &v| a.saturating_add(v));
        let _ = write!(summary, "{} {}: {t}", if si == 0 { "" } else { "," }, clip(&s.name, MAX_TEXT));
    }
    summary.push('.');
    if series.len() > ns {
        let _ = write!(summary, " {} {}.", series.len() - ns, clip(words.more, MAX_TEXT));
    }

    let (legend_svg, rows) = legend(shown.iter().map(|s| (s.name.as_str(), s.class)), 2);
    let top = (2 + rows * 16 + 8) * 10;
    let bottom = (STACK_H * 10) - BOTTOM;
    let plot_h = bottom - top;
    let mut out = String::with_capacity(2048 + bars * (ns + 1) * 160);
    open(&mut out, "chart-bars", STACK_H, &id, title, &describe(desc, &summary));
    out.push_str(&legend_svg);

    let axis = y_axis(&mut out, max, PLOT_LEFT, PLOT_LEFT + PLOT_W, bottom, plot_h);

    // Bars: per bar a group whose title lists every series, an invisible
    // full-height hit area (so thin bars are easy to hover), and one rect
    // per non-zero segment with its own title.
    out.push_str(r#"<g class="c-bars">"#);
    let nb = bars as u64;
    for bar in 0..bars {
        let x0 = PLOT_LEFT + bar as u64 * PLOT_W / nb;
        let x1 = PLOT_LEFT + (bar as u64 + 1) * PLOT_W / nb;
        let slot = x1 - x0;
        let bw = if slot >= 30 { (slot * 8 / 10).max(1) } else { slot.max(1) };
        let bx = x0 + (slot - bw.min(slot)) / 2;
        let bl = bar_label(bar);
        let cells = sums.get(bar * ns..(bar + 1) * ns).unwrap_or_default();
        let _ =
            write!(out, "<g><title>{}: {} {}", escape(&bl), escape(&clip(words.total, MAX_TEXT)), totals.get(bar).copied().unwrap_or(0));
        for (s, v) in shown.iter().zip(cells) {
            let _ = write!(out, ", {}: {v}", escape(&clip(&s.name, MAX_TEXT)));
        }
        let _ = write!(
            out,
            r#"</title><rect class="c-hit" fill="none" pointer-events="all" x="{}" y="{}" width="{}" height="{}"/>"#,
            T(x0),
            T(top),
            T(slot),
            T(plot_h)
        );
        let mut cum: u128 = 0;
        for (s, &v) in shown.iter().zip(cells) {
            let before = cum;
            cum = cum.saturating_add(v);
            if v == 0 {
                continue;
            }
            let (y_top, y_bot) = (bottom - scale(cum, axis, plot_h), bottom - scale(before, axis, plot_h));
            let _ = write!(
                out,
                r#"<rect class="{}" x="{}" y="{}" width="{}" height="{}"><title>{} — {}: {v}</title></rect>"#,
                escape(s.class),
                T(bx),
                T(y_top),
                T(bw),
                T(y_bot - y_top),
                escape(&bl),
                escape(&clip(&s.name, MAX_TEXT)),
            );
        }
        out.push_str("</g>");
    }
    out.push_str("</g>");

    // X labels: every k-th bar, never overlapping.
    let chars = (0..bars).map(|b| clip(label(b * per), MAX_LABEL).chars().count() as u64).max().unwrap_or(0);
    out.push_str(r#"<g class="c-xlabel" text-anchor="middle">"#);
    for (bar, c) in x_labels(bars, PLOT_LEFT, PLOT_W, chars) {
        let _ = write!(out, r#"<text x="{}" y="{}">{}</text>"#, T(c), T(STACK_H * 10 - 60), escape(&clip(label(bar * per), MAX_LABEL)));
    }
    out.push_str("</g></svg>");
    out
}

/// The values of `series` over `n` buckets summed per run of `per` buckets
/// (one bar): `sums[bar * series.len() + s]`, in `u128` so no sum of `u64`
/// values overflows. Feeds everything into `h` on the way.
fn sum_bars(series: &[Series], n: usize, per: usize, h: &mut Fnv) -> Vec<u128> {
    let ns = series.len();
    let mut sums = vec![0u128; n.div_ceil(per.max(1)) * ns];
    for (si, s) in series.iter().enumerate() {
        h.bytes(s.name.as_bytes());
        h.bytes(s.class.as_bytes());
        for (bi, &v) in s.values.iter().take(n).enumerate() {
            h.num(v);
            if let Some(cell) = sums.get_mut(bi / per.max(1) * ns + si) {
                *cell = cell.saturating_add(u128::from(v));
            }
        }
    }
    sums
}

/// Writes the y axis of a plot from `left` to `right` (tenths) whose zero
/// is at `bottom` and whose height is `plot_h`: grid lines, base line and
/// nice tick labels for data up to `max`. Returns the axis maximum.
fn y_axis(out: &mut String, max: u128, left: u64, right: u64, bottom: u64, plot_h: u64) -> u128 {
    let (step, k) = nice_axis(max);
    let axis = step * k;
    let y = |j: u128| bottom - scale(j * step, axis, plot_h);
    out.push_str(r#"<g class="c-grid" stroke="currentColor" stroke-opacity="0.15">"#);
    for j in 1..=k {
        let _ = write!(out, r#"<line x1="{}" x2="{}" y1="{}" y2="{}"/>"#, T(left), T(right), T(y(j)), T(y(j)));
    }
    let _ = write!(
        out,
        r#"</g><line class="c-axis" stroke="currentColor" x1="{}" x2="{}" y1="{}" y2="{}"/><g class="c-tick" text-anchor="end">"#,
        T(left),
        T(right),
        T(bottom),
        T(bottom)
    );
    for j in 0..=k {
        let _ = write!(out, r#"<text x="{}" y="{}">{}</text>"#, T(left.saturating_sub(60)), T(y(j) + 35), compact(j * step));
    }
    out.push_str("</g>");
    axis
}

/// `first – last`, or one of them when they are equal.
fn bar_label_range(first: &str, last: &str) -> String {
    if first == last { clip(first, MAX_TEXT).into_owned() } else { format!("{} – {}", clip(first, MAX_TEXT), clip(last, MAX_TEXT)) }
}

/// [`hbars_with`] in English.
#[cfg(test)]
pub(crate) fn hbars(title: &str, desc: &str, rows: &[(String, u64, &'static str)]) -> String {
    hbars_with(&Words::EN, title, desc, rows)
}

/// A horizontal bar list in the given order (e.g. top domains, top
/// attacking IPs): label on the left, bar scaled to the largest value,
/// exact value after the bar. At most [`CHART_MAX_ROWS`] rows; no rows or only
/// zeros give a "no data" chart.
/// The id hash and the description's summary of labelled values
/// (`label: value` + `extra(value)`, `; `-separated, then how many of `all`
/// were left out).
fn labelled(
    kind: &str,
    words: &Words<'_>,
    title: &str,
    desc: &str,
    shown: &[(String, u64, &'static str)],
    all: usize,
    extra: impl Fn(u64) -> String,
) -> (Fnv, String) {
    let mut h = Fnv::new(kind);
    h.bytes(title.as_bytes());
    h.bytes(desc.as_bytes());
    let mut summary = String::new();
    for (i, (label, v, class)) in shown.iter().enumerate() {
        h.bytes(label.as_bytes());
        h.bytes(class.as_bytes());
        h.num(*v);
        let _ = write!(summary, "{}{}: {v}{}", if i == 0 { "" } else { "; " }, clip(label, MAX_TEXT), extra(*v));
    }
    summary.push('.');
    if all > shown.len() {
        let _ = write!(summary, " {} {}.", all - shown.len(), clip(words.more, MAX_TEXT));
    }
    (h, summary)
}

pub(crate) fn hbars_with(words: &Words<'_>, title: &str, desc: &str, rows: &[(String, u64, &'static str)]) -> String {
    const ROW: u64 = 220;
    const LABEL_END: u64 = 1840;
    const BAR_X: u64 = 1900;
    let shown = rows.get(..CHART_MAX_ROWS).unwrap_or(rows);
    let max = shown.iter().map(|r| r.1).max().unwrap_or(0);
    let height = (shown.len() as u64 * ROW + 80).div_ceil(10);
    if max == 0 {
        return empty_chart("chart-hbars", height.max(60), words, title, desc);
    }
    let (h, summary) = labelled("hbars", words, title, desc, shown, rows.len(), |_| String::new());
    // Room for the longest value after the bars.
    let digits = shown.iter().map(|r| r.1.to_string().len() as u64).max().unwrap_or(1);
    let bar_max = W * 10 - BAR_X - (digits * CHAR_W + 80);
    let mut out = String::with_capacity(1024 + shown.len() * 300);
    open(&mut out, "chart-hbars", height, &h.id(), title, &describe(desc, &summary));
    for (i, (label, v, class)) in shown.iter().enumerate() {
        let y = 40 + i as u64 * ROW;
        let w = match scale(u128::from(*v), u128::from(max), bar_max) {
            0 if *v > 0 => 10,
            w => w,
        };
        let full = clip(label, MAX_TEXT);
        let _ = write!(
            out,
            r#"<text class="c-label" x="{}" y="{}" text-anchor="end">{}</text><rect class="{}" x="{}" y="{}" width="{}" height="16"><title>{}: {v}</title></rect><text class="c-value" x="{}" y="{}">{v}</text>"#,
            T(LABEL_END),
            T(y + 120),
            escape(&clip(label, MAX_LABEL)),
            escape(class),
            T(BAR_X),
            T(y + 10),
            T(w),
            escape(&full),
            T(BAR_X + w + 50),
            T(y + 120),
        );
    }
    out.push_str("</svg>");
    out
}

/// [`proportion_bar_with`] in English.
#[cfg(test)]
pub(crate) fn proportion_bar(title: &str, desc: &str, parts: &[(String, u64, &'static str)]) -> String {
    proportion_bar_with(&Words::EN, title, desc, parts)
}

/// One full-width bar split into `parts` in proportion (e.g. sent, bounced,
/// deferred of a period), with the share printed inside wide segments and
/// a legend of name, share and count. At most [`CHART_MAX_PARTS`] parts; a zero
/// total gives a "no data" chart.
pub(crate) fn proportion_bar_with(words: &Words<'_>, title: &str, desc: &str, parts: &[(String, u64, &'static str)]) -> String {
    const BAR_H: u64 = 280;
    const ROW: u64 = 180;
    let shown = parts.get(..CHART_MAX_PARTS).unwrap_or(parts);
    let total = shown.iter().fold(0u128, |a, p| a + u128::from(p.1));
    if total == 0 {
        return empty_chart("chart-share", BAR_H.div_ceil(10) + 6, words, title, desc);
    }
    let (h, summary) = labelled("share", words, title, desc, shown, parts.len(), |v| format!(" ({})", percent(u128::from(v), total)));
    // Legend first, to know the height.
    let entries: Vec<String> =
        shown.iter().map(|(name, v, _)| format!("{} {} ({v})", clip(name, MAX_LABEL), percent(u128::from(*v), total))).collect();
    let mut legend_svg = String::from(r#"<g class="c-legend">"#);
    let (mut x, mut row) = (0u64, 0u64);
    for ((_, _, class), text) in shown.iter().zip(&entries) {
        let w = 140 + text.chars().count() as u64 * CHAR_W + 200;
        if x > 0 && x + w > W * 10 {
            x = 0;
            row += 1;
        }
        let y = BAR_H + 80 + row * ROW;
        let _ = write!(
            legend_svg,
            r#"<rect class="{}" x="{}" y="{}" width="10" height="10"/><text x="{}" y="{}">{}</text>"#,
            escape(class),
            T(x),
            T(y),
            T(x + 140),
            T(y + 90),
            escape(text),
        );
        x += w;
    }
    legend_svg.push_str("</g>");
    let height = (BAR_H + 80 + (row + 1) * ROW).div_ceil(10);

    let mut out = String::with_capacity(1024 + shown.len() * 400);
    open(&mut out, "chart-share", height, &h.id(), title, &describe(desc, &summary));
    let _ = write!(out, r#"<rect class="c-track" fill="none" x="0" y="0" width="{W}" height="{}"/>"#, T(BAR_H));
    let mut cum: u128 = 0;
    for (name, v, class) in shown {
        let before = cum;
        cum += u128::from(*v);
        if *v == 0 {
            continue;
        }
        let (x0, x1) = (scale(before, total, W * 10), scale(cum, total, W * 10));
        let pct = percent(u128::from(*v), total);
        let _ = write!(
            out,
            r#"<rect class="{}" x="{}" y="0" width="{}" height="{}"><title>{}: {v} ({})</title></rect>"#,
            escape(class),
            T(x0),
            T(x1 - x0),
            T(BAR_H),
            escape(&clip(name, MAX_TEXT)),
            escape(&pct),
        );
        if x1 - x0 >= pct.len() as u64 * CHAR_W + 80 {
            let _ = write!(
                out,
                r#"<text class="c-inbar" x="{}" y="{}" text-anchor="middle">{}</text>"#,
                T(x0 + (x1 - x0) / 2),
                T(BAR_H / 2 + 40),
                escape(&pct)
            );
        }
    }
    out.push_str(&legend_svg);
    out.push_str("</svg>");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A tiny well-formedness check of our own output: tags balance and
    /// nest, there is one root, attribute values are quoted and free of
    /// `<`, text holds no raw `<` or `>`, and every `&` starts one of the
    /// entities `escape` writes.
    fn check_xml(s: &str) -> Result<(), String> {
        fn entities(t: &str) -> Result<(), String> {
            for (i, _) in t.match_indices('&') {
                let rest = &t[i..];
                if !["&amp;", "&lt;", "&gt;", "&quot;", "&#39;"].iter().any(|e| rest.starts_with(e)) {
                    return Err(format!("bare & in {t:?}"));
                }
            }
            Ok(())
        }
        fn attrs(mut a: &str) -> Result<(), String> {
            let mut names = Vec::new();
            loop {
                a = a.trim_start();
                if a.is_empty() {
                    return Ok(());
                }
                let (name, rest) = a.split_once("=\"").ok_or_else(|| format!("bad attribute syntax at {a:?}"))?;
                if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == ':') {
                    return Err(format!("bad attribute name {name:?}"));
                }
                if names.contains(&name) {
                    return Err(format!("duplicate attribute {name}"));
                }
                names.push(name);
                let (value, rest) = rest.split_once('"').ok_or("unterminated attribute value")?;
                if value.contains('<') {
                    return Err(format!("< in attribute {value:?}"));
                }
                entities(value)?;
                if !(rest.is_empty() || rest.starts_with(char::is_whitespace)) {
                    return Err(format!("no space after attribute {name}"));
                }
                a = rest;
            }
        }
        let mut stack: Vec<&str> = Vec::new();
        let mut roots = 0;
        let mut rest = s;
        while !rest.is_empty() {
            let (text, after) = rest.split_once('<').unwrap_or((rest, ""));
            if text.contains('>') {
                return Err(format!("raw > in text {text:?}"));
            }
            entities(text)?;
            if stack.is_empty() && !text.trim().is_empty() {
                return Err(format!("text outside the root: {text:?}"));
            }
            if after.is_empty() && !rest.contains('<') {
                break;
            }
            let (tag, after) = after.split_once('>').ok_or("unterminated tag")?;
            if tag.contains('<') {
                return Err(format!("< inside tag {tag:?}"));
            }
            if let Some(name) = tag.strip_prefix('/') {
                match stack.pop() {
                    Some(open) if open == name => {}
                    other => return Err(format!("</{name}> closes {other:?}")),
                }
            } else {
                let self_closing = tag.ends_with('/');
                let body = tag.strip_suffix('/').unwrap_or(tag);
                let name_end = body.find(char::is_whitespace).unwrap_or(body.len());
                let name = &body[..name_end];
                if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric()) {
                    return Err(format!("bad tag name {name:?}"));
                }
                attrs(&body[name_end..])?;
                if stack.is_empty() {
                    roots += 1;
                }
                if !self_closing {
                    stack.push(name);
                }
            }
            rest = after;
        }
        if !stack.is_empty() {
            return Err(format!("unclosed {stack:?}"));
        }
        if roots != 1 {
            return Err(format!("{roots} root elements"));
        }
        Ok(())
    }

    /// The texts of all `<title>` elements, unescaped.
    fn titles(s: &str) -> Vec<String> {
        s.split("<title")
            .skip(1)
            .filter_map(|t| t.split_once('>').and_then(|(_, r)| r.split_once("</title>")).map(|(t, _)| t))
            .map(|t| t.replace("&lt;", "<").replace("&gt;", ">").replace("&quot;", "\"").replace("&#39;", "'").replace("&amp;", "&"))
            .collect()
    }

    /// Values of attribute `name` on every element.
    fn attr_values<'a>(s: &'a str, name: &str) -> Vec<&'a str> {
        let pat = format!(" {name}=\"");
        s.match_indices(&pat).filter_map(|(i, _)| s[i + pat.len()..].split_once('"').map(|(v, _)| v)).collect()
    }

    fn buckets(labels: &[&str]) -> Vec<Bucket> {
        labels.iter().map(|l| Bucket { label: (*l).to_owned() }).collect()
    }

    fn series(name: &str, class: &'static str, values: &[u64]) -> Series {
        Series { name: name.to_owned(), class, values: values.to_vec() }
    }

    fn days(n: usize) -> Vec<Bucket> {
        (0..n).map(|i| Bucket { label: format!("2026-{:02}-{:02}", 1 + i / 28 % 12, 1 + i % 28) }).collect()
    }

    /// Deterministic xorshift for the randomised tests.
    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }
        fn below(&mut self, n: u64) -> u64 {
            self.next() % n
        }
        fn text(&mut self) -> String {
            const BITS: [&str; 14] = ["<", ">", "&", "\"", "'", "a", "gmail.com", " ", "é", "日本", "\u{202E}", "\u{0}", "&amp;", "]]>"];
            (0..self.below(12)).map(|_| BITS[usize::try_from(self.below(BITS.len() as u64)).unwrap()]).collect()
        }
        fn value(&mut self) -> u64 {
            match self.below(4) {
                0 => 0,
                1 => self.below(10),
                2 => self.next(),
                _ => u64::MAX - self.below(3),
            }
        }
    }

    #[test]
    fn escape_hostile_text() {
        assert_eq!(
            escape(r#"<script>alert('x&y')</script> "q""#).to_string(),
            "&lt;script&gt;alert(&#39;x&amp;y&#39;)&lt;/script&gt; &quot;q&quot;"
        );
        assert_eq!(escape("&amp;").to_string(), "&amp;amp;");
        assert_eq!(escape("plain, ünïcode 日本").to_string(), "plain, ünïcode 日本");
        assert_eq!(escape("").to_string(), "");
    }

    #[test]
    fn escape_replaces_what_xml_forbids_and_bidi_overrides() {
        assert_eq!(escape("a\u{0}b\u{1b}c\u{7f}\u{85}").to_string(), "a\u{FFFD}b\u{FFFD}c\u{FFFD}\u{FFFD}");
        assert_eq!(escape("ab\u{202E}moc.evil\u{2066}x\u{FFFF}").to_string(), "ab\u{FFFD}moc.evil\u{FFFD}x\u{FFFD}");
        assert_eq!(escape("tab\tnl\ncr\r").to_string(), "tab\tnl\ncr\r");
    }

    #[test]
    fn hostile_title_desc_labels_stay_text() {
        let evil = r#"</title><script>alert(1)</script><title x="'&"#;
        let charts = [
            stacked_bars(evil, evil, &buckets(&[evil, "b"]), &[series(evil, "s-sent", &[1, 2])]),
            hbars(evil, evil, &[(evil.to_owned(), 3, "s-sent")]),
            proportion_bar(evil, evil, &[(evil.to_owned(), 3, "s-sent"), ("b".to_owned(), 1, "s-bounced")]),
            stacked_bars(evil, evil, &[], &[]),
        ];
        for c in &charts {
            check_xml(c).unwrap_or_else(|e| panic!("{e}\n{c}"));
            assert!(!c.contains("<script"), "{c}");
            assert!(titles(c).iter().any(|t| t.contains("<script>alert(1)</script>")), "the text survives, escaped: {c}");
        }
    }

    #[test]
    fn hostile_class_cannot_break_out() {
        let c = hbars("t", "d", &[("a".to_owned(), 1, "x\" onload=\"alert(1)")]);
        check_xml(&c).unwrap();
        assert!(!c.contains("\" onload"));
    }

    #[test]
    fn check_xml_catches_breakage() {
        assert!(check_xml("<svg><title>a</title></svg>").is_ok());
        assert!(check_xml("<svg><title>a<b</title></svg>").is_err());
        assert!(check_xml("<svg><title>a</svg>").is_err());
        assert!(check_xml(r#"<svg a="x<y"/>"#).is_err());
        assert!(check_xml("<svg>a & b</svg>").is_err());
        assert!(check_xml("<svg/><svg/>").is_err());
        assert!(check_xml("<svg>a > b</svg>").is_err());
    }

    #[test]
    fn nice_axis_picks_1_2_5_steps_with_3_to_5_ticks() {
        assert_eq!(nice_axis(1), (1, 2));
        assert_eq!(nice_axis(4), (1, 4));
        assert_eq!(nice_axis(5), (2, 3));
        assert_eq!(nice_axis(9), (5, 2));
        assert_eq!(nice_axis(11), (5, 3));
        assert_eq!(nice_axis(21), (10, 3));
        assert_eq!(nice_axis(1234), (500, 3));
        assert_eq!(nice_axis(4000), (1000, 4));
        for max in (1..20_000).chain([u128::from(u64::MAX), 8 * u128::from(u64::MAX), 1 << 120]) {
            let (step, k) = nice_axis(max);
            let mut m = step;
            while m % 10 == 0 {
                m /= 10;
            }
            assert!([1, 2, 5].contains(&m), "{max}: step {step}");
            assert!((2..=4).contains(&k), "{max}: {k} intervals");
            assert!(step * k >= max, "{max}: axis {}", step * k);
            assert!(k == 2 || step * (k - 1) < max, "{max}: a shorter axis would do");
        }
    }

    #[test]
    fn nice_axis_near_u128_max_does_not_overflow() {
        for max in [u128::MAX, u128::MAX - 1, u128::MAX / 2, 2 * 10u128.pow(38), 10u128.pow(38) + 1] {
            let (step, k) = nice_axis(max);
            assert!(step.checked_mul(k).is_some());
            assert!((2..=4).contains(&k));
        }
    }

    #[test]
    fn compact_tick_labels() {
        assert_eq!(compact(0), "0");
        assert_eq!(compact(9999), "9999");
        assert_eq!(compact(10_000), "10k");
        assert_eq!(compact(1_500_000), "1.5M");
        assert_eq!(compact(2_000_000_000), "2G");
        assert_eq!(compact(5 * 10u128.pow(20)), "500E");
        assert_eq!(compact(u128::MAX).chars().last(), Some('Q'));
    }

    #[test]
    fn percent_rounds_but_never_to_0_or_100() {
        assert_eq!(percent(1, 4), "25.0%");
        assert_eq!(percent(2, 3), "66.7%");
        assert_eq!(percent(1, 1), "100.0%");
        assert_eq!(percent(0, 5), "0.0%");
        assert_eq!(percent(1, 100_000), "<0.1%");
        assert_eq!(percent(99_999, 100_000), ">99.9%");
        assert_eq!(percent(u128::from(u64::MAX), 2 * u128::from(u64::MAX)), "50.0%");
    }

    #[test]
    fn tenths_print_as_decimals() {
        assert_eq!(T(0).to_string(), "0");
        assert_eq!(T(7205).to_string(), "720.5");
        assert_eq!(T(40).to_string(), "4");
    }

    #[test]
    fn clip_cuts_on_characters() {
        assert_eq!(clip("abc", 3), "abc");
        assert_eq!(clip("abcd", 3), "ab…");
        assert_eq!(clip("日本語テキスト", 4), "日本語…");
        assert_eq!(clip("", 1), "");
    }

    #[test]
    fn x_labels_never_overlap_and_stay_inside() {
        for bars in 1..=CHART_MAX_BARS {
            for chars in [1, 5, 10, 16, MAX_LABEL as u64] {
                let ls = x_labels(bars, PLOT_LEFT, PLOT_W, chars);
                assert!(!ls.is_empty(), "{bars} bars, {chars} chars: the first label is always drawn");
                let half = chars * CHAR_W / 2;
                for &(i, c) in &ls {
                    assert!(i < bars);
                    assert!(c >= half && c + half <= W * 10, "{bars}/{chars}: label {i} at {c} sticks out");
                }
                for w in ls.windows(2) {
                    assert!(w[1].1 - w[0].1 >= chars * CHAR_W + LABEL_GAP, "{bars}/{chars}: {w:?} overlap");
                    assert!(w[1].0 > w[0].0);
                }
                // Regular spacing: every k-th bar (only an edge label may drop).
                if ls.len() >= 3 {
                    let k = ls[1].0 - ls[0].0;
                    assert!(ls.windows(2).skip(1).all(|w| w[1].0 - w[0].0 == k), "{bars}/{chars}: {ls:?}");
                }
            }
        }
    }

    #[test]
    fn x_labels_thin_only_when_needed() {
        // A week of dates: every day labelled.
        assert_eq!(x_labels(7, PLOT_LEFT, PLOT_W, 10).len(), 7);
        // 24 hours of `14:00`: every other hour (a label needs 43 units, a bar has 27.7).
        let ls = x_labels(24, PLOT_LEFT, PLOT_W, 5);
        assert_eq!(ls.iter().map(|l| l.0).collect::<Vec<_>>(), (0..24).step_by(2).collect::<Vec<_>>());
        // 5-minute buckets over a day: thinned to a readable handful.
        let ls = x_labels(288, PLOT_LEFT, PLOT_W, 5);
        assert!(ls.len() > 5 && ls.len() < 24, "{}", ls.len());
        // 31 dates do not fit side by side.
        let ls = x_labels(31, PLOT_LEFT, PLOT_W, 10);
        assert!(ls.len() < 31 && ls.len() >= 6, "{}", ls.len());
    }

    #[test]
    fn stacked_bars_well_formed_and_accessible() {
        let c = stacked_bars(
            "Deliveries",
            "Outcomes per day.",
            &buckets(&["2026-10-01", "2026-10-02", "2026-10-03"]),
            &[
                series("sent", "s-sent", &[10, 20, 0]),
                series("bounced", "s-bounced", &[1, 0, 0]),
                series("deferred", "s-deferred", &[0, 3, 5]),
            ],
        );
        check_xml(&c).unwrap_or_else(|e| panic!("{e}\n{c}"));
        assert!(c.starts_with("<svg "));
        assert!(c.contains(r#"role="img""#) && c.contains(r#"width="100%""#) && c.contains(r#"viewBox="0 0 720 260""#));
        let labelled = attr_values(&c, "aria-labelledby")[0];
        assert!(c.contains(&format!(r#"<title id="{labelled}">Deliveries</title>"#)), "{c}");
        let described = attr_values(&c, "aria-describedby")[0];
        assert!(
            c.contains(&format!(
                r#"<desc id="{described}">Outcomes per day. 2026-10-01 – 2026-10-03: Total sent: 30, bounced: 1, deferred: 8.</desc>"#
            )),
            "{c}"
        );
        for class in ["s-sent", "s-bounced", "s-deferred", "c-grid", "c-legend", "c-xlabel"] {
            assert!(c.contains(&format!(r#"class="{class}""#)), "{class}");
        }
        assert!(!c.contains("style="), "no inline styles");
        // No colour other than currentColor.
        assert!(attr_values(&c, "fill").iter().chain(&attr_values(&c, "stroke")).all(|v| ["currentColor", "none"].contains(v)));
        // Ticks 0, 5, 10, 15, 20, 25 would be 6; max 23 gives 0, 10, 20, 30.
        for t in ["0", "10", "20", "30"] {
            assert!(c.contains(&format!(">{t}</text>")), "tick {t}");
        }
        // The same input renders the same bytes.
        assert_eq!(
            c,
            stacked_bars(
                "Deliveries",
                "Outcomes per day.",
                &buckets(&["2026-10-01", "2026-10-02", "2026-10-03"]),
                &[
                    series("sent", "s-sent", &[10, 20, 0]),
                    series("bounced", "s-bounced", &[1, 0, 0]),
                    series("deferred", "s-deferred", &[0, 3, 5])
                ],
            )
        );
    }

    #[test]
    fn every_value_appears_in_a_title() {
        let mut rng = Rng(0x5eed);
        for _ in 0..50 {
            let n = usize::try_from(1 + rng.below(40)).unwrap();
            let bs = days(n);
            let names = ["sent", "bounced", "deferred", "expired"];
            let classes = ["s-sent", "s-bounced", "s-deferred", "s-expired"];
            let ss: Vec<Series> = names
                .iter()
                .zip(classes)
                .map(|(name, class)| series(name, class, &(0..n).map(|_| rng.value()).collect::<Vec<_>>()))
                .collect();
            let c = stacked_bars("t", "d", &bs, &ss);
            check_xml(&c).unwrap_or_else(|e| panic!("{e}\n{c}"));
            let ts = titles(&c);
            if ss.iter().flat_map(|s| &s.values).all(|&v| v == 0) {
                assert!(c.contains("chart-empty"));
                continue;
            }
            for (i, b) in bs.iter().enumerate() {
                for s in &ss {
                    let v = s.values[i];
                    let want = format!("{}: {v}", s.name);
                    assert!(ts.iter().any(|t| t.starts_with(&b.label) && t.split(", ").any(|item| item == want)), "{} {want}", b.label);
                    if v > 0 {
                        assert!(ts.contains(&format!("{} — {want}", b.label)), "segment title {} {want}", b.label);
                    }
                }
            }
            let rows: Vec<(String, u64, &'static str)> = bs.iter().map(|b| (b.label.clone(), rng.value(), "s-outbound")).collect();
            if rows.iter().take(CHART_MAX_PARTS).all(|r| r.1 == 0) {
                continue;
            }
            let c = hbars("t", "d", &rows);
            check_xml(&c).unwrap_or_else(|e| panic!("{e}\n{c}"));
            let ts = titles(&c);
            for (label, v, _) in rows.iter().take(CHART_MAX_ROWS) {
                assert!(ts.contains(&format!("{label}: {v}")), "{label}: {v}");
                assert!(c.contains(r#"<text class="c-value" "#) && c.contains(&format!(">{v}</text>")), "printed value {v}");
            }
            let c = proportion_bar("t", "d", &rows);
            check_xml(&c).unwrap_or_else(|e| panic!("{e}\n{c}"));
            let ts = titles(&c);
            for (label, v, _) in rows.iter().take(CHART_MAX_PARTS).filter(|r| r.1 > 0) {
                assert!(ts.iter().any(|t| t.starts_with(&format!("{label}: {v} ("))), "{label}: {v}");
            }
        }
    }

    #[test]
    fn empty_data_renders_a_no_data_chart() {
        let no_series = stacked_bars("t", "d", &days(3), &[]);
        let no_buckets = stacked_bars("t", "d", &[], &[series("sent", "s-sent", &[])]);
        let zeros = stacked_bars("t", "d", &days(3), &[series("sent", "s-sent", &[0, 0, 0])]);
        let hb = hbars("t", "d", &[]);
        let hz = hbars("t", "d", &[("a".to_owned(), 0, "s-sent")]);
        let pz = proportion_bar("t", "d", &[("sent".to_owned(), 0, "s-sent"), ("bounced".to_owned(), 0, "s-bounced")]);
        let pe = proportion_bar("t", "", &[]);
        for c in [&no_series, &no_buckets, &zeros, &hb, &hz, &pz, &pe] {
            check_xml(c).unwrap_or_else(|e| panic!("{e}\n{c}"));
            assert!(c.contains(">no data in this period</text>"), "{c}");
            assert!(c.contains("chart-empty") && c.contains(r#"role="img""#));
            assert!(c.contains("no data in this period.</desc>"), "{c}");
            assert!(c.contains(r#"viewBox="0 0 720 "#));
        }
        assert!(no_series.contains(r#"viewBox="0 0 720 260""#));
        assert!(pe.contains("<desc id=\"") && pe.contains("\">no data in this period.</desc>"));
    }

    #[test]
    fn translated_words() {
        let de = Words { no_data: "keine Daten in diesem Zeitraum", total: "Summe", more: "weitere nicht gezeigt" };
        let c = stacked_bars_with(&de, "t", "d", &[], &[]);
        assert!(c.contains(">keine Daten in diesem Zeitraum</text>"));
        let c = stacked_bars_with(&de, "t", "d", &days(1), &[series("a", "s-sent", &[1])]);
        assert!(c.contains("Summe a: 1."), "{c}");
    }

    #[test]
    fn huge_values_do_not_overflow() {
        let n = 1000;
        let ss: Vec<Series> = (0..CHART_MAX_SERIES + 2).map(|i| series(&format!("s{i}"), "s-sent", &vec![u64::MAX; n])).collect();
        let c = stacked_bars("t", "d", &days(n), &ss);
        check_xml(&c).unwrap();
        // Merged bars sum in u128: 3 buckets × u64::MAX.
        assert!(titles(&c).iter().any(|t| t.contains(&format!("s0: {}", 3 * u128::from(u64::MAX)))));
        assert!(c.contains("2 more not shown."));
        let c = stacked_bars("t", "d", &days(2), &[series("a", "s-sent", &[u64::MAX, 1]), series("b", "s-bounced", &[u64::MAX, 0])]);
        check_xml(&c).unwrap();
        assert!(titles(&c).iter().any(|t| t.contains(&format!("a: {}", u64::MAX))));
        assert!(titles(&c).iter().any(|t| t.contains(&format!("Total {}", 2 * u128::from(u64::MAX)))));
        let c = hbars("t", "d", &[("a".to_owned(), u64::MAX, "s-sent"), ("b".to_owned(), 1, "s-sent")]);
        check_xml(&c).unwrap();
        assert!(c.contains(&format!(">{}</text>", u64::MAX)));
        let parts: Vec<_> = (0..CHART_MAX_PARTS).map(|i| (format!("p{i}"), u64::MAX, "s-sent")).collect();
        let c = proportion_bar("t", "d", &parts);
        check_xml(&c).unwrap();
        assert!(c.contains("(8.3%)"));
        // All coordinates stay inside the canvas.
        for a in ["x", "width"] {
            for v in attr_values(&c, a).into_iter().filter(|v| *v != "100%") {
                assert!(v.parse::<f64>().unwrap() <= 720.0, "{a}={v}");
            }
        }
    }

    #[test]
    fn many_buckets_merge_into_at_most_max_bars() {
        let n = 3 * CHART_MAX_BARS + 7;
        let c = stacked_bars("t", "d", &days(n), &[series("sent", "s-sent", &vec![1; n])]);
        check_xml(&c).unwrap();
        let bars = c.matches(r#"class="c-hit""#).count();
        assert!((CHART_MAX_BARS / 2..=CHART_MAX_BARS).contains(&bars), "{bars} bars");
        // Nothing is lost: the bar totals add up to n.
        let sum: usize = titles(&c)
            .iter()
            .filter_map(|t| t.split_once(": Total ").and_then(|(_, r)| r.split(',').next()).and_then(|v| v.parse::<usize>().ok()))
            .sum();
        assert_eq!(sum, n);
        assert!(c.contains("Total sent: 1087."));
    }

    #[test]
    fn mismatched_value_counts_are_tolerated() {
        let c = stacked_bars("t", "d", &days(3), &[series("short", "s-sent", &[5]), series("long", "s-bounced", &[1, 2, 3, 4, 5])]);
        check_xml(&c).unwrap();
        assert!(c.contains("Total short: 5, long: 6."), "{c}");
    }

    #[test]
    fn bars_stay_inside_the_plot() {
        let c = stacked_bars("t", "d", &days(5), &[series("a", "s-sent", &[3, 9, 1, 0, 7]), series("b", "s-bounced", &[1, 1, 1, 1, 1])]);
        // Highest stack 10 → axis 0..10 (step 5): the tallest bar reaches the top grid line.
        let rects: Vec<(f64, f64)> = c
            .split("<rect ")
            .skip(1)
            .filter_map(|r| r.split_once('>').filter(|(_, after)| after.starts_with("<title>")).map(|(r, _)| r))
            .map(|r| (attr_values(&format!(" {r}"), "y")[0].parse().unwrap(), attr_values(&format!(" {r}"), "height")[0].parse().unwrap()))
            .collect();
        for &(y, h) in &rects {
            assert!(y >= 0.0 && y + h <= 240.0, "{y} {h}");
        }
        let top = rects.iter().map(|r| r.0).fold(f64::MAX, f64::min);
        assert!(c.contains(&format!(r#"y1="{top}""#)), "the 10 grid line is at the top of the tallest bar, {top}");
        assert_eq!(c.matches(r#"<rect class="s-sent""#).count(), 4 + 1, "zero segments are not drawn (+1: the legend swatch)");
        assert_eq!(c.matches(r#"<rect class="s-bounced""#).count(), 5 + 1, "five bars and the legend swatch");
    }

    #[test]
    fn hbars_rows_and_cap() {
        let rows: Vec<_> = (0..CHART_MAX_ROWS as u64 + 5).map(|i| (format!("host{i}.example"), 100 - i, "s-inbound")).collect();
        let c = hbars("Top", "Hosts.", &rows);
        check_xml(&c).unwrap();
        assert_eq!(c.matches(r#"<rect class="s-inbound""#).count(), CHART_MAX_ROWS);
        assert!(c.contains("5 more not shown."));
        // Rows are stacked without overlap and inside the viewBox.
        let height: f64 = attr_values(&c, "viewBox")[0].rsplit(' ').next().unwrap().parse().unwrap();
        let bars: Vec<(f64, f64)> = c
            .split(r#"<rect class="s-inbound" "#)
            .skip(1)
            .map(|r| {
                let r = format!(" {}", r.split_once('>').unwrap().0);
                (attr_values(&r, "y")[0].parse().unwrap(), attr_values(&r, "height")[0].parse().unwrap())
            })
            .collect();
        for w in bars.windows(2) {
            assert!(w[0].0 + w[0].1 < w[1].0, "{w:?}");
        }
        assert!(bars.last().is_some_and(|&(y, h)| y + h <= height));
        assert!(c.contains(">100</text>") && c.contains("<title>host0.example: 100</title>"));
        // A tiny but non-zero value still shows a sliver.
        let c = hbars("t", "d", &[("big".to_owned(), u64::MAX, "s-sent"), ("tiny".to_owned(), 1, "s-sent")]);
        assert!(!attr_values(&c, "width").contains(&"0"), "{c}");
    }

    #[test]
    fn proportion_bar_shares() {
        let c = proportion_bar(
            "Outcomes",
            "All deliveries.",
            &[
                ("sent".to_owned(), 2, "s-sent"),
                ("bounced".to_owned(), 1, "s-bounced"),
                ("deferred".to_owned(), 1, "s-deferred"),
                ("expired".to_owned(), 0, "s-expired"),
            ],
        );
        check_xml(&c).unwrap();
        assert!(c.contains("All deliveries. sent: 2 (50.0%); bounced: 1 (25.0%); deferred: 1 (25.0%); expired: 0 (0.0%).</desc>"), "{c}");
        assert!(c.contains("<title>sent: 2 (50.0%)</title>"));
        assert!(c.contains(r#"<rect class="s-sent" x="0" y="0" width="360" "#), "{c}");
        assert!(c.contains(r#"<rect class="s-bounced" x="360" y="0" width="180" "#), "{c}");
        assert!(c.contains(r#"<rect class="s-deferred" x="540" y="0" width="180" "#), "{c}");
        assert!(c.contains(">expired 0.0% (0)</text>"), "legend lists zero parts too");
    }

    #[test]
    fn long_labels_are_cut_on_the_chart_but_kept_in_titles() {
        let long = format!("{}.example.com", "x".repeat(100));
        let c = hbars("t", "d", &[(long.clone(), 1, "s-sent")]);
        assert!(c.contains(&format!(">{}…</text>", "x".repeat(MAX_LABEL - 1))));
        assert!(titles(&c).contains(&format!("{long}: 1")));
        let huge = "y".repeat(10_000);
        let c = hbars(&huge, &huge, &[(huge.clone(), 1, "s-sent")]);
        assert!(c.len() < 4_000, "output stays bounded: {}", c.len());
    }

    #[test]
    fn random_input_always_well_formed() {
        let mut rng = Rng(0xdead_beef);
        for _ in 0..300 {
            let n = usize::try_from(rng.below(30)).unwrap();
            let bs: Vec<Bucket> = (0..n).map(|_| Bucket { label: rng.text() }).collect();
            let ss: Vec<Series> = (0..rng.below(10))
                .map(|_| Series { name: rng.text(), class: "s-sent", values: (0..rng.below(35)).map(|_| rng.value()).collect() })
                .collect();
            let rows: Vec<(String, u64, &'static str)> = (0..rng.below(60)).map(|_| (rng.text(), rng.value(), "s-bounced")).collect();
            let (t, d) = (rng.text(), rng.text());
            for c in [stacked_bars(&t, &d, &bs, &ss), hbars(&t, &d, &rows), proportion_bar(&t, &d, &rows)] {
                check_xml(&c).unwrap_or_else(|e| panic!("{e}\n{c}"));
                assert!(!c.contains('\u{202E}') && !c.contains('\u{0}'));
            }
        }
    }
}
