//! Records and constants shared by the sctp-monitor eBPF programs and the
//! userspace agent.
//!
//! Everything that crosses the kernel/userspace boundary is `#[repr(C)]`,
//! made of fixed-width integers with explicit padding, and derives
//! [`bytemuck::Pod`], which refuses hidden padding at compile time. The
//! `user` feature adds `aya::Pod` so the same types can be map keys/values.
#![no_std]
#![deny(unsafe_op_in_unsafe_fn)]

pub mod config;
pub mod counters;
pub mod ip;
pub mod l2;
pub mod record;
pub mod sctp;
pub mod stats;
pub mod toolchain;

pub use config::Config;
pub use record::{ChunkRecord, RecordKind};
pub use stats::{AssocDirKey, AssocDirState, PathKey, PathSlot, PathStats};

/// Packet direction as seen by the interface the program is attached to.
pub mod direction {
    /// Received (XDP).
    pub const INGRESS: u8 = 0;
    /// Transmitted (TC egress).
    pub const EGRESS: u8 = 1;
}

/// Map names in the eBPF object, so userspace and kernel agree.
pub mod maps {
    pub const EVENTS: &str = "EVENTS";
    pub const COUNTERS: &str = "COUNTERS";
    pub const CHUNK_COUNTERS: &str = "CHUNK_COUNTERS";
    /// Per-path DATA/SACK summaries, direct-mapped per CPU (the hot path).
    pub const PATH_SLOTS: &str = "PATH_SLOTS";
    /// One byte per `PATH_SLOTS` slot: 1 once a path has taken it.
    pub const PATH_SLOTS_USED: &str = "PATH_SLOTS_USED";
    /// Per-path totals handed over by `PATH_SLOTS` takeovers (LRU).
    pub const PATHS: &str = "PATHS";
    pub const ASSOC_DIRS: &str = "ASSOC_DIRS";
    pub const IFACE_SLOTS: &str = "IFACE_SLOTS";
    pub const CONFIG: &str = "CONFIG";
}

/// Program names in the eBPF object.
pub mod programs {
    pub const XDP_INGRESS: &str = "sctp_ingress";
    pub const TC_EGRESS: &str = "sctp_egress";
    /// Ingress as a TC classifier (`--xdp-mode tc`), instead of XDP.
    pub const TC_INGRESS: &str = "sctp_ingress_tc";
    /// An XDP program that only returns XDP_PASS: the benchmark baseline.
    pub const XDP_BASELINE: &str = "xdp_pass_baseline";
    /// A TC classifier that only returns TC_ACT_UNSPEC: the throughput
    /// benchmark's baseline for `--xdp-mode tc` (what the hook costs).
    pub const TC_BASELINE: &str = "tc_pass_baseline";
    /// Benchmark probes: the cost of one requirement each (see the eBPF
    /// crate's `probes.rs`).
    pub const PROBES: [&str; 7] = [
        "probe_ktime",
        "probe_record",
        "probe_path_lookup",
        "probe_path_slot",
        "probe_data_required",
        "probe_counter",
        "probe_not_sctp",
    ];
    /// The ingress program with its per-path summaries in the `PATHS` LRU
    /// map alone (the design before `PATH_SLOTS`): loaded only by the
    /// benchmark, for the comparison in one run.
    pub const XDP_INGRESS_LRU: &str = "sctp_ingress_lru";
    /// A program the verifier must refuse (an out-of-bounds map read): the
    /// kernel test of the agent's rejection message. Never loaded otherwise.
    pub const MUST_REJECT: &str = "probe_rejected";
    /// Every program of the object that the kernel must accept.
    pub const ALL: [&str; 13] = [
        XDP_INGRESS,
        TC_EGRESS,
        TC_INGRESS,
        XDP_BASELINE,
        TC_BASELINE,
        PROBES[0],
        PROBES[1],
        PROBES[2],
        PROBES[3],
        PROBES[4],
        PROBES[5],
        PROBES[6],
        XDP_INGRESS_LRU,
    ];
}

#[cfg(feature = "user")]
mod user {
    // SAFETY: each type is repr(C), all-integer and bytemuck::Pod (which
    // proves it has no padding), so any bit pattern is valid.
    unsafe impl aya::Pod for crate::Config {}
    unsafe impl aya::Pod for crate::PathKey {}
    unsafe impl aya::Pod for crate::PathStats {}
    unsafe impl aya::Pod for crate::PathSlot {}
    unsafe impl aya::Pod for crate::AssocDirKey {}
    unsafe impl aya::Pod for crate::AssocDirState {}
    unsafe impl aya::Pod for crate::ChunkRecord {}
}
