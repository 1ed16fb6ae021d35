//! Readers: `stats` (the exact JSON of DESIGN.md), `search` (the detective)
//! and the raw material of `report`. Readers use MVCC snapshots, so they
//! answer while the writer commits.

use super::blocks::{self, DeliverySummary, DeliverySummaryHead, EventSummary};
use super::{
    AUTH_HOURS, DELIVERY_BLOCKS, DELIVERY_SUMS, DOMAIN_DAYS, DOMAIN_HOURS, DomainCounts, EVENT_BLOCKS, EVENT_SUMS, HOUR_TOTALS,
    LineCounters, Store, StoreError,
};
use crate::clock::Timestamp;
use crate::limits::MAX_AUTH_IPS_REPORTED;
use crate::track::{DeliveryRec, Direction, EventRec, Outcome};
use redb::{ReadableDatabase, ReadableTable};
use serde::Serialize;
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

/// A half-open window `[from, to)`; `None` is unbounded.
#[derive(Clone, Copy, Debug, Default)]
pub struct Window {
    pub from: Option<Timestamp>,
    pub to: Option<Timestamp>,
}

impl Window {
    fn lo(self) -> i64 {
        self.from.map_or(i64::MIN, |t| t.0)
    }
    fn hi(self) -> i64 {
        self.to.map_or(i64::MAX, |t| t.0)
    }
    pub fn contains(self, t: i64) -> bool {
        t >= self.lo() && t < self.hi()
    }
    /// The window in whole hours since the epoch, `from` rounded down and
    /// `to` up (the resolution of the per-hour counter tables).
    fn hours(self) -> (u32, u32) {
        let lo = self.from.map_or(0, |f| u32::try_from(f.0.max(0) / 3600).unwrap_or(u32::MAX));
        let hi = self.to.map_or(u32::MAX, |x| u32::try_from((x.0.max(0) + 3599) / 3600).unwrap_or(u32::MAX));
        (lo, hi)
    }

    /// Does `t` fall in one of the whole hours of [`Window::hours`]?
    /// (Uncommitted records join the per-hour tables at their resolution.)
    fn in_hours(self, t: i64) -> bool {
        let (lo, hi) = self.hours();
        let h = t.max(0) / 3600;
        h >= i64::from(lo) && h < i64::from(hi)
    }

    /// Does `[min, max]` meet the window?
    pub fn overlaps(self, min: i64, max: i64) -> bool {
        max >= self.lo() && min < self.hi()
    }
}

#[derive(Clone, Debug, Default, Serialize, PartialEq, Eq)]
pub struct OutcomeCounts {
    pub sent: u64,
    pub bounced: u64,
    pub expired: u64,
    pub pending: u64,
}

#[derive(Clone, Debug, Default, Serialize, PartialEq, Eq)]
pub struct Deliveries {
    pub sent: u64,
    pub bounced: u64,
    pub expired: u64,
    pub pending: u64,
    pub outbound: OutcomeCounts,
    pub inbound: OutcomeCounts,
}

#[derive(Clone, Debug, Default, Serialize, PartialEq, Eq)]
pub struct Messages {
    pub queued: u64,
    pub with_deferral: u64,
}

#[derive(Clone, Debug, Default, Serialize, PartialEq, Eq)]
pub struct Notifications {
    pub non_delivery: u64,
    pub delay: u64,
    pub success: u64,
}

#[derive(Clone, Debug, Default, Serialize, PartialEq, Eq)]
pub struct ProtoCounts {
    pub smtp: u64,
    pub imap: u64,
    pub pop3: u64,
    pub other: u64,
}

#[derive(Clone, Debug, Default, Serialize, PartialEq, Eq)]
pub struct AuthFailures {
    pub total: u64,
    pub by_ip: BTreeMap<String, ProtoCounts>,
}

#[derive(Clone, Debug, Default, Serialize, PartialEq, Eq)]
pub struct WindowJson {
    pub from: Option<String>,
    pub to: Option<String>,
}

#[derive(Clone, Debug, Default, Serialize, PartialEq, Eq)]
pub struct Lines {
    pub read: u64,
    pub postfix: u64,
    pub dovecot: u64,
    pub other: u64,
    pub unsupported: u64,
    pub malformed: u64,
}

/// The `postlens stats --json` object.
#[derive(Clone, Debug, Default, Serialize, PartialEq, Eq)]
pub struct Stats {
    pub window: WindowJson,
    pub lines: Lines,
    pub deliveries: Deliveries,
    pub deferrals: u64,
    pub deferred_then_sent: u64,
    pub messages: Messages,
    pub notifications: Notifications,
    pub rejected: u64,
    pub connections: u64,
    pub auth_failures: AuthFailures,
    pub evictions: u64,
}

/// Accumulates events and deliveries into `Stats`.
#[derive(Default)]
struct Acc {
    ev: blocks::EventCounts,
    /// Per-IP failures, when asked for.
    by_ip: bool,
    auth: HashMap<String, [u64; 4]>,
    auth_total: u64,
    counts: [[u64; 4]; 2],
    deferred_then_sent: u64,
}

impl Acc {
    fn add_event_summary(&mut self, s: &EventSummary<'_>) {
        self.ev.merge(&s.counts);
        for (ip, c) in &s.auth {
            self.auth_total += c.iter().sum::<u64>();
            if !self.by_ip {
                continue;
            }
            let e = match self.auth.get_mut(ip.as_ref()) {
                Some(e) => e,
                None => self.auth.entry(ip.clone().into_owned()).or_default(),
            };
            for i in 0..4 {
                e[i] += c[i];
            }
        }
    }

    /// A summary read without its IPs (`by_ip` off).
    fn add_event_totals(&mut self, s: &blocks::EventTotals) {
        self.ev.merge(&s.counts);
        self.auth_total += s.auth.0;
    }

    fn add_event(&mut self, e: &EventRec) {
        let (auth, total, by_ip) = (&mut self.auth, &mut self.auth_total, self.by_ip);
        self.ev.add(&e.kind, &mut |ip, p, n| {
            *total += n;
            if by_ip {
                auth.entry(ip.to_owned()).or_default()[p] += n;
            }
        });
    }

    /// A delivery counts by its outcome line inside the window, or as
    /// pending when it was queued inside the window and decided after it.
    fn add_delivery(&mut self, d: &DeliveryRec, w: Window) {
        let dir = usize::from(d.direction() == Direction::Inbound);
        let o = d.outcome();
        if o == Outcome::Pending {
            if w.contains(d.queue_time.0) {
                self.counts[dir][Outcome::Pending.index()] += 1;
            }
            return;
        }
        if w.contains(d.time.0) {
            self.counts[dir][o.index()] += 1;
            if o == Outcome::Sent && d.deferrals > 0 {
                self.deferred_then_sent += 1;
            }
        } else if d.time.0 >= w.hi() && w.contains(d.queue_time.0) {
            self.counts[dir][Outcome::Pending.index()] += 1;
        }
    }

    fn add_delivery_summary(&mut self, s: &DeliverySummaryHead) {
        for dir in 0..2 {
            for o in 0..4 {
                self.counts[dir][o] += s.counts[dir][o];
            }
        }
        self.deferred_then_sent += s.deferred_then_sent;
    }

    fn finish(self, w: Window, lines: &LineCounters, evictions: u64) -> Stats {
        let oc = |c: [u64; 4]| OutcomeCounts { sent: c[0], bounced: c[1], expired: c[2], pending: c[3] };
        let (outbound, inbound) = (oc(self.counts[0]), oc(self.counts[1]));
        let mut by_ip: Vec<(String, [u64; 4])> = self.auth.into_iter().filter(|(_, c)| c.iter().sum::<u64>() > 0).collect();
        let total = self.auth_total;
        by_ip.sort_by(|a, b| b.1.iter().sum::<u64>().cmp(&a.1.iter().sum::<u64>()).then_with(|| a.0.cmp(&b.0)));
        by_ip.truncate(MAX_AUTH_IPS_REPORTED);
        let clamp = |v: i64| u64::try_from(v).unwrap_or(0);
        Stats {
            window: WindowJson { from: w.from.map(Timestamp::rfc3339), to: w.to.map(Timestamp::rfc3339) },
            lines: Lines {
                read: lines.read,
                postfix: lines.postfix,
                dovecot: lines.dovecot,
                other: lines.other,
                unsupported: lines.unsupported,
                malformed: lines.malformed,
            },
            deliveries: Deliveries {
                sent: outbound.sent + inbound.sent,
                bounced: outbound.bounced + inbound.bounced,
                expired: outbound.expired + inbound.expired,
                pending: outbound.pending + inbound.pending,
                outbound,
                inbound,
            },
            deferrals: self.ev.deferrals,
            deferred_then_sent: self.deferred_then_sent,
            messages: Messages { queued: clamp(self.ev.queued), with_deferral: clamp(self.ev.with_deferral) },
            notifications: Notifications {
                non_delivery: self.ev.notifications[0],
                delay: self.ev.notifications[1],
                success: self.ev.notifications[2],
            },
            rejected: self.ev.rejected,
            connections: self.ev.connections,
            auth_failures: AuthFailures {
                total,
                by_ip: by_ip.into_iter().map(|(ip, c)| (ip, ProtoCounts { smtp: c[0], imap: c[1], pop3: c[2], other: c[3] })).collect(),
            },
            evictions,
        }
    }
}

/// The uncommitted state of a running daemon, answered by its loop without
/// waiting for the writer: a read snapshot taken at that moment plus every
/// record that snapshot does not hold yet (batches queued for the writer,
/// and records not yet shipped), shared rather than copied.
#[derive(Clone, Default)]
pub struct Overlay {
    /// The snapshot the records complete; queries read through it so that
    /// a commit landing meanwhile is neither missed nor counted twice.
    /// `None`: read a fresh snapshot (the writer's queue was drained first).
    pub tx: Option<Arc<redb::ReadTransaction>>,
    /// Raw lines read but not yet committed (log order); only when asked.
    pub raw: Vec<(i64, Vec<u8>)>,
    /// Records produced but not in the snapshot, oldest first.
    pub events: Vec<Arc<Vec<EventRec>>>,
    pub deliveries: Vec<Arc<Vec<DeliveryRec>>>,
    /// Messages in flight, as `stats`/`search` see them now.
    pub inflight: Arc<Vec<DeliveryRec>>,
    pub lines: LineCounters,
    pub evictions: u64,
}

impl std::fmt::Debug for Overlay {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Overlay")
            .field("snapshot", &self.tx.is_some())
            .field("raw", &self.raw.len())
            .field("events", &self.events().count())
            .field("deliveries", &self.deliveries().count())
            .field("inflight", &self.inflight.len())
            .finish_non_exhaustive()
    }
}

impl Overlay {
    /// Every uncommitted event, oldest first.
    pub fn events(&self) -> impl Iterator<Item = &EventRec> {
        self.events.iter().flat_map(|s| s.iter())
    }

    /// Every uncommitted final delivery, oldest first.
    pub fn deliveries(&self) -> impl Iterator<Item = &DeliveryRec> {
        self.deliveries.iter().flat_map(|s| s.iter())
    }
}

/// The snapshot a query reads: the overlay's, else a fresh one.
fn snapshot(store: &Store, overlay: Option<&Overlay>) -> Result<Arc<redb::ReadTransaction>, StoreError> {
    match overlay.and_then(|o| o.tx.clone()) {
        Some(tx) => Ok(tx),
        None => store.snapshot_wait(),
    }
}

/// A detective query. Address matching is exact and case-insensitive; a
/// value starting with `@` matches a whole domain.
#[derive(Clone, Debug, Default)]
pub struct Query {
    pub sender: Option<String>,
    pub recipient: Option<String>,
    /// A queue ID anywhere in the chain, or a Message-ID.
    pub id: Option<String>,
    /// sent|bounced|expired|pending|deferred.
    pub status: Option<String>,
    pub window: Window,
    pub limit: usize,
}

fn addr_matches(want: &str, have: Option<&str>) -> bool {
    let Some(have) = have else { return false };
    if want.starts_with('@') {
        have.rfind('@').is_some_and(|at| have[at..].eq_ignore_ascii_case(want))
    } else {
        have.eq_ignore_ascii_case(want)
    }
}

impl Query {
    fn matches(&self, d: &DeliveryRec) -> bool {
        if !self.window.contains(d.time.0) {
            return false;
        }
        if let Some(s) = &self.sender
            && !addr_matches(s, d.sender.as_deref())
        {
            return false;
        }
        if let Some(r) = &self.recipient
            && !addr_matches(r, d.recipient.as_deref())
            && !addr_matches(r, d.orig_recipient.as_deref())
        {
            return false;
        }
        if let Some(id) = &self.id {
            let id = id.trim_matches(|c| c == '<' || c == '>');
            let hit = d.queue_ids.iter().any(|q| q.eq_ignore_ascii_case(id))
                || d.message_id.as_deref().is_some_and(|m| m.eq_ignore_ascii_case(id));
            if !hit {
                return false;
            }
        }
        match self.status.as_deref() {
            None => true,
            Some("deferred") => d.deferrals > 0,
            Some(s) => d.outcome().as_str() == s,
        }
    }

    /// Keys that every match must carry (for the block filters; recipient
    /// and original recipient go into the same filter, so either matches).
    fn required_keys(&self) -> Vec<String> {
        let mut v = Vec::new();
        for a in [&self.sender, &self.recipient].into_iter().flatten() {
            v.push(a.clone());
        }
        if let Some(id) = &self.id {
            v.push(id.trim_matches(|c| c == '<' || c == '>').to_owned());
        }
        v
    }
}

impl Store {
    /// What is not committed yet, from a running daemon: `stats` and
    /// `search` see it as if it were.
    fn live_view(&self, overlay: Option<&Overlay>) -> Result<(LineCounters, Arc<Vec<DeliveryRec>>, u64), StoreError> {
        if let Some(o) = overlay {
            return Ok((o.lines.clone(), o.inflight.clone(), o.evictions));
        }
        let (lines, tracker) = self.lifetime()?;
        Ok((lines, Arc::new(tracker.inflight_deliveries()), tracker.counters.evictions))
    }

    fn lifetime(&self) -> Result<(LineCounters, crate::track::Tracker), StoreError> {
        let r = self.restore()?;
        Ok((r.lines, r.tracker))
    }

    /// Counts for the window, as `postlens stats --json` prints them.
    ///
    /// # Errors
    /// Database or decoding failure.
    pub fn stats(&self, w: Window) -> Result<Stats, StoreError> {
        self.stats_live(w, None)
    }

    /// [`Store::stats`] plus what a running daemon has not committed yet.
    ///
    /// # Errors
    /// Database or decoding failure.
    pub fn stats_live(&self, w: Window, overlay: Option<&Overlay>) -> Result<Stats, StoreError> {
        self.stats_live_with(w, overlay, true)
    }

    /// [`Store::stats_live`]; without `by_ip` the per-IP list of failed
    /// logins stays empty (the total is still exact) and the summaries'
    /// IP lists are not read: the dashboard takes its chart of attacking
    /// IPs from the per-hour table instead.
    ///
    /// # Errors
    /// Database or decoding failure.
    pub fn stats_live_with(&self, w: Window, overlay: Option<&Overlay>, by_ip: bool) -> Result<Stats, StoreError> {
        let (lines, inflight, evictions) = self.live_view(overlay)?;
        let mut acc = Acc { by_ip, ..Acc::default() };
        let tx = snapshot(self, overlay)?;
        // Whole hours: the rollups hold exactly these counts. (Per-IP lists
        // come from the blocks: the per-hour IP table is cut by hour at
        // retention, the blocks whole.)
        match aligned_hours(w).filter(|_| !by_ip) {
            Some((lo, hi)) => {
                let s = self.sum_caches.sums(&tx, lo, hi)?;
                acc.ev = s.ev;
                acc.auth_total = s.auth_total;
                acc.counts = s.counts;
                acc.deferred_then_sent = s.deferred_then_sent;
            }
            None => Self::stats_scan(&tx, w, &mut acc)?,
        }
        Self::stats_finish(w, acc, overlay, &lines, &inflight, evictions)
    }

    /// While `off`, per-domain and per-IP sums and `stats`' rollup sums are
    /// computed from the tables and the cached ones neither used nor
    /// changed: the reference the tests compare the caches with.
    #[doc(hidden)]
    pub fn bypass_cache(&self, off: bool) {
        self.sum_caches.bypass.store(off, std::sync::atomic::Ordering::Relaxed);
    }

    /// How many cached per-domain and per-IP sums were summed from the
    /// tables and how many slid from a previous one, since the start.
    #[doc(hidden)]
    pub fn cache_builds(&self) -> [u64; 2] {
        self.sum_caches.builds.each_ref().map(|n| n.load(std::sync::atomic::Ordering::Relaxed))
    }

    /// [`Store::stats_live_with`] from the block summaries and blocks,
    /// whatever the window (never from the hourly rollups): the reference
    /// the rollups are tested against.
    ///
    /// # Errors
    /// Database or decoding failure.
    #[doc(hidden)]
    pub fn stats_by_blocks(&self, w: Window, by_ip: bool) -> Result<Stats, StoreError> {
        let (lines, inflight, evictions) = self.live_view(None)?;
        let mut acc = Acc { by_ip, ..Acc::default() };
        Self::stats_scan(&*self.snapshot_wait()?, w, &mut acc)?;
        Self::stats_finish(w, acc, None, &lines, &inflight, evictions)
    }

    fn stats_scan(tx: &redb::ReadTransaction, w: Window, acc: &mut Acc) -> Result<(), StoreError> {
        let (lo, hi) = (w.lo(), w.hi());
        {
            let sums = tx.open_table(EVENT_SUMS)?;
            let data = tx.open_table(EVENT_BLOCKS)?;
            // Blocks are keyed by their first record: none from `hi` on can count.
            for row in sums.range(..blocks::block_key(hi, 0))? {
                let (k, v) = row?;
                // The time span alone first: most rows lie outside a short window.
                let span: blocks::SpanHead = postcard::from_bytes(v.value())?;
                if span.max < lo || span.min >= hi {
                    continue;
                }
                if span.min >= lo && span.max < hi {
                    if acc.by_ip {
                        let s: EventSummary<'_> = postcard::from_bytes(v.value())?;
                        acc.add_event_summary(&s);
                    } else {
                        acc.add_event_totals(&postcard::from_bytes(v.value())?);
                    }
                    continue;
                }
                if let Some(b) = super::levels::get_block(&data, k.value())? {
                    for e in blocks::decode::<EventRec>(&b)? {
                        if w.contains(e.time.0) {
                            acc.add_event(&e);
                        }
                    }
                }
            }
        }
        {
            let sums = tx.open_table(DELIVERY_SUMS)?;
            let data = tx.open_table(DELIVERY_BLOCKS)?;
            for row in sums.iter()? {
                let (k, v) = row?;
                let s: DeliverySummaryHead = postcard::from_bytes(v.value())?;
                if s.max < lo || (s.min >= hi && s.min_queue >= hi) {
                    continue;
                }
                // Every outcome inside the window counts by its outcome; the
                // queue time matters only for records still pending (a
                // message queued before the window and decided inside it
                // counts as decided).
                if s.min >= lo && s.max < hi && (s.pending() == 0 || s.min_queue >= lo) {
                    acc.add_delivery_summary(&s);
                    continue;
                }
                if let Some(b) = super::levels::get_block(&data, k.value())? {
                    for d in blocks::decode::<DeliveryRec>(&b)? {
                        acc.add_delivery(&d, w);
                    }
                }
            }
        }
        Ok(())
    }

    fn stats_finish(
        w: Window,
        mut acc: Acc,
        overlay: Option<&Overlay>,
        lines: &LineCounters,
        inflight: &[DeliveryRec],
        evictions: u64,
    ) -> Result<Stats, StoreError> {
        for d in inflight {
            acc.add_delivery(d, w);
        }
        if let Some(o) = overlay {
            for e in o.events() {
                if w.contains(e.time.0) {
                    acc.add_event(e);
                }
            }
            for d in o.deliveries() {
                acc.add_delivery(d, w);
            }
        }
        Ok(acc.finish(w, lines, evictions))
    }

    /// Deliveries matching `q`, newest first, at most `q.limit`.
    ///
    /// # Errors
    /// Database or decoding failure.
    pub fn search(&self, q: &Query) -> Result<Vec<DeliveryRec>, StoreError> {
        self.search_live(q, None)
    }

    /// [`Store::search`] plus what a running daemon has not committed yet.
    ///
    /// # Errors
    /// Database or decoding failure.
    pub fn search_live(&self, q: &Query, overlay: Option<&Overlay>) -> Result<Vec<DeliveryRec>, StoreError> {
        let (_, inflight, _) = self.live_view(overlay)?;
        let mut hits: Vec<DeliveryRec> = inflight.iter().filter(|d| q.matches(d)).cloned().collect();
        if let Some(o) = overlay {
            hits.extend(o.deliveries().filter(|d| q.matches(d)).cloned());
        }
        let keys = q.required_keys();
        let tx = snapshot(self, overlay)?;
        let sums = tx.open_table(DELIVERY_SUMS)?;
        let data = tx.open_table(DELIVERY_BLOCKS)?;
        let (lo, hi) = (q.window.lo(), q.window.hi());
        // Newest blocks first; stop once `limit` hits are older than every
        // remaining block could be.
        for row in sums.iter()?.rev() {
            let (k, v) = row?;
            let s: DeliverySummary = postcard::from_bytes(v.value())?;
            if s.max < lo || s.min >= hi {
                continue;
            }
            if hits.len() >= q.limit && hits.iter().all(|h| h.time.0 > s.max) {
                break;
            }
            if !keys.iter().all(|key| s.bloom.may_contain(key.as_bytes())) {
                continue;
            }
            if let Some(b) = super::levels::get_block(&data, k.value())? {
                hits.extend(blocks::decode::<DeliveryRec>(&b)?.into_iter().filter(|d| q.matches(d)));
            }
        }
        hits.sort_by(|a, b| b.time.cmp(&a.time).then_with(|| b.queue_ids.cmp(&a.queue_ids)));
        hits.truncate(q.limit);
        Ok(hits)
    }

    /// How many deliveries match `q` (its `limit` ignored), by outcome
    /// (`Outcome::index` order), keeping none of them in memory.
    ///
    /// # Errors
    /// Database or decoding failure.
    pub fn count_live(&self, q: &Query, overlay: Option<&Overlay>) -> Result<[u64; 4], StoreError> {
        let mut n = [0u64; 4];
        let mut count = |d: &DeliveryRec| {
            if q.matches(d) {
                n[d.outcome().index()] += 1;
            }
        };
        let (_, inflight, _) = self.live_view(overlay)?;
        inflight.iter().for_each(&mut count);
        if let Some(o) = overlay {
            o.deliveries().for_each(&mut count);
        }
        let keys = q.required_keys();
        let tx = snapshot(self, overlay)?;
        let sums = tx.open_table(DELIVERY_SUMS)?;
        let data = tx.open_table(DELIVERY_BLOCKS)?;
        let (lo, hi) = (q.window.lo(), q.window.hi());
        for row in sums.iter()? {
            let (k, v) = row?;
            let s: DeliverySummary = postcard::from_bytes(v.value())?;
            if s.max < lo || s.min >= hi || !keys.iter().all(|key| s.bloom.may_contain(key.as_bytes())) {
                continue;
            }
            if let Some(b) = super::levels::get_block(&data, k.value())? {
                blocks::decode::<DeliveryRec>(&b)?.iter().for_each(&mut count);
            }
        }
        Ok(n)
    }

    /// Final outcomes and deferrals per recipient domain over the window,
    /// at hour resolution (`from` rounds down, `to` up to the hour), most
    /// active first.
    ///
    /// # Errors
    /// Database or decoding failure.
    pub fn domains(&self, w: Window) -> Result<Vec<(String, DomainCounts)>, StoreError> {
        self.domains_live(w, None)
    }

    /// [`Store::domains`] with the in-flight deliveries of a running
    /// daemon's overlay (else those of the committed tracker). Whole UTC
    /// days inside the window are read from the per-day table, only the
    /// edges per hour.
    ///
    /// # Errors
    /// Database or decoding failure.
    pub fn domains_live(&self, w: Window, overlay: Option<&Overlay>) -> Result<Vec<(String, DomainCounts)>, StoreError> {
        let mut v: Vec<_> = self.domains_split(w, overlay)?.merged(DomainCounts::add).into_iter().collect();
        v.sort_by(|a, b| b.1.total().cmp(&a.1.total()).then_with(|| a.0.cmp(&b.0)));
        Ok(v)
    }

    /// [`Store::domains_live`] unmerged: the settled hours (shared with
    /// the cache) and the rest, for callers that keep derived results of
    /// the settled part (the dashboard's top lists).
    ///
    /// # Errors
    /// Database or decoding failure.
    pub fn domains_split(&self, w: Window, overlay: Option<&Overlay>) -> Result<Split<DomainCounts>, StoreError> {
        let tx = snapshot(self, overlay)?;
        let (lo, hi) = w.hours();
        let b = settled_until(&tx, lo, hi)?;
        let hours_t = tx.open_table(DOMAIN_HOURS)?;
        let each_row = |a: u32, b: u32, f: &mut dyn FnMut(&[u8], DomainCounts)| hour_rows_of(&hours_t, a, b, f);
        let hour_rows = |a: u32, b: u32, agg: &mut HashMap<String, DomainCounts>| add_rows(&each_row, a, b, agg);
        // Hours [lo, b), settled: cached; whole days from the per-day table.
        let days = if lo < b {
            Some(cached(&self.sum_caches, &self.sum_caches.domains, &tx, lo, b, &each_row, || {
                let mut m = HashMap::new();
                let (d0, d1) = (lo.div_ceil(24), b / 24);
                if d0 < d1 {
                    hour_rows(lo, d0 * 24, &mut m)?;
                    let days_t = tx.open_table(DOMAIN_DAYS)?;
                    for row in days_t.range(d0.to_be_bytes().as_slice()..d1.to_be_bytes().as_slice())? {
                        let (k, v) = row?;
                        add_domain_row(&mut m, k.value(), v.value())?;
                    }
                    hour_rows(d1 * 24, b, &mut m)?;
                } else {
                    hour_rows(lo, b, &mut m)?;
                }
                Ok(m)
            })?)
        } else {
            None
        };
        let mut rest = HashMap::new();
        hour_rows(b, hi, &mut rest)?;
        // Decided recipients of messages still in flight, as `stats` counts
        // them, and a running daemon's records not yet committed.
        let inflight = match overlay {
            Some(o) => o.inflight.clone(),
            None => Arc::new(self.lifetime()?.1.inflight_deliveries()),
        };
        let uncommitted = overlay.into_iter().flat_map(Overlay::deliveries);
        for d in inflight.iter().chain(uncommitted) {
            if w.in_hours(d.time.0) {
                add_delivery(rest.entry(d.recipient_domain()).or_default(), d);
            }
        }
        for e in overlay.into_iter().flat_map(Overlay::events) {
            if let crate::track::EventKind::Deferral { domain } = &e.kind
                && w.in_hours(e.time.0)
            {
                rest.entry(domain.clone()).or_default().deferrals += 1;
            }
        }
        Ok(Split { days, rest })
    }

    /// Outcome counters per hour over the window (all domains added), oldest
    /// first: `(hour since the epoch, counts)`. Committed data only (hour
    /// resolution; in-flight messages are in `stats`).
    ///
    /// # Errors
    /// Database or decoding failure.
    pub fn hourly(&self, w: Window) -> Result<Vec<(u32, DomainCounts)>, StoreError> {
        self.hourly_live(w, None)
    }

    /// [`Store::hourly`] plus a running daemon's records not yet committed
    /// and the decided recipients of messages in flight.
    ///
    /// # Errors
    /// Database or decoding failure.
    pub fn hourly_live(&self, w: Window, overlay: Option<&Overlay>) -> Result<Vec<(u32, DomainCounts)>, StoreError> {
        let tx = snapshot(self, overlay)?;
        let t = tx.open_table(HOUR_TOTALS)?;
        let (lo, hi) = w.hours();
        // The table's rows come in hour order; the overlay's few hours are
        // summed apart and merged in.
        let mut out: Vec<(u32, DomainCounts)> = Vec::new();
        for row in t.range(lo..hi)? {
            let (k, v) = row?;
            out.push((k.value(), postcard::from_bytes(v.value())?));
        }
        if let Some(o) = overlay {
            let hour = |t: i64| u32::try_from(t.max(0) / 3600).unwrap_or(u32::MAX);
            let mut more: std::collections::BTreeMap<u32, DomainCounts> = std::collections::BTreeMap::new();
            for d in o.inflight.iter().chain(o.deliveries()) {
                if w.in_hours(d.time.0) {
                    add_delivery(more.entry(hour(d.time.0)).or_default(), d);
                }
            }
            for e in o.events() {
                if matches!(e.kind, crate::track::EventKind::Deferral { .. }) && w.in_hours(e.time.0) {
                    more.entry(hour(e.time.0)).or_default().deferrals += 1;
                }
            }
            for (h, c) in more {
                match out.binary_search_by_key(&h, |r| r.0) {
                    Ok(i) => out[i].1.add(&c),
                    Err(i) => out.insert(i, (h, c)),
                }
            }
        }
        Ok(out)
    }

    /// Authentication failures per client IP over the window, at hour
    /// resolution, most first: `(ip, [smtp, imap, pop3, other])`.
    ///
    /// # Errors
    /// Database or decoding failure.
    pub fn auth_by_ip(&self, w: Window) -> Result<Vec<(String, [u64; 4])>, StoreError> {
        let tx = self.db()?.begin_read()?;
        self.auth_by_ip_in(&tx, w)
    }

    fn auth_by_ip_in(&self, tx: &redb::ReadTransaction, w: Window) -> Result<Vec<(String, [u64; 4])>, StoreError> {
        Ok(by_failures(self.auth_parts(tx, w)?.merged(add4)))
    }

    /// Failed logins per IP over the hours of `w`: the settled hours from
    /// the cache, the hour being written (and any after it) from the table.
    fn auth_parts(&self, tx: &redb::ReadTransaction, w: Window) -> Result<Split<[u64; 4]>, StoreError> {
        let t = tx.open_table(AUTH_HOURS)?;
        let each_row = |a: u32, b: u32, f: &mut dyn FnMut(&[u8], [u64; 4])| hour_rows_of(&t, a, b, f);
        let hour_rows = |a: u32, b: u32, agg: &mut HashMap<String, [u64; 4]>| add_rows(&each_row, a, b, agg);
        let (lo, hi) = w.hours();
        let b = settled_until(tx, lo, hi)?;
        let mut rest = HashMap::new();
        hour_rows(b, hi, &mut rest)?;
        if lo >= b {
            return Ok(Split { days: None, rest });
        }
        let days = cached(&self.sum_caches, &self.sum_caches.auth, tx, lo, b, &each_row, || {
            let mut m = HashMap::new();
            hour_rows(lo, b, &mut m)?;
            Ok(m)
        })?;
        Ok(Split { days: Some(days), rest })
    }

    /// Deliveries decided inside `w` (committed, the overlay's, and the
    /// decided recipients of messages in flight) plus in-flight pending
    /// ones queued inside it, unordered: what the detectors count. Reads
    /// only the blocks that can hold them (keys before `w`'s end, newest
    /// first, stopping after a run of blocks wholly before it).
    ///
    /// # Errors
    /// Database or decoding failure.
    pub fn deliveries_between(&self, w: Window, overlay: Option<&Overlay>) -> Result<Vec<DeliveryRec>, StoreError> {
        let mut out = Vec::new();
        self.deliveries_each(w, overlay, |d| out.push(d.clone()))?;
        Ok(out)
    }

    /// [`Store::deliveries_between`] one record at a time: memory stays at
    /// one decoded block whatever the window holds.
    ///
    /// # Errors
    /// Database or decoding failure.
    pub fn deliveries_each(&self, w: Window, overlay: Option<&Overlay>, mut f: impl FnMut(&DeliveryRec)) -> Result<(), StoreError> {
        let (lo, hi) = (w.lo(), w.hi());
        let (_, inflight, _) = self.live_view(overlay)?;
        for d in inflight.iter() {
            if if d.outcome() == Outcome::Pending { w.contains(d.queue_time.0) } else { w.contains(d.time.0) } {
                f(d);
            }
        }
        if let Some(o) = overlay {
            o.deliveries().filter(|d| w.contains(d.time.0)).for_each(&mut f);
        }
        let tx = snapshot(self, overlay)?;
        let sums = tx.open_table(DELIVERY_SUMS)?;
        let data = tx.open_table(DELIVERY_BLOCKS)?;
        let mut before = 0;
        for row in sums.range(..blocks::block_key(hi, 0))?.rev() {
            let (k, v) = row?;
            let s: DeliverySummaryHead = postcard::from_bytes(v.value())?;
            if s.max < lo {
                // Blocks are written in time order; a few may overlap.
                before += 1;
                if before > 16 {
                    break;
                }
                continue;
            }
            before = 0;
            if let Some(b) = super::levels::get_block(&data, k.value())? {
                blocks::decode::<DeliveryRec>(&b)?.iter().filter(|d| w.contains(d.time.0)).for_each(&mut f);
            }
        }
        Ok(())
    }

    /// Authentication failures per client IP over the window at hour
    /// resolution, with a running daemon's uncommitted ones.
    ///
    /// # Errors
    /// Database or decoding failure.
    pub fn auth_live(&self, w: Window, overlay: Option<&Overlay>) -> Result<Vec<(String, [u64; 4])>, StoreError> {
        Ok(by_failures(self.auth_split(w, overlay)?.merged(add4)))
    }

    /// [`Store::auth_live`] unmerged (see [`Store::domains_split`]).
    ///
    /// # Errors
    /// Database or decoding failure.
    pub fn auth_split(&self, w: Window, overlay: Option<&Overlay>) -> Result<Split<[u64; 4]>, StoreError> {
        let tx = snapshot(self, overlay)?;
        let Split { days, mut rest } = self.auth_parts(&tx, w)?;
        for e in overlay.into_iter().flat_map(Overlay::events) {
            if let crate::track::EventKind::AuthFailure { ip, proto, count } = &e.kind
                && w.in_hours(e.time.0)
            {
                rest.entry(ip.clone()).or_default()[proto.index()] += u64::from(*count);
            }
        }
        Ok(Split { days, rest })
    }

    /// Hours (since the epoch) in `[from, to)` with any delivery, deferral
    /// or failed login: where history has something to evaluate.
    ///
    /// # Errors
    /// Database or decoding failure.
    pub fn active_hours(&self, from: u32, to: u32) -> Result<Vec<u32>, StoreError> {
        let tx = self.db()?.begin_read()?;
        let mut hours: Vec<u32> = Vec::new();
        for row in tx.open_table(HOUR_TOTALS)?.range(from..to)? {
            hours.push(row?.0.value());
        }
        let mut last = None;
        for row in tx.open_table(AUTH_HOURS)?.range(from.to_be_bytes().as_slice()..to.to_be_bytes().as_slice())? {
            let row = row?;
            let k = row.0.value();
            let h = u32::from_be_bytes([k[0], k[1], k[2], k[3]]);
            if last != Some(h) {
                hours.push(h);
                last = Some(h);
            }
        }
        hours.sort_unstable();
        hours.dedup();
        Ok(hours)
    }

    /// The first and last record times stored (events and deliveries), if any.
    ///
    /// # Errors
    /// Database or decoding failure.
    pub fn time_span(&self) -> Result<Option<(i64, i64)>, StoreError> {
        let tx = self.db()?.begin_read()?;
        let mut span: Option<(i64, i64)> = None;
        let mut widen = |a: i64, b: i64| span = Some(span.map_or((a, b), |(x, y)| (x.min(a), y.max(b))));
        let ev = tx.open_table(EVENT_SUMS)?;
        let dl = tx.open_table(DELIVERY_SUMS)?;
        for row in ev.iter()?.take(1).chain(ev.iter()?.rev().take(16)) {
            let row = row?;
            let s: blocks::SpanHead = postcard::from_bytes(row.1.value())?;
            widen(s.min, s.max);
        }
        for row in dl.iter()?.take(1).chain(dl.iter()?.rev().take(16)) {
            let row = row?;
            let s: blocks::SpanHead = postcard::from_bytes(row.1.value())?;
            widen(s.min, s.max);
        }
        Ok(span)
    }

    /// Every delivery decided (or queued, if pending) inside the window, in
    /// time order: the raw material of `report`.
    ///
    /// # Errors
    /// Database or decoding failure.
    pub fn deliveries_in(&self, w: Window) -> Result<Vec<DeliveryRec>, StoreError> {
        let q = Query { window: w, limit: usize::MAX, ..Query::default() };
        let mut v = self.search(&q)?;
        v.reverse();
        Ok(v)
    }
}

/// Counts a decided delivery (sent, bounced, expired) by direction.
fn add_delivery(c: &mut DomainCounts, d: &DeliveryRec) {
    let o = d.outcome().index();
    if o > 2 {
        return;
    }
    match d.direction() {
        Direction::Outbound => c.outbound[o] += 1,
        Direction::Inbound => c.inbound[o] += 1,
    }
}

/// The search JSON object of one delivery (DESIGN.md).
#[derive(Serialize)]
pub struct SearchHit<'a> {
    pub time: String,
    pub queue_id: Option<&'a str>,
    pub queue_ids: &'a [String],
    pub message_id: Option<&'a str>,
    pub sender: Option<&'a str>,
    pub recipient: Option<&'a str>,
    pub orig_recipient: Option<&'a str>,
    pub status: &'static str,
    pub direction: &'static str,
    pub relay: Option<&'a str>,
    pub dsn: Option<&'a str>,
    pub response: Option<&'a str>,
    pub attempts: u32,
    pub deferrals: u32,
    pub notification_queue_id: Option<&'a str>,
}

impl<'a> SearchHit<'a> {
    pub fn of(d: &'a DeliveryRec) -> Self {
        SearchHit {
            time: d.time.rfc3339(),
            queue_id: d.queue_ids.first().map(String::as_str),
            queue_ids: &d.queue_ids,
            message_id: d.message_id.as_deref(),
            sender: d.sender.as_deref(),
            recipient: d.recipient.as_deref(),
            orig_recipient: d.orig_recipient.as_deref(),
            status: d.outcome().as_str(),
            direction: d.direction().as_str(),
            relay: d.relay.as_deref(),
            dsn: d.dsn.as_deref(),
            response: d.response.as_deref(),
            attempts: d.attempts,
            deferrals: d.deferrals,
            notification_queue_id: d.notification_queue_id.as_deref(),
        }
    }
}

/// The window in whole hours `[lo, hi)` when both its ends are whole
/// hours (or open): the hourly rollups answer such a window exactly.
fn aligned_hours(w: Window) -> Option<(u32, Option<u32>)> {
    let whole = |t: Timestamp| -> Option<u32> { if t.0 > 0 && t.0 % 3600 == 0 { u32::try_from(t.0 / 3600).ok() } else { None } };
    let lo = match w.from {
        None => 0,
        Some(t) => whole(t)?,
    };
    let hi = match w.to {
        None => None,
        Some(t) => Some(whole(t)?),
    };
    Some((lo, hi))
}

/// Adds one per-domain counter row (key: 4 bytes of hour or day, then
/// the domain) to `agg`.
fn add_domain_row(agg: &mut HashMap<String, DomainCounts>, k: &[u8], v: &[u8]) -> Result<(), StoreError> {
    slot(agg, k.get(4..).unwrap_or_default()).add(&postcard::from_bytes(v)?);
    Ok(())
}

/// The entry of `agg` named by the bytes `key` (allocating only for a new one).
fn slot<'a, V: Default>(agg: &'a mut HashMap<String, V>, key: &[u8]) -> &'a mut V {
    match std::str::from_utf8(key) {
        Ok(k) if agg.contains_key(k) => agg.get_mut(k).expect("present"),
        _ => agg.entry(String::from_utf8_lossy(key).into_owned()).or_default(),
    }
}

/// Adds failed logins per protocol.
pub(crate) fn add4(a: &mut [u64; 4], b: &[u64; 4]) {
    for (x, y) in a.iter_mut().zip(b) {
        *x += y;
    }
}

/// Per-IP failures, most first (then by IP).
fn by_failures(m: HashMap<String, [u64; 4]>) -> Vec<(String, [u64; 4])> {
    let mut v: Vec<_> = m.into_iter().collect();
    v.sort_by(|a, b| b.1.iter().sum::<u64>().cmp(&a.1.iter().sum::<u64>()).then_with(|| a.0.cmp(&b.0)));
    v
}

/// A per-domain or per-IP sum in two parts: the window's settled hours
/// (all before the hour being written; shared with the cache, the same
/// `Arc` while they are unchanged; `None` when there are none) and the
/// rest (that hour, uncommitted records, messages in flight).
pub struct Split<T> {
    pub days: Option<Arc<HashMap<String, T>>>,
    pub rest: HashMap<String, T>,
}

impl<T: Clone + Default> Split<T> {
    /// Both parts in one map (`add` adds a count to another).
    pub fn merged(self, add: impl Fn(&mut T, &T)) -> HashMap<String, T> {
        let mut m = self.days.map(|d| (*d).clone()).unwrap_or_default();
        for (k, c) in &self.rest {
            add(slot(&mut m, k.as_bytes()), c);
        }
        m
    }
}

/// One cached sum over the hours `[hours.0, hours.1)`.
struct SumEntry<T> {
    hours: (u32, u32),
    /// The hours' marks and the retention mark it was computed under.
    marks: (Vec<(u32, u32)>, Option<u32>),
    value: Arc<T>,
    used: u64,
    /// The commit (`META` `seq`) of the snapshot it was last found valid in.
    checked: u32,
}

/// The entries (with a use counter) and the lock held while one is built.
type Cache<T> = (std::sync::Mutex<(u64, Vec<SumEntry<T>>)>, std::sync::Mutex<()>);

/// An entry of a per-domain or per-IP sum.
type Entry<T> = SumEntry<HashMap<String, T>>;

/// Per-domain and per-IP sums over a window's settled hours, so that a
/// long window reads them once rather than on every request (a 90-day
/// dashboard read ~90 rows per domain and ~2,000 per attacking IP). An
/// entry is used only while the hours' marks (`rollup::MARKS`, written
/// with the counters) and the retention mark read from the caller's
/// snapshot equal those it was computed under, so it is exact for that
/// snapshot.
///
/// A window that slides forward (the hour being written moved on, or the
/// clock) is derived from its previous entry when that entry still holds:
/// the rows of the hours it lost are subtracted and those of the hours it
/// gained added, at most [`SLIDE_MAX_HOURS`] of them, instead of summing
/// every hour again.
///
/// Capacity: at most [`DAY_CACHE_ENTRIES`] of each kind, the least
/// recently used evicted; a sum of more than [`DAY_CACHE_MAX_KEYS`]
/// domains or IPs is not kept (computed per request instead).
///
/// [`DAY_CACHE_ENTRIES`]: crate::limits::DAY_CACHE_ENTRIES
/// [`DAY_CACHE_MAX_KEYS`]: crate::limits::DAY_CACHE_MAX_KEYS
#[derive(Default)]
pub(crate) struct SumCaches {
    domains: Cache<HashMap<String, DomainCounts>>,
    auth: Cache<HashMap<String, [u64; 4]>>,
    /// Entries summed from the tables, and entries slid from another.
    builds: [std::sync::atomic::AtomicU64; 2],
    /// Tests: sum from the tables without reading or changing the entries.
    bypass: std::sync::atomic::AtomicBool,
    /// `stats`' rollup sums by (first hour, end hour, snapshot's commit),
    /// the most recent first: requests between two commits sum once.
    sums: std::sync::Mutex<Vec<(SumsKey, super::rollup::Sums)>>,
}

/// First hour, end hour (`None`: open), commit.
type SumsKey = (u32, Option<u32>, u32);

/// The most hours a cached sum is slid by (lost plus gained); further
/// than that a new sum reads whole days from the per-day table instead.
const SLIDE_MAX_HOURS: u32 = 48;

/// A per-domain or per-IP count that can be added and taken away again.
pub(crate) trait Tally: Clone + Default + PartialEq {
    fn add(&mut self, o: &Self);
    /// `None` when `o` is not part of `self` (an inconsistent sum).
    fn sub(&mut self, o: &Self) -> Option<()>;
}

impl Tally for DomainCounts {
    fn add(&mut self, o: &Self) {
        DomainCounts::add(self, o);
    }
    fn sub(&mut self, o: &Self) -> Option<()> {
        for (x, y) in self.outbound.iter_mut().chain(&mut self.inbound).zip(o.outbound.iter().chain(&o.inbound)) {
            *x = x.checked_sub(*y)?;
        }
        self.deferrals = self.deferrals.checked_sub(o.deferrals)?;
        Some(())
    }
}

impl Tally for [u64; 4] {
    fn add(&mut self, o: &Self) {
        add4(self, o);
    }
    fn sub(&mut self, o: &Self) -> Option<()> {
        for (x, y) in self.iter_mut().zip(o) {
            *x = x.checked_sub(*y)?;
        }
        Some(())
    }
}

/// Calls `f` with each (key, count) row of the hours `[a, b)`.
type EachRow<'a, T> = dyn Fn(u32, u32, &mut dyn FnMut(&[u8], T)) -> Result<(), StoreError> + 'a;

/// [`EachRow`] over a per-hour counter table (key: 4 bytes of hour, then
/// the domain or IP).
fn hour_rows_of<T: serde::de::DeserializeOwned>(
    t: &redb::ReadOnlyTable<&'static [u8], &'static [u8]>,
    a: u32,
    b: u32,
    f: &mut dyn FnMut(&[u8], T),
) -> Result<(), StoreError> {
    for row in t.range(a.to_be_bytes().as_slice()..b.to_be_bytes().as_slice())? {
        let (k, v) = row?;
        f(k.value().get(4..).unwrap_or_default(), postcard::from_bytes(v.value())?);
    }
    Ok(())
}

/// Adds the rows of the hours `[a, b)` to `agg`.
fn add_rows<T: Tally>(rows: &EachRow<'_, T>, a: u32, b: u32, agg: &mut HashMap<String, T>) -> Result<(), StoreError> {
    rows(a, b, &mut |k, c| slot(agg, k).add(&c))
}

/// The cached value for the hours `[a, b)` under the marks of `tx`, else
/// one slid from an entry over `[a0, b0)` (`a0 <= a < b0 <= b`) whose
/// marks still hold and whose hours retention has not touched, else
/// `build`'s; then cached unless too large.
fn cached<T: Tally>(
    caches: &SumCaches,
    cache: &Cache<HashMap<String, T>>,
    tx: &redb::ReadTransaction,
    a: u32,
    b: u32,
    rows: &EachRow<'_, T>,
    build: impl FnOnce() -> Result<HashMap<String, T>, StoreError>,
) -> Result<Arc<HashMap<String, T>>, StoreError> {
    if caches.bypass.load(std::sync::atomic::Ordering::Relaxed) {
        return Ok(Arc::new(build()?));
    }
    // An entry found valid in a snapshot of this commit and with the same
    // retention mark is valid in this one: requests between two commits
    // then skip reading the hours' marks.
    let seq = snapshot_seq(tx)?;
    let ret = retention_mark(tx, a)?;
    // The entry for `[a, b)` that `valid` accepts, marked as used and as
    // valid in this snapshot.
    let find = |valid: &dyn Fn(&Entry<T>) -> bool| {
        let mut g = cache.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        g.0 += 1;
        let now = g.0;
        g.1.iter_mut().find(|e| e.hours == (a, b) && valid(e)).map(|e| {
            e.used = now;
            e.checked = seq;
            e.value.clone()
        })
    };
    if let Some(v) = find(&|e| e.marks.1 == ret && e.checked == seq) {
        return Ok(v);
    }
    let marks = (super::rollup::marks(tx, a, b)?, ret);
    let lookup = || find(&|e| e.marks == marks);
    if let Some(v) = lookup() {
        return Ok(v);
    }
    // One build at a time: concurrent requests for the same window wait
    // for the first one's entry instead of each building (and holding)
    // their own.
    let _building = cache.1.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    if let Some(v) = lookup() {
        return Ok(v);
    }
    let base = {
        let g = cache.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        g.1.iter()
            .filter(|e| {
                let (a0, b0) = e.hours;
                a0 <= a && a < b0 && b0 <= b && (a - a0) + (b - b0) <= SLIDE_MAX_HOURS && e.marks.1.is_none()
            })
            .max_by_key(|e| e.used)
            .map(|e| (e.hours, e.marks.0.clone(), e.value.clone()))
    };
    let mut slid = None;
    if let Some(((a0, b0), base_marks, value)) = base
        && retention_mark(tx, a0)?.is_none()
        && super::rollup::marks(tx, a0, b0)? == base_marks
    {
        slid = slide(&value, a0, a, b0, b, rows)?;
    }
    caches.builds[usize::from(slid.is_some())].fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let value = Arc::new(match slid {
        Some(m) => m,
        None => build()?,
    });
    if value.len() > crate::limits::DAY_CACHE_MAX_KEYS {
        return Ok(value);
    }
    let mut g = cache.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    let used = g.0;
    g.1.retain(|e| e.hours != (a, b));
    if g.1.len() >= crate::limits::DAY_CACHE_ENTRIES
        && let Some(i) = g.1.iter().enumerate().min_by_key(|(_, e)| e.used).map(|(i, _)| i)
    {
        g.1.swap_remove(i);
    }
    g.1.push(SumEntry { hours: (a, b), marks, value: value.clone(), used, checked: seq });
    Ok(value)
}

/// The sum over `[a, b)` from the sum `base` over `[a0, b0)`: the rows of
/// `[a0, a)` taken away, those of `[b0, b)` added; keys left at zero go,
/// as a sum from the tables would not have them (no row is all zeros).
/// `None` when a row to take away is not in `base` (then it is summed
/// afresh).
fn slide<T: Tally>(
    base: &HashMap<String, T>,
    a0: u32,
    a: u32,
    b0: u32,
    b: u32,
    rows: &EachRow<'_, T>,
) -> Result<Option<HashMap<String, T>>, StoreError> {
    let mut m = base.clone();
    let mut whole = true;
    rows(a0, a, &mut |k, c| {
        let Some((k, v)) = std::str::from_utf8(k).ok().and_then(|k| m.get_mut(k).map(|v| (k, v))) else {
            whole = false;
            return;
        };
        if v.sub(&c).is_none() {
            whole = false;
        } else if *v == T::default() {
            m.remove(k);
        }
    })?;
    if !whole {
        return Ok(None);
    }
    add_rows(rows, b0, b, &mut m)?;
    Ok(Some(m))
}

/// What retention has done to the hours from `a` on: `None` when it has
/// removed nothing there (it removes counters only before its cutoff's
/// hour, and META `retained_hour` is the latest such hour), else the
/// commit of its latest removal. A window starting at or after that hour,
/// as a window ending now does when the log's times are not ahead of the
/// clock, keeps its entry whatever retention deletes.
fn retention_mark(tx: &redb::ReadTransaction, a: u32) -> Result<Option<u32>, StoreError> {
    let Some(retained) = super::meta_u32(tx, "retained")? else { return Ok(None) };
    // A store whose retention predates the frontier: any hour may be affected.
    let frontier = super::meta_u32(tx, "retained_hour")?.unwrap_or(u32::MAX);
    Ok((a < frontier).then_some(retained))
}

/// Where a window's settled hours end: at the hour being written (the
/// newest mark's), within `[lo, hi]`. Only that hour and any after it are
/// read per request; the cached part slides by an hour when the log does.
fn settled_until(tx: &redb::ReadTransaction, lo: u32, hi: u32) -> Result<u32, StoreError> {
    Ok(super::rollup::newest_mark(tx)?.map_or(lo, |h| h.clamp(lo, hi)))
}

/// The commit a snapshot shows: every commit, and retention that deletes
/// anything, writes a new `seq` (the counters and rollups change only in
/// such transactions).
fn snapshot_seq(tx: &redb::ReadTransaction) -> Result<u32, StoreError> {
    Ok(super::meta_u32(tx, "seq")?.unwrap_or(0))
}

impl SumCaches {
    /// Forgets every entry (the database was reopened).
    pub(crate) fn clear(&self) {
        self.domains.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner).1.clear();
        self.auth.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner).1.clear();
        self.sums.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clear();
    }

    /// [`super::rollup::sum`] over `[lo, hi)` in `tx`, kept for the
    /// snapshots of the same commit (at most [`DAY_CACHE_ENTRIES`] windows).
    ///
    /// [`DAY_CACHE_ENTRIES`]: crate::limits::DAY_CACHE_ENTRIES
    fn sums(&self, tx: &redb::ReadTransaction, lo: u32, hi: Option<u32>) -> Result<super::rollup::Sums, StoreError> {
        if self.bypass.load(std::sync::atomic::Ordering::Relaxed) {
            return super::rollup::sum(tx, lo, hi);
        }
        let key = (lo, hi, snapshot_seq(tx)?);
        if let Some((_, s)) = self.sums.lock().unwrap_or_else(std::sync::PoisonError::into_inner).iter().find(|(k, _)| *k == key) {
            return Ok(s.clone());
        }
        let s = super::rollup::sum(tx, lo, hi)?;
        let mut g = self.sums.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        g.retain(|(k, _)| *k != key);
        g.insert(0, (key, s.clone()));
        g.truncate(crate::limits::DAY_CACHE_ENTRIES);
        Ok(s)
    }
}
