//! IPv4 (with options and fragments) and IPv6 (with a bounded walk of its
//! extension headers), by the IP rule of `sctp_monitor_common::ip`: its
//! constants, and its steps written out here in the shape the verifier
//! prunes best (the rule's own functions, called from here, cost the
//! verifier 40-100% more processed instructions over the whole program).
//! `tests/framing_live_offline.rs` holds this code and the decoder to the
//! same outcome for every edge of the rule.

use sctp_monitor_common::{
    counters,
    ip::{MAX_IPV6_EXT_HEADERS, NEXTHDR_AUTH, NEXTHDR_DEST, NEXTHDR_FRAGMENT, NEXTHDR_HOP, NEXTHDR_ROUTING},
};

use crate::{
    ctx::Packet,
    cursor::{Cursor, ptr_at, read},
    packet::Meta,
};

/// The transport protocol, with the cursor on its header, and where the IP
/// payload ends (frames may carry Ethernet padding past it).
pub struct L3 {
    pub proto: u8,
    pub end: usize,
}

#[inline(always)]
pub fn ipv4<P: Packet>(p: &P, cur: &mut Cursor, meta: &mut Meta) -> Result<L3, u32> {
    // version/IHL, TOS, total length, id, flags/fragment offset, TTL, proto,
    // checksum, src, dst.
    let h = ptr_at::<[u8; 20], P>(p, cur.off).ok_or(counters::MALFORMED_TRUNCATED)?;
    // SAFETY: ptr_at proved the 20 bytes are in the packet.
    let h = unsafe { &*h };
    if h[0] >> 4 != 4 {
        return Err(counters::MALFORMED_IP_HEADER);
    }
    let ihl = ((h[0] & 0x0f) as usize) * 4;
    let total = u16::from_be_bytes([h[2], h[3]]) as usize;
    if ihl < 20 || total < ihl {
        return Err(counters::MALFORMED_IP_HEADER);
    }
    let end = cur.off + total;
    if end > p.end() - p.start() {
        return Err(counters::MALFORMED_TRUNCATED);
    }
    if u16::from_be_bytes([h[6], h[7]]) & 0x1fff != 0 {
        return Err(counters::NON_FIRST_FRAGMENT);
    }
    meta.ip_version = 4;
    meta.ip_len = total as u32;
    meta.src[..4].copy_from_slice(&h[12..16]);
    meta.dst[..4].copy_from_slice(&h[16..20]);
    cur.off += ihl;
    Ok(L3 { proto: h[9], end })
}

#[inline(always)]
pub fn ipv6<P: Packet>(p: &P, cur: &mut Cursor, meta: &mut Meta) -> Result<L3, u32> {
    let h = ptr_at::<[u8; 40], P>(p, cur.off).ok_or(counters::MALFORMED_TRUNCATED)?;
    // SAFETY: ptr_at proved the 40 bytes are in the packet.
    let h = unsafe { &*h };
    if h[0] >> 4 != 6 {
        return Err(counters::MALFORMED_IP_HEADER);
    }
    let payload = u16::from_be_bytes([h[4], h[5]]) as usize;
    let end = cur.off + 40 + payload;
    if end > p.end() - p.start() {
        return Err(counters::MALFORMED_TRUNCATED);
    }
    meta.ip_version = 6;
    meta.ip_len = 40 + payload as u32;
    meta.src.copy_from_slice(&h[8..24]);
    meta.dst.copy_from_slice(&h[24..40]);
    cur.off += 40;
    let mut next = h[6];
    for _ in 0..MAX_IPV6_EXT_HEADERS {
        match next {
            NEXTHDR_HOP | NEXTHDR_ROUTING | NEXTHDR_DEST => {
                let e = read::<[u8; 2], P>(p, cur.off).ok_or(counters::MALFORMED_TRUNCATED)?;
                next = e[0];
                cur.off += (e[1] as usize + 1) * 8;
            }
            NEXTHDR_AUTH => {
                let e = read::<[u8; 2], P>(p, cur.off).ok_or(counters::MALFORMED_TRUNCATED)?;
                next = e[0];
                cur.off += (e[1] as usize + 2) * 4;
            }
            NEXTHDR_FRAGMENT => {
                let e = read::<[u8; 4], P>(p, cur.off).ok_or(counters::MALFORMED_TRUNCATED)?;
                if u16::from_be_bytes([e[2], e[3]]) & 0xfff8 != 0 {
                    return Err(counters::NON_FIRST_FRAGMENT);
                }
                next = e[0];
                cur.off += 8;
            }
            _ => {
                if cur.off > end {
                    return Err(counters::MALFORMED_IP_HEADER);
                }
                return Ok(L3 { proto: next, end });
            }
        }
    }
    match next {
        NEXTHDR_HOP | NEXTHDR_ROUTING | NEXTHDR_DEST | NEXTHDR_AUTH | NEXTHDR_FRAGMENT => {
            Err(counters::MALFORMED_EXT_HDR_LIMIT)
        }
        _ if cur.off > end => Err(counters::MALFORMED_IP_HEADER),
        _ => Ok(L3 { proto: next, end }),
    }
}
