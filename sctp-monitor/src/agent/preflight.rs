//! Checks before touching the kernel, each failing with what to do:
//! privileges, and a kernel recent enough for the programs.

/// Capability numbers (linux/capability.h).
const CAP_NET_ADMIN: u32 = 12;
const CAP_SYS_ADMIN: u32 = 21;
const CAP_PERFMON: u32 = 38;
const CAP_BPF: u32 = 39;

/// Effective capabilities of this process (`CapEff` of /proc/self/status).
pub fn effective_caps() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines().find_map(|l| l.strip_prefix("CapEff:")).and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
        })
        .unwrap_or(0)
}

/// The capabilities missing for loading and attaching, by name.
pub fn missing_caps(eff: u64) -> Vec<&'static str> {
    let has = |c: u32| eff & (1u64 << c) != 0;
    let sys_admin = has(CAP_SYS_ADMIN);
    let mut v = Vec::new();
    if !has(CAP_BPF) && !sys_admin {
        v.push("CAP_BPF");
    }
    if !has(CAP_PERFMON) && !sys_admin {
        v.push("CAP_PERFMON");
    }
    if !has(CAP_NET_ADMIN) {
        v.push("CAP_NET_ADMIN");
    }
    v
}

/// What each capability is needed for (checked by tests/faults.rs: without
/// any one of them the kernel refuses the programs).
pub fn needed_for(cap: &str) -> &'static str {
    match cap {
        "CAP_BPF" => "CAP_BPF to load the programs and create their maps",
        "CAP_PERFMON" => {
            "CAP_PERFMON for the verifier to accept the programs' packet-pointer arithmetic (refused \
             \"for !root\" without it)"
        }
        "CAP_NET_ADMIN" => "CAP_NET_ADMIN to load XDP and TC programs and attach them to interfaces",
        _ => "",
    }
}

pub fn check_privileges() -> anyhow::Result<()> {
    let missing = missing_caps(effective_caps());
    if missing.is_empty() {
        return Ok(());
    }
    let why: Vec<&str> = missing.iter().map(|c| needed_for(c)).collect();
    Err(crate::exit::with_code(
        crate::exit::PRIVILEGES,
        anyhow::anyhow!(
            "missing capabilities {}: the agent needs {}. Run it as root, or grant exactly CAP_BPF, CAP_PERFMON and \
         CAP_NET_ADMIN: `sudo setcap cap_bpf,cap_perfmon,cap_net_admin+ep $(command -v sctp-monitor)`, or use \
         deploy/systemd/sctp-monitor.service (AmbientCapabilities=)",
            missing.join(", "),
            why.join("; ")
        ),
    ))
}

/// The oldest kernel the programs load on: they walk chunks and send
/// records in `bpf_loop` callbacks.
pub const MIN_KERNEL: (u32, u32) = (5, 17);

/// This kernel's release (`uname -r`), if readable.
fn kernel_release() -> Option<String> {
    std::fs::read_to_string("/proc/sys/kernel/osrelease").ok().map(|r| r.trim().to_string())
}

/// `(major, minor)` of a release string such as `5.10.0-46-amd64`.
fn release_version(release: &str) -> (u32, u32) {
    let mut it = release.split(['.', '-', '+']).map(|p| p.parse::<u32>().unwrap_or(0));
    (it.next().unwrap_or(0), it.next().unwrap_or(0))
}

/// Why a kernel cannot run the programs, from its release and, when the
/// probe could run, whether it has `bpf_loop`. The probe decides when it
/// answered (a distribution may backport the helper to an older release);
/// otherwise the release does.
pub fn too_old(release: &str, has_bpf_loop: Option<bool>) -> Option<String> {
    let (maj, min) = MIN_KERNEL;
    let missing = match has_bpf_loop {
        Some(true) => return None,
        Some(false) => "it has no bpf_loop helper (a probe program calling it was refused)",
        None if release_version(release) < MIN_KERNEL => "it has no bpf_loop helper (from its version)",
        None => return None,
    };
    Some(format!(
        "kernel {release} is too old for sctp-monitor: {missing}, which the programs need to walk an SCTP \
         packet's chunks; bpf_loop came with Linux {maj}.{min}. Run the agent on Linux {maj}.{min} or later \
         (tested: 6.1, 6.12, 6.18); `replay` of captures works on any kernel"
    ))
}

/// Refuses, before loading anything, a kernel whose verifier would reject
/// the programs for want of `bpf_loop` (its rejection there says only that
/// func_info does not match, after 0 instructions).
pub fn check_kernel() -> anyhow::Result<()> {
    let release = kernel_release().unwrap_or_else(|| "(unknown release)".into());
    let probe = aya::sys::is_helper_supported(aya::programs::ProgramType::Xdp, aya::sys::BpfHelper::BPF_FUNC_loop);
    let has_bpf_loop = match probe {
        Ok(has) => Some(has),
        Err(e) => {
            log::debug!("probing bpf_loop failed ({e}); judging kernel {release} by its version");
            None
        }
    };
    match too_old(&release, has_bpf_loop) {
        Some(why) => Err(anyhow::anyhow!(why)),
        None => Ok(()),
    }
}

/// Why loading may have failed, for the error message: BTF and BPF ring
/// buffers (5.8+).
pub fn kernel_diagnosis() -> Option<String> {
    let mut why = Vec::new();
    if !std::path::Path::new("/sys/kernel/btf/vmlinux").exists() {
        why.push(
            "this kernel exposes no BTF (/sys/kernel/btf/vmlinux is missing): it needs CONFIG_DEBUG_INFO_BTF=y"
                .to_string(),
        );
    }
    if let Some(rel) = kernel_release()
        && release_version(&rel) < (5, 8)
    {
        why.push(format!("kernel {rel} has no BPF ring buffer (needs 5.8 or later)"));
    }
    (!why.is_empty()).then(|| why.join("; "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capability_names() {
        assert_eq!(missing_caps(0), vec!["CAP_BPF", "CAP_PERFMON", "CAP_NET_ADMIN"]);
        assert!(missing_caps(u64::MAX).is_empty());
        assert_eq!(missing_caps(1 << CAP_SYS_ADMIN), vec!["CAP_NET_ADMIN"]);
        assert!(missing_caps((1 << CAP_BPF) | (1 << CAP_PERFMON) | (1 << CAP_NET_ADMIN)).is_empty());
        for c in missing_caps(0) {
            assert!(needed_for(c).starts_with(c), "{c}");
        }
    }

    #[test]
    fn old_kernels_are_named_with_what_they_lack() {
        let why = too_old("5.10.0-46-amd64", Some(false)).expect("5.10 without bpf_loop is refused");
        for part in ["kernel 5.10.0-46-amd64", "bpf_loop", "Linux 5.17 or later"] {
            assert!(why.contains(part), "{part} in {why}");
        }
        assert!(too_old("5.16.2", None).is_some_and(|w| w.contains("from its version")));
        // The probe decides over the release: a backport loads.
        assert_eq!(too_old("5.14.0-427.el9.x86_64", Some(true)), None);
        assert_eq!(too_old("6.1.0-57-amd64", None), None);
        assert_eq!(too_old("6.12.118+deb13-amd64", None), None);
        assert_eq!(release_version("6.12.118+deb13-amd64"), (6, 12));
        assert_eq!(release_version("5.17"), (5, 17));
    }
}
