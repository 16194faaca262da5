//! How a path carries DATA and SACKs: the counters an operator reads to
//! tell a lossy path from a healthy one (what Wireshark's TSN analysis
//! shows offline), and the receiver window closing and opening.
//!
//! Live, the DATA and SACK counters come from the kernel's per-path maps
//! (`observe_path_stats`); in a capture, from every chunk. Heartbeat counts
//! come from the heartbeat records in both. The window events come from
//! SACK chunks in both: the kernel sends a record for every SACK that
//! closes or opens its path's window (per CPU), so live and offline see
//! the same transitions.

use sctp_monitor_common::{PathStats, stats::PATH_FLAG_HAS_SACK};

use super::{
    Tracker,
    assoc::{dflag, ms},
};
use crate::decode::{PacketMeta, Sack};
use crate::event::{Event, EventKind};

/// One path's quality counters (all saturating at `u32::MAX`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PathQuality {
    /// DATA / I-DATA chunks sent on the path, first transmissions and
    /// retransmissions (those are `Path::retransmissions`).
    pub data_chunks: u32,
    /// SACKs sent on the path (by its sender, for the peer's DATA), with
    /// the gap-ack blocks and duplicate TSNs they reported.
    pub sacks: u32,
    pub gap_blocks: u32,
    pub dup_tsns: u32,
    /// The last and the smallest receiver window those SACKs advertised
    /// (meaningful once `sacks` > 0).
    pub a_rwnd: u32,
    pub a_rwnd_min: u32,
    /// Liveness heartbeats sent on the path, and those left unanswered.
    pub heartbeats: u32,
    pub heartbeats_unanswered: u32,
    /// Retransmitted DATA chunks a cumulative ack on the wire had covered
    /// already when they left: a retransmission timeout shorter than the
    /// path's delayed SACK, or an ack lost after the capture point.
    /// Captures only: live, the kernel does not follow the acks of each
    /// TSN.
    pub spurious_retransmissions: u32,
}

impl PathQuality {
    pub const NEW: PathQuality = PathQuality {
        data_chunks: 0,
        sacks: 0,
        gap_blocks: 0,
        dup_tsns: 0,
        a_rwnd: 0,
        a_rwnd_min: 0,
        heartbeats: 0,
        heartbeats_unanswered: 0,
        spurious_retransmissions: 0,
    };

    /// The kernel's totals for the path (live).
    pub fn set_from_kernel(&mut self, s: &PathStats) {
        let c = |v: u64| v.min(u32::MAX as u64) as u32;
        self.data_chunks = c(s.data_chunks);
        if s.flags & PATH_FLAG_HAS_SACK != 0 {
            self.sacks = c(s.sacks).max(1);
            self.gap_blocks = c(s.gap_blocks);
            self.dup_tsns = c(s.dup_tsns);
            self.a_rwnd = s.sack_a_rwnd;
            self.a_rwnd_min = s.sack_a_rwnd_min;
        }
    }

    /// One SACK in a capture.
    fn count_sack(&mut self, s: &Sack) {
        if self.sacks == 0 || s.a_rwnd < self.a_rwnd_min {
            self.a_rwnd_min = s.a_rwnd;
        }
        self.sacks = self.sacks.saturating_add(1);
        self.gap_blocks = self.gap_blocks.saturating_add(s.n_gaps as u32);
        self.dup_tsns = self.dup_tsns.saturating_add(s.n_dups as u32);
        self.a_rwnd = s.a_rwnd;
    }
}

impl Tracker {
    /// A SACK sent by endpoint `e` on path `pi`: its counters (captures;
    /// live they come from the kernel), then its window. The cumulative
    /// ack is `on_cum_ack`'s.
    pub(super) fn on_sack(
        &mut self,
        slot: usize,
        e: usize,
        pi: usize,
        meta: &PacketMeta,
        s: &Sack,
        out: &mut Vec<Event>,
    ) {
        if meta.record.is_none() {
            self.slab[slot].paths[pi].q.count_sack(s);
        }
        self.window(slot, e, pi, s.a_rwnd, meta.ts_ns, out);
    }

    /// Endpoint `e` advertised `a_rwnd` on path `pi`: `window_zero` when its
    /// window closes (the peer may send no new DATA but a probe: its
    /// application stopped reading), `window_open` when it opens again,
    /// with how long it stayed closed.
    fn window(&mut self, slot: usize, e: usize, pi: usize, a_rwnd: u32, now: u64, out: &mut Vec<Event>) {
        // The state is kept with the peer's DATA, whose sending it stops.
        let de = 1 - e;
        let closed = self.slab[slot].dirs[de].flags & dflag::WINDOW_ZERO != 0;
        if closed == (a_rwnd == 0) {
            return;
        }
        let mut ev;
        if a_rwnd == 0 {
            self.slab[slot].dirs[de].flags |= dflag::WINDOW_ZERO;
            self.slab[slot].ext().hist[de].window_zero_ms = ms(now);
            self.stats.windows_zero += 1;
            self.stats.windows_zero_now += 1;
            ev = self.path_event(slot, pi, EventKind::WindowZero, now);
        } else {
            self.slab[slot].dirs[de].flags &= !dflag::WINDOW_ZERO;
            self.stats.windows_zero_now = self.stats.windows_zero_now.saturating_sub(1);
            let since = self.slab[slot].ext.as_ref().map_or(ms(now), |x| x.hist[de].window_zero_ms);
            ev = self.path_event(slot, pi, EventKind::WindowOpen, now);
            ev.window_zero_ms = Some(ms(now).wrapping_sub(since) as u64);
        }
        ev.a_rwnd = Some(a_rwnd);
        out.push(ev);
    }
}

#[cfg(test)]
mod tests {
    use crate::craft::{
        self,
        wire::{MS, T0, Wire},
    };
    use crate::event::{EventKind, Role};
    use crate::tracker::{Config, PathView};

    fn path(paths: &[PathView], sender: Role, src: std::net::IpAddr) -> &PathView {
        paths.iter().find(|p| p.sender == sender && p.src == src).expect("the path")
    }

    #[test]
    fn a_capture_counts_data_retransmissions_sack_contents_windows_and_heartbeats_per_path() {
        let mut w = Wire::new(Config::default());
        w.handshake();
        w.a2b(10, 0, vec![craft::data(100, 0, 0, 18, b"a"), craft::data(101, 0, 1, 18, b"b")]);
        w.a2b(11, 0, vec![craft::data(102, 0, 2, 18, b"c")]);
        // 101 lost: B reports the gap; then a duplicate once 100 comes again.
        w.b2a(12, 0, vec![craft::sack(100, 60_000, &[(2, 2)], &[])]);
        w.a2b(300, 0, vec![craft::data(101, 0, 1, 18, b"b")]);
        w.a2b(301, 0, vec![craft::data(100, 0, 0, 18, b"a")]);
        w.b2a(302, 0, vec![craft::sack(102, 20_000, &[], &[100])]);
        w.b2a(400, 1, vec![craft::heartbeat(b"h1")]);
        w.a2b(401, 1, vec![craft::heartbeat_ack(b"h1")]);
        w.b2a(40_000, 1, vec![craft::heartbeat(b"h2")]);
        w.tick(60_000);
        let v = w.t.associations().next().expect("the association");
        let a0 = path(&v.paths, Role::Initiator, w.a[0]);
        assert_eq!((a0.quality.data_chunks, a0.retransmissions), (5, 2));
        let b0 = path(&v.paths, Role::Responder, w.b[0]);
        let q = b0.quality;
        assert_eq!((q.sacks, q.gap_blocks, q.dup_tsns), (2, 1, 1));
        assert_eq!((q.a_rwnd, q.a_rwnd_min), (20_000, 20_000));
        let b1 = path(&v.paths, Role::Responder, w.b[1]);
        assert_eq!((b1.quality.heartbeats, b1.quality.heartbeats_unanswered), (2, 1));
        assert!(w.of(EventKind::WindowZero).is_empty(), "no window closed");
    }

    #[test]
    fn a_closed_window_is_reported_once_and_its_opening_with_how_long_it_was_closed() {
        let mut w = Wire::new(Config::default());
        w.handshake();
        w.a2b(10, 0, vec![craft::data(100, 0, 0, 18, b"a")]);
        w.b2a(11, 0, vec![craft::sack(100, 0, &[], &[])]);
        // Zero-window probes, answered with a closed window again.
        w.a2b(500, 0, vec![craft::data(101, 0, 1, 18, b"p")]);
        w.b2a(501, 0, vec![craft::sack(100, 0, &[], &[])]);
        w.a2b(1500, 0, vec![craft::data(101, 0, 1, 18, b"p")]);
        w.b2a(1501, 0, vec![craft::sack(101, 0, &[], &[])]);
        assert_eq!(w.t.stats().windows_zero_now, 1);
        assert_eq!(w.t.associations().next().expect("assoc").window_zero, [true, false], "A's DATA is blocked");
        w.b2a(2011, 0, vec![craft::sack(101, 65_536, &[], &[])]);
        let zero = w.of(EventKind::WindowZero);
        assert_eq!(zero.len(), 1, "{:?}", w.kinds());
        assert_eq!((zero[0].ts, zero[0].endpoint, zero[0].a_rwnd), (T0 + 11 * MS, Some(Role::Responder), Some(0)));
        assert_eq!(zero[0].path.expect("path").src, w.b[0]);
        let open = w.of(EventKind::WindowOpen);
        assert_eq!(open.len(), 1);
        assert_eq!((open[0].a_rwnd, open[0].window_zero_ms), (Some(65_536), Some(2000)));
        assert_eq!(w.t.stats().windows_zero_now, 0);
        // A window closed when the association ends is no longer counted.
        w.b2a(3000, 0, vec![craft::sack(101, 0, &[], &[])]);
        assert_eq!(w.t.stats().windows_zero_now, 1);
        w.b2a(3001, 0, vec![craft::abort(false, &[])]);
        assert_eq!(w.t.stats().windows_zero_now, 0);
    }
}
