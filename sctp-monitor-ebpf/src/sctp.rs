//! The chunk walk: up to `MAX_CHUNKS` chunks of one SCTP packet, stepping by
//! the padded length and stopping on a length under 4 or past the end
//! (`sctp_monitor_common::sctp::step`, the rule userspace shares).
//!
//! Two `bpf_loop`s, each with a small body the verifier checks a few times
//! instead of once per unrolled iteration and path:
//! - the walk itself: each chunk is counted, DATA and SACK are added to the
//!   packet's sums, and a control chunk is only noted (where, what);
//! - then the records: one per noted control chunk (`emit`).
//!
//! Everything the iterations change lives in the per-CPU scratch entry
//! ([`WalkState`]), map memory whose contents the verifier does not track:
//! each iteration starts from the same verifier state, so the iterations'
//! states match at once (on the caller's stack, every flag and count would
//! be a state of its own, and each multiplies the others).

use core::ffi::c_void;

use aya_ebpf::helpers::generated::bpf_loop;
use sctp_monitor_common::{
    counters,
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

/// A control chunk the walk found, for the record loop.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct ControlRef {
    off: u16,
    len: u16,
    chunk_type: u8,
    flags: u8,
    index: u8,
    _pad: u8,
}

const NO_HEARTBEAT: u32 = u32::MAX;

/// The walk's state between iterations, in the per-CPU scratch entry.
#[repr(C)]
pub struct WalkState {
    /// Offset of the next chunk.
    off: u64,
    /// Chunks walked.
    walked: u64,
    /// The association direction's `ASSOC_DIRS` slot + 1, once the first
    /// DATA chunk has looked it up (0 before).
    pub assoc_slot: u32,
    /// Control chunks noted in `controls`.
    controls_len: u32,
    /// Index in `controls` of the first HEARTBEAT (PAD bundled with it
    /// makes it a path-MTU probe, RFC 8899), or `NO_HEARTBEAT`.
    first_heartbeat: u32,
    has_pad: u32,
    /// The walk stopped on the packet's end or a bad chunk (not the bound).
    done: u32,
    /// The interface's chunk-counter slot.
    iface_slot: u32,
    controls: [ControlRef; MAX_CHUNKS as usize],
}

/// What the loop bodies get: the packet and the scratch entry, neither of
/// which changes between iterations.
#[repr(C)]
struct Ctx<P: Packet> {
    p: *const P,
    scratch: *mut Scratch,
    end: u64,
    /// Chunks walked (or records sent) inline before the `bpf_loop`: its
    /// first index is this one.
    base: u64,
}

const CONTINUE: i64 = 0;
const BREAK: i64 = 1;

/// The walk's `bpf_loop` body: the chunks after the inline ones.
unsafe extern "C" fn chunk_step<P: Packet>(index: u64, ctx: *mut c_void) -> i64 {
    // SAFETY: ctx is the Ctx that `walk` passed to bpf_loop.
    let c = unsafe { &*(ctx as *const Ctx<P>) };
    // SAFETY: as above.
    unsafe { chunk_at::<P>(index + c.base, c) }
}

/// One chunk. Returns BREAK when the walk is over.
///
/// # Safety
/// `c.p` and `c.scratch` point to the caller's packet wrapper and this CPU's
/// scratch entry.
#[inline(always)]
unsafe fn chunk_at<P: Packet>(index: u64, c: &Ctx<P>) -> i64 {
    let p = unsafe { &*c.p };
    let scratch = unsafe { &mut *c.scratch };
    // A plain number from map memory, bounded by the checks below on every
    // call (direct packet access would otherwise make the verifier track
    // each offset range precisely).
    // SAFETY: this CPU's scratch entry.
    let off = unsafe { core::ptr::read_volatile(&scratch.walk.off) } as usize;
    let end = c.end as usize;
    if off >= end || off > MAX_OFFSET {
        scratch.walk.done = 1;
        return BREAK;
    }
    let Some(h) = load::<ChunkHeader, P>(p, off) else {
        // Fewer than 4 bytes left: a chunk header cut short.
        bump::<P>(counters::MALFORMED_CHUNK_LEN);
        scratch.walk.done = 1;
        return BREAK;
    };
    let len = h.len();
    let next = match step(off as u32, len, end as u32) {
        Step::Next(n) => n as u64,
        Step::BadLength => {
            bump::<P>(counters::MALFORMED_CHUNK_LEN);
            scratch.walk.done = 1;
            return BREAK;
        }
    };
    let t = h.chunk_type;
    bump_chunk::<P>(scratch.walk.iface_slot, t);
    scratch.walk.walked += 1;
    match classify(t) {
        ChunkClass::Data => {
            aggregate::on_data(p, &scratch.meta, &mut scratch.walk.assoc_slot, &mut scratch.pd, off, t, len)
        }
        ChunkClass::Sack => aggregate::on_sack(p, &mut scratch.pd, off, len),
        ChunkClass::Control | ChunkClass::CookieEcho => {
            let w = &mut scratch.walk;
            let n = w.controls_len;
            if let Some(slot) = w.controls.get_mut(n as usize) {
                *slot = ControlRef { off: off as u16, len, chunk_type: t, flags: h.flags, index: index as u8, _pad: 0 };
                if t == chunk::HEARTBEAT && w.first_heartbeat == NO_HEARTBEAT {
                    w.first_heartbeat = n;
                }
                w.controls_len = n + 1;
            }
        }
        ChunkClass::CountOnly => {
            if t == chunk::PAD {
                scratch.walk.has_pad = 1;
            }
        }
    }
    // SAFETY: as above.
    unsafe { core::ptr::write_volatile(&mut scratch.walk.off, next) };
    CONTINUE
}

/// The record loop's `bpf_loop` body: the records after the inline ones.
unsafe extern "C" fn record_step<P: Packet>(i: u64, ctx: *mut c_void) -> i64 {
    // SAFETY: ctx is the Ctx that `walk` passed to bpf_loop.
    let c = unsafe { &*(ctx as *const Ctx<P>) };
    // SAFETY: as above.
    unsafe { record::<P>(i + c.base, c) }
}

/// The record of the `i`-th control chunk noted by the walk.
///
/// # Safety
/// As for [`chunk_at`].
#[inline(always)]
unsafe fn record<P: Packet>(i: u64, c: &Ctx<P>) -> i64 {
    let p = unsafe { &*c.p };
    let scratch = unsafe { &mut *c.scratch };
    let w = &scratch.walk;
    let Some(&r) = w.controls.get(i as usize) else {
        return BREAK;
    };
    if r.chunk_type == chunk::COOKIE_ECHO {
        emit::cookie_echo(p, &scratch.meta, r.flags, r.len, r.index);
    } else {
        let probe = i == w.first_heartbeat as u64 && w.has_pad != 0;
        let pad = if probe { RECORD_FLAG_BUNDLED_PAD } else { 0 };
        emit::control(p, scratch, r.off as u32, r.chunk_type, r.flags, r.len, r.index, pad);
    }
    CONTINUE
}

#[inline(always)]
pub fn walk<P: Packet>(p: &P, scratch: &mut Scratch, s: &Sctp) {
    let iface_slot = iface_slot(scratch.meta.ifindex);
    let w = &mut scratch.walk;
    w.iface_slot = iface_slot;
    // One store per field (not a `memset` call: see `zero`).
    w.off = s.chunks as u64;
    w.walked = zero() as u64;
    w.assoc_slot = zero() as u32;
    w.controls_len = zero() as u32;
    w.first_heartbeat = NO_HEARTBEAT;
    w.has_pad = zero() as u32;
    w.done = zero() as u32;
    let mut c = Ctx::<P> { p, scratch, end: s.end as u64, base: INLINE_CHUNKS };
    let ctx = (&mut c as *mut Ctx<P>).cast();
    // The first chunks inline: a packet of one or two chunks (most DATA and
    // SACK packets, a HEARTBEAT) does not pay for the `bpf_loop` callback.
    // (A loop of a constant count, unrolled by the compiler: each inline
    // chunk is verified once, as written-out calls would be.)
    let mut more = true;
    for i in 0..INLINE_CHUNKS {
        if !more {
            break;
        }
        // SAFETY: c points to the packet wrapper and this CPU's scratch entry.
        more = unsafe { chunk_at::<P>(i, &c) } == CONTINUE && unsafe { walk_on(&c) };
    }
    if more {
        // SAFETY: the callbacks and their context follow bpf_loop's contract.
        unsafe { bpf_loop(MAX_CHUNKS - INLINE_CHUNKS as u32, chunk_step::<P> as *mut c_void, ctx, 0) };
    }
    // SAFETY: scratch is still this CPU's entry.
    let scratch = unsafe { &mut *c.scratch };
    let w = &scratch.walk;
    if w.done == 0 && w.off < s.end as u64 {
        too_many_chunks(p);
    }
    add::<P>(counters::CHUNKS, w.walked);
    let controls = w.controls_len;
    if controls != 0 {
        // The first record inline, the rest in the loop.
        c.base = 1;
        // SAFETY: as above.
        unsafe { record::<P>(0, &c) };
        if controls > 1 {
            // SAFETY: as above.
            unsafe { bpf_loop(controls - 1, record_step::<P> as *mut c_void, ctx, 0) };
        }
    }
    // SAFETY: as above.
    aggregate::finish(p, unsafe { &mut *c.scratch });
}

/// Chunks the walk takes inline before its `bpf_loop`.
const INLINE_CHUNKS: u64 = 2;

/// Whether a chunk may follow: the walk's offset is before the end.
///
/// # Safety
/// As for [`chunk_at`].
#[inline(always)]
unsafe fn walk_on<P: Packet>(c: &Ctx<P>) -> bool {
    // SAFETY: this CPU's scratch entry.
    let off = unsafe { core::ptr::read_volatile(&(*c.scratch).walk.off) };
    off < c.end
}
