//! The chunk walk: up to `MAX_CHUNKS` chunks of one SCTP packet, stepping by
//! the padded length and stopping on a length under 4 or past the end
//! (`sctp_monitor_common::sctp::step`, the rule userspace shares).
//!
//! The walk runs under `bpf_loop`: the verifier checks the per-chunk body
//! once instead of once per unrolled iteration and path, which keeps the
//! program far below its complexity limit whatever is inside a chunk.

use core::ffi::c_void;

use aya_ebpf::helpers::generated::bpf_loop;
use sctp_monitor_common::{
    AssocDirState, counters,
    record::RECORD_FLAG_BUNDLED_PAD,
    sctp::{ChunkClass, ChunkHeader, MAX_CHUNKS, Step, chunk, classify, step},
};

use crate::{
    aggregate,
    counters::{add, bump, bump_chunk, iface_slot, too_many_chunks},
    ctx::Packet,
    cursor::{MAX_OFFSET, load},
    emit,
    packet::{Scratch, Sctp},
    zero::zero,
};

/// The walk's state, on the caller's stack, shared with the loop body.
#[repr(C)]
struct Walk<P: Packet> {
    p: *const P,
    scratch: *mut Scratch,
    /// The association direction's map value, looked up at the first DATA.
    assoc: *mut AssocDirState,
    end: u64,
    walked: u64,
    slot: u32,
    /// A HEARTBEAT kept aside until the walk knows whether PAD was bundled
    /// (HEARTBEAT + PAD is a path-MTU probe, RFC 8899).
    hb_off: u32,
    hb_len: u16,
    hb_flags: u8,
    hb_index: u8,
    hb_present: u8,
    has_pad: u8,
    done: u8,
    _pad: u8,
}

const CONTINUE: i64 = 0;
const BREAK: i64 = 1;

/// One chunk. Returns BREAK when the walk is over.
unsafe extern "C" fn chunk_step<P: Packet>(index: u64, ctx: *mut c_void) -> i64 {
    // SAFETY: ctx is the Walk that `walk` passed to bpf_loop; p and scratch
    // point to the caller's packet wrapper and this CPU's scratch entry.
    let w = unsafe { &mut *(ctx as *mut Walk<P>) };
    let p = unsafe { &*w.p };
    let scratch = unsafe { &mut *w.scratch };
    // The offset lives in map memory, whose contents the verifier does not
    // track: it is a plain number bounded by the checks below on every call,
    // so the calls' states match and the verifier checks the body once
    // rather than once per offset range (direct packet access would
    // otherwise make it track each range precisely).
    // SAFETY: this CPU's scratch entry.
    let off = unsafe { core::ptr::read_volatile(&scratch.walk_off) } as usize;
    let end = w.end as usize;
    if off >= end || off > MAX_OFFSET {
        w.done = 1;
        return BREAK;
    }
    let Some(h) = load::<ChunkHeader, P>(p, off) else {
        // Fewer than 4 bytes left: a chunk header cut short.
        bump::<P>(counters::MALFORMED_CHUNK_LEN);
        w.done = 1;
        return BREAK;
    };
    let len = h.len();
    let next = match step(off as u32, len, end as u32) {
        Step::Next(n) => n as u64,
        Step::BadLength => {
            bump::<P>(counters::MALFORMED_CHUNK_LEN);
            w.done = 1;
            return BREAK;
        }
    };
    let t = h.chunk_type;
    let i = index as u8;
    bump_chunk::<P>(w.slot, t);
    w.walked += 1;
    match classify(t) {
        ChunkClass::Data => aggregate::on_data(p, &scratch.meta, &mut w.assoc, &mut scratch.pd, off, t, len),
        ChunkClass::Sack => aggregate::on_sack(p, &mut scratch.pd, off, len),
        ChunkClass::Control => {
            if t == chunk::HEARTBEAT && w.hb_present == 0 {
                w.hb_off = off as u32;
                w.hb_len = len;
                w.hb_flags = h.flags;
                w.hb_index = i;
                w.hb_present = 1;
            } else {
                emit::control(p, &scratch.meta, off as u32, t, h.flags, len, i, 0);
            }
        }
        ChunkClass::CookieEcho => emit::cookie_echo(p, &scratch.meta, h.flags, len, i),
        ChunkClass::CountOnly => {
            if t == chunk::PAD {
                w.has_pad = 1;
            }
        }
    }
    // SAFETY: as above.
    unsafe { core::ptr::write_volatile(&mut scratch.walk_off, next) };
    CONTINUE
}

#[inline(always)]
pub fn walk<P: Packet>(p: &P, scratch: &mut Scratch, s: &Sctp) {
    scratch.walk_off = s.chunks as u64;
    // One store per field (not a `memset` call: see `zero`).
    let mut w = Walk::<P> {
        p,
        scratch,
        assoc: core::ptr::null_mut(),
        end: s.end as u64,
        walked: 0,
        slot: iface_slot(p),
        hb_off: zero() as u32,
        hb_len: zero() as u16,
        hb_flags: zero() as u8,
        hb_index: zero() as u8,
        hb_present: zero() as u8,
        has_pad: zero() as u8,
        done: zero() as u8,
        _pad: zero() as u8,
    };
    // SAFETY: the callback and its context follow bpf_loop's contract.
    unsafe {
        bpf_loop(MAX_CHUNKS, chunk_step::<P> as *mut c_void, (&mut w as *mut Walk<P>).cast(), 0);
    }
    // SAFETY: scratch is still this CPU's entry.
    let scratch = unsafe { &mut *w.scratch };
    if w.done == 0 && scratch.walk_off < w.end {
        too_many_chunks(p);
    }
    add::<P>(counters::CHUNKS, w.walked);
    if w.hb_present != 0 {
        let f = if w.has_pad != 0 { RECORD_FLAG_BUNDLED_PAD } else { 0 };
        emit::control(p, &scratch.meta, w.hb_off, chunk::HEARTBEAT, w.hb_flags, w.hb_len, w.hb_index, f);
    }
    aggregate::finish(p, scratch, w.assoc);
}
