//! Heartbeats: RTT by matching each HEARTBEAT-ACK to its HEARTBEAT through
//! the echoed Heartbeat Info bytes (several may be in flight), consecutive
//! unanswered heartbeats, path suspect / down / up. A HEARTBEAT bundled with
//! PAD is a PMTU probe (RFC 8899): its loss says nothing about liveness.

use crate::decode::{HbInfo, PacketMeta};
use crate::event::{Cause, Event};

use super::Tracker;
use super::assoc::{PathState, a16, age_ms, ms, pflag};
use super::inflight::HbSent;

impl Tracker {
    /// Whether some path of `slot` may have a liveness heartbeat unanswered
    /// (see `Tracker::hb_waiting`).
    pub(super) fn hb_waiting(&self, slot: usize) -> bool {
        self.hb_waiting.get(slot / 64).is_some_and(|w| w >> (slot % 64) & 1 != 0)
    }

    pub(super) fn set_hb_waiting(&mut self, slot: usize, on: bool) {
        if slot / 64 >= self.hb_waiting.len() {
            if !on {
                return;
            }
            self.hb_waiting.resize(slot / 64 + 1, 0);
        }
        let bit = 1u64 << (slot % 64);
        if on {
            self.hb_waiting[slot / 64] |= bit;
        } else {
            self.hb_waiting[slot / 64] &= !bit;
        }
    }

    /// A path of `slot` showed life: its heartbeat streak ends, and the
    /// association's bit clears if no other path waits. The path's queued
    /// timeout, if any, is left to run out unread: the next heartbeat
    /// queues its own.
    pub(super) fn hb_streak_ends(&mut self, slot: usize, pi: usize) {
        let p = &mut self.slab[slot].paths[pi];
        p.clear_hb_streak();
        p.flags &= !pflag::HB_QUEUED;
        if self.slab[slot].paths.iter().all(|p| p.hb_unacked == 0) {
            self.set_hb_waiting(slot, false);
        }
    }

    /// Unanswered liveness heartbeats on a path at `now`: those sent since
    /// the last answer, not counting the latest while it may still be
    /// answered.
    pub(super) fn unanswered(&self, slot: usize, pi: usize, now: u64) -> u32 {
        let p = &self.slab[slot].paths[pi];
        let mut n = p.hb_unacked as u32;
        if n > 0 && age_ms(now, p.last_hb_ms) < self.cfg.hb_answer_timeout_ns / 1_000_000 {
            n -= 1;
        }
        n
    }

    pub(super) fn on_heartbeat(
        &mut self,
        slot: usize,
        pi: usize,
        meta: &PacketMeta,
        info: &HbInfo,
        out: &mut Vec<Event>,
    ) {
        let now = meta.ts_ns;
        let id = self.slab[slot].id;
        let probe = meta.bundled_pad;
        if self.hb.len() < (4 * self.count).max(4096) {
            self.hb.insert(id, info.digest, HbSent { sent_ns: now, path: pi as u8, probe });
        }
        if probe {
            return;
        }
        let p = &mut self.slab[slot].paths[pi];
        // The previous one goes unanswered now if not already counted.
        if p.hb_unacked > 0 && p.flags & pflag::HB_COUNTED == 0 {
            self.stats.heartbeats_unanswered += 1;
            p.q.heartbeats_unanswered = p.q.heartbeats_unanswered.saturating_add(1);
        }
        p.q.heartbeats = p.q.heartbeats.saturating_add(1);
        p.flags &= !pflag::HB_COUNTED;
        p.hb_unacked = p.hb_unacked.saturating_add(1);
        p.last_hb_ms = ms(now);
        self.set_hb_waiting(slot, true);
        self.queue_hb_timeout(slot, pi, now);
        self.update_hb_state(slot, pi, now, out);
    }

    pub(super) fn on_heartbeat_ack(
        &mut self,
        slot: usize,
        e: usize,
        meta: &PacketMeta,
        info: &HbInfo,
        out: &mut Vec<Event>,
    ) {
        let now = meta.ts_ns;
        let id = self.slab[slot].id;
        let keep = self.hb_keep_ns();
        let (pi, rtt, probe) = match self.hb.remove(id, info.digest) {
            Some(h) if (h.path as usize) < self.slab[slot].paths.len() && now.saturating_sub(h.sent_ns) < keep => {
                (h.path as usize, Some(now.saturating_sub(h.sent_ns)), h.probe)
            }
            _ => {
                // Its HEARTBEAT was not seen (before the capture, or lost from
                // view): the path it answers is the reverse of this packet.
                self.stats.unmatched_heartbeat_acks += 1;
                match self.slab[slot].path(1 - e, a16(meta.dst), a16(meta.src)) {
                    Some(pi) => (pi, None, false),
                    None => return,
                }
            }
        };
        let p = &mut self.slab[slot].paths[pi];
        if let Some(r) = rtt {
            p.rtt_us = (r / 1_000).min(u32::MAX as u64) as u32;
        }
        if probe {
            return;
        }
        if let Some(r) = rtt {
            p.q.rtt.record((r / 1_000).min(u32::MAX as u64) as u32);
        }
        if let Some(r) = rtt.filter(|_| self.cfg.rtt_samples) {
            self.rtt_samples.push(r);
        }
        // An answered heartbeat clears the path's error counts (RFC 9260
        // §8.3): unanswered heartbeats and retransmissions alike.
        self.hb_streak_ends(slot, pi);
        let p = &mut self.slab[slot].paths[pi];
        p.rtx_events = 0;
        p.retrans_no_progress = 0;
        p.flags |= pflag::HB_ANSWERED;
        let rtt_us = rtt.map(|r| (r / 1_000).min(u32::MAX as u64) as u32);
        self.path_works(slot, pi, Cause::HeartbeatAck, rtt_us, now, out);
    }

    /// Unanswered heartbeats are errors of their path (`path_error`).
    pub(super) fn update_hb_state(&mut self, slot: usize, pi: usize, now: u64, out: &mut Vec<Event>) {
        let n = self.unanswered(slot, pi, now);
        if n == 0 {
            return;
        }
        let p = &mut self.slab[slot].paths[pi];
        // The last one's answer timeout has passed.
        if n == p.hb_unacked as u32 && p.flags & pflag::HB_COUNTED == 0 {
            p.flags |= pflag::HB_COUNTED;
            self.stats.heartbeats_unanswered += 1;
            p.q.heartbeats_unanswered = p.q.heartbeats_unanswered.saturating_add(1);
        }
        self.path_error(slot, pi, Cause::Heartbeats, now, out);
    }

    /// Queues the answer timeout of path `pi`'s last heartbeat (from then
    /// on it counts as unanswered, see `unanswered`), unless one of the
    /// path's is queued already: `hb_timeout` queues it again then.
    fn queue_hb_timeout(&mut self, slot: usize, pi: usize, now: u64) {
        let p = &mut self.slab[slot].paths[pi];
        if p.flags & pflag::HB_QUEUED != 0 {
            return;
        }
        p.flags |= pflag::HB_QUEUED;
        let timeout_ms = self.cfg.hb_answer_timeout_ns / 1_000_000;
        let sent_ms = (now / 1_000_000).saturating_sub(age_ms(now, p.last_hb_ms));
        self.hb_due.push(slot, pi, (sent_ms + timeout_ms).saturating_mul(1_000_000));
    }

    /// A queued heartbeat answer timeout of path `pi` has passed (from
    /// `tick`).
    pub(super) fn hb_timeout(&mut self, slot: usize, pi: usize, now: u64, out: &mut Vec<Event>) {
        let Some(p) = self.slab[slot].paths.get_mut(pi) else {
            return;
        };
        p.flags &= !pflag::HB_QUEUED;
        if p.hb_unacked == 0 {
            return;
        }
        self.update_hb_state(slot, pi, now, out);
        let p = &self.slab[slot].paths[pi];
        if age_ms(now, p.last_hb_ms) < self.cfg.hb_answer_timeout_ns / 1_000_000 {
            // Sent again since: wait for that one.
            self.queue_hb_timeout(slot, pi, now);
        }
    }

    /// Whether `update_hb_state` would change a path of `slot` at `now`:
    /// a packet made a path active while heartbeats on it are unanswered.
    pub(super) fn hb_state_pending(&self, slot: usize, now: u64) -> bool {
        let down_after = self.cfg.hb_down_after.max(1) as u32;
        let a = &self.slab[slot];
        a.paths.iter().enumerate().any(|(pi, p)| {
            p.hb_unacked > 0 && {
                let n = self.unanswered(slot, pi, now) + p.rtx_events as u32;
                (n >= down_after && p.state != PathState::Down) || (n > 0 && p.state == PathState::Active)
            }
        })
    }

    /// Heartbeat timeouts of every path of an association (from `tick`).
    pub(super) fn check_heartbeats(&mut self, slot: usize, now: u64, out: &mut Vec<Event>) {
        for pi in 0..self.slab[slot].paths.len() {
            if self.slab[slot].paths[pi].hb_unacked > 0 {
                self.update_hb_state(slot, pi, now, out);
            }
        }
    }
}
