//! Builders for SCTP test, benchmark and fuzz frames: pure `Vec<u8>` code.
//!
//! Three layers, each usable alone:
//! - chunk builders ([`data`], [`init`], [`sack`], [`heartbeat`], ...) return
//!   one chunk *without* its trailing padding; the length field is exact;
//! - [`sctp_packet`] puts a common header in front of chunks, pads each chunk
//!   to 4 bytes and computes the CRC32c checksum;
//! - [`FrameBuilder`] wraps the SCTP packet in UDP (RFC 6951), IPv4 / IPv6
//!   (options, fragments, extension headers) and Ethernet with 0, 1 or 2
//!   VLAN tags, with correct IPv4 and UDP checksums.
//!
//! Nothing here validates its input: builders are meant to make malformed
//! frames too (see [`raw_chunk_with_len`] and [`FrameBuilder::sctp_raw`]).
//!
//! [`wire`] sends such frames between two endpoints through the decoder
//! into a tracker.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use sctp_monitor_common::sctp::{chunk, param};

pub mod wire;

// ---------------------------------------------------------------- CRC32c

/// CRC32c (Castagnoli, reflected polynomial 0x82F63B78) lookup table.
const CRC32C_TABLE: [u32; 256] = {
    let mut table = [0u32; 256];
    let mut i = 0;
    while i < 256 {
        let mut crc = i as u32;
        let mut k = 0;
        while k < 8 {
            crc = if crc & 1 != 0 { (crc >> 1) ^ 0x82F6_3B78 } else { crc >> 1 };
            k += 1;
        }
        table[i] = crc;
        i += 1;
    }
    table
};

/// The CRC32c of `bytes` (standard check value: `crc32c(b"123456789") ==
/// 0xE306_9283`).
pub fn crc32c(bytes: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in bytes {
        crc = CRC32C_TABLE[((crc ^ b as u32) & 0xff) as usize] ^ (crc >> 8);
    }
    !crc
}

/// The SCTP checksum field of `packet` (common header + chunks) as it goes on
/// the wire: CRC32c over the packet with the checksum field zeroed, stored in
/// little-endian byte order (RFC 9260 Appendix A). Returns the 4 wire bytes.
pub fn sctp_checksum(packet: &[u8]) -> [u8; 4] {
    let mut crc = !0u32;
    for (i, &b) in packet.iter().enumerate() {
        let b = if (8..12).contains(&i) { 0 } else { b };
        crc = CRC32C_TABLE[((crc ^ b as u32) & 0xff) as usize] ^ (crc >> 8);
    }
    (!crc).to_le_bytes()
}

// ---------------------------------------------------------------- helpers

fn pad4(v: &mut Vec<u8>) {
    while !v.len().is_multiple_of(4) {
        v.push(0);
    }
}

/// A chunk: header with `len = 4 + value.len()`, then the value (no padding).
pub fn raw_chunk(chunk_type: u8, flags: u8, value: &[u8]) -> Vec<u8> {
    let len = (4 + value.len()).min(u16::MAX as usize) as u16;
    raw_chunk_with_len(chunk_type, flags, len, value)
}

/// A chunk whose length field says `len` whatever the value holds (for
/// malformed and truncated input).
pub fn raw_chunk_with_len(chunk_type: u8, flags: u8, len: u16, value: &[u8]) -> Vec<u8> {
    let mut v = Vec::with_capacity(4 + value.len());
    v.push(chunk_type);
    v.push(flags);
    v.extend_from_slice(&len.to_be_bytes());
    v.extend_from_slice(value);
    v
}

/// A TLV parameter padded to 4 bytes (length field excludes the padding).
pub fn param(param_type: u16, value: &[u8]) -> Vec<u8> {
    let mut v = Vec::with_capacity(4 + value.len() + 3);
    v.extend_from_slice(&param_type.to_be_bytes());
    v.extend_from_slice(&((4 + value.len()).min(u16::MAX as usize) as u16).to_be_bytes());
    v.extend_from_slice(value);
    pad4(&mut v);
    v
}

/// An IPv4 (type 5) or IPv6 (type 6) Address parameter.
pub fn addr_param(addr: IpAddr) -> Vec<u8> {
    match addr {
        IpAddr::V4(a) => param(param::IPV4_ADDRESS, &a.octets()),
        IpAddr::V6(a) => param(param::IPV6_ADDRESS, &a.octets()),
    }
}

/// An error cause (same TLV shape as a parameter): cause code + information.
pub fn error_cause(code: u16, info: &[u8]) -> Vec<u8> {
    param(code, info)
}

// ---------------------------------------------------------------- chunks

/// DATA flags.
pub mod data_flags {
    pub const I: u8 = 0x08;
    pub const U: u8 = 0x04;
    pub const B: u8 = 0x02;
    pub const E: u8 = 0x01;
    /// A whole unfragmented message.
    pub const BE: u8 = B | E;
}

/// A DATA chunk carrying a whole message (flags B|E).
pub fn data(tsn: u32, stream: u16, ssn: u16, ppid: u32, payload: &[u8]) -> Vec<u8> {
    data_with_flags(data_flags::BE, tsn, stream, ssn, ppid, payload)
}

/// A DATA chunk with explicit flags.
pub fn data_with_flags(flags: u8, tsn: u32, stream: u16, ssn: u16, ppid: u32, payload: &[u8]) -> Vec<u8> {
    let mut v = Vec::with_capacity(12 + payload.len());
    v.extend_from_slice(&tsn.to_be_bytes());
    v.extend_from_slice(&stream.to_be_bytes());
    v.extend_from_slice(&ssn.to_be_bytes());
    v.extend_from_slice(&ppid.to_be_bytes());
    v.extend_from_slice(payload);
    raw_chunk(chunk::DATA, flags, &v)
}

/// An I-DATA chunk (RFC 8260): TSN, stream, reserved, message id, PPID (when
/// B is set) or FSN.
pub fn i_data(flags: u8, tsn: u32, stream: u16, mid: u32, ppid_or_fsn: u32, payload: &[u8]) -> Vec<u8> {
    let mut v = Vec::with_capacity(16 + payload.len());
    v.extend_from_slice(&tsn.to_be_bytes());
    v.extend_from_slice(&stream.to_be_bytes());
    v.extend_from_slice(&0u16.to_be_bytes());
    v.extend_from_slice(&mid.to_be_bytes());
    v.extend_from_slice(&ppid_or_fsn.to_be_bytes());
    v.extend_from_slice(payload);
    raw_chunk(chunk::I_DATA, flags, &v)
}

/// A SACK: cumulative TSN ack, a_rwnd, gap ack blocks (start, end offsets
/// from the cumulative ack) and duplicate TSNs.
pub fn sack(cum_tsn: u32, a_rwnd: u32, gaps: &[(u16, u16)], dups: &[u32]) -> Vec<u8> {
    let mut v = Vec::with_capacity(12 + gaps.len() * 4 + dups.len() * 4);
    v.extend_from_slice(&cum_tsn.to_be_bytes());
    v.extend_from_slice(&a_rwnd.to_be_bytes());
    v.extend_from_slice(&(gaps.len() as u16).to_be_bytes());
    v.extend_from_slice(&(dups.len() as u16).to_be_bytes());
    for (s, e) in gaps {
        v.extend_from_slice(&s.to_be_bytes());
        v.extend_from_slice(&e.to_be_bytes());
    }
    for d in dups {
        v.extend_from_slice(&d.to_be_bytes());
    }
    raw_chunk(chunk::SACK, 0, &v)
}

/// Where the State Cookie goes relative to the address parameters.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum CookiePos {
    /// Cookie first, then the addresses (Linux order).
    #[default]
    Before,
    /// Addresses first, then the cookie.
    After,
}

/// Fields and parameters of an INIT or INIT-ACK.
#[derive(Clone, Debug)]
pub struct InitSpec {
    pub initiate_tag: u32,
    pub a_rwnd: u32,
    pub out_streams: u16,
    pub in_streams: u16,
    pub initial_tsn: u32,
    /// IPv4/IPv6 Address parameters, in order.
    pub addrs: Vec<IpAddr>,
    /// A State Cookie of this many bytes (INIT-ACK), placed per `cookie_pos`.
    pub cookie_len: Option<usize>,
    pub cookie_pos: CookiePos,
    /// Further raw parameters (already padded, e.g. from [`param`]) appended
    /// at the end.
    pub extra_params: Vec<Vec<u8>>,
}

impl InitSpec {
    /// An INIT/INIT-ACK with typical values and no parameters.
    pub fn new(initiate_tag: u32, initial_tsn: u32) -> InitSpec {
        InitSpec {
            initiate_tag,
            a_rwnd: 106_496,
            out_streams: 10,
            in_streams: 65_535,
            initial_tsn,
            addrs: Vec::new(),
            cookie_len: None,
            cookie_pos: CookiePos::Before,
            extra_params: Vec::new(),
        }
    }

    /// Adds address parameters.
    pub fn addrs(mut self, addrs: &[IpAddr]) -> InitSpec {
        self.addrs.extend_from_slice(addrs);
        self
    }

    /// Adds a State Cookie of `len` bytes at `pos`.
    pub fn cookie(mut self, len: usize, pos: CookiePos) -> InitSpec {
        self.cookie_len = Some(len);
        self.cookie_pos = pos;
        self
    }

    fn value(&self) -> Vec<u8> {
        let mut v = Vec::with_capacity(64);
        v.extend_from_slice(&self.initiate_tag.to_be_bytes());
        v.extend_from_slice(&self.a_rwnd.to_be_bytes());
        v.extend_from_slice(&self.out_streams.to_be_bytes());
        v.extend_from_slice(&self.in_streams.to_be_bytes());
        v.extend_from_slice(&self.initial_tsn.to_be_bytes());
        let cookie = self.cookie_len.map(|n| {
            let body: Vec<u8> = (0..n).map(|i| (i as u8).wrapping_mul(31).wrapping_add(7)).collect();
            param(param::STATE_COOKIE, &body)
        });
        if self.cookie_pos == CookiePos::Before
            && let Some(c) = &cookie
        {
            v.extend_from_slice(c);
        }
        for a in &self.addrs {
            v.extend_from_slice(&addr_param(*a));
        }
        if self.cookie_pos == CookiePos::After
            && let Some(c) = &cookie
        {
            v.extend_from_slice(c);
        }
        for p in &self.extra_params {
            v.extend_from_slice(p);
        }
        v
    }
}

/// An INIT chunk.
pub fn init(spec: &InitSpec) -> Vec<u8> {
    raw_chunk(chunk::INIT, 0, &spec.value())
}

/// An INIT-ACK chunk.
pub fn init_ack(spec: &InitSpec) -> Vec<u8> {
    raw_chunk(chunk::INIT_ACK, 0, &spec.value())
}

/// A HEARTBEAT carrying `info` in a Heartbeat Info parameter.
pub fn heartbeat(info: &[u8]) -> Vec<u8> {
    raw_chunk(chunk::HEARTBEAT, 0, &param(param::HEARTBEAT_INFO, info))
}

/// A HEARTBEAT-ACK echoing `info`.
pub fn heartbeat_ack(info: &[u8]) -> Vec<u8> {
    raw_chunk(chunk::HEARTBEAT_ACK, 0, &param(param::HEARTBEAT_INFO, info))
}

/// An ABORT; `t` sets the T flag (the packet then carries the sender's own
/// tag). `causes` are error causes built with [`error_cause`].
pub fn abort(t: bool, causes: &[Vec<u8>]) -> Vec<u8> {
    raw_chunk(chunk::ABORT, if t { chunk::FLAG_T } else { 0 }, &causes.concat())
}

/// An ERROR chunk with causes.
pub fn error(causes: &[Vec<u8>]) -> Vec<u8> {
    raw_chunk(chunk::ERROR, 0, &causes.concat())
}

/// SHUTDOWN with its cumulative TSN ack.
pub fn shutdown(cum_tsn: u32) -> Vec<u8> {
    raw_chunk(chunk::SHUTDOWN, 0, &cum_tsn.to_be_bytes())
}

/// SHUTDOWN-ACK.
pub fn shutdown_ack() -> Vec<u8> {
    raw_chunk(chunk::SHUTDOWN_ACK, 0, &[])
}

/// SHUTDOWN-COMPLETE, `t` = T flag.
pub fn shutdown_complete(t: bool) -> Vec<u8> {
    raw_chunk(chunk::SHUTDOWN_COMPLETE, if t { chunk::FLAG_T } else { 0 }, &[])
}

/// COOKIE-ECHO carrying `cookie`.
pub fn cookie_echo(cookie: &[u8]) -> Vec<u8> {
    raw_chunk(chunk::COOKIE_ECHO, 0, cookie)
}

/// COOKIE-ACK.
pub fn cookie_ack() -> Vec<u8> {
    raw_chunk(chunk::COOKIE_ACK, 0, &[])
}

/// PAD chunk with `n` bytes of padding value.
pub fn pad(n: usize) -> Vec<u8> {
    raw_chunk(chunk::PAD, 0, &vec![0u8; n])
}

/// RE-CONFIG chunk carrying raw (padded) parameters.
pub fn reconfig(params: &[Vec<u8>]) -> Vec<u8> {
    raw_chunk(chunk::RECONFIG, 0, &params.concat())
}

/// FORWARD-TSN: new cumulative TSN, then (stream, sequence) pairs.
pub fn forward_tsn(new_cum_tsn: u32, streams: &[(u16, u16)]) -> Vec<u8> {
    let mut v = new_cum_tsn.to_be_bytes().to_vec();
    for (s, q) in streams {
        v.extend_from_slice(&s.to_be_bytes());
        v.extend_from_slice(&q.to_be_bytes());
    }
    raw_chunk(chunk::FORWARD_TSN, 0, &v)
}

/// AUTH chunk (RFC 4895): shared key id, HMAC id, HMAC bytes.
pub fn auth(key_id: u16, hmac_id: u16, hmac: &[u8]) -> Vec<u8> {
    let mut v = key_id.to_be_bytes().to_vec();
    v.extend_from_slice(&hmac_id.to_be_bytes());
    v.extend_from_slice(hmac);
    raw_chunk(chunk::AUTH, 0, &v)
}

/// One ASCONF request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AsconfReq {
    Add { corr_id: u32, addr: IpAddr },
    Delete { corr_id: u32, addr: IpAddr },
    SetPrimary { corr_id: u32, addr: IpAddr },
}

impl AsconfReq {
    fn bytes(&self) -> Vec<u8> {
        let (t, corr, addr) = match *self {
            AsconfReq::Add { corr_id, addr } => (param::ADD_IP, corr_id, addr),
            AsconfReq::Delete { corr_id, addr } => (param::DELETE_IP, corr_id, addr),
            AsconfReq::SetPrimary { corr_id, addr } => (param::SET_PRIMARY, corr_id, addr),
        };
        let mut v = corr.to_be_bytes().to_vec();
        v.extend_from_slice(&addr_param(addr));
        param(t, &v)
    }
}

/// An ASCONF: serial, the sender's address parameter, then the requests.
pub fn asconf(serial: u32, addr: IpAddr, reqs: &[AsconfReq]) -> Vec<u8> {
    let mut v = serial.to_be_bytes().to_vec();
    v.extend_from_slice(&addr_param(addr));
    for r in reqs {
        v.extend_from_slice(&r.bytes());
    }
    raw_chunk(chunk::ASCONF, 0, &v)
}

/// One ASCONF-ACK result.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AsconfResult {
    /// Success Indication for a correlation id.
    Success { corr_id: u32 },
    /// Error Cause Indication: the request failed with these causes (built
    /// with [`error_cause`]).
    Error { corr_id: u32, causes: Vec<Vec<u8>> },
}

/// An ASCONF-ACK with the same serial as the ASCONF it answers. Requests not
/// listed succeeded.
pub fn asconf_ack(serial: u32, results: &[AsconfResult]) -> Vec<u8> {
    let mut v = serial.to_be_bytes().to_vec();
    for r in results {
        match r {
            AsconfResult::Success { corr_id } => {
                v.extend_from_slice(&param(param::SUCCESS_INDICATION, &corr_id.to_be_bytes()));
            }
            AsconfResult::Error { corr_id, causes } => {
                let mut body = corr_id.to_be_bytes().to_vec();
                body.extend_from_slice(&causes.concat());
                v.extend_from_slice(&param(param::ERROR_CAUSE_INDICATION, &body));
            }
        }
    }
    raw_chunk(chunk::ASCONF_ACK, 0, &v)
}

/// A small deterministic xorshift64 generator for fuzz loops, tests and
/// benchmarks: the same seed gives the same frames on every run.
#[derive(Clone, Debug)]
pub struct XorShift(u64);

impl XorShift {
    /// A zero seed would stay zero; it is replaced by 1.
    pub fn new(seed: u64) -> XorShift {
        XorShift(if seed == 0 { 1 } else { seed })
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    /// Uniform-ish in `0..n` (`n` of 0 gives 0).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n.max(1) as u64) as usize
    }
}

// ---------------------------------------------------------------- packet

/// An SCTP packet: common header, chunks each padded to 4, valid CRC32c.
pub fn sctp_packet(src_port: u16, dst_port: u16, vtag: u32, chunks: &[Vec<u8>]) -> Vec<u8> {
    let mut v = Vec::with_capacity(12 + chunks.iter().map(|c| c.len() + 3).sum::<usize>());
    v.extend_from_slice(&src_port.to_be_bytes());
    v.extend_from_slice(&dst_port.to_be_bytes());
    v.extend_from_slice(&vtag.to_be_bytes());
    v.extend_from_slice(&[0; 4]);
    for c in chunks {
        v.extend_from_slice(c);
        pad4(&mut v);
    }
    let sum = sctp_checksum(&v);
    v[8..12].copy_from_slice(&sum);
    v
}

// ---------------------------------------------------------------- frames

/// EtherTypes used by the frame builder.
pub mod ethertype {
    pub const IPV4: u16 = 0x0800;
    pub const IPV6: u16 = 0x86DD;
    pub const VLAN: u16 = 0x8100;
    pub const QINQ: u16 = 0x88A8;
    /// The pre-standard QinQ outer TPID.
    pub const QINQ_9100: u16 = 0x9100;
}

/// An IPv6 extension header for [`FrameBuilder::ext_header`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExtHeader {
    /// Hop-by-hop options with `len` 8-octet units beyond the first 8 bytes.
    HopByHop(u8),
    /// Routing header (type 4 / segment routing shape, zero segments left).
    Routing(u8),
    /// Destination options.
    DestOpts(u8),
    /// Fragment header: offset in 8-octet units, M flag, identification.
    Fragment { offset: u16, more: bool, id: u32 },
}

impl ExtHeader {
    fn proto(&self) -> u8 {
        match self {
            ExtHeader::HopByHop(_) => 0,
            ExtHeader::Routing(_) => 43,
            ExtHeader::DestOpts(_) => 60,
            ExtHeader::Fragment { .. } => 44,
        }
    }

    fn bytes(&self, next: u8) -> Vec<u8> {
        match *self {
            ExtHeader::HopByHop(n) | ExtHeader::DestOpts(n) => {
                let mut v = vec![0u8; 8 + n as usize * 8];
                v[0] = next;
                v[1] = n;
                // PadN option covering the rest.
                v[2] = 1;
                v[3] = (v.len() - 4) as u8;
                v
            }
            ExtHeader::Routing(n) => {
                let mut v = vec![0u8; 8 + n as usize * 8];
                v[0] = next;
                v[1] = n;
                v[2] = 4;
                v[3] = 0;
                v
            }
            ExtHeader::Fragment { offset, more, id } => {
                let mut v = vec![next, 0];
                v.extend_from_slice(&((offset << 3) | more as u16).to_be_bytes());
                v.extend_from_slice(&id.to_be_bytes());
                v
            }
        }
    }
}

#[derive(Clone, Debug)]
enum L3 {
    V4 { src: Ipv4Addr, dst: Ipv4Addr, options: Vec<u8>, frag_offset: u16, more_fragments: bool, ttl: u8 },
    V6 { src: Ipv6Addr, dst: Ipv6Addr, ext: Vec<ExtHeader> },
}

/// Builds a whole frame around an SCTP packet:
/// `FrameBuilder::ipv4(a, b).vlan(0x8100, 10).udp_encap(9899, 9899)
///  .sctp(5000, 5001, tag).chunk(craft::data(..)).build()`.
#[derive(Clone, Debug)]
pub struct FrameBuilder {
    l3: L3,
    ethernet: bool,
    vlans: Vec<(u16, u16)>,
    udp: Option<(u16, u16)>,
    sctp: (u16, u16, u32),
    chunks: Vec<Vec<u8>>,
    raw_sctp: Option<Vec<u8>>,
    src_mac: [u8; 6],
    dst_mac: [u8; 6],
}

impl FrameBuilder {
    fn new(l3: L3) -> FrameBuilder {
        FrameBuilder {
            l3,
            ethernet: true,
            vlans: Vec::new(),
            udp: None,
            sctp: (0, 0, 0),
            chunks: Vec::new(),
            raw_sctp: None,
            src_mac: [0x02, 0, 0, 0, 0, 1],
            dst_mac: [0x02, 0, 0, 0, 0, 2],
        }
    }

    /// An IPv4 packet from `src` to `dst`.
    pub fn ipv4(src: Ipv4Addr, dst: Ipv4Addr) -> FrameBuilder {
        FrameBuilder::new(L3::V4 { src, dst, options: Vec::new(), frag_offset: 0, more_fragments: false, ttl: 64 })
    }

    /// An IPv6 packet from `src` to `dst`.
    pub fn ipv6(src: Ipv6Addr, dst: Ipv6Addr) -> FrameBuilder {
        FrameBuilder::new(L3::V6 { src, dst, ext: Vec::new() })
    }

    /// IPv4 or IPv6 by the addresses' family; a mixed pair becomes IPv6 with
    /// the IPv4 address mapped.
    pub fn ip(src: IpAddr, dst: IpAddr) -> FrameBuilder {
        match (src, dst) {
            (IpAddr::V4(s), IpAddr::V4(d)) => FrameBuilder::ipv4(s, d),
            _ => {
                let v6 = |a: IpAddr| match a {
                    IpAddr::V4(a) => a.to_ipv6_mapped(),
                    IpAddr::V6(a) => a,
                };
                FrameBuilder::ipv6(v6(src), v6(dst))
            }
        }
    }

    /// Adds a VLAN tag (outermost first): `tpid` 0x8100, 0x88a8 or 0x9100
    /// (or any other value, to build a frame the parsers must not take as
    /// tagged).
    pub fn vlan(mut self, tpid: u16, vid: u16) -> FrameBuilder {
        self.vlans.push((tpid, vid & 0x0fff));
        self
    }

    /// No link layer: `build` returns the IP packet (raw IP link type).
    pub fn raw_ip(mut self) -> FrameBuilder {
        self.ethernet = false;
        self
    }

    /// IPv4 options (padded to 4 bytes). No effect on IPv6.
    pub fn ip_options(mut self, opts: &[u8]) -> FrameBuilder {
        if let L3::V4 { options, .. } = &mut self.l3 {
            options.extend_from_slice(opts);
            pad4(options);
        }
        self
    }

    /// IPv4 fragment offset (8-octet units) and MF flag. No effect on IPv6
    /// (use [`ExtHeader::Fragment`]).
    pub fn fragment(mut self, offset: u16, more: bool) -> FrameBuilder {
        if let L3::V4 { frag_offset, more_fragments, .. } = &mut self.l3 {
            *frag_offset = offset & 0x1fff;
            *more_fragments = more;
        }
        self
    }

    /// Appends an IPv6 extension header (in chain order). No effect on IPv4.
    pub fn ext_header(mut self, h: ExtHeader) -> FrameBuilder {
        if let L3::V6 { ext, .. } = &mut self.l3 {
            ext.push(h);
        }
        self
    }

    /// Carries SCTP over UDP (RFC 6951) with these ports.
    pub fn udp_encap(mut self, sport: u16, dport: u16) -> FrameBuilder {
        self.udp = Some((sport, dport));
        self
    }

    /// SCTP common header fields.
    pub fn sctp(mut self, sport: u16, dport: u16, vtag: u32) -> FrameBuilder {
        self.sctp = (sport, dport, vtag);
        self
    }

    /// Appends a chunk (from the chunk builders).
    pub fn chunk(mut self, c: Vec<u8>) -> FrameBuilder {
        self.chunks.push(c);
        self
    }

    /// Appends chunks.
    pub fn chunks(mut self, cs: impl IntoIterator<Item = Vec<u8>>) -> FrameBuilder {
        self.chunks.extend(cs);
        self
    }

    /// Uses these bytes as the SCTP packet instead of header + chunks (for
    /// malformed packets; no checksum is computed).
    pub fn sctp_raw(mut self, bytes: Vec<u8>) -> FrameBuilder {
        self.raw_sctp = Some(bytes);
        self
    }

    /// The SCTP packet alone.
    pub fn build_sctp(&self) -> Vec<u8> {
        match &self.raw_sctp {
            Some(b) => b.clone(),
            None => sctp_packet(self.sctp.0, self.sctp.1, self.sctp.2, &self.chunks),
        }
    }

    /// The IP packet (IPv4 or IPv6 header, optional UDP, SCTP).
    pub fn build_ip(&self) -> Vec<u8> {
        let sctp = self.build_sctp();
        let (proto, l4) = match self.udp {
            Some((sp, dp)) => (17u8, self.udp_datagram(sp, dp, &sctp)),
            None => (132u8, sctp),
        };
        match &self.l3 {
            L3::V4 { src, dst, options, frag_offset, more_fragments, ttl } => {
                let ihl = (20 + options.len()) / 4;
                let total = (ihl * 4 + l4.len()).min(u16::MAX as usize) as u16;
                let mut h = Vec::with_capacity(ihl * 4 + l4.len());
                h.push(0x40 | (ihl as u8 & 0x0f));
                h.push(0);
                h.extend_from_slice(&total.to_be_bytes());
                h.extend_from_slice(&0x1234u16.to_be_bytes());
                let frag = (*frag_offset & 0x1fff) | if *more_fragments { 0x2000 } else { 0 };
                h.extend_from_slice(&frag.to_be_bytes());
                h.push(*ttl);
                h.push(proto);
                h.extend_from_slice(&[0, 0]);
                h.extend_from_slice(&src.octets());
                h.extend_from_slice(&dst.octets());
                h.extend_from_slice(options);
                let sum = inet_checksum(&h, 0);
                h[10..12].copy_from_slice(&sum.to_be_bytes());
                h.extend_from_slice(&l4);
                h
            }
            L3::V6 { src, dst, ext } => {
                let mut exts = Vec::new();
                for (i, e) in ext.iter().enumerate() {
                    let next = ext.get(i + 1).map(|n| n.proto()).unwrap_or(proto);
                    exts.extend_from_slice(&e.bytes(next));
                }
                let first = ext.first().map(|e| e.proto()).unwrap_or(proto);
                let plen = (exts.len() + l4.len()).min(u16::MAX as usize) as u16;
                let mut h = Vec::with_capacity(40 + plen as usize);
                h.extend_from_slice(&[0x60, 0, 0, 0]);
                h.extend_from_slice(&plen.to_be_bytes());
                h.push(first);
                h.push(64);
                h.extend_from_slice(&src.octets());
                h.extend_from_slice(&dst.octets());
                h.extend_from_slice(&exts);
                h.extend_from_slice(&l4);
                h
            }
        }
    }

    /// The whole frame: Ethernet (+VLAN tags) and the IP packet, or the IP
    /// packet alone after [`FrameBuilder::raw_ip`].
    pub fn build(&self) -> Vec<u8> {
        let ip = self.build_ip();
        if !self.ethernet {
            return ip;
        }
        let mut f = Vec::with_capacity(14 + 4 * self.vlans.len() + ip.len());
        f.extend_from_slice(&self.dst_mac);
        f.extend_from_slice(&self.src_mac);
        for (tpid, vid) in &self.vlans {
            f.extend_from_slice(&tpid.to_be_bytes());
            f.extend_from_slice(&vid.to_be_bytes());
        }
        let et = match self.l3 {
            L3::V4 { .. } => ethertype::IPV4,
            L3::V6 { .. } => ethertype::IPV6,
        };
        f.extend_from_slice(&et.to_be_bytes());
        f.extend_from_slice(&ip);
        f
    }

    fn udp_datagram(&self, sport: u16, dport: u16, payload: &[u8]) -> Vec<u8> {
        let len = (8 + payload.len()).min(u16::MAX as usize) as u16;
        let mut u = Vec::with_capacity(8 + payload.len());
        u.extend_from_slice(&sport.to_be_bytes());
        u.extend_from_slice(&dport.to_be_bytes());
        u.extend_from_slice(&len.to_be_bytes());
        u.extend_from_slice(&[0, 0]);
        u.extend_from_slice(payload);
        // Pseudo-header sum.
        let mut pseudo = 0u32;
        let mut add = |b: &[u8]| {
            for c in b.chunks(2) {
                pseudo += u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)]) as u32;
            }
        };
        match &self.l3 {
            L3::V4 { src, dst, .. } => {
                add(&src.octets());
                add(&dst.octets());
            }
            L3::V6 { src, dst, .. } => {
                add(&src.octets());
                add(&dst.octets());
            }
        }
        pseudo += 17 + len as u32;
        let mut sum = inet_checksum(&u, pseudo);
        if sum == 0 {
            sum = 0xffff;
        }
        u[6..8].copy_from_slice(&sum.to_be_bytes());
        u
    }
}

/// Internet checksum (RFC 1071) of `bytes` plus an initial 32-bit sum.
pub fn inet_checksum(bytes: &[u8], initial: u32) -> u16 {
    let mut sum = initial as u64;
    for c in bytes.chunks(2) {
        sum += u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)]) as u64;
    }
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// The ring-buffer record the kernel programs write for one chunk of an
/// IPv4 packet (a DATA chunk as the first DATA of its path), for feeding
/// the agent's pipeline without the kernel.
pub fn record_v4(
    chunk: &[u8],
    (src, dst): ([u8; 4], [u8; 4]),
    (src_port, dst_port): (u16, u16),
    vtag: u32,
    ifindex: u32,
    ts_ns: u64,
) -> sctp_monitor_common::ChunkRecord {
    use sctp_monitor_common::{ChunkRecord, RecordKind};
    let mut r = <ChunkRecord as bytemuck::Zeroable>::zeroed();
    r.kind = if chunk[0] == chunk::DATA { RecordKind::DataFirst as u8 } else { RecordKind::Control as u8 };
    if chunk[0] == chunk::DATA {
        r.flags = sctp_monitor_common::record::RECORD_FLAG_NEW_DATA;
    }
    r.ts_ns = ts_ns;
    r.ifindex = ifindex;
    r.ip_version = 4;
    r.src_addr[..4].copy_from_slice(&src);
    r.dst_addr[..4].copy_from_slice(&dst);
    (r.src_port, r.dst_port, r.vtag) = (src_port, dst_port, vtag);
    r.chunk_type = chunk[0];
    r.chunk_len = u16::from_be_bytes([chunk[2], chunk[3]]);
    let n = chunk.len().min(r.data.len());
    r.data[..n].copy_from_slice(&chunk[..n]);
    r.seg1_len = n as u16;
    r
}

#[cfg(test)]
mod tests {
    use super::*;
    use sctp_monitor_common::sctp::{be16, be32};

    fn v4(s: &str) -> Ipv4Addr {
        s.parse().expect("test address")
    }

    #[test]
    fn crc32c_check_value() {
        assert_eq!(crc32c(b"123456789"), 0xE306_9283);
        assert_eq!(crc32c(b""), 0);
    }

    #[test]
    fn sctp_checksum_verifies_and_detects_corruption() {
        let p = sctp_packet(1, 2, 0xabcd, &[data(7, 0, 0, 46, b"hello")]);
        assert_eq!(&p[8..12], &sctp_checksum(&p), "stored checksum must match recomputation");
        let mut bad = p.clone();
        bad[20] ^= 1;
        assert_ne!(&bad[8..12], &sctp_checksum(&bad));
    }

    #[test]
    fn sctp_checksum_of_known_init_packet() {
        // An INIT with all-zero fixed fields over ports 1 -> 2, tag 0: the
        // checksum is the little-endian CRC32c of the zero-checksum packet.
        let p = sctp_packet(1, 2, 0, &[raw_chunk(1, 0, &[0; 16])]);
        let mut z = p.clone();
        z[8..12].fill(0);
        assert_eq!(p[8..12], crc32c(&z).to_le_bytes());
    }

    #[test]
    fn data_chunk_length_excludes_padding_and_packet_pads() {
        let c = data(1, 2, 3, 46, b"abcde");
        assert_eq!(c.len(), 16 + 5);
        assert_eq!(be16(&c, 2), 21);
        assert_eq!(be32(&c, 4), 1);
        assert_eq!(be16(&c, 8), 2);
        assert_eq!(be16(&c, 10), 3);
        assert_eq!(be32(&c, 12), 46);
        assert_eq!(c[1], data_flags::BE);
        let p = sctp_packet(1, 2, 3, &[c.clone(), sack(1, 1000, &[], &[])]);
        // 12 + 24 (21 padded) + 16.
        assert_eq!(p.len(), 12 + 24 + 16);
        assert_eq!(p[12 + 24], chunk::SACK);
    }

    #[test]
    fn sack_layout() {
        let c = sack(100, 5000, &[(2, 3), (5, 5)], &[99]);
        assert_eq!(be16(&c, 2) as usize, c.len());
        assert_eq!(c.len(), 16 + 8 + 4);
        assert_eq!(be32(&c, 4), 100);
        assert_eq!(be16(&c, 12), 2);
        assert_eq!(be16(&c, 14), 1);
        assert_eq!(be32(&c, 24), 99);
    }

    #[test]
    fn init_ack_places_cookie_before_or_after_addresses() {
        let a: IpAddr = "10.0.0.1".parse().expect("addr");
        let b: IpAddr = "fd00::1".parse().expect("addr");
        let spec = InitSpec::new(0x1111, 5).addrs(&[a, b]).cookie(301, CookiePos::Before);
        let c = init_ack(&spec);
        assert_eq!(c[0], chunk::INIT_ACK);
        assert_eq!(be16(&c, 2) as usize, c.len());
        // Cookie param first: type 7, len 305, padded to 308.
        assert_eq!(be16(&c, 20), param::STATE_COOKIE);
        assert_eq!(be16(&c, 22), 305);
        assert_eq!(be16(&c, 20 + 308), param::IPV4_ADDRESS);
        assert_eq!(c.len(), 20 + 308 + 8 + 20);
        let after = init_ack(&InitSpec::new(0x1111, 5).addrs(&[a]).cookie(8, CookiePos::After));
        assert_eq!(be16(&after, 20), param::IPV4_ADDRESS);
        assert_eq!(be16(&after, 28), param::STATE_COOKIE);
    }

    #[test]
    fn asconf_layout() {
        let a: IpAddr = "10.0.0.9".parse().expect("addr");
        let c = asconf(7, a, &[AsconfReq::Add { corr_id: 1, addr: a }]);
        assert_eq!(c[0], chunk::ASCONF);
        assert_eq!(be32(&c, 4), 7);
        assert_eq!(be16(&c, 8), param::IPV4_ADDRESS);
        assert_eq!(be16(&c, 16), param::ADD_IP);
        assert_eq!(be16(&c, 18), 16);
        assert_eq!(be32(&c, 20), 1);
        let ack = asconf_ack(7, &[AsconfResult::Error { corr_id: 1, causes: vec![error_cause(0xA0, &[])] }]);
        assert_eq!(be16(&ack, 8), param::ERROR_CAUSE_INDICATION);
        assert_eq!(be16(&ack, 10), 12);
    }

    #[test]
    fn ipv4_frame_with_vlans_options_and_checksum() {
        let f = FrameBuilder::ipv4(v4("10.0.0.1"), v4("10.0.0.2"))
            .vlan(ethertype::QINQ, 100)
            .vlan(ethertype::VLAN, 200)
            .ip_options(&[1, 1, 1])
            .fragment(0, false)
            .sctp(1, 2, 3)
            .chunk(cookie_ack())
            .build();
        assert_eq!(be16(&f, 12), ethertype::QINQ);
        assert_eq!(be16(&f, 14), 100);
        assert_eq!(be16(&f, 16), ethertype::VLAN);
        assert_eq!(be16(&f, 20), ethertype::IPV4);
        let ip = &f[22..];
        assert_eq!(ip[0], 0x46, "IHL 6 with 4 bytes of options");
        assert_eq!(be16(ip, 2) as usize, ip.len());
        assert_eq!(inet_checksum(&ip[..24], 0), 0, "IPv4 header checksum verifies");
        assert_eq!(ip[9], 132);
        assert_eq!(ip.len(), 24 + 12 + 4);
    }

    #[test]
    fn ipv6_ext_chain_and_udp_encap() {
        let f = FrameBuilder::ipv6("fd00::1".parse().expect("a"), "fd00::2".parse().expect("a"))
            .ext_header(ExtHeader::HopByHop(0))
            .ext_header(ExtHeader::Routing(1))
            .ext_header(ExtHeader::DestOpts(0))
            .ext_header(ExtHeader::Fragment { offset: 0, more: false, id: 9 })
            .udp_encap(9899, 9899)
            .sctp(1, 2, 3)
            .chunk(heartbeat(b"info"))
            .raw_ip()
            .build();
        assert_eq!(f[0] >> 4, 6);
        assert_eq!(f[6], 0, "first next header: hop-by-hop");
        assert_eq!(f[40], 43);
        assert_eq!(f[48], 60);
        assert_eq!(f[48 + 16], 44);
        assert_eq!(f[48 + 16 + 8], 17);
        let udp = &f[48 + 16 + 8 + 8..];
        assert_eq!(be16(&f, 4) as usize, f.len() - 40);
        assert_eq!(be16(udp, 0), 9899);
        assert_eq!(be16(udp, 4) as usize, udp.len());
        // UDP checksum verifies against the pseudo header.
        let mut pseudo = 0u32;
        for c in f[8..40].chunks(2) {
            pseudo += u16::from_be_bytes([c[0], c[1]]) as u32;
        }
        pseudo += 17 + udp.len() as u32;
        assert_eq!(inet_checksum(udp, pseudo), 0);
        let sctp = &udp[8..];
        assert_eq!(&sctp[8..12], &sctp_checksum(sctp));
    }

    #[test]
    fn raw_chunk_with_bogus_length_keeps_the_field() {
        let c = raw_chunk_with_len(0xAB, 0, 2, &[1, 2, 3]);
        assert_eq!(be16(&c, 2), 2);
        assert_eq!(c.len(), 7);
    }
}
