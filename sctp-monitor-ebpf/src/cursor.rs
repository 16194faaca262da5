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

/// Copies a `T` at a variable offset with the kernel's load-bytes helper.
/// Used where offsets come from packet contents (the chunk and parameter
/// walks): the helper checks bounds at run time, so the verifier needs no
/// packet-range proof that the compiler's rewrites of `start + off + n > end`
/// would defeat.
#[inline(always)]
pub fn load<T: Copy, P: Packet>(p: &P, off: usize) -> Option<T> {
    if off > MAX_OFFSET {
        return None;
    }
    let mut v = core::mem::MaybeUninit::<T>::uninit();
    // SAFETY: v has room for size_of::<T>() bytes; on success they are
    // initialised.
    unsafe {
        if p.load(off as u32, v.as_mut_ptr().cast(), size_of::<T>() as u32) {
            Some(v.assume_init())
        } else {
            None
        }
    }
}

/// A header cursor: each parser reads at `off` and advances it (the
/// xdp-tools `hdr_cursor` idea).
#[derive(Clone, Copy)]
pub struct Cursor {
    pub off: usize,
}
