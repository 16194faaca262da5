//! Live per-path counters read from the kernel's `PATHS` map. The kernel
//! sends DATA records only for first DATA on a path, path changes and
//! resumption, so DATA packets, bytes, retransmissions, the highest TSN and
//! SACK cumulative acks come from here.

use sctp_monitor_common::sctp::tsn_gt;
use sctp_monitor_common::stats::{PATH_FLAG_HAS_SACK, PATH_FLAG_HAS_TSN};
use sctp_monitor_common::{PathKey, PathStats};

use crate::event::Event;

use super::Tracker;
use super::assoc::{A16, dflag, ms};

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
    pub fn observe_path_stats(&mut self, key: &PathKey, merged: &PathStats, now: u64, out: &mut Vec<Event>) -> bool {
        self.now_ns = self.now_ns.max(now);
        let src = key_addr(&key.src_addr, key.ip_version);
        let dst = key_addr(&key.dst_addr, key.ip_version);
        let Some((slot, e)) = self.find_tag_at(key.vtag, key.src_port, key.dst_port, || Some((src, dst))) else {
            return false;
        };
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
        // The kernel counts a retransmission on the path that carries it,
        // which during a failover is the healthy alternate: shown, but not
        // evidence against that path (path down comes from heartbeats and
        // from the failover rule).
        p.retransmissions = retrans;
        p.q.set_from_kernel(merged);
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
        if merged.flags & PATH_FLAG_HAS_SACK != 0 {
            self.on_cum_ack(slot, e, merged.sack_cum_tsn, now, out);
        }
        self.rearm(slot, now);
        true
    }
}

#[cfg(test)]
mod retrans_tests {
    use sctp_monitor_common::{PathKey, PathStats, stats::PATH_FLAG_HAS_TSN};

    use crate::{
        craft::{self, FrameBuilder, InitSpec},
        decode::{DecodeStats, LinkType, parse_frame},
        tracker::{Config, Tracker},
    };

    #[test]
    fn kernel_retransmissions_on_the_carrying_path_do_not_take_it_down() {
        let (a, b) = ("10.0.0.1".parse().unwrap(), "10.0.0.2".parse().unwrap());
        let mut t = Tracker::new(Config::default());
        let mut ev = Vec::new();
        let mut st = DecodeStats::default();
        let frames = [
            FrameBuilder::ipv4(a, b).sctp(1, 1, 0).chunk(craft::init(&InitSpec::new(0x11, 1))).build(),
            FrameBuilder::ipv4(b, a).sctp(1, 1, 0x11).chunk(craft::init_ack(&InitSpec::new(0x22, 1))).build(),
            FrameBuilder::ipv4(a, b).sctp(1, 1, 0x22).chunk(craft::data(1, 0, 0, 0, &[0; 8])).build(),
        ];
        for (i, f) in frames.iter().enumerate() {
            let pkt = parse_frame(LinkType::Ethernet, f, i as u64 * 1_000_000, 9899, &mut st).unwrap().unwrap();
            t.process(&pkt.meta, &pkt.chunks, &mut ev);
        }
        let mut key: PathKey = bytemuck::Zeroable::zeroed();
        key.src_addr[..4].copy_from_slice(&[10, 0, 0, 1]);
        key.dst_addr[..4].copy_from_slice(&[10, 0, 0, 2]);
        key.src_port = 1;
        key.dst_port = 1;
        key.vtag = 0x22;
        key.ip_version = 4;
        ev.clear();
        for n in 1..=20u64 {
            let s = PathStats {
                packets: 10 * n,
                data_chunks: 10 * n,
                payload_bytes: 80 * n,
                retransmissions: 5 * n,
                highest_tsn: n as u32,
                flags: PATH_FLAG_HAS_TSN,
                ..Default::default()
            };
            assert!(t.observe_path_stats(&key, &s, 10_000_000 + n * 1_000_000, &mut ev));
        }
        assert!(
            !ev.iter().any(|e| e.to_json_line().contains("path_down")),
            "retransmissions carried by a path are not evidence against it: {ev:?}"
        );
    }
}
