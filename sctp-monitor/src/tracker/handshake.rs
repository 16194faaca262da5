//! Association life cycle: INIT / INIT-ACK (tags and address sets: address
//! parameters plus the packet's source), COOKIE-ECHO / COOKIE-ACK
//! (established), restart (a new INIT between the same endpoints while an
//! association exists), INIT collision (both sides send INIT), the SHUTDOWN
//! sequence. ABORT and SHUTDOWN-COMPLETE end it via `Tracker::close`.

use crate::decode::{Init, PacketMeta};
use crate::event::{DownReason, Event, EventKind};

use super::assoc::{Assoc, AssocState, a16, aflag};
use super::{Tracker, addr_pair};

impl Tracker {
    /// Returns the slot of the association the INIT belongs to.
    pub(super) fn on_init(&mut self, meta: &PacketMeta, init: &Init, out: &mut Vec<Event>) -> Option<usize> {
        let now = meta.ts_ns;
        let (src, dst) = addr_pair(meta);
        let (sp, dp) = (meta.src_port, meta.dst_port);
        // A retransmitted INIT (same initiate tag): the association exists,
        // indexed for the responder's packets, which carry that tag.
        // Another host's INIT with the same tag and ports is a new one:
        // the addresses must be the association's.
        // Before the INIT-ACK the responder's addresses are only the INIT's
        // destinations: a retransmission to another of its addresses (to
        // the next address given to connectx) is the same INIT, from one of
        // the initiator's addresses.
        let retransmit = self.find_tag_strict(init.initiate_tag, dp, sp, &dst, &src).or_else(|| {
            self.find_tag_at(init.initiate_tag, dp, sp, || Some((dst, src))).filter(|&(slot, e)| {
                let a = &self.slab[slot];
                e == 1 && !a.has_tag(1) && a.has_addr(0, &src)
            })
        });
        if let Some((slot, e)) = retransmit
            && e == 1
            && self.slab[slot].state == AssocState::CookieWait
        {
            let a = &mut self.slab[slot];
            a.last_seen_ns = now;
            if a.add_addr(1, dst).is_none() {
                self.stats.address_overflow += 1;
            }
            for x in &init.addrs {
                if a.add_addr(0, a16(*x)).is_none() {
                    self.stats.address_overflow += 1;
                }
            }
            return Some(slot);
        }
        // An association between the same endpoints: restart or collision.
        let mut candidates = vec![src];
        candidates.extend(init.addrs.iter().map(|x| a16(*x)));
        let mut restart_of = None;
        let mut collision = None;
        for c in &candidates {
            if let Some((slot, _e)) = self.find_ends(c, sp, &dst, dp, |_, _| true) {
                match self.slab[slot].state {
                    AssocState::CookieWait | AssocState::CookieEchoed => collision = Some(slot),
                    _ => restart_of = Some(slot),
                }
                break;
            }
        }
        let mut a = Assoc::new(0, src, sp, dst, dp, now);
        a.set_tag(0, init.initiate_tag);
        a.state = AssocState::CookieWait;
        a.flags |= aflag::HANDSHAKE_SEEN;
        for x in &init.addrs {
            if a.add_addr(0, a16(*x)).is_none() {
                self.stats.address_overflow += 1;
            }
        }
        if let Some(old) = restart_of {
            a.ext().restart_of = Some(self.slab[old].id as u64);
        }
        if let Some(other) = collision {
            a.flags |= aflag::COLLISION;
            self.slab[other].flags |= aflag::COLLISION;
            self.stats.init_collisions += 1;
        }
        let slot = self.alloc(a, out);
        self.index_sender(slot, 1);
        self.index_ends(slot);
        if self.slab[slot].path(0, src, dst).is_none() {
            self.stats.address_overflow += 1;
        }
        Some(slot)
    }

    pub(super) fn on_init_ack(&mut self, slot: usize, e: usize, meta: &PacketMeta, init: &Init) {
        if e != 1 || self.slab[slot].has_tag(1) {
            // A duplicate INIT-ACK (same tag) changes nothing.
            return;
        }
        let (sp, dp) = (meta.src_port, meta.dst_port);
        // INIT collision: the other side's INIT made an association with the
        // same tag pair; keep that one. This one goes without an event only
        // if it never came up (a COOKIE-ACK seen before the INIT-ACK, as
        // out-of-order records give, reported it): one reported up ends
        // only with association_down, so it stays, without the tag.
        let (src, dst) = addr_pair(meta);
        if let Some((other, s)) = self.find_tag_strict(init.initiate_tag, dp, sp, &dst, &src)
            && other != slot
        {
            self.stats.init_collisions += 1;
            self.slab[other].flags |= aflag::COLLISION;
            // Each side keeps its Initiate Tag through a collision (RFC 9260
            // 5.2.1: the INIT-ACK repeats the INIT's tag), so the kept
            // association learns the INIT sender's tag (endpoint `s` of
            // `other`) and both address sets from this one: the COOKIE-ACK
            // that may follow carries that tag.
            if !self.slab[other].has_tag(s) {
                let (tag, peer_addrs): (u32, Vec<_>) = {
                    let x = &self.slab[slot];
                    (x.tags[0], x.addrs_of(0).copied().collect())
                };
                let o = &mut self.slab[other];
                o.set_tag(s, tag);
                let mut full = false;
                for x in peer_addrs {
                    full |= o.add_addr(s, x).is_none();
                }
                for x in init.addrs.iter().map(|x| a16(*x)).chain([src]) {
                    full |= o.add_addr(1 - s, x).is_none();
                }
                if full {
                    self.stats.address_overflow += 1;
                }
                self.index_sender(other, 1 - s);
            }
            if self.slab[slot].flags & aflag::UP_REPORTED == 0 {
                self.free_slot(slot);
            }
            return;
        }
        let a = &mut self.slab[slot];
        a.set_tag(1, init.initiate_tag);
        a.state = AssocState::CookieEchoed;
        for x in &init.addrs {
            if a.add_addr(1, a16(*x)).is_none() {
                self.stats.address_overflow += 1;
            }
        }
        self.index_sender(slot, 0);
    }

    pub(super) fn on_cookie_echo(&mut self, slot: usize) {
        let a = &mut self.slab[slot];
        if a.state == AssocState::CookieWait {
            a.state = AssocState::CookieEchoed;
        }
    }

    pub(super) fn on_cookie_ack(&mut self, slot: usize, now: u64, out: &mut Vec<Event>) {
        let a = &mut self.slab[slot];
        if matches!(a.state, AssocState::CookieWait | AssocState::CookieEchoed) {
            a.state = AssocState::Established;
        }
        if a.flags & aflag::UP_REPORTED != 0 {
            return;
        }
        a.flags |= aflag::UP_REPORTED;
        let restart_of = a.ext.as_ref().and_then(|x| x.restart_of);
        if let Some(old_id) = restart_of {
            if let Some(old) = self.slab.iter().position(|x| x.id as u64 == old_id) {
                self.close(old, DownReason::Restart, now, out);
            }
            let mut ev = self.assoc_event(slot, EventKind::Restart, now);
            ev.previous_assoc = Some(old_id);
            out.push(ev);
        }
        let ev = self.assoc_event(slot, EventKind::AssociationUp, now);
        out.push(ev);
    }

    pub(super) fn on_shutdown(&mut self, slot: usize) {
        let a = &mut self.slab[slot];
        if a.state == AssocState::Established {
            a.state = AssocState::ShutdownPending;
        }
    }

    pub(super) fn on_shutdown_ack(&mut self, slot: usize) {
        self.slab[slot].state = AssocState::ShutdownAckSent;
    }
}
