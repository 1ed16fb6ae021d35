//! FNV-1a, the one stable hash postlens persists (tracker keys, file
//! identities, Bloom filters): unlike std's `RandomState` it is the same in
//! every run, which stored keys require.

const OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
const PRIME: u64 = 0x0100_0000_01b3;

/// An FNV-1a state, for hashing several parts in sequence.
#[derive(Clone, Copy, Debug)]
pub struct Fnv(u64);

impl Default for Fnv {
    fn default() -> Self {
        Fnv(OFFSET)
    }
}

impl Fnv {
    /// Continues from an earlier state (`finish` of a previous hash).
    pub fn resume(state: u64) -> Fnv {
        Fnv(state)
    }

    #[inline]
    pub fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 ^ u64::from(b)).wrapping_mul(PRIME);
        }
    }

    /// Hashes bytes as if ASCII-lower-cased (case-insensitive keys).
    #[inline]
    pub fn write_lower(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 ^ u64::from(b.to_ascii_lowercase())).wrapping_mul(PRIME);
        }
    }

    pub fn finish(self) -> u64 {
        self.0
    }
}

/// FNV-1a of one byte string.
pub fn fnv1a(bytes: &[u8]) -> u64 {
    let mut h = Fnv::default();
    h.write(bytes);
    h.finish()
}
