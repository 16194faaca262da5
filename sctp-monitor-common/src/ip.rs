//! The IP rule that the kernel programs (`sctp-monitor-ebpf/src/l3.rs`,
//! `packet.rs`) and the userspace decoder (`sctp-monitor/src/decode/packet.rs`)
//! both follow, as they follow [`crate::l2`]: what `replay` makes of a frame
//! is what the live agent makes of the same bytes. Each step names the
//! outcome it gives ([`IpError`], or "not SCTP"). The decoder calls the
//! functions below; the kernel writes the same steps out with these
//! constants, in the shape its verifier prunes best (calling the functions
//! there raised the programs' processed instructions by 40-100%), and
//! `tests/framing_live_offline.rs` holds the two to one outcome per frame.
//!
//! 1. The transport protocol decides first, from fixed fields: IPv4's
//!    protocol byte ([`IPV4_PROTO_OFFSET`]); IPv6's next header
//!    ([`IPV6_NEXT_OFFSET`]) unless it is an extension header
//!    ([`is_ipv6_ext`]), which the full walk follows. Neither SCTP nor UDP:
//!    not SCTP, whatever else the header holds. UDP with neither port the
//!    encapsulation port (RFC 6951): not SCTP.
//! 2. The IP header in full. IPv4 ([`ipv4`]): version 4, a header length of
//!    at least 20 bytes and a total length not below it (else
//!    [`IpError::BadHeader`]); the total length within the bytes present
//!    ([`IpError::Truncated`]); not a later fragment
//!    ([`IpError::LaterFragment`]). IPv6 ([`ipv6`]): version 6, the payload
//!    length within the bytes present; then at most
//!    [`MAX_IPV6_EXT_HEADERS`] extension headers ([`ipv6_ext_len`]): a later
//!    fragment stops the walk ([`IpError::LaterFragment`]), an extension
//!    header still next after the limit is [`IpError::ExtHeaderLimit`], an
//!    upper-layer header starting past the payload [`IpError::BadHeader`],
//!    an extension header cut short [`IpError::Truncated`].
//! 3. UDP ([`udp_end`]): a length of at least [`UDP_HLEN`] within the IP
//!    payload, else [`IpError::Truncated`]; the SCTP packet is the UDP
//!    payload. Then the SCTP common header within what is left
//!    ([`IpError::Truncated`]).
//!
//! A frame is parsed with [`Bounds::Whole`] (every frame the kernel sees,
//! every capture record holding its whole packet). A capture record cut by
//! the capture's snap length ([`Bounds::Cut`]: its captured length below its
//! original length) is read leniently: lengths past the bytes captured are
//! taken as running to the end of them, not as a truncated packet.

use crate::counters;

/// Bytes of an IPv4 header without options.
pub const IPV4_MIN_HLEN: usize = 20;
/// Bytes of the fixed IPv6 header.
pub const IPV6_HLEN: usize = 40;
/// Offset of IPv4's protocol byte.
pub const IPV4_PROTO_OFFSET: usize = 9;
/// Offset of IPv6's next-header byte.
pub const IPV6_NEXT_OFFSET: usize = 6;
pub const IPPROTO_UDP: u8 = 17;
pub const UDP_HLEN: usize = 8;
/// IPv6 extension headers walked at most.
pub const MAX_IPV6_EXT_HEADERS: usize = 8;

pub const NEXTHDR_HOP: u8 = 0;
pub const NEXTHDR_ROUTING: u8 = 43;
pub const NEXTHDR_FRAGMENT: u8 = 44;
pub const NEXTHDR_AUTH: u8 = 51;
pub const NEXTHDR_DEST: u8 = 60;

/// Why a frame's IP layer is not read as SCTP (besides "not SCTP").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IpError {
    /// A header cut short, or a length field past the bytes present.
    Truncated,
    /// A version, header length or total length that cannot be.
    BadHeader,
    /// More extension headers than [`MAX_IPV6_EXT_HEADERS`].
    ExtHeaderLimit,
    /// A non-first fragment: its SCTP header is in the first.
    LaterFragment,
}

impl IpError {
    /// The kernel's counter of this outcome ([`crate::counters`]).
    #[inline(always)]
    pub const fn counter(self) -> u32 {
        match self {
            IpError::Truncated => counters::MALFORMED_TRUNCATED,
            IpError::BadHeader => counters::MALFORMED_IP_HEADER,
            IpError::ExtHeaderLimit => counters::MALFORMED_EXT_HDR_LIMIT,
            IpError::LaterFragment => counters::NON_FIRST_FRAGMENT,
        }
    }
}

/// How length fields are held against the bytes present.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bounds {
    /// The bytes are the whole packet: a length past them is truncation.
    Whole,
    /// A capture record cut by the snap length: a length past the bytes
    /// runs to their end.
    Cut,
}

impl Bounds {
    /// `len` held against `avail`: the end it gives, or truncation.
    #[inline(always)]
    pub const fn end(self, len: usize, avail: usize) -> Result<usize, IpError> {
        if len <= avail {
            Ok(len)
        } else {
            match self {
                Bounds::Whole => Err(IpError::Truncated),
                Bounds::Cut => Ok(avail),
            }
        }
    }
}

/// An IPv4 header read by [`ipv4`]: its length, where the IP packet ends
/// (from the header's first byte) and the transport protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ipv4 {
    pub hlen: usize,
    pub end: usize,
    pub proto: u8,
}

/// Step 2 for IPv4: `h` is the header's first 20 bytes, `avail` the bytes
/// present from its first byte on.
#[inline(always)]
pub const fn ipv4(h: &[u8; IPV4_MIN_HLEN], avail: usize, bounds: Bounds) -> Result<Ipv4, IpError> {
    if h[0] >> 4 != 4 {
        return Err(IpError::BadHeader);
    }
    let hlen = ((h[0] & 0x0f) as usize) * 4;
    let total = u16::from_be_bytes([h[2], h[3]]) as usize;
    if hlen < IPV4_MIN_HLEN || total < hlen {
        return Err(IpError::BadHeader);
    }
    let end = match bounds.end(total, avail) {
        Ok(e) => e,
        Err(e) => return Err(e),
    };
    if u16::from_be_bytes([h[6], h[7]]) & 0x1fff != 0 {
        return Err(IpError::LaterFragment);
    }
    Ok(Ipv4 { hlen, end, proto: h[IPV4_PROTO_OFFSET] })
}

/// Step 2 for IPv6's fixed header: where the IP packet ends (from the
/// header's first byte). `h` is the fixed header, `avail` the bytes present
/// from its first byte on.
#[inline(always)]
pub const fn ipv6(h: &[u8; IPV6_HLEN], avail: usize, bounds: Bounds) -> Result<usize, IpError> {
    if h[0] >> 4 != 6 {
        return Err(IpError::BadHeader);
    }
    let payload = u16::from_be_bytes([h[4], h[5]]) as usize;
    bounds.end(IPV6_HLEN + payload, avail)
}

/// Whether IPv6 next header `next` is an extension header the walk steps
/// over.
#[inline(always)]
pub const fn is_ipv6_ext(next: u8) -> bool {
    matches!(next, NEXTHDR_HOP | NEXTHDR_ROUTING | NEXTHDR_FRAGMENT | NEXTHDR_AUTH | NEXTHDR_DEST)
}

/// The length of extension header `next` (one of [`is_ipv6_ext`]) from its
/// second byte: 8-byte units after the first for hop-by-hop, routing and
/// destination options; 4-byte units after the first two for AH; 8 for a
/// fragment header.
#[inline(always)]
pub const fn ipv6_ext_len(next: u8, len_byte: u8) -> usize {
    match next {
        NEXTHDR_AUTH => (len_byte as usize + 2) * 4,
        NEXTHDR_FRAGMENT => 8,
        _ => (len_byte as usize + 1) * 8,
    }
}

/// Whether a fragment header's offset field (bytes 2-3) is a later
/// fragment's.
#[inline(always)]
pub const fn is_later_fragment(offset_field: u16) -> bool {
    offset_field & 0xfff8 != 0
}

/// Step 3: where the SCTP packet in a UDP datagram ends. `udp` is the UDP
/// header's offset, `ulen` its length field, `end` where the IP packet
/// ends.
#[inline(always)]
pub const fn udp_end(udp: usize, ulen: usize, end: usize, bounds: Bounds) -> Result<usize, IpError> {
    if ulen < UDP_HLEN {
        return Err(IpError::Truncated);
    }
    bounds.end(udp + ulen, end)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v4(hlen_words: u8, total: u16, frag: u16) -> [u8; 20] {
        let mut h = [0u8; 20];
        h[0] = 0x40 | hlen_words;
        h[2..4].copy_from_slice(&total.to_be_bytes());
        h[6..8].copy_from_slice(&frag.to_be_bytes());
        h[9] = 132;
        h
    }

    #[test]
    fn ipv4_header_lengths_and_fragments() {
        assert_eq!(ipv4(&v4(5, 60, 0), 60, Bounds::Whole), Ok(Ipv4 { hlen: 20, end: 60, proto: 132 }));
        assert_eq!(ipv4(&v4(6, 60, 0), 80, Bounds::Whole), Ok(Ipv4 { hlen: 24, end: 60, proto: 132 }));
        assert_eq!(ipv4(&v4(4, 60, 0), 60, Bounds::Whole), Err(IpError::BadHeader), "IHL below 5");
        assert_eq!(ipv4(&v4(6, 20, 0), 60, Bounds::Whole), Err(IpError::BadHeader), "total below the header");
        assert_eq!(ipv4(&v4(5, 0, 0), 60, Bounds::Cut), Err(IpError::BadHeader), "even in a cut record");
        assert_eq!(ipv4(&v4(5, 100, 0), 60, Bounds::Whole), Err(IpError::Truncated));
        assert_eq!(ipv4(&v4(5, 100, 0), 60, Bounds::Cut), Ok(Ipv4 { hlen: 20, end: 60, proto: 132 }));
        assert_eq!(ipv4(&v4(5, 60, 0x2000), 60, Bounds::Whole).map(|h| h.end), Ok(60), "MF alone: first fragment");
        assert_eq!(ipv4(&v4(5, 60, 1), 60, Bounds::Whole), Err(IpError::LaterFragment));
        let mut six = v4(5, 60, 0);
        six[0] = 0x65;
        assert_eq!(ipv4(&six, 60, Bounds::Whole), Err(IpError::BadHeader), "version 6 under IPv4's EtherType");
    }

    #[test]
    fn ipv6_payload_length_and_extension_headers() {
        let mut h = [0u8; 40];
        h[0] = 0x60;
        h[4..6].copy_from_slice(&100u16.to_be_bytes());
        assert_eq!(ipv6(&h, 140, Bounds::Whole), Ok(140));
        assert_eq!(ipv6(&h, 100, Bounds::Whole), Err(IpError::Truncated));
        assert_eq!(ipv6(&h, 100, Bounds::Cut), Ok(100));
        h[0] = 0x40;
        assert_eq!(ipv6(&h, 140, Bounds::Whole), Err(IpError::BadHeader));
        for n in [NEXTHDR_HOP, NEXTHDR_ROUTING, NEXTHDR_FRAGMENT, NEXTHDR_AUTH, NEXTHDR_DEST] {
            assert!(is_ipv6_ext(n));
        }
        for n in [6, 17, 58, 59, 132, 135] {
            assert!(!is_ipv6_ext(n), "{n}");
        }
        assert_eq!(ipv6_ext_len(NEXTHDR_HOP, 0), 8);
        assert_eq!(ipv6_ext_len(NEXTHDR_DEST, 2), 24);
        assert_eq!(ipv6_ext_len(NEXTHDR_AUTH, 4), 24);
        assert_eq!(ipv6_ext_len(NEXTHDR_FRAGMENT, 99), 8);
        assert!(!is_later_fragment(0x0001), "M flag alone");
        assert!(is_later_fragment(0x0008));
    }

    #[test]
    fn udp_length_against_the_ip_payload() {
        assert_eq!(udp_end(20, 40, 60, Bounds::Whole), Ok(60));
        assert_eq!(udp_end(20, 30, 60, Bounds::Whole), Ok(50), "IP padding after the datagram");
        assert_eq!(udp_end(20, 7, 60, Bounds::Whole), Err(IpError::Truncated));
        assert_eq!(udp_end(20, 80, 60, Bounds::Whole), Err(IpError::Truncated));
        assert_eq!(udp_end(20, 80, 60, Bounds::Cut), Ok(60));
        assert_eq!(IpError::LaterFragment.counter(), counters::NON_FIRST_FRAGMENT);
    }
}
