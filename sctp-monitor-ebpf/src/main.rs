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
    bindings::{TC_ACT_UNSPEC, xdp_action::XDP_PASS},
    macros::{classifier, xdp},
    programs::{TcContext, XdpContext},
};

use crate::ctx::{Egress, Ingress, IngressTc};

/// Ingress: every received frame of the interface.
#[xdp]
pub fn sctp_ingress(ctx: XdpContext) -> u32 {
    packet::process(&Ingress(ctx));
    XDP_PASS
}

/// Egress: every transmitted frame of the interface (clsact egress hook).
#[classifier]
pub fn sctp_egress(ctx: TcContext) -> i32 {
    packet::process(&Egress::new(ctx));
    TC_ACT_UNSPEC
}

/// Ingress as a TC (tcx) classifier, instead of XDP (`--xdp-mode tc`).
#[classifier]
pub fn sctp_ingress_tc(ctx: TcContext) -> i32 {
    packet::process(&IngressTc::new(ctx));
    TC_ACT_UNSPEC
}

/// Does nothing but pass: the baseline of `cargo xtask bench`.
#[xdp]
pub fn xdp_pass_baseline(_ctx: XdpContext) -> u32 {
    XDP_PASS
}

#[cfg(not(test))]
#[panic_handler]
fn panic(_info: &core::panic::PanicInfo) -> ! {
    loop {}
}

#[unsafe(link_section = "license")]
#[unsafe(no_mangle)]
static LICENSE: [u8; 4] = *b"GPL\0";
