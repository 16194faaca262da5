//! Zeroing that stays a few stores.
//!
//! bpf-linker runs LLVM with `--bpf-expand-memcpy-in-order`, under which a
//! `memset` is never expanded into stores. LLVM still merges a run of
//! adjacent zero stores into one `memset`, which then becomes a call to the
//! exported `memset`: a subprogram that stores one byte per loop iteration.
//! Every SCTP packet made three such calls (its two addresses, its DATA/SACK
//! sums, the walk's HEARTBEAT slot: 64 bytes, ~20 ns of a HEARTBEAT's
//! ~150 ns under `perf`). Stores of a zero the optimiser cannot see are not
//! merged, so they stay what the source says: one store per field.

/// 0, hidden from the optimiser. Each call is a value of its own (an `asm`
/// it must keep, one instruction): stores of one hidden zero to adjacent
/// bytes would still be merged into a `memset` of that byte.
#[inline(always)]
pub fn zero() -> usize {
    let v: usize;
    // SAFETY: sets a register to 0; no memory, stack or flags touched.
    unsafe { core::arch::asm!("{0} = 0", out(reg) v, options(nomem, nostack, preserves_flags)) };
    v
}
