//! IPv4 (with options and fragments) and IPv6 (with a bounded walk of its
//! extension headers), by the IP rule of `sctp_monitor_common::ip`.

use sctp_monitor_common::{
    counters,
    ip::{self, Bounds, IPV4_MIN_HLEN, IPV6_HLEN, MAX_IPV6_EXT_HEADERS, NEXTHDR_FRAGMENT},
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
    let h = ptr_at::<[u8; IPV4_MIN_HLEN], P>(p, cur.off).ok_or(counters::MALFORMED_TRUNCATED)?;
    // SAFETY: ptr_at proved the 20 bytes are in the packet.
    let h = unsafe { &*h };
    let avail = (p.end() - p.start()).saturating_sub(cur.off);
    let v = ip::ipv4(h, avail, Bounds::Whole).map_err(ip::IpError::counter)?;
    meta.ip_version = 4;
    meta.ip_len = v.end as u32;
    meta.src[..4].copy_from_slice(&h[12..16]);
    meta.dst[..4].copy_from_slice(&h[16..20]);
    let end = cur.off + v.end;
    cur.off += v.hlen;
    Ok(L3 { proto: v.proto, end })
}

#[inline(always)]
pub fn ipv6<P: Packet>(p: &P, cur: &mut Cursor, meta: &mut Meta) -> Result<L3, u32> {
    let h = ptr_at::<[u8; IPV6_HLEN], P>(p, cur.off).ok_or(counters::MALFORMED_TRUNCATED)?;
    // SAFETY: ptr_at proved the 40 bytes are in the packet.
    let h = unsafe { &*h };
    let avail = (p.end() - p.start()).saturating_sub(cur.off);
    let len = ip::ipv6(h, avail, Bounds::Whole).map_err(ip::IpError::counter)?;
    let end = cur.off + len;
    meta.ip_version = 6;
    meta.ip_len = len as u32;
    meta.src.copy_from_slice(&h[8..24]);
    meta.dst.copy_from_slice(&h[24..40]);
    cur.off += IPV6_HLEN;
    let mut next = h[ip::IPV6_NEXT_OFFSET];
    for _ in 0..MAX_IPV6_EXT_HEADERS {
        if !ip::is_ipv6_ext(next) {
            break;
        }
        let e = read::<[u8; 4], P>(p, cur.off).ok_or(counters::MALFORMED_TRUNCATED)?;
        if next == NEXTHDR_FRAGMENT && ip::is_later_fragment(u16::from_be_bytes([e[2], e[3]])) {
            return Err(counters::NON_FIRST_FRAGMENT);
        }
        cur.off += ip::ipv6_ext_len(next, e[1]);
        next = e[0];
    }
    if ip::is_ipv6_ext(next) {
        return Err(counters::MALFORMED_EXT_HDR_LIMIT);
    }
    if cur.off > end {
        return Err(counters::MALFORMED_IP_HEADER);
    }
    Ok(L3 { proto: next, end })
}
