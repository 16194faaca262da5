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
use sctp_monitor_common::{PathSlot, PathStats, record::RECORD_HEADER_LEN};

use crate::{
    ctx::{Ingress, Packet},
    maps::{EVENTS, PATH_SLOTS, PATHS, SCRATCH, SCRATCH_RECORD},
    packet,
};

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

/// One access of the per-path direct-mapped per-CPU array with a path key,
/// the key compared with the slot's: the floor of summarising DATA per path
/// in `PATH_SLOTS`.
#[xdp]
pub fn probe_path_slot(_ctx: XdpContext) -> u32 {
    let Some((slot, held)) = fixed_path_slot() else { return XDP_PASS };
    if held {
        slot.stats.packets += 1;
    } else {
        slot.stats.packets = 1;
    }
    XDP_PASS
}

/// The `PATH_SLOTS` slot of a fixed path key (tag 0xabcd, ports 36412, built
/// in the scratch entry), compared word by word and taken when it held
/// another key: the slot, and whether it held this key already.
#[inline(always)]
fn fixed_path_slot() -> Option<(&'static mut PathSlot, bool)> {
    // SAFETY: this CPU's scratch entry.
    let s = unsafe { &mut *SCRATCH.get_ptr_mut(0)? };
    s.key.vtag = 0xabcd;
    s.key.src_port = 36412;
    s.key.dst_port = 36412;
    // SAFETY: this CPU's copy of a live array element.
    let slot = unsafe { &mut *PATH_SLOTS.get_ptr_mut(s.key.slot(crate::config!(path_slot_mask)))? };
    let held = crate::paths::same(&slot.key, s.key.words());
    if !held {
        slot.key = s.key;
    }
    Some((slot, held))
}

/// One per-CPU counter bump, what every frame that is not SCTP costs by the
/// accounting rule (exactly one counter per frame): the floor of the
/// non-SCTP case.
#[xdp]
pub fn probe_counter(_ctx: XdpContext) -> u32 {
    crate::counters::bump::<Ingress>(sctp_monitor_common::counters::NOT_SCTP);
    XDP_PASS
}

/// The least any SCTP monitor does with a frame that is not SCTP: read the
/// EtherType, read an IPv4 header's protocol, and count the frame (no VLAN
/// tags, no IPv6, no UDP encapsulation: what `sctp_ingress` adds to this
/// are the rules of `l2` and the RFC 6951 port check). The floor of the
/// non-SCTP case.
#[xdp]
pub fn probe_not_sctp(ctx: XdpContext) -> u32 {
    let p = Ingress(ctx);
    if let Some(h) = crate::cursor::read::<[u8; 24], Ingress>(&p, 0)
        && h[12..14] == [0x08, 0x00]
        && h[23] != sctp_monitor_common::sctp::IPPROTO_SCTP
    {
        crate::counters::bump::<Ingress>(sctp_monitor_common::counters::NOT_SCTP);
    }
    XDP_PASS
}

/// Everything a one-DATA-chunk packet is required to update, at a fixed
/// key and with nothing parsed: the packet and chunk counters (the
/// interface's slot looked up), the association direction's highest TSN
/// (`ASSOC_DIRS`, key compared), the coarse clock, and the path's summary
/// (`PATH_SLOTS`, key compared, the DATA fields updated). The floor of the
/// DATA case: what is left of its cost once the parsing is free.
#[xdp]
pub fn probe_data_required(ctx: XdpContext) -> u32 {
    use aya_ebpf::helpers::generated::bpf_ktime_get_coarse_ns;
    use sctp_monitor_common::{
        AssocDirKey, counters as c,
        sctp::{chunk, tsn_gt},
    };

    use crate::{
        counters::{add, bump, bump_chunk, iface_slot},
        maps::ASSOC_DIRS,
    };
    let p = Ingress(ctx);
    bump::<Ingress>(c::SCTP_PACKETS);
    bump_chunk::<Ingress>(iface_slot(p.ifindex()), chunk::DATA);
    add::<Ingress>(c::CHUNKS, 1);
    let tsn = core::hint::black_box(7u32);
    let key = AssocDirKey { vtag: 0xabcd, src_port: 36412, dst_port: 36412 };
    let mut new = false;
    if let Some(st) = ASSOC_DIRS.get_ptr_mut(key.slot(crate::config!(assoc_dir_mask))) {
        // SAFETY: a live array element.
        let st = unsafe { &mut *st };
        if st.key != key {
            st.key = key;
        }
        new = tsn_gt(tsn, st.highest_tsn);
        st.highest_tsn = tsn;
    }
    // SAFETY: helper without arguments.
    let ts = unsafe { bpf_ktime_get_coarse_ns() };
    let Some((slot, _)) = fixed_path_slot() else { return XDP_PASS };
    let st = &mut slot.stats;
    st.packets += 1;
    st.bytes += 148;
    st.data_chunks += 1;
    st.payload_bytes += 100;
    if !new {
        st.retransmissions += 1;
    }
    st.highest_tsn = tsn;
    st.last_ns = ts;
    st.last_data_ns = ts;
    XDP_PASS
}

/// XDP ingress with every path summary in the `PATHS` LRU map (the design
/// before `PATH_SLOTS`).
struct IngressLru(Ingress);

impl Packet for IngressLru {
    const DIRECTION: u8 = Ingress::DIRECTION;
    const PATHS_LRU: bool = true;
    type Ctx = XdpContext;
    #[inline(always)]
    fn ctx(&self) -> &XdpContext {
        self.0.ctx()
    }
    #[inline(always)]
    fn start(&self) -> usize {
        self.0.start()
    }
    #[inline(always)]
    fn end(&self) -> usize {
        self.0.end()
    }
    #[inline(always)]
    fn ifindex(&self) -> u32 {
        self.0.ifindex()
    }
    #[inline(always)]
    unsafe fn load(&self, off: u32, dst: *mut u8, len: u32) -> bool {
        // SAFETY: the caller's promise, passed on.
        unsafe { self.0.load(off, dst, len) }
    }
}

/// The whole ingress program on the LRU design, for the benchmark's
/// comparison in one run (never attached); written out as `sctp_ingress`
/// is (see main.rs).
#[unsafe(no_mangle)]
#[unsafe(link_section = "xdp")]
pub fn sctp_ingress_lru(ctx: *mut aya_ebpf::bindings::xdp_md) -> u32 {
    packet::process(&IngressLru(Ingress(XdpContext::new(ctx))));
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
