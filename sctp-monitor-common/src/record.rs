//! The ring-buffer record: one per control chunk, and one per DATA chunk the
//! tracker must hear about at once (see [`RecordKind`]).

use bytemuck::{Pod, Zeroable};

/// Bytes of chunk carried in a record.
///
/// For INIT, INIT-ACK, ASCONF and ASCONF-ACK the kernel copies the chunk
/// header, the fixed fields and then *only* the address-bearing and small
/// parameters (never the State Cookie), so `data` holds a valid, shorter chunk
/// whose parameters a normal TLV walk recovers; `chunk_len` keeps the length
/// on the wire. For HEARTBEAT / HEARTBEAT-ACK the whole chunk fits (Heartbeat
/// Info is well under this size on every stack we know). For DATA and I-DATA
/// only the chunk header and the fixed fields: payload bytes never leave the
/// kernel.
pub const RECORD_DATA_LEN: usize = 256;

/// Why a record was sent.
#[repr(u8)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RecordKind {
    /// A control chunk.
    Control = 0,
    /// The first DATA/I-DATA seen on a path.
    DataFirst = 1,
    /// New DATA (TSN above the association direction's highest) on a different
    /// path than the previous new DATA: a failover candidate.
    DataPathChange = 2,
    /// DATA on a path that had been idle for `Config::data_idle_ns`.
    DataResumed = 3,
    /// COOKIE-ECHO: its presence only, `data` holds the chunk header.
    CookieEcho = 4,
}

impl RecordKind {
    pub const fn from_u8(v: u8) -> Option<RecordKind> {
        match v {
            0 => Some(RecordKind::Control),
            1 => Some(RecordKind::DataFirst),
            2 => Some(RecordKind::DataPathChange),
            3 => Some(RecordKind::DataResumed),
            4 => Some(RecordKind::CookieEcho),
            _ => None,
        }
    }
}

/// Bit in [`ChunkRecord::flags`]: the packet came over UDP (RFC 6951).
pub const RECORD_FLAG_UDP_ENCAP: u8 = 0x01;
/// Bit in [`ChunkRecord::flags`]: `data` holds a compacted chunk (parameters
/// such as the State Cookie were left out).
pub const RECORD_FLAG_COMPACTED: u8 = 0x02;
/// Bit in [`ChunkRecord::flags`]: some parameters did not fit and are missing.
pub const RECORD_FLAG_PARAMS_TRUNCATED: u8 = 0x04;
/// Bit in [`ChunkRecord::flags`]: the packet also carried a PAD chunk
/// (a HEARTBEAT with PAD is a path-MTU probe, RFC 8899).
pub const RECORD_FLAG_BUNDLED_PAD: u8 = 0x08;

/// One chunk, as the kernel saw it.
///
/// Addresses are 16 bytes; IPv4 sits in the first 4 (network order) and the
/// rest is zero. Ports and tag are host order.
#[repr(C)]
#[derive(Clone, Copy, Debug, Pod, Zeroable)]
pub struct ChunkRecord {
    /// `bpf_ktime_get_ns()` (CLOCK_MONOTONIC) when the program ran.
    pub ts_ns: u64,
    pub ifindex: u32,
    pub vtag: u32,
    pub src_addr: [u8; 16],
    pub dst_addr: [u8; 16],
    pub src_port: u16,
    pub dst_port: u16,
    /// The chunk's own length field (on the wire, without padding).
    pub chunk_len: u16,
    /// Valid bytes in `data`.
    pub data_len: u16,
    /// [`RecordKind`].
    pub kind: u8,
    /// [`crate::direction`].
    pub direction: u8,
    /// 4 or 6.
    pub ip_version: u8,
    pub chunk_type: u8,
    pub chunk_flags: u8,
    /// `RECORD_FLAG_*`.
    pub flags: u8,
    /// Position of the chunk in its packet (0-based).
    pub chunk_index: u8,
    /// Chunks in the packet, as far as walked.
    pub _pad0: u8,
    /// UDP ports when `RECORD_FLAG_UDP_ENCAP` is set, else 0.
    pub udp_src_port: u16,
    pub udp_dst_port: u16,
    /// IP total length of the packet (bytes on the wire from the IP header).
    pub ip_len: u32,
    pub data: [u8; RECORD_DATA_LEN],
}
const _: () = assert!(core::mem::size_of::<ChunkRecord>() == 72 + RECORD_DATA_LEN);

impl ChunkRecord {
    /// The bytes of `data` that are valid.
    pub fn data(&self) -> &[u8] {
        let n = (self.data_len as usize).min(RECORD_DATA_LEN);
        &self.data[..n]
    }

    pub fn kind(&self) -> Option<RecordKind> {
        RecordKind::from_u8(self.kind)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn record_layout_is_stable() {
        assert_eq!(core::mem::size_of::<ChunkRecord>(), 328);
        assert_eq!(core::mem::align_of::<ChunkRecord>(), 8);
        assert_eq!(core::mem::offset_of!(ChunkRecord, data), 72);
        assert_eq!(core::mem::offset_of!(ChunkRecord, ip_len), 68);
    }

    #[test]
    fn data_clamps_a_bogus_length() {
        let mut r: ChunkRecord = Zeroable::zeroed();
        r.data_len = 9999;
        assert_eq!(r.data().len(), RECORD_DATA_LEN);
        r.data_len = 8;
        assert_eq!(r.data().len(), 8);
    }

    #[test]
    fn kinds_round_trip() {
        for k in 0..=4u8 {
            assert_eq!(RecordKind::from_u8(k).unwrap() as u8, k);
        }
        assert!(RecordKind::from_u8(5).is_none());
    }

    #[test]
    fn record_is_pod() {
        let r: ChunkRecord = Zeroable::zeroed();
        let bytes = bytemuck::bytes_of(&r);
        let back: &ChunkRecord = bytemuck::from_bytes(bytes);
        assert_eq!(back.ts_ns, 0);
    }
}
