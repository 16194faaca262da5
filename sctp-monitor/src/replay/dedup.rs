//! Copies of one packet in one capture, folded into one.
//!
//! Linux's "any" pseudo-interface (`tcpdump -i any`) records a packet once
//! per place it is seen: on loopback as the outgoing copy and again as the
//! host's incoming copy, on a bridge once per port. The copies carry the
//! same bytes from the IP header on and differ only in the cooked header's
//! packet type (SLL, SLL2) or interface (SLL2's ifindex, pcapng's interface
//! id, the "modified" pcap record's ifindex). Counted twice they look like
//! retransmissions, and every unanswered heartbeat counts double.
//!
//! Rule: a packet is a copy when a packet with the same IP bytes came
//! within [`WINDOW_NS`] from another origin (interface, packet type), and
//! that packet has no copy from this origin yet. The last clause keeps a
//! genuine resend apart: an SCTP retransmission of the same bytes from the
//! same origin is new, and its own copies fold into it, not into the
//! original. Cost: a hash of the first 64 IP bytes per packet and a look at
//! the at most [`RECENT`] packets of the window; nothing is allocated (the
//! packets stay held in the replay's arena a little longer).

use std::collections::VecDeque;

use sctp_monitor_common::l2;

use super::arena::{Arena, Span};
use crate::decode::LinkType;

/// Copies arrive microseconds apart (the same packet crossing two points
/// of one host); a resend takes at least a retransmission timeout.
pub const WINDOW_NS: u64 = 1_000_000;
/// Packets of the window looked at, the most recent.
pub const RECENT: usize = 32;
/// Origins a packet can be seen from, besides its first (an "any" capture
/// on a bridge of up to this many ports more).
const MAX_COPIES: usize = 4;

/// Where a copy was taken: interface and packet type.
pub(super) type Origin = u64;

struct Seen {
    ts: u64,
    hash: u64,
    /// Offset of the IP header in `data`.
    l3: usize,
    origins: [Origin; MAX_COPIES + 1],
    n_origins: u8,
    data: Span,
}

#[derive(Default)]
pub(super) struct Dedup {
    recent: VecDeque<Seen>,
    /// The packet `is_copy` passed last: (time, hash, IP offset, origin).
    pending: Option<(u64, u64, usize, Origin)>,
    /// Copies folded.
    pub folded: u64,
}

/// The IP header's offset in a frame and the frame's origin, or `None`
/// when the frame is too short to say.
pub(super) fn locate(link: LinkType, frame: &[u8], interface: u32, pkt_type: u8) -> Option<(usize, Origin)> {
    let origin = |ifindex: u32, t: u16| (interface as u64) << 48 | (ifindex as u64) << 16 | t as u64;
    let be16 = |o: usize| frame.get(o..o + 2).map(|b| u16::from_be_bytes([b[0], b[1]]));
    Some(match link {
        LinkType::RawIp => (0, origin(0, pkt_type as u16)),
        LinkType::Null => (4, origin(0, pkt_type as u16)),
        // SLL: packet type in the first two bytes.
        LinkType::LinuxSll => (16, origin(0, be16(0)?)),
        // SLL2: ifindex at 4, packet type at 10.
        LinkType::LinuxSll2 => {
            let i = frame.get(4..8)?;
            let t = *frame.get(10)?;
            (20, origin(u32::from_be_bytes([i[0], i[1], i[2], i[3]]), t as u16))
        }
        LinkType::Ethernet => {
            // The link-layer rule (`sctp_monitor_common::l2`).
            let mut off = l2::ETH_TYPE_OFFSET;
            let mut tags = 0;
            while l2::is_vlan_tpid(be16(off)?) && tags < l2::MAX_VLAN_TAGS {
                off += l2::VLAN_TAG_LEN;
                tags += 1;
            }
            (off + 2, origin(0, pkt_type as u16))
        }
    })
}

#[inline]
fn hash(ip: &[u8]) -> u64 {
    let mut h = (ip.len() as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    for c in ip[..ip.len().min(64)].chunks(8) {
        let mut w = [0u8; 8];
        w[..c.len()].copy_from_slice(c);
        h = (h.rotate_left(5) ^ u64::from_le_bytes(w)).wrapping_mul(0x517c_c1b7_2722_0a95);
    }
    h
}

impl Dedup {
    /// Whether the packet held at `span` (IP header at `l3`) is a copy of
    /// one already seen; when not, [`Dedup::keep`] takes it after it was
    /// processed. Packets that left the window are released.
    pub fn is_copy(&mut self, ts: u64, l3: usize, origin: Origin, span: Span, arena: &mut Arena) -> bool {
        self.pending = None;
        while let Some(f) = self.recent.front() {
            if f.ts.saturating_add(WINDOW_NS) >= ts && self.recent.len() < RECENT {
                break;
            }
            if let Some(s) = self.recent.pop_front() {
                arena.release(s.data);
            }
        }
        let data = arena.get(span);
        let Some(ip) = data.get(l3..).filter(|ip| !ip.is_empty()) else {
            return false;
        };
        let h = hash(ip);
        for s in self.recent.iter_mut().rev() {
            if s.hash != h || arena.get(s.data)[s.l3..] != *ip {
                continue;
            }
            if s.origins[..s.n_origins as usize].contains(&origin) {
                // From an origin already seen: a resend (or a copy of
                // another one), not a copy of this one.
                continue;
            }
            if (s.n_origins as usize) < s.origins.len() {
                s.origins[s.n_origins as usize] = origin;
                s.n_origins += 1;
                self.folded += 1;
                return true;
            }
        }
        self.pending = Some((ts, h, l3, origin));
        false
    }

    /// Keeps the packet `is_copy` just passed, for later packets to be
    /// matched against; any other is released.
    pub fn keep(&mut self, data: Span, arena: &mut Arena) {
        match self.pending.take() {
            Some((ts, hash, l3, origin)) => {
                let mut origins = [0; MAX_COPIES + 1];
                origins[0] = origin;
                self.recent.push_back(Seen { ts, hash, l3, origins, n_origins: 1, data });
            }
            None => arena.release(data),
        }
    }

    /// Releases every kept packet.
    pub fn drain(&mut self, arena: &mut Arena) {
        for s in self.recent.drain(..) {
            arena.release(s.data);
        }
    }
}
