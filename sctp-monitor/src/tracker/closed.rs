//! Tags of associations the wire closed lately (SHUTDOWN-COMPLETE, ABORT,
//! restart), so that their late packets start nothing: a SHUTDOWN-ACK
//! retransmitted after an ABORT, an ABORT answering a stray packet, DATA
//! still in flight. Without this memory such a packet was picked up as a
//! new mid-flight association that then closed at once.
//!
//! Bounded: a direct-mapped table of [`SLOTS`] entries (64 KiB, made at the
//! first close), indexed by the seeded tag hash; a newer close takes the
//! slot of an older one. An entry counts for `Config::idle_timeout_ns` (a
//! packet later than that would have ended the association anyway; an
//! association that times out is not remembered, so its next packet is
//! picked up again).

use super::Tracker;

/// Entries of the table (a power of two).
pub const SLOTS: usize = 4096;

#[derive(Debug, Default)]
pub(super) struct RecentlyClosed {
    /// (tag | sender port << 32 | receiver port << 48, closed at ns + 1);
    /// 0 in the second field: empty.
    slots: Vec<(u64, u64)>,
}

fn key(vtag: u32, sport: u16, dport: u16) -> u64 {
    vtag as u64 | (sport as u64) << 32 | (dport as u64) << 48
}

impl RecentlyClosed {
    pub fn heap_bytes(&self) -> usize {
        self.slots.capacity() * size_of::<(u64, u64)>()
    }
}

impl Tracker {
    /// Remembers both directions' tags of the association in `slot`,
    /// closed at `now`.
    pub(super) fn remember_closed(&mut self, slot: usize, now: u64) {
        if self.recently_closed.slots.is_empty() {
            self.recently_closed.slots = vec![(0, 0); SLOTS];
        }
        for e in 0..2 {
            let a = &self.slab[slot];
            if a.has_tag(1 - e) {
                let (t, sp, dp) = (a.tags[1 - e], a.ports[e], a.ports[1 - e]);
                let i = self.tag_hash(t, sp, dp) as usize & (SLOTS - 1);
                self.recently_closed.slots[i] = (key(t, sp, dp), now.saturating_add(1));
            }
        }
    }

    /// Whether packets from `sport` to `dport` with `vtag` belong to an
    /// association closed within the idle timeout before `now`.
    pub(super) fn closed_recently(&self, vtag: u32, sport: u16, dport: u16, now: u64) -> bool {
        if self.recently_closed.slots.is_empty() {
            return false;
        }
        let i = self.tag_hash(vtag, sport, dport) as usize & (SLOTS - 1);
        let (k, at) = self.recently_closed.slots[i];
        at != 0 && k == key(vtag, sport, dport) && now.saturating_sub(at - 1) < self.cfg.idle_timeout_ns
    }
}
