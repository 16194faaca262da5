//! DATA and cumulative acks: per-path counters, the primary path of each
//! direction (the path carrying new DATA, TSN compared with 2^32 wrap),
//! failover (new DATA to another destination address; retransmissions to an
//! alternate are not failovers), path down on retransmissions without
//! cumulative ack progress, and "stalled".

use sctp_monitor_common::sctp::tsn_gt;

use crate::decode::{DataHeader, PacketMeta};
use crate::event::{Cause, Event, EventKind, Evidence, Role};
use crate::ppid::{self, Ppid};

use super::Tracker;
use super::assoc::{NO_PATH, PathState, aflag, age_ms, dflag, ms, pflag};

/// Per-packet bookkeeping of DATA chunks (one packet may bundle many): the
/// packet's verdict, which the rules then apply once per packet
/// ([`Tracker::data_packet`]), alike for a capture (every chunk judged here)
/// and for a kernel record (judged by the kernel, which sees every chunk).
#[derive(Debug, Clone, Copy)]
pub(super) struct DataInPacket {
    /// The packet carried DATA.
    pub seen: bool,
    /// The packet was counted in its path's `data_packets`.
    pub counted: bool,
    /// The first new chunk's TSN.
    pub first_new: Option<u32>,
    /// Retransmitted chunks, and the highest of their TSNs.
    pub rtx: u16,
    pub high_rtx_tsn: u32,
}

/// A retransmission continuing the last one's TSNs within this is the rest
/// of the same timeout's batch (see `retransmitted`). Below twice the
/// smallest RTO.Min in use (the next expiry of one path comes after twice
/// its RTO), above the gap between a batch's packets (one send of the
/// application or one SACK).
const RTX_BATCH_NS: u64 = 150_000_000;

/// DATA / I-DATA flag B: the first fragment of a message.
const B_FLAG: u8 = 0x02;

impl DataInPacket {
    pub const NEW: DataInPacket =
        DataInPacket { seen: false, counted: false, first_new: None, rtx: 0, high_rtx_tsn: 0 };
}

impl Tracker {
    /// One DATA / I-DATA chunk: its PPID, counters (captures), and its part
    /// of the packet's verdict.
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
        pkt.seen = true;
        if d.i_data {
            self.slab[slot].flags |= aflag::I_DATA;
        }
        let dir = &mut self.slab[slot].dirs[e];
        let above = dir.flags & dflag::HAS_TSN == 0 || tsn_gt(d.tsn, dir.highest_tsn);
        let new = match meta.kdata {
            // A kernel record: the kernel judged the whole packet.
            Some(k) => {
                pkt.rtx = k.rtx_chunks;
                pkt.high_rtx_tsn = k.high_rtx_tsn;
                k.new
            }
            None => above,
        };
        if new {
            pkt.first_new.get_or_insert(d.tsn);
            if above {
                if !dir.outstanding() {
                    dir.progress_ms = ms(now);
                }
                dir.highest_tsn = d.tsn;
                dir.flags |= dflag::HAS_TSN;
            }
        } else if meta.kdata.is_none() {
            if pkt.rtx == 0 || tsn_gt(d.tsn, pkt.high_rtx_tsn) {
                pkt.high_rtx_tsn = d.tsn;
            }
            pkt.rtx = pkt.rtx.saturating_add(1);
            // Acknowledged already: a spurious retransmission.
            if dir.flags & dflag::HAS_ACK != 0 && !tsn_gt(d.tsn, dir.cum_ack) {
                let q = &mut self.slab[slot].paths[pi].q;
                q.spurious_retransmissions = q.spurious_retransmissions.saturating_add(1);
            }
        }
        let p = &mut self.slab[slot].paths[pi];
        if meta.record.is_none() {
            // Live, the per-path counters come from the kernel's maps.
            p.data_bytes += d.payload_len as u64;
            p.q.data_chunks = p.q.data_chunks.saturating_add(1);
            if !pkt.counted {
                p.data_packets = p.data_packets.saturating_add(1);
                pkt.counted = true;
            }
        }
        p.last_data_ns = now;
    }

    /// The rules of one packet's DATA, after its chunks: retransmissions
    /// first (evidence against the path their DATA was last sent on), then
    /// the move of new DATA, if any.
    pub(super) fn data_packet(
        &mut self,
        slot: usize,
        e: usize,
        pi: usize,
        meta: &PacketMeta,
        pkt: &DataInPacket,
        out: &mut Vec<Event>,
    ) {
        let now = meta.ts_ns;
        if pkt.rtx != 0 {
            self.retransmitted(slot, e, pi, pkt, meta.record.is_none(), now, out);
        }
        if let Some(tsn) = pkt.first_new {
            self.new_data(slot, e, pi, tsn, pkt.rtx != 0, now, out);
        }
    }

    /// A packet of endpoint `e` on path `pi` retransmitted `pkt.rtx` DATA
    /// chunks: the retransmission timer of the path that DATA was last sent
    /// on expired, one error of that destination (RFC 9260 §6.3.3, §8.2);
    /// unless the receiver reports gaps, which makes it a fast retransmit
    /// (§7.2.4), no error. Not of the path carrying it: a stack
    /// retransmits to an alternate, and when that copy is not acknowledged
    /// within the alternate's own timeout, it is the alternate's error
    /// (and the DATA goes back), not another of the path that lost it.
    #[allow(clippy::too_many_arguments)]
    fn retransmitted(
        &mut self,
        slot: usize,
        e: usize,
        pi: usize,
        pkt: &DataInPacket,
        count_here: bool,
        now: u64,
        out: &mut Vec<Event>,
    ) {
        if count_here {
            let p = &mut self.slab[slot].paths[pi];
            p.retransmissions = p.retransmissions.saturating_add(pkt.rtx as u32);
        }
        let tsn = pkt.high_rtx_tsn;
        let low = tsn.wrapping_sub(pkt.rtx.max(1) as u32 - 1);
        let o = self.last_sent_on(slot, e, tsn, pi);
        // Both stacks send a fast retransmit to the path the DATA was last
        // sent on, and a timeout's retransmission to an alternate.
        let fast = o == pi && self.gaps_reported(slot, e);
        let a = &mut self.slab[slot];
        if o != pi {
            // The DATA up to `tsn` is on `pi` now: the next retransmission
            // of it is that path's error (and see `on_cum_ack`).
            let was_away = a.dirs[e].flags & dflag::AWAY != 0;
            a.dirs[e].flags |= dflag::AWAY;
            let h = &mut a.ext().hist[e];
            let joins = was_away && !tsn_gt(low, h.away_high.wrapping_add(1)) && !tsn_gt(h.away_low, tsn);
            if !joins {
                (h.away_low, h.away_high) = (low, tsn);
            } else if tsn_gt(tsn, h.away_high) {
                h.away_high = tsn;
            } else if tsn_gt(h.away_low, low) {
                h.away_low = low;
            }
            h.away_path = pi as u8;
        }
        let p = &mut a.paths[o];
        p.retrans_no_progress = p.retrans_no_progress.saturating_add(pkt.rtx.min(u8::MAX as u16) as u8);
        p.q.lost_chunks = p.q.lost_chunks.saturating_add(pkt.rtx as u32);
        if fast {
            // A fast retransmit: the path lost DATA (counted), but the
            // stack's error counter does not move (only timeouts move it).
            return;
        }
        // The rest of one timeout's retransmissions, sent in a later packet
        // when the window let it (the TSNs right above the last packet's,
        // on the same path, soon after, while those are unacknowledged):
        // the same expiry, no new error. A new expiry starts again from
        // the lowest TSN outstanding.
        let cum = (a.dirs[e].flags & dflag::HAS_ACK != 0).then_some(a.dirs[e].cum_ack);
        let h = &mut a.ext().hist[e];
        let same_expiry = h.rtx_path as usize == pi
            && low == h.rtx_high.wrapping_add(1)
            && now.saturating_sub(h.rtx_ns) <= RTX_BATCH_NS
            && cum.is_none_or(|c| tsn_gt(h.rtx_low, c));
        if same_expiry {
            h.rtx_high = tsn;
        } else {
            (h.rtx_path, h.rtx_low, h.rtx_high) = (pi as u8, low, tsn);
        }
        h.rtx_ns = now;
        if same_expiry {
            return;
        }
        let p = &mut self.slab[slot].paths[o];
        p.rtx_events = p.rtx_events.saturating_add(1);
        self.path_error(slot, o, Cause::Retransmissions, now, out);
    }

    /// The path DATA `tsn` of direction `e` was last sent on: the path a
    /// retransmission took it to, if one did (the range in `DirHistory`),
    /// else the path it was first sent on (`origin`).
    fn last_sent_on(&self, slot: usize, e: usize, tsn: u32, carrying: usize) -> usize {
        let a = &self.slab[slot];
        if a.dirs[e].flags & dflag::AWAY != 0
            && let Some(h) = a.ext.as_ref().map(|x| x.hist[e])
            && !tsn_gt(h.away_low, tsn)
            && !tsn_gt(tsn, h.away_high)
            && (h.away_path as usize) < a.paths.len()
        {
            return h.away_path as usize;
        }
        self.origin(slot, e, tsn, carrying)
    }

    /// New DATA of endpoint `e` on path `pi` (first new TSN `tsn`;
    /// `with_rtx`: the packet also retransmitted DATA).
    ///
    /// A move to another path is reported at once, unless the packet also
    /// retransmitted: then the next new DATA settles it (on the same path:
    /// the move, dated at its first packet; back on the primary: none). A
    /// stack may bundle new DATA into the packet that carries a timed-out
    /// retransmission to an alternate path without moving.
    #[allow(clippy::too_many_arguments)]
    fn new_data(&mut self, slot: usize, e: usize, pi: usize, tsn: u32, with_rtx: bool, now: u64, out: &mut Vec<Event>) {
        let a = &mut self.slab[slot];
        let primary = a.dirs[e].primary;
        let unsettled = a.ext.as_ref().map_or(NO_PATH, |x| x.hist[e].unsettled_to);
        if unsettled != NO_PATH {
            let h = &mut a.ext().hist[e];
            h.unsettled_to = NO_PATH;
            let (first_tsn, first_ns) = (h.unsettled_tsn, h.unsettled_ns);
            if unsettled as usize == pi {
                a.dirs[e].primary = pi as u8;
                self.primary_moved(slot, e, primary, pi, first_tsn, first_ns, true, now, out);
                return;
            }
            if primary as usize == pi {
                self.stats.bundled_excursions += 1;
                return;
            }
        }
        if primary as usize == pi {
            return;
        }
        if with_rtx && primary != NO_PATH {
            let h = &mut a.ext().hist[e];
            h.unsettled_to = pi as u8;
            h.unsettled_tsn = tsn;
            h.unsettled_ns = now;
            return;
        }
        a.dirs[e].primary = pi as u8;
        self.primary_moved(slot, e, primary, pi, tsn, now, with_rtx, now, out);
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

    /// New DATA of direction `e` moved from path `old` to `new` (first new
    /// TSN `tsn` there at `first_ns`; known at `now`). One event says what
    /// the move was:
    /// - `failover`: the old path shows errors (unanswered heartbeats,
    ///   retransmissions of its DATA, its link down) or is already
    ///   potentially failed or down; the old path becomes potentially failed
    ///   or down, as the sender holds it (`quick`: the move's first packet
    ///   also retransmitted DATA);
    /// - `failback`: back to the path the last failover left, which works
    ///   again (no error on the path left);
    /// - `primary_changed`: no failure anywhere: the first new DATA
    ///   (`initial`), an acknowledged ASCONF (`asconf`), or the sender's own
    ///   choice (`sender`).
    ///
    /// A move to another source address with the same destination changes
    /// no destination: no event.
    #[allow(clippy::too_many_arguments)]
    fn primary_moved(
        &mut self,
        slot: usize,
        e: usize,
        old: u8,
        new: usize,
        tsn: u32,
        first_ns: u64,
        quick: bool,
        now: u64,
        out: &mut Vec<Event>,
    ) {
        if old == NO_PATH {
            let mut ev = self.path_event(slot, new, EventKind::PrimaryChanged, now);
            ev.cause = Some(Cause::Initial);
            ev.first_new_data = Some(first_ns);
            out.push(ev);
            return;
        }
        {
            let h = &mut self.slab[slot].ext().hist[e];
            h.switch_tsn = tsn;
            h.prev_primary = old;
            h.switched = true;
        }
        let old = old as usize;
        let a = &self.slab[slot];
        let (po, pn) = (&a.paths[old], &a.paths[new]);
        if a.addrs[po.dst as usize] == a.addrs[pn.dst as usize] {
            return;
        }
        let from = Some(Self::path_ref(a, old));
        let to = Some(Self::path_ref(a, new));
        let last_old = (po.last_data_ns != 0).then_some(po.last_data_ns);
        let unanswered = self.unanswered(slot, old, now);
        let retrans = po.retrans_no_progress as u32;
        let failing = unanswered > 0
            || retrans > 0
            || matches!(po.state, PathState::Suspect | PathState::PotentiallyFailed | PathState::Down);
        // Back to the path the last failover left, or to one that came back
        // up since new DATA last moved, while the path left still works: a
        // failback (the stack returns to its primary).
        let failed_from = self.slab[slot].ext.as_ref().map_or(NO_PATH, |x| x.hist[e].failed_from);
        let back = (failed_from as usize == new || pn.flags & pflag::RECOVERED != 0)
            && pn.state == PathState::Active
            && po.state != PathState::Down
            && unanswered == 0;
        for p in self.slab[slot].paths.iter_mut().filter(|p| p.dir() == e) {
            p.flags &= !pflag::RECOVERED;
        }
        let failing = failing && !back;
        let mut ev = self.path_event(slot, new, EventKind::PrimaryChanged, now);
        ev.endpoint = Some(Role::from_index(e));
        ev.from = from;
        ev.to = to;
        ev.first_new_data = Some(first_ns);
        ev.last_old_data = last_old;
        if failing {
            ev.event = EventKind::Failover;
            if unanswered > 0 || retrans > 0 {
                ev.evidence = Some(Evidence { unanswered_heartbeats: unanswered, retransmissions: retrans });
            }
            out.push(ev);
            let a = &mut self.slab[slot];
            a.dirs[e].failovers = a.dirs[e].failovers.saturating_add(1);
            let h = &mut a.ext().hist[e];
            if h.failed_from == NO_PATH || h.failed_from as usize == new {
                h.failed_from = old as u8;
            }
            // Where the sender stands with the old path. A quick failover
            // (RFC 7829, Linux's default) moves at the path's first error:
            // new DATA in the packet of the retransmission that the expiry
            // sent to the alternate, or new DATA soon after the error
            // (`quick_failover_ns`: before a second retransmission timeout
            // could count): the path is potentially failed. A sender that
            // moves later has counted the path out (inactive: usrsctp, Linux
            // without quick failover; its count may include heartbeat
            // expiries that send nothing). Whether new DATA went on to the
            // path in between is not asked: live, the kernel does not say.
            let errors = unanswered + self.slab[slot].paths[old].rtx_events as u32;
            let h = self.slab[slot].ext.as_ref().map(|x| x.hist[e]).unwrap_or_default();
            let first_chance = self.slab[slot].paths[old].state == PathState::Suspect
                && h.first_error_ns != 0
                && first_ns.saturating_sub(h.first_error_ns) <= self.cfg.quick_failover_ns;
            let state =
                if (quick && errors <= 1) || first_chance { PathState::PotentiallyFailed } else { PathState::Down };
            let p = &mut self.slab[slot].paths[old];
            if p.state != PathState::Down && p.state != state {
                p.state = state;
                let kind =
                    if state == PathState::Down { EventKind::PathDown } else { EventKind::PathPotentiallyFailed };
                let mut ev = self.path_event(slot, old, kind, now);
                ev.cause = Some(Cause::Failover);
                out.push(ev);
            }
            return;
        }
        if let Some(cause) = self.asconf_cause(slot, e, old, new) {
            ev.asconf = Some(cause);
            ev.cause = Some(Cause::Asconf);
        } else if back {
            ev.event = EventKind::Failback;
        } else {
            ev.cause = Some(Cause::Sender);
        }
        if failed_from != NO_PATH {
            self.slab[slot].ext().hist[e].failed_from = NO_PATH;
        }
        out.push(ev);
    }

    /// A path showed an error (an unanswered heartbeat, or a retransmission
    /// of its DATA): suspect at the first (no event: whether the stack holds
    /// it potentially failed shows when it moves, `primary_moved`), down once
    /// the errors in a row reach `hb_down_after` (the stack's
    /// Path.Max.Retrans + 1), or the retransmission events alone
    /// `retrans_down_after`.
    pub(super) fn path_error(&mut self, slot: usize, pi: usize, cause: Cause, now: u64, out: &mut Vec<Event>) {
        let errors = self.unanswered(slot, pi, now) + self.slab[slot].paths[pi].rtx_events as u32;
        let down = errors >= self.cfg.hb_down_after.max(1) as u32
            || self.slab[slot].paths[pi].rtx_events as u16 >= self.cfg.retrans_down_after.clamp(1, u8::MAX as u16);
        let p = &mut self.slab[slot].paths[pi];
        if p.state == PathState::Down {
            return;
        }
        if down {
            p.state = PathState::Down;
            let mut ev = self.path_event(slot, pi, EventKind::PathDown, now);
            ev.cause = Some(cause);
            out.push(ev);
        } else if errors > 0 && matches!(p.state, PathState::Active | PathState::Unconfirmed) {
            p.state = PathState::Suspect;
            let d = p.dir();
            if self.slab[slot].dirs[d].primary as usize == pi {
                self.slab[slot].ext().hist[d].first_error_ns = now;
            }
        }
    }

    /// The path works again (a heartbeat answered, its DATA acknowledged):
    /// `path_up` when it was potentially failed, down, or unconfirmed and a heartbeat answered.
    pub(super) fn path_works(
        &mut self,
        slot: usize,
        pi: usize,
        cause: Cause,
        rtt_us: Option<u32>,
        now: u64,
        out: &mut Vec<Event>,
    ) {
        let p = &mut self.slab[slot].paths[pi];
        let (was, d) = (p.state, p.dir());
        // Acknowledged DATA clears a path's errors but brings a potentially
        // failed or down path back only by its heartbeat answered, as the
        // stacks do (and the same live, where acks come with the per-path
        // poll, and in a capture).
        if cause == Cause::DataAck && matches!(was, PathState::PotentiallyFailed | PathState::Down) {
            return;
        }
        p.state = PathState::Active;
        if matches!(was, PathState::PotentiallyFailed | PathState::Down) {
            p.flags |= pflag::RECOVERED;
        }
        if matches!(was, PathState::Suspect | PathState::PotentiallyFailed)
            && let Some(x) = self.slab[slot].ext.as_mut()
        {
            x.hist[d].first_error_ns = 0;
        }
        if was == PathState::Down {
            self.hb_streak_ends(slot, pi);
        }
        // A confirmation by acknowledged DATA is silent: live it comes with
        // the per-path poll, not with a packet.
        let silent = was == PathState::Active
            || was == PathState::Suspect
            || (was == PathState::Unconfirmed && cause == Cause::DataAck);
        if !silent {
            let mut ev = self.path_event(slot, pi, EventKind::PathUp, now);
            ev.cause = Some(cause);
            ev.rtt_us = rtt_us;
            out.push(ev);
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
        self.path_works(slot, pi, Cause::DataAck, None, now, out);
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
