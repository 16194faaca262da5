//! Whole frames and IP packets: link layer (Ethernet with VLAN tags, Linux
//! cooked SLL / SLL2, BSD loopback, raw IP), IPv4 (options, fragments), IPv6
//! (extension header chain), SCTP directly (protocol 132) or over UDP
//! (RFC 6951) -> [`Packet`]: a [`PacketMeta`] plus its chunks.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use sctp_monitor_common::RecordKind;
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

/// Parses a frame. `Ok(None)`: not SCTP (other protocols, UDP on other
/// ports). `Err`: a header that does not parse or a non-first fragment.
pub fn parse_frame(
    link: LinkType,
    frame: &[u8],
    ts_ns: u64,
    udp_port: u16,
    stats: &mut DecodeStats,
) -> Result<Option<Packet>, DecodeError> {
    let ip = match link {
        LinkType::RawIp => frame,
        LinkType::Null => frame.get(4..).ok_or(short("loopback header", frame.len(), 4))?,
        LinkType::LinuxSll => {
            let proto = get16(frame, 14).ok_or(short("SLL header", frame.len(), 16))?;
            match ip_ethertype(proto) {
                Some(()) => frame.get(16..).unwrap_or(&[]),
                None => return Ok(None),
            }
        }
        LinkType::LinuxSll2 => {
            let proto = get16(frame, 0).ok_or(short("SLL2 header", frame.len(), 20))?;
            if frame.len() < 20 {
                return Err(short("SLL2 header", frame.len(), 20));
            }
            match ip_ethertype(proto) {
                Some(()) => frame.get(20..).unwrap_or(&[]),
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
            match ip_ethertype(et) {
                Some(()) => frame.get(off + 2..).unwrap_or(&[]),
                None => return Ok(None),
            }
        }
    };
    parse_ip(ip, ts_ns, udp_port, stats)
}

fn ip_ethertype(et: u16) -> Option<()> {
    l2::is_ip(et).then_some(())
}

fn short(what: &'static str, have: usize, need: usize) -> DecodeError {
    DecodeError::TooShort { what, have, need }
}

/// Parses an IP packet (v4 or v6 by its version nibble).
pub fn parse_ip(ip: &[u8], ts_ns: u64, udp_port: u16, stats: &mut DecodeStats) -> Result<Option<Packet>, DecodeError> {
    let first = *ip.first().ok_or(short("IP header", 0, 20))?;
    let (src, dst, proto, l4, ip_len) = match first >> 4 {
        4 => {
            if ip.len() < 20 {
                return Err(short("IPv4 header", ip.len(), 20));
            }
            let ihl = ((first & 0x0f) as usize) * 4;
            if ihl < 20 || ihl > ip.len() {
                return Err(DecodeError::BadIp("IPv4 header length"));
            }
            let total = get16(ip, 2).unwrap_or(0) as usize;
            let frag = get16(ip, 6).unwrap_or(0);
            if frag & 0x1fff != 0 {
                return Err(DecodeError::Fragment);
            }
            let end = if total >= ihl { total.min(ip.len()) } else { ip.len() };
            let s: [u8; 4] = ip.get(12..16).and_then(|s| s.try_into().ok()).ok_or(DecodeError::BadIp("IPv4"))?;
            let d: [u8; 4] = ip.get(16..20).and_then(|s| s.try_into().ok()).ok_or(DecodeError::BadIp("IPv4"))?;
            let proto = ip.get(9).copied().unwrap_or(0);
            (
                IpAddr::V4(Ipv4Addr::from(s)),
                IpAddr::V4(Ipv4Addr::from(d)),
                proto,
                ip.get(ihl..end).unwrap_or(&[]),
                if total > 0 { total } else { ip.len() },
            )
        }
        6 => {
            if ip.len() < 40 {
                return Err(short("IPv6 header", ip.len(), 40));
            }
            let plen = get16(ip, 4).unwrap_or(0) as usize;
            let s: [u8; 16] = ip.get(8..24).and_then(|s| s.try_into().ok()).ok_or(DecodeError::BadIp("IPv6"))?;
            let d: [u8; 16] = ip.get(24..40).and_then(|s| s.try_into().ok()).ok_or(DecodeError::BadIp("IPv6"))?;
            let end = if plen == 0 { ip.len() } else { (40 + plen).min(ip.len()) };
            let mut next = ip.get(6).copied().unwrap_or(0);
            let mut off = 40usize;
            // Bounded walk over the extension header chain.
            for _ in 0..8 {
                match next {
                    0 | 43 | 60 => {
                        let n = ip.get(off).copied().ok_or(DecodeError::BadIp("IPv6 extension header"))?;
                        let l = ip.get(off + 1).copied().ok_or(DecodeError::BadIp("IPv6 extension header"))?;
                        next = n;
                        off += (l as usize + 1) * 8;
                    }
                    44 => {
                        let n = ip.get(off).copied().ok_or(DecodeError::BadIp("IPv6 fragment header"))?;
                        let fo = get16(ip, off + 2).ok_or(DecodeError::BadIp("IPv6 fragment header"))?;
                        if fo >> 3 != 0 {
                            return Err(DecodeError::Fragment);
                        }
                        next = n;
                        off += 8;
                    }
                    51 => {
                        let n = ip.get(off).copied().ok_or(DecodeError::BadIp("IPv6 AH"))?;
                        let l = ip.get(off + 1).copied().ok_or(DecodeError::BadIp("IPv6 AH"))?;
                        next = n;
                        off += (l as usize + 2) * 4;
                    }
                    _ => break,
                }
            }
            if off > end {
                return Err(DecodeError::BadIp("IPv6 extension headers past the payload"));
            }
            (
                IpAddr::V6(Ipv6Addr::from(s)),
                IpAddr::V6(Ipv6Addr::from(d)),
                next,
                ip.get(off..end).unwrap_or(&[]),
                if plen > 0 { 40 + plen } else { ip.len() },
            )
        }
        _ => return Err(DecodeError::BadIp("IP version")),
    };
    let (sctp, udp_ports) = match proto {
        IPPROTO_SCTP => (l4, None),
        17 => {
            let (Some(sp), Some(dp)) = (get16(l4, 0), get16(l4, 2)) else {
                return Err(short("UDP header", l4.len(), 8));
            };
            if sp != udp_port && dp != udp_port {
                return Ok(None);
            }
            (l4.get(8..).ok_or(short("UDP header", l4.len(), 8))?, Some((sp, dp)))
        }
        _ => return Ok(None),
    };
    parse_sctp(sctp, ts_ns, src, dst, udp_ports, ip_len as u32, stats).map(Some)
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
                if let Ok(Some(_)) = parse_frame(lt, &f[..n], 0, 9899, &mut st) {
                    ok += 1;
                }
            }
        }
        assert!(ok > 0);
        // Cut inside the INIT-ACK: the packet still parses, chunk truncated.
        let mut st = DecodeStats::default();
        let cut = f.len() - 30;
        let p = parse_frame(LinkType::Ethernet, &f[..cut], 0, 9899, &mut st).expect("parses").expect("is SCTP");
        assert!(matches!(p.chunks[0], Chunk::InitAck(_)));
        assert_eq!(st.truncated_chunks, 1);
    }
}
