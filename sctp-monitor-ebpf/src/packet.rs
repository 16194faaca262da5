//! One frame's way through the parser: Ethernet -> IP -> (UDP) -> SCTP.

use sctp_monitor_common::{
    config::CONFIG_FLAG_UDP_ENCAP,
    counters,
    ip::{self, IPPROTO_UDP, UDP_HLEN},
    record::RECORD_FLAG_UDP_ENCAP,
    sctp::{COMMON_HEADER_LEN, CommonHeader, IPPROTO_SCTP},
};

use sctp_monitor_common::{PathKey, PathStats};

use crate::{
    addr,
    aggregate::PacketData,
    counters::bump,
    ctx::Packet,
    cursor::{Cursor, ptr_at, read},
    emit::ParamWalk,
    l2, l3, maps,
    sctp::{self, WalkState},
};

/// Per-packet state, in the per-CPU `SCRATCH` map rather than on the stack.
#[repr(C)]
pub struct Scratch {
    pub meta: Meta,
    pub pd: PacketData,
    /// A path key in memory, for the bench probes (the programs build the
    /// key in registers: see `paths::key_words`).
    pub key: PathKey,
    pub zero_stats: PathStats,
    /// The chunk walk's state between iterations: see `sctp`.
    pub walk: WalkState,
    /// The INIT-ACK parameter walk's state: see `emit`.
    pub params: ParamWalk,
}

/// What the parser learned about the packet before the chunks.
#[repr(C)]
pub struct Meta {
    pub src: [u8; 16],
    pub dst: [u8; 16],
    /// CLOCK_MONOTONIC_COARSE (one tick's resolution, a few ns to read):
    /// the per-path summaries' times and the idle test, read by
    /// `aggregate::finish` only for packets with DATA or SACK. Records carry
    /// the precise clock, read when one is written.
    pub ts: u64,
    pub ifindex: u32,
    pub vtag: u32,
    pub ip_len: u32,
    pub src_port: u16,
    pub dst_port: u16,
    pub udp_src_port: u16,
    pub udp_dst_port: u16,
    pub ip_version: u8,
    /// `RECORD_FLAG_*`.
    pub flags: u8,
}

/// Where the SCTP packet is: its first chunk and its end.
pub struct Sctp {
    pub chunks: usize,
    pub end: usize,
}

/// A frame that may be SCTP: its ethertype and where its IP header starts,
/// so the full parse continues from there instead of redoing Ethernet/VLAN.
struct Candidate {
    ethertype: u16,
    l3: usize,
}

/// Whether the frame can be SCTP, decided from fixed header fields before
/// any map is touched, so traffic that is not SCTP costs a few loads and one
/// counter. `Err` carries the counter of a frame too short to tell.
#[inline(always)]
fn maybe_sctp<P: Packet>(p: &P) -> Result<Option<Candidate>, u32> {
    let mut cur = Cursor { off: 0 };
    let ethertype = l2::parse(p, &mut cur)?;
    let yes = Ok(Some(Candidate { ethertype, l3: cur.off }));
    let (proto, l4) = match ethertype {
        l2::ETH_P_IP => {
            let h = ptr_at::<[u8; ip::IPV4_PROTO_OFFSET + 1], P>(p, cur.off).ok_or(counters::MALFORMED_TRUNCATED)?;
            // SAFETY: ptr_at proved the bytes are in the packet.
            let h = unsafe { &*h };
            (h[ip::IPV4_PROTO_OFFSET], cur.off + ((h[0] & 0x0f) as usize) * 4)
        }
        l2::ETH_P_IPV6 => {
            let h = ptr_at::<[u8; ip::IPV6_NEXT_OFFSET + 2], P>(p, cur.off).ok_or(counters::MALFORMED_TRUNCATED)?;
            // SAFETY: as above.
            let h = unsafe { &*h };
            match h[ip::IPV6_NEXT_OFFSET] {
                // Extension headers: let the full parser walk them.
                n if ip::is_ipv6_ext(n) => return yes,
                n => (n, cur.off + ip::IPV6_HLEN),
            }
        }
        _ => return Ok(None),
    };
    match proto {
        IPPROTO_SCTP => yes,
        IPPROTO_UDP => {
            if crate::config!(flags) & CONFIG_FLAG_UDP_ENCAP == 0 {
                return Ok(None);
            }
            // Too short for the ports: the full parser counts it.
            let Some(u) = ptr_at::<[u8; 4], P>(p, l4) else { return yes };
            // SAFETY: as above.
            let u = unsafe { &*u };
            let port = crate::config!(udp_encap_port).to_be_bytes();
            if u[0..2] == port || u[2..4] == port { yes } else { Ok(None) }
        }
        _ => Ok(None),
    }
}

/// Parses one frame and accounts for it. Never fails: every outcome is a
/// counter (exactly one per frame: `NOT_SCTP`, `SCTP_PACKETS`,
/// `NON_FIRST_FRAGMENT` or a `MALFORMED_*` reason).
#[inline(always)]
pub fn process<P: Packet>(p: &P) {
    let cand = match maybe_sctp(p) {
        Ok(Some(c)) => c,
        Ok(None) => {
            bump::<P>(counters::NOT_SCTP);
            return;
        }
        Err(counter) => {
            bump::<P>(counter);
            return;
        }
    };
    let Some(scratch) = maps::SCRATCH.get_ptr_mut(0) else {
        return;
    };
    // SAFETY: this CPU's scratch entry, used by one program run at a time
    // (XDP and TC do not nest on a CPU for the same packet path).
    let scratch = unsafe { &mut *scratch };
    let meta = &mut scratch.meta;
    addr::clear(&mut meta.src);
    addr::clear(&mut meta.dst);
    meta.flags = 0;
    meta.udp_src_port = 0;
    meta.udp_dst_port = 0;
    match locate(p, meta, cand) {
        Ok(Some(s)) => {
            bump::<P>(counters::SCTP_PACKETS);
            meta.ifindex = p.ifindex();
            scratch.pd.reset();
            sctp::walk(p, scratch, &s);
        }
        Ok(None) => {
            bump::<P>(counters::NOT_SCTP);
        }
        Err(counter) => {
            bump::<P>(counter);
        }
    }
}

/// Finds the SCTP packet in a candidate frame: `Ok(None)` when it is not
/// SCTP after all (IPv6 extension headers leading elsewhere).
#[inline(always)]
fn locate<P: Packet>(p: &P, meta: &mut Meta, cand: Candidate) -> Result<Option<Sctp>, u32> {
    let mut cur = Cursor { off: cand.l3 };
    let l3 = match cand.ethertype {
        l2::ETH_P_IP => l3::ipv4(p, &mut cur, meta)?,
        l2::ETH_P_IPV6 => l3::ipv6(p, &mut cur, meta)?,
        _ => return Ok(None),
    };
    let mut end = l3.end;
    match l3.proto {
        IPPROTO_SCTP => {}
        IPPROTO_UDP => {
            if crate::config!(flags) & CONFIG_FLAG_UDP_ENCAP == 0 {
                return Ok(None);
            }
            let encap_port = crate::config!(udp_encap_port);
            let u = read::<[u8; 8], P>(p, cur.off).ok_or(counters::MALFORMED_TRUNCATED)?;
            let sport = u16::from_be_bytes([u[0], u[1]]);
            let dport = u16::from_be_bytes([u[2], u[3]]);
            if sport != encap_port && dport != encap_port {
                return Ok(None);
            }
            let ulen = u16::from_be_bytes([u[4], u[5]]) as usize;
            if ulen < UDP_HLEN || cur.off + ulen > end {
                return Err(counters::MALFORMED_TRUNCATED);
            }
            end = cur.off + ulen;
            meta.udp_src_port = sport;
            meta.udp_dst_port = dport;
            meta.flags |= RECORD_FLAG_UDP_ENCAP;
            cur.off += UDP_HLEN;
            bump::<P>(counters::UDP_ENCAP_PACKETS);
        }
        _ => return Ok(None),
    }
    let h = read::<CommonHeader, P>(p, cur.off).ok_or(counters::MALFORMED_TRUNCATED)?;
    if cur.off + COMMON_HEADER_LEN > end {
        return Err(counters::MALFORMED_TRUNCATED);
    }
    meta.src_port = h.src_port();
    meta.dst_port = h.dst_port();
    meta.vtag = h.vtag();
    Ok(Some(Sctp { chunks: cur.off + COMMON_HEADER_LEN, end }))
}
