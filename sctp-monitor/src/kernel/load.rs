//! Loading the embedded object with the agent's settings.

use anyhow::{Context as _, bail};
use aya::{
    Ebpf, EbpfLoader,
    programs::{SchedClassifier, Xdp},
};
use sctp_monitor_common::{Config, maps, programs};

use super::verifier::{INSN_BUDGET, Rejected, VERIFIER_INSN_LIMIT, processed_insns};

/// The eBPF object built by build.rs from `sctp-monitor-ebpf` (aya-build), so
/// it always matches this binary.
pub static OBJECT: &[u8] = aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/sctp-monitor"));

/// Sizes and settings fixed at load time.
#[derive(Clone, Debug)]
pub struct LoadOptions {
    pub config: Config,
    /// Ring buffer size in bytes (a power of two, multiple of the page size).
    pub ring_bytes: u32,
    /// Entries of the per-path direct-mapped array `PATH_SLOTS` (rounded up
    /// to a power of two) and of the `PATHS` LRU map that takes the totals
    /// of a path whose slot another path takes over.
    pub path_entries: u32,
    /// Entries of `PATH_SLOTS` when not `path_entries` (0: the same; tests
    /// shrink the slots alone to force takeovers).
    pub path_slots: u32,
    /// Entries of the per-association-direction array (rounded up to a
    /// power of two).
    pub assoc_dir_entries: u32,
    /// Also load the empty XDP program (benchmarks).
    pub load_baseline: bool,
}

impl Default for LoadOptions {
    fn default() -> Self {
        LoadOptions {
            config: Config::default(),
            ring_bytes: 4 << 20,
            path_entries: 65536,
            path_slots: 0,
            assoc_dir_entries: 65536,
            load_baseline: false,
        }
    }
}

/// Loads the object and its programs into the kernel (not attached yet).
pub fn load(opts: &LoadOptions) -> anyhow::Result<Ebpf> {
    let mut ebpf = open(opts)?;
    load_xdp(&mut ebpf, programs::XDP_INGRESS)?;
    for name in [programs::TC_EGRESS, programs::TC_INGRESS] {
        let tc: &mut SchedClassifier = program(&mut ebpf, name)?.try_into()?;
        tc.load().map_err(|e| Rejected::from_error(name, e))?;
    }
    if opts.load_baseline {
        let bench_only = [programs::XDP_BASELINE, programs::XDP_INGRESS_LRU];
        for name in bench_only.into_iter().chain(programs::PROBES) {
            load_xdp(&mut ebpf, name)?;
        }
        let tc: &mut SchedClassifier = program(&mut ebpf, programs::TC_BASELINE)?.try_into()?;
        tc.load().map_err(|e| Rejected::from_error(programs::TC_BASELINE, e))?;
    }
    for name in [programs::XDP_INGRESS, programs::TC_EGRESS, programs::TC_INGRESS] {
        match processed_insns(&ebpf, name) {
            Some(n) => log::info!(
                "{name}: the verifier processed {n} instructions ({:.1}% of its {VERIFIER_INSN_LIMIT} limit; \
                 budget {INSN_BUDGET})",
                f64::from(n) * 100.0 / f64::from(VERIFIER_INSN_LIMIT)
            ),
            None => log::info!("{name}: loaded (this kernel does not report the verifier's count)"),
        }
    }
    Ok(ebpf)
}

/// One program of the object and what the verifier made of it.
pub struct ProgramCost {
    pub name: &'static str,
    /// Processed instructions (`None`: the kernel does not say), or the
    /// rejection.
    pub verdict: anyhow::Result<Option<u32>>,
}

/// Loads every program of the object, each on its own, and reports the
/// verifier's processed count or its rejection for each: the verifier
/// budget test and `cargo xtask bench` read this.
pub fn verifier_report(opts: &LoadOptions) -> anyhow::Result<Vec<ProgramCost>> {
    let mut ebpf = open(opts)?;
    let mut out = Vec::new();
    for name in programs::ALL {
        let verdict = if [programs::TC_EGRESS, programs::TC_INGRESS, programs::TC_BASELINE].contains(&name) {
            let tc: &mut SchedClassifier = program(&mut ebpf, name)?.try_into()?;
            tc.load().map_err(|e| Rejected::from_error(name, e))
        } else {
            load_xdp(&mut ebpf, name)
        };
        out.push(ProgramCost { name, verdict: verdict.map(|()| processed_insns(&ebpf, name)) });
    }
    Ok(out)
}

/// Loads one XDP program of the object on its own (the rejection test).
pub fn load_one(opts: &LoadOptions, name: &str) -> anyhow::Result<Ebpf> {
    let mut ebpf = open(opts)?;
    load_xdp(&mut ebpf, name)?;
    Ok(ebpf)
}

fn load_xdp(ebpf: &mut Ebpf, name: &str) -> anyhow::Result<()> {
    let p: &mut Xdp = program(ebpf, name)?.try_into()?;
    p.load().map_err(|e| Rejected::from_error(name, e))
}

/// The object with its maps created and sized, no program loaded.
fn open(opts: &LoadOptions) -> anyhow::Result<Ebpf> {
    if OBJECT.is_empty() {
        bail!(
            "this binary was built with AYA_BUILD_SKIP=1 and carries no eBPF object; \
             rebuild without it (`cargo xtask build`)"
        );
    }
    if !opts.ring_bytes.is_power_of_two() || opts.ring_bytes < 4096 {
        bail!("ring buffer size {} must be a power of two of at least 4096 bytes", opts.ring_bytes);
    }
    raise_memlock_limit();
    // ASSOC_DIRS is direct-mapped: a power of two of entries, slot = hash & mask.
    let assoc_dirs = opts.assoc_dir_entries.max(1).next_power_of_two();
    // PATH_SLOTS likewise.
    let path_slots = if opts.path_slots != 0 { opts.path_slots } else { opts.path_entries };
    let path_slots = path_slots.max(1).next_power_of_two();
    let config = Config { assoc_dir_mask: assoc_dirs - 1, path_slot_mask: path_slots - 1, ..opts.config };
    let mut loader = EbpfLoader::new();
    // For kernel-program work: the verifier's full log on a rejection.
    if std::env::var_os("SCTP_MONITOR_VERIFIER_LOG").is_some() {
        loader.verifier_log_level(aya::VerifierLogLevel::VERBOSE | aya::VerifierLogLevel::STATS);
    }
    loader
        .override_global(maps::CONFIG, &config, true)
        .map_max_entries(maps::EVENTS, opts.ring_bytes)
        .map_max_entries(maps::PATH_SLOTS, path_slots)
        .map_max_entries(maps::PATH_SLOTS_USED, path_slots.div_ceil(64))
        .map_max_entries(maps::PATHS, opts.path_entries.max(1))
        .map_max_entries(maps::ASSOC_DIRS, assoc_dirs);
    loader.load(OBJECT).context(
        "loading the eBPF object failed: the agent needs root or CAP_BPF + CAP_PERFMON + \
         CAP_NET_ADMIN, and a kernel with BTF and BPF ring buffers (5.8 or later)",
    )
}

fn program<'a>(ebpf: &'a mut Ebpf, name: &str) -> anyhow::Result<&'a mut aya::programs::Program> {
    ebpf.program_mut(name).with_context(|| format!("program {name} missing from the eBPF object"))
}

/// Kernels before 5.11 charge BPF memory to RLIMIT_MEMLOCK; raise it so the
/// maps fit. Harmless on newer kernels.
fn raise_memlock_limit() {
    let rlim = libc::rlimit { rlim_cur: libc::RLIM_INFINITY, rlim_max: libc::RLIM_INFINITY };
    // SAFETY: plain syscall with a valid pointer.
    let ret = unsafe { libc::setrlimit(libc::RLIMIT_MEMLOCK, &rlim) };
    if ret != 0 {
        log::debug!("setrlimit(RLIMIT_MEMLOCK) failed: {}", std::io::Error::last_os_error());
    }
}
