//! Whole frames and IP packets: link layer (Ethernet with VLAN tags, Linux
//! cooked SLL / SLL2, BSD loopback, raw IP), IPv4 (options, fragments), IPv6
//! (extension header chain), SCTP directly (protocol 132) or over UDP
//! (RFC 6951) -> [`Packet`]: a [`PacketMeta`] plus its chunks.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use sctp_monitor_common::RecordKind;
use sctp_monitor_common::ip::{self, Bounds, IpError};
use sctp_monitor_common::l2;
use sctp_monitor_common::sctp::{COMMON_HEADER_LEN, IPPROTO_SCTP};

use super::chunk::{Chunk, walk_chunks};
use super::{DecodeError, DecodeStats, get16, get32};

/// Where a packet came from and what it carried, besides its chunks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PacketMeta {
    /// Wall-clock time, nanoseconds since the Unix epoch.
    pub ts_ns: u64,
    pub src: IpAddr,
    pub dst: IpAddr,
    pub src_port: u16,
    pub dst_port: u16,
    pub vtag: u32,
    /// UDP ports when carried over UDP (RFC 6951).
    pub udp_ports: Option<(u16, u16)>,
    /// IP bytes of the packet (from the IP header's length fields).
    pub ip_len: u32,
    /// The packet carried a PAD chunk (with HEARTBEAT: a PMTU probe).
    pub bundled_pad: bool,
    /// Set when built from a kernel record (its kind): DATA/SACK counters
    /// then come from the per-path maps, not from counting records.
    pub record: Option<RecordKind>,
    /// Capture interface (pcapng interface id) or kernel ifindex.
    pub interface: u32,
    /// A DATA record's packet as the kernel judged it (`None` for captures,
    /// where the tracker sees every chunk and judges alike).
    pub kdata: Option<KernelData>,
}

/// What the kernel saw of a DATA record's whole packet: the record carries
/// one chunk, the verdict covers them all.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct KernelData {
    /// The record's chunk is new DATA (TSN above every TSN the direction
    /// sent before).
    pub new: bool,
    /// Retransmitted DATA chunks in the packet.
    pub rtx_chunks: u16,
    /// The highest TSN of the retransmitted chunks.
    pub high_rtx_tsn: u32,
}

/// A decoded packet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Packet {
    pub meta: PacketMeta,
    pub chunks: Vec<Chunk>,
}

/// Link-layer framing of a capture.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkType {
    Ethernet,
    /// Linux cooked capture v1 (16-byte header).
    LinuxSll,
    /// Linux cooked capture v2 (20-byte header).
    LinuxSll2,
    /// IPv4 or IPv6 by the version nibble (DLT_RAW, LINKTYPE_IPV4/IPV6).
    RawIp,
    /// BSD loopback: 4-byte address family then IP.
    Null,
}

/// Parses a frame holding its whole packet. `Ok(None)`: not SCTP (other
/// protocols, UDP on other ports). `Err`: a header that does not parse or a
/// non-first fragment. The same rules as the kernel programs':
/// `sctp_monitor_common::l2` and `sctp_monitor_common::ip`.
pub fn parse_frame(
    link: LinkType,
    frame: &[u8],
    ts_ns: u64,
    udp_port: u16,
    stats: &mut DecodeStats,
) -> Result<Option<Packet>, DecodeError> {
    parse_frame_in(link, frame, Bounds::Whole, ts_ns, udp_port, stats)
}

/// [`parse_frame`] with the frame's [`Bounds`]: a capture record cut by
/// the snap length (`Bounds::Cut`) is read leniently, its length fields
/// taken to run to the end of the bytes captured.
pub fn parse_frame_in(
    link: LinkType,
    frame: &[u8],
    bounds: Bounds,
    ts_ns: u64,
    udp_port: u16,
    stats: &mut DecodeStats,
) -> Result<Option<Packet>, DecodeError> {
    let (ip, version) = match link {
        LinkType::RawIp => (frame, None),
        LinkType::Null => (frame.get(4..).ok_or(short("loopback header", frame.len(), 4))?, None),
        LinkType::LinuxSll => {
            let proto = get16(frame, 14).ok_or(short("SLL header", frame.len(), 16))?;
            match ip_version(proto) {
                Some(v) => (frame.get(16..).unwrap_or(&[]), Some(v)),
                None => return Ok(None),
            }
        }
        LinkType::LinuxSll2 => {
            let proto = get16(frame, 0).ok_or(short("SLL2 header", frame.len(), 20))?;
            if frame.len() < 20 {
                return Err(short("SLL2 header", frame.len(), 20));
            }
            match ip_version(proto) {
                Some(v) => (frame.get(20..).unwrap_or(&[]), Some(v)),
                None => return Ok(None),
            }
        }
        LinkType::Ethernet => {
            // The kernel programs' rule (`sctp_monitor_common::l2`).
            let mut off = l2::ETH_TYPE_OFFSET;
            let mut et = get16(frame, off).ok_or(short("Ethernet header", frame.len(), l2::ETH_HLEN))?;
            for _ in 0..l2::MAX_VLAN_TAGS {
                if !l2::is_vlan_tpid(et) {
                    break;
                }
                off += l2::VLAN_TAG_LEN;
                et = get16(frame, off).ok_or(short("VLAN tag", frame.len(), off + 2))?;
            }
            match ip_version(et) {
                Some(v) => (frame.get(off + 2..).unwrap_or(&[]), Some(v)),
                None => return Ok(None),
            }
        }
    };
    parse_ip_in(ip, version, bounds, ts_ns, udp_port, stats)
}

/// The IP version an EtherType announces (`None`: not IP).
fn ip_version(et: u16) -> Option<u8> {
    match et {
        l2::ETH_P_IP => Some(4),
        l2::ETH_P_IPV6 => Some(6),
        _ => None,
    }
}

fn short(what: &'static str, have: usize, need: usize) -> DecodeError {
    DecodeError::TooShort { what, have, need }
}

/// Parses a whole IP packet (v4 or v6 by its version nibble).
pub fn parse_ip(ip: &[u8], ts_ns: u64, udp_port: u16, stats: &mut DecodeStats) -> Result<Option<Packet>, DecodeError> {
    parse_ip_in(ip, None, Bounds::Whole, ts_ns, udp_port, stats)
}

/// The IP rule of `sctp_monitor_common::ip`, step by step. `version`: what
/// the link layer announced (`None`: the version nibble decides, raw IP).
fn parse_ip_in(
    ip: &[u8],
    version: Option<u8>,
    bounds: Bounds,
    ts_ns: u64,
    udp_port: u16,
    stats: &mut DecodeStats,
) -> Result<Option<Packet>, DecodeError> {
    let version = match version {
        Some(v) => v,
        None => *ip.first().ok_or(short("IP header", 0, ip::IPV4_MIN_HLEN))? >> 4,
    };
    // 1. The transport protocol first, from fixed fields.
    let first = match version {
        4 => {
            let b = ip.get(..=ip::IPV4_PROTO_OFFSET).ok_or(short("IPv4 header", ip.len(), ip::IPV4_MIN_HLEN))?;
            Some((b[ip::IPV4_PROTO_OFFSET], ((b[0] & 0x0f) as usize) * 4))
        }
        6 => {
            let b = ip.get(..ip::IPV6_NEXT_OFFSET + 2).ok_or(short("IPv6 header", ip.len(), ip::IPV6_HLEN))?;
            let next = b[ip::IPV6_NEXT_OFFSET];
            (!ip::is_ipv6_ext(next)).then_some((next, ip::IPV6_HLEN))
        }
        _ => return Err(DecodeError::BadIp("IP version")),
    };
    if let Some((proto, l4)) = first {
        match proto {
            IPPROTO_SCTP => {}
            ip::IPPROTO_UDP => {
                if let (Some(sp), Some(dp)) = (get16(ip, l4), get16(ip, l4 + 2))
                    && sp != udp_port
                    && dp != udp_port
                {
                    return Ok(None);
                }
            }
            _ => return Ok(None),
        }
    }
    // 2. The IP header in full.
    let (src, dst, proto, mut off, end, ip_len) = if version == 4 {
        let h: &[u8; ip::IPV4_MIN_HLEN] = ip.first_chunk().ok_or(short("IPv4 header", ip.len(), ip::IPV4_MIN_HLEN))?;
        let total = u16::from_be_bytes([h[2], h[3]]) as usize;
        let v = ip::ipv4(h, ip.len(), bounds).map_err(|e| ip_error(e, "IPv4 packet", ip.len(), total))?;
        let s: [u8; 4] = h[12..16].try_into().unwrap_or_default();
        let d: [u8; 4] = h[16..20].try_into().unwrap_or_default();
        (IpAddr::V4(Ipv4Addr::from(s)), IpAddr::V4(Ipv4Addr::from(d)), v.proto, v.hlen, v.end, total)
    } else {
        let h: &[u8; ip::IPV6_HLEN] = ip.first_chunk().ok_or(short("IPv6 header", ip.len(), ip::IPV6_HLEN))?;
        let total = ip::IPV6_HLEN + u16::from_be_bytes([h[4], h[5]]) as usize;
        let end = ip::ipv6(h, ip.len(), bounds).map_err(|e| ip_error(e, "IPv6 packet", ip.len(), total))?;
        let s: [u8; 16] = h[8..24].try_into().unwrap_or_default();
        let d: [u8; 16] = h[24..40].try_into().unwrap_or_default();
        let mut next = h[ip::IPV6_NEXT_OFFSET];
        let mut off = ip::IPV6_HLEN;
        for _ in 0..ip::MAX_IPV6_EXT_HEADERS {
            if !ip::is_ipv6_ext(next) {
                break;
            }
            // A fragment header's offset is read; of the others, the next
            // header and the length (the kernel reads the same bytes).
            let need = if next == ip::NEXTHDR_FRAGMENT { 4 } else { 2 };
            let e = ip.get(off..off + need).ok_or(short("IPv6 extension header", ip.len(), off + need))?;
            if next == ip::NEXTHDR_FRAGMENT && ip::is_later_fragment(u16::from_be_bytes([e[2], e[3]])) {
                return Err(DecodeError::Fragment);
            }
            off += ip::ipv6_ext_len(next, e[1]);
            next = e[0];
        }
        if ip::is_ipv6_ext(next) {
            return Err(DecodeError::Ip(IpError::ExtHeaderLimit));
        }
        if off > end {
            return Err(DecodeError::Ip(IpError::BadHeader));
        }
        (IpAddr::V6(Ipv6Addr::from(s)), IpAddr::V6(Ipv6Addr::from(d)), next, off, end, total)
    };
    // 3. UDP, then the SCTP packet.
    let mut end = end;
    let udp_ports = match proto {
        IPPROTO_SCTP => None,
        ip::IPPROTO_UDP => {
            let u: &[u8; ip::UDP_HLEN] =
                ip.get(off..).and_then(|r| r.first_chunk()).ok_or(short("UDP header", ip.len(), off + ip::UDP_HLEN))?;
            let (sp, dp) = (u16::from_be_bytes([u[0], u[1]]), u16::from_be_bytes([u[2], u[3]]));
            if sp != udp_port && dp != udp_port {
                return Ok(None);
            }
            let ulen = u16::from_be_bytes([u[4], u[5]]) as usize;
            end = ip::udp_end(off, ulen, end, bounds)
                .map_err(|_| short("UDP datagram", end - off, ulen.max(ip::UDP_HLEN)))?;
            off += ip::UDP_HLEN;
            Some((sp, dp))
        }
        _ => return Ok(None),
    };
    let sctp = ip.get(off..end).unwrap_or(&[]);
    parse_sctp(sctp, ts_ns, src, dst, udp_ports, ip_len as u32, stats).map(Some)
}

/// A refusal of the IP rule as a decode error: a length past the bytes
/// present is a packet too short, as the kernel counts it.
fn ip_error(e: IpError, what: &'static str, have: usize, need: usize) -> DecodeError {
    match e {
        IpError::Truncated => short(what, have, need),
        IpError::LaterFragment => DecodeError::Fragment,
        e => DecodeError::Ip(e),
    }
}

/// Parses an SCTP packet (common header + chunks) seen between `src` and
/// `dst`.
pub fn parse_sctp(
    sctp: &[u8],
    ts_ns: u64,
    src: IpAddr,
    dst: IpAddr,
    udp_ports: Option<(u16, u16)>,
    ip_len: u32,
    stats: &mut DecodeStats,
) -> Result<Packet, DecodeError> {
    if sctp.len() < COMMON_HEADER_LEN {
        return Err(short("SCTP common header", sctp.len(), COMMON_HEADER_LEN));
    }
    let mut chunks = Vec::new();
    walk_chunks(sctp.get(COMMON_HEADER_LEN..).unwrap_or(&[]), stats, &mut chunks);
    let bundled_pad = chunks.iter().any(|c| matches!(c, Chunk::Pad { .. }));
    Ok(Packet {
        meta: PacketMeta {
            ts_ns,
            src,
            dst,
            src_port: get16(sctp, 0).unwrap_or(0),
            dst_port: get16(sctp, 2).unwrap_or(0),
            vtag: get32(sctp, 4).unwrap_or(0),
            udp_ports,
            ip_len,
            bundled_pad,
            record: None,
            kdata: None,
            interface: 0,
        },
        chunks,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::craft::{self, ExtHeader, FrameBuilder};

    fn v4(s: &str) -> Ipv4Addr {
        s.parse().expect("addr")
    }

    #[test]
    fn ethernet_qinq_ipv4_options_sctp() {
        let f = FrameBuilder::ipv4(v4("10.0.0.1"), v4("10.0.0.2"))
            .vlan(0x88A8, 1)
            .vlan(0x8100, 2)
            .ip_options(&[1, 1, 1, 1])
            .sctp(5000, 3868, 0xfeed)
            .chunk(craft::data(1, 0, 0, 46, b"hi"))
            .build();
        let mut st = DecodeStats::default();
        let p = parse_frame(LinkType::Ethernet, &f, 7, 9899, &mut st).expect("parses").expect("is SCTP");
        assert_eq!(p.meta.src, IpAddr::V4(v4("10.0.0.1")));
        assert_eq!((p.meta.src_port, p.meta.dst_port, p.meta.vtag), (5000, 3868, 0xfeed));
        assert_eq!(p.meta.ts_ns, 7);
        assert_eq!(p.meta.ip_len as usize, f.len() - 22);
        assert_eq!(p.chunks.len(), 1);
    }

    #[test]
    fn ipv6_ext_headers_and_udp_encap() {
        let f = FrameBuilder::ipv6("fd00::1".parse().expect("a"), "fd00::2".parse().expect("a"))
            .ext_header(ExtHeader::HopByHop(1))
            .ext_header(ExtHeader::DestOpts(0))
            .ext_header(ExtHeader::Routing(0))
            .ext_header(ExtHeader::Fragment { offset: 0, more: true, id: 1 })
            .udp_encap(40000, 9899)
            .sctp(1, 2, 3)
            .chunk(craft::heartbeat(b"x"))
            .build();
        let mut st = DecodeStats::default();
        let p = parse_frame(LinkType::Ethernet, &f, 0, 9899, &mut st).expect("parses").expect("is SCTP");
        assert_eq!(p.meta.udp_ports, Some((40000, 9899)));
        assert_eq!(p.chunks, vec![Chunk::Heartbeat { info: crate::decode::HbInfo::of(b"x") }]);
        // Another UDP port: not SCTP.
        assert_eq!(parse_frame(LinkType::Ethernet, &f, 0, 1234, &mut st).expect("parses"), None);
    }

    #[test]
    fn non_first_fragments_are_reported() {
        let f = FrameBuilder::ipv4(v4("1.1.1.1"), v4("2.2.2.2")).fragment(10, false).sctp(1, 2, 3).build();
        let mut st = DecodeStats::default();
        assert_eq!(parse_frame(LinkType::Ethernet, &f, 0, 9899, &mut st), Err(DecodeError::Fragment));
        let f = FrameBuilder::ipv6("::1".parse().expect("a"), "::2".parse().expect("a"))
            .ext_header(ExtHeader::Fragment { offset: 3, more: false, id: 1 })
            .sctp(1, 2, 3)
            .raw_ip()
            .build();
        assert_eq!(parse_frame(LinkType::RawIp, &f, 0, 9899, &mut st), Err(DecodeError::Fragment));
    }

    #[test]
    fn sll_and_sll2() {
        let ip = FrameBuilder::ipv4(v4("1.1.1.1"), v4("2.2.2.2")).sctp(1, 2, 3).chunk(craft::cookie_ack()).build_ip();
        let mut sll = vec![0u8; 14];
        sll.extend_from_slice(&0x0800u16.to_be_bytes());
        sll.extend_from_slice(&ip);
        let mut sll2 = 0x0800u16.to_be_bytes().to_vec();
        sll2.extend_from_slice(&[0; 18]);
        sll2.extend_from_slice(&ip);
        let mut st = DecodeStats::default();
        for (lt, f) in [(LinkType::LinuxSll, sll), (LinkType::LinuxSll2, sll2)] {
            let p = parse_frame(lt, &f, 0, 9899, &mut st).expect("parses").expect("is SCTP");
            assert_eq!(p.chunks, vec![Chunk::CookieAck], "{lt:?}");
        }
    }

    #[test]
    fn truncated_frames_never_panic() {
        let f = FrameBuilder::ipv6("fd00::1".parse().expect("a"), "fd00::2".parse().expect("a"))
            .vlan(0x8100, 5)
            .ext_header(ExtHeader::HopByHop(2))
            .udp_encap(9899, 9899)
            .sctp(1, 2, 3)
            .chunk(craft::init_ack(
                &craft::InitSpec::new(1, 2).addrs(&["fd00::5".parse().expect("a")]).cookie(50, craft::CookiePos::After),
            ))
            .build();
        let mut st = DecodeStats::default();
        let mut ok = 0;
        for n in 0..=f.len() {
            for lt in [LinkType::Ethernet, LinkType::RawIp, LinkType::LinuxSll, LinkType::LinuxSll2, LinkType::Null] {
                for b in [Bounds::Whole, Bounds::Cut] {
                    if let Ok(Some(_)) = parse_frame_in(lt, &f[..n], b, 0, 9899, &mut st) {
                        ok += 1;
                    }
                }
            }
        }
        assert!(ok > 0);
        // Cut inside the INIT-ACK by a snap length: the packet still parses,
        // chunk truncated. The same bytes as a whole frame are a packet
        // shorter than its IP header says.
        let mut st = DecodeStats::default();
        let cut = f.len() - 30;
        assert!(matches!(
            parse_frame(LinkType::Ethernet, &f[..cut], 0, 9899, &mut st),
            Err(DecodeError::TooShort { what: "IPv6 packet", .. })
        ));
        let p = parse_frame_in(LinkType::Ethernet, &f[..cut], Bounds::Cut, 0, 9899, &mut st)
            .expect("parses")
            .expect("is SCTP");
        assert!(matches!(p.chunks[0], Chunk::InitAck(_)));
        assert_eq!(st.truncated_chunks, 1);
    }
}
