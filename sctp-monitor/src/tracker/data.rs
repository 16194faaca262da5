//! DATA and cumulative acks: per-path counters, the primary path of each
//! direction (the path carrying new DATA, TSN compared with 2^32 wrap),
//! failover (new DATA to another destination address; retransmissions to an
//! alternate are not failovers), path down on retransmissions without
//! cumulative ack progress, and "stalled".

use sctp_monitor_common::RecordKind;
use sctp_monitor_common::sctp::tsn_gt;

use crate::decode::{DataHeader, PacketMeta};
use crate::event::{Event, EventKind, Evidence, Role};

use super::Tracker;
use super::assoc::{NO_PATH, PathState, age_ms, dflag, ms, pflag};

impl Tracker {
    #[allow(clippy::too_many_arguments)]
    pub(super) fn on_data(
        &mut self,
        slot: usize,
        e: usize,
        pi: usize,
        meta: &PacketMeta,
        d: &DataHeader,
        first_in_packet: bool,
        out: &mut Vec<Event>,
    ) {
        let now = meta.ts_ns;
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
                self.primary_moved(slot, e, old, pi, now, out);
            }
        } else if !from_kernel {
            let p = &mut self.slab[slot].paths[pi];
            p.retransmissions = p.retransmissions.saturating_add(1);
            p.retrans_no_progress = p.retrans_no_progress.saturating_add(1);
            self.check_retrans_down(slot, pi, now, out);
        }
        let p = &mut self.slab[slot].paths[pi];
        if !from_kernel {
            p.data_bytes += d.payload_len as u64;
            if first_in_packet {
                p.data_packets = p.data_packets.saturating_add(1);
            }
        }
        p.last_data_ns = now;
    }

    /// New DATA of direction `e` moved from path `old` to `new`.
    fn primary_moved(
        &mut self,
        slot: usize,
        e: usize,
        old: u8,
        new: usize,
        now: u64,
        out: &mut Vec<Event>,
    ) {
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
        if a.addrs[po.dst as usize] == a.addrs[pn.dst as usize] {
            // Same destination from another source address: not a failover.
            return;
        }
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
            f.evidence = Some(Evidence {
                unanswered_heartbeats: ev_unans,
                retransmissions: retrans,
            });
        }
        out.push(f);
        let d = &mut self.slab[slot].dirs[e];
        d.failovers = d.failovers.saturating_add(1);
    }

    fn check_retrans_down(&mut self, slot: usize, pi: usize, now: u64, out: &mut Vec<Event>) {
        let limit = self.cfg.retrans_down_after.max(1);
        let p = &mut self.slab[slot].paths[pi];
        if p.retrans_no_progress >= limit && p.state != PathState::Down {
            p.state = PathState::Down;
            out.push(self.path_event(slot, pi, EventKind::PathDown, now));
        }
    }

    /// A cumulative TSN ack sent by endpoint `e` for the peer's DATA (SACK,
    /// SHUTDOWN, or the kernel's per-path SACK counters).
    pub(super) fn on_cum_ack(
        &mut self,
        slot: usize,
        e: usize,
        cum: u32,
        now: u64,
        out: &mut Vec<Event>,
    ) {
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
        let primary = d.primary;
        for p in a.paths.iter_mut().filter(|p| p.dir() == de) {
            p.retrans_no_progress = 0;
        }
        // DATA acknowledged: its path works.
        if (primary as usize) < a.paths.len()
            && a.paths[primary as usize].state == PathState::Unconfirmed
        {
            a.paths[primary as usize].state = PathState::Active;
            out.push(self.path_event(slot, primary as usize, EventKind::PathUp, now));
        }
    }

    /// "stalled": DATA outstanding, no cumulative ack progress for
    /// `stall_after_ns`, while the primary path answers heartbeats.
    pub(super) fn check_stalled(&mut self, slot: usize, now: u64, out: &mut Vec<Event>) {
        let stall_ms = self.cfg.stall_after_ns / 1_000_000;
        for e in 0..2 {
            let a = &self.slab[slot];
            let d = a.dirs[e];
            if d.flags & dflag::STALLED != 0
                || !d.outstanding()
                || (d.primary as usize) >= a.paths.len()
            {
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
