//! Ring-buffer records, built in the per-CPU scratch entry and sent with
//! their used length only. Control chunks are copied up to
//! `RECORD_DATA_LEN`; an INIT-ACK's State Cookie is cut out (segment 1 before
//! it, segment 2 after it); DATA carries its header only.

use core::ffi::c_void;

use aya_ebpf::{
    bindings::{BPF_RB_FORCE_WAKEUP, BPF_RB_NO_WAKEUP},
    helpers::generated::{bpf_ktime_get_ns, bpf_loop, bpf_ringbuf_output},
};
use sctp_monitor_common::{
    ChunkRecord, RecordKind, counters,
    record::{RECORD_DATA_LEN, RECORD_FLAG_COMPACTED, RECORD_FLAG_NEW_DATA, RECORD_FLAG_PARAMS_TRUNCATED, SEGMENT_LEN},
    sctp::{
        CHUNK_HEADER_LEN, DATA_HEADER_LEN, I_DATA_HEADER_LEN, MAX_PARAMS, PARAM_HEADER_LEN, SACK_HEADER_LEN, chunk,
        fixed_len, padded, param,
    },
};

use crate::{
    addr,
    aggregate::PacketData,
    counters::{bump, ringbuf_lost},
    ctx::Packet,
    cursor::copy,
    maps::{EVENTS, SCRATCH_RECORD},
    packet::{Meta, Scratch},
    zero::zero,
};

#[inline(always)]
fn fill(r: &mut ChunkRecord, meta: &Meta, kind: RecordKind, dir: u8, t: u8, flags: u8, len: u16, index: u8) {
    // The precise clock, only for what reaches userspace one by one: RTTs
    // and failover times rest on it.
    // SAFETY: helper without arguments.
    r.ts_ns = unsafe { bpf_ktime_get_ns() };
    r.ifindex = meta.ifindex;
    r.vtag = meta.vtag;
    addr::copy(&mut r.src_addr, &meta.src);
    addr::copy(&mut r.dst_addr, &meta.dst);
    r.src_port = meta.src_port;
    r.dst_port = meta.dst_port;
    r.chunk_len = len;
    r.seg1_len = 0;
    r.seg2_len = 0;
    r.kind = kind as u8;
    r.direction = dir;
    r.ip_version = meta.ip_version;
    r.chunk_type = t;
    r.chunk_flags = flags;
    r.flags = meta.flags;
    r.chunk_index = index;
    r.udp_src_port = meta.udp_src_port;
    r.udp_dst_port = meta.udp_dst_port;
    r.ip_len = meta.ip_len;
    r.rtx_chunks = 0;
    r.high_rtx_tsn = 0;
}

/// `n` (1..=max, max a power of two) in a form the verifier can bound: a
/// helper size must be provably non-zero and within the buffer.
#[inline(always)]
fn sized(n: usize, max: usize) -> u32 {
    // The volatile read hides what LLVM knows of `n`, so it cannot fold the
    // mask away and the verifier sees the bound.
    let n = n as u32;
    // SAFETY: reading a local.
    let n = unsafe { core::ptr::read_volatile(&n) };
    (n.wrapping_sub(1) & (max as u32 - 1)) + 1
}

/// Sends the record with the bytes in use.
///
/// Wakeups: a HEARTBEAT or HEARTBEAT-ACK only feeds RTTs and timeouts of
/// seconds, so it does not wake the agent (which drains on its own every
/// few tens of ms): 100,000 associations heartbeat 26,667 times a second.
/// Nor does a retransmission: it counts towards a path's errors, judged
/// on the tracker's 100 ms tick, and a forced wakeup per retransmitting
/// packet cost 7 µs each in the datapath bench (a loss storm would pay it
/// on every packet). A DATA record that is a failover candidate (first on
/// a path, path change, the DATA settling a move) wakes it even when
/// heartbeats wait before it. Other records wake it when it has read
/// everything before them (the default).
#[inline(always)]
fn send<P: Packet>(p: &P, r: &mut ChunkRecord) {
    let len = ChunkRecord::wire_len(r.seg1_len, r.seg2_len);
    let size = sized(len, 1024).min(core::mem::size_of::<ChunkRecord>() as u32);
    let wake = if r.chunk_type == chunk::HEARTBEAT
        || r.chunk_type == chunk::HEARTBEAT_ACK
        || r.kind == RecordKind::DataRetransmit as u8
    {
        BPF_RB_NO_WAKEUP
    } else if r.kind == RecordKind::Control as u8 || r.kind == RecordKind::CookieEcho as u8 {
        0
    } else {
        BPF_RB_FORCE_WAKEUP
    };
    // SAFETY: r is a map value of ChunkRecord size and size <= that.
    let ret = unsafe { bpf_ringbuf_output(EVENTS_PTR(), (r as *mut ChunkRecord).cast(), size as u64, wake as u64) };
    if ret == 0 {
        bump::<P>(counters::RINGBUF_RECORDS);
    } else {
        ringbuf_lost(p);
    }
}

#[allow(non_snake_case)]
#[inline(always)]
fn EVENTS_PTR() -> *mut core::ffi::c_void {
    (&EVENTS as *const _ as *mut aya_ebpf::maps::RingBuf).cast()
}

/// The INIT-ACK parameter walk's state between iterations, in the per-CPU
/// scratch entry (map memory: see `sctp`).
#[repr(C)]
pub struct ParamWalk {
    /// Offset of the next parameter.
    off: u32,
    /// End of the chunk.
    end: u32,
    /// The State Cookie parameter's start and padded end (0, 0: none).
    cookie: [u32; 2],
}

struct ParamCtx<P: Packet> {
    p: *const P,
    walk: *mut ParamWalk,
}

/// One parameter of an INIT-ACK: stops at the State Cookie, the chunk's
/// end or a bad length. The header is copied with the load-bytes helper:
/// offsets come from the packet, and the copy needs no range proof.
unsafe extern "C" fn param_step<P: Packet>(_i: u64, ctx: *mut c_void) -> i64 {
    // SAFETY: ctx is the ParamCtx that `find_cookie` passed to bpf_loop.
    let c = unsafe { &*(ctx as *const ParamCtx<P>) };
    let (p, w) = unsafe { (&*c.p, &mut *c.walk) };
    // SAFETY: this CPU's scratch entry.
    let off = unsafe { core::ptr::read_volatile(&w.off) } as usize;
    let end = w.end as usize;
    if off + PARAM_HEADER_LEN > end {
        return 1;
    }
    let Some(ph) = copy::<[u8; 4], P>(p, off) else {
        return 1;
    };
    let ptype = u16::from_be_bytes([ph[0], ph[1]]);
    let plen = u16::from_be_bytes([ph[2], ph[3]]) as usize;
    if plen < PARAM_HEADER_LEN || off + plen > end {
        return 1;
    }
    let next = off + padded(plen as u16) as usize;
    if ptype == param::STATE_COOKIE {
        w.cookie = [off as u32, next as u32];
        return 1;
    }
    // SAFETY: as above.
    unsafe { core::ptr::write_volatile(&mut w.off, next as u32) };
    0
}

/// Where an INIT-ACK's State Cookie sits: (start, end after padding), or
/// None. The answer is read back from map memory, so the ways out of the
/// walk are one verifier state.
#[inline(always)]
fn find_cookie<P: Packet>(p: &P, w: &mut ParamWalk, start: usize, cend: usize) -> Option<(usize, usize)> {
    w.off = start as u32;
    w.end = cend as u32;
    w.cookie = [zero() as u32, zero() as u32];
    let mut c = ParamCtx { p, walk: w };
    // SAFETY: the callback and its context follow bpf_loop's contract.
    unsafe { bpf_loop(MAX_PARAMS, param_step::<P> as *mut c_void, (&mut c as *mut ParamCtx<P>).cast(), 0) };
    // SAFETY: this CPU's scratch entry.
    let found = unsafe { core::ptr::read_volatile(&(*c.walk).cookie) };
    if found[1] == 0 || found[0] as usize >= cend {
        return None;
    }
    Some((found[0] as usize, found[1] as usize))
}

/// One control chunk at `off` (its header already validated by the walk).
#[inline(always)]
pub fn control<P: Packet>(p: &P, scratch: &mut Scratch, off: u32, t: u8, flags: u8, len: u16, index: u8, rflags: u8) {
    let Some(r) = SCRATCH_RECORD.get_ptr_mut(0) else {
        return;
    };
    // SAFETY: this CPU's record scratch entry.
    let r = unsafe { &mut *r };
    fill(r, &scratch.meta, RecordKind::Control, P::DIRECTION, t, flags, len, index);
    r.flags |= rflags;
    let off = off as usize;
    let cend = off + len as usize;
    let data = r.data.as_mut_ptr();
    let cookie = if t == chunk::INIT_ACK {
        find_cookie(p, &mut scratch.params, off + CHUNK_HEADER_LEN + fixed_len(t), cend)
    } else {
        None
    };
    match cookie {
        Some((c_start, c_end)) => {
            r.flags |= RECORD_FLAG_COMPACTED;
            let mut n1 = c_start - off;
            if n1 > SEGMENT_LEN {
                n1 = SEGMENT_LEN;
                r.flags |= RECORD_FLAG_PARAMS_TRUNCATED;
            }
            // SAFETY: at most SEGMENT_LEN bytes into data.
            if n1 > 0 && unsafe { p.load(off as u32, data, sized(n1, SEGMENT_LEN)) } {
                r.seg1_len = n1 as u16;
            }
            if c_end < cend {
                let mut n2 = cend - c_end;
                if n2 > SEGMENT_LEN {
                    n2 = SEGMENT_LEN;
                    r.flags |= RECORD_FLAG_PARAMS_TRUNCATED;
                }
                // SAFETY: data[SEGMENT_LEN..] has SEGMENT_LEN bytes.
                if unsafe { p.load(c_end as u32, data.add(SEGMENT_LEN), sized(n2, SEGMENT_LEN)) } {
                    r.seg2_len = n2 as u16;
                }
            }
        }
        None => {
            let mut n = len as usize;
            if n > RECORD_DATA_LEN {
                n = RECORD_DATA_LEN;
                r.flags |= RECORD_FLAG_PARAMS_TRUNCATED;
            }
            // SAFETY: at most RECORD_DATA_LEN bytes into data.
            if unsafe { p.load(off as u32, data, sized(n, RECORD_DATA_LEN)) } {
                r.seg1_len = n as u16;
            }
        }
    }
    if r.flags & RECORD_FLAG_PARAMS_TRUNCATED != 0 {
        bump::<P>(counters::PARAMS_TRUNCATED);
    }
    send(p, r);
}

/// COOKIE-ECHO: its presence matters, its cookie bytes do not.
#[inline(always)]
pub fn cookie_echo<P: Packet>(p: &P, meta: &Meta, flags: u8, len: u16, index: u8) {
    let Some(r) = SCRATCH_RECORD.get_ptr_mut(0) else {
        return;
    };
    // SAFETY: this CPU's record scratch entry.
    let r = unsafe { &mut *r };
    fill(r, meta, RecordKind::CookieEcho, P::DIRECTION, chunk::COOKIE_ECHO, flags, len, index);
    r.data[0] = chunk::COOKIE_ECHO;
    r.data[1] = flags;
    r.data[2] = (len >> 8) as u8;
    r.data[3] = len as u8;
    r.seg1_len = CHUNK_HEADER_LEN as u16;
    send(p, r);
}

/// A DATA / I-DATA notification: the chunk header and fixed fields only.
#[inline(always)]
pub fn data<P: Packet>(p: &P, meta: &Meta, kind: RecordKind, pd: &PacketData, off: u32, t: u8, len: u16) {
    let Some(r) = SCRATCH_RECORD.get_ptr_mut(0) else {
        return;
    };
    // SAFETY: this CPU's record scratch entry.
    let r = unsafe { &mut *r };
    fill(r, meta, kind, P::DIRECTION, t, 0, len, 0);
    // The kernel's verdict on the packet's DATA: new or retransmitted is
    // judged here, against every TSN the association direction sent, which
    // userspace never sees whole.
    if pd.new_chunks != 0 {
        r.flags |= RECORD_FLAG_NEW_DATA;
    }
    r.rtx_chunks = pd.retrans.min(u16::MAX as u32) as u16;
    r.high_rtx_tsn = pd.high_rtx_tsn;
    let hlen = if t == chunk::I_DATA {
        I_DATA_HEADER_LEN
    } else if t == chunk::SACK {
        SACK_HEADER_LEN
    } else {
        DATA_HEADER_LEN
    };
    // SAFETY: hlen <= 20 bytes into data.
    if unsafe { p.load(off, r.data.as_mut_ptr(), hlen as u32) } {
        r.seg1_len = hlen as u16;
        r.chunk_flags = r.data[1];
    }
    send(p, r);
}
