//! Exact hourly rollups of what `stats` counts, for windows that start and
//! end on whole hours (the dashboard's presets and date ranges).
//!
//! `stats` over a window sums per-block summaries and decodes the blocks
//! at the window's edges: a 90-day window of a busy server meant
//! thousands of summaries per request. The rollups hold the same counts
//! per hour, kept in the transaction that stores the records, so an
//! hour-aligned window reads one small row per hour instead:
//!
//! - [`STATS_HOURS`]: per hour, events by their time, decided deliveries
//!   by their outcome's time, stored still-pending deliveries by their
//!   queue time (exactly how `stats` places them).
//! - [`LATE`]: decided deliveries whose outcome came in a later hour than
//!   their queueing, keyed (outcome hour, queue hour): a window ending
//!   before the outcome counts them as pending, as `stats` does.
//!
//! Every stored record is added once when committed and subtracted when
//! retention deletes its block, so the rollups always equal the blocks;
//! `tests/rollup.rs` compares both ways of counting on many windows.
//!
//! [`MARKS`] holds, per hour, the commit that last changed that hour's
//! per-domain or per-IP counters: the long-window caches of those tables
//! (`query.rs`) are valid while the marks of their hours are unchanged,
//! and the newest mark says which hour is being written now.
//!
//! Capacity: one `STATS_HOURS` and one `MARKS` row per hour with data,
//! both removed with retention; `LATE` rows are few (one per pair of hours
//! a deferred message spans) and removed with their blocks.

use super::blocks::{self, EventCounts};
use super::levels::Kind as _;
use super::{StoreError, Tx, hour_of};
use crate::track::{DeliveryRec, Direction, EventRec, Outcome};
use redb::{ReadableTable, TableDefinition};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// hour -> [`HourStats`].
pub(crate) const STATS_HOURS: TableDefinition<u32, &[u8]> = TableDefinition::new("stats_hours");

/// (outcome hour, queue hour) as one key ([`late_key`]) -> postcard
/// `[outbound, inbound]`.
pub(crate) const LATE: TableDefinition<u64, &[u8]> = TableDefinition::new("late_decided");

/// [`LATE`] as schema 5 and before kept it, keyed by the pair of hours
/// (see [`MARKS_V5`]; converted by [`convert_v5`]).
pub(crate) const LATE_V5: TableDefinition<(u32, u32), &[u8]> = TableDefinition::new("late_decided");

/// The [`LATE`] key of (outcome hour, queue hour): ordered as the pairs.
pub(crate) fn late_key(outcome_hour: u32, queue_hour: u32) -> u64 {
    (u64::from(outcome_hour) << 32) | u64::from(queue_hour)
}

/// The queue hour of a [`LATE`] key.
fn late_queue_hour(k: u64) -> u32 {
    u32::try_from(k & u64::from(u32::MAX)).unwrap_or(u32::MAX)
}

/// hour -> sequence number (postcard) of the commit that last changed the
/// hour's per-domain or per-IP counters.
pub(crate) const MARKS: TableDefinition<u32, &[u8]> = TableDefinition::new("hour_marks");

/// [`MARKS`] as schema 5 and before kept it, with plain `u32` values:
/// converted when such a store is opened ([`convert_v5`]). Each key and
/// value type pair a table uses puts a copy of redb's B-tree code in the
/// binary (about 33 KB); this pair, and [`LATE_V5`]'s, no other table used.
pub(crate) const MARKS_V5: TableDefinition<u32, u32> = TableDefinition::new("hour_marks");

/// Rewrites a schema 5 (or 4) store's hour marks and late-decided rollup as
/// [`MARKS`] and [`LATE`] hold them. Bounded by those tables: a row per
/// hour kept, and a few per pair of hours a deferred message spans.
pub(crate) fn convert_v5(tx: &Tx) -> Result<(), StoreError> {
    let marks = take_rows(tx, MARKS_V5, |hour, generation| (hour, generation))?;
    let mut t = tx.open_table(MARKS)?;
    for (hour, generation) in marks {
        t.insert(hour, postcard::to_allocvec(&generation)?.as_slice())?;
    }
    let late = take_rows(tx, LATE_V5, |(outcome_hour, queue_hour), v| (late_key(outcome_hour, queue_hour), v.to_vec()))?;
    let mut t = tx.open_table(LATE)?;
    for (k, v) in late {
        t.insert(k, v.as_slice())?;
    }
    Ok(())
}

/// The rows of `old`, each through `f`, and the table deleted (no rows
/// when it does not exist).
fn take_rows<K: redb::Key + 'static, V: redb::Value + 'static, T>(
    tx: &Tx,
    old: TableDefinition<K, V>,
    f: impl for<'a> Fn(K::SelfType<'a>, V::SelfType<'a>) -> T,
) -> Result<Vec<T>, StoreError> {
    let rows = match tx.open_table(old) {
        Ok(t) => t.iter()?.map(|r| r.map(|(k, v)| f(k.value(), v.value()))).collect::<Result<_, _>>()?,
        Err(redb::TableError::TableDoesNotExist(_)) => Vec::new(),
        Err(e) => return Err(e.into()),
    };
    tx.delete_table(old)?;
    Ok(rows)
}

/// What `stats` counts in one hour (see the module documentation).
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub(crate) struct HourStats {
    /// Events by their time (`min`/`max` unused).
    pub ev: EventCounts,
    pub auth_total: u64,
    /// Decided deliveries by outcome time: [outbound, inbound] × [sent, bounced, expired].
    pub decided: [[u64; 3]; 2],
    pub deferred_then_sent: u64,
    /// Deliveries stored as still pending, by queue time: [outbound, inbound].
    pub pending: [u64; 2],
}

impl HourStats {
    fn is_empty(&self) -> bool {
        let e = &self.ev;
        e.connections == 0
            && e.rejected == 0
            && e.deferrals == 0
            && e.queued == 0
            && e.with_deferral == 0
            && e.notifications == [0; 3]
            && self.auth_total == 0
            && self.decided == [[0; 3]; 2]
            && self.deferred_then_sent == 0
            && self.pending == [0; 2]
    }

    /// Adds (`sub` false) or subtracts `o`.
    fn apply(&mut self, o: &HourStats, sub: bool) {
        let u = |a: &mut u64, b: u64| *a = if sub { a.saturating_sub(b) } else { a.saturating_add(b) };
        let i = |a: &mut i64, b: i64| *a = if sub { a.saturating_sub(b) } else { a.saturating_add(b) };
        u(&mut self.ev.connections, o.ev.connections);
        u(&mut self.ev.rejected, o.ev.rejected);
        u(&mut self.ev.deferrals, o.ev.deferrals);
        i(&mut self.ev.queued, o.ev.queued);
        i(&mut self.ev.with_deferral, o.ev.with_deferral);
        for k in 0..3 {
            u(&mut self.ev.notifications[k], o.ev.notifications[k]);
        }
        u(&mut self.auth_total, o.auth_total);
        for d in 0..2 {
            for k in 0..3 {
                u(&mut self.decided[d][k], o.decided[d][k]);
            }
            u(&mut self.pending[d], o.pending[d]);
        }
        u(&mut self.deferred_then_sent, o.deferred_then_sent);
    }
}

/// The rollup rows of some records, before they are applied.
#[derive(Default)]
pub(crate) struct Delta {
    hours: BTreeMap<u32, HourStats>,
    late: BTreeMap<u64, [u64; 2]>,
}

impl Delta {
    pub fn events(&mut self, events: &[EventRec]) {
        for e in events {
            let h = self.hours.entry(hour_of(e.time.0)).or_default();
            let total = &mut h.auth_total;
            h.ev.add(&e.kind, &mut |_, _, n| *total += n);
        }
    }

    pub fn deliveries(&mut self, deliveries: &[DeliveryRec]) {
        for d in deliveries {
            let dir = usize::from(d.direction() == Direction::Inbound);
            let o = d.outcome();
            let qh = hour_of(d.queue_time.0);
            if o == Outcome::Pending {
                self.hours.entry(qh).or_default().pending[dir] += 1;
                continue;
            }
            let th = hour_of(d.time.0);
            let h = self.hours.entry(th).or_default();
            h.decided[dir][o.index()] += 1;
            if o == Outcome::Sent && d.deferrals > 0 {
                h.deferred_then_sent += 1;
            }
            if th > qh {
                self.late.entry(late_key(th, qh)).or_default()[dir] += 1;
            }
        }
    }

    /// Adds (`sub` false) or subtracts the delta in `tx`.
    pub fn apply(&self, tx: &Tx, sub: bool) -> Result<(), StoreError> {
        let mut t = tx.open_table(STATS_HOURS)?;
        for (hour, d) in &self.hours {
            let mut cur: HourStats = t.get(*hour)?.map(|v| postcard::from_bytes(v.value())).transpose()?.unwrap_or_default();
            cur.apply(d, sub);
            if cur.is_empty() {
                t.remove(*hour)?;
            } else {
                t.insert(*hour, postcard::to_allocvec(&cur)?.as_slice())?;
            }
        }
        let mut t = tx.open_table(LATE)?;
        for (k, n) in &self.late {
            let mut cur: [u64; 2] = t.get(*k)?.map(|v| postcard::from_bytes(v.value())).transpose()?.unwrap_or_default();
            for d in 0..2 {
                cur[d] = if sub { cur[d].saturating_sub(n[d]) } else { cur[d].saturating_add(n[d]) };
            }
            if cur == [0, 0] {
                t.remove(*k)?;
            } else {
                t.insert(*k, postcard::to_allocvec(&cur)?.as_slice())?;
            }
        }
        Ok(())
    }

    /// Adds the records of a stored block of `kind` (raw lines: nothing).
    fn block(&mut self, kind: u8, bytes: &[u8]) -> Result<(), StoreError> {
        if kind == super::levels::Events::ID {
            self.events(&blocks::decode::<EventRec>(bytes)?);
        } else if kind == super::levels::Deliveries::ID {
            self.deliveries(&blocks::decode::<DeliveryRec>(bytes)?);
        }
        Ok(())
    }
}

/// Subtracts the records of a block about to be deleted.
pub(crate) fn forget_block(tx: &Tx, kind: u8, bytes: &[u8]) -> Result<(), StoreError> {
    let mut delta = Delta::default();
    delta.block(kind, bytes)?;
    delta.apply(tx, true)
}

/// Builds the rollups from every stored block (a store written before
/// they existed), in the caller's transaction.
pub(crate) fn rebuild(tx: &Tx, generation: u32) -> Result<(), StoreError> {
    tx.delete_table(STATS_HOURS)?;
    tx.delete_table(LATE)?;
    let mut delta = Delta::default();
    for (sums, data, kind) in [
        (super::EVENT_SUMS, super::EVENT_BLOCKS, super::levels::Events::ID),
        (super::DELIVERY_SUMS, super::DELIVERY_BLOCKS, super::levels::Deliveries::ID),
    ] {
        let data = tx.open_table(data)?;
        for row in tx.open_table(sums)?.iter()? {
            if let Some(b) = super::levels::get_block(&data, row?.0.value())? {
                delta.block(kind, &b)?;
            }
        }
    }
    delta.apply(tx, false)?;
    // Every hour with per-domain or per-IP counters is marked, so that
    // the newest mark is the hour written last.
    let mut hours = std::collections::BTreeSet::new();
    for def in [super::DOMAIN_HOURS, super::AUTH_HOURS] {
        for row in tx.open_table(def)?.iter()? {
            let k = row?.0;
            if let Some(h) = k.value().first_chunk::<4>() {
                hours.insert(u32::from_be_bytes(*h));
            }
        }
    }
    mark_hours(tx, hours, generation)
}

/// Marks `hours` as changed by the commit numbered `generation`.
pub(crate) fn mark_hours(tx: &Tx, hours: impl IntoIterator<Item = u32>, generation: u32) -> Result<(), StoreError> {
    let mut t = tx.open_table(MARKS)?;
    let g = postcard::to_allocvec(&generation)?;
    for h in hours {
        t.insert(h, g.as_slice())?;
    }
    Ok(())
}

/// The rollups summed over some hours.
#[derive(Clone, Default)]
pub(crate) struct Sums {
    pub ev: EventCounts,
    pub auth_total: u64,
    /// [outbound, inbound] × [sent, bounced, expired, pending].
    pub counts: [[u64; 4]; 2],
    pub deferred_then_sent: u64,
}

/// Sums the rollups over the whole hours `[lo, hi)` (`hi` `None`: no end).
pub(crate) fn sum(tx: &redb::ReadTransaction, lo: u32, hi: Option<u32>) -> Result<Sums, StoreError> {
    let mut s = Sums::default();
    let t = tx.open_table(STATS_HOURS)?;
    let rows = match hi {
        Some(hi) => t.range(lo..hi)?,
        None => t.range(lo..)?,
    };
    for row in rows {
        let (_, v) = row?;
        let h: HourStats = postcard::from_bytes(v.value())?;
        s.ev.merge(&h.ev);
        s.auth_total += h.auth_total;
        s.deferred_then_sent += h.deferred_then_sent;
        for ((c, decided), pending) in s.counts.iter_mut().zip(&h.decided).zip(h.pending) {
            for (a, b) in c.iter_mut().zip(decided) {
                *a += b;
            }
            c[3] += pending;
        }
    }
    // Queued inside the window, decided after its end: pending then.
    if let Some(hi) = hi {
        for row in tx.open_table(LATE)?.range(late_key(hi, 0)..)? {
            let (k, v) = row?;
            let qh = late_queue_hour(k.value());
            if qh >= lo && qh < hi {
                let n: [u64; 2] = postcard::from_bytes(v.value())?;
                for (c, n) in s.counts.iter_mut().zip(n) {
                    c[3] += n;
                }
            }
        }
    }
    Ok(s)
}

/// The marks of the hours `[a, b)` (see [`MARKS`]).
pub(crate) fn marks(tx: &redb::ReadTransaction, a: u32, b: u32) -> Result<Vec<(u32, u32)>, StoreError> {
    let mut v = Vec::new();
    for row in tx.open_table(MARKS)?.range(a..b)? {
        let (k, g) = row?;
        v.push((k.value(), postcard::from_bytes(g.value())?));
    }
    Ok(v)
}

/// The newest hour with a mark: the hour being written now.
pub(crate) fn newest_mark(tx: &redb::ReadTransaction) -> Result<Option<u32>, StoreError> {
    Ok(tx.open_table(MARKS)?.last()?.map(|(k, _)| k.value()))
}
