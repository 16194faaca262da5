//! Indices of the per-CPU `COUNTERS` array. Each direction has its own block
//! of [`COUNT`] slots: slot = `direction * COUNT + counter`.
//!
//! Accounting identity (checked by the tests against the frames they send):
//! the kernel counts every frame exactly once in one of `NOT_SCTP`,
//! `SCTP_PACKETS`, `NON_FIRST_FRAGMENT` or one of the header-level
//! `MALFORMED_*` reasons (`PACKET_OUTCOMES`). Chunk-level problems
//! (`MALFORMED_CHUNK_LEN`, `TOO_MANY_CHUNKS`) are counted on packets already
//! counted as SCTP.

/// Frames the program ran on. Not counted per packet in the kernel (one
/// counter less on the path of traffic that is not SCTP): userspace fills it
/// in as the sum of [`PACKET_OUTCOMES`].
pub const PACKETS: u32 = 0;
/// Frames that are not SCTP (any other ethertype or IP protocol).
pub const NOT_SCTP: u32 = 1;
/// Frames carrying an SCTP common header (over IP or over UDP).
pub const SCTP_PACKETS: u32 = 2;
/// Non-first IP fragments: skipped (their SCTP header is elsewhere).
pub const NON_FIRST_FRAGMENT: u32 = 3;
/// A header (Ethernet, VLAN, IP, UDP, SCTP common header) cut short.
pub const MALFORMED_TRUNCATED: u32 = 4;
/// IPv4 with IHL < 5 or a total length below the header, IPv6 payload length
/// past the frame.
pub const MALFORMED_IP_HEADER: u32 = 5;
/// More IPv6 extension headers than `MAX_IPV6_EXT_HEADERS`.
pub const MALFORMED_EXT_HDR_LIMIT: u32 = 6;
/// A chunk whose length is under 4 or runs past the end of the packet.
pub const MALFORMED_CHUNK_LEN: u32 = 7;
/// A packet with more chunks than `MAX_CHUNKS`: the rest are not walked.
pub const TOO_MANY_CHUNKS: u32 = 8;
/// Ring-buffer records lost because the buffer was full.
pub const RINGBUF_LOST: u32 = 9;
/// Ring-buffer records written.
pub const RINGBUF_RECORDS: u32 = 10;
/// Chunks walked (all types).
pub const CHUNKS: u32 = 11;
/// SCTP packets carried over UDP (RFC 6951).
pub const UDP_ENCAP_PACKETS: u32 = 12;
/// Per-path map updates that failed (map full of non-LRU entries; should
/// stay 0 with the LRU map).
pub const PATH_UPDATE_FAILED: u32 = 13;
/// Parameters of INIT/INIT-ACK/ASCONF not copied because the record was full.
pub const PARAMS_TRUNCATED: u32 = 14;
/// `ASSOC_DIRS` slots taken over by another association direction (the
/// direct-mapped array's evictions; the new owner starts with "every TSN is
/// new").
pub const ASSOC_DIR_REPLACED: u32 = 15;
/// `PATH_SLOTS` slots taken over by another path (the direct-mapped array's
/// evictions; the old path's totals are handed to the `PATHS` overflow map,
/// so none is lost).
pub const PATH_SLOT_TAKEOVERS: u32 = 16;

/// The outcomes of which every frame has exactly one.
pub const PACKET_OUTCOMES: [u32; 6] =
    [NOT_SCTP, SCTP_PACKETS, NON_FIRST_FRAGMENT, MALFORMED_TRUNCATED, MALFORMED_IP_HEADER, MALFORMED_EXT_HDR_LIMIT];

/// Slots per direction.
pub const COUNT: u32 = 17;
/// Total slots in the `COUNTERS` array.
pub const SLOTS: u32 = COUNT * 2;

/// Names for the agent and tests, indexed by counter.
pub const NAMES: [&str; 17] = [
    "packets",
    "not_sctp",
    "sctp_packets",
    "non_first_fragment",
    "malformed_truncated",
    "malformed_ip_header",
    "malformed_ext_hdr_limit",
    "malformed_chunk_len",
    "too_many_chunks",
    "ringbuf_lost",
    "ringbuf_records",
    "chunks",
    "udp_encap_packets",
    "path_update_failed",
    "params_truncated",
    "assoc_dir_replaced",
    "path_slot_takeovers",
];

/// Interfaces the chunk-type counters can tell apart (slot 0 = unknown).
pub const MAX_IFACE_SLOTS: u32 = 64;

/// Index into `CHUNK_COUNTERS` for an interface slot, direction, chunk type.
#[inline(always)]
pub const fn chunk_counter_index(slot: u32, direction: u8, chunk_type: u8) -> u32 {
    ((slot % MAX_IFACE_SLOTS) * 2 + (direction as u32 & 1)) * 256 + chunk_type as u32
}

/// Size of `CHUNK_COUNTERS`.
pub const CHUNK_COUNTER_SLOTS: u32 = MAX_IFACE_SLOTS * 2 * 256;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_cover_every_counter() {
        assert_eq!(NAMES.len() as u32, PATH_SLOT_TAKEOVERS + 1);
        assert!(NAMES.len() as u32 <= COUNT);
    }

    #[test]
    fn chunk_counter_index_is_dense_and_in_range() {
        assert_eq!(chunk_counter_index(0, 0, 0), 0);
        assert_eq!(chunk_counter_index(0, 1, 0), 256);
        assert_eq!(chunk_counter_index(1, 0, 3), 515);
        assert_eq!(chunk_counter_index(MAX_IFACE_SLOTS - 1, 1, 255), CHUNK_COUNTER_SLOTS - 1);
        // An out-of-range slot folds into range instead of overflowing.
        assert!(chunk_counter_index(MAX_IFACE_SLOTS + 5, 1, 255) < CHUNK_COUNTER_SLOTS);
    }
}
