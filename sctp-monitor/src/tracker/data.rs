//! DATA and cumulative acks: per-path counters, the primary path of each
//! direction (the path carrying new DATA, TSN compared with 2^32 wrap),
//! failover (new DATA to another destination address; retransmissions to an
//! alternate are not failovers), path down on retransmissions without
//! cumulative ack progress, and "stalled".

use sctp_monitor_common::RecordKind;
use sctp_monitor_common::sctp::tsn_gt;

use crate::decode::{DataHeader, PacketMeta};
use crate::event::{Event, EventKind, Evidence, Role};
use crate::ppid::{self, Ppid};

use super::Tracker;
use super::assoc::{NO_PATH, PathState, age_ms, dflag, ms, pflag};

/// Per-packet bookkeeping of DATA chunks (one packet may bundle many).
#[derive(Debug, Clone, Copy)]
pub(super) struct DataInPacket {
    /// The packet was counted in its path's `data_packets`.
    pub counted: bool,
    /// The path last charged a retransmission event in this packet.
    pub rtx_origin: u8,
}

/// DATA / I-DATA flag B: the first fragment of a message.
const B_FLAG: u8 = 0x02;

impl DataInPacket {
    pub const NEW: DataInPacket = DataInPacket { counted: false, rtx_origin: NO_PATH };
}

impl Tracker {
    #[allow(clippy::too_many_arguments)]
    pub(super) fn on_data(
        &mut self,
        slot: usize,
        e: usize,
        pi: usize,
        meta: &PacketMeta,
        d: &DataHeader,
        pkt: &mut DataInPacket,
        out: &mut Vec<Event>,
    ) {
        let now = meta.ts_ns;
        // I-DATA carries the PPID only in a message's first fragment (B).
        if !d.i_data || d.flags & B_FLAG != 0 {
            let bit = ppid::bit(d.ppid);
            if self.slab[slot].ppids & bit == 0 || bit == ppid::OTHER {
                self.ppid_seen(slot, pi, d.ppid, bit, now, out);
            }
        }
        let from_kernel = meta.record.is_some();
        let dir = self.slab[slot].dirs[e];
        let new = match meta.record {
            // The kernel saw it above the direction's highest TSN.
            Some(RecordKind::DataPathChange) => true,
            _ => dir.flags & dflag::HAS_TSN == 0 || tsn_gt(d.tsn, dir.highest_tsn),
        };
        if new {
            let a = &mut self.slab[slot];
            if !a.dirs[e].outstanding() {
                a.dirs[e].progress_ms = ms(now);
            }
            a.dirs[e].highest_tsn = d.tsn;
            a.dirs[e].flags |= dflag::HAS_TSN;
            let old = a.dirs[e].primary;
            if old as usize != pi {
                a.dirs[e].primary = pi as u8;
                self.primary_moved(slot, e, old, pi, d.tsn, now, out);
            }
        } else if !from_kernel {
            self.slab[slot].paths[pi].retransmissions += 1;
            // Charged to the path the DATA was first sent on: a
            // retransmission on an alternate path is evidence against the
            // path that lost it, not against the alternate.
            let o = self.origin(slot, e, d.tsn, pi);
            let a = &mut self.slab[slot];
            if o != pi {
                let first = a.dirs[e].flags & dflag::AWAY == 0;
                a.dirs[e].flags |= dflag::AWAY;
                let h = &mut a.ext().hist[e];
                if first || tsn_gt(d.tsn, h.away_high) {
                    h.away_high = d.tsn;
                }
            }
            let p = &mut a.paths[o];
            p.retrans_no_progress = p.retrans_no_progress.saturating_add(1);
            if pkt.rtx_origin as usize != o {
                pkt.rtx_origin = o as u8;
                p.rtx_events = p.rtx_events.saturating_add(1);
                self.check_retrans_down(slot, o, now, out);
            }
        }
        let p = &mut self.slab[slot].paths[pi];
        if !from_kernel {
            p.data_bytes += d.payload_len as u64;
            if !pkt.counted {
                p.data_packets = p.data_packets.saturating_add(1);
                pkt.counted = true;
            }
        }
        p.last_data_ns = now;
    }

    /// A PPID the association's set may not hold yet (`bit` is its
    /// `ppid::bit`): added, and reported once (`protocol_seen`). Out of
    /// line: an association meets its PPIDs a few times in its life.
    #[inline(never)]
    fn ppid_seen(&mut self, slot: usize, pi: usize, id: u32, bit: u16, now: u64, out: &mut Vec<Event>) {
        let a = &mut self.slab[slot];
        if bit == ppid::OTHER {
            let others = &mut a.ext().other_ppids;
            if others.contains(&id) || others.len() >= ppid::MAX_OTHER {
                return;
            }
            others.push(id);
        }
        a.ppids |= bit;
        let mut ev = self.path_event(slot, pi, EventKind::ProtocolSeen, now);
        ev.ppid = Some(Ppid(id));
        out.push(ev);
    }

    /// The path DATA `tsn` of direction `e` was first sent on: the primary
    /// when it was new. Only the last primary change is remembered, so DATA
    /// from before the one but last change is charged to the previous
    /// primary. `carrying` when no primary is known (mid-flight pick-up).
    pub(super) fn origin(&self, slot: usize, e: usize, tsn: u32, carrying: usize) -> usize {
        let a = &self.slab[slot];
        if let Some(h) = a.ext.as_ref().map(|x| x.hist[e])
            && h.switched
            && tsn_gt(h.switch_tsn, tsn)
            && (h.prev_primary as usize) < a.paths.len()
        {
            return h.prev_primary as usize;
        }
        let p = a.dirs[e].primary as usize;
        if p < a.paths.len() { p } else { carrying }
    }

    /// New DATA of direction `e` (first TSN `tsn`) moved from path `old`
    /// to `new`.
    #[allow(clippy::too_many_arguments)]
    fn primary_moved(&mut self, slot: usize, e: usize, old: u8, new: usize, tsn: u32, now: u64, out: &mut Vec<Event>) {
        if old != NO_PATH {
            let h = &mut self.slab[slot].ext().hist[e];
            h.switch_tsn = tsn;
            h.prev_primary = old;
            h.switched = true;
        }
        let a = &self.slab[slot];
        let mut ev = self.path_event(slot, new, EventKind::PrimaryChanged, now);
        if old == NO_PATH {
            out.push(ev);
            return;
        }
        let old = old as usize;
        ev.from = Some(Self::path_ref(a, old));
        ev.to = ev.path;
        out.push(ev);
        let (po, pn) = (&a.paths[old], &a.paths[new]);
        let same_dst = a.addrs[po.dst as usize] == a.addrs[pn.dst as usize];
        if let Some(cause) = self.asconf_cause(slot, e, old, new) {
            // Asked for by an ASCONF: not a failover (`asconf.rs`).
            if let Some(ev) = out.last_mut() {
                ev.asconf = Some(cause);
            }
            return;
        }
        if same_dst {
            // Same destination from another source address: not a failover.
            return;
        }
        let a = &self.slab[slot];
        let po = &a.paths[old];
        let mut f = self.path_event(slot, new, EventKind::Failover, now);
        f.path = None;
        f.endpoint = Some(Role::from_index(e));
        f.from = Some(Self::path_ref(a, old));
        f.to = Some(Self::path_ref(a, new));
        f.first_new_data = Some(now);
        f.last_old_data = (po.last_data_ns != 0).then_some(po.last_data_ns);
        let ev_unans = self.unanswered(slot, old, now);
        let retrans = po.retrans_no_progress as u32;
        if ev_unans > 0 || retrans > 0 {
            f.evidence = Some(Evidence { unanswered_heartbeats: ev_unans, retransmissions: retrans });
        }
        out.push(f);
        let d = &mut self.slab[slot].dirs[e];
        d.failovers = d.failovers.saturating_add(1);
        // New DATA leaves its primary only when the sender holds it
        // inactive (or is told to use another: then there is no evidence).
        // The sender's error count may include what the wire never shows
        // (usrsctp's heartbeat timer counts an error for an unanswered
        // heartbeat without sending anything), so with evidence on the old
        // path the failover itself says it is down.
        if ev_unans > 0 || retrans > 0 {
            let p = &mut self.slab[slot].paths[old];
            if p.state != PathState::Down {
                p.state = PathState::Down;
                out.push(self.path_event(slot, old, EventKind::PathDown, now));
            }
        }
    }

    /// Down after `retrans_down_after` retransmission events of DATA first
    /// sent on the path without it showing life in between.
    fn check_retrans_down(&mut self, slot: usize, pi: usize, now: u64, out: &mut Vec<Event>) {
        let limit = self.cfg.retrans_down_after.max(1);
        let p = &mut self.slab[slot].paths[pi];
        if p.rtx_events as u16 >= limit.min(u8::MAX as u16) && p.state != PathState::Down {
            p.state = PathState::Down;
            out.push(self.path_event(slot, pi, EventKind::PathDown, now));
        }
    }

    /// A cumulative TSN ack sent by endpoint `e` for the peer's DATA (SACK,
    /// SHUTDOWN, or the kernel's per-path SACK counters).
    ///
    /// Progress shows that the path the newly acknowledged DATA was last
    /// sent on works (RFC 9260 §8.3 clears that destination's error
    /// counter). While no retransmission went to another path than the
    /// DATA's own, that is the path the DATA was first sent on and the
    /// retransmission counts of the direction start over. Once one has
    /// (`dflag::AWAY`), only an ack above every TSN retransmitted away proves
    /// the path of its DATA: an ack of DATA that travelled again on the
    /// alternate says nothing of the path that lost it.
    pub(super) fn on_cum_ack(&mut self, slot: usize, e: usize, cum: u32, now: u64, out: &mut Vec<Event>) {
        let de = 1 - e;
        let a = &mut self.slab[slot];
        let d = &mut a.dirs[de];
        if d.flags & dflag::HAS_ACK != 0 && !tsn_gt(cum, d.cum_ack) {
            return;
        }
        d.cum_ack = cum;
        d.flags |= dflag::HAS_ACK;
        d.flags &= !dflag::STALLED;
        d.progress_ms = ms(now);
        let away = d.flags & dflag::AWAY != 0;
        let primary = d.primary as usize;
        if !away {
            for p in a.paths.iter_mut().filter(|p| p.dir() == de) {
                p.retrans_no_progress = 0;
                p.rtx_events = 0;
            }
        }
        let proven = if !away {
            Some(primary).filter(|&p| p < a.paths.len())
        } else {
            let high = a.ext.as_ref().map_or(cum, |x| x.hist[de].away_high);
            tsn_gt(cum, high).then(|| self.origin(slot, de, cum, primary))
        };
        let Some(pi) = proven.filter(|&p| p < self.slab[slot].paths.len()) else {
            return;
        };
        let p = &mut self.slab[slot].paths[pi];
        p.retrans_no_progress = 0;
        p.rtx_events = 0;
        // DATA acknowledged: its path works.
        match p.state {
            PathState::Unconfirmed => {
                p.state = PathState::Active;
                out.push(self.path_event(slot, pi, EventKind::PathUp, now));
            }
            PathState::Down => {
                p.state = PathState::Active;
                self.hb_streak_ends(slot, pi);
                out.push(self.path_event(slot, pi, EventKind::PathUp, now));
            }
            PathState::Active | PathState::Suspect => {}
        }
    }

    /// When `check_stalled` could next report direction `e` of `slot`:
    /// `None` when it cannot until a packet changes something (nothing
    /// outstanding, already reported, or the time has come but the primary
    /// path does not answer heartbeats).
    #[inline]
    pub(super) fn stall_due(&self, slot: usize, e: usize, now: u64) -> Option<u64> {
        let a = &self.slab[slot];
        let d = a.dirs[e];
        if d.flags & dflag::STALLED != 0 || !d.outstanding() || (d.primary as usize) >= a.paths.len() {
            return None;
        }
        let stall_ms = self.cfg.stall_after_ns / 1_000_000;
        let age = age_ms(now, d.progress_ms);
        if age < stall_ms {
            return Some((now / 1_000_000 + (stall_ms - age)).saturating_mul(1_000_000));
        }
        let pi = d.primary as usize;
        // Due already: the start of this millisecond (deadlines round up).
        (a.paths[pi].flags & pflag::HB_ANSWERED != 0 && self.unanswered(slot, pi, now) == 0)
            .then_some(now - now % 1_000_000)
    }

    /// "stalled": DATA outstanding, no cumulative ack progress for
    /// `stall_after_ns`, while the primary path answers heartbeats.
    pub(super) fn check_stalled(&mut self, slot: usize, now: u64, out: &mut Vec<Event>) {
        let stall_ms = self.cfg.stall_after_ns / 1_000_000;
        for e in 0..2 {
            let a = &self.slab[slot];
            let d = a.dirs[e];
            if d.flags & dflag::STALLED != 0 || !d.outstanding() || (d.primary as usize) >= a.paths.len() {
                continue;
            }
            let age = age_ms(now, d.progress_ms);
            if age < stall_ms {
                continue;
            }
            let pi = d.primary as usize;
            let p = &a.paths[pi];
            if p.flags & pflag::HB_ANSWERED == 0 || self.unanswered(slot, pi, now) > 0 {
                continue;
            }
            self.slab[slot].dirs[e].flags |= dflag::STALLED;
            let mut ev = self.path_event(slot, pi, EventKind::Stalled, now);
            ev.stalled_ms = Some(age);
            out.push(ev);
        }
    }
}
