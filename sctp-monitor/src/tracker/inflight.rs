//! Heartbeats in flight: (association id, Heartbeat Info digest) -> when
//! and on which path it was sent, until its HEARTBEAT-ACK echoes the same
//! Info. An open-addressing table of 24-byte entries (linear probing,
//! backward-shift deletion, a cheap seeded hash): one probe of one cache
//! line in the common case.

use super::table::close_hole;
use crate::fasthash::fold_mul;

/// A heartbeat in flight.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct HbSent {
    pub sent_ns: u64,
    pub path: u8,
    /// Bundled with PAD: a PMTU probe.
    pub probe: bool,
}

/// `path` of an empty entry (path indices stay below `assoc::NO_PATH`).
const EMPTY: u8 = u8::MAX;

#[derive(Debug, Clone, Copy)]
struct Entry {
    digest: u64,
    sent_ns: u64,
    id: u32,
    path: u8,
    probe: bool,
}

const VACANT: Entry = Entry { digest: 0, sent_ns: 0, id: 0, path: EMPTY, probe: false };

#[derive(Debug)]
pub(crate) struct InFlight {
    entries: Vec<Entry>,
    len: usize,
    seed: u64,
}

impl InFlight {
    pub fn new(seed: u64) -> InFlight {
        InFlight { entries: Vec::new(), len: 0, seed }
    }

    fn hash_with(seed: u64, id: u32, digest: u64) -> u64 {
        fold_mul(seed ^ digest, 0x9E37_79B9_7F4A_7C15 ^ ((id as u64) << 17))
    }

    fn hash(&self, id: u32, digest: u64) -> u64 {
        InFlight::hash_with(self.seed, id, digest)
    }

    fn mask(&self) -> usize {
        self.entries.len().wrapping_sub(1)
    }

    fn home_index(&self, id: u32, digest: u64) -> usize {
        self.hash(id, digest) as usize & self.mask()
    }

    fn find(&self, id: u32, digest: u64) -> Option<usize> {
        if self.entries.is_empty() {
            return None;
        }
        let mask = self.mask();
        let mut i = self.home_index(id, digest);
        loop {
            let e = &self.entries[i];
            if e.path == EMPTY {
                return None;
            }
            if e.id == id && e.digest == digest {
                return Some(i);
            }
            i = (i + 1) & mask;
        }
    }

    /// Records a heartbeat; the same key again replaces the earlier one.
    pub fn insert(&mut self, id: u32, digest: u64, h: HbSent) {
        debug_assert!(h.path != EMPTY);
        if let Some(i) = self.find(id, digest) {
            let e = &mut self.entries[i];
            (e.sent_ns, e.path, e.probe) = (h.sent_ns, h.path, h.probe);
            return;
        }
        if (self.len + 1) * 4 > self.entries.len() * 3 {
            self.grow();
        }
        let mask = self.mask();
        let mut i = self.home_index(id, digest);
        while self.entries[i].path != EMPTY {
            i = (i + 1) & mask;
        }
        self.entries[i] = Entry { digest, sent_ns: h.sent_ns, id, path: h.path, probe: h.probe };
        self.len += 1;
    }

    fn grow(&mut self) {
        let cap = (self.entries.len() * 2).max(64);
        let old = std::mem::replace(&mut self.entries, vec![VACANT; cap]);
        self.len = 0;
        for e in old.into_iter().filter(|e| e.path != EMPTY) {
            self.insert(e.id, e.digest, HbSent { sent_ns: e.sent_ns, path: e.path, probe: e.probe });
        }
    }

    /// Takes the heartbeat out, if present.
    pub fn remove(&mut self, id: u32, digest: u64) -> Option<HbSent> {
        let i = self.find(id, digest)?;
        let e = self.entries[i];
        let mask = self.mask();
        let seed = self.seed;
        close_hole(
            &mut self.entries,
            i,
            VACANT,
            |x| x.path == EMPTY,
            |x| InFlight::hash_with(seed, x.id, x.digest) as usize & mask,
        );
        self.len -= 1;
        Some(HbSent { sent_ns: e.sent_ns, path: e.path, probe: e.probe })
    }

    /// Keeps only the heartbeats for which `keep` holds.
    pub fn retain(&mut self, mut keep: impl FnMut(&HbSent) -> bool) {
        let kept: Vec<Entry> = self
            .entries
            .iter()
            .filter(|e| e.path != EMPTY && keep(&HbSent { sent_ns: e.sent_ns, path: e.path, probe: e.probe }))
            .copied()
            .collect();
        self.entries.iter_mut().for_each(|e| *e = VACANT);
        self.len = 0;
        for e in kept {
            self.insert(e.id, e.digest, HbSent { sent_ns: e.sent_ns, path: e.path, probe: e.probe });
        }
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn heap_bytes(&self) -> usize {
        self.entries.capacity() * size_of::<Entry>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn sent(t: u64, path: u8) -> HbSent {
        HbSent { sent_ns: t, path, probe: t.is_multiple_of(7) }
    }

    #[test]
    fn behaves_as_a_map_under_random_inserts_and_removes() {
        let mut rng = crate::craft::XorShift::new(3);
        let mut t = InFlight::new(0x1234);
        let mut m: HashMap<(u32, u64), HbSent> = HashMap::new();
        for step in 0..200_000u64 {
            // Few ids and digests, so keys repeat and clusters form.
            let id = rng.below(300) as u32 + 1;
            let digest = rng.below(40) as u64 * 0x9E37_79B9;
            match rng.below(3) {
                0 | 1 => {
                    let h = sent(step, rng.below(8) as u8);
                    t.insert(id, digest, h);
                    m.insert((id, digest), h);
                }
                _ => assert_eq!(t.remove(id, digest), m.remove(&(id, digest)), "step {step}"),
            }
            assert_eq!(t.len(), m.len());
            if step % 50_000 == 49_999 {
                t.retain(|h| h.sent_ns % 3 != 0);
                m.retain(|_, h| h.sent_ns % 3 != 0);
                assert_eq!(t.len(), m.len());
            }
        }
        for (&(id, digest), &h) in &m {
            assert_eq!(t.remove(id, digest), Some(h));
        }
        assert_eq!(t.len(), 0);
    }

    #[test]
    fn empty_table_finds_nothing() {
        let mut t = InFlight::new(1);
        assert_eq!(t.remove(1, 2), None);
        t.insert(1, 2, sent(5, 0));
        assert_eq!(t.remove(1, 2), Some(sent(5, 0)));
    }
}
