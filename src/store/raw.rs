//! Raw log lines, kept so the detective can show the lines behind a
//! delivery and the UI can page through and download a time range.
//!
//! Lines are stored in blocks of at most `RAW_BLOCK_BYTES` of text,
//! LZ4-compressed (fast enough not to slow ingestion; 12–17 % of the
//! original on real Postfix logs), each with a summary row (time bounds,
//! line count, original and stored sizes) so reads decode only the blocks
//! of the asked range and `status` reports the sizes without decoding.

use serde::{Deserialize, Serialize};

/// Lines of one batch: their times and the text, `\n`-separated.
#[derive(Debug, Default, Clone)]
pub struct RawLines {
    pub times: Vec<i64>,
    pub text: Vec<u8>,
}

impl RawLines {
    /// Room for `bytes` of text (and about as many lines as that holds).
    pub fn with_capacity(bytes: usize) -> RawLines {
        RawLines { times: Vec::with_capacity(bytes / 100), text: Vec::with_capacity(bytes) }
    }

    pub fn push(&mut self, t: i64, line: &[u8]) {
        self.times.push(t);
        self.text.extend_from_slice(line);
        self.text.push(b'\n');
    }

    pub fn bytes(&self) -> usize {
        self.text.len()
    }

    pub fn is_empty(&self) -> bool {
        self.times.is_empty()
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

/// Splits `raw` into encoded blocks: (summary, compressed bytes).
pub(crate) fn encode_blocks(raw: &RawLines, max_block: usize) -> Vec<(RawSummary, Vec<u8>)> {
    let mut out = Vec::new();
    let mut start_line = 0;
    let mut start_byte = 0;
    while start_line < raw.times.len() {
        // Take lines until the block is full.
        let mut end_line = start_line;
        let mut end_byte = start_byte;
        while end_line < raw.times.len() && (end_byte - start_byte < max_block || end_line == start_line) {
            let len = memchr::memchr(b'\n', &raw.text[end_byte..]).map_or(raw.text.len() - end_byte, |i| i + 1);
            end_byte += len;
            end_line += 1;
        }
        let times = &raw.times[start_line..end_line];
        let min = times.iter().copied().min().unwrap_or(0);
        let max = times.iter().copied().max().unwrap_or(0);
        let mut plain = Vec::with_capacity(end_byte - start_byte + times.len() * 2 + 8);
        put_varint(&mut plain, times.len() as u64);
        for &t in times {
            put_varint(&mut plain, u64::try_from(t - min).unwrap_or(0));
        }
        plain.extend_from_slice(&raw.text[start_byte..end_byte]);
        let packed = lz4_flex::block::compress_prepend_size(&plain);
        let summary = RawSummary {
            min,
            max,
            lines: u32::try_from(times.len()).unwrap_or(u32::MAX),
            raw_bytes: (end_byte - start_byte) as u64,
            stored_bytes: packed.len() as u64,
        };
        out.push((summary, packed));
        start_line = end_line;
        start_byte = end_byte;
    }
    out
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

/// Decodes a block into (time, line) pairs. Corrupt input yields what could
/// be read, never a panic.
pub(crate) fn decode_block(min: i64, packed: &[u8]) -> Vec<(i64, Vec<u8>)> {
    let Some(plain) = lz4_decompress(packed) else { return Vec::new() };
    let mut at = 0;
    let Some(n) = get_varint(&plain, &mut at) else { return Vec::new() };
    let n = usize::try_from(n).unwrap_or(0).min(plain.len());
    let mut times = Vec::with_capacity(n);
    for _ in 0..n {
        let Some(d) = get_varint(&plain, &mut at) else { return Vec::new() };
        times.push(min.saturating_add(i64::try_from(d).unwrap_or(0)));
    }
    let text = plain.get(at..).unwrap_or_default();
    text.split(|&c| c == b'\n').zip(times).map(|(l, t)| (t, l.to_vec())).collect()
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
        let blocks = encode_blocks(&r, 4_000);
        assert!(blocks.len() > 1);
        let mut back = Vec::new();
        for (s, b) in &blocks {
            assert!(s.stored_bytes < s.raw_bytes);
            back.extend(decode_block(s.min, b));
        }
        assert_eq!(back.len(), 1000);
        assert_eq!(back[999].1, b"line 999 postfix/smtpd[1]: connect from x");
        assert_eq!(back[8].0, 1_001);
        assert!(decode_block(0, b"garbage").is_empty());
    }
}

#[cfg(test)]
mod bound_tests {
    #[test]
    fn a_lying_size_prefix_is_refused_not_allocated() {
        let mut b = u32::MAX.to_le_bytes().to_vec();
        b.extend_from_slice(b"xx");
        assert!(super::lz4_decompress(&b).is_none());
        assert!(super::decode_block(0, &b).is_empty());
    }
}
