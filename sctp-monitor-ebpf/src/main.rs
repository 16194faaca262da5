//! sctp-monitor's kernel programs: XDP on ingress, a TC classifier on egress,
//! one parser for both (`packet` -> `l2` -> `l3` -> `sctp`).
//!
//! A monitor fails open: every outcome, malformed input included, is
//! XDP_PASS / TC_ACT_UNSPEC ("continue"), and every problem is a counter.
#![no_std]
#![no_main]
#![feature(asm_experimental_arch)]

mod addr;
mod aggregate;
mod counters;
mod ctx;
mod cursor;
mod emit;
mod l2;
mod l3;
mod maps;
mod packet;
mod paths;
mod probes;
mod sctp;
mod zero;

use aya_ebpf::{
    bindings::{__sk_buff, TC_ACT_UNSPEC, xdp_action::XDP_PASS, xdp_md},
    macros::xdp,
    programs::{TcContext, XdpContext},
};

use crate::ctx::{Egress, Ingress, IngressTc};

// The three programs are written out as aya's `#[xdp]` and `#[classifier]`
// would write them (an exported function in the section), with the parser
// in the exported function itself: the macros put the body in an inner
// function, which LLVM leaves a BPF-to-BPF call (a frame and four saved
// registers for every packet) when the body is this large.

/// Ingress: every received frame of the interface.
#[unsafe(no_mangle)]
#[unsafe(link_section = "xdp")]
pub fn sctp_ingress(ctx: *mut xdp_md) -> u32 {
    packet::process(&Ingress(XdpContext::new(ctx)));
    XDP_PASS
}

/// Egress: every transmitted frame of the interface (clsact egress hook).
#[unsafe(no_mangle)]
#[unsafe(link_section = "classifier")]
pub fn sctp_egress(ctx: *mut __sk_buff) -> i32 {
    packet::process(&Egress::new(TcContext::new(ctx)));
    TC_ACT_UNSPEC
}

/// Ingress as a TC (tcx) classifier, instead of XDP (`--xdp-mode tc`).
#[unsafe(no_mangle)]
#[unsafe(link_section = "classifier")]
pub fn sctp_ingress_tc(ctx: *mut __sk_buff) -> i32 {
    packet::process(&IngressTc::new(TcContext::new(ctx)));
    TC_ACT_UNSPEC
}

/// Does nothing but pass: the baseline of `cargo xtask bench`.
#[xdp]
pub fn xdp_pass_baseline(_ctx: XdpContext) -> u32 {
    XDP_PASS
}

/// Does nothing but continue: the throughput benchmark's baseline for a TC
/// classifier (what the tcx hook itself costs).
#[unsafe(no_mangle)]
#[unsafe(link_section = "classifier")]
pub fn tc_pass_baseline(_ctx: *mut __sk_buff) -> i32 {
    TC_ACT_UNSPEC
}

#[cfg(not(test))]
#[panic_handler]
fn panic(_info: &core::panic::PanicInfo) -> ! {
    loop {}
}

#[unsafe(link_section = "license")]
#[unsafe(no_mangle)]
static LICENSE: [u8; 4] = *b"GPL\0";
