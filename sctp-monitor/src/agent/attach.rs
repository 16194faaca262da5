//! Which interfaces the agent watches, and getting its programs onto them
//! cleanly: what an earlier run left behind is found and, when it is ours,
//! replaced, and the log says so.
//!
//! On this kernel family (XDP links 5.9+, tcx 6.6+) every attachment the
//! agent makes is a bpf_link owned by the process: after `kill -9` the
//! kernel releases them with the process's file descriptors, and the next
//! start finds the hooks empty. A program attached through netlink (an older
//! sctp-monitor, `ip link set dev X xdp obj ...`) stays after its loader
//! died: an `sctp_ingress` found that way is removed before attaching; any
//! other program is left alone and the interface refused with a message.

use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use aya::{
    Ebpf,
    programs::{SchedClassifier, TcAttachType, loaded_programs},
};
use sctp_monitor_common::{counters::MAX_IFACE_SLOTS, programs};

use super::{ifaces, netlink};
use crate::kernel::{
    AttachedIface, XdpModeChoice,
    attach::{self as kattach, ifindex},
};

fn program_name(id: u32) -> Option<String> {
    loaded_programs()
        .filter_map(Result::ok)
        .find(|p| p.id() == id)
        .map(|p| p.name_as_str().unwrap_or("?").to_string())
}

/// Makes the interface's hooks ready for our programs. Returns a sentence
/// about what was found and done.
pub fn clear_stale(name: &str, ifindex: u32) -> anyhow::Result<String> {
    let mut notes = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(3);
    'xdp: loop {
        let st = netlink::xdp_state(ifindex)
            .with_context(|| format!("{name}: cannot read its XDP state over rtnetlink"))?;
        for (id, mode) in st.programs() {
            let Some(prog) = program_name(id) else {
                bail!(
                    "{name} already has an XDP program (id {id}) that this process cannot identify (listing \
                     programs by id needs CAP_SYS_ADMIN); if it is a leftover sctp-monitor, remove it with \
                     `ip link set dev {name} xdp off`, or leave {name} out (-i)"
                );
            };
            if prog != programs::XDP_INGRESS {
                bail!(
                    "{name} already runs another XDP program {prog:?} (id {id}); sctp-monitor does not replace \
                     other tools' programs. Remove it (`ip link set dev {name} xdp off`) or leave {name} out (-i)"
                );
            }
            match netlink::xdp_set(ifindex, -1, mode) {
                Ok(()) => {
                    notes.push(format!(
                        "removed a stale {prog} XDP program (id {id}) left attached through netlink by an earlier run"
                    ));
                }
                Err(e) if e.raw_os_error() == Some(libc::EBUSY) => {
                    // Owned by a bpf_link: a live process holds it (or a
                    // killed one whose file descriptors are being released).
                    if Instant::now() < deadline {
                        std::thread::sleep(Duration::from_millis(100));
                        continue 'xdp;
                    }
                    bail!(
                        "{name} already runs {prog} (program id {id}) through a BPF link held by a running \
                         process: another sctp-monitor is monitoring {name}. Stop it first \
                         (`bpftool link show` names the holder)"
                    );
                }
                Err(e) => return Err(e).with_context(|| format!("{name}: removing the stale XDP program {id}")),
            }
        }
        break;
    }
    loop {
        let ours: Vec<u32> = match SchedClassifier::query_tcx(name, TcAttachType::Egress) {
            Ok((_, progs)) => progs
                .iter()
                .filter(|p| p.name_as_str() == Some(programs::TC_EGRESS))
                .map(|p| p.id())
                .collect(),
            // No tcx on this kernel: nothing can be left there.
            Err(_) => Vec::new(),
        };
        if ours.is_empty() {
            break;
        }
        if Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(100));
            continue;
        }
        bail!(
            "{name} already runs {} (program id {:?}) on tcx egress, held by a running process: another \
             sctp-monitor is monitoring {name}. Stop it first",
            programs::TC_EGRESS,
            ours
        );
    }
    Ok(if notes.is_empty() {
        "no program of an earlier run was left on it".to_string()
    } else {
        notes.join("; ")
    })
}

/// The attached interfaces, and for automatic selection, the watch for new
/// ones.
pub struct Interfaces {
    /// Named with -i: exactly these, and failing to attach is fatal.
    explicit: Vec<String>,
    mode: XdpModeChoice,
    pub attached: Vec<AttachedIface>,
    /// Interfaces that could not be attached (automatic mode), not retried.
    refused: Vec<(String, u32)>,
}

impl Interfaces {
    pub fn new(explicit: Vec<String>, mode: XdpModeChoice) -> Interfaces {
        Interfaces { explicit, mode, attached: Vec::new(), refused: Vec::new() }
    }

    pub fn automatic(&self) -> bool {
        self.explicit.is_empty()
    }

    fn free_slot(&self) -> u32 {
        (1..MAX_IFACE_SLOTS).find(|s| !self.attached.iter().any(|a| a.slot == *s)).unwrap_or(0)
    }

    fn attach_one(&mut self, ebpf: &mut Ebpf, name: &str) -> anyhow::Result<()> {
        let idx = ifindex(name)?;
        let note = clear_stale(name, idx)?;
        let slot = self.free_slot();
        let a = kattach::attach(ebpf, name, self.mode, slot)?;
        log::info!(
            "attached to {} (ifindex {}): XDP {} mode, TC egress; {note}",
            a.name,
            a.ifindex,
            a.xdp_mode
        );
        self.attached.push(a);
        Ok(())
    }

    /// First attach: every named interface (all must work), or every
    /// interface that is up except loopback.
    pub fn start(&mut self, ebpf: &mut Ebpf) -> anyhow::Result<()> {
        if !self.automatic() {
            for name in self.explicit.clone() {
                if let Err(e) = self.attach_one(ebpf, &name) {
                    self.detach_all(ebpf);
                    return Err(e);
                }
            }
            return Ok(());
        }
        self.rescan(ebpf)?;
        if self.attached.is_empty() {
            log::warn!("no interface is up besides loopback yet; waiting for one to appear");
        }
        Ok(())
    }

    /// Automatic mode: attaches interfaces that came up, forgets those that
    /// vanished (their links went with them). Returns whether anything changed.
    pub fn rescan(&mut self, ebpf: &mut Ebpf) -> anyhow::Result<bool> {
        let mut changed = false;
        let before = self.attached.len();
        self.attached.retain(|a| {
            let alive = ifindex(&a.name).ok() == Some(a.ifindex);
            if !alive {
                log::info!("interface {} (ifindex {}) is gone; its programs went with it", a.name, a.ifindex);
            }
            alive
        });
        changed |= self.attached.len() != before;
        if !self.automatic() {
            return Ok(changed);
        }
        for name in ifaces::all_up_except_loopback()? {
            let Ok(idx) = ifindex(&name) else { continue };
            if self.attached.iter().any(|a| a.ifindex == idx) || self.refused.contains(&(name.clone(), idx)) {
                continue;
            }
            match self.attach_one(ebpf, &name) {
                Ok(()) => changed = true,
                Err(e) => {
                    log::warn!("not monitoring {name}: {e:#}");
                    self.refused.push((name, idx));
                }
            }
        }
        Ok(changed)
    }

    pub fn detach_all(&mut self, ebpf: &mut Ebpf) {
        for mut a in self.attached.drain(..) {
            match kattach::detach(ebpf, &mut a) {
                Ok(()) => log::info!("detached from {}", a.name),
                Err(e) => log::warn!("detaching from {}: {e:#}", a.name),
            }
        }
    }

    /// The interface name of a chunk-counter slot.
    pub fn slot_name(&self, slot: u32) -> String {
        self.attached.iter().find(|a| a.slot == slot).map_or_else(|| "other".to_string(), |a| a.name.clone())
    }

    pub fn name_of(&self, ifindex: u32) -> Option<&str> {
        self.attached.iter().find(|a| a.ifindex == ifindex).map(|a| a.name.as_str())
    }
}
