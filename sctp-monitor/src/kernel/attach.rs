//! Attaching the programs to interfaces: XDP on ingress (native where the
//! driver has it, generic SKB mode otherwise), TC (tcx) on egress.
//!
//! On kernels with BPF links (XDP 5.9+, tcx 6.6+) every attachment is a link
//! owned by this process: it goes away with the process, even after
//! `kill -9`, so a restart never finds a stale program of ours.

use std::{ffi::CString, fmt};

use anyhow::{Context as _, anyhow, bail};
use aya::{
    Ebpf,
    maps::Array,
    programs::{SchedClassifier, TcAttachType, Xdp, XdpMode, tc, tc::SchedClassifierLinkId, xdp::XdpLinkId},
};
use sctp_monitor_common::{counters::MAX_IFACE_SLOTS, maps, programs};

/// `--xdp-mode`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum XdpModeChoice {
    /// Native if the driver supports it, else SKB (generic).
    #[default]
    Auto,
    Native,
    Skb,
}

/// How XDP ended up attached.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AttachedMode {
    Native,
    Skb,
}

impl fmt::Display for AttachedMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            AttachedMode::Native => "native",
            AttachedMode::Skb => "skb",
        })
    }
}

/// One monitored interface.
#[derive(Debug)]
pub struct AttachedIface {
    pub name: String,
    pub ifindex: u32,
    /// Slot of the interface in the chunk counters.
    pub slot: u32,
    pub xdp_mode: AttachedMode,
    xdp_link: Option<XdpLinkId>,
    tc_link: Option<SchedClassifierLinkId>,
}

pub fn ifindex(name: &str) -> anyhow::Result<u32> {
    let c = CString::new(name).map_err(|_| anyhow!("interface name {name:?} contains NUL"))?;
    // SAFETY: valid C string.
    let idx = unsafe { libc::if_nametoindex(c.as_ptr()) };
    if idx == 0 {
        bail!("interface {name:?} does not exist (see `ip link`)");
    }
    Ok(idx)
}

/// Attaches both programs to `name`. `slot` (1..MAX_IFACE_SLOTS) names the
/// interface in the chunk counters.
pub fn attach(ebpf: &mut Ebpf, name: &str, mode: XdpModeChoice, slot: u32) -> anyhow::Result<AttachedIface> {
    let ifindex = ifindex(name)?;
    let slot = if slot < MAX_IFACE_SLOTS { slot } else { 0 };
    register_slot(ebpf, ifindex, slot)?;

    let xdp: &mut Xdp = ebpf.program_mut(programs::XDP_INGRESS).context("XDP program missing")?.try_into()?;
    let (xdp_link, xdp_mode) = match mode {
        XdpModeChoice::Native => (
            xdp.attach(name, XdpMode::Driver)
                .with_context(|| format!("attaching XDP in native mode to {name} failed; try --xdp-mode skb"))?,
            AttachedMode::Native,
        ),
        XdpModeChoice::Skb => (
            xdp.attach(name, XdpMode::Skb).with_context(|| format!("attaching XDP in SKB mode to {name} failed"))?,
            AttachedMode::Skb,
        ),
        XdpModeChoice::Auto => match xdp.attach(name, XdpMode::Driver) {
            Ok(link) => (link, AttachedMode::Native),
            Err(native_err) => {
                log::warn!("{name}: native XDP unavailable ({native_err}); falling back to SKB mode");
                let link = xdp
                    .attach(name, XdpMode::Skb)
                    .with_context(|| format!("attaching XDP to {name} failed in native ({native_err}) and SKB mode"))?;
                (link, AttachedMode::Skb)
            }
        },
    };

    let tc_prog: &mut SchedClassifier =
        ebpf.program_mut(programs::TC_EGRESS).context("TC program missing")?.try_into()?;
    let tc_link = match tc_prog.attach(name, TcAttachType::Egress) {
        Ok(link) => link,
        Err(first) => {
            // Kernels without tcx need the clsact qdisc first.
            let _ = tc::qdisc_add_clsact(name);
            tc_prog
                .attach(name, TcAttachType::Egress)
                .with_context(|| format!("attaching the TC egress program to {name} failed ({first})"))?
        }
    };
    Ok(AttachedIface {
        name: name.to_string(),
        ifindex,
        slot,
        xdp_mode,
        xdp_link: Some(xdp_link),
        tc_link: Some(tc_link),
    })
}

/// Detaches both programs from the interface.
pub fn detach(ebpf: &mut Ebpf, iface: &mut AttachedIface) -> anyhow::Result<()> {
    if let Some(link) = iface.xdp_link.take() {
        let xdp: &mut Xdp = ebpf.program_mut(programs::XDP_INGRESS).context("XDP program missing")?.try_into()?;
        xdp.detach(link).with_context(|| format!("detaching XDP from {}", iface.name))?;
    }
    if let Some(link) = iface.tc_link.take() {
        let tc_prog: &mut SchedClassifier =
            ebpf.program_mut(programs::TC_EGRESS).context("TC program missing")?.try_into()?;
        tc_prog.detach(link).with_context(|| format!("detaching TC from {}", iface.name))?;
    }
    Ok(())
}

fn register_slot(ebpf: &mut Ebpf, ifindex: u32, slot: u32) -> anyhow::Result<()> {
    let mut arr: Array<_, u64> = Array::try_from(ebpf.map_mut(maps::IFACE_SLOTS).context("IFACE_SLOTS map missing")?)?;
    let table = arr.len();
    arr.set(ifindex % table, ((ifindex as u64) << 32) | slot as u64, 0)?;
    Ok(())
}
