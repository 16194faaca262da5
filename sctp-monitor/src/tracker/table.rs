//! A compact open-addressing index of `u32` values (linear probing,
//! backward-shift deletion). The keys live elsewhere (in the association
//! slab): callers pass the hash and a predicate that checks a candidate, and
//! a `hash_of` function to re-place entries. 4 bytes per bucket instead of a
//! HashMap's key + value + control byte: this is what keeps the tracker under
//! its per-association memory budget.
//!
//! Values take the low 25 bits of a bucket; the top 7 hold a fingerprint of
//! the hash, so a probe looks at a candidate's key (a slab entry: a cache
//! miss at 100,000 associations) only when the fingerprints agree, about
//! once in 127 for a stranger.

const EMPTY: u32 = u32::MAX;
/// Values fit in 25 bits (slot << 1 | endpoint, slots < 2^24).
pub(crate) const VALUE_BITS: u32 = 25;
const VALUE_MASK: u32 = (1 << VALUE_BITS) - 1;

/// The bucket of `v` under `hash`: the fingerprint (0..=126, so that no
/// bucket is `EMPTY`) above the value.
fn bucket(hash: u64, v: u32) -> u32 {
    debug_assert!(v <= VALUE_MASK, "value {v} does not fit in {VALUE_BITS} bits");
    let fp = ((hash >> 57) as u32).min(126);
    fp << VALUE_BITS | v
}

/// Deletion from a linear-probing table of power-of-two size without
/// tombstones (backward shift): the entry at `hole` is gone; later entries
/// of its cluster move into the hole when their home slot (`home`) is not
/// between the hole and them, and the last hole becomes `empty`.
pub(crate) fn close_hole<T: Copy>(
    slots: &mut [T],
    mut hole: usize,
    empty: T,
    is_empty: impl Fn(&T) -> bool,
    home: impl Fn(&T) -> usize,
) {
    let mask = slots.len() - 1;
    let mut j = hole;
    loop {
        j = (j + 1) & mask;
        let e = slots[j];
        if is_empty(&e) {
            break;
        }
        let k = home(&e);
        let between = if hole <= j { hole < k && k <= j } else { hole < k || k <= j };
        if !between {
            slots[hole] = e;
            hole = j;
        }
    }
    slots[hole] = empty;
}

#[derive(Debug, Default)]
pub(crate) struct SlotTable {
    buckets: Vec<u32>,
    len: usize,
}

impl SlotTable {
    fn mask(&self) -> usize {
        self.buckets.len().wrapping_sub(1)
    }

    /// First value for which `pred` holds, among entries with this hash.
    #[inline]
    pub fn find(&self, hash: u64, mut pred: impl FnMut(u32) -> bool) -> Option<u32> {
        if self.buckets.is_empty() {
            return None;
        }
        let mask = self.mask();
        let fp = bucket(hash, 0);
        let mut i = hash as usize & mask;
        for _ in 0..self.buckets.len() {
            let b = self.buckets[i];
            if b == EMPTY {
                return None;
            }
            if b & !VALUE_MASK == fp && pred(b & VALUE_MASK) {
                return Some(b & VALUE_MASK);
            }
            i = (i + 1) & mask;
        }
        None
    }

    /// The bucket a lookup of `hash` reads first (for a software prefetch).
    pub fn home(&self, hash: u64) -> Option<&u32> {
        self.buckets.get(hash as usize & self.mask())
    }

    /// The first value stored with `hash`'s fingerprint, unverified: what a
    /// lookup will most likely check (for a software prefetch of its key).
    pub fn candidate(&self, hash: u64) -> Option<u32> {
        let mask = self.mask();
        let fp = bucket(hash, 0);
        let mut i = hash as usize & mask;
        for _ in 0..self.buckets.len().min(16) {
            let b = self.buckets[i];
            if b == EMPTY {
                return None;
            }
            if b & !VALUE_MASK == fp {
                return Some(b & VALUE_MASK);
            }
            i = (i + 1) & mask;
        }
        None
    }

    /// Inserts `v` under `hash` (duplicates allowed). `hash_of` gives the hash
    /// of any stored value (to grow the table).
    pub fn insert(&mut self, hash: u64, v: u32, hash_of: impl Fn(u32) -> u64) {
        if (self.len + 1) * 8 > self.buckets.len() * 7 {
            let cap = (self.buckets.len() * 2).max(16);
            let old = std::mem::replace(&mut self.buckets, vec![EMPTY; cap]);
            self.len = 0;
            for o in old.into_iter().filter(|&o| o != EMPTY) {
                let o = o & VALUE_MASK;
                self.place(hash_of(o), o);
            }
        }
        self.place(hash, v);
    }

    fn place(&mut self, hash: u64, v: u32) {
        let mask = self.mask();
        let mut i = hash as usize & mask;
        while self.buckets[i] != EMPTY {
            i = (i + 1) & mask;
        }
        self.buckets[i] = bucket(hash, v);
        self.len += 1;
    }

    /// Removes the entry `v` stored under `hash`; false when absent.
    pub fn remove(&mut self, hash: u64, v: u32, hash_of: impl Fn(u32) -> u64) -> bool {
        if self.buckets.is_empty() {
            return false;
        }
        let mask = self.mask();
        let mut i = hash as usize & mask;
        let mut found = false;
        let want = bucket(hash, v);
        for _ in 0..self.buckets.len() {
            match self.buckets[i] {
                EMPTY => break,
                x if x == want => {
                    found = true;
                    break;
                }
                _ => i = (i + 1) & mask,
            }
        }
        if !found {
            return false;
        }
        close_hole(&mut self.buckets, i, EMPTY, |&e| e == EMPTY, |&e| hash_of(e & VALUE_MASK) as usize & mask);
        self.len -= 1;
        true
    }

    /// Heap bytes used.
    pub fn heap_bytes(&self) -> usize {
        self.buckets.capacity() * 4
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn insert_find_remove_with_collisions() {
        // Hash = value / 10: values 10..19 collide, forcing clusters.
        let h = |v: u32| (v / 10) as u64;
        let mut t = SlotTable::default();
        for v in 0..200u32 {
            t.insert(h(v), v, h);
        }
        for v in 0..200u32 {
            assert_eq!(t.find(h(v), |x| x == v), Some(v));
        }
        for v in (0..200u32).step_by(3) {
            assert!(t.remove(h(v), v, h));
        }
        for v in 0..200u32 {
            let want = if v % 3 == 0 { None } else { Some(v) };
            assert_eq!(t.find(h(v), |x| x == v), want, "value {v}");
        }
        assert!(!t.remove(h(0), 0, h));
        assert_eq!(t.len, 200 - 67);
    }

    #[test]
    fn fingerprints_keep_the_largest_values_apart_from_empty_buckets() {
        // Every hash has its top bits set (fingerprint 126, the largest) and
        // shares bucket 0; the largest values fit.
        let h = |v: u32| u64::MAX << 8 | (v & 1) as u64;
        let top = VALUE_MASK;
        let vals = [top, top - 1, top - 2, 0, 1];
        let mut t = SlotTable::default();
        for &v in &vals {
            t.insert(h(v), v, h);
        }
        for &v in &vals {
            assert_eq!(t.find(h(v), |x| x == v), Some(v), "value {v}");
        }
        assert!(t.remove(h(top), top, h));
        assert_eq!(t.find(h(top), |x| x == top), None);
        assert_eq!(t.find(h(top - 2), |x| x == top - 2), Some(top - 2));
        // A different fingerprint under the same home bucket is never offered.
        let other = |v: u32| (v & 1) as u64;
        assert_eq!(t.find(other(1), |_| true), None);
    }
}
