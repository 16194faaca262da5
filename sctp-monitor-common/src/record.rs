//! The ring-buffer record: one per control chunk, and one per DATA chunk the
//! tracker must hear about at once (see [`RecordKind`]).

use bytemuck::{Pod, Zeroable};

/// Room for chunk bytes in a record.
///
/// Records are variable-length on the ring: the header plus the bytes used.
///
/// Most chunks are copied from their start, up to this size (segment 1).
/// For INIT, INIT-ACK, ASCONF and ASCONF-ACK the State Cookie is cut out:
/// segment 1 is everything before the cookie (at most [`SEGMENT_LEN`]) and
/// segment 2, stored at offset [`SEGMENT_LEN`], everything after it (at most
/// [`SEGMENT_LEN`]). Joined, they form a valid chunk whose parameters a
/// normal TLV walk recovers; `chunk_len` keeps the length on the wire.
/// HEARTBEAT / HEARTBEAT-ACK fit whole (Heartbeat Info is far below this on
/// every stack we know). DATA and I-DATA carry only the chunk header and
/// fixed fields: payload bytes never leave the kernel.
pub const RECORD_DATA_LEN: usize = 512;
/// Largest segment when the chunk is split around its State Cookie.
pub const SEGMENT_LEN: usize = RECORD_DATA_LEN / 2;
/// Bytes before `data`.
pub const RECORD_HEADER_LEN: usize = 80;

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
    /// A packet that retransmits DATA (a T3-rtx expiry or a fast
    /// retransmit): the stack's error counter of the DATA's path moves.
    DataRetransmit = 5,
    /// The first new DATA after a path change whose packet also carried
    /// retransmissions: whether new DATA stays on the new path.
    DataPathSettle = 6,
    /// The first SACK on a path (per CPU): `data` holds its fixed part.
    SackFirst = 7,
    /// A SACK that changes what its sender's SACKs say (on any path, from
    /// any CPU: the state is the association direction's): its advertised
    /// receiver window (a_rwnd) became 0 or left 0, or it reports gaps
    /// (missing TSNs) where the last did not, or the other way round.
    /// `data` holds its fixed part.
    SackChange = 8,
}

impl RecordKind {
    pub const fn from_u8(v: u8) -> Option<RecordKind> {
        match v {
            0 => Some(RecordKind::Control),
            1 => Some(RecordKind::DataFirst),
            2 => Some(RecordKind::DataPathChange),
            3 => Some(RecordKind::DataResumed),
            4 => Some(RecordKind::CookieEcho),
            5 => Some(RecordKind::DataRetransmit),
            6 => Some(RecordKind::DataPathSettle),
            7 => Some(RecordKind::SackFirst),
            8 => Some(RecordKind::SackChange),
            _ => None,
        }
    }
}

/// Bit in [`ChunkRecord::flags`]: the packet came over UDP (RFC 6951).
pub const RECORD_FLAG_UDP_ENCAP: u8 = 0x01;
/// Bit in [`ChunkRecord::flags`]: the State Cookie was cut out; segment 2
/// holds what followed it.
pub const RECORD_FLAG_COMPACTED: u8 = 0x02;
/// Bit in [`ChunkRecord::flags`]: the chunk was longer than what the record
/// holds (one segment was cut short).
pub const RECORD_FLAG_PARAMS_TRUNCATED: u8 = 0x04;
/// Bit in [`ChunkRecord::flags`]: the packet also carried a PAD chunk
/// (a HEARTBEAT with PAD is a path-MTU probe, RFC 8899).
pub const RECORD_FLAG_BUNDLED_PAD: u8 = 0x08;
/// Bit in [`ChunkRecord::flags`] of a DATA record: the kernel judged the
/// record's chunk new DATA (its TSN above the association direction's
/// highest so far). Without it the record's chunk is a retransmission.
pub const RECORD_FLAG_NEW_DATA: u8 = 0x10;

/// One chunk, as the kernel saw it: the fixed [`RecordHeader`] and the
/// chunk's bytes. Its header fields read and write through `Deref`
/// (`rec.vtag`), so the header is defined once and a ring item's header
/// can be read in place without the rest ([`split_item`]).
#[repr(C)]
#[derive(Clone, Copy, Debug, Pod, Zeroable)]
pub struct ChunkRecord {
    pub header: RecordHeader,
    pub data: [u8; RECORD_DATA_LEN],
}
const _: () = assert!(core::mem::size_of::<ChunkRecord>() == RECORD_HEADER_LEN + RECORD_DATA_LEN);

impl core::ops::Deref for ChunkRecord {
    type Target = RecordHeader;
    #[inline(always)]
    fn deref(&self) -> &RecordHeader {
        &self.header
    }
}

impl core::ops::DerefMut for ChunkRecord {
    #[inline(always)]
    fn deref_mut(&mut self) -> &mut RecordHeader {
        &mut self.header
    }
}

/// The fixed part of a [`ChunkRecord`] (everything before `data`).
///
/// Addresses are 16 bytes; IPv4 sits in the first 4 (network order) and the
/// rest is zero. Ports and tag are host order.
#[repr(C)]
#[derive(Clone, Copy, Debug, Pod, Zeroable)]
pub struct RecordHeader {
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
    /// Valid bytes in segment 1 (from `data[0]`).
    pub seg1_len: u16,
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
    pub _pad0: u8,
    /// UDP ports when `RECORD_FLAG_UDP_ENCAP` is set, else 0.
    pub udp_src_port: u16,
    pub udp_dst_port: u16,
    /// IP total length of the packet (bytes on the wire from the IP header).
    pub ip_len: u32,
    /// Valid bytes in segment 2 (from `data[SEGMENT_LEN]`), 0 when the chunk
    /// was not split.
    pub seg2_len: u16,
    /// DATA records: retransmitted DATA chunks in the packet.
    pub rtx_chunks: u16,
    /// DATA records: the highest TSN of the packet's retransmitted chunks
    /// (when `rtx_chunks` is not 0).
    pub high_rtx_tsn: u32,
}
const _: () = assert!(core::mem::size_of::<RecordHeader>() == RECORD_HEADER_LEN);

/// Where segments 1 and 2 lie in `data`, from their lengths; bogus lengths
/// are clamped (segment 1 alone to `RECORD_DATA_LEN`, split ones to
/// `SEGMENT_LEN` each).
#[inline]
const fn segment_ranges(seg1_len: u16, seg2_len: u16) -> (core::ops::Range<usize>, core::ops::Range<usize>) {
    if seg2_len == 0 {
        let n = if (seg1_len as usize) < RECORD_DATA_LEN { seg1_len as usize } else { RECORD_DATA_LEN };
        return (0..n, 0..0);
    }
    let n1 = if (seg1_len as usize) < SEGMENT_LEN { seg1_len as usize } else { SEGMENT_LEN };
    let n2 = if (seg2_len as usize) < SEGMENT_LEN { seg2_len as usize } else { SEGMENT_LEN };
    (0..n1, SEGMENT_LEN..SEGMENT_LEN + n2)
}

/// A ring-buffer item read in place: its header and its two segments (as
/// [`ChunkRecord::segments`] gives them). `None` when the item is shorter
/// than the bytes its header says are in use (a copy into a `ChunkRecord`
/// reads those as zero: [`ChunkRecord::from_bytes`]), or not 8-byte
/// aligned (ring items always are).
#[inline]
pub fn split_item(item: &[u8]) -> Option<(&RecordHeader, &[u8], &[u8])> {
    let (head, data) = item.split_at_checked(RECORD_HEADER_LEN)?;
    let h: &RecordHeader = bytemuck::try_from_bytes(head).ok()?;
    let (r1, r2) = segment_ranges(h.seg1_len, h.seg2_len);
    if data.len() < r1.end || data.len() < r2.end {
        return None;
    }
    Some((h, &data[r1], &data[r2]))
}

/// A record's or path key's 16-byte address as an IP address: IPv4 sits in
/// the first 4 bytes when `ip_version` is 4. `None` for another version.
pub fn ip_addr(bytes: &[u8; 16], ip_version: u8) -> Option<core::net::IpAddr> {
    match ip_version {
        4 => Some(core::net::IpAddr::from([bytes[0], bytes[1], bytes[2], bytes[3]])),
        6 => Some(core::net::IpAddr::from(*bytes)),
        _ => None,
    }
}

impl ChunkRecord {
    /// Source and destination as IP addresses (`None`: bad IP version).
    pub fn addrs(&self) -> Option<(core::net::IpAddr, core::net::IpAddr)> {
        Some((ip_addr(&self.src_addr, self.ip_version)?, ip_addr(&self.dst_addr, self.ip_version)?))
    }

    /// The chunk bytes: segment 1 and segment 2 (empty unless the State
    /// Cookie was cut out). Concatenated they are the chunk without its
    /// cookie. Bogus lengths are clamped.
    pub fn segments(&self) -> (&[u8], &[u8]) {
        let (r1, r2) = segment_ranges(self.seg1_len, self.seg2_len);
        (&self.data[r1], &self.data[r2])
    }

    /// The fixed part, as a ring item's header is read in place.
    pub fn header(&self) -> &RecordHeader {
        bytemuck::from_bytes(&bytemuck::bytes_of(self)[..RECORD_HEADER_LEN])
    }

    /// Rebuilds a record from a ring-buffer item, which holds the header and
    /// only the bytes in use. `None` if it is shorter than the header.
    pub fn from_bytes(item: &[u8]) -> Option<ChunkRecord> {
        if item.len() < RECORD_HEADER_LEN {
            return None;
        }
        let mut r: ChunkRecord = Zeroable::zeroed();
        let n = item.len().min(core::mem::size_of::<ChunkRecord>());
        bytemuck::bytes_of_mut(&mut r)[..n].copy_from_slice(&item[..n]);
        Some(r)
    }

    /// Bytes of this record that go on the ring: the header and the data in
    /// use (segment 2 ends the record when present).
    pub const fn wire_len(seg1_len: u16, seg2_len: u16) -> usize {
        if seg2_len == 0 {
            RECORD_HEADER_LEN + seg1_len as usize
        } else {
            RECORD_HEADER_LEN + SEGMENT_LEN + seg2_len as usize
        }
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
        assert_eq!(core::mem::size_of::<ChunkRecord>(), 592);
        assert_eq!(core::mem::align_of::<ChunkRecord>(), 8);
        assert_eq!(core::mem::offset_of!(ChunkRecord, data), RECORD_HEADER_LEN);
        assert_eq!(core::mem::offset_of!(ChunkRecord, header.ip_len), 68);
        assert_eq!(core::mem::offset_of!(ChunkRecord, header.seg2_len), 72);
    }

    #[test]
    fn segments_clamp_bogus_lengths() {
        let mut r: ChunkRecord = Zeroable::zeroed();
        r.seg1_len = 9999;
        assert_eq!(r.segments().0.len(), RECORD_DATA_LEN);
        assert!(r.segments().1.is_empty());
        r.seg1_len = 8;
        assert_eq!(r.segments().0.len(), 8);
        r.seg1_len = 9999;
        r.seg2_len = 9999;
        let (a, b) = r.segments();
        assert_eq!((a.len(), b.len()), (SEGMENT_LEN, SEGMENT_LEN));
    }

    #[test]
    fn split_segments_join_around_the_cookie() {
        let mut r: ChunkRecord = Zeroable::zeroed();
        r.data[..4].copy_from_slice(&[1, 2, 3, 4]);
        r.data[SEGMENT_LEN..SEGMENT_LEN + 2].copy_from_slice(&[9, 9]);
        r.seg1_len = 4;
        r.seg2_len = 2;
        assert_eq!(r.segments(), (&[1u8, 2, 3, 4][..], &[9u8, 9][..]));
        assert_eq!(ChunkRecord::wire_len(4, 2), RECORD_HEADER_LEN + SEGMENT_LEN + 2);
        assert_eq!(ChunkRecord::wire_len(4, 0), RECORD_HEADER_LEN + 4);
    }

    #[test]
    fn from_bytes_takes_short_ring_items() {
        let mut r: ChunkRecord = Zeroable::zeroed();
        r.vtag = 77;
        r.seg1_len = 4;
        r.data[..4].copy_from_slice(&[4, 0, 0, 4]);
        let bytes = &bytemuck::bytes_of(&r)[..ChunkRecord::wire_len(4, 0)];
        let back = ChunkRecord::from_bytes(bytes).unwrap();
        assert_eq!(back.vtag, 77);
        assert_eq!(back.segments().0, &[4, 0, 0, 4]);
        assert!(ChunkRecord::from_bytes(&bytes[..RECORD_HEADER_LEN - 1]).is_none());
    }

    #[test]
    fn items_read_in_place_as_copied() {
        // Every length combination, bogus ones included: the item holding
        // what the header says gives the copy's segments; a shorter one
        // is declined.
        let mut r: ChunkRecord = Zeroable::zeroed();
        for (i, b) in r.data.iter_mut().enumerate() {
            *b = i as u8;
        }
        r.vtag = 0xabcd;
        let mut buf = [0u64; core::mem::size_of::<ChunkRecord>() / 8];
        for (s1, s2) in [(0, 0), (24, 0), (512, 0), (9999, 0), (30, 4), (256, 256), (300, 9999), (0, 7)] {
            r.seg1_len = s1;
            r.seg2_len = s2;
            let len = ChunkRecord::wire_len(s1, s2).min(core::mem::size_of::<ChunkRecord>());
            let bytes: &mut [u8] = bytemuck::cast_slice_mut(&mut buf);
            bytes.copy_from_slice(bytemuck::bytes_of(&r));
            let (h, a, b) = split_item(&bytes[..len]).expect("whole item");
            assert_eq!((h.vtag, h.seg1_len, h.seg2_len), (0xabcd, s1, s2));
            assert_eq!((a, b), r.segments(), "{s1} {s2}");
            assert_eq!(bytemuck::bytes_of(h), bytemuck::bytes_of(r.header()));
            let want = r.segments().0.len().max(if s2 > 0 { SEGMENT_LEN + r.segments().1.len() } else { 0 });
            if want > 0 {
                assert!(split_item(&bytes[..RECORD_HEADER_LEN + want - 1]).is_none(), "{s1} {s2}: cut short");
            }
            assert!(split_item(&bytes[1..len]).is_none(), "misaligned");
        }
        assert!(split_item(&[0u8; RECORD_HEADER_LEN - 1]).is_none());
    }

    #[test]
    fn addresses_by_ip_version() {
        let mut r: ChunkRecord = Zeroable::zeroed();
        r.src_addr[..4].copy_from_slice(&[10, 0, 0, 1]);
        r.dst_addr = [0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2];
        r.ip_version = 4;
        assert_eq!(r.addrs().unwrap().0, core::net::IpAddr::from([10, 0, 0, 1]));
        r.ip_version = 6;
        assert_eq!(r.addrs().unwrap().1, core::net::IpAddr::from(r.dst_addr));
        r.ip_version = 5;
        assert!(r.addrs().is_none());
    }

    #[test]
    fn kinds_round_trip() {
        for k in 0..=8u8 {
            assert_eq!(RecordKind::from_u8(k).unwrap() as u8, k);
        }
        assert!(RecordKind::from_u8(9).is_none());
    }

    #[test]
    fn record_is_pod() {
        let r: ChunkRecord = Zeroable::zeroed();
        let bytes = bytemuck::bytes_of(&r);
        let back: &ChunkRecord = bytemuck::from_bytes(bytes);
        assert_eq!(back.ts_ns, 0);
    }
}
