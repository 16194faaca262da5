//! 16-byte address copies and compares in word operations.
//!
//! `[u8; 16]` has alignment 1, so the compiler copies it byte by byte or
//! through a `memcpy` subprogram whose 16-step loop the verifier walks at
//! every call site: both cost instructions on the hot path and verifier
//! states. Every address field the programs copy sits 4-byte aligned (the
//! structs hold `u32`s, and the asserts below pin the offsets), so four word
//! moves do it.

use core::mem::{align_of, offset_of};

use sctp_monitor_common::{AssocDirState, ChunkRecord, PathKey};

use crate::{
    packet::{Meta, Scratch},
    zero::zero,
};

const _: () = {
    assert!(align_of::<Scratch>() >= 4 && offset_of!(Scratch, meta) % 4 == 0 && offset_of!(Scratch, key) % 4 == 0);
    assert!(offset_of!(Meta, src) % 4 == 0 && offset_of!(Meta, dst) % 4 == 0);
    assert!(align_of::<ChunkRecord>() >= 4 && offset_of!(ChunkRecord, header.src_addr) % 4 == 0);
    assert!(offset_of!(ChunkRecord, header.dst_addr) % 4 == 0);
    assert!(align_of::<PathKey>() >= 4 && offset_of!(PathKey, src_addr) % 4 == 0);
    assert!(offset_of!(PathKey, dst_addr) % 4 == 0);
    assert!(align_of::<AssocDirState>() >= 4 && offset_of!(AssocDirState, last_new_src) % 4 == 0);
    assert!(offset_of!(AssocDirState, last_new_dst) % 4 == 0);
};

/// `*dst = *src` for addresses in the structs above (4-byte aligned).
#[inline(always)]
pub fn copy(dst: &mut [u8; 16], src: &[u8; 16]) {
    let d = dst.as_mut_ptr().cast::<u32>();
    let s = src.as_ptr().cast::<u32>();
    // SAFETY: both are 16 bytes, 4-byte aligned (see the asserts above).
    unsafe {
        for i in 0..4 {
            d.add(i).write(s.add(i).read());
        }
    }
}

/// `*dst = [0; 16]`, four word stores (not merged with the next address's
/// into a `memset` call: see `zero`).
#[inline(always)]
pub fn clear(dst: &mut [u8; 16]) {
    let d = dst.as_mut_ptr().cast::<u32>();
    let z = zero() as u32;
    // SAFETY: as in `copy`.
    unsafe {
        for i in 0..4 {
            d.add(i).write(z);
        }
    }
}

/// `a == b`, without a `memcmp` call.
#[inline(always)]
pub fn same(a: &[u8; 16], b: &[u8; 16]) -> bool {
    let (a, b) = (a.as_ptr().cast::<u32>(), b.as_ptr().cast::<u32>());
    // SAFETY: as in `copy`.
    unsafe {
        a.read() == b.read()
            && a.add(1).read() == b.add(1).read()
            && a.add(2).read() == b.add(2).read()
            && a.add(3).read() == b.add(3).read()
    }
}
