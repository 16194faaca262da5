//! Where a path's DATA/SACK summary lives: a direct-mapped per-CPU array,
//! `PATH_SLOTS`, with the path's key in its slot (as `ASSOC_DIRS`), so a
//! packet of a path that holds its slot costs one inlined array access and a
//! key compare instead of an LRU hash lookup.
//!
//! A path hashing to a slot another path holds takes it over (counted as
//! `PATH_SLOT_TAKEOVERS`): the old path's summary is written whole to its
//! entry of the `PATHS` LRU map (the overflow), and the new path starts from
//! its own `PATHS` entry if it has one (its totals so far, its TSN: "first
//! DATA on a path" is not reported again for a path that comes back), else
//! from zero. So a path's summary on a CPU is its slot while it holds one,
//! else its `PATHS` entry; both only grow, and userspace takes, per CPU, the
//! one with more packets, then sums the CPUs: no total is lost to a
//! takeover, and a takeover between the agent's reads of the two maps is
//! seen at worst one poll late. A slot's first path marks it in
//! `PATH_SLOTS_USED`, so the agent reads only marked slots.

use core::mem::MaybeUninit;

use sctp_monitor_common::{PathKey, PathSlot, PathStats, counters};

use crate::{
    counters::bump,
    ctx::Packet,
    maps::{PATH_SLOTS, PATH_SLOTS_USED, PATHS},
    packet::Meta,
    zero::zero,
};

/// A path's key as the 11 words of [`PathKey`] ([`PathKey::words`]), built
/// in registers from the packet's metadata. A key written to memory field
/// by field (2- and 1-byte stores) and read back a word at a time stalls
/// the CPU's store-to-load forwarding on every such word: the compare with
/// the slot's key was a fifth of a DATA packet's time.
pub type KeyWords = [u32; 11];

#[inline(always)]
pub fn key_words<P: Packet>(meta: &Meta) -> KeyWords {
    let (s, d) = (meta.src.as_ptr().cast::<u32>(), meta.dst.as_ptr().cast::<u32>());
    // SAFETY: 16 bytes each, 4-byte aligned (see `addr`).
    unsafe {
        [
            s.read(),
            s.add(1).read(),
            s.add(2).read(),
            s.add(3).read(),
            d.read(),
            d.add(1).read(),
            d.add(2).read(),
            d.add(3).read(),
            meta.src_port as u32 | (meta.dst_port as u32) << 16,
            meta.vtag,
            P::DIRECTION as u32 | (meta.ip_version as u32) << 8,
        ]
    }
}

/// Writes the key's words to `dst` (one word store each: no `memcpy`, and
/// the same widths the key is read back with).
#[inline(always)]
fn store(k: &KeyWords, dst: *mut PathKey) {
    let d = dst as *mut u32;
    for (i, w) in k.iter().enumerate() {
        // SAFETY: 11 words of the key (see PathKey::words).
        unsafe { d.add(i).write(*w) };
    }
}

/// The key in memory, for map helpers.
#[inline(always)]
fn key_at<'a>(k: &KeyWords, dst: &'a mut MaybeUninit<PathKey>) -> &'a PathKey {
    store(k, dst.as_mut_ptr());
    // SAFETY: every byte was written by `store`.
    unsafe { dst.assume_init_ref() }
}

/// The summary of the path `k` on this CPU, created if needed; `ts` is the
/// coarse clock (the first-seen time of a new entry). `zero` is a scratch
/// value of zeroes but for `first_ns` (the LRU variant inserts it).
#[inline(always)]
pub fn entry<P: Packet>(k: &KeyWords, zero: &mut PathStats, ts: u64) -> *mut PathStats {
    // Written only when a map helper needs the key.
    let mut key = MaybeUninit::<PathKey>::uninit();
    if P::PATHS_LRU { lru_entry::<P>(key_at(k, &mut key), zero, ts) } else { slot_entry::<P>(k, &mut key, ts) }
}

#[inline(always)]
fn slot_entry<P: Packet>(k: &KeyWords, key: &mut MaybeUninit<PathKey>, ts: u64) -> *mut PathStats {
    let index = PathKey::slot_of(k, crate::config!(path_slot_mask));
    let Some(s) = PATH_SLOTS.get_ptr_mut(index) else {
        return core::ptr::null_mut();
    };
    // SAFETY: this CPU's copy of a live per-CPU array element.
    let s = unsafe { &mut *s };
    if !same(&s.key, k) {
        if s.stats.packets == 0 {
            mark_used(index);
        }
        take_over::<P>(s, k, key_at(k, key), ts);
    }
    &mut s.stats
}

/// Marks a slot as used in `PATH_SLOTS_USED` (its first path on this CPU).
#[inline(always)]
fn mark_used(index: u32) {
    if let Some(m) = PATH_SLOTS_USED.get_ptr_mut(index / 64) {
        // SAFETY: a live array element of 64 bytes; index % 64 < 64.
        unsafe { (*m)[(index % 64) as usize] = 1 };
    }
}

/// Whether the slot's key is `k` (word compares, no `memcmp` subprogram).
#[inline(always)]
pub fn same(a: &PathKey, k: &KeyWords) -> bool {
    let a = a.words();
    let mut d = 0;
    for i in 0..a.len() {
        d |= a[i] ^ k[i];
    }
    d == 0
}

/// Gives the slot to the path `k` (`key` in memory): what it held goes to
/// `PATHS` (written whole: the old path's totals on this CPU), and `k`
/// starts from its own `PATHS` entry if it has one (its totals so far),
/// else from zero.
#[inline(always)]
fn take_over<P: Packet>(s: &mut PathSlot, k: &KeyWords, key: &PathKey, ts: u64) {
    if s.stats.packets != 0 {
        bump::<P>(counters::PATH_SLOT_TAKEOVERS);
        if PATHS.insert(&s.key, &s.stats, 0).is_err() {
            bump::<P>(counters::PATH_UPDATE_FAILED);
        }
    }
    store(k, &mut s.key);
    let st = &mut s.stats;
    if let Some(o) = PATHS.get_ptr(key) {
        // SAFETY: this CPU's copy of a live per-CPU map value.
        *st = unsafe { *o };
        return;
    }
    let z = zero() as u64;
    st.packets = z;
    st.bytes = z;
    st.data_chunks = z;
    st.payload_bytes = z;
    st.retransmissions = z;
    st.sacks = z;
    st.gap_blocks = z;
    st.dup_tsns = z;
    st.first_ns = ts;
    st.last_ns = ts;
    st.last_data_ns = zero() as u64;
    let z = zero() as u32;
    st.highest_tsn = z;
    st.sack_cum_tsn = z;
    st.flags = z;
    st.sack_a_rwnd = z;
    st.sack_a_rwnd_min = z;
}

/// The design before `PATH_SLOTS`, kept for the benchmark's comparison
/// (`sctp_ingress_lru`): every path in the `PATHS` LRU map.
#[inline(always)]
fn lru_entry<P: Packet>(key: &PathKey, zero: &mut PathStats, ts: u64) -> *mut PathStats {
    if let Some(s) = PATHS.get_ptr_mut(key) {
        return s;
    }
    // `zero` is never written but for first_ns.
    zero.first_ns = ts;
    if PATHS.insert(key, zero, 0).is_err() {
        bump::<P>(counters::PATH_UPDATE_FAILED);
        return core::ptr::null_mut();
    }
    PATHS.get_ptr_mut(key).unwrap_or(core::ptr::null_mut())
}
