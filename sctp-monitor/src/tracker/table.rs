//! A compact open-addressing index of `u32` values (linear probing,
//! backward-shift deletion). The keys live elsewhere (in the association
//! slab): callers pass the hash and a predicate that checks a candidate, and
//! a `hash_of` function to re-place entries. 4 bytes per bucket instead of a
//! HashMap's key + value + control byte: this is what keeps the tracker under
//! its per-association memory budget.

const EMPTY: u32 = u32::MAX;

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
    pub fn find(&self, hash: u64, mut pred: impl FnMut(u32) -> bool) -> Option<u32> {
        if self.buckets.is_empty() {
            return None;
        }
        let mask = self.mask();
        let mut i = hash as usize & mask;
        for _ in 0..self.buckets.len() {
            let v = self.buckets[i];
            if v == EMPTY {
                return None;
            }
            if pred(v) {
                return Some(v);
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
        self.buckets[i] = v;
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
        for _ in 0..self.buckets.len() {
            match self.buckets[i] {
                EMPTY => break,
                x if x == v => {
                    found = true;
                    break;
                }
                _ => i = (i + 1) & mask,
            }
        }
        if !found {
            return false;
        }
        // Backward shift: move later entries of the cluster into the hole
        // when their home bucket is not between the hole and them.
        let mut j = i;
        loop {
            j = (j + 1) & mask;
            let e = self.buckets[j];
            if e == EMPTY {
                break;
            }
            let k = hash_of(e) as usize & mask;
            let between = if i <= j { i < k && k <= j } else { i < k || k <= j };
            if !between {
                self.buckets[i] = e;
                i = j;
            }
        }
        self.buckets[i] = EMPTY;
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
}
