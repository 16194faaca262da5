//! SCTP wire constants and the small pieces of parsing logic that the kernel
//! programs and the userspace decoder share (RFC 9260, RFC 5061, RFC 6951).
//! Numbers follow Linux `include/linux/sctp.h`.

/// IP protocol number of SCTP.
pub const IPPROTO_SCTP: u8 = 132;
/// SCTP common header length.
pub const COMMON_HEADER_LEN: usize = 12;
/// Chunk header length (type, flags, length).
pub const CHUNK_HEADER_LEN: usize = 4;
/// Parameter header length (type, length).
pub const PARAM_HEADER_LEN: usize = 4;

/// The kernel walks at most this many chunks per packet; more are counted
/// as `TOO_MANY_CHUNKS`.
pub const MAX_CHUNKS: u32 = 32;
/// The kernel walks at most this many parameters of one INIT/INIT-ACK/ASCONF.
pub const MAX_PARAMS: u32 = 32;

pub mod chunk {
    pub const DATA: u8 = 0;
    pub const INIT: u8 = 1;
    pub const INIT_ACK: u8 = 2;
    pub const SACK: u8 = 3;
    pub const HEARTBEAT: u8 = 4;
    pub const HEARTBEAT_ACK: u8 = 5;
    pub const ABORT: u8 = 6;
    pub const SHUTDOWN: u8 = 7;
    pub const SHUTDOWN_ACK: u8 = 8;
    pub const ERROR: u8 = 9;
    pub const COOKIE_ECHO: u8 = 10;
    pub const COOKIE_ACK: u8 = 11;
    pub const ECNE: u8 = 12;
    pub const CWR: u8 = 13;
    pub const SHUTDOWN_COMPLETE: u8 = 14;
    pub const AUTH: u8 = 15;
    pub const I_DATA: u8 = 64;
    pub const ASCONF_ACK: u8 = 128;
    pub const RECONFIG: u8 = 130;
    pub const PAD: u8 = 132;
    pub const FORWARD_TSN: u8 = 192;
    pub const ASCONF: u8 = 193;
    pub const I_FORWARD_TSN: u8 = 194;

    /// The T bit of ABORT and SHUTDOWN-COMPLETE: the tag is the sender's own.
    pub const FLAG_T: u8 = 0x01;

    /// Human name of a chunk type, `None` for unknown types.
    pub const fn name(t: u8) -> Option<&'static str> {
        Some(match t {
            DATA => "DATA",
            INIT => "INIT",
            INIT_ACK => "INIT_ACK",
            SACK => "SACK",
            HEARTBEAT => "HEARTBEAT",
            HEARTBEAT_ACK => "HEARTBEAT_ACK",
            ABORT => "ABORT",
            SHUTDOWN => "SHUTDOWN",
            SHUTDOWN_ACK => "SHUTDOWN_ACK",
            ERROR => "ERROR",
            COOKIE_ECHO => "COOKIE_ECHO",
            COOKIE_ACK => "COOKIE_ACK",
            ECNE => "ECNE",
            CWR => "CWR",
            SHUTDOWN_COMPLETE => "SHUTDOWN_COMPLETE",
            AUTH => "AUTH",
            I_DATA => "I_DATA",
            ASCONF_ACK => "ASCONF_ACK",
            RECONFIG => "RE_CONFIG",
            PAD => "PAD",
            FORWARD_TSN => "FORWARD_TSN",
            ASCONF => "ASCONF",
            I_FORWARD_TSN => "I_FORWARD_TSN",
            _ => return None,
        })
    }
}

pub mod param {
    pub const HEARTBEAT_INFO: u16 = 1;
    pub const IPV4_ADDRESS: u16 = 5;
    pub const IPV6_ADDRESS: u16 = 6;
    pub const STATE_COOKIE: u16 = 7;
    pub const UNRECOGNIZED_PARAMETERS: u16 = 8;
    pub const COOKIE_PRESERVATIVE: u16 = 9;
    pub const HOST_NAME_ADDRESS: u16 = 11;
    pub const SUPPORTED_ADDRESS_TYPES: u16 = 12;
    pub const ECN_CAPABLE: u16 = 0x8000;
    pub const RANDOM: u16 = 0x8002;
    pub const CHUNK_LIST: u16 = 0x8003;
    pub const HMAC_ALGORITHM: u16 = 0x8004;
    pub const SUPPORTED_EXTENSIONS: u16 = 0x8008;
    pub const FORWARD_TSN_SUPPORTED: u16 = 0xC000;
    pub const ADD_IP: u16 = 0xC001;
    pub const DELETE_IP: u16 = 0xC002;
    pub const ERROR_CAUSE_INDICATION: u16 = 0xC003;
    pub const SET_PRIMARY: u16 = 0xC004;
    pub const SUCCESS_INDICATION: u16 = 0xC005;
    pub const ADAPTATION_LAYER_INDICATION: u16 = 0xC006;

    /// IPv4 Address parameter length (header + 4).
    pub const IPV4_ADDRESS_LEN: u16 = 8;
    /// IPv6 Address parameter length (header + 16).
    pub const IPV6_ADDRESS_LEN: u16 = 20;
}

/// Fixed part of INIT / INIT-ACK after the chunk header: initiate tag, a_rwnd,
/// outbound streams, inbound streams, initial TSN.
pub const INIT_FIXED_LEN: usize = 16;
/// Fixed part of ASCONF / ASCONF-ACK: serial number.
pub const ASCONF_FIXED_LEN: usize = 4;
/// DATA chunk header + TSN, stream id, stream seq, PPID.
pub const DATA_HEADER_LEN: usize = 16;
/// I-DATA chunk header + TSN, stream id, reserved, MID, PPID/FSN.
pub const I_DATA_HEADER_LEN: usize = 20;
/// SACK chunk header + cum TSN ack, a_rwnd, gap count, dup count.
pub const SACK_HEADER_LEN: usize = 16;

/// What the kernel does with a chunk type.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChunkClass {
    /// DATA / I-DATA: aggregated per path.
    Data,
    /// SACK: aggregated per path.
    Sack,
    /// Sent to userspace, one record each.
    Control,
    /// COOKIE-ECHO: its presence is reported, not its bytes.
    CookieEcho,
    /// Counted only (ECNE, CWR, AUTH, PAD and unknown types).
    CountOnly,
}

/// How the datapath treats a chunk type.
#[inline(always)]
pub const fn classify(chunk_type: u8) -> ChunkClass {
    match chunk_type {
        chunk::DATA | chunk::I_DATA => ChunkClass::Data,
        chunk::SACK => ChunkClass::Sack,
        chunk::COOKIE_ECHO => ChunkClass::CookieEcho,
        chunk::INIT
        | chunk::INIT_ACK
        | chunk::HEARTBEAT
        | chunk::HEARTBEAT_ACK
        | chunk::ABORT
        | chunk::SHUTDOWN
        | chunk::SHUTDOWN_ACK
        | chunk::SHUTDOWN_COMPLETE
        | chunk::COOKIE_ACK
        | chunk::ERROR
        | chunk::ASCONF
        | chunk::ASCONF_ACK
        | chunk::RECONFIG
        | chunk::FORWARD_TSN
        | chunk::I_FORWARD_TSN => ChunkClass::Control,
        _ => ChunkClass::CountOnly,
    }
}

/// Chunks whose parameters the kernel compacts (address parameters kept,
/// State Cookie and other bulky parameters dropped).
#[inline(always)]
pub const fn has_address_params(chunk_type: u8) -> bool {
    matches!(chunk_type, chunk::INIT | chunk::INIT_ACK | chunk::ASCONF | chunk::ASCONF_ACK)
}

/// Bytes of fixed fields between the chunk header and the parameters.
#[inline(always)]
pub const fn fixed_len(chunk_type: u8) -> usize {
    match chunk_type {
        chunk::INIT | chunk::INIT_ACK => INIT_FIXED_LEN,
        chunk::ASCONF | chunk::ASCONF_ACK => ASCONF_FIXED_LEN,
        _ => 0,
    }
}

/// Whether a parameter of a compacted chunk is kept in the record: address
/// parameters and the ASCONF request/response parameters (all small). The
/// State Cookie, Random, HMAC lists, Unrecognized Parameters and unknown
/// parameters are dropped.
#[inline(always)]
pub const fn keep_param(param_type: u16) -> bool {
    matches!(
        param_type,
        param::IPV4_ADDRESS
            | param::IPV6_ADDRESS
            | param::ADD_IP
            | param::DELETE_IP
            | param::SET_PRIMARY
            | param::ERROR_CAUSE_INDICATION
            | param::SUCCESS_INDICATION
            | param::SUPPORTED_ADDRESS_TYPES
            | param::HOST_NAME_ADDRESS
    )
}

/// A chunk or parameter length rounded up to 4 (where the next one starts).
/// Widened so `u16::MAX` does not overflow.
#[inline(always)]
pub const fn padded(len: u16) -> u32 {
    (len as u32 + 3) & !3
}

/// Serial-number comparison of TSNs (RFC 9260 §1.6, 2^32 wrap): `a > b`.
#[inline(always)]
pub const fn tsn_gt(a: u32, b: u32) -> bool {
    a != b && (a.wrapping_sub(b) as i32) > 0
}

/// Big-endian u16 at `off` of `b` (callers check bounds).
#[inline(always)]
pub const fn be16(b: &[u8], off: usize) -> u16 {
    u16::from_be_bytes([b[off], b[off + 1]])
}

/// Big-endian u32 at `off` of `b` (callers check bounds).
#[inline(always)]
pub const fn be32(b: &[u8], off: usize) -> u32 {
    u32::from_be_bytes([b[off], b[off + 1], b[off + 2], b[off + 3]])
}

/// The SCTP common header as it is on the wire.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct CommonHeader {
    pub src_port: [u8; 2],
    pub dst_port: [u8; 2],
    pub vtag: [u8; 4],
    pub checksum: [u8; 4],
}
const _: () = assert!(core::mem::size_of::<CommonHeader>() == COMMON_HEADER_LEN);

impl CommonHeader {
    pub const LEN: usize = COMMON_HEADER_LEN;
    #[inline(always)]
    pub const fn src_port(&self) -> u16 {
        u16::from_be_bytes(self.src_port)
    }
    #[inline(always)]
    pub const fn dst_port(&self) -> u16 {
        u16::from_be_bytes(self.dst_port)
    }
    #[inline(always)]
    pub const fn vtag(&self) -> u32 {
        u32::from_be_bytes(self.vtag)
    }
}

/// A chunk header as it is on the wire.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct ChunkHeader {
    pub chunk_type: u8,
    pub flags: u8,
    pub len: [u8; 2],
}
const _: () = assert!(core::mem::size_of::<ChunkHeader>() == CHUNK_HEADER_LEN);

impl ChunkHeader {
    pub const LEN: usize = CHUNK_HEADER_LEN;
    /// The chunk's length field (header and value, not the padding).
    #[allow(clippy::len_without_is_empty)] // a wire field, not a container
    #[inline(always)]
    pub const fn len(&self) -> u16 {
        u16::from_be_bytes(self.len)
    }
}

/// One step of a chunk walk: where the next chunk starts, or why the walk
/// must stop. `off` is the chunk's offset, `end` the end of the SCTP packet,
/// `len` the chunk's length field.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Step {
    /// Continue at this offset (may equal `end`: the walk is complete).
    Next(u32),
    /// Length under 4 or running past `end`: malformed, stop.
    BadLength,
}

/// The rule both walks follow: a chunk is valid when 4 <= len and it fits in
/// the packet; the next one starts at the padded length. (The padding of the
/// last chunk may be missing; that is tolerated.)
#[inline(always)]
pub const fn step(off: u32, len: u16, end: u32) -> Step {
    if (len as usize) < CHUNK_HEADER_LEN || off + len as u32 > end {
        return Step::BadLength;
    }
    let next = off + padded(len);
    Step::Next(if next > end { end } else { next })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn padding() {
        assert_eq!(padded(4), 4);
        assert_eq!(padded(5), 8);
        assert_eq!(padded(8), 8);
        assert_eq!(padded(u16::MAX), 65536);
    }

    #[test]
    fn tsn_serial_arithmetic_wraps() {
        assert!(tsn_gt(1, 0));
        assert!(!tsn_gt(0, 1));
        assert!(!tsn_gt(5, 5));
        assert!(tsn_gt(0, u32::MAX));
        assert!(tsn_gt(3, u32::MAX - 3));
        assert!(!tsn_gt(u32::MAX - 3, 3));
        assert!(tsn_gt(0x7fff_ffff, 0));
    }

    #[test]
    fn step_rules() {
        assert_eq!(step(12, 4, 100), Step::Next(16));
        assert_eq!(step(12, 5, 100), Step::Next(20));
        assert_eq!(step(12, 3, 100), Step::BadLength);
        assert_eq!(step(12, 0, 100), Step::BadLength);
        assert_eq!(step(12, 89, 100), Step::BadLength);
        // Last chunk without its padding.
        assert_eq!(step(12, 87, 99), Step::Next(99));
        assert_eq!(step(12, 88, 100), Step::Next(100));
    }

    #[test]
    fn chunk_table_matches_linux() {
        // Values from include/linux/sctp.h; ECNE and RE-CONFIG are often wrong.
        assert_eq!(chunk::ECNE, 12);
        assert_eq!(chunk::CWR, 13);
        assert_eq!(chunk::RECONFIG, 0x82);
        assert_eq!(chunk::ASCONF, 0xC1);
        assert_eq!(chunk::ASCONF_ACK, 0x80);
        assert_eq!(chunk::I_FORWARD_TSN, 0xC2);
        assert_eq!(param::SET_PRIMARY, 0xC004);
    }

    #[test]
    fn classes() {
        assert_eq!(classify(chunk::DATA), ChunkClass::Data);
        assert_eq!(classify(chunk::I_DATA), ChunkClass::Data);
        assert_eq!(classify(chunk::SACK), ChunkClass::Sack);
        assert_eq!(classify(chunk::COOKIE_ECHO), ChunkClass::CookieEcho);
        for t in [
            chunk::INIT,
            chunk::INIT_ACK,
            chunk::HEARTBEAT,
            chunk::HEARTBEAT_ACK,
            chunk::ABORT,
            chunk::SHUTDOWN,
            chunk::SHUTDOWN_ACK,
            chunk::SHUTDOWN_COMPLETE,
            chunk::COOKIE_ACK,
            chunk::ERROR,
            chunk::ASCONF,
            chunk::ASCONF_ACK,
            chunk::RECONFIG,
            chunk::FORWARD_TSN,
            chunk::I_FORWARD_TSN,
        ] {
            assert_eq!(classify(t), ChunkClass::Control, "type {t}");
        }
        for t in [chunk::ECNE, chunk::CWR, chunk::AUTH, chunk::PAD, 99, 255] {
            assert_eq!(classify(t), ChunkClass::CountOnly, "type {t}");
        }
    }

    #[test]
    fn kept_params_exclude_the_cookie() {
        assert!(keep_param(param::IPV4_ADDRESS));
        assert!(keep_param(param::IPV6_ADDRESS));
        assert!(keep_param(param::ADD_IP));
        assert!(!keep_param(param::STATE_COOKIE));
        assert!(!keep_param(param::RANDOM));
        assert!(!keep_param(0x1234));
    }

    #[test]
    fn headers_read_big_endian() {
        let h = CommonHeader {
            src_port: [0x0b, 0x59],
            dst_port: [0x00, 0x50],
            vtag: [0xde, 0xad, 0xbe, 0xef],
            checksum: [0; 4],
        };
        assert_eq!(h.src_port(), 2905);
        assert_eq!(h.dst_port(), 80);
        assert_eq!(h.vtag(), 0xdead_beef);
        let c = ChunkHeader { chunk_type: 1, flags: 0, len: [0x01, 0x2c] };
        assert_eq!(c.len(), 300);
        assert_eq!(be16(&[1, 2], 0), 0x0102);
        assert_eq!(be32(&[1, 2, 3, 4], 0), 0x0102_0304);
    }
}
