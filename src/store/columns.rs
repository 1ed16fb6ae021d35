//! Columnar encoding of sealed delivery and event blocks (format tag
//! [`COLUMNAR_TAG`]).
//!
//! A block's records are written field by field: every field of every
//! record goes to that field's own column, so deflate sees a run of times,
//! then of relays, then of DSNs … instead of records that interleave them.
//! Times are deltas (zigzag varints) from the previous record's time, a
//! queue time is a delta from its record's time. Each string column keeps a
//! per-block dictionary: a value seen before in that column is written as
//! its distance from the most recently added value (the recipients of one
//! message repeat its queue IDs and Message-ID at distance 0), a new one as
//! a literal; addresses are split at their last `@` into a local-part and a
//! domain column. The columns are concatenated (each behind its length) and
//! deflated.
//!
//! Bounds: decoding reads at most `MAX_DECODED_BLOCK` inflated bytes and
//! checks every length and reference against what is left, so a corrupt
//! block yields an error, never a panic or an allocation larger than the
//! block. Encoding allocates the dictionaries of one block (at most
//! `BLOCK_RECORDS` values per column).
//!
//! Must not: change what is stored, only how. Every field of `DeliveryRec`
//! and `EventRec` is destructured exhaustively, so a new field does not
//! compile until it has a column.

use super::blocks::CodecError;
use crate::clock::Timestamp;
use crate::track::{DeliveryRec, Direction, EventKind, EventRec, NoticeKind, Outcome, Proto};
use std::collections::HashMap;
use std::io::Read;

/// First byte of a columnar block. A raw deflate stream never starts with
/// it: its bits 1-2 would name block type 3, which deflate reserves (as
/// for the LZ4 tag of open blocks, 0xff).
pub(crate) const COLUMNAR_TAG: u8 = 0xfe;

/// Deflate level of sealed blocks: zlib-rs' level 2 (`deflate_fast`, no
/// lazy matching). On the soak's deliveries, columns at level 1
/// (`deflate_quick`, what blocks used before) took 89 B per delivery, at
/// 2 about 73, at 6 67 for roughly twice level 2's CPU on the writer
/// thread, which an import cannot spare.
const LEVEL: u32 = 2;

fn bad(what: &str) -> CodecError {
    CodecError::Io(std::io::Error::new(std::io::ErrorKind::InvalidData, format!("columnar block: {what}")))
}

fn put(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push(low7(v) | 0x80);
        v >>= 7;
    }
    out.push(low7(v));
}

/// The low seven bits of `v`.
fn low7(v: u64) -> u8 {
    u8::try_from(v & 0x7f).expect("seven bits fit a byte")
}

fn zigzag(v: i64) -> u64 {
    ((v << 1) ^ (v >> 63)).cast_unsigned()
}

fn unzigzag(v: u64) -> i64 {
    (v >> 1).cast_signed() ^ -(v & 1).cast_signed()
}

/// A small index (an enum's) as a byte.
fn small(i: usize) -> u8 {
    u8::try_from(i).expect("enum indices are small")
}

/// One column being read.
struct Cursor<'a> {
    b: &'a [u8],
}

impl<'a> Cursor<'a> {
    fn get(&mut self) -> Result<u64, CodecError> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let (&byte, rest) = self.b.split_first().ok_or_else(|| bad("column ends early"))?;
            self.b = rest;
            v |= u64::from(byte & 0x7f) << shift;
            if byte < 0x80 {
                return Ok(v);
            }
        }
        Err(bad("varint too long"))
    }
    fn get_u32(&mut self) -> Result<u32, CodecError> {
        u32::try_from(self.get()?).map_err(|_| bad("value out of range"))
    }
    fn take(&mut self, n: u64) -> Result<&'a [u8], CodecError> {
        let n = usize::try_from(n).map_err(|_| bad("length"))?;
        if n > self.b.len() {
            return Err(bad("column ends early"));
        }
        let (h, t) = self.b.split_at(n);
        self.b = t;
        Ok(h)
    }
}

/// A string column being written: codes (0 = none, 1 = a new value whose
/// length follows, 2 + d = the value added d values before the latest)
/// and the new values' text.
///
/// The dictionary hashes eight bytes at a time ([`WordHasher`]), not with
/// std's keyed `SipHash`: several times cheaper for these strings, which
/// the writer thread hashes for every record. Log text could be chosen to
/// collide, but a dictionary holds one block's values (at most
/// `BLOCK_RECORDS` per column), which bounds the damage to one slow block.
#[derive(Default)]
struct StrW<'a> {
    codes: Vec<u8>,
    text: Vec<u8>,
    seen: HashMap<&'a str, u64, std::hash::BuildHasherDefault<WordHasher>>,
    /// The value last written and its number (the recipients of one
    /// message repeat it: no hashing then).
    last: Option<(&'a str, u64)>,
}

/// A multiply-xor hash over 8-byte words (unkeyed: see [`StrW`]).
#[derive(Default)]
struct WordHasher(u64);

impl std::hash::Hasher for WordHasher {
    fn write(&mut self, bytes: &[u8]) {
        const K: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut words = bytes.chunks_exact(8);
        for w in &mut words {
            let w = u64::from_le_bytes(w.try_into().expect("chunks of eight"));
            self.0 = (self.0 ^ w).wrapping_mul(K).rotate_left(31);
        }
        let mut tail = [0u8; 8];
        let rest = words.remainder();
        tail[..rest.len()].copy_from_slice(rest);
        self.0 = (self.0 ^ u64::from_le_bytes(tail) ^ (bytes.len() as u64)).wrapping_mul(K).rotate_left(31);
    }
    fn finish(&self) -> u64 {
        let h = self.0 ^ (self.0 >> 29);
        h.wrapping_mul(0xbf58_476d_1ce4_e5b9) ^ (h >> 32)
    }
}

impl<'a> StrW<'a> {
    fn put(&mut self, s: Option<&'a str>) {
        let Some(s) = s else {
            self.codes.push(0);
            return;
        };
        let n = self.seen.len() as u64;
        if let Some((l, i)) = self.last
            && l == s
        {
            put(&mut self.codes, 2 + (n - 1 - i));
            return;
        }
        if let Some(&i) = self.seen.get(s) {
            self.last = Some((s, i));
            put(&mut self.codes, 2 + (n - 1 - i));
        } else {
            self.codes.push(1);
            put(&mut self.codes, s.len() as u64);
            self.text.extend_from_slice(s.as_bytes());
            self.seen.insert(s, n);
            self.last = Some((s, n));
        }
    }
    /// An address: local part (the whole value without `@`) here, the
    /// domain (present only when the value has an `@`) in `dom`.
    fn put_addr(&mut self, dom: &mut StrW<'a>, a: Option<&'a str>) {
        let Some(a) = a else {
            self.put(None);
            return;
        };
        if let Some((l, d)) = a.rsplit_once('@') {
            self.put(Some(l));
            dom.put(Some(d));
        } else {
            self.put(Some(a));
            dom.put(None);
        }
    }
    fn finish(self, out: &mut Vec<Vec<u8>>) {
        out.push(self.codes);
        out.push(self.text);
    }
}

/// A string column being read.
struct StrR<'a> {
    codes: Cursor<'a>,
    text: Cursor<'a>,
    dict: Vec<&'a str>,
}

impl<'a> StrR<'a> {
    fn new(cols: &mut Cols<'a>) -> Result<StrR<'a>, CodecError> {
        Ok(StrR { codes: cols.next()?, text: cols.next()?, dict: Vec::new() })
    }
    fn get(&mut self) -> Result<Option<&'a str>, CodecError> {
        match self.codes.get()? {
            0 => Ok(None),
            1 => {
                let n = self.codes.get()?;
                let s = std::str::from_utf8(self.text.take(n)?).map_err(|_| bad("not UTF-8"))?;
                self.dict.push(s);
                Ok(Some(s))
            }
            c => {
                let d = usize::try_from(c - 2).map_err(|_| bad("reference"))?;
                let i = self.dict.len().checked_sub(1 + d).ok_or_else(|| bad("reference"))?;
                Ok(Some(self.dict[i]))
            }
        }
    }
    fn owned(&mut self) -> Result<Option<String>, CodecError> {
        Ok(self.get()?.map(str::to_owned))
    }
    fn addr(&mut self, dom: &mut StrR<'a>) -> Result<Option<String>, CodecError> {
        let Some(l) = self.get()? else { return Ok(None) };
        Ok(Some(match dom.get()? {
            Some(d) => format!("{l}@{d}"),
            None => l.to_owned(),
        }))
    }
}

/// The columns of an inflated block, in order.
struct Cols<'a> {
    rest: Cursor<'a>,
}

impl<'a> Cols<'a> {
    fn next(&mut self) -> Result<Cursor<'a>, CodecError> {
        let n = self.rest.get()?;
        Ok(Cursor { b: self.rest.take(n)? })
    }
}

/// Concatenates the columns (each behind its length) and deflates them
/// behind the tag.
fn pack(n: usize, cols: &[Vec<u8>], level: u32) -> Result<Vec<u8>, CodecError> {
    let mut raw = Vec::with_capacity(cols.iter().map(|c| c.len() + 5).sum::<usize>() + 5);
    put(&mut raw, n as u64);
    for c in cols {
        put(&mut raw, c.len() as u64);
        raw.extend_from_slice(c);
    }
    thread_local! {
        // One compressor per thread, reset per block: its state (a few
        // hundred KiB) is not allocated and freed for every block.
        static DEFLATE: std::cell::RefCell<flate2::Compress> = std::cell::RefCell::new(flate2::Compress::new(flate2::Compression::new(LEVEL), false));
    }
    let mut out = Vec::with_capacity(raw.len() / 3 + 64);
    out.push(COLUMNAR_TAG);
    if level == LEVEL {
        DEFLATE.with_borrow_mut(|z| {
            z.reset();
            deflate(z, &raw, out)
        })
    } else {
        deflate(&mut flate2::Compress::new(flate2::Compression::new(level), false), &raw, out)
    }
}

/// Appends `raw`, deflated by `z`, to `out`.
fn deflate(z: &mut flate2::Compress, raw: &[u8], mut out: Vec<u8>) -> Result<Vec<u8>, CodecError> {
    loop {
        let done = usize::try_from(z.total_in()).unwrap_or(usize::MAX).min(raw.len());
        if out.len() == out.capacity() {
            out.reserve(out.capacity() / 2 + 64);
        }
        match z.compress_vec(&raw[done..], &mut out, flate2::FlushCompress::Finish) {
            Ok(flate2::Status::StreamEnd) => return Ok(out),
            Ok(_) => {}
            Err(e) => return Err(CodecError::Io(std::io::Error::other(e))),
        }
    }
}

/// Inflates a columnar block (without its tag): the record count and the
/// inflated columns.
fn unpack(packed: &[u8]) -> Result<Vec<u8>, CodecError> {
    let mut raw = Vec::new();
    flate2::read::DeflateDecoder::new(packed).take(crate::limits::MAX_DECODED_BLOCK).read_to_end(&mut raw)?;
    Ok(raw)
}

fn open(raw: &[u8]) -> Result<(usize, Cols<'_>), CodecError> {
    let mut rest = Cursor { b: raw };
    let n = usize::try_from(rest.get()?).map_err(|_| bad("count"))?;
    // Every record takes at least one byte of its first column.
    if n > raw.len() {
        return Err(bad("count"));
    }
    Ok((n, Cols { rest }))
}

fn outcome_code(o: Option<Outcome>) -> u8 {
    o.map_or(0, |o| 1 + small(o.index()))
}

fn outcome_of(c: u8) -> Result<Option<Outcome>, CodecError> {
    Ok(match c {
        0 => None,
        1 => Some(Outcome::Sent),
        2 => Some(Outcome::Bounced),
        3 => Some(Outcome::Expired),
        4 => Some(Outcome::Pending),
        _ => return Err(bad("outcome")),
    })
}

/// Encodes deliveries as a columnar block.
///
/// # Errors
/// Compression failure.
pub(crate) fn encode_deliveries(ds: &[DeliveryRec]) -> Result<Vec<u8>, CodecError> {
    encode_deliveries_at(ds, LEVEL)
}

/// [`encode_deliveries`] at deflate level `level`.
///
/// # Errors
/// Compression failure.
pub(crate) fn encode_deliveries_at(ds: &[DeliveryRec], level: u32) -> Result<Vec<u8>, CodecError> {
    pack(ds.len(), &delivery_columns(ds), level)
}

/// The columns of deliveries, before packing.
fn delivery_columns(ds: &[DeliveryRec]) -> Vec<Vec<u8>> {
    let mut times = Vec::with_capacity(ds.len() * 2);
    let mut qtimes = Vec::with_capacity(ds.len() * 2);
    let mut flags = Vec::with_capacity(ds.len());
    let mut nums = Vec::with_capacity(ds.len() * 2);
    let [
        mut qids,
        mut mid,
        mut s_l,
        mut s_d,
        mut r_l,
        mut r_d,
        mut o_l,
        mut o_d,
        mut relay,
        mut dsn,
        mut resp,
        mut notif,
        mut sasl,
        mut ip,
    ] = std::array::from_fn::<StrW<'_>, 14, _>(|_| StrW::default());
    let mut prev = 0i64;
    for d in ds {
        let DeliveryRec {
            time,
            queue_time,
            queue_ids,
            message_id,
            sender,
            recipient,
            orig_recipient,
            outcome,
            direction,
            relay: rl,
            dsn: ds_,
            response,
            attempts,
            deferrals,
            notification_queue_id,
            sasl_user,
            client_ip,
        } = d;
        put(&mut times, zigzag(time.0.wrapping_sub(prev)));
        prev = time.0;
        put(&mut qtimes, zigzag(time.0.wrapping_sub(queue_time.0)));
        let dir = match direction {
            None => 0,
            Some(Direction::Outbound) => 1,
            Some(Direction::Inbound) => 2,
        };
        // Usually one queue ID, or two behind a content filter: the count
        // shares the flags byte up to 14; 15 means "count follows in nums".
        let nq = small(queue_ids.len().min(15));
        flags.push(outcome_code(*outcome) | (dir << 3));
        flags.push(nq);
        if nq == 15 {
            put(&mut nums, queue_ids.len() as u64);
        }
        put(&mut nums, u64::from(*attempts));
        put(&mut nums, u64::from(*deferrals));
        for q in queue_ids {
            qids.put(Some(q));
        }
        mid.put(message_id.as_deref());
        s_l.put_addr(&mut s_d, sender.as_deref());
        r_l.put_addr(&mut r_d, recipient.as_deref());
        o_l.put_addr(&mut o_d, orig_recipient.as_deref());
        relay.put(rl.as_deref());
        dsn.put(ds_.as_deref());
        resp.put(response.as_deref());
        notif.put(notification_queue_id.as_deref());
        sasl.put(sasl_user.as_deref());
        ip.put(client_ip.as_deref());
    }
    let mut cols = vec![times, qtimes, flags, nums];
    for s in [qids, mid, s_l, s_d, r_l, r_d, o_l, o_d, relay, dsn, resp, notif, sasl, ip] {
        s.finish(&mut cols);
    }
    cols
}

/// Decodes a columnar delivery block (without its tag).
///
/// # Errors
/// The block is corrupt.
pub(crate) fn decode_deliveries(packed: &[u8]) -> Result<Vec<DeliveryRec>, CodecError> {
    let raw = unpack(packed)?;
    let (n, mut cols) = open(&raw)?;
    let mut times = cols.next()?;
    let mut qtimes = cols.next()?;
    let mut flags = cols.next()?;
    let mut nums = cols.next()?;
    let mut s = Vec::with_capacity(14);
    for _ in 0..14 {
        s.push(StrR::new(&mut cols)?);
    }
    let [qids, mid, s_l, s_d, r_l, r_d, o_l, o_d, relay, dsn, resp, notif, sasl, ip]: &mut [StrR<'_>; 14] =
        s.as_mut_slice().try_into().map_err(|_| bad("columns"))?;
    // `n` is checked only against the block's size: reserve no more than a full block.
    let mut out = Vec::with_capacity(n.min(crate::limits::BLOCK_RECORDS));
    let mut prev = 0i64;
    for _ in 0..n {
        let time = prev.wrapping_add(unzigzag(times.get()?));
        prev = time;
        let queue_time = time.wrapping_sub(unzigzag(qtimes.get()?));
        let f = flags.take(2)?;
        let outcome = outcome_of(f[0] & 7)?;
        let direction = match f[0] >> 3 {
            0 => None,
            1 => Some(Direction::Outbound),
            2 => Some(Direction::Inbound),
            _ => return Err(bad("direction")),
        };
        let nq = if f[1] == 15 { nums.get()? } else { u64::from(f[1]) };
        let attempts = nums.get_u32()?;
        let deferrals = nums.get_u32()?;
        // Each ID takes at least a code byte: a count beyond the column is corrupt.
        if nq > qids.codes.b.len() as u64 {
            return Err(bad("queue IDs"));
        }
        let mut queue_ids = Vec::with_capacity(usize::try_from(nq).map_err(|_| bad("queue IDs"))?);
        for _ in 0..nq {
            queue_ids.push(qids.owned()?.ok_or_else(|| bad("queue ID"))?);
        }
        out.push(DeliveryRec {
            time: Timestamp(time),
            queue_time: Timestamp(queue_time),
            queue_ids,
            message_id: mid.owned()?,
            sender: s_l.addr(s_d)?,
            recipient: r_l.addr(r_d)?,
            orig_recipient: o_l.addr(o_d)?,
            outcome,
            direction,
            relay: relay.owned()?,
            dsn: dsn.owned()?,
            response: resp.owned()?,
            attempts,
            deferrals,
            notification_queue_id: notif.owned()?,
            sasl_user: sasl.owned()?,
            client_ip: ip.owned()?,
        });
    }
    Ok(out)
}

/// Encodes events as a columnar block.
///
/// # Errors
/// Compression failure.
pub(crate) fn encode_events(es: &[EventRec]) -> Result<Vec<u8>, CodecError> {
    encode_events_at(es, LEVEL)
}

/// [`encode_events`] at deflate level `level`.
///
/// # Errors
/// Compression failure.
pub(crate) fn encode_events_at(es: &[EventRec], level: u32) -> Result<Vec<u8>, CodecError> {
    pack(es.len(), &event_columns(es), level)
}

/// The columns of events, before packing.
fn event_columns(es: &[EventRec]) -> Vec<Vec<u8>> {
    let mut times = Vec::with_capacity(es.len() * 2);
    let mut kinds = Vec::with_capacity(es.len());
    let mut nums = Vec::new();
    let mut domains = StrW::default();
    let mut ips = StrW::default();
    let mut prev = 0i64;
    for e in es {
        let EventRec { time, kind } = e;
        put(&mut times, zigzag(time.0.wrapping_sub(prev)));
        prev = time.0;
        match kind {
            EventKind::Connection => kinds.push(0),
            EventKind::Rejected => kinds.push(1),
            EventKind::Deferral { domain } => {
                kinds.push(2);
                domains.put(Some(domain));
            }
            EventKind::Queued(n) => {
                kinds.push(3);
                put(&mut nums, zigzag(i64::from(*n)));
            }
            EventKind::WithDeferral(n) => {
                kinds.push(4);
                put(&mut nums, zigzag(i64::from(*n)));
            }
            EventKind::Notification(k) => kinds.push(match k {
                NoticeKind::NonDelivery => 5,
                NoticeKind::Delay => 6,
                NoticeKind::Success => 7,
            }),
            EventKind::AuthFailure { ip, proto, count } => {
                kinds.push(8 + small(proto.index()));
                ips.put(Some(ip));
                put(&mut nums, u64::from(*count));
            }
        }
    }
    let mut cols = vec![times, kinds, nums];
    domains.finish(&mut cols);
    ips.finish(&mut cols);
    cols
}

/// Decodes a columnar event block (without its tag).
///
/// # Errors
/// The block is corrupt.
pub(crate) fn decode_events(packed: &[u8]) -> Result<Vec<EventRec>, CodecError> {
    let raw = unpack(packed)?;
    let (n, mut cols) = open(&raw)?;
    let mut times = cols.next()?;
    let mut kinds = cols.next()?;
    let mut nums = cols.next()?;
    let mut domains = StrR::new(&mut cols)?;
    let mut ips = StrR::new(&mut cols)?;
    // `n` is checked only against the block's size: reserve no more than a full block.
    let mut out = Vec::with_capacity(n.min(crate::limits::BLOCK_RECORDS));
    let mut prev = 0i64;
    let small = |v: u64| i8::try_from(unzigzag(v)).map_err(|_| bad("count"));
    for _ in 0..n {
        let time = prev.wrapping_add(unzigzag(times.get()?));
        prev = time;
        let kind = match kinds.take(1)?[0] {
            0 => EventKind::Connection,
            1 => EventKind::Rejected,
            2 => EventKind::Deferral { domain: domains.owned()?.ok_or_else(|| bad("domain"))? },
            3 => EventKind::Queued(small(nums.get()?)?),
            4 => EventKind::WithDeferral(small(nums.get()?)?),
            5 => EventKind::Notification(NoticeKind::NonDelivery),
            6 => EventKind::Notification(NoticeKind::Delay),
            7 => EventKind::Notification(NoticeKind::Success),
            k @ 8..=11 => EventKind::AuthFailure {
                ip: ips.owned()?.ok_or_else(|| bad("IP"))?,
                proto: [Proto::Smtp, Proto::Imap, Proto::Pop3, Proto::Other][usize::from(k - 8)],
                count: nums.get_u32()?,
            },
            _ => return Err(bad("event kind")),
        };
        out.push(EventRec { time: Timestamp(time), kind });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::blocks::{self, Record as _};

    /// A small deterministic generator (xorshift).
    struct Rng(u64);
    impl Rng {
        fn below(&mut self, n: u64) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0 % n.max(1)
        }
        fn ix(&mut self, n: usize) -> usize {
            usize::try_from(self.below(n as u64)).unwrap()
        }
        fn pick<'a>(&mut self, v: &[&'a str]) -> &'a str {
            v[self.ix(v.len())]
        }
        fn opt(&mut self, v: &[&str]) -> Option<String> {
            match self.below(5) {
                0 => None,
                1 => Some(String::new()),
                _ => Some(self.pick(v).to_owned()),
            }
        }
    }

    /// Records with every field's corner cases: none vs empty, addresses
    /// with no, one or two `@`, non-ASCII text, long chains, times going
    /// backwards and to the ends of `i64`.
    fn records(n: usize, seed: u64) -> (Vec<DeliveryRec>, Vec<EventRec>) {
        let mut r = Rng(seed | 1);
        let addrs = ["a@b.example", "a@b@c.example", "no-at", "@dom.example", "local@", "ü@ñ.example", "A@B.EXAMPLE"];
        let words = ["250 2.0.0 Ok: queued as 4XyZ", "mx.b.example[198.51.100.1]:25", "2.0.0", "x\u{0}y", "日本", "q"];
        let mut ds = Vec::new();
        let mut es = Vec::new();
        let mut t = 1_790_000_000i64;
        for i in 0..n {
            t = t.wrapping_add(i64::try_from(r.below(100)).unwrap() - 20);
            if i % 97 == 0 {
                t = [i64::MIN, i64::MAX, 0, -1][i / 97 % 4];
            }
            let nq = [1, 1, 2, 0, 15, 16, 40][r.ix(7)];
            ds.push(DeliveryRec {
                time: Timestamp(t),
                queue_time: Timestamp(t.wrapping_sub(i64::try_from(r.below(1 << 40)).unwrap())),
                queue_ids: (0..nq).map(|k| format!("{:X}", r.below(8) + k)).collect(),
                message_id: r.opt(&words),
                sender: r.opt(&addrs),
                recipient: r.opt(&addrs),
                orig_recipient: r.opt(&addrs),
                outcome: [None, Some(Outcome::Sent), Some(Outcome::Bounced), Some(Outcome::Expired), Some(Outcome::Pending)][r.ix(5)],
                direction: [None, Some(Direction::Outbound), Some(Direction::Inbound)][r.ix(3)],
                relay: r.opt(&words),
                dsn: r.opt(&words),
                response: r.opt(&words),
                attempts: [0, 1, u32::MAX][r.ix(3)],
                deferrals: u32::try_from(r.below(300)).unwrap(),
                notification_queue_id: r.opt(&words),
                sasl_user: r.opt(&addrs),
                client_ip: r.opt(&["192.0.2.1", "2001:db8::1"]),
            });
            let kind = match r.below(9) {
                0 => EventKind::Connection,
                1 => EventKind::Rejected,
                2 => EventKind::Deferral { domain: r.pick(&addrs).to_owned() },
                3 => EventKind::Queued([1, -1, i8::MIN, i8::MAX][r.ix(4)]),
                4 => EventKind::WithDeferral(-1),
                5 => EventKind::Notification(NoticeKind::NonDelivery),
                6 => EventKind::Notification(NoticeKind::Delay),
                7 => EventKind::Notification(NoticeKind::Success),
                _ => EventKind::AuthFailure {
                    ip: r.pick(&["192.0.2.1", "2001:db8::1", ""]).to_owned(),
                    proto: [Proto::Smtp, Proto::Imap, Proto::Pop3, Proto::Other][r.ix(4)],
                    count: [1, 7, u32::MAX][r.ix(3)],
                },
            };
            es.push(EventRec { time: Timestamp(t), kind });
        }
        (ds, es)
    }

    #[test]
    fn columnar_blocks_round_trip() {
        for (n, seed) in [(0, 1), (1, 2), (5, 3), (1_024, 4), (4_096, 5)] {
            let (ds, es) = records(n, seed);
            let b = DeliveryRec::encode_sealed(&ds).unwrap();
            assert_eq!(b[0], COLUMNAR_TAG);
            assert_eq!(blocks::decode::<DeliveryRec>(&b).unwrap(), ds);
            let b = EventRec::encode_sealed(&es).unwrap();
            assert_eq!(blocks::decode::<EventRec>(&b).unwrap(), es);
        }
    }

    /// Truncated or damaged blocks decode to an error (or to records),
    /// never to a panic.
    #[test]
    fn damaged_columnar_blocks_do_not_panic() {
        let (ds, es) = records(300, 9);
        let d = DeliveryRec::encode_sealed(&ds).unwrap();
        let e = EventRec::encode_sealed(&es).unwrap();
        let mut r = Rng(77);
        for block in [d, e] {
            for cut in (0..block.len()).step_by(7) {
                let _ = blocks::decode::<DeliveryRec>(&block[..cut]);
                let _ = blocks::decode::<EventRec>(&block[..cut]);
            }
            // Damage the inflated columns (deflate's own checks would
            // reject most damage to the compressed bytes).
            let raw = unpack(&block[1..]).unwrap();
            for _ in 0..2_000 {
                let mut bad = raw.clone();
                for _ in 0..=r.below(4) {
                    let i = r.ix(bad.len());
                    bad[i] = u8::try_from(r.below(256)).unwrap();
                }
                let mut z = flate2::write::DeflateEncoder::new(vec![COLUMNAR_TAG], flate2::Compression::fast());
                std::io::Write::write_all(&mut z, &bad).unwrap();
                let packed = z.finish().unwrap();
                let _ = blocks::decode::<DeliveryRec>(&packed);
                let _ = blocks::decode::<EventRec>(&packed);
            }
        }
        assert!(decode_deliveries(&[]).is_err());
    }
}
