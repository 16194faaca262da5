//! Checks before touching the kernel, each failing with what to do.

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
    if let Ok(rel) = std::fs::read_to_string("/proc/sys/kernel/osrelease") {
        let mut it = rel.trim().split(['.', '-']).map(|p| p.parse::<u32>().unwrap_or(0));
        let (maj, min) = (it.next().unwrap_or(0), it.next().unwrap_or(0));
        if (maj, min) < (5, 8) {
            why.push(format!("kernel {} has no BPF ring buffer (needs 5.8 or later)", rel.trim()));
        }
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
}
