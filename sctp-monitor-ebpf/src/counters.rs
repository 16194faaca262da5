//! Per-CPU counter updates (no atomics needed: per-CPU slots).

use aya_log_ebpf::warn;
use sctp_monitor_common::counters::{self, COUNT, chunk_counter_index};

use crate::{
    ctx::Packet,
    maps::{CHUNK_COUNTERS, COUNTERS, IFACE_SLOT_TABLE, IFACE_SLOTS},
};

/// Adds 1 to a counter of this direction and returns the new value.
#[inline(always)]
pub fn bump<P: Packet>(counter: u32) -> u64 {
    add::<P>(counter, 1)
}

#[inline(always)]
pub fn add<P: Packet>(counter: u32, n: u64) -> u64 {
    let idx = P::DIRECTION as u32 * COUNT + counter;
    match COUNTERS.get_ptr_mut(idx) {
        // SAFETY: per-CPU slot owned by this CPU while the program runs.
        Some(v) => unsafe {
            *v += n;
            *v
        },
        None => 0,
    }
}

/// The slot for chunk counters of the interface `ifindex` (0 = not
/// registered).
#[inline(always)]
pub fn iface_slot(ifindex: u32) -> u32 {
    match IFACE_SLOTS.get(ifindex % IFACE_SLOT_TABLE) {
        Some(&v) if (v >> 32) as u32 == ifindex => v as u32,
        _ => 0,
    }
}

#[inline(always)]
pub fn bump_chunk<P: Packet>(slot: u32, chunk_type: u8) {
    if let Some(v) = CHUNK_COUNTERS.get_ptr_mut(chunk_counter_index(slot, P::DIRECTION, chunk_type)) {
        // SAFETY: per-CPU slot.
        unsafe { *v += 1 };
    }
}

/// Counts a lost ring-buffer record, with a diagnostic on the rare path:
/// only when this CPU's count reaches a power of two.
#[inline(always)]
pub fn ringbuf_lost<P: Packet>(p: &P) {
    let n = bump::<P>(counters::RINGBUF_LOST);
    if n.is_power_of_two() {
        // Not per packet: 1, 2, 4, 8, ... losses.
        warn!(p.ctx(), "ring buffer full: {} records lost on this CPU", n);
    }
}

/// Counts a packet with more chunks than the walk bound, logging rarely.
#[inline(always)]
pub fn too_many_chunks<P: Packet>(p: &P) {
    let n = bump::<P>(counters::TOO_MANY_CHUNKS);
    if n.is_power_of_two() {
        warn!(p.ctx(), "packets with more than MAX_CHUNKS chunks: {} on this CPU", n);
    }
}
