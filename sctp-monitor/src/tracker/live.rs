//! Live per-path counters read from the kernel's `PATHS` map. The kernel
//! sends DATA records only for first DATA on a path, path changes and
//! resumption, so DATA packets, bytes, retransmissions, the highest TSN and
//! SACK cumulative acks come from here.

use sctp_monitor_common::sctp::tsn_gt;
use sctp_monitor_common::stats::{PATH_FLAG_HAS_SACK, PATH_FLAG_HAS_TSN};
use sctp_monitor_common::{PathKey, PathStats};

use crate::event::Event;

use super::Tracker;
use super::assoc::{A16, PathState, dflag, ms};

fn key_addr(a: &[u8; 16], v: u8) -> A16 {
    if v == 4 {
        let mut m = [0u8; 16];
        m[10] = 0xff;
        m[11] = 0xff;
        m[12..].copy_from_slice(&a[..4]);
        m
    } else {
        *a
    }
}

impl Tracker {
    /// Updates a path from the kernel's counters of `key`, summed over CPUs
    /// (`merged`). Counters are absolute. Returns false when no tracked
    /// association has that tag and ports.
    pub fn observe_path_stats(
        &mut self,
        key: &PathKey,
        merged: &PathStats,
        now: u64,
        out: &mut Vec<Event>,
    ) -> bool {
        self.now_ns = self.now_ns.max(now);
        let Some((slot, e)) = self.find_tag(key.vtag, key.src_port, key.dst_port) else {
            return false;
        };
        let src = key_addr(&key.src_addr, key.ip_version);
        let dst = key_addr(&key.dst_addr, key.ip_version);
        let Some(pi) = self.slab[slot].path(e, src, dst) else {
            self.stats.address_overflow += 1;
            return true;
        };
        let a = &mut self.slab[slot];
        let p = &mut a.paths[pi];
        let packets = merged.packets.min(u32::MAX as u64) as u32;
        let retrans = merged.retransmissions.min(u32::MAX as u64) as u32;
        let moved = packets != p.data_packets || merged.payload_bytes != p.data_bytes;
        let new_retrans = retrans.saturating_sub(p.retransmissions);
        if merged.payload_bytes > p.data_bytes || new_retrans > 0 {
            p.last_data_ns = now;
        }
        p.data_packets = packets;
        p.data_bytes = merged.payload_bytes;
        p.retransmissions = retrans;
        p.retrans_no_progress = p
            .retrans_no_progress
            .saturating_add(new_retrans.min(u16::MAX as u32) as u16);
        if moved {
            a.last_seen_ns = a.last_seen_ns.max(now);
        }
        if merged.flags & PATH_FLAG_HAS_TSN != 0 {
            let d = &mut a.dirs[e];
            if d.flags & dflag::HAS_TSN == 0 || tsn_gt(merged.highest_tsn, d.highest_tsn) {
                if !d.outstanding() {
                    d.progress_ms = ms(now);
                }
                d.highest_tsn = merged.highest_tsn;
                d.flags |= dflag::HAS_TSN;
            }
        }
        if new_retrans > 0 {
            let limit = self.cfg.retrans_down_after.max(1);
            let p = &mut self.slab[slot].paths[pi];
            if p.retrans_no_progress >= limit && p.state != PathState::Down {
                p.state = PathState::Down;
                out.push(self.path_event(slot, pi, crate::event::EventKind::PathDown, now));
            }
        }
        if merged.flags & PATH_FLAG_HAS_SACK != 0 {
            self.on_cum_ack(slot, e, merged.sack_cum_tsn, now, out);
        }
        true
    }
}
