//! How a path carries DATA and SACKs: the counters an operator reads to
//! tell a lossy path from a healthy one (what Wireshark's TSN analysis
//! shows offline), and the receiver window closing and opening.
//!
//! Live, the DATA and SACK counters come from the kernel's per-path maps
//! (`observe_path_stats`); in a capture, from every chunk. Heartbeat counts
//! come from the heartbeat records in both. The window events come from
//! SACK chunks in both: the kernel sends a record for every SACK that
//! closes or opens its sender's window or begins or ends its gap reports
//! (the state kept per association direction, whichever path carries the
//! SACK), so live and offline see the same transitions.

use sctp_monitor_common::{PathStats, stats::PATH_FLAG_HAS_SACK};

use super::{
    Tracker,
    assoc::{PathState, dflag, ms, pflag},
};
use crate::decode::{PacketMeta, Sack};
use crate::event::{Event, EventKind, QualityWindow};

/// Fewest DATA chunks, and heartbeats, in a window for its loss ratio to
/// judge the path.
const MIN_CHUNKS: u32 = 50;
const MIN_HEARTBEATS: u32 = 5;

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
    /// DATA chunks last sent on this path that had to be sent again (the
    /// retransmission may travel on another path): what the path lost.
    pub lost_chunks: u32,
    /// Liveness heartbeats' round-trip times (`rtt.rs`).
    pub rtt: super::rtt::RttHistogram,
    /// The counters when the current quality window began (`data_chunks`,
    /// `lost_chunks`; `heartbeats`, `heartbeats_unanswered` modulo 2^16).
    pub(crate) mark_data: u32,
    pub(crate) mark_lost: u32,
    pub(crate) mark_hb: u16,
    pub(crate) mark_hb_lost: u16,
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
        lost_chunks: 0,
        rtt: super::rtt::RttHistogram::NEW,
        mark_data: 0,
        mark_lost: 0,
        mark_hb: 0,
        mark_hb_lost: 0,
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
        // Live, every SACK that changes this reaches the tracker (the
        // kernel's SackChange record), as every SACK does from a capture.
        let d = &mut self.slab[slot].dirs[1 - e];
        if s.n_gaps > 0 {
            d.flags |= dflag::GAPS;
        } else {
            d.flags &= !dflag::GAPS;
        }
        self.window(slot, e, pi, s.a_rwnd, meta.ts_ns, out);
    }

    /// Whether the receiver of endpoint `e`'s DATA reported gaps in its
    /// last SACK seen: a retransmission of `e` now, on the path its DATA
    /// was last sent on, is a fast retransmit (RFC 9260 §7.2.4), which is
    /// no error of a path, as a retransmission timeout is (that goes to an
    /// alternate path when there is one).
    pub(super) fn gaps_reported(&self, slot: usize, e: usize) -> bool {
        self.slab[slot].dirs[e].flags & dflag::GAPS != 0
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
            ev = self.path_event(slot, pi, EventKind::WindowZero, now);
        } else {
            self.slab[slot].dirs[de].flags &= !dflag::WINDOW_ZERO;
            let since = self.slab[slot].ext.as_ref().map_or(ms(now), |x| x.hist[de].window_zero_ms);
            ev = self.path_event(slot, pi, EventKind::WindowOpen, now);
            ev.window_zero_ms = Some(ms(now).wrapping_sub(since) as u64);
        }
        ev.a_rwnd = Some(a_rwnd);
        out.push(ev);
    }

    /// Once per quality window (`Config::degraded_window_ns`, windows
    /// aligned on the clock, so that live and a capture cut them alike):
    /// each path's loss over the window ends, `path_degraded` when it
    /// crosses a threshold before any failover, `path_degraded_end` once it
    /// is below half of it.
    pub(super) fn quality_windows(&mut self, now: u64, out: &mut Vec<Event>) {
        let w = self.cfg.degraded_window_ns;
        if w == 0 {
            return;
        }
        let epoch = now / w;
        if epoch == self.quality_epoch {
            return;
        }
        // The first tick only starts the first window; after a gap
        // without ticks the window spans the gap.
        let judge = self.quality_epoch != 0;
        let span = w.saturating_mul(epoch.saturating_sub(self.quality_epoch).max(1));
        self.quality_epoch = epoch;
        let (loss_max, hb_max) = (self.cfg.degraded_loss_ratio, self.cfg.degraded_hb_loss_ratio);
        for slot in 0..self.slab.len() {
            if self.slab[slot].id == 0 {
                continue;
            }
            for pi in 0..self.slab[slot].paths.len() {
                let p = &mut self.slab[slot].paths[pi];
                let q = &mut p.q;
                let win = QualityWindow::new(
                    span,
                    q.data_chunks.wrapping_sub(q.mark_data),
                    q.lost_chunks.wrapping_sub(q.mark_lost),
                    (q.heartbeats as u16).wrapping_sub(q.mark_hb) as u32,
                    (q.heartbeats_unanswered as u16).wrapping_sub(q.mark_hb_lost) as u32,
                    MIN_CHUNKS,
                    MIN_HEARTBEATS,
                );
                (q.mark_data, q.mark_lost) = (q.data_chunks, q.lost_chunks);
                (q.mark_hb, q.mark_hb_lost) = (q.heartbeats as u16, q.heartbeats_unanswered as u16);
                // A path that failed is reported as such, not as degraded.
                if !judge || matches!(p.state, PathState::Down | PathState::PotentiallyFailed) {
                    continue;
                }
                let (loss, hb) = (win.loss_ratio, win.heartbeat_loss_ratio);
                let bad = loss.is_some_and(|r| r >= loss_max) || hb.is_some_and(|r| r >= hb_max);
                let good = (loss.is_some() || hb.is_some())
                    && loss.is_none_or(|r| r < loss_max / 2.0)
                    && hb.is_none_or(|r| r < hb_max / 2.0);
                let degraded = p.flags & pflag::DEGRADED != 0;
                let kind = if !degraded && bad {
                    p.flags |= pflag::DEGRADED;
                    EventKind::PathDegraded
                } else if degraded && good {
                    p.flags &= !pflag::DEGRADED;
                    EventKind::PathDegradedEnd
                } else {
                    continue;
                };
                let mut ev = self.path_event(slot, pi, kind, now);
                ev.window = Some(win);
                out.push(ev);
            }
        }
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
    fn a_path_that_loses_a_tenth_of_its_data_over_a_window_is_degraded_and_then_no_longer() {
        let cfg = Config { degraded_window_ns: 1_000 * MS, ..Config::default() };
        let mut w = Wire::new(cfg);
        w.handshake();
        w.tick(5);
        // Window 1: 100 chunks on path 0, every tenth lost there and sent
        // again on path 1 (where it is no loss of path 1's).
        let mut tsn = 1000;
        let mut ms = 10;
        for i in 0..100 {
            w.a2b(ms, 0, vec![craft::data(tsn, 0, 0, 18, b"x")]);
            if i % 10 == 0 {
                w.a2b(ms + 3, 1, vec![craft::data(tsn, 0, 0, 18, b"x")]);
            }
            w.b2a(ms + 5, 0, vec![craft::sack(tsn, 65_536, &[], &[])]);
            tsn += 1;
            ms += 9;
        }
        w.tick(1_001);
        let d = w.of(EventKind::PathDegraded);
        assert_eq!(d.len(), 1, "{:?}", w.kinds());
        assert_eq!(d[0].path.expect("path").src, w.a[0]);
        let win = d[0].window.expect("window");
        assert_eq!((win.seconds, win.data_chunks, win.lost_chunks, win.loss_ratio), (1, 100, 10, Some(0.1)));
        // Window 2: no loss.
        ms = 1_010;
        for _ in 0..60 {
            w.a2b(ms, 0, vec![craft::data(tsn, 0, 0, 18, b"x")]);
            w.b2a(ms + 5, 0, vec![craft::sack(tsn, 65_536, &[], &[])]);
            tsn += 1;
            ms += 15;
        }
        w.tick(2_001);
        let end = w.of(EventKind::PathDegradedEnd);
        assert_eq!(end.len(), 1, "{:?}", w.kinds());
        assert_eq!(end[0].window.expect("window").loss_ratio, Some(0.0));
        assert_eq!(w.of(EventKind::PathDegraded).len(), 1, "path 1 carried the retransmissions: not degraded");
        // Idle windows judge nothing.
        w.tick(3_001);
        w.tick(4_001);
        assert_eq!(w.of(EventKind::PathDegraded).len() + w.of(EventKind::PathDegradedEnd).len(), 2);
    }

    #[test]
    fn unanswered_heartbeats_degrade_a_path_that_carries_no_data() {
        let cfg = Config { degraded_window_ns: 10_000 * MS, ..Config::default() };
        let mut w = Wire::new(cfg);
        w.handshake();
        w.tick(5);
        for i in 0..8u64 {
            let info = [i as u8; 8];
            w.a2b(100 + i * 1_000, 1, vec![craft::heartbeat(&info)]);
            if i % 2 == 0 {
                w.b2a(101 + i * 1_000, 1, vec![craft::heartbeat_ack(&info)]);
            }
        }
        w.tick(10_001);
        let d = w.of(EventKind::PathDegraded);
        assert_eq!(d.len(), 1, "{:?}", w.kinds());
        let win = d[0].window.expect("window");
        assert_eq!((win.heartbeats, win.loss_ratio), (8, None));
        assert!(win.heartbeat_loss_ratio.is_some_and(|r| r >= 0.2), "{win:?}");
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
        assert_eq!(w.t.census().windows_zero, 1);
        assert_eq!(w.t.associations().next().expect("assoc").window_zero, [true, false], "A's DATA is blocked");
        w.b2a(2011, 0, vec![craft::sack(101, 65_536, &[], &[])]);
        let zero = w.of(EventKind::WindowZero);
        assert_eq!(zero.len(), 1, "{:?}", w.kinds());
        assert_eq!((zero[0].ts, zero[0].endpoint, zero[0].a_rwnd), (T0 + 11 * MS, Some(Role::Responder), Some(0)));
        assert_eq!(zero[0].path.expect("path").src, w.b[0]);
        let open = w.of(EventKind::WindowOpen);
        assert_eq!(open.len(), 1);
        assert_eq!((open[0].a_rwnd, open[0].window_zero_ms), (Some(65_536), Some(2000)));
        assert_eq!(w.t.census().windows_zero, 0);
        // A window closed when the association ends is no longer counted.
        w.b2a(3000, 0, vec![craft::sack(101, 0, &[], &[])]);
        assert_eq!(w.t.census().windows_zero, 1);
        w.b2a(3001, 0, vec![craft::abort(false, &[])]);
        assert_eq!(w.t.census().windows_zero, 0);
    }
}
