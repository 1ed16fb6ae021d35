//! How blocks are written: in pieces, and in levels.
//!
//! **Pieces.** redb gives a value larger than a page a power-of-two run of
//! pages, so a 67 KiB block took 128 KiB of file and the store was about
//! half holes. A block is therefore stored as consecutive pieces of at most
//! [`PIECE`] bytes under `(block key, piece number)`: each fills a run of
//! four pages exactly, and the short last pieces share leaves with their
//! neighbours. (One page per piece took 4x the inserts, and redb rebuilds
//! the branch page above a leaf at each: 8 % more of the writer thread's
//! instructions in an import, for the same allocated size.)
//!
//! **Levels.** Every commit appends what it produced as a small *open*
//! block (level 0), so the data is durable with its checkpoint. When
//! [`FANIN`] open blocks share a level they are merged into one block of the
//! next level, and once the open blocks of a kind together hold a full
//! block ([`Kind::SEAL`]) they are merged and cut into *sealed* full-size
//! blocks. A daemon committing a few lines every 200 ms thus still ends up
//! with full, well-compressed blocks, and a record is rewritten at most
//! [`TOP`] + 1 times. The open blocks of each kind (at most
//! `TOP × (FANIN − 1) + 1`) are listed in the `open_blocks` table, written in
//! the same transaction as the blocks themselves.

use super::blocks::{self, DeliverySummary, EventSummary, block_key};
use super::raw::{self, RawLines};
use super::{StoreError, Tx};
use crate::track::{DeliveryRec, EventRec};
use redb::{ReadableTable, TableDefinition};
use std::collections::HashMap;
use std::ops::Range;
use std::sync::Arc;

/// Bytes of one piece: a piece, its key and the leaf header fit a run of
/// four 4 KiB pages (16 KiB less 128 bytes, as one page less 128 did
/// before). Reading does not depend on it: a block is its pieces in order.
pub(crate) const PIECE: usize = 16_256;

/// Open blocks of one level merged at once.
pub(crate) const FANIN: usize = 8;

/// The highest open level (the remainder of a seal also lives there).
pub(crate) const TOP: u8 = 3;

pub(crate) type BlockTable = TableDefinition<'static, (u64, u16), &'static [u8]>;
pub(crate) type SumTable = TableDefinition<'static, u64, &'static [u8]>;

/// An encoded block ready to store: (summary row, key time, bytes).
pub(crate) type Encoded = (Vec<u8>, i64, Vec<u8>);

/// (kind, block key) -> (level, size in the kind's units, commit sequence).
pub(crate) const OPEN_BLOCKS: TableDefinition<(u8, u64), (u8, u32, u32)> = TableDefinition::new("open_blocks");

/// Stores `bytes` as the pieces of block `k`.
///
/// # Errors
/// Database failure.
pub(crate) fn put_block(t: &mut redb::Table<(u64, u16), &[u8]>, k: u64, bytes: &[u8]) -> Result<(), StoreError> {
    for (i, piece) in bytes.chunks(PIECE).enumerate() {
        // MAX_DECODED_BLOCK / PIECE pieces at most: far below u16::MAX.
        let i = u16::try_from(i).map_err(|_| too_large())?;
        t.insert((k, i), piece)?;
    }
    Ok(())
}

fn too_large() -> StoreError {
    StoreError::Codec(blocks::CodecError::Io(std::io::Error::new(std::io::ErrorKind::InvalidInput, "block too large")))
}

/// The bytes of block `k`, `None` when it does not exist.
///
/// # Errors
/// Database failure.
pub(crate) fn get_block(t: &impl ReadableTable<(u64, u16), &'static [u8]>, k: u64) -> Result<Option<Vec<u8>>, StoreError> {
    let mut out: Option<Vec<u8>> = None;
    for row in t.range((k, 0)..=(k, u16::MAX))? {
        let (_, v) = row?;
        out.get_or_insert_with(Vec::new).extend_from_slice(v.value());
    }
    Ok(out)
}

/// Removes every piece of block `k`; the bytes they held.
///
/// # Errors
/// Database failure.
pub(crate) fn remove_block(t: &mut redb::Table<(u64, u16), &[u8]>, k: u64) -> Result<u64, StoreError> {
    let mut i = 0u16;
    let mut bytes = 0;
    while let Some(piece) = t.remove((k, i))? {
        bytes += piece.value().len() as u64;
        i = match i.checked_add(1) {
            Some(n) => n,
            None => break,
        };
    }
    Ok(bytes)
}

/// One kind of block: how its records are sized, encoded and merged.
pub(crate) trait Kind {
    const ID: u8;
    const BLOCKS: BlockTable;
    const SUMS: SumTable;
    /// Size (in [`Kind::size`] units) at which open blocks are sealed.
    const SEAL: usize;
    type Set: Default + Merge;
    fn len(s: &Self::Set) -> usize;
    /// Size of item `i` (1 for a record, its bytes for a raw line).
    fn size(s: &Self::Set, i: usize) -> usize;
    /// (summary row, block key time, block bytes) of items `r`, for an
    /// open block (to be rewritten) or a sealed one (kept).
    fn encode(s: &Self::Set, r: Range<usize>, sealed: bool) -> Result<(Vec<u8>, i64, Vec<u8>), StoreError>;
    /// A copy of items `r`.
    fn copy(s: &Self::Set, r: Range<usize>) -> Self::Set;
    /// Appends the items of an encoded block.
    fn decode_into(block: &[u8], s: &mut Self::Set) -> Result<(), StoreError>;
    /// Restores the order blocks keep after open blocks were merged.
    fn order(s: &mut Self::Set);
    /// This kind's decoded open blocks in `c` (`None`: not kept).
    fn cached(c: &mut OpenCache) -> Option<&mut KindCache<Self::Set>>;
}

/// The items of the open record blocks this process wrote, by block key,
/// so that merging or sealing them does not read and decode them back.
///
/// Bounds: only blocks listed as open are kept (the rest are dropped at
/// each [`add`]); the open blocks of a kind hold fewer than [`Kind::SEAL`]
/// items, so at most `BLOCK_RECORDS` events and `BLOCK_DELIVERIES`
/// deliveries. Raw lines are not kept: the ingesting side holds them.
/// Correctness: an entry is used only for a key listed as open with the
/// same item count; keys are never reused within a process except after
/// a rollback or a reopen, and the store clears the cache after both.
#[derive(Default)]
pub(crate) struct OpenCache {
    events: KindCache<Vec<EventRec>>,
    deliveries: KindCache<Vec<DeliveryRec>>,
}

/// One kind's part of [`OpenCache`].
pub(crate) struct KindCache<S> {
    blocks: HashMap<u64, S>,
    /// The open block written in this commit from the batch's own items
    /// (its key and first item): they move in once the commit succeeded
    /// (the batch is kept intact until then, for a retry).
    pending: Option<(u64, usize)>,
}

impl<S> Default for KindCache<S> {
    fn default() -> Self {
        KindCache { blocks: HashMap::new(), pending: None }
    }
}

impl OpenCache {
    pub(crate) fn clear(&mut self) {
        *self = OpenCache::default();
    }

    /// After a successful commit: moves the items of the open blocks just
    /// written from the batch's records into the cache (copies them while
    /// the daemon's readers still share the batch).
    pub(crate) fn adopt(&mut self, events: &mut Arc<Vec<EventRec>>, deliveries: &mut Arc<Vec<DeliveryRec>>) {
        fn one<T: Clone>(c: &mut KindCache<Vec<T>>, v: &mut Arc<Vec<T>>) {
            if let Some((k, from)) = c.pending.take()
                && from <= v.len()
            {
                let items = match Arc::get_mut(v) {
                    Some(v) => v.split_off(from),
                    None => v[from..].to_vec(),
                };
                c.blocks.insert(k, items);
            }
        }
        one(&mut self.events, events);
        one(&mut self.deliveries, deliveries);
    }
}

pub(crate) struct Events;
pub(crate) struct Deliveries;
pub(crate) struct Raw;

/// Record kinds: one record per unit of size, blocks in time order, a
/// summary row of the kind's own type (`$sum::of`, with a `min` time).
macro_rules! record_kind {
    ($kind:ident, $id:expr, $blocks:expr, $sums:expr, $seal:expr, $rec:ty, $sum:ty, $cache:ident) => {
        impl Kind for $kind {
            const ID: u8 = $id;
            const BLOCKS: BlockTable = $blocks;
            const SUMS: SumTable = $sums;
            const SEAL: usize = $seal;
            type Set = Vec<$rec>;
            fn len(s: &Self::Set) -> usize {
                s.len()
            }
            fn size(_: &Self::Set, _: usize) -> usize {
                1
            }
            fn encode(s: &Self::Set, r: Range<usize>, sealed: bool) -> Result<(Vec<u8>, i64, Vec<u8>), StoreError> {
                let chunk = &s[r];
                let row = postcard::to_allocvec(&<$sum>::of(chunk))?;
                // Every summary row starts with its time span.
                let min = postcard::from_bytes::<blocks::SpanHead>(&row)?.min;
                let bytes = if sealed { <$rec as blocks::Record>::encode_sealed(chunk)? } else { blocks::encode_open(chunk)? };
                Ok((row, min, bytes))
            }
            fn copy(s: &Self::Set, r: Range<usize>) -> Self::Set {
                s[r].to_vec()
            }
            fn decode_into(block: &[u8], s: &mut Self::Set) -> Result<(), StoreError> {
                s.extend(blocks::decode::<$rec>(block)?);
                Ok(())
            }
            fn order(s: &mut Self::Set) {
                order_by_key(s, |r| r.time);
            }
            fn cached(c: &mut OpenCache) -> Option<&mut KindCache<Self::Set>> {
                Some(&mut c.$cache)
            }
        }
    };
}

record_kind!(Events, 0, super::EVENT_BLOCKS, super::EVENT_SUMS, crate::limits::BLOCK_RECORDS, EventRec, EventSummary<'static>, events);
record_kind!(
    Deliveries,
    1,
    super::DELIVERY_BLOCKS,
    super::DELIVERY_SUMS,
    crate::limits::BLOCK_DELIVERIES,
    DeliveryRec,
    DeliverySummary,
    deliveries
);

impl Kind for Raw {
    const ID: u8 = 2;
    const BLOCKS: BlockTable = super::RAW_BLOCKS;
    const SUMS: SumTable = super::RAW_SUMS;
    const SEAL: usize = crate::limits::RAW_BLOCK_BYTES;
    type Set = RawLines;
    fn len(s: &Self::Set) -> usize {
        s.len()
    }
    fn size(s: &Self::Set, i: usize) -> usize {
        s.line_bytes(i)
    }
    fn encode(s: &Self::Set, r: Range<usize>, _sealed: bool) -> Result<(Vec<u8>, i64, Vec<u8>), StoreError> {
        let (sum, bytes) = raw::encode_block(s, r);
        Ok((postcard::to_allocvec(&sum)?, sum.min, bytes))
    }
    fn copy(s: &Self::Set, r: Range<usize>) -> Self::Set {
        s.copy(r)
    }
    fn decode_into(block: &[u8], s: &mut Self::Set) -> Result<(), StoreError> {
        if raw::decode_into(block, s) {
            Ok(())
        } else {
            Err(StoreError::Codec(blocks::CodecError::Io(std::io::Error::new(std::io::ErrorKind::InvalidData, "raw block"))))
        }
    }
    fn order(_: &mut Self::Set) {
        // Raw lines keep log order.
    }
    fn cached(_: &mut OpenCache) -> Option<&mut KindCache<Self::Set>> {
        None
    }
}

#[derive(Clone, Copy)]
struct Open {
    key: u64,
    level: u8,
    size: u32,
    seq: u32,
}

fn open_blocks<K: Kind>(tx: &Tx) -> Result<Vec<Open>, StoreError> {
    open_list::<K>(&tx.open_table(OPEN_BLOCKS)?)
}

fn open_list<K: Kind>(t: &impl ReadableTable<(u8, u64), (u8, u32, u32)>) -> Result<Vec<Open>, StoreError> {
    let mut v = Vec::new();
    for row in t.range((K::ID, 0)..=(K::ID, u64::MAX))? {
        let (k, val) = row?;
        let (level, size, seq) = val.value();
        v.push(Open { key: k.value().1, level, size, seq });
    }
    // Creation order (raw lines keep log order through merges).
    v.sort_by_key(|o| o.seq);
    Ok(v)
}

/// Writes items `r` of `set` as one block; `level` `None` = sealed.
/// Returns the block's key.
fn write<K: Kind>(tx: &Tx, set: &K::Set, r: Range<usize>, level: Option<u8>, seq: &mut dyn FnMut() -> u32) -> Result<u64, StoreError> {
    let size: usize = r.clone().map(|i| K::size(set, i)).sum();
    let (sum, min, bytes) = K::encode(set, r, level.is_none())?;
    let s = seq();
    let k = block_key(min, s);
    put_block(&mut tx.open_table(K::BLOCKS)?, k, &bytes)?;
    tx.open_table(K::SUMS)?.insert(k, sum.as_slice())?;
    if let Some(level) = level {
        tx.open_table(OPEN_BLOCKS)?.insert((K::ID, k), (level, u32::try_from(size).unwrap_or(u32::MAX), s))?;
    }
    Ok(k)
}

/// Reads (from `cache` when it has them), then deletes, the open blocks
/// `which` (in the given order), returning their items followed by
/// `tail`, in the kind's order.
fn take<K: Kind>(tx: &Tx, cache: &mut OpenCache, which: &[Open], tail: K::Set) -> Result<K::Set, StoreError> {
    let mut set = K::Set::default();
    {
        let mut b = tx.open_table(K::BLOCKS)?;
        let mut s = tx.open_table(K::SUMS)?;
        let mut o = tx.open_table(OPEN_BLOCKS)?;
        for w in which {
            let kept = K::cached(cache).and_then(|c| {
                // Written and merged in this same commit: nothing to adopt.
                if c.pending.is_some_and(|(k, _)| k == w.key) {
                    c.pending = None;
                }
                c.blocks.remove(&w.key)
            });
            let kept = kept.filter(|items| K::len(items) == w.size as usize);
            if let Some(items) = kept {
                set.merge(items);
            } else if let Some(bytes) = get_block(&b, w.key)? {
                // (A block retention already removed is simply gone.)
                K::decode_into(&bytes, &mut set)?;
            }
            remove_block(&mut b, w.key)?;
            s.remove(w.key)?;
            o.remove((K::ID, w.key))?;
        }
    }
    set.merge(tail);
    K::order(&mut set);
    Ok(set)
}

/// Stable sort of `v` by `key`, fast when `v` is nearly in order, as
/// merged records are: the tracker emits a delivery when its message
/// leaves the queue, so of a block of 1,024 a few dozen come after later
/// ones (some by hundreds of places). Those are taken out, sorted, and
/// merged back, each record moved three times; the general sort moved
/// every 296-byte record through its merge buffer over and over (5 % of the
/// writer's instructions in an import). Equal keys keep their order, as
/// in `sort_by_key`.
fn order_by_key<T, K: Ord + Copy>(v: &mut Vec<T>, key: impl Fn(&T) -> K) {
    if v.is_sorted_by_key(&key) {
        return;
    }
    let n = v.len();
    // `kept`: each item not below every one before it; `late`: the rest.
    let mut kept = Vec::with_capacity(n);
    let mut late = Vec::new();
    let mut max: Option<K> = None;
    for (i, x) in std::mem::take(v).into_iter().enumerate() {
        let k = key(&x);
        if max.is_none_or(|m| k >= m) {
            max = Some(k);
            kept.push((i, x));
        } else {
            late.push((i, x));
        }
    }
    late.sort_by_key(|(_, x)| key(x));
    v.reserve_exact(n);
    let (mut a, mut b) = (kept.into_iter().peekable(), late.into_iter().peekable());
    loop {
        let from_kept = match (a.peek(), b.peek()) {
            (Some((i, x)), Some((j, y))) => (key(x), i) <= (key(y), j),
            (Some(_), None) => true,
            (None, Some(_)) => false,
            (None, None) => return,
        };
        if let Some((_, x)) = if from_kept { a.next() } else { b.next() } {
            v.push(x);
        }
    }
}

/// Concatenation of item sets.
pub(crate) trait Merge {
    fn merge(&mut self, from: Self);
}

impl<T> Merge for Vec<T> {
    fn merge(&mut self, from: Self) {
        self.extend(from);
    }
}

impl Merge for RawLines {
    fn merge(&mut self, from: Self) {
        self.extend(&from);
    }
}

/// Cuts items `from..` of `set` into blocks of about `K::SEAL`: full ones
/// are sealed, the remainder is written open at `rest_level`.
fn cut<K: Kind>(
    tx: &Tx,
    cache: &mut OpenCache,
    set: &K::Set,
    from: usize,
    rest_level: u8,
    seq: &mut dyn FnMut() -> u32,
) -> Result<(), StoreError> {
    let n = K::len(set);
    let mut start = from;
    let mut acc = 0;
    for i in from..n {
        acc += K::size(set, i);
        if acc >= K::SEAL {
            write::<K>(tx, set, start..i + 1, None, seq)?;
            start = i + 1;
            acc = 0;
        }
    }
    if start < n {
        let k = write::<K>(tx, set, start..n, Some(rest_level), seq)?;
        if let Some(c) = K::cached(cache) {
            c.pending = Some((k, start));
        }
    }
    Ok(())
}

/// Adds the items of one commit (borrowed: a failed commit is retried
/// with the same batch): sealed blocks when the open ones and `new`
/// together fill one, otherwise an open level-0 block, then merges the
/// levels that are full.
///
/// # Errors
/// Database or encoding failure.
pub(crate) fn add<K: Kind>(tx: &Tx, cache: &mut OpenCache, new: &K::Set, seq: &mut dyn FnMut() -> u32) -> Result<(), StoreError> {
    let n = K::len(new);
    if n == 0 {
        return Ok(());
    }
    let open = open_blocks::<K>(tx)?;
    if let Some(c) = K::cached(cache) {
        // Blocks no longer open (retention removed them) are dropped.
        c.blocks.retain(|k, _| open.iter().any(|o| o.key == *k));
    }
    let open_size: usize = open.iter().map(|o| o.size as usize).sum();
    let mut need = K::SEAL.saturating_sub(open_size);
    let mut first = 0;
    while first < n && need > 0 {
        need = need.saturating_sub(K::size(new, first));
        first += 1;
    }
    if need == 0 {
        // Seal: the open blocks topped up with the first new items make
        // one full block; the rest of `new` is cut straight from the batch.
        if open.is_empty() {
            first = 0;
        } else {
            let set = take::<K>(tx, cache, &open, K::copy(new, 0..first))?;
            let len = K::len(&set);
            write::<K>(tx, &set, 0..len, None, seq)?;
        }
        return cut::<K>(tx, cache, new, first, TOP, seq);
    }
    add_open::<K>(tx, cache, new, seq)
}

/// Adds `new` as an open level-0 block and merges the levels that are
/// full, never sealing (the raw lines' open blocks are sealed by the
/// ingesting side, see [`replace_open`]).
///
/// # Errors
/// Database or encoding failure.
pub(crate) fn add_open<K: Kind>(tx: &Tx, cache: &mut OpenCache, new: &K::Set, seq: &mut dyn FnMut() -> u32) -> Result<(), StoreError> {
    let n = K::len(new);
    if n == 0 {
        return Ok(());
    }
    let k = write::<K>(tx, new, 0..n, Some(0), seq)?;
    if let Some(c) = K::cached(cache) {
        c.pending = Some((k, 0));
    }
    // Cascade: FANIN blocks of one level become one block of the next.
    let mut open = open_blocks::<K>(tx)?;
    for level in 0..TOP {
        let same: Vec<Open> = open.iter().filter(|o| o.level == level).copied().collect();
        if same.len() < FANIN {
            break;
        }
        let set = take::<K>(tx, cache, &same, K::Set::default())?;
        let len = K::len(&set);
        if len > 0 {
            let k = write::<K>(tx, &set, 0..len, Some(level + 1), seq)?;
            if let Some(c) = K::cached(cache) {
                c.blocks.insert(k, set);
            }
        }
        open = open_blocks::<K>(tx)?;
    }
    Ok(())
}

/// Deletes every open block of the kind and stores `sealed` (summary row,
/// key time, bytes), which hold their items and more.
///
/// # Errors
/// Database failure.
pub(crate) fn replace_open<K: Kind>(tx: &Tx, sealed: &[Encoded], seq: &mut dyn FnMut() -> u32) -> Result<(), StoreError> {
    if sealed.is_empty() {
        return Ok(());
    }
    let open = open_blocks::<K>(tx)?;
    let mut b = tx.open_table(K::BLOCKS)?;
    let mut s = tx.open_table(K::SUMS)?;
    {
        let mut o = tx.open_table(OPEN_BLOCKS)?;
        for w in &open {
            remove_block(&mut b, w.key)?;
            s.remove(w.key)?;
            o.remove((K::ID, w.key))?;
        }
    }
    for (sum, min, bytes) in sealed {
        let k = block_key(*min, seq());
        put_block(&mut b, k, bytes)?;
        s.insert(k, sum.as_slice())?;
    }
    Ok(())
}

/// The items of the kind's open blocks, oldest first (what the ingesting
/// side holds back from its next sealed raw block).
///
/// # Errors
/// Database or decoding failure.
pub(crate) fn open_items<K: Kind>(tx: &redb::ReadTransaction) -> Result<K::Set, StoreError> {
    let open = open_list::<K>(&tx.open_table(OPEN_BLOCKS)?)?;
    let b = tx.open_table(K::BLOCKS)?;
    let mut set = K::Set::default();
    for w in &open {
        if let Some(bytes) = get_block(&b, w.key)? {
            K::decode_into(&bytes, &mut set)?;
        }
    }
    K::order(&mut set);
    Ok(set)
}

/// Forgets `k` as an open block (retention deleted it).
///
/// # Errors
/// Database failure.
pub(crate) fn forget(tx: &Tx, kind: u8, k: u64) -> Result<(), StoreError> {
    tx.open_table(OPEN_BLOCKS)?.remove((kind, k))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::Resolver;
    use crate::ingest::{Options, Pipeline};
    use crate::store::{Store, query::Window};
    use redb::{ReadableDatabase, ReadableTableMetadata};
    use std::sync::Arc;

    /// `order_by_key` gives exactly the stable sort's order (equal keys in
    /// their first order) on nearly ordered, shuffled, reversed and
    /// one-far-late inputs.
    #[test]
    fn order_by_key_is_the_stable_sort() {
        let mut seed = 0x9e37_79b9_7f4a_7c15u64;
        let mut rnd = move |n: u64| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed % n
        };
        for case in 0..400u64 {
            let n = usize::try_from(rnd(300)).unwrap_or(0);
            // (key, first position): keys with many ties.
            let mut v: Vec<(i64, usize)> = (0..n).map(|i| (i64::try_from(i / 3).unwrap_or(0), i)).collect();
            match case % 4 {
                0 => {
                    for _ in 0..rnd(20) {
                        let (a, d) = (usize::try_from(rnd(n.max(1) as u64)).unwrap_or(0), usize::try_from(rnd(6)).unwrap_or(0));
                        if a + d < n {
                            v[a..=a + d].rotate_left(1);
                        }
                    }
                }
                1 => v.iter_mut().for_each(|x| x.0 = i64::try_from(rnd(10)).unwrap_or(0)),
                2 => v.reverse(),
                _ => {
                    if n > 1 {
                        v[n - 1].0 = -1;
                    }
                }
            }
            let v: Vec<(i64, usize)> = v.iter().enumerate().map(|(i, x)| (x.0, i)).collect();
            let mut want = v.clone();
            want.sort_by_key(|x| x.0);
            let mut got = v.clone();
            order_by_key(&mut got, |x| x.0);
            assert_eq!(got, want, "case {case}: {v:?}");
        }
    }

    /// Five-line message flows (one in nine bounced), a connect line each.
    fn log(messages: usize) -> Vec<String> {
        let mut v = Vec::new();
        for i in 0..messages {
            let (h, m, s) = (i / 3600 % 24, i / 60 % 60, i % 60);
            let t = format!("Oct  1 {h:02}:{m:02}:{s:02} mail");
            let q = format!("{:X}", 0x10_0000 + i);
            let status = if i % 9 == 0 { "bounced (host said: 550 no such user)" } else { "sent (250 ok)" };
            v.push(format!("{t} postfix/smtpd[10]: connect from a.example[192.0.2.{}]", i % 250));
            v.push(format!("{t} postfix/smtpd[10]: {q}: client=a.example[192.0.2.{}]", i % 250));
            v.push(format!("{t} postfix/cleanup[11]: {q}: message-id=<m{i}@a.example>"));
            v.push(format!("{t} postfix/qmgr[12]: {q}: from=<s{i}@a.example>, size=100, nrcpt=1 (queue active)"));
            v.push(format!(
                "{t} postfix/smtp[13]: {q}: to=<r{i}@b{}.example>, relay=mx.b.example[198.51.100.1]:25, delay=1, delays=0/0/0/1, dsn=2.0.0, status={status}",
                i % 7
            ));
            v.push(format!("{t} postfix/qmgr[12]: {q}: removed"));
        }
        v
    }

    fn opts() -> Options {
        Options::utc_2026()
    }

    /// Feeds `lines`, committing every `every` lines; a new pipeline (as
    /// after a restart) at `restart_at`.
    fn ingest(ws: &std::path::Path, lines: &[String], every: usize, restart_at: usize) -> Arc<Store> {
        let store = Arc::new(Store::open(ws).unwrap());
        ingest_into(&store, lines, every, restart_at);
        store
    }

    fn ingest_into(store: &Arc<Store>, lines: &[String], every: usize, restart_at: usize) {
        ingest_as(store, lines, every, restart_at, [false, false]);
    }

    /// [`ingest_into`] with, before and after the restart, a daemon's
    /// pipeline (`false`) or a one-shot import's (`true`: raw blocks sealed
    /// as they fill, larger batches).
    fn ingest_as(store: &Arc<Store>, lines: &[String], every: usize, restart_at: usize, bulk: [bool; 2]) {
        let make = |b: bool| if b { Pipeline::bulk(store.clone(), opts()).unwrap() } else { Pipeline::new(store.clone(), opts()).unwrap() };
        let mut res = Resolver::new(jiff::tz::TimeZone::UTC, 2026);
        let mut p = make(bulk[0]);
        for (i, l) in lines.iter().enumerate() {
            if i == restart_at {
                p.commit(true).unwrap();
                drop(p);
                p = make(bulk[1]);
            }
            p.feed(l.as_bytes(), &mut res);
            if (i + 1) % every == 0 {
                p.commit(false).unwrap();
            }
        }
        p.commit(true).unwrap();
    }

    /// The free-space hint that spares compaction checks a walk over the
    /// file: a new file starts at nothing free and an import leaves it
    /// unmeasured; retention adds what it deletes; a file opened again is
    /// measured at its first check.
    #[test]
    fn free_hint_counts_what_retention_deletes() {
        let d = test_dir("hint");
        let store = ingest(&d, &log(3_000), 1_000, usize::MAX);
        assert_eq!(store.free_hint(), 0);
        assert_eq!(store.compaction_due().unwrap(), None);
        assert_eq!(store.free_hint(), 0, "measured though nothing was deleted");
        let blocks: u64 = store
            .table_space()
            .unwrap()
            .iter()
            .filter(|t| ["event_blocks", "delivery_blocks", "raw_blocks"].contains(&t.0))
            .map(|t| t.1)
            .sum();
        assert!(blocks > 100_000, "{blocks}");
        assert!(store.retention(crate::clock::Timestamp(4_000_000_000), None, 100_000).unwrap() > 0);
        let hint = store.free_hint();
        // Block pieces' keys (10 bytes per ~4 KiB) are stored bytes too.
        assert!(hint >= blocks * 99 / 100 && hint < blocks * 2, "{hint} of {blocks}");
        drop(store);
        let store = Store::open(&d).unwrap();
        assert_eq!(store.free_hint(), u64::MAX);
        store.compaction_due().unwrap();
        assert_ne!(store.free_hint(), u64::MAX);
        let _ = std::fs::remove_dir_all(&d);
    }

    fn test_dir(tag: &str) -> std::path::PathBuf {
        let d = std::env::temp_dir().join(format!("postlens-levels-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        d
    }

    fn open_count(store: &Store, kind: u8) -> usize {
        let db = store.db().unwrap();
        let tx = db.begin_read().unwrap();
        let t = tx.open_table(OPEN_BLOCKS).unwrap();
        t.range((kind, 0)..=(kind, u64::MAX)).unwrap().count()
    }

    #[test]
    fn many_small_commits_store_what_one_big_commit_does() {
        let dir = test_dir("levels");
        let lines = log(3_000);
        let one = ingest(&dir.join("one"), &lines, usize::MAX, usize::MAX);
        // A live daemon: a commit every few lines, and a restart midway.
        let small = ingest(&dir.join("small"), &lines, 5, 7_001);
        let all = Window { from: None, to: None };
        let a = one.stats(all).unwrap();
        assert_eq!(a.deliveries.sent + a.deliveries.bounced, 3_000);
        assert_eq!(a, small.stats(all).unwrap());
        let raw_one = one.raw_lines(all, 0, usize::MAX).unwrap();
        let raw_small = small.raw_lines(all, 0, usize::MAX).unwrap();
        assert_eq!(raw_one.len(), lines.len());
        assert_eq!(raw_one, raw_small, "raw lines in log order, none lost or doubled");
        assert_eq!(raw_small[lines.len() - 1].1, lines[lines.len() - 1].as_bytes());
        // Merges kept the open blocks few, and sealed full blocks.
        for kind in [Events::ID, Deliveries::ID, Raw::ID] {
            let n = open_count(&small, kind);
            assert!(n <= usize::from(TOP) * (FANIN - 1) + 1, "kind {kind}: {n} open blocks");
        }
        let (_, raw_orig, raw_stored) = small.raw_sizes().unwrap();
        assert!(raw_stored * 3 < raw_orig, "raw lines compress: {raw_stored} of {raw_orig}");
        let sums = |s: &Store, def: SumTable| s.db().unwrap().begin_read().unwrap().open_table(def).unwrap().len().unwrap();
        assert!(sums(&small, Deliveries::SUMS) < 40, "{} delivery blocks", sums(&small, Deliveries::SUMS));
        assert!(sums(&small, Raw::SUMS) < 40, "{} raw blocks", sums(&small, Raw::SUMS));
        let q = crate::store::query::Query {
            sender: None,
            recipient: None,
            id: Some("m1234@a.example".into()),
            status: None,
            window: all,
            limit: 10,
        };
        assert_eq!(small.search(&q).unwrap().len(), 1);
        // One-shot imports (the second resuming a daemon's open raw blocks,
        // or an import's) store the same.
        for (tag, bulk, every) in [
            ("bulk", [true, true], 5),
            ("daemon-then-bulk", [false, true], 7),
            ("bulk-full", [true, true], 500),
            ("bulk-one", [true, true], usize::MAX),
        ] {
            let store = Arc::new(Store::open(&dir.join(tag)).unwrap());
            ingest_as(&store, &lines, every, 7_001, bulk);
            assert_eq!(a, store.stats(all).unwrap(), "{tag}");
            assert_eq!(store.raw_lines(all, 0, usize::MAX).unwrap(), raw_one, "{tag}: raw lines in log order, none lost or doubled");
            assert!(sums(&store, Raw::SUMS) < 40, "{tag}: {} raw blocks", sums(&store, Raw::SUMS));
            assert!(open_count(&store, Raw::ID) <= usize::from(TOP) * (FANIN - 1) + 1, "{tag}: open raw blocks");
        }
    }

    /// The writer merges open blocks from the records it keeps in memory
    /// ([`OpenCache`]): open blocks retention deleted are never merged back
    /// from there.
    #[test]
    fn open_blocks_retention_deleted_stay_deleted() {
        let dir = test_dir("cache");
        let first = log(500);
        let next: Vec<String> = log(300).iter().map(|l| l.replacen("Oct  1", "Oct  2", 1)).collect();
        let store = Arc::new(Store::open(&dir).unwrap());
        ingest_into(&store, &first, 5, usize::MAX);
        assert!(open_count(&store, Deliveries::ID) > 0 && open_count(&store, Events::ID) > 0);
        let oct2 = crate::clock::Timestamp(crate::parse::days_from_civil(2026, 10, 2) * 86_400);
        assert!(store.retention(oct2, None, 100_000).unwrap() > 0);
        assert_eq!(open_count(&store, Deliveries::ID), 0);
        ingest_into(&store, &next, 5, usize::MAX);
        let q = crate::store::query::Query { window: Window { from: None, to: None }, limit: 10_000, ..Default::default() };
        let found = store.search(&q).unwrap();
        assert_eq!(found.len(), 300, "only the deliveries after the retention");
        assert!(found.iter().all(|d| d.time >= oct2));
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// A daemon answers readers without waiting for its writer: whether a
    /// queued batch has landed or not when the reader looks, every record
    /// counts once, and an overlay stays exact after later commits.
    #[test]
    fn overlays_count_every_record_once_while_commits_land() {
        let dir = test_dir("overlay");
        let store = Arc::new(Store::open(&dir).unwrap());
        let mut res = Resolver::new(jiff::tz::TimeZone::UTC, 2026);
        let mut p = Pipeline::new(store.clone(), opts()).unwrap();
        let all = Window { from: None, to: None };
        let part = Window { from: Some(crate::clock::Timestamp(1_790_813_400)), to: Some(crate::clock::Timestamp(1_790_815_000)) };
        let q = crate::store::query::Query { recipient: Some("@b3.example".into()), window: all, limit: 10_000, ..Default::default() };
        let view = |o: &crate::store::query::Overlay| {
            (
                store.stats_live(all, Some(o)).unwrap(),
                store.stats_live(part, Some(o)).unwrap(),
                store.domains_live(all, Some(o)).unwrap(),
                store.hourly_live(part, Some(o)).unwrap(),
                store.count_live(&q, Some(o)).unwrap(),
                store.search_live(&q, Some(o)).unwrap().len(),
            )
        };
        let lines = log(400);
        let mut fed = 0;
        for (round, chunk) in lines.chunks(37).enumerate() {
            for l in chunk {
                p.feed(l.as_bytes(), &mut res);
            }
            fed += chunk.len();
            // Queue a batch (the writer may or may not commit it before
            // the reader's snapshot), then read.
            if round % 3 != 2 {
                p.commit(false).unwrap();
            }
            let o = p.overlay(false);
            let racing = view(&o);
            p.commit(true).unwrap();
            let settled = view(&p.overlay(false));
            assert_eq!(racing, settled, "after {fed} lines");
            assert_eq!(view(&o), settled, "the first overlay, read again after the commit ({fed} lines)");
        }
        let s = store.stats(all).unwrap();
        assert_eq!(s.deliveries.sent + s.deliveries.bounced, 400);
        assert_eq!(view(&p.overlay(false)).0, s);
    }

    #[test]
    fn domain_counts_from_days_and_edge_hours_equal_the_hourly_sum() {
        // Messages every 97 minutes over ~10 days, to several domains.
        let mut lines = Vec::new();
        for (i, l) in log(150).into_iter().enumerate() {
            let msg = i / 6;
            let t = 1_790_812_800 + i64::try_from(msg).unwrap() * 97 * 60; // 2026-10-01 UTC
            let ts = jiff::Timestamp::from_second(t).unwrap().strftime("%b %e %H:%M:%S").to_string();
            lines.push(format!("{ts}{}", &l[15..]));
        }
        let dir = test_dir("days");
        let store = ingest(&dir, &lines, 7, usize::MAX);
        let at = |s: &str| Some(crate::clock::Timestamp(s.parse::<jiff::Timestamp>().unwrap().as_second()));
        for (from, to) in [
            ("2026-10-01T00:00:00Z", "2026-10-11T00:00:00Z"),
            ("2026-10-02T05:00:00Z", "2026-10-08T17:00:00Z"),
            ("2026-10-03T23:00:00Z", "2026-10-04T01:00:00Z"),
            ("2026-10-05T00:00:00Z", "2026-10-06T00:00:00Z"),
        ] {
            let w = Window { from: at(from), to: at(to) };
            let by_domain = store.domains(w).unwrap();
            let mut sum = crate::store::DomainCounts::default();
            for (_, c) in &by_domain {
                sum.add(c);
            }
            let mut hourly = crate::store::DomainCounts::default();
            for (_, c) in store.hourly(w).unwrap() {
                hourly.add(&c);
            }
            assert_eq!(sum, hourly, "{from}..{to}");
            let s = store.stats(w).unwrap();
            assert_eq!(sum.outbound[0] + sum.inbound[0], s.deliveries.sent, "{from}..{to}");
            assert_eq!(sum.outbound[1] + sum.inbound[1], s.deliveries.bounced, "{from}..{to}");
            assert!(s.deliveries.sent > 0, "{from}..{to}");
        }
    }

    #[test]
    fn pieces_round_trip_and_fill_pages() {
        let dir = test_dir("pieces");
        let store = Store::open(&dir).unwrap();
        let db = store.db().unwrap();
        let tx = db.begin_write().unwrap();
        let big: Vec<u8> = (0..100_000u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 13).to_le_bytes()[0]).collect();
        {
            let mut t = tx.open_table(super::super::RAW_BLOCKS).unwrap();
            put_block(&mut t, 7, &big).unwrap();
            put_block(&mut t, 8, b"small").unwrap();
            assert_eq!(get_block(&t, 7).unwrap().unwrap(), big);
            assert_eq!(get_block(&t, 8).unwrap().unwrap(), b"small");
            assert!(get_block(&t, 9).unwrap().is_none());
            remove_block(&mut t, 7).unwrap();
            assert!(get_block(&t, 7).unwrap().is_none());
            assert_eq!(get_block(&t, 8).unwrap().unwrap(), b"small");
        }
        tx.commit().unwrap();
    }
}
