//! The two attach points behind one interface, so the parser is written once.

use aya_ebpf::{
    EbpfContext,
    helpers::generated::{bpf_skb_load_bytes, bpf_xdp_load_bytes},
    programs::{TcContext, XdpContext},
};
use sctp_monitor_common::direction;

/// What the parser needs from a program context.
pub trait Packet {
    /// Direction of the attach point.
    const DIRECTION: u8;
    /// Per-path summaries in the `PATHS` LRU map alone instead of
    /// `PATH_SLOTS` (the benchmark's `sctp_ingress_lru`; see `paths`).
    const PATHS_LRU: bool = false;
    /// The program context (for aya-log).
    type Ctx: EbpfContext;
    fn ctx(&self) -> &Self::Ctx;
    /// Start of the linear packet data.
    fn start(&self) -> usize;
    /// End of the linear packet data.
    fn end(&self) -> usize;
    /// Interface the packet is on.
    fn ifindex(&self) -> u32;
    /// Copies `len` bytes at packet offset `off` to `dst` with the kernel's
    /// bounds-checked helper (variable offsets and lengths, no packet-pointer
    /// range proofs needed). `len` must be 1..=the room at `dst`.
    ///
    /// # Safety
    /// `dst` must be valid for `len` bytes.
    unsafe fn load(&self, off: u32, dst: *mut u8, len: u32) -> bool;
}

/// XDP ingress.
pub struct Ingress(pub XdpContext);

impl Packet for Ingress {
    const DIRECTION: u8 = direction::INGRESS;
    type Ctx = XdpContext;
    #[inline(always)]
    fn ctx(&self) -> &XdpContext {
        &self.0
    }
    #[inline(always)]
    fn start(&self) -> usize {
        self.0.data()
    }
    #[inline(always)]
    fn end(&self) -> usize {
        self.0.data_end()
    }
    #[inline(always)]
    fn ifindex(&self) -> u32 {
        // SAFETY: ctx is the program's xdp_md.
        unsafe { (*self.0.ctx).ingress_ifindex }
    }
    #[inline(always)]
    unsafe fn load(&self, off: u32, dst: *mut u8, len: u32) -> bool {
        // SAFETY: caller guarantees dst has room for len bytes.
        unsafe { bpf_xdp_load_bytes(self.0.ctx, off, dst.cast(), len) == 0 }
    }
}

/// A TC (tcx) classifier: egress always; ingress where XDP costs more than
/// the classifier (`--xdp-mode tc`: veth and other virtual devices, whose
/// XDP path converts every frame).
pub struct Tc<const DIR: u8>(pub TcContext);

/// TC egress.
pub type Egress = Tc<{ direction::EGRESS }>;
/// TC ingress.
pub type IngressTc = Tc<{ direction::INGRESS }>;

impl<const DIR: u8> Tc<DIR> {
    /// Makes the whole packet linear when it is not, so direct access sees
    /// every chunk. This moves no byte of the packet's content.
    #[inline(always)]
    pub fn new(ctx: TcContext) -> Self {
        let linear = ctx.data_end() - ctx.data();
        let len = ctx.len();
        if (linear as u32) < len {
            let _ = ctx.pull_data(len);
        }
        Tc(ctx)
    }
}

impl<const DIR: u8> Packet for Tc<DIR> {
    const DIRECTION: u8 = DIR;
    type Ctx = TcContext;
    #[inline(always)]
    fn ctx(&self) -> &TcContext {
        &self.0
    }
    #[inline(always)]
    fn start(&self) -> usize {
        self.0.data()
    }
    #[inline(always)]
    fn end(&self) -> usize {
        self.0.data_end()
    }
    #[inline(always)]
    fn ifindex(&self) -> u32 {
        // SAFETY: skb is the program's __sk_buff.
        unsafe { (*self.0.skb.skb).ifindex }
    }
    #[inline(always)]
    unsafe fn load(&self, off: u32, dst: *mut u8, len: u32) -> bool {
        // SAFETY: caller guarantees dst has room for len bytes.
        unsafe { bpf_skb_load_bytes(self.0.skb.skb.cast(), off, dst.cast(), len) == 0 }
    }
}
