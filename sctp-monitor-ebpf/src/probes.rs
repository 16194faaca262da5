//! Benchmark probes, loaded only by `cargo xtask bench` (never attached):
//! each does one thing the record and summary requirements oblige
//! every SCTP packet of its kind to do, and nothing else, so the bench can
//! show the cost of the requirement itself beside the real program's.

use aya_ebpf::{
    bindings::xdp_action::XDP_PASS,
    helpers::generated::{bpf_ktime_get_ns, bpf_ringbuf_output},
    macros::xdp,
    programs::XdpContext,
};
use sctp_monitor_common::{PathStats, record::RECORD_HEADER_LEN};

use crate::maps::{EVENTS, PATHS, SCRATCH, SCRATCH_RECORD};

/// The precise clock every record carries (`bpf_ktime_get_ns`), kept so it
/// cannot be optimised away.
#[xdp]
pub fn probe_ktime(_ctx: XdpContext) -> u32 {
    if let Some(r) = SCRATCH_RECORD.get_ptr_mut(0) {
        // SAFETY: this CPU's scratch entry; helper without arguments.
        unsafe { (*r).header.ts_ns = bpf_ktime_get_ns() };
    }
    XDP_PASS
}

/// A timestamped record of a HEARTBEAT's size (header + 56 chunk bytes) to
/// the ring buffer: the floor of any control chunk, before parsing.
#[xdp]
pub fn probe_record(_ctx: XdpContext) -> u32 {
    if let Some(r) = SCRATCH_RECORD.get_ptr_mut(0) {
        // SAFETY: this CPU's scratch entry, RECORD_HEADER_LEN + 56 bytes of it.
        unsafe {
            (*r).header.ts_ns = bpf_ktime_get_ns();
            let _ = bpf_ringbuf_output(
                (&EVENTS as *const _ as *mut aya_ebpf::maps::RingBuf).cast(),
                r.cast(),
                (RECORD_HEADER_LEN + 56) as u64,
                0,
            );
        }
    }
    XDP_PASS
}

/// One lookup of the per-path per-CPU LRU map with a path key (the entry is
/// created on the first run): the floor of summarising DATA per path.
#[xdp]
pub fn probe_path_lookup(_ctx: XdpContext) -> u32 {
    let Some(s) = SCRATCH.get_ptr_mut(0) else { return XDP_PASS };
    // SAFETY: this CPU's scratch entry.
    let s = unsafe { &mut *s };
    s.key.vtag = 0xabcd;
    s.key.src_port = 36412;
    s.key.dst_port = 36412;
    match PATHS.get_ptr_mut(&s.key) {
        // SAFETY: a live per-CPU map value.
        Some(v) => unsafe { (*v).packets += 1 },
        None => {
            let _ = PATHS.insert(&s.key, &PathStats { packets: 1, ..s.zero_stats }, 0);
        }
    }
    XDP_PASS
}

/// A program the verifier must refuse: a store at an offset taken from the
/// packet's length into an 8-byte map value, with no bound. Loaded only by
/// the kernel test of the agent's rejection message, so that message is
/// checked against a real refusal of this kernel.
#[xdp]
pub fn probe_rejected(ctx: XdpContext) -> u32 {
    use crate::maps::COUNTERS;
    if let Some(v) = COUNTERS.get_ptr_mut(0) {
        let n = ctx.data_end() - ctx.data();
        // SAFETY: none, on purpose; the verifier refuses the program, so it
        // never runs.
        unsafe { core::ptr::write_volatile(v.cast::<u8>().add(n), 1) };
    }
    XDP_PASS
}
