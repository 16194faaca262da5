//! DATA, I-DATA and SACK: summarised per path in per-CPU maps, with a
//! ring-buffer record only when the tracker must know now (first DATA on a
//! path, new DATA moving to another path, DATA resuming after idle, a
//! receiver window closing or opening, gap reports beginning or ending).

use aya_ebpf::helpers::generated::bpf_ktime_get_coarse_ns;
use sctp_monitor_common::{
    AssocDirKey, AssocDirState, RecordKind, counters,
    sctp::{DATA_HEADER_LEN, I_DATA_HEADER_LEN, SACK_HEADER_LEN, chunk, tsn_gt},
    stats::{
        ASSOC_SACK_GAPS, ASSOC_SACK_SEEN, ASSOC_SACK_WINDOW_ZERO, ASSOC_TSN_UNSET, PATH_FLAG_HAS_SACK,
        PATH_FLAG_HAS_TSN,
    },
};

use crate::{
    addr,
    counters::bump,
    ctx::Packet,
    cursor::load,
    emit,
    maps::ASSOC_DIRS,
    packet::{Meta, Scratch},
    paths,
    zero::zero,
};

/// What the DATA and SACK chunks of one packet add up to.
#[repr(C)]
pub struct PacketData {
    data_chunks: u32,
    payload: u32,
    pub retrans: u32,
    pub high_rtx_tsn: u32,
    pub new_chunks: u32,
    highest_tsn: u32,
    first_new_off: u32,
    first_new_len: u16,
    first_new_type: u8,
    first_type: u8,
    first_off: u32,
    first_len: u16,
    sacks: u32,
    sack_off: u32,
    sack_len: u16,
    sack_cum: u32,
    sack_rwnd: u32,
    gaps: u32,
    dups: u32,
}

impl PacketData {
    /// One store per sum (not a `memset` call: see `zero`).
    #[inline(always)]
    pub fn reset(&mut self) {
        let z = zero() as u32;
        self.data_chunks = z;
        self.payload = z;
        self.retrans = z;
        self.new_chunks = z;
        self.highest_tsn = z;
        self.sacks = z;
        self.gaps = z;
        self.dups = z;
    }
}

/// The association direction's slot, looked up at the packet's first DATA
/// chunk (`slot` keeps it, + 1, for the packet's other chunks) and taken
/// over (and counted) when it held another direction: every TSN from the
/// first DATA on is new.
#[inline(always)]
fn assoc_state<P: Packet>(meta: &Meta, first_tsn: Option<u32>, slot: &mut u32) -> *mut AssocDirState {
    if *slot != 0 {
        return assoc_at(*slot);
    }
    let key = AssocDirKey { vtag: meta.vtag, src_port: meta.src_port, dst_port: meta.dst_port };
    let index = key.slot(crate::config!(assoc_dir_mask));
    let Some(st) = ASSOC_DIRS.get_ptr_mut(index) else {
        return core::ptr::null_mut();
    };
    *slot = index + 1;
    // SAFETY: a live array element; CPUs may race on it, which can
    // misclassify a chunk but never corrupt memory.
    let s = unsafe { &mut *st };
    if word(s.key) != word(key) {
        if s.key.vtag != 0 || s.key.src_port != 0 {
            bump::<P>(counters::ASSOC_DIR_REPLACED);
        }
        s.key = key;
        addr::clear(&mut s.last_new_src);
        addr::clear(&mut s.last_new_dst);
        s.last_new_ns = 0;
        s.unsettled = zero() as u16;
        // Taken by a SACK: the sender's first DATA sets the TSN.
        match first_tsn {
            Some(t) => {
                s.highest_tsn = t.wrapping_sub(1);
                s.sack_flags = zero() as u16;
            }
            None => s.sack_flags = ASSOC_TSN_UNSET,
        }
    }
    st
}

/// An association direction's key as one word, for a one-instruction
/// compare (the derived `PartialEq` compares field by field).
#[inline(always)]
fn word(k: AssocDirKey) -> u64 {
    // SAFETY: AssocDirKey is 8 bytes of plain integers (asserted in common).
    unsafe { core::mem::transmute::<AssocDirKey, u64>(k) }
}

/// The `ASSOC_DIRS` entry of a slot kept by `assoc_state` (0: none).
#[inline(always)]
fn assoc_at(slot: u32) -> *mut AssocDirState {
    if slot == 0 {
        return core::ptr::null_mut();
    }
    ASSOC_DIRS.get_ptr_mut(slot - 1).unwrap_or(core::ptr::null_mut())
}

#[inline(always)]
pub fn on_data<P: Packet>(p: &P, meta: &Meta, assoc_slot: &mut u32, pd: &mut PacketData, off: usize, t: u8, len: u16) {
    let hlen = if t == chunk::I_DATA { I_DATA_HEADER_LEN } else { DATA_HEADER_LEN };
    if (len as usize) < hlen {
        bump::<P>(counters::MALFORMED_CHUNK_LEN);
        return;
    }
    let Some(tsn) = load::<[u8; 4], P>(p, off + 4) else {
        return;
    };
    let tsn = u32::from_be_bytes(tsn);
    if pd.data_chunks == 0 {
        pd.first_off = off as u32;
        pd.first_len = len;
        pd.first_type = t;
    }
    pd.data_chunks += 1;
    pd.payload += len as u32 - hlen as u32;
    let st = assoc_state::<P>(meta, Some(tsn), assoc_slot);
    if st.is_null() {
        return;
    }
    // SAFETY: a live map value; concurrent CPUs may race on it, which can
    // misclassify one chunk but never corrupt memory.
    unsafe {
        if (*st).sack_flags & ASSOC_TSN_UNSET != 0 {
            (*st).highest_tsn = tsn.wrapping_sub(1);
            (*st).sack_flags &= !ASSOC_TSN_UNSET;
        }
        if tsn_gt(tsn, (*st).highest_tsn) {
            (*st).highest_tsn = tsn;
            if pd.new_chunks == 0 {
                pd.first_new_off = off as u32;
                pd.first_new_len = len;
                pd.first_new_type = t;
            }
            pd.new_chunks += 1;
        } else {
            if pd.retrans == 0 || tsn_gt(tsn, pd.high_rtx_tsn) {
                pd.high_rtx_tsn = tsn;
            }
            pd.retrans += 1;
        }
    }
    if pd.data_chunks == 1 || tsn_gt(tsn, pd.highest_tsn) {
        pd.highest_tsn = tsn;
    }
}

#[inline(always)]
pub fn on_sack<P: Packet>(p: &P, pd: &mut PacketData, off: usize, len: u16) {
    if (len as usize) < SACK_HEADER_LEN {
        bump::<P>(counters::MALFORMED_CHUNK_LEN);
        return;
    }
    let Some(s) = load::<[u8; 12], P>(p, off + 4) else {
        return;
    };
    if pd.sacks == 0 {
        pd.sack_off = off as u32;
        pd.sack_len = len;
    }
    pd.sacks += 1;
    pd.sack_cum = u32::from_be_bytes([s[0], s[1], s[2], s[3]]);
    pd.sack_rwnd = u32::from_be_bytes([s[4], s[5], s[6], s[7]]);
    pd.gaps += u16::from_be_bytes([s[8], s[9]]) as u32;
    pd.dups += u16::from_be_bytes([s[10], s[11]]) as u32;
}

/// Folds the packet's DATA/SACK into its path and decides whether the
/// tracker must hear about it now.
#[inline(always)]
pub fn finish<P: Packet>(p: &P, scratch: &mut Scratch) {
    let assoc = assoc_at(scratch.walk.assoc_slot);
    let pd = &scratch.pd;
    if pd.data_chunks == 0 && pd.sacks == 0 {
        return;
    }
    // SAFETY: helper without arguments.
    scratch.meta.ts = unsafe { bpf_ktime_get_coarse_ns() };
    let meta = &scratch.meta;
    let k = paths::key_words::<P>(meta);
    let stats = paths::entry::<P>(&k, &mut scratch.zero_stats, meta.ts);
    if stats.is_null() {
        return;
    }
    // The SACK sender's own direction (the packet's): its SACK state is
    // kept there, whichever path or CPU carries its SACKs.
    let sender =
        if pd.sacks != 0 { assoc_state::<P>(meta, None, &mut scratch.walk.assoc_slot) } else { core::ptr::null_mut() };
    let mut kind: Option<RecordKind> = None;
    let first_sack;
    let mut change = false;
    // SAFETY: this CPU's copy of a live per-CPU map value.
    unsafe {
        let s = &mut *stats;
        // A path's first packet always reaches userspace: an agent started
        // mid-flight learns every path of an association from it, as a
        // capture would.
        first_sack = pd.data_chunks == 0 && s.flags & PATH_FLAG_HAS_SACK == 0;
        if pd.data_chunks != 0 {
            if s.flags & PATH_FLAG_HAS_TSN == 0 {
                kind = Some(RecordKind::DataFirst);
            } else if meta.ts.wrapping_sub(s.last_data_ns) > crate::config!(data_idle_ns) {
                kind = Some(RecordKind::DataResumed);
            }
            if pd.retrans != 0 && kind.is_none() {
                kind = Some(RecordKind::DataRetransmit);
            }
            if pd.new_chunks != 0 && !assoc.is_null() {
                let st = &mut *assoc;
                if st.last_new_ns != 0
                    && (!addr::same(&st.last_new_dst, &meta.dst) || !addr::same(&st.last_new_src, &meta.src))
                {
                    kind = Some(RecordKind::DataPathChange);
                    st.unsettled = (pd.retrans != 0) as u16;
                } else if st.unsettled != 0 {
                    kind = Some(RecordKind::DataPathSettle);
                    st.unsettled = 0;
                }
                addr::copy(&mut st.last_new_src, &meta.src);
                addr::copy(&mut st.last_new_dst, &meta.dst);
                st.last_new_ns = meta.ts;
            }
            if s.flags & PATH_FLAG_HAS_TSN == 0 || tsn_gt(pd.highest_tsn, s.highest_tsn) {
                s.highest_tsn = pd.highest_tsn;
            }
            s.flags |= PATH_FLAG_HAS_TSN;
            s.data_chunks += pd.data_chunks as u64;
            s.payload_bytes += pd.payload as u64;
            s.retransmissions += pd.retrans as u64;
            s.last_data_ns = meta.ts;
        }
        if pd.sacks != 0 {
            let had = s.flags & PATH_FLAG_HAS_SACK != 0;
            if !had || pd.sack_rwnd < s.sack_a_rwnd_min {
                s.sack_a_rwnd_min = pd.sack_rwnd;
            }
            // The receiver's window closed or opened again (the tracker
            // reports both), or its gap reports began or ended (a
            // retransmission while it reports gaps is a fast retransmit,
            // no path error): a zero window or gaps in its first SACK too.
            if !sender.is_null() {
                let f = (*sender).sack_flags;
                let zero = pd.sack_rwnd == 0;
                let gaps = pd.gaps != 0;
                change = if f & ASSOC_SACK_SEEN == 0 {
                    zero || gaps
                } else {
                    (f & ASSOC_SACK_WINDOW_ZERO != 0) != zero || (f & ASSOC_SACK_GAPS != 0) != gaps
                };
                let mut n = (f & ASSOC_TSN_UNSET) | ASSOC_SACK_SEEN;
                if zero {
                    n |= ASSOC_SACK_WINDOW_ZERO;
                }
                if gaps {
                    n |= ASSOC_SACK_GAPS;
                }
                (*sender).sack_flags = n;
            }
            s.flags |= PATH_FLAG_HAS_SACK;
            s.sacks += pd.sacks as u64;
            s.sack_cum_tsn = pd.sack_cum;
            s.sack_a_rwnd = pd.sack_rwnd;
            s.gap_blocks += pd.gaps as u64;
            s.dup_tsns += pd.dups as u64;
        }
        s.packets += 1;
        s.bytes += meta.ip_len as u64;
        s.last_ns = meta.ts;
    }
    if first_sack {
        emit::data(p, meta, RecordKind::SackFirst, pd, pd.sack_off, chunk::SACK, pd.sack_len);
        return;
    }
    if change {
        emit::data(p, meta, RecordKind::SackChange, pd, pd.sack_off, chunk::SACK, pd.sack_len);
    }
    if let Some(kind) = kind {
        // The record shows the first new DATA chunk, or the first DATA chunk
        // when the packet only retransmits.
        if pd.new_chunks != 0 {
            emit::data(p, meta, kind, pd, pd.first_new_off, pd.first_new_type, pd.first_new_len);
        } else {
            emit::data(p, meta, kind, pd, pd.first_off, pd.first_type, pd.first_len);
        }
    }
}
