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

use super::{
    ifaces, netlink,
    readiness::{self, ReadyDoc, Seen},
};
use crate::kernel::{
    AttachedIface, XdpModeChoice,
    attach::{self as kattach, ifindex},
};

fn program_name(id: u32) -> Option<String> {
    loaded_programs().filter_map(Result::ok).find(|p| p.id() == id).map(|p| p.name_as_str().unwrap_or("?").to_string())
}

/// Makes the interface's hooks ready for our programs. Returns a sentence
/// about what was found and done.
pub fn clear_stale(name: &str, ifindex: u32) -> anyhow::Result<String> {
    let mut notes = Vec::new();
    let started = Instant::now();
    let deadline = started + Duration::from_secs(3);
    // Set when our program was found held by a link and then went away: the
    // process that held it was exiting (kill -9 releases links as the
    // kernel closes its file descriptors).
    let mut waited = false;
    'xdp: loop {
        let st =
            netlink::xdp_state(ifindex).with_context(|| format!("{name}: cannot read its XDP state over rtnetlink"))?;
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
                        waited = true;
                        std::thread::sleep(Duration::from_millis(100));
                        continue 'xdp;
                    }
                    bail!(
                        "{name} already runs {prog} (program id {id}) through a BPF link held by a running \
                         process: another sctp-monitor is monitoring {name}. Stop it first \
                         (`bpftool link show` names the holder)"
                    );
                }
                Err(e) => {
                    return Err(e).with_context(|| format!("{name}: removing the stale XDP program {id}"));
                }
            }
        }
        break;
    }
    loop {
        let ours: Vec<u32> = match SchedClassifier::query_tcx(name, TcAttachType::Egress) {
            Ok((_, progs)) => {
                progs.iter().filter(|p| p.name_as_str() == Some(programs::TC_EGRESS)).map(|p| p.id()).collect()
            }
            // No tcx on this kernel: nothing can be left there.
            Err(_) => Vec::new(),
        };
        if ours.is_empty() {
            break;
        }
        if Instant::now() < deadline {
            waited = true;
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
    if waited {
        notes.push(format!(
            "waited {} ms for the programs of an exiting sctp-monitor to be released by the kernel",
            started.elapsed().as_millis()
        ));
    }
    Ok(if notes.is_empty() { "no program of an earlier run was left on it".to_string() } else { notes.join("; ") })
}

/// The attached interfaces, and the watch for interfaces that come and go.
///
/// Interfaces are looked at every `--poll-interval-ms`. One that disappears
/// (deleted, or moved to another namespace) is logged and forgotten: the
/// kernel detached its programs with it, and its links are released here.
/// With `-i`, a named interface that comes back (same name, new ifindex) is
/// attached again; without `-i`, every interface that is up and not yet
/// monitored is attached, whether new or back.
pub struct Interfaces {
    /// Named with -i: exactly these, and failing to attach at start is fatal.
    explicit: Vec<String>,
    mode: XdpModeChoice,
    pub attached: Vec<AttachedIface>,
    /// Interfaces that could not be attached, not retried while they keep
    /// their ifindex: (name, ifindex, why).
    refused: Vec<(String, u32, String)>,
    /// Interfaces that went away: (name, ifindex it had, counter slot), so
    /// one that comes back is said to be back and keeps its counter slot.
    gone: Vec<(String, u32, u32)>,
}

impl Interfaces {
    pub fn new(explicit: Vec<String>, mode: XdpModeChoice) -> Interfaces {
        Interfaces { explicit, mode, attached: Vec::new(), refused: Vec::new(), gone: Vec::new() }
    }

    pub fn automatic(&self) -> bool {
        self.explicit.is_empty()
    }

    /// A chunk-counter slot for `name`: the one it had before it went away,
    /// else one no interface has used, else any free one (0: none left).
    fn free_slot(&self, name: &str) -> u32 {
        let free = |s: &u32| !self.attached.iter().any(|a| a.slot == *s);
        if let Some(&(_, _, s)) = self.gone.iter().find(|g| g.0 == name)
            && free(&s)
        {
            return s;
        }
        (1..MAX_IFACE_SLOTS)
            .find(|s| free(s) && !self.gone.iter().any(|g| g.2 == *s))
            .or_else(|| (1..MAX_IFACE_SLOTS).find(free))
            .unwrap_or(0)
    }

    fn attach_one(&mut self, ebpf: &mut Ebpf, name: &str) -> anyhow::Result<()> {
        let idx = ifindex(name)?;
        let note = clear_stale(name, idx)?;
        let slot = self.free_slot(name);
        let a = kattach::attach(ebpf, name, self.mode, slot)?;
        let back = match self.gone.iter().position(|g| g.0 == name) {
            Some(i) => format!("; it is back (it was ifindex {})", self.gone.remove(i).1),
            None => String::new(),
        };
        let ingress = match a.xdp_mode {
            kattach::AttachedMode::Tc => "TC ingress".to_string(),
            mode => format!("XDP {mode} mode"),
        };
        log::info!("attached to {} (ifindex {}): {ingress}, TC egress{back}; {note}", a.name, a.ifindex);
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

    /// Forgets interfaces that vanished (their programs went with them) and
    /// attaches those that appeared: named ones that are back (-i), or any
    /// that is up (automatic). Returns whether anything changed.
    pub fn rescan(&mut self, ebpf: &mut Ebpf) -> anyhow::Result<bool> {
        let mut changed = false;
        let mut i = 0;
        while i < self.attached.len() {
            let a = &self.attached[i];
            if ifindex(&a.name).ok() == Some(a.ifindex) {
                i += 1;
                continue;
            }
            let mut a = self.attached.remove(i);
            let then = if self.automatic() {
                "it is attached again if it comes back up"
            } else {
                "it is attached again when it is back (-i)"
            };
            log::warn!(
                "interface {} (ifindex {}) is gone: no longer monitored, its programs went with it; still \
                 monitoring {} other interface(s); {then}",
                a.name,
                a.ifindex,
                self.attached.len()
            );
            // The kernel detached the programs with the device; closing our
            // links releases them.
            if let Err(e) = kattach::detach(ebpf, &mut a) {
                log::debug!("releasing the links of {}: {e:#}", a.name);
            }
            self.gone.retain(|g| g.0 != a.name);
            if self.gone.len() >= MAX_IFACE_SLOTS as usize {
                self.gone.remove(0);
            }
            self.gone.push((a.name.clone(), a.ifindex, a.slot));
            changed = true;
        }
        // A refused interface is retried once it is another device.
        self.refused.retain(|(name, idx, _)| ifindex(name).ok() == Some(*idx));
        let candidates = if self.automatic() { ifaces::all_up_except_loopback()? } else { self.explicit.clone() };
        for name in candidates {
            let Ok(idx) = ifindex(&name) else { continue };
            if self.attached.iter().any(|a| a.ifindex == idx) || self.refused.iter().any(|r| r.0 == name && r.1 == idx)
            {
                continue;
            }
            match self.attach_one(ebpf, &name) {
                Ok(()) => changed = true,
                Err(e) => {
                    log::warn!("not monitoring {name}: {e:#}");
                    self.refused.push((name, idx, format!("{e:#}")));
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

    /// `/readyz`: every requested interface (see `readiness.rs`) as the
    /// kernel shows it now.
    pub fn readiness(&self, ebpf: &Ebpf) -> ReadyDoc {
        let ours = ebpf.program(programs::XDP_INGRESS).and_then(|p| p.info().ok()).map(|i| i.id());
        let mut names: Vec<String> =
            if self.automatic() { ifaces::all_up_except_loopback().unwrap_or_default() } else { self.explicit.clone() };
        for a in &self.attached {
            if !names.contains(&a.name) {
                names.push(a.name.clone());
            }
        }
        let seen: Vec<Seen> = names
            .into_iter()
            .map(|name| {
                let attached = self.attached.iter().find(|a| a.name == name);
                let current = ifindex(&name).ok();
                let xdp_ours = attached.is_some_and(|a| {
                    netlink::xdp_state(a.ifindex).is_ok_and(|st| st.programs().iter().any(|p| Some(p.0) == ours))
                });
                let refused = self.refused.iter().find(|r| r.0 == name && Some(r.1) == current).map(|r| r.2.clone());
                Seen {
                    attached_ifindex: attached.map(|a| a.ifindex),
                    current_ifindex: current,
                    xdp_ours,
                    refused,
                    name,
                }
            })
            .collect();
        readiness::evaluate(!self.automatic(), &seen)
    }

    /// The interface name of a chunk-counter slot.
    pub fn slot_name(&self, slot: u32) -> String {
        self.attached.iter().find(|a| a.slot == slot).map_or_else(|| "other".to_string(), |a| a.name.clone())
    }

    pub fn name_of(&self, ifindex: u32) -> Option<&str> {
        self.attached.iter().find(|a| a.ifindex == ifindex).map(|a| a.name.as_str())
    }
}
