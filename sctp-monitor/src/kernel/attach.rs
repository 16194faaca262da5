//! Attaching the programs to interfaces: XDP on ingress (native where the
//! driver has it, generic SKB mode otherwise; or a TC classifier with
//! `--xdp-mode tc`), TC (tcx) on egress.
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
    /// No XDP: ingress through a TC (tcx) classifier. On veth and other
    /// virtual devices attaching any XDP program slows every frame (the
    /// device converts it for XDP); the classifier runs on the frame as it is.
    Tc,
}

/// How ingress ended up attached.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AttachedMode {
    Native,
    Skb,
    Tc,
}

impl fmt::Display for AttachedMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            AttachedMode::Native => "native",
            AttachedMode::Skb => "skb",
            AttachedMode::Tc => "tc",
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
    /// The TC ingress classifier's link (`AttachedMode::Tc`).
    tc_in_link: Option<SchedClassifierLinkId>,
}

impl AttachedIface {
    /// The program attached on ingress.
    pub fn ingress_program(&self) -> &'static str {
        if self.xdp_mode == AttachedMode::Tc { programs::TC_INGRESS } else { programs::XDP_INGRESS }
    }
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

    if mode == XdpModeChoice::Tc {
        let tc_in_link = attach_tc(ebpf, programs::TC_INGRESS, name, TcAttachType::Ingress)?;
        let tc_link = match attach_tc(ebpf, programs::TC_EGRESS, name, TcAttachType::Egress) {
            Ok(link) => link,
            Err(e) => {
                let p: &mut SchedClassifier =
                    ebpf.program_mut(programs::TC_INGRESS).context("TC program missing")?.try_into()?;
                let _ = p.detach(tc_in_link);
                return Err(e);
            }
        };
        return Ok(AttachedIface {
            name: name.to_string(),
            ifindex,
            slot,
            xdp_mode: AttachedMode::Tc,
            xdp_link: None,
            tc_link: Some(tc_link),
            tc_in_link: Some(tc_in_link),
        });
    }
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
        XdpModeChoice::Auto | XdpModeChoice::Tc => match xdp.attach(name, XdpMode::Driver) {
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

    let tc_link = attach_tc(ebpf, programs::TC_EGRESS, name, TcAttachType::Egress)?;
    Ok(AttachedIface {
        name: name.to_string(),
        ifindex,
        slot,
        xdp_mode,
        xdp_link: Some(xdp_link),
        tc_link: Some(tc_link),
        tc_in_link: None,
    })
}

/// Attaches a TC program (tcx where the kernel has it, else on the clsact
/// qdisc).
fn attach_tc(ebpf: &mut Ebpf, prog: &str, name: &str, at: TcAttachType) -> anyhow::Result<SchedClassifierLinkId> {
    let tc_prog: &mut SchedClassifier = ebpf.program_mut(prog).context("TC program missing")?.try_into()?;
    match tc_prog.attach(name, at) {
        Ok(link) => Ok(link),
        Err(first) => {
            // Kernels without tcx need the clsact qdisc first.
            let _ = tc::qdisc_add_clsact(name);
            tc_prog.attach(name, at).with_context(|| format!("attaching {prog} ({at:?}) to {name} failed ({first})"))
        }
    }
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
    if let Some(link) = iface.tc_in_link.take() {
        let tc_prog: &mut SchedClassifier =
            ebpf.program_mut(programs::TC_INGRESS).context("TC program missing")?.try_into()?;
        tc_prog.detach(link).with_context(|| format!("detaching TC ingress from {}", iface.name))?;
    }
    Ok(())
}

fn register_slot(ebpf: &mut Ebpf, ifindex: u32, slot: u32) -> anyhow::Result<()> {
    let mut arr: Array<_, u64> = Array::try_from(ebpf.map_mut(maps::IFACE_SLOTS).context("IFACE_SLOTS map missing")?)?;
    let table = arr.len();
    arr.set(ifindex % table, ((ifindex as u64) << 32) | slot as u64, 0)?;
    Ok(())
}
