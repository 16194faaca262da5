//! Keys and values of the per-path (DATA/SACK) and per-association-direction
//! maps.

use bytemuck::{Pod, Zeroable};

/// A path of one association direction: addresses, ports, verification tag
/// and direction on the interface.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Pod, Zeroable)]
pub struct PathKey {
    pub src_addr: [u8; 16],
    pub dst_addr: [u8; 16],
    pub src_port: u16,
    pub dst_port: u16,
    pub vtag: u32,
    pub direction: u8,
    pub ip_version: u8,
    pub _pad: [u8; 2],
}
const _: () = assert!(core::mem::size_of::<PathKey>() == 44);

impl PathKey {
    /// The key's slot in a `PATH_SLOTS` array of `mask + 1` entries (a
    /// power of two): the tag and ports (as `AssocDirKey::slot`), then the
    /// addresses' first and last words, so an association's paths spread
    /// over different slots.
    #[inline(always)]
    pub fn slot(&self, mask: u32) -> u32 {
        Self::slot_of(self.words(), mask)
    }

    /// [`PathKey::slot`] of a key given as its 11 words ([`PathKey::words`]:
    /// the kernel builds them in registers). Word 8 holds the ports (source
    /// in the low half: little-endian, as both BPF and the hosts are), word
    /// 9 the tag, word 10's low byte the direction.
    #[inline(always)]
    pub fn slot_of(w: &[u32; 11], mask: u32) -> u32 {
        let ports = w[8].rotate_left(16);
        let mut h = w[9] ^ ports.wrapping_mul(0x9e37_79b1) ^ (w[10] & 0xff);
        h = (h ^ w[0] ^ w[3]).wrapping_mul(0x85eb_ca6b);
        h = (h ^ w[4] ^ w[7]).wrapping_mul(0xc2b2_ae35);
        (h ^ (h >> 16)) & mask
    }

    /// The key as 11 words (word loads in the kernel, not byte loads).
    #[inline(always)]
    pub fn words(&self) -> &[u32; 11] {
        // SAFETY: PathKey is repr(C), 4-byte aligned and 44 bytes without
        // padding (asserted above and by bytemuck), so it is 11 words.
        unsafe { &*(self as *const PathKey).cast::<[u32; 11]>() }
    }
}

/// DATA/I-DATA and SACK counters of one path, per CPU. Userspace sums the
/// counters over CPUs and takes the highest TSN / latest times.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Pod, Zeroable)]
pub struct PathStats {
    /// Packets carrying DATA, I-DATA or SACK.
    pub packets: u64,
    /// IP bytes of those packets.
    pub bytes: u64,
    pub data_chunks: u64,
    /// User data bytes in DATA/I-DATA (chunk length minus headers).
    pub payload_bytes: u64,
    /// DATA chunks whose TSN was not above the association direction's
    /// highest TSN when seen.
    pub retransmissions: u64,
    pub sacks: u64,
    pub gap_blocks: u64,
    pub dup_tsns: u64,
    /// Times in CLOCK_MONOTONIC_COARSE (`bpf_ktime_get_coarse_ns`): the
    /// same clock as the records' `ts_ns`, at one kernel tick's resolution
    /// (at most a few ms behind), because the precise read costs more than
    /// the rest of a DATA packet's accounting.
    pub first_ns: u64,
    pub last_ns: u64,
    /// Last DATA/I-DATA (not SACK) on this path.
    pub last_data_ns: u64,
    /// Highest TSN of DATA on this path (valid when `flags & HAS_TSN`).
    pub highest_tsn: u32,
    /// Last SACK cumulative TSN ack (valid when `flags & HAS_SACK`).
    pub sack_cum_tsn: u32,
    /// `PATH_FLAG_*`.
    pub flags: u32,
    /// Last SACK's advertised receiver window.
    pub sack_a_rwnd: u32,
    /// Smallest advertised receiver window of the path's SACKs (valid when
    /// `flags & HAS_SACK`).
    pub sack_a_rwnd_min: u32,
    pub _pad: u32,
}
const _: () = assert!(core::mem::size_of::<PathStats>() == 112);

/// One slot of the kernel's direct-mapped per-CPU `PATH_SLOTS` array: the
/// path it holds and that path's counters since it took the slot. A path
/// hashing to a taken slot takes it over; the old path's counters are then
/// added to its entry of the `PATHS` LRU map, so a path's totals are the sum
/// of its slots (one per CPU) and its `PATHS` entry. `stats.packets == 0`:
/// the slot is free.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Pod, Zeroable)]
pub struct PathSlot {
    pub key: PathKey,
    pub _pad: u32,
    pub stats: PathStats,
}
const _: () = assert!(core::mem::size_of::<PathSlot>() == 160);

pub const PATH_FLAG_HAS_TSN: u32 = 1;
pub const PATH_FLAG_HAS_SACK: u32 = 2;

/// One direction of an association: packets carrying this tag between these
/// ports.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Pod, Zeroable)]
pub struct AssocDirKey {
    pub vtag: u32,
    pub src_port: u16,
    pub dst_port: u16,
}
const _: () = assert!(core::mem::size_of::<AssocDirKey>() == 8);

impl AssocDirKey {
    /// The key's slot in an `ASSOC_DIRS` array of `mask + 1` entries (a power
    /// of two). The tag is the receiver's random 32-bit choice; the
    /// multiplication spreads the ports over the high bits that the fold
    /// brings down.
    #[inline(always)]
    pub fn slot(&self, mask: u32) -> u32 {
        let ports = ((self.src_port as u32) << 16) | self.dst_port as u32;
        let h = (self.vtag ^ ports.wrapping_mul(0x9e37_79b1)).wrapping_mul(0x85eb_ca6b);
        (h ^ (h >> 16)) & mask
    }
}

/// Where new DATA of an association direction went last: one slot of the
/// kernel's direct-mapped `ASSOC_DIRS` array, which holds the key it is for
/// (a different association direction hashing to the slot takes it over).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Pod, Zeroable)]
pub struct AssocDirState {
    pub key: AssocDirKey,
    pub last_new_src: [u8; 16],
    pub last_new_dst: [u8; 16],
    pub last_new_ns: u64,
    pub highest_tsn: u32,
    /// Not 0 while the last path change is unsettled: its packet also
    /// retransmitted DATA, so the next new DATA shows whether the stack
    /// moved or only bundled new DATA with a retransmission.
    pub unsettled: u16,
    /// `ASSOC_SACK_*`: what this direction's sender said in its last SACK
    /// (of the peer's DATA), whichever path or CPU carried it.
    pub sack_flags: u16,
}

/// [`AssocDirState::sack_flags`]: a SACK of this sender was seen.
pub const ASSOC_SACK_SEEN: u16 = 1;
/// Its last SACK advertised a zero window.
pub const ASSOC_SACK_WINDOW_ZERO: u16 = 2;
/// Its last SACK reported gaps.
pub const ASSOC_SACK_GAPS: u16 = 4;
/// The slot was taken by a SACK: no TSN of this sender's DATA yet.
pub const ASSOC_TSN_UNSET: u16 = 8;
const _: () = assert!(core::mem::size_of::<AssocDirState>() == 56);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slot_of_words_reads_the_fields_where_the_key_has_them() {
        // The fields' own formula: the kernel hashes the words, userspace
        // and the tests the key; both must give the same slot.
        let field_slot = |k: &PathKey, mask: u32| {
            let w = k.words();
            let ports = ((k.src_port as u32) << 16) | k.dst_port as u32;
            let mut h = k.vtag ^ ports.wrapping_mul(0x9e37_79b1) ^ k.direction as u32;
            h = (h ^ w[0] ^ w[3]).wrapping_mul(0x85eb_ca6b);
            h = (h ^ w[4] ^ w[7]).wrapping_mul(0xc2b2_ae35);
            (h ^ (h >> 16)) & mask
        };
        for i in 0..1000u32 {
            let k = PathKey {
                src_addr: [i as u8, 1, 2, 3, 0, 0, 0, 0, 0, 0, 0, 0, 9, 8, 7, (i >> 3) as u8],
                dst_addr: [10, 0, (i >> 8) as u8, i as u8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1],
                src_port: 36412u16.wrapping_add(i as u16),
                dst_port: 38412u16.wrapping_sub(i as u16 * 7),
                vtag: i.wrapping_mul(0x0101_0101),
                direction: (i & 1) as u8,
                ip_version: if i % 3 == 0 { 6 } else { 4 },
                _pad: [0; 2],
            };
            assert_eq!(k.slot(0xffff), field_slot(&k, 0xffff), "{k:?}");
        }
    }

    #[test]
    fn sizes_have_no_hidden_padding() {
        // bytemuck's derive already refuses padding; these pin the ABI.
        assert_eq!(core::mem::size_of::<PathKey>(), 44);
        assert_eq!(core::mem::align_of::<PathKey>(), 4);
        assert_eq!(core::mem::size_of::<PathStats>(), 112);
        assert_eq!(core::mem::size_of::<AssocDirKey>(), 8);
        assert_eq!(core::mem::size_of::<AssocDirState>(), 56);
    }
}
