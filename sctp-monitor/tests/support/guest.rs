//! The Linux kernel's own SCTP in a guest: Debian's kernel packages that
//! `cargo xtask setup --tests` extracts under `target/guest-kernels/`,
//! booted under QEMU by `tests/guest/boot.sh`, with `tests/guest/run.sh`
//! as the guest's command (see both for what a run does and leaves).

use std::{
    path::{Path, PathBuf},
    process::Command,
    sync::OnceLock,
    time::Instant,
};

/// The workspace's root (the kernels, virtme-ng and the scripts are there).
fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("workspace").to_path_buf()
}

/// `target/guest-kernels/NAME`.
pub fn kernel_dir(name: &str) -> PathBuf {
    repo().join("target/guest-kernels").join(name)
}

/// What a guest run needs that is missing, for `kernels`.
fn missing(kernels: &[&str]) -> Vec<String> {
    let mut why = Vec::new();
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        why.push("root (the guest's namespaces and BPF need it; QEMU runs as the same user)".into());
    }
    if !super::process::have("qemu-system-x86_64") {
        why.push("qemu-system-x86_64 (Debian's qemu-system-x86)".into());
    }
    if !repo().join("target/virtme-ng/bin/vng").exists() {
        why.push("virtme-ng in target/virtme-ng".into());
    }
    if !Path::new("/usr/include/netinet/sctp.h").exists() {
        why.push("lksctp's headers (libsctp-dev)".into());
    }
    for k in kernels {
        if !kernel_dir(k).join("boot").is_dir() {
            why.push(format!("the Linux {k} kernel package in {}", kernel_dir(k).display()));
        }
    }
    why
}

/// Whether the guest tests can run for `kernels`. Under CI what is missing
/// is a failure; elsewhere the test is skipped with what to do.
pub fn ready(test: &str, kernels: &[&str]) -> bool {
    let why = missing(kernels);
    if why.is_empty() {
        return true;
    }
    let msg = format!("{test} needs {}: run `cargo xtask setup --tests` (as root)", why.join(", "));
    if std::env::var_os("CI").is_some() {
        panic!("{msg}");
    }
    eprintln!("SKIPPED {msg}");
    false
}

/// The kernel-SCTP peer (`tests/peer/lksctp_peer.c`), built once per test
/// binary into cargo's test scratch directory.
pub fn lksctp_peer() -> PathBuf {
    static PEER: OnceLock<PathBuf> = OnceLock::new();
    PEER.get_or_init(|| {
        let src = repo().join("sctp-monitor/tests/peer/lksctp_peer.c");
        let dir = option_env!("CARGO_TARGET_TMPDIR").map_or_else(std::env::temp_dir, PathBuf::from);
        let out = dir.join("lksctp_peer");
        let tmp = out.with_extension(std::process::id().to_string());
        let st = Command::new("gcc")
            .args(["-O2", "-Wall", "-o"])
            .arg(&tmp)
            .arg(&src)
            .arg("-lsctp")
            .status()
            .expect("gcc (run `cargo xtask setup --tests`)");
        assert!(st.success(), "building the lksctp peer failed (libsctp-dev?)");
        std::fs::rename(&tmp, &out).expect("rename the peer binary");
        out
    })
    .clone()
}

/// Boots the kernel `name` with `run.sh ARGS` as the guest's command; the
/// guest writes only `rwdir`; its console goes to `rwdir`'s sibling
/// `NAME.console.log`. Panics with the console's last lines when the
/// command fails.
pub fn boot(name: &str, rwdir: &Path, args: &[&str]) -> PathBuf {
    std::fs::create_dir_all(rwdir).expect("create the guest's directory");
    let console = PathBuf::from(format!("{}.console.log", rwdir.display()));
    let mut command = repo().join("sctp-monitor/tests/guest/run.sh").display().to_string();
    for a in args {
        command.push_str(&format!(" '{a}'"));
    }
    let t0 = Instant::now();
    let run = || {
        Command::new(repo().join("sctp-monitor/tests/guest/boot.sh"))
            .arg(kernel_dir(name))
            .arg(rwdir)
            .arg(&console)
            .arg(&command)
            .status()
            .expect("run tests/guest/boot.sh")
    };
    let mut st = run();
    let mut text = std::fs::read_to_string(&console).unwrap_or_default();
    // The guest's own kernel crashing under emulation (seen once in ~60
    // boots: a NULL dereference in the memory map code while exec'ing a
    // program) says nothing of the agent: one more boot, said loudly.
    if !st.success() && guest_kernel_crashed(&text) {
        eprintln!("guest linux {name}: the guest kernel crashed (console {}); booting it once more", console.display());
        let _ = std::fs::rename(&console, format!("{}.crashed", console.display()));
        st = run();
        text = std::fs::read_to_string(&console).unwrap_or_default();
    }
    let own: Vec<&str> = text.lines().filter(|l| !l.starts_with('[')).collect();
    assert!(
        st.success(),
        "the guest (linux {name}) failed: {st}; the console's last lines ({}):\n{}",
        console.display(),
        own[own.len().saturating_sub(40)..].join("\n")
    );
    eprintln!("guest linux {name}: {:.1} s ({})", t0.elapsed().as_secs_f64(), args.first().unwrap_or(&""));
    console
}

/// Whether a guest console shows its kernel crashing (an oops or a panic).
fn guest_kernel_crashed(console: &str) -> bool {
    console.lines().any(|l| {
        l.starts_with('[')
            && (l.contains("BUG: ")
                || l.contains("Oops:")
                || l.contains("Kernel panic")
                || l.contains("general protection fault"))
    })
}

/// One failover run (`run.sh failover`) with the agent `agent`: its
/// artifact directory `out` (client.jsonl, server.jsonl, agent.jsonl,
/// capture.pcap, meta.json, agent.log).
pub fn failover_run(kernel: &str, family: &str, cut: &str, pf: &str, agent: &Path, out: &Path) -> PathBuf {
    let _ = std::fs::remove_dir_all(out);
    let peer = lksctp_peer();
    let (o, a, p, stack) =
        (out.display().to_string(), agent.display().to_string(), peer.display().to_string(), format!("linux-{kernel}"));
    let args = [
        "failover", "--out", &o, "--agent", &a, "--peer", &p, "--stack", &stack, "--family", family, "--cut", cut,
        "--pf", pf,
    ];
    boot(kernel, out, &args);
    out.to_path_buf()
}

/// `run.sh agent-check`: the agent started alone in the guest. How it
/// ended (its exit code, or `attached`) and its log.
pub fn agent_check(kernel: &str, agent: &Path, out: &Path) -> (String, String) {
    let _ = std::fs::remove_dir_all(out);
    let (o, a) = (out.display().to_string(), agent.display().to_string());
    boot(kernel, out, &["agent-check", "--out", &o, "--agent", &a]);
    let rc = std::fs::read_to_string(out.join("agent.rc")).expect("agent.rc").trim().to_string();
    (rc, std::fs::read_to_string(out.join("agent.log")).unwrap_or_default())
}
