//! Identity: which association (and which endpoint sent it) a packet belongs
//! to, by verification tag and ports, and by addresses where the tag cannot
//! tell two associations apart (`find_tag_at`); the reflected tag of ABORT /
//! SHUTDOWN-COMPLETE with the T flag; mid-flight pick-up of unknown
//! associations.

use crate::decode::{Chunk, PacketMeta};
use crate::event::{Event, EventKind};

use super::assoc::{A16, Assoc, a16, aflag};
use super::{Tracker, addr_pair};

#[inline]
fn mix(mut x: u64) -> u64 {
    x ^= x >> 33;
    x = x.wrapping_mul(0xff51_afd7_ed55_8ccd);
    x ^= x >> 33;
    x = x.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    x ^ (x >> 33)
}

impl Tracker {
    /// Hash of (tag carried, sender port, receiver port).
    pub(super) fn tag_hash(&self, vtag: u32, sport: u16, dport: u16) -> u64 {
        mix(self.seed ^ (vtag as u64 | (sport as u64) << 32 | (dport as u64) << 48))
    }

    fn end_hash_one(&self, a: &A16, port: u16) -> u64 {
        let mut x = self.seed ^ port as u64;
        for c in a.chunks(8) {
            let mut w = [0u8; 8];
            w.copy_from_slice(c);
            x = mix(x ^ u64::from_le_bytes(w));
        }
        x
    }

    /// Order-independent hash of two (address, port) endpoints.
    pub(super) fn end_hash(&self, a: &A16, pa: u16, b: &A16, pb: u16) -> u64 {
        let (x, y) = (self.end_hash_one(a, pa), self.end_hash_one(b, pb));
        let (lo, hi) = if x < y { (x, y) } else { (y, x) };
        mix(lo ^ mix(hi))
    }

    fn tag_hash_of_entry(&self, v: u32) -> u64 {
        let a = &self.slab[(v >> 1) as usize];
        let e = (v & 1) as usize;
        self.tag_hash(a.tags[1 - e], a.ports[e], a.ports[1 - e])
    }

    fn end_hash_of_slot(&self, slot: u32) -> u64 {
        let a = &self.slab[slot as usize];
        self.end_hash(&a.addrs[0], a.ports[0], &a.addrs[1], a.ports[1])
    }

    /// Indexes packets sent by endpoint `e` (they carry `tags[1 - e]`).
    /// When another association already has that tag and ports (another
    /// host's, or a stack that reuses tags), both are marked: their packets
    /// are told apart by address from then on.
    pub(super) fn index_sender(&mut self, slot: usize, e: usize) {
        let a = &self.slab[slot];
        let (tag, sp, dp) = (a.tags[1 - e], a.ports[e], a.ports[1 - e]);
        if let Some((other, _)) = self.find_tag(tag, sp, dp)
            && other != slot
        {
            self.slab[other].flags |= aflag::SHARED_TAG;
            self.slab[slot].flags |= aflag::SHARED_TAG;
            self.stats.shared_tags += 1;
        }
        let h = self.tag_hash(tag, sp, dp);
        let v = (slot as u32) << 1 | e as u32;
        let mut t = std::mem::take(&mut self.tags);
        t.insert(h, v, |x| self.tag_hash_of_entry(x));
        self.tags = t;
    }

    pub(super) fn index_ends(&mut self, slot: usize) {
        let h = self.end_hash_of_slot(slot as u32);
        let mut t = std::mem::take(&mut self.ends);
        t.insert(h, slot as u32, |x| self.end_hash_of_slot(x));
        self.ends = t;
    }

    /// Removes every index entry of `slot`.
    pub(super) fn unindex(&mut self, slot: usize) {
        let mut t = std::mem::take(&mut self.tags);
        for e in 0..2 {
            if self.slab[slot].has_tag(1 - e) {
                let v = (slot as u32) << 1 | e as u32;
                t.remove(self.tag_hash_of_entry(v), v, |x| self.tag_hash_of_entry(x));
            }
        }
        self.tags = t;
        let mut t = std::mem::take(&mut self.ends);
        t.remove(self.end_hash_of_slot(slot as u32), slot as u32, |x| self.end_hash_of_slot(x));
        self.ends = t;
    }

    /// The association whose endpoint at `sport` sends tag `vtag` to `dport`:
    /// (slot, sender). By tag and ports alone: the first one found.
    pub(super) fn find_tag(&self, vtag: u32, sport: u16, dport: u16) -> Option<(usize, usize)> {
        self.find_tag_at(vtag, sport, dport, || None)
    }

    /// [`Tracker::find_tag`] for a packet from `src` to `dst`, given by
    /// `addrs` (asked only when needed): among associations that share the
    /// tag and ports (`aflag::SHARED_TAG`), the one whose sender has `src`
    /// and whose receiver has `dst`; the first sharing one when none has
    /// (an address not learnt yet). An association with a tag of its own
    /// is found by the tag alone, as before: the flag is the only cost.
    #[inline]
    pub(super) fn find_tag_at(
        &self,
        vtag: u32,
        sport: u16,
        dport: u16,
        addrs: impl Fn() -> Option<(A16, A16)>,
    ) -> Option<(usize, usize)> {
        let h = self.tag_hash(vtag, sport, dport);
        let mut fallback = None;
        let v = self.tags.find(h, |v| {
            let a = &self.slab[(v >> 1) as usize];
            let e = (v & 1) as usize;
            let hit = a.id != 0
                && a.has_tag(1 - e)
                && a.tags[1 - e] == vtag
                && a.ports[e] == sport
                && a.ports[1 - e] == dport;
            if !hit || a.flags & aflag::SHARED_TAG == 0 {
                return hit;
            }
            match addrs() {
                Some((src, dst)) if a.has_addr(e, &src) && a.has_addr(1 - e, &dst) => true,
                Some(_) => {
                    fallback = fallback.or(Some(v));
                    false
                }
                None => true,
            }
        });
        let v = v.or(fallback)?;
        Some(((v >> 1) as usize, (v & 1) as usize))
    }

    /// The association whose endpoint at `src:sport` sends tag `vtag` to
    /// `dst:dport`, the addresses checked whatever the flags (the handshake:
    /// a second host's INIT with the same tag is a new association).
    pub(super) fn find_tag_strict(
        &self,
        vtag: u32,
        sport: u16,
        dport: u16,
        src: &A16,
        dst: &A16,
    ) -> Option<(usize, usize)> {
        let h = self.tag_hash(vtag, sport, dport);
        let v = self.tags.find(h, |v| {
            let a = &self.slab[(v >> 1) as usize];
            let e = (v & 1) as usize;
            a.id != 0
                && a.has_tag(1 - e)
                && a.tags[1 - e] == vtag
                && a.ports[e] == sport
                && a.ports[1 - e] == dport
                && a.has_addr(e, src)
                && a.has_addr(1 - e, dst)
        })?;
        Some(((v >> 1) as usize, (v & 1) as usize))
    }

    /// An association between these endpoints (first addresses + ports),
    /// passing `pred`: (slot, the endpoint at `a:pa`).
    ///
    /// Only the first addresses count: they are what the index holds. An
    /// association whose other addresses match is never found here, not
    /// even when its bucket happens to lie on the probe's way (a 1-in-127
    /// fingerprint match under the random seed): the answer must not depend
    /// on the seed, or one capture read twice (or live and offline) would
    /// pick an association up differently.
    pub(super) fn find_ends(
        &self,
        a: &A16,
        pa: u16,
        b: &A16,
        pb: u16,
        mut pred: impl FnMut(&Assoc, usize) -> bool,
    ) -> Option<(usize, usize)> {
        let h = self.end_hash(a, pa, b, pb);
        let mut side = 0;
        let slot = self.ends.find(h, |s| {
            let x = &self.slab[s as usize];
            if x.id == 0 {
                return false;
            }
            for e in 0..2 {
                let first = x.addrs[e] == *a && x.addrs[1 - e] == *b;
                if first
                    && x.ports[e] == pa
                    && x.ports[1 - e] == pb
                    && x.has_addr(e, a)
                    && x.has_addr(1 - e, b)
                    && pred(x, e)
                {
                    side = e;
                    return true;
                }
            }
            false
        })?;
        Some((slot as usize, side))
    }

    /// Finds the packet's association and sender, or picks it up mid-flight.
    pub(super) fn find_or_create(
        &mut self,
        meta: &PacketMeta,
        chunks: &[Chunk],
        out: &mut Vec<Event>,
    ) -> Option<(usize, usize)> {
        let reflected =
            matches!(chunks.first(), Some(Chunk::Abort { t: true, .. }) | Some(Chunk::ShutdownComplete { t: true }));
        if reflected {
            // The T flag: the tag is the sender's own, found under the
            // reverse direction's key.
            let reverse = || Some((a16(meta.dst), a16(meta.src)));
            return self.find_tag_at(meta.vtag, meta.dst_port, meta.src_port, reverse).map(|(s, e)| (s, 1 - e));
        }
        let addrs = || Some(addr_pair(meta));
        if let Some(found) = self.find_tag_at(meta.vtag, meta.src_port, meta.dst_port, addrs) {
            return Some(found);
        }
        if meta.vtag == 0 || chunks.is_empty() {
            return None;
        }
        // A late packet of an association that closed (a retransmitted
        // SHUTDOWN-ACK after an ABORT, ...) starts nothing.
        if self.closed_recently(meta.vtag, meta.src_port, meta.dst_port, meta.ts_ns) {
            self.stats.after_close_packets += 1;
            return None;
        }
        // Nothing to learn from an association's last words.
        if chunks.iter().all(|c| {
            matches!(
                c,
                Chunk::Abort { .. } | Chunk::ShutdownComplete { .. } | Chunk::Error { .. } | Chunk::Other { .. }
            )
        }) {
            return None;
        }
        let (src, dst) = addr_pair(meta);
        // The reverse direction of an association picked up mid-flight.
        if let Some((slot, e)) =
            self.find_ends(&src, meta.src_port, &dst, meta.dst_port, |x, e| !x.has_tag(1 - e) && x.has_tag(e))
        {
            self.slab[slot].set_tag(1 - e, meta.vtag);
            self.index_sender(slot, e);
            return Some((slot, e));
        }
        // Mid-flight pick-up: the sender becomes endpoint 0; the handshake
        // was not seen, so roles are unknown.
        let mut a = Assoc::new(0, src, meta.src_port, dst, meta.dst_port, meta.ts_ns);
        a.set_tag(1, meta.vtag);
        let slot = self.alloc(a, out);
        self.index_sender(slot, 0);
        self.index_ends(slot);
        let mut ev = self.assoc_event(slot, EventKind::AssociationUp, meta.ts_ns);
        ev.handshake_seen = Some(false);
        out.push(ev);
        self.slab[slot].flags |= aflag::UP_REPORTED;
        Some((slot, 0))
    }
}
