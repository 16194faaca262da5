//! The one userspace decoder for SCTP chunks and parameters.
//!
//! Live kernel records ([`record`]) and capture files ([`packet`]) both end up
//! as a [`PacketMeta`] plus [`Chunk`]s, so the tracker sees one shape.
//!
//! Rules (chunk and parameter layouts: `docs/protocol.md`):
//! - nothing here panics on any input; every read is bounds-checked;
//! - a chunk length below 4 ends the walk (counted as malformed);
//! - a chunk whose length field exceeds the bytes present is decoded as far
//!   as the bytes go (kernel records carry only DATA headers, captures can be
//!   truncated); DATA payload length comes from the length field;
//! - malformed or unknown parameters are skipped and counted in
//!   [`DecodeStats`].

pub mod chunk;
pub mod packet;
pub mod param;
pub mod record;

pub use chunk::{
    Asconf, AsconfAck, AsconfRequest, AsconfRequestKind, AsconfResult, Chunk, DataHeader, ErrorCause, HbInfo, Init,
    Sack, decode_chunk, walk_chunks,
};
pub use packet::{KernelData, LinkType, Packet, PacketMeta, parse_frame, parse_frame_in, parse_ip, parse_sctp};
pub use record::{decode_parts, decode_record, record_chunk, record_meta};

/// Why a packet, chunk or record could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// Fewer bytes than a fixed header needs.
    #[error("{what} too short: {have} bytes, need {need}")]
    TooShort { what: &'static str, have: usize, need: usize },
    /// A chunk length field below 4.
    #[error("chunk at offset {offset} has length {len} (below 4)")]
    ChunkLength { offset: usize, len: u16 },
    /// An IP header that does not parse.
    #[error("bad IP header: {0}")]
    BadIp(&'static str),
    /// An IP header the IP rule (`sctp_monitor_common::ip`) refuses: a
    /// bad version or length, or too many IPv6 extension headers.
    #[error("bad IP header: {}", ip_error_text(*.0))]
    Ip(sctp_monitor_common::ip::IpError),
    /// A non-first IP fragment (its SCTP header is elsewhere).
    #[error("non-first IP fragment")]
    Fragment,
    /// A kernel record with unknown fields.
    #[error("bad kernel record: {0}")]
    BadRecord(&'static str),
}

fn ip_error_text(e: sctp_monitor_common::ip::IpError) -> &'static str {
    use sctp_monitor_common::ip::IpError;
    match e {
        IpError::Truncated => "a length past the bytes present",
        IpError::BadHeader => "a version, header length or total length that cannot be",
        IpError::ExtHeaderLimit => "more than 8 IPv6 extension headers",
        IpError::LaterFragment => "a non-first fragment",
    }
}

/// Counters of what decoding skipped. Add them up across packets.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DecodeStats {
    /// Chunks decoded (including `Other`).
    pub chunks: u64,
    /// Chunks with a length below 4 or fixed fields missing.
    pub malformed_chunks: u64,
    /// Chunks whose length field ran past the bytes present.
    pub truncated_chunks: u64,
    /// Chunk types the decoder does not know.
    pub unknown_chunks: u64,
    /// Parameters / error causes with a bad length, or not fitting.
    pub malformed_params: u64,
    /// Parameter types not expected where they were found.
    pub unknown_params: u64,
}

impl DecodeStats {
    /// Adds `o` into `self`.
    pub fn add(&mut self, o: &DecodeStats) {
        self.chunks += o.chunks;
        self.malformed_chunks += o.malformed_chunks;
        self.truncated_chunks += o.truncated_chunks;
        self.unknown_chunks += o.unknown_chunks;
        self.malformed_params += o.malformed_params;
        self.unknown_params += o.unknown_params;
    }
}

/// Big-endian u16 at `off`, or `None` past the end.
#[inline]
pub(crate) fn get16(b: &[u8], off: usize) -> Option<u16> {
    let s = b.get(off..off.checked_add(2)?)?;
    Some(u16::from_be_bytes([s[0], s[1]]))
}

/// Big-endian u32 at `off`, or `None` past the end.
#[inline]
pub(crate) fn get32(b: &[u8], off: usize) -> Option<u32> {
    let s = b.get(off..off.checked_add(4)?)?;
    Some(u32::from_be_bytes([s[0], s[1], s[2], s[3]]))
}
