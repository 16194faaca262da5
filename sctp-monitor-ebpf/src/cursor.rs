//! Bounds-checked packet access: everything reads through [`ptr_at`].

use core::mem::size_of;

use crate::ctx::Packet;

/// Largest offset the parser ever looks at. Bounding offsets lets the
/// verifier prove `start + off` cannot wrap; no real frame is this long.
pub const MAX_OFFSET: usize = 0x3fff;

/// A pointer to a `T` at `off` bytes into the packet, or `None` when the
/// packet is too short.
#[inline(always)]
pub fn ptr_at<T, P: Packet>(p: &P, off: usize) -> Option<*const T> {
    if off > MAX_OFFSET {
        return None;
    }
    let start = p.start();
    let end = p.end();
    if start + off + size_of::<T>() > end {
        return None;
    }
    Some((start + off) as *const T)
}

/// Reads a `T` (plain bytes, any alignment) at `off`.
#[inline(always)]
pub fn read<T: Copy, P: Packet>(p: &P, off: usize) -> Option<T> {
    // SAFETY: ptr_at proved the bytes are in the packet; read_unaligned
    // copes with any alignment.
    ptr_at::<T, P>(p, off).map(|ptr| unsafe { ptr.read_unaligned() })
}

/// Hides a value from the optimiser: it cannot fold or re-derive what comes
/// out, so the register the verifier has bounded is the one that is used
/// (the kernel selftests' `barrier_var`).
#[inline(always)]
pub fn opaque(v: usize) -> usize {
    let mut v = v;
    // SAFETY: a register move onto itself (an empty statement would leave
    // two BTF line records on one instruction, which the kernel rejects).
    unsafe { core::arch::asm!("{0} = {0}", inout(reg) v, options(pure, nomem, nostack, preserves_flags)) };
    v
}

/// Reads a `T` at a variable offset (from packet contents: the chunk and
/// parameter walks) with direct packet access. The optimiser would rewrite
/// `start + off + n > end` into a comparison of plain numbers the verifier
/// cannot use as a range proof; [`opaque`] keeps the pointer comparison.
/// The parser has already checked that the IP packet lies in the linear
/// data, so nothing an SCTP walk reads is beyond `end`.
#[inline(always)]
pub fn load<T: Copy, P: Packet>(p: &P, off: usize) -> Option<T> {
    if off > MAX_OFFSET {
        return None;
    }
    let ptr = p.start() + opaque(off);
    let last = opaque(ptr + size_of::<T>());
    if last > p.end() {
        return None;
    }
    // SAFETY: the check above proved the bytes are in the packet.
    Some(unsafe { (ptr as *const T).read_unaligned() })
}

/// Copies a `T` at a variable offset with the kernel's load-bytes helper:
/// for loops over packet contents outside the per-packet hot path (the
/// INIT-ACK parameter walk), where direct access would multiply the
/// verifier's states (each iteration's packet range is a state of its own).
#[inline(always)]
pub fn copy<T: Copy, P: Packet>(p: &P, off: usize) -> Option<T> {
    if off > MAX_OFFSET {
        return None;
    }
    let mut v = core::mem::MaybeUninit::<T>::uninit();
    // SAFETY: v has room for size_of::<T>() bytes; on success they are
    // initialised.
    unsafe {
        if p.load(off as u32, v.as_mut_ptr().cast(), size_of::<T>() as u32) { Some(v.assume_init()) } else { None }
    }
}

/// A header cursor: each parser reads at `off` and advances it (the
/// xdp-tools `hdr_cursor` idea).
#[derive(Clone, Copy)]
pub struct Cursor {
    pub off: usize,
}
