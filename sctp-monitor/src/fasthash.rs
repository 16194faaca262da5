//! Cheap hashing for the per-record path: a 64-bit digest of byte strings
//! (Heartbeat Info) and a seeded hasher for maps whose keys are a few
//! integers. std's SipHash cost more than the rest of a heartbeat record's
//! handling together (four hashes per record).
//!
//! Both use the folded multiply (the 128-bit product of two words, high
//! half xor low half), which mixes every input bit into every output bit.
//! The map hasher is seeded per map from the OS random source, so remote
//! peers cannot aim many keys at one bucket; the digest is not seeded (it is
//! a value, compared for equality: a peer that makes two of its own
//! Heartbeat Infos collide only fools the matching of its own heartbeats).

use std::hash::{BuildHasher, Hasher};

const K0: u64 = 0x9E37_79B9_7F4A_7C15;
const K1: u64 = 0xD6E8_FEB8_6659_FD93;

/// The 128-bit product of `a` and `b`, halves folded together.
#[inline(always)]
pub fn fold_mul(a: u64, b: u64) -> u64 {
    let m = (a as u128).wrapping_mul(b as u128);
    (m as u64) ^ ((m >> 64) as u64)
}

/// A 64-bit digest of `bytes` (their length included).
#[inline]
pub fn digest(bytes: &[u8]) -> u64 {
    let mut h = K1;
    let mut rest = bytes;
    while let Some((w, r)) = rest.split_first_chunk::<8>() {
        h = fold_mul(h ^ u64::from_le_bytes(*w), K0);
        rest = r;
    }
    if !rest.is_empty() {
        h = fold_mul(h ^ tail(rest), K1);
    }
    fold_mul(h ^ bytes.len() as u64, K0)
}

/// 1 to 7 bytes as a little-endian word, zero-padded: the same value as
/// copying them into a zeroed `[u8; 8]`, from at most two overlapping
/// loads instead of a variable-length copy (a `memcpy` call).
#[inline(always)]
fn tail(rest: &[u8]) -> u64 {
    let n = rest.len();
    debug_assert!((1..8).contains(&n));
    if n >= 4 {
        let lo = u32::from_le_bytes([rest[0], rest[1], rest[2], rest[3]]) as u64;
        let hi = u32::from_le_bytes([rest[n - 4], rest[n - 3], rest[n - 2], rest[n - 1]]) as u64;
        lo | hi << (8 * (n - 4))
    } else {
        rest[0] as u64 | (rest[n / 2] as u64) << (8 * (n / 2)) | (rest[n - 1] as u64) << (8 * (n - 1))
    }
}

/// `BuildHasher` for maps keyed by integers and digests, seeded at random.
#[derive(Clone, Copy, Debug)]
pub struct Seeded(u64);

impl Seeded {
    /// A seed from the OS random source (std's `RandomState`).
    pub fn random() -> Seeded {
        Seeded(std::collections::hash_map::RandomState::new().hash_one(0x5c7a_u64) | 1)
    }
}

impl Default for Seeded {
    fn default() -> Seeded {
        Seeded::random()
    }
}

impl BuildHasher for Seeded {
    type Hasher = FoldHasher;

    #[inline]
    fn build_hasher(&self) -> FoldHasher {
        FoldHasher(self.0)
    }
}

/// The hasher of [`Seeded`]: one folded multiply per integer written.
#[derive(Clone, Copy, Debug)]
pub struct FoldHasher(u64);

impl Hasher for FoldHasher {
    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        self.write_u64(digest(bytes));
    }

    #[inline]
    fn write_u8(&mut self, x: u8) {
        self.write_u64(x as u64);
    }

    #[inline]
    fn write_u16(&mut self, x: u16) {
        self.write_u64(x as u64);
    }

    #[inline]
    fn write_u32(&mut self, x: u32) {
        self.write_u64(x as u64);
    }

    #[inline]
    fn write_u64(&mut self, x: u64) {
        self.0 = fold_mul(self.0 ^ x, K0);
    }

    #[inline]
    fn write_usize(&mut self, x: usize) {
        self.write_u64(x as u64);
    }

    #[inline]
    fn finish(&self) -> u64 {
        self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn digest_separates_lengths_and_contents() {
        let mut seen = HashSet::new();
        for n in 0..64usize {
            for v in 0..=255u8 {
                let mut b = vec![0u8; n];
                if n > 0 {
                    b[n / 2] = v;
                }
                seen.insert(digest(&b));
            }
        }
        // Zero-filled buffers of each length, plus one distinct per changed byte.
        assert_eq!(seen.len(), 64 + 63 * 255);
        assert_ne!(digest(b"abc"), digest(b"abc\0"), "trailing zero is not padding");
    }

    #[test]
    fn tail_is_the_zero_padded_word() {
        let mut rng = crate::craft::XorShift::new(7);
        for n in 1..8usize {
            for _ in 0..200 {
                let bytes: Vec<u8> = (0..n).map(|_| rng.next_u64() as u8).collect();
                let mut b = [0u8; 8];
                b[..n].copy_from_slice(&bytes);
                assert_eq!(tail(&bytes), u64::from_le_bytes(b), "{bytes:?}");
            }
        }
    }

    #[test]
    fn seeded_hashers_spread_small_keys() {
        let s = Seeded::random();
        let mut low = HashSet::new();
        for k in 0..4096u32 {
            low.insert(s.hash_one((k, 7u64)) & 0xfff);
        }
        // A random function into 4096 buckets fills ~63% of them.
        assert!(low.len() > 2300, "{} buckets of 4096", low.len());
    }
}
