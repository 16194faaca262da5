//! When to look at an association again, so that `Tracker::tick` costs what
//! is due rather than what is tracked.
//!
//! [`Deadlines`] is an indexed binary min-heap with one entry per live
//! association: the earliest time at which a timed rule could act on it
//! (idle expiry; "stalled"). Keys are whole milliseconds rounded up, packed
//! with the slot into one `u64` (`ms since base << 24 | slot`), and each
//! slot knows its entry's position so a key can move either way in
//! O(log n). Entries may be early (the association is looked at, nothing is
//! due, it gets its next time), never late: idle expiry only ever moves
//! later, so packets do not touch the heap; a rule that becomes due sooner
//! lowers the key.
//!
//! Heartbeat answer timeouts ([`HbTimeouts`]) are a heap of their own, at
//! most one entry per path: a heartbeat's timeout is later than those
//! queued before it, so queueing one costs O(1) in the common case.
//!
//! Memory: 8 bytes of heap entry and 4 of position per association slot;
//! 16 bytes per path with a heartbeat waiting for its answer.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};

/// Slots that fit in an entry (24 bits).
pub(crate) const MAX_SLOTS: usize = 1 << SLOT_BITS;
const SLOT_BITS: u32 = 24;
const SLOT_MASK: u64 = (1 << SLOT_BITS) - 1;
/// Largest key (40 bits of milliseconds: 34 years after the base).
const KEY_MAX: u64 = (1 << (64 - SLOT_BITS)) - 1;
const NONE: u32 = u32::MAX;
const MS: u64 = 1_000_000;

/// Milliseconds since `base` (itself in ms), rounded up, clamped to the key
/// range.
fn key(base_ms: u64, due_ns: u64) -> u64 {
    due_ns.div_ceil(MS).saturating_sub(base_ms).min(KEY_MAX)
}

/// The time origin of keys: an hour before the first time seen, so records
/// a little out of order still get keys of their own.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct Base(Option<u64>);

impl Base {
    fn ms(&mut self, now_ns: u64) -> u64 {
        *self.0.get_or_insert((now_ns / MS).saturating_sub(3_600_000))
    }
}

#[derive(Debug, Default)]
pub(crate) struct Deadlines {
    heap: Vec<u64>,
    /// Index in `heap` of each slot's entry, `NONE` when it has none.
    pos: Vec<u32>,
    base: Base,
}

impl Deadlines {
    /// Sets `slot`'s next look at `due_ns` (inserting its entry if needed).
    pub fn set(&mut self, slot: usize, due_ns: u64) {
        let k = key(self.base.ms(due_ns), due_ns) << SLOT_BITS | slot as u64;
        if slot >= self.pos.len() {
            self.pos.resize(slot + 1, NONE);
        }
        match self.pos[slot] {
            NONE => {
                self.heap.push(k);
                let i = self.heap.len() - 1;
                self.pos[slot] = i as u32;
                self.sift_up(i);
            }
            i => {
                let i = i as usize;
                let old = self.heap[i];
                self.heap[i] = k;
                if k < old {
                    self.sift_up(i);
                } else {
                    self.sift_down(i);
                }
            }
        }
    }

    /// Moves `slot`'s next look to `due_ns` if that is sooner (or it had
    /// none).
    pub fn lower(&mut self, slot: usize, due_ns: u64) {
        let k = key(self.base.ms(due_ns), due_ns) << SLOT_BITS | slot as u64;
        match self.pos.get(slot) {
            Some(&i) if i != NONE && self.heap[i as usize] <= k => {}
            _ => self.set(slot, due_ns),
        }
    }

    /// Forgets `slot`.
    pub fn remove(&mut self, slot: usize) {
        let Some(&i) = self.pos.get(slot) else { return };
        if i == NONE {
            return;
        }
        self.pos[slot] = NONE;
        let i = i as usize;
        let last = self.heap.pop().expect("an entry is in the heap");
        if i < self.heap.len() {
            self.heap[i] = last;
            self.pos[(last & SLOT_MASK) as usize] = i as u32;
            self.sift_down(i);
            self.sift_up(i);
        }
    }

    /// A slot whose time has come at `now_ns`, or comes within the
    /// millisecond (keys are rounded up: the caller checks the exact time),
    /// taken out of the heap; the caller sets its next time.
    pub fn pop_due(&mut self, now_ns: u64) -> Option<usize> {
        let top = *self.heap.first()?;
        if top >> SLOT_BITS > self.now_key(now_ns) {
            return None;
        }
        let slot = (top & SLOT_MASK) as usize;
        self.remove(slot);
        Some(slot)
    }

    /// Whether `pop_due(now_ns)` would take an entry due at `due_ns` again
    /// (the caller sets such a next time only after its tick's pops).
    pub fn is_due(&mut self, due_ns: u64, now_ns: u64) -> bool {
        key(self.base.ms(due_ns), due_ns) <= self.now_key(now_ns)
    }

    fn now_key(&mut self, now_ns: u64) -> u64 {
        key(self.base.ms(now_ns), now_ns)
    }

    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.heap.len()
    }

    pub fn heap_bytes(&self) -> usize {
        self.heap.capacity() * 8 + self.pos.capacity() * 4
    }

    fn sift_up(&mut self, mut i: usize) {
        let k = self.heap[i];
        while i > 0 {
            let parent = (i - 1) / 2;
            let p = self.heap[parent];
            if p <= k {
                break;
            }
            self.heap[i] = p;
            self.pos[(p & SLOT_MASK) as usize] = i as u32;
            i = parent;
        }
        self.heap[i] = k;
        self.pos[(k & SLOT_MASK) as usize] = i as u32;
    }

    fn sift_down(&mut self, mut i: usize) {
        let n = self.heap.len();
        let k = self.heap[i];
        loop {
            let l = 2 * i + 1;
            if l >= n {
                break;
            }
            let r = l + 1;
            let c = if r < n && self.heap[r] < self.heap[l] { r } else { l };
            let ck = self.heap[c];
            if ck >= k {
                break;
            }
            self.heap[i] = ck;
            self.pos[(ck & SLOT_MASK) as usize] = i as u32;
            i = c;
        }
        self.heap[i] = k;
        self.pos[(k & SLOT_MASK) as usize] = i as u32;
    }
}

/// Heartbeat answer timeouts. One entry per path at a time (the caller
/// flags the path): a heartbeat sent while the path's previous one is
/// still queued is looked at when that one is due, and queued again then if
/// still unanswered.
///
/// Every timeout is its heartbeat's time plus the same answer timeout, and
/// heartbeats arrive in time order, so nearly every entry is the latest:
/// those go to the back of a FIFO (O(1), and the memory is walked in
/// order, no cache miss per level of a heap at 100,000 paths); the few that
/// are not (a re-queued timeout, records a little out of order) go to a
/// heap. `pop_due` takes the earlier of the two fronts.
#[derive(Debug, Default)]
pub(crate) struct HbTimeouts {
    /// (due ms since base, slot, path), keys never decreasing.
    fifo: VecDeque<(u64, u32, u8)>,
    /// Entries that would have broken the FIFO's order.
    late: BinaryHeap<Reverse<(u64, u32, u8)>>,
    base: Base,
}

impl HbTimeouts {
    pub fn push(&mut self, slot: usize, path: usize, due_ns: u64) {
        let e = (key(self.base.ms(due_ns), due_ns), slot as u32, path as u8);
        if self.fifo.back().is_none_or(|b| b.0 <= e.0) {
            self.fifo.push_back(e);
        } else {
            self.late.push(Reverse(e));
        }
    }

    /// (slot, path) of a timeout passed at `now_ns`, earliest first.
    pub fn pop_due(&mut self, now_ns: u64) -> Option<(usize, usize)> {
        let now_key = (now_ns / MS).saturating_sub(self.base.ms(now_ns));
        let f = self.fifo.front().map(|e| e.0);
        let l = self.late.peek().map(|e| e.0.0);
        let (k, from_fifo) = match (f, l) {
            (Some(f), Some(l)) => (f.min(l), f <= l),
            (Some(f), None) => (f, true),
            (None, Some(l)) => (l, false),
            (None, None) => return None,
        };
        if k > now_key {
            return None;
        }
        let (_, slot, path) = if from_fifo { self.fifo.pop_front()? } else { self.late.pop()?.0 };
        Some((slot as usize, path as usize))
    }

    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.fifo.len() + self.late.len()
    }

    pub fn heap_bytes(&self) -> usize {
        (self.fifo.capacity() + self.late.capacity()) * size_of::<(u64, u32, u8)>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: u64 = 1_700_000_000_000_000_000;

    fn drain(d: &mut Deadlines, now: u64) -> Vec<usize> {
        let mut v = Vec::new();
        while let Some(s) = d.pop_due(now) {
            v.push(s);
        }
        v
    }

    #[test]
    fn pops_in_due_order_and_only_when_due() {
        let mut d = Deadlines::default();
        let mut rng = crate::craft::XorShift::new(7);
        let mut due = Vec::new();
        for slot in 0..2000usize {
            let t = T0 + rng.below(10_000) as u64 * MS + rng.below(1000) as u64;
            d.set(slot, t);
            due.push(t);
        }
        // Move some later, some sooner, remove some.
        for slot in (0..2000).step_by(7) {
            due[slot] += 3_000 * MS;
            d.set(slot, due[slot]);
        }
        for slot in (3..2000).step_by(11) {
            let t = due[slot].saturating_sub(2_000 * MS).max(T0);
            d.lower(slot, t);
            d.lower(slot, t + 5 * MS); // later: ignored
            due[slot] = t;
        }
        for slot in (5..2000).step_by(13) {
            d.remove(slot);
            due[slot] = u64::MAX;
        }
        let mut last = 0;
        for ms in (0..14_000u64).step_by(250) {
            let now = T0 + ms * MS;
            for s in drain(&mut d, now) {
                assert!(due[s] < now + MS, "slot {s} due {} popped at {now}", due[s]);
                assert!(due[s] + 250 * MS + MS > now, "slot {s} popped late");
                assert!(due[s].div_ceil(MS) >= last, "out of order");
                last = due[s].div_ceil(MS);
                due[s] = u64::MAX - 1;
            }
        }
        assert_eq!(d.len(), 0);
        assert!(due.iter().all(|&t| t >= u64::MAX - 1), "every entry came out once");
    }

    #[test]
    fn is_due_matches_pop_due() {
        let mut d = Deadlines::default();
        let now = T0 + 5 * MS + 300;
        assert!(d.is_due(T0 + 5 * MS, now));
        assert!(d.is_due(T0 + 6 * MS, now), "within the millisecond");
        assert!(!d.is_due(T0 + 6 * MS + 1, now));
        d.set(1, T0 + 6 * MS + 1);
        d.set(2, T0 + 5 * MS + 900);
        assert_eq!(d.pop_due(now), Some(2));
        assert_eq!(d.pop_due(now), None);
        assert_eq!(d.pop_due(T0 + 6 * MS), None);
        assert_eq!(d.pop_due(T0 + 6 * MS + 1), Some(1));
    }

    #[test]
    fn heartbeat_timeouts_in_order() {
        let mut h = HbTimeouts::default();
        h.push(1, 2, T0 + 3_500 * MS);
        h.push(3, 0, T0 + 3_000 * MS);
        assert_eq!(h.pop_due(T0 + 2_999 * MS), None);
        assert_eq!(h.pop_due(T0 + 3_200 * MS), Some((3, 0)));
        assert_eq!(h.pop_due(T0 + 3_200 * MS), None);
        assert_eq!(h.pop_due(T0 + 4_000 * MS), Some((1, 2)));
        assert_eq!(h.len(), 0);
    }

    #[test]
    fn heartbeat_timeouts_out_of_order_come_out_in_due_order() {
        let mut h = HbTimeouts::default();
        let mut rng = crate::craft::XorShift::new(11);
        // Mostly increasing, with one in eight earlier than the last.
        let mut t = T0;
        let mut due = Vec::new();
        for i in 0..5_000u32 {
            t += rng.below(3) as u64 * MS;
            let d = if i % 8 == 7 { t - rng.below(500) as u64 * MS } else { t };
            h.push(i as usize, (i % 4) as usize, d);
            due.push(d.div_ceil(MS));
        }
        let mut last = 0;
        let mut seen = 0;
        let end = t + MS;
        let mut now = T0;
        while now <= end {
            while let Some((slot, path)) = h.pop_due(now) {
                assert_eq!(path, slot % 4);
                let k = due[slot];
                assert!(k <= now.div_ceil(MS), "slot {slot} popped before due");
                assert!(k >= last, "out of order: {k} after {last}");
                last = k;
                seen += 1;
            }
            now += 7 * MS;
        }
        assert_eq!(seen, 5_000, "every entry came out once");
        assert_eq!(h.len(), 0);
    }
}
