//! Raw log lines, kept so the detective can show the lines behind a
//! delivery and the UI can page through and download a time range.
//!
//! Lines are stored in blocks of at most `RAW_BLOCK_BYTES` of text,
//! LZ4-compressed (fast enough not to slow ingestion; 12–17 % of the
//! original on real Postfix logs), each with a summary row (time bounds,
//! line count, original and stored sizes) so reads decode only the blocks
//! of the asked range and `status` reports the sizes without decoding.

use serde::{Deserialize, Serialize};

/// Lines in log order: their times and the text, each line ending in `\n`.
#[derive(Debug, Default, Clone)]
pub struct RawLines {
    pub times: Vec<i64>,
    pub text: Vec<u8>,
    /// End of each line in `text` (after its `\n`).
    ends: Vec<u32>,
}

impl RawLines {
    /// Room for `bytes` of text (and about as many lines as that holds).
    pub fn with_capacity(bytes: usize) -> RawLines {
        RawLines { times: Vec::with_capacity(bytes / 100), text: Vec::with_capacity(bytes), ends: Vec::with_capacity(bytes / 100) }
    }

    pub fn push(&mut self, t: i64, line: &[u8]) {
        self.times.push(t);
        self.text.extend_from_slice(line);
        self.text.push(b'\n');
        // Batches and blocks stay far below 4 GiB (RAW_BATCH_BYTES).
        self.ends.push(u32::try_from(self.text.len()).unwrap_or(u32::MAX));
    }

    /// Text bytes (with the newlines).
    pub fn bytes(&self) -> usize {
        self.text.len()
    }

    /// Text bytes (with the newlines) of the lines from `i` on.
    pub fn bytes_from(&self, i: usize) -> usize {
        self.text.len() - self.start(i)
    }

    pub fn len(&self) -> usize {
        self.times.len()
    }

    pub fn is_empty(&self) -> bool {
        self.times.is_empty()
    }

    fn start(&self, i: usize) -> usize {
        if i == 0 { 0 } else { self.ends[i - 1] as usize }
    }

    /// Line `i` without its newline.
    pub fn line(&self, i: usize) -> &[u8] {
        &self.text[self.start(i)..self.ends[i] as usize - 1]
    }

    /// Bytes of line `i` with its newline.
    pub fn line_bytes(&self, i: usize) -> usize {
        self.ends[i] as usize - self.start(i)
    }

    /// A copy of lines `r`.
    #[must_use]
    pub fn copy(&self, r: std::ops::Range<usize>) -> RawLines {
        let mut c = RawLines::with_capacity(self.start(r.end) - self.start(r.start));
        for i in r {
            c.push(self.times[i], self.line(i));
        }
        c
    }

    /// Drops the first `n` lines, keeping the buffers' capacity.
    pub fn drop_front(&mut self, n: usize) {
        let off = self.start(n);
        self.text.drain(..off);
        self.times.drain(..n);
        self.ends.drain(..n);
        let off = u32::try_from(off).unwrap_or(u32::MAX);
        for e in &mut self.ends {
            *e -= off;
        }
    }

    pub fn extend(&mut self, o: &RawLines) {
        for i in 0..o.len() {
            self.push(o.times[i], o.line(i));
        }
    }
}

#[derive(Debug, Default, Clone, Serialize, Deserialize)]
pub(crate) struct RawSummary {
    pub min: i64,
    pub max: i64,
    pub lines: u32,
    pub raw_bytes: u64,
    pub stored_bytes: u64,
}

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push(u8::try_from(v & 0x7f).unwrap_or(0) | 0x80);
        v >>= 7;
    }
    out.push(u8::try_from(v).unwrap_or(0));
}

fn get_varint(s: &[u8], at: &mut usize) -> Option<u64> {
    let mut v: u64 = 0;
    for shift in (0..64).step_by(7) {
        let b = *s.get(*at)?;
        *at += 1;
        v |= u64::from(b & 0x7f) << shift;
        if b & 0x80 == 0 {
            return Some(v);
        }
    }
    None
}

/// Length of the common prefix of `a` and `b`, at most 255.
fn common_prefix(a: &[u8], b: &[u8]) -> usize {
    let n = a.len().min(b.len()).min(255);
    let mut i = 0;
    while i + 8 <= n {
        let x = u64::from_le_bytes(a[i..i + 8].try_into().unwrap_or_default());
        let y = u64::from_le_bytes(b[i..i + 8].try_into().unwrap_or_default());
        if x != y {
            return i + ((x ^ y).trailing_zeros() / 8) as usize;
        }
        i += 8;
    }
    while i < n && a[i] == b[i] {
        i += 1;
    }
    i
}

/// Encodes lines `r` of `raw` as one block: its summary and the bytes.
///
/// Block format (LZ4 with a size prefix around): the first time (i64 LE),
/// the line count and each line's time minus the first (varints), then
/// each line front-coded against the previous one: one byte of shared
/// prefix length, the rest of the line and `\n`. Front coding takes the
/// repeated timestamp/host/program prefix out before LZ4 sees it
/// (26 % -> 22 % of the original on generated logs).
pub(crate) fn encode_block(raw: &RawLines, r: std::ops::Range<usize>) -> (RawSummary, Vec<u8>) {
    encode_block_with(raw, r, &mut Vec::new(), &mut Vec::new())
}

/// [`encode_block`] for a one-shot import's ingesting thread, which seals a
/// block of `RAW_BLOCK_BYTES` every few thousand lines: its two working
/// buffers are kept for the next block (static import of 1M lines 0.75 ->
/// 0.71 s). Not for the daemon: in the soak the pair raised peak RSS from
/// 22.4 to 23.2 MiB, close to its 24 MiB budget; nor for the writer's
/// rarer merges of open raw blocks.
pub(crate) fn encode_block_reusing(raw: &RawLines, r: std::ops::Range<usize>) -> (RawSummary, Vec<u8>) {
    thread_local! {
        /// The front-coded text and the LZ4 output of the last block, for
        /// the next: for a 256 KiB block each is above the static builds'
        /// threshold for a mapping of its own, so fresh buffers cost a
        /// mapping, a page fault per 4 KiB and an unmapping per block (a
        /// 1M-line import made 2,000 such mappings). Kept only up to
        /// `RAW_SCRATCH_KEEP` bytes each.
        static SCRATCH: std::cell::RefCell<(Vec<u8>, Vec<u8>)> = const { std::cell::RefCell::new((Vec::new(), Vec::new())) };
    }
    SCRATCH.with_borrow_mut(|(plain, out)| {
        let r = encode_block_with(raw, r, plain, out);
        for b in [plain, out] {
            if b.capacity() > crate::limits::RAW_SCRATCH_KEEP {
                *b = Vec::new();
            }
        }
        r
    })
}

fn encode_block_with(raw: &RawLines, r: std::ops::Range<usize>, plain: &mut Vec<u8>, out: &mut Vec<u8>) -> (RawSummary, Vec<u8>) {
    let times = &raw.times[r.clone()];
    let min = times.iter().copied().min().unwrap_or(0);
    let max = times.iter().copied().max().unwrap_or(0);
    let text_bytes = raw.start(r.end) - raw.start(r.start);
    plain.clear();
    plain.reserve(text_bytes + times.len() * 3 + 16);
    plain.extend_from_slice(&min.to_le_bytes());
    put_varint(plain, times.len() as u64);
    for &t in times {
        put_varint(plain, u64::try_from(t - min).unwrap_or(0));
    }
    let mut prev: &[u8] = &[];
    for i in r {
        let line = raw.line(i);
        let p = common_prefix(prev, line);
        plain.push(u8::try_from(p).unwrap_or(0));
        plain.extend_from_slice(&line[p..]);
        plain.push(b'\n');
        prev = line;
    }
    // LZ4 with the plain size in front (as `compress_prepend_size`), into
    // the scratch buffer; the block keeps an exact-size copy. A reused
    // buffer is only grown, not zeroed again: LZ4 writes from its start and
    // only the bytes it wrote are copied.
    let need = 4 + lz4_flex::block::get_maximum_output_size(plain.len());
    if out.len() < need {
        out.resize(need, 0);
    }
    out[..4].copy_from_slice(&u32::try_from(plain.len()).unwrap_or(u32::MAX).to_le_bytes());
    let packed = match lz4_flex::block::compress_into(plain, &mut out[4..need]) {
        Ok(n) => out[..4 + n].to_vec(),
        // Cannot happen (the buffer has the maximum output size); the
        // allocating form then.
        Err(_) => lz4_flex::block::compress_prepend_size(plain),
    };
    let summary = RawSummary {
        min,
        max,
        lines: u32::try_from(times.len()).unwrap_or(u32::MAX),
        raw_bytes: text_bytes as u64,
        stored_bytes: packed.len() as u64,
    };
    (summary, packed)
}

/// LZ4 with a size prefix, refusing a prefix beyond `MAX_DECODED_BLOCK`
/// (the decoder would otherwise allocate whatever the prefix claims).
pub(crate) fn lz4_decompress(packed: &[u8]) -> Option<Vec<u8>> {
    let size = u32::from_le_bytes(packed.get(..4)?.try_into().ok()?);
    if u64::from(size) > crate::limits::MAX_DECODED_BLOCK {
        return None;
    }
    lz4_flex::block::decompress_size_prepended(packed).ok()
}

/// Appends the lines of an encoded block to `out`. Corrupt input appends
/// what could be read and answers `false`, never a panic.
pub(crate) fn decode_into(packed: &[u8], out: &mut RawLines) -> bool {
    let Some(plain) = lz4_decompress(packed) else { return false };
    let Some(min) = plain.get(..8).and_then(|b| b.try_into().ok()).map(i64::from_le_bytes) else { return false };
    let mut at = 8;
    let Some(n) = get_varint(&plain, &mut at) else { return false };
    let n = usize::try_from(n).unwrap_or(0).min(plain.len());
    let mut times = Vec::with_capacity(n);
    for _ in 0..n {
        let Some(d) = get_varint(&plain, &mut at) else { return false };
        times.push(min.saturating_add(i64::try_from(d).unwrap_or(0)));
    }
    let mut line: Vec<u8> = Vec::with_capacity(256);
    for t in times {
        let Some(&p) = plain.get(at) else { return false };
        at += 1;
        let rest = plain.get(at..).unwrap_or_default();
        let Some(len) = memchr::memchr(b'\n', rest) else { return false };
        if usize::from(p) > line.len() {
            return false;
        }
        line.truncate(usize::from(p));
        line.extend_from_slice(&rest[..len]);
        at += len + 1;
        out.push(t, &line);
    }
    true
}

/// Decodes a block into (time, line) pairs (what could be read of a
/// corrupt one).
pub(crate) fn decode_block(packed: &[u8]) -> Vec<(i64, Vec<u8>)> {
    let mut r = RawLines::default();
    decode_into(packed, &mut r);
    (0..r.len()).map(|i| (r.times[i], r.line(i).to_vec())).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_round_trip_in_order() {
        let mut r = RawLines::default();
        for i in 0..1000 {
            r.push(1_000 + i64::from(i % 7), format!("line {i} postfix/smtpd[1]: connect from x").as_bytes());
        }
        let blocks = [encode_block(&r, 0..400), encode_block(&r, 400..1000)];
        let mut back = Vec::new();
        for (s, b) in &blocks {
            assert!(s.stored_bytes < s.raw_bytes);
            back.extend(decode_block(b));
        }
        assert_eq!(back.len(), 1000);
        assert_eq!(back[999].1, b"line 999 postfix/smtpd[1]: connect from x");
        assert_eq!(back[8].0, 1_001);
        assert!(decode_block(b"garbage").is_empty());
    }

    /// The reusing form gives the same bytes as the allocating one, and a
    /// small block after a large one carries nothing of the large one.
    #[test]
    fn reused_buffers_leave_nothing_behind() {
        let mut r = RawLines::default();
        for i in 0..3000u16 {
            r.push(2_000 + i64::from(i % 11), format!("line {i} postfix/qmgr[7]: {}", "q".repeat(usize::from(i % 90))).as_bytes());
        }
        for range in [0..2500, 2500..2503, 0..1, 1..3000, 2999..3000] {
            let fresh = encode_block(&r, range.clone());
            let reused = encode_block_reusing(&r, range.clone());
            assert_eq!(fresh.1, reused.1, "{range:?}");
            assert_eq!(fresh.0.stored_bytes, reused.0.stored_bytes);
            let back = decode_block(&reused.1);
            assert_eq!(back.len(), range.len(), "{range:?}");
            assert_eq!(back.last().map(|l| l.1.clone()), Some(r.line(range.end - 1).to_vec()));
        }
    }
}

#[cfg(test)]
mod front_coding_tests {
    use super::*;

    #[test]
    fn every_kind_of_shared_prefix_round_trips() {
        let long = "x".repeat(600);
        let lines: Vec<Vec<u8>> = vec![
            b"".to_vec(),
            b"".to_vec(),
            b"abc".to_vec(),
            b"abc".to_vec(),
            b"abcd".to_vec(),
            b"ab".to_vec(),
            // 10 shared bytes: the prefix byte is a newline's value.
            b"0123456789-a".to_vec(),
            b"0123456789-b".to_vec(),
            format!("{long}1").into_bytes(),
            format!("{long}2").into_bytes(),
            vec![0xff, 0x00, b'\r', 0x80],
            b"\xc3\xa9t\xc3\xa9".to_vec(),
        ];
        let mut r = RawLines::default();
        for (i, l) in lines.iter().enumerate() {
            r.push(1_000 - i64::try_from(i).unwrap(), l);
        }
        let (sum, b) = encode_block(&r, 0..lines.len());
        assert_eq!(sum.min, 1_000 - 11);
        let back = decode_block(&b);
        assert_eq!(back.len(), lines.len());
        for (i, (t, l)) in back.iter().enumerate() {
            assert_eq!(l, &lines[i], "line {i}");
            assert_eq!(*t, 1_000 - i64::try_from(i).unwrap());
        }
        // A range from the middle decodes on its own.
        let (_, b) = encode_block(&r, 7..10);
        let back = decode_block(&b);
        assert_eq!(back.iter().map(|(_, l)| l.clone()).collect::<Vec<_>>(), lines[7..10].to_vec());
        // Dropping sealed lines keeps the rest addressable.
        r.drop_front(7);
        assert_eq!(r.len(), lines.len() - 7);
        assert_eq!(r.line(0), lines[7].as_slice());
        assert_eq!(r.line(r.len() - 1), lines[lines.len() - 1].as_slice());
        assert_eq!(r.times[0], 1_000 - 7);
        r.push(5, b"new");
        assert_eq!(r.line(r.len() - 1), b"new");
    }

    #[test]
    fn a_truncated_block_yields_a_prefix_not_a_panic() {
        let mut r = RawLines::default();
        for i in 0..200 {
            r.push(i, format!("Oct  1 00:00:{:02} mail postfix/smtpd[1]: connect from x{i}", i % 60).as_bytes());
        }
        let (_, b) = encode_block(&r, 0..200);
        for cut in [0, 3, 4, 10, b.len() / 2, b.len() - 1] {
            let _ = decode_block(&b[..cut]);
        }
        let mut plain = lz4_decompress(&b).unwrap();
        plain.truncate(plain.len() - 30);
        let partial = decode_block(&lz4_flex::block::compress_prepend_size(&plain));
        assert!(partial.len() < 200 && partial.len() > 150, "{}", partial.len());
        assert_eq!(partial[5].1, r.line(5));
    }
}

#[cfg(test)]
mod bound_tests {
    #[test]
    fn a_lying_size_prefix_is_refused_not_allocated() {
        let mut b = u32::MAX.to_le_bytes().to_vec();
        b.extend_from_slice(b"xx");
        assert!(super::lz4_decompress(&b).is_none());
        assert!(super::decode_block(&b).is_empty());
    }
}
