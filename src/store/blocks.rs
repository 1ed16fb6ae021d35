//! Block encoding: records are kept in time-ordered blocks of at most
//! `BLOCK_RECORDS` (sealed blocks columnar, see `columns`; open blocks,
//! which are rewritten as they merge, postcard and LZ4 behind a tag byte;
//! sealed blocks of schema 4 and before, postcard and deflate, are still
//! read), each with a small summary row
//! (time bounds, counters, a Bloom filter for detective look-ups) so `stats`
//! adds summaries and decodes only blocks that straddle a window edge, and
//! `search` decodes only blocks whose filter may hold the key.

use crate::track::{DeliveryRec, EventKind, EventRec, NoticeKind, Outcome};
use serde::{Deserialize, Serialize, de::DeserializeOwned};
use std::io::Read;

#[derive(Debug, thiserror::Error)]
pub enum CodecError {
    #[error("block encoding: {0}")]
    Postcard(#[from] postcard::Error),
    #[error("block compression: {0}")]
    Io(#[from] std::io::Error),
}

/// A record kind kept in blocks: open blocks are plain postcard
/// ([`encode_open`]; postcard behind LZ4 before), sealed ones columnar
/// (`columns`); sealed blocks written before the columnar format are
/// postcard, deflated.
pub(crate) trait Record: Serialize + DeserializeOwned + Sized {
    /// Encodes a sealed block.
    ///
    /// # Errors
    /// Compression failure.
    fn encode_sealed(items: &[Self]) -> Result<Vec<u8>, CodecError>;
    /// Decodes a columnar block (without its tag).
    ///
    /// # Errors
    /// The block is corrupt.
    fn decode_columnar(packed: &[u8]) -> Result<Vec<Self>, CodecError>;
}

impl Record for DeliveryRec {
    fn encode_sealed(items: &[Self]) -> Result<Vec<u8>, CodecError> {
        super::columns::encode_deliveries(items)
    }
    fn decode_columnar(packed: &[u8]) -> Result<Vec<Self>, CodecError> {
        super::columns::decode_deliveries(packed)
    }
}

impl Record for EventRec {
    fn encode_sealed(items: &[Self]) -> Result<Vec<u8>, CodecError> {
        super::columns::encode_events(items)
    }
    fn decode_columnar(packed: &[u8]) -> Result<Vec<Self>, CodecError> {
        super::columns::decode_events(packed)
    }
}

/// The sealed-block encoding of schema 4 and before (postcard, then fast
/// deflate): still read; written only by tests that build an old store.
#[cfg(test)]
pub(crate) fn encode_legacy<T: Serialize>(items: &[T]) -> Result<Vec<u8>, CodecError> {
    let raw = postcard::to_allocvec(items)?;
    let mut z = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::fast());
    std::io::Write::write_all(&mut z, &raw)?;
    Ok(z.finish()?)
}

/// First byte of an LZ4 block. A raw deflate stream never starts with it:
/// its low bits would name block type 3, which deflate reserves.
const LZ4_TAG: u8 = 0xff;

/// First byte of an open block stored as plain postcard. Like
/// [`LZ4_TAG`], its low bits name deflate's reserved block type 3.
const PLAIN_TAG: u8 = 0xf7;

/// Encodes an open block: plain postcard. An open block lives only until
/// the next merge or seal rewrites it (in a bulk import, the next commit),
/// and the open blocks of a kind hold less than one sealed block, so it is
/// not compressed: LZ4 of every commit's open blocks was 5 % of the
/// writer's instructions in an import, for bytes soon deleted.
pub(crate) fn encode_open<T: Serialize>(items: &[T]) -> Result<Vec<u8>, CodecError> {
    Ok(postcard::to_extend(items, vec![PLAIN_TAG])?)
}

/// An open block as earlier versions wrote it (postcard behind LZ4):
/// for the tests that such blocks still decode.
#[cfg(test)]
pub(crate) fn encode_open_lz4<T: Serialize>(items: &[T]) -> Result<Vec<u8>, CodecError> {
    let raw = postcard::to_allocvec(items)?;
    let mut out = vec![LZ4_TAG];
    out.extend_from_slice(&lz4_flex::block::compress_prepend_size(&raw));
    Ok(out)
}

/// Decodes a block of any encoding: open (LZ4), sealed (columnar) or
/// sealed by schema 4 and before (deflated postcard).
pub(crate) fn decode<T: Record>(bytes: &[u8]) -> Result<Vec<T>, CodecError> {
    if let Some(packed) = bytes.strip_prefix(&[super::columns::COLUMNAR_TAG]) {
        return T::decode_columnar(packed);
    }
    if let Some(plain) = bytes.strip_prefix(&[PLAIN_TAG]) {
        return Ok(postcard::from_bytes(plain)?);
    }
    if let Some(packed) = bytes.strip_prefix(&[LZ4_TAG]) {
        let raw =
            super::raw::lz4_decompress(packed).ok_or_else(|| std::io::Error::new(std::io::ErrorKind::InvalidData, "corrupt LZ4 block"))?;
        return Ok(postcard::from_bytes(&raw)?);
    }
    let mut raw = Vec::new();
    flate2::read::DeflateDecoder::new(bytes).take(crate::limits::MAX_DECODED_BLOCK).read_to_end(&mut raw)?;
    Ok(postcard::from_bytes(&raw)?)
}

/// An event block's counters: the head of its summary row. (postcard
/// writes a nested struct's fields in place, so a row reads the same
/// whether these fields stand alone or in [`EventSummary`].)
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub(crate) struct EventCounts {
    pub min: i64,
    pub max: i64,
    pub connections: u64,
    pub rejected: u64,
    pub deferrals: u64,
    pub queued: i64,
    pub with_deferral: i64,
    pub notifications: [u64; 3],
}

impl EventCounts {
    /// Counts one event; failed logins go to `auth` (ip, protocol, count).
    pub fn add<'a>(&mut self, k: &'a EventKind, auth: &mut dyn FnMut(&'a str, usize, u64)) {
        match k {
            EventKind::Connection => self.connections += 1,
            EventKind::Rejected => self.rejected += 1,
            EventKind::Deferral { .. } => self.deferrals += 1,
            EventKind::Queued(n) => self.queued += i64::from(*n),
            EventKind::WithDeferral(n) => self.with_deferral += i64::from(*n),
            EventKind::Notification(n) => {
                self.notifications[match n {
                    NoticeKind::NonDelivery => 0,
                    NoticeKind::Delay => 1,
                    NoticeKind::Success => 2,
                }] += 1;
            }
            EventKind::AuthFailure { ip, proto, count } => auth(ip, proto.index(), u64::from(*count)),
        }
    }

    /// Adds another block's counters (the time span is left alone).
    pub fn merge(&mut self, o: &EventCounts) {
        self.connections += o.connections;
        self.rejected += o.rejected;
        self.deferrals += o.deferrals;
        self.queued += o.queued;
        self.with_deferral += o.with_deferral;
        for i in 0..3 {
            self.notifications[i] += o.notifications[i];
        }
    }
}

/// Per-block summary of events.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub(crate) struct EventSummary<'a> {
    pub counts: EventCounts,
    /// (ip, [smtp, imap, pop3, other]); borrowed from the stored bytes
    /// when read (the stats path reads thousands per request).
    #[serde(borrow)]
    pub auth: Vec<(std::borrow::Cow<'a, str>, [u64; 4])>,
}

impl EventSummary<'static> {
    pub fn of(events: &[EventRec]) -> EventSummary<'static> {
        let mut c = EventCounts { min: i64::MAX, max: i64::MIN, ..EventCounts::default() };
        let mut auth: std::collections::HashMap<&str, [u64; 4]> = std::collections::HashMap::new();
        for e in events {
            c.min = c.min.min(e.time.0);
            c.max = c.max.max(e.time.0);
            c.add(&e.kind, &mut |ip, p, n| auth.entry(ip).or_default()[p] += n);
        }
        EventSummary { counts: c, auth: auth.into_iter().map(|(k, v)| (std::borrow::Cow::Owned(k.to_owned()), v)).collect() }
    }
}

/// An event summary row read with its per-IP list only summed (the IPs
/// are skipped as raw bytes: postcard writes strings and bytes alike):
/// what counting without the per-IP breakdown needs.
#[derive(Deserialize)]
pub(crate) struct EventTotals {
    pub counts: EventCounts,
    pub auth: AuthSum,
}

/// The sum of a summary's per-IP failure counts.
pub(crate) struct AuthSum(pub u64);

impl<'de> Deserialize<'de> for AuthSum {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Sum;
        impl<'de> serde::de::Visitor<'de> for Sum {
            type Value = AuthSum;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a list of (ip, counts)")
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut a: A) -> Result<AuthSum, A::Error> {
                let mut n = 0u64;
                while let Some((_, c)) = a.next_element::<(&'de [u8], [u64; 4])>()? {
                    n += c.iter().sum::<u64>();
                }
                Ok(AuthSum(n))
            }
        }
        d.deserialize_seq(Sum)
    }
}

/// The first two fields of every summary row (`min`, `max`): read alone,
/// postcard leaves the rest of the row undecoded.
#[derive(Deserialize)]
pub(crate) struct SpanHead {
    pub min: i64,
    pub max: i64,
}

/// Per-block summary of deliveries.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub(crate) struct DeliverySummary {
    pub min: i64,
    pub max: i64,
    pub min_queue: i64,
    /// [direction][outcome] counts, direction 0 = outbound.
    pub counts: [[u64; 4]; 2],
    pub deferred_then_sent: u64,
    pub bloom: Bloom,
}

/// The counters of a [`DeliverySummary`] without its Bloom filter (the
/// filter is the last field; postcard leaves trailing bytes unread).
#[derive(Deserialize)]
pub(crate) struct DeliverySummaryHead {
    pub min: i64,
    pub max: i64,
    pub min_queue: i64,
    pub counts: [[u64; 4]; 2],
    pub deferred_then_sent: u64,
}

impl DeliverySummaryHead {
    /// Records still pending when the block was written.
    pub fn pending(&self) -> u64 {
        self.counts[0][3] + self.counts[1][3]
    }
}

impl DeliverySummary {
    pub fn of(ds: &[DeliveryRec]) -> DeliverySummary {
        let mut s = DeliverySummary { min: i64::MAX, max: i64::MIN, min_queue: i64::MAX, ..DeliverySummary::default() };
        // The filter is sized for the block's distinct keys (about three
        // per delivery: a message's recipients share its sender, IDs and
        // domains), not for every key of every delivery (six).
        let mut keys = Vec::with_capacity(ds.len() * 6);
        for d in ds {
            s.min = s.min.min(d.time.0);
            s.max = s.max.max(d.time.0);
            s.min_queue = s.min_queue.min(d.queue_time.0);
            s.counts[usize::from(d.direction() == crate::track::Direction::Inbound)][d.outcome().index()] += 1;
            if d.outcome() == Outcome::Sent && d.deferrals > 0 {
                s.deferred_then_sent += 1;
            }
            for_each_search_key(d, |k| keys.push(Bloom::hash(k)));
        }
        keys.sort_unstable();
        keys.dedup();
        s.bloom = Bloom::with_items(keys.len());
        for h in keys {
            s.bloom.insert_hash(h);
        }
        s
    }
}

/// Calls `f` with each key a delivery can be found by: sender, recipient,
/// original recipient, their `@domain`s, every queue ID and the Message-ID. Keys are compared
/// case-insensitively (the filter hashes lower-cased bytes), so nothing is
/// allocated here.
pub(crate) fn for_each_search_key(d: &DeliveryRec, mut f: impl FnMut(&[u8])) {
    for a in [&d.sender, &d.recipient, &d.orig_recipient].into_iter().flatten() {
        if let Some(at) = a.rfind('@') {
            f(&a.as_bytes()[at..]);
        }
        f(a.as_bytes());
    }
    for q in &d.queue_ids {
        f(q.as_bytes());
    }
    if let Some(m) = &d.message_id {
        f(m.as_bytes());
    }
}

/// A small Bloom filter (3 probes, ~10 bits per key: ~1 % false positives).
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub(crate) struct Bloom {
    #[serde(with = "serde_bytes_compat")]
    bits: Vec<u8>,
}

mod serde_bytes_compat {
    use serde::{Deserialize, Deserializer, Serializer};
    pub fn serialize<S: Serializer>(v: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bytes(v)
    }
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let b: &[u8] = <&[u8]>::deserialize(d)?;
        Ok(b.to_vec())
    }
}

impl Bloom {
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.bits.len()
    }

    fn with_items(n: usize) -> Bloom {
        let bytes = (n * 10).div_ceil(8).clamp(8, 1 << 20);
        Bloom { bits: vec![0; bytes] }
    }

    /// The hash a key's probes derive from (of its lower-cased bytes).
    fn hash(key: &[u8]) -> u64 {
        let mut f = crate::hash::Fnv::default();
        f.write_lower(key);
        f.finish()
    }

    fn probes(&self, h: u64) -> [usize; 3] {
        let h2 = h.rotate_left(31).wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
        let m = (self.bits.len() * 8) as u64;
        let idx = |i: u64| usize::try_from(h.wrapping_add(i.wrapping_mul(h2)) % m).unwrap_or(0);
        [idx(0), idx(1), idx(2)]
    }

    #[cfg(test)]
    fn insert(&mut self, key: &[u8]) {
        self.insert_hash(Bloom::hash(key));
    }

    fn insert_hash(&mut self, h: u64) {
        if self.bits.is_empty() {
            return;
        }
        for p in self.probes(h) {
            self.bits[p / 8] |= 1 << (p % 8);
        }
    }

    /// May the filter hold `key` (compared case-insensitively)? An empty
    /// filter answers yes.
    pub fn may_contain(&self, key: &[u8]) -> bool {
        self.bits.is_empty() || self.probes(Bloom::hash(key)).iter().all(|&p| self.bits[p / 8] & (1 << (p % 8)) != 0)
    }
}

/// A block key: time-ordered by the block's first record, then a sequence
/// number so keys never collide.
pub(crate) fn block_key(min_time: i64, seq: u32) -> u64 {
    let t = u64::try_from(min_time.max(0)).unwrap_or(0).min((1 << 40) - 1);
    (t << 24) | u64::from(seq & 0x00ff_ffff)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn totals_read_a_summary_row_without_its_ips() {
        let ev = |ip: &str, count| EventRec {
            time: crate::clock::Timestamp(100),
            kind: EventKind::AuthFailure { ip: ip.into(), proto: crate::track::Proto::Imap, count },
        };
        let s = EventSummary::of(&[ev("192.0.2.1", 3), ev("2001:db8::7", 4), ev("192.0.2.1", 2)]);
        assert_eq!(s.counts.max, 100);
        let row = postcard::to_allocvec(&s).unwrap();
        let t: EventTotals = postcard::from_bytes(&row).unwrap();
        assert_eq!(t.auth.0, 9);
        let span: SpanHead = postcard::from_bytes(&row).unwrap();
        assert_eq!((span.min, span.max), (100, 100));
    }

    #[test]
    fn bloom_has_no_false_negatives() {
        let mut b = Bloom::with_items(1000);
        for i in 0..1000 {
            b.insert(format!("k{i}").as_bytes());
        }
        assert!((0..1000).all(|i| b.may_contain(format!("k{i}").as_bytes())));
        let fp = (0..10_000).filter(|i| b.may_contain(format!("x{i}").as_bytes())).count();
        assert!(fp < 500, "false positives {fp}");
    }

    #[test]
    fn blocks_round_trip() {
        let d = vec![DeliveryRec { recipient: Some("a@b".into()), ..DeliveryRec::default() }; 3];
        let back: Vec<DeliveryRec> = decode(&DeliveryRec::encode_sealed(&d).expect("enc")).expect("dec");
        assert_eq!(back, d);
        let back: Vec<DeliveryRec> = decode(&encode_legacy(&d).expect("enc")).expect("dec");
        assert_eq!(back, d);
        let back: Vec<DeliveryRec> = decode(&encode_open(&d).expect("enc")).expect("dec");
        assert_eq!(back, d);
        let back: Vec<DeliveryRec> = decode(&encode_open_lz4(&d).expect("enc")).expect("dec");
        assert_eq!(back, d);
        assert!(decode::<DeliveryRec>(&[PLAIN_TAG, 0x05]).is_err(), "five records promised, none there");
        assert!(decode::<DeliveryRec>(b"garbage").is_err());
        assert!(decode::<DeliveryRec>(&[LZ4_TAG, 0xff, 0xff, 0xff, 0x7f, 0]).is_err(), "a size beyond the bound");
        assert!(decode::<DeliveryRec>(&[LZ4_TAG]).is_err());
    }
}
